//! The kube-apiserver's flags (from its static-pod manifest, or a command line) and its audit
//! policy (`audit.k8s.io/v1` `Policy`), and the level that policy gives a request.

use std::collections::BTreeMap;

use serde::Deserialize;

/// `--name=value` flags of the API server; a flag given twice keeps the last value, as the
/// API server does.
#[derive(Debug, Default, Clone)]
pub struct Flags {
    pub values: BTreeMap<String, String>,
}

impl Flags {
    /// Reads a static-pod manifest (`/etc/kubernetes/manifests/kube-apiserver.yaml`), or, when
    /// the text is not one, a command line or one flag per line (`ps -o args`, an EKS/GKE
    /// description).
    pub fn parse(text: &str) -> Result<Flags, String> {
        let words: Vec<String> = match serde_saphyr::from_str::<serde_json::Value>(text) {
            Ok(doc) if doc.get("spec").is_some() || doc.get("kind").is_some() => {
                let containers =
                    doc.pointer("/spec/containers").and_then(|c| c.as_array()).cloned().unwrap_or_default();
                let apiserver = containers
                    .iter()
                    .find(|c| {
                        c["name"].as_str().is_some_and(|n| n.contains("apiserver"))
                            || c["command"].to_string().contains("kube-apiserver")
                    })
                    .or(containers.first())
                    .ok_or("the manifest has no containers: expected the kube-apiserver static pod")?;
                let list = |v: &serde_json::Value| -> Vec<String> {
                    v.as_array()
                        .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect())
                        .unwrap_or_default()
                };
                let mut words = list(&apiserver["command"]);
                words.extend(list(&apiserver["args"]));
                words
            }
            _ => text.split_whitespace().map(str::to_string).collect(),
        };
        let mut flags = Flags::default();
        let mut pending: Option<String> = None;
        for w in words {
            if let Some(flag) = w.strip_prefix("--") {
                if let Some(p) = pending.take() {
                    flags.values.insert(p, "true".into());
                }
                match flag.split_once('=') {
                    Some((k, v)) => {
                        flags.values.insert(k.to_string(), v.to_string());
                    }
                    None => pending = Some(flag.to_string()),
                }
            } else if let Some(p) = pending.take() {
                flags.values.insert(p, w);
            }
        }
        if let Some(p) = pending {
            flags.values.insert(p, "true".into());
        }
        if flags.values.is_empty() {
            return Err("no --flags found: expected the kube-apiserver manifest or its command line".into());
        }
        Ok(flags)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str).filter(|v| !v.is_empty())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
pub enum AuditLevel {
    None,
    Metadata,
    Request,
    RequestResponse,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditPolicy {
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub rules: Vec<PolicyRule>,
    #[serde(default)]
    pub omit_stages: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyRule {
    pub level: AuditLevel,
    #[serde(default)]
    pub users: Vec<String>,
    #[serde(default)]
    pub user_groups: Vec<String>,
    #[serde(default)]
    pub verbs: Vec<String>,
    #[serde(default)]
    pub resources: Vec<GroupResources>,
    #[serde(default)]
    pub namespaces: Vec<String>,
    #[serde(default, rename = "nonResourceURLs")]
    pub non_resource_urls: Vec<String>,
    #[serde(default)]
    pub omit_stages: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupResources {
    #[serde(default)]
    pub group: String,
    #[serde(default)]
    pub resources: Vec<String>,
    #[serde(default)]
    pub resource_names: Vec<String>,
}

/// A request as a policy sees it.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub verb: &'a str,
    pub group: &'a str,
    /// `pods` or `pods/exec`.
    pub resource: &'a str,
}

impl AuditPolicy {
    pub fn parse(text: &str) -> Result<AuditPolicy, String> {
        let policy: AuditPolicy = serde_saphyr::from_str(text).map_err(|e| e.to_string())?;
        if policy.kind.as_deref().is_some_and(|k| k != "Policy") {
            return Err(format!("kind {:?}: expected an audit.k8s.io/v1 Policy", policy.kind.unwrap_or_default()));
        }
        Ok(policy)
    }

    /// The level this policy logs `request` at, for a caller who could be anyone: rules kept to
    /// named users, groups (other than everyone's) or namespaces do not decide it, since an
    /// attacker is none of those in particular. The first rule that applies decides, as in the
    /// API server; no rule is `None`.
    pub fn level_for(&self, request: Request) -> AuditLevel {
        const EVERYONE: &[&str] = &["system:authenticated", "system:unauthenticated", "system:serviceaccounts"];
        for rule in &self.rules {
            if !rule.users.is_empty()
                || (!rule.user_groups.is_empty() && !rule.user_groups.iter().any(|g| EVERYONE.contains(&g.as_str())))
                || !rule.namespaces.is_empty()
                || !rule.non_resource_urls.is_empty()
            {
                continue;
            }
            if !rule.verbs.is_empty() && !rule.verbs.iter().any(|v| v == request.verb || v == "*") {
                continue;
            }
            if !rule.resources.is_empty() && !rule.resources.iter().any(|g| group_matches(g, request)) {
                continue;
            }
            return rule.level;
        }
        AuditLevel::None
    }

    /// Whether the policy (or every rule that logs) leaves out the stage that carries the
    /// response code.
    pub fn omits_response(&self) -> bool {
        self.omit_stages.iter().any(|s| s == "ResponseComplete")
    }
}

fn group_matches(g: &GroupResources, r: Request) -> bool {
    if g.group != r.group && g.group != "*" {
        return false;
    }
    if !g.resource_names.is_empty() {
        return false;
    }
    if g.resources.is_empty() {
        return true;
    }
    let (base, sub) = match r.resource.split_once('/') {
        Some((b, s)) => (b, Some(s)),
        None => (r.resource, None),
    };
    g.resources.iter().any(|x| {
        x == "*"
            || x == r.resource
            || sub.is_some() && (*x == format!("{base}/*") || *x == format!("*/{}", sub.unwrap_or_default()))
    })
}
