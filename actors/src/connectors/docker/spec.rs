//! A RADL system turned into the container that stands for one of its VMs: pure, no
//! Docker call. What IM's Docker connector reads is read the same way; what it would
//! do unsafely on a shared engine (bind-mount host paths, privileged containers, join
//! any existing network by `provider_id`) is refused or not done, as the module docs
//! of [`super`] explain.

use std::collections::BTreeMap;

use infralog_events::domain::{InfId, VmId};
use infralog_radl::{PropertyValue, Radl, System, Value};

use super::labels;
use super::ports::{parse_outports, PublishedPort, MAX_PUBLISHED_PORTS};

/// IM's name for an interface without one (`Config.DEFAULT_VM_NAME`).
const DEFAULT_HOSTNAME: &str = "vnode-#N#";
/// IM's domain for a name without one (`Config.DEFAULT_DOMAIN`).
const DEFAULT_DOMAIN: &str = "localdomain";
/// The smallest memory limit Docker accepts (6 MiB).
const MIN_MEMORY_BYTES: i64 = 6 * 1024 * 1024;

/// Why a system cannot become a container.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PlanError(pub String);

/// The CPU limit: `cpu.count` as Docker's `NanoCpus`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuLimit {
    /// Billionths of a CPU.
    pub nano_cpus: i64,
    /// `cpu.count` as written, for the fact.
    pub literal: String,
}

/// The memory limit: `memory.size` in bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryLimit {
    /// Bytes, as IM converts RADL units (`512m` is 512000000).
    pub bytes: i64,
    /// The number as written (`512`).
    pub literal: String,
    /// The unit as written (`m`).
    pub unit: String,
}

/// A private RADL network the VM joins, as a Docker bridge network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkAttachment {
    /// The interfaces (`net_interface.N`) connected to it; Docker attaches once.
    pub interfaces: Vec<u32>,
    /// The RADL network id.
    pub radl_network: String,
    /// The Docker network's name (`infralog-<inf>-<network>`).
    pub docker_name: String,
    /// The network's labels.
    pub labels: BTreeMap<String, String>,
    /// The names the VM answers to on it: its host name and its full name.
    pub aliases: Vec<String>,
}

/// An interface of the VM, in RADL order, for the facts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    /// N of `net_interface.N`.
    pub index: u32,
    /// The RADL network it connects to.
    pub radl_network: String,
    /// Whether the network is public (`outbound = 'yes'`).
    pub public: bool,
    /// Its DNS name with `#N#` replaced (`vnode-0` when it had none), when the
    /// interface is the first one or connects to a private network.
    pub dns_name: Option<String>,
}

/// A disk of the VM kept in a named volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeMount {
    /// N of `disk.N` (1 or more).
    pub disk: u32,
    /// The volume's name (`infralog-<inf>-<vm>-disk<N>`).
    pub volume_name: String,
    /// Where it is mounted (absolute).
    pub mount_path: String,
    /// The volume's labels.
    pub labels: BTreeMap<String, String>,
}

/// Everything the container of one VM is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerPlan {
    /// The container's name (`infralog-<inf>-<vm>`).
    pub container_name: String,
    /// The image reference, `NAME[:TAG]` from `docker://NAME[:TAG]`.
    pub image: String,
    /// The host name (interface 0's name).
    pub hostname: String,
    /// The domain name (interface 0's domain).
    pub domainname: String,
    /// The CPU limit, when `cpu.count` is given.
    pub cpu: Option<CpuLimit>,
    /// The memory limit, when `memory.size` is given.
    pub memory: Option<MemoryLimit>,
    /// The interfaces, in RADL order.
    pub interfaces: Vec<Interface>,
    /// The private networks, in the order of their first interface.
    pub networks: Vec<NetworkAttachment>,
    /// The host ports published, from every public network's `outports`.
    pub ports: Vec<PublishedPort>,
    /// The volumes mounted.
    pub volumes: Vec<VolumeMount>,
    /// The container's labels.
    pub labels: BTreeMap<String, String>,
}

/// Who the container is for.
#[derive(Debug, Clone, Copy)]
pub struct Owner<'a> {
    /// The infrastructure.
    pub infrastructure: InfId,
    /// The VM's id in it (IM's `#N#`).
    pub vm: VmId,
    /// The operator's labels, added to everything created.
    pub extra_labels: &'a BTreeMap<String, String>,
}

/// The container of VM `owner.vm` of system `system` in `radl`.
pub fn plan(radl: &Radl, system: &str, owner: Owner<'_>) -> Result<ContainerPlan, PlanError> {
    let found = radl
        .system(system)
        .ok_or_else(|| PlanError(format!("the RADL has no system {system}")))?;
    if found.features.string("docker.privileged") == Some("yes") {
        return Err(PlanError(format!(
            "system {system}: docker.privileged = 'yes' is refused: a privileged container \
             controls the Docker host"
        )));
    }
    let image = image(found)?;
    let (interfaces, networks, ports) = interfaces(radl, found, owner)?;
    let (hostname, domainname) = requested_name(found, 0, owner.vm)?;
    Ok(ContainerPlan {
        container_name: labels::container_name(owner.infrastructure, owner.vm),
        image,
        hostname,
        domainname,
        cpu: cpu(found)?,
        memory: memory(found)?,
        interfaces,
        networks,
        ports,
        volumes: volumes(found, owner)?,
        labels: labels::container_labels(owner.extra_labels, owner.infrastructure, owner.vm),
    })
}

/// `disk.0.image.url`: the first `docker://` URL (a list may offer several clouds').
fn image(system: &System) -> Result<String, PlanError> {
    let name = &system.name;
    let urls = match system.property("disk.0.image.url") {
        Some(PropertyValue::Str(url)) => vec![url],
        Some(PropertyValue::List(urls)) => urls,
        Some(_) => {
            return Err(PlanError(format!(
                "system {name}: disk.0.image.url must be a docker:// URL"
            )))
        }
        None => {
            return Err(PlanError(format!(
                "system {name} has no disk.0.image.url: the Docker cloud needs \
                 'docker://NAME[:TAG]'"
            )))
        }
    };
    let Some(url) = urls.iter().find(|url| url.starts_with("docker://")) else {
        return Err(PlanError(format!(
            "system {name}: disk.0.image.url '{}' is not a docker:// URL",
            urls.join("', '")
        )));
    };
    let reference = &url["docker://".len()..];
    let valid = !reference.is_empty()
        && reference.len() <= 255
        && !reference.starts_with(['/', ':', '.', '-'])
        && reference
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/:._-@".contains(c));
    if !valid {
        return Err(PlanError(format!(
            "system {name}: '{url}' does not name a Docker image (docker://NAME[:TAG])"
        )));
    }
    Ok(reference.to_string())
}

fn number_feature(system: &System, prop: &str) -> Result<Option<(f64, String, String)>, PlanError> {
    let Some(feature) = system.features.feature(prop) else {
        return Ok(None);
    };
    let Value::Num(number) = &feature.value else {
        return Err(PlanError(format!(
            "system {}: {prop} must be a number",
            system.name
        )));
    };
    let base = feature
        .number_in_base_units()
        .and_then(Result::ok)
        .and_then(|n| n.to_f64().ok())
        .filter(|v| v.is_finite())
        .ok_or_else(|| {
            PlanError(format!(
                "system {}: {prop} = {number}{} is too large",
                system.name, feature.unit
            ))
        })?;
    Ok(Some((base, number.to_string(), feature.unit.clone())))
}

/// `cpu.count` as a CPU limit (fractions allowed, as Docker's `--cpus`).
fn cpu(system: &System) -> Result<Option<CpuLimit>, PlanError> {
    let Some((count, literal, _)) = number_feature(system, "cpu.count")? else {
        return Ok(None);
    };
    let nano = count * 1e9;
    if count <= 0.0 || nano >= i64::MAX as f64 {
        return Err(PlanError(format!(
            "system {}: cpu.count = {literal} is not a CPU count Docker can limit to",
            system.name
        )));
    }
    Ok(Some(CpuLimit {
        nano_cpus: nano.round() as i64,
        literal,
    }))
}

/// `memory.size` in bytes, IM's units (`512m` is 512000000, `1GiB` 1073741824).
fn memory(system: &System) -> Result<Option<MemoryLimit>, PlanError> {
    let Some((bytes, literal, unit)) = number_feature(system, "memory.size")? else {
        return Ok(None);
    };
    if bytes >= i64::MAX as f64 {
        return Err(PlanError(format!(
            "system {}: memory.size = {literal}{unit} is too large",
            system.name
        )));
    }
    let bytes = bytes.round() as i64;
    if bytes < MIN_MEMORY_BYTES {
        return Err(PlanError(format!(
            "system {}: memory.size = {literal}{unit} is below Docker's minimum of 6 MiB",
            system.name
        )));
    }
    Ok(Some(MemoryLimit {
        bytes,
        literal,
        unit,
    }))
}

type Networking = (Vec<Interface>, Vec<NetworkAttachment>, Vec<PublishedPort>);

/// The interfaces in order, the private networks they join and the published ports.
fn interfaces(radl: &Radl, system: &System, owner: Owner<'_>) -> Result<Networking, PlanError> {
    let (mut interfaces, mut networks, mut ports) =
        (Vec::new(), Vec::<NetworkAttachment>::new(), Vec::new());
    for index in 0u32.. {
        let key = format!("net_interface.{index}.connection");
        let Some(network_id) = system.features.string(&key).filter(|id| !id.is_empty()) else {
            break;
        };
        let network = radl.network(network_id).ok_or_else(|| {
            PlanError(format!(
                "system {}: {key} names network {network_id}, which the RADL does not define",
                system.name
            ))
        })?;
        let public = network.is_public();
        let name = requested_name(system, index, owner.vm)?;
        let full_name = full_name(&name);
        if public {
            if let Some(outports) = network.features.string("outports") {
                let parsed =
                    parse_outports(network_id, outports).map_err(|e| PlanError(e.to_string()))?;
                for port in parsed {
                    add_port(&mut ports, port, &system.name)?;
                }
                if ports.len() > MAX_PUBLISHED_PORTS {
                    return Err(PlanError(format!(
                        "system {}: more than {MAX_PUBLISHED_PORTS} ports would be published",
                        system.name
                    )));
                }
            }
        } else {
            let aliases = [name.0.clone(), full_name.clone()];
            match networks.iter_mut().find(|n| n.radl_network == network_id) {
                Some(attachment) => {
                    attachment.interfaces.push(index);
                    for alias in aliases {
                        if !attachment.aliases.contains(&alias) {
                            attachment.aliases.push(alias);
                        }
                    }
                }
                None => networks.push(NetworkAttachment {
                    interfaces: vec![index],
                    radl_network: network_id.to_string(),
                    docker_name: labels::network_name(owner.infrastructure, network_id),
                    labels: labels::merged(
                        owner.extra_labels,
                        [
                            (labels::INFRASTRUCTURE, owner.infrastructure.to_string()),
                            (labels::NETWORK, network_id.to_string()),
                        ],
                    ),
                    aliases: dedup(aliases.to_vec()),
                }),
            }
        }
        let named = index == 0 || !public;
        interfaces.push(Interface {
            index,
            radl_network: network_id.to_string(),
            public,
            dns_name: named.then(|| written_name(system, index, owner.vm)),
        });
    }
    Ok((interfaces, networks, ports))
}

/// Adds `port` unless it is there; a host port already forwarded elsewhere is refused
/// (Docker would fail at start with "port is already allocated").
fn add_port(
    ports: &mut Vec<PublishedPort>,
    port: PublishedPort,
    system: &str,
) -> Result<(), PlanError> {
    match ports
        .iter()
        .find(|p| p.host_port == port.host_port && p.protocol == port.protocol)
    {
        Some(existing) if *existing == port => Ok(()),
        Some(existing) => Err(PlanError(format!(
            "system {system}: host port {}/{} is mapped to container ports {} and {}",
            port.host_port, port.protocol, existing.container_port, port.container_port
        ))),
        None => {
            ports.push(port);
            Ok(())
        }
    }
}

fn dedup(mut items: Vec<String>) -> Vec<String> {
    let mut seen = Vec::new();
    items.retain(|item| {
        let new = !seen.contains(item);
        if new {
            seen.push(item.clone());
        }
        new
    });
    items
}

/// The name interface `index` asks for, `#N#` replaced, as written (`vnode-0` when
/// none is given).
fn written_name(system: &System, index: u32, vm: VmId) -> String {
    let features = &system.features;
    features
        .string(&format!("net_interface.{index}.dns.0.name"))
        .filter(|n| !n.is_empty())
        .or_else(|| features.string(&format!("net_interface.{index}.dns_name")))
        .filter(|n| !n.is_empty())
        .unwrap_or(DEFAULT_HOSTNAME)
        .replace("#N#", &vm.0.to_string())
}

/// IM's `getRequestedNameIface`: (host name, domain), split at the first dot, with
/// IM's defaults; refused when Docker or DNS could not use it.
fn requested_name(system: &System, index: u32, vm: VmId) -> Result<(String, String), PlanError> {
    let written = written_name(system, index, vm);
    let (host, domain) = match written.split_once('.') {
        Some((host, domain)) if !domain.is_empty() => (host.to_string(), domain.to_string()),
        Some((host, _)) => (host.to_string(), DEFAULT_DOMAIN.to_string()),
        None => (written.clone(), DEFAULT_DOMAIN.to_string()),
    };
    let label_ok = |label: &str| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    if !label_ok(&host) || domain.len() > 190 || !domain.split('.').all(label_ok) {
        return Err(PlanError(format!(
            "system {}: net_interface.{index} asks for the name '{written}', which is not a \
             valid host name",
            system.name
        )));
    }
    Ok((host, domain))
}

fn full_name((host, domain): &(String, String)) -> String {
    format!("{host}.{domain}")
}

/// `disk.N.mount_path` for N = 1, 2, … up to the first disk without one (IM's loop).
fn volumes(system: &System, owner: Owner<'_>) -> Result<Vec<VolumeMount>, PlanError> {
    let mut volumes = Vec::new();
    for disk in 1u32.. {
        let Some(path) = system.features.string(&format!("disk.{disk}.mount_path")) else {
            break;
        };
        if let Some(device) = system.features.string(&format!("disk.{disk}.device")) {
            if device.starts_with('/') {
                return Err(PlanError(format!(
                    "system {}: disk.{disk}.device '{device}' is a host path; host paths are \
                     not mounted into containers",
                    system.name
                )));
            }
        }
        let mount_path = if path.starts_with('/') {
            path.to_string()
        } else {
            format!("/{path}")
        };
        let bad = mount_path.trim_end_matches('/').is_empty()
            || mount_path.split('/').any(|part| part == "..")
            || mount_path.contains(['\0', ':', ',']);
        if bad {
            return Err(PlanError(format!(
                "system {}: disk.{disk}.mount_path '{path}' cannot be a mount point",
                system.name
            )));
        }
        volumes.push(VolumeMount {
            disk,
            volume_name: labels::volume_name(owner.infrastructure, owner.vm, disk),
            mount_path,
            labels: labels::merged(
                owner.extra_labels,
                [
                    (labels::INFRASTRUCTURE, owner.infrastructure.to_string()),
                    (labels::VM, owner.vm.0.to_string()),
                    (labels::DISK, disk.to_string()),
                ],
            ),
        });
    }
    Ok(volumes)
}

#[cfg(test)]
#[path = "spec_tests.rs"]
mod tests;
