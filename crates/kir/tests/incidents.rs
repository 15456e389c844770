//! The response plan, incidents, escalation and notifications, driven through the real binary
//! against real SQLite and PostgreSQL stores and real HTTP and SMTP receivers.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use assert_cmd::Command;
use common::{example, kir, repo, stdout_of};
use hmac::{Hmac, KeyInit, Mac};
use kir_testkit::{HttpReceiver, PostgresServer, SmtpReceiver};
use serde_json::Value;
use sha2::Sha256;

/// `kir` with no store, plan or identity leaking in from the environment.
fn kir_at(home: &Path) -> Command {
    let mut c = kir();
    c.env_remove("KIR_STORE").env_remove("KIR_PLAN").env_remove("KIR_NOW").env("HOME", home).env("KIR_USER", "tester");
    c
}

fn json_of(command: &mut Command) -> Value {
    serde_json::from_str(&stdout_of(command)).expect("JSON output")
}

fn list(home: &Path, store: &str) -> Vec<Value> {
    let v = json_of(kir_at(home).args(["incident", "list", "--format", "json", "--store", store]));
    v.as_array().expect("an array").clone()
}

#[test]
fn starter_plan_passes_its_own_check() {
    let home = tempfile::tempdir().unwrap();
    let plan = stdout_of(kir_at(home.path()).args(["plan", "init"]));
    assert!(plan.starts_with("# kir response plan"));
    kir_at(home.path())
        .args(["plan", "check", "-"])
        .write_stdin(plan)
        .assert()
        .success()
        .stderr(predicates::str::contains("is valid").and(predicates::str::contains("0 warnings")));
}

use predicates::prelude::PredicateBooleanExt;

#[test]
fn broken_plans_fail_with_the_line() {
    let home = tempfile::tempdir().unwrap();
    let starter = stdout_of(kir_at(home.path()).args(["plan", "init"]));
    let line_of = |text: &str, needle: &str| text.lines().position(|l| l.contains(needle)).unwrap() + 1;
    let cases = [
        ("        assign: soc\n", "        assign: security\n", "assign: security", "unknown role \"security\""),
        ("  window: 6h\n", "  window: six hours\n", "window: six hours", "bad duration"),
        ("    policy: soc-critical\n", "    polcy: soc-critical\n", "polcy: soc-critical", "polcy"),
    ];
    for (from, to, needle, message) in cases {
        let broken = starter.replacen(from, to, 1);
        assert_ne!(broken, starter, "{from:?} is in the starter plan");
        let line = line_of(&broken, needle);
        let out =
            kir_at(home.path()).args(["plan", "check", "-"]).write_stdin(broken).assert().code(2).get_output().clone();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(&format!("<stdin>:{line}:")), "line {line} named for {needle:?}: {stderr}");
        assert!(stderr.contains(message), "{message:?} in {stderr}");
    }
    // A field the schema needs is missing.
    let missing = starter.replacen("kind: ResponsePlan\n", "", 1);
    kir_at(home.path())
        .args(["plan", "check", "-"])
        .write_stdin(missing)
        .assert()
        .code(2)
        .stderr(predicates::str::contains("<stdin>:1:1: error: missing field `kind`"));
}

#[test]
fn render_shows_the_escalation_matrix() {
    let home = tempfile::tempdir().unwrap();
    let plan = home.path().join("plan.yaml");
    std::fs::write(&plan, stdout_of(kir_at(home.path()).args(["plan", "init"]))).unwrap();
    let html = stdout_of(kir_at(home.path()).args(["plan", "render", "--format", "html"]).arg(&plan));
    assert!(html.starts_with("<!doctype html>"));
    assert!(html.contains("<h2>Escalation matrix</h2>"));
    assert!(html.contains("<td><code>soc-critical</code></td>"), "the matrix lists every policy");
    assert!(html.contains("2h, if not contained: page External incident-response firm"));
    assert!(html.contains("type=\"checkbox\""), "playbooks are checklists");
    let md = stdout_of(kir_at(home.path()).args(["plan", "render", "--format", "md"]).arg(&plan));
    assert!(md.contains("| policy | used for | level 1 | level 2 | level 3 | repeat |"));
    assert!(md.contains("| high (SEV2) | Security operations (SOC) |"));
}

#[test]
fn the_recorded_attack_becomes_soc_incidents() {
    let home = tempfile::tempdir().unwrap();
    let store = format!("sqlite:{}", home.path().join("ir.db").display());
    kir_at(home.path()).args(["hunt", "-q", "--store", &store]).arg(example()).assert().success();
    let incidents = list(home.path(), &store);
    for i in &incidents {
        for key in ["id", "title", "type", "severity", "state", "owner_role", "finding_count", "created", "updated"] {
            assert!(i.get(key).is_some(), "{key} in {i}");
        }
    }
    // Every finding about the attacker's requests sits in a high or critical incident the SOC owns.
    let attacker = common::hunt_jsonl(
        &["--actor", "system:serviceaccount:tools:ops-console", "--min-severity", "medium"],
        &example(),
    );
    assert!(!attacker.is_empty());
    let mut covered = std::collections::HashSet::new();
    for i in &incidents {
        let shown = json_of(
            kir_at(home.path())
                .args(["incident", "show", "--format", "json", "--store", &store])
                .arg(i["id"].to_string()),
        );
        if ["high", "critical"].contains(&i["severity"].as_str().unwrap()) && i["owner_role"] == "soc" {
            for f in shown["findings"].as_array().unwrap() {
                covered.insert((f["rule_id"].clone(), f["audit_ids"].clone()));
            }
        }
    }
    for f in &attacker {
        assert!(covered.contains(&(f["rule_id"].clone(), f["audit_ids"].clone())), "not in a SOC incident: {f}");
    }
    let miner = incidents.iter().find(|i| i["type"] == "cryptomining").expect("a cryptomining incident");
    assert_eq!(miner["severity"], "critical");
    // The controllers that created the miner's pods follow the attacker's incident.
    assert!(
        !incidents.iter().any(|i| i["title"].as_str().unwrap().contains("replicaset-controller")),
        "{incidents:#?}"
    );
    // alice and the kubelet never open one.
    assert!(!incidents.iter().any(|i| i["title"].as_str().unwrap().contains("alice")));
}

#[test]
fn a_benign_busy_log_opens_nothing_above_medium() {
    let home = tempfile::tempdir().unwrap();
    let log = home.path().join("busy.audit.jsonl");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&log).unwrap());
    kir_bench::generate_with(&mut file, 24 << 20, 11, false).unwrap();
    drop(file);
    let store = format!("sqlite:{}", home.path().join("ir.db").display());
    kir_at(home.path()).args(["hunt", "-q", "--store", &store]).arg(&log).assert().success();
    let incidents = list(home.path(), &store);
    for i in &incidents {
        assert!(["low", "medium"].contains(&i["severity"].as_str().unwrap()), "benign traffic raised {i}");
        assert_eq!(i["owner_role"], "devops-oncall");
    }
}

/// One hunt into a fresh store, and eight at once into another: the same incidents, each
/// finding once.
fn concurrent_hunts(reference: &str, shared: &str, home: &Path) {
    kir_at(home).args(["hunt", "-q", "--no-notify", "--store", reference]).arg(example()).assert().success();
    let bin = assert_cmd::cargo::cargo_bin("kir");
    let children: Vec<_> = (0..8)
        .map(|n| {
            std::process::Command::new(&bin)
                .args(["hunt", "-q", "--no-notify", "--store", shared])
                .arg(example())
                .env_remove("KIR_PLAN")
                .env("HOME", home)
                .env("KIR_USER", format!("hunter-{n}"))
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let shape = |store: &str| {
        let mut v: Vec<(String, String, i64)> = list(home, store)
            .iter()
            .map(|i| {
                (
                    i["title"].as_str().unwrap().to_string(),
                    i["severity"].as_str().unwrap().to_string(),
                    i["finding_count"].as_i64().unwrap(),
                )
            })
            .collect();
        v.sort();
        v
    };
    let expected = shape(reference);
    assert!(!expected.is_empty());
    assert_eq!(shape(shared), expected);
    // And every finding's timeline entry exists once.
    for i in list(home, shared) {
        let shown = json_of(
            kir_at(home).args(["incident", "show", "--format", "json", "--store", shared]).arg(i["id"].to_string()),
        );
        let entries = shown["timeline"].as_array().unwrap().iter().filter(|e| e["kind"] == "finding").count() as i64;
        assert_eq!(entries, i["finding_count"].as_i64().unwrap());
    }
}

#[test]
fn eight_concurrent_hunts_into_sqlite() {
    let home = tempfile::tempdir().unwrap();
    let reference = format!("sqlite:{}", home.path().join("one.db").display());
    let shared = format!("sqlite:{}", home.path().join("shared.db").display());
    concurrent_hunts(&reference, &shared, home.path());
}

#[test]
fn eight_concurrent_hunts_into_postgres() {
    let Some(server) = PostgresServer::start_or_skip("eight_concurrent_hunts_into_postgres") else { return };
    let home = tempfile::tempdir().unwrap();
    concurrent_hunts(&server.new_database(), &server.new_database(), home.path());
}

const T0: &str = "2026-11-28T10:00:00Z";

fn at(minutes: i64) -> String {
    let t: jiff::Timestamp = T0.parse().unwrap();
    (t + jiff::SignedDuration::from_mins(minutes)).to_string()
}

#[test]
fn escalation_at_the_plans_delays_reaches_real_receivers() {
    let home = tempfile::tempdir().unwrap();
    // The first delivery (the SOC webhook) fails once: kir tries again.
    let http = HttpReceiver::with_statuses(&[500]);
    let smtp = SmtpReceiver::start();
    let plan_text = std::fs::read_to_string(repo("crates/kir/tests/data/plan-notify.yaml"))
        .unwrap()
        .replace("HTTP_BASE", &http.url(""))
        .replace("SMTP_PORT", &smtp.port().to_string());
    let plan = home.path().join("plan.yaml");
    std::fs::write(&plan, plan_text).unwrap();
    let store = format!("sqlite:{}", home.path().join("ir.db").display());
    let run = |args: &[&str], now: &str| {
        let mut c = kir_at(home.path());
        c.args(args)
            .arg("--store")
            .arg(&store)
            .arg("--plan")
            .arg(&plan)
            .env("KIR_NOW", now)
            .env("KIR_TEST_HOOK_SECRET", "s3cret")
            .env("KIR_TEST_PD_KEY", "R0UTINGKEY");
        c
    };

    stdout_of(&mut run(
        &["incident", "open", "--title", "miner on node ip-10-0-3-17", "--severity", "high", "--type", "cryptomining"],
        T0,
    ));
    // Level 1 at 0m: soc (webhook, PagerDuty, email) and devops (Slack).
    let requests = http.wait_for(4, Duration::from_secs(10));
    let paths: Vec<&str> = requests.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(paths, ["/hook", "/hook", "/v2/enqueue", "/slack"], "the webhook is retried once after its 500");

    let hook = &requests[1];
    let body = hook.body_text();
    let timestamp = hook.header("x-kir-timestamp").expect("timestamp header");
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(b"s3cret").unwrap();
    mac.update(format!("{timestamp}.{body}").as_bytes());
    let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    assert_eq!(hook.header("x-kir-signature"), Some(expected.as_str()), "HMAC over TIMESTAMP.BODY");
    let payload: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(payload["kind"], "kir.notification");
    assert_eq!(payload["incident"]["id"], 1);
    assert_eq!(payload["incident"]["severity"], "high");
    assert_eq!(payload["incident"]["owner_role"], "soc");
    assert_eq!(payload["roles"], serde_json::json!(["soc", "devops-oncall"]));

    let pd: Value = serde_json::from_str(&requests[2].body_text()).unwrap();
    assert_eq!(pd["routing_key"], "R0UTINGKEY");
    assert_eq!(pd["event_action"], "trigger");
    assert_eq!(pd["dedup_key"], "kir-incident-1");
    assert_eq!(pd["payload"]["severity"], "error");
    assert_eq!(pd["payload"]["source"], "kir");
    let slack: Value = serde_json::from_str(&requests[3].body_text()).unwrap();
    assert!(slack["text"].as_str().unwrap().contains("high incident #1: miner on node ip-10-0-3-17"));

    let mails = smtp.wait_for(1, Duration::from_secs(10));
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].to, ["sam@example.com", "sol@example.com"]);
    assert!(mails[0].data.contains("Subject: [kir] high incident #1: miner on node ip-10-0-3-17"));

    // Nothing more until exactly 15 minutes; then the incident commander, once.
    let tick = |now: &str| -> Vec<Value> {
        let out = stdout_of(&mut run(&["incident", "tick", "--format", "json"], now));
        serde_json::from_str::<Value>(&out).unwrap().as_array().unwrap().clone()
    };
    assert!(tick(&at(0)).is_empty());
    assert!(tick(&at(14)).is_empty());
    let fired =
        tick(&format!("{}", (T0.parse::<jiff::Timestamp>().unwrap() + jiff::SignedDuration::from_secs(15 * 60 - 1))));
    assert!(fired.is_empty(), "not a second early");
    let fired = tick(&at(15));
    assert_eq!(fired.len(), 1);
    assert_eq!(
        (fired[0]["level"].as_i64(), fired[0]["notify"].clone()),
        (Some(1), serde_json::json!(["incident-commander"]))
    );
    assert!(tick(&at(15)).is_empty(), "once per level");
    let mails = smtp.wait_for(2, Duration::from_secs(10));
    assert_eq!(mails[1].to, ["ines@example.com"]);

    // Acknowledged, not contained: the 4 h level still fires.
    stdout_of(&mut run(&["incident", "ack", "1"], &at(20)));
    assert!(tick(&at(239)).is_empty());
    let fired = tick(&at(240));
    assert_eq!(fired.len(), 1);
    assert_eq!(fired[0]["level"], 2);
    assert!(tick(&at(24 * 60)).is_empty());

    // Every attempt is on the timeline.
    let shown = json_of(&mut run(&["incident", "show", "1", "--format", "json"], &at(300)));
    let attempts: Vec<&str> = shown["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "notification")
        .map(|e| e["message"].as_str().unwrap())
        .collect();
    assert!(attempts.contains(&"webhook (webhook): attempt 1 failed: HTTP 500"), "{attempts:#?}");
    assert!(attempts.contains(&"webhook (webhook): attempt 2 delivered (200)"), "{attempts:#?}");
    assert!(attempts.iter().any(|a| a.starts_with("email (email): attempt 1 delivered")), "{attempts:#?}");
    assert_eq!(attempts.len(), 7, "{attempts:#?}");
}

#[test]
fn an_incident_worked_from_report_to_close() {
    let home = tempfile::tempdir().unwrap();
    let store = format!("sqlite:{}", home.path().join("ir.db").display());
    let run = |args: &[&str], now: &str| {
        let mut c = kir_at(home.path());
        c.args(args).arg("--store").arg(&store).env("KIR_NOW", now);
        c
    };
    let opened = json_of(&mut run(
        &[
            "incident",
            "open",
            "--title",
            "miner-like CPU on node ip-10-0-3-17",
            "--severity",
            "medium",
            "--type",
            "cryptomining",
            "--seen",
            "2026-11-28T09:00:00Z",
            "--format",
            "json",
        ],
        T0,
    ));
    assert_eq!(opened["owner_role"], "devops-oncall", "the starter plan gives medium incidents to DevOps");
    let id = opened["id"].to_string();
    run(&["incident", "assign", &id, "--to", "soc"], &at(1)).assert().success();
    run(&["incident", "assign", &id, "--to", "dana"], &at(2)).assert().success();
    run(&["incident", "note", &id, "lesson:", "alert", "on", "pinned", "CPU", "earlier"], &at(3)).assert().success();
    run(&["incident", "ioc", &id, "ip:198.51.100.9", "domain:pool.example.net"], &at(3)).assert().success();
    run(&["incident", "ioc", &id, "nonsense"], &at(3)).assert().code(2);
    run(&["incident", "ack", &id], &at(5)).assert().success();
    run(&["incident", "ack", &id], &at(6)).assert().code(2).stderr(predicates::str::contains("cannot acknowledge"));
    run(&["incident", "escalate", &id], &at(7)).assert().success();
    run(&["incident", "contain", &id, "--note", "pod isolated"], &at(30)).assert().success();
    run(&["incident", "resolve", &id], &at(90)).assert().success();
    run(&["incident", "close", &id, "--reason", "maybe"], &at(95)).assert().code(2);
    run(&["incident", "close", &id, "--reason", "true-positive"], &at(95)).assert().success();
    run(&["incident", "show", "999"], &at(96))
        .assert()
        .code(2)
        .stderr(predicates::str::contains("incident 999 does not exist"));

    let shown = json_of(&mut run(&["incident", "show", &id, "--format", "json"], &at(100)));
    assert_eq!(shown["incident"]["state"], "closed");
    assert_eq!(shown["incident"]["close_reason"], "true-positive");
    assert_eq!(shown["incident"]["owner_role"], "soc");
    assert_eq!(shown["incident"]["owner"], "dana");
    let kinds: Vec<&str> = shown["timeline"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    for k in ["opened", "assigned", "note", "ioc", "acknowledged", "escalated", "contained", "resolved", "closed"] {
        assert!(kinds.contains(&k), "{k} in {kinds:?}");
    }
    assert!(shown["timeline"].as_array().unwrap().iter().all(|e| e["who"] == "tester" || e["who"] == "kir"));

    let md = stdout_of(&mut run(&["incident", "report", &id, "--format", "md"], &at(100)));
    for section in [
        "## Summary",
        "## Response metrics",
        "## Timeline",
        "## Findings",
        "## Affected objects",
        "## Indicators of compromise",
        "## Actions",
        "## Evidence",
        "## Lessons learned",
    ] {
        assert!(md.contains(section), "{section}");
    }
    assert!(md.contains("| time to detect (first event → incident) | 1h 00m |"), "{md}");
    assert!(md.contains("| time to contain | 30m 00s |"));
    assert!(md.contains("- lesson: alert on pinned CPU earlier (tester)"));
    assert!(md.contains("`198.51.100.9`"));
    let chart = home.path().join("chart.svg");
    let html = stdout_of(run(&["incident", "report", &id, "--format", "html"], &at(100)).arg("--chart").arg(&chart));
    assert!(html.contains("<div class=\"chart\"><svg"));
    assert!(std::fs::read_to_string(&chart).unwrap().starts_with("<svg"));

    let metrics = json_of(&mut run(&["metrics", "--since", "30d", "--format", "json"], &at(100)));
    assert_eq!(metrics["overall"]["incidents"], 1);
    assert_eq!(metrics["overall"]["time_to_acknowledge"]["median_ms"], 5 * 60_000);
    assert_eq!(metrics["overall"]["time_to_resolve"]["median_ms"], 90 * 60_000);
    assert_eq!(metrics["closed_as"]["true-positive"], 1);
}

#[test]
fn false_positives_are_counted_by_rule() {
    let home = tempfile::tempdir().unwrap();
    let store = format!("sqlite:{}", home.path().join("ir.db").display());
    kir_at(home.path()).args(["hunt", "-q", "--no-notify", "--store", &store]).arg(example()).assert().success();
    let incidents = list(home.path(), &store);
    let admin =
        incidents.iter().find(|i| i["title"].as_str().unwrap().ends_with("(admin)")).expect("the admin's incident");
    kir_at(home.path())
        .args(["incident", "close", &admin["id"].to_string(), "--reason", "false-positive", "--store", &store])
        .assert()
        .success();
    let metrics = json_of(kir_at(home.path()).args(["metrics", "--format", "json", "--store", &store]));
    let rules = metrics["false_positive_rules"].as_array().unwrap();
    assert!(!rules.is_empty());
    assert_eq!(
        rules.iter().map(|r| r["false_positive_findings"].as_i64().unwrap()).sum::<i64>(),
        admin["finding_count"].as_i64().unwrap()
    );
    let table = stdout_of(kir_at(home.path()).args(["metrics", "--store", &store]));
    assert!(table.contains("## Rules behind false positives"));
}

/// The eight Kubernetes techniques of Stratus Red Team, as audit events shaped after their
/// documented API calls (tests/data/stratus-like.audit.jsonl): each actor's incident is high or
/// critical and belongs to the SOC.
#[test]
fn stratus_techniques_become_soc_incidents() {
    let home = tempfile::tempdir().unwrap();
    let store = format!("sqlite:{}", home.path().join("ir.db").display());
    let data = repo("crates/kir/tests/data/stratus-like.audit.jsonl");
    kir_at(home.path()).args(["hunt", "-q", "--no-notify", "--store", &store]).arg(&data).assert().success();
    let incidents = list(home.path(), &store);
    let actors = [
        "stratus-dump-secrets@example.com",
        "stratus-steal-token@example.com",
        "stratus-admin-role@example.com",
        "stratus-client-cert@example.com",
        "stratus-token@example.com",
        "stratus-hostpath@example.com",
        "stratus-nodes-proxy@example.com",
        "system:serviceaccount:stratus-red-team-nodes-proxy:stratus-red-team-sa",
        "stratus-privileged@example.com",
    ];
    assert_eq!(incidents.len(), actors.len(), "{incidents:#?}");
    for actor in actors {
        let i = incidents
            .iter()
            .find(|i| i["title"].as_str().unwrap().ends_with(&format!("({actor})")))
            .unwrap_or_else(|| panic!("an incident for {actor}: {incidents:#?}"));
        assert!(["high", "critical"].contains(&i["severity"].as_str().unwrap()), "{i}");
        assert_eq!(i["owner_role"], "soc", "{i}");
    }
}

/// The starter plan as it is, its channels pointed at local receivers by environment variables.
#[test]
fn the_starter_plan_notifies_through_its_environment_variables() {
    let home = tempfile::tempdir().unwrap();
    let http = HttpReceiver::start();
    let smtp = SmtpReceiver::start();
    let store = format!("sqlite:{}", home.path().join("ir.db").display());
    kir_at(home.path())
        .args([
            "incident",
            "open",
            "--title",
            "cloud credentials read by a pod",
            "--severity",
            "high",
            "--type",
            "credential-access",
            "--store",
            &store,
        ])
        .env("KIR_NOW", T0)
        .env("KIR_SOC_WEBHOOK_URL", http.url("/soc"))
        .env("KIR_SOC_WEBHOOK_SECRET", "k")
        .env("KIR_SLACK_DEVOPS_URL", http.url("/slack"))
        .env("KIR_PAGERDUTY_ROUTING_KEY", "rk")
        .env("KIR_PAGERDUTY_URL", http.url("/pd"))
        .env("KIR_SMTP_HOST", "127.0.0.1")
        .env("KIR_SMTP_PORT", smtp.port().to_string())
        .env("KIR_SMTP_TLS", "none")
        .assert()
        .success();
    let mut paths: Vec<String> = http.wait_for(3, Duration::from_secs(10)).iter().map(|r| r.path.clone()).collect();
    paths.sort();
    assert_eq!(paths, ["/pd", "/slack", "/soc"]);
    let mut to: Vec<Vec<String>> = smtp.wait_for(2, Duration::from_secs(10)).into_iter().map(|m| m.to).collect();
    to.sort();
    assert_eq!(to, [vec!["devops-oncall@example.com".to_string()], vec!["soc@example.com".to_string()]]);
}

/// A page whose every channel failed is not lost: the level fires again at the next tick, and
/// the tick says so with exit code 1.
#[test]
fn a_failed_page_fires_again_at_the_next_tick() {
    let home = tempfile::tempdir().unwrap();
    // Six failures: every attempt of the first two deliveries.
    let http = HttpReceiver::with_statuses(&[503, 503, 503, 503, 503, 503]);
    let store = format!("sqlite:{}", home.path().join("ir.db").display());
    let run = |args: &[&str], now: &str| {
        let mut c = kir_at(home.path());
        c.args(args).args(["--store", &store]).env("KIR_NOW", now).env("KIR_SLACK_DEVOPS_URL", http.url("/slack"));
        c
    };
    run(&["incident", "open", "--title", "odd CPU on a node", "--severity", "medium"], T0).assert().success();
    assert_eq!(http.wait_for(3, Duration::from_secs(20)).len(), 3, "three attempts");
    // Still down: the tick tries again and says it failed.
    run(&["incident", "tick"], &at(1)).assert().code(1).stderr(predicates::str::contains("1 failed"));
    // The receiver is back: the next tick delivers the same level.
    let out = run(&["incident", "tick", "--format", "json"], &at(2)).assert().code(0).get_output().stdout.clone();
    let fired: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(fired.as_array().unwrap().len(), 1, "{fired}");
    assert_eq!(fired[0]["level"], 0);
    assert_eq!(http.wait_for(7, Duration::from_secs(10)).len(), 7);
    let shown = json_of(&mut run(&["incident", "show", "1", "--format", "json"], &at(3)));
    let text = shown["timeline"].to_string();
    assert!(text.contains("no channel delivered escalation level 1: it fires again at the next tick"), "{text}");
    assert!(text.contains("slack-devops (slack): attempt 1 delivered (200)"), "{text}");
}
