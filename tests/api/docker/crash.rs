//! Launches survive `kill -9`: a launch intent is in the log before its container
//! is made, and the resumed launch adopts the container that carries the intent's
//! labels (or replaces a half-made one) instead of making a second.

use std::time::{Duration, Instant};

use rand::Rng;

use super::*;

const USER: &str = "crash-user";
const VMS: usize = 10;

fn ten_vms() -> String {
    format!(
        "network privada ()
system node (
memory.size = 64m and
net_interface.0.connection = 'privada' and
disk.0.image.url = 'docker://{IMAGE}'
)
contextualize ()
deploy node {VMS}
"
    )
}

/// Cycles of: create 10 VMs, `kill -9` at a random moment of the launches, start
/// again; each infrastructure ends with exactly 10 containers, and after its
/// destruction (in the same cycle) nothing of it is left. `INFRALOG_DOCKER_KILL_CYCLES` sets the number
/// of cycles (20 by default).
#[test]
fn a_create_killed_at_any_moment_ends_with_exactly_its_containers() {
    let cycles: usize = std::env::var("INFRALOG_DOCKER_KILL_CYCLES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(20);
    let labelled = Labelled::new("kill");
    let dir = tempfile::tempdir().expect("temp dir");
    let flag = labelled.flag();
    let flags = ["--max-simultaneous-launches", "4", flag.as_str()];
    let mut rng = rand::rng();
    let started = Instant::now();
    for cycle in 0..cycles {
        let server = ChildServer::start(dir.path(), &flags);
        let answer = server
            .post("/infrastructures?async=1")
            .auth(&docker_auth(USER))
            .radl(&ten_vms())
            .send();
        assert_eq!(answer.status, 200, "create: {}", answer.text());
        let inf = id_of(&answer.text());
        std::thread::sleep(Duration::from_millis(rng.random_range(0..2_500)));
        server.kill();

        let server = ChildServer::start(dir.path(), &flags);
        wait_for_docker_state(&server, USER, &inf, "configured", Duration::from_secs(120));
        let containers = labelled.containers_of(&inf);
        assert_eq!(
            containers.len(),
            VMS,
            "cycle {cycle}: exactly one container per VM of {inf}: {containers:?}"
        );
        let running = containers
            .iter()
            .filter(|id| inspect(id, "{{.State.Running}}") == "true")
            .count();
        assert_eq!(running, VMS, "cycle {cycle}: every container runs");
        // Destroyed at once: each infrastructure's private network takes one of the
        // engine's address pools (about 30 by default), so they must not pile up.
        server
            .delete(&format!("/infrastructures/{inf}"))
            .auth(&docker_auth(USER))
            .send()
            .expect(200);
        assert_eq!(
            labelled.leftovers_of(&inf),
            Vec::<(String, String)>::new(),
            "cycle {cycle}: nothing of {inf} is left"
        );
        server.kill();
    }
    eprintln!(
        "{cycles} kill cycles of a {VMS}-VM create: {} containers, none made twice, all removed; {:?}",
        cycles * VMS,
        started.elapsed()
    );
}
