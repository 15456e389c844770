//! `kir top`: pods by CPU and memory against their requests and limits, with the shape of
//! cryptomining flagged: CPU pinned, and (with runtime alerts) connections to mining-pool ports.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use comfy_table::Cell;
use kir_audit::Record;
use kir_cluster::top::{PodUsage, Source};

use crate::cli::{Format, Global, TopArgs};
use crate::output::{outln, table, use_color};
use crate::{UserError, exit};

/// Ports mining pools listen on (stratum), as pool operators publish them.
pub const POOL_PORTS: &[u64] =
    &[3333, 3334, 3335, 3336, 4444, 5555, 5588, 6666, 7777, 8888, 9999, 14433, 14444, 45560, 45700];

/// Pods seen connecting to a pool port (or speaking stratum) in Falco alerts: pod → why.
fn pool_connections(paths: &[PathBuf]) -> Result<BTreeMap<(String, String), String>, UserError> {
    let mut found = BTreeMap::new();
    if paths.is_empty() {
        return Ok(found);
    }
    let inputs = kir_audit::discover(paths).map_err(|e| UserError::usage(e.to_string()))?;
    let options = kir_audit::ReadOptions::default();
    for input in &inputs {
        kir_audit::read_input(input, &options, Arc::new(AtomicU64::new(0)), &mut |batch| {
            let mut records = Vec::new();
            let mut skipped = Vec::new();
            kir_audit::decode_batch(&batch, &mut records, &mut skipped);
            for r in records {
                let Record::Falco(a) = r else { continue };
                let field = |k: &str| {
                    a.output_fields.get(k).and_then(|v| v.as_str().map(str::to_string).or_else(|| Some(v.to_string())))
                };
                let (Some(ns), Some(pod)) = (field("k8s.ns.name"), field("k8s.pod.name")) else { continue };
                let port = ["fd.rport", "fd.sport", "fd.dport"]
                    .iter()
                    .filter_map(|k| a.output_fields.get(*k))
                    .filter_map(|v| v.as_u64().or_else(|| v.as_str().and_then(|s| s.parse().ok())))
                    .find(|p| POOL_PORTS.contains(p))
                    .or_else(|| {
                        field("fd.name")
                            .and_then(|n| n.rsplit(':').next().and_then(|p| p.parse().ok()))
                            .filter(|p| POOL_PORTS.contains(p))
                    });
                let why = match port {
                    Some(p) => format!("connection to pool port {p} (Falco: {})", a.rule),
                    None if a.output.contains("stratum+") => format!("stratum URL (Falco: {})", a.rule),
                    None => continue,
                };
                found.entry((ns, pod)).or_insert(why);
            }
        })
        .map_err(|e| UserError::usage(e.to_string()))?;
    }
    Ok(found)
}

fn human_bytes(b: u64) -> String {
    const MI: f64 = 1_048_576.0;
    if b as f64 >= 1024.0 * MI {
        format!("{:.1}Gi", b as f64 / (1024.0 * MI))
    } else {
        format!("{:.0}Mi", b as f64 / MI)
    }
}

fn ratio(used: f64, of: Option<f64>) -> String {
    of.filter(|o| *o > 0.0).map(|o| format!("{:.0}%", 100.0 * used / o)).unwrap_or_else(|| "-".into())
}

pub fn run(global: &Global, args: &TopArgs) -> Result<u8, UserError> {
    let pools = pool_connections(&args.alerts)?;
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let (list, source) = rt.block_on(async {
        let (client, _) =
            kir_cluster::connect(global.kubeconfig.as_deref(), crate::contain_cmd::one_context(global)?).await?;
        let ns = if args.all_namespaces { None } else { args.namespace.as_deref() };
        Ok::<_, UserError>(kir_cluster::top::usage(&client, ns).await?)
    })?;
    let flags_of = |u: &PodUsage| -> Vec<String> {
        let mut f: Vec<String> = kir_cluster::top::pinned_cpu(u).into_iter().collect();
        if let Some(why) = pools.get(&(u.namespace.clone(), u.name.clone())) {
            f.push(why.clone());
        }
        f
    };
    let source_name = match source {
        Source::MetricsServer => "metrics-server",
        Source::Kubelet => "kubelet stats summary",
    };
    let mut flagged = 0;
    match global.format {
        Format::Json | Format::Jsonl => {
            for u in list.iter().take(args.limit) {
                let flags = flags_of(u);
                flagged += usize::from(!flags.is_empty());
                let mut v = serde_json::to_value(u)?;
                v["flags"] = serde_json::json!(flags);
                v["source"] = serde_json::json!(source);
                outln!("{v}");
            }
        }
        _ => {
            let mut t = table(
                use_color(global),
                &[
                    "NAMESPACE",
                    "POD",
                    "NODE",
                    "CPU",
                    "CPU/REQ",
                    "CPU/LIM",
                    "MEMORY",
                    "MEM/REQ",
                    "MEM/LIM",
                    "LOOKS LIKE",
                ],
            );
            for u in list.iter().take(args.limit) {
                let flags = flags_of(u);
                flagged += usize::from(!flags.is_empty());
                t.add_row(vec![
                    Cell::new(&u.namespace),
                    Cell::new(&u.name),
                    Cell::new(u.node.as_deref().unwrap_or("")),
                    Cell::new(format!("{:.0}m", u.cpu_millis)),
                    Cell::new(ratio(u.cpu_millis, u.cpu_request_millis)),
                    Cell::new(ratio(u.cpu_millis, u.cpu_limit_millis)),
                    Cell::new(human_bytes(u.memory_bytes)),
                    Cell::new(ratio(u.memory_bytes as f64, u.memory_request_bytes.map(|b| b as f64))),
                    Cell::new(ratio(u.memory_bytes as f64, u.memory_limit_bytes.map(|b| b as f64))),
                    Cell::new(if flags.is_empty() {
                        String::new()
                    } else {
                        format!("cryptomining? {}", flags.join("; "))
                    }),
                ]);
            }
            outln!("{t}");
            if !global.quiet {
                eprintln!(
                    "kir: {} pods from the {source_name}; {flagged} with the shape of cryptomining",
                    list.len().min(args.limit)
                );
            }
        }
    }
    Ok(if flagged > 0 && args.fail_on_mining { exit::FAIL_ON } else { exit::OK })
}
