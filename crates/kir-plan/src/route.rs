//! Plan decisions about findings: how bad, what kind, which group, who owns it.
//! Pure: no clock, no store; the same finding and plan give the same answer.

use kir_core::glob;
use kir_detect::{Finding, Level};

use crate::schema::{GroupKey, Match, Ownership, Plan};

/// What the plan says about one finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routed {
    /// A routing rule said `ignore: true`.
    pub ignored: bool,
    /// Incident severity this finding calls for.
    pub severity: Level,
    pub incident_type: String,
    /// Strong enough to open an incident (not just join one).
    pub opens: bool,
    /// Findings with the same key and close in time form one incident.
    pub group_key: String,
}

impl Plan {
    pub fn route(&self, finding: &Finding) -> Routed {
        let mut severity = finding.severity;
        let mut incident_type = None;
        let mut ignored = false;
        for rule in &self.routing.rules {
            if !matches(&rule.matches, finding) {
                continue;
            }
            ignored |= rule.ignore;
            if let Some(s) = rule.severity {
                severity = severity.max(s);
            }
            if incident_type.is_none() {
                incident_type.clone_from(&rule.incident_type);
            }
        }
        let incident_type = incident_type.unwrap_or_else(|| self.routing.default_type.clone());
        let group_key = self.group_key(finding, &incident_type);
        Routed { ignored, severity, opens: severity >= self.routing.open_incident_at, incident_type, group_key }
    }

    fn group_key(&self, f: &Finding, incident_type: &str) -> String {
        // A namespace, and so a workload, is one cluster's: `default` in two clusters is two.
        let in_cluster = f.cluster.as_deref().map(|c| format!("{CLUSTER_MARK}{c}")).unwrap_or_default();
        if self.grouping.delegates.iter().any(|d| glob(d, &f.actor.user)) {
            return format!("{DELEGATE_PREFIX}{}{in_cluster}", f.object.namespace.as_deref().unwrap_or("-"));
        }
        let workload = || {
            format!(
                "{}/{}/{}{in_cluster}",
                f.object.resource.as_deref().unwrap_or("-"),
                f.object.namespace.as_deref().unwrap_or("-"),
                f.object.name.as_deref().unwrap_or("-")
            )
        };
        let parts: Vec<String> = self
            .grouping
            .by
            .iter()
            .map(|key| match key {
                // Runtime alerts often carry no Kubernetes user: the workload stands in for it.
                GroupKey::Actor if f.actor.user.is_empty() => format!("workload={}", workload()),
                GroupKey::Actor => format!("actor={}", f.actor.user),
                GroupKey::Namespace => {
                    format!("namespace={}{in_cluster}", f.object.namespace.as_deref().unwrap_or("-"))
                }
                GroupKey::Workload => format!("workload={}", workload()),
                GroupKey::Rule => format!("rule={}", f.rule_id),
                GroupKey::Type => format!("type={incident_type}"),
                GroupKey::Cluster => format!("cluster={}", f.cluster.as_deref().unwrap_or("-")),
            })
            .collect();
        parts.join(" ")
    }

    /// The ownership entry for incidents of `severity`: the one that lists it, else the nearest
    /// above, else the nearest below (`kir plan check` warns about the gap).
    pub fn ownership_for(&self, severity: Level) -> Option<&Ownership> {
        let exact = self.ownership.iter().find(|o| o.severities.contains(&severity));
        exact
            .or_else(|| {
                Level::ALL
                    .iter()
                    .filter(|l| **l > severity)
                    .find_map(|l| self.ownership.iter().find(|o| o.severities.contains(l)))
            })
            .or_else(|| {
                Level::ALL
                    .iter()
                    .rev()
                    .filter(|l| **l < severity)
                    .find_map(|l| self.ownership.iter().find(|o| o.severities.contains(l)))
            })
    }

    /// Severity after the plan's `grouping.raise` rules, for an incident whose findings span
    /// these tactics and rules.
    pub fn raised_severity(&self, current: Level, distinct_tactics: usize, distinct_rules: usize) -> Level {
        let mut severity = current;
        for raise in &self.grouping.raise {
            let tactics_ok = raise.when_distinct_tactics.is_none_or(|n| distinct_tactics >= n);
            let rules_ok = raise.when_distinct_rules.is_none_or(|n| distinct_rules >= n);
            let any_condition = raise.when_distinct_tactics.is_some() || raise.when_distinct_rules.is_some();
            if any_condition && tactics_ok && rules_ok {
                severity = severity.max(raise.to);
            }
        }
        severity
    }

    pub fn type_title(&self, id: &str) -> String {
        self.types.iter().find(|t| t.id == id).map(|t| t.title.clone()).unwrap_or_else(|| id.to_string())
    }
}

fn matches(m: &Match, f: &Finding) -> bool {
    let any = |list: &[String], pred: &dyn Fn(&str) -> bool| list.is_empty() || list.iter().any(|x| pred(x));
    m.min_severity.is_none_or(|min| f.severity >= min)
        && any(&m.rules, &|r| {
            glob(r, &f.rule_id) || f.rule_name.as_deref().is_some_and(|n| glob(r, n)) || glob(r, &f.title)
        })
        && any(&m.tactics, &|t| f.tactics.iter().any(|ft| ft.eq_ignore_ascii_case(t)))
        && any(&m.techniques, &|t| {
            f.techniques.iter().any(|ft| {
                ft.eq_ignore_ascii_case(t)
                    || (ft.get(..t.len()).is_some_and(|head| head.eq_ignore_ascii_case(t))
                        && ft.as_bytes().get(t.len()) == Some(&b'.'))
            })
        })
        && any(&m.threat_matrix, &|t| f.threat_matrix.iter().any(|ft| ft.eq_ignore_ascii_case(t)))
        && any(&m.namespaces, &|n| f.object.namespace.as_deref().is_some_and(|ns| glob(n, ns)))
        && any(&m.actors, &|a| glob(a, &f.actor.user))
        && any(&m.clusters, &|c| f.cluster.as_deref().is_some_and(|fc| glob(c, fc)))
}

/// Group keys of findings made by a delegate (a controller) start with this, then the namespace.
pub const DELEGATE_PREFIX: &str = "delegate namespace=";

/// Between a namespace and its cluster in a group key (`delegate namespace=web@prod-eu`).
/// Namespaces never hold an `@`.
pub const CLUSTER_MARK: &str = "@";

/// The namespace and cluster of a delegate's group key (after [`DELEGATE_PREFIX`]).
pub fn delegate_scope(rest: &str) -> (&str, Option<&str>) {
    match rest.split_once(CLUSTER_MARK) {
        Some((namespace, cluster)) => (namespace, Some(cluster)),
        None => (rest, None),
    }
}
