//! Turning a RADL request into what the actors need: the merged RADL, the VMs to
//! launch with their clouds, and how contextualization goes. Also IM's dry-run
//! resource estimate, which plans the same way.

use std::time::Duration;

use infralog_actors::connectors::Connectors;
use infralog_actors::decide::infrastructure::{RequestedVm, ResourceRequest};
use infralog_events::domain::infrastructure::ContextualizationPlan;
use infralog_events::domain::CloudRef;
use serde_json::{json, Map, Value as Json};

use crate::auth::{CloudCredential, Identity};
use crate::radl::merge::{resolve_references, update_stored};
use crate::radl::storable::stored_text;
use crate::radl::{Number, Radl, System};

/// Why a request cannot be planned; the message is IM's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PlanError(pub String);

impl From<crate::radl::RadlError> for PlanError {
    fn from(error: crate::radl::RadlError) -> Self {
        PlanError(error.to_string())
    }
}

/// A planned add (or create): the stored RADL after the merge and the request for
/// the actors.
#[derive(Debug, Clone)]
pub struct Planned {
    pub merged: Radl,
    pub request: ResourceRequest,
}

/// IM's AddResource, minus the launches: resolve the request's references against
/// the stored RADL, check it, merge it, and plan one VM per deployed instance.
pub fn plan_resources(
    stored: &Radl,
    mut request: Radl,
    identity: &Identity,
    connectors: &Connectors,
    max_vms: u64,
    contextualize: bool,
    policy: ContextPolicy,
) -> Result<Planned, PlanError> {
    resolve_references(&mut request, stored, &[])?;
    check_vm_total(&request, max_vms)?;
    let mut merged = stored.clone();
    update_stored(&mut merged, &request)?;
    let mut vms = Vec::new();
    for deploy in &request.deploys {
        let count = deploy.count.as_i64().unwrap_or(0).max(0) as u64;
        if count == 0 {
            continue;
        }
        let system = request
            .system(&deploy.system)
            .ok_or_else(|| PlanError("Invalid system id in the deploy.".into()))?;
        let cloud = choose_cloud(
            deploy.cloud.as_deref(),
            &deploy.system,
            image_url(system),
            identity,
            connectors,
        )?;
        let new_password = generates_new_password(system);
        for _ in 0..count {
            vms.push(RequestedVm {
                system: deploy.system.clone(),
                cloud: cloud.clone(),
                new_password,
            });
        }
    }
    let on_ansible_cloud = policy.ansible_clouds
        || vms
            .iter()
            .any(|vm| connectors.configured_by_ansible(&vm.cloud.kind));
    let plan = if contextualize {
        Some(plan_for(
            &merged,
            ContextPolicy {
                ansible_clouds: on_ansible_cloud,
                ..policy
            },
        )?)
    } else {
        None
    };
    let request_radl = request.to_text();
    // The merged document is stored and parsed again by every later request.
    let radl = stored_text(&merged)?;
    let request = ResourceRequest {
        request_radl: (request_radl != radl).then_some(request_radl),
        radl,
        vms,
        contextualization: plan,
    };
    Ok(Planned { merged, request })
}

/// What decides how a contextualization goes: the server's means and the clouds
/// the infrastructure's VMs are in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContextPolicy {
    /// How long a simulated (Dummy) run takes.
    pub delay: Duration,
    /// Whether this server can run `ansible-playbook`.
    pub ansible_available: bool,
    /// Whether the infrastructure has VMs on a cloud configured by real Ansible
    /// runs (Docker), rather than only simulated ones (Dummy).
    pub ansible_clouds: bool,
}

impl ContextPolicy {
    /// Simulated runs of `delay`, as on a server with Dummy VMs only.
    pub fn simulated(delay: Duration) -> Self {
        ContextPolicy {
            delay,
            ansible_available: false,
            ansible_clouds: false,
        }
    }
}

/// IM's longest contextualization when the RADL names none (`MAX_CONTEXTUALIZATION_TIME`).
pub const DEFAULT_MAX_CONTEXTUALIZATION_SECONDS: u64 = 7200;

/// How contextualization of this RADL goes: disabled, simulated (Dummy VMs only),
/// or a real Ansible run, which this server must be able to start.
pub fn plan_for(radl: &Radl, policy: ContextPolicy) -> Result<ContextualizationPlan, PlanError> {
    if radl.contextualization_disabled() {
        return Ok(ContextualizationPlan::Disabled);
    }
    if !policy.ansible_clouds {
        return Ok(ContextualizationPlan::Simulated {
            duration_ms: policy.delay.as_millis() as u64,
        });
    }
    if !policy.ansible_available {
        return Err(PlanError(
            "Error contextualizing: this server has no ansible-playbook (see `serve --ansible-playbook`), so VMs on a real cloud cannot be configured; disable contextualization with `contextualize ()` or configure Ansible".into(),
        ));
    }
    let max_time_s = radl
        .contextualize
        .max_time_seconds()
        .filter(|seconds| *seconds > 0)
        .unwrap_or(DEFAULT_MAX_CONTEXTUALIZATION_SECONDS);
    Ok(ContextualizationPlan::Ansible { max_time_s })
}

/// The system's `disk.0.image.url`, when it is one string.
fn image_url(system: &System) -> Option<&str> {
    system.features.string("disk.0.image.url")
}

/// Refuses a request that deploys more than `max_vms` VMs in total.
pub fn check_vm_total(radl: &Radl, max_vms: u64) -> Result<(), PlanError> {
    let total = vm_total(radl);
    if total > max_vms {
        return Err(PlanError(format!(
            "the request deploys {total} VMs; at most {max_vms} may be deployed by one request"
        )));
    }
    Ok(())
}

/// The number of VMs a request deploys.
pub fn vm_total(radl: &Radl) -> u64 {
    radl.deploys
        .iter()
        .map(|d| d.count.as_i64().unwrap_or(i64::MAX).max(0) as u64)
        .fold(0u64, u64::saturating_add)
}

/// IM gives a VM a random new password when its system has a password and no new
/// one; every supported cloud (Dummy) sets a password at launch.
fn generates_new_password(system: &System) -> bool {
    system
        .features
        .string("disk.0.os.credentials.new.password")
        .is_none_or(str::is_empty)
}

fn cloud_ref(cloud: &CloudCredential) -> CloudRef {
    CloudRef {
        id: cloud.id.clone(),
        kind: cloud.kind.clone(),
        host: cloud.line.get("host").unwrap_or("").to_string(),
    }
}

fn unsupported(kind: &str) -> PlanError {
    PlanError(format!(
        "Cloud provider not supported: {kind} (error: No module named 'IM.connectors.{kind}')"
    ))
}

/// The cloud a deploy goes to: the one it names, or the first the request brings
/// credentials for.
fn choose_cloud(
    named: Option<&str>,
    system: &str,
    image: Option<&str>,
    identity: &Identity,
    connectors: &Connectors,
) -> Result<CloudRef, PlanError> {
    // A `docker://` image names its cloud kind, as IM's Docker connector claims it.
    let by_image = image
        .filter(|url| url.starts_with("docker://"))
        .and_then(|_| identity.clouds.iter().find(|c| c.kind == "Docker"));
    let cloud = match (named, by_image) {
        (Some(id), _) => identity
            .cloud(id)
            .ok_or_else(|| PlanError(format!("No auth data for cloud with ID: {id}")))?,
        (None, Some(docker)) => docker,
        (None, None) => {
            let first = identity.clouds.first().ok_or_else(|| {
                PlanError(format!("No VMI obtained from Sites to system '{system}'"))
            })?;
            identity
                .clouds
                .iter()
                .find(|c| connectors.supports(&c.kind))
                .unwrap_or(first)
        }
    };
    if !connectors.supports(&cloud.kind) {
        return Err(unsupported(&cloud.kind));
    }
    Ok(cloud_ref(cloud))
}

/// IM's `CloudInfo.get_url()`: `<protocol or http>://<server>:<port or 80/443><path>`.
fn cloud_endpoint(host: &str) -> String {
    let (protocol, rest) = match host.split_once("://") {
        Some((protocol, rest)) => (protocol, rest),
        None => ("http", host),
    };
    let (authority, path) = match rest.find('/') {
        Some(index) => (&rest[..index], &rest[index..]),
        None => (rest, ""),
    };
    let (server, port) = match authority.rsplit_once(':') {
        Some((server, port)) if port.parse::<u16>().is_ok() => (server, port.to_string()),
        _ => (
            authority,
            if protocol == "https" { "443" } else { "80" }.to_string(),
        ),
    };
    format!("{protocol}://{server}:{port}{path}")
}

fn number_json(number: &Number) -> Json {
    serde_json::from_str(&number.to_json()).unwrap_or(Json::Null)
}

/// A property's value converted to `unit`, as IM's `getFeature(p).getValue(unit)`.
fn value_in(system: &System, prop: &str, unit: &str) -> Option<Number> {
    let feature = system.features.feature(prop)?;
    match &feature.value {
        crate::radl::Value::Num(number) => number.convert(&feature.unit, unit).ok(),
        _ => None,
    }
}

/// IM's dry run (`EstimateResouces`): per cloud, one compute entry per VM and one
/// storage entry per sized disk.
pub fn estimate(
    request: &Radl,
    identity: &Identity,
    connectors: &Connectors,
) -> Result<Json, PlanError> {
    request.check()?;
    let mut clouds: Map<String, Json> = Map::new();
    for deploy in &request.deploys {
        let cloud = choose_cloud(
            deploy.cloud.as_deref(),
            &deploy.system,
            request.system(&deploy.system).and_then(image_url),
            identity,
            connectors,
        )?;
        let entry = clouds.entry(cloud.id.clone()).or_insert_with(|| {
            json!({
                "cloudType": cloud.kind,
                "cloudEndpoint": cloud_endpoint(&cloud.host),
                "compute": [],
                "storage": [],
            })
        });
        let Some(system) = request.system(&deploy.system) else {
            continue;
        };
        let mut vm = Map::new();
        vm.insert(
            "cpuCores".into(),
            value_in(system, "cpu.count", "").map_or(Json::Null, |n| number_json(&n)),
        );
        vm.insert(
            "memoryInMegabytes".into(),
            value_in(system, "memory.size", "M").map_or(Json::Null, |n| number_json(&n)),
        );
        if let Some(gpus) = value_in(system, "gpu.count", "").filter(Number::is_truthy) {
            vm.insert("GPU".into(), number_json(&gpus));
        }
        let disk: f64 = ["disk.0.free_size", "disk.0.size"]
            .iter()
            .filter_map(|prop| value_in(system, prop, "G"))
            .filter_map(|n| n.to_f64().ok())
            .sum();
        if disk != 0.0 {
            let sizes: Vec<Number> = ["disk.0.free_size", "disk.0.size"]
                .iter()
                .filter_map(|prop| value_in(system, prop, "G"))
                .collect();
            let total = if sizes.iter().all(Number::is_int) {
                json!(sizes.iter().filter_map(Number::as_i64).sum::<i64>())
            } else {
                json!(disk)
            };
            vm.insert("diskSizeInGigabytes".into(), total);
        }
        if has_public_network(request, system) {
            vm.insert("publicIP".into(), json!(1));
        }
        let count = deploy.count.as_i64().unwrap_or(0).max(0);
        for _ in 0..count {
            if let Some(compute) = entry["compute"].as_array_mut() {
                compute.push(Json::Object(vm.clone()));
            }
            let mut disk = 0;
            while disk == 0
                || system.features.has(&format!("disk.{disk}.size"))
                || system.features.has(&format!("disk.{disk}.content"))
            {
                if let Some(size) = value_in(system, &format!("disk.{disk}.size"), "G") {
                    let mut volume = Map::new();
                    volume.insert("sizeInGigabytes".into(), number_json(&size));
                    if let Some(kind) = system.features.string(&format!("disk.{disk}.type")) {
                        volume.insert("type".into(), json!(kind));
                    }
                    if let Some(storage) = entry["storage"].as_array_mut() {
                        storage.push(Json::Object(volume));
                    }
                }
                disk += 1;
            }
        }
    }
    Ok(Json::Object(clouds))
}

/// IM's `hasPublicNet`: one of the system's interfaces is on an outbound network.
fn has_public_network(radl: &Radl, system: &System) -> bool {
    let public: Vec<&str> = radl
        .networks
        .iter()
        .filter(|n| n.is_public())
        .map(|n| n.id.as_str())
        .collect();
    (0..)
        .map(|i| {
            system
                .features
                .string(&format!("net_interface.{i}.connection"))
        })
        .take_while(Option::is_some)
        .flatten()
        .any(|connection| public.contains(&connection))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_follow_ims_defaults() {
        assert_eq!(cloud_endpoint(""), "http://:80");
        assert_eq!(
            cloud_endpoint("https://cloud.example.org"),
            "https://cloud.example.org:443"
        );
        assert_eq!(
            cloud_endpoint("one.example.org:2633/RPC2"),
            "http://one.example.org:2633/RPC2"
        );
    }
}

#[cfg(test)]
#[path = "plan_props.rs"]
mod props;
