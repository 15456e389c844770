//! One suite, two databases: every scenario runs on SQLite and on a real PostgreSQL server.

use kir_detect::{Actor, Finding, Level, ObjectInfo, SourceRef};
use kir_plan::Plan;
use kir_store::{CloseReason, ListFilter, NewIncident, State, Store, StoreError};
use kir_testkit::PostgresServer;

const T0: i64 = 1_795_000_000_000; // 2026-11-17
const MIN: i64 = 60_000;

fn finding(rule: &str, severity: Level, tactics: &[&str], user: &str, minute: i64, audit_id: &str) -> Finding {
    Finding {
        rule_id: rule.into(),
        title: format!("title of {rule}"),
        severity,
        time: Some(jiff::Timestamp::from_millisecond(T0 + minute * MIN).unwrap()),
        audit_ids: vec![audit_id.into()],
        techniques: vec![],
        tactics: tactics.iter().map(|s| s.to_string()).collect(),
        threat_matrix: vec![],
        actor: Actor { user: user.into(), source_ips: vec!["203.0.113.7".into()], ..Default::default() },
        object: ObjectInfo {
            resource: Some("pods".into()),
            namespace: Some("shop".into()),
            name: Some("web".into()),
            ..Default::default()
        },
        verb: "create".into(),
        response_code: Some(201),
        source: SourceRef { path: "audit.log".into(), line: minute as u64 },
        kind: "detection",
        rule_name: Some(rule.into()),
        event_count: 1,
        request_uri: String::new(),
        cluster: None,
        images: Vec::new(),
    }
}

fn attack() -> Vec<Finding> {
    vec![
        finding("deployment-created-or-deleted", Level::Informational, &["execution"], "system:anonymous", 0, "a0"),
        finding("pod-exec", Level::Medium, &["execution"], "system:anonymous", 1, "a1"),
        finding("privileged-container", Level::High, &["privilege-escalation"], "system:anonymous", 2, "a2"),
        finding("secret-read", Level::Informational, &["credential-access"], "alice", 3, "b1"),
    ]
}

async fn scenario_ingest_groups_and_deduplicates(url: String) {
    let store = Store::open(&url).await.unwrap();
    let plan = kir_plan::starter();
    let report = store.ingest(&plan, &attack(), "test", T0 + 10 * MIN).await.unwrap();
    assert_eq!(report.opened.len(), 1, "{report:?}");
    assert_eq!(report.attached, 3, "the informational finding before the opener joins it: {report:?}");
    assert_eq!(report.below_threshold, 1, "alice's informational finding opens nothing");
    let list = store.list(&ListFilter::default()).await.unwrap();
    assert_eq!(list.len(), 1);
    let inc = &list[0];
    assert_eq!(inc.severity, "high");
    assert_eq!(inc.owner_role.as_deref(), Some("soc"));
    assert_eq!(inc.incident_type, "privilege-escalation");
    assert_eq!(inc.finding_count, 3);
    assert_eq!(inc.first_event_at, Some(T0));
    assert_eq!(inc.last_event_at, Some(T0 + 2 * MIN));
    assert_eq!(inc.created_at, T0 + 10 * MIN, "discovery time is kept apart from event time");

    let again = store.ingest(&plan, &attack(), "test", T0 + 20 * MIN).await.unwrap();
    assert_eq!(again.duplicates, 3);
    assert_eq!(again.attached, 0);
    assert!(again.opened.is_empty());
    assert_eq!(store.list(&ListFilter::default()).await.unwrap()[0].finding_count, 3);

    // A later finding of the same actor within the window joins; one far later opens a new incident.
    let later = vec![
        finding("pod-exec", Level::Medium, &["execution"], "system:anonymous", 60, "a3"),
        finding("pod-exec", Level::Medium, &["execution"], "system:anonymous", 60 * 24 * 3, "a4"),
    ];
    let r = store.ingest(&plan, &later, "test", T0 + 60 * 24 * 3 * MIN).await.unwrap();
    assert_eq!((r.attached, r.opened.len()), (2, 1), "{r:?}");
    let all = store.list(&ListFilter::default()).await.unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].finding_count, 4);
    assert_eq!(all[1].severity, "medium");
    assert_eq!(all[1].owner_role.as_deref(), Some("devops-oncall"));
    let iocs = store.iocs(all[0].id).await.unwrap();
    assert_eq!(iocs.iter().map(|i| i.value.as_str()).collect::<Vec<_>>(), vec!["203.0.113.7"]);
    let timeline = store.timeline(all[0].id).await.unwrap();
    assert_eq!(timeline[0].kind, "opened");
    assert_eq!(timeline.iter().filter(|e| e.kind == "finding").count(), 4);
}

async fn scenario_attack_chain_raises_severity(url: String) {
    let store = Store::open(&url).await.unwrap();
    let plan = kir_plan::starter();
    let chain = [
        finding("pod-exec", Level::Medium, &["execution"], "mallory", 0, "c1"),
        finding("serviceaccount-token-requested", Level::Medium, &["credential-access"], "mallory", 5, "c2"),
        finding("nodeport-service-created", Level::Medium, &["initial-access"], "mallory", 9, "c3"),
    ];
    store.ingest(&plan, &chain[..2], "test", T0 + 6 * MIN).await.unwrap();
    let inc = &store.list(&ListFilter::default()).await.unwrap()[0];
    assert_eq!((inc.severity.as_str(), inc.owner_role.as_deref()), ("medium", Some("devops-oncall")));
    assert_eq!(inc.policy_id.as_deref(), Some("devops-first"));
    store.ingest(&plan, &chain[2..], "test", T0 + 10 * MIN).await.unwrap();
    let inc = store.incident(inc.id).await.unwrap();
    assert_eq!((inc.severity.as_str(), inc.owner_role.as_deref()), ("high", Some("soc")));
    assert_eq!(inc.policy_id.as_deref(), Some("soc"));
    assert_eq!(inc.cycle, 1, "the stronger policy starts a new cycle");
    let timeline = store.timeline(inc.id).await.unwrap();
    let raise = timeline.iter().find(|e| e.kind == "severity").expect("raise recorded");
    assert!(raise.message.contains("medium to high") && raise.message.contains("soc"), "{}", raise.message);
}

async fn scenario_lifecycle(url: String) {
    let store = Store::open(&url).await.unwrap();
    let plan = kir_plan::starter();
    let new = NewIncident {
        title: "miner-like CPU on node ip-10-0-3-17".into(),
        incident_type: "cryptomining".into(),
        severity: Level::Medium,
        description: None,
        assign_role: None,
        assign_person: None,
        event_time: Some(T0 - 30 * MIN),
    };
    let id = store.open_incident(&plan, new, "dana", T0).await.unwrap();
    let inc = store.incident(id).await.unwrap();
    assert_eq!(
        (inc.state(), inc.owner_role.as_deref(), inc.source.as_str()),
        (State::New, Some("devops-oncall"), "manual")
    );
    assert_eq!(inc.reported_by, "dana");

    let inc = store.assign(id, Some("soc".into()), None, "dana", T0 + MIN).await.unwrap();
    assert_eq!(inc.owner_role.as_deref(), Some("soc"));
    let inc = store.assign(id, None, Some("sam".into()), "lee", T0 + 2 * MIN).await.unwrap();
    assert_eq!(inc.owner_person.as_deref(), Some("sam"));
    store.note(id, "xmrig seen in ps output", "sam", T0 + 3 * MIN).await.unwrap();
    let inc = store.acknowledge(id, "sam", T0 + 4 * MIN).await.unwrap();
    assert_eq!((inc.state(), inc.acknowledged_at), (State::Acknowledged, Some(T0 + 4 * MIN)));
    assert!(matches!(store.acknowledge(id, "sam", T0 + 5 * MIN).await, Err(StoreError::Refused(_))));
    let inc = store.contain(id, "sam", T0 + 10 * MIN, Some("pod isolated".into())).await.unwrap();
    assert_eq!(inc.contained_at, Some(T0 + 10 * MIN));
    let inc = store.resolve(id, "sam", T0 + 60 * MIN, None).await.unwrap();
    assert_eq!(inc.state(), State::Resolved);
    let inc = store.close(id, CloseReason::TruePositive, "sam", T0 + 70 * MIN, None).await.unwrap();
    assert_eq!((inc.state(), inc.close_reason.as_deref()), (State::Closed, Some("true-positive")));
    assert!(matches!(
        store.close(id, CloseReason::Benign, "sam", T0 + 71 * MIN, None).await,
        Err(StoreError::Refused(_))
    ));

    let inc = store.reopen(id, "sam", T0 + 100 * MIN, Some("miner is back".into())).await.unwrap();
    assert_eq!((inc.state(), inc.cycle, inc.cycle_started_at), (State::New, 1, T0 + 100 * MIN));
    assert_eq!(inc.acknowledged_at, None);

    let kinds: Vec<String> = store.timeline(id).await.unwrap().into_iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        ["opened", "assigned", "assigned", "note", "acknowledged", "contained", "resolved", "closed", "reopened"]
    );
    assert!(matches!(store.incident(999).await, Err(StoreError::NoIncident(999))));
}

async fn scenario_escalation_at_the_plans_delays(url: String) {
    let store = Store::open(&url).await.unwrap();
    let plan = kir_plan::starter();
    let f = vec![finding("privileged-container", Level::High, &["privilege-escalation"], "eve", 0, "e1")];
    store.ingest(&plan, &f, "test", T0).await.unwrap();
    let id = store.list(&ListFilter::default()).await.unwrap()[0].id;

    let fired = store.tick(T0).await.unwrap();
    assert_eq!(fired.iter().map(|f| (f.incident_id, f.level)).collect::<Vec<_>>(), vec![(id, 0)]);
    assert_eq!(fired[0].notify, vec!["soc", "devops-oncall"]);
    assert!(store.tick(T0).await.unwrap().is_empty(), "once per level");
    assert!(store.tick(T0 + 15 * MIN - 1).await.unwrap().is_empty());
    let fired = store.tick(T0 + 15 * MIN).await.unwrap();
    assert_eq!(fired.iter().map(|f| f.level).collect::<Vec<_>>(), vec![1]);
    assert_eq!(fired[0].notify, vec!["incident-commander"]);
    assert!(store.tick(T0 + 16 * MIN).await.unwrap().is_empty());

    // Acknowledged: the not-contained level still fires at 4 h, then the policy repeats once.
    store.acknowledge(id, "sam", T0 + 20 * MIN).await.unwrap();
    assert!(store.tick(T0 + 4 * 60 * MIN - 1).await.unwrap().is_empty());
    let fired = store.tick(T0 + 4 * 60 * MIN).await.unwrap();
    assert_eq!(fired.iter().map(|f| (f.round, f.level)).collect::<Vec<_>>(), vec![(0, 2)]);
    let fired = store.tick(T0 + 5 * 60 * MIN).await.unwrap();
    assert_eq!(fired.iter().map(|f| (f.round, f.level)).collect::<Vec<_>>(), vec![(1, 0)], "repeat after 1 h");
    let fired = store.tick(T0 + 24 * 60 * MIN).await.unwrap();
    assert_eq!(
        fired.iter().map(|f| (f.round, f.level)).collect::<Vec<_>>(),
        vec![(1, 2)],
        "the not-acknowledged level of the repeat is skipped: it was acknowledged"
    );
    assert!(store.tick(T0 + 48 * 60 * MIN).await.unwrap().is_empty());

    // A re-opened incident starts its policy again.
    store.resolve(id, "sam", T0 + 49 * 60 * MIN, None).await.unwrap();
    assert!(store.tick(T0 + 50 * 60 * MIN).await.unwrap().is_empty());
    store.reopen(id, "sam", T0 + 51 * 60 * MIN, None).await.unwrap();
    let fired = store.tick(T0 + 51 * 60 * MIN).await.unwrap();
    assert_eq!(fired.iter().map(|f| (f.cycle, f.level)).collect::<Vec<_>>(), vec![(1, 0)]);

    // Manual escalation fires the next level now.
    let manual = store.escalate(id, "sam", T0 + 51 * 60 * MIN + 1).await.unwrap();
    assert_eq!((manual.level, manual.manual), (1, true));
    assert!(
        store.tick(T0 + 51 * 60 * MIN + 15 * MIN).await.unwrap().is_empty(),
        "the manual level does not fire again"
    );
}

async fn scenario_plan_change_keeps_incidents_in_flight(url: String) {
    let store = Store::open(&url).await.unwrap();
    let plan = kir_plan::starter();
    let f = vec![finding("privileged-container", Level::High, &["privilege-escalation"], "eve", 0, "p1")];
    store.ingest(&plan, &f, "test", T0).await.unwrap();
    let id = store.list(&ListFilter::default()).await.unwrap()[0].id;
    store.tick(T0).await.unwrap();

    let mut changed: Plan = plan.clone();
    let soc = changed.escalation_policies.iter_mut().find(|p| p.id == "soc").unwrap();
    soc.levels[1].after = kir_plan::Duration::from_secs(60);
    let more = vec![finding("pod-exec", Level::Medium, &["execution"], "eve", 1, "p2")];
    store.ingest(&changed, &more, "test", T0 + 2 * MIN).await.unwrap();
    assert_eq!(store.incident(id).await.unwrap().finding_count, 2);
    assert!(store.tick(T0 + 5 * MIN).await.unwrap().is_empty(), "the incident keeps the policy it opened with");
    assert_eq!(store.tick(T0 + 15 * MIN).await.unwrap().len(), 1);
}

async fn scenario_timeline_is_append_only(url: String) {
    let store = Store::open(&url).await.unwrap();
    let plan = kir_plan::starter();
    let id = store
        .open_incident(
            &plan,
            NewIncident {
                title: "t".into(),
                incident_type: "suspicious-activity".into(),
                severity: Level::Low,
                description: None,
                assign_role: None,
                assign_person: None,
                event_time: None,
            },
            "dana",
            T0,
        )
        .await
        .unwrap();
    assert_eq!(store.timeline(id).await.unwrap().len(), 1);
    let tampered = store.raw_execute("UPDATE timeline SET message = 'nothing happened'").await;
    assert!(tampered.is_err(), "the database refuses to rewrite the timeline");
    assert!(store.raw_execute("DELETE FROM timeline").await.is_err());
    assert_eq!(store.timeline(id).await.unwrap()[0].who, "dana");
}

async fn scenario_concurrent_writers(url: String) {
    // Eight writers, each with its own connection pool, the same and overlapping findings.
    let plan = kir_plan::starter();
    let mut tasks = Vec::new();
    for w in 0..8 {
        let url = url.clone();
        let plan = plan.clone();
        tasks.push(tokio::spawn(async move {
            let store = Store::open(&url).await.unwrap();
            let mut fs = Vec::new();
            for actor in 0..5 {
                for n in 0..6 {
                    // Writers overlap: w and w+1 share half their events.
                    let event = (w / 2) * 6 + n;
                    fs.push(finding(
                        "pod-exec",
                        Level::Medium,
                        &["execution"],
                        &format!("user-{actor}"),
                        n,
                        &format!("w{event}-a{actor}"),
                    ));
                }
            }
            store.ingest(&plan, &fs, &format!("writer-{w}"), T0 + 10 * MIN).await.unwrap()
        }));
    }
    let mut attached = 0;
    for t in tasks {
        attached += t.await.unwrap().attached;
    }
    let store = Store::open(&url).await.unwrap();
    let unique = 4 * 6 * 5;
    assert_eq!(attached, unique, "every finding stored exactly once");
    let incidents = store.list(&ListFilter::default()).await.unwrap();
    assert_eq!(incidents.len(), 5, "one incident per actor: {incidents:?}");
    assert_eq!(incidents.iter().map(|i| i.finding_count).sum::<i64>(), unique as i64);
    for i in &incidents {
        let findings = store.findings(i.id).await.unwrap();
        assert_eq!(findings.len() as i64, i.finding_count);
    }
}

async fn scenario_batch_edge_cases(url: String) {
    let store = Store::open(&url).await.unwrap();
    let plan = kir_plan::starter();
    let weak = finding("deployment-created-or-deleted", Level::Informational, &["execution"], "eve", 2 * 60, "w1");
    let mut runtime = finding("falco-miner", Level::High, &["impact"], "", 13 * 60, "r1");
    runtime.audit_ids.clear();
    let mut controller = finding(
        "host-access-pod-created-by-controller",
        Level::Medium,
        &["execution"],
        "system:serviceaccount:kube-system:replicaset-controller",
        13 * 60 + 1,
        "c1",
    );
    controller.object.name = Some("web-abc".into());
    let batch = vec![
        // The same weak finding twice (a request logged twice), a chain of weak findings 5 h
        // apart, then the one that opens the incident.
        weak.clone(),
        weak,
        finding("service-created-or-deleted", Level::Informational, &["execution"], "eve", 7 * 60, "w2"),
        finding("privileged-container", Level::High, &["privilege-escalation"], "eve", 13 * 60, "o1"),
        // A runtime alert without a user, and a controller acting in its namespace.
        runtime,
        controller,
    ];
    let r = store.ingest(&plan, &batch, "test", T0 + 14 * 60 * MIN).await.unwrap();
    assert_eq!(r.duplicates, 1, "{r:?}");
    let incidents = store.list(&ListFilter::default()).await.unwrap();
    assert_eq!(incidents.len(), 2, "{incidents:#?}");
    let eve = incidents.iter().find(|i| i.group_key.as_deref() == Some("actor=eve")).unwrap();
    assert_eq!(eve.finding_count, 3, "both weak findings chain into the incident");
    let workload = incidents.iter().find(|i| i.group_key.as_deref() != Some("actor=eve")).unwrap();
    assert_eq!(workload.finding_count, 2, "the controller follows the incident of its namespace");
}

async fn scenario_actions_are_recorded_and_undone_once(url: String) {
    let store = Store::open(&url).await.unwrap();
    let plan = kir_plan::starter();
    let new = NewIncident {
        title: "miner".into(),
        incident_type: "cryptomining".into(),
        severity: Level::High,
        description: None,
        assign_role: None,
        assign_person: None,
        event_time: None,
    };
    let id = store.open_incident(&plan, new, "dana", T0).await.unwrap();
    let record = kir_store::ActionRecord {
        id: "act-0123456789".into(),
        action: "cordon".into(),
        target: "node/ip-10-0-3-17".into(),
        incident_id: Some(id),
        dry_run: 0,
        who: "sam".into(),
        at: T0 + MIN,
        cluster: Some("https://10.0.0.1:6443".into()),
        before_state: r#"{"unschedulable":false}"#.into(),
        changes: r#"[{"op":"patch"}]"#.into(),
        undone_at: None,
        undone_by: None,
    };
    store.record_action(&record).await.unwrap();
    assert!(store.record_action(&record).await.is_err(), "an action id is recorded once");
    assert_eq!(store.actions().await.unwrap().len(), 1);
    assert!(store.mark_undone("act-0123456789", "sam", T0 + 2 * MIN).await.unwrap());
    assert!(!store.mark_undone("act-0123456789", "sam", T0 + 3 * MIN).await.unwrap(), "undone once");
    let a = store.action("act-0123456789").await.unwrap().unwrap();
    assert_eq!((a.undone_at, a.undone_by.as_deref()), (Some(T0 + 2 * MIN), Some("sam")));
    let kinds: Vec<String> = store.timeline(id).await.unwrap().into_iter().map(|e| e.message).collect();
    assert!(kinds.iter().any(|m| m == "cordon node/ip-10-0-3-17 (action act-0123456789)"), "{kinds:?}");
    assert!(kinds.iter().any(|m| m.starts_with("undone: cordon node/ip-10-0-3-17")), "{kinds:?}");
}

/// kir serve's stream: each event once whatever the retries, numbered in commit order; detections
/// upserted with the cursor; filters and paging in the database; token names unique while live.
async fn scenario_stream_events_detections_and_tokens(url: String) {
    use kir_store::{ApiToken, Detection, DetectionFilter, NewEvent};
    let store = Store::open(&url).await.unwrap();
    let ev =
        |k: &str| NewEvent { key: k.into(), kind: "audit".into(), body: format!("{{\"k\":\"{k}\"}}"), cluster: None };
    let batch: Vec<NewEvent> = (0..450).map(|i| ev(&format!("a{i}/ResponseComplete"))).collect();
    assert_eq!(store.append_events(&batch, "apiserver", T0).await.unwrap(), 450, "more rows than one statement holds");
    assert_eq!(store.append_events(&batch[..10], "apiserver", T0).await.unwrap(), 0, "a retry adds nothing");
    let mixed = vec![ev("a0/ResponseComplete"), ev("b0/ResponseComplete"), ev("b0/ResponseComplete")];
    assert_eq!(store.append_events(&mixed, "apiserver", T0).await.unwrap(), 1);
    assert_eq!(store.event_count().await.unwrap(), 451);
    let first = store.events_after(0, 5).await.unwrap();
    assert_eq!(first.iter().map(|e| e.body.as_str()).collect::<Vec<_>>()[0], "{\"k\":\"a0/ResponseComplete\"}");
    let last = store.last_event_seq().await.unwrap();
    let tail = store.events_after(last - 1, 10).await.unwrap();
    assert_eq!(tail.len(), 1);
    assert_eq!(tail[0].body, "{\"k\":\"b0/ResponseComplete\"}");

    assert_eq!(store.cursor("live").await.unwrap(), 0);
    let det = |key: &str, rule: &str, rank: i64, actor: &str, t: i64, body: &str| Detection {
        id: 0,
        detection_key: key.into(),
        rule_id: rule.into(),
        severity_rank: rank,
        event_time: Some(t),
        detected_at: T0,
        actor: actor.into(),
        namespace: Some("shop".into()),
        cluster: (actor == "eve").then(|| "prod-a".to_string()),
        body: body.into(),
    };
    store
        .put_detections("live", &[det("k1", "exec", 3, "eve", T0, "1"), det("k2", "list", 1, "bob", T0 + MIN, "2")], 10)
        .await
        .unwrap();
    store.put_detections("live", &[det("k1", "exec", 4, "eve", T0, "1b")], 20).await.unwrap();
    assert_eq!(store.cursor("live").await.unwrap(), 20);
    let all = store.detections(&DetectionFilter::default()).await.unwrap();
    assert_eq!(all.iter().map(|d| d.body.as_str()).collect::<Vec<_>>(), ["1b", "2"], "a grown burst replaces its row");
    let high = DetectionFilter { min_severity_rank: Some(3), ..Default::default() };
    assert_eq!(store.detections(&high).await.unwrap().len(), 1);
    let since = DetectionFilter { since_ms: Some(T0 + 1), actor: Some("bob".into()), ..Default::default() };
    assert_eq!(store.detections(&since).await.unwrap()[0].rule_id, "list");
    let page = DetectionFilter { after_id: Some(all[0].id), limit: Some(1), ..Default::default() };
    assert_eq!(store.detections(&page).await.unwrap()[0].body, "2");
    let in_cluster = DetectionFilter { cluster: Some("prod-a".into()), ..Default::default() };
    let found = store.detections(&in_cluster).await.unwrap();
    assert_eq!(found.iter().map(|d| d.actor.as_str()).collect::<Vec<_>>(), ["eve"]);
    assert_eq!(found[0].cluster.as_deref(), Some("prod-a"));
    let routine = DetectionFilter { exclude: vec![("exec".into(), "eve".into())], ..Default::default() };
    assert_eq!(store.detections(&routine).await.unwrap().len(), 1);
    assert_eq!(store.routine_actors("list", 1, 0).await.unwrap(), ["bob"]);
    assert!(store.routine_actors("list", 2, 0).await.unwrap().is_empty());

    let token = |id: &str| ApiToken {
        id: id.into(),
        name: "alice".into(),
        role: "responder".into(),
        secret_hash: "h".into(),
        created_at: T0,
        created_by: "root".into(),
        revoked_at: None,
        revoked_by: None,
        cluster: Some("prod-a".into()),
    };
    store.create_token(&token("t1")).await.unwrap();
    assert_eq!(store.live_token("t1").await.unwrap().unwrap().cluster.as_deref(), Some("prod-a"));
    assert!(matches!(store.create_token(&token("t2")).await, Err(StoreError::Refused(_))));
    assert!(store.live_token("t1").await.unwrap().is_some());
    assert!(store.revoke_token("alice", "root", T0).await.unwrap());
    assert!(store.live_token("t1").await.unwrap().is_none());
    assert!(!store.revoke_token("alice", "root", T0).await.unwrap());
    store.create_token(&token("t2")).await.unwrap();
    assert_eq!(store.tokens().await.unwrap().len(), 2);
}

/// A rolling upgrade: the old replica (this kir) restarts on a store a newer kir migrated. It
/// runs if every newer migration only added, and refuses (instead of misreading) otherwise.
async fn scenario_a_newer_schema_that_only_added_is_still_readable(url: String) {
    Store::open(&url).await.unwrap().shutdown().await;
    let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&url).await.unwrap();
    sqlx::query("INSERT INTO kir_schema (version, applied_at, min_reader) VALUES (99, 0, 0)")
        .execute(&mut conn)
        .await
        .unwrap();
    let store = Store::open(&url).await.expect("an added table or column does not stop an older kir");
    store.shutdown().await;
    sqlx::query("UPDATE kir_schema SET min_reader = 99 WHERE version = 99").execute(&mut conn).await.unwrap();
    match Store::open(&url).await {
        Err(StoreError::TooNew { found: 99, .. }) => {}
        other => panic!("a migration older kir cannot read past refuses the store: {:?}", other.err()),
    }
}

fn in_cluster(mut f: Finding, cluster: &str, images: &[&str]) -> Finding {
    f.cluster = Some(cluster.into());
    f.images = images.iter().map(|i| i.to_string()).collect();
    f
}

/// One fleet, one store: an identity or an image seen in two clusters is one incident; a
/// namespace is one cluster's; incidents say (and filter by) the clusters they span.
async fn scenario_incidents_span_clusters_by_identity_and_image(url: String) {
    let store = Store::open(&url).await.unwrap();
    let plan = kir_plan::starter();
    let console = "system:serviceaccount:tools:ops-console";
    let miner = "docker.io/evil/xmrig:6.21";
    let first = vec![
        in_cluster(
            finding("privileged-container", Level::High, &["privilege-escalation"], console, 0, "c1"),
            "prod-a",
            &[],
        ),
        in_cluster(finding("pod-exec", Level::Medium, &["execution"], console, 5, "c2"), "prod-b", &[]),
        in_cluster(finding("cryptominer-image", Level::High, &["impact"], "mallory", 6, "c3"), "prod-b", &[miner]),
        in_cluster(finding("cryptominer-image", Level::High, &["impact"], "bob", 7, "c4"), "prod-a", &[miner]),
        // An image no other finding has links nothing.
        in_cluster(
            finding("privileged-container", Level::High, &["privilege-escalation"], "carol", 8, "c5"),
            "prod-c",
            &["ghcr.io/acme/tool:1"],
        ),
        // A weak finding (a pod made) with carol's image does not join her incident by it.
        in_cluster(
            finding("pod-created", Level::Low, &["execution"], "erin", 8, "c7"),
            "prod-c",
            &["ghcr.io/acme/tool:1"],
        ),
        // An official base image is everyone's: frank's and grace's incidents stay apart.
        in_cluster(
            finding("privileged-container", Level::High, &["privilege-escalation"], "frank", 8, "c8"),
            "prod-c",
            &["docker.io/library/busybox:stable"],
        ),
        in_cluster(
            finding("privileged-container", Level::High, &["privilege-escalation"], "grace", 9, "c9"),
            "prod-c",
            &["docker.io/library/busybox:stable"],
        ),
    ];
    let report = store.ingest(&plan, &first, "test", T0 + 10 * MIN).await.unwrap();
    assert_eq!(
        report.opened.len(),
        5,
        "the console's, mallory's (bob's joins it by the image), carol's, frank's, grace's: {report:?}"
    );
    // A later batch: bob's next finding follows his group into the linked incident.
    let later = vec![in_cluster(finding("pod-exec", Level::Medium, &["execution"], "bob", 9, "c6"), "prod-a", &[])];
    let report = store.ingest(&plan, &later, "test", T0 + 11 * MIN).await.unwrap();
    assert!(report.opened.is_empty(), "{report:?}");

    let list = store.list(&ListFilter::default()).await.unwrap();
    let by_title = |who: &str| {
        let titles: Vec<&str> = list.iter().map(|i| i.title.as_str()).collect();
        list.iter().find(|i| i.title.ends_with(&format!("({who})"))).unwrap_or_else(|| panic!("{who}: {titles:?}"))
    };
    let console_incident = by_title(console);
    assert_eq!(console_incident.clusters.as_deref(), Some("prod-a,prod-b"));
    assert_eq!(console_incident.finding_count, 2);
    let mining = by_title("mallory");
    assert_eq!(mining.clusters.as_deref(), Some("prod-a,prod-b"));
    assert_eq!(mining.finding_count, 3, "mallory's, bob's linked by the image, bob's later one");
    assert_eq!(mining.summary_json()["clusters"], serde_json::json!(["prod-a", "prod-b"]));
    let timeline = store.timeline(mining.id).await.unwrap();
    assert!(timeline.iter().any(|e| e.kind == "linked" && e.message.contains(miner)), "{timeline:?}");
    let iocs = store.iocs(mining.id).await.unwrap();
    assert!(iocs.iter().any(|i| i.kind == "image" && i.value == miner));
    let findings = store.findings(mining.id).await.unwrap();
    assert!(findings.iter().all(|f| f.body.contains("\"cluster\":\"prod-")), "findings keep their cluster");

    assert_eq!(by_title("carol").finding_count, 1, "erin's weak finding is not linked by the image");
    let only = |c: &str| ListFilter { cluster: Some(c.into()), ..Default::default() };
    assert_eq!(store.list(&only("prod-c")).await.unwrap().len(), 3);
    assert_eq!(store.list(&only("prod-b")).await.unwrap().len(), 2);
    assert!(store.list(&only("prod-z")).await.unwrap().is_empty());

    // Grouped by namespace: `shop` in two clusters is two incidents.
    let mut by_namespace = plan.clone();
    by_namespace.grouping.by = vec![kir_plan::schema::GroupKey::Namespace];
    by_namespace.grouping.link = Vec::new();
    let two = vec![
        in_cluster(
            finding("privileged-container", Level::High, &["privilege-escalation"], "dave", 30, "n1"),
            "prod-a",
            &[],
        ),
        in_cluster(
            finding("privileged-container", Level::High, &["privilege-escalation"], "dave", 31, "n2"),
            "prod-b",
            &[],
        ),
    ];
    let report = store.ingest(&by_namespace, &two, "test", T0 + 40 * MIN).await.unwrap();
    assert_eq!(report.opened.len(), 2, "{report:?}");
}

async fn suite(make_url: impl Fn() -> String) {
    scenario_incidents_span_clusters_by_identity_and_image(make_url()).await;
    scenario_a_newer_schema_that_only_added_is_still_readable(make_url()).await;
    scenario_stream_events_detections_and_tokens(make_url()).await;
    scenario_ingest_groups_and_deduplicates(make_url()).await;
    scenario_attack_chain_raises_severity(make_url()).await;
    scenario_lifecycle(make_url()).await;
    scenario_escalation_at_the_plans_delays(make_url()).await;
    scenario_plan_change_keeps_incidents_in_flight(make_url()).await;
    scenario_timeline_is_append_only(make_url()).await;
    scenario_concurrent_writers(make_url()).await;
    scenario_batch_edge_cases(make_url()).await;
    scenario_actions_are_recorded_and_undone_once(make_url()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn suite_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let n = std::sync::atomic::AtomicU32::new(0);
    let base = dir.path().to_path_buf();
    suite(|| {
        let i = n.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        format!("sqlite:{}", base.join(format!("store-{i}.db")).display())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn suite_on_postgres() {
    let Some(server) = PostgresServer::start_or_skip("suite_on_postgres") else { return };
    suite(|| server.new_database()).await;
}
