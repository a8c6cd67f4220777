//! How placements drive core infrastructures: through the same commands the IM API
//! sends (create as `POST /infrastructures` plans it, reconfigure, destroy), under
//! the facade's IM identity, so every infrastructure a placement makes can be read
//! and debugged with the IM API by that identity.

use std::sync::Arc;

use futures_util::future::LocalBoxFuture;
use infralog_actors::decide::placement::CoreState;
use infralog_actors::decide::DomainError;
use infralog_actors::runtime::placement::{AttemptSpec, CoreDriver, Destroyed};
use infralog_actors::runtime::{ActorError, InfrastructureRequest};
use infralog_events::domain::{InfId, Status};
use infralog_events::Metadata;

use super::faults::FaultyDummy;
use crate::api::plan;
use crate::facades::core::{CoreAccess, DestroyOnce, ServiceIdentity};
use crate::projections::{CloudState, InfrastructureView, Lifecycle};
use crate::radl;

/// How often a reconfiguration is prepared again when the infrastructure changed
/// meanwhile.
const RECONFIGURE_TRIES: usize = 3;

/// What the driver needs of the server.
pub struct ImcDriver {
    /// The core, as the facade's identity.
    pub core: CoreAccess,
    /// The facade's IM identity.
    pub identity: ServiceIdentity,
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
    fn plan(&self, spec: &AttemptSpec) -> Result<InfrastructureRequest, String> {
        let cloud = format!(
            "id = {}; type = {}",
            spec.site.name,
            FaultyDummy::kind_for(&spec.site)
        );
        let identity = self.identity.with_cloud(&cloud)?;
        let request = radl::parse_body(&spec.radl, radl::Format::Text)
            .map_err(|e| format!("InvalidRadl: {e}"))?;
        radl::storable::stored_text(&request).map_err(|e| format!("InvalidRadl: {e}"))?;
        self.core
            .plan_create(request, &identity, true)
            .map_err(|e| format!("InvalidRadl: {e}"))
    }

    async fn reconfigure_once(&self, inf: InfId) -> Result<(), ActorError> {
        let (version, plan) = {
            let model = self.core.projections.read();
            let Some(view) = model.infrastructures.get(&inf) else {
                return Err(ActorError::Domain(DomainError::NotFound));
            };
            let stored = radl::parse(&view.radl)
                .map_err(|e| ActorError::Failed(format!("the stored RADL does not parse: {e}")))?;
            let plan =
                plan::plan_for(&stored, self.core.policy).map_err(|e| ActorError::Failed(e.0))?;
            (view.version, plan)
        };
        let outcome = self
            .core
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
        self.core.projections.wait_for(outcome.position).await;
        Ok(())
    }
}

/// The driver shared by placements.
#[derive(Clone)]
pub struct SharedDriver(pub Arc<ImcDriver>);

impl CoreDriver for SharedDriver {
    fn create(&self, inf: InfId, spec: AttemptSpec) -> LocalBoxFuture<'static, Result<(), String>> {
        let driver = Arc::clone(&self.0);
        Box::pin(async move { driver.core.create_once(inf, || driver.plan(&spec)).await })
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
                        let core = &driver.core;
                        core.projections.wait_for(core.store.head_position()).await;
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
            match driver.core.destroy_once(inf).await {
                DestroyOnce::Done => Destroyed::Done,
                DestroyOnce::NotYet => Destroyed::NotYet,
                DestroyOnce::Failed(error) => Destroyed::Failed(error),
            }
        })
    }

    fn observe(&self, inf: InfId) -> CoreState {
        core_state(self.0.core.projections.read().infrastructures.get(&inf))
    }

    fn success_ratio(&self, site: &str) -> f64 {
        self.0
            .core
            .projections
            .read()
            .imc
            .success_ratio(site, chrono::Utc::now())
    }
}
