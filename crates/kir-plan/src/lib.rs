//! The incident response plan as code.
//!
//! A plan is a YAML file (`apiVersion: kir.dev/v1`, `kind: ResponsePlan`, see [`schema`]) that a
//! team reviews like code. This crate parses and checks it ([`check`]), renders it for people
//! ([`render`]) and makes its decisions: how a finding is rated, typed and grouped
//! ([`route`]), who owns an incident, and which escalations are due ([`escalate`]).
//!
//! Architecture invariant: pure. No I/O, no clock: callers pass the time in milliseconds since
//! the Unix epoch, so every decision can be replayed in a test.

pub mod check;
pub mod escalate;
pub mod render;
pub mod route;
pub mod schema;

pub use check::{Loaded, PlanProblem, Severity, load};
pub use escalate::{Due, EscalationState, due, next_due, schedule};
pub use route::Routed;
pub use schema::{Action, Channel, ChannelKind, Contact, Duration, EscalationPolicy, LinkKey, Plan};

/// The commented starter plan (`kir plan init`). It passes `kir plan check` as it is.
pub const STARTER: &str = include_str!("starter.yaml");

/// The starter plan, parsed.
pub fn starter() -> Plan {
    load(STARTER).expect("the starter plan is checked by its tests").plan
}

impl Plan {
    /// The contact on call for `role` at `now_ms`: the rotation's member for that turn, else the
    /// first contact.
    pub fn on_call(&self, role: &str, now_ms: i64) -> Option<&Contact> {
        let role = self.roles.iter().find(|r| r.id == role)?;
        if let Some(rot) = &role.rotation
            && let Some(start) = timestamp_ms(&rot.start)
            && !rot.members.is_empty()
            && rot.every.as_millis() > 0
        {
            let turns = (now_ms - start).div_euclid(rot.every.as_millis());
            let member = &rot.members[turns.rem_euclid(rot.members.len() as i64) as usize];
            if let Some(c) = role.contacts.iter().find(|c| &c.name == member) {
                return Some(c);
            }
        }
        role.contacts.first()
    }

    /// The SHA-256 of the plan's decisions (hex), recorded on every incident it touches: the
    /// record says which plan was in force, so two plans must never share a digest.
    pub fn digest(&self) -> String {
        use sha2::Digest;
        let json = serde_json::to_string(self).unwrap_or_default();
        hex::encode(sha2::Sha256::digest(json.as_bytes()))
    }
}

/// A time in the plan (a rotation's start), in milliseconds since the epoch: the forms of
/// [`kir_core::parse_timestamp`].
pub fn timestamp_ms(text: &str) -> Option<i64> {
    kir_core::parse_timestamp(text).map(|t| t.as_millisecond())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starter_plan_checks_clean_of_errors() {
        let loaded = load(STARTER).unwrap_or_else(|e| panic!("{e:#?}"));
        assert!(loaded.warnings.is_empty(), "{:#?}", loaded.warnings);
    }

    #[test]
    fn unknown_role_is_an_error_on_its_line() {
        let text = STARTER.replacen("        assign: soc\n", "        assign: socc\n", 1);
        let problems = load(&text).unwrap_err();
        let p = problems.iter().find(|p| p.message.contains("unknown role \"socc\"")).expect("reported");
        let line = text.lines().position(|l| l.contains("assign: socc")).unwrap() + 1;
        assert_eq!(p.line, Some(line));
        assert_eq!(p.column, Some(17));
    }

    #[test]
    fn bad_duration_and_missing_field_point_at_lines() {
        let text = STARTER.replacen("window: 6h", "window: 6 hours", 1);
        let p = &load(&text).unwrap_err()[0];
        assert!(p.message.contains("bad duration"), "{p:?}");
        let line = text.lines().position(|l| l.contains("window: 6 hours")).unwrap() + 1;
        assert_eq!(p.line, Some(line));

        let text = STARTER.replacen("    name: DevOps on call\n", "", 1);
        let p = &load(&text).unwrap_err()[0];
        assert!(p.message.contains("name"), "{p:?}");
        assert!(p.line.is_some());
    }

    #[test]
    fn destroying_evidence_first_is_a_warning() {
        let text = STARTER.replacen(
            "      - action: collect-evidence\n        title: Collect the objects the findings name\n",
            "      - action: delete-pod\n      - action: collect-evidence\n",
            1,
        );
        let loaded = load(&text).unwrap();
        assert!(
            loaded.warnings.iter().any(|w| w.message.contains("destroys evidence before")),
            "{:?}",
            loaded.warnings
        );
    }

    #[test]
    fn rotation_turns() {
        let mut plan = starter();
        let role = plan.roles.iter_mut().find(|r| r.id == "devops-oncall").unwrap();
        role.contacts.push(Contact { name: "Lee".into(), email: None, phone: None, chat: None });
        role.rotation = Some(schema::Rotation {
            every: Duration::from_secs(7 * 86_400),
            start: "2026-01-05".into(),
            members: vec!["Lee".into(), "DevOps on-call (primary)".into()],
        });
        let start = timestamp_ms("2026-01-05").unwrap();
        assert_eq!(plan.on_call("devops-oncall", start + 1000).unwrap().name, "Lee");
        assert_eq!(plan.on_call("devops-oncall", start + 8 * 86_400_000).unwrap().name, "DevOps on-call (primary)");
        assert_eq!(plan.on_call("devops-oncall", start + 15 * 86_400_000).unwrap().name, "Lee");
    }
}
