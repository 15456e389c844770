//! Can we see? The audit log, its policy and retention, and a runtime sensor on the nodes.

use kir_detect::Level;

use crate::apiserver::{AuditLevel, Request};
use crate::inventory::{name, reference};
use crate::{Area, Check, Input, Status};

/// What an investigation must see, and the least level that shows it.
const MUST_SEE: &[(&str, Request<'static>, AuditLevel)] = &[
    ("exec into pods", Request { verb: "create", group: "", resource: "pods/exec" }, AuditLevel::Metadata),
    ("attach to pods", Request { verb: "create", group: "", resource: "pods/attach" }, AuditLevel::Metadata),
    ("port-forward", Request { verb: "create", group: "", resource: "pods/portforward" }, AuditLevel::Metadata),
    ("Secret reads", Request { verb: "get", group: "", resource: "secrets" }, AuditLevel::Metadata),
    ("Secret lists", Request { verb: "list", group: "", resource: "secrets" }, AuditLevel::Metadata),
    (
        "cluster role bindings",
        Request { verb: "create", group: "rbac.authorization.k8s.io", resource: "clusterrolebindings" },
        AuditLevel::Metadata,
    ),
    (
        "role bindings",
        Request { verb: "create", group: "rbac.authorization.k8s.io", resource: "rolebindings" },
        AuditLevel::Metadata,
    ),
    (
        "roles",
        Request { verb: "create", group: "rbac.authorization.k8s.io", resource: "clusterroles" },
        AuditLevel::Metadata,
    ),
    (
        "service account tokens",
        Request { verb: "create", group: "", resource: "serviceaccounts/token" },
        AuditLevel::Metadata,
    ),
    (
        "certificate signing requests",
        Request { verb: "create", group: "certificates.k8s.io", resource: "certificatesigningrequests" },
        AuditLevel::Metadata,
    ),
    // The workload rules read the pod spec: the request body must be logged.
    (
        "pod specs (privileged, hostPath, images)",
        Request { verb: "create", group: "", resource: "pods" },
        AuditLevel::Request,
    ),
    ("deployment specs", Request { verb: "create", group: "apps", resource: "deployments" }, AuditLevel::Request),
];

/// Runtime sensors recognised by their DaemonSet's name or image.
const SENSORS: &[&str] =
    &["falco", "tetragon", "tracee", "sysdig", "kubearmor", "neuvector", "crowdstrike", "aqua-enforcer"];

pub fn checks(input: &Input) -> Vec<Check> {
    let mut out = Vec::new();
    let enabled = Check::new("audit-logging", "Audit logging is on", Area::See, Level::Critical);
    out.push(match input.flags {
        None => enabled.unknown("no API server manifest given (--apiserver-manifest)"),
        Some(f) => {
            let sink = f.get("audit-log-path").filter(|p| *p != "-").or(f.get("audit-webhook-config-file"));
            match (sink, f.get("audit-policy-file")) {
                (Some(_), Some(_)) => enabled.pass("the API server writes an audit log under a policy"),
                (None, _) => enabled.failed(
                    Status::Fail,
                    "neither --audit-log-path nor --audit-webhook-config-file is set: no request is recorded",
                    "add --audit-policy-file=/etc/kubernetes/audit-policy.yaml --audit-log-path=/var/log/kubernetes/audit.log (or the webhook flags, docs/readiness.md)",
                ),
                (Some(_), None) => enabled.failed(
                    Status::Fail,
                    "an audit backend is set but --audit-policy-file is not: without a policy nothing is logged",
                    "add --audit-policy-file=/etc/kubernetes/audit-policy.yaml",
                ),
            }
        }
    });

    let retention = Check::new("audit-retention", "Audit logs are kept 30 days or shipped", Area::See, Level::Medium);
    out.push(match input.flags {
        None => retention.unknown("no API server manifest given"),
        Some(f) if f.get("audit-webhook-config-file").is_some() => {
            retention.pass("events are shipped by the webhook backend; keep them 30 days where they land")
        }
        Some(f) => match f.get("audit-log-maxage").map(|d| d.parse::<u32>()) {
            Some(Ok(days)) if days >= 30 => retention.pass(format!("kept {days} days")),
            Some(Ok(days)) => retention.failed(
                Status::Fail,
                format!("--audit-log-maxage={days}: an intrusion found after {days} days cannot be investigated"),
                "--audit-log-maxage=30 (and ship the log off the node: an attacker on it can delete it)",
            ),
            Some(Err(_)) => {
                retention.failed(Status::Warn, "--audit-log-maxage is not a number of days", "--audit-log-maxage=30")
            }
            None => retention.failed(
                Status::Warn,
                "no --audit-log-maxage: the log is kept by size only (--audit-log-maxbackup/--audit-log-maxsize)",
                "--audit-log-maxage=30, and ship the log off the node",
            ),
        },
    });

    let webhook = Check::new(
        "audit-webhook-capacity",
        "The audit webhook keeps up with the cluster's events",
        Area::See,
        Level::Medium,
    );
    out.push(match input.flags {
        None => webhook.unknown("no API server manifest given"),
        Some(f) if f.get("audit-webhook-config-file").is_none() => webhook.unknown("no audit webhook is configured"),
        Some(f) => {
            let number = |name: &str, default: f64| f.get(name).and_then(|v| v.parse::<f64>().ok()).unwrap_or(default);
            let mode = f.get("audit-webhook-mode").unwrap_or("batch");
            // The API server's defaults (k8s.io/apiserver, plugin/pkg/audit/buffered).
            let max_size = number("audit-webhook-batch-max-size", 400.0);
            let qps = number("audit-webhook-batch-throttle-qps", 10.0);
            let throttled = f.get("audit-webhook-batch-throttle-enable") != Some("false");
            let buffer = number("audit-webhook-batch-buffer-size", 10000.0);
            let capacity = if throttled { max_size * qps } else { f64::INFINITY };
            let carries = if capacity.is_finite() { format!("{capacity:.0} events/s") } else { "unthrottled".into() };
            match (mode, input.event_rate) {
                ("blocking" | "blocking-strict", _) => webhook.failed(
                    Status::Warn,
                    format!("--audit-webhook-mode={mode}: every request waits for the webhook, so a slow receiver slows the API server"),
                    "--audit-webhook-mode=batch (the default)",
                ),
                (_, None) => webhook.unknown(format!(
                    "the batch backend carries {carries} with a buffer of {buffer:.0} events; give --event-rate N (events/s at the busiest hour) to compare"
                )),
                (_, Some(rate)) if rate > capacity => webhook.failed(
                    Status::Fail,
                    format!("the cluster logs {rate:.0} events/s but the webhook carries {carries}: the buffer of {buffer:.0} fills in {:.0} s and events are dropped", buffer / (rate - capacity)),
                    "raise --audit-webhook-batch-max-size or --audit-webhook-batch-throttle-qps",
                ),
                (_, Some(rate)) if rate > 0.0 && buffer / rate < 30.0 => webhook.failed(
                    Status::Warn,
                    format!("the buffer of {buffer:.0} events holds {:.0} s of {rate:.0} events/s: a receiver restart longer than that loses events", buffer / rate),
                    "--audit-webhook-batch-buffer-size=N with N at least 60 s of events",
                ),
                (_, Some(rate)) => webhook.pass(format!("carries {carries} against {rate:.0} events/s")),
            }
        }
    });

    let coverage = Check::new(
        "audit-policy-coverage",
        "The audit policy records what an investigation needs",
        Area::See,
        Level::High,
    );
    let leak =
        Check::new("audit-policy-secret-bodies", "The audit policy does not log Secret values", Area::See, Level::High);
    match input.audit_policy {
        None => {
            out.push(coverage.unknown("no audit policy given (--audit-policy)"));
            out.push(leak.unknown("no audit policy given (--audit-policy)"));
        }
        Some(policy) => {
            let mut blind = Vec::new();
            let mut thin = Vec::new();
            for (what, request, least) in MUST_SEE {
                let level = policy.level_for(*request);
                if level == AuditLevel::None {
                    blind.push(format!("{what} ({} {})", request.verb, request.resource));
                } else if level < *least {
                    thin.push(format!("{what} at {level:?}, rules need {least:?}"));
                }
            }
            if policy.omits_response() {
                thin.push("ResponseComplete is omitted: response codes (refused attempts) are lost".into());
            }
            out.push(if !blind.is_empty() {
                coverage.failed(
                    Status::Fail,
                    format!("not logged at all: {}{}", blind.join("; "), if thin.is_empty() { String::new() } else { format!("; too thin: {}", thin.join("; ")) }),
                    "put before the catch-all rules: - level: Metadata\n  resources: [{group: \"\", resources: [pods/exec, pods/attach, pods/portforward, secrets, serviceaccounts/token]}, {group: rbac.authorization.k8s.io}, {group: certificates.k8s.io}]",
                )
            } else if !thin.is_empty() {
                coverage.failed(
                    Status::Warn,
                    format!("logged too thinly for some rules: {}", thin.join("; ")),
                    "- level: Request\n  resources: [{group: \"\", resources: [pods]}, {group: apps}, {group: batch}]",
                )
            } else {
                coverage.pass("exec, attach, port-forward, Secrets, RBAC, tokens, CSRs and workload specs are logged")
            });
            let mut leaks = Vec::new();
            for verb in ["get", "list", "create", "update", "patch"] {
                let level = policy.level_for(Request { verb, group: "", resource: "secrets" });
                if level >= AuditLevel::Request {
                    leaks.push(format!("{verb} secrets at {level:?}"));
                }
            }
            out.push(if leaks.is_empty() {
                leak.pass("Secrets are logged at Metadata or not at all")
            } else {
                leak.failed(
                    Status::Fail,
                    format!("the audit log holds Secret values: {}", leaks.join(", ")),
                    "first rule of the policy: - level: Metadata\n  resources: [{group: \"\", resources: [secrets, configmaps]}]",
                )
            });
        }
    }

    let blind = Check::new(
        "rules-blind-under-policy",
        "Every detection rule can fire under the audit policy",
        Area::See,
        Level::Medium,
    );
    out.push(match (input.audit_policy, input.rules) {
        (None, _) => blind.unknown("no audit policy given (--audit-policy)"),
        (Some(_), None) => blind.unknown("no rules given"),
        (Some(policy), Some(rules)) => {
            let found = crate::rules::blind_rules(rules, policy);
            let detail = found.iter().map(|(_, why)| why.as_str()).collect::<Vec<_>>().join("; ");
            blind.verdict(
                Status::Fail,
                found.into_iter().map(|(rule, _)| rule).collect(),
                format!("these rules cannot fire: {detail}"),
                "every rule that names its resources sees them at the level it needs",
                "log those resources at the level named (Request for rules that read a pod spec or a CSR), before the policy's catch-all rule",
            )
        }
    });

    let sensor = Check::new("runtime-sensor", "A runtime sensor runs on every node", Area::See, Level::High);
    out.push(match input.inventory {
        None => sensor.unknown("no cluster inventory (--from, or the live cluster)"),
        Some(inv) if !inv.has_kind("DaemonSet") => sensor.unknown("the inventory has no DaemonSets listed"),
        Some(inv) => {
            let found: Vec<&serde_json::Value> = inv
                .of_kind("DaemonSet")
                .filter(|d| {
                    let images = d.pointer("/spec/template/spec/containers").map(|c| c.to_string()).unwrap_or_default();
                    SENSORS.iter().any(|s| name(d).contains(s) || images.contains(s))
                })
                .collect();
            match found.first() {
                None => sensor.failed(
                    Status::Fail,
                    "no Falco, Tetragon or other runtime sensor DaemonSet: a shell or a miner inside a container is not seen",
                    "helm install falco falcosecurity/falco -n falco --create-namespace --set falcosidekick.enabled=true",
                ),
                Some(_) => {
                    let short: Vec<String> = found
                        .iter()
                        .filter(|d| {
                            let want = d.pointer("/status/desiredNumberScheduled").and_then(|v| v.as_i64());
                            let ready = d.pointer("/status/numberReady").and_then(|v| v.as_i64());
                            matches!((want, ready), (Some(w), Some(r)) if r < w)
                        })
                        .map(|d| reference(d))
                        .collect();
                    if short.is_empty() {
                        sensor.pass(format!("{} runs", found.iter().map(|d| reference(d)).collect::<Vec<_>>().join(", ")))
                    } else {
                        sensor.verdict(
                            Status::Warn,
                            short,
                            "the sensor is not ready on every node it should run on",
                            "",
                            "kubectl -n NAMESPACE describe daemonset NAME: look for nodes it cannot schedule on (taints, resources)",
                        )
                    }
                }
            }
        }
    });
    out
}
