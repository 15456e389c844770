//! A binding is rated by the power of the role it grants, learned from the roles the logs
//! created before it and from a cluster snapshot, whatever the role is called.

mod common;

use serde_json::{Value, json};

fn request(n: u32, verb: &str, resource: &str, name: &str, body: Value) -> String {
    let at = format!("2026-11-27T23:50:{n:02}.000000Z");
    let group = "rbac.authorization.k8s.io";
    let uri = if verb == "create" {
        format!("/apis/{group}/v1/{resource}")
    } else {
        format!("/apis/{group}/v1/{resource}/{name}")
    };
    json!({"kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "RequestResponse",
        "auditID": format!("7b0c6b0e-0000-4000-8000-{n:012}"), "stage": "ResponseComplete", "requestURI": uri, "verb": verb,
        "user": {"username": "system:serviceaccount:tools:ops-console", "groups": ["system:serviceaccounts", "system:serviceaccounts:tools", "system:authenticated"]},
        "sourceIPs": ["127.0.0.1"], "userAgent": "kubectl/v1.32.4 (linux/amd64) kubernetes/4cb5f07",
        "objectRef": {"resource": resource, "name": name, "apiGroup": group, "apiVersion": "v1"},
        "responseStatus": {"metadata": {}, "code": if verb == "create" { 201 } else { 200 }},
        "requestObject": body, "requestReceivedTimestamp": at, "stageTimestamp": at,
        "annotations": {"authorization.k8s.io/decision": "allow", "authorization.k8s.io/reason": ""}})
    .to_string()
}

fn role(n: u32, name: &str, rules: Value) -> String {
    request(
        n,
        "create",
        "clusterroles",
        name,
        json!({"kind": "ClusterRole", "apiVersion": "rbac.authorization.k8s.io/v1", "metadata": {"name": name}, "rules": rules}),
    )
}

fn binding(n: u32, role: &str) -> String {
    request(
        n,
        "create",
        "clusterrolebindings",
        &format!("{role}-binding"),
        json!({"kind": "ClusterRoleBinding", "apiVersion": "rbac.authorization.k8s.io/v1",
        "metadata": {"name": format!("{role}-binding")}, "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": [{"kind": "ServiceAccount", "name": "ops-console", "namespace": "tools"}]}),
    )
}

fn everything() -> Value {
    json!([{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}])
}

fn hunt(lines: &[String], extra: &[&str]) -> Vec<Value> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    let mut args = vec!["--rule", "role-power-bound"];
    args.extend_from_slice(extra);
    common::hunt_jsonl(&args, &path)
}

#[test]
fn a_renamed_everything_role_created_earlier_in_the_log_makes_its_binding_high() {
    let found = hunt(&[role(1, "ops-helper", everything()), binding(2, "ops-helper")], &[]);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["severity"], "high");
    assert_eq!(found[0]["object"]["name"], "ops-helper-binding");
}

#[test]
fn harmless_unknown_and_deleted_roles_stay_quiet() {
    let viewer = json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}]);
    assert!(hunt(&[role(1, "pod-viewer", viewer), binding(2, "pod-viewer")], &[]).is_empty(), "a harmless role");
    assert!(hunt(&[binding(2, "ops-helper")], &[]).is_empty(), "a role nothing says anything about");
    let deleted =
        request(2, "delete", "clusterroles", "ops-helper", json!({"kind": "DeleteOptions", "apiVersion": "v1"}));
    assert!(
        hunt(&[role(1, "ops-helper", everything()), deleted, binding(3, "ops-helper")], &[]).is_empty(),
        "deleted before"
    );
    // A binding that comes before the role is created grants nothing yet.
    assert!(hunt(&[binding(1, "ops-helper"), role(2, "ops-helper", everything())], &[]).is_empty());
}

#[test]
fn a_cluster_snapshot_tells_what_an_older_role_grants() {
    let dir = tempfile::tempdir().unwrap();
    let dump = dir.path().join("dump.json");
    std::fs::write(
        &dump,
        json!({"apiVersion": "v1", "kind": "List", "items": [
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "ops-helper"},
             "rules": [{"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles"], "verbs": ["escalate", "bind"]}]},
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "metrics-reader"},
             "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["list"]}]}
        ]})
        .to_string(),
    )
    .unwrap();
    let state = dump.to_str().unwrap();
    let found = hunt(&[binding(1, "ops-helper"), binding(2, "metrics-reader")], &["--cluster-state", state]);
    assert_eq!(found.len(), 2, "escalate and every Secret: {found:?}");
    common::kir().args(["hunt", "--cluster-state", "/nonexistent.json"]).arg(common::example()).assert().code(2);
}
