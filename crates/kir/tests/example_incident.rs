//! The bundled incident, recorded on a real cluster (`examples/exposed-console-cryptojack.md`):
//! what a responder must see, and what must stay quiet.

mod common;

use common::{example, hunt_jsonl, kir, stdout_of};
use serde_json::Value;

fn findings(extra: &[&str]) -> Vec<Value> {
    hunt_jsonl(extra, &example())
}

fn level_rank(level: &str) -> u8 {
    match level {
        "informational" => 0,
        "low" => 1,
        "medium" => 2,
        "high" => 3,
        "critical" => 4,
        other => panic!("unknown severity {other}"),
    }
}

/// The worst severity of any finding naming `audit_id`.
fn worst_for(findings: &[Value], audit_id: &str) -> Option<u8> {
    findings
        .iter()
        .filter(|f| f["audit_ids"].as_array().unwrap().iter().any(|id| id == audit_id))
        .map(|f| level_rank(f["severity"].as_str().unwrap()))
        .max()
}

#[test]
fn every_attacker_request_is_flagged_at_medium_or_higher() {
    let findings = findings(&[]);
    let attack = [
        ("14651b8f-f91a-4051-aa01-69f5cf59bd32", "list namespaces"),
        ("f8cb5f10-a134-46be-95d5-96c6e488ab1e", "list secrets in all namespaces"),
        ("45bf5f6c-b048-4898-a0e9-38a83b35c365", "get storefront/cloud-creds"),
        ("977b5e6e-64d5-4da6-92fb-e76aa2b3c416", "miner deployment in kube-system"),
        ("ae5eaffc-2fb2-463b-9361-4295b48e3f8d", "checks the miner runs"),
        ("bcc27fc1-ad3c-4072-84fb-2483aa7dad8e", "lists storefront pods"),
        ("6f1e9d6d-24d6-463a-a49e-83a8a018dd09", "deletes kube-system events"),
        ("68e6b7bb-7d5a-4ac0-9a5e-52db246d6313", "exec reading a service-account token"),
        ("9485d8fa-7121-4bfd-87cc-bb9f03367472", "deletes kube-system events again"),
        ("d88f9d09-e808-46f5-88c2-9c3f5ba422e7", "denied retry of the secret dump"),
    ];
    for (id, what) in attack {
        let worst = worst_for(&findings, id);
        assert!(worst.is_some_and(|w| w >= 2), "{what} ({id}) must be flagged at medium or higher, got {worst:?}");
    }
    // The miner itself is a near-certain compromise.
    assert_eq!(worst_for(&findings, "977b5e6e-64d5-4da6-92fb-e76aa2b3c416"), Some(4));
}

#[test]
fn the_root_cause_and_the_exposed_console_are_flagged() {
    let findings = findings(&[]);
    assert!(
        worst_for(&findings, "d85de522-5370-46e0-b745-99b9b534ea73").is_some_and(|w| w >= 3),
        "cluster-admin binding for a service account"
    );
    assert!(
        worst_for(&findings, "d072c5f6-84f9-4618-9af5-ff01ce76cfa7").is_some_and(|w| w >= 2),
        "NodePort service of the console"
    );
}

#[test]
fn benign_work_and_the_response_stay_quiet() {
    let findings = findings(&[]);
    let benign = [
        ("40f3957c-3ee5-470f-810c-4c81adba38e7", "alice's denied list secrets"),
        ("779272d1-bffa-4330-9471-91b3d3f6f89f", "the kubelet reads a referenced secret"),
        ("b946dd77-44b7-4922-a0ba-0f3cfdcb0aa3", "the kubelet mints a projected token"),
        ("46912096-7813-4c57-89ea-5222a4555fa7", "the admin provisions the app's credentials"),
    ];
    for (id, what) in benign {
        let worst = worst_for(&findings, id);
        assert!(worst.is_none_or(|w| w == 0), "{what} ({id}) must not be flagged, got {worst:?}");
    }
    let response = [
        ("9ae96ecf-6a35-4bd1-8cde-d66d9b85f345", "quarantine label"),
        ("21e3eb2d-c66f-4690-80c0-7c0f08777588", "deny-all NetworkPolicy"),
        ("9b194833-dcd8-4877-9083-464969dac3e9", "cordon"),
        ("2c3d282f-05d1-42f7-a948-b5020e24fb68", "scale to zero"),
        ("02dff5a7-196e-4e82-bf1a-10a1f0bfe135", "binding removed"),
    ];
    for (id, what) in response {
        let worst = worst_for(&findings, id);
        assert!(worst.is_none_or(|w| w < 2), "the response step {what} ({id}) is not an attack, got {worst:?}");
    }
    // Nothing alice did is worth more than a routine note.
    for f in &findings {
        if f["actor"]["user"] == "alice" {
            assert_eq!(f["severity"], "informational", "{f}");
        }
    }
}

#[test]
fn findings_follow_the_contract() {
    let findings = findings(&["--min-severity", "high"]);
    assert!(!findings.is_empty());
    for f in &findings {
        for key in [
            "rule_id",
            "title",
            "severity",
            "time",
            "audit_ids",
            "techniques",
            "threat_matrix",
            "actor",
            "object",
            "verb",
            "response_code",
            "source",
        ] {
            assert!(f.get(key).is_some(), "finding lacks {key}: {f}");
        }
        for key in ["user", "groups", "source_ips", "user_agent", "impersonated_user"] {
            assert!(f["actor"].get(key).is_some(), "actor lacks {key}");
        }
        for key in ["api_group", "resource", "subresource", "namespace", "name"] {
            assert!(f["object"].get(key).is_some(), "object lacks {key}");
        }
        assert!(level_rank(f["severity"].as_str().unwrap()) >= 3);
        assert!(
            jiff::Timestamp::strptime("%Y-%m-%dT%H:%M:%S%.fZ", f["time"].as_str().unwrap()).is_ok()
                || f["time"].as_str().unwrap().parse::<jiff::Timestamp>().is_ok()
        );
        assert!(f["source"]["line"].as_u64().unwrap() > 0);
        assert!(!f["techniques"].as_array().unwrap().is_empty(), "high findings carry ATT&CK ids: {f}");
    }
}

#[test]
fn the_source_line_is_the_requests_first_stage() {
    let findings = findings(&["--rule", "events-deleted"]);
    let first = findings.iter().find(|f| f["audit_ids"][0] == "6f1e9d6d-24d6-463a-a49e-83a8a018dd09").unwrap();
    let line = first["source"]["line"].as_u64().unwrap();
    // The story gives line 2611 for the ResponseComplete stage; the request was received just before.
    assert!((2600..=2611).contains(&line), "{line}");
}

#[test]
fn timeline_of_the_attacker_is_in_time_order() {
    let entries = hunt_jsonl(&["--timeline", "--actor", "system:serviceaccount:tools:ops-console"], &example());
    assert_eq!(entries.len(), 10, "the attacker made 10 requests");
    let times: Vec<&str> = entries.iter().map(|e| e["time"].as_str().unwrap()).collect();
    let mut sorted = times.clone();
    sorted.sort();
    assert_eq!(times, sorted);
    assert!(entries.iter().all(|e| !e["findings"].as_array().unwrap().is_empty()));
}

#[test]
fn fail_on_sets_the_exit_code() {
    kir().args(["hunt", "-q", "--fail-on", "critical"]).arg(example()).assert().code(1);
    kir().args(["hunt", "-q", "--fail-on", "high", "--namespace", "nowhere"]).arg(example()).assert().code(0);
}

#[test]
fn table_output_has_no_colour_when_piped() {
    let text = stdout_of(kir().args(["hunt", "--min-severity", "critical"]).arg(example()));
    assert!(!text.contains('\u{1b}'), "no escape codes when piped");
    assert!(text.contains("CRITICAL"));
    assert!(text.contains("Verdict: signs of an attack"));
    let coloured = stdout_of(kir().args(["hunt", "--color", "always", "--min-severity", "critical"]).arg(example()));
    assert!(coloured.contains('\u{1b}'));
}

#[test]
fn one_thread_and_two_find_the_same() {
    let one = hunt_jsonl(&["--threads", "1"], &example());
    let two = hunt_jsonl(&["--threads", "2"], &example());
    assert!(!one.is_empty());
    assert_eq!(one, two);
}

#[test]
fn rule_and_namespace_filters_take_the_same_patterns_as_actors() {
    let all = findings(&[]);
    let events = findings(&["--rule", "events-deleted"]);
    let by_pattern = findings(&["--rule", "events-del*"]);
    assert!(!events.is_empty());
    assert_eq!(events, by_pattern, "--rule events-del* is --rule events-deleted here");
    let namespaces: std::collections::BTreeSet<&str> =
        all.iter().filter_map(|f| f["object"]["namespace"].as_str()).collect();
    let one = *namespaces.iter().next().expect("findings name namespaces");
    let exact = findings(&["--namespace", one]);
    let prefix = &one[..one.len() - 1];
    let pattern = findings(&["--namespace", &format!("{prefix}*")]);
    assert!(!exact.is_empty());
    assert!(pattern.len() >= exact.len(), "{prefix}* keeps every finding in {one}");
    assert!(pattern.iter().all(|f| f["object"]["namespace"].as_str().is_some_and(|ns| ns.starts_with(prefix))));
    assert!(findings(&["--namespace", "nowhere*"]).is_empty());
}
