//! `/infrastructures` and `/infrastructures/{id}[/{prop|op}]`.
//!
//! Each handler is admitted in IM's order (`admission.rs`) and ends with the commit
//! step (`commit.rs`); what is here is each endpoint's own.

use actix_web::http::header::HeaderValue;
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use infralog_actors::decide::DomainError;
use infralog_actors::runtime::InfrastructureRequest;
use infralog_events::domain::InfId;
use serde_json::json;

use super::admission::Admission;
use super::body::{self, Deployment};
use super::commit::Touch;
use super::errors::{ApiError, Endpoint, Failure};
use super::events;
use super::guard;
use super::media::DefaultType;
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
    let caller = Admission::header(state, context)?.credentials(Endpoint::ListInfrastructures)?;
    let endpoint = caller.endpoint;
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
    let representation = caller.representation(DefaultType::UriList)?;
    let owned = guard::owned_infrastructures(state, &caller.identity).await;
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
    let (admission, deployment) =
        Admission::with_body(state, context, payload, body::parse_deployment).await?;
    let (asynchronous, dry_run) = admission.parameters(|v, query| {
        (
            v.flag(query, "async", false),
            v.flag(query, "dry_run", false),
        )
    })?;
    let caller = admission.credentials(Endpoint::CreateInfrastructure)?;
    let (endpoint, identity) = (caller.endpoint, &caller.identity);
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
        let estimate = plan::estimate(&request, identity, &state.connectors)
            .map_err(|e| endpoint.error(Failure::Other(e.0)))?;
        caller.representation(DefaultType::Json)?;
        return Ok(HttpResponse::Ok()
            .content_type("application/json")
            .body(estimate.to_string()));
    }
    let planned = plan_resources(
        &Radl::default(),
        request,
        identity,
        &state.connectors,
        state.limits.max_vms_per_request,
        true,
        state.context_policy(None),
    )
    .map_err(|e| endpoint.error(Failure::Other(e.0)))?;
    let representation = caller.representation(DefaultType::UriList)?;
    let owners = guard::owner_records(state, identity).await;
    let id = InfId::random();
    // A new id has no version to conflict with and no other writer: no lane.
    let request = InfrastructureRequest::Create {
        owners,
        tosca,
        resources: planned.request,
        credentials: caller.cloud_credentials(),
        asynchronous,
    };
    caller.writer().send(id, request, Touch::Yes).await?;
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
    let admission = Admission::header(state, context)?;
    let at = admission.parameters(|v, query| events::at_param(query, v))?;
    let caller = admission.credentials(Endpoint::GetInfrastructure)?;
    let view = caller.owned(inf).await?;
    let view = events::view_at_version(state, view, at, caller.endpoint).await?;
    let representation = caller.representation(DefaultType::UriList)?;
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
    let admission = Admission::header(state, context)?;
    let (force, asynchronous) = admission
        .parameters(|v, query| (v.flag(query, "force", false), v.flag(query, "async", false)))?;
    let caller = admission.credentials(Endpoint::DestroyInfrastructure)?;
    let view = caller.owned(inf).await?;
    let lane = caller.writer().lane(view.id).await?;
    lane.commit(Touch::Yes, async |_| {
        let request = InfrastructureRequest::Destroy {
            force,
            asynchronous,
            credentials: caller.cloud_credentials(),
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
    let admission = Admission::header(state, context)?;
    let (prop, headeronly, delete, at) = admission.parameters(|v, query| {
        (
            v.literal("prop", prop, &PROPERTIES),
            v.flag(query, "headeronly", false),
            v.flag(query, "delete", false),
            events::at_param(query, v),
        )
    })?;
    let prop = prop.unwrap_or_default();
    if matches!(prop, "state" | "outputs" | "data") {
        admission.json_only()?;
    }
    let caller = admission.credentials(Endpoint::GetInfrastructureProperty)?;
    let view = caller.owned(inf).await?;
    let view = if matches!(prop, "state" | "contmsg") {
        state.observed(view, None, at).await
    } else {
        view
    };
    let view = events::view_at_version(state, view, at, caller.endpoint).await?;
    let text_property = |text: String, field: &str| -> Result<HttpResponse, ApiError> {
        let representation = caller.representation(DefaultType::TextPlain)?;
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
            let representation = caller.representation(DefaultType::TextPlain)?;
            Ok(respond::text_or_json(
                representation,
                names.join("\n"),
                json!({ "authorization": names }).to_string(),
            ))
        }
        "state" => {
            // A read, but IM saves the infrastructure here (it refreshes its VMs).
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
        _ => super::transfer::export(&caller, &view, delete).await,
    }
}

/// `PUT /infrastructures/{id}/{start|stop}`.
pub async fn operate(
    state: &AppState,
    context: &RequestContext,
    inf: &str,
    op: &str,
) -> Result<HttpResponse, ApiError> {
    let admission = Admission::header(state, context)?;
    let op = admission.parameters(|v, _| v.literal("op", op, &["start", "stop"]))?;
    let (endpoint, stop) = match op {
        Some("stop") => (Endpoint::StopInfrastructure, true),
        _ => (Endpoint::StartInfrastructure, false),
    };
    let caller = admission.credentials(endpoint)?;
    let view = caller.owned(inf).await?;
    let credentials = caller.cloud_credentials();
    let request = if stop {
        InfrastructureRequest::Stop { credentials }
    } else {
        InfrastructureRequest::Start { credentials }
    };
    // A start or stop is prepared against nothing and writes only its VMs'
    // streams, so it cannot conflict with a write in the lane: it need not wait
    // for its turn there (the actor still runs commands one at a time).
    caller.writer().send(view.id, request, Touch::No).await?;
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
    let (admission, deployment) =
        Admission::with_body(state, context, payload, body::parse_deployment).await?;
    let contextualize = admission.parameters(|v, query| v.flag(query, "context", true))?;
    let caller = admission.credentials(Endpoint::AddResources)?;
    let endpoint = caller.endpoint;
    let view = caller.owned(inf).await?;
    let lane = caller.writer().lane(view.id).await?;
    let view = lane.view().await?;
    if view.lifecycle == crate::projections::Lifecycle::Deleting {
        return Err(endpoint.error(Failure::Other(DomainError::BeingDestroyed.to_string())));
    }
    let (request, tosca_document, removed, mut incomplete_removal) = match deployment {
        Deployment::Radl(radl) => (*radl, None, false, None),
        Deployment::Tosca { document, .. } => {
            let started = tosca::start_add(&lane, &caller, view, &document, contextualize).await?;
            (
                started.radl,
                Some(started.document),
                started.removed,
                started.incomplete_removal,
            )
        }
    };
    let added = lane
        .commit(Touch::Yes, async |view| {
            let stored = stored_radl(view, endpoint)?;
            let planned = plan_resources(
                &stored,
                request.clone(),
                &caller.identity,
                &state.connectors,
                state.limits.max_vms_per_request,
                contextualize,
                state.context_policy(Some(view)),
            )
            .map_err(|e| endpoint.error(Failure::Other(e.0)))?;
            let representation = caller.representation(DefaultType::UriList)?;
            let nothing_to_add = planned.request.vms.is_empty();
            let request = InfrastructureRequest::AddResources {
                expected_version: view.version,
                resources: planned.request,
                tosca: tosca_document.clone(),
                credentials: caller.cloud_credentials(),
            };
            Ok((request, (representation, nothing_to_add, planned.merged)))
        })
        .await?;
    let (representation, nothing_to_add, merged) = added.prepared;
    if nothing_to_add && !removed && contextualize {
        // IM reconfigures when an add deploys nothing.
        lane.commit(Touch::Yes, async |view| {
            let plan = plan::plan_for(&merged, state.context_policy(Some(view)))
                .map_err(|e| endpoint.error(Failure::Other(e.0)))?;
            let request = InfrastructureRequest::Reconfigure {
                expected_version: view.version,
                radl: None,
                plan,
            };
            Ok((request, ()))
        })
        .await?;
    }
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
    let (admission, deployment) =
        Admission::with_body(state, context, payload, body::parse_deployment).await?;
    let caller = admission.credentials(Endpoint::Reconfigure)?;
    let endpoint = caller.endpoint;
    // IM reads `vm_list` itself, after the credentials: it is no FastAPI parameter.
    let vm_list = context.query.get("vm_list").filter(|v| !v.is_empty());
    if let Some(list) = vm_list {
        if list.split(',').any(|id| id.trim().parse::<i64>().is_err()) {
            return Err(ApiError::im(
                StatusCode::BAD_REQUEST,
                "Incorrect vm_list format.",
            ));
        }
    }
    let view = caller.owned(inf).await?;
    // IM reconfigures with the RADL generated from a TOSCA body.
    let request = deployment.into_radl();
    let changes_radl = !request.configures.is_empty()
        || !request.systems.is_empty()
        || !request.contextualize.is_absent();
    let lane = caller.writer().lane(view.id).await?;
    lane.commit(Touch::Yes, async |view| {
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
            plan: plan::plan_for(&stored, state.context_policy(Some(view)))
                .map_err(|e| endpoint.error(Failure::Other(e.0)))?,
        };
        Ok((request, ()))
    })
    .await?;
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
    let (admission, new_line) =
        Admission::with_body(state, context, payload, body::parse_owner).await?;
    let overwrite = admission.parameters(|v, query| v.flag(query, "overwrite", false))?;
    let caller = admission.credentials(Endpoint::ChangeOwners)?;
    let endpoint = caller.endpoint;
    let view = caller.owned(inf).await?;
    let new_identity =
        crate::auth::authenticate(std::slice::from_ref(&new_line)).map_err(|invalid| {
            endpoint.error(Failure::Other(format!(
                "Invalid new infrastructure data provided: {invalid}"
            )))
        })?;
    let new_owners = guard::owner_records(state, &new_identity).await;
    let lane = caller.writer().lane(view.id).await?;
    // IM saves the infrastructure after a change of owners.
    lane.commit(Touch::Yes, async |view| {
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
