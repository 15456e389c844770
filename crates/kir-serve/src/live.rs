//! Live detection: the stored stream, in the order stored, through the same `Detector` as
//! `kir hunt`, into detections and incidents.
//!
//! Exactly once: detection is a pure function of the stored events in order, so after a crash
//! it is rebuilt by replaying what it had already seen (silently), and then goes on from its
//! cursor. Findings are filed into incidents before the cursor moves; filing is idempotent (a
//! finding's fingerprint is unique), so a crash in between files nothing twice. A burst that
//! grows replaces its stored detection (keyed by rule and first audit ID).
//!
//! A stream that goes quiet with requests still waiting for their last stage reports them as
//! they are, as `kir hunt` does at the end of a file: the decision is stored as a `flush` event,
//! so that a replay makes it at the same place.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use kir_audit::{Origin, Record};
use kir_detect::Finding;
use kir_hunt::{Detector, Found};
use kir_store::{Detection, NewEvent, StoredEvent};

use crate::{Engine, Shared, now_ms};

/// The cursor's name in the store.
pub const CURSOR: &str = "live";
const PAGE: i64 = 5_000;

/// Runs detection until the service stops (and the stream is drained).
pub fn run(shared: Arc<Shared>, rt: tokio::runtime::Handle) {
    loop {
        if !shared.leading.load(Ordering::SeqCst) {
            // A follower: another replica detects; this one waits to be asked to.
            if shared.stopping.load(Ordering::SeqCst) {
                return;
            }
            rt.block_on(async {
                let _ = tokio::time::timeout(Duration::from_millis(250), shared.wake.notified()).await;
            });
            continue;
        }
        let engine = shared.engine();
        let generation = shared.generation.load(Ordering::SeqCst);
        match generation_run(&shared, &engine, generation, &rt) {
            Ok(Stop::Done) => return,
            Ok(Stop::Reload) => continue,
            Err(e) => {
                tracing::warn!(error = %e, "live detection stopped by a store error; replaying from the store in 1 s");
                std::thread::sleep(Duration::from_secs(1));
                if shared.stopping.load(Ordering::SeqCst) {
                    return;
                }
            }
        }
    }
}

enum Stop {
    Done,
    Reload,
}

fn decode(event: &StoredEvent, detector: &mut Detector, out: &mut Vec<Found>) {
    if event.kind == "flush" {
        detector.flush(out);
        return;
    }
    let origin =
        Origin { path: "kir-serve".into(), line: event.seq as u64, cluster: event.cluster.as_deref().map(Into::into) };
    let (mut records, mut skipped) = (Vec::new(), Vec::new());
    kir_audit::decode(&event.body, &origin, &mut records, &mut skipped);
    for record in records {
        let record = match record {
            Record::Falco(a) if event.kind != "falco" => {
                // An alert sent to the audit receiver stays out of audit detection.
                let _ = a;
                continue;
            }
            r => r,
        };
        detector.push(record, out);
    }
}

fn generation_run(
    shared: &Shared,
    engine: &Engine,
    generation: u64,
    rt: &tokio::runtime::Handle,
) -> kir_store::Result<Stop> {
    let store = &shared.store;
    let mut detector = Detector::new(&engine.rules, engine.roles.clone(), 100_000);
    detector.track_bursts();
    let cursor = rt.block_on(store.cursor(CURSOR))?;
    // Rebuild what detection knew: stage merging, correlation windows, roles.
    let mut seq = 0;
    let mut sink = Vec::new();
    'replay: while seq < cursor {
        let page = rt.block_on(store.events_after(seq, PAGE))?;
        if page.is_empty() {
            break;
        }
        for event in &page {
            if event.seq > cursor {
                break 'replay;
            }
            decode(event, &mut detector, &mut sink);
            seq = event.seq;
        }
        sink.clear();
        detector.take_grown();
    }
    if cursor > 0 {
        tracing::info!(events = seq, "live detection resumed from the store");
    }
    let mut idle_since = Instant::now();
    let mut flushed_at = -1;
    let mut silence_said = false;
    loop {
        if shared.generation.load(Ordering::SeqCst) != generation || !shared.leading.load(Ordering::SeqCst) {
            return Ok(Stop::Reload);
        }
        let page = rt.block_on(store.events_after(seq, PAGE))?;
        let last_stored = rt.block_on(store.last_event_seq())?;
        shared.metrics.detection_lag.store(last_stored - page.last().map_or(seq, |e| e.seq), Ordering::Relaxed);
        if page.is_empty() {
            if shared.stopping.load(Ordering::SeqCst) {
                return Ok(Stop::Done);
            }
            let idle = idle_since.elapsed();
            if detector.pending() > 0 && idle >= shared.config.flush_after && flushed_at != seq {
                flushed_at = seq;
                shared.metrics.stages_missing.fetch_add(detector.pending() as u64, Ordering::Relaxed);
                let marker =
                    NewEvent { key: format!("flush:{seq}"), kind: "flush".into(), body: "{}".into(), cluster: None };
                rt.block_on(store.append_events(&[marker], "kir", now_ms()))?;
                continue;
            }
            if let Some(limit) = shared.config.silence_after
                && idle >= limit
                && !silence_said
            {
                silence_said = true;
                shared.metrics.silences.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    seconds = idle.as_secs(),
                    "no audit event for longer than allowed: is the apiserver's webhook still sending?"
                );
            }
            rt.block_on(async {
                let _ = tokio::time::timeout(Duration::from_millis(250), shared.wake.notified()).await;
            });
            continue;
        }
        idle_since = Instant::now();
        silence_said = false;
        let mut found = Vec::new();
        for event in &page {
            decode(event, &mut detector, &mut found);
        }
        let last = page.last().map_or(seq, |e| e.seq);
        let oldest_received = page.iter().map(|e| e.received_at).min().unwrap_or_else(now_ms);
        let now = now_ms();
        let mut detections = Vec::new();
        let mut to_file: Vec<Finding> = Vec::new();
        for f in found {
            let (key, finding) = match f {
                Found::Detection(f) => (kir_store::fingerprint(&f), f),
                Found::Burst { finding, .. } => (burst_key(&finding), finding),
            };
            detections.push(detection(key, &finding, now));
            to_file.push(finding);
        }
        for index in detector.take_grown() {
            if let Some(b) = detector.burst(index) {
                detections.push(detection(burst_key(b), b, now));
            }
        }
        if !to_file.is_empty() {
            let (report, _, sent) =
                rt.block_on(kir_app::file_findings(store, &engine.plan, &to_file, "kir", now, true))?;
            for p in &sent.problems {
                tracing::warn!("{p}");
            }
            shared.metrics.incidents_opened.fetch_add(report.opened.len() as u64, Ordering::Relaxed);
            for id in &report.opened {
                tracing::info!(incident = id, "incident opened");
            }
            if let Ok(mut by_severity) = shared.metrics.findings.lock() {
                for f in &to_file {
                    by_severity[f.severity as usize] += 1;
                }
            }
        }
        rt.block_on(store.put_detections(CURSOR, &detections, last))?;
        shared.metrics.detection_latency.observe((now_ms() - oldest_received).max(0) as f64 / 1000.0);
        seq = last;
    }
}

/// A burst's identity while it grows: its rule and its first request.
fn burst_key(f: &Finding) -> String {
    format!("burst:{}:{}", f.rule_id, f.audit_ids.first().map(String::as_str).unwrap_or(""))
}

fn detection(key: String, f: &Finding, now: i64) -> Detection {
    Detection {
        id: 0,
        detection_key: key,
        rule_id: f.rule_id.clone(),
        severity_rank: f.severity as i64,
        event_time: f.time.map(|t| t.as_millisecond()),
        detected_at: now,
        actor: f.actor.user.clone(),
        namespace: f.object.namespace.clone(),
        cluster: f.cluster.clone(),
        body: serde_json::to_string(f).unwrap_or_default(),
    }
}
