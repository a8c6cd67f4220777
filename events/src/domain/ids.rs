//! Identifiers of infrastructures and VMs, and the names of their streams.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// An infrastructure id: a UUID, printed lower-case and hyphenated as IM prints its
/// ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct InfId(Uuid);

impl InfId {
    /// A fresh id: a random (version 4) UUID, 122 random bits. IM uses time-based
    /// (version 1) UUIDs, but those from one node differ only in their time and a
    /// clock sequence that grows by one, so a user who creates an infrastructure
    /// before and after another user's could find its id by probing. Clients only
    /// need IM's 36-character form, which this keeps.
    pub fn random() -> Self {
        InfId(Uuid::new_v4())
    }

    /// A time-based (version 1) id as IM makes them. Only tests use it, to build ids
    /// that differ in a known way.
    pub fn new_v1(node_id: &[u8; 6]) -> Self {
        InfId(Uuid::now_v1(node_id))
    }

    /// The id made of this UUID, whatever its version.
    pub fn from_uuid(uuid: Uuid) -> Self {
        InfId(uuid)
    }

    /// The UUID the id is.
    pub fn as_uuid(&self) -> &Uuid {
        &self.0
    }

    /// The stream holding this infrastructure's own events.
    pub fn stream_name(&self) -> String {
        format!("{INFRASTRUCTURE_STREAM_PREFIX}{}", self.0.hyphenated())
    }

    /// The stream holding the events of one of its VMs.
    pub fn vm_stream_name(&self, vm: VmId) -> String {
        format!("{VM_STREAM_PREFIX}{}-{}", self.0.hyphenated(), vm.0)
    }
}

/// Streams of infrastructures are named `infrastructure-<uuid>`.
pub const INFRASTRUCTURE_STREAM_PREFIX: &str = "infrastructure-";
/// Streams of VMs are named `vm-<infrastructure uuid>-<vm id>`.
pub const VM_STREAM_PREFIX: &str = "vm-";
/// Streams of IMC placements (the IMC facade's deployments) are named
/// `imc-placement-<uuid>`.
pub const PLACEMENT_STREAM_PREFIX: &str = "imc-placement-";
/// The one stream of the IMC facade's quota reservations.
pub const IMC_LEDGER_STREAM: &str = "imc-ledger";

/// The stream of the IMC placement `id`.
pub fn placement_stream_name(id: &Uuid) -> String {
    format!("{PLACEMENT_STREAM_PREFIX}{}", id.hyphenated())
}

/// The placement a stream name written by [`placement_stream_name`] belongs to.
pub fn parse_placement_stream(stream: &str) -> Option<Uuid> {
    let rest = stream.strip_prefix(PLACEMENT_STREAM_PREFIX)?;
    let id = Uuid::try_parse(rest).ok()?;
    // Only the canonical spelling names a placement, as for infrastructures.
    (id.hyphenated().to_string() == rest).then_some(id)
}

/// The one stream of the Batch facade's queue: job numbering and the pool.
pub const BATCH_QUEUE_STREAM: &str = "batch-queue";
/// Streams of Batch jobs are named `batch-job-<uuid>`.
pub const BATCH_JOB_STREAM_PREFIX: &str = "batch-job-";

/// The stream of the Batch job `id`.
pub fn job_stream_name(id: &Uuid) -> String {
    format!("{BATCH_JOB_STREAM_PREFIX}{}", id.hyphenated())
}

/// The job a stream name written by [`job_stream_name`] belongs to.
pub fn parse_job_stream(stream: &str) -> Option<Uuid> {
    let rest = stream.strip_prefix(BATCH_JOB_STREAM_PREFIX)?;
    let id = Uuid::try_parse(rest).ok()?;
    (id.hyphenated().to_string() == rest).then_some(id)
}

/// The one stream of the MLBench facade's admission: run numbering.
pub const MLBENCH_ADMISSION_STREAM: &str = "mlbench-admission";
/// Streams of MLBench runs are named `mlbench-run-<n>`.
pub const MLBENCH_RUN_STREAM_PREFIX: &str = "mlbench-run-";

/// The stream of the MLBench run `id`.
pub fn run_stream_name(id: u64) -> String {
    format!("{MLBENCH_RUN_STREAM_PREFIX}{id}")
}

/// The run a stream name written by [`run_stream_name`] belongs to.
pub fn parse_run_stream(stream: &str) -> Option<u64> {
    let rest = stream.strip_prefix(MLBENCH_RUN_STREAM_PREFIX)?;
    let id: u64 = rest.parse().ok()?;
    // Only the canonical spelling (no sign, no leading zero) names a run.
    (id.to_string() == rest && id > 0).then_some(id)
}

impl fmt::Display for InfId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.hyphenated())
    }
}

/// Why a text is not an infrastructure id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an infrastructure id")]
pub struct InvalidInfId;

impl FromStr for InfId {
    type Err = InvalidInfId;

    /// Only the canonical hyphenated form is an id: IM compares ids as strings, so
    /// `{…}` or upper-case spellings name no infrastructure.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let uuid = Uuid::try_parse(s).map_err(|_| InvalidInfId)?;
        if uuid.hyphenated().to_string() == s {
            Ok(InfId(uuid))
        } else {
            Err(InvalidInfId)
        }
    }
}

/// A VM id: its position in the infrastructure's VM list, destroyed VMs included.
/// Ids are never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct VmId(pub u32);

impl fmt::Display for VmId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// What a stream name refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamOwner {
    /// The stream of this infrastructure's own events.
    Infrastructure(InfId),
    /// The stream of one VM: its infrastructure and its id there.
    Vm(InfId, VmId),
}

impl StreamOwner {
    /// Reads a stream name written by [`InfId::stream_name`] or [`InfId::vm_stream_name`].
    pub fn parse(stream: &str) -> Option<Self> {
        if let Some(rest) = stream.strip_prefix(INFRASTRUCTURE_STREAM_PREFIX) {
            return rest.parse().ok().map(StreamOwner::Infrastructure);
        }
        let rest = stream.strip_prefix(VM_STREAM_PREFIX)?;
        let (inf, vm) = rest.rsplit_once('-')?;
        let vm = vm.parse().ok()?;
        Some(StreamOwner::Vm(inf.parse().ok()?, VmId(vm)))
    }

    /// The infrastructure the stream belongs to, for a VM stream too.
    pub fn infrastructure(&self) -> InfId {
        match self {
            StreamOwner::Infrastructure(inf) | StreamOwner::Vm(inf, _) => *inf,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_print_and_parse_in_canonical_form_only() {
        let id = InfId::new_v1(&[1, 2, 3, 4, 5, 6]);
        let text = id.to_string();
        assert_eq!(text.parse::<InfId>(), Ok(id));
        assert!(text.to_uppercase().parse::<InfId>().is_err());
        assert!(text.replace('-', "").parse::<InfId>().is_err());
        assert!("not-an-id".parse::<InfId>().is_err());
        assert_eq!(id.as_uuid().get_version_num(), 1);
    }

    #[test]
    fn fresh_ids_are_random_version_4_uuids() {
        let (a, b) = (InfId::random(), InfId::random());
        assert_eq!(a.as_uuid().get_version_num(), 4);
        assert_ne!(a, b);
        assert_eq!(a.to_string().len(), 36);
        assert_eq!(a.to_string().parse::<InfId>(), Ok(a));
    }

    #[test]
    fn stream_names_round_trip() {
        let id = InfId::new_v1(&[9; 6]);
        assert_eq!(
            StreamOwner::parse(&id.stream_name()),
            Some(StreamOwner::Infrastructure(id))
        );
        assert_eq!(
            StreamOwner::parse(&id.vm_stream_name(VmId(12))),
            Some(StreamOwner::Vm(id, VmId(12)))
        );
        assert_eq!(StreamOwner::parse("other-stream"), None);
    }

    #[test]
    fn placement_streams_round_trip_and_are_no_infrastructure_streams() {
        let id = Uuid::new_v4();
        let name = placement_stream_name(&id);
        assert_eq!(parse_placement_stream(&name), Some(id));
        assert_eq!(StreamOwner::parse(&name), None);
        assert_eq!(parse_placement_stream(&name.to_uppercase()), None);
        assert_eq!(parse_placement_stream(IMC_LEDGER_STREAM), None);
    }

    #[test]
    fn run_streams_round_trip_in_canonical_form_only() {
        assert_eq!(parse_run_stream(&run_stream_name(12)), Some(12));
        assert_eq!(parse_run_stream("mlbench-run-012"), None);
        assert_eq!(parse_run_stream("mlbench-run-0"), None);
        assert_eq!(parse_run_stream(MLBENCH_ADMISSION_STREAM), None);
        assert_eq!(StreamOwner::parse(&run_stream_name(3)), None);
    }
}
