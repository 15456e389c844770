//! `kir collect pod`: the pod and everything that explains it, into an evidence bundle. Reads
//! only (the read-only role of `deploy/rbac.yaml` is enough); Secret values never enter the
//! bundle: each value is replaced by its SHA-256.

use std::collections::BTreeSet;

use kube::Client;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::{Error, encode, explain};

#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Keep Secret values (asked for explicitly; redacted by default).
    pub include_secret_values: bool,
}

/// What was collected, and what could not be (with why).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Report {
    pub files: Vec<String>,
    pub skipped: Vec<String>,
    /// The subject as read (the pod or node object), for steps that follow.
    #[serde(skip)]
    pub object: Value,
}

struct Collector<'a> {
    client: &'a Client,
    bundle: &'a mut kir_evidence::BundleWriter,
    report: Report,
}

impl Collector<'_> {
    /// GET `path`; the text as the server sent it.
    async fn get(&self, path: &str) -> Result<String, kube::Error> {
        crate::get_text(self.client, path).await
    }

    /// GET into a bundle file; `Ok(None)` when the object is gone or a non-fatal error is noted.
    async fn save(
        &mut self,
        path: &str,
        file: &str,
        what: (&str, Option<&str>, Option<&str>),
    ) -> Result<Option<Value>, Error> {
        match self.get(path).await {
            Ok(text) => {
                self.bundle.add(file, text.as_bytes(), Some(&format!("GET {path}")))?;
                self.report.files.push(file.to_string());
                Ok(serde_json::from_str(&text).ok())
            }
            Err(e) => {
                let err = explain(e, "get", what.0, what.1, what.2);
                match err {
                    // A missing permission for one related object is noted, not fatal: the rest
                    // of the evidence is still worth having.
                    Error::NotFound { .. } | Error::Api { .. } | Error::Forbidden { .. } => {
                        self.report.skipped.push(format!("{file}: {err}"));
                        Ok(None)
                    }
                    other => Err(other),
                }
            }
        }
    }
}

fn list_items(v: &Option<Value>) -> Vec<Value> {
    v.as_ref().and_then(|v| v.get("items")).and_then(|i| i.as_array()).cloned().unwrap_or_default()
}

/// Does a label selector (`matchLabels`, `matchExpressions` with In/NotIn/Exists/DoesNotExist)
/// select these labels? An empty selector selects everything.
pub fn selects(selector: &Value, labels: &serde_json::Map<String, Value>) -> bool {
    let ml = selector.get("matchLabels").and_then(|m| m.as_object());
    if let Some(ml) = ml
        && !ml.iter().all(|(k, v)| labels.get(k) == Some(v))
    {
        return false;
    }
    for e in selector.get("matchExpressions").and_then(|m| m.as_array()).into_iter().flatten() {
        let key = e.get("key").and_then(|k| k.as_str()).unwrap_or_default();
        let values: Vec<&str> =
            e.get("values").and_then(|v| v.as_array()).into_iter().flatten().filter_map(|v| v.as_str()).collect();
        let have = labels.get(key).and_then(|v| v.as_str());
        let ok = match e.get("operator").and_then(|o| o.as_str()) {
            Some("In") => have.is_some_and(|h| values.contains(&h)),
            Some("NotIn") => have.is_none_or(|h| !values.contains(&h)),
            Some("Exists") => have.is_some(),
            Some("DoesNotExist") => have.is_none(),
            _ => false,
        };
        if !ok {
            return false;
        }
    }
    true
}

/// Replaces every value of a Secret's `data` and `stringData` with `sha256:HEX` of the value.
pub fn redact_secret(secret: &mut Value) {
    for key in ["data", "stringData"] {
        if let Some(map) = secret.get_mut(key).and_then(|d| d.as_object_mut()) {
            for v in map.values_mut() {
                let raw = v.as_str().unwrap_or_default();
                *v = Value::String(format!("sha256:{}", hex::encode(Sha256::digest(raw.as_bytes()))));
            }
        }
    }
    // kubectl apply keeps the whole object, values included, in this annotation.
    if let Some(ann) = secret.pointer_mut("/metadata/annotations").and_then(|a| a.as_object_mut()) {
        ann.remove("kubectl.kubernetes.io/last-applied-configuration");
    }
    if let Some(mf) = secret.pointer_mut("/metadata").and_then(|m| m.as_object_mut()) {
        mf.remove("managedFields");
    }
}

/// Collects pod `namespace/name` into `bundle`.
pub async fn pod(
    client: &Client,
    namespace: &str,
    name: &str,
    options: &Options,
    bundle: &mut kir_evidence::BundleWriter,
) -> Result<Report, Error> {
    let mut c = Collector { client, bundle, report: Report::default() };
    let ns = namespace;
    // Names go into paths encoded: what the caller typed is not trusted to be a valid name.
    let (ens, ename) = (encode(ns), encode(name));
    // The pod itself must be readable: everything else hangs on it.
    let pod_path = format!("/api/v1/namespaces/{ens}/pods/{ename}");
    let pod_text = c.get(&pod_path).await.map_err(|e| explain(e, "get", "pods", Some(ns), Some(name)))?;
    c.bundle.add("pod.json", pod_text.as_bytes(), Some(&format!("GET {pod_path}")))?;
    c.report.files.push("pod.json".into());
    let pod: Value = serde_json::from_str(&pod_text).unwrap_or_default();
    c.report.object = pod.clone();

    // Owners, up the chain (ReplicaSet → Deployment, Job → CronJob).
    let mut owners: Vec<Value> =
        pod.pointer("/metadata/ownerReferences").and_then(|o| o.as_array()).cloned().unwrap_or_default();
    let mut depth = 0;
    while let Some(owner) = owners.pop() {
        depth += 1;
        if depth > 6 {
            break;
        }
        let kind = owner.get("kind").and_then(|k| k.as_str()).unwrap_or_default();
        let oname = owner.get("name").and_then(|k| k.as_str()).unwrap_or_default();
        let (group, plural) = match kind {
            "ReplicaSet" => ("apis/apps/v1", "replicasets"),
            "Deployment" => ("apis/apps/v1", "deployments"),
            "StatefulSet" => ("apis/apps/v1", "statefulsets"),
            "DaemonSet" => ("apis/apps/v1", "daemonsets"),
            "Job" => ("apis/batch/v1", "jobs"),
            "CronJob" => ("apis/batch/v1", "cronjobs"),
            _ => {
                c.report.skipped.push(format!("owner {kind} {oname}: not a workload kir follows"));
                continue;
            }
        };
        let path = format!("/{group}/namespaces/{ens}/{plural}/{}", encode(oname));
        if let Some(v) = c.save(&path, &format!("owners/{kind}-{oname}.json"), (plural, Some(ns), Some(oname))).await? {
            owners
                .extend(v.pointer("/metadata/ownerReferences").and_then(|o| o.as_array()).cloned().unwrap_or_default());
        }
    }

    if let Some(node) = pod.pointer("/spec/nodeName").and_then(|n| n.as_str()) {
        c.save(&format!("/api/v1/nodes/{}", encode(node)), "node.json", ("nodes", None, Some(node))).await?;
    }
    let sa = pod.pointer("/spec/serviceAccountName").and_then(|s| s.as_str()).unwrap_or("default").to_string();
    c.save(
        &format!("/api/v1/namespaces/{ens}/serviceaccounts/{}", encode(&sa)),
        "serviceaccount.json",
        ("serviceaccounts", Some(ns), Some(&sa)),
    )
    .await?;

    // Bindings that grant the service account something, in any namespace (a RoleBinding
    // elsewhere can name it too).
    let mut granted = Vec::new();
    for path in
        ["/apis/rbac.authorization.k8s.io/v1/rolebindings", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings"]
    {
        match c.get(path).await {
            Ok(text) => {
                let v: Option<Value> = serde_json::from_str(&text).ok();
                granted.extend(list_items(&v).into_iter().filter(|b| names_service_account(b, ns, &sa)));
            }
            Err(e) => c.report.skipped.push(format!("rbac: {}", explain(e, "list", "rolebindings", None, None))),
        }
    }
    let rbac = serde_json::to_vec_pretty(&granted).unwrap_or_default();
    c.bundle.add(
        "rbac/bindings-of-serviceaccount.json",
        &rbac,
        Some("role and cluster role bindings naming the pod's service account"),
    )?;
    c.report.files.push("rbac/bindings-of-serviceaccount.json".into());

    let events_path =
        format!("/api/v1/namespaces/{ens}/events?fieldSelector={}", encode(&format!("involvedObject.name={name}")));
    c.save(&events_path, "events.json", ("events", Some(ns), None)).await?;

    // Logs of every container: init, regular and ephemeral, current and previous.
    let mut containers = Vec::new();
    for key in ["initContainers", "containers", "ephemeralContainers"] {
        for ct in pod.pointer(&format!("/spec/{key}")).and_then(|c| c.as_array()).into_iter().flatten() {
            if let Some(n) = ct.get("name").and_then(|n| n.as_str()) {
                containers.push(n.to_string());
            }
        }
    }
    for ct in &containers {
        for (query, suffix) in [("", "log"), ("&previous=true", "previous.log")] {
            let path = format!("/api/v1/namespaces/{ens}/pods/{ename}/log?container={}{query}", encode(ct));
            match c.get(&path).await {
                Ok(text) => {
                    let file = format!("logs/{ct}.{suffix}");
                    c.bundle.add(&file, text.as_bytes(), Some(&format!("GET {path}")))?;
                    c.report.files.push(file);
                }
                Err(e) => c
                    .report
                    .skipped
                    .push(format!("logs/{ct}.{suffix}: {}", explain(e, "get", "pods/log", Some(ns), Some(name)))),
            }
        }
    }

    // ConfigMaps and Secrets the pod mounts or reads (Secrets by name and key only).
    let mut config_maps = BTreeSet::new();
    let mut secrets = BTreeSet::new();
    for v in pod.pointer("/spec/volumes").and_then(|v| v.as_array()).into_iter().flatten() {
        if let Some(n) = v.pointer("/configMap/name").and_then(|n| n.as_str()) {
            config_maps.insert(n.to_string());
        }
        if let Some(n) = v.pointer("/secret/secretName").and_then(|n| n.as_str()) {
            secrets.insert(n.to_string());
        }
        for src in v.pointer("/projected/sources").and_then(|s| s.as_array()).into_iter().flatten() {
            if let Some(n) = src.pointer("/configMap/name").and_then(|n| n.as_str()) {
                config_maps.insert(n.to_string());
            }
            if let Some(n) = src.pointer("/secret/name").and_then(|n| n.as_str()) {
                secrets.insert(n.to_string());
            }
        }
    }
    for key in ["initContainers", "containers"] {
        for ct in pod.pointer(&format!("/spec/{key}")).and_then(|c| c.as_array()).into_iter().flatten() {
            for ef in ct.get("envFrom").and_then(|e| e.as_array()).into_iter().flatten() {
                if let Some(n) = ef.pointer("/configMapRef/name").and_then(|n| n.as_str()) {
                    config_maps.insert(n.to_string());
                }
                if let Some(n) = ef.pointer("/secretRef/name").and_then(|n| n.as_str()) {
                    secrets.insert(n.to_string());
                }
            }
            for env in ct.get("env").and_then(|e| e.as_array()).into_iter().flatten() {
                if let Some(n) = env.pointer("/valueFrom/configMapKeyRef/name").and_then(|n| n.as_str()) {
                    config_maps.insert(n.to_string());
                }
                if let Some(n) = env.pointer("/valueFrom/secretKeyRef/name").and_then(|n| n.as_str()) {
                    secrets.insert(n.to_string());
                }
            }
        }
    }
    for cm in &config_maps {
        let path = format!("/api/v1/namespaces/{ens}/configmaps/{}", encode(cm));
        c.save(&path, &format!("configmaps/{cm}.json"), ("configmaps", Some(ns), Some(cm))).await?;
    }
    for s in &secrets {
        let path = format!("/api/v1/namespaces/{ens}/secrets/{}", encode(s));
        match c.get(&path).await {
            Ok(text) => {
                let mut v: Value = serde_json::from_str(&text).unwrap_or_default();
                let note = if options.include_secret_values {
                    "values kept (--include-secret-values)"
                } else {
                    redact_secret(&mut v);
                    "values replaced by their SHA-256"
                };
                let file = format!("secrets/{s}.json");
                c.bundle.add(
                    &file,
                    &serde_json::to_vec_pretty(&v).unwrap_or_default(),
                    Some(&format!("GET {path}; {note}")),
                )?;
                c.report.files.push(file);
            }
            Err(e) => {
                c.report.skipped.push(format!("secrets/{s}.json: {}", explain(e, "get", "secrets", Some(ns), Some(s))))
            }
        }
    }

    // NetworkPolicies that select the pod and Services that route to it.
    let labels = pod.pointer("/metadata/labels").and_then(|l| l.as_object()).cloned().unwrap_or_default();
    let policies = match c.get(&format!("/apis/networking.k8s.io/v1/namespaces/{ens}/networkpolicies")).await {
        Ok(t) => list_items(&serde_json::from_str(&t).ok())
            .into_iter()
            .filter(|p| p.pointer("/spec/podSelector").is_some_and(|s| selects(s, &labels)))
            .collect(),
        Err(e) => {
            c.report
                .skipped
                .push(format!("networkpolicies: {}", explain(e, "list", "networkpolicies", Some(ns), None)));
            Vec::new()
        }
    };
    c.bundle.add(
        "networkpolicies.json",
        &serde_json::to_vec_pretty(&policies).unwrap_or_default(),
        Some("NetworkPolicies that select the pod"),
    )?;
    c.report.files.push("networkpolicies.json".into());
    let services: Vec<Value> = match c.get(&format!("/api/v1/namespaces/{ens}/services")).await {
        Ok(t) => list_items(&serde_json::from_str(&t).ok())
            .into_iter()
            .filter(|s| {
                s.pointer("/spec/selector")
                    .and_then(|sel| sel.as_object())
                    .is_some_and(|sel| !sel.is_empty() && sel.iter().all(|(k, v)| labels.get(k) == Some(v)))
            })
            .collect(),
        Err(e) => {
            c.report.skipped.push(format!("services: {}", explain(e, "list", "services", Some(ns), None)));
            Vec::new()
        }
    };
    c.bundle.add(
        "services.json",
        &serde_json::to_vec_pretty(&services).unwrap_or_default(),
        Some("Services whose selector matches the pod"),
    )?;
    c.report.files.push("services.json".into());

    // The images as the kubelet resolved them.
    let images: Vec<Value> = ["initContainerStatuses", "containerStatuses", "ephemeralContainerStatuses"]
        .iter()
        .flat_map(|k| pod.pointer(&format!("/status/{k}")).and_then(|s| s.as_array()).cloned().unwrap_or_default())
        .map(|s| serde_json::json!({"container": s.get("name"), "image": s.get("image"), "imageID": s.get("imageID"), "containerID": s.get("containerID")}))
        .collect();
    c.bundle.add(
        "images.json",
        &serde_json::to_vec_pretty(&images).unwrap_or_default(),
        Some("pod status: images with resolved IDs"),
    )?;
    c.report.files.push("images.json".into());
    Ok(c.report)
}

/// The UID of kube-system: the cluster's identity in a bundle.
pub async fn kube_system_uid(client: &Client) -> Option<String> {
    let text = crate::get_text(client, "/api/v1/namespaces/kube-system").await.ok()?;
    let v: Value = serde_json::from_str(&text).ok()?;
    v.pointer("/metadata/uid").and_then(|u| u.as_str()).map(str::to_string)
}

impl Collector<'_> {
    /// GET a list, keep the items `keep` accepts, write them as one JSON array. A list that
    /// cannot be read is noted, not fatal.
    async fn save_items(
        &mut self,
        path: &str,
        file: &str,
        what: (&str, Option<&str>),
        keep: impl Fn(&Value) -> bool,
    ) -> Result<Vec<Value>, Error> {
        match self.get(path).await {
            Ok(text) => {
                let items: Vec<Value> =
                    list_items(&serde_json::from_str(&text).ok()).into_iter().filter(|v| keep(v)).collect();
                self.bundle.add(
                    file,
                    &serde_json::to_vec_pretty(&items).unwrap_or_default(),
                    Some(&format!("GET {path}")),
                )?;
                self.report.files.push(file.to_string());
                Ok(items)
            }
            Err(e) => {
                let err = explain(e, "list", what.0, what.1, None);
                match err {
                    err if err.is_connection() => Err(err),
                    other => {
                        self.report.skipped.push(format!("{file}: {other}"));
                        Ok(Vec::new())
                    }
                }
            }
        }
    }

    /// GET text into a file; noted when it cannot be read.
    async fn save_text(&mut self, path: &str, file: &str, what: &str) -> Result<(), Error> {
        match self.get(path).await {
            Ok(text) => {
                self.bundle.add(file, text.as_bytes(), Some(&format!("GET {path}")))?;
                self.report.files.push(file.to_string());
                Ok(())
            }
            Err(e) => match explain(e, "get", what, None, None) {
                err if err.is_connection() => Err(err),
                other => {
                    self.report.skipped.push(format!("{file}: {other}"));
                    Ok(())
                }
            },
        }
    }
}

/// What node collection may also do: read the node's own logs through the kubelet (`nodes/proxy`,
/// a powerful permission, so asked for).
#[derive(Debug, Clone, Default)]
pub struct NodeOptions {
    pub node_logs: bool,
}

/// The node logs asked for with `node_logs`: files under /var/log the kubelet serves, and the
/// journal units through the kubelet's log query (Kubernetes 1.27+, NodeLogQuery).
pub const NODE_LOG_FILES: &[&str] = &["auth.log", "secure", "syslog", "messages", "audit/audit.log"];
pub const NODE_LOG_UNITS: &[&str] = &["kubelet", "containerd", "crio", "sshd"];

/// Collects a node: the object (conditions, taints, addresses, attached volumes), its pods, the
/// VolumeAttachments (the disks to snapshot), events, the kubelet's stats summary, and with
/// `node_logs` the node's OS logs through the kubelet, without logging in.
pub async fn node(
    client: &Client,
    name: &str,
    options: &NodeOptions,
    bundle: &mut kir_evidence::BundleWriter,
) -> Result<Report, Error> {
    let mut c = Collector { client, bundle, report: Report::default() };
    let node_path = format!("/api/v1/nodes/{}", encode(name));
    let text = c.get(&node_path).await.map_err(|e| explain(e, "get", "nodes", None, Some(name)))?;
    c.bundle.add("node.json", text.as_bytes(), Some(&format!("GET {node_path}")))?;
    c.report.files.push("node.json".into());
    let node: Value = serde_json::from_str(&text).unwrap_or_default();
    c.report.object = node.clone();
    let summary = serde_json::json!({
        "name": name,
        "unschedulable": node.pointer("/spec/unschedulable"),
        "taints": node.pointer("/spec/taints"),
        "conditions": node.pointer("/status/conditions"),
        "addresses": node.pointer("/status/addresses"),
        "nodeInfo": node.pointer("/status/nodeInfo"),
        "providerID": node.pointer("/spec/providerID"),
        "volumesAttached": node.pointer("/status/volumesAttached"),
        "volumesInUse": node.pointer("/status/volumesInUse"),
    });
    c.bundle.add(
        "node-summary.json",
        &serde_json::to_vec_pretty(&summary).unwrap_or_default(),
        Some("from node.json"),
    )?;
    c.report.files.push("node-summary.json".into());
    let selector = encode(&format!("spec.nodeName={name}"));
    c.save_items(&format!("/api/v1/pods?fieldSelector={selector}"), "pods.json", ("pods", None), |_| true).await?;
    c.save_items(
        "/apis/storage.k8s.io/v1/volumeattachments",
        "volumeattachments.json",
        ("volumeattachments", None),
        |v| v.pointer("/spec/nodeName").and_then(|n| n.as_str()) == Some(name),
    )
    .await?;
    let events = encode(&format!("involvedObject.kind=Node,involvedObject.name={name}"));
    c.save_items(&format!("/api/v1/events?fieldSelector={events}"), "events.json", ("events", None), |_| true).await?;
    c.save_text(&format!("{node_path}/proxy/stats/summary"), "kubelet/stats-summary.json", "nodes/proxy").await?;
    if options.node_logs {
        for f in NODE_LOG_FILES {
            c.save_text(&format!("{node_path}/proxy/logs/{f}"), &format!("node-logs/{f}"), "nodes/proxy").await?;
        }
        for unit in NODE_LOG_UNITS {
            c.save_text(
                &format!("{node_path}/proxy/logs/?query={unit}"),
                &format!("node-logs/journal-{unit}.log"),
                "nodes/proxy",
            )
            .await?;
        }
    }
    Ok(c.report)
}

/// The kinds a namespace collection lists, with their API paths.
const NAMESPACED: &[(&str, &str, &str)] = &[
    ("pods", "api/v1", "pods"),
    ("services", "api/v1", "services"),
    ("serviceaccounts", "api/v1", "serviceaccounts"),
    ("configmaps", "api/v1", "configmaps"),
    ("persistentvolumeclaims", "api/v1", "persistentvolumeclaims"),
    ("endpoints", "api/v1", "endpoints"),
    ("deployments", "apis/apps/v1", "deployments"),
    ("replicasets", "apis/apps/v1", "replicasets"),
    ("statefulsets", "apis/apps/v1", "statefulsets"),
    ("daemonsets", "apis/apps/v1", "daemonsets"),
    ("jobs", "apis/batch/v1", "jobs"),
    ("cronjobs", "apis/batch/v1", "cronjobs"),
    ("ingresses", "apis/networking.k8s.io/v1", "ingresses"),
    ("networkpolicies", "apis/networking.k8s.io/v1", "networkpolicies"),
    ("roles", "apis/rbac.authorization.k8s.io/v1", "roles"),
    ("rolebindings", "apis/rbac.authorization.k8s.io/v1", "rolebindings"),
];

/// Collects a namespace: the namespace object, every workload, service, account, config, role
/// and binding in it, Secrets with values redacted, and its events.
pub async fn namespace(
    client: &Client,
    ns: &str,
    options: &Options,
    bundle: &mut kir_evidence::BundleWriter,
) -> Result<Report, Error> {
    let mut c = Collector { client, bundle, report: Report::default() };
    let path = format!("/api/v1/namespaces/{}", encode(ns));
    let text = c.get(&path).await.map_err(|e| explain(e, "get", "namespaces", None, Some(ns)))?;
    c.bundle.add("namespace.json", text.as_bytes(), Some(&format!("GET {path}")))?;
    c.report.files.push("namespace.json".into());
    for (file, api, plural) in NAMESPACED {
        let list = format!("/{api}/namespaces/{}/{plural}", encode(ns));
        c.save_items(&list, &format!("objects/{file}.json"), (plural, Some(ns)), |_| true).await?;
    }
    save_secrets(&mut c, ns, options, |_| true).await?;
    c.save_items(&format!("/api/v1/namespaces/{}/events", encode(ns)), "events.json", ("events", Some(ns)), |_| true)
        .await?;
    // Cluster-wide bindings that reach into the namespace's service accounts.
    c.save_items(
        "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
        "rbac/clusterrolebindings-naming-namespace.json",
        ("clusterrolebindings", None),
        |b| {
            b.get("subjects").and_then(|s| s.as_array()).into_iter().flatten().any(|s| {
                s.get("namespace").and_then(|n| n.as_str()) == Some(ns)
                    || s.get("name").and_then(|n| n.as_str()) == Some(&format!("system:serviceaccounts:{ns}"))
            })
        },
    )
    .await?;
    Ok(c.report)
}

async fn save_secrets(
    c: &mut Collector<'_>,
    ns: &str,
    options: &Options,
    keep: impl Fn(&Value) -> bool,
) -> Result<(), Error> {
    let path = format!("/api/v1/namespaces/{}/secrets", encode(ns));
    match c.get(&path).await {
        Ok(text) => {
            let mut items: Vec<Value> =
                list_items(&serde_json::from_str(&text).ok()).into_iter().filter(|v| keep(v)).collect();
            let note = if options.include_secret_values {
                "values kept (--include-secret-values)"
            } else {
                items.iter_mut().for_each(redact_secret);
                "values replaced by their SHA-256"
            };
            c.bundle.add(
                "objects/secrets.json",
                &serde_json::to_vec_pretty(&items).unwrap_or_default(),
                Some(&format!("GET {path}; {note}")),
            )?;
            c.report.files.push("objects/secrets.json".into());
        }
        Err(e) => match explain(e, "list", "secrets", Some(ns), None) {
            err if err.is_connection() => return Err(err),
            other => c.report.skipped.push(format!("objects/secrets.json: {other}")),
        },
    }
    Ok(())
}

/// Does a binding's subject list grant something to service account `ns/name`?
fn names_service_account(binding: &Value, ns: &str, name: &str) -> bool {
    let binding_ns = binding.pointer("/metadata/namespace").and_then(|n| n.as_str());
    binding.get("subjects").and_then(|s| s.as_array()).into_iter().flatten().any(|s| {
        let kind = s.get("kind").and_then(|k| k.as_str()).unwrap_or_default();
        let sname = s.get("name").and_then(|k| k.as_str()).unwrap_or_default();
        let sns = s.get("namespace").and_then(|k| k.as_str()).or(binding_ns);
        (kind == "ServiceAccount" && sname == name && sns == Some(ns))
            || (kind == "Group"
                && ["system:serviceaccounts", &format!("system:serviceaccounts:{ns}"), "system:authenticated"]
                    .contains(&sname))
    })
}

/// Collects a service account: the object, every binding that grants it something (in any
/// namespace), the roles those bindings name (what it can do), its token Secrets (values
/// redacted) and the pods that run as it.
pub async fn serviceaccount(
    client: &Client,
    ns: &str,
    name: &str,
    options: &Options,
    bundle: &mut kir_evidence::BundleWriter,
) -> Result<Report, Error> {
    let mut c = Collector { client, bundle, report: Report::default() };
    let path = format!("/api/v1/namespaces/{}/serviceaccounts/{}", encode(ns), encode(name));
    let text = c.get(&path).await.map_err(|e| explain(e, "get", "serviceaccounts", Some(ns), Some(name)))?;
    c.bundle.add("serviceaccount.json", text.as_bytes(), Some(&format!("GET {path}")))?;
    c.report.files.push("serviceaccount.json".into());
    let mut bindings = c
        .save_items(
            "/apis/rbac.authorization.k8s.io/v1/rolebindings",
            "rbac/rolebindings.json",
            ("rolebindings", None),
            |b| names_service_account(b, ns, name),
        )
        .await?;
    bindings.extend(
        c.save_items(
            "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
            "rbac/clusterrolebindings.json",
            ("clusterrolebindings", None),
            |b| names_service_account(b, ns, name),
        )
        .await?,
    );
    // The roles named, so the bundle says what the account can do.
    let mut roles = BTreeSet::new();
    for b in &bindings {
        let kind = b.pointer("/roleRef/kind").and_then(|k| k.as_str()).unwrap_or_default().to_string();
        let rname = b.pointer("/roleRef/name").and_then(|k| k.as_str()).unwrap_or_default().to_string();
        let bns = b.pointer("/metadata/namespace").and_then(|k| k.as_str()).map(str::to_string);
        roles.insert((kind, bns, rname));
    }
    for (kind, bns, rname) in &roles {
        let (path, file) = match (kind.as_str(), bns) {
            ("Role", Some(bns)) => (
                format!("/apis/rbac.authorization.k8s.io/v1/namespaces/{}/roles/{}", encode(bns), encode(rname)),
                format!("rbac/roles/{bns}-{rname}.json"),
            ),
            _ => (
                format!("/apis/rbac.authorization.k8s.io/v1/clusterroles/{}", encode(rname)),
                format!("rbac/clusterroles/{rname}.json"),
            ),
        };
        if c.report.files.contains(&file) {
            continue;
        }
        c.save(&path, &file, ("roles", bns.as_deref(), Some(rname))).await?;
    }
    save_secrets(&mut c, ns, options, |s| {
        s.get("type").and_then(|t| t.as_str()) == Some("kubernetes.io/service-account-token")
            && s.pointer("/metadata/annotations/kubernetes.io~1service-account.name").and_then(|n| n.as_str())
                == Some(name)
    })
    .await?;
    c.save_items(&format!("/api/v1/namespaces/{}/pods", encode(ns)), "pods-running-as.json", ("pods", Some(ns)), |p| {
        p.pointer("/spec/serviceAccountName").and_then(|s| s.as_str()).unwrap_or("default") == name
    })
    .await?;
    Ok(c.report)
}
