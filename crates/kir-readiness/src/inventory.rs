//! The cluster as kir reads it for readiness: the objects of `kubectl get -A -o json` (one
//! `List`, an array, or several JSON documents one after another), indexed by kind.

use serde_json::Value;

/// The kinds readiness reads, as `kubectl get` names them: the dump command and the live mode
/// list exactly these.
pub const KINDS: &[(&str, &str, &str)] = &[
    // (kind, API path prefix, plural)
    ("Namespace", "/api/v1", "namespaces"),
    ("Pod", "/api/v1", "pods"),
    ("Service", "/api/v1", "services"),
    ("ServiceAccount", "/api/v1", "serviceaccounts"),
    ("Deployment", "/apis/apps/v1", "deployments"),
    ("DaemonSet", "/apis/apps/v1", "daemonsets"),
    ("StatefulSet", "/apis/apps/v1", "statefulsets"),
    ("ReplicaSet", "/apis/apps/v1", "replicasets"),
    ("Job", "/apis/batch/v1", "jobs"),
    ("CronJob", "/apis/batch/v1", "cronjobs"),
    ("Ingress", "/apis/networking.k8s.io/v1", "ingresses"),
    ("NetworkPolicy", "/apis/networking.k8s.io/v1", "networkpolicies"),
    ("ClusterRole", "/apis/rbac.authorization.k8s.io/v1", "clusterroles"),
    ("ClusterRoleBinding", "/apis/rbac.authorization.k8s.io/v1", "clusterrolebindings"),
    ("Role", "/apis/rbac.authorization.k8s.io/v1", "roles"),
    ("RoleBinding", "/apis/rbac.authorization.k8s.io/v1", "rolebindings"),
];

/// The `kubectl` command that writes a dump readiness reads (documented in docs/readiness.md).
pub const DUMP_COMMAND: &str = "kubectl get -A -o json namespaces,pods,services,serviceaccounts,deployments,daemonsets,statefulsets,replicasets,jobs,cronjobs,ingresses,networkpolicies,clusterroles,clusterrolebindings,roles,rolebindings > cluster-dump.json";

#[derive(Debug, Default, Clone)]
pub struct Inventory {
    pub objects: Vec<Value>,
    /// Kinds that were listed (live, or a typed `PodList`) or appear in the dump: a check about
    /// a kind that is absent says `unknown`, not `pass`.
    pub kinds_seen: std::collections::BTreeSet<String>,
    /// The dump is a plain `List` (or array), as `kubectl get -A -o json KIND,KIND…` writes
    /// it: a kind with no objects does not show in it, so every kind of [`KINDS`] counts as
    /// listed (the documented command lists them all).
    pub whole: bool,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InventoryError(pub String);

impl Inventory {
    /// Reads a dump. Objects without a `kind` are skipped and counted in the returned notes.
    pub fn from_json(text: &str) -> Result<(Inventory, Vec<String>), InventoryError> {
        let mut inventory = Inventory::default();
        let mut notes = Vec::new();
        let stream = serde_json::Deserializer::from_str(text).into_iter::<Value>();
        let mut documents = 0;
        for doc in stream {
            let doc = doc.map_err(|e| {
                InventoryError(format!(
                    "not the JSON of `kubectl get -o json` at line {} column {}: {e}",
                    e.line(),
                    e.column()
                ))
            })?;
            documents += 1;
            inventory.add_document(doc, &mut notes);
        }
        if documents == 0 {
            return Err(InventoryError("empty: expected the output of `kubectl get -A -o json …`".into()));
        }
        Ok((inventory, notes))
    }

    fn add_document(&mut self, doc: Value, notes: &mut Vec<String>) {
        match doc {
            Value::Array(items) => {
                self.whole = true;
                items.into_iter().for_each(|i| self.add_document(i, notes))
            }
            Value::Object(ref o) if o.get("items").is_some_and(Value::is_array) => {
                // A typed list (`PodList`) names its items' kind only in its own kind.
                let list_kind: Option<String> =
                    o.get("kind").and_then(Value::as_str).and_then(|k| k.strip_suffix("List")).map(str::to_string);
                let list_kind = list_kind.as_deref();
                match list_kind.filter(|k| !k.is_empty()) {
                    Some(kind) => {
                        self.kinds_seen.insert(kind.to_string());
                    }
                    None => self.whole = true,
                }
                let Value::Object(mut o) = doc else { return };
                let Some(Value::Array(items)) = o.remove("items") else { return };
                for mut item in items {
                    if item.get("kind").is_none()
                        && let (Some(kind), Some(obj)) = (list_kind.filter(|k| !k.is_empty()), item.as_object_mut())
                    {
                        obj.insert("kind".into(), Value::String(kind.to_string()));
                    }
                    self.add_document(item, notes);
                }
            }
            Value::Object(ref o) => match o.get("kind").and_then(Value::as_str) {
                Some(kind) => {
                    self.kinds_seen.insert(kind.to_string());
                    self.objects.push(doc);
                }
                None => notes.push(format!(
                    "an object without a kind was skipped ({})",
                    o.get("metadata").and_then(|m| m.get("name")).and_then(Value::as_str).unwrap_or("no name")
                )),
            },
            other => notes.push(format!("a {} where an object was expected was skipped", json_type(&other))),
        }
    }

    pub fn of_kind<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
        self.objects.iter().filter(move |o| o["kind"] == kind)
    }

    pub fn has_kind(&self, kind: &str) -> bool {
        self.kinds_seen.contains(kind) || (self.whole && KINDS.iter().any(|(k, _, _)| *k == kind))
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

pub fn name(o: &Value) -> &str {
    o.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("")
}

pub fn namespace(o: &Value) -> Option<&str> {
    o.pointer("/metadata/namespace").and_then(Value::as_str).filter(|n| !n.is_empty())
}

/// `pod/shop/web`, `clusterrolebinding/anon`: the object strings of the readiness contract.
pub fn reference(o: &Value) -> String {
    let kind = o["kind"].as_str().unwrap_or("object").to_ascii_lowercase();
    match namespace(o) {
        Some(ns) => format!("{kind}/{ns}/{}", name(o)),
        None => format!("{kind}/{}", name(o)),
    }
}
