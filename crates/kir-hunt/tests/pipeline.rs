//! The pipelined hunt (a reader, several decoders, processing in the order read) reports what the
//! hunt on one thread reports, finding for finding, when its batches are small enough to be
//! decoded out of order: the bundled incident and the attack-class recordings, read together.

use std::path::PathBuf;

use kir_detect::{Placeholders, RuleSet};
use kir_hunt::{HuntOptions, HuntReport, hunt};

fn inputs() -> Vec<kir_audit::Input> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let paths = [
        root.join("examples/exposed-console-cryptojack.audit.jsonl.gz"),
        root.join("crates/kir/tests/data/attack-classes/people.jsonl.gz"),
        root.join("crates/kir/tests/data/attack-classes/stolen-tokens.jsonl.gz"),
        root.join("crates/kir/tests/data/attack-classes/ordinary-operations.jsonl.gz"),
    ];
    kir_audit::discover(&paths).expect("the recordings are in the repository")
}

/// Everything a report says, as text.
fn summary(report: &HuntReport) -> String {
    let findings = serde_json::to_string_pretty(&report.findings).expect("findings serialize");
    let routine = serde_json::to_string(&report.routine).expect("routine serializes");
    let stats = serde_json::to_string(&report.stats).expect("stats serialize");
    format!("{findings}\n{routine}\n{stats}\n{:?}", report.file_problems)
}

#[test]
fn every_thread_count_and_batch_size_reports_the_same() {
    let rules = RuleSet::builtin(&Placeholders::new());
    let inputs = inputs();
    let one = hunt(&inputs, &rules, &HuntOptions { threads: 1, ..Default::default() });
    assert!(one.findings.len() > 50, "the recordings give findings: {}", one.findings.len());
    let expected = summary(&one);
    for threads in [2, 3] {
        for batch_kb in [4, 64, 1024] {
            let mut options = HuntOptions { threads, ..Default::default() };
            options.read.batch_bytes = batch_kb << 10;
            let report = hunt(&inputs, &rules, &options);
            assert!(summary(&report) == expected, "{threads} threads, batches of {batch_kb} KiB differ");
        }
    }
}
