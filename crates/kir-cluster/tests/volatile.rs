//! Volatile data and snapshots through the mock API server: the ephemeral debug container, the
//! kubelet checkpoint (refused as the recorded containerd 1.6 refuses it), VolumeSnapshots.

mod common;

use std::time::Duration;

use common::*;
use http::Method;
use kir_cluster::collect::Report;
use serde_json::{Value, json};

const POD: &str = "/api/v1/namespaces/checkout/pods/checkout-api-64db89f569-blm5l";

fn bundle(dir: &std::path::Path) -> kir_evidence::BundleWriter {
    kir_evidence::BundleWriter::create(dir, "b", "pod checkout/x", kir_evidence::local_identity()).unwrap()
}

#[tokio::test]
async fn the_debug_container_is_added_awaited_and_its_output_kept() {
    let running = recorded_json(
        "GET_api_v1_namespaces_checkout_pods_checkout-api-64db89f569-blm5l.with-ephemeral-container.json",
    );
    let mut ours = running.clone();
    ours["status"]["ephemeralContainerStatuses"][0]["name"] = json!("kir-debug-1");
    let mut done = ours.clone();
    done["status"]["ephemeralContainerStatuses"][0]["state"] = json!({"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": "2026-11-27T23:59:25Z", "finishedAt": "2026-11-27T23:59:27Z"}});
    let output = "## processes (pid ppid uid exe cmdline)\n1 0 0 /bin/xmrig xmrig -o stratum+tcp://pool:3333\n## end\n";
    let (client, server) = mock(vec![
        allowed(json!({"verb": "patch", "resource": "pods", "subresource": "ephemeralcontainers", "namespace": "checkout", "name": "checkout-api-64db89f569-blm5l"})),
        allowed(json!({"verb": "get", "resource": "pods", "namespace": "checkout", "name": "checkout-api-64db89f569-blm5l"})),
        allowed(json!({"verb": "get", "resource": "pods", "subresource": "log", "namespace": "checkout", "name": "checkout-api-64db89f569-blm5l"})),
        call(Method::PATCH, &format!("{POD}/ephemeralcontainers"), 200, serde_json::to_vec(&running).unwrap()).body(
            json!({"spec": {"ephemeralContainers": [kir_cluster::volatile::debug_container("kir-debug-1", "busybox:1.36", "app", false)]}}),
            STRATEGIC,
        ),
        get(POD, serde_json::to_vec(&ours).unwrap()),
        get(POD, serde_json::to_vec(&done).unwrap()),
        get(&format!("{POD}/log?container=kir-debug-1"), output.as_bytes().to_vec()).text(),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let mut w = bundle(dir.path());
    let mut report = Report::default();
    kir_cluster::volatile::run_debug_container(
        &client,
        "checkout",
        "checkout-api-64db89f569-blm5l",
        "app",
        "busybox:1.36",
        "kir-debug-1",
        false,
        Duration::from_secs(30),
        Duration::from_millis(1),
        &mut w,
        &mut report,
    )
    .await
    .unwrap();
    server.await.unwrap();
    assert_eq!(report.files, ["volatile/debug-container.log"]);
    let sealed = w.finish(None).unwrap();
    assert_eq!(std::fs::read_to_string(sealed.join("volatile/debug-container.log")).unwrap(), output);

    // Without the permission to read its log: said, skipped, nothing patched.
    let (client, server) = mock(vec![
        allowed(
            json!({"verb": "patch", "resource": "pods", "subresource": "ephemeralcontainers", "namespace": "checkout", "name": "checkout-api-64db89f569-blm5l"}),
        ),
        allowed(
            json!({"verb": "get", "resource": "pods", "namespace": "checkout", "name": "checkout-api-64db89f569-blm5l"}),
        ),
        review(
            json!({"verb": "get", "resource": "pods", "subresource": "log", "namespace": "checkout", "name": "checkout-api-64db89f569-blm5l"}),
            false,
        ),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let mut w = bundle(dir.path());
    let mut report = Report::default();
    kir_cluster::volatile::run_debug_container(
        &client,
        "checkout",
        "checkout-api-64db89f569-blm5l",
        "app",
        "busybox:1.36",
        "kir-debug-2",
        false,
        Duration::from_secs(1),
        Duration::from_millis(1),
        &mut w,
        &mut report,
    )
    .await
    .unwrap();
    server.await.unwrap();
    assert!(
        report.skipped[0]
            .contains("missing permissions, so no container was added: get pods/log \"checkout-api-64db89f569-blm5l\" in namespace checkout"),
        "{:?}",
        report.skipped
    );
}

#[tokio::test]
async fn a_checkpoint_the_runtime_cannot_make_is_reported_with_the_kubelets_words() {
    let (client, server) = mock(vec![
        allowed(json!({"verb": "create", "resource": "nodes", "subresource": "proxy"})),
        call(
            Method::POST,
            "/api/v1/nodes/k8s-real-node/proxy/checkpoint/checkout/checkout-api-64db89f569-blm5l/app",
            500,
            recorded("POST_api_v1_nodes_k8s-real-node_proxy_checkpoint_checkout_checkout-api-64db89f569-blm5l_app.txt"),
        )
        .text(),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let mut w = bundle(dir.path());
    let mut report = Report::default();
    kir_cluster::volatile::checkpoint(
        &client,
        "k8s-real-node",
        "checkout",
        "checkout-api-64db89f569-blm5l",
        &["app".to_string()],
        &mut w,
        &mut report,
    )
    .await
    .unwrap();
    server.await.unwrap();
    assert!(report.skipped[0].contains("CheckpointContainer not implemented"), "{:?}", report.skipped);
    let sealed = w.finish(None).unwrap();
    let kept: Value =
        serde_json::from_slice(&std::fs::read(sealed.join("volatile/checkpoints.json")).unwrap()).unwrap();
    assert!(kept[0]["error"].as_str().unwrap().starts_with("500"));
}

#[tokio::test]
async fn volume_snapshots_are_created_per_claim_or_said_missing() {
    let mut pod = recorded_json("GET_api_v1_namespaces_checkout_pods_checkout-api-64db89f569-blm5l.json");
    pod["spec"]["volumes"] = json!([{"name": "data", "persistentVolumeClaim": {"claimName": "data-0"}}]);
    let snapshot = json!({"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshot",
        "metadata": {"name": "kir-data-0-20261128t000000", "namespace": "checkout", "labels": {"app.kubernetes.io/managed-by": "kir"}},
        "spec": {"source": {"persistentVolumeClaimName": "data-0"}, "volumeSnapshotClassName": "csi-snap"}});
    let attributes = json!({"verb": "create", "group": "snapshot.storage.k8s.io", "resource": "volumesnapshots", "namespace": "checkout"});
    let path = "/apis/snapshot.storage.k8s.io/v1/namespaces/checkout/volumesnapshots";
    let (client, server) = mock(vec![
        allowed(attributes.clone()),
        call(Method::POST, path, 201, serde_json::to_vec(&snapshot).unwrap()).body(snapshot.clone(), JSON),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let mut w = bundle(dir.path());
    let mut report = Report::default();
    kir_cluster::volatile::snapshot_volumes(
        &client,
        "checkout",
        &pod,
        Some("csi-snap"),
        "20261128T000000",
        &mut w,
        &mut report,
    )
    .await
    .unwrap();
    server.await.unwrap();
    assert_eq!(report.files, ["snapshots/volumesnapshots.json"]);

    // A cluster without the CSI snapshot CRDs answers 404: said plainly.
    let (client, server) = mock(vec![
        allowed(attributes),
        call(Method::POST, path, 404, not_found("the server could not find the requested resource")),
    ]);
    let mut report = Report::default();
    let mut w = bundle(tempfile::tempdir().unwrap().path());
    kir_cluster::volatile::snapshot_volumes(&client, "checkout", &pod, None, "20261128T000000", &mut w, &mut report)
        .await
        .unwrap();
    server.await.unwrap();
    assert!(report.skipped[0].contains("no VolumeSnapshot API"), "{:?}", report.skipped);
}

/// The debug script run for real by this machine's `sh` over this machine's `/proc`: a process
/// whose arguments hold a secret shows its program only, unless full command lines are asked.
#[test]
fn the_debug_script_redacts_command_line_arguments_unless_asked() {
    let secret = "kir-test-secret-5f3a9";
    let mut holder = std::process::Command::new("sh").args(["-c", "sleep 60", secret]).spawn().unwrap();
    let run = |full: bool| {
        let out =
            std::process::Command::new("sh").args(["-c", &kir_cluster::volatile::debug_script(full)]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let redacted = run(false);
    let full = run(true);
    holder.kill().ok();
    holder.wait().ok();
    let line = |out: &str| {
        out.lines().find(|l| l.starts_with(&format!("{} ", holder.id()))).map(str::to_string).unwrap_or_default()
    };
    assert!(redacted.contains("arguments redacted"), "{redacted}");
    assert!(!redacted.contains(secret), "the secret argument leaked: {}", line(&redacted));
    assert!(line(&redacted).contains("sh [4 args, sha256:"), "{}", line(&redacted));
    assert!(line(&full).contains(secret), "{}", line(&full));
    for out in [&redacted, &full] {
        assert!(out.contains("## connections"), "{out}");
        assert!(out.contains("## files changed in the last 24 hours"), "{out}");
        assert!(out.trim_end().ends_with("## end"), "{out}");
    }
}
