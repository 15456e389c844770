//! Stages that are not their request's last, kept as the text of their line.
//!
//! The API server logs most requests twice (`RequestReceived`, then `ResponseComplete`), and the
//! last stage repeats every field of the first: decoding the first stage is half the records and
//! a third of the bytes of a hunt, for nothing the last does not say again. So a line whose first
//! members say it is a plain audit event at an earlier stage is recognized from those members
//! alone and kept as text; it is decoded only when its request needs it: its last stage lacks a
//! field it has, or its last stage never comes (it is then reported on its own, as before).

use std::sync::LazyLock;

use crate::event::{Origin, Presence, Stage};

/// An earlier stage, not decoded yet.
#[derive(Debug, Clone)]
pub struct RawStage {
    pub audit_id: Box<str>,
    pub origin: Origin,
    pub text: Box<str>,
}

/// Members of the event's envelope looked at before giving up: the API server writes `kind`,
/// `apiVersion`, `level`, `auditID` and `stage` first; a log rewritten with its keys sorted has
/// `stage` fourteenth or so.
const MEMBERS_LOOKED_AT: usize = 20;

/// The `auditID` and stage of `text`, when it is a plain `audit.k8s.io` event at a stage that is
/// not its request's last and its first members say so without doubt: `kind` is `Event`,
/// `apiVersion` is `audit.k8s.io/…`, no escape in those members, and the line ends its object.
/// Anything else (`None`) goes through the full decoder, which also says what is wrong with a
/// line. (The decoder reads a line with `kind` `Event` and an `auditID` as an event, whatever
/// wrapper members it also has, so the two agree on what such a line is.)
pub fn early_stage(text: &str) -> Option<(&str, Stage)> {
    early_stage_walked(text).map(|(audit_id, stage, _)| (audit_id, stage))
}

/// The members [`early_stage`] met on its way, for [`may_add_after`]: with keys sorted (`jq -S`)
/// they are most of the line, and the members a last stage may lack among them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Walked {
    /// The [`PRESENCE_KEYS`] bits of the top-level members met, written with a value other than
    /// `null` (`username`, inside `user`, is never among them).
    present: u16,
    /// `annotations` was met.
    annotations: bool,
    /// Where the walk stopped: nothing from here on was looked at.
    end: usize,
}

/// [`early_stage`], with the members it met on the way.
pub fn early_stage_walked(text: &str) -> Option<(&str, Stage, Walked)> {
    let bytes = text.as_bytes();
    if !ends_its_object(text) {
        return None;
    }
    let mut at = skip_space(bytes, 0);
    if bytes.get(at) != Some(&b'{') {
        return None;
    }
    at += 1;
    let (mut kind, mut api_version, mut audit_id, mut stage) = (None, None, None, None);
    let mut walked = Walked::default();
    for _ in 0..MEMBERS_LOOKED_AT {
        at = skip_space(bytes, at);
        let (key, next) = plain_string(text, at)?;
        at = skip_space(bytes, next);
        if bytes.get(at) != Some(&b':') {
            return None;
        }
        at = skip_space(bytes, at + 1);
        let value = *bytes.get(at)?;
        if value != b'n' {
            match presence_bit(key) {
                Some(bit) => walked.present |= 1 << bit,
                None => walked.annotations |= key == "annotations",
            }
        }
        match value {
            b'"' => {
                let (value, next) = plain_string(text, at)?;
                match key {
                    "kind" => kind = Some(value),
                    "apiVersion" => api_version = Some(value),
                    "auditID" => audit_id = Some(value),
                    "stage" => stage = Some(value),
                    _ => {}
                }
                at = next;
            }
            // A number, `true`, `false` or `null`: no structure inside.
            b'-' | b'0'..=b'9' | b't' | b'f' | b'n' => {
                at += bytes[at..].iter().position(|b| matches!(b, b',' | b'}' | b' ' | b'\t' | b'\r' | b'\n'))?;
            }
            // An object or an array before the members that matter (keys sorted): passed over.
            b'{' | b'[' => at = crate::envelope::skip_nested(bytes, at)?,
            _ => return None,
        }
        if let (Some(kind), Some(api_version), Some(audit_id), Some(stage)) = (kind, api_version, audit_id, stage) {
            let stage = Stage::parse(stage)?;
            walked.end = at;
            return (is_audit_event(kind == "Event", api_version, audit_id) && !stage.is_final())
                .then_some((audit_id, stage, walked));
        }
        at = skip_space(bytes, at);
        match bytes.get(at)? {
            b',' => at += 1,
            _ => return None,
        }
    }
    None
}

/// The [`PRESENCE_KEYS`] bit of a top-level member (a test holds the two lists together).
fn presence_bit(key: &str) -> Option<usize> {
    Some(match key {
        "requestObject" => 0,
        "objectRef" => 1,
        "impersonatedUser" => 2,
        "userAgent" => 3,
        "responseStatus" => 4,
        "verb" => 6,
        "requestURI" => 7,
        "sourceIPs" => 8,
        "apiVersion" => 9,
        "level" => 10,
        _ => return None,
    })
}

/// Whether a line's last character but JSON whitespace closes an object.
pub(crate) fn ends_its_object(text: &str) -> bool {
    text.as_bytes().iter().rev().find(|b| !is_space(**b)) == Some(&b'}')
}

/// Whether members say a line is an event of ours: `kind` `Event`, an `audit.k8s.io/…`
/// apiVersion and an auditID (the envelope reader and `early_stage` ask the same).
pub(crate) fn is_audit_event(kind_is_event: bool, api_version: &str, audit_id: &str) -> bool {
    kind_is_event && api_version.starts_with("audit.k8s.io/") && !audit_id.is_empty()
}

/// JSON's whitespace (not a form feed, which `is_ascii_whitespace` also takes).
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

fn skip_space(bytes: &[u8], mut at: usize) -> usize {
    while bytes.get(at).is_some_and(|b| is_space(*b)) {
        at += 1;
    }
    at
}

/// The string starting at `at` (its opening quote) and the position after its closing quote,
/// when it has no escape.
fn plain_string(text: &str, at: usize) -> Option<(&str, usize)> {
    let bytes = text.as_bytes();
    if bytes.get(at) != Some(&b'"') {
        return None;
    }
    let end = crate::envelope::string_stop(bytes, at + 1)?;
    if bytes[end] != b'"' {
        return None;
    }
    Some((text.get(at + 1..end)?, end + 1))
}

/// The members whose presence [`Presence`] records, as they are written in a line, in its bit
/// order: a later stage that lacks one of them is completed from the earlier stage only when the
/// earlier line has that member's name at all.
const PRESENCE_KEYS: [&str; 11] = [
    "\"requestObject\"",
    "\"objectRef\"",
    "\"impersonatedUser\"",
    "\"userAgent\"",
    "\"responseStatus\"",
    "\"username\"",
    "\"verb\"",
    "\"requestURI\"",
    "\"sourceIPs\"",
    "\"apiVersion\"",
    "\"level\"",
];

static FINDERS: LazyLock<Vec<memchr::memmem::Finder<'static>>> =
    LazyLock::new(|| PRESENCE_KEYS.iter().map(|k| memchr::memmem::Finder::new(k.as_bytes()).into_owned()).collect());

static ANNOTATIONS: LazyLock<memchr::memmem::Finder<'static>> =
    LazyLock::new(|| memchr::memmem::Finder::new(b"\"annotations\"").into_owned());

/// An escaped character of the first 256: a member name could be written with one
/// (`"request\u004fbject"`), which the searches by name would not see.
static ESCAPED: LazyLock<memchr::memmem::Finder<'static>> =
    LazyLock::new(|| memchr::memmem::Finder::new(b"\\u00").into_owned());

/// Whether the earlier stage `text` might know something that the last stage, with `later`
/// fields, does not: a member the later stage lacks is named in the line, or the line has
/// annotations (which a later stage may lack some of), or it escapes a character that a member
/// name could hide behind. A name found inside a request body only costs a decode; a real member
/// is never missed.
pub fn may_add_to(text: &str, later: Presence) -> bool {
    may_add_after(text, &Walked::default(), later)
}

/// [`may_add_to`], knowing the members [`early_stage_walked`] met: those are answered from the
/// walk, and only the rest of the line is searched. (The walk refused escapes in the names it
/// met, so only the rest can hide one.)
pub fn may_add_after(text: &str, walked: &Walked, later: Presence) -> bool {
    let bytes = text.as_bytes();
    let rest = bytes.get(walked.end..).unwrap_or_default();
    FINDERS.iter().enumerate().any(|(bit, finder)| {
        !later.has(bit)
            && if bit == USERNAME {
                // Inside `user`, which the walk passed over: anywhere in the line.
                finder.find(bytes).is_some()
            } else {
                walked.present & (1 << bit) != 0
                    || finder.find_iter(rest).any(|at| !null_after(rest, at + PRESENCE_KEYS[bit].len()))
            }
    }) || walked.annotations
        || ANNOTATIONS.find(rest).is_some()
        || (memchr::memchr(b'\\', rest).is_some() && ESCAPED.find(rest).is_some())
}

/// [`PRESENCE_KEYS`]' `username`: text to the decoder, which refuses `null` for it (the line is
/// then broken, not lacking the member).
const USERNAME: usize = 5;

/// Whether the text at `at` is `: null` (JSON whitespace allowed): a member written as `null` is
/// absent to the decoder, so it adds nothing (discovery requests log `"objectRef":null`).
fn null_after(bytes: &[u8], at: usize) -> bool {
    let at = skip_space(bytes, at);
    bytes.get(at) == Some(&b':') && bytes.get(skip_space(bytes, at + 1)..).is_some_and(|rest| rest.starts_with(b"null"))
}

impl RawStage {
    pub fn new(audit_id: &str, origin: Origin, text: &str) -> RawStage {
        RawStage { audit_id: audit_id.into(), origin, text: text.into() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// An earlier stage with some of the members a last stage may lack, in any order or sorted,
    /// with `null`s and member names inside a body.
    fn earlier_line() -> impl Strategy<Value = String> {
        let optional: Vec<(&str, &[&str])> = vec![
            ("requestObject", &[r#"{"kind":"Pod","spec":{"objectRef":{"a":1},"annotations":{}}}"#, "null"]),
            ("objectRef", &[r#"{"resource":"pods"}"#, "null"]),
            ("impersonatedUser", &[r#"{"username":"x"}"#, "null"]),
            ("userAgent", &[r#""kubectl/v1.30""#, "null", r#""a\"b\u0041""#]),
            // The name of `requestObject` with an escape: a name search must still find it.
            (r"request\u004fbject", &[r#"{"kind":"Pod"}"#]),
            ("responseStatus", &[r#"{"code":200}"#, "null"]),
            ("user", &[r#"{"username":"u","groups":["g"]}"#, r#"{"groups":["g"]}"#]),
            ("verb", &[r#""get""#]),
            ("requestURI", &[r#""/api/v1/pods""#]),
            ("sourceIPs", &[r#"["10.0.0.1"]"#, "[]"]),
            ("level", &[r#""Metadata""#, "7"]),
            ("annotations", &[r#"{"a":"b"}"#, "{}"]),
            ("requestReceivedTimestamp", &[r#""2026-01-01T00:00:00Z""#]),
        ];
        let picks = optional
            .into_iter()
            .map(|(key, values)| (Just(key), prop::sample::select(values.to_vec()), any::<bool>()))
            .collect::<Vec<_>>();
        (picks, any::<bool>(), Just((0..17usize).collect::<Vec<_>>()).prop_shuffle()).prop_map(
            |(picks, sorted, order)| {
                let mut members = vec![
                    ("kind", r#""Event""#),
                    ("apiVersion", r#""audit.k8s.io/v1""#),
                    ("auditID", r#""a-1""#),
                    ("stage", r#""RequestReceived""#),
                ];
                members.extend(picks.into_iter().filter(|(_, _, keep)| *keep).map(|(k, v, _)| (k, v)));
                let mut ordered: Vec<_> = order.iter().filter_map(|&i| members.get(i).copied()).collect();
                if sorted {
                    ordered.sort();
                }
                let body: Vec<String> = ordered.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
                format!("{{{}}}", body.join(","))
            },
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]

        /// What the walk answers never misses a member the earlier stage adds to a last stage
        /// (as the decoder reads both), and only drops what a name search found inside a body.
        #[test]
        fn the_walk_never_misses_what_an_earlier_stage_adds(
            line in earlier_line(),
            bits in 0u32..0x800,
            annotations in 0u32..2,
        ) {
            let Some((_, _, walked)) = early_stage_walked(&line) else { return Ok(()) };
            let (mut records, mut skipped) = (Vec::new(), Vec::new());
            crate::decode(&line, &Origin::new("p", 1), &mut records, &mut skipped);
            let Some(crate::Record::Audit(earlier)) = records.pop() else { return Ok(()) };
            let later = Presence::from_bits(bits | annotations << 24);
            let answer = may_add_after(&line, &walked, later);
            if earlier.presence().adds_to(later) {
                prop_assert!(answer, "{} adds to {:?}", line, later);
            }
            if answer {
                prop_assert!(may_add_to(&line, later), "{}", line);
            }
        }
    }

    /// `presence_bit` is `PRESENCE_KEYS` as a `match` (it runs for every member an earlier stage's
    /// walk meets): the two lists must agree, `username` (not a top-level member) aside.
    #[test]
    fn presence_bits_are_the_presence_keys() {
        for (bit, quoted) in PRESENCE_KEYS.iter().enumerate() {
            let name = quoted.trim_matches('"');
            let expected = (bit != USERNAME).then_some(bit);
            assert_eq!(presence_bit(name), expected, "{name}");
        }
        assert_eq!(presence_bit("annotations"), None);
    }

    #[test]
    fn an_earlier_stage_is_known_by_its_first_members() {
        let line = r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"a-1","stage":"RequestReceived","requestURI":"/api","verb":"get","user":{"username":"x"}}"#;
        assert_eq!(early_stage(line), Some(("a-1", Stage::RequestReceived)));
        let started = line.replace("RequestReceived", "ResponseStarted");
        assert_eq!(early_stage(&started), Some(("a-1", Stage::ResponseStarted)));
    }

    #[test]
    fn anything_else_goes_to_the_decoder() {
        let base = r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"a-1","stage":"RequestReceived","verb":"get"}"#;
        for (why, line) in [
            ("the last stage", base.replace("RequestReceived", "ResponseComplete")),
            ("a panic", base.replace("RequestReceived", "Panic")),
            ("an unknown stage", base.replace("RequestReceived", "Later")),
            ("not an event", base.replace("\"Event\"", "\"EventList\"")),
            ("truncated", base[..base.len() - 1].to_string()),
            ("an escape in the id", base.replace("a-1", "a\\u002d1")),
            ("an empty id", base.replace("a-1", "")),
            ("a log prefix", format!("2024-01-01T00:00:00Z {base}")),
            ("no stage", base.replace(",\"stage\":\"RequestReceived\"", "")),
            ("another apiVersion", base.replace("audit.k8s.io/v1", "v1")),
            ("no apiVersion", base.replace("\"apiVersion\":\"audit.k8s.io/v1\",", "")),
            ("a form feed", base.replace(",\"level\"", ",\u{c}\"level\"")),
            ("not JSON", "RequestReceived}".to_string()),
            ("empty", String::new()),
        ] {
            assert_eq!(early_stage(&line), None, "{why}: {line}");
        }
    }

    #[test]
    fn numbers_and_literals_among_the_first_members_are_passed_over() {
        let line = r#"{ "kind" : "Event", "n": -1.5e3, "ok": true, "apiVersion": "audit.k8s.io/v1", "auditID": "b", "stage": "RequestReceived" , "x": null }"#;
        assert_eq!(early_stage(line), Some(("b", Stage::RequestReceived)));
    }

    #[test]
    fn objects_and_arrays_before_the_stage_are_passed_over() {
        // `jq -S` or `json.dumps(sort_keys=True)`: annotations, objectRef and the request body
        // come before `stage`.
        let line = r#"{"annotations":{"a":"}\"{"},"apiVersion":"audit.k8s.io/v1","auditID":"c","kind":"Event","objectRef":{"resource":"pods"},"requestObject":{"spec":{"containers":[{"args":["]","\\"]}]}},"sourceIPs":["10.0.0.1"],"stage":"RequestReceived","verb":"create"}"#;
        assert_eq!(early_stage(line), Some(("c", Stage::RequestReceived)));
        assert_eq!(
            early_stage(
                r#"{"a":{"stage":"RequestReceived"},"apiVersion":"audit.k8s.io/v1","kind":"Event","auditID":"d","stage":"ResponseComplete"}"#
            ),
            None
        );
        assert_eq!(early_stage(r#"{"a":{]}}"#), None);
    }

    #[test]
    fn whatever_the_bytes_it_answers() {
        for text in
            ["{", "{\"", "{\"kind\"", "{\"kind\":", "{\"kind\":\"", "{\"kind\":1", "{\"a\":tru}", "{\"a\":\"é\"}"]
        {
            let _ = early_stage(text);
        }
    }

    #[test]
    fn a_member_the_later_stage_lacks_is_looked_for_by_name() {
        let line = r#"{"kind":"Event","auditID":"a","stage":"RequestReceived","requestObject":{"kind":"Pod"}}"#;
        let everything = Presence::from_bits(0x7ff);
        assert!(!may_add_to(line, everything));
        let no_body = Presence::from_bits(0x7ff & !1);
        assert!(may_add_to(line, no_body), "the earlier stage has the request body the later lacks");
        let no_agent = Presence::from_bits(0x7ff & !(1 << 3));
        assert!(!may_add_to(line, no_agent), "neither has a user agent");
        let no_object = Presence::from_bits(0x7ff & !(1 << 1));
        let discovery = r#"{"kind":"Event","auditID":"a","stage":"RequestReceived","objectRef" : null}"#;
        assert!(!may_add_to(discovery, no_object), "a member written as null is absent");
        let both = r#"{"kind":"Event","auditID":"a","stage":"RequestReceived","x":{"objectRef":null},"objectRef":{"resource":"pods"}}"#;
        assert!(may_add_to(both, no_object), "every place the name is written counts");
        let no_user = Presence::from_bits(0x7ff & !(1 << USERNAME));
        let broken = r#"{"kind":"Event","auditID":"a","stage":"RequestReceived","user":{"username":null}}"#;
        assert!(may_add_to(broken, no_user), "a null username breaks the line: it must be decoded");
    }
}
