//! Which replica leads. Any number of `kir serve` replicas share one store: each receives,
//! stores and answers the API, but live detection (one reader of the stream, in order, so that
//! stage merging and correlation windows see every event) and the escalation ticker run on one,
//! the holder of the lead: inside a cluster a Kubernetes Lease (`kir_cluster::lease`, with
//! `--leader-lease`), outside one `kir_store::Leadership` (a PostgreSQL advisory lock, or a file
//! lock beside a SQLite database). A replica that dies gives the store's lock up with its
//! session, and another takes it within `CHECK_EVERY`; a Lease it stopped renewing goes to
//! another within `LEASE_DURATION` + `CHECK_EVERY` (12 s). The new leader replays the stream from
//! the store to the cursor, and goes on. A replica that stops gives the lead up once drained.
//!
//! Why one detection leader rather than partitioned work: a correlation window of one actor and
//! the stages of one request may arrive at different replicas, and detection is cheap next to
//! storing (docs/benchmarks.md); one reader keeps `kir hunt`'s order without cross-replica state.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use kir_cluster::lease::LeaseLock;
use kir_store::Leadership;

use crate::Shared;

enum Lead {
    Store(Leadership),
    Lease(Box<LeaseLock>),
}

impl Lead {
    fn describe(&self) -> String {
        match self {
            Lead::Store(l) => l.describe(),
            Lead::Lease(l) => l.describe(),
        }
    }

    async fn hold(&mut self) -> Result<bool, String> {
        match self {
            Lead::Store(l) => l.hold().await,
            Lead::Lease(l) => l.hold(jiff::Timestamp::now()).await.map_err(|e| e.to_string()),
        }
    }

    async fn release(&mut self) {
        match self {
            Lead::Store(l) => l.release().await,
            Lead::Lease(l) => {
                if let Err(e) = l.release().await {
                    tracing::warn!(error = %e, "the Lease could not be given up: another replica takes it when it expires");
                }
            }
        }
    }
}

/// How often a follower tries to take the lead, and the leader checks it still holds it.
pub const CHECK_EVERY: Duration = Duration::from_secs(2);

pub async fn run(shared: Arc<Shared>) {
    let mut lead = match &shared.config.lease {
        Some(l) => Lead::Lease(Box::new(LeaseLock::new(l.client.clone(), &l.namespace, &l.name, &l.identity))),
        None => Lead::Store(Leadership::of(&shared.store)),
    };
    let what = lead.describe();
    let mut said_problem = false;
    let mut every = tokio::time::interval(CHECK_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        if shared.stopping.load(Ordering::SeqCst) {
            // Draining: keep the lead until live detection has drained, take none; then give it up
            // so that another replica takes it at once.
            if shared.drained.load(Ordering::SeqCst) {
                lead.release().await;
                return;
            }
            if !shared.leading.load(Ordering::SeqCst) {
                return;
            }
            continue;
        }
        let holds = match lead.hold().await {
            Ok(h) => {
                said_problem = false;
                h
            }
            Err(e) => {
                if !said_problem {
                    tracing::warn!(error = %e, "cannot tell whether this replica leads ({what}): it does not, until it can");
                    said_problem = true;
                }
                false
            }
        };
        let was = shared.leading.swap(holds, Ordering::SeqCst);
        shared.metrics.leading.store(holds, Ordering::Relaxed);
        match (was, holds) {
            (false, true) => {
                tracing::info!("this replica leads ({what}): live detection and the escalation ticker run here");
                shared.metrics.leader_changes.fetch_add(1, Ordering::Relaxed);
                shared.wake.notify_one();
            }
            (true, false) => {
                tracing::warn!("this replica lost the lead ({what}): live detection and the ticker stop here");
            }
            _ => {}
        }
        if !holds {
            // A follower's receivers refuse when detection falls behind, as the leader's do.
            if let (Ok(last), Ok(cursor)) =
                (shared.store.last_event_seq().await, shared.store.cursor(crate::live::CURSOR).await)
            {
                shared.metrics.detection_lag.store(last - cursor, Ordering::Relaxed);
            }
        }
    }
}
