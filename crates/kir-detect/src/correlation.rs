//! Correlation rules (`event_count`, `value_count`, `temporal`) over the stream of detection
//! hits, in event time.

use std::collections::{HashMap, HashSet, VecDeque};

use jiff::{SignedDuration, Timestamp};
use kir_audit::{AuditEvent, Field};

use crate::finding::Finding;
use crate::rule::RuleMeta;

#[derive(Debug, Clone)]
pub enum CorrelationKind {
    EventCount,
    ValueCount(Field),
    Temporal { ordered: bool },
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Threshold {
    pub gt: Option<f64>,
    pub gte: Option<f64>,
    pub lt: Option<f64>,
    pub lte: Option<f64>,
    pub eq: Option<f64>,
}

impl Threshold {
    pub fn met(&self, n: f64) -> bool {
        self.gt.is_none_or(|t| n > t)
            && self.gte.is_none_or(|t| n >= t)
            && self.lt.is_none_or(|t| n < t)
            && self.lte.is_none_or(|t| n <= t)
            && self.eq.is_none_or(|t| n == t)
    }
}

#[derive(Debug, Clone)]
pub struct CorrelationRule {
    pub meta: RuleMeta,
    pub kind: CorrelationKind,
    /// The rules as the file names them.
    pub rule_refs: Vec<String>,
    /// Indices of those rules among the detection rules, once resolved.
    pub rules: Vec<usize>,
    pub group_by: Vec<String>,
    pub timespan: SignedDuration,
    pub threshold: Threshold,
    /// Whether the correlated rules also report on their own.
    pub generate: bool,
}

struct Entry {
    time: Timestamp,
    rule: usize,
    value: Option<String>,
    finding: Finding,
}

/// One group of one correlation rule (one actor, say): the events of its window, and the
/// burst it is in, once the threshold was met.
#[derive(Default)]
struct Group {
    window: VecDeque<Entry>,
    /// How many entries of the window hold each value (`value_count`): the distinct values are
    /// counted as they come and go, not sorted out of the window at every event.
    values: HashMap<String, usize>,
    /// Index in `Correlator::bursts` of the burst still going on.
    open: Option<usize>,
    /// The burst's latest event: it goes on while events come within the timespan of it.
    last: Option<Timestamp>,
}

/// A burst reported: its finding grows with every further event of the burst.
struct Burst {
    finding: Finding,
    ids: HashSet<String>,
}

/// The state of every correlation rule's groups.
pub struct Correlator {
    rules: Vec<CorrelationRule>,
    group_fields: Vec<Vec<Field>>,
    /// For each detection rule, the correlations that use it.
    users: HashMap<usize, Vec<usize>>,
    windows: Vec<HashMap<Vec<String>, Group>>,
    /// Every burst reported, in the order `observe` returned them.
    bursts: Vec<Burst>,
    latest: Option<Timestamp>,
    /// Bursts that grew since [`Correlator::take_grown`] last ran, when asked to keep them
    /// (a live stream updates the finding it stored; an offline hunt replaces it at the end).
    grown: Option<Vec<usize>>,
}

impl Correlator {
    pub fn new(rules: Vec<CorrelationRule>) -> Self {
        let mut users: HashMap<usize, Vec<usize>> = HashMap::new();
        for (ci, c) in rules.iter().enumerate() {
            for &r in &c.rules {
                users.entry(r).or_default().push(ci);
            }
        }
        let group_fields = rules.iter().map(|c| c.group_by.iter().map(|g| Field::parse(g)).collect()).collect();
        let windows = rules.iter().map(|_| HashMap::new()).collect();
        Correlator { rules, group_fields, users, windows, bursts: Vec::new(), latest: None, grown: None }
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Whether detection rule `rule` feeds any correlation.
    pub fn uses(&self, rule: usize) -> bool {
        self.users.contains_key(&rule)
    }

    /// The final finding of every burst, in the order `observe` first returned them: a burst
    /// goes on while its group's events come within the timespan of its latest one, and every
    /// one of them joins the same finding (its `audit_ids` and `event_count` grow), so a burst is
    /// one finding however long it lasts.
    pub fn bursts(&self) -> impl Iterator<Item = &Finding> {
        self.bursts.iter().map(|b| &b.finding)
    }

    /// Bursts reported so far.
    pub fn burst_count(&self) -> usize {
        self.bursts.len()
    }

    /// Burst `index` (in the order `observe` reported them) as it stands now.
    pub fn burst(&self, index: usize) -> Option<&Finding> {
        self.bursts.get(index).map(|b| &b.finding)
    }

    /// Keeps, from now on, which bursts grow (see [`Correlator::take_grown`]).
    pub fn track_growth(&mut self) {
        self.grown.get_or_insert_with(Vec::new);
    }

    /// The bursts that grew since the last call, each once, in the order they were reported.
    pub fn take_grown(&mut self) -> Vec<usize> {
        let mut grown = self.grown.as_mut().map(std::mem::take).unwrap_or_default();
        grown.sort_unstable();
        grown.dedup();
        grown
    }

    /// Records that detection rule `rule` matched `event`; returns the correlations it completes
    /// (each burst once, when its threshold is first met, with every request of the window so
    /// far; later requests of the same burst join it: see [`Correlator::bursts`]).
    /// `finding` is the detection finding for the event (kept to describe the correlation).
    pub fn observe(&mut self, rule: usize, event: &AuditEvent, finding: &Finding) -> Vec<Finding> {
        let Some(correlations) = self.users.get(&rule) else {
            return Vec::new();
        };
        // Events without a time are placed at the latest time seen, so they still count.
        let time = event.time().or(self.latest).unwrap_or(Timestamp::UNIX_EPOCH);
        self.latest = Some(self.latest.map_or(time, |l| l.max(time)));
        let mut out = Vec::new();
        for &ci in correlations {
            let corr = &self.rules[ci];
            // Windows are per cluster: two clusters' events never make one burst.
            let cluster = event.origin.cluster.as_deref().unwrap_or("").to_string();
            let key: Vec<String> = std::iter::once(cluster)
                .chain(self.group_fields[ci].iter().map(|f| {
                    let mut first = String::new();
                    f.any(event, &mut |v| {
                        first = v.text().into_owned();
                        true
                    });
                    first
                }))
                .collect();
            let value = match &corr.kind {
                CorrelationKind::ValueCount(field) => {
                    let mut first = None;
                    field.any(event, &mut |v| {
                        first = Some(v.text().into_owned());
                        true
                    });
                    match first {
                        Some(v) => Some(v),
                        // An event without the counted field adds no value.
                        None => continue,
                    }
                }
                _ => None,
            };
            let group = self.windows[ci].entry(key).or_default();
            // Checked: a window that reaches past the calendar's ends holds everything.
            let horizon = time.checked_sub(corr.timespan).unwrap_or(Timestamp::MIN);
            let end = time.checked_add(corr.timespan).unwrap_or(Timestamp::MAX);
            if let (Some(b), Some(last)) = (group.open, group.last) {
                let near = last.checked_add(corr.timespan).unwrap_or(Timestamp::MAX) >= time
                    && last.checked_sub(corr.timespan).unwrap_or(Timestamp::MIN) <= time;
                if near {
                    let burst = &mut self.bursts[b];
                    for id in &finding.audit_ids {
                        if burst.ids.insert(id.clone()) {
                            burst.finding.audit_ids.push(id.clone());
                        }
                    }
                    burst.finding.event_count += 1;
                    group.last = Some(last.max(time));
                    if let Some(grown) = &mut self.grown {
                        grown.push(b);
                    }
                    continue;
                }
                // The burst is over; a new one starts from nothing.
                group.open = None;
                group.last = None;
            }
            let Group { window, values, .. } = group;
            window.retain(|e| {
                let keep = e.time >= horizon && e.time <= end;
                if !keep && let Some(value) = &e.value {
                    forget(values, value);
                }
                keep
            });
            if let Some(value) = &value {
                *values.entry(value.clone()).or_default() += 1;
            }
            window.push_back(Entry { time, rule, value, finding: finding.clone() });
            let count = match &corr.kind {
                CorrelationKind::EventCount => window.len(),
                CorrelationKind::ValueCount(_) => {
                    debug_assert_eq!(values.len(), distinct_values(window), "the counts follow the window");
                    values.len()
                }
                CorrelationKind::Temporal { ordered } => {
                    let mut seen: Vec<usize> = Vec::new();
                    let mut sorted: Vec<&Entry> = window.iter().collect();
                    sorted.sort_by_key(|e| e.time);
                    for e in sorted {
                        let position = corr.rules.iter().position(|&r| r == e.rule);
                        if *ordered {
                            if position == Some(seen.len()) {
                                seen.push(e.rule);
                            }
                        } else if !seen.contains(&e.rule) {
                            seen.push(e.rule);
                        }
                    }
                    seen.len()
                }
            };
            if corr.threshold.met(count as f64) {
                let entries: Vec<Entry> = window.drain(..).collect();
                values.clear();
                let last = entries.iter().map(|e| e.time).max();
                let finding = correlation_finding(corr, entries);
                group.open = Some(self.bursts.len());
                group.last = last;
                self.bursts.push(Burst { ids: finding.audit_ids.iter().cloned().collect(), finding: finding.clone() });
                out.push(finding);
            }
        }
        out
    }
}

/// The distinct values of a window, counted from its entries: what `Group::values` holds.
fn distinct_values(window: &VecDeque<Entry>) -> usize {
    window.iter().filter_map(|e| e.value.as_deref()).collect::<HashSet<_>>().len()
}

/// One entry holding `value` left the window.
fn forget(values: &mut HashMap<String, usize>, value: &str) {
    if let Some(count) = values.get_mut(value) {
        *count -= 1;
        if *count == 0 {
            values.remove(value);
        }
    }
}

fn correlation_finding(corr: &CorrelationRule, mut entries: Vec<Entry>) -> Finding {
    entries.sort_by_key(|e| e.time);
    let mut audit_ids: Vec<String> = Vec::new();
    for e in &entries {
        for id in &e.finding.audit_ids {
            if !audit_ids.contains(id) {
                audit_ids.push(id.clone());
            }
        }
    }
    let event_count = entries.len();
    let first = entries.swap_remove(0).finding;
    Finding {
        rule_id: corr.meta.id.clone(),
        title: corr.meta.title.clone(),
        severity: corr.meta.severity(),
        audit_ids,
        techniques: corr.meta.techniques.clone(),
        tactics: corr.meta.tactics.clone(),
        threat_matrix: corr.meta.threat_matrix.clone(),
        kind: "correlation",
        rule_name: corr.meta.name.clone(),
        event_count,
        ..first
    }
}
