//! The HTTP surface: receivers, the REST API under `/api/v1`, health and metrics. Handlers only
//! translate: identity and arguments in, the library call (`kir-store`, `kir-app`), JSON out.

// An answer (401, 403, 400) is the error of a handler's steps: axum's own idiom, and the
// response is built once per request, so its size does not matter.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Extension, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use kir_store::{CloseReason, DetectionFilter, ListFilter, StoreError};
use serde_json::json;

use crate::auth::{Identity, Role, SESSION_COOKIE, cookie};
use crate::{Shared, now_ms};

pub type AppState = Arc<Shared>;

pub fn router(shared: AppState) -> Router {
    let limit = shared.config.body_limit;
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .merge(
            Router::new()
                .route("/v1/audit", post(receive_audit))
                .route("/v1/falco", post(receive_falco))
                .route_layer(middleware::from_fn_with_state(shared.clone(), receiver_gate)),
        )
        .route("/metrics", get(metrics))
        .route("/api/v1/findings", get(findings))
        .route("/api/v1/incidents", get(incidents).post(open_incident))
        .route("/api/v1/incidents/{id}", get(incident))
        .route("/api/v1/incidents/{id}/approvals", get(approvals))
        .route("/api/v1/incidents/{id}/{action}", post(incident_action))
        .route("/api/v1/actions", get(actions))
        .route("/api/v1/metrics", get(response_metrics))
        .route("/api/v1/rules", get(rules))
        .route("/api/v1/plan", get(plan))
        .route("/api/v1/reload", post(reload))
        .route("/api/v1/tokens", get(tokens))
        .route("/openapi.json", get(openapi))
        .merge(crate::ui::routes())
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(limit))
        .layer(middleware::from_fn_with_state(shared.clone(), timed))
        .with_state(shared)
}

async fn timed(State(s): State<AppState>, request: Request, next: Next) -> Response {
    let start = Instant::now();
    let response = next.run(request).await;
    s.metrics.request_latency.observe(start.elapsed().as_secs_f64());
    response
}

/// An error answer: status and a JSON `{"error": …}`.
pub fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({"error": message.into()}))).into_response()
}

/// A store answer as JSON, or its error.
fn json_or_error<T: serde::Serialize>(result: kir_store::Result<T>) -> Response {
    match result {
        Ok(v) => axum::Json(v).into_response(),
        Err(e) => store_error(e),
    }
}

fn store_error(e: StoreError) -> Response {
    match e {
        StoreError::NoIncident(_) => error(StatusCode::NOT_FOUND, e.to_string()),
        StoreError::Refused(_) => error(StatusCode::CONFLICT, e.to_string()),
        other => {
            tracing::error!(error = %other, "store error");
            error(StatusCode::SERVICE_UNAVAILABLE, other.to_string())
        }
    }
}

/// Who is calling: a bearer token, or a UI session cookie. `None` without valid credentials.
pub async fn identify(s: &Shared, headers: &HeaderMap) -> Option<(Identity, Option<crate::auth::Session>)> {
    if let Some(value) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        let token = value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer "))?;
        return s.tokens.check(token.trim()).await.map(|who| (who, None));
    }
    let cookies = headers.get(header::COOKIE).and_then(|v| v.to_str().ok())?;
    let session = s.sessions.get(cookie(cookies, SESSION_COOKIE)?)?;
    Some((session.who.clone(), Some(session)))
}

/// The caller, when it holds `needed`; else the 401 or 403 to answer.
pub async fn require(s: &Shared, headers: &HeaderMap, needed: Role) -> Result<Identity, Response> {
    match identify(s, headers).await {
        None => {
            let mut r =
                error(StatusCode::UNAUTHORIZED, "credentials needed: Authorization: Bearer TOKEN (kir token create)");
            r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"kir\""));
            Err(r)
        }
        Some((who, _)) if who.role.allows(needed) => Ok(who),
        Some((who, _)) => Err(error(
            StatusCode::FORBIDDEN,
            format!("{} has role {}; this needs {}", who.name, who.role.as_str(), describe(needed)),
        )),
    }
}

fn describe(role: Role) -> String {
    match role {
        Role::Ingest => "ingest or admin".into(),
        Role::Admin => "admin".into(),
        other => format!("{} or above", other.as_str()),
    }
}

async fn not_found(State(s): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(r) = require(&s, &headers, Role::Viewer).await {
        return r;
    }
    error(StatusCode::NOT_FOUND, "no such endpoint; see /api/v1 in docs/serve.md")
}

async fn readyz(State(s): State<AppState>) -> Response {
    match s.store.last_event_seq().await {
        Ok(_) => (StatusCode::OK, format!("ready: store reachable, {} rules loaded\n", rule_count(&s))).into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: store: {e}\n")).into_response(),
    }
}

fn rule_count(s: &Shared) -> usize {
    let e = s.engine();
    e.rules.detections.len() + e.rules.correlations.len()
}

async fn metrics(State(s): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(r) = require(&s, &headers, Role::Viewer).await {
        return r;
    }
    let text = s.metrics.render(rule_count(&s), s.in_flight.load(Ordering::Relaxed));
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

#[utoipa::path(post, path = "/v1/audit", tag = "receivers",
    params(("cluster" = Option<String>, Query, description = "The cluster that sends: labels every event (a token made with --cluster names its own; another is refused)")),
    request_body(content = String, content_type = "application/json", description = "An audit.k8s.io/v1 EventList (what the apiserver's webhook sends), an Event, a JSON array of events, or JSON lines"),
    responses((status = 200, description = "Stored; answered only once on disk", body = crate::openapi::Received),
        (status = 400, description = "Not JSON", body = crate::openapi::ErrorBody), (status = 401, description = "No credentials", body = crate::openapi::ErrorBody), (status = 403, description = "A role that may not", body = crate::openapi::ErrorBody),
        (status = 413, description = "Larger than --body-limit-mib"),
        (status = 429, description = "Full: send it again after Retry-After", body = crate::openapi::ErrorBody),
        (status = 503, description = "The store could not take it", body = crate::openapi::ErrorBody)))]
pub async fn receive_audit(State(s): State<AppState>, Extension(who): Extension<Identity>, body: Bytes) -> Response {
    receive(s, who, body, false).await
}

#[utoipa::path(post, path = "/v1/falco", tag = "receivers",
    params(("cluster" = Option<String>, Query, description = "The cluster that sends: labels every event (a token made with --cluster names its own; another is refused)")),
    request_body(content = String, content_type = "application/json", description = "A Falco alert (http_output, Falcosidekick) or JSON lines of alerts"),
    responses((status = 200, description = "Stored", body = crate::openapi::Received), (status = 401, description = "No credentials", body = crate::openapi::ErrorBody), (status = 403, description = "A role that may not", body = crate::openapi::ErrorBody),
        (status = 429, description = "Full: send it again after Retry-After", body = crate::openapi::ErrorBody)))]
pub async fn receive_falco(State(s): State<AppState>, Extension(who): Extension<Identity>, body: Bytes) -> Response {
    receive(s, who, body, true).await
}

struct InFlight<'a>(&'a std::sync::atomic::AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn too_busy(s: &Shared, why: &str) -> Response {
    s.metrics.batches_refused.fetch_add(1, Ordering::Relaxed);
    let mut r = error(StatusCode::TOO_MANY_REQUESTS, format!("{why}: send the batch again later"));
    r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    r
}

/// Before a batch's body is read: the sender may send (ingest), and kir can take it now. A
/// batch being received or stored holds a slot; with every slot taken, or live detection too
/// far behind, the answer is 429 with Retry-After, so the sender keeps the batch and retries
/// instead of kir's memory growing.
async fn receiver_gate(State(s): State<AppState>, mut request: Request, next: Next) -> Response {
    let certified = request.extensions().get::<crate::tls::ClientCert>().cloned();
    let who = match certified {
        // A sender with a client certificate of --client-ca and no token: an ingest identity.
        Some(cert) if !request.headers().contains_key(header::AUTHORIZATION) => {
            Identity { token_id: format!("cert:{}", cert.0), name: cert.0, role: Role::Ingest, cluster: None }
        }
        _ => match require(&s, request.headers(), Role::Ingest).await {
            Ok(w) => w,
            Err(r) => return r,
        },
    };
    let who = match sender_cluster(who, request.uri()) {
        Ok(w) => w,
        Err(r) => return r,
    };
    request.extensions_mut().insert(who);
    if s.metrics.detection_lag.load(Ordering::Relaxed) > s.config.max_lag {
        return too_busy(&s, "live detection is behind");
    }
    let n = s.in_flight.fetch_add(1, Ordering::SeqCst);
    let _slot = InFlight(&s.in_flight);
    if n >= s.config.max_in_flight {
        return too_busy(&s, "too many batches at once");
    }
    next.run(request).await
}

/// The cluster a batch comes from: the token's (`kir token create --cluster`), else the
/// receiver URL's `?cluster=` (one token or client certificate for a fleet, one URL per
/// cluster). A `?cluster=` that contradicts the token is refused: a sender cannot speak for a
/// cluster it was not given.
fn sender_cluster(mut who: Identity, uri: &axum::http::Uri) -> Result<Identity, Response> {
    let asked = match Query::<HashMap<String, String>>::try_from_uri(uri) {
        Ok(Query(mut q)) => q.remove("cluster"),
        Err(e) => return Err(error(StatusCode::BAD_REQUEST, format!("the query: {e}"))),
    };
    match (&who.cluster, asked) {
        (_, Some(asked)) if kir_core::cluster_name(&asked).is_err() => {
            Err(error(StatusCode::BAD_REQUEST, format!("cluster: {}", kir_core::cluster_name(&asked).unwrap_err())))
        }
        (Some(own), Some(asked)) if *own != asked => Err(error(
            StatusCode::FORBIDDEN,
            format!(
                "this token sends for cluster {own:?}, not {asked:?}: drop ?cluster= or use the token of {asked:?}"
            ),
        )),
        (None, Some(asked)) => {
            who.cluster = Some(asked);
            Ok(who)
        }
        _ => Ok(who),
    }
}

/// A batch in, from a sender the gate let through: stored (each event once) before the 200.
async fn receive(s: AppState, who: Identity, body: Bytes, falco: bool) -> Response {
    let cluster = who.cluster.clone();
    let split = move || crate::receive::split(&body, falco).map(|r| r.in_cluster(cluster.as_deref()));
    let received = match tokio::task::spawn_blocking(split).await {
        Ok(Ok(r)) => r,
        Ok(Err(why)) => {
            s.metrics.batches_failed.fetch_add(1, Ordering::Relaxed);
            return error(StatusCode::BAD_REQUEST, why);
        }
        Err(_) => return error(StatusCode::INTERNAL_SERVER_ERROR, "the batch could not be read"),
    };
    let total = received.events.len() as u64;
    s.metrics.events_received.fetch_add(total, Ordering::Relaxed);
    s.metrics.events_skipped.fetch_add(received.skipped.len() as u64, Ordering::Relaxed);
    for (which, why) in received.skipped.iter().take(5) {
        tracing::warn!(sender = %who.name, "{which} of a batch is not an event: {why}");
    }
    match s.store.append_events(&received.events, &who.name, now_ms()).await {
        Ok(added) => {
            s.metrics.events_stored.fetch_add(added, Ordering::Relaxed);
            s.metrics.events_duplicate.fetch_add(total - added, Ordering::Relaxed);
            s.metrics.batches_accepted.fetch_add(1, Ordering::Relaxed);
            s.wake.notify_one();
            let skipped: Vec<_> = received.skipped.iter().map(|(w, why)| json!({"where": w, "problem": why})).collect();
            axum::Json(json!({"stored": added, "duplicates": total - added, "skipped": skipped})).into_response()
        }
        Err(e) => {
            s.metrics.batches_failed.fetch_add(1, Ordering::Relaxed);
            tracing::error!(error = %e, "a batch could not be stored; the sender will retry");
            let mut r = error(StatusCode::SERVICE_UNAVAILABLE, format!("not stored: {e}"));
            r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            r
        }
    }
}

fn time_param(q: &HashMap<String, String>, name: &str) -> Result<Option<i64>, Response> {
    match q.get(name).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => kir_core::parse_time_arg(v, kir_core::now)
            .map(|t| Some(t.as_millisecond()))
            .map_err(|e| error(StatusCode::BAD_REQUEST, format!("{name}: {e}"))),
    }
}

fn int_param(q: &HashMap<String, String>, name: &str) -> Result<Option<i64>, Response> {
    match q.get(name).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => v
            .parse::<i64>()
            .map(Some)
            .map_err(|_| error(StatusCode::BAD_REQUEST, format!("{name}: {v:?} is not a whole number"))),
    }
}

/// `GET /api/v1/findings`: what live detection found, filtered and paged in the database.
/// `?format=jsonl` is `kir hunt --format jsonl`'s contract, line for line.
#[utoipa::path(get, path = "/api/v1/findings", tag = "findings",
    params(("since" = Option<String>, Query, description = "RFC 3339 or an age (2h)"), ("until" = Option<String>, Query),
        ("severity" = Option<String>, Query, description = "The least severity"), ("rule" = Option<String>, Query),
        ("namespace" = Option<String>, Query), ("actor" = Option<String>, Query), ("cluster" = Option<String>, Query, description = "Only findings from this cluster"), ("after" = Option<i64>, Query, description = "Paging: after this id"),
        ("limit" = Option<i64>, Query), ("format" = Option<String>, Query, description = "json (default) or jsonl: kir hunt --format jsonl, line for line")),
    responses((status = 200, description = "Live detection's findings, in the order found", body = Vec<crate::openapi::Finding>), (status = 401, description = "No credentials", body = crate::openapi::ErrorBody), (status = 403, description = "A role that may not", body = crate::openapi::ErrorBody)))]
pub async fn findings(
    State(s): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Err(r) = require(&s, &headers, Role::Viewer).await {
        return r;
    }
    let filter = match findings_filter(&s, &q).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let list = match s.store.detections(&filter).await {
        Ok(l) => l,
        Err(e) => return store_error(e),
    };
    match q.get("format").map(String::as_str) {
        Some("jsonl") => {
            let mut out = String::new();
            for d in &list {
                out.push_str(&d.body);
                out.push('\n');
            }
            ([(header::CONTENT_TYPE, "application/jsonl")], out).into_response()
        }
        None | Some("json") => {
            let body = format!("[{}]", list.iter().map(|d| d.body.as_str()).collect::<Vec<_>>().join(","));
            ([(header::CONTENT_TYPE, "application/json")], body).into_response()
        }
        Some(other) => error(StatusCode::BAD_REQUEST, format!("format {other:?}: json or jsonl")),
    }
}

/// The filter of a findings request; findings of a `routine:` rule by an identity that does it
/// as its everyday work are left out, as `kir hunt` leaves them out.
pub async fn findings_filter(s: &Shared, q: &HashMap<String, String>) -> Result<DetectionFilter, Response> {
    let min_severity_rank = match q.get("severity").filter(|v| !v.is_empty()) {
        None => None,
        Some(v) => Some(v.parse::<kir_detect::Level>().map_err(|e| error(StatusCode::BAD_REQUEST, e))? as i64),
    };
    let mut filter = DetectionFilter {
        since_ms: time_param(q, "since")?,
        until_ms: time_param(q, "until")?,
        min_severity_rank,
        rule_id: q.get("rule").filter(|v| !v.is_empty()).cloned(),
        namespace: q.get("namespace").filter(|v| !v.is_empty()).cloned(),
        actor: q.get("actor").filter(|v| !v.is_empty()).cloned(),
        cluster: q.get("cluster").filter(|v| !v.is_empty()).cloned(),
        after_id: int_param(q, "after")?,
        limit: int_param(q, "limit")?,
        exclude: Vec::new(),
    };
    let engine = s.engine();
    for rule in &engine.rules.detections {
        if let Some(routine) = &rule.meta.routine {
            let actors = s
                .store
                .routine_actors(&rule.meta.id, routine.events as i64, routine.over.as_millis())
                .await
                .map_err(store_error)?;
            filter.exclude.extend(actors.into_iter().map(|a| (rule.meta.id.clone(), a)));
        }
    }
    Ok(filter)
}

/// `GET /api/v1/incidents`: the same objects as `kir incident list --format json`.
#[utoipa::path(get, path = "/api/v1/incidents", tag = "incidents",
    params(("state" = Option<String>, Query, description = "Comma-separated states"), ("open" = Option<bool>, Query),
        ("severity" = Option<String>, Query), ("type" = Option<String>, Query), ("owner" = Option<String>, Query), ("since" = Option<String>, Query),
        ("cluster" = Option<String>, Query, description = "Only incidents with a finding from this cluster")),
    responses((status = 200, description = "kir incident list --format json", body = Vec<crate::openapi::IncidentSummary>), (status = 401, description = "No credentials", body = crate::openapi::ErrorBody), (status = 403, description = "A role that may not", body = crate::openapi::ErrorBody)))]
pub async fn incidents(
    State(s): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Err(r) = require(&s, &headers, Role::Viewer).await {
        return r;
    }
    let states = match q.get("state").filter(|v| !v.is_empty()) {
        None => Vec::new(),
        Some(v) => match v.split(',').map(|s| s.trim().parse()).collect::<Result<Vec<_>, String>>() {
            Ok(s) => s,
            Err(e) => return error(StatusCode::BAD_REQUEST, e),
        },
    };
    let min_severity = match q.get("severity").filter(|v| !v.is_empty()).map(|v| v.parse::<kir_detect::Level>()) {
        None => None,
        Some(Ok(l)) => Some(l),
        Some(Err(e)) => return error(StatusCode::BAD_REQUEST, e),
    };
    let since_ms = match time_param(&q, "since") {
        Ok(t) => t,
        Err(r) => return r,
    };
    let filter = ListFilter {
        states,
        open_only: q.get("open").is_some_and(|v| v != "false"),
        min_severity,
        incident_type: q.get("type").cloned(),
        owner: q.get("owner").cloned(),
        since_ms,
        cluster: q.get("cluster").filter(|v| !v.is_empty()).cloned(),
    };
    match s.store.list(&filter).await {
        Ok(list) => axum::Json(list.iter().map(kir_store::Incident::summary_json).collect::<Vec<_>>()).into_response(),
        Err(e) => store_error(e),
    }
}

/// `GET /api/v1/incidents/ID`: the same object as `kir incident show ID --format json`.
#[utoipa::path(get, path = "/api/v1/incidents/{id}", tag = "incidents", params(("id" = i64, Path)),
    responses((status = 200, description = "kir incident show ID --format json", body = crate::openapi::IncidentRecord),
        (status = 404, body = crate::openapi::ErrorBody), (status = 401, description = "No credentials", body = crate::openapi::ErrorBody), (status = 403, description = "A role that may not", body = crate::openapi::ErrorBody)))]
pub async fn incident(State(s): State<AppState>, headers: HeaderMap, Path(id): Path<i64>) -> Response {
    if let Err(r) = require(&s, &headers, Role::Viewer).await {
        return r;
    }
    match kir_app::incident_record(&s.store, id).await {
        Ok(r) => axum::Json(kir_app::incident_json(&r)).into_response(),
        Err(e) => store_error(e),
    }
}

/// `GET /api/v1/incidents/ID/approvals`: the playbook steps waiting for a role's approval.
#[utoipa::path(get, path = "/api/v1/incidents/{id}/approvals", tag = "incidents", params(("id" = i64, Path)),
    responses((status = 200, description = "Steps waiting for approval", body = Vec<crate::openapi::Waiting>), (status = 404, body = crate::openapi::ErrorBody), (status = 401, description = "No credentials", body = crate::openapi::ErrorBody), (status = 403, description = "A role that may not", body = crate::openapi::ErrorBody)))]
pub async fn approvals(State(s): State<AppState>, headers: HeaderMap, Path(id): Path<i64>) -> Response {
    if let Err(r) = require(&s, &headers, Role::Viewer).await {
        return r;
    }
    let incident = match s.store.incident(id).await {
        Ok(i) => i,
        Err(e) => return store_error(e),
    };
    match s.store.timeline(id).await {
        Ok(t) => axum::Json(kir_app::playbook::waiting(&s.engine().plan, &incident.incident_type, &t)).into_response(),
        Err(e) => store_error(e),
    }
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
pub struct ActionBody {
    pub note: Option<String>,
    /// `assign`: a role of the plan or a person.
    pub to: Option<String>,
    /// `close`: true-positive, false-positive, benign, duplicate.
    pub reason: Option<String>,
    /// `note`: the text.
    pub text: Option<String>,
    /// `approve`, `reject`: the step (from 1); the latest waiting step when left out.
    pub step: Option<usize>,
}

/// The role an incident action needs.
pub fn needed_for(action: &str) -> Role {
    match action {
        "approve" | "reject" => Role::Approver,
        _ => Role::Responder,
    }
}

/// What an incident action does, the same store call as its `kir incident` command.
pub async fn act(
    s: &Shared,
    id: i64,
    action: &str,
    body: ActionBody,
    who: &Identity,
) -> Result<serde_json::Value, Response> {
    let now = now_ms();
    let store = &s.store;
    let name = who.name.as_str();
    let changed = match action {
        "ack" => store.acknowledge(id, name, now).await,
        "contain" => store.contain(id, name, now, body.note).await,
        "resolve" => store.resolve(id, name, now, body.note).await,
        "reopen" => store.reopen(id, name, now, body.note).await,
        "close" => {
            let reason: CloseReason = body
                .reason
                .as_deref()
                .unwrap_or("true-positive")
                .parse()
                .map_err(|e: String| error(StatusCode::BAD_REQUEST, e))?;
            store.close(id, reason, name, now, body.note).await
        }
        "assign" => {
            let Some(to) = body.to.filter(|t| !t.is_empty()) else {
                return Err(error(
                    StatusCode::BAD_REQUEST,
                    "assign: say to whom (\"to\": a role of the plan or a person)",
                ));
            };
            let is_role = s.engine().plan.roles.iter().any(|r| r.id == to);
            let (role, person) = if is_role { (Some(to), None) } else { (None, Some(to)) };
            store.assign(id, role, person, name, now).await
        }
        "note" => {
            let Some(text) = body.text.or(body.note).filter(|t| !t.trim().is_empty()) else {
                return Err(error(StatusCode::BAD_REQUEST, "note: the text is missing (\"text\")"));
            };
            match store.note(id, &text, name, now).await {
                Ok(()) => store.incident(id).await,
                Err(e) => Err(e),
            }
        }
        "escalate" => match store.escalate(id, name, now).await {
            Ok(fired) => {
                let engine = s.engine();
                let sent = kir_app::send_for(store, &engine.plan, std::slice::from_ref(&fired), now, true, name)
                    .await
                    .map_err(store_error)?;
                for p in sent.problems {
                    tracing::warn!("{p}");
                }
                store.incident(id).await
            }
            Err(e) => Err(e),
        },
        "approve" | "reject" => {
            let engine = s.engine();
            let (step, note) = (body.step, body.note.as_deref());
            let done = if action == "approve" {
                kir_app::playbook::approve(store, &engine.plan, id, step, name, note, now).await
            } else {
                kir_app::playbook::reject(store, &engine.plan, id, step, name, note, now).await
            }
            .map_err(store_error)?;
            return Ok(
                json!({"step": done.step, "message": done.message, "member": done.member, "already": done.already}),
            );
        }
        other => {
            return Err(error(
                StatusCode::NOT_FOUND,
                format!(
                    "no incident action {other:?}: ack, assign, note, escalate, contain, resolve, close, reopen, approve, reject"
                ),
            ));
        }
    };
    changed.map(|i| i.summary_json()).map_err(store_error)
}

#[utoipa::path(post, path = "/api/v1/incidents/{id}/{action}", tag = "incidents",
    params(("id" = i64, Path), ("action" = String, Path, description = "ack, assign, note, escalate, contain, resolve, close, reopen (responder); approve, reject (approver)")),
    request_body(content = Option<crate::openapi::ActionBody>),
    responses((status = 200, description = "The incident now, or the approval decision", body = crate::openapi::ActionResult),
        (status = 400, body = crate::openapi::ErrorBody), (status = 404, body = crate::openapi::ErrorBody),
        (status = 409, description = "Refused: a transition the incident's state does not allow, a step that needs no approval, the two-person rule", body = crate::openapi::ErrorBody), (status = 401, description = "No credentials", body = crate::openapi::ErrorBody), (status = 403, description = "A role that may not", body = crate::openapi::ErrorBody)))]
pub async fn incident_action(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path((id, action)): Path<(i64, String)>,
    body: Bytes,
) -> Response {
    let who = match require(&s, &headers, needed_for(&action)).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let body: ActionBody = if body.iter().all(u8::is_ascii_whitespace) {
        ActionBody::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(b) => b,
            Err(e) => {
                return error(StatusCode::BAD_REQUEST, format!("the body is not the JSON this action takes: {e}"));
            }
        }
    };
    match act(&s, id, &action, body, &who).await {
        Ok(v) => axum::Json(v).into_response(),
        Err(r) => r,
    }
}

#[derive(Debug, serde::Deserialize)]
struct OpenBody {
    title: String,
    #[serde(rename = "type")]
    incident_type: Option<String>,
    severity: kir_detect::Level,
    description: Option<String>,
    assign: Option<String>,
}

/// `POST /api/v1/incidents`: a responder opens an incident by hand (`kir incident open`).
#[utoipa::path(post, path = "/api/v1/incidents", tag = "incidents", request_body = crate::openapi::OpenIncident,
    responses((status = 201, description = "Opened", body = crate::openapi::IncidentSummary), (status = 400, body = crate::openapi::ErrorBody),
        (status = 409, description = "Refused by the plan (an unknown type)", body = crate::openapi::ErrorBody), (status = 401, description = "No credentials", body = crate::openapi::ErrorBody), (status = 403, description = "A role that may not", body = crate::openapi::ErrorBody)))]
pub async fn open_incident(State(s): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let who = match require(&s, &headers, Role::Responder).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let b: OpenBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => {
            return error(StatusCode::BAD_REQUEST, format!("{{title, severity, type?, description?, assign?}}: {e}"));
        }
    };
    let engine = s.engine();
    let open = kir_app::OpenIncident {
        title: b.title,
        incident_type: b.incident_type,
        severity: b.severity,
        description: b.description,
        assign: b.assign,
        event_time: None,
    };
    match kir_app::open_incident(&s.store, &engine.plan, open, &who.name, now_ms()).await {
        Ok((id, _, _)) => match s.store.incident(id).await {
            Ok(i) => (StatusCode::CREATED, axum::Json(i.summary_json())).into_response(),
            Err(e) => store_error(e),
        },
        Err(e) => store_error(e),
    }
}

#[utoipa::path(get, path = "/api/v1/actions", tag = "incidents",
    params(("incident" = Option<i64>, Query, description = "Only this incident's actions")),
    responses((status = 200, description = "Containment and collection actions recorded (kir contain, kir respond), with the state before for undo", body = Vec<crate::openapi::Action>), (status = 401, description = "No credentials", body = crate::openapi::ErrorBody), (status = 403, description = "A role that may not", body = crate::openapi::ErrorBody)))]
pub async fn actions(
    State(s): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Err(r) = require(&s, &headers, Role::Viewer).await {
        return r;
    }
    json_or_error(match int_param(&q, "incident") {
        Ok(Some(id)) => s.store.incident_actions(id).await,
        Ok(None) => s.store.actions().await,
        Err(r) => return r,
    })
}

#[utoipa::path(get, path = "/api/v1/metrics", tag = "incidents",
    params(("since" = Option<String>, Query, description = "Incidents opened since (RFC 3339 or an age: 90d)")),
    responses((status = 200, description = "kir metrics --format json: time to detect, acknowledge, contain, resolve", body = Object), (status = 401, description = "No credentials", body = crate::openapi::ErrorBody), (status = 403, description = "A role that may not", body = crate::openapi::ErrorBody)))]
pub async fn response_metrics(
    State(s): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Err(r) = require(&s, &headers, Role::Viewer).await {
        return r;
    }
    let since = match time_param(&q, "since") {
        Ok(t) => t,
        Err(r) => return r,
    };
    json_or_error(kir_app::response_metrics(&s.store, since).await)
}

#[utoipa::path(get, path = "/api/v1/rules", tag = "plan and rules",
    responses((status = 200, description = "The loaded rules", body = Vec<crate::openapi::RuleSummary>), (status = 401, description = "No credentials", body = crate::openapi::ErrorBody), (status = 403, description = "A role that may not", body = crate::openapi::ErrorBody)))]
pub async fn rules(State(s): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(r) = require(&s, &headers, Role::Viewer).await {
        return r;
    }
    let engine = s.engine();
    let list: Vec<_> = engine
        .rules
        .detections
        .iter()
        .map(|r| &r.meta)
        .chain(engine.rules.correlations.iter().map(|c| &c.meta))
        .map(|m| json!({"id": m.id, "title": m.title, "severity": m.severity(), "techniques": m.techniques, "tactics": m.tactics, "threat_matrix": m.threat_matrix}))
        .collect();
    axum::Json(list).into_response()
}

#[utoipa::path(get, path = "/api/v1/plan", tag = "plan and rules",
    responses((status = 200, description = "The plan, rendered as Markdown", body = String, content_type = "text/markdown"), (status = 401, description = "No credentials", body = crate::openapi::ErrorBody), (status = 403, description = "A role that may not", body = crate::openapi::ErrorBody)))]
pub async fn plan(State(s): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(r) = require(&s, &headers, Role::Viewer).await {
        return r;
    }
    let engine = s.engine();
    ([(header::CONTENT_TYPE, "text/markdown; charset=utf-8")], kir_plan::render::markdown(&engine.plan, now_ms()))
        .into_response()
}

#[utoipa::path(post, path = "/api/v1/reload", tag = "operations",
    responses((status = 200, description = "Reloaded", body = crate::openapi::Reloaded),
        (status = 422, description = "Refused: the rules or the plan do not check; the running ones stay", body = crate::openapi::ErrorBody), (status = 401, description = "No credentials", body = crate::openapi::ErrorBody), (status = 403, description = "A role that may not", body = crate::openapi::ErrorBody)))]
pub async fn reload(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let who = match require(&s, &headers, Role::Admin).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    match s.reload() {
        Ok(said) => {
            tracing::info!(by = %who.name, "{said}");
            axum::Json(json!({"reloaded": said})).into_response()
        }
        Err(e) => {
            error(StatusCode::UNPROCESSABLE_ENTITY, format!("reload refused, the running rules and plan stay: {e}"))
        }
    }
}

#[utoipa::path(get, path = "/api/v1/tokens", tag = "operations",
    responses((status = 200, description = "Every token, never a secret", body = Vec<crate::openapi::Token>), (status = 401, description = "No credentials", body = crate::openapi::ErrorBody), (status = 403, description = "A role that may not", body = crate::openapi::ErrorBody)))]
pub async fn tokens(State(s): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(r) = require(&s, &headers, Role::Admin).await {
        return r;
    }
    json_or_error(s.store.tokens().await)
}

/// `GET /openapi.json`: this API's OpenAPI 3.1 document.
async fn openapi(State(s): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(r) = require(&s, &headers, Role::Viewer).await {
        return r;
    }
    ([(header::CONTENT_TYPE, "application/json")], crate::openapi::document()).into_response()
}
