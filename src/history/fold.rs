//! Time travel: an infrastructure's view as the read endpoints served it at a
//! history version, folded from its own events only.

use chrono::{DateTime, Utc};
use infralog_events::domain::InfId;
use infralog_events::EventStore;
use serde_json::{json, Value};

use super::{HistoryError, HistoryEvent};
use crate::projections::{InfrastructureView, ReadModel};

/// Where to stop folding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    /// Up to and including this history version.
    Version(u64),
    /// Every event recorded at or before this time.
    Time(DateTime<Utc>),
    /// The whole history.
    End,
}

/// The view at a point of the history, and how far the history went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewAt {
    /// `None` when nothing of the infrastructure existed at that point.
    pub view: Option<InfrastructureView>,
    /// The history version folded up to (0: none).
    pub version: u64,
    /// The number of events in the whole history.
    pub head: u64,
}

/// Folds `events` (one infrastructure's history, in order) into a fresh read model
/// up to `until`: the events before the first one past `until`. Pure.
pub fn fold_events<'e>(
    inf: InfId,
    events: impl IntoIterator<Item = &'e HistoryEvent>,
    until: Until,
) -> Result<ViewAt, HistoryError> {
    let mut model = ReadModel::default();
    let mut version = 0;
    let mut head = 0;
    let mut stopped = false;
    for event in events {
        head = event.version;
        stopped = stopped
            || match until {
                Until::Version(v) => event.version > v,
                Until::Time(t) => event.envelope.recorded_at > t,
                Until::End => false,
            };
        if !stopped {
            model.apply_selected(&event.envelope)?;
            version = event.version;
        }
    }
    Ok(ViewAt {
        view: model.infrastructures.remove(&inf),
        version,
        head,
    })
}

/// Reads an infrastructure's history from the store and folds it up to `until`.
/// Blocking: run it off async threads.
pub fn view_at(store: &dyn EventStore, inf: InfId, until: Until) -> Result<ViewAt, HistoryError> {
    let events = super::read_history(store, inf)?;
    fold_events(inf, &events, until)
}

/// What `infralog replay` prints: the state, each VM's state, the RADL and the
/// contextualization log, as the read endpoints would have served them.
pub fn snapshot_json(at: &ViewAt) -> Value {
    let Some(view) = &at.view else {
        return json!({"version": at.version, "head": at.head, "exists": false});
    };
    let vm_states: serde_json::Map<String, Value> = view
        .vm_states()
        .into_iter()
        .map(|(vm, status)| (vm.to_string(), json!(status.as_str())))
        .collect();
    json!({
        "version": at.version,
        "head": at.head,
        "exists": true,
        "served": view.is_served(),
        "state": view.status().as_str(),
        "vm_states": vm_states,
        "radl": &*view.radl,
        "contmsg": view.full_contmsg(),
    })
}

/// The same as text.
pub fn snapshot_text(inf: InfId, at: &ViewAt) -> String {
    let Some(view) = &at.view else {
        return format!(
            "infrastructure {inf} at version {} of {}: it did not exist yet\n",
            at.version, at.head
        );
    };
    let mut text = format!(
        "infrastructure {inf} at version {} of {}\nstate: {}{}\n",
        at.version,
        at.head,
        view.status().as_str(),
        if view.is_served() {
            ""
        } else {
            " (no longer served)"
        }
    );
    for (vm, status) in view.vm_states() {
        text.push_str(&format!("vm {vm}: {}\n", status.as_str()));
    }
    text.push_str("--- radl\n");
    text.push_str(&view.radl);
    if !view.radl.ends_with('\n') {
        text.push('\n');
    }
    text.push_str("--- contmsg\n");
    text.push_str(&view.full_contmsg());
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use infralog_events::codec::DomainEvent;
    use infralog_events::domain::infrastructure::{InfrastructureEvent, PlannedVm};
    use infralog_events::domain::vm::VmEvent;
    use infralog_events::domain::{CloudRef, OwnerRecord, VmId};
    use infralog_events::{Envelope, Metadata, StreamId};

    fn cloud() -> CloudRef {
        CloudRef {
            id: "dummy".into(),
            kind: "Dummy".into(),
            host: String::new(),
        }
    }

    fn envelope<E: DomainEvent>(position: u64, stream: &str, version: u64, event: &E) -> Envelope {
        let new = event.to_new_event(Metadata::default());
        Envelope {
            position,
            stream: StreamId::new(stream).expect("stream"),
            version,
            event_id: new.event_id,
            event_type: new.event_type,
            schema_version: new.schema_version,
            recorded_at: Utc
                .timestamp_opt(1_700_000_000 + position as i64, 0)
                .single()
                .expect("time"),
            metadata: new.metadata,
            checksum: infralog_events::envelope::payload_checksum(&new.payload),
            payload: new.payload,
        }
    }

    /// create with one VM, launched, stopped, started, destroyed; with another
    /// infrastructure's event interleaved (position 3) that the fold must skip.
    fn history(inf: InfId) -> Vec<HistoryEvent> {
        let infra = inf.stream_name();
        let vm0 = inf.vm_stream_name(VmId(0));
        let owner = OwnerRecord {
            username: "u".into(),
            salt: [1; 16],
            digest: [2; 32],
            via_token: false,
        };
        let launched = VmEvent::Launched {
            cloud: cloud(),
            cloud_vm_id: "c0".into(),
            facts: vec![],
            new_password: None,
        };
        let entries: Vec<(Option<VmId>, Envelope)> = vec![
            (
                None,
                envelope(
                    1,
                    &infra,
                    1,
                    &InfrastructureEvent::Created {
                        owners: vec![owner],
                        tosca: None,
                    },
                ),
            ),
            (
                None,
                envelope(
                    2,
                    &infra,
                    2,
                    &InfrastructureEvent::ResourcesRequested {
                        radl: "system front ()".into(),
                        request_radl: None,
                        vms: vec![PlannedVm {
                            vm_id: VmId(0),
                            system: "front".into(),
                            cloud: cloud(),
                            new_password: false,
                        }],
                        contextualization: None,
                    },
                ),
            ),
            (Some(VmId(0)), envelope(4, &vm0, 1, &launched)),
            (
                None,
                envelope(
                    5,
                    &infra,
                    3,
                    &InfrastructureEvent::ResourcesLaunched {
                        launched: vec![VmId(0)],
                        failed: vec![],
                    },
                ),
            ),
            (Some(VmId(0)), envelope(6, &vm0, 2, &VmEvent::Stopped)),
            (Some(VmId(0)), envelope(7, &vm0, 3, &VmEvent::Started)),
            (
                None,
                envelope(9, &infra, 4, &InfrastructureEvent::Destroyed),
            ),
        ];
        entries
            .into_iter()
            .enumerate()
            .map(|(index, (vm, envelope))| HistoryEvent {
                version: index as u64 + 1,
                vm,
                envelope,
            })
            .collect()
    }

    fn state_at(events: &[HistoryEvent], inf: InfId, version: u64) -> (String, Vec<String>) {
        let at = fold_events(inf, events, Until::Version(version)).expect("folds");
        assert_eq!(at.version, version.min(at.head));
        let view = at.view.expect("exists");
        (
            view.status().as_str().to_string(),
            view.vm_states()
                .into_iter()
                .map(|(_, s)| s.as_str().to_string())
                .collect(),
        )
    }

    #[test]
    fn each_version_folds_to_the_state_of_that_moment() {
        let inf = InfId::new_v1(&[7; 6]);
        let events = history(inf);
        assert_eq!(
            state_at(&events, inf, 2),
            ("pending".into(), vec!["pending".into()])
        );
        assert_eq!(state_at(&events, inf, 4).1, vec!["running".to_string()]);
        assert_eq!(
            state_at(&events, inf, 5),
            ("stopped".into(), vec!["stopped".into()])
        );
        assert_eq!(state_at(&events, inf, 6).1, vec!["running".to_string()]);
        let after_destruction = fold_events(inf, &events, Until::Version(7)).expect("folds");
        assert!(!after_destruction.view.expect("exists").is_served());
    }

    #[test]
    fn the_radl_is_that_of_the_version() {
        let inf = InfId::new_v1(&[7; 6]);
        let events = history(inf);
        let created = fold_events(inf, &events, Until::Version(1)).expect("folds");
        assert_eq!(&*created.view.expect("exists").radl, "");
        let requested = fold_events(inf, &events, Until::Version(2)).expect("folds");
        assert_eq!(&*requested.view.expect("exists").radl, "system front ()");
    }

    #[test]
    fn folding_by_time_stops_at_the_last_event_recorded_by_then() {
        let inf = InfId::new_v1(&[7; 6]);
        let events = history(inf);
        let time = events[4].envelope.recorded_at;
        let at = fold_events(inf, &events, Until::Time(time)).expect("folds");
        assert_eq!(at.version, 5);
        assert_eq!(at.head, 7);
    }

    #[test]
    fn folding_is_deterministic() {
        let inf = InfId::new_v1(&[7; 6]);
        let events = history(inf);
        let first = snapshot_json(&fold_events(inf, &events, Until::End).expect("folds"));
        let second = snapshot_json(&fold_events(inf, &events, Until::End).expect("folds"));
        assert_eq!(first, second);
        assert_eq!(first["served"], false);
    }
}
