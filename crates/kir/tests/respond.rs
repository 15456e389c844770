//! `kir contain`, `kir collect` and `kir respond` driven through the binary against a fake API
//! server on a real HTTP listener (tests/fake_cluster): what each command leaves in the cluster,
//! what a second run and an undo change, what a missing permission stops.

mod common;
mod fake_cluster;

use common::kir;
use fake_cluster::FakeCluster;
use serde_json::{Value, json};

const P1: &str = "checkout/checkout-api-64db89f569-blm5l";
const P1_PATH: &str = "/api/v1/namespaces/checkout/pods/checkout-api-64db89f569-blm5l";

struct Env {
    dir: tempfile::TempDir,
    cluster: FakeCluster,
    kubeconfig: std::path::PathBuf,
    store: String,
}

fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let cluster = FakeCluster::start();
    let kubeconfig = cluster.kubeconfig(dir.path());
    let store = format!("sqlite:{}", dir.path().join("kir.db").display());
    Env { dir, cluster, kubeconfig, store }
}

impl Env {
    fn kir(&self, args: &[&str]) -> assert_cmd::Command {
        let mut c = kir();
        c.args(args).arg("--store").arg(&self.store).env("KUBECONFIG", &self.kubeconfig).env("KIR_USER", "dana");
        c
    }

    /// The same cluster through another store (another responder's records).
    fn kir_with_store(&self, store: &str, args: &[&str]) -> assert_cmd::Command {
        let mut c = kir();
        c.args(args).arg("--store").arg(store).env("KUBECONFIG", &self.kubeconfig).env("KIR_USER", "dana");
        c
    }

    fn json(&self, args: &[&str]) -> Value {
        let out = self.kir(args).arg("--format").arg("json").output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

fn policies(snapshot: &std::collections::BTreeMap<String, Value>) -> Vec<(&String, &Value)> {
    snapshot.iter().filter(|(k, _)| k.contains("/networkpolicies/")).collect()
}

#[test]
fn isolate_makes_one_policy_for_that_pod_only_is_idempotent_and_undo_restores_the_cluster() {
    let e = env();
    let original = e.cluster.snapshot();

    // Dry run: validated by the server, nothing kept, nothing to undo.
    let dry = e.json(&["contain", "isolate", "pod", P1, "--dry-run"]);
    assert_eq!(dry["dry_run"], true);
    assert!(e.cluster.writes().iter().all(|w| w.ends_with("dryRun=All")), "{:?}", e.cluster.writes());
    assert_eq!(e.cluster.snapshot(), original);

    let done = e.json(&["contain", "isolate", "pod", P1, "--allow-cidr", "10.10.0.0/24"]);
    for key in ["action_id", "action", "target", "dry_run", "changes"] {
        assert!(done.get(key).is_some(), "{key} in {done}");
    }
    let now = e.cluster.snapshot();
    let created = policies(&now);
    assert_eq!(created.len(), 1, "exactly one NetworkPolicy");
    let spec = &created[0].1["spec"];
    assert_eq!(spec["policyTypes"], json!(["Ingress", "Egress"]));
    let selector = spec["podSelector"]["matchLabels"].as_object().unwrap();
    // The selector matches that pod and no other pod of the namespace.
    let selected: Vec<&String> = now
        .iter()
        .filter(|(k, _)| k.starts_with("/api/v1/namespaces/checkout/pods/"))
        .filter(|(_, p)| selector.iter().all(|(k, v)| p["metadata"]["labels"].get(k) == Some(v)))
        .map(|(k, _)| k)
        .collect();
    assert_eq!(selected, [P1_PATH]);
    assert_eq!(spec["ingress"], json!([{"from": [{"ipBlock": {"cidr": "10.10.0.0/24"}}]}]));

    // Again: nothing more is written.
    let writes = e.cluster.writes().len();
    let again = e.json(&["contain", "isolate", "pod", P1]);
    assert_eq!(again["changes"][0]["op"], "none");
    assert_eq!(e.cluster.writes().len(), writes);

    let id = done["action_id"].as_str().unwrap();
    e.kir(&["contain", "undo", id]).assert().success();
    assert_eq!(e.cluster.snapshot(), original, "undo restores the cluster as it was");
    e.kir(&["contain", "undo", id]).assert().success().stdout(predicates::str::contains("already undone"));
}

#[test]
fn cordon_quarantine_and_revoke_are_idempotent_and_undone() {
    let e = env();
    let original = e.cluster.snapshot();
    let node = "/api/v1/nodes/k8s-real-node";
    for action in ["cordon", "quarantine"] {
        let done = e.json(&["contain", action, "node", "k8s-real-node"]);
        let n = e.cluster.object(node).unwrap();
        assert_eq!(n["spec"]["unschedulable"], true);
        if action == "quarantine" {
            assert_eq!(n["spec"]["taints"][0]["key"], "kir.dev/quarantine");
            assert_eq!(n["spec"]["taints"][0]["effect"], "NoSchedule");
        }
        let writes = e.cluster.writes().len();
        assert_eq!(e.json(&["contain", action, "node", "k8s-real-node"])["changes"][0]["op"], "none");
        assert_eq!(e.cluster.writes().len(), writes, "{action} twice changes nothing more");
        e.kir(&["contain", "undo", done["action_id"].as_str().unwrap()]).assert().success();
        assert_eq!(e.cluster.snapshot(), original, "undo of {action}");
    }

    // Revoke a user: every binding naming only alice goes; undo brings the same grants back.
    let grants = |c: &FakeCluster| -> Vec<(String, Value, Value)> {
        c.snapshot()
            .into_iter()
            .filter(|(k, _)| k.contains("rolebindings/"))
            .map(|(k, v)| (k, v["roleRef"].clone(), v["subjects"].clone()))
            .collect()
    };
    let before = grants(&e.cluster);
    // A dry run leaves every grant in place (the deletes carry their options in the body).
    let dry = e.json(&["contain", "revoke", "user", "alice", "--dry-run"]);
    assert_eq!(dry["changes"].as_array().unwrap().len(), 3, "{dry}");
    assert_eq!(grants(&e.cluster), before);
    let done = e.json(&["contain", "revoke", "user", "alice"]);
    let after = grants(&e.cluster);
    assert_eq!(before.len() - after.len(), 3);
    assert!(!serde_json::to_string(&after).unwrap().contains("\"alice\""));
    assert_eq!(e.json(&["contain", "revoke", "user", "alice"])["changes"][0]["op"], "none");
    e.kir(&["contain", "undo", done["action_id"].as_str().unwrap()]).assert().success();
    assert_eq!(grants(&e.cluster), before);

    let list = e.kir(&["contain", "list", "--format", "json"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&list.stdout).lines().count(), 7);
}

#[test]
fn a_missing_permission_is_named_and_nothing_is_half_done() {
    let e = env();
    e.cluster.deny("create networkpolicies");
    let original = e.cluster.snapshot();
    e.kir(&["contain", "isolate", "pod", P1, "--incident", "1"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("create networkpolicies.networking.k8s.io in namespace checkout"));
    assert_eq!(e.cluster.writes(), Vec::<String>::new(), "no write at all");
    assert_eq!(e.cluster.snapshot(), original);
    assert_eq!(String::from_utf8_lossy(&e.kir(&["contain", "list", "--format", "json"]).output().unwrap().stdout), "");
}

#[test]
fn a_write_refused_midway_is_taken_back_recorded_as_failed_and_not_undone() {
    let e = env();
    let original = e.cluster.snapshot();
    e.cluster.fail("POST", "/apis/networking.k8s.io/v1/namespaces/checkout/networkpolicies", 500);
    let out = e.kir(&["contain", "isolate", "pod", P1]).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(4),
        "an action that failed while writing: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The label was put on, then taken back: the cluster is as it was.
    assert!(e.cluster.writes().iter().any(|w| w.starts_with("PATCH ")), "{:?}", e.cluster.writes());
    assert_eq!(e.cluster.snapshot(), original);
    let list = e.kir(&["contain", "list"]).output().unwrap();
    assert!(String::from_utf8_lossy(&list.stdout).contains("failed (taken back)"));
    let record: Value =
        serde_json::from_slice(&e.kir(&["contain", "list", "--format", "json"]).output().unwrap().stdout).unwrap();
    assert_eq!(record["state"], "failed");
    assert_eq!(record["changes"], json!([]), "changes stays a list for scripts");
    assert!(record["error"].as_str().unwrap().contains("500"), "{record}");
    let id = record["action_id"].as_str().unwrap();
    e.kir(&["contain", "undo", id]).assert().failure().stderr(predicates::str::contains("nothing to undo"));
    assert_eq!(e.cluster.snapshot(), original);
}

#[test]
fn actions_that_end_pods_wait_for_evidence_unless_forced() {
    let e = env();
    e.kir(&["contain", "delete", "pod", P1])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("evidence has not been collected"))
        .stderr(predicates::str::contains(format!("kir collect pod {P1} --out evidence/")));
    e.kir(&["contain", "scale-down", "deployment", "checkout/checkout-api"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("checkout/checkout-api-64db89f569-gg6tn"));
    assert!(e.cluster.writes().is_empty());

    let out = e.dir.path().join("evidence");
    e.kir(&["collect", "pod", P1, "--out", out.to_str().unwrap()]).assert().success();
    // The same name, re-created (another UID): its evidence is not the collected pod's.
    let collected_pod = e.cluster.object(P1_PATH).unwrap();
    let mut recreated = collected_pod.clone();
    recreated["metadata"]["uid"] = json!("77777777-0000-4000-8000-000000000000");
    e.cluster.put(P1_PATH, recreated);
    e.kir(&["contain", "delete", "pod", P1])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("evidence has not been collected"));
    assert!(e.cluster.writes().is_empty());
    e.cluster.put(P1_PATH, collected_pod);
    let done = e.json(&["contain", "delete", "pod", P1]);
    assert_eq!(done["changes"][0]["op"], "delete");
    assert!(e.cluster.object(P1_PATH).is_none());
    e.kir(&["contain", "undo", done["action_id"].as_str().unwrap()])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("cannot be brought back"));

    // Forced: the responder's call, recorded like any other.
    let scaled = e.json(&["contain", "scale-down", "deployment", "checkout/checkout-api", "--force"]);
    assert_eq!(scaled["changes"][0]["after"], json!({"replicas": 0}));
    e.kir(&["contain", "undo", scaled["action_id"].as_str().unwrap()]).assert().success();
    let d = e.cluster.object("/apis/apps/v1/namespaces/checkout/deployments/checkout-api").unwrap();
    assert_eq!(d["spec"]["replicas"], 2);
}

#[test]
fn respond_collects_before_containing_and_waits_for_approvals() {
    let e = env();
    e.kir(&["incident", "open", "--title", "miner in checkout", "--severity", "critical", "--type", "cryptomining"])
        .assert()
        .success();
    let out = e.dir.path().join("evidence");
    let first = e.kir(&["respond", "1", "--pod", P1, "--out", out.to_str().unwrap()]).output().unwrap();
    let text = String::from_utf8_lossy(&first.stdout);
    assert_eq!(first.status.code(), Some(3), "waits: {text}\n{}", String::from_utf8_lossy(&first.stderr));
    assert!(text.contains("step 3 isolate-pod") && text.contains("waiting for approval"), "{text}");

    // Evidence first: every write came after the last read of the collection, and the only
    // writes so far are the investigation labels (steps 1-2); no NetworkPolicy before approval.
    let requests = e.cluster.requests();
    let first_write =
        requests.iter().position(|r| r.method != "GET" && !r.path.contains("selfsubjectaccessreviews")).unwrap();
    let last_log_read = requests.iter().rposition(|r| r.path.contains("/log?")).unwrap();
    assert!(last_log_read < first_write);
    assert!(e.cluster.writes().iter().all(|w| w.starts_with("PATCH ")), "{:?}", e.cluster.writes());
    assert!(policies(&e.cluster.snapshot()).is_empty());
    let bundle = std::fs::read_dir(&out).unwrap().next().unwrap().unwrap().path();
    e.kir(&["evidence", "verify", bundle.to_str().unwrap()]).assert().success();

    // Running again without an approval: still waiting, nothing new.
    let writes = e.cluster.writes().len();
    e.kir(&["respond", "1", "--pod", P1, "--out", out.to_str().unwrap()]).assert().code(3);
    assert_eq!(e.cluster.writes().len(), writes);

    e.kir(&["incident", "approve", "1"]).assert().success().stdout(predicates::str::contains("approved step 3"));
    let second =
        e.kir(&["respond", "1", "--pod", P1, "--out", out.to_str().unwrap(), "--format", "json"]).output().unwrap();
    assert_eq!(second.status.code(), Some(3));
    let second: Value = serde_json::from_slice(&second.stdout).unwrap();
    assert_eq!(second["state"], "waiting");
    let status: Vec<(&str, &str)> = second["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["action"].as_str().unwrap(), s["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        status,
        [
            ("collect-evidence", "done earlier"),
            ("label", "done earlier"),
            ("isolate-pod", "done"),
            ("revoke-serviceaccount", "waiting for approval")
        ]
    );
    assert_eq!(policies(&e.cluster.snapshot()).len(), 1);

    // The timeline tells the story: evidence, actions, approvals, each with who.
    let show = String::from_utf8_lossy(&e.kir(&["incident", "show", "1"]).output().unwrap().stdout).to_string();
    for needle in
        ["evidence: collected pod", "approved step 3", "isolate pod/checkout", "playbook contain-workload step 1"]
    {
        assert!(show.contains(needle), "{needle} in\n{show}");
    }
}

fn files_of(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_of(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn collect_node_namespace_and_serviceaccount_give_bundles_that_verify_without_secret_values() {
    let e = env();
    // A Secret and a token Secret whose values must never reach a bundle.
    e.cluster.put(
        "/api/v1/namespaces/checkout/secrets/db",
        json!({"kind": "Secret", "apiVersion": "v1", "metadata": {"name": "db", "namespace": "checkout",
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{\"data\":{\"password\":\"c3VwZXJzZWNyZXQ=\"}}"}},
            "type": "Opaque", "data": {"password": "c3VwZXJzZWNyZXQ="}}),
    );
    e.cluster.put(
        "/api/v1/namespaces/checkout/secrets/checkout-api-token",
        json!({"kind": "Secret", "apiVersion": "v1", "metadata": {"name": "checkout-api-token", "namespace": "checkout",
            "annotations": {"kubernetes.io/service-account.name": "checkout-api"}},
            "type": "kubernetes.io/service-account-token", "data": {"token": "ZXlKaGJHY2lPaUpTVXpJMU5pSjkudG9rZW4="}}),
    );
    let out = e.dir.path().join("evidence");
    let out_s = out.to_str().unwrap();
    for args in [
        vec!["collect", "node", "k8s-real-node", "--out", out_s],
        vec!["collect", "namespace", "checkout", "--out", out_s],
        vec!["collect", "serviceaccount", "checkout/checkout-api", "--out", out_s],
    ] {
        let o = e.kir(&args).output().unwrap();
        assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
        let bundle = std::path::PathBuf::from(String::from_utf8_lossy(&o.stdout).trim());
        e.kir(&["evidence", "verify", bundle.to_str().unwrap()]).assert().success();
        for f in files_of(&bundle) {
            let text = String::from_utf8_lossy(&std::fs::read(&f).unwrap()).to_string();
            assert!(!text.contains("c3VwZXJzZWNyZXQ="), "a Secret value in {}", f.display());
            assert!(!text.contains("ZXlKaGJHY2lPaUpTVXpJMU5pSjkudG9rZW4="), "a token in {}", f.display());
        }
        let names: Vec<String> =
            files_of(&bundle).iter().map(|f| f.strip_prefix(&bundle).unwrap().to_string_lossy().to_string()).collect();
        let want: &[&str] = match args[1] {
            "node" => &["node.json", "pods.json", "volumeattachments.json", "events.json"],
            "namespace" => &[
                "namespace.json",
                "objects/pods.json",
                "objects/deployments.json",
                "objects/secrets.json",
                "objects/rolebindings.json",
            ],
            _ => &[
                "serviceaccount.json",
                "rbac/rolebindings.json",
                "rbac/clusterrolebindings.json",
                "objects/secrets.json",
                "pods-running-as.json",
            ],
        };
        for w in want {
            assert!(names.iter().any(|n| n == w), "{w} in {names:?}");
        }
    }
    // Collection only reads.
    assert!(e.cluster.writes().is_empty(), "{:?}", e.cluster.writes());
}

#[test]
fn collect_takes_audit_excerpts_several_contexts_and_archives() {
    let e = env();
    let second = FakeCluster::start();
    let kubeconfig = e.dir.path().join("two-clusters");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: eu\n  cluster: {{server: \"{}\"}}\n- name: us\n  cluster: {{server: \"{}\"}}\nusers:\n- name: r\n  user: {{token: t}}\ncontexts:\n- name: prod-eu\n  context: {{cluster: eu, user: r}}\n- name: prod-us\n  context: {{cluster: us, user: r}}\ncurrent-context: prod-eu\n",
            e.cluster.url(),
            second.url()
        ),
    )
    .unwrap();
    let audit = e.dir.path().join("audit.log");
    let event = |id: &str, user: &str, uri: &str, object: Value, body: Option<Value>| {
        let mut v = json!({"kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "RequestResponse", "auditID": id,
            "stage": "ResponseComplete", "requestURI": uri, "verb": "create", "user": {"username": user},
            "sourceIPs": ["203.0.113.7"], "objectRef": object, "responseStatus": {"code": 201},
            "requestReceivedTimestamp": "2026-11-27T23:00:00.000000Z", "stageTimestamp": "2026-11-27T23:00:00.100000Z"});
        if let Some(b) = body {
            v["requestObject"] = b;
        }
        v.to_string()
    };
    let lines = [
        event(
            "a1",
            "mallory",
            "/api/v1/namespaces/checkout/pods/checkout-api-64db89f569-blm5l/exec?command=sh",
            json!({"resource": "pods", "subresource": "exec", "namespace": "checkout", "name": "checkout-api-64db89f569-blm5l", "apiVersion": "v1"}),
            None,
        ),
        event(
            "a2",
            "system:serviceaccount:checkout:checkout-api",
            "/api/v1/namespaces/checkout/secrets",
            json!({"resource": "secrets", "namespace": "checkout", "apiVersion": "v1"}),
            Some(json!({"kind": "Secret", "data": {"password": "aHVudGVyMg=="}})),
        ),
        event(
            "a3",
            "alice",
            "/api/v1/namespaces/other/pods",
            json!({"resource": "pods", "namespace": "other", "apiVersion": "v1"}),
            None,
        ),
        "this line is not JSON".to_string(),
    ];
    std::fs::write(&audit, lines.join("\n") + "\n").unwrap();
    let out = e.dir.path().join("evidence");
    let o = kir()
        .args(["collect", "pod", P1, "--out", out.to_str().unwrap(), "--audit", audit.to_str().unwrap()])
        .args(["--context", "prod-eu", "--context", "prod-us", "--archive", "--store", &e.store])
        .env("KUBECONFIG", &kubeconfig)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let archive = std::path::PathBuf::from(String::from_utf8_lossy(&o.stdout).trim());
    assert!(archive.to_string_lossy().ends_with(".tar.zst"), "{}", archive.display());
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 1, "only the archive is left");
    e.kir(&["evidence", "verify", archive.to_str().unwrap()]).assert().success();

    // Look inside: one folder per cluster, both clusters in the manifest, the excerpt.
    let (_guard, dir) = unpack(&archive);
    let manifest: Value = serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["clusters"].as_array().unwrap().len(), 2);
    assert!(dir.join("clusters/prod-eu/pod.json").is_file() && dir.join("clusters/prod-us/pod.json").is_file());
    let excerpt = std::fs::read_to_string(dir.join("audit/excerpt.jsonl")).unwrap();
    let ids: Vec<String> = excerpt
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["auditID"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, ["a1"], "only the pod's own requests (its service account is not read across clusters)");
    assert!(!excerpt.contains("aHVudGVyMg=="));

    // One cluster: the pod's service account's requests are about it too; bodies never kept.
    let o = e
        .kir(&["collect", "pod", P1, "--out", out.to_str().unwrap(), "--audit", audit.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let bundle = std::path::PathBuf::from(String::from_utf8_lossy(&o.stdout).trim());
    let excerpt = std::fs::read_to_string(bundle.join("audit/excerpt.jsonl")).unwrap();
    assert_eq!(excerpt.lines().count(), 2);
    assert!(excerpt.contains("request by the pod's service account"));
    assert!(!excerpt.contains("aHVudGVyMg=="));

    // A command that changes a cluster refuses several contexts.
    kir()
        .args([
            "contain",
            "cordon",
            "node",
            "k8s-real-node",
            "--context",
            "prod-eu",
            "--context",
            "prod-us",
            "--store",
            &e.store,
        ])
        .env("KUBECONFIG", &kubeconfig)
        .assert()
        .code(2)
        .stderr(predicates::str::contains("acts on one cluster"));
}

fn unpack(archive: &std::path::Path) -> (tempfile::TempDir, std::path::PathBuf) {
    let temp = tempfile::tempdir().unwrap();
    let decoder = zstd::Decoder::new(std::fs::File::open(archive).unwrap()).unwrap();
    tar::Archive::new(decoder).unpack(temp.path()).unwrap();
    let dir = std::fs::read_dir(temp.path()).unwrap().next().unwrap().unwrap().path();
    (temp, dir)
}

#[test]
fn top_flags_the_shape_of_cryptomining() {
    let e = env();
    // metrics-server's answer for the recorded cluster, with P1 made a miner pinned at its
    // limit (the recorded pod used 0.8m of its 100m).
    e.cluster.metrics_server(|list| {
        for item in list["items"].as_array_mut().unwrap() {
            if item["metadata"]["name"] == "checkout-api-64db89f569-blm5l" {
                item["containers"][0]["usage"]["cpu"] = json!("99000000n");
            }
        }
    });
    let alerts = e.dir.path().join("falco.json");
    std::fs::write(
        &alerts,
        json!({"output": "Outbound connection to 198.51.100.9:3333", "priority": "Warning", "rule": "Unexpected outbound connection",
            "time": "2026-11-27T23:58:00.000000000Z", "output_fields": {"k8s.ns.name": "checkout", "k8s.pod.name": "checkout-api-64db89f569-gg6tn", "fd.rport": 3333}})
        .to_string()
            + "\n",
    )
    .unwrap();
    let out =
        e.kir(&["top", "-n", "checkout", "--alerts", alerts.to_str().unwrap(), "--format", "json"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rows: Vec<Value> =
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows[0]["name"], "checkout-api-64db89f569-blm5l");
    assert_eq!(rows[0]["source"], "metrics-server");
    assert!(rows[0]["flags"][0].as_str().unwrap().contains("pinned at its limit (99m of 100m)"), "{}", rows[0]);
    let other = rows.iter().find(|r| r["name"] == "checkout-api-64db89f569-gg6tn").unwrap();
    assert!(other["flags"][0].as_str().unwrap().contains("pool port 3333"), "{other}");
    let quiet = rows.iter().find(|r| r["name"] == "batch-worker").unwrap();
    assert_eq!(quiet["flags"], json!([]));
    e.kir(&["top", "-n", "checkout", "--fail-on-mining"])
        .assert()
        .code(1)
        .stdout(predicates::str::contains("cryptomining?"));
}

#[test]
fn node_disk_snapshots_run_the_configured_command_per_volume_and_are_recorded() {
    let e = env();
    let mut node = e.cluster.object("/api/v1/nodes/k8s-real-node").unwrap();
    node["spec"]["providerID"] = json!("aws:///eu-west-1a/i-0123456789abcdef0");
    node["status"]["volumesAttached"] = json!([
        {"name": "kubernetes.io/csi/ebs.csi.aws.com^vol-0aaa", "devicePath": ""},
        {"name": "kubernetes.io/csi/ebs.csi.aws.com^vol-0bbb", "devicePath": ""},
        // Written by whoever controls the node: never run as shell text.
        {"name": "kubernetes.io/csi/ebs.csi.aws.com^vol-0ccc$(touch pwned)`touch pwned2`", "devicePath": ""}]);
    e.cluster.put("/api/v1/nodes/k8s-real-node", node);
    let out = e.dir.path().join("evidence");
    let o = e
        .kir(&[
            "collect",
            "node",
            "k8s-real-node",
            "--out",
            out.to_str().unwrap(),
            "--snapshot-command",
            // No shell runs it: `$(whoami)` and `;` stay words.
            "echo \"snapshot of {volume}\" on {instance}; \"$(whoami)\"",
        ])
        .current_dir(e.dir.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let bundle = std::path::PathBuf::from(String::from_utf8_lossy(&o.stdout).trim());
    let runs: Value =
        serde_json::from_slice(&std::fs::read(bundle.join("snapshots/node-disks.json")).unwrap()).unwrap();
    let runs = runs.as_array().unwrap();
    let said: Vec<&str> = runs[..2].iter().map(|r| r["stdout"].as_str().unwrap().trim()).collect();
    assert_eq!(
        said,
        [
            "snapshot of vol-0aaa on i-0123456789abcdef0; $(whoami)",
            "snapshot of vol-0bbb on i-0123456789abcdef0; $(whoami)"
        ]
    );
    assert_eq!(runs[0]["command"], json!(["echo", "snapshot of vol-0aaa", "on", "i-0123456789abcdef0;", "$(whoami)"]));
    assert!(runs[..2].iter().all(|r| r["exit_code"] == 0));
    // The hostile volume name is refused, and nothing in it ran.
    assert!(runs[2]["error"].as_str().unwrap().contains("KIR_VOLUME is not a plain ID"), "{}", runs[2]);
    assert!(!e.dir.path().join("pwned").exists() && !e.dir.path().join("pwned2").exists());
    e.kir(&["evidence", "verify", bundle.to_str().unwrap()]).assert().success();
}

#[test]
fn sibling_pods_with_a_long_shared_prefix_get_a_policy_each_and_undo_refuses_another_cluster_behind_the_same_address() {
    let e = env();
    let template = e.cluster.object(P1_PATH).unwrap();
    let prefix = "payments-reconciliation-worker-with-a-long-name-7f9c4d8b5";
    let mut paths = Vec::new();
    for (i, suffix) in ["abcde", "fghij"].iter().enumerate() {
        let name = format!("{prefix}-{suffix}");
        let mut pod = template.clone();
        pod["metadata"]["name"] = json!(name);
        pod["metadata"]["uid"] = json!(format!("0000000{i}-1111-4222-8333-444455556666"));
        let path = format!("/api/v1/namespaces/checkout/pods/{name}");
        e.cluster.put(&path, pod);
        paths.push((name, path));
    }
    let mut ids = Vec::new();
    for (name, _) in &paths {
        let done = e.json(&["contain", "isolate", "pod", &format!("checkout/{name}")]);
        ids.push(done["action_id"].as_str().unwrap().to_string());
    }
    let now = e.cluster.snapshot();
    let made = policies(&now);
    assert_eq!(made.len(), 2, "one policy per pod: {:?}", made.iter().map(|(k, _)| k).collect::<Vec<_>>());
    for (_, policy) in &made {
        assert!(policy["metadata"]["name"].as_str().unwrap().len() <= 63);
        let selector = policy["spec"]["podSelector"]["matchLabels"].as_object().unwrap();
        let selected: Vec<&String> = now
            .iter()
            .filter(|(k, _)| k.starts_with("/api/v1/namespaces/checkout/pods/"))
            .filter(|(_, p)| selector.iter().all(|(k, v)| p["metadata"]["labels"].get(k) == Some(v)))
            .map(|(k, _)| k)
            .collect();
        assert_eq!(selected.len(), 1, "each policy selects exactly one pod: {selected:?}");
    }

    // Another cluster behind the same address (another kube-system UID): undo changes nothing.
    let kube_system = e.cluster.object("/api/v1/namespaces/kube-system").unwrap();
    let mut other = kube_system.clone();
    other["metadata"]["uid"] = json!("99999999-0000-4000-8000-000000000000");
    e.cluster.put("/api/v1/namespaces/kube-system", other);
    let writes = e.cluster.writes().len();
    let out = e.kir(&["contain", "undo", &ids[0]]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("this context reaches") && err.contains("99999999-0000"), "{err}");
    assert_eq!(e.cluster.writes().len(), writes);
    // Its identity cannot be read: not taken for the same cluster either.
    e.cluster.remove("/api/v1/namespaces/kube-system");
    assert!(!e.kir(&["contain", "undo", &ids[0]]).output().unwrap().status.success());
    assert_eq!(e.cluster.writes().len(), writes);
    e.cluster.put("/api/v1/namespaces/kube-system", kube_system);

    // The right cluster: undone.
    e.kir(&["contain", "undo", &ids[0]]).assert().success();
    assert_eq!(policies(&e.cluster.snapshot()).len(), 1);
}

#[test]
fn respond_keeps_its_targets_refuses_containment_before_evidence_and_ties_approvals_to_the_step() {
    let e = env();
    e.kir(&["incident", "open", "--title", "miner in checkout", "--severity", "critical", "--type", "cryptomining"])
        .assert()
        .success();
    let out = e.dir.path().join("evidence");
    let out_s = out.to_str().unwrap();
    e.kir(&["respond", "1", "--pod", P1, "--out", out_s]).assert().code(3);
    e.kir(&["incident", "approve", "1"]).assert().success();

    // The pod is gone (redeployed) before the next run, which names no pod: the targets of the
    // first run are kept, so the service account is still known.
    let original_pod = e.cluster.object(P1_PATH).unwrap();
    e.cluster.remove(P1_PATH);
    let second = e.kir(&["respond", "1", "--out", out_s]).output().unwrap();
    let text = String::from_utf8_lossy(&second.stdout);
    assert_eq!(second.status.code(), Some(3), "{text}{}", String::from_utf8_lossy(&second.stderr));
    assert!(text.contains("no longer exists: left out"), "{text}");
    assert!(text.contains("step 4 revoke-serviceaccount") && text.contains("waiting for approval"), "{text}");
    e.kir(&["incident", "approve", "1"]).assert().success();
    let third = e.kir(&["respond", "1", "--out", out_s]).output().unwrap();
    let text = String::from_utf8_lossy(&third.stdout);
    assert!(text.contains("revoke serviceaccount/checkout/checkout-api"), "{text}");

    // The kept targets belong to that cluster: another one behind the same context is refused.
    let kube_system = e.cluster.object("/api/v1/namespaces/kube-system").unwrap();
    let mut other = kube_system.clone();
    other["metadata"]["uid"] = json!("99999999-0000-4000-8000-000000000000");
    e.cluster.put("/api/v1/namespaces/kube-system", other);
    let writes = e.cluster.writes().len();
    let elsewhere = e.kir(&["respond", "1", "--out", out_s]).output().unwrap();
    assert_eq!(elsewhere.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&elsewhere.stderr).contains("targets were read from the cluster"));
    assert_eq!(e.cluster.writes().len(), writes);
    e.cluster.put("/api/v1/namespaces/kube-system", kube_system);

    // A plan whose playbook isolates before collecting: refused, the evidence comes first.
    let plan = String::from_utf8(kir().args(["plan", "init"]).output().unwrap().stdout).unwrap();
    let swapped = plan.replacen(
        "      - action: collect-evidence\n        title: Collect the pod, its owners, node, service account, logs and events\n      - action: label\n        title: Label the pod and node as under investigation\n      - action: isolate-pod\n        title: Isolate the pod with a deny-all NetworkPolicy (it keeps running for forensics)\n        approval: soc\n",
        "      - action: isolate-pod\n        title: Isolate the pod with a deny-all NetworkPolicy (it keeps running for forensics)\n      - action: collect-evidence\n        title: Collect the pod, its owners, node, service account, logs and events\n",
        1,
    );
    assert_ne!(plan, swapped, "the starter plan's playbook changed: update this test");
    let plan_path = e.dir.path().join("isolate-first.yaml");
    std::fs::write(&plan_path, swapped).unwrap();
    e.cluster.put(P1_PATH, original_pod);
    let fresh_store = format!("sqlite:{}", e.dir.path().join("fresh.db").display());
    let fresh = |args: &[&str]| e.kir_with_store(&fresh_store, args);
    fresh(&["incident", "open", "--title", "again", "--severity", "critical", "--type", "cryptomining"])
        .assert()
        .success();
    let writes = e.cluster.writes().len();
    let refused =
        fresh(&["respond", "1", "--pod", P1, "--out", out_s, "--plan", plan_path.to_str().unwrap()]).output().unwrap();
    assert_eq!(refused.status.code(), Some(2), "a step refused before changing anything stops the playbook with 2");
    let text = String::from_utf8_lossy(&refused.stdout);
    assert!(text.contains("evidence first"), "{text}");
    assert_eq!(e.cluster.writes().len(), writes, "nothing written before the evidence");

    // Approvals belong to the step they were given for: the same number in a changed plan is
    // another step and waits for its own approval.
    let another_store = format!("sqlite:{}", e.dir.path().join("another.db").display());
    let another = |args: &[&str]| e.kir_with_store(&another_store, args);
    another(&["incident", "open", "--title", "third", "--severity", "critical", "--type", "cryptomining"])
        .assert()
        .success();
    another(&["respond", "1", "--pod", P1, "--out", out_s]).assert().code(3);
    another(&["incident", "approve", "1", "--step", "3"]).assert().success();
    let changed = e.dir.path().join("changed.yaml");
    std::fs::write(
        &changed,
        plan.replacen(
            "      - action: isolate-pod\n        title: Isolate the pod with a deny-all NetworkPolicy (it keeps running for forensics)\n        approval: soc\n",
            "      - action: delete-pod\n        title: Delete the pod\n        approval: soc\n",
            1,
        ),
    )
    .unwrap();
    let waits = another(&["respond", "1", "--out", out_s, "--plan", changed.to_str().unwrap()]).output().unwrap();
    let text = String::from_utf8_lossy(&waits.stdout);
    assert_eq!(waits.status.code(), Some(3), "{text}");
    assert!(text.contains("step 3 delete-pod") && text.contains("waiting for approval"), "{text}");
}

/// The API server lets a binding be put back by whoever may `bind` its role *or* holds every
/// permission the role grants; revoke's preflight accepts either.
#[test]
fn revoke_without_bind_goes_ahead_for_someone_holding_the_roles_permissions() {
    let put_roles = |e: &Env| {
        let rbac = "/apis/rbac.authorization.k8s.io/v1";
        e.cluster.put(
            &format!("{rbac}/namespaces/checkout/roles/checkout-viewer"),
            json!({"kind": "Role", "apiVersion": "rbac.authorization.k8s.io/v1", "metadata": {"name": "checkout-viewer", "namespace": "checkout"},
                "rules": [{"apiGroups": [""], "resources": ["pods", "pods/log"], "verbs": ["get", "list"]}]}),
        );
        e.cluster.put(
            &format!("{rbac}/namespaces/demo/roles/pod-reader"),
            json!({"kind": "Role", "apiVersion": "rbac.authorization.k8s.io/v1", "metadata": {"name": "pod-reader", "namespace": "demo"},
                "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]}),
        );
        e.cluster.put(
            &format!("{rbac}/clusterroles/view"),
            json!({"kind": "ClusterRole", "apiVersion": "rbac.authorization.k8s.io/v1", "metadata": {"name": "view"},
                "rules": [{"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "list", "watch"]}]}),
        );
        e.cluster.deny("bind roles");
        e.cluster.deny("bind clusterroles");
    };
    let bindings = |c: &FakeCluster| c.snapshot().into_keys().filter(|k| k.contains("rolebindings/")).count();

    let e = env();
    put_roles(&e);
    let before = bindings(&e.cluster);
    let done = e.json(&["contain", "revoke", "user", "alice"]);
    assert_eq!(bindings(&e.cluster), before - 3);
    e.kir(&["contain", "undo", done["action_id"].as_str().unwrap()]).assert().success();
    assert_eq!(bindings(&e.cluster), before);

    // Without bind and without one of the role's permissions: refused, both ways named.
    let e = env();
    put_roles(&e);
    e.cluster.deny("watch deployments");
    e.kir(&["contain", "revoke", "user", "alice"]).assert().code(2).stderr(predicates::str::contains(
        "bind clusterroles.rbac.authorization.k8s.io \"view\" (cluster-wide), or every permission that role grants",
    ));
    assert!(e.cluster.writes().is_empty(), "{:?}", e.cluster.writes());
}

fn recorded_pod_with_debugger() -> Value {
    let path = fake_cluster::recordings()
        .join("GET_api_v1_namespaces_checkout_pods_checkout-api-64db89f569-blm5l.with-ephemeral-container.json");
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// The fake answers as the API server does, so what the binary does against it holds against a
/// real one: the debug container's strategic-merge patch adds to the pod's ephemeral containers
/// (keyed by name, the recorded `debugger` kept), a pod whose name ends in `s` that does not
/// exist is a 404, and a permission denied for one subresource in one namespace is only that.
#[test]
fn the_debug_container_joins_the_pods_ephemeral_containers_and_permissions_are_asked_by_subresource() {
    let e = env();
    e.cluster.put(P1_PATH, recorded_pod_with_debugger());
    let out = e.dir.path().join("evidence");
    let o = e
        .kir(&["collect", "pod", P1, "--out", out.to_str().unwrap(), "--debug-container", "--debug-wait", "0s"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let pod = e.cluster.object(P1_PATH).unwrap();
    let names: Vec<&str> =
        pod["spec"]["ephemeralContainers"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert_eq!(names[0], "debugger", "the container already there is kept");
    assert!(names[1].starts_with("kir-"), "{names:?}");
    assert_eq!(pod["spec"]["containers"][0]["name"], "app", "the other lists are untouched");

    // Denied get on pods/log in checkout only: the debug container is skipped and says why.
    let e = env();
    e.cluster.deny("get pods/log in checkout");
    let o = e
        .kir(&["collect", "pod", P1, "--out", out.to_str().unwrap(), "--debug-container", "--debug-wait", "0s"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("no container was added"), "{stderr}");
    assert!(stderr.contains("get pods/log"), "{stderr}");
    assert!(!e.cluster.writes().iter().any(|w| w.contains("ephemeralcontainers")), "{:?}", e.cluster.writes());

    // A pod that is not there is "does not exist", whatever its name ends with.
    e.kir(&["collect", "pod", "checkout/web-pods", "--out", out.to_str().unwrap()])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("pod checkout/web-pods does not exist"));
}
