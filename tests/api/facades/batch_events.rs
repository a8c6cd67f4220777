//! The Batch facade's job history (`GET /jobs/<id>/events`, answered as IM's
//! `/events`), job inputs (`job-input`), and notifications with their retries,
//! each try recorded.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::batch::{batch_settings, post_form, submit, tgz, wait_status};
use super::imc::basic;
use crate::harness::*;

fn auth() -> String {
    basic("batch", "s3cret")
}

fn events(server: &impl Api, id: &str, query: &str) -> Value {
    server
        .get(&format!("/jobs/{id}/events{query}"))
        .auth(&auth())
        .send()
        .expect(200)
        .json()
}

fn types(page: &Value) -> Vec<String> {
    page["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["type"].as_str().expect("a type").to_string())
        .collect()
}

#[test]
fn a_jobs_events_are_answered_as_ims_events() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = TestServer::start_with(batch_settings(dir.path(), 1));
    let (id, number) = submit(&server, "x", "exit 3\n");
    wait_status(&server, &id, "completed", Duration::from_secs(10));
    let page = events(&server, &id, "");
    assert_eq!(
        types(&page),
        ["JobSubmitted", "JobStarted", "JobExited"],
        "{page}"
    );
    let first = &page["events"][0];
    assert_eq!(first["version"], 1);
    assert_eq!(first["stream"], format!("batch-job-{id}"));
    assert_eq!(first["data"]["cluster_id"], number);
    assert_eq!(first["data"]["arguments"], "x");
    assert!(
        first["time"].is_string() && first["position"].is_u64(),
        "{first}"
    );
    let started = &page["events"][1]["data"];
    assert!(
        started["slot_vm"]
            .as_str()
            .is_some_and(|s| s.starts_with("vm-")),
        "{started}"
    );
    assert_eq!(page["events"][2]["data"]["code"], 3);
    assert!(page.get("next").is_none());

    // Pages, as IM's: `from`, `limit` and `next`.
    let paged = events(&server, &id, "?from=2&limit=1");
    assert_eq!(types(&paged), ["JobStarted"]);
    assert_eq!(paged["next"], 3);
    // One event a line on request.
    let lines = server
        .get(&format!("/jobs/{id}/events"))
        .auth(&auth())
        .accept("application/x-ndjson")
        .send()
        .expect(200);
    assert_eq!(lines.content_type(), "application/x-ndjson");
    let text = lines.text();
    assert_eq!(text.lines().count(), 3, "{text}");

    // Errors in the facade's own body.
    for query in ["?limit=0", "?from=0", "?limit=x"] {
        let refused = server
            .get(&format!("/jobs/{id}/events{query}"))
            .auth(&auth())
            .send()
            .expect(400);
        assert!(refused.json()["message"].is_string(), "{query}");
    }
    let unknown = uuid::Uuid::new_v4();
    let missing = server
        .get(&format!("/jobs/{unknown}/events"))
        .auth(&auth())
        .send()
        .expect(404)
        .json();
    assert_eq!(missing["message"], format!("Job {unknown} doesn't exist"));
    assert_eq!(server.get(&format!("/jobs/{id}/events")).send().status, 401);
    server
        .get(&format!("/jobs/{id}/events"))
        .auth(&auth())
        .accept("text/html")
        .send()
        .expect(406);
}

#[test]
fn a_jobs_input_is_stored_and_given_to_its_run() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = TestServer::start_with(batch_settings(dir.path(), 1));
    let bundle = tgz(&[(
        "run.sh",
        "cat \"$MODACLOUDS_BATCH_INPUT\"; echo \"in:$MODACLOUDS_BATCH_INPUT\"\n",
    )]);
    let input = b"line one\nline two\n";
    let answer = post_form(
        &server,
        &[
            ("job-name", b"with-input"),
            ("job-bundle", &bundle),
            ("job-input", input),
        ],
    )
    .expect(200)
    .json();
    let id = answer["job_id"].as_str().expect("a job id").to_string();
    wait_status(&server, &id, "completed", Duration::from_secs(10));
    let stored = dir
        .path()
        .join("batch")
        .join(&id)
        .join("input")
        .join("input");
    assert_eq!(std::fs::read(&stored).expect("the stored input"), input);
    let stdout = server
        .get(&format!("/jobs/{id}/artifacts/stdout"))
        .auth(&auth())
        .send()
        .expect(200)
        .text();
    assert_eq!(
        stdout,
        format!("line one\nline two\nin:{}\n", stored.display())
    );
    // Its SHA-256 is recorded with the submission.
    let submitted = &events(&server, &id, "")["events"][0]["data"];
    use sha2::Digest;
    let digest: String = sha2::Sha256::digest(input)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(submitted["input_sha256"], digest);

    // Without an input, the variable is not set at all.
    let (plain, _) = submit(&server, "", "echo \"in:${MODACLOUDS_BATCH_INPUT-unset}\"\n");
    wait_status(&server, &plain, "completed", Duration::from_secs(10));
    let stdout = server
        .get(&format!("/jobs/{plain}/artifacts/stdout"))
        .auth(&auth())
        .send()
        .expect(200)
        .text();
    assert_eq!(stdout, "in:unset\n");
}

/// The bodies a hook was sent, with the time each came.
type Seen = Arc<Mutex<Vec<(Instant, String)>>>;

/// A listener on 127.0.0.1 that answers `statuses` in turn (then 200) and
/// keeps every body it was sent, with the time it came.
fn hook(statuses: Vec<u16>) -> (String, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let kept = Arc::clone(&seen);
    std::thread::spawn(move || {
        let mut statuses = statuses.into_iter();
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut length = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some((name, value)) = line.split_once(':') {
                    if name.eq_ignore_ascii_case("content-length") {
                        length = value.trim().parse().unwrap_or(0);
                    }
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            kept.lock()
                .expect("lock")
                .push((Instant::now(), String::from_utf8_lossy(&body).into_owned()));
            let status = statuses.next().unwrap_or(200);
            let _ = write!(
                stream,
                "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
        }
    });
    (url, seen)
}

fn submit_notified(server: &impl Api, url: &str, script: &str) -> String {
    let bundle = tgz(&[("run.sh", script)]);
    let answer = post_form(
        server,
        &[
            ("job-name", b"n"),
            ("job-bundle", &bundle),
            ("job-notification", url.as_bytes()),
        ],
    )
    .expect(200)
    .json();
    answer["job_id"].as_str().expect("a job id").to_string()
}

fn tries(server: &impl Api, id: &str, count: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let page = events(server, id, "");
        let found: Vec<Value> = page["events"]
            .as_array()
            .expect("events")
            .iter()
            .filter(|e| e["type"] == "NotificationAttempted")
            .map(|e| e["data"].clone())
            .collect();
        if found.len() >= count {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "{count} tries never recorded: {page}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn notify_settings(dir: &std::path::Path) -> infralog::app::Settings {
    let mut settings = batch_settings(dir, 1);
    if let Some(batch) = settings.facades.batch.as_mut() {
        batch.notify_retry = Duration::from_millis(150);
    }
    settings
}

#[test]
fn a_completed_job_is_notified_with_retries_each_recorded() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = TestServer::start_with(notify_settings(dir.path()));
    let (url, seen) = hook(vec![500, 503]);
    let id = submit_notified(&server, &url, "exit 3\n");
    let recorded = tries(&server, &id, 3);
    assert_eq!(
        recorded,
        [
            serde_json::json!({"attempt": 1, "outcome": "HTTP 500"}),
            serde_json::json!({"attempt": 2, "outcome": "HTTP 503"}),
            serde_json::json!({"attempt": 3, "outcome": "delivered"}),
        ]
    );
    let seen = seen.lock().expect("lock").clone();
    assert_eq!(seen.len(), 3);
    for (_, body) in &seen {
        let body: Value = serde_json::from_str(body).expect("JSON");
        assert_eq!(body, serde_json::json!({"job-uuid": id, "retcode": 3}));
    }
    // The retry schedule: the base wait, then twice it.
    assert!(seen[1].0 - seen[0].0 >= Duration::from_millis(150));
    assert!(seen[2].0 - seen[1].0 >= Duration::from_millis(300));
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(tries(&server, &id, 3).len(), 3, "nothing after a delivery");
}

#[test]
fn notifications_stop_after_three_failed_tries_and_only_completed_jobs_are_notified() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = TestServer::start_with(notify_settings(dir.path()));
    // Nothing listens there: every try fails to connect.
    let closed = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/hook", closed.local_addr().expect("addr"));
    drop(closed);
    let id = submit_notified(&server, &url, "echo ok\n");
    let recorded = tries(&server, &id, 3);
    assert!(
        recorded.iter().all(|t| t["outcome"] != "delivered"),
        "{recorded:?}"
    );
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(tries(&server, &id, 3).len(), 3, "three tries at most");

    // A removed job is not notified.
    let (url, seen) = hook(vec![]);
    let removed = submit_notified(&server, &url, "sleep 30\n");
    wait_status(&server, &removed, "running", Duration::from_secs(10));
    server
        .delete(&format!("/jobs/{removed}"))
        .auth(&auth())
        .send()
        .expect(200);
    std::thread::sleep(Duration::from_millis(500));
    assert!(seen.lock().expect("lock").is_empty());
    let page = events(&server, &removed, "");
    assert!(!types(&page).contains(&"NotificationAttempted".to_string()));
}

#[test]
fn tries_a_restart_interrupted_are_resumed_and_none_is_repeated() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut slow = notify_settings(dir.path());
    if let Some(batch) = slow.facades.batch.as_mut() {
        // The second try would come long after the server stops.
        batch.notify_retry = Duration::from_secs(3600);
    }
    let server = TestServer::start_with(slow);
    let (url, seen) = hook(vec![500]);
    let id = submit_notified(&server, &url, "exit 0\n");
    assert_eq!(
        tries(&server, &id, 1),
        [serde_json::json!({"attempt": 1, "outcome": "HTTP 500"})]
    );
    server.stop();

    let server = TestServer::start_with(notify_settings(dir.path()));
    let recorded = tries(&server, &id, 2);
    assert_eq!(
        recorded,
        [
            serde_json::json!({"attempt": 1, "outcome": "HTTP 500"}),
            serde_json::json!({"attempt": 2, "outcome": "delivered"}),
        ]
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(seen.lock().expect("lock").len(), 2);
    assert_eq!(tries(&server, &id, 2).len(), 2);
}
