use super::*;
use infralog_events::envelope::payload_checksum;
use infralog_events::{Metadata, StreamId};

fn owner(username: &str) -> OwnerRecord {
    OwnerRecord {
        username: username.into(),
        salt: [1; 16],
        digest: [2; 32],
        via_token: false,
    }
}

/// Applies `event` as the next envelope of `inf`'s stream, recorded `version`
/// minutes into 2026.
fn apply(model: &mut ReadModel, inf: InfId, version: u64, event: InfrastructureEvent) {
    let minute = i64::try_from(version).expect("a small version");
    let new = event.to_new_event(Metadata::default());
    let envelope = Envelope {
        position: model.position + 1,
        stream: StreamId::new(inf.stream_name()).expect("a stream name"),
        version,
        event_id: new.event_id,
        event_type: new.event_type,
        schema_version: new.schema_version,
        recorded_at: at(minute),
        metadata: new.metadata,
        checksum: payload_checksum(&new.payload),
        payload: new.payload,
    };
    model.apply(&envelope).expect("the event applies");
}

fn at(minute: i64) -> chrono::DateTime<chrono::Utc> {
    use chrono::TimeZone;
    chrono::Utc
        .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .expect("a time")
        + chrono::Duration::minutes(minute)
}

fn owned(index: &OwnerIndex, username: &str) -> Vec<InfId> {
    index
        .entries(username)
        .iter()
        .flat_map(|entry| entry.infrastructures.iter().copied())
        .collect()
}

#[test]
fn destroyed_infrastructures_leave_the_owners_index_but_not_the_one_for_stats() {
    let mut model = ReadModel::default();
    let inf = InfId::new_v1(&[0; 6]);
    let created = InfrastructureEvent::Created {
        owners: vec![owner("alice")],
        tosca: None,
    };
    apply(&mut model, inf, 1, created);
    assert_eq!(owned(&model.owners, "alice"), [inf]);
    assert_eq!(owned(&model.owners_with_gone, "alice"), [inf]);

    let changed = InfrastructureEvent::OwnersChanged {
        owners: vec![owner("bob")],
    };
    apply(&mut model, inf, 2, changed);
    assert!(owned(&model.owners_with_gone, "alice").is_empty());
    assert_eq!(owned(&model.owners_with_gone, "bob"), [inf]);

    apply(&mut model, inf, 3, InfrastructureEvent::Destroyed);
    assert!(owned(&model.owners, "bob").is_empty());
    assert_eq!(owned(&model.owners_with_gone, "bob"), [inf]);
    let view = model.infrastructures.get(&inf).expect("kept for /stats");
    assert_eq!((view.created_at, view.updated_at), (at(1), at(3)));
}
