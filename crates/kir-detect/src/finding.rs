//! Findings: what a rule says about one or more events. Their JSON form is a contract
//! (`PRODUCT.md`, "Findings"): keys keep their names and meaning; new keys may be added.

use jiff::Timestamp;
use kir_audit::{AuditEvent, FalcoAlert};
use serde::Serialize;

use crate::level::Level;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub rule_id: String,
    pub title: String,
    pub severity: Level,
    #[serde(serialize_with = "time_rfc3339")]
    pub time: Option<Timestamp>,
    pub audit_ids: Vec<String>,
    pub techniques: Vec<String>,
    /// ATT&CK tactics of the rule, lower-case with dashes (`credential-access`).
    #[serde(default)]
    pub tactics: Vec<String>,
    pub threat_matrix: Vec<String>,
    pub actor: Actor,
    pub object: ObjectInfo,
    pub verb: String,
    pub response_code: Option<i64>,
    pub source: SourceRef,
    /// `detection`, `correlation` or `falco`.
    pub kind: &'static str,
    /// The rule's `name`, when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule_name: Option<String>,
    /// How many events are behind the finding.
    pub event_count: usize,
    /// `requestURI` of the (first) event.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub request_uri: String,
    /// The cluster whose API server (or Falco) reported it, when the input names one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// The images of the pod spec the request wrote, or of the container a runtime alert is
    /// about: one incident follows an image across identities and clusters.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Actor {
    pub user: String,
    pub groups: Vec<String>,
    pub source_ips: Vec<String>,
    pub user_agent: Option<String>,
    pub impersonated_user: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ObjectInfo {
    pub api_group: Option<String>,
    pub resource: Option<String>,
    pub subresource: Option<String>,
    pub namespace: Option<String>,
    pub name: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SourceRef {
    pub path: String,
    pub line: u64,
}

/// Serializes an optional time as RFC 3339 text (or null).
pub fn time_rfc3339<S: serde::Serializer>(t: &Option<Timestamp>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_str(&t.to_string()),
        None => s.serialize_none(),
    }
}

/// Who made a request, from the event.
pub fn actor_of(event: &AuditEvent) -> Actor {
    Actor {
        user: event.user.username.clone(),
        groups: event.user.groups.clone(),
        source_ips: event.source_ips.clone(),
        user_agent: event.user_agent.clone(),
        impersonated_user: event.impersonated_user.as_ref().map(|u| u.username.clone()),
    }
}

pub fn object_of(event: &AuditEvent) -> ObjectInfo {
    match &event.object_ref {
        Some(o) => ObjectInfo {
            api_group: o.api_group.clone(),
            resource: o.resource.clone(),
            subresource: o.subresource.clone(),
            namespace: o.namespace.clone(),
            name: o.name.clone().or_else(|| generated_name(event)),
        },
        None => ObjectInfo::default(),
    }
}

/// Objects created with `generateName` (a controller's pods) get their name from the server:
/// the response says which object was made, and a responder needs that name.
fn generated_name(event: &AuditEvent) -> Option<String> {
    if event.verb != "create" {
        return None;
    }
    let body = event.response_object.as_ref()?.value();
    body.pointer("/metadata/name").and_then(|v| v.as_str()).map(str::to_string)
}

/// Falco priorities to Sigma levels.
pub fn level_of_falco_priority(priority: &str) -> Level {
    match priority.to_ascii_lowercase().as_str() {
        "emergency" | "alert" | "critical" => Level::Critical,
        "error" => Level::High,
        "warning" => Level::Medium,
        "notice" => Level::Low,
        _ => Level::Informational,
    }
}

/// A Falco alert carries its own verdict: it becomes a finding as it is.
pub fn finding_from_falco(alert: &FalcoAlert) -> Finding {
    let field = |k: &str| alert.output_fields.get(k).and_then(|v| v.as_str()).map(str::to_string);
    let techniques = alert
        .tags
        .iter()
        .filter(|t| {
            t.len() > 1
                && (t.starts_with('T') || t.starts_with('t'))
                && t[1..].chars().next().is_some_and(|c| c.is_ascii_digit())
        })
        .map(|t| t.to_ascii_uppercase())
        .collect();
    let tactics = tactics_of(&alert.tags);
    let pod = field("k8s.pod.name");
    Finding {
        rule_id: format!("falco:{}", alert.rule),
        title: alert.rule.clone(),
        severity: level_of_falco_priority(&alert.priority),
        time: alert.time,
        audit_ids: Vec::new(),
        techniques,
        tactics,
        threat_matrix: Vec::new(),
        actor: Actor { user: field("user.name").unwrap_or_default(), ..Default::default() },
        object: ObjectInfo {
            api_group: None,
            resource: pod.as_ref().map(|_| "pods".to_string()),
            subresource: None,
            namespace: field("k8s.ns.name"),
            name: pod,
        },
        verb: String::new(),
        response_code: None,
        source: SourceRef { path: alert.origin.path.to_string(), line: alert.origin.line },
        kind: "falco",
        rule_name: None,
        event_count: 1,
        request_uri: String::new(),
        cluster: alert.origin.cluster.as_deref().map(str::to_string),
        images: falco_image(alert).into_iter().collect(),
    }
}

/// The container image a Falco alert names (`container.image.repository` and `.tag`, or
/// `container.image`), normalized as `kir.images` writes images.
fn falco_image(alert: &FalcoAlert) -> Option<String> {
    let field = |k: &str| alert.output_fields.get(k).and_then(|v| v.as_str()).filter(|v| !v.trim().is_empty());
    let image = match (field("container.image.repository"), field("container.image.tag")) {
        (Some(repo), Some(tag)) => format!("{repo}:{tag}"),
        (Some(repo), None) => repo.to_string(),
        _ => field("container.image")?.to_string(),
    };
    Some(kir_audit::field::normalize_image(&image).into_owned())
}

/// ATT&CK tactic names from Sigma tags (`attack.privilege-escalation`) and Falco tags
/// (`mitre_privilege_escalation`), written the Sigma way: lower case with dashes.
pub fn tactics_of(tags: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for tag in tags {
        let lower = tag.to_ascii_lowercase();
        let Some(name) = lower.strip_prefix("attack.").or_else(|| lower.strip_prefix("mitre_")) else { continue };
        let is_id = name.starts_with(['t', 'g', 's']) && name[1..].starts_with(|c: char| c.is_ascii_digit());
        let name = name.replace('_', "-");
        if !is_id && !name.is_empty() && !out.contains(&name) {
            out.push(name);
        }
    }
    out
}
