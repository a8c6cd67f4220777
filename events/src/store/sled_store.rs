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
//! One dedicated thread owns every append (`writer`): group commit, one blocking
//! `flush()` per group, fail-stop on a failed write.
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

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use tokio::sync::{oneshot, watch};
use uuid::Uuid;

use super::subscription::{LogReader, SubscriberHub};
use super::{
    AppendRequest, EventStore, ImportRequest, Pending, PendingAppend, PendingImport, StoreError,
    StoreHealth, Subscription,
};
use crate::envelope::{Envelope, StreamId};

mod acked;
mod commit_observer;
mod import;
mod integrity;
mod keys;
mod read_only;
mod recovery;
mod repair;
mod writer;

use acked::{AckedFile, AckedRecord};
pub use commit_observer::CommitObserver;
use keys::{
    be64, numbered_stream_head, read_all_from, read_positions, storage, stream_head,
    stream_index_key, stream_name_key, stream_number, stream_prefix_end,
};
use recovery::{check_log, open_sled, read_or_init_meta, record_lacks_digest};
pub use repair::{RepairReport, REPAIR_STREAM};
use writer::{Acknowledger, Job, Writer};

/// The tree of metric points (see [`super::metrics`]).
const METRICS_TREE: &str = "metrics";

/// 2: chunks are LZ4-compressed. 3: streams are numbered.
const FORMAT_VERSION: u32 = 3;
const LOG_DIR: &str = "log";

/// The most events one chunk holds.
const MAX_CHUNK_EVENTS: usize = 1024;
/// The most appends one group commit takes.
const MAX_GROUP: usize = 4096;

/// How to open a [`SledStore`].
#[derive(Debug, Clone)]
pub struct SledStoreConfig {
    /// The directory the store keeps its files in (the sled log and the
    /// acknowledged-head record); created when absent.
    pub path: PathBuf,
    /// sled's page cache; its default (1 GiB) is far more than an event log needs.
    pub cache_capacity_bytes: u64,
}

impl SledStoreConfig {
    /// The store in `path`, with a 64 MiB page cache.
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
    /// Told of every group commit (see [`CommitObserver`]); shared with the writer.
    observer: commit_observer::ObserverSlot,
    /// Why writes are refused, once the writer fail-stopped (shared with it).
    failed: Arc<Mutex<Option<String>>>,
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
        let failed = Arc::new(Mutex::new(None));
        let observer = commit_observer::ObserverSlot::default();
        let metrics_tree = db.open_tree(METRICS_TREE).map_err(storage)?;
        let next_seq = super::metrics::first_seq(&metrics_tree)?;
        let writer = Writer {
            db: db.clone(),
            instance,
            head,
            digest: scan.digest,
            acknowledger: Some(Acknowledger {
                acked_file,
                head_atomic: Arc::clone(&head_atomic),
                head_watch: watch_sender,
                hub: Arc::clone(&hub),
                failed: Arc::clone(&failed),
            }),
            failed: Arc::clone(&failed),
            next_stream: streams,
            observer: Arc::clone(&observer),
            metrics: metrics_tree,
            next_seq,
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
            observer,
            failed,
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
            observer: commit_observer::ObserverSlot::default(),
            failed: Arc::new(Mutex::new(None)),
        })
    }

    /// Sets the observer told of every group commit from now on; `false` when one
    /// was set already (the first stays: the writer thread reads the slot without
    /// a lock).
    pub fn set_commit_observer(&self, observer: Arc<dyn CommitObserver>) -> bool {
        self.observer.set(observer).is_ok()
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
        // After a failed write sled waits forever for the lost buffer to become
        // stable, in a flush and in the drop of its last handle alike. So a
        // fail-stopped log gets no final flush (every acknowledged group was
        // flushed already; the failed one never was), and one handle is leaked
        // so that no drop waits: the process is to be restarted anyway, and its
        // exit releases the files.
        let failed = self
            .failed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some();
        if failed {
            tracing::warn!("the event log fail-stopped: closed without a final flush");
            std::mem::forget(self.db.clone());
        } else if let Err(error) = self.db.flush() {
            tracing::error!(%error, "final flush of the event log failed");
        }
        self.hub.close();
    }

    /// Test support: damages the stored chunk holding `position`, as a failing disk
    /// would. Only in builds with the `testing` feature.
    #[cfg(any(test, feature = "testing"))]
    pub fn corrupt_record_for_tests(&self, position: u64) -> Result<(), StoreError> {
        let (key, bytes) = keys::chunk_holding(&self.db, position)?.ok_or_else(|| {
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

impl super::metrics::MetricStore for SledStore {
    fn write_metrics(&self, write: super::metrics::MetricWrite) -> Pending<u64> {
        self.submit(|reply| Job::Metrics(write, reply))
    }

    fn read_metrics(
        &self,
        subject: &str,
        name: Option<&str>,
        since_us: Option<i64>,
    ) -> Result<Vec<super::metrics::StoredPoint>, StoreError> {
        let tree = self.db.open_tree(METRICS_TREE).map_err(storage)?;
        super::metrics::read(&tree, subject, name, since_us)
    }

    fn metric_subjects(&self) -> Result<Vec<String>, StoreError> {
        let tree = self.db.open_tree(METRICS_TREE).map_err(storage)?;
        super::metrics::subjects(&tree)
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

    fn health(&self) -> StoreHealth {
        if self.copy.is_some() {
            return StoreHealth::ReadOnly;
        }
        let failed = self
            .failed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Some(reason) = failed {
            return StoreHealth::FailStopped(reason);
        }
        let open = self
            .sender
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some();
        if open {
            StoreHealth::Writable
        } else {
            StoreHealth::Closed
        }
    }

    fn instance_id(&self) -> Uuid {
        self.instance
    }
}
