//! Inputs of every form, and bad input: counted and reported with file and line, never fatal for
//! the lines that were good.

use std::io::Write;
use std::path::Path;

mod common;

use common::{kir, stdout_of};
use predicates::prelude::*;
use serde_json::{Value, json};

fn event(id: &str, stage: &str, verb: &str, user: &str) -> Value {
    json!({
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata", "auditID": id, "stage": stage,
        "requestURI": "/api/v1/secrets", "verb": verb,
        "user": {"username": user, "groups": ["system:authenticated"]},
        "sourceIPs": ["10.0.0.7"], "userAgent": "kubectl/v1.30.0",
        "objectRef": {"resource": "secrets", "apiVersion": "v1"},
        "responseStatus": {"code": 200},
        "requestReceivedTimestamp": "2026-11-27T10:00:00.000000Z", "stageTimestamp": "2026-11-27T10:00:00.100000Z",
        "annotations": {"authorization.k8s.io/decision": "allow"}
    })
}

/// A cluster-wide secret dump: one line per stage.
fn dump_lines(id: &str) -> String {
    let mut received = event(id, "RequestReceived", "list", "mallory");
    received.as_object_mut().unwrap().remove("responseStatus");
    format!("{received}\n{}\n", event(id, "ResponseComplete", "list", "mallory"))
}

fn hunt_json(args: &[&str], path: &Path) -> (i32, Value, String) {
    let out = kir().args(["hunt", "--format", "json"]).args(args).arg(path).output().unwrap();
    let doc = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out.status.code().unwrap(), doc, String::from_utf8_lossy(&out.stderr).into_owned())
}

fn dump_findings(doc: &Value) -> usize {
    doc["findings"].as_array().unwrap().iter().filter(|f| f["rule_name"] == "secrets-listed-across-namespaces").count()
}

#[test]
fn stages_of_one_request_are_one_event() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    std::fs::write(&path, dump_lines("a-1")).unwrap();
    let (code, doc, _) = hunt_json(&[], &path);
    assert_eq!(code, 0);
    assert_eq!(doc["stats"]["records"], 2);
    assert_eq!(doc["stats"]["events"], 1);
    assert_eq!(dump_findings(&doc), 1);
    let f = &doc["findings"].as_array().unwrap()[0];
    assert_eq!(f["audit_ids"], json!(["a-1"]));
    assert_eq!(f["source"]["line"], 1, "the finding points at the request's first line");
}

#[test]
fn bad_lines_are_counted_reported_and_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let mut f = std::fs::File::create(&path).unwrap();
    f.write_all(dump_lines("ok-1").as_bytes()).unwrap();
    f.write_all(b"{\"kind\":\"Event\",\"verb\":\n").unwrap(); // line 3: cut JSON
    f.write_all(b"\xff\xfe not utf-8\n").unwrap(); // line 4
    f.write_all(b"{\"hello\":\"world\"}\n").unwrap(); // line 5: JSON, not an event
    f.write_all(b"{\"kind\":\"Event\",\"auditID\":\"x\",\"verb\":42}\n").unwrap(); // line 6: wrong type
    f.write_all(format!("{}\n", "x".repeat(5000)).as_bytes()).unwrap(); // line 7: oversized
    f.write_all(dump_lines("ok-2").as_bytes()).unwrap();
    drop(f);
    let (code, doc, stderr) = hunt_json(&["--max-line", "4096"], &path);
    assert_eq!(code, 0, "skipped lines are not fatal: {stderr}");
    assert_eq!(dump_findings(&doc), 2, "nothing accepted is lost");
    let skipped = &doc["stats"]["skipped"];
    assert_eq!(skipped["malformed JSON"], 1, "{skipped}");
    assert_eq!(skipped["invalid UTF-8"], 1);
    assert_eq!(skipped["not an audit event"], 2);
    assert_eq!(skipped["oversized line"], 1);
    assert!(stderr.contains("audit.log:3: malformed JSON"), "{stderr}");
    assert!(stderr.contains("skipped 5"), "{stderr}");
}

#[test]
fn truncated_archives_keep_what_came_before() {
    let dir = tempfile::tempdir().unwrap();
    let mut plain = String::new();
    for i in 0..2000 {
        plain.push_str(&dump_lines(&format!("id-{i}")));
    }
    let gz = dir.path().join("audit.log.gz");
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(plain.as_bytes()).unwrap();
    let bytes = enc.finish().unwrap();
    std::fs::write(&gz, &bytes[..bytes.len() / 2]).unwrap();
    let zst = dir.path().join("audit.log.zst");
    let bytes = zstd::encode_all(plain.as_bytes(), 3).unwrap();
    std::fs::write(&zst, &bytes[..bytes.len() / 2]).unwrap();
    for path in [gz, zst] {
        let (code, doc, stderr) = hunt_json(&[], &path);
        assert_eq!(code, 0, "{stderr}");
        assert_eq!(doc["stats"]["skipped"]["truncated input"], 1, "{}: {}", path.display(), doc["stats"]);
        let found = dump_findings(&doc);
        assert!(found > 100 && found < 2000, "{}: {found} findings before the cut", path.display());
        assert!(stderr.contains("truncated input"), "{stderr}");
    }
}

#[test]
fn compressed_folders_rotations_and_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let nested = dir.path().join("node-1");
    std::fs::create_dir(&nested).unwrap();
    std::fs::write(nested.join("audit.log"), dump_lines("plain")).unwrap();
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(dump_lines("gz").as_bytes()).unwrap();
    std::fs::write(nested.join("audit.log.2.gz"), enc.finish().unwrap()).unwrap();
    std::fs::write(nested.join("audit.log.1.zst"), zstd::encode_all(dump_lines("zst").as_bytes(), 3).unwrap()).unwrap();
    let (code, doc, _) = hunt_json(&[], dir.path());
    assert_eq!(code, 0);
    assert_eq!(doc["stats"]["files"], 3);
    assert_eq!(dump_findings(&doc), 3);

    let text = stdout_of(kir().args(["hunt", "--format", "jsonl", "-"]).write_stdin(dump_lines("stdin")));
    assert!(text.lines().any(|l| l.contains("\"stdin\"")), "{text}");
}

#[test]
fn wrappers_of_cloud_providers_are_recognized() {
    let dir = tempfile::tempdir().unwrap();
    let inner = event("w-1", "ResponseComplete", "list", "mallory").to_string();
    let lines = [
        // AKS diagnostic export.
        json!({"records": [{"category": "kube-audit", "properties": {"log": inner, "pod": "kube-apiserver-0"}}]}).to_string(),
        // EKS through CloudWatch Logs Insights.
        json!({"@timestamp": "2026-11-27 10:00:00.000", "@message": inner.replace("w-1", "w-2")}).to_string(),
        // The API server's webhook batches.
        json!({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": [serde_json::from_str::<Value>(&inner.replace("w-1", "w-3")).unwrap()]}).to_string(),
        // A CloudWatch export line.
        format!("2026-11-27T10:00:00.000Z {}", inner.replace("w-1", "w-4")),
    ];
    let path = dir.path().join("mixed.log");
    std::fs::write(&path, lines.join("\n")).unwrap();
    let (code, doc, stderr) = hunt_json(&[], &path);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(dump_findings(&doc), 4, "{doc}");
    assert!(doc["stats"]["skipped"].as_object().unwrap().is_empty());
}

#[test]
fn a_missing_path_is_a_usage_error() {
    kir()
        .args(["hunt", "/nonexistent/audit.log"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("/nonexistent/audit.log"));
    kir().args(["hunt"]).assert().code(2);
    kir().args(["hunt", "--min-severity", "severe", "x"]).assert().code(2);
}

#[test]
fn a_non_audit_file_in_a_folder_is_a_warning_not_an_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("README.txt"), "these are the audit logs of cluster x\n").unwrap();
    std::fs::write(dir.path().join("audit.log"), dump_lines("a")).unwrap();
    let (code, doc, stderr) = hunt_json(&[], dir.path());
    assert_eq!(code, 0);
    assert!(stderr.contains("README.txt: not a Kubernetes audit log"), "{stderr}");
    assert_eq!(dump_findings(&doc), 1);
}

#[test]
fn falco_alerts_become_findings() {
    let dir = tempfile::tempdir().unwrap();
    let alert = json!({
        "output": "Shell spawned in a container (user=root container=web)", "priority": "Warning",
        "rule": "Terminal shell in container", "time": "2026-11-27T10:00:00.000000000Z", "source": "syscall",
        "tags": ["container", "shell", "mitre_execution", "T1059"], "hostname": "node-1",
        "output_fields": {"k8s.ns.name": "shop", "k8s.pod.name": "web-1", "user.name": "root"}
    });
    let path = dir.path().join("falco.jsonl");
    std::fs::write(&path, format!("{alert}\n")).unwrap();
    let (code, doc, _) = hunt_json(&[], &path);
    assert_eq!(code, 0);
    let f = &doc["findings"][0];
    assert_eq!(f["rule_id"], "falco:Terminal shell in container");
    assert_eq!(f["severity"], "medium");
    assert_eq!(f["techniques"], json!(["T1059"]));
    assert_eq!(f["object"]["namespace"], "shop");
    assert_eq!(f["object"]["name"], "web-1");
}

#[test]
fn csv_output_is_quoted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    std::fs::write(&path, dump_lines("c-1")).unwrap();
    let out = kir().args(["hunt", "--format", "csv"]).arg(&path).assert().success().get_output().stdout.clone();
    let text = String::from_utf8(out).unwrap();
    let mut lines = text.lines();
    assert!(lines.next().unwrap().starts_with("severity,time,rule_id,title,user"));
    assert!(text.contains(",mallory,10.0.0.7,"), "{text}");

    // The attacker chooses the user name: a spreadsheet must show it, not run it.
    let hostile = "=HYPERLINK(\"http://evil.example\",\"open\")";
    std::fs::write(&path, dump_lines("c-2").replace("mallory", &hostile.replace('"', "\\\""))).unwrap();
    let out = kir().args(["hunt", "--format", "csv"]).arg(&path).assert().success().get_output().stdout.clone();
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains(",\"'=HYPERLINK(\"\"http://evil.example\"\",\"\"open\"\")\","), "{text}");
    assert!(!text.contains(",=HYPERLINK") && !text.contains(",\"=HYPERLINK"), "{text}");
}

#[test]
fn an_earlier_stage_that_knows_more_is_merged_before_matching() {
    // Some exporters trim the last stage: the body is only in RequestReceived.
    let received = json!({
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "auditID": "p-1", "stage": "RequestReceived",
        "verb": "create", "requestURI": "/api/v1/namespaces/shop/pods", "user": {"username": "mallory"},
        "objectRef": {"resource": "pods", "namespace": "shop", "name": "x", "apiVersion": "v1"},
        "requestObject": {"kind": "Pod", "spec": {"containers": [{"name": "x", "image": "nginx", "securityContext": {"privileged": true}}]}}
    });
    let complete = json!({
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "auditID": "p-1", "stage": "ResponseComplete",
        "verb": "create", "requestURI": "/api/v1/namespaces/shop/pods", "user": {"username": "mallory"},
        "objectRef": {"resource": "pods", "namespace": "shop", "name": "x", "apiVersion": "v1"},
        "responseStatus": {"code": 201}
    });
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    std::fs::write(&path, format!("{received}\n{complete}\n")).unwrap();
    for threads in ["1", "2"] {
        let (code, doc, _) = hunt_json(&["--threads", threads], &path);
        assert_eq!(code, 0);
        assert_eq!(doc["stats"]["events"], 1);
        let privileged: Vec<&Value> =
            doc["findings"].as_array().unwrap().iter().filter(|f| f["rule_name"] == "privileged-container").collect();
        assert_eq!(privileged.len(), 1, "threads {threads}: {doc}");
        assert_eq!(privileged[0]["response_code"], 201);
        assert_eq!(privileged[0]["source"]["line"], 1);
    }
}

/// Times on the command line: one parser for every command, ages counted from `KIR_NOW`, and an
/// age past the calendar is an error that says so (it used to panic in timestamp arithmetic).
#[test]
fn time_arguments_mean_the_same_everywhere_and_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    std::fs::write(&path, dump_lines("t-1")).unwrap();
    for args in [["--since", "700000w"], ["--until", "99999999999999999999d"]] {
        kir()
            .args(["hunt"])
            .args(args)
            .arg(&path)
            .assert()
            .code(2)
            .stderr(predicates::str::contains("out of range"))
            .stderr(predicates::str::contains("panicked").not());
    }
    // The event is at 2026-11-27T10:00:00Z: an age from KIR_NOW keeps it or leaves it out.
    let count = |since: &str, now: &str| {
        let out =
            kir().env("KIR_NOW", now).args(["hunt", "--format", "json", "--since", since]).arg(&path).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
        dump_findings(&doc)
    };
    assert_eq!(count("1h", "2026-11-27T10:30:00Z"), 1);
    assert_eq!(count("1h", "2026-11-27T12:00:00Z"), 0);
    assert_eq!(count("2026-11-27 09:59", "2030-01-01T00:00:00Z"), 1, "a date and time in UTC, with a space");
    assert_eq!(count("2026-11-27 10:01", "2030-01-01T00:00:00Z"), 0);

    // The same forms in kir metrics and kir incident list.
    let store = format!("sqlite:{}", dir.path().join("t.db").display());
    for args in [vec!["metrics", "--since", "2026-11-27 23:50"], vec!["incident", "list", "--since", "7d"]] {
        kir().args(["--store", &store]).args(&args).assert().success();
    }
    kir()
        .args(["--store", &store, "metrics", "--since", "700000w"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("--since: duration \"700000w\" is out of range"));
    kir()
        .env("KIR_NOW", "not a time")
        .args(["hunt", "--since", "1h"])
        .arg(&path)
        .assert()
        .code(2)
        .stderr(predicates::str::contains("KIR_NOW"));
}

/// A correlation window past what kir can count with is a rule error with its file, not a panic
/// when the first event arrives.
#[test]
fn a_correlation_timespan_out_of_range_is_a_rule_error() {
    let dir = tempfile::tempdir().unwrap();
    let rule = dir.path().join("burst.yml");
    std::fs::write(
        &rule,
        "title: burst\nname: my-burst\ncorrelation:\n  type: event_count\n  rules: [secret-read-by-user]\n  group-by: [user.username]\n  timespan: 700000w\n  condition:\n    gte: 2\nlevel: medium\n",
    )
    .unwrap();
    let out = kir().args(["rules", "check"]).arg(&rule).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(said.contains("burst.yml") && said.contains("timespan") && said.contains("out of range"), "{said}");
    assert!(!said.contains("panicked"), "{said}");
}
