//! Running facade jobs as processes: the [`Executor`] trait and the local
//! executor ([`local::LocalExecutor`]), which runs each job as a process group
//! of this machine in a sandbox directory (the Dummy cloud's VMs).
//!
//! Every run's pid and `/proc` start time are recorded, so a later server can
//! tell a survivor of an earlier run from a process that reuses its pid.

use std::path::PathBuf;

use infralog_events::domain::batch::{ExitRecord, RunRecord};
use tokio::sync::oneshot;

pub mod docker;
pub mod local;
mod procfs;

/// What a run needs: the sandbox and the arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunSpec {
    /// `<data-dir>/batch/<job>`: `bundle/`, `input/input`, `output/`, `scratch/`,
    /// `stdout`, `stderr`.
    pub sandbox: PathBuf,
    /// The job's arguments, split by the shell.
    pub arguments: String,
    /// Whether `input/input` was uploaded.
    pub has_input: bool,
}

/// A run just begun.
#[derive(Debug)]
pub struct Started {
    /// Its process.
    pub run: RunRecord,
    /// Answers once the process has ended and been reaped.
    pub exit: oneshot::Receiver<ExitRecord>,
}

/// A signal for a run's whole process group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobSignal {
    /// SIGSTOP.
    Stop,
    /// SIGCONT.
    Continue,
    /// SIGTERM.
    Terminate,
    /// SIGKILL.
    Kill,
}

/// Why a run could not be started or signalled.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// Preparing the sandbox or spawning failed.
    #[error("cannot start the job in {sandbox}: {source}")]
    Spawn {
        /// The sandbox.
        sandbox: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Signalling the process group failed.
    #[error("cannot signal process group {pid}: {source}")]
    Signal {
        /// The group.
        pid: i32,
        /// The cause.
        source: std::io::Error,
    },
}

/// Runs jobs. Implementations: [`local::LocalExecutor`]; a container executor
/// comes with the Docker cloud's slots.
pub trait Executor: Send + Sync {
    /// Cleans `output/` and `scratch/`, empties `stdout` and `stderr`, and starts
    /// `./run.sh <arguments>` in `bundle/` in a process group of its own.
    fn start(&self, spec: &RunSpec) -> Result<Started, ExecError>;

    /// Sends `signal` to the run's process group, if the run is still that
    /// process (same pid and start time); a run that is gone is no error.
    fn signal(&self, run: &RunRecord, signal: JobSignal) -> Result<(), ExecError>;

    /// Kills what is left of a run of an earlier server (its group, when its pid
    /// still has its start time, and any process left in the group); answers
    /// whether something was killed.
    fn kill_survivors(&self, run: &RunRecord) -> bool;

    /// Kills the run whose pid file a sandbox holds, if it survives: a run
    /// started just before a crash, whose `JobStarted` was never recorded.
    fn kill_unrecorded(&self, sandbox: &std::path::Path) -> bool;
}

/// Which executor runs the jobs of each slot of a pool. A slot is named by its
/// VM's stream (`vm-<infrastructure>-<n>`); VMs of the Dummy cloud run jobs as
/// local processes, VMs of the Docker cloud inside their container.
pub trait SlotExecutors: Send + Sync {
    /// The executor of slot `slot` (also asked, after a restart, for a slot a
    /// recorded run used, so that only that executor looks for its survivors).
    fn for_slot(&self, slot: &str) -> std::sync::Arc<dyn Executor>;
}

/// Every slot runs its jobs with the same executor.
pub struct SameExecutor(pub std::sync::Arc<dyn Executor>);

impl SlotExecutors for SameExecutor {
    fn for_slot(&self, _slot: &str) -> std::sync::Arc<dyn Executor> {
        std::sync::Arc::clone(&self.0)
    }
}
