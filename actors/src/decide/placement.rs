//! The decisions of an IMC placement. The actor gathers what varies (the
//! catalogue's matches, the ledger's answer, the core infrastructure's state, the
//! time) into the command; `decide` says which events follow.

use infralog_events::domain::placement::{
    Attempt, AttemptOutcome, PlacementEvent, PlacementRequest, PlacementState, PlacementStatus,
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
    /// Its VMs run; contextualization is under way.
    Running,
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
        /// Which limit it passed (`NotRunningTimeout`, `ConfiguredTimeout`,
        /// `Timeout`).
        reason: String,
    },
    /// It has been creating for too long: it is deleted (IMC's cleaner).
    ExpireCreating,
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

/// The live attempt if it is `inf_id`'s and has no outcome yet: observations and
/// timeouts of any other attempt, or of one that ended, change nothing.
fn pending_attempt(state: &PlacementState, inf_id: InfId) -> Option<&Attempt> {
    state
        .live_attempt()
        .filter(|a| a.inf_id == inf_id && a.outcome == AttemptOutcome::Pending)
}

/// How the live attempt ends.
enum AttemptEnd {
    /// It failed (a cloud's failure, an unconfigured end, a timeout): its
    /// infrastructure is to be destroyed.
    Failed(String),
    /// Its infrastructure is destroyed and its usage released.
    Destroyed,
}

/// The one place an attempt ends. A failure needs a pending attempt (the callers
/// checked it is the one meant); a destruction needs an attempt that ended, or a
/// deletion, which destroys whatever the attempt is doing.
fn end_attempt(
    state: &PlacementState,
    status: PlacementStatus,
    end: AttemptEnd,
) -> Result<Vec<PlacementEvent>, PlacementError> {
    let Some(attempt) = state.live_attempt() else {
        return Err(PlacementError::IncorrectState(status_name(state)));
    };
    let pending = attempt.outcome == AttemptOutcome::Pending;
    match end {
        AttemptEnd::Failed(reason) if pending => Ok(vec![PlacementEvent::AttemptFailed { reason }]),
        AttemptEnd::Failed(_) => Ok(Vec::new()),
        AttemptEnd::Destroyed if !pending || status.is_deletion() => {
            Ok(vec![PlacementEvent::AttemptDestroyed])
        }
        AttemptEnd::Destroyed => Err(PlacementError::IncorrectState(status_name(state))),
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
            let Some(attempt) = pending_attempt(state, inf_id) else {
                return Ok(Vec::new());
            };
            Ok(match core {
                CoreState::Pending => Vec::new(),
                CoreState::Running if attempt.running => Vec::new(),
                CoreState::Running => vec![E::AttemptRunning],
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
                CoreState::Failed(message) => {
                    end_attempt(state, status, AttemptEnd::Failed(failure_reason(&message)))?
                }
                CoreState::Unconfigured if attempt.reconfigures < max_reconfigures => {
                    vec![E::AttemptReconfigured]
                }
                CoreState::Unconfigured => {
                    end_attempt(state, status, AttemptEnd::Failed("Unconfigured".into()))?
                }
                CoreState::Gone => end_attempt(
                    state,
                    status,
                    AttemptEnd::Failed("InfrastructureGone".into()),
                )?,
            })
        }
        C::TimeOut { inf_id, reason } => match pending_attempt(state, inf_id) {
            Some(_) => end_attempt(state, status, AttemptEnd::Failed(reason)),
            None => Ok(Vec::new()),
        },
        C::ExpireCreating => Ok(if status == S::Creating {
            vec![E::DeletionRequested]
        } else {
            Vec::new()
        }),
        C::RecordDestroyed => end_attempt(state, status, AttemptEnd::Destroyed),
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
#[path = "placement_tests.rs"]
mod tests;
