//! The MODAClouds Batch facade's aggregates: the queue (stream `batch-queue`,
//! one writer, which numbers jobs gaplessly from 1) and each job (stream
//! `batch-job-<uuid>`), their events and their folds.
//!
//! A job's status follows HTCondor's names. Times are not in the events: the read
//! model takes them from the envelopes' recorded times, so a fold stays pure.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::ids::InfId;

/// What happened to the queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum QueueEvent {
    /// The slot pool's core infrastructure was chosen; it is created (once)
    /// after this is recorded, so a restart finishes the creation, never repeats it.
    PoolCreated {
        /// The pool's core infrastructure.
        inf_id: InfId,
    },
    /// A job got its number: one more than the jobs queued before it, so numbers
    /// are gapless from 1 (the stream's version also counts `PoolCreated`).
    JobQueued {
        /// The job.
        job: Uuid,
        /// Its number (HTCondor's cluster id, the API's `backend_id`).
        cluster_id: u64,
    },
}

impl QueueEvent {
    /// The event's stable type name.
    pub fn event_type(&self) -> &'static str {
        match self {
            QueueEvent::PoolCreated { .. } => "PoolCreated",
            QueueEvent::JobQueued { .. } => "JobQueued",
        }
    }
}

/// The queue as its single writer sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueState {
    /// The stream's version.
    pub version: u64,
    /// The pool's core infrastructure, once created.
    pub pool: Option<InfId>,
    /// Jobs numbered so far (the last cluster id given).
    pub jobs: u64,
}

/// Folds one queue event.
pub fn evolve_queue(mut state: QueueState, event: &QueueEvent) -> QueueState {
    state.version += 1;
    match event {
        QueueEvent::PoolCreated { inf_id } => state.pool = Some(*inf_id),
        QueueEvent::JobQueued { cluster_id, .. } => state.jobs = state.jobs.max(*cluster_id),
    }
    state
}

/// What a client submitted, as recorded once its files are durable.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobSubmission {
    /// `job-name`.
    pub name: String,
    /// `job-arguments`, split by the shell when the job runs.
    pub arguments: String,
    /// SHA-256 (hex) of the uploaded bundle.
    pub bundle_sha256: String,
    /// SHA-256 (hex) of the uploaded input, when one was given.
    pub input_sha256: Option<String>,
    /// Where to POST the job's end.
    pub notify_url: Option<String>,
    /// The job's number.
    pub cluster_id: u64,
}

/// One run of a job's process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRecord {
    /// The process id of the run's shell, also its process group id.
    pub pid: i32,
    /// Its start time in clock ticks after boot (`/proc/<pid>/stat` field 22), so
    /// a reused pid is never mistaken for it.
    pub start_time: u64,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitRecord {
    /// The exit code (when it exited), or the signal number (when killed by one).
    pub code: i32,
    /// Whether `code` is a signal.
    pub by_signal: bool,
    /// User CPU time of the run and the children it waited for, in milliseconds.
    pub user_cpu_ms: u64,
    /// The highest resident set size seen in its process group, in KiB.
    pub max_rss_kib: u64,
}

/// What happened to a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum JobEvent {
    /// Submitted: its bundle and input are durable and numbered.
    JobSubmitted(Box<JobSubmission>),
    /// A run began on a slot.
    JobStarted {
        /// The slot.
        slot_vm: String,
        /// Runs so far, this one included.
        run_count: u32,
        /// The process.
        run: RunRecord,
    },
    /// The run ended by itself (any code or signal).
    JobExited(ExitRecord),
    /// A client held it.
    JobHeld,
    /// A client released it; it waits for a slot again.
    JobReleased,
    /// A client stopped its process.
    JobSuspended,
    /// A client let its process go on.
    JobContinued,
    /// A client removed it.
    JobRemoved,
    /// Its run was lost (its slot went away, or the server restarted); it waits
    /// for a slot again.
    JobEvicted {
        /// Why.
        reason: String,
    },
    /// Its sandbox could not be prepared.
    JobSubmissionFailed {
        /// Why.
        reason: String,
    },
    /// One try at notifying its end.
    NotificationAttempted {
        /// 1, 2, 3.
        attempt: u32,
        /// `delivered`, or what failed.
        outcome: String,
    },
}

impl JobEvent {
    /// The event's stable type name.
    pub fn event_type(&self) -> &'static str {
        match self {
            JobEvent::JobSubmitted(_) => "JobSubmitted",
            JobEvent::JobStarted { .. } => "JobStarted",
            JobEvent::JobExited(_) => "JobExited",
            JobEvent::JobHeld => "JobHeld",
            JobEvent::JobReleased => "JobReleased",
            JobEvent::JobSuspended => "JobSuspended",
            JobEvent::JobContinued => "JobContinued",
            JobEvent::JobRemoved => "JobRemoved",
            JobEvent::JobEvicted { .. } => "JobEvicted",
            JobEvent::JobSubmissionFailed { .. } => "JobSubmissionFailed",
            JobEvent::NotificationAttempted { .. } => "NotificationAttempted",
        }
    }
}

/// A job's status, with HTCondor's names and numbers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum JobStatus {
    /// Not submitted (HTCondor's 0): only a job's `previous_job_status` shows it.
    #[default]
    Unexpanded,
    /// Waiting for a slot (1).
    Idle,
    /// Its process runs (2).
    Running,
    /// Removed by a client (3).
    Removed,
    /// Its process ended (4).
    Completed,
    /// Held by a client (5).
    Held,
    /// Its sandbox could not be prepared (6).
    SubmissionError,
    /// Its process is stopped (7).
    Suspended,
}

impl JobStatus {
    /// The API's name.
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Unexpanded => "unexpanded",
            JobStatus::Idle => "idle",
            JobStatus::Running => "running",
            JobStatus::Removed => "removed",
            JobStatus::Completed => "completed",
            JobStatus::Held => "held",
            JobStatus::SubmissionError => "submission_error",
            JobStatus::Suspended => "suspended",
        }
    }

    /// No action changes it any more.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobStatus::Removed | JobStatus::Completed | JobStatus::SubmissionError
        )
    }

    /// A process of the job may be alive.
    pub fn has_process(self) -> bool {
        matches!(self, JobStatus::Running | JobStatus::Suspended)
    }
}

/// A notification try as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationTry {
    /// 1, 2, 3.
    pub attempt: u32,
    /// `delivered`, or what failed.
    pub outcome: String,
}

/// A job as its events fold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobState {
    /// The stream's version.
    pub version: u64,
    /// What was submitted (`None` before `JobSubmitted`).
    pub submission: Option<JobSubmission>,
    /// Its status.
    pub status: JobStatus,
    /// Its status before the last change.
    pub previous: JobStatus,
    /// Runs begun so far.
    pub run_count: u32,
    /// The slot of the last run.
    pub slot: Option<String>,
    /// The process of the last run.
    pub run: Option<RunRecord>,
    /// How the last run ended by itself.
    pub exit: Option<ExitRecord>,
    /// Notification tries.
    pub notifications: Vec<NotificationTry>,
}

impl JobState {
    fn become_(&mut self, status: JobStatus) {
        self.previous = self.status;
        self.status = status;
    }
}

/// Folds one job event.
pub fn evolve_job(mut state: JobState, event: &JobEvent) -> JobState {
    state.version += 1;
    match event {
        JobEvent::JobSubmitted(submission) => {
            state.submission = Some((**submission).clone());
            state.become_(JobStatus::Idle);
        }
        JobEvent::JobStarted {
            slot_vm,
            run_count,
            run,
        } => {
            state.run_count = *run_count;
            state.slot = Some(slot_vm.clone());
            state.run = Some(*run);
            state.exit = None;
            state.become_(JobStatus::Running);
        }
        JobEvent::JobExited(exit) => {
            state.exit = Some(*exit);
            state.become_(JobStatus::Completed);
        }
        JobEvent::JobHeld => state.become_(JobStatus::Held),
        JobEvent::JobReleased | JobEvent::JobEvicted { .. } => state.become_(JobStatus::Idle),
        JobEvent::JobSuspended => state.become_(JobStatus::Suspended),
        JobEvent::JobContinued => state.become_(JobStatus::Running),
        JobEvent::JobRemoved => state.become_(JobStatus::Removed),
        JobEvent::JobSubmissionFailed { .. } => state.become_(JobStatus::SubmissionError),
        JobEvent::NotificationAttempted { attempt, outcome } => {
            state.notifications.push(NotificationTry {
                attempt: *attempt,
                outcome: outcome.clone(),
            });
        }
    }
    state
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fold(events: &[JobEvent]) -> JobState {
        events.iter().fold(JobState::default(), evolve_job)
    }

    fn submitted() -> JobEvent {
        JobEvent::JobSubmitted(Box::new(JobSubmission {
            name: "j".into(),
            cluster_id: 1,
            ..JobSubmission::default()
        }))
    }

    #[test]
    fn a_job_runs_and_completes_with_its_previous_status_running() {
        let run = RunRecord {
            pid: 42,
            start_time: 7,
        };
        let state = fold(&[
            submitted(),
            JobEvent::JobStarted {
                slot_vm: "local-0".into(),
                run_count: 1,
                run,
            },
            JobEvent::JobExited(ExitRecord {
                code: 3,
                ..ExitRecord::default()
            }),
        ]);
        assert_eq!(state.status, JobStatus::Completed);
        assert_eq!(state.previous, JobStatus::Running);
        assert_eq!(state.run, Some(run));
        assert_eq!(state.exit.map(|e| e.code), Some(3));
        assert_eq!(state.version, 3);
    }

    #[test]
    fn a_fresh_job_was_unexpanded_and_evictions_make_it_idle() {
        let state = fold(&[submitted()]);
        assert_eq!(
            (state.status, state.previous),
            (JobStatus::Idle, JobStatus::Unexpanded)
        );
        let state = fold(&[
            submitted(),
            JobEvent::JobStarted {
                slot_vm: "s".into(),
                run_count: 1,
                run: RunRecord {
                    pid: 1,
                    start_time: 1,
                },
            },
            JobEvent::JobSuspended,
            JobEvent::JobEvicted {
                reason: "restart".into(),
            },
        ]);
        assert_eq!(
            (state.status, state.previous),
            (JobStatus::Idle, JobStatus::Suspended)
        );
        assert_eq!(state.run_count, 1);
    }

    #[test]
    fn queue_versions_number_jobs() {
        let state = [1u64, 2]
            .iter()
            .map(|&n| QueueEvent::JobQueued {
                job: Uuid::new_v4(),
                cluster_id: n,
            })
            .fold(QueueState::default(), |s, e| evolve_queue(s, &e));
        assert_eq!(state.version, 2);
        assert_eq!(state.jobs, 2);
    }

    #[test]
    fn the_pool_takes_a_version_but_no_number() {
        let inf_id = InfId::random();
        let state = [
            QueueEvent::PoolCreated { inf_id },
            QueueEvent::JobQueued {
                job: Uuid::new_v4(),
                cluster_id: 1,
            },
        ]
        .iter()
        .fold(QueueState::default(), evolve_queue);
        assert_eq!(
            (state.version, state.jobs, state.pool),
            (2, 1, Some(inf_id))
        );
    }
}
