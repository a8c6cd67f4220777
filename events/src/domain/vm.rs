//! The VM streams: what happened to one VM in its cloud, and the fold that rebuilds
//! the state its actor decides on.

use serde::{Deserialize, Serialize};

use super::facts::{CloudRef, FeatureFact};
use super::infrastructure::ImportedVmStatus;

/// The events of a VM stream. Names are in the past tense.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum VmEvent {
    /// The cloud created the VM.
    Launched {
        /// The cloud the VM runs in.
        cloud: CloudRef,
        /// The cloud's own id for the VM.
        cloud_vm_id: String,
        /// What the connector set on the VM's system (provider type, addresses,
        /// credentials), in the order it set them.
        facts: Vec<FeatureFact>,
        /// The password IM asks the VM to change to (`disk.0.os.credentials.new.password`),
        /// generated when the system had a password but no new one.
        new_password: Option<String>,
    },
    /// The cloud could not create the VM.
    LaunchFailed {
        /// The cloud that refused.
        cloud: CloudRef,
        /// Why, as the cloud said it.
        message: String,
    },
    /// The cloud stopped the VM; it still exists.
    Stopped,
    /// The cloud started the stopped VM again.
    Started,
    /// The cloud rebooted the VM; its phase does not change.
    Rebooted,
    /// The VM was resized; these features now hold.
    Altered {
        /// The features the resize set, in the order it set them.
        facts: Vec<FeatureFact>,
    },
    /// A disk image was taken.
    SnapshotTaken {
        /// The number of the disk imaged (`disk.<n>` in RADL; 0 is the boot disk).
        disk: u32,
        /// Where the cloud keeps the new image.
        image_url: String,
        /// Delete the image when the infrastructure is destroyed.
        auto_delete: bool,
    },
    /// The cloud finalized the VM.
    Destroyed,
    /// The VM came with an imported infrastructure and is as the source described
    /// it; whatever this stream held before is replaced. (New variants go at the
    /// end: postcard stores the variant's index.)
    Imported {
        /// The cloud the VM lives in.
        cloud: CloudRef,
        /// The cloud's own id for the VM; `None` when it never got one.
        cloud_vm_id: Option<String>,
        /// Where the VM stands in its cloud.
        status: ImportedVmStatus,
        /// Snapshot images to delete with the infrastructure.
        auto_delete_snapshots: Vec<String>,
    },
    /// The cloud was seen to differ from what the log said (a container killed or
    /// removed by hand, an engine restarted): reality changed without a request.
    /// (New variants go at the end: postcard stores the variant's index.)
    Observed {
        /// What the cloud showed.
        state: ObservedVmState,
        /// What the cloud said about it (an exit code, a reason), for contmsg.
        message: String,
    },
}

/// A VM's state as its cloud shows it when observed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ObservedVmState {
    /// Created, not running yet.
    Pending,
    /// Running.
    Running,
    /// Stopped (by a request or on its own with a zero exit status).
    Stopped,
    /// Ended on its own with an error, or dead.
    Failed,
    /// The cloud no longer has it.
    Gone,
}

impl VmEvent {
    /// The stable name stored in the envelope.
    pub fn event_type(&self) -> &'static str {
        match self {
            VmEvent::Launched { .. } => "VmLaunched",
            VmEvent::LaunchFailed { .. } => "VmLaunchFailed",
            VmEvent::Stopped => "VmStopped",
            VmEvent::Started => "VmStarted",
            VmEvent::Rebooted => "VmRebooted",
            VmEvent::Altered { .. } => "VmAltered",
            VmEvent::SnapshotTaken { .. } => "VmSnapshotTaken",
            VmEvent::Destroyed => "VmDestroyed",
            VmEvent::Imported { .. } => "VmImported",
            VmEvent::Observed { .. } => "VmObserved",
        }
    }
}

/// A VM the cloud knows.
#[derive(Debug, Clone, PartialEq)]
pub struct CloudVm {
    /// The cloud the VM runs in.
    pub cloud: CloudRef,
    /// The cloud's own id for the VM.
    pub cloud_vm_id: String,
    /// The disk images taken of it, oldest first.
    pub snapshots: Vec<Snapshot>,
    /// A failure its cloud was last seen in (`Failed` or `Gone`); `None` while the
    /// cloud agrees with the log.
    pub observed_failure: Option<ObservedVmState>,
}

/// A disk image taken of a VM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The number of the disk imaged (0 is the boot disk).
    pub disk: u32,
    /// Where the cloud keeps the image.
    pub image_url: String,
    /// Whether the image is deleted when the infrastructure is destroyed.
    pub auto_delete: bool,
}

/// The lifecycle of a VM; each phase holds only its own data.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum VmPhase {
    /// Nothing recorded yet (the launch is the infrastructure's intent).
    #[default]
    Unlaunched,
    /// The VM exists and runs.
    Running(CloudVm),
    /// The VM exists but is stopped.
    Stopped(CloudVm),
    /// The cloud could not create the VM; it never existed.
    LaunchFailed {
        /// The cloud that refused.
        cloud: CloudRef,
        /// Why, as the cloud said it.
        message: String,
    },
    /// The cloud finalized the VM.
    Destroyed,
}

/// The state of one VM stream after folding its events.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct VmState {
    /// The stream version the state reflects (its number of events).
    pub version: u64,
    /// Where the VM is in its lifecycle, with that phase's data.
    pub phase: VmPhase,
}

impl VmState {
    /// The cloud VM while it exists.
    pub fn cloud_vm(&self) -> Option<&CloudVm> {
        match &self.phase {
            VmPhase::Running(vm) | VmPhase::Stopped(vm) => Some(vm),
            _ => None,
        }
    }
}

/// Applies one event; like the infrastructure's, pure and free of business rules.
pub fn evolve(mut state: VmState, event: &VmEvent) -> VmState {
    state.version += 1;
    state.phase = match (state.phase, event) {
        (
            VmPhase::Unlaunched,
            VmEvent::Launched {
                cloud, cloud_vm_id, ..
            },
        ) => VmPhase::Running(CloudVm {
            cloud: cloud.clone(),
            cloud_vm_id: cloud_vm_id.clone(),
            snapshots: Vec::new(),
            observed_failure: None,
        }),
        (VmPhase::Unlaunched, VmEvent::LaunchFailed { cloud, message }) => VmPhase::LaunchFailed {
            cloud: cloud.clone(),
            message: message.clone(),
        },
        (VmPhase::Running(vm), VmEvent::Stopped) => VmPhase::Stopped(vm),
        (VmPhase::Stopped(mut vm), VmEvent::Started) => {
            vm.observed_failure = None;
            VmPhase::Running(vm)
        }
        (VmPhase::Running(mut vm) | VmPhase::Stopped(mut vm), VmEvent::Observed { state, .. }) => {
            vm.observed_failure = None;
            match state {
                ObservedVmState::Running => VmPhase::Running(vm),
                ObservedVmState::Stopped => VmPhase::Stopped(vm),
                // A container that ended on its own is not running any more.
                ObservedVmState::Failed => {
                    vm.observed_failure = Some(ObservedVmState::Failed);
                    VmPhase::Stopped(vm)
                }
                ObservedVmState::Gone => {
                    vm.observed_failure = Some(ObservedVmState::Gone);
                    VmPhase::Stopped(vm)
                }
                ObservedVmState::Pending => VmPhase::Running(vm),
            }
        }
        (
            VmPhase::Running(mut vm),
            VmEvent::SnapshotTaken {
                disk,
                image_url,
                auto_delete,
            },
        ) => {
            vm.snapshots.push(snapshot(*disk, image_url, *auto_delete));
            VmPhase::Running(vm)
        }
        (
            VmPhase::Stopped(mut vm),
            VmEvent::SnapshotTaken {
                disk,
                image_url,
                auto_delete,
            },
        ) => {
            vm.snapshots.push(snapshot(*disk, image_url, *auto_delete));
            VmPhase::Stopped(vm)
        }
        (_, VmEvent::Destroyed) => VmPhase::Destroyed,
        (
            _,
            VmEvent::Imported {
                cloud,
                cloud_vm_id,
                status,
                auto_delete_snapshots,
            },
        ) => imported_phase(cloud, cloud_vm_id.as_deref(), status, auto_delete_snapshots),
        (phase, _) => phase,
    };
    state
}

fn imported_phase(
    cloud: &CloudRef,
    cloud_vm_id: Option<&str>,
    status: &ImportedVmStatus,
    auto_delete_snapshots: &[String],
) -> VmPhase {
    let cloud_vm = |cloud_vm_id: &str| CloudVm {
        cloud: cloud.clone(),
        cloud_vm_id: cloud_vm_id.to_string(),
        snapshots: auto_delete_snapshots
            .iter()
            .map(|url| snapshot(0, url, true))
            .collect(),
        observed_failure: None,
    };
    match (status, cloud_vm_id) {
        (ImportedVmStatus::Destroyed, _) => VmPhase::Destroyed,
        (ImportedVmStatus::Running, Some(id)) => VmPhase::Running(cloud_vm(id)),
        (ImportedVmStatus::Stopped, Some(id)) => VmPhase::Stopped(cloud_vm(id)),
        (ImportedVmStatus::Failed { message }, _) => VmPhase::LaunchFailed {
            cloud: cloud.clone(),
            message: message.clone(),
        },
        // The import refuses such VMs; a log cannot hold one.
        (_, None) => VmPhase::LaunchFailed {
            cloud: cloud.clone(),
            message: "the imported VM has no cloud id".into(),
        },
    }
}

fn snapshot(disk: u32, image_url: &str, auto_delete: bool) -> Snapshot {
    Snapshot {
        disk,
        image_url: image_url.to_string(),
        auto_delete,
    }
}

/// Folds a whole stream.
pub fn fold<'a>(events: impl IntoIterator<Item = &'a VmEvent>) -> VmState {
    events.into_iter().fold(VmState::default(), evolve)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cloud() -> CloudRef {
        CloudRef {
            id: "dummy".into(),
            kind: "Dummy".into(),
            host: String::new(),
        }
    }

    fn imported(status: ImportedVmStatus) -> VmEvent {
        VmEvent::Imported {
            cloud: cloud(),
            cloud_vm_id: Some("vm-1".into()),
            status,
            auto_delete_snapshots: vec!["mock0://linux.for.ev.er/s".into()],
        }
    }

    #[test]
    fn an_import_replaces_whatever_the_stream_held() {
        let launched = VmEvent::Launched {
            cloud: cloud(),
            cloud_vm_id: "old".into(),
            facts: Vec::new(),
            new_password: None,
        };
        let state = fold([
            &launched,
            &VmEvent::Destroyed,
            &imported(ImportedVmStatus::Stopped),
        ]);
        let VmPhase::Stopped(vm) = &state.phase else {
            panic!("expected a stopped VM, got {:?}", state.phase);
        };
        assert_eq!(vm.cloud_vm_id, "vm-1");
        assert_eq!(vm.snapshots.len(), 1);
        assert!(vm.snapshots[0].auto_delete);
        assert_eq!(
            fold([&imported(ImportedVmStatus::Destroyed)]).phase,
            VmPhase::Destroyed
        );
        assert!(matches!(
            fold([&imported(ImportedVmStatus::Failed { message: "x".into() })]).phase,
            VmPhase::LaunchFailed { ref message, .. } if message == "x"
        ));
    }

    #[test]
    fn old_variants_keep_their_bytes() {
        assert_eq!(
            postcard::to_stdvec(&VmEvent::Destroyed).expect("encodes"),
            [7]
        );
    }
}
