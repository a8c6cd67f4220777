//! Checks of appends and imports on their own, before any backend looks at what
//! it holds: the same limits and rules for every store.

use std::collections::{HashMap, HashSet};

use super::{AppendRequest, ImportRequest, ImportedEvent, StoreError};
use crate::envelope::{payload_checksum, NewEvent, StreamId};

/// The most events one append may carry.
pub const MAX_EVENTS_PER_APPEND: usize = 10_000;
/// The most events one import may carry (all its streams together).
pub const MAX_EVENTS_PER_IMPORT: usize = 200_000;
/// The largest payload of one event.
pub const MAX_PAYLOAD_BYTES: usize = 8 * 1024 * 1024;

/// Checks an append's sizes: event count and payload sizes.
pub(crate) fn check_sizes(request: &AppendRequest) -> Result<(), StoreError> {
    if request.events.len() > MAX_EVENTS_PER_APPEND {
        return Err(StoreError::TooLarge(format!(
            "{} events in one append, the limit is {MAX_EVENTS_PER_APPEND}",
            request.events.len()
        )));
    }
    if let Some(event) = request
        .events
        .iter()
        .find(|e: &&NewEvent| e.payload.len() > MAX_PAYLOAD_BYTES)
    {
        return Err(StoreError::TooLarge(format!(
            "event {} has a payload of {} bytes, the limit is {MAX_PAYLOAD_BYTES}",
            event.event_id,
            event.payload.len()
        )));
    }
    Ok(())
}

/// Checks an import on its own: sizes, payload checksums, unique event ids, and
/// whole gapless streams. Returns each stream with its event count, in order of
/// first appearance.
pub(crate) fn check_import(request: &ImportRequest) -> Result<Vec<(StreamId, u64)>, StoreError> {
    let invalid = |reason: String| Err(StoreError::InvalidImport(reason));
    if request.events.is_empty() {
        return invalid("it holds no events".into());
    }
    if request.events.len() > MAX_EVENTS_PER_IMPORT {
        return Err(StoreError::TooLarge(format!(
            "{} events in one import, the limit is {MAX_EVENTS_PER_IMPORT}",
            request.events.len()
        )));
    }
    let mut ids = HashSet::with_capacity(request.events.len());
    let mut versions: HashMap<&StreamId, u64> = HashMap::new();
    let mut order = Vec::new();
    for event in &request.events {
        check_event(event)?;
        if !ids.insert(event.event_id) {
            return invalid(format!("event {} appears twice", event.event_id));
        }
        let last = versions.entry(&event.stream).or_insert_with(|| {
            order.push(event.stream.clone());
            0
        });
        if event.version != *last + 1 {
            return invalid(format!(
                "stream {} goes from version {} to {}: streams must be whole, from version 1, in order",
                event.stream, last, event.version
            ));
        }
        *last = event.version;
    }
    Ok(order
        .into_iter()
        .map(|stream| {
            let count = versions[&stream];
            (stream, count)
        })
        .collect())
}

fn check_event(event: &ImportedEvent) -> Result<(), StoreError> {
    if event.payload.len() > MAX_PAYLOAD_BYTES {
        return Err(StoreError::TooLarge(format!(
            "event {} has a payload of {} bytes, the limit is {MAX_PAYLOAD_BYTES}",
            event.event_id,
            event.payload.len()
        )));
    }
    let computed = payload_checksum(&event.payload);
    if computed != event.checksum {
        return Err(StoreError::InvalidImport(format!(
            "the payload of event {} does not match its checksum (recorded {:08x}, computed {computed:08x})",
            event.event_id, event.checksum
        )));
    }
    Ok(())
}
