//! `kir drill` through the binary, into a real store: every bundled attack is detected with an
//! incident, ordinary operations open nothing above medium, drill incidents stay apart from
//! real ones, nobody is paged unless asked, and the report measures the response.

mod common;

use std::path::Path;
use std::time::Duration;

use assert_cmd::Command;
use common::{example, kir, stdout_of};
use kir_testkit::HttpReceiver;
use serde_json::Value;

fn kir_at(home: &Path, store: &str) -> Command {
    let mut c = kir();
    c.env_remove("KIR_PLAN")
        .env_remove("KIR_NOW")
        .env("HOME", home)
        .env("KIR_USER", "drill-lead")
        .env("KIR_STORE", store);
    for var in ["KIR_SOC_WEBHOOK_URL", "KIR_SLACK_DEVOPS_URL", "KIR_PAGERDUTY_URL", "KIR_SMTP_HOST"] {
        c.env_remove(var);
    }
    c
}

fn drill_json(home: &Path, store: &str, args: &[&str]) -> Value {
    let out = stdout_of(kir_at(home, store).args(["drill", "run", "--format", "json"]).args(args));
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

fn incidents(home: &Path, store: &str) -> Vec<Value> {
    let out = stdout_of(kir_at(home, store).args(["incident", "list", "--format", "json"]));
    serde_json::from_str::<Value>(&out).unwrap().as_array().unwrap().clone()
}

const ATTACKS: &[&str] = &[
    "exposed-console-cryptojack",
    "stratus-dump-secrets",
    "stratus-privileged-pod",
    "stratus-hostpath-volume",
    "stratus-create-token",
];

#[test]
fn every_bundled_attack_is_detected_with_an_incident_and_ordinary_work_is_not() {
    let home = tempfile::tempdir().unwrap();
    let store = format!("sqlite:{}", home.path().join("kir.db").display());
    for scenario in ATTACKS {
        let o = drill_json(home.path(), &store, &[scenario]);
        assert_eq!(o["detected"], true, "{scenario}: {o}");
        assert!(!o["incidents"].as_array().unwrap().is_empty(), "{scenario}: {o}");
        assert!(o["findings"].as_u64().unwrap() >= 1);
        assert!(o["time_to_detect_s"].as_f64().is_some_and(|t| t >= 0.0), "{o}");
        assert_eq!(o["notified"], false);
    }
    let quiet = drill_json(home.path(), &store, &["ordinary-operations"]);
    let ids: Vec<i64> = quiet["incidents"].as_array().unwrap().iter().filter_map(Value::as_i64).collect();
    for i in incidents(home.path(), &store) {
        if ids.contains(&i["id"].as_i64().unwrap()) {
            assert!(matches!(i["severity"].as_str(), Some("low" | "medium" | "informational")), "{i}");
        }
    }
    assert!(quiet["highest_incident_severity"].as_str().is_none_or(|s| s == "medium" || s == "low"), "{quiet}");
    let runs = stdout_of(kir_at(home.path(), &store).args(["drill", "list", "--runs"]));
    assert_eq!(runs.lines().count(), 1 + ATTACKS.len() + 1, "{runs}");
}

#[test]
fn a_replayed_recording_moves_to_now_and_stays_apart_from_real_incidents() {
    let home = tempfile::tempdir().unwrap();
    let store = format!("sqlite:{}", home.path().join("kir.db").display());
    // The real incident, from the same log.
    kir_at(home.path(), &store).args(["hunt", "-q", "--no-notify"]).arg(example()).assert().success();
    let real = incidents(home.path(), &store);
    assert!(!real.is_empty());
    let now = "2026-12-03T09:00:00Z";
    let out = stdout_of(
        kir_at(home.path(), &store)
            .env("KIR_NOW", now)
            .args(["drill", "run", "--format", "json", "--replay"])
            .arg(example()),
    );
    let o: Value = serde_json::from_str(&out).unwrap();
    for key in ["detected", "time_to_detect_s", "incidents", "findings"] {
        assert!(o.get(key).is_some(), "{key} in {o}");
    }
    assert_eq!(o["detected"], true);
    let drilled: Vec<i64> = o["incidents"].as_array().unwrap().iter().filter_map(Value::as_i64).collect();
    let after = incidents(home.path(), &store);
    for r in &real {
        let same = after.iter().find(|i| i["id"] == r["id"]).unwrap();
        assert_eq!(same["findings"], r["findings"], "a drill adds nothing to a real incident");
        assert!(!drilled.contains(&r["id"].as_i64().unwrap()));
    }
    for id in &drilled {
        let i = after.iter().find(|i| i["id"] == *id).unwrap();
        assert!(i["title"].as_str().unwrap().starts_with("DRILL: "), "{i}");
        // The recording's first event happens at KIR_NOW; the incident's events are after it.
        let shown =
            stdout_of(kir_at(home.path(), &store).args(["incident", "show", &id.to_string(), "--format", "json"]));
        let shown: Value = serde_json::from_str(&shown).unwrap();
        let first =
            shown["incident"]["first_event"].as_str().or(shown["first_event"].as_str()).unwrap_or_default().to_string();
        assert!(first.as_str() >= now && first.starts_with("2026-12-03"), "moved to now: {first} in {shown}");
    }
    // A drill is measured beside the real incidents, not in them.
    let metrics: Value =
        serde_json::from_str(&stdout_of(kir_at(home.path(), &store).args(["metrics", "--format", "json"]))).unwrap();
    assert_eq!(metrics["overall"]["incidents"].as_u64().unwrap() as usize, real.len(), "{metrics}");
    assert_eq!(metrics["drills"]["incidents"].as_u64().unwrap() as usize, drilled.len());
}

#[test]
fn nobody_is_paged_unless_the_drill_says_notify() {
    let home = tempfile::tempdir().unwrap();
    let store = format!("sqlite:{}", home.path().join("kir.db").display());
    let http = HttpReceiver::start();
    let run = |args: &[&str]| {
        let mut c = kir_at(home.path(), &store);
        c.args(["drill", "run", "-q", "stratus-privileged-pod"])
            .args(args)
            .env("KIR_SOC_WEBHOOK_URL", http.url("/soc"))
            .env("KIR_SOC_WEBHOOK_SECRET", "k")
            .env("KIR_SLACK_DEVOPS_URL", http.url("/slack"));
        c
    };
    run(&[]).assert().success();
    std::thread::sleep(Duration::from_millis(300));
    assert!(http.requests().is_empty(), "a drill pages nobody by default: {:?}", http.requests());
    let shown = stdout_of(kir_at(home.path(), &store).args(["incident", "show", "1"]));
    assert!(shown.contains("not sent"), "the timeline says what would have been sent: {shown}");
    run(&["--notify"]).assert().success();
    let pages = http.wait_for(1, Duration::from_secs(10));
    assert!(!pages.is_empty());
    assert!(String::from_utf8_lossy(&pages[0].body).contains("DRILL: "), "the page says it is a drill");
}

#[test]
fn the_report_measures_the_response_against_the_plans_targets() {
    let home = tempfile::tempdir().unwrap();
    let store = format!("sqlite:{}", home.path().join("kir.db").display());
    let o = drill_json(home.path(), &store, &["stratus-dump-secrets"]);
    let incident = o["incidents"][0].as_i64().unwrap();
    let drill = o["drill"].as_i64().unwrap();
    kir_at(home.path(), &store).args(["incident", "ack", &incident.to_string()]).assert().success();
    let report: Value = serde_json::from_str(&stdout_of(kir_at(home.path(), &store).args([
        "drill",
        "report",
        &drill.to_string(),
        "--format",
        "json",
    ])))
    .unwrap();
    assert_eq!(report["outcome"]["detected"], true);
    let steps = &report["incidents"][0]["steps"];
    assert_eq!(steps[0]["step"], "acknowledged");
    assert_eq!(steps[0]["verdict"], "met", "acknowledged within the plan's respondWithin: {report}");
    assert!(report["incidents"][0]["respond_within_s"].as_f64().unwrap() > 0.0);
    assert_eq!(steps[1]["verdict"], "no target");
    let md = stdout_of(kir_at(home.path(), &store).args(["drill", "report", &drill.to_string()]));
    assert!(md.contains("# Drill ") && md.contains("**Detected:** yes") && md.contains("(met)"), "{md}");
    let html = stdout_of(kir_at(home.path(), &store).args(["drill", "report", &drill.to_string(), "--format", "html"]));
    assert!(html.contains("<table>"));
    kir_at(home.path(), &store).args(["drill", "report", "99"]).assert().code(2);
}

#[test]
fn speed_replays_in_scaled_real_time_and_bad_input_is_refused() {
    let home = tempfile::tempdir().unwrap();
    let store = format!("sqlite:{}", home.path().join("kir.db").display());
    // The finding is 12 s into the recording: at 20× it is filed 0.6 s after the start.
    let o = drill_json(home.path(), &store, &["stratus-privileged-pod", "--speed", "20"]);
    let opened = o["time_to_open_s"].as_f64().unwrap();
    assert!(opened >= 0.5, "filed when its time came, not at once: {o}");
    assert_eq!(o["speed"], 20.0);
    kir_at(home.path(), &store).args(["drill", "run", "stratus-privileged-pod", "--speed", "-1"]).assert().code(2);
    kir_at(home.path(), &store)
        .args(["drill", "run", "no-such-scenario"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("stratus-dump-secrets"));
    kir_at(home.path(), &store).args(["drill", "run", "--replay", "/nonexistent/rec.jsonl"]).assert().code(2);
    let empty = home.path().join("empty.jsonl");
    std::fs::write(&empty, "not an audit log\n").unwrap();
    kir_at(home.path(), &store).args(["drill", "run", "--replay"]).arg(&empty).assert().code(2);
}

#[test]
fn metrics_show_drills_week_by_week_with_a_chart() {
    let home = tempfile::tempdir().unwrap();
    let store = format!("sqlite:{}", home.path().join("kir.db").display());
    let at = |now: &str, args: &[&str]| {
        let mut c = kir_at(home.path(), &store);
        c.env("KIR_NOW", now).args(args);
        c
    };
    // Two drills a week apart; the second is worked faster.
    for (start, ack, contain) in [
        ("2026-11-23T10:00:00Z", "2026-11-23T10:20:00Z", "2026-11-23T11:00:00Z"),
        ("2026-11-30T10:00:00Z", "2026-11-30T10:05:00Z", "2026-11-30T10:15:00Z"),
    ] {
        let out = stdout_of(&mut at(start, &["drill", "run", "stratus-privileged-pod", "--format", "json"]));
        let o: Value = serde_json::from_str(&out).unwrap();
        let id = o["incidents"][0].as_i64().unwrap().to_string();
        at(ack, &["incident", "ack", &id]).assert().success();
        at(contain, &["incident", "contain", &id]).assert().success();
    }
    let m: Value =
        serde_json::from_str(&stdout_of(&mut at("2026-12-01T00:00:00Z", &["metrics", "--format", "json"]))).unwrap();
    let trend = m["trend"].as_array().unwrap();
    assert_eq!(trend.iter().map(|p| p["week"].as_str().unwrap()).collect::<Vec<_>>(), ["2026-W48", "2026-W49"]);
    assert_eq!(trend[0]["drills"]["time_to_contain"]["median_ms"], 3_600_000);
    assert_eq!(trend[1]["drills"]["time_to_contain"]["median_ms"], 900_000);
    assert_eq!(trend[1]["real"]["incidents"], 0);
    let html = stdout_of(&mut at("2026-12-01T00:00:00Z", &["metrics", "--format", "html"]));
    assert!(html.contains("<svg") && html.contains("<polyline"), "a chart of the trend");
}

#[test]
fn a_tabletop_records_who_answered_what_and_when_and_the_report_measures_it() {
    let home = tempfile::tempdir().unwrap();
    let store = format!("sqlite:{}", home.path().join("kir.db").display());
    // Step 1 by dana, step 2 skipped, step 3 (isolate-pod, a containment) by lee, then the input ends.
    let out = kir_at(home.path(), &store)
        .args(["drill", "run", "stratus-privileged-pod", "--tabletop", "--format", "json"])
        .write_stdin("dana\ncollected the pod and its node\n\nlee\nisolated it with kir contain isolate\n")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let prompts = String::from_utf8_lossy(&out.stderr);
    assert!(prompts.contains("step 1/") && prompts.contains("who does it?"), "{prompts}");
    let o: Value = serde_json::from_slice(&out.stdout).unwrap();
    let answers = o["tabletop"].as_array().unwrap();
    assert_eq!(answers.len(), 2, "{o}");
    assert_eq!((answers[0]["who"].as_str(), answers[0]["step"].as_u64()), (Some("dana"), Some(1)));
    assert_eq!((answers[1]["who"].as_str(), answers[1]["action"].as_str()), (Some("lee"), Some("isolate-pod")));
    let id = o["incidents"][0].as_i64().unwrap().to_string();
    let shown = stdout_of(kir_at(home.path(), &store).args(["incident", "show", &id]));
    assert!(shown.contains("tabletop: step 1 collect-evidence by dana: collected the pod and its node"), "{shown}");
    let report: Value = serde_json::from_str(&stdout_of(kir_at(home.path(), &store).args([
        "drill",
        "report",
        &o["drill"].to_string(),
        "--format",
        "json",
    ])))
    .unwrap();
    let steps = &report["incidents"][0]["steps"];
    assert_eq!(steps[0]["verdict"], "met", "the first answer acknowledged it: {report}");
    assert!(steps[1]["after_s"].as_f64().is_some(), "the containment step contained it: {report}");
}
