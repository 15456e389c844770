//! A playbook's progress on an incident, read from its timeline (`playbook` entries for steps
//! done, failed or waiting; `approval` and `rejection` entries), and approving a step: the same
//! for `kir incident approve`, `POST /api/v1/incidents/ID/approve` and the UI's Approve button.

use std::collections::BTreeSet;

use kir_plan::Plan;
use kir_plan::schema::{Playbook, Step};
use kir_store::{Result, Store, StoreError, TimelineEntry};
use serde::Serialize;
use serde_json::{Value, json};

/// The incident's playbook, from its type.
pub fn playbook_for<'p>(plan: &'p Plan, incident_type: &str) -> std::result::Result<&'p Playbook, String> {
    let t =
        plan.types.iter().find(|t| t.id == incident_type).ok_or_else(|| {
            format!("the plan has no incident type {incident_type:?} (kir plan render lists the types)")
        })?;
    let id = t
        .playbook
        .as_deref()
        .ok_or_else(|| format!("the plan names no playbook for incident type {incident_type:?}"))?;
    plan.playbooks
        .iter()
        .find(|p| p.id == id)
        .ok_or_else(|| format!("the plan's type {incident_type:?} names playbook {id:?}, which it does not define"))
}

/// The timeline entries of `kind` about `playbook`: (step number, data, entry).
pub fn step_entries<'t>(
    timeline: &'t [TimelineEntry],
    kind: &str,
    playbook: &str,
) -> Vec<(usize, Value, &'t TimelineEntry)> {
    timeline
        .iter()
        .filter(|e| e.kind == kind)
        .filter_map(|e| {
            let data: Value = serde_json::from_str(e.data.as_deref()?).ok()?;
            if data["playbook"] != playbook {
                return None;
            }
            Some((data["step"].as_u64()? as usize, data, e))
        })
        .collect()
}

pub fn step_title(step: &Step) -> String {
    step.title.clone().unwrap_or_else(|| step.action.as_str().to_string())
}

/// Steps done (or confirmed) and steps approved, by number (from 1). An entry counts only for
/// the step it was made for: if the plan changed since and step N is now another action, an
/// approval or a "done" of the old step N does not carry over to it.
pub fn progress(timeline: &[TimelineEntry], playbook: &Playbook) -> (BTreeSet<usize>, BTreeSet<usize>) {
    let same_step = |n: usize, d: &Value| {
        playbook.steps.get(n.wrapping_sub(1)).is_some_and(|step| {
            d.get("action").is_none_or(|a| a == step.action.as_str())
                && d.get("title").is_none_or(|t| t.is_null() || t == &json!(step_title(step)))
        })
    };
    let done = step_entries(timeline, "playbook", &playbook.id)
        .into_iter()
        .filter(|(n, d, _)| d["status"] == "done" && same_step(*n, d))
        .map(|(n, _, _)| n)
        .collect();
    // An approval that does not say which action it approved (written before kir recorded it)
    // is not trusted for whatever step N is now: it must be given again.
    let approved = step_entries(timeline, "approval", &playbook.id)
        .into_iter()
        .filter(|(n, d, _)| d.get("action").is_some() && same_step(*n, d))
        .map(|(n, _, _)| n)
        .collect();
    (done, approved)
}

/// A step that waits for a role's approval.
#[derive(Debug, Clone, Serialize)]
pub struct Waiting {
    pub playbook: String,
    pub step: usize,
    pub action: String,
    pub title: String,
    /// The plan's role that must approve.
    pub role: String,
    /// Who ran the playbook to this step (asked for the approval).
    pub requested_by: String,
    pub requested_at: i64,
    /// The latest rejection since it was asked for: (who, note).
    pub rejected_by: Option<String>,
    /// Whether the plan forbids the one who asked to approve (two-person rule).
    pub two_person: bool,
}

/// The steps of the incident's playbook waiting for approval, oldest first.
pub fn waiting(plan: &Plan, incident_type: &str, timeline: &[TimelineEntry]) -> Vec<Waiting> {
    let Ok(playbook) = playbook_for(plan, incident_type) else { return Vec::new() };
    let (done, approved) = progress(timeline, playbook);
    let mut out: Vec<Waiting> = Vec::new();
    for (n, d, e) in step_entries(timeline, "playbook", &playbook.id) {
        if d["status"] != "waiting for approval" || done.contains(&n) || approved.contains(&n) {
            continue;
        }
        let Some(step) = playbook.steps.get(n.wrapping_sub(1)) else { continue };
        let Some(role) = &step.approval else { continue };
        if out.iter().any(|w| w.step == n) {
            continue;
        }
        let rejected_by = step_entries(timeline, "rejection", &playbook.id)
            .into_iter()
            .rfind(|(s, _, r)| *s == n && r.at >= e.at)
            .map(|(_, _, r)| r.who.clone());
        out.push(Waiting {
            playbook: playbook.id.clone(),
            step: n,
            action: step.action.as_str().to_string(),
            title: step_title(step),
            role: role.clone(),
            requested_by: e.who.clone(),
            requested_at: e.at,
            rejected_by,
            two_person: step.two_person,
        });
    }
    out
}

/// What an approval did.
#[derive(Debug, Clone, Serialize)]
pub struct Approved {
    pub step: usize,
    /// The timeline's words for it.
    pub message: String,
    /// Whether the approver is a listed contact (or rotation member) of the role.
    pub member: bool,
    /// The step was approved before: nothing recorded now.
    pub already: bool,
}

/// Approves step `step` (or the latest step waiting for approval) of incident `id`'s playbook as
/// `who`. Refused (`StoreError::Refused`, nothing recorded) for a step that needs no approval,
/// is done, does not exist, or, under the two-person rule, was asked for by `who`.
pub async fn approve(
    store: &Store,
    plan: &Plan,
    id: i64,
    step: Option<usize>,
    who: &str,
    note: Option<&str>,
    now: i64,
) -> Result<Approved> {
    decide(store, plan, id, step, who, note, now, true).await
}

/// Rejects a step waiting for approval: recorded on the timeline, the step still waits (a
/// playbook run stops there until someone approves it).
pub async fn reject(
    store: &Store,
    plan: &Plan,
    id: i64,
    step: Option<usize>,
    who: &str,
    note: Option<&str>,
    now: i64,
) -> Result<Approved> {
    decide(store, plan, id, step, who, note, now, false).await
}

#[allow(clippy::too_many_arguments)]
async fn decide(
    store: &Store,
    plan: &Plan,
    id: i64,
    step: Option<usize>,
    who: &str,
    note: Option<&str>,
    now: i64,
    approving: bool,
) -> Result<Approved> {
    let refused = |m: String| StoreError::Refused(m);
    let incident = store.incident(id).await?;
    let playbook = playbook_for(plan, &incident.incident_type).map_err(refused)?;
    let timeline = store.timeline(id).await?;
    let (done, approved) = progress(&timeline, playbook);
    let pending = waiting(plan, &incident.incident_type, &timeline);
    let n = match step {
        Some(n) => n,
        None => pending
            .last()
            .map(|w| w.step)
            .ok_or_else(|| refused(format!("no step of incident #{id} waits for approval; name one with --step N")))?,
    };
    let s = playbook
        .steps
        .get(n.wrapping_sub(1))
        .ok_or_else(|| refused(format!("playbook {} has steps 1 to {}, not {n}", playbook.id, playbook.steps.len())))?;
    let Some(role) = &s.approval else {
        return Err(refused(format!("step {n} ({}) needs no approval", s.action.as_str())));
    };
    if done.contains(&n) {
        return Err(refused(format!("step {n} is done already")));
    }
    if approved.contains(&n) {
        let message = format!("step {n} of incident #{id} is approved already: nothing to do");
        return Ok(Approved { step: n, message, member: true, already: true });
    }
    if approving
        && s.two_person
        && let Some(w) = pending.iter().find(|w| w.step == n)
        && w.requested_by == who
    {
        return Err(refused(format!(
            "step {n} ({}) was asked for by {who}: the plan wants another person to approve it (twoPerson)",
            s.action.as_str()
        )));
    }
    let member = plan.roles.iter().find(|r| &r.id == role).is_some_and(|r| {
        r.contacts.iter().any(|c| c.name == who || c.email.as_deref() == Some(who))
            || r.rotation.as_ref().is_some_and(|rot| rot.members.iter().any(|m| m == who))
    });
    let verb = if approving { "approved" } else { "rejected" };
    let message = format!(
        "{verb} step {n} ({}) of playbook {} as {role}{}{}",
        s.action.as_str(),
        playbook.id,
        if member { "" } else { " (not a listed contact of the role)" },
        note.map(|t| format!(": {t}")).unwrap_or_default()
    );
    let data = json!({"playbook": playbook.id, "step": n, "action": s.action.as_str(), "title": step_title(s),
        "role": role, "member": member, "note": note});
    let kind = if approving { "approval" } else { "rejection" };
    store.record(id, who, kind, &message, Some(data), now).await?;
    Ok(Approved { step: n, message, member, already: false })
}
