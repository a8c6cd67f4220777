//! `/infrastructures/{id}/vms/{vm}[/{prop|op}]` and disk snapshots.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use infralog_actors::connectors::AlterRequest;
use infralog_actors::runtime::{InfrastructureRequest, VmRequest};
use infralog_events::domain::VmId;

use super::admission::{Admission, Caller};
use super::body;
use super::commit::Touch;
use super::errors::{ApiError, Endpoint, Failure, TEXT_PLAIN};
use super::events;
use super::media::DefaultType;
use super::params::parse_int;
use super::plan;
use super::render::{stored_radl, unreadable_vm_radl, vm_document};
use super::respond;
use super::{AppState, RequestContext};
use crate::projections::{InfrastructureView, VmView};
use crate::radl::{self, Radl, Value};

/// A VM id as IM reads it (`int(vmid)`): refused ids are simply unknown VMs.
fn vm_id(text: &str) -> Option<VmId> {
    if text.contains('.') {
        return None;
    }
    parse_int(text)
        .and_then(|id| u32::try_from(id).ok())
        .map(VmId)
}

/// The VM `vm` of `view`: unknown ids are `Invalid VM ID`, destroyed VMs `Deleted VM.`.
fn find_vm<'v>(
    view: &'v InfrastructureView,
    vm: &str,
    endpoint: Endpoint,
) -> Result<&'v VmView, ApiError> {
    let found = vm_id(vm)
        .and_then(|id| view.vm(id))
        .ok_or_else(|| endpoint.error(Failure::InvalidVmId))?;
    if found.is_live() {
        Ok(found)
    } else {
        Err(endpoint.error(Failure::DeletedVm))
    }
}

fn document(view: &InfrastructureView, vm: &VmView, endpoint: Endpoint) -> Result<Radl, ApiError> {
    vm_document(view, vm).ok_or_else(|| unreadable_vm_radl(view, vm, endpoint))
}

/// `GET …/vms/{vm}`: the VM's networks and system.
pub async fn info(
    state: &AppState,
    context: &RequestContext,
    inf: &str,
    vm: &str,
) -> Result<HttpResponse, ApiError> {
    let admission = Admission::header(state, context)?;
    let at = admission.parameters(|v, query| events::at_param(query, v))?;
    let caller = admission.credentials(Endpoint::GetVm)?;
    let endpoint = caller.endpoint;
    let view = caller.owned(inf).await?;
    let view = state.observed(view, vm_id(vm), at).await;
    let view = events::view_at_version(state, view, at, endpoint).await?;
    let vm = find_vm(&view, vm, endpoint)?;
    let document = document(&view, vm, endpoint)?;
    let representation = caller.representation(DefaultType::TextPlain)?;
    // A read, but IM saves the infrastructure here (it refreshes the VM).
    state.touch(view.id);
    Ok(respond::text_or_json(
        representation,
        document.to_vm_info_text(),
        respond::field("radl", &document.to_vm_info_json()),
    ))
}

/// `GET …/vms/{vm}/{prop}`: the VM's contextualization log, or one of its features.
pub async fn property(
    state: &AppState,
    context: &RequestContext,
    inf: &str,
    vm: &str,
    prop: &str,
) -> Result<HttpResponse, ApiError> {
    let admission = Admission::header(state, context)?;
    let at = admission.parameters(|v, query| {
        if let Some(step) = query.get("step") {
            v.integer("query", "step", step);
        }
        events::at_param(query, v)
    })?;
    let caller = admission.credentials(Endpoint::GetVmProperty)?;
    let endpoint = caller.endpoint;
    let view = caller.owned(inf).await?;
    let view = state.observed(view, vm_id(vm), at).await;
    let view = events::view_at_version(state, view, at, endpoint).await?;
    let vm_view = find_vm(&view, vm, endpoint)?;
    let not_found = || {
        ApiError::im(
            StatusCode::NOT_FOUND,
            format!("Incorrect property {prop} for VM ID {vm}"),
        )
    };
    let (text, json) = match prop {
        "contmsg" => {
            let log = vm_view.contmsg();
            let json = serde_json::Value::String(log.clone()).to_string();
            (log, json)
        }
        // IM's reverse-SSH helper embeds an owner's password in a script; infralog
        // keeps no password to embed.
        "command" => return Err(not_found()),
        _ => {
            let document = document(&view, vm_view, endpoint)?;
            let value = document
                .systems
                .first()
                .and_then(|system| system.property(prop))
                .ok_or_else(not_found)?;
            (value.to_text(), value.to_json())
        }
    };
    let representation = caller.representation(DefaultType::TextPlain)?;
    // IM reads a VM's property through its VM info, which saves (see `info`).
    state.touch(view.id);
    Ok(respond::text_or_json(
        representation,
        text,
        respond::field(prop, &json),
    ))
}

/// `PUT …/vms/{vm}/{start|stop|reboot}`.
pub async fn operate(
    state: &AppState,
    context: &RequestContext,
    inf: &str,
    vm: &str,
    op: &str,
) -> Result<HttpResponse, ApiError> {
    let admission = Admission::header(state, context)?;
    let op = admission.parameters(|v, _| v.literal("op", op, &["start", "stop", "reboot"]))?;
    let endpoint = match op {
        Some("stop") => Endpoint::StopVm,
        Some("reboot") => Endpoint::RebootVm,
        _ => Endpoint::StartVm,
    };
    let caller = admission.credentials(endpoint)?;
    let view = caller.owned(inf).await?;
    let vm_view = find_vm(&view, vm, endpoint)?;
    let credentials = cloud_credentials(&caller, vm_view);
    let request = match endpoint {
        Endpoint::StopVm => VmRequest::Stop { credentials },
        Endpoint::RebootVm => VmRequest::Reboot { credentials },
        _ => VmRequest::Start { credentials },
    };
    caller
        .writer()
        .vm(view.id, vm_view.id, request, Touch::No)
        .await?;
    Ok(respond::empty())
}

/// `PUT …/vms/{vm}`: resize a VM; answers its whole RADL.
pub async fn alter(
    state: &AppState,
    context: &RequestContext,
    inf: &str,
    vm: &str,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let (admission, deployment) =
        Admission::with_body(state, context, payload, body::parse_deployment).await?;
    let caller = admission.credentials(Endpoint::AlterVm)?;
    let endpoint = caller.endpoint;
    let view = caller.owned(inf).await?;
    let vm_view = find_vm(&view, vm, endpoint)?;
    // IM alters a VM with the RADL generated from a TOSCA body.
    let request = deployment.into_radl();
    let system = request.system(&vm_view.system).ok_or_else(|| {
        endpoint.error(Failure::Other(format!(
            "Incorrect RADL no system with name {} provided.",
            vm_view.system
        )))
    })?;
    let alteration = alter_request(system).map_err(|e| endpoint.error(Failure::Other(e)))?;
    let representation = caller.representation(DefaultType::TextPlain)?;
    let vm_id = vm_view.id;
    let request = VmRequest::Alter {
        request: alteration,
        credentials: cloud_credentials(&caller, vm_view),
    };
    caller
        .writer()
        .vm(view.id, vm_id, request, Touch::Yes)
        .await?;
    let view = caller.owned(inf).await?;
    let vm_view = view
        .vm(vm_id)
        .ok_or_else(|| endpoint.error(Failure::InvalidVmId))?;
    let document = document(&view, vm_view, endpoint)?;
    Ok(respond::text_or_json(
        representation,
        document.to_text(),
        respond::field("radl", &document.to_json()),
    ))
}

/// What the Dummy cloud's alter copies: `cpu.count` as written and `memory.size`
/// in decimal megabytes (IM's `getValue('M')`).
fn alter_request(system: &radl::System) -> Result<AlterRequest, String> {
    let number = |prop: &str, unit: &str| -> Option<Result<String, String>> {
        let feature = system.features.feature(prop)?;
        Some(match &feature.value {
            Value::Num(number) => number
                .convert(&feature.unit, unit)
                .map(|n| n.to_string())
                .map_err(|e| e.0),
            _ => Err(format!("{prop} is not a number")),
        })
    };
    Ok(AlterRequest {
        cpu_count: number("cpu.count", "").transpose()?,
        memory_megabytes: number("memory.size", "M").transpose()?,
    })
}

/// `DELETE …/vms/{id,id,…}`: every id is checked before any VM is removed.
pub async fn remove(
    state: &AppState,
    context: &RequestContext,
    inf: &str,
    vms: &str,
) -> Result<HttpResponse, ApiError> {
    let admission = Admission::header(state, context)?;
    let contextualize = admission.parameters(|v, query| v.flag(query, "context", true))?;
    let caller = admission.credentials(Endpoint::RemoveVms)?;
    let endpoint = caller.endpoint;
    let view = caller.owned(inf).await?;
    let ids_of = |view: &InfrastructureView| -> Result<Vec<VmId>, ApiError> {
        vms.split(',')
            .map(|vm| find_vm(view, vm, endpoint).map(|found| found.id))
            .collect()
    };
    ids_of(&view)?;
    let lane = caller.writer().lane(view.id).await?;
    // Checked again in turn: a VM removed meanwhile is `Deleted VM.`, as IM says.
    lane.commit(Touch::Yes, async |view| {
        let vm_ids = ids_of(view)?;
        let radl = stored_radl(view, endpoint)?;
        let request = InfrastructureRequest::RemoveResources {
            vm_ids,
            context: contextualize,
            plan: plan::plan_for(&radl, state.context_policy(Some(view)))
                .map_err(|e| endpoint.error(Failure::Other(e.0)))?,
            credentials: caller.cloud_credentials(),
        };
        Ok((request, ()))
    })
    .await?;
    Ok(respond::empty())
}

/// `PUT …/vms/{vm}/disks/{disk}/snapshot?image_name=…`: answers the image's URL.
pub async fn snapshot(
    state: &AppState,
    context: &RequestContext,
    inf: &str,
    vm: &str,
    disk: &str,
) -> Result<HttpResponse, ApiError> {
    let admission = Admission::header(state, context)?;
    let (disk, image_name, auto_delete) = admission.parameters(|v, query| {
        (
            v.integer("path", "disknum", disk),
            v.required(query, "image_name").map(str::to_string),
            v.flag(query, "auto_delete", false),
        )
    })?;
    let (Some(disk), Some(image_name)) = (disk, image_name) else {
        return Err(ApiError::internal("validated parameters are missing"));
    };
    let caller = admission.credentials(Endpoint::Snapshot)?;
    let endpoint = caller.endpoint;
    let view = caller.owned(inf).await?;
    let vm_view = find_vm(&view, vm, endpoint)?;
    let disk = u32::try_from(disk).map_err(|_| {
        endpoint.error(Failure::Other(format!(
            "Error creating snapshot: the VM has no disk {disk}"
        )))
    })?;
    let request = VmRequest::Snapshot {
        disk,
        image_name,
        auto_delete,
        credentials: cloud_credentials(&caller, vm_view),
    };
    let outcome = caller
        .writer()
        .vm(view.id, vm_view.id, request, Touch::No)
        .await?;
    Ok(HttpResponse::Ok()
        .content_type(TEXT_PLAIN)
        .body(outcome.detail.unwrap_or_default()))
}

/// The request's credentials for the VM's cloud.
fn cloud_credentials(
    caller: &Caller,
    vm: &VmView,
) -> infralog_actors::connectors::CloudCredentials {
    caller
        .cloud_credentials()
        .remove(&vm.cloud.id)
        .unwrap_or_default()
}
