//! Containment through kube-rs against a `tower-test` mock API server: each request's method,
//! path, query, content type and body are checked; answers are recorded v1.26 responses.

use std::path::PathBuf;

use http::{Request, Response};
use kube::Client;
use kube::client::Body;
use serde_json::{Value, json};

fn recorded(name: &str) -> Vec<u8> {
    std::fs::read(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/k8s-api").join(name)).unwrap()
}

struct Expect {
    method: http::Method,
    path: &'static str,
    body: Option<Value>,
    reply: Vec<u8>,
}

/// A request with its answer's status (for 404s and 409s).
struct Call {
    e: Expect,
    status: u16,
    content_type: Option<&'static str>,
}

fn mock_calls(expected: Vec<Call>) -> (Client, tokio::task::JoinHandle<()>) {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let server = tokio::spawn(async move {
        for Call { e, status, content_type } in expected {
            let (request, send) = handle.next_request().await.expect("the expected request");
            assert_eq!(request.method(), e.method, "{}", e.path);
            assert_eq!(request.uri().path_and_query().unwrap().as_str(), e.path);
            if let Some(ct) = content_type {
                assert_eq!(request.headers()["content-type"], ct, "{}", e.path);
            }
            if let Some(want) = e.body {
                let bytes = http_body_util::BodyExt::collect(request.into_body()).await.unwrap().to_bytes();
                let got: Value = serde_json::from_slice(&bytes).unwrap();
                assert_eq!(got, want, "{}", e.path);
            }
            send.send_response(
                Response::builder()
                    .status(status)
                    .header("content-type", "application/json")
                    .body(Body::from(e.reply))
                    .unwrap(),
            );
        }
    });
    (Client::new(service, "default"), server)
}

fn not_found(what: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": format!("{what} not found"), "reason": "NotFound", "code": 404}))
    .unwrap()
}

const POD: &str = "/api/v1/namespaces/checkout/pods/checkout-api-64db89f569-blm5l";
const POLICY: &str =
    "/apis/networking.k8s.io/v1/namespaces/checkout/networkpolicies/kir-quarantine-checkout-api-64db89f569-blm5l";

#[tokio::test]
async fn isolate_pod_labels_that_pod_only_and_denies_all_traffic_then_undoes() {
    let pod = recorded("GET_api_v1_namespaces_checkout_pods_checkout-api-64db89f569-blm5l.json");
    let mut labelled: Value = serde_json::from_slice(&pod).unwrap();
    labelled["metadata"]["labels"]["kir.dev/quarantine"] = json!("act-1");
    let labelled = serde_json::to_vec(&labelled).unwrap();
    let policy = json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": "kir-quarantine-checkout-api-64db89f569-blm5l", "namespace": "checkout",
            "labels": {"app.kubernetes.io/managed-by": "kir", "kir.dev/quarantine": "act-1"}},
        "spec": {"podSelector": {"matchLabels": {"kir.dev/quarantine": "act-1"}}, "policyTypes": ["Ingress", "Egress"], "ingress": [], "egress": []}
    });
    let call = |method, path, body, reply, status, ct| Call {
        e: Expect { method, path, body, reply },
        status,
        content_type: ct,
    };
    let (client, server) = mock_calls(vec![
        call(http::Method::GET, POD, None, pod.clone(), 200, None),
        call(http::Method::GET, POLICY, None, not_found("networkpolicies"), 404, None),
        call(
            http::Method::PATCH,
            POD,
            Some(json!({"metadata": {"labels": {"kir.dev/quarantine": "act-1"}}})),
            labelled.clone(),
            200,
            Some("application/strategic-merge-patch+json"),
        ),
        call(
            http::Method::POST,
            "/apis/networking.k8s.io/v1/namespaces/checkout/networkpolicies",
            Some(policy.clone()),
            serde_json::to_vec(&policy).unwrap(),
            201,
            Some("application/json"),
        ),
    ]);
    let (changes, before) =
        kir_cluster::contain::isolate_pod(&client, "checkout", "checkout-api-64db89f569-blm5l", "act-1", &[], false)
            .await
            .unwrap();
    server.await.unwrap();
    assert_eq!(changes.iter().map(|c| c.op.as_str()).collect::<Vec<_>>(), ["patch", "create"]);
    assert_eq!(before["policy_existed"], false);

    // Again: labelled and the policy exists, nothing changes.
    let (client, server) = mock_calls(vec![
        call(http::Method::GET, POD, None, labelled.clone(), 200, None),
        call(http::Method::GET, POLICY, None, serde_json::to_vec(&policy).unwrap(), 200, None),
    ]);
    let (changes, _) =
        kir_cluster::contain::isolate_pod(&client, "checkout", "checkout-api-64db89f569-blm5l", "act-2", &[], false)
            .await
            .unwrap();
    server.await.unwrap();
    assert_eq!(changes[0].op, "none");

    // Dry run: both writes carry dryRun=All.
    let (client, server) = mock_calls(vec![
        call(http::Method::GET, POD, None, pod.clone(), 200, None),
        call(http::Method::GET, POLICY, None, not_found("networkpolicies"), 404, None),
        call(
            http::Method::PATCH,
            "/api/v1/namespaces/checkout/pods/checkout-api-64db89f569-blm5l?dryRun=All",
            None,
            labelled.clone(),
            200,
            None,
        ),
        call(
            http::Method::POST,
            "/apis/networking.k8s.io/v1/namespaces/checkout/networkpolicies?dryRun=All",
            None,
            serde_json::to_vec(&policy).unwrap(),
            201,
            None,
        ),
    ]);
    kir_cluster::contain::isolate_pod(&client, "checkout", "checkout-api-64db89f569-blm5l", "act-1", &[], true)
        .await
        .unwrap();
    server.await.unwrap();

    // Undo removes exactly what isolate added.
    let (client, server) = mock_calls(vec![
        call(
            http::Method::DELETE,
            POLICY,
            None,
            serde_json::to_vec(&json!({"kind": "Status", "status": "Success"})).unwrap(),
            200,
            None,
        ),
        call(
            http::Method::PATCH,
            POD,
            Some(json!({"metadata": {"labels": {"kir.dev/quarantine": null}}})),
            pod.clone(),
            200,
            Some("application/strategic-merge-patch+json"),
        ),
    ]);
    let undone = kir_cluster::contain::undo_isolate_pod(&client, "checkout", "checkout-api-64db89f569-blm5l", &before)
        .await
        .unwrap();
    server.await.unwrap();
    assert_eq!(undone.iter().map(|c| c.op.as_str()).collect::<Vec<_>>(), ["delete", "patch"]);

    // No permission to create NetworkPolicies: the label it added is taken back, the permission named.
    let forbidden = recorded("GET_api_v1_namespaces_checkout_secrets.as-alice.json");
    let (client, server) = mock_calls(vec![
        call(http::Method::GET, POD, None, pod.clone(), 200, None),
        call(http::Method::GET, POLICY, None, not_found("networkpolicies"), 404, None),
        call(http::Method::PATCH, POD, None, labelled.clone(), 200, None),
        call(
            http::Method::POST,
            "/apis/networking.k8s.io/v1/namespaces/checkout/networkpolicies",
            None,
            forbidden.clone(),
            403,
            None,
        ),
        call(
            http::Method::PATCH,
            POD,
            Some(json!({"metadata": {"labels": {"kir.dev/quarantine": null}}})),
            pod.clone(),
            200,
            None,
        ),
    ]);
    let err =
        kir_cluster::contain::isolate_pod(&client, "checkout", "checkout-api-64db89f569-blm5l", "act-4", &[], false)
            .await
            .unwrap_err();
    server.await.unwrap();
    assert!(err.to_string().starts_with("missing permission: create networkpolicies in namespace checkout"), "{err}");

    // A missing permission is named, and nothing was changed before it.
    let forbidden = recorded("GET_api_v1_namespaces_checkout_secrets.as-alice.json");
    let (client, server) = mock_calls(vec![call(http::Method::GET, POD, None, forbidden, 403, None)]);
    let err =
        kir_cluster::contain::isolate_pod(&client, "checkout", "checkout-api-64db89f569-blm5l", "act-3", &[], false)
            .await
            .unwrap_err();
    server.await.unwrap();
    assert!(err.to_string().starts_with("missing permission: get pods in namespace checkout"), "{err}");
}

/// Every request answered 200; a request with a body must be a strategic merge patch.
fn mock(expected: Vec<Expect>) -> (Client, tokio::task::JoinHandle<()>) {
    mock_calls(
        expected
            .into_iter()
            .map(|e| {
                let content_type = e.body.as_ref().map(|_| "application/strategic-merge-patch+json");
                Call { e, status: 200, content_type }
            })
            .collect(),
    )
}

#[tokio::test]
async fn cordon_is_recorded_idempotent_dry_runnable_and_undone() {
    let node = "/api/v1/nodes/k8s-real-node";
    // Cordon: read the node, patch it, report the state before.
    let (client, server) = mock(vec![
        Expect {
            method: http::Method::GET,
            path: node,
            body: None,
            reply: recorded("GET_api_v1_nodes_k8s-real-node.json"),
        },
        Expect {
            method: http::Method::PATCH,
            path: node,
            body: Some(serde_json::from_slice(&recorded("PATCH_api_v1_nodes_k8s-real-node.request.json")).unwrap()),
            reply: recorded("PATCH_api_v1_nodes_k8s-real-node.json"),
        },
    ]);
    let (changes, before) = kir_cluster::contain::cordon(&client, "k8s-real-node", false).await.unwrap();
    server.await.unwrap();
    assert_eq!(before, json!({"unschedulable": false}));
    assert_eq!((changes[0].op.as_str(), &changes[0].after), ("patch", &json!({"unschedulable": true})));

    // Again: the node is cordoned already, nothing is patched.
    let (client, server) = mock(vec![Expect {
        method: http::Method::GET,
        path: node,
        body: None,
        reply: recorded("GET_api_v1_nodes_k8s-real-node.cordoned.json"),
    }]);
    let (changes, _) = kir_cluster::contain::cordon(&client, "k8s-real-node", false).await.unwrap();
    server.await.unwrap();
    assert_eq!(changes[0].op, "none");

    // Dry run: the server validates (dryRun=All), nothing persists.
    let (client, server) = mock(vec![
        Expect {
            method: http::Method::GET,
            path: node,
            body: None,
            reply: recorded("GET_api_v1_nodes_k8s-real-node.json"),
        },
        Expect {
            method: http::Method::PATCH,
            path: "/api/v1/nodes/k8s-real-node?dryRun=All",
            body: Some(json!({"spec": {"unschedulable": true}})),
            reply: recorded("PATCH_api_v1_nodes_k8s-real-node.json"),
        },
    ]);
    kir_cluster::contain::cordon(&client, "k8s-real-node", true).await.unwrap();
    server.await.unwrap();

    // Undo sends what kubectl uncordon sends.
    let (client, server) = mock(vec![Expect {
        method: http::Method::PATCH,
        path: node,
        body: Some(
            serde_json::from_slice(&recorded("PATCH_api_v1_nodes_k8s-real-node.uncordon.request.json")).unwrap(),
        ),
        reply: recorded("PATCH_api_v1_nodes_k8s-real-node.uncordon.json"),
    }]);
    let changes = kir_cluster::contain::undo_cordon(&client, "k8s-real-node", &before).await.unwrap();
    server.await.unwrap();
    assert_eq!(changes[0].after, json!({"unschedulable": false}));

    // A node that was cordoned before kir came stays cordoned on undo: no request at all.
    let (client, server) = mock(vec![]);
    let changes =
        kir_cluster::contain::undo_cordon(&client, "k8s-real-node", &json!({"unschedulable": true})).await.unwrap();
    server.await.unwrap();
    assert_eq!(changes[0].op, "none");
}
