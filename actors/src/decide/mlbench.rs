//! The MLBench facade's decisions: admission (which requests conflict, which
//! waiting runs start), a run's events for each command, and what each rank
//! runs. Pure.

use std::collections::BTreeMap;

use infralog_events::domain::ids::InfId;
use infralog_events::domain::mlbench::{OutputStream, RunEvent, RunRequest, RunState, RunStatus};

/// The line an official worker prints when it reaches its target; a run whose
/// standard output shows it is finished.
pub const GOAL_REACHED: &str = "Goal Reached!";

/// The reason recorded for runs a restart interrupted.
pub const INTERRUPTED: &str = "interrupted by restart";

/// The reason recorded for runs whose infrastructure was destroyed under them.
pub const INFRASTRUCTURE_LOST: &str = "the run's infrastructure was destroyed";

/// What a started run lost under it, as the facades' follower reads the core.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunLoss {
    /// Its infrastructure was destroyed (or evicted).
    Infrastructure,
    /// One of its pods (a VM of its infrastructure) was stopped, removed or
    /// failed: the ranks need every pod, so the run cannot go on.
    Pod {
        /// The VM's id in the infrastructure.
        vm: u32,
        /// The state it was seen in (`stopped`, `off`, `failed`, `deleting`,
        /// `removed`).
        state: String,
    },
}

impl RunLoss {
    /// The reason a run that suffered it records.
    pub fn reason(&self) -> String {
        match self {
            RunLoss::Infrastructure => INFRASTRUCTURE_LOST.into(),
            RunLoss::Pod { vm, state } => {
                format!("pod {vm} of the run's infrastructure is {state}")
            }
        }
    }
}

/// How runs are admitted (`--mlbench-admission`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AdmissionMode {
    /// One active run at a time (the seed's rule): any other request is a 409.
    #[default]
    Exclusive,
    /// Upstream's queue since 2019: smallest `num_workers` first, once the
    /// workers fit within the maximum.
    Queue,
}

impl AdmissionMode {
    /// The mode a flag value names.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "exclusive" => Some(AdmissionMode::Exclusive),
            "queue" => Some(AdmissionMode::Queue),
            _ => None,
        }
    }
}

/// A run admission counts: requested and not ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveRun {
    /// Its name.
    pub name: String,
    /// Its workers.
    pub num_workers: u32,
    /// Whether it was let start.
    pub admitted: bool,
}

/// Why admission refused a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdmissionError {
    /// An active run is in the way.
    #[error("{0}")]
    Conflict(String),
}

/// Whether a run named `name` may be requested now.
pub fn check_request(
    active: &BTreeMap<u64, ActiveRun>,
    mode: AdmissionMode,
    name: &str,
) -> Result<(), AdmissionError> {
    let same_name = active
        .values()
        .any(|run| run.name.eq_ignore_ascii_case(name));
    if (mode == AdmissionMode::Exclusive && !active.is_empty()) || same_name {
        return Err(AdmissionError::Conflict(
            "There is already an active run".into(),
        ));
    }
    Ok(())
}

/// The waiting runs to admit now, in order.
pub fn to_admit(
    active: &BTreeMap<u64, ActiveRun>,
    mode: AdmissionMode,
    max_workers: u32,
) -> Vec<u64> {
    let waiting = active.iter().filter(|(_, run)| !run.admitted);
    match mode {
        // Only one run is ever active; it starts at once.
        AdmissionMode::Exclusive => {
            if active.values().any(|run| run.admitted) {
                return Vec::new();
            }
            waiting.map(|(id, _)| *id).take(1).collect()
        }
        AdmissionMode::Queue => {
            let mut used: u32 = active
                .values()
                .filter(|run| run.admitted)
                .map(|run| run.num_workers)
                .sum();
            let mut candidates: Vec<(u32, u64)> =
                waiting.map(|(id, run)| (run.num_workers, *id)).collect();
            candidates.sort_unstable();
            let mut admitted = Vec::new();
            for (workers, id) in candidates {
                if used + workers > max_workers {
                    break;
                }
                used += workers;
                admitted.push(id);
            }
            admitted
        }
    }
}

/// What a run is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunCommand {
    /// Admission let it start; its infrastructure will be `inf_id`.
    Admit {
        /// The core infrastructure to create.
        inf_id: InfId,
    },
    /// A rank's process began.
    ProcessStarted {
        /// The rank.
        rank: u32,
        /// Its pid.
        pid: i32,
        /// Its `/proc` start time.
        start_time: u64,
    },
    /// The processes wrote lines.
    Output {
        /// Which stream.
        stream: OutputStream,
        /// The lines.
        lines: Vec<String>,
    },
    /// A rank's process ended.
    ProcessExited {
        /// The rank.
        rank: u32,
        /// Its code (128 + signal).
        code: i32,
    },
    /// Its infrastructure or a process could not be started.
    LaunchFailed {
        /// Why.
        reason: String,
    },
    /// The server restarted while it was started.
    Interrupt,
    /// Its infrastructure, or one of its pods, was lost under it (through the
    /// IM API or in the cloud).
    Lost(RunLoss),
    /// A client deleted it.
    Delete,
}

/// Why a run refused a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RunError {
    /// No such run (never requested, or deleted).
    #[error("Run not found")]
    Unknown,
}

/// The events `command` records on `state`.
pub fn decide(state: &RunState, command: &RunCommand) -> Result<Vec<RunEvent>, RunError> {
    if matches!(state.status, RunStatus::Unknown | RunStatus::Deleted) {
        return Err(RunError::Unknown);
    }
    let started = state.status == RunStatus::Started;
    let events = match command {
        RunCommand::Admit { inf_id } if state.status == RunStatus::Initialized => vec![
            RunEvent::RunAdmitted,
            RunEvent::RunLaunched { inf_id: *inf_id },
        ],
        RunCommand::Admit { .. } => Vec::new(),
        RunCommand::ProcessStarted {
            rank,
            pid,
            start_time,
        } => vec![RunEvent::RunProcessStarted {
            rank: *rank,
            pid: *pid,
            start_time: *start_time,
        }],
        RunCommand::Output { lines, .. } if lines.is_empty() => Vec::new(),
        RunCommand::Output { stream, lines } => {
            let mut events = vec![RunEvent::RunOutput {
                stream: *stream,
                lines: lines.clone(),
            }];
            let goal = *stream == OutputStream::Stdout
                && lines.iter().any(|line| line.contains(GOAL_REACHED));
            if goal && started {
                events.push(RunEvent::RunFinished);
            }
            events
        }
        RunCommand::ProcessExited { rank, code } => {
            let mut events = vec![RunEvent::RunProcessExited {
                rank: *rank,
                code: *code,
            }];
            if started && *code != 0 {
                events.push(RunEvent::RunFailed {
                    reason: format!("the worker of rank {rank} exited with code {code}"),
                });
            } else if started {
                let others_well = state
                    .processes
                    .iter()
                    .filter(|(r, _)| **r != *rank)
                    .all(|(_, p)| p.exit == Some(0));
                if others_well {
                    events.push(RunEvent::RunFinished);
                }
            }
            events
        }
        RunCommand::LaunchFailed { reason } if state.status.is_active() => {
            vec![RunEvent::RunFailed {
                reason: reason.clone(),
            }]
        }
        RunCommand::LaunchFailed { .. } => Vec::new(),
        RunCommand::Interrupt if started => vec![
            RunEvent::RunOutput {
                stream: OutputStream::Stderr,
                lines: vec![INTERRUPTED.to_string()],
            },
            RunEvent::RunFailed {
                reason: INTERRUPTED.into(),
            },
        ],
        RunCommand::Interrupt => Vec::new(),
        // The reason goes to stderr too, where the dashboard shows a run's end.
        RunCommand::Lost(loss) if started => vec![
            RunEvent::RunOutput {
                stream: OutputStream::Stderr,
                lines: vec![loss.reason()],
            },
            RunEvent::RunFailed {
                reason: loss.reason(),
            },
        ],
        RunCommand::Lost(_) => Vec::new(),
        RunCommand::Delete => vec![RunEvent::RunDeleted],
    };
    Ok(events)
}

/// The ranks that run a process: with `mpi`, rank 0 only (it starts the others
/// itself) unless `run_all_nodes`; with every other backend, every rank.
pub fn ranks_to_run(request: &RunRequest) -> Vec<u32> {
    if request.backend == "mpi" && !request.custom_backend && !request.run_all_nodes {
        vec![0]
    } else {
        (0..request.num_workers).collect()
    }
}

/// A pod's name: `<release>-mlbench-worker-<run name>-<vm id>`.
pub fn pod_name(release: &str, run_name: &str, vm: u32) -> String {
    format!("{release}-mlbench-worker-{run_name}-{vm}")
}

/// Quotes `text` for `/bin/sh`.
pub fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// The command rank `rank` runs: the built-in worker for official images, the
/// custom command with `{hosts}`, `{run_id}`, `{rank}` and `{backend}`
/// replaced otherwise; ` --gpu` and ` --light` appended as upstream does.
pub fn rank_command(request: &RunRequest, worker: &str, hosts: &[String], rank: u32) -> String {
    let hosts = hosts.join(",");
    let mut command = if request.command.is_empty() {
        format!(
            "{} mlbench-worker --hosts {} --run-id {} --rank {} --world {} --backend {}",
            shell_quote(worker),
            shell_quote(&hosts),
            request.id,
            rank,
            ranks_to_run(request).len(),
            shell_quote(&request.backend),
        )
    } else {
        request
            .command
            .replace("{hosts}", &hosts)
            .replace("{run_id}", &request.id.to_string())
            .replace("{rank}", &rank.to_string())
            .replace("{backend}", &request.backend)
    };
    if request.gpu_enabled {
        command.push_str(" --gpu");
    }
    if request.light_target {
        command.push_str(" --light");
    }
    command
}

#[cfg(test)]
mod tests {
    use super::*;
    use infralog_events::domain::mlbench::evolve_run;

    fn request(backend: &str, workers: u32) -> RunRequest {
        RunRequest {
            id: 1,
            name: "r1".into(),
            num_workers: workers,
            backend: backend.into(),
            ..RunRequest::default()
        }
    }

    fn given(events: &[RunEvent]) -> RunState {
        let mut all = vec![RunEvent::RunRequested(Box::new(request("gloo", 2)))];
        all.extend_from_slice(events);
        all.iter().fold(RunState::default(), evolve_run)
    }

    fn active(entries: &[(u64, &str, u32, bool)]) -> BTreeMap<u64, ActiveRun> {
        entries
            .iter()
            .map(|(id, name, workers, admitted)| {
                (
                    *id,
                    ActiveRun {
                        name: (*name).into(),
                        num_workers: *workers,
                        admitted: *admitted,
                    },
                )
            })
            .collect()
    }

    fn started(rank: u32) -> RunEvent {
        RunEvent::RunProcessStarted {
            rank,
            pid: 100 + rank as i32,
            start_time: 1,
        }
    }

    #[test]
    fn exclusive_admission_refuses_any_second_run_and_queue_only_same_names() {
        let one = active(&[(1, "r1", 2, true)]);
        assert!(check_request(&one, AdmissionMode::Exclusive, "r2").is_err());
        assert!(check_request(&one, AdmissionMode::Queue, "r2").is_ok());
        assert!(check_request(&one, AdmissionMode::Queue, "R1").is_err());
        assert!(check_request(&BTreeMap::new(), AdmissionMode::Exclusive, "r1").is_ok());
    }

    #[test]
    fn the_queue_admits_the_smallest_runs_that_fit() {
        let waiting = active(&[(1, "a", 3, true), (2, "b", 2, false), (3, "c", 1, false)]);
        assert_eq!(to_admit(&waiting, AdmissionMode::Queue, 4), vec![3]);
        assert_eq!(to_admit(&waiting, AdmissionMode::Queue, 6), vec![3, 2]);
        let idle = active(&[(4, "d", 4, false), (5, "e", 1, false)]);
        assert_eq!(to_admit(&idle, AdmissionMode::Queue, 4), vec![5]);
        assert_eq!(to_admit(&idle, AdmissionMode::Exclusive, 4), vec![4]);
        let busy = active(&[(1, "a", 1, true), (2, "b", 1, false)]);
        assert!(to_admit(&busy, AdmissionMode::Exclusive, 4).is_empty());
    }

    #[test]
    fn an_admitted_run_records_its_infrastructure_first() {
        let inf = InfId::random();
        assert_eq!(
            decide(&given(&[]), &RunCommand::Admit { inf_id: inf }),
            Ok(vec![
                RunEvent::RunAdmitted,
                RunEvent::RunLaunched { inf_id: inf }
            ])
        );
        assert_eq!(
            decide(
                &given(&[RunEvent::RunAdmitted]),
                &RunCommand::Admit { inf_id: inf }
            ),
            Ok(vec![])
        );
        assert_eq!(
            decide(&RunState::default(), &RunCommand::Delete),
            Err(RunError::Unknown)
        );
    }

    #[test]
    fn a_run_finishes_when_every_process_exits_well_or_the_goal_is_reached() {
        let running = given(&[RunEvent::RunAdmitted, started(0), started(1)]);
        let first = decide(&running, &RunCommand::ProcessExited { rank: 0, code: 0 });
        assert_eq!(
            first,
            Ok(vec![RunEvent::RunProcessExited { rank: 0, code: 0 }])
        );
        let one_left = given(&[
            RunEvent::RunAdmitted,
            started(0),
            started(1),
            RunEvent::RunProcessExited { rank: 0, code: 0 },
        ]);
        assert_eq!(
            decide(&one_left, &RunCommand::ProcessExited { rank: 1, code: 0 }),
            Ok(vec![
                RunEvent::RunProcessExited { rank: 1, code: 0 },
                RunEvent::RunFinished
            ])
        );
        let lines = vec!["epoch 3".to_string(), "Goal Reached!".to_string()];
        let then = decide(
            &running,
            &RunCommand::Output {
                stream: OutputStream::Stdout,
                lines: lines.clone(),
            },
        )
        .expect("decided");
        assert_eq!(then.last(), Some(&RunEvent::RunFinished));
        let on_stderr = decide(
            &running,
            &RunCommand::Output {
                stream: OutputStream::Stderr,
                lines,
            },
        )
        .expect("decided");
        assert_eq!(on_stderr.len(), 1);
    }

    #[test]
    fn a_bad_exit_fails_the_run_and_exits_after_the_end_change_nothing() {
        let running = given(&[RunEvent::RunAdmitted, started(0), started(1)]);
        let then =
            decide(&running, &RunCommand::ProcessExited { rank: 1, code: 2 }).expect("decided");
        assert!(matches!(then.last(), Some(RunEvent::RunFailed { .. })));
        let finished = given(&[RunEvent::RunAdmitted, started(0), RunEvent::RunFinished]);
        assert_eq!(
            decide(&finished, &RunCommand::ProcessExited { rank: 0, code: 143 }),
            Ok(vec![RunEvent::RunProcessExited { rank: 0, code: 143 }])
        );
    }

    #[test]
    fn a_restart_fails_started_runs_with_the_reason_in_stderr_only() {
        let running = given(&[RunEvent::RunAdmitted]);
        let then = decide(&running, &RunCommand::Interrupt).expect("decided");
        let state = then.iter().fold(running.clone(), evolve_run);
        assert_eq!(state.status, RunStatus::Failed);
        assert_eq!(state.stderr, [INTERRUPTED]);
        assert_eq!(decide(&given(&[]), &RunCommand::Interrupt), Ok(vec![]));
        let lost = RunCommand::Lost(RunLoss::Infrastructure);
        let then = decide(&running, &lost).expect("decided");
        let state = then.iter().fold(running.clone(), evolve_run);
        assert_eq!(state.status, RunStatus::Failed);
        assert_eq!(state.stderr, [INFRASTRUCTURE_LOST]);
        assert_eq!(decide(&given(&[]), &lost), Ok(vec![]));
        let pod = RunCommand::Lost(RunLoss::Pod {
            vm: 1,
            state: "stopped".into(),
        });
        let then = decide(&running, &pod).expect("decided");
        let state = then.iter().fold(running.clone(), evolve_run);
        assert_eq!(
            state.stderr,
            ["pod 1 of the run's infrastructure is stopped"]
        );
    }

    #[test]
    fn mpi_runs_rank_zero_only_and_custom_commands_get_their_places_filled() {
        assert_eq!(ranks_to_run(&request("mpi", 3)), vec![0]);
        assert_eq!(ranks_to_run(&request("gloo", 3)), vec![0, 1, 2]);
        let mut custom = request("gloo", 2);
        custom.command = "run --h {hosts} --id {run_id} --r {rank} --b {backend}".into();
        custom.light_target = true;
        let hosts = vec!["10.0.0.1".to_string(), "10.0.0.2".to_string()];
        assert_eq!(
            rank_command(&custom, "/bin/infralog", &hosts, 1),
            "run --h 10.0.0.1,10.0.0.2 --id 1 --r 1 --b gloo --light"
        );
        let official = rank_command(&request("gloo", 2), "/bin/it's", &hosts, 0);
        assert!(
            official.starts_with("'/bin/it'\\''s' mlbench-worker"),
            "{official}"
        );
        assert_eq!(pod_name("rel", "r1", 2), "rel-mlbench-worker-r1-2");
    }
}
