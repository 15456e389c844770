//! `kir rules list / check / test`, on the built-in pack, on SigmaHQ's Kubernetes rules
//! (`tests/corpus/sigma/`, DRL 1.1) and on broken rules.

mod common;

use std::path::PathBuf;

use common::{example, kir, repo, stdout_of};
use serde_json::Value;

fn sigma() -> PathBuf {
    repo("tests/corpus/sigma/rules")
}

#[test]
fn builtin_pack_lists_checks_and_tests_clean() {
    let out = kir().args(["rules", "list", "--format", "json"]).assert().success().get_output().stdout.clone();
    let rules: Vec<Value> = serde_json::from_slice(&out).unwrap();
    assert!(rules.len() >= 60);
    assert!(rules.iter().all(|r| !r["techniques"].as_array().unwrap().is_empty()
        || r["level"] == "informational"
        || r["level"] == "low"));
    kir().args(["rules", "check"]).assert().success().stdout(predicates::str::contains("0 errors"));
    kir().args(["rules", "test"]).assert().success().stdout(predicates::str::contains(" 0 failed"));
}

#[test]
fn every_sigmahq_rule_loads_and_the_broken_ones_are_named() {
    let out =
        kir().args(["rules", "check", "--format", "json"]).arg(sigma()).assert().code(2).get_output().stdout.clone();
    let doc: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(doc["rules"], 31, "all 31 SigmaHQ rules load");
    let problems = doc["problems"].as_array().unwrap();
    assert!(problems.iter().all(|p| p["rule_loaded"] == true), "none is refused: {problems:#?}");
    let errors: Vec<&Value> = problems.iter().filter(|p| p["severity"] == "error").collect();
    let flagged = |file: &str, word: &str| {
        errors
            .iter()
            .any(|p| p["path"].as_str().unwrap().ends_with(file) && p["message"].as_str().unwrap().contains(word))
    };
    assert!(flagged("kubernetes_audit_hostpath_mount.yml", "`hostPath`"));
    assert!(flagged("kubernetes_audit_privileged_pod_creation.yml", "`capabilities`"));
    assert!(flagged("kubernetes_audit_rbac_permisions_listing.yml", "`apiGroup`"));
    assert!(flagged("kubernetes_audit_sidecar_injection.yml", "`apiGroup`"));
    assert!(flagged("kubernetes_audit_potential_enumeration_activity.yml", "\"ALLOW\""));
    assert_eq!(errors.len(), 5, "{errors:#?}");
    // The cloud rules are for other log sources: a warning each, not an error.
    let warnings = problems.iter().filter(|p| p["severity"] == "warning").count();
    assert_eq!(warnings, 15);
}

#[test]
fn the_valid_sigmahq_rules_run() {
    let out = stdout_of(
        kir().args(["hunt", "-q", "--no-builtin", "--format", "jsonl", "--rules"]).arg(sigma()).arg(example()),
    );
    let titles: Vec<String> =
        out.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()["title"].as_str().unwrap().to_string()).collect();
    for expected in [
        "Kubernetes Secrets Enumeration",
        "Kubernetes Rolebinding Modification",
        "Creation Of Pod In System Namespace",
        "Kubernetes Unauthorized or Unauthenticated Access",
    ] {
        assert!(titles.iter().any(|t| t == expected), "{expected} should fire on the example; fired: {titles:?}");
    }
}

#[test]
fn broken_rules_are_refused_with_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.yml"),
        "title: Bad modifier\nlogsource: {product: kubernetes, service: audit}\ndetection:\n  sel:\n    verb|startwith: get\n  condition: sel\nlevel: high\n---\ntitle: Bad condition\ndetection:\n  sel: {verb: get}\n  condition: sel and\n---\ntitle: [unclosed\n",
    )
    .unwrap();
    let assert = kir().args(["rules", "check"]).arg(dir.path()).assert().code(2);
    let text = String::from_utf8(assert.get_output().stdout.clone()).unwrap();
    assert!(text.contains("bad.yml:5: error in \"Bad modifier\""), "{text}");
    assert!(text.contains("unknown modifier \"startwith\""), "{text}");
    assert!(text.contains("bad.yml:12: error in \"Bad condition\""), "{text}");
    assert!(text.contains("bad.yml:14: error: not valid YAML"), "{text}");
    // A hunt with a rule that cannot load stops before reading anything.
    kir()
        .arg("hunt")
        .arg("--rules")
        .arg(dir.path())
        .arg(example())
        .assert()
        .code(2)
        .stderr(predicates::str::contains("cannot be loaded"));
}

#[test]
fn user_rules_with_failing_examples_fail_the_test_command() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("r.yml"),
        "title: Deletes\nid: 11111111-2222-3333-4444-555555555555\nlogsource: {product: kubernetes, service: audit}\ndetection:\n  sel: {verb: delete}\n  condition: sel\nlevel: low\nexamples:\n  - name: a get\n    match: true\n    events:\n      - {verb: get}\n",
    )
    .unwrap();
    kir()
        .args(["rules", "test"])
        .arg(dir.path())
        .assert()
        .code(1)
        .stdout(predicates::str::contains("should match but did not"));
}
