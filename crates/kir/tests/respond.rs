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
    let done = e.json(&["contain", "revoke", "user", "alice"]);
    let after = grants(&e.cluster);
    assert_eq!(before.len() - after.len(), 3);
    assert!(!serde_json::to_string(&after).unwrap().contains("\"alice\""));
    assert_eq!(e.json(&["contain", "revoke", "user", "alice"])["changes"][0]["op"], "none");
    e.kir(&["contain", "undo", done["action_id"].as_str().unwrap()]).assert().success();
    assert_eq!(grants(&e.cluster), before);

    let list = e.kir(&["contain", "list", "--format", "json"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&list.stdout).lines().count(), 6);
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
