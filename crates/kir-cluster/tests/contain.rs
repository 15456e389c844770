//! Containment through kube-rs against a `tower-test` mock API server: each request's method,
//! path, query, content type and body are checked; answers are recorded v1.26 responses (or
//! objects written in the API's shapes where none was recorded). Every action is planned from
//! GETs, checked with SelfSubjectAccessReviews, then applied.

use std::time::Duration;

use http::Method;
use kir_cluster::contain::{self, Labelled, Subject};
use serde_json::{Value, json};

mod common;

use common::*;

const POD_NAME: &str = "checkout-api-64db89f569-blm5l";
const POD: &str = "/api/v1/namespaces/checkout/pods/checkout-api-64db89f569-blm5l";
const POLICY: &str = "/apis/networking.k8s.io/v1/namespaces/checkout/networkpolicies/kir-quarantine-checkout-api-64db89f569-blm5l-a8b7f1a89a";
const POLICIES: &str = "/apis/networking.k8s.io/v1/namespaces/checkout/networkpolicies";
const NODE: &str = "/api/v1/nodes/k8s-real-node";

fn pod_json() -> Vec<u8> {
    recorded("GET_api_v1_namespaces_checkout_pods_checkout-api-64db89f569-blm5l.json")
}

fn policy_for(value: &str) -> Value {
    json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": "kir-quarantine-checkout-api-64db89f569-blm5l-a8b7f1a89a", "namespace": "checkout",
            "labels": {"app.kubernetes.io/managed-by": "kir", "kir.dev/quarantine": value}},
        "spec": {"podSelector": {"matchLabels": {"kir.dev/quarantine": value}}, "policyTypes": ["Ingress", "Egress"], "ingress": [], "egress": []}
    })
}

fn isolate_reviews() -> Vec<Call> {
    vec![
        allowed(
            json!({"verb": "create", "group": "networking.k8s.io", "resource": "networkpolicies", "namespace": "checkout"}),
        ),
        allowed(json!({"verb": "patch", "resource": "pods", "namespace": "checkout", "name": POD_NAME})),
    ]
}

#[tokio::test]
async fn isolate_pod_labels_that_pod_only_and_denies_all_traffic_then_undoes() {
    let pod = pod_json();
    let mut labelled: Value = serde_json::from_slice(&pod).unwrap();
    labelled["metadata"]["labels"]["kir.dev/quarantine"] = json!("act-1");
    let labelled = serde_json::to_vec(&labelled).unwrap();
    let policy = policy_for("act-1");

    let mut calls = vec![get(POD, pod.clone()), call(Method::GET, POLICY, 404, not_found("networkpolicies"))];
    calls.extend(isolate_reviews());
    calls.push(
        call(Method::PATCH, POD, 200, labelled.clone())
            .body(json!({"metadata": {"labels": {"kir.dev/quarantine": "act-1"}}}), STRATEGIC),
    );
    calls.push(call(Method::POST, POLICIES, 201, serde_json::to_vec(&policy).unwrap()).body(policy.clone(), JSON));
    let (client, server) = mock(calls);
    let planned = contain::isolate_pod(&client, "checkout", POD_NAME, "act-1", &[]).await.unwrap();
    let changes = contain::apply(&client, &planned, false).await.unwrap();
    server.await.unwrap();
    assert_eq!(ops(&changes), ["patch", "create"]);
    assert_eq!(planned.before["policy_existed"], false);
    // Exactly one policy, selecting only the label put on that one pod, denying both ways.
    let created: Vec<_> = changes.iter().filter(|c| c.op == "create").collect();
    assert_eq!(created.len(), 1);
    assert_eq!(created[0].after["spec"]["podSelector"], json!({"matchLabels": {"kir.dev/quarantine": "act-1"}}));
    assert_eq!(created[0].after["spec"]["policyTypes"], json!(["Ingress", "Egress"]));

    // Again: labelled and the policy exists, nothing is asked or written.
    let (client, server) = mock(vec![get(POD, labelled.clone()), get(POLICY, serde_json::to_vec(&policy).unwrap())]);
    let planned = contain::isolate_pod(&client, "checkout", POD_NAME, "act-2", &[]).await.unwrap();
    let changes = contain::apply(&client, &planned, false).await.unwrap();
    server.await.unwrap();
    assert_eq!(ops(&changes), ["none"]);

    // Dry run: both writes carry dryRun=All.
    let mut calls = vec![get(POD, pod.clone()), call(Method::GET, POLICY, 404, not_found("networkpolicies"))];
    calls.extend(isolate_reviews());
    calls.push(call(Method::PATCH, &format!("{POD}?dryRun=All"), 200, labelled.clone()));
    calls.push(call(Method::POST, &format!("{POLICIES}?dryRun=All"), 201, serde_json::to_vec(&policy).unwrap()));
    let (client, server) = mock(calls);
    let planned = contain::isolate_pod(&client, "checkout", POD_NAME, "act-1", &[]).await.unwrap();
    contain::apply(&client, &planned, true).await.unwrap();
    server.await.unwrap();

    // Undo removes exactly what isolate added.
    let before = json!({"label": null, "policy_existed": false, "policy": "kir-quarantine-checkout-api-64db89f569-blm5l-a8b7f1a89a", "namespace": "checkout"});
    let (client, server) = mock(vec![
        allowed(
            json!({"verb": "delete", "group": "networking.k8s.io", "resource": "networkpolicies", "namespace": "checkout",
                "name": "kir-quarantine-checkout-api-64db89f569-blm5l-a8b7f1a89a"}),
        ),
        allowed(json!({"verb": "patch", "resource": "pods", "namespace": "checkout", "name": POD_NAME})),
        call(Method::DELETE, POLICY, 200, ok_status()),
        call(Method::PATCH, POD, 200, pod.clone())
            .body(json!({"metadata": {"labels": {"kir.dev/quarantine": null}}}), STRATEGIC),
    ]);
    let changes =
        contain::apply(&client, &contain::undo_isolate_pod("checkout", POD_NAME, &before), false).await.unwrap();
    server.await.unwrap();
    assert_eq!(ops(&changes), ["delete", "patch"]);
}

#[tokio::test]
async fn a_missing_permission_is_named_before_anything_changes() {
    // The identity may label pods but not create NetworkPolicies: no write is sent at all.
    let (client, server) = mock(vec![
        get(POD, pod_json()),
        call(Method::GET, POLICY, 404, not_found("networkpolicies")),
        review(
            json!({"verb": "create", "group": "networking.k8s.io", "resource": "networkpolicies", "namespace": "checkout"}),
            false,
        ),
        allowed(json!({"verb": "patch", "resource": "pods", "namespace": "checkout", "name": POD_NAME})),
    ]);
    let planned = contain::isolate_pod(&client, "checkout", POD_NAME, "act-1", &[]).await.unwrap();
    let err = contain::apply(&client, &planned, false).await.unwrap_err();
    server.await.unwrap();
    assert_eq!(
        err.to_string(),
        "missing permissions, so nothing was changed: create networkpolicies.networking.k8s.io in namespace checkout \
(ask for them, or use deploy/rbac.yaml)"
    );

    // Several missing: all are named at once.
    let (client, server) = mock(vec![
        get(NODE, recorded("GET_api_v1_nodes_k8s-real-node.json")),
        review(json!({"verb": "patch", "resource": "nodes", "name": "k8s-real-node"}), false),
    ]);
    let err =
        contain::apply(&client, &contain::cordon(&client, "k8s-real-node").await.unwrap(), false).await.unwrap_err();
    server.await.unwrap();
    assert!(err.to_string().contains("patch nodes \"k8s-real-node\" (cluster-wide)"), "{err}");

    // Reading is refused: the read permission is named (the recorded 403 of alice).
    let forbidden = recorded("GET_api_v1_namespaces_checkout_secrets.as-alice.json");
    let (client, server) = mock(vec![call(Method::GET, POD, 403, forbidden.clone())]);
    let err = contain::isolate_pod(&client, "checkout", POD_NAME, "act-3", &[]).await.unwrap_err();
    server.await.unwrap();
    assert!(err.to_string().starts_with("missing permission: get pods in namespace checkout"), "{err}");

    // A write refused after the preflight (RBAC changed in between): the label already put on
    // the pod is taken back, and the permission is named.
    let mut labelled: Value = serde_json::from_slice(&pod_json()).unwrap();
    labelled["metadata"]["labels"]["kir.dev/quarantine"] = json!("act-4");
    let mut calls = vec![get(POD, pod_json()), call(Method::GET, POLICY, 404, not_found("networkpolicies"))];
    calls.extend(isolate_reviews());
    calls.push(call(Method::PATCH, POD, 200, serde_json::to_vec(&labelled).unwrap()));
    calls.push(call(Method::POST, POLICIES, 403, forbidden));
    calls.push(
        call(Method::PATCH, POD, 200, pod_json())
            .body(json!({"metadata": {"labels": {"kir.dev/quarantine": null}}}), STRATEGIC),
    );
    let (client, server) = mock(calls);
    let planned = contain::isolate_pod(&client, "checkout", POD_NAME, "act-4", &[]).await.unwrap();
    let err = contain::apply(&client, &planned, false).await.unwrap_err();
    server.await.unwrap();
    assert!(err.to_string().starts_with("missing permission: create networkpolicies in namespace checkout"), "{err}");
}

#[tokio::test]
async fn cordon_is_idempotent_dry_runnable_and_undone() {
    let patch_nodes = || allowed(json!({"verb": "patch", "resource": "nodes", "name": "k8s-real-node"}));
    let (client, server) = mock(vec![
        get(NODE, recorded("GET_api_v1_nodes_k8s-real-node.json")),
        patch_nodes(),
        call(Method::PATCH, NODE, 200, recorded("PATCH_api_v1_nodes_k8s-real-node.json"))
            .body(recorded_json("PATCH_api_v1_nodes_k8s-real-node.request.json"), STRATEGIC),
    ]);
    let planned = contain::cordon(&client, "k8s-real-node").await.unwrap();
    let changes = contain::apply(&client, &planned, false).await.unwrap();
    server.await.unwrap();
    assert_eq!(planned.before, json!({"unschedulable": false}));
    assert_eq!((changes[0].op.as_str(), &changes[0].after), ("patch", &json!({"unschedulable": true})));

    // Again: the node is cordoned already, nothing is asked or patched.
    let (client, server) = mock(vec![get(NODE, recorded("GET_api_v1_nodes_k8s-real-node.cordoned.json"))]);
    let changes =
        contain::apply(&client, &contain::cordon(&client, "k8s-real-node").await.unwrap(), false).await.unwrap();
    server.await.unwrap();
    assert_eq!(ops(&changes), ["none"]);

    // Dry run: the server validates (dryRun=All), nothing persists.
    let (client, server) = mock(vec![
        get(NODE, recorded("GET_api_v1_nodes_k8s-real-node.json")),
        patch_nodes(),
        call(Method::PATCH, &format!("{NODE}?dryRun=All"), 200, recorded("PATCH_api_v1_nodes_k8s-real-node.json"))
            .body(json!({"spec": {"unschedulable": true}}), STRATEGIC),
    ]);
    contain::apply(&client, &contain::cordon(&client, "k8s-real-node").await.unwrap(), true).await.unwrap();
    server.await.unwrap();

    // Undo sends what kubectl uncordon sends.
    let (client, server) = mock(vec![
        patch_nodes(),
        call(Method::PATCH, NODE, 200, recorded("PATCH_api_v1_nodes_k8s-real-node.uncordon.json"))
            .body(recorded_json("PATCH_api_v1_nodes_k8s-real-node.uncordon.request.json"), STRATEGIC),
    ]);
    let changes =
        contain::apply(&client, &contain::undo_cordon("k8s-real-node", &planned.before), false).await.unwrap();
    server.await.unwrap();
    assert_eq!(changes[0].after, json!({"unschedulable": false}));

    // A node cordoned before kir came stays cordoned on undo: no request at all.
    let (client, server) = mock(vec![]);
    let changes =
        contain::apply(&client, &contain::undo_cordon("k8s-real-node", &json!({"unschedulable": true})), false)
            .await
            .unwrap();
    server.await.unwrap();
    assert_eq!(ops(&changes), ["none"]);
}

#[tokio::test]
async fn quarantine_cordons_and_taints_keeping_other_taints_then_undoes_only_its_own() {
    let cordoned = recorded_json("GET_api_v1_nodes_k8s-real-node.cordoned.json");
    let theirs =
        json!({"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule", "timeAdded": "2026-11-27T23:59:33Z"});
    let ours = json!({"key": "kir.dev/quarantine", "value": "act-q", "effect": "NoSchedule"});
    let patch_nodes = || allowed(json!({"verb": "patch", "resource": "nodes", "name": "k8s-real-node"}));
    let mut quarantined = cordoned.clone();
    quarantined["spec"]["taints"] = json!([theirs, ours]);
    quarantined["metadata"]["resourceVersion"] = json!("4800");

    // A node cordoned by someone else: only the taint is added, the other taint kept, the
    // resourceVersion guards against a concurrent change.
    let (client, server) = mock(vec![
        get(NODE, serde_json::to_vec(&cordoned).unwrap()),
        patch_nodes(),
        call(Method::PATCH, NODE, 200, serde_json::to_vec(&quarantined).unwrap()).body(
            json!({"metadata": {"resourceVersion": "4790"}, "spec": {"unschedulable": true, "taints": [theirs, ours]}}),
            STRATEGIC,
        ),
    ]);
    let planned = contain::quarantine_node(&client, "k8s-real-node", "act-q").await.unwrap();
    contain::apply(&client, &planned, false).await.unwrap();
    server.await.unwrap();
    assert_eq!(planned.before, json!({"unschedulable": true, "taint": null}));

    // Again: nothing to do.
    let (client, server) = mock(vec![get(NODE, serde_json::to_vec(&quarantined).unwrap())]);
    let again = contain::quarantine_node(&client, "k8s-real-node", "act-r").await.unwrap();
    assert_eq!(ops(&contain::apply(&client, &again, false).await.unwrap()), ["none"]);
    server.await.unwrap();

    // Undo: kir's taint goes, the cordon someone else made stays.
    let (client, server) = mock(vec![
        get(NODE, serde_json::to_vec(&quarantined).unwrap()),
        patch_nodes(),
        call(Method::PATCH, NODE, 200, serde_json::to_vec(&cordoned).unwrap())
            .body(json!({"metadata": {"resourceVersion": "4800"}, "spec": {"taints": [theirs]}}), STRATEGIC),
    ]);
    let undo = contain::undo_quarantine_node(&client, "k8s-real-node", &planned.before).await.unwrap();
    contain::apply(&client, &undo, false).await.unwrap();
    server.await.unwrap();

    // A schedulable node: cordoned and tainted; undo uncordons it too.
    let (client, server) = mock(vec![
        get(NODE, recorded("GET_api_v1_nodes_k8s-real-node.json")),
        patch_nodes(),
        call(Method::PATCH, NODE, 200, serde_json::to_vec(&quarantined).unwrap()).body(
            json!({"metadata": {"resourceVersion": "4748"}, "spec": {"unschedulable": true, "taints": [ours]}}),
            STRATEGIC,
        ),
    ]);
    let planned = contain::quarantine_node(&client, "k8s-real-node", "act-q").await.unwrap();
    contain::apply(&client, &planned, false).await.unwrap();
    server.await.unwrap();
    let (client, server) = mock(vec![
        get(NODE, serde_json::to_vec(&quarantined).unwrap()),
        patch_nodes(),
        call(Method::PATCH, NODE, 200, recorded("GET_api_v1_nodes_k8s-real-node.json")).body(
            json!({"metadata": {"resourceVersion": "4800"}, "spec": {"taints": [theirs], "unschedulable": null}}),
            STRATEGIC,
        ),
    ]);
    let undo = contain::undo_quarantine_node(&client, "k8s-real-node", &planned.before).await.unwrap();
    contain::apply(&client, &undo, false).await.unwrap();
    server.await.unwrap();
}

const ROLEBINDINGS: &str = "/apis/rbac.authorization.k8s.io/v1/rolebindings";
const CLUSTERROLEBINDINGS: &str = "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings";

#[tokio::test]
async fn revoke_user_deletes_every_binding_that_names_only_them_and_undo_recreates_them() {
    let rb = || get(ROLEBINDINGS, recorded("GET_apis_rbac.authorization.k8s.io_v1_rolebindings.json"));
    let crb = || get(CLUSTERROLEBINDINGS, recorded("GET_apis_rbac.authorization.k8s.io_v1_clusterrolebindings.json"));
    let rbac_attributes = |verb: &str, resource: &str, ns: Option<&str>| {
        let mut a = json!({"verb": verb, "group": "rbac.authorization.k8s.io", "resource": resource});
        if let Some(ns) = ns {
            a["namespace"] = json!(ns);
        }
        a
    };
    let rbac = |verb: &str, resource: &str, ns: Option<&str>| allowed(rbac_attributes(verb, resource, ns));
    let named = |mut a: Value, name: &str| {
        a["name"] = json!(name);
        allowed(a)
    };
    // Putting a binding back needs `bind` on its role: asked for each role, by name.
    let bind = |resource: &str, ns: Option<&str>, name: &str| {
        let mut a = json!({"verb": "bind", "group": "rbac.authorization.k8s.io", "resource": resource, "name": name});
        if let Some(ns) = ns {
            a["namespace"] = json!(ns);
        }
        allowed(a)
    };
    let binds = || {
        vec![
            bind("clusterroles", None, "view"),
            bind("roles", Some("checkout"), "checkout-viewer"),
            bind("roles", Some("demo"), "pod-reader"),
        ]
    };
    let precondition =
        |rv: &str| json!({"apiVersion": "v1", "kind": "DeleteOptions", "preconditions": {"resourceVersion": rv}});
    let mut calls = vec![rb(), crb()];
    calls.extend(binds());
    calls.extend([
        rbac("create", "clusterrolebindings", None),
        rbac("create", "rolebindings", Some("checkout")),
        rbac("create", "rolebindings", Some("demo")),
        named(rbac_attributes("delete", "clusterrolebindings", None), "demo-view-binding"),
        named(rbac_attributes("delete", "rolebindings", Some("checkout")), "checkout-viewer-alice"),
        named(rbac_attributes("delete", "rolebindings", Some("demo")), "alice-pod-reader"),
        call(
            Method::DELETE,
            "/apis/rbac.authorization.k8s.io/v1/namespaces/checkout/rolebindings/checkout-viewer-alice",
            200,
            ok_status(),
        )
        .body(precondition("4689"), JSON),
        call(
            Method::DELETE,
            "/apis/rbac.authorization.k8s.io/v1/namespaces/demo/rolebindings/alice-pod-reader",
            200,
            ok_status(),
        )
        .body(precondition("211"), JSON),
        call(
            Method::DELETE,
            "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/demo-view-binding",
            200,
            ok_status(),
        )
        .body(precondition("201"), JSON),
    ]);
    let (client, server) = mock(calls);
    let planned = contain::revoke(&client, &Subject::User("alice".into())).await.unwrap();
    let changes = contain::apply(&client, &planned, false).await.unwrap();
    server.await.unwrap();
    assert_eq!(ops(&changes), ["delete", "delete", "delete"]);
    let saved = planned.before["bindings"].as_array().unwrap();
    assert_eq!(saved.len(), 3);
    // The copies can be created again: no server-set fields.
    for s in saved {
        assert!(s["object"]["metadata"].get("resourceVersion").is_none());
        assert!(s["object"]["metadata"].get("uid").is_none());
        assert_eq!(s["object"]["subjects"][0]["name"], "alice");
    }

    // Again: no binding names alice any more.
    let mut none = recorded_json("GET_apis_rbac.authorization.k8s.io_v1_rolebindings.json");
    none["items"] = json!([]);
    let (client, server) = mock(vec![
        get(ROLEBINDINGS, serde_json::to_vec(&none).unwrap()),
        get(CLUSTERROLEBINDINGS, serde_json::to_vec(&none).unwrap()),
    ]);
    let again = contain::revoke(&client, &Subject::User("alice".into())).await.unwrap();
    assert_eq!(ops(&contain::apply(&client, &again, false).await.unwrap()), ["none"]);
    server.await.unwrap();

    // Undo: each binding is gone, so each is created again from its copy.
    let copy = |i: usize| saved[i]["object"].clone();
    let mut calls = vec![
        call(
            Method::GET,
            "/apis/rbac.authorization.k8s.io/v1/namespaces/checkout/rolebindings/checkout-viewer-alice",
            404,
            not_found("rolebindings"),
        ),
        call(
            Method::GET,
            "/apis/rbac.authorization.k8s.io/v1/namespaces/demo/rolebindings/alice-pod-reader",
            404,
            not_found("rolebindings"),
        ),
        call(
            Method::GET,
            "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/demo-view-binding",
            404,
            not_found("clusterrolebindings"),
        ),
    ];
    calls.extend(binds());
    calls.extend([
        rbac("create", "clusterrolebindings", None),
        rbac("create", "rolebindings", Some("checkout")),
        rbac("create", "rolebindings", Some("demo")),
        call(
            Method::POST,
            "/apis/rbac.authorization.k8s.io/v1/namespaces/checkout/rolebindings",
            201,
            serde_json::to_vec(&copy(0)).unwrap(),
        )
        .body(copy(0), JSON),
        call(
            Method::POST,
            "/apis/rbac.authorization.k8s.io/v1/namespaces/demo/rolebindings",
            201,
            serde_json::to_vec(&copy(1)).unwrap(),
        )
        .body(copy(1), JSON),
        call(Method::POST, CLUSTERROLEBINDINGS, 201, serde_json::to_vec(&copy(2)).unwrap()).body(copy(2), JSON),
    ]);
    let (client, server) = mock(calls);
    let undo = contain::undo_revoke(&client, &planned.before).await.unwrap();
    assert_eq!(ops(&contain::apply(&client, &undo, false).await.unwrap()), ["create", "create", "create"]);
    server.await.unwrap();
}

#[tokio::test]
async fn revoke_serviceaccount_edits_shared_bindings_deletes_token_secrets_and_keeps_no_token() {
    let secrets = json!({"kind": "SecretList", "apiVersion": "v1", "metadata": {"resourceVersion": "5000"}, "items": [
        {"metadata": {"name": "kube-scheduler-token", "namespace": "kube-system", "uid": "u1", "resourceVersion": "10",
            "annotations": {"kubernetes.io/service-account.name": "kube-scheduler", "kubernetes.io/service-account.uid": "sa-uid"}},
         "type": "kubernetes.io/service-account-token", "data": {"token": "ZXlKaGJHY2lPaUpTVXpJMU5pSjkuc2VjcmV0", "ca.crt": "Y2E="}},
        {"metadata": {"name": "other-token", "namespace": "kube-system",
            "annotations": {"kubernetes.io/service-account.name": "someone-else"}},
         "type": "kubernetes.io/service-account-token", "data": {"token": "b3RoZXI="}}
    ]});
    let sa = recorded("GET_api_v1_namespaces_checkout_serviceaccounts_checkout-api.json");
    let rbs = recorded_json("GET_apis_rbac.authorization.k8s.io_v1_rolebindings.json");
    let shared = rbs["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["metadata"]["name"] == "system::leader-locking-kube-scheduler")
        .unwrap()
        .clone();
    let rv = shared["metadata"]["resourceVersion"].clone();
    let (client, server) = mock(vec![
        get("/api/v1/namespaces/kube-system/serviceaccounts/kube-scheduler", sa),
        get(ROLEBINDINGS, serde_json::to_vec(&rbs).unwrap()),
        get(CLUSTERROLEBINDINGS, recorded("GET_apis_rbac.authorization.k8s.io_v1_clusterrolebindings.json")),
        get("/api/v1/namespaces/kube-system/secrets?fieldSelector=type%3Dkubernetes.io%2Fservice-account-token", serde_json::to_vec(&secrets).unwrap()),
        allowed(json!({"verb": "bind", "group": "rbac.authorization.k8s.io", "resource": "roles", "namespace": "kube-system", "name": "system::leader-locking-kube-scheduler"})),
        allowed(json!({"verb": "create", "resource": "secrets", "namespace": "kube-system"})),
        allowed(json!({"verb": "delete", "resource": "secrets", "namespace": "kube-system", "name": "kube-scheduler-token"})),
        allowed(json!({"verb": "patch", "group": "rbac.authorization.k8s.io", "resource": "rolebindings", "namespace": "kube-system", "name": "system::leader-locking-kube-scheduler"})),
        call(Method::PATCH, "/apis/rbac.authorization.k8s.io/v1/namespaces/kube-system/rolebindings/system::leader-locking-kube-scheduler", 200, serde_json::to_vec(&shared).unwrap())
            .body(json!({"metadata": {"resourceVersion": rv}, "subjects": [{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "system:kube-scheduler"}]}), MERGE),
        call(Method::DELETE, "/api/v1/namespaces/kube-system/secrets/kube-scheduler-token", 200, ok_status()),
    ]);
    let subject = Subject::ServiceAccount { namespace: "kube-system".into(), name: "kube-scheduler".into() };
    let planned = contain::revoke(&client, &subject).await.unwrap();
    let changes = contain::apply(&client, &planned, false).await.unwrap();
    server.await.unwrap();
    assert_eq!(ops(&changes), ["patch", "delete"]);
    // The copy kept for undo holds no token, and nothing that was sent or recorded does.
    let everything = format!("{} {}", planned.before, serde_json::to_string(&changes).unwrap());
    assert!(!everything.contains("ZXlKaGJHY2lPaUpTVXpJMU5pSjkuc2VjcmV0"), "{everything}");
    assert!(!everything.contains("Y2E="));
    assert_eq!(planned.before["secrets"][0]["metadata"]["name"], "kube-scheduler-token");

    // Undo: the subject goes back into the shared binding; the Secret is created without data.
    let (client, server) = mock(vec![
        get("/apis/rbac.authorization.k8s.io/v1/namespaces/kube-system/rolebindings/system::leader-locking-kube-scheduler", serde_json::to_vec(&json!({
            "metadata": {"name": "system::leader-locking-kube-scheduler", "namespace": "kube-system", "resourceVersion": "9000"},
            "subjects": [{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "system:kube-scheduler"}]})).unwrap()),
        allowed(json!({"verb": "bind", "group": "rbac.authorization.k8s.io", "resource": "roles", "namespace": "kube-system", "name": "system::leader-locking-kube-scheduler"})),
        allowed(json!({"verb": "create", "resource": "secrets", "namespace": "kube-system"})),
        allowed(json!({"verb": "patch", "group": "rbac.authorization.k8s.io", "resource": "rolebindings", "namespace": "kube-system", "name": "system::leader-locking-kube-scheduler"})),
        call(Method::PATCH, "/apis/rbac.authorization.k8s.io/v1/namespaces/kube-system/rolebindings/system::leader-locking-kube-scheduler", 200, ok_status())
            .body(json!({"metadata": {"resourceVersion": "9000"}, "subjects": [
                {"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "system:kube-scheduler"},
                {"kind": "ServiceAccount", "name": "kube-scheduler", "namespace": "kube-system"}]}), MERGE),
        call(Method::POST, "/api/v1/namespaces/kube-system/secrets", 201, ok_status()).body(json!({
            "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/service-account-token",
            "metadata": {"name": "kube-scheduler-token", "namespace": "kube-system",
                "annotations": {"kubernetes.io/service-account.name": "kube-scheduler", "kubernetes.io/service-account.uid": "sa-uid"}}}), JSON),
    ]);
    let undo = contain::undo_revoke(&client, &planned.before).await.unwrap();
    assert_eq!(ops(&contain::apply(&client, &undo, false).await.unwrap()), ["patch", "create"]);
    server.await.unwrap();

    // A service account that does not exist is said so (not "nothing to revoke").
    let (client, server) = mock(vec![call(
        Method::GET,
        "/api/v1/namespaces/ci/serviceaccounts/jenkins",
        404,
        not_found("serviceaccounts"),
    )]);
    let err = contain::revoke(&client, &Subject::ServiceAccount { namespace: "ci".into(), name: "jenkins".into() })
        .await
        .unwrap_err();
    server.await.unwrap();
    assert_eq!(err.to_string(), "serviceaccount ci/jenkins does not exist");
}

#[tokio::test]
async fn scale_down_names_the_pods_that_end_and_undo_restores_the_count() {
    let deployment = "/apis/apps/v1/namespaces/checkout/deployments/checkout-api";
    let patch_deployments = || {
        allowed(
            json!({"verb": "patch", "group": "apps", "resource": "deployments", "namespace": "checkout", "name": "checkout-api"}),
        )
    };
    let (client, server) = mock(vec![
        get(deployment, recorded("GET_apis_apps_v1_namespaces_checkout_deployments_checkout-api.json")),
        get("/api/v1/namespaces/checkout/pods", recorded("GET_api_v1_namespaces_checkout_pods.json")),
        patch_deployments(),
        call(
            Method::PATCH,
            deployment,
            200,
            recorded("GET_apis_apps_v1_namespaces_checkout_deployments_checkout-api.json"),
        )
        .body(json!({"spec": {"replicas": 0}}), MERGE),
    ]);
    let (planned, pods) = contain::scale_down(&client, "deployments", "checkout", "checkout-api").await.unwrap();
    contain::apply(&client, &planned, false).await.unwrap();
    server.await.unwrap();
    let names: Vec<&str> = pods.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["checkout-api-64db89f569-blm5l", "checkout-api-64db89f569-gg6tn"]);
    assert_eq!(pods[0].1.as_deref(), Some("4104f68c-3e9d-4e4b-b45b-0019003acf43"));
    assert_eq!(planned.before, json!({"replicas": 2}));

    let (client, server) = mock(vec![
        patch_deployments(),
        call(Method::PATCH, deployment, 200, ok_status()).body(json!({"spec": {"replicas": 2}}), MERGE),
    ]);
    let undo = contain::undo_scale_down("deployments", "checkout", "checkout-api", &planned.before);
    contain::apply(&client, &undo, false).await.unwrap();
    server.await.unwrap();
}

#[tokio::test]
async fn drain_evicts_through_the_eviction_api_skips_daemonsets_and_waits_out_budgets() {
    let mut pods = recorded_json("GET_api_v1_namespaces_checkout_pods.json");
    pods["items"].as_array_mut().unwrap().push(json!({"metadata": {"name": "node-exporter-x1", "namespace": "monitoring",
        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "node-exporter", "uid": "d", "controller": true}]},
        "spec": {"nodeName": "k8s-real-node"}, "status": {"phase": "Running"}}));
    let eviction = |name: &str| json!({"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": name, "namespace": "checkout"}});
    let evict_path = |name: &str| format!("/api/v1/namespaces/checkout/pods/{name}/eviction");
    let blocked = recorded("POST_api_v1_namespaces_checkout_pods_checkout-api-64db89f569-blm5l_eviction.json");
    let evicted = recorded("POST_api_v1_namespaces_checkout_pods_checkout-api-64db89f569-gg6tn_eviction.json");
    let start = |calls: &mut Vec<Call>| {
        calls.push(get(NODE, recorded("GET_api_v1_nodes_k8s-real-node.json")));
        calls.push(get("/api/v1/pods?fieldSelector=spec.nodeName%3Dk8s-real-node", serde_json::to_vec(&pods).unwrap()));
        // Each eviction is asked for by the pod's name.
        for name in ["batch-worker", POD_NAME, "checkout-api-64db89f569-gg6tn"] {
            calls.push(allowed(
                json!({"verb": "create", "resource": "pods", "subresource": "eviction", "namespace": "checkout", "name": name}),
            ));
        }
        calls.push(allowed(json!({"verb": "patch", "resource": "nodes", "name": "k8s-real-node"})));
        calls.push(call(Method::PATCH, NODE, 200, recorded("PATCH_api_v1_nodes_k8s-real-node.json")));
    };
    // The budget refuses blm5l once, then lets it go.
    let mut calls = Vec::new();
    start(&mut calls);
    calls.push(
        call(Method::POST, &evict_path("batch-worker"), 201, evicted.clone()).body(eviction("batch-worker"), JSON),
    );
    calls.push(call(Method::POST, &evict_path(POD_NAME), 429, blocked.clone()).body(eviction(POD_NAME), JSON));
    calls.push(call(Method::POST, &evict_path(POD_NAME), 201, evicted.clone()));
    calls.push(call(Method::POST, &evict_path("checkout-api-64db89f569-gg6tn"), 201, evicted.clone()));
    let (client, server) = mock(calls);
    let (planned, listed) =
        contain::drain_node(&client, "k8s-real-node", Duration::from_millis(1), Duration::from_secs(60)).await.unwrap();
    let changes = contain::apply(&client, &planned, false).await.unwrap();
    server.await.unwrap();
    assert_eq!(ops(&changes), ["patch", "evict", "evict", "evict"]);
    let skipped: Vec<_> = listed.iter().filter(|p| p.skipped.is_some()).map(|p| p.name.as_str()).collect();
    assert_eq!(skipped, ["node-exporter-x1"]);

    // A budget that never gives way: reported blocked when the time is up, the rest goes on.
    let mut calls = Vec::new();
    start(&mut calls);
    calls.push(call(Method::POST, &evict_path("batch-worker"), 201, evicted.clone()));
    calls.push(call(Method::POST, &evict_path(POD_NAME), 429, blocked.clone()));
    calls.push(call(Method::POST, &evict_path("checkout-api-64db89f569-gg6tn"), 201, evicted));
    let (client, server) = mock(calls);
    let (planned, _) = contain::drain_node(&client, "k8s-real-node", Duration::ZERO, Duration::ZERO).await.unwrap();
    let changes = contain::apply(&client, &planned, false).await.unwrap();
    server.await.unwrap();
    assert_eq!(ops(&changes), ["patch", "evict", "blocked", "evict"]);
}

#[tokio::test]
async fn delete_label_and_suspend_send_exactly_their_requests() {
    // Delete: the pod as it was is kept; the answer is the recorded graceful deletion.
    let bare = "/api/v1/namespaces/checkout/pods/batch-worker";
    let pods = recorded_json("GET_api_v1_namespaces_checkout_pods.json");
    let worker =
        pods["items"].as_array().unwrap().iter().find(|p| p["metadata"]["name"] == "batch-worker").unwrap().clone();
    let (client, server) = mock(vec![
        get(bare, serde_json::to_vec(&worker).unwrap()),
        allowed(json!({"verb": "delete", "resource": "pods", "namespace": "checkout", "name": "batch-worker"})),
        call(Method::DELETE, bare, 200, recorded("DELETE_api_v1_namespaces_checkout_pods_batch-worker.json")),
    ]);
    let planned = contain::delete_pod(&client, "checkout", "batch-worker").await.unwrap();
    assert_eq!(ops(&contain::apply(&client, &planned, false).await.unwrap()), ["delete"]);
    server.await.unwrap();
    assert_eq!(planned.before["pod"]["spec"]["nodeName"], "k8s-real-node");
    // Gone already: nothing to do.
    let (client, server) = mock(vec![call(Method::GET, bare, 404, not_found("pods"))]);
    let planned = contain::delete_pod(&client, "checkout", "batch-worker").await.unwrap();
    assert_eq!(ops(&contain::apply(&client, &planned, false).await.unwrap()), ["none"]);
    server.await.unwrap();

    // Label: a merge patch of the label and the incident annotation only.
    let (client, server) = mock(vec![
        get(POD, pod_json()),
        allowed(json!({"verb": "patch", "resource": "pods", "namespace": "checkout", "name": POD_NAME})),
        call(Method::PATCH, POD, 200, pod_json()).body(
            json!({"metadata": {"labels": {"kir.dev/investigation": "act-l"}, "annotations": {"kir.dev/incident": "7"}}}),
            MERGE,
        ),
    ]);
    let what = Labelled::Pod { namespace: "checkout", name: POD_NAME };
    let planned = contain::label(&client, what, "act-l", Some(7)).await.unwrap();
    contain::apply(&client, &planned, false).await.unwrap();
    server.await.unwrap();
    let (client, server) = mock(vec![
        allowed(json!({"verb": "patch", "resource": "pods", "namespace": "checkout", "name": POD_NAME})),
        call(Method::PATCH, POD, 200, pod_json()).body(
            json!({"metadata": {"labels": {"kir.dev/investigation": null}, "annotations": {"kir.dev/incident": null}}}),
            MERGE,
        ),
    ]);
    contain::apply(&client, &contain::undo_label(what, &planned.before), false).await.unwrap();
    server.await.unwrap();

    // Suspend a CronJob (no CronJob was recorded; this one is written in the API's shape).
    let cronjob = json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "backup", "namespace": "checkout", "resourceVersion": "77"},
        "spec": {"schedule": "*/5 * * * *", "suspend": false, "jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "b", "image": "busybox"}], "restartPolicy": "OnFailure"}}}}}});
    let path = "/apis/batch/v1/namespaces/checkout/cronjobs/backup";
    let (client, server) = mock(vec![
        get(path, serde_json::to_vec(&cronjob).unwrap()),
        allowed(
            json!({"verb": "patch", "group": "batch", "resource": "cronjobs", "namespace": "checkout", "name": "backup"}),
        ),
        call(Method::PATCH, &format!("{path}?dryRun=All"), 200, serde_json::to_vec(&cronjob).unwrap())
            .body(json!({"spec": {"suspend": true}}), MERGE),
    ]);
    let planned = contain::suspend_cronjob(&client, "checkout", "backup").await.unwrap();
    contain::apply(&client, &planned, true).await.unwrap();
    server.await.unwrap();
    assert_eq!(planned.before, json!({"suspend": false}));
}

#[tokio::test]
async fn top_reads_the_metrics_api_or_falls_back_to_the_kubelet_stats_summary() {
    let pods = recorded("GET_api_v1_namespaces_checkout_pods.json");
    let metrics_404 = not_found("the server could not find the requested resource");
    let (client, server) = mock(vec![
        get("/api/v1/namespaces/checkout/pods", pods.clone()),
        call(Method::GET, "/apis/metrics.k8s.io/v1beta1/namespaces/checkout/pods", 404, metrics_404),
        get(
            "/api/v1/nodes/k8s-real-node/proxy/stats/summary",
            recorded("GET_api_v1_nodes_k8s-real-node_proxy_stats_summary.json"),
        ),
    ]);
    let (list, source) = kir_cluster::top::usage(&client, Some("checkout")).await.unwrap();
    server.await.unwrap();
    assert_eq!(source, kir_cluster::top::Source::Kubelet);
    assert_eq!(list.len(), 3);
    let summary = recorded_json("GET_api_v1_nodes_k8s-real-node_proxy_stats_summary.json");
    let worker = summary["pods"].as_array().unwrap().iter().find(|p| p["podRef"]["name"] == "batch-worker").unwrap();
    let got = list.iter().find(|u| u.name == "batch-worker").unwrap();
    assert_eq!(got.memory_bytes, worker["memory"]["workingSetBytes"].as_u64().unwrap());
    assert!((got.cpu_millis - worker["cpu"]["usageNanoCores"].as_f64().unwrap() / 1e6).abs() < 1e-9);

    // With metrics-server: its numbers, summed over containers; a miner pinned at its limit is flagged.
    let mut with_limit = recorded_json("GET_api_v1_namespaces_checkout_pods.json");
    for p in with_limit["items"].as_array_mut().unwrap() {
        if p["metadata"]["name"] == POD_NAME {
            p["spec"]["containers"][0]["resources"] = json!({"requests": {"cpu": "100m"}, "limits": {"cpu": "2"}});
        }
    }
    let metrics = json!({"kind": "PodMetricsList", "apiVersion": "metrics.k8s.io/v1beta1", "metadata": {}, "items": [
        {"metadata": {"name": POD_NAME, "namespace": "checkout"}, "timestamp": "2026-11-27T23:59:00Z", "window": "10.5s",
         "containers": [{"name": "app", "usage": {"cpu": "1990000000n", "memory": "24Mi"}}]}]});
    let (client, server) = mock(vec![
        get("/api/v1/namespaces/checkout/pods", serde_json::to_vec(&with_limit).unwrap()),
        get("/apis/metrics.k8s.io/v1beta1/namespaces/checkout/pods", serde_json::to_vec(&metrics).unwrap()),
    ]);
    let (list, source) = kir_cluster::top::usage(&client, Some("checkout")).await.unwrap();
    server.await.unwrap();
    assert_eq!(source, kir_cluster::top::Source::MetricsServer);
    assert_eq!(list[0].name, POD_NAME, "busiest first");
    assert!((list[0].cpu_millis - 1990.0).abs() < 1e-6);
    assert_eq!(list[0].memory_bytes, 24 * 1024 * 1024);
    assert!(kir_cluster::top::pinned_cpu(&list[0]).unwrap().contains("pinned at its limit"));
    assert!(kir_cluster::top::pinned_cpu(&list[1]).is_none());
}

#[test]
fn sibling_pods_with_a_long_shared_prefix_never_share_a_quarantine_policy() {
    let long = "payments-reconciliation-worker-with-a-very-long-name-7f9c4d8b5-";
    let (a, b) = (format!("{long}abcde"), format!("{long}fghij"));
    let pa = contain::quarantine_policy_name("shop", &a, "uid-a");
    let pb = contain::quarantine_policy_name("shop", &b, "uid-b");
    assert_ne!(pa, pb);
    for p in [&pa, &pb] {
        assert!(p.len() <= 63, "{p}");
        assert!(p.starts_with("kir-quarantine-payments-reconciliation"), "{p}");
        assert!(!p.contains("--"), "{p}");
    }
    // The same pod re-created under the same name is another pod: another policy.
    assert_ne!(pa, contain::quarantine_policy_name("shop", &a, "uid-a2"));
    assert_eq!(pa, contain::quarantine_policy_name("shop", &a, "uid-a"));
}

#[tokio::test]
async fn a_foreign_policy_under_kirs_name_is_refused_not_adopted() {
    // A policy with kir's name that selects every pod: isolating must not take it as done.
    let mut foreign = policy_for("act-1");
    foreign["spec"]["podSelector"] = json!({});
    let (client, server) = mock(vec![get(POD, pod_json()), get(POLICY, serde_json::to_vec(&foreign).unwrap())]);
    let err = contain::isolate_pod(&client, "checkout", POD_NAME, "act-1", &[]).await.unwrap_err();
    server.await.unwrap();
    assert!(err.to_string().starts_with("refused: networkpolicy checkout/kir-quarantine-"), "{err}");

    // kir's name and selector, but rules that allow everything: not kir's deny-all either.
    for (ingress, egress) in [
        (json!([{}]), json!([])),
        (json!([]), json!([{"to": []}])),
        (json!([{"from": [{"podSelector": {}}]}]), json!([])),
        (json!([{"from": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8"]}}]}]), json!([])),
        (json!([{"from": [{"ipBlock": {"cidr": "10.10.0.0/24"}}], "ports": [{"port": 22}]}]), json!([])),
    ] {
        let mut open = policy_for("act-1");
        open["spec"]["ingress"] = ingress.clone();
        open["spec"]["egress"] = egress.clone();
        let (client, server) = mock(vec![get(POD, pod_json()), get(POLICY, serde_json::to_vec(&open).unwrap())]);
        let err = contain::isolate_pod(&client, "checkout", POD_NAME, "act-1", &[]).await.unwrap_err();
        server.await.unwrap();
        assert!(err.to_string().starts_with("refused:"), "{ingress} {egress}: {err}");
    }
    // The responders' address block (`--allow-cidr`) is kir's own shape: adopted.
    let mut allowing = policy_for("act-1");
    allowing["spec"]["ingress"] = json!([{"from": [{"ipBlock": {"cidr": "10.10.0.0/24"}}]}]);
    allowing["spec"]["egress"] = json!([{"to": [{"ipBlock": {"cidr": "10.10.0.0/24"}}]}]);
    let (client, server) = mock(vec![get(POD, pod_json()), get(POLICY, serde_json::to_vec(&allowing).unwrap())]);
    contain::isolate_pod(&client, "checkout", POD_NAME, "act-1", &[]).await.unwrap();
    server.await.unwrap();

    // kir's own policy but the pod lost its label: the label comes back with the policy's value.
    let (client, server) =
        mock(vec![get(POD, pod_json()), get(POLICY, serde_json::to_vec(&policy_for("act-0")).unwrap())]);
    let planned = contain::isolate_pod(&client, "checkout", POD_NAME, "act-9", &[]).await.unwrap();
    server.await.unwrap();
    assert_eq!(planned.writes.len(), 1);
    assert_eq!(planned.writes[0].body, Some(json!({"metadata": {"labels": {"kir.dev/quarantine": "act-0"}}})));
}
