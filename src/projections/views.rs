//! What the read endpoints serve about one infrastructure and its VMs.

use std::borrow::Cow;
use std::sync::Arc;

use chrono::{DateTime, Local, Timelike, Utc};
use infralog_events::domain::status::{aggregate_status, refine_vm_status, Status};
use infralog_events::domain::{CloudRef, FeatureFact, InfId, OwnerRecord, VmId};

/// IM's infrastructure log when the RADL disables contextualization (it has no
/// timestamp and ends with an empty line).
pub const CONTEXTUALIZATION_DISABLED: &str =
    "Contextualization disabled by the RADL/TOSCA template.\n\n";

/// Whether an infrastructure is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifecycle {
    /// Created or imported and not being destroyed: served as usual.
    Live,
    /// A destruction is under way (its state reads `deleting`).
    Deleting,
    /// Destroyed: 404 from now on.
    Destroyed,
    /// Exported with `delete`: 404 until imported again.
    Evicted,
}

/// A timestamped line of a contextualization log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// When the event that wrote the line was recorded.
    pub at: DateTime<Utc>,
    /// The line's text, without the timestamp and the line break.
    pub message: Box<str>,
}

/// IM's contextualization log of an infrastructure.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContextLog {
    /// Text before the lines (the "disabled" notice, or an imported log).
    pub preamble: Option<Cow<'static, str>>,
    /// The timestamped lines, oldest first.
    pub lines: Vec<LogLine>,
}

impl ContextLog {
    /// Empties the log for a new contextualization run, starting it with
    /// `preamble` when given.
    pub fn reset(&mut self, preamble: Option<&'static str>) {
        self.preamble = preamble.map(Cow::Borrowed);
        self.lines.clear();
    }

    /// Appends a line written at `at`.
    pub fn push(&mut self, at: DateTime<Utc>, message: &str) {
        self.lines.push(LogLine {
            at,
            message: message.into(),
        });
    }

    /// The log as IM prints it: `<local time>: <message>\n` per line.
    pub fn render(&self) -> String {
        let mut text = String::from(self.preamble.as_deref().unwrap_or(""));
        for line in &self.lines {
            text.push_str(&python_datetime(line.at));
            text.push_str(": ");
            text.push_str(&line.message);
            text.push('\n');
        }
        text
    }
}

/// `str(datetime.now())` in Python: local time, microseconds only when non-zero.
fn python_datetime(at: DateTime<Utc>) -> String {
    let local = at.with_timezone(&Local);
    if local.nanosecond() / 1000 == 0 {
        local.format("%Y-%m-%d %H:%M:%S").to_string()
    } else {
        local.format("%Y-%m-%d %H:%M:%S%.6f").to_string()
    }
}

/// A VM's state in its cloud, before contextualization refines it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloudState {
    /// Requested; the launch has not been recorded.
    Launching,
    /// Launched (or started again) and not stopped.
    Running,
    /// Stopped; a `start` runs it again.
    Stopped,
    /// The launch failed, with this message.
    Failed(Box<str>),
    /// Being finalized.
    Removing,
    /// Finalized in its cloud: it no longer counts, but keeps its id.
    Destroyed,
}

/// One VM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmView {
    /// The VM's id inside its infrastructure (its index in `vms`).
    pub id: VmId,
    /// The name of the RADL `system` the VM was launched from.
    pub system: Box<str>,
    /// The request the VM was made of, references resolved (shared between the VMs
    /// of a request, and with the infrastructure's RADL when they are equal).
    pub launch_radl: Arc<str>,
    /// For an imported VM, its whole document as the source served it (what later
    /// facts apply to, instead of `launch_radl`).
    pub imported_info: Option<Arc<str>>,
    /// The cloud credential the VM was launched with (shared between VMs).
    pub cloud: Arc<CloudRef>,
    /// The VM's id in its cloud; `None` until the launch is recorded.
    pub cloud_vm_id: Option<Box<str>>,
    /// The VM's state in its cloud.
    pub cloud_state: CloudState,
    /// IM's per-VM `configured` flag.
    pub configured: Option<bool>,
    /// What the cloud set on the VM's system, then later alterations, in order
    /// (lists are shared between VMs when equal).
    pub facts: Vec<Arc<[FeatureFact]>>,
    /// The random `disk.0.os.credentials.new.password` the launch set, when the
    /// system had a password and no new one; `None` otherwise.
    pub new_password: Option<Box<str>>,
    /// When the VM was requested (or, for an imported VM, created in the source).
    pub created_at: DateTime<Utc>,
    /// What the latest real contextualization run wrote about this VM.
    pub ansible_log: Arc<String>,
}

impl VmView {
    /// Whether the VM still counts (not destroyed).
    pub fn is_live(&self) -> bool {
        self.cloud_state != CloudState::Destroyed
    }

    /// IM's state of the VM (§4.2), given the infrastructure's `configured` flag.
    pub fn status(&self, infrastructure_configured: Option<bool>) -> Status {
        let cloud = match self.cloud_state {
            CloudState::Launching => return Status::Pending,
            CloudState::Failed(_) => return Status::Failed,
            CloudState::Removing => return Status::Deleting,
            CloudState::Destroyed => return Status::Off,
            CloudState::Running => Status::Running,
            CloudState::Stopped => Status::Stopped,
        };
        let configured = if infrastructure_configured == Some(false) {
            Some(false)
        } else {
            self.configured
        };
        refine_vm_status(cloud, configured)
    }

    /// The VM's own contextualization log (IM's `error_msg` first when set), then
    /// what the latest real run wrote about it.
    pub fn contmsg(&self) -> String {
        let mut log = match &self.cloud_state {
            CloudState::Failed(message) => format!("{message}\n"),
            _ => String::new(),
        };
        log.push_str(&self.ansible_log);
        log
    }

    /// IM's `error_msg`: why the VM failed, framed into the infrastructure's full log.
    fn error_message(&self) -> Option<String> {
        match &self.cloud_state {
            CloudState::Failed(message) => Some(format!("{message}\n")),
            _ => None,
        }
    }
}

/// One infrastructure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InfrastructureView {
    /// The infrastructure's id (IM's UUID).
    pub id: InfId,
    /// The infrastructure stream's version.
    pub version: u64,
    /// The position of the last event of this infrastructure or its VMs.
    pub last_position: u64,
    /// Whether the infrastructure is served, being destroyed, or gone.
    pub lifecycle: Lifecycle,
    /// Who may act on it, in IM's order (`/stats` names the first).
    pub owners: Vec<OwnerRecord>,
    /// The infrastructure's RADL as IM serves it: every request so far merged.
    pub radl: Arc<str>,
    /// The TOSCA template it was made of or last updated with; `None` when it was
    /// made of RADL only.
    pub tosca: Option<Arc<str>>,
    /// IM's infrastructure-level `configured` flag.
    pub configured: Option<bool>,
    /// The infrastructure's own contextualization log.
    pub contmsg: ContextLog,
    /// Whether a contextualization run is under way.
    pub contextualizing: bool,
    /// Every VM ever requested, destroyed ones included, indexed by VM id.
    pub vms: Vec<VmView>,
    /// When the infrastructure was created (or, imported, created in the source).
    pub created_at: DateTime<Utc>,
    /// When its last event (or one of its VMs') was recorded.
    pub updated_at: DateTime<Utc>,
    /// Snapshot images to delete when the infrastructure is destroyed.
    pub auto_delete_snapshots: Vec<Box<str>>,
    /// Launches or removals requested and not yet recorded.
    pub unfinished_changes: bool,
    /// Whether this life of the infrastructure began with an import in IM's
    /// format (IM's export of such an infrastructure differs, see
    /// `transfer::im`).
    pub imported: bool,
    /// The output of the latest real contextualization run (Ansible's), which the
    /// full log shows after IM's own lines and `headeronly` leaves out.
    pub ansible_output: Arc<String>,
}

impl InfrastructureView {
    /// Whether the read endpoints serve it (live or being destroyed); a 404
    /// otherwise.
    pub fn is_served(&self) -> bool {
        matches!(self.lifecycle, Lifecycle::Live | Lifecycle::Deleting)
    }

    /// The VM with this id, destroyed or not; `None` when no VM ever had it.
    pub fn vm(&self, id: VmId) -> Option<&VmView> {
        self.vms.get(id.0 as usize)
    }

    /// The VMs that still count (not destroyed), in id order.
    pub fn live_vms(&self) -> impl Iterator<Item = &VmView> {
        self.vms.iter().filter(|vm| vm.is_live())
    }

    /// `(vm id, state)` of every live VM, in id order.
    pub fn vm_states(&self) -> Vec<(VmId, Status)> {
        self.live_vms()
            .map(|vm| (vm.id, vm.status(self.configured)))
            .collect()
    }

    /// IM's aggregated state (§4.3).
    pub fn status(&self) -> Status {
        aggregate_status(
            self.vm_states().into_iter().map(|(_, status)| status),
            self.configured,
            self.lifecycle == Lifecycle::Deleting,
        )
    }

    /// Work a restart interrupted, to resume at start.
    pub fn has_unfinished_work(&self) -> bool {
        self.is_served()
            && (self.unfinished_changes
                || self.contextualizing
                || self.lifecycle == Lifecycle::Deleting)
    }

    /// The full contextualization log (`headeronly` false): the infrastructure's,
    /// then each live VM's non-empty log framed as IM frames it.
    pub fn full_contmsg(&self) -> String {
        let mut text = self.contmsg.render();
        text.push_str(&self.ansible_output);
        for vm in self.live_vms() {
            if let Some(log) = vm.error_message() {
                text.push_str(&format!("VM {}:\n{log}\n{}\n", vm.id, "*".repeat(75)));
            }
        }
        text
    }
}
