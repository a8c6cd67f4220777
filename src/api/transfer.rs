//! `GET /infrastructures/{id}/data` (export, optionally evicting) and
//! `PUT /infrastructures` (import), in IM's format (`crate::transfer::im`).

use actix_web::{web, HttpResponse};
use infralog_actors::decide::DomainError;
use infralog_actors::runtime::{ActorError, InfrastructureRequest};

use super::body;
use super::errors::{ApiError, Endpoint, Failure};
use super::guard;
use super::media::{self, negotiate, python_list_repr, DefaultType};
use super::render::vm_document;
use super::respond::{self, actor_error, metadata};
use super::{AppState, RequestContext};
use crate::auth::Identity;
use crate::projections::InfrastructureView;
use crate::transfer::im;

/// The `data` property: IM's serialized infrastructure as a JSON string in
/// `{"data": …}`. With `delete`, the infrastructure is then evicted: it answers 404
/// here until it is imported again (its VMs are not touched).
pub async fn export(
    state: &AppState,
    context: &RequestContext,
    identity: &Identity,
    view: &InfrastructureView,
    delete: bool,
) -> Result<HttpResponse, ApiError> {
    let endpoint = Endpoint::GetInfrastructureProperty;
    let exported = im::export(
        view,
        |vm| vm_document(view, vm).map(|document| document.to_text()),
        chrono::Utc::now(),
    );
    let data = im::to_python_json(&exported);
    if delete {
        let outcome = state
            .registry
            .infrastructure(
                view.id,
                InfrastructureRequest::Evict,
                metadata(context, identity),
            )
            .await
            .map_err(|e| actor_error(endpoint, e))?;
        state.projections.wait_for(outcome.position).await;
    } else {
        state.touch(view.id);
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
        "history" => super::history::import(state, context, payload).await,
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
    let endpoint = Endpoint::ImportInfrastructure;
    let body = body::read(context, payload, state.limits.max_body_bytes).await?;
    let lines = guard::credential_lines(context)?;
    let identity = guard::identity(&lines, endpoint)?;
    let content_type = media::content_type(context.request.headers());
    if !content_type.is_empty() && !content_type.iter().any(|t| t.contains("application/json")) {
        return Err(endpoint.error(Failure::Other(format!(
            "415: Unsupported Media Type {}",
            python_list_repr(&content_type)
        ))));
    }
    let representation = negotiate(&context.accept, DefaultType::UriList)
        .map_err(|u| endpoint.unsupported_accept(u))?;
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
        if !guard::is_owner(state, &owners, &identity).await {
            return Err(actor_error(
                endpoint,
                ActorError::Domain(DomainError::AlreadyExists),
            ));
        }
    }
    document.infrastructure.owners = guard::owner_records(state, &identity).await;
    let outcome = state
        .registry
        .infrastructure(
            id,
            InfrastructureRequest::Import {
                imported: Box::new(document.infrastructure),
            },
            metadata(context, &identity),
        )
        .await
        .map_err(|e| actor_error(endpoint, e))?;
    state.projections.wait_for(outcome.position).await;
    state.touch(id);
    Ok(respond::uri(
        representation,
        &context.infrastructure_uri(&id.to_string()),
    ))
}
