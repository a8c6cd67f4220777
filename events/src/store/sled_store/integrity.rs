//! The check every open makes before the log is served: every chunk verifies, the
//! positions are gapless from 1 to the head, the stream index is exactly the
//! records' streams and versions, and the log digest at the acknowledged head is
//! the one recorded when it was acknowledged.
//!
//! sled recovers a prefix of whole batches and stops silently at the first damaged
//! one, so a damaged file looks like a shorter log. Only evidence kept outside
//! sled (the acknowledged-head record) tells the two apart; the digest tells a
//! log that was replaced or rewritten from one that was acknowledged.

use std::collections::HashMap;

use sha2::{Digest, Sha256};

use super::keys::{be64, storage, stream_index_key};
use crate::envelope::Chunk;
use crate::store::{Damage, StoreError};

/// A digest of the whole log up to a chunk boundary: SHA-256 chained over every
/// chunk's first position, record count and stored CRC-32 (which covers every
/// byte of its records). Cheap to keep up to date in the writer, and any
/// rewritten, dropped or reordered chunk changes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct LogDigest(pub [u8; 32]);

impl LogDigest {
    /// The digest after one more chunk.
    pub(crate) fn then(&self, first: u64, records: u64, chunk_crc: u32) -> LogDigest {
        let mut hasher = Sha256::new();
        hasher.update(self.0);
        hasher.update(first.to_be_bytes());
        hasher.update(records.to_be_bytes());
        hasher.update(chunk_crc.to_be_bytes());
        LogDigest(hasher.finalize().into())
    }
}

/// The stored CRC-32 at the end of an encoded chunk.
pub(crate) fn chunk_crc(bytes: &[u8]) -> u32 {
    match bytes
        .len()
        .checked_sub(4)
        .and_then(|start| bytes.get(start..))
    {
        Some(tail) => u32::from_be_bytes([tail[0], tail[1], tail[2], tail[3]]),
        None => 0,
    }
}

/// What a full scan found in a sound log.
#[derive(Debug, Clone, Default)]
pub(super) struct Scan {
    /// The last position.
    pub head: u64,
    /// The digest at the head.
    pub digest: LogDigest,
    /// The digest at the position the scan was asked about (`None` when no chunk
    /// ends there): the acknowledged head, whose digest the record holds.
    pub digest_at_acknowledged: Option<LogDigest>,
}

/// Reads every record of the log and its index. `Err(Damage)` when anything
/// disagrees; `Err(StoreError)` only for sled failing to read.
/// `acknowledged` is the position whose digest the caller compares (0 for none).
pub(super) fn scan(
    db: &sled::Db,
    meta_head: u64,
    acknowledged: u64,
) -> Result<Result<Scan, Damage>, StoreError> {
    let started = std::time::Instant::now();
    let names = match stream_names(db)? {
        Ok(names) => names,
        Err(damage) => return Ok(Err(damage)),
    };
    let mut scan = Scan::default();
    if acknowledged == 0 {
        scan.digest_at_acknowledged = Some(LogDigest::default());
    }
    let mut from_records = IndexSum::default();
    for entry in db.range(b"c".to_vec()..b"d".to_vec()) {
        let (key, bytes) = entry.map_err(storage)?;
        let first = match key.get(1..).map(be64) {
            Some(Ok(first)) if key.len() == 9 => first,
            _ => return Ok(Err(structure("a chunk key is malformed"))),
        };
        if first != scan.head + 1 {
            return Ok(Err(structure(format!(
                "the records after position {} start at position {first}",
                scan.head
            ))));
        }
        let record = |problem| Damage::Record {
            position: first,
            problem,
        };
        let chunk = match Chunk::open(&bytes) {
            Ok(chunk) => chunk,
            Err(problem) => return Ok(Err(record(problem))),
        };
        let records = match chunk.records() {
            Ok(records) => records,
            Err(problem) => return Ok(Err(record(problem))),
        };
        if records.is_empty() {
            return Ok(Err(structure(format!("the chunk at {first} is empty"))));
        }
        for (offset, stored) in records.iter().enumerate() {
            let position = first + offset as u64;
            let (stream, version) = match stored.verify() {
                Ok(found) => found,
                Err(problem) => return Ok(Err(Damage::Record { position, problem })),
            };
            let Some(number) = names.get(stream) else {
                return Ok(Err(structure(format!(
                    "the event at position {position} belongs to stream {stream}, which the index does not name"
                ))));
            };
            from_records.add(*number, version, position);
        }
        scan.head = first + records.len() as u64 - 1;
        scan.digest = scan
            .digest
            .then(first, records.len() as u64, chunk_crc(&bytes));
        if scan.head == acknowledged {
            scan.digest_at_acknowledged = Some(scan.digest);
        }
    }
    if scan.head != meta_head {
        return Ok(Err(structure(format!(
            "the head is noted as position {meta_head} but the records end at position {}",
            scan.head
        ))));
    }
    let records_read = started.elapsed();
    match index_sum(db, &names, scan.head)? {
        Ok(from_index) if from_index == from_records => {
            tracing::info!(
                events = scan.head,
                streams = names.len(),
                records_ms = records_read.as_millis() as u64,
                index_ms = (started.elapsed() - records_read).as_millis() as u64,
                "the whole event log verified"
            );
            Ok(Ok(scan))
        }
        Ok(from_index) => Ok(Err(structure(format!(
            "the stream index has {} entries that do not match the {} records",
            from_index.count, from_records.count
        )))),
        Err(damage) => Ok(Err(damage)),
    }
}

fn structure(message: impl Into<String>) -> Damage {
    Damage::Structure(message.into())
}

/// Stream name → number, from the `n` keys; numbers must be unique.
fn stream_names(db: &sled::Db) -> Result<Result<HashMap<String, u64>, Damage>, StoreError> {
    let mut names = HashMap::new();
    let mut numbers = std::collections::HashSet::new();
    for entry in db.range(b"n".to_vec()..b"o".to_vec()) {
        let (key, value) = entry.map_err(storage)?;
        let Ok(name) = String::from_utf8(key[1..].to_vec()) else {
            return Ok(Err(structure("a stream name in the index is not UTF-8")));
        };
        let Ok(number) = be64(&value) else {
            return Ok(Err(structure(format!(
                "stream {name} has a malformed number"
            ))));
        };
        if !numbers.insert(number) {
            return Ok(Err(structure(format!(
                "stream {name} shares its number {number} with another stream"
            ))));
        }
        names.insert(name, number);
    }
    Ok(Ok(names))
}

/// An order-independent sum of (stream number, version, position) triples: the
/// records and the index hold the same triples exactly when their sums and counts
/// agree (up to a 2^-64 chance for random damage).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct IndexSum {
    count: u64,
    sum: u64,
}

impl IndexSum {
    fn add(&mut self, number: u64, version: u64, position: u64) {
        self.count += 1;
        let mixed = mix(mix(mix(number) ^ version) ^ position);
        self.sum = self.sum.wrapping_add(mixed);
    }
}

/// splitmix64's finaliser: every input bit moves every output bit.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Reads the `s` keys: every stream's versions must run 1, 2, … without a gap,
/// belong to a named stream, and point at positions within the log.
fn index_sum(
    db: &sled::Db,
    names: &HashMap<String, u64>,
    head: u64,
) -> Result<Result<IndexSum, Damage>, StoreError> {
    let named: std::collections::HashSet<u64> = names.values().copied().collect();
    let mut sum = IndexSum::default();
    let mut current: Option<(u64, u64)> = None;
    let mut seen_streams = 0usize;
    for entry in db.range(stream_index_key(0, 0)..b"t".to_vec()) {
        let (key, value) = entry.map_err(storage)?;
        if key.len() != 17 {
            return Ok(Err(structure("a stream index key is malformed")));
        }
        let (Ok(number), Ok(version), Ok(position)) =
            (be64(&key[1..9]), be64(&key[9..17]), be64(&value))
        else {
            return Ok(Err(structure("a stream index entry is malformed")));
        };
        if !named.contains(&number) {
            return Ok(Err(structure(format!(
                "the index holds stream number {number}, which no stream name has"
            ))));
        }
        let expected = match current {
            Some((n, last)) if n == number => last + 1,
            _ => {
                seen_streams += 1;
                1
            }
        };
        if version != expected {
            return Ok(Err(structure(format!(
                "stream number {number} jumps to version {version} where {expected} was next"
            ))));
        }
        if position == 0 || position > head {
            return Ok(Err(structure(format!(
                "the index points at position {position}, outside the log (1..={head})"
            ))));
        }
        current = Some((number, version));
        sum.add(number, version, position);
    }
    if seen_streams != names.len() {
        return Ok(Err(structure(format!(
            "{} streams are named but {seen_streams} have events",
            names.len()
        ))));
    }
    Ok(Ok(sum))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_depends_on_every_input_and_on_order() {
        let start = LogDigest::default();
        let a = start.then(1, 3, 0xdead_beef);
        assert_ne!(a, start.then(2, 3, 0xdead_beef));
        assert_ne!(a, start.then(1, 4, 0xdead_beef));
        assert_ne!(a, start.then(1, 3, 0xdead_beee));
        let ab = a.then(4, 1, 7);
        let b = start.then(4, 1, 7);
        assert_ne!(ab, b.then(1, 3, 0xdead_beef));
    }

    #[test]
    fn the_index_sum_tells_a_moved_entry() {
        let mut records = IndexSum::default();
        records.add(1, 1, 1);
        records.add(1, 2, 2);
        let mut index = IndexSum::default();
        index.add(1, 1, 2);
        index.add(1, 2, 1);
        assert_ne!(records, index);
    }
}
