//! The web UI, rendered on the server (maud: escaping by default, no build step, nothing to
//! download): the incident board, an incident's page with its actions, findings search, the
//! plan and the rules. Logging in turns a token into a session cookie (`HttpOnly`,
//! `SameSite=Strict`); every form carries the session's CSRF token.

// An answer (401, 403, 400) is the error of a handler's steps: axum's own idiom, and the
// response is built once per request, so its size does not matter.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;

use axum::Router;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::{DOCTYPE, Markup, PreEscaped, html};

use crate::api::{ActionBody, AppState, act, findings_filter, identify};
use crate::auth::{Identity, Role, SESSION_COOKIE, Session, cookie};
use crate::now_ms;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(board))
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/incidents/{id}", get(incident_page))
        .route("/incidents/{id}/{action}", post(incident_form))
        .route("/findings", get(findings_page))
        .route("/plan", get(plan_page))
        .route("/rules", get(rules_page))
        .route("/assets/kir.css", get(css))
}

const CSS: &str = include_str!("../assets/kir.css");

async fn css() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "max-age=3600")], CSS).into_response()
}

fn page(title: &str, who: Option<&Session>, refresh: bool, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                @if refresh { meta http-equiv="refresh" content="10"; }
                title { (title) " · kir" }
                link rel="stylesheet" href="/assets/kir.css";
            }
            body {
                a class="skip" href="#main" { "Skip to content" }
                header {
                    nav aria-label="main" {
                        a href="/" { strong { "kir" } }
                        a href="/" { "Incidents" }
                        a href="/findings" { "Findings" }
                        a href="/plan" { "Plan" }
                        a href="/rules" { "Rules" }
                        @if let Some(s) = who {
                            form method="post" action="/logout" class="inline" {
                                input type="hidden" name="csrf" value=(s.csrf);
                                span class="who" { (s.who.name) " (" (s.who.role.as_str()) ")" }
                                button type="submit" { "Log out" }
                            }
                        }
                    }
                }
                main id="main" { (body) }
            }
        }
    }
}

/// The viewer, or the login page (401) for a browser without a session.
async fn viewer(s: &AppState, headers: &HeaderMap, needed: Role) -> Result<(Identity, Option<Session>), Response> {
    match identify(s, headers).await {
        Some((who, session)) if who.role.allows(needed) => Ok((who, session)),
        Some((who, session)) => Err((
            StatusCode::FORBIDDEN,
            Html(page("Not allowed", session.as_ref(), false, html! {
                h1 { "Not allowed" }
                p { (who.name) " has role " (who.role.as_str()) "; this page needs " (needed.as_str()) " or above." }
            }).into_string()),
        )
            .into_response()),
        None => Err((StatusCode::UNAUTHORIZED, Html(login_form(None).into_string())).into_response()),
    }
}

fn login_form(problem: Option<&str>) -> Markup {
    page(
        "Log in",
        None,
        false,
        html! {
            h1 { "Log in to kir" }
            @if let Some(p) = problem { p class="problem" role="alert" { (p) } }
            form method="post" action="/login" class="login" {
                label for="token" { "API token" }
                input id="token" name="token" type="password" autocomplete="current-password" required autofocus;
                p class="hint" { "Your token comes from " code { "kir token create --role responder --name YOU" } "." }
                button type="submit" { "Log in" }
            }
        },
    )
}

async fn login_page() -> Response {
    Html(login_form(None).into_string()).into_response()
}

async fn login(State(s): State<AppState>, Form(form): Form<HashMap<String, String>>) -> Response {
    let token = form.get("token").map(|t| t.trim()).unwrap_or("");
    match s.tokens.check(token).await {
        Some(who) if who.role != Role::Ingest => {
            tracing::info!(who = %who.name, "logged in to the UI");
            let id = s.sessions.open(who);
            let mut r = Redirect::to("/").into_response();
            let secure = if s.config.tls.is_some() { "; Secure" } else { "" };
            let cookie = format!("{SESSION_COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict{secure}");
            if let Ok(v) = HeaderValue::from_str(&cookie) {
                r.headers_mut().insert(header::SET_COOKIE, v);
            }
            r
        }
        Some(_) => (
            StatusCode::FORBIDDEN,
            Html(login_form(Some("An ingest token cannot log in: it only sends events.")).into_string()),
        )
            .into_response(),
        None => (
            StatusCode::UNAUTHORIZED,
            Html(login_form(Some("That token is not valid (or was revoked).")).into_string()),
        )
            .into_response(),
    }
}

fn csrf_ok(session: Option<&Session>, form: &HashMap<String, String>) -> bool {
    session.is_some_and(|s| form.get("csrf").is_some_and(|c| *c == s.csrf))
}

async fn logout(State(s): State<AppState>, headers: HeaderMap, Form(form): Form<HashMap<String, String>>) -> Response {
    let id = headers.get(header::COOKIE).and_then(|v| v.to_str().ok()).and_then(|c| cookie(c, SESSION_COOKIE));
    if let Some(id) = id
        && csrf_ok(s.sessions.get(id).as_ref(), &form)
    {
        s.sessions.close(id);
    }
    let mut r = Redirect::to("/login").into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("kir_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    r
}

fn severity_badge(severity: &str) -> Markup {
    html! { span class={"sev sev-" (severity)} { (severity.to_uppercase()) } }
}

fn when(ms: i64) -> String {
    kir_store::rfc3339(ms)
}

async fn board(State(s): State<AppState>, headers: HeaderMap, Query(q): Query<HashMap<String, String>>) -> Response {
    let (who, session) = match viewer(&s, &headers, Role::Viewer).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let filter = kir_store::ListFilter { open_only: true, ..Default::default() };
    let mut open = match s.store.list(&filter).await {
        Ok(l) => l,
        Err(e) => return (StatusCode::SERVICE_UNAVAILABLE, format!("store: {e}")).into_response(),
    };
    // The choice offered is every cluster with an open incident, so a responder for one
    // cluster of a fleet sees what can be picked without knowing the names by heart.
    let clusters: std::collections::BTreeSet<String> =
        open.iter().flat_map(|i| i.cluster_list().map(str::to_owned)).collect();
    let chosen = q.get("cluster").filter(|c| !c.is_empty()).cloned();
    if let Some(c) = &chosen {
        open.retain(|i| i.cluster_list().any(|ic| ic == c));
    }
    open.sort_by(|a, b| sev_rank(&b.severity).cmp(&sev_rank(&a.severity)).then(b.updated_at.cmp(&a.updated_at)));
    let now = now_ms();
    let states = ["new", "acknowledged", "contained", "resolved"];
    let body = html! {
        h1 { "Open incidents" }
        @if !clusters.is_empty() || chosen.is_some() {
            form method="get" action="/" class="search" {
                label { "Cluster "
                    select name="cluster" {
                        option value="" { "all" }
                        @for c in &clusters { option value=(c) selected[chosen.as_deref() == Some(c.as_str())] { (c) } }
                    }
                }
                button type="submit" { "Show" }
            }
        }
        p class="hint" {
            (open.len()) " open"
            @if let Some(c) = &chosen { " in cluster " strong { (c) } }
            " · updated " (when(now)) " · signed in as " (who.name)
        }
        @if open.is_empty() { p { "No open incident." } }
        div class="board" {
            @for state in states {
                @let these: Vec<_> = open.iter().filter(|i| i.state == state).collect();
                @if !these.is_empty() {
                    section aria-labelledby={"col-" (state)} {
                        h2 id={"col-" (state)} { (state) " (" (these.len()) ")" }
                        ul class="cards" {
                            @for i in these {
                                li class="card" {
                                    (severity_badge(&i.severity))
                                    " "
                                    a href={"/incidents/" (i.id)} { "#" (i.id) " " (i.title) }
                                    div class="meta" {
                                        (i.incident_type) " · owner " (i.owner_person.as_deref().or(i.owner_role.as_deref()).unwrap_or("none"))
                                        " · " (i.finding_count) " findings · opened " (kir_report::human_duration(now - i.created_at)) " ago"
                                        @let in_clusters: Vec<&str> = i.cluster_list().collect();
                                        @if !in_clusters.is_empty() { " · " span class="cluster" { (in_clusters.join(", ")) } }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Html(page("Incidents", session.as_ref(), true, body).into_string()).into_response()
}

/// The cluster a stored finding came from (its JSON body's `cluster`, absent for a single
/// cluster), so the pages need no column the store does not keep per finding.
fn body_cluster(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|f| f["cluster"].as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn sev_rank(s: &str) -> usize {
    s.parse::<kir_detect::Level>().map(|l| l as usize).unwrap_or(0)
}

async fn incident_page(State(s): State<AppState>, headers: HeaderMap, Path(id): Path<i64>) -> Response {
    let (who, session) = match viewer(&s, &headers, Role::Viewer).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let record = match kir_app::incident_record(&s.store, id).await {
        Ok(r) => r,
        Err(kir_store::StoreError::NoIncident(_)) => {
            return (StatusCode::NOT_FOUND, "no such incident").into_response();
        }
        Err(e) => return (StatusCode::SERVICE_UNAVAILABLE, format!("store: {e}")).into_response(),
    };
    let i = &record.incident;
    let may_write = who.role.allows(Role::Responder);
    let may_approve = who.role.allows(Role::Approver);
    let waiting = kir_app::playbook::waiting(&s.engine().plan, &i.incident_type, &record.timeline);
    let recorded_actions = s.store.incident_actions(id).await.unwrap_or_default();
    let evidence: Vec<_> = record.timeline.iter().filter(|e| e.kind == "evidence").collect();
    let actions: &[(&str, &str)] = match i.state.as_str() {
        "new" => &[("ack", "Acknowledge"), ("contain", "Mark contained"), ("escalate", "Escalate")],
        "acknowledged" => &[("contain", "Mark contained"), ("resolve", "Resolve"), ("escalate", "Escalate")],
        "contained" => &[("resolve", "Resolve")],
        "resolved" => &[("close", "Close as true positive"), ("reopen", "Re-open")],
        _ => &[("reopen", "Re-open")],
    };
    let body = html! {
        h1 { (severity_badge(&i.severity)) " #" (i.id) " " (i.title) }
        p class="meta" {
            "State " strong class="state" { (i.state) } " · " (i.incident_type)
            " · owner " (i.owner_person.as_deref().or(i.owner_role.as_deref()).unwrap_or("none"))
            " · opened " (when(i.created_at))
            @let in_clusters: Vec<&str> = i.cluster_list().collect();
            @if !in_clusters.is_empty() { " · clusters " span class="cluster" { (in_clusters.join(", ")) } }
        }
        @if let (true, Some(session)) = (may_write, session.as_ref()) {
            div class="actions" {
                @for (action, label) in actions {
                    form method="post" action={"/incidents/" (i.id) "/" (action)} class="inline" {
                        input type="hidden" name="csrf" value=(session.csrf);
                        button type="submit" name="do" value=(action) { (label) }
                    }
                }
            }
            form method="post" action={"/incidents/" (i.id) "/note"} class="note" {
                input type="hidden" name="csrf" value=(session.csrf);
                label for="note-text" { "Add a note" }
                textarea id="note-text" name="text" rows="2" required {}
                button type="submit" { "Add note" }
            }
        }
        @if !waiting.is_empty() {
            section aria-labelledby="approvals" {
                h2 id="approvals" { "Awaiting approval" }
                ul class="cards" {
                    @for w in &waiting {
                        li class="card approval" {
                            strong { "Step " (w.step) ": " (w.title) } " (" (w.action) ")"
                            div class="meta" {
                                "needs " (w.role) " · asked by " (w.requested_by) " at " (when(w.requested_at))
                                @if let Some(r) = &w.rejected_by { " · rejected by " (r) }
                                @if w.two_person { " · two-person rule" }
                            }
                            @if let (true, Some(session)) = (may_approve, session.as_ref()) {
                                div class="actions" {
                                    @for (action, label) in [("approve", "Approve"), ("reject", "Reject")] {
                                        form method="post" action={"/incidents/" (i.id) "/" (action)} class="inline" {
                                            input type="hidden" name="csrf" value=(session.csrf);
                                            input type="hidden" name="step" value=(w.step);
                                            button type="submit" name="do" value={(action) "-" (w.step)} { (label) " step " (w.step) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        h2 { "Findings (" (record.findings.len()) ")" }
        @let finding_clusters: Vec<String> = record.findings.iter().map(|f| body_cluster(&f.body)).collect();
        @let show_cluster = finding_clusters.iter().any(|c| !c.is_empty());
        table {
            thead { tr { th { "Severity" } th { "Rule" } th { "When" } @if show_cluster { th { "Cluster" } } th { "Actor" } th { "Object" } } }
            tbody {
                @for (f, cluster) in record.findings.iter().zip(&finding_clusters) {
                    tr {
                        td { (severity_badge(&f.routed_severity)) }
                        td { (f.title) br; code { (f.rule_id) } }
                        td { (f.event_time.map(when).unwrap_or_default()) }
                        @if show_cluster { td class="cluster" { (cluster) } }
                        td { (f.actor) }
                        td { (f.namespace.as_deref().unwrap_or("")) "/" (f.resource.as_deref().unwrap_or("")) "/" (f.name.as_deref().unwrap_or("")) }
                    }
                }
            }
        }
        @if !evidence.is_empty() {
            h2 { "Evidence" }
            ul class="cards" {
                @for e in &evidence {
                    @let data: serde_json::Value = e.data.as_deref().and_then(|d| serde_json::from_str(d).ok()).unwrap_or_default();
                    li class="card" {
                        (e.message)
                        div class="meta" {
                            "collected by " (e.who) " at " (when(e.at))
                            @if let Some(d) = data["manifest_sha256"].as_str() { " · manifest SHA-256 " code { (d) } }
                        }
                        div class="hint" { "Verify the bundle and its chain of custody: " code { "kir evidence verify BUNDLE" } }
                    }
                }
            }
        }
        @if !recorded_actions.is_empty() {
            h2 { "Actions" }
            table {
                thead { tr { th { "When" } th { "Action" } th { "By" } th { "State" } } }
                tbody {
                    @for a in &recorded_actions {
                        tr {
                            td { (when(a.at)) }
                            td { (a.action) " " (a.target) @if a.dry_run != 0 { " (dry run)" } br; code { (a.id) } }
                            td { (a.who) }
                            td {
                                @if let Some(t) = a.undone_at { "undone by " (a.undone_by.as_deref().unwrap_or("")) " at " (when(t)) }
                                @else if a.dry_run == 0 { "in place · undo: " code { "kir contain undo " (a.id) } }
                            }
                        }
                    }
                }
            }
        }
        h2 { "Timeline" }
        ol class="timeline" {
            @for e in &record.timeline {
                li { time { (when(e.at)) } " " strong { (e.who) } " " span class="kind" { (e.kind) } ": " (e.message) }
            }
        }
    };
    Html(page(&format!("#{} {}", i.id, i.title), session.as_ref(), false, body).into_string()).into_response()
}

async fn incident_form(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path((id, action)): Path<(i64, String)>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let (who, session) = match viewer(&s, &headers, crate::api::needed_for(&action)).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    // Forms come only from a session's own pages: a bearer token uses the API.
    if !csrf_ok(session.as_ref(), &form) {
        return (StatusCode::FORBIDDEN, "the form's CSRF token is missing or stale: reload the page").into_response();
    }
    let body = ActionBody {
        text: form.get("text").cloned(),
        note: form.get("note").cloned(),
        step: form.get("step").and_then(|n| n.parse().ok()),
        ..Default::default()
    };
    let body = if action == "close" { ActionBody { reason: Some("true-positive".into()), ..body } } else { body };
    match act(&s, id, &action, body, &who).await {
        Ok(_) => Redirect::to(&format!("/incidents/{id}")).into_response(),
        Err(r) => r,
    }
}

async fn findings_page(
    State(s): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let (_, session) = match viewer(&s, &headers, Role::Viewer).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let mut q = q;
    q.entry("limit".into()).or_insert_with(|| "500".into());
    let filter = match findings_filter(&s, &q).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let list = match s.store.detections(&filter).await {
        Ok(l) => l,
        Err(e) => return (StatusCode::SERVICE_UNAVAILABLE, format!("store: {e}")).into_response(),
    };
    let v = |k: &str| q.get(k).cloned().unwrap_or_default();
    let body = html! {
        h1 { "Findings" }
        form method="get" action="/findings" class="search" {
            label { "Since " input name="since" value=(v("since")) placeholder="2h or 2026-12-03T10:00:00Z"; }
            label { "Min. severity "
                select name="severity" {
                    option value="" { "any" }
                    @for l in kir_detect::Level::ALL { option value=(l.as_str()) selected[v("severity") == l.as_str()] { (l.as_str()) } }
                }
            }
            label { "Rule " input name="rule" value=(v("rule")); }
            label { "Namespace " input name="namespace" value=(v("namespace")); }
            label { "Actor " input name="actor" value=(v("actor")); }
            label { "Cluster " input name="cluster" value=(v("cluster")); }
            button type="submit" { "Search" }
        }
        @let show_cluster = !v("cluster").is_empty() || list.iter().any(|d| d.cluster.is_some());
        p class="hint" {
            (list.len()) " findings"
            @if !v("cluster").is_empty() { " from cluster " strong { (v("cluster")) } }
            " (at most " (v("limit")) ")"
        }
        table {
            thead { tr { th { "Severity" } th { "Rule" } th { "When" } @if show_cluster { th { "Cluster" } } th { "Actor" } th { "Namespace" } th { "Requests" } } }
            tbody {
                @for d in &list {
                    @let f: serde_json::Value = serde_json::from_str(&d.body).unwrap_or_default();
                    tr {
                        td { (severity_badge(f["severity"].as_str().unwrap_or(""))) }
                        td { (f["title"].as_str().unwrap_or("")) br; code { (d.rule_id) } }
                        td { (f["time"].as_str().unwrap_or("")) }
                        @if show_cluster { td class="cluster" { (d.cluster.as_deref().unwrap_or("")) } }
                        td { (d.actor) }
                        td { (d.namespace.as_deref().unwrap_or("")) }
                        td { (f["event_count"].as_u64().unwrap_or(1)) }
                    }
                }
            }
        }
    };
    Html(page("Findings", session.as_ref(), false, body).into_string()).into_response()
}

async fn plan_page(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let (_, session) = match viewer(&s, &headers, Role::Viewer).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let engine = s.engine();
    let md = kir_plan::render::markdown(&engine.plan, now_ms());
    let full = kir_plan::render::html_page("plan", &md);
    // The rendered plan's body, inside our page (its text was escaped by the renderer).
    let inner = full.split_once("<body>").and_then(|(_, b)| b.rsplit_once("</body>")).map_or(full.as_str(), |(b, _)| b);
    let body = html! { div class="plan" { (PreEscaped(inner)) } };
    Html(page("Plan", session.as_ref(), false, body).into_string()).into_response()
}

async fn rules_page(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let (_, session) = match viewer(&s, &headers, Role::Viewer).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let engine = s.engine();
    let metas: Vec<_> = engine
        .rules
        .detections
        .iter()
        .map(|r| &r.meta)
        .chain(engine.rules.correlations.iter().map(|c| &c.meta))
        .collect();
    let body = html! {
        h1 { "Rules (" (metas.len()) ")" }
        table {
            thead { tr { th { "Severity" } th { "Rule" } th { "ATT&CK" } } }
            tbody {
                @for m in metas {
                    tr { td { (severity_badge(m.severity().as_str())) } td { (m.title) br; code { (m.id) } } td { (m.techniques.join(", ")) } }
                }
            }
        }
    };
    Html(page("Rules", session.as_ref(), false, body).into_string()).into_response()
}
