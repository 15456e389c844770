//! What the hunt learns as it reads, for the rules that need more than one request: the roles
//! the input created or changed (and a cluster snapshot's), so that a binding is rated by the
//! power of the role it grants, whatever that role is called.

use std::collections::HashMap;

use kir_audit::AuditEvent;
use serde_json::Value;

use crate::rbac::{Power, power_of_rules};

/// Roles by (kind, namespace, name): `("ClusterRole", "", "ops-helper")`.
#[derive(Debug, Default, Clone)]
pub struct RoleRegistry {
    roles: HashMap<(String, String, String), Power>,
}

fn key(kind: &str, namespace: &str, name: &str) -> (String, String, String) {
    let namespace = if kind == "ClusterRole" { "" } else { namespace };
    (kind.to_string(), namespace.to_string(), name.to_string())
}

impl RoleRegistry {
    /// Learns a Role or ClusterRole object (from a snapshot: `kubectl get -A -o json`).
    pub fn learn_object(&mut self, object: &Value) {
        let kind = object["kind"].as_str().unwrap_or("");
        if kind != "Role" && kind != "ClusterRole" {
            return;
        }
        let name = object.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("");
        let namespace = object.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or("");
        if !name.is_empty() {
            self.roles.insert(key(kind, namespace, name), power_of_rules(&object["rules"]));
        }
    }

    pub fn len(&self) -> usize {
        self.roles.len()
    }

    pub fn is_empty(&self) -> bool {
        self.roles.is_empty()
    }

    /// Learns from one request, in input order: a role created, replaced or patched (its stored
    /// object when the log has it, else the request's), or deleted.
    pub fn observe(&mut self, event: &AuditEvent) {
        let kind = match event.resource() {
            Some("roles") => "Role",
            Some("clusterroles") => "ClusterRole",
            _ => return,
        };
        if event.subresource().is_some() || event.response_code().is_some_and(|c| c >= 300) {
            return;
        }
        let name = event.object_ref.as_ref().and_then(|o| o.name.as_deref());
        let namespace = event.namespace().unwrap_or("");
        match event.verb.as_str() {
            "create" | "update" | "patch" => {
                let stored = event.response_object.as_ref().map(|o| o.value()).filter(|v| v.get("rules").is_some());
                let written = event.request_object.as_ref().map(|o| o.value()).filter(|v| v.get("rules").is_some());
                let Some(object) = stored.or(written) else { return };
                let name =
                    name.or_else(|| object.pointer("/metadata/name").and_then(Value::as_str)).unwrap_or_default();
                if !name.is_empty() {
                    self.roles.insert(key(kind, namespace, name), power_of_rules(&object["rules"]));
                }
            }
            "delete" => {
                if let Some(name) = name {
                    self.roles.remove(&key(kind, namespace, name));
                }
            }
            _ => {}
        }
    }

    /// The powers of the role a binding request grants, when the role is known; built-in
    /// `cluster-admin` is everything even when no snapshot says so.
    pub fn binding_power(&self, event: &AuditEvent) -> Vec<&'static str> {
        if !matches!(event.resource(), Some("rolebindings" | "clusterrolebindings"))
            || !matches!(event.verb.as_str(), "create" | "update" | "patch")
            || event.subresource().is_some()
        {
            return Vec::new();
        }
        let object = [event.request_object.as_ref(), event.response_object.as_ref()]
            .into_iter()
            .flatten()
            .map(|o| o.value())
            .find(|v| v.get("roleRef").is_some());
        let Some(role_ref) = object.map(|o| &o["roleRef"]) else { return Vec::new() };
        let kind = role_ref["kind"].as_str().unwrap_or("ClusterRole");
        let name = role_ref["name"].as_str().unwrap_or("");
        let mut power = self.roles.get(&key(kind, event.namespace().unwrap_or(""), name)).copied().unwrap_or_default();
        if kind == "ClusterRole" && name == "cluster-admin" {
            power.admin = true;
        }
        power.names()
    }
}
