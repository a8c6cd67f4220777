//! The Batch routes. Errors are `{"message": …}` as upstream's; every check of a
//! submission runs before anything is written or recorded.

use actix_web::http::header::CONTENT_TYPE;
use actix_web::http::{Method, StatusCode};
use actix_web::{web, HttpResponse};
use infralog_actors::decide::batch::{JobAction, JobError};
use infralog_actors::exec::local::sandbox_of;
use infralog_actors::runtime::batch::BatchFailure;
use infralog_events::domain::batch::JobSubmission;
use infralog_events::domain::ids::job_stream_name;
use serde_json::{json, Value};
use uuid::Uuid;

use super::{bundle, form, Batch};
use crate::api::RequestContext;
use crate::facades::{read_limited_body, stream_history};
use crate::projections::batch::JobView;

fn answer(status: StatusCode, body: Value) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("application/json")
        .body(body.to_string())
}

fn message(status: StatusCode, text: impl Into<String>) -> HttpResponse {
    answer(status, json!({ "message": text.into() }))
}

fn no_job(id: &str) -> HttpResponse {
    message(StatusCode::NOT_FOUND, format!("Job {id} doesn't exist"))
}

/// Routes a `/jobs…` request (a trailing slash is optional).
pub async fn dispatch(
    batch: &Batch,
    context: &RequestContext,
    path: &str,
    payload: web::Payload,
) -> HttpResponse {
    if !authenticated(batch, context) {
        return message(StatusCode::UNAUTHORIZED, "Authentication required");
    }
    let path = path.strip_suffix('/').unwrap_or(path);
    let parts: Vec<&str> = path.split('/').skip(2).collect();
    let method = context.request.method().clone();
    match (parts.as_slice(), method) {
        ([], Method::POST) => submit(batch, context, payload).await,
        ([], Method::GET) => list(batch),
        ([id], Method::GET) => with_job(batch, id, |view| {
            answer(StatusCode::OK, detail(batch, view))
        }),
        ([id], Method::DELETE) => act(batch, id, "remove", true).await,
        ([id, action], Method::PUT) => act(batch, id, action, false).await,
        ([id, "artifacts", name], Method::GET) => artifact(batch, id, name).await,
        ([id, "events"], Method::GET) => events(batch, context, id).await,
        _ => message(StatusCode::NOT_FOUND, "Not found"),
    }
}

/// HTTP Basic against the service identity, unless `--batch-no-auth`.
fn authenticated(batch: &Batch, context: &RequestContext) -> bool {
    if batch.settings.no_auth {
        return true;
    }
    match (&batch.settings.user, &batch.settings.password) {
        (Some(user), Some(password)) => crate::facades::basic_matches(context, user, password),
        _ => false,
    }
}

fn find(batch: &Batch, id: &str) -> Option<JobView> {
    let id = Uuid::try_parse(id).ok()?;
    batch.projections.read().batch.jobs.get(&id).cloned()
}

fn with_job(batch: &Batch, id: &str, then: impl FnOnce(&JobView) -> HttpResponse) -> HttpResponse {
    match find(batch, id) {
        Some(view) => then(&view),
        None => no_job(id),
    }
}

fn rfc822(at: Option<chrono::DateTime<chrono::Utc>>) -> Value {
    at.map(|t| Value::from(t.format("%a, %d %b %Y %H:%M:%S -0000").to_string()))
        .unwrap_or(Value::Null)
}

fn detail(batch: &Batch, view: &JobView) -> Value {
    let state = &view.state;
    let cluster = state.submission.as_ref().map(|s| s.cluster_id).unwrap_or(0);
    let exit = state.exit.unwrap_or_default();
    json!({
        "id": view.id.to_string(),
        "job_status": state.status.as_str(),
        "backend_job_status": state.status.as_str(),
        "previous_job_status": state.previous.as_str(),
        "cluster_id": cluster,
        "proc_id": 0,
        "global_job_id": format!("{}#{cluster}.0#{}", batch.host, view.submitted_at.timestamp()),
        "job_run_count": state.run_count,
        "job_priority": 0,
        "job_universe": "vanilla",
        "image_size": exit.max_rss_kib,
        "local_user_cpu": exit.user_cpu_ms as f64 / 1000.0,
        "exit_status": exit.code,
        "exit_by_signal": exit.by_signal,
        "job_start_date": rfc822(view.first_start),
        "job_current_start_date": rfc822(view.current_start),
        "job_completion_date": view.completed_at.map(|t| t.timestamp()).unwrap_or(0),
        "cwd": sandbox_of(&batch.root, &view.id).join("bundle").display().to_string(),
    })
}

fn list(batch: &Batch) -> HttpResponse {
    let model = batch.projections.read();
    let rows: Vec<Value> = model
        .batch
        .by_number
        .values()
        .filter_map(|id| model.batch.jobs.get(id))
        .map(|view| {
            json!({
                "id": view.id.to_string(),
                "backend_job_status": view.state.status.as_str(),
                "job_status": view.state.status.as_str(),
                "cwd": sandbox_of(&batch.root, &view.id).join("bundle").display().to_string(),
            })
        })
        .collect();
    answer(StatusCode::OK, Value::Array(rows))
}

async fn read_body(
    batch: &Batch,
    context: &RequestContext,
    payload: web::Payload,
) -> Result<Vec<u8>, HttpResponse> {
    read_limited_body(
        context,
        payload,
        batch.settings.max_upload_bytes,
        batch.body_timeout,
    )
    .await
    .map_err(|(status, text)| message(status, text))
}

async fn submit(batch: &Batch, context: &RequestContext, payload: web::Payload) -> HttpResponse {
    let body = match read_body(batch, context, payload).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let content_type = context
        .request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mut fields = match form::parse(content_type, &body) {
        Ok(fields) => fields,
        Err(error @ form::FormError::MediaType(_)) => {
            return message(StatusCode::UNSUPPORTED_MEDIA_TYPE, error.to_string())
        }
        Err(error) => return message(StatusCode::BAD_REQUEST, error.to_string()),
    };
    let text = |bytes: Vec<u8>| String::from_utf8_lossy(&bytes).into_owned();
    let Some(name) = fields.remove("job-name").map(text) else {
        return message(
            StatusCode::BAD_REQUEST,
            "Missing required parameter job-name",
        );
    };
    let Some(raw_bundle) = fields.remove("job-bundle") else {
        return message(
            StatusCode::BAD_REQUEST,
            "Missing required parameter job-bundle",
        );
    };
    let arguments = fields.remove("job-arguments").map(text).unwrap_or_default();
    let notify_url = fields
        .remove("job-notification")
        .map(text)
        .filter(|u| !u.is_empty());
    if notify_url
        .as_ref()
        .is_some_and(|u| !u.starts_with("http://"))
    {
        return message(
            StatusCode::BAD_REQUEST,
            "Invalid job-notification: only http:// URLs are notified",
        );
    }
    let input = fields.remove("job-input");
    let checked = match bundle::check(&raw_bundle) {
        Ok(checked) => checked,
        Err(text) => return message(StatusCode::BAD_REQUEST, text),
    };
    let job = Uuid::new_v4();
    let sandbox = sandbox_of(&batch.root, &job);
    let submission = JobSubmission {
        name,
        arguments,
        bundle_sha256: bundle::sha256_hex(&raw_bundle),
        input_sha256: input.as_deref().map(bundle::sha256_hex),
        notify_url,
        cluster_id: 0,
    };
    let write = {
        let sandbox = sandbox.clone();
        // Disk writes and fsyncs block: off the async thread.
        tokio::task::spawn_blocking(move || {
            bundle::write_sandbox(&sandbox, &raw_bundle, &checked, input.as_deref())
        })
    };
    let written = match write.await {
        Ok(result) => result.map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    if let Err(error) = written {
        tracing::warn!(%error, %job, "a Batch job's sandbox cannot be written");
        let _ = std::fs::remove_dir_all(&sandbox);
        return message(
            StatusCode::INTERNAL_SERVER_ERROR,
            "The job's files cannot be stored",
        );
    }
    match batch.jobs.submit(job, submission).await {
        Ok((cluster_id, position)) => {
            batch.projections.wait_for(position).await;
            answer(
                StatusCode::OK,
                json!({ "job_id": job.to_string(), "backend_id": cluster_id }),
            )
        }
        Err(error) => {
            let _ = std::fs::remove_dir_all(&sandbox);
            failure(error, &job.to_string(), "submit")
        }
    }
}

fn failure(error: BatchFailure, id: &str, action: &str) -> HttpResponse {
    match error {
        BatchFailure::Job(JobError::Unknown) => no_job(id),
        BatchFailure::Job(JobError::NotAllowed { status, .. }) => message(
            StatusCode::CONFLICT,
            format!("Job {id} cannot {action} while {status}"),
        ),
        BatchFailure::Busy => message(StatusCode::SERVICE_UNAVAILABLE, error.to_string()),
        other => {
            tracing::warn!(error = %other, job = %id, "a Batch request failed");
            message(StatusCode::INTERNAL_SERVER_ERROR, other.to_string())
        }
    }
}

async fn act(batch: &Batch, id: &str, action: &str, delete: bool) -> HttpResponse {
    let Some(view) = find(batch, id) else {
        return no_job(id);
    };
    let Some(parsed) = JobAction::parse(action) else {
        return message(
            StatusCode::BAD_REQUEST,
            format!("Action {action} is not known"),
        );
    };
    match batch.jobs.act(view.id, parsed).await {
        Ok(position) => {
            batch.projections.wait_for(position).await;
            if delete {
                answer(StatusCode::OK, Value::Null)
            } else {
                answer(StatusCode::OK, json!({ "result": [id, action] }))
            }
        }
        Err(error) => failure(error, id, action),
    }
}

async fn artifact(batch: &Batch, id: &str, name: &str) -> HttpResponse {
    let Some(view) = find(batch, id) else {
        return no_job(id);
    };
    let sandbox = sandbox_of(&batch.root, &view.id);
    match name {
        "stdout" | "stderr" => match tokio::fs::read(sandbox.join(name)).await {
            Ok(bytes) => HttpResponse::Ok().content_type("text/plain").body(bytes),
            Err(_) => message(StatusCode::NOT_FOUND, format!("Job {id} has no {name} yet")),
        },
        "output" => {
            let output = sandbox.join("output");
            match tokio::task::spawn_blocking(move || bundle::tar_dir(&output)).await {
                Ok(Ok(bytes)) => HttpResponse::Ok()
                    .content_type("application/gzip")
                    .body(bytes),
                _ => message(StatusCode::NOT_FOUND, format!("Job {id} has no output yet")),
            }
        }
        _ => message(
            StatusCode::NOT_FOUND,
            format!("Job {id} has no artifact {name}"),
        ),
    }
}

/// `GET /jobs/<id>/events`: the job's stream, as IM's `/events` answers.
async fn events(batch: &Batch, context: &RequestContext, id: &str) -> HttpResponse {
    let Some(view) = find(batch, id) else {
        return no_job(id);
    };
    let stream = match infralog_events::StreamId::new(job_stream_name(&view.id)) {
        Ok(stream) => stream,
        Err(_) => return no_job(id),
    };
    match stream_history(context, std::sync::Arc::clone(&batch.store), stream).await {
        Ok(response) => response,
        Err((status, text)) => message(status, text),
    }
}
