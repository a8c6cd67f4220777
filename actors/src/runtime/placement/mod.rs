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

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::prelude::*;
use futures_util::future::LocalBoxFuture;
use infralog_events::domain::placement::{LedgerState, PlacementRequest, PlacementState};
use infralog_events::domain::InfId;
use infralog_events::{EventStore, StoreError};
use tokio::sync::oneshot;
use uuid::Uuid;

use super::ledger::{ImcLedger, Snapshot};
use super::mailbox::{self, Mailbox, MailboxDepth};
use crate::decide::placement::{CoreState, PlacementError};
use crate::decide::sites::Site;

mod actor;

use actor::{Core, PlacementActor, PlacementMessage, Shared, Work};

/// How placements behave (the `--imc-…` flags).
#[derive(Debug, Clone)]
pub struct PlacementConfig {
    /// Pending messages one placement accepts before answering busy.
    pub mailbox_capacity: usize,
    /// How long a waiting placement waits before a new round.
    pub waiting_retry: Duration,
    /// How long an attempt may take to be configured.
    pub attempt_timeout: Duration,
    /// How long a failed deletion waits before it is tried again.
    pub deletion_retry: Duration,
    /// How long a deleted or unable placement is kept before it is purged.
    pub purge_after: Duration,
    /// How many times an unconfigured attempt is contextualized again.
    pub max_reconfigures: u32,
    /// Tries of one flavour on one site per round, after the first.
    pub retries_per_flavour: u32,
}

impl Default for PlacementConfig {
    fn default() -> Self {
        PlacementConfig {
            mailbox_capacity: 64,
            waiting_retry: Duration::from_secs(800),
            attempt_timeout: Duration::from_secs(8000),
            deletion_retry: Duration::from_secs(7200),
            purge_after: Duration::from_secs(604_800),
            max_reconfigures: 6,
            retries_per_flavour: 2,
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

/// A placement actor's address and its mailbox's count.
type Started = (Addr<PlacementActor>, Mailbox);

/// Starts, finds and resumes placement actors, and holds the ledger. Cheap to
/// clone.
#[derive(Clone)]
pub struct Placements {
    shared: Arc<Shared>,
    arbiter: ArbiterHandle,
    actors: Arc<Mutex<HashMap<Uuid, Started>>>,
    /// Messages waiting in every placement's mailbox (see [`mailbox`]).
    waiting: Arc<AtomicU64>,
    _thread: Arc<Arbiter>,
}

impl std::fmt::Debug for Placements {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Placements")
            .field("config", &self.shared.config)
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
        Placements {
            shared: Arc::new(Shared {
                store,
                driver,
                ledger,
                catalogue: Arc::new(catalogue),
                config,
            }),
            arbiter,
            actors: Arc::new(Mutex::new(HashMap::new())),
            waiting: Arc::new(AtomicU64::new(0)),
            _thread: Arc::new(thread),
        }
    }

    /// The site catalogue.
    pub fn catalogue(&self) -> &[Site] {
        &self.shared.catalogue
    }

    /// What each identity holds on each site now.
    pub async fn ledger(&self) -> LedgerState {
        self.shared.ledger.send(Snapshot).await.unwrap_or_default()
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
        self.send(
            id,
            PlacementMessage {
                work: Work::Observed(inf, state),
                reply: None,
                queued: None,
            },
        )
    }

    /// Resumes a placement a restart interrupted.
    pub fn resume(&self, id: Uuid) -> Result<(), PlacementFailure> {
        self.send(
            id,
            PlacementMessage {
                work: Work::Resume,
                reply: None,
                queued: None,
            },
        )
    }

    /// The messages waiting in the placements' mailboxes (for metrics).
    pub fn mailbox_depth(&self) -> MailboxDepth {
        MailboxDepth {
            waiting: self.waiting.load(Ordering::Relaxed),
            deepest: lock(&self.actors)
                .values()
                .map(|(_, mailbox)| mailbox.waiting())
                .max()
                .unwrap_or(0),
        }
    }

    /// Stops the arbiter thread (its actors stop with it).
    pub fn shutdown(&self) {
        lock(&self.actors).clear();
        self.arbiter.stop();
    }

    async fn ask(&self, id: Uuid, work: Work) -> Result<u64, PlacementFailure> {
        let (reply, answer) = oneshot::channel();
        self.send(
            id,
            PlacementMessage {
                work,
                reply: Some(reply),
                queued: None,
            },
        )?;
        answer
            .await
            .unwrap_or_else(|_| Err(PlacementFailure::Failed("the actor stopped".into())))
    }

    fn send(&self, id: Uuid, message: PlacementMessage) -> Result<(), PlacementFailure> {
        let mut actors = lock(&self.actors);
        let mut message = message;
        // An actor may have stopped (a failed load): start a fresh one once.
        for _ in 0..2 {
            let (address, mailbox) = actors.entry(id).or_insert_with(|| {
                let shared = Arc::clone(&self.shared);
                let address =
                    PlacementActor::start_in_arbiter(&self.arbiter, move |_| PlacementActor {
                        core: Some(Core {
                            id,
                            state: PlacementState::default(),
                            shared,
                            refused: HashSet::new(),
                        }),
                        loaded: false,
                    });
                (address, Mailbox::of_kind(&self.waiting))
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
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
