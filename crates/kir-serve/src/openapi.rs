//! The OpenAPI 3.1 document at `/openapi.json`, generated from the handlers' annotations and the
//! shapes below (utoipa). The shapes describe what the handlers serialize (`Finding`,
//! `Incident::summary_json`, `kir_app::incident_json`, …); `crates/kir/tests/serve.rs` checks
//! real responses against this document, so a change to one without the other fails there.

#![allow(dead_code)]

use serde::Serialize;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

#[derive(ToSchema, Serialize)]
pub struct ErrorBody {
    /// What is wrong, for a person.
    error: String,
}

#[derive(ToSchema, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Informational,
    Low,
    Medium,
    High,
    Critical,
}

#[derive(ToSchema, Serialize)]
pub struct Actor {
    user: String,
    groups: Vec<String>,
    source_ips: Vec<String>,
    user_agent: Option<String>,
    impersonated_user: Option<String>,
}

#[derive(ToSchema, Serialize)]
pub struct ObjectInfo {
    api_group: Option<String>,
    resource: Option<String>,
    subresource: Option<String>,
    namespace: Option<String>,
    name: Option<String>,
}

#[derive(ToSchema, Serialize)]
pub struct SourceRef {
    /// `kir-serve` for live findings; the file for a hunt.
    path: String,
    /// The stored event's sequence number (live) or the line (a hunt).
    line: u64,
}

/// A finding: `kir hunt --format jsonl`'s contract, one per line.
#[derive(ToSchema, Serialize)]
pub struct Finding {
    rule_id: String,
    title: String,
    severity: Severity,
    /// RFC 3339.
    time: Option<String>,
    /// Every request behind the finding (a burst's, all of them).
    audit_ids: Vec<String>,
    techniques: Vec<String>,
    tactics: Vec<String>,
    threat_matrix: Vec<String>,
    actor: Actor,
    object: ObjectInfo,
    verb: String,
    response_code: Option<i64>,
    source: SourceRef,
    /// `detection`, `correlation` or `falco`.
    kind: String,
    rule_name: Option<String>,
    event_count: u64,
    request_uri: Option<String>,
    /// The cluster that sent the events (the token's or `?cluster=`); absent when none was named.
    cluster: Option<String>,
    /// Images of the pod spec written, or of the container a runtime alert names.
    images: Option<Vec<String>>,
}

/// An incident: `kir incident list --format json`'s objects.
#[derive(ToSchema, Serialize)]
pub struct IncidentSummary {
    id: i64,
    title: String,
    #[serde(rename = "type")]
    incident_type: String,
    severity: Severity,
    /// new, acknowledged, contained, resolved, closed.
    state: String,
    owner_role: Option<String>,
    owner: Option<String>,
    finding_count: i64,
    created: String,
    updated: String,
    first_event: Option<String>,
    acknowledged: Option<String>,
    contained: Option<String>,
    resolved: Option<String>,
    closed: Option<String>,
    close_reason: Option<String>,
    /// `findings`, `manual` or `drill`.
    source: String,
    /// The clusters its findings came from, sorted.
    clusters: Vec<String>,
}

#[derive(ToSchema, Serialize)]
pub struct PlanRef {
    name: String,
    digest: String,
}

#[derive(ToSchema, Serialize)]
pub struct Tags {
    tactics: Vec<String>,
    techniques: Vec<String>,
    threat_matrix: Vec<String>,
}

#[derive(ToSchema, Serialize)]
pub struct Ioc {
    kind: String,
    value: String,
    added_by: String,
    added: String,
}

#[derive(ToSchema, Serialize)]
pub struct TimelineItem {
    at: String,
    /// The token's name, `kir` for timers, or a command's user.
    who: String,
    kind: String,
    message: String,
    #[schema(value_type = Option<Object>)]
    data: Option<serde_json::Value>,
}

/// An incident with everything recorded: `kir incident show ID --format json`.
#[derive(ToSchema, Serialize)]
pub struct IncidentRecord {
    incident: IncidentSummary,
    description: Option<String>,
    policy: Option<String>,
    plan: PlanRef,
    findings: Vec<Finding>,
    affected_objects: Vec<String>,
    tags: Tags,
    iocs: Vec<Ioc>,
    timeline: Vec<TimelineItem>,
}

/// A playbook step waiting for a role's approval.
#[derive(ToSchema, Serialize)]
pub struct Waiting {
    playbook: String,
    step: u64,
    action: String,
    title: String,
    role: String,
    requested_by: String,
    requested_at: i64,
    rejected_by: Option<String>,
    two_person: bool,
}

#[derive(ToSchema, Serialize)]
pub struct Decision {
    step: u64,
    message: String,
    member: bool,
    already: bool,
}

#[derive(ToSchema, Serialize)]
pub struct Skipped {
    /// `items[3]`, `line 7`, `the body`.
    #[serde(rename = "where")]
    location: String,
    problem: String,
}

/// What a receiver stored.
#[derive(ToSchema, Serialize)]
pub struct Received {
    stored: u64,
    duplicates: u64,
    skipped: Vec<Skipped>,
}

#[derive(ToSchema, Serialize)]
pub struct RuleSummary {
    id: String,
    title: String,
    severity: Severity,
    techniques: Vec<String>,
    tactics: Vec<String>,
    threat_matrix: Vec<String>,
}

#[derive(ToSchema, Serialize)]
pub struct Token {
    id: String,
    name: String,
    role: String,
    created_at: i64,
    created_by: String,
    revoked_at: Option<i64>,
    revoked_by: Option<String>,
    /// The cluster an ingest token sends for.
    cluster: Option<String>,
}

/// A recorded action (`kir contain`, `kir respond`, collections).
#[derive(ToSchema, Serialize)]
pub struct Action {
    id: String,
    action: String,
    target: String,
    incident_id: Option<i64>,
    dry_run: i64,
    who: String,
    at: i64,
    cluster: Option<String>,
    /// JSON text: what undo needs to restore.
    before_state: String,
    /// JSON text: the changes made.
    changes: String,
    undone_at: Option<i64>,
    undone_by: Option<String>,
}

#[derive(ToSchema, Serialize)]
pub struct OpenIncident {
    title: String,
    severity: Severity,
    #[serde(rename = "type")]
    incident_type: Option<String>,
    description: Option<String>,
    /// A role of the plan or a person.
    assign: Option<String>,
}

#[derive(ToSchema, Serialize)]
pub struct ActionBody {
    note: Option<String>,
    to: Option<String>,
    reason: Option<String>,
    text: Option<String>,
    step: Option<u64>,
}

/// An incident action answers the incident as it is now; `approve` and `reject` answer the decision.
#[derive(ToSchema, Serialize)]
#[serde(untagged)]
pub enum ActionResult {
    Incident(Box<IncidentSummary>),
    Decision(Decision),
}

#[derive(ToSchema, Serialize)]
pub struct Reloaded {
    reloaded: String,
}

struct Bearer;

impl Modify for Bearer {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new().scheme(HttpAuthScheme::Bearer).description(Some("kir token create")).build(),
            ),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "kir serve", description = "Receivers, findings, incidents, approvals: docs/serve.md"),
    paths(
        crate::api::receive_audit,
        crate::api::receive_falco,
        crate::api::findings,
        crate::api::incidents,
        crate::api::open_incident,
        crate::api::incident,
        crate::api::approvals,
        crate::api::incident_action,
        crate::api::actions,
        crate::api::response_metrics,
        crate::api::rules,
        crate::api::plan,
        crate::api::reload,
        crate::api::tokens,
    ),
    components(schemas(Action, ActionResult, ErrorBody, Finding, IncidentSummary, IncidentRecord, Waiting, Decision, Received, RuleSummary, Token, OpenIncident, ActionBody, Reloaded)),
    modifiers(&Bearer),
    security(("bearer" = []))
)]
pub struct ApiDoc;

pub fn document() -> String {
    ApiDoc::openapi().to_pretty_json().unwrap_or_default()
}
