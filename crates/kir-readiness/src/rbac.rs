//! What a role can do, read from its rules (not its name): a role that grants `*` on `*` is
//! cluster-admin whatever it is called.

use serde_json::Value;

pub use kir_detect::rbac::{Power, power_of_rules};

use crate::inventory::{Inventory, name, namespace};

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
