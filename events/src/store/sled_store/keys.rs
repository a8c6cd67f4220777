//! The key layout (see the module documentation of `sled_store`) and the reads
//! that follow it.

use crate::envelope::{Chunk, Envelope, StreamId};
use crate::store::StoreError;

pub(super) const META_FORMAT: &[u8] = b"mformat";
pub(super) const META_INSTANCE: &[u8] = b"minstance";
pub(super) const META_HEAD: &[u8] = b"mhead";
pub(super) const META_STREAMS: &[u8] = b"mstreams";

/// The chunk whose positions include `position`.
pub(super) fn chunk_holding(
    db: &sled::Db,
    position: u64,
) -> Result<Option<(sled::IVec, sled::IVec)>, StoreError> {
    db.range(b"c".to_vec()..=chunk_key(position))
        .next_back()
        .transpose()
        .map_err(storage)
}

/// The envelopes at `positions` (ascending), reading each chunk once.
pub(super) fn read_positions(
    db: &sled::Db,
    positions: &[u64],
) -> Result<Vec<Envelope>, StoreError> {
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

pub(super) fn missing(position: u64) -> StoreError {
    StoreError::Inconsistent(format!("the record at position {position} is missing"))
}

pub(super) fn read_all_from(
    db: &sled::Db,
    from: u64,
    max: usize,
) -> Result<Vec<Envelope>, StoreError> {
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

pub(super) fn read_record(db: &sled::Db, position: u64) -> Result<Envelope, StoreError> {
    read_positions(db, &[position])?
        .pop()
        .ok_or_else(|| missing(position))
}

/// A stream's number, if it has one (if it has events).
pub(super) fn stream_number(db: &sled::Db, stream: &StreamId) -> Result<Option<u64>, StoreError> {
    db.get(stream_name_key(stream))
        .map_err(storage)?
        .map(|value| be64(&value))
        .transpose()
}

/// A stream's version (0 when it has no events).
pub(super) fn stream_head(db: &sled::Db, stream: &StreamId) -> Result<u64, StoreError> {
    match stream_number(db, stream)? {
        Some(number) => numbered_stream_head(db, number),
        None => Ok(0),
    }
}

/// The version in a stream's last index key.
pub(super) fn numbered_stream_head(db: &sled::Db, number: u64) -> Result<u64, StoreError> {
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

pub(super) fn chunk_key(position: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(9);
    key.push(b'c');
    key.extend_from_slice(&position.to_be_bytes());
    key
}

pub(super) fn stream_index_key(number: u64, version: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(17);
    key.push(b's');
    key.extend_from_slice(&number.to_be_bytes());
    key.extend_from_slice(&version.to_be_bytes());
    key
}

/// The first key after every index key of stream `number`.
pub(super) fn stream_prefix_end(number: u64) -> Vec<u8> {
    stream_index_key(number.saturating_add(1), 0)
}

pub(super) fn stream_name_key(stream: &StreamId) -> Vec<u8> {
    let mut key = Vec::with_capacity(stream.as_str().len() + 1);
    key.push(b'n');
    key.extend_from_slice(stream.as_str().as_bytes());
    key
}

pub(super) fn be64(bytes: &[u8]) -> Result<u64, StoreError> {
    let array: [u8; 8] = bytes.try_into().map_err(|_| {
        StoreError::Inconsistent(format!(
            "a {}-byte number where 8 were expected",
            bytes.len()
        ))
    })?;
    Ok(u64::from_be_bytes(array))
}

pub(super) fn storage(error: sled::Error) -> StoreError {
    StoreError::Storage(error.to_string())
}
