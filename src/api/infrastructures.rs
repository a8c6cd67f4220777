//! `/infrastructures` and `/infrastructures/{id}[/{prop|op}]`.
//!
//! Each handler checks in IM's order: the body, the `Authorization` header, the
//! path and query parameters (422), the credentials, the infrastructure's existence
//! and ownership, then the request's content; the Accept header is checked last but
//! before anything is recorded, so an answer that is an error changes nothing.

use actix_web::http::header::HeaderValue;
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use infralog_actors::decide::DomainError;
use infralog_actors::runtime::InfrastructureRequest;
use infralog_events::domain::InfId;
use serde_json::json;

use super::body::{self, Deployment};
use super::commit::Writer;
use super::errors::{ApiError, Endpoint, Failure};
use super::events;
use super::guard;
use super::media::{negotiate, require_json, DefaultType};
use super::params::Validator;
use super::plan::{self, plan_resources};
use super::render::stored_radl;
use super::respond;
use super::tosca;
use super::{AppState, RequestContext};
use crate::projections::InfrastructureView;
use crate::radl::{self, Radl};

/// The properties of `GET /infrastructures/{id}/{prop}`, in IM's order.
const PROPERTIES: [&str; 7] = [
    "contmsg",
    "radl",
    "tosca",
    "state",
    "outputs",
    "data",
    "authorization",
];

/// The longest `?filter=` accepted.
const MAX_FILTER_LEN: usize = 1024;

/// `GET /infrastructures`: the caller's infrastructures, most recently used first,
/// optionally those whose RADL matches the regular expression `filter`.
pub async fn list(state: &AppState, context: &RequestContext) -> Result<HttpResponse, ApiError> {
    let endpoint = Endpoint::ListInfrastructures;
    let lines = guard::credential_lines(context)?;
    let identity = guard::identity(&lines, endpoint)?;
    let filter = match context.query.get("filter").filter(|f| !f.is_empty()) {
        None => None,
        Some(pattern) if pattern.len() > MAX_FILTER_LEN => {
            return Err(endpoint.error(Failure::Other(format!(
                "Invalid filter: longer than {MAX_FILTER_LEN} characters"
            ))))
        }
        Some(pattern) => Some(
            regex::Regex::new(pattern)
                .map_err(|e| endpoint.error(Failure::Other(format!("Invalid filter: {e}"))))?,
        ),
    };
    let representation = negotiate(&context.accept, DefaultType::UriList)
        .map_err(|u| endpoint.unsupported_accept(u))?;
    let owned = guard::owned_infrastructures(state, &identity).await;
    let model = state.projections.read();
    let mut listed: Vec<(&InfrastructureView, (u64, u64))> = {
        let recency = state.recency_snapshot();
        owned
            .iter()
            .filter_map(|id| model.infrastructures.get(id))
            .filter(|view| view.is_served())
            .filter(|view| match &filter {
                None => true,
                Some(filter) => {
                    filter.is_match(&view.radl)
                        || view.tosca.as_deref().is_some_and(|t| filter.is_match(t))
                }
            })
            .map(|view| (view, recency.of(view)))
            .collect()
    };
    listed.sort_unstable_by_key(|entry| std::cmp::Reverse(entry.1));
    // Users may own tens of thousands: write the URIs straight into the body.
    let prefix = context.infrastructure_uri("");
    Ok(respond::id_uri_list(
        representation,
        &prefix,
        listed.iter().map(|(view, _)| view.id.as_uuid()),
    ))
}

/// `POST /infrastructures`: create (or, with `dry_run`, estimate) an infrastructure.
pub async fn create(
    state: &AppState,
    context: &RequestContext,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let endpoint = Endpoint::CreateInfrastructure;
    let body = body::read(context, payload, state.limits.max_body_bytes).await?;
    let deployment = body::parse_deployment(context, &body)?;
    let lines = guard::credential_lines(context)?;
    let mut validator = Validator::new();
    let asynchronous = validator.flag(&context.query, "async", false);
    let dry_run = validator.flag(&context.query, "dry_run", false);
    validator.finish()?;
    let identity = guard::identity(&lines, endpoint)?;
    let (request, tosca) = match deployment {
        Deployment::Radl(radl) => (*radl, None),
        Deployment::Tosca { radl, document } => (*radl, Some(document)),
    };
    if dry_run {
        let mut request = request;
        radl::merge::resolve_references(&mut request, &Radl::default(), &[])
            .map_err(|e| endpoint.error(Failure::Other(e.to_string())))?;
        // A dry run validates exactly like create, the deploy bound included.
        plan::check_vm_total(&request, state.limits.max_vms_per_request)
            .map_err(|e| endpoint.error(Failure::Other(e.0)))?;
        let estimate = plan::estimate(&request, &identity, &state.connectors)
            .map_err(|e| endpoint.error(Failure::Other(e.0)))?;
        negotiate(&context.accept, DefaultType::Json)
            .map_err(|u| endpoint.unsupported_accept(u))?;
        return Ok(HttpResponse::Ok()
            .content_type("application/json")
            .body(estimate.to_string()));
    }
    let planned = plan_resources(
        &Radl::default(),
        request,
        &identity,
        &state.connectors,
        state.limits.max_vms_per_request,
        true,
        state.contextualization_delay,
    )
    .map_err(|e| endpoint.error(Failure::Other(e.0)))?;
    let representation = negotiate(&context.accept, DefaultType::UriList)
        .map_err(|u| endpoint.unsupported_accept(u))?;
    let owners = guard::owner_records(state, &identity).await;
    let id = InfId::random();
    // A new id has no version to conflict with and no other writer: no lane.
    Writer::new(state, context, &identity, endpoint)
        .send(
            id,
            InfrastructureRequest::Create {
                owners,
                tosca,
                resources: planned.request,
                credentials: guard::cloud_credentials(&identity),
                asynchronous,
            },
        )
        .await?;
    state.touch(id);
    let id_text = id.to_string();
    let mut response = respond::uri(representation, &context.infrastructure_uri(&id_text));
    insert_infid(&mut response, &id_text);
    Ok(response)
}

/// `GET /infrastructures/{id}`: the URIs of its live VMs.
pub async fn vm_list(
    state: &AppState,
    context: &RequestContext,
    inf: &str,
) -> Result<HttpResponse, ApiError> {
    let endpoint = Endpoint::GetInfrastructure;
    let lines = guard::credential_lines(context)?;
    let mut validator = Validator::new();
    let at = events::at_param(&context.query, &mut validator);
    validator.finish()?;
    let identity = guard::identity(&lines, endpoint)?;
    let view = guard::owned(state, &identity, inf, endpoint).await?;
    let view = events::view_at_version(state, view, at, endpoint).await?;
    let representation = negotiate(&context.accept, DefaultType::UriList)
        .map_err(|u| endpoint.unsupported_accept(u))?;
    let uris: Vec<String> = view
        .live_vms()
        .map(|vm| context.vm_uri(inf, vm.id))
        .collect();
    Ok(respond::uri_list(representation, &uris))
}

/// `DELETE /infrastructures/{id}`.
pub async fn destroy(
    state: &AppState,
    context: &RequestContext,
    inf: &str,
) -> Result<HttpResponse, ApiError> {
    let endpoint = Endpoint::DestroyInfrastructure;
    let lines = guard::credential_lines(context)?;
    let mut validator = Validator::new();
    let force = validator.flag(&context.query, "force", false);
    let asynchronous = validator.flag(&context.query, "async", false);
    validator.finish()?;
    let identity = guard::identity(&lines, endpoint)?;
    let view = guard::owned(state, &identity, inf, endpoint).await?;
    let lane = Writer::new(state, context, &identity, endpoint)
        .lane(view.id)
        .await?;
    lane.commit(async |_| {
        let request = InfrastructureRequest::Destroy {
            force,
            asynchronous,
            credentials: guard::cloud_credentials(&identity),
        };
        Ok((request, ()))
    })
    .await?;
    Ok(respond::empty())
}

/// `GET /infrastructures/{id}/{prop}`.
pub async fn property(
    state: &AppState,
    context: &RequestContext,
    inf: &str,
    prop: &str,
) -> Result<HttpResponse, ApiError> {
    let endpoint = Endpoint::GetInfrastructureProperty;
    let lines = guard::credential_lines(context)?;
    let mut validator = Validator::new();
    let prop = validator.literal("prop", prop, &PROPERTIES);
    let headeronly = validator.flag(&context.query, "headeronly", false);
    let delete = validator.flag(&context.query, "delete", false);
    let at = events::at_param(&context.query, &mut validator);
    validator.finish()?;
    let prop = prop.unwrap_or_default();
    if matches!(prop, "state" | "outputs" | "data") {
        require_json(&context.accept)
            .map_err(|u| ApiError::im(StatusCode::UNSUPPORTED_MEDIA_TYPE, u.to_string()))?;
    }
    let identity = guard::identity(&lines, endpoint)?;
    let view = guard::owned(state, &identity, inf, endpoint).await?;
    let view = events::view_at_version(state, view, at, endpoint).await?;
    let text_property = |text: String, field: &str| -> Result<HttpResponse, ApiError> {
        let representation = negotiate(&context.accept, DefaultType::TextPlain)
            .map_err(|u| endpoint.unsupported_accept(u))?;
        let json = respond::field(field, &serde_json::Value::String(text.clone()).to_string());
        Ok(respond::text_or_json(representation, text, json))
    };
    match prop {
        "contmsg" => {
            let text = if headeronly {
                view.contmsg.render()
            } else {
                view.full_contmsg()
            };
            text_property(text, "contmsg")
        }
        "radl" => text_property(view.radl.to_string(), "radl"),
        "tosca" => match &view.tosca {
            Some(tosca) => text_property(tosca.to_string(), "tosca"),
            None => Err(ApiError::im(
                StatusCode::FORBIDDEN,
                "'tosca' infrastructure property is not valid in this infrastructure",
            )),
        },
        "authorization" => {
            let names: Vec<&str> = view.owners.iter().map(|o| o.username.as_str()).collect();
            let representation = negotiate(&context.accept, DefaultType::TextPlain)
                .map_err(|u| endpoint.unsupported_accept(u))?;
            Ok(respond::text_or_json(
                representation,
                names.join("\n"),
                json!({ "authorization": names }).to_string(),
            ))
        }
        "state" => {
            state.touch(view.id);
            let vm_states: serde_json::Map<String, serde_json::Value> = view
                .vm_states()
                .into_iter()
                .map(|(vm, status)| (vm.to_string(), json!(status.as_str())))
                .collect();
            let body =
                json!({ "state": { "state": view.status().as_str(), "vm_states": vm_states } });
            Ok(HttpResponse::Ok()
                .content_type("application/json")
                .body(body.to_string()))
        }
        "outputs" => match &view.tosca {
            Some(document) => tosca::outputs(&view, document),
            None => Err(ApiError::im(
                StatusCode::FORBIDDEN,
                "'outputs' infrastructure property is not valid in this infrastructure",
            )),
        },
        _ => super::transfer::export(state, context, &identity, &view, delete).await,
    }
}

/// `PUT /infrastructures/{id}/{start|stop}`.
pub async fn operate(
    state: &AppState,
    context: &RequestContext,
    inf: &str,
    op: &str,
) -> Result<HttpResponse, ApiError> {
    let lines = guard::credential_lines(context)?;
    let mut validator = Validator::new();
    let op = validator.literal("op", op, &["start", "stop"]);
    validator.finish()?;
    let (endpoint, stop) = match op {
        Some("stop") => (Endpoint::StopInfrastructure, true),
        _ => (Endpoint::StartInfrastructure, false),
    };
    let identity = guard::identity(&lines, endpoint)?;
    let view = guard::owned(state, &identity, inf, endpoint).await?;
    let credentials = guard::cloud_credentials(&identity);
    let request = if stop {
        InfrastructureRequest::Stop { credentials }
    } else {
        InfrastructureRequest::Start { credentials }
    };
    // A start or stop is prepared against nothing and writes only its VMs'
    // streams, so it cannot conflict with a write in the lane: it need not wait
    // for its turn there (the actor still runs commands one at a time).
    Writer::new(state, context, &identity, endpoint)
        .send(view.id, request)
        .await?;
    state.touch(view.id);
    Ok(respond::empty())
}

/// `POST /infrastructures/{id}`: add resources (and, with nothing to add,
/// reconfigure, as IM does when `context` is set).
pub async fn add(
    state: &AppState,
    context: &RequestContext,
    inf: &str,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let endpoint = Endpoint::AddResources;
    let body = body::read(context, payload, state.limits.max_body_bytes).await?;
    let deployment = body::parse_deployment(context, &body)?;
    let lines = guard::credential_lines(context)?;
    let mut validator = Validator::new();
    let contextualize = validator.flag(&context.query, "context", true);
    validator.finish()?;
    let identity = guard::identity(&lines, endpoint)?;
    let view = guard::owned(state, &identity, inf, endpoint).await?;
    let lane = Writer::new(state, context, &identity, endpoint)
        .lane(view.id)
        .await?;
    let view = lane.view().await?;
    if view.lifecycle == crate::projections::Lifecycle::Deleting {
        return Err(endpoint.error(Failure::Other(DomainError::BeingDestroyed.to_string())));
    }
    let (request, tosca_document, removed, mut incomplete_removal) = match deployment {
        Deployment::Radl(radl) => (*radl, None, false, None),
        Deployment::Tosca { document, .. } => {
            let started = tosca::start_add(
                &lane,
                state,
                context,
                &identity,
                view,
                &document,
                contextualize,
            )
            .await?;
            (
                started.radl,
                Some(started.document),
                started.removed,
                started.incomplete_removal,
            )
        }
    };
    let added = lane
        .commit(async |view| {
            let stored = stored_radl(view, endpoint)?;
            let planned = plan_resources(
                &stored,
                request.clone(),
                &identity,
                &state.connectors,
                state.limits.max_vms_per_request,
                contextualize,
                state.contextualization_delay,
            )
            .map_err(|e| endpoint.error(Failure::Other(e.0)))?;
            let representation = negotiate(&context.accept, DefaultType::UriList)
                .map_err(|u| endpoint.unsupported_accept(u))?;
            let nothing_to_add = planned.request.vms.is_empty();
            let request = InfrastructureRequest::AddResources {
                expected_version: view.version,
                resources: planned.request,
                tosca: tosca_document.clone(),
                credentials: guard::cloud_credentials(&identity),
            };
            Ok((request, (representation, nothing_to_add, planned.merged)))
        })
        .await?;
    let (representation, nothing_to_add, merged) = added.prepared;
    if nothing_to_add && !removed && contextualize {
        // IM reconfigures when an add deploys nothing.
        let plan = plan::plan_for(&merged, state.contextualization_delay);
        lane.commit(async |view| {
            let request = InfrastructureRequest::Reconfigure {
                expected_version: view.version,
                radl: None,
                plan,
            };
            Ok((request, ()))
        })
        .await?;
    }
    state.touch(lane.id());
    let vm_ids = added.outcome.vm_ids;
    // IM answers 404 when a TOSCA add removed fewer VMs than asked and added none.
    if let Some(error) = incomplete_removal.take().filter(|_| vm_ids.is_empty()) {
        return Err(error);
    }
    let uris: Vec<String> = vm_ids.iter().map(|vm| context.vm_uri(inf, vm)).collect();
    let mut response = respond::uri_list(representation, &uris);
    if contextualize {
        insert_infid(&mut response, inf);
    }
    Ok(response)
}

/// `PUT /infrastructures/{id}/reconfigure`.
pub async fn reconfigure(
    state: &AppState,
    context: &RequestContext,
    inf: &str,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let endpoint = Endpoint::Reconfigure;
    let body = body::read(context, payload, state.limits.max_body_bytes).await?;
    let deployment = body::parse_deployment(context, &body)?;
    let lines = guard::credential_lines(context)?;
    let vm_list = context.query.get("vm_list").filter(|v| !v.is_empty());
    let identity = guard::identity(&lines, endpoint)?;
    if let Some(list) = vm_list {
        if list.split(',').any(|id| id.trim().parse::<i64>().is_err()) {
            return Err(ApiError::im(
                StatusCode::BAD_REQUEST,
                "Incorrect vm_list format.",
            ));
        }
    }
    let view = guard::owned(state, &identity, inf, endpoint).await?;
    // IM reconfigures with the RADL generated from a TOSCA body.
    let request = deployment.into_radl();
    let changes_radl = !request.configures.is_empty()
        || !request.systems.is_empty()
        || !request.contextualize.is_absent();
    let lane = Writer::new(state, context, &identity, endpoint)
        .lane(view.id)
        .await?;
    lane.commit(async |view| {
        let mut stored = stored_radl(view, endpoint)?;
        if changes_radl {
            radl::merge::reconfigure(&mut stored, &request)
                .map_err(|e| endpoint.error(Failure::Other(e.to_string())))?;
        }
        let text = changes_radl
            .then(|| radl::storable::stored_text(&stored))
            .transpose()
            .map_err(|e| endpoint.error(Failure::Other(e.to_string())))?;
        let request = InfrastructureRequest::Reconfigure {
            expected_version: view.version,
            radl: text,
            plan: plan::plan_for(&stored, state.contextualization_delay),
        };
        Ok((request, ()))
    })
    .await?;
    state.touch(view.id);
    let mut response = respond::empty();
    insert_infid(&mut response, inf);
    Ok(response)
}

/// `POST /infrastructures/{id}/authorization`: add an owner, or replace them all.
pub async fn change_owners(
    state: &AppState,
    context: &RequestContext,
    inf: &str,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let endpoint = Endpoint::ChangeOwners;
    let body = body::read(context, payload, state.limits.max_body_bytes).await?;
    let new_line = body::parse_owner(context, &body)?;
    let lines = guard::credential_lines(context)?;
    let mut validator = Validator::new();
    let overwrite = validator.flag(&context.query, "overwrite", false);
    validator.finish()?;
    let identity = guard::identity(&lines, endpoint)?;
    let view = guard::owned(state, &identity, inf, endpoint).await?;
    let new_identity =
        crate::auth::authenticate(std::slice::from_ref(&new_line)).map_err(|invalid| {
            endpoint.error(Failure::Other(format!(
                "Invalid new infrastructure data provided: {invalid}"
            )))
        })?;
    let new_owners = guard::owner_records(state, &new_identity).await;
    let lane = Writer::new(state, context, &identity, endpoint)
        .lane(view.id)
        .await?;
    lane.commit(async |view| {
        let owners = if overwrite {
            new_owners.clone()
        } else {
            let mut owners = view.owners.clone();
            if !guard::is_owner(state, &view.owners, &new_identity).await {
                owners.extend(new_owners.iter().cloned());
            }
            owners
        };
        let request = InfrastructureRequest::ChangeOwners {
            expected_version: view.version,
            owners,
        };
        Ok((request, ()))
    })
    .await?;
    Ok(respond::empty())
}

/// IM's `InfID` header, for load balancers' stickiness.
fn insert_infid(response: &mut HttpResponse, inf: &str) {
    if let Ok(value) = HeaderValue::from_str(inf) {
        response.headers_mut().insert(
            actix_web::http::header::HeaderName::from_static("infid"),
            value,
        );
    }
}
