//! Taking in an infrastructure exported elsewhere.

use std::sync::Arc;

use infralog_events::domain::infrastructure::{ImportedInfrastructure, ImportedVmStatus};
use infralog_events::domain::vm::VmEvent;
use infralog_events::domain::VmId;
use infralog_events::{StoreError, StreamId};

use super::InfraRun;
use crate::decide::infrastructure::{decide, InfrastructureCommand as Command};
use crate::runtime::vm::VmWork;
use crate::runtime::{journal, ActorError, Outcome};

impl InfraRun {
    /// Records an import: each VM's stream first, then the infrastructure's event,
    /// which makes the import visible. A crash in between leaves VM events that no
    /// infrastructure event refers to; the read side ignores them and a new import
    /// replaces them.
    pub(super) async fn import(
        &mut self,
        imported: Box<ImportedInfrastructure>,
    ) -> Result<Outcome, ActorError> {
        // Refuse an id in use before touching any VM stream.
        decide(
            &self.state,
            Command::Import {
                imported: imported.clone(),
            },
        )?;
        // An id used before gets a history boundary first, so that nothing of its
        // earlier life is shown with the imported one, even if the import stops
        // half-way. An import that stopped before its infrastructure event left
        // only VM events, from VM 0 on.
        let leftovers = self.state.version == 0
            && journal::has_events(
                Arc::clone(&self.env.store),
                StreamId::new(self.env.id.vm_stream_name(VmId(0))).map_err(StoreError::from)?,
            )
            .await?;
        let mut position = self.apply(Command::StartEpoch { leftovers }).await?;
        let snapshots_holder = imported.vms.iter().position(|vm| {
            matches!(
                vm.status,
                ImportedVmStatus::Running | ImportedVmStatus::Stopped
            )
        });
        for (index, vm) in imported.vms.iter().enumerate() {
            let auto_delete_snapshots = if Some(index) == snapshots_holder {
                imported.auto_delete_snapshots.clone()
            } else {
                Vec::new()
            };
            let event = VmEvent::Imported {
                cloud: vm.cloud.clone(),
                cloud_vm_id: vm.cloud_vm_id.clone(),
                status: vm.status.clone(),
                auto_delete_snapshots,
            };
            let outcome = self
                .env
                .vms
                .vm_work(
                    self.env.id,
                    VmId(index as u32),
                    VmWork::Import { event },
                    self.metadata.clone(),
                )
                .await?;
            position = position.max(outcome.position);
        }
        let last = self.apply(Command::Import { imported }).await?;
        Ok(Outcome::at(position.max(last)))
    }
}
