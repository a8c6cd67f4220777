//! Accepting a loss: the one way to serve a damaged log again, and never implicit.
//!
//! A repair keeps a copy of the damaged files (`damaged-<time>/` in the data
//! directory), keeps the longest sound prefix of the log (every chunk before the
//! first that fails a check), rebuilds the stream index from it, and records
//! itself as a `LogRepaired` event in the stream [`REPAIR_STREAM`], in the same
//! atomic batch. Only then is the acknowledged-head record lowered to the new
//! head. A crash in between leaves a log that still refuses to open, and the
//! repair can simply be run again.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::Utc;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::acked::{self, AckedFile, AckedRecord};
use super::integrity::{chunk_crc, LogDigest};
use super::keys::{
    be64, chunk_key, storage, stream_index_key, stream_name_key, META_HEAD, META_STREAMS,
};
use super::recovery::{open_sled, read_or_init_meta};
use super::{read_only, SledStore, SledStoreConfig, LOG_DIR};
use crate::envelope::{encode_chunk, payload_checksum, Chunk, Envelope, Metadata, StreamId};
use crate::store::{Damage, StoreError};

/// The stream that records every repair of the log.
pub const REPAIR_STREAM: &str = "log-repair";
/// The type of the event a repair records.
pub const LOG_REPAIRED: &str = "LogRepaired";

/// What a repair did; also the payload of its `LogRepaired` event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepairReport {
    /// What was wrong, as the refused open said it.
    pub damage: String,
    /// The acknowledged head the record held (`None`: missing or damaged).
    pub acknowledged_head: Option<u64>,
    /// The last position kept: every event up to it is sound.
    pub kept_head: u64,
    /// Events the files still held after the kept head (damaged, or after the
    /// damage), now dropped.
    pub dropped_records: u64,
    /// Acknowledged events the repaired log does not hold: lost for good.
    pub lost_acknowledged: u64,
    /// Where the damaged files were copied.
    pub backup: PathBuf,
    /// The position of the `LogRepaired` event.
    pub recorded_at_position: u64,
}

impl SledStore {
    /// Checks the log in `config.path` without changing it: `Ok(None)` for a sound
    /// log, `Ok(Some(damage))` for one that [`SledStore::open`] would refuse.
    pub fn assess(config: &SledStoreConfig) -> Result<Option<Damage>, StoreError> {
        match SledStore::open_read_only(config.clone()) {
            Ok(store) => {
                store.close();
                Ok(None)
            }
            Err(StoreError::Damaged(damage)) => Ok(Some(damage)),
            Err(other) => Err(other),
        }
    }

    /// Accepts the loss of whatever cannot be trusted in a damaged log (see the
    /// module documentation). `Ok(None)`: the log was sound and nothing changed.
    pub fn repair(config: &SledStoreConfig) -> Result<Option<RepairReport>, StoreError> {
        let Some(damage) = SledStore::assess(config)? else {
            return Ok(None);
        };
        let backup = back_up(&config.path)?;
        let acknowledged_head = match acked::read(&config.path)? {
            AckedRecord::Present(acked) => Some(acked.head),
            AckedRecord::Absent | AckedRecord::Damaged(_) => None,
        };
        let db = open_sled(&config.path.join(LOG_DIR), config.cache_capacity_bytes)?;
        let (instance, _, _) = read_or_init_meta(&db)?;
        let prefix = sound_prefix(&db)?;
        let report = RepairReport {
            damage: damage.to_string(),
            acknowledged_head,
            kept_head: prefix.head,
            dropped_records: prefix.dropped_records,
            lost_acknowledged: acknowledged_head
                .map_or(0, |acked| acked.saturating_sub(prefix.head)),
            backup,
            recorded_at_position: prefix.head + 1,
        };
        let digest = rebuild(&db, instance, &prefix, &report)?;
        db.flush().map_err(storage)?;
        drop(db);
        // Lowering the record is the act of accepting the loss, so it comes last.
        match acked::read(&config.path)? {
            AckedRecord::Absent => {
                AckedFile::create(&config.path, report.recorded_at_position, &digest)?;
            }
            _ => AckedFile::open(&config.path)?.write(report.recorded_at_position, &digest)?,
        }
        // The repaired log must open as any other log does.
        SledStore::open(config.clone())?.close();
        Ok(Some(report))
    }
}

/// Copies the data directory's log and acknowledged-head record, as they are, to
/// `damaged-<time>/` beside them.
fn back_up(data_dir: &Path) -> Result<PathBuf, StoreError> {
    let stamp = Utc::now().format("%Y%m%dT%H%M%S%.6fZ");
    let backup = data_dir.join(format!("damaged-{stamp}"));
    read_only::copy_locked(&data_dir.join(LOG_DIR), &backup.join(LOG_DIR))?;
    let record = acked::path(data_dir);
    if record.exists() {
        std::fs::copy(&record, backup.join(acked::ACKED_HEAD_FILE))
            .map_err(|e| StoreError::Storage(format!("cannot copy {}: {e}", record.display())))?;
    }
    Ok(backup)
}

/// The longest sound run of chunks from position 1.
struct Prefix {
    head: u64,
    envelopes: Vec<Envelope>,
    digest: LogDigest,
    dropped_records: u64,
}

fn sound_prefix(db: &sled::Db) -> Result<Prefix, StoreError> {
    let mut prefix = Prefix {
        head: 0,
        envelopes: Vec::new(),
        digest: LogDigest::default(),
        dropped_records: 0,
    };
    let mut versions: HashMap<String, u64> = HashMap::new();
    let mut sound = true;
    for entry in db.range(b"c".to_vec()..b"d".to_vec()) {
        let (key, bytes) = entry.map_err(storage)?;
        let chunk = Chunk::open(&bytes).ok();
        let records = chunk.as_ref().and_then(|chunk| chunk.records().ok());
        let first = key.get(1..).and_then(|k| be64(k).ok());
        if sound {
            let decoded = match (first, &records) {
                (Some(first), Some(records)) if first == prefix.head + 1 && !records.is_empty() => {
                    records
                        .iter()
                        .enumerate()
                        .map(|(offset, record)| record.to_envelope(first + offset as u64))
                        .collect::<Result<Vec<_>, _>>()
                        .ok()
                }
                _ => None,
            };
            let in_order = decoded.as_ref().is_some_and(|envelopes| {
                // This chunk's versions over the kept ones, without copying those.
                let mut in_chunk: HashMap<&str, u64> = HashMap::new();
                envelopes.iter().all(|e| {
                    let stream = e.stream.as_str();
                    let last = in_chunk
                        .get(stream)
                        .or_else(|| versions.get(stream))
                        .copied()
                        .unwrap_or(0);
                    in_chunk.insert(stream, e.version);
                    last + 1 == e.version
                })
            });
            if let (Some(first), Some(envelopes), true) = (first, decoded, in_order) {
                for envelope in &envelopes {
                    versions.insert(envelope.stream.as_str().to_string(), envelope.version);
                }
                prefix.head = first + envelopes.len() as u64 - 1;
                prefix.digest =
                    prefix
                        .digest
                        .then(first, envelopes.len() as u64, chunk_crc(&bytes));
                prefix.envelopes.extend(envelopes);
                continue;
            }
            sound = false;
        }
        prefix.dropped_records += records.map_or(1, |records| records.len() as u64);
    }
    Ok(prefix)
}

/// Rewrites the log as the prefix plus the repair's own event, in one batch, and
/// returns the digest at the new head.
fn rebuild(
    db: &sled::Db,
    instance: Uuid,
    prefix: &Prefix,
    report: &RepairReport,
) -> Result<LogDigest, StoreError> {
    let mut batch = sled::Batch::default();
    for entry in db.range(chunk_key(prefix.head + 1)..b"d".to_vec()) {
        let (key, _) = entry.map_err(storage)?;
        batch.remove(key);
    }
    for range in [b"n".to_vec()..b"o".to_vec(), b"s".to_vec()..b"t".to_vec()] {
        for entry in db.range(range) {
            let (key, _) = entry.map_err(storage)?;
            batch.remove(key);
        }
    }
    let repair_stream = StreamId::new(REPAIR_STREAM)?;
    let payload = postcard::to_stdvec(report)
        .map_err(|e| StoreError::Storage(format!("cannot encode the repair record: {e}")))?;
    let repair_version = prefix
        .envelopes
        .iter()
        .filter(|e| e.stream == repair_stream)
        .count() as u64
        + 1;
    let repair = Envelope {
        position: prefix.head + 1,
        stream: repair_stream,
        version: repair_version,
        event_id: Uuid::new_v4(),
        event_type: LOG_REPAIRED.into(),
        schema_version: 1,
        recorded_at: Utc::now(),
        metadata: Metadata {
            source_instance: Some(instance),
            ..Metadata::default()
        },
        checksum: payload_checksum(&payload),
        payload,
    };
    let mut numbers: HashMap<&StreamId, u64> = HashMap::new();
    for envelope in prefix.envelopes.iter().chain(std::iter::once(&repair)) {
        let next = numbers.len() as u64;
        let number = *numbers.entry(&envelope.stream).or_insert_with(|| {
            batch.insert(stream_name_key(&envelope.stream), &next.to_be_bytes());
            next
        });
        batch.insert(
            stream_index_key(number, envelope.version),
            &envelope.position.to_be_bytes(),
        );
    }
    let chunk = encode_chunk(&[Arc::new(repair.clone())]);
    let digest = prefix.digest.then(repair.position, 1, chunk_crc(&chunk));
    batch.insert(chunk_key(repair.position), chunk);
    batch.insert(META_HEAD, &repair.position.to_be_bytes());
    batch.insert(META_STREAMS, &(numbers.len() as u64).to_be_bytes());
    db.apply_batch(batch).map_err(storage)?;
    Ok(digest)
}
