//! `infralog verify`: every checksum, every stream's versions, and the read model
//! folded twice, independently, compared.
//!
//! The first fold is the server's own: the whole log in position order through
//! [`ReadModel::apply`]. The second reads each infrastructure's streams through
//! the stream index ([`HistoryReader`]) and folds each infrastructure alone; the
//! actors' own folds (`evolve`) run over the same streams. The two read paths share
//! no code below the store's chunk decoding, so an index that points at the wrong
//! events, a stream with a gap, or a projection that depends on other
//! infrastructures' events shows up as a mismatch.

use std::collections::{BTreeSet, HashMap};

use infralog_events::codec::DomainEvent;
use infralog_events::domain::infrastructure::{self, InfrastructurePhase, InfrastructureState};
use infralog_events::domain::vm::{self, VmEvent, VmPhase, VmState};
use infralog_events::domain::{InfId, StreamOwner, VmId};
use infralog_events::{EventStore, StreamId};

use super::fold::{fold_events, Until};
use super::HistoryEvent;
use crate::projections::{CloudState, InfrastructureView, Lifecycle, ReadModel};

/// Events read from the log per call.
const LOG_BATCH: usize = 4096;
/// Streams listed per call.
const LIST_BATCH: usize = 4096;

/// Where verification is, for a progress display.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// What is being done: `reading the log`, then `refolding each infrastructure`.
    pub phase: &'static str,
    /// How many units of the phase are done: events read, or infrastructures
    /// refolded.
    pub done: u64,
    /// How many units the phase has: the log's head position, or the number of
    /// infrastructures.
    pub total: u64,
}

/// What verification found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// How many events the log holds (those read before a damaged record, if any).
    pub events: u64,
    /// How many streams the stream index lists.
    pub streams: u64,
    /// How many infrastructure streams were refolded one by one.
    pub infrastructures: u64,
    /// Every mismatch, each a sentence. Empty: the log verified.
    pub problems: Vec<String>,
}

impl VerifyReport {
    /// Whether the log verified: no problem found.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }

    fn problem(&mut self, text: impl Into<String>) {
        self.problems.push(text.into());
    }
}

/// Verifies the whole store. Blocking. Store failures that stop the reading (a
/// damaged record) are reported as problems, not errors.
pub fn verify(store: &dyn EventStore, progress: &mut dyn FnMut(Progress)) -> VerifyReport {
    let mut report = VerifyReport::default();
    let head = store.head_position();
    let Some((model, versions)) = fold_log(store, head, &mut report, progress) else {
        return report;
    };
    let Some(listed) = list_all_streams(store, &mut report) else {
        return report;
    };
    report.streams = listed.len() as u64;
    for (stream, version) in &listed {
        let seen = versions.get(stream).copied().unwrap_or(0);
        if seen != *version {
            report.problem(format!(
                "{stream}: the stream index says version {version}, the log holds {seen} events of it"
            ));
        }
    }
    for stream in versions.keys() {
        if !listed.iter().any(|(s, _)| s == stream) {
            report.problem(format!("{stream}: in the log but not in the stream index"));
        }
    }
    let infrastructures: Vec<InfId> = listed
        .iter()
        .filter_map(|(stream, _)| match StreamOwner::parse(stream.as_str()) {
            Some(StreamOwner::Infrastructure(inf)) => Some(inf),
            _ => None,
        })
        .collect();
    report.infrastructures = infrastructures.len() as u64;
    let mut covered: HashMap<StreamId, u64> = HashMap::new();
    let mut owners_by_stream = BTreeSet::new();
    for (done, inf) in infrastructures.iter().enumerate() {
        progress(Progress {
            phase: "refolding each infrastructure",
            done: done as u64,
            total: infrastructures.len() as u64,
        });
        let (events, earlier) = match super::read_history_counted(store, *inf) {
            Ok(read) => read,
            Err(error) => {
                report.problem(format!("infrastructure {inf}: {error}"));
                continue;
            }
        };
        for event in &events {
            *covered.entry(event.envelope.stream.clone()).or_default() += 1;
        }
        // Events of earlier lives of the id are part of it too, only not shown.
        for (stream, count) in earlier {
            *covered.entry(stream).or_default() += count;
        }
        let single = match fold_events(*inf, &events, Until::End) {
            Ok(at) => at.view,
            Err(error) => {
                report.problem(format!("infrastructure {inf}: {error}"));
                continue;
            }
        };
        let whole = model.infrastructures.get(inf);
        if single.as_ref() != whole {
            report.problem(format!(
                "infrastructure {inf}: folding its own streams gives a different view than folding the whole log ({})",
                differences(single.as_ref(), whole)
            ));
        }
        if let Some(view) = &single {
            if view.is_served() {
                for owner in &view.owners {
                    owners_by_stream.insert(owner_key(owner, *inf));
                }
            }
            compare_with_actors(*inf, &events, view, &mut report);
        }
    }
    progress(Progress {
        phase: "refolding each infrastructure",
        done: infrastructures.len() as u64,
        total: infrastructures.len() as u64,
    });
    for (stream, version) in &listed {
        if let Some(StreamOwner::Vm(inf, _)) = StreamOwner::parse(stream.as_str()) {
            let read = covered.get(stream).copied().unwrap_or(0);
            if read != *version {
                report.problem(format!(
                    "{stream}: {read} of its {version} events belong to the history of infrastructure {inf}"
                ));
            }
        }
    }
    let owners_by_log: BTreeSet<_> = model
        .owners
        .iter()
        .flat_map(|(_, entry)| {
            entry
                .infrastructures
                .iter()
                .map(|inf| owner_key(&entry.owner, *inf))
        })
        .collect();
    if owners_by_log != owners_by_stream {
        report.problem("the owners' index differs between the two folds");
    }
    verify_placements(store, &model, &listed, &mut report);
    verify_runs(store, &model, &listed, &mut report);
    report
}

/// Each MLBench run folded from its own stream must equal its fold in the
/// whole log, and its number must have been given by admission.
fn verify_runs(
    store: &dyn EventStore,
    model: &ReadModel,
    listed: &[(StreamId, u64)],
    report: &mut VerifyReport,
) {
    use infralog_events::domain::ids::{parse_run_stream, MLBENCH_ADMISSION_STREAM};
    use infralog_events::domain::mlbench::{evolve_run, RunEvent, RunState};
    let numbered = listed
        .iter()
        .find(|(stream, _)| stream.as_str() == MLBENCH_ADMISSION_STREAM)
        .map(|(_, version)| *version)
        .unwrap_or(0);
    for (stream, _) in listed {
        let Some(id) = parse_run_stream(stream.as_str()) else {
            continue;
        };
        if id > numbered {
            report.problem(format!("run {id}: admission numbered only {numbered} runs"));
        }
        let mut state = RunState::default();
        let mut from = 1;
        loop {
            let batch = match store.read_stream(stream, from, LOG_BATCH) {
                Ok(batch) => batch,
                Err(error) => {
                    report.problem(format!("{stream}: {error}"));
                    return;
                }
            };
            let Some(last) = batch.last() else { break };
            from = last.version + 1;
            for envelope in &batch {
                match RunEvent::from_envelope(envelope) {
                    Ok(event) => state = evolve_run(state, &event),
                    Err(error) => report.problem(format!("{stream}: {error}")),
                }
            }
        }
        if model.mlbench.runs.get(&id).map(|view| &view.state) != Some(&state) {
            report.problem(format!(
                "run {id}: folding its stream gives a different state than folding the whole log"
            ));
        }
    }
}

/// Each IMC placement folded from its own stream must equal its fold in the whole
/// log, and the infrastructure of each successful attempt must be in the log (a
/// pending attempt's may not be yet: a crash can come before its creation).
fn verify_placements(
    store: &dyn EventStore,
    model: &ReadModel,
    listed: &[(StreamId, u64)],
    report: &mut VerifyReport,
) {
    use infralog_events::domain::ids::parse_placement_stream;
    use infralog_events::domain::placement::{
        evolve, AttemptOutcome, PlacementEvent, PlacementState,
    };
    for (stream, _) in listed {
        let Some(id) = parse_placement_stream(stream.as_str()) else {
            continue;
        };
        let mut state = PlacementState::default();
        let mut from = 1;
        loop {
            let batch = match store.read_stream(stream, from, LOG_BATCH) {
                Ok(batch) => batch,
                Err(error) => {
                    report.problem(format!("{stream}: {error}"));
                    return;
                }
            };
            let Some(last) = batch.last() else { break };
            from = last.version + 1;
            for envelope in &batch {
                match PlacementEvent::from_envelope(envelope) {
                    Ok(event) => state = evolve(state, &event),
                    Err(error) => report.problem(format!("{stream}: {error}")),
                }
            }
        }
        let whole = model.imc.placements.get(&id).map(|view| &view.state);
        if whole != Some(&state) {
            report.problem(format!(
                "placement {id}: folding its stream gives a different state than folding the whole log"
            ));
        }
        let standing = |a: &&infralog_events::domain::placement::Attempt| {
            !a.destroyed && a.outcome == AttemptOutcome::Succeeded
        };
        for attempt in state.attempts.iter().filter(standing) {
            if !model.infrastructures.contains_key(&attempt.inf_id) {
                report.problem(format!(
                    "placement {id}: its attempt's infrastructure {} is not in the log",
                    attempt.inf_id
                ));
            }
        }
    }
}

/// The fields in which two views differ, for the mismatch message.
fn differences(single: Option<&InfrastructureView>, whole: Option<&InfrastructureView>) -> String {
    let (Some(a), Some(b)) = (single, whole) else {
        return format!(
            "it exists in {} fold only",
            if single.is_some() {
                "the per-infrastructure"
            } else {
                "the whole-log"
            }
        );
    };
    let mut fields = Vec::new();
    let mut check = |name: &'static str, same: bool| {
        if !same {
            fields.push(name);
        }
    };
    check("version", a.version == b.version);
    check("last_position", a.last_position == b.last_position);
    check("lifecycle", a.lifecycle == b.lifecycle);
    check("owners", a.owners == b.owners);
    check("radl", a.radl == b.radl);
    check("tosca", a.tosca == b.tosca);
    check("configured", a.configured == b.configured);
    check("contmsg", a.contmsg == b.contmsg);
    check("contextualizing", a.contextualizing == b.contextualizing);
    check("vms", a.vms == b.vms);
    check("created_at", a.created_at == b.created_at);
    check(
        "unfinished_changes",
        a.unfinished_changes == b.unfinished_changes,
    );
    check("imported", a.imported == b.imported);
    format!("differs in {}", fields.join(", "))
}

type OwnerKey = (String, [u8; 16], [u8; 32], bool, InfId);

fn owner_key(owner: &infralog_events::domain::OwnerRecord, inf: InfId) -> OwnerKey {
    (
        owner.username.clone(),
        owner.salt,
        owner.digest,
        owner.via_token,
        inf,
    )
}

/// The first fold: the whole log in order, checking positions and versions.
fn fold_log(
    store: &dyn EventStore,
    head: u64,
    report: &mut VerifyReport,
    progress: &mut dyn FnMut(Progress),
) -> Option<(ReadModel, HashMap<StreamId, u64>)> {
    let mut model = ReadModel::default();
    let mut versions: HashMap<StreamId, u64> = HashMap::new();
    let mut next = 1;
    loop {
        progress(Progress {
            phase: "reading the log",
            done: next - 1,
            total: head,
        });
        let batch = match store.read_all(next, LOG_BATCH) {
            Ok(batch) => batch,
            Err(error) => {
                report.problem(format!("reading the log from position {next}: {error}"));
                return None;
            }
        };
        if batch.is_empty() {
            break;
        }
        for envelope in &batch {
            if envelope.position != next {
                report.problem(format!(
                    "the log skips from position {} to {}",
                    next - 1,
                    envelope.position
                ));
                return None;
            }
            next += 1;
            report.events += 1;
            let version = versions.entry(envelope.stream.clone()).or_default();
            if envelope.version != *version + 1 {
                report.problem(format!(
                    "{}: version {} follows version {} (position {})",
                    envelope.stream, envelope.version, version, envelope.position
                ));
            }
            *version = envelope.version;
            if let Err(error) = model.apply(envelope) {
                report.problem(format!("the read model cannot apply the log: {error}"));
                return None;
            }
        }
    }
    if next - 1 != head {
        report.problem(format!(
            "the log ends at position {}, its head says {head}",
            next - 1
        ));
    }
    Some((model, versions))
}

fn list_all_streams(
    store: &dyn EventStore,
    report: &mut VerifyReport,
) -> Option<Vec<(StreamId, u64)>> {
    let mut listed = Vec::new();
    loop {
        let batch = match store.list_streams(listed.last().map(|(s, _)| s), LIST_BATCH) {
            Ok(batch) => batch,
            Err(error) => {
                report.problem(format!("listing the streams: {error}"));
                return None;
            }
        };
        let full = batch.len() == LIST_BATCH;
        listed.extend(batch);
        if !full {
            return Some(listed);
        }
    }
}

/// The actors' folds over the same streams must agree with the read model.
fn compare_with_actors(
    inf: InfId,
    events: &[HistoryEvent],
    view: &InfrastructureView,
    report: &mut VerifyReport,
) {
    // A history that starts at a boundary starts from an empty stream, at the
    // stream's version before it.
    let mut infrastructure = InfrastructureState {
        version: events
            .iter()
            .find(|event| event.vm.is_none())
            .map_or(0, |event| event.envelope.version - 1),
        ..InfrastructureState::default()
    };
    let mut vms: HashMap<VmId, VmState> = HashMap::new();
    for event in events {
        let envelope = &event.envelope;
        let decoded = match event.vm {
            None => infrastructure::InfrastructureEvent::from_envelope(envelope).map(|e| {
                infrastructure = infrastructure::evolve(std::mem::take(&mut infrastructure), &e)
            }),
            Some(vm) => VmEvent::from_envelope(envelope).map(|e| {
                let planned = infrastructure
                    .existing()
                    .is_some_and(|live| live.slot(vm).is_some());
                // An import records its VMs before the event that commits it.
                let importing =
                    matches!(e, VmEvent::Imported { .. }) && infrastructure.existing().is_none();
                if !planned
                    && !importing
                    && !matches!(infrastructure.phase, InfrastructurePhase::Destroyed)
                {
                    report.problem(format!(
                        "infrastructure {inf}: {} (position {}) is an event of VM {vm}, which no request had planned",
                        envelope.event_type, envelope.position
                    ));
                }
                let state = vms.entry(vm).or_default();
                *state = vm::evolve(std::mem::take(state), &e);
            }),
        };
        if let Err(error) = decoded {
            report.problem(format!("infrastructure {inf}: {error}"));
            return;
        }
    }
    let mut mismatch = |what: String| {
        report.problem(format!(
            "infrastructure {inf}: the actors' fold and the read model disagree on {what}"
        ))
    };
    if infrastructure.version != view.version {
        mismatch(format!(
            "the version ({} and {})",
            infrastructure.version, view.version
        ));
    }
    let (lifecycle, live) = match &infrastructure.phase {
        InfrastructurePhase::Unborn => (None, None),
        InfrastructurePhase::Live(live) => (Some(Lifecycle::Live), Some(live)),
        InfrastructurePhase::Destroying {
            infrastructure: live,
            ..
        } => (Some(Lifecycle::Deleting), Some(live)),
        InfrastructurePhase::Destroyed => (Some(Lifecycle::Destroyed), None),
        InfrastructurePhase::Evicted => (Some(Lifecycle::Evicted), None),
    };
    if lifecycle != Some(view.lifecycle) {
        mismatch(format!(
            "the lifecycle ({lifecycle:?} and {:?})",
            view.lifecycle
        ));
    }
    if let Some(live) = live {
        if *live.radl != *view.radl {
            mismatch("the RADL".into());
        }
        if live.owners != view.owners {
            mismatch("the owners".into());
        }
        if live.vms.len() != view.vms.len() {
            mismatch(format!(
                "the number of VMs ({} and {})",
                live.vms.len(),
                view.vms.len()
            ));
        }
    }
    for vm_view in &view.vms {
        let state = vms.get(&vm_view.id).cloned().unwrap_or_default();
        let agrees = match (&state.phase, &vm_view.cloud_state) {
            (_, CloudState::Removing) => true,
            (VmPhase::Unlaunched, CloudState::Launching) => true,
            (VmPhase::Running(_), CloudState::Running) => true,
            (VmPhase::Stopped(_), CloudState::Stopped) => true,
            (VmPhase::LaunchFailed { message, .. }, CloudState::Failed(shown)) => {
                **message == **shown
            }
            (VmPhase::Destroyed, CloudState::Destroyed) => true,
            _ => false,
        };
        if !agrees {
            mismatch(format!(
                "VM {} ({:?} and {:?})",
                vm_view.id, state.phase, vm_view.cloud_state
            ));
        }
    }
}

#[cfg(test)]
#[path = "verify_tests.rs"]
mod tests;
