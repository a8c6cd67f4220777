//! The MLBench facade (`/api/…`) as the dashboard and the mlbench-core client
//! use it: runs with real worker processes on a core infrastructure, pods,
//! metrics with every query parameter and the zip export, admission in both
//! modes, credentials and run tokens, and the spec's checks 1–6.

use std::path::Path;
use std::time::{Duration, Instant};

use infralog::app::Settings;
use infralog::facades::FacadeSettings;
use infralog_actors::decide::mlbench::AdmissionMode;
use serde_json::{json, Value};

use super::imc::basic;
use crate::harness::*;

pub const IMAGE: &str = "mlbench/pytorch-cifar10-resnet20-all-reduce:latest";

pub fn mlbench_settings(
    dir: &Path,
    configure: impl FnOnce(&mut infralog::facades::mlbench::MlbenchSettings),
) -> Settings {
    let mut settings = settings(dir);
    let mut facades = FacadeSettings::enable(&["mlbench".to_string()]).expect("mlbench exists");
    if let Some(mlbench) = facades.mlbench.as_mut() {
        mlbench.sample_every = Duration::from_millis(500);
        // The server runs inside the test binary: workers run the real one.
        mlbench.worker_program = Some(env!("CARGO_BIN_EXE_infralog").into());
        configure(mlbench);
    }
    settings.facades = facades;
    settings
}

pub fn start(dir: &Path) -> TestServer {
    TestServer::start_with(mlbench_settings(dir, |_| {}))
}

/// A form body, as Python's requests writes one.
pub fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| {
            let enc = |t: &str| {
                percent_encoding::utf8_percent_encode(t, percent_encoding::NON_ALPHANUMERIC)
                    .to_string()
            };
            format!("{}={}", enc(k), enc(v))
        })
        .collect::<Vec<_>>()
        .join("&")
}

pub fn post_form(
    server: &impl Api,
    path: &str,
    pairs: &[(&str, &str)],
    auth: Option<&str>,
) -> Response {
    let mut request = server
        .post(path)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(form(pairs));
    if let Some(auth) = auth {
        request = request.auth(auth);
    }
    request.send()
}

pub fn post_run(server: &impl Api, pairs: &[(&str, &str)]) -> Response {
    post_form(server, "/api/runs/", pairs, None)
}

pub fn run(server: &impl Api, id: u64) -> Value {
    server
        .get(&format!("/api/runs/{id}/"))
        .send()
        .expect(200)
        .json()
}

pub fn wait_run(server: &impl Api, id: u64, wanted: &str, timeout: Duration) -> Value {
    let deadline = Instant::now() + timeout;
    loop {
        let detail = run(server, id);
        if detail["state"] == wanted {
            return detail;
        }
        assert!(Instant::now() < deadline, "never {wanted}: {detail}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A run of `command` (a custom image) with `workers` ranks on `backend`.
pub fn custom_run(
    server: &impl Api,
    name: &str,
    workers: &str,
    backend: &str,
    command: &str,
) -> Response {
    post_run(
        server,
        &[
            ("name", name),
            ("num_workers", workers),
            ("image_name", "custom_image"),
            ("custom_image_name", "x"),
            ("custom_image_command", command),
            ("backend", backend),
        ],
    )
}

pub fn lines(detail: &Value, stream: &str) -> Vec<String> {
    detail["job_metadata"][stream]
        .as_array()
        .map(|l| {
            l.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

pub fn metrics(server: &impl Api, query: &str) -> Response {
    server.get(&format!("/api/metrics/{query}")).send()
}

pub fn bad_request(response: Response) -> String {
    let body = response.expect(400).json();
    assert_eq!(body["status"], "Bad Request", "{body}");
    body["message"].as_str().expect("a message").to_string()
}

pub fn enc(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// The entries of a zip archive (stored or not: names and sizes from the
/// central directory; contents of stored entries).
pub fn zip_entries(archive: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut entries = Vec::new();
    let mut at = 0;
    while archive.get(at..at + 4) == Some(&[0x50, 0x4b, 0x03, 0x04]) {
        let u16_at = |o: usize| u16::from_le_bytes([archive[at + o], archive[at + o + 1]]) as usize;
        let size = u32::from_le_bytes(archive[at + 18..at + 22].try_into().expect("size")) as usize;
        let (name_len, extra) = (u16_at(26), u16_at(28));
        let name = String::from_utf8(archive[at + 30..at + 30 + name_len].to_vec()).expect("name");
        let data = at + 30 + name_len + extra;
        entries.push((name, archive[data..data + size].to_vec()));
        at = data + size;
    }
    assert_eq!(
        archive.get(at..at + 4),
        Some(&[0x50, 0x4b, 0x01, 0x02][..]),
        "a central directory follows"
    );
    entries
}

#[test]
fn check_1_empty_lists_the_root_and_a_disabled_facade() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start(dir.path());
    for path in ["/api/pods", "/api/pods/", "/api/runs/", "/api/runs"] {
        assert_eq!(
            server.get(path).send().expect(200).json(),
            json!([]),
            "{path}"
        );
    }
    let root = server.get("/api/").send().expect(200);
    assert!(root.content_type().starts_with("application/json"));
    let root = root.json();
    for key in ["pods", "runs", "metrics"] {
        let url = root[key].as_str().expect("a URL");
        assert!(
            url.starts_with("http://") && url.ends_with(&format!("/api/{key}/")),
            "{url}"
        );
    }
    assert_eq!(
        metrics(&server, "").expect(200).json(),
        json!({"pod_metrics": {}, "run_metrics": {}})
    );
    assert_eq!(
        server.get("/api/nothing").send().expect(404).json()["status"],
        "Not Found"
    );
    assert_eq!(
        server.put("/api/runs/").send().expect(405).json()["status"],
        "Method Not Allowed"
    );
    // Without the facade, IM's router answers its paths (404).
    let plain = tempfile::tempdir().expect("temp dir");
    let im = TestServer::start(plain.path());
    im.get("/api/").send().expect(404);
    im.get("/api/runs/").send().expect(404);
}

#[test]
fn checks_2_to_4_a_gloo_run_trains_posts_its_metrics_and_finishes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start(dir.path());
    let created = post_run(
        &server,
        &[
            ("name", "r1"),
            ("num_workers", "2"),
            ("num_cpus", "1"),
            ("image_name", IMAGE),
            ("backend", "gloo"),
            ("light_target", "true"),
        ],
    )
    .expect(201)
    .json();
    assert_eq!(created["id"], 1);
    assert!(
        ["initialized", "started"].contains(&created["state"].as_str().unwrap_or("")),
        "{created}"
    );
    assert_eq!(created["finished_at"], Value::Null);
    assert_eq!(created["num_workers"], 2);
    assert_eq!(created["job_metadata"], json!({}));
    assert!(uuid::Uuid::try_parse(created["job_id"].as_str().unwrap_or("")).is_ok());
    // Check 3: both pods run while the run does.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let pods = server.get("/api/pods/").send().expect(200).json();
        let running: Vec<&Value> = pods
            .as_array()
            .expect("a list")
            .iter()
            .filter(|pod| pod["phase"] == "Running")
            .collect();
        if running.len() == 2 {
            let names: Vec<&str> = running.iter().filter_map(|p| p["name"].as_str()).collect();
            assert_eq!(
                names,
                [
                    "infralog-mlbench-worker-r1-0",
                    "infralog-mlbench-worker-r1-1"
                ]
            );
            for pod in running {
                assert!(
                    pod["labels"].as_str().unwrap_or("").contains("'set': 'r1'"),
                    "{pod}"
                );
                assert_eq!(pod["ip"], "10.0.0.1");
            }
            break;
        }
        assert!(Instant::now() < deadline, "the pods never ran: {pods}");
        std::thread::sleep(Duration::from_millis(50));
    }
    // The run's pods are the VMs of an ordinary infrastructure of the facade's
    // identity, which the IM API shows.
    let im = server
        .get("/infrastructures")
        .auth("id = im; type = InfrastructureManager; username = mlbench")
        .send()
        .expect(200)
        .text();
    assert_eq!(
        im.lines().filter(|l| !l.trim().is_empty()).count(),
        1,
        "{im}"
    );
    let started = run(&server, 1);
    assert_eq!(
        started["job_metadata"]["master_name"],
        "infralog-mlbench-worker-r1-0"
    );
    assert!(
        started["job_metadata"]["workhorse_pid"].as_i64().is_some(),
        "{started}"
    );
    // Check 4.
    let done = wait_run(&server, 1, "finished", Duration::from_secs(60));
    let created_at = done["created_at"].as_str().expect("created_at");
    let finished_at = done["finished_at"].as_str().expect("finished_at");
    assert!(finished_at >= created_at, "{done}");
    assert!(
        created_at.ends_with('Z') && created_at.len() == 27,
        "{created_at}"
    );
    assert!(
        lines(&done, "stdout").iter().any(|l| l == "Goal Reached!"),
        "{done}"
    );
    let last = metrics(
        &server,
        &format!(
            "1/?metric_type=run&metric_filter={}&last_n=1",
            enc("val_global_Prec@1 @ 0")
        ),
    )
    .expect(200)
    .json();
    let points = last["val_global_Prec@1 @ 0"]
        .as_array()
        .expect("the series");
    assert_eq!(points.len(), 1, "{last}");
    assert_eq!(last.as_object().map(|o| o.len()), Some(1));
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.get("/api/pods/").send().expect(200).json() != json!([]) {
        assert!(Instant::now() < deadline, "pods outlive their run");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Every rank posted per epoch; rank 0 the task result.
    let all = metrics(&server, "1/?metric_type=run").expect(200).json();
    for name in [
        "val_global_loss @ 0",
        "val_global_loss @ 1",
        "val_global_Prec@1 @ 1",
        "TaskResult @ 0",
    ] {
        assert!(
            all[name].as_array().is_some_and(|p| !p.is_empty()),
            "{name}: {all}"
        );
    }
    assert!(
        all["val_global_loss @ 0"]
            .as_array()
            .map(Vec::len)
            .unwrap_or(0)
            >= 3
    );
    // Pod metrics were sampled from /proc and outlive the pods.
    let pod = metrics(&server, "infralog-mlbench-worker-r1-0/")
        .expect(200)
        .json();
    for name in ["cpu", "memory", "network_in", "network_out"] {
        assert!(
            pod[name].as_array().is_some_and(|p| !p.is_empty()),
            "{name}: {pod}"
        );
    }
    let memory: f64 = pod["memory"][0]["value"]
        .as_str()
        .and_then(|v| v.parse().ok())
        .expect("MiB");
    assert!(memory > 0.0, "{pod}");
    let everything = metrics(&server, "").expect(200).json();
    assert!(everything["run_metrics"]["r1"]["TaskResult @ 0"][0]["name"] == "TaskResult @ 0");
    assert!(everything["pod_metrics"]["infralog-mlbench-worker-r1-1"]["cpu"].is_array());
    // The zip export, in both spellings.
    for path in ["1.zip?metric_type=run", "1/?metric_type=run&format=zip"] {
        let answer = metrics(&server, path).expect(200);
        assert_eq!(answer.content_type(), "application/zip");
        assert_eq!(
            answer.header("content-disposition"),
            Some("attachment; filename=metrics_r1.zip")
        );
        let entries = zip_entries(&answer.body);
        let names: Vec<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
        assert!(names.contains(&"official_result.txt"), "{names:?}");
        assert!(
            names.contains(&"result_val_global_loss @ 0.json"),
            "{names:?}"
        );
        assert!(
            names.contains(&"infralog-mlbench-worker-r1-0_cpu.json"),
            "{names:?}"
        );
        assert!(
            !names.iter().any(|n| n.starts_with("result_TaskResult")),
            "{names:?}"
        );
        let loss: Value = entries
            .iter()
            .find(|(n, _)| n == "result_val_global_loss @ 0.json")
            .map(|(_, c)| serde_json::from_slice(c).expect("JSON"))
            .expect("the loss");
        assert!(loss.as_array().is_some_and(|p| p.len() >= 3), "{loss}");
    }
}

pub fn is_zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

#[test]
fn check_6_a_failing_custom_command_fails_the_run_and_places_are_filled() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start(dir.path());
    custom_run(&server, "bad", "1", "mpi", "echo boom >&2; exit 2").expect(201);
    let failed = wait_run(&server, 1, "failed", Duration::from_secs(20));
    assert!(failed["finished_at"].is_string(), "{failed}");
    assert!(
        lines(&failed, "stderr").iter().any(|l| l.contains("boom")),
        "{failed}"
    );
    server.delete("/api/runs/1/").send().expect(204);
    server.get("/api/runs/1/").send().expect(404);
    // Places are filled, the environment is the worker's, the flags appended;
    // gloo runs every rank.
    let command = "echo h={hosts} id={run_id} r={rank} b={backend} e=$MLBENCH_RUN_ID/$MLBENCH_RANK";
    post_run(
        &server,
        &[
            ("name", "places"),
            ("num_workers", "2"),
            ("image_name", "custom_image"),
            ("custom_image_name", "x"),
            ("custom_image_command", command),
            ("backend", "gloo"),
            ("gpu_enabled", "true"),
            ("light_target", "True"),
        ],
    )
    .expect(201);
    let done = wait_run(&server, 2, "finished", Duration::from_secs(20));
    let mut stdout = lines(&done, "stdout");
    stdout.sort();
    assert_eq!(
        stdout,
        [
            "h=10.0.0.1,10.0.0.1 id=2 r=0 b=gloo e=2/0 --gpu --light",
            "h=10.0.0.1,10.0.0.1 id=2 r=1 b=gloo e=2/1 --gpu --light",
        ]
    );
    // mpi runs rank 0 only, unless run_all_nodes.
    for (name, all_nodes, expected) in [("mpi-one", "false", 1), ("mpi-all", "true", 2)] {
        let id = post_run(
            &server,
            &[
                ("name", name),
                ("num_workers", "2"),
                ("image_name", "custom_image"),
                ("custom_image_name", "x"),
                ("custom_image_command", "echo rank {rank}"),
                ("run_all_nodes", all_nodes),
            ],
        )
        .expect(201)
        .json()["id"]
            .as_u64()
            .expect("an id");
        let done = wait_run(&server, id, "finished", Duration::from_secs(20));
        assert_eq!(lines(&done, "stdout").len(), expected, "{done}");
    }
}

#[test]
fn queue_admission_starts_the_smallest_runs_that_fit() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = TestServer::start_with(mlbench_settings(dir.path(), |m| {
        m.admission = AdmissionMode::Queue;
        m.max_workers = 3;
    }));
    custom_run(&server, "a", "2", "gloo", "sleep 60").expect(201);
    wait_run(&server, 1, "started", Duration::from_secs(20));
    let waiting = custom_run(&server, "b", "2", "gloo", "sleep 60")
        .expect(201)
        .json();
    assert_eq!(waiting["state"], "initialized");
    // Smaller and fitting: it overtakes the waiting one.
    custom_run(&server, "c", "1", "gloo", "sleep 60").expect(201);
    wait_run(&server, 3, "started", Duration::from_secs(20));
    assert_eq!(run(&server, 2)["state"], "initialized");
    let same_name = custom_run(&server, "A", "1", "gloo", "true")
        .expect(409)
        .json();
    assert_eq!(same_name["status"], "Conflict");
    server.delete("/api/runs/1/").send().expect(204);
    wait_run(&server, 2, "started", Duration::from_secs(20));
    for id in [2, 3] {
        server
            .delete(&format!("/api/runs/{id}/"))
            .send()
            .expect(204);
    }
}

#[test]
fn concurrent_posts_never_start_two_runs_in_exclusive_mode() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start(dir.path());
    let port = server.port;
    let answers: Vec<u16> = std::thread::scope(|scope| {
        let posts: Vec<_> = (0..8)
            .map(|n| {
                scope.spawn(move || {
                    let name = format!("c{n}");
                    let body = form(&[
                        ("name", name.as_str()),
                        ("image_name", "custom_image"),
                        ("custom_image_name", "x"),
                        ("custom_image_command", "sleep 60"),
                    ]);
                    Request::new(port, "POST", "/api/runs/")
                        .header("Content-Type", "application/x-www-form-urlencoded")
                        .body(body)
                        .send()
                        .status
                })
            })
            .collect();
        posts
            .into_iter()
            .map(|p| p.join().expect("a poster"))
            .collect()
    });
    assert_eq!(
        answers.iter().filter(|s| **s == 201).count(),
        1,
        "{answers:?}"
    );
    assert_eq!(
        answers.iter().filter(|s| **s == 409).count(),
        7,
        "{answers:?}"
    );
    let runs = server.get("/api/runs/").send().expect(200).json();
    assert_eq!(runs.as_array().map(Vec::len), Some(1), "{runs}");
    server.delete("/api/runs/1/").send().expect(204);
}

#[test]
fn credentials_guard_every_route_and_a_run_token_posts_only_its_run() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = TestServer::start_with(mlbench_settings(dir.path(), |m| {
        m.user = Some("mlbench".into());
        m.password = Some("s3cret".into());
    }));
    let good = basic("mlbench", "s3cret");
    for path in [
        "/api/",
        "/api/pods/",
        "/api/runs/",
        "/api/metrics/",
        "/api/runs/1/",
    ] {
        for auth in [None, Some(basic("mlbench", "wrong"))] {
            let mut request = server.get(path);
            if let Some(auth) = &auth {
                request = request.auth(auth);
            }
            let refused = request.send().expect(401).json();
            assert_eq!(refused["status"], "Unauthorized", "{path}");
        }
    }
    server.get("/api/runs/").auth(&good).send().expect(200);
    post_run(&server, &[("name", "anon"), ("image_name", IMAGE)]).expect(401);
    // The official worker posts its metrics with its run's token.
    post_form(
        &server,
        "/api/runs/",
        &[
            ("name", "tok"),
            ("image_name", IMAGE),
            ("backend", "mpi"),
            ("light_target", "true"),
        ],
        Some(&good),
    )
    .expect(201);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let detail = server
            .get("/api/runs/1/")
            .auth(&good)
            .send()
            .expect(200)
            .json();
        if detail["state"] == "finished" {
            break;
        }
        assert_ne!(detail["state"], "failed", "{detail}");
        assert!(Instant::now() < deadline, "{detail}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let points = server
        .get("/api/metrics/1/?metric_type=run")
        .auth(&good)
        .send()
        .expect(200)
        .json();
    assert!(points["TaskResult @ 0"].is_array(), "{points}");
    let point = [
        ("run_id", "1"),
        ("name", "m"),
        ("value", "1"),
        ("date", "2024-05-01 10:00:00"),
    ];
    post_form(
        &server,
        "/api/metrics/",
        &point,
        Some("Bearer not-the-token"),
    )
    .expect(401);
    post_form(&server, "/api/metrics/", &point, None).expect(401);
    post_form(&server, "/api/metrics/", &point, Some(&good)).expect(201);
}
