//! The commit step every write handler ends with: send the command to its actor,
//! prepare it again when the infrastructure changed meanwhile, turn refusals into
//! the endpoint's answers (`errors.rs`), wait until the read model shows the
//! command's events, so the client reads its own write, and move the
//! infrastructure up the caller's list or not, as a named choice ([`Touch`]).
//! A whole-history import, whose events no actor decides, ends the same way
//! ([`Writer::import_history`]).
//!
//! # Why a lane
//!
//! Commands that depend on what the infrastructure looks like (an add merges into
//! the stored RADL, a reconfigure rewrites it, a change of owners extends the list)
//! are prepared against a view and carry the view's version; the actor refuses
//! them if the stream moved on. Left alone, concurrent clients of one
//! infrastructure would keep invalidating each other's preparations (with 50
//! clients most of them lost every round). Those conflicts are between our own
//! requests, never the client's fault, so the handlers of one infrastructure take
//! turns in a first-come first-served *lane*: each prepares against a view that
//! already shows the previous writer's events. What can still move a stream under
//! a prepared command is infralog's own background work (a contextualization run
//! ending) or another instance: the commit step waits for the read model to catch
//! up with the log and prepares again, up to [`MAX_ATTEMPTS`] times.
//!
//! The lane is bounded like the actors' mailboxes: with as many requests queued as
//! an actor's mailbox holds, one more is refused at once with 503 and
//! `Retry-After` (`ApiError::Busy`), as a full mailbox is.
//!
//! Commands that neither depend on a view nor change what one shows to a prepared
//! command (create, import, start and stop of every VM, the VM operations) need
//! no lane; they go through [`Writer::send`] and [`Writer::vm`], which answer and
//! wait the same way.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use infralog_actors::decide::DomainError;
use infralog_actors::runtime::{ActorError, InfrastructureRequest, Outcome, VmRequest};
use infralog_events::domain::{InfId, VmId};
use infralog_events::{ImportRequest, Imported};
use tokio::sync::{Mutex as TurnLock, OwnedMutexGuard};

use super::errors::{actor_error, import_error, ApiError, Endpoint};
use super::guard;
use super::respond::metadata;
use super::{AppState, RequestContext};
use crate::auth::Identity;
use crate::projections::InfrastructureView;

/// How many times one command is prepared before the request gives up with 503.
/// Inside a lane only background work can conflict, so one retry nearly always
/// suffices; the bound keeps a pathological case (another instance writing
/// without pause) from looping forever.
pub const MAX_ATTEMPTS: usize = 8;

/// Whether a write moves the infrastructure to the top of the caller's list.
///
/// IM lists infrastructures most recently *saved* first, and IM 2.0.0 saves on some
/// calls and not on others; infralog follows it call by call, so each write says
/// which it is. Every recorded event also counts as a change of the infrastructure
/// (`Recency::of`), so [`Touch::No`] shows only when a command records nothing (a
/// start of a running VM) and in ties.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Touch {
    /// IM saves the infrastructure on this call: create, import, add, remove,
    /// reconfigure, alter, a change of owners, destroy, export with `delete`.
    Yes,
    /// IM does not save on this call: start and stop (of the infrastructure or of
    /// one VM), reboot, snapshot.
    No,
}

/// The write lanes of all infrastructures. A lane exists while requests use it.
#[derive(Debug)]
pub struct Lanes {
    lanes: Mutex<HashMap<InfId, Arc<LaneState>>>,
    /// Requests that may wait behind the one whose turn it is.
    capacity: usize,
}

#[derive(Debug, Default)]
struct LaneState {
    turn: Arc<TurnLock<()>>,
    /// The request whose turn it is plus those waiting.
    queued: AtomicUsize,
}

impl Lanes {
    /// Lanes admitting `capacity` waiting requests (the actors' mailbox capacity).
    pub fn new(capacity: usize) -> Self {
        Lanes {
            lanes: Mutex::new(HashMap::new()),
            capacity: capacity.max(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<InfId, Arc<LaneState>>> {
        self.lanes.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A place in the lane of `id`, or `None` when the lane is full.
    fn enter(&self, id: InfId) -> Option<Ticket<'_>> {
        let state = Arc::clone(self.lock().entry(id).or_default());
        let ticket = Ticket {
            lanes: self,
            id,
            state,
        };
        // The ticket leaves the count as it found it when dropped, refused or not.
        let ahead = ticket.state.queued.fetch_add(1, Ordering::AcqRel);
        (ahead <= self.capacity).then_some(ticket)
    }

    /// How many infrastructures have requests in their lanes (for tests).
    pub fn in_use(&self) -> usize {
        self.lock().len()
    }
}

/// A request's place in a lane; leaving it forgets a lane nobody else holds.
#[derive(Debug)]
struct Ticket<'a> {
    lanes: &'a Lanes,
    id: InfId,
    state: Arc<LaneState>,
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        self.state.queued.fetch_sub(1, Ordering::AcqRel);
        let mut lanes = self.lanes.lock();
        // Every holder clones the entry under this lock, so two references (the
        // map's and ours) mean nobody else is in or entering the lane.
        if lanes
            .get(&self.id)
            .is_some_and(|state| Arc::ptr_eq(state, &self.state) && Arc::strong_count(state) == 2)
        {
            lanes.remove(&self.id);
        }
    }
}

/// What a write handler commits with: who asks, on which endpoint.
#[derive(Clone, Copy)]
pub struct Writer<'a> {
    /// The shared state of the service: actors, store, read model, lanes.
    pub state: &'a AppState,
    /// The request itself: its id goes into the events' metadata, its Accept list
    /// shapes the answers.
    pub context: &'a RequestContext,
    /// The authenticated caller, on whose behalf the command is sent.
    pub identity: &'a Identity,
    /// The endpoint, for its message prefix and status mapping of refusals.
    pub endpoint: Endpoint,
}

/// A committed command: what the actor did, the view it was prepared against and
/// what the preparation handed back.
#[derive(Debug)]
pub struct Committed<T> {
    /// What the actor did: where its events ended in the log, the new VMs and what
    /// the client is told.
    pub outcome: Outcome,
    /// The view of the infrastructure the command was prepared against.
    pub view: InfrastructureView,
    /// What `prepare` handed back with the command, for the handler's answer.
    pub prepared: T,
}

impl<'a> Writer<'a> {
    /// A writer for `identity` on `endpoint`.
    pub fn new(
        state: &'a AppState,
        context: &'a RequestContext,
        identity: &'a Identity,
        endpoint: Endpoint,
    ) -> Self {
        Writer {
            state,
            context,
            identity,
            endpoint,
        }
    }

    /// Waits for the turn of this request in the infrastructure's lane (503 at
    /// once when the lane is full).
    pub async fn lane(self, id: InfId) -> Result<Lane<'a>, ApiError> {
        let ticket = self.state.lanes.enter(id).ok_or(ApiError::Busy)?;
        let turn = Arc::clone(&ticket.state.turn).lock_owned().await;
        Ok(Lane {
            writer: self,
            id,
            _turn: turn,
            _ticket: ticket,
        })
    }

    /// Commits a command that needs no turn in the lane (a create, an import, a
    /// start or stop of every VM, an eviction): sends it, answers a refusal as the
    /// endpoint does and waits for the read model.
    pub async fn send(
        self,
        id: InfId,
        request: InfrastructureRequest,
        touch: Touch,
    ) -> Result<Outcome, ApiError> {
        let result = self
            .state
            .registry
            .infrastructure(id, request, metadata(self.context, self.identity))
            .await;
        self.finish(id, result, touch).await
    }

    /// Commits a command to one VM. VM commands carry no version, so they need no
    /// lane: a full VM mailbox is the client's burst and answers 503 at once.
    pub async fn vm(
        self,
        inf: InfId,
        vm: VmId,
        request: VmRequest,
        touch: Touch,
    ) -> Result<Outcome, ApiError> {
        let result = self
            .state
            .registry
            .vm(inf, vm, request, metadata(self.context, self.identity))
            .await;
        self.finish(inf, result, touch).await
    }

    /// Imports whole streams recorded elsewhere (a full-history import), which no
    /// actor decides: the store checks them against the log and writes them in one
    /// batch. It writes only streams it does not hold yet (an import of what it
    /// holds already writes nothing), so no actor holds a state of them that could
    /// go stale: the registry rehydrates the infrastructure from them on first use.
    pub async fn import_history(
        self,
        id: InfId,
        request: ImportRequest,
        touch: Touch,
    ) -> Result<Imported, ApiError> {
        let imported = self
            .state
            .store
            .import_streams(request)
            .await
            .map_err(|error| import_error(self.endpoint, id, error))?;
        self.settle(id, imported.last_position(), touch).await;
        Ok(imported)
    }

    async fn finish(
        self,
        id: InfId,
        result: Result<Outcome, ActorError>,
        touch: Touch,
    ) -> Result<Outcome, ApiError> {
        let outcome = result.map_err(|error| actor_error(self.endpoint, error))?;
        self.settle(id, outcome.position, touch).await;
        Ok(outcome)
    }

    /// The tail every commit shares: the read model shows `position`, then the
    /// infrastructure is moved up the list if the endpoint says so.
    async fn settle(self, id: InfId, position: u64, touch: Touch) {
        self.state.projections.wait_for(position).await;
        if touch == Touch::Yes {
            self.state.touch(id);
        }
    }
}

/// A request's turn in an infrastructure's lane; the next request's turn comes
/// when this is dropped.
pub struct Lane<'a> {
    writer: Writer<'a>,
    id: InfId,
    // Dropped in this order: the turn passes on, then the place is given up.
    _turn: OwnedMutexGuard<()>,
    _ticket: Ticket<'a>,
}

impl Lane<'_> {
    /// The infrastructure this lane belongs to.
    pub fn id(&self) -> InfId {
        self.id
    }

    /// The infrastructure as the read model shows it now, if it is still served
    /// and still the requester's.
    pub async fn view(&self) -> Result<InfrastructureView, ApiError> {
        let writer = self.writer;
        guard::owned(
            writer.state,
            writer.identity,
            &self.id.to_string(),
            writer.endpoint,
        )
        .await
    }

    /// Prepares a command against the current view and commits it. When the
    /// infrastructure changed between the two, the read model is brought up to the
    /// log and the command prepared again: `prepare` runs once per attempt and is
    /// where every refusal of the request itself belongs (an `Err` from it is the
    /// answer). A command that could not be placed after [`MAX_ATTEMPTS`] is a 503.
    pub async fn commit<T>(
        &self,
        touch: Touch,
        mut prepare: impl AsyncFnMut(
            &InfrastructureView,
        ) -> Result<(InfrastructureRequest, T), ApiError>,
    ) -> Result<Committed<T>, ApiError> {
        let writer = self.writer;
        for _ in 0..MAX_ATTEMPTS {
            let view = self.view().await?;
            let (request, prepared) = prepare(&view).await?;
            let result = writer
                .state
                .registry
                .infrastructure(self.id, request, metadata(writer.context, writer.identity))
                .await;
            if let Err(ActorError::Domain(DomainError::Conflict { .. })) = result {
                // The conflicting events are in the log already: once the read
                // model has everything the log has, the view shows them.
                let head = writer.state.store.head_position();
                writer.state.projections.wait_for(head).await;
                continue;
            }
            let outcome = writer.finish(self.id, result, touch).await?;
            return Ok(Committed {
                outcome,
                view,
                prepared,
            });
        }
        tracing::warn!(inf = %self.id, attempts = MAX_ATTEMPTS, "a command kept meeting concurrent changes");
        Err(writer.endpoint.unavailable(format!(
            "the infrastructure kept changing while the request was prepared ({MAX_ATTEMPTS} attempts); retry shortly"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> InfId {
        format!("6f1c2a3e-0000-11ef-8000-0000000000{n:02x}")
            .parse()
            .expect("a valid id")
    }

    #[test]
    fn a_lane_admits_its_capacity_behind_the_holder_and_refuses_more() {
        let lanes = Lanes::new(2);
        let first = lanes.enter(id(1)).expect("holder");
        let second = lanes.enter(id(1)).expect("one waiting");
        let third = lanes.enter(id(1)).expect("two waiting");
        assert!(lanes.enter(id(1)).is_none(), "a full lane refuses");
        // Another infrastructure's lane is its own.
        let other = lanes.enter(id(2)).expect("another lane");
        drop(third);
        let again = lanes.enter(id(1)).expect("room again after one left");
        drop((first, second, again, other));
        assert_eq!(lanes.in_use(), 0, "lanes nobody holds are forgotten");
    }

    #[test]
    fn refused_tickets_leave_the_count_as_they_found_it() {
        let lanes = Lanes::new(1);
        let holder = lanes.enter(id(3)).expect("holder");
        let waiting = lanes.enter(id(3)).expect("waiting");
        for _ in 0..5 {
            assert!(lanes.enter(id(3)).is_none());
        }
        drop(waiting);
        assert!(lanes.enter(id(3)).is_some());
        drop(holder);
        assert_eq!(lanes.in_use(), 0);
    }

    #[actix_web::test]
    async fn turns_come_in_arrival_order() {
        let lanes = Arc::new(Lanes::new(8));
        let order = Arc::new(Mutex::new(Vec::new()));
        let first = lanes.enter(id(4)).expect("holder");
        let first_turn = Arc::clone(&first.state.turn).lock_owned().await;
        let mut waiting = Vec::new();
        for n in 0..5 {
            let lanes = Arc::clone(&lanes);
            let order = Arc::clone(&order);
            waiting.push(actix_web::rt::spawn(async move {
                let ticket = lanes.enter(id(4)).expect("room");
                let _turn = Arc::clone(&ticket.state.turn).lock_owned().await;
                order.lock().expect("not poisoned").push(n);
            }));
            // Let each task queue before the next one starts.
            actix_web::rt::task::yield_now().await;
        }
        drop(first_turn);
        drop(first);
        for task in waiting {
            task.await.expect("task");
        }
        assert_eq!(*order.lock().expect("not poisoned"), vec![0, 1, 2, 3, 4]);
        assert_eq!(lanes.in_use(), 0);
    }
}
