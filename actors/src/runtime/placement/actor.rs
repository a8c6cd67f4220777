//! The placement actor: one per placement, its steps taken atomically over a
//! state moved out of the actor and back.

use std::collections::HashSet;
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime};

use actix::prelude::*;
use infralog_events::domain::ids::placement_stream_name;
use infralog_events::domain::placement::{
    AttemptOutcome, PlacementEvent, PlacementRequest, PlacementState, PlacementStatus, Usage,
};
use infralog_events::domain::InfId;
use infralog_events::{EventStore, Metadata, StoreError, StreamId};
use tokio::sync::oneshot;
use uuid::Uuid;

use super::super::ledger::{ImcLedger, Release};
use super::super::mailbox::{Queued, Ticketed};
use super::super::{journal, Idleness};
use super::{CoreDriver, Destroyed, Inner, PlacementConfig, PlacementFailure};
use crate::decide::placement::{decide, CoreState, PlacementCommand};
use crate::decide::placement_timers::{evolve_timed, next_due, Due, TimedPlacement};
use crate::decide::sites::{self, Site};

/// How long a step that cannot be taken now (a destruction the core cannot take
/// yet, a due step refused) waits for another chance, when no change of the
/// infrastructure brings one first.
const LOOK_AGAIN: Duration = Duration::from_secs(1);

/// What every placement actor shares.
pub(super) struct Shared {
    pub(super) store: Arc<dyn EventStore>,
    pub(super) driver: Arc<dyn CoreDriver + Send + Sync>,
    pub(super) ledger: Addr<ImcLedger>,
    pub(super) catalogue: Arc<Vec<Site>>,
    pub(super) config: PlacementConfig,
    /// The handle's alarms and actor map.
    pub(super) placements: Weak<Inner>,
}

/// What a placement is told.
#[derive(Debug, Clone)]
pub(super) enum Work {
    Request(Box<PlacementRequest>),
    Delete,
    Observed(InfId, CoreState),
    Resume,
    /// An alarm, or a step that needs no outside answer: take what is due.
    Wake,
}

pub(super) type Reply = oneshot::Sender<Result<u64, PlacementFailure>>;

pub(super) struct PlacementMessage {
    pub(super) work: Work,
    pub(super) reply: Option<Reply>,
    /// Counts the message in the mailbox until the handler takes it (`None` for
    /// the actor's own timers, which bypass the mailbox).
    pub(super) queued: Option<Queued>,
}

impl Message for PlacementMessage {
    type Result = ();
}

impl Ticketed for PlacementMessage {
    fn ticket(&mut self) -> &mut Option<Queued> {
        &mut self.queued
    }
}

/// The actor's state between messages, moved into each step and back.
pub(super) struct Core {
    pub(super) id: Uuid,
    pub(super) state: PlacementState,
    /// When its deadlines count from (recorded times).
    pub(super) clock: crate::decide::placement_timers::PlacementClock,
    pub(super) shared: Arc<Shared>,
    /// Sites the ledger refused in this round (kept in memory only: a restart
    /// simply asks again).
    pub(super) refused: HashSet<String>,
}

/// One placement's actor.
pub(super) struct PlacementActor {
    id: Uuid,
    serial: u64,
    shared: Arc<Shared>,
    core: Option<Core>,
    loaded: bool,
    idleness: Idleness,
}

impl PlacementActor {
    pub(super) fn new(id: Uuid, serial: u64, shared: Arc<Shared>) -> Self {
        PlacementActor {
            id,
            serial,
            core: Some(Core {
                id,
                state: PlacementState::default(),
                clock: Default::default(),
                shared: Arc::clone(&shared),
                refused: HashSet::new(),
            }),
            shared,
            loaded: false,
            idleness: Idleness::new(),
        }
    }

    fn forget(&self) {
        if let Some(placements) = self.shared.placements.upgrade() {
            placements.forget(self.id, self.serial);
        }
    }

    /// Whether the placement only waits: for a timer (its alarm outlives the
    /// actor), for a client, or for nothing. Attempts and deletions under way keep
    /// their actor.
    fn waits(&self) -> bool {
        let Some(core) = &self.core else {
            return false;
        };
        matches!(
            core.state.status,
            Some(
                PlacementStatus::Waiting
                    | PlacementStatus::Configured
                    | PlacementStatus::DeletionFailed
                    | PlacementStatus::Unable
                    | PlacementStatus::Deleted
                    | PlacementStatus::Purged
            )
        )
    }

    /// Stops once `grace` passed with no work (the actor already left the map).
    fn retire(&mut self, grace: Duration, ctx: &mut Context<Self>) {
        if self.idleness.quiet_for(grace) && self.waits() {
            ctx.stop();
        } else {
            ctx.run_later(grace, move |actor, ctx| actor.retire(grace, ctx));
        }
    }
}

impl Actor for PlacementActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(self.shared.config.mailbox_capacity);
        let store = Arc::clone(&self.shared.store);
        let stream = placement_stream_name(&self.id);
        let fold = |timed, event: &PlacementEvent, envelope: &infralog_events::Envelope| {
            evolve_timed(timed, event, SystemTime::from(envelope.recorded_at))
        };
        ctx.wait(
            journal::rehydrate_with(store, stream, fold)
                .into_actor(self)
                .map(|loaded, actor, ctx| match (loaded, actor.core.as_mut()) {
                    (Ok(TimedPlacement { state, clock }), Some(core)) => {
                        core.state = state;
                        core.clock = clock;
                        actor.loaded = true;
                    }
                    (Err(error), _) => {
                        tracing::error!(%error, "a placement cannot be read; its actor stops");
                        ctx.stop();
                    }
                    (Ok(_), None) => ctx.stop(),
                }),
        );
        let idle = self
            .shared
            .config
            .idle_timeout
            .max(Duration::from_millis(2));
        ctx.run_interval(idle / 2, move |actor, ctx| {
            if actor.waits() && actor.idleness.start_retiring(idle) {
                actor.forget();
                ctx.run_later(idle / 2, move |actor, ctx| actor.retire(idle / 2, ctx));
            }
        });
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        self.forget();
    }
}

impl Handler<PlacementMessage> for PlacementActor {
    type Result = AtomicResponse<Self, ()>;

    fn handle(&mut self, mut msg: PlacementMessage, _ctx: &mut Self::Context) -> Self::Result {
        // Out of the mailbox: no longer waiting.
        drop(msg.queued.take());
        let Some(mut core) = self.core.take().filter(|_| self.loaded) else {
            if let Some(reply) = msg.reply {
                let _ = reply.send(Err(PlacementFailure::Failed("not loaded".into())));
            }
            return AtomicResponse::new(Box::pin(fut::ready(())));
        };
        self.idleness.begin();
        let from_client = matches!(msg.work, Work::Request(_) | Work::Delete);
        AtomicResponse::new(Box::pin(
            async move {
                let mut result = core.handle(msg.work).await;
                // Whatever the step did, take what fell due and set the next alarm.
                if result.is_ok() {
                    if let Err(error) = core.settle().await {
                        result = Err(error);
                    }
                }
                (core, result, msg.reply)
            }
            .into_actor(self)
            .map(move |(core, result, reply), actor, ctx| {
                actor.core = Some(core);
                actor.idleness.end();
                if from_client && result.as_ref().is_ok_and(|position| *position > 0) {
                    ctx.notify(PlacementMessage {
                        work: Work::Wake,
                        reply: None,
                        queued: None,
                    });
                }
                if let Err(error) = &result {
                    if reply.is_none() {
                        tracing::warn!(%error, "a placement step failed");
                    }
                }
                if let Some(reply) = reply {
                    let _ = reply.send(result);
                }
            }),
        ))
    }
}

impl Core {
    fn stream(&self) -> Result<StreamId, StoreError> {
        Ok(StreamId::new(placement_stream_name(&self.id))?)
    }

    /// Decides `command`, appends its events and folds them in; the position of
    /// the last one (0 when nothing was appended).
    pub(super) async fn run(&mut self, command: PlacementCommand) -> Result<u64, PlacementFailure> {
        let events = decide(&self.state, command)?;
        if events.is_empty() {
            return Ok(0);
        }
        let stream = self.stream()?;
        let appended = journal::append(
            &self.shared.store,
            &stream,
            self.state.version,
            &events,
            &Metadata::default(),
        )
        .await?;
        // The store records its own time; this one follows it by the append's
        // latency at most, and a rehydration reads the recorded one.
        let now = SystemTime::now();
        for event in &events {
            let timed = TimedPlacement {
                state: std::mem::take(&mut self.state),
                clock: self.clock,
            };
            let timed = evolve_timed(timed, event, now);
            self.state = timed.state;
            self.clock = timed.clock;
        }
        Ok(appended.last_position())
    }

    pub(super) fn status(&self) -> Option<PlacementStatus> {
        self.state.status
    }

    async fn handle(&mut self, work: Work) -> Result<u64, PlacementFailure> {
        match work {
            // A client's request is answered once recorded; its consequences
            // follow in a step of their own (see the handler).
            Work::Request(request) => self.run(PlacementCommand::Request(request)).await,
            Work::Delete => self.run(PlacementCommand::Delete).await,
            Work::Observed(inf, state) => {
                self.observed(inf, state).await?;
                self.advance().await
            }
            Work::Resume => {
                // An attempt whose outcome was not logged is followed, not
                // created again: ask how its infrastructure is now.
                let pending = self
                    .state
                    .live_attempt()
                    .filter(|a| a.outcome == AttemptOutcome::Pending)
                    .cloned();
                if let Some(attempt) = pending {
                    let inf = attempt.inf_id;
                    // The driver creates nothing when the infrastructure was
                    // recorded; it creates it, with the recorded id, when the
                    // crash came between `AttemptStarted` and the creation.
                    match self.spec_for(&attempt.site, &attempt.flavour, &attempt.image) {
                        Some(spec) => {
                            if let Err(message) = self.shared.driver.create(inf, spec).await {
                                self.observed(inf, CoreState::Failed(message)).await?;
                            }
                        }
                        None => {
                            let gone = CoreState::Failed("the site left the catalogue".into());
                            self.observed(inf, gone).await?;
                        }
                    }
                    let state = self.shared.driver.observe(inf);
                    self.observed(inf, state).await?;
                }
                self.advance().await
            }
            Work::Wake => self.advance().await,
        }
    }

    /// Takes every timed step that fell due (each counted from a recorded time),
    /// then sets the alarm for the next one.
    async fn settle(&mut self) -> Result<(), PlacementFailure> {
        let timings = self.shared.config.timings;
        while let Some((at, due)) = next_due(
            &TimedPlacement {
                state: self.state.clone(),
                clock: self.clock,
            },
            &timings,
        ) {
            if at > SystemTime::now() {
                self.wake_at(at);
                return Ok(());
            }
            let version = self.state.version;
            self.fire(due).await?;
            if self.state.version == version {
                // Nothing could be recorded (it is refused now): look again later
                // rather than spin.
                self.wake_at(SystemTime::now() + LOOK_AGAIN);
                return Ok(());
            }
        }
        Ok(())
    }

    async fn fire(&mut self, due: Due) -> Result<(), PlacementFailure> {
        match due {
            Due::AttemptTimeout { inf_id, reason } => {
                let reason = reason.to_string();
                self.run(PlacementCommand::TimeOut { inf_id, reason })
                    .await?;
            }
            Due::CreatingTooLong => {
                self.run(PlacementCommand::ExpireCreating).await?;
            }
            Due::Retry => match self.status() {
                Some(PlacementStatus::Waiting) => {
                    self.refused.clear();
                    let matching = self.rank().await;
                    self.run(PlacementCommand::Evaluate { matching }).await?;
                }
                Some(PlacementStatus::DeletionFailed) => {
                    self.run(PlacementCommand::StartDeletion).await?;
                }
                _ => {}
            },
            Due::Purge => {
                self.run(PlacementCommand::Purge).await?;
            }
        }
        self.advance().await?;
        Ok(())
    }

    /// Sets the placement's alarm (kept by the handle: it outlives this actor).
    pub(super) fn wake_at(&self, at: SystemTime) {
        if let Some(placements) = self.shared.placements.upgrade() {
            placements.arm(self.id, at);
        }
    }

    pub(super) async fn observed(
        &mut self,
        inf: InfId,
        state: CoreState,
    ) -> Result<(), PlacementFailure> {
        let before = self.state.live_attempt().map(|a| a.reconfigures);
        self.run(PlacementCommand::Observe {
            inf_id: inf,
            state,
            max_reconfigures: self.shared.config.max_reconfigures,
        })
        .await?;
        let after = self.state.live_attempt().map(|a| a.reconfigures);
        if after > before {
            if let Err(error) = self.shared.driver.reconfigure(inf).await {
                tracing::warn!(%error, %inf, "cannot reconfigure a placement's infrastructure");
            }
        }
        Ok(())
    }

    /// The catalogue's sites that pass the static checks, best first. Usage is
    /// left out here: a site full now makes the placement wait (the ledger
    /// refuses its reservation), one that can never hold it makes it unable.
    pub(super) async fn rank(&self) -> Vec<String> {
        let Some(request) = self.state.request.as_deref() else {
            return Vec::new();
        };
        let driver = Arc::clone(&self.shared.driver);
        sites::rank(
            &self.shared.catalogue,
            request,
            &|_: &Site| Usage::default(),
            &|site: &str| driver.success_ratio(site),
        )
        .into_iter()
        .map(|site| site.name.clone())
        .collect()
    }

    /// Takes every step that needs no outside answer, until the placement waits
    /// for an observation, a timer or nothing.
    async fn advance(&mut self) -> Result<u64, PlacementFailure> {
        loop {
            let Some(status) = self.status() else {
                return Ok(0);
            };
            match status {
                PlacementStatus::Accepted => {
                    let matching = self.rank().await;
                    self.run(PlacementCommand::Evaluate { matching }).await?;
                }
                PlacementStatus::Creating => {
                    if let Some(attempt) = self.state.live_attempt() {
                        if attempt.outcome == AttemptOutcome::Pending {
                            return Ok(0);
                        }
                        let inf = attempt.inf_id;
                        if !self.destroy_attempt(inf).await? {
                            return Ok(0);
                        }
                        continue;
                    }
                    match self.next_try() {
                        Some(next) => {
                            if !self.start(next).await? {
                                continue;
                            }
                        }
                        None => {
                            // A reservation left by a crash before its attempt
                            // must not hold room while this placement waits.
                            self.release().await?;
                            let reason = self.give_up_reason();
                            self.run(PlacementCommand::GiveUp { reason }).await?;
                            return Ok(0);
                        }
                    }
                }
                PlacementStatus::DeletionRequested => {
                    self.run(PlacementCommand::StartDeletion).await?;
                }
                PlacementStatus::Deleting => {
                    if let Some(attempt) = self.state.live_attempt() {
                        let inf = attempt.inf_id;
                        if !self.destroy_attempt(inf).await? {
                            return Ok(0);
                        }
                        continue;
                    }
                    self.release().await?;
                    self.run(PlacementCommand::FinishDeletion).await?;
                    return Ok(0);
                }
                PlacementStatus::Unable
                | PlacementStatus::Waiting
                | PlacementStatus::Configured
                | PlacementStatus::DeletionFailed
                | PlacementStatus::Deleted
                | PlacementStatus::Purged => return Ok(0),
            }
        }
    }

    /// Destroys the live attempt's infrastructure and records it; whether it is
    /// done (false: wait for the core's next change, or a timer).
    async fn destroy_attempt(&mut self, inf: InfId) -> Result<bool, PlacementFailure> {
        match self.shared.driver.destroy(inf).await {
            Destroyed::Done => {
                self.release().await?;
                self.run(PlacementCommand::RecordDestroyed).await?;
                Ok(true)
            }
            Destroyed::NotYet => {
                // The core's next change wakes it; a second chance comes anyway in
                // case that change was the last.
                self.wake_at(SystemTime::now() + LOOK_AGAIN);
                Ok(false)
            }
            Destroyed::Failed(message) => {
                if self.status() == Some(PlacementStatus::Deleting) {
                    // Its retry counts from the recorded failure (`settle`).
                    self.run(PlacementCommand::FailDeletion { message }).await?;
                } else {
                    // No event records this: after a restart it is tried at once.
                    tracing::warn!(%inf, %message, "cannot destroy a failed attempt; trying again later");
                    let retry = self.shared.config.timings.deletion_retry;
                    self.wake_at(SystemTime::now() + retry);
                }
                Ok(false)
            }
        }
    }

    pub(super) async fn release(&self) -> Result<(), PlacementFailure> {
        self.shared
            .ledger
            .send(Release { placement: self.id })
            .await
            .map_err(|e| PlacementFailure::Failed(format!("the IMC ledger is gone: {e}")))??;
        Ok(())
    }
}
