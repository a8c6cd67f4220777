//! The IMC facade's timed steps, black-box, with short timing flags: the
//! attempt's timeouts (to running, to configured), a placement creating for too
//! long, a deletion that fails (`faults.destroy`) and is tried again, timers that
//! count from recorded times across a restart, and placement actors that stop
//! while idle and come back on demand.

use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine;
use infralog::app::Settings;
use infralog_actors::runtime::placement::PlacementConfig;
use serde_json::{json, Value};

use super::imc::{basic, deploy, im_list, imc_settings_with, show, wait_status};
use crate::harness::*;

const IMAGE: &str = r#""images":[{"name":"u2004","url":"mock0://linux.for.ev.er/u2004","distribution":"ubuntu","version":"20.04","type":"linux","architecture":"x86_64"}],
  "flavours":[{"name":"m1.small","cores":1,"memory":2,"disk":20}]"#;

/// A catalogue of one site, `name`, with these `faults`, and `site-q`, whose
/// launches always fail (so the faulty cloud stays registered whatever `faults`
/// holds).
fn catalogue(name: &str, faults: &str) -> String {
    format!(
        r#"[{{"name":"{name}","region":"eu","type":"Dummy",{IMAGE},"faults":{faults}}},
 {{"name":"site-q","region":"q","type":"Dummy",{IMAGE},"faults":{{"launch":"403 Quota exceeded"}}}}]"#
    )
}

fn tuned(dir: &Path, sites: &str, tune: impl FnOnce(&mut PlacementConfig)) -> Settings {
    let mut settings = imc_settings_with(dir, sites);
    if let Some(imc) = settings.facades.imc.as_mut() {
        tune(&mut imc.placement);
    }
    settings
}

/// The types of a placement's events, oldest first.
fn event_types(server: &impl Api, id: &str) -> Vec<String> {
    let answer = server
        .get(&format!("/v1/infrastructures/{id}/events"))
        .auth(&basic("imc", "s3cret"))
        .send()
        .expect(200)
        .json();
    answer["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["type"].as_str().expect("a type").to_string())
        .collect()
}

fn count(types: &[String], wanted: &str) -> usize {
    types.iter().filter(|t| *t == wanted).count()
}

/// Polls until `check` holds for the placement's event types.
fn wait_events(
    server: &impl Api,
    id: &str,
    timeout: Duration,
    check: impl Fn(&[String]) -> bool,
) -> Vec<String> {
    let deadline = Instant::now() + timeout;
    loop {
        let types = event_types(server, id);
        if check(&types) {
            return types;
        }
        assert!(Instant::now() < deadline, "{id}: {types:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn an_attempt_not_running_in_time_is_destroyed_and_the_round_ends_waiting() {
    let dir = tempfile::tempdir().expect("temp dir");
    let sites = catalogue("site-s", r#"{"launch_delay_ms":2500}"#);
    let server = TestServer::start_with(tuned(dir.path(), &sites, |config| {
        config.timings.running_timeout = Duration::from_millis(800);
        config.timings.waiting_retry = Duration::from_secs(600);
        config.retries_per_flavour = 0;
    }));
    let id = deploy(&server, json!({"requirements": {"sites": ["site-s"]}}));
    let shown = wait_status(&server, &id, "waiting", Duration::from_secs(15));
    assert_eq!(shown["status_reason"], "DeploymentFailed_NotRunningTimeout");
    let types = event_types(&server, &id);
    assert_eq!(count(&types, "AttemptStarted"), 1, "{types:?}");
    assert_eq!(count(&types, "AttemptDestroyed"), 1, "{types:?}");
    assert_eq!(count(&types, "AttemptRunning"), 0, "{types:?}");
    assert!(
        im_list(&server).is_empty(),
        "the late infrastructure is gone"
    );
}

#[test]
fn an_attempt_not_configured_in_time_after_running_is_destroyed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let sites = catalogue("site-s", "{}");
    let mut settings = tuned(dir.path(), &sites, |config| {
        config.timings.configured_timeout = Duration::from_millis(700);
        config.timings.waiting_retry = Duration::from_secs(600);
        config.retries_per_flavour = 0;
    });
    // Contextualization takes longer than the attempt may.
    settings.contextualization_delay = Duration::from_secs(4);
    let server = TestServer::start_with(settings);
    // Without `contextualize ()`, the Dummy cloud's simulated contextualization
    // runs (and takes its delay).
    let radl = "system node (\ninstance_type = '$instance' and\ndisk.0.image.url = '$image'\n)\ndeploy node 1\n";
    let radl = base64::engine::general_purpose::STANDARD.encode(radl);
    let id = deploy(
        &server,
        json!({"radl": radl, "requirements": {"sites": ["site-s"]}}),
    );
    let shown = wait_status(&server, &id, "waiting", Duration::from_secs(15));
    assert_eq!(shown["status_reason"], "DeploymentFailed_ConfiguredTimeout");
    let types = event_types(&server, &id);
    let running = types.iter().position(|t| t == "AttemptRunning");
    let failed = types.iter().position(|t| t == "AttemptFailed");
    assert!(running.is_some() && running < failed, "{types:?}");
    assert!(im_list(&server).is_empty());
}

#[test]
fn a_placement_creating_for_too_long_is_deleted() {
    let dir = tempfile::tempdir().expect("temp dir");
    let sites = catalogue("site-s", r#"{"launch_delay_ms":2500}"#);
    let server = TestServer::start_with(tuned(dir.path(), &sites, |config| {
        config.timings.creating_timeout = Duration::from_millis(800);
    }));
    let id = deploy(&server, json!({"requirements": {"sites": ["site-s"]}}));
    let shown = wait_status(&server, &id, "deleted", Duration::from_secs(15));
    assert_eq!(shown["infra_id"], Value::Null);
    let types = event_types(&server, &id);
    assert_eq!(count(&types, "DeletionRequested"), 1, "{types:?}");
    assert_eq!(count(&types, "PlacementConfigured"), 0, "{types:?}");
    assert!(im_list(&server).is_empty());
}

#[test]
fn a_deletion_that_fails_is_tried_again_and_ends_deleted_once_destroy_works() {
    let dir = tempfile::tempdir().expect("temp dir");
    let failing = catalogue("site-d", r#"{"destroy":"500 the cloud refuses"}"#);
    let retry = |config: &mut PlacementConfig| {
        config.timings.deletion_retry = Duration::from_millis(700);
    };
    let id = {
        let server = TestServer::start_with(tuned(dir.path(), &failing, retry));
        let id = deploy(&server, json!({"requirements": {"sites": ["site-d"]}}));
        let configured = wait_status(&server, &id, "configured", Duration::from_secs(10));
        let inf = configured["infra_id"]
            .as_str()
            .expect("an infra id")
            .to_string();
        server
            .delete(&format!("/v1/infrastructures/{id}"))
            .auth(&basic("imc", "s3cret"))
            .send()
            .expect(200);
        let shown = wait_status(&server, &id, "deletion-failed", Duration::from_secs(10));
        assert_eq!(shown["infra_id"], inf);
        // Tried again after the retry delay, and failing again.
        wait_events(&server, &id, Duration::from_secs(10), |types| {
            count(types, "DeletionFailed") >= 2
        });
        assert_eq!(im_list(&server), vec![inf], "the infrastructure stands");
        server.stop();
        id
    };
    // The cloud destroys again: the next try succeeds.
    let healthy = catalogue("site-d", "{}");
    let server = TestServer::start_with(tuned(dir.path(), &healthy, retry));
    wait_status(&server, &id, "deleted", Duration::from_secs(10));
    assert!(im_list(&server).is_empty());
    let types = event_types(&server, &id);
    assert_eq!(types.last().map(String::as_str), Some("PlacementDeleted"));
    assert!(count(&types, "DeletionStarted") >= 3, "{types:?}");
}

#[test]
fn timers_count_from_recorded_times_across_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let sites = catalogue("site-s", "{}");
    let timings = |config: &mut PlacementConfig| {
        config.timings.waiting_retry = Duration::from_secs(6);
        config.timings.purge_after = Duration::from_secs(6);
    };
    let (unable, waiting, recorded) = {
        let server = TestServer::start_with(tuned(dir.path(), &sites, timings));
        let unable = deploy(
            &server,
            json!({"requirements": {"resources": {"cores": 64}}}),
        );
        let waiting = deploy(&server, json!({"requirements": {"sites": ["site-q"]}}));
        wait_status(&server, &unable, "unable", Duration::from_secs(10));
        wait_status(&server, &waiting, "waiting", Duration::from_secs(10));
        let recorded = Instant::now();
        server.stop();
        (unable, waiting, recorded)
    };
    // Both deadlines pass while no server runs.
    std::thread::sleep(Duration::from_secs(6).saturating_sub(recorded.elapsed()));
    let server = TestServer::start_with(tuned(dir.path(), &sites, timings));
    let restarted = Instant::now();
    // Timers started over at the restart would need 6 s more.
    let deadline = Duration::from_secs(4);
    loop {
        let purged = server
            .get(&format!("/v1/infrastructures/{unable}"))
            .auth(&basic("imc", "s3cret"))
            .send()
            .status
            == 404;
        let rounds = count(&event_types(&server, &waiting), "CandidatesEvaluated");
        if purged && rounds >= 2 {
            break;
        }
        assert!(
            restarted.elapsed() < deadline,
            "purged: {purged}, rounds: {rounds} {:?} after the restart",
            restarted.elapsed()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn live_placements(server: &impl Api) -> Option<u64> {
    let text = server.get("/metrics").send().expect(200).text();
    text.lines()
        .find(|line| line.starts_with("infralog_live_actors{kind=\"placement\"}"))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}

#[test]
fn idle_placement_actors_stop_and_come_back_on_demand() {
    let dir = tempfile::tempdir().expect("temp dir");
    let sites = catalogue("site-s", "{}");
    let server = TestServer::start_with(tuned(dir.path(), &sites, |config| {
        config.idle_timeout = Duration::from_millis(300);
    }));
    let id = deploy(&server, json!({"requirements": {"sites": ["site-s"]}}));
    wait_status(&server, &id, "configured", Duration::from_secs(10));
    let deadline = Instant::now() + Duration::from_secs(10);
    while live_placements(&server) != Some(0) {
        assert!(
            Instant::now() < deadline,
            "placement actors: {:?}",
            live_placements(&server)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(show(&server, &id)["status"], "configured");
    // A deletion reaches a fresh actor, rehydrated from the log.
    server
        .delete(&format!("/v1/infrastructures/{id}"))
        .auth(&basic("imc", "s3cret"))
        .send()
        .expect(200);
    wait_status(&server, &id, "deleted", Duration::from_secs(10));
    assert!(im_list(&server).is_empty());
    let types = event_types(&server, &id);
    assert_eq!(count(&types, "DeletionRequested"), 1, "{types:?}");
    assert_eq!(count(&types, "PlacementDeleted"), 1, "{types:?}");
}
