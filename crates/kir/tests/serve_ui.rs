//! The web UI in a real browser: headless Chromium driven through chromedriver's W3C WebDriver
//! protocol (plain JSON over HTTP, spoken here directly). A responder logs in with a token, sees
//! the incident appear on the board once the recording's batches are posted, opens it and
//! acknowledges it; the acknowledgement is on the timeline under the token's name. Then a playbook
//! run (`kir respond`, against the fake API server) stops at a step that needs approval, and an
//! approver approves it with the button.
//!
//! Needs Debian's `chromium` and `chromium-driver`; without them the test says SKIPPED, unless
//! `KIR_REQUIRE_CHROMIUM=1` (set by `.ci/run`, which installs them).

mod common;
mod fake_cluster;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};

fn request(addr: SocketAddr, method: &str, path: &str, token: Option<&str>, body: Option<&str>) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(90))).unwrap();
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    let body = body.unwrap_or("");
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    // Read by Content-Length: chromedriver keeps the connection open whatever it was asked.
    let mut reader = BufReader::new(s);
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).expect("an answer") == 0 || line == "\r\n" {
            break;
        }
        head.push_str(&line);
    }
    let status = head.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let lower = head.to_ascii_lowercase();
    let length =
        lower.lines().find_map(|l| l.strip_prefix("content-length:")).and_then(|n| n.trim().parse::<usize>().ok());
    let body = match length {
        Some(n) => {
            let mut buf = vec![0; n];
            reader.read_exact(&mut buf).expect("the body");
            String::from_utf8_lossy(&buf).to_string()
        }
        None => {
            let mut rest = String::new();
            let _ = reader.read_to_string(&mut rest);
            if lower.contains("transfer-encoding: chunked") { dechunk(&rest) } else { rest }
        }
    };
    (status, body)
}

fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || after.len() < n {
            break;
        }
        out.push_str(&after[..n]);
        rest = after[n..].trim_start_matches("\r\n");
    }
    out
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A WebDriver session.
struct Browser {
    driver: SocketAddr,
    session: String,
}

impl Browser {
    fn call(&self, method: &str, path: &str, body: Value) -> Value {
        let path = format!("/session/{}{path}", self.session);
        let body = if method == "GET" { None } else { Some(body.to_string()) };
        let (status, text) = request(self.driver, method, &path, None, body.as_deref());
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        assert_eq!(status, 200, "WebDriver {method} {path}: {text}");
        v["value"].clone()
    }

    fn go(&self, url: &str) {
        self.call("POST", "/url", json!({"url": url}));
    }

    fn find(&self, css: &str) -> String {
        let v = self.call("POST", "/element", json!({"using": "css selector", "value": css}));
        v.as_object().and_then(|o| o.values().next()).and_then(Value::as_str).expect("an element id").to_string()
    }

    fn type_into(&self, css: &str, text: &str) {
        let e = self.find(css);
        self.call("POST", &format!("/element/{e}/value"), json!({"text": text}));
    }

    fn click(&self, css: &str) {
        let e = self.find(css);
        self.call("POST", &format!("/element/{e}/click"), json!({}));
    }

    fn source(&self) -> String {
        self.call("GET", "/source", Value::Null).as_str().unwrap_or_default().to_string()
    }

    /// The page once it holds `text`: a click on a form's button returns before the browser has
    /// loaded the answer, so the page is read again until it has (10 s at most).
    fn page_with(&self, text: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let page = self.source();
            if page.contains(text) || Instant::now() > deadline {
                return page;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = request(self.driver, "DELETE", &format!("/session/{}", self.session), None, None);
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn start_serve(store: &str) -> (Killed, SocketAddr) {
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("kir"))
        .args(["serve", "--listen", "127.0.0.1:0", "--store", store, "--tick", "1s", "--flush-after", "1s"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kir serve starts");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = loop {
        match lines.next() {
            Some(Ok(line)) => {
                if let Some(a) = line.strip_prefix("listening on ") {
                    break a.trim().parse().unwrap();
                }
            }
            _ => panic!("kir serve stopped before listening"),
        }
    };
    std::thread::spawn(move || for _ in lines {});
    (Killed(child), addr)
}

#[test]
fn a_responder_logs_in_sees_the_incident_arrive_and_acknowledges_it() {
    let (chromium, driver_bin) = ("/usr/bin/chromium", "/usr/bin/chromedriver");
    if !std::path::Path::new(chromium).exists() || !std::path::Path::new(driver_bin).exists() {
        if std::env::var("KIR_REQUIRE_CHROMIUM").is_ok_and(|v| v == "1") {
            panic!(
                "KIR_REQUIRE_CHROMIUM=1 but {chromium} or {driver_bin} is missing (apt-get install chromium chromium-driver)"
            );
        }
        kir_testkit::say_skipped(
            "a_responder_logs_in_sees_the_incident_arrive_and_acknowledges_it",
            "chromium and chromedriver are not installed",
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite:{}", dir.path().join("kir.db").display());
    let token = |role: &str, name: &str| {
        stdout_of(kir().args(["token", "create", "--role", role, "--name", name, "--store", &store])).trim().to_string()
    };
    let (ingest, responder, approver) =
        (token("ingest", "apiserver"), token("responder", "alice"), token("approver", "dana"));
    let (_serve, addr) = start_serve(&store);

    let port = free_port();
    let _driver = Killed(
        std::process::Command::new(driver_bin)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts"),
    );
    let driver: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(driver).is_err() {
        assert!(Instant::now() < deadline, "chromedriver did not listen");
        std::thread::sleep(Duration::from_millis(100));
    }
    let capabilities = json!({"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
        "binary": chromium,
        "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=390,844"]
    }}}});
    let (status, text) = request(driver, "POST", "/session", None, Some(&capabilities.to_string()));
    assert_eq!(status, 200, "a browser session: {text}");
    let session = serde_json::from_str::<Value>(&text).unwrap()["value"]["sessionId"].as_str().unwrap().to_string();
    let browser = Browser { driver, session };

    // Logging in with the token.
    let base = format!("http://{addr}");
    browser.go(&format!("{base}/"));
    assert!(browser.source().contains("Log in to kir"), "the board asks for a login first");
    browser.type_into("#token", &responder);
    browser.click("form.login button[type=submit]");
    let page = browser.page_with("No open incident");
    assert!(page.contains("No open incident"), "logged in, nothing yet: {page}");

    // The recording arrives as the apiserver would send it.
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(example()).unwrap()).read_to_string(&mut text).unwrap();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    for chunk in lines.chunks(400) {
        let body = format!(
            r#"{{"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{{}},"items":[{}]}}"#,
            chunk.join(",")
        );
        assert_eq!(request(addr, "POST", "/v1/audit?cluster=prod-eu", Some(&ingest), Some(&body)).0, 200);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let first: Value = loop {
        let (_, list) = request(addr, "GET", "/api/v1/incidents", Some(&responder), None);
        let list: Value = serde_json::from_str(&list).unwrap_or(Value::Null);
        if let Some(i) = list.as_array().and_then(|l| l.iter().find(|i| i["severity"] == "critical").or(l.first())) {
            break i.clone();
        }
        assert!(Instant::now() < deadline, "no incident was opened");
        std::thread::sleep(Duration::from_millis(250));
    };
    let id = first["id"].as_i64().unwrap();
    let title = first["title"].as_str().unwrap().replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    // The board shows it (it refreshes itself; the test reloads instead of waiting 10 s).
    browser.go(&format!("{base}/"));
    assert!(browser.page_with(&title).contains(&title), "the board names {title:?}");

    assert!(browser.source().contains(r#"<span class="cluster">prod-eu</span>"#), "the card names its cluster");

    // Findings filtered by cluster, through the form: the column shows it, another cluster has none.
    browser.go(&format!("{base}/findings"));
    browser.type_into("input[name=cluster]", "prod-eu");
    browser.click("form.search button[type=submit]");
    let page = browser.page_with("from cluster <strong>prod-eu</strong>");
    assert!(page.contains("<th>Cluster</th>"), "the column is there: {page}");
    assert!(page.contains(r#"<td class="cluster">prod-eu</td>"#), "the findings show their cluster: {page}");
    assert!(!page.contains(r#"<td class="cluster"></td>"#), "every finding came from prod-eu: {page}");
    browser.go(&format!("{base}/findings?cluster=staging"));
    let page = browser.page_with("from cluster <strong>staging</strong>");
    assert!(page.contains("0 findings from cluster"), "no finding came from staging: {page}");

    browser.go(&format!("{base}/incidents/{id}"));
    assert!(browser.page_with("clusters ").contains(r#"clusters <span class="cluster">prod-eu</span>"#));
    browser.go(&format!("{base}/"));
    browser.click(&format!("a[href='/incidents/{id}']"));
    assert!(browser.page_with("Acknowledge").contains("Acknowledge"), "the incident page offers Acknowledge");
    browser.click("button[value=ack]");
    let page = browser.page_with(r#"<strong class="state">acknowledged</strong>"#);
    assert!(page.contains(r#"<strong class="state">acknowledged</strong>"#), "the page shows the new state: {page}");

    let (_, shown) = request(addr, "GET", &format!("/api/v1/incidents/{id}"), Some(&responder), None);
    let shown: Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(shown["incident"]["state"], "acknowledged");
    assert!(
        shown["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["who"] == "alice" && e["message"].as_str().unwrap_or("").contains("acknowledged")),
        "the timeline names alice: {:#}",
        shown["timeline"]
    );

    // A playbook run stops at a step that needs the SOC's approval.
    let (status, opened) = request(
        addr,
        "POST",
        "/api/v1/incidents",
        Some(&responder),
        Some(r#"{"title":"miner in checkout","severity":"critical","type":"cryptomining"}"#),
    );
    assert_eq!(status, 201, "{opened}");
    let miner = serde_json::from_str::<Value>(&opened).unwrap()["id"].as_i64().unwrap();
    // The board's cluster filter, picked in the form: the recorded incident came from prod-eu,
    // the one reported by hand names no cluster.
    browser.go(&format!("{base}/"));
    assert!(browser.page_with("miner in checkout").contains(&title), "unfiltered, the board shows both");
    browser.click("select[name=cluster] option[value=prod-eu]");
    browser.click("form.search button[type=submit]");
    let page = browser.page_with("in cluster <strong>prod-eu</strong>");
    assert!(page.contains(&title) && !page.contains("miner in checkout"), "only prod-eu's incident: {page}");
    let cluster = fake_cluster::FakeCluster::start();
    let kubeconfig = cluster.kubeconfig(dir.path());
    let run = kir()
        .args(["respond", &miner.to_string(), "--pod", "checkout/checkout-api-64db89f569-blm5l", "--store", &store])
        .arg("--out")
        .arg(dir.path().join("evidence"))
        .env("KUBECONFIG", &kubeconfig)
        .env("KIR_USER", "alice")
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(3), "waits for approval: {}", String::from_utf8_lossy(&run.stdout));
    let (_, waiting) = request(addr, "GET", &format!("/api/v1/incidents/{miner}/approvals"), Some(&responder), None);
    let waiting: Value = serde_json::from_str(&waiting).unwrap();
    let step = waiting[0]["step"].as_u64().expect("a step waits");

    // A responder sees it but has no Approve button; the approver logs in and approves.
    browser.go(&format!("{base}/incidents/{miner}"));
    let page = browser.source();
    assert!(page.contains("Awaiting approval") && !page.contains(&format!("value=\"approve-{step}\"")), "{page}");
    browser.click("form[action='/logout'] button");
    browser.page_with("Log in to kir");
    browser.go(&format!("{base}/"));
    browser.type_into("#token", &approver);
    browser.click("form.login button[type=submit]");
    browser.page_with("dana (approver)");
    browser.go(&format!("{base}/incidents/{miner}"));
    browser.click(&format!("button[value=approve-{step}]"));
    let page = browser.page_with(&format!("approved step {step}"));
    assert!(page.contains(&format!("approved step {step}")), "the timeline shows the approval: {page}");
    assert!(!page.contains("Awaiting approval"), "nothing waits any more");
    // What the playbook run did so far is on the page: the evidence bundle with its digest, and
    // the recorded actions with their undo.
    assert!(page.contains("<h2>Evidence</h2>") && page.contains("manifest SHA-256"), "{page}");
    assert!(page.contains("<h2>Actions</h2>") && page.contains("kir contain undo "), "{page}");
    let (_, shown) = request(addr, "GET", &format!("/api/v1/incidents/{miner}"), Some(&responder), None);
    let shown: Value = serde_json::from_str(&shown).unwrap();
    assert!(
        shown["timeline"].as_array().unwrap().iter().any(|e| e["who"] == "dana" && e["kind"] == "approval"),
        "the approval is dana's: {:#}",
        shown["timeline"]
    );
}
