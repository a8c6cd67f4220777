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

fn exclusive(harness: &PgHarness, instance: Uuid) -> PgStore {
    let mut config = PgStoreConfig::new(harness.database.url(), instance);
    config.exclusive = true;
    PgStore::open(config).expect("the store opens as the active instance")
}

fn one_event(stream: &str) -> infralog_events::AppendRequest {
    infralog_events::AppendRequest {
        stream: infralog_events::StreamId::new(stream).expect("a valid stream id"),
        expected: infralog_events::ExpectedVersion::Any,
        events: vec![infralog_events::NewEvent::new(
            "TestEvent",
            1,
            b"x".to_vec(),
        )],
    }
}

/// A standby waits while another instance is active, takes over as soon as it
/// closes, with a greater fencing token, and writes after it.
#[test]
fn a_standby_takes_over_when_the_active_instance_goes() {
    let Some(harness) = PgHarness::new() else {
        return;
    };
    let active = exclusive(&harness, Uuid::new_v4());
    let first_token = active
        .fencing_token()
        .expect("an exclusive store has a token");
    active
        .append(one_event("before"))
        .wait()
        .expect("the active instance writes");
    let (opened, standby) = std::sync::mpsc::channel();
    let url = harness.database.url().to_owned();
    std::thread::spawn(move || {
        let mut config = PgStoreConfig::new(url, Uuid::new_v4());
        config.exclusive = true;
        let _ = opened.send(PgStore::open(config));
    });
    assert!(
        standby
            .recv_timeout(std::time::Duration::from_secs(2))
            .is_err(),
        "the standby must not open while another instance is active"
    );
    active.close();
    drop(active);
    let taken_over = standby
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("the standby takes over")
        .expect("and opens");
    assert!(taken_over.fencing_token().expect("a token") > first_token);
    let appended = taken_over
        .append(one_event("after"))
        .wait()
        .expect("it writes");
    assert_eq!(
        appended.positions,
        vec![2],
        "after the first instance's event"
    );
}

/// An instance whose token was superseded (another took over while it was cut
/// off) can never write again, and says it lost the leadership.
#[test]
fn a_replaced_instance_is_fenced_off() {
    let Some(harness) = PgHarness::new() else {
        return;
    };
    let cut_off = exclusive(&harness, Uuid::new_v4());
    cut_off
        .append(one_event("mine"))
        .wait()
        .expect("writes while active");
    // What a takeover does to the token (the lock itself cannot be taken from a
    // live session, so the takeover is made by hand).
    harness
        .database
        .execute("UPDATE infralog_leader SET token = token + 1")
        .expect("the token moves on");
    let refused = cut_off.append(one_event("mine")).wait();
    assert!(
        matches!(&refused, Err(infralog_events::StoreError::Failed(text)) if text.contains("no longer the active one")),
        "{refused:?}"
    );
    assert!(
        *cut_off.leadership_lost().borrow(),
        "the store knows it lost"
    );
    let again = cut_off.append(one_event("other")).wait();
    assert!(
        again.is_err(),
        "every later write is refused too: {again:?}"
    );
    let reader = harness.open();
    assert_eq!(
        reader.latest_position().expect("reads"),
        1,
        "nothing more was written"
    );
}

/// The active instance renews its lease; when a renewal finds another token
/// (it was paused past its lease and replaced), it knows it lost, without
/// having to write first.
#[test]
fn a_renewal_notices_a_takeover() {
    let Some(harness) = PgHarness::new() else {
        return;
    };
    let mut config = PgStoreConfig::new(harness.database.url(), Uuid::new_v4());
    config.exclusive = true;
    config.lease = std::time::Duration::from_millis(600);
    let active = PgStore::open(config).expect("opens as the active instance");
    std::thread::sleep(std::time::Duration::from_millis(900));
    assert!(
        !*active.leadership_lost().borrow(),
        "renewals keep the lease"
    );
    harness
        .database
        .execute("UPDATE infralog_leader SET token = token + 1")
        .expect("the token moves on");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    while !*active.leadership_lost().borrow() {
        assert!(
            std::time::Instant::now() < deadline,
            "the next renewal must notice the takeover"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
