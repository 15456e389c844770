//! `kir incident …`, `kir metrics`, and filing `kir hunt`'s findings into incidents.

use std::io::Write;
use std::path::PathBuf;

use comfy_table::Cell;
use kir_detect::{Finding, Level};
use kir_plan::Plan;
use kir_report::IncidentRecord;
use kir_store::{CloseReason, Fired, Incident, ListFilter, Store, rfc3339};

use crate::cli::{Format, Global, IncidentCommand, MetricsArgs};
use crate::output::{csv_line, out, outln, severity_cell, table, use_color};
use crate::{UserError, exit};

/// The clock: `KIR_NOW` (RFC 3339) replaces it for drills and tests.
pub fn now_ms() -> Result<i64, UserError> {
    Ok(kir_core::now().map_err(|e| UserError::usage(e.to_string()))?.as_millisecond())
}

/// A time argument (`--since`, `--seen`, `--now`): a time or an age before kir's clock, so
/// drills with `KIR_NOW` see the same window.
fn time_arg(flag: &str, text: &str) -> Result<i64, UserError> {
    Ok(kir_core::parse_time_arg(text, kir_core::now)
        .map_err(|e| UserError::usage(format!("{flag}: {e}")))?
        .as_millisecond())
}

/// Who acts: `--as`, `KIR_USER`, else the login name.
pub fn who(global: &Global) -> String {
    let present = |s: &String| !s.trim().is_empty();
    global
        .acting_as
        .clone()
        .filter(present)
        .or_else(|| std::env::var("USER").ok().filter(present))
        .or_else(|| std::env::var("USERNAME").ok().filter(present))
        .unwrap_or_else(|| "unknown".into())
}

/// `--store`, else kir.db in the user's data folder.
pub fn store_url(global: &Global) -> Result<String, UserError> {
    if let Some(url) = &global.store {
        return Ok(url.clone());
    }
    let base = std::env::var_os("XDG_DATA_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .ok_or_else(|| UserError::usage("no --store and no home folder: give --store sqlite:PATH"))?;
    Ok(format!("sqlite:{}", base.join("kir").join("kir.db").display()))
}

pub fn runtime() -> Result<tokio::runtime::Runtime, UserError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| UserError::usage(format!("cannot start the async runtime: {e}")))
}

pub async fn open_store(global: &Global) -> Result<Store, UserError> {
    let url = store_url(global)?;
    Store::open(&url).await.map_err(|e| UserError::usage(e.to_string()))
}

/// Files the hunt's findings into incidents, then fires what is due and notifies.
pub fn file_findings(global: &Global, findings: &[Finding], notify: bool) -> Result<(), UserError> {
    let (plan, plan_name) = crate::plan_cmd::load(global)?;
    let who = who(global);
    let now = now_ms()?;
    let rt = runtime()?;
    rt.block_on(async {
        let store = open_store(global).await?;
        let report = store.ingest(&plan, findings, &who, now).await.map_err(|e| UserError::usage(e.to_string()))?;
        let fired = tick_and_notify(&store, &plan, now, notify, &who).await?;
        if !global.quiet {
            let mut lines = Vec::new();
            for id in report.opened.iter().chain(&report.updated) {
                let i = store.incident(*id).await.map_err(|e| UserError::usage(e.to_string()))?;
                let verb = if report.opened.contains(id) { "opened" } else { "updated" };
                lines.push(format!(
                    "  #{} {verb}: {} {} ({}), owner {}, {} findings",
                    i.id,
                    i.severity.to_uppercase(),
                    i.title,
                    i.incident_type,
                    i.owner_role.as_deref().unwrap_or("none"),
                    i.finding_count
                ));
            }
            eprintln!(
                "incidents ({plan_name}, {}): {} opened, {} updated; {} findings filed, {} already known, {} below the plan's threshold, {} ignored; {} escalations fired",
                kir_store::redact_url(&store_url(global)?),
                report.opened.len(),
                report.updated.len(),
                report.attached,
                report.duplicates,
                report.below_threshold,
                report.ignored,
                fired
            );
            for l in lines {
                eprintln!("{l}");
            }
        }
        store.shutdown().await;
        Ok(())
    })
}

/// Fires due escalations and sends their notifications; every attempt goes on the timeline.
pub async fn tick_and_notify(
    store: &Store,
    plan: &Plan,
    now: i64,
    notify: bool,
    who: &str,
) -> Result<usize, UserError> {
    let (fired, sent) = kir_app::tick_and_notify(store, plan, now, notify, who).await.map_err(store_err)?;
    say_sent(&sent);
    Ok(fired)
}

async fn send_for(
    store: &Store,
    plan: &Plan,
    fired: &[Fired],
    now: i64,
    notify: bool,
    who: &str,
) -> Result<kir_app::Sent, UserError> {
    let sent = kir_app::send_for(store, plan, fired, now, notify, who).await.map_err(store_err)?;
    for p in &sent.problems {
        eprintln!("kir: {p}");
    }
    Ok(sent)
}

fn say_sent(sent: &kir_app::Sent) {
    for p in &sent.problems {
        eprintln!("kir: {p}");
    }
    if sent.failed > 0 {
        eprintln!("kir: {} notification channel(s) failed; see the incidents' timelines", sent.failed);
    }
}

/// The SHA-256 of a bundle's manifest: what names a bundle on timelines and in action records.
pub fn manifest_digest(bundle: &std::path::Path) -> Result<String, UserError> {
    let manifest_path = bundle.join(kir_evidence::MANIFEST);
    let manifest =
        std::fs::read(&manifest_path).map_err(|e| UserError::usage(format!("{}: {e}", manifest_path.display())))?;
    use sha2::Digest;
    Ok(hex::encode(sha2::Sha256::digest(&manifest)))
}

/// Puts an evidence bundle on an incident's timeline (with its manifest's hash).
pub fn record_evidence(global: &Global, id: i64, bundle: &std::path::Path, what: &str) -> Result<(), UserError> {
    let digest = manifest_digest(bundle)?;
    record_evidence_digest(global, id, bundle, &digest, what)
}

/// As `record_evidence`, for a bundle whose manifest digest is known (an archived bundle).
pub fn record_evidence_digest(
    global: &Global,
    id: i64,
    bundle: &std::path::Path,
    digest: &str,
    what: &str,
) -> Result<(), UserError> {
    let who = who(global);
    let now = now_ms()?;
    let rt = runtime()?;
    rt.block_on(async {
        let store = open_store(global).await?;
        let message = format!("evidence: {what}: {}", bundle.display());
        let data = serde_json::json!({"bundle": bundle, "manifest_sha256": digest});
        let r = store.record(id, &who, "evidence", &message, Some(data), now).await.map_err(store_err);
        store.shutdown().await;
        r
    })
}

pub fn run(global: &Global, command: &IncidentCommand) -> Result<u8, UserError> {
    let rt = runtime()?;
    rt.block_on(async {
        let store = open_store(global).await?;
        let result = run_async(global, command, &store).await;
        store.shutdown().await;
        result
    })
}

pub fn store_err(e: kir_store::StoreError) -> UserError {
    UserError::usage(e.to_string())
}

async fn run_async(global: &Global, command: &IncidentCommand, store: &Store) -> Result<u8, UserError> {
    let who = who(global);
    let now = now_ms()?;
    let color = use_color(global);
    match command {
        IncidentCommand::Approve(a) => crate::respond_cmd::approve(global, a, store, &who, now).await,
        IncidentCommand::Open(a) => {
            let (plan, _) = crate::plan_cmd::load(global)?;
            let event_time = a.seen.as_deref().map(|t| time_arg("--seen", t)).transpose()?;
            let open = kir_app::OpenIncident {
                title: a.title.clone(),
                incident_type: a.incident_type.clone(),
                severity: a.severity,
                description: a.description.clone(),
                assign: a.assign.clone(),
                event_time,
            };
            let (id, fired, sent) = match kir_app::open_incident(store, &plan, open, &who, now).await {
                Err(kir_store::StoreError::Refused(why)) => return Err(UserError::usage(why)),
                other => other.map_err(store_err)?,
            };
            say_sent(&sent);
            let inc = store.incident(id).await.map_err(store_err)?;
            print_one(global, &inc, &format!("opened incident #{id}"), color)?;
            if !global.quiet && fired > 0 {
                eprintln!("{fired} escalation level(s) fired; see kir incident show {id}");
            }
            Ok(exit::OK)
        }
        IncidentCommand::List(a) => {
            let filter = ListFilter {
                states: a.state.iter().map(|s| s.parse()).collect::<Result<_, String>>().map_err(UserError::usage)?,
                open_only: a.open,
                min_severity: a.severity,
                incident_type: a.incident_type.clone(),
                owner: a.owner.clone(),
                since_ms: a.since.as_deref().map(|t| time_arg("--since", t)).transpose()?,
                cluster: a.cluster.clone(),
            };
            let list = store.list(&filter).await.map_err(store_err)?;
            print_list(global, &list, color, now)?;
            Ok(exit::OK)
        }
        IncidentCommand::Show(a) => {
            let record = record(store, a.id).await?;
            print_show(global, &record, color)?;
            Ok(exit::OK)
        }
        IncidentCommand::Ack(a) => done(global, store.acknowledge(a.id, &who, now).await, "acknowledged", color),
        IncidentCommand::Assign(a) => {
            let (plan, _) = crate::plan_cmd::load(global)?;
            let is_role = plan.roles.iter().any(|r| r.id == a.to);
            let (role, person) = if is_role { (Some(a.to.clone()), None) } else { (None, Some(a.to.clone())) };
            done(global, store.assign(a.id, role, person, &who, now).await, &format!("assigned to {}", a.to), color)
        }
        IncidentCommand::Note(a) => {
            store.note(a.id, &a.text.join(" "), &who, now).await.map_err(store_err)?;
            if !global.quiet {
                eprintln!("note added to incident #{}", a.id);
            }
            Ok(exit::OK)
        }
        IncidentCommand::Escalate(a) => {
            let (plan, _) = crate::plan_cmd::load(global)?;
            let fired = store.escalate(a.id, &who, now).await.map_err(store_err)?;
            let sent = send_for(store, &plan, std::slice::from_ref(&fired), now, true, &who).await?;
            let inc = store.incident(a.id).await.map_err(store_err)?;
            let mut what = format!("escalated to level {}", fired.level + 1);
            if !fired.notify.is_empty() {
                what.push_str(&format!(
                    "; paging {}: {} channel(s) delivered, {} failed, {} not configured",
                    fired.notify.join(", "),
                    sent.delivered,
                    sent.failed,
                    sent.skipped
                ));
            }
            print_one(global, &inc, &what, color)?;
            Ok(if sent.failed > 0 { exit::FAIL_ON } else { exit::OK })
        }
        IncidentCommand::Contain(a) => {
            done(global, store.contain(a.id, &who, now, a.note.clone()).await, "contained", color)
        }
        IncidentCommand::Resolve(a) => {
            done(global, store.resolve(a.id, &who, now, a.note.clone()).await, "resolved", color)
        }
        IncidentCommand::Close(a) => {
            let reason: CloseReason = a.reason.parse().map_err(UserError::usage)?;
            done(
                global,
                store.close(a.id, reason, &who, now, a.note.clone()).await,
                &format!("closed as {}", reason.as_str()),
                color,
            )
        }
        IncidentCommand::Reopen(a) => {
            done(global, store.reopen(a.id, &who, now, a.note.clone()).await, "re-opened", color)
        }
        IncidentCommand::Ioc(a) => {
            for ioc in &a.iocs {
                let Some((kind, value)) = ioc.split_once(':').filter(|(k, v)| !k.is_empty() && !v.is_empty()) else {
                    return Err(UserError::usage(format!(
                        "bad indicator {ioc:?}: write KIND:VALUE, e.g. ip:203.0.113.7"
                    )));
                };
                let added = store.add_ioc(a.id, kind, value, &who, now).await.map_err(store_err)?;
                if !global.quiet {
                    eprintln!("{} {kind}:{value} on incident #{}", if added { "added" } else { "already had" }, a.id);
                }
            }
            Ok(exit::OK)
        }
        IncidentCommand::Tick(a) => {
            let (plan, _) = crate::plan_cmd::load(global)?;
            let now = match &a.now {
                Some(t) => time_arg("--now", t)?,
                None => now,
            };
            // What a `kir` process that died left pending in the outbox, once it is surely over.
            let orphans = kir_store::Orphans { older_than_ms: 10 * 60 * 1000, owners_gone: None };
            let (_, left) =
                kir_app::deliver_orphans(store, &plan, orphans, now, !a.no_notify, &who).await.map_err(store_err)?;
            say_sent(&left);
            let fired = store.tick(now).await.map_err(store_err)?;
            let sent = send_for(store, &plan, &fired, now, !a.no_notify, &who).await?;
            match global.format {
                Format::Json => outln!("{}", serde_json::to_string_pretty(&fired)?),
                Format::Jsonl => {
                    for f in &fired {
                        outln!("{}", serde_json::to_string(f)?);
                    }
                }
                _ => {
                    if !global.quiet {
                        for f in &fired {
                            outln!(
                                "#{} level {}{} of its policy fired: notify {}{}",
                                f.incident_id,
                                f.level + 1,
                                if f.round > 0 { format!(" (repeat {})", f.round) } else { String::new() },
                                if f.notify.is_empty() { "nobody".into() } else { f.notify.join(", ") },
                                f.assign.as_ref().map(|r| format!("; handed to {r}")).unwrap_or_default()
                            );
                        }
                        eprintln!(
                            "{} escalation(s) fired at {}; {} channel(s) delivered, {} failed, {} not configured",
                            fired.len(),
                            rfc3339(now),
                            sent.delivered,
                            sent.failed,
                            sent.skipped
                        );
                    }
                }
            }
            // Cron mails what a job prints and watches its exit code: a page that did not go out
            // must be seen.
            Ok(if sent.failed > 0 { exit::FAIL_ON } else { exit::OK })
        }
        IncidentCommand::Report(a) => {
            let record = record(store, a.id).await?;
            if let Some(path) = &a.chart {
                std::fs::write(path, kir_report::timeline_svg(&record))
                    .map_err(|e| UserError::usage(format!("cannot write {}: {e}", path.display())))?;
            }
            match global.format {
                Format::Html => out!("{}", kir_report::report_html(&record)),
                Format::Md | Format::Table => out!("{}", kir_report::report_markdown(&record)),
                Format::Json | Format::Jsonl => outln!("{}", serde_json::to_string_pretty(&record_json(&record))?),
                Format::Csv => return Err(UserError::usage("a report is md, html or json")),
            }
            Ok(exit::OK)
        }
    }
}

fn done(global: &Global, result: kir_store::Result<Incident>, what: &str, color: bool) -> Result<u8, UserError> {
    let inc = result.map_err(store_err)?;
    print_one(global, &inc, what, color)?;
    Ok(exit::OK)
}

fn print_one(global: &Global, inc: &Incident, what: &str, color: bool) -> Result<(), UserError> {
    match global.format {
        Format::Json | Format::Jsonl => outln!("{}", inc.summary_json()),
        _ => {
            if !global.quiet {
                let sev = inc
                    .severity
                    .parse()
                    .map(|l: Level| severity_cell(l, color).content())
                    .unwrap_or(inc.severity.clone());
                outln!(
                    "#{} {what}: {sev} {} [{}] owner {}{}",
                    inc.id,
                    inc.title,
                    inc.state,
                    inc.owner_role.as_deref().unwrap_or("none"),
                    inc.owner_person.as_deref().map(|p| format!(" ({p})")).unwrap_or_default()
                );
            }
        }
    }
    Ok(())
}

async fn record(store: &Store, id: i64) -> Result<IncidentRecord, UserError> {
    kir_app::incident_record(store, id).await.map_err(store_err)
}

fn record_json(r: &IncidentRecord) -> serde_json::Value {
    kir_app::incident_json(r)
}

fn age(now: i64, then: i64) -> String {
    kir_report::human_duration(now - then)
}

fn print_list(global: &Global, list: &[Incident], color: bool, now: i64) -> Result<(), UserError> {
    let out = std::io::stdout();
    let mut out = out.lock();
    let result = match global.format {
        Format::Json => writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&list.iter().map(Incident::summary_json).collect::<Vec<_>>())?
        ),
        Format::Jsonl => list.iter().try_for_each(|i| writeln!(out, "{}", i.summary_json())),
        Format::Csv => {
            writeln!(out, "id,title,type,severity,state,owner_role,owner,finding_count,created,updated")?;
            list.iter().try_for_each(|i| {
                writeln!(
                    out,
                    "{}",
                    csv_line(&[
                        i.id.to_string(),
                        i.title.clone(),
                        i.incident_type.clone(),
                        i.severity.clone(),
                        i.state.clone(),
                        i.owner_role.clone().unwrap_or_default(),
                        i.owner_person.clone().unwrap_or_default(),
                        i.finding_count.to_string(),
                        rfc3339(i.created_at),
                        rfc3339(i.updated_at),
                    ])
                )
            })
        }
        Format::Md | Format::Html => {
            let mut md = String::from(
                "| id | severity | state | type | owner | findings | opened | title |\n|---|---|---|---|---|---|---|---|\n",
            );
            for i in list {
                md.push_str(&format!(
                    "| {} | {} | {} | {} | {} | {} | {} | {} |\n",
                    i.id,
                    i.severity,
                    i.state,
                    i.incident_type,
                    i.owner_role.as_deref().unwrap_or(""),
                    i.finding_count,
                    rfc3339(i.created_at),
                    i.title.replace('|', "\\|")
                ));
            }
            if global.format == Format::Html {
                write!(out, "{}", kir_plan::render::html_page("Incidents", &format!("# Incidents\n\n{md}")))
            } else {
                write!(out, "{md}")
            }
        }
        Format::Table => {
            if list.is_empty() {
                if !global.quiet {
                    eprintln!("no incidents");
                }
                return Ok(());
            }
            let mut t = table(color, &["ID", "SEVERITY", "STATE", "TYPE", "OWNER", "FINDINGS", "AGE", "TITLE"]);
            for i in list {
                let sev =
                    i.severity.parse().map(|l| severity_cell(l, color)).unwrap_or_else(|_| Cell::new(&i.severity));
                let owner = match (&i.owner_role, &i.owner_person) {
                    (Some(r), Some(p)) => format!("{r} ({p})"),
                    (Some(r), None) => r.clone(),
                    (None, Some(p)) => p.clone(),
                    (None, None) => "-".into(),
                };
                t.add_row(vec![
                    Cell::new(i.id),
                    sev,
                    Cell::new(&i.state),
                    Cell::new(&i.incident_type),
                    Cell::new(owner),
                    Cell::new(i.finding_count),
                    Cell::new(age(now, i.created_at)),
                    Cell::new(&i.title),
                ]);
            }
            writeln!(out, "{t}")
        }
    };
    match result {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(UserError::usage(format!("writing the output: {e}")))
        }
        _ => Ok(()),
    }
}

fn print_show(global: &Global, r: &IncidentRecord, color: bool) -> Result<(), UserError> {
    match global.format {
        Format::Json | Format::Jsonl => {
            outln!("{}", serde_json::to_string_pretty(&record_json(r))?);
            return Ok(());
        }
        Format::Md => {
            out!("{}", kir_report::report_markdown(r));
            return Ok(());
        }
        Format::Html => {
            out!("{}", kir_report::report_html(r));
            return Ok(());
        }
        _ => {}
    }
    let i = &r.incident;
    let sev = i.severity.parse().map(|l: Level| severity_cell(l, color).content()).unwrap_or(i.severity.clone());
    let mut out = String::new();
    out.push_str(&format!("Incident #{}: {}\n", i.id, i.title));
    out.push_str(&format!("  severity   {sev}\n  type       {}\n  state      {}", i.incident_type, i.state));
    if let Some(reason) = &i.close_reason {
        out.push_str(&format!(" ({reason})"));
    }
    out.push_str(&format!(
        "\n  owner      {}{}\n  opened     {} by {} ({})\n",
        i.owner_role.as_deref().unwrap_or("none"),
        i.owner_person.as_deref().map(|p| format!(" ({p})")).unwrap_or_default(),
        rfc3339(i.created_at),
        i.reported_by,
        if i.source == "manual" { "reported by a person" } else { "from findings" }
    ));
    if let Some(t) = i.first_event_at {
        out.push_str(&format!("  first event {}\n", rfc3339(t)));
    }
    for (name, t) in [
        ("acknowledged", i.acknowledged_at),
        ("contained", i.contained_at),
        ("resolved", i.resolved_at),
        ("closed", i.closed_at),
    ] {
        if let Some(t) = t {
            out.push_str(&format!("  {name:<10} {}\n", rfc3339(t)));
        }
    }
    out.push_str(&format!(
        "  plan       {} ({}), escalation policy {}\n",
        i.plan_name,
        i.plan_digest,
        i.policy_id.as_deref().unwrap_or("none")
    ));
    if let Some(d) = &i.description {
        out.push_str(&format!("\n{d}\n"));
    }
    if !r.iocs.is_empty() {
        out.push_str("\nIndicators:\n");
        for ioc in &r.iocs {
            out.push_str(&format!("  {}:{}\n", ioc.kind, ioc.value));
        }
    }
    let objects = kir_report::affected_objects(&r.findings);
    if !objects.is_empty() {
        out.push_str("\nAffected objects:\n");
        for (o, n) in objects {
            out.push_str(&format!("  {o} ({n})\n"));
        }
    }
    out!("{out}");
    if !r.findings.is_empty() {
        outln!("\nFindings ({}):", r.findings.len());
        let mut t = table(color, &["EVENT TIME", "SEVERITY", "RULE", "ACTOR", "OBJECT"]);
        for f in &r.findings {
            let sev = f.severity.parse().map(|l| severity_cell(l, color)).unwrap_or_else(|_| Cell::new(&f.severity));
            let object = [f.resource.as_deref(), f.namespace.as_deref(), f.name.as_deref()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join("/");
            t.add_row(vec![
                Cell::new(f.event_time.map(rfc3339).unwrap_or_default()),
                sev,
                Cell::new(&f.title),
                Cell::new(&f.actor),
                Cell::new(object),
            ]);
        }
        outln!("{t}");
    }
    outln!("\nTimeline:");
    let mut t = table(color, &["WHEN", "WHO", "WHAT", "DETAIL"]);
    for e in &r.timeline {
        t.add_row(vec![Cell::new(rfc3339(e.at)), Cell::new(&e.who), Cell::new(&e.kind), Cell::new(&e.message)]);
    }
    outln!("{t}");
    Ok(())
}

pub fn metrics(global: &Global, args: &MetricsArgs) -> Result<u8, UserError> {
    let since = args.since.as_deref().map(|t| time_arg("--since", t)).transpose()?;
    let rt = runtime()?;
    let m = rt.block_on(async {
        let store = open_store(global).await?;
        let m = kir_app::response_metrics(&store, since).await.map_err(store_err);
        store.shutdown().await;
        m
    })?;
    match global.format {
        Format::Json | Format::Jsonl => outln!("{}", serde_json::to_string_pretty(&m)?),
        Format::Html => {
            // The chart is kir's own markup, added after the Markdown (which lets none through).
            let page = kir_plan::render::html_page("Response metrics", &kir_report::metrics_markdown(&m));
            let chart = kir_report::trend_svg(&m);
            out!("{}", page.replacen("<h2>Week by week</h2>", &format!("<h2>Week by week</h2>\n{chart}"), 1))
        }
        _ => out!("{}", kir_report::metrics_markdown(&m)),
    }
    Ok(exit::OK)
}
