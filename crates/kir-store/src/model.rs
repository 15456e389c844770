//! Incidents as people work them: open, list, show, acknowledge, assign, note, escalate,
//! contain, resolve, close, re-open; escalation ticks.

use std::fmt;
use std::str::FromStr;

use kir_plan::{EscalationPolicy, EscalationState, Plan};
use serde::Serialize;
use sqlx::{AnyConnection, FromRow};

use crate::{Result, Store, StoreError, rfc3339};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    New,
    Acknowledged,
    Contained,
    Resolved,
    Closed,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::New => "new",
            State::Acknowledged => "acknowledged",
            State::Contained => "contained",
            State::Resolved => "resolved",
            State::Closed => "closed",
        }
    }

    pub fn is_open(self) -> bool {
        matches!(self, State::New | State::Acknowledged | State::Contained)
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for State {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "new" => State::New,
            "acknowledged" => State::Acknowledged,
            "contained" => State::Contained,
            "resolved" => State::Resolved,
            "closed" => State::Closed,
            other => return Err(format!("unknown state {other:?} (new, acknowledged, contained, resolved, closed)")),
        })
    }
}

/// Why an incident was closed (TheHive's resolution status).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CloseReason {
    TruePositive,
    FalsePositive,
    Benign,
    Duplicate,
}

impl CloseReason {
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::TruePositive => "true-positive",
            CloseReason::FalsePositive => "false-positive",
            CloseReason::Benign => "benign",
            CloseReason::Duplicate => "duplicate",
        }
    }
}

impl FromStr for CloseReason {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "true-positive" => CloseReason::TruePositive,
            "false-positive" => CloseReason::FalsePositive,
            "benign" => CloseReason::Benign,
            "duplicate" => CloseReason::Duplicate,
            other => {
                return Err(format!("unknown reason {other:?} (true-positive, false-positive, benign, duplicate)"));
            }
        })
    }
}

/// One incident row. Times are milliseconds since the epoch.
#[derive(Debug, Clone, FromRow)]
pub struct Incident {
    pub id: i64,
    pub title: String,
    pub incident_type: String,
    pub severity: String,
    pub state: String,
    pub owner_role: Option<String>,
    pub owner_person: Option<String>,
    pub group_key: Option<String>,
    pub source: String,
    pub reported_by: String,
    pub description: Option<String>,
    pub plan_name: String,
    pub plan_digest: String,
    pub policy_id: Option<String>,
    pub policy_json: Option<String>,
    pub cycle: i64,
    pub cycle_started_at: i64,
    pub first_event_at: Option<i64>,
    pub last_event_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    pub acknowledged_at: Option<i64>,
    pub contained_at: Option<i64>,
    pub resolved_at: Option<i64>,
    pub closed_at: Option<i64>,
    pub close_reason: Option<String>,
    pub finding_count: i64,
    /// The drill this incident was opened by (`kir drill run`); `None` for a real incident.
    pub drill_id: Option<i64>,
    /// The clusters its findings came from, sorted, comma-separated; `None` when none named one.
    pub clusters: Option<String>,
}

macro_rules! incident_columns {
    () => {
        "id, title, incident_type, severity, state, owner_role, owner_person, group_key, \
source, reported_by, description, plan_name, plan_digest, policy_id, policy_json, cycle, cycle_started_at, first_event_at, \
last_event_at, created_at, updated_at, acknowledged_at, contained_at, resolved_at, closed_at, close_reason, finding_count, drill_id, clusters"
    };
}
pub(crate) use incident_columns;

impl Incident {
    /// The clusters its findings came from.
    pub fn cluster_list(&self) -> impl Iterator<Item = &str> {
        self.clusters.as_deref().unwrap_or("").split(',').filter(|c| !c.is_empty())
    }

    /// Opened from findings (a hunt, a live stream, or a drill), not reported by a person.
    pub fn from_findings(&self) -> bool {
        matches!(self.source.as_str(), "findings" | "drill")
    }

    pub fn state(&self) -> State {
        self.state.parse().unwrap_or(State::New)
    }

    pub fn policy(&self) -> Option<EscalationPolicy> {
        self.policy_json.as_deref().and_then(|j| serde_json::from_str(j).ok())
    }

    /// The contract of `kir incident list --format json`.
    pub fn summary_json(&self) -> serde_json::Value {
        serde_json::json!({
            "id": self.id,
            "title": self.title,
            "type": self.incident_type,
            "severity": self.severity,
            "state": self.state,
            "owner_role": self.owner_role,
            "owner": self.owner_person,
            "finding_count": self.finding_count,
            "created": rfc3339(self.created_at),
            "updated": rfc3339(self.updated_at),
            "first_event": self.first_event_at.map(rfc3339),
            "acknowledged": self.acknowledged_at.map(rfc3339),
            "contained": self.contained_at.map(rfc3339),
            "resolved": self.resolved_at.map(rfc3339),
            "closed": self.closed_at.map(rfc3339),
            "close_reason": self.close_reason,
            "source": self.source,
            "clusters": self.cluster_list().collect::<Vec<_>>(),
        })
    }
}

#[derive(Debug, Clone, FromRow, Serialize)]
pub struct TimelineEntry {
    pub id: i64,
    pub incident_id: i64,
    pub at: i64,
    pub who: String,
    pub kind: String,
    pub message: String,
    pub data: Option<String>,
}

#[derive(Debug, Clone, FromRow)]
pub struct StoredFinding {
    pub id: i64,
    pub incident_id: i64,
    pub fingerprint: String,
    pub rule_id: String,
    pub title: String,
    pub severity: String,
    pub routed_severity: String,
    pub event_time: Option<i64>,
    pub discovered_at: i64,
    pub actor: String,
    pub namespace: Option<String>,
    pub resource: Option<String>,
    pub name: Option<String>,
    pub tactics: String,
    pub body: String,
}

#[derive(Debug, Clone, FromRow, Serialize)]
pub struct Ioc {
    pub incident_id: i64,
    pub kind: String,
    pub value: String,
    pub added_at: i64,
    pub added_by: String,
}

/// A person's report: "something is wrong".
#[derive(Debug, Clone)]
pub struct NewIncident {
    pub title: String,
    pub incident_type: String,
    pub severity: kir_detect::Level,
    pub description: Option<String>,
    /// A role id or a person's name; `None` lets the plan decide by severity.
    pub assign_role: Option<String>,
    pub assign_person: Option<String>,
    /// When the first warning sign was seen, if the reporter knows.
    pub event_time: Option<i64>,
}

/// Filters of `kir incident list`.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    pub states: Vec<State>,
    pub open_only: bool,
    pub min_severity: Option<kir_detect::Level>,
    pub incident_type: Option<String>,
    pub owner: Option<String>,
    pub since_ms: Option<i64>,
    /// Only incidents with a finding from this cluster.
    pub cluster: Option<String>,
}

/// An escalation level that fired: who must hear about it.
#[derive(Debug, Clone, Serialize)]
pub struct Fired {
    pub incident_id: i64,
    pub cycle: i64,
    pub round: u32,
    pub level: usize,
    pub due_ms: i64,
    pub manual: bool,
    pub notify: Vec<String>,
    pub assign: Option<String>,
}

impl Store {
    pub async fn incident(&self, id: i64) -> Result<Incident> {
        let mut conn = self.pool.acquire().await?;
        fetch_incident(&mut conn, id).await
    }

    pub async fn list(&self, filter: &ListFilter) -> Result<Vec<Incident>> {
        let mut rows: Vec<Incident> =
            sqlx::query_as(concat!("SELECT ", incident_columns!(), " FROM incidents ORDER BY id"))
                .fetch_all(&self.pool)
                .await?;
        rows.retain(|i| {
            let state = i.state();
            (filter.states.is_empty() || filter.states.contains(&state))
                && (!filter.open_only || state.is_open())
                && filter.min_severity.is_none_or(|min| i.severity.parse::<kir_detect::Level>().is_ok_and(|s| s >= min))
                && filter.incident_type.as_ref().is_none_or(|t| &i.incident_type == t)
                && filter
                    .owner
                    .as_ref()
                    .is_none_or(|o| i.owner_role.as_ref() == Some(o) || i.owner_person.as_ref() == Some(o))
                && filter.since_ms.is_none_or(|s| i.created_at >= s)
                && filter.cluster.as_ref().is_none_or(|c| i.cluster_list().any(|ic| ic == c))
        });
        Ok(rows)
    }

    pub async fn timeline(&self, id: i64) -> Result<Vec<TimelineEntry>> {
        Ok(sqlx::query_as(
            "SELECT id, incident_id, at, who, kind, message, data FROM timeline WHERE incident_id = $1 ORDER BY at, id",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn findings(&self, id: i64) -> Result<Vec<StoredFinding>> {
        Ok(sqlx::query_as(
            "SELECT id, incident_id, fingerprint, rule_id, title, severity, routed_severity, event_time, discovered_at, \
             actor, namespace, resource, name, tactics, body FROM findings WHERE incident_id = $1 ORDER BY event_time IS NULL, event_time, id",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Every stored finding with its incident's close reason (for false-positive metrics).
    pub async fn all_findings(&self) -> Result<Vec<StoredFinding>> {
        Ok(sqlx::query_as(
            "SELECT id, incident_id, fingerprint, rule_id, title, severity, routed_severity, event_time, discovered_at, \
             actor, namespace, resource, name, tactics, body FROM findings ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn iocs(&self, id: i64) -> Result<Vec<Ioc>> {
        Ok(sqlx::query_as(
            "SELECT incident_id, kind, value, added_at, added_by FROM iocs WHERE incident_id = $1 ORDER BY kind, value",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn add_ioc(&self, id: i64, kind: &str, value: &str, who: &str, now: i64) -> Result<bool> {
        let (kind, value, who) = (kind.to_string(), value.to_string(), who.to_string());
        {
            let mut tx = self.lock().await?;
            let r = async {
                let c = tx.conn();
                fetch_incident(c, id).await?;
                let added = insert_ioc(c, id, &kind, &value, &who, now).await?;
                if added {
                    append(c, id, now, &who, "ioc", &format!("indicator added: {kind} {value}"), None).await?;
                    touch(c, id, now).await?;
                }
                Ok(added)
            }
            .await;
            tx.finish(r).await
        }
    }

    /// Opens an incident a person reported. The plan decides the owner unless one is given.
    pub async fn open_incident(&self, plan: &Plan, new: NewIncident, who: &str, now: i64) -> Result<i64> {
        let ownership = plan.ownership_for(new.severity).cloned();
        let policy =
            ownership.as_ref().and_then(|o| plan.escalation_policies.iter().find(|p| p.id == o.policy)).cloned();
        let owner_role = new.assign_role.clone().or_else(|| ownership.as_ref().map(|o| o.owner.clone()));
        let plan_name = plan.metadata.name.clone();
        let digest = plan.digest();
        let who = who.to_string();
        {
            let mut tx = self.lock().await?;
            let r = async { let c = tx.conn();
                let policy_json = policy.as_ref().map(|p| serde_json::to_string(p).unwrap_or_default());
                let (id,): (i64,) = sqlx::query_as(
                    "INSERT INTO incidents (title, incident_type, severity, state, owner_role, owner_person, group_key, \
                     source, reported_by, description, plan_name, plan_digest, policy_id, policy_json, cycle, \
                     cycle_started_at, first_event_at, last_event_at, created_at, updated_at, finding_count) \
                     VALUES ($1, $2, $3, 'new', $4, $5, NULL, 'manual', $6, $7, $8, $9, $10, $11, 0, $12, $13, $14, $15, $16, 0) \
                     RETURNING id",
                )
                .bind(&new.title)
                .bind(&new.incident_type)
                .bind(new.severity.as_str())
                .bind(&owner_role)
                .bind(&new.assign_person)
                .bind(&who)
                .bind(&new.description)
                .bind(&plan_name)
                .bind(&digest)
                .bind(policy.as_ref().map(|p| p.id.clone()))
                .bind(&policy_json)
                .bind(now)
                .bind(new.event_time)
                .bind(new.event_time)
                .bind(now)
                .bind(now)
                .fetch_one(&mut *c)
                .await?;
                let mut message = format!(
                    "incident opened by {who}: {} ({} {})",
                    new.title, new.severity, new.incident_type
                );
                if let Some(r) = &owner_role {
                    message.push_str(&format!("; owner {r}"));
                }
                if let Some(p) = &new.assign_person {
                    message.push_str(&format!("; assigned to {p}"));
                }
                let data = serde_json::json!({"plan": plan_name, "plan_digest": digest, "policy": policy.as_ref().map(|p| &p.id)});
                append(c, id, now, &who, "opened", &message, Some(data)).await?;
                Ok(id)
            }.await;
            tx.finish(r).await
        }
    }

    pub async fn acknowledge(&self, id: i64, who: &str, now: i64) -> Result<Incident> {
        self.transition(id, who, now, Transition::Acknowledge, None).await
    }

    pub async fn contain(&self, id: i64, who: &str, now: i64, note: Option<String>) -> Result<Incident> {
        self.transition(id, who, now, Transition::Contain, note).await
    }

    pub async fn resolve(&self, id: i64, who: &str, now: i64, note: Option<String>) -> Result<Incident> {
        self.transition(id, who, now, Transition::Resolve, note).await
    }

    pub async fn close(
        &self,
        id: i64,
        reason: CloseReason,
        who: &str,
        now: i64,
        note: Option<String>,
    ) -> Result<Incident> {
        self.transition(id, who, now, Transition::Close(reason), note).await
    }

    pub async fn reopen(&self, id: i64, who: &str, now: i64, note: Option<String>) -> Result<Incident> {
        self.transition(id, who, now, Transition::Reopen, note).await
    }

    async fn transition(&self, id: i64, who: &str, now: i64, t: Transition, note: Option<String>) -> Result<Incident> {
        let who = who.to_string();
        {
            let mut tx = self.lock().await?;
            let r = async { let c = tx.conn();
                let inc = fetch_incident(c, id).await?;
                let state = inc.state();
                let refuse = |what: &str| Err(StoreError::Refused(format!("incident {id} is {state}: cannot {what}")));
                let (sql, kind, message): (&str, &str, String) = match t {
                    Transition::Acknowledge => {
                        if state != State::New {
                            return refuse("acknowledge it (already past new)");
                        }
                        ("UPDATE incidents SET state = 'acknowledged', acknowledged_at = $2, updated_at = $2 WHERE id = $1",
                         "acknowledged", format!("acknowledged by {who}"))
                    }
                    Transition::Contain => {
                        if !matches!(state, State::New | State::Acknowledged) {
                            return refuse("mark it contained");
                        }
                        ("UPDATE incidents SET state = 'contained', contained_at = $2, acknowledged_at = COALESCE(acknowledged_at, $2), updated_at = $2 WHERE id = $1",
                         "contained", format!("contained (reported by {who})"))
                    }
                    Transition::Resolve => {
                        if !state.is_open() {
                            return refuse("resolve it");
                        }
                        ("UPDATE incidents SET state = 'resolved', resolved_at = $2, acknowledged_at = COALESCE(acknowledged_at, $2), updated_at = $2 WHERE id = $1",
                         "resolved", format!("resolved by {who}"))
                    }
                    Transition::Close(_) => {
                        if state == State::Closed {
                            return refuse("close it again");
                        }
                        ("UPDATE incidents SET state = 'closed', closed_at = $2, close_reason = $3, resolved_at = COALESCE(resolved_at, $2), acknowledged_at = COALESCE(acknowledged_at, $2), updated_at = $2 WHERE id = $1",
                         "closed", String::new())
                    }
                    Transition::Reopen => {
                        if state.is_open() {
                            return refuse("re-open it (it is open)");
                        }
                        ("UPDATE incidents SET state = 'new', cycle = cycle + 1, cycle_started_at = $2, acknowledged_at = NULL, contained_at = NULL, resolved_at = NULL, closed_at = NULL, close_reason = NULL, updated_at = $2 WHERE id = $1",
                         "reopened", format!("re-opened by {who}; its escalation policy starts again"))
                    }
                };
                let reason = match t {
                    Transition::Close(r) => Some(r.as_str()),
                    _ => None,
                };
                let mut q = sqlx::query(sql).bind(id).bind(now);
                if let Some(r) = reason {
                    q = q.bind(r);
                }
                q.execute(&mut *c).await?;
                let message = match reason {
                    Some(r) => format!("closed by {who} as {r}"),
                    None => message,
                };
                let message = match &note {
                    Some(n) => format!("{message}: {n}"),
                    None => message,
                };
                let data = serde_json::json!({"from": state.as_str()});
                append(c, id, now, &who, kind, &message, Some(data)).await?;
                fetch_incident(c, id).await
            }.await;
            tx.finish(r).await
        }
    }

    /// Hands the incident to a role of the plan or to a named person.
    pub async fn assign(
        &self,
        id: i64,
        role: Option<String>,
        person: Option<String>,
        who: &str,
        now: i64,
    ) -> Result<Incident> {
        let who = who.to_string();
        {
            let mut tx = self.lock().await?;
            let r = async {
                let c = tx.conn();
                let inc = fetch_incident(c, id).await?;
                if let Some(r) = &role {
                    sqlx::query(
                        "UPDATE incidents SET owner_role = $2, owner_person = NULL, updated_at = $3 WHERE id = $1",
                    )
                    .bind(id)
                    .bind(r)
                    .bind(now)
                    .execute(&mut *c)
                    .await?;
                    let from = inc.owner_role.clone().unwrap_or_else(|| "nobody".into());
                    append(c, id, now, &who, "assigned", &format!("assigned to role {r} (was {from}) by {who}"), None)
                        .await?;
                }
                if let Some(p) = &person {
                    sqlx::query("UPDATE incidents SET owner_person = $2, updated_at = $3 WHERE id = $1")
                        .bind(id)
                        .bind(p)
                        .bind(now)
                        .execute(&mut *c)
                        .await?;
                    append(c, id, now, &who, "assigned", &format!("assigned to {p} by {who}"), None).await?;
                }
                fetch_incident(c, id).await
            }
            .await;
            tx.finish(r).await
        }
    }

    pub async fn note(&self, id: i64, text: &str, who: &str, now: i64) -> Result<()> {
        let (text, who) = (text.to_string(), who.to_string());
        {
            let mut tx = self.lock().await?;
            let r = async {
                let c = tx.conn();
                fetch_incident(c, id).await?;
                append(c, id, now, &who, "note", &text, None).await?;
                touch(c, id, now).await
            }
            .await;
            tx.finish(r).await
        }
    }

    /// Appends an entry to an incident's timeline (actions, evidence, notification attempts).
    pub async fn record(
        &self,
        id: i64,
        who: &str,
        kind: &str,
        message: &str,
        data: Option<serde_json::Value>,
        now: i64,
    ) -> Result<()> {
        let (who, kind, message) = (who.to_string(), kind.to_string(), message.to_string());
        {
            let mut tx = self.lock().await?;
            let r = async {
                let c = tx.conn();
                fetch_incident(c, id).await?;
                append(c, id, now, &who, &kind, &message, data).await?;
                touch(c, id, now).await
            }
            .await;
            tx.finish(r).await
        }
    }

    /// Fires every escalation level due at `now` on every open incident, once each, and says
    /// who must be notified. Safe to run from several processes at once.
    pub async fn tick(&self, now: i64) -> Result<Vec<Fired>> {
        let owner = self.instance.clone();
        {
            let mut tx = self.lock().await?;
            let r = async {
                let c = tx.conn();
                let open: Vec<Incident> = sqlx::query_as(concat!(
                    "SELECT ",
                    incident_columns!(),
                    " FROM incidents WHERE state IN ('new', 'acknowledged', 'contained') ORDER BY id"
                ))
                .fetch_all(&mut *c)
                .await?;
                let mut fired = Vec::new();
                for inc in open {
                    let Some(policy) = inc.policy() else { continue };
                    let state = escalation_state(c, &inc).await?;
                    for due in kir_plan::due(&policy, &state, now) {
                        if let Some(f) =
                            fire(c, &inc, &policy, due.round, due.level, due.due_ms, false, "kir", &owner, now).await?
                        {
                            fired.push(f);
                        }
                    }
                }
                Ok(fired)
            }
            .await;
            tx.finish(r).await
        }
    }

    /// Gives back a fired level whose notifications all failed, so the next tick fires it again.
    pub async fn release(&self, fired: &Fired, who: &str, message: &str, now: i64) -> Result<()> {
        let mut tx = self.lock().await?;
        let r = async {
            let c = tx.conn();
            sqlx::query("DELETE FROM outbox WHERE incident_id = $1 AND cycle = $2 AND round = $3 AND level = $4")
                .bind(fired.incident_id)
                .bind(fired.cycle)
                .bind(fired.round as i64)
                .bind(fired.level as i64)
                .execute(&mut *c)
                .await?;
            sqlx::query("DELETE FROM escalations WHERE incident_id = $1 AND cycle = $2 AND round = $3 AND level = $4")
                .bind(fired.incident_id)
                .bind(fired.cycle)
                .bind(fired.round as i64)
                .bind(fired.level as i64)
                .execute(&mut *c)
                .await?;
            append(c, fired.incident_id, now, who, "notification", message, None).await
        }
        .await;
        tx.finish(r).await
    }

    /// Fires the next level of the incident's policy now, whatever its delay and condition.
    pub async fn escalate(&self, id: i64, who: &str, now: i64) -> Result<Fired> {
        let who = who.to_string();
        let owner = self.instance.clone();
        {
            let mut tx = self.lock().await?;
            let r = async {
                let c = tx.conn();
                let inc = fetch_incident(c, id).await?;
                if !inc.state().is_open() {
                    return Err(StoreError::Refused(format!("incident {id} is {}: re-open it first", inc.state)));
                }
                let Some(policy) = inc.policy() else {
                    return Err(StoreError::Refused(format!("incident {id} has no escalation policy")));
                };
                let state = escalation_state(c, &inc).await?;
                // The first level after the furthest one already fired: escalating never goes back
                // to a level a condition skipped.
                let order: Vec<(u32, usize)> =
                    kir_plan::schedule(&policy, inc.cycle_started_at).map(|(round, level, _)| (round, level)).collect();
                let furthest = order.iter().rposition(|k| state.fired.contains(k));
                let next = order.iter().skip(furthest.map_or(0, |i| i + 1)).copied().next();
                let Some((round, level)) = next else {
                    return Err(StoreError::Refused(format!(
                        "incident {id} has used every level of policy {}: assign it by hand",
                        policy.id
                    )));
                };
                fire(c, &inc, &policy, round, level, now, true, &who, &owner, now)
                    .await?
                    .ok_or_else(|| StoreError::Refused("another kir escalated it at the same moment".into()))
            }
            .await;
            tx.finish(r).await
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Transition {
    Acknowledge,
    Contain,
    Resolve,
    Close(CloseReason),
    Reopen,
}

pub(crate) async fn fetch_incident(c: &mut AnyConnection, id: i64) -> Result<Incident> {
    sqlx::query_as(concat!("SELECT ", incident_columns!(), " FROM incidents WHERE id = $1"))
        .bind(id)
        .fetch_optional(&mut *c)
        .await?
        .ok_or(StoreError::NoIncident(id))
}

pub(crate) async fn append(
    c: &mut AnyConnection,
    id: i64,
    at: i64,
    who: &str,
    kind: &str,
    message: &str,
    data: Option<serde_json::Value>,
) -> Result<()> {
    sqlx::query("INSERT INTO timeline (incident_id, at, who, kind, message, data) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(id)
        .bind(at)
        .bind(who)
        .bind(kind)
        .bind(message)
        .bind(data.map(|d| d.to_string()))
        .execute(&mut *c)
        .await?;
    Ok(())
}

pub(crate) async fn touch(c: &mut AnyConnection, id: i64, now: i64) -> Result<()> {
    sqlx::query("UPDATE incidents SET updated_at = $2 WHERE id = $1").bind(id).bind(now).execute(&mut *c).await?;
    Ok(())
}

pub(crate) async fn insert_ioc(
    c: &mut AnyConnection,
    id: i64,
    kind: &str,
    value: &str,
    who: &str,
    now: i64,
) -> Result<bool> {
    let done = sqlx::query(
        "INSERT INTO iocs (incident_id, kind, value, added_at, added_by) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
    )
    .bind(id)
    .bind(kind)
    .bind(value)
    .bind(now)
    .bind(who)
    .execute(&mut *c)
    .await?;
    Ok(done.rows_affected() == 1)
}

async fn escalation_state(c: &mut AnyConnection, inc: &Incident) -> Result<EscalationState> {
    let fired: Vec<(i64, i64)> =
        sqlx::query_as("SELECT round, level FROM escalations WHERE incident_id = $1 AND cycle = $2")
            .bind(inc.id)
            .bind(inc.cycle)
            .fetch_all(&mut *c)
            .await?;
    Ok(EscalationState {
        cycle_started_ms: inc.cycle_started_at,
        acknowledged: inc.acknowledged_at.is_some(),
        contained: inc.contained_at.is_some(),
        resolved: inc.resolved_at.is_some(),
        fired: fired.into_iter().map(|(r, l)| (r as u32, l as usize)).collect(),
    })
}

#[allow(clippy::too_many_arguments)]
async fn fire(
    c: &mut AnyConnection,
    inc: &Incident,
    policy: &EscalationPolicy,
    round: u32,
    level: usize,
    due_ms: i64,
    manual: bool,
    who: &str,
    owner: &str,
    now: i64,
) -> Result<Option<Fired>> {
    let claimed = sqlx::query(
        "INSERT INTO escalations (incident_id, cycle, round, level, fired_at, manual) VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT DO NOTHING",
    )
    .bind(inc.id)
    .bind(inc.cycle)
    .bind(round as i64)
    .bind(level as i64)
    .bind(now)
    .bind(manual as i64)
    .execute(&mut *c)
    .await?;
    if claimed.rows_affected() != 1 {
        return Ok(None);
    }
    let spec = &policy.levels[level];
    if !spec.notify.is_empty() {
        sqlx::query(
            "INSERT INTO outbox (incident_id, cycle, round, level, state, owner, claimed_at) \
             VALUES ($1, $2, $3, $4, 'pending', $5, $6)",
        )
        .bind(inc.id)
        .bind(inc.cycle)
        .bind(round as i64)
        .bind(level as i64)
        .bind(owner)
        .bind(now)
        .execute(&mut *c)
        .await?;
    }
    if let Some(role) = &spec.assign
        && inc.owner_role.as_deref() != Some(role)
    {
        sqlx::query("UPDATE incidents SET owner_role = $2, updated_at = $3 WHERE id = $1")
            .bind(inc.id)
            .bind(role)
            .bind(now)
            .execute(&mut *c)
            .await?;
    }
    let mut message = if manual {
        format!("escalated by {who} to level {} of {}", level + 1, policy.id)
    } else {
        format!(
            "escalation level {} of {} ({} after opening, {}){}",
            level + 1,
            policy.id,
            spec.after,
            spec.condition.describe(),
            if round > 0 { format!(", repeat {round}") } else { String::new() }
        )
    };
    if let Some(role) = &spec.assign {
        message.push_str(&format!("; handed to {role}"));
    }
    if !spec.notify.is_empty() {
        message.push_str(&format!("; notify {}", spec.notify.join(", ")));
    }
    let data = serde_json::json!({
        "policy": policy.id, "cycle": inc.cycle, "round": round, "level": level + 1,
        "due": rfc3339(due_ms), "notify": spec.notify, "assign": spec.assign, "manual": manual,
    });
    append(c, inc.id, now, who, "escalated", &message, Some(data)).await?;
    touch(c, inc.id, now).await?;
    Ok(Some(Fired {
        incident_id: inc.id,
        cycle: inc.cycle,
        round,
        level,
        due_ms,
        manual,
        notify: spec.notify.clone(),
        assign: spec.assign.clone(),
    }))
}
