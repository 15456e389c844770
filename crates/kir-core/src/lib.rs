//! The concepts every kir crate shares, each parsed in exactly one place.
//!
//! A time on the command line, a duration in a plan or a rule, an actor pattern, a
//! `NAMESPACE/NAME`, a resource's singular: when two crates parsed these their own way, the same
//! text meant different things in `kir hunt` and in the plan. Here each has one parser, one
//! error message, and property tests.
//!
//! Architecture invariant: no kir crate below this one, no I/O. The only outside state read is
//! `KIR_NOW` in [`time::now`], the one clock of the command line.

pub mod names;
pub mod pattern;
pub mod time;

pub use names::{NamespacedName, cluster_name, singular};
pub use pattern::glob;
pub use time::{Duration, TimeError, now, parse_time_arg, parse_timestamp};
