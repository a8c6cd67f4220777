//! Credentials and ownership (`docs/api.md` §1.1): 401, 400, 403 and 404 exactly
//! where IM answers them, malformed credentials never a 500, and tenants that never
//! see a byte of each other's infrastructures.

use crate::harness::*;
use serde_json::json;

/// Every authenticated route of part one, for infrastructure `inf`: method, path,
/// and the prefix of its messages.
fn routes(inf: &str) -> Vec<(&'static str, String, &'static str)> {
    vec![
        (
            "GET",
            format!("/infrastructures/{inf}"),
            "Error Getting Inf. info: ",
        ),
        (
            "GET",
            format!("/infrastructures/{inf}/state"),
            "Error Getting Inf. prop: ",
        ),
        (
            "GET",
            format!("/infrastructures/{inf}/radl"),
            "Error Getting Inf. prop: ",
        ),
        (
            "GET",
            format!("/infrastructures/{inf}/contmsg"),
            "Error Getting Inf. prop: ",
        ),
        (
            "GET",
            format!("/infrastructures/{inf}/contmsg?headeronly=1"),
            "Error Getting Inf. prop: ",
        ),
        (
            "GET",
            format!("/infrastructures/{inf}/vms/0"),
            "Error Getting VM. info: ",
        ),
        (
            "GET",
            format!("/infrastructures/{inf}/vms/0/state"),
            "Error Getting VM. property: ",
        ),
        (
            "GET",
            format!("/infrastructures/{inf}/vms/0/net_interface.0.ip"),
            "Error Getting VM. property: ",
        ),
        (
            "GET",
            format!("/infrastructures/{inf}/vms/0/contmsg"),
            "Error Getting VM. property: ",
        ),
        (
            "PUT",
            format!("/infrastructures/{inf}/stop"),
            "Error in stop operation: ",
        ),
        (
            "PUT",
            format!("/infrastructures/{inf}/start"),
            "Error in start operation: ",
        ),
        (
            "PUT",
            format!("/infrastructures/{inf}/vms/0/stop"),
            "Error in stop op in VM: ",
        ),
        (
            "PUT",
            format!("/infrastructures/{inf}/vms/0/start"),
            "Error in start op in VM: ",
        ),
        (
            "PUT",
            format!("/infrastructures/{inf}/vms/0/reboot"),
            "Error in reboot op in VM: ",
        ),
        (
            "DELETE",
            format!("/infrastructures/{inf}"),
            "Error Destroying Inf: ",
        ),
        (
            "DELETE",
            format!("/infrastructures/{inf}?force=1&async=1"),
            "Error Destroying Inf: ",
        ),
    ]
}

#[test]
fn a_missing_or_empty_header_is_401_everywhere_but_version() {
    let (_dir, server) = temp_server();
    let inf = create(&server, "owner", RADL_NO_CTX);
    let mut all = routes(&inf);
    all.push(("GET", "/infrastructures".into(), ""));
    all.push(("POST", "/infrastructures".into(), ""));
    all.push(("POST", "/infrastructures?dry_run=1".into(), ""));
    for (method, path, _) in &all {
        for header in [None, Some("")] {
            let mut request = server.request(method, path);
            if let Some(value) = header {
                request = request.auth(value);
            }
            let answer = request.send();
            assert_eq!(answer.status, 401, "{method} {path} with {header:?}");
            assert_eq!(answer.text(), "No authentication data provided");
        }
    }
    let json = server
        .get("/infrastructures")
        .accept("application/json")
        .send()
        .expect(401);
    assert_eq!(
        json.json(),
        json!({"message": "No authentication data provided", "code": 401})
    );
    server.get("/version").send().expect(200);
    assert_eq!(infra_state(&server, "owner", &inf), "configured");
}

#[test]
fn the_body_is_checked_before_the_header_and_the_header_before_the_flags() {
    let (_dir, server) = temp_server();
    let bad_body = server
        .post("/infrastructures")
        .radl("system ( broken")
        .send()
        .expect(400);
    assert!(bad_body.text().starts_with("Error parsing request body: "));
    server
        .post("/infrastructures?async=foo")
        .radl(RADL_NO_CTX)
        .send()
        .expect(401);
    server
        .post("/infrastructures?async=foo")
        .user("u")
        .radl(RADL_NO_CTX)
        .send()
        .expect(422);
    // Without a body the header comes first, then the flags.
    server
        .delete("/infrastructures/x?force=foo")
        .send()
        .expect(401);
    server
        .delete("/infrastructures/x?force=foo")
        .user("u")
        .send()
        .expect(422);
}

#[test]
fn no_im_line_is_401_on_list_and_create_and_400_elsewhere() {
    let (_dir, server) = temp_server();
    let inf = create(&server, "owner", RADL_NO_CTX);
    let message = "No credentials provided for the InfrastructureManager.";
    for header in [
        "id = dummy; type = Dummy",
        "Basic dXNlcjpwYXNz",
        "Bearer abc.def.ghi",
        "just some words",
    ] {
        let listed = server.get("/infrastructures").auth(header).send();
        assert_eq!(listed.status, 401, "{header}");
        assert_eq!(listed.text(), format!("Error Getting Inf. List: {message}"));
        let created = server
            .post("/infrastructures")
            .auth(header)
            .radl(RADL_NO_CTX)
            .send();
        assert_eq!(created.status, 401, "{header}");
        assert_eq!(created.text(), format!("Error Creating Inf.: {message}"));
        for (method, path, prefix) in routes(&inf) {
            let answer = server.request(method, &path).auth(header).send();
            assert_eq!(answer.status, 400, "{method} {path} with {header}");
            assert_eq!(answer.text(), format!("{prefix}{message}"));
        }
    }
    let no_username = server
        .get("/infrastructures")
        .auth("type = InfrastructureManager; password = p")
        .send()
        .expect(401);
    assert_eq!(
        no_username.text(),
        "Error Getting Inf. List: No username nor token for the InfrastructureManager."
    );
    let reserved = server
        .get("/infrastructures")
        .auth("type = InfrastructureManager; username = __OPENID__me; password = p")
        .send()
        .expect(401);
    assert_eq!(
        reserved.text(),
        "Error Getting Inf. List: Invalid username used for the InfrastructureManager."
    );
    let token = server
        .get("/infrastructures")
        .auth("type = InfrastructureManager; token = not-a-jwt")
        .send()
        .expect(400);
    assert!(
        token
            .text()
            .starts_with("Error Getting Inf. List: Error trying to decode OIDC auth token"),
        "{}",
        token.text()
    );
    assert_eq!(infra_state(&server, "owner", &inf), "configured");
}

#[test]
fn malformed_credentials_are_401_never_500() {
    let (_dir, server) = temp_server();
    let inf = create(&server, "owner", RADL_NO_CTX);
    let bad_id = server
        .get("/infrastructures")
        .auth("id = 1bad; type = InfrastructureManager; username = u; password = p")
        .send()
        .expect(401);
    assert_eq!(bad_id.text(), "Incorrect value in auth item id: 1bad");
    let headers = [
        "id = a b; type = InfrastructureManager; username = u",
        "id = ; type = InfrastructureManager; username = u",
        "[1, 2, 3]",
        "{\"type\": \"InfrastructureManager\", \"username\": \"u\"}",
        "[{\"type\": \"InfrastructureManager\"}]",
        "[{\"type\": \"InfrastructureManager\", \"username\": 7, \"password\": null}]",
        "[{\"id\": \"1x\", \"type\": \"InfrastructureManager\", \"username\": \"u\"}]",
        "null",
        "\"\"",
        "type = InfrastructureManager; username = 'unterminated",
        "type = InfrastructureManager; username = \"a;b\"; password",
        "=;=;=\\n;;;\\n\\\\n",
        "type = InfrastructureManager; token = a.b.c",
        "type = InfrastructureManager; token = e30.e30.e30",
        "type = InfrastructureManager; token = eyJhbGciOiJub25lIn0.eyJleHAiOiJzb29uIn0.",
        "type = InfrastructureManager; username = u; password = file(/etc/passwd)",
    ];
    for header in headers {
        let mut paths = vec![
            ("GET", "/infrastructures".to_string()),
            ("POST", "/infrastructures?dry_run=1".to_string()),
        ];
        paths.extend(routes(&inf).into_iter().map(|(m, p, _)| (m, p)));
        for (method, path) in paths {
            let answer = server
                .request(method, &path)
                .auth(header)
                .radl(RADL_NO_CTX)
                .send();
            assert!(
                matches!(answer.status, 200 | 400 | 401 | 403),
                "{method} {path} with {header:?}: {} {}",
                answer.status,
                answer.text()
            );
            assert!(
                !answer.text().contains("root:"),
                "no server file is read into an answer"
            );
        }
    }
    // Bytes that are not UTF-8 at all.
    let mut raw = b"GET /infrastructures HTTP/1.1\r\nHost: x\r\nAuthorization: type = InfrastructureManager; username = \xff\xfe\r\nConnection: close\r\n\r\n".to_vec();
    let answer = send_raw(server.port, &raw);
    assert!(matches!(answer.status, 200 | 400 | 401), "{answer:?}");
    raw = b"GET /infrastructures/x HTTP/1.1\r\nHost: x\r\nAuthorization: \x80\r\nConnection: close\r\n\r\n".to_vec();
    let answer = send_raw(server.port, &raw);
    assert!(matches!(answer.status, 400 | 401 | 404), "{answer:?}");
    assert_eq!(infra_state(&server, "owner", &inf), "configured");
}

#[test]
fn the_json_form_and_quoted_values_name_the_same_user() {
    let (_dir, server) = temp_server();
    let line_form =
        "id = im; type = InfrastructureManager; username = quoted; password = 'a;b=c'\\nid = d; type = Dummy";
    let inf = {
        let created = server
            .post("/infrastructures")
            .auth(line_form)
            .radl(RADL_NO_CTX)
            .send()
            .expect(200);
        id_of(&created.text())
    };
    let json_form = json!([
        {"id": "im", "type": "InfrastructureManager", "username": "quoted", "password": "a;b=c"},
        {"id": "d", "type": "Dummy"}
    ])
    .to_string();
    let listed = server
        .get("/infrastructures")
        .auth(&json_form)
        .send()
        .expect(200);
    assert_eq!(
        listed.text(),
        format!("http://{HOST}/infrastructures/{inf}")
    );
    server
        .get(&format!("/infrastructures/{inf}/state"))
        .auth(&json_form)
        .send()
        .expect(200);
    // Whitespace is irrelevant; the unquoted prefix of the password is someone else.
    server
        .get(&format!("/infrastructures/{inf}/state"))
        .auth("type=InfrastructureManager;username=quoted;password=\"a;b=c\"")
        .send()
        .expect(200);
    let other = server
        .get(&format!("/infrastructures/{inf}/state"))
        .auth("type = InfrastructureManager; username = quoted; password = a")
        .send()
        .expect(403);
    assert_eq!(
        other.text(),
        "Error Getting Inf. prop: Access to this infrastructure not granted."
    );
}

#[test]
fn another_user_gets_403_on_every_route_and_sees_nothing() {
    let (_dir, server) = temp_server();
    let inf = create(&server, "alice", RADL_CTX);
    wait_for_state(
        &server,
        "alice",
        &inf,
        "configured",
        std::time::Duration::from_secs(10),
    );
    let secrets = [
        "system front",
        "10.0.0.1",
        "publica",
        "Select master VM",
        "alice",
    ];
    // Bob, and Alice's name with Bob's password: both strangers.
    let strangers = [
        auth_for("bob"),
        "type = InfrastructureManager; username = alice; password = guess".to_string(),
        "type = InfrastructureManager; username = alice".to_string(),
    ];
    for stranger in &strangers {
        for (method, path, prefix) in routes(&inf) {
            for accept in [None, Some("application/json"), Some("text/html")] {
                let mut request = server.request(method, &path).auth(stranger);
                if let Some(accept) = accept {
                    request = request.accept(accept);
                }
                let answer = request.send();
                if path.ends_with(&format!("{inf}/state")) && accept == Some("text/html") {
                    // IM refuses the Accept of `state` before any other check.
                    assert_eq!(answer.status, 415, "{method} {path}");
                    continue;
                }
                assert_eq!(answer.status, 403, "{method} {path} as {stranger}");
                let body = answer.text();
                assert!(
                    body.contains(&format!(
                        "{prefix}Access to this infrastructure not granted."
                    )),
                    "{method} {path}: {body}"
                );
                for secret in secrets {
                    assert!(!body.contains(secret), "{method} {path} leaks {secret}");
                }
            }
        }
        let listed = server
            .get("/infrastructures")
            .auth(stranger)
            .send()
            .expect(200);
        assert_eq!(listed.text(), "", "a stranger lists nothing");
        let filtered = server
            .get("/infrastructures?filter=front")
            .auth(stranger)
            .send()
            .expect(200);
        assert_eq!(filtered.text(), "");
    }
    // Nothing a stranger asked for happened.
    assert_eq!(
        state(&server, "alice", &inf),
        json!({"state": {"state": "configured", "vm_states": {"0": "configured", "1": "configured"}}})
    );
    assert_eq!(
        list(&server, "alice"),
        format!("http://{HOST}/infrastructures/{inf}")
    );
    // An unknown id is a 404 for everybody.
    let unknown = server
        .get("/infrastructures/3f1c2a4e-0000-11f1-8000-000000000000/state")
        .user("bob")
        .send()
        .expect(404);
    assert_eq!(
        unknown.text(),
        "Error Getting Inf. prop: Invalid infrastructure ID or access not granted."
    );
}

#[test]
fn two_im_lines_see_the_union_and_both_own_what_they_create() {
    let (_dir, server) = temp_server();
    let a = create(&server, "ann", RADL_NO_CTX);
    let b = create(&server, "ben", RADL_NO_CTX);
    let both = "type = InfrastructureManager; username = ann; password = pass-ann\\ntype = InfrastructureManager; username = ben; password = pass-ben\\nid = dummy; type = Dummy";
    let listed = server.get("/infrastructures").auth(both).send().expect(200);
    let mut uris: Vec<String> = listed.text().lines().map(str::to_string).collect();
    uris.sort_unstable();
    let mut expected = vec![
        format!("http://{HOST}/infrastructures/{a}"),
        format!("http://{HOST}/infrastructures/{b}"),
    ];
    expected.sort_unstable();
    assert_eq!(uris, expected);
    let shared = server
        .post("/infrastructures")
        .auth(both)
        .radl(RADL_NO_CTX)
        .send()
        .expect(200);
    let shared = id_of(&shared.text());
    for user in ["ann", "ben"] {
        assert_eq!(infra_state(&server, user, &shared), "configured", "{user}");
    }
    server
        .get(&format!("/infrastructures/{shared}"))
        .user("carl")
        .send()
        .expect(403);
}

#[test]
fn passwords_never_reach_the_data_directory() {
    let dir = tempfile::tempdir().expect("temp dir");
    let password = "Zq9-unique-Secret-4711";
    {
        let server = TestServer::start(dir.path());
        server
            .post("/infrastructures")
            .auth(&format!(
                "type = InfrastructureManager; username = keeper; password = {password}\\nid = d; type = Dummy; password = cloud-{password}"
            ))
            .radl(RADL_NO_CTX)
            .send()
            .expect(200);
        server.stop();
    }
    let mut files = vec![dir.path().to_path_buf()];
    let mut scanned = 0;
    let mut username_seen = false;
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(
                std::fs::read_dir(&path)
                    .expect("read dir")
                    .map(|e| e.expect("entry").path()),
            );
        } else {
            let bytes = std::fs::read(&path).expect("read file");
            scanned += bytes.len();
            username_seen |= bytes.windows(6).any(|w| w == b"keeper");
            assert!(
                !bytes
                    .windows(password.len())
                    .any(|w| w == password.as_bytes()),
                "{} holds the password",
                path.display()
            );
        }
    }
    assert!(scanned > 0, "the log was written");
    // The scan sees what the log stores in clear: the owner's name is there.
    assert!(
        username_seen,
        "the username is stored readably, so would a password be"
    );
}

#[test]
fn generated_headers_never_make_a_500() {
    let (_dir, server) = temp_server();
    let inf = create(&server, "owner", RADL_NO_CTX);
    let pieces = [
        "id",
        "type",
        "username",
        "password",
        "token",
        "host",
        "InfrastructureManager",
        "Dummy",
        "=",
        "=",
        ";",
        ";",
        "'",
        "\"",
        "\\n",
        "\\\\n",
        " ",
        "[",
        "]",
        "{",
        "}",
        ":",
        ",",
        "#",
        "u",
        "1",
        "__OPENID__",
        "file(",
        ")",
        "null",
        "\\",
    ];
    // A small deterministic generator (xorshift): the same headers on every run.
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..300 {
        let length = 1 + next() % 14;
        let header: String = (0..length)
            .map(|_| pieces[(next() % pieces.len() as u64) as usize])
            .collect();
        let path = match next() % 3 {
            0 => "/infrastructures".to_string(),
            1 => format!("/infrastructures/{inf}/state"),
            _ => format!("/infrastructures/{inf}/vms/0"),
        };
        let answer = server.get(&path).auth(&header).send();
        assert!(
            matches!(answer.status, 200 | 400 | 401 | 403),
            "GET {path} with {header:?}: {} {}",
            answer.status,
            answer.text()
        );
    }
    assert_eq!(infra_state(&server, "owner", &inf), "configured");
}
