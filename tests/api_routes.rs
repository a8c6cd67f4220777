//! Every route of the IM API's first part, black-box over HTTP: its answers in each
//! representation, its flags, and its error classes (`im-behaviour.md` §1, §2).

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;

const USER: &str = "routes";

fn server() -> (tempfile::TempDir, TestServer) {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = TestServer::start(dir.path());
    (dir, server)
}

fn infra_uri(inf: &str) -> String {
    format!("http://{HOST}/infrastructures/{inf}")
}

#[test]
fn version_needs_no_credentials_and_negotiates() {
    let (_dir, server) = server();
    let text = server.get("/version").send().expect(200);
    server
        .get("/version")
        .auth("id = 1bad; type = nothing")
        .send()
        .expect(200);
    assert_eq!(text.text(), "2.0.0");
    assert_eq!(text.content_type(), "text/plain; charset=utf-8");
    let json = server
        .get("/version")
        .accept("application/json")
        .send()
        .expect(200);
    assert_eq!(json.json(), json!({"version": "2.0.0"}));
    assert_eq!(json.content_type(), "application/json");
    // IM wraps the 415 of its version endpoint into a 400, rendered as HTML here.
    let html = server
        .get("/version")
        .accept("text/html")
        .send()
        .expect(400);
    assert_eq!(html.content_type(), "text/html; charset=utf-8");
    assert_eq!(
        html.text(),
        "<!DOCTYPE HTML PUBLIC \"-//IETF//DTD HTML 2.0//EN\">\n<html>\n    <head>\n        <title>Error 400.</title>\n    </head>\n    <body>\n        <h1>Code: 400.</h1>\n        <h1>Message: Error getting IM version: 415: Unsupported Accept Media Types: text/html</h1>\n    </body>\n</html>\n"
    );
}

#[test]
fn create_answers_the_uri_and_infid_and_the_list_shows_it() {
    let (_dir, server) = server();
    assert_eq!(list(&server, USER), "", "a new user owns nothing");
    let created = server
        .post("/infrastructures")
        .user(USER)
        .radl(RADL_NO_CTX)
        .send()
        .expect(200);
    assert_eq!(created.content_type(), "text/uri-list; charset=utf-8");
    let inf = id_of(&created.text());
    assert_eq!(created.text(), infra_uri(&inf));
    assert_eq!(created.header("infid"), Some(inf.as_str()));
    let uuid = uuid::Uuid::parse_str(&inf).expect("a UUID");
    assert_eq!(uuid.get_version_num(), 1, "IM's ids are UUID version 1");

    let second = server
        .post("/infrastructures")
        .user(USER)
        .accept("application/json")
        .radl(RADL_NO_CTX)
        .send()
        .expect(200);
    let second_uri = second.json()["uri"].as_str().expect("a uri").to_string();
    let second_id = id_of(&second_uri);
    assert_eq!(second.header("infid"), Some(second_id.as_str()));

    let listed = list(&server, USER);
    let mut lines: Vec<&str> = listed.split('\n').collect();
    lines.sort_unstable();
    let mut expected = vec![infra_uri(&inf), infra_uri(&second_id)];
    expected.sort_unstable();
    assert_eq!(lines, expected);
    let as_json = server
        .get("/infrastructures")
        .user(USER)
        .accept("application/json")
        .send()
        .expect(200)
        .json();
    let mut uris: Vec<String> = as_json["uri-list"]
        .as_array()
        .expect("a uri-list")
        .iter()
        .map(|entry| entry["uri"].as_str().expect("uri").to_string())
        .collect();
    uris.sort_unstable();
    assert_eq!(uris, expected);
}

#[test]
fn create_takes_radl_json_and_an_empty_body() {
    let (_dir, server) = server();
    let body = json!([
        {"class": "network", "id": "publica", "outbound": "yes"},
        {"class": "system", "id": "node", "cpu.count_min": 1, "memory.size_min": 536870912,
         "net_interface.0.connection": "publica", "disk.0.os.name": "linux"},
        {"class": "deploy", "system": "node", "vm_number": 2},
        {"class": "contextualize"}
    ]);
    let created = server
        .post("/infrastructures")
        .user(USER)
        .header("Content-Type", "application/json")
        .body(body.to_string())
        .send()
        .expect(200);
    let inf = id_of(&created.text());
    assert_eq!(
        state(&server, USER, &inf),
        json!({"state": {"state": "configured", "vm_states": {"0": "configured", "1": "configured"}}})
    );
    let radl = server
        .get(&format!("/infrastructures/{inf}/radl"))
        .user(USER)
        .send()
        .expect(200)
        .text();
    assert!(radl.contains("system node ("), "{radl}");
    assert!(radl.contains("deploy node 2"), "{radl}");

    // IM: an empty body is an empty RADL, and an infrastructure without deploys fails.
    let empty = server
        .post("/infrastructures")
        .user(USER)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .send()
        .expect(200);
    let empty_inf = id_of(&empty.text());
    assert_eq!(
        state(&server, USER, &empty_inf),
        json!({"state": {"state": "failed", "vm_states": {}}})
    );
}

#[test]
fn create_refuses_bad_bodies_and_unsupported_types_without_creating() {
    let (_dir, server) = server();
    let bad = server
        .post("/infrastructures")
        .user(USER)
        .radl("system front ( cpu.count >= )")
        .send()
        .expect(400);
    assert!(
        bad.text().starts_with("Error parsing request body: "),
        "{}",
        bad.text()
    );
    let form = server
        .post("/infrastructures")
        .user(USER)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(RADL_NO_CTX)
        .send()
        .expect(415);
    assert_eq!(
        form.text(),
        "Unsupported Media Type ['application/x-www-form-urlencoded']"
    );
    let undefined = server
        .post("/infrastructures")
        .user(USER)
        .radl("deploy ghost 1\n")
        .send()
        .expect(400);
    assert!(
        undefined.text().starts_with("Error Creating Inf.: "),
        "{}",
        undefined.text()
    );
    // IM creates the infrastructure and then answers 415; nothing is created here.
    let accept = server
        .post("/infrastructures")
        .user(USER)
        .accept("text/plain")
        .radl(RADL_NO_CTX)
        .send()
        .expect(415);
    assert_eq!(
        accept.text(),
        "Unsupported Accept Media Types: text/plain",
        "create lets the 415 through"
    );
    let unknown_cloud = server
        .post("/infrastructures")
        .user(USER)
        .radl(&format!("{RADL_NO_CTX}\ndeploy node 1 elsewhere\n"))
        .send()
        .expect(400);
    assert!(
        unknown_cloud.text().starts_with("Error Creating Inf.: "),
        "{}",
        unknown_cloud.text()
    );
    for refused in [&bad, &form, &undefined, &accept, &unknown_cloud] {
        assert_eq!(refused.header("infid"), None, "no InfID on errors");
    }
    assert_eq!(
        list(&server, USER),
        "",
        "no rejected request created anything"
    );
}

#[test]
fn dry_run_estimates_without_creating_and_validates_like_create() {
    let (_dir, server) = server();
    let estimate = server
        .post("/infrastructures?dry_run=yes")
        .user(USER)
        .radl(RADL_CTX)
        .send()
        .expect(200);
    assert_eq!(estimate.content_type(), "application/json");
    assert_eq!(estimate.header("infid"), None, "no InfID on a dry run");
    assert_eq!(
        estimate.json(),
        json!({"dummy": {"cloudType": "Dummy", "cloudEndpoint": "http://:80", "compute": [
            {"cpuCores": 1, "memoryInMegabytes": 512, "publicIP": 1},
            {"cpuCores": 2, "memoryInMegabytes": 1000}
        ], "storage": []}})
    );
    let nothing = server
        .post("/infrastructures?dry_run=1")
        .user(USER)
        .radl("network privada ()\n")
        .send()
        .expect(200);
    assert_eq!(nothing.json(), json!({}));
    let undefined = server
        .post("/infrastructures?dry_run=true")
        .user(USER)
        .radl("deploy ghost 1\n")
        .send()
        .expect(400);
    assert!(
        undefined.text().starts_with("Error Creating Inf.: "),
        "{}",
        undefined.text()
    );
    server
        .post("/infrastructures?dry_run=true")
        .user(USER)
        .accept("text/plain")
        .radl(RADL_CTX)
        .send()
        .expect(415);
    assert_eq!(list(&server, USER), "", "dry runs create nothing");
}

#[test]
fn async_create_answers_at_once_and_finishes_in_the_background() {
    let (_dir, server) = server();
    let created = server
        .post("/infrastructures?async=yes")
        .user(USER)
        .radl(RADL_NO_CTX)
        .send()
        .expect(200);
    let inf = id_of(&created.text());
    assert_eq!(created.header("infid"), Some(inf.as_str()));
    wait_for_state(&server, USER, &inf, "configured", Duration::from_secs(10));
    let vms = server
        .get(&format!("/infrastructures/{inf}"))
        .user(USER)
        .send()
        .expect(200)
        .text();
    assert_eq!(vms.lines().count(), 2, "{vms}");
}

#[test]
fn list_filter_is_a_regular_expression_over_the_radl() {
    let (_dir, server) = server();
    let alpha = create(&server, USER, &RADL_NO_CTX.replace("node", "alpha"));
    let beta = create(&server, USER, &RADL_NO_CTX.replace("node", "beta"));
    let only_alpha = server
        .get("/infrastructures?filter=system%20al.ha")
        .user(USER)
        .send()
        .expect(200);
    assert_eq!(only_alpha.text(), infra_uri(&alpha));
    let only_beta = server
        .get("/infrastructures?filter=deploy+beta+2")
        .user(USER)
        .send()
        .expect(200);
    assert_eq!(only_beta.text(), infra_uri(&beta));
    let none = server
        .get("/infrastructures?filter=gamma")
        .user(USER)
        .accept("application/json")
        .send()
        .expect(200);
    assert_eq!(none.json(), json!({"uri-list": []}));
    let invalid = server
        .get("/infrastructures?filter=(unclosed")
        .user(USER)
        .send()
        .expect(400);
    assert!(
        invalid.text().starts_with("Error Getting Inf. List: "),
        "{}",
        invalid.text()
    );
    let too_long = server
        .get(&format!("/infrastructures?filter={}", "a".repeat(2000)))
        .user(USER)
        .send()
        .expect(400);
    assert!(too_long.text().starts_with("Error Getting Inf. List: "));
    let accept = server
        .get("/infrastructures")
        .user(USER)
        .accept("text/plain")
        .send()
        .expect(400);
    assert_eq!(
        accept.text(),
        "Error Getting Inf. List: 415: Unsupported Accept Media Types: text/plain"
    );
}

#[test]
fn infrastructure_vm_list_and_properties() {
    let (_dir, server) = server();
    let inf = create(&server, USER, RADL_NO_CTX);
    let base = format!("/infrastructures/{inf}");
    let vms = server.get(&base).user(USER).send().expect(200);
    assert_eq!(vms.content_type(), "text/uri-list; charset=utf-8");
    assert_eq!(vms.text(), format!("{0}/vms/0\n{0}/vms/1", infra_uri(&inf)));
    let vms_json = server
        .get(&base)
        .user(USER)
        .accept("text/html, application/json")
        .send()
        .expect(200);
    assert_eq!(
        vms_json.json(),
        json!({"uri-list": [{"uri": format!("{}/vms/0", infra_uri(&inf))},
                            {"uri": format!("{}/vms/1", infra_uri(&inf))}]})
    );
    server
        .get(&base)
        .user(USER)
        .accept("text/plain")
        .send()
        .expect(400);

    let state = server
        .get(&format!("{base}/state"))
        .user(USER)
        .send()
        .expect(200);
    assert_eq!(state.content_type(), "application/json");
    assert_eq!(
        state.json(),
        json!({"state": {"state": "configured", "vm_states": {"0": "configured", "1": "configured"}}})
    );
    let refused = server
        .get(&format!("{base}/state"))
        .user(USER)
        .accept("text/plain")
        .send()
        .expect(415);
    assert_eq!(
        refused.text(),
        "Unsupported Accept Media Types: ['text/plain']"
    );

    let radl = server
        .get(&format!("{base}/radl"))
        .user(USER)
        .send()
        .expect(200);
    assert_eq!(radl.content_type(), "text/plain; charset=utf-8");
    assert!(radl.text().contains("system node ("), "{}", radl.text());
    let radl_json = server
        .get(&format!("{base}/radl"))
        .user(USER)
        .accept("application/json")
        .send()
        .expect(200)
        .json();
    assert_eq!(
        radl_json,
        json!({"radl": radl.text()}),
        "the JSON form is the RADL text as a string"
    );

    let contmsg = server
        .get(&format!("{base}/contmsg"))
        .user(USER)
        .send()
        .expect(200);
    assert_eq!(
        contmsg.text(),
        "Contextualization disabled by the RADL/TOSCA template.\n\n"
    );
    let contmsg_json = server
        .get(&format!("{base}/contmsg?headeronly=TRUE"))
        .user(USER)
        .accept("application/json")
        .send()
        .expect(200);
    assert_eq!(
        contmsg_json.json(),
        json!({"contmsg": "Contextualization disabled by the RADL/TOSCA template.\n\n"})
    );
    let html = server
        .get(&format!("{base}/radl"))
        .user(USER)
        .accept("text/html")
        .send()
        .expect(415);
    assert_eq!(html.content_type(), "text/html; charset=utf-8");
    assert!(html
        .text()
        .contains("<h1>Message: Unsupported Accept Media Types: text/html</h1>"));

    let unknown = server
        .get(&format!("{base}/vms"))
        .user(USER)
        .send()
        .expect(422);
    assert_eq!(unknown.json()["detail"][0]["type"], "literal_error");
    assert_eq!(unknown.json()["detail"][0]["loc"], json!(["path", "prop"]));
    assert_eq!(unknown.json()["detail"][0]["input"], "vms");
    let tosca = server
        .get(&format!("{base}/tosca"))
        .user(USER)
        .send()
        .expect(403);
    assert_eq!(
        tosca.text(),
        "'tosca' infrastructure property is not valid in this infrastructure"
    );
}

#[test]
fn vm_info_and_properties() {
    let (_dir, server) = server();
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
fn stop_and_start_the_infrastructure_and_its_vms() {
    let (_dir, server) = server();
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

#[test]
fn destroy_then_everything_is_gone() {
    let (_dir, server) = server();
    let inf = create(&server, USER, RADL_NO_CTX);
    let kept = create(&server, USER, RADL_NO_CTX);
    let destroyed = server
        .delete(&format!("/infrastructures/{inf}"))
        .user(USER)
        .send()
        .expect(200);
    assert_eq!(destroyed.text(), "");
    assert_eq!(list(&server, USER), infra_uri(&kept));
    for (method, path, message) in [
        (
            "GET",
            format!("/infrastructures/{inf}"),
            "Error Getting Inf. info: Invalid infrastructure ID or access not granted.",
        ),
        (
            "DELETE",
            format!("/infrastructures/{inf}"),
            "Error Destroying Inf: Invalid infrastructure ID or access not granted.",
        ),
        (
            "GET",
            format!("/infrastructures/{inf}/state"),
            "Error Getting Inf. prop: Invalid infrastructure ID or access not granted.",
        ),
        (
            "GET",
            format!("/infrastructures/{inf}/vms/0"),
            "Error Getting VM. info: Invalid infrastructure ID or access not granted.",
        ),
        (
            "PUT",
            format!("/infrastructures/{inf}/stop"),
            "Error in stop operation: Invalid infrastructure ID or access not granted.",
        ),
    ] {
        let answer = server.request(method, &path).user(USER).send();
        assert_eq!(answer.status, 404, "{method} {path}");
        assert_eq!(answer.text(), message, "{method} {path}");
    }

    let forced = create(&server, USER, RADL_NO_CTX);
    server
        .delete(&format!("/infrastructures/{forced}?force=yes&async=no"))
        .user(USER)
        .send()
        .expect(200);
    let later = create(&server, USER, RADL_NO_CTX);
    server
        .delete(&format!("/infrastructures/{later}?async=1"))
        .user(USER)
        .send()
        .expect(200);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let answer = server
            .get(&format!("/infrastructures/{later}/state"))
            .user(USER)
            .send();
        if answer.status == 404 {
            break;
        }
        assert_eq!(answer.status, 200, "{}", answer.text());
        let current = answer.json()["state"]["state"].clone();
        assert!(
            current == "deleting" || current == "configured",
            "an asynchronous destruction reads {current}"
        );
        assert!(std::time::Instant::now() < deadline, "never destroyed");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(list(&server, USER), infra_uri(&kept));
}

#[test]
fn boolean_flags_follow_pydantic_and_bad_ones_are_422() {
    let (_dir, server) = server();
    for accepted in [
        "1", "true", "T", "yes", "Y", "on", "0", "False", "f", "NO", "n", "OFF",
    ] {
        server
            .post(&format!("/infrastructures?dry_run={accepted}&async=0"))
            .user(USER)
            .radl(RADL_NO_CTX)
            .send()
            .expect(200);
    }
    for refused in ["", "2", "maybe", "%20yes", "truee"] {
        let answer = server
            .post(&format!("/infrastructures?async={refused}"))
            .user(USER)
            .radl(RADL_NO_CTX)
            .accept("text/html")
            .send()
            .expect(422);
        assert_eq!(answer.content_type(), "application/json");
        let expected_input = refused.replace("%20", " ");
        assert_eq!(
            answer.json(),
            json!({"detail": [{"type": "bool_parsing", "loc": ["query", "async"],
                "msg": "Input should be a valid boolean, unable to interpret input",
                "input": expected_input}]}),
            "async={refused}"
        );
    }
    let two = server
        .post("/infrastructures?async=x&dry_run=z")
        .user(USER)
        .radl(RADL_NO_CTX)
        .send()
        .expect(422);
    let mut locs: Vec<String> = two.json()["detail"]
        .as_array()
        .expect("a list of problems")
        .iter()
        .map(|issue| issue["loc"][1].as_str().unwrap_or("").to_string())
        .collect();
    locs.sort_unstable();
    assert_eq!(locs, ["async", "dry_run"], "every problem is reported");
    let inf = create(&server, USER, RADL_NO_CTX);
    let listed_before = list(&server, USER);
    let both = server
        .delete(&format!("/infrastructures/{inf}?force=x&async=y"))
        .user(USER)
        .send()
        .expect(422);
    assert_eq!(both.json()["detail"][0]["loc"], json!(["query", "force"]));
    assert_eq!(both.json()["detail"].as_array().map(Vec::len), Some(1));
    server
        .get(&format!("/infrastructures/{inf}/contmsg?headeronly=nope"))
        .user(USER)
        .send()
        .expect(422);
    assert_eq!(list(&server, USER), listed_before, "422s change nothing");
    assert_eq!(infra_state(&server, USER, &inf), "configured");
}

#[test]
fn error_bodies_follow_the_accept_header() {
    let (_dir, server) = server();
    let path = "/infrastructures/00000000-0000-1000-8000-000000000000";
    let message = "Error Getting Inf. info: Invalid infrastructure ID or access not granted.";
    let plain = server.get(path).user(USER).send().expect(404);
    assert_eq!(plain.content_type(), "text/plain; charset=utf-8");
    assert_eq!(plain.text(), message);
    let json = server
        .get(path)
        .user(USER)
        .accept("text/html, application/json")
        .send()
        .expect(404);
    assert_eq!(json.json(), json!({"message": message, "code": 404}));
    let html = server
        .get(path)
        .user(USER)
        .accept("text/html;q=0.1")
        .send()
        .expect(404);
    assert_eq!(html.content_type(), "text/html; charset=utf-8");
    assert!(html
        .text()
        .contains(&format!("<h1>Message: {message}</h1>")));
    let not_uuid = server
        .get("/infrastructures/not-an-id/radl")
        .user(USER)
        .send()
        .expect(404);
    assert_eq!(
        not_uuid.text(),
        "Error Getting Inf. prop: Invalid infrastructure ID or access not granted."
    );
}

#[test]
fn routing_answers_like_fastapi() {
    let (_dir, server) = server();
    let unknown = server.get("/health").accept("text/html").send().expect(404);
    assert_eq!(unknown.json(), json!({"detail": "Not Found"}));
    let method = server
        .delete("/infrastructures")
        .user(USER)
        .send()
        .expect(405);
    assert_eq!(method.json(), json!({"detail": "Method Not Allowed"}));
    assert_eq!(method.header("allow"), Some("GET"));
    server.request("HEAD", "/version").send().expect(405);
    let slash = server
        .get("/infrastructures/?filter=x")
        .user(USER)
        .send()
        .expect(307);
    assert_eq!(
        slash.header("location"),
        Some(format!("http://{HOST}/infrastructures?filter=x").as_str())
    );
    server
        .get("//infrastructures")
        .user(USER)
        .send()
        .expect(404);
}

#[test]
fn uris_use_the_host_header_and_a_local_proxys_scheme() {
    let (_dir, server) = server();
    let created = server
        .post("/infrastructures")
        .user(USER)
        .header("Host", "example.com:1234")
        .radl(RADL_NO_CTX)
        .send()
        .expect(200);
    let inf = id_of(&created.text());
    assert_eq!(
        created.text(),
        format!("http://example.com:1234/infrastructures/{inf}")
    );
    let vms = server
        .get(&format!("/infrastructures/{inf}"))
        .user(USER)
        .header("Host", "example.com")
        .header("X-Forwarded-Proto", "https")
        .header("X-Forwarded-Host", "elsewhere.org")
        .send()
        .expect(200);
    assert_eq!(
        vms.text().lines().next(),
        Some(format!("https://example.com/infrastructures/{inf}/vms/0").as_str())
    );
}

#[test]
fn contextualization_runs_then_configures_and_contextualize_empty_disables_it() {
    let (_dir, server) = server();
    let inf = create(&server, USER, RADL_CTX);
    let during = state(&server, USER, &inf);
    assert_eq!(
        during,
        json!({"state": {"state": "running", "vm_states": {"0": "running", "1": "running"}}}),
        "VMs run while the contextualization lasts"
    );
    let contmsg = server
        .get(&format!("/infrastructures/{inf}/contmsg?headeronly=1"))
        .user(USER)
        .send()
        .expect(200)
        .text();
    let first = contmsg.lines().next().expect("a progress line");
    let (stamp, message) = first.split_once(": ").expect("<time>: <message>");
    assert_eq!(message, "Select master VM");
    assert!(
        chrono::NaiveDateTime::parse_from_str(stamp, "%Y-%m-%d %H:%M:%S%.f").is_ok(),
        "IM's timestamp: {stamp}"
    );
    wait_for_state(&server, USER, &inf, "configured", Duration::from_secs(10));
    assert_eq!(
        state(&server, USER, &inf)["state"]["vm_states"],
        json!({"0": "configured", "1": "configured"})
    );
    let finished = server
        .get(&format!("/infrastructures/{inf}/contmsg"))
        .user(USER)
        .send()
        .expect(200)
        .text();
    let header = server
        .get(&format!("/infrastructures/{inf}/contmsg?headeronly=1"))
        .user(USER)
        .send()
        .expect(200)
        .text();
    assert!(header.starts_with(&contmsg), "the log only grows");
    assert!(header.len() > contmsg.len(), "{header}");
    // The full log is the infrastructure's, then each VM's non-empty log.
    let mut expected = header.clone();
    for vm in 0..2 {
        let log = server
            .get(&format!("/infrastructures/{inf}/vms/{vm}/contmsg"))
            .user(USER)
            .send()
            .expect(200)
            .text();
        if !log.is_empty() {
            expected.push_str(&format!("VM {vm}:\n{log}\n{}\n", "*".repeat(75)));
        }
    }
    assert_eq!(finished, expected);

    let disabled = create(&server, USER, &format!("{RADL_CTX}contextualize ()\n"));
    assert_eq!(infra_state(&server, USER, &disabled), "configured");
    let text = server
        .get(&format!("/infrastructures/{disabled}/contmsg"))
        .user(USER)
        .send()
        .expect(200)
        .text();
    assert_eq!(
        text,
        "Contextualization disabled by the RADL/TOSCA template.\n\n"
    );
}

#[test]
fn each_endpoint_negotiates_its_own_default_type() {
    let (_dir, server) = server();
    let inf = create(&server, USER, RADL_NO_CTX);
    let uri = infra_uri(&inf);
    let get = |path: &str, accept: &str| server.get(path).user(USER).accept(accept).send();
    // The list: text/uri-list by default; q-values are ignored, order decides.
    for accept in [
        "text/uri-list",
        "*/*",
        "text/*",
        "text/*;q=0.1, application/json",
    ] {
        let answer = get("/infrastructures", accept).expect(200);
        assert_eq!(
            answer.content_type(),
            "text/uri-list; charset=utf-8",
            "{accept}"
        );
        assert_eq!(answer.text(), uri, "{accept}");
    }
    for accept in [
        "application/*",
        "text/html, application/json",
        "application/json;q=0.1, text/*",
    ] {
        let answer = get("/infrastructures", accept).expect(200);
        assert_eq!(
            answer.json(),
            json!({"uri-list": [{"uri": uri}]}),
            "{accept}"
        );
    }
    // `state` is JSON; its pre-check accepts only application/json, */* and application/*.
    for accept in ["*/*", "application/*", "text/*"] {
        let answer = get(&format!("/infrastructures/{inf}/state"), accept);
        if accept == "text/*" {
            assert_eq!(
                answer.status, 415,
                "IM's pre-check on state knows no text/*"
            );
            continue;
        }
        assert_eq!(answer.expect(200).content_type(), "application/json");
    }
    // Endpoints that wrap HTTP errors answer 400 with the 415 inside the message.
    let vm_info = get(&format!("/infrastructures/{inf}/vms/0"), "text/html").expect(400);
    assert!(vm_info
        .text()
        .contains("Error Getting VM info: 415: Unsupported Accept Media Types: text/html"));
    let vm_list = get(&format!("/infrastructures/{inf}"), "image/png").expect(400);
    assert_eq!(
        vm_list.text(),
        "Error Getting Inf. info: 415: Unsupported Accept Media Types: image/png"
    );
    // The others let the 415 through.
    let vm_prop = get(&format!("/infrastructures/{inf}/vms/0/state"), "image/png").expect(415);
    assert_eq!(vm_prop.text(), "Unsupported Accept Media Types: image/png");
    let created = server
        .post("/infrastructures")
        .user(USER)
        .accept("application/*")
        .radl(RADL_NO_CTX)
        .send()
        .expect(200);
    assert!(created.json()["uri"].as_str().is_some());
}

#[test]
fn radl_bodies_are_read_by_their_content_type() {
    let (_dir, server) = server();
    for content_type in [
        "text/plain; charset=utf-8",
        "*/*",
        "text/*",
        "application/octet-stream, text/plain",
    ] {
        server
            .post("/infrastructures?dry_run=1")
            .user(USER)
            .header("Content-Type", content_type)
            .body(RADL_NO_CTX)
            .send()
            .expect(200);
    }
    server
        .post("/infrastructures?dry_run=1")
        .user(USER)
        .body(RADL_NO_CTX)
        .send()
        .expect(200);
    let not_radl_json = server
        .post("/infrastructures")
        .user(USER)
        .header("Content-Type", "application/json")
        .body("{\"a\": 1}")
        .send()
        .expect(400);
    assert!(not_radl_json
        .text()
        .starts_with("Error parsing request body: "));
    let radl_as_json = server
        .post("/infrastructures")
        .user(USER)
        .header("Content-Type", "application/json")
        .body(RADL_NO_CTX)
        .send()
        .expect(400);
    assert!(radl_as_json
        .text()
        .starts_with("Error parsing request body: "));
    let yaml = server
        .post("/infrastructures")
        .user(USER)
        .header("Content-Type", "application/x-yaml")
        .body("a: 1\n")
        .send()
        .expect(415);
    assert_eq!(yaml.text(), "Unsupported Media Type ['application/x-yaml']");
    let not_utf8 = server
        .post("/infrastructures")
        .user(USER)
        .radl("")
        .body(b"system \xff\xfe (cpu.count >= 1)\ndeploy x 1\n".to_vec())
        .send();
    assert!(
        matches!(not_utf8.status, 400),
        "{} {}",
        not_utf8.status,
        not_utf8.text()
    );
    assert_eq!(list(&server, USER), "");
}

#[test]
fn vm_lists_skip_removed_vms_and_removed_vms_are_deleted() {
    let (_dir, server) = server();
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
fn concurrent_requests_of_one_user_all_land() {
    let (_dir, server) = server();
    let created: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..6)
            .map(|_| scope.spawn(|| create(&server, USER, RADL_NO_CTX)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a creator"))
            .collect()
    });
    let mut expected: Vec<String> = created.iter().map(|inf| infra_uri(inf)).collect();
    expected.sort_unstable();
    let listed = list(&server, USER);
    let mut uris: Vec<&str> = listed.lines().collect();
    uris.sort_unstable();
    assert_eq!(uris, expected);
    let target = &created[0];
    let answers: Vec<u16> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let server = &server;
                scope.spawn(move || {
                    let op = if i % 2 == 0 { "stop" } else { "start" };
                    server
                        .put(&format!("/infrastructures/{target}/vms/{}/{op}", i % 2))
                        .user(USER)
                        .send()
                        .status
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("an operator"))
            .collect()
    });
    assert!(answers.iter().all(|s| *s == 200), "{answers:?}");
}

#[test]
fn vm_ids_are_read_as_python_reads_integers() {
    let (_dir, server) = server();
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
fn a_request_without_host_still_gets_uris() {
    let (_dir, server) = server();
    let raw = format!(
        "POST /infrastructures HTTP/1.0\r\nAuthorization: {}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{RADL_NO_CTX}",
        auth_for(USER),
        RADL_NO_CTX.len()
    );
    let answer = send_raw(server.port, raw.as_bytes()).expect(200);
    let uri = answer.text();
    assert!(uri.starts_with("http://"), "{uri}");
    assert!(uri.contains("/infrastructures/"), "{uri}");
    assert_eq!(list(&server, USER).lines().count(), 1);
}

#[test]
fn dry_run_refuses_exactly_what_create_refuses() {
    let (_dir, server) = server();
    let no_cloud = "type = InfrastructureManager; username = routes; password = pass-routes";
    let cases: Vec<(String, &str)> = vec![
        ("deploy ghost 1\n".into(), "u"),
        (format!("{RADL_NO_CTX}deploy node 1 elsewhere\n"), "u"),
        (RADL_NO_CTX.replace("'privada'", "'nowhere'"), "u"),
        (RADL_NO_CTX.replace("cpu.count>=1", "cpu.count>='one'"), "u"),
        (format!("{RADL_NO_CTX}system node2 (\nmemory.size >= 1g\n)\ndeploy node 1\nconfigure missing (\n@begin\n- a: [\n@end\n)\n"), "u"),
        ("network a ()\nnetwork a ()\n".into(), "u"),
        (RADL_NO_CTX.into(), no_cloud),
    ];
    for (radl, auth) in &cases {
        let auth = if *auth == "u" {
            auth_for(USER)
        } else {
            auth.to_string()
        };
        let created = server
            .post("/infrastructures")
            .auth(&auth)
            .radl(radl)
            .send();
        let estimated = server
            .post("/infrastructures?dry_run=1")
            .auth(&auth)
            .radl(radl)
            .send();
        assert_eq!(
            (created.status, created.text()),
            (estimated.status, estimated.text()),
            "create and dry_run disagree on {radl:?}"
        );
        assert!(
            matches!(created.status, 400),
            "{radl:?}: {} {}",
            created.status,
            created.text()
        );
    }
    assert_eq!(list(&server, USER), "");
}
