//! The offline hunt: inputs → line batches (read by the decoders in turn) → records (parallel
//! decode) → one event per request (stage merge, in order) → rule hits (parallel match) →
//! findings and correlations (in order).
//!
//! Memory stays bounded whatever the input size: at most a few batches are in flight, the stage
//! merger holds a bounded number of open requests, and only findings (and, for `--timeline`,
//! the selected events' summaries) are kept.
//!
//! Architecture invariant: no printing here; progress is a counter the caller may watch.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::sync::mpsc;

use jiff::Timestamp;
use kir_audit::envelope::Kind;
use kir_audit::merge::{Earlier, key as merge_key, key_of as merge_key_of};
use kir_audit::{
    AuditEvent, Envelope, Input, LineBatch, Presence, RawStage, ReadOptions, Record, SkipKind, SkipReport, Skipped,
    StageMerger, early_stage_walked,
};
use kir_detect::{Finding, Level, RuleSet, finding_from_falco};
use serde::Serialize;

/// What to keep of the findings and events.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub min_severity: Option<Level>,
    /// Rule ids, names or titles; `*` stands for any text (`kir_core::glob`), as for actors.
    pub rules: Vec<String>,
    /// User names; `*` stands for any text (`kir_core::glob`, as in the plan).
    pub actors: Vec<String>,
    /// Namespaces; `*` stands for any text (`team-*`).
    pub namespaces: Vec<String>,
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
}

impl Filter {
    fn actor_ok(&self, user: &str) -> bool {
        self.actors.is_empty() || self.actors.iter().any(|a| kir_core::glob(a, user))
    }

    fn namespace_ok(&self, namespace: Option<&str>) -> bool {
        self.namespaces.is_empty() || namespace.is_some_and(|ns| self.namespaces.iter().any(|n| kir_core::glob(n, ns)))
    }

    fn time_ok(&self, time: Option<Timestamp>) -> bool {
        match time {
            Some(t) => self.since.is_none_or(|s| t >= s) && self.until.is_none_or(|u| t <= u),
            None => self.since.is_none() && self.until.is_none(),
        }
    }

    pub fn keeps(&self, f: &Finding) -> bool {
        self.min_severity.is_none_or(|m| f.severity >= m)
            && (self.rules.is_empty()
                || self.rules.iter().any(|r| {
                    kir_core::glob(r, &f.rule_id)
                        || f.rule_name.as_deref().is_some_and(|name| kir_core::glob(r, name))
                        || f.title.eq_ignore_ascii_case(r)
                }))
            && self.actor_ok(&f.actor.user)
            && self.namespace_ok(f.object.namespace.as_deref())
            && self.time_ok(f.time)
    }

    /// For the timeline: whether the event is one the user asked about.
    fn selects_event(&self, e: &AuditEvent) -> bool {
        self.actor_ok(&e.user.username) && self.namespace_ok(e.namespace()) && self.time_ok(e.time())
    }

    fn selects_events_by_itself(&self) -> bool {
        !self.actors.is_empty() || !self.namespaces.is_empty()
    }
}

#[derive(Debug, Clone)]
pub struct HuntOptions {
    /// Worker threads for decoding and matching (the reader has its own).
    pub threads: usize,
    pub read: ReadOptions,
    /// Open requests the stage merger may hold.
    pub pending_requests: usize,
    pub filter: Filter,
    /// Keep event summaries for `--timeline`.
    pub timeline: bool,
    /// Bytes read so far, across inputs (compressed bytes for compressed files).
    pub progress: Arc<AtomicU64>,
    /// Roles known before the input starts (`--cluster-state`); the hunt adds those the input
    /// creates or changes, in order.
    pub roles: kir_detect::context::RoleRegistry,
}

impl Default for HuntOptions {
    fn default() -> Self {
        HuntOptions {
            threads: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            read: ReadOptions::default(),
            pending_requests: 100_000,
            filter: Filter::default(),
            timeline: false,
            progress: Arc::new(AtomicU64::new(0)),
            roles: Default::default(),
        }
    }
}

/// One request on the timeline, with the rules that fired on it.
#[derive(Debug, Clone, Serialize)]
pub struct TimelineEntry {
    #[serde(serialize_with = "kir_detect::finding::time_rfc3339")]
    pub time: Option<Timestamp>,
    pub audit_id: String,
    pub user: String,
    pub user_agent: Option<String>,
    pub verb: String,
    pub resource: Option<String>,
    pub subresource: Option<String>,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub request_uri: String,
    pub response_code: Option<i64>,
    /// (title, severity) of each finding on this event.
    pub findings: Vec<(String, Level)>,
    pub source: kir_detect::SourceRef,
}

/// A file that could not be used at all.
#[derive(Debug, Clone, Serialize)]
pub struct FileProblem {
    pub path: String,
    /// Named on the command line (a problem with it is the user's to fix: exit 2).
    pub explicit: bool,
    pub message: String,
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct Stats {
    pub files: u64,
    pub lines: u64,
    pub bytes: u64,
    /// Logged records (every stage of every request).
    pub records: u64,
    /// Requests, after the stages of each were merged.
    pub events: u64,
    pub falco_alerts: u64,
    /// The earliest and latest times anything was logged (a stage's time, else the request's:
    /// a watch that began before the log did is not its start). A drill moves the recording by
    /// the first.
    pub first_event: Option<Timestamp>,
    pub last_event: Option<Timestamp>,
    #[serde(serialize_with = "skip_counts")]
    pub skipped: SkipReport,
}

fn skip_counts<S: serde::Serializer>(r: &SkipReport, s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut map = s.serialize_map(Some(r.counts.len()))?;
    for (k, v) in &r.counts {
        map.serialize_entry(k.as_str(), v)?;
    }
    map.end()
}

#[derive(Debug, Default)]
pub struct HuntReport {
    /// Findings that pass the filter, in the order found.
    pub findings: Vec<Finding>,
    /// Identities whose findings of a rule with `routine:` were left out as their everyday work.
    pub routine: Vec<RoutineActor>,
    pub stats: Stats,
    pub file_problems: Vec<FileProblem>,
    pub timeline: Vec<TimelineEntry>,
}

/// An identity that does what a rule describes as its everyday work (`routine:` in the rule).
#[derive(Debug, Clone, Serialize)]
pub struct RoutineActor {
    pub rule_id: String,
    pub title: String,
    pub actor: String,
    /// Findings left out.
    pub findings: usize,
}

enum Message {
    Batch(LineBatch),
    /// An input could not be opened or read at all.
    Failed(FileProblem),
    /// An input was read to its end.
    Done {
        path: Arc<str>,
        explicit: bool,
        lines: u64,
        bytes: u64,
    },
}

/// Per-input counts, to tell "not an audit log at all" from "a few bad lines".
#[derive(Default)]
struct FileTally {
    records: u64,
    skipped: u64,
    first_problem: Option<Skipped>,
}

/// Runs the hunt over `inputs` with `rules`.
///
/// With one thread everything runs on the caller's thread. With more, as many decoders read and
/// decode batches in turn, and the caller's thread merges and correlates them in order
/// ([`hunt_pipelined`]).
pub fn hunt(inputs: &[Input], rules: &RuleSet, options: &HuntOptions) -> HuntReport {
    if options.threads > 1 { hunt_pipelined(inputs, rules, options) } else { hunt_inline(inputs, rules, options) }
}

fn hunt_inline(inputs: &[Input], rules: &RuleSet, options: &HuntOptions) -> HuntReport {
    let mut state = Pipeline::new(rules, options);
    let mut feed = Feed::new(inputs);
    while let Some((_, message)) = feed.next(options) {
        state.message(message);
    }
    state.finish()
}

/// Batches read but not yet processed, at most: what bounds the memory of a pipelined hunt
/// (a batch is about a megabyte) however unevenly its batches decode.
const IN_FLIGHT: u64 = 8;

/// The inputs' messages in order, numbered. With several threads each decoder reads its next
/// batch itself, in turn, so the kernel copies a batch's bytes into the cache of the core that
/// decodes them (a reader thread of its own had the bytes cross cores, and cost a fifth more
/// CPU time than the same work on one thread); with one, the caller reads them.
struct Feed<'i> {
    inputs: std::slice::Iter<'i, Input>,
    reading: Option<(&'i Input, kir_audit::Batches<'i>)>,
    /// The number of the next message.
    seq: u64,
}

impl<'i> Feed<'i> {
    fn new(inputs: &'i [Input]) -> Self {
        Feed { inputs: inputs.iter(), reading: None, seq: 0 }
    }

    /// The next message and its number: an input's batches in order, then whether it was read
    /// to its end or failed; `None` after the last input.
    fn next(&mut self, options: &'i HuntOptions) -> Option<(u64, Message)> {
        let message = self.next_message(options)?;
        self.seq += 1;
        Some((self.seq - 1, message))
    }

    fn next_message(&mut self, options: &'i HuntOptions) -> Option<Message> {
        let failed = |input: &Input, e: kir_audit::source::SourceError| {
            Message::Failed(FileProblem {
                path: input.display.to_string(),
                explicit: input.explicit,
                message: e.to_string(),
            })
        };
        loop {
            if let Some((input, batches)) = &mut self.reading {
                let input = *input;
                let message = match batches.next_batch() {
                    Ok(Some(batch)) => return Some(Message::Batch(batch)),
                    Ok(None) => {
                        let summary = batches.summary();
                        Message::Done {
                            path: input.display.clone(),
                            explicit: input.explicit,
                            lines: summary.lines,
                            bytes: summary.bytes,
                        }
                    }
                    Err(e) => failed(input, e),
                };
                self.reading = None;
                return Some(message);
            }
            let input = self.inputs.next()?;
            match kir_audit::open_input(input, &options.read, options.progress.clone()) {
                Ok(batches) => self.reading = Some((input, batches)),
                Err(e) => return Some(failed(input, e)),
            }
        }
    }
}

/// `threads` decoders each take the next batch ([`Feed`]) and decode it whole (no decoder waits
/// for another: a barrier per batch had left a core idle at the end of every batch), and the
/// caller's thread processes the decoded batches in their order (stage merging, correlation,
/// the report), which is a small part of the work.
fn hunt_pipelined(inputs: &[Input], rules: &RuleSet, options: &HuntOptions) -> HuntReport {
    use std::sync::atomic::Ordering::Relaxed;
    let mut state = Pipeline::new(rules, options);
    let skim = state.may_skim();
    // How many batches the processing has taken, for the decoders to stay within IN_FLIGHT.
    let processed = (std::sync::Mutex::new(0u64), std::sync::Condvar::new());
    // Set when a decoder panicked: the decoders stop taking batches, and the panic is raised
    // again once every thread has stopped (a hunt must crash with its message, never hang
    // waiting for a batch that will not come).
    let abort = std::sync::atomic::AtomicBool::new(false);
    let feed = std::sync::Mutex::new(Feed::new(inputs));
    let (done_tx, done_rx) = mpsc::sync_channel::<(u64, Handed)>(options.threads);
    let mut panicked = None;
    let complete = std::thread::scope(|scope| {
        let (processed, abort, feed) = (&processed, &abort, &feed);
        let mut decoders = 0;
        for i in 0..options.threads {
            let done_tx = done_tx.clone();
            let spawned = std::thread::Builder::new().name(format!("kir-decode-{i}")).spawn_scoped(scope, move || {
                loop {
                    let next = {
                        // A poisoned feed: another decoder panicked while reading (a bug); its
                        // panic ends the hunt.
                        let Ok(mut feed) = feed.lock() else { break };
                        let (lock, wake) = processed;
                        let mut taken = lock.lock().unwrap_or_else(|e| e.into_inner());
                        while feed.seq >= *taken + IN_FLIGHT && !abort.load(Relaxed) {
                            taken = wake.wait(taken).unwrap_or_else(|e| e.into_inner());
                        }
                        drop(taken);
                        if abort.load(Relaxed) {
                            break;
                        }
                        let Some(next) = feed.next(options) else { break };
                        next
                    };
                    let (seq, message) = next;
                    let handed = match message {
                        Message::Batch(batch) => {
                            let decoded =
                                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| decode(batch, rules, skim)));
                            decoded.map_or_else(
                                |payload| {
                                    abort.store(true, Relaxed);
                                    processed.1.notify_all();
                                    Handed::Panicked(payload)
                                },
                                Handed::Decoded,
                            )
                        }
                        other => Handed::Other(other),
                    };
                    // Once the processing has stopped, what is left is only dropped.
                    let _ = done_tx.send((seq, handed));
                }
            });
            decoders += usize::from(spawned.is_ok());
        }
        drop(done_tx);
        if decoders == 0 {
            // No thread to decode with: the caller reads it all alone.
            return false;
        }
        // Decoded batches arrive in any order; they are processed in the order they were read.
        let mut waiting = std::collections::BTreeMap::new();
        let mut next = 0u64;
        'receive: for (seq, handed) in done_rx {
            waiting.insert(seq, handed);
            while let Some(handed) = waiting.remove(&next) {
                match handed {
                    Handed::Decoded(decoded) => state.process(decoded),
                    Handed::Other(message) => state.message(message),
                    Handed::Panicked(payload) => {
                        panicked = Some(payload);
                        break 'receive;
                    }
                }
                next += 1;
                let (lock, wake) = processed;
                *lock.lock().unwrap_or_else(|e| e.into_inner()) = next;
                wake.notify_all();
            }
        }
        // The batches after a panic are dropped, not decoded: the panic may wait here unreached.
        if panicked.is_none() {
            panicked = waiting.into_values().find_map(|handed| match handed {
                Handed::Panicked(payload) => Some(payload),
                _ => None,
            });
        }
        true
    });
    if let Some(payload) = panicked {
        std::panic::resume_unwind(payload);
    }
    if complete { state.finish() } else { hunt_inline(inputs, rules, options) }
}

/// A message of the reader, as a decoder hands it on.
enum Handed {
    Decoded(Decoded),
    Other(Message),
    /// Decoding the batch panicked (a bug): raised again on the caller's thread.
    Panicked(Box<dyn std::any::Any + Send>),
}

/// A batch, decoded: records and problems in line order.
struct Decoded {
    path: Arc<str>,
    cluster: Option<Arc<str>>,
    read_problems: Vec<Skipped>,
    chunks: Vec<(Vec<Piece>, Vec<Skipped>)>,
    /// The batch's text, for the rare [`Plain`] request that must be decoded after all; given
    /// back to the reader's pool once processed.
    data: Vec<u8>,
}

/// A request's last stage that no rule can match, read for its envelope only
/// ([`kir_audit::envelope`]): counted, joined with its earlier stage, never decoded unless that
/// earlier stage knows something the last does not.
struct Plain {
    k: u64,
    presence: Presence,
    time: Option<Timestamp>,
    /// Its earlier stage was joined to it in its chunk.
    joined: bool,
    line: u64,
    start: usize,
    end: usize,
    /// Where its `auditID` is in the batch's text, when written without escapes.
    audit_id: Option<std::ops::Range<usize>>,
}

/// One record of a batch. The last stage of a request is matched where it was decoded, while its
/// data is still in that core's cache; stages that wait for a later one are only decoded.
enum Piece {
    /// A stage that is not its request's last, with its merger key and fields.
    Held(Box<AuditEvent>, u64, Presence),
    /// The same, still the text of its line: its last stage nearly always repeats it all.
    Raw(RawStage, u64),
    /// A request's last (or only) record, with its merger key and fields and what the rules
    /// found, and whether its earlier stage was joined to it already (in the same chunk).
    Last(Box<AuditEvent>, u64, Presence, Vec<(usize, Finding)>, bool),
    /// An earlier stage joined to its last stage in the same chunk: counted, nothing left to do.
    Joined,
    /// An earlier stage whose line turned out broken when it was joined: its problem is among
    /// the chunk's skipped lines, and it is no record.
    Unreadable,
    /// Boxed: an alert is rare and large, and every piece of a batch is moved twice.
    Falco(Box<kir_audit::FalcoAlert>),
    Plain(Plain),
}

/// A record of a chunk being decoded: an earlier stage stays a view of its line until the chunk
/// ends, in case its last stage comes in the same chunk (it usually does).
enum Local<'b> {
    Piece(Piece),
    Early { k: u64, audit_id: &'b str, origin: kir_audit::Origin, text: &'b str, walked: kir_audit::Walked },
}

/// A request's last stage, decoded: joined at once with its earlier stage when that is in the
/// same chunk (nothing to copy or hold), else left for the stage merger; then matched.
fn last_stage(rules: &RuleSet, e: Box<AuditEvent>, local: &mut [Local], skipped: &mut Vec<Skipped>) -> Piece {
    let (k, presence) = (merge_key(&e), e.presence());
    let Some(slot) = earlier_in_chunk(local, k, &e.audit_id) else {
        let mut e = e;
        let findings = match_in_decoder(rules, &mut e);
        return Piece::Last(e, k, presence, findings, false);
    };
    let Local::Early { origin, text, walked, .. } = std::mem::replace(slot, Local::Piece(Piece::Joined)) else {
        unreachable!("the slot was found as an earlier stage");
    };
    let problems = skipped.len();
    let earlier = kir_audit::merge::earlier_from_text(text, &walked, origin, presence, skipped);
    if skipped.len() > problems {
        // The earlier line broke further on than its first members: a skipped line, not a record.
        *slot = Local::Piece(Piece::Unreadable);
    }
    match earlier {
        Earlier::Nothing(origin) => {
            let mut e = e;
            e.origin = origin;
            let findings = match_in_decoder(rules, &mut e);
            Piece::Last(e, k, presence, findings, true)
        }
        Earlier::Broken => {
            let mut e = e;
            let findings = match_in_decoder(rules, &mut e);
            Piece::Last(e, k, presence, findings, true)
        }
        Earlier::Adds(mut earlier) => {
            earlier.absorb(*e);
            let presence = earlier.presence();
            let findings = match_in_decoder(rules, &mut earlier);
            Piece::Last(earlier, k, presence, findings, true)
        }
    }
}

fn match_event(rules: &RuleSet, event: &AuditEvent) -> Vec<(usize, Finding)> {
    let mut hits = Vec::new();
    rules.matching(event, &mut hits);
    hits.into_iter().map(|r| (r, rules.finding(r, event))).collect()
}

/// [`match_event`] in a decoder, which hands the event on to the processing thread: the bodies
/// the rules parsed are dropped here, on the thread that parsed them
/// ([`kir_audit::LazyJson::forget_parsed`]; freeing what another thread allocated costs more),
/// and the few later readers (the roles a binding refers to) parse them again.
fn match_in_decoder(rules: &RuleSet, event: &mut AuditEvent) -> Vec<(usize, Finding)> {
    let found = match_event(rules, event);
    for body in [&mut event.request_object, &mut event.response_object].into_iter().flatten() {
        body.forget_parsed();
    }
    found
}

/// Whether the envelope of a last stage leaves the request undecoded: no rule could match it,
/// and it is no role or binding (which the hunt learns from, and contextual rules read).
fn skims(rules: &RuleSet, envelope: &Envelope) -> bool {
    let learned =
        matches!(envelope.resource(), Some("roles" | "clusterroles" | "rolebindings" | "clusterrolebindings"));
    !learned && !rules.may_match(envelope)
}

/// `skim`: last stages that no rule can match may be left undecoded ([`Plain`]); off when every
/// request must be seen (a timeline of the requests of some actors or namespaces).
fn decode(batch: LineBatch, rules: &RuleSet, skim: bool) -> Decoded {
    #[cfg(test)]
    if tests::PANIC_IN_DECODE.load(std::sync::atomic::Ordering::Relaxed) {
        panic!("a bug in decoding, injected by a test");
    }
    const CHUNK: usize = 64;
    // One SIMD pass over the whole batch: per line, the check's set-up cost more than the check.
    let whole = simdutf8::basic::from_utf8(&batch.data).ok();
    let chunks = batch
        .lines
        .chunks(CHUNK)
        .map(|spans| {
            let mut local: Vec<Local> = Vec::with_capacity(spans.len());
            let mut records = Vec::new();
            let mut skipped = Vec::new();
            let mut envelope = Envelope::default();
            // The line before was an earlier stage: this one is most likely its last.
            let mut after_earlier = false;
            for span in spans {
                // Lines end at `\n`, so a valid batch cuts into valid lines; std's check says
                // where a broken line breaks.
                let text = match whole.and_then(|w| w.get(span.start..span.end)) {
                    Some(text) => Ok(text),
                    None => std::str::from_utf8(batch.text(span)),
                };
                let text = match text {
                    Ok(text) => text,
                    Err(e) => {
                        skipped.push(Skipped::new(SkipKind::InvalidUtf8, batch.origin(span), e.to_string()));
                        continue;
                    }
                };
                // One read tells a last stage from an earlier one (the envelope reader also
                // answers as `early_stage` does); without skimming, only earlier stages are
                // looked for.
                let line = match (skim, after_earlier) {
                    (false, _) => Kind::Other,
                    (true, false) => Envelope::read_into(text, &mut envelope),
                    (true, true) => Envelope::read_after_earlier(text, &mut envelope),
                };
                let earlier = match line {
                    Kind::Earlier(audit_id, walked) => Some((audit_id, walked)),
                    Kind::Other => early_stage_walked(text).map(|(audit_id, _, walked)| (audit_id, walked)),
                    Kind::Last => None,
                };
                after_earlier = earlier.is_some();
                if let Some((audit_id, walked)) = earlier {
                    let k = merge_key_of(audit_id, &batch.cluster);
                    local.push(Local::Early { k, audit_id, origin: batch.origin(span), text, walked });
                    continue;
                }
                if line == Kind::Last
                    && skims(rules, &envelope)
                    && let Some(plain) = plain(&envelope, text, span, &batch.cluster, &mut local)
                {
                    local.push(Local::Piece(Piece::Plain(plain)));
                    continue;
                }
                let origin = batch.origin(span);
                // A last stage read whole is built from its envelope; anything else is decoded.
                match (line == Kind::Last).then(|| envelope.to_event(text, &origin)).flatten() {
                    Some(event) => records.push(Record::Audit(event)),
                    None => kir_audit::decode(text, &origin, &mut records, &mut skipped),
                }
                for record in records.drain(..) {
                    let piece = match record {
                        Record::Audit(e) if e.stage.is_some_and(|s| !s.is_final()) => {
                            let (k, presence) = (merge_key(&e), e.presence());
                            Piece::Held(Box::new(e), k, presence)
                        }
                        Record::Audit(e) => last_stage(rules, Box::new(e), &mut local, &mut skipped),
                        Record::Falco(alert) => Piece::Falco(Box::new(alert)),
                    };
                    local.push(Local::Piece(piece));
                }
            }
            let pieces = local
                .into_iter()
                .map(|l| match l {
                    Local::Piece(p) => p,
                    Local::Early { k, audit_id, origin, text, .. } => {
                        Piece::Raw(RawStage::new(audit_id, origin, text), k)
                    }
                })
                .collect();
            (pieces, skipped)
        })
        .collect();
    Decoded { path: batch.path, cluster: batch.cluster, read_problems: batch.skipped, chunks, data: batch.data }
}

/// The earlier stage of request `k` (`audit_id`) still kept as text in this chunk, if any.
fn earlier_in_chunk<'l, 'b>(local: &'l mut [Local<'b>], k: u64, audit_id: &str) -> Option<&'l mut Local<'b>> {
    local
        .iter_mut()
        .rev()
        .find(|l| matches!(l, Local::Early { k: ek, audit_id: id, .. } if *ek == k && *id == audit_id))
}

/// A skimmed last stage, joined with its earlier stage when that is in the chunk and adds
/// nothing; `None` when the earlier stage may add a field (the request is then decoded whole).
fn plain(
    envelope: &Envelope,
    text: &str,
    span: &kir_audit::source::LineSpan,
    cluster: &Option<Arc<str>>,
    local: &mut [Local],
) -> Option<Plain> {
    let k = merge_key_of(&envelope.audit_id, cluster);
    let presence = envelope.presence();
    let joined = match earlier_in_chunk(local, k, &envelope.audit_id) {
        Some(slot) => {
            let Local::Early { text, walked, .. } = slot else { return None };
            if kir_audit::early::may_add_after(text, walked, presence) {
                return None;
            }
            *slot = Local::Piece(Piece::Joined);
            true
        }
        None => false,
    };
    Some(Plain {
        k,
        presence,
        time: envelope.stage_time.or(envelope.request_received),
        joined,
        line: span.line,
        start: span.start,
        end: span.end,
        audit_id: match &envelope.audit_id {
            std::borrow::Cow::Borrowed(id) => {
                let at = span.start + (id.as_ptr() as usize - text.as_ptr() as usize);
                Some(at..at + id.len())
            }
            std::borrow::Cow::Owned(_) => None,
        },
    })
}

struct Pipeline<'a> {
    rules: &'a RuleSet,
    options: &'a HuntOptions,
    detector: Detector<'a>,
    /// For each burst the correlator reported, in order: where its finding is in the report
    /// (`None` when the filter left it out). The burst's final finding replaces it at the end.
    bursts: Vec<Option<usize>>,
    tallies: HashMap<Arc<str>, FileTally>,
    report: HuntReport,
}

/// What one request gave, in the order `kir hunt` reports it.
#[derive(Debug, Clone)]
pub enum Found {
    /// A detection rule's finding (or a Falco alert's).
    Detection(Finding),
    /// A correlation met its threshold: burst `index` (counted from 0 in the order reported)
    /// begins. Later requests of the burst join it ([`Detector::burst`]).
    Burst { index: usize, finding: Finding },
}

/// Detection in input order: the stage merger, the correlation windows and the roles learned so
/// far. The offline hunt runs its serial part through it; `kir serve` feeds it one stored record
/// after another, so both see the same findings for the same input.
pub struct Detector<'a> {
    rules: &'a RuleSet,
    merger: StageMerger,
    correlator: kir_detect::correlation::Correlator,
    /// The roles learned so far, in input order: what a binding grants.
    roles: kir_detect::context::RoleRegistry,
}

impl<'a> Detector<'a> {
    /// `pending_requests` bounds the requests held for a later stage; `roles` are those known
    /// before the input starts.
    pub fn new(rules: &'a RuleSet, roles: kir_detect::context::RoleRegistry, pending_requests: usize) -> Self {
        Detector { rules, merger: StageMerger::with_capacity(pending_requests), correlator: rules.correlator(), roles }
    }

    /// From now on, remember which bursts grow ([`Detector::take_grown`]).
    pub fn track_bursts(&mut self) {
        self.correlator.track_growth();
    }

    /// Bursts that grew since the last call.
    pub fn take_grown(&mut self) -> Vec<usize> {
        self.correlator.take_grown()
    }

    /// Burst `index` as it stands now, with every request it has gathered.
    pub fn burst(&self, index: usize) -> Option<&Finding> {
        self.correlator.burst(index)
    }

    /// Requests held for a later stage.
    pub fn pending(&self) -> usize {
        self.merger.pending()
    }

    /// Feeds one decoded record (one stage of a request, or a Falco alert); what it completes is
    /// pushed to `out`.
    pub fn push(&mut self, record: Record, out: &mut Vec<Found>) {
        match record {
            Record::Falco(alert) => out.push(Found::Detection(finding_from_falco(&alert))),
            Record::Audit(e) if e.stage.is_some_and(|s| !s.is_final()) => {
                let (k, presence) = (merge_key(&e), e.presence());
                let mut released = Vec::new();
                self.merger.hold(k, e, presence, &mut released);
                self.released(released, out);
            }
            Record::Audit(e) => {
                let findings = match_event(self.rules, &e);
                let (k, presence) = (merge_key(&e), e.presence());
                let (event, findings) = self.complete(Box::new(e), k, presence, findings, false);
                out.extend(self.found(&event, findings));
            }
        }
    }

    /// Releases every request still waiting for a later stage, as it is (the end of an input,
    /// or a stream that went quiet).
    pub fn flush(&mut self, out: &mut Vec<Found>) {
        let mut rest = Vec::new();
        self.merger.finish(&mut rest);
        self.released(rest, out);
    }

    fn released(&mut self, events: Vec<AuditEvent>, out: &mut Vec<Found>) {
        for event in events {
            let findings = match_event(self.rules, &event);
            out.extend(self.found(&event, findings));
        }
    }

    /// A request's last stage arrived: joins it with the stages held for it. Returns the request
    /// to report, with what the rules found on it.
    fn complete(
        &mut self,
        event: Box<AuditEvent>,
        k: u64,
        presence: Presence,
        findings: Vec<(usize, Finding)>,
        joined: bool,
    ) -> (Box<AuditEvent>, Vec<(usize, Finding)>) {
        let origin = match self.merger.take(k, &event, presence) {
            None => {
                // A last stage joined to its earlier stage in its chunk has nothing left to come;
                // a record without stages is a whole request.
                if !joined && event.stage.is_some() {
                    self.merger.completed_alone(k);
                }
                return (event, findings);
            }
            Some(Earlier::Adds(mut earlier)) => {
                // The earlier stage knows something the last does not: match the whole request again.
                earlier.absorb(*event);
                let findings = match_event(self.rules, &earlier);
                return (earlier, findings);
            }
            Some(Earlier::Nothing(origin)) => origin,
            Some(Earlier::Broken) => return (event, findings),
        };
        // The usual case: the last stage has it all. Findings point at the request's first line.
        let mut event = event;
        event.origin = origin;
        let findings = findings
            .into_iter()
            .map(|(r, mut f)| {
                f.source.line = event.origin.line;
                f.source.path = event.origin.path.to_string();
                (r, f)
            })
            .collect();
        (event, findings)
    }

    /// What a whole request gives: the contextual rules' findings added, correlations fed, each
    /// rule's correlation findings before its own (when the rule reports).
    fn found(&mut self, event: &AuditEvent, mut findings: Vec<(usize, Finding)>) -> Vec<Found> {
        // Rules that need what the input said before this request (the role a binding grants).
        if self.rules.has_contextual() {
            let power = self.roles.binding_power(event);
            if !power.is_empty() {
                let mut known = event.clone();
                known.context.role_power = power;
                let mut hits = Vec::new();
                self.rules.matching_contextual(&known, &mut hits);
                findings.extend(hits.into_iter().map(|r| (r, self.rules.finding(r, &known))));
            }
            self.roles.observe(event);
        }
        let mut out = Vec::new();
        for (rule, finding) in findings {
            let first = self.correlator.burst_count();
            for (i, corr) in self.correlator.observe(rule, event, &finding).into_iter().enumerate() {
                out.push(Found::Burst { index: first + i, finding: corr });
            }
            if self.rules.reports(rule) {
                out.push(Found::Detection(finding));
            }
        }
        out
    }
}

impl<'a> Pipeline<'a> {
    fn new(rules: &'a RuleSet, options: &'a HuntOptions) -> Self {
        Pipeline {
            rules,
            options,
            detector: Detector::new(rules, options.roles.clone(), options.pending_requests),
            bursts: Vec::new(),
            tallies: HashMap::new(),
            report: HuntReport::default(),
        }
    }

    fn message(&mut self, message: Message) {
        match message {
            Message::Batch(batch) => {
                let decoded = decode(batch, self.rules, self.may_skim());
                self.process(decoded);
            }
            Message::Failed(problem) => self.report.file_problems.push(problem),
            Message::Done { path, explicit, lines, bytes } => self.file_done(path, explicit, lines, bytes),
        }
    }

    fn process(&mut self, decoded: Decoded) {
        for s in decoded.read_problems {
            self.count_skipped(s);
        }
        let mut released = Vec::new();
        for (pieces, skipped) in decoded.chunks {
            for s in skipped {
                self.count_skipped(s);
            }
            let tally = self.tallies.entry(decoded.path.clone()).or_default();
            let records = pieces.iter().filter(|p| !matches!(p, Piece::Unreadable)).count() as u64;
            tally.records += records;
            self.report.stats.records += records;
            for piece in pieces {
                match piece {
                    Piece::Held(e, k, presence) => self.detector.merger.hold(k, *e, presence, &mut released),
                    Piece::Raw(raw, k) => self.detector.merger.hold_raw(k, raw, &mut released),
                    Piece::Joined | Piece::Unreadable => {}
                    Piece::Last(event, k, presence, findings, joined) => {
                        let (event, findings) = self.detector.complete(event, k, presence, findings, joined);
                        self.record(&event, findings);
                    }
                    Piece::Plain(plain) => self.plain(plain, &decoded.path, &decoded.cluster, &decoded.data),
                    Piece::Falco(alert) => {
                        self.report.stats.falco_alerts += 1;
                        let f = finding_from_falco(&alert);
                        if self.options.filter.keeps(&f) {
                            self.report.findings.push(f);
                        }
                    }
                }
            }
        }
        self.late_problems();
        self.detect(released);
        self.options.read.buffers.give(decoded.data);
    }

    /// Whether last stages may be skimmed ([`decode`]): not when the timeline is to show every
    /// request of some actors or namespaces.
    fn may_skim(&self) -> bool {
        !(self.options.timeline && self.options.filter.selects_events_by_itself())
    }

    /// A skimmed request: completes its earlier stage in the merger, as
    /// [`Detector::complete`] does for a decoded one, and is counted. Decoded after all, from
    /// the batch's text, when a held earlier stage knows something its last stage does not.
    fn plain(&mut self, plain: Plain, path: &Arc<str>, cluster: &Option<Arc<str>>, data: &[u8]) {
        let merger = &mut self.detector.merger;
        let earlier = if merger.holds(plain.k) {
            let text = std::str::from_utf8(&data[plain.start..plain.end]).unwrap_or_default();
            // Read again only when the id was escaped (the decoder saw it while skimming).
            let audit_id = match &plain.audit_id {
                Some(at) => std::borrow::Cow::Borrowed(std::str::from_utf8(&data[at.clone()]).unwrap_or_default()),
                None => Envelope::scan(text).map(|e| e.audit_id).unwrap_or_default(),
            };
            let earlier = merger.take_for(plain.k, &audit_id, cluster, plain.presence);
            if let Some(Earlier::Adds(mut earlier)) = earlier {
                let origin = kir_audit::Origin { path: path.clone(), line: plain.line, cluster: cluster.clone() };
                let (mut records, mut skipped) = (Vec::with_capacity(1), Vec::new());
                kir_audit::decode(text, &origin, &mut records, &mut skipped);
                if let Some(Record::Audit(last)) = records.pop() {
                    earlier.absorb(last);
                    let findings = match_event(self.rules, &earlier);
                    self.record(&earlier, findings);
                    return;
                }
                // The decoder refuses the line after all (a fault inside a body the envelope
                // passed over): it is a skipped line, not a record, and the earlier stage waits
                // on, as when every line is decoded.
                for s in skipped {
                    self.not_a_record(s);
                }
                let (presence, mut released) = (earlier.presence(), Vec::new());
                self.detector.merger.hold(plain.k, *earlier, presence, &mut released);
                self.detect(released);
                return;
            }
            earlier
        } else {
            None
        };
        if earlier.is_none() && !plain.joined {
            self.detector.merger.completed_alone(plain.k);
        }
        self.count_event(plain.time);
    }

    /// Earlier stages kept as text that did not decode when their request needed them: counted
    /// as skipped lines of their file instead of records, as the decoder would have counted them
    /// at once.
    fn late_problems(&mut self) {
        for s in self.detector.merger.take_skipped() {
            self.not_a_record(s);
        }
    }

    /// A line counted as a record when its batch was processed, found not to decode since: a
    /// skipped line of its file instead.
    fn not_a_record(&mut self, s: Skipped) {
        self.report.stats.records = self.report.stats.records.saturating_sub(1);
        let tally = self.tallies.entry(s.origin.path.clone()).or_default();
        tally.records = tally.records.saturating_sub(1);
        self.count_skipped(s);
    }

    /// A line that is no record, counted for its file and in the report.
    fn count_skipped(&mut self, s: Skipped) {
        let tally = self.tallies.entry(s.origin.path.clone()).or_default();
        tally.skipped += 1;
        tally.first_problem.get_or_insert_with(|| s.clone());
        self.report.stats.skipped.add(s);
    }

    /// Matches requests whose stages were joined (or released) here.
    fn detect(&mut self, events: Vec<AuditEvent>) {
        let rules = self.rules;
        for event in events {
            let findings = match_event(rules, &event);
            self.record(&event, findings);
        }
    }

    /// Counts a request, feeds correlations, keeps findings and the timeline.
    fn record(&mut self, event: &AuditEvent, findings: Vec<(usize, Finding)>) {
        self.count_event(event.stage_time.or(event.request_received));
        let filter = &self.options.filter;
        let mut on_event: Vec<(String, Level)> = Vec::new();
        for found in self.detector.found(event, findings) {
            match found {
                Found::Burst { finding, .. } if filter.keeps(&finding) => {
                    on_event.push((finding.title.clone(), finding.severity));
                    self.bursts.push(Some(self.report.findings.len()));
                    self.report.findings.push(finding);
                }
                Found::Burst { .. } => self.bursts.push(None),
                Found::Detection(finding) if filter.keeps(&finding) => {
                    on_event.push((finding.title.clone(), finding.severity));
                    self.report.findings.push(finding);
                }
                Found::Detection(_) => {}
            }
        }
        if self.options.timeline && self.keep_on_timeline(event, &on_event) {
            self.report.timeline.push(timeline_entry(event, on_event));
        }
    }

    /// One more request, logged at `time`.
    fn count_event(&mut self, time: Option<Timestamp>) {
        let stats = &mut self.report.stats;
        stats.events += 1;
        if let Some(t) = time {
            stats.first_event = Some(stats.first_event.map_or(t, |f| f.min(t)));
            stats.last_event = Some(stats.last_event.map_or(t, |l| l.max(t)));
        }
    }

    fn keep_on_timeline(&self, event: &AuditEvent, findings: &[(String, Level)]) -> bool {
        let filter = &self.options.filter;
        if filter.selects_events_by_itself() { filter.selects_event(event) } else { !findings.is_empty() }
    }

    fn file_done(&mut self, path: Arc<str>, explicit: bool, lines: u64, bytes: u64) {
        self.report.stats.files += 1;
        self.report.stats.lines += lines;
        self.report.stats.bytes += bytes;
        let tally = self.tallies.remove(&path).unwrap_or_default();
        if tally.records == 0 && tally.skipped > 0 {
            let why = tally.first_problem.map(|p| format!("line {}: {}", p.origin.line, p.detail)).unwrap_or_default();
            self.report.file_problems.push(FileProblem {
                path: path.to_string(),
                explicit,
                message: format!("not a Kubernetes audit log ({why})"),
            });
        }
    }

    fn finish(mut self) -> HuntReport {
        let mut rest = Vec::new();
        self.detector.merger.finish(&mut rest);
        self.late_problems();
        self.detect(rest);
        // Every request of a burst, those after its threshold was met included.
        for (slot, whole) in self.bursts.iter().zip(self.detector.correlator.bursts()) {
            if let Some(f) = slot.and_then(|i| self.report.findings.get_mut(i)) {
                f.audit_ids.clone_from(&whole.audit_ids);
                f.event_count = whole.event_count;
            }
        }
        self.leave_out_routine();
        self.report
    }

    /// An identity that matched a `routine:` rule often enough, over long enough, does it as
    /// its everyday work: an operator listing Secrets every few minutes all day, not the stolen
    /// token that lists them once. Its findings of that rule are left out, and said.
    fn leave_out_routine(&mut self) {
        for rule in &self.rules.detections {
            let Some(routine) = rule.meta.routine else { continue };
            let mut by_actor: HashMap<&str, (usize, Option<Timestamp>, Option<Timestamp>)> = HashMap::new();
            for f in self.report.findings.iter().filter(|f| f.rule_id == rule.meta.id) {
                let e = by_actor.entry(f.actor.user.as_str()).or_default();
                e.0 += 1;
                if let Some(t) = f.time {
                    e.1 = Some(e.1.map_or(t, |a| a.min(t)));
                    e.2 = Some(e.2.map_or(t, |b| b.max(t)));
                }
            }
            let routine_actors: Vec<(String, usize)> = by_actor
                .into_iter()
                .filter(|(_, (n, first, last))| {
                    *n >= routine.events
                        && matches!((first, last), (Some(a), Some(b)) if b.duration_since(*a) >= routine.over.to_signed())
                })
                .map(|(actor, (n, _, _))| (actor.to_string(), n))
                .collect();
            if routine_actors.is_empty() {
                continue;
            }
            self.report
                .findings
                .retain(|f| f.rule_id != rule.meta.id || !routine_actors.iter().any(|(a, _)| *a == f.actor.user));
            for (actor, findings) in routine_actors {
                self.report.routine.push(RoutineActor {
                    rule_id: rule.meta.id.clone(),
                    title: rule.meta.title.clone(),
                    actor,
                    findings,
                });
            }
        }
        self.report.routine.sort_by(|a, b| a.rule_id.cmp(&b.rule_id).then(a.actor.cmp(&b.actor)));
    }
}

fn timeline_entry(e: &AuditEvent, findings: Vec<(String, Level)>) -> TimelineEntry {
    TimelineEntry {
        time: e.time(),
        audit_id: e.audit_id.clone(),
        user: e.user.username.clone(),
        user_agent: e.user_agent.clone(),
        verb: e.verb.clone(),
        resource: e.resource().map(str::to_string),
        subresource: e.subresource().map(str::to_string),
        namespace: e.namespace().map(str::to_string),
        // Pods made from a template get their name from the server: the response has it.
        name: kir_detect::finding::object_of(e).name,
        request_uri: e.request_uri.clone(),
        response_code: e.response_code(),
        findings,
        source: kir_detect::SourceRef { path: e.origin.path.to_string(), line: e.origin.line },
    }
}

/// Findings worst first, then by time.
pub fn sort_worst_first(findings: &mut [Finding]) {
    findings.sort_by(|a, b| b.severity.cmp(&a.severity).then(a.time.cmp(&b.time)).then(a.rule_id.cmp(&b.rule_id)));
}

/// Per-rule counts for the summary: (rule id, title, severity, findings, events).
pub fn summary_by_rule(findings: &[Finding]) -> Vec<(String, String, Level, usize, usize)> {
    let mut by_rule: HashMap<&str, (String, Level, usize, usize)> = HashMap::new();
    for f in findings {
        let entry = by_rule.entry(&f.rule_id).or_insert_with(|| (f.title.clone(), f.severity, 0, 0));
        entry.2 += 1;
        entry.3 += f.event_count;
    }
    let mut out: Vec<_> = by_rule.into_iter().map(|(id, (t, l, n, e))| (id.to_string(), t, l, n, e)).collect();
    out.sort_by(|a, b| b.2.cmp(&a.2).then(b.3.cmp(&a.3)).then(a.1.cmp(&b.1)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) static PANIC_IN_DECODE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

    /// A bug that panics in a decoder crashes the hunt with its message, on the caller's
    /// thread, instead of leaving it waiting for a batch that never comes.
    #[test]
    fn a_panic_in_a_decoder_reaches_the_caller() {
        let path = std::env::temp_dir().join(format!("kir-hunt-panic-{}.jsonl", std::process::id()));
        let line = r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"a","stage":"ResponseComplete","verb":"get","requestURI":"/api","user":{"username":"u"}}"#;
        std::fs::write(&path, format!("{line}\n").repeat(2000)).expect("temp dir is writable");
        let inputs = kir_audit::discover(std::slice::from_ref(&path)).expect("the file exists");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let rules = RuleSet::builtin(&kir_detect::Placeholders::new());
            let mut options = HuntOptions { threads: 2, ..Default::default() };
            options.read.batch_bytes = 4 << 10;
            PANIC_IN_DECODE.store(true, std::sync::atomic::Ordering::Relaxed);
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| hunt(&inputs, &rules, &options)));
            PANIC_IN_DECODE.store(false, std::sync::atomic::Ordering::Relaxed);
            let _ = tx.send(outcome.err().and_then(|p| p.downcast_ref::<&str>().map(|s| s.to_string())));
        });
        let message = rx.recv_timeout(std::time::Duration::from_secs(120)).expect("the hunt ends, it does not hang");
        let _ = std::fs::remove_file(&path);
        assert_eq!(message.as_deref(), Some("a bug in decoding, injected by a test"));
    }
}
