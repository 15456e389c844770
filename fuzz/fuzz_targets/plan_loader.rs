//! A response plan from a user through the loader, the checker, the renderer and every decision
//! (routing a finding, owners, escalations at several moments).
#![no_main]

use kir_detect::{Finding, Level};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let loaded = match kir_plan::load(text) {
        Ok(l) => l,
        Err(problems) => {
            assert!(!problems.is_empty());
            // Lines as YAML and editors count them: CR, LF and CRLF each end one.
            let lines = text.replace("\r\n", "\n").replace('\r', "\n").lines().count().max(1);
            for p in problems {
                if let Some(line) = p.line {
                    assert!(line <= lines + 1, "line {line} past the end ({lines})");
                }
            }
            return;
        }
    };
    let plan = loaded.plan;
    let _ = kir_plan::render::markdown(&plan, 1_795_000_000_000);
    let finding = Finding {
        rule_id: "r".into(),
        title: "t".into(),
        severity: Level::High,
        time: None,
        audit_ids: vec![],
        techniques: vec!["T1552.001".into()],
        tactics: vec!["credential-access".into()],
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
    };
    let _ = plan.route(&finding);
    for level in Level::ALL {
        let _ = plan.ownership_for(level);
    }
    for policy in &plan.escalation_policies {
        let state = kir_plan::EscalationState { cycle_started_ms: 0, ..Default::default() };
        for now in [0, 60_000, 86_400_000, i64::MAX / 2] {
            let _ = kir_plan::due(policy, &state, now);
            let _ = kir_plan::next_due(policy, &state, now);
        }
    }
    for role in &plan.roles {
        let _ = plan.on_call(&role.id, 1_795_000_000_000);
    }
});
