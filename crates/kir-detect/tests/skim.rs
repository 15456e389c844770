//! The hunt skips decoding a request when its envelope alone rules out every rule
//! (`kir_audit::envelope`, `RuleSet::may_match`). Both halves are checked here on generated
//! last stages shaped like the API server's, with the values rules look at and wrong types:
//! the envelope reads every field as the decoder does, and a request the envelope rules out
//! matches no rule once decoded.

use kir_audit::envelope::Line;
use kir_audit::{Envelope, Field, Fields, Origin, Record, decode, early_stage};
use kir_detect::{Placeholders, RuleSet};
use proptest::prelude::*;
use serde_json::{Value, json};

fn one_of(values: &[Value]) -> impl Strategy<Value = Value> + use<> {
    prop::sample::select(values.to_vec())
}

fn text() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => one_of(&[json!("get"), json!("list"), json!("create"), json!("patch"), json!("delete"), json!("watch")]),
        2 => "[a-z:/._ -]{0,10}".prop_map(Value::String),
        1 => one_of(&[json!(null), json!(7), json!("a\"b\\u0041"), json!("tab\there"), json!(["x"])]),
    ]
}

fn user() -> impl Strategy<Value = Value> {
    let name = one_of(&[
        json!("system:anonymous"),
        json!("system:serviceaccount:shop:web"),
        json!("system:serviceaccount:kube-system:replicaset-controller"),
        json!("system:node:n1"),
        json!("alice@example.com"),
        json!("system:kube-scheduler"),
        json!(null),
        json!(3),
    ]);
    let groups = one_of(&[
        json!(["system:authenticated"]),
        json!(["system:unauthenticated"]),
        json!(["system:masters", "system:authenticated"]),
        json!([]),
        json!(null),
        json!("system:masters"),
    ]);
    let extra = one_of(&[json!(null), json!({"k": ["v"]}), json!({"k": "v"}), json!({})]);
    (name, groups, extra, any::<bool>(), any::<bool>()).prop_map(|(name, groups, extra, with_uid, with_extra)| {
        let mut user = json!({"username": name, "groups": groups});
        if with_uid {
            user["uid"] = json!("u-1");
        }
        if with_extra {
            user["extra"] = extra;
        }
        user
    })
}

fn object_ref() -> impl Strategy<Value = Value> {
    let resource = one_of(&[
        json!("pods"),
        json!("secrets"),
        json!("nodes"),
        json!("configmaps"),
        json!("leases"),
        json!("clusterrolebindings"),
        json!("certificatesigningrequests"),
        json!(null),
    ]);
    let subresource = one_of(&[json!(null), json!("exec"), json!("proxy"), json!("status"), json!(5)]);
    let namespace = one_of(&[json!("shop"), json!("kube-system"), json!("kube-public"), json!(""), json!(null)]);
    (resource, subresource, namespace)
        .prop_map(|(r, s, n)| json!({"resource": r, "subresource": s, "namespace": n, "name": "x", "apiVersion": "v1"}))
}

fn status() -> impl Strategy<Value = Value> {
    let code = one_of(&[
        json!(200),
        json!(201),
        json!(401),
        json!(403),
        json!(404),
        json!(500),
        json!(200.5),
        json!(null),
        json!("200"),
    ]);
    let message = one_of(&[json!(null), json!("pods \"x\" is forbidden"), json!(4)]);
    let reason = one_of(&[json!(null), json!("Forbidden"), json!("NotFound")]);
    let status = one_of(&[json!(null), json!("Failure"), json!("Success")]);
    (code, message, reason, status).prop_map(|(code, message, reason, status)| {
        json!({"metadata": {}, "code": code, "message": message, "reason": reason, "status": status, "details": {"kind": "pods"}})
    })
}

fn annotations() -> impl Strategy<Value = Value> {
    let decision = one_of(&[json!("allow"), json!("forbid"), json!(null), json!(true)]);
    (decision, any::<bool>()).prop_map(|(d, reason)| {
        let mut a = json!({"authorization.k8s.io/decision": d});
        if reason {
            a["authorization.k8s.io/reason"] = json!("RBAC: allowed by ClusterRoleBinding \"x\"");
        }
        a
    })
}

fn body() -> impl Strategy<Value = Value> {
    one_of(&[
        json!(null),
        json!({"kind": "Pod", "spec": {"hostPID": true, "containers": [{"image": "docker.io/x:1"}]}}),
        json!({"kind": "RoleBinding", "roleRef": {"name": "cluster-admin"}, "subjects": [{"name": "system:masters"}]}),
        json!({"kind": "Status", "items": [[{"a": "]}"}]]}),
    ])
}

/// The optional members of a last stage, with values the rules look at and wrong types.
fn members() -> impl Strategy<Value = Vec<(&'static str, Value)>> {
    let uri = one_of(&[
        json!("/api/v1/pods?a=1&b=2"),
        json!("/healthz"),
        json!("/metrics"),
        json!("/api/v1/namespaces/shop/pods/x/exec?command=sh"),
    ]);
    (
        (text(), user(), prop::option::of(user())),
        one_of(&[
            json!(["10.0.0.1"]),
            json!(["10.0.0.2"]),
            json!(["203.0.113.9", "10.0.0.1"]),
            json!(["198.51.100.7"]),
            json!(["2001:db8::1"]),
            json!(["127.0.0.1"]),
            json!([]),
            json!(null),
            json!(["x"]),
        ]),
        one_of(&[json!("kubectl/v1.30"), json!("Mozilla/5.0"), json!(null), json!("curl\u{1}")]),
        (object_ref(), status(), annotations()),
        (body(), body(), uri),
    )
        .prop_map(
            |((verb, user, impersonated), ips, agent, (object, status, annotations), (request, response, uri))| {
                vec![
                    ("verb", verb),
                    ("user", user),
                    ("impersonatedUser", impersonated.unwrap_or(Value::Null)),
                    ("sourceIPs", ips),
                    ("userAgent", agent),
                    ("objectRef", object),
                    ("responseStatus", status),
                    ("annotations", annotations),
                    ("requestObject", request),
                    ("responseObject", response),
                    ("stageTimestamp", json!("2026-11-28T00:00:00.024000Z")),
                    ("requestURI", uri),
                ]
            },
        )
}

/// Which optional members a line has, and the order of all its members.
fn shape() -> impl Strategy<Value = (Vec<bool>, Value, Vec<usize>)> {
    let stage = one_of(&[json!("ResponseComplete"), json!("Panic"), json!("RequestReceived")]);
    (prop::collection::vec(any::<bool>(), 12), stage, Just((0..16usize).collect::<Vec<_>>()).prop_shuffle())
}

fn render(optional: Vec<(&str, Value)>, (flags, stage, order): &(Vec<bool>, Value, Vec<usize>)) -> String {
    let mut all: Vec<(&str, Value)> = vec![
        ("kind", json!("Event")),
        ("apiVersion", json!("audit.k8s.io/v1")),
        ("auditID", json!("id-1")),
        ("stage", stage.clone()),
    ];
    all.extend(optional.into_iter().zip(flags).filter(|(_, keep)| **keep).map(|(m, _)| m));
    let members: Vec<String> = order
        .iter()
        .filter_map(|&i| all.get(i))
        .map(|(k, v)| {
            // Go's encoder escapes `&`: the envelope decodes such strings.
            let v = v.to_string().replace('&', "\\u0026");
            format!("{}:{v}", json!(k))
        })
        .collect();
    format!("{{{}}}", members.join(","))
}

/// A last stage: the members the envelope reads, each present or not, in any order.
fn line() -> impl Strategy<Value = String> {
    (members(), shape()).prop_map(|(members, shape)| render(members, &shape))
}

/// A line, then the same line with each of its members in turn taken from another.
fn line_and_neighbours() -> impl Strategy<Value = Vec<String>> {
    (members(), members(), shape()).prop_map(|(base, other, shape)| {
        let mut lines = vec![render(base.clone(), &shape)];
        for i in 0..base.len() {
            let mut neighbour = base.clone();
            neighbour[i] = other[i].clone();
            lines.push(render(neighbour, &shape));
            // And the users' members one by one.
            for member in ["username", "groups", "uid"] {
                let (mut neighbour, theirs) = (base.clone(), other[i].1.get(member).cloned());
                if let (Some(user), Some(theirs)) = (neighbour[i].1.as_object_mut(), theirs) {
                    user.insert(member.to_string(), theirs);
                    lines.push(render(neighbour, &shape));
                }
            }
        }
        lines
    })
}

fn builtin() -> &'static RuleSet {
    static RULES: std::sync::OnceLock<RuleSet> = std::sync::OnceLock::new();
    RULES.get_or_init(|| RuleSet::builtin(&Placeholders::new()))
}

const FIELDS: &[&str] = &[
    "verb",
    "requestURI",
    "userAgent",
    "sourceIPs",
    "user.username",
    "user.groups",
    "user.uid",
    "impersonatedUser.username",
    "impersonatedUser.groups",
    "objectRef.resource",
    "objectRef.subresource",
    "objectRef.namespace",
    "objectRef.name",
    "responseStatus.code",
    "annotations.authorization.k8s.io/decision",
    "kir.decision",
    "kir.serviceAccount.namespace",
    "kir.serviceAccount.name",
    "stageTimestamp",
    "stage",
    "auditID",
];

fn values<'a>(source: &impl Fields<'a>, field: &Field) -> Option<Vec<String>> {
    let mut out = Vec::new();
    source.any(field, &mut |v| {
        out.push(v.text().into_owned());
        false
    })?;
    Some(out)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn the_envelope_reads_every_field_as_the_decoder_does(line in line()) {
        let Some(envelope) = Envelope::scan(&line) else { return Ok(()) };
        let (mut out, mut skipped) = (Vec::new(), Vec::new());
        decode(&line, &Origin::new("p", 1), &mut out, &mut skipped);
        prop_assert!(skipped.is_empty(), "{line}: {skipped:?}");
        let [Record::Audit(event)] = out.as_slice() else { panic!("{line}: {out:?}") };
        prop_assert_eq!(envelope.presence(), event.presence(), "{}", line);
        prop_assert_eq!((envelope.stage_time, envelope.request_received), (event.stage_time, event.request_received));
        for name in FIELDS {
            let field = Field::parse(name);
            if let Some(seen) = values(&&envelope, &field) {
                prop_assert_eq!(Some(seen), values(&event, &field), "{} on {}", name, line);
            }
        }
    }

    /// The hunt reads each line once with the envelope reader, which also tells an earlier
    /// stage: exactly when `early_stage` takes the line for one, and with the same id, unless it
    /// leaves the line to `early_stage` (`Other`). Escapes, nulls and any member order included.
    #[test]
    fn the_envelope_tells_earlier_stages_as_early_stage_does(line in line()) {
        match Envelope::read(&line) {
            Line::Earlier(id) => prop_assert_eq!(early_stage(&line).map(|(id, _)| id), Some(id), "{}", line),
            Line::Last(_) => prop_assert!(early_stage(&line).is_none(), "{}", line),
            Line::Other => {}
        }
    }

    /// The line after an earlier stage is read without the search for an earlier stage's name:
    /// the hunt still tells it as it would otherwise (an earlier stage the reader leaves is
    /// `early_stage`'s), and reads a last stage the same.
    #[test]
    fn the_line_after_an_earlier_stage_is_told_the_same(line in line()) {
        use kir_audit::envelope::Kind;
        let told = |kind: Kind, envelope: &Envelope| match kind {
            Kind::Last => Some(Ok(format!("{:?} {:?} {}", envelope.presence(), envelope.stage_time, envelope.audit_id))),
            Kind::Earlier(id, _) => Some(Err(id.to_string())),
            Kind::Other => early_stage(&line).map(|(id, _)| Err(id.to_string())),
        };
        let (mut first, mut after) = (Envelope::default(), Envelope::default());
        let searched = Envelope::read_into(&line, &mut first);
        let searched = told(searched, &first);
        let read = Envelope::read_after_earlier(&line, &mut after);
        prop_assert_eq!(searched, told(read, &after), "{}", line);
    }

    /// Each line is asked first, then its neighbours, some of which share its key (they differ
    /// in a member the key leaves out) and are answered from its verdict.
    #[test]
    fn the_memo_answers_as_every_rule_asked_would(lines in line_and_neighbours()) {
        let rules = builtin();
        for line in lines {
            let Some(envelope) = Envelope::scan(&line) else { continue };
            prop_assert_eq!(rules.may_match(&envelope), rules.may_match_rule_by_rule(&envelope), "{}", line);
        }
    }

    /// A last stage some rule may match is built from its envelope instead of decoded again:
    /// the event is the decoder's, field for field, or the envelope declines (a user's `extra`,
    /// an annotation that is not a string) and the decoder reads the line.
    #[test]
    fn an_event_built_from_its_envelope_is_the_decoded_one(line in line(), extra in any::<bool>()) {
        let line = if extra { line.replacen(r#""username":"#, r#""extra":{"k":["v"]},"username":"#, 1) } else { line };
        let mut envelope = Envelope::default();
        if Envelope::read_into(&line, &mut envelope) != kir_audit::envelope::Kind::Last {
            return Ok(());
        }
        let origin = Origin::new("p", 7);
        let (mut out, mut skipped) = (Vec::new(), Vec::new());
        decode(&line, &origin, &mut out, &mut skipped);
        match envelope.to_event(&line, &origin) {
            Some(built) => {
                prop_assert!(skipped.is_empty(), "{line}: {skipped:?}");
                let [Record::Audit(decoded)] = out.as_slice() else { panic!("{line}: {out:?}") };
                prop_assert_eq!(&built, decoded, "{}", line);
                prop_assert_eq!(built.request_object.as_ref().map(|b| b.text().into_owned()), decoded.request_object.as_ref().map(|b| b.text().into_owned()));
                prop_assert_eq!(built.response_object.as_ref().map(|b| b.text().into_owned()), decoded.response_object.as_ref().map(|b| b.text().into_owned()));
            }
            None => prop_assert!(
                envelope.user.has_extra
                    || envelope.impersonated_user.as_ref().is_some_and(|u| u.has_extra)
                    || envelope.annotations.iter().any(|(_, v)| v.is_none())
                    || !skipped.is_empty(),
                "declined a plain line: {}", line
            ),
        }
    }

    /// Decoded requests are matched through the same memo: its answers, in the same order, are
    /// those of every candidate rule evaluated on the whole event (neighbours sharing a key
    /// included, and addresses that only the rules' address items tell apart).
    #[test]
    fn decoded_requests_match_as_every_rule_asked_would(lines in line_and_neighbours()) {
        let rules = builtin();
        for line in lines {
            let (mut out, mut skipped) = (Vec::new(), Vec::new());
            decode(&line, &Origin::new("p", 1), &mut out, &mut skipped);
            for record in out {
                let Record::Audit(event) = record else { continue };
                let (mut memo, mut every) = (Vec::new(), Vec::new());
                rules.matching(&event, &mut memo);
                rules.matching_rule_by_rule(&event, &mut every);
                prop_assert_eq!(memo, every, "{}", line);
            }
        }
    }

    #[test]
    fn a_request_the_envelope_rules_out_matches_no_rule(line in line()) {
        let rules = builtin();
        let Some(envelope) = Envelope::scan(&line) else { return Ok(()) };
        if rules.may_match(&envelope) {
            return Ok(());
        }
        let (mut out, mut skipped) = (Vec::new(), Vec::new());
        decode(&line, &Origin::new("p", 1), &mut out, &mut skipped);
        let [Record::Audit(event)] = out.as_slice() else { panic!("{line}: {out:?}") };
        let mut hits = Vec::new();
        rules.matching(event, &mut hits);
        let ids: Vec<&str> = hits.iter().map(|&i| rules.detections[i].meta.id.as_str()).collect();
        prop_assert!(hits.is_empty(), "{line} matches {ids:?}");
    }
}

#[test]
fn the_envelope_leaves_unusual_lines_to_the_decoder() {
    let base = r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","auditID":"a","stage":"ResponseComplete","verb":"get","responseStatus":{"code":200}}"#;
    assert!(Envelope::scan(base).is_some());
    for (why, line) in [
        ("an earlier stage", base.replace("ResponseComplete", "RequestReceived")),
        ("an unknown member", base.replace("\"verb\"", "\"timestamp\":\"x\",\"verb\"")),
        ("a repeated member", base.replace("\"verb\":\"get\"", "\"verb\":\"get\",\"verb\":\"list\"")),
        ("an escaped name", base.replace("\"verb\"", "\"v\\u0065rb\"")),
        ("a fractional code", base.replace("200", "200.0")),
        ("a negative zero code, a float to serde_json", base.replace("200", "-0")),
        ("truncated", base[..base.len() - 1].to_string()),
        ("trailing text", format!("{base} x")),
        ("another kind", base.replace("\"Event\"", "\"EventList\"")),
        ("no auditID", base.replace("\"auditID\":\"a\",", "")),
        ("a control character", base.replace("get", "g\u{1}t")),
        ("a null username", base.replace("\"verb\"", "\"user\":{\"username\":null},\"verb\"")),
    ] {
        assert!(Envelope::scan(&line).is_none(), "{why}: {line}");
    }
    let escaped = base.replace("\"get\"", "\"g\\u0065t\"");
    assert_eq!(Envelope::scan(&escaped).map(|e| e.verb.into_owned()), Some("get".to_string()));
    let nulls = base.replace("\"verb\"", "\"objectRef\":null,\"userAgent\":null,\"verb\"");
    let envelope = Envelope::scan(&nulls).expect("null members read as absent");
    assert!(envelope.object_ref.is_none() && envelope.user_agent.is_none());
}

#[test]
fn everyday_requests_are_ruled_out_and_attacks_are_not() {
    let rules = builtin();
    let lease = r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"l","stage":"ResponseComplete","requestURI":"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/n1","verb":"update","user":{"username":"system:node:n1","groups":["system:nodes","system:authenticated"]},"sourceIPs":["10.0.0.5"],"userAgent":"kubelet/v1.30.4","objectRef":{"resource":"leases","namespace":"kube-node-lease","name":"n1","apiGroup":"coordination.k8s.io","apiVersion":"v1"},"responseStatus":{"metadata":{},"code":200},"stageTimestamp":"2026-11-28T00:00:00.024000Z","annotations":{"authorization.k8s.io/decision":"allow","authorization.k8s.io/reason":""}}"#;
    assert!(!rules.may_match(&Envelope::scan(lease).expect("a plain last stage")));
    let anonymous = lease.replace("system:node:n1", "system:anonymous").replace(r#""system:nodes","#, "");
    assert!(rules.may_match(&Envelope::scan(&anonymous).expect("a plain last stage")));
    let exec = lease
        .replace(r#""verb":"update""#, r#""verb":"create""#)
        .replace(r#""resource":"leases""#, r#""resource":"pods","subresource":"exec""#)
        .replace("system:node:n1", "alice");
    assert!(rules.may_match(&Envelope::scan(&exec).expect("a plain last stage")));
}

/// The generated lines are not all refused by the envelope nor all let through by the rules:
/// the two properties above are about something.
#[test]
fn the_generated_lines_exercise_both_paths() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let strategy = line();
    let (mut scanned, mut ruled_out) = (0, 0);
    for _ in 0..500 {
        let line = strategy.new_tree(&mut runner).expect("a line").current();
        if let Some(envelope) = Envelope::scan(&line) {
            scanned += 1;
            ruled_out += usize::from(!builtin().may_match(&envelope));
        }
    }
    assert!(scanned > 50 && ruled_out > 10, "{scanned} scanned, {ruled_out} ruled out");
}

/// Requests that differ only in what the memo's key leaves out (URI, name), where that decides:
/// anonymous probes of `/healthz` against other paths, kubeadm's `cluster-info` against other
/// config maps. Asked in both orders, so that either side's verdict is the one memoized first.
#[test]
fn the_memo_keeps_apart_what_its_key_leaves_out() {
    let rules = builtin();
    let mut lines = Vec::new();
    for user in ["system:anonymous", "alice", "system:node:n1"] {
        for uri in ["/healthz", "/metrics", "/version?timeout=32s", "/api/v1/namespaces/kube-public/configmaps/x"] {
            for object in [None, Some("cluster-info"), Some("other")] {
                for (code, decision) in [(200, "allow"), (403, "forbid"), (404, "allow")] {
                    let object = object.map_or(String::new(), |name| {
                        format!(r#","objectRef":{{"resource":"configmaps","namespace":"kube-public","name":"{name}","apiVersion":"v1"}}"#)
                    });
                    lines.push(format!(
                        r#"{{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"a","stage":"ResponseComplete","requestURI":"{uri}","verb":"get","user":{{"username":"{user}","groups":["system:authenticated"]}},"sourceIPs":["10.0.0.7"]{object},"responseStatus":{{"metadata":{{}},"code":{code}}},"annotations":{{"authorization.k8s.io/decision":"{decision}"}}}}"#
                    ));
                }
            }
        }
    }
    let mut answers = std::collections::HashSet::new();
    for pass in 0..2 {
        let order: Vec<&String> = if pass == 0 { lines.iter().collect() } else { lines.iter().rev().collect() };
        std::thread::scope(|s| {
            s.spawn(|| {
                for line in order {
                    let envelope = Envelope::scan(line).expect("a plain last stage");
                    let expected = rules.may_match_rule_by_rule(&envelope);
                    answers.insert(expected);
                    assert_eq!(rules.may_match(&envelope), expected, "{line}");
                }
            });
        });
    }
    assert_eq!(answers.len(), 2, "some of these requests may match and some may not");
}

/// The API server's earlier stages, in its member order and with sorted keys (`jq -S`), are told
/// by the envelope reader itself; an escape in a top-level string leaves the line to
/// `early_stage`, which refuses it as well.
#[test]
fn earlier_stages_are_told_on_the_way() {
    let server = r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"a-1","stage":"RequestReceived","requestURI":"/api","verb":"get","user":{"username":"x"}}"#;
    let sorted = r#"{"apiVersion":"audit.k8s.io/v1","auditID":"a-2","kind":"Event","level":"Metadata","objectRef":{"resource":"pods"},"requestReceivedTimestamp":"2026-11-28T00:00:00.000000Z","requestURI":"/api","sourceIPs":["10.0.0.1"],"stage":"ResponseStarted","verb":"watch"}"#;
    for (line, id) in [(server, "a-1"), (sorted, "a-2")] {
        assert!(matches!(Envelope::read(line), Line::Earlier(found) if found == id), "{line}");
    }
    let escaped = sorted.replace("/api", "/a\\u0070i");
    assert!(matches!(Envelope::read(&escaped), Line::Other));
    assert_eq!(early_stage(&escaped), None);
}
