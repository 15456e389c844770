//! A set of loaded rules: the built-in pack and the user's, with their placeholders, lints,
//! and the evaluation of one event.

use std::path::{Path, PathBuf};

use kir_audit::AuditEvent;

use crate::correlation::{CorrelationRule, Correlator};
use crate::detection::{Item, ItemOp, Placeholders, Search};
use crate::finding::{Finding, SourceRef, actor_of, object_of};
use crate::memo::{Left, Verdict};
use crate::rule::{DetectionRule, ProblemSeverity, RuleProblem, parse_file};

/// The built-in rules, embedded at build time: (path under `rules/`, text).
pub const BUILTIN_RULES: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/builtin_rules.rs"));

/// For each of [`BUILTIN_RULES`], its documents ([`crate::documents::documents`]) parsed at build
/// time, as JSON; empty when one of them is not valid YAML.
const BUILTIN_VALUES: &[&[&str]] = include!(concat!(env!("OUT_DIR"), "/builtin_values.rs"));

/// The documents of `text` parsed ahead of time, when it is the text of a built-in rule file
/// (none when one of them was not valid YAML: the caller then parses them all itself).
pub(crate) fn parsed_ahead(text: &str) -> Option<&'static [&'static str]> {
    static BY_TEXT: std::sync::OnceLock<std::collections::HashMap<&'static str, &'static [&'static str]>> =
        std::sync::OnceLock::new();
    let by_text = BY_TEXT
        .get_or_init(|| BUILTIN_RULES.iter().zip(BUILTIN_VALUES).map(|((_, text), values)| (*text, *values)).collect());
    by_text.get(text).copied()
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{path}: {message}")]
    Config { path: String, message: String },
}

/// Rules ready to run.
#[derive(Debug, Default)]
pub struct RuleSet {
    pub detections: Vec<DetectionRule>,
    pub correlations: Vec<CorrelationRule>,
    /// Problems found while loading: errors (the rule was left out) and lints.
    pub problems: Vec<RuleProblem>,
    pub placeholders: Placeholders,
    /// Problems of parsing: they stay; the rest of `problems` is recomputed by `finish`.
    load_problems: Vec<RuleProblem>,
    /// Detection rules that report findings of their own (the others only feed correlations).
    reports: Vec<bool>,
    /// Detection rules that run on audit events (their logsource is Kubernetes audit).
    active: Vec<bool>,
    /// Which rules can match an event at all, by its verb and resource.
    index: RuleIndex,
    /// Rules that read what the hunt learns as it goes (`kir.roleRef.power`): left out of
    /// `matching`, run by `matching_contextual` on the event with its `context` filled in.
    contextual: Vec<usize>,
    /// Every item of the active rules that reads `sourceIPs` ([`address_items`]).
    address_items: Option<Vec<Item>>,
}

/// Most rules name the verbs and resources they are about: an event is only checked against
/// the rules that could match its verb and resource, which is most of the speed of the hunt.
#[derive(Debug, Default)]
struct RuleIndex {
    /// A handful of verbs: a short list beats hashing the verb of every event.
    by_verb: Vec<(String, Vec<usize>)>,
    any_verb: Vec<usize>,
    /// For each rule, the resources it needs (`None`: any).
    resources: Vec<Option<Vec<String>>>,
    /// Tells this index's rules from those of any other ([`crate::memo`] keeps verdicts per
    /// rule set).
    generation: u64,
}

impl RuleIndex {
    fn build(rules: &[DetectionRule], active: &[bool]) -> RuleIndex {
        static GENERATIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let generation = GENERATIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut index = RuleIndex { generation, ..RuleIndex::default() };
        let resource = kir_audit::Field::parse("objectRef.resource");
        let verb = kir_audit::Field::parse("verb");
        for (i, rule) in rules.iter().enumerate() {
            index.resources.push(crate::detection::required_values(&rule.detection, &resource));
            if !active[i] {
                continue;
            }
            match crate::detection::required_values(&rule.detection, &verb) {
                Some(verbs) => {
                    for v in verbs {
                        match index.by_verb.iter_mut().find(|(verb, _)| *verb == v) {
                            Some((_, rules)) => rules.push(i),
                            None => index.by_verb.push((v, vec![i])),
                        }
                    }
                }
                None => index.any_verb.push(i),
            }
        }
        index
    }

    /// Calls `f` with every rule worth evaluating on `event`.
    fn for_each_candidate(&self, verb: &str, resource: Option<&str>, mut f: impl FnMut(usize) -> bool) {
        let verb = lowercase(verb);
        let resource = resource.map(lowercase);
        let by_verb = self
            .by_verb
            .iter()
            .find(|(v, _)| v == verb.as_ref())
            .map(|(_, rules)| rules.as_slice())
            .unwrap_or_default();
        for &i in self.any_verb.iter().chain(by_verb) {
            let resource_ok = match (&self.resources[i], &resource) {
                (None, _) => true,
                (Some(needed), Some(r)) => needed.iter().any(|n| n == r),
                (Some(_), None) => false,
            };
            if resource_ok && f(i) {
                return;
            }
        }
    }
}

/// Verbs and resources are lower-case in practice: no allocation unless they are not.
fn lowercase(s: &str) -> std::borrow::Cow<'_, str> {
    if s.bytes().any(|b| b.is_ascii_uppercase()) {
        std::borrow::Cow::Owned(s.to_ascii_lowercase())
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}

/// Parses rule files on the cores there are, in their order: parsing and compiling the rules is
/// most of every command's start-up (the built-in pack's YAML is parsed at build time, a user's
/// rules' here).
fn parse_all(texts: &[RuleText], placeholders: &Placeholders) -> Vec<crate::rule::ParsedFile> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(4);
    if threads < 2 || texts.len() < 8 {
        return texts.iter().map(|t| parse_file(&t.path, &t.text, placeholders)).collect();
    }
    let share = texts.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let parts: Vec<_> = texts
            .chunks(share)
            .map(|part| {
                scope.spawn(move || part.iter().map(|t| parse_file(&t.path, &t.text, placeholders)).collect::<Vec<_>>())
            })
            .collect();
        parts.into_iter().flat_map(|p| p.join().unwrap_or_else(|e| std::panic::resume_unwind(e))).collect()
    })
}

/// Where rule text comes from.
pub struct RuleText {
    pub path: String,
    pub text: String,
}

impl RuleSet {
    /// The built-in pack with its default placeholders, overridden by `overrides`.
    pub fn builtin(overrides: &Placeholders) -> RuleSet {
        let mut placeholders = builtin_placeholders();
        placeholders.extend(overrides.iter().map(|(k, v)| (k.clone(), v.clone())));
        let texts = BUILTIN_RULES
            .iter()
            .filter(|(path, _)| !path.starts_with("placeholders/"))
            .map(|(path, text)| RuleText { path: format!("rules/{path}"), text: text.to_string() })
            .collect::<Vec<_>>();
        RuleSet::from_texts(&texts, placeholders)
    }

    /// Rules from text (files already read).
    pub fn from_texts(texts: &[RuleText], placeholders: Placeholders) -> RuleSet {
        let mut set = RuleSet { placeholders, ..Default::default() };
        for parsed in parse_all(texts, &set.placeholders) {
            set.add_parsed(parsed);
        }
        set.finish();
        set
    }

    fn add_text(&mut self, t: &RuleText) {
        let parsed = parse_file(&t.path, &t.text, &self.placeholders);
        self.add_parsed(parsed);
    }

    fn add_parsed(&mut self, parsed: crate::rule::ParsedFile) {
        self.detections.extend(parsed.detections);
        self.correlations.extend(parsed.correlations);
        self.load_problems.extend(parsed.problems);
    }

    /// Adds rule files (or folders of `.yml`/`.yaml` files, recursively).
    pub fn add_paths(&mut self, paths: &[PathBuf]) -> Result<(), LoadError> {
        let mut files = Vec::new();
        for p in paths {
            collect_rule_files(p, &mut files)
                .map_err(|source| LoadError::Io { path: p.display().to_string(), source })?;
        }
        for f in files {
            let text = std::fs::read(&f).map_err(|source| LoadError::Io { path: f.display().to_string(), source })?;
            let text = String::from_utf8_lossy(&text).into_owned();
            self.add_text(&RuleText { path: f.display().to_string(), text });
        }
        self.finish();
        Ok(())
    }

    /// Resolves correlation references, decides which rules report, and lints.
    fn finish(&mut self) {
        let mut problems = self.load_problems.clone();
        for c in &mut self.correlations {
            c.rules.clear();
            for r in &c.rule_refs {
                match self.detections.iter().position(|d| d.meta.name.as_deref() == Some(r.as_str()) || d.meta.id == *r)
                {
                    Some(i) => c.rules.push(i),
                    None => problems.push(RuleProblem {
                        severity: ProblemSeverity::Error,
                        path: c.meta.origin.path.clone(),
                        line: Some(c.meta.origin.line),
                        rule: Some(c.meta.title.clone()),
                        message: format!("correlation names rule {r:?}, which is not loaded"),
                        rule_loaded: false,
                    }),
                }
            }
        }
        self.correlations.retain(|c| c.rules.len() == c.rule_refs.len());
        let mut reports = vec![true; self.detections.len()];
        for (i, report) in reports.iter_mut().enumerate() {
            let users: Vec<&CorrelationRule> = self.correlations.iter().filter(|c| c.rules.contains(&i)).collect();
            if !users.is_empty() && users.iter().all(|c| !c.generate) {
                *report = false;
            }
        }
        self.reports = reports;
        self.active = self.detections.iter().map(|d| d.meta.is_kubernetes_audit()).collect();
        self.contextual = (0..self.detections.len())
            .filter(|&i| self.active[i] && reads_context(&self.detections[i].detection))
            .collect();
        self.address_items = address_items(&self.detections, &self.active);
        let in_index: Vec<bool> =
            self.active.iter().enumerate().map(|(i, a)| *a && !self.contextual.contains(&i)).collect();
        self.index = RuleIndex::build(&self.detections, &in_index);
        problems.extend(crate::lint::lint(self));
        self.problems = problems;
    }

    /// Indices of the detection rules that match `event`.
    pub fn matching(&self, event: &AuditEvent, out: &mut Vec<usize>) {
        let view = kir_audit::EventView::new(event);
        crate::memo::matching(
            self.index.generation,
            event,
            self.address_items.as_deref(),
            |revealed| self.verdict(&event.verb, event.resource(), &revealed),
            |left| self.detections[left.rule].detection.matches_view_knowing(&view, &left.known),
            out,
        );
    }

    /// [`RuleSet::matching`] without its memo: every candidate rule evaluated on the whole event.
    /// The two always agree; this one is the reference the tests hold the memo to.
    pub fn matching_rule_by_rule(&self, event: &AuditEvent, out: &mut Vec<usize>) {
        let view = kir_audit::EventView::new(event);
        self.index.for_each_candidate(&event.verb, event.resource(), |i| {
            if self.detections[i].detection.matches_view(&view) {
                out.push(i);
            }
            false
        });
    }

    /// What the fields a memo key holds (`revealed`) say of each candidate rule.
    fn verdict<'a>(&self, verb: &str, resource: Option<&str>, revealed: &impl kir_audit::Fields<'a>) -> Verdict {
        let mut left = Vec::new();
        self.index.for_each_candidate(verb, resource, |rule| {
            match self.detections[rule].detection.searches_partial(revealed) {
                (_, Some(false)) => {}
                (_, Some(true)) => left.push(Left { rule, sure: true, known: Box::default() }),
                (known, None) => left.push(Left { rule, sure: false, known }),
            }
            false
        });
        Verdict(left.into())
    }

    /// Whether any rule could match the request whose last stage has `envelope`: `false` when
    /// the envelope alone rules every rule out, so the hunt need not decode the request
    /// ([`kir_audit::envelope`]). Contextual rules are not asked: the caller decodes every
    /// request that could feed or need the roles it learns.
    pub fn may_match(&self, envelope: &kir_audit::Envelope) -> bool {
        crate::memo::may_match(
            self.index.generation,
            envelope,
            self.address_items.as_deref(),
            |revealed| self.verdict(&envelope.verb, envelope.resource(), &revealed),
            |left| self.detections[left.rule].detection.may_match_knowing(&envelope, &left.known),
        )
    }

    /// [`RuleSet::may_match`] without its memo: every candidate rule asked on the whole
    /// envelope. The two always agree; this one is the reference the tests hold the memo to.
    pub fn may_match_rule_by_rule(&self, envelope: &kir_audit::Envelope) -> bool {
        let mut may = false;
        self.index.for_each_candidate(&envelope.verb, envelope.resource(), |i| {
            may = self.detections[i].detection.may_match(&envelope);
            may
        });
        may
    }

    /// Whether any rule needs the context (`kir.roleRef.power`) the hunt learns as it reads.
    pub fn has_contextual(&self) -> bool {
        !self.contextual.is_empty()
    }

    /// Indices of the contextual rules that match `event`, whose `context` the caller filled.
    pub fn matching_contextual(&self, event: &AuditEvent, out: &mut Vec<usize>) {
        let view = kir_audit::EventView::new(event);
        for &i in &self.contextual {
            if self.detections[i].detection.matches_view(&view) {
                out.push(i);
            }
        }
    }

    pub fn reports(&self, rule: usize) -> bool {
        self.reports.get(rule).copied().unwrap_or(true)
    }

    pub fn correlator(&self) -> Correlator {
        Correlator::new(self.correlations.clone())
    }

    /// Every finding `event` gives, one event after another through `correlator`: each matching
    /// rule's correlation findings, then its own finding when the rule reports. This is what
    /// `kir hunt` reports before its filters (it matches in parallel and correlates in order, the
    /// same two steps).
    pub fn detect(&self, correlator: &mut Correlator, event: &AuditEvent) -> Vec<Finding> {
        let mut hits = Vec::new();
        self.matching(event, &mut hits);
        let mut out = Vec::new();
        for rule in hits {
            let finding = self.finding(rule, event);
            out.extend(correlator.observe(rule, event, &finding));
            if self.reports(rule) {
                out.push(finding);
            }
        }
        out
    }

    /// The finding of detection rule `rule` on `event`.
    pub fn finding(&self, rule: usize, event: &AuditEvent) -> Finding {
        let meta = &self.detections[rule].meta;
        Finding {
            rule_id: meta.id.clone(),
            title: meta.title.clone(),
            severity: meta.severity(),
            time: event.time(),
            audit_ids: vec![event.audit_id.clone()],
            techniques: meta.techniques.clone(),
            tactics: meta.tactics.clone(),
            threat_matrix: meta.threat_matrix.clone(),
            actor: actor_of(event),
            object: object_of(event),
            verb: event.verb.clone(),
            response_code: event.response_code(),
            source: SourceRef { path: event.origin.path.to_string(), line: event.origin.line },
            kind: "detection",
            rule_name: meta.name.clone(),
            event_count: 1,
            request_uri: event.request_uri.clone(),
            cluster: event.origin.cluster.as_deref().map(str::to_string),
            images: kir_audit::field::images(event),
        }
    }

    /// Every item of every detection rule, with the rule index.
    pub fn items(&self) -> impl Iterator<Item = (usize, &Item)> {
        self.detections.iter().enumerate().flat_map(|(i, d)| {
            d.detection.searches.iter().flat_map(move |s| match s {
                Search::Maps(maps) => maps.iter().flatten().map(move |item| (i, item)).collect::<Vec<_>>(),
                Search::Keywords(_) => Vec::new(),
            })
        })
    }

    pub fn unconfigured_items(&self, rule: usize) -> bool {
        self.detections[rule].detection.searches.iter().any(|s| match s {
            Search::Maps(maps) => maps.iter().flatten().any(|i| matches!(i.op, ItemOp::Unconfigured)),
            Search::Keywords(_) => false,
        })
    }
}

/// Every item of the `active` rules that reads `sourceIPs`, or `None` when an item compares a
/// field with the addresses (`|fieldref`). The memo then keys a request by what these items
/// say of its addresses rather than by the addresses: a busy cluster's requests come from
/// thousands of pod and node addresses that no rule tells apart, and a key per address made
/// the memo work out a verdict for most requests again.
fn address_items(rules: &[DetectionRule], active: &[bool]) -> Option<Vec<Item>> {
    let mut items = Vec::new();
    let searches = rules.iter().zip(active).filter(|(_, a)| **a).flat_map(|(r, _)| &r.detection.searches);
    for item in searches
        .filter_map(|s| match s {
            Search::Maps(maps) => Some(maps.iter().flatten()),
            Search::Keywords(_) => None,
        })
        .flatten()
    {
        if let ItemOp::FieldRef(refs) = &item.op
            && (item.field == kir_audit::Field::SourceIps || refs.contains(&kir_audit::Field::SourceIps))
        {
            return None;
        }
        if item.field == kir_audit::Field::SourceIps {
            items.push(item.clone());
        }
    }
    Some(items)
}

/// Whether a detection reads a field only the hunt's context fills.
fn reads_context(detection: &crate::detection::Detection) -> bool {
    detection.searches.iter().any(|s| match s {
        Search::Maps(maps) => maps.iter().flatten().any(|i| matches!(i.field, kir_audit::Field::RoleRefPower)),
        Search::Keywords(_) => false,
    })
}

fn collect_rule_files(path: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    if path.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)?.filter_map(|e| e.ok().map(|e| e.path())).collect();
        entries.sort();
        for e in entries {
            if e.is_dir() {
                collect_rule_files(&e, out)?;
            } else if e.extension().is_some_and(|x| x == "yml" || x == "yaml") {
                out.push(e);
            }
        }
    } else {
        std::fs::metadata(path)?;
        out.push(path.to_path_buf());
    }
    Ok(())
}

/// The default lists of the built-in pack (`rules/placeholders/*.yml`).
pub fn builtin_placeholders() -> Placeholders {
    let mut out = Placeholders::new();
    for (path, text) in BUILTIN_RULES.iter().filter(|(p, _)| p.starts_with("placeholders/")) {
        match parse_placeholders(text) {
            Ok(p) => out.extend(p),
            // The pack is tested in CI; a broken list here is a build defect, not user input.
            Err(e) => debug_assert!(false, "rules/{path}: {e}"),
        }
    }
    out
}

/// A `placeholders:` map of name → list of strings (a config file's or the pack's).
pub fn parse_placeholders(text: &str) -> Result<Placeholders, String> {
    #[derive(serde::Deserialize)]
    struct File {
        #[serde(default)]
        placeholders: std::collections::BTreeMap<String, Option<Vec<serde_json::Value>>>,
    }
    let file: File = serde_saphyr::from_str(text).map_err(|e| e.to_string())?;
    Ok(file
        .placeholders
        .into_iter()
        .map(|(k, v)| {
            let list = v
                .unwrap_or_default()
                .into_iter()
                .map(|v| match v {
                    serde_json::Value::String(s) => s,
                    other => other.to_string(),
                })
                .collect();
            (k, list)
        })
        .collect())
}

#[cfg(test)]
mod parsed_ahead_tests {
    use super::*;

    /// The values build.rs parsed are those the YAML parser gives at run time, document for
    /// document: the hunt's start-up reads the first, `kir rules lint` on a copy the second.
    #[test]
    fn the_built_in_pack_parsed_ahead_is_the_pack_parsed_now() {
        for ((path, text), values) in BUILTIN_RULES.iter().zip(BUILTIN_VALUES) {
            let docs = crate::documents::documents(text);
            assert_eq!(values.len(), docs.len(), "{path}: every document of the pack parses");
            for ((_, doc), json) in docs.iter().zip(values.iter()) {
                let now: serde_json::Value = serde_saphyr::from_str(doc).expect("the pack is valid YAML");
                let ahead: serde_json::Value = serde_json::from_str(json).expect("build.rs wrote JSON");
                assert_eq!(now, ahead, "{path}");
            }
            assert_eq!(parsed_ahead(text), Some(*values), "{path}");
        }
        assert_eq!(parsed_ahead("title: not a built-in rule\n"), None);
    }
}
