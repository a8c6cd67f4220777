//! An infrastructure's history: its own stream and its VMs' streams merged in log
//! order, rendered for people and programs, folded back into what the read
//! endpoints served at any point, and the whole log verified.
//!
//! This is its own module rather than part of `projections` or `api` because
//! several faces share it (the `/events` route and `?at=` on the read properties,
//! the full-history export, the offline `events`/`replay`/`verify` commands, and
//! their tests) and none of it is HTTP: everything here is blocking store reads
//! and pure folds. Callers on an async runtime run it on the blocking pool.
//!
//! # Numbering
//!
//! Stop and start change only VM streams, so the infrastructure stream's own
//! version cannot name the state after them. A *history version* numbers the
//! events of the infrastructure and of all its VMs together, from 1, in the order
//! they were committed. `/events?from=`, `?at=`, `infralog events` and
//! `infralog replay --until` all take history versions; each event also carries its
//! own stream and version in that stream.
//!
//! # Earlier lives
//!
//! An id destroyed or evicted and then imported again has a history boundary in
//! its stream (`EpochStarted`, written before the import's other events). What
//! came before belongs to an earlier life, whose owners may not be the present
//! ones: every reading starts at the latest boundary, for everybody, and history
//! versions count from it.

use std::collections::VecDeque;

use infralog_events::codec::DomainEvent;
use infralog_events::domain::ids::VM_STREAM_PREFIX;
use infralog_events::domain::infrastructure::{InfrastructureEvent, EPOCH_STARTED};
use infralog_events::domain::{InfId, StreamOwner, VmId};
use infralog_events::{Envelope, EventStore, StoreError, StreamId};

pub mod fold;
pub mod render;
pub mod verify;

/// Events read from one stream per store call.
const STREAM_BATCH: usize = 256;
/// Streams listed per store call while finding an infrastructure's VM streams.
const LIST_BATCH: usize = 1024;

/// Why a history could not be read.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// The store could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An event's payload could not be decoded into a known event.
    #[error("event at position {position} ({stream} version {version}) does not decode: {reason}")]
    Undecodable {
        /// The event's position in the log.
        position: u64,
        /// The name of the stream that holds it.
        stream: String,
        /// Its version in that stream.
        version: u64,
        /// What the decoder reported.
        reason: String,
    },
    /// A stream misses versions: the log is damaged.
    #[error("{stream} skips from version {after} to {found}")]
    Gap {
        /// The name of the stream.
        stream: String,
        /// The last version read before the gap.
        after: u64,
        /// The version found where `after + 1` was expected.
        found: u64,
    },
    /// An event could not be folded into the infrastructure's view.
    #[error(transparent)]
    Projection(#[from] crate::projections::ProjectionError),
}

/// One event of an infrastructure's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEvent {
    /// The history version (see the module documentation), from 1.
    pub version: u64,
    /// The VM whose stream holds it, or `None` for the infrastructure's stream.
    pub vm: Option<VmId>,
    /// The event as committed: its stream, version in it, position, type and payload.
    pub envelope: Envelope,
}

/// One stream being read.
struct StreamCursor {
    stream: StreamId,
    vm: Option<VmId>,
    next_version: u64,
    buffer: VecDeque<Envelope>,
    exhausted: bool,
    /// Events before the latest history boundary, passed over.
    skipped: u64,
}

impl StreamCursor {
    fn new(stream: StreamId, vm: Option<VmId>) -> Self {
        StreamCursor {
            stream,
            vm,
            next_version: 1,
            buffer: VecDeque::new(),
            exhausted: false,
            skipped: 0,
        }
    }

    /// The next event's position, reading a batch when the buffer is empty.
    /// Events past `until_position` were committed after the reader began and
    /// are not part of this reading; events before `from_position` belong to an
    /// earlier life of the id.
    fn peek(
        &mut self,
        store: &dyn EventStore,
        from_position: u64,
        until_position: u64,
    ) -> Result<Option<u64>, HistoryError> {
        while self.buffer.is_empty() && !self.exhausted {
            let batch = store.read_stream(&self.stream, self.next_version, STREAM_BATCH)?;
            if batch.len() < STREAM_BATCH {
                self.exhausted = true;
            }
            for envelope in batch {
                if envelope.version != self.next_version {
                    return Err(HistoryError::Gap {
                        stream: self.stream.to_string(),
                        after: self.next_version - 1,
                        found: envelope.version,
                    });
                }
                self.next_version += 1;
                if envelope.position < from_position {
                    self.skipped += 1;
                } else if envelope.position <= until_position {
                    self.buffer.push_back(envelope);
                } else {
                    self.exhausted = true;
                    break;
                }
            }
        }
        Ok(self.buffer.front().map(|e| e.position))
    }
}

/// Reads an infrastructure's history in order, in batches: a merge by position of
/// its stream and every `vm-<id>-<n>` stream the store lists. This is the one place
/// that says which streams belong to an infrastructure. Streams are found by name
/// rather than from the events that plan VMs, so an event type added later that
/// creates VMs cannot hide their streams.
pub struct HistoryReader<'s> {
    store: &'s dyn EventStore,
    /// The infrastructure read, or `None` for one stream alone.
    inf: Option<InfId>,
    cursors: Vec<StreamCursor>,
    /// The log's head when reading began: the reading is a consistent snapshot.
    until_position: u64,
    /// The position of the latest history boundary (1 when there is none).
    from_position: u64,
    next_version: u64,
}

/// Whose history is read: an infrastructure's (its stream and its VMs'), or one
/// stream of another aggregate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HistorySubject {
    /// An infrastructure and its VMs.
    Infrastructure(InfId),
    /// One stream.
    Stream(StreamId),
}

impl HistorySubject {
    /// A reader of the subject's history as the log stands now.
    pub fn reader<'s>(&self, store: &'s dyn EventStore) -> Result<HistoryReader<'s>, HistoryError> {
        match self {
            HistorySubject::Infrastructure(inf) => HistoryReader::new(store, *inf),
            HistorySubject::Stream(stream) => Ok(HistoryReader::of_stream(store, stream.clone())),
        }
    }
}

impl std::fmt::Display for HistorySubject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HistorySubject::Infrastructure(inf) => write!(f, "{inf}"),
            HistorySubject::Stream(stream) => write!(f, "{stream}"),
        }
    }
}

impl<'s> HistoryReader<'s> {
    /// Starts reading the history of `inf` as the log stands now, from its latest
    /// boundary; events committed later are left out.
    pub fn new(store: &'s dyn EventStore, inf: InfId) -> Result<Self, HistoryError> {
        // The head first: a stream created after the listing below starts past it.
        let until_position = store.head_position();
        let stream = StreamId::new(inf.stream_name()).map_err(StoreError::from)?;
        let mut cursors = vec![StreamCursor::new(stream, None)];
        let prefix = format!("{VM_STREAM_PREFIX}{inf}-");
        let mut after = StreamId::new(prefix.clone()).map_err(StoreError::from)?;
        loop {
            let listed = store.list_streams(Some(&after), LIST_BATCH)?;
            let full = listed.len() == LIST_BATCH;
            for (stream, _) in &listed {
                if !stream.as_str().starts_with(&prefix) {
                    return Self::with_cursors(store, Some(inf), cursors, until_position);
                }
                if let Some(StreamOwner::Vm(owner, vm)) = StreamOwner::parse(stream.as_str()) {
                    if owner == inf {
                        cursors.push(StreamCursor::new(stream.clone(), Some(vm)));
                    }
                }
            }
            match listed.last() {
                Some((last, _)) if full => after = last.clone(),
                _ => return Self::with_cursors(store, Some(inf), cursors, until_position),
            }
        }
    }

    fn with_cursors(
        store: &'s dyn EventStore,
        inf: Option<InfId>,
        cursors: Vec<StreamCursor>,
        until_position: u64,
    ) -> Result<Self, HistoryError> {
        let from_position = match cursors.first() {
            Some(cursor) => latest_boundary(store, &cursor.stream, until_position)?,
            None => 1,
        };
        Ok(HistoryReader {
            store,
            inf,
            cursors,
            until_position,
            from_position,
            next_version: 1,
        })
    }

    /// How many events of each stream read so far lay before the latest history
    /// boundary (for `verify`, which accounts for every event of every stream).
    pub fn skipped(&self) -> impl Iterator<Item = (&StreamId, u64)> {
        self.cursors.iter().map(|c| (&c.stream, c.skipped))
    }

    /// The infrastructure being read (`None` for one stream alone).
    pub fn infrastructure(&self) -> Option<InfId> {
        self.inf
    }

    /// Starts reading one stream of another aggregate (a facade's: a placement,
    /// a job, a run) as the log stands now, numbered from 1 like an
    /// infrastructure's history. Such streams have no history boundary.
    pub fn of_stream(store: &'s dyn EventStore, stream: StreamId) -> Self {
        HistoryReader {
            store,
            inf: None,
            until_position: store.head_position(),
            cursors: vec![StreamCursor::new(stream, None)],
            from_position: 1,
            next_version: 1,
        }
    }

    /// The next event, or `None` at the end.
    pub fn next_event(&mut self) -> Result<Option<HistoryEvent>, HistoryError> {
        let mut best: Option<(usize, u64)> = None;
        for (index, cursor) in self.cursors.iter_mut().enumerate() {
            if let Some(position) =
                cursor.peek(self.store, self.from_position, self.until_position)?
            {
                if best.is_none_or(|(_, p)| position < p) {
                    best = Some((index, position));
                }
            }
        }
        let Some((index, _)) = best else {
            return Ok(None);
        };
        let cursor = &mut self.cursors[index];
        let vm = cursor.vm;
        let Some(envelope) = cursor.buffer.pop_front() else {
            return Ok(None);
        };
        let event = HistoryEvent {
            version: self.next_version,
            vm,
            envelope,
        };
        self.next_version += 1;
        Ok(Some(event))
    }

    /// Up to `max` next events (fewer only at the end).
    pub fn next_batch(&mut self, max: usize) -> Result<Vec<HistoryEvent>, HistoryError> {
        let mut batch = Vec::new();
        while batch.len() < max {
            match self.next_event()? {
                Some(event) => batch.push(event),
                None => break,
            }
        }
        Ok(batch)
    }

    /// Skips to history version `from` (the next event returned has it).
    pub fn skip_to(&mut self, from: u64) -> Result<(), HistoryError> {
        while self.next_version < from {
            if self.next_event()?.is_none() {
                break;
            }
        }
        Ok(())
    }
}

/// The position of the latest history boundary in an infrastructure's stream at or
/// before `until_position`, or 1 when it has none. Only the stored types are
/// read: nothing is decoded.
pub fn latest_boundary(
    store: &dyn EventStore,
    stream: &StreamId,
    until_position: u64,
) -> Result<u64, HistoryError> {
    let mut from = 1;
    let mut boundary = 1;
    loop {
        let batch = store.read_stream(stream, from, STREAM_BATCH)?;
        for envelope in &batch {
            if envelope.position > until_position {
                return Ok(boundary);
            }
            if envelope.event_type == EPOCH_STARTED {
                boundary = envelope.position;
            }
        }
        match batch.last() {
            Some(last) if batch.len() == STREAM_BATCH => from = last.version + 1,
            _ => return Ok(boundary),
        }
    }
}

pub(crate) fn decode_infrastructure(
    envelope: &Envelope,
) -> Result<InfrastructureEvent, HistoryError> {
    InfrastructureEvent::from_envelope(envelope).map_err(|e| undecodable(envelope, e.to_string()))
}

pub(crate) fn undecodable(envelope: &Envelope, reason: String) -> HistoryError {
    HistoryError::Undecodable {
        position: envelope.position,
        stream: envelope.stream.to_string(),
        version: envelope.version,
        reason,
    }
}

/// The envelopes of an infrastructure's present life (from its latest history
/// boundary, up to the head when the reading began), numbered as if that life had
/// been the id's only one: each stream from version 1. This is what a full-history
/// export holds, so that nothing of an earlier life leaves with it and the
/// document imports whole.
pub fn present_life(store: &dyn EventStore, inf: InfId) -> Result<Vec<Envelope>, HistoryError> {
    let mut reader = HistoryReader::new(store, inf)?;
    let mut versions: std::collections::HashMap<StreamId, u64> = Default::default();
    let mut envelopes = Vec::new();
    // In commit order, so each stream's events come in version order.
    while let Some(event) = reader.next_event()? {
        let mut envelope = event.envelope;
        let version = versions.entry(envelope.stream.clone()).or_default();
        *version += 1;
        envelope.version = *version;
        envelopes.push(envelope);
    }
    Ok(envelopes)
}

/// The whole history of an infrastructure (for the offline tools and tests).
pub fn read_history(store: &dyn EventStore, inf: InfId) -> Result<Vec<HistoryEvent>, HistoryError> {
    read_history_counted(store, inf).map(|(events, _)| events)
}

/// How many events of each stream lay before a history (in earlier lives of the id).
pub type Skipped = Vec<(StreamId, u64)>;

/// The whole history, and what lay before it.
pub fn read_history_counted(
    store: &dyn EventStore,
    inf: InfId,
) -> Result<(Vec<HistoryEvent>, Skipped), HistoryError> {
    let mut reader = HistoryReader::new(store, inf)?;
    let mut events = Vec::new();
    while let Some(event) = reader.next_event()? {
        events.push(event);
    }
    let skipped = reader
        .skipped()
        .map(|(stream, count)| (stream.clone(), count))
        .collect();
    Ok((events, skipped))
}
