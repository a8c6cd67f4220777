//! The MLBench facade (`/api/…`): the mlbench dashboard's REST API. Each run
//! is an aggregate (`mlbench-run-<n>`) admitted by the single-writer
//! `mlbench-admission` stream; it is an ordinary core infrastructure whose VMs
//! are its pods, with a real worker process per rank. Metric points are kept
//! in the log's `metrics` tree, not as events.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use actix_web::{web, HttpResponse};
use infralog_actors::decide::mlbench::AdmissionMode;
use infralog_actors::exec::local::LocalExecutor;
use infralog_actors::runtime::mlbench::{MlbenchConfig, Runs};
use infralog_events::domain::mlbench::RunStatus;
use infralog_events::store::metrics::MetricStore;

use super::core::{CoreAccess, ServiceIdentity};
use super::FacadeDeps;
use crate::api::RequestContext;
use crate::projections::Projections;

pub mod driver;
pub(crate) mod handlers;
mod metrics;
pub mod query;
pub mod request;
mod views;
pub mod zip;

/// Upstream's official images (`mlbench/…:latest`); each runs the built-in
/// worker here.
pub const DEFAULT_IMAGES: [&str; 6] = [
    "mlbench/pytorch-cifar10-resnet20-all-reduce:latest",
    "mlbench/pytorch-cifar10-resnet20-ddp:latest",
    "mlbench/pytorch-linear-logistic-regression-all-reduce:latest",
    "mlbench/pytorch-wmt16-gnmt-all-reduce:latest",
    "mlbench/pytorch-wmt17-transformer-all-reduce:latest",
    "mlbench/tensorflow-cifar10-resnet:latest",
];

/// How the MLBench facade runs (the `--mlbench-…` flags).
#[derive(Debug, Clone)]
pub struct MlbenchSettings {
    /// The service identity's username; with a password, Basic on every route.
    pub user: Option<String>,
    /// The service identity's password.
    pub password: Option<String>,
    /// The most workers of a run (and of all started runs, in queue mode).
    pub max_workers: u32,
    /// The official images.
    pub images: Vec<String>,
    /// Exclusive (the seed's rule) or queued admission.
    pub admission: AdmissionMode,
    /// The release in pod names.
    pub release: String,
    /// How often pods' `/proc` metrics are sampled.
    pub sample_every: Duration,
    /// The program official images run with `mlbench-worker` (this binary by
    /// default; tests running the server in-process name the real binary).
    pub worker_program: Option<PathBuf>,
}

impl Default for MlbenchSettings {
    fn default() -> Self {
        MlbenchSettings {
            user: None,
            password: None,
            max_workers: 4,
            images: DEFAULT_IMAGES.iter().map(|s| (*s).to_string()).collect(),
            admission: AdmissionMode::Exclusive,
            release: "infralog".into(),
            sample_every: Duration::from_millis(5000),
            worker_program: None,
        }
    }
}

impl MlbenchSettings {
    /// Whether routes need credentials.
    pub fn requires_auth(&self) -> bool {
        self.user.is_some() && self.password.is_some()
    }
}

/// The running MLBench facade.
pub struct Mlbench {
    runs: Runs,
    projections: Arc<Projections>,
    /// The log, for a run's `…/events`.
    store: Arc<dyn infralog_events::EventStore>,
    metrics: Arc<dyn MetricStore>,
    settings: MlbenchSettings,
    worker_program: PathBuf,
    max_body: usize,
    body_timeout: Duration,
}

impl Mlbench {
    /// Hashes the service identity and starts admission.
    pub async fn start(settings: &MlbenchSettings, deps: &FacadeDeps) -> Result<Self, String> {
        let root = deps.data_dir.join("mlbench");
        std::fs::create_dir_all(&root).map_err(|e| {
            format!(
                "cannot create the MLBench sandboxes' directory {}: {e}",
                root.display()
            )
        })?;
        let metrics = deps
            .metrics
            .clone()
            .ok_or("this store keeps no metric points: the MLBench facade cannot start")?;
        let worker_program = match &settings.worker_program {
            Some(program) => program.clone(),
            None => std::env::current_exe()
                .map_err(|e| format!("cannot find this program for the MLBench workers: {e}"))?,
        };
        let identity = ServiceIdentity {
            facade: "mlbench",
            username: settings.user.clone().unwrap_or_else(|| "mlbench".into()),
            password: settings.password.clone(),
        };
        let owner = identity.owner_record(deps).await?;
        let driver = driver::MlbenchDriver {
            core: CoreAccess::new(deps, owner),
            identity,
        };
        let runs = Runs::new(
            Arc::clone(&deps.store),
            Arc::clone(&metrics),
            Arc::new(LocalExecutor),
            Arc::new(driver::SharedDriver(Arc::new(driver))),
            MlbenchConfig {
                mode: settings.admission,
                max_workers: settings.max_workers.max(1),
                root,
                mailbox_capacity: 64,
                sample_every: settings.sample_every.max(Duration::from_millis(50)),
                api_url: format!("http://127.0.0.1:{}", deps.api_port),
                worker_program: worker_program.clone(),
                release: settings.release.clone(),
                run_tokens: settings.requires_auth(),
            },
        );
        Ok(Mlbench {
            runs,
            projections: Arc::clone(&deps.projections),
            store: Arc::clone(&deps.store),
            metrics,
            settings: settings.clone(),
            worker_program,
            max_body: deps.limits.max_body_bytes,
            body_timeout: deps.limits.body_read_timeout,
        })
    }

    /// Fails the runs a restart interrupted and puts waiting runs back in
    /// admission.
    pub async fn resume(&self) {
        let pending: Vec<u64> = {
            let model = self.projections.read();
            model
                .mlbench
                .runs
                .values()
                .filter(|view| view.state.status != RunStatus::Deleted)
                .filter(|view| {
                    !view.state.status.is_ended()
                        || view.state.inf_id.is_some_and(|inf| {
                            model
                                .infrastructures
                                .get(&inf)
                                .is_some_and(|core| core.is_served())
                        })
                })
                .map(|view| view.id)
                .collect()
        };
        self.runs.recover(pending).await;
    }

    /// The runs' handle.
    pub fn runs(&self) -> Runs {
        self.runs.clone()
    }

    /// Stops admission and the run actors.
    pub fn shutdown(&self) {
        self.runs.shutdown();
    }

    /// Answers an `/api…` request.
    pub async fn dispatch(
        &self,
        context: &RequestContext,
        path: &str,
        payload: web::Payload,
    ) -> HttpResponse {
        handlers::dispatch(self, context, path, payload).await
    }
}
