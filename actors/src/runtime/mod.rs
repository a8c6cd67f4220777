//! The actix shell around the pure decisions: one actor per infrastructure and one
//! per VM, started or rehydrated from the log on first use by the [`Registry`].
//!
//! # Guarantees
//!
//! - Commands to one actor never interleave: handlers return `AtomicResponse`, so
//!   decide, append and evolve run as one step.
//! - State changes only after the store said the events are durable.
//! - Mailboxes are bounded: a full one answers [`ActorError::Busy`] at once.
//! - A panic inside a command is caught: the caller gets [`ActorError::Failed`],
//!   the actor stops and is rebuilt from the log on its next command; other actors
//!   keep serving.
//! - Nothing blocking runs on an arbiter: appends are awaited, stream reads run on
//!   the blocking pool.
//!
//! # Caveats
//!
//! Cloud credentials are not stored, so work resumed after a restart (launches,
//! removals, destructions under way) reaches its cloud with empty credentials; the
//! Dummy cloud needs none.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use infralog_events::domain::infrastructure::{ContextualizationPlan, ImportedInfrastructure};
use infralog_events::domain::{OwnerRecord, VmId};
use infralog_events::{EventStore, Metadata, StoreError};
use tokio::sync::oneshot;

use crate::connectors::{AlterRequest, CloudCredentials, ConnectorError, Connectors};
use crate::decide::infrastructure::ResourceRequest;
use crate::decide::DomainError;

pub mod batch;
mod directory;
mod infrastructure;
mod journal;
pub mod ledger;
mod mailbox;
pub mod mlbench;
mod panics;
pub mod placement;
mod registry;
mod vm;

pub use mailbox::MailboxDepth;
pub use registry::Registry;

// The files depend in one direction: `registry` starts the actors and so knows
// both; `infrastructure` names the work it orders of a VM (`vm::VmWork`) and sends
// it through `infrastructure::VmDispatch`, which the registry implements; `vm`
// knows neither. What an actor needs of the registry reaches it as the narrow
// handles below.

/// What every actor needs of the runtime around it: the log, the clouds and the
/// settings. The registry hands it, with a [`Forget`], to each actor it starts, so
/// that the actors never need the registry itself.
pub(crate) struct Shared {
    pub(crate) store: Arc<dyn EventStore>,
    pub(crate) connectors: Connectors,
    pub(crate) config: ActorConfig,
    /// Bounds the cloud launches under way at once ([`ActorConfig::max_simultaneous_launches`]).
    pub(crate) launches: tokio::sync::Semaphore,
}

/// Takes an actor out of the registry's map, unless another actor took its place
/// already. An actor calls it when it stops and, before answering, when a command
/// panicked: a client that retries at once must reach a fresh actor, not the
/// stopping one's mailbox.
pub(crate) type Forget = Arc<dyn Fn() + Send + Sync>;

/// When an actor last worked, and whether it is working or retiring. An idle actor
/// retires in two steps: it leaves the registry first (new commands start a fresh
/// actor), then stops once a grace period passed with no work; a command that
/// reached its mailbox in between is handled, not dropped.
#[derive(Debug)]
pub(crate) struct Idleness {
    last_activity: std::time::Instant,
    in_flight: u32,
    retiring: bool,
}

impl Idleness {
    pub(crate) fn new() -> Self {
        Idleness {
            last_activity: std::time::Instant::now(),
            in_flight: 0,
            retiring: false,
        }
    }

    /// A command starts.
    pub(crate) fn begin(&mut self) {
        self.last_activity = std::time::Instant::now();
        self.in_flight += 1;
    }

    /// A command ended.
    pub(crate) fn end(&mut self) {
        self.last_activity = std::time::Instant::now();
        self.in_flight = self.in_flight.saturating_sub(1);
    }

    /// Whether nothing ran for `quiet`.
    pub(crate) fn quiet_for(&self, quiet: Duration) -> bool {
        self.in_flight == 0 && self.last_activity.elapsed() >= quiet
    }

    /// Whether the actor should start retiring now (once).
    pub(crate) fn start_retiring(&mut self, idle: Duration) -> bool {
        if self.retiring || !self.quiet_for(idle) {
            return false;
        }
        self.retiring = true;
        true
    }
}

/// How the actors behave.
#[derive(Debug, Clone)]
pub struct ActorConfig {
    /// Pending commands one actor accepts before answering busy.
    pub mailbox_capacity: usize,
    /// An actor without work for this long stops; its next command rehydrates it.
    pub idle_timeout: Duration,
    /// How many arbiter threads run the actors.
    pub arbiters: usize,
    /// How long an infrastructure's own work for one of its VMs (a launch, a
    /// removal, one VM of an infrastructure-wide stop) waits for room in that VM's
    /// full mailbox before the VM is reported as not reached.
    pub room_wait: Duration,
    /// How many VM launches may call their clouds at once, over every
    /// infrastructure (IM's `MAX_SIMULTANEOUS_LAUNCHES`).
    pub max_simultaneous_launches: usize,
    /// How real contextualization runs `ansible-playbook`; `None` when this server
    /// has none (VMs on clouds configured by Ansible then cannot be contextualized).
    pub ansible: Option<crate::contextualization::ansible::AnsibleSettings>,
    /// How often the VMs of observable clouds are compared with what the log says.
    pub observe_interval: Duration,
}

impl Default for ActorConfig {
    fn default() -> Self {
        ActorConfig {
            mailbox_capacity: 64,
            idle_timeout: Duration::from_secs(30),
            arbiters: 2,
            room_wait: Duration::from_secs(10),
            max_simultaneous_launches: 16,
            ansible: None,
            observe_interval: Duration::from_secs(5),
        }
    }
}

/// The credentials of a request, by cloud id.
pub type Credentials = HashMap<String, CloudCredentials>;

/// Why a command did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActorError {
    /// The actor's mailbox is full (see [`ActorConfig::mailbox_capacity`]); try again
    /// later.
    #[error("too many operations are pending on this resource")]
    Busy,
    /// The decision refused the command.
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// A cloud refused; the message says what was being done.
    #[error("{0}")]
    Cloud(String),
    /// The event log failed to read or append.
    #[error("event log: {0}")]
    Store(#[from] StoreError),
    /// The actor failed (a panic, or its log could not be loaded).
    #[error("the actor failed: {0}")]
    Failed(String),
    /// An infrastructure-wide operation reached some VMs but not these: their
    /// mailboxes stayed full (see [`ActorConfig::room_wait`]). Nothing else failed,
    /// so repeating the operation later is safe.
    #[error("{action}: {} not reached: too many operations are pending on {}", vm_list(.missed), if .missed.len() == 1 { "it" } else { "them" })]
    Unreached {
        /// What was being done (`Error stopping the infrastructure`…).
        action: String,
        /// The VMs not reached, in id order.
        missed: Vec<VmId>,
    },
}

/// `VM 3` or `VMs 1, 2`.
fn vm_list(vms: &[VmId]) -> String {
    let ids: Vec<String> = vms.iter().map(|vm| vm.0.to_string()).collect();
    match ids.len() {
        1 => format!("VM {}", ids[0]),
        _ => format!("VMs {}", ids.join(", ")),
    }
}

impl ActorError {
    fn cloud(action: &str, error: ConnectorError) -> Self {
        ActorError::Cloud(format!("{action}: {error}"))
    }
}

/// What a successful command did, for the caller: where its events ended in the
/// log and what the client is told. (The events themselves stay inside the actors;
/// what a cloud answered is recorded as the `VmEvent` it reports.)
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// The last position the command appended (0 if it appended nothing); wait for
    /// the projections to reach it before reading.
    pub position: u64,
    /// New VMs (for an add).
    pub vm_ids: Vec<VmId>,
    /// A result for the client (a snapshot's URL).
    pub detail: Option<String>,
    /// Why a launch failed (the VM exists, in state `failed`).
    pub failed: Option<String>,
}

impl Outcome {
    fn at(position: u64) -> Self {
        Outcome {
            position,
            ..Outcome::default()
        }
    }
}

pub(crate) type Reply = oneshot::Sender<Result<Outcome, ActorError>>;

/// What the API asks of an infrastructure.
#[derive(Debug, Clone)]
pub enum InfrastructureRequest {
    /// Create an infrastructure and launch its VMs (IM's `POST /infrastructures`).
    Create {
        /// Who owns it from the start.
        owners: Vec<OwnerRecord>,
        /// The TOSCA document it is created from; `None` for a RADL create.
        tosca: Option<String>,
        /// The RADL and the VMs to launch.
        resources: ResourceRequest,
        /// The cloud credentials of the request, for the launches.
        credentials: Credentials,
        /// Answer once the infrastructure is recorded, and launch afterwards.
        asynchronous: bool,
    },
    /// Add resources and launch the new VMs (IM's `POST /infrastructures/<id>`).
    AddResources {
        /// The version of the stream the request was prepared against.
        expected_version: u64,
        /// The merged RADL and the VMs to launch.
        resources: ResourceRequest,
        /// The TOSCA document from now on (a TOSCA add).
        tosca: Option<String>,
        /// The cloud credentials of the request, for the launches.
        credentials: Credentials,
    },
    /// Finalize VMs (IM's `DELETE /infrastructures/<id>/vms/<ids>`).
    RemoveResources {
        /// The VMs to finalize.
        vm_ids: Vec<VmId>,
        /// Whether contextualization runs again after the removal (IM's `context`).
        context: bool,
        /// How that run goes, when `context` is set.
        plan: ContextualizationPlan,
        /// The cloud credentials of the request, for the finalizations.
        credentials: Credentials,
    },
    /// Replace the RADL (an add without deploys), and restart contextualization
    /// when `plan` is given.
    UpdateRadl {
        /// The version of the stream the new RADL was computed against.
        expected_version: u64,
        /// The infrastructure's RADL from now on.
        radl: String,
        /// How the contextualization run goes; `None`: no run.
        plan: Option<ContextualizationPlan>,
    },
    /// Restart contextualization over every VM (as IM resets them all); `radl`
    /// replaces the stored RADL first.
    Reconfigure {
        /// The version of the stream the request was prepared against.
        expected_version: u64,
        /// The new RADL; `None` keeps the stored one.
        radl: Option<String>,
        /// How the contextualization run goes.
        plan: ContextualizationPlan,
    },
    /// Stop every VM of the infrastructure.
    Stop {
        /// The cloud credentials of the request, by cloud id.
        credentials: Credentials,
    },
    /// Start every VM of the infrastructure.
    Start {
        /// The cloud credentials of the request, by cloud id.
        credentials: Credentials,
    },
    /// Destroy the infrastructure: finalize every VM, then record it destroyed.
    Destroy {
        /// Destroy even when a cloud refuses to finalize a VM.
        force: bool,
        /// Answer once the destruction is recorded as begun, and finalize afterwards.
        asynchronous: bool,
        /// The cloud credentials of the request, for the finalizations.
        credentials: Credentials,
    },
    /// Replace the owners.
    ChangeOwners {
        /// The version of the stream the change was prepared against.
        expected_version: u64,
        /// The owners from now on, exactly these.
        owners: Vec<OwnerRecord>,
    },
    /// Stop serving the infrastructure here (an export with `delete`); it can be
    /// imported again.
    Evict,
    /// Take in an infrastructure exported elsewhere (its VMs' streams first, the
    /// infrastructure's event last, as the commit point). No cloud is called.
    Import {
        /// The infrastructure as it was exported: owners, RADL, VMs.
        imported: Box<ImportedInfrastructure>,
    },
    /// Resume work a restart interrupted.
    Resume,
}

/// What the API asks of a VM.
#[derive(Debug, Clone)]
pub enum VmRequest {
    /// Stop (power off) the VM.
    Stop {
        /// The credentials of the VM's cloud.
        credentials: CloudCredentials,
    },
    /// Start the stopped VM.
    Start {
        /// The credentials of the VM's cloud.
        credentials: CloudCredentials,
    },
    /// Reboot the VM.
    Reboot {
        /// The credentials of the VM's cloud.
        credentials: CloudCredentials,
    },
    /// Resize the VM.
    Alter {
        /// The new CPU count and memory size, as read from the RADL body.
        request: AlterRequest,
        /// The credentials of the VM's cloud.
        credentials: CloudCredentials,
    },
    /// Take an image of one of the VM's disks (IM's `CreateDiskSnapshot`).
    Snapshot {
        /// The disk's number, as in `disk.N`.
        disk: u32,
        /// The name to give the image.
        image_name: String,
        /// Delete the image when the VM is finalized.
        auto_delete: bool,
        /// The credentials of the VM's cloud.
        credentials: CloudCredentials,
    },
}

/// Metadata for the events a command appends.
pub type CommandMetadata = Metadata;

/// The answer of an actor whose stream could not be read: the store's own error
/// when its database is out of reach (the caller answers 503), a failure
/// otherwise.
pub(crate) fn load_failure(kind: &str, error: &StoreError) -> ActorError {
    match error {
        StoreError::Unavailable(_) => ActorError::Store(error.clone()),
        other => ActorError::Failed(format!("the {kind}'s log cannot be read: {other}")),
    }
}
