//! Property tests: no rule text, however broken, panics the loader, the linter or the matcher.

use kir_detect::{Placeholders, RuleSet, RuleText};
use proptest::prelude::*;

fn load(text: &str) -> RuleSet {
    RuleSet::from_texts(&[RuleText { path: "r.yml".into(), text: text.to_string() }], Placeholders::new())
}

const VALID: &str = "title: T\nlogsource: {product: kubernetes, service: audit}\ndetection:\n  sel:\n    verb|contains: get\n    kir.images|startswith|not: docker.io/\n  other:\n    responseStatus.code|gte: 400\n  condition: sel and not other\nlevel: high\n";

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_text_loads_or_is_refused(text in ".{0,300}") {
        let _ = load(&text);
    }

    #[test]
    fn mutated_rules_load_or_are_refused(cut in 0usize..VALID.len(), insert in "[\\[\\]{}:|*%'\" a-z0-9\n-]{0,8}") {
        let mut text = VALID.to_string();
        let at = (0..=cut).rev().find(|i| text.is_char_boundary(*i)).unwrap_or(0);
        text.insert_str(at, &insert);
        let set = load(&text);
        for d in &set.detections {
            let event = kir_audit::AuditEvent { verb: "get".into(), ..Default::default() };
            let _ = d.detection.matches(&event);
        }
    }

    #[test]
    fn any_condition_parses_or_is_refused(cond in "[a-z_*() ]{0,40}|(1 of |all of |not |and |or |sel |\\( |\\) ){0,10}") {
        let names = vec!["sel".to_string(), "sel_b".to_string(), "filter".to_string()];
        if let Ok(c) = kir_detect::condition::parse(&cond, &names) {
            let _ = c.eval(&mut |i| i % 2 == 0);
        }
    }

    #[test]
    fn any_value_with_any_modifiers_compiles_or_is_refused(
        mods in prop::collection::vec(prop::sample::select(vec!["contains", "startswith", "endswith", "all", "re", "i", "cidr", "exists", "gt", "base64offset", "wide", "windash", "cased", "not", "fieldref", "bogus"]), 0..4),
        value in "[a-z0-9*?\\\\/.%: -]{0,16}",
    ) {
        let key = std::iter::once("requestURI").chain(mods.iter().copied()).collect::<Vec<_>>().join("|");
        let yaml = format!("sel:\n  '{key}': '{}'\ncondition: sel\n", value.replace('\'', "''"));
        if let Ok(det) = serde_saphyr::from_str::<serde_json::Value>(&yaml)
            && let Ok(d) = kir_detect::detection::compile(&det, &Placeholders::new()) {
                let event = kir_audit::AuditEvent { request_uri: value.clone(), ..Default::default() };
                let _ = d.matches(&event);
            }
    }
}

proptest! {
    // Each case compiles the whole pack: a few dozen cases are enough.
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// The `--config` file is outside input too.
    #[test]
    fn any_config_text_parses_or_is_refused(text in "(placeholders:\n)?( [a-z_]{1,8}: \\[?[a-z0-9/*., -]{0,20}\\]?\n){0,4}|.{0,80}") {
        if let Ok(lists) = kir_detect::parse_placeholders(&text) {
            let _ = RuleSet::builtin(&lists);
        }
    }
}

fn correlation(timespan: &str) -> String {
    format!(
        "title: base\nname: base\nlogsource: {{product: kubernetes, service: audit}}\ndetection:\n  sel:\n    verb: get\n  condition: sel\nlevel: low\n---\ntitle: burst\nname: burst\ncorrelation:\n  type: event_count\n  rules: [base]\n  group-by: [user.username]\n  timespan: {timespan}\n  condition:\n    gte: 2\nlevel: medium\n"
    )
}

/// A window longer than kir can count with is a rule problem that says so, not a panic when
/// the first event arrives.
#[test]
fn a_timespan_out_of_range_is_a_problem_with_a_message() {
    let set = load(&correlation("700000w"));
    assert!(set.correlations.is_empty());
    let p = set.problems.iter().find(|p| p.message.contains("timespan")).expect("a problem names the timespan");
    assert!(p.message.contains("out of range"), "{}", p.message);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Any timespan a rule can say, with events at any time: the correlator keeps its windows
    /// without overflowing the calendar.
    #[test]
    fn any_timespan_with_events_at_any_time_never_panics(
        n in any::<u32>(),
        unit in prop::sample::select(vec!["s", "m", "h", "d", "w"]),
        times in prop::collection::vec(jiff::Timestamp::MIN.as_second()..=jiff::Timestamp::MAX.as_second(), 1..6),
    ) {
        let set = load(&correlation(&format!("{n}{unit}")));
        let mut correlator = set.correlator();
        for (i, t) in times.into_iter().enumerate() {
            let event = kir_audit::AuditEvent {
                verb: "get".into(),
                audit_id: format!("a{i}"),
                user: kir_audit::UserInfo { username: "u".into(), ..Default::default() },
                request_received: Some(jiff::Timestamp::from_second(t).unwrap()),
                ..Default::default()
            };
            let _ = set.detect(&mut correlator, &event);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// A `value_count` burst over events out of order, with repeated values and events leaving
    /// the window: the correlator's running count of distinct values (checked against the window
    /// itself in debug builds) says when the threshold is met, as a count from scratch would.
    #[test]
    fn distinct_values_are_counted_as_events_come_and_go(
        events in prop::collection::vec((0i64..3_600, 0usize..4, 0usize..2), 1..40),
    ) {
        let text = "title: base\nname: base\nlogsource: {product: kubernetes, service: audit}\ndetection:\n  sel:\n    verb: get\n  condition: sel\nlevel: low\n---\ntitle: names\nname: names\ncorrelation:\n  type: value_count\n  rules: [base]\n  group-by: [user.username]\n  timespan: 10m\n  condition:\n    field: objectRef.name\n    gte: 3\nlevel: medium\n";
        let set = load(text);
        prop_assert_eq!(set.correlations.len(), 1);
        let mut correlator = set.correlator();
        let mut bursts = 0;
        for (i, (second, name, user)) in events.into_iter().enumerate() {
            let event = kir_audit::AuditEvent {
                verb: "get".into(),
                audit_id: format!("a{i}"),
                user: kir_audit::UserInfo { username: format!("u{user}"), ..Default::default() },
                object_ref: Some(kir_audit::ObjectRef { name: Some(format!("n{name}")), ..Default::default() }),
                request_received: Some(jiff::Timestamp::from_second(1_800_000_000 + second).unwrap()),
                ..Default::default()
            };
            bursts += set.detect(&mut correlator, &event).len();
        }
        prop_assert_eq!(bursts, correlator.burst_count());
    }
}

#[test]
fn detect_feeds_the_burst_and_reports_it_once_its_threshold_is_met() {
    let set = load(&correlation("10m"));
    let mut correlator = set.correlator();
    let at = |s: i64| kir_audit::AuditEvent {
        verb: "get".into(),
        audit_id: format!("a{s}"),
        user: kir_audit::UserInfo { username: "u".into(), ..Default::default() },
        request_received: Some(jiff::Timestamp::from_second(1_800_000_000 + s).unwrap()),
        ..Default::default()
    };
    // As in Sigma, a rule that only feeds a correlation is not reported on its own.
    assert!(set.detect(&mut correlator, &at(0)).is_empty());
    let second = set.detect(&mut correlator, &at(60));
    let titles: Vec<&str> = second.iter().map(|f| f.title.as_str()).collect();
    assert_eq!(titles, ["burst"]);
    assert_eq!(second[0].kind, "correlation");
}
