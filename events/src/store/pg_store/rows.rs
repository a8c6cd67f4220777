//! Rows of `infralog_events` to envelopes and back, checked on every read.

use chrono::{DateTime, Utc};
use tokio_postgres::types::Json;
use tokio_postgres::Row;

use crate::envelope::{payload_checksum, Envelope, Metadata, RecordError, StreamId};
use crate::store::StoreError;

/// The columns every read selects, in the order [`envelope_of`] reads them.
pub(super) const COLUMNS: &str = "position, stream, version, event_id, event_type, \
     schema_version, recorded_at_ns, metadata, payload, checksum";

/// The envelope a row holds. A payload that fails its checksum, or a row whose
/// numbers are out of range, is an error naming the position: never served.
pub(super) fn envelope_of(row: &Row) -> Result<Envelope, StoreError> {
    let position = unsigned(row.get::<_, i64>(0), "position", 0)?;
    let damaged = |problem: RecordError| StoreError::Corrupt { position, problem };
    let stream: String = row.get(1);
    let stream = StreamId::new(stream)
        .map_err(|e| StoreError::Inconsistent(format!("position {position}: {e}")))?;
    let version = unsigned(row.get::<_, i64>(2), "version", position)?;
    let schema_version = u16::try_from(row.get::<_, i32>(5)).map_err(|_| {
        StoreError::Inconsistent(format!("position {position}: schema version out of range"))
    })?;
    let recorded_at = DateTime::<Utc>::from_timestamp_nanos(row.get::<_, i64>(6));
    let Json(metadata): Json<Metadata> = row
        .try_get(7)
        .map_err(|e| damaged(RecordError::Decode(format!("metadata: {e}"))))?;
    let payload: Vec<u8> = row.get(8);
    let stored = u32::try_from(row.get::<_, i64>(9))
        .map_err(|_| damaged(RecordError::Decode("checksum out of range".into())))?;
    let computed = payload_checksum(&payload);
    if stored != computed {
        return Err(damaged(RecordError::PayloadChecksum { stored, computed }));
    }
    Ok(Envelope {
        position,
        stream,
        version,
        event_id: row.get(3),
        event_type: row.get(4),
        schema_version,
        recorded_at,
        metadata,
        payload,
        checksum: stored,
    })
}

fn unsigned(value: i64, what: &str, position: u64) -> Result<u64, StoreError> {
    u64::try_from(value)
        .map_err(|_| StoreError::Inconsistent(format!("position {position}: negative {what}")))
}

/// A time as the table keeps it: nanoseconds since the epoch. Times past 2262 do
/// not fit; they are refused rather than wrapped.
pub(super) fn nanos_of(time: DateTime<Utc>) -> Result<i64, StoreError> {
    time.timestamp_nanos_opt()
        .ok_or_else(|| StoreError::InvalidImport(format!("the time {time} is out of range")))
}
