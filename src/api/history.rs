//! infralog's own full-history transfer (not in IM): `GET /infrastructures/{id}/history`
//! exports every envelope of an infrastructure and its VMs; `PUT
//! /infrastructures?format=history` imports such a document. The document itself
//! is `transfer::history_document`; the rules are in `docs/transfer.md`.
//!
//! These are the only handlers that reach the event store: a history is the log
//! itself, not a read model, and an import writes envelopes that no actor decided
//! (they were decided on the source instance). Actors never run for an imported
//! infrastructure before its events are in the log (the id was unknown here, so no
//! request reached an actor), so the registry rehydrates it from the imported
//! stream on first use.

use std::collections::HashMap;
use std::sync::Arc;

use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use infralog_events::domain::ids::VM_STREAM_PREFIX;
use infralog_events::domain::InfId;
use infralog_events::{Envelope, EventStore, StoreError, StreamId};

use super::errors::{ApiError, Endpoint};
use super::guard;
use super::media::{self, negotiate, require_json, DefaultType};
use super::{respond, AppState, RequestContext};
use crate::history::HistoryError;
use crate::transfer::history_document as history;

/// History documents may be far larger than a RADL body.
pub const MAX_HISTORY_BYTES: usize = 64 * 1024 * 1024;

/// How many stream events are read per call.
const READ_BATCH: usize = 4096;

/// The response header saying what an import did: `imported` or `already-present`.
pub const IMPORT_OUTCOME_HEADER: &str = "x-infralog-import";

/// `GET /infrastructures/{id}/history`: the history document (JSON).
pub async fn export(
    state: &AppState,
    context: &RequestContext,
    inf: &str,
) -> Result<HttpResponse, ApiError> {
    let endpoint = Endpoint::GetInfrastructureProperty;
    let lines = guard::credential_lines(context)?;
    require_json(&context.accept)
        .map_err(|u| ApiError::im(StatusCode::UNSUPPORTED_MEDIA_TYPE, u.to_string()))?;
    let identity = guard::identity(&lines, endpoint)?;
    let view = guard::owned(state, &identity, inf, endpoint).await?;
    let store = Arc::clone(&state.store);
    let id = view.id;
    let document = web::block(move || {
        let mut envelopes = read_history(store.as_ref(), id)?;
        Ok::<_, HistoryError>(history::to_json_line(&history::build(
            store.instance_id(),
            id,
            &mut envelopes,
        )))
    })
    .await
    .map_err(|e| ApiError::internal(format!("the history reader failed: {e}")))?
    .map_err(|e| ApiError::internal(format!("reading the history of {inf}: {e}")))?;
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .body(document))
}

/// Every envelope of the infrastructure's stream and its VMs' streams, up to the
/// head as it was when the read began (a consistent cut while others write), from
/// the latest history boundary on (`crate::history`): an id imported again is
/// exported as a history of its own, its streams numbered from version 1, so that
/// nothing of an earlier life leaves with it and the document imports whole.
fn read_history(store: &dyn EventStore, id: InfId) -> Result<Vec<Envelope>, HistoryError> {
    let head = store.head_position();
    let infrastructure = StreamId::new(id.stream_name()).map_err(StoreError::from)?;
    let boundary = crate::history::latest_boundary(store, &infrastructure, head)?;
    let mut envelopes = read_streams(store, id, head)?;
    envelopes.retain(|e| e.position >= boundary);
    if boundary > 1 {
        envelopes.sort_by_key(|e| e.position);
        let mut versions: HashMap<StreamId, u64> = HashMap::new();
        for envelope in &mut envelopes {
            let version = versions.entry(envelope.stream.clone()).or_default();
            *version += 1;
            envelope.version = *version;
        }
    }
    Ok(envelopes)
}

fn read_streams(store: &dyn EventStore, id: InfId, head: u64) -> Result<Vec<Envelope>, StoreError> {
    let mut streams = vec![StreamId::new(id.stream_name())?];
    // VM streams are `vm-<id>-<n>`: they sort together right after this prefix.
    let prefix = StreamId::new(format!("{VM_STREAM_PREFIX}{id}-"))?;
    let mut after = prefix.clone();
    'listing: loop {
        let page = store.list_streams(Some(&after), READ_BATCH)?;
        let Some((last, _)) = page.last() else { break };
        after = last.clone();
        for (stream, _) in &page {
            if !stream.as_str().starts_with(prefix.as_str()) {
                break 'listing;
            }
            streams.push(stream.clone());
        }
        if page.len() < READ_BATCH {
            break;
        }
    }
    let mut envelopes = Vec::new();
    for stream in &streams {
        let mut from = 1;
        loop {
            let batch = store.read_stream(stream, from, READ_BATCH)?;
            let full = batch.len() == READ_BATCH;
            let Some(last) = batch.last() else { break };
            from = last.version + 1;
            envelopes.extend(batch.into_iter().filter(|e| e.position <= head));
            if !full {
                break;
            }
        }
    }
    Ok(envelopes)
}

/// `PUT /infrastructures?format=history`: import a history document.
///
/// Checks, before anything is written: credentials; the document (format, count,
/// checksum, every payload, that it decodes); that the caller is one of the owners
/// at the end of the history (403 otherwise). Then the store imports all streams in
/// one batch: 200 with the infrastructure's URI, also when exactly this history is
/// already here (nothing written); 409 when the infrastructure exists here with
/// another history.
pub async fn import(
    state: &AppState,
    context: &RequestContext,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let endpoint = Endpoint::ImportInfrastructure;
    // Credentials before the body: it may be 64 MiB, and nobody may make us buffer
    // that without them (this route is infralog's own, no IM order to keep).
    let lines = guard::credential_lines(context)?;
    let identity = guard::identity(&lines, endpoint)?;
    let body = super::body::read(context, payload, MAX_HISTORY_BYTES).await?;
    let content_type = media::content_type(context.request.headers());
    if !content_type.is_empty() && !content_type.iter().any(|t| t == "application/json") {
        return Err(ApiError::im(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "Unsupported Media Type {}: a history document is application/json",
                media::python_list_repr(&content_type)
            ),
        ));
    }
    let verified = web::block(move || history::verify(&body))
        .await
        .map_err(|e| ApiError::internal(format!("the history verifier failed: {e}")))?
        .map_err(|e| {
            ApiError::im(
                StatusCode::BAD_REQUEST,
                format!("{}invalid history document: {e}", endpoint.prefix()),
            )
        })?;
    if !guard::is_owner(state, &verified.owners, &identity).await {
        return Err(ApiError::im(
            StatusCode::FORBIDDEN,
            format!(
                "{}the history's owners do not include the caller: only an owner may import it",
                endpoint.prefix()
            ),
        ));
    }
    let representation = negotiate(&context.accept, DefaultType::UriList)
        .map_err(|u| endpoint.unsupported_accept(u))?;
    let id = verified.infrastructure;
    // One answer for every id in use, whatever its state or history, to anyone:
    // what the log holds of it is not the importer's to learn.
    let in_use = || {
        ApiError::im(
            StatusCode::CONFLICT,
            format!(
                "{}infrastructure {id} already exists here with another history",
                endpoint.prefix()
            ),
        )
    };
    // Only an owner at the id's last event here may write to it (a non-owner's
    // document can never equal the log, so the store would refuse it too).
    let last_owners = state.projections.read().last_owners(id).map(<[_]>::to_vec);
    if let Some(owners) = last_owners {
        if !guard::is_owner(state, &owners, &identity).await {
            return Err(in_use());
        }
    }
    let imported =
        state
            .store
            .import_streams(verified.request)
            .await
            .map_err(|error| match error {
                StoreError::ImportConflict { .. } | StoreError::EventIdConflict { .. } => {
                    tracing::info!(inf = %id, %error, "history import refused");
                    in_use()
                }
                StoreError::InvalidImport(_) | StoreError::TooLarge(_) => ApiError::im(
                    StatusCode::BAD_REQUEST,
                    format!("{}invalid history document: {error}", endpoint.prefix()),
                ),
                other => ApiError::internal(format!("importing {id}: {other}")),
            })?;
    state.projections.wait_for(imported.last_position()).await;
    state.touch(id);
    let mut response = respond::uri(representation, &context.infrastructure_uri(&id.to_string()));
    let outcome = if imported.already_present {
        "already-present"
    } else {
        "imported"
    };
    response.headers_mut().insert(
        HeaderName::from_static(IMPORT_OUTCOME_HEADER),
        HeaderValue::from_static(outcome),
    );
    tracing::info!(inf = %id, source = %verified.source_instance, outcome, "history import");
    Ok(response)
}
