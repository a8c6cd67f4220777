//! One Batch job's actor: it decides on actions and process outcomes, records
//! them, and drives the job's process through the executor.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use infralog_events::domain::batch::{
    evolve_job, ExitRecord, JobEvent, JobState, JobStatus, RunRecord,
};
use infralog_events::domain::ids::job_stream_name;
use infralog_events::{Metadata, StoreError, StreamId};
use uuid::Uuid;

use super::{BatchFailure, BatchScheduler, Enqueue, Shared, SlotFreed};
use crate::decide::batch::{decide, notification_due, JobAction, JobCommand, DELIVERED};
use crate::exec::local::sandbox_of;
use crate::exec::{Executor, JobSignal, RunSpec};
use crate::runtime::journal;

/// How long a held job's process has between SIGTERM and SIGKILL.
const HOLD_GRACE: Duration = Duration::from_secs(5);

/// The file in a sandbox naming the slot of its latest run, written before the
/// run starts: after a crash that left no `JobStarted`, it says which executor
/// looks for the run's survivors.
const SLOT_FILE: &str = "run.slot";

/// Run on slot `slot`.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Start {
    pub(crate) slot: String,
}

/// Its slot left the pool: its run is lost.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Evict {
    pub(crate) slot: String,
    pub(crate) reason: String,
}

/// Try the due notification of its end.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Notify;

/// A notification try ended.
#[derive(Message)]
#[rtype(result = "()")]
struct Notified {
    attempt: u32,
    outcome: String,
}

/// A client's action; answers the position of what was recorded.
pub(crate) struct Act(pub(crate) JobAction);

impl Message for Act {
    type Result = Result<u64, BatchFailure>;
}

/// After a start: kill what an earlier run left and evict the job if it was
/// running; answers its status.
pub(crate) struct Recover;

impl Message for Recover {
    type Result = Result<JobStatus, BatchFailure>;
}

/// Its process ended.
#[derive(Message)]
#[rtype(result = "()")]
struct Exited {
    run: RunRecord,
    exit: ExitRecord,
}

/// The end of the grace after a hold or a removal.
#[derive(Message)]
#[rtype(result = "()")]
struct KillNow {
    run: RunRecord,
}

/// Stop the actor.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Stop;

/// One job.
pub struct JobActor {
    id: Uuid,
    state: JobState,
    shared: Arc<Shared>,
    scheduler: Addr<BatchScheduler>,
    /// The process this server started and has not reaped yet.
    live: Option<RunRecord>,
    /// Its slot, and the executor that runs it.
    live_slot: Option<(String, Arc<dyn Executor>)>,
    /// A slot given while the previous process was still ending.
    pending_start: Option<String>,
    /// A notification try is under way.
    notifying: bool,
}

impl JobActor {
    pub(crate) fn new(id: Uuid, shared: Arc<Shared>, scheduler: Addr<BatchScheduler>) -> Self {
        JobActor {
            id,
            state: JobState::default(),
            shared,
            scheduler,
            live: None,
            live_slot: None,
            pending_start: None,
            notifying: false,
        }
    }

    fn sandbox(&self) -> std::path::PathBuf {
        sandbox_of(&self.shared.config.root, &self.id)
    }

    /// Appends `events` at the job's version and folds them once durable;
    /// answers the last position (0 for none).
    fn append(
        &mut self,
        events: Vec<JobEvent>,
    ) -> impl ActorFuture<Self, Output = Result<u64, StoreError>> {
        let store = Arc::clone(&self.shared.store);
        let version = self.state.version;
        let stream = job_stream_name(&self.id);
        async move {
            if events.is_empty() {
                return Ok((events, 0));
            }
            let stream = StreamId::new(stream)?;
            let appended =
                journal::append(&store, &stream, version, &events, &Metadata::default()).await?;
            Ok((events, appended.last_position()))
        }
        .into_actor(self)
        .map(
            |appended: Result<(Vec<JobEvent>, u64), StoreError>, job, _| {
                let (events, position) = appended?;
                for event in &events {
                    job.state = evolve_job(std::mem::take(&mut job.state), event);
                }
                Ok(position)
            },
        )
    }

    fn signal(&self, signal: JobSignal) {
        if let (Some(run), Some((_, executor))) = (&self.live, &self.live_slot) {
            if let Err(error) = executor.signal(run, signal) {
                tracing::warn!(%error, job = %self.id, "a Batch job's process cannot be signalled");
            }
        }
    }

    fn free_slot(&self, slot: String) {
        self.scheduler.do_send(SlotFreed { job: self.id, slot });
    }

    fn enqueue(&self) {
        self.scheduler.do_send(Enqueue {
            job: self.id,
            cluster_id: self.cluster_id(),
        });
    }

    /// Starts the due notification try, if any, after `delay`.
    fn notify_after(&mut self, delay: Duration, ctx: &mut Context<Self>) {
        if self.notifying || notification_due(&self.state).is_none() {
            return;
        }
        self.notifying = true;
        ctx.notify_later(Notify, delay);
    }

    fn cluster_id(&self) -> u64 {
        self.state
            .submission
            .as_ref()
            .map(|s| s.cluster_id)
            .unwrap_or(0)
    }

    /// What an action does to the process once recorded.
    fn enact(&mut self, action: JobAction, ctx: &mut Context<Self>) {
        match action {
            JobAction::Hold => {
                self.signal(JobSignal::Continue);
                self.signal(JobSignal::Terminate);
                if let Some(run) = self.live {
                    ctx.notify_later(KillNow { run }, HOLD_GRACE);
                }
            }
            JobAction::Remove => {
                self.signal(JobSignal::Continue);
                self.signal(JobSignal::Kill);
            }
            JobAction::Suspend => self.signal(JobSignal::Stop),
            JobAction::Continue => self.signal(JobSignal::Continue),
            JobAction::Release => {
                // A process still in its grace would overlap the next run.
                self.signal(JobSignal::Kill);
                self.enqueue();
            }
        }
    }
}

impl Actor for JobActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(self.shared.config.mailbox_capacity);
        let store = Arc::clone(&self.shared.store);
        ctx.wait(
            journal::rehydrate(store, job_stream_name(&self.id), evolve_job)
                .into_actor(self)
                .map(|loaded, job, ctx| match loaded {
                    Ok(state) => job.state = state,
                    Err(error) => {
                        tracing::error!(%error, job = %job.id, "a Batch job cannot be read; its actor stops");
                        ctx.stop();
                    }
                }),
        );
    }
}

impl Handler<Start> for JobActor {
    type Result = AtomicResponse<Self, ()>;

    fn handle(&mut self, msg: Start, _ctx: &mut Self::Context) -> Self::Result {
        let done = || AtomicResponse::new(Box::pin(fut::ready(())));
        if self.state.status != JobStatus::Idle {
            self.free_slot(msg.slot);
            return done();
        }
        if self.live.is_some() {
            self.pending_start = Some(msg.slot);
            return done();
        }
        let Some(submission) = self.state.submission.clone() else {
            self.free_slot(msg.slot);
            return done();
        };
        let sandbox = self.sandbox();
        let spec = RunSpec {
            has_input: submission.input_sha256.is_some(),
            sandbox,
            arguments: submission.arguments,
        };
        let slot = msg.slot;
        let executor = self.shared.executors.for_slot(&slot);
        let started = std::fs::write(self.sandbox().join(SLOT_FILE), &slot)
            .map_err(|source| crate::exec::ExecError::Spawn {
                sandbox: self.sandbox(),
                source,
            })
            .and_then(|()| executor.start(&spec));
        let started = match started {
            Ok(started) => started,
            Err(error) => {
                tracing::warn!(%error, job = %self.id, "a Batch job cannot start");
                let failed = vec![JobEvent::JobSubmissionFailed {
                    reason: error.to_string(),
                }];
                return AtomicResponse::new(Box::pin(self.append(failed).map(|r, job, _| {
                    if let Err(error) = r {
                        tracing::warn!(%error, job = %job.id, "a Batch job's failure cannot be recorded");
                    }
                    job.free_slot(slot);
                })));
            }
        };
        let run = started.run;
        self.live = Some(run);
        self.live_slot = Some((slot.clone(), executor));
        let events = match decide(&self.state, &JobCommand::Start { slot, run }) {
            Ok(events) => events,
            Err(error) => {
                tracing::warn!(%error, job = %self.id, "a Batch job refused its start");
                Vec::new()
            }
        };
        let exit = started.exit;
        AtomicResponse::new(Box::pin(self.append(events).map(move |r, job, ctx| {
            if let Err(error) = r {
                tracing::warn!(%error, job = %job.id, "a Batch job's start cannot be recorded; its process is killed");
                job.signal(JobSignal::Kill);
            }
            // The process is reaped whatever happened, and only then is the slot
            // given back.
            ctx.spawn(async move { exit.await.ok() }.into_actor(job).map(
                move |exit, _job, ctx| {
                    let exit = exit.unwrap_or(ExitRecord {
                        code: -1,
                        ..ExitRecord::default()
                    });
                    ctx.notify(Exited { run, exit });
                },
            ));
        })))
    }
}

impl Handler<Exited> for JobActor {
    type Result = AtomicResponse<Self, ()>;

    fn handle(&mut self, msg: Exited, _ctx: &mut Self::Context) -> Self::Result {
        let mut freed = None;
        if self.live == Some(msg.run) {
            self.live = None;
            freed = self.live_slot.take().map(|(slot, _)| slot);
        }
        let events = if self.state.run == Some(msg.run) {
            decide(&self.state, &JobCommand::Exit(msg.exit)).unwrap_or_default()
        } else {
            Vec::new()
        };
        AtomicResponse::new(Box::pin(self.append(events).map(|r, job, ctx| {
            if let Err(error) = r {
                tracing::warn!(%error, job = %job.id, "a Batch job's exit cannot be recorded");
            }
            // The slot (or the one given meanwhile) is given back.
            match (job.pending_start.take(), freed) {
                (Some(slot), old) => {
                    if let Some(old) = old.filter(|old| *old != slot) {
                        job.free_slot(old);
                    }
                    ctx.notify(Start { slot })
                }
                (None, Some(old)) => job.free_slot(old),
                (None, None) => {}
            }
            job.notify_after(Duration::ZERO, ctx);
        })))
    }
}

impl Handler<Act> for JobActor {
    type Result = AtomicResponse<Self, Result<u64, BatchFailure>>;

    fn handle(&mut self, msg: Act, _ctx: &mut Self::Context) -> Self::Result {
        let events = match decide(&self.state, &JobCommand::Act(msg.0)) {
            Ok(events) => events,
            Err(error) => return AtomicResponse::new(Box::pin(fut::ready(Err(error.into())))),
        };
        AtomicResponse::new(Box::pin(self.append(events).map(move |r, job, ctx| {
            let position = r?;
            job.enact(msg.0, ctx);
            Ok(position)
        })))
    }
}

impl Handler<KillNow> for JobActor {
    type Result = ();

    fn handle(&mut self, msg: KillNow, _ctx: &mut Self::Context) {
        if self.live == Some(msg.run) {
            self.signal(JobSignal::Kill);
        }
    }
}

impl Handler<Recover> for JobActor {
    type Result = AtomicResponse<Self, Result<JobStatus, BatchFailure>>;

    fn handle(&mut self, _msg: Recover, _ctx: &mut Self::Context) -> Self::Result {
        if self.live.is_none() {
            let executors = &self.shared.executors;
            if let (Some(run), Some(slot)) = (&self.state.run, &self.state.slot) {
                if executors.for_slot(slot).kill_survivors(run) {
                    tracing::info!(job = %self.id, pid = run.pid, "killed a Batch run left by an earlier server");
                }
            }
            // A run spawned just before a crash, with no `JobStarted` recorded,
            // on the slot its sandbox names (none: a run of a build before slot
            // files, which ran locally).
            let slot = std::fs::read_to_string(self.sandbox().join(SLOT_FILE)).unwrap_or_default();
            executors.for_slot(&slot).kill_unrecorded(&self.sandbox());
        }
        let events = if self.live.is_none() {
            decide(
                &self.state,
                &JobCommand::Evict {
                    reason: "restart".into(),
                },
            )
            .unwrap_or_default()
        } else {
            Vec::new()
        };
        AtomicResponse::new(Box::pin(
            self.append(events)
                .map(|r, job, _| Ok(r.map(|_| job.state.status)?)),
        ))
    }
}

impl Handler<Stop> for JobActor {
    type Result = ();

    fn handle(&mut self, _msg: Stop, ctx: &mut Self::Context) {
        ctx.stop();
    }
}

impl Handler<Evict> for JobActor {
    type Result = AtomicResponse<Self, ()>;

    fn handle(&mut self, msg: Evict, _ctx: &mut Self::Context) -> Self::Result {
        if self.pending_start.as_ref() == Some(&msg.slot) {
            self.pending_start = None;
        }
        let on_that_slot = self.live_slot.as_ref().is_some_and(|(s, _)| *s == msg.slot)
            || (self.live.is_none() && self.state.slot.as_ref() == Some(&msg.slot));
        let events = if on_that_slot {
            decide(
                &self.state,
                &JobCommand::Evict {
                    reason: msg.reason.clone(),
                },
            )
            .unwrap_or_default()
        } else {
            Vec::new()
        };
        if events.is_empty() {
            return AtomicResponse::new(Box::pin(fut::ready(())));
        }
        AtomicResponse::new(Box::pin(self.append(events).map(|r, job, _| {
            if let Err(error) = r {
                tracing::warn!(%error, job = %job.id, "a Batch job's eviction cannot be recorded");
                return;
            }
            // The slot's VM is gone: what ran there is ended, and the job waits
            // for another slot.
            job.signal(JobSignal::Continue);
            job.signal(JobSignal::Kill);
            job.enqueue();
        })))
    }
}

impl Handler<Notify> for JobActor {
    type Result = ();

    fn handle(&mut self, _msg: Notify, ctx: &mut Self::Context) {
        let (Some(attempt), Some(submission)) = (
            notification_due(&self.state),
            self.state.submission.as_ref(),
        ) else {
            self.notifying = false;
            return;
        };
        let Some(url) = submission.notify_url.clone() else {
            self.notifying = false;
            return;
        };
        self.notifying = true;
        let code = self.state.exit.map(|e| e.code).unwrap_or(0);
        let body =
            serde_json::json!({ "job-uuid": self.id.to_string(), "retcode": code }).to_string();
        let sent = self.shared.notifier.notify(&url, body);
        ctx.spawn(sent.into_actor(self).map(move |result, _job, ctx| {
            let outcome = match result {
                Ok(()) => DELIVERED.to_string(),
                Err(error) => error,
            };
            ctx.notify(Notified { attempt, outcome });
        }));
    }
}

impl Handler<Notified> for JobActor {
    type Result = AtomicResponse<Self, ()>;

    fn handle(&mut self, msg: Notified, _ctx: &mut Self::Context) -> Self::Result {
        let attempt = msg.attempt;
        let events = decide(
            &self.state,
            &JobCommand::Notified {
                attempt,
                outcome: msg.outcome,
            },
        )
        .unwrap_or_default();
        AtomicResponse::new(Box::pin(self.append(events).map(move |r, job, ctx| {
            job.notifying = false;
            if let Err(error) = r {
                tracing::warn!(%error, job = %job.id, "a Batch job's notification try cannot be recorded");
                return;
            }
            // 1 s, then 2 s (with the default base): each wait doubles.
            let delay = job.shared.config.notify_retry * 2u32.saturating_pow(attempt.saturating_sub(1));
            job.notify_after(delay, ctx);
        })))
    }
}
