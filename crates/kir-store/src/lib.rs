//! Incidents, their findings and their append-only timelines, on SQLite (the embedded default)
//! or PostgreSQL (the scale-out store), through one interface.
//!
//! Invariants:
//! - Every write that reads before it writes (grouping findings into incidents, claiming an
//!   escalation level, changing state) runs inside `Store::lock`: `BEGIN IMMEDIATE` on
//!   SQLite, a transaction-scoped advisory lock on PostgreSQL. Concurrent `kir` processes on one
//!   store therefore never lose or duplicate a finding, an incident or an escalation.
//! - A finding is stored once: its fingerprint (rule and audit IDs) is unique.
//! - The timeline is append-only; the database refuses updates and deletes of it.
//! - An incident keeps the escalation policy it was opened with: a plan change does not rewrite
//!   incidents in flight.
//! - Times are milliseconds since the Unix epoch (UTC) in the database; event time (when it
//!   happened) and discovery time (when kir saw it) are kept apart.

mod actions;
mod drills;
mod ingest;
mod leader;
mod model;
mod outbox;
mod schema;
mod stream;
mod tokens;

use std::str::FromStr;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, AnyPool, Connection};

pub use actions::{ActionRecord, PENDING};
pub use drills::Drill;
pub use ingest::{DRILL_PREFIX, IngestReport, fingerprint};
pub use leader::Leadership;
pub use model::*;
pub use outbox::{Delivery, Orphans};
pub use stream::{Detection, DetectionFilter, NewEvent, StoredEvent};
pub use tokens::ApiToken;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store URL {0:?} is not understood: use sqlite:PATH or postgres://USER@HOST/DB")]
    BadUrl(String),
    #[error("cannot open the store {url}: {source}")]
    Open { url: String, source: sqlx::Error },
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("incident {0} does not exist")]
    NoIncident(i64),
    #[error("{0}")]
    Refused(String),
    #[error(
        "the store was written by a newer kir (schema {found}, this kir knows {known}) whose migrations this kir cannot read past: upgrade kir"
    )]
    TooNew { found: i64, known: i64 },
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    url: String,
    /// Who this process is, as the outbox names the owner of a delivery.
    instance: std::sync::Arc<str>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("backend", &self.backend).field("url", &redact_url(&self.url)).finish()
    }
}

/// The URL without its password (in the user part or a `password=` parameter), for messages.
pub fn redact_url(url: &str) -> String {
    let url = &match url.split_once('?') {
        Some((base, query)) => {
            let params: Vec<String> = query
                .split('&')
                .map(|p| match p.split_once('=') {
                    Some((k, _)) if k.eq_ignore_ascii_case("password") || k.eq_ignore_ascii_case("sslpassword") => {
                        format!("{k}=***")
                    }
                    _ => p.to_string(),
                })
                .collect();
            format!("{base}?{}", params.join("&"))
        }
        None => url.to_string(),
    };
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

impl Store {
    /// Opens (and creates, for SQLite) the store at `url` and brings its schema up to date.
    /// `sqlite:PATH`, `sqlite://PATH`, `postgres://…` and `postgresql://…` are understood.
    pub async fn open(url: &str) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let (backend, connect_url) = if let Some(path) = url.strip_prefix("sqlite://").or(url.strip_prefix("sqlite:")) {
            if path.is_empty() {
                return Err(StoreError::BadUrl(redact_url(url)));
            }
            let path = path.split('?').next().unwrap_or(path);
            if let Some(parent) = std::path::Path::new(path).parent()
                && !parent.as_os_str().is_empty()
            {
                let _ = std::fs::create_dir_all(parent);
            }
            (Backend::Sqlite, format!("sqlite://{path}?mode=rwc"))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            (Backend::Postgres, url.to_string())
        } else {
            return Err(StoreError::BadUrl(redact_url(url)));
        };
        let options = AnyConnectOptions::from_str(&connect_url).map_err(|_| StoreError::BadUrl(redact_url(url)))?;
        let pool = AnyPoolOptions::new()
            .max_connections(4)
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // Concurrent kir processes wait for each other instead of failing.
                        sqlx::raw_sql(
                            "PRAGMA busy_timeout = 60000; PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL",
                        )
                        .execute(&mut *conn)
                        .await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .map_err(|source| StoreError::Open { url: redact_url(url), source })?;
        let instance = format!("kir/{}/{}", host_name(), std::process::id()).into();
        let store = Store { pool, backend, url: url.to_string(), instance };
        store.migrate().await?;
        Ok(store)
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The same store, naming this process `instance` as the owner of the deliveries it
    /// starts (`kir serve` names each replica: `serve/HOST/PID/START`).
    pub fn with_instance(mut self, instance: &str) -> Store {
        self.instance = instance.into();
        self
    }

    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// The URL this store was opened with (passwords included: never print it; see
    /// [`redact_url`]).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Runs one statement as it is. For tests that prove what the database refuses.
    #[doc(hidden)]
    pub async fn raw_execute(&self, sql: &'static str) -> Result<u64> {
        Ok(sqlx::query(sql).execute(&self.pool).await?.rows_affected())
    }

    /// Closes every connection (waits for running queries).
    pub async fn shutdown(&self) {
        self.pool.close().await;
    }

    /// Begins a transaction that holds the store's write lock. Finish it with [`Locked::finish`].
    pub(crate) async fn lock(&self) -> Result<Locked> {
        // The guard exists before BEGIN: if BEGIN or the lock fails, or this future is dropped
        // while waiting, the guard closes the connection instead of returning a half-open
        // transaction (and a held lock) to the pool.
        let mut locked = Locked { conn: Some(self.pool.acquire().await?) };
        match self.backend {
            Backend::Sqlite => {
                // WAL lets readers go on while a writer holds the lock; set once, kept by the file.
                let _ = sqlx::raw_sql("PRAGMA journal_mode = WAL").execute(locked.conn()).await;
                sqlx::raw_sql("BEGIN IMMEDIATE").execute(locked.conn()).await?;
            }
            Backend::Postgres => {
                sqlx::raw_sql("BEGIN; SELECT pg_advisory_xact_lock(7151002)").execute(locked.conn()).await?;
            }
        }
        Ok(locked)
    }
}

/// A transaction holding the store's write lock.
pub(crate) struct Locked {
    conn: Option<PoolConnection<Any>>,
}

impl Locked {
    pub(crate) fn conn(&mut self) -> &mut AnyConnection {
        self.conn.as_mut().expect("a finished transaction is not used again")
    }

    /// Commits when `result` is `Ok`, rolls back otherwise.
    pub(crate) async fn finish<T>(mut self, result: Result<T>) -> Result<T> {
        let mut conn = self.conn.take().expect("finished once");
        let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
        match sqlx::raw_sql(end).execute(&mut *conn).await {
            Ok(_) => result,
            Err(e) => {
                // A connection in an unknown transaction state must not go back to the pool.
                let _ = conn.detach().close().await;
                result.and(Err(e.into()))
            }
        }
    }
}

impl Drop for Locked {
    fn drop(&mut self) {
        // Dropped without finish (a panic or a cancelled future): closing the connection rolls
        // the transaction back; returning it to the pool would leak the lock.
        if let Some(conn) = self.conn.take() {
            drop(conn.detach());
        }
    }
}

/// This machine's name (the pod's name inside Kubernetes), for owners in the outbox.
pub fn host_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// Milliseconds since the epoch → RFC 3339 text.
pub fn rfc3339(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms).map(|t| t.to_string()).unwrap_or_else(|_| ms.to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_never_reach_messages() {
        use super::redact_url;
        assert_eq!(redact_url("postgres://kir:s3cret@db:5432/ir"), "postgres://kir:***@db:5432/ir");
        assert_eq!(redact_url("postgres://kir:pa/ss@db/ir"), "postgres://kir:***@db/ir");
        assert_eq!(
            redact_url("postgres://db/ir?user=kir&password=s3cret&sslmode=require"),
            "postgres://db/ir?user=kir&password=***&sslmode=require"
        );
        assert_eq!(redact_url("sqlite:/tmp/ir.db"), "sqlite:/tmp/ir.db");
    }
}
