//! Drills: a recorded attack replayed at today's time, into incidents of its own, and measured.
//!
//! A drill moves every time of a recording by one shift, so its first event happens when the
//! drill starts and the order and gaps stay as recorded; it renames the audit IDs (`drill-N-…`)
//! so the store never takes a drill's finding for a real one. The store keeps the drill's
//! incidents apart (`kir_store::Store::ingest_drill`). What is measured:
//!
//! * **time to detect**: from the recording's first event to the event of the first finding at
//!   medium or above, in the recording's own time (the attacker's clock, the same at any speed);
//! * **time to open**: from the drill's start to its first incident, on the wall clock;
//! * then, as people work the drill's incidents (`kir incident ack`, `contain`, `resolve`),
//!   `kir drill report` measures acknowledgement, containment and resolution against the
//!   plan's `respondWithin` for each severity.

use jiff::{SignedDuration, Timestamp};
use kir_detect::{Finding, Level};
use kir_plan::Plan;
use kir_store::{Drill, Incident};
use serde::Serialize;

/// A recording bundled with kir.
pub struct Scenario {
    pub id: &'static str,
    pub title: &'static str,
    /// Whether it holds an attack (a drill of it must detect one).
    pub attack: bool,
    /// The file name it is read as (the extension tells the reader it is gzip).
    pub file_name: &'static str,
    pub bytes: &'static [u8],
    pub source: &'static str,
}

pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        id: "exposed-console-cryptojack",
        title: "An exposed admin console's cluster-admin token used to steal cloud credentials and run a miner in kube-system",
        attack: true,
        file_name: "exposed-console-cryptojack.audit.jsonl.gz",
        bytes: include_bytes!("../../../examples/exposed-console-cryptojack.audit.jsonl.gz"),
        source: "recorded by kir on a real Kubernetes 1.26 cluster",
    },
    Scenario {
        id: "ordinary-operations",
        title: "A cluster being set up and developers at work: no attack (a drill of it must stay quiet)",
        attack: false,
        file_name: "ordinary-operations.audit.jsonl.gz",
        bytes: include_bytes!("../scenarios/ordinary-operations.audit.jsonl.gz"),
        source: "the same recording, before the attacker's first request",
    },
    Scenario {
        id: "stratus-dump-secrets",
        title: "A service account lists every Secret in the cluster (Stratus k8s.credential-access.dump-secrets)",
        attack: true,
        file_name: "stratus-dump-secrets.audit.jsonl",
        bytes: include_bytes!("../scenarios/stratus-dump-secrets.audit.jsonl"),
        source: "the API calls of Stratus Red Team's technique, written by scripts/generate-drill-scenarios.py",
    },
    Scenario {
        id: "stratus-privileged-pod",
        title: "A privileged pod is created (Stratus k8s.privilege-escalation.privileged-pod)",
        attack: true,
        file_name: "stratus-privileged-pod.audit.jsonl",
        bytes: include_bytes!("../scenarios/stratus-privileged-pod.audit.jsonl"),
        source: "the API calls of Stratus Red Team's technique, written by scripts/generate-drill-scenarios.py",
    },
    Scenario {
        id: "stratus-hostpath-volume",
        title: "A pod mounts the node's root filesystem (Stratus k8s.privilege-escalation.hostpath-volume)",
        attack: true,
        file_name: "stratus-hostpath-volume.audit.jsonl",
        bytes: include_bytes!("../scenarios/stratus-hostpath-volume.audit.jsonl"),
        source: "the API calls of Stratus Red Team's technique, written by scripts/generate-drill-scenarios.py",
    },
    Scenario {
        id: "stratus-create-token",
        title: "A year-long token is minted for a kube-system controller (Stratus k8s.persistence.create-token)",
        attack: true,
        file_name: "stratus-create-token.audit.jsonl",
        bytes: include_bytes!("../scenarios/stratus-create-token.audit.jsonl"),
        source: "the API calls of Stratus Red Team's technique, written by scripts/generate-drill-scenarios.py",
    },
];

pub fn scenario(id: &str) -> Option<&'static Scenario> {
    SCENARIOS.iter().find(|s| s.id == id)
}

/// The shift that puts `first_event` at `start`.
pub fn shift_for(first_event: Timestamp, start: Timestamp) -> SignedDuration {
    start.duration_since(first_event)
}

/// Moves the findings into the drill: the recording's `first_event` happens at `start`, and
/// the gaps after it are divided by `speed` (0 keeps them: everything is filed at once anyway);
/// a time the calendar cannot hold is dropped, not wrapped. Audit IDs are renamed for drill
/// `drill`.
pub fn move_findings(findings: &mut [Finding], first_event: Timestamp, start: Timestamp, speed: f64, drill: i64) {
    let factor = if speed > 0.0 { speed } else { 1.0 };
    for f in findings {
        f.time = f.time.and_then(|t| {
            let gap = t.duration_since(first_event).as_secs_f64() / factor;
            let gap = SignedDuration::try_from_secs_f64(gap).ok()?;
            start.checked_add(gap).ok()
        });
        for id in &mut f.audit_ids {
            *id = format!("drill-{drill}-{id}");
        }
    }
}

/// Findings that count as detecting the attack: medium and above.
pub const DETECTS: Level = Level::Medium;

/// What `kir drill run --format json` prints (at least `detected`, `time_to_detect_s`,
/// `incidents`, `findings`: the contract).
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub drill: i64,
    pub scenario: String,
    pub recording: String,
    pub started_at: String,
    /// Times real time the recording was replayed at; 0 is as fast as possible.
    pub speed: f64,
    pub detected: bool,
    /// From the recording's first event to the first finding at medium or above, in recording time.
    pub time_to_detect_s: Option<f64>,
    /// From the drill's start to its first incident, on the wall clock.
    pub time_to_open_s: Option<f64>,
    pub first_finding: Option<FirstFinding>,
    /// Findings the recording gave.
    pub findings: usize,
    /// Incidents the drill opened or added to.
    pub incidents: Vec<i64>,
    pub highest_incident_severity: Option<String>,
    /// Whether real channels were paged (`--notify`).
    pub notified: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct FirstFinding {
    pub rule_id: String,
    pub title: String,
    pub severity: Level,
}

pub struct Run<'a> {
    pub drill: i64,
    pub scenario: &'a str,
    pub recording: &'a str,
    pub started_at: Timestamp,
    pub speed: f64,
    /// The recording's first event, before the shift.
    pub first_event: Option<Timestamp>,
    /// The findings before the shift (recording time).
    pub findings: &'a [Finding],
    pub incidents: &'a [Incident],
    pub notified: bool,
}

pub fn outcome(run: &Run) -> Outcome {
    let first = run.findings.iter().filter(|f| f.severity >= DETECTS && f.time.is_some()).min_by_key(|f| f.time);
    let time_to_detect_s = match (first.and_then(|f| f.time), run.first_event) {
        (Some(found), Some(start)) => Some(found.duration_since(start).as_secs_f64().max(0.0)),
        _ => None,
    };
    let opened = run.incidents.iter().map(|i| i.created_at).min();
    let highest = run.incidents.iter().filter_map(|i| i.severity.parse::<Level>().ok()).max();
    Outcome {
        drill: run.drill,
        scenario: run.scenario.to_string(),
        recording: run.recording.to_string(),
        started_at: run.started_at.to_string(),
        speed: run.speed,
        detected: first.is_some() || !run.incidents.is_empty(),
        time_to_detect_s,
        time_to_open_s: opened.map(|ms| ((ms - run.started_at.as_millisecond()) as f64 / 1000.0).max(0.0)),
        first_finding: first.map(|f| FirstFinding {
            rule_id: f.rule_id.clone(),
            title: f.title.clone(),
            severity: f.severity,
        }),
        findings: run.findings.len(),
        incidents: run.incidents.iter().map(|i| i.id).collect(),
        highest_incident_severity: highest.map(|l| l.to_string()),
        notified: run.notified,
    }
}

/// One answer of a tabletop exercise (`kir drill run --tabletop`): who did a playbook step of
/// a drill incident, what they said they did, and when.
#[derive(Debug, Clone, Serialize)]
pub struct Answer {
    pub incident: i64,
    pub step: usize,
    pub action: &'static str,
    pub who: String,
    pub answer: String,
    pub at: String,
}

/// One step of the response to a drill incident, against the plan's target.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub step: &'static str,
    /// From the incident's opening, when it happened.
    pub after_s: Option<f64>,
    /// `met`, `missed`, `pending` (not yet, and the target is not yet past) or `no target`.
    pub verdict: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct IncidentReport {
    pub id: i64,
    pub title: String,
    pub severity: String,
    pub owner: Option<String>,
    /// From the drill's start to the incident's opening.
    pub opened_after_s: f64,
    pub respond_within_s: Option<f64>,
    pub steps: Vec<Step>,
}

/// `kir drill report`: the drill's outcome and how the response went, incident by incident.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub drill: i64,
    pub scenario: String,
    pub who: String,
    pub started_at: String,
    pub outcome: Option<serde_json::Value>,
    pub incidents: Vec<IncidentReport>,
}

pub fn report(drill: &Drill, incidents: &[Incident], plan: &Plan, now_ms: i64) -> Report {
    let secs = |ms: i64| ms as f64 / 1000.0;
    let list = incidents
        .iter()
        .map(|i| {
            let target = i
                .severity
                .parse::<Level>()
                .ok()
                .and_then(|s| plan.severities.iter().find(|x| x.id == s))
                .and_then(|s| s.respond_within)
                .map(|d| d.as_millis());
            let step = |name: &'static str, at: Option<i64>, timed: bool| {
                let after = at.map(|t| (t - i.created_at).max(0));
                let verdict = match (after, target.filter(|_| timed)) {
                    (_, None) => "no target",
                    (Some(a), Some(t)) if a <= t => "met",
                    (Some(_), Some(_)) => "missed",
                    (None, Some(t)) if now_ms - i.created_at > t => "missed",
                    (None, Some(_)) => "pending",
                };
                Step { step: name, after_s: after.map(secs), verdict }
            };
            IncidentReport {
                id: i.id,
                title: i.title.clone(),
                severity: i.severity.clone(),
                owner: i.owner_person.clone().or_else(|| i.owner_role.clone()),
                opened_after_s: secs((i.created_at - drill.started_at).max(0)),
                respond_within_s: target.map(secs),
                steps: vec![
                    step("acknowledged", i.acknowledged_at, true),
                    step("contained", i.contained_at, false),
                    step("resolved", i.resolved_at, false),
                ],
            }
        })
        .collect();
    Report {
        drill: drill.id,
        scenario: drill.scenario.clone(),
        who: drill.who.clone(),
        started_at: kir_store::rfc3339(drill.started_at),
        outcome: drill.result.as_deref().and_then(|r| serde_json::from_str(r).ok()),
        incidents: list,
    }
}

fn human(s: Option<f64>) -> String {
    s.map(|s| kir_report::human_duration((s * 1000.0) as i64)).unwrap_or_else(|| "—".into())
}

/// The after-action report as Markdown (HTML wraps it).
pub fn markdown(r: &Report) -> String {
    let mut md = format!("# Drill {}: {}\n\nStarted {} by {}.\n\n", r.drill, r.scenario, r.started_at, r.who);
    if let Some(o) = &r.outcome {
        let yes = o["detected"].as_bool() == Some(true);
        md.push_str(&format!(
            "- **Detected:** {}{}\n- **Findings:** {}\n- **Incidents:** {}\n",
            if yes { "yes" } else { "**no**" },
            o["first_finding"]["title"]
                .as_str()
                .map(|t| format!(
                    ", first by \"{}\" {} after the attack began",
                    t,
                    human(o["time_to_detect_s"].as_f64())
                ))
                .unwrap_or_default(),
            o["findings"],
            o["incidents"].as_array().map(|a| a.len()).unwrap_or(0),
        ));
    }
    md.push_str("\n## The response\n\n| incident | severity | owner | opened after | acknowledged | contained | resolved | target (respond within) |\n|---|---|---|---|---|---|---|---|\n");
    for i in &r.incidents {
        let cell = |s: &Step| match s.after_s {
            Some(a) => format!("{} ({})", human(Some(a)), s.verdict),
            None => s.verdict.to_string(),
        };
        md.push_str(&format!(
            "| #{} {} | {} | {} | {} | {} | {} | {} | {} |\n",
            i.id,
            kir_plan::render::cell(&i.title),
            i.severity,
            i.owner.as_deref().unwrap_or("none"),
            human(Some(i.opened_after_s)),
            cell(&i.steps[0]),
            cell(&i.steps[1]),
            cell(&i.steps[2]),
            human(i.respond_within_s),
        ));
    }
    if r.incidents.is_empty() {
        md.push_str("| none | | | | | | | |\n");
    }
    md.push_str("\nWork the drill's incidents as real ones (`kir incident ack ID`, `kir respond ID`, `kir incident resolve ID`), then run this report again.\n");
    md
}
