//! What the continuous-improvement phase reads: the post-incident report of one incident
//! (Markdown, HTML with an SVG timeline chart) and response metrics across incidents (time to
//! detect, acknowledge, contain and resolve; the rules behind false positives).
//!
//! Pure: takes what the store returned, gives text back.

mod chart;
mod metrics;

use std::collections::BTreeMap;
use std::fmt::Write;

use kir_store::{Incident, Ioc, StoredFinding, TimelineEntry, rfc3339};

pub use chart::timeline_svg;
pub use metrics::{Metrics, Period, Stat, metrics, metrics_markdown, trend_svg};

/// Everything the store knows about one incident.
pub struct IncidentRecord {
    pub incident: Incident,
    pub findings: Vec<StoredFinding>,
    pub timeline: Vec<TimelineEntry>,
    pub iocs: Vec<Ioc>,
}

/// `1h 05m`, `3m 20s`, `2d 4h`.
pub fn human_duration(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    let (d, h, m, sec) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60, s % 60);
    if d > 0 {
        format!("{d}d {h}h")
    } else if h > 0 {
        format!("{h}h {m:02}m")
    } else if m > 0 {
        format!("{m}m {sec:02}s")
    } else {
        format!("{sec}s")
    }
}

fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// ATT&CK tactics, techniques and threat-matrix ids across the findings, each sorted: the
/// incident's tags.
pub fn tags(findings: &[StoredFinding]) -> (Vec<String>, Vec<String>, Vec<String>) {
    let mut tactics = std::collections::BTreeSet::new();
    let mut techniques = std::collections::BTreeSet::new();
    let mut matrix = std::collections::BTreeSet::new();
    for f in findings {
        tactics.extend(f.tactics.split(',').filter(|t| !t.is_empty()).map(str::to_string));
        let body: serde_json::Value = serde_json::from_str(&f.body).unwrap_or_default();
        for (key, set) in [("techniques", &mut techniques), ("threat_matrix", &mut matrix)] {
            if let Some(list) = body.get(key).and_then(|v| v.as_array()) {
                set.extend(list.iter().filter_map(|v| v.as_str()).map(str::to_string));
            }
        }
    }
    (tactics.into_iter().collect(), techniques.into_iter().collect(), matrix.into_iter().collect())
}

/// Objects the findings name: `resource namespace/name` with how often.
pub fn affected_objects(findings: &[StoredFinding]) -> Vec<(String, usize)> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for f in findings {
        let Some(name) = &f.name else { continue };
        let key = format!(
            "{} {}{}",
            f.resource.as_deref().unwrap_or("object"),
            f.namespace.as_deref().map(|n| format!("{n}/")).unwrap_or_default(),
            name
        );
        *seen.entry(key).or_default() += 1;
    }
    seen.into_iter().collect()
}

/// The post-incident report in Markdown.
pub fn report_markdown(r: &IncidentRecord) -> String {
    let i = &r.incident;
    let mut md = String::new();
    let _ = writeln!(md, "# Incident #{}: {}\n", i.id, i.title);
    md.push_str("## Summary\n\n| | |\n|---|---|\n");
    let rows: Vec<(&str, String)> = vec![
        ("Type", i.incident_type.clone()),
        ("Severity", i.severity.clone()),
        ("State", i.state.clone()),
        (
            "Owner",
            format!(
                "{}{}",
                i.owner_role.as_deref().unwrap_or("none"),
                i.owner_person.as_deref().map(|p| format!(" ({p})")).unwrap_or_default()
            ),
        ),
        (
            "Opened by",
            format!(
                "{} ({})",
                i.reported_by,
                if i.source == "manual" { "reported by a person" } else { "from findings" }
            ),
        ),
        (
            "Plan",
            format!(
                "{} (digest {}), escalation policy {}",
                i.plan_name,
                i.plan_digest,
                i.policy_id.as_deref().unwrap_or("none")
            ),
        ),
        ("First malicious event", i.first_event_at.map(rfc3339).unwrap_or_else(|| "unknown".into())),
        ("Discovered (incident opened)", rfc3339(i.created_at)),
        ("Acknowledged", i.acknowledged_at.map(rfc3339).unwrap_or_else(|| "—".into())),
        ("Contained", i.contained_at.map(rfc3339).unwrap_or_else(|| "—".into())),
        ("Resolved", i.resolved_at.map(rfc3339).unwrap_or_else(|| "—".into())),
        (
            "Closed",
            match (i.closed_at, &i.close_reason) {
                (Some(t), Some(r)) => format!("{} as {r}", rfc3339(t)),
                _ => "—".into(),
            },
        ),
        ("Findings", i.finding_count.to_string()),
    ];
    let (tactics, techniques, matrix) = tags(&r.findings);
    let rows: Vec<(&str, String)> = rows
        .into_iter()
        .chain([
            ("ATT&CK tactics", tactics.join(", ")),
            ("ATT&CK techniques", techniques.join(", ")),
            ("Threat matrix", matrix.join(", ")),
        ])
        .filter(|(_, v)| !v.is_empty())
        .collect();
    for (k, v) in rows {
        let _ = writeln!(md, "| {k} | {} |", cell(&v));
    }
    if let Some(d) = &i.description {
        let _ = writeln!(md, "\n{d}");
    }

    md.push_str("\n## Response metrics\n\n| measure | time |\n|---|---|\n");
    let span = |from: Option<i64>, to: Option<i64>| match (from, to) {
        (Some(a), Some(b)) => human_duration(b - a),
        _ => "—".into(),
    };
    let _ =
        writeln!(md, "| time to detect (first event → incident) | {} |", span(i.first_event_at, Some(i.created_at)));
    let _ = writeln!(md, "| time to acknowledge | {} |", span(Some(i.created_at), i.acknowledged_at));
    let _ = writeln!(md, "| time to contain | {} |", span(Some(i.created_at), i.contained_at));
    let _ = writeln!(md, "| time to resolve | {} |", span(Some(i.created_at), i.resolved_at));

    md.push_str("\n## Timeline\n\nTimes are UTC. Event time is when it happened in the cluster; the timeline records when kir or a person acted.\n\n| when | who | what |\n|---|---|---|\n");
    let mut rows: Vec<(i64, String, String)> = Vec::new();
    for f in &r.findings {
        if let Some(t) = f.event_time {
            rows.push((t, f.actor.clone(), format!("event: {} [{}]", f.title, f.severity)));
        }
    }
    for e in &r.timeline {
        if e.kind != "finding" {
            rows.push((e.at, e.who.clone(), format!("{}: {}", e.kind, e.message)));
        }
    }
    rows.sort_by_key(|r| r.0);
    for (t, who, what) in rows {
        let _ = writeln!(md, "| {} | {} | {} |", rfc3339(t), cell(&who), cell(&what));
    }

    md.push_str("\n## Findings\n\n");
    if r.findings.is_empty() {
        md.push_str("None.\n");
    } else {
        md.push_str("| event time | severity | rule | actor | verb | object |\n|---|---|---|---|---|---|\n");
        for f in &r.findings {
            let body: serde_json::Value = serde_json::from_str(&f.body).unwrap_or_default();
            let verb = body.get("verb").and_then(|v| v.as_str()).unwrap_or("");
            let object = [f.resource.as_deref(), f.namespace.as_deref(), f.name.as_deref()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join("/");
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} |",
                f.event_time.map(rfc3339).unwrap_or_default(),
                f.severity,
                cell(&f.title),
                cell(&f.actor),
                verb,
                cell(&object)
            );
        }
    }

    md.push_str("\n## Affected objects\n\n");
    let objects = affected_objects(&r.findings);
    if objects.is_empty() {
        md.push_str("None recorded.\n");
    }
    for (o, n) in objects {
        let _ = writeln!(md, "- {o} ({n} finding{})", if n == 1 { "" } else { "s" });
    }

    md.push_str("\n## Indicators of compromise\n\n");
    if r.iocs.is_empty() {
        md.push_str("None recorded.\n");
    }
    for ioc in &r.iocs {
        let _ = writeln!(md, "- {}: `{}` (added by {})", ioc.kind, ioc.value, ioc.added_by);
    }

    for (title, kinds) in [("Actions", &["action", "contained", "containment"][..]), ("Evidence", &["evidence"][..])] {
        let _ = writeln!(md, "\n## {title}\n");
        let entries: Vec<&TimelineEntry> = r.timeline.iter().filter(|e| kinds.contains(&e.kind.as_str())).collect();
        if entries.is_empty() {
            md.push_str("None recorded.\n");
        }
        for e in entries {
            let _ = writeln!(md, "- {} {}: {}", rfc3339(e.at), e.who, e.message);
        }
    }

    md.push_str("\n## Notifications and escalations\n\n");
    let notes: Vec<&TimelineEntry> =
        r.timeline.iter().filter(|e| e.kind == "escalated" || e.kind == "notification").collect();
    if notes.is_empty() {
        md.push_str("None.\n");
    }
    for e in notes {
        let _ = writeln!(md, "- {} {}", rfc3339(e.at), e.message);
    }

    md.push_str("\n## Lessons learned\n\n");
    let lessons: Vec<&TimelineEntry> = r
        .timeline
        .iter()
        .filter(|e| e.kind == "note" && e.message.to_ascii_lowercase().starts_with("lesson"))
        .collect();
    for e in &lessons {
        let _ = writeln!(md, "- {} ({})", e.message, e.who);
    }
    md.push_str(
        "\nTo discuss in the review (notes starting with `lesson:` are listed above):\n\n\
         - What went well?\n- What went wrong, or was slow? (see the response metrics)\n\
         - Where were we lucky?\n- Which rules, plan thresholds or playbook steps change? Who does it, by when?\n",
    );
    md
}

/// The report as a standalone HTML page with the timeline chart.
pub fn report_html(r: &IncidentRecord) -> String {
    let md = report_markdown(r);
    let svg = timeline_svg(r);
    // The chart goes in after rendering, where a marker no note can predict stands: text
    // people typed is escaped, the chart kir drew is not.
    let marker = format!("kir-chart-{:x}", jiff::Timestamp::now().as_nanosecond() ^ 0x5deece66d);
    let md = md.replacen("\n## Timeline\n", &format!("\n## Timeline\n\n{marker}\n"), 1);
    let title = format!("Incident #{}: {}", r.incident.id, r.incident.title);
    kir_plan::render::html_page(&title, &md).replacen(
        &format!("<p>{marker}</p>"),
        &format!("<div class=\"chart\">{svg}</div>"),
        1,
    )
}
