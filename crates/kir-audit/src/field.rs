//! Typed access to every field of an [`AuditEvent`] by its dotted Sigma name.
//!
//! A [`Field`] is resolved once (when a rule is loaded); reading it from an event is then a
//! match on the enum, with no string comparisons for the typed fields.

use std::borrow::Cow;

use serde_json::Value;

use crate::envelope::{Envelope, EnvelopeUser};
use crate::event::{AuditEvent, UserInfo};

/// One value found at a field: what rules compare against.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar<'a> {
    Str(Cow<'a, str>),
    Int(i64),
    Float(f64),
    Bool(bool),
    Null,
    /// A map or list: compared as its compact JSON text.
    Compound(&'a Value),
}

impl Scalar<'_> {
    /// The value as text, the way a string comparison sees it.
    pub fn text(&self) -> Cow<'_, str> {
        match self {
            Scalar::Str(s) => Cow::Borrowed(s.as_ref()),
            Scalar::Int(i) => Cow::Owned(i.to_string()),
            Scalar::Float(f) => Cow::Owned(f.to_string()),
            Scalar::Bool(b) => Cow::Borrowed(if *b { "true" } else { "false" }),
            Scalar::Null => Cow::Borrowed(""),
            Scalar::Compound(v) => Cow::Owned(v.to_string()),
        }
    }

    pub fn number(&self) -> Option<f64> {
        match self {
            Scalar::Int(i) => Some(*i as f64),
            Scalar::Float(f) => Some(*f),
            Scalar::Str(s) => s.trim().parse().ok(),
            _ => None,
        }
    }
}

/// The type a field holds, for the rule linter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    Text,
    Number,
    TextList,
    /// Inside a JSON object: any type.
    Any,
    Time,
}

/// A dotted path into JSON, keeping the original text so that keys with dots in them
/// (`app.kubernetes.io/name`) can be found by joining segments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonPath {
    text: String,
    /// (start, end) byte ranges of the segments in `text`.
    segments: Vec<(usize, usize)>,
}

impl JsonPath {
    pub fn parse(text: &str) -> JsonPath {
        let mut segments = Vec::new();
        let mut start = 0;
        for (i, c) in text.char_indices() {
            if c == '.' {
                segments.push((start, i));
                start = i + 1;
            }
        }
        if !text.is_empty() {
            segments.push((start, text.len()));
        }
        JsonPath { text: text.to_string(), segments }
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn is_empty(&self) -> bool {
        self.segments.is_empty()
    }

    /// Calls `f` for every value at this path under `root`; stops at the first `true`.
    pub fn any<'a>(&self, root: &'a Value, f: &mut dyn FnMut(Scalar<'a>) -> bool) -> bool {
        self.walk(root, 0, f)
    }

    fn walk<'a>(&self, node: &'a Value, seg: usize, f: &mut dyn FnMut(Scalar<'a>) -> bool) -> bool {
        if seg == self.segments.len() {
            return leaf(node, f);
        }
        match node {
            Value::Array(items) => items.iter().any(|item| self.walk(item, seg, f)),
            Value::Object(map) => {
                let start = self.segments[seg].0;
                for last in seg..self.segments.len() {
                    let key = &self.text[start..self.segments[last].1];
                    if let Some(child) = map.get(key)
                        && self.walk(child, last + 1, f)
                    {
                        return true;
                    }
                    // A shorter key matched; a longer one with dots may too, rarely.
                }
                false
            }
            _ => false,
        }
    }
}

fn leaf<'a>(node: &'a Value, f: &mut dyn FnMut(Scalar<'a>) -> bool) -> bool {
    match node {
        Value::Array(items) => {
            if items.is_empty() {
                return false;
            }
            items.iter().any(|item| match item {
                Value::Array(_) | Value::Object(_) => f(Scalar::Compound(item)),
                other => leaf(other, f),
            })
        }
        Value::Object(_) => f(Scalar::Compound(node)),
        Value::String(s) => f(Scalar::Str(Cow::Borrowed(s))),
        Value::Number(n) => match n.as_i64() {
            Some(i) => f(Scalar::Int(i)),
            None => f(Scalar::Float(n.as_f64().unwrap_or(f64::NAN))),
        },
        Value::Bool(b) => f(Scalar::Bool(*b)),
        Value::Null => f(Scalar::Null),
    }
}

/// A field of an audit event, by its Sigma name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    ApiVersion,
    AuditId,
    Stage,
    Level,
    Verb,
    RequestUri,
    UserAgent,
    SourceIps,
    User(UserField),
    ImpersonatedUser(UserField),
    ObjectRef(ObjectRefField),
    ResponseCode,
    ResponseStatus(StatusField),
    Annotation(String),
    RequestReceivedTimestamp,
    StageTimestamp,
    RequestObject(JsonPath),
    ResponseObject(JsonPath),
    /// `kir.podSpec.PATH`: the pod spec inside a Pod or any workload template.
    PodSpec(JsonPath),
    /// `kir.containers.PATH`: containers, init and ephemeral containers of that pod spec.
    Containers(JsonPath),
    /// `kir.images`: every image of that pod spec, with its registry.
    Images,
    /// `kir.roleRef.power`: the powers of the role a binding grants, by the role's rules
    /// (`admin`, `escalate`, `read-secrets`, `run-code`); known only to contextual rules.
    RoleRefPower,
    /// `kir.images.repository`: every image's repository as the spec writes it, without tag or
    /// digest (`nginx`, `ghcr.io/acme/web`): Falco's `ka.req.pod.containers.image.repository`.
    ImageRepositories,
    ServiceAccountNamespace,
    ServiceAccountName,
    Decision,
    /// `kir.csr.subject`: the readable strings of a CertificateSigningRequest's subject and
    /// extensions (its `spec.request`, a base64 PEM of DER, decoded), e.g. `system:masters`.
    CsrSubject,
    /// A name no audit event carries: the linter reports it, matching finds nothing.
    Unknown(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserField {
    Username,
    Uid,
    Groups,
    Extra(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectRefField {
    Resource,
    Subresource,
    Namespace,
    Name,
    Uid,
    ApiGroup,
    ApiVersion,
    ResourceVersion,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusField {
    Status,
    Reason,
    Message,
}

impl Field {
    pub fn parse(name: &str) -> Field {
        if let Some(rest) = name.strip_prefix("requestObject")
            && let Some(path) = path_rest(rest)
        {
            return Field::RequestObject(JsonPath::parse(path));
        }
        if let Some(rest) = name.strip_prefix("responseObject")
            && let Some(path) = path_rest(rest)
        {
            return Field::ResponseObject(JsonPath::parse(path));
        }
        if let Some(rest) = name.strip_prefix("kir.podSpec")
            && let Some(path) = path_rest(rest)
        {
            return Field::PodSpec(JsonPath::parse(path));
        }
        if let Some(rest) = name.strip_prefix("kir.containers")
            && let Some(path) = path_rest(rest)
        {
            return Field::Containers(JsonPath::parse(path));
        }
        if let Some(key) = name.strip_prefix("annotations.") {
            return Field::Annotation(key.to_string());
        }
        if let Some(rest) = name.strip_prefix("user.")
            && let Some(f) = user_field(rest)
        {
            return Field::User(f);
        }
        if let Some(rest) = name.strip_prefix("impersonatedUser.")
            && let Some(f) = user_field(rest)
        {
            return Field::ImpersonatedUser(f);
        }
        match name {
            "apiVersion" => Field::ApiVersion,
            "auditID" => Field::AuditId,
            "stage" => Field::Stage,
            "level" => Field::Level,
            "verb" => Field::Verb,
            "requestURI" => Field::RequestUri,
            "userAgent" => Field::UserAgent,
            "sourceIPs" => Field::SourceIps,
            "objectRef.resource" => Field::ObjectRef(ObjectRefField::Resource),
            "objectRef.subresource" => Field::ObjectRef(ObjectRefField::Subresource),
            "objectRef.namespace" => Field::ObjectRef(ObjectRefField::Namespace),
            "objectRef.name" => Field::ObjectRef(ObjectRefField::Name),
            "objectRef.uid" => Field::ObjectRef(ObjectRefField::Uid),
            "objectRef.apiGroup" => Field::ObjectRef(ObjectRefField::ApiGroup),
            "objectRef.apiVersion" => Field::ObjectRef(ObjectRefField::ApiVersion),
            "objectRef.resourceVersion" => Field::ObjectRef(ObjectRefField::ResourceVersion),
            "responseStatus.code" => Field::ResponseCode,
            "responseStatus.status" => Field::ResponseStatus(StatusField::Status),
            "responseStatus.reason" => Field::ResponseStatus(StatusField::Reason),
            "responseStatus.message" => Field::ResponseStatus(StatusField::Message),
            "requestReceivedTimestamp" => Field::RequestReceivedTimestamp,
            "stageTimestamp" => Field::StageTimestamp,
            "kir.images" => Field::Images,
            "kir.images.repository" => Field::ImageRepositories,
            "kir.roleRef.power" => Field::RoleRefPower,
            "kir.serviceAccount.namespace" => Field::ServiceAccountNamespace,
            "kir.serviceAccount.name" => Field::ServiceAccountName,
            "kir.decision" => Field::Decision,
            "kir.csr.subject" => Field::CsrSubject,
            other => Field::Unknown(other.to_string()),
        }
    }

    /// What the field holds, for type checks in the linter.
    pub fn kind(&self) -> FieldKind {
        match self {
            Field::ResponseCode => FieldKind::Number,
            Field::SourceIps | Field::Images | Field::ImageRepositories | Field::RoleRefPower => FieldKind::TextList,
            Field::User(UserField::Groups | UserField::Extra(_))
            | Field::ImpersonatedUser(UserField::Groups | UserField::Extra(_)) => FieldKind::TextList,
            Field::RequestReceivedTimestamp | Field::StageTimestamp => FieldKind::Time,
            Field::CsrSubject => FieldKind::TextList,
            Field::RequestObject(_)
            | Field::ResponseObject(_)
            | Field::PodSpec(_)
            | Field::Containers(_)
            | Field::Unknown(_) => FieldKind::Any,
            _ => FieldKind::Text,
        }
    }

    /// Calls `f` for every value of this field in `event`; `true` as soon as `f` says so.
    pub fn any<'a>(&self, event: &'a AuditEvent, f: &mut dyn FnMut(Scalar<'a>) -> bool) -> bool {
        let text = |f: &mut dyn FnMut(Scalar<'a>) -> bool, s: Option<&'a str>| match s {
            Some(s) => f(Scalar::Str(Cow::Borrowed(s))),
            None => false,
        };
        match self {
            Field::ApiVersion => text(f, event.api_version.as_deref()),
            Field::AuditId => text(f, Some(&event.audit_id)),
            Field::Stage => text(f, event.stage.map(|s| s.as_str())),
            Field::Level => text(f, event.level.as_deref()),
            Field::Verb => text(f, Some(&event.verb)),
            Field::RequestUri => text(f, Some(&event.request_uri)),
            Field::UserAgent => text(f, event.user_agent.as_deref()),
            Field::SourceIps => event.source_ips.iter().any(|ip| f(Scalar::Str(Cow::Borrowed(ip)))),
            Field::User(uf) => user_any(&event.user, uf, f),
            Field::ImpersonatedUser(uf) => match &event.impersonated_user {
                Some(u) => user_any(u, uf, f),
                None => false,
            },
            Field::ObjectRef(of) => {
                let o = match &event.object_ref {
                    Some(o) => o,
                    None => return false,
                };
                let v = match of {
                    ObjectRefField::Resource => &o.resource,
                    ObjectRefField::Subresource => &o.subresource,
                    ObjectRefField::Namespace => &o.namespace,
                    ObjectRefField::Name => &o.name,
                    ObjectRefField::Uid => &o.uid,
                    ObjectRefField::ApiGroup => &o.api_group,
                    ObjectRefField::ApiVersion => &o.api_version,
                    ObjectRefField::ResourceVersion => &o.resource_version,
                };
                text(f, v.as_deref())
            }
            Field::ResponseCode => match event.response_code() {
                Some(c) => f(Scalar::Int(c)),
                None => false,
            },
            Field::ResponseStatus(sf) => {
                let s = match &event.response_status {
                    Some(s) => s,
                    None => return false,
                };
                let v = match sf {
                    StatusField::Status => &s.status,
                    StatusField::Reason => &s.reason,
                    StatusField::Message => &s.message,
                };
                text(f, v.as_deref())
            }
            Field::Annotation(key) => text(f, event.annotations.get(key).map(String::as_str)),
            Field::RequestReceivedTimestamp => match event.request_received {
                Some(t) => f(Scalar::Str(Cow::Owned(t.to_string()))),
                None => false,
            },
            Field::StageTimestamp => match event.stage_time {
                Some(t) => f(Scalar::Str(Cow::Owned(t.to_string()))),
                None => false,
            },
            Field::RequestObject(path) => match &event.request_object {
                Some(obj) => path_any(path, obj.value(), f),
                None => false,
            },
            Field::ResponseObject(path) => match &event.response_object {
                Some(obj) => path_any(path, obj.value(), f),
                None => false,
            },
            Field::PodSpec(_) | Field::Containers(_) | Field::Images | Field::ImageRepositories => {
                self.any_in_pod_spec(pod_spec(event), f)
            }
            Field::RoleRefPower => event.context.role_power.iter().any(|p| f(Scalar::Str(Cow::Borrowed(p)))),
            Field::ServiceAccountNamespace => text(f, event.service_account().map(|(ns, _)| ns)),
            Field::ServiceAccountName => text(f, event.service_account().map(|(_, name)| name)),
            Field::Decision => text(f, event.decision()),
            Field::CsrSubject => csr_strings(event).into_iter().any(|s| f(Scalar::Str(Cow::Owned(s)))),
            Field::Unknown(_) => false,
        }
    }

    /// The answer of a field read from the pod spec (`kir.podSpec`, `kir.containers`,
    /// `kir.images`, `kir.imageRepositories`), given the spec: `false` for any other field.
    fn any_in_pod_spec<'a>(&self, spec: Option<&'a Value>, f: &mut dyn FnMut(Scalar<'a>) -> bool) -> bool {
        let image = |c: &'a Value| c.get("image").and_then(Value::as_str);
        match self {
            Field::PodSpec(path) => spec.is_some_and(|spec| path_any(path, spec, f)),
            Field::Containers(path) => containers_of(spec).any(|c| path_any(path, c, f)),
            Field::Images => containers_of(spec).filter_map(image).any(|i| f(Scalar::Str(normalize_image(i)))),
            Field::ImageRepositories => {
                containers_of(spec).filter_map(image).any(|i| f(Scalar::Str(Cow::Borrowed(image_repository(i)))))
            }
            _ => false,
        }
    }

    /// Whether the event has this field at all.
    pub fn exists(&self, event: &AuditEvent) -> bool {
        self.any(event, &mut |v| !matches!(v, Scalar::Null))
    }
}

/// Where rules read field values: a decoded event knows every field; a last stage read for its
/// envelope only ([`crate::envelope`]) knows some, and says `None` ("cannot tell") for the rest.
pub trait Fields<'a> {
    /// Calls `f` for every value of `field`; `Some(true)` as soon as `f` says so, `Some(false)`
    /// when no value did, `None` when this source does not hold the field.
    fn any(&self, field: &Field, f: &mut dyn FnMut(Scalar<'a>) -> bool) -> Option<bool>;
}

impl<'a> Fields<'a> for &'a AuditEvent {
    #[inline]
    fn any(&self, field: &Field, f: &mut dyn FnMut(Scalar<'a>) -> bool) -> Option<bool> {
        Some(field.any(self, f))
    }
}

impl<'e, 'a: 'e> Fields<'e> for &'e Envelope<'a> {
    fn any(&self, field: &Field, f: &mut dyn FnMut(Scalar<'e>) -> bool) -> Option<bool> {
        let e: &'e Envelope<'a> = self;
        let text = |f: &mut dyn FnMut(Scalar<'e>) -> bool, s: Option<&'e str>| {
            Some(match s {
                Some(s) => f(Scalar::Str(Cow::Borrowed(s))),
                None => false,
            })
        };
        let annotation = |f: &mut dyn FnMut(Scalar<'e>) -> bool, key: &str| match e.annotation(key) {
            None => Some(false),
            Some(Some(value)) => Some(f(Scalar::Str(Cow::Borrowed(value)))),
            // Not a string: the decoder keeps its JSON text, which the envelope does not.
            Some(None) => None,
        };
        let service_account = || e.user.username.strip_prefix("system:serviceaccount:").and_then(|r| r.split_once(':'));
        match field {
            Field::ApiVersion => text(f, Some(&e.api_version)),
            Field::AuditId => text(f, Some(&e.audit_id)),
            Field::Stage => text(f, e.stage.map(|s| s.as_str())),
            Field::Level => text(f, e.level.as_deref()),
            Field::Verb => text(f, Some(&e.verb)),
            Field::RequestUri => text(f, Some(&e.request_uri)),
            Field::UserAgent => text(f, e.user_agent.as_deref()),
            Field::SourceIps => Some(e.source_ips.iter().any(|ip| f(Scalar::Str(Cow::Borrowed(ip))))),
            Field::User(uf) => envelope_user(&e.user, uf, f),
            Field::ImpersonatedUser(uf) => match &e.impersonated_user {
                Some(u) => envelope_user(u, uf, f),
                None => Some(false),
            },
            Field::ObjectRef(of) => match &e.object_ref {
                Some(o) => text(f, o[*of as usize].as_deref()),
                None => Some(false),
            },
            Field::ResponseCode => Some(match e.response_code {
                Some(c) => f(Scalar::Int(c)),
                None => false,
            }),
            Field::ResponseStatus(_) => (!e.has_response_status).then_some(false),
            Field::Annotation(key) => annotation(f, key),
            Field::Decision => annotation(f, "authorization.k8s.io/decision"),
            Field::RequestReceivedTimestamp => Some(match e.request_received {
                Some(t) => f(Scalar::Str(Cow::Owned(t.to_string()))),
                None => false,
            }),
            Field::StageTimestamp => Some(match e.stage_time {
                Some(t) => f(Scalar::Str(Cow::Owned(t.to_string()))),
                None => false,
            }),
            // All read from the request body.
            Field::RequestObject(_)
            | Field::PodSpec(_)
            | Field::Containers(_)
            | Field::Images
            | Field::ImageRepositories
            | Field::CsrSubject => (!e.has_request_object).then_some(false),
            Field::ResponseObject(_) => (!e.has_response_object).then_some(false),
            Field::RoleRefPower => None,
            Field::ServiceAccountNamespace => text(f, service_account().map(|(ns, _)| ns)),
            Field::ServiceAccountName => text(f, service_account().map(|(_, name)| name)),
            Field::Unknown(_) => Some(false),
        }
    }
}

fn envelope_user<'e>(
    user: &'e EnvelopeUser<'_>,
    field: &UserField,
    f: &mut dyn FnMut(Scalar<'e>) -> bool,
) -> Option<bool> {
    Some(match field {
        UserField::Username => f(Scalar::Str(Cow::Borrowed(&user.username))),
        UserField::Uid => match &user.uid {
            Some(uid) => f(Scalar::Str(Cow::Borrowed(uid))),
            None => false,
        },
        UserField::Groups => user.groups.iter().any(|g| f(Scalar::Str(Cow::Borrowed(g)))),
        UserField::Extra(_) => return (!user.has_extra).then_some(false),
    })
}

fn path_rest(rest: &str) -> Option<&str> {
    if rest.is_empty() { Some("") } else { rest.strip_prefix('.') }
}

fn path_any<'a>(path: &JsonPath, root: &'a Value, f: &mut dyn FnMut(Scalar<'a>) -> bool) -> bool {
    if path.is_empty() { leaf(root, f) } else { path.any(root, f) }
}

fn user_field(rest: &str) -> Option<UserField> {
    match rest {
        "username" => Some(UserField::Username),
        "uid" => Some(UserField::Uid),
        "groups" => Some(UserField::Groups),
        _ => rest.strip_prefix("extra.").map(|k| UserField::Extra(k.to_string())),
    }
}

fn user_any<'a>(user: &'a UserInfo, field: &UserField, f: &mut dyn FnMut(Scalar<'a>) -> bool) -> bool {
    match field {
        UserField::Username => f(Scalar::Str(Cow::Borrowed(&user.username))),
        UserField::Uid => match &user.uid {
            Some(uid) => f(Scalar::Str(Cow::Borrowed(uid))),
            None => false,
        },
        UserField::Groups => user.groups.iter().any(|g| f(Scalar::Str(Cow::Borrowed(g)))),
        UserField::Extra(key) => match user.extra.get(key) {
            Some(values) => values.iter().any(|v| f(Scalar::Str(Cow::Borrowed(v)))),
            None => false,
        },
    }
}

/// The pod spec carried by the request body of a Pod or of a workload that templates pods.
/// The member at `keys` below `value`: what `Value::pointer` does, without the text of a pointer
/// to unescape (and allocate) on every call; this runs for every rule that reads a pod spec.
fn path<'v>(value: &'v Value, keys: &[&str]) -> Option<&'v Value> {
    keys.iter().try_fold(value, |v, k| v.get(k))
}

pub fn pod_spec(event: &AuditEvent) -> Option<&Value> {
    let body = event.request_object.as_ref()?.value();
    let kind = body.get("kind").and_then(Value::as_str).unwrap_or("");
    let spec = body.get("spec")?;
    let found = match kind {
        "Pod" => Some(spec),
        "CronJob" => path(spec, &["jobTemplate", "spec", "template", "spec"]),
        "PodTemplate" => path(body, &["template", "spec"]),
        "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet" | "Job" | "ReplicationController" => {
            path(spec, &["template", "spec"])
        }
        // Bodies without `kind` (some patches, some recorders): find the spec by its shape.
        _ => {
            if ["containers", "initContainers", "ephemeralContainers"].iter().any(|k| spec.get(k).is_some()) {
                Some(spec)
            } else if let Some(t) = path(spec, &["template", "spec"]) {
                Some(t)
            } else {
                path(spec, &["jobTemplate", "spec", "template", "spec"])
            }
        }
    };
    found.filter(|v| v.is_object())
}

/// Every container of the pod spec: regular, init and ephemeral.
/// Every image of the pod spec a request writes (a Pod or a workload's template), normalized
/// with its registry (`docker.io/library/nginx:1.25`), each once.
pub fn images(event: &AuditEvent) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for c in containers(event) {
        if let Some(image) = c.get("image").and_then(Value::as_str).filter(|i| !i.trim().is_empty()) {
            let image = normalize_image(image).into_owned();
            if !out.contains(&image) {
                out.push(image);
            }
        }
    }
    out
}

pub fn containers(event: &AuditEvent) -> impl Iterator<Item = &Value> {
    containers_of(pod_spec(event))
}

fn containers_of(spec: Option<&Value>) -> impl Iterator<Item = &Value> {
    ["containers", "initContainers", "ephemeralContainers"]
        .into_iter()
        .filter_map(move |key| spec.and_then(|s| s.get(key)).and_then(Value::as_array))
        .flatten()
}

/// A decoded event as the rules of a pack read it, one rule after another: the pod spec that
/// a dozen rules read (through `kir.podSpec`, `kir.containers`, `kir.images`) is found once,
/// not once for every item that reads it.
pub struct EventView<'e> {
    pub event: &'e AuditEvent,
    pod_spec: std::cell::OnceCell<Option<&'e Value>>,
}

impl<'e> EventView<'e> {
    pub fn new(event: &'e AuditEvent) -> Self {
        EventView { event, pod_spec: std::cell::OnceCell::new() }
    }

    fn pod_spec(&self) -> Option<&'e Value> {
        *self.pod_spec.get_or_init(|| pod_spec(self.event))
    }
}

impl<'e> Fields<'e> for &EventView<'e> {
    fn any(&self, field: &Field, f: &mut dyn FnMut(Scalar<'e>) -> bool) -> Option<bool> {
        // The event's own answers (`Field::any`), from the spec found once.
        Some(match field {
            Field::PodSpec(_) | Field::Containers(_) | Field::Images | Field::ImageRepositories => {
                field.any_in_pod_spec(self.pod_spec(), f)
            }
            _ => field.any(self.event, f),
        })
    }
}

/// The printable strings (4 characters or more) inside the DER of a CSR's `spec.request`: the
/// subject's common name and organizations (groups), and the names of its extensions.
pub fn csr_strings(event: &AuditEvent) -> Vec<String> {
    use base64::Engine as _;
    let Some(body) = event.request_object.as_ref() else { return Vec::new() };
    let Some(request) = path(body.value(), &["spec", "request"]).and_then(Value::as_str) else { return Vec::new() };
    let engine = base64::engine::general_purpose::STANDARD;
    let Ok(pem) = engine.decode(request.trim()) else { return Vec::new() };
    let pem = String::from_utf8_lossy(&pem);
    let inner: String = pem.lines().filter(|l| !l.starts_with("-----")).map(str::trim).collect();
    let Ok(der) = engine.decode(inner) else { return Vec::new() };
    der.split(|b| !(b.is_ascii_graphic() || *b == b' '))
        .filter(|run| run.len() >= 4)
        .map(|run| String::from_utf8_lossy(run).into_owned())
        .collect()
}

/// An image reference without its tag or digest: `nginx:1.25` → `nginx`,
/// `registry:5000/team/app@sha256:…` → `registry:5000/team/app` (a port is not a tag).
pub fn image_repository(image: &str) -> &str {
    let image = image.trim();
    let image = image.split_once('@').map_or(image, |(repo, _)| repo);
    let last_slash = image.rfind('/').map_or(0, |i| i + 1);
    match image[last_slash..].rfind(':') {
        Some(colon) => &image[..last_slash + colon],
        None => image,
    }
}

/// `nginx` → `docker.io/library/nginx`, `user/app:1` → `docker.io/user/app:1`; references that
/// name a registry (a first part with a dot or a port, or `localhost`) stay as they are.
pub fn normalize_image(image: &str) -> Cow<'_, str> {
    let image = image.trim();
    match image.split_once('/') {
        None => Cow::Owned(format!("docker.io/library/{image}")),
        Some((first, _)) if first.contains('.') || first.contains(':') || first == "localhost" => Cow::Borrowed(image),
        Some(_) => Cow::Owned(format!("docker.io/{image}")),
    }
}

/// Every Sigma field name kir knows, with its kind: the linter's vocabulary.
pub const KNOWN_FIELDS: &[&str] = &[
    "apiVersion",
    "auditID",
    "stage",
    "level",
    "verb",
    "requestURI",
    "userAgent",
    "sourceIPs",
    "user.username",
    "user.uid",
    "user.groups",
    "user.extra.*",
    "impersonatedUser.username",
    "impersonatedUser.groups",
    "objectRef.resource",
    "objectRef.subresource",
    "objectRef.namespace",
    "objectRef.name",
    "objectRef.uid",
    "objectRef.apiGroup",
    "objectRef.apiVersion",
    "objectRef.resourceVersion",
    "responseStatus.code",
    "responseStatus.status",
    "responseStatus.reason",
    "responseStatus.message",
    "annotations.*",
    "requestReceivedTimestamp",
    "stageTimestamp",
    "requestObject.*",
    "responseObject.*",
    "kir.podSpec.*",
    "kir.containers.*",
    "kir.images",
    "kir.images.repository",
    "kir.roleRef.power",
    "kir.serviceAccount.namespace",
    "kir.serviceAccount.name",
    "kir.decision",
    "kir.csr.subject",
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::LazyJson;

    #[test]
    fn repositories_lose_tags_and_digests_but_keep_ports() {
        for (image, repo) in [
            ("nginx", "nginx"),
            ("nginx:1.25", "nginx"),
            ("registry:5000/team/app", "registry:5000/team/app"),
            ("registry:5000/team/app:2@sha256:abc", "registry:5000/team/app"),
            ("ghcr.io/x/y@sha256:abc", "ghcr.io/x/y"),
            ("", ""),
            (":", ""),
        ] {
            assert_eq!(image_repository(image), repo, "{image}");
        }
    }
    use serde_json::json;

    fn values(field: &str, event: &AuditEvent) -> Vec<String> {
        let mut out = Vec::new();
        Field::parse(field).any(event, &mut |v| {
            out.push(v.text().into_owned());
            false
        });
        out
    }

    #[test]
    fn path_through_a_list_visits_every_element() {
        let event = AuditEvent {
            request_object: Some(LazyJson::from_value(json!({
                "kind": "Pod",
                "spec": {"containers": [
                    {"name": "a", "image": "nginx"},
                    {"name": "b", "image": "ghcr.io/x/y:1", "securityContext": {"privileged": true}}
                ]}
            }))),
            ..Default::default()
        };
        assert_eq!(values("requestObject.spec.containers.securityContext.privileged", &event), ["true"]);
        assert_eq!(values("kir.images", &event), ["docker.io/library/nginx", "ghcr.io/x/y:1"]);
        assert_eq!(values("kir.images.repository", &event), ["nginx", "ghcr.io/x/y"]);
        assert_eq!(values("kir.containers.name", &event), ["a", "b"]);
    }

    #[test]
    fn keys_with_dots_are_found() {
        let event = AuditEvent {
            request_object: Some(LazyJson::from_value(json!({
                "metadata": {"labels": {"app.kubernetes.io/name": "web"}}
            }))),
            ..Default::default()
        };
        assert_eq!(values("requestObject.metadata.labels.app.kubernetes.io/name", &event), ["web"]);
    }

    /// The view answers as the event does, for the fields it finds from the spec it keeps and
    /// for the others, whatever shape the body has.
    #[test]
    fn the_view_answers_as_the_event_does() {
        let spec = json!({"hostPID": true, "securityContext": {"runAsUser": 0},
            "containers": [{"image": "busybox", "command": ["sh"]}, {"image": "ghcr.io/a/b:1@sha256:00"}],
            "initContainers": [{"image": "quay.io/x/y:2", "securityContext": {"privileged": true}}]});
        let bodies = [
            json!({"kind": "Pod", "spec": spec}),
            json!({"kind": "Deployment", "spec": {"template": {"spec": spec}}}),
            json!({"kind": "CronJob", "spec": {"jobTemplate": {"spec": {"template": {"spec": spec}}}}}),
            json!({"kind": "PodTemplate", "template": {"spec": spec}}),
            json!({"spec": spec}),
            json!({"kind": "ConfigMap", "data": {"a": "b"}}),
            json!("not an object"),
        ];
        let fields = [
            "kir.podSpec.hostPID",
            "kir.podSpec.securityContext.runAsUser",
            "kir.containers.image",
            "kir.containers.command",
            "kir.containers.securityContext.privileged",
            "kir.images",
            "kir.imageRepositories",
            "requestObject.kind",
            "verb",
        ];
        for body in bodies {
            let event = AuditEvent {
                verb: "create".into(),
                request_object: Some(LazyJson::from_value(body.clone())),
                ..Default::default()
            };
            let view = EventView::new(&event);
            for name in fields {
                let field = Field::parse(name);
                let (mut direct, mut viewed) = (Vec::new(), Vec::new());
                field.any(&event, &mut |v| {
                    direct.push(v.text().into_owned());
                    false
                });
                (&view).any(&field, &mut |v| {
                    viewed.push(v.text().into_owned());
                    false
                });
                assert_eq!(viewed, direct, "{name} on {body}");
            }
        }
    }

    #[test]
    fn cronjob_template_is_the_pod_spec() {
        let event = AuditEvent {
            request_object: Some(LazyJson::from_value(json!({
                "kind": "CronJob",
                "spec": {"jobTemplate": {"spec": {"template": {"spec": {"hostPID": true, "containers": [{"image": "busybox"}]}}}}}
            }))),
            ..Default::default()
        };
        assert_eq!(values("kir.podSpec.hostPID", &event), ["true"]);
        assert_eq!(values("kir.images", &event), ["docker.io/library/busybox"]);
    }

    #[test]
    fn service_account_parts() {
        let event = AuditEvent {
            user: UserInfo { username: "system:serviceaccount:tools:ops-console".into(), ..Default::default() },
            ..Default::default()
        };
        assert_eq!(values("kir.serviceAccount.namespace", &event), ["tools"]);
        assert_eq!(values("kir.serviceAccount.name", &event), ["ops-console"]);
        assert!(values("kir.images", &event).is_empty());
    }

    #[test]
    fn image_normalization() {
        assert_eq!(normalize_image("nginx:1.25"), "docker.io/library/nginx:1.25");
        assert_eq!(normalize_image("local/xmrig:6.21.0"), "docker.io/local/xmrig:6.21.0");
        assert_eq!(normalize_image("registry.k8s.io/pause:3.9"), "registry.k8s.io/pause:3.9");
        assert_eq!(normalize_image("localhost:5000/x"), "localhost:5000/x");
    }
}
