//! Full-history transfer between two servers started in this process: export an
//! infrastructure's history from A, import it into B, and B answers as A does.

use std::time::{Duration, Instant};

use base64::Engine as _;
use infralog::app::{Application, Settings};
use serde_json::Value;

const ALICE: &str = "id = im; type = InfrastructureManager; username = alice; password = secret-a\\nid = dummy; type = Dummy";
const BOB: &str = "id = im; type = InfrastructureManager; username = bob; password = secret-b\\nid = dummy; type = Dummy";

const RADL: &str = "network publica (outbound = 'yes')
network privada ()
system front (
cpu.arch='x86_64' and
cpu.count>=1 and
memory.size>=512m and
net_interface.0.connection = 'publica' and
net_interface.1.connection = 'privada' and
disk.0.os.name='linux'
)
system wn (
cpu.count>=1 and
memory.size>=512m and
net_interface.0.connection = 'privada' and
disk.0.os.name='linux'
)
deploy front 1
deploy wn 1
";

/// A server over its own temporary directory, on a free port.
struct Server {
    _dir: tempfile::TempDir,
    base: String,
    handle: actix_web::dev::ServerHandle,
    stopped: actix_web::rt::task::JoinHandle<std::io::Result<()>>,
}

impl Server {
    async fn start() -> Server {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let mut settings = Settings::new("127.0.0.1:0", dir.path());
        settings.fast_password_hashing = true;
        settings.workers = 1;
        settings.contextualization_delay = Duration::from_millis(20);
        let application = Application::start(settings)
            .await
            .expect("the server starts");
        let base = format!("http://127.0.0.1:{}", application.port());
        let handle = application.handle();
        let stopped = actix_web::rt::spawn(application.run_until_stopped());
        Server {
            _dir: dir,
            base,
            handle,
            stopped,
        }
    }

    async fn stop(self) {
        self.handle.stop(true).await;
        let _ = self.stopped.await;
    }
}

struct Answer {
    status: u16,
    headers: awc::http::header::HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

async fn request(
    method: &str,
    url: &str,
    auth: &str,
    accept: Option<&str>,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> Answer {
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(60))
        .finish();
    let method = awc::http::Method::from_bytes(method.as_bytes()).expect("a method");
    let mut builder = client
        .request(method, url)
        .insert_header(("Authorization", auth));
    if let Some(accept) = accept {
        builder = builder.insert_header(("Accept", accept));
    }
    if let Some(content_type) = content_type {
        builder = builder.insert_header(("Content-Type", content_type));
    }
    let mut response = builder.send_body(body).await.expect("the server answers");
    let body = response
        .body()
        .limit(64 * 1024 * 1024)
        .await
        .expect("a body");
    Answer {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        body: body.to_vec(),
    }
}

async fn get(server: &Server, path: &str, auth: &str, accept: Option<&str>) -> Answer {
    request(
        "GET",
        &format!("{}{path}", server.base),
        auth,
        accept,
        None,
        Vec::new(),
    )
    .await
}

async fn ok(server: &Server, method: &str, path: &str, body: &str) -> Answer {
    let answer = request(
        method,
        &format!("{}{path}", server.base),
        ALICE,
        None,
        None,
        body.as_bytes().to_vec(),
    )
    .await;
    assert_eq!(answer.status, 200, "{method} {path}: {}", answer.text());
    answer
}

async fn create(server: &Server) -> String {
    let answer = ok(server, "POST", "/infrastructures", RADL).await;
    answer
        .text()
        .rsplit('/')
        .next()
        .expect("a URI")
        .trim()
        .to_string()
}

async fn state(server: &Server, id: &str) -> Value {
    get(server, &format!("/infrastructures/{id}/state"), ALICE, None)
        .await
        .json()
}

/// Waits until the infrastructure's state is `wanted`.
async fn wait_for_state(server: &Server, id: &str, wanted: &str) {
    let started = Instant::now();
    loop {
        let current = state(server, id).await;
        if current["state"]["state"] == wanted {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{id} never became {wanted}: {current}"
        );
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn history(server: &Server, id: &str) -> Answer {
    get(
        server,
        &format!("/infrastructures/{id}/history"),
        ALICE,
        None,
    )
    .await
}

async fn import(server: &Server, auth: &str, document: Vec<u8>) -> Answer {
    request(
        "PUT",
        &format!("{}/infrastructures?format=history", server.base),
        auth,
        Some("application/json"),
        Some("application/json"),
        document,
    )
    .await
}

/// Everything a client reads of an infrastructure, with the server's own address
/// taken out of the URIs.
async fn observed(server: &Server, id: &str) -> Vec<(String, String)> {
    let mut seen = Vec::new();
    let strip = |text: String| text.replace(&server.base, "BASE");
    let vm_list = get(server, &format!("/infrastructures/{id}"), ALICE, None).await;
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
        )
        .await;
        assert_eq!(answer.status, 200, "{property}: {}", answer.text());
        seen.push((property.into(), strip(answer.text())));
    }
    for vm in &vms {
        for suffix in ["", "/state", "/contmsg"] {
            let path = format!("/infrastructures/{id}/vms/{vm}{suffix}");
            let answer = get(server, &path, ALICE, None).await;
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

async fn list(server: &Server) -> Vec<String> {
    let answer = get(server, "/infrastructures", ALICE, None).await;
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
async fn lived_infrastructure(server: &Server) -> String {
    let id = create(server).await;
    wait_for_state(server, &id, "configured").await;
    ok(server, "PUT", &format!("/infrastructures/{id}/stop"), "").await;
    wait_for_state(server, &id, "stopped").await;
    ok(server, "PUT", &format!("/infrastructures/{id}/start"), "").await;
    wait_for_state(server, &id, "configured").await;
    let added = "network privada\nsystem wn\ndeploy wn 2";
    ok(server, "POST", &format!("/infrastructures/{id}"), added).await;
    wait_for_state(server, &id, "configured").await;
    ok(
        server,
        "DELETE",
        &format!("/infrastructures/{id}/vms/2"),
        "",
    )
    .await;
    wait_for_state(server, &id, "configured").await;
    ok(
        server,
        "PUT",
        &format!("/infrastructures/{id}/vms/1/stop"),
        "",
    )
    .await;
    id
}

#[actix_web::test]
async fn a_history_moves_to_another_instance_and_answers_identically() {
    let a = Server::start().await;
    let b = Server::start().await;
    let id = lived_infrastructure(&a).await;
    let exported = history(&a, &id).await;
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
    let refused = import(&b, BOB, exported.body.clone()).await;
    assert_eq!(refused.status, 403, "{}", refused.text());
    assert_eq!(
        get(&b, &format!("/infrastructures/{id}/history"), ALICE, None)
            .await
            .status,
        404
    );

    let imported = import(&b, ALICE, exported.body.clone()).await;
    assert_eq!(imported.status, 200, "{}", imported.text());
    assert_eq!(
        imported.json()["uri"],
        format!("{}/infrastructures/{id}", b.base)
    );
    assert_eq!(imported.header("x-infralog-import"), "imported");
    assert_eq!(list(&b).await, vec![id.clone()]);
    let seen = observed(&b, &id).await;
    assert_eq!(seen[0].1.lines().count(), 3, "VMs 0, 1 and 3 live");
    assert_eq!(seen, observed(&a, &id).await);

    // Same event ids, versions, payloads and checksums; only the exporter differs.
    let reexported = history(&b, &id).await;
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
    let again = import(&b, ALICE, exported.body.clone()).await;
    assert_eq!(again.status, 200, "{}", again.text());
    assert_eq!(again.header("x-infralog-import"), "already-present");
    assert_eq!(history(&b, &id).await.body, reexported.body);

    // The imported infrastructure lives on B: its actors rehydrate from the log.
    ok(&b, "PUT", &format!("/infrastructures/{id}/stop"), "").await;
    wait_for_state(&b, &id, "stopped").await;
    a.stop().await;
    b.stop().await;
}

#[actix_web::test]
async fn damaged_truncated_and_conflicting_documents_write_nothing() {
    let a = Server::start().await;
    let b = Server::start().await;
    let id = create(&a).await;
    wait_for_state(&a, &id, "configured").await;
    let exported = history(&a, &id).await;
    assert_eq!(exported.status, 200);

    // The history is for owners only, with the checks of every other route.
    let path = format!("/infrastructures/{id}/history");
    assert_eq!(get(&a, &path, "", None).await.status, 401);
    assert_eq!(get(&a, &path, BOB, None).await.status, 403);
    let unknown = "/infrastructures/00000000-0000-1000-8000-000000000000/history";
    assert_eq!(get(&a, unknown, ALICE, None).await.status, 404);
    assert_eq!(import(&b, "", exported.body.clone()).await.status, 401);

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
    let answer = import(&b, ALICE, serde_json::to_vec(&damaged).expect("JSON")).await;
    assert_eq!(answer.status, 400, "{}", answer.text());
    assert!(answer.text().contains("checksum"), "{}", answer.text());
    assert!(list(&b).await.is_empty(), "nothing was written");

    // Cut short.
    let cut = exported.body[..exported.body.len() * 2 / 3].to_vec();
    let answer = import(&b, ALICE, cut).await;
    assert_eq!(answer.status, 400, "{}", answer.text());
    // An event left out (the count and the checksum no longer match).
    let mut short = exported.json();
    short["events"].as_array_mut().expect("events").pop();
    let answer = import(&b, ALICE, serde_json::to_vec(&short).expect("JSON")).await;
    assert_eq!(answer.status, 400, "{}", answer.text());
    assert!(list(&b).await.is_empty(), "nothing was written");

    // B has the infrastructure; A's goes on; the newer history conflicts whole.
    assert_eq!(import(&b, ALICE, exported.body.clone()).await.status, 200);
    let before = history(&b, &id).await.body;
    ok(&a, "PUT", &format!("/infrastructures/{id}/stop"), "").await;
    wait_for_state(&a, &id, "stopped").await;
    let newer = history(&a, &id).await;
    let answer = import(&b, ALICE, newer.body).await;
    assert_eq!(answer.status, 409, "{}", answer.text());
    assert_eq!(
        history(&b, &id).await.body,
        before,
        "B's history is untouched"
    );
    assert_eq!(state(&b, &id).await["state"]["state"], "configured");
    a.stop().await;
    b.stop().await;
}

#[actix_web::test]
async fn the_cli_moves_many_infrastructures() {
    let a = Server::start().await;
    let b = Server::start().await;
    let first = create(&a).await;
    let second = lived_infrastructure(&a).await;
    wait_for_state(&a, &first, "configured").await;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let auth = dir.path().join("auth.dat");
    std::fs::write(
        &auth,
        "# alice\nid = im; type = InfrastructureManager; username = alice; password = secret-a\nid = dummy; type = Dummy\n",
    )
    .expect("the auth file is written");
    let file = dir.path().join("moved.ndjson");
    let run = |args: Vec<String>| {
        actix_web::web::block(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_infralog"))
                .args(args)
                .output()
                .expect("the command runs")
        })
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
    .await
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
    let imported = run(import_args.clone())
        .await
        .expect("the command finishes");
    assert!(
        imported.status.success(),
        "import: {}",
        String::from_utf8_lossy(&imported.stderr)
    );
    assert!(String::from_utf8_lossy(&imported.stdout).contains("imported 2, already present 0"));
    let mut on_b = list(&b).await;
    on_b.sort();
    let mut expected = vec![first.clone(), second.clone()];
    expected.sort();
    assert_eq!(on_b, expected);
    for id in [&first, &second] {
        assert_eq!(observed(&b, id).await, observed(&a, id).await);
        assert_eq!(
            without_source(&history(&b, id).await.body),
            without_source(&history(&a, id).await.body)
        );
    }
    let again = run(import_args).await.expect("the command finishes");
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
    .await
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
    .await
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
    a.stop().await;
    b.stop().await;
}
