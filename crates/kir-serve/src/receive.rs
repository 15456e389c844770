//! What the receivers accept, cut into the units the store keeps: one audit event (keyed by
//! auditID and stage, so a retried batch adds nothing) or one Falco alert (keyed by a digest of
//! its text).
//!
//! `POST /v1/audit` takes what the kube-apiserver's webhook backend sends (an `audit.k8s.io/v1`
//! `EventList`), a single `Event`, a JSON array of events, or JSON lines. `POST /v1/falco` takes
//! Falco's `http_output` (one alert per request), Falcosidekick's, or JSON lines of alerts.

use std::borrow::Cow;

use kir_audit::{Origin, Record};
use kir_store::NewEvent;
use serde::Deserialize;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

/// What a body held.
#[derive(Debug, Default)]
pub struct Received {
    pub events: Vec<NewEvent>,
    /// Units that are not events: (which, why). The rest of the batch is kept.
    pub skipped: Vec<(String, String)>,
}

impl Received {
    /// Labels every event with the cluster that sent it. The store key names the cluster too,
    /// so one auditID from two clusters is two events, and a retry from one cluster is still
    /// one. (Cluster names hold no `|`.)
    pub fn in_cluster(mut self, cluster: Option<&str>) -> Received {
        if let Some(cluster) = cluster {
            for e in &mut self.events {
                e.key = format!("{cluster}|{}", e.key);
                e.cluster = Some(cluster.to_string());
            }
        }
        self
    }
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    items: Option<Vec<&'a RawValue>>,
}

/// The two fields that name an audit event's stage, read without decoding the rest.
#[derive(Deserialize)]
struct Keys<'a> {
    #[serde(rename = "auditID", borrow)]
    audit_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    stage: Option<Cow<'a, str>>,
    #[serde(borrow)]
    kind: Option<Cow<'a, str>>,
}

/// Cuts a body into units. `Err` when it is not JSON at all.
pub fn split(body: &[u8], falco: bool) -> Result<Received, String> {
    let text =
        std::str::from_utf8(body).map_err(|e| format!("the body is not UTF-8 text (byte {})", e.valid_up_to()))?;
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err("the body is empty".into());
    }
    let mut units: Vec<(String, &str)> = Vec::new();
    if trimmed.starts_with('[') {
        let items: Vec<&RawValue> =
            serde_json::from_str(trimmed).map_err(|e| format!("the body is not a JSON array of events: {e}"))?;
        units.extend(items.into_iter().enumerate().map(|(i, v)| (format!("item {i}"), v.get())));
    } else {
        match serde_json::from_str::<Envelope>(trimmed) {
            Ok(Envelope { kind: Some(kind), items: Some(items) }) if kind == "EventList" => {
                units.extend(items.into_iter().enumerate().map(|(i, v)| (format!("items[{i}]"), v.get())));
            }
            Ok(_) => units.push(("the body".into(), trimmed)),
            // Several JSON texts: JSON lines.
            Err(_) => {
                for (n, line) in text.lines().enumerate() {
                    if !line.trim().is_empty() {
                        units.push((format!("line {}", n + 1), line.trim()));
                    }
                }
            }
        }
    }
    let mut out = Received::default();
    for (which, unit) in units {
        match key_of(unit, falco) {
            Ok((key, kind)) => {
                out.events.push(NewEvent { key, kind: kind.into(), body: unit.to_string(), cluster: None })
            }
            Err(why) => out.skipped.push((which, why)),
        }
    }
    if out.events.is_empty() && !out.skipped.is_empty() && units_all_garbage(&out) {
        let (which, why) = &out.skipped[0];
        return Err(format!("{which}: {why}"));
    }
    Ok(out)
}

fn units_all_garbage(r: &Received) -> bool {
    r.skipped.iter().all(|(_, why)| why.starts_with("not JSON"))
}

fn digest(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// The store key and kind of one unit, after checking it is what the receiver takes.
fn key_of(unit: &str, falco: bool) -> Result<(String, &'static str), String> {
    let keys: Keys = serde_json::from_str(unit).map_err(|e| format!("not JSON: {e}"))?;
    if !falco
        && keys.kind.as_deref().is_none_or(|k| k == "Event")
        && let (Some(id), Some(stage)) = (&keys.audit_id, &keys.stage)
        && !id.is_empty()
    {
        return Ok((format!("{id}/{stage}"), "audit"));
    }
    // Anything else must decode to records: a whole-request event without a stage, a wrapped
    // export, a Falco alert.
    let origin = Origin::new("kir-serve", 0);
    let (mut records, mut skipped) = (Vec::new(), Vec::new());
    kir_audit::decode(unit, &origin, &mut records, &mut skipped);
    match records.as_slice() {
        [] => Err(skipped.first().map(|s| s.detail.clone()).unwrap_or_else(|| "no event in it".into())),
        [Record::Falco(_)] if falco => Ok((format!("falco:{}", digest(unit)), "falco")),
        [Record::Falco(_)] => Err("a Falco alert: send it to /v1/falco".into()),
        _ if falco => Err("not a Falco alert: audit events go to /v1/audit".into()),
        [Record::Audit(e)] if !e.audit_id.is_empty() => {
            Ok((format!("{}/{}", e.audit_id, e.stage.map(|s| format!("{s:?}")).unwrap_or_else(|| "-".into())), "audit"))
        }
        _ => Ok((format!("unit:{}", digest(unit)), "audit")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVENT: &str = r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"a1","stage":"ResponseComplete","requestURI":"/api/v1/pods","verb":"list","user":{"username":"u"},"sourceIPs":["10.0.0.1"],"objectRef":{"resource":"pods","apiVersion":"v1"},"responseStatus":{"code":200},"requestReceivedTimestamp":"2026-01-01T00:00:00.000000Z","stageTimestamp":"2026-01-01T00:00:00.100000Z"}"#;

    #[test]
    fn an_event_list_is_cut_into_its_events() {
        let body = format!(
            r#"{{"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{{}},"items":[{EVENT},{}]}}"#,
            EVENT.replace("a1", "a2")
        );
        let r = split(body.as_bytes(), false).unwrap();
        let keys: Vec<&str> = r.events.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, ["a1/ResponseComplete", "a2/ResponseComplete"]);
        assert_eq!(r.events[0].body, EVENT);
    }

    #[test]
    fn json_lines_and_single_events_are_taken() {
        let body = format!("{EVENT}\n\n{}\n", EVENT.replace("ResponseComplete", "RequestReceived"));
        let r = split(body.as_bytes(), false).unwrap();
        assert_eq!(r.events.len(), 2);
        assert_eq!(split(EVENT.as_bytes(), false).unwrap().events.len(), 1);
    }

    #[test]
    fn a_bad_line_is_said_and_the_rest_kept() {
        let body = format!("{EVENT}\n{{\"hello\": 1\n");
        let r = split(body.as_bytes(), false).unwrap();
        assert_eq!(r.events.len(), 1);
        assert_eq!(r.skipped.len(), 1);
        assert_eq!(r.skipped[0].0, "line 2");
    }

    #[test]
    fn a_cluster_label_keeps_retries_one_and_clusters_apart() {
        let a = split(EVENT.as_bytes(), false).unwrap().in_cluster(Some("prod-a"));
        let b = split(EVENT.as_bytes(), false).unwrap().in_cluster(Some("prod-b"));
        let again = split(EVENT.as_bytes(), false).unwrap().in_cluster(Some("prod-a"));
        assert_eq!(a.events[0].key, "prod-a|a1/ResponseComplete");
        assert_eq!(a.events[0].cluster.as_deref(), Some("prod-a"));
        assert_ne!(a.events[0].key, b.events[0].key);
        assert_eq!(a.events[0].key, again.events[0].key);
        assert_eq!(split(EVENT.as_bytes(), false).unwrap().in_cluster(None).events[0].key, "a1/ResponseComplete");
    }

    #[test]
    fn garbage_is_refused() {
        assert!(split(b"not json", false).is_err());
        assert!(split(b"", false).is_err());
        assert!(split(&[0xff, 0xfe], false).is_err());
    }

    #[test]
    fn falco_alerts_go_to_their_own_receiver() {
        let alert = r#"{"output":"x","priority":"Warning","rule":"Terminal shell in container","time":"2026-01-01T00:00:00.000000000Z","output_fields":{"k8s.ns.name":"default"}}"#;
        let r = split(alert.as_bytes(), true).unwrap();
        assert_eq!(r.events.len(), 1);
        assert!(r.events[0].key.starts_with("falco:"));
        assert!(split(alert.as_bytes(), false).unwrap().events.is_empty());
        assert!(split(EVENT.as_bytes(), true).unwrap().events.is_empty());
    }
}
