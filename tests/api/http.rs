//! IM's HTTP conventions, black-box: version, content negotiation, body content
//! types, error bodies, FastAPI routing answers, boolean flags and base URLs
//! (`docs/api.md` §1).

use crate::harness::*;
use serde_json::json;

const USER: &str = "routes";

#[test]
fn version_needs_no_credentials_and_negotiates() {
    let (_dir, server) = temp_server();
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
fn each_endpoint_negotiates_its_own_default_type() {
    let (_dir, server) = temp_server();
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
    let (_dir, server) = temp_server();
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
fn error_bodies_follow_the_accept_header() {
    let (_dir, server) = temp_server();
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
    let (_dir, server) = temp_server();
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
fn boolean_flags_follow_pydantic_and_bad_ones_are_422() {
    let (_dir, server) = temp_server();
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
fn uris_use_the_host_header_and_a_local_proxys_scheme() {
    let (_dir, server) = temp_server();
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
fn a_request_without_host_still_gets_uris() {
    let (_dir, server) = temp_server();
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
