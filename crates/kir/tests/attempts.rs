//! Attempts that failed are still attacks: a request that authorization allowed and that then
//! failed is rated as its success would be; a refused attempt at privilege is reported; plain
//! refusals of everyday reads stay quiet. On the recorded incident's own requests.

mod common;

use common::{example, kir};
use serde_json::Value;

/// The recorded exec that read a service-account token (auditID 68e6b7bb-…), as logged.
fn recorded_exec() -> Value {
    let text = {
        use std::io::Read;
        let mut s = String::new();
        flate2::read::GzDecoder::new(std::fs::File::open(example()).unwrap()).read_to_string(&mut s).unwrap();
        s
    };
    let line = text
        .lines()
        .find(|l| l.contains("68e6b7bb-7d5a-4ac0-9a5e-52db246d6313") && l.contains("ResponseComplete"))
        .unwrap();
    serde_json::from_str(line).unwrap()
}

fn findings_of(events: &[Value]) -> Vec<Value> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let text: Vec<String> = events.iter().map(|e| e.to_string()).collect();
    std::fs::write(&path, text.join("\n") + "\n").unwrap();
    common::hunt_jsonl(&[], &path)
}

fn titles(findings: &[Value], min: &[&str]) -> Vec<String> {
    findings
        .iter()
        .filter(|f| min.contains(&f["severity"].as_str().unwrap_or("")))
        .map(|f| f["title"].as_str().unwrap().to_string())
        .collect()
}

const MEDIUM_UP: &[&str] = &["medium", "high", "critical"];

#[test]
fn an_exec_the_kubelet_failed_is_rated_as_the_exec_and_a_refused_one_is_not() {
    let served = findings_of(&[recorded_exec()]);
    let served_titles = titles(&served, MEDIUM_UP);
    assert!(!served_titles.is_empty(), "the recorded exec is found: {served:?}");

    // The kubelet could not be reached: authorized, then 500.
    let mut failed = recorded_exec();
    failed["responseStatus"] = serde_json::json!({"metadata": {}, "status": "Failure", "message": "error dialing backend: dial tcp 10.0.3.17:10250: connect: connection refused", "code": 500});
    let failed_titles = titles(&findings_of(&[failed]), MEDIUM_UP);
    assert_eq!(failed_titles, served_titles, "authorized-but-failed is rated as the success");

    // Authorization said no: nothing ran, and no exec finding.
    let mut refused = recorded_exec();
    refused["responseStatus"] =
        serde_json::json!({"metadata": {}, "status": "Failure", "reason": "Forbidden", "code": 403});
    refused["annotations"]["authorization.k8s.io/decision"] = "forbid".into();
    let refused = findings_of(&[refused]);
    assert!(
        !refused.iter().any(|f| f["title"].as_str().unwrap().to_lowercase().contains("exec")),
        "a refused exec is not an exec: {refused:?}"
    );
}

#[test]
fn a_refused_cluster_admin_binding_is_intent_and_a_refused_read_is_quiet() {
    // What kube-apiserver logs when authorization refuses a create: no body (it is decoded only
    // after authorization) and no object name (it comes from the body).
    let refused_binding: Value = serde_json::json!({
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "RequestResponse",
        "auditID": "6a4f5b54-2f0e-4c52-9d59-2c1a2c7b7a01", "stage": "ResponseComplete",
        "requestURI": "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings?fieldManager=kubectl-create", "verb": "create",
        "user": {"username": "system:serviceaccount:tools:ops-console", "groups": ["system:serviceaccounts", "system:serviceaccounts:tools", "system:authenticated"]},
        "sourceIPs": ["127.0.0.1"], "userAgent": "kubectl/v1.32.4 (linux/amd64) kubernetes/4cb5f07",
        "objectRef": {"resource": "clusterrolebindings", "apiGroup": "rbac.authorization.k8s.io", "apiVersion": "v1"},
        "responseStatus": {"metadata": {}, "status": "Failure", "message": "clusterrolebindings.rbac.authorization.k8s.io is forbidden: User \"system:serviceaccount:tools:ops-console\" cannot create resource \"clusterrolebindings\" in API group \"rbac.authorization.k8s.io\" at the cluster scope", "reason": "Forbidden", "code": 403},
        "requestReceivedTimestamp": "2026-11-27T23:55:00.000000Z", "stageTimestamp": "2026-11-27T23:55:00.002000Z",
        "annotations": {"authorization.k8s.io/decision": "forbid", "authorization.k8s.io/reason": ""}
    });
    let found = findings_of(std::slice::from_ref(&refused_binding));
    assert!(
        found.iter().any(|f| MEDIUM_UP.contains(&f["severity"].as_str().unwrap())
            && f["audit_ids"]
                .as_array()
                .is_some_and(|ids| ids.iter().any(|id| id == "6a4f5b54-2f0e-4c52-9d59-2c1a2c7b7a01"))),
        "a refused binding, as the API server logs it, is found at medium or above: {found:?}"
    );
    assert!(
        !titles(&found, &["high", "critical"]).iter().any(|t| t.contains("Powerful role bound")),
        "refused: not bound"
    );

    // A log that does carry the refused body (a recorder that keeps it) names the role.
    let mut with_body = refused_binding.clone();
    with_body["requestObject"] = serde_json::json!({"kind": "ClusterRoleBinding", "apiVersion": "rbac.authorization.k8s.io/v1", "metadata": {"name": "backdoor"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"kind": "ServiceAccount", "name": "ops-console", "namespace": "tools"}]});
    let found = findings_of(std::slice::from_ref(&with_body));
    assert!(titles(&found, MEDIUM_UP).iter().any(|t| t == "Privilege escalation attempt refused"), "{found:?}");

    // The developer's recorded refused `list secrets` (auditID 40f3957c-…): nothing at medium or above.
    let out =
        kir().args(["hunt", "-q", "--format", "jsonl", "--min-severity", "medium"]).arg(example()).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("40f3957c-3ee5-470f-810c-4c81adba38e7"), "a developer's single 403 stays quiet");
}
