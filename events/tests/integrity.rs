//! The log refuses to serve damage: the acknowledged-head record is kept, read-only
//! opens change no byte, a loss is refused until it is accepted by a repair, and a
//! repair keeps the damaged files and records itself.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use infralog_events::store::contract::crash_payload;
use infralog_events::store::{Damage, REPAIR_STREAM};
use infralog_events::{
    AppendRequest, EventStore, ExpectedVersion, NewEvent, SledStore, SledStoreConfig, StoreError,
    StreamId,
};
use sha2::{Digest, Sha256};

fn append_events(store: &SledStore, streams: u64, rounds: u64) {
    for _ in 0..rounds {
        for s in 0..streams {
            let name = format!("integrity-{s}");
            let stream = StreamId::new(name.clone()).expect("valid id");
            let version = store.stream_version(&stream).expect("reads");
            store
                .append(AppendRequest {
                    stream,
                    expected: ExpectedVersion::Exact(version),
                    events: vec![NewEvent::new(
                        "Integrity",
                        1,
                        crash_payload(&name, version + 1),
                    )],
                })
                .wait()
                .expect("appends go in");
        }
    }
}

fn filled(path: &Path) -> u64 {
    let store = SledStore::open(SledStoreConfig::new(path)).expect("opens");
    append_events(&store, 10, 30);
    let head = store.head_position();
    store.close();
    head
}

/// SHA-256 of every file under `dir`, by relative path.
fn hashes(dir: &Path) -> BTreeMap<PathBuf, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, String>) {
        for entry in std::fs::read_dir(dir).expect("lists") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let bytes = std::fs::read(&path).expect("reads");
                let digest = Sha256::digest(&bytes);
                let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
                out.insert(path.strip_prefix(root).expect("inside").to_path_buf(), hex);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn truncate_db(data: &Path, fraction: f64) {
    let db = data.join("log").join("db");
    let length = std::fs::metadata(&db).expect("stat").len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&db)
        .and_then(|f| f.set_len((length as f64 * fraction) as u64))
        .expect("truncates");
}

fn damage_of(result: Result<SledStore, StoreError>) -> Damage {
    match result {
        Err(StoreError::Damaged(damage)) => damage,
        Err(other) => panic!("expected damage, got {other}"),
        Ok(store) => panic!("a damaged log opened (head {})", store.head_position()),
    }
}

#[test]
fn a_read_only_open_changes_no_byte_even_of_a_damaged_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    let head = filled(dir.path());
    let before = hashes(dir.path());
    let store = SledStore::open_read_only(SledStoreConfig::new(dir.path())).expect("opens");
    assert_eq!(store.head_position(), head);
    assert_eq!(
        store.read_all(1, usize::MAX).expect("reads").len() as u64,
        head
    );
    let refused = store
        .append(AppendRequest {
            stream: StreamId::new("integrity-0").expect("valid"),
            expected: ExpectedVersion::Any,
            events: vec![NewEvent::new("Integrity", 1, vec![1])],
        })
        .wait();
    assert_eq!(refused, Err(StoreError::ReadOnly));
    store.close();
    drop(store);
    assert_eq!(
        hashes(dir.path()),
        before,
        "a read-only open changed a file"
    );

    truncate_db(dir.path(), 0.3);
    let damaged = hashes(dir.path());
    for _ in 0..2 {
        let damage = damage_of(SledStore::open_read_only(SledStoreConfig::new(dir.path())));
        assert!(matches!(damage, Damage::Lost { acknowledged, .. } if acknowledged == head));
        assert_eq!(
            hashes(dir.path()),
            damaged,
            "a refused read-only open changed a file"
        );
    }
}

#[test]
fn a_read_only_open_of_a_running_servers_log_is_refused_as_in_use() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SledStore::open(SledStoreConfig::new(dir.path())).expect("opens");
    append_events(&store, 2, 2);
    match SledStore::open_read_only(SledStoreConfig::new(dir.path())) {
        Err(StoreError::InUse(_)) => {}
        Err(other) => panic!("expected in use, got {other}"),
        Ok(_) => panic!("a running server's log was opened"),
    }
    store.close();
}

#[test]
fn a_lost_suffix_is_refused_on_every_open_and_the_record_is_never_lowered() {
    let dir = tempfile::tempdir().expect("tempdir");
    let head = filled(dir.path());
    truncate_db(dir.path(), 0.3);
    let record = std::fs::read(dir.path().join("acked-head")).expect("the record exists");
    for _ in 0..3 {
        let damage = damage_of(SledStore::open(SledStoreConfig::new(dir.path())));
        let Damage::Lost {
            head: found,
            acknowledged,
        } = damage
        else {
            panic!("expected a loss, got {damage}");
        };
        assert_eq!(acknowledged, head);
        assert!(found < head);
        let message = damage.to_string();
        assert!(
            message.contains(&format!("{}..={head}", found + 1))
                && message.contains(&format!("{} acknowledged events", head - found)),
            "the refusal names the lost positions and their count: {message}"
        );
    }
    assert_eq!(
        std::fs::read(dir.path().join("acked-head")).expect("still there"),
        record,
        "a refused open rewrote the acknowledged-head record"
    );
}

#[test]
fn a_missing_or_damaged_record_is_reported_not_guessed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let head = filled(dir.path());
    let record = dir.path().join("acked-head");
    let mut bytes = std::fs::read(&record).expect("reads");
    bytes[10] ^= 0x10;
    std::fs::write(&record, &bytes).expect("writes");
    assert!(matches!(
        damage_of(SledStore::open(SledStoreConfig::new(dir.path()))),
        Damage::AckRecordDamaged(_)
    ));
    std::fs::remove_file(&record).expect("removes");
    assert_eq!(
        damage_of(SledStore::open(SledStoreConfig::new(dir.path()))),
        Damage::AckRecordMissing { head }
    );
}

#[test]
fn a_log_replaced_by_another_of_the_same_length_diverges() {
    let dir = tempfile::tempdir().expect("tempdir");
    let other = tempfile::tempdir().expect("tempdir");
    let head = filled(dir.path());
    assert_eq!(filled(other.path()), head);
    // Same shape, other event ids: a restored or swapped log.
    std::fs::remove_dir_all(dir.path().join("log")).expect("removes");
    std::fs::rename(other.path().join("log"), dir.path().join("log")).expect("moves");
    assert_eq!(
        damage_of(SledStore::open(SledStoreConfig::new(dir.path()))),
        Damage::Diverged { acknowledged: head }
    );
}

#[test]
fn a_repair_keeps_the_damaged_files_records_itself_and_the_log_opens_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = SledStoreConfig::new(dir.path());
    assert!(
        SledStore::repair(&config).is_err(),
        "a directory without a log is an error, not a repair"
    );
    let head = filled(dir.path());
    assert_eq!(
        SledStore::repair(&config).expect("repairs"),
        None,
        "a sound log needs none"
    );
    truncate_db(dir.path(), 0.4);
    let damaged = hashes(&dir.path().join("log"));
    let report = SledStore::repair(&config)
        .expect("repairs")
        .expect("there was damage");
    assert_eq!(report.acknowledged_head, Some(head));
    assert!(report.kept_head < head);
    assert_eq!(report.lost_acknowledged, head - report.kept_head);
    assert_eq!(report.recorded_at_position, report.kept_head + 1);
    assert!(
        report.damage.contains("acknowledged events"),
        "{}",
        report.damage
    );
    assert_eq!(
        hashes(&report.backup.join("log")),
        damaged,
        "the backup holds the damaged files as they were"
    );
    assert!(report.backup.join("acked-head").is_file());

    let store = SledStore::open(config.clone()).expect("the repaired log opens");
    assert_eq!(store.head_position(), report.kept_head + 1);
    let repairs = store
        .read_stream(&StreamId::new(REPAIR_STREAM).expect("valid"), 1, 10)
        .expect("reads");
    assert_eq!(repairs.len(), 1);
    assert_eq!(repairs[0].event_type, "LogRepaired");
    assert_eq!(repairs[0].position, report.kept_head + 1);
    let recorded: infralog_events::store::RepairReport =
        postcard::from_bytes(&repairs[0].payload).expect("the repair record decodes");
    assert_eq!(recorded.kept_head, report.kept_head);
    assert_eq!(recorded.backup, report.backup);
    // Every kept stream is gapless and writable from where it now ends.
    append_events(&store, 10, 1);
    store.close();
    drop(store);
    assert_eq!(SledStore::repair(&config).expect("checks"), None);
}
