//! A request's last stage read for its envelope only: what the rules look at first.
//!
//! Most requests of a busy cluster (leases, node status, controllers' watches, discovery) match
//! no rule, and the rules can tell that from the envelope: the verb, the resource, the user, the
//! address, the response code, the authorization decision. The hunt reads such a line with this
//! scanner, which copies nothing (strings are borrowed from the line unless they have escapes)
//! and passes over request and response bodies by their brackets, and asks the rules whether the
//! request could match ([`crate::field::Fields`] answers "unknown" for what the envelope does not
//! hold). Only a request that could match becomes an [`crate::AuditEvent`], built from the
//! envelope and the bodies' text ([`Envelope::to_event`]) rather than decoded again.
//!
//! The scanner gives up (`None`) on anything but the plain shape the API server writes: a member
//! it does not know, a `null`, a duplicate member, a number that is not an integer where one is
//! expected, an escape in a member name. The full decoder then reads the line as before and says
//! what is wrong with it, so the two always agree on every field the scanner reads. Bodies it
//! passes over are only checked for balanced brackets: a request no rule can match is not
//! checked for a fault deep inside its body (docs/inputs.md).

use std::borrow::Cow;
use std::sync::LazyLock;

use jiff::Timestamp;

use crate::early::{ends_its_object, is_audit_event};
use crate::event::{Presence, Stage};

/// serde_json refuses deeper nesting (128); the scanner leaves such lines to it. Checked at the
/// end of each 16-byte block, so nesting up to `MAX_DEPTH + 15` may pass unseen: still under 128.
const MAX_DEPTH: usize = 100;

/// The user of a request, as the envelope holds it.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct EnvelopeUser<'a> {
    pub username: Cow<'a, str>,
    pub uid: Option<Cow<'a, str>>,
    pub groups: Vec<Cow<'a, str>>,
    /// `extra` is checked, not kept: a rule on it gets "unknown".
    pub has_extra: bool,
}

/// The `objectRef` members, in [`crate::field::ObjectRefField`]'s order of declaration.
pub type EnvelopeObjectRef<'a> = [Option<Cow<'a, str>>; 8];

/// A last stage's envelope: every member but the request and response bodies.
#[derive(Debug, Default, Clone)]
pub struct Envelope<'a> {
    pub api_version: Cow<'a, str>,
    pub audit_id: Cow<'a, str>,
    pub stage: Option<Stage>,
    pub level: Option<Cow<'a, str>>,
    pub verb: Cow<'a, str>,
    pub request_uri: Cow<'a, str>,
    pub user: EnvelopeUser<'a>,
    pub impersonated_user: Option<EnvelopeUser<'a>>,
    pub source_ips: Vec<Cow<'a, str>>,
    pub user_agent: Option<Cow<'a, str>>,
    pub object_ref: Option<EnvelopeObjectRef<'a>>,
    pub has_response_status: bool,
    pub response_code: Option<i64>,
    /// `responseStatus`'s `status`, `reason` and `message`.
    pub response_status_text: [Option<Cow<'a, str>>; 3],
    pub has_request_object: bool,
    pub has_response_object: bool,
    /// Where the request and response bodies are in the line.
    pub request_object_span: Option<std::ops::Range<usize>>,
    pub response_object_span: Option<std::ops::Range<usize>>,
    pub request_received: Option<Timestamp>,
    pub stage_time: Option<Timestamp>,
    /// Annotations in line order; a value that is not a string is `None` (its text is not kept).
    pub annotations: Vec<(Cow<'a, str>, Option<Cow<'a, str>>)>,
}

/// What a line is, as far as [`Envelope::read_into`] can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind<'a> {
    /// A plain last stage, read into the envelope.
    Last,
    /// [`Line::Earlier`], with the members [`crate::early::early_stage_walked`] met (none, when
    /// the envelope reader told it on its own).
    Earlier(&'a str, crate::early::Walked),
    /// [`Line::Other`].
    Other,
}

/// What a line is, as far as [`Envelope::read`] can tell.
// Made and taken apart once per line: a box would cost an allocation per line.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Line<'a> {
    /// A plain last stage, read.
    Last(Envelope<'a>),
    /// A stage that is not its request's last, with its `auditID`: what
    /// [`crate::early::early_stage`] says of the line, found on the way.
    Earlier(&'a str),
    /// Anything else: ask `early_stage`, then the decoder.
    Other,
}

impl<'a> Envelope<'a> {
    /// Reads `text` when it is a plain `audit.k8s.io` event at its last stage (`ResponseComplete`
    /// or `Panic`) in the shape the API server writes; `None` for anything else.
    pub fn scan(text: &'a str) -> Option<Envelope<'a>> {
        match Envelope::read(text) {
            Line::Last(envelope) => Some(envelope),
            Line::Earlier(_) | Line::Other => None,
        }
    }

    /// [`Envelope::scan`], which also tells an earlier stage when its members say so in the way
    /// [`crate::early::early_stage`] requires: a hunt reads each line once to know which it is.
    pub fn read(text: &'a str) -> Line<'a> {
        let mut envelope = Envelope::default();
        match Envelope::read_into(text, &mut envelope) {
            Kind::Last => Line::Last(envelope),
            Kind::Earlier(audit_id, _) => Line::Earlier(audit_id),
            Kind::Other => Line::Other,
        }
    }

    /// [`Envelope::read`] into `envelope`, which is left holding the line's envelope when it is
    /// a last stage (and anything otherwise). A hunt reads every line of a batch into one
    /// envelope: its lists keep their room from line to line, and nothing large is moved.
    pub fn read_into(text: &'a str, envelope: &mut Envelope<'a>) -> Kind<'a> {
        Envelope::read_line(text, envelope, true)
    }

    /// [`Envelope::read_into`] for the line after an earlier stage, which is nearly always that
    /// request's last stage: the line is not searched for an earlier stage's name first (one
    /// pass over the line saved; an earlier stage is still told, by reading it).
    pub fn read_after_earlier(text: &'a str, envelope: &mut Envelope<'a>) -> Kind<'a> {
        Envelope::read_line(text, envelope, false)
    }

    fn read_line(text: &'a str, envelope: &mut Envelope<'a>, look_for_earlier: bool) -> Kind<'a> {
        // Half the lines of a log are earlier stages. When the line names one, `early_stage`
        // reads only the members that decide it and passes over the rest, where reading the
        // envelope would decode every member before `stage` (most of them, with keys sorted)
        // for nothing. It is the judge either way: when it declines, the line is read here.
        if look_for_earlier
            && names_an_earlier_stage(text)
            && let Some((audit_id, _, walked)) = crate::early::early_stage_walked(text)
        {
            return Kind::Earlier(audit_id, walked);
        }
        envelope.clear();
        let mut earlier = None;
        match Envelope::read_last(text, envelope, &mut earlier) {
            Some(()) => Kind::Last,
            None => earlier.map_or(Kind::Other, |audit_id| Kind::Earlier(audit_id, Default::default())),
        }
    }

    /// Back to [`Envelope::default`], keeping the room of its lists. Field by field: building a
    /// default envelope and moving it in copied the whole struct for every line. Every field is
    /// named, so a new one cannot be forgotten here.
    fn clear(&mut self) {
        let Envelope {
            api_version,
            audit_id,
            stage,
            level,
            verb,
            request_uri,
            user,
            impersonated_user,
            source_ips,
            user_agent,
            object_ref,
            has_response_status,
            response_code,
            response_status_text,
            has_request_object,
            has_response_object,
            request_object_span,
            response_object_span,
            request_received,
            stage_time,
            annotations,
        } = self;
        let EnvelopeUser { username, uid, groups, has_extra } = user;
        for text in [api_version, audit_id, verb, request_uri, username] {
            *text = Cow::Borrowed("");
        }
        for text in [level, user_agent, uid] {
            *text = None;
        }
        groups.clear();
        *has_extra = false;
        *stage = None;
        *impersonated_user = None;
        source_ips.clear();
        *object_ref = None;
        *has_response_status = false;
        *response_code = None;
        *response_status_text = Default::default();
        *has_request_object = false;
        *has_response_object = false;
        *request_object_span = None;
        *response_object_span = None;
        *request_received = None;
        *stage_time = None;
        annotations.clear();
    }

    /// `earlier` is set when the line turns out to be an earlier stage that `early_stage` takes.
    /// It is decided where `early_stage` decides, after the member that completes `kind`,
    /// `apiVersion`, `auditID` and `stage`; every member before it was read here, so it was
    /// one `early_stage` passes over too (it only refuses escapes in strings, which are tracked).
    fn read_last(text: &'a str, e: &mut Envelope<'a>, earlier: &mut Option<&'a str>) -> Option<()> {
        let mut s = Scanner { text, bytes: text.as_bytes(), at: 0 };
        let mut seen = 0u32;
        let mut kind_ok = false;
        // No escape in any top-level string so far: `early_stage` refuses them.
        let mut plain = true;
        // `kind`, `apiVersion`, `auditID` and `stage`: the first four bits of [`top_level`].
        const FIRST_FOUR: u32 = 0b1111;
        s.object(|s, key| {
            let member = top_level(key)?;
            let bit = member as u32;
            if seen & (1 << bit) != 0 {
                return None;
            }
            seen |= 1 << bit;
            let mut string = |s: &mut Scanner<'a>| {
                let value = s.string()?;
                plain &= matches!(value, Cow::Borrowed(_));
                Some(value)
            };
            match member {
                Member::Kind => kind_ok = string(s)? == "Event",
                Member::ApiVersion => e.api_version = string(s)?,
                Member::AuditId => e.audit_id = string(s)?,
                Member::Stage => e.stage = Some(Stage::parse(&string(s)?)?),
                // `null` reads as the member's absence, as the decoder reads it.
                _ if s.null() => {}
                Member::User => s.user(&mut e.user)?,
                Member::ImpersonatedUser => s.user(e.impersonated_user.insert(EnvelopeUser::default()))?,
                Member::SourceIps => s.strings(&mut e.source_ips)?,
                Member::ObjectRef => {
                    let mut object = EnvelopeObjectRef::default();
                    let mut seen = 0u8;
                    s.object(|s, key| {
                        let i = object_ref_member(key)?;
                        if seen & (1 << i) != 0 {
                            return None;
                        }
                        seen |= 1 << i;
                        if !s.null() {
                            object[i] = Some(s.string()?);
                        }
                        Some(())
                    })?;
                    e.object_ref = Some(object);
                }
                Member::ResponseStatus => {
                    let mut seen = 0u8;
                    s.object(|s, key| {
                        let i = match key {
                            "code" => Some(0),
                            "status" => Some(1),
                            "reason" => Some(2),
                            "message" => Some(3),
                            _ => None,
                        };
                        if let Some(i) = i {
                            if seen & (1 << i) != 0 {
                                return None;
                            }
                            seen |= 1 << i;
                        }
                        match i {
                            _ if s.null() => {}
                            Some(0) => e.response_code = Some(s.integer()?),
                            Some(i) => e.response_status_text[i - 1] = Some(s.string()?),
                            // `metadata`, `details`: the decoder ignores them too.
                            None => s.skip_value()?,
                        }
                        Some(())
                    })?;
                    e.has_response_status = true;
                }
                Member::RequestObject => {
                    let start = s.at;
                    s.skip_value()?;
                    e.has_request_object = true;
                    e.request_object_span = Some(start..s.at);
                }
                Member::ResponseObject => {
                    let start = s.at;
                    s.skip_value()?;
                    e.has_response_object = true;
                    e.response_object_span = Some(start..s.at);
                }
                Member::Level => e.level = Some(string(s)?),
                Member::Verb => e.verb = string(s)?,
                Member::RequestUri => e.request_uri = string(s)?,
                Member::UserAgent => e.user_agent = Some(string(s)?),
                Member::RequestReceivedTimestamp => e.request_received = crate::parse_time(&string(s)?),
                Member::StageTimestamp => e.stage_time = crate::parse_time(&string(s)?),
                Member::Annotations => s.object(|s, key| {
                    let key = Cow::Borrowed(key);
                    let value = if s.peek()? == b'"' {
                        Some(s.string()?)
                    } else {
                        s.skip_value()?;
                        None
                    };
                    // As in a map: the last of a repeated key wins.
                    e.annotations.retain(|(k, _)| *k != key);
                    e.annotations.push((key, value));
                    Some(())
                })?,
            }
            if seen & FIRST_FOUR == FIRST_FOUR
                && FIRST_FOUR & (1 << bit) != 0
                && e.stage.is_some_and(|st| !st.is_final())
            {
                // Decided here, as `early_stage` decides; the line is no last stage either way.
                if plain
                    && ends_its_object(text)
                    && is_audit_event(kind_ok, &e.api_version, &e.audit_id)
                    && let Cow::Borrowed(id) = e.audit_id
                {
                    *earlier = Some(id);
                }
                return None;
            }
            Some(())
        })?;
        s.ws();
        if s.at != s.bytes.len() {
            return None;
        }
        let required = seen & FIRST_FOUR == FIRST_FOUR;
        let last = e.stage.is_some_and(Stage::is_final);
        (required && last && is_audit_event(kind_ok, &e.api_version, &e.audit_id)).then_some(())
    }

    /// The event [`crate::decode`] makes of `text`, the line this envelope was read from
    /// (`origin` is where it was read), built from the envelope instead of decoding the line
    /// again: a request some rule may match is decoded without a second pass over its members.
    /// `None` when the envelope does not hold all of it (a user's `extra`, an annotation that is
    /// not a string, a body that is not valid JSON): the decoder then reads the line.
    pub fn to_event(&self, text: &str, origin: &crate::Origin) -> Option<crate::AuditEvent> {
        use crate::event::{LazyJson, ObjectRef, ResponseStatus, UserInfo};
        let user = |u: &EnvelopeUser| {
            (!u.has_extra).then(|| UserInfo {
                username: u.username.to_string(),
                uid: u.uid.as_deref().map(str::to_string),
                groups: u.groups.iter().map(|g| g.to_string()).collect(),
                extra: Default::default(),
            })
        };
        // A body is checked as the decoder checks it: it must be valid JSON.
        let body = |span: &Option<std::ops::Range<usize>>| match span {
            None => Some(None),
            Some(span) => serde_json::value::RawValue::from_string(text.get(span.clone())?.to_string())
                .ok()
                .map(|raw| Some(LazyJson::from_raw(raw))),
        };
        let owned = |s: &Option<Cow<str>>| s.as_deref().map(str::to_string);
        let mut annotations = std::collections::BTreeMap::new();
        for (key, value) in &self.annotations {
            annotations.insert(key.to_string(), value.as_deref()?.to_string());
        }
        Some(crate::AuditEvent {
            api_version: Some(self.api_version.to_string()),
            audit_id: self.audit_id.to_string(),
            stage: self.stage,
            level: owned(&self.level),
            verb: self.verb.to_string(),
            request_uri: self.request_uri.to_string(),
            user: user(&self.user)?,
            impersonated_user: match &self.impersonated_user {
                Some(u) => Some(user(u)?),
                None => None,
            },
            source_ips: self.source_ips.iter().map(|ip| ip.to_string()).collect(),
            user_agent: owned(&self.user_agent),
            object_ref: self.object_ref.as_ref().map(|o| ObjectRef {
                resource: owned(&o[0]),
                subresource: owned(&o[1]),
                namespace: owned(&o[2]),
                name: owned(&o[3]),
                uid: owned(&o[4]),
                api_group: owned(&o[5]),
                api_version: owned(&o[6]),
                resource_version: owned(&o[7]),
            }),
            response_status: self.has_response_status.then(|| ResponseStatus {
                code: self.response_code,
                status: owned(&self.response_status_text[0]),
                reason: owned(&self.response_status_text[1]),
                message: owned(&self.response_status_text[2]),
            }),
            request_object: body(&self.request_object_span)?,
            response_object: body(&self.response_object_span)?,
            request_received: self.request_received,
            stage_time: self.stage_time,
            annotations,
            origin: origin.clone(),
            context: Default::default(),
        })
    }

    /// [`crate::AuditEvent::presence`] of the event this line decodes to.
    pub fn presence(&self) -> Presence {
        let bits = [
            self.has_request_object,
            self.object_ref.is_some(),
            self.impersonated_user.is_some(),
            self.user_agent.is_some(),
            self.has_response_status,
            !self.user.username.is_empty(),
            !self.verb.is_empty(),
            !self.request_uri.is_empty(),
            !self.source_ips.is_empty(),
            true,
            self.level.is_some(),
        ];
        Presence::of(bits, self.annotations.len())
    }

    pub fn resource(&self) -> Option<&str> {
        self.object_ref.as_ref().and_then(|o| o[0].as_deref())
    }

    pub fn subresource(&self) -> Option<&str> {
        self.object_ref.as_ref().and_then(|o| o[1].as_deref())
    }

    pub fn annotation(&self, key: &str) -> Option<&Option<Cow<'a, str>>> {
        self.annotations.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
}

/// Whether `text` has a `stage` member (at any depth, written without spaces) whose value is an
/// earlier stage: a hint, one search of the line, that [`crate::early::early_stage`] will take it.
fn names_an_earlier_stage(text: &str) -> bool {
    static STAGE: LazyLock<memchr::memmem::Finder<'static>> =
        LazyLock::new(|| memchr::memmem::Finder::new(b"\"stage\":\"").into_owned());
    let bytes = text.as_bytes();
    STAGE.find(bytes).is_some_and(|at| {
        let value = &bytes[at + STAGE.needle().len()..];
        value.starts_with(b"RequestReceived\"") || value.starts_with(b"ResponseStarted\"")
    })
}

/// The top-level members of an event; each is its bit in a line's set of members seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Member {
    Kind,
    ApiVersion,
    AuditId,
    Stage,
    Level,
    Verb,
    RequestUri,
    User,
    ImpersonatedUser,
    SourceIps,
    UserAgent,
    ObjectRef,
    ResponseStatus,
    RequestObject,
    ResponseObject,
    RequestReceivedTimestamp,
    StageTimestamp,
    Annotations,
}

/// A member name, found with one `match`, which compiles to a few comparisons (by length first);
/// the reader then dispatches on the member, not on its name again.
fn top_level(key: &str) -> Option<Member> {
    Some(match key {
        "kind" => Member::Kind,
        "apiVersion" => Member::ApiVersion,
        "auditID" => Member::AuditId,
        "stage" => Member::Stage,
        "level" => Member::Level,
        "verb" => Member::Verb,
        "requestURI" => Member::RequestUri,
        "user" => Member::User,
        "impersonatedUser" => Member::ImpersonatedUser,
        "sourceIPs" => Member::SourceIps,
        "userAgent" => Member::UserAgent,
        "objectRef" => Member::ObjectRef,
        "responseStatus" => Member::ResponseStatus,
        "requestObject" => Member::RequestObject,
        "responseObject" => Member::ResponseObject,
        "requestReceivedTimestamp" => Member::RequestReceivedTimestamp,
        "stageTimestamp" => Member::StageTimestamp,
        "annotations" => Member::Annotations,
        _ => return None,
    })
}

/// The index of an `objectRef` member in [`EnvelopeObjectRef`], which is
/// [`crate::field::ObjectRefField`]'s order (a test holds the two together).
fn object_ref_member(key: &str) -> Option<usize> {
    Some(match key {
        "resource" => 0,
        "subresource" => 1,
        "namespace" => 2,
        "name" => 3,
        "uid" => 4,
        "apiGroup" => 5,
        "apiVersion" => 6,
        "resourceVersion" => 7,
        _ => return None,
    })
}

#[cfg(test)]
const TOP_LEVEL: [&str; 18] = [
    "kind",
    "apiVersion",
    "auditID",
    "stage",
    "level",
    "verb",
    "requestURI",
    "user",
    "impersonatedUser",
    "sourceIPs",
    "userAgent",
    "objectRef",
    "responseStatus",
    "requestObject",
    "responseObject",
    "requestReceivedTimestamp",
    "stageTimestamp",
    "annotations",
];

struct Scanner<'a> {
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Scanner<'a> {
    #[inline]
    fn ws(&mut self) {
        while self.bytes.get(self.at).is_some_and(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    /// The next byte that is not whitespace. The API server writes none between tokens: one
    /// comparison says so (every JSON whitespace byte is at most a space).
    #[inline]
    fn peek(&mut self) -> Option<u8> {
        match self.bytes.get(self.at) {
            Some(&b) if b > b' ' => Some(b),
            _ => {
                self.ws();
                self.bytes.get(self.at).copied()
            }
        }
    }

    #[inline]
    fn expect(&mut self, b: u8) -> Option<()> {
        (self.peek()? == b).then(|| self.at += 1)
    }

    /// An object's members, each value read by `member` (which must consume it).
    fn object(&mut self, mut member: impl FnMut(&mut Self, &'a str) -> Option<()>) -> Option<()> {
        self.expect(b'{')?;
        if self.peek()? == b'}' {
            self.at += 1;
            return Some(());
        }
        loop {
            let key = self.key()?;
            self.expect(b':')?;
            self.ws();
            member(self, key)?;
            match self.peek()? {
                b',' => self.at += 1,
                b'}' => {
                    self.at += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// A member name without escapes.
    fn key(&mut self) -> Option<&'a str> {
        self.expect(b'"')?;
        let start = self.at;
        let end = string_stop(self.bytes, start)?;
        if self.bytes[end] != b'"' {
            return None;
        }
        self.at = end + 1;
        self.text.get(start..end)
    }

    /// A string value: borrowed when it has no escape, else decoded by serde_json (which also
    /// checks the escapes). Control characters are refused, as JSON does.
    fn string(&mut self) -> Option<Cow<'a, str>> {
        self.expect(b'"')?;
        let start = self.at;
        let mut i = start;
        let mut escaped = false;
        loop {
            i = string_stop(self.bytes, i)?;
            match self.bytes[i] {
                b'"' => break,
                b'\\' => {
                    escaped = true;
                    i += 2;
                    if i > self.bytes.len() {
                        return None;
                    }
                }
                _ => return None,
            }
        }
        self.at = i + 1;
        if escaped {
            let text = self.text.get(start..i)?;
            unescape(text)
                .or_else(|| serde_json::from_str::<String>(self.text.get(start - 1..i + 1)?).ok())
                .map(Cow::Owned)
        } else {
            self.text.get(start..i).map(Cow::Borrowed)
        }
    }

    /// An array of strings, added to `out`.
    fn strings(&mut self, out: &mut Vec<Cow<'a, str>>) -> Option<()> {
        self.expect(b'[')?;
        if self.peek()? == b']' {
            self.at += 1;
            return Some(());
        }
        loop {
            out.push(self.string()?);
            match self.peek()? {
                b',' => self.at += 1,
                b']' => {
                    self.at += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// An integer as serde_json reads an `i64`: no fraction, no exponent, no leading zero.
    fn integer(&mut self) -> Option<i64> {
        self.ws();
        let start = self.at;
        let mut i = start;
        if self.bytes.get(i) == Some(&b'-') {
            i += 1;
        }
        let digits = self.bytes[i..].iter().take_while(|b| b.is_ascii_digit()).count();
        // serde_json reads `-0` as a float, which an `i64` refuses.
        let negative = i > start;
        if digits == 0 || (digits > 1 && self.bytes[i] == b'0') || (negative && self.bytes[i] == b'0') {
            return None;
        }
        i += digits;
        if matches!(self.bytes.get(i), Some(b'.' | b'e' | b'E')) {
            return None;
        }
        self.at = i;
        self.text.get(start..i)?.parse().ok()
    }

    /// A user object, read into `user` (as [`EnvelopeUser::default`] has it).
    fn user(&mut self, user: &mut EnvelopeUser<'a>) -> Option<()> {
        let mut seen = 0u8;
        self.object(|s, key| {
            let i = match key {
                "username" => 0,
                "uid" => 1,
                "groups" => 2,
                "extra" => 3,
                _ => return None,
            };
            if seen & (1 << i) != 0 {
                return None;
            }
            seen |= 1 << i;
            match i {
                // `groups` and `extra` read `null` as empty, `uid` as absent; `username` is text.
                1..=3 if s.null() => {}
                0 => user.username = s.string()?,
                1 => user.uid = Some(s.string()?),
                2 => s.strings(&mut user.groups)?,
                _ => {
                    let mut values = Vec::new();
                    s.object(|s, _| s.strings(&mut values))?;
                    user.has_extra = true;
                }
            }
            Some(())
        })
    }

    /// Consumes a `null` if one comes next.
    fn null(&mut self) -> bool {
        let found = self.peek() == Some(b'n') && self.bytes[self.at..].starts_with(b"null");
        if found {
            self.at += 4;
        }
        found
    }

    /// Passes over any value: strings to their closing quote, objects and arrays by counting
    /// brackets (not checked further), literals and numbers to the next delimiter.
    fn skip_value(&mut self) -> Option<()> {
        if self.null() {
            return Some(());
        }
        match self.peek()? {
            b'"' => {
                self.string()?;
            }
            b'{' | b'[' => self.at = skip_nested(self.bytes, self.at)?,
            b'-' | b'0'..=b'9' | b't' | b'f' => {
                let len = self.bytes[self.at..]
                    .iter()
                    .position(|b| matches!(b, b',' | b'}' | b']' | b' ' | b'\t' | b'\r' | b'\n'))?;
                let token = &self.bytes[self.at..self.at + len];
                let literal = token == b"true" || token == b"false";
                let number = token.iter().all(|b| matches!(b, b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9'));
                if !(literal || number) || len == 0 {
                    return None;
                }
                self.at += len;
            }
            _ => return None,
        }
        Some(())
    }
}

/// The position after the object or array at `at`, by counting brackets outside strings. The
/// brackets are only counted, not checked: on text that is not JSON the answer may be wrong,
/// which costs the full decode of the line when its request needs it.
pub(crate) fn skip_nested(bytes: &[u8], at: usize) -> Option<usize> {
    let mut state = Nesting { depth: 0, in_string: false };
    let mut i = at;
    #[cfg(target_arch = "x86_64")]
    {
        // Whether the byte at `i` is escaped by a run of backslashes the last block ended with.
        let mut escaped_first = false;
        while i + 64 <= bytes.len() {
            match state.wide_block(bytes, i, &mut escaped_first) {
                Block::Done(end) => return Some(end),
                Block::Next => i += 64,
                Block::Refused => return None,
                // Byte by byte: from the byte after an escaped first one, which a backslash
                // inside a string escaped (the block before checked it was inside one).
                Block::Escapes => {
                    let from = if std::mem::take(&mut escaped_first) { i + 1 } else { i };
                    match state.bytes(bytes, from, i + 64)? {
                        Step::Done(end) => return Some(end),
                        Step::Next(next) => i = next,
                    }
                }
            }
        }
        if escaped_first {
            // Only a backslash inside a string carries over: the escaped byte is passed over.
            i += 1;
        }
    }
    #[cfg(target_arch = "x86_64")]
    while i + 16 <= bytes.len() {
        match state.block(bytes, i) {
            Block::Done(end) => return Some(end),
            Block::Next => i += 16,
            Block::Refused => return None,
            // A backslash in the block: byte by byte to the block's end (an escape may carry
            // past it).
            Block::Escapes => match state.bytes(bytes, i, i + 16)? {
                Step::Done(end) => return Some(end),
                Step::Next(next) => i = next,
            },
        }
    }
    match state.bytes(bytes, i, bytes.len())? {
        Step::Done(end) => Some(end),
        Step::Next(_) => None,
    }
}

/// Bit masks of the backslashes, quotes, opening and closing brackets among 16 bytes.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sse2")]
fn masks(chunk: &[u8; 16]) -> (u32, u32, u32, u32) {
    use std::arch::x86_64::{__m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8};
    // SAFETY: `chunk` is 16 readable bytes; the load has no alignment requirement.
    let v = unsafe { _mm_loadu_si128(chunk.as_ptr().cast::<__m128i>()) };
    let eq = |c: u8| _mm_cmpeq_epi8(v, _mm_set1_epi8(c as i8));
    let bits = |m| _mm_movemask_epi8(m) as u32;
    (bits(eq(b'\\')), bits(eq(b'"')), bits(_mm_or_si128(eq(b'{'), eq(b'['))), bits(_mm_or_si128(eq(b'}'), eq(b']'))))
}

/// [`masks`] of 64 bytes, as 64-bit masks.
#[cfg(target_arch = "x86_64")]
#[inline]
fn wide_masks(chunk: &[u8; 64]) -> (u64, u64, u64, u64) {
    let mut out = (0u64, 0u64, 0u64, 0u64);
    for (k, part) in chunk.chunks_exact(16).enumerate() {
        // SAFETY: SSE2 is part of x86-64: every CPU this code runs on has it.
        let (escapes, quotes, open, close) = unsafe { masks(part.try_into().expect("16 bytes")) };
        let shift = 16 * k;
        out.0 |= u64::from(escapes) << shift;
        out.1 |= u64::from(quotes) << shift;
        out.2 |= u64::from(open) << shift;
        out.3 |= u64::from(close) << shift;
    }
    out
}

/// The bytes of a block inside strings, from its unescaped `quotes` and whether it starts inside
/// one: bit k is set when an odd number of quotes lie at or before k (with the opening quote, not
/// the closing one), flipped when the block starts inside a string.
#[cfg(target_arch = "x86_64")]
#[inline]
fn inside_strings(quotes: u64, starts_inside: bool) -> u64 {
    let mut inside = quotes;
    for shift in [1, 2, 4, 8, 16, 32] {
        inside ^= inside << shift;
    }
    if starts_inside { !inside } else { inside }
}

/// The bytes escaped by the backslashes of a 64-byte block (`backslashes`), given whether its
/// first byte is escaped by a run of backslashes the block before ended with (`carry`, updated
/// for the next block). A run escapes the byte after it when its length is odd; subtracting the
/// runs from the odd bits tells odd runs from even ones without a loop (simdjson's method).
#[cfg(target_arch = "x86_64")]
#[inline]
fn escaped_bytes(backslashes: u64, carry: &mut bool) -> u64 {
    const ODD: u64 = 0xAAAA_AAAA_AAAA_AAAA;
    let first_escaped = u64::from(*carry);
    if backslashes == 0 {
        *carry = false;
        return first_escaped;
    }
    // A backslash escaped by the block before starts no run.
    let starts = backslashes & !first_escaped;
    let codes = ((starts << 1) | ODD).wrapping_sub(starts) ^ ODD;
    let escaped = codes ^ (backslashes | first_escaped);
    *carry = (codes & backslashes) >> 63 == 1;
    escaped
}

struct Nesting {
    depth: usize,
    in_string: bool,
}

enum Step {
    Done(usize),
    Next(usize),
}

#[cfg(target_arch = "x86_64")]
enum Block {
    Done(usize),
    Next,
    Escapes,
    Refused,
}

impl Nesting {
    /// Byte by byte from `i` to `until` (or one past it, when an escape carries over).
    fn bytes(&mut self, bytes: &[u8], mut i: usize, until: usize) -> Option<Step> {
        while i < until {
            match self.byte(bytes, i)? {
                Step::Done(end) => return Some(Step::Done(end)),
                Step::Next(next) => i = next,
            }
        }
        Some(Step::Next(i))
    }

    /// One byte at `i`; `None` when the brackets do not balance or nest too deep.
    #[inline]
    fn byte(&mut self, bytes: &[u8], i: usize) -> Option<Step> {
        let b = bytes[i];
        if self.in_string {
            match b {
                b'\\' => return Some(Step::Next(i + 2)),
                b'"' => self.in_string = false,
                _ => {}
            }
            return Some(Step::Next(i + 1));
        }
        match b {
            b'"' => self.in_string = true,
            b'{' | b'[' => {
                self.depth += 1;
                if self.depth > MAX_DEPTH {
                    return None;
                }
            }
            b'}' | b']' => {
                self.depth = self.depth.checked_sub(1)?;
                if self.depth == 0 {
                    return Some(Step::Done(i + 1));
                }
            }
            _ => {}
        }
        Some(Step::Next(i + 1))
    }

    /// The 64 bytes at `i` at once, escapes included: `Escapes` when a backslash lies outside
    /// the strings (not JSON) or the block may nest too deep, which the byte loop decides.
    #[cfg(target_arch = "x86_64")]
    #[inline]
    fn wide_block(&mut self, bytes: &[u8], i: usize, escaped_first: &mut bool) -> Block {
        let chunk: &[u8; 64] = bytes[i..i + 64].try_into().expect("64 bytes");
        let (backslashes, quotes, open, close) = wide_masks(chunk);
        let carry_in = *escaped_first;
        let escaped = escaped_bytes(backslashes, escaped_first);
        let inside = inside_strings(quotes & !escaped, self.in_string);
        if backslashes & !inside != 0 || self.depth + open.count_ones() as usize > MAX_DEPTH {
            *escaped_first = carry_in;
            return Block::Escapes;
        }
        self.in_string = inside >> 63 == 1;
        self.brackets(open & !inside, close & !inside, i)
    }

    /// The brackets outside strings of the block at `i` (bit k for the byte at `i + k`): `Done`
    /// after the one that closes the value, `Refused` at a closing one with nothing open, else
    /// `Next` with the depth counted.
    #[cfg(target_arch = "x86_64")]
    #[inline]
    fn brackets(&mut self, open: u64, close: u64, i: usize) -> Block {
        let closes = close.count_ones() as usize;
        if self.depth > closes {
            self.depth = self.depth + open.count_ones() as usize - closes;
            return Block::Next;
        }
        let mut brackets = open | close;
        while brackets != 0 {
            let bit = brackets.trailing_zeros();
            brackets &= brackets - 1;
            if open & (1 << bit) != 0 {
                self.depth += 1;
            } else {
                let Some(depth) = self.depth.checked_sub(1) else { return Block::Refused };
                self.depth = depth;
                if depth == 0 {
                    return Block::Done(i + bit as usize + 1);
                }
            }
        }
        Block::Next
    }

    /// The 16 bytes at `i` at once (SSE2, which every x86-64 has): quotes and brackets as bit
    /// masks, the inside of strings as the running parity of the quotes.
    #[cfg(target_arch = "x86_64")]
    #[inline]
    fn block(&mut self, bytes: &[u8], i: usize) -> Block {
        let chunk: &[u8; 16] = bytes[i..i + 16].try_into().expect("16 bytes");
        // SAFETY: SSE2 is part of x86-64: every CPU this code runs on has it.
        let (escapes, quotes, open, close) = unsafe { masks(chunk) };
        if escapes != 0 {
            return Block::Escapes;
        }
        let inside = inside_strings(u64::from(quotes), self.in_string) & 0xffff;
        self.in_string = inside & 0x8000 != 0;
        match self.brackets(u64::from(open) & !inside, u64::from(close) & !inside, i) {
            Block::Next if self.depth > MAX_DEPTH => Block::Refused,
            decided => decided,
        }
    }
}

/// The inside of a JSON string whose escapes are all of one character (`\"`, `\n`, …), decoded
/// as serde_json decodes it; `None` when it has a `\u` escape (or is not JSON), which is left to
/// serde_json. The API server writes `\"` in most authorization reasons: this spares a call of
/// the full decoder on most last stages.
fn unescape(text: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = memchr::memchr(b'\\', rest.as_bytes()) {
        out.push_str(&rest[..at]);
        let c = match rest.as_bytes().get(at + 1)? {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            _ => return None,
        };
        out.push(c);
        rest = &rest[at + 2..];
    }
    out.push_str(rest);
    Some(out)
}

/// The first byte at or after `from` that ends a plain run of a JSON string: a quote, a
/// backslash or a control character. Sixteen bytes at a time (SSE2), then eight: the strings of
/// an audit event are mostly short, where a `memchr` call costs more than it saves.
// Always inlined: called for every string of every line, where the call cost more than the
// search of a short string.
#[inline(always)]
pub(crate) fn string_stop(bytes: &[u8], from: usize) -> Option<usize> {
    #[cfg(target_arch = "x86_64")]
    {
        let mut i = from;
        while i + 16 <= bytes.len() {
            let chunk: &[u8; 16] = bytes[i..i + 16].try_into().expect("16 bytes");
            // SAFETY: SSE2 is part of x86-64: every CPU this code runs on has it.
            let stops = unsafe { string_stops(chunk) };
            if stops != 0 {
                return Some(i + stops.trailing_zeros() as usize);
            }
            i += 16;
        }
        string_stop_by_words(bytes, i)
    }
    #[cfg(not(target_arch = "x86_64"))]
    string_stop_by_words(bytes, from)
}

/// The quotes, backslashes and control characters among 16 bytes, as a bit mask.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sse2")]
fn string_stops(chunk: &[u8; 16]) -> u32 {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_max_epu8, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8,
    };
    // SAFETY: `chunk` is 16 readable bytes; the load has no alignment requirement.
    let v = unsafe { _mm_loadu_si128(chunk.as_ptr().cast::<__m128i>()) };
    let quote = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8));
    let backslash = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8));
    // A byte is at most 0x1f exactly when the unsigned maximum of it and 0x1f is 0x1f.
    let low = _mm_set1_epi8(0x1f);
    let control = _mm_cmpeq_epi8(_mm_max_epu8(v, low), low);
    _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(quote, backslash), control)) as u32
}

/// [`string_stop`] eight bytes at a time, in a `u64`.
#[inline]
fn string_stop_by_words(bytes: &[u8], from: usize) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut i = from;
    while i + 8 <= bytes.len() {
        let word = u64::from_le_bytes(bytes[i..i + 8].try_into().ok()?);
        let zero_byte = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
        let found = zero_byte(word ^ (ONES * u64::from(b'"')))
            | zero_byte(word ^ (ONES * u64::from(b'\\')))
            | (word.wrapping_sub(ONES * 0x20) & !word & HIGH);
        if found != 0 {
            // The lowest flagged byte is always a true one (a borrow only flags bytes above it).
            return Some(i + (found.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    bytes[i..].iter().position(|b| *b == b'"' || *b == b'\\' || *b < 0x20).map(|p| i + p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The byte loop alone: what the 16-byte blocks must agree with.
    fn byte_by_byte(bytes: &[u8], at: usize) -> Option<usize> {
        match (Nesting { depth: 0, in_string: false }).bytes(bytes, at, bytes.len())? {
            Step::Done(end) => Some(end),
            Step::Next(_) => None,
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]

        #[test]
        fn blocks_and_bytes_skip_alike(text in r#"[\[{][\[\]{}"\\a: ,]{0,300}"#) {
            prop_assert_eq!(skip_nested(text.as_bytes(), 0), byte_by_byte(text.as_bytes(), 0), "{}", text);
        }

        /// Mostly strings with runs of backslashes, across 64-byte blocks.
        #[test]
        fn escapes_across_blocks_skip_as_bytes_do(text in r#"\{"a":"([\\]{0,5}[a"{}]){0,80}"\}"#) {
            prop_assert_eq!(skip_nested(text.as_bytes(), 0), byte_by_byte(text.as_bytes(), 0), "{}", text);
        }

        #[cfg(target_arch = "x86_64")]
        #[test]
        fn escaped_bytes_are_those_a_byte_loop_finds(backslashes in prop_oneof![any::<u64>(), any::<u64>().prop_map(|x| x | x << 1 | x << 2)], carry in any::<bool>()) {
            let (mut want, mut escaping) = (0u64, carry);
            for k in 0..64 {
                if escaping {
                    want |= 1 << k;
                    escaping = false;
                } else if backslashes & (1 << k) != 0 {
                    escaping = true;
                }
            }
            let mut got_carry = carry;
            prop_assert_eq!(escaped_bytes(backslashes, &mut got_carry), want);
            prop_assert_eq!(got_carry, escaping);
        }

        #[test]
        fn a_json_value_is_skipped_to_its_end(value in any::<Vec<(String, Vec<u8>)>>(), tail in "[ ,}a]{0,20}") {
            let json = serde_json::to_string(&value).expect("serializable");
            let text = format!("{json}{tail}");
            prop_assert_eq!(skip_nested(text.as_bytes(), 0), Some(json.len()), "{}", text);
        }
    }

    /// The envelope passes over a body by its brackets; the event built from it checks the body
    /// as the decoder does, and leaves a broken one to the decoder, which says what is wrong.
    #[test]
    fn a_broken_body_is_left_to_the_decoder() {
        let line = |body: &str| {
            format!(
                r#"{{"kind":"Event","apiVersion":"audit.k8s.io/v1","auditID":"a","stage":"ResponseComplete","verb":"create","requestObject":{body}}}"#
            )
        };
        let origin = crate::Origin::new("p", 1);
        for (body, built) in [(r#"{"a":[1,"]"]}"#, true), (r#"{"a":tru}"#, false), (r#"{"a":1,}"#, false)] {
            let line = line(body);
            let mut envelope = Envelope::default();
            assert_eq!(Envelope::read_into(&line, &mut envelope), Kind::Last, "{line}");
            let event = envelope.to_event(&line, &origin);
            assert_eq!(event.is_some(), built, "{line}");
            if let Some(event) = event {
                assert_eq!(event.request_object.expect("a body").text(), body);
            }
        }
    }

    #[test]
    fn a_cleared_envelope_is_a_default_one() {
        let line = r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Request","auditID":"a\u0041","stage":"ResponseComplete","requestURI":"/api/v1/pods","verb":"list","user":{"username":"u","uid":"1","groups":["g"],"extra":{"k":["v"]}},"impersonatedUser":{"username":"i"},"sourceIPs":["10.0.0.1"],"userAgent":"kubectl","objectRef":{"resource":"pods","namespace":"n"},"responseStatus":{"code":200},"requestObject":{},"responseObject":{},"requestReceivedTimestamp":"2026-11-28T00:00:00Z","stageTimestamp":"2026-11-28T00:00:01Z","annotations":{"a":"b","c":1}}"#;
        let mut envelope = Envelope::default();
        assert_eq!(Envelope::read_into(line, &mut envelope), Kind::Last);
        assert!(envelope.has_response_object && envelope.user.has_extra && envelope.impersonated_user.is_some());
        envelope.clear();
        assert_eq!(format!("{envelope:?}"), format!("{:?}", Envelope::default()));
    }

    #[test]
    fn nesting_deeper_than_the_decoder_takes_is_refused() {
        // serde_json stops at 128; a block of 16 may pass `MAX_DEPTH` and come back unseen.
        let deep = format!("{}{}", "[".repeat(128), "]".repeat(128));
        assert_eq!(skip_nested(deep.as_bytes(), 0), None);
        let fine = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert_eq!(skip_nested(fine.as_bytes(), 0), Some(fine.len()));
    }

    #[test]
    fn member_names_are_found_where_the_lists_have_them() {
        for (i, key) in TOP_LEVEL.iter().enumerate() {
            assert_eq!(top_level(key).map(|m| m as usize), Some(i), "{key}");
        }
        use crate::field::ObjectRefField as F;
        for (key, field) in [
            ("resource", F::Resource),
            ("subresource", F::Subresource),
            ("namespace", F::Namespace),
            ("name", F::Name),
            ("uid", F::Uid),
            ("apiGroup", F::ApiGroup),
            ("apiVersion", F::ApiVersion),
            ("resourceVersion", F::ResourceVersion),
        ] {
            assert_eq!(object_ref_member(key), Some(field as usize), "{key}");
        }
        assert_eq!(top_level("Kind"), None);
        assert_eq!(object_ref_member("kind"), None);
    }

    proptest! {
        /// Blocks of 16, words of 8 and single bytes find the same stop, wherever it falls.
        #[test]
        fn string_stop_is_the_first_stopping_byte(
            bytes in proptest::collection::vec(prop_oneof![
                4 => 0x20u8..0x7f,
                1 => Just(b'"'),
                1 => Just(b'\\'),
                1 => 0u8..0x20,
                1 => 0x7fu8..=0xff,
            ], 0..80),
            from in 0usize..80,
        ) {
            let from = from.min(bytes.len());
            let want = bytes[from..].iter().position(|b| *b == b'"' || *b == b'\\' || *b < 0x20).map(|p| from + p);
            prop_assert_eq!(string_stop(&bytes, from), want);
            prop_assert_eq!(string_stop_by_words(&bytes, from), want);
        }
    }

    proptest! {
        /// Whatever the escapes, the string reads as serde_json reads it, or not at all when
        /// serde_json refuses it.
        #[test]
        fn strings_read_as_serde_json_reads_them(inside in r#"([a-z/ ]|\\[\\"/bfnrtux0-9A-F]|\\u[0-9a-fA-F]{4}|é){0,12}"#) {
            let json = format!("\"{inside}\"");
            let mut s = Scanner { text: &json, bytes: json.as_bytes(), at: 0 };
            let want = serde_json::from_str::<String>(&json).ok();
            prop_assert_eq!(s.string().map(Cow::into_owned), want, "{}", json);
        }
    }

    #[test]
    fn string_stop_finds_quotes_backslashes_and_control_characters() {
        for (text, want) in [
            ("abcdefghij\"", Some(10)),
            ("ab\\c", Some(2)),
            ("abcdefgh\u{1}", Some(8)),
            ("abcdefghijklmnop", None),
            ("é\"", Some(2)),
        ] {
            assert_eq!(string_stop(text.as_bytes(), 0), want, "{text}");
        }
    }
}
