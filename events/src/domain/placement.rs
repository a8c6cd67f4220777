//! The IMC facade's aggregates: a placement (one IMC deployment, stream
//! `imc-placement-<uuid>`) and the quota ledger (stream `imc-ledger`), their
//! events and their folds.
//!
//! A placement owns the core infrastructures of its attempts; its events name them,
//! and the core's own events stay unchanged. Once a deletion is requested the fold
//! stays in the deletion states whatever is recorded later ("deletion wins"), so a
//! late success can only be destroyed.

use super::ids::InfId;
pub use super::quota_ledger::{evolve_ledger, LedgerEvent, LedgerState, Reservation, Usage};
use serde::{Deserialize, Serialize};

/// The image a placement asks for; each field given must match the site's image.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRequirement {
    /// `ubuntu`, `centos`…
    pub distribution: Option<String>,
    /// `20.04`…
    pub version: Option<String>,
    /// `linux`…
    pub kind: Option<String>,
    /// `x86_64`…
    pub architecture: Option<String>,
}

/// The resources a placement asks for per instance: minimums and maximums (memory
/// and disk in GB).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceRequirement {
    /// Least CPU cores.
    pub cores: Option<u64>,
    /// Least memory, GB.
    pub memory: Option<u64>,
    /// Least disk, GB.
    pub disk: Option<u64>,
    /// Most CPU cores.
    pub cores_max: Option<u64>,
    /// Most memory, GB.
    pub memory_max: Option<u64>,
    /// Most disk, GB.
    pub disk_max: Option<u64>,
}

/// Where and on what a placement may run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Requirements {
    /// The image.
    pub image: ImageRequirement,
    /// The resources per instance.
    pub resources: ResourceRequirement,
    /// Allowed regions (empty: any).
    pub regions: Vec<String>,
    /// Allowed sites (empty: any).
    pub sites: Vec<String>,
    /// Groups, one of which the site must serve (empty: any).
    pub groups: Vec<String>,
    /// Tags the site must carry with these values.
    pub tags: Vec<(String, String)>,
}

/// Which regions and sites a placement prefers, most preferred first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Preferences {
    /// Regions, most preferred first.
    pub regions: Vec<String>,
    /// Sites, most preferred first.
    pub sites: Vec<String>,
}

/// What a client asked for (the body of `POST /v1/infrastructures`, checked).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlacementRequest {
    /// The RADL template, decoded from base64 (with `$instance`, `$image`…).
    pub radl: String,
    /// Where it may run.
    pub requirements: Requirements,
    /// Where it would rather run.
    pub preferences: Preferences,
    /// The client's user, whom quotas are counted for.
    pub identity: Option<String>,
    /// The client's own name for the deployment.
    pub identifier: Option<String>,
    /// The client's `want`, kept and shown.
    pub want: Option<String>,
    /// Instances deployed: the sum of the template's `deploy … N` counts.
    pub instances: u64,
}

/// What happened to a placement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PlacementEvent {
    /// A client asked for it.
    PlacementRequested(Box<PlacementRequest>),
    /// The catalogue was matched: these sites pass the static checks, ranked.
    CandidatesEvaluated {
        /// The matching sites, best first.
        matching: Vec<String>,
        /// Whether the reservations of other placements were left out.
        ignore_usage: bool,
    },
    /// A core infrastructure is being created for a try on a site. Recorded before
    /// the creation, with the infrastructure's id, so a restart follows that
    /// infrastructure rather than creating another.
    AttemptStarted {
        /// The site.
        site: String,
        /// The flavour tried.
        flavour: String,
        /// The image URL used.
        image: String,
        /// The core infrastructure of the attempt.
        inf_id: InfId,
    },
    /// The attempt's infrastructure was configured.
    AttemptSucceeded,
    /// The attempt failed; its infrastructure is to be destroyed.
    AttemptFailed {
        /// `QuotaExceeded`, `ImageNotFound`, `Timeout`, `Unconfigured`, or the message.
        reason: String,
    },
    /// The attempt's infrastructure was left unconfigured and is contextualized again.
    AttemptReconfigured,
    /// The attempt's infrastructure is destroyed and its reservation released.
    AttemptDestroyed,
    /// No site could take it now; it is tried again later.
    PlacementWaiting {
        /// `NoMatchingResourcesAvailable` or `DeploymentFailed[_<reason>]`.
        reason: String,
    },
    /// No site can ever take it.
    PlacementUnable {
        /// `NoMatchingResources`.
        reason: String,
    },
    /// It runs.
    PlacementConfigured {
        /// Its site.
        site: String,
        /// Its core infrastructure.
        inf_id: InfId,
    },
    /// A client asked to delete it.
    DeletionRequested,
    /// Its infrastructures are being destroyed.
    DeletionStarted,
    /// Destroying them failed; it is tried again later.
    DeletionFailed {
        /// Why.
        message: String,
    },
    /// Everything it had is destroyed and released.
    PlacementDeleted,
    /// It is forgotten (404 from now on).
    PlacementPurged,
    /// The attempt's infrastructure is running (its VMs are up; contextualization
    /// follows). Its recorded time starts the attempt's configuration timeout.
    AttemptRunning,
}

impl PlacementEvent {
    /// The event's stable type name.
    pub fn event_type(&self) -> &'static str {
        match self {
            PlacementEvent::PlacementRequested(_) => "PlacementRequested",
            PlacementEvent::CandidatesEvaluated { .. } => "CandidatesEvaluated",
            PlacementEvent::AttemptStarted { .. } => "AttemptStarted",
            PlacementEvent::AttemptSucceeded => "AttemptSucceeded",
            PlacementEvent::AttemptFailed { .. } => "AttemptFailed",
            PlacementEvent::AttemptReconfigured => "AttemptReconfigured",
            PlacementEvent::AttemptDestroyed => "AttemptDestroyed",
            PlacementEvent::PlacementWaiting { .. } => "PlacementWaiting",
            PlacementEvent::PlacementUnable { .. } => "PlacementUnable",
            PlacementEvent::PlacementConfigured { .. } => "PlacementConfigured",
            PlacementEvent::DeletionRequested => "DeletionRequested",
            PlacementEvent::DeletionStarted => "DeletionStarted",
            PlacementEvent::DeletionFailed { .. } => "DeletionFailed",
            PlacementEvent::PlacementDeleted => "PlacementDeleted",
            PlacementEvent::PlacementPurged => "PlacementPurged",
            PlacementEvent::AttemptRunning => "AttemptRunning",
        }
    }
}

/// A placement's state, as IMC names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PlacementStatus {
    /// Recorded, not yet matched.
    Accepted,
    /// Attempts under way.
    Creating,
    /// Waiting to try again.
    Waiting,
    /// Running on a site.
    Configured,
    /// No site can take it.
    Unable,
    /// Deletion asked, not yet begun.
    DeletionRequested,
    /// Its infrastructures are being destroyed.
    Deleting,
    /// Gone.
    Deleted,
    /// Destroying failed; tried again later.
    DeletionFailed,
    /// Forgotten.
    Purged,
}

impl PlacementStatus {
    /// IMC's name for the state.
    pub fn as_str(self) -> &'static str {
        match self {
            PlacementStatus::Accepted => "accepted",
            PlacementStatus::Creating => "creating",
            PlacementStatus::Waiting => "waiting",
            PlacementStatus::Configured => "configured",
            PlacementStatus::Unable => "unable",
            PlacementStatus::DeletionRequested => "deletion-requested",
            PlacementStatus::Deleting => "deleting",
            PlacementStatus::Deleted => "deleted",
            PlacementStatus::DeletionFailed => "deletion-failed",
            PlacementStatus::Purged => "purged",
        }
    }

    /// Whether a deletion was asked (the fold never leaves these states but for
    /// `Purged`).
    pub fn is_deletion(self) -> bool {
        matches!(
            self,
            PlacementStatus::DeletionRequested
                | PlacementStatus::Deleting
                | PlacementStatus::Deleted
                | PlacementStatus::DeletionFailed
                | PlacementStatus::Purged
        )
    }

    /// Whether nothing more happens to it but a purge.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            PlacementStatus::Unable | PlacementStatus::Deleted | PlacementStatus::Purged
        )
    }
}

/// How an attempt ended, so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// Its infrastructure is being created or configured.
    Pending,
    /// Configured.
    Succeeded,
    /// Failed for this reason.
    Failed(String),
}

/// One try of a flavour on a site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// The site.
    pub site: String,
    /// The flavour.
    pub flavour: String,
    /// The image URL.
    pub image: String,
    /// Its core infrastructure.
    pub inf_id: InfId,
    /// How it ended.
    pub outcome: AttemptOutcome,
    /// How many times it was contextualized again.
    pub reconfigures: u32,
    /// Whether its infrastructure was seen running.
    pub running: bool,
    /// Whether its infrastructure is destroyed (and its reservation released).
    pub destroyed: bool,
}

/// A placement folded from its stream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlacementState {
    /// What was asked; `None` before `PlacementRequested`.
    pub request: Option<Box<PlacementRequest>>,
    /// Its state; `None` before `PlacementRequested`.
    pub status: Option<PlacementStatus>,
    /// Why it waits or is unable (IMC's `status_reason`).
    pub reason: Option<String>,
    /// The sites of the latest evaluation, best first.
    pub matching: Vec<String>,
    /// Every attempt, oldest first.
    pub attempts: Vec<Attempt>,
    /// The first attempt of the current round (attempts before it belong to
    /// earlier rounds, before a wait).
    pub round_start: usize,
    /// The site it runs on, once configured.
    pub cloud: Option<String>,
    /// The infrastructure it runs on, once configured.
    pub infra_id: Option<InfId>,
    /// The stream's version.
    pub version: u64,
}

impl PlacementState {
    /// The latest attempt whose infrastructure is not destroyed.
    pub fn live_attempt(&self) -> Option<&Attempt> {
        self.attempts.iter().rev().find(|a| !a.destroyed)
    }

    /// The attempts of the current round.
    pub fn round(&self) -> &[Attempt] {
        self.attempts.get(self.round_start..).unwrap_or(&[])
    }

    fn set_status(&mut self, status: PlacementStatus, reason: Option<String>) {
        // Deletion wins: nothing but the deletion's own steps moves it back.
        let current_is_deletion = self.status.is_some_and(PlacementStatus::is_deletion);
        if current_is_deletion && !status.is_deletion() {
            return;
        }
        self.status = Some(status);
        self.reason = reason;
    }

    fn live_attempt_mut(&mut self) -> Option<&mut Attempt> {
        self.attempts.iter_mut().rev().find(|a| !a.destroyed)
    }
}

/// Folds one event into a placement.
pub fn evolve(mut state: PlacementState, event: &PlacementEvent) -> PlacementState {
    use PlacementEvent as E;
    use PlacementStatus as S;
    state.version += 1;
    match event {
        E::PlacementRequested(request) => {
            state.request = Some(request.clone());
            state.set_status(S::Accepted, None);
        }
        E::CandidatesEvaluated { matching, .. } => {
            state.matching = matching.clone();
            state.round_start = state.attempts.len();
            state.set_status(S::Creating, None);
        }
        E::AttemptStarted {
            site,
            flavour,
            image,
            inf_id,
        } => state.attempts.push(Attempt {
            site: site.clone(),
            flavour: flavour.clone(),
            image: image.clone(),
            inf_id: *inf_id,
            outcome: AttemptOutcome::Pending,
            reconfigures: 0,
            running: false,
            destroyed: false,
        }),
        E::AttemptSucceeded => {
            if let Some(attempt) = state.live_attempt_mut() {
                attempt.outcome = AttemptOutcome::Succeeded;
            }
        }
        E::AttemptFailed { reason } => {
            if let Some(attempt) = state.live_attempt_mut() {
                attempt.outcome = AttemptOutcome::Failed(reason.clone());
            }
        }
        E::AttemptReconfigured => {
            if let Some(attempt) = state.live_attempt_mut() {
                attempt.reconfigures += 1;
            }
        }
        E::AttemptDestroyed => {
            if let Some(attempt) = state.live_attempt_mut() {
                attempt.destroyed = true;
            }
        }
        E::PlacementWaiting { reason } => state.set_status(S::Waiting, Some(reason.clone())),
        E::PlacementUnable { reason } => state.set_status(S::Unable, Some(reason.clone())),
        E::PlacementConfigured { site, inf_id } => {
            if !state.status.is_some_and(S::is_deletion) {
                state.cloud = Some(site.clone());
                state.infra_id = Some(*inf_id);
            }
            state.set_status(S::Configured, None);
        }
        E::DeletionRequested => state.set_status(S::DeletionRequested, None),
        E::DeletionStarted => state.set_status(S::Deleting, None),
        E::DeletionFailed { .. } => state.set_status(S::DeletionFailed, None),
        E::PlacementDeleted => state.set_status(S::Deleted, None),
        E::PlacementPurged => state.set_status(S::Purged, None),
        E::AttemptRunning => {
            if let Some(attempt) = state.live_attempt_mut() {
                attempt.running = true;
            }
        }
    }
    state
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fold(events: &[PlacementEvent]) -> PlacementState {
        events.iter().fold(PlacementState::default(), evolve)
    }

    fn started(inf: InfId) -> PlacementEvent {
        PlacementEvent::AttemptStarted {
            site: "site-a".into(),
            flavour: "m1.small".into(),
            image: "mock0://x".into(),
            inf_id: inf,
        }
    }

    #[test]
    fn a_success_after_a_deletion_request_leaves_it_in_deletion() {
        let inf = InfId::random();
        let state = fold(&[
            PlacementEvent::PlacementRequested(Box::default()),
            PlacementEvent::CandidatesEvaluated {
                matching: vec!["site-a".into()],
                ignore_usage: false,
            },
            started(inf),
            PlacementEvent::DeletionRequested,
            PlacementEvent::AttemptSucceeded,
            PlacementEvent::PlacementConfigured {
                site: "site-a".into(),
                inf_id: inf,
            },
        ]);
        assert_eq!(state.status, Some(PlacementStatus::DeletionRequested));
        assert_eq!(state.cloud, None);
        assert_eq!(state.infra_id, None);
        assert_eq!(state.live_attempt().map(|a| a.inf_id), Some(inf));
        assert_eq!(state.version, 6);
    }

    #[test]
    fn a_new_round_starts_after_the_attempts_of_the_last() {
        let (a, b) = (InfId::random(), InfId::random());
        let evaluated = PlacementEvent::CandidatesEvaluated {
            matching: vec!["site-a".into()],
            ignore_usage: false,
        };
        let state = fold(&[
            PlacementEvent::PlacementRequested(Box::default()),
            evaluated.clone(),
            started(a),
            PlacementEvent::AttemptFailed {
                reason: "QuotaExceeded".into(),
            },
            PlacementEvent::AttemptDestroyed,
            PlacementEvent::PlacementWaiting {
                reason: "DeploymentFailed_QuotaExceeded".into(),
            },
            evaluated,
            started(b),
        ]);
        assert_eq!(state.status, Some(PlacementStatus::Creating));
        assert_eq!(state.reason, None);
        assert_eq!(state.round().len(), 1);
        assert_eq!(state.live_attempt().map(|a| a.inf_id), Some(b));
    }
}
