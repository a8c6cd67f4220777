//! The metric routes: every point, one pod's or run's points with upstream's
//! query parameters, their zip export, and metric POSTs (durable before their
//! 201). Store reads are blocking: they run on the blocking pool.

use std::collections::BTreeMap;
use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use infralog_events::store::metrics::{MetricStore, MetricWrite, StoredPoint};
use serde_json::{json, Map, Value};

use super::handlers::{answer, bearer, body_error, content_type, error, no_run, shown_run};
use super::query::{format_date, parse_date, summarize, Shown};
use super::request::{self, MetricBodyError, MetricOwner};
use super::{views, zip, Mlbench};
use crate::api::RequestContext;

fn storage_failure(error: impl std::fmt::Display) -> HttpResponse {
    tracing::warn!(%error, "the MLBench metrics cannot be read or written");
    super::handlers::error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "The metrics could not be read or stored",
    )
}

async fn read(
    metrics: &Arc<dyn MetricStore>,
    subject: String,
    name: Option<String>,
    since: Option<i64>,
) -> Result<Vec<StoredPoint>, HttpResponse> {
    let metrics = Arc::clone(metrics);
    tokio::task::spawn_blocking(move || metrics.read_metrics(&subject, name.as_deref(), since))
        .await
        .map_err(storage_failure)?
        .map_err(storage_failure)
}

fn by_name(points: Vec<StoredPoint>) -> BTreeMap<String, Vec<StoredPoint>> {
    let mut series: BTreeMap<String, Vec<StoredPoint>> = BTreeMap::new();
    for point in points {
        series.entry(point.name.clone()).or_default().push(point);
    }
    series
}

fn full_point(point: &StoredPoint) -> Value {
    json!({
        "name": point.name,
        "value": point.value,
        "date": format_date(point.date_us),
        "metadata": point.metadata,
        "cumulative": point.cumulative,
    })
}

fn shown_point(point: &Shown) -> Value {
    json!({
        "date": format_date(point.date_us),
        "value": point.value,
        "cumulative": point.cumulative,
    })
}

/// `GET /api/metrics/`: every point, by pod and by run name.
pub async fn all(mlbench: &Mlbench) -> HttpResponse {
    let store = Arc::clone(&mlbench.metrics);
    let subjects = match tokio::task::spawn_blocking(move || store.metric_subjects()).await {
        Ok(Ok(subjects)) => subjects,
        Ok(Err(e)) => return storage_failure(e),
        Err(e) => return storage_failure(e),
    };
    let mut pod_metrics = Map::new();
    let mut run_metrics = Map::new();
    for subject in subjects {
        let key = if let Some(pod) = subject.strip_prefix("pod:") {
            (true, pod.to_string())
        } else if let Some(run) = subject.strip_prefix("run:") {
            let name = run.parse::<u64>().ok().and_then(|id| {
                let model = mlbench.projections.read();
                let view = model.mlbench.runs.get(&id).filter(|v| v.is_shown())?;
                Some(view.state.request.as_ref()?.name.clone())
            });
            match name {
                Some(name) => (false, name),
                None => continue,
            }
        } else {
            continue;
        };
        let points = match read(&mlbench.metrics, subject, None, None).await {
            Ok(points) => points,
            Err(response) => return response,
        };
        let series: Map<String, Value> = by_name(points)
            .into_iter()
            .map(|(name, points)| (name, points.iter().map(full_point).collect()))
            .collect();
        let target = if key.0 {
            &mut pod_metrics
        } else {
            &mut run_metrics
        };
        target.insert(key.1, Value::Object(series));
    }
    answer(
        StatusCode::OK,
        json!({"pod_metrics": pod_metrics, "run_metrics": run_metrics}),
    )
}

/// The query of `GET /api/metrics/<pk>/`, checked.
struct MetricQuery {
    run: bool,
    since: Option<i64>,
    filter: Option<String>,
    summarize: Option<usize>,
    last_n: Option<usize>,
    zip: bool,
}

/// A query's error: the message of its 400.
type QueryError = String;

fn positive(query: &crate::api::params::Query, name: &str) -> Result<Option<usize>, QueryError> {
    match query.get(name) {
        None => Ok(None),
        Some(text) => match text.trim().parse::<usize>() {
            Ok(n) if n > 0 => Ok(Some(n)),
            _ => Err(format!("{name} must be a whole number above 0")),
        },
    }
}

fn metric_query(context: &RequestContext, zip_path: bool) -> Result<MetricQuery, QueryError> {
    let query = &context.query;
    let bad = |text: &str| text.to_string();
    let run = match query.get("metric_type").unwrap_or("pod") {
        "pod" => false,
        "run" => true,
        _ => return Err(bad("metric_type must be pod or run")),
    };
    let since = match query.get("since") {
        None => None,
        Some(text) => Some(parse_date(text).ok_or_else(|| bad("since is not a date"))?),
    };
    let zip = match query.get("format") {
        None | Some("json") => zip_path,
        Some("zip") => true,
        Some(_) => return Err(bad("format must be json or zip")),
    };
    Ok(MetricQuery {
        run,
        since,
        filter: query.get("metric_filter").map(str::to_string),
        summarize: positive(query, "summarize")?,
        last_n: positive(query, "last_n")?,
        zip,
    })
}

/// Summarizes and cuts each series as the query says.
fn shape(
    series: BTreeMap<String, Vec<StoredPoint>>,
    query: &MetricQuery,
) -> Result<Vec<(String, Vec<Shown>)>, QueryError> {
    let mut shaped = Vec::with_capacity(series.len());
    for (name, points) in series {
        let mut shown =
            summarize(&name, &points, query.summarize.unwrap_or(0)).map_err(|e| e.to_string())?;
        if let Some(n) = query.last_n {
            let cut = shown.len().saturating_sub(n);
            shown.drain(..cut);
        }
        shaped.push((name, shown));
    }
    Ok(shaped)
}

fn series_json(series: &[Shown]) -> Vec<u8> {
    Value::Array(series.iter().map(shown_point).collect())
        .to_string()
        .into_bytes()
}

/// `GET /api/metrics/<pk>/` (and its zip forms).
pub async fn one(mlbench: &Mlbench, context: &RequestContext, pk: &str) -> HttpResponse {
    let (pk, zip_path) = match pk.strip_suffix(".zip") {
        Some(pk) => (pk, true),
        None => (pk, false),
    };
    let query = match metric_query(context, zip_path) {
        Ok(query) => query,
        Err(text) => return error(StatusCode::BAD_REQUEST, text),
    };
    let (subject, label, run) = if query.run {
        let Some(id) = shown_run(mlbench, pk) else {
            return no_run();
        };
        let model = mlbench.projections.read();
        let Some(view) = model.mlbench.runs.get(&id) else {
            return no_run();
        };
        let name = view
            .state
            .request
            .as_ref()
            .map(|r| r.name.clone())
            .unwrap_or_default();
        (format!("run:{id}"), name, Some(view.clone()))
    } else {
        let known = views::known_pod(&mlbench.projections.read(), &mlbench.settings.release, pk);
        if !known {
            return error(StatusCode::NOT_FOUND, "Pod not found");
        }
        (format!("pod:{pk}"), pk.to_string(), None)
    };
    let points = match read(&mlbench.metrics, subject, query.filter.clone(), query.since).await {
        Ok(points) => points,
        Err(response) => return response,
    };
    let shaped = match shape(by_name(points), &query) {
        Ok(shaped) => shaped,
        Err(text) => return error(StatusCode::BAD_REQUEST, text),
    };
    if !query.zip {
        let body: Map<String, Value> = shaped
            .iter()
            .map(|(name, series)| {
                let points: Vec<Value> = series.iter().map(shown_point).collect();
                (name.clone(), Value::Array(points))
            })
            .collect();
        return answer(StatusCode::OK, Value::Object(body));
    }
    let mut entries = Vec::new();
    match &run {
        Some(view) => {
            for (name, series) in &shaped {
                if name.starts_with("TaskResult") {
                    if name == "TaskResult @ 0" {
                        if let Some(last) = series.last() {
                            entries.push((
                                "official_result.txt".into(),
                                last.value.clone().into_bytes(),
                            ));
                        }
                    }
                    continue;
                }
                entries.push((format!("result_{name}.json"), series_json(series)));
            }
            let Some(request) = view.state.request.as_ref() else {
                return no_run();
            };
            let from = view.created_at.timestamp_micros();
            let until = view
                .finished_at
                .map(|at| at.timestamp_micros())
                .unwrap_or(i64::MAX);
            for vm in 0..request.num_workers {
                let pod = infralog_actors::decide::mlbench::pod_name(
                    &mlbench.settings.release,
                    &request.name,
                    vm,
                );
                let points =
                    match read(&mlbench.metrics, format!("pod:{pod}"), None, Some(from)).await {
                        Ok(points) => points,
                        Err(response) => return response,
                    };
                for (name, points) in by_name(points) {
                    let series: Vec<Shown> = points
                        .iter()
                        .filter(|p| p.date_us <= until)
                        .map(|p| Shown {
                            date_us: p.date_us,
                            value: p.value.clone(),
                            cumulative: p.cumulative,
                        })
                        .collect();
                    entries.push((format!("{pod}_{name}.json"), series_json(&series)));
                }
            }
        }
        None => {
            for (name, series) in &shaped {
                entries.push((format!("{label}_{name}.json"), series_json(series)));
            }
        }
    }
    // The file name travels in a header: keep it to safe characters.
    let file: String = label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    HttpResponse::Ok()
        .content_type("application/zip")
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=metrics_{file}.zip"),
        ))
        .body(zip::stored_zip(&entries))
}

/// `POST /api/metrics/`: one point, durable before its 201.
pub async fn post(
    mlbench: &Mlbench,
    context: &RequestContext,
    body: &[u8],
    basic: bool,
) -> HttpResponse {
    let fields = match request::fields(&content_type(context), body) {
        Ok(fields) => fields,
        Err(error) => return body_error(error),
    };
    let (owner, mut point) = match request::metric_point(&fields) {
        Ok(checked) => checked,
        Err(MetricBodyError::NoOwner) => {
            return answer(
                StatusCode::BAD_REQUEST,
                json!({
                    "status": "Bad Request",
                    "message": "Run ID has to be supplied",
                    "data": fields,
                }),
            )
        }
        Err(MetricBodyError::Invalid(text)) => return error(StatusCode::BAD_REQUEST, text),
    };
    if !basic {
        // Without the identity's credentials, only a run's own token posts,
        // and only that run's metrics.
        let allowed = match (&owner, bearer(context)) {
            (MetricOwner::Run(id), Some(token)) => mlbench.runs.token_matches(*id, &token),
            _ => false,
        };
        if !allowed {
            return error(StatusCode::UNAUTHORIZED, "Authentication required");
        }
    }
    let echo = match &owner {
        MetricOwner::Run(id) => {
            if shown_run(mlbench, &id.to_string()).is_none() {
                return no_run();
            }
            point.subject = format!("run:{id}");
            ("run_id", json!(id))
        }
        MetricOwner::Pod(name) => {
            let known =
                views::known_pod(&mlbench.projections.read(), &mlbench.settings.release, name);
            if !known {
                return error(StatusCode::NOT_FOUND, "Pod not found");
            }
            point.subject = format!("pod:{name}");
            ("pod_name", json!(name))
        }
    };
    let written = mlbench
        .metrics
        .write_metrics(MetricWrite::Insert(vec![point.clone()]))
        .await;
    if let Err(e) = written {
        return storage_failure(e);
    }
    let mut body = Map::new();
    body.insert(echo.0.into(), echo.1);
    body.insert("name".into(), json!(point.name));
    body.insert("value".into(), json!(point.value));
    body.insert("date".into(), json!(format_date(point.date_us)));
    body.insert("metadata".into(), json!(point.metadata));
    body.insert("cumulative".into(), json!(point.cumulative));
    answer(StatusCode::CREATED, Value::Object(body))
}
