//! The Docker Engine API calls, through bollard, each failure turned into a
//! [`ConnectorError`] naming the host and what was being done. Nothing here pulls an
//! image: a missing image is Docker's "No such image" error.

use std::collections::HashMap;
use std::time::Duration;

use bollard::errors::Error as BollardError;
use bollard::models::{
    ContainerCreateBody, ContainerInspectResponse, ContainerSummary, ContainerUpdateBody,
    EndpointSettings, HostConfig, Mount, MountType, NetworkConnectRequest, NetworkCreateRequest,
    NetworkingConfig, PortBinding, VolumeCreateRequest,
};
use bollard::query_parameters::{
    CreateContainerOptions, ListContainersOptions, ListNetworksOptions, ListVolumesOptions,
    RemoveContainerOptions, RemoveVolumeOptions, RestartContainerOptions, StopContainerOptions,
};
use bollard::{ClientVersion, Docker};

use super::host::DockerHost;
use super::spec::{ContainerPlan, NetworkAttachment, VolumeMount};
use crate::connectors::ConnectorError;

/// How long the first exchange with an engine may take before it counts as
/// unreachable.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long any one request may take (a stop waits up to [`STOP_SECONDS`], a commit
/// copies a filesystem).
const REQUEST_TIMEOUT_SECONDS: u64 = 120;
/// How long a stop or restart waits for the container to end before killing it.
pub const STOP_SECONDS: i32 = 10;
/// The newest API the models are written for; negotiation lowers it to the engine's
/// (1.41 for Docker 20.10).
const CLIENT_VERSION: ClientVersion = ClientVersion {
    major_version: 1,
    minor_version: 53,
};

/// A connection to one engine.
#[derive(Debug, Clone)]
pub struct Engine {
    docker: Docker,
    host: DockerHost,
}

/// The failure's own words: Docker's message for an API error, else the error and
/// its causes.
fn describe(error: &BollardError) -> String {
    match error {
        BollardError::DockerResponseServerError { message, .. } => message.trim().to_string(),
        BollardError::RequestTimeoutError => "no answer in time".to_string(),
        BollardError::SocketNotFoundError(path) => format!("the socket {path} does not exist"),
        other => {
            let mut text = other.to_string();
            let mut source = std::error::Error::source(other);
            while let Some(cause) = source {
                let cause_text = cause.to_string();
                if !text.contains(&cause_text) {
                    text = format!("{text}: {cause_text}");
                }
                source = cause.source();
            }
            text
        }
    }
}

fn status_of(error: &BollardError) -> Option<u16> {
    match error {
        BollardError::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

/// Whether Docker answered 404.
pub fn is_not_found(error: &BollardError) -> bool {
    status_of(error) == Some(404)
}

impl Engine {
    /// Connects to `host` and agrees on an API version; an engine that does not
    /// answer within [`CONNECT_TIMEOUT`] is unreachable.
    pub async fn connect(host: DockerHost) -> Result<Engine, ConnectorError> {
        let unreachable = |reason: String| {
            ConnectorError::new(format!("cannot reach Docker at {host}: {reason}"))
        };
        let docker = match &host {
            DockerHost::Unix(path) => {
                Docker::connect_with_unix(path, REQUEST_TIMEOUT_SECONDS, &CLIENT_VERSION)
            }
            DockerHost::Tcp { .. } => {
                Docker::connect_with_http(&host.url(), REQUEST_TIMEOUT_SECONDS, &CLIENT_VERSION)
            }
        }
        .map_err(|e| unreachable(describe(&e)))?;
        let docker = tokio::time::timeout(CONNECT_TIMEOUT, docker.negotiate_version())
            .await
            .map_err(|_| {
                unreachable(format!(
                    "no answer within {} seconds",
                    CONNECT_TIMEOUT.as_secs()
                ))
            })?
            .map_err(|e| unreachable(describe(&e)))?;
        Ok(Engine { docker, host })
    }

    /// The host this engine was reached at.
    pub fn host(&self) -> &DockerHost {
        &self.host
    }

    /// The bollard client, for the calls the connector makes directly.
    pub fn docker(&self) -> &Docker {
        &self.docker
    }

    /// `Docker at HOST could not WHAT: REASON`.
    pub fn fail(&self, what: &str, error: &BollardError) -> ConnectorError {
        ConnectorError::new(format!(
            "Docker at {} could not {what}: {}",
            self.host,
            describe(error)
        ))
    }

    /// Every container (running or not) matching `filters`.
    pub async fn containers(
        &self,
        filters: HashMap<String, Vec<String>>,
    ) -> Result<Vec<ContainerSummary>, ConnectorError> {
        let options = ListContainersOptions {
            all: true,
            filters: Some(filters),
            ..Default::default()
        };
        self.docker
            .list_containers(Some(options))
            .await
            .map_err(|e| self.fail("list containers", &e))
    }

    /// The container `id`; `None` when Docker has no such container.
    pub async fn inspect(
        &self,
        id: &str,
    ) -> Result<Option<ContainerInspectResponse>, ConnectorError> {
        match self.docker.inspect_container(id, None).await {
            Ok(container) => Ok(Some(container)),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(self.fail(&format!("inspect container {id}"), &e)),
        }
    }

    /// Removes container `id` whatever its state, with its anonymous volumes; a
    /// container already gone is not an error.
    pub async fn remove_container(&self, id: &str) -> Result<(), ConnectorError> {
        let options = RemoveContainerOptions {
            force: true,
            v: true,
            ..Default::default()
        };
        match self.docker.remove_container(id, Some(options)).await {
            Ok(()) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(self.fail(&format!("remove container {id}"), &e)),
        }
    }

    /// Stops container `id` (SIGTERM, then SIGKILL after [`STOP_SECONDS`]).
    pub async fn stop(&self, id: &str) -> Result<(), ConnectorError> {
        let options = StopContainerOptions {
            t: Some(STOP_SECONDS),
            ..Default::default()
        };
        self.docker
            .stop_container(id, Some(options))
            .await
            .map_err(|e| self.fail(&format!("stop container {id}"), &e))
    }

    /// Starts container `id` (already running is fine: Docker answers 304).
    pub async fn start(&self, id: &str) -> Result<(), ConnectorError> {
        self.docker
            .start_container(id, None)
            .await
            .map_err(|e| self.fail(&format!("start container {id}"), &e))
    }

    /// Restarts container `id`.
    pub async fn restart(&self, id: &str) -> Result<(), ConnectorError> {
        let options = RestartContainerOptions {
            t: Some(STOP_SECONDS),
            ..Default::default()
        };
        self.docker
            .restart_container(id, Some(options))
            .await
            .map_err(|e| self.fail(&format!("restart container {id}"), &e))
    }

    /// Changes the limits of container `id`.
    pub async fn update(&self, id: &str, body: ContainerUpdateBody) -> Result<(), ConnectorError> {
        self.docker
            .update_container(id, body)
            .await
            .map_err(|e| self.fail(&format!("update container {id}"), &e))
    }

    /// Creates the plan's network unless it exists. Docker 20.10 would create a
    /// second network of the same name, so the caller serialises these calls.
    pub async fn ensure_network(&self, network: &NetworkAttachment) -> Result<(), ConnectorError> {
        let what = format!("create network {}", network.docker_name);
        let options = ListNetworksOptions {
            filters: Some(HashMap::from([(
                "name".to_string(),
                vec![network.docker_name.clone()],
            )])),
        };
        let existing = self
            .docker
            .list_networks(Some(options))
            .await
            .map_err(|e| self.fail(&what, &e))?;
        // The name filter matches substrings: only the exact name counts.
        if let Some(found) = existing
            .iter()
            .find(|n| n.name.as_deref() == Some(network.docker_name.as_str()))
        {
            let owner = super::labels::INFRASTRUCTURE;
            let ours =
                found.labels.as_ref().and_then(|l| l.get(owner)) == network.labels.get(owner);
            if !ours {
                return Err(ConnectorError::new(format!(
                    "Docker at {}: a network named {} exists and is not this infrastructure's",
                    self.host, network.docker_name
                )));
            }
            return Ok(());
        }
        let request = NetworkCreateRequest {
            name: network.docker_name.clone(),
            driver: Some("bridge".into()),
            labels: Some(network.labels.clone().into_iter().collect()),
            ..Default::default()
        };
        self.docker
            .create_network(request)
            .await
            .map(drop)
            .map_err(|e| self.fail(&what, &e))
    }

    /// Creates the plan's volume (Docker keeps an existing one of that name).
    pub async fn ensure_volume(&self, volume: &VolumeMount) -> Result<(), ConnectorError> {
        let request = VolumeCreateRequest {
            name: Some(volume.volume_name.clone()),
            driver: Some("local".into()),
            labels: Some(volume.labels.clone().into_iter().collect()),
            ..Default::default()
        };
        self.docker
            .create_volume(request)
            .await
            .map(drop)
            .map_err(|e| self.fail(&format!("create volume {}", volume.volume_name), &e))
    }

    /// Creates (does not start) the plan's container on its first private network;
    /// returns its id.
    pub async fn create_container(&self, plan: &ContainerPlan) -> Result<String, ConnectorError> {
        let bindings: HashMap<String, Option<Vec<PortBinding>>> = plan
            .ports
            .iter()
            .map(|port| {
                (
                    port.container_key(),
                    Some(vec![PortBinding {
                        host_ip: None,
                        host_port: Some(port.host_port.to_string()),
                    }]),
                )
            })
            .collect();
        let mounts = plan
            .volumes
            .iter()
            .map(|volume| Mount {
                target: Some(volume.mount_path.clone()),
                source: Some(volume.volume_name.clone()),
                typ: Some(MountType::VOLUME),
                read_only: Some(false),
                ..Default::default()
            })
            .collect();
        let host_config = HostConfig {
            nano_cpus: plan.cpu.as_ref().map(|c| c.nano_cpus),
            memory: plan.memory.as_ref().map(|m| m.bytes),
            // No swap beyond the memory asked for, as on a VM of that size.
            memory_swap: plan.memory.as_ref().map(|m| m.bytes),
            port_bindings: Some(bindings),
            mounts: Some(mounts),
            // Docker's init runs as PID 1: it passes `docker stop`'s SIGTERM on to
            // the image's command (so a stop is quick and ends with status 143,
            // which observation reads as stopped) and reaps orphaned processes.
            init: Some(true),
            ..Default::default()
        };
        let networking_config = plan.networks.first().map(|network| NetworkingConfig {
            endpoints_config: Some(HashMap::from([(
                network.docker_name.clone(),
                EndpointSettings {
                    aliases: Some(network.aliases.clone()),
                    ..Default::default()
                },
            )])),
        });
        let body = ContainerCreateBody {
            image: Some(plan.image.clone()),
            hostname: Some(plan.hostname.clone()),
            domainname: Some(plan.domainname.clone()),
            labels: Some(plan.labels.clone().into_iter().collect()),
            exposed_ports: Some(plan.ports.iter().map(|p| p.container_key()).collect()),
            // As `docker run -dit`: an image whose command is a shell keeps running.
            tty: Some(true),
            open_stdin: Some(true),
            host_config: Some(host_config),
            networking_config,
            ..Default::default()
        };
        let options = CreateContainerOptions {
            name: Some(plan.container_name.clone()),
            ..Default::default()
        };
        self.docker
            .create_container(Some(options), body)
            .await
            .map(|created| created.id)
            .map_err(|e| {
                self.fail(
                    &format!(
                        "create container {} from image {}",
                        plan.container_name, plan.image
                    ),
                    &e,
                )
            })
    }

    /// Attaches container `id` to `network` with its aliases.
    pub async fn connect_network(
        &self,
        id: &str,
        network: &NetworkAttachment,
    ) -> Result<(), ConnectorError> {
        let request = NetworkConnectRequest {
            container: id.to_string(),
            endpoint_config: Some(EndpointSettings {
                aliases: Some(network.aliases.clone()),
                ..Default::default()
            }),
        };
        self.docker
            .connect_network(&network.docker_name, request)
            .await
            .map_err(|e| {
                self.fail(
                    &format!("attach container {id} to network {}", network.docker_name),
                    &e,
                )
            })
    }

    /// Removes every container, network and volume matching `filters`, in that
    /// order (a network or volume in use cannot go first). What is already gone is
    /// not an error.
    pub async fn remove_labelled(
        &self,
        filters: HashMap<String, Vec<String>>,
    ) -> Result<(), ConnectorError> {
        for container in self.containers(filters.clone()).await? {
            if let Some(id) = container.id {
                self.remove_container(&id).await?;
            }
        }
        let networks = self
            .docker
            .list_networks(Some(ListNetworksOptions {
                filters: Some(filters.clone()),
            }))
            .await
            .map_err(|e| self.fail("list networks", &e))?;
        for network in networks {
            let Some(id) = network.id else { continue };
            match self.docker.remove_network(&id).await {
                Ok(()) => {}
                Err(e) if is_not_found(&e) => {}
                Err(e) => return Err(self.fail(&format!("remove network {id}"), &e)),
            }
        }
        let volumes = self
            .docker
            .list_volumes(Some(ListVolumesOptions {
                filters: Some(filters),
            }))
            .await
            .map_err(|e| self.fail("list volumes", &e))?;
        for volume in volumes.volumes.unwrap_or_default() {
            match self
                .docker
                .remove_volume(&volume.name, None::<RemoveVolumeOptions>)
                .await
            {
                Ok(()) => {}
                Err(e) if is_not_found(&e) => {}
                Err(e) => return Err(self.fail(&format!("remove volume {}", volume.name), &e)),
            }
        }
        Ok(())
    }
}
