//! Real contextualization: the RADL's `configure` recipes run by `ansible-playbook`
//! against an infrastructure's VMs, in IM's step order, with the inventory
//! variables IM's ConfManager defines.
//!
//! The runtime hands a run an [`AnsibleJob`] (plain data read from the log) and a
//! channel; the run streams [`Output`] lines into it while Ansible works and ends
//! with a [`RunReport`]. Turning output into events (batched, capped) is the
//! runtime's job.

use std::path::PathBuf;
use std::time::Duration;

use infralog_events::domain::{CloudRef, FeatureFact, InfId, VmId};

mod config;
mod galaxy;
mod inventory;
mod nodes;
mod output;
mod plan;
mod playbook;
mod process;
mod runner;
mod vault;

#[cfg(test)]
mod tests;

pub use runner::run;

/// Why a job could not be planned (IM: `Error generating playbooks`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// The RADL does not parse or does not convert.
    #[error("the infrastructure's RADL is unusable: {0}")]
    Radl(String),
    /// A VM runs a system the RADL does not define.
    #[error("VM {vm} runs system {system}, which the RADL does not define")]
    UnknownSystem {
        /// The VM.
        vm: VmId,
        /// Its system.
        system: String,
    },
    /// A contextualize item names a recipe the RADL does not define.
    #[error("system {system} is to run configure {configure}, which the RADL does not define")]
    UnknownConfigure {
        /// The recipe.
        configure: String,
        /// The system.
        system: String,
    },
    /// A vault-encrypted recipe on a system without `vault.password`.
    #[error("configure {configure} is encrypted with Ansible Vault but system {system} has no vault.password")]
    VaultWithoutPassword {
        /// The recipe.
        configure: String,
        /// The system.
        system: String,
    },
    /// A recipe that is not YAML.
    #[error("configure {configure} of system {system}: {reason}")]
    Recipe {
        /// The recipe.
        configure: String,
        /// The system.
        system: String,
        /// Why.
        reason: String,
    },
}

/// Where Ansible comes from and where runs keep their files.
#[derive(Debug, Clone)]
pub struct AnsibleSettings {
    /// The `ansible-playbook` program.
    pub playbook: PathBuf,
    /// A directory for the runs' inventories, playbooks and vault files (one
    /// subdirectory per run, removed when it ends).
    pub work_dir: PathBuf,
    /// Where roles named by `ansible.roles.X` applications are found.
    pub roles_path: Option<PathBuf>,
    /// Where collections named by `ansible.collections.X` applications are found.
    pub collections_path: Option<PathBuf>,
    /// Keep each run's directory (inventory, playbooks, vault files) after it ends,
    /// to debug or replay a run by hand. Off by default: it holds vault passwords.
    pub keep_runs: bool,
}

/// One run: what it configures and with what.
#[derive(Debug, Clone)]
pub struct AnsibleJob {
    /// The infrastructure configured.
    pub infrastructure: InfId,
    /// The run's number (the event stream's `run`).
    pub run: u32,
    /// The infrastructure's whole RADL text: its `configure` recipes,
    /// `contextualize` order and systems.
    pub radl: String,
    /// Every live launched VM of the infrastructure (the inventory holds them all),
    /// in id order.
    pub vms: Vec<JobVm>,
    /// The longest the run may take (`contextualize N`).
    pub max_time: Duration,
}

/// A VM as a run sees it.
#[derive(Debug, Clone)]
pub struct JobVm {
    /// Its id in the infrastructure.
    pub vm_id: VmId,
    /// The RADL system it runs.
    pub system: String,
    /// The cloud it lives in (the connection is chosen per cloud kind).
    pub cloud: CloudRef,
    /// The cloud's id of the VM (for Docker: the container id).
    pub cloud_vm_id: String,
    /// What its cloud set on its system (addresses, hostnames, credentials), in order.
    pub facts: Vec<FeatureFact>,
    /// Whether this run configures it (the others are only in the inventory).
    pub configure: bool,
}

/// Output of a run, as whole lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// The VM the lines are about; `None` for the run as a whole.
    pub vm_id: Option<VmId>,
    /// One or more whole lines, each ending with `\n`.
    pub text: String,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunReport {
    /// Every VM the run configures is configured.
    pub configured: bool,
    /// The VMs whose configuration failed.
    pub failed_vms: Vec<VmId>,
    /// Why it failed, for the contextualization log; `None` on success.
    pub message: Option<String>,
}
