//! The acknowledged-head record: the evidence, kept outside sled, of how far the
//! log was acknowledged, so that a log that recovers less (a truncated or damaged
//! file, a restored backup) is caught instead of served.
//!
//! One 64-byte record at the start of `acked-head` beside the sled directory:
//!
//! | bytes | content |
//! |---|---|
//! | 0..8 | magic `ILACKHD1` |
//! | 8..16 | the acknowledged head position, big-endian |
//! | 16..48 | the log digest at that position (see [`super::integrity::LogDigest`]) |
//! | 48..60 | zero |
//! | 60..64 | CRC-32 of bytes 0..60, big-endian |
//!
//! The writer thread rewrites it in place and syncs it after every durable group
//! commit and before answering the group: so it never runs ahead of the log, and
//! every acknowledged append is below it. 64 bytes at offset 0 sit in one disk
//! sector, which is written whole or not at all. A record that fails its checksum
//! is damage and is reported; it is never guessed around.
//!
//! The record of earlier builds (8 bytes: the head alone, no checksum, no digest)
//! is still read, once, as a head without a digest.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::integrity::LogDigest;
use crate::store::{Damage, StoreError};

/// The file beside the sled directory.
pub(super) const ACKED_HEAD_FILE: &str = "acked-head";
const MAGIC: &[u8; 8] = b"ILACKHD1";
const RECORD_LEN: usize = 64;
const LEGACY_LEN: usize = 8;

/// What the record says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct AckedHead {
    pub head: u64,
    /// `None` for a record written by an earlier build.
    pub digest: Option<LogDigest>,
}

/// What the data directory holds in place of the record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum AckedRecord {
    Absent,
    Present(AckedHead),
    Damaged(String),
}

pub(super) fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(ACKED_HEAD_FILE)
}

/// Reads the record without changing any byte of the file.
pub(super) fn read(data_dir: &Path) -> Result<AckedRecord, StoreError> {
    let path = path(data_dir);
    let mut bytes = Vec::with_capacity(RECORD_LEN);
    match File::open(&path) {
        Ok(file) => {
            file.take(RECORD_LEN as u64 + 1)
                .read_to_end(&mut bytes)
                .map_err(|e| StoreError::Storage(format!("cannot read {}: {e}", path.display())))?;
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Ok(AckedRecord::Absent)
        }
        Err(error) => {
            return Err(StoreError::Storage(format!(
                "cannot read {}: {error}",
                path.display()
            )))
        }
    }
    Ok(decode(&bytes))
}

fn decode(bytes: &[u8]) -> AckedRecord {
    // A record of the current format cut to 8 bytes is its marker alone.
    if bytes.len() == LEGACY_LEN && bytes != MAGIC {
        let mut head = [0u8; 8];
        head.copy_from_slice(bytes);
        return AckedRecord::Present(AckedHead {
            head: u64::from_be_bytes(head),
            digest: None,
        });
    }
    if bytes.len() != RECORD_LEN {
        return AckedRecord::Damaged(format!(
            "it has {} bytes where {RECORD_LEN} were expected",
            bytes.len()
        ));
    }
    if &bytes[..8] != MAGIC {
        return AckedRecord::Damaged("it does not start with its marker".into());
    }
    let stored = u32::from_be_bytes([bytes[60], bytes[61], bytes[62], bytes[63]]);
    let computed = crc32fast::hash(&bytes[..60]);
    if stored != computed {
        return AckedRecord::Damaged(format!(
            "its checksum does not match (stored {stored:08x}, computed {computed:08x})"
        ));
    }
    let mut head = [0u8; 8];
    head.copy_from_slice(&bytes[8..16]);
    let mut digest = [0u8; 32];
    digest.copy_from_slice(&bytes[16..48]);
    AckedRecord::Present(AckedHead {
        head: u64::from_be_bytes(head),
        digest: Some(LogDigest(digest)),
    })
}

fn encode(head: u64, digest: &LogDigest) -> [u8; RECORD_LEN] {
    let mut bytes = [0u8; RECORD_LEN];
    bytes[..8].copy_from_slice(MAGIC);
    bytes[8..16].copy_from_slice(&head.to_be_bytes());
    bytes[16..48].copy_from_slice(&digest.0);
    let crc = crc32fast::hash(&bytes[..60]);
    bytes[60..].copy_from_slice(&crc.to_be_bytes());
    bytes
}

/// The open record file, owned by the writer thread.
pub(super) struct AckedFile {
    file: File,
}

impl AckedFile {
    /// Opens the existing record file.
    pub(super) fn open(data_dir: &Path) -> Result<Self, StoreError> {
        let path = path(data_dir);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| StoreError::Storage(format!("cannot open {}: {e}", path.display())))?;
        Ok(AckedFile { file })
    }

    /// Creates the record file holding `head`: written whole under another name
    /// and renamed, so that no crash leaves an empty or partial record (which
    /// would read as damage).
    pub(super) fn create(
        data_dir: &Path,
        head: u64,
        digest: &LogDigest,
    ) -> Result<Self, StoreError> {
        let path = path(data_dir);
        let staged = data_dir.join(format!("{ACKED_HEAD_FILE}.new"));
        let fail = |what: &str, e: std::io::Error| {
            StoreError::Storage(format!("cannot {what} {}: {e}", path.display()))
        };
        let mut file = File::create(&staged).map_err(|e| fail("create", e))?;
        std::io::Write::write_all(&mut file, &encode(head, digest))
            .and_then(|()| file.sync_all())
            .map_err(|e| fail("write", e))?;
        drop(file);
        std::fs::rename(&staged, &path).map_err(|e| fail("create", e))?;
        File::open(data_dir)
            .and_then(|dir| dir.sync_all())
            .map_err(|e| fail("sync the directory of", e))?;
        AckedFile::open(data_dir)
    }

    /// Records `head` and its digest durably. Called before the group it covers is
    /// answered.
    pub(super) fn write(&mut self, head: u64, digest: &LogDigest) -> Result<(), StoreError> {
        let bytes = encode(head, digest);
        self.file
            .write_all_at(&bytes, 0)
            .and_then(|()| self.file.sync_data())
            .map_err(|e| StoreError::Storage(format!("cannot record the acknowledged head: {e}")))
    }
}

/// Checks the recovered log against the record.
pub(super) fn check(
    record: &AckedRecord,
    head: u64,
    digest_at_acknowledged: Option<LogDigest>,
) -> Result<u64, Damage> {
    match record {
        AckedRecord::Absent if head == 0 => Ok(0),
        AckedRecord::Absent => Err(Damage::AckRecordMissing { head }),
        AckedRecord::Damaged(reason) => Err(Damage::AckRecordDamaged(reason.clone())),
        AckedRecord::Present(acked) if acked.head > head => Err(Damage::Lost {
            head,
            acknowledged: acked.head,
        }),
        AckedRecord::Present(acked) => match (acked.digest, digest_at_acknowledged) {
            (None, _) => Ok(acked.head),
            (Some(expected), Some(found)) if expected == found => Ok(acked.head),
            (Some(_), _) => Err(Damage::Diverged {
                acknowledged: acked.head,
            }),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_round_trips() {
        let digest = LogDigest([7; 32]);
        assert_eq!(
            decode(&encode(42, &digest)),
            AckedRecord::Present(AckedHead {
                head: 42,
                digest: Some(digest)
            })
        );
    }

    #[test]
    fn every_flipped_bit_and_every_cut_is_damage() {
        let bytes = encode(628, &LogDigest([3; 32]));
        for index in 0..bytes.len() {
            for bit in 0..8 {
                let mut damaged = bytes;
                damaged[index] ^= 1 << bit;
                assert!(
                    matches!(decode(&damaged), AckedRecord::Damaged(_)),
                    "a flip of bit {bit} of byte {index} went unnoticed"
                );
            }
        }
        for length in 0..bytes.len() {
            assert!(
                matches!(decode(&bytes[..length]), AckedRecord::Damaged(_)),
                "a cut to {length} bytes went unnoticed"
            );
        }
    }

    #[test]
    fn the_record_of_earlier_builds_is_a_head_without_digest() {
        assert_eq!(
            decode(&99u64.to_be_bytes()),
            AckedRecord::Present(AckedHead {
                head: 99,
                digest: None
            })
        );
    }

    #[test]
    fn the_check_refuses_a_loss_a_divergence_and_a_missing_record() {
        let digest = LogDigest([1; 32]);
        let at = Some(digest);
        let present = |head| {
            AckedRecord::Present(AckedHead {
                head,
                digest: Some(digest),
            })
        };
        assert_eq!(check(&present(10), 12, at), Ok(10));
        assert_eq!(
            check(&present(10), 4, at),
            Err(Damage::Lost {
                head: 4,
                acknowledged: 10
            })
        );
        assert_eq!(
            check(&present(10), 12, Some(LogDigest([2; 32]))),
            Err(Damage::Diverged { acknowledged: 10 })
        );
        assert_eq!(
            check(&present(10), 12, None),
            Err(Damage::Diverged { acknowledged: 10 })
        );
        assert_eq!(check(&AckedRecord::Absent, 0, at), Ok(0));
        assert_eq!(
            check(&AckedRecord::Absent, 3, at),
            Err(Damage::AckRecordMissing { head: 3 })
        );
    }
}
