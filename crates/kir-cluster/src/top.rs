//! Pod CPU and memory against requests and limits: from the metrics API (metrics-server) or,
//! where none runs, from each kubelet's stats summary through the API server's node proxy.

use std::collections::BTreeMap;

use kube::Client;
use serde::Serialize;
use serde_json::Value;

use crate::{Error, encode, explain};

/// Where the numbers came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    MetricsServer,
    Kubelet,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PodUsage {
    pub namespace: String,
    pub name: String,
    pub node: Option<String>,
    /// Millicores in use.
    pub cpu_millis: f64,
    pub memory_bytes: u64,
    pub cpu_request_millis: Option<f64>,
    pub cpu_limit_millis: Option<f64>,
    pub memory_request_bytes: Option<u64>,
    pub memory_limit_bytes: Option<u64>,
}

/// Reads a Kubernetes quantity (`250m`, `1.5`, `100Mi`, `1e3`, `12345n`) into base units.
/// `None` for anything else; never panics.
pub fn parse_quantity(text: &str) -> Option<f64> {
    let t = text.trim();
    if t.is_empty() || t.len() > 64 {
        return None;
    }
    const SUFFIXES: &[(&str, f64)] = &[
        ("Ki", 1024.0),
        ("Mi", 1_048_576.0),
        ("Gi", 1_073_741_824.0),
        ("Ti", 1_099_511_627_776.0),
        ("Pi", 1_125_899_906_842_624.0),
        ("Ei", 1_152_921_504_606_846_976.0),
        ("n", 1e-9),
        ("u", 1e-6),
        ("m", 1e-3),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
        ("P", 1e15),
        ("E", 1e18),
    ];
    let (number, factor) = SUFFIXES.iter().find_map(|(s, f)| t.strip_suffix(s).map(|n| (n, *f))).unwrap_or((t, 1.0));
    // Only digits, one dot, an optional sign and a decimal exponent: what the API accepts.
    if number.is_empty() || !number.chars().all(|c| c.is_ascii_digit() || "+-.eE".contains(c)) {
        return None;
    }
    let value: f64 = number.parse().ok()?;
    let v = value * factor;
    (v.is_finite() && v >= 0.0).then_some(v)
}

fn sum_resources(pod: &Value, kind: &str, resource: &str) -> Option<f64> {
    let mut total = 0.0;
    let mut any = false;
    for c in pod.pointer("/spec/containers").and_then(|c| c.as_array()).into_iter().flatten() {
        if let Some(q) =
            c.pointer(&format!("/resources/{kind}/{resource}")).and_then(|q| q.as_str()).and_then(parse_quantity)
        {
            total += q;
            any = true;
        }
    }
    any.then_some(total)
}

async fn get(client: &Client, path: &str) -> Result<Value, kube::Error> {
    let text = crate::get_text(client, path).await?;
    Ok(serde_json::from_str(&text).unwrap_or_default())
}

/// Usage of every pod (in `namespace`, or all), with requests and limits, and the source.
pub async fn usage(client: &Client, namespace: Option<&str>) -> Result<(Vec<PodUsage>, Source), Error> {
    let pods_path = match namespace {
        Some(ns) => format!("/api/v1/namespaces/{}/pods", encode(ns)),
        None => "/api/v1/pods".to_string(),
    };
    let pods = get(client, &pods_path).await.map_err(|e| explain(e, "list", "pods", namespace, None))?;
    let mut by_pod: BTreeMap<(String, String), PodUsage> = BTreeMap::new();
    for p in pods.get("items").and_then(|i| i.as_array()).into_iter().flatten() {
        if p.pointer("/status/phase").and_then(|v| v.as_str()) != Some("Running") {
            continue;
        }
        let ns = p.pointer("/metadata/namespace").and_then(|v| v.as_str()).unwrap_or_default().to_string();
        let name = p.pointer("/metadata/name").and_then(|v| v.as_str()).unwrap_or_default().to_string();
        by_pod.insert(
            (ns.clone(), name.clone()),
            PodUsage {
                namespace: ns,
                name,
                node: p.pointer("/spec/nodeName").and_then(|v| v.as_str()).map(str::to_string),
                cpu_request_millis: sum_resources(p, "requests", "cpu").map(|c| c * 1000.0),
                cpu_limit_millis: sum_resources(p, "limits", "cpu").map(|c| c * 1000.0),
                memory_request_bytes: sum_resources(p, "requests", "memory").map(|m| m as u64),
                memory_limit_bytes: sum_resources(p, "limits", "memory").map(|m| m as u64),
                ..Default::default()
            },
        );
    }
    let metrics_path = match namespace {
        Some(ns) => format!("/apis/metrics.k8s.io/v1beta1/namespaces/{}/pods", encode(ns)),
        None => "/apis/metrics.k8s.io/v1beta1/pods".to_string(),
    };
    let source = match get(client, &metrics_path).await {
        Ok(metrics) => {
            for m in metrics.get("items").and_then(|i| i.as_array()).into_iter().flatten() {
                let key = (
                    m.pointer("/metadata/namespace").and_then(|v| v.as_str()).unwrap_or_default().to_string(),
                    m.pointer("/metadata/name").and_then(|v| v.as_str()).unwrap_or_default().to_string(),
                );
                if let Some(u) = by_pod.get_mut(&key) {
                    for c in m.get("containers").and_then(|c| c.as_array()).into_iter().flatten() {
                        u.cpu_millis +=
                            c.pointer("/usage/cpu").and_then(|q| q.as_str()).and_then(parse_quantity).unwrap_or(0.0)
                                * 1000.0;
                        u.memory_bytes +=
                            c.pointer("/usage/memory").and_then(|q| q.as_str()).and_then(parse_quantity).unwrap_or(0.0)
                                as u64;
                    }
                }
            }
            Source::MetricsServer
        }
        // No metrics-server (404, or 503 from an unavailable APIService): ask each kubelet.
        Err(kube::Error::Api(s)) if s.code == 404 || s.code == 503 => {
            let nodes: Vec<String> = {
                let mut n: Vec<String> = by_pod.values().filter_map(|u| u.node.clone()).collect();
                n.sort();
                n.dedup();
                n
            };
            for node in nodes {
                let path = format!("/api/v1/nodes/{}/proxy/stats/summary", encode(&node));
                let summary =
                    get(client, &path).await.map_err(|e| explain(e, "get", "nodes/proxy", None, Some(&node)))?;
                for p in summary.get("pods").and_then(|p| p.as_array()).into_iter().flatten() {
                    let key = (
                        p.pointer("/podRef/namespace").and_then(|v| v.as_str()).unwrap_or_default().to_string(),
                        p.pointer("/podRef/name").and_then(|v| v.as_str()).unwrap_or_default().to_string(),
                    );
                    if let Some(u) = by_pod.get_mut(&key) {
                        u.cpu_millis = p.pointer("/cpu/usageNanoCores").and_then(|v| v.as_f64()).unwrap_or(0.0) / 1e6;
                        u.memory_bytes = p.pointer("/memory/workingSetBytes").and_then(|v| v.as_u64()).unwrap_or(0);
                    }
                }
            }
            Source::Kubelet
        }
        Err(e) => return Err(explain(e, "list", "pods.metrics.k8s.io", namespace, None)),
    };
    let mut list: Vec<PodUsage> = by_pod.into_values().collect();
    list.sort_by(|a, b| b.cpu_millis.total_cmp(&a.cpu_millis).then_with(|| a.name.cmp(&b.name)));
    Ok((list, source))
}

/// The CPU shape of a miner: a pod held at its CPU limit, or, without a limit, at a core or more
/// and far above what it asked for.
pub fn pinned_cpu(u: &PodUsage) -> Option<String> {
    match (u.cpu_limit_millis, u.cpu_request_millis) {
        (Some(limit), _) if limit > 0.0 && u.cpu_millis >= 0.9 * limit && u.cpu_millis >= 50.0 => {
            Some(format!("CPU pinned at its limit ({:.0}m of {:.0}m)", u.cpu_millis, limit))
        }
        (None, request) if u.cpu_millis >= 900.0 && request.is_none_or(|r| u.cpu_millis >= 4.0 * r) => Some(format!(
            "{:.0}m CPU with no limit{}",
            u.cpu_millis,
            request.map(|r| format!(", {:.0}× its request", u.cpu_millis / r.max(1.0))).unwrap_or_default()
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn quantities() {
        assert_eq!(parse_quantity("250m"), Some(0.25));
        assert_eq!(parse_quantity("2"), Some(2.0));
        assert_eq!(parse_quantity("128Mi"), Some(134_217_728.0));
        assert_eq!(parse_quantity("1e3"), Some(1000.0));
        assert_eq!(parse_quantity("1500000n").map(|v| (v * 1e6).round()), Some(1500.0));
        assert_eq!(parse_quantity("1G"), Some(1e9));
        for bad in ["", "m", "Mi", "abc", "1.2.3", "-5", "1x", "NaN", "inf"] {
            assert_eq!(parse_quantity(bad), None, "{bad}");
        }
    }

    proptest! {
        #[test]
        fn any_text_is_read_or_refused(t in ".{0,80}") {
            if let Some(v) = parse_quantity(&t) {
                prop_assert!(v.is_finite() && v >= 0.0);
            }
        }

        #[test]
        fn millis_read_back(n in 0u32..10_000_000) {
            let v = parse_quantity(&format!("{n}m")).unwrap();
            prop_assert!((v * 1000.0 - n as f64).abs() < 1e-6 * (n as f64).max(1.0));
        }
    }
}
