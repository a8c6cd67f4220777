//! The Docker cloud through the IM API: what a RADL makes in the engine, the VM
//! operations, snapshots, errors, observation and destruction.

use std::time::Duration;

use super::*;

const USER: &str = "docker-user";

/// A front and two workers on a private network, contextualization disabled.
fn front_and_workers() -> String {
    format!(
        "network privada ()
system front (
cpu.count = 1 and
memory.size = 256m and
net_interface.0.connection = 'privada' and
disk.0.image.url = 'docker://{IMAGE}' and
disk.0.os.name = 'linux'
)
system wn (
cpu.count = 1 and
memory.size = 128m and
net_interface.0.connection = 'privada' and
disk.0.image.url = 'docker://{IMAGE}' and
disk.0.os.name = 'linux'
)
contextualize ()
deploy front 1
deploy wn 2
"
    )
}

#[test]
fn a_radl_becomes_containers_with_their_limits_labels_and_networks() {
    let labelled = Labelled::new("layout");
    let dir = tempfile::tempdir().expect("temp dir");
    let server = TestServer::start_with(docker_settings(dir.path(), &labelled));
    let inf = create_on_docker(&server, USER, &front_and_workers());
    wait_for_docker_state(&server, USER, &inf, "configured", Duration::from_secs(60));

    let containers = labelled.containers_of(&inf);
    assert_eq!(containers.len(), 3, "one container per VM: {containers:?}");
    let front = container_of(&server, USER, &inf, 0);
    assert!(
        containers.iter().any(|c| front.starts_with(c.as_str())),
        "{front} in {containers:?}"
    );
    assert_eq!(inspect(&front, "{{.HostConfig.Memory}}"), "256000000");
    assert_eq!(inspect(&front, "{{.HostConfig.NanoCpus}}"), "1000000000");
    assert_eq!(
        inspect(
            &front,
            "{{index .Config.Labels \"infralog.infrastructure\"}}"
        ),
        inf
    );
    assert_eq!(
        inspect(&front, "{{index .Config.Labels \"infralog.vm\"}}"),
        "0"
    );
    let worker = container_of(&server, USER, &inf, 1);
    assert_eq!(inspect(&worker, "{{.HostConfig.Memory}}"), "128000000");

    // One network of its own for the private network, labelled; VMs find each other by name.
    let networks = labelled.ids(
        "network",
        &[&format!("label=infralog.infrastructure={inf}")],
    );
    assert_eq!(networks.len(), 1, "{networks:?}");
    let (resolved, hosts) = exec(&front, "getent hosts vnode-1 && getent hosts vnode-2");
    assert!(
        resolved,
        "vnode-1 and vnode-2 resolve inside vnode-0: {hosts}"
    );

    // The VM's RADL shows what Docker applied and the real address.
    let info = server
        .get(&format!("/infrastructures/{inf}/vms/0"))
        .auth(&docker_auth(USER))
        .send()
        .expect(200)
        .text();
    assert!(info.contains("provider.type = 'Docker'"), "{info}");
    assert!(
        info.contains("disk.0.os.credentials.username = 'root'"),
        "{info}"
    );
    let address = inspect(
        &front,
        "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
    );
    assert!(!address.is_empty());
    assert!(
        info.contains(&format!("net_interface.0.ip = '{address}'")),
        "{address} in {info}"
    );

    // Destroyed: nothing with the infrastructure's label is left.
    server
        .delete(&format!("/infrastructures/{inf}"))
        .auth(&docker_auth(USER))
        .send()
        .expect(200);
    assert_eq!(labelled.leftovers_of(&inf), Vec::<(String, String)>::new());
}

#[test]
fn stop_start_reboot_alter_and_remove_act_on_the_containers() {
    let labelled = Labelled::new("operations");
    let dir = tempfile::tempdir().expect("temp dir");
    let server = TestServer::start_with(docker_settings(dir.path(), &labelled));
    let inf = create_on_docker(&server, USER, &front_and_workers());
    wait_for_docker_state(&server, USER, &inf, "configured", Duration::from_secs(60));
    let front = container_of(&server, USER, &inf, 0);
    let vm0 = format!("/infrastructures/{inf}/vms/0");

    server
        .put(&format!("{vm0}/stop"))
        .auth(&docker_auth(USER))
        .send()
        .expect(200);
    assert_eq!(inspect(&front, "{{.State.Running}}"), "false");
    let state = server
        .get(&format!("{vm0}/state"))
        .auth(&docker_auth(USER))
        .send()
        .expect(200)
        .text();
    assert_eq!(state.trim(), "stopped");

    server
        .put(&format!("{vm0}/start"))
        .auth(&docker_auth(USER))
        .send()
        .expect(200);
    assert_eq!(inspect(&front, "{{.State.Running}}"), "true");

    let started = inspect(&front, "{{.State.StartedAt}}");
    server
        .put(&format!("{vm0}/reboot"))
        .auth(&docker_auth(USER))
        .send()
        .expect(200);
    assert_ne!(
        inspect(&front, "{{.State.StartedAt}}"),
        started,
        "a reboot restarts the container"
    );

    let altered = server
        .put(&vm0)
        .auth(&docker_auth(USER))
        .radl("system front ( memory.size = 512m )")
        .send();
    assert_eq!(altered.status, 200, "alter: {}", altered.text());
    assert_eq!(inspect(&front, "{{.HostConfig.Memory}}"), "512000000");
    let memory = server
        .get(&format!("{vm0}/memory.size"))
        .auth(&docker_auth(USER))
        .send()
        .expect(200)
        .text();
    assert!(
        memory.contains("512"),
        "the VM's RADL shows the new size: {memory}"
    );

    let worker = container_of(&server, USER, &inf, 2);
    server
        .delete(&format!("/infrastructures/{inf}/vms/2"))
        .auth(&docker_auth(USER))
        .send()
        .expect(200);
    assert!(
        !docker(&["inspect", &worker]).status.success(),
        "the removed VM's container is gone"
    );
    assert_eq!(labelled.containers_of(&inf).len(), 2);
}

#[test]
fn a_snapshot_is_an_image_that_a_second_infrastructure_boots_from() {
    let labelled = Labelled::new("snapshot");
    let dir = tempfile::tempdir().expect("temp dir");
    let server = TestServer::start_with(docker_settings(dir.path(), &labelled));
    let radl = format!(
        "system node (
memory.size = 128m and
disk.0.image.url = 'docker://{IMAGE}'
)
contextualize ()
deploy node 1
"
    );
    let inf = create_on_docker(&server, USER, &radl);
    wait_for_docker_state(&server, USER, &inf, "configured", Duration::from_secs(60));
    let node = container_of(&server, USER, &inf, 0);
    let (wrote, _) = exec(&node, "echo from-the-snapshot > /root/marker");
    assert!(wrote);
    let name = format!("infralog-test-snapshot-{:08x}", rand::random::<u32>());
    let answer = server
        .put(&format!(
            "/infrastructures/{inf}/vms/0/disks/0/snapshot?image_name={name}&auto_delete=true"
        ))
        .auth(&docker_auth(USER))
        .send();
    assert_eq!(answer.status, 200, "snapshot: {}", answer.text());
    let url = answer.text();
    assert!(url.trim().starts_with(&format!("docker://{name}")), "{url}");

    let second = create_on_docker(
        &server,
        USER,
        &format!(
            "system copy (
memory.size = 128m and
disk.0.image.url = '{}'
)
contextualize ()
deploy copy 1
",
            url.trim()
        ),
    );
    wait_for_docker_state(
        &server,
        USER,
        &second,
        "configured",
        Duration::from_secs(60),
    );
    let copy = container_of(&server, USER, &second, 0);
    let (read, marker) = exec(&copy, "cat /root/marker");
    assert!(read && marker.contains("from-the-snapshot"), "{marker:?}");

    // auto_delete: destroying the first infrastructure removes its snapshot image,
    // once no container uses it (the second is destroyed first).
    for id in [&second, &inf] {
        server
            .delete(&format!("/infrastructures/{id}"))
            .auth(&docker_auth(USER))
            .send()
            .expect(200);
    }
    let image = docker(&[
        "image",
        "inspect",
        url.trim().trim_start_matches("docker://"),
    ]);
    assert!(!image.status.success(), "the auto-delete snapshot is gone");
}

#[test]
fn a_missing_image_fails_the_vm_with_dockers_message_and_a_bad_host_is_named() {
    let labelled = Labelled::new("errors");
    let dir = tempfile::tempdir().expect("temp dir");
    let server = TestServer::start_with(docker_settings(dir.path(), &labelled));
    let radl = "system node (
disk.0.image.url = 'docker://infralog-test/no-such-image:never'
)
contextualize ()
deploy node 1
";
    let answer = server
        .post("/infrastructures")
        .auth(&docker_auth(USER))
        .radl(radl)
        .send();
    // Every VM failed: IM answers the error, and the infrastructure is not kept.
    assert_eq!(answer.status, 400, "{}", answer.text());
    let text = answer.text();
    assert!(
        text.contains("no-such-image"),
        "Docker's message names the image: {text}"
    );

    let unreachable = "id = im; type = InfrastructureManager; username = u; password = p\\nid = docker; type = Docker; host = tcp://127.0.0.1:1";
    let answer = server
        .post("/infrastructures")
        .auth(unreachable)
        .radl(&format!(
            "system node (\ndisk.0.image.url = 'docker://{IMAGE}'\n)\ncontextualize ()\ndeploy node 1\n"
        ))
        .send();
    assert_eq!(answer.status, 400, "{}", answer.text());
    assert!(
        answer.text().contains("127.0.0.1:1"),
        "the error names the host: {}",
        answer.text()
    );
}

#[test]
fn a_container_killed_outside_shows_as_failed_and_the_log_records_the_observation() {
    let labelled = Labelled::new("observed");
    let dir = tempfile::tempdir().expect("temp dir");
    let server = TestServer::start_with(docker_settings(dir.path(), &labelled));
    let radl = format!(
        "system node (
memory.size = 128m and
disk.0.image.url = 'docker://{IMAGE}'
)
contextualize ()
deploy node 2
"
    );
    let inf = create_on_docker(&server, USER, &radl);
    wait_for_docker_state(&server, USER, &inf, "configured", Duration::from_secs(60));
    let node = container_of(&server, USER, &inf, 1);
    assert!(docker(&["kill", &node]).status.success());

    // The background sweep sees it without any read of that VM.
    wait_until(
        &server,
        USER,
        &format!("/infrastructures/{inf}/events"),
        Duration::from_secs(20),
        |text| text.contains("VmObserved"),
    );
    let state = server
        .get(&format!("/infrastructures/{inf}/vms/1/state"))
        .auth(&docker_auth(USER))
        .send()
        .expect(200)
        .text();
    assert_eq!(state.trim(), "failed");
    let contmsg = server
        .get(&format!("/infrastructures/{inf}/vms/1/contmsg"))
        .auth(&docker_auth(USER))
        .send()
        .expect(200)
        .text();
    assert!(
        contmsg.contains("137") || contmsg.to_lowercase().contains("exit"),
        "the reason: {contmsg}"
    );
    // The other VM is untouched.
    let other = server
        .get(&format!("/infrastructures/{inf}/vms/0/state"))
        .auth(&docker_auth(USER))
        .send()
        .expect(200)
        .text();
    assert_eq!(other.trim(), "configured");

    // Removed by hand: observed as gone on the next read.
    assert!(docker(&["rm", "-f", &node]).status.success());
    wait_until(
        &server,
        USER,
        &format!("/infrastructures/{inf}/events"),
        Duration::from_secs(20),
        |text| text.matches("VmObserved").count() >= 2,
    );
}
