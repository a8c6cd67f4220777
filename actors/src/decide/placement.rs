//! The decisions of an IMC placement. The actor gathers what varies (the
//! catalogue's matches, the ledger's answer, the core infrastructure's state, the
//! time) into the command; `decide` says which events follow.

use infralog_events::domain::placement::{
    AttemptOutcome, PlacementEvent, PlacementRequest, PlacementState, PlacementStatus,
};
use infralog_events::domain::InfId;

/// How the core infrastructure of an attempt is, as the facade follower saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CoreState {
    /// Configured: the attempt succeeded.
    Configured,
    /// A VM failed; the message is its cloud's.
    Failed(String),
    /// Contextualization failed.
    Unconfigured,
    /// Destroyed, or never recorded.
    Gone,
    /// Still on its way.
    Pending,
}

/// What a placement is asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlacementCommand {
    /// Record a client's request (the stream must be empty).
    Request(Box<PlacementRequest>),
    /// Start a round over these ranked sites; empty: no site can ever take it.
    Evaluate {
        /// The matching sites, best first.
        matching: Vec<String>,
    },
    /// Try a flavour on a site with a new core infrastructure.
    StartAttempt {
        /// The site.
        site: String,
        /// The flavour.
        flavour: String,
        /// The image URL.
        image: String,
        /// The id the new core infrastructure gets.
        inf_id: InfId,
    },
    /// The current attempt's infrastructure is in this state.
    Observe {
        /// The infrastructure observed.
        inf_id: InfId,
        /// Its state.
        state: CoreState,
        /// How many reconfigurations an unconfigured attempt gets.
        max_reconfigures: u32,
    },
    /// The current attempt took too long.
    TimeOut {
        /// The infrastructure of the attempt that timed out.
        inf_id: InfId,
    },
    /// The failed attempt's infrastructure is destroyed and its usage released.
    RecordDestroyed,
    /// No try is left in this round.
    GiveUp {
        /// Why (`NoMatchingResourcesAvailable`, `DeploymentFailed_…`).
        reason: String,
    },
    /// A client asked to delete it.
    Delete,
    /// Begin destroying its infrastructures.
    StartDeletion,
    /// Everything is destroyed and released.
    FinishDeletion,
    /// Destroying failed.
    FailDeletion {
        /// Why.
        message: String,
    },
    /// Forget it.
    Purge,
}

/// Why a placement command is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlacementError {
    /// No placement has this id.
    #[error("no such placement")]
    NotFound,
    /// A placement with this id exists already.
    #[error("the placement exists already")]
    AlreadyExists,
    /// The command does not fit its state.
    #[error("the placement is {0} and cannot do this")]
    IncorrectState(&'static str),
}

/// A launch message that names a quota or a missing image gives the attempt that
/// reason (IMC's names); any other failure keeps the cloud's message.
pub fn failure_reason(message: &str) -> String {
    if message.contains("Quota") {
        "QuotaExceeded".into()
    } else if message.contains("No image found") {
        "ImageNotFound".into()
    } else {
        "LaunchFailed".into()
    }
}

fn status_name(state: &PlacementState) -> &'static str {
    state
        .status
        .map(PlacementStatus::as_str)
        .unwrap_or("absent")
}

/// The events `command` causes on `state`.
pub fn decide(
    state: &PlacementState,
    command: PlacementCommand,
) -> Result<Vec<PlacementEvent>, PlacementError> {
    use PlacementCommand as C;
    use PlacementEvent as E;
    use PlacementStatus as S;
    let Some(status) = state.status else {
        return match command {
            C::Request(request) => Ok(vec![E::PlacementRequested(request)]),
            _ => Err(PlacementError::NotFound),
        };
    };
    let refuse = || Err(PlacementError::IncorrectState(status_name(state)));
    match command {
        C::Request(_) => Err(PlacementError::AlreadyExists),
        C::Evaluate { matching } => match status {
            S::Accepted | S::Waiting if matching.is_empty() => Ok(vec![E::PlacementUnable {
                reason: "NoMatchingResources".into(),
            }]),
            S::Accepted | S::Waiting => Ok(vec![E::CandidatesEvaluated {
                matching,
                ignore_usage: false,
            }]),
            _ => refuse(),
        },
        C::StartAttempt {
            site,
            flavour,
            image,
            inf_id,
        } => {
            let busy = state.live_attempt().is_some();
            if status != S::Creating || busy {
                return refuse();
            }
            Ok(vec![E::AttemptStarted {
                site,
                flavour,
                image,
                inf_id,
            }])
        }
        C::Observe {
            inf_id,
            state: core,
            max_reconfigures,
        } => {
            let Some(attempt) = state.live_attempt().filter(|a| a.inf_id == inf_id) else {
                return Ok(Vec::new());
            };
            if attempt.outcome != AttemptOutcome::Pending {
                return Ok(Vec::new());
            }
            Ok(match core {
                CoreState::Pending => Vec::new(),
                // A success during a deletion is recorded, and the fold stays in
                // the deletion: the infrastructure is destroyed with the rest.
                CoreState::Configured if status.is_deletion() => vec![E::AttemptSucceeded],
                CoreState::Configured => vec![
                    E::AttemptSucceeded,
                    E::PlacementConfigured {
                        site: attempt.site.clone(),
                        inf_id,
                    },
                ],
                CoreState::Failed(message) => vec![E::AttemptFailed {
                    reason: failure_reason(&message),
                }],
                CoreState::Unconfigured if attempt.reconfigures < max_reconfigures => {
                    vec![E::AttemptReconfigured]
                }
                CoreState::Unconfigured => vec![E::AttemptFailed {
                    reason: "Unconfigured".into(),
                }],
                CoreState::Gone => vec![E::AttemptFailed {
                    reason: "InfrastructureGone".into(),
                }],
            })
        }
        C::TimeOut { inf_id } => {
            let timed_out = state
                .live_attempt()
                .is_some_and(|a| a.inf_id == inf_id && a.outcome == AttemptOutcome::Pending);
            Ok(if timed_out {
                vec![E::AttemptFailed {
                    reason: "Timeout".into(),
                }]
            } else {
                Vec::new()
            })
        }
        C::RecordDestroyed => match state.live_attempt() {
            Some(attempt) if attempt.outcome != AttemptOutcome::Pending || status.is_deletion() => {
                Ok(vec![E::AttemptDestroyed])
            }
            _ => refuse(),
        },
        C::GiveUp { reason } => {
            if status != S::Creating || state.live_attempt().is_some() {
                return refuse();
            }
            Ok(vec![E::PlacementWaiting { reason }])
        }
        C::Delete => Ok(if status.is_deletion() {
            Vec::new()
        } else {
            vec![E::DeletionRequested]
        }),
        C::StartDeletion => match status {
            S::DeletionRequested | S::DeletionFailed => Ok(vec![E::DeletionStarted]),
            _ => refuse(),
        },
        C::FinishDeletion => {
            if status != S::Deleting || state.live_attempt().is_some() {
                return refuse();
            }
            Ok(vec![E::PlacementDeleted])
        }
        C::FailDeletion { message } => match status {
            S::Deleting => Ok(vec![E::DeletionFailed { message }]),
            _ => refuse(),
        },
        C::Purge => match status {
            S::Deleted | S::Unable => Ok(vec![E::PlacementPurged]),
            _ => refuse(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use infralog_events::domain::placement::evolve;

    fn given(events: &[PlacementEvent]) -> PlacementState {
        events.iter().fold(PlacementState::default(), evolve)
    }

    fn requested() -> PlacementEvent {
        PlacementEvent::PlacementRequested(Box::new(PlacementRequest {
            instances: 1,
            ..PlacementRequest::default()
        }))
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

    fn observe(inf: InfId, state: CoreState) -> PlacementCommand {
        PlacementCommand::Observe {
            inf_id: inf,
            state,
            max_reconfigures: 1,
        }
    }

    #[test]
    fn a_request_is_recorded_once() {
        let request = Box::new(PlacementRequest::default());
        let then = decide(
            &PlacementState::default(),
            PlacementCommand::Request(request.clone()),
        );
        assert_eq!(
            then,
            Ok(vec![PlacementEvent::PlacementRequested(request.clone())])
        );
        assert_eq!(
            decide(&given(&[requested()]), PlacementCommand::Request(request)),
            Err(PlacementError::AlreadyExists)
        );
        assert_eq!(
            decide(&PlacementState::default(), PlacementCommand::Delete),
            Err(PlacementError::NotFound)
        );
    }

    #[test]
    fn no_match_makes_it_unable_and_a_match_starts_creating() {
        let state = given(&[requested()]);
        assert_eq!(
            decide(&state, PlacementCommand::Evaluate { matching: vec![] }),
            Ok(vec![PlacementEvent::PlacementUnable {
                reason: "NoMatchingResources".into()
            }])
        );
        assert_eq!(
            decide(
                &state,
                PlacementCommand::Evaluate {
                    matching: vec!["site-a".into()]
                }
            ),
            Ok(vec![evaluated()])
        );
    }

    #[test]
    fn one_attempt_at_a_time() {
        let inf = InfId::random();
        let state = given(&[requested(), evaluated(), started(inf)]);
        let again = PlacementCommand::StartAttempt {
            site: "site-a".into(),
            flavour: "m1.small".into(),
            image: "mock0://u".into(),
            inf_id: InfId::random(),
        };
        assert_eq!(
            decide(&state, again),
            Err(PlacementError::IncorrectState("creating"))
        );
    }

    #[test]
    fn configured_succeeds_and_failures_are_classified() {
        let inf = InfId::random();
        let state = given(&[requested(), evaluated(), started(inf)]);
        assert_eq!(
            decide(&state, observe(inf, CoreState::Configured)),
            Ok(vec![
                PlacementEvent::AttemptSucceeded,
                PlacementEvent::PlacementConfigured {
                    site: "site-a".into(),
                    inf_id: inf
                }
            ])
        );
        assert_eq!(
            decide(
                &state,
                observe(
                    inf,
                    CoreState::Failed("403 Forbidden Quota exceeded".into())
                )
            ),
            Ok(vec![PlacementEvent::AttemptFailed {
                reason: "QuotaExceeded".into()
            }])
        );
        assert_eq!(
            decide(&state, observe(InfId::random(), CoreState::Configured)),
            Ok(vec![]),
            "another infrastructure's state is not this attempt's"
        );
    }

    #[test]
    fn unconfigured_is_reconfigured_up_to_the_limit_then_fails() {
        let inf = InfId::random();
        let state = given(&[requested(), evaluated(), started(inf)]);
        assert_eq!(
            decide(&state, observe(inf, CoreState::Unconfigured)),
            Ok(vec![PlacementEvent::AttemptReconfigured])
        );
        let once = given(&[
            requested(),
            evaluated(),
            started(inf),
            PlacementEvent::AttemptReconfigured,
        ]);
        assert_eq!(
            decide(&once, observe(inf, CoreState::Unconfigured)),
            Ok(vec![PlacementEvent::AttemptFailed {
                reason: "Unconfigured".into()
            }])
        );
    }

    #[test]
    fn deletion_wins_over_a_late_success() {
        let inf = InfId::random();
        let state = given(&[
            requested(),
            evaluated(),
            started(inf),
            PlacementEvent::DeletionRequested,
        ]);
        assert_eq!(
            decide(&state, observe(inf, CoreState::Configured)),
            Ok(vec![PlacementEvent::AttemptSucceeded])
        );
        assert_eq!(decide(&state, PlacementCommand::Delete), Ok(vec![]));
        let deleting = given(&[
            requested(),
            evaluated(),
            started(inf),
            PlacementEvent::DeletionRequested,
            PlacementEvent::AttemptSucceeded,
            PlacementEvent::DeletionStarted,
        ]);
        assert_eq!(
            decide(&deleting, PlacementCommand::FinishDeletion),
            Err(PlacementError::IncorrectState("deleting")),
            "not before the late infrastructure is destroyed"
        );
        assert_eq!(
            decide(&deleting, PlacementCommand::RecordDestroyed),
            Ok(vec![PlacementEvent::AttemptDestroyed])
        );
    }

    #[test]
    fn a_timeout_fails_only_the_pending_attempt_it_was_set_for() {
        let inf = InfId::random();
        let state = given(&[requested(), evaluated(), started(inf)]);
        assert_eq!(
            decide(&state, PlacementCommand::TimeOut { inf_id: inf }),
            Ok(vec![PlacementEvent::AttemptFailed {
                reason: "Timeout".into()
            }])
        );
        assert_eq!(
            decide(
                &state,
                PlacementCommand::TimeOut {
                    inf_id: InfId::random()
                }
            ),
            Ok(vec![])
        );
    }

    #[test]
    fn giving_up_waits_and_a_new_evaluation_creates_again() {
        let inf = InfId::random();
        let failed = given(&[
            requested(),
            evaluated(),
            started(inf),
            PlacementEvent::AttemptFailed {
                reason: "QuotaExceeded".into(),
            },
        ]);
        let give_up = PlacementCommand::GiveUp {
            reason: "DeploymentFailed_QuotaExceeded".into(),
        };
        assert!(
            decide(&failed, give_up.clone()).is_err(),
            "not while the failed infrastructure stands"
        );
        let destroyed = evolve(failed, &PlacementEvent::AttemptDestroyed);
        let waiting = decide(&destroyed, give_up).expect("gives up");
        let state = waiting.iter().fold(destroyed, evolve);
        assert_eq!(state.status, Some(PlacementStatus::Waiting));
        assert_eq!(
            decide(
                &state,
                PlacementCommand::Evaluate {
                    matching: vec!["site-a".into()]
                }
            ),
            Ok(vec![evaluated()])
        );
    }

    #[test]
    fn purging_only_follows_an_end() {
        let state = given(&[requested(), evaluated()]);
        assert!(decide(&state, PlacementCommand::Purge).is_err());
        let unable = given(&[
            requested(),
            PlacementEvent::PlacementUnable {
                reason: "NoMatchingResources".into(),
            },
        ]);
        assert_eq!(
            decide(&unable, PlacementCommand::Purge),
            Ok(vec![PlacementEvent::PlacementPurged])
        );
    }
}
