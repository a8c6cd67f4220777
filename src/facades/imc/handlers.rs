//! The IMC routes. Errors are `{"error": …}` (a 404 for a placement is IMC's
//! `{"status": "invalid"}`); every check runs before anything is recorded, so a
//! refused request leaves the log as it was.

use std::time::Duration;

use actix_web::http::{Method, StatusCode};
use actix_web::{web, HttpResponse};
use infralog_actors::decide::placement::PlacementError;
use infralog_actors::decide::sites;
use infralog_actors::runtime::placement::PlacementFailure;
use infralog_events::domain::ids::placement_stream_name;
use infralog_events::domain::placement::PlacementStatus;
use infralog_events::{StoreHealth, StreamId};
use serde_json::{json, Value};
use uuid::Uuid;

use super::{request, Imc};
use crate::api::events::{answer_events, negotiate_events, MAX_LIMIT};
use crate::api::RequestContext;
use crate::facades::read_limited_body;
use crate::history::HistorySubject;
use crate::projections::imc::PlacementView;

/// How far the read model may lag behind the log before `/v1/health` says so.
const HEALTH_LAG: Duration = Duration::from_secs(5);

fn answer(status: StatusCode, body: Value) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("application/json")
        .body(body.to_string())
}

fn error(status: StatusCode, message: impl Into<String>) -> HttpResponse {
    answer(status, json!({ "error": message.into() }))
}

fn invalid() -> HttpResponse {
    answer(StatusCode::NOT_FOUND, json!({ "status": "invalid" }))
}

/// Every route IMC serves: `(method, template)`, `{id}` standing for a path
/// segment. The dispatcher matches paths against these templates only, and the
/// OpenAPI document describes each of them (a test holds the two equal).
pub const ROUTES: &[(&str, &str)] = &[
    ("POST", "/v1/infrastructures"),
    ("GET", "/v1/infrastructures"),
    ("GET", "/v1/infrastructures/{id}"),
    ("DELETE", "/v1/infrastructures/{id}"),
    ("GET", "/v1/infrastructures/{id}/events"),
    ("POST", "/v1/credentials"),
    ("GET", "/v1/health"),
];

/// The template `path` matches, and its `{id}` segment.
fn template_of(path: &str) -> Option<(&'static str, Option<&str>)> {
    ROUTES.iter().find_map(|(_, template)| {
        let mut id = None;
        let mut segments = path.split('/');
        for expected in template.split('/') {
            let segment = segments.next()?;
            match expected {
                "{id}" if !segment.is_empty() => id = Some(segment),
                _ if expected == segment => {}
                _ => return None,
            }
        }
        segments.next().is_none().then_some((*template, id))
    })
}

/// Routes a `/v1/…` request (a trailing slash is optional).
pub async fn dispatch(
    imc: &Imc,
    context: &RequestContext,
    path: &str,
    payload: web::Payload,
) -> HttpResponse {
    let path = path.strip_suffix('/').unwrap_or(path);
    let method = context.request.method().clone();
    let Some((template, id)) = template_of(path) else {
        return error(StatusCode::NOT_FOUND, "Not found");
    };
    if template == "/v1/health" {
        return match method {
            Method::GET | Method::HEAD => health(imc).await,
            _ => error(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed"),
        };
    }
    if !authenticated(imc, context) {
        return error(StatusCode::UNAUTHORIZED, "Authentication failure");
    }
    let id = id.unwrap_or_default();
    match (template, method) {
        ("/v1/infrastructures", Method::POST) => create(imc, context, payload).await,
        ("/v1/infrastructures", Method::GET) => list(imc, context),
        ("/v1/credentials", Method::POST) => credentials(imc, context, payload).await,
        ("/v1/infrastructures/{id}", Method::GET) => show(imc, id),
        ("/v1/infrastructures/{id}", Method::DELETE) => delete(imc, id).await,
        ("/v1/infrastructures/{id}/events", Method::GET) => events(imc, context, id).await,
        _ => error(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed"),
    }
}

/// HTTP Basic against the service identity; with none configured nobody passes.
fn authenticated(imc: &Imc, context: &RequestContext) -> bool {
    match (&imc.user, &imc.password) {
        (Some(user), Some(password)) => crate::facades::basic_matches(context, user, password),
        _ => false,
    }
}

async fn read_body(
    imc: &Imc,
    context: &RequestContext,
    payload: web::Payload,
) -> Result<Vec<u8>, HttpResponse> {
    read_limited_body(
        context,
        payload,
        imc.limits.max_body_bytes,
        imc.limits.body_read_timeout,
    )
    .await
    .map_err(|(status, text)| error(status, text))
}

/// The `Idempotency-Key`: the placement's id; a fresh one without it; `None`
/// when it is no UUID.
fn idempotency_key(context: &RequestContext) -> Option<Uuid> {
    let Some(value) = context.request.headers().get("idempotency-key") else {
        return Some(Uuid::new_v4());
    };
    value
        .to_str()
        .ok()
        .and_then(|text| Uuid::try_parse(text.trim()).ok())
}

fn known(imc: &Imc, id: Uuid) -> Option<PlacementView> {
    imc.projections
        .read()
        .imc
        .placements
        .get(&id)
        .filter(|view| view.state.status != Some(PlacementStatus::Purged))
        .cloned()
}

async fn create(imc: &Imc, context: &RequestContext, payload: web::Payload) -> HttpResponse {
    let Some(id) = idempotency_key(context) else {
        return error(StatusCode::BAD_REQUEST, "Idempotency-Key is not a UUID");
    };
    let body = match read_body(imc, context, payload).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let parsed = match request::parse(&body) {
        Ok(parsed) => parsed,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    if parsed.dry_run {
        let ledger = imc.placements.ledger().await;
        let identity = parsed.request.identity.clone().unwrap_or_default();
        let now = chrono::Utc::now();
        let model = imc.projections.read();
        let ranked: Vec<String> = sites::rank(
            imc.placements.catalogue(),
            &parsed.request,
            &|site| ledger.usage_of(&identity, &site.name, None),
            &|site| model.imc.success_ratio(site, now),
        )
        .into_iter()
        .map(|site| site.name.clone())
        .collect();
        return answer(StatusCode::OK, json!({ "sites": ranked }));
    }
    let id_text = id.hyphenated().to_string();
    if known(imc, id).is_some() {
        return answer(StatusCode::OK, json!({ "id": id_text }));
    }
    match imc.placements.request(id, parsed.request).await {
        Ok(position) => {
            imc.projections.wait_for(position).await;
            answer(StatusCode::CREATED, json!({ "id": id_text }))
        }
        // Two requests with one key raced: the first recorded it.
        Err(PlacementFailure::Refused(PlacementError::AlreadyExists)) => {
            answer(StatusCode::OK, json!({ "id": id_text }))
        }
        Err(failure) => failed(failure),
    }
}

fn failed(failure: PlacementFailure) -> HttpResponse {
    match failure {
        PlacementFailure::Busy => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "Too many operations are pending on this deployment",
        ),
        other => internal_error(&other),
    }
}

fn show(imc: &Imc, id: &str) -> HttpResponse {
    let Some(view) = Uuid::try_parse(id).ok().and_then(|id| known(imc, id)) else {
        return invalid();
    };
    let state = &view.state;
    let status = state.status.unwrap_or(PlacementStatus::Accepted);
    // IMC shows a reason only while waiting or unable.
    let reason = matches!(status, PlacementStatus::Waiting | PlacementStatus::Unable)
        .then(|| state.reason.clone())
        .flatten();
    answer(
        StatusCode::OK,
        json!({
            "status": status.as_str(),
            "status_reason": reason,
            "cloud": state.cloud,
            "infra_id": state.infra_id.map(|inf| inf.to_string()),
        }),
    )
}

fn epoch(at: chrono::DateTime<chrono::Utc>) -> f64 {
    at.timestamp_micros() as f64 / 1_000_000.0
}

fn list(imc: &Imc, context: &RequestContext) -> HttpResponse {
    let query = &context.query;
    if query.get("type").is_some() {
        return error(StatusCode::BAD_REQUEST, "type is not supported");
    }
    let Some(status) = query.get("status") else {
        return error(StatusCode::BAD_REQUEST, "status is required");
    };
    let cloud = query.get("cloud");
    let model = imc.projections.read();
    let mut views: Vec<&PlacementView> = model
        .imc
        .placements
        .values()
        .filter(|view| view.state.status.map(PlacementStatus::as_str) == Some(status))
        .filter(|view| cloud.is_none_or(|c| view.state.cloud.as_deref() == Some(c)))
        .collect();
    views.sort_by_key(|view| view.created_position);
    let rows: Vec<Value> = views
        .iter()
        .map(|view| {
            json!({
                "id": view.id.hyphenated().to_string(),
                "created": epoch(view.created_at),
                "updated": epoch(view.updated_at),
                "identity": view.state.request.as_ref().and_then(|r| r.identity.clone()),
            })
        })
        .collect();
    answer(StatusCode::OK, Value::Array(rows))
}

async fn delete(imc: &Imc, id: &str) -> HttpResponse {
    let Some(view) = Uuid::try_parse(id).ok().and_then(|id| known(imc, id)) else {
        return invalid();
    };
    // Already deleting or deleted: nothing to record.
    if view.state.status.is_some_and(PlacementStatus::is_deletion) {
        return answer(StatusCode::OK, json!({}));
    }
    match imc.placements.delete(view.id).await {
        Ok(position) => {
            imc.projections.wait_for(position).await;
            answer(StatusCode::OK, json!({}))
        }
        Err(failure) => failed(failure),
    }
}

async fn credentials(imc: &Imc, context: &RequestContext, payload: web::Payload) -> HttpResponse {
    let body = match read_body(imc, context, payload).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    // Without an OIDC issuer there is nothing to keep the token for: it is checked
    // and dropped, never stored.
    match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(_)) => answer(StatusCode::CREATED, json!({})),
        _ => error(StatusCode::BAD_REQUEST, "json data not valid"),
    }
}

/// `GET /v1/infrastructures/<id>/events`: the placement's own stream, answered
/// as IM's `/infrastructures/<id>/events` answers an infrastructure's history
/// (`from`, `limit`, JSON pages or ndjson); its errors in IMC's body.
async fn events(imc: &Imc, context: &RequestContext, id: &str) -> HttpResponse {
    let Some(view) = Uuid::try_parse(id).ok().and_then(|id| known(imc, id)) else {
        return invalid();
    };
    // A bad value names itself; its answer is built below.
    let number = |name: &'static str, most: u64| -> Result<Option<u64>, (&'static str, u64)> {
        match context.query.get(name) {
            None => Ok(None),
            Some(text) => text
                .parse::<u64>()
                .ok()
                .filter(|n| (1..=most).contains(n))
                .map(Some)
                .ok_or((name, most)),
        }
    };
    let (from, limit) = match (
        number("from", i64::MAX as u64),
        number("limit", MAX_LIMIT as u64),
    ) {
        (Ok(from), Ok(limit)) => (from.unwrap_or(1), limit),
        (Err((name, most)), _) | (_, Err((name, most))) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("{name} must be an integer from 1 to {most}"),
            )
        }
    };
    let Ok(format) = negotiate_events(&context.accept) else {
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Accept names neither application/json nor application/x-ndjson",
        );
    };
    let stream = match StreamId::new(placement_stream_name(&view.id)) {
        Ok(stream) => stream,
        Err(failure) => return internal_error(&failure),
    };
    let subject = HistorySubject::Stream(stream);
    match answer_events(&imc.store, subject, format, from, limit).await {
        Ok(response) => response,
        Err(failure) => internal_error(&failure),
    }
}

/// A 500 that names no internals; the cause goes to the log.
fn internal_error(failure: &dyn std::fmt::Display) -> HttpResponse {
    tracing::error!(error = %failure, "an IMC request failed");
    error(StatusCode::INTERNAL_SERVER_ERROR, "Internal error")
}

/// 204 while the log takes writes and the read model keeps up with it.
async fn health(imc: &Imc) -> HttpResponse {
    if let StoreHealth::FailStopped(reason) = imc.store.health() {
        tracing::error!(%reason, "health: the event log is fail-stopped");
        return error(
            StatusCode::CONFLICT,
            "the event log stopped taking writes after a failed write",
        );
    }
    let head = imc.store.head_position();
    let caught_up = tokio::time::timeout(HEALTH_LAG, imc.projections.wait_for(head)).await;
    if caught_up.is_err() {
        return error(
            StatusCode::CONFLICT,
            "the read model lags behind the event log",
        );
    }
    HttpResponse::NoContent().finish()
}
