//! The MLBench facade's runtime: the singleton [`RunAdmission`] (the only
//! writer of `mlbench-admission`: numbering, the one-active-run rule or the
//! queue) and one [`RunActor`] per run (`mlbench-run-<n>`), which owns the
//! run's core infrastructure and its worker processes.
//!
//! # Guarantees
//!
//! - A run's number is the admission stream's version after its
//!   `RunRequested`, so numbers are gapless from 1. The admission actor decides
//!   and appends in one atomic step, so two concurrent requests can never both
//!   pass the exclusive rule.
//! - A run's infrastructure id is recorded (`RunLaunched`) before it is
//!   created, and each process's pid and start time (`RunProcessStarted`, and a
//!   pid file in its sandbox before that); after a restart [`Runs::recover`]
//!   kills what survives, fails the run and destroys its infrastructure.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::prelude::*;
use futures_util::future::LocalBoxFuture;
use infralog_events::domain::ids::{run_stream_name, InfId, MLBENCH_ADMISSION_STREAM};
use infralog_events::domain::mlbench::{
    evolve_admission, AdmissionEvent, AdmissionState, RunEvent, RunRequest, RunStatus,
};
use infralog_events::store::metrics::MetricStore;
use infralog_events::{EventStore, Metadata, StoreError, StreamId};

use super::directory::ActorDirectory;
use super::journal;
use crate::decide::mlbench::{
    check_request, to_admit, ActiveRun, AdmissionError, AdmissionMode, RunLoss,
};
use crate::exec::Executor;

mod output;
mod run;

pub use run::RunActor;
use run::{Admit, Delete, Observed, Recover, Stop};

/// How the MLBench runtime behaves.
#[derive(Debug, Clone)]
pub struct MlbenchConfig {
    /// Exclusive or queued admission.
    pub mode: AdmissionMode,
    /// The most workers of one run, and of all started runs in queue mode.
    pub max_workers: u32,
    /// `<data-dir>/mlbench`: one sandbox per rank of each run.
    pub root: PathBuf,
    /// Pending messages one run accepts before answering busy.
    pub mailbox_capacity: usize,
    /// How often pods' `/proc` metrics are sampled.
    pub sample_every: Duration,
    /// The API's base URL the workers post to (`http://127.0.0.1:<port>`).
    pub api_url: String,
    /// The program official images run (`infralog`, with `mlbench-worker`).
    pub worker_program: PathBuf,
    /// The release in pod names.
    pub release: String,
    /// Whether runs get a bearer token for their metrics (under credentials).
    pub run_tokens: bool,
}

/// A pod of a run's infrastructure: its VM id and address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodAddress {
    /// The VM id (the rank it serves).
    pub vm: u32,
    /// `net_interface.0.ip`.
    pub ip: String,
}

/// What a run needs of the core, implemented by the API layer (which plans RADL
/// and holds the facade's identity).
pub trait RunDriver {
    /// Creates core infrastructure `inf` for `request` and answers its VMs once
    /// they are launched.
    fn create(
        &self,
        inf: InfId,
        request: RunRequest,
    ) -> LocalBoxFuture<'static, Result<Vec<PodAddress>, String>>;
    /// Destroys `inf` (an unknown or destroyed one is no error).
    fn destroy(&self, inf: InfId) -> LocalBoxFuture<'static, Result<(), String>>;
}

/// Why the MLBench runtime did not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum RunFailure {
    /// A mailbox is full.
    #[error("too many operations are pending")]
    Busy,
    /// An actor stopped.
    #[error("the run's actor stopped")]
    Gone,
    /// Admission refused.
    #[error(transparent)]
    Admission(#[from] AdmissionError),
    /// The run refused.
    #[error(transparent)]
    Run(#[from] crate::decide::mlbench::RunError),
    /// The log refused or failed.
    #[error("the log failed: {0}")]
    Store(#[from] StoreError),
}

impl<M> From<SendError<M>> for RunFailure {
    fn from(error: SendError<M>) -> Self {
        match error {
            SendError::Full(_) => RunFailure::Busy,
            SendError::Closed(_) => RunFailure::Gone,
        }
    }
}

impl From<MailboxError> for RunFailure {
    fn from(_: MailboxError) -> Self {
        RunFailure::Gone
    }
}

/// What every run actor shares.
pub(crate) struct Shared {
    pub(crate) store: Arc<dyn EventStore>,
    pub(crate) metrics: Arc<dyn MetricStore>,
    pub(crate) executor: Arc<dyn Executor>,
    pub(crate) driver: Arc<dyn RunDriver + Send + Sync>,
    pub(crate) config: MlbenchConfig,
    /// Bearer tokens of started runs (only in memory: a restart ends every run).
    pub(crate) tokens: Mutex<HashMap<u64, String>>,
}

/// Run actors by number, started (and rehydrated) on first use.
pub(crate) struct Directory {
    actors: ActorDirectory<u64, RunActor>,
    pub(crate) shared: Arc<Shared>,
    admission: Addr<RunAdmission>,
}

impl Directory {
    /// The actor of run `id` if it runs: callers outside actix (the facades'
    /// follower) cannot start one, and a run with processes has its actor.
    fn existing(&self, id: u64) -> Option<Addr<RunActor>> {
        self.actors.existing(&id)
    }

    pub(crate) fn run(&self, id: u64) -> Addr<RunActor> {
        self.actors.get_or_start(id, || {
            RunActor::new(id, Arc::clone(&self.shared), self.admission.clone())
        })
    }
}

/// The handle the API layer holds.
#[derive(Clone)]
pub struct Runs {
    directory: Arc<Directory>,
}

impl Runs {
    /// Starts admission (which folds `mlbench-admission` before serving).
    pub fn new(
        store: Arc<dyn EventStore>,
        metrics: Arc<dyn MetricStore>,
        executor: Arc<dyn Executor>,
        driver: Arc<dyn RunDriver + Send + Sync>,
        config: MlbenchConfig,
    ) -> Self {
        let shared = Arc::new(Shared {
            store,
            metrics,
            executor,
            driver,
            config,
            tokens: Mutex::new(HashMap::new()),
        });
        let context = Context::<RunAdmission>::new();
        let directory = Arc::new(Directory {
            actors: ActorDirectory::new(),
            shared,
            admission: context.address(),
        });
        context.run(RunAdmission {
            directory: Arc::clone(&directory),
            state: AdmissionState::default(),
            active: BTreeMap::new(),
        });
        Runs { directory }
    }

    /// Numbers and records a run (its `id` is set here); answers its number and
    /// the position of its `RunRequested`.
    pub async fn request(&self, request: RunRequest) -> Result<(u64, u64), RunFailure> {
        self.directory.admission.send(Request(request)).await?
    }

    /// Deletes a run; answers the position of `RunDeleted`.
    pub async fn delete(&self, id: u64) -> Result<u64, RunFailure> {
        self.directory.run(id).send(Delete).await?
    }

    /// Tells run `id` what it lost of its infrastructure `inf` (all of it, or a
    /// pod); the facades' follower calls this, so runs never poll.
    pub fn observe_loss(&self, id: u64, inf: InfId, loss: RunLoss) -> Result<(), RunFailure> {
        match self.directory.existing(id) {
            Some(actor) => Ok(actor.try_send(Observed { inf, loss })?),
            None => Ok(()),
        }
    }

    /// Whether `token` is the bearer token of started run `id`.
    pub fn token_matches(&self, id: u64, token: &str) -> bool {
        let tokens = self
            .directory
            .shared
            .tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        tokens.get(&id).is_some_and(|known| {
            known.len() == token.len()
                && known
                    .bytes()
                    .zip(token.bytes())
                    .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                    == 0
        })
    }

    /// After a start: fails the runs a restart interrupted (killing what
    /// survives of their processes, destroying their infrastructures) and puts
    /// the runs still waiting back in admission. `runs` are the runs not
    /// deleted and not at their end, plus ended runs whose infrastructure may
    /// still stand, by number.
    pub async fn recover(&self, mut runs: Vec<u64>) {
        runs.sort_unstable();
        for id in runs {
            match self.directory.run(id).send(Recover).await {
                Ok(Ok(Some(active))) => self.directory.admission.do_send(Waiting { id, active }),
                Ok(Ok(None)) => {}
                Ok(Err(error)) => {
                    tracing::warn!(%error, run = id, "an MLBench run cannot be recovered")
                }
                Err(error) => {
                    tracing::warn!(%error, run = id, "an MLBench run cannot be recovered")
                }
            }
        }
    }

    /// Stops the runtime's actors (their processes are left to the next
    /// start's recovery).
    pub fn shutdown(&self) {
        self.directory.admission.do_send(Shutdown);
    }
}

/// Number and record a run.
struct Request(RunRequest);

impl Message for Request {
    type Result = Result<(u64, u64), RunFailure>;
}

/// A run waiting for admission after a restart.
#[derive(Message)]
#[rtype(result = "()")]
struct Waiting {
    id: u64,
    active: ActiveRun,
}

/// A run ended (finished, failed or deleted): it no longer counts.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Ended {
    pub(crate) id: u64,
}

#[derive(Message)]
#[rtype(result = "()")]
struct Shutdown;

/// The singleton admission: numbering, the rule, and the queue.
pub struct RunAdmission {
    directory: Arc<Directory>,
    state: AdmissionState,
    /// Runs requested and not ended.
    active: BTreeMap<u64, ActiveRun>,
}

impl RunAdmission {
    /// Lets the runs the mode allows start.
    fn admit(&mut self) {
        let config = &self.directory.shared.config;
        for id in to_admit(&self.active, config.mode, config.max_workers) {
            if let Some(run) = self.active.get_mut(&id) {
                run.admitted = true;
            }
            self.directory.run(id).do_send(Admit);
        }
    }
}

impl Actor for RunAdmission {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let store = Arc::clone(&self.directory.shared.store);
        // Nothing is numbered before the stream is folded: `wait` holds the mailbox.
        ctx.wait(
            journal::rehydrate(
                store,
                MLBENCH_ADMISSION_STREAM.to_string(),
                evolve_admission,
            )
            .into_actor(self)
            .map(|loaded, admission, ctx| match loaded {
                Ok(state) => admission.state = state,
                Err(error) => {
                    tracing::error!(%error, "MLBench admission cannot be read; it stops");
                    ctx.stop();
                }
            }),
        );
    }
}

impl Handler<Request> for RunAdmission {
    type Result = AtomicResponse<Self, Result<(u64, u64), RunFailure>>;

    fn handle(&mut self, msg: Request, _ctx: &mut Self::Context) -> Self::Result {
        let mode = self.directory.shared.config.mode;
        if let Err(error) = check_request(&self.active, mode, &msg.0.name) {
            return AtomicResponse::new(Box::pin(fut::ready(Err(error.into()))));
        }
        let store = Arc::clone(&self.directory.shared.store);
        let version = self.state.version;
        let id = version + 1;
        let request = RunRequest { id, ..msg.0 };
        let numbered = AdmissionEvent::RunRequested {
            run: id,
            name: request.name.clone(),
            num_workers: request.num_workers,
        };
        let active = ActiveRun {
            name: request.name.clone(),
            num_workers: request.num_workers,
            admitted: false,
        };
        let requested = RunEvent::RunRequested(Box::new(request));
        let work = async move {
            let admission = StreamId::new(MLBENCH_ADMISSION_STREAM)?;
            journal::append(
                &store,
                &admission,
                version,
                std::slice::from_ref(&numbered),
                &Metadata::default(),
            )
            .await?;
            let stream = StreamId::new(run_stream_name(id))?;
            let appended =
                journal::append(&store, &stream, 0, &[requested], &Metadata::default()).await;
            Ok::<_, StoreError>((numbered, appended))
        };
        AtomicResponse::new(Box::pin(work.into_actor(self).map(
            move |result, admission, _| {
                let (numbered, appended) = result?;
                // The number is taken once `RunRequested` is durable in the
                // admission stream, whatever follows, so it is never reused.
                admission.state = evolve_admission(std::mem::take(&mut admission.state), &numbered);
                let position = appended?.last_position();
                admission.active.insert(id, active);
                admission.admit();
                Ok((id, position))
            },
        )))
    }
}

impl Handler<Waiting> for RunAdmission {
    type Result = ();

    fn handle(&mut self, msg: Waiting, _ctx: &mut Self::Context) {
        self.active.insert(msg.id, msg.active);
        self.admit();
    }
}

impl Handler<Ended> for RunAdmission {
    type Result = ();

    fn handle(&mut self, msg: Ended, _ctx: &mut Self::Context) {
        self.active.remove(&msg.id);
        self.admit();
    }
}

impl Handler<Shutdown> for RunAdmission {
    type Result = ();

    fn handle(&mut self, _msg: Shutdown, ctx: &mut Self::Context) {
        for addr in self.directory.actors.take_all() {
            addr.do_send(Stop);
        }
        ctx.stop();
    }
}

/// Whether a run in `status` still waits for admission after a restart.
pub(crate) fn waits(status: RunStatus) -> bool {
    status == RunStatus::Initialized
}
