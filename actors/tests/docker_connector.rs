//! The Docker connector against the real engine (/var/run/docker.sock) and the test
//! image `infralog-test/debian:bookworm` (`.ci/docker-test-image` builds it).
//!
//! Every test labels what it makes `infralog.test=<its own run id>` and a guard
//! removes everything with that label when the test ends, passed or failed.

mod docker_support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bollard::models::{ContainerCreateBody, ContainerStateStatusEnum};
use bollard::query_parameters::{
    CreateContainerOptions, KillContainerOptions, ListImagesOptions, ListNetworksOptions,
    RemoveContainerOptions,
};
use docker_support::*;
use infralog_actors::connectors::{
    AlterRequest, CloudConnector, CloudCredentials, CloudVmRef, ImageFilters,
};
use infralog_events::domain::vm::ObservedVmState;
use infralog_events::domain::InfId;

/// A front with a public port and a volume, a back end on the private network only
/// (a host port is the host's: two VMs cannot publish the same one).
fn two_node_radl(host_port: u16) -> String {
    format!(
        "network priv ()\n\
         network pub (outbound = 'yes' and outports = '{host_port}-80')\n\
         system front (\n\
         cpu.count = 1 and memory.size = 256m and\n\
         disk.0.image.url = 'docker://{IMAGE}' and\n\
         net_interface.0.connection = 'priv' and\n\
         net_interface.1.connection = 'pub' and\n\
         disk.1.size = 1G and disk.1.mount_path = '/data'\n\
         )\n\
         system back (\n\
         disk.0.image.url = 'docker://{IMAGE}' and\n\
         net_interface.0.connection = 'priv'\n\
         )\n\
         deploy front 1\n\
         deploy back 1"
    )
}

const ONE_NODE: &str = "network priv ()\nsystem node ( memory.size = 512m and \
    disk.0.image.url = 'docker://infralog-test/debian:bookworm' and \
    net_interface.0.connection = 'priv' )";

#[tokio::test]
async fn two_vms_on_a_private_network_reach_each_other_by_name() {
    let cleanup = Cleanup::new();
    let connector = connector(&cleanup);
    let docker = docker().await;
    let infrastructure = InfId::random();
    let host_port = 20000 + (rand::random::<u16>() % 10000);
    let radl = two_node_radl(host_port);
    // Both at once: the network must be created once, not twice.
    let (first, second) = tokio::join!(
        connector.launch(
            request_of(infrastructure, 0, "front", &radl),
            &credentials()
        ),
        connector.launch(request_of(infrastructure, 1, "back", &radl), &credentials()),
    );
    let (first, second) = (first.expect("vm 0"), second.expect("vm 1"));

    let inspected = docker
        .inspect_container(&first.cloud_vm_id, None)
        .await
        .expect("inspected");
    let host_config = inspected.host_config.clone().expect("host config");
    assert_eq!(host_config.nano_cpus, Some(1_000_000_000));
    assert_eq!(host_config.memory, Some(256_000_000));
    let bindings = host_config.port_bindings.expect("ports published");
    let binding = bindings["80/tcp"].as_ref().expect("a binding")[0].clone();
    assert_eq!(binding.host_port, Some(host_port.to_string()));
    let labels = inspected
        .config
        .as_ref()
        .and_then(|c| c.labels.clone())
        .expect("labels");
    assert_eq!(
        labels["infralog.infrastructure"],
        infrastructure.to_string()
    );
    assert_eq!(labels["infralog.vm"], "0");
    assert_eq!(labels["infralog.test"], cleanup.run());
    assert_eq!(
        inspected.name.as_deref(),
        Some(format!("/infralog-{infrastructure}-0").as_str())
    );
    assert_eq!(
        inspected.config.and_then(|c| c.hostname).as_deref(),
        Some("vnode-0")
    );
    let mounts = inspected.mounts.expect("mounts");
    assert!(
        mounts
            .iter()
            .any(|m| m.destination.as_deref() == Some("/data")
                && m.name.as_deref()
                    == Some(format!("infralog-{infrastructure}-0-disk1").as_str())),
        "{mounts:?}"
    );

    let networks = docker
        .list_networks(Some(ListNetworksOptions {
            filters: Some(HashMap::from([(
                "label".to_string(),
                vec![format!("infralog.infrastructure={infrastructure}")],
            )])),
        }))
        .await
        .expect("listed");
    assert_eq!(networks.len(), 1, "one network for priv: {networks:?}");

    let second_ip = fact(&second, "net_interface.0.ip").expect("vm 1 has a private IP");
    let (code, hosts) = exec(&docker, &first.cloud_vm_id, &["getent", "hosts", "vnode-1"]).await;
    assert_eq!(code, 0, "{hosts}");
    assert!(
        hosts.starts_with(second_ip),
        "vnode-1 is {hosts}, facts say {second_ip}"
    );
    let (code, own) = exec(
        &docker,
        &second.cloud_vm_id,
        &["getent", "hosts", "vnode-0.localdomain"],
    )
    .await;
    assert_eq!(code, 0, "{own}");
    assert!(own.starts_with(fact(&first, "net_interface.0.ip").expect("ip")));
    assert_eq!(fact(&first, "net_interface.1.ip"), Some("127.0.0.1"));
    assert_eq!(fact(&first, "provider.type"), Some("Docker"));
    assert_eq!(fact(&first, "memory.size"), Some("256"));
    assert_eq!(
        fact(&first, "instance_id"),
        Some(first.cloud_vm_id.as_str())
    );

    for vm in [&first, &second] {
        connector
            .destroy(&vm_ref(vm), &credentials())
            .await
            .expect("destroyed");
    }
    let (containers, networks, volumes) = leftovers(&docker, &cleanup).await;
    assert_eq!(
        (containers, volumes),
        (0, 0),
        "destroy removes containers and volumes"
    );
    assert_eq!(
        networks, 1,
        "the network stays until the infrastructure is released"
    );
    connector
        .release_infrastructure(infrastructure, &cloud(""), &credentials())
        .await
        .expect("released");
    connector
        .release_infrastructure(infrastructure, &cloud(""), &credentials())
        .await
        .expect("released again");
    assert_eq!(leftovers(&docker, &cleanup).await, (0, 0, 0));
}

#[tokio::test]
async fn stop_start_reboot_alter_snapshot_and_destroy() {
    let cleanup = Cleanup::new();
    let connector = connector(&cleanup);
    let docker = docker().await;
    let infrastructure = InfId::random();
    let launched = connector
        .launch(request(infrastructure, 0, ONE_NODE), &credentials())
        .await
        .expect("launched");
    let vm = vm_ref(&launched);
    let id = launched.cloud_vm_id.as_str();

    connector.stop(&vm, &credentials()).await.expect("stopped");
    assert_eq!(
        status(&docker, id).await,
        Some(ContainerStateStatusEnum::EXITED)
    );
    let seen = connector
        .observe(&vm)
        .await
        .expect("observed")
        .expect("observable");
    assert_eq!(seen.state, ObservedVmState::Stopped, "{}", seen.message);
    connector
        .stop(&vm, &credentials())
        .await
        .expect("a repeated stop is fine");

    connector.start(&vm, &credentials()).await.expect("started");
    assert_eq!(
        status(&docker, id).await,
        Some(ContainerStateStatusEnum::RUNNING)
    );
    let before = docker.inspect_container(id, None).await.expect("inspected");
    connector
        .reboot(&vm, &credentials())
        .await
        .expect("rebooted");
    let after = docker.inspect_container(id, None).await.expect("inspected");
    let started_at = |c: &bollard::models::ContainerInspectResponse| {
        c.state.as_ref().and_then(|s| s.started_at.clone())
    };
    assert_ne!(
        started_at(&before),
        started_at(&after),
        "a reboot starts it anew"
    );
    assert_eq!(
        status(&docker, id).await,
        Some(ContainerStateStatusEnum::RUNNING)
    );

    let facts = connector
        .alter(
            &vm,
            AlterRequest {
                cpu_count: Some("1".into()),
                memory_megabytes: Some("128".into()),
            },
            &credentials(),
        )
        .await
        .expect("altered");
    let limits = docker
        .inspect_container(id, None)
        .await
        .expect("inspected")
        .host_config
        .expect("host config");
    assert_eq!(limits.memory, Some(128_000_000));
    assert_eq!(limits.nano_cpus, Some(1_000_000_000));
    assert_eq!(facts.len(), 2);

    let name = format!("infralog-test-snap-{}", cleanup.run());
    let url = connector
        .snapshot(&vm, 0, &name, &credentials())
        .await
        .expect("snapshot");
    assert_eq!(url, format!("docker://{name}:latest"));
    let image_labels = docker
        .inspect_image(&format!("{name}:latest"))
        .await
        .expect("the snapshot exists")
        .config
        .and_then(|c| c.labels)
        .expect("labels");
    assert_eq!(image_labels["infralog.snapshot"], id);
    assert_eq!(
        image_labels["infralog.test"],
        cleanup.run(),
        "the guard finds it"
    );
    let again = connector.snapshot(&vm, 0, &name, &credentials()).await;
    assert!(again
        .expect_err("never replaced")
        .message
        .contains("already exists"));
    assert!(connector
        .snapshot(&vm, 1, "x", &credentials())
        .await
        .is_err());
    let listed = connector
        .images(
            &ImageFilters::parse(&format!("distribution={name}")).expect("filters"),
            &credentials(),
        )
        .await
        .expect("images");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].uri, url);

    let from_snapshot = ONE_NODE.replace("docker://infralog-test/debian:bookworm", &url);
    let second = connector
        .launch(request(infrastructure, 1, &from_snapshot), &credentials())
        .await
        .expect("boots from the snapshot");
    assert_eq!(
        status(&docker, &second.cloud_vm_id).await,
        Some(ContainerStateStatusEnum::RUNNING)
    );
    let quotas = connector.quotas(&credentials()).await.expect("quotas");
    assert_eq!(quotas[0].0, "cores");
    assert!(
        quotas[0].1.limit >= 1 && quotas[0].1.used >= 1,
        "{quotas:?}"
    );
    assert!(quotas[1].1.used >= 1, "{quotas:?}");

    let refused = connector
        .delete_image(&format!("docker://{IMAGE}"), &credentials())
        .await;
    assert!(refused
        .expect_err("not a snapshot")
        .message
        .contains("not made by a snapshot"));
    for launched in [&launched, &second] {
        connector
            .destroy(&vm_ref(launched), &credentials())
            .await
            .expect("destroyed");
        connector
            .destroy(&vm_ref(launched), &credentials())
            .await
            .expect("destroying a gone container succeeds");
    }
    connector
        .delete_image(&url, &credentials())
        .await
        .expect("deleted");
    connector
        .delete_image(&url, &credentials())
        .await
        .expect("deleted again");
    let images = docker
        .list_images(Some(ListImagesOptions {
            filters: Some(HashMap::from([(
                "reference".to_string(),
                vec![name.clone()],
            )])),
            ..Default::default()
        }))
        .await
        .expect("listed");
    assert!(images.is_empty(), "{images:?}");
    connector
        .release_infrastructure(infrastructure, &cloud(""), &credentials())
        .await
        .expect("released");
    assert_eq!(leftovers(&docker, &cleanup).await, (0, 0, 0));
}

#[tokio::test]
async fn a_repeated_launch_adopts_and_a_half_made_container_is_replaced() {
    let cleanup = Cleanup::new();
    let connector = connector(&cleanup);
    let docker = docker().await;
    let infrastructure = InfId::random();
    let first = connector
        .launch(request(infrastructure, 0, ONE_NODE), &credentials())
        .await
        .expect("launched");
    let again = connector
        .launch(request(infrastructure, 0, ONE_NODE), &credentials())
        .await
        .expect("launched again");
    assert_eq!(again.cloud_vm_id, first.cloud_vm_id, "adopted");
    assert_eq!(again.facts, first.facts);

    // A crash between create and start leaves a created container.
    docker
        .remove_container(
            &first.cloud_vm_id,
            Some(RemoveContainerOptions {
                force: true,
                ..Default::default()
            }),
        )
        .await
        .expect("removed");
    let half_made = docker
        .create_container(
            Some(CreateContainerOptions {
                name: Some(format!("infralog-{infrastructure}-0")),
                ..Default::default()
            }),
            ContainerCreateBody {
                image: Some(IMAGE.into()),
                labels: Some(HashMap::from([
                    (
                        "infralog.infrastructure".to_string(),
                        infrastructure.to_string(),
                    ),
                    ("infralog.vm".to_string(), "0".to_string()),
                    ("infralog.test".to_string(), cleanup.run().to_string()),
                ])),
                ..Default::default()
            },
        )
        .await
        .expect("created")
        .id;
    let replaced = connector
        .launch(request(infrastructure, 0, ONE_NODE), &credentials())
        .await
        .expect("launched over the half-made one");
    assert_ne!(replaced.cloud_vm_id, half_made);
    assert!(
        docker.inspect_container(&half_made, None).await.is_err(),
        "removed"
    );
    assert_eq!(
        leftovers(&docker, &cleanup).await.0,
        1,
        "one container for the VM"
    );
    assert_eq!(
        status(&docker, &replaced.cloud_vm_id).await,
        Some(ContainerStateStatusEnum::RUNNING)
    );
}

#[tokio::test]
async fn a_missing_image_and_an_unreachable_host_fail_clearly() {
    let cleanup = Cleanup::new();
    let connector = connector(&cleanup);
    let docker = docker().await;
    let infrastructure = InfId::random();
    let missing = ONE_NODE.replace(IMAGE, "infralog-test/no-such-image:none");
    let started = Instant::now();
    let error = connector
        .launch(request(infrastructure, 0, &missing), &credentials())
        .await
        .expect_err("no such image");
    assert!(error.message.contains("No such image"), "{error}");
    assert!(
        error.message.contains("infralog-test/no-such-image:none"),
        "{error}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "nothing is pulled"
    );
    assert_eq!(leftovers(&docker, &cleanup).await.0, 0);
    connector
        .release_infrastructure(infrastructure, &cloud(""), &credentials())
        .await
        .expect("released");

    let unreachable = CloudCredentials::new(HashMap::from([(
        "host".to_string(),
        "tcp://127.0.0.1:1".to_string(),
    )]));
    let mut far = request(infrastructure, 0, ONE_NODE);
    far.cloud = cloud("tcp://127.0.0.1:1");
    let started = Instant::now();
    let error = connector
        .launch(far, &unreachable)
        .await
        .expect_err("unreachable");
    assert!(error.message.contains("tcp://127.0.0.1:1"), "{error}");
    assert!(error.message.contains("cannot reach Docker"), "{error}");
    let observed = connector
        .observe(&CloudVmRef {
            cloud: cloud("tcp://127.0.0.1:1"),
            cloud_vm_id: "x".into(),
        })
        .await
        .expect_err("unreachable");
    assert!(observed.message.contains("tcp://127.0.0.1:1"), "{observed}");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "a refused connection is not waited on"
    );
    let bad_host = connector
        .quotas(&CloudCredentials::new(HashMap::from([(
            "host".to_string(),
            "ftp://engine".to_string(),
        )])))
        .await
        .expect_err("not a Docker host");
    assert!(bad_host.message.contains("ftp://engine"), "{bad_host}");
}

#[tokio::test]
async fn observe_follows_what_happens_outside() {
    let cleanup = Cleanup::new();
    let connector = connector(&cleanup);
    let docker = docker().await;
    let launched = connector
        .launch(request(InfId::random(), 0, ONE_NODE), &credentials())
        .await
        .expect("launched");
    let vm = vm_ref(&launched);
    let observe = || async {
        connector
            .observe(&vm)
            .await
            .expect("observed")
            .expect("observable")
    };
    assert_eq!(observe().await.state, ObservedVmState::Running);

    docker
        .kill_container(&launched.cloud_vm_id, None::<KillContainerOptions>)
        .await
        .expect("killed");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = observe().await;
    while seen.state == ObservedVmState::Running && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        seen = observe().await;
    }
    assert_eq!(seen.state, ObservedVmState::Failed, "{}", seen.message);
    assert!(seen.message.contains("137"), "{}", seen.message);

    connector
        .start(&vm, &credentials())
        .await
        .expect("started again");
    assert_eq!(observe().await.state, ObservedVmState::Running);
    connector.stop(&vm, &credentials()).await.expect("stopped");
    assert_eq!(observe().await.state, ObservedVmState::Stopped);

    docker
        .remove_container(
            &launched.cloud_vm_id,
            Some(RemoveContainerOptions {
                force: true,
                ..Default::default()
            }),
        )
        .await
        .expect("removed");
    assert_eq!(observe().await.state, ObservedVmState::Gone);
    connector
        .destroy(&vm, &credentials())
        .await
        .expect("destroying what is gone succeeds");
}
