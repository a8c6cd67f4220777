//! How imports change the read model.

use infralog_events::domain::infrastructure::ImportedVm;
use infralog_events::envelope::payload_checksum;
use infralog_events::{Metadata, StreamId};

use super::*;

fn owner(name: &str) -> OwnerRecord {
    OwnerRecord {
        username: name.into(),
        salt: [1; 16],
        digest: [2; 32],
        via_token: false,
    }
}

fn dummy() -> CloudRef {
    CloudRef {
        id: "dummy".into(),
        kind: "Dummy".into(),
        host: String::new(),
    }
}

struct Log {
    model: ReadModel,
    versions: HashMap<String, u64>,
}

impl Log {
    fn new() -> Self {
        Log {
            model: ReadModel::default(),
            versions: HashMap::new(),
        }
    }

    fn apply<E: DomainEvent>(&mut self, stream: String, event: &E) {
        let new = event.to_new_event(Metadata::default());
        let version = self.versions.entry(stream.clone()).or_default();
        *version += 1;
        let envelope = Envelope {
            position: self.model.position + 1,
            stream: StreamId::new(stream).expect("a stream id"),
            version: *version,
            event_id: new.event_id,
            event_type: new.event_type,
            schema_version: new.schema_version,
            recorded_at: Utc::now(),
            metadata: new.metadata,
            checksum: payload_checksum(&new.payload),
            payload: new.payload,
        };
        self.model.apply(&envelope).expect("applies");
    }
}

fn imported(owners: Vec<OwnerRecord>) -> InfrastructureEvent {
    let vm = |status| ImportedVm {
        system: "front".into(),
        cloud: dummy(),
        requested_radl: "system front ( )".into(),
        info_radl: "system front ( cpu.count = 2 )".into(),
        cloud_vm_id: Some("c1".into()),
        status,
        configured: Some(true),
        created_at_s: 1_700_000_000,
    };
    InfrastructureEvent::Imported(Box::new(ImportedInfrastructure {
        owners,
        tosca: None,
        radl: "system front ( )".into(),
        vms: vec![
            vm(ImportedVmStatus::Running),
            vm(ImportedVmStatus::Destroyed),
        ],
        configured: Some(true),
        contmsg: "imported log\n".into(),
        auto_delete_snapshots: vec!["mock0://linux.for.ev.er/s".into()],
        created_at_s: 1_700_000_000,
    }))
}

#[test]
fn an_import_replaces_an_evicted_infrastructure_and_its_owners() {
    let inf: InfId = "0bd5a6a2-3d1f-11ef-8f45-0242ac120002"
        .parse()
        .expect("an id");
    let mut log = Log::new();
    log.apply(
        inf.stream_name(),
        &InfrastructureEvent::Created {
            owners: vec![owner("alice")],
            tosca: None,
        },
    );
    log.apply(inf.stream_name(), &InfrastructureEvent::Evicted);
    log.apply(
        inf.vm_stream_name(VmId(0)),
        &VmEvent::Imported {
            cloud: dummy(),
            cloud_vm_id: Some("c1".into()),
            status: ImportedVmStatus::Running,
            auto_delete_snapshots: Vec::new(),
        },
    );
    log.apply(inf.stream_name(), &imported(vec![owner("bob")]));

    let view = &log.model.infrastructures[&inf];
    assert_eq!(view.lifecycle, Lifecycle::Live);
    assert_eq!(view.owners, [owner("bob")]);
    assert!(log.model.owners.entries("alice").is_empty());
    assert_eq!(log.model.owners.entries("bob")[0].infrastructures.len(), 1);
    assert_eq!(view.contmsg.render(), "imported log\n");
    assert_eq!(view.auto_delete_snapshots.len(), 1);
    assert_eq!(view.created_at.timestamp(), 1_700_000_000);
    let states: Vec<String> = view
        .vm_states()
        .iter()
        .map(|(vm, status)| format!("{vm}:{}", status.as_str()))
        .collect();
    assert_eq!(states, ["0:configured"]);
    assert_eq!(
        view.vms[0].imported_info.as_deref(),
        Some("system front ( cpu.count = 2 )")
    );
    assert_eq!(view.vms[1].cloud_state, CloudState::Destroyed);

    // Later VM events apply to the imported VMs.
    log.apply(inf.vm_stream_name(VmId(0)), &VmEvent::Stopped);
    let view = &log.model.infrastructures[&inf];
    assert_eq!(view.vms[0].cloud_state, CloudState::Stopped);
}

#[test]
fn a_history_boundary_retires_the_earlier_life_and_keeps_its_owners() {
    let inf: InfId = "0bd5a6a2-3d1f-11ef-8f45-0242ac120002"
        .parse()
        .expect("an id");
    let mut log = Log::new();
    log.apply(
        inf.stream_name(),
        &InfrastructureEvent::Created {
            owners: vec![owner("alice"), owner("bob")],
            tosca: None,
        },
    );
    log.apply(inf.stream_name(), &InfrastructureEvent::Evicted);
    log.apply(inf.stream_name(), &InfrastructureEvent::EpochStarted);
    // Half-way through the import: no current life, but its last owners are known.
    assert!(!log.model.infrastructures.contains_key(&inf));
    assert_eq!(
        log.model.last_owners(inf),
        Some(&[owner("alice"), owner("bob")][..])
    );
    assert!(log.model.owners_with_gone.entries("bob").is_empty());
    assert_eq!(
        log.model.owners_of_earlier.entries("bob")[0]
            .infrastructures
            .len(),
        1
    );
    log.apply(inf.stream_name(), &imported(vec![owner("alice")]));
    assert_eq!(log.model.last_owners(inf), Some(&[owner("alice")][..]));
    let earlier = &log.model.earlier[&inf];
    assert_eq!(earlier.len(), 1);
    assert_eq!(earlier[0].lifecycle, Lifecycle::Evicted);
    assert_eq!(earlier[0].owners, [owner("alice"), owner("bob")]);
    assert!(log
        .model
        .last_owners(
            "00000000-0000-4000-8000-000000000000"
                .parse()
                .expect("an id")
        )
        .is_none());
}
