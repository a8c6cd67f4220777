//! The IMC facade's reads beside IMC's own: a deployment's events (answered as
//! IM's `/events` answers an infrastructure's), the OpenAPI document of a server
//! that serves the facade, and `/v1/health` once the log fail-stopped.

use std::time::Duration;

use base64::Engine;
use serde_json::{json, Value};

use super::imc::{basic, deploy, imc_settings_with, post, wait_status, SITES};
use crate::harness::*;

fn events(server: &impl Api, id: &str, query: &str) -> Response {
    server
        .get(&format!("/v1/infrastructures/{id}/events{query}"))
        .auth(&basic("imc", "s3cret"))
        .send()
}

#[test]
fn a_deployments_events_read_like_an_infrastructures() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = TestServer::start_with(imc_settings_with(dir.path(), SITES));
    let id = deploy(&server, json!({"identity": "alice"}));
    let shown = wait_status(&server, &id, "configured", Duration::from_secs(10));
    let page = events(&server, &id, "").expect(200).json();
    let all = page["events"].as_array().expect("events").clone();
    let types: Vec<&str> = all.iter().filter_map(|e| e["type"].as_str()).collect();
    assert_eq!(
        types,
        [
            "PlacementRequested",
            "CandidatesEvaluated",
            "AttemptStarted",
            "AttemptRunning",
            "AttemptSucceeded",
            "PlacementConfigured"
        ]
    );
    let stream = format!("imc-placement-{id}");
    for (index, event) in all.iter().enumerate() {
        assert_eq!(event["version"], json!(index + 1));
        assert_eq!(event["stream_version"], json!(index + 1));
        assert_eq!(event["stream"], stream.as_str());
        assert!(event["time"].as_str().is_some_and(|t| t.ends_with('Z')));
    }
    assert_eq!(all[0]["data"]["identity"], "alice");
    assert_eq!(all[2]["data"]["inf_id"], shown["infra_id"]);
    assert!(page.get("next").is_none());
    // Pages and streams as on `/infrastructures/<id>/events`.
    let first = events(&server, &id, "?limit=2").expect(200).json();
    assert_eq!(first["events"].as_array().map(Vec::len), Some(2));
    assert_eq!(first["next"], 3);
    let rest = events(&server, &id, "?from=3").expect(200).json();
    assert_eq!(rest["events"][0], all[2]);
    let lines = server
        .get(&format!("/v1/infrastructures/{id}/events/"))
        .auth(&basic("imc", "s3cret"))
        .header("Accept", "application/x-ndjson")
        .send()
        .expect(200)
        .text();
    let streamed: Vec<Value> = lines
        .lines()
        .map(|line| serde_json::from_str(line).expect("one event a line"))
        .collect();
    assert_eq!(streamed, all);
    // Its errors, in IMC's bodies.
    for query in ["?limit=0", "?limit=x", "?from=0", "?limit=10001"] {
        let answer = events(&server, &id, query).expect(400);
        assert!(answer.json()["error"].is_string(), "{query}");
    }
    server
        .get(&format!("/v1/infrastructures/{id}/events"))
        .auth(&basic("imc", "s3cret"))
        .header("Accept", "text/plain")
        .send()
        .expect(415);
    let unknown = events(&server, "6b0c7a1e-3f8e-4b53-9d1a-2a7b9a9f0099", "").expect(404);
    assert_eq!(unknown.json(), json!({"status": "invalid"}));
    server
        .get(&format!("/v1/infrastructures/{id}/events"))
        .send()
        .expect(401);
    server
        .delete(&format!("/v1/infrastructures/{id}/events"))
        .auth(&basic("imc", "s3cret"))
        .send()
        .expect(405);
}

#[test]
fn the_openapi_document_describes_the_facade_only_where_it_is_served() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = TestServer::start_with(imc_settings_with(dir.path(), SITES));
    let document = server.get("/openapi.json").send().expect(200).json();
    let events = &document["paths"]["/v1/infrastructures/{id}/events"]["get"];
    assert_eq!(events["security"], json!([{"imc": []}]));
    assert!(document["paths"]["/v1/health"]["get"]["responses"]["409"].is_object());
    assert!(document["paths"]["/infrastructures/{infid}/events"].is_object());
    let (_dir, plain) = temp_server();
    let document = plain.get("/openapi.json").send().expect(200).json();
    assert!(document["paths"]["/v1/infrastructures/{id}/events"].is_null());
}

/// A RADL of base64 `text` in a comment, which no compressor shrinks.
fn radl_with_noise(bytes: usize) -> String {
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let noise: Vec<u8> = (0..bytes)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect();
    let noise = base64::engine::general_purpose::STANDARD.encode(noise);
    let radl = format!(
        "# {noise}\nsystem node (\ninstance_type = '$instance' and\ndisk.0.image.url = '$image'\n)\ndeploy node 1\n"
    );
    base64::engine::general_purpose::STANDARD.encode(radl)
}

#[test]
fn health_answers_409_once_the_log_fail_stopped() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = TestServer::start_with(imc_settings_with(dir.path(), SITES));
    server.get("/v1/health").send().expect(204);
    // sled writes a large value to a file of its own under `blobs/`: with a
    // plain file in that directory's place, the write fails in the file system.
    let blobs = dir.path().join("log").join("log").join("blobs");
    if blobs.exists() {
        std::fs::remove_dir_all(&blobs).expect("remove sled's blob directory");
    }
    std::fs::write(&blobs, b"not a directory").expect("a file in its place");
    let failed = post(&server, &json!({"radl": radl_with_noise(400 * 1024)}), None);
    assert_eq!(failed.status, 500, "{}", failed.text());
    assert_eq!(failed.json(), json!({"error": "Internal error"}));
    let unhealthy = server.get("/v1/health").send().expect(409);
    assert_eq!(
        unhealthy.json(),
        json!({"error": "the event log stopped taking writes after a failed write"})
    );
    // Every later write is refused too, with nothing of the log's state leaked.
    let refused = post(&server, &json!({"radl": super::imc::template()}), None);
    assert_eq!(refused.status, 500);
    assert_eq!(refused.json(), json!({"error": "Internal error"}));
}
