//! A kill during an import leaves all of it or nothing: a child process imports
//! groups of 24 streams from 4 threads and is killed at a random moment; the
//! reopened store must hold every acknowledged import, and every import it holds
//! must be whole (all its streams, each with all its events).
//!
//! `INFRALOG_CRASH_CYCLES` sets the number of cycles (default 8).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use infralog_events::store::contract::crash_payload;
use infralog_events::{EventStore, SledStore, SledStoreConfig};

mod support;
use support::KillCycles;

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
    KillCycles {
        program: env!("CARGO_BIN_EXE_crash_importer"),
        args: Vec::new(),
        default_cycles: 8,
        min_run: Duration::from_millis(20),
        spread_ms: 300,
        store_url: None,
    }
    .run(|paths, cycle| {
        let journal = std::fs::read_to_string(&paths.journal).expect("the journal reads");
        let acknowledged = journal.lines().filter(|l| l.starts_with("A ")).count();
        let whole = check(&paths.data, &journal, cycle);
        eprintln!("cycle {cycle}: {acknowledged} imports acknowledged, {whole} whole in the log");
        acknowledged
    });
}
