//! The placement actor: one per placement, its steps taken atomically over a
//! state moved out of the actor and back.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use infralog_events::domain::ids::placement_stream_name;
use infralog_events::domain::placement::{
    evolve, AttemptOutcome, PlacementRequest, PlacementState, PlacementStatus, Usage,
};
use infralog_events::domain::InfId;
use infralog_events::{EventStore, Metadata, StoreError, StreamId};
use tokio::sync::oneshot;
use uuid::Uuid;

use super::super::journal;
use super::super::ledger::{ImcLedger, Release, Reserve};
use super::super::mailbox::{Queued, Ticketed};
use super::{AttemptSpec, CoreDriver, Destroyed, PlacementConfig, PlacementFailure};
use crate::decide::placement::{decide, CoreState, PlacementCommand};
use crate::decide::sites::{self, Site, Try};

/// What every placement actor shares.
pub(super) struct Shared {
    pub(super) store: Arc<dyn EventStore>,
    pub(super) driver: Arc<dyn CoreDriver + Send + Sync>,
    pub(super) ledger: Addr<ImcLedger>,
    pub(super) catalogue: Arc<Vec<Site>>,
    pub(super) config: PlacementConfig,
}

/// What a placement is told.
#[derive(Debug, Clone)]
pub(super) enum Work {
    Request(Box<PlacementRequest>),
    Delete,
    Observed(InfId, CoreState),
    Resume,
    Wake,
    Retry,
    TimeOut(InfId),
    Purge,
}

pub(super) struct PlacementMessage {
    pub(super) work: Work,
    pub(super) reply: Option<oneshot::Sender<Result<u64, PlacementFailure>>>,
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

/// What a step leaves to do later.
type Timers = Vec<(Duration, Work)>;

/// The actor's state between messages, moved into each step and back.
pub(super) struct Core {
    pub(super) id: Uuid,
    pub(super) state: PlacementState,
    pub(super) shared: Arc<Shared>,
    /// Sites the ledger refused in this round (kept in memory only: a restart
    /// simply asks again).
    pub(super) refused: HashSet<String>,
}

/// One placement's actor.
pub(super) struct PlacementActor {
    pub(super) core: Option<Core>,
    pub(super) loaded: bool,
}

impl Actor for PlacementActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let Some(core) = &self.core else { return };
        ctx.set_mailbox_capacity(core.shared.config.mailbox_capacity);
        let store = Arc::clone(&core.shared.store);
        let stream = placement_stream_name(&core.id);
        ctx.wait(
            journal::rehydrate(store, stream, evolve)
                .into_actor(self)
                .map(|loaded, actor, ctx| match (loaded, actor.core.as_mut()) {
                    (Ok(state), Some(core)) => {
                        core.state = state;
                        actor.loaded = true;
                    }
                    (Err(error), _) => {
                        tracing::error!(%error, "a placement cannot be read; its actor stops");
                        ctx.stop();
                    }
                    (Ok(_), None) => ctx.stop(),
                }),
        );
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
        AtomicResponse::new(Box::pin(
            async move {
                let mut timers = Timers::new();
                let result = core.handle(msg.work, &mut timers).await;
                (core, result, timers, msg.reply)
            }
            .into_actor(self)
            .map(|(core, result, timers, reply), actor, ctx| {
                actor.core = Some(core);
                if let Err(error) = &result {
                    if reply.is_none() {
                        tracing::warn!(%error, "a placement step failed");
                    }
                }
                if let Some(reply) = reply {
                    let _ = reply.send(result);
                }
                for (delay, work) in timers {
                    let message = PlacementMessage {
                        work,
                        reply: None,
                        queued: None,
                    };
                    if delay.is_zero() {
                        ctx.notify(message);
                    } else {
                        ctx.notify_later(message, delay);
                    }
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
    async fn run(&mut self, command: PlacementCommand) -> Result<u64, PlacementFailure> {
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
        for event in &events {
            self.state = evolve(std::mem::take(&mut self.state), event);
        }
        Ok(appended.last_position())
    }

    fn status(&self) -> Option<PlacementStatus> {
        self.state.status
    }

    async fn handle(&mut self, work: Work, timers: &mut Timers) -> Result<u64, PlacementFailure> {
        let config = self.shared.config.clone();
        match work {
            Work::Request(request) => {
                let position = self.run(PlacementCommand::Request(request)).await?;
                timers.push((Duration::ZERO, Work::Wake));
                Ok(position)
            }
            Work::Delete => {
                let position = self.run(PlacementCommand::Delete).await?;
                if position > 0 {
                    timers.push((Duration::ZERO, Work::Wake));
                }
                Ok(position)
            }
            Work::Observed(inf, state) => {
                self.observed(inf, state).await?;
                self.advance(timers).await
            }
            Work::Resume => {
                match self.status() {
                    Some(PlacementStatus::Waiting) => {
                        timers.push((config.waiting_retry, Work::Retry))
                    }
                    Some(PlacementStatus::DeletionFailed) => {
                        timers.push((config.deletion_retry, Work::Retry))
                    }
                    Some(PlacementStatus::Deleted | PlacementStatus::Unable) => {
                        timers.push((config.purge_after, Work::Purge))
                    }
                    _ => {}
                }
                // An attempt whose outcome was not logged is followed, not
                // created again: ask how its infrastructure is now.
                let pending = self
                    .state
                    .live_attempt()
                    .filter(|a| a.outcome == AttemptOutcome::Pending)
                    .cloned();
                if let Some(attempt) = pending {
                    let inf = attempt.inf_id;
                    timers.push((config.attempt_timeout, Work::TimeOut(inf)));
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
                self.advance(timers).await
            }
            Work::Wake => self.advance(timers).await,
            Work::Retry => {
                match self.status() {
                    Some(PlacementStatus::Waiting) => {
                        self.refused.clear();
                        let matching = self.rank().await;
                        self.run(PlacementCommand::Evaluate { matching }).await?;
                    }
                    Some(PlacementStatus::DeletionFailed) => {
                        self.run(PlacementCommand::StartDeletion).await?;
                    }
                    _ => {}
                }
                self.advance(timers).await
            }
            Work::TimeOut(inf) => {
                self.run(PlacementCommand::TimeOut { inf_id: inf }).await?;
                self.advance(timers).await
            }
            Work::Purge => {
                if self.status().is_some_and(PlacementStatus::is_final) {
                    let _ = self.run(PlacementCommand::Purge).await;
                }
                Ok(0)
            }
        }
    }

    async fn observed(&mut self, inf: InfId, state: CoreState) -> Result<(), PlacementFailure> {
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
    async fn rank(&self) -> Vec<String> {
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
    async fn advance(&mut self, timers: &mut Timers) -> Result<u64, PlacementFailure> {
        let config = self.shared.config.clone();
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
                        if !self.destroy_attempt(inf, timers).await? {
                            return Ok(0);
                        }
                        continue;
                    }
                    match self.next_try() {
                        Some(next) => {
                            if !self.start(next, timers).await? {
                                continue;
                            }
                        }
                        None => {
                            // A reservation left by a crash before its attempt
                            // must not hold room while this placement waits.
                            self.release().await?;
                            let reason = self.give_up_reason();
                            self.run(PlacementCommand::GiveUp { reason }).await?;
                            timers.push((config.waiting_retry, Work::Retry));
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
                        if !self.destroy_attempt(inf, timers).await? {
                            return Ok(0);
                        }
                        continue;
                    }
                    self.release().await?;
                    self.run(PlacementCommand::FinishDeletion).await?;
                    timers.push((config.purge_after, Work::Purge));
                    return Ok(0);
                }
                PlacementStatus::Unable => {
                    timers.push((config.purge_after, Work::Purge));
                    return Ok(0);
                }
                PlacementStatus::Waiting
                | PlacementStatus::Configured
                | PlacementStatus::DeletionFailed
                | PlacementStatus::Deleted
                | PlacementStatus::Purged => return Ok(0),
            }
        }
    }

    /// Destroys the live attempt's infrastructure and records it; whether it is
    /// done (false: wait for the core's next change, or a timer).
    async fn destroy_attempt(
        &mut self,
        inf: InfId,
        timers: &mut Timers,
    ) -> Result<bool, PlacementFailure> {
        match self.shared.driver.destroy(inf).await {
            Destroyed::Done => {
                self.release().await?;
                self.run(PlacementCommand::RecordDestroyed).await?;
                Ok(true)
            }
            Destroyed::NotYet => {
                // The core's next change wakes it; a second chance comes anyway in
                // case that change was the last.
                timers.push((Duration::from_secs(1), Work::Wake));
                Ok(false)
            }
            Destroyed::Failed(message) => {
                if self.status() == Some(PlacementStatus::Deleting) {
                    self.run(PlacementCommand::FailDeletion { message }).await?;
                    timers.push((self.shared.config.deletion_retry, Work::Retry));
                } else {
                    tracing::warn!(%inf, %message, "cannot destroy a failed attempt; trying again later");
                    timers.push((self.shared.config.deletion_retry, Work::Wake));
                }
                Ok(false)
            }
        }
    }

    async fn release(&self) -> Result<(), PlacementFailure> {
        self.shared
            .ledger
            .send(Release { placement: self.id })
            .await
            .map_err(|e| PlacementFailure::Failed(format!("the IMC ledger is gone: {e}")))??;
        Ok(())
    }

    /// The next try of this round: the ranked sites' flavours in order, each up to
    /// `1 + retries_per_flavour` times, none again after a quota or image failure,
    /// no site the ledger refused.
    fn next_try(&self) -> Option<Try> {
        let request = self.state.request.as_deref()?;
        let ranked: Vec<&Site> = self
            .state
            .matching
            .iter()
            .filter_map(|name| self.shared.catalogue.iter().find(|s| &s.name == name))
            .collect();
        let round = self.state.round();
        let most = 1 + self.shared.config.retries_per_flavour as usize;
        sites::tries(&ranked, request).into_iter().find(|t| {
            let same: Vec<_> = round
                .iter()
                .filter(|a| a.site == t.site && a.flavour == t.flavour.name)
                .collect();
            let final_failure = same.iter().any(|a| {
                matches!(&a.outcome, AttemptOutcome::Failed(r) if r == "QuotaExceeded" || r == "ImageNotFound")
            });
            !self.refused.contains(&t.site) && same.len() < most && !final_failure
        })
    }

    fn give_up_reason(&self) -> String {
        let last = self
            .state
            .round()
            .iter()
            .rev()
            .find_map(|a| match &a.outcome {
                AttemptOutcome::Failed(reason) => Some(reason.clone()),
                _ => None,
            });
        match last {
            Some(reason) => format!("DeploymentFailed_{reason}"),
            None if self.state.round().is_empty() => "NoMatchingResourcesAvailable".into(),
            None => "DeploymentFailed".into(),
        }
    }

    /// Reserves the try's usage and starts it; false when the ledger refused (the
    /// site is skipped for this round).
    async fn start(&mut self, next: Try, timers: &mut Timers) -> Result<bool, PlacementFailure> {
        let Some(request) = self.state.request.clone() else {
            return Ok(false);
        };
        let Some(site) = self
            .shared
            .catalogue
            .iter()
            .find(|s| s.name == next.site)
            .cloned()
        else {
            self.refused.insert(next.site);
            return Ok(false);
        };
        let reserved = self
            .shared
            .ledger
            .send(Reserve {
                placement: self.id,
                identity: request.identity.clone().unwrap_or_default(),
                site: site.name.clone(),
                usage: sites::usage_of(&next.flavour, &request),
                quotas: site.quotas.clone(),
            })
            .await
            .map_err(|e| PlacementFailure::Failed(format!("the IMC ledger is gone: {e}")))??;
        if !reserved {
            self.refused.insert(next.site);
            return Ok(false);
        }
        let inf = InfId::random();
        self.run(PlacementCommand::StartAttempt {
            site: site.name.clone(),
            flavour: next.flavour.name.clone(),
            image: next.image.url.clone(),
            inf_id: inf,
        })
        .await?;
        timers.push((self.shared.config.attempt_timeout, Work::TimeOut(inf)));
        let spec = self.spec_for(&site.name, &next.flavour.name, &next.image.url);
        let created = match spec {
            Some(spec) => self.shared.driver.create(inf, spec).await,
            None => Err("the site left the catalogue".into()),
        };
        if let Err(message) = created {
            tracing::warn!(placement = %self.id, %inf, %message, "an attempt's infrastructure cannot be created");
            self.observed(inf, CoreState::Failed(message)).await?;
        }
        Ok(true)
    }

    /// The try on `site` with `flavour` and `image`, the template's values
    /// substituted; `None` when the site is no longer in the catalogue.
    fn spec_for(&self, site: &str, flavour: &str, image: &str) -> Option<AttemptSpec> {
        let request = self.state.request.as_deref()?;
        let site = self
            .shared
            .catalogue
            .iter()
            .find(|s| s.name == site)?
            .clone();
        let groups = request.requirements.groups.join(",");
        let values = [
            ("instance", flavour),
            ("image", image),
            ("cloud", site.name.as_str()),
            ("region", site.region.as_str()),
            ("allow_groups", groups.as_str()),
        ];
        Some(AttemptSpec {
            radl: sites::substitute(&request.radl, &values),
            flavour: flavour.to_string(),
            site,
        })
    }
}
