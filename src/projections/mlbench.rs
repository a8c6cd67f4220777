//! The read model's MLBench section: every run as the log shows it, with the
//! times upstream reports, taken from the envelopes' recorded times.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use infralog_events::codec::DomainEvent;
use infralog_events::domain::ids::{parse_run_stream, InfId, MLBENCH_ADMISSION_STREAM};
use infralog_events::domain::mlbench::{evolve_run, RunEvent, RunState, RunStatus};
use infralog_events::Envelope;

/// One run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunView {
    /// Its number.
    pub id: u64,
    /// Its folded state.
    pub state: RunState,
    /// When it was requested.
    pub created_at: DateTime<Utc>,
    /// When it finished or failed.
    pub finished_at: Option<DateTime<Utc>>,
}

impl RunView {
    /// Whether the API shows it (deleted runs answer 404).
    pub fn is_shown(&self) -> bool {
        self.state.request.is_some() && self.state.status != RunStatus::Deleted
    }
}

/// The MLBench section of the read model.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MlbenchSection {
    /// Every requested run, by number (deleted ones included).
    pub runs: BTreeMap<u64, RunView>,
    /// The run each core infrastructure serves.
    pub owners: HashMap<InfId, u64>,
    /// The last position of the admission stream (0: none).
    pub admission_position: u64,
}

/// Why an MLBench event could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct MlbenchProjectionError(pub String);

impl MlbenchSection {
    /// Applies an envelope of an MLBench stream; others are skipped.
    pub fn apply(&mut self, envelope: &Envelope) -> Result<(), MlbenchProjectionError> {
        if envelope.stream.as_str() == MLBENCH_ADMISSION_STREAM {
            self.admission_position = envelope.position;
            return Ok(());
        }
        let Some(id) = parse_run_stream(envelope.stream.as_str()) else {
            return Ok(());
        };
        let event =
            RunEvent::from_envelope(envelope).map_err(|e| MlbenchProjectionError(e.to_string()))?;
        let at = envelope.recorded_at;
        let view = self.runs.entry(id).or_insert_with(|| RunView {
            id,
            state: RunState::default(),
            created_at: at,
            finished_at: None,
        });
        let was_active = view.state.status.is_active();
        view.state = evolve_run(std::mem::take(&mut view.state), &event);
        if was_active && matches!(view.state.status, RunStatus::Finished | RunStatus::Failed) {
            view.finished_at = Some(at);
        }
        if let RunEvent::RunLaunched { inf_id } = &event {
            self.owners.insert(*inf_id, id);
        }
        Ok(())
    }
}
