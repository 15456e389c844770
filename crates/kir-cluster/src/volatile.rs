//! Volatile data and snapshots, each opt-in because each changes something: an ephemeral debug
//! container added to the pod (it stays in the pod's spec until the pod is deleted), a kubelet
//! checkpoint written on the node, VolumeSnapshots created in the namespace. Every one is checked
//! against the caller's RBAC first; what cannot be done is said and skipped, never half-done.

use std::time::Duration;

use kube::Client;
use serde_json::{Value, json};

use crate::collect::Report;
use crate::contain::{Permission, missing_permissions};
use crate::{Error, encode, explain, get_text};

/// What the debug container runs: processes, connections and recently changed files, read
/// through `/proc` of the target container (it shares the target's process namespace).
///
/// Command lines can hold Secret values expanded into arguments (`--password=$(DB_PASSWORD)`),
/// so by default only the program (argv\[0\]) is shown, with the count and a SHA-256 of the rest:
/// enough to compare with other evidence, nothing to leak. `full_command_lines` shows them whole.
/// The target's root is found from the target's processes (the first whose root is not the debug
/// container's own and that is not the pod's `pause` process, which a pod sharing its process
/// namespace shows as PID 1), and the output says which process it used or that none was readable.
pub fn debug_script(full_command_lines: bool) -> String {
    let full = if full_command_lines { 1 } else { 0 };
    format!("full={full}\n{DEBUG_SCRIPT_BODY}")
}

const DEBUG_SCRIPT_BODY: &str = r###"if [ "$full" = 1 ]; then echo '## processes (pid ppid uid exe cmdline)'
else echo '## processes (pid ppid uid exe argv0 [argument count, sha256 of the command line]; arguments redacted)'; fi
for p in /proc/[0-9]*; do
  pid=${p#/proc/}
  [ -r $p/status ] || continue
  ppid=$(sed -n 's/^PPid:[[:space:]]*//p' $p/status 2>/dev/null)
  uid=$(sed -n 's/^Uid:[[:space:]]*\([0-9]*\).*/\1/p' $p/status 2>/dev/null)
  exe=$(readlink $p/exe 2>/dev/null)
  if [ "$full" = 1 ]; then
    cmd=$(tr '\0' ' ' < $p/cmdline 2>/dev/null)
  else
    argv0=$(tr '\0' '\n' < $p/cmdline 2>/dev/null | head -n 1)
    n=$(tr -cd '\0' < $p/cmdline 2>/dev/null | wc -c)
    h=$(sha256sum < $p/cmdline 2>/dev/null | cut -c1-16)
    cmd="$argv0 [$n args, sha256:$h]"
  fi
  echo "$pid $ppid $uid ${exe:--} $cmd"
done
echo '## connections (/proc/net of the pod)'
for f in tcp tcp6 udp udp6; do echo "# $f"; cat /proc/net/$f 2>/dev/null; done
root=
for p in /proc/[0-9]*; do
  [ "$p" = /proc/$$ ] && continue
  case "$(readlink $p/exe 2>/dev/null)" in */pause) continue;; esac
  if [ -r $p/root/ ] && ! [ $p/root/ -ef / ]; then root=$p/root; break; fi
done
if [ -z "$root" ]; then
  echo '## files changed in the last 24 hours: no target process root is readable (the debug container needs to run as the target user or root)'
else
  echo "## files changed in the last 24 hours (root of process ${root#/proc/}, first 2000)"
  find $root/ -xdev -type f -mmin -1440 2>/dev/null | head -n 2000 | sed "s|^$root||"
fi
echo '## end'"###;

/// The ephemeral container kir adds for `name`.
pub fn debug_container(name: &str, image: &str, target: &str, full_command_lines: bool) -> Value {
    json!({"name": name, "image": image, "command": ["sh", "-c", debug_script(full_command_lines)], "targetContainerName": target,
        "stdin": false, "tty": false, "terminationMessagePolicy": "File"})
}

async fn send(
    client: &Client,
    method: http::Method,
    path: &str,
    content_type: &str,
    body: &Value,
) -> Result<String, kube::Error> {
    crate::request(client, method, path, Some((content_type, serde_json::to_vec(body).unwrap_or_default()))).await
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
    full_command_lines: bool,
    wait: Duration,
    poll: Duration,
    bundle: &mut kir_evidence::BundleWriter,
    report: &mut Report,
) -> Result<(), Error> {
    // Adding the container without being able to read what it prints would change the pod for
    // nothing: every permission the step needs is asked first.
    let pods = |verb, subresource| Permission {
        verb,
        group: "",
        resource: "pods",
        subresource,
        namespace: Some(namespace.to_string()),
        name: Some(pod.to_string()),
    };
    let wanted = [pods("patch", Some("ephemeralcontainers")), pods("get", None), pods("get", Some("log"))];
    let missing = missing_permissions(client, &wanted).await?;
    if !missing.is_empty() {
        let names: Vec<String> = missing.iter().map(|p| p.to_string()).collect();
        report.skipped.push(format!(
            "volatile/debug-container.log: missing permissions, so no container was added: {}",
            names.join("; ")
        ));
        return Ok(());
    }
    let pod_path = format!("/api/v1/namespaces/{}/pods/{}", encode(namespace), encode(pod));
    let patch =
        json!({"spec": {"ephemeralContainers": [debug_container(container_name, image, target, full_command_lines)]}});
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
    let permission = Permission {
        verb: "create",
        group: "",
        resource: "nodes",
        subresource: Some("proxy"),
        namespace: None,
        name: None,
    };
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
        match crate::request(client, http::Method::POST, &path, None).await {
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
        name: None,
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
