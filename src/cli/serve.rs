//! `infralog serve`: the HTTP server over the event log.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use infralog_events::StoreError;

use crate::app::{Application, Settings, StartError};

/// The arguments of `infralog serve`; each has an `INFRALOG_` environment variable.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "INFRALOG_LISTEN", default_value = "127.0.0.1:8800")]
    pub listen: String,

    /// Directory of the event log (created if missing).
    #[arg(long, env = "INFRALOG_DATA_DIR", default_value = "./infralog-data")]
    pub data_dir: PathBuf,

    /// How long the Dummy cloud's simulated contextualization takes, in milliseconds.
    #[arg(
        long,
        env = "INFRALOG_CONTEXTUALIZATION_DELAY_MS",
        default_value_t = 2000
    )]
    pub contextualization_delay_ms: u64,

    /// Largest request body accepted, in bytes (413 beyond).
    #[arg(long, env = "INFRALOG_MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    pub max_body_bytes: usize,

    /// Seconds a request body may take to arrive once its head is read (408 beyond).
    #[arg(long, env = "INFRALOG_BODY_READ_SECONDS", default_value_t = 60.0)]
    pub body_read_seconds: f64,

    /// Most VMs one request may deploy (400 beyond).
    #[arg(long, env = "INFRALOG_MAX_VMS_PER_REQUEST", default_value_t = 1000)]
    pub max_vms_per_request: u64,

    /// HTTP worker threads (0: one per core).
    #[arg(long, env = "INFRALOG_WORKERS", default_value_t = 0)]
    pub workers: usize,

    /// Pending commands an infrastructure or VM accepts before answering 503.
    #[arg(long, env = "INFRALOG_MAILBOX_CAPACITY", default_value_t = 64)]
    pub mailbox_capacity: usize,

    /// Seconds an idle actor lives before it stops (it is rebuilt from the log when needed).
    #[arg(long, env = "INFRALOG_IDLE_SECONDS", default_value_t = 30)]
    pub idle_seconds: u64,

    /// Seconds between the WARN lines that count clients' malformed requests.
    #[arg(long, hide = true, default_value_t = 10.0)]
    pub client_error_log_seconds: f64,

    /// The event log's page cache, in MiB.
    #[arg(long, env = "INFRALOG_CACHE_MIB", default_value_t = 1)]
    pub cache_mib: u64,
}

/// Runs `infralog serve`: serves the API until interrupted, then stops in order.
pub fn run(args: ServeArgs) -> ExitCode {
    crate::cli::init_tracing();
    crate::cli::client_errors::spawn_reporter(
        Duration::try_from_secs_f64(args.client_error_log_seconds.max(0.01))
            .unwrap_or(Duration::from_secs(10)),
    );
    let mut settings = Settings::new(args.listen, args.data_dir);
    settings.contextualization_delay = Duration::from_millis(args.contextualization_delay_ms);
    settings.limits.max_body_bytes = args.max_body_bytes;
    settings.limits.max_vms_per_request = args.max_vms_per_request;
    settings.limits.body_read_timeout =
        Duration::try_from_secs_f64(args.body_read_seconds.max(0.001)).unwrap_or(Duration::MAX);
    settings.workers = args.workers;
    settings.actors.mailbox_capacity = args.mailbox_capacity.max(1);
    settings.actors.idle_timeout = Duration::from_secs(args.idle_seconds.max(1));
    settings.cache_capacity_bytes = args.cache_mib.max(1) * 1024 * 1024;
    let system = actix_web::rt::System::new();
    let result = system.block_on(async move {
        let application = Application::start(settings).await?;
        application.run_until_stopped().await?;
        Ok::<(), Box<dyn std::error::Error>>(())
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "infralog stopped");
            eprintln!("infralog: {error}");
            if let Some(StartError::Store(StoreError::Damaged(_))) = error.downcast_ref() {
                eprintln!("{}", crate::cli::offline::damage_hint());
            }
            ExitCode::FAILURE
        }
    }
}
