//! The slot pool: a core infrastructure the facade owns under its service
//! identity, created once through the ordinary `Create` command. Each of its
//! running or configured VMs is a slot; the IM API adds, removes, stops and
//! starts them as for any infrastructure, and the facade follower tells the
//! scheduler after every committed change.

use std::sync::Arc;

use infralog_actors::exec::docker::DockerExecutors;
use infralog_actors::exec::local::LocalExecutor;
use infralog_actors::exec::{Executor, SlotExecutors};
use infralog_actors::runtime::batch::Jobs;
use infralog_events::domain::{InfId, Status, StreamOwner};

use super::BatchSettings;
use crate::facades::core::{CoreAccess, ServiceIdentity};
use crate::facades::FacadeDeps;
use crate::projections::{InfrastructureView, Lifecycle, Projections};
use crate::radl;

/// The Docker cloud's connector type.
const DOCKER: &str = "Docker";

/// The pool's RADL with `count` workers and the system's extra features (an
/// image, for a Docker pool).
pub fn pool_radl(count: u32, image: Option<&str>) -> String {
    let image = image
        .map(|url| format!(" and disk.0.image.url = '{url}'"))
        .unwrap_or_default();
    format!(
        "network private ()\n\
         system batch-worker (cpu.count >= 1 and memory.size >= 512m and \
         net_interface.0.connection = 'private' and disk.0.os.name = 'linux'{image})\n\
         deploy batch-worker {count}\n\
         contextualize ()\n"
    )
}

/// Finds (or records) the pool and creates its core infrastructure unless the
/// log holds it already: a pool recorded before a crash is created then, once.
pub async fn ensure(
    jobs: &Jobs,
    settings: &BatchSettings,
    deps: &FacadeDeps,
) -> Result<InfId, String> {
    let (pool, _) = jobs
        .pool(InfId::random())
        .await
        .map_err(|e| format!("the Batch pool cannot be recorded: {e}"))?;
    let (user, password) = settings.identity();
    let identity = ServiceIdentity {
        facade: "batch",
        username: user,
        // Open mode's is empty: its infrastructures belong to `batch` with the
        // empty password.
        password: Some(password),
    };
    let owner = identity.owner_record(deps).await?;
    let core = CoreAccess::new(deps, owner);
    let plan = || {
        let credentials = identity.with_cloud(&settings.pool_cloud)?;
        let request = radl::parse_body(
            &pool_radl(settings.slots, settings.pool_image.as_deref()),
            radl::Format::Text,
        )
        .map_err(|e| format!("the Batch pool's RADL is invalid: {e}"))?;
        core.plan_create(request, &credentials, true)
            .map_err(|e| format!("the Batch pool cannot be planned: {e}"))
    };
    core.create_once(pool, plan)
        .await
        .map_err(|e| format!("the Batch pool cannot be created: {e}"))?;
    Ok(pool)
}

/// The pool's slots as its view shows them: the usable ones (running or
/// configured VMs, by stream name) and every other live VM with its state.
pub fn slots(
    pool: InfId,
    view: Option<&InfrastructureView>,
) -> (Vec<String>, Vec<(String, String)>) {
    let mut usable = Vec::new();
    let mut others = Vec::new();
    let Some(view) =
        view.filter(|v| !matches!(v.lifecycle, Lifecycle::Destroyed | Lifecycle::Evicted))
    else {
        return (usable, others);
    };
    for (vm, status) in view.vm_states() {
        let name = pool.vm_stream_name(vm);
        match status {
            Status::Running | Status::Configured => usable.push(name),
            other => others.push((name, other.as_str().to_string())),
        }
    }
    (usable, others)
}

/// Tells the scheduler how the pool is now.
pub fn tell(jobs: &Jobs, projections: &Projections, pool: InfId) {
    let (usable, others) = slots(pool, projections.read().infrastructures.get(&pool));
    jobs.observe_pool(usable, others);
}

/// Executors by the cloud of each slot's VM: VMs of the Docker cloud run jobs
/// inside their container, every other VM (Dummy) as local processes.
pub struct PoolExecutors {
    /// The read model, where each VM's cloud is.
    pub projections: Arc<Projections>,
    /// The local executor.
    pub local: Arc<LocalExecutor>,
    /// Runs jobs inside Docker VMs' containers.
    pub docker: DockerExecutors,
}

impl SlotExecutors for PoolExecutors {
    fn for_slot(&self, slot: &str) -> Arc<dyn Executor> {
        let Some(StreamOwner::Vm(inf, vm)) = StreamOwner::parse(slot) else {
            // Not a VM: a run of a build before pools, which ran locally.
            return self.local.clone();
        };
        let model = self.projections.read();
        let Some(vm) = model.infrastructures.get(&inf).and_then(|view| view.vm(vm)) else {
            return self.local.clone();
        };
        if vm.cloud.kind != DOCKER {
            return self.local.clone();
        }
        // A Docker VM never runs a job on the server itself: without a container
        // the start fails and says so.
        let container = vm.cloud_vm_id.as_deref().unwrap_or_default();
        self.docker.executor(&vm.cloud.host, container)
    }
}
