//! `kir rules test`: every rule's embedded examples, run through the real decoder and engine.

use kir_audit::{Origin, Record, StageMerger, decode};

use crate::ruleset::RuleSet;

#[derive(Debug, Clone)]
pub struct ExampleResult {
    pub rule_id: String,
    pub rule_title: String,
    pub path: String,
    pub line: Option<usize>,
    pub example: String,
    pub expected: bool,
    pub matched: bool,
    /// Why the example could not run, if it could not.
    pub error: Option<String>,
}

impl ExampleResult {
    pub fn passed(&self) -> bool {
        self.error.is_none() && self.expected == self.matched
    }
}

/// Runs the examples of every rule in `set`.
pub fn run_examples(set: &RuleSet) -> Vec<ExampleResult> {
    let mut results = Vec::new();
    for (i, rule) in set.detections.iter().enumerate() {
        for ex in &rule.meta.examples {
            let detection = match &ex.placeholders {
                None => Ok(rule.detection.clone()),
                Some(overrides) => {
                    let mut placeholders = set.placeholders.clone();
                    placeholders.extend(overrides.iter().map(|(k, v)| (k.clone(), v.clone())));
                    crate::detection::compile(&rule.source, &placeholders)
                }
            };
            let (matched, error) = match (events_of(&ex.events), detection) {
                (Ok(events), Ok(detection)) => (events.iter().any(|e| detection.matches(e)), None),
                (Err(e), _) | (_, Err(e)) => (false, Some(e)),
            };
            results.push(result(&rule.meta, ex, matched, error));
        }
        let _ = i;
    }
    for corr in &set.correlations {
        for ex in &corr.meta.examples {
            let (matched, error) = match events_of(&ex.events) {
                Ok(events) => {
                    let mut correlator = crate::correlation::Correlator::new(vec![corr.clone()]);
                    let mut fired = false;
                    for e in &events {
                        for &r in &corr.rules {
                            if set.detections[r].detection.matches(e) {
                                let finding = set.finding(r, e);
                                fired |= !correlator.observe(r, e, &finding).is_empty();
                            }
                        }
                    }
                    (fired, None)
                }
                Err(e) => (false, Some(e)),
            };
            results.push(result(&corr.meta, ex, matched, error));
        }
    }
    results
}

fn result(
    meta: &crate::rule::RuleMeta,
    ex: &crate::rule::Example,
    matched: bool,
    error: Option<String>,
) -> ExampleResult {
    ExampleResult {
        rule_id: meta.id.clone(),
        rule_title: meta.title.clone(),
        path: meta.origin.path.clone(),
        line: meta.example_line(ex),
        example: ex.name.clone(),
        expected: ex.should_match,
        matched,
        error,
    }
}

/// Example events go through the same decoder and stage merger as real logs.
fn events_of(values: &[serde_json::Value]) -> Result<Vec<kir_audit::AuditEvent>, String> {
    let mut merger = StageMerger::default();
    let mut events = Vec::new();
    for (n, v) in values.iter().enumerate() {
        let mut v = v.clone();
        if let Some(obj) = v.as_object_mut() {
            obj.entry("auditID").or_insert_with(|| serde_json::Value::String(format!("example-{}", n + 1)));
        }
        let mut records = Vec::new();
        let mut skipped = Vec::new();
        decode(&v.to_string(), &Origin::new("example", n as u64 + 1), &mut records, &mut skipped);
        if let Some(s) = skipped.first() {
            return Err(format!("event {}: {}", n + 1, s.detail));
        }
        // `kirContext` (kir extension): what the hunt would have learned by this event, for
        // contextual rules (`kirContext: {rolePower: [admin]}`).
        let power: Vec<&'static str> = v
            .pointer("/kirContext/rolePower")
            .and_then(|p| p.as_array())
            .into_iter()
            .flatten()
            .filter_map(|p| p.as_str())
            .filter_map(|p| ["admin", "escalate", "read-secrets", "run-code"].into_iter().find(|k| *k == p))
            .collect();
        for r in records {
            if let Record::Audit(mut e) = r {
                e.context.role_power = power.clone();
                merger.push(e, &mut events);
            }
        }
    }
    merger.finish(&mut events);
    Ok(events)
}
