//! A write that fails on disk fail-stops the store: the append is refused, every
//! later write too, and `health()` reports it until the store is reopened.
//!
//! The failure is a real one, not a flag: sled writes a value larger than its
//! blob threshold to a file of its own under `log/blobs/`, so replacing that
//! directory with a plain file makes the next large write fail in the file
//! system, as a broken disk would. sled does not recover from that in-process
//! (its handles wait forever for the lost buffer), which is why the store
//! refuses writes until the server restarts.

use infralog_events::{
    AppendRequest, EventStore, ExpectedVersion, NewEvent, SledStore, SledStoreConfig, StoreError,
    StoreHealth, StreamId,
};

fn append(store: &SledStore, stream: &str, payload: Vec<u8>) -> Result<u64, StoreError> {
    store
        .append(AppendRequest {
            stream: StreamId::new(stream).expect("a stream name"),
            expected: ExpectedVersion::Any,
            events: vec![NewEvent::new("TestEvent", 1, payload)],
        })
        .wait()
        .map(|appended| appended.last_position())
}

/// Bytes no compressor shrinks (xorshift; no seed needed to be secret).
fn incompressible(len: usize) -> Vec<u8> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

#[test]
fn a_failed_write_fail_stops_the_store_and_its_health_says_so() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = SledStore::open(SledStoreConfig::new(dir.path())).expect("the store opens");
    assert_eq!(store.health(), StoreHealth::Writable);
    assert_eq!(append(&store, "before", b"small".to_vec()), Ok(1));

    let blobs = dir.path().join("log").join("blobs");
    if blobs.exists() {
        std::fs::remove_dir_all(&blobs).expect("remove sled's blob directory");
    }
    std::fs::write(&blobs, b"not a directory").expect("put a file in its place");

    let failed = append(&store, "large", incompressible(1024 * 1024));
    assert!(
        matches!(failed, Err(StoreError::Storage(_))),
        "the failed write is reported: {failed:?}"
    );
    let StoreHealth::FailStopped(reason) = store.health() else {
        panic!("the store still says {:?}", store.health());
    };
    assert!(reason.contains("writing the log failed"), "{reason}");
    // Every later write is refused, even one that would fit in sled's own file.
    assert!(matches!(
        append(&store, "after", b"small".to_vec()),
        Err(StoreError::Failed(_))
    ));
    // Closing does not wait for the write sled lost (it would, forever).
    store.close();
    assert!(matches!(store.health(), StoreHealth::FailStopped(_)));
    drop(store);
}

#[test]
fn a_closed_store_says_so() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = SledStore::open(SledStoreConfig::new(dir.path())).expect("the store opens");
    store.close();
    assert_eq!(store.health(), StoreHealth::Closed);
    assert_eq!(
        append(&store, "late", b"x".to_vec()),
        Err(StoreError::Closed)
    );
}
