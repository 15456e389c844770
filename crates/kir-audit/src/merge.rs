//! One request logged at several stages becomes one event.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::sync::Arc;

use crate::early::RawStage;
use crate::event::{AuditEvent, Origin, Presence, Record};
use crate::skip::Skipped;

/// Open requests keyed by a 64-bit hash of their auditID: no copy of the id per entry. Two ids
/// with the same hash are told apart by the id kept in the event itself.
type Pending = HashMap<u64, Held, BuildHasherDefault<IdentityHasher>>;

/// What is held of a request that waits for its last stage.
#[derive(Debug)]
enum Held {
    Decoded(Box<AuditEvent>, Presence),
    /// Still the text of its line ([`crate::early`]).
    Raw(RawStage),
}

impl Held {
    fn is_request(&self, audit_id: &str, cluster: &Option<Arc<str>>) -> bool {
        match self {
            Held::Decoded(e, _) => e.audit_id == audit_id && e.origin.cluster == *cluster,
            Held::Raw(r) => *r.audit_id == *audit_id && r.origin.cluster == *cluster,
        }
    }
}

/// What the earlier stages of a request add to its last stage.
#[derive(Debug)]
pub enum Earlier {
    /// Nothing the last stage lacks: only where the request was first logged.
    Nothing(Origin),
    /// The earlier stages, decoded: they know something the last stage does not.
    Adds(Box<AuditEvent>),
    /// The earlier stage was needed but its line is broken further on (said in the merger's or
    /// the caller's skipped lines): the last stage stands alone, at its own line.
    Broken,
}

/// The keys are already hashes: hashing them again would only cost time.
#[derive(Default)]
struct IdentityHasher(u64);

impl Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// The key of a request in the merger (computed where the record is decoded, off the serial path):
/// its auditID within its cluster. Clients may choose their own `Audit-ID`, so one cluster's
/// requests must never complete another's.
pub fn key(event: &AuditEvent) -> u64 {
    key_of(&event.audit_id, &event.origin.cluster)
}

/// [`key`] of a request known by its auditID and cluster.
///
/// A fast hash seeded once per process: a client cannot choose IDs that collide, and a collision
/// would only cost a merge, as every use checks the auditID and cluster too.
pub fn key_of(audit_id: &str, cluster: &Option<Arc<str>>) -> u64 {
    static SEED: std::sync::LazyLock<foldhash::quality::RandomState> = std::sync::LazyLock::new(Default::default);
    SEED.hash_one((audit_id, cluster))
}

/// What the earlier stage `text` (logged at `origin`) adds to a last stage with `later` fields:
/// decoded only when it may add something ([`crate::early::may_add_after`] the members `walked`).
/// A line the decoder refuses is said in `skipped` and adds nothing.
pub fn earlier_from_text(
    text: &str,
    walked: &crate::early::Walked,
    origin: Origin,
    later: Presence,
    skipped: &mut Vec<Skipped>,
) -> Earlier {
    if !crate::early::may_add_after(text, walked, later) {
        return Earlier::Nothing(origin);
    }
    match decode_stage(text, &origin, skipped) {
        Some(e) if e.presence().adds_to(later) => Earlier::Adds(Box::new(e)),
        Some(_) => Earlier::Nothing(origin),
        None => Earlier::Broken,
    }
}

/// An earlier stage kept as text, decoded now: its one audit event, or `None` with what the
/// decoder refused said in `skipped`.
fn decode_stage(text: &str, origin: &Origin, skipped: &mut Vec<Skipped>) -> Option<AuditEvent> {
    let mut records = Vec::with_capacity(1);
    crate::decode(text, origin, &mut records, skipped);
    match records.pop() {
        Some(Record::Audit(e)) if records.is_empty() => Some(e),
        _ => None,
    }
}

/// Joins the stages of each request by `auditID`, with bounded memory: a request whose final
/// stage never comes (a watch still open when the log was cut) is released unmerged once
/// `capacity` newer requests are waiting, or at the end.
#[derive(Debug)]
pub struct StageMerger {
    pending: Pending,
    order: VecDeque<u64>,
    capacity: usize,
    /// Requests whose last stage came with no earlier stage held (the log was cut at their
    /// start, or their stages arrived out of order): an earlier stage that comes after is of a
    /// request already reported, and is dropped instead of being reported again. Bounded like
    /// `pending`.
    completed_alone: std::collections::HashSet<u64, BuildHasherDefault<IdentityHasher>>,
    completed_order: VecDeque<u64>,
    late_stages: u64,
    /// Earlier stages kept as text that the decoder refused when they were needed.
    skipped: Vec<Skipped>,
}

impl std::fmt::Debug for IdentityHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IdentityHasher")
    }
}

impl Default for StageMerger {
    fn default() -> Self {
        StageMerger::with_capacity(100_000)
    }
}

impl StageMerger {
    pub fn with_capacity(capacity: usize) -> Self {
        StageMerger {
            pending: Pending::default(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
            completed_alone: Default::default(),
            completed_order: VecDeque::new(),
            late_stages: 0,
            skipped: Vec::new(),
        }
    }

    /// The last stage of request `k` came with nothing held for it (and was reported alone):
    /// its earlier stages, if they still come, are dropped.
    pub fn completed_alone(&mut self, k: u64) {
        // Tracked even before any earlier stage came: a log may open with a last stage whose
        // earlier stage follows it (a few milliseconds of hashing per million requests).
        if self.completed_alone.insert(k) {
            self.completed_order.push_back(k);
            while self.completed_order.len() > self.capacity {
                if let Some(old) = self.completed_order.pop_front() {
                    self.completed_alone.remove(&old);
                }
            }
        }
    }

    /// Earlier stages dropped because their request was already reported.
    pub fn late_stages(&self) -> u64 {
        self.late_stages
    }

    /// Earlier stages kept as text that turned out not to decode, since the last call.
    pub fn take_skipped(&mut self) -> Vec<Skipped> {
        std::mem::take(&mut self.skipped)
    }

    fn decoded(&mut self, held: Held) -> Option<AuditEvent> {
        match held {
            Held::Decoded(e, _) => Some(*e),
            Held::Raw(raw) => decode_stage(&raw.text, &raw.origin, &mut self.skipped),
        }
    }

    /// Whether an earlier stage of `k` is to be dropped: its request was already reported.
    fn late(&mut self, k: u64) -> bool {
        if self.completed_alone.contains(&k) {
            self.late_stages += 1;
            return true;
        }
        false
    }

    /// Keeps a stage that is not its request's last; requests released to stay within capacity
    /// (their last stage never came in time) are pushed to `out`, unmerged. `k` is
    /// [`key`]`(&event)`.
    pub fn hold(&mut self, k: u64, event: AuditEvent, presence: Presence, out: &mut Vec<AuditEvent>) {
        if self.late(k) {
            return;
        }
        match self.pending.remove(&k) {
            Some(held) if held.is_request(&event.audit_id, &event.origin.cluster) => {
                let joined = match self.decoded(held) {
                    Some(mut first) => {
                        first.absorb(event);
                        first
                    }
                    None => event,
                };
                let presence = joined.presence();
                self.pending.insert(k, Held::Decoded(Box::new(joined), presence));
            }
            other => {
                if let Some(unrelated) = other.and_then(|h| self.decoded(h)) {
                    out.push(unrelated);
                }
                self.order.push_back(k);
                self.pending.insert(k, Held::Decoded(Box::new(event), presence));
                self.evict(out);
            }
        }
    }

    /// Keeps an earlier stage as the text of its line ([`crate::early`]), as [`Self::hold`]
    /// keeps a decoded one. `k` is [`key_of`] its auditID and cluster.
    pub fn hold_raw(&mut self, k: u64, raw: RawStage, out: &mut Vec<AuditEvent>) {
        if self.late(k) {
            return;
        }
        match self.pending.get(&k) {
            // A second earlier stage (a watch's `ResponseStarted`): rare, decoded and joined.
            Some(held) if held.is_request(&raw.audit_id, &raw.origin.cluster) => {
                if let Some(event) = decode_stage(&raw.text, &raw.origin, &mut self.skipped) {
                    let presence = event.presence();
                    self.hold(k, event, presence, out);
                }
            }
            _ => {
                if let Some(unrelated) = self.pending.remove(&k).and_then(|h| self.decoded(h)) {
                    out.push(unrelated);
                }
                self.order.push_back(k);
                self.pending.insert(k, Held::Raw(raw));
                self.evict(out);
            }
        }
    }

    /// Takes what is held for the request of `last` (whose key is `k` and fields `presence`),
    /// when its last stage arrives: `None` when nothing is held.
    pub fn take(&mut self, k: u64, last: &AuditEvent, presence: Presence) -> Option<Earlier> {
        self.take_for(k, &last.audit_id, &last.origin.cluster, presence)
    }

    /// Whether anything is held under key `k`: when not, a last stage with that key needs no
    /// [`Self::take_for`] (and no look at its auditID).
    pub fn holds(&mut self, k: u64) -> bool {
        self.pending.contains_key(&k)
    }

    /// [`Self::take`] for a last stage known by its auditID and cluster, not decoded.
    pub fn take_for(
        &mut self,
        k: u64,
        audit_id: &str,
        cluster: &Option<Arc<str>>,
        presence: Presence,
    ) -> Option<Earlier> {
        if !self.pending.get(&k)?.is_request(audit_id, cluster) {
            return None;
        }
        Some(match self.pending.remove(&k)? {
            Held::Decoded(e, p) if p.adds_to(presence) => Earlier::Adds(e),
            Held::Decoded(e, _) => Earlier::Nothing(e.origin),
            Held::Raw(raw) => {
                earlier_from_text(&raw.text, &Default::default(), raw.origin, presence, &mut self.skipped)
            }
        })
    }

    /// Feeds one logged stage; complete requests are pushed to `out`.
    pub fn push(&mut self, event: AuditEvent, out: &mut Vec<AuditEvent>) {
        let Some(stage) = event.stage else {
            // No stage (some exports, Panther, GKE): each record is a whole request.
            out.push(event);
            return;
        };
        let k = key(&event);
        let presence = event.presence();
        if !stage.is_final() {
            self.hold(k, event, presence, out);
            return;
        }
        match self.take(k, &event, presence) {
            Some(Earlier::Adds(mut first)) => {
                first.absorb(event);
                out.push(*first);
            }
            Some(Earlier::Nothing(origin)) => {
                let mut event = event;
                event.origin = origin;
                out.push(event);
            }
            Some(Earlier::Broken) => out.push(event),
            None => {
                self.completed_alone(k);
                out.push(event);
            }
        }
    }

    fn evict(&mut self, out: &mut Vec<AuditEvent>) {
        while self.pending.len() > self.capacity {
            let Some(k) = self.order.pop_front() else { break };
            if let Some(event) = self.pending.remove(&k).and_then(|h| self.decoded(h)) {
                out.push(event);
            }
        }
        // `order` keeps keys of requests that completed since; drop them once they dominate.
        if self.order.len() > self.capacity * 2 {
            let pending = &self.pending;
            self.order.retain(|k| pending.contains_key(k));
        }
    }

    /// Releases every request still waiting for a later stage, oldest first.
    pub fn finish(&mut self, out: &mut Vec<AuditEvent>) {
        let order: Vec<u64> = self.order.drain(..).collect();
        for k in order {
            if let Some(event) = self.pending.remove(&k).and_then(|h| self.decoded(h)) {
                out.push(event);
            }
        }
        let rest: Vec<Held> = self.pending.drain().map(|(_, h)| h).collect();
        for held in rest {
            if let Some(event) = self.decoded(held) {
                out.push(event);
            }
        }
    }

    pub fn pending(&self) -> usize {
        self.pending.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{ResponseStatus, Stage};

    fn stage(id: &str, stage: Stage) -> AuditEvent {
        AuditEvent { audit_id: id.into(), stage: Some(stage), verb: "get".into(), ..Default::default() }
    }

    #[test]
    fn stages_merge_into_one_event() {
        let mut m = StageMerger::default();
        let mut out = Vec::new();
        m.push(stage("a", Stage::RequestReceived), &mut out);
        m.push(stage("b", Stage::RequestReceived), &mut out);
        let mut done = stage("a", Stage::ResponseComplete);
        done.response_status = Some(ResponseStatus { code: Some(200), ..Default::default() });
        m.push(done, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].stage, Some(Stage::ResponseComplete));
        assert_eq!(out[0].response_code(), Some(200));
        m.finish(&mut out);
        assert_eq!(out.len(), 2);
        assert_eq!(out[1].audit_id, "b");
    }

    #[test]
    fn stages_out_of_order_are_one_request() {
        let mut m = StageMerger::with_capacity(10);
        let mut out = Vec::new();
        m.push(stage("z", Stage::RequestReceived), &mut out);
        m.push(stage("z", Stage::ResponseComplete), &mut out);
        m.push(stage("a", Stage::ResponseComplete), &mut out);
        m.push(stage("a", Stage::RequestReceived), &mut out);
        m.push(stage("b", Stage::RequestReceived), &mut out);
        m.push(stage("b", Stage::ResponseComplete), &mut out);
        m.finish(&mut out);
        let ids: Vec<&str> = out.iter().map(|e| e.audit_id.as_str()).collect();
        assert_eq!(ids, ["z", "a", "b"], "each request once");
        assert_eq!(m.late_stages(), 1);
    }

    #[test]
    fn memory_is_bounded() {
        let mut m = StageMerger::with_capacity(10);
        let mut out = Vec::new();
        for i in 0..1000 {
            m.push(stage(&i.to_string(), Stage::RequestReceived), &mut out);
        }
        assert!(m.pending() <= 10);
        assert_eq!(out.len(), 990);
    }

    #[test]
    fn one_audit_id_in_two_clusters_is_two_requests() {
        let mut m = StageMerger::with_capacity(10);
        let mut out = Vec::new();
        let in_cluster = |id: &str, st: Stage, cluster: &str| {
            let mut e = stage(id, st);
            e.origin.cluster = Some(cluster.into());
            e
        };
        m.push(in_cluster("x", Stage::RequestReceived, "prod-a"), &mut out);
        m.push(in_cluster("x", Stage::ResponseComplete, "prod-b"), &mut out);
        assert_eq!(out.len(), 1, "prod-b's request completes alone");
        assert_eq!(out[0].origin.cluster.as_deref(), Some("prod-b"));
        m.push(in_cluster("x", Stage::ResponseComplete, "prod-a"), &mut out);
        assert_eq!(out.len(), 2);
        assert_eq!(out[1].origin.cluster.as_deref(), Some("prod-a"));
        assert_eq!(m.pending(), 0, "prod-a's stages were joined");
    }
}
