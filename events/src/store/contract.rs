//! The contract every [`EventStore`] keeps, written once as tests that any backend
//! runs through a [`StoreHarness`] (see `tests/contract_sled.rs`).

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use uuid::Uuid;

use super::{
    AppendRequest, EventStore, ExpectedVersion, ImportRequest, ImportedEvent, StoreError,
    StoreHealth,
};
use crate::envelope::{payload_checksum, Envelope, Metadata, NewEvent, StreamId};

/// How the contract reaches a backend.
pub trait StoreHarness {
    /// The backend under test.
    type Store: EventStore;

    /// Opens the store at the harness's location (the same content each time).
    fn open(&self) -> Self::Store;

    /// Closes a store so that it can be opened again.
    fn close(&self, store: Self::Store);

    /// Damages the stored record at `position` (test support).
    fn corrupt(&self, store: &Self::Store, position: u64);
}

fn stream(name: &str) -> StreamId {
    StreamId::new(name).expect("test stream ids are valid")
}

fn event(text: &str) -> NewEvent {
    NewEvent::new("TestEvent", 1, text.as_bytes().to_vec())
}

fn append(
    store: &impl EventStore,
    name: &str,
    expected: ExpectedVersion,
    events: Vec<NewEvent>,
) -> Result<super::Appended, StoreError> {
    store
        .append(AppendRequest {
            stream: stream(name),
            expected,
            events,
        })
        .wait()
}

fn read_everything(store: &impl EventStore) -> Vec<Envelope> {
    let mut all = Vec::new();
    loop {
        let batch = store
            .read_all(all.len() as u64 + 1, 500)
            .expect("the log reads back");
        if batch.is_empty() {
            return all;
        }
        all.extend(batch);
    }
}

/// Versions in a stream are gapless and unique, positions across the log too.
pub fn versions_are_gapless_and_unique<H: StoreHarness>(harness: &H) {
    let store = harness.open();
    for round in 0..20u64 {
        for name in ["a", "b", "c"] {
            let events = (0..(round % 3 + 1))
                .map(|i| event(&format!("{name}-{round}-{i}")))
                .collect();
            append(&store, name, ExpectedVersion::Any, events).expect("appends go in");
        }
    }
    let all = read_everything(&store);
    for (index, envelope) in all.iter().enumerate() {
        assert_eq!(envelope.position, index as u64 + 1, "positions are gapless");
    }
    for name in ["a", "b", "c"] {
        let events = store
            .read_stream(&stream(name), 1, usize::MAX)
            .expect("streams read back");
        let versions: Vec<u64> = events.iter().map(|e| e.version).collect();
        let expected: Vec<u64> = (1..=versions.len() as u64).collect();
        assert_eq!(versions, expected, "stream {name} is gapless");
        assert_eq!(
            store.stream_version(&stream(name)).expect("version reads"),
            versions.len() as u64
        );
    }
    harness.close(store);
}

/// Writers racing on one expected version: exactly one wins each round; the others
/// learn the actual version.
pub fn one_winner_per_expected_version<H: StoreHarness>(harness: &H, writers: usize, rounds: u64)
where
    H::Store: 'static,
{
    let store = Arc::new(harness.open());
    for round in 0..rounds {
        let barrier = Arc::new(Barrier::new(writers));
        let handles: Vec<_> = (0..writers)
            .map(|writer| {
                let store = Arc::clone(&store);
                let barrier = Arc::clone(&barrier);
                std::thread::spawn(move || {
                    barrier.wait();
                    append(
                        &*store,
                        "contended",
                        ExpectedVersion::Exact(round),
                        vec![event(&format!("{round}-{writer}"))],
                    )
                })
            })
            .collect();
        let results: Vec<_> = handles
            .into_iter()
            .map(|h| h.join().expect("writer threads finish"))
            .collect();
        let winners = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(winners, 1, "round {round}: exactly one winner");
        for result in results.iter().filter_map(|r| r.as_ref().err()) {
            match result {
                StoreError::WrongExpectedVersion { actual, .. } => {
                    assert_eq!(*actual, round + 1, "losers see the winner's version")
                }
                other => panic!("round {round}: unexpected error {other}"),
            }
        }
    }
    assert_eq!(
        store.stream_version(&stream("contended")).expect("reads"),
        rounds
    );
    let store = Arc::try_unwrap(store).unwrap_or_else(|_| panic!("no writer keeps the store"));
    harness.close(store);
}

/// An append that is refused writes none of its events.
pub fn multi_event_appends_are_all_or_nothing<H: StoreHarness>(harness: &H) {
    let store = harness.open();
    append(
        &store,
        "s",
        ExpectedVersion::NoStream,
        vec![event("1"), event("2")],
    )
    .expect("first append");
    // Refused for its version.
    let refused = append(
        &store,
        "s",
        ExpectedVersion::Exact(1),
        vec![event("3"), event("4"), event("5")],
    );
    assert!(matches!(
        refused,
        Err(StoreError::WrongExpectedVersion { actual: 2, .. })
    ));
    // Refused because it repeats an event id.
    let repeated = event("4");
    let refused = append(
        &store,
        "s",
        ExpectedVersion::Exact(2),
        vec![event("3"), repeated.clone(), repeated],
    );
    assert!(matches!(refused, Err(StoreError::EventIdConflict { .. })));
    // Refused because one event is too large.
    let mut huge = event("huge");
    huge.payload = vec![0; super::checks::MAX_PAYLOAD_BYTES + 1];
    let refused = append(
        &store,
        "s",
        ExpectedVersion::Exact(2),
        vec![event("3"), huge],
    );
    assert!(matches!(refused, Err(StoreError::TooLarge(_))));
    let events = store
        .read_stream(&stream("s"), 1, usize::MAX)
        .expect("reads");
    let payloads: Vec<&[u8]> = events.iter().map(|e| e.payload.as_slice()).collect();
    assert_eq!(payloads, [b"1".as_slice(), b"2".as_slice()]);
    assert_eq!(store.head_position(), 2);
    harness.close(store);
}

/// Resending an append is answered with the original positions and writes nothing;
/// reusing its ids for other content, or resending part of it, is refused.
pub fn retried_appends_are_idempotent<H: StoreHarness>(harness: &H) {
    let store = harness.open();
    let events = vec![event("x"), event("y")];
    let first = append(&store, "s", ExpectedVersion::NoStream, events.clone()).expect("goes in");
    let again = append(&store, "s", ExpectedVersion::NoStream, events.clone()).expect("retry");
    assert_eq!(again.positions, first.positions);
    assert!(again.already_present);
    assert_eq!(store.head_position(), 2);
    let mut changed = events.clone();
    changed[1].payload = b"z".to_vec();
    assert!(matches!(
        append(&store, "s", ExpectedVersion::NoStream, changed),
        Err(StoreError::EventIdConflict { .. })
    ));
    let partial = vec![events[0].clone(), event("new")];
    assert!(matches!(
        append(&store, "s", ExpectedVersion::NoStream, partial),
        Err(StoreError::EventIdConflict { .. })
    ));
    let duplicate = event("dup");
    assert!(matches!(
        append(
            &store,
            "t",
            ExpectedVersion::Any,
            vec![duplicate.clone(), duplicate]
        ),
        Err(StoreError::EventIdConflict { .. })
    ));
    // Without an expected version a retry is still recognised at the stream's tail.
    let again = append(&store, "s", ExpectedVersion::Any, events).expect("retry");
    assert!(again.already_present);
    assert_eq!(store.head_position(), 2);
    harness.close(store);
}

/// Read-all returns every committed event once, in position order, also while many
/// threads append.
pub fn read_all_returns_everything_once_in_order<H: StoreHarness>(harness: &H)
where
    H::Store: 'static,
{
    let store = Arc::new(harness.open());
    let handles: Vec<_> = (0..8)
        .map(|writer| {
            let store = Arc::clone(&store);
            std::thread::spawn(move || {
                let mut ids = Vec::new();
                for i in 0..50 {
                    let e = event(&format!("{writer}-{i}"));
                    ids.push(e.event_id);
                    append(
                        &*store,
                        &format!("w{writer}"),
                        ExpectedVersion::Any,
                        vec![e],
                    )
                    .expect("goes in");
                }
                ids
            })
        })
        .collect();
    let ids: HashSet<Uuid> = handles
        .into_iter()
        .flat_map(|h| h.join().expect("writers finish"))
        .collect();
    let all = read_everything(&*store);
    assert_eq!(all.len(), ids.len());
    let read: HashSet<Uuid> = all.iter().map(|e| e.event_id).collect();
    assert_eq!(read, ids);
    assert!(all.windows(2).all(|w| w[1].position == w[0].position + 1));
    let store = Arc::try_unwrap(store).unwrap_or_else(|_| panic!("no writer keeps the store"));
    harness.close(store);
}

/// A subscriber started before a burst of concurrent appends sees every event once.
pub fn subscribers_see_every_event_once<H: StoreHarness>(harness: &H)
where
    H::Store: 'static,
{
    let store = Arc::new(harness.open());
    append(&*store, "before", ExpectedVersion::Any, vec![event("old")]).expect("goes in");
    let start = store.head_position();
    let mut subscription = store.subscribe(start);
    let writers = 16;
    let per_writer = 400;
    let handles: Vec<_> = (0..writers)
        .map(|writer| {
            let store = Arc::clone(&store);
            std::thread::spawn(move || {
                for i in 0..per_writer {
                    let events = (0..(i % 3 + 1))
                        .map(|j| event(&format!("{writer}-{i}-{j}")))
                        .collect();
                    append(
                        &*store,
                        &format!("burst-{}", i % 10),
                        ExpectedVersion::Any,
                        events,
                    )
                    .expect("goes in");
                }
            })
        })
        .collect();
    for handle in handles {
        handle.join().expect("writers finish");
    }
    let head = store.head_position();
    let mut seen = BTreeMap::new();
    let mut last = start;
    while last < head {
        let batch = subscription
            .next_batch(Duration::from_secs(5))
            .expect("the subscription delivers");
        assert!(
            !batch.is_empty(),
            "the subscription stalled at {last} of {head}"
        );
        for envelope in batch {
            assert_eq!(envelope.position, last + 1, "in order, without gaps");
            last = envelope.position;
            assert!(seen.insert(envelope.position, envelope.event_id).is_none());
        }
    }
    assert_eq!(seen.len() as u64, head - start);
    let nothing_more = subscription
        .next_batch(Duration::from_millis(50))
        .expect("still open");
    assert!(nothing_more.is_empty(), "no event is delivered twice");
    drop(subscription);
    let store = Arc::try_unwrap(store).unwrap_or_else(|_| panic!("no writer keeps the store"));
    harness.close(store);
}

/// Closing and reopening gives back the same content.
pub fn reopening_yields_the_same_content<H: StoreHarness>(harness: &H) {
    let store = harness.open();
    for i in 0..30 {
        append(
            &store,
            &format!("s{}", i % 4),
            ExpectedVersion::Any,
            vec![event(&i.to_string())],
        )
        .expect("goes in");
    }
    let before = read_everything(&store);
    let streams_before = store.list_streams(None, usize::MAX).expect("lists");
    let instance = store.instance_id();
    harness.close(store);
    let store = harness.open();
    assert_eq!(read_everything(&store), before);
    assert_eq!(
        store.list_streams(None, usize::MAX).expect("lists"),
        streams_before
    );
    assert_eq!(store.instance_id(), instance);
    assert_eq!(store.head_position(), 30);
    // The log goes on where it stopped.
    let next = append(&store, "s0", ExpectedVersion::Exact(8), vec![event("more")])
        .expect("appends after reopening");
    assert_eq!(next.positions, [31]);
    harness.close(store);
}

/// A damaged record is an error naming its position, in every read path.
pub fn checksum_mismatches_are_errors_naming_the_position<H: StoreHarness>(harness: &H) {
    let store = harness.open();
    for i in 0..5 {
        append(
            &store,
            "s",
            ExpectedVersion::Any,
            vec![event(&i.to_string())],
        )
        .expect("goes in");
    }
    harness.corrupt(&store, 3);
    let expect_corrupt = |result: Result<Vec<Envelope>, StoreError>| match result {
        Err(StoreError::Corrupt { position, .. }) => assert_eq!(position, 3),
        other => panic!("a damaged record must be an error, got {other:?}"),
    };
    expect_corrupt(store.read_all(1, 10));
    expect_corrupt(store.read_stream(&stream("s"), 1, 10));
    assert_eq!(store.read_all(4, 10).expect("later records read").len(), 2);
    harness.close(store);
}

/// Whole streams recorded elsewhere, interleaved as a source log would hold an
/// infrastructure and its VMs: `names[i]` gets `lengths[i]` events.
pub fn imported_streams(names: &[&str], lengths: &[u64]) -> ImportRequest {
    let source = Uuid::new_v4();
    let mut events = Vec::new();
    let longest = lengths.iter().copied().max().unwrap_or(0);
    for version in 1..=longest {
        for (name, length) in names.iter().zip(lengths) {
            if version > *length {
                continue;
            }
            let payload = format!("{name}/{version}/imported").into_bytes();
            events.push(ImportedEvent {
                stream: stream(name),
                version,
                event_id: Uuid::new_v4(),
                event_type: "ImportedEvent".into(),
                schema_version: 3,
                recorded_at: chrono::DateTime::from_timestamp_micros(
                    1_600_000_000_000_000 + version as i64 * 1_000_123,
                )
                .expect("a valid time"),
                metadata: Metadata {
                    request_id: Some(format!("request-{version}")),
                    identity: Some("owner-hash".into()),
                    source_instance: Some(source),
                },
                checksum: payload_checksum(&payload),
                payload,
            });
        }
    }
    ImportRequest { events }
}

/// An import keeps every event as it was recorded (id, version, time, metadata,
/// payload) and gives them new positions in its order; importing it again writes
/// nothing.
pub fn imports_keep_events_and_are_idempotent<H: StoreHarness>(harness: &H) {
    let store = harness.open();
    append(
        &store,
        "local",
        ExpectedVersion::NoStream,
        vec![event("mine")],
    )
    .expect("goes in");
    let request = imported_streams(&["inf", "vm-0", "vm-1"], &[4, 3, 1]);
    let imported = store
        .import_streams(request.clone())
        .wait()
        .expect("the import goes in");
    assert!(!imported.already_present);
    assert_eq!(imported.positions, (2..=9).collect::<Vec<u64>>());
    assert_eq!(store.head_position(), 9);
    let log = read_everything(&store);
    for (envelope, original) in log[1..].iter().zip(&request.events) {
        assert_eq!(ImportedEvent::from_envelope(envelope), *original);
    }
    for (name, length) in [("inf", 4), ("vm-0", 3), ("vm-1", 1)] {
        assert_eq!(store.stream_version(&stream(name)).expect("reads"), length);
    }
    let again = store
        .import_streams(request.clone())
        .wait()
        .expect("the same import again is accepted");
    assert!(again.already_present);
    assert_eq!(again.positions, imported.positions);
    assert_eq!(store.head_position(), 9);
    // The imported streams go on like any other.
    append(
        &store,
        "inf",
        ExpectedVersion::Exact(4),
        vec![event("after")],
    )
    .expect("appends follow an import");
    harness.close(store);
    let store = harness.open();
    assert_eq!(read_everything(&store)[..9], log[..]);
    harness.close(store);
}

/// An import is refused whole: a stream that exists with other events, a stream
/// only partly imported before, a damaged payload, a gap or a repeated id write
/// none of its events, not even those of its other streams.
pub fn imports_are_all_or_nothing<H: StoreHarness>(harness: &H) {
    let store = harness.open();
    append(
        &store,
        "taken",
        ExpectedVersion::NoStream,
        vec![event("other")],
    )
    .expect("goes in");
    let head = store.head_position();
    let unchanged = |store: &H::Store, names: &[&str]| {
        assert_eq!(store.head_position(), head, "nothing was written");
        for name in names {
            assert_eq!(store.stream_version(&stream(name)).expect("reads"), 0);
        }
    };

    let conflicting = imported_streams(&["fresh-a", "fresh-b", "taken"], &[2, 2, 1]);
    match store.import_streams(conflicting).wait() {
        Err(StoreError::ImportConflict { stream: name, .. }) => assert_eq!(name, stream("taken")),
        other => panic!("an existing stream must be a conflict, got {other:?}"),
    }
    unchanged(&store, &["fresh-a", "fresh-b"]);

    let mut damaged = imported_streams(&["fresh-a", "fresh-b"], &[3, 3]);
    let last = damaged.events.len() - 1;
    damaged.events[last].payload[0] ^= 0x01;
    assert!(matches!(
        store.import_streams(damaged).wait(),
        Err(StoreError::InvalidImport(_))
    ));
    unchanged(&store, &["fresh-a", "fresh-b"]);

    let mut gapped = imported_streams(&["fresh-a", "fresh-b"], &[3, 3]);
    gapped.events.remove(2);
    assert!(matches!(
        store.import_streams(gapped).wait(),
        Err(StoreError::InvalidImport(_))
    ));
    let mut repeated = imported_streams(&["fresh-a", "fresh-b"], &[2, 2]);
    let first_id = repeated.events[0].event_id;
    repeated.events[3].event_id = first_id;
    assert!(matches!(
        store.import_streams(repeated).wait(),
        Err(StoreError::InvalidImport(_))
    ));
    assert!(matches!(
        store.import_streams(ImportRequest::default()).wait(),
        Err(StoreError::InvalidImport(_))
    ));
    unchanged(&store, &["fresh-a", "fresh-b"]);

    // Part of a document already in the log (one stream of two) is a conflict too.
    let whole = imported_streams(&["part-a", "part-b"], &[2, 2]);
    let only_a = ImportRequest {
        events: whole
            .events
            .iter()
            .filter(|e| e.stream == stream("part-a"))
            .cloned()
            .collect(),
    };
    store
        .import_streams(only_a)
        .wait()
        .expect("one stream goes in");
    let head = store.head_position();
    assert!(matches!(
        store.import_streams(whole).wait(),
        Err(StoreError::ImportConflict { .. })
    ));
    assert_eq!(store.head_position(), head);
    assert_eq!(store.stream_version(&stream("part-b")).expect("reads"), 0);
    harness.close(store);
}

/// The payload the crash test writes for `stream` at `version`: deterministic and
/// of varying length, so a damaged or misplaced event shows.
pub fn crash_payload(stream: &str, version: u64) -> Vec<u8> {
    let mut text = format!("{stream}/{version}/");
    let filler = (version * 31 + stream.len() as u64 * 7) % 200;
    text.extend(std::iter::repeat_n('x', filler as usize));
    text.into_bytes()
}

/// A store that opened takes writes and says so; once closed it says that.
pub fn health_follows_the_store_lifecycle<H: StoreHarness>(harness: &H) {
    let store = harness.open();
    assert_eq!(store.health(), StoreHealth::Writable);
    append(
        &store,
        "health-1",
        ExpectedVersion::NoStream,
        vec![event("a")],
    )
    .expect("an append");
    assert_eq!(store.health(), StoreHealth::Writable);
    harness.close(store);
    let store = harness.open();
    assert_eq!(store.health(), StoreHealth::Writable, "reopened");
    harness.close(store);
}
