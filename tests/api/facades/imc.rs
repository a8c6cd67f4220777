//! The IMC facade (`/v1/…`), black-box: the checks of its specification (auth,
//! deploy, the IM view of a placement's infrastructure, unable, rejections that
//! record nothing, deletion), quotas and retries, and deletion winning over a late
//! success.

use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine;
use infralog::app::Settings;
use infralog::facades::imc::{load_catalogue, ImcSettings};
use infralog::facades::FacadeSettings;
use infralog_events::{EventStore, SledStore, SledStoreConfig};
use serde_json::{json, Value};

use crate::harness::*;

/// The checks' two sites, plus `site-slow`, whose launches take 1.5 s.
pub const SITES: &str = r#"[
 {"name":"site-a","region":"eu","type":"Dummy",
  "images":[{"name":"u2004","url":"mock0://linux.for.ev.er/u2004","distribution":"ubuntu","version":"20.04","type":"linux","architecture":"x86_64"}],
  "flavours":[{"name":"m1.small","cores":1,"memory":2,"disk":20},{"name":"m1.large","cores":4,"memory":8,"disk":80}],
  "quotas":{"instances":2}},
 {"name":"site-b","region":"us","type":"Dummy",
  "images":[{"name":"u2004","url":"mock0://linux.for.ev.er/u2004","distribution":"ubuntu","version":"20.04","type":"linux","architecture":"x86_64"}],
  "flavours":[{"name":"m1.small","cores":1,"memory":2,"disk":20},{"name":"m1.large","cores":4,"memory":8,"disk":80}],
  "faults":{"launch":"403 Forbidden Quota exceeded"}},
 {"name":"site-slow","region":"slow","type":"Dummy",
  "images":[{"name":"u2004","url":"mock0://linux.for.ev.er/u2004","distribution":"ubuntu","version":"20.04","type":"linux","architecture":"x86_64"}],
  "flavours":[{"name":"m1.small","cores":1,"memory":2,"disk":20}],
  "faults":{"launch_delay_ms":1500}}
]"#;

/// The IM header of the facade's identity.
pub const IMAUTH: &str = "id = im; type = InfrastructureManager; username = imc; password = s3cret";

/// The template T of the checks, base64.
pub fn template() -> String {
    let radl = "network public (outbound = 'yes')
system node (
instance_type = '$instance' and
disk.0.image.url = '$image' and
cpu.count >= 1
)
deploy node 1
contextualize ()
";
    base64::engine::general_purpose::STANDARD.encode(radl)
}

/// `Authorization: Basic …` for `user:password`.
pub fn basic(user: &str, password: &str) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {encoded}")
}

fn imc_settings(dir: &Path) -> Settings {
    imc_settings_with(dir, SITES)
}

/// Settings of a server with the IMC facade over `dir/log`, the catalogue `sites`
/// and a 2 s waiting retry.
pub fn imc_settings_with(dir: &Path, sites: &str) -> Settings {
    let catalogue = dir.join("sites.json");
    std::fs::write(&catalogue, sites).expect("write the catalogue");
    let mut imc = ImcSettings {
        user: Some("imc".into()),
        password: Some("s3cret".into()),
        sites: load_catalogue(&catalogue).expect("the catalogue loads"),
        ..ImcSettings::default()
    };
    imc.placement.timings.waiting_retry = Duration::from_secs(2);
    // The data directory holds the log; the catalogue beside it is harmless.
    let mut settings = settings(&dir.join("log"));
    settings.contextualization_delay = Duration::from_millis(200);
    settings.facades = FacadeSettings {
        imc: Some(imc),
        ..FacadeSettings::default()
    };
    settings
}

fn start(dir: &Path) -> TestServer {
    TestServer::start_with(imc_settings(dir))
}

pub fn post(server: &impl Api, body: &Value, key: Option<&str>) -> Response {
    let mut request = server
        .post("/v1/infrastructures")
        .auth(&basic("imc", "s3cret"))
        .header("Content-Type", "application/json")
        .body(body.to_string());
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    request.send()
}

pub fn show(server: &impl Api, id: &str) -> Value {
    server
        .get(&format!("/v1/infrastructures/{id}"))
        .auth(&basic("imc", "s3cret"))
        .send()
        .expect(200)
        .json()
}

/// Polls until the placement is `status` (or panics after `timeout`).
pub fn wait_status(server: &impl Api, id: &str, status: &str, timeout: Duration) -> Value {
    let deadline = Instant::now() + timeout;
    loop {
        let shown = show(server, id);
        if shown["status"] == status {
            return shown;
        }
        assert!(
            Instant::now() < deadline,
            "{id} is {shown} after {timeout:?}, not {status}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn deploy(server: &impl Api, extra: Value) -> String {
    let mut body = json!({ "radl": template() });
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    let answer = post(server, &body, None).expect(201).json();
    answer["id"].as_str().expect("an id").to_string()
}

pub fn head_of(dir: &Path) -> u64 {
    let store = SledStore::open(SledStoreConfig {
        path: dir.join("log"),
        cache_capacity_bytes: 1024 * 1024,
    })
    .expect("open the log of a stopped server");
    let head = store.head_position();
    store.close();
    head
}

pub fn im_list(server: &impl Api) -> Vec<String> {
    server
        .get("/infrastructures")
        .auth(IMAUTH)
        .send()
        .expect(200)
        .text()
        .lines()
        .map(id_of)
        .filter(|id| !id.is_empty())
        .collect()
}

#[test]
fn check_1_every_route_but_health_needs_the_service_identity() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start(dir.path());
    let refused = json!({"error": "Authentication failure"});
    for auth in [
        None,
        Some(basic("imc", "wrong")),
        Some(basic("other", "s3cret")),
    ] {
        for (method, path) in [
            ("GET", "/v1/infrastructures?status=configured"),
            ("POST", "/v1/infrastructures"),
            (
                "GET",
                "/v1/infrastructures/6b0c7a1e-3f8e-4b53-9d1a-2a7b9a9f0001",
            ),
            (
                "DELETE",
                "/v1/infrastructures/6b0c7a1e-3f8e-4b53-9d1a-2a7b9a9f0001",
            ),
            ("POST", "/v1/credentials"),
        ] {
            let mut request = server.request(method, path);
            if let Some(auth) = &auth {
                request = request.auth(auth);
            }
            let answer = request.send().expect(401);
            assert_eq!(answer.json(), refused, "{method} {path}");
        }
    }
    server.get("/v1/health").send().expect(204);
    server.get("/v1/health/").send().expect(204);
    let credentials = server
        .post("/v1/credentials")
        .auth(&basic("imc", "s3cret"))
        .body("{\"token\":\"t\"}")
        .send()
        .expect(201);
    assert_eq!(credentials.json(), json!({}));
    let bad = server
        .post("/v1/credentials")
        .auth(&basic("imc", "s3cret"))
        .body("[1]")
        .send()
        .expect(400);
    assert_eq!(bad.json(), json!({"error": "json data not valid"}));
}

#[test]
fn without_the_flag_the_v1_routes_are_ims_404() {
    let (_dir, server) = temp_server();
    server.get("/v1/health").send().expect(404);
    server
        .post("/v1/infrastructures")
        .auth(&basic("imc", "s3cret"))
        .send()
        .expect(404);
}

#[test]
fn checks_2_3_and_6_deploy_show_in_im_and_delete() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start(dir.path());
    let key = "6b0c7a1e-3f8e-4b53-9d1a-2a7b9a9f0001";
    let body = json!({"radl": template(), "identity": "alice"});
    assert_eq!(
        post(&server, &body, Some(key)).expect(201).json(),
        json!({"id": key})
    );
    assert_eq!(
        post(&server, &body, Some(key)).expect(200).json(),
        json!({"id": key})
    );
    let shown = wait_status(&server, key, "configured", Duration::from_secs(10));
    assert_eq!(shown["cloud"], "site-a");
    assert_eq!(shown["status_reason"], Value::Null);
    let inf = shown["infra_id"].as_str().expect("an infra id").to_string();
    assert!(uuid::Uuid::try_parse(&inf).is_ok(), "{inf}");
    // Check 3: the operator's view through the IM API.
    let radl = server
        .get(&format!("/infrastructures/{inf}/radl"))
        .auth(IMAUTH)
        .send()
        .expect(200)
        .text();
    assert!(radl.contains("m1.small"), "{radl}");
    assert!(radl.contains("mock0://linux.for.ev.er/u2004"), "{radl}");
    let state = server
        .get(&format!("/infrastructures/{inf}/state"))
        .auth(IMAUTH)
        .send()
        .expect(200)
        .json();
    assert_eq!(state["state"]["state"], "configured");
    assert_eq!(im_list(&server), std::slice::from_ref(&inf));
    let listed = server
        .get("/v1/infrastructures?status=configured&cloud=site-a")
        .auth(&basic("imc", "s3cret"))
        .send()
        .expect(200)
        .json();
    assert_eq!(listed.as_array().map(Vec::len), Some(1));
    assert_eq!(listed[0]["id"], key);
    assert_eq!(listed[0]["identity"], "alice");
    assert!(
        listed[0]["created"].as_f64().expect("epoch")
            <= listed[0]["updated"].as_f64().expect("epoch")
    );
    let elsewhere = server
        .get("/v1/infrastructures?status=configured&cloud=site-b")
        .auth(&basic("imc", "s3cret"))
        .send()
        .expect(200)
        .json();
    assert_eq!(elsewhere, json!([]));
    // Check 6: deletion.
    let deleted = server
        .delete(&format!("/v1/infrastructures/{key}"))
        .auth(&basic("imc", "s3cret"))
        .send()
        .expect(200);
    assert_eq!(deleted.json(), json!({}));
    wait_status(&server, key, "deleted", Duration::from_secs(10));
    server
        .get(&format!("/infrastructures/{inf}/state"))
        .auth(IMAUTH)
        .send()
        .expect(404);
    server
        .delete(&format!("/v1/infrastructures/{key}/"))
        .auth(&basic("imc", "s3cret"))
        .send()
        .expect(200);
}

#[test]
fn check_4_too_many_cores_is_unable() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start(dir.path());
    let id = deploy(
        &server,
        json!({"requirements": {"resources": {"cores": 64}}}),
    );
    let shown = wait_status(&server, &id, "unable", Duration::from_secs(10));
    assert_eq!(
        shown,
        json!({"status": "unable", "status_reason": "NoMatchingResources", "cloud": null, "infra_id": null})
    );
    assert!(im_list(&server).is_empty(), "no infrastructure was created");
}

#[test]
fn check_5_rejected_requests_leave_the_log_head_unchanged() {
    let dir = tempfile::tempdir().expect("temp dir");
    let key = "6b0c7a1e-3f8e-4b53-9d1a-2a7b9a9f0002";
    {
        let server = start(dir.path());
        post(&server, &json!({"radl": template()}), Some(key)).expect(201);
        wait_status(&server, key, "configured", Duration::from_secs(10));
        server.stop();
    }
    let head = head_of(dir.path());
    assert!(head > 0);
    let server = start(dir.path());
    let auth = basic("imc", "s3cret");
    let bad_bodies: [&[u8]; 6] = [
        b"{",
        b"[]",
        b"{}",
        b"{\"radl\": \"not base64!\"}",
        b"{\"radl\": 12}",
        // Base64 of text that is no RADL.
        b"{\"radl\": \"c3lzdGVtICgoKA==\"}",
    ];
    for body in bad_bodies {
        let answer = server
            .post("/v1/infrastructures")
            .auth(&auth)
            .body(body)
            .send()
            .expect(400);
        assert!(answer.json()["error"].is_string(), "{}", answer.text());
    }
    post(&server, &json!({"radl": template()}), Some("abc")).expect(400);
    // A known key is answered 200 and records nothing.
    post(&server, &json!({"radl": template()}), Some(key)).expect(200);
    let dry = post(&server, &json!({"radl": template(), "dryrun": true}), None).expect(200);
    assert_eq!(
        dry.json(),
        json!({"sites": ["site-a", "site-b", "site-slow"]})
    );
    server
        .get("/v1/infrastructures")
        .auth(&auth)
        .send()
        .expect(400);
    server
        .get("/v1/infrastructures?status=configured&type=x")
        .auth(&auth)
        .send()
        .expect(400);
    let unknown = "/v1/infrastructures/6b0c7a1e-3f8e-4b53-9d1a-2a7b9a9f0099";
    for method in ["GET", "DELETE"] {
        let answer = server
            .request(method, unknown)
            .auth(&auth)
            .send()
            .expect(404);
        assert_eq!(answer.json(), json!({"status": "invalid"}));
    }
    server
        .get("/v1/infrastructures/not-a-uuid")
        .auth(&auth)
        .send()
        .expect(404);
    let large = format!("{{\"radl\": \"{}\"}}", "A".repeat(2 * 1024 * 1024));
    server
        .post("/v1/infrastructures")
        .auth(&auth)
        .body(large)
        .send()
        .expect(413);
    server.stop();
    assert_eq!(
        head_of(dir.path()),
        head,
        "a rejected request appended events"
    );
}

#[test]
fn quotas_make_placements_wait_and_a_release_lets_them_in() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start(dir.path());
    let only_a = json!({"requirements": {"sites": ["site-a"]}, "identity": "bob"});
    let first = deploy(&server, only_a.clone());
    let second = deploy(&server, only_a.clone());
    wait_status(&server, &first, "configured", Duration::from_secs(10));
    wait_status(&server, &second, "configured", Duration::from_secs(10));
    // site-a holds two instances per identity: the third waits.
    let third = deploy(&server, only_a.clone());
    let waiting = wait_status(&server, &third, "waiting", Duration::from_secs(10));
    assert_eq!(waiting["status_reason"], "NoMatchingResourcesAvailable");
    // Another identity has its own quota.
    let carol = deploy(
        &server,
        json!({"requirements": {"sites": ["site-a"]}, "identity": "carol"}),
    );
    wait_status(&server, &carol, "configured", Duration::from_secs(10));
    server
        .delete(&format!("/v1/infrastructures/{first}"))
        .auth(&basic("imc", "s3cret"))
        .send()
        .expect(200);
    wait_status(&server, &first, "deleted", Duration::from_secs(10));
    // The retry (2 s here) finds the released room.
    let shown = wait_status(&server, &third, "configured", Duration::from_secs(15));
    assert_eq!(shown["cloud"], "site-a");
}

#[test]
fn failing_launches_are_retried_destroyed_and_end_waiting() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start(dir.path());
    let id = deploy(&server, json!({"requirements": {"regions": ["us"]}}));
    let shown = wait_status(&server, &id, "waiting", Duration::from_secs(10));
    assert_eq!(shown["status_reason"], "DeploymentFailed_QuotaExceeded");
    assert_eq!(shown["cloud"], Value::Null);
    // Every failed attempt's infrastructure was destroyed.
    assert!(im_list(&server).is_empty());
    // Preferences pick the site when several match.
    let preferred = deploy(
        &server,
        json!({"preferences": {"sites": ["site-slow", "site-a"]}}),
    );
    let shown = wait_status(&server, &preferred, "configured", Duration::from_secs(10));
    assert_eq!(shown["cloud"], "site-slow");
}

#[test]
fn deletion_wins_over_a_late_success() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start(dir.path());
    let id = deploy(&server, json!({"requirements": {"sites": ["site-slow"]}}));
    // The attempt's infrastructure exists while its launch takes 1.5 s.
    let deadline = Instant::now() + Duration::from_secs(5);
    let inf = loop {
        if let Some(inf) = im_list(&server).pop() {
            break inf;
        }
        assert!(
            Instant::now() < deadline,
            "no infrastructure for the attempt"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(show(&server, &id)["status"], "creating");
    server
        .delete(&format!("/v1/infrastructures/{id}"))
        .auth(&basic("imc", "s3cret"))
        .send()
        .expect(200);
    let shown = wait_status(&server, &id, "deleted", Duration::from_secs(10));
    assert_eq!(
        shown["infra_id"],
        Value::Null,
        "the late success never counted"
    );
    server
        .get(&format!("/infrastructures/{inf}/state"))
        .auth(IMAUTH)
        .send()
        .expect(404);
    // It stays deleted once the launch would have finished.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(show(&server, &id)["status"], "deleted");
    assert!(im_list(&server).is_empty());
}
