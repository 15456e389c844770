//! `kir collect pod`.

use crate::cli::{CollectCommand, CollectPodArgs, Global};
use crate::output::outln;
use crate::{UserError, exit};

pub fn run(global: &Global, command: &CollectCommand) -> Result<u8, UserError> {
    match command {
        CollectCommand::Pod(a) => pod(global, a),
    }
}

fn pod(global: &Global, a: &CollectPodArgs) -> Result<u8, UserError> {
    let (ns, name) = match (a.pod.split_once('/'), &a.namespace) {
        (Some((ns, name)), _) => (ns.to_string(), name.to_string()),
        (None, Some(ns)) => (ns.clone(), a.pod.clone()),
        (None, None) => ("default".to_string(), a.pod.clone()),
    };
    let dir = collect_pod(global, &ns, &name, a)?;
    outln!("{}", dir.display());
    Ok(exit::OK)
}

/// Collects one pod into a sealed bundle under `a.out`, records it in the store (and on the
/// incident's timeline with `a.incident`); returns the bundle's folder.
pub fn collect_pod(global: &Global, ns: &str, name: &str, a: &CollectPodArgs) -> Result<std::path::PathBuf, UserError> {
    let (ns, name) = (ns.to_string(), name.to_string());
    let key = a.sign_key.as_deref().map(kir_evidence::load_key).transpose()?;
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let dir = rt.block_on(async {
        let (client, target) = kir_cluster::connect(global.kubeconfig.as_deref(), global.context.as_deref()).await?;
        let mut collector = kir_evidence::local_identity();
        if let Some(n) = &global.acting_as {
            collector.user = n.clone();
        }
        collector.kube_user = target.user.clone();
        collector.context = target.context.clone();
        let stamp = jiff::Timestamp::now().strftime("%Y%m%dT%H%M%SZ").to_string();
        let mut w = kir_evidence::BundleWriter::create(
            &a.out,
            &format!("pod-{ns}-{name}-{stamp}"),
            &format!("pod {ns}/{name}"),
            collector,
        )?;
        w.set_incident(a.incident);
        w.add_cluster(kir_evidence::Cluster {
            server: target.server.clone(),
            kube_system_uid: kir_cluster::collect::kube_system_uid(&client).await,
            context: target.context.clone(),
        });
        let options = kir_cluster::collect::Options { include_secret_values: a.include_secret_values };
        let report = match kir_cluster::collect::pod(&client, &ns, &name, &options, &mut w).await {
            Ok(r) => r,
            Err(e) => {
                // Nothing collected: no empty bundle left behind. Something collected: kept, unsealed.
                let dir = w.dir().to_path_buf();
                let empty = std::fs::read_dir(&dir).map(|mut d| d.next().is_none()).unwrap_or(false);
                if empty {
                    let _ = std::fs::remove_dir(&dir);
                } else {
                    eprintln!(
                        "kir: the files collected so far stay in {} (no manifest: not a sealed bundle)",
                        dir.display()
                    );
                }
                return Err(match e {
                    kir_cluster::Error::Unreachable(why) => {
                        UserError(format!("cannot reach the cluster at {}: {why}", target.server))
                    }
                    other => UserError(other.to_string()),
                });
            }
        };
        if !global.quiet {
            for s in &report.skipped {
                eprintln!("kir: not collected: {s}");
            }
        }
        let dir = w.finish(key.as_ref())?;
        Ok::<_, UserError>((dir, report.files.len(), target.server))
    })?;
    if !global.quiet {
        eprintln!("kir: {} files collected; check with: kir evidence verify {}", dir.1, dir.0.display());
    }
    if let Err(e) = record_collection(global, &format!("pod/{ns}/{name}"), &dir.0, &dir.2) {
        eprintln!(
            "kir: warning: the bundle is sealed but not recorded in kir's store ({}); evidence-first checks will not see it",
            e.0
        );
    }
    if let Some(id) = a.incident {
        crate::incident_cmd::record_evidence(global, id, &dir.0, &format!("collected pod {ns}/{name}"))?;
    }
    Ok(dir.0)
}

/// Records a sealed bundle in the store as a `collect` action: what the evidence-first check of
/// destructive actions (`kir contain delete`, `scale-down`, `drain`) looks for.
pub fn record_collection(
    global: &Global,
    target: &str,
    bundle: &std::path::Path,
    server: &str,
) -> Result<(), UserError> {
    let manifest_path = bundle.join(kir_evidence::MANIFEST);
    let manifest = std::fs::read(&manifest_path).map_err(|e| UserError(format!("{}: {e}", manifest_path.display())))?;
    let digest = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&manifest))
    };
    let now = crate::incident_cmd::now_ms()?;
    let record = kir_store::ActionRecord {
        id: format!("col-{}", &digest[..10]),
        action: "collect".into(),
        target: target.to_string(),
        incident_id: None,
        dry_run: 0,
        who: crate::incident_cmd::who(global),
        at: now,
        cluster: Some(server.to_string()),
        before_state: serde_json::json!({"bundle": bundle, "manifest_sha256": digest}).to_string(),
        changes: "[]".into(),
        undone_at: None,
        undone_by: None,
    };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async {
        let store = kir_store::Store::open(&crate::incident_cmd::store_url(global)?)
            .await
            .map_err(|e| UserError(e.to_string()))?;
        let r = store.record_action(&record).await.map_err(|e| UserError(e.to_string()));
        store.shutdown().await;
        r
    })
}
