//! `kir serve` on a real loopback port: the acceptance flow (batches posted, the service killed
//! with SIGKILL half-way, restarted, every batch posted again: the findings of `kir hunt` and each
//! incident once), the roles on every endpoint, and back-pressure.

mod common;
mod fake_cluster;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

/// A running `kir serve`; killed with SIGKILL when dropped.
struct Service {
    child: Child,
    addr: SocketAddr,
    log: Arc<Mutex<String>>,
}

impl Service {
    fn start(store: &str, extra: &[&str]) -> Service {
        Service::spawn(store, extra, &[])
    }

    fn spawn(store: &str, extra: &[&str], env: &[(&str, &str)]) -> Service {
        let bin = assert_cmd::cargo::cargo_bin("kir");
        let mut child = std::process::Command::new(bin)
            .args(["serve", "--listen", "127.0.0.1:0", "--store", store, "--tick", "1s", "--flush-after", "1s"])
            .args(extra)
            .envs(env.iter().copied())
            .env("KIR_NO_NOTIFY_ENV", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kir serve starts");
        let stderr = child.stderr.take().expect("stderr is piped");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("listening on ") {
                    let _ = tx.send(addr.trim().to_string());
                }
                sink.lock().unwrap().push_str(&format!("{line}\n"));
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(a) => a.parse().expect("an address"),
            Err(_) => {
                let _ = child.kill();
                panic!("kir serve did not say `listening on`; it said:\n{}", log.lock().unwrap());
            }
        };
        Service { child, addr, log }
    }

    fn start_with_env(store: &str, extra: &[&str], env: &[(&str, &str)]) -> Service {
        Service::spawn(store, extra, env)
    }

    /// SIGTERM, and waits for the service to finish.
    fn terminate(mut self) {
        let _ = std::process::Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let _ = self.child.wait();
    }

    fn kill9(mut self) {
        self.child.kill().expect("SIGKILL");
        let _ = self.child.wait();
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Answer {
    status: u16,
    headers: String,
    body: String,
}

/// One HTTP/1.1 request on its own connection.
fn http(addr: SocketAddr, method: &str, path: &str, token: Option<&str>, body: Option<&str>) -> Answer {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    let body = body.unwrap_or("");
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: kir\r\nConnection: close\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).expect("an answer");
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head.split(' ').nth(1).and_then(|c| c.parse().ok()).expect("a status line");
    Answer { status, headers: head.to_string(), body: body.to_string() }
}

/// Where `value` departs from `schema` (an OpenAPI 3.1 schema of `doc`): types, enums,
/// required properties, and properties the document does not name.
fn schema_errors(doc: &Value, schema: &Value, value: &Value, at: &str, out: &mut Vec<String>) {
    if let Some(r) = schema["$ref"].as_str() {
        let name = r.trim_start_matches("#/components/schemas/");
        return schema_errors(doc, &doc["components"]["schemas"][name], value, at, out);
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(options) = schema[key].as_array() {
            let fits = options.iter().any(|o| {
                let mut e = Vec::new();
                schema_errors(doc, o, value, at, &mut e);
                e.is_empty()
            });
            if !fits {
                out.push(format!("{at}: fits none of {key} {options:?}: {value}"));
            }
            return;
        }
    }
    if let Some(all) = schema["allOf"].as_array() {
        for o in all {
            schema_errors(doc, o, value, at, out);
        }
    }
    let kind = match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    let allowed: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    let fits = allowed.is_empty() || allowed.contains(&kind) || (kind == "integer" && allowed.contains(&"number"));
    if !fits {
        out.push(format!("{at}: a {kind}, the document says {allowed:?}"));
        return;
    }
    if let Some(options) = schema["enum"].as_array()
        && !options.contains(value)
    {
        out.push(format!("{at}: {value} is not one of {options:?}"));
    }
    if let Value::Object(map) = value {
        for r in schema["required"].as_array().into_iter().flatten().filter_map(Value::as_str) {
            if !map.contains_key(r) {
                out.push(format!("{at}: required {r} is missing"));
            }
        }
        let properties = schema["properties"].as_object();
        for (k, v) in map {
            match properties.and_then(|p| p.get(k)) {
                Some(p) => schema_errors(doc, p, v, &format!("{at}.{k}"), out),
                None if properties.is_some() && schema["additionalProperties"] != Value::Bool(true) => {
                    out.push(format!("{at}: {k} is not in the document"))
                }
                None => {}
            }
        }
    }
    if let (Value::Array(items), Some(item)) = (value, schema.get("items")) {
        for (i, v) in items.iter().enumerate() {
            schema_errors(doc, item, v, &format!("{at}[{i}]"), out);
        }
    }
}

/// Checks a real answer against the OpenAPI document's schema for it.
fn conforms(doc: &Value, method: &str, path: &str, status: u16, body: &str) {
    let schema = &doc["paths"][path][method]["responses"][status.to_string()]["content"]["application/json"]["schema"];
    assert!(!schema.is_null(), "the document describes {method} {path} {status}");
    let value: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{method} {path}: not JSON ({e}): {body}"));
    let mut errors = Vec::new();
    schema_errors(doc, schema, &value, &format!("{method} {path} {status}"), &mut errors);
    assert!(errors.is_empty(), "the answer departs from /openapi.json:\n{}", errors.join("\n"));
}

fn openapi(addr: SocketAddr, viewer: &str) -> Value {
    let a = http(addr, "GET", "/openapi.json", Some(viewer), None);
    assert_eq!(a.status, 200);
    let doc: Value = serde_json::from_str(&a.body).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    doc
}

fn token(store: &str, role: &str, name: &str) -> String {
    stdout_of(kir().args(["token", "create", "--role", role, "--name", name, "--store", store])).trim().to_string()
}

/// The recording's lines as EventList batches of `size`.
fn batches(size: usize) -> Vec<String> {
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(example()).unwrap()).read_to_string(&mut text).unwrap();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines
        .chunks(size)
        .map(|c| {
            format!(
                r#"{{"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{{}},"items":[{}]}}"#,
                c.join(",")
            )
        })
        .collect()
}

/// (rule, audit IDs) of findings at medium and above, as a set.
fn keys(findings: impl IntoIterator<Item = Value>) -> BTreeSet<(String, Vec<String>)> {
    findings
        .into_iter()
        .map(|f| {
            let mut ids: Vec<String> =
                f["audit_ids"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
            ids.sort();
            (f["rule_id"].as_str().unwrap().to_string(), ids)
        })
        .collect()
}

fn served_findings(addr: SocketAddr, viewer: &str) -> BTreeSet<(String, Vec<String>)> {
    let a = http(addr, "GET", "/api/v1/findings?format=jsonl&severity=medium", Some(viewer), None);
    assert_eq!(a.status, 200, "{}", a.body);
    keys(a.body.lines().filter(|l| !l.is_empty()).map(|l| serde_json::from_str(l).unwrap()))
}

#[test]
fn killed_and_retried_the_service_finds_what_the_hunt_finds_and_files_each_incident_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite:{}", dir.path().join("kir.db").display());
    let ingest = token(&store, "ingest", "apiserver");
    let viewer = token(&store, "viewer", "val");
    let batches = batches(150);
    assert!(batches.len() > 10);

    let first = Service::start(&store, &[]);
    for b in &batches[..batches.len() / 2] {
        let a = http(first.addr, "POST", "/v1/audit", Some(&ingest), Some(b));
        assert_eq!(a.status, 200, "{}", a.body);
    }
    first.kill9();

    let second = Service::start(&store, &[]);
    for b in &batches {
        let a = http(second.addr, "POST", "/v1/audit", Some(&ingest), Some(b));
        assert_eq!(a.status, 200, "{}", a.body);
    }
    let expected = keys(hunt_jsonl(&["--min-severity", "medium"], &example()));
    assert!(expected.len() > 10, "the recording gives findings");
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut got = served_findings(second.addr, &viewer);
    while got != expected && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(300));
        got = served_findings(second.addr, &viewer);
    }
    let missing: Vec<_> = expected.difference(&got).collect();
    let extra: Vec<_> = got.difference(&expected).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {missing:#?}\nextra {extra:#?}\nlog:\n{}",
        second.log.lock().unwrap()
    );

    // Each incident once: the same incidents as `kir hunt --store` on the file.
    let hunted = format!("sqlite:{}", dir.path().join("hunt.db").display());
    kir().args(["hunt", "-q", "--no-notify", "--store", &hunted]).arg(example()).assert().success();
    let titles = |list: Value| -> Vec<String> {
        let mut t: Vec<String> =
            list.as_array().unwrap().iter().map(|i| i["title"].as_str().unwrap().to_string()).collect();
        t.sort();
        t
    };
    let offline: Value =
        serde_json::from_str(&stdout_of(kir().args(["incident", "list", "--format", "json", "--store", &hunted])))
            .unwrap();
    let a = http(second.addr, "GET", "/api/v1/incidents", Some(&viewer), None);
    assert_eq!(a.status, 200);
    assert_eq!(titles(serde_json::from_str(&a.body).unwrap()), titles(offline));

    // Real answers against the OpenAPI document.
    let doc = openapi(second.addr, &viewer);
    conforms(&doc, "get", "/api/v1/incidents", 200, &a.body);
    let all = http(second.addr, "GET", "/api/v1/findings", Some(&viewer), None);
    conforms(&doc, "get", "/api/v1/findings", 200, &all.body);
    let id = serde_json::from_str::<Value>(&a.body).unwrap()[0]["id"].as_i64().unwrap();
    let one = http(second.addr, "GET", &format!("/api/v1/incidents/{id}"), Some(&viewer), None);
    conforms(&doc, "get", "/api/v1/incidents/{id}", 200, &one.body);
    let again = http(second.addr, "POST", "/v1/audit", Some(&ingest), Some(&batches[0]));
    conforms(&doc, "post", "/v1/audit", 200, &again.body);
    assert!(again.body.contains("\"stored\":0"), "a retried batch adds nothing: {}", again.body);

    // The board names every open incident.
    let board = http(second.addr, "GET", "/", Some(&viewer), None);
    assert_eq!(board.status, 200);
    for t in titles(serde_json::from_str(&a.body).unwrap()) {
        let escaped = t.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;");
        assert!(board.body.contains(&escaped), "the board names {t:?}");
    }
}

#[test]
fn every_endpoint_but_health_needs_a_token_and_roles_decide_what_it_may() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite:{}", dir.path().join("kir.db").display());
    let ingest = token(&store, "ingest", "apiserver");
    let viewer = token(&store, "viewer", "val");
    let responder = token(&store, "responder", "alice");
    let admin = token(&store, "admin", "root");
    let svc = Service::start(&store, &[]);
    let a = svc.addr;
    for path in ["/healthz", "/readyz"] {
        assert_eq!(http(a, "GET", path, None, None).status, 200, "{path} is open");
    }
    let reads = [
        "/",
        "/findings",
        "/plan",
        "/rules",
        "/metrics",
        "/api/v1/findings",
        "/api/v1/incidents",
        "/api/v1/incidents/1",
        "/api/v1/rules",
        "/api/v1/plan",
        "/api/v1/tokens",
        "/nowhere",
    ];
    let writes = ["/v1/audit", "/v1/falco", "/api/v1/incidents", "/api/v1/incidents/1/ack", "/api/v1/reload"];
    for path in reads {
        assert_eq!(http(a, "GET", path, None, None).status, 401, "GET {path} without credentials");
        assert_eq!(http(a, "GET", path, Some("kir_nope_nope"), None).status, 401, "GET {path} with a made-up token");
        assert_eq!(http(a, "GET", path, Some(&ingest), None).status, 403, "GET {path} with an ingest token");
    }
    for path in writes {
        assert_eq!(http(a, "POST", path, None, Some("{}")).status, 401, "POST {path} without credentials");
    }
    assert!(http(a, "GET", "/", None, None).body.contains("<form"), "a browser gets the login form");
    // A viewer reads but may not write; an ingest token sends but may not read.
    assert_eq!(http(a, "GET", "/api/v1/findings", Some(&viewer), None).status, 200);
    assert_eq!(http(a, "POST", "/v1/audit", Some(&viewer), Some("{}")).status, 403);
    assert_eq!(http(a, "GET", "/api/v1/tokens", Some(&responder), None).status, 403);
    assert_eq!(http(a, "GET", "/api/v1/tokens", Some(&admin), None).status, 200);
    let opened =
        http(a, "POST", "/api/v1/incidents", Some(&responder), Some(r#"{"title":"Miner in shop","severity":"high"}"#));
    assert_eq!(opened.status, 201, "{}", opened.body);
    let id = serde_json::from_str::<Value>(&opened.body).unwrap()["id"].as_i64().unwrap();
    let ack = format!("/api/v1/incidents/{id}/ack");
    let refused = http(a, "POST", &ack, Some(&viewer), None);
    assert_eq!(refused.status, 403);
    assert!(refused.body.contains("responder"), "{}", refused.body);
    let done = http(a, "POST", &ack, Some(&responder), None);
    assert_eq!(done.status, 200, "{}", done.body);
    let doc = openapi(a, &viewer);
    conforms(&doc, "post", "/api/v1/incidents", 201, &opened.body);
    conforms(&doc, "post", "/api/v1/incidents/{id}/{action}", 200, &done.body);
    conforms(&doc, "post", "/api/v1/incidents/{id}/{action}", 403, &refused.body);
    conforms(&doc, "get", "/api/v1/rules", 200, &http(a, "GET", "/api/v1/rules", Some(&viewer), None).body);
    conforms(
        &doc,
        "get",
        "/api/v1/actions",
        200,
        &http(a, "GET", &format!("/api/v1/actions?incident={id}"), Some(&viewer), None).body,
    );
    // The same metrics as `kir metrics --format json` on the store.
    let served: Value = serde_json::from_str(&http(a, "GET", "/api/v1/metrics", Some(&viewer), None).body).unwrap();
    let offline: Value =
        serde_json::from_str(&stdout_of(kir().args(["metrics", "--format", "json", "--store", &store]))).unwrap();
    assert_eq!(served["overall"], offline["overall"], "{served:#}");
    assert_eq!(served["overall"]["incidents"], 1);
    conforms(&doc, "get", "/api/v1/tokens", 200, &http(a, "GET", "/api/v1/tokens", Some(&admin), None).body);
    conforms(
        &doc,
        "get",
        "/api/v1/incidents/{id}/approvals",
        200,
        &http(a, "GET", &format!("/api/v1/incidents/{id}/approvals"), Some(&viewer), None).body,
    );
    // An approver may approve; a responder may not; a step that needs none is refused with why.
    let not_yours = http(a, "POST", &format!("/api/v1/incidents/{id}/approve"), Some(&responder), None);
    assert_eq!(not_yours.status, 403);
    let approver = token(&store, "approver", "dana");
    let nothing = http(a, "POST", &format!("/api/v1/incidents/{id}/approve"), Some(&approver), None);
    assert_eq!(nothing.status, 409, "{}", nothing.body);
    assert!(nothing.body.contains("playbook") || nothing.body.contains("waits"), "{}", nothing.body);
    assert_eq!(serde_json::from_str::<Value>(&done.body).unwrap()["state"], "acknowledged");
    // The write is on the timeline with the token's name.
    let shown: Value =
        serde_json::from_str(&http(a, "GET", &format!("/api/v1/incidents/{id}"), Some(&viewer), None).body).unwrap();
    let timeline = shown["timeline"].as_array().unwrap();
    assert!(
        timeline.iter().any(|e| e["who"] == "alice" && e["message"].as_str().unwrap().contains("acknowledged")),
        "{timeline:#?}"
    );
    // A revoked token stops working at once for this server's own checks after the cache: the
    // CLI's revocation is seen within 30 s; a fresh token is checked against the store.
    kir().args(["token", "revoke", "val", "--store", &store]).assert().success();
    let fresh = token(&store, "viewer", "val");
    assert_eq!(http(a, "GET", "/api/v1/incidents", Some(&fresh), None).status, 200);
}

#[test]
fn a_full_receiver_answers_429_with_retry_after_instead_of_queueing() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite:{}", dir.path().join("kir.db").display());
    let ingest = token(&store, "ingest", "apiserver");
    let svc = Service::start(&store, &["--max-in-flight", "1"]);
    // A batch still arriving holds the only slot.
    let start_slow = || {
        let mut slow = TcpStream::connect(svc.addr).unwrap();
        write!(slow, "POST /v1/audit HTTP/1.1\r\nHost: kir\r\nAuthorization: Bearer {ingest}\r\nContent-Length: 100000\r\n\r\n{{\"kind\":").unwrap();
        slow.flush().unwrap();
        slow.set_nonblocking(true).unwrap();
        slow
    };
    let mut slow = start_slow();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut refused = http(svc.addr, "POST", "/v1/audit", Some(&ingest), Some(&batches(10)[0]));
    while refused.status != 429 && Instant::now() < deadline {
        // The probe can reach the gate first (the slow sender's token is still being checked):
        // then the slow sender is the one refused, and it starts again.
        if slow.peek(&mut [0u8; 1]).is_ok() {
            slow = start_slow();
        }
        std::thread::sleep(Duration::from_millis(100));
        refused = http(svc.addr, "POST", "/v1/audit", Some(&ingest), Some(&batches(10)[0]));
    }
    assert_eq!(refused.status, 429, "{}", refused.body);
    assert!(refused.headers.to_ascii_lowercase().contains("retry-after: 1"), "{}", refused.headers);
    drop(slow);
    // The slot is free again once the slow sender is gone.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut again = http(svc.addr, "POST", "/v1/audit", Some(&ingest), Some(&batches(10)[0]));
    while again.status != 200 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        again = http(svc.addr, "POST", "/v1/audit", Some(&ingest), Some(&batches(10)[0]));
    }
    assert_eq!(again.status, 200, "{}", again.body);
    let metrics = http(svc.addr, "GET", "/metrics", Some(&token(&store, "viewer", "prom")), None);
    assert!(metrics.body.contains("kir_batches_refused_total"), "{}", metrics.body);
}

#[test]
fn with_kube_auth_the_clusters_rbac_decides_what_a_kubernetes_user_may() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite:{}", dir.path().join("kir.db").display());
    let cluster = fake_cluster::FakeCluster::start();
    let kubeconfig = cluster.kubeconfig(dir.path());
    cluster.user("k8s-dana", "dana", &["soc"]);
    cluster.grant("dana", "approve", "incidents");
    cluster.user("k8s-vic", "vic", &["devops"]);
    cluster.grant("vic", "get", "incidents");
    cluster.user("k8s-eve", "eve", &[]);
    let svc = Service::start(&store, &["--kube-auth", "--kubeconfig", kubeconfig.to_str().unwrap()]);
    let a = svc.addr;
    assert_eq!(
        http(a, "GET", "/api/v1/incidents", Some("k8s-vic"), None).status,
        200,
        "get incidents.kir.dev: a viewer"
    );
    let opened = http(a, "POST", "/api/v1/incidents", Some("k8s-vic"), Some(r#"{"title":"x","severity":"low"}"#));
    assert_eq!(opened.status, 403, "a viewer may not open");
    let opened =
        http(a, "POST", "/api/v1/incidents", Some("k8s-dana"), Some(r#"{"title":"Token misuse","severity":"high"}"#));
    assert_eq!(opened.status, 201, "approve incidents.kir.dev: an approver, who may work incidents: {}", opened.body);
    let id = serde_json::from_str::<Value>(&opened.body).unwrap()["id"].as_i64().unwrap();
    assert_eq!(http(a, "POST", &format!("/api/v1/incidents/{id}/ack"), Some("k8s-dana"), None).status, 200);
    let shown: Value =
        serde_json::from_str(&http(a, "GET", &format!("/api/v1/incidents/{id}"), Some("k8s-vic"), None).body).unwrap();
    assert!(
        shown["timeline"].as_array().unwrap().iter().any(|e| e["who"] == "dana"),
        "the cluster's user name is on the timeline"
    );
    assert_eq!(
        http(a, "GET", "/api/v1/incidents", Some("k8s-eve"), None).status,
        401,
        "no permission on kir.dev: nobody here"
    );
    assert_eq!(
        http(a, "GET", "/api/v1/incidents", Some("forged"), None).status,
        401,
        "a token the cluster does not know"
    );
    assert!(cluster.requests().iter().any(|r| r.path.ends_with("/tokenreviews")), "the cluster reviewed the tokens");
}

#[test]
fn reload_takes_a_plan_that_checks_refuses_one_that_does_not_and_sigterm_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite:{}", dir.path().join("kir.db").display());
    let plan = dir.path().join("plan.yaml");
    std::fs::write(&plan, stdout_of(kir().args(["plan", "init"]))).unwrap();
    let admin = token(&store, "admin", "root");
    let responder = token(&store, "responder", "alice");
    let mut svc = Service::start(&store, &["--plan", plan.to_str().unwrap(), "--log-format", "json"]);
    let a = svc.addr;
    assert_eq!(http(a, "POST", "/api/v1/reload", Some(&responder), None).status, 403, "reload is admin's");
    let ok = http(a, "POST", "/api/v1/reload", Some(&admin), None);
    assert_eq!(ok.status, 200, "{}", ok.body);
    std::fs::write(&plan, "apiVersion: kir.dev/v1\nkind: ResponsePlan\nroles: [\n").unwrap();
    let refused = http(a, "POST", "/api/v1/reload", Some(&admin), None);
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert!(refused.body.contains("plan"), "the refusal says what is wrong: {}", refused.body);
    assert_eq!(http(a, "GET", "/readyz", None, None).status, 200, "still running the old plan");
    // SIGTERM: no new requests, detection drained, exit 0; the logs were JSON lines.
    let pid = svc.child.id().to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = svc.child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "kir serve did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "{status:?}");
    let log = svc.log.lock().unwrap().clone();
    let json_lines: Vec<&str> = log.lines().filter(|l| l.starts_with('{')).collect();
    assert!(!json_lines.is_empty(), "{log}");
    for l in json_lines {
        let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
        assert!(v.get("level").is_some() && v.get("fields").is_some(), "{l}");
    }
}

/// A plan whose pages go to `hook`, the second level `second` after opening.
fn replicas_plan(dir: &std::path::Path, hook: &kir_testkit::HttpReceiver, second: &str) -> String {
    let text = std::fs::read_to_string(repo("crates/kir/tests/data/plan-replicas.yaml"))
        .unwrap()
        .replace("HTTP_BASE", &hook.url(""))
        .replace("SECOND_LEVEL", second);
    let path = dir.join("plan.yaml");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// The pages received: (incident id, why), in the order they came.
fn pages(hook: &kir_testkit::HttpReceiver) -> Vec<(i64, String)> {
    hook.requests()
        .iter()
        .map(|r| {
            let v: Value = serde_json::from_str(&r.body_text()).unwrap();
            (v["incident"]["id"].as_i64().unwrap(), v["reason"].as_str().unwrap().to_string())
        })
        .collect()
}

fn leads(s: &Service, viewer: &str) -> bool {
    let m = http(s.addr, "GET", "/metrics", Some(viewer), None);
    m.body.lines().any(|l| l == "kir_leader 1")
}

#[test]
fn two_replicas_on_postgres_with_every_batch_at_both_and_one_killed_file_and_page_each_incident_once() {
    let Some(pg) = kir_testkit::PostgresServer::start_or_skip("two_replicas_on_postgres") else { return };
    let dir = tempfile::tempdir().unwrap();
    let store = pg.new_database();
    let hook = kir_testkit::HttpReceiver::start();
    let plan = replicas_plan(dir.path(), &hook, "4h");
    let ingest = token(&store, "ingest", "apiserver");
    let viewer = token(&store, "viewer", "val");
    let batches = batches(150);
    let half = batches.len() / 2;

    let mut a = Service::start(&store, &["--plan", &plan]);
    let b = Service::start(&store, &["--plan", &plan]);
    let post_both = |first: &Service, second: &Service, batch: &str| {
        for s in [first, second] {
            let r = http(s.addr, "POST", "/v1/audit", Some(&ingest), Some(batch));
            assert_eq!(r.status, 200, "{}", r.body);
        }
    };
    for (i, batch) in batches[..half].iter().enumerate() {
        if i % 2 == 0 { post_both(&a, &b, batch) } else { post_both(&b, &a, batch) }
    }
    a.kill9();
    a = Service::start(&store, &["--plan", &plan]);
    for (i, batch) in batches.iter().enumerate() {
        if i % 2 == 0 { post_both(&b, &a, batch) } else { post_both(&a, &b, batch) }
    }

    let expected = keys(hunt_jsonl(&["--min-severity", "medium"], &example()));
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut got = served_findings(a.addr, &viewer);
    while got != expected && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(300));
        got = served_findings(a.addr, &viewer);
    }
    assert_eq!(got, expected, "the findings of kir hunt\nA:\n{}\nB:\n{}", a.log.lock().unwrap(), b.log.lock().unwrap());
    assert_eq!(served_findings(b.addr, &viewer), expected, "both replicas answer the same");

    // Each incident once: the incidents of `kir hunt --store` with the same plan.
    let hunted = format!("sqlite:{}", dir.path().join("hunt.db").display());
    kir().args(["hunt", "-q", "--no-notify", "--plan", &plan, "--store", &hunted]).arg(example()).assert().success();
    let titles = |list: &Value| -> Vec<String> {
        let mut t: Vec<String> =
            list.as_array().unwrap().iter().map(|i| i["title"].as_str().unwrap().to_string()).collect();
        t.sort();
        t
    };
    let offline: Value =
        serde_json::from_str(&stdout_of(kir().args(["incident", "list", "--format", "json", "--store", &hunted])))
            .unwrap();
    let served: Value =
        serde_json::from_str(&http(b.addr, "GET", "/api/v1/incidents", Some(&viewer), None).body).unwrap();
    assert_eq!(titles(&served), titles(&offline));

    // Each page once: one per incident (its first level), whichever replica filed it.
    let incidents = served.as_array().unwrap().len();
    hook.wait_for(incidents, Duration::from_secs(30));
    std::thread::sleep(Duration::from_secs(3));
    let pages = pages(&hook);
    let distinct: BTreeSet<_> = pages.iter().cloned().collect();
    assert_eq!(distinct.len(), pages.len(), "no page twice: {pages:#?}");
    let paged: BTreeSet<i64> = pages.iter().map(|p| p.0).collect();
    let ids: BTreeSet<i64> = served.as_array().unwrap().iter().map(|i| i["id"].as_i64().unwrap()).collect();
    assert_eq!(paged, ids, "every incident paged once");
}

#[test]
fn when_the_leader_dies_the_other_replica_takes_the_ticker_and_fires_each_level_once() {
    let Some(pg) = kir_testkit::PostgresServer::start_or_skip("when_the_leader_dies") else { return };
    let dir = tempfile::tempdir().unwrap();
    let store = pg.new_database();
    let hook = kir_testkit::HttpReceiver::start();
    let plan = replicas_plan(dir.path(), &hook, "20s");
    let ingest = token(&store, "ingest", "apiserver");
    let viewer = token(&store, "viewer", "val");

    let leader = Service::start(&store, &["--plan", &plan]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !leads(&leader, &viewer) {
        assert!(Instant::now() < deadline, "the only replica leads");
        std::thread::sleep(Duration::from_millis(200));
    }
    let follower = Service::start(&store, &["--plan", &plan]);
    std::thread::sleep(Duration::from_secs(3));
    assert!(!leads(&follower, &viewer), "one leader at a time");

    for batch in batches(150) {
        let r = http(follower.addr, "POST", "/v1/audit", Some(&ingest), Some(&batch));
        assert_eq!(r.status, 200, "{}", r.body);
    }
    // The leader detects what the follower stored, and pages the first level.
    hook.wait_for(1, Duration::from_secs(30));
    leader.kill9();
    let killed = Instant::now();
    while !leads(&follower, &viewer) {
        assert!(killed.elapsed() < Duration::from_secs(15), "the follower leads within 15 s of the leader's death");
        std::thread::sleep(Duration::from_millis(200));
    }

    // The new leader replays the stream and files what the old one had not.
    let expected = keys(hunt_jsonl(&["--min-severity", "medium"], &example()));
    let deadline = Instant::now() + Duration::from_secs(60);
    while served_findings(follower.addr, &viewer) != expected {
        assert!(Instant::now() < deadline, "the new leader detects the rest:\n{}", follower.log.lock().unwrap());
        std::thread::sleep(Duration::from_millis(300));
    }
    // Every incident gets both levels (none lost to the kill), each once.
    let incidents: Value =
        serde_json::from_str(&http(follower.addr, "GET", "/api/v1/incidents", Some(&viewer), None).body).unwrap();
    let ids: BTreeSet<i64> = incidents.as_array().unwrap().iter().map(|i| i["id"].as_i64().unwrap()).collect();
    assert!(!ids.is_empty());
    hook.wait_for(2 * ids.len(), Duration::from_secs(90));
    std::thread::sleep(Duration::from_secs(3));
    let pages = pages(&hook);
    let distinct: BTreeSet<_> = pages.iter().cloned().collect();
    assert_eq!(distinct.len(), pages.len(), "no level fired twice: {pages:#?}");
    for id in &ids {
        let levels = pages.iter().filter(|p| p.0 == *id).count();
        assert_eq!(levels, 2, "incident {id} paged at both levels: {pages:#?}\nlog:\n{}", follower.log.lock().unwrap());
    }
}

#[test]
fn inside_a_cluster_the_lease_names_the_leader_and_passes_within_15_s_of_its_death() {
    let Some(pg) = kir_testkit::PostgresServer::start_or_skip("inside_a_cluster_the_lease") else { return };
    let dir = tempfile::tempdir().unwrap();
    let store = pg.new_database();
    let cluster = fake_cluster::FakeCluster::start();
    let kubeconfig = cluster.kubeconfig(dir.path());
    let viewer = token(&store, "viewer", "val");
    let lease_path = "/apis/coordination.k8s.io/v1/namespaces/kir/leases/kir-leader";
    let replica = |pod: &str| {
        let kubeconfig = kubeconfig.to_str().unwrap().to_string();
        let args = ["--kubeconfig", &kubeconfig, "--leader-lease", "kir-leader", "--leader-lease-namespace", "kir"];
        Service::start_with_env(&store, &args, &[("POD_NAME", pod)])
    };
    let holder = |cluster: &fake_cluster::FakeCluster| {
        cluster.object(lease_path).and_then(|l| l["spec"]["holderIdentity"].as_str().map(str::to_string))
    };

    let a = replica("kir-7d9-a");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !leads(&a, &viewer) {
        assert!(Instant::now() < deadline, "the only replica takes the Lease:\n{}", a.log.lock().unwrap());
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(holder(&cluster).as_deref(), Some("kir-7d9-a"));
    let b = replica("kir-7d9-b");
    std::thread::sleep(Duration::from_secs(4));
    assert!(!leads(&b, &viewer), "a renews its Lease: b follows");
    assert_eq!(holder(&cluster).as_deref(), Some("kir-7d9-a"));

    a.kill9();
    let killed = Instant::now();
    while !leads(&b, &viewer) {
        assert!(killed.elapsed() < Duration::from_secs(15), "b leads within 15 s:\n{}", b.log.lock().unwrap());
        std::thread::sleep(Duration::from_millis(200));
    }
    let lease = cluster.object(lease_path).unwrap();
    assert_eq!(lease["spec"]["holderIdentity"], "kir-7d9-b");
    assert_eq!(lease["spec"]["leaseTransitions"], 1);

    // A replica that stops gives the Lease up instead of leaving it to expire.
    b.terminate();
    assert_eq!(holder(&cluster), None, "the Lease is free after b stopped");
    let writes = cluster.requests().iter().filter(|r| r.path.starts_with("/apis/coordination.k8s.io")).count();
    assert!(writes > 3, "the Lease was read and renewed through the API server");
}

/// A fleet on one service: the token names its cluster (or `?cluster=` does, for a fleet's
/// token), one recording from two clusters is two streams, and the API filters by cluster.
#[test]
fn events_carry_their_cluster_from_the_token_or_the_url_and_the_api_filters_by_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite:{}", dir.path().join("kir.db").display());
    let own = stdout_of(kir().args([
        "token",
        "create",
        "--role",
        "ingest",
        "--name",
        "apiserver-a",
        "--cluster",
        "prod-a",
        "--store",
        &store,
    ]))
    .trim()
    .to_string();
    let fleet = token(&store, "ingest", "fleet");
    let viewer = token(&store, "viewer", "soc");
    let svc = Service::start(&store, &[]);
    let batch = &batches(10)[0];
    let refused = http(svc.addr, "POST", "/v1/audit?cluster=prod-b", Some(&own), Some(batch));
    assert_eq!(refused.status, 403, "a token cannot speak for another cluster: {}", refused.body);
    assert!(refused.body.contains("prod-a"), "{}", refused.body);
    let bad = http(svc.addr, "POST", "/v1/audit?cluster=prod%20b", Some(&fleet), Some(batch));
    assert_eq!(bad.status, 400, "{}", bad.body);
    for b in batches(200) {
        assert_eq!(http(svc.addr, "POST", "/v1/audit", Some(&own), Some(&b)).status, 200);
        let a = http(svc.addr, "POST", "/v1/audit?cluster=prod-b", Some(&fleet), Some(&b));
        assert_eq!(a.status, 200, "{}", a.body);
        let stored: Value = serde_json::from_str(&a.body).unwrap();
        assert_eq!(stored["duplicates"], 0, "one auditID in two clusters is two events");
    }
    let of = |cluster: &str| {
        let path = format!("/api/v1/findings?format=jsonl&severity=medium&cluster={cluster}");
        let a = http(svc.addr, "GET", &path, Some(&viewer), None);
        assert_eq!(a.status, 200, "{}", a.body);
        a.body.lines().filter(|l| !l.is_empty()).map(|l| serde_json::from_str(l).unwrap()).collect::<Vec<Value>>()
    };
    let expected = keys(hunt_jsonl(&["--min-severity", "medium"], &example()));
    let deadline = Instant::now() + Duration::from_secs(90);
    while (keys(of("prod-a")) != expected || keys(of("prod-b")) != expected) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(keys(of("prod-a")), expected, "{}", svc.log.lock().unwrap());
    assert_eq!(keys(of("prod-b")), expected);
    assert!(of("prod-b").iter().all(|f| f["cluster"] == "prod-b"));
    assert!(of("prod-z").is_empty());
    let incidents = http(svc.addr, "GET", "/api/v1/incidents?cluster=prod-b", Some(&viewer), None);
    let incidents: Value = serde_json::from_str(&incidents.body).unwrap();
    assert!(!incidents.as_array().unwrap().is_empty());
    for i in incidents.as_array().unwrap() {
        assert_eq!(i["clusters"], serde_json::json!(["prod-a", "prod-b"]), "the same identities in both: {i}");
    }
}
