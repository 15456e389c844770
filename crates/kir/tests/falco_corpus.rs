//! Conformance with Falco's Kubernetes audit regression cases (`tests/corpus/falco/`, Apache-2.0):
//! for each positive case, a built-in rule with the same meaning fires on the same trace; the
//! default-rule negative cases stay silent where the meaning is the same; `fal_01_003.json`
//! (not an audit event) is refused with a clear message.
//!
//! Falco's tests load override files (allowed users, namespaces, images); where they do, we pass
//! a `--config` with the same lists. The `trust_nginx_container` negatives are left out: as
//! `EXPECTED.md` explains, that override no longer changes the current Falco rules either.

mod common;

use std::collections::HashMap;
use std::path::PathBuf;

use common::{kir, repo};
use serde_json::Value;

fn corpus() -> PathBuf {
    repo("tests/corpus/falco")
}

/// Falco rule → the built-in rule (by `name`) that means the same.
const FALCO_TO_KIR: &[(&str, &str)] = &[
    ("Create Disallowed Pod", "image-not-allowed"),
    ("Create Privileged Pod", "privileged-container|host-access-pod-created-by-controller"),
    ("Create HostNetwork Pod", "host-network-namespace"),
    ("Create Sensitive Mount Pod", "sensitive-hostpath-mount|host-access-pod-created-by-controller"),
    ("Create NodePort Service", "nodeport-service-created"),
    ("Create/Modify Configmap With Private Credentials", "configmap-with-credentials"),
    ("Anonymous Request Allowed", "anonymous-request-allowed"),
    ("Attach/Exec Pod", "pod-exec|pod-attach"),
    ("Disallowed K8s User", "user-outside-known-users"),
    ("Create Disallowed Namespace", "namespace-outside-allowed"),
    ("Pod Created in Kube Namespace", "pod-created-in-system-namespace"),
    ("Service Account Created in Kube Namespace", "serviceaccount-created-in-system-namespace"),
    ("System ClusterRole Modified/Deleted", "system-clusterrole-modified"),
    ("Attach to cluster-admin Role", "powerful-role-bound"),
    ("ClusterRole With Wildcard Created", "role-with-wildcard"),
    ("ClusterRole With Write Privileges Created", "role-with-write-privileges"),
    ("ClusterRole With Pod Exec Created", "role-with-pod-exec"),
    ("K8s Deployment Created", "deployment-created-or-deleted"),
    ("K8s Deployment Deleted", "deployment-created-or-deleted"),
    ("K8s Service Created", "service-created-or-deleted"),
    ("K8s Service Deleted", "service-created-or-deleted"),
    ("K8s ConfigMap Created", "configmap-created-or-deleted"),
    ("K8s ConfigMap Deleted", "configmap-created-or-deleted"),
    ("K8s Namespace Created", "namespace-created-or-deleted"),
    ("K8s Namespace Deleted", "namespace-created-or-deleted"),
    ("K8s Serviceaccount Created", "serviceaccount-created-or-deleted"),
    ("K8s Serviceaccount Deleted", "serviceaccount-created-or-deleted"),
    // Renamed upstream since: `K8s ClusterRole Created|Deleted`, `K8s ClusterRoleBinding Created|Deleted`.
    ("K8s Role/Clusterrole Created", "clusterrole-created-or-deleted"),
    ("K8s Role/Clusterrole Deleted", "clusterrole-created-or-deleted"),
    ("K8s Role/Clusterrolebinding Created", "rolebinding-created-or-deleted"),
    ("K8s Role/Clusterrolebinding Deleted", "rolebinding-created-or-deleted"),
    ("K8s Secret Created", "secret-created-or-deleted"),
    ("K8s Secret Deleted", "secret-created-or-deleted"),
    // Falco's case tests JSON pointers into annotations; ours reads the same key by path.
    ("json_pointer_example", "test-annotation-decision-exists"),
];

/// Falco's override files, as kir placeholders.
fn config_for(override_files: &[String]) -> String {
    let mut lists: Vec<(&str, &str)> = Vec::new();
    for f in override_files {
        match f.as_str() {
            // Falco's allowed_k8s_containers macro lists repositories: kir's workloads_allowed_images.
            "allow_only_apache_container.yaml" => lists.push(("workloads_allowed_images", "['apache']")),
            "allow_nginx_container.yaml" => lists.push(("workloads_allowed_images", "['nginx']")),
            "allow_user_some-user.yaml" => lists.push(("access_known_users", "['minikube-user', 'some-user']")),
            "allow_namespace_foo.yaml" => {
                lists.push(("access_allowed_namespaces", "['default', 'kube-system', 'kube-public', 'foo']"))
            }
            _ => {}
        }
    }
    // Falco's defaults: its known users and namespaces.
    if !lists.iter().any(|(k, _)| *k == "access_known_users") {
        lists.push(("access_known_users", "['minikube-user', 'admin', 'kubernetes-admin']"));
    }
    if !lists.iter().any(|(k, _)| *k == "access_allowed_namespaces") {
        lists.push(("access_allowed_namespaces", "['default', 'kube-system', 'kube-public']"));
    }
    let mut text = String::from("placeholders:\n");
    for (k, v) in lists {
        text.push_str(&format!("  {k}: {v}\n"));
    }
    text
}

struct Case {
    test: String,
    trace: String,
    detect: bool,
    counts: HashMap<String, u64>,
    overrides: Vec<String>,
}

fn cases() -> Vec<Case> {
    let text = std::fs::read_to_string(corpus().join("expected.json")).unwrap();
    let all: Vec<Value> = serde_json::from_str(&text).unwrap();
    all.iter()
        .map(|c| Case {
            test: c["test"].as_str().unwrap().to_string(),
            trace: c["trace"].as_str().unwrap().to_string(),
            detect: c["detect"].as_bool().unwrap(),
            counts: c["counts"].as_object().unwrap().iter().map(|(k, v)| (k.clone(), v.as_u64().unwrap())).collect(),
            overrides: c["rules"].as_array().unwrap().iter().map(|r| r.as_str().unwrap().to_string()).collect(),
        })
        .collect()
}

/// Runs kir on one trace; returns (rule name → number of findings).
fn run(trace: &str, overrides: &[String]) -> HashMap<String, u64> {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("kir.yaml");
    std::fs::write(&config, config_for(overrides)).unwrap();
    let test_rule = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/test-annotation-decision-exists.yml");
    let out = kir()
        .args(["hunt", "-q", "--format", "jsonl", "--config"])
        .arg(&config)
        .arg("--rules")
        .arg(&test_rule)
        .arg(corpus().join("trace_files").join(trace))
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let mut counts = HashMap::new();
    for line in String::from_utf8(out).unwrap().lines() {
        let f: Value = serde_json::from_str(line).unwrap();
        *counts.entry(f["rule_name"].as_str().unwrap_or_default().to_string()).or_default() += 1;
    }
    counts
}

fn kir_rules_for(falco_rule: &str) -> Vec<&'static str> {
    let (_, ours) = FALCO_TO_KIR
        .iter()
        .find(|(f, _)| *f == falco_rule)
        .unwrap_or_else(|| panic!("no mapping for Falco rule {falco_rule:?}"));
    ours.split('|').collect()
}

#[test]
fn every_positive_case_fires_a_rule_with_the_same_meaning() {
    let mut checked = 0;
    let mut failures = Vec::new();
    for case in cases().iter().filter(|c| c.detect) {
        let fired = run(&case.trace, &case.overrides);
        for (falco_rule, expected) in &case.counts {
            let ours = kir_rules_for(falco_rule);
            let count: u64 = ours.iter().map(|r| fired.get(*r).copied().unwrap_or(0)).sum();
            if count < *expected {
                failures.push(format!(
                    "{} ({}): Falco's {falco_rule:?} ×{expected}, our {ours:?} ×{count}; fired {fired:?}",
                    case.test, case.trace
                ));
            }
        }
        checked += 1;
    }
    assert_eq!(checked, 45, "Falco has 45 positive cases");
    assert!(failures.is_empty(), "{} of 45 positive cases fail:\n{}", failures.len(), failures.join("\n"));
}

/// The negative cases that use the default rules (and the overrides whose meaning we share),
/// with the rules that must stay silent.
#[test]
fn negative_cases_stay_silent_where_the_meaning_is_the_same() {
    let silent: &[(&str, &[&str])] = &[
        ("compat_engine_v4_create_allowed_pod", &["image-not-allowed", "image-outside-allowed-registries"]),
        (
            "compat_engine_v4_create_unprivileged_pod",
            &["privileged-container", "host-network-namespace", "sensitive-hostpath-mount"],
        ),
        ("user_in_allowed_set", &["user-outside-known-users", "namespace-outside-allowed"]),
        ("create_allowed_pod", &["image-not-allowed", "image-outside-allowed-registries"]),
        (
            "create_unprivileged_pod",
            &[
                "privileged-container",
                "host-network-namespace",
                "sensitive-hostpath-mount",
                "hostpath-mount",
                "host-access-pod-created-by-controller",
            ],
        ),
        (
            "create_unsensitive_mount_pod",
            &["sensitive-hostpath-mount", "privileged-container", "host-access-pod-created-by-controller"],
        ),
        ("create_nohostnetwork_pod", &["host-network-namespace"]),
        ("create_nonodeport_service", &["nodeport-service-created"]),
        ("create_configmap_no_private_creds", &["configmap-with-credentials"]),
        ("namespace_in_allowed_set", &["namespace-outside-allowed"]),
        ("create_service_account_token_secret", &["secret-created-or-deleted", "long-lived-token-secret-created"]),
        ("create_kube_system_secret", &["secret-created-or-deleted"]),
    ];
    let cases = cases();
    for (test, rules) in silent {
        let case = cases.iter().find(|c| c.test == *test).unwrap_or_else(|| panic!("no case {test}"));
        assert!(!case.detect);
        let fired = run(&case.trace, &case.overrides);
        for r in *rules {
            assert!(!fired.contains_key(*r), "{test} ({}): {r} must stay silent, fired {fired:?}", case.trace);
        }
    }
}

#[test]
fn a_file_that_is_not_an_audit_log_is_refused_clearly() {
    let assert = kir().arg("hunt").arg(corpus().join("trace_files/fal_01_003.json")).assert().code(2);
    let stderr = String::from_utf8(assert.get_output().stderr.clone()).unwrap();
    assert!(stderr.contains("fal_01_003.json: not a Kubernetes audit log"), "{stderr}");
    assert!(stderr.contains("line 1"), "{stderr}");
}

#[test]
fn every_trace_reads_without_skips() {
    for entry in std::fs::read_dir(corpus().join("trace_files")).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().unwrap() == "fal_01_003.json" {
            continue;
        }
        let assert = kir().args(["hunt", "--format", "json"]).arg(&path).assert().success();
        let doc: Value = serde_json::from_slice(&assert.get_output().stdout).unwrap();
        assert!(doc["stats"]["events"].as_u64().unwrap() >= 1, "{}", path.display());
        assert!(
            doc["stats"]["skipped"].as_object().unwrap().is_empty(),
            "{}: {}",
            path.display(),
            doc["stats"]["skipped"]
        );
    }
}
