//! The facade follower: tells each placement how the core infrastructures it owns
//! are, the Batch scheduler how its pool is, and each MLBench run when it lost
//! its infrastructure or a pod, after every committed change of them, so facade
//! actors never poll.
//!
//! It is fed by the projections' follower with each batch the read model has just
//! applied, so the states it reads include the batch. It sends the state read at
//! the time of sending (not per event): a placement needs the latest state only,
//! and a placement whose mailbox is full is told again a moment later.

use std::collections::HashMap;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use infralog_actors::runtime::mlbench::{RunFailure, Runs};
use infralog_actors::runtime::placement::{PlacementFailure, Placements};
use infralog_events::domain::{InfId, StreamOwner};
use infralog_events::Envelope;
use uuid::Uuid;

use super::batch::Batch;
use super::imc::driver::core_state;
use super::mlbench::driver::run_loss;
use crate::projections::Projections;

/// How long a placement with a full mailbox waits to be told again.
const BUSY_RETRY: Duration = Duration::from_millis(50);

/// Starts the follower thread; it ends when the projections' follower does.
pub fn spawn(
    batches: Receiver<Vec<Arc<Envelope>>>,
    projections: Arc<Projections>,
    placements: Option<Placements>,
    batch: Option<Arc<Batch>>,
    runs: Option<Runs>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("infralog-facades".into())
        .spawn(move || {
            let mut pending: HashMap<InfId, Uuid> = HashMap::new();
            let mut pending_runs: HashMap<InfId, u64> = HashMap::new();
            loop {
                match batches.recv_timeout(BUSY_RETRY) {
                    Ok(applied) => {
                        let mut pool_changed = false;
                        let model = projections.read();
                        for envelope in &applied {
                            let Some(owner) = StreamOwner::parse(envelope.stream.as_str()) else {
                                continue;
                            };
                            let inf = owner.infrastructure();
                            pool_changed |= batch.as_ref().is_some_and(|b| b.pool() == inf);
                            if let Some(placement) = model.imc.owners.get(&inf) {
                                pending.insert(inf, *placement);
                            }
                            if let Some(run) = model.mlbench.owners.get(&inf) {
                                pending_runs.insert(inf, *run);
                            }
                        }
                        drop(model);
                        if let (true, Some(batch)) = (pool_changed, &batch) {
                            batch.observe_pool();
                        }
                    }
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => return,
                }
                if let Some(runs) = &runs {
                    let told: Vec<(InfId, u64)> =
                        pending_runs.iter().map(|(i, r)| (*i, *r)).collect();
                    for (inf, run) in told {
                        let loss = run_loss(projections.read().infrastructures.get(&inf));
                        let Some(loss) = loss else {
                            pending_runs.remove(&inf);
                            continue;
                        };
                        match runs.observe_loss(run, inf, loss) {
                            Err(RunFailure::Busy) => {}
                            _ => {
                                pending_runs.remove(&inf);
                            }
                        }
                    }
                }
                let Some(placements) = placements.as_ref().filter(|_| !pending.is_empty()) else {
                    continue;
                };
                let told: Vec<(InfId, Uuid)> = pending.iter().map(|(i, p)| (*i, *p)).collect();
                for (inf, placement) in told {
                    let state = core_state(projections.read().infrastructures.get(&inf));
                    match placements.observe(placement, inf, state) {
                        Err(PlacementFailure::Busy) => {}
                        Err(error) => {
                            tracing::warn!(%error, %inf, "a placement cannot be told of its infrastructure");
                            pending.remove(&inf);
                        }
                        Ok(()) => {
                            pending.remove(&inf);
                        }
                    }
                }
            }
        })
}
