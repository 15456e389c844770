//! `kir contain …`: every action is planned from what the cluster holds, checked against the
//! caller's RBAC before anything changes, applied (or dry-run), recorded with the state before
//! and printed; `kir contain undo` plans the way back the same way.

use comfy_table::Cell;
use kir_store::ActionRecord;

use crate::cli::{ActionArgs, ContainCommand, Format, Global, KindTarget};
use crate::output::{outln, table, use_color};
use crate::{UserError, exit};
use kir_cluster::contain::{self as contain, Labelled, Planned, Subject};

fn action_id(target: &str, now: i64) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(format!("{target}|{now}|{}|{:?}", std::process::id(), std::time::Instant::now()).as_bytes());
    format!("act-{}", &hex::encode(h.finalize())[..10])
}

/// The exact requests of a plan, as a dry run shows them.
fn requests_of(planned: &Planned) -> Vec<serde_json::Value> {
    planned
        .writes
        .iter()
        .map(|w| serde_json::json!({"method": w.method.as_str(), "path": w.path, "content_type": w.content_type, "body": w.body}))
        .collect()
}

fn print_action(global: &Global, a: &ActionRecord, requests: Option<&[serde_json::Value]>) -> Result<(), UserError> {
    let recorded: serde_json::Value = serde_json::from_str(&a.changes).unwrap_or_default();
    // `changes` stays a list for scripts; a pending or failed action says so beside it.
    let changes = if recorded.is_array() { recorded.clone() } else { serde_json::json!([]) };
    match global.format {
        Format::Json | Format::Jsonl => {
            let mut v = serde_json::json!({"action_id": a.id, "action": a.action, "target": a.target, "dry_run": a.dry_run != 0,
                "changes": changes, "incident": a.incident_id, "who": a.who, "at": kir_store::rfc3339(a.at), "undone": a.undone_at.map(kir_store::rfc3339)});
            if a.changes == kir_store::PENDING {
                v["state"] = serde_json::json!("pending");
            } else if let Some(why) = recorded.get("failed") {
                v["state"] = serde_json::json!("failed");
                v["error"] = why.clone();
                v["not_taken_back"] = recorded["not_taken_back"].clone();
            }
            if let Some(r) = requests {
                v["requests"] = serde_json::json!(r);
            }
            outln!("{v}")
        }
        _ => {
            let nothing = changes.as_array().is_some_and(|c| c.iter().all(|c| c["op"] == "none"));
            let verb = if a.dry_run != 0 { "would" } else { "did" };
            outln!(
                "{}: {verb} {} {}{} — undo with: kir contain undo {}",
                a.id,
                a.action,
                a.target,
                if nothing { " (already so: nothing changed)" } else { "" },
                a.id
            );
            for c in changes.as_array().into_iter().flatten() {
                outln!(
                    "  {} {}: {} → {}",
                    c["op"].as_str().unwrap_or(""),
                    c["object"].as_str().unwrap_or(""),
                    c["before"],
                    c["after"]
                );
            }
            if let Some(r) = requests.filter(|_| a.dry_run != 0) {
                outln!("  requests the API server validated (dryRun=All) and did not persist:");
                for q in r {
                    outln!(
                        "    {} {} {}",
                        q["method"].as_str().unwrap_or(""),
                        q["path"].as_str().unwrap_or(""),
                        q["body"]
                    );
                }
            }
        }
    }
    Ok(())
}

/// One containment action, with its target.
#[derive(Debug, Clone)]
pub enum Request {
    Cordon { node: String },
    Quarantine { node: String },
    Drain { node: String, interval: std::time::Duration, limit: std::time::Duration },
    Isolate { namespace: String, pod: String, allow_cidrs: Vec<String> },
    LabelPod { namespace: String, pod: String },
    LabelNode { node: String },
    Revoke(Subject),
    ScaleDown { resource: &'static str, namespace: String, name: String },
    Suspend { namespace: String, name: String },
    Delete { namespace: String, pod: String },
}

impl Request {
    /// The action's name as recorded (`kir contain list`, undo).
    pub fn action(&self) -> &'static str {
        match self {
            Request::Cordon { .. } => "cordon",
            Request::Quarantine { .. } => "quarantine",
            Request::Drain { .. } => "drain",
            Request::Isolate { .. } => "isolate",
            Request::LabelPod { .. } | Request::LabelNode { .. } => "label",
            Request::Revoke(_) => "revoke",
            Request::ScaleDown { .. } => "scale-down",
            Request::Suspend { .. } => "suspend",
            Request::Delete { .. } => "delete",
        }
    }

    pub fn target(&self) -> String {
        match self {
            Request::Cordon { node }
            | Request::Quarantine { node }
            | Request::Drain { node, .. }
            | Request::LabelNode { node } => {
                format!("node/{node}")
            }
            Request::Isolate { namespace, pod, .. }
            | Request::LabelPod { namespace, pod }
            | Request::Delete { namespace, pod } => {
                format!("pod/{namespace}/{pod}")
            }
            Request::Revoke(s) => s.target(),
            Request::ScaleDown { resource, namespace, name } => {
                format!("{}/{namespace}/{name}", kir_core::singular(resource))
            }
            Request::Suspend { namespace, name } => format!("cronjob/{namespace}/{name}"),
        }
    }
}

/// What an action needs around it: the cluster, the store, who and when.
pub struct Ctx<'a> {
    pub global: &'a Global,
    pub store: &'a kir_store::Store,
    pub client: kir_cluster::Client,
    /// The cluster's identity (`cluster_identity`), read once and recorded with every action.
    pub cluster: serde_json::Value,
    pub who: String,
    pub now: i64,
}

/// Pods with a collected evidence bundle (`kir collect pod` records one action per bundle, with
/// the UID of the pod it read).
pub struct Collected {
    /// `pod/NS/NAME` → the UIDs collected, or `None` when a record does not say (older records):
    /// then any pod of that name counts.
    by_target: std::collections::BTreeMap<String, Option<std::collections::BTreeSet<String>>>,
}

impl Collected {
    /// Whether the evidence of pod `ns_name` (`NS/NAME`) with `uid` (when known) is collected.
    pub fn has(&self, ns_name: &str, uid: Option<&str>) -> bool {
        match self.by_target.get(&format!("pod/{ns_name}")) {
            None => false,
            Some(None) => true,
            Some(Some(uids)) => uid.is_none_or(|u| uids.contains(u)),
        }
    }
}

pub async fn collected_pods(store: &kir_store::Store) -> Result<Collected, UserError> {
    let list = store.actions().await.map_err(|e| UserError::usage(e.to_string()))?;
    let mut by_target: std::collections::BTreeMap<String, Option<std::collections::BTreeSet<String>>> =
        std::collections::BTreeMap::new();
    for a in list.into_iter().filter(|a| a.action == "collect" && a.dry_run == 0) {
        let before: serde_json::Value = serde_json::from_str(&a.before_state).unwrap_or_default();
        let uids: Option<std::collections::BTreeSet<String>> = before
            .get("uids")
            .and_then(|u| u.as_array())
            .map(|u| u.iter().filter_map(|u| u.as_str()).map(str::to_string).collect());
        let entry = by_target.entry(a.target).or_insert_with(|| Some(Default::default()));
        match (entry.as_mut(), uids) {
            (Some(known), Some(uids)) if !uids.is_empty() => known.extend(uids),
            _ => *entry = None,
        }
    }
    Ok(Collected { by_target })
}

/// Evidence first: an action that ends pods is refused while one of them has no evidence
/// collected, unless `--force`. A dry run only warns.
async fn require_evidence(
    ctx: &Ctx<'_>,
    what: &str,
    pods: &[(String, Option<String>)],
    common: &ActionArgs,
) -> Result<(), UserError> {
    let collected = collected_pods(ctx.store).await?;
    let missing: Vec<&String> =
        pods.iter().filter(|(p, uid)| !collected.has(p, uid.as_deref())).map(|(p, _)| p).collect();
    if missing.is_empty() || common.force {
        return Ok(());
    }
    let list = missing.iter().map(|p| format!("pod {p}")).collect::<Vec<_>>().join(", ");
    let commands =
        missing.iter().map(|p| format!("  kir collect pod {p} --out evidence/")).collect::<Vec<_>>().join("\n");
    if common.dry_run {
        if !ctx.global.quiet {
            eprintln!("kir: warning: {what} would end pods whose evidence is not collected yet: {list}");
        }
        return Ok(());
    }
    Err(UserError::usage(format!(
        "refusing to {what}: it would end pods whose evidence has not been collected ({list}); their memory, \
processes and writable layers would be lost.\nCollect first (evidence first, then containment):\n{commands}\nor pass \
--force to go ahead without it."
    )))
}

/// Plans, checks permissions, applies and records one action. The record and the exact requests.
pub async fn perform(
    ctx: &Ctx<'_>,
    request: &Request,
    common: &ActionArgs,
) -> Result<(ActionRecord, Vec<serde_json::Value>), UserError> {
    let target = request.target();
    let id = action_id(&target, ctx.now);
    let client = &ctx.client;
    let planned = match request {
        Request::Cordon { node } => contain::cordon(client, node).await?,
        Request::Quarantine { node } => contain::quarantine_node(client, node, &id).await?,
        Request::Drain { node, interval, limit } => {
            let (planned, pods) = contain::drain_node(client, node, *interval, *limit).await?;
            let ending: Vec<(String, Option<String>)> = pods
                .iter()
                .filter(|p| p.skipped.is_none())
                .map(|p| (format!("{}/{}", p.namespace, p.name), p.uid.clone()))
                .collect();
            require_evidence(ctx, &format!("drain node {node}"), &ending, common).await?;
            if !ctx.global.quiet {
                for p in pods.iter().filter(|p| p.skipped.is_some()) {
                    eprintln!(
                        "kir: drain leaves pod {}/{}: {}",
                        p.namespace,
                        p.name,
                        p.skipped.as_deref().unwrap_or("")
                    );
                }
            }
            planned
        }
        Request::Isolate { namespace, pod, allow_cidrs } => {
            contain::isolate_pod(client, namespace, pod, &id, allow_cidrs).await?
        }
        Request::LabelPod { namespace, pod } => {
            contain::label(client, Labelled::Pod { namespace, name: pod }, &id, common.incident).await?
        }
        Request::LabelNode { node } => {
            contain::label(client, Labelled::Node { name: node }, &id, common.incident).await?
        }
        Request::Revoke(subject) => contain::revoke(client, subject).await?,
        Request::ScaleDown { resource, namespace, name } => {
            let (planned, pods) = contain::scale_down(client, resource, namespace, name).await?;
            let ending: Vec<(String, Option<String>)> =
                pods.iter().map(|(p, uid)| (format!("{namespace}/{p}"), uid.clone())).collect();
            require_evidence(ctx, &format!("scale down {target}"), &ending, common).await?;
            planned
        }
        Request::Suspend { namespace, name } => contain::suspend_cronjob(client, namespace, name).await?,
        Request::Delete { namespace, pod } => {
            let planned = contain::delete_pod(client, namespace, pod).await?;
            if !planned.writes.is_empty() {
                let uid = planned.before.pointer("/uid").and_then(|u| u.as_str()).map(str::to_string);
                require_evidence(
                    ctx,
                    &format!("delete pod {namespace}/{pod}"),
                    &[(format!("{namespace}/{pod}"), uid)],
                    common,
                )
                .await?;
            }
            planned
        }
    };
    // A refusal for missing permissions changes nothing, so it leaves no record either.
    contain::preflight(client, &planned).await?;
    // Recorded before anything is sent: an action cut short still has its state before for
    // undo, and the record says which cluster it changed.
    let mut record = ActionRecord {
        id,
        action: request.action().into(),
        target,
        incident_id: common.incident,
        dry_run: common.dry_run as i64,
        who: ctx.who.clone(),
        at: ctx.now,
        cluster: Some(ctx.cluster.to_string()),
        before_state: planned.before.to_string(),
        changes: kir_store::PENDING.into(),
        undone_at: None,
        undone_by: None,
    };
    ctx.store.start_action(&record).await.map_err(|e| UserError::usage(e.to_string()))?;
    let outcome = contain::apply_preflighted(client, &planned, common.dry_run).await;
    record.changes = match &outcome {
        Ok(changes) => serde_json::to_string(changes)?,
        Err(e) => {
            let left = match e {
                kir_cluster::Error::HalfDone { left, .. } => left.clone(),
                _ => Vec::new(),
            };
            serde_json::json!({"failed": e.to_string(), "not_taken_back": left}).to_string()
        }
    };
    ctx.store.finish_action(&record.id, &record.changes, ctx.now).await.map_err(|e| {
        UserError::action_failed(format!(
            "the action ran but its record could not be finished ({e}); it is {} in kir contain list: {}",
            record.id, record.changes
        ))
    })?;
    outcome.map_err(|e| match e {
        // A dry run changes nothing, whatever the API server said.
        e if common.dry_run && !matches!(e, kir_cluster::Error::HalfDone { .. }) => UserError::usage(e.to_string()),
        e => UserError::from_action(e),
    })?;
    Ok((record, requests_of(&planned)))
}

/// Which cluster an action changed: the server as the kubeconfig names it and the UID of
/// kube-system, which stays the same whatever address the server is reached by.
pub async fn cluster_identity(client: &kir_cluster::Client, target: &kir_cluster::Target) -> serde_json::Value {
    serde_json::json!({"server": target.server, "kube_system_uid": kir_cluster::collect::kube_system_uid(client).await})
}

/// Whether `now` is the cluster `recorded` names: the kube-system UIDs must match. Only a record
/// without a UID (written before kir kept it) is matched by the server address, which several
/// clusters can share (`https://127.0.0.1:6443`, port-forwards).
pub fn is_same_cluster(recorded: &serde_json::Value, now: &serde_json::Value) -> bool {
    match (recorded["kube_system_uid"].as_str(), now["kube_system_uid"].as_str()) {
        (Some(then), Some(now)) => then == now,
        (Some(_), None) => false,
        (None, _) => recorded["server"] == now["server"],
    }
}

/// Undo acts on the cluster the action changed, or not at all.
async fn same_cluster(
    client: &kir_cluster::Client,
    target: &kir_cluster::Target,
    a: &ActionRecord,
) -> Result<(), UserError> {
    let Some(recorded) = a.cluster.as_deref() else { return Ok(()) };
    let recorded: serde_json::Value = serde_json::from_str(recorded)
        .unwrap_or_else(|_| serde_json::json!({"server": recorded, "kube_system_uid": null}));
    let now = cluster_identity(client, target).await;
    if is_same_cluster(&recorded, &now) {
        return Ok(());
    }
    Err(UserError::usage(format!(
        "{} changed the cluster {} (kube-system {}); this context reaches {} (kube-system {}), so nothing was \
changed. Give the --context of that cluster (kir needs get namespaces/kube-system to know it).",
        a.id,
        recorded["server"].as_str().unwrap_or("?"),
        recorded["kube_system_uid"].as_str().unwrap_or("unknown"),
        now["server"].as_str().unwrap_or("?"),
        now["kube_system_uid"].as_str().unwrap_or("unknown"),
    )))
}

/// The one `--context` a command that changes a cluster acts on (several would be ambiguous).
pub fn one_context(global: &Global) -> Result<Option<&str>, UserError> {
    match global.context.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(one)),
        several => Err(UserError::usage(format!(
            "this command acts on one cluster; {} contexts were given ({}): give one --context",
            several.len(),
            several.join(", ")
        ))),
    }
}

fn namespaced(target: &str, what: &str) -> Result<(String, String), UserError> {
    let n = kir_core::NamespacedName::parse(target, what, None).map_err(UserError::usage)?;
    Ok((n.namespace, n.name))
}

fn duration(text: &str, flag: &str) -> Result<std::time::Duration, UserError> {
    let d = kir_core::Duration::parse(text).map_err(|e| UserError::usage(format!("{flag}: {e}")))?;
    Ok(d.to_std())
}

/// Turns the command line into a request.
fn request_of(command: &ContainCommand) -> Result<Option<(Request, &ActionArgs)>, UserError> {
    let kinds = |t: &KindTarget, allowed: &str| {
        UserError::usage(format!("kir contain cannot act on a {:?} here; KIND is one of: {allowed}", t.kind))
    };
    Ok(Some(match command {
        ContainCommand::List | ContainCommand::Undo { .. } => return Ok(None),
        ContainCommand::Cordon(t) => (Request::Cordon { node: t.node.clone() }, &t.common),
        ContainCommand::Quarantine(t) => (Request::Quarantine { node: t.node.clone() }, &t.common),
        ContainCommand::Drain(d) => (
            Request::Drain {
                node: d.target.node.clone(),
                interval: duration(&d.retry_every, "--retry-every")?,
                limit: duration(&d.timeout, "--timeout")?,
            },
            &d.target.common,
        ),
        ContainCommand::Isolate(a) => {
            let (namespace, pod) = namespaced(&a.pod, "pod")?;
            (Request::Isolate { namespace, pod, allow_cidrs: a.allow_cidr.clone() }, &a.common)
        }
        ContainCommand::Label(t) => match t.kind.as_str() {
            "pod" | "pods" | "po" => {
                let (namespace, pod) = namespaced(&t.target, "pod")?;
                (Request::LabelPod { namespace, pod }, &t.common)
            }
            "node" | "nodes" | "no" => (Request::LabelNode { node: t.target.clone() }, &t.common),
            _ => return Err(kinds(t, "pod, node")),
        },
        ContainCommand::Revoke(t) => match t.kind.as_str() {
            "serviceaccount" | "serviceaccounts" | "sa" => {
                let (namespace, name) = namespaced(&t.target, "service account")?;
                (Request::Revoke(Subject::ServiceAccount { namespace, name }), &t.common)
            }
            "user" => (Request::Revoke(Subject::User(t.target.clone())), &t.common),
            "group" => (Request::Revoke(Subject::Group(t.target.clone())), &t.common),
            _ => return Err(kinds(t, "serviceaccount, user, group")),
        },
        ContainCommand::ScaleDown(t) => {
            let resource =
                contain::workload_resource(&t.kind).ok_or_else(|| kinds(t, "deployment, statefulset, replicaset"))?;
            let (namespace, name) = namespaced(&t.target, "workload")?;
            (Request::ScaleDown { resource, namespace, name }, &t.common)
        }
        ContainCommand::Suspend(t) => {
            if !matches!(t.kind.as_str(), "cronjob" | "cronjobs" | "cj") {
                return Err(kinds(t, "cronjob"));
            }
            let (namespace, name) = namespaced(&t.target, "CronJob")?;
            (Request::Suspend { namespace, name }, &t.common)
        }
        ContainCommand::Delete(t) => {
            if !matches!(t.kind.as_str(), "pod" | "pods" | "po") {
                return Err(kinds(t, "pod"));
            }
            let (namespace, pod) = namespaced(&t.target, "pod")?;
            (Request::Delete { namespace, pod }, &t.common)
        }
    }))
}

/// Plans the way back from a recorded action.
async fn undo_plan(client: &kir_cluster::Client, a: &ActionRecord) -> Result<Planned, UserError> {
    let before: serde_json::Value = serde_json::from_str(&a.before_state).unwrap_or_default();
    let damaged = || UserError::usage(format!("a damaged action record: {} {}", a.action, a.target));
    let parts: Vec<&str> = a.target.splitn(3, '/').collect();
    Ok(match (a.action.as_str(), parts.as_slice()) {
        ("cordon" | "drain", ["node", node]) => contain::undo_cordon(node, &before),
        ("quarantine", ["node", node]) => contain::undo_quarantine_node(client, node, &before).await?,
        ("isolate", ["pod", ns, pod]) => contain::undo_isolate_pod(ns, pod, &before),
        ("label", ["pod", ns, pod]) => contain::undo_label(Labelled::Pod { namespace: ns, name: pod }, &before),
        ("label", ["node", node]) => contain::undo_label(Labelled::Node { name: node }, &before),
        ("revoke", _) => contain::undo_revoke(client, &before).await?,
        ("scale-down", [kind, ns, name]) => {
            let resource = contain::workload_resource(kind).ok_or_else(damaged)?;
            contain::undo_scale_down(resource, ns, name, &before)
        }
        ("suspend", ["cronjob", ns, name]) => contain::undo_suspend_cronjob(ns, name, &before),
        ("delete", _) => {
            return Err(UserError::usage(format!(
                "{}: a deleted pod cannot be brought back (its controller runs a new one); the pod as it was is in \
kir contain list --format json",
                a.id
            )));
        }
        ("collect", _) => {
            return Err(UserError::usage(format!("{}: collecting evidence changed nothing to undo", a.id)));
        }
        _ => return Err(damaged()),
    })
}

pub fn run(global: &Global, command: &ContainCommand) -> Result<u8, UserError> {
    let request = request_of(command)?;
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    rt.block_on(async {
        let store = kir_store::Store::open(&crate::incident_cmd::store_url(global)?)
            .await
            .map_err(|e| UserError::usage(e.to_string()))?;
        let result = run_in(global, command, request, &store).await;
        store.shutdown().await;
        result
    })
}

async fn run_in(
    global: &Global,
    command: &ContainCommand,
    request: Option<(Request, &ActionArgs)>,
    store: &kir_store::Store,
) -> Result<u8, UserError> {
    let who = crate::incident_cmd::who(global);
    let now = crate::incident_cmd::now_ms()?;
    if let Some((request, common)) = request {
        let (client, cluster) = kir_cluster::connect(global.kubeconfig.as_deref(), one_context(global)?).await?;
        let cluster = cluster_identity(&client, &cluster).await;
        let ctx = Ctx { global, store, client, cluster, who, now };
        let (record, requests) = perform(&ctx, &request, common).await?;
        print_action(global, &record, Some(&requests))?;
        return Ok(exit::OK);
    }
    match command {
        ContainCommand::Undo { action_id } => {
            let a = store.action(action_id).await.map_err(|e| UserError::usage(e.to_string()))?.ok_or_else(|| {
                UserError::usage(format!("no recorded action {action_id} (kir contain list shows them)"))
            })?;
            if a.dry_run != 0 {
                return Err(UserError::usage(format!("{action_id} was a dry run: there is nothing to undo")));
            }
            if a.undone_at.is_some() {
                outln!("{action_id} was already undone: nothing to do");
                return Ok(exit::OK);
            }
            // A failed action's writes were taken back when it failed; its state before may not
            // hold any more (a policy that someone else created in between is not ours to
            // delete). What could not be taken back is named, for a person to set right.
            let recorded: serde_json::Value = serde_json::from_str(&a.changes).unwrap_or_default();
            if let Some(why) = recorded.get("failed").and_then(|f| f.as_str()) {
                let left: Vec<&str> =
                    recorded["not_taken_back"].as_array().into_iter().flatten().filter_map(|l| l.as_str()).collect();
                return Err(UserError::usage(if left.is_empty() {
                    format!("{action_id} failed ({why}) and its writes were taken back then: there is nothing to undo")
                } else {
                    format!(
                        "{action_id} failed and these changes could not be taken back; kir does not guess how to undo \
a half-done action, set them right by hand: {}",
                        left.join("; ")
                    )
                }));
            }
            let (client, cluster) = kir_cluster::connect(global.kubeconfig.as_deref(), one_context(global)?).await?;
            same_cluster(&client, &cluster, &a).await?;
            let planned = undo_plan(&client, &a).await?;
            let changes = contain::apply(&client, &planned, false).await.map_err(UserError::from_action)?;
            store.mark_undone(action_id, &who, now).await.map_err(|e| {
                UserError::action_failed(format!(
                    "the cluster was set back but the record could not say so ({e}): action {action_id} still reads as not undone"
                ))
            })?;
            match global.format {
                Format::Json | Format::Jsonl => {
                    outln!("{}", serde_json::json!({"action_id": action_id, "undone": true, "changes": changes}))
                }
                _ => {
                    outln!("{action_id}: undone ({} {} restored)", a.action, a.target);
                    for c in &changes {
                        outln!("  {} {}: {} → {}", c.op, c.object, c.before, c.after);
                    }
                }
            }
            Ok(exit::OK)
        }
        _ => {
            let list = store.actions().await.map_err(|e| UserError::usage(e.to_string()))?;
            if matches!(global.format, Format::Json | Format::Jsonl) {
                for a in &list {
                    print_action(global, a, None)?;
                }
            } else {
                let color = use_color(global);
                let mut t = table(color, &["ACTION", "WHAT", "TARGET", "WHEN", "WHO", "INCIDENT", "STATE"]);
                for a in &list {
                    let recorded = serde_json::from_str::<serde_json::Value>(&a.changes).unwrap_or_default();
                    let state = match (a.action.as_str(), a.dry_run != 0, a.undone_at) {
                        ("collect", _, _) => "evidence".to_string(),
                        (_, _, None) if a.changes == kir_store::PENDING => {
                            "started, not finished (undo takes back what was done)".to_string()
                        }
                        (_, _, None) if recorded.get("failed").is_some() => {
                            let partly = recorded["not_taken_back"].as_array().is_some_and(|l| !l.is_empty());
                            if partly { "failed, partly in effect" } else { "failed (taken back)" }.to_string()
                        }
                        (_, true, _) => "dry run".to_string(),
                        (_, false, Some(t)) => format!("undone {}", kir_store::rfc3339(t)),
                        (_, false, None) => "in effect".to_string(),
                    };
                    t.add_row(vec![
                        Cell::new(&a.id),
                        Cell::new(&a.action),
                        Cell::new(&a.target),
                        Cell::new(kir_store::rfc3339(a.at)),
                        Cell::new(&a.who),
                        Cell::new(a.incident_id.map(|i| format!("#{i}")).unwrap_or_default()),
                        Cell::new(state),
                    ]);
                }
                outln!("{t}");
            }
            Ok(exit::OK)
        }
    }
}
