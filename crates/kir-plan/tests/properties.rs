//! Properties of the plan loader and the escalation engine, on every `cargo test`.

use kir_plan::schema::{Condition, EscalationLevel, EscalationPolicy, Repeat};
use kir_plan::{Duration, EscalationState, STARTER, due, load};
// Durations themselves are kir_core's, with their properties in crates/kir-core/tests.
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

fn technique_plan(techniques: Vec<String>, actors: Vec<String>) -> kir_plan::Plan {
    let mut plan = kir_plan::starter();
    plan.routing.rules.insert(
        0,
        kir_plan::schema::RoutingRule {
            name: Some("t".into()),
            matches: kir_plan::schema::Match { techniques, actors, ..Default::default() },
            incident_type: None,
            severity: Some(kir_detect::Level::Critical),
            ignore: false,
        },
    );
    plan
}

fn technique_finding(techniques: Vec<String>, user: &str) -> kir_detect::Finding {
    kir_detect::Finding {
        rule_id: "r".into(),
        title: "t".into(),
        severity: kir_detect::Level::Medium,
        time: None,
        audit_ids: vec!["a".into()],
        techniques,
        tactics: vec![],
        threat_matrix: vec![],
        actor: kir_detect::Actor { user: user.into(), ..Default::default() },
        object: Default::default(),
        verb: "get".into(),
        response_code: Some(200),
        source: Default::default(),
        kind: "detection",
        rule_name: None,
        event_count: 1,
        request_uri: String::new(),
        cluster: None,
        images: Vec::new(),
    }
}

/// A user rule's tags are outside input: a technique with any characters, against any plan
/// pattern, routes or not, never panics (a byte offset inside `é` used to).
#[test]
fn non_ascii_techniques_route_without_panicking() {
    let plan = technique_plan(vec!["T1552".into()], vec![]);
    for t in ["T1552é", "T155é", "Té", "T1552.001", "T1552.é"] {
        let _ = plan.route(&technique_finding(vec![t.into()], "u"));
    }
    assert_eq!(plan.route(&technique_finding(vec!["T1552.001".into()], "u")).severity, kir_detect::Level::Critical);
    assert_ne!(plan.route(&technique_finding(vec!["T1552é".into()], "u")).severity, kir_detect::Level::Critical);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn any_technique_and_pattern_route_without_panicking(
        pattern in "\\PC{0,8}",
        technique in "\\PC{0,12}",
        actor in "\\PC{0,10}",
        user in "\\PC{0,10}",
    ) {
        let plan = technique_plan(vec![pattern], vec![actor]);
        let _ = plan.route(&technique_finding(vec![technique], &user));
    }
}
