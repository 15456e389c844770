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

/// A finding serialized with every object's members in name order: what a JSON map (and so
/// `kir hunt --format json`, which once built one) shows, written straight from the finding.
/// A test holds it to the map's output, so a field added to [`Finding`] must be added here.
pub struct SortedKeys<'a>(pub &'a Finding);

impl Serialize for SortedKeys<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        struct Time<'a>(&'a Option<Timestamp>);
        impl Serialize for Time<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                time_rfc3339(self.0, s)
            }
        }
        struct SortedActor<'a>(&'a Actor);
        impl Serialize for SortedActor<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let a = self.0;
                let mut m = s.serialize_map(Some(5))?;
                m.serialize_entry("groups", &a.groups)?;
                m.serialize_entry("impersonated_user", &a.impersonated_user)?;
                m.serialize_entry("source_ips", &a.source_ips)?;
                m.serialize_entry("user", &a.user)?;
                m.serialize_entry("user_agent", &a.user_agent)?;
                m.end()
            }
        }
        struct SortedObject<'a>(&'a ObjectInfo);
        impl Serialize for SortedObject<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let o = self.0;
                let mut m = s.serialize_map(Some(5))?;
                m.serialize_entry("api_group", &o.api_group)?;
                m.serialize_entry("name", &o.name)?;
                m.serialize_entry("namespace", &o.namespace)?;
                m.serialize_entry("resource", &o.resource)?;
                m.serialize_entry("subresource", &o.subresource)?;
                m.end()
            }
        }
        struct SortedSource<'a>(&'a SourceRef);
        impl Serialize for SortedSource<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut m = s.serialize_map(Some(2))?;
                m.serialize_entry("line", &self.0.line)?;
                m.serialize_entry("path", &self.0.path)?;
                m.end()
            }
        }
        let f = self.0;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("actor", &SortedActor(&f.actor))?;
        m.serialize_entry("audit_ids", &f.audit_ids)?;
        if let Some(cluster) = &f.cluster {
            m.serialize_entry("cluster", cluster)?;
        }
        m.serialize_entry("event_count", &f.event_count)?;
        if !f.images.is_empty() {
            m.serialize_entry("images", &f.images)?;
        }
        m.serialize_entry("kind", f.kind)?;
        m.serialize_entry("object", &SortedObject(&f.object))?;
        if !f.request_uri.is_empty() {
            m.serialize_entry("request_uri", &f.request_uri)?;
        }
        m.serialize_entry("response_code", &f.response_code)?;
        m.serialize_entry("rule_id", &f.rule_id)?;
        if let Some(name) = &f.rule_name {
            m.serialize_entry("rule_name", name)?;
        }
        m.serialize_entry("severity", &f.severity)?;
        m.serialize_entry("source", &SortedSource(&f.source))?;
        m.serialize_entry("tactics", &f.tactics)?;
        m.serialize_entry("techniques", &f.techniques)?;
        m.serialize_entry("threat_matrix", &f.threat_matrix)?;
        m.serialize_entry("time", &Time(&f.time))?;
        m.serialize_entry("title", &f.title)?;
        m.serialize_entry("verb", &f.verb)?;
        m.end()
    }
}

#[cfg(test)]
mod sorted_keys_tests {
    use super::*;

    fn full() -> Finding {
        Finding {
            rule_id: "r-1".into(),
            title: "A \"quoted\" title".into(),
            severity: Level::High,
            time: Some("2026-01-02T03:04:05.5Z".parse().unwrap()),
            audit_ids: vec!["a".into(), "b".into()],
            techniques: vec!["T1609".into()],
            tactics: vec!["execution".into()],
            threat_matrix: vec!["MS-TA9008".into()],
            actor: Actor {
                user: "u".into(),
                groups: vec!["g".into()],
                source_ips: vec!["10.0.0.1".into()],
                user_agent: Some("kubectl".into()),
                impersonated_user: Some("admin".into()),
            },
            object: ObjectInfo {
                api_group: Some("apps".into()),
                resource: Some("pods".into()),
                subresource: Some("exec".into()),
                namespace: Some("ns".into()),
                name: Some("p".into()),
            },
            verb: "create".into(),
            response_code: Some(201),
            source: SourceRef { path: "f.jsonl".into(), line: 7 },
            kind: "detection",
            rule_name: Some("name".into()),
            event_count: 3,
            request_uri: "/api/v1".into(),
            cluster: Some("prod".into()),
            images: vec!["x:1".into()],
        }
    }

    /// Every field set, and every optional one left out: the same text as the map would give.
    #[test]
    fn sorted_keys_write_what_a_json_map_writes() {
        let empty = Finding {
            time: None,
            actor: Actor::default(),
            object: ObjectInfo::default(),
            response_code: None,
            rule_name: None,
            request_uri: String::new(),
            cluster: None,
            images: Vec::new(),
            ..full()
        };
        for f in [full(), empty] {
            let through_map = serde_json::to_string_pretty(&serde_json::to_value(&f).unwrap()).unwrap();
            assert_eq!(serde_json::to_string_pretty(&SortedKeys(&f)).unwrap(), through_map);
        }
    }
}
