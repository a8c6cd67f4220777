//! Three instances on one PostgreSQL log, every request to whichever instance:
//! one is active, two serve as standbys (reads from their read models after
//! catching up with the log, writes forwarded to the active one). Skipped
//! without `INFRALOG_TEST_POSTGRES`, except under CI=true.

use std::time::Duration;

use infralog_events::store::pg_testing::TestDatabase;

use crate::harness::*;

fn three(database: &TestDatabase) -> (Vec<tempfile::TempDir>, Vec<ChildServer>) {
    let dirs: Vec<tempfile::TempDir> = (0..3)
        .map(|_| tempfile::tempdir().expect("a dir"))
        .collect();
    let store = [
        "--store",
        database.url(),
        "--contextualization-delay-ms",
        "300",
    ];
    let servers: Vec<ChildServer> = dirs
        .iter()
        .map(|dir| ChildServer::start(dir.path(), &store))
        .collect();
    (dirs, servers)
}

/// A client that goes round the instances, one request each.
struct RoundRobin<'a> {
    servers: &'a [ChildServer],
    next: std::cell::Cell<usize>,
}

impl RoundRobin<'_> {
    fn next(&self) -> &ChildServer {
        let at = self.next.get();
        self.next.set(at + 1);
        &self.servers[at % self.servers.len()]
    }
}

#[test]
fn any_instance_answers_any_request_and_sees_what_another_acknowledged() {
    let Some(database) = TestDatabase::create() else {
        return;
    };
    let (_dirs, servers) = three(&database);
    let client = RoundRobin {
        servers: &servers,
        next: std::cell::Cell::new(1),
    };
    // Every step lands on the next instance; each reads what the one before wrote.
    let inf = create(client.next(), "alice", RADL_CTX);
    assert_eq!(
        list(client.next(), "alice"),
        infra_uri(&inf),
        "listed at once by another instance"
    );
    wait_for_state(
        client.next(),
        "alice",
        &inf,
        "configured",
        Duration::from_secs(30),
    );
    let added = client
        .next()
        .post(&format!("/infrastructures/{inf}"))
        .user("alice")
        .radl("network publica\nnetwork privada\nsystem front\ndeploy front 1\n")
        .send()
        .expect(200)
        .text();
    assert_eq!(added.lines().count(), 1, "{added}");
    let vms = client
        .next()
        .get(&format!("/infrastructures/{inf}"))
        .user("alice")
        .send()
        .expect(200)
        .text();
    assert_eq!(vms.lines().count(), 3, "the added VM is seen: {vms}");
    wait_for_state(
        client.next(),
        "alice",
        &inf,
        "configured",
        Duration::from_secs(30),
    );
    client
        .next()
        .put(&format!("/infrastructures/{inf}/stop"))
        .user("alice")
        .send()
        .expect(200);
    assert_eq!(infra_state(client.next(), "alice", &inf), "stopped");
    // Another tenant is refused on every instance.
    for server in &servers {
        server
            .get(&format!("/infrastructures/{inf}/state"))
            .user("mallory")
            .send()
            .expect(403);
    }
    client
        .next()
        .delete(&format!("/infrastructures/{inf}"))
        .user("alice")
        .send()
        .expect(200);
    for server in &servers {
        server
            .get(&format!("/infrastructures/{inf}/state"))
            .user("alice")
            .send()
            .expect(404);
    }
}

/// Adds sent at once through the three instances to one infrastructure are
/// each applied exactly once: every decision is the active instance's.
#[test]
fn concurrent_adds_through_every_instance_are_each_applied_once() {
    let Some(database) = TestDatabase::create() else {
        return;
    };
    let (_dirs, servers) = three(&database);
    let inf = create(&servers[0], "alice", RADL_NO_CTX);
    let before = servers[0]
        .get(&format!("/infrastructures/{inf}"))
        .user("alice")
        .send()
        .expect(200)
        .text()
        .lines()
        .count();
    let per_instance = 4;
    std::thread::scope(|scope| {
        for server in &servers {
            let (inf, server) = (inf.clone(), Port(server.port));
            scope.spawn(move || {
                for _ in 0..per_instance {
                    let answer = server
                        .post(&format!("/infrastructures/{inf}"))
                        .user("alice")
                        .radl("network privada\nsystem node\ndeploy node 1\n")
                        .send();
                    assert_eq!(answer.status, 200, "{}", answer.text());
                }
            });
        }
    });
    for server in &servers {
        let vms = server
            .get(&format!("/infrastructures/{inf}"))
            .user("alice")
            .send()
            .expect(200)
            .text();
        assert_eq!(
            vms.lines().count(),
            before + servers.len() * per_instance,
            "every acknowledged add made one VM, seen by every instance: {vms}"
        );
    }
    drop(servers);
    let verified = infralog(&["verify", "--store", database.url()]);
    assert!(verified.status.success());
}
