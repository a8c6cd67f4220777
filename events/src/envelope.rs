//! The envelope: an event as the log keeps it, and its stored form.
//!
//! The store keeps the events of one group commit together as a chunk: the postcard
//! list of their records followed by a CRC-32 of those bytes, so any damaged byte is
//! caught when the chunk is read. Each envelope also carries a CRC-32 of its payload
//! alone, which travels with exports.

use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The longest stream id accepted.
pub const MAX_STREAM_ID_LEN: usize = 256;

/// The name of a stream: non-empty, at most [`MAX_STREAM_ID_LEN`] bytes, no NUL (the
/// store's keys use NUL as a separator).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct StreamId(String);

/// Why a text is not a stream id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid stream id {id:?}: {reason}")]
pub struct InvalidStreamId {
    /// The text refused.
    pub id: String,
    /// Which rule it breaks, in words (empty, too long, has a NUL).
    pub reason: &'static str,
}

impl StreamId {
    /// The stream id `id`, or why it is not one (see [`StreamId::check`]).
    pub fn new(id: impl Into<String>) -> Result<Self, InvalidStreamId> {
        let id = id.into();
        match Self::check(&id) {
            Ok(()) => Ok(StreamId(id)),
            Err(error) => Err(error),
        }
    }

    /// Whether `id` is a valid stream id, without allocating when it is.
    pub fn check(id: &str) -> Result<(), InvalidStreamId> {
        let reason = if id.is_empty() {
            "it is empty"
        } else if id.len() > MAX_STREAM_ID_LEN {
            "it is longer than 256 bytes"
        } else if id.contains('\0') {
            "it contains a NUL character"
        } else {
            return Ok(());
        };
        Err(InvalidStreamId {
            id: id.to_string(),
            reason,
        })
    }

    /// The stream's name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for StreamId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Who and what caused an event. `identity` is an opaque owner reference (a hash),
/// never a credential.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    /// The id of the API request that caused the event; `None` for events no
    /// request caused (recovery, background work).
    pub request_id: Option<String>,
    /// The opaque reference of the owner who asked; `None` when no one did.
    pub identity: Option<String>,
    /// The instance that first recorded the event (kept across transfers).
    pub source_instance: Option<Uuid>,
}

/// An event to append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    /// The event's unique id; a retried append with the same id is not appended
    /// twice.
    pub event_id: Uuid,
    /// The stable type name of the domain event (`ResourcesRequested`).
    pub event_type: String,
    /// The schema version the payload was written with.
    pub schema_version: u16,
    /// Who and what caused the event.
    pub metadata: Metadata,
    /// The domain event, encoded by the codec (postcard).
    pub payload: Vec<u8>,
    /// Set when the event was recorded elsewhere first (imports keep the original
    /// time); the store stamps the commit time otherwise.
    pub recorded_at: Option<DateTime<Utc>>,
}

impl NewEvent {
    /// A new event with a fresh random id, no metadata and no recorded time.
    pub fn new(event_type: impl Into<String>, schema_version: u16, payload: Vec<u8>) -> Self {
        NewEvent {
            event_id: Uuid::new_v4(),
            event_type: event_type.into(),
            schema_version,
            metadata: Metadata::default(),
            payload,
            recorded_at: None,
        }
    }

    /// The same event with this metadata instead.
    pub fn with_metadata(mut self, metadata: Metadata) -> Self {
        self.metadata = metadata;
        self
    }
}

/// A committed event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// Position in the whole log, from 1, gapless.
    pub position: u64,
    /// The stream the event belongs to.
    pub stream: StreamId,
    /// Version in its stream, from 1, gapless.
    pub version: u64,
    /// The event's unique id, as appended.
    pub event_id: Uuid,
    /// The stable type name of the domain event.
    pub event_type: String,
    /// The schema version the payload was written with.
    pub schema_version: u16,
    /// When the event was first committed (kept across imports).
    pub recorded_at: DateTime<Utc>,
    /// Who and what caused the event.
    pub metadata: Metadata,
    /// The domain event, encoded by the codec (postcard).
    pub payload: Vec<u8>,
    /// CRC-32 of `payload`.
    pub checksum: u32,
}

impl Envelope {
    /// Whether `event` is this envelope's event (same id, type, schema and payload):
    /// how a retried append is recognised.
    pub fn is_same_event(&self, event: &NewEvent) -> bool {
        self.event_id == event.event_id
            && self.event_type == event.event_type
            && self.schema_version == event.schema_version
            && self.payload == event.payload
    }
}

/// The CRC-32 of a payload, as [`Envelope::checksum`] keeps it.
pub fn payload_checksum(payload: &[u8]) -> u32 {
    crc32fast::hash(payload)
}

/// The stored form of an envelope; its position is implied by its chunk.
#[derive(Serialize, Deserialize)]
pub(crate) struct StoredRecord<'a> {
    stream: &'a str,
    version: u64,
    event_id: [u8; 16],
    event_type: &'a str,
    schema_version: u16,
    recorded_at_micros: i64,
    request_id: Option<&'a str>,
    identity: Option<&'a str>,
    source_instance: Option<[u8; 16]>,
    #[serde(with = "serde_bytes_compat")]
    payload: &'a [u8],
    checksum: u32,
}

impl<'a> StoredRecord<'a> {
    fn from_envelope(envelope: &'a Envelope) -> Self {
        StoredRecord {
            stream: envelope.stream.as_str(),
            version: envelope.version,
            event_id: *envelope.event_id.as_bytes(),
            event_type: &envelope.event_type,
            schema_version: envelope.schema_version,
            recorded_at_micros: envelope.recorded_at.timestamp_micros(),
            request_id: envelope.metadata.request_id.as_deref(),
            identity: envelope.metadata.identity.as_deref(),
            source_instance: envelope.metadata.source_instance.map(|u| *u.as_bytes()),
            payload: &envelope.payload,
            checksum: envelope.checksum,
        }
    }

    /// Checks what [`Self::to_envelope`] checks, without building the envelope, and
    /// gives the record's stream and version.
    pub(crate) fn verify(&self) -> Result<(&'a str, u64), RecordError> {
        let computed = payload_checksum(self.payload);
        if computed != self.checksum {
            return Err(RecordError::PayloadChecksum {
                stored: self.checksum,
                computed,
            });
        }
        StreamId::check(self.stream).map_err(|e| RecordError::Decode(e.to_string()))?;
        Utc.timestamp_micros(self.recorded_at_micros)
            .single()
            .ok_or(RecordError::Time)?;
        Ok((self.stream, self.version))
    }

    /// The envelope at `position`, its payload verified.
    pub(crate) fn to_envelope(&self, position: u64) -> Result<Envelope, RecordError> {
        let computed = payload_checksum(self.payload);
        if computed != self.checksum {
            return Err(RecordError::PayloadChecksum {
                stored: self.checksum,
                computed,
            });
        }
        let stream = StreamId::new(self.stream).map_err(|e| RecordError::Decode(e.to_string()))?;
        let recorded_at = Utc
            .timestamp_micros(self.recorded_at_micros)
            .single()
            .ok_or(RecordError::Time)?;
        Ok(Envelope {
            position,
            stream,
            version: self.version,
            event_id: Uuid::from_bytes(self.event_id),
            event_type: self.event_type.to_string(),
            schema_version: self.schema_version,
            recorded_at,
            metadata: Metadata {
                request_id: self.request_id.map(str::to_string),
                identity: self.identity.map(str::to_string),
                source_instance: self.source_instance.map(Uuid::from_bytes),
            },
            payload: self.payload.to_vec(),
            checksum: self.checksum,
        })
    }
}

/// postcard writes a `&[u8]` as a length and the bytes either way; this keeps the
/// borrow on decode.
mod serde_bytes_compat {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &&[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(bytes)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<&'de [u8], D::Error> {
        <&[u8]>::deserialize(deserializer)
    }
}

/// Why a stored chunk or record could not be read back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// The chunk has fewer bytes than its trailing CRC-32 needs.
    #[error("the chunk is shorter than its checksum")]
    Truncated,
    /// A byte of the chunk changed: its CRC-32 is not the one stored after it.
    #[error("the chunk checksum does not match (stored {stored:08x}, computed {computed:08x})")]
    ChunkChecksum {
        /// The CRC-32 stored after the chunk.
        stored: u32,
        /// The CRC-32 of the chunk's bytes as read.
        computed: u32,
    },
    /// A record's payload is not the one its checksum was computed on.
    #[error("the payload checksum does not match (stored {stored:08x}, computed {computed:08x})")]
    PayloadChecksum {
        /// The CRC-32 the record carries.
        stored: u32,
        /// The CRC-32 of the payload as read.
        computed: u32,
    },
    /// The checksum matches but the bytes are not a list of records (postcard's
    /// message).
    #[error("the chunk does not decode: {0}")]
    Decode(String),
    /// A record's timestamp is not a representable time.
    #[error("the record's time is out of range")]
    Time,
}

/// Encodes consecutive envelopes (one group commit) as one stored chunk: the
/// postcard list of records, LZ4-compressed (RADL text and repeated stream names
/// shrink several times, and sled keeps what it reads in memory), followed by a
/// CRC-32 of the stored bytes.
pub(crate) fn encode_chunk(envelopes: &[std::sync::Arc<Envelope>]) -> Vec<u8> {
    let records: Vec<StoredRecord<'_>> = envelopes
        .iter()
        .map(|e| StoredRecord::from_envelope(e))
        .collect();
    // Serializing plain data into a Vec cannot fail.
    let plain = postcard::to_stdvec(&records).unwrap_or_default();
    let mut bytes = lz4_flex::block::compress_prepend_size(&plain);
    let crc = crc32fast::hash(&bytes);
    bytes.extend_from_slice(&crc.to_be_bytes());
    bytes
}

/// The largest decompressed chunk accepted: a damaged size prefix must not make
/// the reader allocate without bound.
const MAX_CHUNK_BYTES: usize = 1 << 30;

/// A stored chunk, verified and decompressed.
pub(crate) struct Chunk {
    plain: Vec<u8>,
}

impl Chunk {
    /// Verifies the stored bytes and decompresses them.
    pub(crate) fn open(bytes: &[u8]) -> Result<Chunk, RecordError> {
        if bytes.len() < 4 {
            return Err(RecordError::Truncated);
        }
        let (body, crc_bytes) = bytes.split_at(bytes.len() - 4);
        let stored = u32::from_be_bytes([crc_bytes[0], crc_bytes[1], crc_bytes[2], crc_bytes[3]]);
        let computed = crc32fast::hash(body);
        if stored != computed {
            return Err(RecordError::ChunkChecksum { stored, computed });
        }
        let announced = body
            .get(..4)
            .map(|size| u32::from_le_bytes([size[0], size[1], size[2], size[3]]) as usize)
            .ok_or(RecordError::Truncated)?;
        if announced > MAX_CHUNK_BYTES {
            return Err(RecordError::Decode(format!(
                "the chunk announces {announced} bytes"
            )));
        }
        let plain = lz4_flex::block::decompress_size_prepended(body)
            .map_err(|e| RecordError::Decode(e.to_string()))?;
        Ok(Chunk { plain })
    }

    /// The chunk's records, borrowing its bytes.
    pub(crate) fn records(&self) -> Result<Vec<StoredRecord<'_>>, RecordError> {
        postcard::from_bytes(&self.plain).map_err(|e| RecordError::Decode(e.to_string()))
    }
}

/// Verifies, decompresses and decodes a stored chunk in one call.
#[cfg(test)]
fn decode_chunk(bytes: &[u8]) -> Result<Vec<Envelope>, RecordError> {
    let chunk = Chunk::open(bytes)?;
    let records = chunk.records()?;
    records
        .iter()
        .enumerate()
        .map(|(offset, record)| record.to_envelope(offset as u64 + 1))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn envelope(position: u64) -> Envelope {
        let payload = format!("payload {position}").into_bytes();
        Envelope {
            position,
            stream: StreamId::new("infrastructure-x").expect("valid id"),
            version: position,
            event_id: Uuid::new_v4(),
            event_type: "Thing".into(),
            schema_version: 2,
            recorded_at: Utc
                .timestamp_micros(1_700_000_000_123_456)
                .single()
                .expect("valid time"),
            metadata: Metadata {
                request_id: Some("r".into()),
                identity: None,
                source_instance: Some(Uuid::new_v4()),
            },
            checksum: payload_checksum(&payload),
            payload,
        }
    }

    #[test]
    fn chunks_round_trip() {
        let originals: Vec<Arc<Envelope>> = (5..8).map(|p| Arc::new(envelope(p))).collect();
        let bytes = encode_chunk(&originals);
        let chunk = Chunk::open(&bytes).expect("intact chunk");
        let records = chunk.records().expect("decodes");
        for (offset, (record, original)) in records.iter().zip(&originals).enumerate() {
            let decoded = record.to_envelope(5 + offset as u64).expect("verifies");
            assert_eq!(&decoded, original.as_ref());
        }
    }

    #[test]
    fn every_flipped_byte_is_detected() {
        let bytes = encode_chunk(&[Arc::new(envelope(1)), Arc::new(envelope(2))]);
        for index in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[index] ^= 0x40;
            assert!(
                decode_chunk(&damaged).is_err(),
                "a flip at byte {index} went unnoticed"
            );
        }
        assert!(matches!(
            decode_chunk(&bytes[..2]),
            Err(RecordError::Truncated)
        ));
    }

    #[test]
    fn a_payload_that_does_not_match_its_checksum_is_refused() {
        let mut bad = envelope(1);
        bad.checksum ^= 1;
        let bytes = encode_chunk(&[Arc::new(bad)]);
        assert!(matches!(
            decode_chunk(&bytes),
            Err(RecordError::PayloadChecksum { .. })
        ));
    }

    #[test]
    fn stream_ids_are_validated() {
        assert!(StreamId::new("").is_err());
        assert!(StreamId::new("a\0b").is_err());
        assert!(StreamId::new("x".repeat(257)).is_err());
        assert!(StreamId::new("vm-1-2").is_ok());
    }
}
