//! `kir respond ID` and `kir incident approve ID`: the plan's playbook, run step by step.
//!
//! The state of a run lives on the incident's timeline (append-only): a `playbook` entry for each
//! step done, failed or waiting, an `approval` entry for each approval. Running again reads it
//! and goes on where it stopped, so a crash, a refusal or a night's wait loses nothing.

use std::collections::BTreeSet;

use kir_app::playbook::{progress, step_entries, step_title};
use kir_plan::schema::{Playbook, Step};
use kir_plan::{Action, Plan};
use kir_store::{Store, TimelineEntry};
use serde_json::{Value, json};

use crate::cli::{ActionArgs, ApproveArgs, CollectCommon, Format, Global, RespondArgs};
use crate::contain_cmd::{Ctx, Request};
use crate::output::outln;
use crate::{UserError, exit};
use kir_cluster::contain::Subject;

/// `kir respond` waits for an approval or a person's confirmation.
pub const WAITING: u8 = exit::WAITING;

fn store_err(e: kir_store::StoreError) -> UserError {
    UserError::usage(e.to_string())
}

/// The incident's playbook, from its type.
pub fn playbook_for<'p>(plan: &'p Plan, incident_type: &str) -> Result<&'p Playbook, UserError> {
    kir_app::playbook::playbook_for(plan, incident_type).map_err(UserError::usage)
}

/// What the steps act on.
#[derive(Debug, Default, Clone)]
struct Targets {
    pods: Vec<(String, String)>,
    nodes: BTreeSet<String>,
    service_accounts: BTreeSet<(String, String)>,
    users: BTreeSet<String>,
    workloads: BTreeSet<(&'static str, String, String)>,
    cronjobs: BTreeSet<(String, String)>,
}

impl Targets {
    fn to_json(&self) -> Value {
        json!({
            "pods": self.pods.iter().map(|(ns, n)| format!("{ns}/{n}")).collect::<Vec<_>>(),
            "nodes": self.nodes,
            "service_accounts": self.service_accounts.iter().map(|(ns, n)| format!("{ns}/{n}")).collect::<Vec<_>>(),
            "users": self.users,
            "workloads": self.workloads.iter().map(|(r, ns, n)| format!("{r}/{ns}/{n}")).collect::<Vec<_>>(),
            "cronjobs": self.cronjobs.iter().map(|(ns, n)| format!("{ns}/{n}")).collect::<Vec<_>>(),
        })
    }

    fn from_json(v: &Value) -> Targets {
        let strings = |k: &str| -> Vec<String> {
            v.get(k)
                .and_then(|a| a.as_array())
                .into_iter()
                .flatten()
                .filter_map(|s| s.as_str())
                .map(str::to_string)
                .collect()
        };
        let pair = |s: &String| kir_core::NamespacedName::parse(s, "target", None).ok().map(|n| (n.namespace, n.name));
        Targets {
            pods: strings("pods").iter().filter_map(pair).collect(),
            nodes: strings("nodes").into_iter().collect(),
            service_accounts: strings("service_accounts").iter().filter_map(pair).collect(),
            users: strings("users").into_iter().collect(),
            workloads: strings("workloads")
                .iter()
                .filter_map(|w| {
                    let mut parts = w.splitn(3, '/');
                    let resource = kir_cluster::contain::workload_resource(parts.next()?)?;
                    Some((resource, parts.next()?.to_string(), parts.next()?.to_string()))
                })
                .collect(),
            cronjobs: strings("cronjobs").iter().filter_map(pair).collect(),
        }
    }
}

/// The targets recorded by an earlier run of this playbook (the newest), if any, with the
/// identity of the cluster they were read from.
fn recorded_targets(timeline: &[TimelineEntry], playbook: &str) -> Option<(Targets, Value)> {
    timeline.iter().rev().filter(|e| e.kind == "playbook").find_map(|e| {
        let data: Value = serde_json::from_str(e.data.as_deref()?).ok()?;
        (data["playbook"] == playbook)
            .then(|| data.get("targets").map(|t| (Targets::from_json(t), data["cluster"].clone())))
            .flatten()
    })
}

fn split_pod(p: &str) -> Result<(String, String), UserError> {
    let n = kir_core::NamespacedName::parse(p, "pod", None).map_err(UserError::usage)?;
    Ok((n.namespace, n.name))
}

/// Pods from `--pod` or the findings; service accounts and users from the findings' actors.
fn targets_from(args: &RespondArgs, findings: &[kir_store::StoredFinding]) -> Result<Targets, UserError> {
    let mut t = Targets::default();
    if !args.pod.is_empty() {
        for p in &args.pod {
            t.pods.push(split_pod(p)?);
        }
    } else {
        let mut seen = BTreeSet::new();
        for f in findings {
            if f.resource.as_deref() == Some("pods")
                && let (Some(ns), Some(name)) = (&f.namespace, &f.name)
                && seen.insert((ns.clone(), name.clone()))
            {
                t.pods.push((ns.clone(), name.clone()));
            }
        }
    }
    for f in findings {
        if let Some(rest) = f.actor.strip_prefix("system:serviceaccount:") {
            if let Some((ns, name)) = rest.split_once(':') {
                t.service_accounts.insert((ns.to_string(), name.to_string()));
            }
        } else if !f.actor.is_empty() && !f.actor.starts_with("system:") {
            t.users.insert(f.actor.clone());
        }
    }
    Ok(t)
}

/// Reads each pod's node, service account and owners. A pod that is gone is said so and left out.
async fn resolve(client: &kir_cluster::Client, t: &mut Targets, quiet: bool) -> Result<(), UserError> {
    let mut present = Vec::new();
    for (ns, name) in &t.pods {
        match kir_cluster::contain::pod_context(client, ns, name).await {
            Ok(c) => {
                if let Some(n) = c.node {
                    t.nodes.insert(n);
                }
                if let Some(sa) = c.service_account {
                    t.service_accounts.insert((ns.clone(), sa));
                }
                if let Some((resource, w)) = c.workload {
                    t.workloads.insert((resource, ns.clone(), w));
                }
                if let Some(cj) = c.cronjob {
                    t.cronjobs.insert((ns.clone(), cj));
                }
                present.push((ns.clone(), name.clone()));
            }
            Err(kir_cluster::Error::NotFound { .. }) => {
                if !quiet {
                    eprintln!("kir: pod {ns}/{name} no longer exists: steps leave it out");
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    t.pods = present;
    Ok(())
}

/// The containment requests of a step.
fn requests_of(step: &Step, t: &Targets) -> Vec<Request> {
    let pods = || t.pods.iter();
    match step.action {
        Action::Label => pods()
            .map(|(ns, p)| Request::LabelPod { namespace: ns.clone(), pod: p.clone() })
            .chain(t.nodes.iter().map(|n| Request::LabelNode { node: n.clone() }))
            .collect(),
        Action::IsolatePod => {
            let allow: Vec<String> = step
                .with
                .get("allowCidr")
                .map(|c| c.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect())
                .unwrap_or_default();
            pods()
                .map(|(ns, p)| Request::Isolate { namespace: ns.clone(), pod: p.clone(), allow_cidrs: allow.clone() })
                .collect()
        }
        Action::CordonNode => t.nodes.iter().map(|n| Request::Cordon { node: n.clone() }).collect(),
        Action::QuarantineNode => t.nodes.iter().map(|n| Request::Quarantine { node: n.clone() }).collect(),
        Action::DrainNode => {
            let limit = step
                .with
                .get("timeout")
                .and_then(|d| kir_core::Duration::parse(d).ok())
                .map(|d| d.as_secs().max(0) as u64)
                .unwrap_or(300);
            t.nodes
                .iter()
                .map(|n| Request::Drain {
                    node: n.clone(),
                    interval: std::time::Duration::from_secs(5),
                    limit: std::time::Duration::from_secs(limit),
                })
                .collect()
        }
        Action::RevokeServiceaccount => t
            .service_accounts
            .iter()
            .map(|(ns, n)| Request::Revoke(Subject::ServiceAccount { namespace: ns.clone(), name: n.clone() }))
            .collect(),
        Action::RevokeUser => t.users.iter().map(|u| Request::Revoke(Subject::User(u.clone()))).collect(),
        Action::ScaleDown => t
            .workloads
            .iter()
            .map(|(r, ns, n)| Request::ScaleDown { resource: r, namespace: ns.clone(), name: n.clone() })
            .collect(),
        Action::SuspendCronjob => {
            t.cronjobs.iter().map(|(ns, n)| Request::Suspend { namespace: ns.clone(), name: n.clone() }).collect()
        }
        Action::DeletePod => pods().map(|(ns, p)| Request::Delete { namespace: ns.clone(), pod: p.clone() }).collect(),
        Action::CollectEvidence | Action::SnapshotVolumes | Action::SnapshotNode | Action::Notify | Action::Manual => {
            vec![]
        }
    }
}

/// Steps a person does (kir shows what, the person confirms). A node snapshot is kir's when the
/// step gives the cloud's command (`with: {command: …}`).
fn by_hand(step: &Step) -> bool {
    match step.action {
        Action::Manual | Action::Notify => true,
        Action::SnapshotNode => !step.with.contains_key("command"),
        _ => false,
    }
}

struct Run<'a> {
    global: &'a Global,
    args: &'a RespondArgs,
    incident: i64,
    playbook: String,
    report: Vec<Value>,
}

impl Run<'_> {
    fn say(&mut self, n: usize, step: &Step, status: &str, detail: &str) -> Result<(), UserError> {
        if !matches!(self.global.format, Format::Json | Format::Jsonl) {
            let mark = match status {
                "done" | "done earlier" | "would run" => "✓",
                "waiting for approval" | "waiting for you" | "needs approval" => "⏸",
                "failed" => "✗",
                _ => "·",
            };
            outln!(
                "{mark} step {n} {}: {} — {status}{}",
                step.action.as_str(),
                step_title(step),
                if detail.is_empty() { String::new() } else { format!(": {detail}") }
            );
        }
        self.report.push(json!({"step": n, "action": step.action.as_str(), "title": step_title(step),
            "approval": step.approval, "status": status, "detail": detail}));
        Ok(())
    }

    fn finish(&self, state: &str) -> Result<(), UserError> {
        if matches!(self.global.format, Format::Json | Format::Jsonl) {
            outln!(
                "{}",
                json!({"incident": self.incident, "playbook": self.playbook, "dry_run": self.args.dry_run, "state": state, "steps": self.report})
            );
        }
        Ok(())
    }
}

async fn record_step(
    store: &Store,
    r: &Run<'_>,
    n: usize,
    step: &Step,
    status: &str,
    detail: Value,
    who: &str,
) -> Result<(), UserError> {
    if r.args.dry_run {
        return Ok(());
    }
    let now = crate::incident_cmd::now_ms()?;
    let message = format!("playbook {} step {n} ({}): {status}", r.playbook, step.action.as_str());
    let data = json!({"playbook": r.playbook, "step": n, "action": step.action.as_str(), "title": step_title(step),
        "status": status, "detail": detail});
    store.record(r.incident, who, "playbook", &message, Some(data), now).await.map_err(store_err)
}

pub fn run(global: &Global, args: &RespondArgs) -> Result<u8, UserError> {
    let (plan, _) = crate::plan_cmd::load(global)?;
    let who = crate::incident_cmd::who(global);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let store = rt.block_on(async {
        Store::open(&crate::incident_cmd::store_url(global)?).await.map_err(|e| UserError::usage(e.to_string()))
    })?;
    let result = respond(global, args, &plan, &store, &rt, &who);
    rt.block_on(store.shutdown());
    result
}

fn respond(
    global: &Global,
    args: &RespondArgs,
    plan: &Plan,
    store: &Store,
    rt: &tokio::runtime::Runtime,
    who: &str,
) -> Result<u8, UserError> {
    let incident = rt.block_on(store.incident(args.id)).map_err(store_err)?;
    if !incident.state().is_open() {
        return Err(UserError::usage(format!(
            "incident #{} is {}: reopen it first (kir incident reopen {})",
            args.id, incident.state, args.id
        )));
    }
    let playbook = playbook_for(plan, &incident.incident_type)?;
    let findings = rt.block_on(store.findings(args.id)).map_err(store_err)?;
    let (client, cluster) =
        rt.block_on(kir_cluster::connect(global.kubeconfig.as_deref(), crate::contain_cmd::one_context(global)?))?;
    // The targets are worked out once, on the first run, and kept on the timeline: by the time
    // an approval comes, the pods may be gone (isolated, deleted, redeployed) and their node,
    // service account and workload could no longer be found from them. `--pod` works them out anew.
    let timeline = rt.block_on(store.timeline(args.id)).map_err(store_err)?;
    let here = rt.block_on(crate::contain_cmd::cluster_identity(&client, &cluster));
    let targets = match recorded_targets(&timeline, &playbook.id) {
        Some((t, there)) if args.pod.is_empty() => {
            // The same names on another cluster are other objects: never act on them.
            if !crate::contain_cmd::is_same_cluster(&there, &here) {
                return Err(UserError::usage(format!(
                    "incident #{}'s targets were read from the cluster {} (kube-system {}); this context reaches {} \
(kube-system {}). Give the --context of that cluster, or --pod to work the targets out on this one.",
                    args.id,
                    there["server"].as_str().unwrap_or("?"),
                    there["kube_system_uid"].as_str().unwrap_or("unknown"),
                    here["server"].as_str().unwrap_or("?"),
                    here["kube_system_uid"].as_str().unwrap_or("unknown"),
                )));
            }
            t
        }
        _ => {
            let mut t = targets_from(args, &findings)?;
            rt.block_on(resolve(&client, &mut t, global.quiet))?;
            if !args.dry_run {
                let message = format!("playbook {} targets: {}", playbook.id, t.to_json());
                let data = json!({"playbook": playbook.id, "targets": t.to_json(), "cluster": here});
                let now = crate::incident_cmd::now_ms()?;
                rt.block_on(store.record(args.id, who, "playbook", &message, Some(data), now)).map_err(store_err)?;
            }
            t
        }
    };
    let mut r = Run { global, args, incident: args.id, playbook: playbook.id.clone(), report: vec![] };
    if !matches!(global.format, Format::Json | Format::Jsonl) {
        let pods: Vec<String> = targets.pods.iter().map(|(n, p)| format!("{n}/{p}")).collect();
        outln!(
            "{}playbook {} ({}) for incident #{} ({}, {}); pods: {}",
            if args.dry_run { "dry run of " } else { "" },
            playbook.id,
            playbook.title,
            args.id,
            incident.incident_type,
            incident.severity,
            if pods.is_empty() { "none named (use --pod NAMESPACE/NAME)".to_string() } else { pods.join(", ") }
        );
    }
    for (i, step) in playbook.steps.iter().enumerate() {
        let n = i + 1;
        // Re-read each time: an approval or a confirmation may have just been recorded.
        let timeline = rt.block_on(store.timeline(args.id)).map_err(store_err)?;
        let (done, approved) = progress(&timeline, playbook);
        if done.contains(&n) {
            r.say(n, step, "done earlier", "")?;
            continue;
        }
        if let Some(role) = &step.approval
            && !approved.contains(&n)
        {
            if args.dry_run {
                r.say(n, step, "needs approval", &format!("by {role}"))?;
            } else {
                let waiting_already = step_entries(&timeline, "playbook", &playbook.id)
                    .iter()
                    .any(|(s, d, _)| *s == n && d["status"] == "waiting for approval");
                if !waiting_already {
                    rt.block_on(record_step(store, &r, n, step, "waiting for approval", json!({"role": role}), who))?;
                }
                r.say(
                    n,
                    step,
                    "waiting for approval",
                    &format!("by {role}: kir incident approve {} --step {n}", args.id),
                )?;
                r.finish("waiting")?;
                return Ok(WAITING);
            }
        }
        if by_hand(step) {
            if args.confirm == Some(n) && !args.dry_run {
                rt.block_on(record_step(store, &r, n, step, "done", json!({"confirmed_by": who}), who))?;
                r.say(n, step, "done", &format!("confirmed by {who}"))?;
                continue;
            }
            if args.dry_run {
                r.say(n, step, "by hand", "a person does it, then confirms")?;
                continue;
            }
            r.say(n, step, "waiting for you", &format!("do it, then: kir respond {} --confirm {n}", args.id))?;
            r.finish("waiting")?;
            return Ok(WAITING);
        }
        // Pods gone since the targets were kept (deleted, redeployed) are said and left out of
        // this step; the rest of the targets stay (the node, the account, the workload).
        let mut step_targets = targets.clone();
        step_targets.pods.clear();
        let mut gone = Vec::new();
        let mut uids = std::collections::BTreeMap::new();
        for (ns, pod) in &targets.pods {
            match rt.block_on(kir_cluster::contain::pod_context(&client, ns, pod)) {
                Err(kir_cluster::Error::NotFound { .. }) => {
                    gone.push(format!("pod {ns}/{pod} no longer exists: left out"));
                }
                Ok(c) => {
                    uids.insert(format!("{ns}/{pod}"), c.uid);
                    step_targets.pods.push((ns.clone(), pod.clone()));
                }
                Err(e) => return Err(e.into()),
            }
        }
        let targets = &step_targets;
        let outcome = if step.action.collects_evidence() {
            if targets.pods.is_empty() && !gone.is_empty() && step.action != Action::SnapshotNode {
                Ok(gone.clone())
            } else {
                collect_step(global, args, targets, step).map(|mut lines| {
                    lines.extend(gone.iter().cloned());
                    lines
                })
            }
        } else {
            let ctx = Ctx {
                global,
                store,
                client: client.clone(),
                cluster: here.clone(),
                who: who.to_string(),
                now: crate::incident_cmd::now_ms()?,
            };
            let common = ActionArgs { dry_run: args.dry_run, incident: Some(args.id), force: false };
            let requests = requests_of(step, targets);
            rt.block_on(async {
                // Evidence first, whatever order the plan puts its steps in.
                if step.action.contains() {
                    let collected = crate::contain_cmd::collected_pods(store).await?;
                    let missing: Vec<String> = targets
                        .pods
                        .iter()
                        .map(|(ns, p)| format!("{ns}/{p}"))
                        .filter(|p| !collected.has(p, uids.get(p).and_then(|u: &Option<String>| u.as_deref())))
                        .collect();
                    if !missing.is_empty() && !args.dry_run {
                        return Err(UserError::usage(format!(
                            "evidence first: {} would act before the evidence of pod {} is collected; run \
kir collect pod {} --out {} --incident {} (or put a collect-evidence step before this one), then kir respond {} again",
                            step.action.as_str(),
                            missing.join(", pod "),
                            missing[0],
                            args.out.display(),
                            args.id,
                            args.id
                        )));
                    }
                }
                if requests.is_empty() && !gone.is_empty() {
                    return Ok(gone.clone());
                }
                if requests.is_empty() {
                    return Err(UserError::usage(format!(
                        "nothing to {} here: the incident names no {} (name a pod with --pod NAMESPACE/NAME)",
                        step.action.as_str(),
                        match step.action {
                            Action::RevokeUser => "user",
                            Action::RevokeServiceaccount => "service account",
                            Action::CordonNode | Action::QuarantineNode | Action::DrainNode => "node",
                            Action::ScaleDown => "workload",
                            Action::SuspendCronjob => "CronJob",
                            _ => "pod",
                        }
                    )));
                }
                let mut ids = gone.clone();
                for q in &requests {
                    let (record, _) = crate::contain_cmd::perform(&ctx, q, &common).await?;
                    ids.push(format!("{} {} ({})", record.action, record.target, record.id));
                }
                Ok(ids)
            })
        };
        match outcome {
            Ok(lines) => {
                rt.block_on(record_step(store, &r, n, step, "done", json!({"results": lines}), who))?;
                r.say(n, step, if args.dry_run { "would run" } else { "done" }, &lines.join("; "))?;
            }
            Err(UserError { message: why, code }) => {
                rt.block_on(record_step(store, &r, n, step, "failed", json!({"error": why}), who))?;
                r.say(n, step, "failed", &why)?;
                if !global.quiet && !matches!(global.format, Format::Json | Format::Jsonl) {
                    eprintln!(
                        "kir: stopped at step {n}; fix the cause and run kir respond {} again to go on from there",
                        args.id
                    );
                }
                r.finish("failed")?;
                // The step's own code: 2 when it was refused before changing anything (evidence
                // first, a missing permission), 4 when its action failed.
                return Ok(code);
            }
        }
    }
    r.finish(if args.dry_run { "dry run" } else { "done" })?;
    if !matches!(global.format, Format::Json | Format::Jsonl) && !args.dry_run {
        outln!("playbook {} done for incident #{}", playbook.id, args.id);
    }
    Ok(exit::OK)
}

/// Collects every target pod (or, for snapshot-node, node) into its own bundle; snapshot-volumes
/// also snapshots the pods' volumes. A dry run says what it would collect.
fn collect_step(global: &Global, args: &RespondArgs, t: &Targets, step: &Step) -> Result<Vec<String>, UserError> {
    let common = CollectCommon {
        out: args.out.clone(),
        include_secret_values: false,
        sign_key: args.sign_key.clone(),
        incident: Some(args.id),
        audit: args.audit.clone(),
        archive: false,
    };
    if step.action == Action::SnapshotNode {
        let extras =
            crate::collect_cmd::Extras { snapshot_command: step.with.get("command").cloned(), ..Default::default() };
        let mut lines = Vec::new();
        for node in &t.nodes {
            if args.dry_run {
                lines.push(format!("would snapshot node {node}'s disks"));
                continue;
            }
            let dir = crate::collect_cmd::collect(
                global,
                &crate::collect_cmd::Subject::Node(node.clone()),
                &common,
                &extras,
            )?;
            lines.push(format!("node {node} → {}", dir.display()));
        }
        return Ok(lines);
    }
    if t.pods.is_empty() {
        return Err(UserError::usage(
            "nothing to collect: the incident names no pod (name one with --pod NAMESPACE/NAME)",
        ));
    }
    let extras = crate::collect_cmd::Extras {
        snapshot_volumes: step.action == Action::SnapshotVolumes,
        snapshot_class: step.with.get("class").cloned(),
        ..Default::default()
    };
    let mut lines = Vec::new();
    for (ns, name) in &t.pods {
        if args.dry_run {
            lines.push(format!("would collect pod {ns}/{name} into {}", args.out.display()));
            continue;
        }
        let subject = crate::collect_cmd::Subject::Pod { namespace: ns.clone(), name: name.clone() };
        let dir = crate::collect_cmd::collect(global, &subject, &common, &extras)?;
        lines.push(format!("pod {ns}/{name} → {}", dir.display()));
    }
    Ok(lines)
}

/// `kir incident approve`: records the approval of the waiting step (or `--step`).
pub async fn approve(global: &Global, a: &ApproveArgs, store: &Store, who: &str, now: i64) -> Result<u8, UserError> {
    let (plan, _) = crate::plan_cmd::load(global)?;
    let done = match kir_app::playbook::approve(store, &plan, a.id, a.step, who, a.note.as_deref(), now).await {
        Err(kir_store::StoreError::Refused(why)) => return Err(UserError::usage(why)),
        other => other.map_err(store_err)?,
    };
    if done.already {
        outln!("{}", done.message);
        return Ok(exit::OK);
    }
    if !done.member {
        eprintln!(
            "kir: warning: {who} is not a contact of the step's role in the plan; the approval is recorded with this warning"
        );
    }
    outln!("incident #{}: {}; go on with: kir respond {}", a.id, done.message, a.id);
    Ok(exit::OK)
}
