//! Real services for tests, started for real: a throwaway PostgreSQL server, an HTTP receiver
//! (for webhooks, Slack and PagerDuty payloads) and an SMTP receiver. Nothing here mocks a
//! client: kir's production code talks to these over sockets.

mod http;
mod postgres;
mod smtp;

pub use http::{HttpReceiver, ReceivedRequest};
pub use postgres::PostgresServer;
pub use smtp::{ReceivedMail, SmtpReceiver};
