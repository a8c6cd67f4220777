//! The IMC facade's placements: one actor per placement (`imc-placement-<uuid>`),
//! started or rehydrated on first use by [`Placements`], and the singleton
//! [`ImcLedger`] that holds quota reservations.
//!
//! A placement drives ordinary core infrastructures through a [`CoreDriver`] (the
//! API layer's create, reconfigure and destroy, under the facade's own IM
//! identity). It never polls them: the facade follower sends it each committed
//! change of the infrastructures it owns ([`Placements::observe`]).
//!
//! # Guarantees
//!
//! - Handlers are atomic: decide, append, evolve and the core call of a step never
//!   interleave with another message; mailboxes are bounded (a full one is
//!   [`PlacementFailure::Busy`]).
//! - `AttemptStarted`, with the new infrastructure's id, is durable before the
//!   infrastructure is created. After a restart an attempt without an outcome is
//!   followed: creating it again with the same id is refused by the core when it
//!   exists, so one attempt never has two infrastructures.
//! - Deletion wins: once `DeletionRequested` is recorded, whatever the attempt
//!   does later, its infrastructure is destroyed.
//! - Timers survive restarts and idle stops: every deadline counts from a
//!   recorded event's time (`decide::placement_timers`), and one alarm per
//!   placement, kept here rather than in its actor, wakes it when it falls due.
//! - An actor whose placement waits (for a timer, or at its end) retires after
//!   `idle_timeout` without work, in two phases as the core's actors do: it leaves
//!   the map first (a new message starts a fresh actor), then stops once a grace
//!   period passed with no work.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use actix::prelude::*;
use futures_util::future::LocalBoxFuture;
use infralog_events::domain::placement::{LedgerState, PlacementRequest};
use infralog_events::domain::InfId;
use infralog_events::{EventStore, StoreError};
use tokio::sync::oneshot;
use uuid::Uuid;

use super::ledger::{ImcLedger, Snapshot};
use super::mailbox::{self, Mailbox, MailboxDepth};
use crate::decide::placement::{CoreState, PlacementError};
use crate::decide::placement_timers::Timings;
use crate::decide::sites::Site;

mod actor;
mod tries;

use actor::{PlacementActor, PlacementMessage, Reply, Shared, Work};

/// How placements behave (the `--imc-…` flags).
#[derive(Debug, Clone)]
pub struct PlacementConfig {
    /// Pending messages one placement accepts before answering busy.
    pub mailbox_capacity: usize,
    /// Retries, timeouts and the purge.
    pub timings: Timings,
    /// How many times an unconfigured attempt is contextualized again.
    pub max_reconfigures: u32,
    /// Tries of one flavour on one site per round, after the first.
    pub retries_per_flavour: u32,
    /// A placement actor that waits (for a timer, or for nothing: a placement at
    /// its end) and had no work for this long stops; its next message, or its
    /// next timer, rehydrates it.
    pub idle_timeout: Duration,
}

impl Default for PlacementConfig {
    fn default() -> Self {
        PlacementConfig {
            mailbox_capacity: 64,
            timings: Timings::default(),
            max_reconfigures: 6,
            retries_per_flavour: 2,
            idle_timeout: Duration::from_secs(30),
        }
    }
}

/// One try, ready to create: the site, flavour and image, and the template with
/// its values substituted.
#[derive(Debug, Clone)]
pub struct AttemptSpec {
    /// The site (its name is the credential line's `id`).
    pub site: Site,
    /// The flavour's name.
    pub flavour: String,
    /// The RADL to create the infrastructure from.
    pub radl: String,
}

/// How a destruction went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destroyed {
    /// The infrastructure is destroyed, or never existed.
    Done,
    /// The core cannot destroy it now (its launches are under way); its next
    /// change is a new chance.
    NotYet,
    /// Destroying failed.
    Failed(String),
}

/// What a placement needs of the core, implemented by the API layer (which plans
/// RADL and holds the facade's identity).
pub trait CoreDriver {
    /// Creates core infrastructure `inf` for the try. If `inf` exists already (a
    /// creation repeated after a restart) it answers `Ok` and creates nothing.
    fn create(&self, inf: InfId, spec: AttemptSpec) -> LocalBoxFuture<'static, Result<(), String>>;
    /// Contextualizes `inf` again.
    fn reconfigure(&self, inf: InfId) -> LocalBoxFuture<'static, Result<(), String>>;
    /// Destroys `inf` and waits for its VMs to be finalized.
    fn destroy(&self, inf: InfId) -> LocalBoxFuture<'static, Destroyed>;
    /// How `inf` is now, by the read model (used when a placement resumes).
    fn observe(&self, inf: InfId) -> CoreState;
    /// The site's ratio of successful attempts over the last two hours.
    fn success_ratio(&self, site: &str) -> f64;
}

/// Why a placement did not do what was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlacementFailure {
    /// Its mailbox is full.
    #[error("too many operations are pending on this placement")]
    Busy,
    /// The decision refused.
    #[error(transparent)]
    Refused(#[from] PlacementError),
    /// The log failed.
    #[error("event log: {0}")]
    Store(#[from] StoreError),
    /// The actor failed.
    #[error("the placement's actor failed: {0}")]
    Failed(String),
}

/// Starts, finds and resumes placement actors, holds their alarms, and holds the
/// ledger. Cheap to clone.
#[derive(Clone)]
pub struct Placements {
    inner: Arc<Inner>,
    _thread: Arc<Arbiter>,
}

/// What the handle shares with its actors (which hold it weakly, to find their
/// alarms and to leave the map when they retire).
/// A running placement actor: the serial it was started with, its address and
/// its mailbox's count.
type Running = (u64, Addr<PlacementActor>, Mailbox);

pub(super) struct Inner {
    shared: Arc<Shared>,
    arbiter: ArbiterHandle,
    /// The running actors, each with the serial it was started with and its
    /// mailbox's count.
    actors: Mutex<HashMap<Uuid, Running>>,
    /// Messages waiting in every placement's mailbox (see [`mailbox`]).
    waiting: Arc<AtomicU64>,
    serial: AtomicU64,
    /// Each placement's earliest alarm. An alarm outlives its actor: it wakes the
    /// placement, rehydrating it when its actor retired.
    alarms: Mutex<HashMap<Uuid, SystemTime>>,
}

impl std::fmt::Debug for Placements {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Placements")
            .field("config", &self.inner.shared.config)
            .finish_non_exhaustive()
    }
}

impl Placements {
    /// Placements over `store`, creating core infrastructures through `driver`,
    /// with the sites of `catalogue`; their actors and the ledger run on one new
    /// arbiter thread.
    pub fn new(
        store: Arc<dyn EventStore>,
        driver: Arc<dyn CoreDriver + Send + Sync>,
        catalogue: Vec<Site>,
        config: PlacementConfig,
    ) -> Self {
        let thread = Arbiter::new();
        let arbiter = thread.handle();
        let ledger_store = Arc::clone(&store);
        let capacity = config.mailbox_capacity;
        let ledger = ImcLedger::start_in_arbiter(&arbiter, move |_| {
            ImcLedger::new(ledger_store, capacity.max(1))
        });
        let inner = Arc::new_cyclic(|placements| Inner {
            shared: Arc::new(Shared {
                store,
                driver,
                ledger,
                catalogue: Arc::new(catalogue),
                config,
                placements: placements.clone(),
            }),
            arbiter: arbiter.clone(),
            actors: Mutex::new(HashMap::new()),
            serial: AtomicU64::new(0),
            waiting: Arc::new(AtomicU64::new(0)),
            alarms: Mutex::new(HashMap::new()),
        });
        Placements {
            inner,
            _thread: Arc::new(thread),
        }
    }

    /// The site catalogue.
    pub fn catalogue(&self) -> &[Site] {
        &self.inner.shared.catalogue
    }

    /// What each identity holds on each site now.
    pub async fn ledger(&self) -> LedgerState {
        self.inner
            .shared
            .ledger
            .send(Snapshot)
            .await
            .unwrap_or_default()
    }

    /// How many placement actors run (retiring ones left out).
    pub fn running_actors(&self) -> usize {
        lock(&self.inner.actors).len()
    }

    /// The messages waiting in the placements' mailboxes (for metrics).
    pub fn mailbox_depth(&self) -> MailboxDepth {
        MailboxDepth {
            waiting: self.inner.waiting.load(Ordering::Relaxed),
            deepest: lock(&self.inner.actors)
                .values()
                .map(|(_, _, mailbox)| mailbox.waiting())
                .max()
                .unwrap_or(0),
        }
    }

    /// Records a new placement; the position of `PlacementRequested`.
    /// [`PlacementError::AlreadyExists`] when the id is taken.
    pub async fn request(
        &self,
        id: Uuid,
        request: PlacementRequest,
    ) -> Result<u64, PlacementFailure> {
        self.ask(id, Work::Request(Box::new(request))).await
    }

    /// Asks for a placement's deletion; the position of `DeletionRequested` (0 when
    /// it was already asked).
    pub async fn delete(&self, id: Uuid) -> Result<u64, PlacementFailure> {
        self.ask(id, Work::Delete).await
    }

    /// Tells a placement how one of its infrastructures is now. Never waits:
    /// [`PlacementFailure::Busy`] when its mailbox is full.
    pub fn observe(&self, id: Uuid, inf: InfId, state: CoreState) -> Result<(), PlacementFailure> {
        self.inner.send(id, Work::Observed(inf, state), None)
    }

    /// Resumes a placement a restart interrupted, and sets its timers from the
    /// times its events were recorded.
    pub fn resume(&self, id: Uuid) -> Result<(), PlacementFailure> {
        self.inner.send(id, Work::Resume, None)
    }

    /// Stops the arbiter thread (its actors stop with it).
    pub fn shutdown(&self) {
        lock(&self.inner.actors).clear();
        lock(&self.inner.alarms).clear();
        self.inner.arbiter.stop();
    }

    async fn ask(&self, id: Uuid, work: Work) -> Result<u64, PlacementFailure> {
        let (reply, answer) = oneshot::channel();
        self.inner.send(id, work, Some(reply))?;
        answer
            .await
            .unwrap_or_else(|_| Err(PlacementFailure::Failed("the actor stopped".into())))
    }
}

impl Inner {
    fn send(&self, id: Uuid, work: Work, reply: Option<Reply>) -> Result<(), PlacementFailure> {
        let mut actors = lock(&self.actors);
        let mut message = PlacementMessage {
            work,
            reply,
            queued: None,
        };
        // An actor may have stopped (idle, or a failed load): start a fresh one
        // once.
        for _ in 0..2 {
            let (_, address, mailbox) = actors.entry(id).or_insert_with(|| {
                let serial = self.serial.fetch_add(1, Ordering::Relaxed);
                let shared = Arc::clone(&self.shared);
                let address = PlacementActor::start_in_arbiter(&self.arbiter, move |_| {
                    PlacementActor::new(id, serial, shared)
                });
                (serial, address, Mailbox::of_kind(&self.waiting))
            });
            match mailbox::try_send(address, mailbox, message) {
                Ok(()) => return Ok(()),
                Err(SendError::Full(_)) => return Err(PlacementFailure::Busy),
                Err(SendError::Closed(returned)) => {
                    actors.remove(&id);
                    message = returned;
                }
            }
        }
        Err(PlacementFailure::Failed(
            "the placement's actor could not be started".into(),
        ))
    }

    /// Takes a retiring or stopped actor out of the map, unless another took its
    /// place already.
    pub(super) fn forget(&self, id: Uuid, serial: u64) {
        let mut actors = lock(&self.actors);
        if actors
            .get(&id)
            .is_some_and(|(known, _, _)| *known == serial)
        {
            actors.remove(&id);
        }
    }

    /// Wakes placement `id` at `at`, unless an alarm at or before `at` is set
    /// already (that one's wake sets the next). A wake finds its due steps from
    /// the placement's recorded times, so an extra one changes nothing.
    pub(super) fn arm(self: &Arc<Self>, id: Uuid, at: SystemTime) {
        {
            let mut alarms = lock(&self.alarms);
            if alarms.get(&id).is_some_and(|set| *set <= at) {
                return;
            }
            alarms.insert(id, at);
        }
        let delay = at
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO);
        let inner = Arc::downgrade(self);
        self.arbiter.spawn(async move {
            tokio::time::sleep(delay).await;
            let Some(inner) = inner.upgrade() else { return };
            {
                let mut alarms = lock(&inner.alarms);
                // Replaced by an earlier alarm, which woke it already.
                if alarms.get(&id) != Some(&at) {
                    return;
                }
                alarms.remove(&id);
            }
            // A full mailbox holds work whose every step sets the next alarm.
            if let Err(error) = inner.send(id, Work::Wake, None) {
                tracing::debug!(%error, placement = %id, "a placement's alarm found it busy");
            }
        });
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
