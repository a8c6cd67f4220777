//! An infrastructure's real contextualization runs: the actor starts one when its
//! state says an Ansible run is under way (a new run, or one a restart
//! interrupted), and the run reports back through the actor's mailbox, so that its
//! output and its end are decided and appended like any other command.
//!
//! The run is a task of its own on the actor's arbiter, not a future of the actor's
//! context: an atomic command holds the context, and a run lasts minutes.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use infralog_events::domain::infrastructure::{
    Contextualization, ContextualizationPlan, SlotPhase,
};
use infralog_events::domain::vm::VmEvent;
use infralog_events::domain::{FeatureFact, InfId, VmId};
use infralog_events::EventStore;
use tokio::sync::mpsc;

use super::InfrastructureActor;
use crate::contextualization::ansible::{self, AnsibleJob, JobVm, Output, RunReport};
use crate::runtime::journal;
use crate::runtime::mailbox::{Mailbox, Queued};

/// Output is sent to the log at least this often while a run writes.
const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// A batch is sent once it holds this much.
const FLUSH_BYTES: usize = 64 * 1024;
/// The most output one run keeps; the rest is counted, not stored.
const KEEP_BYTES: usize = 1024 * 1024;

/// Output of a running run, for the actor to record.
pub(super) struct AnsibleOutput {
    pub(super) run: u32,
    pub(super) batches: Vec<(Option<VmId>, String)>,
    /// Counts the report in the actor's mailbox until the handler takes it.
    pub(super) queued: Option<Queued>,
}

impl Message for AnsibleOutput {
    type Result = ();
}

/// A run ended.
pub(super) struct AnsibleEnded {
    pub(super) run: u32,
    pub(super) report: RunReport,
    /// Counts the report in the actor's mailbox until the handler takes it.
    pub(super) queued: Option<Queued>,
}

/// Where a run reports: the actor's address, and its mailbox's count, which each
/// report joins from the moment it is sent.
struct Reporter {
    address: Addr<InfrastructureActor>,
    mailbox: Mailbox,
}

impl Message for AnsibleEnded {
    type Result = ();
}

/// The run a task carries out, so a newer run or a destruction can stop it.
pub(super) struct RunningTask {
    run: u32,
    handle: tokio::task::JoinHandle<()>,
}

impl RunningTask {
    /// Stops the run: dropping its future kills its ansible-playbook.
    pub(super) fn abort(&self) {
        self.handle.abort();
    }
}

impl InfrastructureActor {
    /// Makes the running task match the state: stops a task whose run is no longer
    /// the current one, and starts the current Ansible run when no task carries it.
    pub(super) fn sync_ansible(&mut self, ctx: &mut Context<Self>) {
        let current = match &self.state.phase {
            infralog_events::domain::infrastructure::InfrastructurePhase::Live(live) => {
                match &live.contextualization {
                    Contextualization::Running {
                        run,
                        plan: ContextualizationPlan::Ansible { max_time_s },
                        vm_ids,
                        ..
                    } => Some((*run, *max_time_s, vm_ids.clone(), live.clone())),
                    _ => None,
                }
            }
            _ => None,
        };
        if let Some(task) = &self.ansible {
            if current.as_ref().map(|(run, ..)| *run) == Some(task.run)
                && !task.handle.is_finished()
            {
                return;
            }
            // A newer run replaces it, or the infrastructure is going: dropping the
            // run's future kills its ansible-playbook.
            task.handle.abort();
            self.ansible = None;
        }
        let Some((run, max_time_s, configure, live)) = current else {
            return;
        };
        let reporter = Reporter {
            address: ctx.address(),
            mailbox: self.mailbox.clone(),
        };
        let settings = self.shared.config.ansible.clone();
        let store = Arc::clone(&self.shared.store);
        let inf = self.id;
        let vms: Vec<(VmId, String, infralog_events::domain::CloudRef)> = live
            .vms
            .iter()
            .enumerate()
            .filter(|(_, slot)| slot.phase == SlotPhase::Launched)
            .map(|(id, slot)| (VmId(id as u32), slot.system.clone(), slot.cloud.clone()))
            .collect();
        let radl = live.radl.clone();
        let handle = actix::spawn(async move {
            let report = match settings {
                None => RunReport {
                    configured: false,
                    failed_vms: configure.clone(),
                    message: Some(
                        "Error contextualizing: this server has no ansible-playbook (see `serve --ansible-playbook`)".into(),
                    ),
                },
                Some(settings) => match job(store, inf, run, radl, vms, &configure, max_time_s).await {
                    Ok(job) => execute(&settings, job, run, &reporter).await,
                    Err(message) => RunReport {
                        configured: false,
                        failed_vms: configure.clone(),
                        message: Some(message),
                    },
                },
            };
            // The actor may be gone (destroyed meanwhile): nothing left to record.
            let ended = AnsibleEnded {
                run,
                report,
                queued: Some(reporter.mailbox.enter()),
            };
            let _ = reporter.address.send(ended).await;
        });
        self.ansible = Some(RunningTask { run, handle });
    }
}

/// The job of run `run`: every launched VM with what its cloud set on it.
async fn job(
    store: Arc<dyn EventStore>,
    inf: InfId,
    run: u32,
    radl: String,
    vms: Vec<(VmId, String, infralog_events::domain::CloudRef)>,
    configure: &[VmId],
    max_time_s: u64,
) -> Result<AnsibleJob, String> {
    let mut job_vms = Vec::with_capacity(vms.len());
    for (vm_id, system, cloud) in vms {
        let seen = journal::rehydrate(
            Arc::clone(&store),
            inf.vm_stream_name(vm_id),
            VmFacts::evolve,
        )
        .await
        .map_err(|error| {
            format!("Error contextualizing: the log of VM {vm_id} cannot be read: {error}")
        })?;
        let Some(cloud_vm_id) = seen.cloud_vm_id else {
            continue;
        };
        job_vms.push(JobVm {
            vm_id,
            system,
            cloud,
            cloud_vm_id,
            facts: seen.facts,
            configure: configure.contains(&vm_id),
        });
    }
    Ok(AnsibleJob {
        infrastructure: inf,
        run,
        radl,
        vms: job_vms,
        max_time: Duration::from_secs(max_time_s),
    })
}

/// What a VM's stream says its cloud set on it.
#[derive(Default)]
struct VmFacts {
    cloud_vm_id: Option<String>,
    facts: Vec<FeatureFact>,
}

impl VmFacts {
    fn evolve(mut self, event: &VmEvent) -> Self {
        match event {
            VmEvent::Launched {
                cloud_vm_id, facts, ..
            } => {
                self.cloud_vm_id = Some(cloud_vm_id.clone());
                self.facts.clone_from(facts);
            }
            VmEvent::Altered { facts } => self.facts.extend(facts.iter().cloned()),
            VmEvent::Imported { cloud_vm_id, .. } => {
                self.cloud_vm_id.clone_from(cloud_vm_id);
                self.facts.clear();
            }
            VmEvent::Destroyed => self.cloud_vm_id = None,
            _ => {}
        }
        self
    }
}

/// Runs the job, sending its output to the actor in batches as it comes.
async fn execute(
    settings: &ansible::AnsibleSettings,
    job: AnsibleJob,
    run: u32,
    reporter: &Reporter,
) -> RunReport {
    let (sender, receiver) = mpsc::unbounded_channel();
    let (report, ()) = tokio::join!(
        ansible::run(settings, job, sender),
        forward(receiver, run, reporter)
    );
    report
}

/// Batches a run's output (per VM, at most every [`FLUSH_EVERY`] or
/// [`FLUSH_BYTES`]) and keeps at most [`KEEP_BYTES`] of it; ends when the run
/// drops its sender.
async fn forward(mut receiver: mpsc::UnboundedReceiver<Output>, run: u32, reporter: &Reporter) {
    let mut batcher = Batcher::default();
    let mut tick = tokio::time::interval(FLUSH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            received = receiver.recv() => match received {
                Some(output) => {
                    if batcher.push(output) {
                        send(reporter, run, batcher.take()).await;
                    }
                }
                None => break,
            },
            _ = tick.tick() => send(reporter, run, batcher.take()).await,
        }
    }
    batcher.finish();
    send(reporter, run, batcher.take()).await;
}

async fn send(reporter: &Reporter, run: u32, batches: Vec<(Option<VmId>, String)>) {
    if batches.is_empty() {
        return;
    }
    let output = AnsibleOutput {
        run,
        batches,
        queued: Some(reporter.mailbox.enter()),
    };
    // `send` waits for room in a full mailbox: the output is the run's own work.
    let _ = reporter.address.send(output).await;
}

/// Pending output per VM, in arrival order of the VMs, and what was kept or cut.
#[derive(Default)]
struct Batcher {
    pending: Vec<(Option<VmId>, String)>,
    pending_bytes: usize,
    kept: usize,
    cut: usize,
}

impl Batcher {
    /// Adds output; `true` when the batch is full enough to send now.
    fn push(&mut self, output: Output) -> bool {
        // Once output is cut, all that follows is: the kept part has no holes.
        if self.cut > 0 || output.text.len() > KEEP_BYTES.saturating_sub(self.kept) {
            self.cut += output.text.len();
            return false;
        }
        self.kept += output.text.len();
        self.pending_bytes += output.text.len();
        match self.pending.iter_mut().find(|(vm, _)| *vm == output.vm_id) {
            Some((_, text)) => text.push_str(&output.text),
            None => self.pending.push((output.vm_id, output.text)),
        }
        self.pending_bytes >= FLUSH_BYTES
    }

    /// Says what was cut, once the run has ended.
    fn finish(&mut self) {
        if self.cut > 0 {
            self.pending.push((
                None,
                format!(
                    "[infralog: {} bytes of Ansible output were not kept: a run keeps at most {} bytes]\n",
                    self.cut, KEEP_BYTES
                ),
            ));
        }
    }

    fn take(&mut self) -> Vec<(Option<VmId>, String)> {
        self.pending_bytes = 0;
        std::mem::take(&mut self.pending)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn output(vm: Option<u32>, text: &str) -> Output {
        Output {
            vm_id: vm.map(VmId),
            text: text.to_owned(),
        }
    }

    #[test]
    fn output_is_grouped_per_vm_in_arrival_order() {
        let mut batcher = Batcher::default();
        assert!(!batcher.push(output(None, "PLAY [all]\n")));
        assert!(!batcher.push(output(Some(1), "ok: [vnode-1]\n")));
        assert!(!batcher.push(output(None, "TASK [x]\n")));
        assert_eq!(
            batcher.take(),
            vec![
                (None, "PLAY [all]\nTASK [x]\n".to_owned()),
                (Some(VmId(1)), "ok: [vnode-1]\n".to_owned())
            ]
        );
        assert!(batcher.take().is_empty());
    }

    #[test]
    fn a_full_batch_asks_to_be_sent_and_output_beyond_the_cap_is_counted_not_kept() {
        let mut batcher = Batcher::default();
        let line = "x".repeat(FLUSH_BYTES - 1) + "\n";
        assert!(batcher.push(output(None, &line)));
        batcher.take();
        let mut kept = FLUSH_BYTES;
        while kept + line.len() <= KEEP_BYTES {
            batcher.push(output(None, &line));
            kept += line.len();
        }
        batcher.take();
        assert!(!batcher.push(output(None, &line)));
        assert!(
            !batcher.push(output(Some(0), "tail\n")),
            "cut once, cut after"
        );
        assert!(batcher.take().is_empty());
        batcher.finish();
        let told = batcher.take();
        assert_eq!(told.len(), 1);
        assert!(
            told[0].1.contains(&format!("{} bytes", line.len() + 5)),
            "{}",
            told[0].1
        );
    }
}
