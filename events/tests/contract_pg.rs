//! The store contract, run against the PostgreSQL store (a database per test;
//! see `infralog_events::store::pg_testing`).

use infralog_events::store::contract::{self, StoreHarness};
use infralog_events::store::pg_testing::TestDatabase;
use infralog_events::{EventStore, PgStore, PgStoreConfig};
use uuid::Uuid;

struct PgHarness {
    database: TestDatabase,
    instance: Uuid,
}

impl PgHarness {
    fn new() -> Option<Self> {
        Some(PgHarness {
            database: TestDatabase::create()?,
            instance: Uuid::new_v4(),
        })
    }
}

impl StoreHarness for PgHarness {
    type Store = PgStore;

    fn open(&self) -> PgStore {
        PgStore::open(PgStoreConfig::new(self.database.url(), self.instance))
            .expect("the store opens")
    }

    fn close(&self, store: PgStore) {
        store.close();
        drop(store);
    }

    fn corrupt(&self, store: &PgStore, position: u64) {
        store
            .corrupt_record_for_tests(position)
            .expect("the payload is damaged");
    }
}

macro_rules! contract_tests {
    ($($name:ident $(($($arg:expr),*))?;)*) => {$(
        #[test]
        fn $name() {
            if let Some(harness) = PgHarness::new() {
                contract::$name(&harness $($(, $arg)*)?);
            }
        }
    )*};
}

contract_tests! {
    versions_are_gapless_and_unique;
    one_winner_per_expected_version(64, 200);
    multi_event_appends_are_all_or_nothing;
    retried_appends_are_idempotent;
    read_all_returns_everything_once_in_order;
    subscribers_see_every_event_once;
    reopening_yields_the_same_content;
    checksum_mismatches_are_errors_naming_the_position;
    imports_keep_events_and_are_idempotent;
    imports_are_all_or_nothing;
}

/// Two stores on one database (two instances): each sees the other's appends,
/// and one expected version has one winner across them.
#[test]
fn two_instances_share_one_log() {
    let Some(harness) = PgHarness::new() else {
        return;
    };
    let first = harness.open();
    let second = PgStore::open(PgStoreConfig::new(harness.database.url(), Uuid::new_v4()))
        .expect("a second instance opens");
    let stream = infralog_events::StreamId::new("shared-1").expect("a valid stream id");
    let event = |text: &str| infralog_events::NewEvent::new("TestEvent", 1, text.into());
    let request = |text: &str| infralog_events::AppendRequest {
        stream: stream.clone(),
        expected: infralog_events::ExpectedVersion::NoStream,
        events: vec![event(text)],
    };
    let mut subscription = second.subscribe(0);
    first
        .append(request("from the first"))
        .wait()
        .expect("the first instance appends");
    let refused = second.append(request("from the second")).wait();
    assert!(
        matches!(
            refused,
            Err(infralog_events::StoreError::WrongExpectedVersion { actual: 1, .. })
        ),
        "the second instance's stale append is refused: {refused:?}"
    );
    let seen = subscription
        .next_batch(std::time::Duration::from_secs(5))
        .expect("the second instance follows the log");
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].payload, b"from the first");
    assert_eq!(second.head_position(), 1, "the follower advanced the head");
    let read = second.read_stream(&stream, 1, 10).expect("reads");
    assert_eq!(read.len(), 1);
    assert_eq!(read[0].metadata.source_instance, Some(harness.instance));
}
