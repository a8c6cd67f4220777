//! The full-history transfer document: every envelope of an infrastructure's stream
//! and of its VMs' streams, as JSON, so another instance can import the same
//! history event for event.
//!
//! ```json
//! {"header": {"format": "infralog-history", "version": 1,
//!             "source_instance": "<uuid>", "infrastructure": "<uuid>",
//!             "stream": "infrastructure-<uuid>", "event_count": 9,
//!             "checksum": "sha256:<hex>"},
//!  "events": [{"stream": "...", "version": 1, "event_id": "<uuid>",
//!              "event_type": "Created", "schema_version": 1,
//!              "recorded_at": "2026-12-06T11:32:51.123456Z",
//!              "metadata": {"request_id": ..., "identity": ..., "source_instance": ...},
//!              "payload": "<base64>", "payload_checksum": "crc32:<8 hex>"}]}
//! ```
//!
//! Events come in the source's global order; source positions are left out (the
//! target gives new ones). The header checksum is a SHA-256 over a canonical binary
//! form of every event (see [`events_checksum`]), so the JSON may be re-indented
//! without breaking it. Payloads are base64 (standard alphabet, padded) of the
//! postcard bytes, carried byte for byte. This module is pure: building, reading
//! and verifying documents; the HTTP shell is `api::transfer`.

use base64::Engine as _;
use chrono::{DateTime, Utc};
use infralog_events::codec::DomainEvent;
use infralog_events::domain::infrastructure::{fold, InfrastructureEvent};
use infralog_events::domain::vm::VmEvent;
use infralog_events::domain::{InfId, OwnerRecord, StreamOwner};
use infralog_events::envelope::payload_checksum;
use infralog_events::{Envelope, ImportRequest, ImportedEvent, Metadata, StreamId};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// The `format` every history document names.
pub const FORMAT: &str = "infralog-history";
/// The version of the document format this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// A history document as it travels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryDocument {
    /// What the document holds and how to check it.
    pub header: Header,
    /// Every event of the infrastructure's stream and of its VMs' streams, in the
    /// source's log order.
    pub events: Vec<DocumentEvent>,
}

/// The document's header: its format, where it comes from and what it must hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    /// Always [`FORMAT`]; anything else is not a history document.
    pub format: String,
    /// The version of the document format; this build reads [`FORMAT_VERSION`] only.
    pub version: u32,
    /// The instance that exported the document (events keep the instance that
    /// first recorded them in their own metadata).
    pub source_instance: Uuid,
    /// The id of the infrastructure the history is of (a UUID, as text).
    pub infrastructure: String,
    /// The infrastructure's own stream; its VMs' streams are `vm-<id>-<n>`.
    pub stream: String,
    /// How many events `events` holds.
    pub event_count: u64,
    /// `sha256:<hex>` over the events (see [`events_checksum`]).
    pub checksum: String,
}

/// One event of a document: an envelope of the log without its source position.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DocumentEvent {
    /// The stream the event belongs to: the infrastructure's or one of its VMs'.
    pub stream: String,
    /// The event's version in its stream, from 1, gapless.
    pub version: u64,
    /// The event's own id, kept across transfers.
    pub event_id: Uuid,
    /// The name of the event's type in its family (`Created`, `Launched`, ...).
    pub event_type: String,
    /// The version of the payload's schema for that type.
    pub schema_version: u16,
    /// When the event was first recorded; an import keeps this time.
    pub recorded_at: DateTime<Utc>,
    /// The request and caller that caused the event, and where it was first recorded.
    pub metadata: DocumentMetadata,
    /// base64 of the postcard payload.
    pub payload: String,
    /// `crc32:<8 hex digits>` of the payload bytes (the store's own checksum).
    pub payload_checksum: String,
}

/// Who and what caused an event, as carried in a document.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DocumentMetadata {
    /// The id of the request that caused the event; `None` for infralog's own
    /// background work (a contextualization run ending, a resume at start-up).
    pub request_id: Option<String>,
    /// The name of the user whose request caused the event; `None` when no request
    /// did.
    pub identity: Option<String>,
    /// The instance that first recorded the event (kept across transfers); `None`
    /// only when the source did not name it.
    pub source_instance: Option<Uuid>,
}

/// Why a document cannot be imported. Each names what failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HistoryError {
    /// The bytes are not JSON of a history document; the inner text is the parser's
    /// complaint.
    #[error("the document is not a history document (truncated or not JSON?): {0}")]
    Unreadable(String),
    /// The header names another format than [`FORMAT`], or a version other than
    /// [`FORMAT_VERSION`].
    #[error("the document's format is {format:?} version {version}; this build reads {FORMAT:?} version {FORMAT_VERSION}")]
    UnsupportedFormat {
        /// The `format` the header names.
        format: String,
        /// The `version` the header names.
        version: u32,
    },
    /// The header's `infrastructure` is not a UUID; the inner text is that value.
    #[error("the header names infrastructure {0:?}, which is not an infrastructure id")]
    InvalidInfrastructure(String),
    /// The header's `stream` is not the stream of the infrastructure it names.
    #[error("the header names stream {found:?}, the infrastructure's stream is {expected:?}")]
    WrongStream {
        /// The name of the stream of the infrastructure the header names.
        expected: String,
        /// The stream name the header gives.
        found: String,
    },
    /// The header's `event_count` differs from the number of events.
    #[error("the header announces {announced} events, the document holds {found}")]
    CountMismatch {
        /// The `event_count` of the header.
        announced: u64,
        /// How many events the document holds.
        found: u64,
    },
    /// The header's checksum differs from the one computed over the events.
    #[error("the document's checksum does not match its events (announced {announced}, computed {computed})")]
    ChecksumMismatch {
        /// The `checksum` of the header.
        announced: String,
        /// The checksum of the events as received, `sha256:<hex>`.
        computed: String,
    },
    /// One event is wrong: bad stream, version, payload or checksum, a gap in its
    /// stream, or a payload that does not decode.
    #[error("event {index} ({event_id}): {problem}")]
    BadEvent {
        /// The event's place in `events`, from 0.
        index: usize,
        /// The event's own id.
        event_id: Uuid,
        /// What is wrong with it.
        problem: String,
    },
    /// No event belongs to the infrastructure's own stream: the document holds VMs only
    /// or nothing.
    #[error("the document holds no event of the infrastructure's own stream")]
    NoInfrastructureStream,
    /// The history ends with the infrastructure destroyed (or exported with delete), so
    /// there is nothing to import.
    #[error("the infrastructure no longer exists at the end of its history (destroyed or exported with delete)")]
    NotExisting,
}

/// A document that passed every check, ready to import.
#[derive(Debug, Clone)]
pub struct VerifiedHistory {
    /// The infrastructure the history is of.
    pub infrastructure: InfId,
    /// The instance that exported the document.
    pub source_instance: Uuid,
    /// The owners at the end of the history: who may import it.
    pub owners: Vec<OwnerRecord>,
    /// The events, checked and decoded from the document, ready for the store.
    pub request: ImportRequest,
}

/// Builds the document of `infrastructure` from its envelopes and its VMs'
/// (any order: they are sorted by position).
pub fn build(
    source_instance: Uuid,
    infrastructure: InfId,
    envelopes: &mut [Envelope],
) -> HistoryDocument {
    envelopes.sort_by_key(|e| e.position);
    let events: Vec<DocumentEvent> = envelopes.iter().map(document_event).collect();
    HistoryDocument {
        header: Header {
            format: FORMAT.into(),
            version: FORMAT_VERSION,
            source_instance,
            infrastructure: infrastructure.to_string(),
            stream: infrastructure.stream_name(),
            event_count: events.len() as u64,
            checksum: events_checksum(envelopes.iter().map(ImportedEvent::from_envelope)),
        },
        events,
    }
}

fn document_event(envelope: &Envelope) -> DocumentEvent {
    DocumentEvent {
        stream: envelope.stream.as_str().to_string(),
        version: envelope.version,
        event_id: envelope.event_id,
        event_type: envelope.event_type.clone(),
        schema_version: envelope.schema_version,
        recorded_at: envelope.recorded_at,
        metadata: DocumentMetadata {
            request_id: envelope.metadata.request_id.clone(),
            identity: envelope.metadata.identity.clone(),
            source_instance: envelope.metadata.source_instance,
        },
        payload: base64::engine::general_purpose::STANDARD.encode(&envelope.payload),
        payload_checksum: crc_text(envelope.checksum),
    }
}

fn crc_text(checksum: u32) -> String {
    format!("crc32:{checksum:08x}")
}

/// The document as one line of JSON (so a file may hold one per line).
pub fn to_json_line(document: &HistoryDocument) -> Vec<u8> {
    // Serializing plain data with string keys into a Vec cannot fail.
    serde_json::to_vec(document).unwrap_or_default()
}

/// Reads and verifies a document: its format, its header against its events, the
/// checksum, every payload against its checksum, that every event belongs to the
/// infrastructure and decodes, and that each stream is whole and gapless. Nothing
/// is written by this; the store checks versions and conflicts again when it
/// imports.
pub fn verify(bytes: &[u8]) -> Result<VerifiedHistory, HistoryError> {
    let document: HistoryDocument =
        serde_json::from_slice(bytes).map_err(|e| HistoryError::Unreadable(e.to_string()))?;
    let header = &document.header;
    if header.format != FORMAT || header.version != FORMAT_VERSION {
        return Err(HistoryError::UnsupportedFormat {
            format: header.format.clone(),
            version: header.version,
        });
    }
    let infrastructure: InfId = header
        .infrastructure
        .parse()
        .map_err(|_| HistoryError::InvalidInfrastructure(header.infrastructure.clone()))?;
    if header.stream != infrastructure.stream_name() {
        return Err(HistoryError::WrongStream {
            expected: infrastructure.stream_name(),
            found: header.stream.clone(),
        });
    }
    if header.event_count != document.events.len() as u64 {
        return Err(HistoryError::CountMismatch {
            announced: header.event_count,
            found: document.events.len() as u64,
        });
    }
    let events = document
        .events
        .iter()
        .enumerate()
        .map(|(index, event)| imported_event(index, event, infrastructure))
        .collect::<Result<Vec<_>, _>>()?;
    let computed = events_checksum(events.iter().cloned());
    if computed != header.checksum {
        return Err(HistoryError::ChecksumMismatch {
            announced: header.checksum.clone(),
            computed,
        });
    }
    let infrastructure_events = decode_all(&events)?;
    if infrastructure_events.is_empty() {
        return Err(HistoryError::NoInfrastructureStream);
    }
    let state = fold(infrastructure_events.iter());
    let owners = state
        .existing()
        .map(|live| live.owners.clone())
        .ok_or(HistoryError::NotExisting)?;
    Ok(VerifiedHistory {
        infrastructure,
        source_instance: header.source_instance,
        owners,
        request: ImportRequest { events },
    })
}

/// One document event as the store imports it, its payload checked.
fn imported_event(
    index: usize,
    event: &DocumentEvent,
    infrastructure: InfId,
) -> Result<ImportedEvent, HistoryError> {
    let bad = |problem: String| HistoryError::BadEvent {
        index,
        event_id: event.event_id,
        problem,
    };
    let stream = StreamId::new(event.stream.clone()).map_err(|e| bad(e.to_string()))?;
    let owner = StreamOwner::parse(stream.as_str())
        .filter(|owner| owner.infrastructure() == infrastructure)
        .ok_or_else(|| bad(format!("stream {stream} is not one of {infrastructure}'s")))?;
    if let StreamOwner::Infrastructure(_) = owner {
        // Parsing accepts only the canonical spelling, so the names are equal.
        debug_assert_eq!(stream.as_str(), infrastructure.stream_name());
    }
    if event.version == 0 {
        return Err(bad("versions start at 1".into()));
    }
    let payload = base64::engine::general_purpose::STANDARD
        .decode(&event.payload)
        .map_err(|e| bad(format!("the payload is not base64: {e}")))?;
    let checksum = parse_crc(&event.payload_checksum)
        .ok_or_else(|| bad(format!("{:?} is not crc32:<8 hex>", event.payload_checksum)))?;
    let computed = payload_checksum(&payload);
    if computed != checksum {
        return Err(bad(format!(
            "the payload does not match its checksum (announced {}, computed {})",
            crc_text(checksum),
            crc_text(computed)
        )));
    }
    Ok(ImportedEvent {
        stream,
        version: event.version,
        event_id: event.event_id,
        event_type: event.event_type.clone(),
        schema_version: event.schema_version,
        recorded_at: event.recorded_at,
        metadata: Metadata {
            request_id: event.metadata.request_id.clone(),
            identity: event.metadata.identity.clone(),
            source_instance: event.metadata.source_instance,
        },
        payload,
        checksum,
    })
}

fn parse_crc(text: &str) -> Option<u32> {
    let hex = text.strip_prefix("crc32:")?;
    (hex.len() == 8 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| u32::from_str_radix(hex, 16).ok())
        .flatten()
}

/// Decodes every event as its stream's family (the read model stops on an event
/// it cannot decode, so none may get in), checks that each stream is whole and
/// gapless, and returns the infrastructure stream's events.
fn decode_all(events: &[ImportedEvent]) -> Result<Vec<InfrastructureEvent>, HistoryError> {
    let mut versions: std::collections::HashMap<&str, u64> = std::collections::HashMap::new();
    let mut infrastructure_events = Vec::new();
    for (index, event) in events.iter().enumerate() {
        let bad = |problem: String| HistoryError::BadEvent {
            index,
            event_id: event.event_id,
            problem,
        };
        let last = versions.entry(event.stream.as_str()).or_insert(0);
        if event.version != *last + 1 {
            return Err(bad(format!(
                "stream {} goes from version {} to {}: streams must be whole and in order",
                event.stream, last, event.version
            )));
        }
        *last = event.version;
        match StreamOwner::parse(event.stream.as_str()) {
            Some(StreamOwner::Infrastructure(_)) => infrastructure_events.push(
                InfrastructureEvent::decode(
                    &event.event_type,
                    event.schema_version,
                    &event.payload,
                )
                .map_err(|e| bad(e.to_string()))?,
            ),
            Some(StreamOwner::Vm(..)) => {
                VmEvent::decode(&event.event_type, event.schema_version, &event.payload)
                    .map_err(|e| bad(e.to_string()))?;
            }
            None => return Err(bad(format!("stream {} is not known", event.stream))),
        }
    }
    Ok(infrastructure_events)
}

/// `sha256:<hex>` over the canonical form of the events, in order. Each event is
/// its fields in order — stream, version, event id, event type, schema version,
/// recorded time (microseconds since the epoch), request id, identity, source
/// instance, payload, payload CRC-32 — with texts and bytes as a big-endian u32
/// length and the bytes, numbers big-endian, and an absent field as one 0 byte
/// (a present one as 1 then the value).
pub fn events_checksum(events: impl IntoIterator<Item = ImportedEvent>) -> String {
    let mut hasher = Sha256::new();
    let bytes = |hasher: &mut Sha256, data: &[u8]| {
        hasher.update((data.len() as u32).to_be_bytes());
        hasher.update(data);
    };
    let optional = |hasher: &mut Sha256, data: Option<&[u8]>| match data {
        None => hasher.update([0u8]),
        Some(data) => {
            hasher.update([1u8]);
            bytes(hasher, data);
        }
    };
    for event in events {
        bytes(&mut hasher, event.stream.as_str().as_bytes());
        hasher.update(event.version.to_be_bytes());
        hasher.update(event.event_id.as_bytes());
        bytes(&mut hasher, event.event_type.as_bytes());
        hasher.update(event.schema_version.to_be_bytes());
        hasher.update(event.recorded_at.timestamp_micros().to_be_bytes());
        optional(
            &mut hasher,
            event.metadata.request_id.as_deref().map(str::as_bytes),
        );
        optional(
            &mut hasher,
            event.metadata.identity.as_deref().map(str::as_bytes),
        );
        optional(
            &mut hasher,
            event
                .metadata
                .source_instance
                .as_ref()
                .map(|u| &u.as_bytes()[..]),
        );
        bytes(&mut hasher, &event.payload);
        hasher.update(event.checksum.to_be_bytes());
    }
    let digest = hasher.finalize();
    let mut text = String::with_capacity(7 + 64);
    text.push_str("sha256:");
    for byte in digest {
        text.push_str(&format!("{byte:02x}"));
    }
    text
}

#[cfg(test)]
mod tests;
