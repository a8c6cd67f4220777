//! `kill -9` of the real binary while placements are under way never gives one
//! attempt a second core infrastructure: an attempt whose outcome was not logged
//! is followed after the restart, not created again.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use serde_json::json;

use super::imc::{basic, template, IMAUTH};
use crate::harness::*;

const SITES: &str = r#"[
 {"name":"site-k","region":"eu","type":"Dummy",
  "images":[{"name":"u","url":"mock0://linux.for.ev.er/u2004","distribution":"ubuntu","version":"20.04","type":"linux","architecture":"x86_64"}],
  "flavours":[{"name":"m1.small","cores":1,"memory":2,"disk":20}],
  "faults":{"launch_delay_ms":150}}
]"#;

fn key(n: u32) -> String {
    format!("00000000-0000-4000-8000-{n:012}")
}

/// Posts placement `n` (again): 201 the first time, 200 after.
fn post(server: &ChildServer, n: u32) -> u16 {
    server
        .post("/v1/infrastructures")
        .auth(&basic("imc", "s3cret"))
        .header("Idempotency-Key", &key(n))
        .body(json!({"radl": template()}).to_string())
        .send()
        .status
}

#[test]
fn repeated_kill_9_never_creates_a_second_infrastructure_for_an_attempt() {
    let dir = tempfile::tempdir().expect("temp dir");
    let sites = dir.path().join("sites.json");
    std::fs::write(&sites, SITES).expect("write the catalogue");
    let data = dir.path().join("log");
    let sites = sites.to_str().expect("a UTF-8 path").to_string();
    let flags = [
        "--facades",
        "imc",
        "--imc-user",
        "imc",
        "--imc-password",
        "s3cret",
        "--imc-sites",
        sites.as_str(),
        "--contextualization-delay-ms",
        "200",
    ];
    // A fixed sequence of kill delays that falls at every stage of an attempt.
    let delays_ms = [0u64, 40, 90, 150, 230, 320, 5, 120];
    let mut posted = 0;
    for delay in delays_ms {
        let server = ChildServer::start(&data, &flags);
        for _ in 0..3 {
            let status = post(&server, posted);
            assert!(status == 201 || status == 200, "status {status}");
            posted += 1;
        }
        std::thread::sleep(Duration::from_millis(delay));
        server.kill();
    }
    let server = ChildServer::start(&data, &flags);
    // A client that never saw its answer posts again: the same placement.
    for n in 0..posted {
        assert_eq!(post(&server, n), 200, "placement {n} was recorded");
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut infras = HashSet::new();
    for n in 0..posted {
        loop {
            let shown = server
                .get(&format!("/v1/infrastructures/{}", key(n)))
                .auth(&basic("imc", "s3cret"))
                .send()
                .expect(200)
                .json();
            if shown["status"] == "configured" {
                let inf = shown["infra_id"].as_str().expect("an infra id").to_string();
                assert!(infras.insert(inf), "two placements share an infrastructure");
                break;
            }
            assert!(Instant::now() < deadline, "placement {n} is {shown}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    // Every infrastructure the facade's identity owns is one placement's.
    let owned: HashSet<String> = server
        .get("/infrastructures")
        .auth(IMAUTH)
        .send()
        .expect(200)
        .text()
        .lines()
        .map(id_of)
        .filter(|id| !id.is_empty())
        .collect();
    assert_eq!(owned, infras, "an attempt created a second infrastructure");
    server.kill();
    // The offline verification refolds every placement too.
    let data_arg = data.to_str().expect("a UTF-8 path").to_string();
    let verified = infralog(&["verify", "--data-dir", &data_arg]);
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stdout)
    );
}
