//! Who a Kubernetes token belongs to, and what the cluster's RBAC lets them do in kir: a
//! TokenReview for the identity, SubjectAccessReviews on kir's virtual resources for the role.
//! `kir serve --kube-auth` uses them so that the cluster decides who may approve.

use kube::Client;
use serde_json::{Value, json};

use crate::{Error, explain, request};

/// The user a token belongs to, as the API server authenticated it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewedUser {
    pub username: String,
    pub uid: String,
    pub groups: Vec<String>,
}

/// The virtual resources kir asks about: `VERB RESOURCE.kir.dev`.
pub const API_GROUP: &str = "kir.dev";

/// Creates review `resource` at `path` (reviews are answered, never stored) and returns the
/// answer, whose `status` holds the verdict.
async fn review(client: &Client, path: &str, resource: &str, body: Value) -> Result<Value, Error> {
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    let text = request(client, http::Method::POST, path, Some(("application/json", bytes)))
        .await
        .map_err(|e| explain(e, "create", resource, None, None))?;
    serde_json::from_str(&text).map_err(|e| Error::Api {
        code: 201,
        what: format!("create {resource}"),
        message: format!("the answer is not JSON: {e}"),
    })
}

/// Asks the API server who `token` is (TokenReview). `None` when it is not authenticated.
pub async fn token_review(client: &Client, token: &str) -> Result<Option<ReviewedUser>, Error> {
    let body = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}});
    let answer = review(client, "/apis/authentication.k8s.io/v1/tokenreviews", "tokenreviews", body).await?;
    let status = &answer["status"];
    if status["authenticated"] != Value::Bool(true) {
        return Ok(None);
    }
    let user = &status["user"];
    let Some(username) = user["username"].as_str().filter(|u| !u.is_empty()) else { return Ok(None) };
    Ok(Some(ReviewedUser {
        username: username.to_string(),
        uid: user["uid"].as_str().unwrap_or_default().to_string(),
        groups: user["groups"].as_array().into_iter().flatten().filter_map(Value::as_str).map(str::to_string).collect(),
    }))
}

/// Whether `user` may `verb` `resource` in kir's API group, by the cluster's RBAC
/// (SubjectAccessReview).
pub async fn may(client: &Client, user: &ReviewedUser, verb: &str, resource: &str) -> Result<bool, Error> {
    let body = json!({
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {
            "user": user.username,
            "uid": user.uid,
            "groups": user.groups,
            "resourceAttributes": {"group": API_GROUP, "resource": resource, "verb": verb},
        },
    });
    let answer =
        review(client, "/apis/authorization.k8s.io/v1/subjectaccessreviews", "subjectaccessreviews", body).await?;
    Ok(answer["status"]["allowed"] == Value::Bool(true))
}
