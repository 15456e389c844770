//! The rule pack against the audit policy: a rule can fire only on requests the policy logs,
//! and one that reads a request's body only where the policy logs bodies.

use kir_audit::Field;
use kir_detect::RuleSet;
use kir_detect::detection::{Detection, Item, ItemOp, Search};
use serde_json::Value;

use crate::apiserver::{AuditLevel, AuditPolicy, Request};

/// The API group of the resources rules name (an audit policy matches on group and resource).
fn group_of(resource: &str) -> &'static str {
    match resource.split('/').next().unwrap_or(resource) {
        "deployments" | "daemonsets" | "statefulsets" | "replicasets" | "controllerrevisions" => "apps",
        "jobs" | "cronjobs" => "batch",
        "roles" | "rolebindings" | "clusterroles" | "clusterrolebindings" => "rbac.authorization.k8s.io",
        "certificatesigningrequests" => "certificates.k8s.io",
        "networkpolicies" | "ingresses" => "networking.k8s.io",
        "mutatingwebhookconfigurations" | "validatingwebhookconfigurations" => "admissionregistration.k8s.io",
        "tokenreviews" => "authentication.k8s.io",
        "selfsubjectaccessreviews" | "selfsubjectrulesreviews" | "subjectaccessreviews" => "authorization.k8s.io",
        "leases" => "coordination.k8s.io",
        "customresourcedefinitions" => "apiextensions.k8s.io",
        _ => "",
    }
}

/// The requests one rule names, read from its `detection` as written.
#[derive(Debug, Default)]
struct Requests {
    resources: Vec<String>,
    subresources: Vec<String>,
    verbs: Vec<String>,
}

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect(),
        _ => Vec::new(),
    }
}

fn requests_of(detection: &Value) -> Requests {
    let mut out = Requests::default();
    let mut maps: Vec<&serde_json::Map<String, Value>> = Vec::new();
    for (name, selection) in detection.as_object().into_iter().flatten() {
        if name == "condition" || name == "timeframe" {
            continue;
        }
        match selection {
            Value::Object(m) => maps.push(m),
            Value::Array(list) => maps.extend(list.iter().filter_map(Value::as_object)),
            _ => {}
        }
    }
    for map in maps {
        for (key, value) in map {
            let (field, modifiers) = key.split_once('|').unwrap_or((key, ""));
            if !modifiers.is_empty() {
                continue;
            }
            match field {
                "objectRef.resource" => out.resources.extend(strings(value)),
                "objectRef.subresource" => out.subresources.extend(strings(value)),
                "verb" => out.verbs.extend(strings(value)),
                _ => {}
            }
        }
    }
    out.resources.sort();
    out.resources.dedup();
    out
}

/// The least level at which an item can match: fields of the request body need `Request`,
/// of the response body `RequestResponse`. An item that matches when its field is absent
/// (`|exists: false`, kir's `|not`) needs nothing.
fn item_needs(item: &Item) -> AuditLevel {
    if item.negate || matches!(item.op, ItemOp::Exists(false)) {
        return AuditLevel::None;
    }
    match item.field {
        Field::ResponseObject(_) => AuditLevel::RequestResponse,
        Field::RequestObject(_) | Field::PodSpec(_) | Field::Containers(_) | Field::Images | Field::CsrSubject => {
            AuditLevel::Request
        }
        _ => AuditLevel::None,
    }
}

/// The least level at which each search can be true: a list of maps is true when one map is.
fn search_needs(detection: &Detection) -> Vec<AuditLevel> {
    detection
        .searches
        .iter()
        .map(|s| match s {
            Search::Maps(maps) => maps
                .iter()
                .map(|items| items.iter().map(item_needs).max().unwrap_or(AuditLevel::None))
                .min()
                .unwrap_or(AuditLevel::None),
            Search::Keywords(_) => AuditLevel::None,
        })
        .collect()
}

/// Whether the condition can be true with only the `available` searches able to match (the
/// others are false, as their fields are not logged). Tried over every assignment of the
/// available searches; a condition over more than 12 of them is taken to be satisfiable.
fn can_be_true(detection: &Detection, available: &[bool]) -> bool {
    let free: Vec<usize> = (0..available.len()).filter(|i| available[*i]).collect();
    if free.len() > 12 {
        return true;
    }
    (0u32..(1 << free.len())).any(|mask| {
        let mut truth = vec![false; available.len()];
        for (bit, i) in free.iter().enumerate() {
            truth[*i] = mask & (1 << bit) != 0;
        }
        detection.condition.eval(&mut |i| truth.get(i).copied().unwrap_or(false))
    })
}

/// Rules that cannot fire under `policy`, each with why: `(rule, reason)`. Rules that name no
/// resource are left out (the policy cannot be judged for them).
pub fn blind_rules(rules: &RuleSet, policy: &AuditPolicy) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for rule in &rules.detections {
        let requests = requests_of(&rule.source);
        if requests.resources.is_empty() {
            continue;
        }
        let verbs: Vec<&str> = if requests.verbs.is_empty() {
            vec!["create"]
        } else {
            requests.verbs.iter().map(String::as_str).collect()
        };
        // The best level any request the rule names is logged at.
        let mut logged = AuditLevel::None;
        let mut shown = Vec::new();
        for resource in &requests.resources {
            let names: Vec<String> = if requests.subresources.is_empty() {
                vec![resource.clone()]
            } else {
                requests
                    .subresources
                    .iter()
                    .map(|s| if s.is_empty() { resource.clone() } else { format!("{resource}/{s}") })
                    .collect()
            };
            for name in &names {
                for verb in &verbs {
                    let level = policy.level_for(Request { verb, group: group_of(name), resource: name });
                    logged = logged.max(level);
                    shown.push(format!("{verb} {name} at {level:?}"));
                }
            }
        }
        let who = rule.meta.name.clone().unwrap_or_else(|| rule.meta.id.clone());
        if logged == AuditLevel::None {
            out.push((format!("rule/{who}"), format!("{}: not logged ({})", rule.meta.title, shown.join(", "))));
            continue;
        }
        let needs = search_needs(&rule.detection);
        let available: Vec<bool> = needs.iter().map(|n| *n <= logged).collect();
        if !can_be_true(&rule.detection, &available) {
            let least = needs.iter().copied().filter(|n| *n > logged).min().unwrap_or(AuditLevel::Request);
            out.push((
                format!("rule/{who}"),
                format!("{} needs {least:?}, logged at {logged:?} ({})", rule.meta.title, shown.join(", ")),
            ));
        }
    }
    out
}
