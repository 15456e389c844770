//! The mock API server of these tests: every request's method, path, query, content type and
//! body are checked in order; answers are recorded v1.26 responses.
#![allow(dead_code)]

use std::path::PathBuf;

use http::{Method, Request, Response};
use kube::Client;
use kube::client::Body;
use serde_json::{Value, json};

pub fn recorded(name: &str) -> Vec<u8> {
    std::fs::read(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/k8s-api").join(name)).unwrap()
}

pub fn recorded_json(name: &str) -> Value {
    serde_json::from_slice(&recorded(name)).unwrap()
}

/// One expected request and its answer.
pub struct Call {
    pub method: Method,
    pub path: String,
    pub body: Option<Value>,
    pub content_type: Option<&'static str>,
    pub status: u16,
    pub reply: Vec<u8>,
    /// The answer's content type (the kubelet answers some errors in plain text).
    pub reply_type: &'static str,
}

pub fn call(method: Method, path: &str, status: u16, reply: Vec<u8>) -> Call {
    Call {
        method,
        path: path.to_string(),
        body: None,
        content_type: None,
        status,
        reply,
        reply_type: "application/json",
    }
}

pub fn get(path: &str, reply: Vec<u8>) -> Call {
    call(Method::GET, path, 200, reply)
}

impl Call {
    pub fn text(mut self) -> Self {
        self.reply_type = "text/plain; charset=utf-8";
        self
    }

    pub fn body(mut self, body: Value, content_type: &'static str) -> Self {
        self.body = Some(body);
        self.content_type = Some(content_type);
        self
    }
}

pub const STRATEGIC: &str = "application/strategic-merge-patch+json";
pub const MERGE: &str = "application/merge-patch+json";
pub const JSON: &str = "application/json";
pub const SSAR: &str = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews";

/// The SelfSubjectAccessReview kir must send for `attributes`, answered as recorded.
pub fn review(attributes: Value, allowed: bool) -> Call {
    let reply = if allowed {
        recorded("POST_apis_authorization.k8s.io_v1_selfsubjectaccessreviews.alice-get-pods-log.json")
    } else {
        recorded("POST_apis_authorization.k8s.io_v1_selfsubjectaccessreviews.alice-create-pods.json")
    };
    call(Method::POST, SSAR, 201, reply).body(
        json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": attributes}}),
        JSON,
    )
}

pub fn allowed(attributes: Value) -> Call {
    review(attributes, true)
}

pub fn mock(expected: Vec<Call>) -> (Client, tokio::task::JoinHandle<()>) {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let server = tokio::spawn(async move {
        for c in expected {
            let (request, send) = handle.next_request().await.expect("the expected request");
            assert_eq!(request.method(), c.method, "{}", c.path);
            assert_eq!(request.uri().path_and_query().unwrap().as_str(), c.path);
            if let Some(ct) = c.content_type {
                assert_eq!(request.headers()["content-type"], ct, "{}", c.path);
            }
            if let Some(want) = c.body {
                let bytes = http_body_util::BodyExt::collect(request.into_body()).await.unwrap().to_bytes();
                let got: Value = serde_json::from_slice(&bytes).unwrap();
                assert_eq!(got, want, "{} {}", c.method, c.path);
            }
            send.send_response(
                Response::builder()
                    .status(c.status)
                    .header("content-type", c.reply_type)
                    .body(Body::from(c.reply))
                    .unwrap(),
            );
        }
        // Nothing more may come: a further request fails the action under test.
    });
    (Client::new(service, "default"), server)
}

pub fn not_found(what: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": format!("{what} not found"), "reason": "NotFound", "code": 404}))
    .unwrap()
}

pub fn ok_status() -> Vec<u8> {
    serde_json::to_vec(&json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"})).unwrap()
}

pub fn ops(changes: &[kir_cluster::contain::Change]) -> Vec<&str> {
    changes.iter().map(|c| c.op.as_str()).collect()
}
