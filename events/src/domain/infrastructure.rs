//! The infrastructure stream: what happened to an infrastructure as a whole, and the
//! fold ([`evolve`]) that rebuilds the state its actor decides on.
//!
//! Side effects are recorded twice: as an intent before they start
//! ([`InfrastructureEvent::ResourcesRequested`], `…RemovalRequested`,
//! `DestructionStarted`, `ContextualizationStarted`) and as an outcome after they end,
//! so a restart finds unfinished work in the log and resumes it.

use serde::{Deserialize, Serialize};

use super::facts::{CloudRef, OwnerRecord};
use super::ids::VmId;

/// The events of an infrastructure stream. Names are in the past tense.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum InfrastructureEvent {
    /// The infrastructure exists, owned by these owners.
    Created {
        /// Who may use it: the identities that created it.
        owners: Vec<OwnerRecord>,
        /// The TOSCA document it was created from, if any.
        tosca: Option<String>,
    },
    /// Intent: launch these VMs. `radl` is the infrastructure's RADL from now on
    /// (the stored RADL merged with the request, deploys replaced); `request_radl`
    /// is the request with its references resolved, which the new VMs are made of
    /// (IM's `requested_radl`), when it differs from `radl` (it does not on create).
    ResourcesRequested {
        /// The infrastructure's RADL from now on.
        radl: String,
        /// The resolved request the new VMs are made of; `None` when it is `radl`.
        request_radl: Option<String>,
        /// The VMs to launch, in id order.
        vms: Vec<PlannedVm>,
        /// How contextualization follows the launches (`None`: it does not, IM's
        /// `context=false`).
        contextualization: Option<ContextualizationPlan>,
    },
    /// Outcome: the launches of the last request ended.
    ResourcesLaunched {
        /// The VMs now running in their cloud.
        launched: Vec<VmId>,
        /// The VMs whose launch failed, with the cloud's reason.
        failed: Vec<FailedLaunch>,
    },
    /// Intent: finalize these VMs.
    RemovalRequested {
        /// The VMs to finalize.
        vm_ids: Vec<VmId>,
        /// How contextualization follows the removal (`None`: it does not).
        contextualization: Option<ContextualizationPlan>,
    },
    /// Outcome: these VMs are gone.
    ResourcesRemoved {
        /// The VMs removed; their slots stay, as removed.
        vm_ids: Vec<VmId>,
    },
    /// The RADL changed without launching anything (reconfigure, add without deploys).
    RadlUpdated {
        /// The infrastructure's RADL from now on.
        radl: String,
    },
    /// A contextualization run began; it replaces any run before it.
    ContextualizationStarted {
        /// The run's number: one more than the last run's (the first is 1).
        run: u32,
        /// How the run goes.
        plan: ContextualizationPlan,
        /// When it began (milliseconds since the epoch), so a restart knows how long
        /// is left.
        started_at_ms: i64,
        /// The VMs it configures.
        vm_ids: Vec<VmId>,
    },
    /// A progress line of a run, for the contextualization log.
    ContextualizationProgressed {
        /// The run the line belongs to.
        run: u32,
        /// The line, as the contextualization log shows it.
        message: String,
    },
    /// A run ended.
    ContextualizationFinished {
        /// The run that ended; the end of an older run is ignored.
        run: u32,
        /// Whether the run configured its VMs (IM's `configured` flag).
        configured: bool,
    },
    /// The owners are now exactly these.
    OwnersChanged {
        /// The whole new list of owners, not a change to the old one.
        owners: Vec<OwnerRecord>,
    },
    /// Intent: destroy everything.
    DestructionStarted {
        /// Whether a cloud's refusal is ignored and the destruction goes on
        /// (IM's `force`).
        force: bool,
    },
    /// The destruction stopped short (a cloud refused and `force` was not set); the
    /// infrastructure is live again.
    DestructionFailed {
        /// Why it stopped, as the cloud said it.
        message: String,
    },
    /// Outcome: destroyed. The id answers 404 from now on.
    Destroyed,
    /// Exported with `delete`: no longer served, but importable again.
    Evicted,
    /// The infrastructure was imported (IM's `PUT /infrastructures`) and is as the
    /// source described it, owned by the importer. Its VMs' own streams got their
    /// [`super::vm::VmEvent::Imported`] before this event, which is the commit point:
    /// without it the import did not happen. The event carries everything the read
    /// side needs, so it never depends on those VM events.
    ///
    /// New variants go at the end: postcard stores the variant's index, so old logs
    /// keep decoding with schema 1.
    Imported(Box<ImportedInfrastructure>),
    /// The TOSCA document is now this one (a TOSCA add merged into the stored one).
    /// Appended after `Imported`, so that the postcard index of every older variant, and so every
    /// stored event, is unchanged.
    ToscaUpdated {
        /// The whole TOSCA document from now on.
        tosca: String,
    },
    /// A history boundary: the id, destroyed or evicted, is being imported again.
    /// Everything before this event belongs to an earlier life of the id, which
    /// the owners from now on must not see: history readers start here, and the
    /// fold starts again from an empty stream. The import's VM events and its
    /// `Imported` event follow.
    EpochStarted,
    /// Output of a real contextualization run (Ansible's), in batches, for the
    /// contextualization log after IM's own progress lines.
    ContextualizationOutput {
        /// The run the output belongs to.
        run: u32,
        /// The VM whose log it also goes to; `None` for the infrastructure's alone.
        vm_id: Option<VmId>,
        /// The output, whole lines.
        text: String,
    },
}

/// An infrastructure as an import found it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportedInfrastructure {
    /// Who may use it: the importer.
    pub owners: Vec<OwnerRecord>,
    /// The TOSCA document it was created from; `None` when it was made from RADL.
    pub tosca: Option<String>,
    /// The infrastructure's whole RADL as the source stored it.
    pub radl: String,
    /// VM `i` has id `i`, destroyed ones included.
    pub vms: Vec<ImportedVm>,
    /// IM's infrastructure-level `configured` flag.
    pub configured: Option<bool>,
    /// The infrastructure's contextualization log as the source printed it.
    pub contmsg: String,
    /// Snapshot images to delete when the infrastructure is destroyed.
    pub auto_delete_snapshots: Vec<String>,
    /// When the source created it (seconds since the epoch).
    pub created_at_s: i64,
}

/// A VM as an import found it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportedVm {
    /// The name of the RADL `system` the VM runs.
    pub system: String,
    /// The cloud the VM lives in.
    pub cloud: CloudRef,
    /// What the VM was made of (IM's `requested_radl`).
    pub requested_radl: String,
    /// The VM's whole RADL document as the source last saw it (IM's `info`).
    pub info_radl: String,
    /// The VM's id in its cloud; `None` when the cloud never gave one (a failed
    /// launch).
    pub cloud_vm_id: Option<String>,
    /// Where the VM stands in its cloud.
    pub status: ImportedVmStatus,
    /// IM's per-VM `configured` flag.
    pub configured: Option<bool>,
    /// When the source created the VM (seconds since the epoch).
    pub created_at_s: i64,
}

/// Where an imported VM stands in its cloud.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ImportedVmStatus {
    /// The VM exists and runs.
    Running,
    /// The VM exists but is stopped.
    Stopped,
    /// The launch failed; the VM never existed in its cloud.
    Failed {
        /// Why, as the source recorded it.
        message: String,
    },
    /// The VM was destroyed; its slot is kept so ids stay positions.
    Destroyed,
}

impl ImportedVmStatus {
    fn slot_phase(&self) -> SlotPhase {
        match self {
            ImportedVmStatus::Running | ImportedVmStatus::Stopped => SlotPhase::Launched,
            ImportedVmStatus::Failed { .. } => SlotPhase::Failed,
            ImportedVmStatus::Destroyed => SlotPhase::Removed,
        }
    }
}

impl InfrastructureEvent {
    /// The stable name stored in the envelope.
    pub fn event_type(&self) -> &'static str {
        match self {
            InfrastructureEvent::Created { .. } => "InfrastructureCreated",
            InfrastructureEvent::ResourcesRequested { .. } => "ResourcesRequested",
            InfrastructureEvent::ResourcesLaunched { .. } => "ResourcesLaunched",
            InfrastructureEvent::RemovalRequested { .. } => "RemovalRequested",
            InfrastructureEvent::ResourcesRemoved { .. } => "ResourcesRemoved",
            InfrastructureEvent::RadlUpdated { .. } => "RadlUpdated",
            InfrastructureEvent::ContextualizationStarted { .. } => "ContextualizationStarted",
            InfrastructureEvent::ContextualizationProgressed { .. } => {
                "ContextualizationProgressed"
            }
            InfrastructureEvent::ContextualizationFinished { .. } => "ContextualizationFinished",
            InfrastructureEvent::OwnersChanged { .. } => "OwnersChanged",
            InfrastructureEvent::DestructionStarted { .. } => "DestructionStarted",
            InfrastructureEvent::DestructionFailed { .. } => "DestructionFailed",
            InfrastructureEvent::Destroyed => "InfrastructureDestroyed",
            InfrastructureEvent::Evicted => "InfrastructureEvicted",
            InfrastructureEvent::Imported(_) => "InfrastructureImported",
            InfrastructureEvent::ToscaUpdated { .. } => "ToscaUpdated",
            InfrastructureEvent::EpochStarted => EPOCH_STARTED,
            InfrastructureEvent::ContextualizationOutput { .. } => "ContextualizationOutput",
        }
    }
}

/// The stored type of [`InfrastructureEvent::EpochStarted`], which history readers
/// look for without decoding every event.
pub const EPOCH_STARTED: &str = "EpochStarted";

/// A VM to launch: its id, the system it runs and the cloud chosen for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedVm {
    /// The id the VM gets: its position in the infrastructure.
    pub vm_id: VmId,
    /// The name of the RADL `system` the VM runs.
    pub system: String,
    /// The cloud chosen to launch it in.
    pub cloud: CloudRef,
    /// Whether the launch sets a random `disk.0.os.credentials.new.password` (IM does
    /// when the system has a password and no new one).
    pub new_password: bool,
}

/// A VM whose launch failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedLaunch {
    /// The VM that is not running.
    pub vm_id: VmId,
    /// Why, as the cloud said it.
    pub message: String,
}

/// How a contextualization run goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ContextualizationPlan {
    /// The RADL disables it (`contextualize ()`, non-Ansible items only, or every
    /// configure empty): VMs are configured at once.
    Disabled,
    /// Simulated for the Dummy cloud: progress lines, then success after the delay.
    Simulated {
        /// How long the run lasts before it succeeds, in milliseconds.
        duration_ms: u64,
    },
    /// Real: the RADL's `configure` recipes run by `ansible-playbook` against the
    /// VMs, in IM's step order. (New variants go at the end: postcard stores the
    /// variant's index.)
    Ansible {
        /// The longest the run may take (the RADL's `contextualize N`), in seconds.
        max_time_s: u64,
    },
}

/// A VM slot as the infrastructure sees it. Slots are never removed: a VM's id is
/// its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmSlot {
    /// The name of the RADL `system` the VM runs.
    pub system: String,
    /// The cloud the VM was launched in (or was to be).
    pub cloud: CloudRef,
    /// See [`PlannedVm::new_password`].
    pub new_password: bool,
    /// Where the VM's launch or removal stands.
    pub phase: SlotPhase,
}

/// Where a VM slot stands: launching, running or failed, removing, removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotPhase {
    /// Requested, launch outcome not recorded yet.
    Launching,
    /// The launch succeeded: the VM exists in its cloud.
    Launched,
    /// The launch failed; the VM still counts (IM keeps failed VMs) until removed.
    Failed,
    /// Removal requested, outcome not recorded yet.
    Removing,
    /// The VM is gone; the slot stays so ids remain positions.
    Removed,
}

impl SlotPhase {
    /// Whether the VM still counts (IM's `get_vm_list()`: not destroyed).
    pub fn is_live(self) -> bool {
        !matches!(self, SlotPhase::Removed)
    }
}

/// The contextualization of an infrastructure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Contextualization {
    /// No run yet.
    NotStarted,
    /// A run is under way.
    Running {
        /// The run's number (the first is 1).
        run: u32,
        /// How the run goes.
        plan: ContextualizationPlan,
        /// When it began (milliseconds since the epoch).
        started_at_ms: i64,
        /// The VMs it configures.
        vm_ids: Vec<VmId>,
    },
    /// The last run ended.
    Finished {
        /// The run's number; 0 for the state an import brought.
        run: u32,
        /// Whether the run configured its VMs (IM's `configured` flag).
        configured: bool,
    },
}

impl Contextualization {
    /// The number of the latest run, running or finished; 0 when none started.
    pub fn last_run(&self) -> u32 {
        match self {
            Contextualization::NotStarted => 0,
            Contextualization::Running { run, .. } | Contextualization::Finished { run, .. } => {
                *run
            }
        }
    }
}

/// A live infrastructure: what decisions need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveInfrastructure {
    /// Who may use it.
    pub owners: Vec<OwnerRecord>,
    /// The infrastructure's whole RADL; empty until the first request.
    pub radl: String,
    /// The TOSCA document it is described by; `None` when it was made from RADL.
    pub tosca: Option<String>,
    /// Every VM slot ever used, removed ones included; index `i` is VM `i`.
    pub vms: Vec<VmSlot>,
    /// VMs of a request whose launches have not all been recorded (IM's "adding").
    pub adding: Vec<VmId>,
    /// How contextualization follows the launches under way.
    pub adding_plan: Option<ContextualizationPlan>,
    /// VMs whose removal was requested and not yet recorded.
    pub removing: Vec<VmId>,
    /// How contextualization follows the removal under way.
    pub removing_plan: Option<ContextualizationPlan>,
    /// Where the latest contextualization run stands.
    pub contextualization: Contextualization,
    /// IM's infrastructure-level `configured` flag.
    pub configured: Option<bool>,
}

impl LiveInfrastructure {
    fn new(owners: Vec<OwnerRecord>, tosca: Option<String>) -> Self {
        LiveInfrastructure {
            owners,
            radl: String::new(),
            tosca,
            vms: Vec::new(),
            adding: Vec::new(),
            adding_plan: None,
            removing: Vec::new(),
            removing_plan: None,
            contextualization: Contextualization::NotStarted,
            configured: None,
        }
    }

    fn imported(imported: &ImportedInfrastructure) -> Self {
        let mut live = LiveInfrastructure::new(imported.owners.clone(), imported.tosca.clone());
        live.radl.clone_from(&imported.radl);
        live.vms = imported
            .vms
            .iter()
            .map(|vm| VmSlot {
                system: vm.system.clone(),
                cloud: vm.cloud.clone(),
                new_password: false,
                phase: vm.status.slot_phase(),
            })
            .collect();
        live.configured = imported.configured;
        if let Some(configured) = imported.configured {
            live.contextualization = Contextualization::Finished { run: 0, configured };
        }
        live
    }

    /// The id the next VM gets.
    pub fn next_vm_id(&self) -> VmId {
        VmId(self.vms.len() as u32)
    }

    /// The slot of this VM; `None` when the id was never given.
    pub fn slot(&self, vm: VmId) -> Option<&VmSlot> {
        self.vms.get(vm.0 as usize)
    }

    /// The ids of the VMs that still count, in id order.
    pub fn live_vm_ids(&self) -> Vec<VmId> {
        self.vms
            .iter()
            .enumerate()
            .filter(|(_, slot)| slot.phase.is_live())
            .map(|(i, _)| VmId(i as u32))
            .collect()
    }
}

/// The lifecycle of an infrastructure; each phase holds only its own data.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum InfrastructurePhase {
    /// The stream is empty.
    #[default]
    Unborn,
    /// It exists and takes requests.
    Live(LiveInfrastructure),
    /// Destruction under way.
    Destroying {
        /// The infrastructure as it was when the destruction started; it is live
        /// again if the destruction fails.
        infrastructure: LiveInfrastructure,
        /// Whether a cloud's refusal is ignored (IM's `force`).
        force: bool,
    },
    /// Destroyed for good: the id answers 404.
    Destroyed,
    /// Exported with `delete`: gone from this instance until imported again.
    Evicted,
}

/// The state of one infrastructure stream after folding its events.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InfrastructureState {
    /// The stream version the state reflects (its number of events).
    pub version: u64,
    /// Where the infrastructure is in its lifecycle, with that phase's data.
    pub phase: InfrastructurePhase,
}

impl InfrastructureState {
    /// The infrastructure data while it is live; `None` in every other phase.
    pub fn live(&self) -> Option<&LiveInfrastructure> {
        match &self.phase {
            InfrastructurePhase::Live(live) => Some(live),
            _ => None,
        }
    }

    /// The infrastructure data while it exists (live or being destroyed).
    pub fn existing(&self) -> Option<&LiveInfrastructure> {
        match &self.phase {
            InfrastructurePhase::Live(live)
            | InfrastructurePhase::Destroying {
                infrastructure: live,
                ..
            } => Some(live),
            _ => None,
        }
    }
}

/// Applies one event. Pure, total and without business rules: every decision was
/// taken by `decide` before the event was written, so an event that does not fit
/// the phase (which a correct log never holds) leaves the phase unchanged.
pub fn evolve(mut state: InfrastructureState, event: &InfrastructureEvent) -> InfrastructureState {
    state.version += 1;
    state.phase = match (state.phase, event) {
        // A new life of the id: nothing of the earlier one carries over.
        (_, InfrastructureEvent::EpochStarted) => InfrastructurePhase::Unborn,
        (InfrastructurePhase::Unborn, InfrastructureEvent::Created { owners, tosca })
        | (InfrastructurePhase::Evicted, InfrastructureEvent::Created { owners, tosca })
        | (InfrastructurePhase::Destroyed, InfrastructureEvent::Created { owners, tosca }) => {
            InfrastructurePhase::Live(LiveInfrastructure::new(owners.clone(), tosca.clone()))
        }
        (
            InfrastructurePhase::Unborn
            | InfrastructurePhase::Evicted
            | InfrastructurePhase::Destroyed,
            InfrastructureEvent::Imported(imported),
        ) => InfrastructurePhase::Live(LiveInfrastructure::imported(imported)),
        (InfrastructurePhase::Live(mut live), event) => {
            match event {
                InfrastructureEvent::DestructionStarted { force } => {
                    return InfrastructureState {
                        version: state.version,
                        phase: InfrastructurePhase::Destroying {
                            infrastructure: live,
                            force: *force,
                        },
                    }
                }
                InfrastructureEvent::Destroyed => {
                    return InfrastructureState {
                        version: state.version,
                        phase: InfrastructurePhase::Destroyed,
                    }
                }
                InfrastructureEvent::Evicted => {
                    return InfrastructureState {
                        version: state.version,
                        phase: InfrastructurePhase::Evicted,
                    }
                }
                other => apply_to_live(&mut live, other),
            }
            InfrastructurePhase::Live(live)
        }
        (
            InfrastructurePhase::Destroying {
                mut infrastructure,
                force,
            },
            event,
        ) => match event {
            InfrastructureEvent::Destroyed => InfrastructurePhase::Destroyed,
            InfrastructureEvent::DestructionFailed { .. } => {
                InfrastructurePhase::Live(infrastructure)
            }
            other => {
                apply_to_live(&mut infrastructure, other);
                InfrastructurePhase::Destroying {
                    infrastructure,
                    force,
                }
            }
        },
        (phase, _) => phase,
    };
    state
}

fn apply_to_live(live: &mut LiveInfrastructure, event: &InfrastructureEvent) {
    match event {
        InfrastructureEvent::ResourcesRequested {
            radl,
            vms,
            contextualization,
            ..
        } => {
            live.radl.clone_from(radl);
            live.adding_plan = *contextualization;
            for planned in vms {
                live.vms.push(VmSlot {
                    system: planned.system.clone(),
                    cloud: planned.cloud.clone(),
                    new_password: planned.new_password,
                    phase: SlotPhase::Launching,
                });
                live.adding.push(planned.vm_id);
            }
            if vms.is_empty() && live.configured.is_none() {
                // IM: "Infrastructure without any deploy. Exiting."
                live.configured = Some(false);
            }
        }
        InfrastructureEvent::ResourcesLaunched { launched, failed } => {
            for vm in launched {
                set_slot_phase(live, *vm, SlotPhase::Launched);
            }
            for failure in failed {
                set_slot_phase(live, failure.vm_id, SlotPhase::Failed);
            }
            live.adding.clear();
        }
        InfrastructureEvent::RemovalRequested {
            vm_ids,
            contextualization,
        } => {
            live.removing_plan = *contextualization;
            for vm in vm_ids {
                set_slot_phase(live, *vm, SlotPhase::Removing);
                if !live.removing.contains(vm) {
                    live.removing.push(*vm);
                }
            }
        }
        InfrastructureEvent::ResourcesRemoved { vm_ids } => {
            for vm in vm_ids {
                set_slot_phase(live, *vm, SlotPhase::Removed);
            }
            live.removing.retain(|vm| !vm_ids.contains(vm));
        }
        InfrastructureEvent::RadlUpdated { radl } => live.radl.clone_from(radl),
        InfrastructureEvent::ToscaUpdated { tosca } => live.tosca = Some(tosca.clone()),
        InfrastructureEvent::ContextualizationStarted {
            run,
            plan,
            started_at_ms,
            vm_ids,
        } => {
            live.configured = None;
            live.contextualization = Contextualization::Running {
                run: *run,
                plan: *plan,
                started_at_ms: *started_at_ms,
                vm_ids: vm_ids.clone(),
            };
        }
        InfrastructureEvent::ContextualizationProgressed { .. }
        | InfrastructureEvent::ContextualizationOutput { .. } => {}
        InfrastructureEvent::ContextualizationFinished { run, configured } => {
            if live.contextualization.last_run() == *run {
                live.configured = Some(*configured);
                live.contextualization = Contextualization::Finished {
                    run: *run,
                    configured: *configured,
                };
            }
        }
        InfrastructureEvent::OwnersChanged { owners } => live.owners.clone_from(owners),
        InfrastructureEvent::Created { .. }
        | InfrastructureEvent::DestructionStarted { .. }
        | InfrastructureEvent::DestructionFailed { .. }
        | InfrastructureEvent::Destroyed
        | InfrastructureEvent::Evicted
        | InfrastructureEvent::Imported(_)
        | InfrastructureEvent::EpochStarted => {}
    }
}

fn set_slot_phase(live: &mut LiveInfrastructure, vm: VmId, phase: SlotPhase) {
    if let Some(slot) = live.vms.get_mut(vm.0 as usize) {
        slot.phase = phase;
    }
}

/// Folds a whole stream.
pub fn fold<'a>(events: impl IntoIterator<Item = &'a InfrastructureEvent>) -> InfrastructureState {
    events
        .into_iter()
        .fold(InfrastructureState::default(), evolve)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::DomainEvent;

    fn cloud() -> CloudRef {
        CloudRef {
            id: "dummy".into(),
            kind: "Dummy".into(),
            host: String::new(),
        }
    }

    fn imported_vm(status: ImportedVmStatus) -> ImportedVm {
        ImportedVm {
            system: "front".into(),
            cloud: cloud(),
            requested_radl: "system front ( )".into(),
            info_radl: "system front ( )".into(),
            cloud_vm_id: Some("abc".into()),
            status,
            configured: Some(true),
            created_at_s: 1_700_000_000,
        }
    }

    fn imported() -> InfrastructureEvent {
        InfrastructureEvent::Imported(Box::new(ImportedInfrastructure {
            owners: Vec::new(),
            tosca: None,
            radl: "system front ( )\ndeploy front 1".into(),
            vms: vec![
                imported_vm(ImportedVmStatus::Running),
                imported_vm(ImportedVmStatus::Destroyed),
                imported_vm(ImportedVmStatus::Failed {
                    message: "no".into(),
                }),
            ],
            configured: Some(true),
            contmsg: "log\n".into(),
            auto_delete_snapshots: vec!["mock0://linux.for.ev.er/snap".into()],
            created_at_s: 1_700_000_000,
        }))
    }

    #[test]
    fn an_import_makes_an_unborn_or_evicted_stream_live_with_its_vms() {
        let created = InfrastructureEvent::Created {
            owners: Vec::new(),
            tosca: None,
        };
        let histories = [
            vec![imported()],
            vec![created, InfrastructureEvent::Evicted, imported()],
        ];
        for events in &histories {
            let state = fold(events);
            let live = state.live().expect("live after the import");
            assert_eq!(live.radl, "system front ( )\ndeploy front 1");
            let phases: Vec<SlotPhase> = live.vms.iter().map(|slot| slot.phase).collect();
            assert_eq!(
                phases,
                [SlotPhase::Launched, SlotPhase::Removed, SlotPhase::Failed]
            );
            assert_eq!(live.live_vm_ids(), [VmId(0), VmId(2)]);
            assert_eq!(live.next_vm_id(), VmId(3));
            assert_eq!(live.configured, Some(true));
            assert!(live.adding.is_empty());
        }
    }

    #[test]
    fn an_import_over_a_live_infrastructure_changes_nothing() {
        let created = InfrastructureEvent::Created {
            owners: Vec::new(),
            tosca: None,
        };
        let before = fold([&created]);
        let after = evolve(before.clone(), &imported());
        assert_eq!(after.phase, before.phase);
    }

    #[test]
    fn the_import_round_trips_through_the_codec_and_old_variants_keep_their_bytes() {
        let event = imported();
        let new_event = event.to_new_event(Default::default());
        let decoded = InfrastructureEvent::decode(
            &new_event.event_type,
            InfrastructureEvent::SCHEMA_VERSION,
            &new_event.payload,
        )
        .expect("decodes");
        assert_eq!(decoded, event);
        // Variant indices of schema 1 are unchanged: `Evicted` is still index 13.
        let evicted = postcard::to_stdvec(&InfrastructureEvent::Evicted).expect("encodes");
        assert_eq!(evicted, [13]);
    }

    /// Postcard stores a variant by its index: a new variant must come last, or every
    /// stored event after it would decode as another one.
    #[test]
    fn new_variants_keep_the_index_of_every_stored_one() {
        let index = |event: &InfrastructureEvent| postcard::to_allocvec(event).unwrap()[0];
        assert_eq!(index(&InfrastructureEvent::Destroyed), 12);
        assert_eq!(index(&InfrastructureEvent::Evicted), 13);
        let updated = InfrastructureEvent::ToscaUpdated {
            tosca: "a: 1\n".into(),
        };
        assert_eq!(index(&updated), 15);
        let bytes = postcard::to_allocvec(&updated).unwrap();
        assert_eq!(
            postcard::from_bytes::<InfrastructureEvent>(&bytes).unwrap(),
            updated
        );
    }

    #[test]
    fn an_epoch_starts_the_stream_again_from_nothing() {
        let created = InfrastructureEvent::Created {
            owners: Vec::new(),
            tosca: None,
        };
        let sealed = fold([
            &created,
            &InfrastructureEvent::Evicted,
            &InfrastructureEvent::EpochStarted,
        ]);
        assert_eq!(sealed.phase, InfrastructurePhase::Unborn);
        assert_eq!(sealed.version, 3);
        let reimported = evolve(sealed, &imported());
        assert_eq!(reimported.version, 4);
        assert_eq!(reimported.phase, fold([&imported()]).phase);
        let index = postcard::to_allocvec(&InfrastructureEvent::EpochStarted).expect("encodes");
        assert_eq!(index, [16]);
        assert_eq!(
            InfrastructureEvent::EpochStarted.event_type(),
            EPOCH_STARTED
        );
    }

    #[test]
    fn a_tosca_update_replaces_the_stored_document() {
        let mut state = InfrastructureState::default();
        for event in [
            InfrastructureEvent::Created {
                owners: Vec::new(),
                tosca: Some("old\n".into()),
            },
            InfrastructureEvent::ToscaUpdated {
                tosca: "new\n".into(),
            },
        ] {
            state = evolve(state, &event);
        }
        assert_eq!(state.live().and_then(|l| l.tosca.as_deref()), Some("new\n"));
    }
}
