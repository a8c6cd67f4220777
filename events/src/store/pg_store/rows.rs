//! Rows of `infralog_events` to envelopes and back, checked on every read.

use chrono::{DateTime, Utc};
use tokio_postgres::types::Json;
use tokio_postgres::{Row, Transaction};
use uuid::Uuid;

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

/// The most rows one INSERT carries.
const INSERT_CHUNK: usize = 4_096;

/// Inserts envelopes (positions already given) and moves their streams'
/// versions, inside the caller's transaction.
pub(super) async fn insert_envelopes(
    transaction: &Transaction<'_>,
    envelopes: &[Envelope],
) -> Result<(), StoreError> {
    let mut heads = std::collections::HashMap::new();
    for envelope in envelopes {
        heads.insert(envelope.stream.as_str(), envelope.version as i64);
    }
    let (names, versions): (Vec<&str>, Vec<i64>) = heads.into_iter().unzip();
    let rows = async {
        for chunk in envelopes.chunks(INSERT_CHUNK) {
            insert_chunk(transaction, chunk).await?;
        }
        Ok::<(), StoreError>(())
    };
    let streams = async {
        transaction
            .execute(
                "INSERT INTO infralog_streams (stream, version) \
                 SELECT * FROM UNNEST($1::text[], $2::bigint[]) \
                 ON CONFLICT (stream) DO UPDATE SET version = EXCLUDED.version",
                &[&names, &versions],
            )
            .await
            .map_err(super::pg_error)
    };
    // Pipelined on the one connection: one round trip for both.
    tokio::try_join!(rows, streams)?;
    Ok(())
}

async fn insert_chunk(transaction: &Transaction<'_>, chunk: &[Envelope]) -> Result<(), StoreError> {
    let positions: Vec<i64> = chunk.iter().map(|e| e.position as i64).collect();
    let streams: Vec<&str> = chunk.iter().map(|e| e.stream.as_str()).collect();
    let versions: Vec<i64> = chunk.iter().map(|e| e.version as i64).collect();
    let ids: Vec<Uuid> = chunk.iter().map(|e| e.event_id).collect();
    let types: Vec<&str> = chunk.iter().map(|e| e.event_type.as_str()).collect();
    let schemas: Vec<i32> = chunk.iter().map(|e| i32::from(e.schema_version)).collect();
    let times = chunk
        .iter()
        .map(|e| nanos_of(e.recorded_at))
        .collect::<Result<Vec<i64>, _>>()?;
    let metadata: Vec<Json<&Metadata>> = chunk.iter().map(|e| Json(&e.metadata)).collect();
    let payloads: Vec<&[u8]> = chunk.iter().map(|e| e.payload.as_slice()).collect();
    let checksums: Vec<i64> = chunk.iter().map(|e| i64::from(e.checksum)).collect();
    transaction
        .execute(
            "INSERT INTO infralog_events (position, stream, version, event_id, event_type, \
             schema_version, recorded_at_ns, metadata, payload, checksum) \
             SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::bigint[], $4::uuid[], \
             $5::text[], $6::integer[], $7::bigint[], $8::jsonb[], $9::bytea[], $10::bigint[])",
            &[
                &positions, &streams, &versions, &ids, &types, &schemas, &times, &metadata,
                &payloads, &checksums,
            ],
        )
        .await
        .map_err(super::pg_error)?;
    Ok(())
}
