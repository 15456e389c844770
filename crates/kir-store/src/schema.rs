//! Schema versions, applied in order under the store's lock (so eight processes opening a new
//! store at once create it once).

use sqlx::AnyConnection;

use crate::{Backend, Result, Store, StoreError};

/// Version, SQL, and the oldest schema version whose kir may still run on it (0: any; see
/// 006_schema_readers.sql). Every migration so far only adds.
const MIGRATIONS: &[(i64, &str, i64)] = &[
    (1, include_str!("../migrations/001_incidents.sql"), 0),
    (2, include_str!("../migrations/002_actions.sql"), 0),
    (3, include_str!("../migrations/003_drills.sql"), 0),
    (4, include_str!("../migrations/004_serve.sql"), 0),
    (5, include_str!("../migrations/005_outbox.sql"), 0),
    (6, include_str!("../migrations/006_schema_readers.sql"), 0),
    (7, include_str!("../migrations/007_clusters.sql"), 0),
];

/// From this version on, kir_schema says which older kir may read the schema.
const READERS_RECORDED_FROM: i64 = 6;

const SQLITE_APPEND_ONLY: &str = "CREATE TRIGGER timeline_no_update BEFORE UPDATE ON timeline BEGIN SELECT RAISE(ABORT, 'the incident timeline is append-only'); END;
CREATE TRIGGER timeline_no_delete BEFORE DELETE ON timeline BEGIN SELECT RAISE(ABORT, 'the incident timeline is append-only'); END;";

const POSTGRES_APPEND_ONLY: &str = "CREATE FUNCTION kir_timeline_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'the incident timeline is append-only'; END $$;
CREATE TRIGGER timeline_append_only BEFORE UPDATE OR DELETE ON timeline FOR EACH ROW EXECUTE FUNCTION kir_timeline_append_only();
CREATE TRIGGER timeline_no_truncate BEFORE TRUNCATE ON timeline FOR EACH STATEMENT EXECUTE FUNCTION kir_timeline_append_only();";

impl Store {
    pub(crate) async fn migrate(&self) -> Result<()> {
        let backend = self.backend;
        let mut tx = self.lock().await?;
        let r = apply(tx.conn(), backend).await;
        tx.finish(r).await
    }
}

async fn apply(conn: &mut AnyConnection, backend: Backend) -> Result<()> {
    sqlx::raw_sql("CREATE TABLE IF NOT EXISTS kir_schema (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)")
        .execute(&mut *conn)
        .await?;
    let (current,): (Option<i64>,) =
        sqlx::query_as("SELECT MAX(version) FROM kir_schema").fetch_one(&mut *conn).await?;
    let current = current.unwrap_or(0);
    let known = MIGRATIONS.last().map(|m| m.0).unwrap_or(0);
    if current > known {
        // A newer kir migrated the store (a rolling upgrade, or this replica is the old one
        // restarting): run on it if every newer migration only added.
        let needs = if current >= READERS_RECORDED_FROM {
            let (needs,): (Option<i64>,) = sqlx::query_as("SELECT MAX(min_reader) FROM kir_schema WHERE version > $1")
                .bind(known)
                .fetch_one(&mut *conn)
                .await?;
            needs.unwrap_or(0)
        } else {
            current
        };
        if needs > known {
            return Err(StoreError::TooNew { found: current, known });
        }
        return Ok(());
    }
    for (version, sql, min_reader) in MIGRATIONS.iter().filter(|m| m.0 > current) {
        let (id, append_only) = match backend {
            Backend::Sqlite => ("INTEGER PRIMARY KEY AUTOINCREMENT", SQLITE_APPEND_ONLY),
            Backend::Postgres => ("BIGSERIAL PRIMARY KEY", POSTGRES_APPEND_ONLY),
        };
        let sql = sql.replace("{{ID}}", id).replace("{{APPEND_ONLY}}", append_only);
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&mut *conn).await?;
        sqlx::query("INSERT INTO kir_schema (version, applied_at) VALUES ($1, $2)")
            .bind(*version)
            .bind(jiff::Timestamp::now().as_millisecond())
            .execute(&mut *conn)
            .await?;
        if *version >= READERS_RECORDED_FROM {
            sqlx::query("UPDATE kir_schema SET min_reader = $1 WHERE version = $2")
                .bind(*min_reader)
                .bind(*version)
                .execute(&mut *conn)
                .await?;
        }
    }
    Ok(())
}
