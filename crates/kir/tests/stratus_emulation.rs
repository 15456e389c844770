//! Stratus Red Team's Kubernetes techniques (and EKS's aws-auth backdoor), request by request as
//! their code sends them and as kube-apiserver 1.26 logs them, every stage: warm-up, detonation
//! and clean-up, by a cluster admin (two audit policies), by a stolen service-account token (by
//! hand and running Stratus), refused, and authorized but failed. `labels.tsv` says which requests
//! a responder must see; the test asks that nearly all of them are named at medium or above, and
//! every detonation step that is not a plain read every administrator makes.

mod common;

use std::collections::BTreeSet;

use common::*;

const DATA: &str = "crates/kir/tests/data/stratus-emulation";

#[test]
fn every_stratus_technique_is_named_at_medium_or_above_in_every_form() {
    let labels = std::fs::read_to_string(repo(&format!("{DATA}/labels.tsv"))).unwrap();
    let must_see: Vec<(String, String, String)> = labels
        .lines()
        .skip(1)
        .filter_map(|l| {
            let c: Vec<&str> = l.split('\t').collect();
            (c.get(3) == Some(&"yes")).then(|| (c[0].to_string(), c[1].to_string(), c[2].to_string()))
        })
        .collect();
    assert!(must_see.len() > 300, "the labels list the requests to see");

    let mut named = BTreeSet::new();
    let mut files = 0;
    for entry in std::fs::read_dir(repo(DATA)).unwrap() {
        let path = entry.unwrap().path();
        if !path.to_string_lossy().ends_with(".audit.jsonl.gz") {
            continue;
        }
        files += 1;
        for f in hunt_jsonl(&["--min-severity", "medium"], &path) {
            named.extend(f["audit_ids"].as_array().unwrap().iter().map(|id| id.as_str().unwrap().to_string()));
        }
    }
    assert!(files >= 45, "one recording per technique and form");

    let missed: Vec<&(String, String, String)> = must_see.iter().filter(|(id, ..)| !named.contains(id)).collect();
    let recall = (must_see.len() - missed.len()) as f64 / must_see.len() as f64;
    assert!(recall >= 0.98, "{:.1}% of the requests to see are named; missed: {missed:#?}", recall * 100.0);
    // The detonation itself is always found, but for the reads an administrator makes every day
    // before acting (listing nodes, reading a ConfigMap before editing it).
    let detonations: Vec<_> = missed
        .iter()
        .filter(|(_, _, step)| {
            step.starts_with("detonate:") && !["detonate:list-nodes", "detonate:get-configmap"].contains(&step.as_str())
        })
        .collect();
    assert!(detonations.is_empty(), "detonation steps missed: {detonations:#?}");
}
