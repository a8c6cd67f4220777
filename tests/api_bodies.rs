//! Request bodies that must never poison an infrastructure: bytes that are not UTF-8
//! are a 400 in every body format, and a document whose RADL text would not read back
//! is refused before anything is stored (issue 10, section 4).

mod common;

use common::*;

const USER: &str = "bodies";

/// RADL-JSON with the byte 0xaa inside a property name, as in the report.
fn json_with_bad_key() -> Vec<u8> {
    let mut body = br#"[{"class":"system","id":"node","cp"#.to_vec();
    body.push(0xaa);
    body.extend_from_slice(
        br#".arch":"x86_64"},{"class":"deploy","system":"node","vm_number":1}]"#,
    );
    body
}

fn vm_info(server: &impl Api, inf: &str) -> Response {
    server
        .get(&format!("/infrastructures/{inf}/vms/0"))
        .user(USER)
        .send()
}

/// Add, reconfigure, alter and VM info all still work on `inf`.
fn still_usable(server: &impl Api, inf: &str) {
    vm_info(server, inf).expect(200);
    server
        .post(&format!("/infrastructures/{inf}"))
        .user(USER)
        .radl("network privada\nsystem node\ndeploy node 1")
        .send()
        .expect(200);
    server
        .put(&format!("/infrastructures/{inf}/reconfigure"))
        .user(USER)
        .radl("")
        .send()
        .expect(200);
    server
        .put(&format!("/infrastructures/{inf}/vms/0"))
        .user(USER)
        .radl("system node (cpu.count >= 2 and memory.size >= 1g)")
        .send()
        .expect(200);
    server
        .get(&format!("/infrastructures/{inf}/data"))
        .user(USER)
        .accept("application/json")
        .send()
        .expect(200);
}

#[test]
fn invalid_utf8_in_any_body_format_is_a_400_in_ims_shape() {
    let (_dir, server) = temp_server();
    let refused = server
        .post("/infrastructures")
        .user(USER)
        .header("Content-Type", "application/json")
        .accept("application/json")
        .body(json_with_bad_key())
        .send()
        .expect(400);
    assert_eq!(
        refused.json(),
        serde_json::json!({
            "message": "Error parsing request body: 'utf-8' codec can't decode byte 0xaa in position 34: invalid start byte",
            "code": 400
        })
    );
    assert_eq!(list(&server, USER), "", "nothing was created");

    let inf = create(&server, USER, RADL_NO_CTX);
    let bad_tosca =
        b"tosca_definitions_version: tosca_simple_yaml_1_0\ndescription: \xe2\x82\n".to_vec();
    let truncated = b"system node (cpu.count >= 1)\n# \xe2\x82".to_vec();
    for (method, path, content_type, body, message) in [
        (
            "POST",
            format!("/infrastructures/{inf}"),
            "application/json",
            json_with_bad_key(),
            "Error parsing request body: 'utf-8' codec can't decode byte 0xaa in position 34: invalid start byte",
        ),
        (
            "PUT",
            format!("/infrastructures/{inf}/reconfigure"),
            "application/json",
            json_with_bad_key(),
            "Error parsing request body: 'utf-8' codec can't decode byte 0xaa in position 34: invalid start byte",
        ),
        (
            "PUT",
            format!("/infrastructures/{inf}/vms/0"),
            "application/json",
            json_with_bad_key(),
            "Error parsing request body: 'utf-8' codec can't decode byte 0xaa in position 34: invalid start byte",
        ),
        (
            "POST",
            format!("/infrastructures/{inf}"),
            "text/yaml",
            bad_tosca,
            "Error parsing request body: 'utf-8' codec can't decode bytes in position 62-63: invalid continuation byte",
        ),
        (
            "POST",
            format!("/infrastructures/{inf}"),
            "text/plain",
            truncated,
            "Error parsing request body: 'utf-8' codec can't decode bytes in position 31-32: unexpected end of data",
        ),
    ] {
        let answer = server
            .request(method, &path)
            .user(USER)
            .header("Content-Type", content_type)
            .body(body)
            .send()
            .expect(400);
        assert_eq!(answer.text(), message, "{method} {path} ({content_type})");
    }
    still_usable(&server, &inf);
}

#[test]
fn documents_radl_text_cannot_hold_are_refused_before_they_are_stored() {
    let (dir, server) = temp_server();
    let inf = create(&server, USER, RADL_NO_CTX);
    for body in [
        r#"[{"class":"system","id":"node","cp u.arch":"x86_64"},{"class":"deploy","system":"node","vm_number":1}]"#,
        r#"[{"class":"system","id":"other node","cpu.count":1},{"class":"deploy","system":"other node","vm_number":1}]"#,
        r#"[{"class":"system","id":"node","x":"a\\'b"},{"class":"deploy","system":"node","vm_number":1}]"#,
        r#"[{"class":"system","id":"node","cpu.count":-1},{"class":"deploy","system":"node","vm_number":1}]"#,
    ] {
        let answer = server
            .post(&format!("/infrastructures/{inf}"))
            .user(USER)
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .expect(400);
        assert!(
            answer
                .text()
                .starts_with("Error parsing request body: the document cannot be stored: "),
            "{body}: {}",
            answer.text()
        );
        let created = server
            .post("/infrastructures")
            .user(USER)
            .header("Content-Type", "application/json")
            .body(body)
            .send();
        assert_eq!(created.status, 400, "{body}");
    }
    still_usable(&server, &inf);
    assert_eq!(list(&server, USER).lines().count(), 1);

    // A quote inside a value (RADL text writes it `\'`) is stored so that it reads
    // back: the infrastructure keeps working, also after a restart.
    let quoted = create(
        &server,
        USER,
        "network privada ()\nsystem node (\nnet_interface.0.connection = 'privada' and\ndisk.0.os.name = 'linux' and\ndisk.0.os.credentials.password = 'it\\'s'\n)\ndeploy node 1\ncontextualize ()\n",
    );
    let radl = server
        .get(&format!("/infrastructures/{quoted}/radl"))
        .user(USER)
        .send()
        .expect(200)
        .text();
    assert!(
        radl.contains(r"disk.0.os.credentials.password = 'it\'s'"),
        "{radl}"
    );
    still_usable(&server, &quoted);
    server.stop();
    let server = TestServer::start(dir.path());
    still_usable(&server, &quoted);
    still_usable(&server, &inf);
}
