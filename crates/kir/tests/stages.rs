//! The stages of one request are one request, in whatever order the log holds them.

mod common;

use serde_json::Value;

#[test]
fn a_request_whose_last_stage_comes_first_is_reported_once() {
    let recording = common::repo("crates/kir-drill/scenarios/stratus-privileged-pod.audit.jsonl");
    let text = std::fs::read_to_string(recording).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    // The pod create's two stages, swapped: ResponseComplete before RequestReceived.
    let at = lines.iter().position(|l| l.contains("\"verb\":\"create\"") && l.contains("RequestReceived")).unwrap();
    assert!(lines[at + 1].contains("ResponseComplete"));
    lines.swap(at, at + 1);
    let dir = tempfile::tempdir().unwrap();
    let swapped = dir.path().join("swapped.jsonl");
    std::fs::write(&swapped, lines.join("\n") + "\n").unwrap();
    let findings: Vec<Value> = common::hunt_jsonl(&["--rule", "privileged-container"], &swapped);
    assert_eq!(findings.len(), 1, "one request, one finding: {findings:?}");
    let in_order = common::hunt_jsonl(
        &["--rule", "privileged-container"],
        &common::repo("crates/kir-drill/scenarios/stratus-privileged-pod.audit.jsonl"),
    );
    assert_eq!(in_order.len(), 1);
    assert_eq!(findings[0]["audit_ids"], in_order[0]["audit_ids"]);
}
