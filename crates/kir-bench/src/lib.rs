//! A generator of realistic audit logs: the traffic of a busy cluster (the control plane's
//! leases, the kubelets' status updates, controllers' lists and watches, discovery, people with
//! kubectl, CI creating Jobs), every request logged at its stages, with request and response
//! bodies as a `RequestResponse` policy writes them, and a rare attack in the mix.
//!
//! Deterministic: the same seed gives the same bytes.

use std::io::{self, Write};

use serde_json::{Value, json};

/// A small, fast, deterministic random source (xorshift64*).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    fn hex(&mut self, n: usize) -> String {
        let mut s = String::with_capacity(n);
        while s.len() < n {
            s.push_str(&format!("{:016x}", self.next_u64()));
        }
        s.truncate(n);
        s
    }

    fn uuid(&mut self) -> String {
        let h = self.hex(32);
        format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
    }
}

const NODES: [&str; 6] =
    ["ip-10-0-1-11", "ip-10-0-1-12", "ip-10-0-2-21", "ip-10-0-2-22", "ip-10-0-3-31", "ip-10-0-3-32"];
const NAMESPACES: [&str; 6] = ["shop", "payments", "search", "monitoring", "ci", "ingress"];
const PEOPLE: [&str; 4] = ["alice@example.com", "bob@example.com", "carol@example.com", "deploy-bot@example.com"];
const CONTROLLERS: [&str; 8] = [
    "replicaset-controller",
    "deployment-controller",
    "endpointslice-controller",
    "resourcequota-controller",
    "generic-garbage-collector",
    "namespace-controller",
    "job-controller",
    "daemon-set-controller",
];

/// Generates events until `target_bytes` are written; returns (bytes, lines).
pub fn generate(out: &mut dyn Write, target_bytes: u64, seed: u64) -> io::Result<(u64, u64)> {
    generate_with(out, target_bytes, seed, true)
}

/// The same traffic; with `attacks: false`, only a busy cluster's benign work.
pub fn generate_with(out: &mut dyn Write, target_bytes: u64, seed: u64, attacks: bool) -> io::Result<(u64, u64)> {
    let mut rng = Rng::new(seed);
    let mut clock_ms: u64 = 1_795_824_000_000; // 2026-11-28T00:00:00Z
    let (mut bytes, mut lines) = (0u64, 0u64);
    let mut buf = Vec::with_capacity(1 << 16);
    let mut request = 0u64;
    while bytes < target_bytes {
        request += 1;
        clock_ms += rng.below(40);
        let stages = one_request(&mut rng, clock_ms, request, attacks);
        for stage in stages {
            buf.clear();
            serde_json::to_writer(&mut buf, &stage)?;
            buf.push(b'\n');
            out.write_all(&buf)?;
            bytes += buf.len() as u64;
            lines += 1;
        }
    }
    Ok((bytes, lines))
}

fn time(ms: u64) -> String {
    let secs = (ms / 1000) as i64;
    let micros = (ms % 1000) * 1000;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{micros:06}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

struct Req {
    user: String,
    groups: Vec<&'static str>,
    agent: String,
    verb: &'static str,
    uri: String,
    object_ref: Value,
    code: u16,
    request_object: Option<Value>,
    response_object: Option<Value>,
    long_running: bool,
    ip: String,
}

fn one_request(rng: &mut Rng, ms: u64, n: u64, attacks: bool) -> Vec<Value> {
    let node = *rng.pick(&NODES);
    let ns = *rng.pick(&NAMESPACES);
    let roll = rng.below(1000);
    let req = if attacks && n.is_multiple_of(250_000) {
        attack(rng, ns)
    } else if roll < 300 {
        lease_update(rng, node)
    } else if roll < 450 {
        node_status(rng, node)
    } else if roll < 620 {
        controller_list(rng, ns)
    } else if roll < 760 {
        discovery(rng)
    } else if roll < 860 {
        kubelet_reads(rng, node, ns)
    } else if roll < 930 {
        person_reads(rng, ns)
    } else if roll < 965 {
        events_create(rng, node, ns)
    } else if roll < 990 {
        deployment_apply(rng, ns)
    } else {
        ci_job(rng)
    };
    let id = rng.uuid();
    let received = time(ms);
    let done = time(ms + 1 + rng.below(30));
    let base = json!({
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "RequestResponse",
        "auditID": id,
        "requestURI": req.uri,
        "verb": req.verb,
        "user": {"username": req.user, "uid": format!("uid-{}", rng.hex(8)), "groups": req.groups},
        "sourceIPs": [req.ip],
        "userAgent": req.agent,
        "objectRef": req.object_ref,
        "requestReceivedTimestamp": received,
    });
    let mut stages = Vec::with_capacity(3);
    let mut first = base.clone();
    first["stage"] = json!("RequestReceived");
    first["stageTimestamp"] = json!(received);
    if let Some(body) = &req.request_object {
        first["requestObject"] = body.clone();
    }
    stages.push(first);
    if req.long_running {
        let mut started = base.clone();
        started["stage"] = json!("ResponseStarted");
        started["stageTimestamp"] = json!(received);
        started["responseStatus"] = json!({"metadata": {}, "code": 200});
        stages.push(started);
    }
    let mut complete = base;
    complete["stage"] = json!("ResponseComplete");
    complete["stageTimestamp"] = json!(done);
    complete["responseStatus"] = if req.code < 400 {
        json!({"metadata": {}, "code": req.code})
    } else {
        json!({"metadata": {}, "status": "Failure", "message": "forbidden", "reason": "Forbidden", "code": req.code})
    };
    if let Some(body) = req.request_object {
        complete["requestObject"] = body;
    }
    if let Some(body) = req.response_object {
        complete["responseObject"] = body;
    }
    complete["annotations"] = json!({
        "authorization.k8s.io/decision": if req.code == 403 { "forbid" } else { "allow" },
        "authorization.k8s.io/reason": "RBAC: allowed by ClusterRoleBinding \"system:controller\""
    });
    stages.push(complete);
    stages
}

fn component(user: &str, agent: &str, verb: &'static str, uri: String, object_ref: Value) -> Req {
    Req {
        user: user.to_string(),
        groups: vec!["system:authenticated"],
        agent: agent.to_string(),
        verb,
        uri,
        object_ref,
        code: 200,
        request_object: None,
        response_object: None,
        long_running: false,
        ip: "10.0.0.10".into(),
    }
}

fn lease_update(rng: &mut Rng, node: &str) -> Req {
    let holder = if rng.below(3) == 0 { "kube-controller-manager".to_string() } else { node.to_string() };
    let ns = if holder == node { "kube-node-lease" } else { "kube-system" };
    let mut r = component(
        if holder == node { "system:node:" } else { "system:kube-controller-manager" },
        "kubelet/v1.30.4 (linux/amd64) kubernetes/abcdef0",
        "update",
        format!("/apis/coordination.k8s.io/v1/namespaces/{ns}/leases/{holder}?timeout=10s"),
        json!({"resource": "leases", "namespace": ns, "name": holder, "apiGroup": "coordination.k8s.io", "apiVersion": "v1"}),
    );
    if holder == node {
        r.user = format!("system:node:{node}");
        r.groups = vec!["system:nodes", "system:authenticated"];
    }
    let lease = json!({"kind": "Lease", "apiVersion": "coordination.k8s.io/v1", "metadata": {"name": holder, "namespace": ns, "resourceVersion": rng.below(9_999_999).to_string()}, "spec": {"holderIdentity": holder, "leaseDurationSeconds": 40, "renewTime": "2026-11-28T00:00:00.000000Z"}});
    r.request_object = Some(lease.clone());
    r.response_object = Some(lease);
    r
}

fn node_status(rng: &mut Rng, node: &str) -> Req {
    let mut r = component(
        "system:node:",
        "kubelet/v1.30.4 (linux/amd64) kubernetes/abcdef0",
        "patch",
        format!("/api/v1/nodes/{node}/status?timeout=10s"),
        json!({"resource": "nodes", "name": node, "apiVersion": "v1", "subresource": "status"}),
    );
    r.user = format!("system:node:{node}");
    r.groups = vec!["system:nodes", "system:authenticated"];
    r.request_object = Some(json!({"status": {"conditions": [
        {"type": "MemoryPressure", "status": "False", "lastHeartbeatTime": "2026-11-28T00:00:00Z"},
        {"type": "DiskPressure", "status": "False", "lastHeartbeatTime": "2026-11-28T00:00:00Z"},
        {"type": "PIDPressure", "status": "False", "lastHeartbeatTime": "2026-11-28T00:00:00Z"},
        {"type": "Ready", "status": "True", "lastHeartbeatTime": "2026-11-28T00:00:00Z"}
    ], "images": [{"names": [format!("registry.example.com/app@sha256:{}", rng.hex(64))], "sizeBytes": 123_456_789}]}}));
    r
}

fn pod(rng: &mut Rng, ns: &str, app: &str) -> Value {
    json!({
        "metadata": {"name": format!("{app}-{}-{}", rng.hex(10), rng.hex(5)), "namespace": ns, "labels": {"app": app, "app.kubernetes.io/part-of": "shop"}, "uid": rng.uuid()},
        "spec": {"containers": [{"name": app, "image": format!("registry.example.com/{ns}/{app}:1.{}.0", rng.below(40)), "ports": [{"containerPort": 8080}],
            "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}}], "serviceAccountName": app, "nodeName": *rng.pick(&NODES)},
        "status": {"phase": "Running", "podIP": format!("10.1.{}.{}", rng.below(250), rng.below(250))}
    })
}

fn controller_list(rng: &mut Rng, ns: &str) -> Req {
    let controller = *rng.pick(&CONTROLLERS);
    let watch = rng.below(4) == 0;
    let mut r = component(
        &format!("system:serviceaccount:kube-system:{controller}"),
        "kube-controller-manager/v1.30.4 (linux/amd64) kubernetes/abcdef0/system:serviceaccount:kube-system:generic-garbage-collector",
        if watch { "watch" } else { "list" },
        format!("/api/v1/namespaces/{ns}/pods?limit=500&resourceVersion=0{}", if watch { "&watch=true" } else { "" }),
        json!({"resource": "pods", "namespace": ns, "apiVersion": "v1"}),
    );
    r.groups = vec!["system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"];
    r.long_running = watch;
    if !watch {
        let items: Vec<Value> = (0..(1 + rng.below(4))).map(|_| pod(rng, ns, "web")).collect();
        r.response_object = Some(
            json!({"kind": "PodList", "apiVersion": "v1", "metadata": {"resourceVersion": "123"}, "items": items}),
        );
    }
    r
}

fn discovery(rng: &mut Rng) -> Req {
    let group =
        *rng.pick(&["apps/v1", "batch/v1", "networking.k8s.io/v1", "rbac.authorization.k8s.io/v1", "policy/v1"]);
    component(
        "system:serviceaccount:kube-system:resourcequota-controller",
        "kube-controller-manager/v1.30.4 (linux/amd64) kubernetes/abcdef0/system:serviceaccount:kube-system:resourcequota-controller",
        "get",
        format!("/apis/{group}"),
        Value::Null,
    )
}

fn kubelet_reads(rng: &mut Rng, node: &str, ns: &str) -> Req {
    let (resource, name) =
        if rng.below(2) == 0 { ("secrets", "app-credentials") } else { ("configmaps", "kube-root-ca.crt") };
    let mut r = component(
        "system:node:",
        "kubelet/v1.30.4 (linux/amd64) kubernetes/abcdef0",
        "list",
        format!("/api/v1/namespaces/{ns}/{resource}?fieldSelector=metadata.name%3D{name}&limit=500&resourceVersion=0"),
        json!({"resource": resource, "namespace": ns, "apiVersion": "v1"}),
    );
    r.user = format!("system:node:{node}");
    r.groups = vec!["system:nodes", "system:authenticated"];
    r
}

fn person_reads(rng: &mut Rng, ns: &str) -> Req {
    let person = *rng.pick(&PEOPLE);
    let (resource, verb) = *rng.pick(&[
        ("pods", "list"),
        ("deployments", "get"),
        ("pods/log", "get"),
        ("services", "list"),
        ("events", "list"),
        ("secrets", "list"),
    ]);
    let (res, sub) = resource.split_once('/').map_or((resource, None), |(a, b)| (a, Some(b)));
    let forbidden = res == "secrets" && rng.below(2) == 0;
    let mut r = component(
        person,
        "kubectl/v1.30.4 (linux/amd64) kubernetes/abcdef0",
        verb,
        format!("/api/v1/namespaces/{ns}/{resource}"),
        json!({"resource": res, "subresource": sub, "namespace": ns, "apiVersion": "v1"}),
    );
    r.groups = vec!["developers", "system:authenticated"];
    r.ip = format!("10.20.{}.{}", rng.below(250), rng.below(250));
    r.code = if forbidden { 403 } else { 200 };
    if res == "pods" && !forbidden {
        let items: Vec<Value> = (0..(1 + rng.below(3))).map(|_| pod(rng, ns, "api")).collect();
        r.response_object = Some(json!({"kind": "PodList", "apiVersion": "v1", "items": items}));
    }
    r
}

fn events_create(rng: &mut Rng, node: &str, ns: &str) -> Req {
    let mut r = component(
        "system:node:",
        "kubelet/v1.30.4 (linux/amd64) kubernetes/abcdef0",
        "create",
        format!("/api/v1/namespaces/{ns}/events"),
        json!({"resource": "events", "namespace": ns, "apiVersion": "v1"}),
    );
    r.user = format!("system:node:{node}");
    r.code = 201;
    r.request_object = Some(
        json!({"kind": "Event", "apiVersion": "v1", "metadata": {"name": format!("web.{}", rng.hex(16)), "namespace": ns},
        "involvedObject": {"kind": "Pod", "namespace": ns, "name": "web"}, "reason": "Pulled", "message": "Container image already present on machine", "type": "Normal"}),
    );
    r
}

fn deployment_apply(rng: &mut Rng, ns: &str) -> Req {
    let person = *rng.pick(&PEOPLE);
    let app = *rng.pick(&["web", "api", "worker", "cart", "search"]);
    let mut r = component(
        person,
        "kubectl/v1.30.4 (linux/amd64) kubernetes/abcdef0",
        "patch",
        format!("/apis/apps/v1/namespaces/{ns}/deployments/{app}?fieldManager=kubectl-client-side-apply"),
        json!({"resource": "deployments", "namespace": ns, "name": app, "apiGroup": "apps", "apiVersion": "v1"}),
    );
    r.groups = vec!["developers", "system:authenticated"];
    let body = json!({"kind": "Deployment", "apiVersion": "apps/v1", "metadata": {"name": app, "namespace": ns, "labels": {"app": app}},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": app}}, "template": {"metadata": {"labels": {"app": app}}, "spec": {
            "serviceAccountName": app,
            "securityContext": {"runAsNonRoot": true, "runAsUser": 10001},
            "containers": [{"name": app, "image": format!("registry.example.com/{ns}/{app}:2.{}.1", rng.below(30)),
                "args": ["--port=8080", "--log-level=info"], "env": [{"name": "DB_HOST", "value": "db.internal"}],
                "resources": {"limits": {"cpu": "1", "memory": "512Mi"}}, "securityContext": {"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true}}]}}}});
    r.request_object = Some(body.clone());
    r.response_object = Some(body);
    r
}

fn ci_job(rng: &mut Rng) -> Req {
    let mut r = component(
        "system:serviceaccount:ci:runner",
        "gitlab-runner/16.0 (linux/amd64)",
        "create",
        "/apis/batch/v1/namespaces/ci/jobs".into(),
        json!({"resource": "jobs", "namespace": "ci", "apiGroup": "batch", "apiVersion": "v1"}),
    );
    r.code = 201;
    r.request_object = Some(json!({"kind": "Job", "apiVersion": "batch/v1", "metadata": {"generateName": "build-"},
        "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "build", "image": "registry.example.com/ci/builder:7",
            "command": ["make", "test"], "env": [{"name": "COMMIT", "value": rng.hex(40)}]}]}}}}));
    r
}

/// Now and then, an attack: a miner, a secret dump or an exec from a stolen token.
fn attack(rng: &mut Rng, ns: &str) -> Req {
    let mut r = component(
        "system:serviceaccount:tools:ops-console",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.0.0 Safari/537.36",
        "list",
        "/api/v1/secrets".into(),
        json!({"resource": "secrets", "apiVersion": "v1"}),
    );
    r.ip = "203.0.113.7".into();
    if rng.below(2) == 0 {
        r.verb = "create";
        r.code = 201;
        r.uri = format!("/apis/apps/v1/namespaces/{ns}/deployments");
        r.object_ref = json!({"resource": "deployments", "namespace": ns, "apiGroup": "apps", "apiVersion": "v1"});
        r.request_object = Some(json!({"kind": "Deployment", "spec": {"template": {"spec": {"containers": [
            {"name": "exporter", "image": "docker.io/local/xmrig:6.21.0", "args": ["-o", "stratum+tcp://xmr.pool.example:443", "--donate-level=1"]}]}}}}));
    }
    r
}

/// The peak resident memory of this process, from `/proc/self/status` (Linux), in bytes.
pub fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generator_is_deterministic_and_readable() {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        generate(&mut a, 200_000, 7).unwrap();
        generate(&mut b, 200_000, 7).unwrap();
        assert_eq!(a, b);
        let (records, skipped) = kir_audit::read_all(&a, &kir_audit::ReadOptions::default());
        assert!(skipped.is_empty(), "{skipped:?}");
        assert!(records.len() > 100);
        assert_eq!(time(1_795_824_000_000), "2026-11-28T00:00:00.000000Z");
    }
}
