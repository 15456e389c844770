//! A burst is one finding with every request in it: those before its threshold was met and
//! those after, however long it lasts; a pause longer than the rule's timespan starts another.

mod common;

use common::kir;
use serde_json::{Value, json};

/// A developer's refused `list secrets` as the recorded incident logged it, at `second` past
/// 23:51:00, with its own auditID.
fn refusal(n: usize, second: f64, user: &str) -> String {
    let at = jiff::Timestamp::from_second(1_764_287_460).unwrap() + jiff::SignedDuration::from_secs_f64(second);
    json!({"kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata", "auditID": format!("00000000-0000-4000-8000-{n:012}"),
        "stage": "ResponseComplete", "requestURI": "/api/v1/namespaces/storefront/secrets?limit=500", "verb": "list",
        "user": {"username": user, "groups": ["dev-team", "system:authenticated"]}, "sourceIPs": ["10.0.3.17"],
        "userAgent": "kubectl/v1.32.4 (linux/amd64) kubernetes/4cb5f07",
        "objectRef": {"resource": "secrets", "namespace": "storefront", "apiVersion": "v1"},
        "responseStatus": {"metadata": {}, "status": "Failure", "reason": "Forbidden", "code": 403},
        "requestReceivedTimestamp": at.to_string(), "stageTimestamp": at.to_string(),
        "annotations": {"authorization.k8s.io/decision": "forbid", "authorization.k8s.io/reason": ""}})
    .to_string()
}

fn bursts(lines: &[String]) -> Vec<Value> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    common::hunt_jsonl(&["--rule", "forbidden-burst"], &path)
}

#[test]
fn one_burst_is_one_finding_naming_every_request() {
    // 40 refusals, 3 s apart: two minutes of probing, threshold (10 in 1m) met at the 10th.
    let lines: Vec<String> = (0..40).map(|i| refusal(i, 3.0 * i as f64, "mallory")).collect();
    let found = bursts(&lines);
    assert_eq!(found.len(), 1, "one burst, one finding: {found:?}");
    let ids: Vec<&str> = found[0]["audit_ids"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert_eq!(ids.len(), 40, "every request of the burst, after the threshold too");
    assert_eq!(ids[0], "00000000-0000-4000-8000-000000000000");
    assert_eq!(found[0]["event_count"], 40);
}

#[test]
fn a_pause_longer_than_the_timespan_starts_another_burst_and_actors_stay_apart() {
    let mut lines: Vec<String> = (0..12).map(|i| refusal(i, i as f64, "mallory")).collect();
    // Five minutes later, another 12.
    lines.extend((12..24).map(|i| refusal(i, 300.0 + i as f64, "mallory")));
    // A developer's few refusals in between: below the threshold, no finding.
    lines.extend((24..27).map(|i| refusal(i, 100.0 + i as f64, "alice")));
    let found = bursts(&lines);
    assert_eq!(found.len(), 2, "{found:?}");
    for f in &found {
        assert_eq!(f["actor"]["user"], "mallory");
        assert_eq!(f["audit_ids"].as_array().unwrap().len(), 12);
    }
}

#[test]
fn the_recorded_incident_still_reports_its_bursts_once() {
    let out = kir()
        .args(["hunt", "-q", "--format", "jsonl", "--rule", "secret-enumeration-burst", "--rule", "forbidden-burst"])
        .arg(common::example())
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let mut seen = std::collections::BTreeSet::new();
    for line in text.lines() {
        let f: Value = serde_json::from_str(line).unwrap();
        assert!(
            seen.insert((f["rule_id"].to_string(), f["actor"]["user"].to_string(), f["time"].to_string())),
            "a burst reported twice: {line}"
        );
    }
}
