//! `GET /infrastructures/{id}/outputs`: the stored TOSCA template's outputs, evaluated
//! against the infrastructure's live VMs (`im-behaviour.md` §2.6, §7).

use actix_web::HttpResponse;

use super::errors::ApiError;
use super::render::vm_document;
use crate::projections::{InfrastructureView, VmView};
use crate::tosca::{Template, VmFacts};

/// The `{"outputs": {…}}` answer (the caller has checked the Accept header).
pub fn respond(view: &InfrastructureView, tosca: &str) -> Result<HttpResponse, ApiError> {
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
