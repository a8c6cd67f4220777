//! The states IM reports for VMs and infrastructures, and IM's exact rules for
//! deriving them (`docs/api.md` §2.8, `state`).

use serde::{Deserialize, Serialize};

/// A state as IM names it on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Status {
    /// `pending`: the VM is being launched and is not up yet.
    Pending,
    /// `running`: the VM is up and contextualization has not decided about it.
    Running,
    /// `configured`: the VM is up and contextualization succeeded.
    Configured,
    /// `unconfigured`: the VM is up and contextualization failed.
    Unconfigured,
    /// `stopped`: the VM exists but was stopped.
    Stopped,
    /// `off`: the VM is gone from its cloud (destroyed) or powered off.
    Off,
    /// `failed`: the VM's launch failed; for an infrastructure, a VM failed or its
    /// contextualization did.
    Failed,
    /// `unknown`: the state cannot be told from what is known.
    Unknown,
    /// `deleting`: the VM's removal, or the infrastructure's destruction, is under
    /// way.
    Deleting,
}

impl Status {
    /// The state's name on the wire (lower case, as IM writes it).
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Running => "running",
            Status::Configured => "configured",
            Status::Unconfigured => "unconfigured",
            Status::Stopped => "stopped",
            Status::Off => "off",
            Status::Failed => "failed",
            Status::Unknown => "unknown",
            Status::Deleting => "deleting",
        }
    }

    /// The state named `text` on the wire; `None` for any other text, case
    /// included.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "pending" => Status::Pending,
            "running" => Status::Running,
            "configured" => Status::Configured,
            "unconfigured" => Status::Unconfigured,
            "stopped" => Status::Stopped,
            "off" => Status::Off,
            "failed" => Status::Failed,
            "unknown" => Status::Unknown,
            "deleting" => Status::Deleting,
            _ => return None,
        })
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether contextualization has decided about a VM (IM's `is_configured()`):
/// `None` while it runs or has not run, then success or failure.
pub type Configured = Option<bool>;

/// IM's VM state refinement (§4.2 step 4): a VM the cloud reports up is `running`
/// until contextualization decides, then `configured` or `unconfigured`.
pub fn refine_vm_status(cloud_status: Status, configured: Configured) -> Status {
    match cloud_status {
        Status::Running | Status::Configured | Status::Unconfigured => match configured {
            None => Status::Running,
            Some(true) => Status::Configured,
            Some(false) => Status::Unconfigured,
        },
        other => other,
    }
}

/// IM's aggregation of VM states into the infrastructure's state (§4.3), order
/// dependence included: `vm_states` must be the live VMs in id order.
///
/// `infrastructure_configured` is IM's infrastructure-level flag, `deleting` whether
/// a destruction is under way (it overrides everything).
pub fn aggregate_status(
    vm_states: impl IntoIterator<Item = Status>,
    infrastructure_configured: Configured,
    deleting: bool,
) -> Status {
    let mut state: Option<Status> = None;
    let mut any_vm = false;
    for vm in vm_states {
        any_vm = true;
        match vm {
            Status::Failed | Status::Unknown => {
                state = Some(vm);
                break;
            }
            Status::Pending => state = Some(Status::Pending),
            Status::Running => {
                if state != Some(Status::Pending) {
                    state = Some(Status::Running);
                }
            }
            Status::Stopped | Status::Off | Status::Configured => {
                if state.is_none() {
                    state = Some(vm);
                }
            }
            Status::Unconfigured => {
                if matches!(state, None | Some(Status::Configured)) {
                    state = Some(Status::Unconfigured);
                }
            }
            Status::Deleting => {}
        }
    }
    let state = state.unwrap_or(match infrastructure_configured {
        Some(false) => Status::Failed,
        None if !any_vm => Status::Pending,
        _ => Status::Unknown,
    });
    if deleting {
        Status::Deleting
    } else {
        state
    }
}

#[cfg(test)]
mod tests {
    use super::Status::*;
    use super::*;

    #[test]
    fn the_first_vm_wins_for_stopped_and_configured() {
        assert_eq!(
            aggregate_status([Stopped, Configured, Configured], None, false),
            Stopped
        );
        assert_eq!(
            aggregate_status([Configured, Stopped, Configured], None, false),
            Configured
        );
        assert_eq!(aggregate_status([Off, Stopped], None, false), Off);
    }

    #[test]
    fn failed_and_unknown_stop_the_walk() {
        assert_eq!(
            aggregate_status([Running, Failed, Unknown], None, false),
            Failed
        );
        assert_eq!(
            aggregate_status([Configured, Unknown, Failed], None, false),
            Unknown
        );
    }

    #[test]
    fn pending_sticks_against_running_but_not_against_later_pending_rules() {
        assert_eq!(aggregate_status([Pending, Running], None, false), Pending);
        assert_eq!(aggregate_status([Running, Pending], None, false), Pending);
        assert_eq!(
            aggregate_status([Configured, Running], None, false),
            Running
        );
        assert_eq!(aggregate_status([Stopped, Running], None, false), Running);
    }

    #[test]
    fn unconfigured_overrides_configured_only() {
        assert_eq!(
            aggregate_status([Configured, Unconfigured], None, false),
            Unconfigured
        );
        assert_eq!(
            aggregate_status([Stopped, Unconfigured], None, false),
            Stopped
        );
        assert_eq!(
            aggregate_status([Unconfigured, Configured], None, false),
            Unconfigured
        );
    }

    #[test]
    fn deleting_vms_are_ignored() {
        assert_eq!(
            aggregate_status([Deleting, Configured], None, false),
            Configured
        );
        assert_eq!(aggregate_status([Deleting], Some(true), false), Unknown);
    }

    #[test]
    fn without_vm_states_the_flags_decide() {
        assert_eq!(aggregate_status([], Some(false), false), Failed);
        assert_eq!(aggregate_status([], None, false), Pending);
        assert_eq!(aggregate_status([], Some(true), false), Unknown);
        assert_eq!(aggregate_status([Deleting], None, false), Unknown);
    }

    #[test]
    fn deleting_overrides_everything() {
        assert_eq!(aggregate_status([Failed], Some(false), true), Deleting);
        assert_eq!(aggregate_status([], None, true), Deleting);
    }

    #[test]
    fn refinement_follows_contextualization() {
        assert_eq!(refine_vm_status(Running, None), Running);
        assert_eq!(refine_vm_status(Running, Some(true)), Configured);
        assert_eq!(refine_vm_status(Configured, Some(false)), Unconfigured);
        assert_eq!(refine_vm_status(Stopped, Some(true)), Stopped);
        assert_eq!(refine_vm_status(Failed, Some(true)), Failed);
    }
}
