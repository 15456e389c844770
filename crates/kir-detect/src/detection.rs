//! The `detection` section of a Sigma rule, compiled: searches of field items with their
//! modifiers, and the condition over them.

use std::borrow::Cow;
use std::collections::HashMap;
use std::net::IpAddr;

use base64::Engine as _;
use ipnet::IpNet;
use kir_audit::{AuditEvent, EventView, Field, FieldKind, Fields, Scalar};
use regex::Regex;
use serde_json::Value;

use crate::condition::{self, Condition};

/// Named lists for `|expand` (`%name%`).
pub type Placeholders = HashMap<String, Vec<String>>;

#[derive(Debug, Clone)]
pub struct Detection {
    pub names: Vec<String>,
    pub searches: Vec<Search>,
    pub condition: Condition,
}

#[derive(Debug, Clone)]
pub enum Search {
    /// A list of maps: any map matches when all its items match.
    Maps(Vec<Vec<Item>>),
    /// Plain values: any of them found in the event's text fields.
    Keywords(Vec<Matcher>),
}

#[derive(Debug, Clone)]
pub struct Item {
    pub field_name: String,
    pub field: Field,
    pub op: ItemOp,
    /// `|all`: every value must match.
    pub all: bool,
    /// `|not` (kir): some element matches none of the values.
    pub negate: bool,
    /// The modifiers as written, for the linter.
    pub modifiers: Vec<String>,
    /// Its values when they are all `contains` of one case rule: one search for all of them.
    pub contains_any: Option<ContainsAny>,
}

/// Several `contains` values of an item, searched for at once (Aho-Corasick): a rule that names
/// thirty miners looks through each command line once, not thirty times. Built on first use:
/// most rules of a pack never run on a given log, and building costs more than loading.
#[derive(Debug, Clone)]
pub struct ContainsAny {
    cased: bool,
    built: std::sync::OnceLock<Option<aho_corasick::AhoCorasick>>,
}

impl ContainsAny {
    /// Worth it from a few values on, when every one is a plain `contains` of the same case rule.
    fn of(matchers: &[Matcher]) -> Option<ContainsAny> {
        const AT_LEAST: usize = 4;
        let mut cased = None;
        for m in matchers {
            let Matcher::Text(TextMatcher { kind: TextKind::Contains, cased: c, .. }) = m else { return None };
            if *cased.get_or_insert(*c) != *c {
                return None;
            }
        }
        if matchers.len() < AT_LEAST {
            return None;
        }
        Some(ContainsAny { cased: cased?, built: std::sync::OnceLock::new() })
    }

    /// What `matchers.iter().any(|m| m.matches(prepared))` says, for the `matchers` it was made
    /// of (asked one by one if their patterns cannot be built into one search).
    fn matches(&self, matchers: &[Matcher], prepared: &Prepared) -> bool {
        if matches!(prepared.value, Scalar::Null) {
            return false;
        }
        let build = || {
            let patterns = matchers.iter().filter_map(|m| match m {
                Matcher::Text(t) => Some(t.pattern.as_str()),
                _ => None,
            });
            aho_corasick::AhoCorasick::new(patterns).ok()
        };
        match self.built.get_or_init(build) {
            Some(search) => search.is_match(if self.cased { prepared.text() } else { prepared.folded() }),
            None => matchers.iter().any(|m| m.matches(prepared)),
        }
    }
}

#[derive(Debug, Clone)]
pub enum ItemOp {
    Values(Vec<Matcher>),
    Exists(bool),
    FieldRef(Vec<Field>),
    /// `|expand` of placeholders that are all empty: the user has not configured the list.
    Unconfigured,
}

#[derive(Debug, Clone)]
pub enum Matcher {
    Null,
    Bool(bool),
    Number(f64),
    Text(TextMatcher),
    Regex(Regex),
    Cidr(IpNet),
    Compare(Comparison, f64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    Gt,
    Gte,
    Lt,
    Lte,
}

#[derive(Debug, Clone)]
pub struct TextMatcher {
    pub kind: TextKind,
    /// Lower-cased unless `cased`.
    pub pattern: String,
    pub cased: bool,
    /// The value as written, for messages and the linter.
    pub original: String,
}

#[derive(Debug, Clone)]
pub enum TextKind {
    Exact,
    Prefix,
    Suffix,
    Contains,
    /// `a*b*c`: literal parts in order; `anchored` says whether the first part must start the
    /// text and the last must end it. Faster than a regular expression for the usual globs.
    Parts {
        parts: Vec<String>,
        anchored_start: bool,
        anchored_end: bool,
    },
    Glob(Regex),
}

impl Detection {
    pub fn matches(&self, event: &AuditEvent) -> bool {
        self.matches_view(&EventView::new(event))
    }

    /// [`Detection::matches`] on a view the caller keeps across the rules it asks.
    pub fn matches_view(&self, view: &EventView) -> bool {
        self.condition.eval(&mut |i| self.searches[i].matches(view))
    }

    /// Whether the rule could match a request of which `source` holds only some fields: `false`
    /// only when the fields it holds already rule a match out, whatever the others say.
    pub fn may_match<'a>(&self, source: &impl Fields<'a>) -> bool {
        self.eval_partial(source) != Some(false)
    }

    /// Whether the rule matches a request of which `source` holds only some fields: `None`
    /// when the fields it lacks decide.
    pub fn eval_partial<'a>(&self, source: &impl Fields<'a>) -> Option<bool> {
        self.condition.eval_partial(&mut |i| self.searches[i].eval(source))
    }

    /// What each search says on `source` (`None`: the fields it lacks decide), and what the
    /// condition says of them: the searches a memo key decides need not be asked again.
    pub(crate) fn searches_partial<'a>(&self, source: &impl Fields<'a>) -> (Box<[Option<bool>]>, Option<bool>) {
        let known: Box<[Option<bool>]> = self.searches.iter().map(|s| s.eval(source)).collect();
        let verdict = self.condition.eval_partial(&mut |i| known[i]);
        (known, verdict)
    }

    /// [`Detection::matches_view`], with the searches `known` decides taken from it.
    pub(crate) fn matches_view_knowing(&self, view: &EventView, known: &[Option<bool>]) -> bool {
        self.condition.eval(&mut |i| known[i].unwrap_or_else(|| self.searches[i].matches(view)))
    }

    /// [`Detection::may_match`], with the searches `known` decides taken from it.
    pub(crate) fn may_match_knowing<'a>(&self, source: &impl Fields<'a>, known: &[Option<bool>]) -> bool {
        self.condition.eval_partial(&mut |i| known[i].or_else(|| self.searches[i].eval(source))) != Some(false)
    }
}

impl Search {
    /// How expensive the search is at worst: 1 for typed fields, 2 when a request body must be
    /// parsed, 3 for keywords (full text).
    fn cost(&self) -> u8 {
        match self {
            Search::Maps(maps) => maps.iter().flatten().map(|i| cost(&i.field)).max().unwrap_or(0),
            Search::Keywords(_) => 3,
        }
    }

    pub fn matches(&self, view: &EventView) -> bool {
        match self {
            Search::Maps(maps) => maps.iter().any(|items| items.iter().all(|item| item.eval(&view).unwrap_or(false))),
            Search::Keywords(matchers) => keyword_match(matchers, view.event),
        }
    }

    /// [`Search::matches`] on a source that may not hold every field: `None` when the fields
    /// it lacks decide (three-valued: a known `false` item decides its map alone).
    pub fn eval<'a>(&self, source: &impl Fields<'a>) -> Option<bool> {
        match self {
            Search::Maps(maps) => {
                condition::any3(maps.iter().map(|items| condition::all3(items.iter().map(|item| item.eval(source)))))
            }
            // Keywords read the request body as text.
            Search::Keywords(_) => None,
        }
    }
}

/// Keywords look into the text a person would search: the URI, the user agent, the user, and
/// the request body.
fn keyword_match(matchers: &[Matcher], event: &AuditEvent) -> bool {
    let mut texts: Vec<Cow<str>> =
        vec![Cow::Borrowed(event.request_uri.as_str()), Cow::Borrowed(event.user.username.as_str())];
    if let Some(ua) = &event.user_agent {
        texts.push(Cow::Borrowed(ua));
    }
    if let Some(body) = &event.request_object {
        texts.push(body.text());
    }
    texts.iter().any(|t| {
        let folded = t.to_lowercase();
        matchers.iter().any(|m| m.matches_text(t, &folded))
    })
}

impl Item {
    /// Whether the item holds on `source`: `None` when the source does not hold a field the
    /// item reads (an envelope without the request body).
    pub fn eval<'a>(&self, source: &impl Fields<'a>) -> Option<bool> {
        match &self.op {
            ItemOp::Unconfigured => Some(false),
            ItemOp::Exists(want) => Some(source.any(&self.field, &mut |v| !matches!(v, Scalar::Null))? == *want),
            ItemOp::FieldRef(refs) => {
                // Compared in place: no copy of either side.
                let mut unknown = false;
                let mut equals_a_ref = |v: &Scalar| {
                    let text = v.text();
                    refs.iter().any(|r| match source.any(r, &mut |o| o.text() == text) {
                        Some(hit) => hit,
                        None => {
                            unknown = true;
                            false
                        }
                    })
                };
                let hit = if self.negate {
                    source.any(&self.field, &mut |v| !equals_a_ref(&v))?
                } else {
                    source.any(&self.field, &mut |v| equals_a_ref(&v))?
                };
                // Under `|not`, a reference that could not be read may have been the equal one.
                if unknown && (self.negate || !hit) { None } else { Some(hit) }
            }
            ItemOp::Values(matchers) => {
                if self.all && !self.negate {
                    let mut all = true;
                    for m in matchers {
                        if !source.any(&self.field, &mut |v| m.matches(&Prepared::new(&v)))? {
                            all = false;
                            break;
                        }
                    }
                    return Some(all);
                }
                let mut seen = false;
                let hit = source.any(&self.field, &mut |v| {
                    seen = true;
                    let v = Prepared::new(&v);
                    // An element that cannot be compared (not an address for `cidr`, not a number
                    // for `gt`) is no evidence either way, even under `|not`.
                    if self.negate && !matchers.iter().any(|m| m.applies_to(&v)) {
                        return false;
                    }
                    let any = if self.all {
                        matchers.iter().all(|m| m.matches(&v))
                    } else if let Some(set) = &self.contains_any {
                        set.matches(matchers, &v)
                    } else {
                        matchers.iter().any(|m| m.matches(&v))
                    };
                    any != self.negate
                })?;
                // `field: null` also means "the field is not there".
                Some(hit || (!seen && !self.negate && matchers.iter().any(|m| matches!(m, Matcher::Null))))
            }
        }
    }
}

/// A value with its text and lower-cased text worked out at most once, however many values of
/// the item it is compared with.
pub struct Prepared<'v, 'a> {
    value: &'v Scalar<'a>,
    /// Text values are borrowed as they are (nearly every value); others are rendered on demand.
    text: std::cell::OnceCell<Cow<'v, str>>,
    /// `None` when the text has no upper-case letter (the usual case): no copy.
    folded: std::cell::OnceCell<Option<String>>,
    /// The value as an IP address, for `cidr` against several ranges.
    address: std::cell::OnceCell<Option<IpAddr>>,
}

impl<'v, 'a> Prepared<'v, 'a> {
    pub fn new(value: &'v Scalar<'a>) -> Self {
        let text = std::cell::OnceCell::new();
        if let Scalar::Str(s) = value {
            let _ = text.set(Cow::Borrowed(s.as_ref()));
        }
        Prepared { value, text, folded: std::cell::OnceCell::new(), address: std::cell::OnceCell::new() }
    }

    fn text(&self) -> &str {
        self.text.get_or_init(|| self.value.text())
    }

    fn folded(&self) -> &str {
        let text = self.text();
        self.folded
            .get_or_init(|| {
                // Bytes first: most text is ASCII, and lower-case already.
                let maybe_upper = text.bytes().any(|b| b.is_ascii_uppercase() || b >= 0x80);
                (maybe_upper && text.chars().any(char::is_uppercase)).then(|| text.to_lowercase())
            })
            .as_deref()
            .unwrap_or(text)
    }

    fn address(&self) -> Option<IpAddr> {
        *self.address.get_or_init(|| self.text().trim().parse().ok())
    }
}

impl Matcher {
    pub fn matches(&self, prepared: &Prepared) -> bool {
        let value = prepared.value;
        match self {
            Matcher::Null => matches!(value, Scalar::Null),
            Matcher::Bool(b) => match value {
                Scalar::Bool(v) => v == b,
                Scalar::Str(s) => s.eq_ignore_ascii_case(if *b { "true" } else { "false" }),
                _ => false,
            },
            Matcher::Number(n) => value.number().is_some_and(|v| v == *n),
            Matcher::Compare(op, n) => value.number().is_some_and(|v| match op {
                Comparison::Gt => v > *n,
                Comparison::Gte => v >= *n,
                Comparison::Lt => v < *n,
                Comparison::Lte => v <= *n,
            }),
            Matcher::Cidr(net) => prepared.address().is_some_and(|ip| net.contains(&ip)),
            Matcher::Regex(re) => re.is_match(prepared.text()),
            Matcher::Text(t) => {
                if matches!(value, Scalar::Null) {
                    return false;
                }
                if t.cased { t.matches_folded(prepared.text()) } else { t.matches_folded(prepared.folded()) }
            }
        }
    }

    /// Whether `value` is of a kind this matcher compares at all.
    fn applies_to(&self, prepared: &Prepared) -> bool {
        match self {
            Matcher::Cidr(_) => prepared.address().is_some(),
            Matcher::Compare(..) | Matcher::Number(_) => prepared.value.number().is_some(),
            _ => true,
        }
    }

    /// For keywords, where the caller folds once for many matchers.
    fn matches_text(&self, text: &str, folded: &str) -> bool {
        match self {
            Matcher::Text(t) => t.matches_folded(if t.cased { text } else { folded }),
            Matcher::Regex(re) => re.is_match(text),
            _ => false,
        }
    }
}

impl TextMatcher {
    fn matches_folded(&self, text: &str) -> bool {
        match &self.kind {
            TextKind::Exact => text == self.pattern,
            TextKind::Prefix => text.starts_with(&self.pattern),
            TextKind::Suffix => text.ends_with(&self.pattern),
            TextKind::Contains => text.contains(&self.pattern),
            TextKind::Parts { parts, anchored_start, anchored_end } => {
                parts_match(text, parts, *anchored_start, *anchored_end)
            }
            TextKind::Glob(re) => re.is_match(text),
        }
    }
}

// ---- compilation ----

const MODIFIERS: &[&str] = &[
    "contains",
    "startswith",
    "endswith",
    "all",
    "re",
    "i",
    "m",
    "s",
    "cidr",
    "exists",
    "gt",
    "gte",
    "lt",
    "lte",
    "base64",
    "base64offset",
    "utf16le",
    "utf16be",
    "utf16",
    "wide",
    "windash",
    "fieldref",
    "cased",
    "expand",
    "not",
];

/// Compiles a rule's `detection` map. Errors name the search and field.
pub fn compile(detection: &Value, placeholders: &Placeholders) -> Result<Detection, String> {
    let map = detection.as_object().ok_or("`detection` must be a map of searches and a `condition`")?;
    let mut names = Vec::new();
    let mut searches = Vec::new();
    let mut condition_text = None;
    for (name, body) in map {
        if name == "condition" {
            condition_text = Some(body);
            continue;
        }
        if name == "timeframe" {
            continue;
        }
        let search = compile_search(body, placeholders).map_err(|e| format!("search `{name}`: {e}"))?;
        names.push(name.clone());
        searches.push(search);
    }
    let condition = match condition_text {
        None => return Err("`detection` has no `condition`".into()),
        Some(Value::String(text)) => condition::parse(text, &names).map_err(|e| format!("condition: {e}"))?,
        // A list of conditions: any of them.
        Some(Value::Array(list)) => {
            let mut parts = Vec::new();
            for c in list {
                let text = c.as_str().ok_or("condition: a list of conditions must hold strings")?;
                parts.push(condition::parse(text, &names).map_err(|e| format!("condition: {e}"))?);
            }
            Condition::Or(parts)
        }
        Some(_) => return Err("condition: must be a string".into()),
    };
    let mut condition = condition;
    let costs: Vec<u8> = searches.iter().map(Search::cost).collect();
    condition.cheap_first(&costs);
    Ok(Detection { names, searches, condition })
}

fn compile_search(body: &Value, placeholders: &Placeholders) -> Result<Search, String> {
    match body {
        Value::Object(map) => Ok(Search::Maps(vec![compile_map(map, placeholders)?])),
        Value::Array(list) if list.iter().all(Value::is_object) && !list.is_empty() => {
            let maps = list
                .iter()
                .filter_map(Value::as_object)
                .map(|m| compile_map(m, placeholders))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Search::Maps(maps))
        }
        Value::Array(list) => {
            let mut matchers = Vec::new();
            for v in list {
                matchers.extend(value_matchers(v, &KEYWORD_MODS, "keywords")?);
            }
            Ok(Search::Keywords(matchers))
        }
        Value::String(_) | Value::Number(_) => Ok(Search::Keywords(value_matchers(body, &KEYWORD_MODS, "keywords")?)),
        _ => Err("a search must be a map of fields, a list of maps, or a list of keywords".into()),
    }
}

/// Keywords are searched for inside the text, as a full-text search does.
const KEYWORD_MODS: Mods = Mods {
    op: Some("contains"),
    all: false,
    re_flags: String::new(),
    cased: false,
    base64: None,
    wide: None,
    windash: false,
    expand: false,
    fieldref: false,
    exists: false,
    negate: false,
};

#[derive(Debug, Default, Clone)]
struct Mods {
    op: Option<&'static str>,
    all: bool,
    re_flags: String,
    cased: bool,
    base64: Option<bool>,
    wide: Option<&'static str>,
    windash: bool,
    expand: bool,
    fieldref: bool,
    exists: bool,
    negate: bool,
}

fn compile_map(map: &serde_json::Map<String, Value>, placeholders: &Placeholders) -> Result<Vec<Item>, String> {
    let mut items = Vec::new();
    for (key, value) in map {
        let mut parts = key.split('|');
        let field_name = parts.next().unwrap_or_default().to_string();
        let modifiers: Vec<String> = parts.map(str::to_string).collect();
        let mut mods = Mods::default();
        for m in &modifiers {
            let Some(known) = MODIFIERS.iter().find(|k| **k == m.as_str()) else {
                return Err(format!("field `{key}`: unknown modifier {m:?} (known: {})", MODIFIERS.join(", ")));
            };
            match *known {
                "contains" | "startswith" | "endswith" | "re" | "cidr" | "gt" | "gte" | "lt" | "lte" => {
                    if let Some(previous) = mods.op {
                        return Err(format!("field `{key}`: `{previous}` and `{known}` cannot be combined"));
                    }
                    mods.op = Some(known);
                }
                "i" | "m" | "s" => mods.re_flags.push_str(known),
                "all" => mods.all = true,
                "cased" => mods.cased = true,
                "base64" => mods.base64 = Some(false),
                "base64offset" => mods.base64 = Some(true),
                "utf16le" | "wide" | "utf16" => mods.wide = Some("le"),
                "utf16be" => mods.wide = Some("be"),
                "windash" => mods.windash = true,
                "expand" => mods.expand = true,
                "fieldref" => mods.fieldref = true,
                "exists" => mods.exists = true,
                "not" => mods.negate = true,
                _ => {}
            }
        }
        if !mods.re_flags.is_empty() && mods.op != Some("re") {
            return Err(format!("field `{key}`: the regex flags i, m, s need `re`"));
        }
        let field = Field::parse(&field_name);
        let op = if mods.exists {
            match value {
                Value::Bool(b) => ItemOp::Exists(*b),
                Value::String(s) if s.eq_ignore_ascii_case("true") || s.eq_ignore_ascii_case("false") => {
                    ItemOp::Exists(s.eq_ignore_ascii_case("true"))
                }
                _ => return Err(format!("field `{key}`: `exists` needs true or false")),
            }
        } else if mods.fieldref {
            let names = values_of(value);
            let mut refs = Vec::new();
            for n in names {
                match n {
                    Value::String(s) => refs.push(Field::parse(s)),
                    _ => return Err(format!("field `{key}`: `fieldref` needs field names")),
                }
            }
            ItemOp::FieldRef(refs)
        } else {
            let mut raw: Vec<Value> = values_of(value).into_iter().cloned().collect();
            if mods.expand {
                raw = expand(&raw, placeholders).map_err(|e| format!("field `{key}`: {e}"))?;
                if raw.is_empty() {
                    items.push(Item {
                        field_name,
                        field,
                        op: ItemOp::Unconfigured,
                        all: mods.all,
                        negate: mods.negate,
                        modifiers,
                        contains_any: None,
                    });
                    continue;
                }
            }
            let mut matchers = Vec::new();
            for v in &raw {
                matchers.extend(value_matchers(v, &mods, key)?);
            }
            ItemOp::Values(matchers)
        };
        let contains_any = match &op {
            ItemOp::Values(matchers) if !mods.all => ContainsAny::of(matchers),
            _ => None,
        };
        items.push(Item { field_name, field, op, all: mods.all, negate: mods.negate, modifiers, contains_any });
    }
    // Typed fields are cheap; request bodies are parsed on first use: look at the cheap ones first.
    items.sort_by_key(|i| cost(&i.field));
    Ok(items)
}

fn cost(field: &Field) -> u8 {
    match field {
        Field::RequestObject(_)
        | Field::ResponseObject(_)
        | Field::PodSpec(_)
        | Field::Containers(_)
        | Field::Images => 2,
        Field::Unknown(_) => 0,
        _ => 1,
    }
}

fn values_of(value: &Value) -> Vec<&Value> {
    match value {
        Value::Array(list) => list.iter().collect(),
        other => vec![other],
    }
}

fn expand(values: &[Value], placeholders: &Placeholders) -> Result<Vec<Value>, String> {
    let mut out = Vec::new();
    for v in values {
        let Some(text) = v.as_str() else {
            out.push(v.clone());
            continue;
        };
        let mut variants = vec![String::new()];
        let mut rest = text;
        while let Some(start) = rest.find('%') {
            let Some(len) = rest[start + 1..].find('%') else {
                break;
            };
            let name = &rest[start + 1..start + 1 + len];
            let list = placeholders.get(name).ok_or_else(|| format!("unknown placeholder %{name}%"))?;
            let prefix = &rest[..start];
            variants =
                variants.iter().flat_map(|v| list.iter().map(move |item| format!("{v}{prefix}{item}"))).collect();
            rest = &rest[start + len + 2..];
        }
        out.extend(variants.into_iter().map(|v| Value::String(format!("{v}{rest}"))));
    }
    Ok(out)
}

fn value_matchers(value: &Value, mods: &Mods, key: &str) -> Result<Vec<Matcher>, String> {
    let text = match value {
        Value::Null => return Ok(vec![Matcher::Null]),
        Value::Bool(b) if mods.op.is_none() => return Ok(vec![Matcher::Bool(*b)]),
        Value::Number(n) if mods.op.is_none() && mods.base64.is_none() => {
            return Ok(vec![Matcher::Number(n.as_f64().unwrap_or(f64::NAN))]);
        }
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        _ => {
            return Err(format!("field `{key}`: values must be strings, numbers, booleans or null"));
        }
    };
    match mods.op {
        Some(op @ ("gt" | "gte" | "lt" | "lte")) => {
            let n: f64 =
                text.trim().parse().map_err(|_| format!("field `{key}`: `{op}` needs a number, not {text:?}"))?;
            let cmp = match op {
                "gt" => Comparison::Gt,
                "gte" => Comparison::Gte,
                "lt" => Comparison::Lt,
                _ => Comparison::Lte,
            };
            return Ok(vec![Matcher::Compare(cmp, n)]);
        }
        Some("cidr") => {
            let net: IpNet = text
                .trim()
                .parse()
                .or_else(|_| text.trim().parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| format!("field `{key}`: {text:?} is not a CIDR range"))?;
            return Ok(vec![Matcher::Cidr(net)]);
        }
        Some("re") => {
            let mut pattern = String::new();
            if !mods.re_flags.is_empty() {
                pattern.push_str(&format!("(?{})", mods.re_flags));
            }
            pattern.push_str(&text);
            let re = regex::RegexBuilder::new(&pattern)
                .size_limit(1 << 22)
                .build()
                .map_err(|e| format!("field `{key}`: bad regular expression: {e}"))?;
            return Ok(vec![Matcher::Regex(re)]);
        }
        _ => {}
    }
    let mut variants = vec![text.clone()];
    if mods.windash {
        let extra: Vec<String> = variants
            .iter()
            .flat_map(|v| ["-", "/", "\u{2013}", "\u{2014}", "\u{2015}"].map(|d| replace_leading_dashes(v, d)))
            .collect();
        variants.extend(extra);
        variants.sort();
        variants.dedup();
    }
    if let Some(order) = mods.wide {
        variants = variants
            .into_iter()
            .map(|v| {
                let bytes: Vec<u8> = v
                    .encode_utf16()
                    .flat_map(|u| if order == "le" { u.to_le_bytes() } else { u.to_be_bytes() })
                    .collect();
                String::from_utf8_lossy(&bytes).into_owned()
            })
            .collect();
    }
    if let Some(offset) = mods.base64 {
        variants = variants
            .into_iter()
            .flat_map(|v| {
                if offset {
                    base64_offsets(v.as_bytes())
                } else {
                    vec![base64::engine::general_purpose::STANDARD.encode(v.as_bytes())]
                }
            })
            .collect();
        // Encoded text is compared as written: base64 is case-sensitive.
        return variants.into_iter().map(|v| text_matcher(&v, mods.op, true, false)).collect();
    }
    variants.into_iter().map(|v| text_matcher(&v, mods.op, mods.cased, true)).collect()
}

fn replace_leading_dashes(value: &str, dash: &str) -> String {
    value
        .split(' ')
        .map(|w| if let Some(rest) = w.strip_prefix('-') { format!("{dash}{rest}") } else { w.to_string() })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The three encodings of a value at every byte offset, trimmed of the characters that depend
/// on the neighbours (as Sigma's `base64offset` defines it).
fn base64_offsets(bytes: &[u8]) -> Vec<String> {
    let engine = base64::engine::general_purpose::STANDARD;
    let starts = [0usize, 2, 3];
    // Characters to drop at the end, by (length + shift) % 3.
    let cut_end = [0usize, 3, 2];
    (0..3)
        .map(|shift| {
            let mut padded = vec![b' '; shift];
            padded.extend_from_slice(bytes);
            let encoded = engine.encode(&padded);
            let end = encoded.len().saturating_sub(cut_end[(bytes.len() + shift) % 3]);
            let start = starts[shift].min(end);
            encoded[start..end].to_string()
        })
        .collect()
}

#[derive(Debug, Clone, PartialEq)]
enum GlobToken {
    Lit(char),
    Star,
    One,
}

fn glob_tokens(value: &str) -> Vec<GlobToken> {
    let mut out = Vec::new();
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.peek() {
                Some(&n @ ('*' | '?' | '\\')) => {
                    out.push(GlobToken::Lit(n));
                    chars.next();
                }
                _ => out.push(GlobToken::Lit('\\')),
            },
            '*' => out.push(GlobToken::Star),
            '?' => out.push(GlobToken::One),
            c => out.push(GlobToken::Lit(c)),
        }
    }
    out
}

fn text_matcher(value: &str, op: Option<&str>, cased: bool, wildcards: bool) -> Result<Matcher, String> {
    let mut tokens = if wildcards { glob_tokens(value) } else { value.chars().map(GlobToken::Lit).collect() };
    match op {
        Some("contains") => {
            tokens.insert(0, GlobToken::Star);
            tokens.push(GlobToken::Star);
        }
        Some("startswith") => tokens.push(GlobToken::Star),
        Some("endswith") => tokens.insert(0, GlobToken::Star),
        _ => {}
    }
    let lead = tokens.first() == Some(&GlobToken::Star);
    let trail = tokens.len() > 1 && tokens.last() == Some(&GlobToken::Star);
    let inner = &tokens[usize::from(lead)..tokens.len() - usize::from(trail)];
    let literal: Option<String> = inner
        .iter()
        .map(|t| match t {
            GlobToken::Lit(c) => Some(*c),
            _ => None,
        })
        .collect();
    let fold = |s: String| if cased { s } else { s.to_lowercase() };
    if literal.is_none() && !tokens.contains(&GlobToken::One) {
        let mut parts = Vec::new();
        let mut current = String::new();
        for t in &tokens {
            match t {
                GlobToken::Lit(c) => current.push(*c),
                _ => parts.push(fold(std::mem::take(&mut current))),
            }
        }
        parts.push(fold(current));
        parts.retain(|p| !p.is_empty());
        let kind = TextKind::Parts {
            parts,
            anchored_start: !lead,
            anchored_end: !trail && tokens.last() != Some(&GlobToken::Star),
        };
        return Ok(Matcher::Text(TextMatcher { kind, pattern: String::new(), cased, original: value.to_string() }));
    }
    let kind = match (literal, lead, trail) {
        (Some(lit), false, false) => (TextKind::Exact, lit),
        (Some(lit), false, true) => (TextKind::Prefix, lit),
        (Some(lit), true, false) => (TextKind::Suffix, lit),
        (Some(lit), true, true) => (TextKind::Contains, lit),
        (None, _, _) => {
            let mut re = String::from(if cased { "(?s)^" } else { "(?is)^" });
            for t in &tokens {
                match t {
                    GlobToken::Lit(c) => re.push_str(&regex::escape(&c.to_string())),
                    GlobToken::Star => re.push_str(".*"),
                    GlobToken::One => re.push('.'),
                }
            }
            re.push('$');
            let compiled = Regex::new(&re).map_err(|e| format!("bad wildcard pattern {value:?}: {e}"))?;
            (TextKind::Glob(compiled), String::new())
        }
    };
    Ok(Matcher::Text(TextMatcher { kind: kind.0, pattern: fold(kind.1), cased, original: value.to_string() }))
}

/// Glob matching without a regular expression: each literal part in order.
fn parts_match(text: &str, parts: &[String], anchored_start: bool, anchored_end: bool) -> bool {
    let mut rest = text;
    for (i, part) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        if i == 0 && anchored_start {
            match rest.strip_prefix(part.as_str()) {
                Some(r) => rest = r,
                None => return false,
            }
            if last && anchored_end {
                return rest.is_empty();
            }
            continue;
        }
        if last && anchored_end {
            return rest.ends_with(part.as_str());
        }
        match rest.find(part.as_str()) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    true
}

/// What the linter needs to know about an item's values against its field's type.
pub fn type_problems(item: &Item) -> Vec<String> {
    let kind = item.field.kind();
    let mut problems = Vec::new();
    if let ItemOp::Values(matchers) = &item.op {
        for m in matchers {
            match (kind, m) {
                (FieldKind::Number, Matcher::Text(t)) if t.original.trim().parse::<f64>().is_err() => {
                    problems.push(format!(
                        "`{}` is a number, but is compared to the word {:?}: this can never match",
                        item.field_name, t.original
                    ))
                }
                (FieldKind::Text | FieldKind::Time | FieldKind::TextList, Matcher::Compare(..)) => {
                    problems.push(format!("`{}` holds text, but is compared with a numeric modifier", item.field_name))
                }
                (FieldKind::Number | FieldKind::Time, Matcher::Cidr(_)) => {
                    problems.push(format!("`{}` does not hold IP addresses: `cidr` can never match", item.field_name))
                }
                _ => {}
            }
        }
    }
    problems
}

/// Values that `field` must have (lower-cased) for the detection to match at all, when the
/// rule says so plainly (`verb: [create, update]` in every branch); `None` when any value may.
/// The rule set uses this to skip rules without evaluating them.
pub fn required_values(detection: &Detection, field: &Field) -> Option<Vec<String>> {
    fn of_search(search: &Search, field: &Field) -> Option<Vec<String>> {
        let Search::Maps(maps) = search else { return None };
        let mut all = Vec::new();
        for map in maps {
            let item = map.iter().find(|i| &i.field == field && !i.negate && !i.all)?;
            let ItemOp::Values(matchers) = &item.op else { return None };
            for m in matchers {
                match m {
                    Matcher::Text(TextMatcher { kind: TextKind::Exact, pattern, cased: false, .. }) => {
                        all.push(pattern.clone())
                    }
                    _ => return None,
                }
            }
        }
        Some(all)
    }
    fn of(cond: &Condition, searches: &[Search], field: &Field) -> Option<Vec<String>> {
        match cond {
            Condition::Search(i) => of_search(&searches[*i], field),
            Condition::Not(_) => None,
            Condition::And(cs) => cs.iter().filter_map(|c| of(c, searches, field)).min_by_key(Vec::len),
            Condition::Or(cs) => {
                let mut all = Vec::new();
                for c in cs {
                    all.extend(of(c, searches, field)?);
                }
                Some(all)
            }
            Condition::AtLeast(n, ids) if *n == ids.len() && *n > 0 => {
                ids.iter().filter_map(|&i| of_search(&searches[i], field)).min_by_key(Vec::len)
            }
            Condition::AtLeast(n, ids) if *n > 0 => {
                let mut all = Vec::new();
                for &i in ids {
                    all.extend(of_search(&searches[i], field)?);
                }
                Some(all)
            }
            Condition::AtLeast(..) => None,
        }
    }
    let mut values = of(&detection.condition, &detection.searches, field)?;
    values.sort();
    values.dedup();
    Some(values)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kir_audit::{LazyJson, ObjectRef, ResponseStatus, UserInfo};
    use serde_json::json;

    fn event() -> AuditEvent {
        AuditEvent {
            audit_id: "a".into(),
            verb: "create".into(),
            request_uri: "/api/v1/namespaces/shop/pods".into(),
            user: UserInfo {
                username: "system:serviceaccount:tools:ops".into(),
                groups: vec!["system:serviceaccounts".into()],
                ..Default::default()
            },
            source_ips: vec!["10.1.2.3".into()],
            user_agent: Some("Mozilla/5.0 (Windows NT 10.0)".into()),
            object_ref: Some(ObjectRef {
                resource: Some("pods".into()),
                namespace: Some("shop".into()),
                ..Default::default()
            }),
            response_status: Some(ResponseStatus { code: Some(201), ..Default::default() }),
            request_object: Some(LazyJson::from_value(json!({
                "kind": "Pod",
                "spec": {"containers": [
                    {"name": "a", "image": "nginx", "args": ["-o", "stratum+tcp://pool.example:3333"]},
                    {"name": "b", "image": "ghcr.io/acme/app:1", "securityContext": {"privileged": true}}
                ]}
            }))),
            ..Default::default()
        }
    }

    fn check(yaml: &str) -> bool {
        let value: Value = serde_saphyr::from_str(yaml).unwrap();
        let mut placeholders = Placeholders::new();
        placeholders.insert("registries".into(), vec!["ghcr.io/acme/".into()]);
        placeholders.insert("empty".into(), vec![]);
        compile(&value, &placeholders).unwrap().matches(&event())
    }

    #[test]
    fn modifiers_and_lists() {
        assert!(check("sel: {verb: CREATE, objectRef.resource: pods}\ncondition: sel"));
        assert!(check("sel: {requestObject.spec.containers.securityContext.privileged: true}\ncondition: sel"));
        assert!(check("sel: {kir.containers.args|contains: 'stratum+tcp://'}\ncondition: sel"));
        assert!(check("sel: {userAgent|startswith: mozilla/}\ncondition: sel"));
        assert!(!check("sel: {userAgent|startswith|cased: mozilla/}\ncondition: sel"));
        assert!(check("sel: {sourceIPs|cidr: 10.0.0.0/8}\ncondition: sel"));
        assert!(check("sel: {responseStatus.code|lt: 400}\ncondition: sel"));
        assert!(check("sel: {responseStatus.code: 201}\ncondition: sel"));
        assert!(check("sel: {requestURI|re: '^/api/v1/namespaces/[a-z]+/pods$'}\ncondition: sel"));
        assert!(check("sel: {requestURI: '/api/*/pods'}\ncondition: sel"));
        assert!(check("sel: {kir.serviceAccount.namespace|fieldref: objectRef.namespace}\ncondition: not sel"));
        assert!(check("sel: {impersonatedUser.username|exists: false}\ncondition: sel"));
        assert!(check("sel: {kir.images|contains|all: [nginx, acme]}\ncondition: sel"));
        assert!(!check("sel: {kir.images|contains|all: [nginx, redis]}\ncondition: sel"));
        assert!(check("sel: {kir.images|startswith|expand|not: '%registries%'}\ncondition: sel"));
        assert!(!check("sel: {kir.images|startswith|expand|not: '%empty%'}\ncondition: sel"));
        assert!(check("sel: {user.groups: system:serviceaccounts}\ncondition: sel"));
        assert!(check("sel: [{verb: delete}, {verb: create}]\ncondition: sel"));
        assert!(check("sel: [stratum]\ncondition: sel"));
    }

    #[test]
    fn globs_match_like_regular_expressions() {
        let cases = [
            (
                "system:serviceaccount:kube-system:*-controller",
                "system:serviceaccount:kube-system:job-controller",
                true,
            ),
            (
                "system:serviceaccount:kube-system:*-controller",
                "system:serviceaccount:kube-system:job-controllers",
                false,
            ),
            ("system:serviceaccount:*:kube-state-metrics", "system:serviceaccount:mon:kube-state-metrics", true),
            ("a*a", "a", false),
            ("a*a", "aa", true),
            ("*x*y*", "..x..y..", true),
            ("*x*y*", "..y..x..", false),
            ("a**b", "ab", true),
            ("*", "", true),
            ("a?c", "abc", true),
        ];
        for (pattern, text, expected) in cases {
            let m = text_matcher(pattern, None, false, true).unwrap();
            assert_eq!(m.matches(&Prepared::new(&Scalar::Str(text.into()))), expected, "{pattern} on {text}");
        }
    }

    #[test]
    fn base64_offsets_find_the_text_at_any_alignment() {
        for prefix in ["", "a", "ab", "abc"] {
            let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{prefix}/bin/sh -c xyz"));
            assert!(base64_offsets(b"/bin/sh").iter().any(|v| encoded.contains(v.as_str())), "{prefix}");
        }
    }

    #[test]
    fn compile_errors_name_the_field() {
        let value: Value = serde_saphyr::from_str("sel: {verb|bogus: x}\ncondition: sel").unwrap();
        assert!(compile(&value, &Placeholders::new()).unwrap_err().contains("bogus"));
        let value: Value = serde_saphyr::from_str("sel: {verb|re: '('}\ncondition: sel").unwrap();
        assert!(compile(&value, &Placeholders::new()).unwrap_err().contains("regular expression"));
    }
}

#[cfg(test)]
mod contains_any_tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// One search for all the values answers as asking each value does, on any text, with
        /// upper-case letters, values inside values and the empty value.
        #[test]
        fn one_search_answers_as_each_value_does(
            patterns in proptest::collection::vec("[abcAB]{0,3}", 4..9),
            cased in any::<bool>(),
            texts in proptest::collection::vec("[abcABé ]{0,12}", 1..6),
        ) {
            let matchers: Vec<Matcher> = patterns
                .iter()
                .map(|p| {
                    let pattern = if cased { p.clone() } else { p.to_lowercase() };
                    Matcher::Text(TextMatcher { kind: TextKind::Contains, pattern, cased, original: p.clone() })
                })
                .collect();
            let set = ContainsAny::of(&matchers).expect("four or more plain contains");
            for text in &texts {
                let value = Scalar::Str(Cow::Borrowed(text.as_str()));
                let prepared = Prepared::new(&value);
                prop_assert_eq!(set.matches(&matchers, &prepared), matchers.iter().any(|m| m.matches(&prepared)), "{}", text);
            }
            prop_assert!(!set.matches(&matchers, &Prepared::new(&Scalar::Null)));
        }
    }

    #[test]
    fn only_plain_contains_of_one_case_rule_are_searched_at_once() {
        let contains = |pattern: &str, cased| {
            Matcher::Text(TextMatcher {
                kind: TextKind::Contains,
                pattern: pattern.into(),
                cased,
                original: pattern.into(),
            })
        };
        let four: Vec<Matcher> = ["a", "b", "c", "d"].iter().map(|p| contains(p, false)).collect();
        assert!(ContainsAny::of(&four).is_some());
        assert!(ContainsAny::of(&four[..3]).is_none(), "too few to be worth it");
        let mut mixed = four.clone();
        mixed.push(contains("e", true));
        assert!(ContainsAny::of(&mixed).is_none(), "two case rules");
        let mut regex = four.clone();
        regex.push(Matcher::Regex(Regex::new("x").unwrap()));
        assert!(ContainsAny::of(&regex).is_none(), "not a contains");
    }
}
