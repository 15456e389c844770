//! What is open? Who can reach the cluster and do what, which consoles face the network, which
//! workloads hold the node.

use std::collections::BTreeSet;

use kir_detect::Level;
use serde_json::Value;

use crate::inventory::{Inventory, name, namespace, reference};
use crate::rbac::{Roles, bindings, subjects};
use crate::{Area, Check, Input, Status};

/// Roles the API server binds to everyone for discovery: not access.
const DISCOVERY_ROLES: &[&str] =
    &["system:public-info-viewer", "system:discovery", "system:basic-user", "system:service-account-issuer-discovery"];

/// Groups that hold every identity of a kind.
const WIDE_GROUPS: &[&str] = &["system:authenticated", "system:unauthenticated", "system:serviceaccounts"];

/// Consoles that hand out control of the cluster or of its workloads to whoever reaches them.
const CONSOLES: &[&str] = &[
    "kubernetes-dashboard",
    "dashboard",
    "kubernetesui",
    "weave-scope",
    "kube-ops-view",
    "octant",
    "portainer",
    "rancher",
    "argocd-server",
    "jenkins",
    "jupyter",
    "kubeflow",
    "airflow",
    "grafana",
    "kibana",
    "adminer",
    "phpmyadmin",
    "ops-console",
    "admin-console",
];

/// Node agents that need privileges by design (CNI, CSI, sensors, proxies): their pods are not
/// reported as privileged workloads wherever they run.
const NODE_AGENTS: &[&str] = &[
    "falcosecurity/",
    "cilium/",
    "calico/",
    "/kube-proxy",
    "amazon-k8s-cni",
    "aws-ebs-csi",
    "csi-node-driver",
    "/flannel",
    "weaveworks/weave-kube",
    "/node-exporter",
    "datadog/agent",
    "nvidia/k8s-device-plugin",
];

pub fn checks(input: &Input, system: &[String]) -> Vec<Check> {
    let anonymous = Check::new(
        "anonymous-access",
        "Anonymous requests reach nothing beyond discovery",
        Area::Open,
        Level::Critical,
    );
    let wide =
        Check::new("wide-groups-powerful", "Groups of everyone hold no powerful role", Area::Open, Level::Critical);
    let admin_sa = Check::new(
        "cluster-admin-service-accounts",
        "No service account holds cluster-admin (by name or by content)",
        Area::Open,
        Level::Critical,
    );
    let secret_readers = Check::new(
        "service-accounts-read-secrets",
        "No workload's service account reads Secrets cluster-wide",
        Area::Open,
        Level::High,
    );
    let consoles =
        Check::new("exposed-consoles", "No dashboard or admin console faces the network", Area::Open, Level::Critical);
    let privileged = Check::new(
        "privileged-workloads",
        "No privileged, hostPath, hostPID, hostIPC or hostNetwork workload outside system namespaces",
        Area::Open,
        Level::High,
    );
    let registries =
        Check::new("image-registries", "Images come from the allowed registries", Area::Open, Level::Medium);
    let netpol = Check::new(
        "namespaces-without-networkpolicy",
        "Every namespace with workloads has a NetworkPolicy",
        Area::Open,
        Level::Medium,
    );
    let Some(inv) = input.inventory else {
        let why = "no cluster inventory (--from, or the live cluster)";
        return [anonymous, wide, admin_sa, secret_readers, consoles, privileged, registries, netpol]
            .into_iter()
            .map(|c| c.unknown(why))
            .collect();
    };
    let roles = Roles::new(inv);
    let is_system = |ns: &str| system.iter().any(|s| s == ns);
    let rbac_listed = inv.has_kind("ClusterRoleBinding") || inv.has_kind("RoleBinding");
    let mut out = Vec::new();

    // RBAC.
    let (mut anon, mut wide_found, mut admin_found, mut readers) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut details: Vec<String> = Vec::new();
    for b in bindings(inv) {
        let role = b.pointer("/roleRef/name").and_then(Value::as_str).unwrap_or("");
        let power = roles.power_of_binding(b);
        let cluster_wide = b["kind"] == "ClusterRoleBinding";
        let builtin =
            b.pointer("/metadata/labels/kubernetes.io~1bootstrapping").and_then(Value::as_str) == Some("rbac-defaults");
        for (kind, ns, who) in subjects(b) {
            let anonymous_subject =
                (kind == "User" && who == "system:anonymous") || (kind == "Group" && who == "system:unauthenticated");
            if anonymous_subject && !DISCOVERY_ROLES.contains(&role) {
                anon.push(reference(b));
                details.push(format!("{} gives {who} {role} ({})", reference(b), power.describe()));
            }
            if kind == "Group" && WIDE_GROUPS.contains(&who) && power.is_powerful() {
                wide_found.push(reference(b));
                details.push(format!("{} gives every member of {who} {}", reference(b), power.describe()));
            }
            if kind == "Group" && who.starts_with("system:serviceaccounts:") && power.admin {
                admin_found.push(reference(b));
            }
            if kind == "ServiceAccount" && power.admin {
                admin_found.push(reference(b));
                admin_found.push(format!("serviceaccount/{ns}/{who}"));
            }
            if kind == "ServiceAccount"
                && cluster_wide
                && power.read_secrets
                && !power.admin
                && !(builtin && is_system(ns))
            {
                let automount = automounts(inv, ns, who);
                if automount {
                    readers.push(reference(b));
                    readers.push(format!("serviceaccount/{ns}/{who}"));
                }
            }
        }
    }
    let unknown_rbac = "the inventory has no role bindings listed";
    out.push(if !rbac_listed {
        anonymous.unknown(unknown_rbac)
    } else {
        anonymous.verdict(
            Status::Fail,
            anon.clone(),
            only(&details, &anon),
            "anonymous requests are bound to discovery roles only",
            "kubectl delete clusterrolebinding NAME (or the rolebinding); and --anonymous-auth=false on the API server where no health check needs it",
        )
    });
    out.push(if !rbac_listed {
        wide.unknown(unknown_rbac)
    } else {
        wide.verdict(
            Status::Fail,
            wide_found.clone(),
            only(&details, &wide_found),
            "system:authenticated, system:unauthenticated and system:serviceaccounts hold no powerful role",
            "bind the role to the named users or service accounts that need it, not to a system group",
        )
    });
    out.push(if !rbac_listed {
        admin_sa.unknown(unknown_rbac)
    } else {
        admin_sa.verdict(
            Status::Fail,
            admin_found,
            "a service account holds everything: whoever runs code in a pod that mounts its token owns the cluster",
            "no service account holds cluster-admin",
            "kubectl delete clusterrolebinding NAME; give the account a Role with the verbs it needs in its namespace",
        )
    });
    out.push(if !rbac_listed {
        secret_readers.unknown(unknown_rbac)
    } else {
        secret_readers.verdict(
            Status::Warn,
            readers,
            "service accounts that mount their token can read every Secret in the cluster",
            "no workload service account reads Secrets cluster-wide",
            "a Role per namespace with resourceNames, and automountServiceAccountToken: false where the pod does not call the API",
        )
    });

    // Consoles exposed.
    let pods: Vec<&Value> = inv.of_kind("Pod").collect();
    let mut exposed = Vec::new();
    for s in inv.of_kind("Service") {
        let kind = s.pointer("/spec/type").and_then(Value::as_str).unwrap_or("ClusterIP");
        if kind != "NodePort" && kind != "LoadBalancer" {
            continue;
        }
        if is_console(s) || selected_pods(s, &pods).any(is_console) {
            exposed.push(reference(s));
        }
    }
    for i in inv.of_kind("Ingress") {
        let backends = ingress_services(i);
        let ns = namespace(i).unwrap_or("");
        let through = inv.of_kind("Service").filter(|s| namespace(s) == Some(ns) && backends.contains(name(s)));
        if is_console(i) || through.into_iter().any(|s| is_console(s) || selected_pods(s, &pods).any(is_console)) {
            exposed.push(reference(i));
        }
    }
    out.push(if !inv.has_kind("Service") {
        consoles.unknown("the inventory has no Services listed")
    } else {
        consoles.verdict(
            Status::Fail,
            exposed,
            "a console is reachable from outside the cluster (NodePort, LoadBalancer or Ingress); kir cannot see whether it asks for a login",
            "no known console is exposed",
            "kubectl patch service NAME -n NS -p '{\"spec\":{\"type\":\"ClusterIP\"}}' and reach it with kubectl port-forward, or put it behind an authenticating proxy",
        )
    });

    // Privileged workloads.
    let mut held = Vec::new();
    let mut why_held = BTreeSet::new();
    for o in workloads(inv) {
        let ns = namespace(o).unwrap_or("default");
        if is_system(ns) {
            continue;
        }
        let Some(spec) = pod_spec(o) else { continue };
        let images = images(spec);
        if images.iter().any(|i| NODE_AGENTS.iter().any(|a| i.contains(a))) {
            continue;
        }
        let reasons = privileges(spec);
        if !reasons.is_empty() {
            why_held.insert(format!("{}: {}", reference(o), reasons.join(", ")));
            held.push(reference(o));
        }
    }
    out.push(if !inv.has_kind("Pod") && !inv.has_kind("Deployment") {
        privileged.unknown("the inventory has no pods or workloads listed")
    } else {
        privileged.verdict(
            Status::Fail,
            held,
            why_held.into_iter().collect::<Vec<_>>().join("; "),
            "no workload outside the system namespaces holds the node",
            "drop securityContext.privileged, hostPID/hostIPC/hostNetwork and hostPath volumes; enforce with: kubectl label namespace NS pod-security.kubernetes.io/enforce=baseline",
        )
    });

    // Registries.
    let allowed = allowed_registries(input);
    let mut outside = Vec::new();
    for o in workloads(inv) {
        let Some(spec) = pod_spec(o) else { continue };
        if images(spec).iter().any(|i| !allowed.iter().any(|a| registry_matches(a, i))) {
            outside.push(reference(o));
        }
    }
    out.push(if allowed.is_empty() {
        registries.unknown("no allowed registries: the plan's detection.placeholders.workloads_allowed_registries is empty")
    } else if !inv.has_kind("Pod") && !inv.has_kind("Deployment") {
        registries.unknown("the inventory has no pods or workloads listed")
    } else {
        registries.verdict(
            Status::Warn,
            outside,
            "images from registries outside the allowed list (the plan's workloads_allowed_registries, or kir's defaults)",
            "every image comes from an allowed registry",
            "mirror the image into your registry, or add its registry to detection.placeholders.workloads_allowed_registries in the plan",
        )
    });

    // Network policies.
    let with_policy: BTreeSet<&str> = inv.of_kind("NetworkPolicy").filter_map(namespace).collect();
    let mut bare: BTreeSet<String> = BTreeSet::new();
    for o in workloads(inv) {
        let ns = namespace(o).unwrap_or("default");
        // A NetworkPolicy does not apply to a pod on the host's network, and a node agent's
        // namespace holds nothing else to reach.
        let exempt = pod_spec(o).is_some_and(|spec| {
            spec["hostNetwork"] == Value::Bool(true)
                || images(spec).iter().any(|i| NODE_AGENTS.iter().any(|a| i.contains(a)))
        });
        if !is_system(ns) && !exempt && !with_policy.contains(ns) {
            bare.insert(ns.to_string());
        }
    }
    out.push(if !inv.has_kind("NetworkPolicy") {
        netpol.unknown("the inventory has no NetworkPolicies listed (add networkpolicies to the dump)")
    } else {
        netpol.verdict(
            Status::Fail,
            bare.iter().map(|ns| format!("namespace/{ns}")).collect(),
            "namespaces whose pods can reach and be reached by anything: an attacker in one pod moves freely, and kir contain isolate is the first policy",
            "every namespace with workloads has a NetworkPolicy",
            "kubectl -n NS apply -f - <<< '{\"apiVersion\":\"networking.k8s.io/v1\",\"kind\":\"NetworkPolicy\",\"metadata\":{\"name\":\"default-deny-ingress\"},\"spec\":{\"podSelector\":{},\"policyTypes\":[\"Ingress\"]}}' then allow what each app needs",
        )
    });
    out
}

/// The details that name one of `objects`.
fn only(details: &[String], objects: &[String]) -> String {
    details.iter().filter(|d| objects.iter().any(|o| d.starts_with(o.as_str()))).cloned().collect::<Vec<_>>().join("; ")
}

/// Whether a service account's token is mounted into its pods: not when the account or every
/// pod using it says `automountServiceAccountToken: false`.
fn automounts(inv: &Inventory, ns: &str, sa: &str) -> bool {
    let account = inv.of_kind("ServiceAccount").find(|a| namespace(a) == Some(ns) && name(a) == sa);
    let account_off = account.is_some_and(|a| a["automountServiceAccountToken"] == Value::Bool(false));
    let pods: Vec<&Value> = inv
        .of_kind("Pod")
        .filter(|p| {
            namespace(p) == Some(ns)
                && p.pointer("/spec/serviceAccountName").and_then(Value::as_str).unwrap_or("default") == sa
        })
        .collect();
    if pods.is_empty() {
        return !account_off;
    }
    pods.iter().any(|p| match p.pointer("/spec/automountServiceAccountToken") {
        Some(Value::Bool(b)) => *b,
        _ => !account_off,
    })
}

fn is_console(o: &Value) -> bool {
    let mut texts = vec![name(o).to_ascii_lowercase()];
    for path in ["/metadata/labels", "/spec/selector"] {
        if let Some(map) = o.pointer(path).and_then(Value::as_object) {
            texts.extend(map.values().filter_map(Value::as_str).map(str::to_ascii_lowercase));
        }
    }
    if let Some(spec) = pod_spec(o) {
        texts.extend(images(spec).into_iter().map(|i| i.to_ascii_lowercase()));
    }
    texts.iter().any(|t| CONSOLES.iter().any(|c| t.contains(c)))
}

fn selected_pods<'a>(service: &'a Value, pods: &'a [&'a Value]) -> impl Iterator<Item = &'a Value> + 'a {
    let selector = service.pointer("/spec/selector").and_then(Value::as_object);
    pods.iter().copied().filter(move |p| {
        namespace(p) == namespace(service)
            && selector.is_some_and(|sel| {
                !sel.is_empty()
                    && sel.iter().all(|(k, v)| p.pointer("/metadata/labels").and_then(|l| l.get(k)) == Some(v))
            })
    })
}

fn ingress_services(ingress: &Value) -> BTreeSet<&str> {
    let mut out = BTreeSet::new();
    if let Some(n) = ingress.pointer("/spec/defaultBackend/service/name").and_then(Value::as_str) {
        out.insert(n);
    }
    for rule in ingress.pointer("/spec/rules").and_then(Value::as_array).into_iter().flatten() {
        for path in rule.pointer("/http/paths").and_then(Value::as_array).into_iter().flatten() {
            if let Some(n) = path.pointer("/backend/service/name").and_then(Value::as_str) {
                out.insert(n);
            }
        }
    }
    out
}

/// Pods and the workloads that make them; a pod owned by a listed workload is reported too
/// (it is the object a responder acts on first).
fn workloads(inv: &Inventory) -> impl Iterator<Item = &Value> {
    inv.objects.iter().filter(|o| {
        matches!(
            o["kind"].as_str(),
            Some("Pod" | "Deployment" | "DaemonSet" | "StatefulSet" | "ReplicaSet" | "Job" | "CronJob")
        ) && !(o["kind"] == "Pod"
            && o.pointer("/status/phase").and_then(Value::as_str).is_some_and(|p| p == "Succeeded" || p == "Failed"))
            && !(o["kind"] == "ReplicaSet" && o.pointer("/spec/replicas").and_then(Value::as_i64) == Some(0))
    })
}

pub(crate) fn pod_spec(o: &Value) -> Option<&Value> {
    match o["kind"].as_str()? {
        "Pod" => o.get("spec"),
        "CronJob" => o.pointer("/spec/jobTemplate/spec/template/spec"),
        _ => o.pointer("/spec/template/spec"),
    }
}

fn containers(spec: &Value) -> impl Iterator<Item = &Value> {
    ["containers", "initContainers", "ephemeralContainers"]
        .into_iter()
        .flat_map(move |k| spec.get(k).and_then(Value::as_array).into_iter().flatten())
}

fn images(spec: &Value) -> Vec<String> {
    containers(spec)
        .filter_map(|c| c["image"].as_str())
        .map(|i| kir_audit::field::normalize_image(i).into_owned())
        .collect()
}

fn privileges(spec: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for flag in ["hostPID", "hostIPC", "hostNetwork"] {
        if spec[flag] == Value::Bool(true) {
            out.push(flag.to_string());
        }
    }
    for v in spec.get("volumes").and_then(Value::as_array).into_iter().flatten() {
        if let Some(path) = v.pointer("/hostPath/path").and_then(Value::as_str) {
            out.push(format!("hostPath {path}"));
        }
    }
    for c in containers(spec) {
        let sc = &c["securityContext"];
        if sc["privileged"] == Value::Bool(true) {
            out.push(format!("privileged container {}", c["name"].as_str().unwrap_or("")));
        }
        let caps = sc.pointer("/capabilities/add").map(|a| a.to_string()).unwrap_or_default();
        if ["SYS_ADMIN", "\"ALL\"", "SYS_PTRACE", "SYS_MODULE"].iter().any(|cap| caps.contains(cap)) {
            out.push(format!("capabilities {caps} in {}", c["name"].as_str().unwrap_or("")));
        }
    }
    out
}

fn allowed_registries(input: &Input) -> Vec<String> {
    const KEY: &str = "workloads_allowed_registries";
    if let Some(list) = input.plan.and_then(|(p, _)| p.detection.placeholders.as_ref()).and_then(|p| p.get(KEY)) {
        return list.clone();
    }
    kir_detect::ruleset::builtin_placeholders().remove(KEY).unwrap_or_default()
}

/// A registry entry as the detection rules read it: a prefix of the normalized image, `*` for
/// any text.
fn registry_matches(entry: &str, image: &str) -> bool {
    kir_core::glob(&format!("{entry}*"), image)
}
