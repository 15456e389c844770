//! What was read but could not be used, and why: counted, never fatal.

use std::collections::BTreeMap;
use std::fmt;

use crate::event::Origin;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SkipKind {
    /// The line is not valid UTF-8.
    InvalidUtf8,
    /// The line is not JSON (or is cut short).
    MalformedJson,
    /// Valid JSON that is not an audit event nor a known wrapper of one.
    NotAuditEvent,
    /// Longer than the line limit; skipped without being held in memory.
    OversizedLine,
    /// A compressed stream ended early or a read failed: what came before it is kept.
    TruncatedInput,
}

impl SkipKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SkipKind::InvalidUtf8 => "invalid UTF-8",
            SkipKind::MalformedJson => "malformed JSON",
            SkipKind::NotAuditEvent => "not an audit event",
            SkipKind::OversizedLine => "oversized line",
            SkipKind::TruncatedInput => "truncated input",
        }
    }
}

impl fmt::Display for SkipKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One skipped line (or the rest of a file), with where and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub kind: SkipKind,
    pub origin: Origin,
    pub detail: String,
}

impl Skipped {
    pub fn new(kind: SkipKind, origin: Origin, detail: String) -> Self {
        Skipped { kind, origin, detail }
    }
}

impl fmt::Display for Skipped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}: {}", self.origin.path, self.origin.line, self.kind, self.detail)
    }
}

/// Counts by reason, and the first few occurrences in full.
#[derive(Debug, Clone, Default)]
pub struct SkipReport {
    pub counts: BTreeMap<SkipKind, u64>,
    pub examples: Vec<Skipped>,
}

impl SkipReport {
    pub const EXAMPLES_KEPT: usize = 10;

    pub fn add(&mut self, skipped: Skipped) {
        *self.counts.entry(skipped.kind).or_default() += 1;
        if self.examples.len() < Self::EXAMPLES_KEPT {
            self.examples.push(skipped);
        }
    }

    pub fn total(&self) -> u64 {
        self.counts.values().sum()
    }
}
