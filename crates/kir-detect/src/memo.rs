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
//! The memo is per thread (the hunt's workers never wait on each other for it), bounded, and
//! belongs to one rule set at a time.

use std::cell::RefCell;
use std::collections::HashMap;

use kir_audit::field::{Field, ObjectRefField, UserField};
use kir_audit::{Envelope, Fields, Scalar};

/// Keys kept per thread before the memo starts over: a log of ever new keys (every request from
/// a new address) then costs one key's hashing per request, and memory stays bounded (a key is a
/// few hundred bytes).
const CAPACITY: usize = 4096;

/// What the revealed fields say about the candidate rules of the envelopes with one key.
#[derive(Debug)]
pub(crate) enum Verdict {
    /// Every candidate is decided: whether one of them matches.
    Decided(bool),
    /// None matches for sure; these depend on fields the key leaves out.
    Open(Box<[usize]>),
}

pub(crate) struct Memo {
    /// The rule set the verdicts are about.
    generation: u64,
    verdicts: HashMap<Box<[u8]>, Verdict, foldhash::fast::FixedState>,
    key: Vec<u8>,
}

thread_local! {
    static MEMO: RefCell<Memo> = RefCell::new(Memo {
        generation: 0,
        verdicts: HashMap::with_hasher(foldhash::fast::FixedState::default()),
        key: Vec::new(),
    });
}

/// `decide` works out the verdict of a key not seen yet (from [`Revealed`]); `open` evaluates
/// one rule the verdict left open on the whole envelope.
pub(crate) fn may_match(
    generation: u64,
    envelope: &Envelope,
    decide: impl FnOnce(&Revealed) -> Verdict,
    mut open: impl FnMut(usize) -> bool,
) -> bool {
    MEMO.with_borrow_mut(|memo| {
        if memo.generation != generation || memo.verdicts.len() >= CAPACITY {
            memo.verdicts.clear();
            memo.generation = generation;
        }
        let Memo { verdicts, key, .. } = memo;
        key_of(envelope, key);
        if let Some(verdict) = verdicts.get(key.as_slice()) {
            return verdict.answer(&mut open);
        }
        let verdict = decide(&Revealed(envelope));
        let answer = verdict.answer(&mut open);
        verdicts.insert(key.as_slice().into(), verdict);
        answer
    })
}

impl Verdict {
    fn answer(&self, open: &mut impl FnMut(usize) -> bool) -> bool {
        match self {
            Verdict::Decided(may) => *may,
            Verdict::Open(rules) => rules.iter().any(|&i| open(i)),
        }
    }
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

/// Writes the values of every field [`reveals`] answers for, each with its length or presence,
/// so that two envelopes have the same key only when all those answers are the same.
fn key_of(e: &Envelope, key: &mut Vec<u8>) {
    key.clear();
    let text = |key: &mut Vec<u8>, s: &str| {
        key.extend_from_slice(&(s.len() as u32).to_le_bytes());
        key.extend_from_slice(s.as_bytes());
    };
    let option = |key: &mut Vec<u8>, s: Option<&str>| match s {
        Some(s) => {
            key.push(1);
            text(key, s);
        }
        None => key.push(0),
    };
    let list = |key: &mut Vec<u8>, items: &[std::borrow::Cow<str>]| {
        key.extend_from_slice(&(items.len() as u32).to_le_bytes());
        for item in items {
            text(key, item);
        }
    };
    text(key, &e.api_version);
    option(key, e.stage.map(|s| s.as_str()));
    option(key, e.level.as_deref());
    text(key, &e.verb);
    option(key, e.user_agent.as_deref());
    list(key, &e.source_ips);
    text(key, &e.user.username);
    list(key, &e.user.groups);
    match &e.impersonated_user {
        Some(user) => {
            key.push(1);
            text(key, &user.username);
            list(key, &user.groups);
        }
        None => key.push(0),
    }
    match &e.object_ref {
        Some(object) => {
            key.push(1);
            for field in [
                ObjectRefField::Resource,
                ObjectRefField::Subresource,
                ObjectRefField::Namespace,
                ObjectRefField::ApiGroup,
                ObjectRefField::ApiVersion,
            ] {
                option(key, object[field as usize].as_deref());
            }
        }
        None => key.push(0),
    }
    match e.response_code {
        Some(code) => {
            key.push(1);
            key.extend_from_slice(&code.to_le_bytes());
        }
        None => key.push(0),
    }
    match e.annotation("authorization.k8s.io/decision") {
        None => key.push(0),
        Some(None) => key.push(1),
        Some(Some(decision)) => {
            key.push(2);
            text(key, decision);
        }
    }
    key.push(
        u8::from(e.has_response_status) | u8::from(e.has_request_object) << 1 | u8::from(e.has_response_object) << 2,
    );
}
