//! Containment, each action reversible and never half-done.
//!
//! Every action is built in three steps that are the same for all of them:
//! 1. **plan**: read the objects (GETs only) and work out the exact writes, the state before
//!    (kept for undo) and the permission each write needs;
//! 2. **preflight**: ask the API server whether this identity may do every write
//!    (SelfSubjectAccessReview); if one is missing, all missing ones are named and nothing changes;
//! 3. **apply**: send the writes in order (with `?dryRun=All` for a dry run). If one fails, the
//!    writes already made are taken back before the error is told.
//!
//! Running an action twice changes nothing more: the plan reads the cluster first and leaves out
//! what already is as wanted.

use std::collections::BTreeSet;
use std::fmt;
use std::time::Duration;

use kube::Client;
use serde::Serialize;
use serde_json::{Value, json};

use crate::{Error, encode, explain, get_json, request};

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Change {
    /// `patch`, `create`, `delete`, `evict`, `blocked` (an eviction a PodDisruptionBudget kept
    /// refusing), or `none` when the object already was as wanted.
    pub op: String,
    pub object: String,
    pub before: Value,
    pub after: Value,
}

/// One permission a write needs, as RBAC and SelfSubjectAccessReview spell it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Permission {
    pub verb: &'static str,
    pub group: &'static str,
    pub resource: &'static str,
    pub subresource: Option<&'static str>,
    pub namespace: Option<String>,
    /// The object, where RBAC checks its name (patch, delete, an eviction, `bind` on the role a
    /// binding points to); `None` for a create, whose object has no name RBAC can check yet.
    pub name: Option<String>,
}

impl Permission {
    fn new(verb: &'static str, group: &'static str, resource: &'static str, namespace: Option<&str>) -> Self {
        Permission { verb, group, resource, subresource: None, namespace: namespace.map(str::to_string), name: None }
    }

    /// `bind` on the role a binding grants: the API server refuses to create or change a
    /// binding to a role whose permissions the caller does not hold, unless it may bind it.
    fn bind(role_ref: &Value, namespace: Option<&str>) -> Self {
        let resource =
            if role_ref.get("kind").and_then(|k| k.as_str()) == Some("Role") { "roles" } else { "clusterroles" };
        Permission {
            verb: "bind",
            group: RBAC,
            resource,
            subresource: None,
            namespace: namespace.map(str::to_string),
            name: role_ref.get("name").and_then(|n| n.as_str()).map(str::to_string),
        }
    }

    fn review(&self) -> Value {
        let mut attributes = json!({"verb": self.verb, "resource": self.resource});
        if !self.group.is_empty() {
            attributes["group"] = json!(self.group);
        }
        if let Some(s) = self.subresource {
            attributes["subresource"] = json!(s);
        }
        if let Some(ns) = &self.namespace {
            attributes["namespace"] = json!(ns);
        }
        if let Some(name) = &self.name {
            attributes["name"] = json!(name);
        }
        json!({"resourceAttributes": attributes})
    }
}

impl fmt::Display for Permission {
    /// `create networkpolicies.networking.k8s.io in namespace shop`, `patch nodes (cluster-wide)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.verb, self.resource)?;
        if let Some(s) = self.subresource {
            write!(f, "/{s}")?;
        }
        if !self.group.is_empty() {
            write!(f, ".{}", self.group)?;
        }
        if let Some(name) = &self.name {
            write!(f, " {name:?}")?;
        }
        match &self.namespace {
            Some(ns) => write!(f, " in namespace {ns}"),
            None => write!(f, " (cluster-wide)"),
        }
    }
}

/// One request that changes the cluster.
#[derive(Debug, Clone)]
pub struct Write {
    pub method: http::Method,
    /// Path and query, without `dryRun`.
    pub path: String,
    pub content_type: &'static str,
    pub body: Option<Value>,
    pub permission: Permission,
    /// Further permissions the API server checks for this write (`bind` for a binding).
    pub also_needs: Vec<Permission>,
    /// For messages: the object's name.
    pub name: String,
    pub change: Change,
    /// An answer that means "already as wanted" (404 to a delete, 409 to a create).
    pub already: Option<u16>,
    /// What takes this write back if a later write fails.
    pub rollback: Option<Box<Write>>,
}

/// What an action will do, worked out from what the cluster holds now.
#[derive(Debug, Clone, Default)]
pub struct Planned {
    /// The state before, as undo needs it.
    pub before: Value,
    pub writes: Vec<Write>,
    /// The object the action is about (for the "nothing to change" line).
    pub object: String,
    /// Retry writes answered 429 (an eviction a PodDisruptionBudget refuses) every `interval`
    /// until `limit` has passed; then the write is reported `blocked` and the others go on.
    pub retry_429: Option<(Duration, Duration)>,
}

impl Planned {
    /// Every permission the writes need, once each, and those their rollbacks need: a write
    /// that could not be taken back would leave the action half-done.
    pub fn permissions(&self) -> Vec<Permission> {
        let mut set = BTreeSet::new();
        for w in &self.writes {
            for w in std::iter::once(w).chain(w.rollback.as_deref()) {
                set.insert(w.permission.clone());
                set.extend(w.also_needs.iter().cloned());
            }
        }
        set.into_iter().collect()
    }
}

/// The permissions a playbook action needs in any namespace (`isolate-pod`, `cordon-node`, …
/// as the plan names them), for readiness: asked cluster-wide, since the incident's namespace
/// is not known beforehand. Actions that change nothing in the cluster need none.
pub fn permissions_for_action(action: &str) -> Vec<Permission> {
    const NET: &str = "networking.k8s.io";
    let p = |verb, group, resource| Permission::new(verb, group, resource, None);
    match action {
        "isolate-pod" => {
            vec![p("create", NET, "networkpolicies"), p("patch", "", "pods"), p("delete", NET, "networkpolicies")]
        }
        "label" => vec![p("patch", "", "pods"), p("patch", "", "nodes")],
        "cordon-node" | "quarantine-node" => vec![p("patch", "", "nodes")],
        "drain-node" => {
            vec![p("patch", "", "nodes"), Permission { subresource: Some("eviction"), ..p("create", "", "pods") }]
        }
        "revoke-serviceaccount" | "revoke-user" => vec![
            p("delete", RBAC, "rolebindings"),
            p("delete", RBAC, "clusterrolebindings"),
            p("create", RBAC, "rolebindings"),
            p("create", RBAC, "clusterrolebindings"),
        ],
        "scale-down" => vec![Permission { subresource: Some("scale"), ..p("patch", "apps", "deployments") }],
        "suspend-cronjob" => vec![p("patch", "batch", "cronjobs")],
        "delete-pod" => vec![p("delete", "", "pods")],
        _ => Vec::new(),
    }
}

/// Asks the API server, for each permission, whether this identity holds it. Returns the
/// missing ones (empty: all granted).
pub async fn missing_permissions(client: &Client, wanted: &[Permission]) -> Result<Vec<Permission>, Error> {
    let mut missing = Vec::new();
    for p in wanted {
        if !access_allowed(client, p.review()).await? {
            missing.push(p.clone());
        }
    }
    Ok(missing)
}

/// One SelfSubjectAccessReview with `spec` (resource or non-resource attributes): allowed?
async fn access_allowed(client: &Client, spec: Value) -> Result<bool, Error> {
    let body = json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview", "spec": spec});
    let answer = request(
        client,
        http::Method::POST,
        "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
        Some(("application/json", serde_json::to_vec(&body).unwrap_or_default())),
    )
    .await
    .map_err(|e| explain(e, "create", "selfsubjectaccessreviews", None, None))?;
    let answer: Value = serde_json::from_str(&answer).unwrap_or_default();
    Ok(answer.pointer("/status/allowed").and_then(|a| a.as_bool()) == Some(true))
}

fn with_dry_run(path: &str) -> String {
    if path.contains('?') { format!("{path}&dryRun=All") } else { format!("{path}?dryRun=All") }
}

async fn send(client: &Client, w: &Write, dry_run: bool) -> Result<String, kube::Error> {
    let path = if dry_run { with_dry_run(&w.path) } else { w.path.clone() };
    let mut body = w.body.clone();
    // A DELETE with a DeleteOptions body: the API server reads its options from the body alone
    // and ignores the query, so the dry run must be said there too, or the delete is real.
    if dry_run
        && w.method == http::Method::DELETE
        && let Some(options) = body.as_mut().and_then(|b| b.as_object_mut())
    {
        options.insert("dryRun".into(), json!(["All"]));
    }
    let body = body.map(|b| (w.content_type, serde_json::to_vec(&b).unwrap_or_default()));
    request(client, w.method.clone(), &path, body).await
}

/// Asks for every permission the plan needs; names all the missing ones at once.
pub async fn preflight(client: &Client, planned: &Planned) -> Result<(), Error> {
    let mut missing = missing_permissions(client, &planned.permissions()).await?;
    // The API server also lets a binding through when its author holds every permission of the
    // role (its escalation check), so a missing `bind` is not the last word.
    let mut still = Vec::new();
    for p in missing.drain(..) {
        if p.verb == "bind" && holds_role(client, &p).await? {
            continue;
        }
        still.push(p);
    }
    if !still.is_empty() {
        return Err(Error::MissingPermissions(
            still
                .iter()
                .map(|p| {
                    if p.verb == "bind" { format!("{p}, or every permission that role grants") } else { p.to_string() }
                })
                .collect(),
        ));
    }
    Ok(())
}

/// Whether this identity holds every permission the role `bind` names grants, where the binding
/// would grant it: RBAC's escalation check, asked one SelfSubjectAccessReview per rule entry. A
/// role that cannot be read, or one too large to ask about, counts as not held.
async fn holds_role(client: &Client, bind: &Permission) -> Result<bool, Error> {
    const MOST_REVIEWS: usize = 200;
    let Some(name) = &bind.name else { return Ok(false) };
    let path = match (bind.resource, &bind.namespace) {
        ("roles", Some(ns)) => format!("/apis/{RBAC}/v1/namespaces/{}/roles/{}", encode(ns), encode(name)),
        _ => format!("/apis/{RBAC}/v1/clusterroles/{}", encode(name)),
    };
    let Ok(role) = get_json(client, &path, "get", bind.resource, bind.namespace.as_deref(), Some(name)).await else {
        return Ok(false);
    };
    let strings = |v: &Value, key: &str| -> Vec<String> {
        v.get(key)
            .and_then(|a| a.as_array())
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str())
            .map(str::to_string)
            .collect()
    };
    let mut reviews = Vec::new();
    for rule in role.get("rules").and_then(|r| r.as_array()).into_iter().flatten() {
        let verbs = strings(rule, "verbs");
        for url in strings(rule, "nonResourceURLs") {
            for verb in &verbs {
                reviews.push(json!({"nonResourceAttributes": {"path": url, "verb": verb}}));
            }
        }
        let names = strings(rule, "resourceNames");
        let names: Vec<Option<String>> =
            if names.is_empty() { vec![None] } else { names.into_iter().map(Some).collect() };
        for group in strings(rule, "apiGroups") {
            for resource in strings(rule, "resources") {
                let (resource, subresource) = match resource.split_once('/') {
                    Some((r, s)) => (r.to_string(), Some(s.to_string())),
                    None => (resource, None),
                };
                for verb in &verbs {
                    for n in &names {
                        let mut a = json!({"verb": verb, "resource": resource});
                        if !group.is_empty() {
                            a["group"] = json!(group);
                        }
                        if let Some(s) = &subresource {
                            a["subresource"] = json!(s);
                        }
                        if let Some(ns) = &bind.namespace {
                            a["namespace"] = json!(ns);
                        }
                        if let Some(n) = n {
                            a["name"] = json!(n);
                        }
                        reviews.push(json!({"resourceAttributes": a}));
                    }
                }
            }
        }
    }
    if reviews.len() > MOST_REVIEWS {
        return Ok(false);
    }
    for spec in reviews {
        if !access_allowed(client, spec).await? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Checks every permission first, then makes the writes. Returns the changes made (or that a dry
/// run would make); a failed write takes back the ones before it.
pub async fn apply(client: &Client, planned: &Planned, dry_run: bool) -> Result<Vec<Change>, Error> {
    preflight(client, planned).await?;
    apply_preflighted(client, planned, dry_run).await
}

/// `apply` without asking for the permissions again (the caller ran `preflight`).
pub async fn apply_preflighted(client: &Client, planned: &Planned, dry_run: bool) -> Result<Vec<Change>, Error> {
    let mut changes = Vec::new();
    let mut done: Vec<&Write> = Vec::new();
    for w in &planned.writes {
        let started = std::time::Instant::now();
        let outcome = loop {
            match send(client, w, dry_run).await {
                Err(kube::Error::Api(s)) if s.code == 429 => match planned.retry_429 {
                    Some((interval, limit)) if started.elapsed() < limit => tokio::time::sleep(interval).await,
                    Some(_) => break Ok(Some("blocked")),
                    None => break Err(kube::Error::Api(s)),
                },
                Err(kube::Error::Api(s)) if Some(s.code) == w.already => break Ok(Some("none")),
                Err(e) => break Err(e),
                Ok(_) => break Ok(None),
            }
        };
        match outcome {
            Ok(None) => {
                changes.push(w.change.clone());
                done.push(w);
            }
            Ok(Some(op)) => {
                let mut c = w.change.clone();
                c.op = op.into();
                changes.push(c);
            }
            Err(e) => {
                let p = &w.permission;
                let error = explain(e, p.verb, p.resource, p.namespace.as_deref(), Some(&w.name));
                let mut not_taken_back = Vec::new();
                if !dry_run {
                    for d in done.iter().rev() {
                        match &d.rollback {
                            Some(back) => {
                                if let Err(e) = send(client, back, false).await {
                                    not_taken_back.push(format!("{} {} ({e})", d.change.op, d.change.object));
                                }
                            }
                            None => not_taken_back
                                .push(format!("{} {} (it cannot be taken back)", d.change.op, d.change.object)),
                        }
                    }
                }
                if not_taken_back.is_empty() {
                    return Err(error);
                }
                return Err(Error::HalfDone { error: Box::new(error), left: not_taken_back });
            }
        }
    }
    if changes.is_empty() {
        changes.push(Change {
            op: "none".into(),
            object: planned.object.clone(),
            before: planned.before.clone(),
            after: planned.before.clone(),
        });
    }
    Ok(changes)
}

const STRATEGIC: &str = "application/strategic-merge-patch+json";
const MERGE: &str = "application/merge-patch+json";
const JSON: &str = "application/json";

fn node_path(node: &str) -> String {
    format!("/api/v1/nodes/{}", encode(node))
}

fn pod_path(namespace: &str, pod: &str) -> String {
    format!("/api/v1/namespaces/{}/pods/{}", encode(namespace), encode(pod))
}

fn patch(path: String, content_type: &'static str, body: Value, permission: Permission, name: &str) -> Write {
    // RBAC checks the object's name for patch and delete (a grant may be limited to names).
    let permission = Permission { name: Some(name.to_string()), ..permission };
    Write {
        method: http::Method::PATCH,
        path,
        content_type,
        body: Some(body),
        permission,
        also_needs: Vec::new(),
        name: name.to_string(),
        change: Change { op: "patch".into(), object: String::new(), before: Value::Null, after: Value::Null },
        already: None,
        rollback: None,
    }
}

impl Write {
    fn describe(mut self, object: String, before: Value, after: Value) -> Self {
        self.change.object = object;
        self.change.before = before;
        self.change.after = after;
        self
    }

    fn op(mut self, op: &str) -> Self {
        self.change.op = op.into();
        self
    }

    fn already(mut self, code: u16) -> Self {
        self.already = Some(code);
        self
    }

    fn also_needs(mut self, p: Permission) -> Self {
        self.also_needs.push(p);
        self
    }

    fn rollback(mut self, back: Write) -> Self {
        self.rollback = Some(Box::new(back));
        self
    }
}

fn delete(path: String, permission: Permission, name: &str) -> Write {
    // RBAC checks the object's name for patch and delete (a grant may be limited to names).
    let permission = Permission { name: Some(name.to_string()), ..permission };
    Write {
        method: http::Method::DELETE,
        path,
        content_type: JSON,
        body: None,
        permission,
        also_needs: Vec::new(),
        name: name.to_string(),
        change: Change { op: "delete".into(), object: String::new(), before: Value::Null, after: Value::Null },
        already: Some(404),
        rollback: None,
    }
}

fn create(path: String, body: Value, permission: Permission, name: &str) -> Write {
    Write {
        method: http::Method::POST,
        path,
        content_type: JSON,
        body: Some(body),
        permission,
        also_needs: Vec::new(),
        name: name.to_string(),
        change: Change { op: "create".into(), object: String::new(), before: Value::Null, after: Value::Null },
        already: Some(409),
        rollback: None,
    }
}

// ---------------------------------------------------------------------------------------------
// Nodes: cordon, quarantine, drain.

/// Marks a node unschedulable (what `kubectl cordon` does); running pods stay.
pub async fn cordon(client: &Client, node: &str) -> Result<Planned, Error> {
    let current = get_json(client, &node_path(node), "get", "nodes", None, Some(node)).await?;
    let was = current.pointer("/spec/unschedulable").and_then(|v| v.as_bool()).unwrap_or(false);
    let before = json!({"unschedulable": was});
    let mut writes = Vec::new();
    if !was {
        writes.push(
            patch(
                node_path(node),
                STRATEGIC,
                json!({"spec": {"unschedulable": true}}),
                Permission::new("patch", "", "nodes", None),
                node,
            )
            .describe(format!("node/{node}"), before.clone(), json!({"unschedulable": true})),
        );
    }
    Ok(Planned { before, writes, object: format!("node/{node}"), retry_429: None })
}

/// Restores a node's schedulability as it was before `cordon` (a node that was cordoned before
/// kir touched it stays cordoned).
pub fn undo_cordon(node: &str, before: &Value) -> Planned {
    let mut writes = Vec::new();
    if !before.get("unschedulable").and_then(|v| v.as_bool()).unwrap_or(false) {
        writes.push(
            patch(
                node_path(node),
                STRATEGIC,
                json!({"spec": {"unschedulable": null}}),
                Permission::new("patch", "", "nodes", None),
                node,
            )
            .describe(
                format!("node/{node}"),
                json!({"unschedulable": true}),
                json!({"unschedulable": false}),
            ),
        );
    }
    Planned { before: before.clone(), writes, object: format!("node/{node}"), retry_429: None }
}

/// The label (on pods) and taint key (on nodes) of quarantine; its value is the action's id.
pub const QUARANTINE_LABEL: &str = "kir.dev/quarantine";

fn taints_without_ours(node: &Value) -> Vec<Value> {
    node.pointer("/spec/taints")
        .and_then(|t| t.as_array())
        .map(|t| t.iter().filter(|t| t["key"] != QUARANTINE_LABEL).cloned().collect())
        .unwrap_or_default()
}

/// Cordons a node and adds the taint `kir.dev/quarantine=ACTION_ID:NoSchedule`. The cordon keeps
/// new pods off; the taint also keeps DaemonSet pods off (they tolerate the cordon's own taint,
/// not this one). Running pods stay, for forensics: the taint is not `NoExecute`.
pub async fn quarantine_node(client: &Client, node: &str, action_id: &str) -> Result<Planned, Error> {
    let current = get_json(client, &node_path(node), "get", "nodes", None, Some(node)).await?;
    let was = current.pointer("/spec/unschedulable").and_then(|v| v.as_bool()).unwrap_or(false);
    let mut taints = taints_without_ours(&current);
    let existing = current
        .pointer("/spec/taints")
        .and_then(|t| t.as_array())
        .and_then(|t| t.iter().find(|t| t["key"] == QUARANTINE_LABEL).cloned());
    let before = json!({"unschedulable": was, "taint": existing});
    let mut writes = Vec::new();
    if !was || existing.is_none() {
        let ours = existing
            .clone()
            .unwrap_or_else(|| json!({"key": QUARANTINE_LABEL, "value": action_id, "effect": "NoSchedule"}));
        taints.push(ours.clone());
        // A strategic merge patch replaces the whole taint list; the resourceVersion makes a
        // concurrent change of the node fail (409) instead of being overwritten.
        let rv = current.pointer("/metadata/resourceVersion").cloned().unwrap_or(Value::Null);
        writes.push(
            patch(
                node_path(node),
                STRATEGIC,
                json!({"metadata": {"resourceVersion": rv}, "spec": {"unschedulable": true, "taints": taints}}),
                Permission::new("patch", "", "nodes", None),
                node,
            )
            .describe(
                format!("node/{node}"),
                before.clone(),
                json!({"unschedulable": true, "taint": ours}),
            ),
        );
    }
    Ok(Planned { before, writes, object: format!("node/{node}"), retry_429: None })
}

/// Takes kir's taint off (if kir added it) and uncordons (if the node was schedulable before).
pub async fn undo_quarantine_node(client: &Client, node: &str, before: &Value) -> Result<Planned, Error> {
    let current = get_json(client, &node_path(node), "get", "nodes", None, Some(node)).await?;
    let was = before.get("unschedulable").and_then(|v| v.as_bool()).unwrap_or(false);
    let taint_was_there = before.get("taint").is_some_and(|t| !t.is_null());
    let has_ours = current
        .pointer("/spec/taints")
        .and_then(|t| t.as_array())
        .is_some_and(|t| t.iter().any(|t| t["key"] == QUARANTINE_LABEL));
    let mut spec = serde_json::Map::new();
    if !taint_was_there && has_ours {
        // No taint left: the field goes, as it was before (the API server omits an empty list).
        let rest = taints_without_ours(&current);
        spec.insert("taints".into(), if rest.is_empty() { Value::Null } else { Value::Array(rest) });
    }
    if !was && current.pointer("/spec/unschedulable").and_then(|v| v.as_bool()).unwrap_or(false) {
        spec.insert("unschedulable".into(), Value::Null);
    }
    let mut writes = Vec::new();
    if !spec.is_empty() {
        let rv = current.pointer("/metadata/resourceVersion").cloned().unwrap_or(Value::Null);
        writes.push(
            patch(
                node_path(node),
                STRATEGIC,
                json!({"metadata": {"resourceVersion": rv}, "spec": spec}),
                Permission::new("patch", "", "nodes", None),
                node,
            )
            .describe(format!("node/{node}"), json!({"quarantined": true}), before.clone()),
        );
    }
    Ok(Planned { before: before.clone(), writes, object: format!("node/{node}"), retry_429: None })
}

/// A pod on a node and whether a drain evicts it.
#[derive(Debug, Clone, Serialize)]
pub struct DrainPod {
    pub namespace: String,
    pub name: String,
    pub uid: Option<String>,
    /// Why it stays (DaemonSet, static pod, already finished); `None`: it is evicted.
    pub skipped: Option<String>,
}

/// Cordons a node, then evicts its pods through the Eviction API, so PodDisruptionBudgets are
/// respected: a refused eviction (429) is retried every `interval` until `limit`, then reported
/// `blocked`. DaemonSet pods and static (mirror) pods are skipped, as `kubectl drain
/// --ignore-daemonsets` does.
pub async fn drain_node(
    client: &Client,
    node: &str,
    interval: Duration,
    limit: Duration,
) -> Result<(Planned, Vec<DrainPod>), Error> {
    let mut planned = cordon(client, node).await?;
    let list = get_json(
        client,
        &format!("/api/v1/pods?fieldSelector={}", encode(&format!("spec.nodeName={node}"))),
        "list",
        "pods",
        None,
        None,
    )
    .await?;
    let mut pods = Vec::new();
    for p in list.get("items").and_then(|i| i.as_array()).into_iter().flatten() {
        let namespace = p.pointer("/metadata/namespace").and_then(|v| v.as_str()).unwrap_or_default().to_string();
        let name = p.pointer("/metadata/name").and_then(|v| v.as_str()).unwrap_or_default().to_string();
        let owned_by_daemonset = p
            .pointer("/metadata/ownerReferences")
            .and_then(|o| o.as_array())
            .is_some_and(|o| o.iter().any(|o| o["kind"] == "DaemonSet"));
        let mirror = p.pointer("/metadata/annotations/kubernetes.io~1config.mirror").is_some();
        let phase = p.pointer("/status/phase").and_then(|v| v.as_str()).unwrap_or_default();
        let skipped = if owned_by_daemonset {
            Some("DaemonSet pod".to_string())
        } else if mirror {
            Some("static pod (the kubelet runs it from a file on the node)".to_string())
        } else if phase == "Succeeded" || phase == "Failed" {
            Some(format!("already finished ({phase})"))
        } else {
            None
        };
        if skipped.is_none() {
            let eviction = json!({"apiVersion": "policy/v1", "kind": "Eviction",
                "metadata": {"name": name, "namespace": namespace}});
            let mut w = create(
                format!("{}/eviction", pod_path(&namespace, &name)),
                eviction,
                Permission {
                    verb: "create",
                    group: "",
                    resource: "pods",
                    subresource: Some("eviction"),
                    namespace: Some(namespace.clone()),
                    name: Some(name.clone()),
                },
                &name,
            )
            .op("evict")
            .describe(format!("pod/{namespace}/{name}"), json!({"node": node}), Value::Null);
            w.already = Some(404);
            planned.writes.push(w);
        }
        let uid = p.pointer("/metadata/uid").and_then(|u| u.as_str()).map(str::to_string);
        pods.push(DrainPod { namespace, name, uid, skipped });
    }
    planned.retry_429 = Some((interval, limit));
    Ok((planned, pods))
}

// ---------------------------------------------------------------------------------------------
// Pods: isolate, label, delete.

/// The NetworkPolicy name for one pod: `kir-quarantine-` + the start of the pod's name + a hash
/// of namespace, name and UID. The hash keeps two pods whose names share a long prefix (and a
/// pod re-created under the same name) from ever sharing a policy; the total stays within 63.
pub fn quarantine_policy_name(namespace: &str, pod: &str, uid: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("{namespace}/{pod}/{uid}").as_bytes());
    let hash = &hex::encode(digest)[..10];
    let mut prefix: String = pod.chars().take(37).collect();
    while prefix.ends_with(['-', '.']) {
        prefix.pop();
    }
    format!("kir-quarantine-{prefix}-{hash}")
}

/// The quarantine label value an existing NetworkPolicy selects, if it is exactly kir's shape:
/// a selector on that one label, both policy types. Anything else under kir's name is not ours.
fn quarantine_policy_value(policy: &Value) -> Option<String> {
    let selector = policy.pointer("/spec/podSelector")?;
    let labels = selector.get("matchLabels")?.as_object()?;
    if labels.len() != 1
        || selector.get("matchExpressions").is_some_and(|e| e.as_array().is_some_and(|a| !a.is_empty()))
    {
        return None;
    }
    let types = policy.pointer("/spec/policyTypes")?.as_array()?;
    if !(types.contains(&json!("Ingress")) && types.contains(&json!("Egress"))) {
        return None;
    }
    // No rule, or rules that name only address blocks (the responders' `--allow-cidr`): an
    // empty peer list, a pod or namespace selector, a port or an `except` would let more in.
    let only_address_blocks = |rules: Option<&Value>, peers: &str| {
        rules.is_none_or(|r| {
            r.is_null()
                || r.as_array().is_some_and(|rules| {
                    rules.iter().all(|rule| {
                        rule.as_object().is_some_and(|o| o.keys().all(|k| k == peers))
                            && rule.get(peers).and_then(|p| p.as_array()).is_some_and(|p| {
                                !p.is_empty()
                                    && p.iter().all(|peer| {
                                        peer.as_object().is_some_and(|o| o.len() == 1)
                                            && peer.pointer("/ipBlock/cidr").is_some_and(|c| c.is_string())
                                            && peer.pointer("/ipBlock/except").is_none()
                                    })
                            })
                    })
                })
        })
    };
    if !only_address_blocks(policy.pointer("/spec/ingress"), "from")
        || !only_address_blocks(policy.pointer("/spec/egress"), "to")
    {
        return None;
    }
    labels.get(QUARANTINE_LABEL)?.as_str().map(str::to_string)
}

fn label_pointer(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
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
) -> Result<Planned, Error> {
    let path = pod_path(namespace, pod);
    let current = get_json(client, &path, "get", "pods", Some(namespace), Some(pod)).await?;
    let label_before = current
        .pointer(&format!("/metadata/labels/{}", label_pointer(QUARANTINE_LABEL)))
        .cloned()
        .unwrap_or(Value::Null);
    let uid = current.pointer("/metadata/uid").and_then(|u| u.as_str()).unwrap_or_default();
    let policy_name = quarantine_policy_name(namespace, pod, uid);
    let policy_path =
        format!("/apis/networking.k8s.io/v1/namespaces/{}/networkpolicies/{}", encode(namespace), encode(&policy_name));
    let existing = match request(client, http::Method::GET, &policy_path, None).await {
        Ok(text) => Some(serde_json::from_str::<Value>(&text).unwrap_or_default()),
        Err(kube::Error::Api(s)) if s.code == 404 => None,
        Err(e) => return Err(explain(e, "get", "networkpolicies", Some(namespace), Some(&policy_name))),
    };
    let policy_exists = existing.is_some();
    let policy_value = match &existing {
        None => None,
        Some(policy) => match quarantine_policy_value(policy) {
            Some(v) => Some(v),
            None => {
                return Err(Error::Refused(format!(
                    "networkpolicy {namespace}/{policy_name} exists but is not kir's deny-all policy on the \
                     {QUARANTINE_LABEL} label; look at it (kubectl get networkpolicy -n {namespace} {policy_name} -o yaml) \
                     and delete it before isolating the pod"
                )));
            }
        },
    };
    // An already quarantined pod keeps its label value, and a pod whose policy exists gets the
    // value that policy selects: running again changes nothing.
    let value = match (label_before.as_str(), &policy_value) {
        (Some(label), Some(selected)) if label != selected => {
            return Err(Error::Refused(format!(
                "pod {namespace}/{pod} carries {QUARANTINE_LABEL}={label} but networkpolicy {policy_name} selects \
                 {QUARANTINE_LABEL}={selected}; undo the earlier isolation first (kir contain list)"
            )));
        }
        (Some(label), _) => label.to_string(),
        (None, Some(selected)) => selected.clone(),
        (None, None) => action_id.to_string(),
    };
    let before =
        json!({"label": label_before, "policy_existed": policy_exists, "policy": policy_name, "namespace": namespace});
    let mut writes = Vec::new();
    if label_before.is_null() {
        let unlabel = patch(
            path.clone(),
            STRATEGIC,
            json!({"metadata": {"labels": {QUARANTINE_LABEL: null}}}),
            Permission::new("patch", "", "pods", Some(namespace)),
            pod,
        );
        writes.push(
            patch(
                path.clone(),
                STRATEGIC,
                json!({"metadata": {"labels": {QUARANTINE_LABEL: value}}}),
                Permission::new("patch", "", "pods", Some(namespace)),
                pod,
            )
            .describe(
                format!("pod/{namespace}/{pod}"),
                json!({"labels": {QUARANTINE_LABEL: null}}),
                json!({"labels": {QUARANTINE_LABEL: value}}),
            )
            .rollback(unlabel),
        );
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
        let mut w = create(
            format!("/apis/networking.k8s.io/v1/namespaces/{}/networkpolicies", encode(namespace)),
            policy.clone(),
            Permission::new("create", "networking.k8s.io", "networkpolicies", Some(namespace)),
            &policy_name,
        )
        .describe(format!("networkpolicy/{namespace}/{policy_name}"), Value::Null, policy);
        // Created between our GET and now by someone else: not ours, so not "already so".
        w.already = None;
        writes.push(w);
    }
    Ok(Planned { before, writes, object: format!("pod/{namespace}/{pod}"), retry_429: None })
}

/// Reverses `isolate_pod`: removes the NetworkPolicy and the label it added (only what it added).
pub fn undo_isolate_pod(namespace: &str, pod: &str, before: &Value) -> Planned {
    let mut writes = Vec::new();
    let policy = before
        .get("policy")
        .and_then(|p| p.as_str())
        .map(str::to_string)
        .unwrap_or_else(|| quarantine_policy_name(namespace, pod, ""));
    if !before.get("policy_existed").and_then(|v| v.as_bool()).unwrap_or(false) {
        writes.push(
            delete(
                format!(
                    "/apis/networking.k8s.io/v1/namespaces/{}/networkpolicies/{}",
                    encode(namespace),
                    encode(&policy)
                ),
                Permission::new("delete", "networking.k8s.io", "networkpolicies", Some(namespace)),
                &policy,
            )
            .describe(format!("networkpolicy/{namespace}/{policy}"), Value::Null, Value::Null),
        );
    }
    if before.get("label").is_none_or(|l| l.is_null()) {
        // A pod that is gone (redeployed) has no label left to take off: 404 is "already so".
        writes.push(
            patch(
                pod_path(namespace, pod),
                STRATEGIC,
                json!({"metadata": {"labels": {QUARANTINE_LABEL: null}}}),
                Permission::new("patch", "", "pods", Some(namespace)),
                pod,
            )
            .describe(format!("pod/{namespace}/{pod}"), Value::Null, json!({"labels": {QUARANTINE_LABEL: null}}))
            .already(404),
        );
    }
    Planned { before: before.clone(), writes, object: format!("pod/{namespace}/{pod}"), retry_429: None }
}

/// The label and annotations of an object under investigation.
pub const INVESTIGATION_LABEL: &str = "kir.dev/investigation";
pub const INCIDENT_ANNOTATION: &str = "kir.dev/incident";

/// A pod (`namespace` given) or a node, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Labelled<'a> {
    Pod { namespace: &'a str, name: &'a str },
    Node { name: &'a str },
}

impl Labelled<'_> {
    fn path(&self) -> String {
        match self {
            Labelled::Pod { namespace, name } => pod_path(namespace, name),
            Labelled::Node { name } => node_path(name),
        }
    }
    fn object(&self) -> String {
        match self {
            Labelled::Pod { namespace, name } => format!("pod/{namespace}/{name}"),
            Labelled::Node { name } => format!("node/{name}"),
        }
    }
    fn permission(&self) -> Permission {
        match self {
            Labelled::Pod { namespace, .. } => Permission::new("patch", "", "pods", Some(namespace)),
            Labelled::Node { .. } => Permission::new("patch", "", "nodes", None),
        }
    }
    fn name(&self) -> &str {
        match self {
            Labelled::Pod { name, .. } | Labelled::Node { name } => name,
        }
    }
}

/// Marks a pod or node as under investigation: label `kir.dev/investigation=ACTION_ID` (so
/// `kubectl get pods -l kir.dev/investigation` finds them) and, with an incident, the annotation
/// `kir.dev/incident=ID`. Nothing else about the object changes.
pub async fn label(
    client: &Client,
    what: Labelled<'_>,
    action_id: &str,
    incident: Option<i64>,
) -> Result<Planned, Error> {
    let (resource, namespace) = match what {
        Labelled::Pod { namespace, .. } => ("pods", Some(namespace)),
        Labelled::Node { .. } => ("nodes", None),
    };
    let current = get_json(client, &what.path(), "get", resource, namespace, Some(what.name())).await?;
    let label_before = current
        .pointer(&format!("/metadata/labels/{}", label_pointer(INVESTIGATION_LABEL)))
        .cloned()
        .unwrap_or(Value::Null);
    let annotation_before = current
        .pointer(&format!("/metadata/annotations/{}", label_pointer(INCIDENT_ANNOTATION)))
        .cloned()
        .unwrap_or(Value::Null);
    let before = json!({"label": label_before, "annotation": annotation_before});
    let mut metadata = serde_json::Map::new();
    if label_before.is_null() {
        metadata.insert("labels".into(), json!({INVESTIGATION_LABEL: action_id}));
    }
    if let Some(i) = incident
        && annotation_before.as_str() != Some(&i.to_string())
    {
        metadata.insert("annotations".into(), json!({INCIDENT_ANNOTATION: i.to_string()}));
    }
    let mut writes = Vec::new();
    if !metadata.is_empty() {
        let after = Value::Object(metadata.clone());
        writes.push(patch(what.path(), MERGE, json!({"metadata": metadata}), what.permission(), what.name()).describe(
            what.object(),
            before.clone(),
            after,
        ));
    }
    Ok(Planned { before, writes, object: what.object(), retry_429: None })
}

/// Takes off the label and annotation `label` added (those that were there before stay).
pub fn undo_label(what: Labelled<'_>, before: &Value) -> Planned {
    let mut metadata = serde_json::Map::new();
    if before.get("label").is_none_or(|v| v.is_null()) {
        metadata.insert("labels".into(), json!({INVESTIGATION_LABEL: null}));
    }
    match before.get("annotation") {
        None | Some(Value::Null) => {
            metadata.insert("annotations".into(), json!({INCIDENT_ANNOTATION: null}));
        }
        Some(old) => {
            metadata.insert("annotations".into(), json!({INCIDENT_ANNOTATION: old}));
        }
    }
    let writes = vec![
        patch(what.path(), MERGE, json!({"metadata": metadata}), what.permission(), what.name())
            .describe(what.object(), Value::Null, before.clone())
            .already(404),
    ];
    Planned { before: before.clone(), writes, object: what.object(), retry_429: None }
}

/// Deletes a pod (gracefully). The pod as it was is kept in the state before; a deleted pod
/// cannot be brought back by undo (its controller makes a new one).
pub async fn delete_pod(client: &Client, namespace: &str, pod: &str) -> Result<Planned, Error> {
    let path = pod_path(namespace, pod);
    let current = match get_json(client, &path, "get", "pods", Some(namespace), Some(pod)).await {
        Ok(p) => p,
        // Already gone: nothing to delete.
        Err(Error::NotFound { .. }) => {
            return Ok(Planned {
                before: json!({"pod": null}),
                writes: vec![],
                object: format!("pod/{namespace}/{pod}"),
                retry_429: None,
            });
        }
        Err(e) => return Err(e),
    };
    let copy = json!({"metadata": current.get("metadata").map(strip_server_fields), "spec": current.get("spec"), "status": {"phase": current.pointer("/status/phase"), "podIP": current.pointer("/status/podIP"), "hostIP": current.pointer("/status/hostIP")}});
    let before = json!({"pod": copy, "uid": current.pointer("/metadata/uid")});
    let writes = vec![delete(path, Permission::new("delete", "", "pods", Some(namespace)), pod).describe(
        format!("pod/{namespace}/{pod}"),
        json!({"node": current.pointer("/spec/nodeName"), "phase": current.pointer("/status/phase")}),
        Value::Null,
    )];
    Ok(Planned { before, writes, object: format!("pod/{namespace}/{pod}"), retry_429: None })
}

// ---------------------------------------------------------------------------------------------
// Workloads: scale to zero, suspend a CronJob.

/// The workload kinds `scale_down` knows, as the API names them.
pub fn workload_resource(kind: &str) -> Option<&'static str> {
    match kind.to_ascii_lowercase().as_str() {
        "deployment" | "deployments" | "deploy" => Some("deployments"),
        "statefulset" | "statefulsets" | "sts" => Some("statefulsets"),
        "replicaset" | "replicasets" | "rs" => Some("replicasets"),
        _ => None,
    }
}

fn workload_path(resource: &str, namespace: &str, name: &str) -> String {
    format!("/apis/apps/v1/namespaces/{}/{resource}/{}", encode(namespace), encode(name))
}

/// Scales a Deployment, StatefulSet or ReplicaSet to zero replicas; the number before is kept
/// for undo. Also returns the pods that will end (those its selector matches now).
pub async fn scale_down(
    client: &Client,
    resource: &'static str,
    namespace: &str,
    name: &str,
) -> Result<(Planned, Vec<(String, Option<String>)>), Error> {
    let current =
        get_json(client, &workload_path(resource, namespace, name), "get", resource, Some(namespace), Some(name))
            .await?;
    let replicas = current.pointer("/spec/replicas").and_then(|r| r.as_i64()).unwrap_or(1);
    let pods = selected_pods(client, namespace, current.pointer("/spec/selector")).await?;
    let before = json!({"replicas": replicas});
    let object = format!("{}/{namespace}/{name}", kir_core::singular(resource));
    let mut writes = Vec::new();
    if replicas != 0 {
        writes.push(
            patch(
                workload_path(resource, namespace, name),
                MERGE,
                json!({"spec": {"replicas": 0}}),
                Permission::new("patch", "apps", resource, Some(namespace)),
                name,
            )
            .describe(object.clone(), before.clone(), json!({"replicas": 0})),
        );
    }
    Ok((Planned { before, writes, object, retry_429: None }, pods))
}

/// Scales back to the number of replicas before `scale_down`.
pub fn undo_scale_down(resource: &'static str, namespace: &str, name: &str, before: &Value) -> Planned {
    let replicas = before.get("replicas").and_then(|r| r.as_i64()).unwrap_or(1);
    let object = format!("{}/{namespace}/{name}", kir_core::singular(resource));
    let writes = vec![
        patch(
            workload_path(resource, namespace, name),
            MERGE,
            json!({"spec": {"replicas": replicas}}),
            Permission::new("patch", "apps", resource, Some(namespace)),
            name,
        )
        .describe(object.clone(), json!({"replicas": 0}), json!({"replicas": replicas})),
    ];
    Planned { before: before.clone(), writes, object, retry_429: None }
}

/// Names of the pods a label selector (`matchLabels` and `matchExpressions`) selects now.
/// The pods a workload's selector selects, by name with their UID (evidence is per pod, and a
/// pod re-created under the same name is another pod).
pub async fn selected_pods(
    client: &Client,
    namespace: &str,
    selector: Option<&Value>,
) -> Result<Vec<(String, Option<String>)>, Error> {
    let Some(selector) = selector else { return Ok(vec![]) };
    let list = get_json(
        client,
        &format!("/api/v1/namespaces/{}/pods", encode(namespace)),
        "list",
        "pods",
        Some(namespace),
        None,
    )
    .await?;
    let mut names = Vec::new();
    for p in list.get("items").and_then(|i| i.as_array()).into_iter().flatten() {
        let labels = p.pointer("/metadata/labels").and_then(|l| l.as_object()).cloned().unwrap_or_default();
        if crate::collect::selects(selector, &labels)
            && let Some(n) = p.pointer("/metadata/name").and_then(|n| n.as_str())
        {
            names.push((n.to_string(), p.pointer("/metadata/uid").and_then(|u| u.as_str()).map(str::to_string)));
        }
    }
    Ok(names)
}

fn cronjob_path(namespace: &str, name: &str) -> String {
    format!("/apis/batch/v1/namespaces/{}/cronjobs/{}", encode(namespace), encode(name))
}

/// Suspends a CronJob: no new Jobs start; running Jobs and their pods stay (evidence).
pub async fn suspend_cronjob(client: &Client, namespace: &str, name: &str) -> Result<Planned, Error> {
    let current =
        get_json(client, &cronjob_path(namespace, name), "get", "cronjobs", Some(namespace), Some(name)).await?;
    let was = current.pointer("/spec/suspend").and_then(|s| s.as_bool()).unwrap_or(false);
    let before = json!({"suspend": was});
    let mut writes = Vec::new();
    if !was {
        writes.push(
            patch(
                cronjob_path(namespace, name),
                MERGE,
                json!({"spec": {"suspend": true}}),
                Permission::new("patch", "batch", "cronjobs", Some(namespace)),
                name,
            )
            .describe(format!("cronjob/{namespace}/{name}"), before.clone(), json!({"suspend": true})),
        );
    }
    Ok(Planned { before, writes, object: format!("cronjob/{namespace}/{name}"), retry_429: None })
}

pub fn undo_suspend_cronjob(namespace: &str, name: &str, before: &Value) -> Planned {
    let mut writes = Vec::new();
    if !before.get("suspend").and_then(|s| s.as_bool()).unwrap_or(false) {
        writes.push(
            patch(
                cronjob_path(namespace, name),
                MERGE,
                json!({"spec": {"suspend": false}}),
                Permission::new("patch", "batch", "cronjobs", Some(namespace)),
                name,
            )
            .describe(
                format!("cronjob/{namespace}/{name}"),
                json!({"suspend": true}),
                json!({"suspend": false}),
            ),
        );
    }
    Planned { before: before.clone(), writes, object: format!("cronjob/{namespace}/{name}"), retry_429: None }
}

// ---------------------------------------------------------------------------------------------
// Credentials: revoke a service account, a user or a group.

/// Whose access is revoked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    ServiceAccount { namespace: String, name: String },
    User(String),
    Group(String),
}

impl Subject {
    /// `serviceaccount/ci/jenkins`, `user/alice`, `group/dev-team`.
    pub fn target(&self) -> String {
        match self {
            Subject::ServiceAccount { namespace, name } => format!("serviceaccount/{namespace}/{name}"),
            Subject::User(n) => format!("user/{n}"),
            Subject::Group(n) => format!("group/{n}"),
        }
    }

    /// Does a binding's subject entry name this subject? (`binding_namespace`: a RoleBinding's
    /// own namespace, the default for a service account subject without one.)
    fn is(&self, subject: &Value, binding_namespace: Option<&str>) -> bool {
        let kind = subject.get("kind").and_then(|k| k.as_str()).unwrap_or_default();
        let name = subject.get("name").and_then(|k| k.as_str()).unwrap_or_default();
        match self {
            Subject::ServiceAccount { namespace, name: n } => {
                let ns = subject.get("namespace").and_then(|k| k.as_str()).or(binding_namespace);
                kind == "ServiceAccount" && name == n && ns == Some(namespace.as_str())
            }
            Subject::User(n) => kind == "User" && name == n,
            Subject::Group(n) => kind == "Group" && name == n,
        }
    }
}

/// An object as it can be created again: server-set fields and the last-applied annotation
/// (which may hold a Secret's values) removed.
fn strip_server_fields(metadata: &Value) -> Value {
    let mut m = metadata.clone();
    if let Some(o) = m.as_object_mut() {
        for k in [
            "uid",
            "resourceVersion",
            "creationTimestamp",
            "managedFields",
            "generation",
            "selfLink",
            "ownerReferences",
        ] {
            o.remove(k);
        }
        if let Some(a) = o.get_mut("annotations").and_then(|a| a.as_object_mut()) {
            a.remove("kubectl.kubernetes.io/last-applied-configuration");
        }
    }
    m
}

const RBAC: &str = "rbac.authorization.k8s.io";

fn binding_path(kind: &str, namespace: Option<&str>, name: Option<&str>) -> String {
    let mut p = match (kind, namespace) {
        ("RoleBinding", Some(ns)) => format!("/apis/{RBAC}/v1/namespaces/{}/rolebindings", encode(ns)),
        ("RoleBinding", None) => format!("/apis/{RBAC}/v1/rolebindings"),
        _ => format!("/apis/{RBAC}/v1/clusterrolebindings"),
    };
    if let Some(n) = name {
        p.push('/');
        p.push_str(&encode(n));
    }
    p
}

fn binding_resource(kind: &str) -> &'static str {
    if kind == "RoleBinding" { "rolebindings" } else { "clusterrolebindings" }
}

/// Removes every RoleBinding and ClusterRoleBinding grant to `subject`: a binding that names only
/// it is deleted, a binding shared with others loses only its entry. For a service account, its
/// legacy token Secrets are deleted too. Copies of all of it (Secret values left out) are the
/// state before, for undo.
pub async fn revoke(client: &Client, subject: &Subject) -> Result<Planned, Error> {
    if let Subject::ServiceAccount { namespace, name } = subject {
        // A typo must not look like "nothing to revoke".
        get_json(
            client,
            &format!("/api/v1/namespaces/{}/serviceaccounts/{}", encode(namespace), encode(name)),
            "get",
            "serviceaccounts",
            Some(namespace),
            Some(name),
        )
        .await?;
    }
    let mut saved = Vec::new();
    let mut writes = Vec::new();
    for kind in ["RoleBinding", "ClusterRoleBinding"] {
        let list =
            get_json(client, &binding_path(kind, None, None), "list", binding_resource(kind), None, None).await?;
        for b in list.get("items").and_then(|i| i.as_array()).into_iter().flatten() {
            let ns = b.pointer("/metadata/namespace").and_then(|v| v.as_str());
            let name = b.pointer("/metadata/name").and_then(|v| v.as_str()).unwrap_or_default();
            let subjects = b.get("subjects").and_then(|s| s.as_array()).cloned().unwrap_or_default();
            let (ours, rest): (Vec<Value>, Vec<Value>) = subjects.into_iter().partition(|s| subject.is(s, ns));
            if ours.is_empty() {
                continue;
            }
            let copy = json!({"apiVersion": format!("{RBAC}/v1"), "kind": kind,
                "metadata": b.get("metadata").map(strip_server_fields), "roleRef": b.get("roleRef"), "subjects": b.get("subjects")});
            let object =
                format!("{}/{}{name}", kind.to_ascii_lowercase(), ns.map(|n| format!("{n}/")).unwrap_or_default());
            let permission_ns = if kind == "RoleBinding" { ns } else { None };
            // Putting a binding back (rollback, undo) passes the API server's escalation check
            // only with `bind` on its role: asked now, so a revoke is never left half-done.
            let bind = Permission::bind(b.get("roleRef").unwrap_or(&Value::Null), permission_ns);
            let rv = b.pointer("/metadata/resourceVersion").cloned().unwrap_or(Value::Null);
            if rest.is_empty() {
                let mut remove = delete(
                    binding_path(kind, ns, Some(name)),
                    Permission::new("delete", RBAC, binding_resource(kind), permission_ns),
                    name,
                );
                // Deleted only as read: a binding changed since (another subject added) fails
                // with 409 instead of taking that grant away too.
                remove.body = Some(json!({"apiVersion": "v1", "kind": "DeleteOptions",
                    "preconditions": {"resourceVersion": rv}}));
                writes.push(
                    remove
                        .describe(object, json!({"roleRef": b.get("roleRef"), "subjects": ours}), Value::Null)
                        .rollback(
                            create(
                                binding_path(kind, ns, None),
                                copy.clone(),
                                Permission::new("create", RBAC, binding_resource(kind), permission_ns),
                                name,
                            )
                            .also_needs(bind.clone()),
                        ),
                );
                saved.push(json!({"op": "delete", "kind": kind, "object": copy, "removed": ours}));
            } else {
                // A merge patch replaces the list; the resourceVersion makes a concurrent change fail.
                writes.push(
                    patch(
                        binding_path(kind, ns, Some(name)),
                        MERGE,
                        json!({"metadata": {"resourceVersion": rv}, "subjects": rest}),
                        Permission::new("patch", RBAC, binding_resource(kind), permission_ns),
                        name,
                    )
                    .also_needs(bind.clone())
                    .describe(object, json!({"subjects": b.get("subjects")}), json!({"subjects": rest}))
                    .rollback(
                        patch(
                            binding_path(kind, ns, Some(name)),
                            MERGE,
                            json!({"subjects": b.get("subjects")}),
                            Permission::new("patch", RBAC, binding_resource(kind), permission_ns),
                            name,
                        )
                        .also_needs(bind),
                    ),
                );
                saved.push(json!({"op": "patch", "kind": kind, "object": copy, "removed": ours}));
            }
        }
    }
    let mut secrets = Vec::new();
    if let Subject::ServiceAccount { namespace, name } = subject {
        let list = get_json(
            client,
            &format!(
                "/api/v1/namespaces/{}/secrets?fieldSelector={}",
                encode(namespace),
                encode("type=kubernetes.io/service-account-token")
            ),
            "list",
            "secrets",
            Some(namespace),
            None,
        )
        .await?;
        for s in list.get("items").and_then(|i| i.as_array()).into_iter().flatten() {
            let owner = s.pointer("/metadata/annotations/kubernetes.io~1service-account.name").and_then(|v| v.as_str());
            if owner != Some(name.as_str()) {
                continue;
            }
            let secret_name = s.pointer("/metadata/name").and_then(|v| v.as_str()).unwrap_or_default();
            // The copy has no data: created again, the token controller issues a new token, so
            // undo never brings back a token an attacker may hold.
            let copy = json!({"apiVersion": "v1", "kind": "Secret", "type": s.get("type"),
                "metadata": s.get("metadata").map(strip_server_fields)});
            writes.push(
                delete(
                    format!("/api/v1/namespaces/{}/secrets/{}", encode(namespace), encode(secret_name)),
                    Permission::new("delete", "", "secrets", Some(namespace)),
                    secret_name,
                )
                .describe(format!("secret/{namespace}/{secret_name}"), json!({"type": s.get("type")}), Value::Null)
                .rollback(create(
                    format!("/api/v1/namespaces/{}/secrets", encode(namespace)),
                    copy.clone(),
                    Permission::new("create", "", "secrets", Some(namespace)),
                    secret_name,
                )),
            );
            secrets.push(copy);
        }
    }
    let before = json!({"subject": subject.target(), "bindings": saved, "secrets": secrets});
    Ok(Planned { before, writes, object: subject.target(), retry_429: None })
}

/// Gives back what `revoke` took: deleted bindings are created again from their copies, shared
/// bindings get the subject's entries back, token Secrets are created again without data (so
/// the token controller issues new tokens).
pub async fn undo_revoke(client: &Client, before: &Value) -> Result<Planned, Error> {
    let mut writes = Vec::new();
    for saved in before.get("bindings").and_then(|b| b.as_array()).into_iter().flatten() {
        let kind = saved.get("kind").and_then(|k| k.as_str()).unwrap_or("ClusterRoleBinding");
        let copy = saved.get("object").cloned().unwrap_or_default();
        let ns = copy.pointer("/metadata/namespace").and_then(|v| v.as_str()).map(str::to_string);
        let name = copy.pointer("/metadata/name").and_then(|v| v.as_str()).unwrap_or_default().to_string();
        let permission_ns = if kind == "RoleBinding" { ns.as_deref() } else { None };
        let object = format!(
            "{}/{}{name}",
            kind.to_ascii_lowercase(),
            ns.as_deref().map(|n| format!("{n}/")).unwrap_or_default()
        );
        let path = binding_path(kind, ns.as_deref(), Some(&name));
        let current = match request(client, http::Method::GET, &path, None).await {
            Ok(t) => Some(serde_json::from_str::<Value>(&t).unwrap_or_default()),
            Err(kube::Error::Api(s)) if s.code == 404 => None,
            Err(e) => return Err(explain(e, "get", binding_resource(kind), permission_ns, Some(&name))),
        };
        let bind = Permission::bind(copy.get("roleRef").unwrap_or(&Value::Null), permission_ns);
        match current {
            None => writes.push(
                create(
                    binding_path(kind, ns.as_deref(), None),
                    copy.clone(),
                    Permission::new("create", RBAC, binding_resource(kind), permission_ns),
                    &name,
                )
                .also_needs(bind)
                .describe(
                    object,
                    Value::Null,
                    json!({"roleRef": copy.get("roleRef"), "subjects": copy.get("subjects")}),
                ),
            ),
            Some(current) => {
                let mut subjects = current.get("subjects").and_then(|s| s.as_array()).cloned().unwrap_or_default();
                let mut added = false;
                for s in saved.get("removed").and_then(|r| r.as_array()).into_iter().flatten() {
                    if !subjects.contains(s) {
                        subjects.push(s.clone());
                        added = true;
                    }
                }
                if added {
                    let rv = current.pointer("/metadata/resourceVersion").cloned().unwrap_or(Value::Null);
                    writes.push(
                        patch(
                            path,
                            MERGE,
                            json!({"metadata": {"resourceVersion": rv}, "subjects": subjects}),
                            Permission::new("patch", RBAC, binding_resource(kind), permission_ns),
                            &name,
                        )
                        .also_needs(bind)
                        .describe(
                            object,
                            json!({"subjects": current.get("subjects")}),
                            json!({"subjects": subjects}),
                        ),
                    );
                }
            }
        }
    }
    for copy in before.get("secrets").and_then(|b| b.as_array()).into_iter().flatten() {
        let ns = copy.pointer("/metadata/namespace").and_then(|v| v.as_str()).unwrap_or("default");
        let name = copy.pointer("/metadata/name").and_then(|v| v.as_str()).unwrap_or_default();
        writes.push(
            create(
                format!("/api/v1/namespaces/{}/secrets", encode(ns)),
                copy.clone(),
                Permission::new("create", "", "secrets", Some(ns)),
                name,
            )
            .describe(
                format!("secret/{ns}/{name}"),
                Value::Null,
                json!({"type": copy.get("type"), "data": "issued anew"}),
            ),
        );
    }
    let object = before.get("subject").and_then(|s| s.as_str()).unwrap_or("subject").to_string();
    Ok(Planned { before: before.clone(), writes, object, retry_429: None })
}

// ---------------------------------------------------------------------------------------------
// What a pod leads to: the targets of a playbook's steps.

/// A pod's node, service account and the workload that owns it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodContext {
    /// The pod's UID: evidence collected from a pod of the same name is another pod's.
    pub uid: Option<String>,
    pub node: Option<String>,
    pub service_account: Option<String>,
    /// (`deployments`|`statefulsets`|`replicasets`, name): what `scale-down` acts on.
    pub workload: Option<(&'static str, String)>,
    /// The CronJob that started the pod's Job, if any.
    pub cronjob: Option<String>,
}

fn controller_of(object: &Value) -> Option<(String, String)> {
    object.pointer("/metadata/ownerReferences").and_then(|o| o.as_array()).and_then(|o| {
        o.iter().find(|r| r["controller"] == true).or_else(|| o.first()).map(|r| {
            (r["kind"].as_str().unwrap_or_default().to_string(), r["name"].as_str().unwrap_or_default().to_string())
        })
    })
}

/// Reads a pod and follows its owners (ReplicaSet → Deployment, Job → CronJob).
pub async fn pod_context(client: &Client, namespace: &str, pod: &str) -> Result<PodContext, Error> {
    let p = get_json(client, &pod_path(namespace, pod), "get", "pods", Some(namespace), Some(pod)).await?;
    let mut ctx = PodContext {
        uid: p.pointer("/metadata/uid").and_then(|v| v.as_str()).map(str::to_string),
        node: p.pointer("/spec/nodeName").and_then(|v| v.as_str()).map(str::to_string),
        service_account: p.pointer("/spec/serviceAccountName").and_then(|v| v.as_str()).map(str::to_string),
        ..Default::default()
    };
    match controller_of(&p) {
        Some((kind, name)) if kind == "ReplicaSet" => {
            let rs = get_json(
                client,
                &workload_path("replicasets", namespace, &name),
                "get",
                "replicasets",
                Some(namespace),
                Some(&name),
            )
            .await
            .ok();
            ctx.workload = match rs.as_ref().and_then(controller_of) {
                Some((kind, dep)) if kind == "Deployment" => Some(("deployments", dep)),
                _ => Some(("replicasets", name)),
            };
        }
        Some((kind, name)) if kind == "StatefulSet" => ctx.workload = Some(("statefulsets", name)),
        Some((kind, name)) if kind == "Job" => {
            let job = get_json(
                client,
                &format!("/apis/batch/v1/namespaces/{}/jobs/{}", encode(namespace), encode(&name)),
                "get",
                "jobs",
                Some(namespace),
                Some(&name),
            )
            .await
            .ok();
            if let Some((kind, cj)) = job.as_ref().and_then(controller_of)
                && kind == "CronJob"
            {
                ctx.cronjob = Some(cj);
            }
        }
        _ => {}
    }
    Ok(ctx)
}
