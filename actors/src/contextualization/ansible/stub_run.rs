//! TEMPORARY (lead's integration branch): replaced by the real runner on merge.

use tokio::sync::mpsc;

use super::{AnsibleJob, AnsibleSettings, Output, RunReport};

/// Runs the job's recipes.
pub async fn run(
    settings: &AnsibleSettings,
    job: AnsibleJob,
    output: mpsc::UnboundedSender<Output>,
) -> RunReport {
    let _ = (settings, output);
    RunReport {
        configured: false,
        failed_vms: job.vms.iter().map(|vm| vm.vm_id).collect(),
        message: Some("not built yet".into()),
    }
}
