//! Limits and faults over HTTP: 413 for large bodies, 431 for large headers, 400 for
//! too many VMs, 503 with Retry-After for a full mailbox, a panicking cloud that
//! leaves everything else serving, and rejected requests that append nothing.

use std::sync::Arc;
use std::time::Duration;

use crate::harness::*;
use infralog_actors::connectors::{
    AlterRequest, CloudConnector, CloudCredentials, CloudFuture, CloudImage, CloudVmRef,
    Connectors, ImageFilters, LaunchRequest, LaunchedVm, Quotas,
};
use infralog_events::domain::FeatureFact;
use infralog_events::{EventStore, SledStore, SledStoreConfig};
use serde_json::json;

const USER: &str = "limits";

/// A cloud whose stops take a while (to fill mailboxes) and that panics when asked
/// to launch a system named `panics` or to reboot anything.
struct Troublesome;

impl CloudConnector for Troublesome {
    fn kind(&self) -> &'static str {
        "Troublesome"
    }
    fn launch(&self, request: LaunchRequest, _: &CloudCredentials) -> CloudFuture<LaunchedVm> {
        if request.system == "panics" {
            panic!("a bug in a connector");
        }
        ready(LaunchedVm {
            cloud_vm_id: format!("t{}", request.vm_id.0),
            facts: vec![FeatureFact::text("state", "running")],
        })
    }
    fn stop(&self, _: &CloudVmRef, _: &CloudCredentials) -> CloudFuture<()> {
        Box::pin(async {
            actix_web::rt::time::sleep(Duration::from_millis(300)).await;
            Ok(())
        })
    }
    fn start(&self, _: &CloudVmRef, _: &CloudCredentials) -> CloudFuture<()> {
        ready(())
    }
    fn reboot(&self, _: &CloudVmRef, _: &CloudCredentials) -> CloudFuture<()> {
        Box::pin(async { panic!("a bug while rebooting") })
    }
    fn alter(
        &self,
        _: &CloudVmRef,
        _: AlterRequest,
        _: &CloudCredentials,
    ) -> CloudFuture<Vec<FeatureFact>> {
        ready(Vec::new())
    }
    fn snapshot(
        &self,
        _: &CloudVmRef,
        _: u32,
        _: &str,
        _: &CloudCredentials,
    ) -> CloudFuture<String> {
        ready(String::new())
    }
    fn destroy(&self, _: &CloudVmRef, _: &CloudCredentials) -> CloudFuture<()> {
        ready(())
    }
    fn delete_image(&self, _: &str, _: &CloudCredentials) -> CloudFuture<()> {
        ready(())
    }
    fn images(&self, _: &ImageFilters, _: &CloudCredentials) -> CloudFuture<Vec<CloudImage>> {
        ready(Vec::new())
    }
    fn quotas(&self, _: &CloudCredentials) -> CloudFuture<Quotas> {
        ready(Vec::new())
    }
}

const TROUBLE_AUTH: &str =
    "type = InfrastructureManager; username = limits; password = pass-limits\\nid = t; type = Troublesome";

fn troublesome_radl(system: &str) -> String {
    format!(
        "network privada ()\nsystem {system} (\ncpu.count>=1 and\nmemory.size>=512m and\nnet_interface.0.connection = 'privada' and\ndisk.0.image.url = 'one://x/1' and\ndisk.0.os.name='linux'\n)\ndeploy {system} 1\ncontextualize ()\n"
    )
}

fn troublesome_server(dir: &std::path::Path, mailbox_capacity: usize) -> TestServer {
    let mut settings = settings(dir);
    let mut connectors = Connectors::builtin();
    connectors.register(Arc::new(Troublesome));
    settings.connectors = connectors;
    settings.actors.mailbox_capacity = mailbox_capacity;
    TestServer::start_with(settings)
}

#[test]
fn bodies_over_the_limit_are_413_and_create_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut settings = settings(dir.path());
    settings.limits.max_body_bytes = 2048;
    let server = TestServer::start_with(settings);
    // A valid RADL padded with comments to exactly the limit is accepted.
    let mut exact = String::from(RADL_NO_CTX);
    while exact.len() < 2048 - 20 {
        exact.push_str("# padding padding\n");
    }
    exact.push_str(&"#".repeat(2047 - exact.len()));
    exact.push('\n');
    assert_eq!(exact.len(), 2048);
    server
        .post("/infrastructures")
        .user(USER)
        .radl(&exact)
        .send()
        .expect(200);
    let before = list(&server, USER);
    let too_large = format!("{exact}#");
    let refused = server
        .post("/infrastructures")
        .user(USER)
        .radl(&too_large)
        .send()
        .expect(413);
    assert_eq!(
        refused.text(),
        "Request body too large: the limit is 2048 bytes"
    );
    let json = server
        .post("/infrastructures?dry_run=1")
        .user(USER)
        .accept("application/json")
        .radl(&too_large)
        .send()
        .expect(413);
    assert_eq!(
        json.json(),
        json!({"message": "Request body too large: the limit is 2048 bytes", "code": 413})
    );
    // A chunked body announces no length: it is cut off while it streams in.
    let mut raw = format!(
        "POST /infrastructures HTTP/1.1\r\nHost: {HOST}\r\nAuthorization: {}\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        auth_for(USER)
    )
    .into_bytes();
    for _ in 0..8 {
        raw.extend_from_slice(format!("{:x}\r\n{}\r\n", 1000, "#".repeat(1000)).as_bytes());
    }
    raw.extend_from_slice(b"0\r\n\r\n");
    assert_eq!(send_raw(server.port, &raw).status, 413);
    assert_eq!(
        list(&server, USER),
        before,
        "no refused body created anything"
    );
}

#[test]
fn headers_over_the_limit_are_431() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut settings = settings(dir.path());
    settings.limits.max_header_bytes = 1024;
    let server = TestServer::start_with(settings);
    let refused = server
        .get("/infrastructures")
        .user(USER)
        .header("X-Padding", &"p".repeat(1100))
        .send()
        .expect(431);
    assert_eq!(
        refused.text(),
        "Request header fields too large: the limit is 1024 bytes"
    );
    let refused = server
        .post("/infrastructures")
        .auth(&format!("{}{}", auth_for(USER), "\\n#".repeat(400)))
        .radl(RADL_NO_CTX)
        .send()
        .expect(431);
    assert!(refused
        .text()
        .starts_with("Request header fields too large"));
    assert_eq!(list(&server, USER), "", "nothing was created");
}

#[test]
fn enormous_headers_are_refused_before_the_application_and_the_server_goes_on() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = TestServer::start(dir.path());
    let huge = "h".repeat(128 * 1024);
    let raw = format!(
        "GET /infrastructures HTTP/1.1\r\nHost: {HOST}\r\nX-Huge: {huge}\r\nConnection: close\r\n\r\n"
    );
    let answer = send_raw(server.port, raw.as_bytes());
    assert_eq!(answer.status, 431, "{answer:?}");
    let many: String = (0..200).map(|i| format!("X-Header-{i}: v\r\n")).collect();
    let raw = format!("GET /version HTTP/1.1\r\nHost: {HOST}\r\n{many}Connection: close\r\n\r\n");
    let answer = send_raw(server.port, raw.as_bytes());
    assert!(
        matches!(answer.status, 400 | 431),
        "too many headers: {answer:?}"
    );
    server.get("/version").send().expect(200);
}

#[test]
fn too_many_vms_in_one_request_is_400_and_creates_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut settings = settings(dir.path());
    settings.limits.max_vms_per_request = 3;
    let server = TestServer::start_with(settings);
    let four = RADL_NO_CTX.replace("deploy node 2", "deploy node 2\ndeploy node 2");
    for path in ["/infrastructures", "/infrastructures?dry_run=1"] {
        let refused = server.post(path).user(USER).radl(&four).send().expect(400);
        assert!(
            refused.text().starts_with("Error Creating Inf.: "),
            "{}",
            refused.text()
        );
        assert!(
            refused.text().contains('3'),
            "the limit is named: {}",
            refused.text()
        );
    }
    let huge = RADL_NO_CTX.replace("deploy node 2", "deploy node 99999999999999999999");
    server
        .post("/infrastructures")
        .user(USER)
        .radl(&huge)
        .send()
        .expect(400);
    assert_eq!(list(&server, USER), "");
    let three = RADL_NO_CTX.replace("deploy node 2", "deploy node 3");
    let inf = create(&server, USER, &three);
    assert_eq!(
        state(&server, USER, &inf)["state"]["vm_states"]
            .as_object()
            .map(|m| m.len()),
        Some(3)
    );
}

#[test]
fn a_full_mailbox_is_503_with_retry_after_and_queued_work_still_runs() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = troublesome_server(dir.path(), 1);
    let created = server
        .post("/infrastructures")
        .auth(TROUBLE_AUTH)
        .radl(&troublesome_radl("node"))
        .send()
        .expect(200);
    let inf = id_of(&created.text());
    let stop = server
        .put(&format!("/infrastructures/{inf}/stop"))
        .auth(TROUBLE_AUTH);
    // Each stop holds the infrastructure's actor for 300 ms: a flood meets a full
    // mailbox, and the commands that got in still finish.
    let answers: Vec<Response> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..10)
            .map(|_| {
                let stop = stop.clone();
                scope.spawn(move || stop.send())
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a request thread"))
            .collect()
    });
    let busy: Vec<&Response> = answers.iter().filter(|a| a.status == 503).collect();
    let done = answers.iter().filter(|a| a.status == 200).count();
    assert!(!busy.is_empty(), "a flood meets a full mailbox");
    assert!(done > 0, "queued commands still run");
    assert_eq!(busy.len() + done, answers.len(), "{answers:?}");
    for answer in busy {
        assert_eq!(answer.header("retry-after"), Some("1"));
        assert!(
            answer.text().starts_with("Server busy"),
            "{}",
            answer.text()
        );
    }
    assert_eq!(
        state(&server, USER, &inf),
        json!({"state": {"state": "stopped", "vm_states": {"0": "stopped"}}})
    );
    // A VM's own mailbox is bounded as well.
    let vm_stop = server
        .put(&format!("/infrastructures/{inf}/vms/0/stop"))
        .auth(TROUBLE_AUTH);
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..10)
            .map(|_| {
                let vm_stop = vm_stop.clone();
                scope.spawn(move || vm_stop.send().status)
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a request thread"))
            .collect()
    });
    assert!(statuses.contains(&503), "{statuses:?}");
    assert!(statuses.contains(&200), "{statuses:?}");
    assert!(
        statuses.iter().all(|s| matches!(s, 200 | 503)),
        "{statuses:?}"
    );
}

/// `infralog_mailbox_depth{actor="vm"}` and its `_max` now.
fn vm_mailbox_depth(server: &TestServer) -> (f64, f64) {
    let metrics = server.get("/metrics").send().expect(200).text();
    let read = |name| {
        crate::observability::sample(&metrics, name, &[r#"actor="vm""#])
            .unwrap_or_else(|| panic!("{name} is missing: {metrics}"))
    };
    (
        read("infralog_mailbox_depth"),
        read("infralog_mailbox_depth_max"),
    )
}

#[test]
fn mailbox_depth_counts_waiting_commands_and_returns_to_zero_after_a_flood() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = troublesome_server(dir.path(), 4);
    let created = server
        .post("/infrastructures")
        .auth(TROUBLE_AUTH)
        .radl(&troublesome_radl("node"))
        .send()
        .expect(200);
    let inf = id_of(&created.text());
    assert_eq!(vm_mailbox_depth(&server), (0.0, 0.0));
    let vm_stop = server
        .put(&format!("/infrastructures/{inf}/vms/0/stop"))
        .auth(TROUBLE_AUTH);
    // Each stop holds the VM's actor for 300 ms, so the stops that get in wait in
    // its mailbox while /metrics is read; the rest meet a full mailbox (503).
    let flooding = std::sync::atomic::AtomicBool::new(true);
    let (statuses, deepest_seen) = std::thread::scope(|scope| {
        let watcher = scope.spawn(|| {
            let mut deepest = (0.0f64, 0.0f64);
            while flooding.load(std::sync::atomic::Ordering::Relaxed) {
                let (waiting, max) = vm_mailbox_depth(&server);
                deepest = (deepest.0.max(waiting), deepest.1.max(max));
                std::thread::sleep(Duration::from_millis(5));
            }
            deepest
        });
        let handles: Vec<_> = (0..16)
            .map(|_| {
                let vm_stop = vm_stop.clone();
                scope.spawn(move || vm_stop.send().status)
            })
            .collect();
        let statuses: Vec<u16> = handles
            .into_iter()
            .map(|h| h.join().expect("a request thread"))
            .collect();
        flooding.store(false, std::sync::atomic::Ordering::Relaxed);
        (statuses, watcher.join().expect("the watcher"))
    });
    assert!(statuses.contains(&503), "{statuses:?}");
    assert!(statuses.contains(&200), "{statuses:?}");
    assert!(
        deepest_seen.0 >= 1.0 && deepest_seen.1 >= 1.0,
        "queued stops were never seen waiting: {deepest_seen:?}"
    );
    assert!(deepest_seen.0 <= 16.0, "{deepest_seen:?}");
    // Every stop was answered, so each was handled or refused: none waits, and
    // the refused ones (503) did not leave a count behind.
    assert_eq!(vm_mailbox_depth(&server), (0.0, 0.0));
    let metrics = server.get("/metrics").send().expect(200).text();
    assert_eq!(
        crate::observability::sample(
            &metrics,
            "infralog_mailbox_depth",
            &[r#"actor="infrastructure""#]
        ),
        Some(0.0)
    );
}

#[test]
fn a_panicking_cloud_fails_its_request_and_everything_else_keeps_serving() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = troublesome_server(dir.path(), 64);
    let healthy = {
        let created = server
            .post("/infrastructures")
            .auth(TROUBLE_AUTH)
            .radl(&troublesome_radl("node"))
            .send()
            .expect(200);
        id_of(&created.text())
    };
    let dummy = create(&server, USER, RADL_NO_CTX);

    let broken = server
        .post("/infrastructures")
        .auth(TROUBLE_AUTH)
        .radl(&troublesome_radl("panics"))
        .send()
        .expect(400);
    assert!(
        broken
            .text()
            .starts_with("Error Creating Inf.: Error adding VMs:"),
        "{}",
        broken.text()
    );
    assert!(
        !broken.text().contains("a bug in a connector"),
        "a panic's own text stays in the log: {}",
        broken.text()
    );

    let reboot = server
        .put(&format!("/infrastructures/{healthy}/vms/0/reboot"))
        .auth(TROUBLE_AUTH)
        .send();
    assert!(
        matches!(reboot.status, 400 | 500),
        "a panic is an error answer: {reboot:?}"
    );
    assert!(
        !reboot.text().contains("src/") && !reboot.text().contains(".rs"),
        "no internals leak: {}",
        reboot.text()
    );
    // The VM whose reboot panicked is rebuilt from the log and serves again.
    server
        .put(&format!("/infrastructures/{healthy}/vms/0/stop"))
        .auth(TROUBLE_AUTH)
        .send()
        .expect(200);
    assert_eq!(
        state(&server, USER, &healthy),
        json!({"state": {"state": "stopped", "vm_states": {"0": "stopped"}}})
    );
    assert_eq!(infra_state(&server, USER, &dummy), "configured");
    let again = create(&server, USER, RADL_NO_CTX);
    assert_eq!(infra_state(&server, USER, &again), "configured");
}

fn head_of(dir: &std::path::Path) -> u64 {
    // A stopped server has let go of the log: it opens at once.
    let store = SledStore::open(SledStoreConfig {
        path: dir.to_path_buf(),
        cache_capacity_bytes: 1024 * 1024,
    })
    .expect("open the log of a stopped server");
    let head = store.head_position();
    store.close();
    head
}

#[test]
fn a_request_answered_with_an_error_appends_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let inf = {
        let server = TestServer::start(dir.path());
        let inf = create(&server, USER, RADL_NO_CTX);
        server.stop();
        inf
    };
    let head = head_of(dir.path());
    assert!(head > 0);
    let mut settings = settings(dir.path());
    settings.limits.max_vms_per_request = 4;
    let server = TestServer::start_with(settings);
    let base = format!("/infrastructures/{inf}");
    let rejected: Vec<(Request, u16)> = vec![
        // Create: a bad Accept, bad flags, bad bodies, too many VMs, a stranger's cloud.
        (
            server
                .post("/infrastructures")
                .user(USER)
                .accept("text/plain")
                .radl(RADL_NO_CTX),
            415,
        ),
        (
            server
                .post("/infrastructures")
                .user(USER)
                .accept("image/png")
                .header("Content-Type", "application/json")
                .body("[{\"class\": \"system\", \"id\": \"n\"}, {\"class\": \"deploy\", \"system\": \"n\", \"vm_number\": 1}]"),
            415,
        ),
        (
            server
                .post("/infrastructures?async=perhaps")
                .user(USER)
                .radl(RADL_NO_CTX),
            422,
        ),
        (
            server
                .post("/infrastructures")
                .user(USER)
                .radl("system broken ("),
            400,
        ),
        (
            server
                .post("/infrastructures")
                .user(USER)
                .radl(&RADL_NO_CTX.replace("deploy node 2", "deploy node 5")),
            400,
        ),
        (
            server
                .post("/infrastructures")
                .user(USER)
                .radl(&format!("{RADL_NO_CTX}deploy node 1 nowhere\n")),
            400,
        ),
        (
            server
                .post("/infrastructures")
                .auth("id = dummy; type = Dummy")
                .radl(RADL_NO_CTX),
            401,
        ),
        // Operations: bad flags, strangers, unknown VMs and ops.
        (server.delete(&format!("{base}?force=2")).user(USER), 422),
        (server.delete(&base).user("stranger"), 403),
        (server.put(&format!("{base}/stop")).user("stranger"), 403),
        (server.put(&format!("{base}/start")).user("stranger"), 403),
        (server.put(&format!("{base}/vms/0/stop")).user("stranger"), 403),
        (server.put(&format!("{base}/vms/0/reboot")).user("stranger"), 403),
        (server.put(&format!("{base}/vms/5/stop")).user(USER), 404),
        (server.put(&format!("{base}/vms/0/pause")).user(USER), 422),
        (server.put(&format!("{base}/pause")).user(USER), 422),
        (server.put(&format!("{base}/stop")).auth(""), 401),
    ];
    for (request, status) in &rejected {
        let answer = request.send();
        assert_eq!(answer.status, *status, "{request:?}: {}", answer.text());
    }
    assert_eq!(list(&server, USER), format!("http://{HOST}{base}"));
    assert_eq!(infra_state(&server, USER, &inf), "configured");
    server.stop();
    assert_eq!(
        head_of(dir.path()),
        head,
        "rejected requests appended events"
    );
}

#[test]
fn idle_actors_stop_and_come_back_without_losing_a_request() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut settings = settings(dir.path());
    settings.actors.idle_timeout = Duration::from_millis(40);
    let server = TestServer::start_with(settings);
    let inf = create(&server, USER, RADL_NO_CTX);
    let mut failures = Vec::new();
    // Requests arrive around the moment the idle actors decide to stop.
    for round in 0..60u64 {
        std::thread::sleep(Duration::from_millis(15 + (round * 7) % 40));
        let path = match round % 3 {
            0 => format!("/infrastructures/{inf}/vms/{}/reboot", round % 2),
            1 => format!("/infrastructures/{inf}/start"),
            _ => format!("/infrastructures/{inf}/vms/{}/start", round % 2),
        };
        let answer = server.put(&path).user(USER).send();
        if answer.status != 200 {
            failures.push(format!("{path}: {} {}", answer.status, answer.text()));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    assert_eq!(infra_state(&server, USER, &inf), "configured");
}
