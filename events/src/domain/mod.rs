//! The domain: identifiers, the events of infrastructure and VM streams, the states
//! they fold into, and IM's state rules.
//!
//! Vocabulary: events are facts in the past tense (`VmLaunched`); commands, in the
//! `infralog-actors` crate, are imperative (`LaunchVm`). Every event names its type
//! for the envelope through `event_type()`.

pub mod batch;
pub mod facts;
pub mod ids;
pub mod infrastructure;
pub mod mlbench;
pub mod placement;
pub mod quota_ledger;
pub mod status;
pub mod vm;

pub use facts::{CloudRef, Comparison, FactValue, FeatureFact, OwnerRecord};
pub use ids::{InfId, StreamOwner, VmId};
pub use status::{aggregate_status, refine_vm_status, Status};

use crate::codec::DomainEvent;

impl DomainEvent for infrastructure::InfrastructureEvent {
    const FAMILY: &'static str = "infrastructure events";
    const SCHEMA_VERSION: u16 = 1;

    fn event_type(&self) -> &'static str {
        infrastructure::InfrastructureEvent::event_type(self)
    }
}

impl DomainEvent for vm::VmEvent {
    const FAMILY: &'static str = "VM events";
    const SCHEMA_VERSION: u16 = 1;

    fn event_type(&self) -> &'static str {
        vm::VmEvent::event_type(self)
    }
}

impl DomainEvent for placement::PlacementEvent {
    const FAMILY: &'static str = "IMC placement events";
    const SCHEMA_VERSION: u16 = 1;

    fn event_type(&self) -> &'static str {
        placement::PlacementEvent::event_type(self)
    }
}

impl DomainEvent for placement::LedgerEvent {
    const FAMILY: &'static str = "IMC ledger events";
    const SCHEMA_VERSION: u16 = 1;

    fn event_type(&self) -> &'static str {
        placement::LedgerEvent::event_type(self)
    }
}

impl DomainEvent for batch::QueueEvent {
    const FAMILY: &'static str = "Batch queue events";
    const SCHEMA_VERSION: u16 = 1;

    fn event_type(&self) -> &'static str {
        batch::QueueEvent::event_type(self)
    }
}

impl DomainEvent for batch::JobEvent {
    const FAMILY: &'static str = "Batch job events";
    const SCHEMA_VERSION: u16 = 1;

    fn event_type(&self) -> &'static str {
        batch::JobEvent::event_type(self)
    }
}

impl DomainEvent for mlbench::AdmissionEvent {
    const FAMILY: &'static str = "MLBench admission events";
    const SCHEMA_VERSION: u16 = 1;

    fn event_type(&self) -> &'static str {
        mlbench::AdmissionEvent::event_type(self)
    }
}

impl DomainEvent for mlbench::RunEvent {
    const FAMILY: &'static str = "MLBench run events";
    const SCHEMA_VERSION: u16 = 1;

    fn event_type(&self) -> &'static str {
        mlbench::RunEvent::event_type(self)
    }
}
