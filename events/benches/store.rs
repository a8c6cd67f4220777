//! Event store benchmark: durable append throughput and latency with 1, 8 and 64
//! concurrent appenders, and replay speed over 1,000,000 events.
//!
//! `cargo bench -p infralog-events --bench store` (set `INFRALOG_BENCH_SECONDS`
//! to change the duration of each append run, default 5). With
//! `INFRALOG_TEST_POSTGRES` set (`.ci/postgres`), the same runs follow against
//! the PostgreSQL store, in a database made for them.
//! Targets on a 2-core machine: ≥ 20,000 events/s with 64 appenders, p50 ≤ 0.5 ms
//! with one appender, replay ≥ 500,000 events/s.

use std::sync::Arc;
use std::time::{Duration, Instant};

use infralog_events::store::pg_testing::TestDatabase;
use infralog_events::{
    AppendRequest, EventStore, ExpectedVersion, NewEvent, PgStore, PgStoreConfig, SledStore,
    SledStoreConfig, StreamId,
};

/// Opens the store under test: sled in a temporary directory, or PostgreSQL.
enum Backend {
    Sled,
    Postgres(String),
}

impl Backend {
    fn open(&self, dir: &std::path::Path) -> Arc<dyn EventStore> {
        match self {
            Backend::Sled => Arc::new(SledStore::open(SledStoreConfig::new(dir)).expect("opens")),
            Backend::Postgres(url) => Arc::new(
                PgStore::open(PgStoreConfig::new(url.clone(), uuid::Uuid::new_v4()))
                    .expect("opens"),
            ),
        }
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

fn payload() -> Vec<u8> {
    // About the size of a VM or contextualization event.
    vec![0x42; 160]
}

fn append_run(backend: &Backend, appenders: usize, seconds: u64) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = backend.open(dir.path());
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let handles: Vec<_> = (0..appenders)
        .map(|appender| {
            let store = Arc::clone(&store);
            std::thread::spawn(move || {
                let stream = StreamId::new(format!("bench-{appender}")).expect("valid id");
                let mut latencies = Vec::new();
                let mut version = 0;
                while Instant::now() < deadline {
                    let started = Instant::now();
                    let appended = store
                        .append(AppendRequest {
                            stream: stream.clone(),
                            expected: ExpectedVersion::Exact(version),
                            events: vec![NewEvent::new("Bench", 1, payload())],
                        })
                        .wait()
                        .expect("appends go in");
                    latencies.push(started.elapsed());
                    version = appended.version;
                }
                latencies
            })
        })
        .collect();
    let started = Instant::now();
    let mut latencies: Vec<Duration> = handles
        .into_iter()
        .flat_map(|h| h.join().expect("appenders finish"))
        .collect();
    let elapsed = started.elapsed().as_secs_f64().max(seconds as f64);
    latencies.sort_unstable();
    println!(
        "append, {appenders:>2} appenders: {:>8.0} events/s  p50 {:>7.3} ms  p99 {:>7.3} ms  ({} appends)",
        latencies.len() as f64 / elapsed,
        percentile(&latencies, 0.50).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        latencies.len()
    );
    drop(store);
}

fn replay_run(backend: &Backend, events: u64) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = backend.open(dir.path());
    let per_append = 1000;
    let started = Instant::now();
    let mut written = 0;
    while written < events {
        let batch = (0..per_append)
            .map(|_| NewEvent::new("Bench", 1, payload()))
            .collect();
        store
            .append(AppendRequest {
                stream: StreamId::new(format!("replay-{}", written / per_append % 1000))
                    .expect("valid id"),
                expected: ExpectedVersion::Any,
                events: batch,
            })
            .wait()
            .expect("appends go in");
        written += per_append;
    }
    println!(
        "wrote {written} events in {:.1} s (batches of {per_append})",
        started.elapsed().as_secs_f64()
    );
    drop(store);
    let opened = Instant::now();
    let store = backend.open(dir.path());
    println!(
        "open with {written} events: {:.3} s",
        opened.elapsed().as_secs_f64()
    );
    for run in 1..=2 {
        let started = Instant::now();
        let mut position = 0;
        let mut bytes = 0usize;
        loop {
            let batch = store.read_all(position + 1, 10_000).expect("reads");
            let Some(last) = batch.last() else { break };
            position = last.position;
            bytes += batch.iter().map(|e| e.payload.len()).sum::<usize>();
        }
        let seconds = started.elapsed().as_secs_f64();
        println!(
            "replay run {run}: {position} events in {seconds:.3} s = {:.0} events/s ({} MB of payload)",
            position as f64 / seconds,
            bytes / 1_000_000
        );
    }
}

fn main() {
    let seconds = std::env::var("INFRALOG_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    println!("sled:");
    for appenders in [1, 8, 64] {
        append_run(&Backend::Sled, appenders, seconds);
    }
    replay_run(&Backend::Sled, 1_000_000);
    if std::env::var("INFRALOG_TEST_POSTGRES").is_err() {
        println!("PostgreSQL: skipped (set INFRALOG_TEST_POSTGRES, see .ci/postgres)");
        return;
    }
    println!("PostgreSQL:");
    for appenders in [1, 8, 64] {
        let database = TestDatabase::create().expect("a database");
        append_run(
            &Backend::Postgres(database.url().to_owned()),
            appenders,
            seconds,
        );
    }
    let database = TestDatabase::create().expect("a database");
    replay_run(&Backend::Postgres(database.url().to_owned()), 1_000_000);
}
