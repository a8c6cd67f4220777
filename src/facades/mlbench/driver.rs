//! How runs drive core infrastructures: created as `POST /infrastructures`
//! plans them and destroyed as `DELETE` does, under the facade's IM identity,
//! so every run's pods can be read and debugged with the IM API.

use std::sync::Arc;

use futures_util::future::LocalBoxFuture;
use infralog_actors::connectors::Connectors;
use infralog_actors::decide::DomainError;
use infralog_actors::runtime::mlbench::{PodAddress, RunDriver};
use infralog_actors::runtime::{ActorError, InfrastructureRequest, Registry};
use infralog_events::domain::mlbench::RunRequest;
use infralog_events::domain::{FactValue, InfId, OwnerRecord};
use infralog_events::{EventStore, Metadata, StoreError, StreamId};

use crate::api::plan::{self, ContextPolicy};
use crate::auth::{self, Identity};
use crate::projections::{CloudState, Projections};
use crate::radl::{self, Radl};

/// How often, and how far apart, a destruction refused for now is tried again.
const DESTROY_TRIES: u32 = 40;
const DESTROY_RETRY_DELAY: std::time::Duration = std::time::Duration::from_millis(250);

/// What the driver needs of the server.
pub struct MlbenchDriver {
    /// The actors.
    pub registry: Registry,
    /// The read model.
    pub projections: Arc<Projections>,
    /// The log, to tell whether an infrastructure was ever recorded.
    pub store: Arc<dyn EventStore>,
    /// The clouds.
    pub connectors: Connectors,
    /// The facade's IM username.
    pub username: String,
    /// The facade's IM password (never logged), if any.
    pub password: Option<String>,
    /// The owner record of that identity.
    pub owner: OwnerRecord,
    /// The VM bound of a request.
    pub max_vms: u64,
    /// How contextualization goes on this server.
    pub policy: ContextPolicy,
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
    fn identity(&self) -> Result<Identity, String> {
        let password = match &self.password {
            Some(password) => format!("; password = {password}"),
            None => String::new(),
        };
        let header = format!(
            "id = mlbench; type = InfrastructureManager; username = {}{password}\\nid = dummy; type = Dummy",
            self.username
        );
        let lines = auth::parse_authorization(&header)
            .map_err(|e| format!("the facade's credentials cannot be read: {e}"))?;
        auth::authenticate(&lines).map_err(|e| format!("the facade's credentials are refused: {e}"))
    }

    fn plan(&self, request: &RunRequest) -> Result<InfrastructureRequest, String> {
        let identity = self.identity()?;
        let image = match &request.custom_image_name {
            Some(custom) => format!("docker://{custom}"),
            None => format!("docker://{}", request.image),
        };
        let document = radl::parse_body(&run_radl(request, &image), radl::Format::Text)
            .map_err(|e| format!("the run's RADL is invalid: {e}"))?;
        let planned = plan::plan_resources(
            &Radl::default(),
            document,
            &identity,
            &self.connectors,
            self.max_vms,
            true,
            self.policy,
        )
        .map_err(|e| format!("the run's RADL is invalid: {}", e.0))?;
        Ok(InfrastructureRequest::Create {
            owners: vec![self.owner.clone()],
            tosca: None,
            resources: planned.request,
            credentials: crate::api::guard::cloud_credentials(&identity),
            asynchronous: false,
        })
    }

    async fn recorded(&self, inf: InfId) -> Result<bool, String> {
        let store = Arc::clone(&self.store);
        tokio::task::spawn_blocking(move || {
            let stream = StreamId::new(inf.stream_name()).map_err(|e| e.to_string())?;
            store
                .stream_version(&stream)
                .map(|version| version > 0)
                .map_err(|e: StoreError| e.to_string())
        })
        .await
        .map_err(|e| format!("the reading task failed: {e}"))?
    }

    /// The VMs of `inf` with their addresses, or why one failed.
    fn pods(&self, inf: InfId) -> Result<Vec<PodAddress>, String> {
        let model = self.projections.read();
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
            if !driver.recorded(inf).await? {
                let planned = driver.plan(&request)?;
                match driver
                    .registry
                    .infrastructure(inf, planned, Metadata::default())
                    .await
                {
                    Ok(_) | Err(ActorError::Domain(DomainError::AlreadyExists)) => {}
                    Err(error) => return Err(error.to_string()),
                }
            }
            driver
                .projections
                .wait_for(driver.store.head_position())
                .await;
            driver.pods(inf)
        })
    }

    fn destroy(&self, inf: InfId) -> LocalBoxFuture<'static, Result<(), String>> {
        let driver = Arc::clone(&self.0);
        Box::pin(async move {
            let mut tries = 0;
            loop {
                let request = InfrastructureRequest::Destroy {
                    force: false,
                    asynchronous: false,
                    credentials: Default::default(),
                };
                match driver
                    .registry
                    .infrastructure(inf, request, Metadata::default())
                    .await
                {
                    Ok(outcome) => {
                        driver.projections.wait_for(outcome.position).await;
                        return Ok(());
                    }
                    Err(ActorError::Domain(DomainError::NotFound)) => return Ok(()),
                    // Still launching or busy: its turn comes.
                    Err(ActorError::Domain(DomainError::IncorrectState))
                    | Err(ActorError::Busy)
                        if tries < DESTROY_TRIES =>
                    {
                        tries += 1;
                        tokio::time::sleep(DESTROY_RETRY_DELAY).await;
                    }
                    Err(error) => return Err(error.to_string()),
                }
            }
        })
    }
}
