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

/// How long a standby may take to take over, beyond the lease.
const TAKEOVER: Duration = Duration::from_secs(60);

/// Waits until `server`, started as a standby, took over and serves again.
fn wait_for_takeover(server: &ChildServer) {
    assert!(
        server.wait_for_log(&["this instance is the active one"], TAKEOVER),
        "the standby never took over"
    );
    assert!(
        server.wait_for_log(&["serving the IM REST API"], TAKEOVER),
        "the new active instance never served"
    );
}

/// One active instance writes; a second serves as a standby (reads from its
/// read model, writes forwarded), and takes over when the active one is
/// killed: it serves every infrastructure and finishes the contextualization
/// the first one was running.
#[test]
fn a_standby_serves_then_takes_over_after_kill_9_and_finishes_the_work() {
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
    let standby = ChildServer::start(dir_b.path(), &store);
    assert!(standby.wait_for_log(&["serves as a standby"], Duration::from_secs(5)));
    // It reads what the active one wrote, and its writes go to the active one.
    assert_eq!(list(&standby, "alice"), infra_uri(&done));
    let through_standby = create(&standby, "alice", RADL_NO_CTX);
    assert_eq!(
        infra_state(&active, "alice", &through_standby),
        "configured"
    );
    // Killed while it contextualizes (the Dummy cloud's takes two seconds).
    let interrupted = create(&active, "alice", RADL_CTX);
    let killed = std::time::Instant::now();
    active.kill();
    wait_for_takeover(&standby);
    eprintln!(
        "takeover: the standby served as the active instance {:.2}s after the kill",
        killed.elapsed().as_secs_f64()
    );
    let taken_over = standby;
    let mut listed: Vec<String> = list(&taken_over, "alice")
        .lines()
        .map(str::to_owned)
        .collect();
    listed.sort();
    let mut expected = vec![
        infra_uri(&done),
        infra_uri(&through_standby),
        infra_uri(&interrupted),
    ];
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

/// An active instance frozen (SIGSTOP) past its lease is replaced; woken up,
/// it finds the fence: nothing it does after waking reaches the log, and it
/// stops serving.
#[test]
fn a_frozen_instance_is_replaced_and_fenced_off_when_it_wakes() {
    let Some(database) = TestDatabase::create() else {
        return;
    };
    let (dir_a, dir_b) = (
        tempfile::tempdir().expect("a dir"),
        tempfile::tempdir().expect("a dir"),
    );
    let flags = |url: &str| {
        vec![
            "--store".to_owned(),
            url.to_owned(),
            "--lease-seconds".to_owned(),
            "1".to_owned(),
            "--contextualization-delay-ms".to_owned(),
            "3000".to_owned(),
        ]
    };
    let a_flags = flags(database.url());
    let a_args: Vec<&str> = a_flags.iter().map(String::as_str).collect();
    let mut frozen = ChildServer::start(dir_a.path(), &a_args);
    let frozen_id = std::fs::read_to_string(dir_a.path().join("instance-id"))
        .expect("the instance id is kept")
        .trim()
        .to_owned();
    // Its contextualization would append when its timer fires, after the wake.
    let inf = create(&frozen, "alice", RADL_CTX);
    frozen.signal("STOP");
    let stopped_at = std::time::Instant::now();
    let b_flags = flags(database.url());
    let b_args: Vec<&str> = b_flags.iter().map(String::as_str).collect();
    let taken_over = ChildServer::start(dir_b.path(), &b_args);
    wait_for_takeover(&taken_over);
    eprintln!(
        "takeover of a frozen instance: {:.2}s after SIGSTOP (lease 1 s)",
        stopped_at.elapsed().as_secs_f64()
    );
    let takeover_head = database
        .query_i64("SELECT coalesce(max(position), 0) FROM infralog_events")
        .expect("reads");
    frozen.signal("CONT");
    let exit = frozen.wait_for_exit(Duration::from_secs(15));
    assert!(
        exit.is_some_and(|status| !status.success()),
        "the woken instance stops with an error: {exit:?}"
    );
    let after_wake = database
        .query_i64(&format!(
            "SELECT count(*) FROM infralog_events WHERE position > {takeover_head} \
             AND metadata->>'source_instance' = '{frozen_id}'"
        ))
        .expect("reads");
    assert_eq!(
        after_wake, 0,
        "nothing the woken instance did reached the log"
    );
    // The new active instance finishes the interrupted contextualization.
    wait_for_state(
        &taken_over,
        "alice",
        &inf,
        "configured",
        Duration::from_secs(60),
    );
    drop(taken_over);
    let verified = infralog(&["verify", "--store", database.url()]);
    assert!(verified.status.success());
}

/// While PostgreSQL cannot be reached, writes answer 503 and record nothing,
/// reads are served from the read model, and the server goes on once the
/// database is back.
#[test]
fn while_the_database_is_out_of_reach_writes_are_503_and_reads_go_on() {
    let Some(database) = TestDatabase::create() else {
        return;
    };
    let dir = tempfile::tempdir().expect("a dir");
    let mut settings = settings(dir.path());
    settings.store = StoreLocation::Postgres(database.url().to_owned());
    // Longer than the outage: the instance keeps its lease through it.
    settings.lease = Duration::from_secs(60);
    let server = TestServer::start_with(settings);
    let before = create(&server, "alice", RADL_NO_CTX);
    let name = database.name().to_owned();
    database
        .execute_as_admin(&format!(
            "ALTER DATABASE {name} ALLOW_CONNECTIONS false; \
             SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = '{name}' AND pid <> pg_backend_pid()"
        ))
        .expect("the database is cut off");
    let refused = server
        .post("/infrastructures")
        .user("alice")
        .radl(RADL_NO_CTX)
        .send();
    assert_eq!(refused.status, 503, "{}", refused.text());
    assert!(refused.header("Retry-After").is_some());
    assert!(
        refused.text().contains("cannot be reached"),
        "{}",
        refused.text()
    );
    assert_eq!(
        list(&server, "alice").trim(),
        infra_uri(&before),
        "reads are served from the read model"
    );
    database
        .execute_as_admin(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true"))
        .expect("the database is back");
    let after = create(&server, "alice", RADL_NO_CTX);
    let mut listed: Vec<String> = list(&server, "alice").lines().map(str::to_owned).collect();
    listed.sort();
    let mut expected = vec![infra_uri(&before), infra_uri(&after)];
    expected.sort();
    assert_eq!(listed, expected, "the refused create recorded nothing");
    drop(server);
    let verified = infralog(&["verify", "--store", database.url()]);
    assert!(verified.status.success());
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

/// The MLBench facade on a PostgreSQL log: metric points are kept in the
/// database, durable before their 201, and read back after a restart.
#[test]
fn mlbench_metric_points_live_in_the_database() {
    use crate::facades::mlbench::{custom_run, metrics, mlbench_settings, post_form, wait_run};
    let Some(database) = TestDatabase::create() else {
        return;
    };
    let dir = tempfile::tempdir().expect("a dir");
    let settings = || {
        let mut settings = mlbench_settings(dir.path(), |_| {});
        settings.store = StoreLocation::Postgres(database.url().to_owned());
        settings
    };
    let server = TestServer::start_with(settings());
    custom_run(&server, "pg", "1", "gloo", "sleep 60").expect(201);
    wait_run(&server, 1, "started", Duration::from_secs(20));
    for (date, value) in [("2024-05-01 10:00:00", "1"), ("2024-05-01 10:00:01", "2")] {
        post_form(
            &server,
            "/api/metrics/",
            &[
                ("run_id", "1"),
                ("name", "loss"),
                ("date", date),
                ("value", value),
            ],
            None,
        )
        .expect(201);
    }
    let stored = database
        .query_i64("SELECT count(*) FROM infralog_metrics WHERE subject = 'run:1'")
        .expect("reads");
    assert_eq!(stored, 2, "acknowledged points are in the database");
    server.stop();
    let again = TestServer::start_with(settings());
    let read = metrics(&again, "1/?metric_type=run").expect(200).json();
    let values: Vec<&str> = read["loss"]
        .as_array()
        .map(|points| points.iter().filter_map(|p| p["value"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(values, ["1", "2"], "{read}");
}
