//! The event store on sled 0.34.7.
//!
//! # Layout (one tree, so one `apply_batch` is atomic across everything)
//!
//! | key | value |
//! |---|---|
//! | `c` + be64(first position) | a chunk: the records of one group commit (see [`crate::envelope`]) |
//! | `n` + stream name | be64(stream number), given by the stream's first append |
//! | `s` + be64(stream number) + be64(version) | be64(position) |
//! | `m` + name | metadata: `format`, `instance`, `head`, `streams` (numbers given) |
//!
//! Every key costs a sled insert, and sled 0.34 inserts (copy-on-write nodes) and
//! iteration steps are what limit throughput, so a group commit writes its records
//! as one chunk, and an event costs one more key, its stream index entry. Streams
//! are numbered in creation order so that index keys are short and new streams
//! append at the end of the index instead of landing all over it (infrastructure
//! ids are time-based UUIDs whose first bytes vary fastest): sled then keeps far
//! fewer, denser nodes in memory. A stream's version is read from its last index
//! key; a retried append is recognised by reading the stream where its events
//! would be.
//!
//! # Writes
//!
//! One dedicated thread owns every append. It takes all pending appends, checks them,
//! writes the accepted ones in one batch, calls the blocking `flush()` once and only
//! then answers them (group commit). `flush_async` is never used: it deadlocks in
//! 0.34.7 with a few concurrent callers. If `flush()` fails, nothing pending is
//! acknowledged and the store refuses writes until it is reopened (fail-stop).
//!
//! # Recovery and integrity
//!
//! sled recovers a prefix of whole batches, and stops silently at a damaged one. So
//! every open reads the whole log before serving it (`integrity`): every chunk must
//! verify, positions must run gapless to the head, the stream index must hold
//! exactly the records' streams and versions, and the log must reach the
//! acknowledged head recorded outside sled (`acked`) with the digest recorded
//! there. Anything else is [`StoreError::Damaged`]: the store does not open, and
//! nothing is appended. Accepting a loss is an explicit [`SledStore::repair`],
//! which keeps a copy of the damaged files and records itself in the log.
//!
//! The offline tools open a copy of the files ([`SledStore::open_read_only`]),
//! because sled rewrites its own files while it recovers them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use chrono::Utc;
use tokio::sync::{oneshot, watch};
use uuid::Uuid;

use super::subscription::{LogReader, SubscriberHub};
use super::{
    AppendRequest, Appended, EventStore, ExpectedVersion, ImportRequest, Imported, Pending,
    PendingAppend, PendingImport, StoreError, Subscription,
};
use crate::envelope::{encode_chunk, payload_checksum, Chunk, Envelope, NewEvent, StreamId};

mod acked;
mod import;
mod integrity;
mod read_only;
mod repair;

use acked::{AckedFile, AckedRecord};
use integrity::{chunk_crc, LogDigest};
pub use repair::{RepairReport, REPAIR_STREAM};

/// 2: chunks are LZ4-compressed. 3: streams are numbered.
const FORMAT_VERSION: u32 = 3;
const META_FORMAT: &[u8] = b"mformat";
const META_INSTANCE: &[u8] = b"minstance";
const META_HEAD: &[u8] = b"mhead";
const META_STREAMS: &[u8] = b"mstreams";
const LOG_DIR: &str = "log";

/// The most events one append may carry.
pub const MAX_EVENTS_PER_APPEND: usize = 10_000;
/// The most events one import may carry (all its streams together).
pub const MAX_EVENTS_PER_IMPORT: usize = 200_000;
/// The largest payload of one event.
pub const MAX_PAYLOAD_BYTES: usize = 8 * 1024 * 1024;
/// The most events one chunk holds.
const MAX_CHUNK_EVENTS: usize = 1024;
/// The most appends one group commit takes.
const MAX_GROUP: usize = 4096;

/// How to open a [`SledStore`].
#[derive(Debug, Clone)]
pub struct SledStoreConfig {
    pub path: PathBuf,
    /// sled's page cache; its default (1 GiB) is far more than an event log needs.
    pub cache_capacity_bytes: u64,
}

impl SledStoreConfig {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        SledStoreConfig {
            path: path.into(),
            cache_capacity_bytes: 64 * 1024 * 1024,
        }
    }
}

/// What `open` found: a sound log, read whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryReport {
    /// The last position in the log.
    pub head: u64,
    /// The last position acknowledged before the previous shutdown or crash, as
    /// recorded beside the log (0 for a new log). Never above `head`: a log that
    /// ends before it does not open.
    pub acknowledged_head: u64,
    /// How many events were read and verified (all of them).
    pub verified_records: u64,
}

type Reply = oneshot::Sender<Result<Appended, StoreError>>;
type ImportReply = oneshot::Sender<Result<Imported, StoreError>>;

/// What the writer thread is asked to do.
enum Job {
    Append(AppendRequest, Reply),
    Import(ImportRequest, ImportReply),
}

/// A job's answer, sent once the group is durable (or has failed).
enum Answer {
    Append(Reply, Result<Appended, StoreError>),
    Import(ImportReply, Result<Imported, StoreError>),
}

impl Answer {
    /// Whether a failed write of the group must fail this job: it wrote something,
    /// or (an import found already present) it may have matched events staged in
    /// this very group.
    fn wrote(&self) -> bool {
        match self {
            Answer::Append(_, Ok(appended)) => !appended.already_present,
            Answer::Import(_, Ok(_)) => true,
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
        }
    }
}

/// The sled-backed event store. See the module documentation.
pub struct SledStore {
    db: sled::Db,
    instance: Uuid,
    head: Arc<AtomicU64>,
    head_watch: watch::Receiver<u64>,
    hub: Arc<SubscriberHub>,
    sender: Mutex<Option<Sender<Job>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    report: RecoveryReport,
    /// For a read-only store: the private copy of the files it reads (removed
    /// when the store is dropped).
    copy: Option<tempfile::TempDir>,
}

impl std::fmt::Debug for SledStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SledStore")
            .field("instance", &self.instance)
            .field("head", &self.head.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl SledStore {
    /// Opens (or creates) the store in `config.path` for reading and writing, after
    /// reading the whole log and checking it against the acknowledged head (see
    /// the module documentation). A damaged log is [`StoreError::Damaged`] and
    /// nothing is written to it; the acknowledged head is never lowered.
    pub fn open(config: SledStoreConfig) -> Result<Self, StoreError> {
        std::fs::create_dir_all(&config.path).map_err(|e| {
            StoreError::Storage(format!(
                "cannot create the data directory {}: {e}",
                config.path.display()
            ))
        })?;
        let db = open_sled(&config.path.join(LOG_DIR), config.cache_capacity_bytes)?;
        let (instance, meta_head, streams) = read_or_init_meta(&db)?;
        let record = acked::read(&config.path)?;
        let (scan, report) = check_log(&db, meta_head, &record)?;
        let acked_file = match record {
            AckedRecord::Absent => AckedFile::create(&config.path, scan.head, &scan.digest)?,
            _ => {
                let mut file = AckedFile::open(&config.path)?;
                // Raise (never lower) the record to what the log durably holds, and
                // give a record of an earlier build its digest.
                if report.acknowledged_head < scan.head || record_lacks_digest(&record) {
                    file.write(scan.head, &scan.digest)?;
                }
                file
            }
        };
        let head = scan.head;
        let head_atomic = Arc::new(AtomicU64::new(head));
        let (watch_sender, head_watch) = watch::channel(head);
        let hub = Arc::new(SubscriberHub::new());
        let (sender, receiver) = channel();
        let writer = Writer {
            db: db.clone(),
            instance,
            head,
            digest: scan.digest,
            head_atomic: Arc::clone(&head_atomic),
            head_watch: watch_sender,
            hub: Arc::clone(&hub),
            acked_file,
            failed: None,
            next_stream: streams,
        };
        let handle = std::thread::Builder::new()
            .name("infralog-log-writer".into())
            .spawn(move || writer.run(receiver))
            .map_err(|e| StoreError::Storage(format!("cannot start the writer thread: {e}")))?;
        Ok(SledStore {
            db,
            instance,
            head: head_atomic,
            head_watch,
            hub,
            sender: Mutex::new(Some(sender)),
            writer: Mutex::new(Some(handle)),
            report,
            copy: None,
        })
    }

    /// Opens a private copy of the log in `config.path` for reading, with the same
    /// checks as [`SledStore::open`], and changes no byte of the data directory
    /// (sled rewrites the files it recovers, so it never opens the originals).
    /// Appends and imports answer [`StoreError::ReadOnly`]. A running server's
    /// directory is [`StoreError::InUse`].
    pub fn open_read_only(config: SledStoreConfig) -> Result<Self, StoreError> {
        let copy = read_only::copy_log(&config.path.join(LOG_DIR))?;
        let db = open_sled(&copy.path().join(LOG_DIR), config.cache_capacity_bytes)?;
        let (instance, meta_head, _) = read_or_init_meta(&db)?;
        let record = acked::read(&config.path)?;
        let (scan, report) = check_log(&db, meta_head, &record)?;
        let head_atomic = Arc::new(AtomicU64::new(scan.head));
        let (_, head_watch) = watch::channel(scan.head);
        Ok(SledStore {
            db,
            instance,
            head: head_atomic,
            head_watch,
            hub: Arc::new(SubscriberHub::new()),
            sender: Mutex::new(None),
            writer: Mutex::new(None),
            report,
            copy: Some(copy),
        })
    }

    /// What `open` found.
    pub fn recovery_report(&self) -> &RecoveryReport {
        &self.report
    }

    /// Stops accepting appends, finishes every pending one, flushes, stops the
    /// writer and ends the subscriptions (after they read what is durable).
    /// Idempotent.
    pub fn close(&self) {
        let sender = self.sender.lock().unwrap_or_else(|p| p.into_inner()).take();
        drop(sender);
        let handle = self.writer.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(handle) = handle {
            if handle.join().is_err() {
                tracing::error!("the log writer thread panicked");
            }
        }
        if let Err(error) = self.db.flush() {
            tracing::error!(%error, "final flush of the event log failed");
        }
        self.hub.close();
    }

    /// Test support: damages the stored chunk holding `position`, as a failing disk
    /// would. Never used by infralog itself.
    #[doc(hidden)]
    pub fn corrupt_record_for_tests(&self, position: u64) -> Result<(), StoreError> {
        let (key, bytes) = chunk_holding(&self.db, position)?.ok_or_else(|| {
            StoreError::Inconsistent(format!("no chunk holds position {position}"))
        })?;
        let mut damaged = bytes.to_vec();
        let middle = damaged.len() / 2;
        damaged[middle] ^= 0x5a;
        self.db.insert(key, damaged).map_err(storage)?;
        self.db.flush().map_err(storage)?;
        Ok(())
    }

    fn reader(&self) -> LogReader {
        let db = self.db.clone();
        Arc::new(move |from, max| read_all_from(&db, from, max))
    }

    /// Hands a job to the writer thread.
    fn submit<T>(
        &self,
        job: impl FnOnce(oneshot::Sender<Result<T, StoreError>>) -> Job,
    ) -> Pending<T> {
        let (reply, receiver) = oneshot::channel();
        let sender = self.sender.lock().unwrap_or_else(|p| p.into_inner());
        match sender.as_ref() {
            Some(sender) => match sender.send(job(reply)) {
                Ok(()) => Pending::new(receiver),
                Err(_) => Pending::ready(Err(StoreError::Closed)),
            },
            None if self.copy.is_some() => Pending::ready(Err(StoreError::ReadOnly)),
            None => Pending::ready(Err(StoreError::Closed)),
        }
    }
}

impl Drop for SledStore {
    fn drop(&mut self) {
        self.close();
    }
}

impl EventStore for SledStore {
    fn append(&self, request: AppendRequest) -> PendingAppend {
        self.submit(|reply| Job::Append(request, reply))
    }

    fn import_streams(&self, request: ImportRequest) -> PendingImport {
        self.submit(|reply| Job::Import(request, reply))
    }

    fn read_stream(
        &self,
        stream: &StreamId,
        from_version: u64,
        max: usize,
    ) -> Result<Vec<Envelope>, StoreError> {
        let Some(number) = stream_number(&self.db, stream)? else {
            return Ok(Vec::new());
        };
        let start = stream_index_key(number, from_version.max(1));
        let end = stream_prefix_end(number);
        let mut positions = Vec::new();
        for entry in self.db.range(start..end).take(max) {
            let (_, value) = entry.map_err(storage)?;
            positions.push(be64(&value)?);
        }
        read_positions(&self.db, &positions)
    }

    fn read_all(&self, from_position: u64, max: usize) -> Result<Vec<Envelope>, StoreError> {
        read_all_from(&self.db, from_position, max)
    }

    fn stream_version(&self, stream: &StreamId) -> Result<u64, StoreError> {
        stream_head(&self.db, stream)
    }

    fn list_streams(
        &self,
        after: Option<&StreamId>,
        max: usize,
    ) -> Result<Vec<(StreamId, u64)>, StoreError> {
        let start = match after {
            Some(stream) => {
                let mut key = stream_name_key(stream);
                key.push(0);
                key
            }
            None => b"n".to_vec(),
        };
        let mut streams = Vec::new();
        for entry in self.db.range(start..b"o".to_vec()).take(max) {
            let (key, value) = entry.map_err(storage)?;
            let name = String::from_utf8(key[1..].to_vec())
                .map_err(|_| StoreError::Inconsistent("a stream name is not UTF-8".into()))?;
            let stream = StreamId::new(name)?;
            let version = numbered_stream_head(&self.db, be64(&value)?)?;
            streams.push((stream, version));
        }
        Ok(streams)
    }

    fn head_position(&self) -> u64 {
        self.head.load(Ordering::Acquire)
    }

    fn watch_head(&self) -> watch::Receiver<u64> {
        self.head_watch.clone()
    }

    fn subscribe(&self, after_position: u64) -> Subscription {
        let receiver = self.hub.add();
        Subscription::new(
            after_position,
            receiver,
            Arc::clone(&self.head),
            self.reader(),
        )
    }

    fn instance_id(&self) -> Uuid {
        self.instance
    }
}

/// The writer thread's state.
struct Writer {
    db: sled::Db,
    instance: Uuid,
    head: u64,
    /// The log digest at `head`.
    digest: LogDigest,
    head_atomic: Arc<AtomicU64>,
    head_watch: watch::Sender<u64>,
    hub: Arc<SubscriberHub>,
    acked_file: AckedFile,
    failed: Option<String>,
    /// The number the next new stream gets.
    next_stream: u64,
}

/// What one group commit stages before writing.
#[derive(Default)]
struct Staging {
    batch: sled::Batch,
    heads: HashMap<StreamId, u64>,
    /// Numbers of the streams this group touches (new ones included).
    numbers: HashMap<StreamId, u64>,
    next_stream: u64,
    envelopes: Vec<Arc<Envelope>>,
}

impl Writer {
    fn run(mut self, receiver: Receiver<Job>) {
        while let Ok(first) = receiver.recv() {
            let mut group = vec![first];
            while group.len() < MAX_GROUP {
                match receiver.try_recv() {
                    Ok(next) => group.push(next),
                    Err(_) => break,
                }
            }
            self.commit_group(group);
        }
    }

    fn commit_group(&mut self, group: Vec<Job>) {
        if let Some(reason) = &self.failed {
            for job in group {
                match job {
                    Job::Append(_, reply) => {
                        let _ = reply.send(Err(StoreError::Failed(reason.clone())));
                    }
                    Job::Import(_, reply) => {
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
            });
        }
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
            // The acknowledged-head record is written only once the group is
            // durable, and the group is answered only once the record is: so the
            // record never runs ahead of the log, nor an answer ahead of the record.
            let written = self
                .db
                .apply_batch(std::mem::take(&mut staging.batch))
                .and_then(|()| self.db.flush().map(|_| ()))
                .map_err(|error| format!("writing the log failed: {error}"))
                .and_then(|()| {
                    self.acked_file
                        .write(new_head, &digest)
                        .map_err(|error| error.to_string())
                });
            if let Err(reason) = written {
                tracing::error!(%reason, "event log failure: refusing writes until reopened");
                self.failed = Some(reason.clone());
                for answer in answers {
                    if answer.wrote() {
                        answer.fail(StoreError::Storage(reason.clone()));
                    } else {
                        answer.send();
                    }
                }
                return;
            }
            self.head = new_head;
            self.digest = digest;
            self.next_stream = staging.next_stream;
            self.head_atomic.store(new_head, Ordering::Release);
            let _ = self.head_watch.send(new_head);
        }
        for answer in answers {
            answer.send();
        }
        self.hub.publish(&staging.envelopes);
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
    fn stream_range(
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

fn check_sizes(request: &AppendRequest) -> Result<(), StoreError> {
    if request.events.len() > MAX_EVENTS_PER_APPEND {
        return Err(StoreError::TooLarge(format!(
            "{} events in one append, the limit is {MAX_EVENTS_PER_APPEND}",
            request.events.len()
        )));
    }
    if let Some(event) = request
        .events
        .iter()
        .find(|e: &&NewEvent| e.payload.len() > MAX_PAYLOAD_BYTES)
    {
        return Err(StoreError::TooLarge(format!(
            "event {} has a payload of {} bytes, the limit is {MAX_PAYLOAD_BYTES}",
            event.event_id,
            event.payload.len()
        )));
    }
    Ok(())
}

fn open_sled(path: &Path, cache_capacity_bytes: u64) -> Result<sled::Db, StoreError> {
    let sled_config = sled::Config::new()
        .path(path)
        .cache_capacity(cache_capacity_bytes);
    // sled 0.34 can panic on some damaged files instead of returning an error.
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || sled_config.open())) {
        Ok(Ok(db)) => Ok(db),
        // sled 0.34 reports a held lock as an `Other` error whose text names it.
        Ok(Err(sled::Error::Io(error)))
            if error.kind() == std::io::ErrorKind::WouldBlock
                || error.to_string().contains("could not acquire lock") =>
        {
            Err(StoreError::InUse(path.display().to_string()))
        }
        Ok(Err(error)) => Err(StoreError::Storage(format!(
            "cannot open the event log in {}: {error}",
            path.display()
        ))),
        Err(_) => Err(StoreError::Storage(format!(
            "cannot open the event log in {}: its files are damaged (sled panicked while recovering them)",
            path.display()
        ))),
    }
}

/// The instance id, the head position and the number of streams.
fn read_or_init_meta(db: &sled::Db) -> Result<(Uuid, u64, u64), StoreError> {
    match db.get(META_FORMAT).map_err(storage)? {
        Some(format) => {
            let format = u32::from_be_bytes(
                format
                    .as_ref()
                    .try_into()
                    .map_err(|_| StoreError::Inconsistent("unreadable format marker".into()))?,
            );
            if format != FORMAT_VERSION {
                return Err(StoreError::Inconsistent(format!(
                    "the log has format {format}, this build reads format {FORMAT_VERSION}"
                )));
            }
            let instance = db
                .get(META_INSTANCE)
                .map_err(storage)?
                .and_then(|v| Uuid::from_slice(&v).ok())
                .ok_or_else(|| StoreError::Inconsistent("the instance id is missing".into()))?;
            let head = match db.get(META_HEAD).map_err(storage)? {
                Some(value) => be64(&value)?,
                None => 0,
            };
            let streams = match db.get(META_STREAMS).map_err(storage)? {
                Some(value) => be64(&value)?,
                None => 0,
            };
            Ok((instance, head, streams))
        }
        None => {
            if db.iter().next().is_some() {
                return Err(StoreError::Inconsistent(
                    "the log has records but no format marker".into(),
                ));
            }
            let instance = Uuid::new_v4();
            let mut batch = sled::Batch::default();
            batch.insert(META_FORMAT, &FORMAT_VERSION.to_be_bytes());
            batch.insert(META_INSTANCE, instance.as_bytes());
            batch.insert(META_HEAD, &0u64.to_be_bytes());
            batch.insert(META_STREAMS, &0u64.to_be_bytes());
            db.apply_batch(batch).map_err(storage)?;
            db.flush().map_err(storage)?;
            Ok((instance, 0, 0))
        }
    }
}

/// Reads the whole log and checks it against the acknowledged-head record.
fn check_log(
    db: &sled::Db,
    meta_head: u64,
    record: &AckedRecord,
) -> Result<(integrity::Scan, RecoveryReport), StoreError> {
    let scan = integrity::scan(db, meta_head)?.map_err(StoreError::Damaged)?;
    let acknowledged_head =
        acked::check(record, scan.head, |at| scan.digest_at(at)).map_err(StoreError::Damaged)?;
    let report = RecoveryReport {
        head: scan.head,
        acknowledged_head,
        verified_records: scan.head,
    };
    Ok((scan, report))
}

fn record_lacks_digest(record: &AckedRecord) -> bool {
    matches!(record, AckedRecord::Present(acked) if acked.digest.is_none())
}

/// The chunk whose positions include `position`.
fn chunk_holding(
    db: &sled::Db,
    position: u64,
) -> Result<Option<(sled::IVec, sled::IVec)>, StoreError> {
    db.range(b"c".to_vec()..=chunk_key(position))
        .next_back()
        .transpose()
        .map_err(storage)
}

/// The envelopes at `positions` (ascending), reading each chunk once.
fn read_positions(db: &sled::Db, positions: &[u64]) -> Result<Vec<Envelope>, StoreError> {
    let mut envelopes = Vec::with_capacity(positions.len());
    let mut index = 0;
    while index < positions.len() {
        let position = positions[index];
        let (key, bytes) = chunk_holding(db, position)?.ok_or_else(|| missing(position))?;
        let first = be64(&key[1..])?;
        let chunk =
            Chunk::open(&bytes).map_err(|problem| StoreError::Corrupt { position, problem })?;
        let records = chunk
            .records()
            .map_err(|problem| StoreError::Corrupt { position, problem })?;
        let end = first + records.len() as u64;
        while index < positions.len() && positions[index] < end {
            let position = positions[index];
            if position < first {
                return Err(missing(position));
            }
            let envelope = records[(position - first) as usize]
                .to_envelope(position)
                .map_err(|problem| StoreError::Corrupt { position, problem })?;
            envelopes.push(envelope);
            index += 1;
        }
        if index < positions.len() && positions[index] == position {
            return Err(missing(position));
        }
    }
    Ok(envelopes)
}

fn missing(position: u64) -> StoreError {
    StoreError::Inconsistent(format!("the record at position {position} is missing"))
}

fn read_all_from(db: &sled::Db, from: u64, max: usize) -> Result<Vec<Envelope>, StoreError> {
    let from = from.max(1);
    let mut envelopes = Vec::with_capacity(max.min(4096));
    let start = match chunk_holding(db, from)? {
        Some((key, _)) => key.to_vec(),
        None => chunk_key(from),
    };
    for entry in db.range(start..b"d".to_vec()) {
        if envelopes.len() >= max {
            break;
        }
        let (key, bytes) = entry.map_err(storage)?;
        let first = be64(&key[1..])?;
        let corrupt = |problem| StoreError::Corrupt {
            position: first.max(from),
            problem,
        };
        let chunk = Chunk::open(&bytes).map_err(corrupt)?;
        let records = chunk.records().map_err(corrupt)?;
        for (offset, record) in records.iter().enumerate() {
            let position = first + offset as u64;
            if position < from {
                continue;
            }
            if envelopes.len() >= max {
                break;
            }
            envelopes.push(
                record
                    .to_envelope(position)
                    .map_err(|problem| StoreError::Corrupt { position, problem })?,
            );
        }
    }
    Ok(envelopes)
}

fn read_record(db: &sled::Db, position: u64) -> Result<Envelope, StoreError> {
    read_positions(db, &[position])?
        .pop()
        .ok_or_else(|| missing(position))
}

/// A stream's number, if it has one (if it has events).
fn stream_number(db: &sled::Db, stream: &StreamId) -> Result<Option<u64>, StoreError> {
    db.get(stream_name_key(stream))
        .map_err(storage)?
        .map(|value| be64(&value))
        .transpose()
}

/// A stream's version (0 when it has no events).
fn stream_head(db: &sled::Db, stream: &StreamId) -> Result<u64, StoreError> {
    match stream_number(db, stream)? {
        Some(number) => numbered_stream_head(db, number),
        None => Ok(0),
    }
}

/// The version in a stream's last index key.
fn numbered_stream_head(db: &sled::Db, number: u64) -> Result<u64, StoreError> {
    let last = db
        .range(stream_index_key(number, 0)..stream_prefix_end(number))
        .next_back()
        .transpose()
        .map_err(storage)?;
    match last {
        Some((key, _)) => be64(&key[key.len() - 8..]),
        None => Ok(0),
    }
}

fn chunk_key(position: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(9);
    key.push(b'c');
    key.extend_from_slice(&position.to_be_bytes());
    key
}

fn stream_index_key(number: u64, version: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(17);
    key.push(b's');
    key.extend_from_slice(&number.to_be_bytes());
    key.extend_from_slice(&version.to_be_bytes());
    key
}

/// The first key after every index key of stream `number`.
fn stream_prefix_end(number: u64) -> Vec<u8> {
    stream_index_key(number.saturating_add(1), 0)
}

fn stream_name_key(stream: &StreamId) -> Vec<u8> {
    let mut key = Vec::with_capacity(stream.as_str().len() + 1);
    key.push(b'n');
    key.extend_from_slice(stream.as_str().as_bytes());
    key
}

fn be64(bytes: &[u8]) -> Result<u64, StoreError> {
    let array: [u8; 8] = bytes.try_into().map_err(|_| {
        StoreError::Inconsistent(format!(
            "a {}-byte number where 8 were expected",
            bytes.len()
        ))
    })?;
    Ok(u64::from_be_bytes(array))
}

fn storage(error: sled::Error) -> StoreError {
    StoreError::Storage(error.to_string())
}
