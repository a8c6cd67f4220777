//! The event log in PostgreSQL (`serve --store postgres://…`): one active
//! instance and standbys, and `infralog migrate` from sled. Each test makes a database of its own from
//! `INFRALOG_TEST_POSTGRES` (`.ci/postgres`); without it the tests say SKIPPED,
//! except under CI=true.

use std::time::Duration;

use infralog::storage::StoreLocation;
use infralog_events::store::pg_testing::TestDatabase;

use crate::harness::*;

fn instance(database: &TestDatabase, dir: &std::path::Path) -> TestServer {
    let mut settings = settings(dir);
    settings.store = StoreLocation::Postgres(database.url().to_owned());
    TestServer::start_with(settings)
}

/// One active instance writes; a second waits as a standby, and takes over
/// when the active one is killed: it serves every infrastructure and finishes
/// the contextualization the first one was running.
#[test]
fn a_standby_takes_over_after_kill_9_and_finishes_the_work() {
    let Some(database) = TestDatabase::create() else {
        return;
    };
    let (dir_a, dir_b) = (
        tempfile::tempdir().expect("a dir"),
        tempfile::tempdir().expect("a dir"),
    );
    let store = ["--store", database.url()];
    let active = ChildServer::start(dir_a.path(), &store);
    let done = create(&active, "alice", RADL_FRONT_WN_NO_CTX);
    wait_for_state(
        &active,
        "alice",
        &done,
        "configured",
        Duration::from_secs(30),
    );
    let standby_dir = dir_b.path().to_owned();
    let url = database.url().to_owned();
    let standby = std::thread::spawn(move || ChildServer::start(&standby_dir, &["--store", &url]));
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        !standby.is_finished(),
        "a standby does not serve while another instance is active"
    );
    // Killed while it contextualizes (the Dummy cloud's takes two seconds).
    let interrupted = create(&active, "alice", RADL_CTX);
    let killed = std::time::Instant::now();
    active.kill();
    let taken_over = standby.join().expect("the standby starts");
    eprintln!(
        "takeover: the standby served {:.2}s after the kill",
        killed.elapsed().as_secs_f64()
    );
    let mut listed: Vec<String> = list(&taken_over, "alice")
        .lines()
        .map(str::to_owned)
        .collect();
    listed.sort();
    let mut expected = vec![infra_uri(&done), infra_uri(&interrupted)];
    expected.sort();
    assert_eq!(listed, expected);
    assert_eq!(infra_state(&taken_over, "alice", &done), "configured");
    wait_for_state(
        &taken_over,
        "alice",
        &interrupted,
        "configured",
        Duration::from_secs(60),
    );
    taken_over
        .put(&format!("/infrastructures/{done}/stop"))
        .user("alice")
        .send()
        .expect(200);
    wait_for_state(
        &taken_over,
        "alice",
        &done,
        "stopped",
        Duration::from_secs(30),
    );
    drop(taken_over);
    let verified = infralog(&["verify", "--store", database.url()]);
    assert!(
        verified.status.success(),
        "verify --store: {}",
        String::from_utf8_lossy(&verified.stdout)
    );
}

/// The data directory of a PostgreSQL instance keeps only its own files; the
/// same directory and database serve the same log after a restart.
#[test]
fn an_instance_restarts_on_its_database() {
    let Some(database) = TestDatabase::create() else {
        return;
    };
    let dir = tempfile::tempdir().expect("a dir");
    let server = instance(&database, dir.path());
    let inf = create(&server, "alice", RADL_NO_CTX);
    server.stop();
    assert!(
        !dir.path().join("log").exists(),
        "no sled log is made when the log is in PostgreSQL"
    );
    let again = instance(&database, dir.path());
    assert_eq!(list(&again, "alice").trim(), infra_uri(&inf));
}

#[test]
fn migrate_copies_a_sled_log_proves_it_and_runs_again_without_writing() {
    let Some(database) = TestDatabase::create() else {
        return;
    };
    let source = tempfile::tempdir().expect("a dir");
    let server = TestServer::start(source.path());
    let kept = create(&server, "alice", RADL_FRONT_WN_NO_CTX);
    let gone = create(&server, "alice", RADL_NO_CTX);
    server
        .delete(&format!("/infrastructures/{gone}"))
        .user("alice")
        .send()
        .expect(200);
    wait_for_state(
        &server,
        "alice",
        &kept,
        "configured",
        Duration::from_secs(30),
    );
    let state_before = state(&server, "alice", &kept);
    let radl_before = server
        .get(&format!("/infrastructures/{kept}/radl"))
        .user("alice")
        .send()
        .expect(200)
        .text();
    server.stop();

    let data_dir = source.path().to_str().expect("a UTF-8 path");
    let first = infralog(&[
        "migrate",
        "--from-data-dir",
        data_dir,
        "--to",
        database.url(),
    ]);
    let said = String::from_utf8_lossy(&first.stdout).to_string();
    assert!(first.status.success(), "migrate: {said}");
    assert!(said.contains("the copy is identical"), "{said}");
    let again = infralog(&[
        "migrate",
        "--from-data-dir",
        data_dir,
        "--to",
        database.url(),
    ]);
    let said_again = String::from_utf8_lossy(&again.stdout).to_string();
    assert!(again.status.success(), "migrate again: {said_again}");
    assert!(said_again.contains("copied 0 events"), "{said_again}");

    let dir = tempfile::tempdir().expect("a dir");
    let migrated = instance(&database, dir.path());
    assert_eq!(list(&migrated, "alice").trim(), infra_uri(&kept));
    assert_eq!(state(&migrated, "alice", &kept), state_before);
    let radl_after = migrated
        .get(&format!("/infrastructures/{kept}/radl"))
        .user("alice")
        .send()
        .expect(200)
        .text();
    assert_eq!(radl_after, radl_before);
    // The migrated log goes on: the instance appends after the copied head.
    migrated
        .put(&format!("/infrastructures/{kept}/stop"))
        .user("alice")
        .send()
        .expect(200);
    wait_for_state(
        &migrated,
        "alice",
        &kept,
        "stopped",
        Duration::from_secs(30),
    );
    drop(migrated);

    // Now the database holds more than the source: not a copy of it.
    let refused = infralog(&[
        "migrate",
        "--from-data-dir",
        data_dir,
        "--to",
        database.url(),
    ]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("not a copy"));
}

#[test]
fn verify_store_finds_a_damaged_payload() {
    let Some(database) = TestDatabase::create() else {
        return;
    };
    let dir = tempfile::tempdir().expect("a dir");
    let server = instance(&database, dir.path());
    let _inf = create(&server, "alice", RADL_NO_CTX);
    drop(server);
    let sound = infralog(&["verify", "--store", database.url()]);
    assert!(sound.status.success());
    database
        .execute(
            "UPDATE infralog_events SET payload = payload || '\\x00'::bytea WHERE position = 1",
        )
        .expect("the damage is made");
    let damaged = infralog(&["verify", "--store", database.url()]);
    assert_eq!(
        damaged.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&damaged.stdout)
    );
    assert!(String::from_utf8_lossy(&damaged.stdout).contains("position 1"));
}
