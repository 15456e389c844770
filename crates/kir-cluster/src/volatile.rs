//! Volatile data and snapshots, each opt-in because each changes something: an ephemeral debug
//! container added to the pod (it stays in the pod's spec until the pod is deleted), a kubelet
//! checkpoint written on the node, VolumeSnapshots created in the namespace. Every one is checked
//! against the caller's RBAC first; what cannot be done is said and skipped, never half-done.

use std::time::Duration;

use kube::Client;
use serde_json::{Value, json};

use crate::collect::Report;
use crate::contain::{Permission, missing_permissions};
use crate::{Error, encode, explain};

/// What the debug container runs: processes, connections and recently changed files, read
/// through `/proc` of the target container (it shares the target's process namespace).
pub const DEBUG_SCRIPT: &str = r##"echo '## processes (pid ppid uid exe cmdline)'
for p in /proc/[0-9]*; do
  pid=${p#/proc/}
  ppid=$(sed -n 's/^PPid:[[:space:]]*//p' $p/status 2>/dev/null)
  uid=$(sed -n 's/^Uid:[[:space:]]*\([0-9]*\).*/\1/p' $p/status 2>/dev/null)
  exe=$(readlink $p/exe 2>/dev/null)
  cmd=$(tr '\0' ' ' < $p/cmdline 2>/dev/null)
  echo "$pid $ppid $uid ${exe:--} $cmd"
done
echo '## connections (/proc/net of the pod)'
for f in tcp tcp6 udp udp6; do echo "# $f"; cat /proc/net/$f 2>/dev/null; done
echo '## files changed in the last 24 hours (target root, first 2000)'
root=/proc/1/root
for p in /proc/[0-9]*; do if [ -r $p/root/ ] && [ "$p" != /proc/self ]; then root=$p/root; break; fi; done
find $root/ -xdev -type f -mmin -1440 2>/dev/null | head -2000 | sed "s|^$root||"
echo '## end'"##;

/// The ephemeral container kir adds for `name`.
pub fn debug_container(name: &str, image: &str, target: &str) -> Value {
    json!({"name": name, "image": image, "command": ["sh", "-c", DEBUG_SCRIPT], "targetContainerName": target,
        "stdin": false, "tty": false, "terminationMessagePolicy": "File"})
}

async fn send(
    client: &Client,
    method: http::Method,
    path: &str,
    content_type: &str,
    body: &Value,
) -> Result<String, kube::Error> {
    let req = http::Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", content_type)
        .body(serde_json::to_vec(body).unwrap_or_default())
        .expect("a request builds");
    client.request_text(req).await
}

async fn get_text(client: &Client, path: &str) -> Result<String, kube::Error> {
    client.request_text(http::Request::get(path).body(Vec::new()).expect("a GET request builds")).await
}

/// Adds an ephemeral container to the pod that lists processes, connections and recently
/// changed files of `target` through `/proc`, waits up to `wait` for it to finish, and writes
/// its output to `volatile/debug-container.log`.
#[allow(clippy::too_many_arguments)]
pub async fn run_debug_container(
    client: &Client,
    namespace: &str,
    pod: &str,
    target: &str,
    image: &str,
    container_name: &str,
    wait: Duration,
    poll: Duration,
    bundle: &mut kir_evidence::BundleWriter,
    report: &mut Report,
) -> Result<(), Error> {
    let permission = Permission {
        verb: "patch",
        group: "",
        resource: "pods",
        subresource: Some("ephemeralcontainers"),
        namespace: Some(namespace.to_string()),
    };
    let missing = missing_permissions(client, std::slice::from_ref(&permission)).await?;
    if !missing.is_empty() {
        report.skipped.push(format!("volatile/debug-container.log: missing permission: {permission}"));
        return Ok(());
    }
    let pod_path = format!("/api/v1/namespaces/{}/pods/{}", encode(namespace), encode(pod));
    let patch = json!({"spec": {"ephemeralContainers": [debug_container(container_name, image, target)]}});
    send(
        client,
        http::Method::PATCH,
        &format!("{pod_path}/ephemeralcontainers"),
        "application/strategic-merge-patch+json",
        &patch,
    )
    .await
    .map_err(|e| explain(e, "patch", "pods/ephemeralcontainers", Some(namespace), Some(pod)))?;
    let started = std::time::Instant::now();
    let last_state = loop {
        let text =
            get_text(client, &pod_path).await.map_err(|e| explain(e, "get", "pods", Some(namespace), Some(pod)))?;
        let p: Value = serde_json::from_str(&text).unwrap_or_default();
        let state = p
            .pointer("/status/ephemeralContainerStatuses")
            .and_then(|s| s.as_array())
            .and_then(|s| s.iter().find(|c| c["name"] == container_name))
            .map(|c| c["state"].clone())
            .unwrap_or(Value::Null);
        if state.get("terminated").is_some() || started.elapsed() >= wait {
            break state;
        }
        tokio::time::sleep(poll).await;
    };
    let log_path = format!("{pod_path}/log?container={}", encode(container_name));
    match get_text(client, &log_path).await {
        Ok(text) => {
            bundle.add(
                "volatile/debug-container.log",
                text.as_bytes(),
                Some(&format!("GET {log_path}; ephemeral container {container_name} ({image}) targeting {target}; state {last_state}")),
            )?;
            report.files.push("volatile/debug-container.log".into());
        }
        Err(e) => report.skipped.push(format!(
            "volatile/debug-container.log: {} (state {last_state})",
            explain(e, "get", "pods/log", Some(namespace), Some(pod))
        )),
    }
    Ok(())
}

/// Asks the kubelet (through the API server's node proxy) to checkpoint each container; the
/// archives stay on the node, under /var/lib/kubelet/checkpoints. Their paths (or the kubelet's
/// refusal) go to `volatile/checkpoints.json`.
pub async fn checkpoint(
    client: &Client,
    node: &str,
    namespace: &str,
    pod: &str,
    containers: &[String],
    bundle: &mut kir_evidence::BundleWriter,
    report: &mut Report,
) -> Result<(), Error> {
    let permission =
        Permission { verb: "create", group: "", resource: "nodes", subresource: Some("proxy"), namespace: None };
    if !missing_permissions(client, std::slice::from_ref(&permission)).await?.is_empty() {
        report.skipped.push(format!("volatile/checkpoints.json: missing permission: {permission}"));
        return Ok(());
    }
    let mut results = Vec::new();
    for c in containers {
        let path = format!(
            "/api/v1/nodes/{}/proxy/checkpoint/{}/{}/{}",
            encode(node),
            encode(namespace),
            encode(pod),
            encode(c)
        );
        let req = http::Request::post(&path).body(Vec::new()).expect("a POST request builds");
        match client.request_text(req).await {
            Ok(text) => {
                let v: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
                results.push(json!({"container": c, "node": node, "archives": v.get("items").cloned().unwrap_or(v),
                    "note": "the archive stays on the node: copy it off, then kir checkpoint inspect"}));
            }
            Err(e) => {
                // The kubelet answers in plain text (not a Status) when the runtime cannot checkpoint.
                let why = match e {
                    kube::Error::Api(s) => format!("{} {}", s.code, s.message),
                    other => other.to_string(),
                };
                report.skipped.push(format!("checkpoint of container {c}: {why}"));
                results.push(json!({"container": c, "node": node, "error": why}));
            }
        }
    }
    bundle.add(
        "volatile/checkpoints.json",
        &serde_json::to_vec_pretty(&results).unwrap_or_default(),
        Some("POST /api/v1/nodes/NODE/proxy/checkpoint/NS/POD/CONTAINER"),
    )?;
    report.files.push("volatile/checkpoints.json".into());
    Ok(())
}

/// Creates a CSI VolumeSnapshot of each PersistentVolumeClaim the pod mounts; the objects as
/// created go to `snapshots/volumesnapshots.json`.
pub async fn snapshot_volumes(
    client: &Client,
    namespace: &str,
    pod: &Value,
    class: Option<&str>,
    stamp: &str,
    bundle: &mut kir_evidence::BundleWriter,
    report: &mut Report,
) -> Result<(), Error> {
    let claims: Vec<String> = pod
        .pointer("/spec/volumes")
        .and_then(|v| v.as_array())
        .into_iter()
        .flatten()
        .filter_map(|v| v.pointer("/persistentVolumeClaim/claimName").and_then(|c| c.as_str()).map(str::to_string))
        .collect();
    if claims.is_empty() {
        report.skipped.push("snapshots: the pod mounts no PersistentVolumeClaim".into());
        return Ok(());
    }
    let permission = Permission {
        verb: "create",
        group: "snapshot.storage.k8s.io",
        resource: "volumesnapshots",
        subresource: None,
        namespace: Some(namespace.to_string()),
    };
    if !missing_permissions(client, std::slice::from_ref(&permission)).await?.is_empty() {
        report.skipped.push(format!("snapshots: missing permission: {permission}"));
        return Ok(());
    }
    let mut created = Vec::new();
    for claim in &claims {
        let mut name = format!("kir-{claim}-{}", stamp.to_ascii_lowercase());
        name.truncate(253);
        let mut spec = json!({"source": {"persistentVolumeClaimName": claim}});
        if let Some(c) = class {
            spec["volumeSnapshotClassName"] = json!(c);
        }
        let body = json!({"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshot",
            "metadata": {"name": name, "namespace": namespace, "labels": {"app.kubernetes.io/managed-by": "kir"}}, "spec": spec});
        let path = format!("/apis/snapshot.storage.k8s.io/v1/namespaces/{}/volumesnapshots", encode(namespace));
        match send(client, http::Method::POST, &path, "application/json", &body).await {
            Ok(text) => created.push(serde_json::from_str::<Value>(&text).unwrap_or(body)),
            Err(kube::Error::Api(s)) if s.code == 404 => {
                report.skipped.push(
                    "snapshots: the cluster has no VolumeSnapshot API (install the CSI external-snapshotter)".into(),
                );
                break;
            }
            Err(e) => report.skipped.push(format!(
                "snapshot of {claim}: {}",
                explain(e, "create", "volumesnapshots", Some(namespace), Some(&name))
            )),
        }
    }
    if !created.is_empty() {
        bundle.add(
            "snapshots/volumesnapshots.json",
            &serde_json::to_vec_pretty(&created).unwrap_or_default(),
            Some("VolumeSnapshots created (snapshot.storage.k8s.io/v1)"),
        )?;
        report.files.push("snapshots/volumesnapshots.json".into());
    }
    Ok(())
}
