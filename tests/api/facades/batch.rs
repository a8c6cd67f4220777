//! The MODAClouds Batch facade (`/jobs…`) as a client sees it: submissions and
//! their checks, real processes with their exit codes and artifacts, the
//! actions and their state transitions, FIFO slots, and a disabled facade.

use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use infralog::app::Settings;
use infralog::facades::FacadeSettings;
use serde_json::Value;

use super::imc::basic;
use crate::harness::*;

pub const SCRIPT: &str =
    "echo \"args:$*\"; echo out > \"$MODACLOUDS_BATCH_OUTPUT/r.txt\"; echo err >&2\n";

fn auth() -> String {
    basic("batch", "s3cret")
}

pub fn batch_settings(dir: &Path, slots: u32) -> Settings {
    let mut settings = settings(dir);
    let mut facades = FacadeSettings::enable(&["batch".to_string()]).expect("batch exists");
    if let Some(batch) = facades.batch.as_mut() {
        batch.user = Some("batch".into());
        batch.password = Some("s3cret".into());
        batch.slots = slots;
        batch.max_upload_bytes = 64 * 1024;
    }
    settings.facades = facades;
    settings
}

/// A gzip tar holding `entries`.
pub fn tgz(entries: &[(&str, &str)]) -> Vec<u8> {
    let encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut builder = tar::Builder::new(encoder);
    for (name, content) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_size(content.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder
            .append_data(&mut header, name, content.as_bytes())
            .expect("append");
    }
    builder.into_inner().expect("tar").finish().expect("gzip")
}

/// A multipart body of `(name, bytes)` parts, and its Content-Type.
pub fn multipart(parts: &[(&str, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "----infralog-test-boundary";
    let mut body = Vec::new();
    for (name, bytes) in parts {
        write!(
            body,
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{name}\"\r\n\r\n"
        )
        .expect("write");
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    write!(body, "--{boundary}--\r\n").expect("write");
    (format!("multipart/form-data; boundary={boundary}"), body)
}

pub fn post_form(server: &impl Api, parts: &[(&str, &[u8])]) -> Response {
    let (content_type, body) = multipart(parts);
    server
        .post("/jobs")
        .auth(&auth())
        .header("Content-Type", &content_type)
        .body(body)
        .send()
}

/// Submits `script` as `run.sh` with `arguments`; answers (job id, backend id).
pub fn submit(server: &impl Api, arguments: &str, script: &str) -> (String, u64) {
    let bundle = tgz(&[("run.sh", script)]);
    let answer = post_form(
        server,
        &[
            ("job-name", b"j"),
            ("job-arguments", arguments.as_bytes()),
            ("job-bundle", &bundle),
        ],
    )
    .expect(200)
    .json();
    let id = answer["job_id"].as_str().expect("a job id").to_string();
    assert!(uuid::Uuid::try_parse(&id).is_ok(), "{answer}");
    (id, answer["backend_id"].as_u64().expect("a backend id"))
}

pub fn job(server: &impl Api, id: &str) -> Value {
    server
        .get(&format!("/jobs/{id}"))
        .auth(&auth())
        .send()
        .expect(200)
        .json()
}

pub fn wait_status(server: &impl Api, id: &str, wanted: &str, timeout: Duration) -> Value {
    let deadline = Instant::now() + timeout;
    loop {
        let detail = job(server, id);
        if detail["job_status"] == wanted {
            return detail;
        }
        assert!(Instant::now() < deadline, "never {wanted}: {detail}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn act(server: &impl Api, id: &str, action: &str) -> Response {
    server
        .put(&format!("/jobs/{id}/{action}"))
        .auth(&auth())
        .send()
}

fn artifact(server: &impl Api, id: &str, name: &str) -> Response {
    server
        .get(&format!("/jobs/{id}/artifacts/{name}"))
        .auth(&auth())
        .send()
}

/// The pid of a job's current run, from its sandbox.
pub fn run_pid(data: &Path, id: &str) -> i32 {
    let text =
        std::fs::read_to_string(data.join("batch").join(id).join("run.pid")).expect("pid file");
    text.split_whitespace()
        .next()
        .and_then(|p| p.parse().ok())
        .expect("a pid")
}

/// The `/proc` state letter of `pid`, `None` when it is gone (or a zombie).
pub fn process_state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let state = stat.rsplit_once(')')?.1.trim_start().chars().next()?;
    (state != 'Z').then_some(state)
}

fn list(server: &impl Api) -> Value {
    server.get("/jobs").auth(&auth()).send().expect(200).json()
}

#[test]
fn the_facade_is_off_by_default_and_needs_credentials_when_on() {
    let (_dir, plain) = temp_server();
    assert_eq!(plain.get("/jobs").auth(&auth()).send().status, 404);
    let dir = tempfile::tempdir().expect("temp dir");
    let server = TestServer::start_with(batch_settings(dir.path(), 2));
    let refused = server.get("/jobs").send();
    assert_eq!(refused.status, 401);
    assert!(refused.json()["message"].is_string());
    assert_eq!(
        server
            .get("/jobs")
            .auth(&basic("batch", "wrong"))
            .send()
            .status,
        401
    );
    assert_eq!(list(&server), Value::Array(vec![]));
}

#[test]
fn a_job_runs_with_its_arguments_and_real_artifacts_and_exit_codes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = TestServer::start_with(batch_settings(dir.path(), 2));
    let (first, number) = submit(&server, "a b", &format!("{SCRIPT}env > \"$HOME/env\"\n"));
    assert_eq!(number, 1);
    let (second, number) = submit(&server, "", "exit 3\n");
    assert_eq!(number, 2);
    let done = wait_status(&server, &first, "completed", Duration::from_secs(10));
    assert_eq!(done["exit_status"], 0);
    assert_eq!(done["exit_by_signal"], false);
    assert_eq!(done["job_run_count"], 1);
    assert_eq!(done["previous_job_status"], "running");
    assert_eq!(done["backend_job_status"], "completed");
    assert_eq!(done["cluster_id"], 1);
    assert_eq!(done["job_universe"], "vanilla");
    assert!(
        done["job_completion_date"].as_i64().unwrap_or(0) > 0,
        "{done}"
    );
    assert!(
        done["job_start_date"]
            .as_str()
            .is_some_and(|d| d.ends_with(" -0000")),
        "{done}"
    );
    let stdout = artifact(&server, &first, "stdout").expect(200);
    assert_eq!(stdout.content_type(), "text/plain");
    assert_eq!(stdout.text(), "args:a b\n");
    assert_eq!(
        artifact(&server, &first, "stderr").expect(200).text(),
        "err\n"
    );
    let output = artifact(&server, &first, "output").expect(200);
    assert_eq!(output.content_type(), "application/gzip");
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(output.body.as_slice()));
    let mut files = Vec::new();
    for entry in archive.entries().expect("a tar") {
        let mut entry = entry.expect("an entry");
        let name = entry.path().expect("a path").display().to_string();
        let mut content = String::new();
        entry.read_to_string(&mut content).expect("text");
        files.push((name, content));
    }
    assert_eq!(files, vec![("r.txt".to_string(), "out\n".to_string())]);
    // The job never saw the server's environment (this test process's).
    let env = std::fs::read_to_string(dir.path().join("batch").join(&first).join("scratch/env"))
        .expect("the job's env");
    assert!(!env.contains("CARGO"), "{env}");
    assert!(env.contains("LANG=C"), "{env}");
    let failed = wait_status(&server, &second, "completed", Duration::from_secs(10));
    assert_eq!(
        (
            failed["exit_status"].clone(),
            failed["exit_by_signal"].clone()
        ),
        (3.into(), false.into())
    );
    let rows = list(&server);
    assert_eq!(rows[0]["id"], first.as_str());
    assert_eq!(rows[1]["id"], second.as_str());
    assert_eq!(rows[1]["job_status"], "completed");
}

#[test]
fn refused_submissions_record_nothing_and_errors_follow_the_spec() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = TestServer::start_with(batch_settings(dir.path(), 1));
    let good = tgz(&[("run.sh", "sleep 30\n")]);
    type Case = (Vec<(&'static str, Vec<u8>)>, u16, &'static str);
    let cases: Vec<Case> = vec![
        (
            vec![("job-bundle", good.clone())],
            400,
            "Missing required parameter job-name",
        ),
        (
            vec![("job-name", b"j".to_vec())],
            400,
            "Missing required parameter job-bundle",
        ),
        (
            vec![
                ("job-name", b"j".to_vec()),
                ("job-bundle", tgz(&[("other.sh", "x")])),
            ],
            400,
            "Invalid bundle: no run.sh at its root",
        ),
        (
            vec![
                ("job-name", b"j".to_vec()),
                ("job-bundle", b"not gzip".to_vec()),
            ],
            400,
            "Invalid bundle: not a gzip archive",
        ),
        (
            vec![
                ("job-name", b"j".to_vec()),
                ("job-bundle", good.clone()),
                ("job-notification", b"ftp://x".to_vec()),
            ],
            400,
            "",
        ),
        (
            vec![
                ("job-name", b"j".to_vec()),
                ("job-bundle", vec![0x1f; 70 * 1024]),
            ],
            413,
            "",
        ),
    ];
    for (parts, status, text) in cases {
        let parts: Vec<(&str, &[u8])> = parts.iter().map(|(n, b)| (*n, b.as_slice())).collect();
        let answer = post_form(&server, &parts);
        assert_eq!(answer.status, status, "{}", answer.text());
        if !text.is_empty() {
            assert_eq!(answer.json()["message"], text);
        }
    }
    let json = server
        .post("/jobs")
        .auth(&auth())
        .header("Content-Type", "application/json")
        .body("{}")
        .send();
    assert_eq!(json.status, 415);
    assert_eq!(list(&server), Value::Array(vec![]));
    assert!(std::fs::read_dir(dir.path().join("batch"))
        .expect("root")
        .next()
        .is_none());
    // The first accepted job is still number 1: refusals take no number.
    let (id, number) = submit(&server, "", "sleep 30\n");
    assert_eq!(number, 1);
    let unknown = act(&server, &id, "frobnicate");
    assert_eq!(unknown.status, 400);
    assert_eq!(unknown.json()["message"], "Action frobnicate is not known");
    let ghost = uuid::Uuid::new_v4().to_string();
    let missing = server.get(&format!("/jobs/{ghost}")).auth(&auth()).send();
    assert_eq!(missing.status, 404);
    assert_eq!(
        missing.json()["message"],
        format!("Job {ghost} doesn't exist")
    );
    assert_eq!(act(&server, &ghost, "hold").status, 404);
    assert_eq!(artifact(&server, &ghost, "stdout").status, 404);
    assert_eq!(
        server
            .delete(&format!("/jobs/{id}"))
            .auth(&auth())
            .send()
            .status,
        200
    );
}

#[test]
fn suspend_continue_remove_and_hold_follow_the_table_with_real_signals() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = TestServer::start_with(batch_settings(dir.path(), 2));
    let (id, _) = submit(&server, "", "sleep 30\n");
    wait_status(&server, &id, "running", Duration::from_secs(10));
    let pid = run_pid(dir.path(), &id);
    let answer = act(&server, &id, "suspend").expect(200).json();
    assert_eq!(answer["result"], serde_json::json!([id, "suspend"]));
    assert_eq!(job(&server, &id)["job_status"], "suspended");
    assert_eq!(process_state(pid), Some('T'));
    let refused = act(&server, &id, "suspend");
    assert_eq!(refused.status, 409);
    assert_eq!(
        refused.json()["message"],
        format!("Job {id} cannot suspend while suspended")
    );
    act(&server, &id, "continue").expect(200);
    assert_eq!(job(&server, &id)["job_status"], "running");
    assert_ne!(process_state(pid), Some('T'));
    let removed = server
        .delete(&format!("/jobs/{id}"))
        .auth(&auth())
        .send()
        .expect(200);
    assert_eq!(removed.text(), "null");
    assert_eq!(job(&server, &id)["job_status"], "removed");
    let deadline = Instant::now() + Duration::from_secs(5);
    while process_state(pid).is_some() {
        assert!(
            Instant::now() < deadline,
            "the removed job's process lives on"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(act(&server, &id, "hold").status, 409);
    assert_eq!(
        server
            .delete(&format!("/jobs/{id}"))
            .auth(&auth())
            .send()
            .status,
        409
    );
}

#[test]
fn a_held_job_is_stopped_and_runs_again_once_released() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = TestServer::start_with(batch_settings(dir.path(), 1));
    let marker = dir.path().join("go");
    let script = format!(
        "echo run; while [ ! -e {} ]; do sleep 0.05; done; echo done\n",
        marker.display()
    );
    let (id, _) = submit(&server, "", &script);
    wait_status(&server, &id, "running", Duration::from_secs(10));
    let pid = run_pid(dir.path(), &id);
    act(&server, &id, "hold").expect(200);
    assert_eq!(job(&server, &id)["job_status"], "held");
    let deadline = Instant::now() + Duration::from_secs(7);
    while process_state(pid).is_some() {
        assert!(Instant::now() < deadline, "the held job's process lives on");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The slot is free for the next job meanwhile.
    let (other, _) = submit(&server, "", "echo other\n");
    wait_status(&server, &other, "completed", Duration::from_secs(10));
    assert_eq!(job(&server, &id)["job_status"], "held");
    std::fs::write(&marker, "").expect("marker");
    act(&server, &id, "release").expect(200);
    let done = wait_status(&server, &id, "completed", Duration::from_secs(10));
    assert_eq!(done["job_run_count"], 2);
    assert_eq!(
        artifact(&server, &id, "stdout").expect(200).text(),
        "run\ndone\n"
    );
}

#[test]
fn jobs_wait_for_a_slot_in_number_order() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = TestServer::start_with(batch_settings(dir.path(), 1));
    let marker = dir.path().join("go");
    let blocker = format!("while [ ! -e {} ]; do sleep 0.05; done\n", marker.display());
    let (first, _) = submit(&server, "", &blocker);
    let (second, _) = submit(&server, "", "echo 2\n");
    let (third, _) = submit(&server, "", "echo 3\n");
    wait_status(&server, &first, "running", Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(job(&server, &second)["job_status"], "idle");
    assert_eq!(job(&server, &third)["job_status"], "idle");
    std::fs::write(&marker, "").expect("marker");
    let second_done = wait_status(&server, &second, "completed", Duration::from_secs(10));
    let third_done = wait_status(&server, &third, "completed", Duration::from_secs(10));
    assert!(
        second_done["job_completion_date"].as_i64() <= third_done["job_completion_date"].as_i64()
    );
    let stamps: Vec<String> = [&second, &third]
        .iter()
        .map(|id| {
            std::fs::metadata(dir.path().join("batch").join(id).join("stdout"))
                .and_then(|m| m.modified())
                .map(|t| format!("{t:?}"))
                .expect("stdout")
        })
        .collect();
    assert!(stamps[0] <= stamps[1], "{stamps:?}");
}
