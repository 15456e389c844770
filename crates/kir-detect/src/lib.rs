//! Detection for Kubernetes audit events with Sigma rules.
//!
//! The flow: [`rule`] parses rule files (YAML, several documents each) into detection and
//! correlation rules; [`detection`] compiles the `detection` section (fields, modifiers,
//! placeholders) and [`condition`] its condition; [`ruleset::RuleSet`] holds the rules that run
//! and evaluates one event; [`correlation::Correlator`] keeps the windows of correlation rules;
//! [`finding`] is what comes out; [`lint`] says what is wrong with a rule; [`selftest`] runs the
//! rules' embedded examples.
//!
//! Architecture invariant: no I/O here except reading rule files the caller names; events come
//! in already decoded (from `kir-audit`), findings go out as values.

pub mod condition;
pub mod context;
pub mod correlation;
pub mod detection;
mod documents;
pub mod finding;
pub mod level;
pub mod lint;
mod memo;
pub mod rbac;
pub mod rule;
pub mod ruleset;
pub mod selftest;

pub use detection::Placeholders;
pub use finding::{Actor, Finding, ObjectInfo, SourceRef, finding_from_falco};
pub use level::Level;
pub use rule::{ProblemSeverity, RuleProblem};
pub use ruleset::{RuleSet, RuleText, parse_placeholders};
