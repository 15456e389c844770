//! `kir readiness`: arguments in, `kir_readiness::assess` over a dump or the live cluster,
//! the report out as a table, JSON, Markdown or HTML.

use comfy_table::Cell;
use kir_readiness::{Input, Inventory, Report, Status};

use crate::cli::{Format, Global, ReadinessArgs};
use crate::output::{outln, table, use_color};
use crate::{UserError, exit};

fn read(path: &std::path::Path, what: &str) -> Result<String, UserError> {
    std::fs::read_to_string(path).map_err(|e| UserError::usage(format!("{what} {}: {e}", path.display())))
}

pub fn run(global: &Global, args: &ReadinessArgs) -> Result<u8, UserError> {
    let flags = args
        .apiserver_manifest
        .as_deref()
        .map(|p| {
            kir_readiness::Flags::parse(&read(p, "--apiserver-manifest")?)
                .map_err(|e| UserError::usage(format!("{}: {e}", p.display())))
        })
        .transpose()?;
    let policy = args
        .audit_policy
        .as_deref()
        .map(|p| {
            kir_readiness::AuditPolicy::parse(&read(p, "--audit-policy")?)
                .map_err(|e| UserError::usage(format!("{}: {e}", p.display())))
        })
        .transpose()?;
    let plan_text = global.plan.as_deref().map(|p| read(p, "--plan")).transpose()?;
    let (plan, plan_errors) = match plan_text.as_deref().map(kir_plan::check::load) {
        None => (None, Vec::new()),
        Some(Ok(loaded)) => (Some(loaded.plan), Vec::new()),
        Some(Err(problems)) => {
            (None, problems.iter().filter(|p| p.is_error()).map(|p| format!("{}: {}", p.field, p.message)).collect())
        }
    };
    let rules = crate::hunt_cmd::load_rules(&args.source, global)?;
    let evidence_key =
        args.sign_key.as_deref().map(|p| kir_evidence::load_key(p).map(|_| ()).map_err(|e| e.to_string()));

    let (inventory, permissions) = match &args.from {
        Some(path) => {
            let text = read(path, "--from")?;
            let (inventory, notes) =
                Inventory::from_json(&text).map_err(|e| UserError::usage(format!("{}: {e}", path.display())))?;
            if !global.quiet {
                for n in notes {
                    eprintln!("kir: {}: {n}", path.display());
                }
            }
            (inventory, None)
        }
        None => live(global, plan.as_ref())?,
    };
    let notification_test = match (args.test_notify, plan.as_ref()) {
        (false, _) => None,
        (true, None) => return Err(UserError::usage("--test-notify needs a plan that loads (--plan)")),
        (true, Some(plan)) => Some(test_notifications(plan)?),
    };
    let input = Input {
        inventory: Some(&inventory),
        flags: flags.as_ref(),
        audit_policy: policy.as_ref(),
        plan: plan.as_ref().zip(plan_text.as_deref()),
        plan_errors,
        rules: Some(&rules),
        notification_test,
        event_rate: args.event_rate.filter(|r| r.is_finite() && *r >= 0.0),
        system_namespaces: args.system_namespaces.clone(),
        evidence_key,
        permissions,
    };
    let report = kir_readiness::assess(&input);
    print(global, &report)?;
    Ok(match args.fail_on {
        Some(level) if report.fails_at(level) => exit::FAIL_ON,
        _ => exit::OK,
    })
}

/// One test notice per owner role of the plan, through its channels as an escalation would
/// send it; says per role whether any channel delivered.
fn test_notifications(plan: &kir_plan::Plan) -> Result<Vec<kir_readiness::Reached>, UserError> {
    let mut roles: Vec<&str> = plan.ownership.iter().map(|o| o.owner.as_str()).collect();
    roles.sort();
    roles.dedup();
    let now = kir_store::rfc3339(crate::incident_cmd::now_ms()?);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let notifier = kir_notify::Notifier::new(kir_notify::Retry::default());
    Ok(rt.block_on(async {
        let mut out = Vec::new();
        for role in roles {
            let notice = kir_notify::Notice {
                incident_id: 0,
                title: format!("kir readiness: test notification for {role} (no incident)"),
                severity: "informational".into(),
                severity_label: None,
                incident_type: "readiness-test".into(),
                state: "test".into(),
                owner_role: Some(role.to_string()),
                owner: None,
                finding_count: 0,
                created: now.clone(),
                reason: "a readiness check (kir readiness --test-notify): nothing to do".into(),
                roles: vec![role.to_string()],
                on_call: Vec::new(),
            };
            let deliveries = notifier.notify_roles(plan, &notice).await;
            let detail = deliveries
                .iter()
                .map(|d| match (&d.skipped, d.delivered) {
                    (Some(why), _) => format!("{} skipped: {why}", d.channel),
                    (None, true) => format!("{} delivered", d.channel),
                    (None, false) => format!(
                        "{} failed: {}",
                        d.channel,
                        d.attempts.last().and_then(|a| a.error.clone()).unwrap_or_else(|| "no answer".into())
                    ),
                })
                .collect::<Vec<_>>()
                .join(", ");
            out.push(kir_readiness::Reached {
                role: role.to_string(),
                delivered: deliveries.iter().any(|d| d.delivered),
                detail: if detail.is_empty() { "no channel".into() } else { detail },
            });
        }
        out
    }))
}

/// Lists every kind readiness reads, read-only, and asks which containment permissions the
/// plan's playbooks need are refused. A kind that cannot be listed (forbidden) is left out and
/// said; its checks then say unknown.
fn live(global: &Global, plan: Option<&kir_plan::Plan>) -> Result<(Inventory, Option<Vec<String>>), UserError> {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let starter = kir_plan::starter();
    let plan = plan.unwrap_or(&starter);
    rt.block_on(async {
        let (client, target) =
            kir_cluster::connect(global.kubeconfig.as_deref(), crate::contain_cmd::one_context(global)?).await?;
        let mut inventory = Inventory::default();
        for (kind, prefix, plural) in kir_readiness::KINDS {
            match kir_cluster::list(&client, &format!("{prefix}/{plural}"), plural).await {
                Ok(mut list) => {
                    inventory.kinds_seen.insert(kind.to_string());
                    for mut item in list["items"].as_array_mut().map(std::mem::take).unwrap_or_default() {
                        // A typed list's items carry no kind of their own.
                        item["kind"] = serde_json::json!(kind);
                        inventory.objects.push(item);
                    }
                }
                Err(e) if e.is_connection() => {
                    return Err(UserError::usage(format!("{e} (cluster at {})", target.server)));
                }
                Err(e) => {
                    if !global.quiet {
                        eprintln!("kir: not read: {plural}: {e}");
                    }
                }
            }
        }
        let mut wanted = Vec::new();
        for step in plan.playbooks.iter().flat_map(|p| &p.steps) {
            wanted.extend(kir_cluster::contain::permissions_for_action(step.action.as_str()));
        }
        wanted.sort();
        wanted.dedup();
        let missing =
            kir_cluster::contain::missing_permissions(&client, &wanted).await.map_err(UserError::from_action)?;
        Ok((inventory, Some(missing.iter().map(|p| p.to_string()).collect())))
    })
}

fn print(global: &Global, report: &Report) -> Result<(), UserError> {
    match global.format {
        Format::Json | Format::Jsonl => outln!("{}", serde_json::to_string(report)?),
        Format::Md => outln!("{}", kir_readiness::markdown(report)),
        Format::Html => outln!("{}", kir_plan::render::html_page("kir readiness", &kir_readiness::markdown(report))),
        Format::Csv => {
            outln!("id,area,status,severity,objects,fix");
            for c in &report.checks {
                outln!(
                    "{},{},{},{},{},{}",
                    crate::output::csv_field(c.id),
                    c.area.as_str(),
                    c.status.as_str(),
                    c.severity,
                    crate::output::csv_field(&c.objects.join(" ")),
                    crate::output::csv_field(&c.fix)
                );
            }
        }
        Format::Table => {
            let color = use_color(global);
            let mut t = table(color, &["STATUS", "SEVERITY", "CHECK", "OBJECTS"]);
            for c in &report.checks {
                let status = match (c.status, color) {
                    (Status::Fail, true) => format!("\u{1b}[31m{}\u{1b}[0m", "FAIL"),
                    (Status::Warn, true) => format!("\u{1b}[33m{}\u{1b}[0m", "WARN"),
                    (s, _) => s.as_str().to_uppercase(),
                };
                let objects = match c.objects.len() {
                    0 => String::new(),
                    n if n <= 4 => c.objects.join("\n"),
                    n => format!("{}\n… and {} more (--format json)", c.objects[..3].join("\n"), n - 3),
                };
                t.add_row(vec![
                    Cell::new(status),
                    Cell::new(c.severity),
                    Cell::new(format!("{}\n  {}", c.title, c.detail)),
                    Cell::new(objects),
                ]);
            }
            outln!("{t}");
            let areas: Vec<String> =
                report.areas.iter().map(|a| format!("{} {}/100", a.area.title(), a.score)).collect();
            outln!("Readiness {}/100 ({})", report.score, areas.join(", "));
            let fixes: Vec<&kir_readiness::Check> = report
                .checks
                .iter()
                .filter(|c| matches!(c.status, Status::Fail | Status::Warn) && !c.fix.is_empty())
                .collect();
            if !fixes.is_empty() {
                outln!("\nFixes:");
                for c in fixes {
                    outln!("  {}: {}", c.id, c.fix.replace('\n', "\n    "));
                }
            }
        }
    }
    Ok(())
}
