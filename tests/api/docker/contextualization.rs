//! Real contextualization through the IM API: the RADL's recipes run by
//! `ansible-playbook` against the containers, Ansible's output in the logs, a
//! failed task, a reconfigure and an add.

use std::time::Duration;

use super::*;

const USER: &str = "ansible-user";

fn recipes(front_task: &str) -> String {
    format!(
        "network privada ()
system front (
memory.size = 256m and
net_interface.0.connection = 'privada' and
disk.0.image.url = 'docker://{IMAGE}'
)
system wn (
memory.size = 128m and
net_interface.0.connection = 'privada' and
disk.0.image.url = 'docker://{IMAGE}'
)
configure front (
@begin
{front_task}
@end
)
configure wn (
@begin
- tasks:
  - name: worker knows its master
    copy:
      dest: /root/master
      content: \"{{{{ IM_MASTER_HOSTNAME }}}}\"
@end
)
deploy front 1
deploy wn 2
"
    )
}

/// Recipes are plays without `hosts`, as IM's are (IM adds the system's group).
const WRITE_MARKER: &str = "- tasks:
  - name: write the marker file
    copy:
      dest: /root/infralog-marker
      content: \"configured {{ IM_NODE_HOSTNAME }}\"";

#[test]
fn recipes_run_on_the_containers_and_their_output_reaches_contmsg() {
    let labelled = Labelled::new("ctxt");
    let dir = tempfile::tempdir().expect("temp dir");
    let server = TestServer::start_with(docker_settings(dir.path(), &labelled));
    let inf = create_on_docker(&server, USER, &recipes(WRITE_MARKER));
    wait_for_docker_state(&server, USER, &inf, "configured", Duration::from_secs(240));

    let front = container_of(&server, USER, &inf, 0);
    let (read, marker) = exec(&front, "cat /root/infralog-marker");
    assert!(read, "the recipe wrote its file");
    assert_eq!(marker, "configured vnode-0");
    let worker = container_of(&server, USER, &inf, 2);
    let (read, master) = exec(&worker, "cat /root/master");
    assert!(read && master == "vnode-0", "{master:?}");

    let full = server
        .get(&format!("/infrastructures/{inf}/contmsg"))
        .auth(&docker_auth(USER))
        .send()
        .expect(200)
        .text();
    assert!(
        full.contains("Select master VM"),
        "IM's own lines first: {full}"
    );
    assert!(
        full.contains("write the marker file"),
        "Ansible's task names: {full}"
    );
    assert!(
        full.contains("ok=") && full.contains("changed="),
        "the recap: {full}"
    );
    let header = server
        .get(&format!("/infrastructures/{inf}/contmsg?headeronly=true"))
        .auth(&docker_auth(USER))
        .send()
        .expect(200)
        .text();
    assert!(header.contains("Select master VM"), "{header}");
    assert!(
        !header.contains("write the marker file"),
        "headeronly leaves Ansible's output out: {header}"
    );
    let vm_log = server
        .get(&format!("/infrastructures/{inf}/vms/0/contmsg"))
        .auth(&docker_auth(USER))
        .send()
        .expect(200)
        .text();
    assert!(vm_log.contains("vnode-0"), "the VM's own lines: {vm_log}");
    // The run's output and its end reached the actor through its mailbox, and
    // each report was taken (the end recorded `configured`): none is counted.
    let metrics = server.get("/metrics").send().expect(200).text();
    assert_eq!(
        crate::observability::sample(
            &metrics,
            "infralog_mailbox_depth",
            &[r#"actor="infrastructure""#]
        ),
        Some(0.0),
        "{metrics}"
    );

    // An add contextualizes the new VM too.
    let added = server
        .post(&format!("/infrastructures/{inf}"))
        .auth(&docker_auth(USER))
        .radl("network privada\nsystem wn\ndeploy wn 1")
        .send();
    assert_eq!(added.status, 200, "add: {}", added.text());
    wait_for_docker_state(&server, USER, &inf, "configured", Duration::from_secs(240));
    let new_worker = container_of(&server, USER, &inf, 3);
    let (read, master) = exec(&new_worker, "cat /root/master");
    assert!(
        read && master == "vnode-0",
        "the added VM was configured: {master:?}"
    );
}

#[test]
fn a_failed_task_leaves_the_infrastructure_unconfigured_and_reconfigure_runs_again() {
    let labelled = Labelled::new("ctxt-fail");
    let dir = tempfile::tempdir().expect("temp dir");
    let server = TestServer::start_with(docker_settings(dir.path(), &labelled));
    let failing = "- tasks:
  - name: a task that fails
    command: /bin/false";
    let inf = create_on_docker(&server, USER, &recipes(failing));
    wait_for_docker_state(
        &server,
        USER,
        &inf,
        "unconfigured",
        Duration::from_secs(240),
    );
    let full = server
        .get(&format!("/infrastructures/{inf}/contmsg"))
        .auth(&docker_auth(USER))
        .send()
        .expect(200)
        .text();
    assert!(
        full.contains("a task that fails"),
        "the failing task is named: {full}"
    );
    assert!(full.contains("failed=1"), "the recap counts it: {full}");

    // The recipe fixed: reconfigure runs again and configures.
    let answer = server
        .put(&format!("/infrastructures/{inf}/reconfigure"))
        .auth(&docker_auth(USER))
        .radl(&format!(
            "configure front (\n@begin\n{WRITE_MARKER}\n@end\n)\n"
        ))
        .send();
    assert_eq!(answer.status, 200, "reconfigure: {}", answer.text());
    wait_for_docker_state(&server, USER, &inf, "configured", Duration::from_secs(240));
    let front = container_of(&server, USER, &inf, 0);
    let (read, _) = exec(&front, "cat /root/infralog-marker");
    assert!(read, "the fixed recipe ran");
}

#[test]
fn without_ansible_a_radl_that_needs_contextualization_is_refused_at_create() {
    let labelled = Labelled::new("no-ansible");
    let dir = tempfile::tempdir().expect("temp dir");
    let mut settings = docker_settings(dir.path(), &labelled);
    settings.actors.ansible = None;
    let server = TestServer::start_with(settings);
    let answer = server
        .post("/infrastructures")
        .auth(&docker_auth(USER))
        .radl(&recipes(WRITE_MARKER))
        .send();
    assert_eq!(answer.status, 400, "{}", answer.text());
    assert!(
        answer.text().contains("ansible-playbook"),
        "{}",
        answer.text()
    );
    assert!(
        labelled.ids("container", &[]).is_empty(),
        "nothing was launched"
    );
}
