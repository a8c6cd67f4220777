//! `kill -9` of the real binary while an MLBench run's workers run: after the
//! restart the run is `failed` with the reason in its stderr, no worker of it
//! survives, its infrastructure is destroyed, and a new run starts.

use std::path::Path;
use std::time::{Duration, Instant};

use super::batch::process_state;
use super::mlbench::{custom_run, run, wait_run};
use crate::harness::*;

const FLAGS: [&str; 4] = ["--facades", "mlbench", "--mlbench-sample-ms", "500"];

/// The pid of a rank's worker, from its sandbox.
fn worker_pid(data: &Path, run: u64, rank: u32) -> i32 {
    let path = data
        .join("mlbench")
        .join(run.to_string())
        .join(rank.to_string())
        .join("run.pid");
    let text = std::fs::read_to_string(path).expect("pid file");
    text.split_whitespace()
        .next()
        .and_then(|p| p.parse().ok())
        .expect("a pid")
}

#[test]
fn after_kill_9_a_started_run_fails_its_workers_die_and_a_new_run_starts() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("log");
    let server = ChildServer::start(&data, &FLAGS);
    // A background child too: the whole group must go.
    custom_run(&server, "long", "2", "gloo", "sleep 60 & wait").expect(201);
    wait_run(&server, 1, "started", Duration::from_secs(20));
    let deadline = Instant::now() + Duration::from_secs(10);
    while run(&server, 1)["job_metadata"]["workhorse_pid"].is_null() {
        assert!(Instant::now() < deadline, "the workers never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    let inf = {
        let detail = run(&server, 1);
        assert_eq!(
            detail["job_metadata"]["pods"].as_array().map(Vec::len),
            Some(2),
            "{detail}"
        );
        detail
    };
    drop(inf);
    let pids = [worker_pid(&data, 1, 0), worker_pid(&data, 1, 1)];
    // An acknowledged metric point survives the kill.
    super::mlbench::post_form(
        &server,
        "/api/metrics/",
        &[
            ("run_id", "1"),
            ("name", "kept"),
            ("value", "42"),
            ("date", "2024-05-01 10:00:00"),
        ],
        None,
    )
    .expect(201);
    server.kill();
    std::thread::sleep(Duration::from_millis(200));
    for pid in pids {
        assert!(
            process_state(pid).is_some(),
            "a worker outlives a kill -9 of its server"
        );
    }
    let server = ChildServer::start(&data, &FLAGS);
    let failed = run(&server, 1);
    assert_eq!(failed["state"], "failed", "{failed}");
    assert!(failed["finished_at"].is_string(), "{failed}");
    let stderr: Vec<&str> = failed["job_metadata"]["stderr"]
        .as_array()
        .map(|l| l.iter().filter_map(|v| v.as_str()).collect())
        .unwrap_or_default();
    assert!(stderr.contains(&"interrupted by restart"), "{failed}");
    let deadline = Instant::now() + Duration::from_secs(5);
    while pids.iter().any(|pid| process_state(*pid).is_some()) {
        assert!(Instant::now() < deadline, "a worker survives the restart");
        std::thread::sleep(Duration::from_millis(20));
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.get("/api/pods/").send().expect(200).json() != serde_json::json!([]) {
        assert!(
            Instant::now() < deadline,
            "the interrupted run's pods remain"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let kept = server
        .get("/api/metrics/1/?metric_type=run&metric_filter=kept")
        .send()
        .expect(200)
        .json();
    assert_eq!(kept["kept"][0]["value"], "42", "{kept}");
    custom_run(&server, "next", "1", "mpi", "echo again").expect(201);
    let done = wait_run(&server, 2, "finished", Duration::from_secs(20));
    assert_eq!(done["job_metadata"]["stdout"], serde_json::json!(["again"]));
    server.kill();
    // Both folds of the runs' streams agree.
    let data_arg = data.display().to_string();
    let verified = infralog(&["verify", "--data-dir", &data_arg]);
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stdout)
    );
}

#[test]
fn after_kill_9_a_waiting_run_waits_again_and_starts_once_room_is_made() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("log");
    let flags = [
        "--facades",
        "mlbench",
        "--mlbench-admission",
        "queue",
        "--mlbench-max-workers",
        "1",
    ];
    let server = ChildServer::start(&data, &flags);
    custom_run(&server, "first", "1", "mpi", "sleep 60").expect(201);
    wait_run(&server, 1, "started", Duration::from_secs(20));
    let waiting = custom_run(&server, "second", "1", "mpi", "echo second").expect(201);
    assert_eq!(waiting.json()["state"], "initialized");
    server.kill();
    let server = ChildServer::start(&data, &flags);
    assert_eq!(run(&server, 1)["state"], "failed");
    let done = wait_run(&server, 2, "finished", Duration::from_secs(20));
    assert_eq!(
        done["job_metadata"]["stdout"],
        serde_json::json!(["second"])
    );
    server.kill();
}
