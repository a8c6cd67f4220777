//! The Docker cloud (IM's `IM/connectors/Docker.py`): every VM is a container on one
//! Docker engine, reached through the Engine API (API 1.41, Docker 20.10, or newer:
//! the version is negotiated).
//!
//! # The credential line
//!
//! `id = docker; type = Docker; host = unix:///var/run/docker.sock` (also
//! `tcp://HOST:PORT` and `http://HOST:PORT`; the local socket when `host` is absent).
//! The host is kept with every VM ([`CloudRef::host`]), so later calls, and
//! [`CloudConnector::observe`] which has no credentials, reach the same engine. TLS
//! (`https://`, IM's `public_key`/`private_key` client certificates) is not supported.
//!
//! # RADL, as IM reads it and where we do better
//!
//! - `disk.0.image.url = 'docker://NAME[:TAG]'` is the image, used as it is: nothing is
//!   pulled (a missing image fails with Docker's message) and nothing is installed (IM
//!   installs and runs sshd with apt-get/yum as the container's command). The image's
//!   own command runs, as `docker run -dit --init` would run it: with a terminal and
//!   an open stdin, so that an image whose command is a shell keeps running, and with
//!   Docker's init as PID 1, which passes a stop's SIGTERM on and reaps orphans. A
//!   container whose command ends at once fails the launch and is removed.
//! - `cpu.count` is a CPU limit (`NanoCpus`), `memory.size` a memory limit (IM's
//!   units: `512m` is 512000000 bytes) with no swap beyond it.
//! - Each private network an interface connects to is a bridge network of the
//!   infrastructure (`infralog-<inf>-<network>`, created on first use), which the VM
//!   joins with the aliases IM gives (`vnode-#N#` and `vnode-#N#.localdomain` unless
//!   `net_interface.N.dns_name` says otherwise), so VMs reach each other by name. IM
//!   reuses any network named by `provider_id`; we never join a network we did not
//!   make.
//! - A public network (`outbound = 'yes'`) publishes its `outports` on the host
//!   (see [`ports`]); the VM's public address is the engine's: its address for a TCP
//!   host, and for a unix socket [`DockerConnector::with_local_public_address`]
//!   (127.0.0.1 by default: the engine runs beside infralog, and the ports are
//!   published on every host interface; IM guesses the host's primary address).
//! - `disk.N.mount_path` (N ≥ 1) is a named volume of the VM mounted there. IM
//!   bind-mounts a `disk.N.device` that starts with `/`: refused here, as is
//!   `docker.privileged = 'yes'`; both would hand the Docker host to the client.
//! - The facts set on the VM are IM's (`provider.type`, `virtual_system_type`,
//!   `instance_id`, the `root` user, the limits, each interface's address and name,
//!   each volume as `disk.N.device`); no password is set, as no sshd runs.
//!
//! # Labels and crash safety
//!
//! Everything made carries `infralog.infrastructure=<uuid>`, containers and volumes
//! also `infralog.vm=<n>`, and all of it the operator's extra labels. A repeated
//! launch finds the VM's container by label: a running one on all its networks is
//! adopted, anything else is removed and made again. Destroy removes the container
//! and its volumes; [`CloudConnector::release_infrastructure`] removes whatever still
//! carries the infrastructure's label.
//!
//! # Beyond IM
//!
//! IM's Docker connector cannot alter, snapshot, list images or give quotas. Here:
//! alter changes the CPU and memory limits of the container in place; a snapshot of
//! disk 0 commits the container to a new local image (never replacing one); only such
//! images can be deleted; images lists the engine's tagged images; quotas compare
//! the limits of infralog's running containers with the engine's CPUs and memory.

use std::collections::BTreeMap;
use std::sync::Arc;

use bollard::models::ContainerUpdateBody;
use infralog_events::domain::{CloudRef, FeatureFact, InfId, VmId};

use super::{
    AlterRequest, CloudConnector, CloudCredentials, CloudFuture, CloudImage, CloudVmRef,
    ConnectorError, ImageFilters, LaunchRequest, LaunchedVm, Observation, Quotas,
};

mod engine;
mod facts;
pub mod host;
mod images;
pub mod labels;
mod launch;
pub mod ports;
pub mod spec;

use engine::Engine;
use host::DockerHost;

/// What every call of one connector shares.
#[derive(Debug)]
struct Shared {
    extra_labels: BTreeMap<String, String>,
    local_public_address: String,
    /// Serialises network creation (see [`engine::Engine::ensure_network`]).
    network_setup: tokio::sync::Mutex<()>,
}

/// The Docker connector.
#[derive(Debug, Clone)]
pub struct DockerConnector {
    shared: Arc<Shared>,
}

impl DockerConnector {
    /// A connector that adds `extra_labels` to every container, network and volume
    /// it creates (the operator's, or a test run's).
    pub fn new<K, V>(extra_labels: impl IntoIterator<Item = (K, V)>) -> Self
    where
        K: Into<String>,
        V: Into<String>,
    {
        DockerConnector {
            shared: Arc::new(Shared {
                extra_labels: extra_labels
                    .into_iter()
                    .map(|(k, v)| (k.into(), v.into()))
                    .collect(),
                local_public_address: "127.0.0.1".to_string(),
                network_setup: tokio::sync::Mutex::new(()),
            }),
        }
    }

    /// The public address of VMs on an engine reached by unix socket (127.0.0.1
    /// unless set): the address clients reach the infralog host's published ports at.
    pub fn with_local_public_address(self, address: impl Into<String>) -> Self {
        let shared = &self.shared;
        DockerConnector {
            shared: Arc::new(Shared {
                extra_labels: shared.extra_labels.clone(),
                local_public_address: address.into(),
                network_setup: tokio::sync::Mutex::new(()),
            }),
        }
    }
}

impl Default for DockerConnector {
    /// A connector without extra labels.
    fn default() -> Self {
        DockerConnector::new(std::iter::empty::<(String, String)>())
    }
}

/// The engine of `cloud`: its `host`, else the credential's, else the local socket.
fn host_of(
    cloud: &CloudRef,
    credentials: Option<&CloudCredentials>,
) -> Result<DockerHost, ConnectorError> {
    let value = if cloud.host.trim().is_empty() {
        credentials.and_then(|c| c.get("host")).unwrap_or("")
    } else {
        cloud.host.as_str()
    };
    DockerHost::parse(value).map_err(|e| ConnectorError::new(e.0))
}

async fn connect(
    cloud: &CloudRef,
    credentials: Option<&CloudCredentials>,
) -> Result<Engine, ConnectorError> {
    Engine::connect(host_of(cloud, credentials)?).await
}

/// A positive number written in an alter request.
fn positive(what: &str, text: &str) -> Result<f64, ConnectorError> {
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v > 0.0 && *v < 9.0e9)
        .ok_or_else(|| ConnectorError::new(format!("{what} '{text}' is not a positive number")))
}

/// The limits an alter request asks for.
fn update_body(request: &AlterRequest) -> Result<ContainerUpdateBody, ConnectorError> {
    let mut body = ContainerUpdateBody::default();
    if let Some(cpu) = &request.cpu_count {
        body.nano_cpus = Some((positive("cpu.count", cpu)? * 1e9).round() as i64);
    }
    if let Some(megabytes) = &request.memory_megabytes {
        let bytes = (positive("memory.size", megabytes)? * 1e6).round() as i64;
        if bytes < 6 * 1024 * 1024 {
            return Err(ConnectorError::new(format!(
                "memory.size {megabytes}M is below Docker's minimum of 6 MiB"
            )));
        }
        body.memory = Some(bytes);
        body.memory_swap = Some(bytes);
    }
    Ok(body)
}

/// Runs a container action on the VM's engine.
fn on_container<T, F, Fut>(
    vm: &CloudVmRef,
    credentials: Option<&CloudCredentials>,
    action: F,
) -> CloudFuture<T>
where
    T: Send + 'static,
    F: FnOnce(Engine, String) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<T, ConnectorError>> + Send,
{
    let host = host_of(&vm.cloud, credentials);
    let id = vm.cloud_vm_id.clone();
    Box::pin(async move { action(Engine::connect(host?).await?, id).await })
}

impl CloudConnector for DockerConnector {
    fn kind(&self) -> &'static str {
        "Docker"
    }

    /// Containers are configured by real `ansible-playbook` runs (through the Docker
    /// API), not simulated.
    fn configured_by_ansible(&self) -> bool {
        true
    }

    fn observable(&self) -> bool {
        true
    }

    fn launch(
        &self,
        request: LaunchRequest,
        credentials: &CloudCredentials,
    ) -> CloudFuture<LaunchedVm> {
        let shared = Arc::clone(&self.shared);
        let host = host_of(&request.cloud, Some(credentials));
        Box::pin(async move { launch::launch(&shared, request, host?).await })
    }

    fn stop(&self, vm: &CloudVmRef, credentials: &CloudCredentials) -> CloudFuture<()> {
        on_container(vm, Some(credentials), |engine, id| async move {
            engine.stop(&id).await
        })
    }

    fn start(&self, vm: &CloudVmRef, credentials: &CloudCredentials) -> CloudFuture<()> {
        on_container(vm, Some(credentials), |engine, id| async move {
            engine.start(&id).await
        })
    }

    fn reboot(&self, vm: &CloudVmRef, credentials: &CloudCredentials) -> CloudFuture<()> {
        on_container(vm, Some(credentials), |engine, id| async move {
            engine.restart(&id).await
        })
    }

    /// Changes the container's CPU and memory limits in place (IM's Docker connector
    /// cannot alter); a request with neither changes nothing.
    fn alter(
        &self,
        vm: &CloudVmRef,
        request: AlterRequest,
        credentials: &CloudCredentials,
    ) -> CloudFuture<Vec<FeatureFact>> {
        let body = update_body(&request);
        on_container(vm, Some(credentials), |engine, id| async move {
            let body = body?;
            if body.nano_cpus.is_some() || body.memory.is_some() {
                engine.update(&id, body).await?;
            }
            Ok(facts::altered_facts(
                request.cpu_count,
                request.memory_megabytes,
            ))
        })
    }

    /// Commits the container (disk 0: its filesystem; volumes are not part of it).
    fn snapshot(
        &self,
        vm: &CloudVmRef,
        disk: u32,
        image_name: &str,
        credentials: &CloudCredentials,
    ) -> CloudFuture<String> {
        let name = image_name.to_string();
        on_container(vm, Some(credentials), move |engine, id| async move {
            if disk != 0 {
                return Err(ConnectorError::new(format!(
                    "the Docker cloud snapshots disk 0 only (the container's filesystem); \
                     disk {disk} is a volume"
                )));
            }
            images::snapshot(&engine, &id, &name).await
        })
    }

    /// Removes the container (force) and its volumes; a container already gone is
    /// not an error.
    fn destroy(&self, vm: &CloudVmRef, credentials: &CloudCredentials) -> CloudFuture<()> {
        on_container(vm, Some(credentials), |engine, id| async move {
            let Some(container) = engine.inspect(&id).await? else {
                return Ok(());
            };
            let labels = container.config.and_then(|c| c.labels).unwrap_or_default();
            engine.remove_container(&id).await?;
            let owner = labels
                .get(labels::INFRASTRUCTURE)
                .and_then(|i| i.parse::<InfId>().ok())
                .zip(labels.get(labels::VM).and_then(|v| v.parse::<u32>().ok()));
            match owner {
                Some((infrastructure, vm)) => {
                    engine
                        .remove_labelled(labels::vm_filter(infrastructure, VmId(vm)))
                        .await
                }
                None => Ok(()),
            }
        })
    }

    fn delete_image(&self, image_url: &str, credentials: &CloudCredentials) -> CloudFuture<()> {
        let url = image_url.to_string();
        let host = host_of(&empty_cloud(), Some(credentials));
        Box::pin(async move { images::delete_image(&Engine::connect(host?).await?, &url).await })
    }

    fn images(
        &self,
        filters: &ImageFilters,
        credentials: &CloudCredentials,
    ) -> CloudFuture<Vec<CloudImage>> {
        let filters = filters.clone();
        let host = host_of(&empty_cloud(), Some(credentials));
        Box::pin(async move { images::images(&Engine::connect(host?).await?, &filters).await })
    }

    fn quotas(&self, credentials: &CloudCredentials) -> CloudFuture<Quotas> {
        let host = host_of(&empty_cloud(), Some(credentials));
        Box::pin(async move { images::quotas(&Engine::connect(host?).await?).await })
    }

    fn observe(&self, vm: &CloudVmRef) -> CloudFuture<Option<Observation>> {
        on_container(vm, None, |engine, id| async move {
            Ok(Some(facts::observation(
                engine.inspect(&id).await?.as_ref(),
            )))
        })
    }

    fn release_infrastructure(
        &self,
        infrastructure: InfId,
        cloud: &CloudRef,
        credentials: &CloudCredentials,
    ) -> CloudFuture<()> {
        let cloud = cloud.clone();
        let credentials = credentials.clone();
        Box::pin(async move {
            connect(&cloud, Some(&credentials))
                .await?
                .remove_labelled(labels::infrastructure_filter(infrastructure))
                .await
        })
    }
}

/// The calls without a VM (images, quotas) know the engine from the credential only.
fn empty_cloud() -> CloudRef {
    CloudRef {
        id: String::new(),
        kind: "Docker".to_string(),
        host: String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cloud(host: &str) -> CloudRef {
        CloudRef {
            id: "docker".into(),
            kind: "Docker".into(),
            host: host.into(),
        }
    }

    #[test]
    fn the_vms_host_wins_then_the_credential_then_the_local_socket() {
        let credentials =
            CloudCredentials::new([("host".to_string(), "tcp://engine:2375".to_string())].into());
        assert_eq!(
            host_of(&cloud("tcp://other:1"), Some(&credentials)),
            Ok(DockerHost::Tcp {
                host: "other".into(),
                port: 1
            })
        );
        assert_eq!(
            host_of(&cloud(""), Some(&credentials)),
            Ok(DockerHost::Tcp {
                host: "engine".into(),
                port: 2375
            })
        );
        assert_eq!(
            host_of(&cloud(""), None),
            Ok(DockerHost::Unix("/var/run/docker.sock".into()))
        );
    }

    #[test]
    fn alter_requests_become_limits_or_are_refused() {
        let body = update_body(&AlterRequest {
            cpu_count: Some("1.5".into()),
            memory_megabytes: Some("256".into()),
        })
        .expect("valid");
        assert_eq!(body.nano_cpus, Some(1_500_000_000));
        assert_eq!(
            (body.memory, body.memory_swap),
            (Some(256_000_000), Some(256_000_000))
        );
        for (cpu, memory) in [
            (Some("0"), None),
            (Some("x"), None),
            (None, Some("1")),
            (None, Some("-5")),
        ] {
            let request = AlterRequest {
                cpu_count: cpu.map(String::from),
                memory_megabytes: memory.map(String::from),
            };
            assert!(update_body(&request).is_err(), "{request:?}");
        }
        assert_eq!(
            update_body(&AlterRequest::default()),
            Ok(ContainerUpdateBody::default())
        );
    }
}
