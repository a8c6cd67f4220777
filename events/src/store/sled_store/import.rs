//! Imports: whole streams recorded elsewhere, staged into the current group commit
//! so that they go into the log in the same single batch as everything else.
//!
//! An import is checked completely before anything is staged: sizes, checksums,
//! ids, versions, and what the log already holds for each of its streams. So a
//! refused import stages nothing, and an accepted one is written whole or (if the
//! batch or its flush fails) not at all.

use std::collections::HashMap;
use std::sync::Arc;

use super::keys::{numbered_stream_head, stream_index_key, stream_name_key, stream_number};
use super::writer::{Staging, Writer};
use crate::envelope::{Envelope, StreamId};
use crate::store::checks::check_import;
use crate::store::{ImportRequest, Imported, StoreError};

/// What the log holds of an import's streams.
enum Presence {
    /// None of them exists.
    Absent,
    /// All of them exist with exactly the imported events, at these positions.
    Identical(Vec<u64>),
}

impl Writer {
    /// Checks an import and stages it. Nothing is staged unless the whole import is
    /// accepted.
    pub(super) fn stage_import(
        &self,
        request: &ImportRequest,
        staging: &mut Staging,
        next_position: &mut u64,
    ) -> Result<Imported, StoreError> {
        let streams = check_import(request)?;
        match self.presence(request, &streams, staging)? {
            Presence::Identical(positions) => {
                return Ok(Imported {
                    positions,
                    already_present: true,
                })
            }
            Presence::Absent => {}
        }
        let mut positions = Vec::with_capacity(request.events.len());
        for event in &request.events {
            let number = match staging.numbers.get(&event.stream) {
                Some(number) => *number,
                None => {
                    let number = staging.next_stream;
                    staging.next_stream += 1;
                    staging
                        .batch
                        .insert(stream_name_key(&event.stream), &number.to_be_bytes());
                    staging.numbers.insert(event.stream.clone(), number);
                    number
                }
            };
            let position = *next_position;
            *next_position += 1;
            staging.batch.insert(
                stream_index_key(number, event.version),
                &position.to_be_bytes(),
            );
            staging.heads.insert(event.stream.clone(), event.version);
            staging.envelopes.push(Arc::new(Envelope {
                position,
                stream: event.stream.clone(),
                version: event.version,
                event_id: event.event_id,
                event_type: event.event_type.clone(),
                schema_version: event.schema_version,
                recorded_at: event.recorded_at,
                metadata: event.metadata.clone(),
                payload: event.payload.clone(),
                checksum: event.checksum,
            }));
            positions.push(position);
        }
        Ok(Imported {
            positions,
            already_present: false,
        })
    }

    /// Whether the import's streams are all absent or all present with exactly its
    /// events; anything else is a conflict naming the first stream that differs.
    fn presence(
        &self,
        request: &ImportRequest,
        streams: &[(StreamId, u64)],
        staging: &Staging,
    ) -> Result<Presence, StoreError> {
        let mut absent = Vec::new();
        let mut present = Vec::new();
        for (stream, count) in streams {
            let number = match staging.numbers.get(stream) {
                Some(number) => Some(*number),
                None => stream_number(&self.db, stream)?,
            };
            let current = match (staging.heads.get(stream), number) {
                (Some(version), _) => *version,
                (None, Some(number)) => numbered_stream_head(&self.db, number)?,
                (None, None) => 0,
            };
            match number {
                Some(number) if current > 0 => present.push((stream, *count, number, current)),
                _ => absent.push(stream),
            }
        }
        if present.is_empty() {
            return Ok(Presence::Absent);
        }
        let mut stored: HashMap<(&StreamId, u64), Envelope> = HashMap::new();
        for (stream, count, number, current) in &present {
            if current != count {
                return Err(StoreError::ImportConflict {
                    stream: (*stream).clone(),
                    reason: format!("the log has {current} events, the import {count}"),
                });
            }
            for envelope in self.stream_range(stream, *number, 1, *count, staging)? {
                stored.insert((stream, envelope.version), envelope);
            }
        }
        let mut positions = Vec::with_capacity(request.events.len());
        for event in &request.events {
            let Some(envelope) = stored.get(&(&event.stream, event.version)) else {
                continue;
            };
            if !event.is_stored_as(envelope) {
                return Err(StoreError::ImportConflict {
                    stream: event.stream.clone(),
                    reason: format!(
                        "version {} is event {} in the log, event {} in the import",
                        event.version, envelope.event_id, event.event_id
                    ),
                });
            }
            positions.push(envelope.position);
        }
        if let Some(stream) = absent.first() {
            return Err(StoreError::ImportConflict {
                stream: (*stream).clone(),
                reason: "the import's other streams are already in the log, this one is not".into(),
            });
        }
        Ok(Presence::Identical(positions))
    }
}
