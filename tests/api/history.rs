//! Black-box tests of the history features: `GET …/events`, `?at=` on the read
//! properties, and the offline `events`, `replay` and `verify` commands run on the
//! data directory the server leaves behind.

use std::collections::BTreeMap;
use std::path::Path;

use std::time::{Duration, Instant};

use crate::harness::*;
use serde_json::Value;

const OWNER: &str = "id = im; type = InfrastructureManager; username = hist; password = s3cret-pw\\nid = dummy; type = Dummy; token = cloud-t0ken";
const STRANGER: &str = "id = im; type = InfrastructureManager; username = other; password = x\\nid = dummy; type = Dummy";

/// A server with a short contextualization, stopped on drop.
struct Server {
    server: Option<TestServer>,
}

impl Server {
    fn start(data_dir: &Path) -> Server {
        let mut settings = settings(data_dir);
        settings.contextualization_delay = Duration::from_millis(50);
        Server {
            server: Some(TestServer::start_with(settings)),
        }
    }

    /// Stops the server and waits until the log is closed.
    fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            server.stop();
        }
    }

    fn request(
        &self,
        method: &str,
        path: &str,
        auth: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Response {
        let server = self.server.as_ref().expect("a running server");
        let response = server
            .request(method, path)
            .direct()
            .auth(auth)
            .headers(headers)
            .body(body)
            .send();
        Response {
            status: response.status,
            body: response.text(),
            headers: response.headers.into_iter().collect(),
        }
    }

    fn get(&self, path: &str, auth: &str) -> Response {
        self.request("GET", path, auth, &[], "")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

#[derive(Debug)]
struct Response {
    status: u16,
    headers: BTreeMap<String, String>,
    body: String,
}

impl Response {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

fn events(server: &Server, inf: &str, query: &str) -> Vec<Value> {
    let response = server.get(&format!("/infrastructures/{inf}/events{query}"), OWNER);
    assert_eq!(response.status, 200, "{}", response.body);
    response.json()["events"]
        .as_array()
        .expect("events array")
        .clone()
}

fn head(server: &Server, inf: &str) -> u64 {
    events(server, inf, "?limit=10000")
        .last()
        .and_then(|e| e["version"].as_u64())
        .expect("a version")
}

/// What the read endpoints answer, by path.
type Answers = BTreeMap<String, (u16, String)>;

fn read_answers(server: &Server, inf: &str, at: Option<u64>) -> Answers {
    let suffix = at.map(|v| format!("?at={v}")).unwrap_or_default();
    let mut answers = Answers::new();
    let mut paths: Vec<String> = ["state", "radl", "contmsg"]
        .iter()
        .map(|p| format!("/infrastructures/{inf}/{p}"))
        .collect();
    paths.push(format!("/infrastructures/{inf}"));
    let list = server.get(&format!("/infrastructures/{inf}{suffix}"), OWNER);
    assert_eq!(list.status, 200, "{}", list.body);
    for uri in list.body.lines() {
        let vm = uri.rsplit('/').next().expect("vm id");
        paths.push(format!("/infrastructures/{inf}/vms/{vm}"));
    }
    for path in paths {
        let response = server.get(&format!("{path}{suffix}"), OWNER);
        answers.insert(path, (response.status, response.body));
    }
    answers
}

/// The answers and the history version they belong to, read while nothing
/// changes.
fn settled_answers(server: &Server, inf: &str) -> (u64, Answers) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let before = head(server, inf);
        let answers = read_answers(server, inf, None);
        if head(server, inf) == before {
            return (before, answers);
        }
        assert!(
            Instant::now() < deadline,
            "the infrastructure never settled"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn wait_for_state(server: &Server, inf: &str, wanted: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let state = server
            .get(&format!("/infrastructures/{inf}/state"), OWNER)
            .json();
        if state["state"]["state"] == wanted {
            return;
        }
        assert!(Instant::now() < deadline, "never {wanted}: {state}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn create(server: &Server) -> String {
    let response = server.request(
        "POST",
        "/infrastructures",
        OWNER,
        &[("Content-Type", "text/plain")],
        RADL_FRONT_WN_NO_CTX,
    );
    assert_eq!(response.status, 200, "{}", response.body);
    response
        .body
        .trim()
        .rsplit('/')
        .next()
        .expect("id")
        .to_string()
}

#[test]
fn history_time_travel_and_offline_tools() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let data_arg = data.to_str().expect("UTF-8 path").to_string();
    let mut server = Server::start(&data);
    let inf = create(&server);
    wait_for_state(&server, &inf, "configured");

    // Capture what the server answers after each step of a lifecycle.
    let mut captured = vec![settled_answers(&server, &inf)];
    let mut seen: Vec<Value> = Vec::new();
    let mut read_new_events = |version: u64| {
        // The events after the last one seen: exactly those the step added.
        let fresh = server
            .get(
                &format!("/infrastructures/{inf}/events?from={}", seen.len() + 1),
                OWNER,
            )
            .json();
        assert!(fresh.get("next").is_none(), "{fresh}");
        seen.extend(fresh["events"].as_array().expect("events").iter().cloned());
        assert_eq!(seen.len() as u64, version, "{fresh}");
    };
    read_new_events(captured[0].0);
    let operations: Vec<(&str, String, &str)> = vec![
        ("PUT", format!("/infrastructures/{inf}/stop"), ""),
        ("PUT", format!("/infrastructures/{inf}/start"), ""),
        (
            "POST",
            format!("/infrastructures/{inf}"),
            "network privada\nsystem wn\ndeploy wn 1",
        ),
        ("DELETE", format!("/infrastructures/{inf}/vms/1"), ""),
    ];
    for (method, path, body) in &operations {
        let response = server.request(method, path, OWNER, &[("Content-Type", "text/plain")], body);
        assert_eq!(response.status, 200, "{method} {path}: {}", response.body);
        captured.push(settled_answers(&server, &inf));
        read_new_events(captured.last().expect("captured").0);
    }
    let states: Vec<String> = captured
        .iter()
        .map(|(_, answers)| answers[&format!("/infrastructures/{inf}/state")].1.clone())
        .collect();
    assert!(states[1].contains("stopped"), "{}", states[1]);

    // ?at=k answers what the server answered when k was the last version.
    for (version, answers) in &captured {
        assert_eq!(
            &read_answers(&server, &inf, Some(*version)),
            answers,
            "at {version}"
        );
    }
    let last = captured.last().expect("captures").0;

    // The whole history, as JSON and as ndjson, paged and not.
    let all = events(&server, &inf, "?limit=10000");
    assert_eq!(all.len() as u64, last);
    for (index, event) in all.iter().enumerate() {
        assert_eq!(event["version"], index as u64 + 1);
        assert!(event["time"].as_str().expect("time").ends_with('Z'));
        assert!(event["type"].is_string() && event["id"].is_string());
        assert!(event["stream"].as_str().expect("stream").contains(&inf));
    }
    assert_eq!(all[0]["type"], "InfrastructureCreated");
    assert_eq!(all[0]["data"]["owners"][0]["username"], "hist");
    assert!(all
        .iter()
        .any(|e| e["type"] == "VmStopped" && e["vm"].is_u64()));
    let page = server
        .get(
            &format!("/infrastructures/{inf}/events?from=3&limit=2"),
            OWNER,
        )
        .json();
    assert_eq!(page["events"].as_array().expect("page").len(), 2);
    assert_eq!(page["events"][0], all[2]);
    assert_eq!(page["next"], 5);
    // Read incrementally between the steps (as the dashboard polls), the events
    // are the whole history, each once.
    assert_eq!(seen, all);
    let past_end = server
        .get(
            &format!("/infrastructures/{inf}/events?from={}", last + 1),
            OWNER,
        )
        .json();
    assert_eq!(past_end, serde_json::json!({ "events": [] }));
    let streamed = server.request(
        "GET",
        &format!("/infrastructures/{inf}/events?from=2"),
        OWNER,
        &[("Accept", "application/x-ndjson")],
        "",
    );
    assert_eq!(streamed.status, 200);
    assert_eq!(streamed.headers["content-type"], "application/x-ndjson");
    let lines: Vec<Value> = streamed
        .body
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(lines.as_slice(), &all[1..]);
    let limited = server.request(
        "GET",
        &format!("/infrastructures/{inf}/events?from=2&limit=3"),
        OWNER,
        &[("Accept", "application/x-ndjson")],
        "",
    );
    assert_eq!(limited.body.lines().count(), 3);
    assert_eq!(
        serde_json::from_str::<Value>(limited.body.lines().next().expect("a line")).expect("JSON"),
        all[1]
    );

    // VM 2 was added later: before that it does not exist; its properties travel too.
    let first = captured[0].0;
    let added = captured[3].0;
    let before = server.get(&format!("/infrastructures/{inf}/vms/2?at={first}"), OWNER);
    assert_eq!(before.status, 404, "{}", before.body);
    let stopped_at = captured[1].0;
    let vm_state = |at: u64| {
        server
            .get(
                &format!("/infrastructures/{inf}/vms/0/state?at={at}"),
                OWNER,
            )
            .body
    };
    assert_eq!(vm_state(stopped_at), "stopped");
    assert_eq!(vm_state(added), "configured");

    // Never a credential: not the password, not its digest, not the cloud token.
    let everything = server
        .get(&format!("/infrastructures/{inf}/events?limit=10000"), OWNER)
        .body;
    for secret in ["s3cret-pw", "cloud-t0ken", "digest", "salt"] {
        assert!(!everything.contains(secret), "{secret} leaked");
        assert!(!streamed.body.contains(secret), "{secret} leaked");
    }

    // Errors: another user, bad parameters, a version past the end, methods.
    assert_eq!(
        server
            .get(&format!("/infrastructures/{inf}/events"), STRANGER)
            .status,
        403
    );
    assert_eq!(
        server
            .get(&format!("/infrastructures/{inf}/state?at=1"), STRANGER)
            .status,
        403
    );
    let bad = server.get(
        &format!("/infrastructures/{inf}/events?from=0&limit=x"),
        OWNER,
    );
    assert_eq!(bad.status, 422);
    let detail = bad.json()["detail"].clone();
    assert_eq!(detail[0]["type"], "greater_than_equal");
    assert_eq!(detail[1]["type"], "int_parsing");
    for at in ["0", "-1", "1.5", "x"] {
        let response = server.get(&format!("/infrastructures/{inf}/radl?at={at}"), OWNER);
        assert_eq!(response.status, 422, "at={at}");
        let response = server.get(&format!("/infrastructures/{inf}/vms/0?at={at}"), OWNER);
        assert_eq!(response.status, 422, "vm info at={at}");
    }
    let beyond = server.get(
        &format!("/infrastructures/{inf}/state?at={}", last + 1),
        OWNER,
    );
    assert_eq!(beyond.status, 400, "{}", beyond.body);
    assert!(
        beyond.body.contains(&format!("last version is {last}")),
        "{}",
        beyond.body
    );
    assert_eq!(
        server
            .get(
                "/infrastructures/00000000-0000-1000-8000-000000000000/events",
                OWNER
            )
            .status,
        404
    );
    assert_eq!(
        server
            .request(
                "POST",
                &format!("/infrastructures/{inf}/events"),
                OWNER,
                &[],
                ""
            )
            .status,
        405
    );

    // The offline tools refuse a directory a server holds.
    let busy = infralog(&["events", "--data-dir", &data_arg, &inf]);
    assert_eq!(busy.status.code(), Some(2));
    let busy_said = String::from_utf8_lossy(&busy.stderr);
    assert!(
        busy_said.contains("in use by a running server"),
        "{busy_said}"
    );

    server.stop();

    // events: one line per event, text and JSON.
    let text = infralog(&["events", "--data-dir", &data_arg, &inf]);
    assert!(
        text.status.success(),
        "{}",
        String::from_utf8_lossy(&text.stderr)
    );
    let text = String::from_utf8(text.stdout).expect("UTF-8");
    assert_eq!(text.lines().count() as u64, last);
    assert!(!text.contains('\x1b'), "no colours when not on a terminal");
    assert!(text
        .lines()
        .next()
        .expect("a line")
        .contains("InfrastructureCreated"));
    let json = infralog(&["events", "--data-dir", &data_arg, "--json", &inf]);
    let offline: Vec<Value> = String::from_utf8(json.stdout)
        .expect("UTF-8")
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(offline, all);

    // replay: deterministic, and the state it prints is the server's.
    for (version, answers) in &captured {
        let until = version.to_string();
        let first = infralog(&[
            "replay",
            "--data-dir",
            &data_arg,
            &inf,
            "--until",
            &until,
            "--json",
        ]);
        let second = infralog(&[
            "replay",
            "--data-dir",
            &data_arg,
            &inf,
            "--until",
            &until,
            "--json",
        ]);
        assert!(
            first.status.success(),
            "{}",
            String::from_utf8_lossy(&first.stderr)
        );
        assert_eq!(first.stdout, second.stdout);
        let replayed: Value = serde_json::from_slice(&first.stdout).expect("JSON");
        let served: Value =
            serde_json::from_str(&answers[&format!("/infrastructures/{inf}/state")].1)
                .expect("JSON");
        assert_eq!(replayed["state"], served["state"]["state"]);
        assert_eq!(replayed["vm_states"], served["state"]["vm_states"]);
        assert_eq!(
            replayed["radl"],
            answers[&format!("/infrastructures/{inf}/radl")].1
        );
        assert_eq!(
            replayed["contmsg"],
            answers[&format!("/infrastructures/{inf}/contmsg")].1
        );
    }
    let at_time = all[0]["time"].as_str().expect("time");
    let replay_at = infralog(&["replay", "--data-dir", &data_arg, &inf, "--at", at_time]);
    assert!(replay_at.status.success());
    // Events appended together share their commit time.
    let same_time = all
        .iter()
        .take_while(|e| e["time"] == all[0]["time"])
        .count();
    let replayed_at = String::from_utf8_lossy(&replay_at.stdout);
    assert!(
        replayed_at.contains(&format!("at version {same_time} of {last}")),
        "{replayed_at}"
    );
    let unknown = infralog(&[
        "replay",
        "--data-dir",
        &data_arg,
        "00000000-0000-1000-8000-000000000000",
    ]);
    assert_eq!(unknown.status.code(), Some(2));
    let beyond = infralog(&[
        "replay",
        "--data-dir",
        &data_arg,
        &inf,
        "--until",
        &(last + 1).to_string(),
    ]);
    assert_eq!(beyond.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&beyond.stderr).contains(&format!("last version is {last}")));

    // verify: passes on this log, fails on a damaged copy.
    let verified = infralog(&["verify", "--data-dir", &data_arg]);
    let report = String::from_utf8_lossy(&verified.stdout);
    assert!(verified.status.success(), "{report}");
    assert!(report.contains("verified"), "{report}");
    {
        let store = infralog_events::SledStore::open(infralog_events::SledStoreConfig::new(&data))
            .expect("reopens");
        store.corrupt_record_for_tests(2).expect("damaged");
    }
    let damaged = infralog(&["verify", "--data-dir", &data_arg]);
    assert!(!damaged.status.success());
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&damaged.stdout),
        String::from_utf8_lossy(&damaged.stderr)
    );
    assert!(said.contains("damaged"), "{said}");
}
