//! Properties of the plan loader and the escalation engine, on every `cargo test`.

use kir_plan::schema::{Condition, EscalationLevel, EscalationPolicy, Repeat};
use kir_plan::{Duration, EscalationState, STARTER, due, load};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Whatever a person does to a plan, kir answers with a plan or with problems that point
    /// inside the file, never with a panic.
    #[test]
    fn edited_plans_never_panic(
        cut in 0usize..400,
        insert in "[ -~]{0,20}",
        drop_line in any::<bool>(),
        newline in prop::sample::select(vec!["\n", "\r\n", "\r"]),
    ) {
        let lines: Vec<&str> = STARTER.lines().collect();
        let at = cut % lines.len();
        let mut edited: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
        if drop_line {
            edited.remove(at);
        } else {
            edited[at] = format!("{}{insert}", edited[at]);
        }
        let text = edited.join(newline);
        if let Err(problems) = load(&text) {
            prop_assert!(!problems.is_empty());
            for p in problems {
                if let Some(line) = p.line {
                    prop_assert!(line >= 1 && line <= edited.len() + 1, "line {line} outside the file");
                }
            }
        }
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,300}") {
        let _ = load(&text);
    }

    #[test]
    fn durations_read_back_as_written(n in 0i64..100_000, unit in prop::sample::select(vec!["s", "m", "h", "d", "w"])) {
        let d = Duration::parse(&format!("{n}{unit}")).unwrap();
        prop_assert_eq!(Duration::parse(&d.to_string()).unwrap(), d);
    }

    /// However often and late the timer runs, each level fires once, never before its time.
    #[test]
    fn each_level_fires_once_and_never_early(
        afters in prop::collection::vec(0i64..10_000, 1..5),
        repeat in prop::option::of((0u32..3, 1i64..5_000)),
        ticks in prop::collection::vec(0i64..60_000, 1..30),
    ) {
        let mut afters = afters;
        afters.sort_unstable();
        let policy = EscalationPolicy {
            id: "p".into(),
            description: None,
            levels: afters.iter().map(|a| EscalationLevel {
                after: Duration::from_secs(*a),
                condition: Condition::Always,
                notify: vec!["r".into()],
                assign: None,
            }).collect(),
            repeat: repeat.map(|(times, after)| Repeat { times, after: Duration::from_secs(after) }),
        };
        let mut state = EscalationState { cycle_started_ms: 1_000, ..Default::default() };
        let mut now = 1_000;
        for step in ticks {
            now += step * 1_000;
            for d in due(&policy, &state, now) {
                prop_assert!(d.due_ms <= now, "fired before its time");
                prop_assert!(!state.fired.contains(&(d.round, d.level)), "fired twice");
                state.fired.push((d.round, d.level));
            }
        }
        let rounds = repeat.map(|r| r.0 + 1).unwrap_or(1) as usize;
        prop_assert!(state.fired.len() <= rounds * afters.len());
    }
}
