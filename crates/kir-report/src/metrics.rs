//! Response metrics across incidents: time to detect (first malicious event → incident opened),
//! to acknowledge, to contain and to resolve (each from the incident's opening), by type and by
//! severity; and the rules whose findings ended in incidents closed as false positives.

use std::collections::BTreeMap;
use std::fmt::Write;

use kir_store::{Incident, StoredFinding};
use serde::Serialize;

use crate::human_duration;

/// Count, median, mean and 90th percentile of durations in milliseconds.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Stat {
    pub count: usize,
    pub median_ms: Option<i64>,
    pub mean_ms: Option<i64>,
    pub p90_ms: Option<i64>,
}

impl Stat {
    fn of(mut values: Vec<i64>) -> Stat {
        values.sort_unstable();
        let n = values.len();
        if n == 0 {
            return Stat::default();
        }
        // Nearest-rank percentiles: a value that happened, not an interpolation.
        let rank = |p: f64| values[((p * n as f64).ceil() as usize).clamp(1, n) - 1];
        Stat {
            count: n,
            median_ms: Some(rank(0.5)),
            mean_ms: Some(values.iter().sum::<i64>() / n as i64),
            p90_ms: Some(rank(0.9)),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Measures {
    pub incidents: usize,
    pub time_to_detect: Stat,
    pub time_to_acknowledge: Stat,
    pub time_to_contain: Stat,
    pub time_to_resolve: Stat,
}

#[derive(Debug, Clone, Serialize)]
pub struct RuleNoise {
    pub rule_id: String,
    pub title: String,
    pub false_positive_findings: usize,
    pub findings: usize,
    pub false_positive_incidents: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Metrics {
    pub since: Option<String>,
    pub overall: Measures,
    pub by_type: BTreeMap<String, Measures>,
    pub by_severity: BTreeMap<String, Measures>,
    pub closed_as: BTreeMap<String, usize>,
    pub false_positive_rules: Vec<RuleNoise>,
    /// Incidents opened by drills (`kir drill run`): measured beside the real ones, never mixed in.
    pub drills: Measures,
    /// Week by week (ISO weeks, by when incidents opened): is the response getting faster?
    pub trend: Vec<Period>,
}

/// One week of incidents, real and drilled.
#[derive(Debug, Clone, Serialize)]
pub struct Period {
    /// `2026-W48`.
    pub week: String,
    pub real: Measures,
    pub drills: Measures,
}

fn week_of(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| {
            let week = t.to_zoned(jiff::tz::TimeZone::UTC).date().iso_week_date();
            format!("{}-W{:02}", week.year(), week.week())
        })
        .unwrap_or_else(|_| "unknown".into())
}

fn measures(incidents: &[&Incident]) -> Measures {
    let from_open = |f: fn(&Incident) -> Option<i64>| {
        Stat::of(incidents.iter().filter_map(|i| f(i).map(|t| (t - i.created_at).max(0))).collect())
    };
    Measures {
        incidents: incidents.len(),
        time_to_detect: Stat::of(
            incidents.iter().filter_map(|i| i.first_event_at.map(|t| (i.created_at - t).max(0))).collect(),
        ),
        time_to_acknowledge: from_open(|i| i.acknowledged_at),
        time_to_contain: from_open(|i| i.contained_at),
        time_to_resolve: from_open(|i| i.resolved_at),
    }
}

/// Metrics over incidents opened at or after `since_ms`. Duplicates are left out: they would
/// count one incident twice.
pub fn metrics(incidents: &[Incident], findings: &[StoredFinding], since_ms: Option<i64>) -> Metrics {
    let in_window: Vec<&Incident> = incidents
        .iter()
        .filter(|i| since_ms.is_none_or(|s| i.created_at >= s))
        .filter(|i| i.close_reason.as_deref() != Some("duplicate"))
        .collect();
    let drills: Vec<&Incident> = in_window.iter().copied().filter(|i| i.drill_id.is_some()).collect();
    let mut weeks: BTreeMap<String, (Vec<&Incident>, Vec<&Incident>)> = BTreeMap::new();
    for i in &in_window {
        let entry = weeks.entry(week_of(i.created_at)).or_default();
        if i.drill_id.is_some() { entry.1.push(i) } else { entry.0.push(i) }
    }
    let trend: Vec<Period> = weeks
        .into_iter()
        .map(|(week, (real, drilled))| Period { week, real: measures(&real), drills: measures(&drilled) })
        .collect();
    let chosen: Vec<&Incident> = in_window.into_iter().filter(|i| i.drill_id.is_none()).collect();
    let mut by_type: BTreeMap<String, Vec<&Incident>> = BTreeMap::new();
    let mut by_severity: BTreeMap<String, Vec<&Incident>> = BTreeMap::new();
    let mut closed_as: BTreeMap<String, usize> = BTreeMap::new();
    for i in &chosen {
        by_type.entry(i.incident_type.clone()).or_default().push(i);
        by_severity.entry(i.severity.clone()).or_default().push(i);
        if let Some(r) = &i.close_reason {
            *closed_as.entry(r.clone()).or_default() += 1;
        }
    }
    let fp_incidents: BTreeMap<i64, ()> =
        chosen.iter().filter(|i| i.close_reason.as_deref() == Some("false-positive")).map(|i| (i.id, ())).collect();
    let in_scope: BTreeMap<i64, ()> = chosen.iter().map(|i| (i.id, ())).collect();
    let mut rules: BTreeMap<String, RuleNoise> = BTreeMap::new();
    let mut fp_incidents_by_rule: BTreeMap<String, BTreeMap<i64, ()>> = BTreeMap::new();
    for f in findings.iter().filter(|f| in_scope.contains_key(&f.incident_id)) {
        let e = rules.entry(f.rule_id.clone()).or_insert_with(|| RuleNoise {
            rule_id: f.rule_id.clone(),
            title: f.title.clone(),
            false_positive_findings: 0,
            findings: 0,
            false_positive_incidents: 0,
        });
        e.findings += 1;
        if fp_incidents.contains_key(&f.incident_id) {
            e.false_positive_findings += 1;
            fp_incidents_by_rule.entry(f.rule_id.clone()).or_default().insert(f.incident_id, ());
        }
    }
    let mut false_positive_rules: Vec<RuleNoise> = rules
        .into_values()
        .filter(|r| r.false_positive_findings > 0)
        .map(|mut r| {
            r.false_positive_incidents = fp_incidents_by_rule.get(&r.rule_id).map(|m| m.len()).unwrap_or(0);
            r
        })
        .collect();
    false_positive_rules
        .sort_by(|a, b| b.false_positive_findings.cmp(&a.false_positive_findings).then(a.rule_id.cmp(&b.rule_id)));
    Metrics {
        since: since_ms.map(kir_store::rfc3339),
        overall: measures(&chosen),
        by_type: by_type.into_iter().map(|(k, v)| (k, measures(&v))).collect(),
        by_severity: by_severity.into_iter().map(|(k, v)| (k, measures(&v))).collect(),
        closed_as,
        false_positive_rules,
        drills: measures(&drills),
        trend,
    }
}

/// A line of the chart: its name, colour, and the measure it draws.
type Series = (&'static str, &'static str, fn(&Period) -> Option<i64>);

/// The trend as an SVG chart: the median time to contain (and to acknowledge) per week, real
/// incidents and drills. Built here, not by the Markdown renderer, which lets no markup through.
pub fn trend_svg(m: &Metrics) -> String {
    const W: f64 = 720.0;
    const H: f64 = 240.0;
    const PAD: f64 = 48.0;
    let series: [Series; 4] = [
        ("contain (real)", "#c0392b", |p| p.real.time_to_contain.median_ms),
        ("acknowledge (real)", "#e67e22", |p| p.real.time_to_acknowledge.median_ms),
        ("contain (drills)", "#2c3e50", |p| p.drills.time_to_contain.median_ms),
        ("acknowledge (drills)", "#7f8c8d", |p| p.drills.time_to_acknowledge.median_ms),
    ];
    let max =
        m.trend.iter().flat_map(|p| series.iter().filter_map(move |(_, _, f)| f(p))).max().unwrap_or(0).max(1) as f64;
    let n = m.trend.len().max(1);
    let x = |i: usize| PAD + (W - 2.0 * PAD) * if n == 1 { 0.5 } else { i as f64 / (n - 1) as f64 };
    let y = |v: i64| H - PAD - (H - 2.0 * PAD) * (v as f64 / max);
    let mut svg = format!(
        "<figure><figcaption>Median time to acknowledge and to contain, week by week (top: {})</figcaption>\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" role=\"img\">\n<line x1=\"{PAD}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#999\"/>\n",
        human_duration(max as i64),
        H - PAD,
        W - PAD,
        H - PAD
    );
    for (i, p) in m.trend.iter().enumerate() {
        let _ = writeln!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"middle\">{}</text>",
            x(i),
            H - PAD + 14.0,
            p.week
        );
    }
    for (k, (name, colour, f)) in series.iter().enumerate() {
        let points: Vec<String> =
            m.trend.iter().enumerate().filter_map(|(i, p)| f(p).map(|v| format!("{:.1},{:.1}", x(i), y(v)))).collect();
        if points.len() > 1 {
            let _ = writeln!(
                svg,
                "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" points=\"{}\"/>",
                points.join(" ")
            );
        }
        for pt in &points {
            let (px, py) = pt.split_once(',').unwrap_or(("0", "0"));
            let _ = writeln!(svg, "<circle cx=\"{px}\" cy=\"{py}\" r=\"3\" fill=\"{colour}\"/>");
        }
        let _ = writeln!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" fill=\"{colour}\">{name}</text>",
            PAD + 150.0 * k as f64,
            16.0
        );
    }
    svg.push_str("</svg></figure>\n");
    svg
}

fn fmt_stat(s: &Stat) -> String {
    match (s.median_ms, s.p90_ms) {
        (Some(m), Some(p)) => format!("{} (p90 {}, n={})", human_duration(m), human_duration(p), s.count),
        _ => "—".into(),
    }
}

/// Metrics as Markdown tables (also what the table format prints).
pub fn metrics_markdown(m: &Metrics) -> String {
    let mut md = String::from("# Response metrics\n\n");
    if let Some(s) = &m.since {
        let _ = writeln!(
            md,
            "Incidents opened since {s}. Medians, with the 90th percentile and how many incidents had the measure.\n"
        );
    }
    let header = "| | incidents | time to detect | time to acknowledge | time to contain | time to resolve |\n|---|---|---|---|---|---|\n";
    let row = |md: &mut String, name: &str, x: &Measures| {
        let _ = writeln!(
            md,
            "| {name} | {} | {} | {} | {} | {} |",
            x.incidents,
            fmt_stat(&x.time_to_detect),
            fmt_stat(&x.time_to_acknowledge),
            fmt_stat(&x.time_to_contain),
            fmt_stat(&x.time_to_resolve)
        );
    };
    md.push_str("## All incidents\n\n");
    md.push_str(header);
    row(&mut md, "all", &m.overall);
    if m.drills.incidents > 0 {
        row(&mut md, "drills (not counted above)", &m.drills);
    }
    md.push_str("\n## By type\n\n");
    md.push_str(header);
    for (k, v) in &m.by_type {
        row(&mut md, k, v);
    }
    md.push_str("\n## By severity\n\n");
    md.push_str(header);
    for sev in ["critical", "high", "medium", "low", "informational"] {
        if let Some(v) = m.by_severity.get(sev) {
            row(&mut md, sev, v);
        }
    }
    md.push_str("\n## Week by week\n\n| week | incidents | time to acknowledge | time to contain | drills | drills: time to acknowledge | drills: time to contain |\n|---|---|---|---|---|---|---|\n");
    for p in &m.trend {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} |",
            p.week,
            p.real.incidents,
            fmt_stat(&p.real.time_to_acknowledge),
            fmt_stat(&p.real.time_to_contain),
            p.drills.incidents,
            fmt_stat(&p.drills.time_to_acknowledge),
            fmt_stat(&p.drills.time_to_contain)
        );
    }
    md.push_str("\n## How incidents were closed\n\n");
    if m.closed_as.is_empty() {
        md.push_str("None closed yet.\n");
    }
    for (k, v) in &m.closed_as {
        let _ = writeln!(md, "- {k}: {v}");
    }
    md.push_str("\n## Rules behind false positives\n\n");
    if m.false_positive_rules.is_empty() {
        md.push_str("None: no incident was closed as false-positive.\n");
    } else {
        md.push_str("| rule | title | findings in false-positive incidents | of all its findings | incidents |\n|---|---|---|---|---|\n");
        for r in &m.false_positive_rules {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} |",
                r.rule_id, r.title, r.false_positive_findings, r.findings, r.false_positive_incidents
            );
        }
    }
    md
}

#[cfg(test)]
mod tests {
    use super::Stat;

    #[test]
    fn nearest_rank_percentiles() {
        let s = Stat::of(vec![10, 1, 5, 7, 3, 2, 9, 4, 8, 6]);
        assert_eq!((s.count, s.median_ms, s.p90_ms, s.mean_ms), (10, Some(5), Some(9), Some(5)));
        assert_eq!(Stat::of(vec![]), Stat::default());
        assert_eq!(Stat::of(vec![42]).p90_ms, Some(42));
    }
}
