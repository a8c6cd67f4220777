//! The read models are rebuilt from the log at start: after a restart, and after a
//! `kill -9` of the real binary, every infrastructure answers exactly as before, and
//! a contextualization interrupted by the restart resumes and finishes.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::harness::*;
use serde_json::json;

const OWNER: &str = "keeper";

/// Everything part one's read routes answer about an infrastructure, in every
/// representation: (request, status, content type, body).
fn snapshot(server: &impl Api, user: &str, inf: &str) -> BTreeMap<String, (u16, String, String)> {
    let base = format!("/infrastructures/{inf}");
    let mut paths = vec![
        base.clone(),
        format!("{base}/state"),
        format!("{base}/radl"),
        format!("{base}/contmsg"),
        format!("{base}/contmsg?headeronly=1"),
    ];
    for vm in 0..3 {
        for prop in [
            "",
            "/state",
            "/contmsg",
            "/cpu.count",
            "/memory.size",
            "/net_interface.0.ip",
            "/net_interface.0.dns_name",
            "/disk.0.os.credentials.new.password",
        ] {
            paths.push(format!("{base}/vms/{vm}{prop}"));
        }
    }
    let mut answers = BTreeMap::new();
    for path in paths {
        for accept in ["*/*", "application/json"] {
            let answer = server.get(&path).user(user).accept(accept).send();
            let key = format!("GET {path} [{accept}]");
            answers.insert(
                key,
                (
                    answer.status,
                    answer.content_type().to_string(),
                    answer.text(),
                ),
            );
        }
    }
    answers
}

/// The caller's list, as a set (IM orders it by recent use, which a restart
/// forgets).
fn listed(server: &impl Api, user: &str) -> Vec<String> {
    let mut uris: Vec<String> = list(server, user).lines().map(str::to_string).collect();
    uris.sort_unstable();
    uris
}

fn assert_same(
    before: &BTreeMap<String, (u16, String, String)>,
    after: &BTreeMap<String, (u16, String, String)>,
) {
    assert_eq!(before.len(), after.len());
    for (key, answer) in before {
        assert_eq!(Some(answer), after.get(key), "{key} changed");
    }
}

/// A world of infrastructures in different states: one whose contextualization
/// ran, one with a stopped VM, one stopped, one destroyed, one without deploys.
fn populate(server: &impl Api) -> Vec<String> {
    let contextualized = create(server, OWNER, RADL_CTX);
    let partly_stopped = create(server, OWNER, RADL_NO_CTX);
    server
        .put(&format!("/infrastructures/{partly_stopped}/vms/1/stop"))
        .user(OWNER)
        .send()
        .expect(200);
    let stopped = create(server, OWNER, RADL_NO_CTX);
    server
        .put(&format!("/infrastructures/{stopped}/stop"))
        .user(OWNER)
        .send()
        .expect(200);
    let destroyed = create(server, OWNER, RADL_NO_CTX);
    server
        .delete(&format!("/infrastructures/{destroyed}"))
        .user(OWNER)
        .send()
        .expect(200);
    let empty = create(server, OWNER, "network privada ()\n");
    wait_for_state(
        server,
        OWNER,
        &contextualized,
        "configured",
        Duration::from_secs(20),
    );
    vec![contextualized, partly_stopped, stopped, destroyed, empty]
}

fn everything(
    server: &impl Api,
    infrastructures: &[String],
) -> BTreeMap<String, (u16, String, String)> {
    let mut all = BTreeMap::new();
    for inf in infrastructures {
        all.extend(snapshot(server, OWNER, inf));
        // A stranger's view is part of the answers too.
        all.extend(
            snapshot(server, "stranger", inf)
                .into_iter()
                .map(|(k, v)| (format!("stranger {k}"), v)),
        );
    }
    all
}

#[test]
fn after_a_restart_every_infrastructure_answers_exactly_as_before() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = TestServer::start(dir.path());
    let infrastructures = populate(&server);
    let before = everything(&server, &infrastructures);
    let list_before = listed(&server, OWNER);
    assert_eq!(list_before.len(), 4, "the destroyed one is not listed");
    assert_eq!(
        before[&format!(
            "GET /infrastructures/{}/vms/1/state [*/*]",
            infrastructures[1]
        )]
            .2,
        "stopped"
    );
    server.stop();

    let server = TestServer::start(dir.path());
    let after = everything(&server, &infrastructures);
    assert_same(&before, &after);
    assert_eq!(listed(&server, OWNER), list_before);
    assert_eq!(listed(&server, "stranger"), Vec::<String>::new());
    // The restarted server goes on from where the log ends.
    server
        .put(&format!("/infrastructures/{}/start", infrastructures[2]))
        .user(OWNER)
        .send()
        .expect(200);
    assert_eq!(
        infra_state(&server, OWNER, &infrastructures[2]),
        "configured"
    );
    let newer = create(&server, OWNER, RADL_NO_CTX);
    assert_ne!(newer, infrastructures[0]);
    assert_eq!(listed(&server, OWNER).len(), 5);
}

#[test]
fn a_restart_in_the_middle_of_contextualization_resumes_and_finishes_it() {
    const CONTEXTUALIZATION_MS: u64 = 3_000;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut settings = settings(dir.path());
    settings.contextualization_delay = Duration::from_millis(CONTEXTUALIZATION_MS);
    let server = TestServer::start_with(settings.clone());
    // The run's deadline counts from its recorded start, which is after this.
    let created_at = Instant::now();
    let inf = create(&server, OWNER, RADL_CTX);
    let contmsg_before = server
        .get(&format!("/infrastructures/{inf}/contmsg"))
        .user(OWNER)
        .send()
        .expect(200)
        .text();
    assert!(
        contmsg_before.contains(": Select master VM\n"),
        "{contmsg_before}"
    );
    assert_eq!(infra_state(&server, OWNER, &inf), "running");
    server.stop();

    let server = TestServer::start_with(settings);
    let state_now = infra_state(&server, OWNER, &inf);
    // Only when the run cannot have ended yet is its state known; a slow machine
    // may take longer than the run to stop and start the server.
    if created_at.elapsed() < Duration::from_millis(CONTEXTUALIZATION_MS - 200) {
        assert_eq!(
            state_now, "running",
            "still contextualizing after the restart"
        );
    }
    wait_for_state(&server, OWNER, &inf, "configured", Duration::from_secs(10));
    assert_eq!(
        state(&server, OWNER, &inf),
        json!({"state": {"state": "configured", "vm_states": {"0": "configured", "1": "configured"}}})
    );
    let contmsg_after = server
        .get(&format!("/infrastructures/{inf}/contmsg?headeronly=yes"))
        .user(OWNER)
        .send()
        .expect(200)
        .text();
    assert!(
        contmsg_after.starts_with(&contmsg_before),
        "the log of the run goes on: {contmsg_before:?} then {contmsg_after:?}"
    );
    assert_eq!(
        contmsg_after.matches("Select master VM").count(),
        1,
        "the run resumed rather than restarted: {contmsg_after}"
    );
    assert!(
        contmsg_after.len() > contmsg_before.len(),
        "the run finished: {contmsg_after}"
    );
}

#[test]
fn after_kill_9_of_the_binary_every_infrastructure_answers_as_before() {
    let dir = tempfile::tempdir().expect("temp dir");
    let flags = ["--contextualization-delay-ms", "400"];
    let server = ChildServer::start(dir.path(), &flags);
    let infrastructures = populate(&server);
    let before = everything(&server, &infrastructures);
    let list_before = listed(&server, OWNER);
    // One more, killed in the middle of its contextualization.
    let interrupted = create(&server, OWNER, RADL_CTX);
    assert_eq!(infra_state(&server, OWNER, &interrupted), "running");
    server.kill();

    let server = ChildServer::start(dir.path(), &flags);
    let after = everything(&server, &infrastructures);
    assert_same(&before, &after);
    let mut list_after = listed(&server, OWNER);
    list_after.retain(|uri| !uri.ends_with(&interrupted));
    assert_eq!(list_after, list_before);
    wait_for_state(
        &server,
        OWNER,
        &interrupted,
        "configured",
        Duration::from_secs(20),
    );
    server.kill();
}

#[test]
fn stopping_or_destroying_during_contextualization_wins_over_its_end() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = TestServer::start(dir.path());
    let stopped = create(&server, OWNER, RADL_CTX);
    let destroyed = create(&server, OWNER, RADL_CTX);
    server
        .put(&format!("/infrastructures/{stopped}/stop"))
        .user(OWNER)
        .send()
        .expect(200);
    server
        .delete(&format!("/infrastructures/{destroyed}"))
        .user(OWNER)
        .send()
        .expect(200);
    // Past the end of the contextualization (600 ms in tests).
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(
        state(&server, OWNER, &stopped),
        json!({"state": {"state": "stopped", "vm_states": {"0": "stopped", "1": "stopped"}}}),
        "the end of a contextualization does not start stopped VMs"
    );
    server
        .get(&format!("/infrastructures/{destroyed}"))
        .user(OWNER)
        .send()
        .expect(404);
    server.stop();

    let server = TestServer::start(dir.path());
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(infra_state(&server, OWNER, &stopped), "stopped");
    server
        .get(&format!("/infrastructures/{destroyed}/state"))
        .user(OWNER)
        .send()
        .expect(404);
    server
        .put(&format!("/infrastructures/{stopped}/start"))
        .user(OWNER)
        .send()
        .expect(200);
    wait_for_state(
        &server,
        OWNER,
        &stopped,
        "configured",
        Duration::from_secs(10),
    );
    assert_eq!(
        listed(&server, OWNER),
        vec![format!("http://{HOST}/infrastructures/{stopped}")]
    );
}
