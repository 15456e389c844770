//! Readiness on dumps built here from recorded API answers (a real 1.26 cluster's bindings,
//! pods, deployment, policy and service account: tests/data), made risky one object at a time:
//! each check both ways.

use kir_readiness::{AuditPolicy, Flags, Input, Inventory, Report, Status, assess};
use serde_json::{Value, json};

fn recorded(file: &str, kind: &str) -> Vec<Value> {
    kir_testkit::recorded_objects(format!("{}/tests/data/{file}", env!("CARGO_MANIFEST_DIR")), kind)
}

/// The recorded cluster: default RBAC, the checkout app with its deny-all policy.
fn tidy() -> Vec<Value> {
    let mut items = recorded("GET_apis_rbac.authorization.k8s.io_v1_clusterrolebindings.json", "ClusterRoleBinding");
    items.extend(recorded("GET_apis_rbac.authorization.k8s.io_v1_rolebindings.json", "RoleBinding"));
    items.extend(recorded("GET_api_v1_namespaces_checkout_pods.json", "Pod"));
    items.extend(recorded(
        "GET_apis_networking.k8s.io_v1_namespaces_checkout_networkpolicies_deny-all-checkout-api.json",
        "NetworkPolicy",
    ));
    items.extend(recorded("GET_apis_apps_v1_namespaces_checkout_deployments_checkout-api.json", "Deployment"));
    items.extend(recorded("GET_api_v1_namespaces_checkout_serviceaccounts_checkout-api.json", "ServiceAccount"));
    items
}

fn inventory(items: Vec<Value>) -> Inventory {
    let text = json!({"apiVersion": "v1", "kind": "List", "items": items}).to_string();
    Inventory::from_json(&text).unwrap().0
}

fn report_of(items: Vec<Value>) -> Report {
    let inv = inventory(items);
    assess(&Input { inventory: Some(&inv), ..Default::default() })
}

fn check<'a>(r: &'a Report, id: &str) -> &'a kir_readiness::Check {
    r.checks.iter().find(|c| c.id == id).unwrap_or_else(|| panic!("no check {id}"))
}

fn binding(name: &str, role: &str, subject: Value) -> Value {
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": name},
           "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role}, "subjects": [subject]})
}

fn pod(ns: &str, name: &str, spec: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns, "labels": {"app": name}}, "spec": spec})
}

const OPEN_CHECKS: &[&str] = &[
    "anonymous-access",
    "wide-groups-powerful",
    "cluster-admin-service-accounts",
    "exposed-consoles",
    "privileged-workloads",
    "namespaces-without-networkpolicy",
];

#[test]
fn the_recorded_cluster_passes_every_open_check() {
    let r = report_of(tidy());
    for id in OPEN_CHECKS {
        assert_eq!(check(&r, id).status, Status::Pass, "{id}: {:?}", check(&r, id));
    }
    // Inputs not given are unknown, never pass.
    for id in ["audit-logging", "audit-policy-coverage", "plan-checks-clean", "containment-permitted"] {
        assert_eq!(check(&r, id).status, Status::Unknown, "{id}");
    }
}

#[test]
fn a_risky_cluster_fails_naming_each_object() {
    let mut items = tidy();
    items.push(binding(
        "anonymous-view",
        "view",
        json!({"kind": "User", "name": "system:anonymous", "apiGroup": "rbac.authorization.k8s.io"}),
    ));
    items.push(binding(
        "ops-admin",
        "cluster-admin",
        json!({"kind": "ServiceAccount", "name": "default", "namespace": "tools"}),
    ));
    items.push(json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "kubernetes-dashboard", "namespace": "kubernetes-dashboard", "labels": {"k8s-app": "kubernetes-dashboard"}},
        "spec": {"type": "NodePort", "selector": {"k8s-app": "kubernetes-dashboard"}, "ports": [{"port": 443, "nodePort": 30443}]}}));
    items.push(pod("shop", "web", json!({"containers": [{"name": "web", "image": "nginx:1.25"}]})));
    items.push(pod(
        "tools",
        "debug",
        json!({"containers": [{"name": "sh", "image": "busybox", "securityContext": {"privileged": true}}]}),
    ));
    let r = report_of(items);
    let fails = |id: &str, object: &str| {
        let c = check(&r, id);
        assert_eq!(c.status, Status::Fail, "{id}: {c:?}");
        assert!(c.objects.iter().any(|o| o == object), "{id} names {object}: {:?}", c.objects);
        assert!(!c.fix.is_empty(), "{id} says how to fix it");
    };
    fails("anonymous-access", "clusterrolebinding/anonymous-view");
    fails("cluster-admin-service-accounts", "clusterrolebinding/ops-admin");
    fails("cluster-admin-service-accounts", "serviceaccount/tools/default");
    fails("exposed-consoles", "service/kubernetes-dashboard/kubernetes-dashboard");
    fails("privileged-workloads", "pod/tools/debug");
    fails("namespaces-without-networkpolicy", "namespace/shop");
    fails("namespaces-without-networkpolicy", "namespace/tools");
    // checkout has its policy; web runs unprivileged.
    assert!(!check(&r, "namespaces-without-networkpolicy").objects.contains(&"namespace/checkout".to_string()));
    assert!(!check(&r, "privileged-workloads").objects.iter().any(|o| o.contains("web")));
    assert!(r.fails_at(kir_detect::Level::Critical));
    assert!(r.score < report_of(tidy()).score);
}

#[test]
fn power_is_read_from_the_role_not_its_name() {
    let everything = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "ops-helper"},
        "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]});
    let readers = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "list-things"},
        "rules": [{"apiGroups": [""], "resources": ["configmaps", "secrets"], "verbs": ["get", "list"]}]});
    let named_only = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "one-secret"},
        "rules": [{"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["app-tls"], "verbs": ["get"]}]});
    let mut items = tidy();
    items.extend([everything, readers, named_only]);
    items.push(binding("helper", "ops-helper", json!({"kind": "ServiceAccount", "name": "ci", "namespace": "build"})));
    items.push(binding("all-read", "list-things", json!({"kind": "Group", "name": "system:authenticated"})));
    items.push(binding("tls", "one-secret", json!({"kind": "Group", "name": "system:serviceaccounts"})));
    items.push(binding(
        "reader",
        "list-things",
        json!({"kind": "ServiceAccount", "name": "exporter", "namespace": "monitoring"}),
    ));
    let r = report_of(items);
    assert_eq!(
        check(&r, "cluster-admin-service-accounts").objects,
        ["clusterrolebinding/helper", "serviceaccount/build/ci"]
    );
    assert_eq!(
        check(&r, "wide-groups-powerful").objects,
        ["clusterrolebinding/all-read"],
        "a named Secret is not every Secret"
    );
    let readers = check(&r, "service-accounts-read-secrets");
    assert_eq!(readers.status, Status::Warn);
    assert!(readers.objects.contains(&"serviceaccount/monitoring/exporter".to_string()));
}

#[test]
fn consoles_are_found_through_ingresses_and_pods_and_cluster_ip_is_not_exposed() {
    let mut items = tidy();
    items.push(json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "ui", "namespace": "ops"},
        "spec": {"type": "ClusterIP", "selector": {"app": "dash"}}}));
    items.push(pod("ops", "dash-1", json!({"containers": [{"name": "d", "image": "kubernetesui/dashboard:v2.7.0"}]})));
    let quiet = report_of(items.clone());
    assert_eq!(check(&quiet, "exposed-consoles").status, Status::Pass, "ClusterIP is not exposed");
    let last = items.len() - 1;
    items[last]["metadata"]["labels"] = json!({"app": "dash"});
    items.push(
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "ui", "namespace": "ops"},
        "spec": {"rules": [{"host": "ops.example.com", "http": {"paths": [{"path": "/", "pathType": "Prefix",
            "backend": {"service": {"name": "ui", "port": {"number": 80}}}}]}}]}}),
    );
    let r = report_of(items);
    assert_eq!(check(&r, "exposed-consoles").objects, ["ingress/ops/ui"]);
}

#[test]
fn system_namespaces_and_node_agents_are_not_privileged_workloads() {
    let mut items = tidy();
    items.push(pod("kube-system", "kube-proxy-x", json!({"hostNetwork": true, "containers": [{"name": "p", "image": "registry.k8s.io/kube-proxy:v1.26.15", "securityContext": {"privileged": true}}]})));
    items.push(pod("falco", "falco-x", json!({"containers": [{"name": "falco", "image": "falcosecurity/falco:0.39.0", "securityContext": {"privileged": true}}],
        "volumes": [{"name": "proc", "hostPath": {"path": "/proc"}}]})));
    items.push(
        json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "falco", "namespace": "falco"},
        "spec": {"template": {"spec": {"containers": [{"name": "falco", "image": "falcosecurity/falco:0.39.0"}]}}},
        "status": {"desiredNumberScheduled": 3, "numberReady": 3}}),
    );
    let r = report_of(items.clone());
    assert_eq!(check(&r, "privileged-workloads").status, Status::Pass, "{:?}", check(&r, "privileged-workloads"));
    assert_eq!(check(&r, "runtime-sensor").status, Status::Pass);
    assert_eq!(check(&r, "namespaces-without-networkpolicy").status, Status::Pass, "a node agent's namespace");
    items.push(pod(
        "shop",
        "miner",
        json!({"hostPID": true, "containers": [{"name": "m", "image": "nginx"}],
        "volumes": [{"name": "root", "hostPath": {"path": "/"}}]}),
    ));
    let r = report_of(items);
    let c = check(&r, "privileged-workloads");
    assert_eq!(c.objects, ["pod/shop/miner"]);
    assert!(c.detail.contains("hostPID") && c.detail.contains("hostPath /"), "{}", c.detail);
}

#[test]
fn the_api_server_manifest_and_audit_policies_are_read_from_real_shapes() {
    let dir = format!("{}/tests/data", env!("CARGO_MANIFEST_DIR"));
    let read = |f: &str| std::fs::read_to_string(format!("{dir}/{f}")).unwrap();
    let flags = Flags::parse(&read("kube-apiserver.yaml")).unwrap();
    assert_eq!(flags.get("audit-log-maxage"), Some("7"));
    let run = |policy: &str| {
        let policy = AuditPolicy::parse(&read(policy)).unwrap();
        let inv = inventory(tidy());
        assess(&Input { inventory: Some(&inv), flags: Some(&flags), audit_policy: Some(&policy), ..Default::default() })
    };
    let good = run("audit-policy-good.yaml");
    assert_eq!(check(&good, "audit-logging").status, Status::Pass);
    assert_eq!(check(&good, "audit-retention").status, Status::Fail, "7 days is too short");
    assert_eq!(
        check(&good, "audit-policy-coverage").status,
        Status::Pass,
        "{:?}",
        check(&good, "audit-policy-coverage")
    );
    assert_eq!(check(&good, "audit-policy-secret-bodies").status, Status::Pass);

    let leaky = run("audit-policy-logs-secrets.yaml");
    assert_eq!(check(&leaky, "audit-policy-secret-bodies").status, Status::Fail);
    assert_eq!(check(&leaky, "audit-policy-coverage").status, Status::Pass);

    // The pack against the policies: everything logged at RequestResponse lets every rule fire;
    // the good policy logs RBAC bodies and pod specs; the blind one hides exec and RBAC.
    let pack = kir_detect::RuleSet::builtin(&Default::default());
    let with_rules = |policy: &str| {
        let policy = AuditPolicy::parse(&read(policy)).unwrap();
        assess(&Input { audit_policy: Some(&policy), rules: Some(&pack), ..Default::default() })
    };
    assert_eq!(check(&with_rules("audit-policy-logs-secrets.yaml"), "rules-blind-under-policy").status, Status::Pass);
    let good_rules = with_rules("audit-policy-good.yaml");
    let c = check(&good_rules, "rules-blind-under-policy");
    assert!(!c.objects.iter().any(|o| o.contains("privileged")), "pod specs are logged at Request: {c:?}");
    let blind_rules = with_rules("audit-policy-blind.yaml");
    let c = check(&blind_rules, "rules-blind-under-policy");
    assert_eq!(c.status, Status::Fail);
    assert!(c.objects.iter().any(|o| o.contains("exec")), "exec is not logged: {:?}", c.objects);
    assert!(
        !c.objects.iter().any(|o| o.contains("privileged-container")),
        "pods are logged with their bodies: {:?}",
        c.objects
    );

    let blind = run("audit-policy-blind.yaml");
    let c = check(&blind, "audit-policy-coverage");
    assert_eq!(c.status, Status::Fail);
    assert!(
        c.detail.contains("pods/exec") && c.detail.contains("secrets") && c.detail.contains("clusterrolebindings"),
        "{}",
        c.detail
    );

    // The same flags as a command line.
    let line = Flags::parse(
        "kube-apiserver --audit-log-path /var/log/audit.log --audit-policy-file=/p.yaml --audit-log-maxage=30",
    )
    .unwrap();
    let inv = inventory(tidy());
    let r = assess(&Input { inventory: Some(&inv), flags: Some(&line), ..Default::default() });
    assert_eq!(check(&r, "audit-logging").status, Status::Pass);
    assert_eq!(check(&r, "audit-retention").status, Status::Pass);
    // The webhook backend at its defaults carries 400 × 10 events/s.
    let hook = Flags::parse("kube-apiserver --audit-policy-file=/p.yaml --audit-webhook-config-file=/w.yaml").unwrap();
    let webhook = |rate: Option<f64>, flags: &Flags| {
        let r = assess(&Input { flags: Some(flags), event_rate: rate, ..Default::default() });
        check(&r, "audit-webhook-capacity").status
    };
    assert_eq!(webhook(None, &hook), Status::Unknown);
    assert_eq!(webhook(Some(200.0), &hook), Status::Pass, "50 s of buffer");
    assert_eq!(webhook(Some(1000.0), &hook), Status::Warn, "10 s of buffer");
    assert_eq!(webhook(Some(5000.0), &hook), Status::Fail, "4,000 events/s is the most the defaults carry");
    let small =
        Flags::parse("kube-apiserver --audit-webhook-config-file=/w.yaml --audit-webhook-batch-buffer-size=1000")
            .unwrap();
    assert_eq!(webhook(Some(1000.0), &small), Status::Warn, "a second of buffer");
    let blocking =
        Flags::parse("kube-apiserver --audit-webhook-config-file=/w.yaml --audit-webhook-mode=blocking").unwrap();
    assert_eq!(webhook(None, &blocking), Status::Warn);
    let off = Flags::parse("kube-apiserver --secure-port=6443").unwrap();
    let r = assess(&Input { inventory: Some(&inv), flags: Some(&off), ..Default::default() });
    assert_eq!(check(&r, "audit-logging").status, Status::Fail);
}

#[test]
fn the_plan_is_checked_for_owners_and_escalation() {
    let starter_text = kir_plan::STARTER.to_string();
    let plan = kir_plan::check::load(&starter_text).unwrap().plan;
    let r = assess(&Input { plan: Some((&plan, &starter_text)), ..Default::default() });
    assert_eq!(check(&r, "plan-checks-clean").status, Status::Pass);
    let mut orphan = plan.clone();
    orphan.ownership.retain(|o| !o.severities.contains(&kir_detect::Level::Critical));
    let r = assess(&Input { plan: Some((&orphan, &starter_text)), ..Default::default() });
    let c = check(&r, "severities-owned");
    assert_eq!(c.status, Status::Fail);
    assert!(c.detail.contains("critical has no owner"), "{}", c.detail);
}

#[test]
fn unreadable_dumps_say_where() {
    let e = Inventory::from_json("{\"kind\": \"List\", \"items\": [").unwrap_err();
    assert!(e.to_string().contains("line 1"), "{e}");
    assert!(Inventory::from_json("").is_err());
    let (inv, notes) = Inventory::from_json("[{\"metadata\": {\"name\": \"x\"}}, 3]").unwrap();
    assert!(inv.objects.is_empty());
    assert_eq!(notes.len(), 2, "{notes:?}");
}
