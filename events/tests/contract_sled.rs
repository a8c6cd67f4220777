//! The store contract, run against the sled store.

use infralog_events::store::contract::{self, StoreHarness};
use infralog_events::{SledStore, SledStoreConfig};

struct SledHarness {
    dir: tempfile::TempDir,
}

impl SledHarness {
    fn new() -> Self {
        SledHarness {
            dir: tempfile::tempdir().expect("a temporary directory"),
        }
    }
}

impl StoreHarness for SledHarness {
    type Store = SledStore;

    fn open(&self) -> SledStore {
        SledStore::open(SledStoreConfig::new(self.dir.path())).expect("the store opens")
    }

    fn close(&self, store: SledStore) {
        store.close();
        drop(store);
    }

    fn corrupt(&self, store: &SledStore, position: u64) {
        store
            .corrupt_record_for_tests(position)
            .expect("the chunk is damaged");
    }
}

#[test]
fn versions_are_gapless_and_unique() {
    contract::versions_are_gapless_and_unique(&SledHarness::new());
}

#[test]
fn sixty_four_writers_on_one_expected_version_have_one_winner_per_round() {
    contract::one_winner_per_expected_version(&SledHarness::new(), 64, 200);
}

#[test]
fn multi_event_appends_are_all_or_nothing() {
    contract::multi_event_appends_are_all_or_nothing(&SledHarness::new());
}

#[test]
fn retried_appends_are_idempotent() {
    contract::retried_appends_are_idempotent(&SledHarness::new());
}

#[test]
fn read_all_returns_everything_once_in_order() {
    contract::read_all_returns_everything_once_in_order(&SledHarness::new());
}

#[test]
fn subscribers_see_every_event_once() {
    contract::subscribers_see_every_event_once(&SledHarness::new());
}

#[test]
fn reopening_yields_the_same_content() {
    contract::reopening_yields_the_same_content(&SledHarness::new());
}

#[test]
fn checksum_mismatches_are_errors_naming_the_position() {
    contract::checksum_mismatches_are_errors_naming_the_position(&SledHarness::new());
}

#[test]
fn a_second_opening_of_a_held_log_says_it_is_in_use() {
    let harness = SledHarness::new();
    let store = harness.open();
    let second = SledStore::open(SledStoreConfig::new(harness.dir.path()));
    assert!(
        matches!(second, Err(infralog_events::StoreError::InUse(_))),
        "{second:?}"
    );
    harness.close(store);
    harness.close(harness.open());
}

#[test]
fn imports_keep_events_and_are_idempotent() {
    contract::imports_keep_events_and_are_idempotent(&SledHarness::new());
}

#[test]
fn imports_are_all_or_nothing() {
    contract::imports_are_all_or_nothing(&SledHarness::new());
}

#[test]
fn health_follows_the_store_lifecycle() {
    contract::health_follows_the_store_lifecycle(&SledHarness::new());
}
