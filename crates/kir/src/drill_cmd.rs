//! `kir drill`: arguments in; the replay goes through the same hunt, store and escalation tick
//! as `kir hunt --store`, with the drill's own incidents (`Store::ingest_drill`); the measures
//! and the report come from kir-drill.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use comfy_table::Cell;
use jiff::Timestamp;
use kir_detect::Finding;
use kir_hunt::HuntOptions;

use crate::cli::{DrillCommand, DrillRunArgs, Format, Global};
use crate::incident_cmd::{now_ms, open_store, runtime, store_err, tick_and_notify, who};
use crate::output::{outln, table, use_color};
use crate::{UserError, exit};

pub fn run(global: &Global, command: &DrillCommand) -> Result<u8, UserError> {
    match command {
        DrillCommand::List { runs } => list(global, *runs),
        DrillCommand::Run(args) => run_drill(global, args),
        DrillCommand::Report { id } => report(global, *id),
    }
}

fn list(global: &Global, runs: bool) -> Result<u8, UserError> {
    if runs {
        let drills = runtime()?.block_on(async {
            let store = open_store(global).await?;
            let d = store.drills().await.map_err(store_err);
            store.shutdown().await;
            d
        })?;
        match global.format {
            Format::Json | Format::Jsonl => {
                for d in &drills {
                    outln!("{}", serde_json::to_string(d)?);
                }
            }
            _ => {
                let mut t = table(use_color(global), &["DRILL", "SCENARIO", "STARTED", "BY", "DETECTED", "INCIDENTS"]);
                for d in &drills {
                    let result: serde_json::Value =
                        d.result.as_deref().and_then(|r| serde_json::from_str(r).ok()).unwrap_or_default();
                    t.add_row(vec![
                        Cell::new(d.id),
                        Cell::new(&d.scenario),
                        Cell::new(kir_store::rfc3339(d.started_at)),
                        Cell::new(&d.who),
                        Cell::new(match result["detected"].as_bool() {
                            Some(true) => "yes",
                            Some(false) => "NO",
                            None => "unfinished",
                        }),
                        Cell::new(result["incidents"].as_array().map(|a| a.len()).unwrap_or(0)),
                    ]);
                }
                outln!("{t}");
            }
        }
        return Ok(exit::OK);
    }
    match global.format {
        Format::Json | Format::Jsonl => {
            for s in kir_drill::SCENARIOS {
                outln!("{}", serde_json::json!({"id": s.id, "title": s.title, "attack": s.attack, "source": s.source}));
            }
        }
        _ => {
            let mut t = table(use_color(global), &["SCENARIO", "ATTACK", "WHAT HAPPENS"]);
            for s in kir_drill::SCENARIOS {
                t.add_row(vec![Cell::new(s.id), Cell::new(if s.attack { "yes" } else { "no" }), Cell::new(s.title)]);
            }
            outln!("{t}");
            outln!("\nRun one: kir drill run SCENARIO --store URL; your own recording: kir drill run --replay FILE");
        }
    }
    Ok(exit::OK)
}

/// A bundled scenario written out for the reader (it reads files), removed when done.
struct Unpacked(PathBuf);

impl Drop for Unpacked {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn run_drill(global: &Global, args: &DrillRunArgs) -> Result<u8, UserError> {
    if !(args.speed.is_finite() && args.speed >= 0.0) {
        return Err(UserError::usage(format!(
            "--speed {}: give 0 (as fast as possible) or a positive factor",
            args.speed
        )));
    }
    let (name, recording, _unpacked) = match &args.scenario {
        Some(id) => {
            let s = kir_drill::scenario(id).ok_or_else(|| {
                let known: Vec<&str> = kir_drill::SCENARIOS.iter().map(|s| s.id).collect();
                UserError::usage(format!("no scenario {id:?}: the bundled ones are {}", known.join(", ")))
            })?;
            let path = std::env::temp_dir().join(format!("kir-drill-{}-{}", std::process::id(), s.file_name));
            std::fs::write(&path, s.bytes).map_err(|e| UserError::usage(format!("{}: {e}", path.display())))?;
            (s.id.to_string(), path.clone(), Some(Unpacked(path)))
        }
        None => ("replay".to_string(), args.replay.first().cloned().unwrap_or_default(), None),
    };
    let paths = if args.replay.is_empty() { vec![recording.clone()] } else { args.replay.clone() };
    let shown_recording = if args.replay.is_empty() {
        format!("scenario {name}")
    } else {
        args.replay.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
    };

    let rules = crate::hunt_cmd::load_rules(&args.source, global)?;
    let inputs = kir_audit::discover(&paths)?;
    let options = HuntOptions { progress: Arc::new(AtomicU64::new(0)), ..Default::default() };
    let hunted = kir_hunt::hunt(&inputs, &rules, &options);
    if let Some(p) = hunted.file_problems.iter().find(|p| p.explicit) {
        return Err(UserError::usage(format!("{}: {}", p.path, p.message)));
    }
    let first_event = hunted.stats.first_event.ok_or_else(|| {
        UserError::usage(format!("{shown_recording}: no audit event with a time in it: nothing to replay"))
    })?;
    let (plan, _) = crate::plan_cmd::load(global)?;
    let actor = who(global);
    let start = Timestamp::from_millisecond(now_ms()?).map_err(|e| UserError::usage(e.to_string()))?;

    let rt = runtime()?;
    let outcome = rt.block_on(async {
        let store = open_store(global).await?;
        let shift = kir_drill::shift_for(first_event, start);
        let drill = store
            .start_drill(&name, &shown_recording, &actor, start.as_millisecond(), shift.as_millis() as i64)
            .await
            .map_err(store_err)?;
        let mut moved: Vec<Finding> = hunted.findings.clone();
        kir_drill::move_findings(&mut moved, first_event, start, args.speed, drill);
        moved.sort_by_key(|f| f.time);
        if args.speed == 0.0 {
            store.ingest_drill(&plan, &moved, &actor, start.as_millisecond(), drill).await.map_err(store_err)?;
            tick_and_notify(&store, &plan, start.as_millisecond(), args.notify, &actor).await?;
        } else {
            // In real time (divided by --speed): each finding is filed when its moved time comes.
            let began = std::time::Instant::now();
            for f in &moved {
                let due = f.time.map(|t| t.duration_since(start)).unwrap_or_default();
                let elapsed = jiff::SignedDuration::try_from(began.elapsed()).unwrap_or_default();
                if due > elapsed {
                    tokio::time::sleep((due - elapsed).unsigned_abs()).await;
                }
                let now = start.as_millisecond() + began.elapsed().as_millis() as i64;
                store.ingest_drill(&plan, std::slice::from_ref(f), &actor, now, drill).await.map_err(store_err)?;
                tick_and_notify(&store, &plan, now, args.notify, &actor).await?;
            }
        }
        let mut incidents = store.drill_incidents(drill).await.map_err(store_err)?;
        let answers = if args.tabletop {
            let answers = tabletop(&store, &plan, &incidents, start.as_millisecond()).await?;
            incidents = store.drill_incidents(drill).await.map_err(store_err)?;
            Some(answers)
        } else {
            None
        };
        let outcome = kir_drill::outcome(&kir_drill::Run {
            drill,
            scenario: &name,
            recording: &shown_recording,
            started_at: start,
            speed: args.speed,
            first_event: Some(first_event),
            findings: &hunted.findings,
            incidents: &incidents,
            notified: args.notify,
        });
        let mut value = serde_json::to_value(&outcome)?;
        if let Some(a) = answers {
            value["tabletop"] = serde_json::to_value(a)?;
        }
        let finished = now_ms()?.max(start.as_millisecond());
        store.finish_drill(drill, &value, finished).await.map_err(store_err)?;
        store.shutdown().await;
        Ok::<_, UserError>((outcome, incidents, value))
    })?;
    let (outcome, incidents, value) = outcome;
    match global.format {
        Format::Json | Format::Jsonl => outln!("{}", serde_json::to_string(&value)?),
        _ => {
            outln!(
                "drill {} ({}): {}",
                outcome.drill,
                outcome.scenario,
                if outcome.detected { "DETECTED" } else { "NOT DETECTED" }
            );
            if let (Some(f), Some(t)) = (&outcome.first_finding, outcome.time_to_detect_s) {
                outln!("  first finding: {} ({}), {:.0} s after the recording began", f.title, f.severity, t);
            }
            outln!("  {} findings; {} incidents", outcome.findings, incidents.len());
            for i in &incidents {
                outln!(
                    "  #{} {} {} (owner {})",
                    i.id,
                    i.severity.to_uppercase(),
                    i.title,
                    i.owner_role.as_deref().unwrap_or("none")
                );
            }
            if !args.notify {
                outln!(
                    "  nobody was paged (--notify pages the plan's channels); the timelines say who would have been"
                );
            }
            outln!("  work the incidents as real ones, then: kir drill report {}", outcome.drill);
        }
    }
    Ok(exit::OK)
}

/// Asks, on stderr, who does each step of each incident's playbook and what they did; reads
/// the answers from stdin. The wall clock times them, from the drill's start.
async fn tabletop(
    store: &kir_store::Store,
    plan: &kir_plan::Plan,
    incidents: &[kir_store::Incident],
    start_ms: i64,
) -> Result<Vec<kir_drill::Answer>, UserError> {
    use std::io::BufRead;
    let began = std::time::Instant::now();
    let now = || start_ms + began.elapsed().as_millis() as i64;
    let mut lines = std::io::stdin().lock().lines();
    let mut ask = |question: &str| -> Option<String> {
        eprint!("{question} > ");
        lines.next().and_then(Result::ok).map(|l| l.trim().to_string())
    };
    let mut answers = Vec::new();
    'incidents: for inc in incidents {
        let Ok(playbook) = crate::respond_cmd::playbook_for(plan, &inc.incident_type) else {
            eprintln!("incident #{} ({}): the plan has no playbook for it", inc.id, inc.incident_type);
            continue;
        };
        eprintln!(
            "\nincident #{} {} {}\nplaybook {}: {}",
            inc.id,
            inc.severity.to_uppercase(),
            inc.title,
            playbook.id,
            playbook.title
        );
        for (i, step) in playbook.steps.iter().enumerate() {
            let n = i + 1;
            let title = step.title.clone().unwrap_or_else(|| step.action.as_str().to_string());
            let approval = step.approval.as_deref().map(|r| format!(" (approval: {r})")).unwrap_or_default();
            eprintln!("step {n}/{} {}: {title}{approval}", playbook.steps.len(), step.action.as_str());
            let Some(who) = ask("  who does it?") else { break 'incidents };
            if who.is_empty() {
                eprintln!("  skipped");
                continue;
            }
            let Some(answer) = ask("  what was done?") else { break 'incidents };
            let at = now();
            let text = format!("tabletop: step {n} {} by {who}: {answer}", step.action.as_str());
            store.note(inc.id, &text, &who, at).await.map_err(store_err)?;
            let current = store.incident(inc.id).await.map_err(store_err)?;
            if current.acknowledged_at.is_none() {
                store.acknowledge(inc.id, &who, at).await.map_err(store_err)?;
            }
            if step.action.contains() && current.contained_at.is_none() {
                store
                    .contain(inc.id, &who, at, Some(format!("tabletop step {n}: {answer}")))
                    .await
                    .map_err(store_err)?;
            }
            answers.push(kir_drill::Answer {
                incident: inc.id,
                step: n,
                action: step.action.as_str(),
                who,
                answer,
                at: kir_store::rfc3339(at),
            });
        }
    }
    Ok(answers)
}

fn report(global: &Global, id: i64) -> Result<u8, UserError> {
    let (plan, _) = crate::plan_cmd::load(global)?;
    let now = now_ms()?;
    let report = runtime()?.block_on(async {
        let store = open_store(global).await?;
        let drill = store.drill(id).await.map_err(store_err)?;
        let incidents = store.drill_incidents(id).await.map_err(store_err)?;
        store.shutdown().await;
        Ok::<_, UserError>(kir_drill::report(&drill, &incidents, &plan, now))
    })?;
    match global.format {
        Format::Json | Format::Jsonl => outln!("{}", serde_json::to_string(&report)?),
        Format::Html => {
            outln!("{}", kir_plan::render::html_page(&format!("Drill {id}"), &kir_drill::markdown(&report)))
        }
        _ => outln!("{}", kir_drill::markdown(&report)),
    }
    Ok(exit::OK)
}
