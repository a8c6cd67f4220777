//! The MLBench facade's aggregates: admission (stream `mlbench-admission`, one
//! writer, which numbers runs gaplessly from 1) and each run (stream
//! `mlbench-run-<n>`), their events and their folds.
//!
//! Times are not in the events: the read model takes `created_at` and
//! `finished_at` from the envelopes' recorded times, so a fold stays pure.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::ids::InfId;

/// The most output lines a run keeps per stream (the API shows the last 1,000).
pub const KEPT_OUTPUT_LINES: usize = 1000;

/// What happened to admission.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AdmissionEvent {
    /// A run got its number: the admission stream's version after this event.
    RunRequested {
        /// The run's number (its API id).
        run: u64,
        /// Its name, as given.
        name: String,
        /// Its workers.
        num_workers: u32,
    },
}

impl AdmissionEvent {
    /// The event's stable type name.
    pub fn event_type(&self) -> &'static str {
        match self {
            AdmissionEvent::RunRequested { .. } => "RunRequested",
        }
    }
}

/// Admission as its single writer folds it: the last number given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AdmissionState {
    /// The stream's version: the last run number given.
    pub version: u64,
}

/// Folds one admission event.
pub fn evolve_admission(mut state: AdmissionState, _event: &AdmissionEvent) -> AdmissionState {
    state.version += 1;
    state
}

/// What a client asked for (the fields of `POST /api/runs/`, checked).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRequest {
    /// The run's number.
    pub id: u64,
    /// Its name (a DNS label, as given).
    pub name: String,
    /// Workers (pods).
    pub num_workers: u32,
    /// CPUs per worker, in thousandths.
    pub num_cpus_milli: u32,
    /// `max_bandwidth`, recorded only.
    pub max_bandwidth: u64,
    /// `image_name`: an official image, or `custom_image`.
    pub image: String,
    /// `custom_image_name`, for a custom image.
    pub custom_image_name: Option<String>,
    /// The command template every rank runs: `custom_image_command` for a custom
    /// image, empty for an official one (which runs the built-in worker).
    pub command: String,
    /// `mpi`, `nccl`, `gloo` or the custom backend's name.
    pub backend: String,
    /// Whether the backend was `custom_backend`.
    pub custom_backend: bool,
    /// Run on every node even with `mpi`.
    pub run_all_nodes: bool,
    /// ` --gpu` is appended to the command.
    pub gpu_enabled: bool,
    /// ` --light` is appended to the command.
    pub light_target: bool,
    /// The run's `job_id` (a UUID4).
    pub job_id: Uuid,
}

/// stdout or stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum OutputStream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// What happened to a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RunEvent {
    /// A client asked for it; it waits for admission.
    RunRequested(Box<RunRequest>),
    /// Admission let it start.
    RunAdmitted,
    /// Its core infrastructure is being created. Recorded before the creation,
    /// with the id, so a restart finds (and destroys) it.
    RunLaunched {
        /// The core infrastructure whose VMs are its pods.
        inf_id: InfId,
    },
    /// One rank's process began.
    RunProcessStarted {
        /// The rank (also the VM id of its pod).
        rank: u32,
        /// Its pid, also its process group id.
        pid: i32,
        /// Its `/proc` start time (clock ticks after boot).
        start_time: u64,
    },
    /// Lines the processes wrote (at most one event per stream per second).
    RunOutput {
        /// Which stream.
        stream: OutputStream,
        /// The lines, without their line breaks.
        lines: Vec<String>,
    },
    /// One rank's process ended.
    RunProcessExited {
        /// The rank.
        rank: u32,
        /// Its exit code (128 + the signal when a signal ended it).
        code: i32,
    },
    /// It ended well.
    RunFinished,
    /// It ended badly.
    RunFailed {
        /// Why.
        reason: String,
    },
    /// A client deleted it.
    RunDeleted,
}

impl RunEvent {
    /// The event's stable type name.
    pub fn event_type(&self) -> &'static str {
        match self {
            RunEvent::RunRequested(_) => "RunRequested",
            RunEvent::RunAdmitted => "RunAdmitted",
            RunEvent::RunLaunched { .. } => "RunLaunched",
            RunEvent::RunProcessStarted { .. } => "RunProcessStarted",
            RunEvent::RunOutput { .. } => "RunOutput",
            RunEvent::RunProcessExited { .. } => "RunProcessExited",
            RunEvent::RunFinished => "RunFinished",
            RunEvent::RunFailed { .. } => "RunFailed",
            RunEvent::RunDeleted => "RunDeleted",
        }
    }
}

/// A run's state, with upstream's names.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum RunStatus {
    /// Not requested (an empty stream).
    #[default]
    Unknown,
    /// Waiting for admission.
    Initialized,
    /// Admitted: its infrastructure and processes run.
    Started,
    /// Ended well.
    Finished,
    /// Ended badly.
    Failed,
    /// Deleted (404 from now on).
    Deleted,
}

impl RunStatus {
    /// The API's name.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Unknown => "unknown",
            RunStatus::Initialized => "initialized",
            RunStatus::Started => "started",
            RunStatus::Finished => "finished",
            RunStatus::Failed => "failed",
            RunStatus::Deleted => "deleted",
        }
    }

    /// Whether it counts against admission (the seed's "active run").
    pub fn is_active(self) -> bool {
        matches!(self, RunStatus::Initialized | RunStatus::Started)
    }

    /// Whether nothing more happens to it but a deletion.
    pub fn is_ended(self) -> bool {
        matches!(
            self,
            RunStatus::Finished | RunStatus::Failed | RunStatus::Deleted
        )
    }
}

/// One rank's process as recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RankProcess {
    /// Its pid (and process group).
    pub pid: i32,
    /// Its `/proc` start time.
    pub start_time: u64,
    /// Its exit code, once it ended.
    pub exit: Option<i32>,
}

/// A run as its events fold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunState {
    /// The stream's version.
    pub version: u64,
    /// What was asked (`None` before `RunRequested`).
    pub request: Option<RunRequest>,
    /// Its status.
    pub status: RunStatus,
    /// Its core infrastructure, once launched.
    pub inf_id: Option<InfId>,
    /// Processes by rank.
    pub processes: BTreeMap<u32, RankProcess>,
    /// The last lines of standard output.
    pub stdout: VecDeque<String>,
    /// The last lines of standard error.
    pub stderr: VecDeque<String>,
    /// Why it failed.
    pub failure: Option<String>,
}

impl RunState {
    /// Whether every started process ended with code 0 and at least one ran.
    pub fn all_exited_well(&self) -> bool {
        !self.processes.is_empty() && self.processes.values().all(|p| p.exit == Some(0))
    }

    /// Processes not known to have ended.
    pub fn live_processes(&self) -> impl Iterator<Item = (u32, &RankProcess)> {
        self.processes
            .iter()
            .filter(|(_, p)| p.exit.is_none())
            .map(|(rank, p)| (*rank, p))
    }
}

fn keep_last(lines: &mut VecDeque<String>, new: &[String]) {
    lines.extend(new.iter().cloned());
    while lines.len() > KEPT_OUTPUT_LINES {
        lines.pop_front();
    }
}

/// Folds one run event. Once deleted, a run stays deleted; once ended, its
/// status stays (later events only add output and exits).
pub fn evolve_run(mut state: RunState, event: &RunEvent) -> RunState {
    state.version += 1;
    let settled = state.status.is_ended();
    match event {
        RunEvent::RunRequested(request) => {
            state.request = Some((**request).clone());
            state.status = RunStatus::Initialized;
        }
        RunEvent::RunAdmitted if !settled => state.status = RunStatus::Started,
        RunEvent::RunAdmitted => {}
        RunEvent::RunLaunched { inf_id } => state.inf_id = Some(*inf_id),
        RunEvent::RunProcessStarted {
            rank,
            pid,
            start_time,
        } => {
            state.processes.insert(
                *rank,
                RankProcess {
                    pid: *pid,
                    start_time: *start_time,
                    exit: None,
                },
            );
        }
        RunEvent::RunOutput { stream, lines } => match stream {
            OutputStream::Stdout => keep_last(&mut state.stdout, lines),
            OutputStream::Stderr => keep_last(&mut state.stderr, lines),
        },
        RunEvent::RunProcessExited { rank, code } => {
            if let Some(process) = state.processes.get_mut(rank) {
                process.exit = Some(*code);
            }
        }
        RunEvent::RunFinished if !settled => state.status = RunStatus::Finished,
        RunEvent::RunFailed { reason } if !settled => {
            state.status = RunStatus::Failed;
            state.failure = Some(reason.clone());
        }
        RunEvent::RunFinished | RunEvent::RunFailed { .. } => {}
        RunEvent::RunDeleted => state.status = RunStatus::Deleted,
    }
    state
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fold(events: &[RunEvent]) -> RunState {
        events.iter().fold(RunState::default(), evolve_run)
    }

    fn requested() -> RunEvent {
        RunEvent::RunRequested(Box::new(RunRequest {
            id: 1,
            name: "r1".into(),
            num_workers: 2,
            ..RunRequest::default()
        }))
    }

    #[test]
    fn a_run_starts_runs_and_finishes() {
        let state = fold(&[
            requested(),
            RunEvent::RunAdmitted,
            RunEvent::RunProcessStarted {
                rank: 0,
                pid: 10,
                start_time: 5,
            },
            RunEvent::RunProcessExited { rank: 0, code: 0 },
            RunEvent::RunFinished,
        ]);
        assert_eq!(state.status, RunStatus::Finished);
        assert!(state.all_exited_well());
        assert_eq!(state.version, 5);
    }

    #[test]
    fn an_ended_run_keeps_its_status_and_a_deleted_run_stays_deleted() {
        let state = fold(&[
            requested(),
            RunEvent::RunAdmitted,
            RunEvent::RunFailed {
                reason: "boom".into(),
            },
            RunEvent::RunFinished,
        ]);
        assert_eq!(state.status, RunStatus::Failed);
        assert_eq!(state.failure.as_deref(), Some("boom"));
        let state = fold(&[requested(), RunEvent::RunDeleted, RunEvent::RunAdmitted]);
        assert_eq!(state.status, RunStatus::Deleted);
    }

    #[test]
    fn output_keeps_the_last_thousand_lines_per_stream() {
        let lines: Vec<String> = (0..1500).map(|n| n.to_string()).collect();
        let state = fold(&[
            requested(),
            RunEvent::RunOutput {
                stream: OutputStream::Stdout,
                lines,
            },
            RunEvent::RunOutput {
                stream: OutputStream::Stderr,
                lines: vec!["e".into()],
            },
        ]);
        assert_eq!(state.stdout.len(), KEPT_OUTPUT_LINES);
        assert_eq!(state.stdout.front().map(String::as_str), Some("500"));
        assert_eq!(state.stderr, ["e"]);
    }
}
