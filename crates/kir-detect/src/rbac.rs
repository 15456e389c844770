//! What a role can do, read from its rules (not its name): a role that grants `*` on `*` is
//! cluster-admin whatever it is called. Shared by the detection rules (`kir.roleRef.power`) and
//! readiness.

use serde_json::Value;

/// What a role can do that matters in an incident, from the strongest down.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Power {
    /// `*` verbs on `*` resources in `*` groups.
    pub admin: bool,
    /// escalate, bind or impersonate: a way to any other power.
    pub escalate: bool,
    /// get, list or watch Secrets.
    pub read_secrets: bool,
    /// Create pods or workloads, exec or attach into pods, proxy to nodes.
    pub run_code: bool,
}

impl Power {
    pub fn is_powerful(self) -> bool {
        self.admin || self.escalate || self.read_secrets || self.run_code
    }

    pub fn describe(self) -> String {
        let mut parts = Vec::new();
        if self.admin {
            parts.push("everything (cluster-admin by content)");
        }
        if self.escalate {
            parts.push("escalate/bind/impersonate");
        }
        if self.read_secrets {
            parts.push("read Secrets");
        }
        if self.run_code {
            parts.push("run code (create pods, exec, nodes/proxy)");
        }
        if parts.is_empty() { "nothing powerful".into() } else { parts.join(", ") }
    }
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array().map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default()
}

/// The power of a list of PolicyRules.
pub fn power_of_rules(rules: &Value) -> Power {
    let mut p = Power::default();
    for rule in rules.as_array().into_iter().flatten() {
        let verbs = strings(&rule["verbs"]);
        let groups = strings(&rule["apiGroups"]);
        let resources = strings(&rule["resources"]);
        if !rule["resourceNames"].as_array().is_none_or(|n| n.is_empty()) {
            // Limited to named objects: not a general power (a named Secret is still read, but
            // it is not "every Secret").
            continue;
        }
        let verb = |v: &str| verbs.iter().any(|x| *x == "*" || *x == v);
        let group = |g: &str| groups.iter().any(|x| *x == "*" || *x == g);
        let resource = |r: &str| {
            resources.iter().any(|x| {
                *x == "*"
                    || *x == r
                    || (r.contains('/') && r.split('/').next().is_some_and(|base| *x == format!("{base}/*")))
            })
        };
        if verbs.contains(&"*") && groups.contains(&"*") && resources.contains(&"*") {
            p.admin = true;
        }
        if ["escalate", "bind", "impersonate"].iter().any(|v| verbs.contains(v))
            || verbs.contains(&"*") && {
                group("rbac.authorization.k8s.io")
                    && (resource("roles")
                        || resource("clusterroles")
                        || resource("rolebindings")
                        || resource("clusterrolebindings"))
                    || (group("") && (resource("users") || resource("groups") || resource("serviceaccounts")))
            }
        {
            p.escalate = true;
        }
        if group("") && resource("secrets") && (verb("get") || verb("list") || verb("watch")) {
            p.read_secrets = true;
        }
        let creates_workloads = verb("create")
            && ((group("") && resource("pods"))
                || (group("apps") && (resource("deployments") || resource("daemonsets") || resource("statefulsets")))
                || (group("batch") && (resource("jobs") || resource("cronjobs"))));
        let into_pods =
            (verb("create") || verb("get")) && group("") && (resource("pods/exec") || resource("pods/attach"));
        let nodes_proxy = group("") && resource("nodes/proxy") && (verb("get") || verb("create"));
        if creates_workloads || into_pods || nodes_proxy {
            p.run_code = true;
        }
    }
    p
}

impl Power {
    /// The names `kir.roleRef.power` gives these powers.
    pub fn names(self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.admin {
            out.push("admin");
        }
        if self.escalate {
            out.push("escalate");
        }
        if self.read_secrets {
            out.push("read-secrets");
        }
        if self.run_code {
            out.push("run-code");
        }
        out
    }
}
