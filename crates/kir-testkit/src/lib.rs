//! Real services for tests, started for real: a throwaway PostgreSQL server, an HTTP receiver
//! (for webhooks, Slack and PagerDuty payloads) and an SMTP receiver; and recorded API server
//! answers read as a cluster dump. Nothing here mocks a
//! client: kir's production code talks to these over sockets.

mod http;
mod postgres;
mod recorded;
mod smtp;

pub use http::{HttpReceiver, ReceivedRequest};
pub use postgres::PostgresServer;
pub use recorded::recorded_objects;
pub use smtp::{ReceivedMail, SmtpReceiver};

/// Says on the terminal, past the test harness's capture (which hides what a passing test
/// prints), that `test` did not run and why. `.ci/run` counts these lines.
pub fn say_skipped(test: &str, why: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "SKIPPED {test}: {why}");
}
