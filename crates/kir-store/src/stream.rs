//! The live stream of `kir serve`: events as the receivers stored them (each once, keyed by
//! auditID and stage, numbered in the order stored), the findings live detection made of them,
//! and the cursor that says how far detection got. A batch is acknowledged only after
//! [`Store::append_events`] returns, so a crash loses nothing acknowledged, and a retried batch
//! adds nothing.

use sqlx::FromRow;

use crate::{Backend, Result, Store};

/// One unit of text a receiver accepted.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// `auditID/stage` for an audit event; a digest for what has neither.
    pub key: String,
    /// `audit`, `falco`, or `flush` (the stream went quiet: requests still waiting for their
    /// last stage are reported as they are; stored so that a restart replays it at the same
    /// place).
    pub kind: String,
    pub body: String,
    /// The cluster that sent it (the token's, or `?cluster=`), when named.
    pub cluster: Option<String>,
}

#[derive(Debug, Clone, FromRow)]
pub struct StoredEvent {
    pub seq: i64,
    pub kind: String,
    pub received_at: i64,
    pub cluster: Option<String>,
    pub body: String,
}

/// A finding of live detection, as `kir hunt --format jsonl` writes it (`body`).
#[derive(Debug, Clone, FromRow)]
pub struct Detection {
    pub id: i64,
    pub detection_key: String,
    pub rule_id: String,
    pub severity_rank: i64,
    pub event_time: Option<i64>,
    pub detected_at: i64,
    pub actor: String,
    pub namespace: Option<String>,
    pub cluster: Option<String>,
    pub body: String,
}

/// Which detections to list; every part runs in the database.
#[derive(Debug, Clone, Default)]
pub struct DetectionFilter {
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
    pub min_severity_rank: Option<i64>,
    pub rule_id: Option<String>,
    pub namespace: Option<String>,
    pub actor: Option<String>,
    pub cluster: Option<String>,
    /// Only those after this id (paging).
    pub after_id: Option<i64>,
    pub limit: Option<i64>,
    /// (rule, actor) pairs left out: an identity's everyday work (`routine:` rules).
    pub exclude: Vec<(String, String)>,
}

/// Rows per INSERT: four parameters each, far below SQLite's limit of 32,766.
const ROWS_PER_STATEMENT: usize = 200;

impl Store {
    /// Stores `events` in one transaction, each once: an event the store has (a retried batch)
    /// is left as it is. Returns how many were new. Serialized with every other writer, so the
    /// sequence numbers are in commit order and detection never passes one still being written.
    pub async fn append_events(&self, events: &[NewEvent], who: &str, now: i64) -> Result<u64> {
        let mut tx = self.lock().await?;
        let r = async {
            let c = tx.conn();
            let mut added = 0;
            for chunk in events.chunks(ROWS_PER_STATEMENT) {
                added += insert_chunk(c, chunk, who, now).await?;
            }
            Ok(added)
        }
        .await;
        tx.finish(r).await
    }

    /// Stored events after `seq`, oldest first, at most `limit`.
    ///
    /// The page comes back as one text (the rows joined with ASCII record and unit separators,
    /// which JSON text never holds unescaped): sqlx's SQLite driver hands every row across a
    /// thread, and for thousands of small rows that hand-over, not SQLite, was most of the time.
    pub async fn events_after(&self, seq: i64, limit: i64) -> Result<Vec<StoredEvent>> {
        let sql = match self.backend {
            Backend::Sqlite => {
                "SELECT group_concat(seq || char(31) || kind || char(31) || received_at || char(31) || COALESCE(cluster, '') || char(31) || body, char(30)) \
                 FROM (SELECT seq, kind, received_at, cluster, body FROM stream_events WHERE seq > $1 ORDER BY seq LIMIT $2)"
            }
            Backend::Postgres => {
                "SELECT string_agg(seq::text || chr(31) || kind || chr(31) || received_at::text || chr(31) || COALESCE(cluster, '') || chr(31) || body, chr(30) ORDER BY seq) \
                 FROM (SELECT seq, kind, received_at, cluster, body FROM stream_events WHERE seq > $1 ORDER BY seq LIMIT $2) page"
            }
        };
        let (joined,): (Option<String>,) = sqlx::query_as(sql).bind(seq).bind(limit).fetch_one(&self.pool).await?;
        let mut events: Vec<StoredEvent> = joined
            .as_deref()
            .unwrap_or("")
            .split('\u{1e}')
            .filter(|r| !r.is_empty())
            .filter_map(|row| {
                let mut parts = row.splitn(5, '\u{1f}');
                let seq = parts.next()?.parse().ok()?;
                let kind = parts.next()?.to_string();
                let received_at = parts.next()?.parse().ok()?;
                let cluster = Some(parts.next()?).filter(|c| !c.is_empty()).map(str::to_string);
                let body = parts.next()?.to_string();
                Some(StoredEvent { seq, kind, received_at, cluster, body })
            })
            .collect();
        // SQLite keeps the subquery's order in practice, without promising it.
        events.sort_by_key(|e| e.seq);
        Ok(events)
    }

    /// The highest sequence number stored (0 for none).
    pub async fn last_event_seq(&self) -> Result<i64> {
        let (n,): (Option<i64>,) = sqlx::query_as("SELECT MAX(seq) FROM stream_events").fetch_one(&self.pool).await?;
        Ok(n.unwrap_or(0))
    }

    pub async fn event_count(&self) -> Result<i64> {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM stream_events").fetch_one(&self.pool).await?;
        Ok(n)
    }

    /// Where detection `name` got to (0 before it began).
    pub async fn cursor(&self, name: &str) -> Result<i64> {
        let row: Option<(i64,)> = sqlx::query_as("SELECT seq FROM stream_cursor WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map_or(0, |r| r.0))
    }

    /// Stores detections (a burst that grew replaces its earlier version) and moves the cursor
    /// to `seq`, in one transaction.
    pub async fn put_detections(&self, name: &str, detections: &[Detection], seq: i64) -> Result<()> {
        let mut tx = self.lock().await?;
        let r = async {
            let c = tx.conn();
            for d in detections {
                sqlx::query(
                    "INSERT INTO detections (detection_key, rule_id, severity_rank, event_time, detected_at, actor, namespace, body, cluster) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                     ON CONFLICT (detection_key) DO UPDATE SET body = excluded.body, severity_rank = excluded.severity_rank",
                )
                .bind(&d.detection_key)
                .bind(&d.rule_id)
                .bind(d.severity_rank)
                .bind(d.event_time)
                .bind(d.detected_at)
                .bind(&d.actor)
                .bind(&d.namespace)
                .bind(&d.body)
                .bind(&d.cluster)
                .execute(&mut *c)
                .await?;
            }
            // The cursor only moves on: a replica that lost the lead and has not noticed yet
            // cannot take it back behind the new leader.
            let move_on = match self.backend {
                Backend::Sqlite => {
                    "INSERT INTO stream_cursor (name, seq) VALUES ($1, $2) \
                     ON CONFLICT (name) DO UPDATE SET seq = max(seq, excluded.seq)"
                }
                Backend::Postgres => {
                    "INSERT INTO stream_cursor (name, seq) VALUES ($1, $2) \
                     ON CONFLICT (name) DO UPDATE SET seq = GREATEST(stream_cursor.seq, excluded.seq)"
                }
            };
            sqlx::query(move_on)
            .bind(name)
            .bind(seq)
            .execute(&mut *c)
            .await?;
            Ok(())
        }
        .await;
        tx.finish(r).await
    }

    /// Identities with at least `events` detections of `rule_id` spread over at least `over_ms`:
    /// what a `routine:` rule calls everyday work.
    pub async fn routine_actors(&self, rule_id: &str, events: i64, over_ms: i64) -> Result<Vec<String>> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT actor FROM detections WHERE rule_id = $1 GROUP BY actor \
             HAVING COUNT(*) >= $2 AND MAX(event_time) - MIN(event_time) >= $3",
        )
        .bind(rule_id)
        .bind(events)
        .bind(over_ms)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|r| r.0).collect())
    }

    /// Detections that pass `filter`, in the order found.
    pub async fn detections(&self, filter: &DetectionFilter) -> Result<Vec<Detection>> {
        let mut sql = String::from(
            "SELECT id, detection_key, rule_id, severity_rank, event_time, detected_at, actor, namespace, cluster, body FROM detections WHERE 1 = 1",
        );
        let mut n = 0;
        let mut next = || {
            n += 1;
            format!("${n}")
        };
        if filter.since_ms.is_some() {
            sql.push_str(&format!(" AND event_time >= {}", next()));
        }
        if filter.until_ms.is_some() {
            sql.push_str(&format!(" AND event_time <= {}", next()));
        }
        if filter.min_severity_rank.is_some() {
            sql.push_str(&format!(" AND severity_rank >= {}", next()));
        }
        if filter.rule_id.is_some() {
            sql.push_str(&format!(" AND rule_id = {}", next()));
        }
        if filter.namespace.is_some() {
            sql.push_str(&format!(" AND namespace = {}", next()));
        }
        if filter.actor.is_some() {
            sql.push_str(&format!(" AND actor = {}", next()));
        }
        if filter.cluster.is_some() {
            sql.push_str(&format!(" AND cluster = {}", next()));
        }
        if filter.after_id.is_some() {
            sql.push_str(&format!(" AND id > {}", next()));
        }
        for _ in &filter.exclude {
            let (a, b) = (next(), next());
            sql.push_str(&format!(" AND NOT (rule_id = {a} AND actor = {b})"));
        }
        sql.push_str(" ORDER BY id");
        if filter.limit.is_some() {
            sql.push_str(&format!(" LIMIT {}", next()));
        }
        let mut q = sqlx::query_as::<_, Detection>(sqlx::AssertSqlSafe(sql));
        for v in [filter.since_ms, filter.until_ms, filter.min_severity_rank].into_iter().flatten() {
            q = q.bind(v);
        }
        for v in [&filter.rule_id, &filter.namespace, &filter.actor, &filter.cluster].into_iter().flatten() {
            q = q.bind(v.clone());
        }
        if let Some(v) = filter.after_id {
            q = q.bind(v);
        }
        for (rule, actor) in &filter.exclude {
            q = q.bind(rule.clone()).bind(actor.clone());
        }
        if let Some(v) = filter.limit {
            q = q.bind(v);
        }
        Ok(q.fetch_all(&self.pool).await?)
    }
}

async fn insert_chunk(c: &mut sqlx::AnyConnection, chunk: &[NewEvent], who: &str, now: i64) -> Result<u64> {
    let mut sql =
        String::from("INSERT INTO stream_events (event_key, kind, received_at, received_by, body, cluster) VALUES ");
    for i in 0..chunk.len() {
        if i > 0 {
            sql.push_str(", ");
        }
        let b = i * 4;
        sql.push_str(&format!("(${}, ${}, $1, $2, ${}, ${})", b + 3, b + 4, b + 5, b + 6));
    }
    sql.push_str(" ON CONFLICT (event_key) DO NOTHING");
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(now).bind(who.to_string());
    for e in chunk {
        q = q.bind(e.key.as_str()).bind(e.kind.as_str()).bind(e.body.as_str()).bind(e.cluster.as_deref());
    }
    Ok(q.execute(&mut *c).await?.rows_affected())
}
