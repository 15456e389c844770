//! What a role can do, read from its rules (not its name): a role that grants `*` on `*` is
//! cluster-admin whatever it is called.

use serde_json::Value;

use crate::inventory::{Inventory, name, namespace};

/// The powers readiness cares about, from the strongest down.
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

/// Roles by what a binding's `roleRef` names.
pub struct Roles<'a> {
    inventory: &'a Inventory,
}

impl<'a> Roles<'a> {
    pub fn new(inventory: &'a Inventory) -> Self {
        Roles { inventory }
    }

    /// The power of what `binding` binds. Built-in names count even when the dump lacks the
    /// role (a dump of bindings only): `cluster-admin` is everything, `admin`/`edit` run code
    /// and read Secrets.
    pub fn power_of_binding(&self, binding: &Value) -> Power {
        let kind = binding.pointer("/roleRef/kind").and_then(Value::as_str).unwrap_or("");
        let role = binding.pointer("/roleRef/name").and_then(Value::as_str).unwrap_or("");
        let found = match kind {
            "ClusterRole" => self.inventory.of_kind("ClusterRole").find(|r| name(r) == role),
            _ => self.inventory.of_kind("Role").find(|r| name(r) == role && namespace(r) == namespace(binding)),
        };
        let mut power = found.map(|r| power_of_rules(&r["rules"])).unwrap_or_default();
        if kind == "ClusterRole" {
            match role {
                "cluster-admin" => power.admin = true,
                "admin" | "edit" => {
                    power.read_secrets = true;
                    power.run_code = true;
                }
                _ => {}
            }
        }
        power
    }
}

/// A binding's subjects as (kind, namespace, name).
pub fn subjects(binding: &Value) -> Vec<(&str, &str, &str)> {
    binding["subjects"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            (
                s["kind"].as_str().unwrap_or(""),
                s["namespace"].as_str().or_else(|| namespace(binding)).unwrap_or(""),
                s["name"].as_str().unwrap_or(""),
            )
        })
        .collect()
}

pub fn bindings(inventory: &Inventory) -> impl Iterator<Item = &Value> {
    inventory.of_kind("ClusterRoleBinding").chain(inventory.of_kind("RoleBinding"))
}
