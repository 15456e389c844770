//! Loading a plan and saying what is wrong with it: errors (the plan cannot run) name the line
//! and column; warnings name gaps a reviewer should see (a severity nobody is paged for, a role
//! without contacts, a playbook that destroys evidence before collecting it).

use std::collections::{BTreeSet, HashSet};
use std::fmt;

use kir_detect::Level;

use crate::schema::{API_VERSION, ChannelKind, KIND, Plan};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Error,
    Warning,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanProblem {
    pub severity: Severity,
    pub line: Option<usize>,
    pub column: Option<usize>,
    /// Where in the plan, e.g. `escalationPolicies[soc].levels[1].notify`.
    pub field: String,
    pub message: String,
}

impl PlanProblem {
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// `FILE:LINE:COLUMN: error: FIELD: MESSAGE`, as compilers write it.
    pub fn display<'a>(&'a self, file: &'a str) -> impl fmt::Display + 'a {
        struct D<'a>(&'a PlanProblem, &'a str);
        impl fmt::Display for D<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let p = self.0;
                write!(f, "{}", self.1)?;
                if let Some(line) = p.line {
                    write!(f, ":{line}")?;
                    if let Some(col) = p.column {
                        write!(f, ":{col}")?;
                    }
                }
                let kind = if p.is_error() { "error" } else { "warning" };
                if p.field.is_empty() {
                    write!(f, ": {kind}: {}", p.message)
                } else {
                    write!(f, ": {kind}: {}: {}", p.field, p.message)
                }
            }
        }
        D(self, file)
    }
}

/// A plan that parsed, with its warnings.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub plan: Plan,
    pub warnings: Vec<PlanProblem>,
}

/// Parses and checks a plan. `Err` holds every error found (and the warnings, after them).
pub fn load(text: &str) -> Result<Loaded, Vec<PlanProblem>> {
    // YAML breaks lines at CR, LF and CRLF; so does every editor. One form keeps the YAML
    // parser's line numbers and ours (for references) the same.
    let normalized;
    let text = if text.contains('\r') {
        normalized = text.replace("\r\n", "\n").replace('\r', "\n");
        normalized.as_str()
    } else {
        text
    };
    let plan: Plan = match serde_saphyr::from_str(text) {
        Ok(plan) => plan,
        Err(e) => {
            let (line, column) = match e.location() {
                Some(l) => (Some(l.line() as usize), Some(l.column() as usize)),
                None => (None, None),
            };
            let message = e.to_string();
            let message = message.lines().next().unwrap_or_default();
            // The position is reported in its own fields: drop saphyr's "error: line L column C: ".
            let message = match message.strip_prefix("error: line ").and_then(|rest| rest.split_once(": ")) {
                Some((position, text)) if position.contains(" column ") => text,
                _ => message,
            }
            .to_string();
            // A field missing from the top-level map is reported where that map ends (column 1,
            // the last top-level key): the start of the plan is the place a reader looks.
            let (line, column) = match column {
                Some(1) if message.starts_with("missing field") => (Some(1), Some(1)),
                _ => (line, column),
            };
            return Err(vec![PlanProblem { severity: Severity::Error, line, column, field: String::new(), message }]);
        }
    };
    let mut problems = check(&plan, text);
    problems.sort_by_key(|p| (p.severity, p.line));
    if problems.iter().any(PlanProblem::is_error) { Err(problems) } else { Ok(Loaded { plan, warnings: problems }) }
}

struct Checker<'a> {
    text: &'a str,
    out: Vec<PlanProblem>,
}

impl Checker<'_> {
    fn push(&mut self, severity: Severity, section: &str, needle: &str, field: String, message: String) {
        let (line, column) = locate(self.text, section, needle);
        self.out.push(PlanProblem { severity, line, column, field, message });
    }

    fn error(&mut self, section: &str, needle: &str, field: String, message: String) {
        self.push(Severity::Error, section, needle, field, message);
    }

    fn warn(&mut self, section: &str, needle: &str, field: String, message: String) {
        self.push(Severity::Warning, section, needle, field, message);
    }

    fn unique<'i>(&mut self, section: &str, ids: impl Iterator<Item = &'i str>) -> HashSet<&'i str> {
        let mut seen = HashSet::new();
        for id in ids {
            if !seen.insert(id) {
                self.error(section, id, section.into(), format!("id {id:?} is used twice"));
            }
        }
        seen
    }
}

/// Every reference resolved, every gap named.
pub fn check(plan: &Plan, text: &str) -> Vec<PlanProblem> {
    let mut c = Checker { text, out: Vec::new() };
    if plan.api_version != API_VERSION {
        c.error(
            "apiVersion",
            &plan.api_version,
            "apiVersion".into(),
            format!("is {:?}; this kir reads {API_VERSION:?}", plan.api_version),
        );
    }
    if plan.kind != KIND {
        c.error("kind", &plan.kind, "kind".into(), format!("is {:?}; a plan is kind {KIND:?}", plan.kind));
    }
    let roles = c.unique("roles", plan.roles.iter().map(|r| r.id.as_str()));
    let types = c.unique("types", plan.types.iter().map(|t| t.id.as_str()));
    let policies = c.unique("escalationPolicies", plan.escalation_policies.iter().map(|p| p.id.as_str()));
    let playbooks = c.unique("playbooks", plan.playbooks.iter().map(|p| p.id.as_str()));
    let channels = c.unique("channels", plan.channels.iter().map(|p| p.id.as_str()));
    c.unique("phases", plan.phases.iter().map(|p| p.id.as_str()));
    let severity_names: Vec<&str> = plan.severities.iter().map(|s| s.id.as_str()).collect();
    c.unique("severities", severity_names.iter().copied());
    if plan.severities.is_empty() {
        c.error("severities", "severities", "severities".into(), "the plan defines no severity".into());
    }
    if plan.roles.is_empty() {
        c.error("roles", "roles", "roles".into(), "the plan defines no role".into());
    }

    let role_ref = |c: &mut Checker, section: &str, field: String, id: &str| {
        if !roles.contains(id) {
            let known = plan.roles.iter().map(|r| r.id.as_str()).collect::<Vec<_>>().join(", ");
            c.error(section, id, field, format!("unknown role {id:?} (roles: {known})"));
        }
    };

    for role in &plan.roles {
        let field = format!("roles[{}]", role.id);
        for ch in &role.notify {
            if !channels.contains(ch.as_str()) {
                c.error("roles", ch, format!("{field}.notify"), format!("unknown channel {ch:?}"));
            }
        }
        if role.contacts.is_empty() {
            c.warn("roles", &role.id, field.clone(), "has no contacts: nobody can be reached in this role".into());
        }
        if let Some(rot) = &role.rotation {
            for m in &rot.members {
                if !role.contacts.iter().any(|k| &k.name == m) {
                    c.error(
                        "roles",
                        m,
                        format!("{field}.rotation.members"),
                        format!("{m:?} is not one of the role's contacts"),
                    );
                }
            }
            if crate::timestamp_ms(&rot.start).is_none() {
                c.error(
                    "roles",
                    &rot.start,
                    format!("{field}.rotation.start"),
                    format!("bad time {:?}: write 2026-01-05T09:00:00Z", rot.start),
                );
            }
            if rot.every.as_secs() <= 0 {
                c.error("roles", "every", format!("{field}.rotation.every"), "must be longer than 0".into());
            }
        }
    }

    for t in &plan.types {
        match &t.playbook {
            Some(p) if !playbooks.contains(p.as_str()) => {
                c.error("types", p, format!("types[{}].playbook", t.id), format!("unknown playbook {p:?}"))
            }
            None => c.warn(
                "types",
                &t.id,
                format!("types[{}]", t.id),
                "has no playbook: responders start from nothing".into(),
            ),
            _ => {}
        }
    }

    if !types.contains(plan.routing.default_type.as_str()) {
        let t = &plan.routing.default_type;
        c.error("routing", t, "routing.defaultType".into(), format!("unknown incident type {t:?}"));
    }
    for (i, rule) in plan.routing.rules.iter().enumerate() {
        let field = format!("routing.rules[{}]", rule.name.clone().unwrap_or_else(|| i.to_string()));
        if let Some(t) = &rule.incident_type
            && !types.contains(t.as_str())
        {
            c.error("routing", t, format!("{field}.type"), format!("unknown incident type {t:?}"));
        }
        if rule.incident_type.is_none() && rule.severity.is_none() && !rule.ignore {
            c.warn(
                "routing",
                "match",
                field.clone(),
                "does nothing: give it a type, a severity or ignore: true".into(),
            );
        }
    }

    let mut covered: BTreeSet<Level> = BTreeSet::new();
    for (i, own) in plan.ownership.iter().enumerate() {
        let field = format!("ownership[{i}]");
        role_ref(&mut c, "ownership", format!("{field}.owner"), &own.owner);
        if !policies.contains(own.policy.as_str()) {
            c.error(
                "ownership",
                &own.policy,
                format!("{field}.policy"),
                format!("unknown escalation policy {:?}", own.policy),
            );
        }
        for s in &own.severities {
            if !covered.insert(*s) {
                c.error("ownership", s.as_str(), format!("{field}.severities"), format!("{s} is owned twice"));
            }
        }
    }
    for s in &plan.severities {
        if !covered.contains(&s.id) {
            c.warn(
                "severities",
                s.id.as_str(),
                format!("severities[{}]", s.id),
                format!("no ownership entry covers {}: such incidents get the owner of the nearest severity", s.id),
            );
        }
    }

    for policy in &plan.escalation_policies {
        let field = format!("escalationPolicies[{}]", policy.id);
        if policy.levels.is_empty() {
            c.error("escalationPolicies", &policy.id, field.clone(), "has no levels".into());
        }
        let mut last = i64::MIN;
        for (l, level) in policy.levels.iter().enumerate() {
            for r in &level.notify {
                role_ref(&mut c, "escalationPolicies", format!("{field}.levels[{l}].notify"), r);
                if plan.roles.iter().any(|role| &role.id == r && role.notify.is_empty()) {
                    c.warn(
                        "escalationPolicies",
                        r,
                        format!("{field}.levels[{l}].notify"),
                        format!("role {r:?} has no channel: nobody hears this page"),
                    );
                }
            }
            if let Some(r) = &level.assign {
                role_ref(&mut c, "escalationPolicies", format!("{field}.levels[{l}].assign"), r);
            }
            if level.after.as_secs() < last {
                c.error(
                    "escalationPolicies",
                    &level.after.to_string(),
                    format!("{field}.levels[{l}].after"),
                    "levels must be in time order".into(),
                );
            }
            if level.after.as_secs() < 0 {
                c.error(
                    "escalationPolicies",
                    "after",
                    format!("{field}.levels[{l}].after"),
                    "must not be negative".into(),
                );
            }
            last = level.after.as_secs();
            if level.notify.is_empty() && level.assign.is_none() {
                c.warn(
                    "escalationPolicies",
                    &policy.id,
                    format!("{field}.levels[{l}]"),
                    "notifies nobody and assigns nobody".into(),
                );
            }
        }
        if let Some(rep) = &policy.repeat {
            if rep.times > 10 {
                c.error("escalationPolicies", "times", format!("{field}.repeat.times"), "at most 10 repeats".into());
            }
            if rep.after.as_secs() <= 0 {
                c.error(
                    "escalationPolicies",
                    "repeat",
                    format!("{field}.repeat.after"),
                    "must be longer than 0".into(),
                );
            }
        }
        if !plan.ownership.iter().any(|o| o.policy == policy.id) {
            c.warn("escalationPolicies", &policy.id, field, "is not used by any ownership entry".into());
        }
    }

    // A severity nobody is paged for: its policy's levels reach no role with a channel.
    for own in &plan.ownership {
        let Some(policy) = plan.escalation_policies.iter().find(|p| p.id == own.policy) else { continue };
        let reachable = policy
            .levels
            .iter()
            .flat_map(|l| &l.notify)
            .any(|r| plan.roles.iter().any(|role| &role.id == r && !role.notify.is_empty()));
        if !reachable {
            let sev = own.severities.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ");
            c.warn(
                "ownership",
                &own.policy,
                format!("ownership[{sev}]"),
                format!("nobody is paged for {sev} incidents: policy {:?} notifies no role with a channel", own.policy),
            );
        }
    }

    for pb in &plan.playbooks {
        let field = format!("playbooks[{}]", pb.id);
        if pb.steps.is_empty() {
            c.warn("playbooks", &pb.id, field.clone(), "has no steps".into());
        }
        let mut collected = false;
        for (i, step) in pb.steps.iter().enumerate() {
            if let Some(r) = &step.approval {
                role_ref(&mut c, "playbooks", format!("{field}.steps[{i}].approval"), r);
            }
            if step.action.collects_evidence() {
                collected = true;
            } else if step.action.destroys_evidence() && !collected {
                c.warn(
                    "playbooks",
                    step.action.as_str(),
                    format!("{field}.steps[{i}]"),
                    format!("{} destroys evidence before any collect-evidence step", step.action.as_str()),
                );
            }
        }
        if !plan.types.iter().any(|t| t.playbook.as_deref() == Some(pb.id.as_str())) {
            c.warn("playbooks", &pb.id, field, "no incident type uses this playbook".into());
        }
    }

    for phase in &plan.phases {
        for role in phase.duties.keys() {
            role_ref(&mut c, "phases", format!("phases[{}].duties", phase.id), role);
        }
    }

    for ch in &plan.channels {
        let field = format!("channels[{}]", ch.id);
        match ch.kind {
            ChannelKind::Slack | ChannelKind::Webhook if ch.url.is_none() && ch.url_env.is_none() => {
                c.error("channels", &ch.id, field.clone(), "needs url or urlEnv".into())
            }
            ChannelKind::Pagerduty if ch.routing_key_env.is_none() => c.error(
                "channels",
                &ch.id,
                field.clone(),
                "needs routingKeyEnv (the integration key's variable)".into(),
            ),
            ChannelKind::Email => match &ch.smtp {
                None => c.error("channels", &ch.id, field.clone(), "needs smtp".into()),
                Some(smtp) => {
                    if smtp.host.is_none() && smtp.host_env.is_none() {
                        c.error("channels", &ch.id, format!("{field}.smtp"), "needs host or hostEnv".into());
                    }
                    if !["none", "starttls", "tls"].contains(&smtp.tls.as_str()) {
                        c.error("channels", &smtp.tls, format!("{field}.smtp.tls"), "is none, starttls or tls".into());
                    }
                    if ch.from.is_none() {
                        c.error("channels", &ch.id, field.clone(), "needs from".into());
                    }
                }
            },
            _ => {}
        }
        if let Some(url) = &ch.url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            c.error("channels", url, format!("{field}.url"), "must start with http:// or https://".into());
        }
        if !plan.roles.iter().any(|r| r.notify.contains(&ch.id)) {
            c.warn("channels", &ch.id, field, "no role uses this channel".into());
        }
    }
    if plan.grouping.by.is_empty() {
        c.error(
            "grouping",
            "by",
            "grouping.by".into(),
            "name at least one of actor, namespace, workload, rule, type".into(),
        );
    }
    c.out
}

/// 1-based line and column of the first mention of `needle` inside the top-level `section`
/// (or anywhere, when the section does not mention it).
pub fn locate(text: &str, section: &str, needle: &str) -> (Option<usize>, Option<usize>) {
    let lines: Vec<&str> = text.lines().collect();
    let header = format!("{section}:");
    let start = lines.iter().position(|l| l.starts_with(&header));
    let find = |from: usize, to: usize| {
        (from..to).find_map(|i| {
            let l = lines[i];
            if l.trim_start().starts_with('#') {
                return None;
            }
            token_position(l, needle).map(|c| (i + 1, c + 1))
        })
    };
    let hit = start.and_then(|s| {
        let end = (s + 1..lines.len())
            .find(|&i| lines[i].starts_with(|c: char| c.is_ascii_alphabetic()))
            .unwrap_or(lines.len());
        find(s, end)
    });
    match hit.or_else(|| find(0, lines.len())) {
        Some((l, c)) => (Some(l), Some(c)),
        None => (start.map(|s| s + 1), Some(1)),
    }
}

/// Byte position of `needle` in `line` as a whole word (not part of a longer id).
fn token_position(line: &str, needle: &str) -> Option<usize> {
    if needle.is_empty() {
        return None;
    }
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    let mut from = 0;
    while let Some(i) = line[from..].find(needle) {
        let at = from + i;
        let before = line[..at].chars().next_back();
        let after = line[at + needle.len()..].chars().next();
        if !before.is_some_and(is_word) && !after.is_some_and(is_word) {
            return Some(at);
        }
        from = at + needle.len();
    }
    None
}
