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
}

struct Collector<'a> {
    client: &'a Client,
    bundle: &'a mut kir_evidence::BundleWriter,
    report: Report,
}

impl Collector<'_> {
    /// GET `path`; the text as the server sent it.
    async fn get(&self, path: &str) -> Result<String, kube::Error> {
        let req = http::Request::get(path).body(Vec::new()).expect("a GET request builds");
        self.client.request_text(req).await
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
                    Error::NotFound { .. } | Error::Api { .. } => {
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
    // The pod itself must be readable: everything else hangs on it.
    let pod_path = format!("/api/v1/namespaces/{ns}/pods/{name}");
    let pod_text = c.get(&pod_path).await.map_err(|e| explain(e, "get", "pods", Some(ns), Some(name)))?;
    c.bundle.add("pod.json", pod_text.as_bytes(), Some(&format!("GET {pod_path}")))?;
    c.report.files.push("pod.json".into());
    let pod: Value = serde_json::from_str(&pod_text).unwrap_or_default();

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
        let path = format!("/{group}/namespaces/{ns}/{plural}/{}", encode(oname));
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
        &format!("/api/v1/namespaces/{ns}/serviceaccounts/{}", encode(&sa)),
        "serviceaccount.json",
        ("serviceaccounts", Some(ns), Some(&sa)),
    )
    .await?;

    // Bindings that grant the service account something.
    let mut granted = Vec::new();
    for path in [
        format!("/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings"),
        "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings".to_string(),
    ] {
        match c.get(&path).await {
            Ok(text) => {
                let v: Option<Value> = serde_json::from_str(&text).ok();
                for b in list_items(&v) {
                    let grants = b.get("subjects").and_then(|s| s.as_array()).into_iter().flatten().any(|s| {
                        let kind = s.get("kind").and_then(|k| k.as_str()).unwrap_or_default();
                        let sname = s.get("name").and_then(|k| k.as_str()).unwrap_or_default();
                        let sns = s.get("namespace").and_then(|k| k.as_str()).unwrap_or(ns);
                        (kind == "ServiceAccount" && sname == sa && sns == ns)
                            || (kind == "Group"
                                && [
                                    "system:serviceaccounts",
                                    &format!("system:serviceaccounts:{ns}"),
                                    "system:authenticated",
                                ]
                                .contains(&sname))
                    });
                    if grants {
                        granted.push(b);
                    }
                }
            }
            Err(e) => c.report.skipped.push(format!("rbac: {}", explain(e, "list", "rolebindings", Some(ns), None))),
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
        format!("/api/v1/namespaces/{ns}/events?fieldSelector={}", encode(&format!("involvedObject.name={name}")));
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
            let path = format!("/api/v1/namespaces/{ns}/pods/{name}/log?container={}{query}", encode(ct));
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
        let path = format!("/api/v1/namespaces/{ns}/configmaps/{}", encode(cm));
        c.save(&path, &format!("configmaps/{cm}.json"), ("configmaps", Some(ns), Some(cm))).await?;
    }
    for s in &secrets {
        let path = format!("/api/v1/namespaces/{ns}/secrets/{}", encode(s));
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
    let policies = match c.get(&format!("/apis/networking.k8s.io/v1/namespaces/{ns}/networkpolicies")).await {
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
    let services: Vec<Value> = match c.get(&format!("/api/v1/namespaces/{ns}/services")).await {
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
    let req = http::Request::get("/api/v1/namespaces/kube-system").body(Vec::new()).ok()?;
    let text = client.request_text(req).await.ok()?;
    let v: Value = serde_json::from_str(&text).ok()?;
    v.pointer("/metadata/uid").and_then(|u| u.as_str()).map(str::to_string)
}
