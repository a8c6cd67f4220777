//! The IMC facade's quota ledger: one actor, the only writer of the `imc-ledger`
//! stream. Every reservation is checked against the ledger's own state and
//! appended in the same atomic step, so two placements can never both take the
//! last room on a site (IMC's races can).

use std::sync::Arc;

use actix::prelude::*;
use infralog_events::domain::ids::IMC_LEDGER_STREAM;
use infralog_events::domain::placement::{evolve_ledger, LedgerEvent, LedgerState, Usage};
use infralog_events::{EventStore, Metadata, StoreError, StreamId};
use uuid::Uuid;

use super::journal;
use crate::decide::sites::SiteQuotas;

/// Reserve `usage` on `site` for a placement (replacing what it held), if the
/// identity's other reservations and this one fit the site's quotas. Answers
/// whether it was reserved.
#[derive(Debug, Clone)]
pub struct Reserve {
    /// The placement.
    pub placement: Uuid,
    /// Whose quota it counts against.
    pub identity: String,
    /// The site.
    pub site: String,
    /// How much.
    pub usage: Usage,
    /// The site's quotas.
    pub quotas: SiteQuotas,
}

impl Message for Reserve {
    type Result = Result<bool, StoreError>;
}

/// Release what a placement holds (nothing is appended when it holds nothing).
#[derive(Debug, Clone, Copy)]
pub struct Release {
    /// The placement.
    pub placement: Uuid,
}

impl Message for Release {
    type Result = Result<(), StoreError>;
}

/// The ledger as it stands, for ranking.
#[derive(Debug, Clone, Copy)]
pub struct Snapshot;

impl Message for Snapshot {
    type Result = LedgerState;
}

/// The singleton ledger actor.
pub struct ImcLedger {
    store: Arc<dyn EventStore>,
    state: LedgerState,
    capacity: usize,
}

impl ImcLedger {
    /// A ledger over `store`, rehydrated from its stream when started.
    pub fn new(store: Arc<dyn EventStore>, capacity: usize) -> Self {
        ImcLedger {
            store,
            state: LedgerState::default(),
            capacity,
        }
    }

    fn append(
        &mut self,
        event: LedgerEvent,
    ) -> impl ActorFuture<Self, Output = Result<(), StoreError>> {
        let store = Arc::clone(&self.store);
        let version = self.state.version;
        async move {
            let stream = StreamId::new(IMC_LEDGER_STREAM)?;
            journal::append(
                &store,
                &stream,
                version,
                std::slice::from_ref(&event),
                &Metadata::default(),
            )
            .await?;
            Ok(event)
        }
        .into_actor(self)
        .map(|appended: Result<LedgerEvent, StoreError>, ledger, _| {
            let event = appended?;
            ledger.state = evolve_ledger(std::mem::take(&mut ledger.state), &event);
            Ok(())
        })
    }
}

impl Actor for ImcLedger {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(self.capacity);
        let store = Arc::clone(&self.store);
        // Nothing is served before the ledger is folded: `wait` holds the mailbox.
        ctx.wait(
            journal::rehydrate(store, IMC_LEDGER_STREAM.to_string(), evolve_ledger)
                .into_actor(self)
                .map(|loaded, ledger, ctx| match loaded {
                    Ok(state) => ledger.state = state,
                    Err(error) => {
                        tracing::error!(%error, "the IMC ledger cannot be read; it stops");
                        ctx.stop();
                    }
                }),
        );
    }
}

impl Handler<Reserve> for ImcLedger {
    type Result = AtomicResponse<Self, Result<bool, StoreError>>;

    fn handle(&mut self, msg: Reserve, _ctx: &mut Self::Context) -> Self::Result {
        let held = self
            .state
            .usage_of(&msg.identity, &msg.site, Some(msg.placement));
        if !msg.quotas.admit(held.plus(msg.usage)) {
            return AtomicResponse::new(Box::pin(fut::ready(Ok(false))));
        }
        let event = LedgerEvent::UsageReserved {
            placement: msg.placement,
            identity: msg.identity,
            site: msg.site,
            usage: msg.usage,
        };
        AtomicResponse::new(Box::pin(self.append(event).map(|r, _, _| r.map(|()| true))))
    }
}

impl Handler<Release> for ImcLedger {
    type Result = AtomicResponse<Self, Result<(), StoreError>>;

    fn handle(&mut self, msg: Release, _ctx: &mut Self::Context) -> Self::Result {
        if !self.state.reservations.contains_key(&msg.placement) {
            return AtomicResponse::new(Box::pin(fut::ready(Ok(()))));
        }
        let event = LedgerEvent::UsageReleased {
            placement: msg.placement,
        };
        AtomicResponse::new(Box::pin(self.append(event)))
    }
}

impl Handler<Snapshot> for ImcLedger {
    type Result = MessageResult<Snapshot>;

    fn handle(&mut self, _msg: Snapshot, _ctx: &mut Self::Context) -> Self::Result {
        MessageResult(self.state.clone())
    }
}
