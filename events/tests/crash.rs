//! Acknowledged appends survive SIGKILL: a child process appends from 16 threads to
//! 1,000 streams and notes each acknowledged append; it is killed at a random
//! moment, and the reopened store must hold every acknowledged append, with gapless
//! streams whose every append is whole.
//!
//! `INFRALOG_CRASH_CYCLES` sets the number of cycles (default 20).

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use infralog_events::store::contract::crash_payload;
use infralog_events::{EventStore, SledStore, SledStoreConfig, StreamId};

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
    store.close();
    head
}

#[test]
fn acknowledged_appends_survive_sigkill() {
    let cycles: usize = std::env::var("INFRALOG_CRASH_CYCLES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(20);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let data = dir.path().join("data");
    let journal_path = dir.path().join("journal");
    let mut seed: u64 = std::env::var("INFRALOG_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| std::process::id() as u64 ^ 0x5eed);
    eprintln!("crash test: {cycles} cycles, seed {seed}");
    let started = Instant::now();
    let mut head = 0;
    let mut acknowledged_before = 0;
    let ready = journal_path.with_extension("ready");
    for cycle in 0..cycles {
        let _ = std::fs::remove_file(&ready);
        let mut child = Command::new(env!("CARGO_BIN_EXE_crash_appender"))
            .arg(&data)
            .arg(&journal_path)
            .arg("16")
            .arg(STREAMS.to_string())
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
        std::thread::sleep(Duration::from_millis(50 + seed % 500));
        if let Ok(Some(status)) = child.try_wait() {
            panic!("cycle {cycle}: the child exited on its own: {status}");
        }
        child.kill().expect("SIGKILL is delivered");
        child.wait().expect("the child is reaped");
        let journal = read_journal(&journal_path);
        assert!(
            journal.acknowledged_appends > acknowledged_before,
            "cycle {cycle}: the child acknowledged nothing before it was killed"
        );
        acknowledged_before = journal.acknowledged_appends;
        head = check(&data, &journal, cycle);
        eprintln!(
            "cycle {cycle}: {} appends acknowledged so far, log head {head}, 0 lost",
            journal.acknowledged_appends
        );
    }
    let journal = read_journal(&journal_path);
    eprintln!(
        "crash test passed: {cycles} SIGKILL cycles, {} acknowledged appends, {head} events, 0 lost, {:.1}s",
        journal.acknowledged_appends,
        started.elapsed().as_secs_f64()
    );
}
