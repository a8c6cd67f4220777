//! Read models fed by committed events; rebuilt from the log at start.
//!
//! One thread follows the log ([`spawn_follower`]) and applies every committed
//! event, in order, to the [`ReadModel`]. Handlers read it under a read lock, and
//! after a command they wait until the model has applied the command's last
//! position ([`Projections::wait_for`]), so a client always reads its own writes.

use std::sync::{Arc, RwLock, RwLockReadGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use infralog_events::{EventStore, StoreError};
use tokio::sync::watch;

pub mod batch;
pub mod imc;
pub mod mlbench;
pub mod model;
pub mod stats;
pub mod views;

pub use model::{OwnerEntry, OwnerIndex, ProjectionError, ReadModel};
pub use views::{CloudState, ContextLog, InfrastructureView, Lifecycle, VmView};

/// The events read per call while rebuilding.
const REBUILD_BATCH: usize = 10_000;

/// Why the read model could not be built.
#[derive(Debug, thiserror::Error)]
pub enum RebuildError {
    /// The log could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An event of the log could not be applied.
    #[error(transparent)]
    Projection(#[from] ProjectionError),
}

/// Folds the whole log into a fresh read model (at start, and for `verify`).
pub fn rebuild(store: &dyn EventStore) -> Result<ReadModel, RebuildError> {
    rebuild_until(store, u64::MAX)
}

/// Folds the log up to and including `position`.
pub fn rebuild_until(store: &dyn EventStore, position: u64) -> Result<ReadModel, RebuildError> {
    let mut model = ReadModel::default();
    loop {
        let batch = store.read_all(model.position + 1, REBUILD_BATCH)?;
        if batch.is_empty() {
            return Ok(model);
        }
        for envelope in &batch {
            if envelope.position > position {
                return Ok(model);
            }
            model.apply(envelope)?;
        }
    }
}

/// The live read model.
pub struct Projections {
    model: RwLock<ReadModel>,
    applied: watch::Sender<u64>,
}

impl std::fmt::Debug for Projections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Projections")
            .field("position", &self.position())
            .finish_non_exhaustive()
    }
}

impl Projections {
    /// Serves `model`, already folded up to its position (see [`rebuild`]).
    pub fn new(model: ReadModel) -> Self {
        let (applied, _) = watch::channel(model.position);
        Projections {
            model: RwLock::new(model),
            applied,
        }
    }

    /// Reads the model. Hold the guard briefly: the follower waits for it.
    pub fn read(&self) -> RwLockReadGuard<'_, ReadModel> {
        self.model.read().unwrap_or_else(|p| p.into_inner())
    }

    /// The last position applied.
    pub fn position(&self) -> u64 {
        *self.applied.borrow()
    }

    /// Waits until the model has applied `position`.
    pub async fn wait_for(&self, position: u64) {
        let mut applied = self.applied.subscribe();
        // The sender lives as long as `self`, so this only ends when reached.
        let _ = applied.wait_for(|applied| *applied >= position).await;
    }

    fn apply(&self, envelopes: &[Arc<infralog_events::Envelope>]) -> Result<(), ProjectionError> {
        let position = {
            let mut model = self.model.write().unwrap_or_else(|p| p.into_inner());
            for envelope in envelopes {
                model.apply(envelope)?;
            }
            model.position
        };
        self.applied.send_replace(position);
        Ok(())
    }
}

/// Follows the log from the model's position and applies every new event, until
/// the store closes. A projection error stops the follower loudly: serving a model
/// that skipped an event would be wrong.
pub fn spawn_follower(
    store: Arc<dyn EventStore>,
    projections: Arc<Projections>,
) -> std::io::Result<JoinHandle<()>> {
    spawn_follower_with_tap(store, projections, None)
}

/// [`spawn_follower`], also handing every applied batch to `tap` (the facades'
/// follower), so that what it reads of the model already includes the batch.
pub fn spawn_follower_with_tap(
    store: Arc<dyn EventStore>,
    projections: Arc<Projections>,
    tap: Option<std::sync::mpsc::Sender<Vec<Arc<infralog_events::Envelope>>>>,
) -> std::io::Result<JoinHandle<()>> {
    let mut subscription = store.subscribe(projections.position());
    drop(store);
    std::thread::Builder::new()
        .name("infralog-projections".into())
        .spawn(move || loop {
            match subscription.next_batch(Duration::from_millis(500)) {
                Ok(batch) if batch.is_empty() => {}
                Ok(batch) => {
                    if let Err(error) = projections.apply(&batch) {
                        tracing::error!(%error, "the read model cannot apply the log; reads are frozen at position {}", projections.position());
                        return;
                    }
                    if let Some(tap) = &tap {
                        // A gone receiver only means the facades stopped first.
                        let _ = tap.send(batch);
                    }
                }
                Err(StoreError::Closed) => return,
                Err(error) => {
                    tracing::error!(%error, "following the log failed; reads are frozen at position {}", projections.position());
                    return;
                }
            }
        })
}
