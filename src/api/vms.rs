//! `/infrastructures/{id}/vms/{vm}[/{prop|op}]` and disk snapshots.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use infralog_actors::connectors::AlterRequest;
use infralog_actors::runtime::{InfrastructureRequest, VmRequest};
use infralog_events::domain::VmId;

use super::body;
use super::commit::Writer;
use super::errors::{ApiError, Endpoint, Failure, TEXT_PLAIN};
use super::events;
use super::guard;
use super::media::{negotiate, DefaultType};
use super::params::{parse_int, Validator};
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
    let endpoint = Endpoint::GetVm;
    let lines = guard::credential_lines(context)?;
    let mut validator = Validator::new();
    let at = events::at_param(&context.query, &mut validator);
    validator.finish()?;
    let identity = guard::identity(&lines, endpoint)?;
    let view = guard::owned(state, &identity, inf, endpoint).await?;
    let view = events::view_at_version(state, view, at, endpoint).await?;
    let vm = find_vm(&view, vm, endpoint)?;
    let document = document(&view, vm, endpoint)?;
    let representation = negotiate(&context.accept, DefaultType::TextPlain)
        .map_err(|u| endpoint.unsupported_accept(u))?;
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
    let endpoint = Endpoint::GetVmProperty;
    let lines = guard::credential_lines(context)?;
    let mut validator = Validator::new();
    if let Some(step) = context.query.get("step") {
        validator.integer("query", "step", step);
    }
    let at = events::at_param(&context.query, &mut validator);
    validator.finish()?;
    let identity = guard::identity(&lines, endpoint)?;
    let view = guard::owned(state, &identity, inf, endpoint).await?;
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
    let representation = negotiate(&context.accept, DefaultType::TextPlain)
        .map_err(|u| endpoint.unsupported_accept(u))?;
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
    let lines = guard::credential_lines(context)?;
    let mut validator = Validator::new();
    let op = validator.literal("op", op, &["start", "stop", "reboot"]);
    validator.finish()?;
    let endpoint = match op {
        Some("stop") => Endpoint::StopVm,
        Some("reboot") => Endpoint::RebootVm,
        _ => Endpoint::StartVm,
    };
    let identity = guard::identity(&lines, endpoint)?;
    let view = guard::owned(state, &identity, inf, endpoint).await?;
    let vm_view = find_vm(&view, vm, endpoint)?;
    let credentials = cloud_credentials(&identity, vm_view);
    let request = match endpoint {
        Endpoint::StopVm => VmRequest::Stop { credentials },
        Endpoint::RebootVm => VmRequest::Reboot { credentials },
        _ => VmRequest::Start { credentials },
    };
    Writer::new(state, context, &identity, endpoint)
        .vm(view.id, vm_view.id, request)
        .await?;
    state.touch(view.id);
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
    let endpoint = Endpoint::AlterVm;
    let body = body::read(context, payload, state.limits.max_body_bytes).await?;
    let deployment = body::parse_deployment(context, &body)?;
    let lines = guard::credential_lines(context)?;
    let identity = guard::identity(&lines, endpoint)?;
    let view = guard::owned(state, &identity, inf, endpoint).await?;
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
    let representation = negotiate(&context.accept, DefaultType::TextPlain)
        .map_err(|u| endpoint.unsupported_accept(u))?;
    let vm_id = vm_view.id;
    Writer::new(state, context, &identity, endpoint)
        .vm(
            view.id,
            vm_id,
            VmRequest::Alter {
                request: alteration,
                credentials: cloud_credentials(&identity, vm_view),
            },
        )
        .await?;
    state.touch(view.id);
    let view = guard::owned(state, &identity, inf, endpoint).await?;
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
    let endpoint = Endpoint::RemoveVms;
    let lines = guard::credential_lines(context)?;
    let mut validator = Validator::new();
    let contextualize = validator.flag(&context.query, "context", true);
    validator.finish()?;
    let identity = guard::identity(&lines, endpoint)?;
    let view = guard::owned(state, &identity, inf, endpoint).await?;
    let ids_of = |view: &InfrastructureView| -> Result<Vec<VmId>, ApiError> {
        vms.split(',')
            .map(|vm| find_vm(view, vm, endpoint).map(|found| found.id))
            .collect()
    };
    ids_of(&view)?;
    let lane = Writer::new(state, context, &identity, endpoint)
        .lane(view.id)
        .await?;
    // Checked again in turn: a VM removed meanwhile is `Deleted VM.`, as IM says.
    lane.commit(async |view| {
        let vm_ids = ids_of(view)?;
        let radl = stored_radl(view, endpoint)?;
        let request = InfrastructureRequest::RemoveResources {
            vm_ids,
            context: contextualize,
            plan: plan::plan_for(&radl, state.contextualization_delay),
            credentials: guard::cloud_credentials(&identity),
        };
        Ok((request, ()))
    })
    .await?;
    state.touch(view.id);
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
    let endpoint = Endpoint::Snapshot;
    let lines = guard::credential_lines(context)?;
    let mut validator = Validator::new();
    let disk = validator.integer("path", "disknum", disk);
    let image_name = validator
        .required(&context.query, "image_name")
        .map(str::to_string);
    let auto_delete = validator.flag(&context.query, "auto_delete", false);
    validator.finish()?;
    let (Some(disk), Some(image_name)) = (disk, image_name) else {
        return Err(ApiError::internal("validated parameters are missing"));
    };
    let identity = guard::identity(&lines, endpoint)?;
    let view = guard::owned(state, &identity, inf, endpoint).await?;
    let vm_view = find_vm(&view, vm, endpoint)?;
    let disk = u32::try_from(disk).map_err(|_| {
        endpoint.error(Failure::Other(format!(
            "Error creating snapshot: the VM has no disk {disk}"
        )))
    })?;
    let outcome = Writer::new(state, context, &identity, endpoint)
        .vm(
            view.id,
            vm_view.id,
            VmRequest::Snapshot {
                disk,
                image_name,
                auto_delete,
                credentials: cloud_credentials(&identity, vm_view),
            },
        )
        .await?;
    Ok(HttpResponse::Ok()
        .content_type(TEXT_PLAIN)
        .body(outcome.detail.unwrap_or_default()))
}

/// The request's credentials for the VM's cloud.
fn cloud_credentials(
    identity: &crate::auth::Identity,
    vm: &VmView,
) -> infralog_actors::connectors::CloudCredentials {
    guard::cloud_credentials(identity)
        .remove(&vm.cloud.id)
        .unwrap_or_default()
}
