//! The Batch facade's Docker executor against the real engine: a job runs
//! inside a Docker VM's container (made by the Docker connector, as a pool VM
//! is), with its arguments, a minimal environment, its exit code, stdout and
//! stderr, its `output/` copied back, and signals to its whole process group.
//!
//! Needs `infralog-test/debian:bookworm` (`.ci/docker-test-image`). Every
//! container is labelled with the run's id and removed by that label.

// Only some of the connector tests' helpers are needed here.
#[allow(dead_code)]
mod docker_support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use docker_support::*;
use infralog_actors::connectors::CloudConnector;
use infralog_actors::exec::docker::{DockerExecutors, CONTAINER_ROOT};
use infralog_actors::exec::{JobSignal, RunSpec};
use infralog_events::domain::InfId;

const ONE_NODE: &str = "network priv ()\nsystem node ( memory.size = 512m and \
    disk.0.image.url = 'docker://infralog-test/debian:bookworm' and \
    net_interface.0.connection = 'priv' )";

/// A container made by the connector, as a pool VM's.
async fn vm(cleanup: &Cleanup) -> String {
    let connector = connector(cleanup);
    connector
        .launch(request(InfId::random(), 0, ONE_NODE), &credentials())
        .await
        .expect("a Docker VM")
        .cloud_vm_id
}

/// A sandbox whose bundle holds `script` as `run.sh`.
fn sandbox(script: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let bundle = dir.path().join("bundle");
    fs::create_dir_all(&bundle).expect("bundle");
    fs::write(bundle.join("run.sh"), script).expect("run.sh");
    fs::set_permissions(bundle.join("run.sh"), fs::Permissions::from_mode(0o755)).expect("chmod");
    dir
}

fn spec(dir: &Path, arguments: &str, has_input: bool) -> RunSpec {
    RunSpec {
        sandbox: dir.to_path_buf(),
        arguments: arguments.into(),
        has_input,
    }
}

/// The state letter of `pid` in the container, `None` when it is gone.
async fn state_in(container: &str, pid: i32) -> Option<char> {
    let docker = docker().await;
    let (code, text) = exec(
        &docker,
        container,
        &["/bin/sh", "-c", &format!("cat /proc/{pid}/stat")],
    )
    .await;
    if code != 0 {
        return None;
    }
    let state = text.rsplit_once(')')?.1.trim_start().chars().next()?;
    (state != 'Z').then_some(state)
}

async fn wait_state(container: &str, pid: i32, wanted: Option<char>) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let state = state_in(container, pid).await;
        if state == wanted {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{pid} is {state:?}, not {wanted:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_job_runs_inside_the_container_with_its_artifacts_back_on_the_server() {
    let cleanup = Cleanup::new();
    let container = vm(&cleanup).await;
    let executors = DockerExecutors::new().expect("a runtime");
    let executor = executors.executor("", &container);
    let dir = sandbox(
        "echo \"args:$*\"; cat /etc/hostname; env | sort > \"$HOME/env\"; \
         cp \"$MODACLOUDS_BATCH_INPUT\" \"$MODACLOUDS_BATCH_OUTPUT/copy\"; \
         mkdir \"$MODACLOUDS_BATCH_OUTPUT/sub\"; echo out > \"$MODACLOUDS_BATCH_OUTPUT/sub/r.txt\"; \
         ln -s /etc/passwd \"$MODACLOUDS_BATCH_OUTPUT/link\"; echo err >&2; exit 3\n",
    );
    fs::create_dir_all(dir.path().join("input")).expect("input dir");
    fs::write(dir.path().join("input/input"), "the input\n").expect("input");
    // What an earlier run left is not kept.
    fs::create_dir_all(dir.path().join("output")).expect("output dir");
    fs::write(dir.path().join("output/stale"), "old").expect("stale");

    let started = executor
        .start(&spec(dir.path(), "a 'b c'", true))
        .expect("started in the container");
    let exit = started.exit.await.expect("an exit");
    assert_eq!((exit.code, exit.by_signal), (3, false));
    let stdout = fs::read_to_string(dir.path().join("stdout")).expect("stdout");
    let mut lines = stdout.lines();
    assert_eq!(lines.next(), Some("args:a b c"));
    // It ran in the container: its host name is the VM's.
    assert_eq!(lines.next(), Some("vnode-0"));
    assert_eq!(
        fs::read_to_string(dir.path().join("stderr")).expect("stderr"),
        "err\n"
    );
    assert_eq!(
        fs::read_to_string(dir.path().join("output/sub/r.txt")).expect("output back"),
        "out\n"
    );
    assert_eq!(
        fs::read_to_string(dir.path().join("output/copy")).expect("input given"),
        "the input\n"
    );
    assert!(!dir.path().join("output/stale").exists());
    // A link made in the container is not copied back.
    assert!(fs::symlink_metadata(dir.path().join("output/link")).is_err());
    // A minimal environment: nothing of this process's (the server's).
    let docker = docker().await;
    let job = dir.path().file_name().expect("a name").to_string_lossy();
    let (_, env) = exec(
        &docker,
        &container,
        &["cat", &format!("{CONTAINER_ROOT}/{job}/scratch/env")],
    )
    .await;
    assert!(env.contains("LANG=C"), "{env}");
    assert!(!env.contains("CARGO"), "{env}");
}

#[tokio::test]
async fn signals_reach_the_jobs_group_in_the_container_and_survivors_are_found() {
    let cleanup = Cleanup::new();
    let container = vm(&cleanup).await;
    let executors = DockerExecutors::new().expect("a runtime");
    let executor = executors.executor("", &container);
    let dir = sandbox("sleep 30 & wait\n");
    let started = executor
        .start(&spec(dir.path(), "", false))
        .expect("started");
    let run = started.run;
    wait_state(&container, run.pid, Some('S')).await;

    executor.signal(&run, JobSignal::Stop).expect("stop");
    wait_state(&container, run.pid, Some('T')).await;
    executor
        .signal(&run, JobSignal::Continue)
        .expect("continue");
    wait_state(&container, run.pid, Some('S')).await;
    executor.signal(&run, JobSignal::Kill).expect("kill");
    let exit = started.exit.await.expect("an exit");
    assert_eq!((exit.code, exit.by_signal), (9, true));
    // The whole group died: no sleep is left in the container.
    let docker = docker().await;
    let (_, left) = exec(
        &docker,
        &container,
        &[
            "/bin/sh",
            "-c",
            "for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/cmdline; echo; done",
        ],
    )
    .await;
    assert!(!left.lines().any(|l| l.trim() == "sleep 30"), "{left}");
    // Signalling a run that is gone is no error.
    executor
        .signal(&run, JobSignal::Kill)
        .expect("a gone run is no error");

    // A run left behind (as by a crash) is found by its pid file and killed;
    // a pid whose start time differs is not touched.
    let dir = sandbox("sleep 30\n");
    let started = executor
        .start(&spec(dir.path(), "", false))
        .expect("started");
    let stranger = infralog_events::domain::batch::RunRecord {
        start_time: started.run.start_time + 1,
        ..started.run
    };
    assert!(!executors.executor("", &container).kill_survivors(&stranger));
    assert!(executors
        .executor("", &container)
        .kill_unrecorded(dir.path()));
    let exit = started.exit.await.expect("an exit");
    assert!(exit.by_signal, "{exit:?}");
}
