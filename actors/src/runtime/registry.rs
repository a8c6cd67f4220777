//! The registry: infrastructure id → actor, starting or rehydrating actors on first
//! use, spread over a few arbiter threads.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix::prelude::*;
use futures_util::future::LocalBoxFuture;
use infralog_events::domain::{InfId, VmId};
use infralog_events::EventStore;
use tokio::sync::oneshot;

use super::infrastructure::{InfrastructureActor, InfrastructureMessage, VmDispatch};
use super::mailbox::{self, Mailbox, MailboxDepth};
use super::vm::{VmActor, VmCommandMessage, VmWork};
use super::{
    ActorConfig, ActorError, CommandMetadata, Forget, InfrastructureRequest, Outcome, Shared,
    VmRequest,
};
use crate::connectors::Connectors;

/// The longest pause between two tries to find room in a full VM mailbox.
const MAX_ROOM_POLL: Duration = Duration::from_millis(20);

/// Starts, finds and stops actors. Cheap to clone.
#[derive(Clone)]
pub struct Registry {
    inner: Arc<Inner>,
}

struct Inner {
    /// What the actors need of the runtime; each actor holds a clone.
    shared: Arc<Shared>,
    arbiters: Vec<ArbiterHandle>,
    /// Kept so the threads live as long as the registry.
    _threads: Mutex<Vec<Arbiter>>,
    infrastructures: Mutex<HashMap<InfId, Running<InfrastructureActor>>>,
    vms: Mutex<HashMap<(InfId, VmId), Running<VmActor>>>,
    /// The serial of the next actor started.
    next_serial: AtomicU64,
    /// Messages waiting in the mailboxes of every infrastructure actor, and of
    /// every VM actor (see [`mailbox`]); stopped actors' included until they drain.
    infrastructures_waiting: Arc<AtomicU64>,
    vms_waiting: Arc<AtomicU64>,
}

/// An actor the registry started, and the serial that tells it from an actor that
/// later takes its place under the same id.
struct Running<A: Actor> {
    serial: u64,
    address: Addr<A>,
    /// What waits in its mailbox.
    mailbox: Mailbox,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("config", &self.inner.shared.config)
            .finish_non_exhaustive()
    }
}

impl Registry {
    /// A registry whose actors run on `config.arbiters` new arbiter threads.
    pub fn new(store: Arc<dyn EventStore>, connectors: Connectors, config: ActorConfig) -> Self {
        let threads: Vec<Arbiter> = (0..config.arbiters.max(1))
            .map(|_| Arbiter::new())
            .collect();
        let arbiters = threads.iter().map(Arbiter::handle).collect();
        Registry {
            inner: Arc::new(Inner {
                shared: Arc::new(Shared {
                    store,
                    connectors,
                    launches: tokio::sync::Semaphore::new(config.max_simultaneous_launches.max(1)),
                    config,
                }),
                arbiters,
                _threads: Mutex::new(threads),
                infrastructures: Mutex::new(HashMap::new()),
                vms: Mutex::new(HashMap::new()),
                next_serial: AtomicU64::new(0),
                infrastructures_waiting: Arc::new(AtomicU64::new(0)),
                vms_waiting: Arc::new(AtomicU64::new(0)),
            }),
        }
    }

    /// Sends a command to an infrastructure's actor and waits for its outcome.
    pub async fn infrastructure(
        &self,
        id: InfId,
        request: InfrastructureRequest,
        metadata: CommandMetadata,
    ) -> Result<Outcome, ActorError> {
        let (reply, answer) = oneshot::channel();
        let mut message = InfrastructureMessage {
            request,
            metadata,
            reply: Some(reply),
            queued: None,
        };
        // An actor may stop (idle) between lookup and send: try a fresh one once.
        for _ in 0..2 {
            match self.send_to_infrastructure(id, message) {
                Ok(()) => {
                    return answer.await.unwrap_or_else(|_| {
                        Err(ActorError::Failed(
                            "the infrastructure's actor stopped".into(),
                        ))
                    })
                }
                Err(SendError::Full(_)) => return Err(ActorError::Busy),
                Err(SendError::Closed(returned)) => message = returned,
            }
        }
        Err(ActorError::Failed(
            "the infrastructure's actor could not be started".into(),
        ))
    }

    /// Sends a command to a VM's actor and waits for its outcome.
    pub async fn vm(
        &self,
        inf: InfId,
        vm: VmId,
        request: VmRequest,
        metadata: CommandMetadata,
    ) -> Result<Outcome, ActorError> {
        self.send_vm_work(inf, vm, VmWork::Request(request), metadata, Duration::ZERO)
            .await
    }

    /// Asks a VM's actor to compare its cloud with the log and record a
    /// difference (`VmObserved`). A busy actor is not waited for: it is observed
    /// next time.
    pub async fn observe(&self, inf: InfId, vm: VmId) -> Result<Outcome, ActorError> {
        self.send_vm_work(
            inf,
            vm,
            VmWork::Observe,
            CommandMetadata::default(),
            Duration::ZERO,
        )
        .await
    }

    async fn send_vm_work(
        &self,
        inf: InfId,
        vm: VmId,
        work: VmWork,
        metadata: CommandMetadata,
        patience: Duration,
    ) -> Result<Outcome, ActorError> {
        let (reply, answer) = oneshot::channel();
        let mut message = VmCommandMessage {
            work,
            metadata,
            reply,
            queued: None,
        };
        let deadline = Instant::now() + patience;
        let mut pause = Duration::from_millis(1);
        let mut restarts = 0;
        loop {
            match self.send_to_vm(inf, vm, message) {
                Ok(()) => {
                    return answer.await.unwrap_or_else(|_| {
                        Err(ActorError::Failed("the VM's actor stopped".into()))
                    })
                }
                Err(SendError::Full(returned)) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return Err(ActorError::Busy);
                    }
                    // actix parks no sender that uses `try_send` (the only send that
                    // keeps the bound, see `send_to_infrastructure`), so poll.
                    actix::clock::sleep(pause.min(deadline - now)).await;
                    pause = (pause * 2).min(MAX_ROOM_POLL);
                    message = returned;
                }
                // An actor may stop (idle) between lookup and send: try a fresh one once.
                Err(SendError::Closed(returned)) if restarts == 0 => {
                    restarts += 1;
                    message = returned;
                }
                Err(SendError::Closed(_)) => {
                    return Err(ActorError::Failed(
                        "the VM's actor could not be started".into(),
                    ))
                }
            }
        }
    }

    /// How many actors are running (for tests and metrics).
    pub fn running_actors(&self) -> (usize, usize) {
        let infrastructures = lock(&self.inner.infrastructures).len();
        let vms = lock(&self.inner.vms).len();
        (infrastructures, vms)
    }

    /// The messages waiting in the infrastructure actors' mailboxes and in the VM
    /// actors' (for metrics): sent through the registry, not yet taken by a
    /// handler.
    pub fn mailbox_depths(&self) -> (MailboxDepth, MailboxDepth) {
        let deepest = |mailboxes: &mut dyn Iterator<Item = &Mailbox>| {
            mailboxes.map(Mailbox::waiting).max().unwrap_or(0)
        };
        let infrastructures = MailboxDepth {
            waiting: self.inner.infrastructures_waiting.load(Ordering::Relaxed),
            deepest: deepest(
                &mut lock(&self.inner.infrastructures)
                    .values()
                    .map(|r| &r.mailbox),
            ),
        };
        let vms = MailboxDepth {
            waiting: self.inner.vms_waiting.load(Ordering::Relaxed),
            deepest: deepest(&mut lock(&self.inner.vms).values().map(|r| &r.mailbox)),
        };
        (infrastructures, vms)
    }

    /// Stops every arbiter thread (their actors stop with them).
    pub fn shutdown(&self) {
        lock(&self.inner.infrastructures).clear();
        lock(&self.inner.vms).clear();
        for arbiter in lock(&self.inner._threads).drain(..) {
            arbiter.stop();
            let _ = arbiter.join();
        }
    }

    fn arbiter_for(&self, key: &impl Hash) -> &ArbiterHandle {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        key.hash(&mut hasher);
        let index = (hasher.finish() as usize) % self.inner.arbiters.len();
        &self.inner.arbiters[index]
    }

    /// Sends through the registry's own address of the actor: actix gives every
    /// address clone a slot of its own, so sending through clones would bypass the
    /// mailbox bound. A closed actor is forgotten, so the next try starts a new one.
    /// This and [`Registry::send_to_vm`] are the only ways commands reach the
    /// actors, so the mailbox counts ([`Registry::mailbox_depths`]) are kept here.
    // The error hands the message back for the retry; boxing it would only add an
    // allocation to every send.
    #[allow(clippy::result_large_err)]
    fn send_to_infrastructure(
        &self,
        id: InfId,
        message: InfrastructureMessage,
    ) -> Result<(), SendError<InfrastructureMessage>> {
        let mut actors = lock(&self.inner.infrastructures);
        let running = actors.entry(id).or_insert_with(|| {
            let serial = self.next_serial();
            let shared = Arc::clone(&self.inner.shared);
            let vms: Arc<dyn VmDispatch + Send + Sync> = Arc::new(self.clone());
            let registry = self.clone();
            let forget: Forget = Arc::new(move || registry.forget_infrastructure(id, serial));
            let capacity = shared.config.mailbox_capacity;
            let mailbox = Mailbox::of_kind(&self.inner.infrastructures_waiting);
            let own = mailbox.clone();
            let address =
                InfrastructureActor::start_in_arbiter(self.arbiter_for(&id), move |ctx| {
                    ctx.set_mailbox_capacity(capacity);
                    InfrastructureActor::new(id, shared, vms, forget, own)
                });
            Running {
                serial,
                address,
                mailbox,
            }
        });
        let sent = mailbox::try_send(&running.address, &running.mailbox, message);
        if matches!(sent, Err(SendError::Closed(_))) {
            actors.remove(&id);
        }
        sent
    }

    #[allow(clippy::result_large_err)]
    fn send_to_vm(
        &self,
        inf: InfId,
        vm: VmId,
        message: VmCommandMessage,
    ) -> Result<(), SendError<VmCommandMessage>> {
        let mut actors = lock(&self.inner.vms);
        let running = actors.entry((inf, vm)).or_insert_with(|| {
            let serial = self.next_serial();
            let shared = Arc::clone(&self.inner.shared);
            let registry = self.clone();
            let forget: Forget = Arc::new(move || registry.forget_vm(inf, vm, serial));
            let capacity = shared.config.mailbox_capacity;
            let address = VmActor::start_in_arbiter(self.arbiter_for(&(inf, vm)), move |ctx| {
                ctx.set_mailbox_capacity(capacity);
                VmActor::new(inf, vm, shared, forget)
            });
            Running {
                serial,
                address,
                mailbox: Mailbox::of_kind(&self.inner.vms_waiting),
            }
        });
        let sent = mailbox::try_send(&running.address, &running.mailbox, message);
        if matches!(sent, Err(SendError::Closed(_))) {
            actors.remove(&(inf, vm));
        }
        sent
    }

    fn next_serial(&self) -> u64 {
        self.inner.next_serial.fetch_add(1, Ordering::Relaxed)
    }

    /// Forgets an actor that stopped, unless another took its place (see [`Forget`]).
    fn forget_infrastructure(&self, id: InfId, serial: u64) {
        let mut actors = lock(&self.inner.infrastructures);
        if actors.get(&id).map(|running| running.serial) == Some(serial) {
            actors.remove(&id);
        }
    }

    fn forget_vm(&self, inf: InfId, vm: VmId, serial: u64) {
        let mut actors = lock(&self.inner.vms);
        if actors.get(&(inf, vm)).map(|running| running.serial) == Some(serial) {
            actors.remove(&(inf, vm));
        }
    }
}

impl VmDispatch for Registry {
    /// Work of the infrastructure's own for a VM's actor. A client's command meeting
    /// a full mailbox is refused at once (the client retries), but this work belongs
    /// to a command already accepted (a launch, a removal, one VM of an
    /// infrastructure-wide stop): it waits for room, up to
    /// [`ActorConfig::room_wait`], and only then answers [`ActorError::Busy`].
    fn vm_work(
        &self,
        inf: InfId,
        vm: VmId,
        work: VmWork,
        metadata: CommandMetadata,
    ) -> LocalBoxFuture<'static, Result<Outcome, ActorError>> {
        let registry = self.clone();
        let patience = self.inner.shared.config.room_wait;
        Box::pin(async move {
            registry
                .send_vm_work(inf, vm, work, metadata, patience)
                .await
        })
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
