//! `kir hunt`.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use jiff::Timestamp;
use kir_detect::{Finding, Level, Placeholders, ProblemSeverity, RuleSet};
use kir_hunt::{Filter, HuntOptions, HuntReport, TimelineEntry};
use serde_json::json;

use crate::cli::{Format, Global, HuntArgs, RuleSource};
use crate::output::{csv_line, ellipsize, severity_table, table, use_color};
use crate::{UserError, exit};

/// Progress bars appear for inputs larger than this, on a terminal.
const PROGRESS_THRESHOLD: u64 = 32 << 20;

pub fn run(global: &Global, args: &HuntArgs) -> Result<u8, UserError> {
    let rules = load_rules(&args.source, global)?;
    let filter = Filter {
        min_severity: args.min_severity,
        rules: args.rule.clone(),
        actors: args.actor.clone(),
        namespaces: args.namespace.clone(),
        since: args.since.as_deref().map(|t| time_flag("--since", t)).transpose()?,
        until: args.until.as_deref().map(|t| time_flag("--until", t)).transpose()?,
    };
    let inputs = kir_audit::discover(&args.paths)?;
    if inputs.is_empty() {
        return Err(UserError::usage("no files to read in the given folders"));
    }
    let progress = Arc::new(AtomicU64::new(0));
    let options = HuntOptions {
        threads: args.threads.unwrap_or_else(|| HuntOptions::default().threads),
        read: kir_audit::ReadOptions {
            max_line: args.max_line,
            cluster: args.cluster.as_deref().map(Into::into),
            ..Default::default()
        },
        filter,
        timeline: args.timeline,
        progress: progress.clone(),
        roles: cluster_roles(args.cluster_state.as_deref())?,
        ..Default::default()
    };
    let total: u64 = inputs.iter().filter_map(|i| i.size).sum();
    let show_progress = !global.quiet && std::io::stderr().is_terminal() && total >= PROGRESS_THRESHOLD;
    let done = Arc::new(AtomicBool::new(false));
    let ticker = show_progress.then(|| {
        let bar = indicatif::ProgressBar::new(total);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} reading {bytes}/{total_bytes} [{bar:30}] {bytes_per_sec}, {eta} left",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        let done = done.clone();
        let progress = progress.clone();
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                bar.set_position(progress.load(Ordering::Relaxed));
                std::thread::sleep(Duration::from_millis(100));
            }
            bar.finish_and_clear();
        })
    });
    let mut report = kir_hunt::hunt(&inputs, &rules, &options);
    done.store(true, Ordering::Relaxed);
    if let Some(t) = ticker {
        let _ = t.join();
    }
    kir_hunt::sort_worst_first(&mut report.findings);
    report.timeline.sort_by(|a, b| a.time.cmp(&b.time).then(a.source.line.cmp(&b.source.line)));

    print_input_problems(global, &report);
    let color = use_color(global);
    let out = std::io::stdout();
    let mut out = out.lock();
    let written = if args.timeline {
        print_timeline(&mut out, global, &report, color)
    } else {
        print_findings(&mut out, global, &report, color)
    };
    if let Err(e) = written
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        return Err(UserError::usage(format!("writing the output: {e}")));
    }
    if global.store.is_some() || global.plan.is_some() {
        crate::incident_cmd::file_findings(global, &report.findings, !args.no_notify)?;
    }
    let code = if report.file_problems.iter().any(|p| p.explicit) {
        exit::USAGE
    } else if let Some(level) = args.fail_on
        && report.findings.iter().any(|f| f.severity >= level)
    {
        exit::FAIL_ON
    } else {
        exit::OK
    };
    // The process ends next: freeing the pack and the report one allocation at a time (a few
    // milliseconds) would only delay the exit.
    std::mem::forget(report);
    std::mem::forget(rules);
    Ok(code)
}

/// `--cluster-state`: the Roles and ClusterRoles of a `kubectl get -A -o json` dump.
fn cluster_roles(path: Option<&std::path::Path>) -> Result<kir_detect::context::RoleRegistry, UserError> {
    let mut roles = kir_detect::context::RoleRegistry::default();
    let Some(path) = path else { return Ok(roles) };
    let text = std::fs::read_to_string(path)
        .map_err(|e| UserError::usage(format!("--cluster-state {}: {e}", path.display())))?;
    let (inventory, _) = kir_readiness::Inventory::from_json(&text)
        .map_err(|e| UserError::usage(format!("--cluster-state {}: {e}", path.display())))?;
    for object in &inventory.objects {
        roles.learn_object(object);
    }
    if roles.is_empty() {
        eprintln!("kir: --cluster-state {}: no Role or ClusterRole in it", path.display());
    }
    Ok(roles)
}

/// The built-in pack and the user's rules, with placeholders from `--config`.
pub fn load_rules(source: &RuleSource, global: &Global) -> Result<RuleSet, UserError> {
    // The plan's `detection.placeholders` first; --config overrides them.
    let mut placeholders = Placeholders::default();
    if global.plan.is_some() {
        let (plan, _) = crate::plan_cmd::load(global)?;
        for (name, values) in plan.detection.placeholders.unwrap_or_default() {
            placeholders.insert(name, values);
        }
    }
    placeholders.extend(read_config(source.config.as_deref())?);
    let mut rules = if source.no_builtin {
        let mut defaults = kir_detect::ruleset::builtin_placeholders();
        defaults.extend(placeholders);
        RuleSet::from_texts(&[], defaults)
    } else {
        RuleSet::builtin(&placeholders)
    };
    if !source.rules.is_empty() {
        rules.add_paths(&source.rules)?;
    }
    let fatal: Vec<_> = rules.problems.iter().filter(|p| !p.rule_loaded).collect();
    if !fatal.is_empty() {
        let list = fatal.iter().map(|p| format!("  {p}")).collect::<Vec<_>>().join("\n");
        return Err(UserError::usage(format!(
            "some rules cannot be loaded:\n{list}\n(run `kir rules check` on them for details)"
        )));
    }
    if !global.quiet {
        for p in rules.problems.iter().filter(|p| p.severity == ProblemSeverity::Error || global.verbose > 0) {
            eprintln!("kir: rule {p}");
        }
    }
    if rules.detections.is_empty() {
        return Err(UserError::usage("no rules to run (--no-builtin without --rules?)"));
    }
    Ok(rules)
}

pub fn read_config(path: Option<&std::path::Path>) -> Result<Placeholders, UserError> {
    let Some(path) = path else {
        return Ok(Placeholders::new());
    };
    let text = std::fs::read_to_string(path).map_err(|e| UserError::usage(format!("{}: {e}", path.display())))?;
    kir_detect::parse_placeholders(&text).map_err(|e| UserError::usage(format!("{}: {e}", path.display())))
}

/// `--since`/`--until`: the forms of `kir_core::parse_time_arg`, ages counted back from kir's
/// clock (`KIR_NOW` when set).
fn time_flag(flag: &str, text: &str) -> Result<Timestamp, UserError> {
    kir_core::parse_time_arg(text, kir_core::now).map_err(|e| UserError::usage(format!("{flag}: {e}")))
}

fn print_input_problems(global: &Global, report: &HuntReport) {
    for p in &report.file_problems {
        eprintln!("kir: {}: {}", p.path, p.message);
    }
    if global.quiet {
        return;
    }
    let s = &report.stats;
    let skipped = s.skipped.total();
    let mut line = format!(
        "kir: read {} file{}, {} lines, {} records → {} requests",
        s.files,
        plural(s.files),
        s.lines,
        s.records,
        s.events
    );
    if s.falco_alerts > 0 {
        line.push_str(&format!(", {} Falco alerts", s.falco_alerts));
    }
    if skipped > 0 {
        let reasons: Vec<String> = s.skipped.counts.iter().map(|(k, n)| format!("{n} {k}")).collect();
        line.push_str(&format!("; skipped {skipped}: {}", reasons.join(", ")));
    }
    eprintln!("{line}");
    let shown = if global.verbose > 0 { s.skipped.examples.len() } else { 3 };
    for example in s.skipped.examples.iter().take(shown) {
        eprintln!("kir:   {}", ellipsize(&example.to_string(), 300));
    }
    for r in &report.routine {
        eprintln!(
            "kir: left out as routine: {} findings of \"{}\" by {} (it does this all the time in this input: an operator's everyday work)",
            r.findings, r.title, r.actor
        );
    }
}

fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// `verb resource/subresource namespace/name`, the way a person reads a request.
fn describe_request(
    verb: &str,
    resource: Option<&str>,
    subresource: Option<&str>,
    namespace: Option<&str>,
    name: Option<&str>,
    request_uri: &str,
) -> String {
    let mut resource = resource.unwrap_or_default().to_string();
    if let Some(sub) = subresource {
        resource = format!("{resource}/{sub}");
    }
    let target = match (namespace, name) {
        (Some(ns), Some(name)) => format!("{ns}/{name}"),
        (Some(ns), None) => format!("{ns}/*"),
        (None, Some(name)) => name.to_string(),
        (None, None) if resource.is_empty() => request_uri.to_string(),
        (None, None) => "(all namespaces)".into(),
    };
    format!("{verb} {resource} {target}").trim().to_string()
}

fn describe_finding(f: &Finding) -> String {
    let o = &f.object;
    describe_request(
        &f.verb,
        o.resource.as_deref(),
        o.subresource.as_deref(),
        o.namespace.as_deref(),
        o.name.as_deref(),
        &f.request_uri,
    )
}

fn finding_row_time(f: &Finding) -> String {
    f.time.map(|t| t.strftime("%Y-%m-%d %H:%M:%S").to_string()).unwrap_or_default()
}

/// `value` as a JSON map shows it: every object's members sorted by name (what `--format json`
/// has always printed), without building the whole document as a map first. That took a fifth
/// of a large hunt's time: thousands of findings copied into a tree, then into one string.
struct Sorted<'a, T>(&'a T);

impl<T: serde::Serialize> serde::Serialize for Sorted<'_, T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serde_json::to_value(self.0).map_err(serde::ser::Error::custom)?.serialize(s)
    }
}

/// A list whose items are each [`Sorted`], one at a time.
struct SortedEach<'a, T>(&'a [T]);

impl<T: serde::Serialize> serde::Serialize for SortedEach<'_, T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for item in self.0 {
            seq.serialize_element(&Sorted(item))?;
        }
        seq.end()
    }
}

/// Pretty JSON, streamed through a buffer (stdout's own flushes at every line).
fn write_pretty(out: &mut dyn Write, value: &impl serde::Serialize) -> std::io::Result<()> {
    let mut buffered = std::io::BufWriter::with_capacity(1 << 16, out);
    serde_json::to_writer_pretty(&mut buffered, value)?;
    writeln!(buffered)?;
    buffered.flush()
}

fn print_findings(out: &mut dyn Write, global: &Global, report: &HuntReport, color: bool) -> std::io::Result<()> {
    let findings = &report.findings;
    match global.format {
        Format::Jsonl => {
            for f in findings {
                writeln!(out, "{}", serde_json::to_string(f).unwrap_or_default())?;
            }
        }
        Format::Json => {
            let summary: Vec<_> = kir_hunt::summary_by_rule(findings)
                .into_iter()
                .map(|(id, title, level, n, events)| json!({"rule_id": id, "title": title, "severity": level, "findings": n, "events": events}))
                .collect();
            // Members in the order a JSON map sorts them, as before.
            #[derive(serde::Serialize)]
            struct Document<'a> {
                findings: Vec<kir_detect::finding::SortedKeys<'a>>,
                input_problems: SortedEach<'a, kir_hunt::FileProblem>,
                stats: Sorted<'a, kir_hunt::Stats>,
                summary: Vec<serde_json::Value>,
            }
            let doc = Document {
                findings: findings.iter().map(kir_detect::finding::SortedKeys).collect(),
                input_problems: SortedEach(&report.file_problems),
                stats: Sorted(&report.stats),
                summary,
            };
            write_pretty(out, &doc)?;
        }
        Format::Csv => {
            let header = [
                "severity",
                "time",
                "rule_id",
                "title",
                "user",
                "source_ips",
                "user_agent",
                "verb",
                "api_group",
                "resource",
                "subresource",
                "namespace",
                "name",
                "response_code",
                "audit_ids",
                "techniques",
                "threat_matrix",
                "source_path",
                "source_line",
            ];
            writeln!(out, "{}", header.join(","))?;
            for f in findings {
                let row = [
                    f.severity.to_string(),
                    f.time.map(|t| t.to_string()).unwrap_or_default(),
                    f.rule_id.clone(),
                    f.title.clone(),
                    f.actor.user.clone(),
                    f.actor.source_ips.join(" "),
                    f.actor.user_agent.clone().unwrap_or_default(),
                    f.verb.clone(),
                    f.object.api_group.clone().unwrap_or_default(),
                    f.object.resource.clone().unwrap_or_default(),
                    f.object.subresource.clone().unwrap_or_default(),
                    f.object.namespace.clone().unwrap_or_default(),
                    f.object.name.clone().unwrap_or_default(),
                    f.response_code.map(|c| c.to_string()).unwrap_or_default(),
                    f.audit_ids.join(" "),
                    f.techniques.join(" "),
                    f.threat_matrix.join(" "),
                    f.source.path.clone(),
                    f.source.line.to_string(),
                ];
                writeln!(out, "{}", csv_line(&row))?;
            }
        }
        Format::Table | Format::Md | Format::Html => {
            if findings.is_empty() {
                writeln!(out, "No findings.")?;
            } else {
                let rows = findings
                    .iter()
                    .map(|f| {
                        let rule = if f.event_count > 1 {
                            format!("{} ({} events)", f.title, f.event_count)
                        } else {
                            f.title.clone()
                        };
                        let cells = vec![
                            finding_row_time(f),
                            rule,
                            ellipsize(&f.actor.user, 48),
                            ellipsize(&describe_finding(f), 72),
                            f.response_code.map(|c| c.to_string()).unwrap_or_default(),
                        ];
                        (f.severity, cells)
                    })
                    .collect();
                let header = ["SEVERITY", "TIME (UTC)", "RULE", "ACTOR", "REQUEST", "CODE"];
                writeln!(out, "{}", severity_table(color, &header, rows))?;
                if !global.quiet {
                    writeln!(out)?;
                    let rows = kir_hunt::summary_by_rule(findings)
                        .into_iter()
                        .map(|(_, title, level, n, events)| (level, vec![title, n.to_string(), events.to_string()]))
                        .collect();
                    writeln!(out, "{}", severity_table(color, &["SEVERITY", "RULE", "FINDINGS", "EVENTS"], rows))?;
                }
            }
            if !global.quiet {
                writeln!(out, "{}", verdict(findings, report.stats.events))?;
            }
        }
    }
    Ok(())
}

/// The one line a person reads first.
fn verdict(findings: &[Finding], events: u64) -> String {
    let count = |l: Level| findings.iter().filter(|f| f.severity == l).count();
    let parts: Vec<String> =
        Level::ALL.iter().rev().filter(|l| count(**l) > 0).map(|l| format!("{} {}", count(*l), l)).collect();
    let worst = findings.iter().map(|f| f.severity).max();
    let head = match worst {
        Some(Level::Critical | Level::High) => "Verdict: signs of an attack",
        Some(Level::Medium) => "Verdict: suspicious activity to review",
        Some(_) => "Verdict: no attack found; routine or hygiene findings only",
        None => "Verdict: nothing found",
    };
    if parts.is_empty() {
        format!("{head} in {events} requests.")
    } else {
        format!("{head}: {} in {events} requests.", parts.join(", "))
    }
}

fn print_timeline(out: &mut dyn Write, global: &Global, report: &HuntReport, color: bool) -> std::io::Result<()> {
    let entries = &report.timeline;
    let findings_text =
        |e: &TimelineEntry| e.findings.iter().map(|(t, l)| format!("[{l}] {t}")).collect::<Vec<_>>().join("; ");
    match global.format {
        Format::Jsonl => {
            for e in entries {
                writeln!(out, "{}", serde_json::to_string(e).unwrap_or_default())?;
            }
        }
        Format::Json => {
            #[derive(serde::Serialize)]
            struct Document<'a> {
                stats: Sorted<'a, kir_hunt::Stats>,
                timeline: SortedEach<'a, kir_hunt::TimelineEntry>,
            }
            write_pretty(out, &Document { stats: Sorted(&report.stats), timeline: SortedEach(entries) })?;
        }
        Format::Csv => {
            writeln!(
                out,
                "time,audit_id,user,user_agent,verb,resource,subresource,namespace,name,response_code,findings,source_path,source_line"
            )?;
            for e in entries {
                let row = [
                    e.time.map(|t| t.to_string()).unwrap_or_default(),
                    e.audit_id.clone(),
                    e.user.clone(),
                    e.user_agent.clone().unwrap_or_default(),
                    e.verb.clone(),
                    e.resource.clone().unwrap_or_default(),
                    e.subresource.clone().unwrap_or_default(),
                    e.namespace.clone().unwrap_or_default(),
                    e.name.clone().unwrap_or_default(),
                    e.response_code.map(|c| c.to_string()).unwrap_or_default(),
                    findings_text(e),
                    e.source.path.clone(),
                    e.source.line.to_string(),
                ];
                writeln!(out, "{}", csv_line(&row))?;
            }
        }
        Format::Table | Format::Md | Format::Html => {
            if entries.is_empty() {
                writeln!(out, "No matching requests.")?;
                return Ok(());
            }
            let mut t = table(color, &["TIME (UTC)", "ACTOR", "REQUEST", "CODE", "FINDINGS"]);
            for e in entries {
                let request = describe_request(
                    &e.verb,
                    e.resource.as_deref(),
                    e.subresource.as_deref(),
                    e.namespace.as_deref(),
                    e.name.as_deref(),
                    &e.request_uri,
                );
                let worst = e.findings.iter().map(|(_, l)| *l).max();
                let mut cell = comfy_table::Cell::new(ellipsize(&findings_text(e), 80));
                if let (Some(level), true) = (worst, color) {
                    cell = cell.fg(crate::output::severity_color(level));
                }
                t.add_row(vec![
                    comfy_table::Cell::new(
                        e.time.map(|t| t.strftime("%Y-%m-%d %H:%M:%S%.3f").to_string()).unwrap_or_default(),
                    ),
                    comfy_table::Cell::new(ellipsize(&e.user, 48)),
                    comfy_table::Cell::new(ellipsize(&request, 72)),
                    comfy_table::Cell::new(e.response_code.map(|c| c.to_string()).unwrap_or_default()),
                    cell,
                ]);
            }
            writeln!(out, "{t}")?;
            if !global.quiet {
                writeln!(out, "{} requests on the timeline.", entries.len())?;
            }
        }
    }
    Ok(())
}
