//! `kir contain cordon node / undo / list`.

use comfy_table::Cell;
use kir_store::ActionRecord;

use crate::cli::{ContainCommand, CordonTarget, Format, Global, IsolateTarget};
use crate::output::{outln, table, use_color};
use crate::{UserError, exit};

fn action_id(target: &str, now: i64) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(format!("{target}|{now}|{}|{:?}", std::process::id(), std::time::Instant::now()).as_bytes());
    format!("act-{}", &hex::encode(h.finalize())[..10])
}

fn print_action(global: &Global, a: &ActionRecord) -> Result<(), UserError> {
    let changes: serde_json::Value = serde_json::from_str(&a.changes).unwrap_or_default();
    match global.format {
        Format::Json | Format::Jsonl => outln!(
            "{}",
            serde_json::json!({"action_id": a.id, "action": a.action, "target": a.target, "dry_run": a.dry_run != 0,
                "changes": changes, "incident": a.incident_id, "who": a.who, "at": kir_store::rfc3339(a.at), "undone": a.undone_at.map(kir_store::rfc3339)})
        ),
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
        }
    }
    Ok(())
}

/// An action that was carried out (or dry-run), before it is recorded.
struct Done {
    id: String,
    action: &'static str,
    target: String,
    incident: Option<i64>,
    dry_run: bool,
}

/// Records an action with the state before it (for undo) and prints it.
#[allow(clippy::too_many_arguments)]
async fn finish(
    global: &Global,
    store: &kir_store::Store,
    done: Done,
    who: &str,
    now: i64,
    cluster: &kir_cluster::Target,
    changes: &[kir_cluster::contain::Change],
    before: &serde_json::Value,
) -> Result<u8, UserError> {
    let record = ActionRecord {
        id: done.id,
        action: done.action.into(),
        target: done.target,
        incident_id: done.incident,
        dry_run: done.dry_run as i64,
        who: who.to_string(),
        at: now,
        cluster: Some(cluster.server.clone()),
        before_state: before.to_string(),
        changes: serde_json::to_string(changes)?,
        undone_at: None,
        undone_by: None,
    };
    store.record_action(&record).await.map_err(|e| UserError(e.to_string()))?;
    print_action(global, &record)?;
    Ok(exit::OK)
}

pub fn run(global: &Global, command: &ContainCommand) -> Result<u8, UserError> {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    rt.block_on(async {
        let store = kir_store::Store::open(&crate::incident_cmd::store_url(global)?)
            .await
            .map_err(|e| UserError(e.to_string()))?;
        let who = crate::incident_cmd::who(global);
        let now = crate::incident_cmd::now_ms()?;
        let result = match command {
            ContainCommand::List => {
                let list = store.actions().await.map_err(|e| UserError(e.to_string()))?;
                if matches!(global.format, Format::Json | Format::Jsonl) {
                    for a in &list {
                        print_action(global, a)?;
                    }
                } else {
                    let color = use_color(global);
                    let mut t = table(color, &["ACTION", "WHAT", "TARGET", "WHEN", "WHO", "INCIDENT", "STATE"]);
                    for a in &list {
                        let state = match (a.dry_run != 0, a.undone_at) {
                            (true, _) => "dry run".to_string(),
                            (false, Some(t)) => format!("undone {}", kir_store::rfc3339(t)),
                            (false, None) => "in effect".to_string(),
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
            ContainCommand::Cordon { target: CordonTarget::Node(a) } => {
                let (client, target) =
                    kir_cluster::connect(global.kubeconfig.as_deref(), global.context.as_deref()).await?;
                let (changes, before) = kir_cluster::contain::cordon(&client, &a.node, a.dry_run).await?;
                let done = Done {
                    id: action_id(&a.node, now),
                    action: "cordon",
                    target: format!("node/{}", a.node),
                    incident: a.incident,
                    dry_run: a.dry_run,
                };
                finish(global, &store, done, &who, now, &target, &changes, &before).await
            }
            ContainCommand::Isolate { target: IsolateTarget::Pod(a) } => {
                let Some((ns, name)) = a.pod.split_once('/') else {
                    return Err(UserError(format!("write the pod as NAMESPACE/NAME, not {:?}", a.pod)));
                };
                let (client, target) =
                    kir_cluster::connect(global.kubeconfig.as_deref(), global.context.as_deref()).await?;
                let id = action_id(&a.pod, now);
                let (changes, before) =
                    kir_cluster::contain::isolate_pod(&client, ns, name, &id, &a.allow_cidr, a.dry_run).await?;
                let done = Done {
                    id,
                    action: "isolate",
                    target: format!("pod/{ns}/{name}"),
                    incident: a.incident,
                    dry_run: a.dry_run,
                };
                finish(global, &store, done, &who, now, &target, &changes, &before).await
            }
            ContainCommand::Undo { action_id } => {
                let a = store.action(action_id).await.map_err(|e| UserError(e.to_string()))?.ok_or_else(|| {
                    UserError(format!("no recorded action {action_id} (kir contain list shows them)"))
                })?;
                if a.dry_run != 0 {
                    return Err(UserError(format!("{action_id} was a dry run: there is nothing to undo")));
                }
                if a.undone_at.is_some() {
                    outln!("{action_id} was already undone: nothing to do");
                    return Ok(exit::OK);
                }
                let before: serde_json::Value = serde_json::from_str(&a.before_state).unwrap_or_default();
                let (client, _) = kir_cluster::connect(global.kubeconfig.as_deref(), global.context.as_deref()).await?;
                let changes = match (a.action.as_str(), a.target.strip_prefix("node/")) {
                    ("cordon", Some(node)) => kir_cluster::contain::undo_cordon(&client, node, &before).await?,
                    ("isolate", _) => {
                        let Some((ns, name)) = a.target.strip_prefix("pod/").and_then(|t| t.split_once('/')) else {
                            return Err(UserError(format!("a damaged action record: {}", a.target)));
                        };
                        kir_cluster::contain::undo_isolate_pod(&client, ns, name, &before).await?
                    }
                    _ => return Err(UserError(format!("kir cannot undo {} {}", a.action, a.target))),
                };
                store.mark_undone(action_id, &who, now).await.map_err(|e| UserError(e.to_string()))?;
                match global.format {
                    Format::Json | Format::Jsonl => {
                        outln!("{}", serde_json::json!({"action_id": action_id, "undone": true, "changes": changes}))
                    }
                    _ => outln!("{action_id}: undone ({} {} restored)", a.action, a.target),
                }
                Ok(exit::OK)
            }
        };
        store.shutdown().await;
        result
    })
}
