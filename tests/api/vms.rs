//! The VM routes of the IM API's first part, black-box over HTTP: VM info, VM
//! properties (dotted features included), VM operations and VM ids
//! (`docs/api.md` §2.13–2.18).

use std::time::Duration;

use crate::harness::*;
use serde_json::json;

const USER: &str = "routes";

#[test]
fn vm_info_and_properties() {
    let (_dir, server) = temp_server();
    let inf = create(&server, USER, RADL_CTX);
    wait_for_state(&server, USER, &inf, "configured", Duration::from_secs(10));
    let vm = format!("/infrastructures/{inf}/vms/1");
    let info = server.get(&vm).user(USER).send().expect(200);
    assert_eq!(info.content_type(), "text/plain; charset=utf-8");
    let text = info.text();
    assert!(
        text.starts_with(
            "network publica ( outbound = 'yes' )\nnetwork privada (  )\nsystem wn (\n"
        ),
        "{text}"
    );
    assert!(text.ends_with(")\n\n"), "{text}");
    for line in [
        "state = 'configured'",
        "provider.type = 'Dummy'",
        "net_interface.0.ip = '10.0.0.1'",
        "disk.0.os.credentials.username = 'username'",
        "net_interface.0.dns_name = 'vnode-1'",
    ] {
        assert!(text.contains(line), "{line} missing from {text}");
    }
    assert!(!text.contains("deploy"), "VM info holds no deploys: {text}");
    let info_json = server
        .get(&vm)
        .user(USER)
        .accept("application/json")
        .send()
        .expect(200)
        .json();
    let radl = info_json["radl"].as_array().expect("RADL-JSON");
    assert_eq!(radl.len(), 3, "two networks and the system: {info_json}");
    assert_eq!(radl[2]["class"], "system");
    assert_eq!(radl[2]["id"], "wn");
    assert_eq!(radl[2]["cpu.count_min"], 2);
    assert_eq!(radl[2]["state"], "configured");

    let property = |prop: &str, accept: Option<&str>| {
        let mut request = server.get(&format!("{vm}/{prop}")).user(USER);
        if let Some(accept) = accept {
            request = request.accept(accept);
        }
        request.send()
    };
    assert_eq!(property("state", None).expect(200).text(), "configured");
    assert_eq!(
        property("state", Some("application/json"))
            .expect(200)
            .json(),
        json!({"state": "configured"})
    );
    assert_eq!(property("cpu.count", None).expect(200).text(), "2");
    assert_eq!(
        property("cpu.count", Some("application/json"))
            .expect(200)
            .json(),
        json!({"cpu.count": 2})
    );
    assert_eq!(
        property("memory.size", None).expect(200).text(),
        "1000000000"
    );
    assert_eq!(
        property("net_interface.0.ip", None).expect(200).text(),
        "10.0.0.1"
    );
    assert_eq!(
        property("net_interface.0.connection", None)
            .expect(200)
            .text(),
        "privada"
    );
    assert_eq!(
        property("disk.0.os.credentials.username", None)
            .expect(200)
            .text(),
        "username"
    );
    let missing = property("gpu.count", None).expect(404);
    assert_eq!(missing.text(), "Incorrect property gpu.count for VM ID 1");
    property("contmsg", None).expect(200);

    let gone = server
        .get(&format!("/infrastructures/{inf}/vms/7"))
        .user(USER)
        .send()
        .expect(404);
    assert_eq!(gone.text(), "Error Getting VM. info: Invalid VM ID");
    let not_a_number = server
        .get(&format!("/infrastructures/{inf}/vms/one/state"))
        .user(USER)
        .accept("application/json")
        .send()
        .expect(404);
    assert_eq!(
        not_a_number.json(),
        json!({"message": "Error Getting VM. property: Invalid VM ID", "code": 404})
    );
}

#[test]
fn vm_lists_skip_removed_vms_and_removed_vms_are_deleted() {
    let (_dir, server) = temp_server();
    let inf = create(&server, USER, RADL_NO_CTX);
    server
        .delete(&format!("/infrastructures/{inf}/vms/0"))
        .user(USER)
        .send()
        .expect(200);
    assert_eq!(
        server
            .get(&format!("/infrastructures/{inf}"))
            .user(USER)
            .send()
            .expect(200)
            .text(),
        format!("{}/vms/1", infra_uri(&inf))
    );
    for (path, message) in [
        ("vms/0", "Error Getting VM. info: Deleted VM."),
        ("vms/0/state", "Error Getting VM. property: Deleted VM."),
    ] {
        let answer = server
            .get(&format!("/infrastructures/{inf}/{path}"))
            .user(USER)
            .send()
            .expect(404);
        assert_eq!(answer.text(), message);
    }
    let stop = server
        .put(&format!("/infrastructures/{inf}/vms/0/stop"))
        .user(USER)
        .send()
        .expect(404);
    assert_eq!(stop.text(), "Error in stop op in VM: Deleted VM.");
    assert_eq!(
        state(&server, USER, &inf),
        json!({"state": {"state": "configured", "vm_states": {"1": "configured"}}})
    );
    server
        .delete(&format!("/infrastructures/{inf}/vms/1"))
        .user(USER)
        .send()
        .expect(200);
    let none = server
        .get(&format!("/infrastructures/{inf}"))
        .user(USER)
        .accept("application/json")
        .send()
        .expect(200);
    assert_eq!(none.json(), json!({"uri-list": []}));
    assert_eq!(
        server
            .get(&format!("/infrastructures/{inf}"))
            .user(USER)
            .send()
            .expect(200)
            .text(),
        ""
    );
}

#[test]
fn vm_ids_are_read_as_python_reads_integers() {
    let (_dir, server) = temp_server();
    let inf = create(&server, USER, RADL_NO_CTX);
    for (spelling, found) in [
        ("1", true),
        ("01", true),
        ("%2B1", true),
        ("%201%20", true),
        ("1.0", false),
        ("-1", false),
        ("1_0", false),
        ("99999999999999999999999", false),
        ("", false),
        ("x", false),
    ] {
        let answer = server
            .get(&format!("/infrastructures/{inf}/vms/{spelling}/state"))
            .user(USER)
            .send();
        if spelling.is_empty() {
            // `…/vms//state` matches no VM route.
            assert_ne!(answer.status, 200);
            assert_ne!(answer.status, 500);
            continue;
        }
        if found {
            assert_eq!(answer.expect(200).text(), "configured", "{spelling}");
        } else {
            assert_eq!(answer.status, 404, "{spelling}");
            assert_eq!(
                answer.text(),
                "Error Getting VM. property: Invalid VM ID",
                "{spelling}"
            );
        }
    }
}

#[test]
fn stop_and_start_the_infrastructure_and_its_vms() {
    let (_dir, server) = temp_server();
    let inf = create(&server, USER, RADL_NO_CTX);
    let base = format!("/infrastructures/{inf}");
    let stopped = server
        .put(&format!("{base}/stop"))
        .user(USER)
        .send()
        .expect(200);
    assert_eq!(stopped.text(), "");
    assert_eq!(stopped.content_type(), "text/plain; charset=utf-8");
    assert_eq!(
        state(&server, USER, &inf),
        json!({"state": {"state": "stopped", "vm_states": {"0": "stopped", "1": "stopped"}}})
    );
    server
        .put(&format!("{base}/start"))
        .user(USER)
        .send()
        .expect(200);
    assert_eq!(
        state(&server, USER, &inf),
        json!({"state": {"state": "configured", "vm_states": {"0": "configured", "1": "configured"}}})
    );

    // IM's aggregation depends on VM order: [configured, stopped] is configured …
    server
        .put(&format!("{base}/vms/1/stop"))
        .user(USER)
        .send()
        .expect(200);
    assert_eq!(
        state(&server, USER, &inf),
        json!({"state": {"state": "configured", "vm_states": {"0": "configured", "1": "stopped"}}})
    );
    // … and [stopped, stopped] after the first one stops too.
    server
        .put(&format!("{base}/vms/0/stop"))
        .user(USER)
        .send()
        .expect(200);
    server
        .put(&format!("{base}/vms/1/start"))
        .user(USER)
        .send()
        .expect(200);
    assert_eq!(
        state(&server, USER, &inf),
        json!({"state": {"state": "stopped", "vm_states": {"0": "stopped", "1": "configured"}}}),
        "[stopped, configured] aggregates to stopped"
    );
    server
        .put(&format!("{base}/vms/0/reboot"))
        .user(USER)
        .send()
        .expect(200);
    assert_eq!(
        infra_state(&server, USER, &inf),
        "stopped",
        "reboot changes no state with Dummy"
    );

    let unknown_op = server
        .put(&format!("{base}/pause"))
        .user(USER)
        .send()
        .expect(422);
    assert_eq!(unknown_op.json()["detail"][0]["loc"], json!(["path", "op"]));
    let unknown_vm_op = server
        .put(&format!("{base}/vms/0/pause"))
        .user(USER)
        .send()
        .expect(422);
    assert_eq!(
        unknown_vm_op.json()["detail"][0]["loc"],
        json!(["path", "op"])
    );
    let unknown_vm = server
        .put(&format!("{base}/vms/9/start"))
        .user(USER)
        .send()
        .expect(404);
    assert_eq!(unknown_vm.text(), "Error in start op in VM: Invalid VM ID");
}

/// IM lists infrastructures most recently saved first, and saves on some calls
/// only: a start (of a VM or of the infrastructure) saves nothing, so starting VMs
/// that run already leaves the list as it was; reads of the state and a change of
/// owners save.
#[test]
fn the_list_moves_up_only_on_calls_im_saves_on() {
    let (_dir, server) = temp_server();
    let first = create(&server, USER, RADL_NO_CTX);
    let second = create(&server, USER, RADL_NO_CTX);
    wait_for_state(&server, USER, &first, "configured", Duration::from_secs(10));
    wait_for_state(
        &server,
        USER,
        &second,
        "configured",
        Duration::from_secs(10),
    );
    let order = || -> Vec<String> { list(&server, USER).lines().map(id_of).collect() };
    // Reading the state is a save in IM: the last one read comes first.
    state(&server, USER, &first);
    state(&server, USER, &second);
    assert_eq!(order(), [second.clone(), first.clone()]);

    for path in [
        format!("/infrastructures/{first}/vms/0/start"),
        format!("/infrastructures/{first}/start"),
    ] {
        server.put(&path).user(USER).send().expect(200);
        assert_eq!(
            order(),
            [second.clone(), first.clone()],
            "{path} on running VMs moved the infrastructure"
        );
    }

    state(&server, USER, &first);
    assert_eq!(order(), [first.clone(), second.clone()]);
    server
        .post(&format!("/infrastructures/{second}/authorization"))
        .user(USER)
        .body("{\"username\": \"another\", \"password\": \"pass-another\"}")
        .send()
        .expect(200);
    assert_eq!(order(), [second, first], "a change of owners is a save");
}
