//! Moving a recording to now: any times, any speed; never a panic, order kept, IDs renamed.

use jiff::Timestamp;
use kir_detect::Finding;
use proptest::prelude::*;

fn finding(t: Option<Timestamp>, id: &str) -> Finding {
    Finding {
        rule_id: "r".into(),
        title: "t".into(),
        severity: kir_detect::Level::High,
        time: t,
        audit_ids: vec![id.into()],
        techniques: vec![],
        tactics: vec![],
        threat_matrix: vec![],
        actor: Default::default(),
        object: Default::default(),
        verb: "get".into(),
        response_code: None,
        source: Default::default(),
        kind: "detection",
        rule_name: None,
        event_count: 1,
        request_uri: String::new(),
        cluster: None,
        images: Vec::new(),
    }
}

proptest! {
    #[test]
    fn any_recording_moves_in_order(
        first in Timestamp::MIN.as_second()..=Timestamp::MAX.as_second(),
        gaps in prop::collection::vec(0i64..=10_000_000_000, 1..6),
        start in Timestamp::MIN.as_second()..=Timestamp::MAX.as_second(),
        speed in prop_oneof![Just(0.0), 0.001f64..1000.0],
    ) {
        let first = Timestamp::from_second(first).unwrap();
        let start = Timestamp::from_second(start).unwrap();
        let mut findings: Vec<Finding> = gaps
            .iter()
            .scan(0i64, |acc, g| { *acc = acc.saturating_add(*g); Some(*acc) })
            .enumerate()
            .map(|(i, s)| finding(first.checked_add(jiff::SignedDuration::from_secs(s)).ok(), &format!("a{i}")))
            .collect();
        kir_drill::move_findings(&mut findings, first, start, speed, 7);
        let times: Vec<Timestamp> = findings.iter().filter_map(|f| f.time).collect();
        prop_assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
        prop_assert!(times.iter().all(|t| *t >= start));
        prop_assert!(findings.iter().all(|f| f.audit_ids[0].starts_with("drill-7-a")));
    }
}

#[test]
fn the_first_event_lands_on_the_start_and_gaps_divide_by_speed() {
    let first: Timestamp = "2026-11-27T23:49:34Z".parse().unwrap();
    let start: Timestamp = "2026-12-03T09:00:00Z".parse().unwrap();
    let mut f = vec![finding(Some("2026-11-27T23:50:34Z".parse().unwrap()), "x")];
    kir_drill::move_findings(&mut f, first, start, 0.0, 1);
    assert_eq!(f[0].time, Some("2026-12-03T09:01:00Z".parse().unwrap()));
    let mut f = vec![finding(Some("2026-11-27T23:50:34Z".parse().unwrap()), "x")];
    kir_drill::move_findings(&mut f, first, start, 10.0, 1);
    assert_eq!(f[0].time, Some("2026-12-03T09:00:06Z".parse().unwrap()));
    assert_eq!(f[0].audit_ids, ["drill-1-x"]);
}
