//! Readiness: could we detect, investigate and contain an attack here? Checks over what kir can
//! read about a cluster (its objects, the API server's flags, the audit policy) and the plan,
//! grouped in three areas: *can we see*, *what is open*, *can we respond*.
//!
//! Every check says `pass`, `fail`, `warn`, or `unknown` when its input was not given or
//! cannot tell: an absent input is never a pass. The same function runs on a dump
//! (`kir readiness --from`) and on the live cluster (the binary lists [`inventory::KINDS`]
//! read-only and builds the same [`Inventory`]).

pub mod apiserver;
pub mod inventory;
mod open;
pub mod rbac;
mod respond;
pub mod rules;
mod see;

use kir_detect::Level;
use serde::Serialize;

pub use apiserver::{AuditPolicy, Flags};
pub use inventory::{DUMP_COMMAND, Inventory, KINDS};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Warn,
    Fail,
    Unknown,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Warn => "warn",
            Status::Fail => "fail",
            Status::Unknown => "unknown",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Area {
    /// Can we see? Audit logging, its policy and retention, a runtime sensor.
    See,
    /// What is open? Anonymous access, powerful bindings, exposed consoles, privileged pods.
    Open,
    /// Can we respond? The plan, its owners and escalation, kir's own RBAC.
    Respond,
}

impl Area {
    pub const ALL: [Area; 3] = [Area::See, Area::Open, Area::Respond];

    pub fn as_str(self) -> &'static str {
        match self {
            Area::See => "see",
            Area::Open => "open",
            Area::Respond => "respond",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Area::See => "Can we see?",
            Area::Open => "What is open?",
            Area::Respond => "Can we respond?",
        }
    }
}

/// One check's verdict. `objects` are `kind/namespace/name` (or `kind/name` for cluster-scoped
/// objects), lowercase kinds: `pod/shop/web`, `clusterrolebinding/anonymous-admin`.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub id: &'static str,
    pub title: &'static str,
    pub area: Area,
    pub status: Status,
    pub severity: Level,
    pub objects: Vec<String>,
    /// What was found, in a sentence.
    pub detail: String,
    /// How to fix it, in one or two lines (a command or a YAML snippet where one fits).
    pub fix: String,
}

impl Check {
    fn new(id: &'static str, title: &'static str, area: Area, severity: Level) -> Check {
        Check {
            id,
            title,
            area,
            status: Status::Unknown,
            severity,
            objects: Vec::new(),
            detail: String::new(),
            fix: String::new(),
        }
    }

    fn unknown(mut self, why: impl Into<String>) -> Check {
        self.status = Status::Unknown;
        self.detail = why.into();
        self
    }

    fn pass(mut self, detail: impl Into<String>) -> Check {
        self.status = Status::Pass;
        self.detail = detail.into();
        self
    }

    /// `fail` (or `warn`) when there are objects, else `pass` with `clean`.
    fn verdict(
        mut self,
        status: Status,
        mut objects: Vec<String>,
        detail: impl Into<String>,
        clean: &str,
        fix: &str,
    ) -> Check {
        objects.sort();
        objects.dedup();
        if objects.is_empty() {
            return self.pass(clean);
        }
        self.status = status;
        self.objects = objects;
        self.detail = detail.into();
        self.fix = fix.into();
        self
    }

    fn failed(mut self, status: Status, detail: impl Into<String>, fix: &str) -> Check {
        self.status = status;
        self.detail = detail.into();
        self.fix = fix.into();
        self
    }
}

/// What readiness reads; every part is optional.
#[derive(Default)]
pub struct Input<'a> {
    pub inventory: Option<&'a Inventory>,
    pub flags: Option<&'a Flags>,
    pub audit_policy: Option<&'a AuditPolicy>,
    /// The plan and its text (for `kir plan check`'s problems).
    pub plan: Option<(&'a kir_plan::Plan, &'a str)>,
    /// A plan was given but does not load: its errors (`plan` is then `None`).
    pub plan_errors: Vec<String>,
    /// Namespaces whose workloads are the platform's own (privileged agents, no NetworkPolicy
    /// expected). Default: [`SYSTEM_NAMESPACES`].
    pub system_namespaces: Vec<String>,
    /// Audit events per second at the busiest hour (`--event-rate`), against the webhook's
    /// batch settings.
    pub event_rate: Option<f64>,
    /// The rules that will run (the pack and the user's): checked against the audit policy.
    pub rules: Option<&'a kir_detect::RuleSet>,
    /// `--test-notify`: for each owner role of the plan, whether a test notification reached one
    /// of its channels, and what happened.
    pub notification_test: Option<Vec<Reached>>,
    /// `--sign-key`: whether the evidence signing key loads.
    pub evidence_key: Option<Result<(), String>>,
    /// Live only: the permissions the containment actions need that were refused (from
    /// SelfSubjectAccessReviews); `None` offline.
    pub permissions: Option<Vec<String>>,
}

/// A test notification to a role.
#[derive(Debug, Clone)]
pub struct Reached {
    pub role: String,
    pub delivered: bool,
    /// Per channel: delivered, failed (why) or skipped (why).
    pub detail: String,
}

/// The namespaces the platform runs in by default.
pub const SYSTEM_NAMESPACES: &[&str] = &["kube-system", "kube-public", "kube-node-lease"];

#[derive(Debug, Clone, Serialize)]
pub struct AreaScore {
    pub area: Area,
    pub score: u8,
}

/// The readiness report: the JSON contract is `{"score", "areas", "checks": [...]}`.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// 0 to 100 over the checks that could tell.
    pub score: u8,
    pub areas: Vec<AreaScore>,
    pub checks: Vec<Check>,
}

impl Report {
    /// Whether a failed check is at `level` or above (`--fail-on`).
    pub fn fails_at(&self, level: Level) -> bool {
        self.checks.iter().any(|c| c.status == Status::Fail && c.severity >= level)
    }
}

/// Runs every check.
pub fn assess(input: &Input) -> Report {
    let system: Vec<String> = if input.system_namespaces.is_empty() {
        SYSTEM_NAMESPACES.iter().map(|s| s.to_string()).collect()
    } else {
        input.system_namespaces.clone()
    };
    let mut checks = Vec::new();
    checks.extend(see::checks(input));
    checks.extend(open::checks(input, &system));
    checks.extend(respond::checks(input));
    let areas = Area::ALL
        .iter()
        .map(|a| AreaScore { area: *a, score: score(checks.iter().filter(|c| c.area == *a)) })
        .collect();
    Report { score: score(checks.iter()), areas, checks }
}

/// Severity-weighted share of the checks that could tell which pass (a warning counts half).
fn score<'a>(checks: impl Iterator<Item = &'a Check>) -> u8 {
    let (mut got, mut total) = (0.0_f64, 0.0_f64);
    for c in checks {
        let weight = match c.severity {
            Level::Critical => 4.0,
            Level::High => 3.0,
            Level::Medium => 2.0,
            Level::Low => 1.0,
            Level::Informational => 0.5,
        };
        let credit = match c.status {
            Status::Pass => 1.0,
            Status::Warn => 0.5,
            Status::Fail => 0.0,
            Status::Unknown => continue,
        };
        got += weight * credit;
        total += weight;
    }
    if total == 0.0 { 0 } else { ((got / total) * 100.0).round() as u8 }
}

/// The report as Markdown, for the security lead (HTML wraps this).
pub fn markdown(report: &Report) -> String {
    let mut out = format!("# Readiness: {}/100\n\n", report.score);
    for a in &report.areas {
        out.push_str(&format!("- {} {}/100\n", a.area.title(), a.score));
    }
    for area in Area::ALL {
        out.push_str(&format!(
            "\n## {}\n\n| status | severity | check | objects | fix |\n|---|---|---|---|---|\n",
            area.title()
        ));
        for c in report.checks.iter().filter(|c| c.area == area) {
            out.push_str(&format!(
                "| {} | {} | **{}** ({}): {} | {} | {} |\n",
                c.status.as_str(),
                c.severity,
                cell(c.title),
                c.id,
                cell(&c.detail),
                cell(&c.objects.join(", ")),
                cell(&c.fix)
            ));
        }
    }
    out
}

fn cell(text: &str) -> String {
    kir_plan::render::cell(text)
}
