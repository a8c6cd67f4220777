//! The infrastructure actor: one per infrastructure, owning its stream and
//! coordinating its VMs' actors.
//!
//! This file holds the actor and its message handling: rehydration, the atomic run
//! of one command over a copy of the state, and what happens when it panics. A run's
//! jobs live beside it: [`run`] decides and appends and dispatches the API's
//! requests, [`vms`] carries out the work the infrastructure orders of its VMs
//! (launches, removals, a destruction, a stop or start of all, and resuming them
//! after a restart), [`import`] records an infrastructure exported elsewhere.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use futures_util::future::LocalBoxFuture;
use futures_util::FutureExt;
use infralog_events::domain::infrastructure::{
    self, Contextualization, InfrastructurePhase, InfrastructureState,
};
use infralog_events::domain::{InfId, VmId};
use infralog_events::{EventStore, StreamId};

use super::mailbox::{Mailbox, Queued, Ticketed};
use super::panics::panic_message;
use super::vm::VmWork;
use super::{
    journal, ActorError, CommandMetadata, Forget, Idleness, InfrastructureRequest, Outcome, Reply,
    Shared,
};

mod ansible;
mod import;
mod run;
mod vms;

pub(crate) struct InfrastructureMessage {
    pub(crate) request: InfrastructureRequest,
    pub(crate) metadata: CommandMetadata,
    pub(crate) reply: Option<Reply>,
    /// Counts the message in the mailbox until the handler takes it.
    pub(crate) queued: Option<Queued>,
}

impl Message for InfrastructureMessage {
    type Result = ();
}

impl Ticketed for InfrastructureMessage {
    fn ticket(&mut self) -> &mut Option<Queued> {
        &mut self.queued
    }
}

/// A contextualization timer fired.
struct ContextualizationDue {
    run: u32,
}

impl Message for ContextualizationDue {
    type Result = ();
}

/// What the actor tells itself: background work reporting back.
enum Internal {
    /// A simulated run's time is up.
    ContextualizationDue(u32),
    /// A real run wrote output.
    AnsibleOutput(ansible::AnsibleOutput),
    /// A real run ended.
    AnsibleEnded(ansible::AnsibleEnded),
}

/// How an infrastructure reaches its VMs' actors: through the registry, which
/// starts them. The work is the infrastructure's own, part of a command already
/// accepted, so it waits for room in a full mailbox, up to
/// [`ActorConfig::room_wait`](super::ActorConfig::room_wait), and only then answers
/// [`ActorError::Busy`].
pub(crate) trait VmDispatch {
    fn vm_work(
        &self,
        inf: InfId,
        vm: VmId,
        work: VmWork,
        metadata: CommandMetadata,
    ) -> LocalBoxFuture<'static, Result<Outcome, ActorError>>;
}

pub struct InfrastructureActor {
    id: InfId,
    shared: Arc<Shared>,
    vms: Arc<dyn VmDispatch + Send + Sync>,
    forget: Forget,
    state: InfrastructureState,
    load_error: Option<infralog_events::StoreError>,
    idleness: Idleness,
    /// The real contextualization run under way, if any.
    ansible: Option<ansible::RunningTask>,
    /// Its mailbox's count, which the run's reports join too.
    mailbox: Mailbox,
}

impl InfrastructureActor {
    pub(crate) fn new(
        id: InfId,
        shared: Arc<Shared>,
        vms: Arc<dyn VmDispatch + Send + Sync>,
        forget: Forget,
        mailbox: Mailbox,
    ) -> Self {
        InfrastructureActor {
            id,
            shared,
            vms,
            forget,
            state: InfrastructureState::default(),
            load_error: None,
            idleness: Idleness::new(),
            ansible: None,
            mailbox,
        }
    }

    fn env(&self) -> Result<InfraEnv, ActorError> {
        Ok(InfraEnv {
            id: self.id,
            shared: Arc::clone(&self.shared),
            store: Arc::clone(&self.shared.store),
            vms: Arc::clone(&self.vms),
            forget: Arc::clone(&self.forget),
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
        internal: Option<Internal>,
        metadata: CommandMetadata,
        reply: Option<Reply>,
    ) -> AtomicResponse<Self, ()> {
        self.idleness.begin();
        if let Some(error) = &self.load_error {
            if let Some(reply) = reply {
                let _ = reply.send(Err(super::load_failure("infrastructure", error)));
            }
            self.idleness.end();
            return AtomicResponse::new(Box::pin(actix::fut::ready(())));
        }
        let env = match self.env() {
            Ok(env) => env,
            Err(error) => {
                if let Some(reply) = reply {
                    let _ = reply.send(Err(error));
                }
                self.idleness.end();
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
                match (request, internal) {
                    (Some(request), _) => run.execute(request).await,
                    (None, Some(internal)) => run.internal(internal).await,
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
                    (run.env.forget)();
                    run.answer(Err(ActorError::Failed(panic_message(&panic))));
                    None
                }
            }
        };
        AtomicResponse::new(Box::pin(work.into_actor(self).map(
            |finished, actor, ctx| {
                actor.idleness.end();
                match finished {
                Some((state, timers)) => {
                    actor.state = state;
                    for (run, delay) in timers {
                        ctx.run_later(delay, move |_, ctx| ctx.notify(ContextualizationDue { run }));
                    }
                    actor.sync_ansible(ctx);
                }
                None => {
                    tracing::error!(inf = %actor.id, "an infrastructure command panicked; the actor restarts from the log");
                    ctx.stop();
                }
            }},
        )))
    }
}

impl Actor for InfrastructureActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let store = Arc::clone(&self.shared.store);
        // Rehydrate before the first message is handled.
        ctx.wait(
            journal::rehydrate(store, self.id.stream_name(), infrastructure::evolve)
                .into_actor(self)
                .map(|loaded, actor, _| match loaded {
                    Ok(state) => actor.state = state,
                    Err(error) => {
                        tracing::error!(inf = %actor.id, %error, "cannot load an infrastructure's stream");
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
            if !actor.has_pending_work() && actor.idleness.start_retiring(idle) {
                (actor.forget)();
                ctx.run_later(idle / 2, move |actor, ctx| actor.retire(idle / 2, ctx));
            }
        });
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        if let Some(task) = self.ansible.take() {
            task.abort();
        }
        (self.forget)();
    }
}

impl InfrastructureActor {
    /// Stops once `grace` passed with no work (the actor already left the registry).
    fn retire(&mut self, grace: Duration, ctx: &mut Context<Self>) {
        if self.idleness.quiet_for(grace) && !self.has_pending_work() {
            ctx.stop();
        } else {
            ctx.run_later(grace, move |actor, ctx| actor.retire(grace, ctx));
        }
    }
}

impl Handler<InfrastructureMessage> for InfrastructureActor {
    type Result = AtomicResponse<Self, ()>;

    fn handle(&mut self, message: InfrastructureMessage, _: &mut Self::Context) -> Self::Result {
        let InfrastructureMessage {
            request,
            metadata,
            reply,
            queued,
        } = message;
        // Out of the mailbox: no longer waiting.
        drop(queued);
        self.run(Some(request), None, metadata, reply)
    }
}

impl Handler<ContextualizationDue> for InfrastructureActor {
    type Result = AtomicResponse<Self, ()>;

    fn handle(&mut self, message: ContextualizationDue, _: &mut Self::Context) -> Self::Result {
        self.run(
            None,
            Some(Internal::ContextualizationDue(message.run)),
            CommandMetadata::default(),
            None,
        )
    }
}

impl Handler<ansible::AnsibleOutput> for InfrastructureActor {
    type Result = AtomicResponse<Self, ()>;

    fn handle(
        &mut self,
        mut message: ansible::AnsibleOutput,
        _: &mut Self::Context,
    ) -> Self::Result {
        drop(message.queued.take());
        self.run(
            None,
            Some(Internal::AnsibleOutput(message)),
            CommandMetadata::default(),
            None,
        )
    }
}

impl Handler<ansible::AnsibleEnded> for InfrastructureActor {
    type Result = AtomicResponse<Self, ()>;

    fn handle(
        &mut self,
        mut message: ansible::AnsibleEnded,
        _: &mut Self::Context,
    ) -> Self::Result {
        drop(message.queued.take());
        self.run(
            None,
            Some(Internal::AnsibleEnded(message)),
            CommandMetadata::default(),
            None,
        )
    }
}

struct InfraEnv {
    id: InfId,
    shared: Arc<Shared>,
    store: Arc<dyn EventStore>,
    vms: Arc<dyn VmDispatch + Send + Sync>,
    forget: Forget,
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
