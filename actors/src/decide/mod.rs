//! The pure decisions: given the state folded from a stream and a command, which
//! events to append (or which error to answer). No I/O, no clock, no randomness:
//! whatever varies (time, generated passwords, cloud answers) comes in the command.

pub mod batch;
pub mod infrastructure;
pub mod mlbench;
pub mod placement;
pub mod placement_timers;
pub mod sites;
pub mod vm;

/// Why a command is refused. The texts are IM's where IM has one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// No infrastructure with this id is served (IM answers the same when access is not
    /// granted).
    #[error("Invalid infrastructure ID or access not granted.")]
    NotFound,
    /// An infrastructure with this id exists already (create or import).
    #[error("Trying to add an existing infrastructure ID.")]
    AlreadyExists,
    /// The infrastructure is being destroyed: nothing can be added or changed.
    #[error("Infrastructure deleted. Do not add resources.")]
    BeingDestroyed,
    /// The command does not fit the current state (a destroy while resources are
    /// being added).
    #[error("Invalid State to perform this operation.")]
    IncorrectState,
    /// The command was prepared against an older version of the stream; the caller
    /// re-reads and tries again.
    #[error("the infrastructure changed meanwhile (it is at version {actual}, the request was prepared at {expected})")]
    Conflict {
        /// The version the request was prepared against.
        expected: u64,
        /// The version the stream is at now.
        actual: u64,
    },
    /// The VM id names no VM of the infrastructure.
    #[error("Invalid VM ID")]
    InvalidVmId,
    /// The VM is removed or being removed.
    #[error("Deleted VM.")]
    DeletedVm,
    /// The VM never reached its cloud, so there is nothing to operate on.
    #[error("the VM was never launched: {0}")]
    NotLaunched(String),
}
