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

/// The label that marks a quarantined pod; its value is the isolating action's id.
pub const QUARANTINE_LABEL: &str = "kir.dev/quarantine";

/// The NetworkPolicy name for a pod (at most 63 characters).
pub fn quarantine_policy_name(pod: &str) -> String {
    let mut n = format!("kir-quarantine-{pod}");
    n.truncate(63);
    n.trim_end_matches(['-', '.']).to_string()
}

/// Isolates one pod: labels it (that pod only) and creates a NetworkPolicy that selects the label
/// and allows nothing in or out. The pod keeps running, for forensics. `allow_cidrs` keeps the
/// responders' network reachable both ways.
pub async fn isolate_pod(
    client: &Client,
    namespace: &str,
    pod: &str,
    action_id: &str,
    allow_cidrs: &[String],
    dry_run: bool,
) -> Result<(Vec<Change>, Value), Error> {
    let pod_path = format!("/api/v1/namespaces/{}/pods/{}", encode(namespace), encode(pod));
    let current = request(client, http::Method::GET, &pod_path, None)
        .await
        .map_err(|e| explain(e, "get", "pods", Some(namespace), Some(pod)))?;
    let current: Value = serde_json::from_str(&current).unwrap_or_default();
    let label_before = current
        .pointer(&format!("/metadata/labels/{}", QUARANTINE_LABEL.replace('/', "~1")))
        .cloned()
        .unwrap_or(Value::Null);
    // An already quarantined pod keeps its label value: running again changes nothing.
    let value = label_before.as_str().unwrap_or(action_id).to_string();
    let policy_name = quarantine_policy_name(pod);
    let policy_path =
        format!("/apis/networking.k8s.io/v1/namespaces/{}/networkpolicies/{}", encode(namespace), encode(&policy_name));
    let policy_exists = match request(client, http::Method::GET, &policy_path, None).await {
        Ok(_) => true,
        Err(kube::Error::Api(s)) if s.code == 404 => false,
        Err(e) => return Err(explain(e, "get", "networkpolicies", Some(namespace), Some(&policy_name))),
    };
    let before =
        json!({"label": label_before, "policy_existed": policy_exists, "policy": policy_name, "namespace": namespace});
    let dry = if dry_run { "?dryRun=All" } else { "" };
    let mut changes = Vec::new();
    if label_before.is_null() {
        let patch = serde_json::to_vec(&json!({"metadata": {"labels": {QUARANTINE_LABEL: value}}})).unwrap_or_default();
        request(
            client,
            http::Method::PATCH,
            &format!("{pod_path}{dry}"),
            Some(("application/strategic-merge-patch+json", patch)),
        )
        .await
        .map_err(|e| explain(e, "patch", "pods", Some(namespace), Some(pod)))?;
        changes.push(Change {
            op: "patch".into(),
            object: format!("pod/{namespace}/{pod}"),
            before: json!({"labels": {QUARANTINE_LABEL: null}}),
            after: json!({"labels": {QUARANTINE_LABEL: value}}),
        });
    }
    if !policy_exists {
        let peers: Vec<Value> = allow_cidrs.iter().map(|c| json!({"ipBlock": {"cidr": c}})).collect();
        let (ingress, egress) =
            if peers.is_empty() { (json!([]), json!([])) } else { (json!([{"from": peers}]), json!([{"to": peers}])) };
        let policy = json!({
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": policy_name, "namespace": namespace, "labels": {"app.kubernetes.io/managed-by": "kir", QUARANTINE_LABEL: value}},
            "spec": {"podSelector": {"matchLabels": {QUARANTINE_LABEL: value}}, "policyTypes": ["Ingress", "Egress"], "ingress": ingress, "egress": egress}
        });
        let list_path = format!("/apis/networking.k8s.io/v1/namespaces/{}/networkpolicies{dry}", encode(namespace));
        if let Err(e) = request(
            client,
            http::Method::POST,
            &list_path,
            Some(("application/json", serde_json::to_vec(&policy).unwrap_or_default())),
        )
        .await
        {
            // Nothing half-done: the label this call added goes again before the error is told.
            if label_before.is_null() && !dry_run {
                let unlabel =
                    serde_json::to_vec(&json!({"metadata": {"labels": {QUARANTINE_LABEL: null}}})).unwrap_or_default();
                let _ = request(
                    client,
                    http::Method::PATCH,
                    &pod_path,
                    Some(("application/strategic-merge-patch+json", unlabel)),
                )
                .await;
            }
            return Err(explain(e, "create", "networkpolicies", Some(namespace), Some(&policy_name)));
        }
        changes.push(Change {
            op: "create".into(),
            object: format!("networkpolicy/{namespace}/{policy_name}"),
            before: Value::Null,
            after: policy,
        });
    }
    if changes.is_empty() {
        changes.push(Change {
            op: "none".into(),
            object: format!("pod/{namespace}/{pod}"),
            before: before.clone(),
            after: before.clone(),
        });
    }
    Ok((changes, before))
}

/// Reverses `isolate_pod`: removes the NetworkPolicy and the label it added (only what it added).
pub async fn undo_isolate_pod(
    client: &Client,
    namespace: &str,
    pod: &str,
    before: &Value,
) -> Result<Vec<Change>, Error> {
    let mut changes = Vec::new();
    let policy = before
        .get("policy")
        .and_then(|p| p.as_str())
        .map(str::to_string)
        .unwrap_or_else(|| quarantine_policy_name(pod));
    if !before.get("policy_existed").and_then(|v| v.as_bool()).unwrap_or(false) {
        let path =
            format!("/apis/networking.k8s.io/v1/namespaces/{}/networkpolicies/{}", encode(namespace), encode(&policy));
        match request(client, http::Method::DELETE, &path, None).await {
            Ok(_) => changes.push(Change {
                op: "delete".into(),
                object: format!("networkpolicy/{namespace}/{policy}"),
                before: Value::Null,
                after: Value::Null,
            }),
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(explain(e, "delete", "networkpolicies", Some(namespace), Some(&policy))),
        }
    }
    if before.get("label").is_none_or(|l| l.is_null()) {
        let path = format!("/api/v1/namespaces/{}/pods/{}", encode(namespace), encode(pod));
        let patch = serde_json::to_vec(&json!({"metadata": {"labels": {QUARANTINE_LABEL: null}}})).unwrap_or_default();
        match request(client, http::Method::PATCH, &path, Some(("application/strategic-merge-patch+json", patch))).await
        {
            Ok(_) => changes.push(Change {
                op: "patch".into(),
                object: format!("pod/{namespace}/{pod}"),
                before: Value::Null,
                after: json!({"labels": {QUARANTINE_LABEL: null}}),
            }),
            // The pod is gone (redeployed): nothing left to unlabel.
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(explain(e, "patch", "pods", Some(namespace), Some(pod))),
        }
    }
    Ok(changes)
}
