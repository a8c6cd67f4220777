//! Acknowledged appends survive SIGKILL: a child process appends from 16 threads to
//! 1,000 streams and notes each acknowledged append; it is killed at a random
//! moment, and the reopened store must hold every acknowledged append, with gapless
//! streams whose every append is whole.
//!
//! `INFRALOG_CRASH_CYCLES` sets the number of cycles (default 20).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use infralog_events::store::contract::crash_payload;

mod support;
use infralog_events::{EventStore, PgStore, PgStoreConfig, SledStore, SledStoreConfig, StreamId};
use support::KillCycles;

const STREAMS: usize = 1000;

#[derive(Default)]
struct Journal {
    /// Highest acknowledged version per stream.
    acknowledged: HashMap<String, u64>,
    /// Versions at which a stream may end: the end of every append begun.
    boundaries: HashMap<String, Vec<u64>>,
    acknowledged_appends: usize,
}

fn read_journal(path: &std::path::Path) -> Journal {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut journal = Journal::default();
    for line in text.lines() {
        let parts: Vec<&str> = line.split(' ').collect();
        match parts.as_slice() {
            ["I", stream, from, count] => {
                let (Ok(from), Ok(count)) = (from.parse::<u64>(), count.parse::<u64>()) else {
                    continue; // a line cut by the kill
                };
                journal
                    .boundaries
                    .entry(stream.to_string())
                    .or_default()
                    .extend([from - 1, from + count - 1]);
            }
            ["A", stream, version] => {
                let Ok(version) = version.parse::<u64>() else {
                    continue;
                };
                let entry = journal.acknowledged.entry(stream.to_string()).or_default();
                *entry = (*entry).max(version);
                journal.acknowledged_appends += 1;
            }
            _ => {}
        }
    }
    journal
}

fn check(data: &std::path::Path, journal: &Journal, cycle: usize) -> u64 {
    let store = SledStore::open(SledStoreConfig::new(data))
        .unwrap_or_else(|e| panic!("cycle {cycle}: the store must reopen: {e}"));
    let report = store.recovery_report();
    assert!(
        report.acknowledged_head <= report.head,
        "cycle {cycle}: the log ends before its acknowledged head"
    );
    let head = check_log(&store, journal, cycle);
    store.close();
    head
}

/// Checks a log against the child's journal: gapless positions and versions,
/// the payloads written, no acknowledged append lost, no append half there.
fn check_log(store: &dyn EventStore, journal: &Journal, cycle: usize) -> u64 {
    // One pass over the whole log: gapless positions, and per stream gapless
    // versions holding what was written.
    let mut versions: HashMap<String, u64> = HashMap::new();
    let mut position = 0;
    loop {
        let batch = store.read_all(position + 1, 10_000).expect("the log reads");
        if batch.is_empty() {
            break;
        }
        for envelope in batch {
            assert_eq!(
                envelope.position,
                position + 1,
                "cycle {cycle}: positions are gapless"
            );
            position = envelope.position;
            let name = envelope.stream.as_str().to_string();
            let version = versions.entry(name.clone()).or_default();
            *version += 1;
            assert_eq!(
                envelope.version, *version,
                "cycle {cycle}: {name} is gapless"
            );
            assert_eq!(
                envelope.payload,
                crash_payload(&name, envelope.version),
                "cycle {cycle}: {name} v{} holds what was written",
                envelope.version
            );
        }
    }
    let head = store.head_position();
    assert_eq!(position, head, "cycle {cycle}: the head is the last record");
    for s in 0..STREAMS {
        let name = format!("crash-{s}");
        let version = versions.get(&name).copied().unwrap_or(0);
        let id = StreamId::new(name.clone()).expect("valid id");
        assert_eq!(
            store.stream_version(&id).expect("reads"),
            version,
            "cycle {cycle}: {name}'s index agrees with the log"
        );
        let acknowledged = journal.acknowledged.get(&name).copied().unwrap_or(0);
        assert!(
            version >= acknowledged,
            "cycle {cycle}: {name} lost acknowledged events (has {version}, {acknowledged} were acknowledged)"
        );
        if version > 0 {
            let ends_at_boundary = journal
                .boundaries
                .get(&name)
                .is_some_and(|b| b.contains(&version));
            assert!(
                ends_at_boundary,
                "cycle {cycle}: {name} ends inside an append (version {version})"
            );
        }
    }
    head
}

#[test]
fn acknowledged_appends_survive_sigkill() {
    let started = Instant::now();
    let mut totals = (0, 0);
    KillCycles {
        program: env!("CARGO_BIN_EXE_crash_appender"),
        args: vec!["16".into(), STREAMS.to_string()],
        default_cycles: 20,
        min_run: Duration::from_millis(50),
        spread_ms: 500,
        store_url: None,
    }
    .run(|paths, cycle| {
        let journal = read_journal(&paths.journal);
        let head = check(&paths.data, &journal, cycle);
        eprintln!(
            "cycle {cycle}: {} appends acknowledged so far, log head {head}, 0 lost",
            journal.acknowledged_appends
        );
        totals = (journal.acknowledged_appends, head);
        journal.acknowledged_appends
    });
    eprintln!(
        "crash test passed: {} acknowledged appends, {} events, 0 lost, {:.1}s",
        totals.0,
        totals.1,
        started.elapsed().as_secs_f64()
    );
}

/// The same kill test against the PostgreSQL store: the child appends through
/// its own instance, is killed, and a fresh instance finds every acknowledged
/// append (PostgreSQL's commit is the durability point).
#[test]
fn acknowledged_appends_survive_sigkill_on_postgres() {
    let Some(database) = infralog_events::store::pg_testing::TestDatabase::create() else {
        return;
    };
    let started = Instant::now();
    let mut totals = (0, 0);
    KillCycles {
        program: env!("CARGO_BIN_EXE_crash_appender"),
        args: vec!["16".into(), STREAMS.to_string()],
        default_cycles: 20,
        min_run: Duration::from_millis(50),
        spread_ms: 500,
        store_url: Some(database.url().to_owned()),
    }
    .run(|paths, cycle| {
        let journal = read_journal(&paths.journal);
        let store = PgStore::open(PgStoreConfig::new(database.url(), uuid::Uuid::new_v4()))
            .unwrap_or_else(|e| panic!("cycle {cycle}: the store must reopen: {e}"));
        let head = check_log(&store, &journal, cycle);
        store.close();
        eprintln!(
            "cycle {cycle}: {} appends acknowledged so far, log head {head}, 0 lost",
            journal.acknowledged_appends
        );
        totals = (journal.acknowledged_appends, head);
        journal.acknowledged_appends
    });
    eprintln!(
        "PostgreSQL crash test passed: {} acknowledged appends, {} events, 0 lost, {:.1}s",
        totals.0,
        totals.1,
        started.elapsed().as_secs_f64()
    );
}
