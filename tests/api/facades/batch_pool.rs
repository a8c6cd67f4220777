//! The Batch facade's slots are the VMs of its pool, a core infrastructure its
//! service identity owns: adding VMs through the IM API runs more jobs at once,
//! and stopping or removing a VM evicts the job it ran, which waits for a slot
//! again.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::batch::{batch_settings, job, process_state, run_pid, submit, wait_status};
use crate::harness::*;

/// The facade's identity as IM credentials, with a Dummy cloud line.
pub const BATCH_IM: &str = "id = im; type = InfrastructureManager; username = batch; password = s3cret\\nid = dummy; type = Dummy";

const WORKER: &str = "network private ()\nsystem batch-worker (cpu.count >= 1 and memory.size >= 512m and net_interface.0.connection = 'private' and disk.0.os.name = 'linux')\ndeploy batch-worker 1\n";

/// The pool: the one infrastructure the facade's identity owns.
pub fn pool_of(server: &impl Api) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let listed = server
            .get("/infrastructures")
            .auth(BATCH_IM)
            .accept("application/json")
            .send()
            .expect(200)
            .json();
        if let Some(uri) = listed["uri-list"].as_array().and_then(|uris| uris.first()) {
            assert_eq!(
                listed["uri-list"].as_array().map(Vec::len),
                Some(1),
                "{listed}"
            );
            return id_of(uri["uri"].as_str().expect("a URI"));
        }
        assert!(Instant::now() < deadline, "no pool: {listed}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn vm_state(server: &impl Api, inf: &str, vm: u32) -> String {
    server
        .get(&format!("/infrastructures/{inf}/vms/{vm}/state"))
        .auth(BATCH_IM)
        .send()
        .expect(200)
        .text()
}

fn wait_vm(server: &impl Api, inf: &str, vm: u32, wanted: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let state = vm_state(server, inf, vm);
        if wanted.iter().any(|w| state.contains(w)) {
            return;
        }
        assert!(Instant::now() < deadline, "VM {vm} still {state}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A job that runs until `marker` exists.
fn blocker(marker: &Path) -> String {
    format!(
        "echo run; while [ ! -e {} ]; do sleep 0.05; done; echo done\n",
        marker.display()
    )
}

fn wait_gone(pid: i32) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while process_state(pid).is_some() {
        assert!(
            Instant::now() < deadline,
            "process {pid} survived its eviction"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn still(server: &impl Api, id: &str, wanted: &str) -> Value {
    std::thread::sleep(Duration::from_millis(300));
    let detail = job(server, id);
    assert_eq!(detail["job_status"], wanted, "{detail}");
    detail
}

#[test]
fn the_pool_is_a_core_infrastructure_of_the_facade_identity_with_one_vm_per_slot() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = TestServer::start_with(batch_settings(dir.path(), 2));
    let pool = pool_of(&server);
    let radl = server
        .get(&format!("/infrastructures/{pool}/radl"))
        .auth(BATCH_IM)
        .send()
        .expect(200)
        .text();
    assert!(
        radl.contains("deploy batch-worker") || radl.contains("batch-worker"),
        "{radl}"
    );
    wait_vm(&server, &pool, 0, &["configured"]);
    wait_vm(&server, &pool, 1, &["configured"]);
    server
        .get(&format!("/infrastructures/{pool}/vms/2/state"))
        .auth(BATCH_IM)
        .send()
        .expect(404);
    // Another IM user neither lists nor reads it.
    assert!(!list(&server, "alice").contains(&pool));
    assert_ne!(
        server
            .get(&format!("/infrastructures/{pool}/state"))
            .user("alice")
            .send()
            .status,
        200
    );
}

#[test]
fn added_vms_run_more_jobs_and_a_stopped_or_removed_vm_evicts_its_job() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = TestServer::start_with(batch_settings(dir.path(), 1));
    let pool = pool_of(&server);
    wait_vm(&server, &pool, 0, &["running", "configured"]);
    let marker = dir.path().join("go");
    let (first, _) = submit(&server, "", &blocker(&marker));
    let (second, _) = submit(&server, "", &blocker(&marker));
    wait_status(&server, &first, "running", Duration::from_secs(10));
    still(&server, &second, "idle");

    // One more VM: one more slot.
    server
        .post(&format!("/infrastructures/{pool}"))
        .auth(BATCH_IM)
        .radl(WORKER)
        .send()
        .expect(200);
    let running = wait_status(&server, &second, "running", Duration::from_secs(10));
    assert_eq!(running["job_run_count"], 1);
    let pid = run_pid(dir.path(), &second);

    // Stopping that VM evicts its job, whose process is killed.
    server
        .put(&format!("/infrastructures/{pool}/vms/1/stop"))
        .auth(BATCH_IM)
        .send()
        .expect(200);
    let evicted = wait_status(&server, &second, "idle", Duration::from_secs(10));
    assert_eq!(evicted["previous_job_status"], "running", "{evicted}");
    wait_gone(pid);
    still(&server, &second, "idle");
    let history = server
        .get(&format!("/jobs/{second}/events"))
        .auth(&super::imc::basic("batch", "s3cret"))
        .send()
        .expect(200)
        .json();
    let evictions: Vec<&Value> = history["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["type"] == "JobEvicted")
        .collect();
    assert_eq!(evictions.len(), 1, "{history}");
    let reason = evictions[0]["data"]["reason"].as_str().unwrap_or("");
    assert!(
        reason.contains(&format!("vm-{pool}-1")) && reason.contains("stopped"),
        "{reason}"
    );
    assert_eq!(job(&server, &first)["job_status"], "running");

    // Started again, the VM is a slot again and the job runs again.
    server
        .put(&format!("/infrastructures/{pool}/vms/1/start"))
        .auth(BATCH_IM)
        .send()
        .expect(200);
    let again = wait_status(&server, &second, "running", Duration::from_secs(10));
    assert_eq!(again["job_run_count"], 2);
    let pid = run_pid(dir.path(), &second);

    // Removing the VM evicts it too.
    server
        .delete(&format!("/infrastructures/{pool}/vms/1"))
        .auth(BATCH_IM)
        .send()
        .expect(200);
    wait_status(&server, &second, "idle", Duration::from_secs(10));
    wait_gone(pid);

    // The first job's slot is untouched; once it ends the second runs there.
    std::fs::write(&marker, "").expect("marker");
    wait_status(&server, &first, "completed", Duration::from_secs(10));
    let done = wait_status(&server, &second, "completed", Duration::from_secs(10));
    assert_eq!(done["job_run_count"], 3);
    assert_eq!(done["exit_status"], 0);
}

#[test]
fn in_open_mode_jobs_run_and_the_pool_belongs_to_batch_with_an_empty_password() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut settings = batch_settings(dir.path(), 1);
    if let Some(batch) = settings.facades.batch.as_mut() {
        batch.user = None;
        batch.password = None;
        batch.no_auth = true;
    }
    let server = TestServer::start_with(settings);
    let bundle = super::batch::tgz(&[("run.sh", "echo open\n")]);
    let (content_type, body) =
        super::batch::multipart(&[("job-name", b"j"), ("job-bundle", &bundle)]);
    let answer = server
        .post("/jobs")
        .header("Content-Type", &content_type)
        .body(body)
        .send()
        .expect(200)
        .json();
    let id = answer["job_id"].as_str().expect("a job id");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let detail = server.get(&format!("/jobs/{id}")).send().expect(200).json();
        if detail["job_status"] == "completed" {
            break;
        }
        assert!(Instant::now() < deadline, "{detail}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let open_owner = "id = im; type = InfrastructureManager; username = batch; password = ''\\nid = dummy; type = Dummy";
    let listed = server
        .get("/infrastructures")
        .auth(open_owner)
        .accept("application/json")
        .send()
        .expect(200)
        .json();
    assert_eq!(
        listed["uri-list"].as_array().map(Vec::len),
        Some(1),
        "{listed}"
    );
}
