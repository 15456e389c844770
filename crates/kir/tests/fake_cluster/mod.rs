//! A fake Kubernetes API server on a real HTTP listener, for driving the `kir` binary end to end:
//! it keeps objects (seeded from the recorded v1.26 responses), applies the writes kir sends
//! (JSON merge patches, strategic-merge patches with their keyed lists, creates, replaces of the
//! version read (409 otherwise), deletes,
//! evictions, `dryRun=All` validated but not kept), answers lists, SelfSubjectAccessReviews
//! (allowed unless denied here, by verb, resource, subresource, namespace and name), and logs
//! every request. Where the real API server answers in a particular way, so does this one: a
//! missing object is a 404 `Status` whatever its name, a DELETE answers a `Status` except for
//! pods (which answer the pod, being deleted), the ephemeralcontainers subresource patches its
//! pod. Real request shapes are asserted in crates/kir-cluster/tests against recorded answers;
//! this fake exists to check what a whole command leaves behind.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use kir_testkit::{HttpReceiver, ReceivedRequest};
use serde_json::{Value, json};

pub fn recordings() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../kir-cluster/tests/k8s-api")
}

fn recorded(name: &str) -> Value {
    serde_json::from_slice(&std::fs::read(recordings().join(name)).unwrap()).unwrap()
}

/// A permission the caller lacks: `VERB RESOURCE[/SUBRESOURCE] [in NAMESPACE] [named NAME]`.
/// Like a missing RBAC rule: a denial in a namespace also denies the cluster-wide ask, and a
/// denial of one name also denies the ask for every name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Denial {
    verb: String,
    resource: String,
    subresource: String,
    namespace: Option<String>,
    name: Option<String>,
}

impl Denial {
    fn parse(text: &str) -> Denial {
        let mut words = text.split_whitespace();
        let verb = words.next().expect("a verb").to_string();
        let resource = words.next().expect("a resource");
        let (resource, subresource) = resource.split_once('/').unwrap_or((resource, ""));
        let (resource, subresource) = (resource.to_string(), subresource.to_string());
        let mut d = Denial { verb, resource, subresource, namespace: None, name: None };
        while let Some(w) = words.next() {
            match w {
                "in" => d.namespace = words.next().map(str::to_string),
                "named" => d.name = words.next().map(str::to_string),
                other => panic!("deny: unknown word {other:?} in {text:?}"),
            }
        }
        d
    }

    /// Whether this denial answers the review's `resourceAttributes`.
    fn denies(&self, a: &Value) -> bool {
        let text = |k: &str| a[k].as_str().unwrap_or_default();
        text("verb") == self.verb
            && text("resource") == self.resource
            && text("subresource") == self.subresource
            && self.namespace.as_deref().is_none_or(|ns| text("namespace").is_empty() || text("namespace") == ns)
            && self.name.as_deref().is_none_or(|n| text("name").is_empty() || text("name") == n)
    }
}

#[derive(Default)]
pub struct State {
    /// Object path → object.
    pub objects: BTreeMap<String, Value>,
    /// Permissions the caller lacks.
    pub denied: BTreeSet<Denial>,
    /// Fixed answers for GETs kept as recorded (logs, events): path and query → (status, type, body).
    fixed: BTreeMap<String, (u16, String, Vec<u8>)>,
    /// `METHOD path` → the error status every such request gets (a write refused midway).
    failing: BTreeMap<String, u16>,
    version: u64,
    /// Bearer tokens a TokenReview knows: token → (user, groups).
    users: BTreeMap<String, (String, Vec<String>)>,
    /// What SubjectAccessReviews allow: (user, verb, resource).
    grants: BTreeSet<(String, String, String)>,
}

pub struct FakeCluster {
    pub state: Arc<Mutex<State>>,
    server: HttpReceiver,
}

fn status(code: u16, reason: &str, message: &str) -> (u16, String, Vec<u8>) {
    let body = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message, "reason": reason, "code": code});
    (code, "application/json".into(), serde_json::to_vec(&body).unwrap())
}

/// The API server's 404: `pods "web" not found`, whatever the name ends with; for a
/// subresource (`…/pods/web/log`) it names the object the subresource belongs to.
fn not_found(path: &str) -> (u16, String, Vec<u8>) {
    let path = match route(path) {
        Route::Subresource { object, .. } => object,
        _ => path.to_string(),
    };
    let mut parts = path.rsplit('/');
    let name = parts.next().unwrap_or_default();
    let resource = parts.next().unwrap_or_default();
    status(404, "NotFound", &format!("{resource} \"{name}\" not found"))
}

fn ok(v: &Value, code: u16) -> (u16, String, Vec<u8>) {
    (code, "application/json".into(), serde_json::to_vec(v).unwrap())
}

/// RFC 7386 merge: objects merge, `null` deletes, anything else replaces.
fn merge(target: &mut Value, patch: &Value) {
    // A JSON merge patch has no keyed lists, so it cannot fail.
    let _ = strategic_merge(target, patch, false);
}

/// The merge keys of the lists the API server merges in a strategic-merge patch (their
/// `patchMergeKey` in the OpenAPI schema); every other list is replaced whole, as in a merge
/// patch (a node's `taints` among them: they have no merge strategy).
fn merge_key(field: &str, items: &[Value]) -> Option<&'static str> {
    Some(match field {
        "containers" | "initContainers" | "ephemeralContainers" | "volumes" | "env" | "imagePullSecrets" => "name",
        "volumeMounts" => "mountPath",
        // A container's ports merge on containerPort, a Service's on port.
        "ports" if items.iter().any(|p| p.get("containerPort").is_some()) => "containerPort",
        "ports" => "port",
        "ownerReferences" => "uid",
        "conditions" => "type",
        _ => return None,
    })
}

/// A JSON merge patch, or with `strategic` the API server's strategic merge: lists with a merge
/// key merge element by element (an element whose key is new is appended, one with
/// `$patch: delete` is removed), directives (`$patch`, `$retainKeys`, `$setElementOrder/…`) are
/// not stored. A patch into a field that is missing or not an object merges into `{}`, so no
/// `null` or directive is stored; an element of a keyed list without its key is refused, as the
/// API server refuses it.
fn strategic_merge(target: &mut Value, patch: &Value, strategic: bool) -> Result<(), String> {
    let Some(p) = patch.as_object() else {
        *target = patch.clone();
        return Ok(());
    };
    if !target.is_object() {
        *target = json!({});
    }
    let t = target.as_object_mut().unwrap();
    for (k, v) in p {
        if strategic && k.starts_with('$') {
            continue;
        }
        if v.is_null() {
            t.remove(k);
            continue;
        }
        let items = v.as_array();
        match (items.and_then(|items| strategic.then(|| merge_key(k, items)).flatten()), items) {
            (Some(key), Some(items)) => {
                let list = t.entry(k.clone()).or_insert_with(|| json!([]));
                if !list.is_array() {
                    *list = json!([]);
                }
                let list = list.as_array_mut().unwrap();
                for item in items {
                    if item.get(key).is_none() {
                        return Err(format!("map: {item} does not contain declared merge key: {key}"));
                    }
                    let at = list.iter().position(|e| e.get(key) == item.get(key));
                    let delete = item.get("$patch").and_then(Value::as_str) == Some("delete");
                    match (at, delete) {
                        (Some(i), true) => {
                            list.remove(i);
                        }
                        (None, true) => {}
                        (Some(i), false) => strategic_merge(&mut list[i], item, true)?,
                        (None, false) => {
                            let mut fresh = json!({});
                            strategic_merge(&mut fresh, item, true)?;
                            list.push(fresh);
                        }
                    }
                }
            }
            _ => strategic_merge(t.entry(k.clone()).or_insert(Value::Null), v, strategic)?,
        }
    }
    Ok(())
}

/// What a path names, as the API server routes it: a collection, one object, or a subresource
/// of one object (`/api/v1/namespaces/NS/pods/NAME/log`).
#[derive(Debug, PartialEq, Eq)]
enum Route {
    List,
    Object,
    Subresource { object: String, subresource: String },
}

fn route(path: &str) -> Route {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    // /api/v1/… or /apis/GROUP/VERSION/…
    let rest: &[&str] = match segments.first() {
        Some(&"api") => segments.get(2..).unwrap_or_default(),
        Some(&"apis") => segments.get(3..).unwrap_or_default(),
        _ => &[],
    };
    let rest = match rest {
        ["namespaces", _namespace, resource @ ..] if !resource.is_empty() => resource,
        other => other,
    };
    match rest.len() {
        0 | 1 => Route::List,
        2 => Route::Object,
        _ => {
            let (object, sub) = path.rsplit_once('/').unwrap_or((path, ""));
            Route::Subresource { object: object.to_string(), subresource: sub.to_string() }
        }
    }
}

fn object_path(v: &Value, collection: &str) -> String {
    format!("{collection}/{}", v.pointer("/metadata/name").and_then(|n| n.as_str()).unwrap_or_default())
}

/// The collection path an object path belongs to, and the all-namespaces form of it.
fn list_matches(list: &str, object: &str) -> bool {
    let Some((parent, _name)) = object.rsplit_once('/') else { return false };
    if parent == list {
        return true;
    }
    // /apis/G/V/rolebindings lists /apis/G/V/namespaces/NS/rolebindings/NAME too.
    let (prefix, plural) = match list.rsplit_once('/') {
        Some(x) => x,
        None => return false,
    };
    parent
        .strip_prefix(&format!("{prefix}/namespaces/"))
        .and_then(|rest| rest.split_once('/'))
        .is_some_and(|(_, p)| p == plural)
}

fn field(v: &Value, path: &str) -> String {
    v.pointer(&format!("/{}", path.replace('.', "/"))).and_then(|s| s.as_str()).unwrap_or_default().to_string()
}

impl State {
    fn put(&mut self, path: String, mut v: Value) {
        self.version += 1;
        v["metadata"]["resourceVersion"] = json!(self.version.to_string());
        self.objects.insert(path, v);
    }

    fn handle(&mut self, r: &ReceivedRequest) -> (u16, String, Vec<u8>) {
        let (path, query) = r.path.split_once('?').unwrap_or((&r.path, ""));
        let path = path.replace("%3A", ":");
        let body: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
        // As the API server does: a DELETE with a DeleteOptions body takes its options from the
        // body alone, the query is ignored.
        let dry_run = if r.method == "DELETE" && !r.body.is_empty() {
            body["dryRun"] == json!(["All"])
        } else {
            query.split('&').any(|q| q == "dryRun=All")
        };
        if let Some(code) = self.failing.get(&format!("{} {path}", r.method)) {
            return status(*code, "InternalError", "the server failed this request (test)");
        }
        if r.method == "POST" && path == "/apis/authentication.k8s.io/v1/tokenreviews" {
            let mut answer = body.clone();
            answer["metadata"] = json!({"creationTimestamp": null});
            answer["status"] = match self.users.get(body["spec"]["token"].as_str().unwrap_or_default()) {
                Some((user, groups)) => {
                    json!({"authenticated": true, "user": {"username": user, "uid": format!("uid-{user}"), "groups": groups}})
                }
                None => json!({"user": {}, "error": "[invalid bearer token, token lookup failed]"}),
            };
            return ok(&answer, 201);
        }
        if r.method == "POST" && path == "/apis/authorization.k8s.io/v1/subjectaccessreviews" {
            let spec = &body["spec"];
            let a = &spec["resourceAttributes"];
            let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
            let allowed = a["group"] == "kir.dev"
                && self.grants.contains(&(text(&spec["user"]), text(&a["verb"]), text(&a["resource"])));
            let mut answer = body.clone();
            answer["metadata"] = json!({"creationTimestamp": null});
            answer["status"] = json!({"allowed": allowed});
            return ok(&answer, 201);
        }
        if r.method == "POST" && path == "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews" {
            let a = &body["spec"]["resourceAttributes"];
            let allowed = !self.denied.iter().any(|d| d.denies(a));
            let mut answer = body.clone();
            answer["status"] = if allowed {
                json!({"allowed": true, "reason": "RBAC: allowed by ClusterRoleBinding \"responder\" of ClusterRole \"kir-contain\" to User \"responder\""})
            } else {
                json!({"allowed": false})
            };
            return ok(&answer, 201);
        }
        match r.method.as_str() {
            "GET" => {
                if let Some(v) = self.objects.get(&path) {
                    return ok(v, 200);
                }
                if let Some(fixed) = self.fixed.get(&r.path) {
                    return fixed.clone();
                }
                let selector: Vec<(String, String)> = query
                    .split('&')
                    .filter_map(|q| q.strip_prefix("fieldSelector="))
                    .map(|s| s.replace("%3D", "=").replace("%2F", "/"))
                    .filter_map(|s| s.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
                    .collect();
                let items: Vec<Value> = self
                    .objects
                    .iter()
                    .filter(|(p, _)| list_matches(&path, p))
                    .map(|(_, v)| v.clone())
                    .filter(|v| selector.iter().all(|(k, want)| &field(v, k) == want))
                    .collect();
                if route(&path) != Route::List {
                    return not_found(&path);
                }
                ok(
                    &json!({"kind": "List", "apiVersion": "v1", "metadata": {"resourceVersion": self.version.to_string()}, "items": items}),
                    200,
                )
            }
            "PATCH" => {
                // The ephemeralcontainers subresource is a patch of its pod (only that field).
                let path = match route(&path) {
                    Route::Subresource { object, subresource } if subresource == "ephemeralcontainers" => object,
                    _ => path,
                };
                let Some(current) = self.objects.get(&path).cloned() else {
                    return not_found(&path);
                };
                if let Some(rv) = body.pointer("/metadata/resourceVersion")
                    && rv != &current["metadata"]["resourceVersion"]
                {
                    return status(409, "Conflict", "the object has been modified");
                }
                let mut next = current;
                let strategic =
                    r.header("content-type").is_some_and(|t| t.starts_with("application/strategic-merge-patch+json"));
                if let Err(why) = strategic_merge(&mut next, &body, strategic) {
                    return status(400, "BadRequest", &why);
                }
                if dry_run {
                    return ok(&next, 200);
                }
                self.put(path.clone(), next);
                ok(&self.objects[&path], 200)
            }
            "PUT" => {
                // A replace: only of the version read (optimistic concurrency, as leases use it).
                let Some(current) = self.objects.get(&path) else {
                    return not_found(&path);
                };
                if body.pointer("/metadata/resourceVersion") != Some(&current["metadata"]["resourceVersion"]) {
                    return status(
                        409,
                        "Conflict",
                        "Operation cannot be fulfilled: the object has been modified; please apply your changes to the latest version and try again",
                    );
                }
                if dry_run {
                    return ok(&body, 200);
                }
                self.put(path.clone(), body);
                ok(&self.objects[&path], 200)
            }
            "POST" if path.ends_with("/eviction") => {
                let pod = path.trim_end_matches("/eviction").to_string();
                if !self.objects.contains_key(&pod) {
                    return not_found(&pod);
                }
                if !dry_run {
                    self.objects.remove(&pod);
                }
                ok(&json!({"kind": "Status", "apiVersion": "v1", "status": "Success", "code": 201}), 201)
            }
            "POST" => {
                let target = object_path(&body, &path);
                if self.objects.contains_key(&target) {
                    return status(409, "AlreadyExists", "already exists");
                }
                if dry_run {
                    return ok(&body, 201);
                }
                self.put(target.clone(), body);
                ok(&self.objects[&target], 201)
            }
            "DELETE" => {
                if !self.objects.contains_key(&path) {
                    return not_found(&path);
                }
                if let Some(rv) = body.pointer("/preconditions/resourceVersion")
                    && rv != &self.objects[&path]["metadata"]["resourceVersion"]
                {
                    return status(409, "Conflict", "Precondition failed: resourceVersion");
                }
                let gone = if dry_run { self.objects[&path].clone() } else { self.objects.remove(&path).unwrap() };
                // As the API server answers: a pod (deleted gracefully) answers itself, being
                // deleted; objects deleted at once answer a Status that names them.
                if path.contains("/pods/") {
                    let mut pod = gone;
                    pod["metadata"]["deletionTimestamp"] = json!("2026-11-27T23:59:41Z");
                    pod["metadata"]["deletionGracePeriodSeconds"] = json!(30);
                    return ok(&pod, 200);
                }
                let (collection, name) = path.rsplit_once('/').unwrap_or_default();
                let kind = collection.rsplit('/').next().unwrap_or_default();
                let group = path.strip_prefix("/apis/").and_then(|g| g.split('/').next()).unwrap_or_default();
                ok(
                    &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                        "details": {"name": name, "group": group, "kind": kind, "uid": gone["metadata"]["uid"]}}),
                    200,
                )
            }
            _ => status(405, "MethodNotAllowed", "not here"),
        }
    }
}

impl FakeCluster {
    /// The recorded `checkout` namespace: three pods on `k8s-real-node`, their ReplicaSet and
    /// Deployment, the service account, the node and every recorded binding.
    pub fn start() -> FakeCluster {
        let mut s = State::default();
        for p in recorded("GET_api_v1_namespaces_checkout_pods.json")["items"].as_array().unwrap() {
            s.put(object_path(p, "/api/v1/namespaces/checkout/pods"), p.clone());
        }
        let pod = recorded("GET_api_v1_namespaces_checkout_pods_checkout-api-64db89f569-blm5l.json");
        s.put(object_path(&pod, "/api/v1/namespaces/checkout/pods"), pod);
        s.put(
            "/apis/apps/v1/namespaces/checkout/replicasets/checkout-api-64db89f569".into(),
            recorded("GET_apis_apps_v1_namespaces_checkout_replicasets_checkout-api-64db89f569.json"),
        );
        s.put(
            "/apis/apps/v1/namespaces/checkout/deployments/checkout-api".into(),
            recorded("GET_apis_apps_v1_namespaces_checkout_deployments_checkout-api.json"),
        );
        s.put("/api/v1/nodes/k8s-real-node".into(), recorded("GET_api_v1_nodes_k8s-real-node.json"));
        s.put(
            "/api/v1/namespaces/checkout/serviceaccounts/checkout-api".into(),
            recorded("GET_api_v1_namespaces_checkout_serviceaccounts_checkout-api.json"),
        );
        for b in recorded("GET_apis_rbac.authorization.k8s.io_v1_rolebindings.json")["items"].as_array().unwrap() {
            let ns = b["metadata"]["namespace"].as_str().unwrap();
            s.put(
                object_path(b, &format!("/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings")),
                b.clone(),
            );
        }
        for b in recorded("GET_apis_rbac.authorization.k8s.io_v1_clusterrolebindings.json")["items"].as_array().unwrap()
        {
            s.put(object_path(b, "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings"), b.clone());
        }
        s.put(
            "/api/v1/namespaces/kube-system".into(),
            json!({"kind": "Namespace", "apiVersion": "v1", "metadata": {"name": "kube-system", "uid": "5c1e0f3a-0000-4000-8000-00000000c0de"}}),
        );
        s.put(
            "/api/v1/namespaces/checkout".into(),
            json!({"kind": "Namespace", "apiVersion": "v1", "metadata": {"name": "checkout", "uid": "0f1c2d3e-0000-4000-8000-0000000c4ec0"}}),
        );
        // Logs and events as recorded.
        let index: Vec<Value> =
            serde_json::from_slice(&std::fs::read(recordings().join("index.json")).unwrap()).unwrap();
        for e in index.iter().filter(|e| e["method"] == "GET" && e["who"] == "admin") {
            let path = e["path"].as_str().unwrap();
            if !(path.contains("/log") || path.contains("/events")) {
                continue;
            }
            let query = e["query"].as_str().unwrap_or_default();
            let key = if query.is_empty() {
                path.to_string()
            } else {
                format!(
                    "{path}?{}",
                    query.replace("fieldSelector=involvedObject.name=", "fieldSelector=involvedObject.name%3D")
                )
            };
            let body = std::fs::read(recordings().join(e["body_file"].as_str().unwrap())).unwrap();
            s.fixed.entry(key).or_insert((
                e["status"].as_u64().unwrap() as u16,
                e["content_type"].as_str().unwrap().to_string(),
                body,
            ));
        }
        let state = Arc::new(Mutex::new(s));
        let shared = state.clone();
        let server = HttpReceiver::with_handler(move |r| shared.lock().unwrap().handle(r));
        FakeCluster { state, server }
    }

    /// A kubeconfig whose current context points at this server.
    pub fn kubeconfig(&self, dir: &Path) -> PathBuf {
        let path = dir.join("kubeconfig");
        std::fs::write(
            &path,
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster: {{server: \"{}\"}}\nusers:\n- name: responder\n  user: {{token: fake-token}}\ncontexts:\n- name: fake\n  context: {{cluster: fake, user: responder, namespace: checkout}}\ncurrent-context: fake\n",
                self.server.url("")
            ),
        )
        .unwrap();
        path
    }

    pub fn url(&self) -> String {
        self.server.url("")
    }

    /// Adds or replaces an object.
    pub fn put(&self, path: &str, object: Value) {
        self.state.lock().unwrap().put(path.to_string(), object);
    }

    /// Removes an object (a pod deleted or redeployed behind kir's back).
    pub fn remove(&self, path: &str) {
        self.state.lock().unwrap().objects.remove(path);
    }

    pub fn requests(&self) -> Vec<ReceivedRequest> {
        self.server.requests()
    }

    /// The writes (everything but GETs and permission reviews), as `METHOD path`.
    pub fn writes(&self) -> Vec<String> {
        self.requests()
            .into_iter()
            .filter(|r| r.method != "GET" && !r.path.contains("selfsubjectaccessreviews"))
            .map(|r| format!("{} {}", r.method, r.path))
            .collect()
    }

    /// Every `method path` request (no query) is answered with `code` from now on.
    pub fn fail(&self, method: &str, path: &str, code: u16) {
        self.state.lock().unwrap().failing.insert(format!("{method} {path}"), code);
    }

    /// The caller lacks this permission: `VERB RESOURCE[/SUBRESOURCE] [in NAMESPACE] [named NAME]`.
    /// A bearer token TokenReviews know, of `user` in `groups`.
    pub fn user(&self, token: &str, user: &str, groups: &[&str]) {
        let groups = groups.iter().map(|g| g.to_string()).collect();
        self.state.lock().unwrap().users.insert(token.to_string(), (user.to_string(), groups));
    }

    /// Lets `user` `verb` `resource` in API group kir.dev (SubjectAccessReview).
    pub fn grant(&self, user: &str, verb: &str, resource: &str) {
        self.state.lock().unwrap().grants.insert((user.into(), verb.into(), resource.into()));
    }

    pub fn deny(&self, permission: &str) {
        self.state.lock().unwrap().denied.insert(Denial::parse(permission));
    }

    /// metrics-server's answer for the `checkout` namespace (tests/data/metrics-server), as
    /// `change` leaves it.
    pub fn metrics_server(&self, change: impl FnOnce(&mut Value)) {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/metrics-server/GET_apis_metrics.k8s.io_v1beta1_namespaces_checkout_pods.json");
        let mut list: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        change(&mut list);
        self.state.lock().unwrap().objects.insert("/apis/metrics.k8s.io/v1beta1/namespaces/checkout/pods".into(), list);
    }

    /// Every object, without resourceVersions: compare before and after to see what changed.
    pub fn snapshot(&self) -> BTreeMap<String, Value> {
        let s = self.state.lock().unwrap();
        s.objects
            .iter()
            .map(|(k, v)| {
                let mut v = v.clone();
                if let Some(m) = v.get_mut("metadata").and_then(|m| m.as_object_mut()) {
                    m.remove("resourceVersion");
                }
                (k.clone(), v)
            })
            .collect()
    }

    pub fn object(&self, path: &str) -> Option<Value> {
        self.state.lock().unwrap().objects.get(path).cloned()
    }
}

/// The fake's own behaviour, checked against what the real API server does with the same patch.
mod behaves_like_the_api_server {
    use super::*;

    #[test]
    fn taints_are_replaced_whole_and_keyed_lists_merge_on_their_own_keys() {
        let mut node =
            json!({"spec": {"taints": [{"key": "a", "effect": "NoSchedule"}, {"key": "b", "effect": "NoExecute"}]}});
        strategic_merge(&mut node, &json!({"spec": {"taints": [{"key": "a", "effect": "NoSchedule"}]}}), true).unwrap();
        assert_eq!(node["spec"]["taints"], json!([{"key": "a", "effect": "NoSchedule"}]));

        let mut pod = json!({"spec": {"containers": [{"name": "c", "volumeMounts": [{"name": "v", "mountPath": "/a"}], "ports": [{"containerPort": 80}]}]}});
        let patch = json!({"spec": {"containers": [{"name": "c", "volumeMounts": [{"name": "v", "mountPath": "/b"}], "ports": [{"containerPort": 81}]}]}});
        strategic_merge(&mut pod, &patch, true).unwrap();
        assert_eq!(pod["spec"]["containers"][0]["volumeMounts"].as_array().unwrap().len(), 2, "{pod}");
        assert_eq!(pod["spec"]["containers"][0]["ports"].as_array().unwrap().len(), 2, "{pod}");

        let mut service = json!({"spec": {"ports": [{"port": 80, "name": "http"}]}});
        strategic_merge(&mut service, &json!({"spec": {"ports": [{"port": 80, "nodePort": 30080}]}}), true).unwrap();
        assert_eq!(service["spec"]["ports"], json!([{"port": 80, "name": "http", "nodePort": 30080}]));
    }

    #[test]
    fn a_patch_into_a_missing_field_stores_no_nulls_or_directives() {
        let mut pod = json!({"metadata": {"name": "p"}});
        let patch = json!({"metadata": {"labels": {"gone": null, "kir": "isolated"}, "$retainKeys": ["labels"]}});
        strategic_merge(&mut pod, &patch, true).unwrap();
        assert_eq!(pod, json!({"metadata": {"name": "p", "labels": {"kir": "isolated"}}}));
    }

    #[test]
    fn an_element_of_a_keyed_list_without_its_key_is_refused() {
        let mut pod = json!({"spec": {"containers": [{"name": "c"}]}});
        let err = strategic_merge(&mut pod, &json!({"spec": {"containers": [{"image": "x"}]}}), true).unwrap_err();
        assert!(err.contains("merge key: name"), "{err}");
    }

    #[test]
    fn a_missing_objects_subresource_names_the_object() {
        let (code, _, body) = not_found("/api/v1/namespaces/shop/pods/web/log");
        assert_eq!(code, 404);
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["message"], "pods \"web\" not found");
    }
}
