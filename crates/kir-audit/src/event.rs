//! The normalized audit event: one request to the API server, whatever form it was logged in.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use jiff::Timestamp;
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

/// Where a record came from: the file (or `-` for stdin), the 1-based line, and the cluster
/// whose API server logged it, when known (`kir hunt --cluster`, the token or `?cluster=` of
/// `kir serve`'s receivers).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Origin {
    pub path: Arc<str>,
    pub line: u64,
    pub cluster: Option<Arc<str>>,
}

impl Origin {
    pub fn new(path: impl Into<Arc<str>>, line: u64) -> Origin {
        Origin { path: path.into(), line, cluster: None }
    }
}

/// The audit stages, in the order the API server emits them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    RequestReceived,
    ResponseStarted,
    ResponseComplete,
    Panic,
}

impl Stage {
    pub fn parse(s: &str) -> Option<Stage> {
        match s {
            "RequestReceived" => Some(Stage::RequestReceived),
            "ResponseStarted" => Some(Stage::ResponseStarted),
            "ResponseComplete" => Some(Stage::ResponseComplete),
            "Panic" => Some(Stage::Panic),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Stage::RequestReceived => "RequestReceived",
            Stage::ResponseStarted => "ResponseStarted",
            Stage::ResponseComplete => "ResponseComplete",
            Stage::Panic => "Panic",
        }
    }

    /// A request logged at this stage will not be logged again.
    pub fn is_final(self) -> bool {
        matches!(self, Stage::ResponseComplete | Stage::Panic)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserInfo {
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub uid: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub groups: Vec<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub extra: BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectRef {
    pub resource: Option<String>,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub uid: Option<String>,
    pub api_group: Option<String>,
    pub api_version: Option<String>,
    pub resource_version: Option<String>,
    pub subresource: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResponseStatus {
    pub code: Option<i64>,
    pub status: Option<String>,
    pub reason: Option<String>,
    pub message: Option<String>,
}

/// A JSON object kept as text until a rule asks for it: most rules never look inside
/// `requestObject`, and `responseObject` of a list can be megabytes.
#[derive(Debug, Default)]
pub struct LazyJson {
    raw: Option<Box<RawValue>>,
    parsed: OnceLock<Value>,
}

impl LazyJson {
    pub fn from_raw(raw: Box<RawValue>) -> Self {
        LazyJson { raw: Some(raw), parsed: OnceLock::new() }
    }

    pub fn from_value(value: Value) -> Self {
        let parsed = OnceLock::new();
        let _ = parsed.set(value);
        LazyJson { raw: None, parsed }
    }

    /// The parsed value; a text that does not parse reads as `null`.
    pub fn value(&self) -> &Value {
        self.parsed.get_or_init(|| match &self.raw {
            Some(raw) => serde_json::from_str(raw.get()).unwrap_or(Value::Null),
            None => Value::Null,
        })
    }

    /// Drops the parsed value when the text is kept to parse it again: a hunt matches a request
    /// where it was decoded and hands it on to another thread, which then need not free the
    /// parsed tree (freeing memory another thread allocated costs more).
    pub fn forget_parsed(&mut self) {
        if self.raw.is_some() {
            self.parsed.take();
        }
    }

    /// The compact JSON text, as logged.
    pub fn text(&self) -> std::borrow::Cow<'_, str> {
        match &self.raw {
            Some(raw) => std::borrow::Cow::Borrowed(raw.get()),
            None => std::borrow::Cow::Owned(self.value().to_string()),
        }
    }
}

impl Clone for LazyJson {
    fn clone(&self) -> Self {
        match &self.raw {
            Some(raw) => LazyJson::from_raw(raw.clone()),
            None => LazyJson::from_value(self.value().clone()),
        }
    }
}

impl PartialEq for LazyJson {
    fn eq(&self, other: &Self) -> bool {
        self.value() == other.value()
    }
}

/// One request to the API server (all its logged stages merged into one).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuditEvent {
    pub api_version: Option<String>,
    pub audit_id: String,
    pub stage: Option<Stage>,
    pub level: Option<String>,
    pub verb: String,
    pub request_uri: String,
    pub user: UserInfo,
    pub impersonated_user: Option<UserInfo>,
    pub source_ips: Vec<String>,
    pub user_agent: Option<String>,
    pub object_ref: Option<ObjectRef>,
    pub response_status: Option<ResponseStatus>,
    pub request_object: Option<LazyJson>,
    pub response_object: Option<LazyJson>,
    pub request_received: Option<Timestamp>,
    pub stage_time: Option<Timestamp>,
    pub annotations: BTreeMap<String, String>,
    /// Where the first logged stage of this request was read.
    pub origin: Origin,
    /// What kir learned about this request from the rest of the input, filled in order by the
    /// hunt before its contextual rules run (never read from the log itself).
    pub context: Context,
}

/// Knowledge from outside one request: the powers of the role a binding grants, read from the
/// role's rules (learned from earlier requests and from a cluster snapshot).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Context {
    /// `admin` (`*` on `*`), `escalate` (escalate/bind/impersonate), `read-secrets`,
    /// `run-code` (create pods or workloads, exec, attach, nodes/proxy).
    pub role_power: Vec<&'static str>,
}

impl AuditEvent {
    /// The time the request reached the API server, or the best time the record offers.
    pub fn time(&self) -> Option<Timestamp> {
        self.request_received.or(self.stage_time)
    }

    pub fn response_code(&self) -> Option<i64> {
        self.response_status.as_ref().and_then(|s| s.code)
    }

    pub fn decision(&self) -> Option<&str> {
        self.annotations.get("authorization.k8s.io/decision").map(String::as_str)
    }

    fn object(&self) -> Option<&ObjectRef> {
        self.object_ref.as_ref()
    }

    pub fn resource(&self) -> Option<&str> {
        self.object().and_then(|o| o.resource.as_deref())
    }
    pub fn subresource(&self) -> Option<&str> {
        self.object().and_then(|o| o.subresource.as_deref())
    }
    pub fn namespace(&self) -> Option<&str> {
        self.object().and_then(|o| o.namespace.as_deref())
    }
    pub fn name(&self) -> Option<&str> {
        self.object().and_then(|o| o.name.as_deref())
    }
    pub fn api_group(&self) -> Option<&str> {
        self.object().and_then(|o| o.api_group.as_deref())
    }

    /// For `system:serviceaccount:NS:NAME`, `(NS, NAME)`.
    pub fn service_account(&self) -> Option<(&str, &str)> {
        let rest = self.user.username.strip_prefix("system:serviceaccount:")?;
        rest.split_once(':')
    }

    /// Which optional fields this record has, as bits, with the number of annotations in the top
    /// byte: [`Presence::adds_to`] compares two records without touching their fields again.
    pub fn presence(&self) -> Presence {
        let bits = [
            self.request_object.is_some(),
            self.object_ref.is_some(),
            self.impersonated_user.is_some(),
            self.user_agent.is_some(),
            self.response_status.is_some(),
            !self.user.username.is_empty(),
            !self.verb.is_empty(),
            !self.request_uri.is_empty(),
            !self.source_ips.is_empty(),
            self.api_version.is_some(),
            self.level.is_some(),
        ];
        Presence::of(bits, self.annotations.len())
    }

    /// Folds a later stage of the same request into this one: later stages know more
    /// (the response), earlier ones may be the only ones with the request body.
    pub fn absorb(&mut self, later: AuditEvent) {
        let AuditEvent {
            api_version,
            audit_id: _,
            stage,
            level,
            verb,
            request_uri,
            user,
            impersonated_user,
            source_ips,
            user_agent,
            object_ref,
            response_status,
            request_object,
            response_object,
            request_received,
            stage_time,
            annotations,
            origin: _,
            context: _,
        } = later;
        if stage > self.stage {
            self.stage = stage;
        }
        replace_if_some(&mut self.api_version, api_version);
        replace_if_some(&mut self.level, level);
        if !verb.is_empty() {
            self.verb = verb;
        }
        if !request_uri.is_empty() {
            self.request_uri = request_uri;
        }
        if !user.username.is_empty() {
            self.user = user;
        }
        replace_if_some(&mut self.impersonated_user, impersonated_user);
        if !source_ips.is_empty() {
            self.source_ips = source_ips;
        }
        replace_if_some(&mut self.user_agent, user_agent);
        replace_if_some(&mut self.object_ref, object_ref);
        replace_if_some(&mut self.response_status, response_status);
        replace_if_some(&mut self.request_object, request_object);
        replace_if_some(&mut self.response_object, response_object);
        if self.request_received.is_none() {
            self.request_received = request_received;
        }
        replace_if_some(&mut self.stage_time, stage_time);
        self.annotations.extend(annotations);
    }
}

fn replace_if_some<T>(slot: &mut Option<T>, value: Option<T>) {
    if value.is_some() {
        *slot = value;
    }
}

fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// The fields a record has: see [`AuditEvent::presence`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Presence(u32);

impl Presence {
    /// Whether the record with this presence (an earlier stage) has a field that `later` lacks,
    /// or more annotations.
    pub fn adds_to(self, later: Presence) -> bool {
        let fields = 0x00ff_ffff;
        (self.0 & fields & !later.0) != 0 || (self.0 >> 24) > (later.0 >> 24)
    }

    /// Whether field `bit` (in [`AuditEvent::presence`]'s order) is present.
    pub fn has(self, bit: usize) -> bool {
        bit < 24 && self.0 & (1 << bit) != 0
    }

    /// From the fields present, in [`AuditEvent::presence`]'s order, and the number of
    /// annotations: the one place that lays the bits out (the envelope's presence uses it too).
    pub(crate) fn of(fields: [bool; 11], annotations: usize) -> Presence {
        let bits = fields.iter().enumerate().fold(0u32, |acc, (i, present)| acc | (u32::from(*present) << i));
        Presence(bits | (annotations.min(255) as u32) << 24)
    }

    #[cfg(test)]
    pub(crate) fn from_bits(bits: u32) -> Presence {
        Presence(bits)
    }
}

/// A runtime alert from Falco (its JSON output), carried beside audit events.
#[derive(Debug, Clone, PartialEq)]
pub struct FalcoAlert {
    pub rule: String,
    pub priority: String,
    pub output: String,
    pub time: Option<Timestamp>,
    pub source: Option<String>,
    pub tags: Vec<String>,
    pub output_fields: BTreeMap<String, Value>,
    pub hostname: Option<String>,
    pub origin: Origin,
}

/// What one input record turned out to be.
// Audit events are nearly every record: boxing them would add an allocation per line to save
// space only on the rare Falco alert.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    Audit(AuditEvent),
    Falco(FalcoAlert),
}
