//! Failover under load: three instances on one PostgreSQL log, a client
//! creating and reading through all of them, and the active instance killed
//! with `kill -9` at a random moment, 20 times (a fresh instance joins after
//! each kill). Nothing acknowledged is lost, no VM is launched twice, every
//! interrupted contextualization finishes, and the log verifies. The takeover
//! times are printed. Skipped without `INFRALOG_TEST_POSTGRES`, except under
//! CI=true.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use infralog_events::store::pg_testing::TestDatabase;
use rand::Rng;

use crate::harness::*;

const CYCLES: usize = 20;
const FLAGS: [&str; 4] = [
    "--lease-seconds",
    "1",
    "--contextualization-delay-ms",
    "400",
];

fn start(database: &TestDatabase, dirs: &mut Vec<tempfile::TempDir>) -> ChildServer {
    let dir = tempfile::tempdir().expect("a dir");
    let mut args = vec!["--store", database.url()];
    args.extend(FLAGS);
    let server = ChildServer::start(dir.path(), &args);
    dirs.push(dir);
    server
}

/// The client's load: creates (with contextualization) and reads, spread over
/// the live instances; the ids of acknowledged creates.
fn load(ports: Arc<Mutex<Vec<u16>>>, stop: Arc<AtomicBool>) -> Vec<String> {
    let mut acknowledged = Vec::new();
    let mut rng = rand::rng();
    while !stop.load(Ordering::Acquire) {
        let live = ports.lock().expect("ports").clone();
        let port = live[rng.random_range(0..live.len())];
        if rng.random_bool(0.5) {
            let answer = Port(port)
                .post("/infrastructures")
                .user("alice")
                .radl(RADL_CTX)
                .try_send();
            if let Some(answer) = answer.filter(|a| a.status == 200) {
                acknowledged.push(id_of(&answer.text()));
            }
        } else if let Some(inf) = acknowledged.last() {
            let _ = Port(port)
                .get(&format!("/infrastructures/{inf}/state"))
                .user("alice")
                .try_send();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    acknowledged
}

#[test]
fn twenty_kills_of_the_active_instance_under_load_lose_nothing_and_launch_nothing_twice() {
    let Some(database) = TestDatabase::create() else {
        return;
    };
    let mut dirs = Vec::new();
    let mut servers: Vec<ChildServer> = (0..3).map(|_| start(&database, &mut dirs)).collect();
    let mut active = 0;
    let ports = Arc::new(Mutex::new(servers.iter().map(|s| s.port).collect()));
    let stop = Arc::new(AtomicBool::new(false));
    let client = {
        let (ports, stop) = (Arc::clone(&ports), Arc::clone(&stop));
        std::thread::spawn(move || load(ports, stop))
    };
    let mut takeovers = Vec::new();
    let mut rng = rand::rng();
    for cycle in 0..CYCLES {
        std::thread::sleep(Duration::from_millis(rng.random_range(200..1200)));
        let victim = servers.remove(active);
        ports
            .lock()
            .expect("ports")
            .retain(|port| *port != victim.port);
        let killed = Instant::now();
        victim.kill();
        // Whichever standby takes the lease logs it, then serves again.
        let deadline = killed + Duration::from_secs(60);
        active = loop {
            assert!(Instant::now() < deadline, "cycle {cycle}: nobody took over");
            if let Some(at) = servers.iter().position(|server| {
                server.wait_for_log(
                    &["this instance is the active one"],
                    Duration::from_millis(50),
                )
            }) {
                break at;
            }
        };
        assert!(
            servers[active].wait_for_log(&["serving the IM REST API"], Duration::from_secs(60)),
            "cycle {cycle}: the new active instance never served"
        );
        takeovers.push(killed.elapsed());
        let joined = start(&database, &mut dirs);
        ports.lock().expect("ports").push(joined.port);
        servers.push(joined);
    }
    stop.store(true, Ordering::Release);
    let acknowledged = client.join().expect("the client ends");
    let survivor = &servers[active];
    let mut listed: Vec<String> = list(survivor, "alice").lines().map(str::to_owned).collect();
    listed.sort();
    for inf in &acknowledged {
        assert!(
            listed.contains(&infra_uri(inf)),
            "acknowledged {inf} is lost"
        );
    }
    for inf in &acknowledged {
        wait_for_state(
            survivor,
            "alice",
            inf,
            "configured",
            Duration::from_secs(120),
        );
    }
    let launched_twice = database
        .query_i64(
            "SELECT count(*) FROM (SELECT stream FROM infralog_events \
             WHERE event_type = 'VmLaunched' GROUP BY stream HAVING count(*) > 1) twice",
        )
        .expect("reads");
    assert_eq!(launched_twice, 0, "a VM was launched twice");
    let mut seconds: Vec<f64> = takeovers.iter().map(Duration::as_secs_f64).collect();
    seconds.sort_by(f64::total_cmp);
    eprintln!(
        "failover: {CYCLES} kills, {} creates acknowledged, none lost; takeover (kill to serving \
         as active, lease 1 s) min {:.2} s, median {:.2} s, max {:.2} s",
        acknowledged.len(),
        seconds[0],
        seconds[seconds.len() / 2],
        seconds[seconds.len() - 1]
    );
    drop(servers);
    let verified = infralog(&["verify", "--store", database.url()]);
    assert!(
        verified.status.success(),
        "verify --store: {}",
        String::from_utf8_lossy(&verified.stdout)
    );
}
