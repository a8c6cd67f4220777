//! How domain events become payloads, and back.
//!
//! Payloads are postcard. Each envelope records the schema version its payload was
//! written with; decoding a payload written by an older schema goes through that
//! schema's type and is upcast to the current one, so old logs stay readable.
//! postcard is compact and maintained; bincode is not used (its final release is a
//! tombstone and its older lines are unmaintained).

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::envelope::{Envelope, Metadata, NewEvent};

/// Why a payload could not be turned into an event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// The envelope's type names no event of the family.
    #[error("event type {event_type:?} is not one of {family}")]
    UnknownType {
        /// The type name the envelope carries.
        event_type: String,
        /// The family that was asked to decode it.
        family: &'static str,
    },
    /// The payload was written with a schema this build does not know (a newer one,
    /// or an older one without an upcast).
    #[error("{family} has no schema version {version}")]
    UnknownVersion {
        /// The schema version the envelope carries.
        version: u16,
        /// The family that was asked to decode it.
        family: &'static str,
    },
    /// The payload's bytes are not a postcard value of the schema's type.
    #[error("payload of {event_type} (schema {version}) does not decode: {reason}")]
    Malformed {
        /// The type name the envelope carries.
        event_type: String,
        /// The schema version the envelope carries.
        version: u16,
        /// postcard's error message.
        reason: String,
    },
    /// The payload decodes, but as an event of another type than the envelope names.
    #[error("payload of {event_type} decodes as {decoded}")]
    TypeMismatch {
        /// The type name the envelope carries.
        event_type: String,
        /// The type name of the event the payload decoded as.
        decoded: &'static str,
    },
}

/// A family of domain events stored in one kind of stream.
pub trait DomainEvent: Serialize + DeserializeOwned + Sized {
    /// The family's name, for messages.
    const FAMILY: &'static str;
    /// The schema version new events are written with.
    const SCHEMA_VERSION: u16;

    /// The event's stable type name.
    fn event_type(&self) -> &'static str;

    /// Decodes a payload written with an older schema and upcasts it. The default
    /// knows no older schema.
    fn upcast(event_type: &str, version: u16, payload: &[u8]) -> Result<Self, CodecError> {
        let _ = (event_type, payload);
        Err(CodecError::UnknownVersion {
            version,
            family: Self::FAMILY,
        })
    }

    /// The new event to append for this domain event.
    fn to_new_event(&self, metadata: Metadata) -> NewEvent {
        // Serializing plain data into a Vec cannot fail.
        let payload = postcard::to_stdvec(self).unwrap_or_default();
        NewEvent::new(self.event_type(), Self::SCHEMA_VERSION, payload).with_metadata(metadata)
    }

    /// Decodes an envelope's payload, upcasting old schemas, and checks that the
    /// envelope's type names the decoded event.
    fn from_envelope(envelope: &Envelope) -> Result<Self, CodecError> {
        Self::decode(
            &envelope.event_type,
            envelope.schema_version,
            &envelope.payload,
        )
    }

    /// Decodes a payload stored with type `event_type` and schema `version`,
    /// upcasting old schemas, and checks that the type names the decoded event.
    fn decode(event_type: &str, version: u16, payload: &[u8]) -> Result<Self, CodecError> {
        let event = if version == Self::SCHEMA_VERSION {
            postcard::from_bytes::<Self>(payload).map_err(|e| CodecError::Malformed {
                event_type: event_type.to_string(),
                version,
                reason: e.to_string(),
            })?
        } else {
            Self::upcast(event_type, version, payload)?
        };
        if event.event_type() != event_type {
            return Err(CodecError::TypeMismatch {
                event_type: event_type.to_string(),
                decoded: event.event_type(),
            });
        }
        Ok(event)
    }
}

/// Decodes a payload of an older schema's type (for `upcast` implementations).
pub fn decode_as<T: DeserializeOwned>(
    event_type: &str,
    version: u16,
    payload: &[u8],
) -> Result<T, CodecError> {
    postcard::from_bytes(payload).map_err(|e| CodecError::Malformed {
        event_type: event_type.to_string(),
        version,
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    /// Version 1 of a test family: a temperature in whole degrees.
    #[derive(Debug, Serialize, Deserialize)]
    enum ThermometerV1 {
        Read { degrees: i32 },
    }

    /// Version 2: tenths of a degree and where it was read.
    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    enum Thermometer {
        Read { tenths: i64, place: String },
    }

    impl DomainEvent for Thermometer {
        const FAMILY: &'static str = "thermometer events";
        const SCHEMA_VERSION: u16 = 2;

        fn event_type(&self) -> &'static str {
            "Read"
        }

        fn upcast(event_type: &str, version: u16, payload: &[u8]) -> Result<Self, CodecError> {
            match version {
                1 => match decode_as::<ThermometerV1>(event_type, version, payload)? {
                    ThermometerV1::Read { degrees } => Ok(Thermometer::Read {
                        tenths: i64::from(degrees) * 10,
                        place: "unknown".into(),
                    }),
                },
                _ => Err(CodecError::UnknownVersion {
                    version,
                    family: Self::FAMILY,
                }),
            }
        }
    }

    #[test]
    fn current_events_round_trip() {
        let event = Thermometer::Read {
            tenths: 215,
            place: "lab".into(),
        };
        let new = event.to_new_event(Metadata::default());
        assert_eq!(new.schema_version, 2);
        assert_eq!(Thermometer::decode("Read", 2, &new.payload), Ok(event));
    }

    #[test]
    fn old_payloads_are_upcast_on_read() {
        let old = postcard::to_stdvec(&ThermometerV1::Read { degrees: 21 }).expect("encodes");
        assert_eq!(
            Thermometer::decode("Read", 1, &old),
            Ok(Thermometer::Read {
                tenths: 210,
                place: "unknown".into()
            })
        );
    }

    #[test]
    fn unknown_versions_and_mismatched_types_are_errors() {
        let new = Thermometer::Read {
            tenths: 1,
            place: String::new(),
        }
        .to_new_event(Metadata::default());
        assert!(matches!(
            Thermometer::decode("Read", 9, &new.payload),
            Err(CodecError::UnknownVersion { version: 9, .. })
        ));
        assert!(matches!(
            Thermometer::decode("Other", 2, &new.payload),
            Err(CodecError::TypeMismatch { .. })
        ));
        assert!(matches!(
            Thermometer::decode("Read", 2, &[0xff, 0xff]),
            Err(CodecError::Malformed { .. })
        ));
    }
}
