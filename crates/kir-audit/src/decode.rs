//! One JSON text in, the records it holds out: plain audit events, `EventList` batches, and the
//! wrappers of EKS (CloudWatch Logs), AKS (diagnostic records), GKE (Cloud Audit Logs) and Falco.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

use crate::event::{AuditEvent, FalcoAlert, LazyJson, ObjectRef, Origin, Record, ResponseStatus, Stage, UserInfo};
use crate::skip::{SkipKind, Skipped};

/// Wrappers nest (a CloudWatch record around an AKS record around an event): this bounds it.
const MAX_NESTING: u8 = 4;

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Wire<'a> {
    #[serde(borrow)]
    kind: Option<Cow<'a, str>>,
    api_version: Option<String>,
    #[serde(rename = "auditID")]
    audit_id: Option<String>,
    #[serde(borrow)]
    stage: Option<Cow<'a, str>>,
    level: Option<String>,
    verb: Option<String>,
    #[serde(rename = "requestURI")]
    request_uri: Option<String>,
    user: Option<UserInfo>,
    impersonated_user: Option<UserInfo>,
    #[serde(rename = "sourceIPs")]
    source_ips: Option<Vec<String>>,
    user_agent: Option<String>,
    object_ref: Option<ObjectRef>,
    response_status: Option<ResponseStatus>,
    request_object: Option<Box<RawValue>>,
    response_object: Option<Box<RawValue>>,
    // Read once and dropped: borrowed from the line, not copied.
    #[serde(borrow)]
    request_received_timestamp: Option<Cow<'a, str>>,
    #[serde(borrow)]
    stage_timestamp: Option<Cow<'a, str>>,
    /// `audit.k8s.io/v1beta1` and GKE.
    #[serde(borrow)]
    timestamp: Option<Cow<'a, str>>,
    #[serde(default, deserialize_with = "annotations")]
    annotations: Option<BTreeMap<String, String>>,

    // Wrappers.
    #[serde(borrow)]
    items: Option<&'a RawValue>,
    #[serde(borrow)]
    proto_payload: Option<&'a RawValue>,
    #[serde(borrow)]
    records: Option<&'a RawValue>,
    #[serde(borrow)]
    properties: Option<&'a RawValue>,
    category: Option<String>,
    #[serde(borrow, rename = "@message")]
    at_message: Option<&'a RawValue>,
    #[serde(borrow)]
    message: Option<&'a RawValue>,
    #[serde(borrow)]
    log_events: Option<&'a RawValue>,
    #[serde(borrow)]
    labels: Option<&'a RawValue>,
    #[serde(borrow)]
    operation: Option<&'a RawValue>,
    insert_id: Option<String>,
    #[serde(borrow)]
    receive_timestamp: Option<Cow<'a, str>>,

    // Falco alerts.
    output: Option<String>,
    rule: Option<String>,
    priority: Option<String>,
    time: Option<String>,
    source: Option<String>,
    tags: Option<Vec<String>>,
    #[serde(rename = "output_fields")]
    output_fields: Option<BTreeMap<String, Value>>,
    hostname: Option<String>,
}

/// Annotations as text: a string as it is, any other value as its JSON text (some recorders
/// write numbers and booleans), straight into the map the event keeps.
fn annotations<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<BTreeMap<String, String>>, D::Error> {
    struct AnnotationValue(String);
    impl<'de> Deserialize<'de> for AnnotationValue {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct Text;
            impl<'de> serde::de::Visitor<'de> for Text {
                type Value = AnnotationValue;
                fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                    f.write_str("an annotation value")
                }
                fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<AnnotationValue, E> {
                    Ok(AnnotationValue(s.to_string()))
                }
                fn visit_string<E: serde::de::Error>(self, s: String) -> Result<AnnotationValue, E> {
                    Ok(AnnotationValue(s))
                }
                fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<AnnotationValue, E> {
                    Ok(AnnotationValue(Value::Bool(v).to_string()))
                }
                fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<AnnotationValue, E> {
                    Ok(AnnotationValue(Value::from(v).to_string()))
                }
                fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<AnnotationValue, E> {
                    Ok(AnnotationValue(Value::from(v).to_string()))
                }
                fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<AnnotationValue, E> {
                    Ok(AnnotationValue(Value::from(v).to_string()))
                }
                fn visit_unit<E: serde::de::Error>(self) -> Result<AnnotationValue, E> {
                    Ok(AnnotationValue(Value::Null.to_string()))
                }
                fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<AnnotationValue, A::Error> {
                    let v = Value::deserialize(serde::de::value::SeqAccessDeserializer::new(seq))?;
                    Ok(AnnotationValue(v.to_string()))
                }
                fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<AnnotationValue, A::Error> {
                    let v = Value::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                    Ok(AnnotationValue(v.to_string()))
                }
            }
            d.deserialize_any(Text)
        }
    }
    struct Annotations(BTreeMap<String, String>);
    impl<'de> Deserialize<'de> for Annotations {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct Entries;
            impl<'de> serde::de::Visitor<'de> for Entries {
                type Value = Annotations;
                fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                    f.write_str("a map of annotations")
                }
                fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Annotations, A::Error> {
                    let mut out = BTreeMap::new();
                    while let Some((key, AnnotationValue(value))) = map.next_entry::<String, AnnotationValue>()? {
                        out.insert(key, value);
                    }
                    Ok(Annotations(out))
                }
            }
            d.deserialize_map(Entries)
        }
    }
    Ok(Option::<Annotations>::deserialize(d)?.map(|a| a.0))
}

/// Decodes one JSON text. Records go to `out`; what could not be used goes to `skipped`.
pub fn decode(text: &str, origin: &Origin, out: &mut Vec<Record>, skipped: &mut Vec<Skipped>) {
    decode_nested(text, origin, out, skipped, 0);
}

fn decode_nested(text: &str, origin: &Origin, out: &mut Vec<Record>, skipped: &mut Vec<Skipped>, depth: u8) {
    let text = strip_log_prefix(text.trim());
    let wire: Wire = match serde_json::from_str(text) {
        Ok(w) => w,
        Err(e) => {
            let kind = if e.is_data() { SkipKind::NotAuditEvent } else { SkipKind::MalformedJson };
            let detail = if kind == SkipKind::NotAuditEvent {
                format!("data not recognized as a Kubernetes audit event: {e}")
            } else {
                e.to_string()
            };
            skipped.push(Skipped::new(kind, origin.clone(), detail));
            return;
        }
    };
    if depth >= MAX_NESTING {
        skipped.push(Skipped::new(SkipKind::NotAuditEvent, origin.clone(), "wrappers nested too deeply".into()));
        return;
    }
    // A line that says it is an audit event, with its auditID, is one whatever else it carries
    // (the hunt's quick look at earlier stages, `crate::early`, reads it the same way).
    let plain_event = wire.kind.as_deref() == Some("Event") && wire.audit_id.is_some();
    if !plain_event && let (Some(rule), Some(priority), Some(output)) = (&wire.rule, &wire.priority, &wire.output) {
        out.push(Record::Falco(FalcoAlert {
            rule: rule.clone(),
            priority: priority.clone(),
            output: output.clone(),
            time: wire.time.as_deref().and_then(parse_time),
            source: wire.source.clone(),
            tags: wire.tags.clone().unwrap_or_default(),
            output_fields: wire.output_fields.clone().unwrap_or_default(),
            hostname: wire.hostname.clone(),
            origin: origin.clone(),
        }));
        return;
    }
    if let Some(items) = wire.items
        && wire.kind.as_deref().is_none_or(|k| k.ends_with("List"))
    {
        for_each_element(items, origin, out, skipped, depth);
        return;
    }
    if !plain_event && let Some(payload) = wire.proto_payload {
        match gke_event(&wire, payload, origin) {
            Ok(event) => out.push(Record::Audit(event)),
            Err(detail) => skipped.push(Skipped::new(SkipKind::NotAuditEvent, origin.clone(), detail)),
        }
        return;
    }
    if !plain_event && let Some(records) = wire.records {
        for_each_element(records, origin, out, skipped, depth);
        return;
    }
    if !plain_event
        && let Some(properties) = wire.properties
        && wire
            .category
            .as_deref()
            .is_none_or(|c| c.eq_ignore_ascii_case("kube-audit") || c.eq_ignore_ascii_case("kube-audit-admin"))
    {
        #[derive(Deserialize)]
        struct Properties<'a> {
            #[serde(borrow)]
            log: Option<&'a RawValue>,
        }
        if let Ok(Properties { log: Some(log) }) = serde_json::from_str::<Properties>(properties.get()) {
            decode_embedded(log, origin, out, skipped, depth);
            return;
        }
    }
    if !plain_event && let Some(events) = wire.log_events {
        #[derive(Deserialize)]
        struct LogEvent<'a> {
            #[serde(borrow)]
            message: &'a RawValue,
        }
        match serde_json::from_str::<Vec<LogEvent>>(events.get()) {
            Ok(list) => list.iter().for_each(|e| decode_embedded(e.message, origin, out, skipped, depth)),
            Err(e) => skipped.push(Skipped::new(SkipKind::NotAuditEvent, origin.clone(), format!("logEvents: {e}"))),
        }
        return;
    }
    let looks_like_event = wire.audit_id.is_some() || wire.verb.is_some() || wire.kind.as_deref() == Some("Event");
    if !looks_like_event && let Some(message) = wire.at_message.or(wire.message) {
        decode_embedded(message, origin, out, skipped, depth);
        return;
    }
    match audit_event(wire, origin) {
        Ok(event) => out.push(Record::Audit(event)),
        Err(detail) => skipped.push(Skipped::new(SkipKind::NotAuditEvent, origin.clone(), detail)),
    }
}

/// A wrapper's payload is either the JSON object itself or a string that holds its text.
fn decode_embedded(raw: &RawValue, origin: &Origin, out: &mut Vec<Record>, skipped: &mut Vec<Skipped>, depth: u8) {
    let text = raw.get();
    if text.starts_with('"') {
        match serde_json::from_str::<String>(text) {
            Ok(inner) => decode_nested(&inner, origin, out, skipped, depth + 1),
            Err(e) => skipped.push(Skipped::new(SkipKind::MalformedJson, origin.clone(), e.to_string())),
        }
    } else {
        decode_nested(text, origin, out, skipped, depth + 1);
    }
}

fn for_each_element(list: &RawValue, origin: &Origin, out: &mut Vec<Record>, skipped: &mut Vec<Skipped>, depth: u8) {
    match serde_json::from_str::<Vec<&RawValue>>(list.get()) {
        Ok(items) => items.iter().for_each(|item| decode_embedded(item, origin, out, skipped, depth)),
        Err(e) => skipped.push(Skipped::new(SkipKind::NotAuditEvent, origin.clone(), format!("expected a list: {e}"))),
    }
}

/// CloudWatch Logs exports put the time before the JSON: `2026-11-27T23:53:39.802Z {"kind":…}`.
fn strip_log_prefix(text: &str) -> &str {
    if text.starts_with('{') || text.starts_with('[') {
        return text;
    }
    match text.find(" {") {
        Some(i) if i < 64 && text.as_bytes().first().is_some_and(u8::is_ascii_digit) => &text[i + 1..],
        _ => text,
    }
}

fn audit_event(wire: Wire, origin: &Origin) -> Result<AuditEvent, String> {
    if let Some(kind) = &wire.kind
        && kind != "Event"
    {
        return Err(format!("data not recognized as a Kubernetes audit event: kind is {kind:?}"));
    }
    if let Some(api_version) = &wire.api_version
        && !api_version.starts_with("audit.k8s.io/")
    {
        return Err(format!("data not recognized as a Kubernetes audit event: apiVersion is {api_version:?}"));
    }
    let has_request = wire.verb.is_some() || wire.request_uri.is_some() || wire.object_ref.is_some();
    if wire.audit_id.is_none() && !has_request && wire.kind.is_none() {
        return Err("data not recognized as a Kubernetes audit event: no auditID, verb or requestURI".into());
    }
    let stage_time = wire.stage_timestamp.as_deref().and_then(parse_time);
    let request_received = wire
        .request_received_timestamp
        .as_deref()
        .and_then(parse_time)
        .or_else(|| wire.timestamp.as_deref().and_then(parse_time));
    let annotations = wire.annotations.unwrap_or_default();
    Ok(AuditEvent {
        api_version: wire.api_version,
        audit_id: wire.audit_id.unwrap_or_else(|| synthetic_id(origin)),
        stage: wire.stage.as_deref().and_then(Stage::parse),
        level: wire.level,
        verb: wire.verb.unwrap_or_default(),
        request_uri: wire.request_uri.unwrap_or_default(),
        user: wire.user.unwrap_or_default(),
        impersonated_user: wire.impersonated_user,
        source_ips: wire.source_ips.unwrap_or_default(),
        user_agent: wire.user_agent,
        object_ref: wire.object_ref,
        response_status: wire.response_status,
        request_object: wire.request_object.map(LazyJson::from_raw),
        response_object: wire.response_object.map(LazyJson::from_raw),
        request_received,
        stage_time,
        annotations,
        origin: origin.clone(),
        context: Default::default(),
    })
}

/// Records without an auditID still need a stable, unique key.
fn synthetic_id(origin: &Origin) -> String {
    format!("kir:{}:{}", origin.path, origin.line)
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct GkePayload {
    method_name: Option<String>,
    resource_name: Option<String>,
    authentication_info: Option<GkeAuthentication>,
    request_metadata: Option<GkeRequestMetadata>,
    request: Option<Box<RawValue>>,
    response: Option<Box<RawValue>>,
    status: Option<GkeStatus>,
    authorization_info: Option<Vec<GkeAuthorization>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct GkeAuthentication {
    principal_email: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct GkeRequestMetadata {
    #[serde(alias = "callerIP")]
    caller_ip: Option<String>,
    caller_supplied_user_agent: Option<String>,
}

#[derive(Deserialize, Default)]
struct GkeStatus {
    code: Option<i64>,
    message: Option<String>,
}

#[derive(Deserialize, Default)]
struct GkeAuthorization {
    granted: Option<bool>,
}

/// A GKE Cloud Audit Log entry (`protoPayload` of `k8s.io`) as an audit event.
fn gke_event(wire: &Wire, payload: &RawValue, origin: &Origin) -> Result<AuditEvent, String> {
    let p: GkePayload = serde_json::from_str(payload.get()).map_err(|e| format!("protoPayload: {e}"))?;
    let method = p.method_name.as_deref().ok_or("protoPayload without methodName")?;
    if !method.starts_with("io.k8s.") {
        return Err(format!("protoPayload method {method:?} is not a Kubernetes API call"));
    }
    let verb = method.rsplit('.').next().unwrap_or_default().to_string();
    let object_ref = p.resource_name.as_deref().map(gke_object_ref);
    let labels: BTreeMap<String, String> = wire
        .labels
        .and_then(|l| serde_json::from_str::<BTreeMap<String, Value>>(l.get()).ok())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(k, v)| v.as_str().map(|s| (k, s.to_string())))
        .collect();
    let mut annotations = labels;
    if !annotations.contains_key("authorization.k8s.io/decision")
        && let Some(granted) = p.authorization_info.as_ref().and_then(|a| a.first()).and_then(|a| a.granted)
    {
        let decision = if granted { "allow" } else { "forbid" };
        annotations.insert("authorization.k8s.io/decision".into(), decision.into());
    }
    // gRPC status codes, as Cloud Audit Logs report them, to the HTTP codes of the API server.
    let response_status = p.status.map(|s| ResponseStatus {
        code: s.code.map(|c| match c {
            0 => 200,
            3 => 400,
            5 => 404,
            6 => 409,
            7 => 403,
            16 => 401,
            _ => 500,
        }),
        message: s.message,
        ..Default::default()
    });
    #[derive(Deserialize)]
    struct Operation {
        id: Option<String>,
    }
    let operation_id = wire.operation.and_then(|o| serde_json::from_str::<Operation>(o.get()).ok()).and_then(|o| o.id);
    let metadata = p.request_metadata.unwrap_or_default();
    let time = wire.timestamp.as_deref().or(wire.receive_timestamp.as_deref()).and_then(parse_time);
    Ok(AuditEvent {
        api_version: None,
        audit_id: operation_id.or_else(|| wire.insert_id.clone()).unwrap_or_else(|| synthetic_id(origin)),
        stage: None,
        level: None,
        verb,
        request_uri: p.resource_name.clone().unwrap_or_default(),
        user: UserInfo {
            username: p.authentication_info.and_then(|a| a.principal_email).unwrap_or_default(),
            ..Default::default()
        },
        impersonated_user: None,
        source_ips: metadata.caller_ip.into_iter().collect(),
        user_agent: metadata.caller_supplied_user_agent,
        object_ref,
        response_status,
        request_object: p.request.map(LazyJson::from_raw),
        response_object: p.response.map(LazyJson::from_raw),
        request_received: time,
        stage_time: time,
        annotations,
        origin: origin.clone(),
        context: Default::default(),
    })
}

/// `core/v1/namespaces/shop/pods/web/exec` → group "", resource pods, namespace shop, name web,
/// subresource exec.
fn gke_object_ref(resource_name: &str) -> ObjectRef {
    let parts: Vec<&str> = resource_name.split('/').filter(|p| !p.is_empty()).collect();
    let (group, version, rest) = match parts.as_slice() {
        [group, version, rest @ ..] => (*group, *version, rest),
        _ => {
            return ObjectRef { resource: Some(resource_name.to_string()), ..Default::default() };
        }
    };
    let (namespace, rest) = match rest {
        ["namespaces", ns, rest @ ..] if !rest.is_empty() => (Some(ns.to_string()), rest),
        _ => (None, rest),
    };
    ObjectRef {
        api_group: Some(if group == "core" { String::new() } else { group.to_string() }),
        api_version: Some(version.to_string()),
        namespace,
        resource: rest.first().map(|s| s.to_string()),
        name: rest.get(1).map(|s| s.to_string()),
        subresource: rest.get(2).map(|s| s.to_string()),
        ..Default::default()
    }
}

/// A record's time: RFC 3339, and the space-separated forms some exporters write
/// (`2022-11-29 00:09:04.38`, read as UTC when no offset is given); kir's one timestamp parser.
pub use kir_core::parse_timestamp as parse_time;

#[cfg(test)]
mod tests {
    use super::*;

    fn run(text: &str) -> (Vec<Record>, Vec<Skipped>) {
        let mut out = Vec::new();
        let mut skipped = Vec::new();
        decode(text, &Origin::new("t", 1), &mut out, &mut skipped);
        (out, skipped)
    }

    fn only_event(text: &str) -> AuditEvent {
        let (out, skipped) = run(text);
        assert!(skipped.is_empty(), "{skipped:?}");
        match out.as_slice() {
            [Record::Audit(e)] => e.clone(),
            other => panic!("expected one event, got {other:?}"),
        }
    }

    #[test]
    fn an_event_with_its_audit_id_is_an_event_whatever_wrapper_members_it_carries() {
        for wrapper in [
            r#""records":[{"kind":"Event","auditID":"b","stage":"ResponseComplete","verb":"delete"}]"#,
            r#""protoPayload":{"methodName":"io.k8s.core.v1.pods.delete"}"#,
            r#""rule":"r","priority":"Warning","output":"o""#,
            r#""logEvents":[{"message":"{}"}]"#,
        ] {
            let e = only_event(&format!(
                r#"{{"kind":"Event","apiVersion":"audit.k8s.io/v1","auditID":"a","stage":"RequestReceived","verb":"get",{wrapper}}}"#
            ));
            assert_eq!((e.audit_id.as_str(), e.verb.as_str()), ("a", "get"), "{wrapper}");
        }
    }

    #[test]
    fn plain_event() {
        let e = only_event(
            r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","auditID":"a1","stage":"ResponseComplete","verb":"get","requestURI":"/api/v1/namespaces/x/secrets/y","user":{"username":"bob","groups":["g"]},"objectRef":{"resource":"secrets","namespace":"x","name":"y"},"responseStatus":{"code":200},"requestReceivedTimestamp":"2026-11-27T23:53:59.836Z","annotations":{"authorization.k8s.io/decision":"allow"}}"#,
        );
        assert_eq!(e.audit_id, "a1");
        assert_eq!(e.stage, Some(Stage::ResponseComplete));
        assert_eq!(e.namespace(), Some("x"));
        assert_eq!(e.response_code(), Some(200));
        assert_eq!(e.decision(), Some("allow"));
        assert_eq!(e.time().unwrap().to_string(), "2026-11-27T23:53:59.836Z");
    }

    #[test]
    fn annotations_that_are_not_strings_keep_their_json_text() {
        let e = only_event(
            r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","auditID":"a1","verb":"get","requestURI":"/x","annotations":{"a":"text","b":3,"c":1.5,"d":true,"e":null,"f":{"x":[1,"y"]},"g":"escaped \u0026 \"quoted\""}}"#,
        );
        let got: Vec<(&str, &str)> = e.annotations.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(
            got,
            [
                ("a", "text"),
                ("b", "3"),
                ("c", "1.5"),
                ("d", "true"),
                ("e", "null"),
                ("f", r#"{"x":[1,"y"]}"#),
                ("g", r#"escaped & "quoted""#)
            ]
        );
        let (_, skipped) = run(r#"{"kind":"Event","auditID":"a1","verb":"get","annotations":["not","a","map"]}"#);
        assert_eq!(skipped[0].kind, SkipKind::NotAuditEvent, "{skipped:?}");
    }

    #[test]
    fn not_an_event_is_refused_with_a_reason() {
        let (out, skipped) = run(r#"{"kind": 0}"#);
        assert!(out.is_empty());
        assert_eq!(skipped[0].kind, SkipKind::NotAuditEvent);
        assert!(skipped[0].detail.contains("not recognized"), "{}", skipped[0].detail);
        let (_, skipped) = run(r#"{"hello": "world"}"#);
        assert_eq!(skipped[0].kind, SkipKind::NotAuditEvent);
        let (_, skipped) = run(r#"{"kind":"Event","verb":"get""#);
        assert_eq!(skipped[0].kind, SkipKind::MalformedJson);
    }

    #[test]
    fn event_list_and_wrappers() {
        let inner = r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","auditID":"a1","verb":"get","requestURI":"/x"}"#;
        let (out, _) =
            run(&format!(r#"{{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[{inner},{inner}]}}"#));
        assert_eq!(out.len(), 2);
        let quoted = serde_json::to_string(inner).unwrap();
        let (out, _) = run(&format!(r#"{{"records":[{{"category":"kube-audit","properties":{{"log":{quoted}}}}}]}}"#));
        assert_eq!(out.len(), 1);
        let (out, _) = run(&format!(r#"{{"@timestamp":"2026-01-01","@message":{quoted}}}"#));
        assert_eq!(out.len(), 1);
        let (out, _) = run(&format!(r#"2026-11-27T23:53:39.802Z {inner}"#));
        assert_eq!(out.len(), 1);
        let (out, _) = run(&format!(
            r#"{{"messageType":"DATA_MESSAGE","logEvents":[{{"id":"1","timestamp":1,"message":{quoted}}}]}}"#
        ));
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn gke_entry() {
        let e = only_event(
            r#"{"protoPayload":{"@type":"type.googleapis.com/google.cloud.audit.AuditLog","methodName":"io.k8s.core.v1.pods.exec.create","resourceName":"core/v1/namespaces/shop/pods/web/exec","authenticationInfo":{"principalEmail":"u@x.com"},"requestMetadata":{"callerIp":"1.2.3.4","callerSuppliedUserAgent":"kubectl"},"status":{"code":7}},"insertId":"i1","timestamp":"2026-01-01T00:00:00Z","labels":{"authorization.k8s.io/decision":"forbid"}}"#,
        );
        assert_eq!(e.verb, "create");
        assert_eq!(e.resource(), Some("pods"));
        assert_eq!(e.subresource(), Some("exec"));
        assert_eq!(e.namespace(), Some("shop"));
        assert_eq!(e.response_code(), Some(403));
        assert_eq!(e.user.username, "u@x.com");
        assert_eq!(e.audit_id, "i1");
    }

    #[test]
    fn falco_alert() {
        let (out, _) = run(
            r#"{"output":"x","priority":"Warning","rule":"Terminal shell in container","time":"2026-01-01T00:00:00.000000000Z","output_fields":{"k8s.pod.name":"web"},"source":"syscall","tags":["T1059"],"hostname":"n1"}"#,
        );
        assert!(
            matches!(&out[0], Record::Falco(a) if a.rule == "Terminal shell in container" && a.output_fields.contains_key("k8s.pod.name"))
        );
    }

    #[test]
    fn lenient_times() {
        assert!(parse_time("2022-11-29 00:09:04.38").is_some());
        assert!(parse_time("2018-10-25T14:09:12Z").is_some());
        assert!(parse_time("yesterday").is_none());
    }
}
