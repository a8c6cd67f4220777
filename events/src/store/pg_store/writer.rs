//! The group commit: one transaction per batch of this instance's appends.
//!
//! Every writer, on every instance, takes one transaction-scoped advisory lock
//! before it numbers its events, so positions are given in commit order and stay
//! gapless across instances: a reader that sees position `p` committed knows
//! every position below it is committed too. The unique indexes on
//! (stream, version) and on the event id are the database's own guard behind the
//! checks made here.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::Utc;
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::{Client, Transaction};
use uuid::Uuid;

use super::rows::{envelope_of, insert_envelopes, COLUMNS};
use super::{leadership, pg_error, Shared};
use crate::envelope::{payload_checksum, Envelope, Metadata, StreamId};
use crate::store::checks::{check_import, check_sizes};
use crate::store::{AppendRequest, Appended, ExpectedVersion, ImportRequest, Imported, StoreError};

/// The advisory lock every append transaction takes ("infralog" in ASCII).
pub(super) const APPEND_LOCK: i64 = 0x696e_6672_616c_6f67;
/// The channel that tells every instance the log grew; the payload is the head.
pub(super) const NOTIFY_CHANNEL: &str = "infralog_events";
/// The most events one group commit takes (appends are added while under it).
const MAX_GROUP_EVENTS: usize = 20_000;

/// A write waiting for the writer.
pub(super) enum Job {
    Append(AppendRequest, oneshot::Sender<Result<Appended, StoreError>>),
    Import(ImportRequest, oneshot::Sender<Result<Imported, StoreError>>),
}

impl Job {
    fn event_count(&self) -> usize {
        match self {
            Job::Append(request, _) => request.events.len(),
            Job::Import(request, _) => request.events.len(),
        }
    }
}

/// A job's answer, decided inside the transaction and sent only after it commits.
enum Outcome {
    Append(Result<Appended, StoreError>),
    Import(Result<Imported, StoreError>),
}

impl Outcome {
    fn wrote(&self) -> bool {
        match self {
            Outcome::Append(Ok(appended)) => {
                !appended.already_present && !appended.positions.is_empty()
            }
            Outcome::Import(Ok(imported)) => !imported.already_present,
            _ => false,
        }
    }
}

/// What the group has decided so far: the log as it will be after the commit.
struct Staging {
    next_position: u64,
    versions: HashMap<StreamId, u64>,
    by_id: HashMap<Uuid, Envelope>,
    envelopes: Vec<Envelope>,
    instance: Uuid,
}

/// Runs until every sender is gone, then drains and ends.
pub(super) async fn run(mut jobs: mpsc::UnboundedReceiver<Job>, shared: Arc<Shared>) {
    let mut client: Option<Client> = None;
    while let Some(first) = jobs.recv().await {
        let mut group = vec![first];
        let mut events = group[0].event_count();
        while events < MAX_GROUP_EVENTS {
            match jobs.try_recv() {
                Ok(job) => {
                    events += job.event_count();
                    group.push(job);
                }
                Err(_) => break,
            }
        }
        if client.as_ref().is_none_or(|c| c.is_closed()) {
            client = match shared.connect().await {
                Ok(connected) => Some(connected),
                Err(error) => {
                    tracing::warn!(%error, "the event store cannot reach PostgreSQL");
                    refuse(group, error);
                    continue;
                }
            };
        }
        let Some(connected) = client.as_mut() else {
            continue;
        };
        if let (true, Some(token)) = (shared.has_lost_leadership(), shared.fencing_token) {
            refuse(group, leadership::fenced(token, None));
            continue;
        }
        commit_group(connected, group, &shared).await;
    }
}

fn refuse(group: Vec<Job>, error: StoreError) {
    for job in group {
        match job {
            Job::Append(_, answer) => drop(answer.send(Err(error.clone()))),
            Job::Import(_, answer) => drop(answer.send(Err(error.clone()))),
        }
    }
}

async fn commit_group(client: &mut Client, group: Vec<Job>, shared: &Shared) {
    let started = std::time::Instant::now();
    match transact(client, &group, shared).await {
        Ok((outcomes, committed)) => {
            if let Some((head, envelopes)) = committed {
                shared.advance_head(head);
                shared.local_commit.notify_one();
                if let Some(observer) = shared.observer.get() {
                    let envelopes: Vec<Arc<Envelope>> =
                        envelopes.into_iter().map(Arc::new).collect();
                    observer.group_committed(&envelopes, started.elapsed());
                }
            }
            for (job, outcome) in group.into_iter().zip(outcomes) {
                match (job, outcome) {
                    (Job::Append(_, answer), Outcome::Append(result)) => {
                        let _ = answer.send(result);
                    }
                    (Job::Import(_, answer), Outcome::Import(result)) => {
                        let _ = answer.send(result);
                    }
                    (Job::Append(_, answer), Outcome::Import(_)) => {
                        let _ = answer.send(Err(StoreError::Closed));
                    }
                    (Job::Import(_, answer), Outcome::Append(_)) => {
                        let _ = answer.send(Err(StoreError::Closed));
                    }
                }
            }
        }
        // The transaction rolled back, or its commit was not confirmed: a caller
        // that resends the same events is answered from the log either way.
        Err(error) => refuse(group, error),
    }
}

/// Decides every job of the group and writes the accepted ones in one
/// transaction. Returns the outcomes and the new head (when anything was written).
async fn transact(
    client: &mut Client,
    group: &[Job],
    shared: &Shared,
) -> Result<(Vec<Outcome>, Option<(u64, Vec<Envelope>)>), StoreError> {
    let instance = shared.instance;
    let transaction = client.transaction().await.map_err(pg_error)?;
    transaction
        .execute("SELECT pg_advisory_xact_lock($1)", &[&APPEND_LOCK])
        .await
        .map_err(pg_error)?;
    if let Some(token) = shared.fencing_token {
        if let Err(fenced) = leadership::check_token(&transaction, token).await {
            shared.lose_leadership();
            return Err(fenced);
        }
    }
    let head: i64 = transaction
        .query_one(
            "SELECT coalesce(max(position), 0) FROM infralog_events",
            &[],
        )
        .await
        .map_err(pg_error)?
        .get(0);
    let mut staging = prefetch(&transaction, group, head as u64 + 1, instance).await?;
    let now = Utc::now();
    let outcomes: Vec<Outcome> = group
        .iter()
        .map(|job| match job {
            Job::Append(request, _) => Outcome::Append(staging.append(request, now)),
            Job::Import(request, _) => Outcome::Import(staging.import(request)),
        })
        .collect();
    if !outcomes.iter().any(Outcome::wrote) {
        transaction.rollback().await.map_err(pg_error)?;
        return Ok((outcomes, None));
    }
    write(&transaction, &staging).await?;
    transaction.commit().await.map_err(pg_error)?;
    let head = staging.next_position - 1;
    Ok((outcomes, Some((head, staging.envelopes))))
}

/// Reads what the group's checks need in two queries: the versions of its
/// streams and the stored events that carry its event ids.
async fn prefetch(
    transaction: &Transaction<'_>,
    group: &[Job],
    next_position: u64,
    instance: Uuid,
) -> Result<Staging, StoreError> {
    let mut streams = HashSet::new();
    let mut ids = Vec::new();
    for job in group {
        match job {
            Job::Append(request, _) => {
                streams.insert(request.stream.as_str().to_owned());
                ids.extend(request.events.iter().map(|e| e.event_id));
            }
            Job::Import(request, _) => {
                for event in &request.events {
                    streams.insert(event.stream.as_str().to_owned());
                    ids.push(event.event_id);
                }
            }
        }
    }
    let streams: Vec<String> = streams.into_iter().collect();
    let by_id_query = format!("SELECT {COLUMNS} FROM infralog_events WHERE event_id = ANY($1)");
    // Both queries go out at once: tokio-postgres pipelines them on the one
    // connection, so the group pays one round trip for them.
    let stream_params: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&streams];
    let id_params: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&ids];
    let (version_rows, id_rows) = tokio::try_join!(
        transaction.query(
            "SELECT stream, version FROM infralog_streams WHERE stream = ANY($1)",
            &stream_params,
        ),
        transaction.query(&by_id_query, &id_params),
    )
    .map_err(pg_error)?;
    let mut versions = HashMap::new();
    for row in version_rows {
        let stream = StreamId::new(row.get::<_, String>(0))?;
        versions.insert(stream, row.get::<_, i64>(1) as u64);
    }
    let mut by_id = HashMap::new();
    for row in id_rows {
        let envelope = envelope_of(&row)?;
        by_id.insert(envelope.event_id, envelope);
    }
    Ok(Staging {
        next_position,
        versions,
        by_id,
        envelopes: Vec::new(),
        instance,
    })
}

async fn write(transaction: &Transaction<'_>, staging: &Staging) -> Result<(), StoreError> {
    let head = (staging.next_position - 1).to_string();
    // Pipelined with the inserts; delivered to listeners only at commit.
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [&NOTIFY_CHANNEL, &head];
    let notify = transaction.execute("SELECT pg_notify($1, $2)", &params);
    tokio::try_join!(insert_envelopes(transaction, &staging.envelopes), async {
        notify.await.map_err(pg_error)
    },)?;
    Ok(())
}

impl Staging {
    fn version(&self, stream: &StreamId) -> u64 {
        self.versions.get(stream).copied().unwrap_or(0)
    }

    fn stage(&mut self, envelope: Envelope) {
        self.versions
            .insert(envelope.stream.clone(), envelope.version);
        self.by_id.insert(envelope.event_id, envelope.clone());
        self.envelopes.push(envelope);
    }

    fn append(
        &mut self,
        request: &AppendRequest,
        now: chrono::DateTime<Utc>,
    ) -> Result<Appended, StoreError> {
        check_sizes(request)?;
        let current = self.version(&request.stream);
        if let Some(retried) = self.retried(request)? {
            return Ok(retried);
        }
        if !request.expected.admits(current) {
            return Err(StoreError::WrongExpectedVersion {
                stream: request.stream.clone(),
                expected: request.expected,
                actual: current,
            });
        }
        let mut positions = Vec::with_capacity(request.events.len());
        let mut version = current;
        for event in &request.events {
            version += 1;
            let position = self.next_position;
            self.next_position += 1;
            self.stage(Envelope {
                position,
                stream: request.stream.clone(),
                version,
                event_id: event.event_id,
                event_type: event.event_type.clone(),
                schema_version: event.schema_version,
                recorded_at: event.recorded_at.unwrap_or(now),
                metadata: Metadata {
                    source_instance: event.metadata.source_instance.or(Some(self.instance)),
                    ..event.metadata.clone()
                },
                checksum: payload_checksum(&event.payload),
                payload: event.payload.clone(),
            });
            positions.push(position);
        }
        Ok(Appended {
            version,
            positions,
            already_present: false,
        })
    }

    /// Recognises a resent append: every one of its events already in its stream,
    /// in order, with the same content, where its expected version put them. An id
    /// that is in the log anywhere else is a conflict, never a second copy.
    fn retried(&self, request: &AppendRequest) -> Result<Option<Appended>, StoreError> {
        let mut seen = HashSet::with_capacity(request.events.len());
        for event in &request.events {
            if !seen.insert(event.event_id) {
                return Err(StoreError::EventIdConflict {
                    event_id: event.event_id,
                });
            }
        }
        let found: Vec<Option<&Envelope>> = request
            .events
            .iter()
            .map(|e| self.by_id.get(&e.event_id))
            .collect();
        if found.iter().all(Option::is_none) {
            return Ok(None);
        }
        let first_version = match request.expected {
            ExpectedVersion::Exact(n) => Some(n + 1),
            ExpectedVersion::NoStream => Some(1),
            ExpectedVersion::Any => None,
        };
        let mut positions = Vec::with_capacity(found.len());
        let mut previous: Option<u64> = first_version.map(|v| v - 1);
        for (event, stored) in request.events.iter().zip(&found) {
            let in_place = stored.filter(|stored| {
                stored.stream == request.stream
                    && previous.is_none_or(|p| stored.version == p + 1)
                    && stored.is_same_event(event)
            });
            let Some(stored) = in_place else {
                return Err(StoreError::EventIdConflict {
                    event_id: event.event_id,
                });
            };
            previous = Some(stored.version);
            positions.push(stored.position);
        }
        Ok(Some(Appended {
            version: previous.unwrap_or(0),
            positions,
            already_present: true,
        }))
    }

    fn import(&mut self, request: &ImportRequest) -> Result<Imported, StoreError> {
        let streams = check_import(request)?;
        let present: Vec<&(StreamId, u64)> = streams
            .iter()
            .filter(|(s, _)| self.version(s) > 0)
            .collect();
        if present.is_empty() {
            if let Some(event) = request
                .events
                .iter()
                .find(|e| self.by_id.contains_key(&e.event_id))
            {
                return Err(StoreError::ImportConflict {
                    stream: event.stream.clone(),
                    reason: format!("event {} is already in the log elsewhere", event.event_id),
                });
            }
            let mut positions = Vec::with_capacity(request.events.len());
            for event in &request.events {
                let position = self.next_position;
                self.next_position += 1;
                self.stage(Envelope {
                    position,
                    stream: event.stream.clone(),
                    version: event.version,
                    event_id: event.event_id,
                    event_type: event.event_type.clone(),
                    schema_version: event.schema_version,
                    recorded_at: event.recorded_at,
                    metadata: event.metadata.clone(),
                    payload: event.payload.clone(),
                    checksum: event.checksum,
                });
                positions.push(position);
            }
            return Ok(Imported {
                positions,
                already_present: false,
            });
        }
        for (stream, count) in &present {
            let current = self.version(stream);
            if current != *count {
                return Err(StoreError::ImportConflict {
                    stream: stream.clone(),
                    reason: format!("the log has {current} events, the import {count}"),
                });
            }
        }
        let mut positions = Vec::with_capacity(request.events.len());
        for event in &request.events {
            if self.version(&event.stream) == 0 {
                continue;
            }
            match self.by_id.get(&event.event_id) {
                Some(stored) if event.is_stored_as(stored) => positions.push(stored.position),
                _ => {
                    return Err(StoreError::ImportConflict {
                        stream: event.stream.clone(),
                        reason: format!(
                            "version {} of the log is not event {} of the import",
                            event.version, event.event_id
                        ),
                    })
                }
            }
        }
        if let Some((stream, _)) = streams.iter().find(|(s, _)| self.version(s) == 0) {
            return Err(StoreError::ImportConflict {
                stream: stream.clone(),
                reason: "the import's other streams are already in the log, this one is not".into(),
            });
        }
        Ok(Imported {
            positions,
            already_present: true,
        })
    }
}
