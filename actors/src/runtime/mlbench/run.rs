//! One MLBench run's actor: it creates the run's core infrastructure, starts a
//! worker process per rank through the executor, records their output, exits
//! and end, samples their pods' `/proc` metrics, and destroys the
//! infrastructure at the end.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use infralog_events::domain::batch::{ExitRecord, RunRecord};
use infralog_events::domain::ids::{run_stream_name, InfId};
use infralog_events::domain::mlbench::{evolve_run, OutputStream, RunEvent, RunState, RunStatus};
use infralog_events::store::metrics::MetricWrite;
use infralog_events::{Metadata, StoreError, StreamId};

use super::output::Tail;
use super::{waits, Ended, PodAddress, RunAdmission, RunFailure, Shared};
use crate::decide::mlbench::{decide, ranks_to_run, ActiveRun, RunCommand, RunLoss};
use crate::exec::JobSignal;
use crate::runtime::journal;

mod workers;

/// How often new output is recorded (at most one event per stream per tick).
const OUTPUT_EVERY: Duration = Duration::from_secs(1);
/// How long the processes of an ended run have between SIGTERM and SIGKILL.
const END_GRACE: Duration = Duration::from_secs(2);

/// Admission let the run start.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Admit;

/// A client deletes the run; answers the position of `RunDeleted`.
pub(crate) struct Delete;

impl Message for Delete {
    type Result = Result<u64, RunFailure>;
}

/// After a start: fail the run if it was started (killing what survives);
/// answers what admission must count if it still waits.
pub(crate) struct Recover;

impl Message for Recover {
    type Result = Result<Option<ActiveRun>, RunFailure>;
}

/// Stop the actor.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Stop;

/// The infrastructure was created (or not).
#[derive(Message)]
#[rtype(result = "()")]
struct Launched(Result<Vec<PodAddress>, String>);

/// A rank's process ended and was reaped.
#[derive(Message)]
#[rtype(result = "()")]
struct Exited {
    rank: u32,
    run: RunRecord,
    exit: ExitRecord,
}

/// Record the output written since the last tick.
#[derive(Message)]
#[rtype(result = "()")]
struct FlushOutput;

/// Its infrastructure, or one of its pods, is lost (the facades' follower read
/// it so).
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Observed {
    pub(crate) inf: InfId,
    pub(crate) loss: RunLoss,
}

/// The end of the grace of an ended run's processes.
#[derive(Message)]
#[rtype(result = "()")]
struct KillNow;

/// One run.
pub struct RunActor {
    id: u64,
    state: RunState,
    shared: Arc<Shared>,
    admission: Addr<RunAdmission>,
    /// The processes this server started and has not reaped, by rank.
    live: BTreeMap<u32, RunRecord>,
    tails: HashMap<(u32, OutputStream), Tail>,
    /// The last CPU reading of each rank's group.
    cpu: HashMap<u32, (u64, Instant)>,
    /// Whether the end's work (signals, destruction, admission) was done.
    ended: bool,
}

impl RunActor {
    pub(crate) fn new(id: u64, shared: Arc<Shared>, admission: Addr<RunAdmission>) -> Self {
        RunActor {
            id,
            state: RunState::default(),
            shared,
            admission,
            live: BTreeMap::new(),
            tails: HashMap::new(),
            cpu: HashMap::new(),
            ended: false,
        }
    }

    fn sandbox(&self, rank: u32) -> PathBuf {
        self.shared
            .config
            .root
            .join(self.id.to_string())
            .join(rank.to_string())
    }

    /// The events of `commands` in turn, each decided on the state the
    /// previous ones leave.
    fn plan(&self, commands: &[RunCommand]) -> Vec<RunEvent> {
        let mut next = self.state.clone();
        let mut events = Vec::new();
        for command in commands {
            let decided = decide(&next, command).unwrap_or_default();
            for event in &decided {
                next = evolve_run(next, event);
            }
            events.extend(decided);
        }
        events
    }

    /// Appends `events` at the run's version and folds them once durable;
    /// answers the last position (0 for none).
    fn append(
        &mut self,
        events: Vec<RunEvent>,
    ) -> impl ActorFuture<Self, Output = Result<u64, StoreError>> {
        let store = Arc::clone(&self.shared.store);
        let version = self.state.version;
        let stream = run_stream_name(self.id);
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
            |appended: Result<(Vec<RunEvent>, u64), StoreError>, run, _| {
                let (events, position) = appended?;
                for event in &events {
                    run.state = evolve_run(std::mem::take(&mut run.state), event);
                }
                Ok(position)
            },
        )
    }

    fn signal_all(&self, signal: JobSignal) {
        for run in self.live.values() {
            if let Err(error) = self.shared.executor.signal(run, signal) {
                tracing::warn!(%error, run = self.id, "an MLBench worker cannot be signalled");
            }
        }
    }

    /// Once the run ended: its processes are ended, its infrastructure
    /// destroyed, and admission told.
    fn after_change(&mut self, ctx: &mut Context<Self>) {
        if self.ended || !self.state.status.is_ended() {
            return;
        }
        self.ended = true;
        self.signal_all(JobSignal::Continue);
        self.signal_all(JobSignal::Terminate);
        if !self.live.is_empty() {
            ctx.notify_later(KillNow, END_GRACE);
        }
        self.shared
            .tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.id);
        self.destroy_infrastructure(ctx);
        self.admission.do_send(Ended { id: self.id });
    }

    fn destroy_infrastructure(&self, ctx: &mut Context<Self>) {
        let Some(inf) = self.state.inf_id else {
            return;
        };
        let id = self.id;
        let destroyed = self.shared.driver.destroy(inf);
        ctx.spawn(fut::wrap_future(async move {
            if let Err(error) = destroyed.await {
                tracing::warn!(%error, run = id, %inf, "an MLBench run's infrastructure cannot be destroyed");
            }
        }));
    }

    /// The output written since the last reading, as commands.
    fn new_output(&mut self, ranks: &[u32], last: bool) -> Vec<RunCommand> {
        let mut stdout = Vec::new();
        let mut stderr = Vec::new();
        for &rank in ranks {
            let sandbox = self.sandbox(rank);
            for (stream, file, lines) in [
                (OutputStream::Stdout, "stdout", &mut stdout),
                (OutputStream::Stderr, "stderr", &mut stderr),
            ] {
                let tail = self.tails.entry((rank, stream)).or_default();
                lines.extend(tail.read(&sandbox.join(file), last));
            }
        }
        let mut commands = Vec::new();
        for (stream, lines) in [
            (OutputStream::Stdout, stdout),
            (OutputStream::Stderr, stderr),
        ] {
            if !lines.is_empty() {
                commands.push(RunCommand::Output { stream, lines });
            }
        }
        commands
    }
}

impl Actor for RunActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(self.shared.config.mailbox_capacity);
        let store = Arc::clone(&self.shared.store);
        ctx.wait(
            journal::rehydrate(store, run_stream_name(self.id), evolve_run)
                .into_actor(self)
                .map(|loaded, run, ctx| match loaded {
                    Ok(state) => {
                        run.state = state;
                        run.ended = run.state.status.is_ended();
                    }
                    Err(error) => {
                        tracing::error!(%error, run = run.id, "an MLBench run cannot be read; its actor stops");
                        ctx.stop();
                    }
                }),
        );
        ctx.run_interval(OUTPUT_EVERY, |run, ctx| {
            if !run.live.is_empty() {
                ctx.notify(FlushOutput);
            }
        });
        ctx.run_interval(self.shared.config.sample_every, |run, ctx| run.sample(ctx));
    }
}

impl Handler<Admit> for RunActor {
    type Result = AtomicResponse<Self, ()>;

    fn handle(&mut self, _msg: Admit, _ctx: &mut Self::Context) -> Self::Result {
        let inf = InfId::random();
        let events = self.plan(&[RunCommand::Admit { inf_id: inf }]);
        if events.is_empty() {
            if self.state.status != RunStatus::Started {
                self.admission.do_send(Ended { id: self.id });
            }
            return AtomicResponse::new(Box::pin(fut::ready(())));
        }
        AtomicResponse::new(Box::pin(self.append(events).map(move |r, run, ctx| {
            if let Err(error) = r {
                tracing::warn!(%error, run = run.id, "an MLBench run's start cannot be recorded");
                run.admission.do_send(Ended { id: run.id });
                return;
            }
            let Some(request) = run.state.request.clone() else {
                return;
            };
            let created = run.shared.driver.create(inf, request);
            ctx.spawn(fut::wrap_future(created).map(
                |pods, _run: &mut RunActor, ctx: &mut Context<RunActor>| ctx.notify(Launched(pods)),
            ));
        })))
    }
}

impl Handler<Launched> for RunActor {
    type Result = AtomicResponse<Self, ()>;

    fn handle(&mut self, msg: Launched, ctx: &mut Self::Context) -> Self::Result {
        let done = || AtomicResponse::new(Box::pin(fut::ready(())));
        let Some(request) = self.state.request.clone() else {
            return done();
        };
        if self.state.status != RunStatus::Started {
            // Deleted or failed while its infrastructure was being created.
            self.destroy_infrastructure(ctx);
            return done();
        }
        let mut commands = Vec::new();
        let mut exits = Vec::new();
        match msg.0 {
            Err(reason) => commands.push(RunCommand::LaunchFailed {
                reason: format!("the run's infrastructure cannot be created: {reason}"),
            }),
            Ok(mut pods) => {
                pods.sort_by_key(|pod| pod.vm);
                let hosts: Vec<String> = pods.iter().map(|pod| pod.ip.clone()).collect();
                let token = self.shared.config.run_tokens.then(workers::new_token);
                if let Some(token) = &token {
                    self.shared
                        .tokens
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(self.id, token.clone());
                }
                for rank in ranks_to_run(&request) {
                    match self.start_rank(&request, &hosts, rank, token.as_deref()) {
                        Ok(started) => {
                            self.live.insert(rank, started.run);
                            commands.push(RunCommand::ProcessStarted {
                                rank,
                                pid: started.run.pid,
                                start_time: started.run.start_time,
                            });
                            exits.push((rank, started.run, started.exit));
                        }
                        Err(error) => {
                            commands.push(RunCommand::LaunchFailed {
                                reason: format!("the worker of rank {rank} cannot start: {error}"),
                            });
                            break;
                        }
                    }
                }
            }
        }
        let events = self.plan(&commands);
        AtomicResponse::new(Box::pin(self.append(events).map(move |r, run, ctx| {
            if let Err(error) = r {
                tracing::warn!(%error, run = run.id, "an MLBench run's processes cannot be recorded; they are killed");
                run.signal_all(JobSignal::Kill);
            }
            // Each process is reaped whatever happened.
            for (rank, process, exit) in exits {
                ctx.spawn(fut::wrap_future(async move { exit.await.ok() }).map(
                    move |exit, _run: &mut RunActor, ctx: &mut Context<RunActor>| {
                        let exit = exit.unwrap_or(ExitRecord {
                            code: -1,
                            ..ExitRecord::default()
                        });
                        ctx.notify(Exited {
                            rank,
                            run: process,
                            exit,
                        });
                    },
                ));
            }
            run.after_change(ctx);
        })))
    }
}

impl Handler<FlushOutput> for RunActor {
    type Result = AtomicResponse<Self, ()>;

    fn handle(&mut self, _msg: FlushOutput, _ctx: &mut Self::Context) -> Self::Result {
        let ranks: Vec<u32> = self.live.keys().copied().collect();
        let commands = self.new_output(&ranks, false);
        let events = self.plan(&commands);
        AtomicResponse::new(Box::pin(self.append(events).map(|r, run, ctx| {
            if let Err(error) = r {
                tracing::warn!(%error, run = run.id, "an MLBench run's output cannot be recorded");
            }
            run.after_change(ctx);
        })))
    }
}

impl Handler<Exited> for RunActor {
    type Result = AtomicResponse<Self, ()>;

    fn handle(&mut self, msg: Exited, _ctx: &mut Self::Context) -> Self::Result {
        if self.live.get(&msg.rank) == Some(&msg.run) {
            self.live.remove(&msg.rank);
        }
        self.cpu.remove(&msg.rank);
        let mut commands = self.new_output(&[msg.rank], true);
        let recorded = self
            .state
            .processes
            .get(&msg.rank)
            .is_some_and(|p| p.pid == msg.run.pid && p.exit.is_none());
        if recorded {
            let code = if msg.exit.by_signal {
                128 + msg.exit.code
            } else {
                msg.exit.code
            };
            commands.push(RunCommand::ProcessExited {
                rank: msg.rank,
                code,
            });
        }
        let events = self.plan(&commands);
        AtomicResponse::new(Box::pin(self.append(events).map(|r, run, ctx| {
            if let Err(error) = r {
                tracing::warn!(%error, run = run.id, "an MLBench worker's exit cannot be recorded");
            }
            run.after_change(ctx);
        })))
    }
}

impl Handler<Observed> for RunActor {
    type Result = AtomicResponse<Self, ()>;

    fn handle(&mut self, msg: Observed, _ctx: &mut Self::Context) -> Self::Result {
        // Before its processes are recorded its infrastructure may not be
        // recorded yet either: only a launched run can lose it.
        let launched = !self.state.processes.is_empty();
        let events = if launched && self.state.inf_id == Some(msg.inf) {
            self.plan(&[RunCommand::Lost(msg.loss)])
        } else {
            Vec::new()
        };
        AtomicResponse::new(Box::pin(self.append(events).map(|r, run, ctx| {
            if let Err(error) = r {
                tracing::warn!(%error, run = run.id, "an MLBench run's loss cannot be recorded");
            }
            run.after_change(ctx);
        })))
    }
}

impl Handler<KillNow> for RunActor {
    type Result = ();

    fn handle(&mut self, _msg: KillNow, _ctx: &mut Self::Context) {
        self.signal_all(JobSignal::Kill);
    }
}

impl Handler<Delete> for RunActor {
    type Result = AtomicResponse<Self, Result<u64, RunFailure>>;

    fn handle(&mut self, _msg: Delete, _ctx: &mut Self::Context) -> Self::Result {
        let events = match decide(&self.state, &RunCommand::Delete) {
            Ok(events) => events,
            Err(error) => return AtomicResponse::new(Box::pin(fut::ready(Err(error.into())))),
        };
        AtomicResponse::new(Box::pin(self.append(events).map(|r, run, ctx| {
            let position = r?;
            run.after_change(ctx);
            let deleted = run
                .shared
                .metrics
                .write_metrics(MetricWrite::DeleteSubject(format!("run:{}", run.id)));
            let id = run.id;
            ctx.spawn(fut::wrap_future(async move {
                if let Err(error) = deleted.await {
                    tracing::warn!(%error, run = id, "a deleted MLBench run's metrics cannot be removed");
                }
            }));
            Ok(position)
        })))
    }
}

impl Handler<Recover> for RunActor {
    type Result = AtomicResponse<Self, Result<Option<ActiveRun>, RunFailure>>;

    fn handle(&mut self, _msg: Recover, ctx: &mut Self::Context) -> Self::Result {
        let ready = |answer| AtomicResponse::new(Box::pin(fut::ready(answer)));
        let Some(request) = self.state.request.clone() else {
            return ready(Ok(None));
        };
        if waits(self.state.status) {
            return ready(Ok(Some(ActiveRun {
                name: request.name,
                num_workers: request.num_workers,
                admitted: false,
            })));
        }
        if self.live.is_empty() {
            let executor = &self.shared.executor;
            for process in self.state.processes.values() {
                let run = RunRecord {
                    pid: process.pid,
                    start_time: process.start_time,
                };
                if executor.kill_survivors(&run) {
                    tracing::info!(
                        run = self.id,
                        pid = run.pid,
                        "killed an MLBench worker left by an earlier server"
                    );
                }
            }
            // Workers spawned just before a crash, with no start recorded.
            for rank in 0..request.num_workers {
                executor.kill_unrecorded(&self.sandbox(rank));
            }
        }
        if self.state.status.is_ended() {
            // Its infrastructure may have outlived a crash at its end.
            self.destroy_infrastructure(ctx);
            return ready(Ok(None));
        }
        let events = self.plan(&[RunCommand::Interrupt]);
        AtomicResponse::new(Box::pin(self.append(events).map(|r, run, ctx| {
            r?;
            run.after_change(ctx);
            Ok(None)
        })))
    }
}

impl Handler<Stop> for RunActor {
    type Result = ();

    fn handle(&mut self, _msg: Stop, ctx: &mut Self::Context) {
        ctx.stop();
    }
}
