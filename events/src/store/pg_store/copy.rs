//! Copying another log into PostgreSQL at the same positions (`infralog
//! migrate`): the copy folds exactly as the source does.

use std::sync::Arc;

use super::rows::{envelope_of, insert_envelopes, COLUMNS};
use super::writer::{APPEND_LOCK, NOTIFY_CHANNEL};
use super::{block_on, pg_error, pool_error, PgStore};
use crate::envelope::{payload_checksum, Envelope, RecordError};
use crate::store::StoreError;

/// What one call of [`PgStore::copy_envelopes`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Copied {
    /// Envelopes written now.
    pub written: u64,
    /// Envelopes already in the database, identical (a migration run again).
    pub present: u64,
}

impl PgStore {
    /// Writes `envelopes` (consecutive positions of another log, in order) at
    /// their own positions, in one transaction. Those already in the database
    /// must be identical (same stream, version, id, type, schema, time, metadata,
    /// payload and checksum): a migration can be run again, and resumes where it
    /// stopped. The rest must follow the database's head without a gap. Anything
    /// else is refused and nothing is written.
    pub fn copy_envelopes(&self, envelopes: Vec<Envelope>) -> Result<Copied, StoreError> {
        if self.shared.read_only {
            return Err(StoreError::ReadOnly);
        }
        let shared = Arc::clone(&self.shared);
        let copied = block_on(&self.handle, async move {
            let mut client = shared.pool.get().await.map_err(pool_error)?;
            let transaction = client.transaction().await.map_err(pg_error)?;
            transaction
                .execute("SELECT pg_advisory_xact_lock($1)", &[&APPEND_LOCK])
                .await
                .map_err(pg_error)?;
            let head: i64 = transaction
                .query_one(
                    "SELECT coalesce(max(position), 0) FROM infralog_events",
                    &[],
                )
                .await
                .map_err(pg_error)?
                .get(0);
            let head = head as u64;
            let (present, new): (Vec<Envelope>, Vec<Envelope>) =
                envelopes.into_iter().partition(|e| e.position <= head);
            if !present.is_empty() {
                let positions: Vec<i64> = present.iter().map(|e| e.position as i64).collect();
                let query = format!(
                    "SELECT {COLUMNS} FROM infralog_events WHERE position = ANY($1) ORDER BY position"
                );
                let rows = transaction
                    .query(&query, &[&positions])
                    .await
                    .map_err(pg_error)?;
                let stored = rows
                    .iter()
                    .map(envelope_of)
                    .collect::<Result<Vec<_>, _>>()?;
                for (source, stored) in present.iter().zip(&stored) {
                    if source != stored {
                        return Err(StoreError::ImportConflict {
                            stream: source.stream.clone(),
                            reason: format!(
                                "position {} holds another event in the database",
                                source.position
                            ),
                        });
                    }
                }
                if stored.len() != present.len() {
                    return Err(StoreError::Inconsistent(
                        "the database's log has a gap below its head".into(),
                    ));
                }
            }
            for (expected, envelope) in (head + 1..).zip(&new) {
                if envelope.position != expected {
                    return Err(StoreError::InvalidImport(format!(
                        "the copy reaches position {} where {expected} was due",
                        envelope.position
                    )));
                }
                let computed = payload_checksum(&envelope.payload);
                if computed != envelope.checksum {
                    return Err(StoreError::Corrupt {
                        position: envelope.position,
                        problem: RecordError::PayloadChecksum {
                            stored: envelope.checksum,
                            computed,
                        },
                    });
                }
            }
            if let Some(last) = new.last().map(|e| e.position) {
                insert_envelopes(&transaction, &new).await?;
                transaction
                    .execute(
                        "SELECT pg_notify($1, $2)",
                        &[&NOTIFY_CHANNEL, &last.to_string()],
                    )
                    .await
                    .map_err(pg_error)?;
            }
            transaction.commit().await.map_err(pg_error)?;
            Ok(Copied {
                written: new.len() as u64,
                present: present.len() as u64,
            })
        })?;
        Ok(copied)
    }
}
