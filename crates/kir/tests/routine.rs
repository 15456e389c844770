//! Everyday work is learned from the log: an identity that lists every Secret every few
//! minutes for an hour is an operator; one that lists them once, or in one burst, is not.

mod common;

use serde_json::json;

fn list_secrets(n: usize, minute: u32, second: u32, user: &str) -> String {
    let at = format!("2026-11-27T{:02}:{:02}:{second:02}.000000Z", 10 + minute / 60, minute % 60);
    json!({"kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata", "auditID": format!("5ec1e75a-0000-4000-8000-{n:012}"),
        "stage": "ResponseComplete", "requestURI": "/api/v1/secrets?limit=500", "verb": "list",
        "user": {"username": user, "groups": ["system:serviceaccounts", "system:authenticated"]}, "sourceIPs": ["10.0.3.17"],
        "userAgent": "controller/v0.9", "objectRef": {"resource": "secrets", "apiVersion": "v1"},
        "responseStatus": {"metadata": {}, "code": 200}, "requestReceivedTimestamp": at, "stageTimestamp": at,
        "annotations": {"authorization.k8s.io/decision": "allow", "authorization.k8s.io/reason": ""}})
    .to_string()
}

#[test]
fn an_operator_listing_all_day_is_left_out_and_a_one_off_is_reported() {
    let operator = "system:serviceaccount:external-secrets:external-secrets";
    let thief = "system:serviceaccount:tools:ops-console";
    let prober = "system:serviceaccount:ci:runner";
    let mut lines: Vec<String> = (0..7).map(|i| list_secrets(i, i as u32 * 10, 0, operator)).collect();
    lines.push(list_secrets(100, 33, 5, thief));
    // Five lists within a minute: a burst, not everyday work.
    lines.extend((0..5).map(|i| list_secrets(200 + i, 40, i as u32 * 10, prober)));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    let out = common::kir()
        .args(["hunt", "--format", "jsonl", "--rule", "secrets-listed-across-namespaces"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success());
    let findings: Vec<serde_json::Value> =
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let by = |u: &str| findings.iter().filter(|f| f["actor"]["user"] == u).count();
    assert_eq!(by(operator), 0, "the operator's everyday listing");
    assert_eq!(by(thief), 1, "a one-off listing");
    assert_eq!(by(prober), 5, "a burst is not routine");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("left out as routine: 7 findings") && stderr.contains(operator), "{stderr}");
}
