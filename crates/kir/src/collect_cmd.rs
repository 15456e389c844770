//! `kir collect pod | node | namespace | serviceaccount`: a sealed evidence bundle from one or
//! several clusters, with the audit-log excerpt about the subject when audit files are given.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use kir_audit::{AuditEvent, Record};
use serde_json::json;

use crate::cli::{CollectCommand, CollectCommon, Global};
use crate::output::outln;
use crate::{UserError, exit};

/// What is collected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    Pod { namespace: String, name: String },
    Node(String),
    Namespace(String),
    ServiceAccount { namespace: String, name: String },
}

impl Subject {
    /// `pod/NS/NAME`, `node/NAME`, …: how action records name it.
    pub fn target(&self) -> String {
        match self {
            Subject::Pod { namespace, name } => format!("pod/{namespace}/{name}"),
            Subject::Node(n) => format!("node/{n}"),
            Subject::Namespace(n) => format!("namespace/{n}"),
            Subject::ServiceAccount { namespace, name } => format!("serviceaccount/{namespace}/{name}"),
        }
    }

    fn describe(&self) -> String {
        self.target().replacen('/', " ", 1)
    }

    fn slug(&self) -> String {
        self.target().replace('/', "-")
    }

    /// Why an audit event is about this subject (`None`: it is not).
    fn about(&self, e: &AuditEvent, pod_account: Option<&str>) -> Option<&'static str> {
        let object = e.object_ref.as_ref();
        let ns = object.and_then(|o| o.namespace.as_deref());
        let resource = object.and_then(|o| o.resource.as_deref());
        let name = object.and_then(|o| o.name.as_deref());
        let user = e.user.username.as_str();
        match self {
            Subject::Pod { namespace, name: pod } => {
                if resource == Some("pods") && ns == Some(namespace) && name == Some(pod) {
                    Some("the pod")
                } else if pod_account.is_some_and(|sa| user == format!("system:serviceaccount:{namespace}:{sa}")) {
                    Some("request by the pod's service account")
                } else {
                    None
                }
            }
            Subject::Node(node) => {
                if resource == Some("nodes") && name == Some(node) {
                    Some("the node")
                } else if user == format!("system:node:{node}") {
                    Some("request by the node's kubelet")
                } else {
                    None
                }
            }
            Subject::Namespace(n) => {
                if ns == Some(n) || (resource == Some("namespaces") && name == Some(n)) {
                    Some("in the namespace")
                } else {
                    None
                }
            }
            Subject::ServiceAccount { namespace, name: sa } => {
                if user == format!("system:serviceaccount:{namespace}:{sa}") {
                    Some("request by the service account")
                } else if resource == Some("serviceaccounts") && ns == Some(namespace) && name == Some(sa) {
                    Some("the service account")
                } else {
                    None
                }
            }
        }
    }
}

fn split(target: &str, what: &str, default_ns: Option<&str>) -> Result<(String, String), UserError> {
    let n = kir_core::NamespacedName::parse(target, what, default_ns).map_err(UserError::usage)?;
    Ok((n.namespace, n.name))
}

/// What a collection may also do, each opt-in because each changes or reaches further.
#[derive(Debug, Clone, Default)]
pub struct Extras {
    /// Image and how long to wait for the ephemeral debug container.
    pub debug_container: Option<(String, std::time::Duration)>,
    pub checkpoint: bool,
    pub snapshot_volumes: bool,
    pub snapshot_class: Option<String>,
    pub node_logs: bool,
    pub snapshot_command: Option<String>,
}

pub fn run(global: &Global, command: &CollectCommand) -> Result<u8, UserError> {
    let mut extras = Extras::default();
    let (subject, common) = match command {
        CollectCommand::Pod(a) => {
            let (namespace, name) = split(&a.pod, "pod", Some(a.namespace.as_deref().unwrap_or("default")))?;
            if a.debug_container {
                let wait = kir_core::Duration::parse(&a.debug_wait)
                    .map_err(|e| UserError::usage(format!("--debug-wait: {e}")))?;
                extras.debug_container =
                    Some((a.debug_image.clone(), std::time::Duration::from_secs(wait.as_secs().max(0) as u64)));
            }
            extras.checkpoint = a.checkpoint;
            extras.snapshot_volumes = a.snapshot_volumes;
            extras.snapshot_class = a.snapshot_class.clone();
            (Subject::Pod { namespace, name }, &a.common)
        }
        CollectCommand::Node(a) => {
            extras.node_logs = a.node_logs;
            extras.snapshot_command = a.snapshot_command.clone();
            (Subject::Node(a.node.clone()), &a.common)
        }
        CollectCommand::Namespace(a) => (Subject::Namespace(a.namespace.clone()), &a.common),
        CollectCommand::Serviceaccount(a) => {
            let (namespace, name) = split(&a.serviceaccount, "service account", None)?;
            (Subject::ServiceAccount { namespace, name }, &a.common)
        }
    };
    let path = collect(global, &subject, common, &extras)?;
    outln!("{}", path.display());
    Ok(exit::OK)
}

/// Collects `subject` from every `--context` (or the current one) into one sealed bundle under
/// `common.out`, records it in the store (and on the incident's timeline with `--incident`);
/// returns the bundle's folder (or archive).
pub fn collect(
    global: &Global,
    subject: &Subject,
    common: &CollectCommon,
    extras: &Extras,
) -> Result<PathBuf, UserError> {
    let key = common.sign_key.as_deref().map(kir_evidence::load_key).transpose()?;
    let contexts: Vec<Option<&str>> =
        if global.context.is_empty() { vec![None] } else { global.context.iter().map(|c| Some(c.as_str())).collect() };
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let mut writer: Option<kir_evidence::BundleWriter> = None;
    let mut servers = Vec::new();
    let mut uids = Vec::new();
    let mut files = 0;
    let outcome: Result<(), UserError> = rt.block_on(async {
        for (i, context) in contexts.iter().enumerate() {
            let (client, target) = kir_cluster::connect(global.kubeconfig.as_deref(), *context).await?;
            let w = match &mut writer {
                Some(w) => w,
                None => {
                    let mut collector = kir_evidence::local_identity();
                    if let Some(n) = &global.acting_as {
                        collector.user = n.clone();
                    }
                    collector.kube_user = target.user.clone();
                    collector.context = target.context.clone();
                    let stamp = jiff::Timestamp::now().strftime("%Y%m%dT%H%M%SZ").to_string();
                    let mut w = kir_evidence::BundleWriter::create(
                        &common.out,
                        &format!("{}-{stamp}", subject.slug()),
                        &subject.describe(),
                        collector,
                    )?;
                    w.set_incident(common.incident);
                    writer.insert(w)
                }
            };
            w.add_cluster(kir_evidence::Cluster {
                server: target.server.clone(),
                kube_system_uid: kir_cluster::collect::kube_system_uid(&client).await,
                context: target.context.clone(),
            });
            if contexts.len() > 1 {
                let name = target.context.clone().unwrap_or_else(|| format!("cluster-{}", i + 1));
                w.set_prefix(Some(&format!("clusters/{name}")));
            }
            let options = kir_cluster::collect::Options { include_secret_values: common.include_secret_values };
            let result = match subject {
                Subject::Pod { namespace, name } => {
                    match kir_cluster::collect::pod(&client, namespace, name, &options, w).await {
                        Ok(mut report) => {
                            pod_extras(global, &client, (namespace, name), extras, &options, w, &mut report)
                                .await
                                .map(|_| report)
                        }
                        Err(e) => Err(e),
                    }
                }
                Subject::Node(n) => {
                    let node_options = kir_cluster::collect::NodeOptions { node_logs: extras.node_logs };
                    match kir_cluster::collect::node(&client, n, &node_options, w).await {
                        Ok(mut report) => {
                            if let Some(template) = &extras.snapshot_command {
                                snapshot_node_disks(n, template, &report.object.clone(), w, &mut report, global.quiet)?;
                            }
                            Ok(report)
                        }
                        Err(e) => Err(e),
                    }
                }
                Subject::Namespace(n) => kir_cluster::collect::namespace(&client, n, &options, w).await,
                Subject::ServiceAccount { namespace, name } => {
                    kir_cluster::collect::serviceaccount(&client, namespace, name, &options, w).await
                }
            };
            let report = result.map_err(|e| match e {
                kir_cluster::Error::Unreachable(why) => {
                    UserError::usage(format!("cannot reach the cluster at {}: {why}", target.server))
                }
                e if e.is_connection() => UserError::usage(format!("{e} (cluster at {})", target.server)),
                other => UserError::usage(other.to_string()),
            })?;
            if !global.quiet {
                for s in &report.skipped {
                    eprintln!("kir: not collected: {s}");
                }
            }
            files += report.files.len();
            servers.push(target.server.clone());
            if let Some(uid) = report.object.pointer("/metadata/uid").and_then(|u| u.as_str()) {
                uids.push(uid.to_string());
            }
        }
        Ok(())
    });
    let Some(mut w) = writer else {
        return Err(outcome.err().unwrap_or_else(|| UserError::usage("nothing collected")));
    };
    if let Err(e) = outcome {
        // Nothing collected: no empty bundle left behind. Something collected: kept, unsealed.
        let dir = w.dir().to_path_buf();
        let empty = std::fs::read_dir(&dir).map(|mut d| d.next().is_none()).unwrap_or(false);
        if empty {
            let _ = std::fs::remove_dir(&dir);
        } else {
            eprintln!("kir: the files collected so far stay in {} (no manifest: not a sealed bundle)", dir.display());
        }
        return Err(e);
    }
    w.set_prefix(None);
    if !common.audit.is_empty() {
        let account = pod_account(w.dir(), subject, contexts.len() > 1);
        let (excerpt, count) = audit_excerpt(&common.audit, subject, account.as_deref(), global.quiet)?;
        w.add("audit/excerpt.jsonl", &excerpt, Some(&format!("{count} audit events about {}", subject.describe())))?;
        files += 1;
        if !global.quiet {
            eprintln!("kir: {count} audit events about {}", subject.describe());
        }
    }
    let dir = w.finish(key.as_ref())?;
    let digest = crate::incident_cmd::manifest_digest(&dir)?;
    let path = if common.archive { kir_evidence::archive(&dir, &crate::incident_cmd::who(global))? } else { dir };
    if !global.quiet {
        eprintln!("kir: {files} files collected; check with: kir evidence verify {}", path.display());
    }
    if let Err(e) = record_collection(global, &subject.target(), &path, &digest, &servers.join(", "), &uids) {
        eprintln!(
            "kir: warning: the bundle is sealed but not recorded in kir's store ({}); evidence-first checks will not see it",
            e.message
        );
    }
    if let Some(id) = common.incident {
        crate::incident_cmd::record_evidence_digest(
            global,
            id,
            &path,
            &digest,
            &format!("collected {}", subject.describe()),
        )?;
    }
    Ok(path)
}

/// The opt-in steps after a pod's collection: debug container, checkpoint, volume snapshots.
async fn pod_extras(
    global: &Global,
    client: &kir_cluster::Client,
    (namespace, name): (&str, &str),
    extras: &Extras,
    options: &kir_cluster::collect::Options,
    w: &mut kir_evidence::BundleWriter,
    report: &mut kir_cluster::collect::Report,
) -> Result<(), kir_cluster::Error> {
    let pod = report.object.clone();
    let containers: Vec<String> = pod
        .pointer("/spec/containers")
        .and_then(|c| c.as_array())
        .into_iter()
        .flatten()
        .filter_map(|c| c["name"].as_str().map(str::to_string))
        .collect();
    let stamp = jiff::Timestamp::now().strftime("%Y%m%dt%H%M%S").to_string();
    if let Some((image, wait)) = &extras.debug_container
        && let Some(target) = containers.first()
    {
        let container = format!("kir-debug-{stamp}");
        if !global.quiet {
            eprintln!(
                "kir: adding ephemeral container {container} ({image}) to pod {namespace}/{name}: this changes the pod's \
spec, and the container stays listed there until the pod is deleted"
            );
        }
        kir_cluster::volatile::run_debug_container(
            client,
            namespace,
            name,
            target,
            image,
            &container,
            options.include_secret_values,
            *wait,
            std::time::Duration::from_secs(2),
            w,
            report,
        )
        .await?;
    }
    if extras.checkpoint {
        match pod.pointer("/spec/nodeName").and_then(|n| n.as_str()) {
            Some(node) => {
                kir_cluster::volatile::checkpoint(client, node, namespace, name, &containers, w, report).await?
            }
            None => report.skipped.push("checkpoint: the pod is not scheduled on a node".into()),
        }
    }
    if extras.snapshot_volumes {
        kir_cluster::volatile::snapshot_volumes(
            client,
            namespace,
            &pod,
            extras.snapshot_class.as_deref(),
            &stamp,
            w,
            report,
        )
        .await?;
    }
    Ok(())
}

/// The placeholders of a snapshot command template and the names their values are shown under.
const SNAPSHOT_PLACEHOLDERS: [(&str, &str); 4] = [
    ("{node}", "KIR_NODE"),
    ("{instance}", "KIR_INSTANCE"),
    ("{provider_id}", "KIR_PROVIDER_ID"),
    ("{volume}", "KIR_VOLUME"),
];

/// A template split into words as a POSIX shell would (quotes and backslashes, by `shlex`),
/// but never run by one: the words become the program and its arguments. Returns the words and
/// the placeholders they use; `None` when the quoting does not close, or when an unquoted word
/// starts with `#`: a shell (and shlex) would drop it and the rest of the line as a comment,
/// which is never what an argument meant (quote it: `'#tag'`).
fn snapshot_words(template: &str) -> Option<(Vec<String>, Vec<&'static str>)> {
    let words = shlex::split(template)?;
    // Split again with every `#` hidden: if a word went missing, a comment swallowed it.
    const HASH: &str = "\u{1}kir-hash\u{1}";
    let literal: Vec<String> =
        shlex::split(&template.replace('#', HASH))?.into_iter().map(|w| w.replace(HASH, "#")).collect();
    if literal != words {
        return None;
    }
    let used = SNAPSHOT_PLACEHOLDERS
        .iter()
        .filter(|(placeholder, _)| words.iter().any(|w| w.contains(placeholder)))
        .map(|(_, var)| *var)
        .collect();
    Some((words, used))
}

/// Each word with its placeholders replaced, in one pass: a value that holds `{node}` stays as
/// it is, and each word stays one argument whatever the value holds.
fn fill_words(words: &[String], values: &[(&str, &str)]) -> Vec<String> {
    words
        .iter()
        .map(|word| {
            let mut out = String::with_capacity(word.len());
            let mut rest = word.as_str();
            'outer: while let Some(c) = rest.chars().next() {
                for (placeholder, var) in SNAPSHOT_PLACEHOLDERS {
                    if let Some(after) = rest.strip_prefix(placeholder) {
                        out.push_str(values.iter().find(|(k, _)| *k == var).map(|(_, v)| *v).unwrap_or_default());
                        rest = after;
                        continue 'outer;
                    }
                }
                out.push(c);
                rest = &rest[c.len_utf8()..];
            }
            out
        })
        .collect()
}

/// A value fit for a command line: cloud IDs and node names only. Anything else (spaces, glob or
/// shell characters) would split into several arguments or match files, so it is refused.
fn plain_value(v: &str) -> bool {
    v.len() <= 253 && v.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._:/@".contains(&b))
}

/// Runs the cloud's snapshot command for the node's disks (once per attached volume when the
/// template names {volume}, else once) and keeps what it said in `snapshots/node-disks.json`.
fn snapshot_node_disks(
    node: &str,
    template: &str,
    object: &serde_json::Value,
    w: &mut kir_evidence::BundleWriter,
    report: &mut kir_cluster::collect::Report,
    quiet: bool,
) -> Result<(), kir_cluster::Error> {
    let provider_id = object.pointer("/spec/providerID").and_then(|p| p.as_str()).unwrap_or_default().to_string();
    let instance = provider_id.rsplit('/').next().unwrap_or_default().to_string();
    let volumes: Vec<String> = object
        .pointer("/status/volumesAttached")
        .and_then(|v| v.as_array())
        .into_iter()
        .flatten()
        .filter_map(|v| v["name"].as_str())
        // kubernetes.io/csi/ebs.csi.aws.com^vol-0abc → vol-0abc
        .map(|n| n.rsplit(['^', '/']).next().unwrap_or(n).to_string())
        .collect();
    let runs: Vec<Option<&String>> =
        if template.contains("{volume}") { volumes.iter().map(Some).collect() } else { vec![None] };
    if runs.is_empty() {
        report
            .skipped
            .push(format!("snapshots/node-disks.json: node {node} has no attached volumes to name in {{volume}}"));
        return Ok(());
    }
    let mut results = Vec::new();
    let Some((words, used)) = snapshot_words(template).filter(|(w, _)| !w.is_empty()) else {
        report.skipped.push(format!("snapshot command: {template:?} is not a command (empty, a quote left open, or an unquoted word starting with #)"));
        return Ok(());
    };
    for volume in runs {
        let values = [
            ("KIR_NODE", node),
            ("KIR_INSTANCE", instance.as_str()),
            ("KIR_PROVIDER_ID", provider_id.as_str()),
            ("KIR_VOLUME", volume.map(String::as_str).unwrap_or_default()),
        ];
        let started = jiff::Timestamp::now();
        let env: serde_json::Map<String, serde_json::Value> =
            values.iter().map(|(k, v)| (k.to_string(), serde_json::json!(v))).collect();
        // Only what the template uses is checked; an empty value would drop an argument.
        if let Some((name, bad)) = values.iter().find(|(k, v)| used.contains(k) && (v.is_empty() || !plain_value(v))) {
            report.skipped.push(format!("snapshot command: refused to run with {name}={bad:?} (not a plain ID)"));
            results.push(serde_json::json!({"command": words, "env": env, "volume": volume,
                "error": format!("{name} is not a plain ID; not run")}));
            continue;
        }
        let command = fill_words(&words, &values);
        if !quiet {
            eprintln!("kir: running: {}", shlex::try_join(command.iter().map(String::as_str)).unwrap_or_default());
        }
        // No shell: the program is the first word, each other word one argument. The values are
        // also in the environment (KIR_NODE, …) for a program that reads them there.
        let result = match std::process::Command::new(&command[0]).args(&command[1..]).envs(values).output() {
            Ok(out) => {
                serde_json::json!({"command": command, "env": env, "volume": volume, "started": started.to_string(),
                "exit_code": out.status.code(), "stdout": String::from_utf8_lossy(&out.stdout), "stderr": String::from_utf8_lossy(&out.stderr)})
            }
            Err(e) => {
                serde_json::json!({"command": command, "env": env, "volume": volume, "started": started.to_string(), "error": e.to_string()})
            }
        };
        if result["exit_code"] != 0 {
            report.skipped.push(format!(
                "snapshot command for {}: did not succeed (exit code {})",
                volume.map(String::as_str).unwrap_or(node),
                result["exit_code"]
            ));
        }
        results.push(result);
    }
    w.add(
        "snapshots/node-disks.json",
        &serde_json::to_vec_pretty(&results).unwrap_or_default(),
        Some("the configured snapshot command, its output and exit code"),
    )?;
    report.files.push("snapshots/node-disks.json".into());
    Ok(())
}

/// The pod's service account, read from the pod.json just collected.
fn pod_account(dir: &Path, subject: &Subject, several: bool) -> Option<String> {
    if !matches!(subject, Subject::Pod { .. }) || several {
        return None;
    }
    let pod: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("pod.json")).ok()?).ok()?;
    Some(pod.pointer("/spec/serviceAccountName").and_then(|s| s.as_str()).unwrap_or("default").to_string())
}

/// The audit events about `subject` in `paths`, one JSON object a line in time order, without
/// request and response bodies (they may hold Secret values). Stages of one request are joined:
/// the last stage read wins.
fn audit_excerpt(
    paths: &[PathBuf],
    subject: &Subject,
    pod_account: Option<&str>,
    quiet: bool,
) -> Result<(Vec<u8>, usize), UserError> {
    let inputs = kir_audit::discover(paths).map_err(|e| UserError::usage(e.to_string()))?;
    let mut kept: BTreeMap<String, (Option<jiff::Timestamp>, serde_json::Value)> = BTreeMap::new();
    let mut problems = 0usize;
    let options = kir_audit::ReadOptions::default();
    for input in &inputs {
        let progress = Arc::new(AtomicU64::new(0));
        let result = kir_audit::read_input(input, &options, progress, &mut |batch| {
            let mut records = Vec::new();
            let mut skipped = Vec::new();
            kir_audit::decode_batch(&batch, &mut records, &mut skipped);
            problems += skipped.len() + batch.skipped.len();
            for r in records {
                let Record::Audit(e) = r else { continue };
                let Some(why) = subject.about(&e, pod_account) else { continue };
                let line = json!({
                    "auditID": e.audit_id,
                    "stage": e.stage.map(|s| s.as_str()),
                    "time": e.time().map(|t| t.to_string()),
                    "verb": e.verb,
                    "requestURI": e.request_uri,
                    "user": e.user.username,
                    "groups": e.user.groups,
                    "impersonatedUser": e.impersonated_user.as_ref().map(|u| u.username.clone()),
                    "sourceIPs": e.source_ips,
                    "userAgent": e.user_agent,
                    "objectRef": e.object_ref.as_ref().map(|o| json!({"resource": o.resource, "subresource": o.subresource,
                        "namespace": o.namespace, "name": o.name, "apiGroup": o.api_group})),
                    "code": e.response_code(),
                    "decision": e.decision(),
                    "why": why,
                    "source": format!("{}:{}", e.origin.path, e.origin.line),
                });
                kept.insert(e.audit_id.clone(), (e.time(), line));
            }
        });
        if let Err(e) = result {
            return Err(UserError::usage(e.to_string()));
        }
    }
    if problems > 0 && !quiet {
        eprintln!("kir: {problems} audit lines could not be read (kir hunt --skipped shows them)");
    }
    let mut rows: Vec<_> = kept.into_values().collect();
    rows.sort_by_key(|r| r.0);
    let mut out = Vec::new();
    for (_, row) in &rows {
        out.extend_from_slice(row.to_string().as_bytes());
        out.push(b'\n');
    }
    Ok((out, rows.len()))
}

/// Records a sealed bundle in the store as a `collect` action: what the evidence-first check of
/// destructive actions (`kir contain delete`, `scale-down`, `drain`) looks for.
pub fn record_collection(
    global: &Global,
    target: &str,
    bundle: &Path,
    digest: &str,
    server: &str,
    uids: &[String],
) -> Result<(), UserError> {
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
        // The UIDs of the objects read: evidence of a pod is evidence of that pod, not of a
        // later one re-created under its name.
        before_state: serde_json::json!({"bundle": bundle, "manifest_sha256": digest, "uids": uids}).to_string(),
        changes: "[]".into(),
        undone_at: None,
        undone_by: None,
    };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async {
        let store = kir_store::Store::open(&crate::incident_cmd::store_url(global)?)
            .await
            .map_err(|e| UserError::usage(e.to_string()))?;
        let r = store.record_action(&record).await.map_err(|e| UserError::usage(e.to_string()));
        store.shutdown().await;
        r
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const VALUES: [(&str, &str); 4] = [
        ("KIR_NODE", "ip-10-0-3-17"),
        ("KIR_INSTANCE", "i-0abc"),
        ("KIR_PROVIDER_ID", "aws:///eu-west-1a/i-0abc"),
        ("KIR_VOLUME", "vol-0abc"),
    ];

    #[test]
    fn templates_split_as_a_shell_would_and_fill_in_one_pass() {
        let (words, used) =
            snapshot_words(r#"aws ec2 create-snapshot --volume-id {volume} --description "kir {node}" {other}"#)
                .unwrap();
        assert_eq!(
            words,
            ["aws", "ec2", "create-snapshot", "--volume-id", "{volume}", "--description", "kir {node}", "{other}"]
        );
        assert_eq!(used, ["KIR_NODE", "KIR_VOLUME"]);
        assert_eq!(
            fill_words(&words, &VALUES),
            [
                "aws",
                "ec2",
                "create-snapshot",
                "--volume-id",
                "vol-0abc",
                "--description",
                "kir ip-10-0-3-17",
                "{other}"
            ]
        );
        // Single quotes, backslashes and a doubled brace, as sh reads them.
        let (words, _) = snapshot_words(r#"printf '%s|' '{node}' 'a {node} b' x{node}y {{node}}"#).unwrap();
        assert_eq!(
            fill_words(&words, &VALUES),
            ["printf", "%s|", "ip-10-0-3-17", "a ip-10-0-3-17 b", "xip-10-0-3-17y", "{ip-10-0-3-17}"]
        );
        assert!(snapshot_words("aws 'unclosed").is_none());
        // A # word would be a comment: refused, not silently dropped; quoted it is an argument.
        assert!(snapshot_words("snap --tag #incident {node}").is_none());
        let (words, _) = snapshot_words("snap --tag '#incident' a#b {node}").unwrap();
        assert_eq!(words, ["snap", "--tag", "#incident", "a#b", "{node}"]);
    }

    /// A value is never read again: `{node}` in a value stays, and shell text stays one argument.
    #[test]
    fn values_are_never_expanded_or_split() {
        let (words, _) = snapshot_words("echo {node} {volume}").unwrap();
        let values = [
            ("KIR_NODE", "{volume}"),
            ("KIR_INSTANCE", ""),
            ("KIR_PROVIDER_ID", ""),
            ("KIR_VOLUME", "$(rm -rf /) `x` *"),
        ];
        assert_eq!(fill_words(&words, &values), ["echo", "{volume}", "$(rm -rf /) `x` *"]);
    }

    proptest! {
        /// Whatever the template, no placeholder is left in the filled words, and the number of
        /// words never changes.
        #[test]
        fn no_placeholder_survives(template in "\\PC{0,200}") {
            if let Some((words, _)) = snapshot_words(&template) {
                let filled = fill_words(&words, &VALUES);
                prop_assert_eq!(filled.len(), words.len());
                for word in &filled {
                    for (placeholder, _) in SNAPSHOT_PLACEHOLDERS {
                        prop_assert!(!word.contains(placeholder), "{} in {}", placeholder, word);
                    }
                }
            }
        }

        /// A value with anything a shell would act on is refused.
        #[test]
        fn shell_characters_are_never_plain(prefix in "[a-z0-9-]{0,20}", c in "[ ;&|`$()<>*?\\[\\]{}'\"\\\\\n\t!#~=%]") {
            let value = format!("{prefix}{c}");
            prop_assert!(!plain_value(&value));
        }
    }
}
