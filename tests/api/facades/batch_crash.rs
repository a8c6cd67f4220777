//! `kill -9` of the real binary while a Batch job runs: after the restart no
//! process of the earlier run survives, and the job runs again exactly once.

use std::time::{Duration, Instant};

use super::batch::{process_state, run_pid, submit, wait_status};
use super::imc::basic;
use crate::harness::*;

const FLAGS: [&str; 7] = [
    "--facades",
    "batch",
    "--batch-user",
    "batch",
    "--batch-password",
    "s3cret",
    "--batch-slots=1",
];

#[test]
fn after_kill_9_the_old_run_is_killed_and_the_job_reruns_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("log");
    let marker = dir.path().join("go");
    // The first run waits for the marker, which only appears after the crash:
    // only a second run can finish.
    let script = format!(
        "echo start; sleep 30 & while [ ! -e {} ]; do sleep 0.05; done; echo done\n",
        marker.display()
    );
    let server = ChildServer::start(&data, &FLAGS);
    let (id, number) = submit(&server, "", &script);
    assert_eq!(number, 1);
    wait_status(&server, &id, "running", Duration::from_secs(10));
    let old = run_pid(&data, &id);
    server.kill();
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        process_state(old).is_some(),
        "the run outlives a kill -9 of its server"
    );
    let server = ChildServer::start(&data, &FLAGS);
    let deadline = Instant::now() + Duration::from_secs(5);
    while process_state(old).is_some() {
        assert!(
            Instant::now() < deadline,
            "the earlier run survives the restart"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::fs::write(&marker, "").expect("marker");
    let done = wait_status(&server, &id, "completed", Duration::from_secs(10));
    assert_eq!(done["job_run_count"], 2, "{done}");
    let stdout = server
        .get(&format!("/jobs/{id}/artifacts/stdout"))
        .auth(&basic("batch", "s3cret"))
        .send()
        .expect(200)
        .text();
    assert_eq!(stdout, "start\ndone\n");
    // No member of the earlier group (its background sleep) is left either.
    assert!(process_state(old).is_none());
    let (_, next) = submit(&server, "", "true\n");
    assert_eq!(next, 2);
    server.kill();
}
