use chrono::TimeZone;
use infralog_events::domain::vm::VmEvent;
use infralog_events::domain::VmId;

use super::*;

fn owner(name: &str) -> OwnerRecord {
    OwnerRecord {
        username: name.into(),
        salt: [7; 16],
        digest: [9; 32],
        via_token: false,
    }
}

/// An infrastructure's envelopes as a log holds them: its stream and a VM stream,
/// interleaved, the VM's owner changed at the end.
fn envelopes(inf: InfId) -> Vec<Envelope> {
    let source = Uuid::new_v4();
    let infrastructure_events = [
        InfrastructureEvent::Created {
            owners: vec![owner("alice")],
            tosca: None,
        },
        InfrastructureEvent::RadlUpdated {
            radl: "system front ( cpu.count >= 1 )".into(),
        },
        InfrastructureEvent::OwnersChanged {
            owners: vec![owner("bob")],
        },
    ];
    let vm_events = [VmEvent::Stopped, VmEvent::Started];
    let mut new_events: Vec<(String, infralog_events::NewEvent)> = Vec::new();
    new_events.push((
        inf.stream_name(),
        infrastructure_events[0].to_new_event(Metadata::default()),
    ));
    new_events.push((
        inf.stream_name(),
        infrastructure_events[1].to_new_event(Metadata::default()),
    ));
    for event in &vm_events {
        new_events.push((
            inf.vm_stream_name(VmId(0)),
            event.to_new_event(Metadata::default()),
        ));
    }
    new_events.push((
        inf.stream_name(),
        infrastructure_events[2].to_new_event(Metadata::default()),
    ));
    let mut versions = std::collections::HashMap::new();
    new_events
        .into_iter()
        .enumerate()
        .map(|(index, (stream, event))| {
            let version = versions.entry(stream.clone()).or_insert(0u64);
            *version += 1;
            Envelope {
                position: 100 + index as u64,
                stream: StreamId::new(stream).expect("valid"),
                version: *version,
                event_id: event.event_id,
                event_type: event.event_type,
                schema_version: event.schema_version,
                recorded_at: Utc
                    .timestamp_micros(1_700_000_000_000_001 + index as i64)
                    .single()
                    .expect("valid time"),
                metadata: Metadata {
                    request_id: Some(format!("r{index}")),
                    identity: Some("alice".into()),
                    source_instance: Some(source),
                },
                checksum: payload_checksum(&event.payload),
                payload: event.payload,
            }
        })
        .collect()
}

fn document() -> (InfId, Vec<Envelope>, Vec<u8>) {
    let inf = InfId::new_v1(&[1, 2, 3, 4, 5, 6]);
    let originals = envelopes(inf);
    let mut shuffled = originals.clone();
    shuffled.reverse();
    let document = build(Uuid::new_v4(), inf, &mut shuffled);
    (inf, originals, to_json_line(&document))
}

#[test]
fn a_document_round_trips_every_event_exactly() {
    let (inf, originals, bytes) = document();
    assert!(!bytes.contains(&b'\n'), "one document is one line");
    let verified = verify(&bytes).expect("a built document verifies");
    assert_eq!(verified.infrastructure, inf);
    let expected: Vec<ImportedEvent> = originals.iter().map(ImportedEvent::from_envelope).collect();
    assert_eq!(
        verified.request.events, expected,
        "in position order, byte for byte"
    );
    assert_eq!(verified.owners, vec![owner("bob")], "the owners at the end");
}

#[test]
fn the_checksum_ignores_layout_but_not_content() {
    let (_, _, bytes) = document();
    let value: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
    let pretty = serde_json::to_vec_pretty(&value).expect("prints");
    assert!(verify(&pretty).is_ok(), "re-indenting keeps it valid");

    let mut changed = value.clone();
    changed["events"][0]["metadata"]["request_id"] = "other".into();
    let changed = serde_json::to_vec(&changed).expect("prints");
    assert!(matches!(
        verify(&changed),
        Err(HistoryError::ChecksumMismatch { .. })
    ));
}

#[test]
fn a_flipped_payload_byte_is_caught_by_its_checksum() {
    let (_, _, bytes) = document();
    let mut value: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
    let payload = value["events"][1]["payload"]
        .as_str()
        .expect("text")
        .to_string();
    let mut raw = base64::engine::general_purpose::STANDARD
        .decode(payload)
        .expect("base64");
    raw[0] ^= 0x01;
    value["events"][1]["payload"] = base64::engine::general_purpose::STANDARD.encode(raw).into();
    let damaged = serde_json::to_vec(&value).expect("prints");
    match verify(&damaged) {
        Err(HistoryError::BadEvent {
            index: 1, problem, ..
        }) => {
            assert!(problem.contains("checksum"), "{problem}")
        }
        other => panic!("expected a bad event, got {other:?}"),
    }
}

#[test]
fn truncated_and_miscounted_documents_are_refused() {
    let (_, _, bytes) = document();
    for cut in [1, bytes.len() / 3, bytes.len() - 1] {
        assert!(
            matches!(verify(&bytes[..cut]), Err(HistoryError::Unreadable(_))),
            "cut at {cut}"
        );
    }
    let mut value: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
    let events = value["events"].as_array_mut().expect("array");
    events.pop();
    let short = serde_json::to_vec(&value).expect("prints");
    assert!(matches!(
        verify(&short),
        Err(HistoryError::CountMismatch {
            announced: 5,
            found: 4
        })
    ));
}

#[test]
fn foreign_streams_gaps_and_undecodable_payloads_are_refused() {
    let inf = InfId::new_v1(&[1, 2, 3, 4, 5, 6]);
    let other = InfId::new_v1(&[6, 5, 4, 3, 2, 1]);
    let rebuild =
        |mut envelopes: Vec<Envelope>| to_json_line(&build(Uuid::new_v4(), inf, &mut envelopes));

    let mut foreign = envelopes(inf);
    foreign[2].stream = StreamId::new(other.vm_stream_name(VmId(0))).expect("valid");
    assert!(matches!(
        verify(&rebuild(foreign)),
        Err(HistoryError::BadEvent { index: 2, .. })
    ));

    let mut gapped = envelopes(inf);
    gapped.remove(2);
    assert!(matches!(
        verify(&rebuild(gapped)),
        Err(HistoryError::BadEvent { .. })
    ));

    let mut undecodable = envelopes(inf);
    undecodable[1].payload = vec![0xff; 3];
    undecodable[1].checksum = payload_checksum(&undecodable[1].payload);
    assert!(matches!(
        verify(&rebuild(undecodable)),
        Err(HistoryError::BadEvent { index: 1, .. })
    ));

    let vm_only: Vec<Envelope> = envelopes(inf)
        .into_iter()
        .filter(|e| e.stream.as_str().starts_with("vm-"))
        .collect();
    assert!(matches!(
        verify(&rebuild(vm_only)),
        Err(HistoryError::NoInfrastructureStream)
    ));
}

#[test]
fn other_formats_and_versions_are_refused() {
    let (_, _, bytes) = document();
    let mut value: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
    value["header"]["version"] = 2.into();
    let newer = serde_json::to_vec(&value).expect("prints");
    assert!(matches!(
        verify(&newer),
        Err(HistoryError::UnsupportedFormat { version: 2, .. })
    ));
    assert!(matches!(
        verify(br#"{"uri": "x"}"#),
        Err(HistoryError::Unreadable(_))
    ));
}

mod damage {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Any damaged byte is refused, unless the document still says exactly the
        /// same thing (an upper-case hex digit in a UUID, say).
        #[test]
        fn a_damaged_byte_never_imports_other_content(index in any::<prop::sample::Index>(), mask in 1u8..=255) {
            let (inf, originals, bytes) = document();
            let mut damaged = bytes.clone();
            let at = index.index(damaged.len());
            damaged[at] ^= mask;
            if let Ok(verified) = verify(&damaged) {
                let expected: Vec<ImportedEvent> =
                    originals.iter().map(ImportedEvent::from_envelope).collect();
                prop_assert_eq!(verified.infrastructure, inf);
                prop_assert_eq!(verified.request.events, expected);
            }
        }
    }
}
