//! Containment, each action reversible: the state before is returned for the undo record;
//! running an action twice changes nothing more; `dry_run` asks the API server to validate
//! without persisting (`?dryRun=All`).

use kube::Client;
use serde::Serialize;
use serde_json::{Value, json};

use crate::{Error, encode, explain};

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Change {
    /// `patch`, `create`, `delete`, or `none` when the object already was as wanted.
    pub op: String,
    pub object: String,
    pub before: Value,
    pub after: Value,
}

async fn request(
    client: &Client,
    method: http::Method,
    path: &str,
    body: Option<(&str, Vec<u8>)>,
) -> Result<String, kube::Error> {
    let mut b = http::Request::builder().method(method).uri(path);
    let bytes = match body {
        Some((content_type, bytes)) => {
            b = b.header("content-type", content_type);
            bytes
        }
        None => Vec::new(),
    };
    client.request_text(b.body(bytes).expect("a request builds")).await
}

/// Marks a node unschedulable (what `kubectl cordon` does). Returns the changes and the state
/// before.
pub async fn cordon(client: &Client, node: &str, dry_run: bool) -> Result<(Vec<Change>, Value), Error> {
    let path = format!("/api/v1/nodes/{}", encode(node));
    let current = request(client, http::Method::GET, &path, None)
        .await
        .map_err(|e| explain(e, "get", "nodes", None, Some(node)))?;
    let current: Value = serde_json::from_str(&current).unwrap_or_default();
    let was = current.pointer("/spec/unschedulable").and_then(|v| v.as_bool()).unwrap_or(false);
    let before = json!({"unschedulable": was});
    if was {
        let unchanged =
            Change { op: "none".into(), object: format!("node/{node}"), before: before.clone(), after: before.clone() };
        return Ok((vec![unchanged], before));
    }
    let patch = serde_json::to_vec(&json!({"spec": {"unschedulable": true}})).unwrap_or_default();
    let target = if dry_run { format!("{path}?dryRun=All") } else { path };
    request(client, http::Method::PATCH, &target, Some(("application/strategic-merge-patch+json", patch)))
        .await
        .map_err(|e| explain(e, "patch", "nodes", None, Some(node)))?;
    let change = Change {
        op: "patch".into(),
        object: format!("node/{node}"),
        before: before.clone(),
        after: json!({"unschedulable": true}),
    };
    Ok((vec![change], before))
}

/// Restores a node's schedulability as it was before `cordon`.
pub async fn undo_cordon(client: &Client, node: &str, before: &Value) -> Result<Vec<Change>, Error> {
    if before.get("unschedulable").and_then(|v| v.as_bool()).unwrap_or(false) {
        // It was cordoned before kir touched it: undo leaves it so.
        return Ok(vec![Change {
            op: "none".into(),
            object: format!("node/{node}"),
            before: before.clone(),
            after: before.clone(),
        }]);
    }
    let path = format!("/api/v1/nodes/{}", encode(node));
    let patch = serde_json::to_vec(&json!({"spec": {"unschedulable": null}})).unwrap_or_default();
    request(client, http::Method::PATCH, &path, Some(("application/strategic-merge-patch+json", patch)))
        .await
        .map_err(|e| explain(e, "patch", "nodes", None, Some(node)))?;
    Ok(vec![Change {
        op: "patch".into(),
        object: format!("node/{node}"),
        before: json!({"unschedulable": true}),
        after: json!({"unschedulable": false}),
    }])
}
