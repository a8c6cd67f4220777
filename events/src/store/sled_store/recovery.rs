//! Opening the files: sled itself (which can panic on damaged files), the
//! metadata, and the integrity check against the acknowledged-head record.

use std::path::Path;

use uuid::Uuid;

use super::acked::{self, AckedRecord};
use super::integrity;
use super::keys::{be64, storage, META_FORMAT, META_HEAD, META_INSTANCE, META_STREAMS};
use super::{RecoveryReport, FORMAT_VERSION};
use crate::store::StoreError;

/// How long an open waits for a lock that the same process's previous handle may
/// still hold: sled releases its file lock from a background thread a moment after
/// the last handle is dropped, so a close followed at once by an open can find it
/// held. A lock held by another server is still refused, after this wait.
const LOCK_RELEASE_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Runs `attempt` again while it answers [`StoreError::InUse`], for at most
/// [`LOCK_RELEASE_WAIT`].
pub(super) fn waiting_for_lock<T>(
    mut attempt: impl FnMut() -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let started = std::time::Instant::now();
    loop {
        match attempt() {
            Err(StoreError::InUse(_)) if started.elapsed() < LOCK_RELEASE_WAIT => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => return other,
        }
    }
}

pub(super) fn open_sled(path: &Path, cache_capacity_bytes: u64) -> Result<sled::Db, StoreError> {
    waiting_for_lock(|| open_sled_once(path, cache_capacity_bytes))
}

fn open_sled_once(path: &Path, cache_capacity_bytes: u64) -> Result<sled::Db, StoreError> {
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
pub(super) fn read_or_init_meta(db: &sled::Db) -> Result<(Uuid, u64, u64), StoreError> {
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
pub(super) fn check_log(
    db: &sled::Db,
    meta_head: u64,
    record: &AckedRecord,
) -> Result<(integrity::Scan, RecoveryReport), StoreError> {
    let recorded_head = match record {
        AckedRecord::Present(acked) => acked.head,
        AckedRecord::Absent | AckedRecord::Damaged(_) => 0,
    };
    let scan = integrity::scan(db, meta_head, recorded_head)?.map_err(StoreError::Damaged)?;
    let acknowledged_head = acked::check(record, scan.head, scan.digest_at_acknowledged)
        .map_err(StoreError::Damaged)?;
    let report = RecoveryReport {
        head: scan.head,
        acknowledged_head,
        verified_records: scan.head,
    };
    Ok((scan, report))
}

pub(super) fn record_lacks_digest(record: &AckedRecord) -> bool {
    matches!(record, AckedRecord::Present(acked) if acked.digest.is_none())
}
