//! Slow and unauthenticated bodies (issue 10, section 6): a body that trickles in is
//! cut off with 408 while other requests keep their latency; a large body without
//! credentials is refused before it is read; clients' malformed requests are not
//! ERROR lines.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::harness::*;

const USER: &str = "slow";

fn server_with_body_timeout(dir: &std::path::Path, timeout: Duration) -> TestServer {
    let mut settings = settings(dir);
    settings.limits.body_read_timeout = timeout;
    TestServer::start_with(settings)
}

/// Opens a connection and sends a create's head announcing `length` body bytes, and
/// `sent` of them.
fn slow_create(port: u16, length: usize, sent: usize) -> TcpStream {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let head = format!(
        "POST /infrastructures HTTP/1.1\r\nHost: {HOST}\r\nAuthorization: {}\r\nContent-Type: text/plain\r\nContent-Length: {length}\r\n\r\n",
        auth_for(USER)
    );
    stream.write_all(head.as_bytes()).expect("send the head");
    stream.write_all(&vec![b' '; sent]).expect("send some body");
    stream
}

/// The status line of whatever the server answers within `wait`, if anything.
fn status_within(stream: &mut TcpStream, wait: Duration) -> Option<u16> {
    stream.set_read_timeout(Some(wait)).expect("read timeout");
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => {
                answer.extend_from_slice(&buffer[..n]);
                if answer.windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    let text = String::from_utf8_lossy(&answer);
    text.split(' ').nth(1).and_then(|s| s.parse().ok())
}

#[test]
fn a_body_sent_a_byte_at_a_time_ends_with_408() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = server_with_body_timeout(dir.path(), Duration::from_secs(1));
    let started = Instant::now();
    let (done, finished) = mpsc::channel();
    for _ in 0..3 {
        let port = server.port;
        let done = done.clone();
        std::thread::spawn(move || {
            let mut stream = slow_create(port, 100, 1);
            let mut reader = stream.try_clone().expect("clone the stream");
            let (answered, answer) = mpsc::channel();
            std::thread::spawn(move || {
                let _ = answered.send(status_within(&mut reader, Duration::from_secs(8)));
            });
            // A byte every 200 ms, for at most 6 s, until the server answers.
            for _ in 0..30 {
                if let Ok(status) = answer.try_recv() {
                    let _ = done.send((status, started.elapsed()));
                    return;
                }
                if stream.write_all(b" ").is_err() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            let status = answer.recv().unwrap_or(None);
            let _ = done.send((status, started.elapsed()));
        });
    }
    drop(done);
    let answers: Vec<(Option<u16>, Duration)> = finished.iter().collect();
    assert_eq!(answers.len(), 3);
    for (status, elapsed) in answers {
        assert_eq!(status, Some(408), "after {elapsed:?}");
        assert!(
            elapsed < Duration::from_secs(4),
            "answered after {elapsed:?}"
        );
    }
    // The answer is IM's error shape, and the server still serves.
    let mut stream = slow_create(server.port, 10, 1);
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let raw = String::from_utf8_lossy(&raw);
    assert!(raw.contains("connection: close"), "{raw}");
    assert!(
        raw.ends_with("Request body not received in time: the limit is 1 s"),
        "{raw}"
    );
    assert_eq!(list(&server, USER), "");
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

/// Latency of `count` authenticated list requests, sorted.
fn latencies(server: &TestServer, count: usize) -> Vec<Duration> {
    let mut all: Vec<Duration> = (0..count)
        .map(|_| {
            let start = Instant::now();
            server.get("/infrastructures").user(USER).send().expect(200);
            start.elapsed()
        })
        .collect();
    all.sort();
    all
}

#[test]
fn normal_requests_keep_their_latency_while_500_slow_bodies_are_open() {
    const SLOW: usize = 500;
    let dir = tempfile::tempdir().expect("temp dir");
    let server = server_with_body_timeout(dir.path(), Duration::from_secs(4));
    create(&server, USER, RADL_NO_CTX);
    let quiet = latencies(&server, 200);
    let opened = Instant::now();
    let mut slow: Vec<TcpStream> = (0..SLOW)
        .map(|_| slow_create(server.port, 1000, 1))
        .collect();
    let busy = latencies(&server, 200);
    let measured_within = opened.elapsed();
    println!(
        "list latency, no slow bodies: p50 {:?} p99 {:?}; with {SLOW} slow bodies open: p50 {:?} p99 {:?} (measured within {measured_within:?} of opening them)",
        percentile(&quiet, 0.5),
        percentile(&quiet, 0.99),
        percentile(&busy, 0.5),
        percentile(&busy, 0.99),
    );
    assert!(
        measured_within < Duration::from_secs(4),
        "the slow bodies timed out before the measurement ended; it proves nothing"
    );
    assert!(
        percentile(&busy, 0.99) < Duration::from_millis(500),
        "p99 {:?} with slow bodies open",
        percentile(&busy, 0.99)
    );
    // Every slow body is then cut off (one deadline for all, so that the test stays
    // short even when they are not).
    let deadline = Instant::now() + Duration::from_secs(10);
    let timed_out = slow
        .iter_mut()
        .map(|stream| {
            let left = deadline.saturating_duration_since(Instant::now());
            status_within(stream, left.max(Duration::from_millis(1)))
        })
        .filter(|status| *status == Some(408))
        .count();
    assert_eq!(timed_out, SLOW);
    assert_eq!(list(&server, USER).lines().count(), 1);
}

#[test]
fn a_large_body_without_credentials_is_refused_before_it_is_read() {
    let (_dir, server) = temp_server();
    for (path, content_type) in [
        ("/infrastructures?format=history", "application/json"),
        ("/infrastructures", "application/json"),
        ("/infrastructures", "text/plain"),
    ] {
        let method = if content_type == "text/plain" {
            "POST"
        } else {
            "PUT"
        };
        let mut stream = TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
            if path.contains("history") { 60 << 20 } else { 512 << 10 }
        );
        stream.write_all(head.as_bytes()).expect("send the head");
        // Not one byte of the body is sent: the answer must come anyway.
        assert_eq!(
            status_within(&mut stream, Duration::from_secs(5)),
            Some(401),
            "{method} {path}"
        );
    }
    // A history import with credentials but a bad body still reads the body.
    server
        .put("/infrastructures?format=history")
        .user(USER)
        .header("Content-Type", "application/json")
        .body("not json")
        .send()
        .expect(400);
    // Small bodies keep IM's order: the body is judged before the credentials.
    server
        .post("/infrastructures")
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("a=1")
        .send()
        .expect(415);
}

#[test]
fn malformed_requests_are_counted_in_a_rate_limited_warn_not_logged_as_errors() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server =
        ChildServer::start_with_default_log(dir.path(), &["--client-error-log-seconds", "1"]);
    let port = server.port;
    const MALFORMED: usize = 40;
    for _ in 0..MALFORMED {
        let answer = send_raw(
            port,
            b"GET /version HTTP/1.1\r\nHost: x\r\nX-Control: a\x01b\r\n\r\n",
        );
        assert_eq!(answer.status, 400);
    }
    std::thread::sleep(Duration::from_millis(2500));
    let logged = server.kill_and_read_log();
    let errors: Vec<&String> = logged.iter().filter(|l| l.contains("ERROR")).collect();
    assert!(errors.is_empty(), "ERROR lines: {errors:#?}");
    let warns: Vec<&String> = logged
        .iter()
        .filter(|l| l.contains("WARN") && l.contains("malformed HTTP requests"))
        .collect();
    assert!(
        (1..=3).contains(&warns.len()),
        "one WARN per second at most: {logged:#?}"
    );
    let counted: usize = warns
        .iter()
        .filter_map(|l| l.split("count=").nth(1))
        .filter_map(|rest| rest.split_whitespace().next())
        .filter_map(|n| n.parse::<usize>().ok())
        .sum();
    assert_eq!(counted, MALFORMED, "{warns:#?}");
}
