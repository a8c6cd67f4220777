//! Request bodies that must never poison an infrastructure: bytes that are not UTF-8
//! are a 400 in every body format, and a document whose RADL text would not read back
//! is refused before anything is stored (issue 10, section 4).

use crate::harness::*;

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

/// A request with `username` as raw bytes in its Authorization header.
fn raw_request(server: &TestServer, head: &str, username: &[u8], body: &str) -> Response {
    let mut bytes = format!("{head} HTTP/1.1\r\nHost: {HOST}\r\nAuthorization: id = im; type = InfrastructureManager; username = ").into_bytes();
    bytes.extend_from_slice(username);
    bytes.extend_from_slice(
        format!(
            "; password = same\\nid = dummy; type = Dummy\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    );
    send_raw(server.port, &bytes)
}

#[test]
fn credentials_that_are_not_utf8_are_refused_not_merged_into_one_identity() {
    let (_dir, server) = temp_server();
    let created = raw_request(&server, "POST /infrastructures", b"user\xaa", RADL_NO_CTX);
    assert_eq!(created.status, 401, "{}", created.text());
    assert_eq!(
        created.text(),
        "Invalid AUTHORIZATION header: it is not UTF-8 text"
    );
    // Whatever was created, the other byte must not see it.
    let listed = raw_request(&server, "GET /infrastructures", b"user\xab", "");
    assert_eq!(listed.status, 401, "{}", listed.text());
}

/// A log written by an older version can hold a RADL that does not read back (its
/// printer wrote a quote bare). Requests that need it answer a clear 409, never a
/// 500; what does not need it keeps working.
#[test]
fn a_stored_radl_that_does_not_parse_is_a_clear_409() {
    use infralog_events::codec::DomainEvent;
    use infralog_events::domain::infrastructure::InfrastructureEvent;
    use infralog_events::domain::InfId;
    use infralog_events::{
        AppendRequest, EventStore, ExpectedVersion, Metadata, SledStore, SledStoreConfig, StreamId,
    };

    let dir = tempfile::tempdir().expect("temp dir");
    let server = TestServer::start(dir.path());
    let inf = create(&server, USER, RADL_NO_CTX);
    server.stop();
    // As the printer wrote a quote before it escaped it.
    let poisoned = RADL_NO_CTX.replace(
        "disk.0.os.name='linux'",
        "disk.0.os.name='linux' and\ndisk.0.os.credentials.password = 'it's'",
    );
    {
        let store = SledStore::open(SledStoreConfig::new(dir.path())).expect("the log opens");
        let id: InfId = inf.parse().expect("an id");
        let event = InfrastructureEvent::RadlUpdated { radl: poisoned };
        store
            .append(AppendRequest {
                stream: StreamId::new(id.stream_name()).expect("a stream"),
                expected: ExpectedVersion::Any,
                events: vec![event.to_new_event(Metadata::default())],
            })
            .wait()
            .expect("appended");
        store.close();
    }
    let server = TestServer::start(dir.path());
    for answer in [
        server
            .post(&format!("/infrastructures/{inf}"))
            .user(USER)
            .accept("application/json")
            .radl("network privada\nsystem node\ndeploy node 1")
            .send(),
        server
            .put(&format!("/infrastructures/{inf}/reconfigure"))
            .user(USER)
            .accept("application/json")
            .radl("")
            .send(),
        server
            .delete(&format!("/infrastructures/{inf}/vms/0"))
            .user(USER)
            .accept("application/json")
            .send(),
    ] {
        let body = answer.json();
        assert_eq!(answer.status, 409, "{body}");
        let message = body["message"].as_str().expect("a message");
        assert!(
            message.contains("the stored RADL of this infrastructure cannot be read back"),
            "{message}"
        );
        assert!(
            !message.contains("it's"),
            "no stored text in the answer: {message}"
        );
    }
    vm_info(&server, &inf).expect(200);
    for property in ["radl", "data"] {
        server
            .get(&format!("/infrastructures/{inf}/{property}"))
            .user(USER)
            .accept("application/json")
            .send()
            .expect(200);
    }
    server
        .delete(&format!("/infrastructures/{inf}"))
        .user(USER)
        .send()
        .expect(200);
}
