//! The TOSCA side of the API (`im-behaviour.md` §2.6, §2.7, §7): `GET …/outputs`, the
//! stored template's outputs evaluated against the live VMs, and `POST …/{id}` with a
//! TOSCA body, which merges it into the stored template and scales to its counts.

use actix_web::HttpResponse;
use infralog_actors::runtime::InfrastructureRequest;
use infralog_events::domain::VmId;

use super::errors::{ApiError, Endpoint, Failure};
use super::render::vm_document;
use super::respond::{actor_error, metadata};
use super::{guard, plan, AppState, RequestContext};
use crate::auth::Identity;
use crate::projections::{InfrastructureView, VmView};
use crate::radl::Radl;
use crate::tosca::{Template, VmFacts};

/// A TOSCA add, prepared: the RADL to add, the merged template to store and the VMs
/// to remove first.
pub struct ToscaAdd {
    pub radl: Radl,
    pub document: String,
    pub remove: Vec<u32>,
}

/// Merges `document` into the infrastructure's template (or takes it as is when the
/// infrastructure has none) and compares its counts with the live VMs.
pub fn prepare_add(
    view: &InfrastructureView,
    document: &str,
    endpoint: Endpoint,
) -> Result<ToscaAdd, ApiError> {
    let refuse = |e: crate::tosca::ToscaError| endpoint.error(Failure::Other(e.to_string()));
    let update = Template::parse(document).map_err(refuse)?;
    let merged = match &view.tosca {
        Some(stored) => Template::parse(stored)
            .map_err(|e| {
                ApiError::internal(format!(
                    "the stored TOSCA of {} does not parse: {e}",
                    view.id
                ))
            })?
            .merged_with(&update)
            .map_err(refuse)?,
        None => update,
    };
    // Live VMs in id order, which is creation order: the oldest go first.
    let current: Vec<(String, u32)> = view
        .live_vms()
        .map(|vm| (vm.system.to_string(), vm.id.0))
        .collect();
    let scaling = merged.scale(&current).map_err(refuse)?;
    Ok(ToscaAdd {
        radl: scaling.radl,
        document: merged.to_yaml(),
        remove: scaling.remove,
    })
}

/// Removes the surplus VMs of a TOSCA add (IM removes before it adds) and answers
/// the view after the removal.
pub async fn remove_surplus(
    state: &AppState,
    context: &RequestContext,
    identity: &Identity,
    view: InfrastructureView,
    remove: &[u32],
    contextualize: bool,
    endpoint: Endpoint,
) -> Result<InfrastructureView, ApiError> {
    if remove.is_empty() {
        return Ok(view);
    }
    let stored = crate::radl::parse(&view.radl).map_err(|e| {
        ApiError::internal(format!(
            "the stored RADL of {} does not parse: {e}",
            view.id
        ))
    })?;
    let outcome = state
        .registry
        .infrastructure(
            view.id,
            InfrastructureRequest::RemoveResources {
                vm_ids: remove.iter().map(|id| VmId(*id)).collect(),
                context: contextualize,
                plan: plan::plan_for(&stored, state.contextualization_delay),
                credentials: guard::cloud_credentials(identity),
            },
            metadata(context, identity),
        )
        .await
        .map_err(|e| actor_error(endpoint, e))?;
    state.projections.wait_for(outcome.position).await;
    guard::owned(state, identity, &view.id.to_string(), endpoint).await
}

/// The `{"outputs": {…}}` answer (the caller has checked the Accept header).
pub fn outputs(view: &InfrastructureView, tosca: &str) -> Result<HttpResponse, ApiError> {
    let template = Template::parse(tosca).map_err(|e| {
        ApiError::internal(format!(
            "the stored TOSCA of {} does not parse: {e}",
            view.id
        ))
    })?;
    let vms: Vec<VmFacts> = view.live_vms().map(|vm| facts(view, vm)).collect();
    let body = serde_json::json!({ "outputs": template.outputs(&vms) });
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .body(body.to_string()))
}

/// The addresses of a VM as IM's `getPublicIP`/`getPrivateIP` see them: the IP of each
/// interface, public when its network is.
fn facts(view: &InfrastructureView, vm: &VmView) -> VmFacts {
    let mut facts = VmFacts {
        system: vm.system.to_string(),
        cloud_id: vm.cloud_vm_id.as_deref().map(str::to_owned),
        contmsg: vm.contmsg(),
        ..VmFacts::default()
    };
    let Some(document) = vm_document(view, vm) else {
        return facts;
    };
    let Some(system) = document.systems.first() else {
        return facts;
    };
    for index in 0.. {
        let Some(connection) = system
            .features
            .string(&format!("net_interface.{index}.connection"))
        else {
            break;
        };
        let Some(ip) = system.features.string(&format!("net_interface.{index}.ip")) else {
            continue;
        };
        if document.network(connection).is_some_and(|n| n.is_public()) {
            facts.public_ips.push(ip.to_owned());
        } else {
            facts.private_ips.push(ip.to_owned());
        }
    }
    facts
}
