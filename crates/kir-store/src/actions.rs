//! Containment actions: what was done, to what, by whom, and the state before (for undo).

use serde::Serialize;
use sqlx::FromRow;

use crate::{Result, Store};

#[derive(Debug, Clone, FromRow, Serialize)]
pub struct ActionRecord {
    pub id: String,
    pub action: String,
    pub target: String,
    pub incident_id: Option<i64>,
    pub dry_run: i64,
    pub who: String,
    pub at: i64,
    pub cluster: Option<String>,
    /// JSON: what undo needs to restore.
    pub before_state: String,
    /// JSON: the changes made.
    pub changes: String,
    pub undone_at: Option<i64>,
    pub undone_by: Option<String>,
}

/// The `changes` of an action started and not finished.
pub const PENDING: &str = "\"pending\"";

const COLUMNS: &str =
    "id, action, target, incident_id, dry_run, who, at, cluster, before_state, changes, undone_at, undone_by";

/// Inserts the record with `changes`, after checking its incident exists.
async fn insert(c: &mut sqlx::AnyConnection, a: &ActionRecord, changes: &str) -> Result<()> {
    if let Some(id) = a.incident_id {
        crate::model::fetch_incident(c, id).await?;
    }
    sqlx::query(
        "INSERT INTO actions (id, action, target, incident_id, dry_run, who, at, cluster, before_state, changes) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&a.id)
    .bind(&a.action)
    .bind(&a.target)
    .bind(a.incident_id)
    .bind(a.dry_run)
    .bind(&a.who)
    .bind(a.at)
    .bind(&a.cluster)
    .bind(&a.before_state)
    .bind(changes)
    .execute(&mut *c)
    .await?;
    Ok(())
}

/// The incident's timeline entry for a recorded action and its outcome (`changes`).
async fn note_on_timeline(c: &mut sqlx::AnyConnection, id: &str, changes: &str, now: i64) -> Result<()> {
    let row: Option<(Option<i64>, String, String, i64, String)> =
        sqlx::query_as("SELECT incident_id, action, target, dry_run, who FROM actions WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *c)
            .await?;
    if let Some((Some(incident), action, target, dry_run, who)) = row {
        let parsed = serde_json::from_str::<serde_json::Value>(changes).ok();
        let failed = parsed.as_ref().and_then(|v| v.get("failed")).and_then(|f| f.as_str()).map(str::to_string);
        let message = format!(
            "{}{}{action} {target} (action {id}){}",
            if dry_run != 0 { "dry run: " } else { "" },
            if failed.is_some() { "failed: " } else { "" },
            failed.map(|f| format!(": {f}")).unwrap_or_default()
        );
        let data = serde_json::json!({"action_id": id, "changes": parsed});
        crate::model::append(c, incident, now, &who, "action", &message, Some(data)).await?;
        crate::model::touch(c, incident, now).await?;
    }
    Ok(())
}

impl Store {
    /// Records an action that is over (a collection, say), with its timeline entry.
    pub async fn record_action(&self, a: &ActionRecord) -> Result<()> {
        let mut tx = self.lock().await?;
        let r = async {
            let c = tx.conn();
            insert(c, a, &a.changes).await?;
            note_on_timeline(c, &a.id, &a.changes, a.at).await
        }
        .await;
        tx.finish(r).await
    }

    /// Records an action before it is applied (its `changes` say `"pending"`), so an action cut
    /// short (a crash, a lost connection) still leaves its state before for undo. No timeline
    /// entry yet: `finish_action` writes it with the outcome.
    pub async fn start_action(&self, a: &ActionRecord) -> Result<()> {
        let mut tx = self.lock().await?;
        let r = insert(tx.conn(), a, PENDING).await;
        tx.finish(r).await
    }

    /// The outcome of a started action: the changes made (a JSON array), or `{"failed": why}`;
    /// the incident's timeline gets the entry.
    pub async fn finish_action(&self, id: &str, changes: &str, now: i64) -> Result<()> {
        let mut tx = self.lock().await?;
        let r = async {
            let c = tx.conn();
            sqlx::query("UPDATE actions SET changes = $2 WHERE id = $1")
                .bind(id)
                .bind(changes)
                .execute(&mut *c)
                .await?;
            note_on_timeline(c, id, changes, now).await
        }
        .await;
        tx.finish(r).await
    }

    pub async fn actions(&self) -> Result<Vec<ActionRecord>> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM actions ORDER BY at, id")))
            .fetch_all(&self.pool)
            .await?)
    }

    /// The actions recorded for incident `incident`, oldest first.
    pub async fn incident_actions(&self, incident: i64) -> Result<Vec<ActionRecord>> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM actions WHERE incident_id = $1 ORDER BY at, id"
        )))
        .bind(incident)
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn action(&self, id: &str) -> Result<Option<ActionRecord>> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM actions WHERE id = $1")))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// Marks an action undone (once); `false` when it already was.
    pub async fn mark_undone(&self, id: &str, who: &str, now: i64) -> Result<bool> {
        let mut tx = self.lock().await?;
        let r = async {
            let c = tx.conn();
            let done =
                sqlx::query("UPDATE actions SET undone_at = $2, undone_by = $3 WHERE id = $1 AND undone_at IS NULL")
                    .bind(id)
                    .bind(now)
                    .bind(who)
                    .execute(&mut *c)
                    .await?;
            if done.rows_affected() == 1 {
                let row: Option<(Option<i64>, String, String)> =
                    sqlx::query_as("SELECT incident_id, action, target FROM actions WHERE id = $1")
                        .bind(id)
                        .fetch_optional(&mut *c)
                        .await?;
                if let Some((Some(incident), action, target)) = row {
                    let message = format!("undone: {action} {target} (action {id})");
                    crate::model::append(c, incident, now, who, "action", &message, None).await?;
                }
            }
            Ok(done.rows_affected() == 1)
        }
        .await;
        tx.finish(r).await
    }
}
