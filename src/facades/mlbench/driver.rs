//! How runs drive core infrastructures: created as `POST /infrastructures`
//! plans them and destroyed as `DELETE` does, under the facade's IM identity,
//! so every run's pods can be read and debugged with the IM API.

use std::sync::Arc;

use futures_util::future::LocalBoxFuture;
use infralog_actors::decide::mlbench::RunLoss;
use infralog_actors::runtime::mlbench::{PodAddress, RunDriver};
use infralog_actors::runtime::InfrastructureRequest;
use infralog_events::domain::mlbench::RunRequest;
use infralog_events::domain::{FactValue, InfId, Status};

use crate::facades::core::{CoreAccess, DestroyOnce, ServiceIdentity};
use crate::projections::{CloudState, InfrastructureView, Lifecycle};
use crate::radl;

/// How often, and how far apart, a destruction refused for now is tried again.
const DESTROY_TRIES: u32 = 40;
const DESTROY_RETRY_DELAY: std::time::Duration = std::time::Duration::from_millis(250);

/// What the driver needs of the server.
pub struct MlbenchDriver {
    /// The core, as the facade's identity.
    pub core: CoreAccess,
    /// The facade's IM identity.
    pub identity: ServiceIdentity,
}

/// The RADL of a run: one system whose VMs are its pods, on the Dummy cloud.
pub fn run_radl(request: &RunRequest, image: &str) -> String {
    let cpus = request.num_cpus_milli.div_ceil(1000).max(1);
    format!(
        "network private ()\n\
         system mlbench-worker (\n\
         cpu.count >= {cpus} and\n\
         memory.size >= 512m and\n\
         net_interface.0.connection = 'private' and\n\
         disk.0.os.name = 'linux' and\n\
         disk.0.image.url = '{}'\n\
         )\n\
         deploy mlbench-worker {}\n\
         contextualize ()\n",
        image.replace(['\'', '\\', '\n'], "_"),
        request.num_workers
    )
}

impl MlbenchDriver {
    fn plan(&self, request: &RunRequest) -> Result<InfrastructureRequest, String> {
        let identity = self.identity.with_cloud("id = dummy; type = Dummy")?;
        let image = match &request.custom_image_name {
            Some(custom) => format!("docker://{custom}"),
            None => format!("docker://{}", request.image),
        };
        let document = radl::parse_body(&run_radl(request, &image), radl::Format::Text)
            .map_err(|e| format!("the run's RADL is invalid: {e}"))?;
        self.core
            .plan_create(document, &identity, false)
            .map_err(|e| format!("the run's RADL is invalid: {e}"))
    }

    /// The VMs of `inf` with their addresses, or why one failed.
    fn pods(&self, inf: InfId) -> Result<Vec<PodAddress>, String> {
        let model = self.core.projections.read();
        let view = model
            .infrastructures
            .get(&inf)
            .ok_or("the infrastructure is not recorded")?;
        let mut pods = Vec::new();
        for vm in view.live_vms() {
            if let CloudState::Failed(message) = &vm.cloud_state {
                return Err(format!("VM {} failed: {message}", vm.id));
            }
            pods.push(PodAddress {
                vm: vm.id.0,
                ip: vm_ip(vm).unwrap_or_else(|| "127.0.0.1".into()),
            });
        }
        Ok(pods)
    }
}

/// A VM's `net_interface.0.ip`, as its cloud last set it.
pub fn vm_ip(vm: &crate::projections::VmView) -> Option<String> {
    vm.facts
        .iter()
        .flat_map(|facts| facts.iter())
        .rev()
        .find(|fact| fact.name == "net_interface.0.ip")
        .map(|fact| match &fact.value {
            FactValue::Text(text) => text.clone(),
            FactValue::Number { literal, .. } => literal.clone(),
        })
}

/// The driver shared by runs.
#[derive(Clone)]
pub struct SharedDriver(pub Arc<MlbenchDriver>);

impl RunDriver for SharedDriver {
    fn create(
        &self,
        inf: InfId,
        request: RunRequest,
    ) -> LocalBoxFuture<'static, Result<Vec<PodAddress>, String>> {
        let driver = Arc::clone(&self.0);
        Box::pin(async move {
            driver
                .core
                .create_once(inf, || driver.plan(&request))
                .await?;
            driver.pods(inf)
        })
    }

    fn destroy(&self, inf: InfId) -> LocalBoxFuture<'static, Result<(), String>> {
        let driver = Arc::clone(&self.0);
        Box::pin(async move {
            let mut tries = 0;
            loop {
                match driver.core.destroy_once(inf).await {
                    DestroyOnce::Done => return Ok(()),
                    DestroyOnce::NotYet if tries < DESTROY_TRIES => {
                        tries += 1;
                        tokio::time::sleep(DESTROY_RETRY_DELAY).await;
                    }
                    DestroyOnce::NotYet => return Err("the infrastructure stays busy".into()),
                    DestroyOnce::Failed(error) => return Err(error),
                }
            }
        })
    }
}

/// What a started run has lost of its infrastructure, as the read model shows
/// it: the infrastructure (destroyed, evicted or being destroyed), or the first
/// pod that is no longer up (stopped, off, failed, being removed, removed).
/// Before its processes start a run ignores what this says.
pub fn run_loss(view: Option<&InfrastructureView>) -> Option<RunLoss> {
    let Some(view) = view else {
        return Some(RunLoss::Infrastructure);
    };
    if view.lifecycle != Lifecycle::Live {
        return Some(RunLoss::Infrastructure);
    }
    view.vms.iter().find_map(|vm| {
        let state = if vm.is_live() {
            match vm.status(view.configured) {
                status @ (Status::Stopped | Status::Off | Status::Failed | Status::Deleting) => {
                    status.as_str()
                }
                _ => return None,
            }
        } else {
            "removed"
        };
        Some(RunLoss::Pod {
            vm: vm.id.0,
            state: state.into(),
        })
    })
}
