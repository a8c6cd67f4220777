//! The Batch facade with a pool on the Docker cloud: jobs run inside the pool
//! VMs' containers, with their artifacts back on the server and signals to
//! their process group there.

use std::time::Duration;

use super::{exec, Labelled, IMAGE};
use crate::facades::batch::{batch_settings, submit, wait_status};
use crate::facades::imc::basic;
use crate::harness::*;

fn auth() -> String {
    basic("batch", "s3cret")
}

#[test]
fn jobs_on_a_docker_pool_run_inside_its_containers() {
    let labelled = Labelled::new("batch-pool");
    let dir = tempfile::tempdir().expect("temp dir");
    let mut settings = batch_settings(dir.path(), 1);
    let (key, value) = labelled.label.split_once('=').expect("a KEY=VALUE label");
    settings.docker_labels = vec![(key.to_owned(), value.to_owned())];
    if let Some(batch) = settings.facades.batch.as_mut() {
        batch.pool_cloud = "id = docker; type = Docker; host = unix:///var/run/docker.sock".into();
        batch.pool_image = Some(format!("docker://{IMAGE}"));
    }
    let server = TestServer::start_with(settings);

    let (id, _) = submit(
        &server,
        "a b",
        "echo \"args:$*\"; cat /etc/hostname; echo out > \"$MODACLOUDS_BATCH_OUTPUT/r.txt\"; echo err >&2; exit 3\n",
    );
    let done = wait_status(&server, &id, "completed", Duration::from_secs(60));
    assert_eq!(
        (done["exit_status"].clone(), done["exit_by_signal"].clone()),
        (3.into(), false.into())
    );
    let artifact = |name: &str| {
        server
            .get(&format!("/jobs/{id}/artifacts/{name}"))
            .auth(&auth())
            .send()
            .expect(200)
    };
    // The host name is the pool VM's: it ran in the container.
    assert_eq!(artifact("stdout").text(), "args:a b\nvnode-0\n");
    assert_eq!(artifact("stderr").text(), "err\n");
    let output = artifact("output");
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(output.body.as_slice()));
    let names: Vec<String> = archive
        .entries()
        .expect("a tar")
        .map(|e| {
            e.expect("an entry")
                .path()
                .expect("a path")
                .display()
                .to_string()
        })
        .collect();
    assert_eq!(names, ["r.txt"]);
    let containers = labelled.ids("container", &[]);
    assert_eq!(containers.len(), 1, "one pool VM: {containers:?}");

    // Suspend and continue reach the process in the container.
    let (sleeper, _) = submit(&server, "", "sleep 30\n");
    wait_status(&server, &sleeper, "running", Duration::from_secs(30));
    let history = server
        .get(&format!("/jobs/{sleeper}/events"))
        .auth(&auth())
        .send()
        .expect(200)
        .json();
    let pid = history["events"][1]["data"]["run"]["pid"]
        .as_i64()
        .expect("the run's pid");
    let state = || exec(&containers[0], &format!("cut -d' ' -f3 /proc/{pid}/stat")).1;
    server
        .put(&format!("/jobs/{sleeper}/suspend"))
        .auth(&auth())
        .send()
        .expect(200);
    assert_eq!(state().trim(), "T");
    server
        .put(&format!("/jobs/{sleeper}/continue"))
        .auth(&auth())
        .send()
        .expect(200);
    assert_eq!(state().trim(), "S");
    server
        .delete(&format!("/jobs/{sleeper}"))
        .auth(&auth())
        .send()
        .expect(200);
    wait_status(&server, &sleeper, "removed", Duration::from_secs(5));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !state().trim().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the job survived its removal"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
