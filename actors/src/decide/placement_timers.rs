//! When a placement's timed steps fall due: retries, timeouts and the purge.
//!
//! Every deadline counts from a recorded event's time (the [`PlacementClock`],
//! folded from the stream's envelopes), never from when an actor happened to
//! start: a restart, or an actor that stopped while idle and was rehydrated,
//! finds the same deadlines. The actor asks [`next_due`] after every step and
//! sets one alarm for the answer.

use std::time::{Duration, SystemTime};

use infralog_events::domain::placement::{
    evolve, AttemptOutcome, PlacementEvent, PlacementState, PlacementStatus,
};
use infralog_events::domain::InfId;

/// The `--imc-…` durations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timings {
    /// A `waiting` placement starts a new round after this.
    pub waiting_retry: Duration,
    /// An attempt's infrastructure must be running this long after it started.
    pub running_timeout: Duration,
    /// …and configured this long after it was seen running (or contextualized
    /// again).
    pub configured_timeout: Duration,
    /// An attempt may take this long in all.
    pub attempt_timeout: Duration,
    /// A placement `creating` for longer is deleted.
    pub creating_timeout: Duration,
    /// A failed deletion is tried again after this.
    pub deletion_retry: Duration,
    /// A `deleted` or `unable` placement is purged after this.
    pub purge_after: Duration,
}

impl Default for Timings {
    /// IMC's values.
    fn default() -> Self {
        Timings {
            waiting_retry: Duration::from_secs(800),
            running_timeout: Duration::from_secs(600),
            configured_timeout: Duration::from_secs(600),
            attempt_timeout: Duration::from_secs(8000),
            creating_timeout: Duration::from_secs(7200),
            deletion_retry: Duration::from_secs(7200),
            purge_after: Duration::from_secs(604_800),
        }
    }
}

/// The recorded times the deadlines count from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PlacementClock {
    /// When the placement entered its present status.
    pub status_since: Option<SystemTime>,
    /// When the latest attempt started.
    pub attempt_started: Option<SystemTime>,
    /// When the latest attempt was seen running, or last contextualized again.
    pub configuring_since: Option<SystemTime>,
}

/// A placement with the times its deadlines count from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TimedPlacement {
    /// The placement.
    pub state: PlacementState,
    /// Its clock.
    pub clock: PlacementClock,
}

/// Folds one event recorded at `at` into the placement and its clock.
pub fn evolve_timed(
    timed: TimedPlacement,
    event: &PlacementEvent,
    at: SystemTime,
) -> TimedPlacement {
    let before = timed.state.status;
    let state = evolve(timed.state, event);
    let mut clock = timed.clock;
    if state.status != before {
        clock.status_since = Some(at);
    }
    match event {
        PlacementEvent::AttemptStarted { .. } => {
            clock.attempt_started = Some(at);
            clock.configuring_since = None;
        }
        PlacementEvent::AttemptRunning | PlacementEvent::AttemptReconfigured => {
            clock.configuring_since = Some(at);
        }
        _ => {}
    }
    TimedPlacement { state, clock }
}

/// A timed step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Due {
    /// The pending attempt passed a limit (the reason names it).
    AttemptTimeout {
        /// Its infrastructure.
        inf_id: InfId,
        /// `NotRunningTimeout`, `ConfiguredTimeout` or `Timeout` (the total).
        reason: &'static str,
    },
    /// It has been creating for longer than the limit.
    CreatingTooLong,
    /// A new round (`waiting`) or a new deletion (`deletion-failed`).
    Retry,
    /// It is forgotten.
    Purge,
}

fn after(since: Option<SystemTime>, wait: Duration) -> Option<SystemTime> {
    since.and_then(|since| since.checked_add(wait))
}

/// The earliest timed step of `timed` and when it falls due (perhaps already);
/// `None` when nothing is timed in its state.
pub fn next_due(timed: &TimedPlacement, timings: &Timings) -> Option<(SystemTime, Due)> {
    let (state, clock) = (&timed.state, &timed.clock);
    let since = |wait| after(clock.status_since, wait);
    match state.status? {
        PlacementStatus::Creating => {
            let mut candidates: Vec<(SystemTime, Due)> = Vec::new();
            if let Some(at) = since(timings.creating_timeout) {
                candidates.push((at, Due::CreatingTooLong));
            }
            let pending = state
                .live_attempt()
                .filter(|a| a.outcome == AttemptOutcome::Pending)
                // The clock follows the latest attempt only.
                .filter(|a| {
                    state
                        .attempts
                        .last()
                        .is_some_and(|last| last.inf_id == a.inf_id)
                });
            if let Some(attempt) = pending {
                let timeout = |at: Option<SystemTime>, reason| {
                    at.map(|at| {
                        let inf_id = attempt.inf_id;
                        (at, Due::AttemptTimeout { inf_id, reason })
                    })
                };
                let stage = if attempt.running {
                    timeout(
                        after(clock.configuring_since, timings.configured_timeout),
                        "ConfiguredTimeout",
                    )
                } else {
                    timeout(
                        after(clock.attempt_started, timings.running_timeout),
                        "NotRunningTimeout",
                    )
                };
                let total = timeout(
                    after(clock.attempt_started, timings.attempt_timeout),
                    "Timeout",
                );
                candidates.extend(stage);
                candidates.extend(total);
            }
            // The earliest; on a tie the attempt's own limit, which ends only it.
            candidates
                .into_iter()
                .min_by_key(|(at, due)| (*at, matches!(due, Due::CreatingTooLong)))
        }
        PlacementStatus::Waiting => since(timings.waiting_retry).map(|at| (at, Due::Retry)),
        PlacementStatus::DeletionFailed => since(timings.deletion_retry).map(|at| (at, Due::Retry)),
        PlacementStatus::Deleted | PlacementStatus::Unable => {
            since(timings.purge_after).map(|at| (at, Due::Purge))
        }
        PlacementStatus::Accepted
        | PlacementStatus::Configured
        | PlacementStatus::DeletionRequested
        | PlacementStatus::Deleting
        | PlacementStatus::Purged => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000 + seconds)
    }

    /// `events`, each recorded at the given second.
    fn given(events: &[(u64, PlacementEvent)]) -> TimedPlacement {
        events
            .iter()
            .fold(TimedPlacement::default(), |timed, (second, event)| {
                evolve_timed(timed, event, at(*second))
            })
    }

    fn requested() -> PlacementEvent {
        PlacementEvent::PlacementRequested(Box::default())
    }

    fn evaluated() -> PlacementEvent {
        PlacementEvent::CandidatesEvaluated {
            matching: vec!["site-a".into()],
            ignore_usage: false,
        }
    }

    fn started(inf: InfId) -> PlacementEvent {
        PlacementEvent::AttemptStarted {
            site: "site-a".into(),
            flavour: "m1.small".into(),
            image: "mock0://u".into(),
            inf_id: inf,
        }
    }

    #[test]
    fn an_attempt_must_run_then_be_configured_each_in_its_time_and_all_in_the_total() {
        // With IMC's values the placement's own limit (7200 s creating) comes
        // before an attempt's total (8000 s): lift it to see the total.
        let timings = Timings {
            creating_timeout: Duration::from_secs(20_000),
            ..Timings::default()
        };
        let inf = InfId::random();
        let starting = given(&[(0, requested()), (1, evaluated()), (10, started(inf))]);
        assert_eq!(
            next_due(&starting, &timings),
            Some((
                at(610),
                Due::AttemptTimeout {
                    inf_id: inf,
                    reason: "NotRunningTimeout"
                }
            ))
        );
        let running = evolve_timed(starting, &PlacementEvent::AttemptRunning, at(300));
        assert_eq!(
            next_due(&running, &timings),
            Some((
                at(900),
                Due::AttemptTimeout {
                    inf_id: inf,
                    reason: "ConfiguredTimeout"
                }
            ))
        );
        // Each contextualization again gets its own time, within the total.
        let again = evolve_timed(running, &PlacementEvent::AttemptReconfigured, at(7_900));
        assert_eq!(
            next_due(&again, &timings),
            Some((
                at(8_010),
                Due::AttemptTimeout {
                    inf_id: inf,
                    reason: "Timeout"
                }
            ))
        );
    }

    #[test]
    fn creating_too_long_falls_due_when_no_attempt_limit_comes_first() {
        let timings = Timings {
            creating_timeout: Duration::from_secs(100),
            ..Timings::default()
        };
        let inf = InfId::random();
        let creating = given(&[(0, requested()), (1, evaluated()), (10, started(inf))]);
        assert_eq!(
            next_due(&creating, &timings),
            Some((at(101), Due::CreatingTooLong))
        );
        let ended = evolve_timed(
            creating,
            &PlacementEvent::AttemptFailed {
                reason: "LaunchFailed".into(),
            },
            at(20),
        );
        assert_eq!(
            next_due(&ended, &timings),
            Some((at(101), Due::CreatingTooLong)),
            "an ended attempt has no timeout of its own"
        );
    }

    #[test]
    fn waits_retries_and_purges_count_from_the_recorded_status_change() {
        let timings = Timings::default();
        let waiting = given(&[
            (0, requested()),
            (1, evaluated()),
            (
                5,
                PlacementEvent::PlacementWaiting {
                    reason: "NoMatchingResourcesAvailable".into(),
                },
            ),
        ]);
        assert_eq!(next_due(&waiting, &timings), Some((at(805), Due::Retry)));
        let failed_deletion = given(&[
            (0, requested()),
            (1, PlacementEvent::DeletionRequested),
            (2, PlacementEvent::DeletionStarted),
            (
                3,
                PlacementEvent::DeletionFailed {
                    message: "boom".into(),
                },
            ),
        ]);
        assert_eq!(
            next_due(&failed_deletion, &timings),
            Some((at(7_203), Due::Retry))
        );
        let unable = given(&[
            (0, requested()),
            (
                4,
                PlacementEvent::PlacementUnable {
                    reason: "NoMatchingResources".into(),
                },
            ),
        ]);
        assert_eq!(next_due(&unable, &timings), Some((at(604_804), Due::Purge)));
        let configured = given(&[
            (0, requested()),
            (1, evaluated()),
            (2, started(InfId::random())),
            (3, PlacementEvent::AttemptSucceeded),
            (
                3,
                PlacementEvent::PlacementConfigured {
                    site: "site-a".into(),
                    inf_id: InfId::random(),
                },
            ),
        ]);
        assert_eq!(next_due(&configured, &timings), None);
    }
}
