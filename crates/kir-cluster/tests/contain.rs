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

fn mock(expected: Vec<Expect>) -> (Client, tokio::task::JoinHandle<()>) {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let server = tokio::spawn(async move {
        for e in expected {
            let (request, send) = handle.next_request().await.expect("the expected request");
            assert_eq!(request.method(), e.method, "{}", e.path);
            assert_eq!(request.uri().path_and_query().unwrap().as_str(), e.path);
            if let Some(want) = e.body {
                assert_eq!(request.headers()["content-type"], "application/strategic-merge-patch+json");
                let bytes = http_body_util::BodyExt::collect(request.into_body()).await.unwrap().to_bytes();
                let got: Value = serde_json::from_slice(&bytes).unwrap();
                assert_eq!(got, want);
            }
            send.send_response(
                Response::builder()
                    .status(200)
                    .header("content-type", "application/json")
                    .body(Body::from(e.reply))
                    .unwrap(),
            );
        }
    });
    (Client::new(service, "default"), server)
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
