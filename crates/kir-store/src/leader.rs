//! Leadership: one process at a time holds it, for as long as it lives. `kir serve` runs its
//! singletons (live detection, the escalation ticker, the outbox's orphans) only where it holds.
//!
//! PostgreSQL: a session advisory lock on a connection of its own, outside the pool. The server
//! releases it when that session ends, so a replica killed with `kill -9` gives it up as soon as
//! the kernel closes its socket; a holder that cannot reach the server any more says it no longer
//! holds (and stops), because it cannot know whether its session still exists.
//! SQLite: an exclusive lock on a file beside the database (`PATH.leader`), released by the
//! kernel when the process dies: replicas on one SQLite file must share one host anyway.

use std::path::PathBuf;

use sqlx::{AnyConnection, Connection};

use crate::{Backend, Store};

/// The advisory lock's key (the store's write lock is 7151002).
const LEADER_KEY: i64 = 7_151_003;

pub struct Leadership {
    inner: Inner,
}

enum Inner {
    Postgres { url: String, conn: Option<AnyConnection>, held: bool },
    File { path: PathBuf, file: Option<std::fs::File> },
}

impl Leadership {
    /// The lead among the processes that share `store`.
    pub fn of(store: &Store) -> Leadership {
        let inner = match store.backend {
            Backend::Postgres => Inner::Postgres { url: store.url.clone(), conn: None, held: false },
            Backend::Sqlite => {
                let path = store.url.strip_prefix("sqlite://").or(store.url.strip_prefix("sqlite:")).unwrap_or("");
                let path = path.split('?').next().unwrap_or(path);
                Inner::File { path: PathBuf::from(format!("{path}.leader")), file: None }
            }
        };
        Leadership { inner }
    }

    /// What the lead is, for logs.
    pub fn describe(&self) -> String {
        match &self.inner {
            Inner::Postgres { .. } => format!("PostgreSQL advisory lock {LEADER_KEY}"),
            Inner::File { path, .. } => format!("lock on {}", path.display()),
        }
    }

    /// Takes the lead if it is free, or checks that this process still holds it. Returns
    /// whether it holds; an error says why it could not tell (and then it does not hold).
    pub async fn hold(&mut self) -> Result<bool, String> {
        match &mut self.inner {
            Inner::Postgres { url, conn, held } => {
                if conn.is_none() {
                    *held = false;
                    *conn = Some(AnyConnection::connect(url).await.map_err(|e| e.to_string())?);
                }
                let Some(c) = conn.as_mut() else { return Ok(false) };
                let answer = if *held {
                    sqlx::query("SELECT 1").execute(&mut *c).await.map(|_| true)
                } else {
                    sqlx::query_as::<_, (bool,)>("SELECT pg_try_advisory_lock($1)")
                        .bind(LEADER_KEY)
                        .fetch_one(&mut *c)
                        .await
                        .map(|r| r.0)
                };
                match answer {
                    Ok(h) => {
                        *held = h;
                        Ok(h)
                    }
                    Err(e) => {
                        // The session may be gone, and the lock with it.
                        *held = false;
                        *conn = None;
                        Err(e.to_string())
                    }
                }
            }
            Inner::File { path, file } => {
                if file.is_some() {
                    return Ok(true);
                }
                let f = std::fs::OpenOptions::new()
                    .create(true)
                    .truncate(false)
                    .write(true)
                    .open(&*path)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                match f.try_lock() {
                    Ok(()) => {
                        *file = Some(f);
                        Ok(true)
                    }
                    Err(std::fs::TryLockError::WouldBlock) => Ok(false),
                    Err(std::fs::TryLockError::Error(e)) => Err(format!("{}: {e}", path.display())),
                }
            }
        }
    }

    /// Gives the lead up (at shutdown, so that another replica takes it at once).
    pub async fn release(&mut self) {
        match &mut self.inner {
            Inner::Postgres { conn, held, .. } => {
                if let Some(c) = conn.take() {
                    let _ = c.close().await;
                }
                *held = false;
            }
            Inner::File { file, .. } => {
                *file = None;
            }
        }
    }
}
