//! The escalation engine: given an incident's policy (as it was when the incident opened), its
//! state and the levels that already fired, which levels are due now. Pure and deterministic:
//! the caller passes the clock.
//!
//! Level `l` of round `r` is due at `cycle_start + r × (last level's after + repeat.after) +
//! levels[l].after`. A due level fires when its condition holds now; it fires once per incident
//! cycle (a re-opened incident starts a new cycle), round and level.

use crate::schema::{Condition, EscalationPolicy};

/// What the engine needs to know about an incident.
#[derive(Debug, Clone, Default)]
pub struct EscalationState {
    /// Milliseconds since the Unix epoch when the current cycle began (opened or re-opened).
    pub cycle_started_ms: i64,
    pub acknowledged: bool,
    pub contained: bool,
    pub resolved: bool,
    /// `(round, level)` pairs already fired in this cycle.
    pub fired: Vec<(u32, usize)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due {
    pub round: u32,
    pub level: usize,
    pub due_ms: i64,
    pub condition: Condition,
    pub notify: Vec<String>,
    pub assign: Option<String>,
}

/// Every `(round, level, due time)` of the policy for a cycle that began at `cycle_started_ms`,
/// in the policy's order (round by round, level by level).
pub fn schedule(policy: &EscalationPolicy, cycle_started_ms: i64) -> impl Iterator<Item = (u32, usize, i64)> + '_ {
    let last_after = policy.levels.last().map(|l| l.after.as_millis()).unwrap_or(0);
    let (rounds, period) = match &policy.repeat {
        Some(rep) => (rep.times.min(10) + 1, last_after.saturating_add(rep.after.as_millis()).max(1)),
        None => (1, 0),
    };
    (0..rounds).flat_map(move |round| {
        policy.levels.iter().enumerate().map(move |(index, level)| {
            let at = cycle_started_ms
                .saturating_add(period.saturating_mul(round as i64))
                .saturating_add(level.after.as_millis());
            (round, index, at)
        })
    })
}

/// Levels due at `now_ms`, oldest first.
pub fn due(policy: &EscalationPolicy, state: &EscalationState, now_ms: i64) -> Vec<Due> {
    if state.resolved {
        return Vec::new();
    }
    let mut out: Vec<Due> = schedule(policy, state.cycle_started_ms)
        .filter(|(round, index, at)| *at <= now_ms && !state.fired.contains(&(*round, *index)))
        .filter_map(|(round, index, due_ms)| {
            let level = &policy.levels[index];
            let holds = match level.condition {
                Condition::Always => true,
                Condition::NotAcknowledged => !state.acknowledged,
                Condition::NotContained => !state.contained,
                Condition::NotResolved => !state.resolved,
            };
            holds.then(|| Due {
                round,
                level: index,
                due_ms,
                condition: level.condition,
                notify: level.notify.clone(),
                assign: level.assign.clone(),
            })
        })
        .collect();
    out.sort_by_key(|d| (d.due_ms, d.round, d.level));
    out
}

/// When the next level could become due after `now_ms` (for `kir serve`'s timer and for
/// `kir incident show`), ignoring conditions.
pub fn next_due(policy: &EscalationPolicy, state: &EscalationState, now_ms: i64) -> Option<i64> {
    if state.resolved {
        return None;
    }
    schedule(policy, state.cycle_started_ms)
        .filter(|(round, index, at)| *at > now_ms && !state.fired.contains(&(*round, *index)))
        .map(|(_, _, at)| at)
        .min()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{Duration, EscalationLevel, Repeat};

    fn policy() -> EscalationPolicy {
        let level = |after: i64, condition, notify: &str| EscalationLevel {
            after: Duration::from_secs(after),
            condition,
            notify: vec![notify.into()],
            assign: None,
        };
        EscalationPolicy {
            id: "p".into(),
            description: None,
            levels: vec![
                level(0, Condition::Always, "devops"),
                level(900, Condition::NotAcknowledged, "soc"),
                level(3600, Condition::NotContained, "ic"),
            ],
            repeat: None,
        }
    }

    fn fire(state: &mut EscalationState, due: &[Due]) {
        state.fired.extend(due.iter().map(|d| (d.round, d.level)));
    }

    #[test]
    fn levels_fire_at_their_delays_once() {
        let p = policy();
        let mut s = EscalationState { cycle_started_ms: 1_000_000, ..Default::default() };
        let d = due(&p, &s, 1_000_000);
        assert_eq!(d.iter().map(|d| d.level).collect::<Vec<_>>(), vec![0]);
        fire(&mut s, &d);
        assert!(due(&p, &s, 1_000_000 + 899_999).is_empty());
        let d = due(&p, &s, 1_000_000 + 900_000);
        assert_eq!(d.iter().map(|d| d.level).collect::<Vec<_>>(), vec![1]);
        fire(&mut s, &d);
        assert!(due(&p, &s, 1_000_000 + 900_000).is_empty());
        assert_eq!(next_due(&p, &s, 1_000_000 + 900_000), Some(1_000_000 + 3_600_000));
    }

    #[test]
    fn conditions_skip_levels_that_no_longer_apply() {
        let p = policy();
        let s = EscalationState { cycle_started_ms: 0, acknowledged: true, fired: vec![(0, 0)], ..Default::default() };
        let d = due(&p, &s, 3_600_000);
        assert_eq!(d.iter().map(|d| d.level).collect::<Vec<_>>(), vec![2]);
        let resolved = EscalationState { resolved: true, ..s };
        assert!(due(&p, &resolved, 10_000_000).is_empty());
    }

    #[test]
    fn repeats_run_the_levels_again() {
        let mut p = policy();
        p.repeat = Some(Repeat { times: 1, after: Duration::from_secs(600) });
        let s = EscalationState { cycle_started_ms: 0, ..Default::default() };
        // period = 3600 s + 600 s; round 1 level 0 at 4200 s.
        let d = due(&p, &s, 4_200_000);
        assert_eq!(d.iter().map(|d| (d.round, d.level)).collect::<Vec<_>>(), vec![(0, 0), (0, 1), (0, 2), (1, 0)]);
        assert_eq!(d[3].due_ms, 4_200_000);
    }
}
