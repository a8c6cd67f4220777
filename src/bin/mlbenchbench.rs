//! Benchmark of the MLBench facade's metrics (`cargo build --release --bin
//! infralog --bin infralog-mlbenchbench`, then run the latter).
//!
//! Loads 1,000,000 points over 100 series of one run straight into a fresh
//! log's metrics tree, starts the release server over it with `--facades
//! mlbench`, and prints:
//! - the time of `GET /api/metrics/1/?metric_type=run&metric_filter=…&since=…
//!   &summarize=100` (one series, half of it after `since`; target ≤ 20 ms),
//!   and of the same query over all 100 series;
//! - the rate of durable metric POSTs (forms, 201 each) from 8 concurrent
//!   posters, one request in flight each (target ≥ 20,000 points/s), and with
//!   8 connections per poster;
//! - where a one-in-flight POST's time goes: one write and `fdatasync` of this
//!   disk, the store alone (8 threads, one write in flight each, no HTTP), and
//!   the HTTP path without the write (the same POSTs for an unknown run, 404).
//!
//! The posters run on the same machine as the server, as the facade's workers
//! do.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use infralog::facades::mlbench::query::{format_date, parse_date};
use infralog_events::codec::DomainEvent;
use infralog_events::domain::ids::{run_stream_name, MLBENCH_ADMISSION_STREAM};
use infralog_events::domain::mlbench::{AdmissionEvent, RunEvent, RunRequest};
use infralog_events::store::metrics::{MetricPoint, MetricStore, MetricWrite};
use infralog_events::{
    AppendRequest, EventStore, ExpectedVersion, Metadata, SledStore, SledStoreConfig, StreamId,
};

mod common;
use common::{free_port, server_binary, wait_until_serving, Client};

const SERIES: usize = 100;
const POINTS_PER_SERIES: usize = 10_000;
const BATCH: usize = 10_000;
const START: &str = "2024-01-01 00:00:00";

fn append<E: DomainEvent>(store: &SledStore, stream: &str, events: &[E]) {
    let request = AppendRequest {
        stream: StreamId::new(stream).expect("stream name"),
        expected: ExpectedVersion::Exact(0),
        events: events
            .iter()
            .map(|e| e.to_new_event(Metadata::default()))
            .collect(),
    };
    store.append(request).wait().expect("append");
}

/// A finished run 1 and its million points, written straight into the log.
fn preload(dir: &Path) {
    let store = SledStore::open(SledStoreConfig::new(dir)).expect("open the log");
    append(
        &store,
        MLBENCH_ADMISSION_STREAM,
        &[AdmissionEvent::RunRequested {
            run: 1,
            name: "bench".into(),
            num_workers: 1,
        }],
    );
    let request = RunRequest {
        id: 1,
        name: "bench".into(),
        num_workers: 1,
        backend: "gloo".into(),
        job_id: uuid::Uuid::new_v4(),
        ..RunRequest::default()
    };
    append(
        &store,
        &run_stream_name(1),
        &[
            RunEvent::RunRequested(Box::new(request)),
            RunEvent::RunAdmitted,
            RunEvent::RunFinished,
        ],
    );
    let start = parse_date(START).expect("start date");
    let started = Instant::now();
    let mut batch = Vec::with_capacity(BATCH);
    for n in 0..POINTS_PER_SERIES {
        for series in 0..SERIES {
            batch.push(MetricPoint {
                subject: "run:1".into(),
                name: format!("metric-{series:03}"),
                date_us: start + n as i64 * 1_000_000,
                value: format!("{}", (n % 97) as f64 / 7.0),
                metadata: String::new(),
                cumulative: false,
            });
            if batch.len() == BATCH {
                store
                    .write_metrics(MetricWrite::Insert(std::mem::take(&mut batch)))
                    .wait()
                    .expect("write points");
            }
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "preload: {} points in {seconds:.1} s ({:.0} points/s in batches of {BATCH})",
        SERIES * POINTS_PER_SERIES,
        (SERIES * POINTS_PER_SERIES) as f64 / seconds
    );
    store.close();
}

fn percentile(times: &mut [Duration], p: f64) -> Duration {
    times.sort_unstable();
    times[((times.len() - 1) as f64 * p).round() as usize]
}

fn query(port: u16, path: &str, rounds: usize, expect_points: usize) -> (Duration, Duration) {
    let mut client = Client::connect(port).expect("connect");
    let mut times = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let started = Instant::now();
        let (status, body) = client.request("GET", path, &[], b"").expect("query");
        times.push(started.elapsed());
        assert_eq!(status, 200, "{body}");
        let points = body.matches("\"date\"").count();
        assert_eq!(points, expect_points, "points in the answer");
    }
    (percentile(&mut times, 0.5), percentile(&mut times, 0.99))
}

fn encode(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// Runs `threads` loops side by side for `seconds`, each calling its step
/// (made by `step_of(thread)`) with a counter until told to stop; answers
/// steps/s over all of them.
fn rate_of<S>(threads: usize, seconds: u64, step_of: impl Fn(usize) -> S) -> f64
where
    S: FnMut(u64) + Send + 'static,
{
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..threads)
        .map(|n| {
            let (stop, done) = (Arc::clone(&stop), Arc::clone(&done));
            let mut step = step_of(n);
            std::thread::spawn(move || {
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    step(i);
                    done.fetch_add(1, Ordering::Relaxed);
                    i += 1;
                }
            })
        })
        .collect();
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs(seconds));
    stop.store(true, Ordering::Relaxed);
    for thread in threads {
        thread.join().expect("a measured thread");
    }
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

/// `posters × connections` clients posting points of `run` for `seconds`, each
/// answered `expect`; answers requests/s.
fn post_rate(
    port: u16,
    run: u64,
    expect: u16,
    (posters, connections): (usize, usize),
    seconds: u64,
) -> f64 {
    rate_of(posters * connections, seconds, |n| {
        let mut client = Client::connect(port).expect("connect");
        move |i| {
            let date = format_date(1_700_000_000_000_000 + i as i64).replace('T', " ");
            let body = format!(
                "run_id={run}&name=poster-{}&value={i}&date={}&cumulative=False",
                n / connections,
                encode(date.trim_end_matches('Z'))
            );
            let (status, answer) = client
                .request(
                    "POST",
                    "/api/metrics/",
                    &[("Content-Type", "application/x-www-form-urlencoded")],
                    body.as_bytes(),
                )
                .expect("post");
            assert_eq!(status, expect, "{answer}");
        }
    })
}

fn main() {
    if std::env::args().any(|a| a == "--help" || a == "-h") {
        println!("infralog-mlbenchbench: the MLBench metrics benchmark (no options); see the source's header");
        return;
    }
    let dir = std::env::temp_dir().join(format!("infralog-mlbenchbench-{}", uuid::Uuid::new_v4()));
    let data = dir.join("data");
    preload(&data);
    let port = free_port();
    let mut server = Command::new(server_binary())
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
        ])
        .arg(&data)
        .args(["--facades", "mlbench"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start target/release/infralog");
    let ready = wait_until_serving(port, Duration::from_secs(120)).expect("the server serves");
    println!("server serving after {:.2} s", ready.as_secs_f64());
    let since = encode("2024-01-01 01:23:20");
    let one = format!(
        "/api/metrics/1/?metric_type=run&metric_filter=metric-042&since={since}&summarize=100"
    );
    let (p50, p99) = query(port, &one, 50, 100);
    println!(
        "since + summarize=100, one series of {POINTS_PER_SERIES} (5,000 after since): p50 {:.2} ms, p99 {:.2} ms (target ≤ 20 ms)",
        p50.as_secs_f64() * 1000.0,
        p99.as_secs_f64() * 1000.0
    );
    let all = format!("/api/metrics/1/?metric_type=run&since={since}&summarize=100");
    let (p50, p99) = query(port, &all, 5, 100 * SERIES);
    println!(
        "since + summarize=100, all {SERIES} series (500,000 points after since): p50 {:.1} ms, p99 {:.1} ms",
        p50.as_secs_f64() * 1000.0,
        p99.as_secs_f64() * 1000.0
    );
    let rate = post_rate(port, 1, 201, (8, 1), 10);
    println!(
        "durable metric POSTs, 8 posters, 1 in flight each: {rate:.0} points/s (target ≥ 20,000)"
    );
    let rate = post_rate(port, 1, 201, (8, 8), 10);
    println!("durable metric POSTs, 8 posters, 8 connections each: {rate:.0} points/s");
    println!("where a one-in-flight POST's time goes:");
    let rate = post_rate(port, 999_999, 404, (8, 1), 5);
    println!("  the HTTP path without the write (unknown run, 404), 8 posters, 1 in flight each: {rate:.0} requests/s");
    let _ = server.kill();
    let _ = server.wait();
    let sync = disk_sync(&dir.join("sync-probe"), 2_000);
    println!(
        "  one 256-byte write and fdatasync of this disk: {:.0} µs",
        sync.as_secs_f64() * 1e6
    );
    let store_dir = dir.join("store-alone");
    for writers in [1, 8] {
        let rate = store_rate(&store_dir, writers, 3);
        println!(
            "  the store alone, {writers} writer(s), one point in flight each: {rate:.0} points/s"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The mean time of one small write and `fdatasync` at the end of a file that
/// was written and synced beforehand (so no block allocation is timed).
fn disk_sync(path: &Path, rounds: u64) -> Duration {
    use std::os::unix::fs::FileExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .expect("create the sync probe");
    file.write_all_at(&vec![0u8; rounds as usize * 256], 0)
        .expect("fill the sync probe");
    file.sync_all().expect("sync the sync probe");
    let record = [7u8; 256];
    let started = Instant::now();
    for n in 0..rounds {
        file.write_all_at(&record, n * 256).expect("write");
        file.sync_data().expect("fdatasync");
    }
    let elapsed = started.elapsed();
    let _ = std::fs::remove_file(path);
    elapsed / rounds as u32
}

/// `writers` threads writing one point at a time to a fresh store for
/// `seconds`, each waiting for its point to be durable; answers points/s.
fn store_rate(dir: &Path, writers: usize, seconds: u64) -> f64 {
    let _ = std::fs::remove_dir_all(dir);
    let store = Arc::new(SledStore::open(SledStoreConfig::new(dir)).expect("open the probe store"));
    let rate = rate_of(writers, seconds, |n| {
        let store = Arc::clone(&store);
        move |i| {
            let point = MetricPoint {
                subject: "run:1".into(),
                name: format!("writer-{n}"),
                date_us: 1_700_000_000_000_000 + i as i64,
                value: i.to_string(),
                metadata: String::new(),
                cumulative: false,
            };
            store
                .write_metrics(MetricWrite::Insert(vec![point]))
                .wait()
                .expect("write a point");
        }
    });
    if let Ok(store) = Arc::try_unwrap(store) {
        store.close();
    }
    let _ = std::fs::remove_dir_all(dir);
    rate
}
