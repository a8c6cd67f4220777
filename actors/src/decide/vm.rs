//! Decisions of a VM. A VM command is decided in two steps around its cloud call:
//! [`decide`] says whether the cloud must be called at all (or refuses), and
//! [`record`] says whether the event the cloud's answer reports is still due. Both
//! are pure.

use infralog_events::domain::vm::{ObservedVmState, VmEvent, VmPhase, VmState};

use super::DomainError;

/// What can be asked of a VM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VmCommand {
    /// Create the VM in its cloud.
    Launch,
    /// Stop (power off) the VM.
    Stop,
    /// Start a stopped VM.
    Start,
    /// Reboot the VM.
    Reboot,
    /// Resize the VM (CPUs, memory).
    Alter,
    /// Take an image of one of the VM's disks.
    Snapshot,
    /// Finalize the VM: delete it from its cloud, with its auto-delete snapshots.
    Destroy,
}

/// What the shell has to do for a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// Nothing: the VM is already as asked.
    Nothing,
    /// Call the cloud, then [`record`] its answer.
    CallCloud,
    /// Record the outcome without calling the cloud (the VM never reached it).
    RecordOnly,
}

/// Whether `command` needs the cloud, given the VM's state.
pub fn decide(state: &VmState, command: &VmCommand) -> Result<Plan, DomainError> {
    use VmCommand as C;
    match (&state.phase, command) {
        (VmPhase::Destroyed, C::Destroy) => Ok(Plan::Nothing),
        (VmPhase::Destroyed, _) => Err(DomainError::DeletedVm),
        (VmPhase::Unlaunched, C::Launch) => Ok(Plan::CallCloud),
        (_, C::Launch) => Ok(Plan::Nothing),
        (VmPhase::Unlaunched | VmPhase::LaunchFailed { .. }, C::Destroy) => Ok(Plan::RecordOnly),
        (VmPhase::Unlaunched, _) => Err(DomainError::NotLaunched(
            "its launch has not finished".into(),
        )),
        (VmPhase::LaunchFailed { message, .. }, _) => {
            Err(DomainError::NotLaunched(message.clone()))
        }
        (VmPhase::Running(_) | VmPhase::Stopped(_), _) => Ok(Plan::CallCloud),
    }
}

/// The events that record the cloud's answer, given as the event it would be
/// recorded by: none when the VM already is as the answer says (a launch resumed
/// after it was recorded, a stop of a stopped VM, anything after the VM was
/// destroyed). An import is not a cloud's answer: it is recorded whatever the
/// state, as the import describes the VM anew.
pub fn record(state: &VmState, answer: VmEvent) -> Vec<VmEvent> {
    use VmEvent as E;
    match (&state.phase, answer) {
        (_, imported @ E::Imported { .. }) => vec![imported],
        (VmPhase::Destroyed, _) => Vec::new(),
        (VmPhase::Unlaunched, answer @ (E::Launched { .. } | E::LaunchFailed { .. })) => {
            vec![answer]
        }
        (_, E::Launched { .. } | E::LaunchFailed { .. }) => Vec::new(),
        (VmPhase::Running(_), E::Stopped) => vec![E::Stopped],
        (VmPhase::Stopped(_), E::Started) => vec![E::Started],
        (_, E::Stopped | E::Started) => Vec::new(),
        // An observation is recorded only of a VM that exists in its cloud.
        (VmPhase::Running(_) | VmPhase::Stopped(_), observed @ E::Observed { .. }) => {
            vec![observed]
        }
        (_, E::Observed { .. }) => Vec::new(),
        (
            _,
            answer @ (E::Rebooted | E::Altered { .. } | E::SnapshotTaken { .. } | E::Destroyed),
        ) => {
            vec![answer]
        }
    }
}

/// What an observation of the VM's cloud adds to the log: an `Observed` event when
/// the cloud disagrees with the log, nothing when it agrees. A stopped VM whose
/// container ended (with whatever status a stop leaves) agrees with the log; one
/// seen `Pending` is still starting and says nothing yet.
pub fn observed(state: &VmState, seen: ObservedVmState, message: &str) -> Option<VmEvent> {
    use ObservedVmState as O;
    let (running, failure) = match &state.phase {
        VmPhase::Running(vm) => (true, vm.observed_failure),
        VmPhase::Stopped(vm) => (false, vm.observed_failure),
        _ => return None,
    };
    let agrees = match (running, failure, seen) {
        (_, _, O::Pending) => true,
        (_, Some(failure), seen) => failure == seen,
        (true, None, seen) => seen == O::Running,
        (false, None, seen) => matches!(seen, O::Stopped | O::Failed),
    };
    (!agrees).then(|| VmEvent::Observed {
        state: seen,
        message: message.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use infralog_events::domain::vm::fold;
    use infralog_events::domain::{CloudRef, FeatureFact};

    fn dummy() -> CloudRef {
        CloudRef {
            id: "dummy".into(),
            kind: "Dummy".into(),
            host: String::new(),
        }
    }

    fn launched() -> VmEvent {
        VmEvent::Launched {
            cloud: dummy(),
            cloud_vm_id: "1700000000001".into(),
            facts: vec![FeatureFact::text("provider.type", "Dummy")],
            new_password: Some("Abcdefg1".into()),
        }
    }

    fn given(events: &[VmEvent]) -> VmState {
        fold(events)
    }

    #[test]
    fn an_unlaunched_vm_is_launched_once() {
        assert_eq!(decide(&given(&[]), &VmCommand::Launch), Ok(Plan::CallCloud));
        assert_eq!(
            decide(&given(&[launched()]), &VmCommand::Launch),
            Ok(Plan::Nothing)
        );
        assert_eq!(record(&given(&[]), launched()), vec![launched()]);
        assert_eq!(record(&given(&[launched()]), launched()), vec![]);
    }

    #[test]
    fn stopping_a_running_vm_records_it_stopped_and_again_records_nothing() {
        let running = given(&[launched()]);
        assert_eq!(decide(&running, &VmCommand::Stop), Ok(Plan::CallCloud));
        assert_eq!(record(&running, VmEvent::Stopped), vec![VmEvent::Stopped]);
        let stopped = given(&[launched(), VmEvent::Stopped]);
        assert_eq!(decide(&stopped, &VmCommand::Stop), Ok(Plan::CallCloud));
        assert_eq!(record(&stopped, VmEvent::Stopped), vec![]);
        assert_eq!(record(&stopped, VmEvent::Started), vec![VmEvent::Started]);
    }

    #[test]
    fn a_destroyed_vm_refuses_everything_but_destroy() {
        let destroyed = given(&[launched(), VmEvent::Destroyed]);
        for command in [
            VmCommand::Stop,
            VmCommand::Start,
            VmCommand::Reboot,
            VmCommand::Alter,
            VmCommand::Snapshot,
        ] {
            assert!(matches!(
                decide(&destroyed, &command),
                Err(DomainError::DeletedVm)
            ));
        }
        assert_eq!(decide(&destroyed, &VmCommand::Destroy), Ok(Plan::Nothing));
        assert_eq!(record(&destroyed, VmEvent::Destroyed), vec![]);
    }

    #[test]
    fn a_failed_launch_is_destroyed_without_calling_the_cloud() {
        let failed = given(&[VmEvent::LaunchFailed {
            cloud: dummy(),
            message: "quota exceeded".into(),
        }]);
        assert_eq!(decide(&failed, &VmCommand::Destroy), Ok(Plan::RecordOnly));
        assert_eq!(
            decide(&failed, &VmCommand::Stop),
            Err(DomainError::NotLaunched("quota exceeded".into()))
        );
    }

    #[test]
    fn snapshots_keep_the_vm_phase() {
        let stopped = given(&[launched(), VmEvent::Stopped]);
        let events = record(
            &stopped,
            VmEvent::SnapshotTaken {
                disk: 0,
                image_url: "mock0://linux.for.ev.er/img".into(),
                auto_delete: true,
            },
        );
        let mut all = vec![launched(), VmEvent::Stopped];
        all.extend(events);
        let state = fold(&all);
        assert!(matches!(state.phase, VmPhase::Stopped(ref vm) if vm.snapshots.len() == 1));
    }

    #[test]
    fn an_import_is_recorded_whatever_the_vm_was() {
        let imported = VmEvent::Imported {
            cloud: dummy(),
            cloud_vm_id: Some("1700000000002".into()),
            status: infralog_events::domain::infrastructure::ImportedVmStatus::Running,
            auto_delete_snapshots: Vec::new(),
        };
        for earlier in [vec![], vec![launched(), VmEvent::Destroyed]] {
            assert_eq!(
                record(&given(&earlier), imported.clone()),
                vec![imported.clone()]
            );
        }
    }

    fn seen(events: &[VmEvent], state: ObservedVmState) -> Option<VmEvent> {
        observed(&given(events), state, "exit code 137")
    }

    #[test]
    fn an_observation_that_agrees_with_the_log_adds_nothing() {
        assert_eq!(seen(&[launched()], ObservedVmState::Running), None);
        assert_eq!(seen(&[launched()], ObservedVmState::Pending), None);
        // A stop leaves the container exited with whatever status: it agrees.
        assert_eq!(
            seen(&[launched(), VmEvent::Stopped], ObservedVmState::Stopped),
            None
        );
        assert_eq!(
            seen(&[launched(), VmEvent::Stopped], ObservedVmState::Failed),
            None
        );
        // Nothing to observe before a launch or after a destruction.
        assert_eq!(seen(&[], ObservedVmState::Gone), None);
        assert_eq!(
            seen(&[launched(), VmEvent::Destroyed], ObservedVmState::Gone),
            None
        );
    }

    #[test]
    fn a_vm_killed_or_removed_outside_is_recorded_once() {
        let killed = seen(&[launched()], ObservedVmState::Failed).expect("a difference");
        assert_eq!(
            killed,
            VmEvent::Observed {
                state: ObservedVmState::Failed,
                message: "exit code 137".into()
            }
        );
        // Once recorded, the same observation adds nothing more.
        assert_eq!(
            seen(&[launched(), killed.clone()], ObservedVmState::Failed),
            None
        );
        // The container removed afterwards is a new difference.
        assert!(seen(&[launched(), killed.clone()], ObservedVmState::Gone).is_some());
        // Started again by hand: the log learns it runs.
        let back =
            seen(&[launched(), killed.clone()], ObservedVmState::Running).expect("running again");
        let state = given(&[launched(), killed, back]);
        assert!(matches!(&state.phase, VmPhase::Running(vm) if vm.observed_failure.is_none()));
    }

    #[test]
    fn a_stopped_vm_seen_running_or_gone_is_a_difference() {
        let stopped = [launched(), VmEvent::Stopped];
        assert!(seen(&stopped, ObservedVmState::Running).is_some());
        assert!(seen(&stopped, ObservedVmState::Gone).is_some());
    }
}
