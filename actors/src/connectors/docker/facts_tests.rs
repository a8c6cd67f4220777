//! Facts and observations read from inspected containers built by hand.

use std::collections::{BTreeMap, HashMap};

use bollard::models::{ContainerState, EndpointSettings, HostConfig, NetworkSettings};
use infralog_events::domain::{InfId, VmId};

use super::*;
use crate::connectors::docker::spec::{plan, Owner};

fn plan_for(text: &str) -> ContainerPlan {
    let radl = infralog_radl::parse(text).expect("parses");
    plan(
        &radl,
        "node",
        Owner {
            infrastructure: InfId::random(),
            vm: VmId(2),
            extra_labels: &BTreeMap::new(),
        },
    )
    .expect("valid")
}

fn container(status: ContainerStateStatusEnum, exit: i64, oom: bool) -> ContainerInspectResponse {
    ContainerInspectResponse {
        id: Some("c0ffee".into()),
        state: Some(ContainerState {
            status: Some(status),
            exit_code: Some(exit),
            oom_killed: Some(oom),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[test]
fn launch_facts_carry_limits_addresses_names_and_volumes() {
    let plan = plan_for(
        "network pub (outbound = 'yes')\nnetwork priv ()\nsystem node ( \
         disk.0.image.url = 'docker://a' and cpu.count = 1.5 and memory.size = 1g and \
         net_interface.0.connection = 'priv' and net_interface.1.connection = 'pub' and \
         disk.1.mount_path = '/data' )",
    );
    let mut inspected = container(ContainerStateStatusEnum::RUNNING, 0, false);
    inspected.host_config = Some(HostConfig {
        nano_cpus: Some(1_500_000_000),
        memory: Some(1_000_000_000),
        ..Default::default()
    });
    inspected.network_settings = Some(NetworkSettings {
        networks: Some(HashMap::from([(
            plan.networks[0].docker_name.clone(),
            EndpointSettings {
                ip_address: Some("172.30.0.2".into()),
                ..Default::default()
            },
        )])),
        ..Default::default()
    });
    assert!(is_complete(&plan, &inspected));
    let facts = launch_facts(&plan, &inspected, "127.0.0.1");
    let shown: Vec<String> = facts
        .iter()
        .map(|f| match &f.value {
            FactValue::Text(text) => format!("{}='{text}'", f.name),
            FactValue::Number { literal, unit } => format!("{}={literal}{unit}", f.name),
        })
        .collect();
    assert_eq!(
        shown,
        [
            "state='running'",
            "provider.type='Docker'",
            "virtual_system_type='docker'",
            "instance_id='c0ffee'",
            "disk.0.os.credentials.username='root'",
            "cpu.count=1.5",
            "memory.size=1g",
            "net_interface.0.ip='172.30.0.2'",
            "net_interface.0.dns_name='vnode-2'",
            "net_interface.1.ip='127.0.0.1'",
            &format!("disk.1.device='{}'", plan.volumes[0].volume_name),
        ]
    );
}

#[test]
fn a_container_missing_a_network_or_not_running_is_half_made() {
    let plan = plan_for(
        "network priv ()\nsystem node ( disk.0.image.url = 'docker://a' and \
         net_interface.0.connection = 'priv' )",
    );
    assert!(!is_complete(
        &plan,
        &container(ContainerStateStatusEnum::RUNNING, 0, false)
    ));
    let bare = plan_for("system node ( disk.0.image.url = 'docker://a' )");
    assert!(is_complete(
        &bare,
        &container(ContainerStateStatusEnum::RUNNING, 0, false)
    ));
    assert!(!is_complete(
        &bare,
        &container(ContainerStateStatusEnum::CREATED, 0, false)
    ));
}

#[test]
fn observations_follow_the_containers_state() {
    use ContainerStateStatusEnum as S;
    let cases = [
        (
            container(S::CREATED, 0, false),
            ObservedVmState::Pending,
            "created",
        ),
        (
            container(S::RUNNING, 0, false),
            ObservedVmState::Running,
            "",
        ),
        (
            container(S::PAUSED, 0, false),
            ObservedVmState::Running,
            "paused",
        ),
        (
            container(S::EXITED, 0, false),
            ObservedVmState::Stopped,
            "status 0",
        ),
        (
            container(S::EXITED, 143, false),
            ObservedVmState::Stopped,
            "SIGTERM",
        ),
        (
            container(S::EXITED, 137, false),
            ObservedVmState::Failed,
            "exited with status 137",
        ),
        (
            container(S::EXITED, 137, true),
            ObservedVmState::Failed,
            "OOM",
        ),
        (
            container(S::DEAD, 1, false),
            ObservedVmState::Failed,
            "dead",
        ),
        (
            container(S::REMOVING, 0, false),
            ObservedVmState::Gone,
            "removed",
        ),
    ];
    for (inspected, state, message) in cases {
        let seen = observation(Some(&inspected));
        assert_eq!(seen.state, state, "{:?}", inspected.state);
        assert!(seen.message.contains(message), "{}", seen.message);
    }
    let mut failed = container(S::EXITED, 2, false);
    if let Some(state) = failed.state.as_mut() {
        state.error = Some("no such file".into());
    }
    assert_eq!(
        observation(Some(&failed)).message,
        "exited with status 2: no such file"
    );
    assert_eq!(observation(None).state, ObservedVmState::Gone);
}

#[test]
fn cpu_counts_print_in_their_shortest_form() {
    assert_eq!(cpu_literal(2_000_000_000), "2");
    assert_eq!(cpu_literal(1_500_000_000), "1.5");
    assert_eq!(cpu_literal(10_000_000), "0.01");
}
