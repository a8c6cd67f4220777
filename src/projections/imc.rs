//! The read model's IMC section: every placement as the log shows it, which core
//! infrastructure belongs to which placement (for the facade follower), and each
//! site's recent attempts (for ranking).

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Duration, Utc};
use infralog_events::codec::DomainEvent;
use infralog_events::domain::ids::{parse_placement_stream, IMC_LEDGER_STREAM};
use infralog_events::domain::placement::{evolve, PlacementEvent, PlacementState};
use infralog_events::domain::InfId;
use infralog_events::Envelope;
use uuid::Uuid;

/// How far back a site's success ratio looks.
const SUCCESS_WINDOW_HOURS: i64 = 2;

/// One placement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlacementView {
    /// Its id.
    pub id: Uuid,
    /// Its folded state.
    pub state: PlacementState,
    /// When it was requested.
    pub created_at: DateTime<Utc>,
    /// When its last event was recorded.
    pub updated_at: DateTime<Utc>,
    /// The position of `PlacementRequested` (the listing's order).
    pub created_position: u64,
}

/// An attempt's end on a site, for success ratios.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct AttemptEnd {
    at: DateTime<Utc>,
    succeeded: bool,
}

/// The IMC section of the read model.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImcSection {
    /// Every placement, purged ones included, by id.
    pub placements: BTreeMap<Uuid, PlacementView>,
    /// The placement that owns each core infrastructure an attempt created.
    pub owners: HashMap<InfId, Uuid>,
    /// The last position of the ledger's stream (0: none).
    pub ledger_position: u64,
    attempts_by_site: HashMap<String, Vec<AttemptEnd>>,
}

/// Why an IMC event could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ImcProjectionError(pub String);

impl ImcSection {
    /// Applies an envelope of an IMC stream; others are skipped.
    pub fn apply(&mut self, envelope: &Envelope) -> Result<(), ImcProjectionError> {
        if envelope.stream.as_str() == IMC_LEDGER_STREAM {
            self.ledger_position = envelope.position;
            return Ok(());
        }
        let Some(id) = parse_placement_stream(envelope.stream.as_str()) else {
            return Ok(());
        };
        let event = PlacementEvent::from_envelope(envelope)
            .map_err(|e| ImcProjectionError(e.to_string()))?;
        let view = self.placements.entry(id).or_insert_with(|| PlacementView {
            id,
            state: PlacementState::default(),
            created_at: envelope.recorded_at,
            updated_at: envelope.recorded_at,
            created_position: envelope.position,
        });
        let live_site = view.state.live_attempt().map(|a| a.site.clone());
        view.state = evolve(std::mem::take(&mut view.state), &event);
        view.updated_at = envelope.recorded_at;
        match &event {
            PlacementEvent::AttemptStarted { inf_id, .. } => {
                self.owners.insert(*inf_id, id);
            }
            PlacementEvent::AttemptSucceeded | PlacementEvent::AttemptFailed { .. } => {
                if let Some(site) = live_site {
                    self.attempts_by_site
                        .entry(site)
                        .or_default()
                        .push(AttemptEnd {
                            at: envelope.recorded_at,
                            succeeded: matches!(event, PlacementEvent::AttemptSucceeded),
                        });
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// The ratio of successful attempts on `site` that ended in the last two hours
    /// before `now` (0 without any).
    pub fn success_ratio(&self, site: &str, now: DateTime<Utc>) -> f64 {
        let since = now - Duration::hours(SUCCESS_WINDOW_HOURS);
        let Some(ends) = self.attempts_by_site.get(site) else {
            return 0.0;
        };
        let recent: Vec<&AttemptEnd> = ends.iter().filter(|end| end.at >= since).collect();
        if recent.is_empty() {
            return 0.0;
        }
        let successes = recent.iter().filter(|end| end.succeeded).count();
        successes as f64 / recent.len() as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use infralog_events::domain::ids::placement_stream_name;
    use infralog_events::domain::placement::PlacementStatus;
    use infralog_events::envelope::payload_checksum;
    use infralog_events::{Metadata, StreamId};

    fn at(minute: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
            .single()
            .expect("a time")
            + Duration::minutes(minute)
    }

    /// `events` as the envelopes of placement `id`'s stream, one a minute.
    fn apply_all(
        section: &mut ImcSection,
        id: Uuid,
        first_position: u64,
        events: &[PlacementEvent],
    ) {
        for (index, event) in events.iter().enumerate() {
            let new = event.to_new_event(Metadata::default());
            let envelope = Envelope {
                position: first_position + index as u64,
                stream: StreamId::new(placement_stream_name(&id)).expect("a stream name"),
                version: index as u64 + 1,
                event_id: new.event_id,
                event_type: new.event_type,
                schema_version: new.schema_version,
                recorded_at: at(index as i64),
                metadata: new.metadata,
                checksum: payload_checksum(&new.payload),
                payload: new.payload,
            };
            section.apply(&envelope).expect("applies");
        }
    }

    #[test]
    fn placements_their_infrastructures_and_site_success_are_projected() {
        let (id, inf, other) = (Uuid::new_v4(), InfId::random(), InfId::random());
        let start = |inf_id| PlacementEvent::AttemptStarted {
            site: "site-a".into(),
            flavour: "m1.small".into(),
            image: "mock0://u".into(),
            inf_id,
        };
        let mut section = ImcSection::default();
        apply_all(
            &mut section,
            id,
            1,
            &[
                PlacementEvent::PlacementRequested(Box::default()),
                PlacementEvent::CandidatesEvaluated {
                    matching: vec!["site-a".into()],
                    ignore_usage: false,
                },
                start(other),
                PlacementEvent::AttemptFailed {
                    reason: "LaunchFailed".into(),
                },
                PlacementEvent::AttemptDestroyed,
                start(inf),
                PlacementEvent::AttemptSucceeded,
                PlacementEvent::PlacementConfigured {
                    site: "site-a".into(),
                    inf_id: inf,
                },
            ],
        );
        let view = &section.placements[&id];
        assert_eq!(view.state.status, Some(PlacementStatus::Configured));
        assert_eq!(view.created_position, 1);
        assert_eq!((view.created_at, view.updated_at), (at(0), at(7)));
        assert_eq!(section.owners.get(&inf), Some(&id));
        assert_eq!(section.owners.get(&other), Some(&id));
        assert_eq!(section.success_ratio("site-a", at(10)), 0.5);
        assert_eq!(section.success_ratio("site-a", at(60 * 3)), 0.0);
        assert_eq!(section.success_ratio("site-b", at(10)), 0.0);
    }
}
