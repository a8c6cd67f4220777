//! Full-history transfer between two servers started in this process: export an
//! infrastructure's history from A, import it into B, and B answers as A does.

use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::Value;

use crate::harness::*;

const ALICE: &str = "id = im; type = InfrastructureManager; username = alice; password = secret-a\\nid = dummy; type = Dummy";
const BOB: &str = "id = im; type = InfrastructureManager; username = bob; password = secret-b\\nid = dummy; type = Dummy";

/// A server over its own temporary directory, on a free port.
struct Server {
    _dir: tempfile::TempDir,
    base: String,
    server: TestServer,
}

impl Server {
    fn start() -> Server {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let mut settings = settings(dir.path());
        settings.workers = 1;
        settings.contextualization_delay = Duration::from_millis(20);
        let server = TestServer::start_with(settings);
        Server {
            _dir: dir,
            base: server.direct_base(),
            server,
        }
    }

    fn stop(self) {
        self.server.stop();
    }
}

struct Answer {
    status: u16,
    response: Response,
    body: Vec<u8>,
}

impl Answer {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn header(&self, name: &str) -> &str {
        self.response.header(name).unwrap_or_default()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

/// One request with the server's own address as `Host`, as a client that was
/// given the server's base URL sends.
fn request(
    server: &Server,
    method: &str,
    path: &str,
    auth: &str,
    accept: Option<&str>,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> Answer {
    let mut request = server
        .server
        .request(method, path)
        .direct()
        .auth(auth)
        .body(body);
    if let Some(accept) = accept {
        request = request.accept(accept);
    }
    if let Some(content_type) = content_type {
        request = request.header("Content-Type", content_type);
    }
    let response = request.send();
    Answer {
        status: response.status,
        body: response.body.clone(),
        response,
    }
}

fn get(server: &Server, path: &str, auth: &str, accept: Option<&str>) -> Answer {
    request(server, "GET", path, auth, accept, None, Vec::new())
}

fn ok(server: &Server, method: &str, path: &str, body: &str) -> Answer {
    let answer = request(
        server,
        method,
        path,
        ALICE,
        None,
        None,
        body.as_bytes().to_vec(),
    );
    assert_eq!(answer.status, 200, "{method} {path}: {}", answer.text());
    answer
}

fn create(server: &Server) -> String {
    let answer = ok(server, "POST", "/infrastructures", RADL_CTX);
    answer
        .text()
        .rsplit('/')
        .next()
        .expect("a URI")
        .trim()
        .to_string()
}

fn state(server: &Server, id: &str) -> Value {
    get(server, &format!("/infrastructures/{id}/state"), ALICE, None).json()
}

/// Waits until the infrastructure's state is `wanted`.
fn wait_for_state(server: &Server, id: &str, wanted: &str) {
    let started = Instant::now();
    loop {
        let current = state(server, id);
        if current["state"]["state"] == wanted {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{id} never became {wanted}: {current}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn history(server: &Server, id: &str) -> Answer {
    get(
        server,
        &format!("/infrastructures/{id}/history"),
        ALICE,
        None,
    )
}

fn import(server: &Server, auth: &str, document: Vec<u8>) -> Answer {
    request(
        server,
        "PUT",
        "/infrastructures?format=history",
        auth,
        Some("application/json"),
        Some("application/json"),
        document,
    )
}

/// Everything a client reads of an infrastructure, with the server's own address
/// taken out of the URIs.
fn observed(server: &Server, id: &str) -> Vec<(String, String)> {
    let mut seen = Vec::new();
    let strip = |text: String| text.replace(&server.base, "BASE");
    let vm_list = get(server, &format!("/infrastructures/{id}"), ALICE, None);
    assert_eq!(vm_list.status, 200, "{}", vm_list.text());
    let vms: Vec<String> = vm_list
        .text()
        .lines()
        .map(|uri| uri.rsplit('/').next().expect("a VM id").to_string())
        .collect();
    assert!(!vms.is_empty(), "the infrastructure has VMs");
    seen.push(("vms".into(), strip(vm_list.text())));
    for property in ["state", "radl", "contmsg"] {
        let answer = get(
            server,
            &format!("/infrastructures/{id}/{property}"),
            ALICE,
            None,
        );
        assert_eq!(answer.status, 200, "{property}: {}", answer.text());
        seen.push((property.into(), strip(answer.text())));
    }
    for vm in &vms {
        for suffix in ["", "/state", "/contmsg"] {
            let path = format!("/infrastructures/{id}/vms/{vm}{suffix}");
            let answer = get(server, &path, ALICE, None);
            assert_eq!(answer.status, 200, "{path}: {}", answer.text());
            seen.push((format!("vm {vm}{suffix}"), strip(answer.text())));
        }
    }
    seen
}

fn listed(server_list: &Answer) -> Vec<String> {
    server_list
        .text()
        .lines()
        .filter(|l| !l.is_empty())
        .map(|uri| uri.rsplit('/').next().expect("an id").to_string())
        .collect()
}

fn list(server: &Server) -> Vec<String> {
    let answer = get(server, "/infrastructures", ALICE, None);
    assert_eq!(answer.status, 200, "{}", answer.text());
    listed(&answer)
}

/// The document without the header field that names the exporting instance.
fn without_source(document: &[u8]) -> Value {
    let mut value: Value = serde_json::from_slice(document).expect("a JSON document");
    value["header"]
        .as_object_mut()
        .expect("a header")
        .remove("source_instance");
    value
}

/// An infrastructure with a lifecycle: created, stopped, started, VMs added, a VM
/// removed, a VM stopped.
fn lived_infrastructure(server: &Server) -> String {
    let id = create(server);
    wait_for_state(server, &id, "configured");
    ok(server, "PUT", &format!("/infrastructures/{id}/stop"), "");
    wait_for_state(server, &id, "stopped");
    ok(server, "PUT", &format!("/infrastructures/{id}/start"), "");
    wait_for_state(server, &id, "configured");
    let added = "network privada\nsystem wn\ndeploy wn 2";
    ok(server, "POST", &format!("/infrastructures/{id}"), added);
    wait_for_state(server, &id, "configured");
    ok(
        server,
        "DELETE",
        &format!("/infrastructures/{id}/vms/2"),
        "",
    );
    wait_for_state(server, &id, "configured");
    ok(
        server,
        "PUT",
        &format!("/infrastructures/{id}/vms/1/stop"),
        "",
    );
    id
}

#[test]
fn a_history_moves_to_another_instance_and_answers_identically() {
    let a = Server::start();
    let b = Server::start();
    let id = lived_infrastructure(&a);
    let exported = history(&a, &id);
    assert_eq!(exported.status, 200, "{}", exported.text());
    let document = exported.json();
    assert_eq!(document["header"]["format"], "infralog-history");
    assert_eq!(document["header"]["infrastructure"], id.as_str());
    let count = document["header"]["event_count"].as_u64().expect("a count");
    assert_eq!(
        count as usize,
        document["events"].as_array().expect("events").len()
    );
    assert!(
        document["events"]
            .as_array()
            .expect("events")
            .iter()
            .any(|e| e["stream"].as_str().is_some_and(|s| s.starts_with("vm-"))),
        "the VMs' streams travel too"
    );

    // Not an owner of the history: refused, nothing written.
    let refused = import(&b, BOB, exported.body.clone());
    assert_eq!(refused.status, 403, "{}", refused.text());
    assert_eq!(
        get(&b, &format!("/infrastructures/{id}/history"), ALICE, None).status,
        404
    );

    let imported = import(&b, ALICE, exported.body.clone());
    assert_eq!(imported.status, 200, "{}", imported.text());
    assert_eq!(
        imported.json()["uri"],
        format!("{}/infrastructures/{id}", b.base)
    );
    assert_eq!(imported.header("x-infralog-import"), "imported");
    assert_eq!(list(&b), vec![id.clone()]);
    let seen = observed(&b, &id);
    assert_eq!(seen[0].1.lines().count(), 3, "VMs 0, 1 and 3 live");
    assert_eq!(seen, observed(&a, &id));

    // Same event ids, versions, payloads and checksums; only the exporter differs.
    let reexported = history(&b, &id);
    assert_eq!(reexported.status, 200);
    assert_eq!(
        without_source(&reexported.body),
        without_source(&exported.body)
    );
    assert_ne!(
        reexported.json()["header"]["source_instance"],
        document["header"]["source_instance"]
    );

    // Importing again changes nothing and says so.
    let again = import(&b, ALICE, exported.body.clone());
    assert_eq!(again.status, 200, "{}", again.text());
    assert_eq!(again.header("x-infralog-import"), "already-present");
    assert_eq!(history(&b, &id).body, reexported.body);

    // The imported infrastructure lives on B: its actors rehydrate from the log.
    ok(&b, "PUT", &format!("/infrastructures/{id}/stop"), "");
    wait_for_state(&b, &id, "stopped");
    a.stop();
    b.stop();
}

#[test]
fn damaged_truncated_and_conflicting_documents_write_nothing() {
    let a = Server::start();
    let b = Server::start();
    let id = create(&a);
    wait_for_state(&a, &id, "configured");
    let exported = history(&a, &id);
    assert_eq!(exported.status, 200);

    // The history is for owners only, with the checks of every other route.
    let path = format!("/infrastructures/{id}/history");
    assert_eq!(get(&a, &path, "", None).status, 401);
    assert_eq!(get(&a, &path, BOB, None).status, 403);
    let unknown = "/infrastructures/00000000-0000-1000-8000-000000000000/history";
    assert_eq!(get(&a, unknown, ALICE, None).status, 404);
    assert_eq!(import(&b, "", exported.body.clone()).status, 401);

    // One payload byte flipped.
    let mut damaged = exported.json();
    let payload = damaged["events"][0]["payload"]
        .as_str()
        .expect("a payload")
        .to_string();
    let mut raw = base64::engine::general_purpose::STANDARD
        .decode(payload)
        .expect("base64");
    let last = raw.len() - 1;
    raw[last] ^= 0x01;
    damaged["events"][0]["payload"] = base64::engine::general_purpose::STANDARD.encode(raw).into();
    let answer = import(&b, ALICE, serde_json::to_vec(&damaged).expect("JSON"));
    assert_eq!(answer.status, 400, "{}", answer.text());
    assert!(answer.text().contains("checksum"), "{}", answer.text());
    assert!(list(&b).is_empty(), "nothing was written");

    // Cut short.
    let cut = exported.body[..exported.body.len() * 2 / 3].to_vec();
    let answer = import(&b, ALICE, cut);
    assert_eq!(answer.status, 400, "{}", answer.text());
    // An event left out (the count and the checksum no longer match).
    let mut short = exported.json();
    short["events"].as_array_mut().expect("events").pop();
    let answer = import(&b, ALICE, serde_json::to_vec(&short).expect("JSON"));
    assert_eq!(answer.status, 400, "{}", answer.text());
    assert!(list(&b).is_empty(), "nothing was written");

    // B has the infrastructure; A's goes on; the newer history conflicts whole.
    assert_eq!(import(&b, ALICE, exported.body.clone()).status, 200);
    let before = history(&b, &id).body;
    ok(&a, "PUT", &format!("/infrastructures/{id}/stop"), "");
    wait_for_state(&a, &id, "stopped");
    let newer = history(&a, &id);
    let answer = import(&b, ALICE, newer.body);
    assert_eq!(answer.status, 409, "{}", answer.text());
    assert_eq!(history(&b, &id).body, before, "B's history is untouched");
    assert_eq!(state(&b, &id)["state"]["state"], "configured");
    a.stop();
    b.stop();
}

#[test]
fn the_cli_moves_many_infrastructures() {
    let a = Server::start();
    let b = Server::start();
    let first = create(&a);
    let second = lived_infrastructure(&a);
    wait_for_state(&a, &first, "configured");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let auth = dir.path().join("auth.dat");
    std::fs::write(
        &auth,
        "# alice\nid = im; type = InfrastructureManager; username = alice; password = secret-a\nid = dummy; type = Dummy\n",
    )
    .expect("the auth file is written");
    let file = dir.path().join("moved.ndjson");
    // The servers run on their own threads: the commands may block this one.
    let run = |args: Vec<String>| {
        std::process::Command::new(env!("CARGO_BIN_EXE_infralog"))
            .args(args)
            .output()
    };
    let export = run(vec![
        "export".into(),
        "--server".into(),
        a.base.clone(),
        "--auth".into(),
        auth.display().to_string(),
        "--all".into(),
        "--to".into(),
        file.display().to_string(),
    ])
    .expect("the command finishes");
    assert!(
        export.status.success(),
        "export: {}",
        String::from_utf8_lossy(&export.stderr)
    );
    let written = std::fs::read_to_string(&file).expect("the file exists");
    assert_eq!(written.lines().count(), 2, "one document per line");

    let import_args = vec![
        "import".into(),
        "--server".into(),
        b.base.clone(),
        "--auth".into(),
        auth.display().to_string(),
        file.display().to_string(),
    ];
    let imported = run(import_args.clone()).expect("the command finishes");
    assert!(
        imported.status.success(),
        "import: {}",
        String::from_utf8_lossy(&imported.stderr)
    );
    assert!(String::from_utf8_lossy(&imported.stdout).contains("imported 2, already present 0"));
    let mut on_b = list(&b);
    on_b.sort();
    let mut expected = vec![first.clone(), second.clone()];
    expected.sort();
    assert_eq!(on_b, expected);
    for id in [&first, &second] {
        assert_eq!(observed(&b, id), observed(&a, id));
        assert_eq!(
            without_source(&history(&b, id).body),
            without_source(&history(&a, id).body)
        );
    }
    let again = run(import_args).expect("the command finishes");
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stdout).contains("imported 0, already present 2"));

    // Failures are reported, the rest goes on, and the exit status says so.
    let unknown = "00000000-0000-1000-8000-000000000000".to_string();
    let partial_file = dir.path().join("partial.ndjson");
    let export = run(vec![
        "export".into(),
        "--server".into(),
        a.base.clone(),
        "--auth".into(),
        auth.display().to_string(),
        unknown,
        first.clone(),
        "--to".into(),
        partial_file.display().to_string(),
    ])
    .expect("the command finishes");
    assert!(!export.status.success(), "an unknown id fails the export");
    let written = std::fs::read_to_string(&partial_file).expect("the file exists");
    assert_eq!(written.lines().count(), 1, "the other one is exported");
    std::fs::write(
        &partial_file,
        format!("{{\"not\": \"a history\"}}\n{written}"),
    )
    .expect("the file is rewritten");
    let import = run(vec![
        "import".into(),
        "--server".into(),
        b.base.clone(),
        "--auth".into(),
        auth.display().to_string(),
        partial_file.display().to_string(),
    ])
    .expect("the command finishes");
    assert!(
        !import.status.success(),
        "a refused document fails the import"
    );
    assert!(
        String::from_utf8_lossy(&import.stdout)
            .contains("imported 0, already present 1, refused 1"),
        "{}",
        String::from_utf8_lossy(&import.stdout)
    );
    a.stop();
    b.stop();
}
