//! The service's own figures, in Prometheus's text format at `/metrics`.

use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

#[derive(Default)]
pub struct Histogram {
    counts: [AtomicU64; BUCKETS.len()],
    total: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, seconds: f64) {
        for (i, b) in BUCKETS.iter().enumerate() {
            if seconds <= *b {
                self.counts[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.total.fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add((seconds.max(0.0) * 1e6) as u64, Ordering::Relaxed);
    }

    fn write(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (i, b) in BUCKETS.iter().enumerate() {
            let _ = writeln!(out, "{name}_bucket{{le=\"{b}\"}} {}", self.counts[i].load(Ordering::Relaxed));
        }
        let total = self.total.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {total}");
        let _ = writeln!(out, "{name}_sum {}", self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6);
        let _ = writeln!(out, "{name}_count {total}");
    }
}

#[derive(Default)]
pub struct Metrics {
    pub events_received: AtomicU64,
    pub events_stored: AtomicU64,
    pub events_duplicate: AtomicU64,
    pub events_skipped: AtomicU64,
    pub batches_accepted: AtomicU64,
    pub batches_refused: AtomicU64,
    pub batches_failed: AtomicU64,
    /// Events stored and not yet through detection.
    pub detection_lag: AtomicI64,
    pub findings: Mutex<[u64; 5]>,
    pub incidents_opened: AtomicU64,
    /// Requests whose earlier stage came and whose last had not when the stream went quiet.
    pub stages_missing: AtomicU64,
    pub silences: AtomicU64,
    /// Times this replica took the lead.
    pub leader_changes: AtomicU64,
    /// 1 while this replica leads.
    pub leading: std::sync::atomic::AtomicBool,
    pub detection_latency: Histogram,
    pub request_latency: Histogram,
}

impl Metrics {
    pub fn render(&self, rules: usize, in_flight: usize) -> String {
        let mut out = String::new();
        let counter = |out: &mut String, name: &str, help: &str, v: u64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}");
        };
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        counter(
            &mut out,
            "kir_events_received_total",
            "Events in the bodies the receivers took.",
            l(&self.events_received),
        );
        counter(&mut out, "kir_events_stored_total", "Events stored for the first time.", l(&self.events_stored));
        counter(
            &mut out,
            "kir_events_duplicate_total",
            "Events the store already had (a retried batch).",
            l(&self.events_duplicate),
        );
        counter(&mut out, "kir_events_skipped_total", "Units of a body that were not events.", l(&self.events_skipped));
        counter(&mut out, "kir_batches_accepted_total", "Batches stored and acknowledged.", l(&self.batches_accepted));
        counter(
            &mut out,
            "kir_batches_refused_total",
            "Batches answered 429 (back-pressure).",
            l(&self.batches_refused),
        );
        counter(
            &mut out,
            "kir_batches_failed_total",
            "Batches that could not be stored (answered 5xx).",
            l(&self.batches_failed),
        );
        counter(
            &mut out,
            "kir_incidents_opened_total",
            "Incidents opened by live detection.",
            l(&self.incidents_opened),
        );
        counter(
            &mut out,
            "kir_stream_missing_stages_total",
            "Requests reported without their last stage when the stream went quiet.",
            l(&self.stages_missing),
        );
        counter(
            &mut out,
            "kir_stream_silences_total",
            "Times the audit stream was silent longer than allowed.",
            l(&self.silences),
        );
        let _ = writeln!(
            out,
            "# HELP kir_findings_total Findings of live detection by severity.\n# TYPE kir_findings_total counter"
        );
        if let Ok(f) = self.findings.lock() {
            for (i, level) in kir_detect::Level::ALL.iter().enumerate() {
                let _ = writeln!(out, "kir_findings_total{{severity=\"{level}\"}} {}", f[i]);
            }
        }
        let gauge = |out: &mut String, name: &str, help: &str, v: i64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        };
        gauge(
            &mut out,
            "kir_detection_queue_depth",
            "Events stored and not yet through detection.",
            self.detection_lag.load(Ordering::Relaxed),
        );
        gauge(
            &mut out,
            "kir_leader",
            "1 while this replica leads (runs live detection and the escalation ticker).",
            self.leading.load(Ordering::Relaxed) as i64,
        );
        counter(&mut out, "kir_leader_acquired_total", "Times this replica took the lead.", l(&self.leader_changes));
        gauge(&mut out, "kir_receiver_batches_in_flight", "Batches being stored now.", in_flight as i64);
        gauge(&mut out, "kir_rules_loaded", "Detection and correlation rules loaded.", rules as i64);
        self.detection_latency.write(
            &mut out,
            "kir_detection_latency_seconds",
            "From a batch stored to its findings filed.",
        );
        self.request_latency.write(&mut out, "kir_http_request_duration_seconds", "HTTP request latency.");
        out
    }
}
