//! A torn tail: the log's data files cut at random offsets. The store must then
//! either open and report what it dropped, or refuse with a clear error; it must
//! never serve a damaged record, and never panic.

use std::path::Path;

use infralog_events::store::contract::crash_payload;
use infralog_events::{
    AppendRequest, EventStore, ExpectedVersion, NewEvent, SledStore, SledStoreConfig, StoreError,
    StreamId,
};

const STREAMS: u64 = 20;

fn fill(path: &Path) -> u64 {
    let store = SledStore::open(SledStoreConfig::new(path)).expect("a fresh store opens");
    for round in 1..=200u64 {
        for s in 0..STREAMS {
            if (round + s) % 3 != 0 {
                continue;
            }
            let name = format!("torn-{s}");
            let version = store
                .stream_version(&StreamId::new(name.clone()).expect("valid id"))
                .expect("reads");
            store
                .append(AppendRequest {
                    stream: StreamId::new(name.clone()).expect("valid id"),
                    expected: ExpectedVersion::Exact(version),
                    events: vec![NewEvent::new("Torn", 1, crash_payload(&name, version + 1))],
                })
                .wait()
                .expect("appends go in");
        }
    }
    let head = store.head_position();
    store.close();
    head
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("creates");
    for entry in std::fs::read_dir(from).expect("lists") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copies");
        }
    }
}

/// Every file of the sled directory that holds data.
fn data_files(log_dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(log_dir)
        .expect("lists")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            name == "db" || name.starts_with("snap.")
        })
        .collect();
    files.sort();
    files
}

/// Reads the whole log; every record served must be the one written.
fn check_served(store: &SledStore) -> Result<u64, StoreError> {
    let mut position = 0;
    loop {
        let batch = store.read_all(position + 1, 1000)?;
        if batch.is_empty() {
            return Ok(position);
        }
        for envelope in batch {
            assert_eq!(
                envelope.position,
                position + 1,
                "served positions are gapless"
            );
            let name = envelope.stream.as_str();
            assert_eq!(
                envelope.payload,
                crash_payload(name, envelope.version),
                "a served record holds what was written"
            );
            position = envelope.position;
        }
    }
}

#[test]
fn a_torn_tail_is_reported_or_refused_and_never_served() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let original = dir.path().join("original");
    let written = fill(&original);
    let mut seed: u64 = 0x7e57_5eed ^ std::process::id() as u64;
    let (mut opened, mut refused, mut dropped) = (0, 0, 0);
    for trial in 0..24 {
        let copy = dir.path().join(format!("trial-{trial}"));
        copy_dir(&original, &copy);
        let files = data_files(&copy.join("log"));
        assert!(!files.is_empty(), "sled keeps its data in db or snap files");
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let file = &files[(seed as usize) % files.len()];
        let length = std::fs::metadata(file).expect("stat").len();
        // Even trials cut within the last 4 KiB (a write torn by a crash); odd ones
        // anywhere, since sled's files are not strictly append-only.
        let cut = if trial % 2 == 0 {
            length.saturating_sub((seed >> 8) % 4096 + 1)
        } else {
            (seed >> 8) % (length + 1)
        };
        let handle = std::fs::OpenOptions::new()
            .write(true)
            .open(file)
            .expect("opens for writing");
        handle.set_len(cut).expect("truncates");
        drop(handle);
        match SledStore::open(SledStoreConfig::new(&copy)) {
            Ok(store) => {
                let report = store.recovery_report().clone();
                assert_eq!(
                    report.lost_acknowledged,
                    written - report.head,
                    "trial {trial}: what was dropped is reported"
                );
                match check_served(&store) {
                    Ok(served) => assert_eq!(served, report.head, "trial {trial}"),
                    Err(error) => assert!(
                        matches!(
                            error,
                            StoreError::Corrupt { .. }
                                | StoreError::Inconsistent(_)
                                | StoreError::Storage(_)
                        ),
                        "trial {trial}: a damaged record is refused with an error, got {error}"
                    ),
                }
                store.close();
                opened += 1;
                if report.lost_acknowledged > 0 {
                    dropped += 1;
                }
            }
            Err(error) => {
                let message = error.to_string();
                assert!(!message.is_empty(), "trial {trial}: the refusal says why");
                refused += 1;
            }
        }
    }
    eprintln!(
        "torn tails: {opened} opened ({dropped} of them reporting dropped events), {refused} refused, {written} events written"
    );
}
