//! The read model, and how each committed event changes it.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use indexmap::IndexSet;

use infralog_events::codec::DomainEvent;
use infralog_events::domain::infrastructure::{
    ContextualizationPlan, ImportedInfrastructure, ImportedVmStatus, InfrastructureEvent,
};
use infralog_events::domain::vm::{ObservedVmState, VmEvent};
use infralog_events::domain::{CloudRef, FeatureFact, InfId, OwnerRecord, StreamOwner, VmId};
use infralog_events::Envelope;

use super::views::{
    CloudState, ContextLog, InfrastructureView, Lifecycle, VmView, CONTEXTUALIZATION_DISABLED,
};

/// Why an event could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProjectionError {
    /// The event's payload could not be decoded into a known event.
    #[error("event at position {position} does not decode: {reason}")]
    Undecodable {
        /// The event's position in the log.
        position: u64,
        /// What the decoder reported.
        reason: String,
    },
    /// The event skips positions after the last applied (or, applying a selection,
    /// does not come after it).
    #[error("event at position {position} comes after {applied}: events must be applied in order")]
    OutOfOrder {
        /// The event's position in the log.
        position: u64,
        /// The position of the last event applied.
        applied: u64,
    },
}

/// The owners' index: for each username, the owner records and the
/// infrastructures each owns, in creation order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OwnerIndex {
    by_username: HashMap<Box<str>, Vec<OwnerEntry>>,
}

/// One owner record of a username and the infrastructures it owns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnerEntry {
    /// The owner: a username and its salted password digest.
    pub owner: OwnerRecord,
    /// A set: a user may own tens of thousands, added and removed one by one.
    pub infrastructures: IndexSet<InfId>,
}

impl OwnerIndex {
    /// Every entry, by username, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &OwnerEntry)> {
        self.by_username
            .iter()
            .flat_map(|(name, entries)| entries.iter().map(move |e| (&**name, e)))
    }

    /// The entries of a username (one per distinct password digest).
    pub fn entries(&self, username: &str) -> &[OwnerEntry] {
        self.by_username
            .get(username)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    fn add(&mut self, owner: &OwnerRecord, inf: InfId) {
        let entries = self
            .by_username
            .entry(owner.username.as_str().into())
            .or_default();
        match entries.iter_mut().find(|e| e.owner == *owner) {
            Some(entry) => {
                entry.infrastructures.insert(inf);
            }
            None => entries.push(OwnerEntry {
                owner: owner.clone(),
                infrastructures: IndexSet::from([inf]),
            }),
        }
    }

    fn remove(&mut self, owner: &OwnerRecord, inf: InfId) {
        if let Some(entries) = self.by_username.get_mut(owner.username.as_str()) {
            for entry in entries.iter_mut().filter(|e| e.owner == *owner) {
                entry.infrastructures.swap_remove(&inf);
            }
            entries.retain(|e| !e.infrastructures.is_empty());
            if entries.is_empty() {
                self.by_username.remove(owner.username.as_str());
            }
        }
    }
}

/// Every infrastructure as the read endpoints see it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadModel {
    /// The last position applied.
    pub position: u64,
    /// Every infrastructure in its current life, by id: served, being destroyed,
    /// destroyed or evicted.
    pub infrastructures: HashMap<InfId, InfrastructureView>,
    /// The owners of served infrastructures.
    pub owners: OwnerIndex,
    /// The owners of every infrastructure, destroyed and evicted ones included
    /// (IM's `/stats` reports those too).
    pub owners_with_gone: OwnerIndex,
    /// Earlier lives of ids imported again (see `InfrastructureEvent::EpochStarted`),
    /// oldest first, as they were when they ended: their owners keep their `/stats`
    /// rows, and an id's owners at its last event are known even while an import of
    /// it is half-way.
    pub earlier: HashMap<InfId, Vec<InfrastructureView>>,
    /// The owners of those earlier lives.
    pub owners_of_earlier: OwnerIndex,
    /// Equal fact lists and clouds are shared between VMs: most VMs of a cloud carry
    /// the same ones, and memory per infrastructure matters.
    interned_facts: HashSet<Arc<[FeatureFact]>>,
    interned_clouds: HashSet<Arc<CloudRef>>,
    /// The IMC facade's placements (empty unless it was ever enabled).
    pub imc: super::imc::ImcSection,
    /// The Batch facade's jobs (empty unless it was ever enabled).
    pub batch: super::batch::BatchSection,
    /// The MLBench facade's runs (empty unless it was ever enabled).
    pub mlbench: super::mlbench::MlbenchSection,
}

impl ReadModel {
    /// Applies one committed envelope. Envelopes of unknown streams are skipped.
    pub fn apply(&mut self, envelope: &Envelope) -> Result<(), ProjectionError> {
        if envelope.position <= self.position {
            return Ok(());
        }
        if envelope.position != self.position + 1 {
            return Err(ProjectionError::OutOfOrder {
                position: envelope.position,
                applied: self.position,
            });
        }
        self.apply_in_order(envelope)
    }

    /// Applies an envelope of a selection of the log (one infrastructure's streams,
    /// for time travel and `verify`): positions must increase but may skip the
    /// events of other infrastructures, which never affect this one's view.
    pub fn apply_selected(&mut self, envelope: &Envelope) -> Result<(), ProjectionError> {
        if envelope.position <= self.position {
            return Err(ProjectionError::OutOfOrder {
                position: envelope.position,
                applied: self.position,
            });
        }
        self.apply_in_order(envelope)
    }

    fn apply_in_order(&mut self, envelope: &Envelope) -> Result<(), ProjectionError> {
        self.position = envelope.position;
        let undecodable = |reason: String| ProjectionError::Undecodable {
            position: envelope.position,
            reason,
        };
        match StreamOwner::parse(envelope.stream.as_str()) {
            Some(StreamOwner::Infrastructure(inf)) => {
                let event = InfrastructureEvent::from_envelope(envelope)
                    .map_err(|e| undecodable(e.to_string()))?;
                self.apply_infrastructure(inf, envelope, &event);
            }
            Some(StreamOwner::Vm(inf, vm)) => {
                let event =
                    VmEvent::from_envelope(envelope).map_err(|e| undecodable(e.to_string()))?;
                self.apply_vm(inf, vm, envelope, &event);
            }
            // Facade streams: the IMC section skips every stream not its own.
            None => {
                self.imc
                    .apply(envelope)
                    .map_err(|e| undecodable(e.to_string()))?;
                self.batch
                    .apply(envelope)
                    .map_err(|e| undecodable(e.to_string()))?;
                self.mlbench
                    .apply(envelope)
                    .map_err(|e| undecodable(e.to_string()))?;
            }
        }
        Ok(())
    }

    /// The owners of `inf` at its last event, whatever its state; `None` for an id
    /// the log never recorded.
    pub fn last_owners(&self, inf: InfId) -> Option<&[OwnerRecord]> {
        match self.infrastructures.get(&inf) {
            Some(view) => Some(&view.owners),
            None => self
                .earlier
                .get(&inf)
                .and_then(|lives| lives.last())
                .map(|view| view.owners.as_slice()),
        }
    }

    /// Ends the current life of `inf`: its view moves to the earlier lives.
    fn retire(&mut self, inf: InfId) {
        let Some(old) = self.infrastructures.remove(&inf) else {
            return;
        };
        for owner in &old.owners {
            self.owners.remove(owner, inf);
            self.owners_with_gone.remove(owner, inf);
            self.owners_of_earlier.add(owner, inf);
        }
        self.earlier.entry(inf).or_default().push(old);
    }

    fn intern_facts(&mut self, facts: &[FeatureFact]) -> Arc<[FeatureFact]> {
        if let Some(shared) = self.interned_facts.get(facts) {
            return Arc::clone(shared);
        }
        let shared: Arc<[FeatureFact]> = facts.into();
        self.interned_facts.insert(Arc::clone(&shared));
        shared
    }

    fn intern_cloud(&mut self, cloud: &CloudRef) -> Arc<CloudRef> {
        if let Some(shared) = self.interned_clouds.get(cloud) {
            return Arc::clone(shared);
        }
        let shared = Arc::new(cloud.clone());
        self.interned_clouds.insert(Arc::clone(&shared));
        shared
    }

    fn apply_infrastructure(
        &mut self,
        inf: InfId,
        envelope: &Envelope,
        event: &InfrastructureEvent,
    ) {
        use InfrastructureEvent as E;
        if let E::Created { owners, tosca } = event {
            if let Some(old) = self.infrastructures.remove(&inf) {
                for owner in &old.owners {
                    self.owners.remove(owner, inf);
                    self.owners_with_gone.remove(owner, inf);
                }
            }
            for owner in owners {
                self.owners.add(owner, inf);
                self.owners_with_gone.add(owner, inf);
            }
            self.infrastructures.insert(
                inf,
                InfrastructureView {
                    id: inf,
                    version: envelope.version,
                    last_position: envelope.position,
                    lifecycle: Lifecycle::Live,
                    owners: owners.clone(),
                    radl: Arc::from(""),
                    tosca: tosca.as_deref().map(Arc::from),
                    configured: None,
                    contmsg: ContextLog::default(),
                    contextualizing: false,
                    vms: Vec::new(),
                    created_at: envelope.recorded_at,
                    updated_at: envelope.recorded_at,
                    auto_delete_snapshots: Vec::new(),
                    unfinished_changes: false,
                    imported: false,
                    ansible_output: Arc::default(),
                },
            );
            return;
        }
        if let E::Imported(imported) = event {
            self.apply_import(inf, envelope, imported);
            return;
        }
        if let E::EpochStarted = event {
            self.retire(inf);
            return;
        }
        let mut clouds = Vec::new();
        if let E::ResourcesRequested { vms, .. } = event {
            clouds = vms.iter().map(|vm| self.intern_cloud(&vm.cloud)).collect();
        }
        let Some(view) = self.infrastructures.get_mut(&inf) else {
            tracing::warn!(%inf, position = envelope.position, "event for an unknown infrastructure");
            return;
        };
        view.version = envelope.version;
        view.last_position = envelope.position;
        view.updated_at = envelope.recorded_at;
        let at = envelope.recorded_at;
        match event {
            E::Created { .. } | E::Imported(_) | E::EpochStarted => {}
            E::ResourcesRequested {
                radl,
                request_radl,
                vms,
                contextualization: _,
            } => {
                if **radl != *view.radl {
                    view.radl = Arc::from(radl.as_str());
                }
                let launch_radl = match request_radl {
                    Some(request) => Arc::from(request.as_str()),
                    None => Arc::clone(&view.radl),
                };
                for (planned, cloud) in vms.iter().zip(clouds) {
                    view.vms.push(VmView {
                        id: planned.vm_id,
                        system: planned.system.as_str().into(),
                        launch_radl: Arc::clone(&launch_radl),
                        imported_info: None,
                        cloud,
                        cloud_vm_id: None,
                        cloud_state: CloudState::Launching,
                        configured: None,
                        facts: Vec::new(),
                        new_password: None,
                        created_at: at,
                        ansible_log: Arc::default(),
                    });
                }
                if vms.is_empty() {
                    view.contmsg
                        .push(at, "Infrastructure without any deploy. Exiting.");
                    if view.configured.is_none() {
                        view.configured = Some(false);
                    }
                } else {
                    view.unfinished_changes = true;
                }
            }
            E::ResourcesLaunched { launched, failed } => {
                view.unfinished_changes = false;
                if launched.is_empty() && !failed.is_empty() {
                    view.contmsg.push(at, "All VMs failed. No contextualize.");
                    let errors: String =
                        failed.iter().map(|f| format!("{}\n", f.message)).collect();
                    view.contmsg.push(at, &errors);
                }
            }
            E::RemovalRequested { vm_ids, .. } => {
                for vm in vm_ids {
                    if let Some(vm) = view.vms.get_mut(vm.0 as usize) {
                        vm.cloud_state = CloudState::Removing;
                    }
                }
                view.unfinished_changes = true;
            }
            E::ResourcesRemoved { .. } => view.unfinished_changes = false,
            E::RadlUpdated { radl } => view.radl = Arc::from(radl.as_str()),
            E::ToscaUpdated { tosca } => view.tosca = Some(Arc::from(tosca.as_str())),
            E::ContextualizationStarted { plan, .. } => {
                view.configured = None;
                view.contextualizing = true;
                view.ansible_output = Arc::default();
                for vm in view.vms.iter_mut().filter(|vm| vm.is_live()) {
                    vm.configured = None;
                    vm.ansible_log = Arc::default();
                }
                match plan {
                    ContextualizationPlan::Disabled => {
                        view.contmsg.reset(Some(CONTEXTUALIZATION_DISABLED));
                        for vm in view.vms.iter_mut().filter(|vm| vm.is_live()) {
                            vm.configured = Some(true);
                        }
                    }
                    ContextualizationPlan::Simulated { .. }
                    | ContextualizationPlan::Ansible { .. } => view.contmsg.reset(None),
                }
            }
            E::ContextualizationProgressed { message, .. } => view.contmsg.push(at, message),
            E::ContextualizationOutput { text, vm_id, .. } => {
                Arc::make_mut(&mut view.ansible_output).push_str(text);
                if let Some(vm) = vm_id.and_then(|vm| view.vms.get_mut(vm.0 as usize)) {
                    Arc::make_mut(&mut vm.ansible_log).push_str(text);
                }
            }
            E::ContextualizationFinished { configured, .. } => {
                view.contextualizing = false;
                view.configured = Some(*configured);
                for vm in view.vms.iter_mut().filter(|vm| vm.is_live()) {
                    vm.configured = Some(*configured);
                }
            }
            E::OwnersChanged { owners } => {
                for owner in &view.owners {
                    self.owners.remove(owner, inf);
                    self.owners_with_gone.remove(owner, inf);
                }
                for owner in owners {
                    self.owners.add(owner, inf);
                    self.owners_with_gone.add(owner, inf);
                }
                view.owners = owners.clone();
            }
            E::DestructionStarted { .. } => view.lifecycle = Lifecycle::Deleting,
            E::DestructionFailed { message } => {
                view.lifecycle = Lifecycle::Live;
                view.contmsg.push(
                    at,
                    &format!("Error destroying the infrastructure: {message}"),
                );
            }
            E::Destroyed | E::Evicted => {
                view.lifecycle = if matches!(event, E::Destroyed) {
                    Lifecycle::Destroyed
                } else {
                    Lifecycle::Evicted
                };
                for owner in &view.owners {
                    self.owners.remove(owner, inf);
                }
                // A gone infrastructure keeps only what /stats needs.
                view.contmsg = ContextLog::default();
            }
        }
    }

    /// An import replaces whatever the id held, like a creation, with the
    /// infrastructure and VMs its event describes.
    fn apply_import(&mut self, inf: InfId, envelope: &Envelope, imported: &ImportedInfrastructure) {
        // Logs written before history boundaries existed re-import without one:
        // the gone life still becomes an earlier one.
        if self
            .infrastructures
            .get(&inf)
            .is_some_and(|view| !view.is_served())
        {
            self.retire(inf);
        }
        if let Some(old) = self.infrastructures.remove(&inf) {
            for owner in &old.owners {
                self.owners.remove(owner, inf);
                self.owners_with_gone.remove(owner, inf);
            }
        }
        for owner in &imported.owners {
            self.owners.add(owner, inf);
            self.owners_with_gone.add(owner, inf);
        }
        let radl: Arc<str> = Arc::from(imported.radl.as_str());
        let at = |seconds: i64| {
            DateTime::<Utc>::from_timestamp(seconds, 0).unwrap_or(envelope.recorded_at)
        };
        // VMs of one system share their request (IM's `requested_radl`).
        let mut previous: Option<Arc<str>> = None;
        let vms: Vec<VmView> = imported
            .vms
            .iter()
            .enumerate()
            .map(|(index, vm)| {
                let requested: Arc<str> = match &previous {
                    Some(shared) if **shared == *vm.requested_radl => Arc::clone(shared),
                    _ if vm.requested_radl == imported.radl => Arc::clone(&radl),
                    _ => Arc::from(vm.requested_radl.as_str()),
                };
                previous = Some(Arc::clone(&requested));
                let cloud_state = match &vm.status {
                    ImportedVmStatus::Running => CloudState::Running,
                    ImportedVmStatus::Stopped => CloudState::Stopped,
                    ImportedVmStatus::Failed { message } => {
                        CloudState::Failed(message.as_str().into())
                    }
                    ImportedVmStatus::Destroyed => CloudState::Destroyed,
                };
                VmView {
                    id: VmId(index as u32),
                    system: vm.system.as_str().into(),
                    launch_radl: requested,
                    imported_info: Some(Arc::from(vm.info_radl.as_str())),
                    cloud: self.intern_cloud(&vm.cloud),
                    cloud_vm_id: vm.cloud_vm_id.as_deref().map(Into::into),
                    cloud_state,
                    configured: vm.configured,
                    facts: Vec::new(),
                    new_password: None,
                    ansible_log: Arc::default(),
                    created_at: at(vm.created_at_s),
                }
            })
            .collect();
        let contmsg = ContextLog {
            preamble: (!imported.contmsg.is_empty()).then(|| Cow::Owned(imported.contmsg.clone())),
            lines: Vec::new(),
        };
        self.infrastructures.insert(
            inf,
            InfrastructureView {
                id: inf,
                version: envelope.version,
                last_position: envelope.position,
                lifecycle: Lifecycle::Live,
                owners: imported.owners.clone(),
                radl,
                tosca: imported.tosca.as_deref().map(Arc::from),
                configured: imported.configured,
                contmsg,
                contextualizing: false,
                vms,
                created_at: at(imported.created_at_s),
                updated_at: envelope.recorded_at,
                auto_delete_snapshots: imported
                    .auto_delete_snapshots
                    .iter()
                    .map(|url| url.as_str().into())
                    .collect(),
                unfinished_changes: false,
                imported: true,
                ansible_output: Arc::default(),
            },
        );
    }

    fn apply_vm(&mut self, inf: InfId, vm: VmId, envelope: &Envelope, event: &VmEvent) {
        if matches!(event, VmEvent::Imported { .. }) {
            // The infrastructure's `Imported` event, which follows, describes the VM.
            return;
        }
        let facts = match event {
            VmEvent::Launched { facts, .. } | VmEvent::Altered { facts } => {
                Some(self.intern_facts(facts))
            }
            _ => None,
        };
        let Some(view) = self.infrastructures.get_mut(&inf) else {
            tracing::warn!(%inf, position = envelope.position, "VM event for an unknown infrastructure");
            return;
        };
        view.last_position = envelope.position;
        view.updated_at = envelope.recorded_at;
        let Some(vm_view) = view.vms.get_mut(vm.0 as usize) else {
            tracing::warn!(%inf, %vm, position = envelope.position, "event for an unknown VM");
            return;
        };
        match event {
            VmEvent::Launched {
                cloud_vm_id,
                new_password,
                ..
            } => {
                vm_view.cloud_vm_id = Some(cloud_vm_id.as_str().into());
                vm_view.cloud_state = CloudState::Running;
                vm_view.facts.extend(facts);
                vm_view.new_password = new_password.as_deref().map(Into::into);
            }
            VmEvent::LaunchFailed { message, .. } => {
                vm_view.cloud_state = CloudState::Failed(message.as_str().into());
            }
            VmEvent::Stopped => vm_view.cloud_state = CloudState::Stopped,
            VmEvent::Started => vm_view.cloud_state = CloudState::Running,
            VmEvent::Rebooted => {}
            VmEvent::SnapshotTaken {
                image_url,
                auto_delete,
                ..
            } => {
                if *auto_delete {
                    view.auto_delete_snapshots.push(image_url.as_str().into());
                }
            }
            VmEvent::Imported { .. } => {}
            VmEvent::Altered { .. } => vm_view.facts.extend(facts),
            VmEvent::Destroyed => vm_view.cloud_state = CloudState::Destroyed,
            VmEvent::Observed { state, message } => {
                vm_view.cloud_state = match state {
                    ObservedVmState::Running => CloudState::Running,
                    ObservedVmState::Stopped => CloudState::Stopped,
                    ObservedVmState::Pending => vm_view.cloud_state.clone(),
                    ObservedVmState::Failed | ObservedVmState::Gone => {
                        CloudState::Failed(message.as_str().into())
                    }
                }
            }
        }
    }
}

#[cfg(test)]
#[path = "model_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "model_import_tests.rs"]
mod import_tests;
