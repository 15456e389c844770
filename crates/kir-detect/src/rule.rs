//! Sigma rule files: YAML documents in, rules (detection and correlation) out, with every
//! problem named by file, line and field.

use std::fmt;

use serde_json::Value;

use crate::correlation::{CorrelationKind, CorrelationRule, Threshold};
use crate::detection::{self, Detection, Placeholders};
use crate::documents::documents;
use crate::level::Level;

/// Where a rule came from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RuleOrigin {
    pub path: String,
    /// 1-based line of the document's first line.
    pub line: usize,
}

/// A problem with a rule file: fatal (`Error`, the rule is not loaded) or a lint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleProblem {
    pub severity: ProblemSeverity,
    pub path: String,
    pub line: Option<usize>,
    /// The rule's title or id, when known.
    pub rule: Option<String>,
    pub message: String,
    /// The rule was loaded despite the problem (a lint); `false`: it was left out.
    pub rule_loaded: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ProblemSeverity {
    Warning,
    Error,
}

impl fmt::Display for RuleProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let severity = match self.severity {
            ProblemSeverity::Error => "error",
            ProblemSeverity::Warning => "warning",
        };
        write!(f, "{}", self.path)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        write!(f, ": {severity}")?;
        if let Some(rule) = &self.rule {
            write!(f, " in {rule:?}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// What every rule has, detection or correlation.
#[derive(Debug, Clone, Default)]
pub struct RuleMeta {
    pub id: String,
    pub name: Option<String>,
    pub title: String,
    pub description: String,
    pub status: Option<String>,
    pub level: Option<Level>,
    pub tags: Vec<String>,
    pub techniques: Vec<String>,
    /// ATT&CK tactics (`attack.credential-access` → `credential-access`).
    pub tactics: Vec<String>,
    pub threat_matrix: Vec<String>,
    pub falsepositives: Vec<String>,
    pub author: Option<String>,
    pub logsource: Option<Value>,
    pub origin: RuleOrigin,
    pub examples: Vec<Example>,
    /// `routine:` (kir extension): an identity that matches at least `events` times over at
    /// least `over` of the input does this as its everyday work (an operator), and `kir hunt`
    /// leaves its findings of this rule out, saying so.
    pub routine: Option<Routine>,
    /// The YAML document, to point messages at the line of a field.
    pub text: String,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Routine {
    pub events: usize,
    pub over: kir_core::Duration,
}

impl RuleMeta {
    /// The file line of the first line of this rule that mentions `needle`.
    pub fn line_of(&self, needle: &str) -> usize {
        line_of(&self.text, self.origin.line, needle).unwrap_or(self.origin.line)
    }

    /// The file line of `example` (the first that mentions its name): worked out when asked,
    /// as it is only shown when the example fails, and placing every example of the pack was
    /// a sixth of every start-up.
    pub fn example_line(&self, example: &Example) -> Option<usize> {
        line_of(&self.text, self.origin.line, &example.name)
    }

    /// The file line where `key` is written as a map key (`key:` or `key|modifier:`).
    pub fn line_of_key(&self, key: &str) -> usize {
        self.text
            .lines()
            .position(|l| {
                let l = l.trim_start().trim_start_matches(['\'', '"']);
                l.strip_prefix(key).is_some_and(|rest| rest.starts_with([':', '|', '\'', '"']))
            })
            .map(|i| self.origin.line + i)
            .unwrap_or(self.origin.line)
    }

    /// What findings show when a rule has no level: Sigma's default.
    pub fn severity(&self) -> Level {
        self.level.unwrap_or(Level::Medium)
    }

    /// True when the logsource is Kubernetes audit (or not given).
    pub fn is_kubernetes_audit(&self) -> bool {
        let Some(ls) = &self.logsource else {
            return true;
        };
        let product = ls.get("product").and_then(Value::as_str);
        let service = ls.get("service").and_then(Value::as_str);
        product.is_none_or(|p| p.eq_ignore_ascii_case("kubernetes"))
            && service.is_none_or(|s| s.eq_ignore_ascii_case("audit"))
    }
}

/// One example of a rule's embedded self-test (`examples:`).
#[derive(Debug, Clone)]
pub struct Example {
    pub name: String,
    pub should_match: bool,
    pub events: Vec<Value>,
    /// Placeholder lists this example sets (for rules that are off until configured).
    pub placeholders: Option<Placeholders>,
}

#[derive(Debug, Clone)]
pub struct DetectionRule {
    pub meta: RuleMeta,
    pub detection: Detection,
    /// The `detection` section as written, to compile again with other placeholders.
    pub source: Value,
}

/// A rule file's documents, parsed.
#[derive(Debug, Default)]
pub struct ParsedFile {
    pub detections: Vec<DetectionRule>,
    pub correlations: Vec<CorrelationRule>,
    pub problems: Vec<RuleProblem>,
}

/// The first line of `doc` that mentions `needle`, as a file line number.
fn line_of(doc: &str, first_line: usize, needle: &str) -> Option<usize> {
    if needle.is_empty() || needle.contains(['\n', '\r']) {
        return doc.lines().position(|l| l.contains(needle)).map(|i| first_line + i);
    }
    // One search of the whole text, not one per line: every example of every rule is placed
    // when the pack loads, at each start.
    let at = doc.find(needle)?;
    Some(first_line + doc.as_bytes()[..at].iter().filter(|&&b| b == b'\n').count())
}

/// Parses one rule file's text.
pub fn parse_file(path: &str, text: &str, placeholders: &Placeholders) -> ParsedFile {
    let mut out = ParsedFile::default();
    let docs = documents(text);
    let ahead = crate::ruleset::parsed_ahead(text).filter(|values| values.len() == docs.len());
    for (i, (first_line, doc)) in docs.into_iter().enumerate() {
        let problem = |line: Option<usize>, rule: Option<String>, message: String| RuleProblem {
            severity: ProblemSeverity::Error,
            path: path.to_string(),
            line,
            rule,
            message,
            rule_loaded: false,
        };
        // The same value either way (a test holds the two together).
        let parsed = match ahead.and_then(|values| serde_json::from_str::<Value>(values[i]).ok()) {
            Some(value) => Ok(value),
            None => serde_saphyr::from_str(&doc),
        };
        let value: Value = match parsed {
            Ok(v) => v,
            Err(e) => {
                let (line, message) = yaml_error(&e, first_line);
                out.problems.push(problem(line, None, format!("not valid YAML: {message}")));
                continue;
            }
        };
        let mut value = value;
        let Some(map) = value.as_object_mut() else {
            out.problems.push(problem(Some(first_line), None, "a rule must be a YAML map".into()));
            continue;
        };
        // Moved out, not copied: the examples' events are half the pack's text.
        let examples = map.remove("examples");
        let map = &*map;
        let origin = RuleOrigin { path: path.to_string(), line: first_line };
        let meta = match meta(map, examples, origin, &doc) {
            Ok(m) => m,
            Err((needle, message)) => {
                let line = needle.and_then(|n| line_of(&doc, first_line, n)).or(Some(first_line));
                let title = map.get("title").and_then(Value::as_str).map(str::to_string);
                out.problems.push(problem(line, title, message));
                continue;
            }
        };
        let label = Some(meta.title.clone());
        if let Some(corr) = map.get("correlation") {
            match correlation(corr) {
                Ok((kind, rules, group_by, timespan, threshold, generate)) => out.correlations.push(CorrelationRule {
                    meta,
                    kind,
                    rule_refs: rules,
                    rules: Vec::new(),
                    group_by,
                    timespan,
                    threshold,
                    generate,
                }),
                Err(message) => out.problems.push(problem(
                    line_of(&doc, first_line, "correlation:"),
                    label,
                    format!("correlation: {message}"),
                )),
            }
        } else if let Some(det) = map.get("detection") {
            match detection::compile(det, placeholders) {
                Ok(detection) => out.detections.push(DetectionRule { meta, detection, source: det.clone() }),
                Err(message) => {
                    // Point at the most specific thing the message names: the field, else the
                    // condition, else the detection.
                    let field = message.split('`').rev().nth(1).map(str::to_string);
                    let line = if message.starts_with("condition") {
                        line_of(&doc, first_line, "condition:")
                    } else {
                        field.and_then(|f| line_of(&doc, first_line, &f))
                    }
                    .or_else(|| line_of(&doc, first_line, "detection:"));
                    out.problems.push(problem(line, label, message));
                }
            }
        } else if map.contains_key("placeholders") {
            continue;
        } else {
            out.problems.push(problem(Some(first_line), label, "a rule needs `detection` (or `correlation`)".into()));
        }
    }
    out
}

fn yaml_error(e: &serde_saphyr::Error, first_line: usize) -> (Option<usize>, String) {
    let text = e.to_string();
    let line = e.location().map(|l| first_line + l.line() as usize - 1);
    (line.or(Some(first_line)), text.lines().next().unwrap_or_default().to_string())
}

type MetaError = (Option<&'static str>, String);

fn string_list(map: &serde_json::Map<String, Value>, key: &'static str) -> Result<Vec<String>, MetaError> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![s.clone()]),
        Some(Value::Array(list)) => list
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.clone()),
                Value::Number(n) => Ok(n.to_string()),
                _ => Err((Some(key), format!("`{key}` must be a list of strings"))),
            })
            .collect(),
        Some(_) => Err((Some(key), format!("`{key}` must be a list of strings"))),
    }
}

fn meta(
    map: &serde_json::Map<String, Value>,
    examples: Option<Value>,
    origin: RuleOrigin,
    doc: &str,
) -> Result<RuleMeta, MetaError> {
    let text = |key: &'static str| -> Result<Option<String>, MetaError> {
        match map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(_) => Err((Some(key), format!("`{key}` must be text"))),
        }
    };
    let title = text("title")?.ok_or((None, "a rule needs a `title`".to_string()))?;
    let name = text("name")?;
    let id = text("id")?.or_else(|| name.clone()).unwrap_or_else(|| title.clone());
    let level = match text("level")? {
        Some(l) => Some(l.parse::<Level>().map_err(|e| (Some("level"), e))?),
        None => None,
    };
    let tags = string_list(map, "tags")?;
    let techniques = tags
        .iter()
        .filter_map(|t| t.strip_prefix("attack."))
        .filter(|t| t.len() > 1 && t.starts_with(['t', 'T']) && t[1..].starts_with(|c: char| c.is_ascii_digit()))
        .map(|t| t.to_ascii_uppercase())
        .collect();
    let tactics = crate::finding::tactics_of(&tags);
    let threat_matrix =
        tags.iter().filter_map(|t| t.strip_prefix("threat-matrix.")).map(|t| t.to_ascii_uppercase()).collect();
    let examples = match examples {
        None => Vec::new(),
        Some(Value::Array(list)) => list
            .into_iter()
            .enumerate()
            .map(|(i, mut ex)| {
                let name = ex.get("name").and_then(Value::as_str).unwrap_or("example").to_string();
                let should_match = ex.get("match").and_then(Value::as_bool).ok_or((
                    Some("examples"),
                    format!("example {} ({name:?}) needs `match: true` or `match: false`", i + 1),
                ))?;
                let key = if ex.get("events").is_some() { "events" } else { "event" };
                let events = match ex.get_mut(key).map(Value::take) {
                    Some(Value::Array(events)) => events,
                    Some(single @ Value::Object(_)) => vec![single],
                    _ => return Err((Some("examples"), format!("example {} ({name:?}) needs `events`", i + 1))),
                };
                let placeholders = match ex.get("placeholders") {
                    None => None,
                    Some(p) => Some(
                        serde_json::from_value::<std::collections::HashMap<String, Vec<String>>>(p.clone()).map_err(
                            |e| {
                                (
                                    Some("examples"),
                                    format!(
                                        "example {} ({name:?}): `placeholders` must map names to lists of strings: {e}",
                                        i + 1
                                    ),
                                )
                            },
                        )?,
                    ),
                };
                Ok(Example { name, should_match, events, placeholders })
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err((Some("examples"), "`examples` must be a list".into())),
    };
    let routine = match map.get("routine") {
        None | Some(Value::Null) => None,
        Some(Value::Object(r)) => {
            let events = r
                .get("events")
                .and_then(Value::as_u64)
                .filter(|n| *n >= 2)
                .ok_or((Some("routine"), "`routine.events` must be a whole number of at least 2".to_string()))?;
            let over = r
                .get("over")
                .and_then(Value::as_str)
                .ok_or((Some("routine"), "`routine.over` must be a duration such as 30m".to_string()))?;
            let over =
                kir_core::Duration::parse(over).map_err(|e| (Some("routine"), format!("`routine.over`: {e}")))?;
            Some(Routine { events: events as usize, over })
        }
        Some(_) => return Err((Some("routine"), "`routine` must be a map: {events: 4, over: 30m}".into())),
    };
    Ok(RuleMeta {
        id,
        name,
        title,
        description: text("description")?.unwrap_or_default(),
        status: text("status")?,
        level,
        tags,
        techniques,
        tactics,
        threat_matrix,
        falsepositives: string_list(map, "falsepositives")?,
        author: text("author")?,
        logsource: map.get("logsource").cloned(),
        origin,
        examples,
        routine,
        text: doc.to_string(),
    })
}

type ParsedCorrelation = (CorrelationKind, Vec<String>, Vec<String>, jiff::SignedDuration, Threshold, bool);

fn correlation(value: &Value) -> Result<ParsedCorrelation, String> {
    let map = value.as_object().ok_or("must be a map")?;
    let kind_text =
        map.get("type").and_then(Value::as_str).ok_or("needs `type` (event_count, value_count, temporal)")?;
    let rules: Vec<String> = match map.get("rules") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).map(str::to_string).collect(),
        _ => return Err("needs `rules`: the names or ids of the rules it correlates".into()),
    };
    if rules.is_empty() {
        return Err("`rules` is empty".into());
    }
    let group_by: Vec<String> = match map.get("group-by") {
        None => Vec::new(),
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).map(str::to_string).collect(),
        Some(_) => return Err("`group-by` must be a list of field names".into()),
    };
    let timespan_text = map.get("timespan").and_then(Value::as_str).ok_or("needs `timespan` (e.g. 5m)")?;
    let timespan = kir_core::Duration::parse(timespan_text).map_err(|e| format!("`timespan`: {e}"))?.to_signed();
    let generate = map.get("generate").and_then(Value::as_bool).unwrap_or(false);
    let condition = map.get("condition");
    let kind = match kind_text {
        "event_count" => CorrelationKind::EventCount,
        "value_count" => {
            let field = condition
                .and_then(|c| c.get("field"))
                .and_then(Value::as_str)
                .ok_or("value_count needs `condition.field`")?;
            CorrelationKind::ValueCount(kir_audit::Field::parse(field))
        }
        "temporal" | "temporal_ordered" => CorrelationKind::Temporal { ordered: kind_text == "temporal_ordered" },
        other => {
            return Err(format!("unknown type {other:?} (event_count, value_count, temporal, temporal_ordered)"));
        }
    };
    let threshold = match condition {
        None if matches!(kind, CorrelationKind::Temporal { .. }) => {
            Threshold { gte: Some(rules.len() as f64), ..Default::default() }
        }
        None => return Err("needs `condition` (e.g. gte: 10)".into()),
        Some(c) => {
            let num = |k: &str| -> Result<Option<f64>, String> {
                match c.get(k) {
                    None => Ok(None),
                    Some(v) => v.as_f64().map(Some).ok_or(format!("condition `{k}` must be a number")),
                }
            };
            let t = Threshold { gt: num("gt")?, gte: num("gte")?, lt: num("lt")?, lte: num("lte")?, eq: num("eq")? };
            if t.gt.is_none() && t.gte.is_none() && t.eq.is_none() {
                if matches!(kind, CorrelationKind::Temporal { .. }) {
                    Threshold { gte: Some(rules.len() as f64), ..t }
                } else {
                    return Err(
                        "condition needs `gt`, `gte` or `eq`: kir reports a group when it reaches the threshold".into(),
                    );
                }
            } else {
                t
            }
        }
    };
    Ok((kind, rules, group_by, timespan, threshold, generate))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    proptest! {
        /// One search of the whole text finds the line a search of each line finds.
        #[test]
        fn line_of_is_the_first_line_that_mentions_the_needle(
            doc in "[ab:\n\r]{0,60}",
            needle in "[ab:\n]{0,4}",
            first_line in 1usize..50,
        ) {
            let by_lines = doc.lines().position(|l| l.contains(needle.as_str())).map(|i| first_line + i);
            prop_assert_eq!(super::line_of(&doc, first_line, &needle), by_lines);
        }
    }
}
