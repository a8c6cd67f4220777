//! Concurrent writers on one infrastructure: our own races are never the client's
//! answer. Concurrent adds, removals, reconfigures, stops and starts all succeed;
//! an infrastructure-wide stop reaches every VM even when their mailboxes are full,
//! and says which VMs it could not reach (503) when they stay full.

use std::sync::Arc;
use std::time::Duration;

use crate::harness::*;
use infralog_actors::connectors::{
    AlterRequest, CloudConnector, CloudCredentials, CloudFuture, CloudImage, CloudVmRef,
    Connectors, ImageFilters, LaunchRequest, LaunchedVm, Quotas,
};
use infralog_events::domain::FeatureFact;
use serde_json::json;

const USER: &str = "racer";

/// One more `node`, by reference to the stored system.
const ADD_ONE: &str = "network privada ()\nsystem node\ndeploy node 1\n";

fn vm_ids(server: &TestServer, inf: &str) -> Vec<u32> {
    let list = server
        .get(&format!("/infrastructures/{inf}"))
        .user(USER)
        .send()
        .expect(200)
        .text();
    list.lines()
        .filter_map(|uri| uri.rsplit('/').next())
        .filter_map(|id| id.parse().ok())
        .collect()
}

/// Every answer of `requests`, sent `clients` at a time, one thread per client.
fn in_parallel<F>(clients: usize, client: F) -> Vec<(String, Response)>
where
    F: Fn(usize) -> Vec<(String, Response)> + Sync,
{
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..clients)
            .map(|n| {
                let client = &client;
                scope.spawn(move || client(n))
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a client thread"))
            .collect()
    })
}

#[test]
fn twenty_concurrent_clients_of_one_infrastructure_all_succeed() {
    let (_dir, server) = temp_server();
    let inf = create(&server, USER, RADL_NO_CTX);
    let base = format!("/infrastructures/{inf}");
    let answers = in_parallel(20, |n| {
        let mut answers = Vec::new();
        for round in 0..3 {
            let (what, request) = match (n + round) % 3 {
                0 | 1 => ("add", server.post(&base).user(USER).radl(ADD_ONE)),
                _ => (
                    "reconfigure",
                    server
                        .put(&format!("{base}/reconfigure"))
                        .user(USER)
                        .radl("contextualize ()\n"),
                ),
            };
            answers.push((what.to_string(), request.send()));
        }
        answers
    });
    let failed: Vec<String> = answers
        .iter()
        .filter(|(_, answer)| answer.status != 200)
        .map(|(what, answer)| format!("{what}: {} {}", answer.status, answer.text()))
        .collect();
    assert!(failed.is_empty(), "{} failed: {failed:#?}", failed.len());
    // Each add made exactly one VM, each under its own id.
    let mut added: Vec<String> = answers
        .iter()
        .filter(|(what, _)| what == "add")
        .map(|(_, answer)| answer.text())
        .collect();
    let adds = added.len();
    added.sort();
    added.dedup();
    assert_eq!(added.len(), adds, "two adds answered the same VM");
    assert!(added.iter().all(|uri| !uri.contains('\n')), "{added:?}");
    let mut ids = vm_ids(&server, &inf);
    ids.sort_unstable();
    assert_eq!(ids, (0..(2 + adds) as u32).collect::<Vec<_>>());
}

#[test]
fn concurrent_mixed_writes_never_answer_a_conflict() {
    let (_dir, server) = temp_server();
    let inf = create(&server, USER, RADL_NO_CTX);
    let base = format!("/infrastructures/{inf}");
    let answers = in_parallel(12, |n| {
        let mut answers = Vec::new();
        for round in 0..4 {
            let kind = (n + round) % 4;
            let answer = match kind {
                0 => {
                    // Add one, then remove what was added: both must succeed.
                    let added = server.post(&base).user(USER).radl(ADD_ONE).send();
                    let vm = added.text().rsplit('/').next().unwrap_or("").to_string();
                    answers.push(("add".to_string(), added));
                    server.delete(&format!("{base}/vms/{vm}")).user(USER).send()
                }
                1 => server
                    .put(&format!("{base}/reconfigure"))
                    .user(USER)
                    .radl("contextualize ()\n")
                    .send(),
                2 => server.put(&format!("{base}/stop")).user(USER).send(),
                _ => server.put(&format!("{base}/start")).user(USER).send(),
            };
            let what = ["remove", "reconfigure", "stop", "start"][kind];
            answers.push((what.to_string(), answer));
        }
        answers
    });
    let failed: Vec<String> = answers
        .iter()
        .filter(|(_, answer)| answer.status != 200)
        .map(|(what, answer)| format!("{what}: {} {}", answer.status, answer.text()))
        .collect();
    assert!(failed.is_empty(), "{} failed: {failed:#?}", failed.len());
    // Every VM that was added was removed again.
    let mut ids = vm_ids(&server, &inf);
    ids.sort_unstable();
    assert_eq!(ids, vec![0, 1]);
}

#[test]
fn every_other_write_route_under_concurrency_answers_200() {
    let (_dir, server) = temp_server();
    let created = server
        .post("/infrastructures")
        .user(USER)
        .header("Content-Type", "text/yaml")
        .body(TOSCA)
        .send()
        .expect(200);
    let inf = id_of(&created.text());
    let base = format!("/infrastructures/{inf}");
    let answers = in_parallel(12, |n| {
        let mut answers = Vec::new();
        for round in 0..3 {
            let (what, request) = match (n + round) % 6 {
                // TOSCA adds scaling between 1 and 3 servers: adds and removals.
                0 => (
                    "tosca add",
                    server
                        .post(&base)
                        .user(USER)
                        .header("Content-Type", "text/yaml")
                        .body(scaled(1 + (n as u32 % 3))),
                ),
                1 => (
                    "change owners",
                    server
                        .post(&format!("{base}/authorization"))
                        .user(USER)
                        .header("Content-Type", "application/json")
                        .body(format!(r#"{{"username":"co{n}","password":"p"}}"#)),
                ),
                2 => (
                    "reconfigure",
                    server
                        .put(&format!("{base}/reconfigure"))
                        .user(USER)
                        .radl("contextualize ()\n"),
                ),
                3 => ("stop", server.put(&format!("{base}/stop")).user(USER)),
                4 => ("start", server.put(&format!("{base}/start")).user(USER)),
                // A reader among the writers.
                _ => ("vm list", server.get(&base).user(USER)),
            };
            answers.push((what.to_string(), request.send()));
        }
        answers
    });
    let failed: Vec<String> = answers
        .iter()
        .filter(|(_, answer)| answer.status != 200)
        .map(|(what, answer)| format!("{what}: {} {}", answer.status, answer.text()))
        .collect();
    assert!(failed.is_empty(), "{} failed: {failed:#?}", failed.len());
    // Every owner added concurrently is there: no change of owners lost another.
    let owners = server
        .get(&format!("{base}/authorization"))
        .user(USER)
        .send()
        .expect(200)
        .text();
    let added = answers.iter().filter(|(w, _)| w == "change owners").count();
    assert_eq!(owners.lines().count(), 1 + added, "{owners}");
}

/// A cloud whose VM stops wait until the test opens their gate, so a few stops
/// fill a VM's mailbox for as long as the test needs, and whose launches of a
/// system named `slow` take 300 ms, so adds queue.
struct SlowStops {
    gate: tokio::sync::watch::Receiver<bool>,
    /// How many stops have reached the cloud (and wait at the gate).
    started: Arc<std::sync::atomic::AtomicUsize>,
}

impl CloudConnector for SlowStops {
    fn kind(&self) -> &'static str {
        "SlowStops"
    }
    fn launch(&self, request: LaunchRequest, _: &CloudCredentials) -> CloudFuture<LaunchedVm> {
        let pause = if request.system == "slow" { 300 } else { 0 };
        Box::pin(async move {
            actix_web::rt::time::sleep(Duration::from_millis(pause)).await;
            Ok(LaunchedVm {
                cloud_vm_id: format!("s{}", request.vm_id.0),
                facts: vec![FeatureFact::text("state", "running")],
            })
        })
    }
    fn stop(&self, _: &CloudVmRef, _: &CloudCredentials) -> CloudFuture<()> {
        let mut gate = self.gate.clone();
        self.started
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Box::pin(async move {
            let _ = gate.wait_for(|open| *open).await;
            Ok(())
        })
    }
    fn start(&self, _: &CloudVmRef, _: &CloudCredentials) -> CloudFuture<()> {
        ready(())
    }
    fn reboot(&self, _: &CloudVmRef, _: &CloudCredentials) -> CloudFuture<()> {
        ready(())
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

const SLOW_AUTH: &str = "type = InfrastructureManager; username = racer; password = pass-racer\\nid = s; type = SlowStops";

const FOUR_VMS: &str = "network privada ()
system node (
cpu.count>=1 and
memory.size>=512m and
net_interface.0.connection = 'privada' and
disk.0.os.name='linux'
)
deploy node 4
contextualize ()
";

/// What a test holds of its `SlowStops` cloud: the gate its stops wait at, and the
/// count of stops that reached it.
struct Gate {
    open: tokio::sync::watch::Sender<bool>,
    started: Arc<std::sync::atomic::AtomicUsize>,
}

/// A server whose `SlowStops` VM stops wait until the returned gate is opened.
fn slow_server(dir: &std::path::Path, room_wait: Duration) -> (TestServer, Gate) {
    let (open, closed) = tokio::sync::watch::channel(false);
    let started = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut settings = settings(dir);
    let mut connectors = Connectors::builtin();
    connectors.register(Arc::new(SlowStops {
        gate: closed,
        started: Arc::clone(&started),
    }));
    settings.connectors = connectors;
    settings.actors.mailbox_capacity = 1;
    settings.actors.room_wait = room_wait;
    (TestServer::start_with(settings), Gate { open, started })
}

/// Fills every VM's mailbox with client stops, then stops the infrastructure while
/// they are pending. Answers: the infrastructure's stop, then the clients' stops.
///
/// The scene is set step by step, never by a pause: one client stop per VM until
/// all four are held at the gate (each VM's actor is busy), then two more per VM:
/// one waits in the mailbox (capacity 1), the other is refused at once. Four
/// refusals prove every mailbox full, and they stay full until the gate opens:
/// `open_while_waiting` opens it shortly after the infrastructure's stop is sent,
/// otherwise it opens once that stop has answered.
fn stop_with_full_vm_mailboxes(
    server: &TestServer,
    inf: &str,
    gate: &Gate,
    open_while_waiting: bool,
) -> (Response, Vec<u16>) {
    std::thread::scope(|scope| {
        let (answered, answers) = std::sync::mpsc::channel();
        let send_stop = |vm: u32| {
            let request = server
                .put(&format!("/infrastructures/{inf}/vms/{vm}/stop"))
                .auth(SLOW_AUTH);
            let answered = answered.clone();
            scope.spawn(move || {
                let _ = answered.send(request.send().status);
            });
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        for vm in 0..4 {
            send_stop(vm);
        }
        while gate.started.load(std::sync::atomic::Ordering::SeqCst) < 4 {
            assert!(
                std::time::Instant::now() < deadline,
                "the first stops never reached the cloud"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        for vm in (0..4).flat_map(|vm| [vm, vm]) {
            send_stop(vm);
        }
        drop(answered);
        let mut statuses = Vec::new();
        while statuses.iter().filter(|s| **s == 503).count() < 4 {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match answers.recv_timeout(left) {
                Ok(status) => statuses.push(status),
                Err(_) => panic!("the VMs' mailboxes never filled: {statuses:?}"),
            }
        }
        if open_while_waiting {
            scope.spawn(|| {
                std::thread::sleep(Duration::from_millis(300));
                let _ = gate.open.send(true);
            });
        }
        let stop = server
            .put(&format!("/infrastructures/{inf}/stop"))
            .auth(SLOW_AUTH)
            .send();
        let _ = gate.open.send(true);
        statuses.extend(answers.iter());
        (stop, statuses)
    })
}

#[test]
fn an_infrastructure_stop_waits_for_room_in_full_vm_mailboxes_and_reaches_every_vm() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (server, gate) = slow_server(dir.path(), Duration::from_secs(10));
    let created = server
        .post("/infrastructures")
        .auth(SLOW_AUTH)
        .radl(FOUR_VMS)
        .send()
        .expect(200);
    let inf = id_of(&created.text());
    let (stop, statuses) = stop_with_full_vm_mailboxes(&server, &inf, &gate, true);
    // The clients' own burst met full mailboxes (so the scene was set) ...
    assert!(statuses.contains(&503), "{statuses:?}");
    assert!(
        statuses.iter().all(|s| matches!(s, 200 | 503)),
        "{statuses:?}"
    );
    // ... but the infrastructure's stop is ours: it queued, and reached every VM.
    assert_eq!(stop.status, 200, "{}", stop.text());
    assert_eq!(
        state(&server, USER, &inf),
        json!({"state": {"state": "stopped", "vm_states":
            {"0": "stopped", "1": "stopped", "2": "stopped", "3": "stopped"}}})
    );
}

#[test]
fn an_infrastructure_stop_that_cannot_reach_some_vms_is_503_and_names_them() {
    let dir = tempfile::tempdir().expect("temp dir");
    // Room is awaited for 1 ms only: the VMs busy with the clients' stops are missed.
    let (server, gate) = slow_server(dir.path(), Duration::from_millis(1));
    let created = server
        .post("/infrastructures")
        .auth(SLOW_AUTH)
        .radl(FOUR_VMS)
        .send()
        .expect(200);
    let inf = id_of(&created.text());
    let (stop, statuses) = stop_with_full_vm_mailboxes(&server, &inf, &gate, false);
    assert_eq!(
        stop.status,
        503,
        "{} (the clients' stops: {statuses:?})",
        stop.text()
    );
    assert_eq!(stop.header("retry-after"), Some("1"));
    let text = stop.text();
    assert!(
        text.starts_with("Error in stop operation: Error stopping the infrastructure: VM"),
        "{text}"
    );
    assert!(text.contains("not reached"), "{text}");
    // Whatever it missed, a later stop finishes once the clients' stops are done
    // (the gate is open now): the operation is safe to repeat. Until the clients'
    // queued stops have drained, a repeat may still meet a full mailbox (503).
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let again = server
            .put(&format!("/infrastructures/{inf}/stop"))
            .auth(SLOW_AUTH)
            .send();
        if again.status == 200 {
            break;
        }
        assert_eq!(again.status, 503, "{}", again.text());
        assert!(
            std::time::Instant::now() < deadline,
            "the stop never got through"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(infra_state(&server, USER, &inf), "stopped");
}

#[test]
fn writes_queued_beyond_the_mailbox_capacity_are_503_and_record_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (server, gate) = slow_server(dir.path(), Duration::from_secs(10));
    let _ = gate.open.send(true);
    let created = server
        .post("/infrastructures")
        .auth(SLOW_AUTH)
        .radl(&FOUR_VMS.replace("deploy node 4", "deploy node 1"))
        .send()
        .expect(200);
    let inf = id_of(&created.text());
    let add_slow = "network privada ()
system slow (
cpu.count>=1 and
memory.size>=512m and
net_interface.0.connection = 'privada' and
disk.0.os.name='linux'
)
deploy slow 1
";
    // Each add holds the infrastructure for 300 ms; with a capacity of 1 one
    // waits behind it and the rest are refused at once.
    let answers: Vec<Response> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let add = server
                    .post(&format!("/infrastructures/{inf}"))
                    .auth(SLOW_AUTH)
                    .radl(add_slow);
                scope.spawn(move || add.send())
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a client thread"))
            .collect()
    });
    let done = answers.iter().filter(|a| a.status == 200).count();
    let busy: Vec<&Response> = answers.iter().filter(|a| a.status == 503).collect();
    assert!(done >= 1, "{answers:?}");
    assert!(!busy.is_empty(), "{answers:?}");
    assert_eq!(done + busy.len(), answers.len(), "{answers:?}");
    for answer in busy {
        assert_eq!(answer.header("retry-after"), Some("1"));
        assert!(
            answer.text().starts_with("Server busy"),
            "{}",
            answer.text()
        );
    }
    // Exactly the accepted adds made VMs: the refused ones recorded nothing.
    let list = server
        .get(&format!("/infrastructures/{inf}"))
        .auth(SLOW_AUTH)
        .send()
        .expect(200)
        .text();
    assert_eq!(list.lines().count(), 1 + done, "{list}");
}
