//! The Batch facade's runtime: the singleton [`BatchScheduler`] (the only writer
//! of `batch-queue`: numbering and the FIFO of jobs waiting for a slot) and one
//! [`JobActor`] per job (`batch-job-<uuid>`), which owns the job's process.
//!
//! # Guarantees
//!
//! - A job's number is the queue stream's version after its `JobQueued`, so
//!   numbers are gapless from 1; `JobSubmitted` follows in the same atomic step
//!   of the scheduler, after the caller made the job's files durable.
//! - A run's pid and start time are recorded (`JobStarted`, and before it a pid
//!   file in the sandbox); after a restart, [`Jobs::recover`] kills whatever of an
//!   earlier run survives and evicts the job, which then runs again once.
//! - A slot is held from the scheduler's `Start` until the job's process has
//!   ended, so a held job's dying process never shares its slot.
//! - Slots are the pool's usable VMs, as the facade observes them
//!   ([`Jobs::observe_pool`]); a slot that leaves the pool evicts its job, which
//!   waits for a slot again.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use infralog_events::domain::batch::{
    evolve_queue, JobEvent, JobStatus, JobSubmission, QueueEvent, QueueState,
};
use infralog_events::domain::ids::{job_stream_name, BATCH_QUEUE_STREAM};
use infralog_events::domain::InfId;
use infralog_events::{EventStore, Metadata, StoreError, StreamId};
use uuid::Uuid;

use super::directory::ActorDirectory;
use super::journal;
use crate::decide::batch::{JobAction, JobError};
use crate::exec::SlotExecutors;

mod job;

pub use job::JobActor;
use job::{Act, Evict, Notify, Recover, Start};

/// Tells a job's end to the URL its submission gave.
pub trait Notifier: Send + Sync {
    /// POSTs `body` (JSON) to `url`; `Ok` for a 2xx answer, otherwise what failed.
    fn notify(
        &self,
        url: &str,
        body: String,
    ) -> futures_util::future::LocalBoxFuture<'static, Result<(), String>>;
}

/// How the Batch runtime behaves.
#[derive(Debug, Clone)]
pub struct BatchConfig {
    /// The wait before the second notification try; each later wait doubles.
    pub notify_retry: Duration,
    /// Pending messages one job accepts before answering busy.
    pub mailbox_capacity: usize,
    /// `<data-dir>/batch`: one sandbox per job.
    pub root: PathBuf,
}

/// Why the Batch runtime did not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum BatchFailure {
    /// A mailbox is full.
    #[error("too many operations are pending")]
    Busy,
    /// An actor stopped.
    #[error("the job's actor stopped")]
    Gone,
    /// The job refused.
    #[error(transparent)]
    Job(#[from] JobError),
    /// The log refused or failed.
    #[error("the log failed: {0}")]
    Store(#[from] StoreError),
}

impl<M> From<SendError<M>> for BatchFailure {
    fn from(error: SendError<M>) -> Self {
        match error {
            SendError::Full(_) => BatchFailure::Busy,
            SendError::Closed(_) => BatchFailure::Gone,
        }
    }
}

impl From<MailboxError> for BatchFailure {
    fn from(_: MailboxError) -> Self {
        BatchFailure::Gone
    }
}

/// What every job actor shares.
pub(crate) struct Shared {
    pub(crate) store: Arc<dyn EventStore>,
    pub(crate) executors: Arc<dyn SlotExecutors>,
    pub(crate) notifier: Arc<dyn Notifier>,
    pub(crate) config: BatchConfig,
}

/// Job actors by id, started (and rehydrated) on first use.
pub(crate) struct Directory {
    actors: ActorDirectory<Uuid, JobActor>,
    shared: Arc<Shared>,
    scheduler: Addr<BatchScheduler>,
}

impl Directory {
    pub(crate) fn job(&self, id: Uuid) -> Addr<JobActor> {
        self.actors.get_or_start(id, || {
            JobActor::new(id, Arc::clone(&self.shared), self.scheduler.clone())
        })
    }
}

/// The handle the API layer holds.
#[derive(Clone)]
pub struct Jobs {
    directory: Arc<Directory>,
}

impl Jobs {
    /// Starts the scheduler (which folds `batch-queue` before serving).
    pub fn new(
        store: Arc<dyn EventStore>,
        executors: Arc<dyn SlotExecutors>,
        notifier: Arc<dyn Notifier>,
        config: BatchConfig,
    ) -> Self {
        let shared = Arc::new(Shared {
            store,
            executors,
            notifier,
            config,
        });
        // The scheduler's address exists before the scheduler, so the directory
        // that both it and the job actors use can name it.
        let context = Context::<BatchScheduler>::new();
        let directory = Arc::new(Directory {
            actors: ActorDirectory::new(),
            shared,
            scheduler: context.address(),
        });
        context.run(BatchScheduler {
            directory: Arc::clone(&directory),
            queue: QueueState::default(),
            slots: BTreeMap::new(),
            running: HashMap::new(),
            waiting: BTreeMap::new(),
        });
        Jobs { directory }
    }

    /// The pool's core infrastructure: the one `batch-queue` names, or else
    /// `candidate`, recorded (`PoolCreated`) before the caller creates it.
    /// Answers the pool and whether it was just recorded.
    pub async fn pool(&self, candidate: InfId) -> Result<(InfId, bool), BatchFailure> {
        self.directory.scheduler.send(Pool { candidate }).await?
    }

    /// The pool as it is now: the slots that can run a job (the names of its
    /// running or configured VMs' streams), and the others, with their state,
    /// which is why a job on them is evicted.
    pub fn observe_pool(&self, usable: Vec<String>, others: Vec<(String, String)>) {
        self.directory
            .scheduler
            .do_send(PoolObserved { usable, others });
    }

    /// Tries the due notification of a completed job (after a restart).
    pub fn notify(&self, job: Uuid) {
        if let Err(error) = self.directory.job(job).try_send(Notify) {
            tracing::warn!(%error, %job, "a Batch job's notification cannot be resumed");
        }
    }

    /// Numbers and records a job whose files are durable; answers its number and
    /// the position of its `JobSubmitted`.
    pub async fn submit(
        &self,
        job: Uuid,
        submission: JobSubmission,
    ) -> Result<(u64, u64), BatchFailure> {
        self.directory
            .scheduler
            .send(Submit { job, submission })
            .await?
    }

    /// A client's action on a job; answers the position of what it recorded.
    pub async fn act(&self, job: Uuid, action: JobAction) -> Result<u64, BatchFailure> {
        self.directory.job(job).send(Act(action)).await?
    }

    /// After a start: kills what earlier runs left, evicts the jobs that were
    /// running, and queues every waiting job in number order. `jobs` are the
    /// jobs not at their end, with their numbers.
    pub async fn recover(&self, mut jobs: Vec<(u64, Uuid)>) {
        jobs.sort_unstable();
        for (cluster_id, id) in jobs {
            match self.directory.job(id).send(Recover).await {
                Ok(Ok(JobStatus::Idle)) => self.directory.scheduler.do_send(Enqueue {
                    job: id,
                    cluster_id,
                }),
                Ok(Ok(_)) => {}
                Ok(Err(error)) => {
                    tracing::warn!(%error, job = %id, "a Batch job cannot be recovered")
                }
                Err(error) => tracing::warn!(%error, job = %id, "a Batch job cannot be recovered"),
            }
        }
    }

    /// Stops the runtime's actors (their processes are left to the next start's
    /// recovery).
    pub fn shutdown(&self) {
        self.directory.scheduler.do_send(Shutdown);
    }
}

/// Number and record a job.
struct Submit {
    job: Uuid,
    submission: JobSubmission,
}

impl Message for Submit {
    type Result = Result<(u64, u64), BatchFailure>;
}

/// A job waits for a slot (again).
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Enqueue {
    pub(crate) job: Uuid,
    pub(crate) cluster_id: u64,
}

/// A job gave its slot back.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct SlotFreed {
    pub(crate) job: Uuid,
    pub(crate) slot: String,
}

/// Record the pool, unless one is recorded.
struct Pool {
    candidate: InfId,
}

impl Message for Pool {
    type Result = Result<(InfId, bool), BatchFailure>;
}

/// The pool's VMs now.
#[derive(Message)]
#[rtype(result = "()")]
struct PoolObserved {
    usable: Vec<String>,
    others: Vec<(String, String)>,
}

#[derive(Message)]
#[rtype(result = "()")]
struct Shutdown;

/// The singleton scheduler: numbering, the FIFO by number, and the slots.
pub struct BatchScheduler {
    directory: Arc<Directory>,
    queue: QueueState,
    /// The usable slots, by name, with the job each holds.
    slots: BTreeMap<String, Option<Uuid>>,
    /// Jobs holding a slot, with its name.
    running: HashMap<Uuid, String>,
    /// Jobs waiting for a slot, by number.
    waiting: BTreeMap<u64, Uuid>,
}

impl BatchScheduler {
    /// Gives free slots to the first waiting jobs.
    fn schedule(&mut self) {
        loop {
            let Some(slot) = self
                .slots
                .iter()
                .find(|(_, holder)| holder.is_none())
                .map(|(name, _)| name.clone())
            else {
                return;
            };
            let Some((_, job)) = self.waiting.pop_first() else {
                return;
            };
            if self.running.contains_key(&job) {
                continue;
            }
            self.slots.insert(slot.clone(), Some(job));
            self.running.insert(job, slot.clone());
            self.directory.job(job).do_send(Start { slot });
        }
    }
}

impl Actor for BatchScheduler {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let store = Arc::clone(&self.directory.shared.store);
        // Nothing is numbered before the queue is folded: `wait` holds the mailbox.
        ctx.wait(
            journal::rehydrate(store, BATCH_QUEUE_STREAM.to_string(), evolve_queue)
                .into_actor(self)
                .map(|loaded, scheduler, ctx| match loaded {
                    Ok(state) => scheduler.queue = state,
                    Err(error) => {
                        tracing::error!(%error, "the Batch queue cannot be read; it stops");
                        ctx.stop();
                    }
                }),
        );
    }
}

impl Handler<Submit> for BatchScheduler {
    type Result = AtomicResponse<Self, Result<(u64, u64), BatchFailure>>;

    fn handle(&mut self, msg: Submit, _ctx: &mut Self::Context) -> Self::Result {
        let store = Arc::clone(&self.directory.shared.store);
        let version = self.queue.version;
        let cluster_id = self.queue.jobs + 1;
        let queued = QueueEvent::JobQueued {
            job: msg.job,
            cluster_id,
        };
        let submitted = JobEvent::JobSubmitted(Box::new(JobSubmission {
            cluster_id,
            ..msg.submission
        }));
        let work = async move {
            let queue = StreamId::new(BATCH_QUEUE_STREAM)?;
            journal::append(
                &store,
                &queue,
                version,
                std::slice::from_ref(&queued),
                &Metadata::default(),
            )
            .await?;
            let stream = StreamId::new(job_stream_name(&msg.job))?;
            let appended =
                journal::append(&store, &stream, 0, &[submitted], &Metadata::default()).await;
            Ok::<_, StoreError>((queued, appended))
        };
        AtomicResponse::new(Box::pin(work.into_actor(self).map(
            move |result, scheduler, _| {
                let (queued, appended) = result?;
                // The number is taken once `JobQueued` is durable, whatever follows,
                // so the next job never reuses it.
                scheduler.queue = evolve_queue(std::mem::take(&mut scheduler.queue), &queued);
                let position = appended?.last_position();
                scheduler.waiting.insert(cluster_id, msg.job);
                scheduler.schedule();
                Ok((cluster_id, position))
            },
        )))
    }
}

impl Handler<Enqueue> for BatchScheduler {
    type Result = ();

    fn handle(&mut self, msg: Enqueue, _ctx: &mut Self::Context) {
        if !self.running.contains_key(&msg.job) {
            self.waiting.insert(msg.cluster_id, msg.job);
        }
        self.schedule();
    }
}

impl Handler<SlotFreed> for BatchScheduler {
    type Result = ();

    fn handle(&mut self, msg: SlotFreed, _ctx: &mut Self::Context) {
        // A job evicted from a slot may have a new one by the time its old
        // process is reaped: only the slot it holds is given back.
        if self.running.get(&msg.job) == Some(&msg.slot) {
            self.running.remove(&msg.job);
            if let Some(holder) = self.slots.get_mut(&msg.slot) {
                *holder = None;
            }
        }
        self.schedule();
    }
}

impl Handler<Pool> for BatchScheduler {
    type Result = AtomicResponse<Self, Result<(InfId, bool), BatchFailure>>;

    fn handle(&mut self, msg: Pool, _ctx: &mut Self::Context) -> Self::Result {
        if let Some(pool) = self.queue.pool {
            return AtomicResponse::new(Box::pin(fut::ready(Ok((pool, false)))));
        }
        let store = Arc::clone(&self.directory.shared.store);
        let version = self.queue.version;
        let created = QueueEvent::PoolCreated {
            inf_id: msg.candidate,
        };
        let work = async move {
            let queue = StreamId::new(BATCH_QUEUE_STREAM)?;
            journal::append(
                &store,
                &queue,
                version,
                std::slice::from_ref(&created),
                &Metadata::default(),
            )
            .await?;
            Ok::<_, StoreError>(created)
        };
        AtomicResponse::new(Box::pin(work.into_actor(self).map(
            move |result, scheduler, _| {
                let created = result?;
                scheduler.queue = evolve_queue(std::mem::take(&mut scheduler.queue), &created);
                Ok((msg.candidate, true))
            },
        )))
    }
}

impl Handler<PoolObserved> for BatchScheduler {
    type Result = ();

    fn handle(&mut self, msg: PoolObserved, _ctx: &mut Self::Context) {
        let gone: Vec<String> = self
            .slots
            .keys()
            .filter(|name| !msg.usable.contains(name))
            .cloned()
            .collect();
        for name in gone {
            let Some(Some(job)) = self.slots.remove(&name) else {
                continue;
            };
            self.running.remove(&job);
            let state = msg
                .others
                .iter()
                .find(|(other, _)| *other == name)
                .map(|(_, state)| state.as_str())
                .unwrap_or("removed");
            self.directory.job(job).do_send(Evict {
                slot: name.clone(),
                reason: format!("slot {name} is {state}"),
            });
        }
        for name in msg.usable {
            self.slots.entry(name).or_insert(None);
        }
        self.schedule();
    }
}

impl Handler<Shutdown> for BatchScheduler {
    type Result = ();

    fn handle(&mut self, _msg: Shutdown, ctx: &mut Self::Context) {
        for addr in self.directory.actors.take_all() {
            addr.do_send(job::Stop);
        }
        ctx.stop();
    }
}
