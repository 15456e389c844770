//! `kir serve` over TLS, with senders identified by client certificates (mTLS): certificates made
//! with the openssl command, requests made with curl. Without TLS, only loopback is allowed.
//!
//! Needs `openssl` and `curl`; without them the test says SKIPPED, unless
//! `KIR_REQUIRE_TLS_TOOLS=1` (set by `.ci/run`, which installs them).

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use common::*;

fn have(tool: &str) -> bool {
    Command::new(tool).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
        || Command::new(tool)
            .arg("version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl").args(args).current_dir(dir).output().unwrap();
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate for `apiserver`, all signed
/// by the CA.
fn certificates(dir: &Path) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=kir test CA",
        ],
    );
    std::fs::write(dir.join("server.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n").unwrap();
    openssl(
        dir,
        &["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=kir"],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "server.ext",
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "client.key",
            "-out",
            "client.csr",
            "-subj",
            "/O=system:masters/CN=apiserver",
        ],
    );
    // X.509 v3 with the client-auth purpose, as a verifier (webpki) wants it.
    std::fs::write(dir.join("client.ext"), "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n").unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "client.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "client.pem",
            "-days",
            "2",
            "-extfile",
            "client.ext",
        ],
    );
}

fn curl(dir: &Path, args: &[&str]) -> (String, String) {
    let _ = std::fs::remove_file(dir.join("body.txt"));
    let out = Command::new("curl")
        .args(["-s", "-o", "body.txt", "-w", "%{http_code}", "--cacert", "ca.pem"])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    let body = std::fs::read_to_string(dir.join("body.txt")).unwrap_or_default();
    (String::from_utf8_lossy(&out.stdout).to_string(), body)
}

#[test]
fn over_tls_a_client_certificate_of_the_ca_may_send_and_nothing_else_gets_in_without_a_token() {
    if !have("openssl") || !have("curl") {
        if std::env::var("KIR_REQUIRE_TLS_TOOLS").is_ok_and(|v| v == "1") {
            panic!("KIR_REQUIRE_TLS_TOOLS=1 but openssl or curl is missing");
        }
        kir_testkit::say_skipped("over_tls_…", "openssl and curl are not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    certificates(d);
    let store = format!("sqlite:{}", d.join("kir.db").display());
    let viewer = stdout_of(kir().args(["token", "create", "--role", "viewer", "--name", "val", "--store", &store]))
        .trim()
        .to_string();

    // Plain HTTP beyond loopback is refused before anything starts.
    kir()
        .args(["serve", "--listen", "0.0.0.0:0", "--store", &store])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("plain HTTP only on a loopback address"));
    kir()
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--store",
            &store,
            "--tls-cert",
            "nope.pem",
            "--tls-key",
            "nope.key",
        ])
        .current_dir(d)
        .assert()
        .code(2)
        .stderr(predicates::str::contains("--tls-cert nope.pem"));

    let mut child = Command::new(assert_cmd::cargo::cargo_bin("kir"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--store",
            &store,
            "--tls-cert",
            "server.pem",
            "--tls-key",
            "server.key",
            "--client-ca",
            "ca.pem",
        ])
        .current_dir(d)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = loop {
        let line = lines.next().expect("kir serve says where it listens").unwrap();
        if let Some(a) = line.strip_prefix("listening on ") {
            break a.trim().to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    let url = |path: &str| format!("https://{addr}{path}");
    let event = r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"tls-1","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/shop/secrets","verb":"list","user":{"username":"system:anonymous"},"sourceIPs":["203.0.113.9"],"objectRef":{"resource":"secrets","namespace":"shop","apiVersion":"v1"},"responseStatus":{"code":200},"requestReceivedTimestamp":"2026-12-03T10:00:00.000000Z","stageTimestamp":"2026-12-03T10:00:00.010000Z"}"#;
    std::fs::write(d.join("event.json"), event).unwrap();

    assert_eq!(curl(d, &[&url("/healthz")]).0, "200", "TLS with the CA works");
    let (code, body) =
        curl(d, &["--cert", "client.pem", "--key", "client.key", "--data-binary", "@event.json", &url("/v1/audit")]);
    assert_eq!(code, "200", "the client certificate is an ingest identity: {body}");
    assert!(body.contains("\"stored\":1"), "{body}");
    let (code, _) = curl(d, &["--data-binary", "@event.json", &url("/v1/audit")]);
    assert_eq!(code, "401", "no certificate and no token");
    let (code, _) = curl(d, &["--cert", "client.pem", "--key", "client.key", &url("/api/v1/findings")]);
    assert_eq!(code, "401", "a sender's certificate reads nothing");
    let (code, _) = curl(d, &["-H", &format!("Authorization: Bearer {viewer}"), &url("/api/v1/findings")]);
    assert_eq!(code, "200", "tokens work over TLS");
    let _ = child.kill();
    let _ = child.wait();
}
