//! The rule linter: what would make a rule silently match nothing, or match the wrong thing.

use kir_audit::Field;

use crate::detection::type_problems;
use crate::rule::{ProblemSeverity, RuleProblem};
use crate::ruleset::RuleSet;

/// Where a field that audit events do not have probably lives.
fn suggestion(name: &str) -> Option<&'static str> {
    let lower = name.to_ascii_lowercase();
    Some(match lower.as_str() {
        "hostpath" => "kir.podSpec.volumes.hostPath.path (or requestObject.spec.volumes.hostPath)",
        "capabilities" => "kir.containers.securityContext.capabilities.add",
        "apigroup" => "objectRef.apiGroup",
        "resource" => "objectRef.resource",
        "namespace" => "objectRef.namespace",
        "username" | "user" => "user.username",
        "useragent" => "userAgent",
        "sourceip" | "sourceips" | "src_ip" => "sourceIPs",
        "responsecode" | "status" => "responseStatus.code",
        "image" => "kir.images",
        "privileged" => "kir.containers.securityContext.privileged",
        _ => return None,
    })
}

pub fn lint(set: &RuleSet) -> Vec<RuleProblem> {
    let mut out = Vec::new();
    for rule in &set.detections {
        let meta = &rule.meta;
        let problem = |severity, message: String| RuleProblem {
            severity,
            path: meta.origin.path.clone(),
            line: Some(meta.origin.line),
            rule: Some(meta.title.clone()),
            message,
            rule_loaded: true,
        };
        if !meta.is_kubernetes_audit() {
            let problem = |severity, message: String| RuleProblem {
                line: Some(meta.line_of("logsource:")),
                ..problem(severity, message)
            };
            let ls = meta.logsource.as_ref().map(|l| l.to_string()).unwrap_or_default();
            out.push(problem(
                ProblemSeverity::Warning,
                format!("logsource {ls} is not Kubernetes audit (product: kubernetes, service: audit): the rule is loaded but does not run on audit events"),
            ));
            continue;
        }
        if meta.level.is_none() {
            out.push(problem(ProblemSeverity::Warning, "no `level`: findings will say medium".into()));
        }
    }
    let mut seen = std::collections::HashSet::new();
    for (i, item) in set.items() {
        let meta = &set.detections[i].meta;
        if !meta.is_kubernetes_audit() {
            continue;
        }
        let problem = |message: String| RuleProblem {
            severity: ProblemSeverity::Error,
            path: meta.origin.path.clone(),
            line: Some(meta.line_of_key(&item.field_name)),
            rule: Some(meta.title.clone()),
            message,
            rule_loaded: true,
        };
        if let Field::Unknown(name) = &item.field
            && seen.insert((i, name.clone()))
        {
            let hint = suggestion(name).map(|s| format!("; did you mean {s}?")).unwrap_or_default();
            out.push(problem(format!(
                "field `{name}` is not a field of a Kubernetes audit event, so this never matches{hint}"
            )));
        }
        if let crate::detection::ItemOp::FieldRef(refs) = &item.op {
            for r in refs {
                if let Field::Unknown(name) = r {
                    out.push(problem(format!(
                        "`fieldref` names `{name}`, which is not a field of a Kubernetes audit event"
                    )));
                }
            }
        }
        for message in type_problems(item) {
            out.push(problem(message));
        }
    }
    for c in &set.correlations {
        for g in &c.group_by {
            if let Field::Unknown(name) = Field::parse(g) {
                out.push(RuleProblem {
                    severity: ProblemSeverity::Error,
                    path: c.meta.origin.path.clone(),
                    line: Some(c.meta.origin.line),
                    rule: Some(c.meta.title.clone()),
                    message: format!("group-by field `{name}` is not a field of a Kubernetes audit event"),
                    rule_loaded: true,
                });
            }
        }
    }
    out
}
