use super::*;
use infralog_events::domain::infrastructure::{
    ImportedInfrastructure, ImportedVm, ImportedVmStatus, InfrastructureEvent, PlannedVm,
};
use infralog_events::domain::{CloudRef, OwnerRecord};
use infralog_events::{AppendRequest, ExpectedVersion, Metadata, SledStore, SledStoreConfig};

fn append<E: DomainEvent>(store: &SledStore, stream: String, events: &[E]) {
    store
        .append(AppendRequest {
            stream: StreamId::new(stream).expect("stream"),
            expected: ExpectedVersion::Any,
            events: events
                .iter()
                .map(|e| e.to_new_event(Metadata::default()))
                .collect(),
        })
        .wait()
        .expect("appended");
}

fn cloud() -> CloudRef {
    CloudRef {
        id: "dummy".into(),
        kind: "Dummy".into(),
        host: String::new(),
    }
}

/// Two infrastructures whose events interleave, one VM each.
fn populated(store: &SledStore) -> Vec<InfId> {
    let ids: Vec<InfId> = (0..2).map(|n| InfId::new_v1(&[n; 6])).collect();
    for (n, inf) in ids.iter().enumerate() {
        let owner = OwnerRecord {
            username: format!("user{n}"),
            salt: [n as u8; 16],
            digest: [3; 32],
            via_token: false,
        };
        append(
            store,
            inf.stream_name(),
            &[
                InfrastructureEvent::Created {
                    owners: vec![owner],
                    tosca: None,
                },
                InfrastructureEvent::ResourcesRequested {
                    radl: format!("system s{n} ()"),
                    request_radl: None,
                    vms: vec![PlannedVm {
                        vm_id: VmId(0),
                        system: format!("s{n}"),
                        cloud: cloud(),
                        new_password: false,
                    }],
                    contextualization: None,
                },
            ],
        );
    }
    for inf in &ids {
        append(
            store,
            inf.vm_stream_name(VmId(0)),
            &[VmEvent::Launched {
                cloud: cloud(),
                cloud_vm_id: "c".into(),
                facts: vec![],
                new_password: None,
            }],
        );
        append(
            store,
            inf.stream_name(),
            &[InfrastructureEvent::ResourcesLaunched {
                launched: vec![VmId(0)],
                failed: vec![],
            }],
        );
    }
    append(store, ids[0].vm_stream_name(VmId(0)), &[VmEvent::Stopped]);
    ids
}

#[test]
fn a_consistent_log_verifies_and_reports_progress() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SledStore::open(SledStoreConfig::new(dir.path())).expect("opens");
    populated(&store);
    let mut phases = Vec::new();
    let report = verify(&store, &mut |p| phases.push(p));
    assert_eq!(report.problems, Vec::<String>::new());
    assert_eq!(report.events, 9);
    assert_eq!(report.streams, 4);
    assert_eq!(report.infrastructures, 2);
    let last = phases.last().expect("progress");
    assert_eq!(last.done, last.total);
}

#[test]
fn events_outside_any_history_are_reported() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SledStore::open(SledStoreConfig::new(dir.path())).expect("opens");
    let ids = populated(&store);
    // A VM stream no request of its infrastructure planned.
    append(&store, ids[1].vm_stream_name(VmId(7)), &[VmEvent::Stopped]);
    let report = verify(&store, &mut |_| {});
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    assert!(
        report.problems[0]
            .contains("VmStopped (position 10) is an event of VM 7, which no request had planned"),
        "{:?}",
        report.problems
    );
}

#[test]
fn the_actors_fold_is_compared_with_the_read_model() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SledStore::open(SledStoreConfig::new(dir.path())).expect("opens");
    let ids = populated(&store);
    // Started while stopped is valid for both; a launch failure after a launch
    // is ignored by the VM's own fold but shown by the read model.
    append(
        &store,
        ids[1].vm_stream_name(VmId(0)),
        &[VmEvent::LaunchFailed {
            cloud: cloud(),
            message: "late".into(),
        }],
    );
    let report = verify(&store, &mut |_| {});
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    assert!(report.problems[0].contains("actors' fold"));
}

fn reimport(store: &SledStore, inf: InfId, commit: bool) {
    append(store, inf.stream_name(), &[InfrastructureEvent::Evicted]);
    import_after_boundary(store, inf, commit);
}

fn leftover(store: &SledStore, inf: InfId) {
    append(
        store,
        inf.vm_stream_name(VmId(0)),
        &[VmEvent::Imported {
            cloud: cloud(),
            cloud_vm_id: Some("left".into()),
            status: ImportedVmStatus::Running,
            auto_delete_snapshots: Vec::new(),
        }],
    );
}

fn import_after_boundary(store: &SledStore, inf: InfId, commit: bool) {
    append(
        store,
        inf.stream_name(),
        &[InfrastructureEvent::EpochStarted],
    );
    append(
        store,
        inf.vm_stream_name(VmId(0)),
        &[VmEvent::Imported {
            cloud: cloud(),
            cloud_vm_id: Some("c".into()),
            status: ImportedVmStatus::Running,
            auto_delete_snapshots: Vec::new(),
        }],
    );
    if commit {
        let imported = ImportedInfrastructure {
            owners: Vec::new(),
            tosca: None,
            radl: "system s0 ()".into(),
            vms: vec![ImportedVm {
                system: "s0".into(),
                cloud: cloud(),
                requested_radl: "system s0 ()".into(),
                info_radl: "system s0 ()".into(),
                cloud_vm_id: Some("c".into()),
                status: ImportedVmStatus::Running,
                configured: Some(true),
                created_at_s: 1_700_000_000,
            }],
            configured: Some(true),
            contmsg: String::new(),
            auto_delete_snapshots: Vec::new(),
            created_at_s: 1_700_000_000,
        };
        append(
            store,
            inf.stream_name(),
            &[InfrastructureEvent::Imported(Box::new(imported))],
        );
    }
}

#[test]
fn a_reimported_id_verifies_and_its_history_starts_at_the_boundary() {
    for commit in [true, false] {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = SledStore::open(SledStoreConfig::new(dir.path())).expect("opens");
        let ids = populated(&store);
        reimport(&store, ids[0], commit);
        let report = verify(&store, &mut |_| {});
        assert_eq!(report.problems, Vec::<String>::new(), "commit: {commit}");
        let (history, earlier) = super::super::read_history_counted(&store, ids[0]).expect("reads");
        let types: Vec<&str> = history
            .iter()
            .map(|e| e.envelope.event_type.as_str())
            .collect();
        let mut expected = vec!["EpochStarted", "VmImported"];
        if commit {
            expected.push("InfrastructureImported");
        }
        assert_eq!(types, expected);
        assert_eq!(history[0].version, 1);
        let skipped: u64 = earlier.iter().map(|(_, n)| n).sum();
        assert_eq!(
            skipped, 6,
            "created, requested, launched, stopped, launched, evicted"
        );
    }
}

#[test]
fn a_damaged_record_is_a_problem_not_a_crash() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SledStore::open(SledStoreConfig::new(dir.path())).expect("opens");
    populated(&store);
    store.corrupt_record_for_tests(3).expect("damaged");
    let report = verify(&store, &mut |_| {});
    assert!(!report.is_ok());
    assert!(
        report.problems[0].contains("damaged"),
        "{:?}",
        report.problems
    );
}

#[test]
fn an_import_over_the_vm_events_of_an_interrupted_one_verifies_without_them() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SledStore::open(SledStoreConfig::new(dir.path())).expect("opens");
    populated(&store);
    let inf = InfId::random();
    leftover(&store, inf);
    import_after_boundary(&store, inf, true);
    let report = verify(&store, &mut |_| {});
    assert_eq!(report.problems, Vec::<String>::new());
    let (history, earlier) = super::super::read_history_counted(&store, inf).expect("reads");
    assert_eq!(history.len(), 3);
    assert_eq!(earlier.iter().map(|(_, n)| n).sum::<u64>(), 1);
    assert_eq!(history[0].envelope.event_type, "EpochStarted");
    assert!(history[1].envelope.position > history[0].envelope.position);
}
