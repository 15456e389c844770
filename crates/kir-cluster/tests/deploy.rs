//! deploy/: every object the kustomize overlays render, and deploy/rbac.yaml, is a valid
//! Kubernetes object of its kind. Each one is read into its k8s-openapi type and written back:
//! the two must be equal, so a misspelt or misplaced field (which the typed read would drop)
//! fails here instead of being ignored by `kubectl apply`. Then what the service relies on:
//! non-root, read-only root filesystem, probes, and every Secret and ConfigMap it names exists.
//!
//! Rendering needs `kubectl` (its built-in kustomize, 2 or later); without it the test says
//! SKIPPED, unless KIR_REQUIRE_KUBECTL is set (CI sets it).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, PodSpec, Secret, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy")
}

fn kubectl() -> Option<PathBuf> {
    if let Some(k) = std::env::var_os("KIR_KUBECTL") {
        return Some(PathBuf::from(k));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join("kubectl")).find(|p| p.is_file())
}

/// The overlay rendered from a copy of deploy/ in which the files a user writes (certificate,
/// key, store URL) hold stand-ins.
fn render(kubectl: &Path, overlay: &str) -> String {
    let work = tempfile::tempdir().unwrap();
    copy_dir(&deploy_dir(), work.path());
    let dir = work.path().join("overlays").join(overlay);
    for (file, content) in [("tls.crt", "certificate"), ("tls.key", "key"), ("store-url", "postgres://kir@db/kir")] {
        std::fs::write(dir.join(file), content).unwrap();
    }
    let out = Command::new(kubectl).arg("kustomize").arg(&dir).output().unwrap();
    assert!(out.status.success(), "kubectl kustomize {overlay}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn documents(yaml: &str, origin: &str) -> Vec<Value> {
    let docs: Vec<Value> = serde_saphyr::from_multiple(yaml).unwrap_or_else(|e| panic!("{origin}: {e}"));
    docs.into_iter().filter(|d| !d.is_null()).collect()
}

/// Reads `object` as `T` and writes it back; a field the type does not know is lost on the way.
fn typed<T: DeserializeOwned + Serialize>(object: &Value, what: &str) -> T {
    let parsed: T = serde_json::from_value(object.clone()).unwrap_or_else(|e| panic!("{what}: {e}"));
    let back = serde_json::to_value(&parsed).unwrap();
    if let Some(path) = first_difference(object, &back, String::new()) {
        panic!("{what}: field {path} is not part of the Kubernetes schema (or has the wrong type)");
    }
    parsed
}

fn first_difference(a: &Value, b: &Value, at: String) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, v) in x {
                match y.get(k) {
                    Some(w) => {
                        if let Some(p) = first_difference(v, w, format!("{at}.{k}")) {
                            return Some(p);
                        }
                    }
                    None => return Some(format!("{at}.{k}")),
                }
            }
            y.keys().find(|k| !x.contains_key(*k)).map(|k| format!("{at}.{k} (added)"))
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            x.iter().zip(y).enumerate().find_map(|(i, (v, w))| first_difference(v, w, format!("{at}[{i}]")))
        }
        _ if a == b => None,
        _ => Some(if at.is_empty() { ".".into() } else { at }),
    }
}

#[derive(Default)]
struct Rendered {
    deployments: Vec<Deployment>,
    services: Vec<Service>,
    budgets: Vec<PodDisruptionBudget>,
    policies: Vec<NetworkPolicy>,
    secrets: BTreeSet<String>,
    config_maps: BTreeSet<String>,
    service_accounts: BTreeSet<String>,
    roles: BTreeSet<String>,
    cluster_roles: BTreeSet<String>,
    role_bindings: Vec<RoleBinding>,
    cluster_role_bindings: Vec<ClusterRoleBinding>,
}

/// Every object validated by its kind; a kind this test does not know fails it, so that a new
/// object in deploy/ comes with its check.
fn validate(objects: &[Value], origin: &str) -> Rendered {
    let mut r = Rendered::default();
    for object in objects {
        let kind = object["kind"].as_str().unwrap_or_default();
        let name = object["metadata"]["name"].as_str().unwrap_or_default();
        let what = format!("{origin}: {kind} {name}");
        let namespaced = !matches!(kind, "Namespace" | "ClusterRole" | "ClusterRoleBinding");
        if namespaced && origin != "deploy/rbac.yaml" {
            assert_eq!(object["metadata"]["namespace"], "kir", "{what}: not in the kir namespace");
        }
        match kind {
            "Namespace" => {
                let ns: Namespace = typed(object, &what);
                let labels = ns.metadata.labels.unwrap_or_default();
                assert_eq!(labels.get("pod-security.kubernetes.io/enforce").map(String::as_str), Some("restricted"));
            }
            "ServiceAccount" => {
                typed::<ServiceAccount>(object, &what);
                r.service_accounts.insert(name.into());
            }
            "Secret" => {
                typed::<Secret>(object, &what);
                r.secrets.insert(name.into());
            }
            "ConfigMap" => {
                typed::<ConfigMap>(object, &what);
                r.config_maps.insert(name.into());
            }
            "Role" => {
                typed::<Role>(object, &what);
                r.roles.insert(name.into());
            }
            "ClusterRole" => {
                typed::<ClusterRole>(object, &what);
                r.cluster_roles.insert(name.into());
            }
            "RoleBinding" => r.role_bindings.push(typed(object, &what)),
            "ClusterRoleBinding" => r.cluster_role_bindings.push(typed(object, &what)),
            "Deployment" => r.deployments.push(typed(object, &what)),
            "Service" => r.services.push(typed(object, &what)),
            "PodDisruptionBudget" => r.budgets.push(typed(object, &what)),
            "NetworkPolicy" => r.policies.push(typed(object, &what)),
            other => panic!("{what}: kind {other} has no check in this test"),
        }
    }
    r
}

/// What a pod names must exist in the same rendering: kustomize renames generated Secrets and
/// ConfigMaps (a hash suffix) and only rewrites references it can match, namespace included.
fn references_resolve(pod: &PodSpec, r: &Rendered, what: &str) {
    for volume in pod.volumes.iter().flatten() {
        if let Some(s) = volume.secret.as_ref().and_then(|s| s.secret_name.as_ref()) {
            assert!(r.secrets.contains(s), "{what}: volume {} names Secret {s}, which is not rendered", volume.name);
        }
        if let Some(c) = volume.config_map.as_ref() {
            assert!(r.config_maps.contains(&c.name), "{what}: volume {} names ConfigMap {}", volume.name, c.name);
        }
    }
    for container in pod.containers.iter().chain(pod.init_containers.iter().flatten()) {
        for env in container.env.iter().flatten() {
            if let Some(key) = env.value_from.as_ref().and_then(|v| v.secret_key_ref.as_ref()) {
                assert!(
                    r.secrets.contains(&key.name),
                    "{what}: env {} names Secret {}, not rendered",
                    env.name,
                    key.name
                );
            }
        }
    }
    if let Some(sa) = &pod.service_account_name {
        assert!(r.service_accounts.contains(sa), "{what}: service account {sa} is not rendered");
    }
}

fn check_kir_serve(r: &Rendered) {
    let kir = r.deployments.iter().find(|d| d.metadata.name.as_deref() == Some("kir")).expect("the kir Deployment");
    let spec = kir.spec.as_ref().unwrap();
    assert_eq!(spec.replicas, Some(2));
    let template = &spec.template;
    let pod = template.spec.as_ref().unwrap();
    let pod_labels = template.metadata.as_ref().and_then(|m| m.labels.clone()).unwrap_or_default();
    let pod_security = pod.security_context.as_ref().expect("a pod securityContext");
    assert_eq!(pod_security.run_as_non_root, Some(true), "kir runs as non-root");
    assert!(pod_security.run_as_user.is_some_and(|u| u != 0));
    assert_eq!(pod_security.seccomp_profile.as_ref().map(|s| s.type_.as_str()), Some("RuntimeDefault"));
    let container = pod.containers.iter().find(|c| c.name == "kir").expect("the kir container");
    let security = container.security_context.as_ref().expect("a container securityContext");
    assert_eq!(security.read_only_root_filesystem, Some(true), "read-only root filesystem");
    assert_eq!(security.allow_privilege_escalation, Some(false));
    let dropped = security.capabilities.as_ref().and_then(|c| c.drop.clone()).unwrap_or_default();
    assert_eq!(dropped, ["ALL"]);
    assert!(container.readiness_probe.is_some() && container.liveness_probe.is_some(), "probes");
    let resources = container.resources.as_ref().expect("resources");
    assert!(resources.requests.as_ref().is_some_and(|q| q.contains_key("cpu") && q.contains_key("memory")));
    assert!(resources.limits.as_ref().is_some_and(|q| q.contains_key("memory")));
    let args = container.args.clone().unwrap_or_default();
    assert!(args.iter().any(|a| a.starts_with("--tls-cert=")), "beyond loopback kir serves TLS only");
    references_resolve(pod, r, "Deployment kir");

    let selects_kir = |selector: &std::collections::BTreeMap<String, String>| {
        !selector.is_empty() && selector.iter().all(|(k, v)| pod_labels.get(k) == Some(v))
    };
    let service = r.services.iter().find(|s| s.metadata.name.as_deref() == Some("kir")).expect("the kir Service");
    assert!(selects_kir(service.spec.as_ref().unwrap().selector.as_ref().unwrap()), "the Service selects kir's pods");
    let budget = r.budgets.first().expect("a PodDisruptionBudget");
    let budget_selector = budget.spec.as_ref().unwrap().selector.as_ref().unwrap().match_labels.clone().unwrap();
    assert!(selects_kir(&budget_selector), "the PodDisruptionBudget covers kir's pods");
    assert!(
        r.policies.iter().any(|p| selects_kir(
            p.spec.as_ref().unwrap().pod_selector.as_ref().and_then(|s| s.match_labels.as_ref()).unwrap()
        )),
        "a NetworkPolicy covers kir's pods"
    );
    for binding in &r.role_bindings {
        assert!(r.roles.contains(&binding.role_ref.name) || r.cluster_roles.contains(&binding.role_ref.name));
        for subject in binding.subjects.iter().flatten().filter(|s| s.kind == "ServiceAccount") {
            assert!(r.service_accounts.contains(&subject.name));
        }
    }
    for binding in &r.cluster_role_bindings {
        assert!(r.cluster_roles.contains(&binding.role_ref.name), "{:?}", binding.metadata.name);
    }
    for d in &r.deployments {
        references_resolve(d.spec.as_ref().unwrap().template.spec.as_ref().unwrap(), r, "a Deployment");
    }
}

#[test]
fn the_overlays_render_valid_objects_and_kir_runs_confined() {
    let Some(kubectl) = kubectl() else {
        assert!(std::env::var_os("KIR_REQUIRE_KUBECTL").is_none(), "KIR_REQUIRE_KUBECTL is set but kubectl is missing");
        eprintln!("SKIPPED: kubectl is not installed, so deploy/ cannot be rendered");
        return;
    };
    for overlay in ["production", "try"] {
        let rendered = render(&kubectl, overlay);
        let objects = documents(&rendered, overlay);
        let r = validate(&objects, &format!("overlays/{overlay}"));
        check_kir_serve(&r);
        assert!(r.secrets.iter().any(|s| s.starts_with("kir-tls-")), "{overlay}: the TLS Secret is generated");
        if overlay == "try" {
            assert!(r.deployments.iter().any(|d| d.metadata.name.as_deref() == Some("kir-postgres")));
        }
    }
}

#[test]
fn the_responders_roles_are_valid_objects() {
    let path = deploy_dir().join("rbac.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let r = validate(&documents(&text, "deploy/rbac.yaml"), "deploy/rbac.yaml");
    for role in ["kir-collect", "kir-volatile", "kir-contain"] {
        assert!(r.cluster_roles.contains(role), "{role}");
    }
}

#[test]
fn a_field_outside_the_schema_is_caught() {
    let object: Value = serde_json::json!({
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "kir"},
        "spec": {"selector": {"app": "kir"}, "ports": [{"port": 443, "targtPort": "https"}]}
    });
    let caught = std::panic::catch_unwind(|| typed::<Service>(&object, "Service kir"));
    let message = caught.err().and_then(|e| e.downcast_ref::<String>().cloned()).unwrap_or_default();
    assert!(message.contains(".spec.ports[0].targtPort"), "{message}");
}
