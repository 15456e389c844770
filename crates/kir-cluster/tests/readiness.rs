//! What `kir readiness` asks the live cluster, through the mock API server: lists (read-only,
//! the recorded answers kept as sent) and, for the playbooks' containment actions, one access
//! review per permission, cluster-wide.

mod common;

use common::*;
use http::Method;
use serde_json::json;

#[tokio::test]
async fn a_list_is_the_recorded_answer_and_a_refusal_is_named() {
    let forbidden = serde_json::to_vec(&json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "clusterroles.rbac.authorization.k8s.io is forbidden: User \"alice\" cannot list resource \"clusterroles\" in API group \"rbac.authorization.k8s.io\" at the cluster scope",
        "reason": "Forbidden", "details": {"group": "rbac.authorization.k8s.io", "kind": "clusterroles"}, "code": 403}))
    .unwrap();
    // The recorded list, cut in two pages joined by a continue token, as the API server pages.
    let whole = recorded_json("GET_apis_rbac.authorization.k8s.io_v1_clusterrolebindings.json");
    let items = whole["items"].as_array().unwrap().clone();
    let mut first = whole.clone();
    first["items"] = json!(items[..30].to_vec());
    first["metadata"]["continue"] = json!("eyJ2IjoibWV0YS5rOHMuaW8vdjEiLCJydiI6NDIsInN0YXJ0IjoieCJ9");
    let mut second = whole.clone();
    second["items"] = json!(items[30..].to_vec());
    let (client, server) = mock(vec![
        get("/apis/rbac.authorization.k8s.io/v1/clusterrolebindings?limit=500", serde_json::to_vec(&first).unwrap()),
        get(
            "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings?limit=500&continue=eyJ2IjoibWV0YS5rOHMuaW8vdjEiLCJydiI6NDIsInN0YXJ0IjoieCJ9",
            serde_json::to_vec(&second).unwrap(),
        ),
        call(Method::GET, "/apis/rbac.authorization.k8s.io/v1/clusterroles?limit=500", 403, forbidden),
    ]);
    let list =
        kir_cluster::list(&client, "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", "clusterrolebindings")
            .await
            .unwrap();
    assert_eq!(list["kind"], "ClusterRoleBindingList");
    assert_eq!(list["items"].as_array().unwrap().len(), items.len(), "both pages");
    assert!(list["items"].as_array().unwrap().iter().any(|b| b["metadata"]["name"] == "cluster-admin"));
    assert!(list["metadata"].get("continue").is_none());
    let err = kir_cluster::list(&client, "/apis/rbac.authorization.k8s.io/v1/clusterroles", "clusterroles")
        .await
        .unwrap_err();
    assert!(matches!(err, kir_cluster::Error::Forbidden { .. }), "{err:?}");
    assert!(err.to_string().contains("list clusterroles (cluster-wide)"), "{err}");
    assert!(!err.is_connection(), "a refused list is noted, the others go on");
    server.await.unwrap();
}

#[tokio::test]
async fn containment_permissions_are_asked_cluster_wide_one_review_each() {
    let wanted = kir_cluster::contain::permissions_for_action("isolate-pod");
    assert_eq!(wanted.len(), 3);
    let (client, server) = mock(vec![
        allowed(json!({"verb": "create", "group": "networking.k8s.io", "resource": "networkpolicies"})),
        allowed(json!({"verb": "patch", "resource": "pods"})),
        review(json!({"verb": "delete", "group": "networking.k8s.io", "resource": "networkpolicies"}), false),
    ]);
    let missing = kir_cluster::contain::missing_permissions(&client, &wanted).await.unwrap();
    let missing: Vec<String> = missing.iter().map(|p| p.to_string()).collect();
    assert_eq!(missing, ["delete networkpolicies.networking.k8s.io (cluster-wide)"]);
    server.await.unwrap();
    // Actions that change nothing in the cluster need nothing.
    assert!(kir_cluster::contain::permissions_for_action("notify").is_empty());
    assert!(kir_cluster::contain::permissions_for_action("collect-evidence").is_empty());
    let drain = kir_cluster::contain::permissions_for_action("drain-node");
    assert!(drain.iter().any(|p| p.to_string() == "create pods/eviction (cluster-wide)"), "{drain:?}");
}
