//! The MLBench routes: the API root, pods and runs (metrics are in
//! `metrics.rs`). Errors are `{"status": "<Reason>", "message": "…"}`; every
//! check runs before anything is recorded.

use actix_web::http::header::{AUTHORIZATION, CONTENT_TYPE};
use actix_web::http::{Method, StatusCode};
use actix_web::{web, HttpResponse};
use infralog_actors::decide::mlbench::AdmissionMode;
use infralog_actors::runtime::mlbench::RunFailure;
use infralog_events::domain::ids::run_stream_name;
use serde_json::{json, Value};

use super::request::{self, BodyError, RunLimits};
use super::{metrics, views, Mlbench};
use crate::api::RequestContext;
use crate::facades::read_limited_body;

pub(super) fn answer(status: StatusCode, body: Value) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("application/json")
        .body(body.to_string())
}

pub(super) fn error(status: StatusCode, message: impl Into<String>) -> HttpResponse {
    answer(
        status,
        json!({
            "status": status.canonical_reason().unwrap_or(""),
            "message": message.into(),
        }),
    )
}

pub(super) fn no_run() -> HttpResponse {
    error(StatusCode::NOT_FOUND, "Run not found")
}

/// Every route [`dispatch`] serves, as the OpenAPI document writes them (a
/// trailing slash is optional on each; `{id}` a run's id, `{pk}` a pod's name or
/// a run's id). The OpenAPI test holds the document equal to it; the black-box
/// test `the_openapi_document_describes_the_served_routes` holds it to what
/// [`dispatch`] serves.
#[cfg(test)]
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/api/"),
    ("GET", "/api/pods/"),
    ("GET", "/api/runs/"),
    ("POST", "/api/runs/"),
    ("GET", "/api/runs/{id}/"),
    ("DELETE", "/api/runs/{id}/"),
    ("GET", "/api/runs/{id}/events/"),
    ("GET", "/api/metrics/"),
    ("POST", "/api/metrics/"),
    ("GET", "/api/metrics/{pk}/"),
];

/// Routes an `/api…` request (a trailing slash is optional).
pub async fn dispatch(
    mlbench: &Mlbench,
    context: &RequestContext,
    path: &str,
    payload: web::Payload,
) -> HttpResponse {
    let rest = path.strip_prefix("/api").unwrap_or(path);
    let rest = rest.trim_matches('/');
    let parts: Vec<&str> = if rest.is_empty() {
        Vec::new()
    } else {
        rest.split('/').collect()
    };
    let method = context.request.method().clone();
    let basic = basic_ok(mlbench, context);
    // A run's workers post their metrics with the run's bearer token.
    let token_post = method == Method::POST && parts == ["metrics"];
    if !basic && !token_post {
        return error(StatusCode::UNAUTHORIZED, "Authentication required");
    }
    let not_allowed = || error(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed");
    match (parts.as_slice(), method) {
        ([], Method::GET) => root(context),
        ([], _) => not_allowed(),
        (["pods"], Method::GET) => pods(mlbench),
        (["pods"], _) => not_allowed(),
        (["runs"], Method::GET) => runs(mlbench),
        (["runs"], Method::POST) => create_run(mlbench, context, payload).await,
        (["runs"], _) => not_allowed(),
        (["runs", id], Method::GET) => run(mlbench, id),
        (["runs", id], Method::DELETE) => delete_run(mlbench, id).await,
        (["runs", _], _) => not_allowed(),
        (["runs", id, "events"], Method::GET) => run_events(mlbench, context, id).await,
        (["runs", _, "events"], _) => not_allowed(),
        (["metrics"], Method::GET) => metrics::all(mlbench).await,
        (["metrics"], Method::POST) => {
            let body = match read_body(mlbench, context, payload).await {
                Ok(body) => body,
                Err(response) => return response,
            };
            metrics::post(mlbench, context, &body, basic).await
        }
        (["metrics"], _) => not_allowed(),
        (["metrics", pk], Method::GET) => metrics::one(mlbench, context, pk).await,
        (["metrics", _], _) => not_allowed(),
        _ => error(StatusCode::NOT_FOUND, "Not found"),
    }
}

/// Open without an identity [up]; HTTP Basic against it otherwise.
fn basic_ok(mlbench: &Mlbench, context: &RequestContext) -> bool {
    match (&mlbench.settings.user, &mlbench.settings.password) {
        (Some(user), Some(password)) => crate::facades::basic_matches(context, user, password),
        _ => true,
    }
}

/// The bearer token of a request, if any.
pub(super) fn bearer(context: &RequestContext) -> Option<String> {
    let header = context
        .request
        .headers()
        .get(AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = header.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_string())
}

pub(super) async fn read_body(
    mlbench: &Mlbench,
    context: &RequestContext,
    payload: web::Payload,
) -> Result<Vec<u8>, HttpResponse> {
    read_limited_body(context, payload, mlbench.max_body, mlbench.body_timeout)
        .await
        .map_err(|(status, text)| error(status, text))
}

pub(super) fn content_type(context: &RequestContext) -> String {
    context
        .request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

pub(super) fn body_error(error: BodyError) -> HttpResponse {
    match error {
        BodyError::MediaType(_) => {
            super::handlers::error(StatusCode::UNSUPPORTED_MEDIA_TYPE, error.to_string())
        }
        BodyError::Invalid(text) => super::handlers::error(StatusCode::BAD_REQUEST, text),
    }
}

fn root(context: &RequestContext) -> HttpResponse {
    let base = &context.base_url;
    answer(
        StatusCode::OK,
        json!({
            "pods": format!("{base}/api/pods/"),
            "runs": format!("{base}/api/runs/"),
            "metrics": format!("{base}/api/metrics/"),
        }),
    )
}

fn pods(mlbench: &Mlbench) -> HttpResponse {
    let model = mlbench.projections.read();
    let pods: Vec<Value> = views::live_pods(&model, &mlbench.settings.release)
        .into_iter()
        .map(
            |pod| json!({"name": pod.name, "labels": pod.labels, "phase": pod.phase, "ip": pod.ip}),
        )
        .collect();
    answer(StatusCode::OK, Value::Array(pods))
}

fn worker(mlbench: &Mlbench) -> String {
    mlbench.worker_program.display().to_string()
}

fn runs(mlbench: &Mlbench) -> HttpResponse {
    let model = mlbench.projections.read();
    let release = &mlbench.settings.release;
    let rows: Vec<Value> = model
        .mlbench
        .runs
        .values()
        .filter(|run| run.is_shown())
        .map(|run| views::run_json(&model, run, release, &worker(mlbench), false))
        .collect();
    answer(StatusCode::OK, Value::Array(rows))
}

/// A shown run's number from a path segment.
pub(super) fn shown_run(mlbench: &Mlbench, id: &str) -> Option<u64> {
    let id: u64 = id.parse().ok()?;
    let model = mlbench.projections.read();
    model
        .mlbench
        .runs
        .get(&id)
        .filter(|run| run.is_shown())
        .map(|run| run.id)
}

fn run(mlbench: &Mlbench, id: &str) -> HttpResponse {
    let Some(id) = shown_run(mlbench, id) else {
        return no_run();
    };
    let model = mlbench.projections.read();
    match model.mlbench.runs.get(&id) {
        Some(run) => answer(
            StatusCode::OK,
            views::run_json(
                &model,
                run,
                &mlbench.settings.release,
                &worker(mlbench),
                true,
            ),
        ),
        None => no_run(),
    }
}

fn failure(failed: RunFailure) -> HttpResponse {
    match failed {
        RunFailure::Admission(conflict) => error_conflict(conflict.to_string()),
        RunFailure::Run(_) => no_run(),
        RunFailure::Busy => error(StatusCode::SERVICE_UNAVAILABLE, failed.to_string()),
        other => {
            tracing::warn!(error = %other, "an MLBench request failed");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "The request could not be recorded",
            )
        }
    }
}

fn error_conflict(message: String) -> HttpResponse {
    error(StatusCode::CONFLICT, message)
}

async fn create_run(
    mlbench: &Mlbench,
    context: &RequestContext,
    payload: web::Payload,
) -> HttpResponse {
    let body = match read_body(mlbench, context, payload).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let fields = match request::fields(&content_type(context), &body) {
        Ok(fields) => fields,
        Err(error) => return body_error(error),
    };
    let limits = RunLimits {
        max_workers: mlbench.settings.max_workers,
        images: &mlbench.settings.images,
        mode: mlbench.settings.admission,
    };
    let checked = match request::run_request(&fields, &limits) {
        Ok(checked) => checked,
        Err(error) => return body_error(error),
    };
    let mut tries = 0;
    let admitted = loop {
        let answer = mlbench.runs.request(checked.clone()).await;
        // Admission alone decides. It learns that a run ended just after the
        // run's end is recorded, so a client that saw the end may ask first:
        // while the read model shows no run in the way, it is asked again.
        let stale = matches!(answer, Err(RunFailure::Admission(_)))
            && !conflict_visible(mlbench, &checked.name);
        if !stale || tries == ADMISSION_RETRIES {
            break answer;
        }
        tries += 1;
        tokio::time::sleep(ADMISSION_RETRY_DELAY).await;
    };
    match admitted {
        Ok((id, position)) => {
            mlbench.projections.wait_for(position).await;
            let model = mlbench.projections.read();
            match model.mlbench.runs.get(&id) {
                Some(run) => answer(
                    StatusCode::CREATED,
                    views::run_json(
                        &model,
                        run,
                        &mlbench.settings.release,
                        &worker(mlbench),
                        false,
                    ),
                ),
                None => no_run(),
            }
        }
        Err(failed) => failure(failed),
    }
}

/// How often, and how far apart, admission is asked again while the read model
/// shows no run in the way.
const ADMISSION_RETRIES: u32 = 50;
const ADMISSION_RETRY_DELAY: std::time::Duration = std::time::Duration::from_millis(20);

/// Whether the read model shows a run that conflicts with a new one named `name`.
fn conflict_visible(mlbench: &Mlbench, name: &str) -> bool {
    let model = mlbench.projections.read();
    let exclusive = mlbench.settings.admission == AdmissionMode::Exclusive;
    model
        .mlbench
        .runs
        .values()
        .filter(|run| run.state.status.is_active())
        .filter_map(|run| run.state.request.as_ref())
        .any(|request| exclusive || request.name.eq_ignore_ascii_case(name))
}

/// `GET /api/runs/<id>/events/`: the run's stream, as IM's `/events` answers
/// an infrastructure's [infralog].
async fn run_events(mlbench: &Mlbench, context: &RequestContext, id: &str) -> HttpResponse {
    let Some(id) = shown_run(mlbench, id) else {
        return no_run();
    };
    let Ok(stream) = infralog_events::StreamId::new(run_stream_name(id)) else {
        return no_run();
    };
    match crate::facades::stream_history(context, std::sync::Arc::clone(&mlbench.store), stream)
        .await
    {
        Ok(response) => response,
        Err((status, text)) => error(status, text),
    }
}

async fn delete_run(mlbench: &Mlbench, id: &str) -> HttpResponse {
    let Some(id) = shown_run(mlbench, id) else {
        return no_run();
    };
    match mlbench.runs.delete(id).await {
        Ok(position) => {
            mlbench.projections.wait_for(position).await;
            HttpResponse::NoContent().finish()
        }
        Err(failed) => failure(failed),
    }
}
