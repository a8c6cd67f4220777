//! Every infrastructure route of the IM API's first part, black-box over HTTP: its
//! answers in each representation, its flags and its error classes (`docs/api.md`
//! §2.3–2.12).

use std::time::Duration;

use crate::harness::*;
use serde_json::json;

const USER: &str = "routes";

#[test]
fn create_answers_the_uri_and_infid_and_the_list_shows_it() {
    let (_dir, server) = temp_server();
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
    // IM's ids are UUID version 1; ours are random (docs/api.md 1.8), same form.
    assert_eq!(uuid.get_version_num(), 4, "random ids");
    assert_eq!(uuid.hyphenated().to_string(), inf);

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
    let (_dir, server) = temp_server();
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
    let (_dir, server) = temp_server();
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
    let (_dir, server) = temp_server();
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
fn dry_run_refuses_exactly_what_create_refuses() {
    let (_dir, server) = temp_server();
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

#[test]
fn async_create_answers_at_once_and_finishes_in_the_background() {
    let (_dir, server) = temp_server();
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
    let (_dir, server) = temp_server();
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
    let (_dir, server) = temp_server();
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
fn destroy_then_everything_is_gone() {
    let (_dir, server) = temp_server();
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
fn contextualization_runs_then_configures_and_contextualize_empty_disables_it() {
    let (_dir, server) = temp_server();
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
fn concurrent_requests_of_one_user_all_land() {
    let (_dir, server) = temp_server();
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
