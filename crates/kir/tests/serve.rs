//! `kir serve` on a real loopback port: the acceptance flow (batches posted, the service killed
//! with SIGKILL half-way, restarted, every batch posted again: the findings of `kir hunt` and each
//! incident once), the roles on every endpoint, and back-pressure.

mod common;

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
        let bin = assert_cmd::cargo::cargo_bin("kir");
        let mut child = std::process::Command::new(bin)
            .args(["serve", "--listen", "127.0.0.1:0", "--store", store, "--tick", "1s", "--flush-after", "1s"])
            .args(extra)
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
    let mut slow = TcpStream::connect(svc.addr).unwrap();
    write!(slow, "POST /v1/audit HTTP/1.1\r\nHost: kir\r\nAuthorization: Bearer {ingest}\r\nContent-Length: 100000\r\n\r\n{{\"kind\":").unwrap();
    slow.flush().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut refused = http(svc.addr, "POST", "/v1/audit", Some(&ingest), Some(&batches(10)[0]));
    while refused.status != 429 && Instant::now() < deadline {
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
