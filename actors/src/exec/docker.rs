//! The Docker executor: a job on a VM of the Docker cloud runs inside the VM's
//! container (`docker exec` through the Engine API), so uploaded code is
//! isolated from the server.
//!
//! The job's sandbox stays on the server (`<data-dir>/batch/<job>`, where the
//! artifact routes read it); a run copies `bundle/` (and `input/input`) into the
//! container's `/var/lib/infralog-batch/<job>/`, runs there, appends its stdout
//! and stderr to the sandbox's files as they come, and copies `output/` back
//! when it ends.
//!
//! In the container the run is `setsid -w /bin/sh -c …`: a session and process
//! group of its own, whose leader writes `<pid> <start time>` (its `/proc` start
//! time) to `run.pid` there before it runs `./run.sh`. Signals and the kill of
//! survivors go to that group, by an exec of `kill`, only while the leader still
//! has that start time. The pid and start time are the container's view, which
//! the local executor never reads: a sandbox's `run.slot` names the executor.
//!
//! The [`Executor`] trait is synchronous; every Engine call runs on a runtime
//! thread of this executor's own, and the caller waits for it (a start takes a
//! few Engine calls, a signal one).
//!
//! What differs from a local run: the peak memory and CPU time are not measured
//! (0), and a run that exits with a code above 128 is read as killed by signal
//! code − 128, as the shell reports both the same way.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use bollard::exec::{CreateExecOptions, StartExecResults};
use bollard::query_parameters::{DownloadFromContainerOptions, UploadToContainerOptions};
use bollard::Docker;
use futures_util::StreamExt;
use infralog_events::domain::batch::{ExitRecord, RunRecord};
use tokio::runtime::Handle;
use tokio::sync::oneshot;

use super::{ExecError, Executor, JobSignal, RunSpec, Started};
use crate::connectors::docker::host::DockerHost;

/// Where jobs' sandboxes live inside a container.
pub const CONTAINER_ROOT: &str = "/var/lib/infralog-batch";

/// The `PATH` runs get.
const RUN_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// How long a request to the engine may take.
const REQUEST_TIMEOUT_SECONDS: u64 = 60;

/// How long a start waits for the run's pid file.
const PID_WAIT: Duration = Duration::from_secs(10);

/// The longest wait for one blocking call.
const CALL_TIMEOUT: Duration = Duration::from_secs(90);

/// The run, in the container: the group leader records itself, then runs the
/// job's command (`$1`, split by the shell as `sh -c` would). It starts in the
/// background, so it is no group leader and `setsid` need not fork: `$!` is the
/// group, and `wait` gives its status (128 + N when killed by signal N).
const WRAPPER: &str = r#"setsid /bin/sh -c 'echo "$$ $(cut -d" " -f22 /proc/$$/stat)" > ../run.pid.tmp && mv ../run.pid.tmp ../run.pid && eval "$1"' sh "$1" & wait $!"#;

/// Makes [`DockerExecutor`]s; they share a runtime thread and one client per
/// engine.
#[derive(Clone)]
pub struct DockerExecutors {
    runtime: Handle,
    clients: Arc<Mutex<HashMap<String, Docker>>>,
}

impl std::fmt::Debug for DockerExecutors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DockerExecutors")
    }
}

impl DockerExecutors {
    /// Starts the runtime thread.
    pub fn new() -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let handle = runtime.handle().clone();
        std::thread::Builder::new()
            .name("batch-docker".into())
            .spawn(move || runtime.block_on(std::future::pending::<()>()))?;
        Ok(DockerExecutors {
            runtime: handle,
            clients: Arc::new(Mutex::new(HashMap::new())),
        })
    }

    /// The executor of the container `container` of the engine at `host` (a
    /// credential's `host`; empty: the local socket).
    pub fn executor(&self, host: &str, container: &str) -> Arc<dyn Executor> {
        Arc::new(DockerExecutor {
            runtime: self.runtime.clone(),
            client: self.client(host),
            container: container.to_string(),
        })
    }

    fn client(&self, host: &str) -> Result<Docker, String> {
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(client) = clients.get(host) {
            return Ok(client.clone());
        }
        let parsed = DockerHost::parse(host).map_err(|e| e.to_string())?;
        let client = match &parsed {
            DockerHost::Unix(path) => Docker::connect_with_unix(
                path,
                REQUEST_TIMEOUT_SECONDS,
                bollard::API_DEFAULT_VERSION,
            ),
            DockerHost::Tcp { .. } => Docker::connect_with_http(
                &parsed.url(),
                REQUEST_TIMEOUT_SECONDS,
                bollard::API_DEFAULT_VERSION,
            ),
        }
        .map_err(|e| format!("cannot reach Docker at {parsed}: {e}"))?;
        clients.insert(host.to_string(), client.clone());
        Ok(client)
    }
}

/// Runs jobs inside one container.
pub struct DockerExecutor {
    runtime: Handle,
    client: Result<Docker, String>,
    container: String,
}

fn spawn_error(sandbox: &Path, text: impl Into<String>) -> ExecError {
    ExecError::Spawn {
        sandbox: sandbox.to_path_buf(),
        source: std::io::Error::other(text.into()),
    }
}

/// The job's directory in the container.
fn container_dir(sandbox: &Path) -> String {
    let job = sandbox
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!("{CONTAINER_ROOT}/{job}")
}

/// `bundle/` (and `input/input`) of the sandbox as a tar.
fn sandbox_tar(sandbox: &Path, has_input: bool) -> std::io::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    builder.append_dir_all("bundle", sandbox.join("bundle"))?;
    if has_input {
        builder.append_path_with_name(sandbox.join("input").join("input"), "input/input")?;
    }
    builder.into_inner()
}

/// Replaces the sandbox's `output/` with the tar of the container's `output`
/// directory (whose entries start with `output/`).
fn unpack_output(sandbox: &Path, tar_bytes: &[u8]) -> std::io::Result<()> {
    let output = sandbox.join("output");
    if output.exists() {
        fs::remove_dir_all(&output)?;
    }
    fs::create_dir_all(&output)?;
    let mut archive = tar::Archive::new(tar_bytes);
    for entry in archive.entries()? {
        let mut entry = entry?;
        // Files and directories only: a link made in the container must not
        // name a file of the server. `unpack_in` refuses paths that leave the
        // directory.
        if entry.header().entry_type().is_file() || entry.header().entry_type().is_dir() {
            entry.unpack_in(sandbox)?;
        }
    }
    Ok(())
}

/// Runs `command` in the container and answers its exit code and output.
async fn exec(
    docker: &Docker,
    container: &str,
    command: Vec<String>,
) -> Result<(i64, String), String> {
    let created = docker
        .create_exec(
            container,
            CreateExecOptions {
                cmd: Some(command),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                ..Default::default()
            },
        )
        .await
        .map_err(|e| e.to_string())?;
    let mut text = String::new();
    if let StartExecResults::Attached { mut output, .. } = docker
        .start_exec(&created.id, None)
        .await
        .map_err(|e| e.to_string())?
    {
        while let Some(chunk) = output.next().await {
            text.push_str(&chunk.map_err(|e| e.to_string())?.to_string());
        }
    }
    let code = docker
        .inspect_exec(&created.id)
        .await
        .map_err(|e| e.to_string())?
        .exit_code
        .unwrap_or(-1);
    Ok((code, text))
}

fn sh(script: String) -> Vec<String> {
    vec!["/bin/sh".into(), "-c".into(), script]
}

/// Signals `run`'s group in the container if its leader still has its start
/// time; answers whether the signal was sent.
async fn signal_group(
    docker: &Docker,
    container: &str,
    run: &RunRecord,
    signal: &str,
) -> Result<bool, String> {
    let (pid, start) = (run.pid, run.start_time);
    let script = format!(
        "[ \"$(cut -d' ' -f22 /proc/{pid}/stat 2>/dev/null)\" = \"{start}\" ] && kill -{signal} -{pid}"
    );
    exec(docker, container, sh(script))
        .await
        .map(|(code, _)| code == 0)
}

impl DockerExecutor {
    /// Runs `work` on the runtime thread and waits for its answer.
    fn block<T: Send + 'static>(
        &self,
        work: impl std::future::Future<Output = T> + Send + 'static,
    ) -> Option<T> {
        let (answer, answered) = mpsc::channel();
        self.runtime.spawn(async move {
            let _ = answer.send(work.await);
        });
        answered.recv_timeout(CALL_TIMEOUT).ok()
    }

    fn docker(&self) -> Result<Docker, String> {
        self.client.clone()
    }

    /// Prepares the container's directory and starts the run; answers the exec's
    /// id and the run's group.
    async fn begin(
        docker: Docker,
        container: String,
        spec: RunSpec,
        bundle: Vec<u8>,
    ) -> Result<(String, RunRecord, StartExecResults), String> {
        let dir = container_dir(&spec.sandbox);
        let (code, text) = exec(
            &docker,
            &container,
            sh(format!(
                "rm -rf '{dir}' && mkdir -p '{dir}/output' '{dir}/scratch'"
            )),
        )
        .await?;
        if code != 0 {
            return Err(format!("cannot prepare {dir} in the container: {text}"));
        }
        docker
            .upload_to_container(
                &container,
                Some(UploadToContainerOptions {
                    path: dir.clone(),
                    ..Default::default()
                }),
                bollard::body_full(bundle.into()),
            )
            .await
            .map_err(|e| format!("cannot copy the bundle into the container: {e}"))?;
        let mut env = vec![
            format!("PATH={RUN_PATH}"),
            format!("HOME={dir}/scratch"),
            "LANG=C".to_string(),
            format!("MODACLOUDS_BATCH_OUTPUT={dir}/output"),
            format!("MODACLOUDS_BATCH_SCRATCH_DIRECTORY={dir}/scratch"),
        ];
        if spec.has_input {
            env.push(format!("MODACLOUDS_BATCH_INPUT={dir}/input/input"));
        }
        let created = docker
            .create_exec(
                &container,
                CreateExecOptions {
                    cmd: Some(vec![
                        "/bin/sh".to_string(),
                        "-c".to_string(),
                        WRAPPER.to_string(),
                        "sh".to_string(),
                        format!("./run.sh {}", spec.arguments),
                    ]),
                    env: Some(env),
                    working_dir: Some(format!("{dir}/bundle")),
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| format!("cannot create the run in the container: {e}"))?;
        let started = docker
            .start_exec(&created.id, None)
            .await
            .map_err(|e| format!("cannot start the run in the container: {e}"))?;
        let deadline = tokio::time::Instant::now() + PID_WAIT;
        let run = loop {
            let (code, text) =
                exec(&docker, &container, sh(format!("cat '{dir}/run.pid'"))).await?;
            let parsed = text.trim().split_once(' ').and_then(|(pid, start)| {
                Some(RunRecord {
                    pid: pid.parse().ok()?,
                    start_time: start.parse().ok()?,
                })
            });
            match parsed {
                Some(run) if code == 0 => break run,
                _ if tokio::time::Instant::now() > deadline => {
                    return Err("the run never recorded its process".into())
                }
                _ => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        };
        Ok((created.id, run, started))
    }
}

/// Follows a run to its end: its output into the sandbox's files, its exit code,
/// and its `output/` copied back.
async fn follow(
    docker: Docker,
    container: String,
    sandbox: PathBuf,
    exec_id: String,
    started: StartExecResults,
    answer: oneshot::Sender<ExitRecord>,
) {
    let append = |name: &str| OpenOptions::new().append(true).open(sandbox.join(name));
    if let (StartExecResults::Attached { mut output, .. }, Ok(mut stdout), Ok(mut stderr)) =
        (started, append("stdout"), append("stderr"))
    {
        while let Some(Ok(chunk)) = output.next().await {
            let written = match chunk {
                bollard::container::LogOutput::StdErr { message } => stderr.write_all(&message),
                bollard::container::LogOutput::StdOut { message }
                | bollard::container::LogOutput::Console { message } => stdout.write_all(&message),
                bollard::container::LogOutput::StdIn { .. } => Ok(()),
            };
            if let Err(error) = written {
                tracing::warn!(%error, "a Docker run's output cannot be kept");
            }
        }
    }
    let code = match docker.inspect_exec(&exec_id).await {
        Ok(inspected) => inspected.exit_code.unwrap_or(-1),
        Err(error) => {
            tracing::warn!(%error, "a Docker run's exit cannot be read");
            -1
        }
    };
    let dir = container_dir(&sandbox);
    let mut tar_bytes = Vec::new();
    let mut download = docker.download_from_container(
        &container,
        Some(DownloadFromContainerOptions {
            path: format!("{dir}/output"),
        }),
    );
    let mut copied = true;
    while let Some(chunk) = download.next().await {
        match chunk {
            Ok(bytes) => tar_bytes.extend_from_slice(&bytes),
            Err(error) => {
                tracing::warn!(%error, "a Docker run's output/ cannot be copied back");
                copied = false;
                break;
            }
        }
    }
    if copied {
        if let Err(error) = unpack_output(&sandbox, &tar_bytes) {
            tracing::warn!(%error, "a Docker run's output/ cannot be unpacked");
        }
    }
    let code = i32::try_from(code).unwrap_or(-1);
    let exit = if code > 128 && code < 128 + 65 {
        ExitRecord {
            code: code - 128,
            by_signal: true,
            ..ExitRecord::default()
        }
    } else {
        ExitRecord {
            code,
            ..ExitRecord::default()
        }
    };
    let _ = answer.send(exit);
}

impl Executor for DockerExecutor {
    fn start(&self, spec: &RunSpec) -> Result<Started, ExecError> {
        let sandbox = spec.sandbox.clone();
        let docker = self.docker().map_err(|e| spawn_error(&sandbox, e))?;
        // Each run's artifacts hold that run's output only.
        for dir in ["output", "scratch"] {
            let path = sandbox.join(dir);
            if path.exists() {
                fs::remove_dir_all(&path).map_err(|e| spawn_error(&sandbox, e.to_string()))?;
            }
            fs::create_dir_all(&path).map_err(|e| spawn_error(&sandbox, e.to_string()))?;
        }
        for name in ["stdout", "stderr"] {
            File::create(sandbox.join(name)).map_err(|e| spawn_error(&sandbox, e.to_string()))?;
        }
        let bundle = sandbox_tar(&sandbox, spec.has_input)
            .map_err(|e| spawn_error(&sandbox, e.to_string()))?;
        let (container, job) = (self.container.clone(), spec.clone());
        let begun = self
            .block(Self::begin(docker.clone(), container.clone(), job, bundle))
            .ok_or_else(|| spawn_error(&sandbox, "the engine did not answer in time"))?
            .map_err(|e| spawn_error(&sandbox, e))?;
        let (exec_id, run, started) = begun;
        let (answer, exit) = oneshot::channel();
        self.runtime
            .spawn(follow(docker, container, sandbox, exec_id, started, answer));
        Ok(Started { run, exit })
    }

    fn signal(&self, run: &RunRecord, signal: JobSignal) -> Result<(), ExecError> {
        let name = match signal {
            JobSignal::Stop => "STOP",
            JobSignal::Continue => "CONT",
            JobSignal::Terminate => "TERM",
            JobSignal::Kill => "KILL",
        };
        let failed = |text: String| ExecError::Signal {
            pid: run.pid,
            source: std::io::Error::other(text),
        };
        let docker = self.docker().map_err(failed)?;
        let (container, run) = (self.container.clone(), *run);
        // A group that is gone is no error, as for local runs.
        self.block(async move { signal_group(&docker, &container, &run, name).await })
            .ok_or_else(|| failed("the engine did not answer in time".into()))?
            .map(|_| ())
            .map_err(failed)
    }

    fn kill_survivors(&self, run: &RunRecord) -> bool {
        let Ok(docker) = self.docker() else {
            return false;
        };
        let (container, run) = (self.container.clone(), *run);
        // A container that is gone took its processes with it.
        self.block(async move { signal_group(&docker, &container, &run, "KILL").await })
            .and_then(Result::ok)
            .unwrap_or(false)
    }

    fn kill_unrecorded(&self, sandbox: &Path) -> bool {
        let Ok(docker) = self.docker() else {
            return false;
        };
        let (container, dir) = (self.container.clone(), container_dir(sandbox));
        self.block(async move {
            let (code, text) =
                exec(&docker, &container, sh(format!("cat '{dir}/run.pid'"))).await?;
            let run = text.trim().split_once(' ').and_then(|(pid, start)| {
                Some(RunRecord {
                    pid: pid.parse().ok()?,
                    start_time: start.parse().ok()?,
                })
            });
            match run {
                Some(run) if code == 0 => signal_group(&docker, &container, &run, "KILL").await,
                _ => Ok(false),
            }
        })
        .and_then(Result::ok)
        .unwrap_or(false)
    }
}
