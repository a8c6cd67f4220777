//! The read model's Batch section: every job as the log shows it, with the
//! times HTCondor reports, taken from the envelopes' recorded times.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use infralog_events::codec::DomainEvent;
use infralog_events::domain::batch::{evolve_job, JobEvent, JobState};
use infralog_events::domain::ids::{parse_job_stream, BATCH_QUEUE_STREAM};
use infralog_events::Envelope;
use uuid::Uuid;

/// One job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobView {
    /// Its id.
    pub id: Uuid,
    /// Its folded state.
    pub state: JobState,
    /// When it was submitted.
    pub submitted_at: DateTime<Utc>,
    /// When its first run began.
    pub first_start: Option<DateTime<Utc>>,
    /// When its last run began.
    pub current_start: Option<DateTime<Utc>>,
    /// When it completed.
    pub completed_at: Option<DateTime<Utc>>,
}

/// The Batch section of the read model.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchSection {
    /// Every submitted job, by id.
    pub jobs: HashMap<Uuid, JobView>,
    /// Jobs by number.
    pub by_number: BTreeMap<u64, Uuid>,
    /// The last position of the queue's stream (0: none).
    pub queue_position: u64,
}

/// Why a Batch event could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BatchProjectionError(pub String);

impl BatchSection {
    /// Applies an envelope of a Batch stream; others are skipped.
    pub fn apply(&mut self, envelope: &Envelope) -> Result<(), BatchProjectionError> {
        if envelope.stream.as_str() == BATCH_QUEUE_STREAM {
            self.queue_position = envelope.position;
            return Ok(());
        }
        let Some(id) = parse_job_stream(envelope.stream.as_str()) else {
            return Ok(());
        };
        let event =
            JobEvent::from_envelope(envelope).map_err(|e| BatchProjectionError(e.to_string()))?;
        let at = envelope.recorded_at;
        let view = self.jobs.entry(id).or_insert_with(|| JobView {
            id,
            state: JobState::default(),
            submitted_at: at,
            first_start: None,
            current_start: None,
            completed_at: None,
        });
        view.state = evolve_job(std::mem::take(&mut view.state), &event);
        match &event {
            JobEvent::JobSubmitted(submission) => {
                self.by_number.insert(submission.cluster_id, id);
            }
            JobEvent::JobStarted { .. } => {
                view.first_start.get_or_insert(at);
                view.current_start = Some(at);
            }
            JobEvent::JobExited(_) => view.completed_at = Some(at),
            _ => {}
        }
        Ok(())
    }
}
