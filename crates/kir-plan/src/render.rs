//! The plan as the document people read: who is who, the thresholds, the escalation matrix,
//! the playbooks as checklists, and who does what in each phase. Markdown first; HTML is the
//! same Markdown rendered, so both always say the same thing.

use std::fmt::Write;

use kir_detect::Level;

use crate::schema::{Condition, Plan};

/// Escapes text for a Markdown table cell.
pub fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

pub fn markdown(plan: &Plan, now_ms: i64) -> String {
    let mut md = String::new();
    let role_name = |id: &str| plan.roles.iter().find(|r| r.id == id).map(|r| r.name.clone()).unwrap_or(id.into());
    let _ = writeln!(md, "# Incident response plan: {}\n", plan.metadata.name);
    if let Some(d) = &plan.metadata.description {
        let _ = writeln!(md, "{}\n", d.trim());
    }
    if let Some(o) = &plan.metadata.owner {
        let _ = writeln!(md, "Plan owner: {o}.");
    }
    if let Some(r) = &plan.metadata.reviewed {
        let _ = writeln!(md, "Last reviewed: {r}.");
    }

    md.push_str("\n## Who does what when\n\n");
    md.push_str("| incident severity | owner | first paged | then |\n|---|---|---|---|\n");
    for sev in &plan.severities {
        let Some(own) = plan.ownership_for(sev.id) else {
            let _ = writeln!(md, "| {} | nobody | nobody | |", sev.id);
            continue;
        };
        let policy = plan.escalation_policies.iter().find(|p| p.id == own.policy);
        let mut first = Vec::new();
        let mut then = Vec::new();
        for level in policy.map(|p| p.levels.as_slice()).unwrap_or_default() {
            let who = level.notify.iter().map(|r| role_name(r)).collect::<Vec<_>>().join(", ");
            if level.after.as_secs() == 0 && level.condition == Condition::Always {
                first.push(who);
            } else {
                let mut step = format!("after {} {}: ", level.after, level.condition.describe());
                if let Some(a) = &level.assign {
                    let _ = write!(step, "hand to {}; ", role_name(a));
                }
                let _ = write!(step, "page {who}");
                then.push(step);
            }
        }
        let _ = writeln!(
            md,
            "| {}{} | {} | {} | {} |",
            sev.id,
            sev.label.as_deref().map(|l| format!(" ({l})")).unwrap_or_default(),
            cell(&role_name(&own.owner)),
            cell(&first.join("; ")),
            cell(&then.join("<br>"))
        );
    }

    md.push_str(
        "\n## Roles\n\n| role | what they do | contacts | on call now | paged through |\n|---|---|---|---|---|\n",
    );
    for role in &plan.roles {
        let contacts = role
            .contacts
            .iter()
            .map(|c| {
                let mut s = c.name.clone();
                for extra in [&c.email, &c.phone, &c.chat].into_iter().flatten() {
                    let _ = write!(s, " ({extra})");
                }
                s
            })
            .collect::<Vec<_>>()
            .join("<br>");
        let on_call = plan.on_call(&role.id, now_ms).map(|c| c.name.clone()).unwrap_or_else(|| "—".into());
        let _ = writeln!(
            md,
            "| {} (`{}`) | {} | {} | {} | {} |",
            cell(&role.name),
            role.id,
            cell(role.description.as_deref().unwrap_or("")),
            cell(if contacts.is_empty() { "none" } else { &contacts }),
            cell(&on_call),
            role.notify.join(", ")
        );
    }

    md.push_str("\n## Severities\n\n| severity | means | respond within |\n|---|---|---|\n");
    for s in &plan.severities {
        let _ = writeln!(
            md,
            "| {}{} | {} | {} |",
            s.id,
            s.label.as_deref().map(|l| format!(" ({l})")).unwrap_or_default(),
            cell(&s.definition),
            s.respond_within.map(|d| d.to_string()).unwrap_or_default()
        );
    }

    md.push_str("\n## Escalation matrix\n\nEach level fires once per incident, counted from when the incident was opened (or re-opened), when its condition still holds.\n\n");
    let mut levels_max = 0;
    for p in &plan.escalation_policies {
        levels_max = levels_max.max(p.levels.len());
    }
    md.push_str("| policy | used for |");
    for i in 0..levels_max {
        let _ = write!(md, " level {} |", i + 1);
    }
    md.push_str(" repeat |\n|---|---|");
    for _ in 0..levels_max {
        md.push_str("---|");
    }
    md.push_str("---|\n");
    for p in &plan.escalation_policies {
        let used: Vec<String> = plan
            .ownership
            .iter()
            .filter(|o| o.policy == p.id)
            .flat_map(|o| o.severities.iter().map(|s| s.to_string()))
            .collect();
        let _ = write!(md, "| `{}` | {} |", p.id, used.join(", "));
        for i in 0..levels_max {
            match p.levels.get(i) {
                Some(level) => {
                    let who = level.notify.iter().map(|r| role_name(r)).collect::<Vec<_>>().join(", ");
                    let mut text = format!("{}, {}: page {who}", level.after, level.condition.describe());
                    if let Some(a) = &level.assign {
                        let _ = write!(text, "; hand to {}", role_name(a));
                    }
                    let _ = write!(md, " {} |", cell(&text));
                }
                None => md.push_str(" |"),
            }
        }
        let repeat =
            p.repeat.as_ref().map(|r| format!("{}× after {}", r.times, r.after)).unwrap_or_else(|| "no".into());
        let _ = writeln!(md, " {repeat} |");
    }

    md.push_str("\n## How findings become incidents\n\n");
    let _ = writeln!(
        md,
        "Findings rated **{}** or above open an incident; weaker ones only join an incident that is already open. Findings that share the same {} within {} of an incident's last finding join it.\n",
        plan.routing.open_incident_at,
        plan.grouping.by.iter().map(|k| format!("{k:?}").to_lowercase()).collect::<Vec<_>>().join(" and "),
        plan.grouping.window
    );
    for r in &plan.grouping.raise {
        let mut conds = Vec::new();
        if let Some(n) = r.when_distinct_tactics {
            conds.push(format!("{n} or more ATT&CK tactics"));
        }
        if let Some(n) = r.when_distinct_rules {
            conds.push(format!("{n} or more different rules"));
        }
        let _ = writeln!(md, "- An incident whose findings span {} is raised to **{}**.", conds.join(" and "), r.to);
    }
    if !plan.routing.rules.is_empty() {
        md.push_str("\n| rule | when | incident type | at least |\n|---|---|---|---|\n");
        for (i, r) in plan.routing.rules.iter().enumerate() {
            let m = &r.matches;
            let mut when = Vec::new();
            for (label, list) in [
                ("rules", &m.rules),
                ("tactics", &m.tactics),
                ("techniques", &m.techniques),
                ("threat matrix", &m.threat_matrix),
                ("namespaces", &m.namespaces),
                ("actors", &m.actors),
            ] {
                if !list.is_empty() {
                    when.push(format!("{label}: {}", list.join(", ")));
                }
            }
            if let Some(s) = m.min_severity {
                when.push(format!("finding {s} or above"));
            }
            let kind = if r.ignore {
                "ignored".to_string()
            } else {
                r.incident_type.as_deref().map(|t| plan.type_title(t)).unwrap_or_default()
            };
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} |",
                cell(&r.name.clone().unwrap_or_else(|| (i + 1).to_string())),
                cell(&when.join("; ")),
                cell(&kind),
                r.severity.map(Level::as_str).unwrap_or("")
            );
        }
    }

    md.push_str("\n## Incident types and playbooks\n");
    for t in &plan.types {
        let _ = writeln!(md, "\n### {} (`{}`)\n", t.title, t.id);
        if let Some(d) = &t.description {
            let _ = writeln!(md, "{d}\n");
        }
        match t.playbook.as_ref().and_then(|id| plan.playbooks.iter().find(|p| &p.id == id)) {
            Some(pb) => {
                let _ = writeln!(md, "Playbook **{}** (`kir respond INCIDENT`):\n", pb.title);
                for step in &pb.steps {
                    let title = step.title.clone().unwrap_or_else(|| step.action.as_str().to_string());
                    let approval = step
                        .approval
                        .as_ref()
                        .map(|r| format!(" — needs approval of {}", role_name(r)))
                        .unwrap_or_default();
                    let _ = writeln!(md, "- [ ] {title} (`{}`){approval}", step.action.as_str());
                }
            }
            None => md.push_str("No playbook.\n"),
        }
    }

    if !plan.phases.is_empty() {
        md.push_str("\n## Phases\n");
        for phase in &plan.phases {
            let _ = writeln!(md, "\n### {}\n", phase.title);
            if let Some(g) = &phase.goal {
                let _ = writeln!(md, "{g}\n");
            }
            for (role, duty) in &phase.duties {
                let _ = writeln!(md, "- **{}**: {duty}", role_name(role));
            }
        }
    }

    if !plan.channels.is_empty() {
        md.push_str("\n## Notification channels\n\n| channel | kind | configured by |\n|---|---|---|\n");
        for ch in &plan.channels {
            let mut config = Vec::new();
            if let Some(u) = &ch.url {
                config.push(u.clone());
            }
            for v in [&ch.url_env, &ch.secret_env, &ch.routing_key_env].into_iter().flatten() {
                config.push(format!("${v}"));
            }
            if let Some(s) = &ch.smtp {
                if let Some(h) = &s.host {
                    config.push(format!("smtp {h}:{}", s.port));
                }
                if let Some(h) = &s.host_env {
                    config.push(format!("smtp ${h}:{}", s.port));
                }
            }
            let _ = writeln!(md, "| `{}` | {:?} | {} |", ch.id, ch.kind, cell(&config.join(", ")).to_lowercase());
        }
    }
    md
}

/// Markdown to a standalone HTML page. Raw HTML in the text (a plan or a note someone wrote)
/// is escaped; only `<br>` (line breaks kir puts in table cells) stays markup.
pub fn html_page(title: &str, markdown: &str) -> String {
    let mut options = pulldown_cmark::Options::empty();
    options.insert(pulldown_cmark::Options::ENABLE_TABLES);
    options.insert(pulldown_cmark::Options::ENABLE_TASKLISTS);
    // Raw HTML in the source (a plan or note someone wrote) must not become markup.
    let parser = pulldown_cmark::Parser::new_ext(markdown, options).map(|event| match event {
        pulldown_cmark::Event::Html(text) | pulldown_cmark::Event::InlineHtml(text) => {
            if text.trim() == "<br>" {
                pulldown_cmark::Event::InlineHtml(text)
            } else {
                pulldown_cmark::Event::Text(text)
            }
        }
        other => other,
    });
    let mut body = String::new();
    pulldown_cmark::html::push_html(&mut body, parser);
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n<style>{}</style>\n</head>\n<body>\n{}</body>\n</html>\n",
        escape_html(title),
        STYLE,
        body
    )
}

pub fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:72rem;margin:2rem auto;padding:0 1rem;line-height:1.45;color:#1d1d1f}\
table{border-collapse:collapse;margin:1rem 0;width:100%}th,td{border:1px solid #ccc;padding:.35rem .5rem;text-align:left;vertical-align:top}\
th{background:#f2f2f5}code{background:#f2f2f5;padding:0 .2rem}h1{border-bottom:2px solid #333}h2{margin-top:2rem;border-bottom:1px solid #ccc}\
li{margin:.2rem 0}.chart{overflow-x:auto}";
