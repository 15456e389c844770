//! The application layer: what a `kir` command and a `kir serve` request both do, in one place,
//! so that `kir incident ack 7` and `POST /api/v1/incidents/7/ack` cannot drift apart. The
//! binary and the server only translate arguments and requests in, and print or serialize out.
//!
//! Architecture invariant: no printing and no clock; time is an argument (milliseconds since the
//! epoch), problems are returned.

pub mod playbook;

use kir_detect::{Finding, Level};
use kir_notify::{Notice, Notifier, Retry};
use kir_plan::Plan;
use kir_report::IncidentRecord;
use kir_store::{Delivery, Fired, Incident, IngestReport, NewIncident, Orphans, Result, Store, StoreError, rfc3339};

/// Files findings into incidents as the plan says, then fires what is due and pages.
pub async fn file_findings(
    store: &Store,
    plan: &Plan,
    findings: &[Finding],
    who: &str,
    now: i64,
    notify: bool,
) -> Result<(IngestReport, usize, Sent)> {
    let report = store.ingest(plan, findings, who, now).await?;
    let (fired, sent) = tick_and_notify(store, plan, now, notify, who).await?;
    Ok((report, fired, sent))
}

/// Fires due escalations and sends their notifications; every attempt goes on the timeline.
/// Returns the number of levels fired.
pub async fn tick_and_notify(store: &Store, plan: &Plan, now: i64, notify: bool, who: &str) -> Result<(usize, Sent)> {
    let fired = store.tick(now).await?;
    let sent = send_for(store, plan, &fired, now, notify, who).await?;
    Ok((fired.len(), sent))
}

/// Sends the notifications that processes which stopped half-way left pending in the outbox
/// (see `kir_store::Orphans`), as `send_for` sends a level that fires now.
pub async fn deliver_orphans(
    store: &Store,
    plan: &Plan,
    which: Orphans<'_>,
    now: i64,
    notify: bool,
    who: &str,
) -> Result<(usize, Sent)> {
    let taken = store.take_orphans(which, now).await?;
    let sent = send_for(store, plan, &taken, now, notify, who).await?;
    Ok((taken.len(), sent))
}

/// An incident a person opens by hand (`kir incident open`, `POST /api/v1/incidents`).
#[derive(Debug, Clone)]
pub struct OpenIncident {
    pub title: String,
    /// One of the plan's types; the plan's default when `None`.
    pub incident_type: Option<String>,
    pub severity: Level,
    pub description: Option<String>,
    /// A role of the plan or a person.
    pub assign: Option<String>,
    /// When it happened (milliseconds), when known.
    pub event_time: Option<i64>,
}

/// Opens an incident by hand under the plan, then fires what is due and pages. Returns its id
/// and the levels fired.
pub async fn open_incident(
    store: &Store,
    plan: &Plan,
    open: OpenIncident,
    who: &str,
    now: i64,
) -> Result<(i64, usize, Sent)> {
    let incident_type = open.incident_type.unwrap_or_else(|| plan.routing.default_type.clone());
    if !plan.types.iter().any(|t| t.id == incident_type) {
        let known = plan.types.iter().map(|t| t.id.as_str()).collect::<Vec<_>>().join(", ");
        return Err(StoreError::Refused(format!("unknown incident type {incident_type:?} (the plan has: {known})")));
    }
    let (assign_role, assign_person) = match open.assign {
        Some(x) if plan.roles.iter().any(|r| r.id == x) => (Some(x), None),
        Some(x) => (None, Some(x)),
        None => (None, None),
    };
    let new = NewIncident {
        title: open.title,
        incident_type,
        severity: open.severity,
        description: open.description,
        assign_role,
        assign_person,
        event_time: open.event_time,
    };
    let id = store.open_incident(plan, new, who, now).await?;
    let (fired, sent) = tick_and_notify(store, plan, now, true, who).await?;
    Ok((id, fired, sent))
}

/// Response metrics over the incidents opened since `since_ms` (all, when `None`): `kir metrics`
/// and `GET /api/v1/metrics`.
pub async fn response_metrics(store: &Store, since_ms: Option<i64>) -> Result<kir_report::Metrics> {
    let incidents = store.list(&kir_store::ListFilter::default()).await?;
    let findings = store.all_findings().await?;
    Ok(kir_report::metrics(&incidents, &findings, since_ms))
}

/// An incident with everything recorded about it.
pub async fn incident_record(store: &Store, id: i64) -> Result<IncidentRecord> {
    Ok(IncidentRecord {
        incident: store.incident(id).await?,
        findings: store.findings(id).await?,
        timeline: store.timeline(id).await?,
        iocs: store.iocs(id).await?,
    })
}

fn notice_for(plan: &Plan, inc: &Incident, f: &Fired, now: i64) -> Notice {
    let policy = inc.policy();
    let policy_id = inc.policy_id.clone().unwrap_or_default();
    let reason = match policy.as_ref().and_then(|p| p.levels.get(f.level)) {
        _ if f.manual => format!("escalated by hand (level {} of {policy_id})", f.level + 1),
        Some(l) if f.level == 0 && f.round == 0 && l.after.as_secs() == 0 => {
            format!("new {} incident (level 1 of {policy_id})", inc.severity)
        }
        Some(l) => format!(
            "escalation level {} of {policy_id}: {} after opening, {}{}",
            f.level + 1,
            l.after,
            l.condition.describe(),
            if f.round > 0 { format!(" (repeat {})", f.round) } else { String::new() }
        ),
        None => format!("escalation level {} of {policy_id}", f.level + 1),
    };
    let severity: Option<Level> = inc.severity.parse().ok();
    Notice {
        incident_id: inc.id,
        title: inc.title.clone(),
        severity: inc.severity.clone(),
        severity_label: plan.severities.iter().find(|s| Some(s.id) == severity).and_then(|s| s.label.clone()),
        incident_type: inc.incident_type.clone(),
        state: inc.state.clone(),
        owner_role: inc.owner_role.clone(),
        owner: inc.owner_person.clone(),
        finding_count: inc.finding_count,
        created: rfc3339(inc.created_at),
        reason,
        roles: f.notify.clone(),
        on_call: f.notify.iter().filter_map(|r| plan.on_call(r, now).map(|c| (r.clone(), c.name.clone()))).collect(),
    }
}

/// How the notifications of a tick went.
#[derive(Debug, Default, Clone)]
pub struct Sent {
    pub delivered: usize,
    /// Channels tried that never delivered.
    pub failed: usize,
    /// Channels not configured (their environment variable is not set).
    pub skipped: usize,
    /// Timeline writes that failed (sending went on).
    pub problems: Vec<String>,
}

/// Sends the notifications of fired levels; every attempt goes on the timeline. A level whose
/// channels all failed is released, so the next tick fires it again: a page is not lost to a
/// receiver that was down for a minute.
pub async fn send_for(store: &Store, plan: &Plan, fired: &[Fired], now: i64, notify: bool, who: &str) -> Result<Sent> {
    let notifier = Notifier::new(Retry::default());
    let mut sent = Sent::default();
    // A timeline write that fails must not stop the other pages: it is said, and sending goes on.
    let mut problems = Vec::new();
    let mut note = |r: kir_store::Result<()>| {
        if let Err(e) = r {
            problems.push(format!("could not write the timeline: {e}"));
        }
    };
    for f in fired {
        if f.notify.is_empty() {
            continue;
        }
        let inc = store.incident(f.incident_id).await?;
        let notice = notice_for(plan, &inc, f, now);
        if !notify {
            let message = format!(
                "notifications for {} not sent (paging was off: --no-notify, or a drill without --notify)",
                f.notify.join(", ")
            );
            note(store.record(inc.id, who, "notification", &message, None, now).await);
            note(store.delivery_done(f, Delivery::NotSent, now).await);
            continue;
        }
        let deliveries = notifier.notify_roles(plan, &notice).await;
        let delivered = deliveries.iter().filter(|d| d.skipped.is_none() && d.delivered).count();
        let failed = deliveries.iter().filter(|d| d.skipped.is_none() && !d.delivered).count();
        let release = delivered == 0 && failed > 0 && !f.manual;
        if !release {
            // Done in the outbox before anything else is written: a process killed between
            // sending and this write leaves the level pending, and the replica that takes it over
            // sends it again. The timeline rows can wait; this one write cannot.
            let how = match (delivered, failed) {
                (0, 0) => Delivery::Skipped,
                (0, _) => Delivery::Failed,
                _ => Delivery::Delivered,
            };
            note(store.delivery_done(f, how, now).await);
        }
        for d in deliveries {
            if let Some(why) = &d.skipped {
                sent.skipped += 1;
                let message = format!("{} ({}): skipped: {why}", d.channel, d.kind);
                let data = serde_json::json!({"channel": d.channel, "kind": d.kind, "skipped": why, "roles": f.notify});
                note(store.record(inc.id, who, "notification", &message, Some(data), now).await);
                continue;
            }
            for a in &d.attempts {
                let outcome = match (&a.error, a.status) {
                    (None, Some(s)) => format!("delivered ({s})"),
                    (None, None) => "delivered".to_string(),
                    (Some(e), _) => format!("failed: {e}"),
                };
                let message = format!("{} ({}): attempt {} {outcome}", d.channel, d.kind, a.attempt);
                let data = serde_json::json!({
                    "channel": d.channel, "kind": d.kind, "attempt": a.attempt, "ok": a.ok, "status": a.status,
                    "error": a.error, "attempted_at": rfc3339(a.at_ms), "roles": f.notify, "reason": notice.reason,
                });
                note(store.record(inc.id, who, "notification", &message, Some(data), now).await);
            }
        }
        sent.delivered += delivered;
        sent.failed += failed;
        if release {
            let message =
                format!("no channel delivered escalation level {}: it fires again at the next tick", f.level + 1);
            note(store.release(f, who, &message, now).await);
        }
    }
    sent.problems = problems;
    Ok(sent)
}

/// An incident with its findings, tags, IOCs and timeline: `kir incident show --format json`
/// and `GET /api/v1/incidents/ID`.
pub fn incident_json(r: &IncidentRecord) -> serde_json::Value {
    let findings: Vec<serde_json::Value> =
        r.findings.iter().map(|f| serde_json::from_str(&f.body).unwrap_or(serde_json::Value::Null)).collect();
    let timeline: Vec<serde_json::Value> = r
        .timeline
        .iter()
        .map(|e| {
            serde_json::json!({
                "at": rfc3339(e.at), "who": e.who, "kind": e.kind, "message": e.message,
                "data": e.data.as_deref().and_then(|d| serde_json::from_str::<serde_json::Value>(d).ok()),
            })
        })
        .collect();
    let iocs: Vec<serde_json::Value> =
        r.iocs.iter().map(|i| serde_json::json!({"kind": i.kind, "value": i.value, "added_by": i.added_by, "added": rfc3339(i.added_at)})).collect();
    let objects: Vec<String> = kir_report::affected_objects(&r.findings).into_iter().map(|(o, _)| o).collect();
    let (tactics, techniques, threat_matrix) = kir_report::tags(&r.findings);
    serde_json::json!({
        "incident": r.incident.summary_json(),
        "description": r.incident.description,
        "policy": r.incident.policy_id,
        "plan": {"name": r.incident.plan_name, "digest": r.incident.plan_digest},
        "findings": findings,
        "affected_objects": objects,
        "tags": {"tactics": tactics, "techniques": techniques, "threat_matrix": threat_matrix},
        "iocs": iocs,
        "timeline": timeline,
    })
}
