//! `kir rules list / check / test`.

use std::io::Write;

use comfy_table::Cell;
use kir_detect::{ProblemSeverity, RuleSet};
use serde_json::json;

use crate::cli::{Format, Global, RulesCheckArgs, RulesListArgs};
use crate::hunt_cmd::{load_rules, read_config};
use crate::output::{csv_line, severity_cell, table, use_color};
use crate::{UserError, exit};

pub fn list(global: &Global, args: &RulesListArgs) -> Result<u8, UserError> {
    let rules = load_rules(&args.source, global)?;
    let color = use_color(global);
    let mut rows: Vec<serde_json::Value> = Vec::new();
    let unconfigured = |i: usize| rules.unconfigured_items(i);
    for (i, d) in rules.detections.iter().enumerate() {
        let m = &d.meta;
        rows.push(json!({
            "id": m.id, "name": m.name, "title": m.title, "kind": "detection", "level": m.severity(),
            "techniques": m.techniques, "threat_matrix": m.threat_matrix, "tags": m.tags,
            "reports": rules.reports(i), "needs_configuration": unconfigured(i),
            "path": m.origin.path, "examples": m.examples.len(),
        }));
    }
    for c in &rules.correlations {
        let m = &c.meta;
        rows.push(json!({
            "id": m.id, "name": m.name, "title": m.title, "kind": "correlation", "level": m.severity(),
            "techniques": m.techniques, "threat_matrix": m.threat_matrix, "tags": m.tags,
            "reports": true, "needs_configuration": false, "path": m.origin.path, "examples": m.examples.len(),
        }));
    }
    rows.sort_by(|a, b| {
        let level = |v: &serde_json::Value| v["level"].as_str().and_then(|l| l.parse::<kir_detect::Level>().ok());
        level(b).cmp(&level(a)).then(a["title"].as_str().cmp(&b["title"].as_str()))
    });
    let mut out = std::io::stdout().lock();
    let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
    let joined = |v: &serde_json::Value| {
        v.as_array().map(|a| a.iter().filter_map(|x| x.as_str()).collect::<Vec<_>>().join(" ")).unwrap_or_default()
    };
    let result = match global.format {
        Format::Json => writeln!(out, "{}", serde_json::to_string_pretty(&rows).unwrap_or_default()),
        Format::Jsonl => rows.iter().try_for_each(|r| writeln!(out, "{r}")),
        Format::Csv => {
            let _ = writeln!(out, "id,name,title,kind,level,techniques,threat_matrix,path");
            rows.iter().try_for_each(|r| {
                writeln!(
                    out,
                    "{}",
                    csv_line(&[
                        text(&r["id"]),
                        text(&r["name"]),
                        text(&r["title"]),
                        text(&r["kind"]),
                        text(&r["level"]),
                        joined(&r["techniques"]),
                        joined(&r["threat_matrix"]),
                        text(&r["path"])
                    ])
                )
            })
        }
        Format::Table | Format::Md | Format::Html => {
            let mut t = table(color, &["LEVEL", "TITLE", "ATT&CK", "THREAT MATRIX", "ID"]);
            for r in &rows {
                let level = r["level"].as_str().and_then(|l| l.parse().ok()).unwrap_or(kir_detect::Level::Medium);
                let mut title = text(&r["title"]);
                if r["kind"] == "correlation" {
                    title.push_str(" (correlation)");
                }
                if r["needs_configuration"] == true {
                    title.push_str(" (off until configured)");
                }
                t.add_row(vec![
                    severity_cell(level, color),
                    Cell::new(title),
                    Cell::new(joined(&r["techniques"])),
                    Cell::new(joined(&r["threat_matrix"])),
                    Cell::new(text(&r["id"])),
                ]);
            }
            writeln!(out, "{t}").and_then(|_| writeln!(out, "{} rules.", rows.len()))
        }
    };
    ignore_broken_pipe(result)?;
    Ok(exit::OK)
}

fn ignore_broken_pipe(result: std::io::Result<()>) -> Result<(), UserError> {
    match result {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(UserError::usage(e.to_string())),
        _ => Ok(()),
    }
}

fn rules_of(args: &RulesCheckArgs) -> Result<RuleSet, UserError> {
    let placeholders = read_config(args.config.as_deref())?;
    if args.paths.is_empty() {
        return Ok(RuleSet::builtin(&placeholders));
    }
    let mut defaults = kir_detect::ruleset::builtin_placeholders();
    defaults.extend(placeholders);
    let mut set = RuleSet::from_texts(&[], defaults);
    set.add_paths(&args.paths)?;
    Ok(set)
}

pub fn check(global: &Global, args: &RulesCheckArgs) -> Result<u8, UserError> {
    let set = rules_of(args)?;
    let errors = set.problems.iter().filter(|p| p.severity == ProblemSeverity::Error).count();
    let warnings = set.problems.len() - errors;
    let mut out = std::io::stdout().lock();
    let result = match global.format {
        Format::Json | Format::Jsonl => {
            let problems: Vec<_> = set
                .problems
                .iter()
                .map(|p| json!({"severity": if p.severity == ProblemSeverity::Error {"error"} else {"warning"}, "path": p.path, "line": p.line, "rule": p.rule, "message": p.message, "rule_loaded": p.rule_loaded}))
                .collect();
            if global.format == Format::Json {
                writeln!(out, "{}", serde_json::to_string_pretty(&json!({"rules": set.detections.len() + set.correlations.len(), "errors": errors, "warnings": warnings, "problems": problems})).unwrap_or_default())
            } else {
                problems.iter().try_for_each(|p| writeln!(out, "{p}"))
            }
        }
        _ => {
            let mut sorted: Vec<_> = set.problems.iter().collect();
            sorted.sort_by(|a, b| a.path.cmp(&b.path).then(a.line.cmp(&b.line)));
            let r = sorted.iter().try_for_each(|p| writeln!(out, "{p}"));
            r.and_then(|_| {
                writeln!(
                    out,
                    "{} rules loaded ({} detection, {} correlation); {errors} error{}, {warnings} warning{}.",
                    set.detections.len() + set.correlations.len(),
                    set.detections.len(),
                    set.correlations.len(),
                    if errors == 1 { "" } else { "s" },
                    if warnings == 1 { "" } else { "s" }
                )
            })
        }
    };
    ignore_broken_pipe(result)?;
    Ok(if errors > 0 { exit::USAGE } else { exit::OK })
}

pub fn test(global: &Global, args: &RulesCheckArgs) -> Result<u8, UserError> {
    let set = rules_of(args)?;
    if let Some(p) = set.problems.iter().find(|p| !p.rule_loaded) {
        return Err(UserError::usage(format!("a rule cannot be loaded: {p}")));
    }
    let results = kir_detect::selftest::run_examples(&set);
    let failed: Vec<_> = results.iter().filter(|r| !r.passed()).collect();
    let mut without_examples = Vec::new();
    for d in &set.detections {
        let (pos, neg) = (
            d.meta.examples.iter().filter(|e| e.should_match).count(),
            d.meta.examples.iter().filter(|e| !e.should_match).count(),
        );
        if pos == 0 || neg == 0 {
            without_examples.push(d.meta.title.clone());
        }
    }
    let mut out = std::io::stdout().lock();
    let result = match global.format {
        Format::Json | Format::Jsonl => {
            let rows: Vec<_> = results
                .iter()
                .map(|r| json!({"rule_id": r.rule_id, "rule": r.rule_title, "path": r.path, "line": r.line, "example": r.example, "expected_match": r.expected, "matched": r.matched, "passed": r.passed(), "error": r.error}))
                .collect();
            if global.format == Format::Json {
                writeln!(
                    out,
                    "{}",
                    serde_json::to_string_pretty(
                        &json!({"passed": results.len() - failed.len(), "failed": failed.len(), "results": rows})
                    )
                    .unwrap_or_default()
                )
            } else {
                rows.iter().try_for_each(|r| writeln!(out, "{r}"))
            }
        }
        _ => {
            let mut r = Ok(());
            for f in &failed {
                let line = f.line.map(|l| format!(":{l}")).unwrap_or_default();
                let why = match &f.error {
                    Some(e) => format!("could not run: {e}"),
                    None if f.expected => "should match but did not".to_string(),
                    None => "should not match but did".to_string(),
                };
                r = r.and_then(|_| {
                    writeln!(out, "FAIL {}{line}: {:?}, example {:?}: {why}", f.path, f.rule_title, f.example)
                });
            }
            if !without_examples.is_empty() && !global.quiet {
                r = r.and_then(|_| {
                    writeln!(
                        out,
                        "note: {} rules lack a must-match or a must-not-match example: {}",
                        without_examples.len(),
                        without_examples.join(", ")
                    )
                });
            }
            r.and_then(|_| writeln!(out, "{} passed, {} failed", results.len() - failed.len(), failed.len()))
        }
    };
    ignore_broken_pipe(result)?;
    Ok(if failed.is_empty() { exit::OK } else { exit::FAIL_ON })
}
