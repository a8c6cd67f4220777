//! Moving infrastructures between instances, in two formats.
//!
//! - IM's (`crate::transfer::im`): `GET /infrastructures/{id}/data` exports,
//!   optionally evicting, and `PUT /infrastructures` imports.
//! - infralog's full history (`crate::transfer::history_document`; not in IM; the rules are in
//!   `docs/transfer.md`): `GET /infrastructures/{id}/history` exports every envelope
//!   of an infrastructure and its VMs, `PUT /infrastructures?format=history` imports
//!   such a document. These are the only handlers that reach the event store: a
//!   history is the log itself, not a read model, and an import writes envelopes
//!   that no actor decided (they were decided on the source instance). The import
//!   still ends with the commit step's tail (`Writer::import_history`).

use std::sync::Arc;

use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use infralog_actors::decide::DomainError;
use infralog_actors::runtime::{ActorError, InfrastructureRequest};

use super::admission::{Admission, Caller};
use super::body;
use super::commit::Touch;
use super::errors::{actor_error, history_in_use, ApiError, Endpoint, Failure};
use super::guard;
use super::media::{self, python_list_repr, DefaultType};
use super::render::vm_document;
use super::{respond, AppState, RequestContext};
use crate::history::HistoryError;
use crate::projections::InfrastructureView;
use crate::transfer::{history_document as history, im};

/// History documents may be far larger than a RADL body.
pub const MAX_HISTORY_BYTES: usize = 64 * 1024 * 1024;

/// The response header saying what a history import did: `imported` or
/// `already-present`.
pub const IMPORT_OUTCOME_HEADER: &str = "x-infralog-import";

/// The `data` property: IM's serialized infrastructure as a JSON string in
/// `{"data": …}`. With `delete`, the infrastructure is then evicted: it answers 404
/// here until it is imported again (its VMs are not touched).
pub async fn export(
    caller: &Caller<'_>,
    view: &InfrastructureView,
    delete: bool,
) -> Result<HttpResponse, ApiError> {
    let exported = im::export(
        view,
        |vm| vm_document(view, vm).map(|document| document.to_text()),
        chrono::Utc::now(),
    );
    let data = im::to_python_json(&exported);
    if delete {
        // IM saves the infrastructure (marked deleted) before it forgets it.
        caller
            .writer()
            .send(view.id, InfrastructureRequest::Evict, Touch::Yes)
            .await?;
    } else {
        caller.state.touch(view.id);
    }
    let body = serde_json::json!({ "data": data }).to_string();
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .body(body))
}

/// `PUT /infrastructures`. The `format` parameter picks the document's format: IM's
/// (the default) or infralog's full history.
pub async fn import(
    state: &AppState,
    context: &RequestContext,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    match context.query.get("format").unwrap_or("") {
        "" | "im" => import_im(state, context, payload).await,
        "history" => import_history(state, context, payload).await,
        other => Err(Endpoint::ImportInfrastructure.error(Failure::Other(format!(
            "unknown format {other:?}: expected 'im' or 'history'"
        )))),
    }
}

/// Imports IM's format: the document is checked completely, the id kept and the
/// importer made the only owner, before anything is recorded. An id recorded here
/// before is imported again only by an owner at its last event (see
/// `docs/api.md`).
async fn import_im(
    state: &AppState,
    context: &RequestContext,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let (admission, body) =
        Admission::with_body(state, context, payload, |_, body| Ok(body.to_vec())).await?;
    let caller = admission.credentials(Endpoint::ImportInfrastructure)?;
    let endpoint = caller.endpoint;
    let content_type = media::content_type(context.request.headers());
    if !content_type.is_empty() && !content_type.iter().any(|t| t.contains("application/json")) {
        return Err(endpoint.error(Failure::Other(format!(
            "415: Unsupported Media Type {}",
            python_list_repr(&content_type)
        ))));
    }
    let representation = caller.representation(DefaultType::UriList)?;
    let incorrect = |reason: String| {
        endpoint.error(Failure::Other(format!(
            "Error importing the infrastructure, incorrect data: {reason}"
        )))
    };
    let mut document =
        im::parse_import(&body, chrono::Utc::now()).map_err(|e| incorrect(e.to_string()))?;
    if document.infrastructure.vms.len() as u64 > state.limits.max_vms_per_request {
        return Err(incorrect(format!(
            "more than {} VMs",
            state.limits.max_vms_per_request
        )));
    }
    let id = document.id;
    // An id this instance has recorded goes back only to an owner at its last
    // event; anyone else gets the answer an id in use gets, whatever its state,
    // so that the refusal says nothing of what the id was or who had it.
    let last_owners = state.projections.read().last_owners(id).map(<[_]>::to_vec);
    if let Some(owners) = last_owners {
        if !guard::is_owner(state, &owners, &caller.identity).await {
            return Err(actor_error(
                endpoint,
                ActorError::Domain(DomainError::AlreadyExists),
            ));
        }
    }
    document.infrastructure.owners = guard::owner_records(state, &caller.identity).await;
    let request = InfrastructureRequest::Import {
        imported: Box::new(document.infrastructure),
    };
    caller.writer().send(id, request, Touch::Yes).await?;
    Ok(respond::uri(
        representation,
        &context.infrastructure_uri(&id.to_string()),
    ))
}

/// `GET /infrastructures/{id}/history`: the history document (JSON) of the
/// infrastructure's present life (`crate::history::present_life`).
pub async fn export_history(
    state: &AppState,
    context: &RequestContext,
    inf: &str,
) -> Result<HttpResponse, ApiError> {
    let admission = Admission::header(state, context)?;
    admission.json_only()?;
    let caller = admission.credentials(Endpoint::GetInfrastructureProperty)?;
    let view = caller.owned(inf).await?;
    let store = Arc::clone(&state.store);
    let id = view.id;
    let document = web::block(move || {
        let mut envelopes = crate::history::present_life(store.as_ref(), id)?;
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

/// `PUT /infrastructures?format=history`: import a history document.
///
/// Checks, before anything is written: credentials; the document (format, count,
/// checksum, every payload, that it decodes); that the caller is one of the owners
/// at the end of the history (403 otherwise). Then the store imports all streams in
/// one batch: 200 with the infrastructure's URI, also when exactly this history is
/// already here (nothing written); 409 when the infrastructure exists here with
/// another history.
async fn import_history(
    state: &AppState,
    context: &RequestContext,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    // Credentials before the body: it may be 64 MiB, and nobody may make us buffer
    // that without them (this route is infralog's own, no IM order to keep).
    let caller = Admission::header(state, context)?.credentials(Endpoint::ImportInfrastructure)?;
    let endpoint = caller.endpoint;
    let body = body::read(context, payload, MAX_HISTORY_BYTES).await?;
    let content_type = media::content_type(context.request.headers());
    if !content_type.is_empty() && !content_type.iter().any(|t| t == "application/json") {
        return Err(ApiError::im(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "Unsupported Media Type {}: a history document is application/json",
                python_list_repr(&content_type)
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
    if !guard::is_owner(state, &verified.owners, &caller.identity).await {
        return Err(ApiError::im(
            StatusCode::FORBIDDEN,
            format!(
                "{}the history's owners do not include the caller: only an owner may import it",
                endpoint.prefix()
            ),
        ));
    }
    let representation = caller.representation(DefaultType::UriList)?;
    let id = verified.infrastructure;
    // Only an owner at the id's last event here may write to it (a non-owner's
    // document can never equal the log, so the store would refuse it too).
    let last_owners = state.projections.read().last_owners(id).map(<[_]>::to_vec);
    if let Some(owners) = last_owners {
        if !guard::is_owner(state, &owners, &caller.identity).await {
            return Err(history_in_use(endpoint, id));
        }
    }
    // An import is a save in IM's terms, like IM's own import.
    let imported = caller
        .writer()
        .import_history(id, verified.request, Touch::Yes)
        .await?;
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
