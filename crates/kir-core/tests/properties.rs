//! Properties of the shared parsers: whatever text a person or an attacker writes, an answer
//! or an error, never a panic; and what kir writes, it reads back.

use jiff::Timestamp;
use kir_core::{Duration, NamespacedName, TimeError, glob, parse_time_arg, parse_timestamp, singular};
use proptest::prelude::*;

fn any_now() -> impl Strategy<Value = Timestamp> {
    (Timestamp::MIN.as_second()..=Timestamp::MAX.as_second()).prop_map(|s| Timestamp::from_second(s).unwrap())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn durations_read_back_as_written(n in 0i64..100_000, unit in prop::sample::select(vec!["s", "m", "h", "d", "w"])) {
        let text = format!("{n}{unit}");
        match Duration::parse(&text) {
            Ok(d) => prop_assert_eq!(Duration::parse(&d.to_string()).unwrap(), d),
            Err(e) => prop_assert!(matches!(e, TimeError::OutOfRange(_)), "{}", e),
        }
    }

    /// Any number with any unit: a duration within range or an out-of-range error.
    #[test]
    fn any_number_of_any_unit_is_checked(n in any::<u64>(), unit in prop::sample::select(vec!["s", "m", "h", "d", "w"])) {
        match Duration::parse(&format!("{n}{unit}")) {
            Ok(d) => prop_assert!(d <= Duration::MAX && d.as_secs() >= 0),
            Err(e) => prop_assert!(matches!(e, TimeError::OutOfRange(_))),
        }
    }

    /// Any text as a time argument, against any clock: a time, or an error with a message.
    #[test]
    fn time_arguments_never_panic(text in "\\PC{0,40}", now in any_now()) {
        match parse_time_arg(&text, || Ok(now)) {
            Ok(_) => {}
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }

    /// Ages at the edges of the calendar: in range or said to be out of it.
    #[test]
    fn ages_at_the_edges_of_time(n in any::<u32>(), unit in prop::sample::select(vec!["s", "m", "h", "d", "w"]), now in any_now()) {
        let _ = parse_time_arg(&format!("{n}{unit}"), || Ok(now));
    }

    #[test]
    fn timestamps_read_back_as_written(s in Timestamp::MIN.as_second()..=Timestamp::MAX.as_second()) {
        let t = Timestamp::from_second(s).unwrap();
        prop_assert_eq!(parse_timestamp(&t.to_string()), Some(t));
    }

    #[test]
    fn a_pattern_without_star_is_equality(p in "[a-z:@.-]{0,12}", v in "[a-z:@.-]{0,12}") {
        prop_assert_eq!(glob(&p, &v), p == v);
    }

    #[test]
    fn a_trailing_star_is_a_prefix(p in "\\PC{0,12}", v in "\\PC{0,20}") {
        prop_assume!(!p.contains('*'));
        prop_assert_eq!(glob(&format!("{p}*"), &v), v.starts_with(&p));
        prop_assert_eq!(glob(&format!("*{p}"), &v), v.ends_with(&p));
    }

    #[test]
    fn any_pattern_and_value_never_panic(p in "\\PC{0,20}", v in "\\PC{0,20}") {
        let _ = glob(&p, &v);
    }

    /// A value always matches the pattern made by putting stars between pieces of it.
    #[test]
    fn a_value_matches_its_own_starred_pieces(v in "[a-zé:-]{0,20}", cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..4)) {
        let chars: Vec<char> = v.chars().collect();
        let mut at: Vec<usize> = cuts.iter().map(|i| i.index(chars.len() + 1)).collect();
        at.sort_unstable();
        let mut pattern = String::new();
        let mut last = 0;
        for a in at {
            pattern.extend(&chars[last..a]);
            pattern.push('*');
            last = a;
        }
        pattern.extend(&chars[last..]);
        prop_assert!(glob(&pattern, &v), "{} !~ {}", pattern, v);
    }

    #[test]
    fn namespaced_names_round_trip(ns in "[a-z0-9-]{1,20}", name in "[a-z0-9.-]{1,30}") {
        let parsed = NamespacedName::parse(&format!("{ns}/{name}"), "pod", None).unwrap();
        prop_assert_eq!(parsed.to_string(), format!("{ns}/{name}"));
    }

    #[test]
    fn namespaced_names_never_panic(text in "\\PC{0,30}", default in prop::option::of("\\PC{0,5}")) {
        if let Ok(n) = NamespacedName::parse(&text, "pod", default.as_deref()) {
            prop_assert!(!n.namespace.is_empty() && !n.name.is_empty() && !n.name.contains('/'));
        }
    }

    #[test]
    fn singulars_never_panic_and_never_grow_past_y(r in "\\PC{0,20}") {
        let s = singular(&r);
        prop_assert!(s.len() <= r.len());
    }
}
