//! Command-line times and durations, and the other shared parsers of kir-core: any text as
//! `--since`/`--until` against any clock, as a plan duration and as a correlation timespan (with
//! events at the calendar's ends), as an actor pattern and as `NAMESPACE/NAME`. Never a panic;
//! what parses stays in range.
#![no_main]

use jiff::Timestamp;
use kir_core::{Duration, NamespacedName, glob, parse_time_arg, parse_timestamp, singular};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 8 {
        return;
    }
    let (clock, text) = data.split_at(8);
    let Ok(text) = std::str::from_utf8(text) else { return };
    let span = Timestamp::MAX.as_second() - Timestamp::MIN.as_second();
    let second = Timestamp::MIN.as_second() + (i64::from_le_bytes(clock.try_into().unwrap()).rem_euclid(span + 1));
    let now = Timestamp::from_second(second).unwrap();

    let _ = parse_time_arg(text, || Ok(now));
    let _ = parse_timestamp(text);
    if let Ok(d) = Duration::parse(text) {
        assert!(d >= Duration::from_secs(0) && d <= Duration::MAX);
        assert_eq!(Duration::parse(&d.to_string()).unwrap(), d);
        let _ = kir_core::time::before(now, d);
    }
    let (left, right) = text.split_at(text.char_indices().nth(text.chars().count() / 2).map_or(0, |(i, _)| i));
    let _ = glob(left, right);
    if let Ok(n) = NamespacedName::parse(text, "pod", Some("default")) {
        assert!(!n.namespace.is_empty() && !n.name.is_empty() && !n.name.contains('/'));
    }
    let _ = singular(text);

    // The same text as a correlation rule's timespan, fed events at the ends of time.
    if text.len() < 40 && !text.contains(['\n', '\r', '\'', '"', '#', ':', '{', '}', '[', ']']) {
        let rules = format!(
            "title: base\nname: base\nlogsource: {{product: kubernetes, service: audit}}\ndetection:\n  sel:\n    verb: get\n  condition: sel\nlevel: low\n---\ntitle: burst\nname: burst\ncorrelation:\n  type: event_count\n  rules: [base]\n  group-by: [user.username]\n  timespan: '{text}'\n  condition:\n    gte: 2\nlevel: medium\n"
        );
        let set = kir_detect::RuleSet::from_texts(
            &[kir_detect::RuleText { path: "r.yml".into(), text: rules }],
            kir_detect::Placeholders::new(),
        );
        let mut correlator = set.correlator();
        for t in [Timestamp::MIN, now, Timestamp::MAX] {
            let event = kir_audit::AuditEvent {
                verb: "get".into(),
                audit_id: format!("{t}"),
                request_received: Some(t),
                ..Default::default()
            };
            let _ = set.detect(&mut correlator, &event);
        }
    }
});
