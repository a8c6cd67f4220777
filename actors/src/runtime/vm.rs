//! The VM actor: one per VM, owning its stream and its cloud calls.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use futures_util::FutureExt;
use infralog_events::domain::infrastructure::PlannedVm;
use infralog_events::domain::vm::{self, VmEvent, VmPhase, VmState};
use infralog_events::domain::{InfId, VmId};
use infralog_events::StreamId;
use rand::distr::{Alphanumeric, SampleString};

use super::mailbox::{Queued, Ticketed};
use super::panics::panic_message;
use super::{
    journal, ActorError, CommandMetadata, Forget, Idleness, Outcome, Reply, Shared, VmRequest,
};
use crate::connectors::{CloudConnector, CloudCredentials, CloudVmRef, LaunchRequest};
use crate::decide::vm::{decide, observed, record, Plan, VmCommand};

/// What a VM actor can be asked to do: the API's requests, and the launches and
/// destructions its infrastructure orders.
#[derive(Debug, Clone)]
pub(crate) enum VmWork {
    Request(VmRequest),
    Launch {
        plan: PlannedVm,
        /// The infrastructure's RADL, which the VM's system is read from.
        radl: Arc<str>,
        credentials: CloudCredentials,
    },
    Destroy {
        credentials: CloudCredentials,
    },
    /// Compare the VM's cloud with the log and record a difference.
    Observe,
    /// Record the VM as an import describes it (an `Imported` event); no cloud call.
    Import {
        event: VmEvent,
    },
}

pub(crate) struct VmCommandMessage {
    pub(crate) work: VmWork,
    pub(crate) metadata: CommandMetadata,
    pub(crate) reply: Reply,
    /// Counts the message in the mailbox until the handler takes it.
    pub(crate) queued: Option<Queued>,
}

impl Message for VmCommandMessage {
    type Result = ();
}

impl Ticketed for VmCommandMessage {
    fn ticket(&mut self) -> &mut Option<Queued> {
        &mut self.queued
    }
}

pub struct VmActor {
    inf: InfId,
    vm: VmId,
    shared: Arc<Shared>,
    forget: Forget,
    state: VmState,
    load_error: Option<infralog_events::StoreError>,
    idleness: Idleness,
}

impl VmActor {
    pub(crate) fn new(inf: InfId, vm: VmId, shared: Arc<Shared>, forget: Forget) -> Self {
        VmActor {
            inf,
            vm,
            shared,
            forget,
            state: VmState::default(),
            load_error: None,
            idleness: Idleness::new(),
        }
    }

    fn stream(&self) -> Result<StreamId, ActorError> {
        StreamId::new(self.inf.vm_stream_name(self.vm))
            .map_err(|e| ActorError::Failed(e.to_string()))
    }
}

impl Actor for VmActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let store = Arc::clone(&self.shared.store);
        let stream = self.inf.vm_stream_name(self.vm);
        // Rehydrate before the first message is handled.
        ctx.wait(
            journal::rehydrate(store, stream, vm::evolve)
                .into_actor(self)
                .map(|loaded, actor, _| match loaded {
                    Ok(state) => actor.state = state,
                    Err(error) => {
                        tracing::error!(inf = %actor.inf, vm = %actor.vm, %error, "cannot load a VM's stream");
                        // A log out of reach may come back: the next command gets a
                        // fresh actor that reads the stream again.
                        if matches!(error, infralog_events::StoreError::Unavailable(_)) {
                            (actor.forget)();
                        }
                        actor.load_error = Some(error);
                    }
                }),
        );
        let idle = self.shared.config.idle_timeout;
        ctx.run_interval(idle / 2, move |actor, ctx| {
            if actor.idleness.start_retiring(idle) {
                (actor.forget)();
                ctx.run_later(idle / 2, move |actor, ctx| actor.retire(idle / 2, ctx));
            }
        });
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        (self.forget)();
    }
}

impl VmActor {
    /// Stops once `grace` passed with no work (the actor already left the registry).
    fn retire(&mut self, grace: Duration, ctx: &mut Context<Self>) {
        if self.idleness.quiet_for(grace) {
            ctx.stop();
        } else {
            ctx.run_later(grace, move |actor, ctx| actor.retire(grace, ctx));
        }
    }
}

impl Handler<VmCommandMessage> for VmActor {
    type Result = AtomicResponse<Self, ()>;

    fn handle(&mut self, message: VmCommandMessage, _: &mut Self::Context) -> Self::Result {
        let VmCommandMessage {
            work,
            metadata,
            reply,
            queued,
        } = message;
        // Out of the mailbox: no longer waiting.
        drop(queued);
        self.idleness.begin();
        if let Some(error) = &self.load_error {
            let _ = reply.send(Err(super::load_failure("VM", error)));
            self.idleness.end();
            return AtomicResponse::new(Box::pin(actix::fut::ready(())));
        }
        let env = match self.stream() {
            Ok(stream) => VmEnv {
                inf: self.inf,
                shared: Arc::clone(&self.shared),
                forget: Arc::clone(&self.forget),
                stream,
            },
            Err(error) => {
                let _ = reply.send(Err(error));
                self.idleness.end();
                return AtomicResponse::new(Box::pin(actix::fut::ready(())));
            }
        };
        let state = self.state.clone();
        let work = async move {
            let mut run = VmRun { env, state };
            let executed = AssertUnwindSafe(run.execute(work, &metadata))
                .catch_unwind()
                .await;
            match executed {
                Ok(result) => {
                    let _ = reply.send(result);
                    Some(run.state)
                }
                Err(panic) => {
                    // Forget this actor before answering: a client that retries at
                    // once must reach a fresh actor, not this stopping one's mailbox.
                    (run.env.forget)();
                    let _ = reply.send(Err(ActorError::Failed(panic_message(&panic))));
                    None
                }
            }
        };
        AtomicResponse::new(Box::pin(work.into_actor(self).map(
            |state, actor, ctx| {
                actor.idleness.end();
                match state {
                    Some(state) => actor.state = state,
                    None => {
                        tracing::error!(inf = %actor.inf, vm = %actor.vm, "a VM command panicked; the actor restarts from the log");
                        ctx.stop();
                    }
                }
            },
        )))
    }
}

struct VmEnv {
    inf: InfId,
    shared: Arc<Shared>,
    forget: Forget,
    stream: StreamId,
}

/// One command's run over a copy of the state, written back when it ends.
struct VmRun {
    env: VmEnv,
    state: VmState,
}

impl VmRun {
    async fn execute(
        &mut self,
        work: VmWork,
        metadata: &CommandMetadata,
    ) -> Result<Outcome, ActorError> {
        match work {
            VmWork::Launch {
                plan,
                radl,
                credentials,
            } => self.launch(plan, radl, credentials, metadata).await,
            VmWork::Destroy { credentials } => self.destroy(credentials, metadata).await,
            VmWork::Observe => self.observe(metadata).await,
            VmWork::Request(request) => self.request(request, metadata).await,
            VmWork::Import { event } => self.import(event, metadata).await,
        }
    }

    async fn launch(
        &mut self,
        plan: PlannedVm,
        radl: Arc<str>,
        credentials: CloudCredentials,
        metadata: &CommandMetadata,
    ) -> Result<Outcome, ActorError> {
        if decide(&self.state, &VmCommand::Launch)? != Plan::CallCloud {
            // Already launched (a resumed launch): report what happened then.
            let mut outcome = Outcome::at(0);
            if let VmPhase::LaunchFailed { message, .. } = &self.state.phase {
                outcome.failed = Some(message.clone());
            }
            return Ok(outcome);
        }
        let answer = match self.connector(&plan.cloud.kind) {
            None => VmEvent::LaunchFailed {
                cloud: plan.cloud.clone(),
                message: format!("Cloud provider not supported: {}", plan.cloud.kind),
            },
            Some(connector) => {
                let request = LaunchRequest {
                    infrastructure: self.env.inf,
                    vm_id: plan.vm_id,
                    system: plan.system.clone(),
                    radl,
                    cloud: plan.cloud.clone(),
                };
                // Launches wait their turn (`--max-simultaneous-launches`); the
                // permit is held for the cloud call only.
                let permit = self.env.shared.launches.acquire().await;
                let launched = connector.launch(request, &credentials).await;
                drop(permit);
                match launched {
                    Ok(launched) => VmEvent::Launched {
                        cloud: plan.cloud.clone(),
                        cloud_vm_id: launched.cloud_vm_id,
                        facts: launched.facts,
                        new_password: plan.new_password.then(random_password),
                    },
                    Err(error) => VmEvent::LaunchFailed {
                        cloud: plan.cloud.clone(),
                        message: error.message,
                    },
                }
            }
        };
        let failed = match &answer {
            VmEvent::LaunchFailed { message, .. } => Some(message.clone()),
            _ => None,
        };
        let position = self.record(answer, metadata).await?;
        Ok(Outcome {
            position,
            failed,
            ..Outcome::default()
        })
    }

    async fn destroy(
        &mut self,
        credentials: CloudCredentials,
        metadata: &CommandMetadata,
    ) -> Result<Outcome, ActorError> {
        match decide(&self.state, &VmCommand::Destroy)? {
            Plan::Nothing => return Ok(Outcome::at(0)),
            Plan::RecordOnly => {}
            Plan::CallCloud => {
                let vm = self.cloud_vm()?;
                let connector =
                    self.required_connector(&vm.cloud.kind, "Error destroying the VM")?;
                if let Some(cloud_vm) = self.state.cloud_vm() {
                    for snapshot in cloud_vm.snapshots.iter().filter(|s| s.auto_delete) {
                        connector
                            .delete_image(&snapshot.image_url, &credentials)
                            .await
                            .map_err(|e| ActorError::cloud("Error deleting a snapshot", e))?;
                    }
                }
                connector
                    .destroy(&vm, &credentials)
                    .await
                    .map_err(|e| ActorError::cloud("Error destroying the VM", e))?;
            }
        }
        let position = self.record(VmEvent::Destroyed, metadata).await?;
        Ok(Outcome::at(position))
    }

    async fn request(
        &mut self,
        request: VmRequest,
        metadata: &CommandMetadata,
    ) -> Result<Outcome, ActorError> {
        let command = match &request {
            VmRequest::Stop { .. } => VmCommand::Stop,
            VmRequest::Start { .. } => VmCommand::Start,
            VmRequest::Reboot { .. } => VmCommand::Reboot,
            VmRequest::Alter { .. } => VmCommand::Alter,
            VmRequest::Snapshot { .. } => VmCommand::Snapshot,
        };
        if decide(&self.state, &command)? != Plan::CallCloud {
            return Ok(Outcome::at(0));
        }
        let vm = self.cloud_vm()?;
        let (answer, detail) = match request {
            VmRequest::Stop { credentials } => {
                let connector = self.required_connector(&vm.cloud.kind, "Error stopping the VM")?;
                connector
                    .stop(&vm, &credentials)
                    .await
                    .map_err(|e| ActorError::cloud("Error stopping the VM", e))?;
                (VmEvent::Stopped, None)
            }
            VmRequest::Start { credentials } => {
                let connector = self.required_connector(&vm.cloud.kind, "Error starting the VM")?;
                connector
                    .start(&vm, &credentials)
                    .await
                    .map_err(|e| ActorError::cloud("Error starting the VM", e))?;
                (VmEvent::Started, None)
            }
            VmRequest::Reboot { credentials } => {
                let connector =
                    self.required_connector(&vm.cloud.kind, "Error rebooting the VM")?;
                connector
                    .reboot(&vm, &credentials)
                    .await
                    .map_err(|e| ActorError::cloud("Error rebooting the VM", e))?;
                (VmEvent::Rebooted, None)
            }
            VmRequest::Alter {
                request,
                credentials,
            } => {
                let connector = self.required_connector(&vm.cloud.kind, "Error altering the VM")?;
                let facts = connector
                    .alter(&vm, request, &credentials)
                    .await
                    .map_err(|e| ActorError::cloud("Error altering the VM", e))?;
                (VmEvent::Altered { facts }, None)
            }
            VmRequest::Snapshot {
                disk,
                image_name,
                auto_delete,
                credentials,
            } => {
                let connector =
                    self.required_connector(&vm.cloud.kind, "Error creating snapshot")?;
                let image_url = connector
                    .snapshot(&vm, disk, &image_name, &credentials)
                    .await
                    .map_err(|e| ActorError::cloud("Error creating snapshot", e))?;
                (
                    VmEvent::SnapshotTaken {
                        disk,
                        image_url: image_url.clone(),
                        auto_delete,
                    },
                    Some(image_url),
                )
            }
        };
        let position = self.record(answer, metadata).await?;
        Ok(Outcome {
            position,
            detail,
            ..Outcome::default()
        })
    }

    /// Asks the VM's cloud how the VM is and records what differs from the log.
    /// Nothing is due for a VM that does not exist in its cloud, or whose cloud
    /// cannot be observed.
    async fn observe(&mut self, metadata: &CommandMetadata) -> Result<Outcome, ActorError> {
        let Some(vm) = self.state.cloud_vm() else {
            return Ok(Outcome::at(0));
        };
        let Some(connector) = self.connector(&vm.cloud.kind) else {
            return Ok(Outcome::at(0));
        };
        let reference = CloudVmRef {
            cloud: vm.cloud.clone(),
            cloud_vm_id: vm.cloud_vm_id.clone(),
        };
        let seen = match connector.observe(&reference).await {
            Ok(Some(seen)) => seen,
            Ok(None) => return Ok(Outcome::at(0)),
            // An engine that cannot be asked says nothing about the VM.
            Err(error) => {
                tracing::debug!(%error, "observation failed");
                return Ok(Outcome::at(0));
            }
        };
        let Some(event) = observed(&self.state, seen.state, &seen.message) else {
            return Ok(Outcome::at(0));
        };
        let position = self.append(vec![event], metadata).await?;
        Ok(Outcome::at(position))
    }

    async fn import(
        &mut self,
        event: VmEvent,
        metadata: &CommandMetadata,
    ) -> Result<Outcome, ActorError> {
        let position = self.record(event, metadata).await?;
        Ok(Outcome::at(position))
    }

    /// Records the cloud's answer (or an import) as far as [`record`] finds it due;
    /// returns the last position appended (0: none).
    async fn record(
        &mut self,
        answer: VmEvent,
        metadata: &CommandMetadata,
    ) -> Result<u64, ActorError> {
        let events = record(&self.state, answer);
        if events.is_empty() {
            return Ok(0);
        }
        self.append(events, metadata).await
    }

    /// Appends at the state's version and evolves the state; the last position.
    async fn append(
        &mut self,
        events: Vec<VmEvent>,
        metadata: &CommandMetadata,
    ) -> Result<u64, ActorError> {
        let appended = journal::append(
            &self.env.shared.store,
            &self.env.stream,
            self.state.version,
            &events,
            metadata,
        )
        .await?;
        let state = std::mem::take(&mut self.state);
        self.state = events.iter().fold(state, vm::evolve);
        Ok(appended.last_position())
    }

    fn cloud_vm(&self) -> Result<CloudVmRef, ActorError> {
        self.state
            .cloud_vm()
            .map(|vm| CloudVmRef {
                cloud: vm.cloud.clone(),
                cloud_vm_id: vm.cloud_vm_id.clone(),
            })
            .ok_or_else(|| ActorError::Failed("the VM has no cloud VM".into()))
    }

    fn connector(&self, kind: &str) -> Option<Arc<dyn CloudConnector>> {
        self.env.shared.connectors.get(kind)
    }

    fn required_connector(
        &self,
        kind: &str,
        action: &str,
    ) -> Result<Arc<dyn CloudConnector>, ActorError> {
        self.connector(kind).ok_or_else(|| {
            ActorError::Cloud(format!("{action}: Cloud provider not supported: {kind}"))
        })
    }
}

/// IM's generated passwords: 8 characters from `[A-Za-z0-9]`.
fn random_password() -> String {
    Alphanumeric.sample_string(&mut rand::rng(), 8)
}
