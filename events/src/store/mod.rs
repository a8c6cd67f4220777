//! The event store: the contract every backend keeps, and the sled backend.
//!
//! # Guarantees
//!
//! - An append that was answered `Ok` is durable: it survives `kill -9`.
//! - Versions in a stream and positions in the log are gapless and unique.
//! - Appends to one stream with the same expected version have exactly one winner;
//!   the others get [`StoreError::WrongExpectedVersion`] with the actual version.
//! - A multi-event append is all or nothing.
//! - Resending an append with the same event ids (same content, same expected
//!   version) succeeds with the original positions and writes nothing.
//! - A record whose checksum fails is an error naming its position, never skipped.
//! - An import ([`EventStore::import_streams`]) writes all of its streams in one
//!   batch or nothing; importing the same streams again writes nothing.
//!
//! # Threads
//!
//! Appends are answered through [`PendingAppend`], which can be awaited from async
//! code (an actor) without blocking its thread, or waited on from a plain thread.
//! Reads are blocking calls: run them on a dedicated thread or a blocking pool, never
//! on an actix or tokio worker.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use chrono::{DateTime, Utc};
use tokio::sync::{oneshot, watch};
use uuid::Uuid;

use crate::envelope::{Envelope, InvalidStreamId, Metadata, NewEvent, RecordError, StreamId};

mod checks;
/// The contract every store keeps, as tests any backend runs (test support only).
#[cfg(any(test, feature = "testing"))]
pub mod contract;
pub mod metrics;
mod pg_store;
/// A throwaway PostgreSQL database per test (test support only).
#[cfg(any(test, feature = "testing"))]
pub mod pg_testing;
mod sled_store;
mod subscription;

pub use pg_store::{Copied, LeaseHolder, PgStore, PgStoreConfig};
pub use sled_store::{
    CommitObserver, RecoveryReport, RepairReport, SledStore, SledStoreConfig, REPAIR_STREAM,
};
pub use subscription::Subscription;

/// What the stream's version must be for an append to go in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpectedVersion {
    /// Whatever it is.
    Any,
    /// The stream must not exist yet.
    NoStream,
    /// The stream must have exactly this many events (0: must not exist).
    Exact(u64),
}

impl ExpectedVersion {
    fn admits(self, actual: u64) -> bool {
        match self {
            ExpectedVersion::Any => true,
            ExpectedVersion::NoStream => actual == 0,
            ExpectedVersion::Exact(expected) => expected == actual,
        }
    }
}

/// An append request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendRequest {
    /// The stream the events go to.
    pub stream: StreamId,
    /// The version the stream must be at, or the append is refused.
    pub expected: ExpectedVersion,
    /// The events, in the order they take versions; all or none are appended.
    pub events: Vec<NewEvent>,
}

/// Where an append went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    /// The stream's version after the append.
    pub version: u64,
    /// The positions of the events, in order.
    pub positions: Vec<u64>,
    /// Whether the events were already in the log (a retried append).
    pub already_present: bool,
}

impl Appended {
    /// The position of the last event (0 for an empty append).
    pub fn last_position(&self) -> u64 {
        self.positions.last().copied().unwrap_or(0)
    }
}

/// An event recorded by another store, imported exactly as it was: same stream,
/// version, id, type, schema, time, metadata and payload. Only its position is new.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedEvent {
    /// The stream the event belongs to.
    pub stream: StreamId,
    /// Its version in the stream, as the source recorded it.
    pub version: u64,
    /// The event's unique id, as the source recorded it.
    pub event_id: Uuid,
    /// The stable type name of the domain event.
    pub event_type: String,
    /// The schema version the payload was written with.
    pub schema_version: u16,
    /// When the source first committed it.
    pub recorded_at: DateTime<Utc>,
    /// Who and what caused the event, as the source recorded it.
    pub metadata: Metadata,
    /// The encoded domain event, byte for byte.
    pub payload: Vec<u8>,
    /// CRC-32 of `payload` as the source recorded it; the import is refused when the
    /// payload does not match it.
    pub checksum: u32,
}

impl ImportedEvent {
    /// The event of a committed envelope (its position is dropped).
    pub fn from_envelope(envelope: &Envelope) -> Self {
        ImportedEvent {
            stream: envelope.stream.clone(),
            version: envelope.version,
            event_id: envelope.event_id,
            event_type: envelope.event_type.clone(),
            schema_version: envelope.schema_version,
            recorded_at: envelope.recorded_at,
            metadata: envelope.metadata.clone(),
            payload: envelope.payload.clone(),
            checksum: envelope.checksum,
        }
    }

    /// Whether `stored` holds this event (same id, type, schema and payload).
    pub fn is_stored_as(&self, stored: &Envelope) -> bool {
        stored.stream == self.stream
            && stored.version == self.version
            && stored.event_id == self.event_id
            && stored.event_type == self.event_type
            && stored.schema_version == self.schema_version
            && stored.payload == self.payload
    }
}

/// Whole streams to import, in the order their events are to take positions. Each
/// stream's events must be all of it: versions 1, 2, … in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportRequest {
    /// The events of every stream imported, in position order.
    pub events: Vec<ImportedEvent>,
}

/// Where an import went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imported {
    /// The positions of the events, in the request's order.
    pub positions: Vec<u64>,
    /// Whether every stream was already in the log with exactly these events (an
    /// import done before): nothing was written.
    pub already_present: bool,
}

impl Imported {
    /// The position of the last event (0 for an empty import).
    pub fn last_position(&self) -> u64 {
        self.positions.iter().copied().max().unwrap_or(0)
    }
}

/// Errors of the store boundary.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The stream is not at the version the append expected (another writer came
    /// first); nothing was written.
    #[error("stream {stream} is at version {actual}, the append expected {expected:?}")]
    WrongExpectedVersion {
        /// The stream appended to.
        stream: StreamId,
        /// What the append expected.
        expected: ExpectedVersion,
        /// The stream's version now (0 when it has no events).
        actual: u64,
    },
    /// An event's id is already in the log for another event, or for the same event
    /// at another place: not a retry, so nothing was written.
    #[error("event {event_id} is already in the log with different content or at another place")]
    EventIdConflict {
        /// The id in conflict.
        event_id: Uuid,
    },
    /// A stream name breaks the stream id rules.
    #[error(transparent)]
    InvalidStreamId(#[from] InvalidStreamId),
    /// An import names a stream the log already has with other events.
    #[error("stream {stream} already exists with other events: {reason}")]
    ImportConflict {
        /// The stream in conflict.
        stream: StreamId,
        /// How the stored stream differs, in words.
        reason: String,
    },
    /// An import that is not whole streams of sound events.
    #[error("invalid import: {0}")]
    InvalidImport(String),
    /// An append or import holds too many events, or a payload too many bytes; the
    /// text says which limit.
    #[error("the append is too large: {0}")]
    TooLarge(String),
    /// A stored record read back fails its check.
    #[error("the record at position {position} is damaged: {problem}")]
    Corrupt {
        /// The log position of the record.
        position: u64,
        /// What is wrong with it.
        problem: RecordError,
    },
    /// The log's records and its index disagree (a record missing, a name not
    /// UTF-8); the text says where.
    #[error("the log is inconsistent: {0}")]
    Inconsistent(String),
    /// sled or the file system failed; the text is their message.
    #[error("storage failure: {0}")]
    Storage(String),
    /// Another process (a running server) holds the log's lock.
    #[error("the event log in {0} is in use by another process")]
    InUse(String),
    /// A write failed earlier, so the log's state is not known: every write is
    /// refused until the store is reopened. The text is the first failure.
    #[error("the store failed earlier and refuses writes until it is reopened: {0}")]
    Failed(String),
    /// The store was shut down (its writer is gone); nothing more is done.
    #[error("the store is closed")]
    Closed,
    /// The log cannot be trusted: it lost acknowledged events, or a record, the
    /// index or the acknowledged-head record fails its check. Nothing was written.
    #[error("the event log is damaged: {0}")]
    Damaged(Damage),
    /// A store opened read-only (by the offline tools) takes no writes.
    #[error("the event log was opened read-only")]
    ReadOnly,
    /// The store's database cannot be reached now (PostgreSQL down, its
    /// connections refused or cut): nothing was written, and trying again later
    /// is safe. The text is the driver's.
    #[error("the event log's database cannot be reached: {0}")]
    Unavailable(String),
}

/// What is wrong with a damaged log (see [`StoreError::Damaged`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Damage {
    /// The log ends before the last acknowledged position.
    #[error(
        "it ends at position {head} but was acknowledged up to position {acknowledged}: \
         {lost} acknowledged events (positions {first_lost}..={acknowledged}) are lost",
        lost = acknowledged - head,
        first_lost = head + 1
    )]
    Lost {
        /// The last position the log holds (0 when it is empty).
        head: u64,
        /// The last position acknowledged to a writer.
        acknowledged: u64,
    },
    /// The log reaches the acknowledged position, but its events up to there are
    /// not the ones that were acknowledged.
    #[error(
        "its events up to the acknowledged position {acknowledged} are not the ones \
         that were acknowledged (their digest differs)"
    )]
    Diverged {
        /// The last position acknowledged to a writer.
        acknowledged: u64,
    },
    /// A stored record fails its checksum or does not decode.
    #[error("the record at position {position} fails its check: {problem}")]
    Record {
        /// The log position of the record.
        position: u64,
        /// What is wrong with it.
        problem: RecordError,
    },
    /// The records are not gapless, or the stream index disagrees with them.
    #[error("{0}")]
    Structure(String),
    /// The acknowledged-head record is missing while the log holds events.
    #[error(
        "the acknowledged-head record is missing while the log holds {head} events, \
         so a loss cannot be ruled out"
    )]
    AckRecordMissing {
        /// The last position the log holds.
        head: u64,
    },
    /// The acknowledged-head record fails its checksum or is malformed.
    #[error("the acknowledged-head record is damaged: {0}")]
    AckRecordDamaged(String),
}

impl Damage {
    /// How many acknowledged events the log no longer holds, when that is known.
    pub fn lost_events(&self) -> Option<u64> {
        match self {
            Damage::Lost { head, acknowledged } => Some(acknowledged - head),
            _ => None,
        }
    }
}

/// Whether a store takes writes (see [`EventStore::health`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreHealth {
    /// It takes writes.
    Writable,
    /// A write failed, so the log's state on disk is not known: every write is
    /// refused until the store is reopened. The text is the first failure.
    FailStopped(String),
    /// Opened read-only (the offline tools).
    ReadOnly,
    /// Shut down.
    Closed,
}

/// The answer to a write, awaitable or waitable.
pub struct Pending<T> {
    receiver: oneshot::Receiver<Result<T, StoreError>>,
}

/// The answer to an append.
pub type PendingAppend = Pending<Appended>;
/// The answer to an import.
pub type PendingImport = Pending<Imported>;

impl<T> Pending<T> {
    pub(crate) fn new(receiver: oneshot::Receiver<Result<T, StoreError>>) -> Self {
        Pending { receiver }
    }

    /// A write that is already decided (refused before reaching the writer).
    pub fn ready(result: Result<T, StoreError>) -> Self {
        let (sender, receiver) = oneshot::channel();
        let _ = sender.send(result);
        Pending { receiver }
    }

    /// Blocks the calling thread until the write is answered. Never call this from
    /// an async context.
    pub fn wait(self) -> Result<T, StoreError> {
        self.receiver
            .blocking_recv()
            .unwrap_or(Err(StoreError::Closed))
    }
}

impl<T> Future for Pending<T> {
    type Output = Result<T, StoreError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.receiver)
            .poll(cx)
            .map(|answer| answer.unwrap_or(Err(StoreError::Closed)))
    }
}

/// What every event store offers. See the module documentation for the guarantees.
pub trait EventStore: Send + Sync + 'static {
    /// Appends events to one stream.
    fn append(&self, request: AppendRequest) -> PendingAppend;

    /// Imports whole streams recorded elsewhere, keeping their event ids, versions,
    /// times, metadata and payloads, in one atomic write: every stream goes in or
    /// none. The streams must not exist yet; if all of them exist with exactly
    /// these events the import is answered `already_present` and writes nothing;
    /// any other existing stream is [`StoreError::ImportConflict`].
    fn import_streams(&self, request: ImportRequest) -> PendingImport;

    /// Up to `max` events of `stream` with versions from `from_version` (from 1).
    fn read_stream(
        &self,
        stream: &StreamId,
        from_version: u64,
        max: usize,
    ) -> Result<Vec<Envelope>, StoreError>;

    /// Up to `max` events of the whole log from `from_position` (from 1), in order.
    fn read_all(&self, from_position: u64, max: usize) -> Result<Vec<Envelope>, StoreError>;

    /// The version of a stream (0 when it does not exist).
    fn stream_version(&self, stream: &StreamId) -> Result<u64, StoreError>;

    /// Every stream with its version, in name order, from `after` (exclusive), at
    /// most `max`.
    fn list_streams(
        &self,
        after: Option<&StreamId>,
        max: usize,
    ) -> Result<Vec<(StreamId, u64)>, StoreError>;

    /// The position of the last durable event (0 for an empty log).
    fn head_position(&self) -> u64;

    /// The durable head, for async code that waits for a position.
    fn watch_head(&self) -> watch::Receiver<u64>;

    /// Every event committed after `after_position`, exactly once, in order.
    fn subscribe(&self, after_position: u64) -> Subscription;

    /// This store's instance id (kept across restarts).
    fn instance_id(&self) -> Uuid;

    /// The head of the log as the backend holds it now, whoever appended it (for
    /// an embedded log, [`Self::head_position`]). Blocking.
    fn latest_position(&self) -> Result<u64, StoreError> {
        Ok(self.head_position())
    }

    /// Whether it takes writes now: a server reports a fail-stopped log as
    /// unhealthy rather than wait for a client's write to find out.
    fn health(&self) -> StoreHealth;
}
