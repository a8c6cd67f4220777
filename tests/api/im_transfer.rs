//! Export (`GET …/data`) and import (`PUT /infrastructures`) in IM's format, over
//! HTTP against in-process servers on temporary logs.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::harness::*;
use serde_json::Value;

const ALICE: &str = "id = im; type = InfrastructureManager; username = alice; password = alicepass\\nid = dummy; type = Dummy";
const BOB: &str = "id = im; type = InfrastructureManager; username = bob; password = bobpass\\nid = dummy; type = Dummy";

/// An answer as the tests of this module read it.
struct Response {
    status: u16,
    /// The head as received, lower-cased names.
    headers: String,
    body: String,
}

/// One request over a fresh connection, with the server's own address as `Host`.
fn http(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Response {
    let response = Request::new(port, method, path)
        .direct()
        .headers(headers)
        .body(body)
        .send();
    Response {
        status: response.status,
        headers: response
            .headers
            .iter()
            .map(|(name, value)| format!("{name}: {value}\r\n"))
            .collect(),
        body: response.text(),
    }
}

/// A server on a data directory, run on its own thread with its own actix system.
struct Server {
    port: u16,
    server: Option<TestServer>,
}

impl Server {
    fn start(data_dir: &Path) -> Server {
        let mut settings = settings(data_dir);
        settings.contextualization_delay = Duration::from_millis(200);
        let server = TestServer::start_with(settings);
        Server {
            port: server.port,
            server: Some(server),
        }
    }

    fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(server) = self.server.take() {
            server.stop();
        }
    }

    fn get(&self, path: &str, auth: &str) -> Response {
        http(
            self.port,
            "GET",
            path,
            &[("AUTHORIZATION", auth), ("Accept", "application/json")],
            "",
        )
    }

    fn create(&self, auth: &str) -> String {
        let answer = http(
            self.port,
            "POST",
            "/infrastructures",
            &[("AUTHORIZATION", auth), ("Content-Type", "text/plain")],
            RADL_IMAGES_NO_CTX,
        );
        assert_eq!(answer.status, 200, "{}", answer.body);
        let id = answer.body.rsplit('/').next().expect("an id").to_string();
        self.wait_configured(&id, auth);
        id
    }

    fn wait_configured(&self, id: &str, auth: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let state = self.get(&format!("/infrastructures/{id}/state"), auth);
            if state.body.contains("\"state\":\"configured\"") || Instant::now() > deadline {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn export(&self, id: &str, auth: &str, delete: bool) -> String {
        let query = if delete { "?delete=yes" } else { "" };
        let answer = self.get(&format!("/infrastructures/{id}/data{query}"), auth);
        assert_eq!(answer.status, 200, "{}", answer.body);
        let value: Value = serde_json::from_str(&answer.body).expect("JSON");
        value["data"]
            .as_str()
            .expect("data is a string")
            .to_string()
    }

    fn import(&self, data: &str, auth: &str) -> Response {
        http(
            self.port,
            "PUT",
            "/infrastructures",
            &[
                ("AUTHORIZATION", auth),
                ("Content-Type", "application/json"),
            ],
            data,
        )
    }

    /// What a client sees of an infrastructure: state, VM list, each VM's info,
    /// contmsg and RADL, with this server's base URL taken out.
    fn observe(&self, id: &str, auth: &str) -> Vec<(String, u16, String)> {
        let mut paths = vec![
            format!("/infrastructures/{id}/state"),
            format!("/infrastructures/{id}"),
            format!("/infrastructures/{id}/contmsg"),
            format!("/infrastructures/{id}/radl"),
        ];
        for vm in 0..3 {
            paths.push(format!("/infrastructures/{id}/vms/{vm}"));
        }
        let base = format!("http://127.0.0.1:{}", self.port);
        paths
            .into_iter()
            .map(|path| {
                let answer = self.get(&path, auth);
                (path, answer.status, answer.body.replace(&base, "<BASE>"))
            })
            .collect()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown();
    }
}

#[test]
fn an_export_imports_into_another_instance_and_answers_the_same_there_and_after_a_restart() {
    let (dir_a, dir_b) = (
        tempfile::tempdir().expect("a dir"),
        tempfile::tempdir().expect("a dir"),
    );
    let a = Server::start(dir_a.path());
    let id = a.create(ALICE);
    let snapshot = http(
        a.port,
        "PUT",
        &format!("/infrastructures/{id}/vms/0/disks/0/snapshot?image_name=kept&auto_delete=yes"),
        &[("AUTHORIZATION", ALICE)],
        "",
    );
    assert_eq!(snapshot.status, 200, "{}", snapshot.body);
    let seen_on_a = a.observe(&id, ALICE);
    let data = a.export(&id, ALICE, false);
    let exported: Value = serde_json::from_str(&data).expect("the data is JSON");
    assert_eq!(exported["id"], id.as_str());
    assert_eq!(exported["snapshots"].as_array().map(Vec::len), Some(1));

    let b = Server::start(dir_b.path());
    let imported = b.import(&data, BOB);
    assert_eq!(imported.status, 200, "{}", imported.body);
    assert_eq!(
        imported.body,
        format!("http://127.0.0.1:{}/infrastructures/{id}", b.port)
    );
    assert!(!imported.headers.to_ascii_lowercase().contains("infid"));
    assert_eq!(b.observe(&id, BOB), seen_on_a, "B answers as A did");
    // The importer is the only owner.
    assert_eq!(
        b.get(&format!("/infrastructures/{id}/state"), ALICE).status,
        403
    );
    // Exporting again from B gives the same document, but for the owner and times.
    let again: Value = serde_json::from_str(&b.export(&id, BOB, false)).expect("JSON");
    for key in [
        "radl",
        "vm_list",
        "snapshots",
        "configured",
        "private_networks",
    ] {
        let strip = |v: &Value| {
            let mut v = v.clone();
            if let Some(vms) = v.as_array_mut().filter(|_| key == "vm_list") {
                for vm in vms {
                    vm["last_update"] = Value::Null;
                }
            }
            v
        };
        assert_eq!(strip(&again[key]), strip(&exported[key]), "{key}");
    }

    // An id in use cannot be imported again.
    let twice = b.import(&data, BOB);
    assert_eq!(twice.status, 400);
    assert_eq!(
        twice.body,
        "Error Importing Inf.: Trying to add an existing infrastructure ID."
    );

    b.stop();
    let b = Server::start(dir_b.path());
    assert_eq!(
        b.observe(&id, BOB),
        seen_on_a,
        "B answers the same after a restart"
    );
    // The imported infrastructure is fully usable: it can be destroyed.
    let destroyed = http(
        b.port,
        "DELETE",
        &format!("/infrastructures/{id}"),
        &[("AUTHORIZATION", BOB)],
        "",
    );
    assert_eq!(destroyed.status, 200, "{}", destroyed.body);
    assert_eq!(
        b.get(&format!("/infrastructures/{id}/state"), BOB).status,
        404
    );
    a.stop();
    b.stop();
}

#[test]
fn an_export_with_delete_evicts_and_the_same_instance_can_import_it_back() {
    let dir = tempfile::tempdir().expect("a dir");
    let server = Server::start(dir.path());
    let id = server.create(ALICE);
    let before = server.observe(&id, ALICE);
    let data = server.export(&id, ALICE, true);
    assert_eq!(
        server
            .get(&format!("/infrastructures/{id}/state"), ALICE)
            .status,
        404
    );
    let imported = server.import(&data, ALICE);
    assert_eq!(imported.status, 200, "{}", imported.body);
    assert_eq!(server.observe(&id, ALICE), before);
}

#[test]
fn exports_hold_no_owner_secret() {
    let dir = tempfile::tempdir().expect("a dir");
    let server = Server::start(dir.path());
    let id = server.create(ALICE);
    let answer = server.get(&format!("/infrastructures/{id}/data"), ALICE);
    assert!(!answer.body.contains("alicepass"), "{}", answer.body);
    let data: Value = serde_json::from_str(answer.body.as_str()).expect("JSON");
    let inner: Value =
        serde_json::from_str(data["data"].as_str().expect("a string")).expect("JSON");
    assert_eq!(inner["auth"][0]["username"], "alice");
    assert_eq!(inner["auth"][0]["password"], "");
    // The VMs' own credentials are part of the infrastructure.
    assert!(inner["radl"]
        .as_str()
        .is_some_and(|r| r.contains("vmsecret")));
}

#[test]
fn bad_imports_are_refused_and_leave_nothing_behind() {
    let dir = tempfile::tempdir().expect("a dir");
    let server = Server::start(dir.path());
    let id = server.create(ALICE);
    let data = server.export(&id, ALICE, true);
    let refused = |content_type: &str, body: &str| {
        http(
            server.port,
            "PUT",
            "/infrastructures",
            &[("AUTHORIZATION", ALICE), ("Content-Type", content_type)],
            body,
        )
    };
    let wrong_type = refused("text/csv", &data);
    assert_eq!(
        (wrong_type.status, wrong_type.body.as_str()),
        (
            400,
            "Error Importing Inf.: 415: Unsupported Media Type ['text/csv']"
        )
    );
    let malformed = refused("application/json", "{\"vm_list\": [");
    assert_eq!(malformed.status, 400);
    assert!(
        malformed.body.starts_with(
            "Error Importing Inf.: Error importing the infrastructure, incorrect data: "
        ),
        "{}",
        malformed.body
    );
    let missing = refused("application/json", &data.replace("\"auth\"", "\"nope\""));
    assert_eq!(
        missing.body,
        "Error Importing Inf.: Error importing the infrastructure, incorrect data: 'auth'"
    );
    let bad_radl = refused(
        "application/json",
        &data.replace("deploy wn 2", "deploy wn"),
    );
    assert_eq!(bad_radl.status, 400, "{}", bad_radl.body);
    let no_auth = http(server.port, "PUT", "/infrastructures", &[], &data);
    assert_eq!(no_auth.status, 401);
    // None of them imported anything: the evicted id is still gone, and importable.
    assert_eq!(
        server
            .get(&format!("/infrastructures/{id}/state"), ALICE)
            .status,
        404
    );
    let list = server.get("/infrastructures", ALICE);
    assert_eq!(list.body, "{\"uri-list\":[]}");
    assert_eq!(server.import(&data, ALICE).status, 200);
}

#[test]
fn an_imported_documents_owner_password_is_neither_kept_nor_exported() {
    let dir = tempfile::tempdir().expect("a dir");
    let server = Server::start(dir.path());
    let id = server.create(ALICE);
    let data = server.export(&id, ALICE, true);
    // As IM writes it: the previous owner's password in `auth`.
    let mut document: Value = serde_json::from_str(&data).expect("JSON");
    document["auth"] = serde_json::json!([{"id": "im", "type": "InfrastructureManager",
        "username": "carol", "password": "carols-secret", "admin": false}]);
    // Only an owner at the id's last event may import it again here.
    let imported = server.import(&document.to_string(), ALICE);
    assert_eq!(imported.status, 200, "{}", imported.body);
    let again = server.export(&id, ALICE, false);
    assert!(!again.contains("carols-secret"), "{again}");
    assert!(
        !again.contains("carol"),
        "the document's owners are not taken: {again}"
    );
    let owners = server.get(&format!("/infrastructures/{id}/authorization"), ALICE);
    assert_eq!(owners.body, "{\"authorization\":[\"alice\"]}");
}

/// IM's export of an infrastructure that was itself imported ends with
/// `"cloud_connector": null`; every other key is as in the first export, in the
/// same order, with the same values but for the owners and the VMs' `last_update`.
#[test]
fn a_reexport_has_ims_keys_and_a_null_cloud_connector_last() {
    let (dir_a, dir_b, dir_c) = (
        tempfile::tempdir().expect("a dir"),
        tempfile::tempdir().expect("a dir"),
        tempfile::tempdir().expect("a dir"),
    );
    let a = Server::start(dir_a.path());
    let id = a.create(ALICE);
    let first = a.export(&id, ALICE, false);
    assert!(!first.contains("cloud_connector"), "{first}");
    let b = Server::start(dir_b.path());
    assert_eq!(b.import(&first, BOB).status, 200);
    let again = b.export(&id, BOB, false);
    assert!(again.ends_with(", \"cloud_connector\": null}"), "{again}");

    let object = |text: &str| -> serde_json::Map<String, Value> {
        serde_json::from_str(text).expect("a JSON object")
    };
    let (first, second) = (object(&first), object(&again));
    let mut expected_keys: Vec<&String> = first.keys().collect();
    let cloud_connector = "cloud_connector".to_string();
    expected_keys.push(&cloud_connector);
    assert_eq!(second.keys().collect::<Vec<_>>(), expected_keys);
    for (key, value) in &first {
        match key.as_str() {
            "auth" => assert_eq!(second[key][0]["username"], "bob"),
            "vm_list" => {
                let strip = |vms: &Value| {
                    let mut vms = vms.clone();
                    for vm in vms.as_array_mut().expect("a list") {
                        vm["last_update"] = Value::Null;
                    }
                    vms
                };
                assert_eq!(strip(&second[key]), strip(value));
            }
            _ => assert_eq!(&second[key], value, "{key}"),
        }
    }
    // Such a document imports again, and keeps one `cloud_connector`.
    let c = Server::start(dir_c.path());
    assert_eq!(c.import(&again, BOB).status, 200);
    let third = c.export(&id, BOB, false);
    assert_eq!(third.matches("cloud_connector").count(), 1, "{third}");
    a.stop();
    b.stop();
    c.stop();
}
