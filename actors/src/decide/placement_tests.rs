//! Given events, when a command, then events: the placement's decisions.
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

fn timeout(inf: InfId) -> PlacementCommand {
    PlacementCommand::TimeOut {
        inf_id: inf,
        reason: "Timeout".into(),
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
fn an_unconfigured_attempt_is_contextualized_again_six_times_then_fails() {
    let inf = InfId::random();
    let mut events = vec![requested(), evaluated(), started(inf)];
    let unconfigured = PlacementCommand::Observe {
        inf_id: inf,
        state: CoreState::Unconfigured,
        max_reconfigures: 6,
    };
    for done in 0..6 {
        assert_eq!(
            decide(&given(&events), unconfigured.clone()),
            Ok(vec![PlacementEvent::AttemptReconfigured]),
            "after {done} reconfigurations"
        );
        events.push(PlacementEvent::AttemptReconfigured);
        // Contextualizing again runs it again; a success still counts.
        events.push(PlacementEvent::AttemptRunning);
    }
    let state = given(&events);
    assert_eq!(state.live_attempt().map(|a| a.reconfigures), Some(6));
    assert_eq!(
        decide(&state, unconfigured),
        Ok(vec![PlacementEvent::AttemptFailed {
            reason: "Unconfigured".into()
        }])
    );
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
}

#[test]
fn running_is_recorded_once_per_attempt() {
    let inf = InfId::random();
    let state = given(&[requested(), evaluated(), started(inf)]);
    assert_eq!(
        decide(&state, observe(inf, CoreState::Running)),
        Ok(vec![PlacementEvent::AttemptRunning])
    );
    let running = given(&[
        requested(),
        evaluated(),
        started(inf),
        PlacementEvent::AttemptRunning,
    ]);
    assert_eq!(
        decide(&running, observe(inf, CoreState::Running)),
        Ok(vec![])
    );
    assert_eq!(
        decide(&running, observe(inf, CoreState::Pending)),
        Ok(vec![])
    );
}

#[test]
fn creating_too_long_asks_for_deletion_and_nothing_else_does() {
    let inf = InfId::random();
    let creating = given(&[requested(), evaluated(), started(inf)]);
    assert_eq!(
        decide(&creating, PlacementCommand::ExpireCreating),
        Ok(vec![PlacementEvent::DeletionRequested])
    );
    let waiting = given(&[
        requested(),
        evaluated(),
        PlacementEvent::PlacementWaiting {
            reason: "NoMatchingResourcesAvailable".into(),
        },
    ]);
    assert_eq!(
        decide(&waiting, PlacementCommand::ExpireCreating),
        Ok(vec![])
    );
    let deleting = given(&[
        requested(),
        evaluated(),
        started(inf),
        PlacementEvent::DeletionRequested,
        PlacementEvent::DeletionStarted,
    ]);
    assert_eq!(
        decide(&deleting, PlacementCommand::ExpireCreating),
        Ok(vec![])
    );
    // The deletion destroys the pending attempt's infrastructure.
    assert_eq!(
        decide(&deleting, PlacementCommand::RecordDestroyed),
        Ok(vec![PlacementEvent::AttemptDestroyed])
    );
}

#[test]
fn a_failed_deletion_is_started_again() {
    let state = given(&[
        requested(),
        PlacementEvent::DeletionRequested,
        PlacementEvent::DeletionStarted,
        PlacementEvent::DeletionFailed {
            message: "cannot destroy".into(),
        },
    ]);
    assert_eq!(state.status, Some(PlacementStatus::DeletionFailed));
    assert_eq!(
        decide(&state, PlacementCommand::StartDeletion),
        Ok(vec![PlacementEvent::DeletionStarted])
    );
    assert_eq!(decide(&state, PlacementCommand::Delete), Ok(vec![]));
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
        decide(&state, timeout(inf)),
        Ok(vec![PlacementEvent::AttemptFailed {
            reason: "Timeout".into()
        }])
    );
    assert_eq!(decide(&state, timeout(InfId::random())), Ok(vec![]));
    let failed = given(&[
        requested(),
        evaluated(),
        started(inf),
        PlacementEvent::AttemptFailed {
            reason: "LaunchFailed".into(),
        },
    ]);
    assert_eq!(
        decide(&failed, timeout(inf)),
        Ok(vec![]),
        "an attempt that ended cannot time out"
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
