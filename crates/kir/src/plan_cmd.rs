//! `kir plan init / check / render`, and loading the plan other commands use.

use std::io::Read;
use std::path::Path;

use kir_plan::Plan;

use crate::cli::{Format, Global, PlanCommand};
use crate::output::{out, outln};
use crate::{UserError, exit};

pub fn run(global: &Global, command: &PlanCommand) -> Result<u8, UserError> {
    match command {
        PlanCommand::Init => {
            out!("{}", kir_plan::STARTER);
            Ok(exit::OK)
        }
        PlanCommand::Check { path } => check(global, path),
        PlanCommand::Render { path } => {
            let (plan, _) = load_path(path, global)?;
            let md = kir_plan::render::markdown(&plan, crate::incident_cmd::now_ms()?);
            match global.format {
                Format::Html => {
                    out!("{}", kir_plan::render::html_page(&format!("Response plan: {}", plan.metadata.name), &md))
                }
                Format::Md | Format::Table => out!("{md}"),
                Format::Json | Format::Jsonl => outln!("{}", serde_json::to_string_pretty(&plan)?),
                Format::Csv => return Err(UserError::usage("a plan renders as md, html or json")),
            }
            Ok(exit::OK)
        }
    }
}

fn read_text(path: &Path) -> Result<(String, String), UserError> {
    if path.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| UserError::usage(format!("reading the plan from stdin: {e}")))?;
        Ok((text, "<stdin>".into()))
    } else {
        let text = std::fs::read_to_string(path)
            .map_err(|e| UserError::usage(format!("cannot read {}: {e}", path.display())))?;
        Ok((text, path.display().to_string()))
    }
}

fn check(global: &Global, path: &Path) -> Result<u8, UserError> {
    let (text, name) = read_text(path)?;
    match kir_plan::load(&text) {
        Ok(loaded) => {
            if matches!(global.format, Format::Json | Format::Jsonl) {
                outln!("{}", problems_json(&name, &loaded.warnings, true));
            } else {
                for w in &loaded.warnings {
                    eprintln!("{}", w.display(&name));
                }
                if !global.quiet {
                    eprintln!(
                        "{name}: plan {:?} is valid: {} roles, {} severities, {} escalation policies, {} playbooks ({} warning{})",
                        loaded.plan.metadata.name,
                        loaded.plan.roles.len(),
                        loaded.plan.severities.len(),
                        loaded.plan.escalation_policies.len(),
                        loaded.plan.playbooks.len(),
                        loaded.warnings.len(),
                        if loaded.warnings.len() == 1 { "" } else { "s" }
                    );
                }
            }
            Ok(exit::OK)
        }
        Err(problems) => {
            if matches!(global.format, Format::Json | Format::Jsonl) {
                outln!("{}", problems_json(&name, &problems, false));
            } else {
                for p in &problems {
                    eprintln!("{}", p.display(&name));
                }
                let errors = problems.iter().filter(|p| p.is_error()).count();
                eprintln!("{name}: the plan has {errors} error{}", if errors == 1 { "" } else { "s" });
            }
            Ok(exit::USAGE)
        }
    }
}

fn problems_json(file: &str, problems: &[kir_plan::PlanProblem], valid: bool) -> String {
    let list: Vec<serde_json::Value> = problems
        .iter()
        .map(|p| {
            serde_json::json!({
                "file": file, "line": p.line, "column": p.column, "field": p.field,
                "severity": if p.is_error() { "error" } else { "warning" }, "message": p.message,
            })
        })
        .collect();
    serde_json::json!({"valid": valid, "problems": list}).to_string()
}

fn load_path(path: &Path, global: &Global) -> Result<(Plan, String), UserError> {
    let (text, name) = read_text(path)?;
    match kir_plan::load(&text) {
        Ok(loaded) => {
            if global.verbose > 0 {
                for w in &loaded.warnings {
                    eprintln!("kir: {}", w.display(&name));
                }
            }
            Ok((loaded.plan, name))
        }
        Err(problems) => {
            let list = problems.iter().map(|p| format!("  {}", p.display(&name))).collect::<Vec<_>>().join("\n");
            Err(UserError::usage(format!("the plan {name} is not valid:\n{list}")))
        }
    }
}

/// The plan of `--plan` (or `KIR_PLAN`), else the starter plan.
pub fn load(global: &Global) -> Result<(Plan, String), UserError> {
    match &global.plan {
        Some(path) => load_path(path, global),
        None => Ok((kir_plan::starter(), "the starter plan".into())),
    }
}
