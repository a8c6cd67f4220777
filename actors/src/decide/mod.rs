//! The pure decisions: given the state folded from a stream and a command, which
//! events to append (or which error to answer). No I/O, no clock, no randomness:
//! whatever varies (time, generated passwords, cloud answers) comes in the command.

pub mod infrastructure;
pub mod vm;

/// Why a command is refused. The texts are IM's where IM has one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    #[error("Invalid infrastructure ID or access not granted.")]
    NotFound,
    #[error("Trying to add an existing infrastructure ID.")]
    AlreadyExists,
    #[error("Infrastructure deleted. Do not add resources.")]
    BeingDestroyed,
    #[error("Invalid State to perform this operation.")]
    IncorrectState,
    /// The command was prepared against an older version of the stream; the caller
    /// re-reads and tries again.
    #[error("the infrastructure changed meanwhile (it is at version {actual}, the request was prepared at {expected})")]
    Conflict { expected: u64, actual: u64 },
    #[error("Invalid VM ID")]
    InvalidVmId,
    #[error("Deleted VM.")]
    DeletedVm,
    /// The VM never reached its cloud, so there is nothing to operate on.
    #[error("the VM was never launched: {0}")]
    NotLaunched(String),
}
