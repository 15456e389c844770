//! A fleet: findings carry the cluster their logs came from (`kir hunt --cluster`), and one
//! incident follows an identity or an image from one cluster into another.

mod common;

use std::io::Read;
use std::path::Path;

use common::{example, hunt_jsonl, kir, stdout_of};
use serde_json::Value;

/// The recorded incident's request that deployed the miner (ops-console, `local/xmrig:6.21.0`).
const MINER_DEPLOYMENT: &str = "977b5e6e-64d5-4da6-92fb-e76aa2b3c416";

fn recorded_line(audit_id: &str, stage: &str) -> Value {
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(example()).unwrap()).read_to_string(&mut text).unwrap();
    text.lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|v| v["auditID"] == audit_id && v["stage"] == stage)
        .expect("the recorded request")
}

/// The same miner deployed in a second cluster an hour later: once by the same service account
/// (the identity links), once by a CI runner (only the image links).
fn second_cluster_log(dir: &Path) -> std::path::PathBuf {
    let template = recorded_line(MINER_DEPLOYMENT, "ResponseComplete");
    let mut lines = Vec::new();
    for (n, user, namespace) in
        [(1, "system:serviceaccount:tools:ops-console", "batch"), (2, "system:serviceaccount:ci:runner", "ci")]
    {
        let mut e = template.clone();
        e["auditID"] = format!("00000000-0000-4000-9000-00000000000{n}").into();
        e["user"]["username"] = user.into();
        e["objectRef"]["namespace"] = namespace.into();
        e["requestURI"] = format!("/apis/apps/v1/namespaces/{namespace}/deployments").into();
        e["requestReceivedTimestamp"] = format!("2026-11-28T00:5{n}:00.000000Z").into();
        e["stageTimestamp"] = format!("2026-11-28T00:5{n}:00.100000Z").into();
        lines.push(e.to_string());
    }
    let path = dir.join("prod-b.audit.jsonl");
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    path
}

#[test]
fn findings_name_their_cluster_only_when_told() {
    let labelled = hunt_jsonl(&["--cluster", "prod-eu-1"], &example());
    assert!(!labelled.is_empty());
    assert!(labelled.iter().all(|f| f["cluster"] == "prod-eu-1"), "every finding carries the cluster");
    let miner = labelled.iter().find(|f| f["audit_ids"][0] == MINER_DEPLOYMENT).unwrap();
    assert_eq!(miner["images"], serde_json::json!(["docker.io/local/xmrig:6.21.0"]));
    let plain = hunt_jsonl(&[], &example());
    assert_eq!(plain.len(), labelled.len(), "the label changes no verdict");
    assert!(plain.iter().all(|f| f.get("cluster").is_none()), "no cluster key when the input names none");
}

#[test]
fn a_cluster_name_that_is_not_one_word_is_refused() {
    kir()
        .args(["hunt", "--cluster", "prod eu"])
        .arg(example())
        .assert()
        .code(2)
        .stderr(predicates::str::contains("not a cluster name"));
}

#[test]
fn one_incident_follows_an_identity_and_an_image_across_clusters() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite:{}", dir.path().join("kir.db").display());
    let env = |c: &mut assert_cmd::Command| {
        c.env("HOME", dir.path()).env("KIR_NOW", "2026-11-28T02:00:00Z");
    };
    let mut first = kir();
    env(&mut first);
    first
        .args(["hunt", "-q", "--no-notify", "--cluster", "prod-a", "--store", &store])
        .arg(example())
        .assert()
        .success();
    let before: Value =
        serde_json::from_str(&stdout_of(kir().args(["incident", "list", "--format", "json", "--store", &store])))
            .unwrap();
    let second = second_cluster_log(dir.path());
    let mut again = kir();
    env(&mut again);
    again.args(["hunt", "-q", "--no-notify", "--cluster", "prod-b", "--store", &store]).arg(&second).assert().success();
    let after: Value =
        serde_json::from_str(&stdout_of(kir().args(["incident", "list", "--format", "json", "--store", &store])))
            .unwrap();
    assert_eq!(
        before.as_array().unwrap().len(),
        after.as_array().unwrap().len(),
        "prod-b's findings join prod-a's incidents: {after:#}"
    );
    let mining = after
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["title"].as_str().unwrap().contains("ops-console"))
        .expect("the console's incident");
    assert_eq!(mining["clusters"], serde_json::json!(["prod-a", "prod-b"]));

    let shown: Value = serde_json::from_str(&stdout_of(kir().args([
        "incident",
        "show",
        &mining["id"].to_string(),
        "--format",
        "json",
        "--store",
        &store,
    ])))
    .unwrap();
    let text = shown.to_string();
    assert!(text.contains("system:serviceaccount:ci:runner"), "the runner's finding joined by the image");
    assert!(text.contains("linked by image docker.io/local/xmrig:6.21.0"), "the timeline says why");

    let only_b: Value = serde_json::from_str(&stdout_of(kir().args([
        "incident",
        "list",
        "--format",
        "json",
        "--cluster",
        "prod-b",
        "--store",
        &store,
    ])))
    .unwrap();
    let ids: Vec<&Value> = only_b.as_array().unwrap().iter().map(|i| &i["id"]).collect();
    assert_eq!(ids, [&mining["id"]], "only the incident with a prod-b finding");
}
