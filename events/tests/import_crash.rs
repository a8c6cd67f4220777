//! A kill during an import leaves all of it or nothing: a child process imports
//! groups of 24 streams from 4 threads and is killed at a random moment; the
//! reopened store must hold every acknowledged import, and every import it holds
//! must be whole (all its streams, each with all its events).
//!
//! `INFRALOG_CRASH_CYCLES` sets the number of cycles (default 8).

use std::collections::{HashMap, HashSet};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use infralog_events::store::contract::crash_payload;
use infralog_events::{EventStore, SledStore, SledStoreConfig};

const IMPORT_STREAMS: u64 = 24;

fn check(data: &std::path::Path, journal: &str, cycle: usize) -> usize {
    let begun: HashSet<&str> = journal
        .lines()
        .filter_map(|l| l.strip_prefix("I "))
        .collect();
    let acknowledged: HashSet<&str> = journal
        .lines()
        .filter_map(|l| l.strip_prefix("A "))
        .collect();
    let store = SledStore::open(SledStoreConfig::new(data))
        .unwrap_or_else(|e| panic!("cycle {cycle}: the store must reopen: {e}"));
    // key -> stream -> events seen
    let mut imports: HashMap<String, HashMap<u64, u64>> = HashMap::new();
    let mut position = 0;
    loop {
        let batch = store.read_all(position + 1, 10_000).expect("the log reads");
        if batch.is_empty() {
            break;
        }
        for envelope in batch {
            assert_eq!(envelope.position, position + 1, "cycle {cycle}: gapless");
            position = envelope.position;
            let name = envelope.stream.as_str();
            let (key, stream) = name
                .strip_prefix("imp-")
                .and_then(|rest| rest.rsplit_once('-'))
                .expect("an import stream");
            let stream: u64 = stream.parse().expect("a stream number");
            let seen = imports
                .entry(key.to_string())
                .or_default()
                .entry(stream)
                .or_default();
            *seen += 1;
            assert_eq!(envelope.version, *seen, "cycle {cycle}: {name} is gapless");
            assert_eq!(envelope.payload, crash_payload(name, envelope.version));
        }
    }
    for (key, streams) in &imports {
        assert!(
            begun.contains(key.as_str()),
            "cycle {cycle}: {key} was never begun"
        );
        assert_eq!(
            streams.len() as u64,
            IMPORT_STREAMS,
            "cycle {cycle}: import {key} is partly in the log"
        );
        for (stream, events) in streams {
            assert_eq!(
                *events,
                stream % 7 + 1,
                "cycle {cycle}: {key}-{stream} is cut"
            );
        }
    }
    for key in &acknowledged {
        assert!(
            imports.contains_key(*key),
            "cycle {cycle}: acknowledged import {key} is lost"
        );
    }
    store.close();
    imports.len()
}

#[test]
fn a_kill_during_imports_leaves_each_whole_or_absent() {
    let cycles: usize = std::env::var("INFRALOG_CRASH_CYCLES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(8);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let data = dir.path().join("data");
    let journal_path = dir.path().join("journal");
    let ready = journal_path.with_extension("ready");
    let mut seed = std::process::id() as u64 ^ 0x1_5eed;
    let mut acknowledged_before = 0;
    for cycle in 0..cycles {
        let _ = std::fs::remove_file(&ready);
        let mut child = Command::new(env!("CARGO_BIN_EXE_crash_importer"))
            .arg(&data)
            .arg(&journal_path)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the child starts");
        let opening = Instant::now();
        while !ready.exists() {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("cycle {cycle}: the child exited while opening the store: {status}");
            }
            assert!(
                opening.elapsed() < Duration::from_secs(60),
                "cycle {cycle}: the child acknowledged nothing for a minute"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(Duration::from_millis(20 + seed % 300));
        child.kill().expect("SIGKILL is delivered");
        child.wait().expect("the child is reaped");
        let journal = std::fs::read_to_string(&journal_path).expect("the journal reads");
        let acknowledged = journal.lines().filter(|l| l.starts_with("A ")).count();
        assert!(
            acknowledged > acknowledged_before,
            "cycle {cycle}: no progress"
        );
        acknowledged_before = acknowledged;
        let whole = check(&data, &journal, cycle);
        eprintln!("cycle {cycle}: {acknowledged} imports acknowledged, {whole} whole in the log");
    }
}
