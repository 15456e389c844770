//! The outbox: the delivery state of every fired escalation level that has someone to notify.
//!
//! `fire` writes a `pending` row owned by the firing process in the same transaction as the
//! level's claim; the owner sends and marks the row done ([`Store::delivery_done`]). A row left
//! pending by a process that died is taken over ([`Store::take_orphans`]) by another one, which
//! sends it: a page is not lost to a `kill -9` between firing and sending. The only window in
//! which a page goes out twice is between a receiver's answer and the commit that records it;
//! a receiver that must never see a repeat can drop it by the `incident_id` and `reason` (which
//! names the escalation level) every notice carries.

use sqlx::FromRow;

use crate::model::fetch_incident;
use crate::{Fired, Result, Store, model::append};

/// How a fired level's deliveries ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    Delivered,
    Failed,
    /// No channel was configured (their environment variables are not set).
    Skipped,
    /// Paging was off (`--no-notify`, a drill without `--notify`).
    NotSent,
}

impl Delivery {
    fn as_str(self) -> &'static str {
        match self {
            Delivery::Delivered => "delivered",
            Delivery::Failed => "failed",
            Delivery::Skipped => "skipped",
            Delivery::NotSent => "not-sent",
        }
    }
}

/// Which pending rows of other owners to take over.
#[derive(Debug, Clone, Copy)]
pub struct Orphans<'a> {
    /// Rows claimed this long ago (milliseconds) or longer: their owner would have finished.
    pub older_than_ms: i64,
    /// Rows of owners whose names start with this, whatever their age: `kir serve`'s new
    /// leader knows that the replicas before it are gone (it holds the lock they held).
    pub owners_gone: Option<&'a str>,
}

#[derive(FromRow)]
struct PendingRow {
    incident_id: i64,
    cycle: i64,
    round: i64,
    level: i64,
    owner: String,
    fired_at: i64,
    manual: i64,
}

impl Store {
    /// Marks the deliveries of `fired` as over.
    pub async fn delivery_done(&self, fired: &Fired, how: Delivery, now: i64) -> Result<()> {
        sqlx::query(
            "UPDATE outbox SET state = $5, done_at = $6 \
             WHERE incident_id = $1 AND cycle = $2 AND round = $3 AND level = $4 AND state = 'pending'",
        )
        .bind(fired.incident_id)
        .bind(fired.cycle)
        .bind(fired.round as i64)
        .bind(fired.level as i64)
        .bind(how.as_str())
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Deliveries still pending in the outbox (all owners), for `/metrics` and tests.
    pub async fn pending_deliveries(&self) -> Result<i64> {
        let (n,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM outbox WHERE state = 'pending'").fetch_one(&self.pool).await?;
        Ok(n)
    }

    /// Takes over the pending deliveries of other owners that `which` says are gone, and returns
    /// them to be sent by this process; each takeover lands on the incident's timeline.
    pub async fn take_orphans(&self, which: Orphans<'_>, now: i64) -> Result<Vec<Fired>> {
        let me = self.instance.clone();
        let mut tx = self.lock().await?;
        let r = async {
            let c = tx.conn();
            let rows: Vec<PendingRow> = sqlx::query_as(
                "SELECT o.incident_id, o.cycle, o.round, o.level, o.owner, e.fired_at, e.manual \
                 FROM outbox o JOIN escalations e ON e.incident_id = o.incident_id AND e.cycle = o.cycle \
                   AND e.round = o.round AND e.level = o.level \
                 WHERE o.state = 'pending' AND o.owner <> $1 \
                   AND (o.claimed_at <= $2 OR ($3 <> '' AND substr(o.owner, 1, length($3)) = $3)) \
                 ORDER BY o.incident_id, o.cycle, o.round, o.level",
            )
            .bind(me.as_ref())
            .bind(now - which.older_than_ms)
            .bind(which.owners_gone.unwrap_or(""))
            .fetch_all(&mut *c)
            .await?;
            let mut taken = Vec::new();
            for row in rows {
                sqlx::query(
                    "UPDATE outbox SET owner = $5, claimed_at = $6, takeovers = takeovers + 1 \
                     WHERE incident_id = $1 AND cycle = $2 AND round = $3 AND level = $4",
                )
                .bind(row.incident_id)
                .bind(row.cycle)
                .bind(row.round)
                .bind(row.level)
                .bind(me.as_ref())
                .bind(now)
                .execute(&mut *c)
                .await?;
                let inc = fetch_incident(c, row.incident_id).await?;
                let spec = inc.policy().and_then(|p| p.levels.get(row.level as usize).cloned());
                let message = format!(
                    "the notifications of escalation level {} were left unsent by {} (it stopped); {} sends them",
                    row.level + 1,
                    row.owner,
                    me
                );
                append(c, inc.id, now, "kir", "notification", &message, None).await?;
                taken.push(Fired {
                    incident_id: row.incident_id,
                    cycle: row.cycle,
                    round: row.round as u32,
                    level: row.level as usize,
                    due_ms: row.fired_at,
                    manual: row.manual != 0,
                    notify: spec.as_ref().map(|s| s.notify.clone()).unwrap_or_default(),
                    assign: spec.and_then(|s| s.assign),
                });
            }
            Ok(taken)
        }
        .await;
        tx.finish(r).await
    }
}
