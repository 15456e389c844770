//! Findings into incidents, as the plan says: rate, type and group each finding, attach it to
//! the open incident of its group (or open one), raise severity and owner when the incident
//! grows. All of it under the store's lock, so concurrent hunts into one store agree.

use std::collections::{BTreeMap, BTreeSet};

use kir_detect::{Finding, Level};
use kir_plan::{Plan, Routed};
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::AnyConnection;

use crate::model::{Incident, append, incident_columns, insert_ioc};
use crate::{Result, Store};

#[derive(Debug, Clone, Default, Serialize)]
pub struct IngestReport {
    /// Findings stored now.
    pub attached: usize,
    /// Findings the store already had (another run, or an earlier run over the same logs).
    pub duplicates: usize,
    /// Findings a routing rule ignores.
    pub ignored: usize,
    /// Findings too weak to open an incident, with no open incident to join.
    pub below_threshold: usize,
    pub opened: Vec<i64>,
    pub updated: Vec<i64>,
}

/// Identity of a finding across runs: the rule, the cluster and the audit events behind it (for
/// runtime alerts without audit IDs, the rule, time, object and source).
pub fn fingerprint(f: &Finding) -> String {
    let mut h = Sha256::new();
    h.update(f.rule_id.as_bytes());
    h.update([0]);
    // One auditID in two clusters is two requests. Without a cluster, the fingerprint is what it
    // always was, so stores filled before clusters keep deduplicating.
    if let Some(cluster) = &f.cluster {
        h.update(b"cluster=");
        h.update(cluster.as_bytes());
        h.update([0]);
    }
    if f.audit_ids.is_empty() {
        h.update(f.time.map(|t| t.as_nanosecond().to_string()).unwrap_or_default().as_bytes());
        for part in [&f.object.namespace, &f.object.name] {
            h.update([0]);
            h.update(part.as_deref().unwrap_or("").as_bytes());
        }
        h.update([0]);
        h.update(f.actor.user.as_bytes());
    } else {
        let mut ids: Vec<&str> = f.audit_ids.iter().map(String::as_str).collect();
        ids.sort_unstable();
        for id in ids {
            h.update([0]);
            h.update(id.as_bytes());
        }
    }
    hex::encode(h.finalize())
}

struct Item<'a> {
    finding: &'a Finding,
    routed: Routed,
    fingerprint: String,
    time: i64,
}

impl Store {
    /// Attaches findings to incidents as `plan` says. `now` is the discovery time.
    pub async fn ingest(&self, plan: &Plan, findings: &[Finding], who: &str, now: i64) -> Result<IngestReport> {
        self.ingest_into(plan, findings, who, now, None).await
    }

    /// As [`Store::ingest`], for drill `drill`: its incidents are its own (source `drill`, title
    /// `DRILL: …`, grouped apart), so a drill never joins, updates or is joined by a real
    /// incident.
    pub async fn ingest_drill(
        &self,
        plan: &Plan,
        findings: &[Finding],
        who: &str,
        now: i64,
        drill: i64,
    ) -> Result<IngestReport> {
        self.ingest_into(plan, findings, who, now, Some(drill)).await
    }

    async fn ingest_into(
        &self,
        plan: &Plan,
        findings: &[Finding],
        who: &str,
        now: i64,
        drill: Option<i64>,
    ) -> Result<IngestReport> {
        let mut report = IngestReport::default();
        let mut groups: BTreeMap<String, Vec<Item>> = BTreeMap::new();
        let mut seen = std::collections::HashSet::new();
        for f in findings {
            let routed = plan.route(f);
            if routed.ignored {
                report.ignored += 1;
                continue;
            }
            // The same finding twice in one batch (a request logged twice, overlapping files).
            let fingerprint = fingerprint(f);
            if !seen.insert(fingerprint.clone()) {
                report.duplicates += 1;
                continue;
            }
            let time = f.time.map(|t| t.as_millisecond()).unwrap_or(now);
            let key = match drill {
                Some(d) => format!("{DRILL_PREFIX}{d}:{}", routed.group_key),
                None => routed.group_key.clone(),
            };
            groups.entry(key).or_default().push(Item { finding: f, fingerprint, routed, time });
        }
        for items in groups.values_mut() {
            items.sort_by_key(|i| i.time);
        }
        // Controllers' findings last: they follow incidents the other groups may open now. The
        // rest in the order they began, so that an incident another group links into (by an
        // image) is the one of whoever came first.
        let mut ordered: Vec<(String, Vec<Item>)> = groups.into_iter().collect();
        ordered.sort_by_key(|(key, items)| {
            (plain_key(key).starts_with(kir_plan::route::DELEGATE_PREFIX), items.first().map_or(i64::MAX, |i| i.time))
        });
        // One transaction per group keeps the lock short for concurrent writers.
        for (key, items) in ordered {
            let plan = plan.clone();
            let who = who.to_string();
            let part = {
                let mut tx = self.lock().await?;
                let r = async {
                    let c = tx.conn();
                    ingest_group(c, &plan, &key, &items, &who, now, drill).await
                }
                .await;
                tx.finish(r).await
            }?;
            report.attached += part.attached;
            report.duplicates += part.duplicates;
            report.below_threshold += part.below_threshold;
            report.opened.extend(part.opened);
            for id in part.updated {
                if !report.updated.contains(&id) && !report.opened.contains(&id) {
                    report.updated.push(id);
                }
            }
        }
        Ok(report)
    }
}

/// What a drill incident's title starts with, wherever it is shown or sent.
pub const DRILL_TITLE: &str = "DRILL: ";

/// Group keys of a drill start with this, then the drill's id and a colon.
pub const DRILL_PREFIX: &str = "drill:";

/// The plan's group key, without a drill's prefix.
fn plain_key(key: &str) -> &str {
    key.strip_prefix(DRILL_PREFIX).and_then(|rest| rest.split_once(':')).map_or(key, |(_, k)| k)
}

async fn ingest_group(
    c: &mut AnyConnection,
    plan: &Plan,
    key: &str,
    items: &[Item<'_>],
    who: &str,
    now: i64,
    drill: Option<i64>,
) -> Result<IngestReport> {
    let mut report = IngestReport::default();
    let window = plan.grouping.window.as_millis();
    let mut open: Vec<Incident> = sqlx::query_as(concat!(
        "SELECT ",
        incident_columns!(),
        " FROM incidents WHERE (group_key = $1 OR id IN (SELECT incident_id FROM incident_groups WHERE group_key = $1)) \
         AND state IN ('new', 'acknowledged', 'contained') ORDER BY id"
    ))
    .bind(key)
    .fetch_all(&mut *c)
    .await?;
    if let Some(rest) = plain_key(key).strip_prefix(kir_plan::route::DELEGATE_PREFIX) {
        // A controller's findings follow the open incident that already touched its namespace
        // in its cluster (a drill's only its own drill's, a real one's only real ones).
        let (namespace, cluster) = kir_plan::route::delegate_scope(rest);
        let linked: Vec<Incident> = sqlx::query_as(concat!(
            "SELECT ",
            incident_columns!(),
            " FROM incidents WHERE state IN ('new', 'acknowledged', 'contained') AND COALESCE(drill_id, 0) = $2 AND id IN \
             (SELECT incident_id FROM findings WHERE namespace = $1 AND COALESCE(cluster, '') = $3) ORDER BY updated_at, id"
        ))
        .bind(namespace)
        .bind(drill.unwrap_or(0))
        .bind(cluster.unwrap_or(""))
        .fetch_all(&mut *c)
        .await?;
        for i in linked {
            if !open.iter().any(|o| o.id == i.id) {
                open.push(i);
            }
        }
    }
    let mut spans: Vec<(i64, i64, i64)> = open
        .iter()
        .map(|i| (i.id, i.first_event_at.unwrap_or(i.created_at), i.last_event_at.unwrap_or(i.created_at)))
        .collect();
    let mut pending: Vec<&Item> = Vec::new();
    let mut touched: BTreeSet<i64> = BTreeSet::new();

    for item in items {
        let exists: Option<(i64,)> = sqlx::query_as("SELECT incident_id FROM findings WHERE fingerprint = $1")
            .bind(&item.fingerprint)
            .fetch_optional(&mut *c)
            .await?;
        if exists.is_some() {
            report.duplicates += 1;
            continue;
        }
        let mut joined =
            spans.iter_mut().rev().find(|(_, first, last)| item.time >= *first - window && item.time <= *last + window);
        let mut linked_by = None;
        if joined.is_none()
            && let Some((linked, image)) = linked_incident(c, plan, item, drill).await?
        {
            // Another group's open incident has this image: the same attack, under another
            // identity or in another cluster.
            if !spans.iter().any(|s| s.0 == linked.id) {
                spans.push((
                    linked.id,
                    linked.first_event_at.unwrap_or(linked.created_at),
                    linked.last_event_at.unwrap_or(linked.created_at),
                ));
            }
            linked_by = Some(image);
            joined = spans.iter_mut().find(|s| s.0 == linked.id);
        }
        let incident = match joined {
            Some(span) => {
                span.1 = span.1.min(item.time);
                span.2 = span.2.max(item.time);
                span.0
            }
            None if item.routed.opens => {
                let id = create_incident(c, plan, key, item, who, now, drill).await?;
                report.opened.push(id);
                spans.push((id, item.time, item.time));
                id
            }
            None => {
                pending.push(item);
                continue;
            }
        };
        attach(c, incident, item, who, now).await?;
        if let Some(image) = linked_by {
            sqlx::query(
                "INSERT INTO incident_groups (group_key, incident_id, linked_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            )
            .bind(key)
            .bind(incident)
            .bind(now)
            .execute(&mut *c)
            .await?;
            let message = format!("linked by image {image}: {} ({})", item.finding.title, item.finding.actor.user);
            let data = serde_json::json!({"image": image, "group": key, "cluster": item.finding.cluster});
            append(c, incident, now, who, "linked", &message, Some(data)).await?;
        }
        report.attached += 1;
        touched.insert(incident);
        // Weaker findings seen before this incident opened join it when they are close in time;
        // newest first, so each one that joins can bring an older one within reach.
        let mut span = *spans.iter().find(|s| s.0 == incident).expect("just used");
        let mut kept = Vec::new();
        for p in pending.drain(..).rev() {
            if p.time >= span.1 - window && p.time <= span.2 + window {
                attach(c, incident, p, who, now).await?;
                report.attached += 1;
                span.1 = span.1.min(p.time);
            } else {
                kept.push(p);
            }
        }
        kept.reverse();
        if let Some(s) = spans.iter_mut().find(|s| s.0 == incident) {
            *s = span;
        }
        pending = kept;
    }
    report.below_threshold = pending.len();
    for id in touched {
        refresh(c, plan, id, who, now).await?;
        if !report.opened.contains(&id) {
            report.updated.push(id);
        }
    }
    Ok(report)
}

async fn create_incident(
    c: &mut AnyConnection,
    plan: &Plan,
    key: &str,
    item: &Item<'_>,
    who: &str,
    now: i64,
    drill: Option<i64>,
) -> Result<i64> {
    let f = item.finding;
    let severity = item.routed.severity;
    let ownership = plan.ownership_for(severity);
    let policy = ownership.and_then(|o| plan.escalation_policies.iter().find(|p| p.id == o.policy));
    let actor = if f.actor.user.is_empty() {
        format!("{}/{}", f.object.namespace.as_deref().unwrap_or("-"), f.object.name.as_deref().unwrap_or("-"))
    } else {
        f.actor.user.clone()
    };
    let title = format!(
        "{}{}: {} ({actor})",
        if drill.is_some() { DRILL_TITLE } else { "" },
        plan.type_title(&item.routed.incident_type),
        f.title
    );
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO incidents (title, incident_type, severity, state, owner_role, owner_person, group_key, \
         reported_by, description, plan_name, plan_digest, policy_id, policy_json, cycle, cycle_started_at, \
         first_event_at, last_event_at, created_at, updated_at, finding_count, source, drill_id) \
         VALUES ($1, $2, $3, 'new', $4, NULL, $5, $6, NULL, $7, $8, $9, $10, 0, $11, $12, $13, $14, $15, 0, $16, $17) RETURNING id",
    )
    .bind(&title)
    .bind(&item.routed.incident_type)
    .bind(severity.as_str())
    .bind(ownership.map(|o| o.owner.clone()))
    .bind(key)
    .bind(who)
    .bind(&plan.metadata.name)
    .bind(plan.digest())
    .bind(policy.map(|p| p.id.clone()))
    .bind(policy.map(|p| serde_json::to_string(p).unwrap_or_default()))
    .bind(now)
    .bind(item.time)
    .bind(item.time)
    .bind(now)
    .bind(now)
    .bind(if drill.is_some() { "drill" } else { "findings" })
    .bind(drill)
    .fetch_one(&mut *c)
    .await?;
    let message = format!(
        "incident opened from finding \"{}\" ({}); severity {severity}, owner {}, policy {}",
        f.title,
        f.rule_id,
        ownership.map(|o| o.owner.as_str()).unwrap_or("none"),
        policy.map(|p| p.id.as_str()).unwrap_or("none")
    );
    let data = serde_json::json!({"plan": plan.metadata.name, "plan_digest": plan.digest(), "group": key});
    append(c, id, now, who, "opened", &message, Some(data)).await?;
    Ok(id)
}

async fn attach(c: &mut AnyConnection, incident: i64, item: &Item<'_>, who: &str, now: i64) -> Result<()> {
    let f = item.finding;
    let body = serde_json::to_string(f).unwrap_or_default();
    sqlx::query(
        "INSERT INTO findings (incident_id, fingerprint, rule_id, title, severity, routed_severity, event_time, \
         discovered_at, actor, namespace, resource, name, tactics, body, routed_type, cluster) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
    )
    .bind(incident)
    .bind(&item.fingerprint)
    .bind(&f.rule_id)
    .bind(&f.title)
    .bind(f.severity.as_str())
    .bind(item.routed.severity.as_str())
    .bind(f.time.map(|t| t.as_millisecond()))
    .bind(now)
    .bind(&f.actor.user)
    .bind(&f.object.namespace)
    .bind(&f.object.resource)
    .bind(&f.object.name)
    .bind(f.tactics.join(","))
    .bind(&body)
    .bind(&item.routed.incident_type)
    .bind(&f.cluster)
    .execute(&mut *c)
    .await?;
    let object = [f.object.resource.as_deref(), f.object.namespace.as_deref(), f.object.name.as_deref()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join("/");
    let message = format!("finding: {} [{}] {} {}", f.title, f.severity, f.verb, object).trim_end().to_string();
    let data = serde_json::json!({
        "rule_id": f.rule_id, "event_time": f.time.map(|t| t.to_string()), "audit_ids": f.audit_ids,
        "actor": f.actor.user, "fingerprint": item.fingerprint, "cluster": f.cluster,
    });
    append(c, incident, now, who, "finding", &message, Some(data)).await?;
    for ip in &f.actor.source_ips {
        insert_ioc(c, incident, "ip", ip, who, now).await?;
    }
    // Only findings strong enough to open an incident make their images its indicators (and
    // link by them): every pod writes an image, and `busybox` in a developer's pod is no link
    // to an attacker's.
    if item.routed.opens {
        for image in &f.images {
            insert_ioc(c, incident, "image", image, who, now).await?;
        }
    }
    Ok(())
}

/// The open incident (of the same drill, or real) that already holds one of `item`'s images,
/// last seen within the plan's window, when the plan links by image and `item` is strong enough
/// to open an incident: with the image.
async fn linked_incident(
    c: &mut AnyConnection,
    plan: &Plan,
    item: &Item<'_>,
    drill: Option<i64>,
) -> Result<Option<(Incident, String)>> {
    if !item.routed.opens || !plan.grouping.link.contains(&kir_plan::LinkKey::Image) {
        return Ok(None);
    }
    let window = plan.grouping.window.as_millis();
    let common = |image: &str| plan.grouping.common_images.iter().any(|p| kir_core::glob(p, image));
    for image in item.finding.images.iter().filter(|i| !common(i)) {
        let found: Option<Incident> = sqlx::query_as(concat!(
            "SELECT ",
            incident_columns!(),
            " FROM incidents WHERE state IN ('new', 'acknowledged', 'contained') AND COALESCE(drill_id, 0) = $2 \
             AND COALESCE(last_event_at, created_at) >= $3 AND COALESCE(first_event_at, created_at) <= $4 \
             AND id IN (SELECT incident_id FROM iocs WHERE kind = 'image' AND value = $1) ORDER BY updated_at DESC, id DESC"
        ))
        .bind(image)
        .bind(drill.unwrap_or(0))
        .bind(item.time - window)
        .bind(item.time + window)
        .fetch_optional(&mut *c)
        .await?;
        if let Some(incident) = found {
            return Ok(Some((incident, image.clone())));
        }
    }
    Ok(None)
}

/// Rule, routed severity, time, tactics, routed type, title and cluster of a stored finding.
type FindingRow = (String, String, Option<i64>, String, String, String, Option<String>);

/// Counts, time span, severity (with the plan's raise rules) and owner after new findings.
async fn refresh(c: &mut AnyConnection, plan: &Plan, id: i64, who: &str, now: i64) -> Result<()> {
    let inc = crate::model::fetch_incident(c, id).await?;
    let rows: Vec<FindingRow> = sqlx::query_as(
        "SELECT rule_id, routed_severity, event_time, tactics, routed_type, title, cluster FROM findings WHERE incident_id = $1 ORDER BY event_time IS NULL, event_time, id",
    )
    .bind(id)
    .fetch_all(&mut *c)
    .await?;
    let mut severity: Level = inc.severity.parse().unwrap_or(Level::Medium);
    let mut tactics = BTreeSet::new();
    let mut rules = BTreeSet::new();
    let (mut first, mut last) = (inc.first_event_at, inc.last_event_at);
    // The type and title follow the strongest finding (the first of equals); the type only
    // when that finding names one.
    let mut typed: Option<(Level, &str)> = None;
    let mut strongest: Option<(Level, &str)> = None;
    let clusters: BTreeSet<&str> = rows.iter().filter_map(|r| r.6.as_deref()).collect();
    let clusters = (!clusters.is_empty()).then(|| clusters.into_iter().collect::<Vec<_>>().join(","));
    if clusters.is_some() && clusters != inc.clusters && inc.clusters.is_some() {
        let message = format!("now spans clusters {}", clusters.as_deref().unwrap_or(""));
        append(c, id, now, who, "clusters", &message, None).await?;
    }
    for (rule, routed, time, t, routed_type, title, _) in &rows {
        let routed: Level = routed.parse().unwrap_or(Level::Informational);
        if routed_type != &plan.routing.default_type && typed.is_none_or(|(l, _)| routed > l) {
            typed = Some((routed, routed_type));
        }
        if strongest.is_none_or(|(l, _)| routed > l) {
            strongest = Some((routed, title));
        }
        severity = severity.max(routed);
        if routed >= plan.routing.open_incident_at {
            rules.insert(rule.clone());
            tactics.extend(t.split(',').filter(|s| !s.is_empty()).map(str::to_string));
        }
        if let Some(t) = time {
            first = Some(first.map_or(*t, |f| f.min(*t)));
            last = Some(last.map_or(*t, |l| l.max(*t)));
        }
    }
    let severity = plan.raised_severity(severity, tactics.len(), rules.len());
    let incident_type = match typed {
        Some((_, t)) if inc.from_findings() => t.to_string(),
        _ => inc.incident_type.clone(),
    };
    let mut title = inc.title.clone();
    if inc.from_findings()
        && let Some((_, finding_title)) = strongest
    {
        let subject = inc
            .title
            .rfind(" (")
            .filter(|_| inc.title.ends_with(')'))
            .map(|i| inc.title[i..].to_string())
            .unwrap_or_default();
        let drill = if inc.drill_id.is_some() { DRILL_TITLE } else { "" };
        title = format!("{drill}{}: {finding_title}{subject}", plan.type_title(&incident_type));
    }
    if incident_type != inc.incident_type {
        let message = format!("type changed from {} to {incident_type}", inc.incident_type);
        append(c, id, now, who, "type", &message, None).await?;
    }
    sqlx::query(
        "UPDATE incidents SET finding_count = $2, first_event_at = $3, last_event_at = $4, updated_at = $5, incident_type = $6, title = $7, clusters = $8 WHERE id = $1",
    )
    .bind(id)
    .bind(rows.len() as i64)
    .bind(first)
    .bind(last)
    .bind(now)
    .bind(&incident_type)
    .bind(&title)
    .bind(&clusters)
    .execute(&mut *c)
    .await?;
    let old: Level = inc.severity.parse().unwrap_or(Level::Medium);
    if severity > old {
        let ownership = plan.ownership_for(severity);
        let new_policy = ownership.and_then(|o| plan.escalation_policies.iter().find(|p| p.id == o.policy));
        let mut message = format!("severity raised from {old} to {severity}");
        let new_owner = ownership.map(|o| o.owner.clone());
        if new_owner != inc.owner_role {
            message.push_str(&format!(
                "; owner {} → {}",
                inc.owner_role.as_deref().unwrap_or("none"),
                new_owner.as_deref().unwrap_or("none")
            ));
        }
        let policy_changes = new_policy.map(|p| p.id.as_str()) != inc.policy_id.as_deref();
        if policy_changes {
            // A stronger policy starts a new escalation cycle: its levels count from now.
            message.push_str(&format!("; escalation policy {}", new_policy.map(|p| p.id.as_str()).unwrap_or("none")));
            sqlx::query(
                "UPDATE incidents SET severity = $2, owner_role = $3, policy_id = $4, policy_json = $5, cycle = cycle + 1, \
                 cycle_started_at = $6 WHERE id = $1",
            )
            .bind(id)
            .bind(severity.as_str())
            .bind(&new_owner)
            .bind(new_policy.map(|p| p.id.clone()))
            .bind(new_policy.map(|p| serde_json::to_string(p).unwrap_or_default()))
            .bind(now)
            .execute(&mut *c)
            .await?;
        } else {
            sqlx::query("UPDATE incidents SET severity = $2, owner_role = $3 WHERE id = $1")
                .bind(id)
                .bind(severity.as_str())
                .bind(&new_owner)
                .execute(&mut *c)
                .await?;
        }
        let data =
            serde_json::json!({"from": old.as_str(), "to": severity.as_str(), "distinct_tactics": tactics.len()});
        append(c, id, now, who, "severity", &message, Some(data)).await?;
    }
    Ok(())
}
