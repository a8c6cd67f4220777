//! What an inspected container says, read without a Docker call: the facts a launch
//! records on the VM's system, whether a found container is complete, and what an
//! observation reports.

use bollard::models::{ContainerInspectResponse, ContainerStateStatusEnum};
use infralog_events::domain::vm::ObservedVmState;
use infralog_events::domain::{Comparison, FactValue, FeatureFact};

use super::spec::ContainerPlan;
use crate::connectors::Observation;

/// The exit status of a process ended by SIGTERM (128 + 15): what `docker stop`
/// leaves when the image's command obeys it (the connector runs every container
/// with Docker's init, which passes the signal on).
const STOPPED_BY_SIGTERM: i64 = 143;

fn number(name: &str, literal: String, unit: &str) -> FeatureFact {
    FeatureFact {
        name: name.to_string(),
        comparison: Some(Comparison::Eq),
        value: FactValue::Number {
            literal,
            unit: unit.to_string(),
        },
    }
}

/// A CPU count as Docker's nano-CPUs hold it, shortest form (`2`, `1.5`).
fn cpu_literal(nano_cpus: i64) -> String {
    let whole = nano_cpus / 1_000_000_000;
    let fraction = nano_cpus % 1_000_000_000;
    if fraction == 0 {
        whole.to_string()
    } else {
        let digits = format!("{fraction:09}");
        format!("{whole}.{}", digits.trim_end_matches('0'))
    }
}

/// The private address of the container on Docker network `name`.
fn address_on<'a>(container: &'a ContainerInspectResponse, name: &str) -> Option<&'a str> {
    container
        .network_settings
        .as_ref()?
        .networks
        .as_ref()?
        .get(name)?
        .ip_address
        .as_deref()
        .filter(|ip| !ip.is_empty())
}

/// What IM's Docker connector sets on the system of a VM it launched, with the
/// limits and addresses the container really has: the state, `provider.type`,
/// `virtual_system_type`, `instance_id` (the container id), the user, `cpu.count`
/// and `memory.size` when limited, each interface's address (the host's for a public
/// interface) and DNS name, and each volume's name as `disk.N.device`.
pub fn launch_facts(
    plan: &ContainerPlan,
    container: &ContainerInspectResponse,
    public_address: &str,
) -> Vec<FeatureFact> {
    let mut facts = vec![
        FeatureFact::text("state", "running"),
        FeatureFact::text("provider.type", "Docker"),
        FeatureFact::text("virtual_system_type", "docker"),
        FeatureFact::text("instance_id", container.id.clone().unwrap_or_default()),
        FeatureFact::text("disk.0.os.credentials.username", "root"),
    ];
    let limits = container.host_config.as_ref();
    if let Some(nano) = limits.and_then(|h| h.nano_cpus).filter(|n| *n > 0) {
        facts.push(number("cpu.count", cpu_literal(nano), ""));
    }
    if let Some(bytes) = limits.and_then(|h| h.memory).filter(|m| *m > 0) {
        facts.push(match &plan.memory {
            Some(memory) if memory.bytes == bytes => {
                number("memory.size", memory.literal.clone(), &memory.unit)
            }
            _ => number("memory.size", bytes.to_string(), ""),
        });
    }
    for interface in &plan.interfaces {
        let ip = if interface.public {
            Some(public_address)
        } else {
            plan.networks
                .iter()
                .find(|n| n.radl_network == interface.radl_network)
                .and_then(|n| address_on(container, &n.docker_name))
        };
        if let Some(ip) = ip {
            facts.push(FeatureFact::text(
                format!("net_interface.{}.ip", interface.index),
                ip,
            ));
        }
        if let Some(name) = &interface.dns_name {
            facts.push(FeatureFact::text(
                format!("net_interface.{}.dns_name", interface.index),
                name.clone(),
            ));
        }
    }
    for volume in &plan.volumes {
        facts.push(FeatureFact::text(
            format!("disk.{}.device", volume.disk),
            volume.volume_name.clone(),
        ));
    }
    facts
}

/// The facts an alteration leaves: `cpu.count` keeping the VM's comparison and
/// `memory.size = <n>M` (decimal megabytes), as the Dummy cloud answers.
pub fn altered_facts(
    cpu_count: Option<String>,
    memory_megabytes: Option<String>,
) -> Vec<FeatureFact> {
    let mut facts = Vec::with_capacity(2);
    if let Some(literal) = cpu_count {
        facts.push(FeatureFact {
            name: "cpu.count".into(),
            comparison: None,
            value: FactValue::Number {
                literal,
                unit: String::new(),
            },
        });
    }
    if let Some(literal) = memory_megabytes {
        facts.push(number("memory.size", literal, "M"));
    }
    facts
}

/// Whether a container found for the VM is the finished work of an earlier launch:
/// running, on every network the plan names. Anything else is half-made.
pub fn is_complete(plan: &ContainerPlan, container: &ContainerInspectResponse) -> bool {
    let running = container
        .state
        .as_ref()
        .is_some_and(|s| s.status == Some(ContainerStateStatusEnum::RUNNING));
    running
        && plan
            .networks
            .iter()
            .all(|n| address_on(container, &n.docker_name).is_some())
}

/// The VM's state as the container shows it; `None` (not found) is `Gone`.
pub fn observation(container: Option<&ContainerInspectResponse>) -> Observation {
    let seen = |state, message: &str| Observation {
        state,
        message: message.to_string(),
    };
    let Some(state) = container.and_then(|c| c.state.as_ref()) else {
        return match container {
            None => seen(ObservedVmState::Gone, "the container no longer exists"),
            Some(_) => seen(ObservedVmState::Pending, "Docker shows no state yet"),
        };
    };
    let code = state.exit_code.unwrap_or(0);
    let error = state.error.as_deref().filter(|e| !e.is_empty());
    let with_error = |text: String| match error {
        Some(error) => format!("{text}: {error}"),
        None => text,
    };
    match state.status {
        Some(ContainerStateStatusEnum::CREATED) => seen(ObservedVmState::Pending, "created"),
        Some(ContainerStateStatusEnum::RUNNING) => seen(ObservedVmState::Running, ""),
        Some(ContainerStateStatusEnum::RESTARTING) => seen(ObservedVmState::Running, "restarting"),
        Some(ContainerStateStatusEnum::PAUSED) => seen(ObservedVmState::Running, "paused"),
        Some(ContainerStateStatusEnum::STOPPING) => seen(ObservedVmState::Running, "stopping"),
        Some(ContainerStateStatusEnum::REMOVING) => {
            seen(ObservedVmState::Gone, "the container is being removed")
        }
        Some(ContainerStateStatusEnum::DEAD) => Observation {
            state: ObservedVmState::Failed,
            message: with_error("the container is dead".into()),
        },
        Some(ContainerStateStatusEnum::EXITED) if state.oom_killed == Some(true) => Observation {
            state: ObservedVmState::Failed,
            message: format!("killed for lack of memory (OOM), exit status {code}"),
        },
        Some(ContainerStateStatusEnum::EXITED) if code == 0 => {
            seen(ObservedVmState::Stopped, "exited with status 0")
        }
        Some(ContainerStateStatusEnum::EXITED) if code == STOPPED_BY_SIGTERM => seen(
            ObservedVmState::Stopped,
            "stopped by SIGTERM (exit status 143)",
        ),
        Some(ContainerStateStatusEnum::EXITED) => Observation {
            state: ObservedVmState::Failed,
            message: with_error(format!("exited with status {code}")),
        },
        Some(ContainerStateStatusEnum::EMPTY) | None => {
            if state.running == Some(true) {
                seen(ObservedVmState::Running, "")
            } else {
                seen(ObservedVmState::Pending, "Docker shows no state yet")
            }
        }
    }
}

#[cfg(test)]
#[path = "facts_tests.rs"]
mod tests;
