//! A launch: the plan, then adoption of what an interrupted earlier launch finished,
//! or removal of what it left half-made, then networks, volumes and the container.

use bollard::models::ContainerInspectResponse;
use infralog_events::domain::{InfId, VmId};

use super::engine::Engine;
use super::facts::{is_complete, launch_facts, observation};
use super::host::DockerHost;
use super::spec::{self, ContainerPlan, Owner};
use super::{labels, Shared};
use crate::connectors::{ConnectorError, LaunchRequest, LaunchedVm};

/// Launches (or adopts) the container of `request`'s VM on `host`.
pub async fn launch(
    shared: &Shared,
    request: LaunchRequest,
    host: DockerHost,
) -> Result<LaunchedVm, ConnectorError> {
    let radl = infralog_radl::parse(&request.radl).map_err(|e| {
        ConnectorError::new(format!("the infrastructure's RADL does not parse: {e}"))
    })?;
    let owner = Owner {
        infrastructure: request.infrastructure,
        vm: request.vm_id,
        extra_labels: &shared.extra_labels,
    };
    let plan = spec::plan(&radl, &request.system, owner).map_err(|e| ConnectorError::new(e.0))?;
    let engine = Engine::connect(host).await?;
    let public_address = engine
        .host()
        .public_address(&shared.local_public_address)
        .await;
    let launched = |container: ContainerInspectResponse, id: String| LaunchedVm {
        facts: launch_facts(&plan, &container, &public_address),
        cloud_vm_id: id,
    };
    if let Some((id, container)) =
        adopt_or_clear(&engine, &plan, request.infrastructure, request.vm_id).await?
    {
        tracing::info!(container = %id, vm = %request.vm_id, "adopting the container an earlier launch made");
        return Ok(launched(container, id));
    }
    {
        // Docker 20.10 creates a second network of an existing name: concurrent
        // launches of one infrastructure must not both create its networks.
        let _one_at_a_time = shared.network_setup.lock().await;
        for network in &plan.networks {
            engine.ensure_network(network).await?;
        }
    }
    for volume in &plan.volumes {
        engine.ensure_volume(volume).await?;
    }
    let id = engine.create_container(&plan).await?;
    match finish(&engine, &plan, &id).await {
        Ok(container) => Ok(launched(container, id)),
        Err(error) => {
            // Never leave a half-made container behind a failed launch.
            if let Err(cleanup) = engine.remove_container(&id).await {
                tracing::warn!(container = %id, error = %cleanup, "a failed launch's container could not be removed");
            }
            Err(error)
        }
    }
}

/// The container an earlier launch of this VM completed, if any; every other
/// container with the VM's labels (created and not started, not on all its networks,
/// exited) is removed, so that the VM never has two.
async fn adopt_or_clear(
    engine: &Engine,
    plan: &ContainerPlan,
    infrastructure: InfId,
    vm: VmId,
) -> Result<Option<(String, ContainerInspectResponse)>, ConnectorError> {
    let mut adopted = None;
    for summary in engine
        .containers(labels::vm_filter(infrastructure, vm))
        .await?
    {
        let Some(id) = summary.id else { continue };
        match engine.inspect(&id).await? {
            Some(container) if adopted.is_none() && is_complete(plan, &container) => {
                adopted = Some((id, container));
            }
            Some(_) => {
                tracing::info!(container = %id, vm = %vm, "removing a half-made container of an earlier launch");
                engine.remove_container(&id).await?;
            }
            None => {}
        }
    }
    Ok(adopted)
}

/// Attaches the other networks, starts, and checks the container runs.
async fn finish(
    engine: &Engine,
    plan: &ContainerPlan,
    id: &str,
) -> Result<ContainerInspectResponse, ConnectorError> {
    for network in plan.networks.iter().skip(1) {
        engine.connect_network(id, network).await?;
    }
    engine.start(id).await?;
    let container = engine.inspect(id).await?.ok_or_else(|| {
        ConnectorError::new(format!(
            "Docker at {}: container {} vanished right after it started",
            engine.host(),
            plan.container_name
        ))
    })?;
    if !is_complete(plan, &container) {
        let seen = observation(Some(&container));
        return Err(ConnectorError::new(format!(
            "Docker at {}: container {} from image {} did not keep running ({}); the \
             image's command must not end",
            engine.host(),
            plan.container_name,
            plan.image,
            seen.message
        )));
    }
    Ok(container)
}
