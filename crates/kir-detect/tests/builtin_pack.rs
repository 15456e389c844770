//! The built-in pack's own standards: every rule is complete, tagged, and carries examples that
//! pass; ids are unique UUIDs.

use std::collections::HashSet;

use kir_detect::{Level, Placeholders, RuleSet};

fn pack() -> RuleSet {
    RuleSet::builtin(&Placeholders::new())
}

#[test]
fn the_pack_loads_without_problems() {
    let set = pack();
    assert!(set.problems.is_empty(), "{:#?}", set.problems);
    assert!(set.detections.len() >= 60, "{}", set.detections.len());
    assert!(set.correlations.len() >= 2);
}

#[test]
fn every_rule_is_complete() {
    let set = pack();
    let mut ids = HashSet::new();
    let mut names = HashSet::new();
    let metas = set.detections.iter().map(|d| &d.meta).chain(set.correlations.iter().map(|c| &c.meta));
    for m in metas {
        let at = format!("{} ({})", m.title, m.origin.path);
        assert!(ids.insert(m.id.clone()), "duplicate id: {at}");
        assert!(is_uuid(&m.id), "id is not a UUID: {at}");
        let name = m.name.clone().unwrap_or_else(|| panic!("no name: {at}"));
        assert!(names.insert(name), "duplicate name: {at}");
        assert!(m.level.is_some(), "no level: {at}");
        assert!(!m.description.trim().is_empty(), "no description: {at}");
        assert!(!m.falsepositives.is_empty(), "no false-positive notes: {at}");
        assert!(m.tags.iter().any(|t| t.starts_with("attack.")), "no ATT&CK tag: {at}");
        assert!(!m.threat_matrix.is_empty(), "no threat-matrix tag: {at}");
        if m.level >= Some(Level::Medium) {
            assert!(!m.techniques.is_empty(), "a medium+ rule names its ATT&CK technique: {at}");
        }
        assert!(m.examples.iter().any(|e| e.should_match), "no must-match example: {at}");
        assert!(m.examples.iter().any(|e| !e.should_match), "no must-not-match example: {at}");
    }
}

#[test]
fn every_example_passes() {
    let set = pack();
    let results = kir_detect::selftest::run_examples(&set);
    let failed: Vec<_> = results.iter().filter(|r| !r.passed()).collect();
    assert!(failed.is_empty(), "{failed:#?}");
    assert!(results.len() >= 200);
}

#[test]
fn threat_matrix_ids_exist() {
    let matrix: Vec<serde_json::Value> =
        serde_json::from_str(include_str!("../../../tests/corpus/ms-threat-matrix/ms_threat_matrix.json")).unwrap();
    let known: HashSet<String> = matrix.iter().map(|t| t["id"].as_str().unwrap().to_string()).collect();
    for d in &pack().detections {
        for t in &d.meta.threat_matrix {
            assert!(known.contains(t), "{}: unknown threat-matrix id {t}", d.meta.title);
        }
    }
}

fn is_uuid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && [8, 4, 4, 4, 12].iter().zip(&parts).all(|(n, p)| p.len() == *n && p.chars().all(|c| c.is_ascii_hexdigit()))
}
