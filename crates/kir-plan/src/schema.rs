//! The plan file: `apiVersion: kir.dev/v1`, `kind: ResponsePlan`. Every field a person writes
//! is here, with the names they write; meaning and defaults are documented in `docs/plan.md`.

use std::collections::BTreeMap;

use kir_detect::Level;
use serde::{Deserialize, Serialize};

pub const API_VERSION: &str = "kir.dev/v1";
pub const KIND: &str = "ResponsePlan";

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Plan {
    pub api_version: String,
    pub kind: String,
    pub metadata: Metadata,
    pub roles: Vec<Role>,
    pub severities: Vec<SeverityLevel>,
    pub types: Vec<IncidentType>,
    #[serde(default)]
    pub routing: Routing,
    pub ownership: Vec<Ownership>,
    #[serde(default)]
    pub grouping: Grouping,
    #[serde(rename = "escalationPolicies")]
    pub escalation_policies: Vec<EscalationPolicy>,
    #[serde(default)]
    pub playbooks: Vec<Playbook>,
    #[serde(default)]
    pub phases: Vec<Phase>,
    #[serde(default)]
    pub channels: Vec<Channel>,
    /// Placeholder values for the detection rules (`kir hunt --plan` uses them), e.g.
    /// `access_trusted_secret_readers`.
    #[serde(default)]
    pub detection: Detection,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Metadata {
    pub name: String,
    #[serde(default)]
    pub owner: Option<String>,
    #[serde(default)]
    pub reviewed: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Role {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub contacts: Vec<Contact>,
    #[serde(default)]
    pub rotation: Option<Rotation>,
    /// Channel ids used when this role is notified.
    #[serde(default)]
    pub notify: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Contact {
    pub name: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub chat: Option<String>,
}

/// Members take turns of `every`, starting with the first at `start`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Rotation {
    pub every: Duration,
    pub start: String,
    pub members: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SeverityLevel {
    pub id: Level,
    /// What people call it (`SEV1`).
    #[serde(default)]
    pub label: Option<String>,
    pub definition: String,
    /// How fast someone must be working on it.
    #[serde(default, rename = "respondWithin")]
    pub respond_within: Option<Duration>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct IncidentType {
    pub id: String,
    pub title: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub playbook: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Routing {
    /// Findings rated below this never open an incident; they join an open incident of their group.
    #[serde(default = "default_open_at")]
    pub open_incident_at: Level,
    /// Type of incidents no rule names.
    #[serde(default = "default_type")]
    pub default_type: String,
    #[serde(default)]
    pub rules: Vec<RoutingRule>,
}

impl Default for Routing {
    fn default() -> Self {
        Routing { open_incident_at: default_open_at(), default_type: default_type(), rules: Vec::new() }
    }
}

fn default_open_at() -> Level {
    Level::Medium
}

fn default_type() -> String {
    "suspicious-activity".into()
}

/// Every rule whose `match` holds applies: the first that names a `type` decides the type,
/// `severity` raises the incident severity to at least that level, `ignore` drops the finding.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RoutingRule {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(rename = "match")]
    pub matches: Match,
    #[serde(default, rename = "type")]
    pub incident_type: Option<String>,
    #[serde(default)]
    pub severity: Option<Level>,
    #[serde(default)]
    pub ignore: bool,
}

/// All given conditions must hold; inside one list, any entry may match.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Match {
    /// Rule id, name or title; `*` stands for any text.
    #[serde(default)]
    pub rules: Vec<String>,
    /// ATT&CK tactics (`credential-access`).
    #[serde(default)]
    pub tactics: Vec<String>,
    /// ATT&CK techniques; `T1552` also matches `T1552.001`.
    #[serde(default)]
    pub techniques: Vec<String>,
    /// Kubernetes threat matrix ids (`MS-TA9011`).
    #[serde(default)]
    pub threat_matrix: Vec<String>,
    #[serde(default)]
    pub namespaces: Vec<String>,
    /// Users; `*` stands for any text (`system:serviceaccount:ci:*`).
    #[serde(default)]
    pub actors: Vec<String>,
    /// Clusters the finding came from (`prod-*`); a finding without a cluster matches none.
    #[serde(default)]
    pub clusters: Vec<String>,
    #[serde(default)]
    pub min_severity: Option<Level>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Ownership {
    pub severities: Vec<Level>,
    pub owner: String,
    pub policy: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Grouping {
    /// What findings of one incident share: `actor`, `namespace`, `workload`, `rule`, `type`,
    /// `cluster`. An actor is one identity in every cluster (the same service account name in
    /// two clusters joins one incident); a namespace or a workload is one cluster's.
    #[serde(default = "default_group_by")]
    pub by: Vec<GroupKey>,
    /// A finding joins an open incident of its group when it is at most this much later than
    /// the incident's last finding.
    #[serde(default = "default_window")]
    pub window: Duration,
    #[serde(default)]
    pub raise: Vec<Raise>,
    /// Identities that act on behalf of others (Kubernetes controllers: a Deployment's pods are
    /// created by the replicaset-controller). Their findings join the open incident that already
    /// has findings in the same namespace, instead of opening one of their own. `*` stands for
    /// any text, anywhere (`kir_core::glob`).
    #[serde(default = "default_delegates")]
    pub delegates: Vec<String>,
    /// What else joins a finding to an open incident of another group (within `window`):
    /// `image`, the same image (by its full reference, tag or digest included) in a pod spec or
    /// a runtime alert, whatever the identity or cluster. `[]` turns linking off.
    #[serde(default = "default_link")]
    pub link: Vec<LinkKey>,
    /// Images too common to link by (`*` stands for any text): the official base images any
    /// team runs. Two identities running `busybox` are no sign of one attacker; two running
    /// `docker.io/someone/xmrig` are.
    #[serde(rename = "commonImages", default = "default_common_images")]
    pub common_images: Vec<String>,
}

impl Default for Grouping {
    fn default() -> Self {
        Grouping {
            by: default_group_by(),
            window: default_window(),
            raise: Vec::new(),
            delegates: default_delegates(),
            link: default_link(),
            common_images: default_common_images(),
        }
    }
}

fn default_common_images() -> Vec<String> {
    [
        "docker.io/library/*",
        "public.ecr.aws/docker/library/*",
        "registry.k8s.io/*",
        "k8s.gcr.io/*",
        "gcr.io/distroless/*",
        "cgr.dev/chainguard/*",
        "mcr.microsoft.com/*",
    ]
    .into_iter()
    .map(String::from)
    .collect()
}

fn default_link() -> Vec<LinkKey> {
    vec![LinkKey::Image]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkKey {
    Image,
}

fn default_delegates() -> Vec<String> {
    vec![
        "system:kube-controller-manager".into(),
        "system:serviceaccount:kube-system:*-controller".into(),
        "system:serviceaccount:kube-system:generic-garbage-collector".into(),
    ]
}

fn default_group_by() -> Vec<GroupKey> {
    vec![GroupKey::Actor]
}

fn default_window() -> Duration {
    Duration::from_secs(6 * 3600)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupKey {
    Actor,
    Namespace,
    Workload,
    Rule,
    Type,
    Cluster,
}

/// Raises an incident's severity when its findings show the shape of an attack chain.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Raise {
    pub to: Level,
    #[serde(rename = "whenDistinctTactics", default)]
    pub when_distinct_tactics: Option<usize>,
    #[serde(rename = "whenDistinctRules", default)]
    pub when_distinct_rules: Option<usize>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EscalationPolicy {
    pub id: String,
    #[serde(default)]
    pub description: Option<String>,
    pub levels: Vec<EscalationLevel>,
    #[serde(default)]
    pub repeat: Option<Repeat>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EscalationLevel {
    /// Time since the incident was opened (or re-opened).
    pub after: Duration,
    #[serde(default, rename = "if")]
    pub condition: Condition,
    /// Roles to notify.
    #[serde(default)]
    pub notify: Vec<String>,
    /// Hand the incident to this role.
    #[serde(default)]
    pub assign: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Condition {
    #[default]
    Always,
    NotAcknowledged,
    NotContained,
    NotResolved,
}

impl Condition {
    pub fn describe(self) -> &'static str {
        match self {
            Condition::Always => "always",
            Condition::NotAcknowledged => "if not acknowledged",
            Condition::NotContained => "if not contained",
            Condition::NotResolved => "if not resolved",
        }
    }
}

/// After the last level, the levels run again `times` more times, `after` the last one.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Repeat {
    pub times: u32,
    pub after: Duration,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Playbook {
    pub id: String,
    pub title: String,
    pub steps: Vec<Step>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    pub action: Action,
    #[serde(default)]
    pub title: Option<String>,
    /// Role that must approve before the step runs (`kir incident approve`).
    #[serde(default)]
    pub approval: Option<String>,
    /// Two-person rule: whoever ran the playbook to this step may not approve it.
    #[serde(default, rename = "twoPerson")]
    pub two_person: bool,
    /// Free-form parameters for the action (a later release executes them).
    #[serde(default)]
    pub with: BTreeMap<String, String>,
}

/// What a playbook step does. Evidence-collecting actions must come before destructive ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    CollectEvidence,
    SnapshotVolumes,
    SnapshotNode,
    Label,
    IsolatePod,
    CordonNode,
    QuarantineNode,
    DrainNode,
    RevokeServiceaccount,
    RevokeUser,
    ScaleDown,
    SuspendCronjob,
    DeletePod,
    Notify,
    Manual,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::CollectEvidence => "collect-evidence",
            Action::SnapshotVolumes => "snapshot-volumes",
            Action::SnapshotNode => "snapshot-node",
            Action::Label => "label",
            Action::IsolatePod => "isolate-pod",
            Action::CordonNode => "cordon-node",
            Action::QuarantineNode => "quarantine-node",
            Action::DrainNode => "drain-node",
            Action::RevokeServiceaccount => "revoke-serviceaccount",
            Action::RevokeUser => "revoke-user",
            Action::ScaleDown => "scale-down",
            Action::SuspendCronjob => "suspend-cronjob",
            Action::DeletePod => "delete-pod",
            Action::Notify => "notify",
            Action::Manual => "manual",
        }
    }

    /// Collects what a later step could destroy.
    pub fn collects_evidence(self) -> bool {
        matches!(self, Action::CollectEvidence | Action::SnapshotVolumes | Action::SnapshotNode)
    }

    /// Ends processes or removes the pod: memory, `/proc` and the container's writable layer go with it.
    pub fn destroys_evidence(self) -> bool {
        matches!(self, Action::DeletePod | Action::DrainNode | Action::ScaleDown)
    }

    /// Stops the attacker's access or spread: after it, the incident can be called contained.
    pub fn contains(self) -> bool {
        matches!(
            self,
            Action::IsolatePod
                | Action::CordonNode
                | Action::QuarantineNode
                | Action::DrainNode
                | Action::RevokeServiceaccount
                | Action::RevokeUser
                | Action::ScaleDown
                | Action::SuspendCronjob
                | Action::DeletePod
        )
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Phase {
    pub id: String,
    pub title: String,
    #[serde(default)]
    pub goal: Option<String>,
    /// Role id → what that role does in this phase.
    #[serde(default)]
    pub duties: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Channel {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: ChannelKind,
    /// Endpoint (webhook URL, PagerDuty events URL); `urlEnv` names an environment variable instead.
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub url_env: Option<String>,
    /// HMAC secret of a `webhook` channel, from this environment variable.
    #[serde(default)]
    pub secret_env: Option<String>,
    /// PagerDuty integration (routing) key, from this environment variable.
    #[serde(default)]
    pub routing_key_env: Option<String>,
    #[serde(default)]
    pub smtp: Option<Smtp>,
    #[serde(default)]
    pub from: Option<String>,
    /// Fixed recipients; by default the notified role's contacts with an email address.
    #[serde(default)]
    pub to: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelKind {
    Slack,
    Webhook,
    Pagerduty,
    Email,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Smtp {
    #[serde(default)]
    pub host: Option<String>,
    /// The host from this environment variable instead.
    #[serde(default)]
    pub host_env: Option<String>,
    #[serde(default = "default_smtp_port")]
    pub port: u16,
    /// The port from this environment variable, when it is set.
    #[serde(default)]
    pub port_env: Option<String>,
    /// `none`, `starttls` or `tls`.
    #[serde(default = "default_smtp_tls")]
    pub tls: String,
    /// The TLS mode from this environment variable, when it is set.
    #[serde(default)]
    pub tls_env: Option<String>,
    #[serde(default)]
    pub username_env: Option<String>,
    #[serde(default)]
    pub password_env: Option<String>,
}

fn default_smtp_port() -> u16 {
    587
}

fn default_smtp_tls() -> String {
    "starttls".into()
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Detection {
    /// Empty (only comments under the key) is the same as none.
    #[serde(default)]
    pub placeholders: Option<BTreeMap<String, Vec<String>>>,
}

/// A length of time: the one duration of kir (`kir_core::Duration`).
pub use kir_core::Duration;
