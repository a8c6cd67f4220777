//! The MLBench facade's metric routes as mlbench-core uses them (check 5):
//! form and JSON POSTs, dates as Python's `str(datetime)`, every query
//! parameter, every error with its `message`, and a run's deletion.

use std::time::{Duration, Instant};

use serde_json::json;

use super::mlbench::*;
use crate::harness::*;

#[test]
fn check_5_metric_posts_queries_and_their_errors() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start(dir.path());
    custom_run(&server, "m1", "1", "gloo", "sleep 60").expect(201);
    wait_run(&server, 1, "started", Duration::from_secs(20));
    let posted = post_form(
        &server,
        "/api/metrics/",
        &[
            ("run_id", "1"),
            ("name", "m"),
            ("date", "2024-05-01 10:00:00.5"),
            ("value", "1"),
            ("cumulative", "False"),
        ],
        None,
    )
    .expect(201)
    .json();
    assert_eq!(posted["date"], "2024-05-01T10:00:00.500000Z");
    assert_eq!(posted["value"], "1");
    assert_eq!(posted["cumulative"], false);
    assert_eq!(posted["metadata"], "");
    // JSON bodies too, numbers converted; the other date forms.
    for (date, value) in [
        ("2024-05-01T10:00:01.000000Z", json!(0.5)),
        ("2024-05-01T10:00:02+00:00", json!(2)),
    ] {
        let answer = server
            .post("/api/metrics/")
            .header("Content-Type", "application/json")
            .body(
                json!({"run_id": 1, "name": "m", "date": date, "value": value, "metadata": "x"})
                    .to_string(),
            )
            .send()
            .expect(201)
            .json();
        assert_eq!(answer["value"], value.to_string().as_str());
    }
    let pod = post_form(
        &server,
        "/api/metrics/",
        &[
            ("pod_name", "infralog-mlbench-worker-m1-0"),
            ("name", "custom"),
            ("date", "2024-05-01 10:00:00"),
            ("value", "7"),
        ],
        None,
    )
    .expect(201)
    .json();
    assert_eq!(pod["pod_name"], "infralog-mlbench-worker-m1-0");
    // Errors, each with a message (mlbench-core reads `message`).
    let refused = post_form(
        &server,
        "/api/metrics/",
        &[("name", "m"), ("value", "1")],
        None,
    )
    .expect(400)
    .json();
    assert_eq!(refused["message"], "Run ID has to be supplied");
    assert_eq!(refused["data"]["name"], "m");
    let long_name = "n".repeat(51);
    let long_value = "v".repeat(256);
    for pairs in [
        vec![
            ("run_id", "1"),
            ("pod_name", "p"),
            ("name", "m"),
            ("value", "1"),
            ("date", "2024-05-01 10:00:00"),
        ],
        vec![
            ("run_id", "1"),
            ("value", "1"),
            ("date", "2024-05-01 10:00:00"),
        ],
        vec![
            ("run_id", "1"),
            ("name", &long_name),
            ("value", "1"),
            ("date", "2024-05-01 10:00:00"),
        ],
        vec![
            ("run_id", "1"),
            ("name", "m"),
            ("value", &long_value),
            ("date", "2024-05-01 10:00:00"),
        ],
        vec![("run_id", "1"), ("name", "m"), ("value", "1")],
        vec![
            ("run_id", "1"),
            ("name", "m"),
            ("value", "1"),
            ("date", "yesterday"),
        ],
        vec![
            ("run_id", "one"),
            ("name", "m"),
            ("value", "1"),
            ("date", "2024-05-01 10:00:00"),
        ],
        vec![
            ("run_id", "1"),
            ("name", "m"),
            ("value", "1"),
            ("date", "2024-05-01 10:00:00"),
            ("cumulative", "perhaps"),
        ],
    ] {
        bad_request(post_form(&server, "/api/metrics/", &pairs, None));
    }
    server
        .post("/api/metrics/")
        .header("Content-Type", "application/json")
        .body("{")
        .send()
        .expect(400);
    server
        .post("/api/metrics/")
        .header("Content-Type", "text/plain")
        .body("x")
        .send()
        .expect(415);
    let missing = post_form(
        &server,
        "/api/metrics/",
        &[
            ("run_id", "999"),
            ("name", "m"),
            ("value", "1"),
            ("date", "2024-05-01 10:00:00"),
        ],
        None,
    )
    .expect(404)
    .json();
    assert_eq!(
        missing,
        json!({"status": "Not Found", "message": "Run not found"})
    );
    let no_pod = post_form(
        &server,
        "/api/metrics/",
        &[
            ("pod_name", "nobody"),
            ("name", "m"),
            ("value", "1"),
            ("date", "2024-05-01 10:00:00"),
        ],
        None,
    )
    .expect(404)
    .json();
    assert_eq!(no_pod["message"], "Pod not found");
    assert_eq!(
        server.get("/api/runs/999/").send().expect(404).json()["message"],
        "Run not found"
    );
    server.get("/api/runs/abc/").send().expect(404);
    // Query parameters.
    for query in [
        "since=yesterday",
        "metric_type=foo",
        "summarize=0",
        "summarize=x",
        "last_n=-1",
        "format=xml",
    ] {
        bad_request(metrics(&server, &format!("1/?metric_type=run&{query}")));
    }
    bad_request(metrics(&server, "1/?metric_type=foo"));
    metrics(&server, "nobody/").expect(404);
    metrics(&server, "nobody/?metric_type=pod").expect(404);
    metrics(&server, "999/?metric_type=run").expect(404);
    metrics(&server, "m1/?metric_type=run").expect(404);
    let series = |query: &str| -> Vec<(String, String)> {
        let answer = metrics(
            &server,
            &format!("1/?metric_type=run&metric_filter=m{query}"),
        )
        .expect(200)
        .json();
        answer["m"]
            .as_array()
            .map(|points| {
                points
                    .iter()
                    .map(|p| {
                        (
                            p["date"].as_str().unwrap_or("").to_string(),
                            p["value"].as_str().unwrap_or("").to_string(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let values =
        |points: Vec<(String, String)>| points.into_iter().map(|(_, v)| v).collect::<Vec<_>>();
    assert_eq!(values(series("")), ["1", "0.5", "2"]);
    // `since` in each of its forms, Python's `str(datetime)` included.
    for since in [
        "2024-05-01 10:00:00.600000",
        "2024-05-01T10:00:00.600000Z",
        "2024-05-01T10:00:00.6+00:00",
    ] {
        assert_eq!(
            values(series(&format!("&since={}", enc(since)))),
            ["0.5", "2"],
            "{since}"
        );
    }
    assert_eq!(
        series("&summarize=2"),
        [
            (
                "2024-05-01T10:00:00.500000Z".to_string(),
                "0.75".to_string()
            ),
            ("2024-05-01T10:00:02.000000Z".to_string(), "2.0".to_string()),
        ]
    );
    assert_eq!(values(series("&last_n=2")), ["0.5", "2"]);
    assert_eq!(values(series("&summarize=2&last_n=1")), ["2.0"]);
    let everything = metrics(&server, "1/?metric_type=run").expect(200).json();
    assert_eq!(
        everything.as_object().map(|o| o.len()),
        Some(1),
        "{everything}"
    );
    post_form(
        &server,
        "/api/metrics/",
        &[
            ("run_id", "1"),
            ("name", "word"),
            ("value", "abc"),
            ("date", "2024-05-01 10:00:00"),
        ],
        None,
    )
    .expect(201);
    post_form(
        &server,
        "/api/metrics/",
        &[
            ("run_id", "1"),
            ("name", "word"),
            ("value", "def"),
            ("date", "2024-05-01 10:00:01"),
        ],
        None,
    )
    .expect(201);
    bad_request(metrics(
        &server,
        "1/?metric_type=run&metric_filter=word&summarize=1",
    ));
    assert_eq!(
        metrics(&server, "1/?metric_type=run&metric_filter=none")
            .expect(200)
            .json(),
        json!({})
    );
    let pod_points = metrics(
        &server,
        "infralog-mlbench-worker-m1-0/?metric_filter=custom",
    )
    .expect(200)
    .json();
    assert_eq!(pod_points["custom"][0]["value"], "7");
    // Runs: bad fields are 400 even while a run is active (before the 409).
    let before = server.get("/api/runs/").send().expect(200).json();
    for pairs in [
        vec![("name", "Bad_Name")],
        vec![("name", "r2"), ("num_workers", "5")],
        vec![("name", "r2"), ("image_name", "mlbench/unknown:latest")],
        vec![("name", "r2"), ("backend", "tcp")],
        vec![("name", "r2"), ("backend", "custom_backend")],
        vec![("name", "r2"), ("light_target", "sometimes")],
        vec![("num_workers", "1")],
    ] {
        bad_request(post_run(&server, &pairs));
    }
    let conflict = post_run(&server, &[("name", "r2"), ("image_name", IMAGE)])
        .expect(409)
        .json();
    assert_eq!(
        conflict,
        json!({"status": "Conflict", "message": "There is already an active run"})
    );
    assert_eq!(server.get("/api/runs/").send().expect(200).json(), before);
    // DELETE stops the run and deletes its metrics.
    let pid = run(&server, 1)["job_metadata"]["workhorse_pid"]
        .as_i64()
        .expect("a pid") as i32;
    server.delete("/api/runs/1/").send().expect(204);
    server.get("/api/runs/1/").send().expect(404);
    server.delete("/api/runs/1/").send().expect(404);
    metrics(&server, "1/?metric_type=run").expect(404);
    assert_eq!(
        server.get("/api/runs/").send().expect(200).json(),
        json!([])
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::path::Path::new(&format!("/proc/{pid}")).exists() && !is_zombie(pid) {
        assert!(
            Instant::now() < deadline,
            "the deleted run's worker survives"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // The next run is admitted.
    custom_run(&server, "m2", "1", "mpi", "true").expect(201);
    wait_run(&server, 2, "finished", Duration::from_secs(20));
}

/// The OpenAPI document of a server with the facade describes its routes, and
/// every route it describes is one the facade serves (none falls through to
/// the facade's "Not found" or "Method not allowed").
#[test]
fn the_openapi_document_describes_the_served_routes() {
    let dir = tempfile::tempdir().expect("a dir");
    let server = super::mlbench::start(dir.path());
    let document = server.get("/openapi.json").send().expect(200).json();
    let mut described = 0;
    for (template, item) in document["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("an item") {
            if operation["tags"] != serde_json::json!(["mlbench"]) {
                continue;
            }
            described += 1;
            let path = template.replace("{id}", "999").replace("{pk}", "nopod");
            let method = method.to_ascii_uppercase();
            let response = server.request(&method, &path).body("").send();
            assert_ne!(response.status, 405, "{method} {path}");
            assert!(
                !response.text().contains("\"Not found\""),
                "{method} {path} is not routed: {}",
                response.text()
            );
        }
    }
    assert_eq!(described, 10, "every MLBench route is described");
}

/// A run's events read as an infrastructure's do on IM's `/events`.
#[test]
fn a_runs_events_read_like_an_infrastructures() {
    let dir = tempfile::tempdir().expect("a dir");
    let server = super::mlbench::start(dir.path());
    super::mlbench::custom_run(&server, "ev", "1", "gloo", "echo boom >&2; exit 2").expect(201);
    super::mlbench::wait_run(&server, 1, "failed", std::time::Duration::from_secs(60));
    let page = server.get("/api/runs/1/events/").send().expect(200).json();
    let types: Vec<&str> = page["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|event| event["type"].as_str().expect("a type"))
        .collect();
    assert_eq!(types.first(), Some(&"RunRequested"), "{types:?}");
    assert!(types.contains(&"RunProcessExited"), "{types:?}");
    assert_eq!(types.last(), Some(&"RunFailed"), "{types:?}");
    let versions: Vec<u64> = page["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|event| event["version"].as_u64().expect("a version"))
        .collect();
    assert_eq!(versions, (1..=versions.len() as u64).collect::<Vec<_>>());
    let tail = server
        .get("/api/runs/1/events/?from=2&limit=1")
        .send()
        .expect(200)
        .json();
    assert_eq!(tail["events"][0]["version"], 2);
    let stream = server
        .get("/api/runs/1/events")
        .header("Accept", "application/x-ndjson")
        .send()
        .expect(200);
    assert_eq!(stream.text().lines().count(), types.len());
    server.get("/api/runs/9/events/").send().expect(404);
    server.get("/api/runs/1/events/?from=0").send().expect(400);
}
