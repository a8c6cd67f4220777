//! How placements drive core infrastructures: through the same commands the IM API
//! sends (create as `POST /infrastructures` plans it, reconfigure, destroy), under
//! the facade's IM identity, so every infrastructure a placement makes can be read
//! and debugged with the IM API by that identity.

use std::sync::Arc;

use futures_util::future::LocalBoxFuture;
use infralog_actors::connectors::Connectors;
use infralog_actors::decide::placement::CoreState;
use infralog_actors::decide::DomainError;
use infralog_actors::runtime::placement::{AttemptSpec, CoreDriver, Destroyed};
use infralog_actors::runtime::{ActorError, InfrastructureRequest, Registry};
use infralog_events::domain::{InfId, OwnerRecord, Status};
use infralog_events::{EventStore, Metadata, StreamId};

use super::faults::FaultyDummy;
use crate::api::plan::{self, ContextPolicy};
use crate::auth::{self, Identity};
use crate::projections::{CloudState, InfrastructureView, Lifecycle, Projections};
use crate::radl::{self, Radl};

/// How often a reconfiguration is prepared again when the infrastructure changed
/// meanwhile.
const RECONFIGURE_TRIES: usize = 3;

/// What the driver needs of the server.
pub struct ImcDriver {
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
    /// The facade's IM password (never logged).
    pub password: String,
    /// The owner record of that identity, hashed once.
    pub owner: OwnerRecord,
    /// The VM bound of a request.
    pub max_vms: u64,
    /// How contextualization goes on this server.
    pub policy: ContextPolicy,
}

/// The state a placement reads of its infrastructure's view (`None`: not
/// recorded).
pub fn core_state(view: Option<&InfrastructureView>) -> CoreState {
    let Some(view) = view else {
        return CoreState::Gone;
    };
    if matches!(view.lifecycle, Lifecycle::Destroyed | Lifecycle::Evicted) {
        return CoreState::Gone;
    }
    match view.status() {
        Status::Configured => CoreState::Configured,
        Status::Unconfigured => CoreState::Unconfigured,
        Status::Failed => {
            let messages: Vec<&str> = view
                .live_vms()
                .filter_map(|vm| match &vm.cloud_state {
                    CloudState::Failed(message) => Some(&**message),
                    _ => None,
                })
                .collect();
            if messages.is_empty() {
                // No VM failed: contextualization did.
                CoreState::Unconfigured
            } else {
                CoreState::Failed(messages.join("\n"))
            }
        }
        Status::Running => CoreState::Running,
        _ => CoreState::Pending,
    }
}

impl ImcDriver {
    /// The facade's identity with one cloud line, for the site.
    fn identity(&self, spec: &AttemptSpec) -> Result<Identity, String> {
        let header = format!(
            "id = imc; type = InfrastructureManager; username = {}; password = {}\\nid = {}; type = {}",
            self.username,
            self.password,
            spec.site.name,
            FaultyDummy::kind_for(&spec.site)
        );
        let lines = auth::parse_authorization(&header)
            .map_err(|e| format!("the facade's credentials cannot be read: {e}"))?;
        auth::authenticate(&lines).map_err(|e| format!("the facade's credentials are refused: {e}"))
    }

    fn plan(&self, spec: &AttemptSpec) -> Result<InfrastructureRequest, String> {
        let identity = self.identity(spec)?;
        let request = radl::parse_body(&spec.radl, radl::Format::Text)
            .map_err(|e| format!("InvalidRadl: {e}"))?;
        radl::storable::stored_text(&request).map_err(|e| format!("InvalidRadl: {e}"))?;
        let planned = plan::plan_resources(
            &Radl::default(),
            request,
            &identity,
            &self.connectors,
            self.max_vms,
            true,
            self.policy,
        )
        .map_err(|e| format!("InvalidRadl: {}", e.0))?;
        Ok(InfrastructureRequest::Create {
            owners: vec![self.owner.clone()],
            tosca: None,
            resources: planned.request,
            credentials: crate::api::guard::cloud_credentials(&identity),
            asynchronous: true,
        })
    }

    async fn recorded(&self, inf: InfId) -> Result<bool, String> {
        let store = Arc::clone(&self.store);
        tokio::task::spawn_blocking(move || {
            let stream = StreamId::new(inf.stream_name()).map_err(|e| e.to_string())?;
            store
                .stream_version(&stream)
                .map(|version| version > 0)
                .map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| format!("the reading task failed: {e}"))?
    }

    async fn reconfigure_once(&self, inf: InfId) -> Result<(), ActorError> {
        let (version, plan) = {
            let model = self.projections.read();
            let Some(view) = model.infrastructures.get(&inf) else {
                return Err(ActorError::Domain(DomainError::NotFound));
            };
            let stored = radl::parse(&view.radl)
                .map_err(|e| ActorError::Failed(format!("the stored RADL does not parse: {e}")))?;
            let plan = plan::plan_for(&stored, self.policy).map_err(|e| ActorError::Failed(e.0))?;
            (view.version, plan)
        };
        let outcome = self
            .registry
            .infrastructure(
                inf,
                InfrastructureRequest::Reconfigure {
                    expected_version: version,
                    radl: None,
                    plan,
                },
                Metadata::default(),
            )
            .await?;
        self.projections.wait_for(outcome.position).await;
        Ok(())
    }
}

/// The driver shared by placements.
#[derive(Clone)]
pub struct SharedDriver(pub Arc<ImcDriver>);

impl CoreDriver for SharedDriver {
    fn create(&self, inf: InfId, spec: AttemptSpec) -> LocalBoxFuture<'static, Result<(), String>> {
        let driver = Arc::clone(&self.0);
        Box::pin(async move {
            // An attempt created before a crash is followed, never created twice.
            if !driver.recorded(inf).await? {
                let request = driver.plan(&spec)?;
                match driver
                    .registry
                    .infrastructure(inf, request, Metadata::default())
                    .await
                {
                    Ok(_) | Err(ActorError::Domain(DomainError::AlreadyExists)) => {}
                    Err(error) => return Err(error.to_string()),
                }
            }
            // The placement reads the infrastructure's state next: the read model
            // must hold it.
            driver
                .projections
                .wait_for(driver.store.head_position())
                .await;
            Ok(())
        })
    }

    fn reconfigure(&self, inf: InfId) -> LocalBoxFuture<'static, Result<(), String>> {
        let driver = Arc::clone(&self.0);
        Box::pin(async move {
            let mut last = String::new();
            for _ in 0..RECONFIGURE_TRIES {
                match driver.reconfigure_once(inf).await {
                    Ok(()) => return Ok(()),
                    Err(ActorError::Domain(DomainError::Conflict { .. })) => {
                        last = "the infrastructure kept changing".into();
                        driver
                            .projections
                            .wait_for(driver.store.head_position())
                            .await;
                    }
                    Err(error) => return Err(error.to_string()),
                }
            }
            Err(last)
        })
    }

    fn destroy(&self, inf: InfId) -> LocalBoxFuture<'static, Destroyed> {
        let driver = Arc::clone(&self.0);
        Box::pin(async move {
            let request = InfrastructureRequest::Destroy {
                force: false,
                asynchronous: false,
                credentials: Default::default(),
            };
            let result = driver
                .registry
                .infrastructure(inf, request, Metadata::default())
                .await;
            match result {
                Ok(outcome) => {
                    driver.projections.wait_for(outcome.position).await;
                    Destroyed::Done
                }
                Err(ActorError::Domain(DomainError::NotFound)) => Destroyed::Done,
                Err(ActorError::Domain(DomainError::IncorrectState)) | Err(ActorError::Busy) => {
                    Destroyed::NotYet
                }
                Err(error) => Destroyed::Failed(error.to_string()),
            }
        })
    }

    fn observe(&self, inf: InfId) -> CoreState {
        core_state(self.0.projections.read().infrastructures.get(&inf))
    }

    fn success_ratio(&self, site: &str) -> f64 {
        self.0
            .projections
            .read()
            .imc
            .success_ratio(site, chrono::Utc::now())
    }
}
