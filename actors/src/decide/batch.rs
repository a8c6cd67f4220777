//! The Batch facade's job decisions: which client actions and which process
//! outcomes a job's status allows, and the events they record. Pure.

use infralog_events::domain::batch::{ExitRecord, JobEvent, JobState, JobStatus, RunRecord};

/// A client's action on a job (`PUT /jobs/<id>/<action>`, `DELETE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobAction {
    /// Stop it for now (its process is ended).
    Hold,
    /// Let a held job wait for a slot again.
    Release,
    /// Stop its process (SIGSTOP).
    Suspend,
    /// Let a stopped process go on (SIGCONT).
    Continue,
    /// End it for good.
    Remove,
}

impl JobAction {
    /// The action a path segment names, if any.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "hold" => JobAction::Hold,
            "release" => JobAction::Release,
            "suspend" => JobAction::Suspend,
            "continue" => JobAction::Continue,
            "remove" => JobAction::Remove,
            _ => return None,
        })
    }

    /// The path segment's name.
    pub fn as_str(self) -> &'static str {
        match self {
            JobAction::Hold => "hold",
            JobAction::Release => "release",
            JobAction::Suspend => "suspend",
            JobAction::Continue => "continue",
            JobAction::Remove => "remove",
        }
    }
}

/// What a job is told to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobCommand {
    /// A client's action.
    Act(JobAction),
    /// A slot is free and this process was started on it.
    Start {
        /// The slot.
        slot: String,
        /// The process.
        run: RunRecord,
    },
    /// Its process ended by itself.
    Exit(ExitRecord),
    /// Its run is lost.
    Evict {
        /// Why.
        reason: String,
    },
    /// One try at notifying its end was made.
    Notified {
        /// Which try (1, 2, 3).
        attempt: u32,
        /// `delivered`, or what failed.
        outcome: String,
    },
}

/// Tries at notifying a job's end (the first and two retries).
pub const NOTIFICATION_TRIES: u32 = 3;

/// The outcome recorded for a notification that was delivered.
pub const DELIVERED: &str = "delivered";

/// The notification try due for `state`, if any: only a `completed` job with a
/// URL is notified, until one try is delivered or all were made.
pub fn notification_due(state: &JobState) -> Option<u32> {
    state.submission.as_ref()?.notify_url.as_ref()?;
    if state.status != JobStatus::Completed
        || state.notifications.iter().any(|n| n.outcome == DELIVERED)
    {
        return None;
    }
    let made = state.notifications.len() as u32;
    (made < NOTIFICATION_TRIES).then_some(made + 1)
}

/// Why a job refused a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobError {
    /// The job was never submitted.
    #[error("the job does not exist")]
    Unknown,
    /// The action does not apply in the job's status.
    #[error("cannot {action} while {status}")]
    NotAllowed {
        /// The action's name.
        action: &'static str,
        /// The status's name.
        status: &'static str,
    },
}

/// The events `command` records on `state`.
pub fn decide(state: &JobState, command: &JobCommand) -> Result<Vec<JobEvent>, JobError> {
    if state.submission.is_none() {
        return Err(JobError::Unknown);
    }
    let status = state.status;
    let refuse = |action: &'static str| JobError::NotAllowed {
        action,
        status: status.as_str(),
    };
    use JobStatus::*;
    let event = match command {
        JobCommand::Act(action) => {
            let allowed = match action {
                JobAction::Hold => matches!(status, Idle | Running | Suspended),
                JobAction::Release => status == Held,
                JobAction::Suspend => status == Running,
                JobAction::Continue => status == Suspended,
                JobAction::Remove => !status.is_terminal(),
            };
            if !allowed {
                return Err(refuse(action.as_str()));
            }
            match action {
                JobAction::Hold => JobEvent::JobHeld,
                JobAction::Release => JobEvent::JobReleased,
                JobAction::Suspend => JobEvent::JobSuspended,
                JobAction::Continue => JobEvent::JobContinued,
                JobAction::Remove => JobEvent::JobRemoved,
            }
        }
        JobCommand::Start { slot, run } => {
            if status != Idle {
                return Err(refuse("start"));
            }
            JobEvent::JobStarted {
                slot_vm: slot.clone(),
                run_count: state.run_count + 1,
                run: *run,
            }
        }
        // A process that ends after a hold or a removal ended because of it:
        // nothing more is recorded.
        JobCommand::Exit(exit) if status.has_process() => JobEvent::JobExited(*exit),
        JobCommand::Exit(_) => return Ok(Vec::new()),
        JobCommand::Evict { reason } if status.has_process() => JobEvent::JobEvicted {
            reason: reason.clone(),
        },
        JobCommand::Evict { .. } => return Ok(Vec::new()),
        // A try out of turn (a duplicate after a restart) is not recorded twice.
        JobCommand::Notified { attempt, outcome } => {
            if notification_due(state) != Some(*attempt) {
                return Ok(Vec::new());
            }
            JobEvent::NotificationAttempted {
                attempt: *attempt,
                outcome: outcome.clone(),
            }
        }
    };
    Ok(vec![event])
}

#[cfg(test)]
mod tests {
    use super::*;
    use infralog_events::domain::batch::{evolve_job, JobSubmission};

    fn given(events: &[JobEvent]) -> JobState {
        let mut all = vec![JobEvent::JobSubmitted(Box::new(JobSubmission {
            name: "j".into(),
            cluster_id: 1,
            ..JobSubmission::default()
        }))];
        all.extend_from_slice(events);
        all.iter().fold(JobState::default(), evolve_job)
    }

    fn started() -> JobEvent {
        JobEvent::JobStarted {
            slot_vm: "local-0".into(),
            run_count: 1,
            run: RunRecord {
                pid: 10,
                start_time: 20,
            },
        }
    }

    #[test]
    fn an_idle_job_starts_with_its_run_counted() {
        let then = decide(
            &given(&[]),
            &JobCommand::Start {
                slot: "local-0".into(),
                run: RunRecord {
                    pid: 10,
                    start_time: 20,
                },
            },
        );
        assert_eq!(then, Ok(vec![started()]));
    }

    #[test]
    fn suspend_and_continue_follow_the_table() {
        let running = given(&[started()]);
        assert_eq!(
            decide(&running, &JobCommand::Act(JobAction::Suspend)),
            Ok(vec![JobEvent::JobSuspended])
        );
        assert_eq!(
            decide(&running, &JobCommand::Act(JobAction::Continue)),
            Err(JobError::NotAllowed {
                action: "continue",
                status: "running"
            })
        );
        let suspended = given(&[started(), JobEvent::JobSuspended]);
        assert_eq!(
            decide(&suspended, &JobCommand::Act(JobAction::Continue)),
            Ok(vec![JobEvent::JobContinued])
        );
    }

    #[test]
    fn terminal_jobs_refuse_every_action() {
        let removed = given(&[JobEvent::JobRemoved]);
        for action in [
            JobAction::Hold,
            JobAction::Release,
            JobAction::Suspend,
            JobAction::Continue,
            JobAction::Remove,
        ] {
            assert!(
                decide(&removed, &JobCommand::Act(action)).is_err(),
                "{action:?}"
            );
        }
        let completed = given(&[started(), JobEvent::JobExited(ExitRecord::default())]);
        assert_eq!(
            decide(&completed, &JobCommand::Act(JobAction::Hold)),
            Err(JobError::NotAllowed {
                action: "hold",
                status: "completed"
            })
        );
    }

    #[test]
    fn hold_release_and_remove_follow_the_table() {
        let idle = given(&[]);
        assert_eq!(
            decide(&idle, &JobCommand::Act(JobAction::Hold)),
            Ok(vec![JobEvent::JobHeld])
        );
        assert!(decide(&idle, &JobCommand::Act(JobAction::Release)).is_err());
        let held = given(&[JobEvent::JobHeld]);
        assert_eq!(
            decide(&held, &JobCommand::Act(JobAction::Release)),
            Ok(vec![JobEvent::JobReleased])
        );
        assert_eq!(
            decide(&held, &JobCommand::Act(JobAction::Remove)),
            Ok(vec![JobEvent::JobRemoved])
        );
    }

    #[test]
    fn an_exit_after_a_hold_records_nothing_and_a_run_exit_completes() {
        let exit = JobCommand::Exit(ExitRecord {
            code: 15,
            by_signal: true,
            ..ExitRecord::default()
        });
        assert_eq!(
            decide(&given(&[started(), JobEvent::JobHeld]), &exit),
            Ok(vec![])
        );
        assert_eq!(
            decide(&given(&[started(), JobEvent::JobSuspended]), &exit).map(|e| e.len()),
            Ok(1)
        );
    }

    #[test]
    fn evictions_apply_to_runs_only_and_starts_need_an_idle_job() {
        let evict = JobCommand::Evict {
            reason: "restart".into(),
        };
        assert_eq!(decide(&given(&[]), &evict), Ok(vec![]));
        assert_eq!(
            decide(&given(&[started()]), &evict),
            Ok(vec![JobEvent::JobEvicted {
                reason: "restart".into()
            }])
        );
        let start = JobCommand::Start {
            slot: "s".into(),
            run: RunRecord {
                pid: 1,
                start_time: 1,
            },
        };
        assert!(decide(&given(&[JobEvent::JobHeld]), &start).is_err());
        assert_eq!(decide(&JobState::default(), &start), Err(JobError::Unknown));
    }

    fn completed_with_url() -> JobState {
        let mut all = vec![JobEvent::JobSubmitted(Box::new(JobSubmission {
            name: "j".into(),
            cluster_id: 1,
            notify_url: Some("http://127.0.0.1:9/n".into()),
            ..JobSubmission::default()
        }))];
        all.push(started());
        all.push(JobEvent::JobExited(ExitRecord::default()));
        all.iter().fold(JobState::default(), evolve_job)
    }

    fn tried(state: &JobState, attempt: u32, outcome: &str) -> JobState {
        let events = decide(
            state,
            &JobCommand::Notified {
                attempt,
                outcome: outcome.into(),
            },
        )
        .expect("a try is accepted");
        events.iter().fold(state.clone(), evolve_job)
    }

    #[test]
    fn notifications_are_due_for_completed_jobs_with_a_url_only() {
        assert_eq!(notification_due(&given(&[started()])), None);
        assert_eq!(
            notification_due(&given(&[
                started(),
                JobEvent::JobExited(ExitRecord::default())
            ])),
            None,
            "no URL"
        );
        assert_eq!(notification_due(&completed_with_url()), Some(1));
    }

    #[test]
    fn failed_tries_are_retried_up_to_three_and_a_delivery_ends_them() {
        let state = tried(&completed_with_url(), 1, "HTTP 500");
        assert_eq!(notification_due(&state), Some(2));
        let state = tried(&state, 2, "connection refused");
        assert_eq!(notification_due(&state), Some(3));
        let state = tried(&state, 3, "HTTP 500");
        assert_eq!(state.notifications.len(), 3);
        assert_eq!(notification_due(&state), None, "three tries at most");
        let delivered = tried(&completed_with_url(), 1, DELIVERED);
        assert_eq!(notification_due(&delivered), None);
    }

    #[test]
    fn a_try_out_of_turn_records_nothing() {
        let state = completed_with_url();
        let then = decide(
            &state,
            &JobCommand::Notified {
                attempt: 2,
                outcome: DELIVERED.into(),
            },
        );
        assert_eq!(then, Ok(vec![]));
        let then = decide(
            &given(&[started()]),
            &JobCommand::Notified {
                attempt: 1,
                outcome: DELIVERED.into(),
            },
        );
        assert_eq!(then, Ok(vec![]), "not completed");
    }
}
