//! Delivers incident notifications through the plan's channels: Slack-compatible incoming
//! webhooks, generic JSON webhooks signed with HMAC-SHA256, PagerDuty Events v2 and email over
//! SMTP. Retries with exponential backoff; every attempt is reported back so the caller can put
//! it on the incident's timeline. Payloads are documented in `docs/notifications.md`.
//!
//! Secrets (webhook URLs, HMAC keys, PagerDuty routing keys, SMTP passwords) come from the
//! environment variables the plan names, never from the plan, and never appear in attempts.

use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use kir_plan::{Channel, ChannelKind, Plan};
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::Serialize;
use sha2::Sha256;

pub const PAGERDUTY_EVENTS_URL: &str = "https://events.pagerduty.com/v2/enqueue";

/// What happened, for whom: the incident as a notification describes it.
#[derive(Debug, Clone, Serialize)]
pub struct Notice {
    pub incident_id: i64,
    pub title: String,
    pub severity: String,
    /// The severity's label in the plan (`SEV2`), if it has one.
    pub severity_label: Option<String>,
    pub incident_type: String,
    pub state: String,
    pub owner_role: Option<String>,
    pub owner: Option<String>,
    pub finding_count: i64,
    /// RFC 3339.
    pub created: String,
    /// Why now: `escalation level 2 of soc (15m after opening, if not acknowledged)`.
    pub reason: String,
    /// Roles this notice is for.
    pub roles: Vec<String>,
    /// Who is on call in those roles now (name per role).
    pub on_call: Vec<(String, String)>,
}

impl Notice {
    pub fn headline(&self) -> String {
        let label = self.severity_label.as_deref().map(|l| format!("{l} ")).unwrap_or_default();
        format!("[kir] {label}{} incident #{}: {}", self.severity, self.incident_id, self.title)
    }

    pub fn text(&self) -> String {
        let mut t = format!(
            "{}\nWhy now: {}\nType: {}  State: {}  Owner: {}{}  Findings: {}\nOpened: {}\n",
            self.headline(),
            self.reason,
            self.incident_type,
            self.state,
            self.owner_role.as_deref().unwrap_or("none"),
            self.owner.as_deref().map(|p| format!(" ({p})")).unwrap_or_default(),
            self.finding_count,
            self.created
        );
        if !self.on_call.is_empty() {
            let who: Vec<String> = self.on_call.iter().map(|(r, n)| format!("{r}: {n}")).collect();
            t.push_str(&format!("On call: {}\n", who.join(", ")));
        }
        t.push_str(&format!(
            "Work it: kir incident show {id} | kir incident ack {id} | kir incident report {id}\n",
            id = self.incident_id
        ));
        t
    }
}

/// One try to deliver through one channel.
#[derive(Debug, Clone, Serialize)]
pub struct Attempt {
    pub channel: String,
    pub kind: &'static str,
    pub attempt: u32,
    pub ok: bool,
    /// HTTP status, or the SMTP reply code.
    pub status: Option<u16>,
    pub error: Option<String>,
    pub at_ms: i64,
}

/// The outcome for one channel.
#[derive(Debug, Clone, Serialize)]
pub struct Delivery {
    pub channel: String,
    pub kind: &'static str,
    pub delivered: bool,
    /// Why nothing was sent (e.g. an environment variable is not set).
    pub skipped: Option<String>,
    pub attempts: Vec<Attempt>,
}

#[derive(Debug, Clone, Copy)]
pub struct Retry {
    /// Tries in all (at least 1).
    pub attempts: u32,
    /// Delay before the second try; doubled for each further one.
    pub first_delay: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Retry { attempts: 3, first_delay: Duration::from_secs(1) }
    }
}

/// Where secrets come from: the process environment, or a lookup the caller gives.
type SecretLookup = Box<dyn Fn(&str) -> Option<String> + Send + Sync>;

pub struct Notifier {
    http: reqwest::Client,
    retry: Retry,
    env: SecretLookup,
}

fn kind_name(kind: ChannelKind) -> &'static str {
    match kind {
        ChannelKind::Slack => "slack",
        ChannelKind::Webhook => "webhook",
        ChannelKind::Pagerduty => "pagerduty",
        ChannelKind::Email => "email",
    }
}

enum Outcome {
    Ok(Option<u16>),
    /// Worth another try (network error, 5xx, 429).
    Transient(Option<u16>, String),
    Permanent(Option<u16>, String),
}

impl Notifier {
    pub fn new(retry: Retry) -> Notifier {
        // reqwest is built without a default crypto provider: kir uses ring everywhere.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .user_agent(concat!("kir/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("an HTTP client with default settings builds");
        Notifier { http, retry, env: Box::new(|k| std::env::var(k).ok().filter(|v| !v.is_empty())) }
    }

    /// Reads secrets from `env` instead of the process environment (tests, `kir serve`).
    pub fn with_env(mut self, env: impl Fn(&str) -> Option<String> + Send + Sync + 'static) -> Notifier {
        self.env = Box::new(env);
        self
    }

    /// Notifies every role of `notice.roles` through its channels; a channel shared by several
    /// roles is used once (email goes to the union of their contacts).
    pub async fn notify_roles(&self, plan: &Plan, notice: &Notice) -> Vec<Delivery> {
        let mut channels: Vec<(&Channel, Vec<String>)> = Vec::new();
        for role_id in &notice.roles {
            let Some(role) = plan.roles.iter().find(|r| &r.id == role_id) else { continue };
            let emails: Vec<String> = role.contacts.iter().filter_map(|c| c.email.clone()).collect();
            for ch_id in &role.notify {
                let Some(ch) = plan.channels.iter().find(|c| &c.id == ch_id) else { continue };
                match channels.iter_mut().find(|(c, _)| c.id == ch.id) {
                    Some((_, to)) => {
                        for e in &emails {
                            if !to.contains(e) {
                                to.push(e.clone());
                            }
                        }
                    }
                    None => channels.push((ch, emails.clone())),
                }
            }
        }
        let mut out = Vec::new();
        for (ch, to) in channels {
            out.push(self.send(ch, notice, &to).await);
        }
        out
    }

    /// Delivers through one channel, retrying transient failures.
    pub async fn send(&self, channel: &Channel, notice: &Notice, role_emails: &[String]) -> Delivery {
        let kind = kind_name(channel.kind);
        let mut delivery =
            Delivery { channel: channel.id.clone(), kind, delivered: false, skipped: None, attempts: Vec::new() };
        let prepared = match self.prepare(channel, notice, role_emails) {
            Ok(p) => p,
            Err(why) => {
                delivery.skipped = Some(why);
                return delivery;
            }
        };
        let attempts = self.retry.attempts.max(1);
        for n in 1..=attempts {
            let outcome = self.deliver(&prepared, notice).await;
            let at_ms = jiff::Timestamp::now().as_millisecond();
            let (ok, status, error, again) = match outcome {
                Outcome::Ok(s) => (true, s, None, false),
                Outcome::Transient(s, e) => (false, s, Some(e), true),
                Outcome::Permanent(s, e) => (false, s, Some(e), false),
            };
            delivery.attempts.push(Attempt { channel: channel.id.clone(), kind, attempt: n, ok, status, error, at_ms });
            if ok {
                delivery.delivered = true;
                break;
            }
            if !again || n == attempts {
                break;
            }
            tokio::time::sleep(self.retry.first_delay * 2u32.saturating_pow(n - 1)).await;
        }
        delivery
    }

    fn var(&self, name: &Option<String>) -> Option<String> {
        name.as_deref().and_then(|n| (self.env)(n))
    }

    fn prepare(&self, ch: &Channel, notice: &Notice, role_emails: &[String]) -> Result<Prepared, String> {
        let missing = |what: &str, var: &Option<String>| match var {
            Some(v) => format!("{what} not configured: set {v}"),
            None => format!("{what} not configured"),
        };
        match ch.kind {
            ChannelKind::Slack | ChannelKind::Webhook => {
                let url =
                    ch.url.clone().or_else(|| self.var(&ch.url_env)).ok_or_else(|| missing("URL", &ch.url_env))?;
                if ch.kind == ChannelKind::Slack {
                    return Ok(Prepared::Http { url, body: slack_payload(notice), headers: Vec::new() });
                }
                let body = webhook_payload(notice);
                let mut headers = Vec::new();
                if ch.secret_env.is_some() {
                    let secret = self.var(&ch.secret_env).ok_or_else(|| missing("HMAC secret", &ch.secret_env))?;
                    let timestamp = jiff::Timestamp::now().as_second().to_string();
                    headers.push(("X-Kir-Timestamp".to_string(), timestamp.clone()));
                    headers
                        .push(("X-Kir-Signature".to_string(), format!("sha256={}", sign(&secret, &timestamp, &body))));
                }
                Ok(Prepared::Http { url, body, headers })
            }
            ChannelKind::Pagerduty => {
                let key = self.var(&ch.routing_key_env).ok_or_else(|| missing("routing key", &ch.routing_key_env))?;
                let url =
                    ch.url.clone().or_else(|| self.var(&ch.url_env)).unwrap_or_else(|| PAGERDUTY_EVENTS_URL.into());
                Ok(Prepared::Http { url, body: pagerduty_payload(notice, &key), headers: Vec::new() })
            }
            ChannelKind::Email => {
                let smtp = ch.smtp.as_ref().ok_or("no smtp settings")?;
                let host = smtp
                    .host
                    .clone()
                    .or_else(|| self.var(&smtp.host_env))
                    .ok_or_else(|| missing("SMTP host", &smtp.host_env))?;
                let to: Vec<String> = if ch.to.is_empty() { role_emails.to_vec() } else { ch.to.clone() };
                if to.is_empty() {
                    return Err("no recipients: the notified roles list no email address".into());
                }
                let credentials = match (self.var(&smtp.username_env), self.var(&smtp.password_env)) {
                    (Some(u), Some(p)) => Some((u, p)),
                    _ => None,
                };
                let port = match self.var(&smtp.port_env) {
                    Some(p) => p
                        .trim()
                        .parse()
                        .map_err(|_| format!("{} is not a port: {p:?}", smtp.port_env.as_deref().unwrap_or("port")))?,
                    None => smtp.port,
                };
                let tls =
                    self.var(&smtp.tls_env).map(|t| t.trim().to_ascii_lowercase()).unwrap_or_else(|| smtp.tls.clone());
                if !["none", "starttls", "tls"].contains(&tls.as_str()) {
                    return Err(format!("TLS mode {tls:?}: write none, starttls or tls"));
                }
                Ok(Prepared::Email {
                    host,
                    port,
                    tls,
                    from: ch.from.clone().unwrap_or_else(|| "kir@localhost".into()),
                    to,
                    credentials,
                })
            }
        }
    }

    async fn deliver(&self, p: &Prepared, notice: &Notice) -> Outcome {
        match p {
            Prepared::Http { url, body, headers } => {
                let mut req = self.http.post(url).header("content-type", "application/json").body(body.clone());
                for (k, v) in headers {
                    req = req.header(k, v);
                }
                match req.send().await {
                    Ok(resp) => {
                        let status = resp.status().as_u16();
                        if resp.status().is_success() {
                            Outcome::Ok(Some(status))
                        } else if status == 429 || resp.status().is_server_error() {
                            Outcome::Transient(Some(status), format!("HTTP {status}"))
                        } else {
                            Outcome::Permanent(Some(status), format!("HTTP {status}"))
                        }
                    }
                    // The error's text may hold the URL, and a Slack URL is a secret.
                    Err(e) => Outcome::Transient(None, describe_http_error(&e)),
                }
            }
            Prepared::Email { host, port, tls, from, to, credentials } => {
                send_mail(host, *port, tls, from, to, credentials.as_ref(), notice).await
            }
        }
    }
}

enum Prepared {
    Http { url: String, body: String, headers: Vec<(String, String)> },
    Email { host: String, port: u16, tls: String, from: String, to: Vec<String>, credentials: Option<(String, String)> },
}

fn describe_http_error(e: &reqwest::Error) -> String {
    let what = if e.is_connect() {
        "cannot connect"
    } else if e.is_timeout() {
        "timed out"
    } else if e.is_request() {
        "request failed"
    } else {
        "failed"
    };
    what.to_string()
}

/// HMAC-SHA256 over `TIMESTAMP.BODY`, hex: what `X-Kir-Signature: sha256=…` carries.
pub fn sign(secret: &str, timestamp: &str, body: &str) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

pub fn slack_payload(n: &Notice) -> String {
    let emoji = match n.severity.as_str() {
        "critical" => ":rotating_light:",
        "high" => ":red_circle:",
        "medium" => ":large_orange_circle:",
        _ => ":white_circle:",
    };
    serde_json::json!({
        "text": format!("{emoji} {}", n.headline()),
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": format!("{emoji} *{}*", n.headline())}},
            {"type": "section", "fields": [
                {"type": "mrkdwn", "text": format!("*Why now*\n{}", n.reason)},
                {"type": "mrkdwn", "text": format!("*Owner*\n{}", n.owner_role.as_deref().unwrap_or("none"))},
                {"type": "mrkdwn", "text": format!("*Type*\n{}", n.incident_type)},
                {"type": "mrkdwn", "text": format!("*State*\n{}", n.state)},
            ]},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": format!("`kir incident show {}` · {} findings", n.incident_id, n.finding_count)}]}
        ]
    })
    .to_string()
}

pub fn webhook_payload(n: &Notice) -> String {
    serde_json::json!({
        "kind": "kir.notification",
        "version": 1,
        "sent_at": jiff::Timestamp::now().to_string(),
        "reason": n.reason,
        "roles": n.roles,
        "on_call": n.on_call.iter().map(|(r, p)| serde_json::json!({"role": r, "name": p})).collect::<Vec<_>>(),
        "incident": {
            "id": n.incident_id,
            "title": n.title,
            "type": n.incident_type,
            "severity": n.severity,
            "severity_label": n.severity_label,
            "state": n.state,
            "owner_role": n.owner_role,
            "owner": n.owner,
            "finding_count": n.finding_count,
            "created": n.created,
        }
    })
    .to_string()
}

pub fn pagerduty_payload(n: &Notice, routing_key: &str) -> String {
    let severity = match n.severity.as_str() {
        "critical" => "critical",
        "high" => "error",
        "medium" => "warning",
        _ => "info",
    };
    serde_json::json!({
        "routing_key": routing_key,
        "event_action": "trigger",
        // One PagerDuty alert per incident: later escalations update it instead of adding alerts.
        "dedup_key": format!("kir-incident-{}", n.incident_id),
        "payload": {
            "summary": n.headline().chars().take(1024).collect::<String>(),
            "source": "kir",
            "severity": severity,
            "timestamp": n.created,
            "component": n.incident_type,
            "group": n.owner_role,
            "class": n.incident_type,
            "custom_details": {
                "reason": n.reason,
                "state": n.state,
                "finding_count": n.finding_count,
                "roles": n.roles,
                "incident_id": n.incident_id,
            }
        }
    })
    .to_string()
}

async fn send_mail(
    host: &str,
    port: u16,
    tls: &str,
    from: &str,
    to: &[String],
    credentials: Option<&(String, String)>,
    notice: &Notice,
) -> Outcome {
    let from: Mailbox = match from.parse() {
        Ok(m) => m,
        Err(e) => return Outcome::Permanent(None, format!("bad from address {from:?}: {e}")),
    };
    let mut builder = Message::builder().from(from).subject(notice.headline());
    for t in to {
        match t.parse::<Mailbox>() {
            Ok(m) => builder = builder.to(m),
            Err(e) => return Outcome::Permanent(None, format!("bad recipient {t:?}: {e}")),
        }
    }
    let message = match builder.body(notice.text()) {
        Ok(m) => m,
        Err(e) => return Outcome::Permanent(None, format!("cannot build the message: {e}")),
    };
    let transport = match tls {
        "none" => Ok(AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)),
        "tls" => AsyncSmtpTransport::<Tokio1Executor>::relay(host),
        _ => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host),
    };
    let mut transport = match transport {
        Ok(t) => t.port(port).timeout(Some(Duration::from_secs(15))),
        Err(e) => return Outcome::Permanent(None, format!("SMTP settings: {e}")),
    };
    if let Some((user, pass)) = credentials {
        transport = transport.credentials(Credentials::new(user.clone(), pass.clone()));
    }
    match transport.build().send(message).await {
        Ok(resp) => Outcome::Ok(Some(smtp_code(&resp.code()))),
        Err(e) => {
            let code = e.status().map(|c| smtp_code(&c));
            if e.is_permanent() {
                Outcome::Permanent(code, format!("SMTP: {e}"))
            } else {
                Outcome::Transient(code, format!("SMTP: {e}"))
            }
        }
    }
}

fn smtp_code(code: &lettre::transport::smtp::response::Code) -> u16 {
    code.to_string().parse().unwrap_or(0)
}
