//! Reading and appending a stream of domain events, for the actors: rehydration
//! (read and fold) and appends at an expected version.

use std::sync::Arc;

use infralog_events::codec::DomainEvent;
use infralog_events::{
    AppendRequest, Appended, Envelope, EventStore, ExpectedVersion, Metadata, StoreError, StreamId,
};

/// The events read per call while rehydrating.
const READ_BATCH: usize = 1024;

/// Rebuilds an actor's state: reads the stream named `stream` from its start and
/// folds each event into the state with `evolve`, batch by batch. Every actor
/// rehydrates through here. Runs on the blocking pool: stream reads are blocking
/// calls.
pub(crate) async fn rehydrate<E, S>(
    store: Arc<dyn EventStore>,
    stream: String,
    evolve: fn(S, &E) -> S,
) -> Result<S, StoreError>
where
    E: DomainEvent + Send + 'static,
    S: Default + Send + 'static,
{
    rehydrate_with(store, stream, move |state, event: &E, _| {
        evolve(state, event)
    })
    .await
}

/// [`rehydrate`] for a fold that also reads each event's envelope (its recorded
/// time, for deadlines that must survive a restart).
pub(crate) async fn rehydrate_with<E, S>(
    store: Arc<dyn EventStore>,
    stream: String,
    fold: impl Fn(S, &E, &Envelope) -> S + Send + 'static,
) -> Result<S, StoreError>
where
    E: DomainEvent + Send + 'static,
    S: Default + Send + 'static,
{
    let stream = StreamId::new(stream)?;
    let task = tokio::task::spawn_blocking(move || {
        let mut state = S::default();
        let mut from = 1;
        loop {
            let batch = store.read_stream(&stream, from, READ_BATCH)?;
            let Some(last) = batch.last() else { break };
            from = last.version + 1;
            for envelope in &batch {
                let event = E::from_envelope(envelope).map_err(|error| {
                    StoreError::Inconsistent(format!(
                        "event at position {} of {stream} cannot be read: {error}",
                        envelope.position
                    ))
                })?;
                state = fold(state, &event, envelope);
            }
            if batch.len() < READ_BATCH {
                break;
            }
        }
        Ok(state)
    });
    task.await
        .map_err(|error| StoreError::Storage(format!("the reading task failed: {error}")))?
}

/// Whether `stream` holds any event. Runs on the blocking pool.
pub(crate) async fn has_events(
    store: Arc<dyn EventStore>,
    stream: StreamId,
) -> Result<bool, StoreError> {
    tokio::task::spawn_blocking(move || Ok(!store.read_stream(&stream, 1, 1)?.is_empty()))
        .await
        .map_err(|error| StoreError::Storage(format!("the reading task failed: {error}")))?
}

/// Appends `events` to `stream`, which must be at `expected_version`.
pub(crate) async fn append<E: DomainEvent>(
    store: &Arc<dyn EventStore>,
    stream: &StreamId,
    expected_version: u64,
    events: &[E],
    metadata: &Metadata,
) -> Result<Appended, StoreError> {
    let events = events
        .iter()
        .map(|event| event.to_new_event(metadata.clone()))
        .collect();
    store
        .append(AppendRequest {
            stream: stream.clone(),
            expected: ExpectedVersion::Exact(expected_version),
            events,
        })
        .await
}
