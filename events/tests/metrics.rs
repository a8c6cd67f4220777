//! The metrics tree of the sled store: points written through the log's writer
//! read back after a reopen, a subject's deletion removes only its points, and
//! a read-only store refuses writes.

use infralog_events::store::metrics::{MetricPoint, MetricStore, MetricWrite};
use infralog_events::{SledStore, SledStoreConfig, StoreError};

fn point(subject: &str, name: &str, date_us: i64, value: &str) -> MetricPoint {
    MetricPoint {
        subject: subject.into(),
        name: name.into(),
        date_us,
        value: value.into(),
        metadata: "m".into(),
        cumulative: true,
    }
}

#[test]
fn points_read_back_in_date_order_with_equal_dates_kept_apart() {
    let dir = tempfile::tempdir().expect("temp dir");
    {
        let store = SledStore::open(SledStoreConfig::new(dir.path())).expect("open");
        let written = store
            .write_metrics(MetricWrite::Insert(vec![
                point("run:1", "loss", 20, "b"),
                point("run:1", "loss", 10, "a"),
                point("run:1", "loss", 20, "c"),
                point("run:2", "loss", 5, "x"),
            ]))
            .wait()
            .expect("written");
        assert_eq!(written, 4);
        store.close();
    }
    // (kill -9 after an acknowledged point: tests/api/facades/mlbench_crash.rs.)
    let store = SledStore::open_read_only(SledStoreConfig::new(dir.path())).expect("reopen");
    let points = store.read_metrics("run:1", None, None).expect("read");
    let values: Vec<&str> = points.iter().map(|p| p.value.as_str()).collect();
    assert_eq!(values, ["a", "b", "c"]);
    assert!(points.iter().all(|p| p.cumulative && p.metadata == "m"));
    assert_eq!(
        store.metric_subjects().expect("subjects"),
        ["run:1", "run:2"]
    );
    let refused = store
        .write_metrics(MetricWrite::DeleteSubject("run:1".into()))
        .wait();
    assert!(matches!(refused, Err(StoreError::ReadOnly)), "{refused:?}");
}

#[test]
fn deleting_a_subject_removes_its_points_only() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SledStore::open(SledStoreConfig::new(dir.path())).expect("open");
    store
        .write_metrics(MetricWrite::Insert(vec![
            point("run:1", "a", 1, "1"),
            point("run:1", "b", 1, "1"),
            point("run:10", "a", 1, "1"),
        ]))
        .wait()
        .expect("written");
    let removed = store
        .write_metrics(MetricWrite::DeleteSubject("run:1".into()))
        .wait()
        .expect("deleted");
    assert_eq!(removed, 2);
    assert!(store
        .read_metrics("run:1", None, None)
        .expect("read")
        .is_empty());
    assert_eq!(
        store
            .read_metrics("run:10", None, None)
            .expect("read")
            .len(),
        1
    );
    store.close();
}

/// The same points in PostgreSQL (`infralog_metrics`): read back in date order
/// with equal dates kept apart, by name and since, after a reopen; a subject's
/// deletion removes its points only; a read-only store and a replaced
/// instance write none.
#[test]
fn postgres_keeps_points_as_the_sled_tree_does_and_fences_replaced_writers() {
    use infralog_events::store::pg_testing::TestDatabase;
    use infralog_events::{PgStore, PgStoreConfig};
    let Some(database) = TestDatabase::create() else {
        return;
    };
    let mut config = PgStoreConfig::new(database.url(), uuid::Uuid::new_v4());
    config.exclusive = true;
    let store = PgStore::open(config.clone()).expect("open");
    let written = store
        .write_metrics(MetricWrite::Insert(vec![
            point("run:1", "loss", 20, "b"),
            point("run:1", "loss", 10, "a"),
            point("run:1", "loss", 20, "c"),
            point("run:1", "acc", 30, "z"),
            point("run:10", "loss", 5, "x"),
        ]))
        .wait()
        .expect("written");
    assert_eq!(written, 5);
    store.close();
    drop(store);
    let mut read_only = PgStoreConfig::new(database.url(), uuid::Uuid::new_v4());
    read_only.read_only = true;
    let reader = PgStore::open(read_only).expect("reopen");
    let values = |name: Option<&str>, since: Option<i64>| -> Vec<String> {
        reader
            .read_metrics("run:1", name, since)
            .expect("read")
            .into_iter()
            .map(|p| p.value)
            .collect()
    };
    assert_eq!(
        values(None, None),
        ["z", "a", "b", "c"],
        "by name, then date"
    );
    assert_eq!(values(Some("loss"), Some(20)), ["b", "c"]);
    assert_eq!(
        reader.metric_subjects().expect("subjects"),
        ["run:1", "run:10"]
    );
    let refused = reader
        .write_metrics(MetricWrite::DeleteSubject("run:1".into()))
        .wait();
    assert!(matches!(refused, Err(StoreError::ReadOnly)), "{refused:?}");
    let writer = PgStore::open(config.clone()).expect("open again");
    let removed = writer
        .write_metrics(MetricWrite::DeleteSubject("run:1".into()))
        .wait()
        .expect("deleted");
    assert_eq!(removed, 4);
    assert_eq!(reader.metric_subjects().expect("subjects"), ["run:10"]);
    // Another instance takes over (the lease is moved by hand, as after an
    // expiry): the first one's points are refused by the fence.
    database
        .execute("UPDATE infralog_leader SET token = token + 1")
        .expect("the token moves");
    let fenced = writer
        .write_metrics(MetricWrite::Insert(vec![point("run:2", "loss", 1, "late")]))
        .wait();
    assert!(fenced.is_err(), "a replaced instance writes no point");
    assert_eq!(reader.metric_subjects().expect("subjects"), ["run:10"]);
}
