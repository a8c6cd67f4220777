//! The TOSCA side of the API (`im-behaviour.md` §2.6, §2.7, §7): `GET …/outputs`, the
//! stored template's outputs evaluated against the live VMs, and `POST …/{id}` with a
//! TOSCA body, which merges it into the stored template and scales to its counts.

use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use infralog_actors::runtime::InfrastructureRequest;
use infralog_events::domain::VmId;

use super::admission::Caller;
use super::commit::{Lane, Touch};
use super::errors::{ApiError, Failure};
use super::media::DefaultType;
use super::plan;
use super::render::vm_document;
use crate::projections::{InfrastructureView, VmView};
use crate::radl::Radl;
use crate::tosca::{Template, VmFacts};

/// The first half of a TOSCA add: the template merged and checked, the surplus VMs
/// removed. The caller adds `radl` and records `document` with it.
pub struct StartedAdd {
    /// The RADL to add (deploys for the missing VMs).
    pub radl: Radl,
    /// The merged template, to store.
    pub document: String,
    /// Whether VMs were removed (or asked to be).
    pub removed: bool,
    /// IM's 404 when fewer VMs than asked were removed, to answer if nothing is added.
    pub incomplete_removal: Option<ApiError>,
}

/// Merges `document` into the infrastructure's template (or takes it as is when the
/// infrastructure has none), compares its counts with the live VMs, checks the
/// addition and the Accept header, and only then removes the surplus (IM removes
/// before it adds).
pub async fn start_add(
    lane: &Lane<'_>,
    caller: &Caller<'_>,
    view: InfrastructureView,
    document: &str,
    contextualize: bool,
) -> Result<StartedAdd, ApiError> {
    let (state, endpoint) = (caller.state, caller.endpoint);
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
    let stored = super::render::stored_radl(&view, endpoint)?;
    plan::plan_resources(
        &stored,
        scaling.radl.clone(),
        &caller.identity,
        &state.connectors,
        state.limits.max_vms_per_request,
        contextualize,
        state.context_policy(Some(&view)),
    )
    .map_err(|e| endpoint.error(Failure::Other(e.0)))?;
    caller.representation(DefaultType::UriList)?;
    let removed = !scaling.requested.is_empty();
    let incomplete_removal = (scaling.remove.len() != scaling.requested.len()).then(|| {
        ApiError::im(
            StatusCode::NOT_FOUND,
            format!(
                "Error deleting resources {} (removed {})",
                scaling.requested_repr(),
                scaling.remove.len()
            ),
        )
    });
    if !scaling.remove.is_empty() {
        let vm_ids: Vec<VmId> = scaling.remove.iter().map(|id| VmId(*id)).collect();
        let plan = plan::plan_for(&stored, state.context_policy(Some(&view)))
            .map_err(|e| endpoint.error(Failure::Other(e.0)))?;
        // IM removes through `RemoveResource`, which saves the infrastructure.
        lane.commit(Touch::Yes, async |_| {
            let request = InfrastructureRequest::RemoveResources {
                vm_ids: vm_ids.clone(),
                context: contextualize,
                plan,
                credentials: caller.cloud_credentials(),
            };
            Ok((request, ()))
        })
        .await?;
    }
    Ok(StartedAdd {
        radl: scaling.radl,
        document: merged.to_yaml(),
        removed,
        incomplete_removal,
    })
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
