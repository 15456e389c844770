//! The stages of one request are one request, in whatever order the log holds them.

mod common;

use serde_json::Value;

#[test]
fn a_request_whose_last_stage_comes_first_is_reported_once() {
    let recording = common::repo("crates/kir-drill/scenarios/stratus-privileged-pod.audit.jsonl");
    let text = std::fs::read_to_string(recording).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    // The pod create's two stages, swapped: ResponseComplete before RequestReceived.
    let at = lines.iter().position(|l| l.contains("\"verb\":\"create\"") && l.contains("RequestReceived")).unwrap();
    assert!(lines[at + 1].contains("ResponseComplete"));
    lines.swap(at, at + 1);
    let dir = tempfile::tempdir().unwrap();
    let swapped = dir.path().join("swapped.jsonl");
    std::fs::write(&swapped, lines.join("\n") + "\n").unwrap();
    let findings: Vec<Value> = common::hunt_jsonl(&["--rule", "privileged-container"], &swapped);
    assert_eq!(findings.len(), 1, "one request, one finding: {findings:?}");
    let in_order = common::hunt_jsonl(
        &["--rule", "privileged-container"],
        &common::repo("crates/kir-drill/scenarios/stratus-privileged-pod.audit.jsonl"),
    );
    assert_eq!(in_order.len(), 1);
    assert_eq!(findings[0]["audit_ids"], in_order[0]["audit_ids"]);
}

/// One stage of a pod create as the API server writes it (its members in the server's order).
fn pod_stage(id: &str, stage: &str, body: bool, code: Option<u16>) -> String {
    let body = if body {
        r#","requestObject":{"kind":"Pod","apiVersion":"v1","metadata":{"name":"x"},"spec":{"containers":[{"name":"x","image":"nginx","securityContext":{"privileged":true}}]}}"#
    } else {
        ""
    };
    let status = code.map(|c| format!(r#","responseStatus":{{"metadata":{{}},"code":{c}}}"#)).unwrap_or_default();
    format!(
        r#"{{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Request","auditID":"{id}","stage":"{stage}","requestURI":"/api/v1/namespaces/shop/pods","verb":"create","user":{{"username":"mallory","groups":["system:authenticated"]}},"sourceIPs":["10.0.0.7"],"userAgent":"kubectl/v1.30.0","objectRef":{{"resource":"pods","namespace":"shop","name":"x","apiVersion":"v1"}}{status}{body},"requestReceivedTimestamp":"2026-11-27T10:00:00.000000Z","stageTimestamp":"2026-11-27T10:00:00.100000Z"}}"#
    )
}

/// Reads of config maps, to put lines (and the hunt's chunks and batches) between two stages.
fn filler(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            format!(
                r#"{{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"f-{i}","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/shop/configmaps/c","verb":"get","user":{{"username":"system:serviceaccount:shop:app"}},"sourceIPs":["10.0.0.9"],"objectRef":{{"resource":"configmaps","namespace":"shop","name":"c","apiVersion":"v1"}},"responseStatus":{{"metadata":{{}},"code":200}},"requestReceivedTimestamp":"2026-11-27T10:00:00.000000Z","stageTimestamp":"2026-11-27T10:00:00.001000Z"}}"#
            )
        })
        .collect()
}

fn hunt_json(dir: &std::path::Path, lines: &[String], threads: &str) -> Value {
    let path = dir.join(format!("audit-{}.jsonl", lines.len()));
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    let out = common::kir()
        .args(["hunt", "--format", "json", "--threads", threads, "--rule", "privileged-container"])
        .arg(&path)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    serde_json::from_slice(&out).unwrap()
}

/// The hunt keeps an earlier stage as its line until its request needs it: next to its last
/// stage, hundreds of lines (other chunks, other batches) away, or never completed. Each way the
/// request is one, points at its first line, and is matched on everything its stages said.
#[test]
fn an_earlier_stage_is_joined_wherever_its_last_stage_is() {
    let dir = tempfile::tempdir().unwrap();
    for gap in [0, 5, 300, 20_000] {
        for (body_first, body_last) in [(true, true), (true, false)] {
            let mut lines = vec![pod_stage("p-1", "RequestReceived", body_first, None)];
            lines.extend(filler(gap));
            lines.push(pod_stage("p-1", "ResponseComplete", body_last, Some(201)));
            for threads in ["1", "2"] {
                let doc = hunt_json(dir.path(), &lines, threads);
                let why = format!("gap {gap}, body in the last stage {body_last}, threads {threads}");
                assert_eq!(doc["stats"]["events"], gap + 1, "{why}");
                let findings = doc["findings"].as_array().unwrap();
                assert_eq!(findings.len(), 1, "{why}: {findings:?}");
                assert_eq!(findings[0]["source"]["line"], 1, "{why}: the request's first line");
                assert_eq!(findings[0]["response_code"], 201, "{why}: the last stage's answer");
            }
        }
    }
}

#[test]
fn an_earlier_stage_whose_request_never_completes_is_reported_and_its_faults_are_said() {
    let dir = tempfile::tempdir().unwrap();
    let whole = pod_stage("p-2", "RequestReceived", true, None);
    // Its first members are right; the line breaks further on.
    let broken = pod_stage("p-3", "RequestReceived", true, None).replace(r#""verb":"create""#, r#""verb":creat"#);
    let mut lines = vec![whole, broken];
    lines.extend(filler(3));
    for threads in ["1", "2"] {
        let doc = hunt_json(dir.path(), &lines, threads);
        assert_eq!(doc["stats"]["records"], 4, "the broken line is not a record: {doc}");
        assert_eq!(doc["stats"]["skipped"]["malformed JSON"], 1, "threads {threads}: {}", doc["stats"]);
        let findings = doc["findings"].as_array().unwrap();
        assert_eq!(findings.len(), 1, "the request that never completed is still matched: {findings:?}");
        assert_eq!(findings[0]["audit_ids"][0], "p-2");
        assert_eq!(findings[0]["source"]["line"], 1);
    }
}

/// A broken earlier stage whose request needs it (its body is not in the last stage), next to its
/// last stage or far from it: a skipped line, not a record, and the last stage still counts.
#[test]
fn a_broken_earlier_stage_that_is_needed_is_a_skipped_line() {
    let dir = tempfile::tempdir().unwrap();
    let broken =
        pod_stage("p-4", "RequestReceived", true, None).replace(r#""name":"x","image""#, r#""name":x,"image""#);
    for gap in [0, 300] {
        let mut lines = vec![broken.clone()];
        lines.extend(filler(gap));
        lines.push(pod_stage("p-4", "ResponseComplete", false, Some(201)));
        for threads in ["1", "2"] {
            let doc = hunt_json(dir.path(), &lines, threads);
            let why = format!("gap {gap}, threads {threads}: {}", doc["stats"]);
            assert_eq!(doc["stats"]["skipped"]["malformed JSON"], 1, "{why}");
            assert_eq!(doc["stats"]["records"], gap + 1, "{why}");
            assert_eq!(doc["stats"]["events"], gap + 1, "{why}");
        }
    }
}

/// Stages out of order at the very start of a log (the last stage first, the earlier one after
/// it, in the same chunk or the next): still one request.
#[test]
fn a_last_stage_that_opens_the_log_before_its_earlier_stage_is_one_request() {
    let dir = tempfile::tempdir().unwrap();
    for gap in [0, 100] {
        let mut lines = vec![pod_stage("p-5", "ResponseComplete", true, Some(201))];
        lines.extend(filler(gap));
        lines.push(pod_stage("p-5", "RequestReceived", true, None));
        for threads in ["1", "2"] {
            let doc = hunt_json(dir.path(), &lines, threads);
            let why = format!("gap {gap}, threads {threads}: {}", doc["stats"]);
            assert_eq!(doc["stats"]["events"], gap + 1, "{why}");
            assert_eq!(doc["findings"].as_array().unwrap().len(), 1, "{why}");
        }
    }
}

/// A last stage that no rule can match is read for its envelope only, its body passed over by its
/// brackets. When its held earlier stage knows more, it is decoded after all; a fault in its body
/// then makes it a skipped line, and the earlier stage stands for the request, as when every line
/// is decoded.
#[test]
fn a_skimmed_last_stage_with_a_broken_body_is_a_skipped_line_when_it_must_be_decoded() {
    let dir = tempfile::tempdir().unwrap();
    let stage = |stage: &str, agent: &str, body: &str| {
        format!(
            r#"{{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Request","auditID":"held","stage":"{stage}","requestURI":"/api/v1/namespaces/shop/configmaps/c","verb":"get","user":{{"username":"system:serviceaccount:shop:app"}},"sourceIPs":["10.0.0.9"]{agent},"objectRef":{{"resource":"configmaps","namespace":"shop","name":"c","apiVersion":"v1"}},"responseStatus":{{"metadata":{{}},"code":200}}{body},"requestReceivedTimestamp":"2026-11-27T10:00:00.000000Z","stageTimestamp":"2026-11-27T10:00:00.001000Z"}}"#
        )
    };
    let mut lines = vec![stage("RequestReceived", r#","userAgent":"app/1.0""#, "")];
    lines.extend(filler(150));
    lines.push(stage("ResponseComplete", "", r#","requestObject":{"a":1.2.3}"#));
    for threads in ["1", "2"] {
        let report = hunt_json(dir.path(), &lines, threads);
        let stats = &report["stats"];
        assert_eq!(stats["records"], 151, "{stats}");
        assert_eq!(stats["events"], 151, "the earlier stage is the request: {stats}");
        assert_eq!(stats["skipped"]["malformed JSON"], 1, "{stats}");
    }
}
