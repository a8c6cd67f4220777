//! Runs and pods as the API shows them, from the read model.

use infralog_actors::decide::mlbench::{pod_name, rank_command, ranks_to_run};
use infralog_events::domain::mlbench::RunStatus;
use serde_json::{json, Value};

use super::driver::vm_ip;
use super::query::format_datetime;
use crate::projections::mlbench::RunView;
use crate::projections::ReadModel;

/// A pod of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pod {
    /// `<release>-mlbench-worker-<run>-<vm>`.
    pub name: String,
    /// Upstream's labels, printed as a Python dict.
    pub labels: String,
    /// `Pending`, `Running`, `Succeeded` or `Failed`.
    pub phase: &'static str,
    /// Its VM's address.
    pub ip: String,
}

/// The labels of a run's pods, as upstream prints them.
pub fn labels(release: &str, run_name: &str) -> String {
    format!(
        "{{'app': 'mlbench', 'component': 'worker', 'release': '{release}', 'set': '{run_name}'}}"
    )
}

/// The pods of a run whose infrastructure stands.
pub fn pods_of(model: &ReadModel, run: &RunView, release: &str) -> Vec<Pod> {
    let (Some(request), Some(inf)) = (&run.state.request, run.state.inf_id) else {
        return Vec::new();
    };
    let Some(core) = model.infrastructures.get(&inf) else {
        return Vec::new();
    };
    let runs_process = ranks_to_run(request);
    core.live_vms()
        .map(|vm| {
            let rank = vm.id.0;
            let phase = match run.state.processes.get(&rank).map(|p| p.exit) {
                Some(None) => "Running",
                Some(Some(0)) => "Succeeded",
                Some(Some(_)) => "Failed",
                None if runs_process.contains(&rank) => "Pending",
                None => "Running",
            };
            Pod {
                name: pod_name(release, &request.name, rank),
                labels: labels(release, &request.name),
                phase,
                ip: vm_ip(vm).unwrap_or_default(),
            }
        })
        .collect()
}

/// Every pod of every started run.
pub fn live_pods(model: &ReadModel, release: &str) -> Vec<Pod> {
    model
        .mlbench
        .runs
        .values()
        .filter(|run| run.state.status == RunStatus::Started)
        .flat_map(|run| pods_of(model, run, release))
        .collect()
}

/// Every pod name a shown run has had (live or gone).
pub fn known_pod(model: &ReadModel, release: &str, name: &str) -> bool {
    model
        .mlbench
        .runs
        .values()
        .filter(|run| run.is_shown() && run.state.inf_id.is_some())
        .filter_map(|run| run.state.request.as_ref())
        .any(|request| {
            (0..request.num_workers).any(|vm| pod_name(release, &request.name, vm) == name)
        })
}

/// The run with `job_metadata` `{}` (lists) or in full (detail).
pub fn run_json(
    model: &ReadModel,
    run: &RunView,
    release: &str,
    worker: &str,
    detail: bool,
) -> Value {
    let request = run.state.request.clone().unwrap_or_default();
    let metadata = if detail {
        let pods = pods_of(model, run, release);
        let hosts: Vec<String> = pods.iter().map(|pod| pod.ip.clone()).collect();
        json!({
            "stdout": run.state.stdout,
            "stderr": run.state.stderr,
            "pods": pods
                .iter()
                .map(|pod| json!([pod.ip, "default", pod.name, pod.labels]))
                .collect::<Vec<_>>(),
            "command": run.state.inf_id.map(|_| rank_command(&request, worker, &hosts, 0)),
            "master_name": run.state.inf_id.map(|_| pod_name(release, &request.name, 0)),
            "workhorse_pid": run.state.processes.get(&0).map(|p| p.pid),
        })
    } else {
        json!({})
    };
    json!({
        "id": run.id,
        "name": request.name,
        "created_at": format_datetime(&run.created_at),
        "finished_at": run.finished_at.as_ref().map(format_datetime),
        "state": run.state.status.as_str(),
        "job_id": request.job_id.to_string(),
        "job_metadata": metadata,
        "num_workers": request.num_workers,
    })
}
