//! The work an infrastructure orders of its VMs' actors: launching the VMs it
//! adds, destroying those it removes or all of them, stopping or starting them all,
//! and resuming such work after a restart.

use std::time::Duration;

use futures_util::future::join_all;
use infralog_events::domain::infrastructure::{
    Contextualization, ContextualizationPlan, FailedLaunch, InfrastructurePhase, PlannedVm,
    SlotPhase,
};
use infralog_events::domain::VmId;

use super::run::{credentials_for, now_ms};
use super::InfraRun;
use crate::connectors::CloudCredentials;
use crate::contextualization::remaining_ms;
use crate::decide::infrastructure::InfrastructureCommand as Command;
use crate::decide::DomainError;
use crate::runtime::vm::VmWork;
use crate::runtime::{ActorError, Credentials, Outcome, VmRequest};

impl InfraRun {
    /// Launches the requested VMs, records the outcome and, if asked, restarts
    /// contextualization. When every launch failed the request fails; a new
    /// infrastructure (`creating`) whose VMs all failed is destroyed, as IM does.
    pub(super) async fn finish_adding(
        &mut self,
        credentials: &Credentials,
        creating: bool,
    ) -> Result<u64, ActorError> {
        let Some(live) = self.state.live() else {
            return Ok(0);
        };
        let plan = live.adding_plan;
        let planned: Vec<PlannedVm> = live
            .adding
            .iter()
            .filter_map(|vm_id| {
                live.slot(*vm_id).map(|slot| PlannedVm {
                    vm_id: *vm_id,
                    system: slot.system.clone(),
                    cloud: slot.cloud.clone(),
                    new_password: slot.new_password,
                })
            })
            .collect();
        if planned.is_empty() {
            return Ok(0);
        }
        let radl: std::sync::Arc<str> = std::sync::Arc::from(live.radl.as_str());
        let launches = planned.iter().map(|plan| {
            let credentials = credentials_for(credentials, &plan.cloud.id);
            self.env.vms.vm_work(
                self.env.id,
                plan.vm_id,
                VmWork::Launch {
                    plan: plan.clone(),
                    radl: std::sync::Arc::clone(&radl),
                    credentials,
                },
                self.metadata.clone(),
            )
        });
        let results = join_all(launches).await;
        let mut launched = Vec::new();
        let mut failed = Vec::new();
        for (plan, result) in planned.iter().zip(results) {
            match result {
                Ok(outcome) => match outcome.failed {
                    None => launched.push(plan.vm_id),
                    Some(message) => failed.push(FailedLaunch {
                        vm_id: plan.vm_id,
                        message,
                    }),
                },
                Err(error) => failed.push(FailedLaunch {
                    vm_id: plan.vm_id,
                    message: error.to_string(),
                }),
            }
        }
        let all_failed = launched.is_empty();
        let messages: Vec<String> = failed.iter().map(|f| f.message.clone()).collect();
        let record = Command::RecordLaunches { launched, failed };
        if let (Some(plan), false) = (plan, all_failed) {
            return self.start_contextualization_after(record, plan).await;
        }
        let position = self.apply(record).await?;
        if all_failed {
            if creating {
                self.apply(Command::StartDestruction { force: true })
                    .await?;
                self.release_clouds(credentials).await;
                self.apply(Command::FinishDestruction).await?;
            }
            return Err(ActorError::Cloud(format!(
                "Error adding VMs: {}",
                messages.join("\n")
            )));
        }
        Ok(position)
    }

    pub(super) async fn finish_removal(
        &mut self,
        credentials: &Credentials,
    ) -> Result<u64, ActorError> {
        let Some(live) = self.state.live() else {
            return Ok(0);
        };
        let plan = live.removing_plan;
        let removing: Vec<(VmId, String)> = live
            .removing
            .iter()
            .filter_map(|vm| live.slot(*vm).map(|slot| (*vm, slot.cloud.id.clone())))
            .collect();
        let mut removed = Vec::new();
        let mut errors = Vec::new();
        for (vm, cloud) in removing {
            let work = VmWork::Destroy {
                credentials: credentials_for(credentials, &cloud),
            };
            match self
                .env
                .vms
                .vm_work(self.env.id, vm, work, self.metadata.clone())
                .await
            {
                Ok(_) => removed.push(vm),
                Err(error) => errors.push(error.to_string()),
            }
        }
        let any_removed = !removed.is_empty();
        let record = Command::RecordRemovals { vm_ids: removed };
        if let (Some(plan), true, true) = (plan, any_removed, errors.is_empty()) {
            return self.start_contextualization_after(record, plan).await;
        }
        let position = self.apply(record).await?;
        if !errors.is_empty() {
            return Err(ActorError::Cloud(format!(
                "Error removing VMs: {}",
                errors.join("\n")
            )));
        }
        Ok(position)
    }

    pub(super) async fn finish_destruction(
        &mut self,
        credentials: &Credentials,
    ) -> Result<u64, ActorError> {
        let Some(existing) = self.state.existing() else {
            return Ok(0);
        };
        let mut vms: Vec<(VmId, String)> = existing
            .vms
            .iter()
            .enumerate()
            .filter(|(_, slot)| slot.phase.is_live())
            .map(|(id, slot)| (VmId(id as u32), slot.cloud.id.clone()))
            .collect();
        // IM finalizes VMs last to first.
        vms.reverse();
        let force = matches!(
            self.state.phase,
            InfrastructurePhase::Destroying { force: true, .. }
        );
        let mut errors = Vec::new();
        for (vm, cloud) in vms {
            let work = VmWork::Destroy {
                credentials: credentials_for(credentials, &cloud),
            };
            if let Err(error) = self
                .env
                .vms
                .vm_work(self.env.id, vm, work, self.metadata.clone())
                .await
            {
                errors.push(error.to_string());
            }
        }
        if !errors.is_empty() && !force {
            let message = errors.join("\n");
            self.apply(Command::AbandonDestruction {
                message: message.clone(),
            })
            .await?;
            return Err(ActorError::Cloud(format!(
                "Error destroying the infrastructure: \n{message}"
            )));
        }
        self.release_clouds(credentials).await;
        self.apply(Command::FinishDestruction).await
    }

    /// Asks every cloud the infrastructure used to remove what it made for the
    /// infrastructure as a whole (networks, volumes). A refusal is logged, not
    /// fatal: the VMs are gone, and what is left carries the infrastructure's label.
    async fn release_clouds(&self, credentials: &Credentials) {
        let Some(existing) = self.state.existing() else {
            return;
        };
        let mut clouds: Vec<&infralog_events::domain::CloudRef> = Vec::new();
        for slot in &existing.vms {
            if !clouds.contains(&&slot.cloud) {
                clouds.push(&slot.cloud);
            }
        }
        for cloud in clouds {
            let Some(connector) = self.env.shared.connectors.get(&cloud.kind) else {
                continue;
            };
            let credentials = credentials_for(credentials, &cloud.id);
            if let Err(error) = connector
                .release_infrastructure(self.env.id, cloud, &credentials)
                .await
            {
                tracing::warn!(inf = %self.env.id, cloud = %cloud.id, %error, "cannot release what the cloud made for the infrastructure");
            }
        }
    }

    /// Stop or start every live VM, all at once.
    pub(super) async fn operate_vms(
        &mut self,
        credentials: &Credentials,
        action: &str,
        request: impl Fn(CloudCredentials) -> VmRequest,
    ) -> Result<Outcome, ActorError> {
        let live = self.state.live().ok_or(DomainError::NotFound)?;
        let vms: Vec<(VmId, String)> = live
            .vms
            .iter()
            .enumerate()
            .filter(|(_, slot)| slot.phase == SlotPhase::Launched)
            .map(|(id, slot)| (VmId(id as u32), slot.cloud.id.clone()))
            .collect();
        // The operation is ours once accepted: each VM's share waits for room in
        // that VM's mailbox rather than failing on a client's burst there.
        let calls = vms.iter().map(|(vm, cloud)| {
            self.env.vms.vm_work(
                self.env.id,
                *vm,
                VmWork::Request(request(credentials_for(credentials, cloud))),
                self.metadata.clone(),
            )
        });
        let results = join_all(calls).await;
        let mut position = 0;
        let mut errors = Vec::new();
        let mut missed = Vec::new();
        for ((vm, _), result) in vms.iter().zip(results) {
            match result {
                Ok(outcome) => position = position.max(outcome.position),
                Err(ActorError::Busy) => missed.push(*vm),
                Err(error) => errors.push(error.to_string()),
            }
        }
        if !errors.is_empty() {
            if !missed.is_empty() {
                errors.push(format!(
                    "{} not reached: too many operations are pending",
                    crate::runtime::vm_list(&missed)
                ));
            }
            return Err(ActorError::Cloud(format!(
                "{action}: {}",
                errors.join("\n")
            )));
        }
        if !missed.is_empty() {
            return Err(ActorError::Unreached {
                action: action.to_string(),
                missed,
            });
        }
        Ok(Outcome::at(position))
    }

    /// Resumes what a restart interrupted: launches, removals, a destruction, or
    /// the timer of a contextualization run.
    pub(super) async fn resume(&mut self) -> Result<Outcome, ActorError> {
        let none = Credentials::new();
        let mut position = 0;
        if let InfrastructurePhase::Destroying { .. } = self.state.phase {
            position = self.finish_destruction(&none).await?;
            return Ok(Outcome::at(position));
        }
        let Some(live) = self.state.live() else {
            return Ok(Outcome::default());
        };
        let (adding, removing) = (!live.adding.is_empty(), !live.removing.is_empty());
        if adding {
            position = position.max(self.finish_adding(&none, false).await?);
        }
        if removing {
            position = position.max(self.finish_removal(&none).await?);
        }
        if let Some(Contextualization::Running {
            run,
            plan: ContextualizationPlan::Simulated { duration_ms },
            started_at_ms,
            ..
        }) = self.state.live().map(|l| l.contextualization.clone())
        {
            let left = remaining_ms(started_at_ms, duration_ms, now_ms());
            self.timers.push((run, Duration::from_millis(left)));
        }
        Ok(Outcome::at(position))
    }
}
