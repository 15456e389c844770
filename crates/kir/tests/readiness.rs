//! `kir readiness` through the binary: the JSON contract, exit codes, the people's formats, and
//! the live mode against the fake API server (read-only: it lists, asks access reviews, writes
//! nothing).

mod common;
mod fake_cluster;

use common::{kir, repo};
use serde_json::{Value, json};

fn recorded(file: &str, kind: &str) -> Vec<Value> {
    kir_testkit::recorded_objects(repo(&format!("crates/kir-readiness/tests/data/{file}")), kind)
}

fn tidy() -> Vec<Value> {
    let mut items = recorded("GET_apis_rbac.authorization.k8s.io_v1_clusterrolebindings.json", "ClusterRoleBinding");
    items.extend(recorded("GET_api_v1_namespaces_checkout_pods.json", "Pod"));
    items.extend(recorded(
        "GET_apis_networking.k8s.io_v1_namespaces_checkout_networkpolicies_deny-all-checkout-api.json",
        "NetworkPolicy",
    ));
    items
}

fn risky() -> Vec<Value> {
    let mut items = tidy();
    items.push(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "anonymous-admin"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"kind": "Group", "name": "system:unauthenticated", "apiGroup": "rbac.authorization.k8s.io"}]}));
    items.push(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "default-admin", "namespace": "tools"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": "tools"}]}));
    items.push(json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "dashboard", "namespace": "ops"},
        "spec": {"type": "LoadBalancer", "selector": {"app": "console"}, "ports": [{"port": 80}]}}));
    items.push(json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "console-0", "namespace": "ops", "labels": {"app": "console"}},
        "spec": {"containers": [{"name": "ui", "image": "kubernetesui/dashboard:v2.7.0"}]}}));
    items.push(json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "agent", "namespace": "tools"},
        "spec": {"template": {"spec": {"hostPID": true, "containers": [{"name": "a", "image": "alpine", "securityContext": {"privileged": true}}]}}}}));
    items
}

fn dump(dir: &std::path::Path, name: &str, items: Vec<Value>) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, json!({"apiVersion": "v1", "kind": "List", "items": items}).to_string()).unwrap();
    path
}

fn checks(out: &[u8]) -> (Value, Vec<Value>) {
    let v: Value = serde_json::from_slice(out).expect("one JSON object");
    let checks = v["checks"].as_array().unwrap().clone();
    (v, checks)
}

fn by_id<'a>(checks: &'a [Value], id: &str) -> &'a Value {
    checks.iter().find(|c| c["id"] == id).unwrap_or_else(|| panic!("no {id}"))
}

#[test]
fn a_risky_dump_fails_naming_each_object_and_sets_the_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let path = dump(dir.path(), "risky.json", risky());
    let out = kir().args(["readiness", "--format", "json", "--fail-on", "high", "--from"]).arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let (report, checks) = checks(&out.stdout);
    assert!(report["score"].as_u64().unwrap() <= 100);
    for c in &checks {
        for key in ["id", "title", "status", "severity", "objects", "fix"] {
            assert!(c.get(key).is_some(), "{key} in {c}");
        }
    }
    let names = |id: &str, object: &str| {
        let c = by_id(&checks, id);
        assert_eq!(c["status"], "fail", "{c}");
        assert!(c["objects"].as_array().unwrap().iter().any(|o| o == object), "{id}: {object} in {c}");
    };
    names("anonymous-access", "clusterrolebinding/anonymous-admin");
    names("wide-groups-powerful", "clusterrolebinding/anonymous-admin");
    names("cluster-admin-service-accounts", "rolebinding/tools/default-admin");
    names("exposed-consoles", "service/ops/dashboard");
    names("privileged-workloads", "deployment/tools/agent");
    names("namespaces-without-networkpolicy", "namespace/ops");
    names("namespaces-without-networkpolicy", "namespace/tools");

    // Without --fail-on the report is the work: exit 0.
    kir().args(["readiness", "--format", "json", "--from"]).arg(&path).assert().code(0);
}

#[test]
fn a_tidy_dump_fails_none_of_the_open_checks() {
    let dir = tempfile::tempdir().unwrap();
    let path = dump(dir.path(), "tidy.json", tidy());
    let out =
        kir().args(["readiness", "--format", "json", "--fail-on", "critical", "--from"]).arg(&path).output().unwrap();
    let (_, checks) = checks(&out.stdout);
    for id in [
        "anonymous-access",
        "wide-groups-powerful",
        "cluster-admin-service-accounts",
        "exposed-consoles",
        "privileged-workloads",
        "namespaces-without-networkpolicy",
    ] {
        assert_eq!(by_id(&checks, id)["status"], "pass", "{id}");
    }
    assert_eq!(out.status.code(), Some(0), "no critical check fails");
}

#[test]
fn unreadable_inputs_exit_2_and_say_where() {
    let dir = tempfile::tempdir().unwrap();
    kir()
        .args(["readiness", "--from", "/nonexistent/dump.json"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("/nonexistent/dump.json"));
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{\"kind\": \"List\",\n \"items\": [}").unwrap();
    kir()
        .args(["readiness", "--from"])
        .arg(&bad)
        .assert()
        .code(2)
        .stderr(predicates::str::contains("bad.json"))
        .stderr(predicates::str::contains("line 2"));
    let good = dump(dir.path(), "d.json", tidy());
    let policy = dir.path().join("policy.yaml");
    std::fs::write(&policy, "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n  - level: Sometimes\n").unwrap();
    kir()
        .args(["readiness", "--from"])
        .arg(&good)
        .arg("--audit-policy")
        .arg(&policy)
        .assert()
        .code(2)
        .stderr(predicates::str::contains("policy.yaml"));
}

#[test]
fn people_get_a_table_markdown_and_html() {
    let dir = tempfile::tempdir().unwrap();
    let path = dump(dir.path(), "risky.json", risky());
    let manifest = repo("crates/kir-readiness/tests/data/kube-apiserver.yaml");
    let policy = repo("crates/kir-readiness/tests/data/audit-policy-good.yaml");
    let table = common::stdout_of(
        kir()
            .args(["readiness", "--from"])
            .arg(&path)
            .arg("--apiserver-manifest")
            .arg(&manifest)
            .arg("--audit-policy")
            .arg(&policy),
    );
    assert!(table.contains("FAIL") && table.contains("Readiness ") && table.contains("Fixes:"), "{table}");
    assert!(!table.contains('\u{1b}'), "no colour when piped");
    assert!(table.contains("--audit-log-maxage=7"), "the retention finding names the flag: {table}");
    let md = common::stdout_of(kir().args(["readiness", "--format", "md", "--from"]).arg(&path));
    assert!(md.starts_with("# Readiness: ") && md.contains("## What is open?"), "{md}");
    let html = common::stdout_of(kir().args(["readiness", "--format", "html", "--from"]).arg(&path));
    assert!(html.contains("<table>") && html.contains("clusterrolebinding/anonymous-admin"));
}

#[test]
fn live_readiness_lists_read_only_and_asks_for_the_playbooks_permissions() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = fake_cluster::FakeCluster::start();
    let kubeconfig = cluster.kubeconfig(dir.path());
    cluster.put(
        "/api/v1/namespaces/tools/pods/agent",
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "agent", "namespace": "tools"},
               "spec": {"hostNetwork": true, "containers": [{"name": "a", "image": "alpine", "securityContext": {"privileged": true}}]}}),
    );
    cluster.put(
        "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/anon",
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "anon"},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
               "subjects": [{"kind": "User", "name": "system:anonymous"}]}),
    );
    cluster.deny("create networkpolicies");
    let out = kir().args(["readiness", "--format", "json"]).env("KUBECONFIG", &kubeconfig).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let (_, checks) = checks(&out.stdout);
    assert!(
        by_id(&checks, "privileged-workloads")["objects"].as_array().unwrap().iter().any(|o| o == "pod/tools/agent")
    );
    assert_eq!(by_id(&checks, "anonymous-access")["objects"], json!(["clusterrolebinding/anon"]));
    let permitted = by_id(&checks, "containment-permitted");
    assert_eq!(permitted["status"], "fail", "{permitted}");
    assert!(permitted.to_string().contains("create networkpolicies"), "{permitted}");
    assert!(cluster.writes().is_empty(), "readiness writes nothing: {:?}", cluster.writes());
    let lists: Vec<String> = cluster
        .requests()
        .iter()
        .filter(|r| r.method == "GET")
        .map(|r| r.path.split('?').next().unwrap_or_default().to_string())
        .collect();
    assert!(
        cluster.requests().iter().filter(|r| r.method == "GET").all(|r| r.path.contains("limit=500")),
        "listed in pages"
    );
    for path in [
        "/api/v1/pods",
        "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
        "/apis/networking.k8s.io/v1/networkpolicies",
    ] {
        assert!(lists.iter().any(|p| p == path), "{path} listed: {lists:?}");
    }
}

#[test]
fn a_test_notification_proves_each_owner_can_be_reached() {
    let dir = tempfile::tempdir().unwrap();
    let dump = dump(dir.path(), "tidy.json", tidy());
    let plan = dir.path().join("plan.yaml");
    std::fs::write(&plan, common::stdout_of(kir().args(["plan", "init"]))).unwrap();
    let http = kir_testkit::HttpReceiver::start();
    let run = |with_channels: bool| {
        let mut c = kir();
        c.args(["readiness", "--format", "json", "--test-notify", "--from"]).arg(&dump).arg("--plan").arg(&plan);
        for var in [
            "KIR_SOC_WEBHOOK_URL",
            "KIR_SLACK_DEVOPS_URL",
            "KIR_PAGERDUTY_ROUTING_KEY",
            "KIR_SMTP_HOST",
            "KIR_PAGERDUTY_URL",
        ] {
            c.env_remove(var);
        }
        if with_channels {
            c.env("KIR_SOC_WEBHOOK_URL", http.url("/soc"))
                .env("KIR_SOC_WEBHOOK_SECRET", "k")
                .env("KIR_SLACK_DEVOPS_URL", http.url("/slack"));
        }
        let out = c.output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let (_, checks) = checks(&out.stdout);
        by_id(&checks, "severities-owned").clone()
    };
    let reached = run(true);
    assert_eq!(reached["status"], "pass", "{reached}");
    assert!(reached["detail"].as_str().unwrap().contains("delivered"), "{reached}");
    let mut paths: Vec<String> =
        http.wait_for(2, std::time::Duration::from_secs(10)).iter().map(|r| r.path.clone()).collect();
    paths.sort();
    paths.dedup();
    assert_eq!(paths, ["/slack", "/soc"]);
    assert!(http.requests().iter().any(|r| String::from_utf8_lossy(&r.body).contains("test notification")));
    let unreached = run(false);
    assert_eq!(unreached["status"], "fail", "no channel configured reaches nobody: {unreached}");
    assert!(unreached["detail"].as_str().unwrap().contains("reached no channel"), "{unreached}");
}
