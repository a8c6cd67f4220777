//! A started MLBench run loses what it runs on through the IM API: its
//! infrastructure destroyed, or one of its pods stopped or removed. The run
//! fails with the reason in its stderr and its workers die, as the follower
//! tells it (runs never poll).

use std::time::{Duration, Instant};

use serde_json::Value;

use super::mlbench::*;
use crate::harness::*;

const IM_AUTH: &str = "id = im; type = InfrastructureManager; username = mlbench";

/// Starts a one-worker run that sleeps; answers its worker's pid and its
/// infrastructure's id.
fn started_sleeper(server: &TestServer, name: &str) -> (i32, String) {
    custom_run(server, name, "1", "mpi", "sleep 60").expect(201);
    let deadline = Instant::now() + Duration::from_secs(20);
    let pid = loop {
        let detail = run(server, 1);
        if let Some(pid) = detail["job_metadata"]["workhorse_pid"].as_i64() {
            break pid as i32;
        }
        assert!(Instant::now() < deadline, "never started: {detail}");
        std::thread::sleep(Duration::from_millis(50));
    };
    let list = server
        .get("/infrastructures")
        .auth(IM_AUTH)
        .send()
        .expect(200)
        .text();
    (pid, id_of(list.lines().next().expect("one infrastructure")))
}

fn wait_gone(pid: i32) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::path::Path::new(&format!("/proc/{pid}")).exists() && !is_zombie(pid) {
        assert!(Instant::now() < deadline, "the worker survives its pod");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn stderr_of(detail: &Value) -> Vec<String> {
    detail["job_metadata"]["stderr"]
        .as_array()
        .map(|lines| {
            lines
                .iter()
                .filter_map(|line| line.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_run_whose_infrastructure_is_destroyed_through_the_im_api_fails() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start(dir.path());
    let (pid, inf) = started_sleeper(&server, "lost");
    server
        .delete(&format!("/infrastructures/{inf}"))
        .auth(IM_AUTH)
        .send()
        .expect(200);
    let failed = wait_run(&server, 1, "failed", Duration::from_secs(20));
    assert!(failed["finished_at"].is_string(), "{failed}");
    assert!(
        stderr_of(&failed)
            .iter()
            .any(|line| line.contains("infrastructure was destroyed")),
        "{failed}"
    );
    wait_gone(pid);
    // Admission counts it no more.
    custom_run(&server, "after", "1", "mpi", "true").expect(201);
}

#[test]
fn a_run_whose_pod_is_stopped_through_the_im_api_fails_and_its_worker_dies() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start(dir.path());
    let (pid, inf) = started_sleeper(&server, "stopped");
    server
        .put(&format!("/infrastructures/{inf}/vms/0/stop"))
        .auth(IM_AUTH)
        .send()
        .expect(200);
    let failed = wait_run(&server, 1, "failed", Duration::from_secs(20));
    assert_eq!(
        stderr_of(&failed),
        ["pod 0 of the run's infrastructure is stopped"],
        "{failed}"
    );
    wait_gone(pid);
    // The run's end destroys its infrastructure, and admission counts it no more.
    let deadline = Instant::now() + Duration::from_secs(20);
    while server
        .get(&format!("/infrastructures/{inf}/state"))
        .auth(IM_AUTH)
        .send()
        .status
        != 404
    {
        assert!(Instant::now() < deadline, "the run's infrastructure stands");
        std::thread::sleep(Duration::from_millis(50));
    }
    custom_run(&server, "after", "1", "mpi", "true").expect(201);
}

#[test]
fn a_run_whose_pod_is_removed_through_the_im_api_fails() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start(dir.path());
    let (pid, inf) = started_sleeper(&server, "removed");
    server
        .delete(&format!("/infrastructures/{inf}/vms/0"))
        .auth(IM_AUTH)
        .send()
        .expect(200);
    let failed = wait_run(&server, 1, "failed", Duration::from_secs(20));
    let stderr = stderr_of(&failed);
    assert!(
        stderr == ["pod 0 of the run's infrastructure is removed"]
            || stderr == ["pod 0 of the run's infrastructure is deleting"],
        "{failed}"
    );
    wait_gone(pid);
}
