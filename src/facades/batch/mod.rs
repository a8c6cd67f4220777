//! The MODAClouds Batch facade (`/jobs…`): jobs submitted as bundles, run as
//! real processes in sandboxes on local slots, with HTCondor's job states and
//! actions. Each job is an aggregate (`batch-job-<uuid>`); numbering is the
//! single-writer `batch-queue` stream.

use std::path::PathBuf;
use std::sync::Arc;

use actix_web::{web, HttpResponse};
use infralog_actors::exec::local::LocalExecutor;
use infralog_actors::runtime::batch::{BatchConfig, Jobs};

use super::FacadeDeps;
use crate::api::RequestContext;
use crate::projections::Projections;

mod bundle;
pub(crate) mod form;
mod handlers;

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
    /// Jobs that run at once.
    pub slots: u32,
    /// The largest `POST /jobs` body.
    pub max_upload_bytes: usize,
}

impl Default for BatchSettings {
    fn default() -> Self {
        BatchSettings {
            user: None,
            password: None,
            no_auth: false,
            slots: 2,
            max_upload_bytes: DEFAULT_MAX_UPLOAD,
        }
    }
}

/// The running Batch facade.
pub struct Batch {
    jobs: Jobs,
    projections: Arc<Projections>,
    settings: BatchSettings,
    root: PathBuf,
    host: String,
    body_timeout: std::time::Duration,
}

impl Batch {
    /// Starts the scheduler over `<data-dir>/batch`.
    pub fn start(settings: &BatchSettings, deps: &FacadeDeps) -> Result<Self, String> {
        let root = deps.data_dir.join("batch");
        std::fs::create_dir_all(&root).map_err(|e| {
            format!(
                "cannot create the Batch sandboxes' directory {}: {e}",
                root.display()
            )
        })?;
        let jobs = Jobs::new(
            Arc::clone(&deps.store),
            Arc::new(LocalExecutor),
            BatchConfig {
                slots: settings.slots.max(1),
                mailbox_capacity: 64,
                root: root.clone(),
            },
        );
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "localhost".into());
        Ok(Batch {
            jobs,
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
        let pending: Vec<(u64, uuid::Uuid)> = {
            let model = self.projections.read();
            model
                .batch
                .jobs
                .values()
                .filter(|view| {
                    view.state.status != infralog_events::domain::batch::JobStatus::Completed
                })
                .filter_map(|view| Some((view.state.submission.as_ref()?.cluster_id, view.id)))
                .collect()
        };
        self.jobs.recover(pending).await;
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
