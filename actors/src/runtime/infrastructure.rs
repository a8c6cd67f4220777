//! The infrastructure actor: one per infrastructure, owning its stream and
//! coordinating its VMs' actors.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use futures_util::future::join_all;
use futures_util::FutureExt;
use infralog_events::domain::infrastructure::{
    self, Contextualization, ContextualizationPlan, FailedLaunch, ImportedInfrastructure,
    ImportedVmStatus, InfrastructureEvent, InfrastructurePhase, InfrastructureState, PlannedVm,
    SlotPhase,
};
use infralog_events::domain::vm::VmEvent;
use infralog_events::domain::{InfId, VmId};
use infralog_events::{EventStore, StoreError, StreamId};

use super::panics::panic_message;
use super::registry::Registry;
use super::vm::VmWork;
use super::{
    journal, ActorError, CommandMetadata, Credentials, InfrastructureRequest, Outcome, Reply,
    VmRequest,
};
use crate::connectors::CloudCredentials;
use crate::contextualization::remaining_ms;
use crate::decide::infrastructure::{decide, InfrastructureCommand as Command};
use crate::decide::DomainError;

pub(crate) struct InfrastructureMessage {
    pub(crate) request: InfrastructureRequest,
    pub(crate) metadata: CommandMetadata,
    pub(crate) reply: Option<Reply>,
}

impl Message for InfrastructureMessage {
    type Result = ();
}

/// A contextualization timer fired.
struct ContextualizationDue {
    run: u32,
}

impl Message for ContextualizationDue {
    type Result = ();
}

pub struct InfrastructureActor {
    id: InfId,
    registry: Registry,
    state: InfrastructureState,
    load_error: Option<String>,
    last_activity: Instant,
}

impl InfrastructureActor {
    pub(crate) fn new(id: InfId, registry: Registry) -> Self {
        InfrastructureActor {
            id,
            registry,
            state: InfrastructureState::default(),
            load_error: None,
            last_activity: Instant::now(),
        }
    }

    fn env(&self) -> Result<InfraEnv, ActorError> {
        Ok(InfraEnv {
            id: self.id,
            store: Arc::clone(&self.registry.inner().store),
            registry: self.registry.clone(),
            stream: StreamId::new(self.id.stream_name())
                .map_err(|e| ActorError::Failed(e.to_string()))?,
        })
    }

    /// Work that must not be dropped by an idle stop.
    fn has_pending_work(&self) -> bool {
        match &self.state.phase {
            InfrastructurePhase::Live(live) => {
                !live.adding.is_empty()
                    || !live.removing.is_empty()
                    || matches!(live.contextualization, Contextualization::Running { .. })
            }
            InfrastructurePhase::Destroying { .. } => true,
            _ => false,
        }
    }

    /// Runs one command over a copy of the state, atomically.
    fn run(
        &mut self,
        request: Option<InfrastructureRequest>,
        due: Option<u32>,
        metadata: CommandMetadata,
        reply: Option<Reply>,
        address: Addr<Self>,
    ) -> AtomicResponse<Self, ()> {
        self.last_activity = Instant::now();
        if let Some(error) = &self.load_error {
            if let Some(reply) = reply {
                let _ = reply.send(Err(ActorError::Failed(format!(
                    "the infrastructure's log cannot be read: {error}"
                ))));
            }
            return AtomicResponse::new(Box::pin(actix::fut::ready(())));
        }
        let env = match self.env() {
            Ok(env) => env,
            Err(error) => {
                if let Some(reply) = reply {
                    let _ = reply.send(Err(error));
                }
                return AtomicResponse::new(Box::pin(actix::fut::ready(())));
            }
        };
        let mut run = InfraRun {
            env,
            state: self.state.clone(),
            timers: Vec::new(),
            reply,
            metadata,
        };
        let work = async move {
            let executed = AssertUnwindSafe(async {
                match (request, due) {
                    (Some(request), _) => run.execute(request).await,
                    (None, Some(due)) => run.finish_contextualization(due).await,
                    (None, None) => Ok(Outcome::default()),
                }
            })
            .catch_unwind()
            .await;
            match executed {
                Ok(result) => {
                    if let Err(error) = &result {
                        if run.reply.is_none() {
                            tracing::warn!(inf = %run.env.id, %error, "background work failed");
                        }
                    }
                    run.answer(result);
                    Some((run.state, run.timers))
                }
                Err(panic) => {
                    // Forget this actor before answering: a client that retries at
                    // once must reach a fresh actor, not this stopping one's mailbox.
                    run.env.registry.forget_infrastructure(run.env.id, &address);
                    run.answer(Err(ActorError::Failed(panic_message(&panic))));
                    None
                }
            }
        };
        AtomicResponse::new(Box::pin(work.into_actor(self).map(
            |finished, actor, ctx| match finished {
                Some((state, timers)) => {
                    actor.state = state;
                    for (run, delay) in timers {
                        ctx.run_later(delay, move |_, ctx| ctx.notify(ContextualizationDue { run }));
                    }
                }
                None => {
                    tracing::error!(inf = %actor.id, "an infrastructure command panicked; the actor restarts from the log");
                    ctx.stop();
                }
            },
        )))
    }
}

impl Actor for InfrastructureActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let store = Arc::clone(&self.registry.inner().store);
        // Rehydrate before the first message is handled.
        ctx.wait(
            journal::rehydrate(store, self.id.stream_name(), infrastructure::evolve)
                .into_actor(self)
                .map(|loaded, actor, _| match loaded {
                    Ok(state) => actor.state = state,
                    Err(error) => {
                        tracing::error!(inf = %actor.id, %error, "cannot load an infrastructure's stream");
                        actor.load_error = Some(error.to_string());
                    }
                }),
        );
        let idle = self.registry.inner().config.idle_timeout;
        ctx.run_interval(idle / 2, move |actor, ctx| {
            if actor.last_activity.elapsed() >= idle && !actor.has_pending_work() {
                ctx.stop();
            }
        });
    }

    fn stopped(&mut self, ctx: &mut Self::Context) {
        self.registry.forget_infrastructure(self.id, &ctx.address());
    }
}

impl Handler<InfrastructureMessage> for InfrastructureActor {
    type Result = AtomicResponse<Self, ()>;

    fn handle(&mut self, message: InfrastructureMessage, ctx: &mut Self::Context) -> Self::Result {
        self.run(
            Some(message.request),
            None,
            message.metadata,
            message.reply,
            ctx.address(),
        )
    }
}

impl Handler<ContextualizationDue> for InfrastructureActor {
    type Result = AtomicResponse<Self, ()>;

    fn handle(&mut self, message: ContextualizationDue, ctx: &mut Self::Context) -> Self::Result {
        self.run(
            None,
            Some(message.run),
            CommandMetadata::default(),
            None,
            ctx.address(),
        )
    }
}

struct InfraEnv {
    id: InfId,
    store: Arc<dyn EventStore>,
    registry: Registry,
    stream: StreamId,
}

/// One command's run over a copy of the state, written back when it ends.
struct InfraRun {
    env: InfraEnv,
    state: InfrastructureState,
    /// Contextualization runs to finish later: (run, delay).
    timers: Vec<(u32, Duration)>,
    reply: Option<Reply>,
    metadata: CommandMetadata,
}

impl InfraRun {
    /// Answers the caller, once.
    fn answer(&mut self, result: Result<Outcome, ActorError>) {
        if let Some(reply) = self.reply.take() {
            let _ = reply.send(result);
        }
    }

    /// Decides and appends; returns the last position (0 when nothing was due).
    async fn apply(&mut self, command: Command) -> Result<u64, ActorError> {
        let events = decide(&self.state, command)?;
        if events.is_empty() {
            return Ok(0);
        }
        let position = self.append(&events).await?;
        let state = std::mem::take(&mut self.state);
        self.state = events.iter().fold(state, infrastructure::evolve);
        Ok(position)
    }

    /// Appends at the state's version; the last position.
    async fn append(&self, events: &[InfrastructureEvent]) -> Result<u64, ActorError> {
        let appended = journal::append(
            &self.env.store,
            &self.env.stream,
            self.state.version,
            events,
            &self.metadata,
        )
        .await
        .map_err(|error| match error {
            // Someone else wrote to this stream (an import, another instance): the
            // caller retries against the new state.
            StoreError::WrongExpectedVersion { actual, .. } => {
                ActorError::Domain(DomainError::Conflict {
                    expected: self.state.version,
                    actual,
                })
            }
            other => ActorError::Store(other),
        })?;
        Ok(appended.last_position())
    }

    /// Decides `commands` in turn, each against the state the previous one leaves,
    /// and appends all their events at once: one group commit instead of one per
    /// command, and no crash can fall between them.
    async fn apply_all(&mut self, commands: Vec<Command>) -> Result<u64, ActorError> {
        let mut state = self.state.clone();
        let mut events = Vec::new();
        let mut refusal = None;
        for command in commands {
            match decide(&state, command) {
                Ok(decided) => {
                    state = decided.iter().fold(state, infrastructure::evolve);
                    events.extend(decided);
                }
                Err(error) => {
                    // What was decided before stands, as it would have one by one.
                    refusal = Some(error);
                    break;
                }
            }
        }
        let position = if events.is_empty() {
            0
        } else {
            let position = self.append(&events).await?;
            self.state = state;
            position
        };
        match refusal {
            Some(error) => Err(error.into()),
            None => Ok(position),
        }
    }

    async fn execute(&mut self, request: InfrastructureRequest) -> Result<Outcome, ActorError> {
        match request {
            InfrastructureRequest::Create {
                owners,
                tosca,
                resources,
                credentials,
                asynchronous,
            } => {
                let position = self
                    .apply(Command::Create {
                        owners,
                        tosca,
                        resources,
                    })
                    .await?;
                let vm_ids = self.adding();
                if asynchronous {
                    self.answer(Ok(Outcome {
                        position,
                        vm_ids: vm_ids.clone(),
                        ..Outcome::default()
                    }));
                }
                let last = self.finish_adding(&credentials, true).await?;
                Ok(Outcome {
                    position: last.max(position),
                    vm_ids,
                    ..Outcome::default()
                })
            }
            InfrastructureRequest::AddResources {
                expected_version,
                resources,
                tosca,
                credentials,
            } => {
                let position = self
                    .apply(Command::RequestResources {
                        expected_version,
                        resources,
                        tosca,
                    })
                    .await?;
                let vm_ids = self.adding();
                let last = self.finish_adding(&credentials, false).await?;
                Ok(Outcome {
                    position: last.max(position),
                    vm_ids,
                    ..Outcome::default()
                })
            }
            InfrastructureRequest::RemoveResources {
                vm_ids,
                context,
                plan,
                credentials,
            } => {
                let position = self
                    .apply(Command::RequestRemoval {
                        vm_ids,
                        contextualization: context.then_some(plan),
                    })
                    .await?;
                let last = self.finish_removal(&credentials).await?;
                Ok(Outcome::at(last.max(position)))
            }
            InfrastructureRequest::UpdateRadl {
                expected_version,
                radl,
                plan,
            } => {
                let update = Command::UpdateRadl {
                    expected_version,
                    radl,
                };
                let position = match plan {
                    Some(plan) => self.start_contextualization_after(update, plan).await?,
                    None => self.apply(update).await?,
                };
                Ok(Outcome::at(position))
            }
            InfrastructureRequest::Reconfigure {
                expected_version,
                radl,
                plan,
            } => {
                let position = if let Some(radl) = radl {
                    let update = Command::UpdateRadl {
                        expected_version,
                        radl,
                    };
                    self.start_contextualization_after(update, plan).await?
                } else if self.state.live().is_none() {
                    return Err(DomainError::NotFound.into());
                } else {
                    self.start_contextualization(plan, None).await?
                };
                Ok(Outcome::at(position))
            }
            InfrastructureRequest::Stop { credentials } => {
                self.operate_vms(
                    &credentials,
                    "Error stopping the infrastructure",
                    |credentials| VmRequest::Stop { credentials },
                )
                .await
            }
            InfrastructureRequest::Start { credentials } => {
                self.operate_vms(
                    &credentials,
                    "Error starting the infrastructure",
                    |credentials| VmRequest::Start { credentials },
                )
                .await
            }
            InfrastructureRequest::Destroy {
                force,
                asynchronous,
                credentials,
            } => {
                let position = self.apply(Command::StartDestruction { force }).await?;
                if asynchronous {
                    self.answer(Ok(Outcome::at(position)));
                }
                let last = self.finish_destruction(&credentials).await?;
                Ok(Outcome::at(last.max(position)))
            }
            InfrastructureRequest::ChangeOwners {
                expected_version,
                owners,
            } => {
                let position = self
                    .apply(Command::ChangeOwners {
                        expected_version,
                        owners,
                    })
                    .await?;
                Ok(Outcome::at(position))
            }
            InfrastructureRequest::Evict => Ok(Outcome::at(self.apply(Command::Evict).await?)),
            InfrastructureRequest::Import { imported } => self.import(imported).await,
            InfrastructureRequest::Resume => self.resume().await,
        }
    }

    /// Records an import: each VM's stream first, then the infrastructure's event,
    /// which makes the import visible. A crash in between leaves VM events that no
    /// infrastructure event refers to; the read side ignores them and a new import
    /// replaces them.
    async fn import(
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
                .registry
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

    /// The VMs whose launch is under way.
    fn adding(&self) -> Vec<VmId> {
        self.state
            .live()
            .map(|live| live.adding.clone())
            .unwrap_or_default()
    }

    /// Launches the requested VMs, records the outcome and, if asked, restarts
    /// contextualization. When every launch failed the request fails; a new
    /// infrastructure (`creating`) whose VMs all failed is destroyed, as IM does.
    async fn finish_adding(
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
        let launches = planned.iter().map(|plan| {
            let credentials = credentials_for(credentials, &plan.cloud.id);
            self.env.registry.vm_work(
                self.env.id,
                plan.vm_id,
                VmWork::Launch {
                    plan: plan.clone(),
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
                self.apply(Command::FinishDestruction).await?;
            }
            return Err(ActorError::Cloud(format!(
                "Error adding VMs: {}",
                messages.join("\n")
            )));
        }
        Ok(position)
    }

    async fn finish_removal(&mut self, credentials: &Credentials) -> Result<u64, ActorError> {
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
                .registry
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

    async fn finish_destruction(&mut self, credentials: &Credentials) -> Result<u64, ActorError> {
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
                .registry
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
        self.apply(Command::FinishDestruction).await
    }

    async fn start_contextualization(
        &mut self,
        plan: ContextualizationPlan,
        vm_ids: Option<Vec<VmId>>,
    ) -> Result<u64, ActorError> {
        let position = self
            .apply(Command::StartContextualization {
                plan,
                now_ms: now_ms(),
                vm_ids,
            })
            .await?;
        self.schedule_contextualization(plan);
        Ok(position)
    }

    /// `first`, then a contextualization of every VM, in one append.
    async fn start_contextualization_after(
        &mut self,
        first: Command,
        plan: ContextualizationPlan,
    ) -> Result<u64, ActorError> {
        let start = Command::StartContextualization {
            plan,
            now_ms: now_ms(),
            vm_ids: None,
        };
        let position = self.apply_all(vec![first, start]).await?;
        self.schedule_contextualization(plan);
        Ok(position)
    }

    /// Finishes a simulated run when its time is up.
    fn schedule_contextualization(&mut self, plan: ContextualizationPlan) {
        if let ContextualizationPlan::Simulated { duration_ms } = plan {
            let run = self
                .state
                .live()
                .map(|l| l.contextualization.last_run())
                .unwrap_or(0);
            self.timers.push((run, Duration::from_millis(duration_ms)));
        }
    }

    async fn finish_contextualization(&mut self, run: u32) -> Result<Outcome, ActorError> {
        match self.apply(Command::FinishContextualization { run }).await {
            Ok(position) => Ok(Outcome::at(position)),
            // Destroyed or evicted meanwhile: nothing to finish.
            Err(ActorError::Domain(DomainError::NotFound)) => Ok(Outcome::default()),
            Err(error) => Err(error),
        }
    }

    /// Stop or start every live VM, all at once.
    async fn operate_vms(
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
            self.env.registry.vm_work(
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
                    super::vm_list(&missed)
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
    async fn resume(&mut self) -> Result<Outcome, ActorError> {
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

fn credentials_for(credentials: &Credentials, cloud: &str) -> CloudCredentials {
    credentials.get(cloud).cloned().unwrap_or_default()
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
