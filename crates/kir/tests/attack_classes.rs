//! Recall by attack class: every class of attack request a responder must see (Secrets dumped,
//! code run in pods, tokens minted, powerful bindings, host escapes, webhooks, evasion…), each in
//! its successful, authorized-but-failed and refused form, as kube-apiserver logs them (a refused
//! request has no body and, for a create, no name), amid their benign neighbours.
//! `scripts/generate-attack-classes.py` writes the data; its labels say which requests are attacks.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::*;
use serde_json::Value;

const DATA: &str = "crates/kir/tests/data/attack-classes";
const MEDIUM_UP: &[&str] = &["medium", "high", "critical"];

/// (auditID → (class, form)) of the labelled attack requests.
fn attacks() -> BTreeMap<String, (String, String)> {
    let text = std::fs::read_to_string(repo(&format!("{DATA}/labels.tsv"))).unwrap();
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let cols: Vec<&str> = l.split('\t').collect();
            (cols.get(3) == Some(&"attack")).then(|| (cols[0].to_string(), (cols[1].to_string(), cols[2].to_string())))
        })
        .collect()
}

/// The auditIDs named by a finding at medium or above.
fn named_at_medium(findings: &[Value]) -> BTreeSet<String> {
    findings
        .iter()
        .filter(|f| MEDIUM_UP.contains(&f["severity"].as_str().unwrap_or("")))
        .flat_map(|f| f["audit_ids"].as_array().cloned().unwrap_or_default())
        .filter_map(|id| id.as_str().map(str::to_string))
        .collect()
}

fn recall_of(file: &str) {
    let attacks = attacks();
    assert!(attacks.len() > 300, "the labels list every attack request");
    let findings = hunt_jsonl(&[], &repo(&format!("{DATA}/{file}")));
    let named = named_at_medium(&findings);
    let missed: Vec<&(String, String)> =
        attacks.iter().filter(|(id, _)| !named.contains(*id)).map(|(_, class)| class).collect();
    let found = attacks.len() - missed.len();
    let recall = found as f64 / attacks.len() as f64;
    assert!(
        recall >= 0.98,
        "{file}: {found} of {} attack requests named at medium or above ({:.1}%); missed: {missed:#?}",
        attacks.len(),
        recall * 100.0
    );
    // Every class is found in each of its forms (succeeded, authorized but failed, refused), not
    // only most requests overall.
    let mut by_class: BTreeMap<(String, String), (usize, usize)> = BTreeMap::new();
    for (id, (class, form)) in &attacks {
        let outcome = form.split('-').next().unwrap_or(form).to_string();
        let e = by_class.entry((class.clone(), outcome)).or_default();
        e.0 += 1;
        e.1 += usize::from(named.contains(id));
    }
    let blind: Vec<_> = by_class.iter().filter(|(_, (_, found))| *found == 0).map(|(c, _)| c).collect();
    assert!(blind.is_empty(), "{file}: classes and forms with no request found: {blind:?}");
}

#[test]
fn stolen_tokens_every_attack_class_in_every_form_is_found_at_medium_or_above() {
    recall_of("stolen-tokens.jsonl.gz");
}

#[test]
fn people_on_private_addresses_are_found_by_what_they_do_not_who_they_are() {
    recall_of("people.jsonl.gz");
}

#[test]
fn ordinary_operations_stay_quiet_at_high() {
    let findings = hunt_jsonl(&[], &repo(&format!("{DATA}/ordinary-operations.jsonl.gz")));
    let high: Vec<String> = findings
        .iter()
        .filter(|f| ["high", "critical"].contains(&f["severity"].as_str().unwrap_or("")))
        .map(|f| format!("{} by {}", f["title"], f["actor"]["user"]))
        .collect();
    assert!(high.len() <= 3, "at most 3 findings at high or above on ordinary operations: {high:#?}");
    let labelled_benign = std::fs::read_to_string(repo(&format!("{DATA}/labels.tsv")))
        .unwrap()
        .lines()
        .filter(|l| l.ends_with("\tbenign"))
        .count();
    assert!(labelled_benign > 100, "the benign neighbours are a real day's work, not a handful");
}
