//! The writer thread: it owns every append and import. It takes all pending jobs,
//! checks them, writes the accepted ones in one batch, calls the blocking
//! `flush()` once, records the acknowledged head, and only then answers them
//! (group commit). `flush_async` is never used: it deadlocks in 0.34.7 with a few
//! concurrent callers. If a write fails, nothing pending is acknowledged and the
//! store refuses writes until it is reopened (fail-stop).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};

use chrono::Utc;
use tokio::sync::{oneshot, watch};
use uuid::Uuid;

use super::acked::AckedFile;
use super::integrity::{chunk_crc, LogDigest};
use super::keys::{
    be64, chunk_key, numbered_stream_head, read_record, storage, stream_index_key, stream_name_key,
    stream_number, META_HEAD, META_STREAMS,
};
use super::{MAX_CHUNK_EVENTS, MAX_GROUP};
use crate::envelope::{encode_chunk, payload_checksum, Envelope, StreamId};
use crate::store::checks::check_sizes;
use crate::store::metrics::{self, MetricWrite};
use crate::store::subscription::SubscriberHub;
use crate::store::{AppendRequest, Appended, ExpectedVersion, ImportRequest, Imported, StoreError};

pub(super) type Reply = oneshot::Sender<Result<Appended, StoreError>>;
pub(super) type ImportReply = oneshot::Sender<Result<Imported, StoreError>>;
pub(super) type MetricsReply = oneshot::Sender<Result<u64, StoreError>>;

/// What the writer thread is asked to do.
pub(super) enum Job {
    Append(AppendRequest, Reply),
    Import(ImportRequest, ImportReply),
    /// Metric points: written in the same group commit, in their own tree.
    Metrics(MetricWrite, MetricsReply),
}

/// A job's answer, sent once the group is durable (or has failed).
enum Answer {
    Append(Reply, Result<Appended, StoreError>),
    Import(ImportReply, Result<Imported, StoreError>),
    Metrics(MetricsReply, Result<u64, StoreError>),
}

impl Answer {
    /// Whether a failed write of the group must fail this job: it wrote something,
    /// or (an import found already present) it may have matched events staged in
    /// this very group.
    fn wrote(&self) -> bool {
        match self {
            Answer::Append(_, Ok(appended)) => !appended.already_present,
            Answer::Import(_, Ok(_)) => true,
            Answer::Metrics(_, Ok(count)) => *count > 0,
            _ => false,
        }
    }

    fn fail(self, error: StoreError) {
        match self {
            Answer::Append(reply, _) => {
                let _ = reply.send(Err(error));
            }
            Answer::Import(reply, _) => {
                let _ = reply.send(Err(error));
            }
            Answer::Metrics(reply, _) => {
                let _ = reply.send(Err(error));
            }
        }
    }

    fn send(self) {
        match self {
            Answer::Append(reply, answer) => {
                let _ = reply.send(answer);
            }
            Answer::Import(reply, answer) => {
                let _ = reply.send(answer);
            }
            Answer::Metrics(reply, answer) => {
                let _ = reply.send(answer);
            }
        }
    }
}

/// The writer thread's state.
pub(super) struct Writer {
    pub(super) db: sled::Db,
    pub(super) instance: Uuid,
    pub(super) head: u64,
    /// The log digest at `head`.
    pub(super) digest: LogDigest,
    /// Taken by `run`, which starts its thread.
    pub(super) acknowledger: Option<Acknowledger>,
    /// Why writes are refused (set by either thread, never cleared).
    pub(super) failed: Arc<Mutex<Option<String>>>,
    /// The number the next new stream gets.
    pub(super) next_stream: u64,
    /// Told of each group flushed, for the server's metrics.
    pub(super) observer: super::commit_observer::ObserverSlot,
    /// The metric points' tree.
    pub(super) metrics: sled::Tree,
    /// The sequence number the next metric point gets.
    pub(super) next_seq: u64,
}

/// A group written and flushed to sled, waiting for the acknowledged-head record.
pub(super) struct Written {
    /// The new head and the digest there; `None` when the group wrote nothing.
    head: Option<(u64, LogDigest)>,
    answers: Vec<Answer>,
    envelopes: Vec<Arc<Envelope>>,
}

/// The thread that makes written groups acknowledged: it records the head of the
/// latest group it has (one sync for all of them), then moves the visible head,
/// answers the groups in order and publishes their events. The record never runs
/// ahead of the log (it follows the flush), nor an answer ahead of the record.
pub(super) struct Acknowledger {
    pub(super) acked_file: AckedFile,
    pub(super) head_atomic: Arc<AtomicU64>,
    pub(super) head_watch: watch::Sender<u64>,
    pub(super) hub: Arc<SubscriberHub>,
    pub(super) failed: Arc<Mutex<Option<String>>>,
}

impl Acknowledger {
    fn run(mut self, receiver: Receiver<Written>) {
        while let Ok(first) = receiver.recv() {
            let mut groups = vec![first];
            while let Ok(next) = receiver.try_recv() {
                groups.push(next);
            }
            let latest = groups.iter().rev().find_map(|group| group.head);
            let recorded = match latest {
                Some((head, digest)) => self.acked_file.write(head, &digest),
                None => Ok(()),
            };
            if let Err(error) = recorded {
                let reason = error.to_string();
                tracing::error!(%reason, "event log failure: refusing writes until reopened");
                self.failed
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get_or_insert(reason.clone());
                for group in groups {
                    for answer in group.answers {
                        if answer.wrote() {
                            answer.fail(StoreError::Storage(reason.clone()));
                        } else {
                            answer.send();
                        }
                    }
                }
                // Later groups were written after this one: none may be answered as
                // acknowledged, and the writer stops taking new ones.
                for group in receiver.iter() {
                    for answer in group.answers {
                        answer.fail(StoreError::Failed(reason.clone()));
                    }
                }
                return;
            }
            if let Some((head, _)) = latest {
                self.head_atomic.store(head, Ordering::Release);
                let _ = self.head_watch.send(head);
            }
            for group in groups {
                for answer in group.answers {
                    answer.send();
                }
                self.hub.publish(&group.envelopes);
            }
        }
    }
}

/// What one group commit stages before writing.
#[derive(Default)]
pub(super) struct Staging {
    pub(super) batch: sled::Batch,
    pub(super) heads: HashMap<StreamId, u64>,
    /// Numbers of the streams this group touches (new ones included).
    pub(super) numbers: HashMap<StreamId, u64>,
    pub(super) next_stream: u64,
    pub(super) envelopes: Vec<Arc<Envelope>>,
}

impl Writer {
    /// Takes jobs until every sender is gone. Each group is written and flushed
    /// here, then handed to the acknowledger thread, which records the
    /// acknowledged head and answers; meanwhile the next group is written, so the
    /// record's sync overlaps the next group's flush instead of following it.
    pub(super) fn run(mut self, receiver: Receiver<Job>) {
        let Some(acknowledger) = self.acknowledger.take() else {
            return;
        };
        let (written, to_acknowledge) = channel();
        let thread = std::thread::Builder::new()
            .name("infralog-log-acknowledger".into())
            .spawn(move || acknowledger.run(to_acknowledge));
        let thread = match thread {
            Ok(thread) => thread,
            Err(error) => {
                let reason = format!("cannot start the acknowledger thread: {error}");
                tracing::error!(%reason, "event log failure: refusing writes");
                self.fail_stop(reason);
                while let Ok(job) = receiver.recv() {
                    self.commit_group(vec![job], &written);
                }
                return;
            }
        };
        while let Ok(first) = receiver.recv() {
            let mut group = vec![first];
            while group.len() < MAX_GROUP {
                match receiver.try_recv() {
                    Ok(next) => group.push(next),
                    Err(_) => break,
                }
            }
            self.commit_group(group, &written);
        }
        drop(written);
        if thread.join().is_err() {
            tracing::error!("the log acknowledger thread panicked");
        }
    }

    fn fail_stop(&self, reason: String) {
        let mut failed = self.failed.lock().unwrap_or_else(|p| p.into_inner());
        failed.get_or_insert(reason);
    }

    fn commit_group(&mut self, group: Vec<Job>, acknowledger: &Sender<Written>) {
        let failed = self
            .failed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Some(reason) = failed {
            for job in group {
                match job {
                    Job::Append(_, reply) => {
                        let _ = reply.send(Err(StoreError::Failed(reason.clone())));
                    }
                    Job::Import(_, reply) => {
                        let _ = reply.send(Err(StoreError::Failed(reason.clone())));
                    }
                    Job::Metrics(_, reply) => {
                        let _ = reply.send(Err(StoreError::Failed(reason.clone())));
                    }
                }
            }
            return;
        }
        let mut staging = Staging {
            next_stream: self.next_stream,
            ..Staging::default()
        };
        let mut next_position = self.head + 1;
        let now = Utc::now();
        let mut answers = Vec::with_capacity(group.len());
        let mut metrics_batch = sled::Batch::default();
        let mut next_seq = self.next_seq;
        for job in group {
            answers.push(match job {
                Job::Append(request, reply) => Answer::Append(
                    reply,
                    self.stage(&request, &mut staging, &mut next_position, now),
                ),
                Job::Import(request, reply) => Answer::Import(
                    reply,
                    self.stage_import(&request, &mut staging, &mut next_position),
                ),
                Job::Metrics(write, reply) => Answer::Metrics(
                    reply,
                    metrics::stage(&self.metrics, &write, &mut next_seq, &mut metrics_batch),
                ),
            });
        }
        if next_seq != self.next_seq {
            metrics_batch.insert(metrics::SEQ_KEY, &next_seq.to_be_bytes());
        }
        let metrics_written = answers
            .iter()
            .any(|a| matches!(a, Answer::Metrics(_, Ok(count)) if *count > 0));
        if metrics_written {
            // Applied before the log's batch; the one flush below covers both.
            let applied = self.metrics.apply_batch(metrics_batch).and_then(|()| {
                if staging.envelopes.is_empty() {
                    self.db.flush().map(|_| ())
                } else {
                    Ok(())
                }
            });
            match applied {
                Ok(()) => self.next_seq = next_seq,
                Err(error) => {
                    let reason = format!("writing metric points failed: {error}");
                    tracing::error!(%reason, "event log failure: refusing writes until reopened");
                    self.fail_stop(reason.clone());
                    answers = answers
                        .into_iter()
                        .map(|answer| match answer {
                            Answer::Metrics(reply, Ok(_)) => {
                                Answer::Metrics(reply, Err(StoreError::Storage(reason.clone())))
                            }
                            other => other,
                        })
                        .collect();
                }
            }
        }
        let mut head = None;
        if !staging.envelopes.is_empty() {
            let new_head = next_position - 1;
            let mut digest = self.digest;
            for chunk in staging.envelopes.chunks(MAX_CHUNK_EVENTS) {
                let bytes = encode_chunk(chunk);
                digest = digest.then(chunk[0].position, chunk.len() as u64, chunk_crc(&bytes));
                staging.batch.insert(chunk_key(chunk[0].position), bytes);
            }
            staging.batch.insert(META_HEAD, &new_head.to_be_bytes());
            if staging.next_stream != self.next_stream {
                staging
                    .batch
                    .insert(META_STREAMS, &staging.next_stream.to_be_bytes());
            }
            let mut flush_time = std::time::Duration::ZERO;
            let written = self
                .db
                .apply_batch(std::mem::take(&mut staging.batch))
                .and_then(|()| {
                    let flush_started = std::time::Instant::now();
                    let flushed = self.db.flush().map(|_| ());
                    flush_time = flush_started.elapsed();
                    flushed
                });
            if let Err(error) = written {
                let reason = format!("writing the log failed: {error}");
                tracing::error!(%reason, "event log failure: refusing writes until reopened");
                self.fail_stop(reason.clone());
                let mut unwritten = Vec::new();
                for answer in answers {
                    if answer.wrote() {
                        answer.fail(StoreError::Storage(reason.clone()));
                    } else {
                        unwritten.push(answer);
                    }
                }
                answers = unwritten;
                staging.envelopes.clear();
            } else {
                self.head = new_head;
                self.digest = digest;
                self.next_stream = staging.next_stream;
                head = Some((new_head, digest));
                if let Some(observer) = self.observer.get() {
                    observer.group_committed(&staging.envelopes, flush_time);
                }
            }
        }
        // Every group goes through the acknowledger, even one that wrote nothing, so
        // that no answer overtakes the record of an earlier group (a retried append
        // is answered from events that may still wait for theirs).
        let group = Written {
            head,
            answers,
            envelopes: staging.envelopes,
        };
        if let Err(unsent) = acknowledger.send(group) {
            for answer in unsent.0.answers {
                answer.fail(StoreError::Closed);
            }
        }
    }

    /// Checks one append and stages its writes. Nothing is staged unless the whole
    /// append is accepted.
    fn stage(
        &self,
        request: &AppendRequest,
        staging: &mut Staging,
        next_position: &mut u64,
        now: chrono::DateTime<Utc>,
    ) -> Result<Appended, StoreError> {
        check_sizes(request)?;
        let known = match staging.numbers.get(&request.stream) {
            Some(number) => Some(*number),
            None => stream_number(&self.db, &request.stream)?,
        };
        let current = match (staging.heads.get(&request.stream), known) {
            (Some(version), _) => *version,
            (None, Some(number)) => numbered_stream_head(&self.db, number)?,
            (None, None) => 0,
        };
        if let Some(retried) = self.retried_append(request, staging, known, current)? {
            return Ok(retried);
        }
        if !request.expected.admits(current) {
            return Err(StoreError::WrongExpectedVersion {
                stream: request.stream.clone(),
                expected: request.expected,
                actual: current,
            });
        }
        if request.events.is_empty() {
            return Ok(Appended {
                version: current,
                positions: Vec::new(),
                already_present: false,
            });
        }
        let number = match known {
            Some(number) => number,
            None => {
                let number = staging.next_stream;
                staging.next_stream += 1;
                staging
                    .batch
                    .insert(stream_name_key(&request.stream), &number.to_be_bytes());
                number
            }
        };
        staging.numbers.insert(request.stream.clone(), number);
        let mut positions = Vec::with_capacity(request.events.len());
        let mut version = current;
        for event in &request.events {
            version += 1;
            let position = *next_position;
            *next_position += 1;
            let envelope = Envelope {
                position,
                stream: request.stream.clone(),
                version,
                event_id: event.event_id,
                event_type: event.event_type.clone(),
                schema_version: event.schema_version,
                recorded_at: event.recorded_at.unwrap_or(now),
                metadata: crate::envelope::Metadata {
                    source_instance: event.metadata.source_instance.or(Some(self.instance)),
                    ..event.metadata.clone()
                },
                checksum: payload_checksum(&event.payload),
                payload: event.payload.clone(),
            };
            staging
                .batch
                .insert(stream_index_key(number, version), &position.to_be_bytes());
            staging.envelopes.push(Arc::new(envelope));
            positions.push(position);
        }
        staging.heads.insert(request.stream.clone(), version);
        Ok(Appended {
            version,
            positions,
            already_present: false,
        })
    }

    /// Recognises a resent append: its events already in the stream, in order, with
    /// the same content, where its expected version put them. Ids repeated inside
    /// one append, or a partial match, are conflicts.
    fn retried_append(
        &self,
        request: &AppendRequest,
        staging: &Staging,
        number: Option<u64>,
        current: u64,
    ) -> Result<Option<Appended>, StoreError> {
        let mut seen = std::collections::HashSet::with_capacity(request.events.len());
        for event in &request.events {
            if !seen.insert(event.event_id) {
                return Err(StoreError::EventIdConflict {
                    event_id: event.event_id,
                });
            }
        }
        let count = request.events.len() as u64;
        if count == 0 {
            return Ok(None);
        }
        let first_version = match request.expected {
            ExpectedVersion::Exact(n) => n + 1,
            ExpectedVersion::NoStream => 1,
            // Without an expected version a retry can only be the stream's tail.
            ExpectedVersion::Any => (current + 1).saturating_sub(count).max(1),
        };
        let Some(number) = number else {
            return Ok(None);
        };
        if first_version + count - 1 > current {
            return Ok(None);
        }
        let stored = self.stream_range(&request.stream, number, first_version, count, staging)?;
        let matching = request
            .events
            .iter()
            .zip(&stored)
            .filter(|(event, stored)| stored.event_id == event.event_id)
            .count();
        if matching == 0 {
            return Ok(None);
        }
        let identical = matching == request.events.len()
            && request
                .events
                .iter()
                .zip(&stored)
                .all(|(event, stored)| stored.is_same_event(event));
        if !identical {
            let event_id = request
                .events
                .iter()
                .zip(&stored)
                .find(|(event, stored)| !stored.is_same_event(event))
                .map(|(event, _)| event.event_id)
                .unwrap_or(request.events[0].event_id);
            return Err(StoreError::EventIdConflict { event_id });
        }
        Ok(Some(Appended {
            version: first_version + count - 1,
            positions: stored.iter().map(|e| e.position).collect(),
            already_present: true,
        }))
    }

    /// `count` events of a stream from `from_version`, staged ones included.
    pub(super) fn stream_range(
        &self,
        stream: &StreamId,
        number: u64,
        from_version: u64,
        count: u64,
        staging: &Staging,
    ) -> Result<Vec<Envelope>, StoreError> {
        let mut events = Vec::with_capacity(count as usize);
        for version in from_version..from_version + count {
            let staged = staging
                .envelopes
                .iter()
                .find(|e| e.stream == *stream && e.version == version);
            let envelope = match staged {
                Some(envelope) => Envelope::clone(envelope),
                None => {
                    let position = self
                        .db
                        .get(stream_index_key(number, version))
                        .map_err(storage)?
                        .map(|value| be64(&value))
                        .transpose()?
                        .ok_or_else(|| {
                            StoreError::Inconsistent(format!(
                                "stream {stream} has no version {version} below its head"
                            ))
                        })?;
                    read_record(&self.db, position)?
                }
            };
            events.push(envelope);
        }
        Ok(events)
    }
}
