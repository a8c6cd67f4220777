//! The MODAClouds Batch facade (`/jobs…`): jobs submitted as bundles, run as
//! real processes in sandboxes on the slots of a pool (the VMs of a core
//! infrastructure the facade owns), with HTCondor's job states and actions.
//! Each job is an aggregate (`batch-job-<uuid>`); numbering is the
//! single-writer `batch-queue` stream.

use std::path::PathBuf;
use std::sync::Arc;

use actix_web::{web, HttpResponse};
use infralog_actors::decide::batch::notification_due;
use infralog_actors::exec::docker::DockerExecutors;
use infralog_actors::exec::local::LocalExecutor;
use infralog_actors::runtime::batch::{BatchConfig, Jobs};
use infralog_events::domain::batch::JobStatus;
use infralog_events::domain::InfId;

use super::FacadeDeps;
use crate::api::RequestContext;
use crate::projections::Projections;

mod bundle;
pub(crate) mod form;
mod handlers;
pub mod notify;
pub mod pool;

/// The facade's routes as `(method, template)`, for the OpenAPI document.
pub const ROUTES: &[(&str, &str)] = &[
    ("POST", "/jobs"),
    ("GET", "/jobs"),
    ("GET", "/jobs/{job_id}"),
    ("DELETE", "/jobs/{job_id}"),
    ("PUT", "/jobs/{job_id}/{action}"),
    ("GET", "/jobs/{job_id}/artifacts/{artifact}"),
    ("GET", "/jobs/{job_id}/events"),
];

/// The largest upload (`POST /jobs` body) by default: 16 MiB.
pub const DEFAULT_MAX_UPLOAD: usize = 16 * 1024 * 1024;

/// How the Batch facade runs (the `--batch-…` flags).
#[derive(Debug, Clone)]
pub struct BatchSettings {
    /// The service identity's username (HTTP Basic on every route).
    pub user: Option<String>,
    /// The service identity's password.
    pub password: Option<String>,
    /// Serve without credentials (upstream has none).
    pub no_auth: bool,
    /// VMs the pool is created with (each a slot).
    pub slots: u32,
    /// The largest `POST /jobs` body.
    pub max_upload_bytes: usize,
    /// The pool's cloud: a credential line as in IM's `AUTHORIZATION` header.
    pub pool_cloud: String,
    /// The pool's image (`disk.0.image.url`), if any.
    pub pool_image: Option<String>,
    /// The wait before the second notification try; each later wait doubles.
    pub notify_retry: std::time::Duration,
}

impl BatchSettings {
    /// The service identity as IM credentials: the configured one, or username
    /// `batch` without a password in open mode.
    pub fn identity(&self) -> (String, String) {
        (
            self.user.clone().unwrap_or_else(|| "batch".into()),
            self.password.clone().unwrap_or_default(),
        )
    }
}

/// The pool's cloud by default: IM's Dummy cloud.
pub const DEFAULT_POOL_CLOUD: &str = "id = dummy; type = Dummy";

impl Default for BatchSettings {
    fn default() -> Self {
        BatchSettings {
            user: None,
            password: None,
            no_auth: false,
            slots: 2,
            max_upload_bytes: DEFAULT_MAX_UPLOAD,
            pool_cloud: DEFAULT_POOL_CLOUD.into(),
            pool_image: None,
            notify_retry: std::time::Duration::from_secs(1),
        }
    }
}

/// The running Batch facade.
pub struct Batch {
    jobs: Jobs,
    pool: InfId,
    store: Arc<dyn infralog_events::EventStore>,
    projections: Arc<Projections>,
    settings: BatchSettings,
    root: PathBuf,
    host: String,
    body_timeout: std::time::Duration,
}

impl Batch {
    /// Starts the scheduler over `<data-dir>/batch` and makes sure the pool
    /// exists.
    pub async fn start(settings: &BatchSettings, deps: &FacadeDeps) -> Result<Self, String> {
        let root = deps.data_dir.join("batch");
        std::fs::create_dir_all(&root).map_err(|e| {
            format!(
                "cannot create the Batch sandboxes' directory {}: {e}",
                root.display()
            )
        })?;
        let executors = pool::PoolExecutors {
            projections: Arc::clone(&deps.projections),
            local: Arc::new(LocalExecutor),
            docker: DockerExecutors::new()
                .map_err(|e| format!("cannot start the Batch Docker executor: {e}"))?,
        };
        let jobs = Jobs::new(
            Arc::clone(&deps.store),
            Arc::new(executors),
            Arc::new(notify::HttpNotifier),
            BatchConfig {
                notify_retry: settings.notify_retry,
                mailbox_capacity: 64,
                root: root.clone(),
            },
        );
        let pool = pool::ensure(&jobs, settings, deps).await?;
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "localhost".into());
        Ok(Batch {
            jobs,
            pool,
            store: Arc::clone(&deps.store),
            projections: Arc::clone(&deps.projections),
            settings: settings.clone(),
            root,
            host,
            body_timeout: deps.limits.body_read_timeout,
        })
    }

    /// Kills what earlier runs left, evicts their jobs and queues every waiting
    /// job again, in number order.
    pub async fn resume(&self) {
        let (pending, unnotified): (Vec<(u64, uuid::Uuid)>, Vec<uuid::Uuid>) = {
            let model = self.projections.read();
            let jobs = &model.batch.jobs;
            (
                jobs.values()
                    .filter(|view| view.state.status != JobStatus::Completed)
                    .filter_map(|view| Some((view.state.submission.as_ref()?.cluster_id, view.id)))
                    .collect(),
                jobs.values()
                    .filter(|view| notification_due(&view.state).is_some())
                    .map(|view| view.id)
                    .collect(),
            )
        };
        self.jobs.recover(pending).await;
        for job in unnotified {
            self.jobs.notify(job);
        }
        // The slots as the log has them now; the follower tells every change.
        pool::tell(&self.jobs, &self.projections, self.pool);
    }

    /// The pool's core infrastructure.
    pub fn pool(&self) -> InfId {
        self.pool
    }

    /// Tells the scheduler how the pool is now (the follower calls it after each
    /// committed change of the pool).
    pub fn observe_pool(&self) {
        pool::tell(&self.jobs, &self.projections, self.pool);
    }

    /// Stops the scheduler and the job actors.
    pub fn shutdown(&self) {
        self.jobs.shutdown();
    }

    /// Answers a `/jobs…` request.
    pub async fn dispatch(
        &self,
        context: &RequestContext,
        path: &str,
        payload: web::Payload,
    ) -> HttpResponse {
        handlers::dispatch(self, context, path, payload).await
    }
}
