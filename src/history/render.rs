//! History events as JSON (for `/events` and `infralog events --json`) and as one
//! line of text (for `infralog events`).
//!
//! Owners are stored as a username and a salted password digest; the digest is a
//! credential in all but name (it can be attacked offline), so only the username
//! and the token flag are shown. Events carry no cloud credentials. The
//! envelope's `identity` (a hash naming the requester) is left out for the same
//! reason as the digests.

use chrono::SecondsFormat;
use infralog_events::codec::DomainEvent;
use infralog_events::domain::batch::JobEvent;
use infralog_events::domain::ids::parse_job_stream;
use infralog_events::domain::ids::{parse_placement_stream, parse_run_stream};
use infralog_events::domain::infrastructure::InfrastructureEvent;
use infralog_events::domain::mlbench::RunEvent;
use infralog_events::domain::placement::PlacementEvent;
use infralog_events::domain::vm::VmEvent;
use infralog_events::domain::OwnerRecord;
use serde_json::{json, Map, Value};

use super::{decode_infrastructure, undecodable, HistoryError, HistoryEvent};

/// The decoded event of a history entry.
#[derive(Debug, Clone, PartialEq)]
pub enum Decoded {
    /// An event of the infrastructure's own stream.
    Infrastructure(InfrastructureEvent),
    /// An event of one of its VMs' streams.
    Vm(VmEvent),
    /// An event of a Batch job's stream.
    Job(JobEvent),
    /// An event of an IMC placement's stream.
    Placement(PlacementEvent),
    /// An event of an MLBench run's stream.
    Run(RunEvent),
}

impl Decoded {
    /// Decodes a history event by the stream that holds it.
    pub fn of(event: &HistoryEvent) -> Result<Self, HistoryError> {
        let envelope = &event.envelope;
        if parse_run_stream(envelope.stream.as_str()).is_some() {
            return RunEvent::from_envelope(envelope)
                .map(Decoded::Run)
                .map_err(|e| undecodable(envelope, e.to_string()));
        }
        if parse_job_stream(envelope.stream.as_str()).is_some() {
            return JobEvent::from_envelope(envelope)
                .map(Decoded::Job)
                .map_err(|e| undecodable(envelope, e.to_string()));
        }
        match event.vm {
            None if parse_placement_stream(envelope.stream.as_str()).is_some() => {
                PlacementEvent::from_envelope(envelope)
                    .map(Decoded::Placement)
                    .map_err(|e| undecodable(envelope, e.to_string()))
            }
            None => decode_infrastructure(envelope).map(Decoded::Infrastructure),
            Some(_) => VmEvent::from_envelope(envelope)
                .map(Decoded::Vm)
                .map_err(|e| undecodable(envelope, e.to_string())),
        }
    }
}

fn public_owners(owners: &[OwnerRecord]) -> Value {
    owners
        .iter()
        .map(|o| json!({"username": o.username, "via_token": o.via_token}))
        .collect()
}

/// The event's fields as JSON, owners' digests left out.
pub fn fields(decoded: &Decoded) -> Value {
    let tagged = match decoded {
        Decoded::Infrastructure(event) => serde_json::to_value(event),
        Decoded::Vm(event) => serde_json::to_value(event),
        Decoded::Job(event) => serde_json::to_value(event),
        Decoded::Placement(event) => serde_json::to_value(event),
        Decoded::Run(event) => serde_json::to_value(event),
    }
    .unwrap_or(Value::Null);
    // Externally tagged: `{"Variant": {fields}}`, or `"Variant"` without fields.
    let mut fields = match tagged {
        Value::Object(map) => map
            .into_iter()
            .next()
            .map(|(_, inner)| inner)
            .unwrap_or_default(),
        _ => Value::Object(Map::new()),
    };
    let owners = match decoded {
        Decoded::Infrastructure(
            InfrastructureEvent::Created { owners, .. }
            | InfrastructureEvent::OwnersChanged { owners },
        ) => Some(owners),
        Decoded::Infrastructure(InfrastructureEvent::Imported(imported)) => Some(&imported.owners),
        _ => None,
    };
    if let (Some(owners), Value::Object(map)) = (owners, &mut fields) {
        map.insert("owners".into(), public_owners(owners));
    }
    fields
}

/// One history event as JSON.
pub fn event_json(event: &HistoryEvent) -> Result<Value, HistoryError> {
    let decoded = Decoded::of(event)?;
    let envelope = &event.envelope;
    let mut object = Map::new();
    object.insert("version".into(), json!(event.version));
    object.insert("stream".into(), json!(envelope.stream.as_str()));
    object.insert("stream_version".into(), json!(envelope.version));
    if let Some(vm) = event.vm {
        object.insert("vm".into(), json!(vm.0));
    }
    object.insert("position".into(), json!(envelope.position));
    object.insert("id".into(), json!(envelope.event_id.to_string()));
    object.insert(
        "time".into(),
        json!(envelope
            .recorded_at
            .to_rfc3339_opts(SecondsFormat::Micros, true)),
    );
    object.insert("type".into(), json!(envelope.event_type));
    object.insert("schema_version".into(), json!(envelope.schema_version));
    if let Some(request) = &envelope.metadata.request_id {
        object.insert("request_id".into(), json!(request));
    }
    if let Some(source) = &envelope.metadata.source_instance {
        object.insert("source_instance".into(), json!(source.to_string()));
    }
    object.insert("data".into(), fields(&decoded));
    Ok(Value::Object(object))
}

/// A short human summary of an event.
pub fn summary(decoded: &Decoded) -> String {
    use InfrastructureEvent as I;
    let ids = |ids: &[infralog_events::domain::VmId]| {
        ids.iter()
            .map(|v| v.0.to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    match decoded {
        Decoded::Infrastructure(event) => match event {
            I::Created { owners, tosca } => {
                let names: Vec<&str> = owners.iter().map(|o| o.username.as_str()).collect();
                let tosca = if tosca.is_some() { " from TOSCA" } else { "" };
                format!("created{tosca}, owners: {}", names.join(", "))
            }
            I::ResourcesRequested { vms, .. } => {
                let systems: Vec<String> = vms
                    .iter()
                    .map(|v| format!("{} ({}) in {}", v.vm_id, v.system, v.cloud.id))
                    .collect();
                format!("{} VM(s) requested: {}", vms.len(), systems.join(", "))
            }
            I::ResourcesLaunched { launched, failed } => format!(
                "launched [{}], failed [{}]",
                ids(launched),
                failed
                    .iter()
                    .map(|f| f.vm_id.0.to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            I::RemovalRequested { vm_ids, .. } => format!("removal of [{}] requested", ids(vm_ids)),
            I::ResourcesRemoved { vm_ids } => format!("removed [{}]", ids(vm_ids)),
            I::RadlUpdated { radl } => format!("RADL updated ({} bytes)", radl.len()),
            I::ContextualizationStarted { run, vm_ids, .. } => {
                format!("contextualization run {run} started on [{}]", ids(vm_ids))
            }
            I::ContextualizationProgressed { run, message } => {
                format!("run {run}: {}", first_line(message))
            }
            I::ContextualizationFinished { run, configured } => {
                format!("contextualization run {run} finished, configured: {configured}")
            }
            I::OwnersChanged { owners } => {
                let names: Vec<&str> = owners.iter().map(|o| o.username.as_str()).collect();
                format!("owners: {}", names.join(", "))
            }
            I::DestructionStarted { force } => format!("destruction started (force: {force})"),
            I::DestructionFailed { message } => {
                format!("destruction failed: {}", first_line(message))
            }
            I::Destroyed => "destroyed".into(),
            I::Evicted => "evicted (exported with delete)".into(),
            I::EpochStarted => "imported again: the history starts here".into(),
            I::ContextualizationOutput { run, vm_id, text } => {
                let vm = vm_id.map(|vm| format!(" (VM {vm})")).unwrap_or_default();
                format!("run {run}{vm}: {} bytes of output", text.len())
            }
            I::ToscaUpdated { tosca } => format!("TOSCA template updated ({} bytes)", tosca.len()),
            I::Imported(imported) => {
                let names: Vec<&str> = imported
                    .owners
                    .iter()
                    .map(|o| o.username.as_str())
                    .collect();
                format!(
                    "imported from IM's format with {} VM(s), owners: {}",
                    imported.vms.len(),
                    names.join(", ")
                )
            }
        },
        Decoded::Vm(event) => match event {
            VmEvent::Launched {
                cloud, cloud_vm_id, ..
            } => format!("launched in {} as {cloud_vm_id}", cloud.id),
            VmEvent::LaunchFailed { cloud, message } => {
                format!("launch in {} failed: {}", cloud.id, first_line(message))
            }
            VmEvent::Stopped => "stopped".into(),
            VmEvent::Started => "started".into(),
            VmEvent::Rebooted => "rebooted".into(),
            VmEvent::Altered { facts } => {
                let names: Vec<&str> = facts.iter().map(|f| f.name.as_str()).collect();
                format!("altered: {}", names.join(", "))
            }
            VmEvent::SnapshotTaken {
                disk, image_url, ..
            } => format!("snapshot of disk {disk}: {image_url}"),
            VmEvent::Destroyed => "destroyed".into(),
            VmEvent::Imported { cloud, status, .. } => {
                format!("imported in {} ({status:?})", cloud.id)
            }
            VmEvent::Observed { state, message } => {
                format!("observed {state:?} in its cloud: {}", first_line(message))
            }
        },
        Decoded::Job(event) => job_summary(event),
        Decoded::Placement(event) => placement_summary(event),
        Decoded::Run(event) => run_summary(event),
    }
}

fn run_summary(event: &RunEvent) -> String {
    match event {
        RunEvent::RunRequested(request) => format!("requested: {}", request.name),
        RunEvent::RunLaunched { inf_id } => format!("launched on infrastructure {inf_id}"),
        RunEvent::RunProcessStarted { rank, pid, .. } => format!("rank {rank} started, pid {pid}"),
        RunEvent::RunOutput { stream, lines } => {
            format!("{} line(s) of {stream:?}", lines.len())
        }
        RunEvent::RunProcessExited { rank, code } => format!("rank {rank} exited with {code}"),
        RunEvent::RunFailed { reason } => format!("failed: {}", first_line(reason)),
        other => other.event_type().trim_start_matches("Run").to_lowercase(),
    }
}

fn job_summary(event: &JobEvent) -> String {
    match event {
        JobEvent::JobSubmitted(submission) => format!(
            "submitted as number {}: {}",
            submission.cluster_id, submission.name
        ),
        JobEvent::JobStarted {
            slot_vm,
            run_count,
            run,
        } => format!("run {run_count} started on {slot_vm}, pid {}", run.pid),
        JobEvent::JobExited(exit) if exit.by_signal => format!("killed by signal {}", exit.code),
        JobEvent::JobExited(exit) => format!("exited with {}", exit.code),
        JobEvent::JobEvicted { reason } => format!("evicted: {}", first_line(reason)),
        JobEvent::JobSubmissionFailed { reason } => {
            format!("submission failed: {}", first_line(reason))
        }
        JobEvent::NotificationAttempted { attempt, outcome } => {
            format!("notification try {attempt}: {}", first_line(outcome))
        }
        other => other.event_type().trim_start_matches("Job").to_lowercase(),
    }
}

fn placement_summary(event: &PlacementEvent) -> String {
    use PlacementEvent as P;
    match event {
        P::PlacementRequested(request) => format!(
            "requested: {} instance(s) for {}",
            request.instances,
            request.identity.as_deref().unwrap_or("no identity")
        ),
        P::CandidatesEvaluated { matching, .. } => format!("sites: {}", matching.join(", ")),
        P::AttemptStarted {
            site,
            flavour,
            inf_id,
            ..
        } => format!("attempt on {site} with {flavour}: infrastructure {inf_id}"),
        P::AttemptFailed { reason } => format!("attempt failed: {reason}"),
        P::PlacementWaiting { reason } | P::PlacementUnable { reason } => reason.clone(),
        P::PlacementConfigured { site, inf_id } => format!("configured on {site}: {inf_id}"),
        P::DeletionFailed { message } => format!("deletion failed: {}", first_line(message)),
        other => other.event_type().to_string(),
    }
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or("")
}

/// `infralog events`' line for an event; `colour` adds ANSI colours.
pub fn event_line(event: &HistoryEvent, colour: bool) -> Result<String, HistoryError> {
    let decoded = Decoded::of(event)?;
    let envelope = &event.envelope;
    let time = envelope
        .recorded_at
        .to_rfc3339_opts(SecondsFormat::Millis, true);
    let source = match event.vm {
        None => "inf".to_string(),
        Some(vm) => format!("vm {vm}"),
    };
    let (dim, bold, reset, colour_of_type) = if colour {
        (
            "\x1b[2m",
            "\x1b[1m",
            "\x1b[0m",
            type_colour(&envelope.event_type),
        )
    } else {
        ("", "", "", "")
    };
    Ok(format!(
        "{bold}{:>5}{reset} {dim}{time}{reset} {:<6} {colour_of_type}{:<28}{reset} {}",
        event.version,
        source,
        envelope.event_type,
        summary(&decoded)
    ))
}

fn type_colour(event_type: &str) -> &'static str {
    if event_type.contains("Fail") {
        "\x1b[31m"
    } else if event_type.contains("Destr") || event_type.contains("Remov") {
        "\x1b[33m"
    } else if event_type.contains("Created") || event_type.contains("Launched") {
        "\x1b[32m"
    } else {
        "\x1b[36m"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};
    use infralog_events::domain::VmId;
    use infralog_events::{Envelope, Metadata, StreamId};

    fn history_event<E: DomainEvent>(vm: Option<VmId>, event: &E) -> HistoryEvent {
        let new = event.to_new_event(Metadata {
            request_id: Some("r-1".into()),
            identity: Some("requester-hash".into()),
            source_instance: None,
        });
        HistoryEvent {
            version: 4,
            vm,
            envelope: Envelope {
                position: 9,
                stream: StreamId::new("infrastructure-x").expect("stream"),
                version: 2,
                event_id: new.event_id,
                event_type: new.event_type,
                schema_version: new.schema_version,
                recorded_at: Utc
                    .timestamp_micros(1_700_000_000_000_001)
                    .single()
                    .expect("time"),
                metadata: new.metadata,
                checksum: infralog_events::envelope::payload_checksum(&new.payload),
                payload: new.payload,
            },
        }
    }

    fn owner() -> OwnerRecord {
        OwnerRecord {
            username: "alice".into(),
            salt: [0xAB; 16],
            digest: [0xCD; 32],
            via_token: false,
        }
    }

    #[test]
    fn owners_show_only_their_names() {
        for event in [
            InfrastructureEvent::Created {
                owners: vec![owner()],
                tosca: None,
            },
            InfrastructureEvent::OwnersChanged {
                owners: vec![owner()],
            },
        ] {
            let json = event_json(&history_event(None, &event)).expect("renders");
            assert_eq!(
                json["data"]["owners"],
                json!([{"username": "alice", "via_token": false}])
            );
            let text = json.to_string();
            for secret in ["salt", "digest", "171", "205", "requester-hash", "identity"] {
                assert!(!text.contains(secret), "{secret} in {text}");
            }
        }
    }

    #[test]
    fn events_carry_their_numbers_time_and_fields() {
        let json = event_json(&history_event(
            Some(VmId(3)),
            &VmEvent::SnapshotTaken {
                disk: 0,
                image_url: "img://1".into(),
                auto_delete: true,
            },
        ))
        .expect("renders");
        assert_eq!(json["version"], 4);
        assert_eq!(json["stream_version"], 2);
        assert_eq!(json["vm"], 3);
        assert_eq!(json["position"], 9);
        assert_eq!(json["time"], "2023-11-14T22:13:20.000001Z");
        assert_eq!(json["type"], "VmSnapshotTaken");
        assert_eq!(json["request_id"], "r-1");
        assert_eq!(
            json["data"],
            json!({"disk": 0, "image_url": "img://1", "auto_delete": true})
        );
        let unit = event_json(&history_event(Some(VmId(3)), &VmEvent::Stopped)).expect("renders");
        assert_eq!(unit["data"], json!({}));
    }

    #[test]
    fn lines_are_coloured_only_when_asked() {
        let event = history_event(None, &InfrastructureEvent::Destroyed);
        let plain = event_line(&event, false).expect("renders");
        assert!(!plain.contains('\x1b'));
        assert!(plain.contains("InfrastructureDestroyed"));
        assert!(plain.ends_with("destroyed"));
        let coloured = event_line(&event, true).expect("renders");
        assert!(coloured.contains("\x1b[33m"), "{coloured:?}");
    }

    #[test]
    fn a_payload_that_does_not_decode_is_an_error_naming_it() {
        let mut event = history_event(None, &InfrastructureEvent::Destroyed);
        event.envelope.event_type = "VmStopped".into();
        let error = event_json(&event).expect_err("type mismatch");
        assert!(error.to_string().contains("position 9"), "{error}");
    }
}
