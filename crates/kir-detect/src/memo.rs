//! The rules' verdict on an envelope, worked out once for every envelope that looks the same.
//!
//! A busy cluster's requests come from a few hundred identities, from a few hundred addresses,
//! with a handful of verbs, resources and response codes; what changes from one request to the
//! next is mostly its name, its URI and its timestamps. And most rules are ruled out, or in, by
//! the first kind of field alone: "the user is `system:anonymous`", "refused by authorization",
//! "from a public address". So [`RuleSet::may_match`](crate::RuleSet::may_match) first evaluates
//! the candidate rules on a view of the envelope that reveals only those low-cardinality fields
//! ([`Revealed`]), keyed by their values, and keeps the verdict: a rule that view decides is
//! decided for every envelope with the same key (three-valued logic never changes a decided
//! value when more fields become known), and only the rules it leaves open are evaluated on the
//! whole envelope.
//!
//! A decoded request is matched the same way ([`RuleSet::matching`](crate::RuleSet::matching)):
//! its key is written from the same fields ([`RevealedEvent`]), and only the rules its verdict
//! leaves open are evaluated on the whole event; those it makes sure of match without more.
//!
//! Addresses are the exception to "low-cardinality": every pod has its own. When no rule
//! compares another field with them, a key holds what each rule item on `sourceIPs` says of
//! the addresses, not the addresses (worked out once per list of addresses): thousands of pods
//! then share the keys of the few rules that tell private from public addresses.
//!
//! The memo is per thread (the hunt's workers never wait on each other for it), bounded, and
//! belongs to one rule set at a time.

use std::cell::RefCell;
use std::collections::HashMap;

use kir_audit::field::{Field, ObjectRefField, UserField};
use kir_audit::{AuditEvent, Envelope, Fields, Scalar};

use crate::detection::Item;

/// Keys kept per thread before the memo starts over: a log of ever new keys (every request from
/// a new address) then costs one key's hashing per request, and memory stays bounded (a key is a
/// few hundred bytes).
const CAPACITY: usize = 4096;

/// What the revealed fields say about the candidate rules of the requests with one key: the
/// rules they leave in, in the order the index gives them (the order findings are made in).
#[derive(Debug)]
pub(crate) struct Verdict(pub(crate) Box<[Left]>);

/// A candidate rule the revealed fields do not rule out.
#[derive(Debug)]
pub(crate) struct Left {
    pub(crate) rule: usize,
    /// The revealed fields alone make it match: the rest cannot change that.
    pub(crate) sure: bool,
    /// For a rule left open: what each of its searches says on the revealed fields (those that
    /// read only them are decided, and are not asked again).
    pub(crate) known: Box<[Option<bool>]>,
}

pub(crate) struct Memo {
    /// The rule set the verdicts are about.
    generation: u64,
    verdicts: HashMap<Box<[u8]>, Verdict, foldhash::fast::FixedState>,
    key: Vec<u8>,
    /// What the rules' address items say of each list of addresses ([`KeyWriter::addresses`]).
    outcomes: HashMap<Box<[u8]>, Box<[u8]>, foldhash::fast::FixedState>,
    addresses: Vec<u8>,
}

thread_local! {
    static MEMO: RefCell<Memo> = RefCell::new(Memo {
        generation: 0,
        verdicts: HashMap::with_hasher(foldhash::fast::FixedState::default()),
        key: Vec::new(),
        outcomes: HashMap::with_hasher(foldhash::fast::FixedState::default()),
        addresses: Vec::new(),
    });
}

/// The verdict for the key `write_key` writes, worked out by `decide` when not seen yet, handed
/// to `answer`.
fn with_verdict<R>(
    generation: u64,
    write_key: impl FnOnce(&mut KeyWriter),
    decide: impl FnOnce() -> Verdict,
    answer: impl FnOnce(&Verdict) -> R,
) -> R {
    MEMO.with_borrow_mut(|memo| {
        if memo.generation != generation {
            memo.outcomes.clear();
        }
        if memo.generation != generation || memo.verdicts.len() >= CAPACITY {
            memo.verdicts.clear();
            memo.generation = generation;
        }
        if memo.outcomes.len() >= CAPACITY {
            memo.outcomes.clear();
        }
        let Memo { verdicts, key, outcomes, addresses, .. } = memo;
        key.clear();
        write_key(&mut KeyWriter { key, outcomes, addresses });
        if let Some(verdict) = verdicts.get(key.as_slice()) {
            return answer(verdict);
        }
        let verdict = decide();
        let answered = answer(&verdict);
        verdicts.insert(key.as_slice().into(), verdict);
        answered
    })
}

/// Whether a rule may match the request whose last stage has `envelope`. `decide` works out the
/// verdict of a key not seen yet (from [`Revealed`]); `open` evaluates a rule the verdict left
/// open on the whole envelope.
pub(crate) fn may_match(
    generation: u64,
    envelope: &Envelope,
    addresses: Option<&[Item]>,
    decide: impl FnOnce(&Revealed) -> Verdict,
    mut open: impl FnMut(&Left) -> bool,
) -> bool {
    with_verdict(
        generation,
        |key| key_of(envelope, addresses, key),
        || decide(&Revealed(envelope)),
        |verdict| verdict.0.iter().any(|left| left.sure) || verdict.0.iter().any(&mut open),
    )
}

/// The rules that match the decoded `event`, in the index's order, into `out`: the rules its
/// revealed fields ([`RevealedEvent`]) rule out are not evaluated, nor those they make sure of.
/// `decide` works out the verdict of a key not seen yet; `full` evaluates a rule left open on the
/// whole event.
pub(crate) fn matching(
    generation: u64,
    event: &AuditEvent,
    addresses: Option<&[Item]>,
    decide: impl FnOnce(&RevealedEvent) -> Verdict,
    mut full: impl FnMut(&Left) -> bool,
    out: &mut Vec<usize>,
) {
    with_verdict(
        generation,
        |key| key_of_event(event, addresses, key),
        || decide(&RevealedEvent(event)),
        |verdict| out.extend(verdict.0.iter().filter(|left| left.sure || full(left)).map(|left| left.rule)),
    )
}

/// An envelope that answers only for the fields its key holds ([`key_of`]), and "unknown" for
/// the rest (the request's name, URI, timestamps, other annotations, the user's uid).
pub(crate) struct Revealed<'e, 'a>(pub &'e Envelope<'a>);

impl<'e, 'a: 'e> Fields<'e> for &Revealed<'e, 'a> {
    fn any(&self, field: &Field, f: &mut dyn FnMut(Scalar<'e>) -> bool) -> Option<bool> {
        if reveals(field) { (&self.0).any(field, f) } else { None }
    }
}

/// Whether the envelope's answer for `field` depends only on what [`key_of`] writes.
fn reveals(field: &Field) -> bool {
    match field {
        Field::ApiVersion
        | Field::Stage
        | Field::Level
        | Field::Verb
        | Field::UserAgent
        | Field::SourceIps
        | Field::ResponseCode
        | Field::Decision
        | Field::ServiceAccountNamespace
        | Field::ServiceAccountName
        // Bodies and the status's text: the envelope only knows whether they are there.
        | Field::ResponseStatus(_)
        | Field::RequestObject(_)
        | Field::PodSpec(_)
        | Field::Containers(_)
        | Field::Images
        | Field::ImageRepositories
        | Field::CsrSubject
        | Field::ResponseObject(_)
        | Field::RoleRefPower
        | Field::Unknown(_) => true,
        Field::User(user) | Field::ImpersonatedUser(user) => matches!(user, UserField::Username | UserField::Groups),
        Field::ObjectRef(object) => matches!(
            object,
            ObjectRefField::Resource
                | ObjectRefField::Subresource
                | ObjectRefField::Namespace
                | ObjectRefField::ApiGroup
                | ObjectRefField::ApiVersion
        ),
        Field::AuditId
        | Field::RequestUri
        | Field::Annotation(_)
        | Field::RequestReceivedTimestamp
        | Field::StageTimestamp => false,
    }
}

/// The [`Revealed`] of a decoded request: the event's own answers for the fields [`reveals`]
/// names, "unknown" for the rest and inside bodies, as an envelope would answer. Its key
/// ([`key_of_event`]) writes the same values as [`key_of`] does, so a verdict holds for both.
pub(crate) struct RevealedEvent<'e>(pub &'e AuditEvent);

impl<'e> Fields<'e> for &RevealedEvent<'e> {
    fn any(&self, field: &Field, f: &mut dyn FnMut(Scalar<'e>) -> bool) -> Option<bool> {
        let e: &'e AuditEvent = self.0;
        // What is inside a body or the status's text depends on more than the key holds.
        let unknown_when_there = |there: bool| (!there).then_some(false);
        match field {
            Field::RequestObject(_)
            | Field::PodSpec(_)
            | Field::Containers(_)
            | Field::Images
            | Field::ImageRepositories
            | Field::CsrSubject => unknown_when_there(e.request_object.is_some()),
            Field::ResponseObject(_) => unknown_when_there(e.response_object.is_some()),
            Field::ResponseStatus(_) => unknown_when_there(e.response_status.is_some()),
            // Filled in by the hunt, not written in the key.
            Field::RoleRefPower => None,
            Field::ImpersonatedUser(_) if e.impersonated_user.is_none() => Some(false),
            Field::ObjectRef(_) if e.object_ref.is_none() => Some(false),
            _ if reveals(field) => Some(field.any(e, f)),
            _ => None,
        }
    }
}

/// Writes a key's values, each with its length or presence, so that two keys are the same only
/// when every value is.
struct KeyWriter<'k> {
    key: &'k mut Vec<u8>,
    outcomes: &'k mut HashMap<Box<[u8]>, Box<[u8]>, foldhash::fast::FixedState>,
    addresses: &'k mut Vec<u8>,
}

impl KeyWriter<'_> {
    fn text(&mut self, s: &str) {
        self.key.extend_from_slice(&(s.len() as u32).to_le_bytes());
        self.key.extend_from_slice(s.as_bytes());
    }

    fn option(&mut self, s: Option<&str>) {
        match s {
            Some(s) => {
                self.key.push(1);
                self.text(s);
            }
            None => self.key.push(0),
        }
    }

    fn list<S: AsRef<str>>(&mut self, items: &[S]) {
        self.key.extend_from_slice(&(items.len() as u32).to_le_bytes());
        for item in items {
            self.text(item.as_ref());
        }
    }

    fn user(&mut self, user: Option<(&str, &[impl AsRef<str>])>) {
        match user {
            Some((username, groups)) => {
                self.key.push(1);
                self.text(username);
                self.list(groups);
            }
            None => self.key.push(0),
        }
    }

    fn object_ref(&mut self, object: Option<[Option<&str>; 5]>) {
        match object {
            Some(fields) => {
                self.key.push(1);
                for field in fields {
                    self.option(field);
                }
            }
            None => self.key.push(0),
        }
    }

    fn code(&mut self, code: Option<i64>) {
        match code {
            Some(code) => {
                self.key.push(1);
                self.key.extend_from_slice(&code.to_le_bytes());
            }
            None => self.key.push(0),
        }
    }

    fn decision(&mut self, decision: Option<Option<&str>>) {
        match decision {
            None => self.key.push(0),
            Some(None) => self.key.push(1),
            Some(Some(decision)) => {
                self.key.push(2);
                self.text(decision);
            }
        }
    }

    /// The addresses `ips` of `source`: what each of `items` (which read only the addresses)
    /// says of them, in place of the addresses, or the addresses themselves without `items`.
    /// Worked out once per list of addresses: a pod or a node keeps its address.
    fn addresses<'a, S: AsRef<str>>(&mut self, ips: &[S], items: Option<&[Item]>, source: &impl Fields<'a>) {
        let Some(items) = items else { return self.list(ips) };
        self.addresses.clear();
        for ip in ips {
            let ip = ip.as_ref();
            self.addresses.extend_from_slice(&(ip.len() as u32).to_le_bytes());
            self.addresses.extend_from_slice(ip.as_bytes());
        }
        match self.outcomes.get(self.addresses.as_slice()) {
            Some(outcomes) => self.key.extend_from_slice(outcomes),
            None => {
                let start = self.key.len();
                for item in items {
                    self.key.push(match item.eval(source) {
                        None => 0,
                        Some(false) => 1,
                        Some(true) => 2,
                    });
                }
                self.outcomes.insert(self.addresses.as_slice().into(), self.key[start..].into());
            }
        }
    }

    fn presence(&mut self, response_status: bool, request_object: bool, response_object: bool) {
        self.key.push(u8::from(response_status) | u8::from(request_object) << 1 | u8::from(response_object) << 2);
    }
}

/// The values a key is written from, taken from an envelope or a decoded request: one writer
/// ([`KeyFields::write`]) makes the same bytes from both, so their verdicts are shared.
struct KeyFields<'a, S> {
    api_version: Option<&'a str>,
    stage: Option<&'a str>,
    level: Option<&'a str>,
    verb: &'a str,
    user_agent: Option<&'a str>,
    source_ips: &'a [S],
    username: &'a str,
    groups: &'a [S],
    impersonated: Option<(&'a str, &'a [S])>,
    /// Resource, subresource, namespace, API group and version.
    object: Option<[Option<&'a str>; 5]>,
    code: Option<i64>,
    /// `Some(None)`: an annotation that is not a string.
    decision: Option<Option<&'a str>>,
    /// Whether the response status, the request body and the response body are there.
    presence: (bool, bool, bool),
}

impl<S: AsRef<str>> KeyFields<'_, S> {
    /// Writes the values of every field [`reveals`] answers for, so that two requests have the
    /// same key only when all those answers are the same (`source` answers the address items).
    fn write<'s>(&self, addresses: Option<&[Item]>, source: &impl Fields<'s>, key: &mut KeyWriter) {
        key.option(self.api_version);
        key.option(self.stage);
        key.option(self.level);
        key.text(self.verb);
        key.option(self.user_agent);
        key.addresses(self.source_ips, addresses, source);
        key.text(self.username);
        key.list(self.groups);
        key.user(self.impersonated);
        key.object_ref(self.object);
        key.code(self.code);
        key.decision(self.decision);
        let (status, request, response) = self.presence;
        key.presence(status, request, response);
    }
}

/// The key of a last stage's envelope.
fn key_of(e: &Envelope, addresses: Option<&[Item]>, key: &mut KeyWriter) {
    KeyFields {
        // An envelope always has an `apiVersion` (the reader requires it).
        api_version: Some(&e.api_version),
        stage: e.stage.map(|s| s.as_str()),
        level: e.level.as_deref(),
        verb: &e.verb,
        user_agent: e.user_agent.as_deref(),
        source_ips: &e.source_ips,
        username: &e.user.username,
        groups: &e.user.groups,
        impersonated: e.impersonated_user.as_ref().map(|u| (&*u.username, u.groups.as_slice())),
        object: e.object_ref.as_ref().map(|o| {
            [
                ObjectRefField::Resource,
                ObjectRefField::Subresource,
                ObjectRefField::Namespace,
                ObjectRefField::ApiGroup,
                ObjectRefField::ApiVersion,
            ]
            .map(|field| o[field as usize].as_deref())
        }),
        code: e.response_code,
        decision: e.annotation("authorization.k8s.io/decision").map(|d| d.as_deref()),
        presence: (e.has_response_status, e.has_request_object, e.has_response_object),
    }
    .write(addresses, &e, key);
}

/// The key of a decoded request ([`RevealedEvent`]).
fn key_of_event(e: &AuditEvent, addresses: Option<&[Item]>, key: &mut KeyWriter) {
    KeyFields {
        api_version: e.api_version.as_deref(),
        stage: e.stage.map(|s| s.as_str()),
        level: e.level.as_deref(),
        verb: &e.verb,
        user_agent: e.user_agent.as_deref(),
        source_ips: &e.source_ips,
        username: &e.user.username,
        groups: &e.user.groups,
        impersonated: e.impersonated_user.as_ref().map(|u| (&*u.username, u.groups.as_slice())),
        object: e
            .object_ref
            .as_ref()
            .map(|o| [&o.resource, &o.subresource, &o.namespace, &o.api_group, &o.api_version].map(|v| v.as_deref())),
        code: e.response_code(),
        // The decoder keeps every annotation as text: a decision is never "not a string" here.
        decision: e.decision().map(Some),
        presence: (e.response_status.is_some(), e.request_object.is_some(), e.response_object.is_some()),
    }
    .write(addresses, &e, key);
}
