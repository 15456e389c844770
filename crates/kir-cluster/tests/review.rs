//! TokenReview and SubjectAccessReview through the mock API server: the exact requests kir
//! sends, and what it makes of the answers. `../shared/k8s-api` has no recording of these two
//! reviews: the answers are the API server's documented shapes (authentication.k8s.io/v1 and
//! authorization.k8s.io/v1: the request echoed with its `status` filled).

mod common;

use common::*;
use http::Method;
use kir_cluster::review::{ReviewedUser, may, token_review};
use serde_json::json;

const TOKEN_REVIEWS: &str = "/apis/authentication.k8s.io/v1/tokenreviews";
const ACCESS_REVIEWS: &str = "/apis/authorization.k8s.io/v1/subjectaccessreviews";

fn alice() -> ReviewedUser {
    ReviewedUser {
        username: "alice".into(),
        uid: "6f1e0b8a".into(),
        groups: vec!["soc".into(), "system:authenticated".into()],
    }
}

#[tokio::test]
async fn a_token_the_cluster_knows_is_its_user_and_rbac_decides_the_role() {
    let asked =
        json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": "eyJhbGc.alice"}});
    let mut answered = asked.clone();
    answered["metadata"] = json!({"creationTimestamp": null});
    answered["status"] = json!({"authenticated": true, "user": {"username": "alice", "uid": "6f1e0b8a", "groups": ["soc", "system:authenticated"]}, "audiences": ["https://kubernetes.default.svc.cluster.local"]});
    let sar = |verb: &str, allowed: bool| {
        let asked = json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": {
            "user": "alice", "uid": "6f1e0b8a", "groups": ["soc", "system:authenticated"],
            "resourceAttributes": {"group": "kir.dev", "resource": "incidents", "verb": verb}}});
        let mut answer = asked.clone();
        answer["metadata"] = json!({"creationTimestamp": null});
        answer["status"] = if allowed {
            json!({"allowed": true, "reason": "RBAC: allowed by ClusterRoleBinding \"kir-approvers\" of ClusterRole \"kir-approver\" to Group \"soc\""})
        } else {
            json!({"allowed": false})
        };
        call(Method::POST, ACCESS_REVIEWS, 201, serde_json::to_vec(&answer).unwrap()).body(asked, JSON)
    };
    let (client, server) = mock(vec![
        call(Method::POST, TOKEN_REVIEWS, 201, serde_json::to_vec(&answered).unwrap()).body(asked, JSON),
        sar("admin", false),
        sar("approve", true),
    ]);
    assert_eq!(token_review(&client, "eyJhbGc.alice").await.unwrap(), Some(alice()));
    assert!(!may(&client, &alice(), "admin", "incidents").await.unwrap());
    assert!(may(&client, &alice(), "approve", "incidents").await.unwrap());
    server.await.unwrap();
}

#[tokio::test]
async fn a_token_the_cluster_does_not_know_is_nobody() {
    let asked = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": "forged"}});
    let mut answered = asked.clone();
    answered["metadata"] = json!({"creationTimestamp": null});
    answered["status"] = json!({"user": {}, "error": "[invalid bearer token, token lookup failed]"});
    let (client, server) =
        mock(vec![call(Method::POST, TOKEN_REVIEWS, 201, serde_json::to_vec(&answered).unwrap()).body(asked, JSON)]);
    assert_eq!(token_review(&client, "forged").await.unwrap(), None);
    server.await.unwrap();
}

#[tokio::test]
async fn a_service_that_may_not_review_tokens_says_which_permission_it_lacks() {
    let forbidden = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "tokenreviews.authentication.k8s.io is forbidden: User \"system:serviceaccount:kir:kir\" cannot create resource \"tokenreviews\" in API group \"authentication.k8s.io\" at the cluster scope",
        "reason": "Forbidden", "details": {"group": "authentication.k8s.io", "kind": "tokenreviews"}, "code": 403});
    let (client, server) = mock(vec![call(Method::POST, TOKEN_REVIEWS, 403, serde_json::to_vec(&forbidden).unwrap())]);
    let e = token_review(&client, "t").await.unwrap_err().to_string();
    assert!(e.contains("tokenreviews"), "{e}");
    server.await.unwrap();
}
