//! The incident's timeline as an SVG chart: findings as dots on the event-time axis, coloured by
//! severity, and the response milestones (opened, acknowledged, contained, resolved, closed) as
//! labelled lines. Drawn by hand: a few shapes do not need a plotting library.

use std::fmt::Write;

use kir_store::rfc3339;

use kir_plan::render::escape_html as escape;

use crate::{IncidentRecord, human_duration};

const WIDTH: f64 = 960.0;
const LEFT: f64 = 40.0;
const RIGHT: f64 = 40.0;

fn colour(severity: &str) -> &'static str {
    match severity {
        "critical" => "#7b0000",
        "high" => "#d11a1a",
        "medium" => "#e08a00",
        "low" => "#2b7bb9",
        _ => "#8a8a8a",
    }
}

pub fn timeline_svg(r: &IncidentRecord) -> String {
    let i = &r.incident;
    let milestones: Vec<(&str, i64)> = [
        ("first event", i.first_event_at),
        ("opened", Some(i.created_at)),
        ("acknowledged", i.acknowledged_at),
        ("contained", i.contained_at),
        ("resolved", i.resolved_at),
        ("closed", i.closed_at),
    ]
    .into_iter()
    .filter_map(|(n, t)| t.map(|t| (n, t)))
    .collect();
    let times: Vec<i64> =
        r.findings.iter().filter_map(|f| f.event_time).chain(milestones.iter().map(|m| m.1)).collect();
    let (start, end) = match (times.iter().min(), times.iter().max()) {
        (Some(a), Some(b)) => (*a, (*b).max(*a + 1000)),
        _ => (i.created_at, i.created_at + 1000),
    };
    let height = 80.0 + 22.0 * milestones.len() as f64;
    let x = |t: i64| LEFT + (t - start) as f64 / (end - start) as f64 * (WIDTH - LEFT - RIGHT);
    let mut svg = String::new();
    let _ = write!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{height}\" viewBox=\"0 0 {WIDTH} {height}\" font-family=\"sans-serif\" font-size=\"11\" role=\"img\" aria-label=\"incident timeline\">"
    );
    let _ = write!(svg, "<title>Incident #{} timeline, {} to {}</title>", i.id, rfc3339(start), rfc3339(end));
    let axis_y = 40.0;
    let _ =
        write!(svg, "<line x1=\"{LEFT}\" y1=\"{axis_y}\" x2=\"{}\" y2=\"{axis_y}\" stroke=\"#333\"/>", WIDTH - RIGHT);
    let _ = write!(svg, "<text x=\"{LEFT}\" y=\"15\">{}</text>", escape(&rfc3339(start)));
    let _ = write!(
        svg,
        "<text x=\"{}\" y=\"15\" text-anchor=\"end\">{} (+{})</text>",
        WIDTH - RIGHT,
        escape(&rfc3339(end)),
        human_duration(end - start)
    );
    for f in &r.findings {
        let Some(t) = f.event_time else { continue };
        let _ = write!(
            svg,
            "<circle cx=\"{:.1}\" cy=\"{axis_y}\" r=\"5\" fill=\"{}\" fill-opacity=\"0.8\"><title>{} {} [{}]</title></circle>",
            x(t),
            colour(&f.severity),
            escape(&rfc3339(t)),
            escape(&f.title),
            escape(&f.severity)
        );
    }
    for (n, (name, t)) in milestones.iter().enumerate() {
        let y = 70.0 + 22.0 * n as f64;
        let px = x(*t);
        let anchor = if px > WIDTH / 2.0 { "end" } else { "start" };
        let dx = if anchor == "end" { -4.0 } else { 4.0 };
        let _ = write!(
            svg,
            "<line x1=\"{px:.1}\" y1=\"{}\" x2=\"{px:.1}\" y2=\"{y}\" stroke=\"#555\" stroke-dasharray=\"3 2\"/><text x=\"{:.1}\" y=\"{}\" text-anchor=\"{anchor}\">{} {}</text>",
            axis_y + 6.0,
            px + dx,
            y + 4.0,
            name,
            escape(&rfc3339(*t))
        );
    }
    svg.push_str("</svg>");
    svg
}
