//! Decisions of a VM. A VM command is decided in two steps around its cloud call:
//! [`decide`] says whether the cloud must be called at all (or refuses), and
//! [`record`] turns the cloud's answer into events. Both are pure.

use infralog_events::domain::vm::{VmEvent, VmPhase, VmState};
use infralog_events::domain::{CloudRef, FeatureFact};

use super::DomainError;

/// What can be asked of a VM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VmCommand {
    Launch,
    Stop,
    Start,
    Reboot,
    Alter,
    Snapshot,
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

/// The cloud's answer to a command.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Launched {
        cloud: CloudRef,
        cloud_vm_id: String,
        facts: Vec<FeatureFact>,
        new_password: Option<String>,
    },
    LaunchFailed {
        cloud: CloudRef,
        message: String,
    },
    Stopped,
    Started,
    Rebooted,
    Altered {
        facts: Vec<FeatureFact>,
    },
    SnapshotTaken {
        disk: u32,
        image_url: String,
        auto_delete: bool,
    },
    Destroyed,
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

/// The events that record the cloud's answer.
pub fn record(state: &VmState, outcome: Outcome) -> Vec<VmEvent> {
    match (&state.phase, outcome) {
        (VmPhase::Destroyed, _) => Vec::new(),
        (
            VmPhase::Unlaunched,
            Outcome::Launched {
                cloud,
                cloud_vm_id,
                facts,
                new_password,
            },
        ) => vec![VmEvent::Launched {
            cloud,
            cloud_vm_id,
            facts,
            new_password,
        }],
        (VmPhase::Unlaunched, Outcome::LaunchFailed { cloud, message }) => {
            vec![VmEvent::LaunchFailed { cloud, message }]
        }
        (_, Outcome::Launched { .. } | Outcome::LaunchFailed { .. }) => Vec::new(),
        (VmPhase::Running(_), Outcome::Stopped) => vec![VmEvent::Stopped],
        (VmPhase::Stopped(_), Outcome::Started) => vec![VmEvent::Started],
        (_, Outcome::Stopped | Outcome::Started) => Vec::new(),
        (_, Outcome::Rebooted) => vec![VmEvent::Rebooted],
        (_, Outcome::Altered { facts }) => vec![VmEvent::Altered { facts }],
        (
            _,
            Outcome::SnapshotTaken {
                disk,
                image_url,
                auto_delete,
            },
        ) => vec![VmEvent::SnapshotTaken {
            disk,
            image_url,
            auto_delete,
        }],
        (_, Outcome::Destroyed) => vec![VmEvent::Destroyed],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use infralog_events::domain::vm::fold;

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
        let outcome = Outcome::Launched {
            cloud: dummy(),
            cloud_vm_id: "1700000000001".into(),
            facts: vec![FeatureFact::text("provider.type", "Dummy")],
            new_password: Some("Abcdefg1".into()),
        };
        assert_eq!(record(&given(&[]), outcome.clone()), vec![launched()]);
        assert_eq!(record(&given(&[launched()]), outcome), vec![]);
    }

    #[test]
    fn stopping_a_running_vm_records_it_stopped_and_again_records_nothing() {
        let running = given(&[launched()]);
        assert_eq!(decide(&running, &VmCommand::Stop), Ok(Plan::CallCloud));
        assert_eq!(record(&running, Outcome::Stopped), vec![VmEvent::Stopped]);
        let stopped = given(&[launched(), VmEvent::Stopped]);
        assert_eq!(decide(&stopped, &VmCommand::Stop), Ok(Plan::CallCloud));
        assert_eq!(record(&stopped, Outcome::Stopped), vec![]);
        assert_eq!(record(&stopped, Outcome::Started), vec![VmEvent::Started]);
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
        assert_eq!(record(&destroyed, Outcome::Destroyed), vec![]);
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
            Outcome::SnapshotTaken {
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
}
