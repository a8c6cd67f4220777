//! What the Docker connector's tests share: the clean-up guard, the requests, and
//! direct engine calls to check what the connector did.

use std::collections::HashMap;
use std::process::Command;

use bollard::exec::{CreateExecOptions, StartExecResults};
use bollard::models::ContainerStateStatusEnum;
use bollard::query_parameters::{ListContainersOptions, ListNetworksOptions, ListVolumesOptions};
use bollard::Docker;
use futures_util::StreamExt;
use infralog_actors::connectors::docker::DockerConnector;
use infralog_actors::connectors::{CloudCredentials, CloudVmRef, LaunchRequest, LaunchedVm};
use infralog_events::domain::{CloudRef, FactValue, InfId, VmId};

/// The test image (`.ci/docker-test-image` builds it).
pub const IMAGE: &str = "infralog-test/debian:bookworm";

/// Removes every container, network, volume and image labelled with the run's id.
pub struct Cleanup {
    /// `infralog.test=<run id>`.
    pub label: String,
}

impl Cleanup {
    /// A guard for a fresh run id.
    pub fn new() -> Self {
        let run = format!("{}-{:08x}", std::process::id(), rand::random::<u32>());
        Cleanup {
            label: format!("infralog.test={run}"),
        }
    }

    /// The run id.
    pub fn run(&self) -> &str {
        self.label
            .strip_prefix("infralog.test=")
            .unwrap_or(&self.label)
    }

    fn ids(&self, listing: &[&str]) -> Vec<String> {
        let filter = format!("label={}", self.label);
        let output = Command::new("docker")
            .args(listing)
            .args(["--filter", &filter])
            .output();
        match output {
            Ok(output) => String::from_utf8_lossy(&output.stdout)
                .split_whitespace()
                .map(str::to_string)
                .collect(),
            Err(_) => Vec::new(),
        }
    }

    fn remove(&self, listing: &[&str], removal: &[&str]) {
        let mut ids = self.ids(listing);
        ids.sort();
        ids.dedup();
        if !ids.is_empty() {
            let _ = Command::new("docker").args(removal).args(&ids).output();
        }
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        self.remove(&["ps", "-aq"], &["rm", "-f", "-v"]);
        self.remove(&["network", "ls", "-q"], &["network", "rm"]);
        self.remove(&["volume", "ls", "-q"], &["volume", "rm", "-f"]);
        self.remove(&["images", "-q"], &["rmi", "-f"]);
    }
}

/// A connector labelling what it makes with the run id.
pub fn connector(cleanup: &Cleanup) -> DockerConnector {
    DockerConnector::new([("infralog.test", cleanup.run())])
}

/// The VM's cloud, with its `host`.
pub fn cloud(host: &str) -> CloudRef {
    CloudRef {
        id: "docker".into(),
        kind: "Docker".into(),
        host: host.into(),
    }
}

/// A credential line for the local engine.
pub fn credentials() -> CloudCredentials {
    CloudCredentials::new(HashMap::from([(
        "host".to_string(),
        "unix:///var/run/docker.sock".to_string(),
    )]))
}

/// A launch of system `node`.
pub fn request(infrastructure: InfId, vm: u32, radl: &str) -> LaunchRequest {
    request_of(infrastructure, vm, "node", radl)
}

/// A launch of `system`.
pub fn request_of(infrastructure: InfId, vm: u32, system: &str, radl: &str) -> LaunchRequest {
    LaunchRequest {
        infrastructure,
        vm_id: VmId(vm),
        system: system.into(),
        radl: radl.into(),
        cloud: cloud("unix:///var/run/docker.sock"),
    }
}

/// The launched VM, as later calls name it.
pub fn vm_ref(launched: &LaunchedVm) -> CloudVmRef {
    CloudVmRef {
        cloud: cloud("unix:///var/run/docker.sock"),
        cloud_vm_id: launched.cloud_vm_id.clone(),
    }
}

/// The value of fact `name` of a launch.
pub fn fact<'a>(launched: &'a LaunchedVm, name: &str) -> Option<&'a str> {
    launched
        .facts
        .iter()
        .find(|f| f.name == name)
        .map(|f| match &f.value {
            FactValue::Text(text) => text.as_str(),
            FactValue::Number { literal, .. } => literal.as_str(),
        })
}

/// The test's own client of the local engine.
pub async fn docker() -> Docker {
    Docker::connect_with_unix("/var/run/docker.sock", 60, bollard::API_DEFAULT_VERSION)
        .expect("the socket")
        .negotiate_version()
        .await
        .expect("the engine answers")
}

/// Runs `command` in `container`; its exit code and output.
pub async fn exec(docker: &Docker, container: &str, command: &[&str]) -> (i64, String) {
    let created = docker
        .create_exec(
            container,
            CreateExecOptions {
                cmd: Some(command.iter().map(|s| s.to_string()).collect()),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                ..Default::default()
            },
        )
        .await
        .expect("exec created");
    let mut text = String::new();
    if let StartExecResults::Attached { mut output, .. } = docker
        .start_exec(&created.id, None)
        .await
        .expect("exec started")
    {
        while let Some(chunk) = output.next().await {
            text.push_str(&chunk.expect("exec output").to_string());
        }
    }
    let code = docker
        .inspect_exec(&created.id)
        .await
        .expect("exec inspected")
        .exit_code
        .unwrap_or(-1);
    (code, text)
}

/// The container's status.
pub async fn status(docker: &Docker, id: &str) -> Option<ContainerStateStatusEnum> {
    docker
        .inspect_container(id, None)
        .await
        .expect("inspected")
        .state
        .and_then(|s| s.status)
}

/// What still carries the run's label: (containers, networks, volumes).
pub async fn leftovers(docker: &Docker, cleanup: &Cleanup) -> (usize, usize, usize) {
    let filters = HashMap::from([("label".to_string(), vec![cleanup.label.clone()])]);
    let containers = docker
        .list_containers(Some(ListContainersOptions {
            all: true,
            filters: Some(filters.clone()),
            ..Default::default()
        }))
        .await
        .expect("listed");
    let networks = docker
        .list_networks(Some(ListNetworksOptions {
            filters: Some(filters.clone()),
        }))
        .await
        .expect("listed");
    let volumes = docker
        .list_volumes(Some(ListVolumesOptions {
            filters: Some(filters),
        }))
        .await
        .expect("listed")
        .volumes
        .unwrap_or_default();
    (containers.len(), networks.len(), volumes.len())
}
