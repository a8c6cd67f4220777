//! A hook for whoever measures the log (the server's metrics): the writer thread
//! reports each group commit it flushed. This crate knows nothing of metrics
//! libraries or HTTP; the hook is one trait and a slot set once.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::envelope::Envelope;

/// Told of every group commit the writer flushed, on the writer thread: an
/// implementation must be cheap and must not block (count, compare a type name,
/// observe a histogram), since every append of the server waits behind it.
pub trait CommitObserver: Send + Sync + 'static {
    /// A group of `envelopes` was written and flushed; `flush` is how long the
    /// blocking `flush()` (the fsync) took. Groups that wrote nothing, and groups
    /// whose write failed, are not reported.
    fn group_committed(&self, envelopes: &[Arc<Envelope>], flush: Duration);
}

/// The observer of a store, shared by the store (which sets it) and its writer
/// thread (which calls it).
pub(super) type ObserverSlot = Arc<OnceLock<Arc<dyn CommitObserver>>>;
