//! Reading Kubernetes audit logs.
//!
//! The flow inside this crate: [`source`] finds and opens inputs and cuts them into line
//! batches; [`decode`] turns one JSON text into [`Record`]s whatever the wrapper (plain
//! `audit.k8s.io` events, `EventList`, EKS, AKS, GKE, Falco alerts); [`merge`] joins the stages
//! of one request into one [`AuditEvent`]; [`field`] reads any field of an event by its Sigma
//! name.
//!
//! Architecture invariant: this crate knows no other kir crate but `kir-core` (the shared
//! parsers), and does no I/O beyond the inputs it is asked to read.

pub mod decode;
pub mod early;
pub mod envelope;
pub mod event;
pub mod field;
pub mod merge;
pub mod skip;
pub mod source;

pub use decode::{decode, parse_time};
pub use early::{RawStage, Walked, early_stage, early_stage_walked};
pub use envelope::Envelope;
pub use event::{
    AuditEvent, Context, FalcoAlert, LazyJson, ObjectRef, Origin, Presence, Record, ResponseStatus, Stage, UserInfo,
};
pub use field::{EventView, Field, FieldKind, Fields, JsonPath, Scalar};
pub use merge::StageMerger;
pub use skip::{SkipKind, SkipReport, Skipped};
pub use source::{Batches, Input, LineBatch, ReadOptions, discover, open_input, open_stream, read_input, read_stream};

/// Decodes every line of a batch: records in line order, problems beside them.
pub fn decode_batch(batch: &LineBatch, out: &mut Vec<Record>, skipped: &mut Vec<Skipped>) {
    decode_lines(batch, &batch.lines, out, skipped);
}

/// Decodes some lines of a batch (a parallel worker's share), as [`decode_batch`] does.
pub fn decode_lines(batch: &LineBatch, spans: &[source::LineSpan], out: &mut Vec<Record>, skipped: &mut Vec<Skipped>) {
    for span in spans {
        let origin = batch.origin(span);
        match std::str::from_utf8(batch.text(span)) {
            Ok(text) => decode(text, &origin, out, skipped),
            Err(e) => skipped.push(Skipped::new(SkipKind::InvalidUtf8, origin, e.to_string())),
        }
    }
}

/// Reads `bytes` as a whole input (any form) and decodes every line: what the fuzz targets and
/// property tests drive. Returns the records and what was skipped.
pub fn read_all(bytes: &[u8], options: &ReadOptions) -> (Vec<Record>, Vec<Skipped>) {
    let mut records = Vec::new();
    let mut skipped = Vec::new();
    let progress = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let result = read_stream(Box::new(bytes), "input".into(), options, progress, &mut |batch| {
        skipped.extend(batch.skipped.iter().cloned());
        decode_batch(&batch, &mut records, &mut skipped);
    });
    if let Err(e) = result {
        skipped.push(Skipped::new(SkipKind::TruncatedInput, Origin::default(), e.to_string()));
    }
    (records, skipped)
}
