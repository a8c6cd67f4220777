//! infralog's own history routes: `GET /infrastructures/{id}/events`, and `?at=` on
//! the read properties (time travel).
//!
//! Both read the log itself rather than the projections, because the projections
//! keep only the present. The reads are blocking store calls and run on the
//! blocking pool, never on an actix worker.

use std::sync::Arc;

use actix_web::web::{self, Bytes};
use actix_web::HttpResponse;
use infralog_events::EventStore;
use serde_json::json;

use super::admission::Admission;
use super::errors::{ApiError, Endpoint, Failure};
use super::media::UnsupportedAccept;
use super::params::{Query, Validator};
use super::{AppState, RequestContext};
use crate::history::fold::{view_at, Until};
use crate::history::render::event_json;
use crate::history::{HistoryError, HistorySubject};
use crate::projections::InfrastructureView;

/// Events per page when `limit` is not given (JSON), and the largest `limit`.
pub const DEFAULT_LIMIT: i64 = 1000;
pub const MAX_LIMIT: i64 = 10_000;
/// Events rendered per chunk of an ndjson answer.
const STREAM_BATCH: usize = 256;
const NDJSON: &str = "application/x-ndjson";

/// How the client wants the history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EventsFormat {
    Json,
    Ndjson,
}

/// The first Accept item that names JSON or ndjson decides; none at all is JSON.
pub(crate) fn negotiate_events(accept: &[String]) -> Result<EventsFormat, UnsupportedAccept> {
    if accept.is_empty() {
        return Ok(EventsFormat::Json);
    }
    for item in accept {
        match item.as_str() {
            NDJSON => return Ok(EventsFormat::Ndjson),
            "application/json" | "application/*" | "*/*" => return Ok(EventsFormat::Json),
            _ => {}
        }
    }
    Err(UnsupportedAccept(accept.join(",")))
}

fn internal(error: HistoryError) -> ApiError {
    ApiError::internal(format!("reading the history failed: {error}"))
}

/// `GET /infrastructures/{id}/events?from=&limit=`: the history of an
/// infrastructure and its VMs, in commit order, from history version `from`.
pub async fn events(
    state: &AppState,
    context: &RequestContext,
    inf: &str,
) -> Result<HttpResponse, ApiError> {
    let admission = Admission::header(state, context)?;
    let (from, limit) = admission.parameters(|v, query| {
        (
            v.bounded(query, "from", 1, i64::MAX).unwrap_or(1) as u64,
            v.bounded(query, "limit", 1, MAX_LIMIT),
        )
    })?;
    let caller = admission.credentials(Endpoint::GetInfrastructureProperty)?;
    let view = caller.owned(inf).await?;
    let format =
        negotiate_events(&context.accept).map_err(|u| caller.endpoint.unsupported_accept(u))?;
    let subject = HistorySubject::Infrastructure(view.id);
    answer_events(&state.store, subject, format, from, limit.map(|l| l as u64))
        .await
        .map_err(|error| ApiError::internal(error.to_string()))
}

/// Why a history could not be answered (a 500 for every face).
#[derive(Debug, thiserror::Error)]
pub(crate) enum EventsError {
    /// The blocking task did not finish.
    #[error("the reading task failed: {0}")]
    Task(String),
    /// The history could not be read.
    #[error("reading the history failed: {0}")]
    History(#[from] HistoryError),
}

/// The answer to an `…/events` request, once its parameters are checked: a page
/// of JSON (`limit` events at most, [`DEFAULT_LIMIT`] without it) or every event
/// from `from`, one a line. The IM route and the facades' routes share it, so
/// their histories read alike.
pub(crate) async fn answer_events(
    store: &Arc<dyn EventStore>,
    subject: HistorySubject,
    format: EventsFormat,
    from: u64,
    limit: Option<u64>,
) -> Result<HttpResponse, EventsError> {
    let store = Arc::clone(store);
    match format {
        EventsFormat::Json => {
            let limit = limit.unwrap_or(DEFAULT_LIMIT as u64) as usize;
            let body = web::block(move || events_page(store.as_ref(), &subject, from, limit))
                .await
                .map_err(|e| EventsError::Task(e.to_string()))??;
            Ok(HttpResponse::Ok()
                .content_type("application/json")
                .body(body.to_string()))
        }
        EventsFormat::Ndjson => Ok(stream_events(store, subject, from, limit)),
    }
}

/// One page: `{"events": [...]}`, with `next` (the `from` of the next page) when
/// there are more.
fn events_page(
    store: &dyn EventStore,
    subject: &HistorySubject,
    from: u64,
    limit: usize,
) -> Result<serde_json::Value, HistoryError> {
    let mut reader = subject.reader(store)?;
    reader.skip_to(from)?;
    let mut page = reader.next_batch(limit + 1)?;
    let next = (page.len() > limit).then(|| page[limit].version);
    page.truncate(limit);
    let events = page.iter().map(event_json).collect::<Result<Vec<_>, _>>()?;
    let mut body = json!({ "events": events });
    if let Some(next) = next {
        body["next"] = json!(next);
    }
    Ok(body)
}

/// Streams one JSON event per line, read in batches on a blocking thread. A read
/// that fails part-way ends the body early (the status line has gone already);
/// the failure is logged.
fn stream_events(
    store: Arc<dyn EventStore>,
    subject: HistorySubject,
    from: u64,
    limit: Option<u64>,
) -> HttpResponse {
    let (sender, receiver) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    tokio::task::spawn_blocking(move || {
        let result = (|| -> Result<(), HistoryError> {
            let mut reader = subject.reader(store.as_ref())?;
            reader.skip_to(from)?;
            let mut remaining = limit.unwrap_or(u64::MAX);
            while remaining > 0 {
                let batch = reader.next_batch((STREAM_BATCH as u64).min(remaining) as usize)?;
                if batch.is_empty() {
                    break;
                }
                remaining -= batch.len() as u64;
                let mut chunk = Vec::new();
                for event in &batch {
                    serde_json::to_writer(&mut chunk, &event_json(event)?).unwrap_or_default();
                    chunk.push(b'\n');
                }
                if sender.blocking_send(Ok(Bytes::from(chunk))).is_err() {
                    break; // The client went away.
                }
            }
            Ok(())
        })();
        if let Err(error) = result {
            tracing::error!(%subject, %error, "streaming the history failed");
            let _ = sender.blocking_send(Err(std::io::Error::other("the history cannot be read")));
        }
    });
    let body = futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|item| (item, receiver))
    });
    HttpResponse::Ok().content_type(NDJSON).streaming(body)
}

/// Reads `?at=`: a history version from 1 (422 otherwise).
pub fn at_param(query: &Query, validator: &mut Validator) -> Option<u64> {
    validator
        .bounded(query, "at", 1, i64::MAX)
        .map(|at| at as u64)
}

/// The view the read endpoints served right after history version `at` was
/// committed; the present view without `at`. A version past the end of the
/// history is a 400 naming the last one.
pub async fn view_at_version(
    state: &AppState,
    view: InfrastructureView,
    at: Option<u64>,
    endpoint: Endpoint,
) -> Result<InfrastructureView, ApiError> {
    let Some(at) = at else {
        return Ok(view);
    };
    let store = Arc::clone(&state.store);
    let inf = view.id;
    let folded = web::block(move || view_at(store.as_ref(), inf, Until::Version(at)))
        .await
        .map_err(|e| ApiError::internal(format!("the reading task failed: {e}")))?
        .map_err(internal)?;
    if at > folded.head {
        return Err(endpoint.error(Failure::Other(format!(
            "version {at} is beyond the history of the infrastructure, whose last version is {}",
            folded.head
        ))));
    }
    // Before its first event that makes it exist (an import records its VMs and,
    // for an id imported again, a history boundary first) there is nothing to show.
    folded.view.ok_or_else(|| {
        endpoint.error(Failure::Other(format!(
            "the infrastructure did not exist yet at version {at}"
        )))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ndjson_is_chosen_only_when_asked_for() {
        let list = |items: &[&str]| items.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(negotiate_events(&[]), Ok(EventsFormat::Json));
        assert_eq!(
            negotiate_events(&list(&["application/x-ndjson"])),
            Ok(EventsFormat::Ndjson)
        );
        assert_eq!(
            negotiate_events(&list(&["text/html", "*/*"])),
            Ok(EventsFormat::Json)
        );
        assert!(negotiate_events(&list(&["text/plain"])).is_err());
    }
}
