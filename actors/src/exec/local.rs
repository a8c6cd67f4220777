//! The local executor: each run is `/bin/sh -c './run.sh <arguments>'` in the
//! job's `bundle/`, in a process group of its own, with a minimal environment.
//!
//! A run's exit is waited for on a thread of its own: it waits without reaping
//! (`WNOWAIT`) so the CPU time of the finished shell can still be read from
//! `/proc`, samples the group's peak memory meanwhile, then reaps.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use infralog_events::domain::batch::{ExitRecord, RunRecord};
use rustix::process::{kill_process_group, waitid, Pid, Signal, WaitId, WaitIdOptions};
use tokio::sync::oneshot;

use super::{procfs, ExecError, Executor, JobSignal, RunSpec, Started};

/// How often a run's group is sampled for its peak memory while it runs.
const SAMPLE_EVERY: Duration = Duration::from_millis(50);

/// The `PATH` runs get: the system's directories, nothing of the server's.
const RUN_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// The pid file a sandbox holds for its current run: `<pid> <start time>`.
const PID_FILE: &str = "run.pid";

/// Runs jobs as local processes.
#[derive(Debug, Clone, Default)]
pub struct LocalExecutor;

fn spawn_error(sandbox: &Path) -> impl FnOnce(std::io::Error) -> ExecError + '_ {
    move |source| ExecError::Spawn {
        sandbox: sandbox.to_path_buf(),
        source,
    }
}

/// Empties a directory by making it again.
fn fresh_dir(path: &Path) -> std::io::Result<()> {
    match fs::remove_dir_all(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    fs::create_dir_all(path)
}

fn the_pid(run: &RunRecord) -> Option<Pid> {
    Pid::from_raw(run.pid)
}

/// Whether `run` is still the process it was (same start time).
fn is_alive(run: &RunRecord) -> bool {
    procfs::start_time(run.pid) == Some(run.start_time)
}

impl LocalExecutor {
    fn spawn(&self, spec: &RunSpec) -> std::io::Result<Child> {
        let sandbox = &spec.sandbox;
        let output = sandbox.join("output");
        let scratch = sandbox.join("scratch");
        fresh_dir(&output)?;
        fresh_dir(&scratch)?;
        // Each run's artifacts hold that run's output only.
        let stdout = File::create(sandbox.join("stdout"))?;
        let stderr = File::create(sandbox.join("stderr"))?;
        let mut command = Command::new("/bin/sh");
        command
            .arg("-c")
            .arg(format!("./run.sh {}", spec.arguments))
            .current_dir(sandbox.join("bundle"))
            // Uploaded code must never see the server's environment (its
            // credentials among it).
            .env_clear()
            .env("PATH", RUN_PATH)
            .env("HOME", &scratch)
            .env("LANG", "C")
            .env("MODACLOUDS_BATCH_OUTPUT", &output)
            .env("MODACLOUDS_BATCH_SCRATCH_DIRECTORY", &scratch)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            // Its own group, so signals reach every process the job forks.
            .process_group(0);
        if spec.has_input {
            command.env(
                "MODACLOUDS_BATCH_INPUT",
                sandbox.join("input").join("input"),
            );
        }
        command.spawn()
    }
}

/// Writes the pid file durably, so a crash before `JobStarted` is recorded still
/// leaves a trace of the run.
fn write_pid_file(sandbox: &Path, run: &RunRecord) -> std::io::Result<()> {
    let mut file = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(sandbox.join(PID_FILE))?;
    writeln!(file, "{} {}", run.pid, run.start_time)?;
    file.sync_all()
}

fn read_pid_file(sandbox: &Path) -> Option<RunRecord> {
    let text = fs::read_to_string(sandbox.join(PID_FILE)).ok()?;
    let (pid, start) = text.trim().split_once(' ')?;
    Some(RunRecord {
        pid: pid.parse().ok()?,
        start_time: start.parse().ok()?,
    })
}

/// Waits for the run's end (sampling its memory), reads its CPU time before it
/// is reaped, reaps it, and answers.
fn watch(mut child: Child, run: RunRecord, answer: oneshot::Sender<ExitRecord>) {
    let mut peak = 0;
    let options = WaitIdOptions::EXITED | WaitIdOptions::NOWAIT | WaitIdOptions::NOHANG;
    if let Some(pid) = the_pid(&run) {
        loop {
            peak = peak.max(procfs::peak_rss_kib(run.pid));
            match waitid(WaitId::Pid(pid), options) {
                Ok(Some(_)) | Err(_) => break,
                Ok(None) => std::thread::sleep(SAMPLE_EVERY),
            }
        }
    }
    let user_cpu_ms = procfs::user_cpu_ms(run.pid);
    let exit = match child.wait() {
        Ok(status) => match (status.code(), status.signal()) {
            (Some(code), _) => ExitRecord {
                code,
                by_signal: false,
                user_cpu_ms,
                max_rss_kib: peak,
            },
            (None, signal) => ExitRecord {
                code: signal.unwrap_or(0),
                by_signal: true,
                user_cpu_ms,
                max_rss_kib: peak,
            },
        },
        Err(error) => {
            tracing::warn!(%error, pid = run.pid, "a job's process cannot be reaped");
            ExitRecord {
                code: -1,
                by_signal: false,
                user_cpu_ms,
                max_rss_kib: peak,
            }
        }
    };
    // The job may have stopped listening (its actor was stopped): nothing to do.
    let _ = answer.send(exit);
}

fn kill_group(pgid: i32) -> bool {
    Pid::from_raw(pgid)
        .map(|pid| kill_process_group(pid, Signal::KILL).is_ok())
        .unwrap_or(false)
}

impl Executor for LocalExecutor {
    fn start(&self, spec: &RunSpec) -> Result<Started, ExecError> {
        let error = spawn_error(&spec.sandbox);
        let child = self.spawn(spec).map_err(spawn_error(&spec.sandbox))?;
        let pid = i32::try_from(child.id()).unwrap_or(i32::MAX);
        // Not reaped yet, so `/proc/<pid>` exists even if it exited already.
        let run = RunRecord {
            pid,
            start_time: procfs::start_time(pid).unwrap_or(0),
        };
        if let Err(source) = write_pid_file(&spec.sandbox, &run) {
            kill_group(pid);
            return Err(error(source));
        }
        let (answer, exit) = oneshot::channel();
        std::thread::Builder::new()
            .name(format!("batch-run-{pid}"))
            .spawn(move || watch(child, run, answer))
            .map_err(|source| {
                kill_group(pid);
                ExecError::Spawn {
                    sandbox: spec.sandbox.clone(),
                    source,
                }
            })?;
        Ok(Started { run, exit })
    }

    fn signal(&self, run: &RunRecord, signal: JobSignal) -> Result<(), ExecError> {
        let (Some(pid), true) = (the_pid(run), is_alive(run)) else {
            return Ok(());
        };
        let signal = match signal {
            JobSignal::Stop => Signal::STOP,
            JobSignal::Continue => Signal::CONT,
            JobSignal::Terminate => Signal::TERM,
            JobSignal::Kill => Signal::KILL,
        };
        match kill_process_group(pid, signal) {
            Ok(()) => Ok(()),
            // The group ended between the check and the signal.
            Err(rustix::io::Errno::SRCH) => Ok(()),
            Err(errno) => Err(ExecError::Signal {
                pid: run.pid,
                source: errno.into(),
            }),
        }
    }

    fn kill_survivors(&self, run: &RunRecord) -> bool {
        // Processes of the group that started no earlier than the run's shell
        // are the run's; a group id reused by a later process would have a later
        // leader, and that leader would be among them only if it is the run's.
        let mine = procfs::members(run.pid)
            .into_iter()
            .any(|(_, start)| start >= run.start_time);
        if is_alive(run) || mine {
            return kill_group(run.pid);
        }
        false
    }

    fn kill_unrecorded(&self, sandbox: &Path) -> bool {
        read_pid_file(sandbox)
            .map(|run| self.kill_survivors(&run))
            .unwrap_or(false)
    }
}

/// The sandbox of job `job` under `root` (`<data-dir>/batch`).
pub fn sandbox_of(root: &Path, job: &uuid::Uuid) -> PathBuf {
    root.join(job.hyphenated().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sandbox(script: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("temp dir");
        fs::create_dir_all(dir.path().join("bundle")).expect("bundle dir");
        fs::write(dir.path().join("bundle").join("run.sh"), script).expect("run.sh");
        let mut perms = fs::metadata(dir.path().join("bundle/run.sh"))
            .expect("meta")
            .permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
        fs::set_permissions(dir.path().join("bundle/run.sh"), perms).expect("chmod");
        dir
    }

    fn spec(dir: &tempfile::TempDir, arguments: &str) -> RunSpec {
        RunSpec {
            sandbox: dir.path().to_path_buf(),
            arguments: arguments.into(),
            has_input: false,
        }
    }

    #[tokio::test]
    async fn a_run_sees_its_arguments_and_a_minimal_environment_only() {
        let dir = sandbox("echo \"args:$*\"; env | sort; echo out > \"$MODACLOUDS_BATCH_OUTPUT/r.txt\"; echo err >&2; exit 3\n");
        let started = LocalExecutor.start(&spec(&dir, "a 'b c'")).expect("start");
        let exit = started.exit.await.expect("exit");
        assert_eq!((exit.code, exit.by_signal), (3, false));
        let stdout = fs::read_to_string(dir.path().join("stdout")).expect("stdout");
        assert!(stdout.starts_with("args:a b c\n"), "{stdout}");
        let names: Vec<&str> = stdout
            .lines()
            .skip(1)
            .filter_map(|l| l.split_once('=').map(|(n, _)| n))
            .collect();
        for name in &names {
            assert!(
                [
                    "PATH",
                    "HOME",
                    "LANG",
                    "MODACLOUDS_BATCH_OUTPUT",
                    "MODACLOUDS_BATCH_SCRATCH_DIRECTORY",
                    "PWD",
                    "SHLVL",
                    "_",
                    "OLDPWD"
                ]
                .contains(name),
                "unexpected variable {name}"
            );
        }
        assert_eq!(
            fs::read_to_string(dir.path().join("stderr")).expect("stderr"),
            "err\n"
        );
        assert_eq!(
            fs::read_to_string(dir.path().join("output/r.txt")).expect("output"),
            "out\n"
        );
    }

    #[tokio::test]
    async fn signals_reach_the_group_and_a_killed_run_reports_its_signal() {
        let dir = sandbox("sleep 30 & wait\n");
        let started = LocalExecutor.start(&spec(&dir, "")).expect("start");
        let run = started.run;
        std::thread::sleep(Duration::from_millis(200));
        let members = procfs::members(run.pid);
        assert!(members.len() >= 2, "the shell and its sleep: {members:?}");
        LocalExecutor
            .signal(&run, JobSignal::Kill)
            .expect("signal the group");
        let exit = started.exit.await.expect("exit");
        assert_eq!((exit.code, exit.by_signal), (9, true));
        std::thread::sleep(Duration::from_millis(100));
        assert!(procfs::members(run.pid).is_empty(), "the sleep died too");
    }

    #[test]
    fn survivors_of_a_recorded_run_are_killed_and_a_stranger_is_not() {
        let dir = sandbox("sleep 30\n");
        let started = LocalExecutor.start(&spec(&dir, "")).expect("start");
        let stranger = RunRecord {
            pid: started.run.pid,
            start_time: started.run.start_time + 1_000_000,
        };
        assert!(!is_alive(&stranger));
        assert!(LocalExecutor.kill_unrecorded(dir.path()));
        let exit = started.exit.blocking_recv().expect("exit");
        assert!(exit.by_signal);
    }
}
