//! `infralog serve`: the HTTP server over the event log.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use actix_web::dev::ServerHandle;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use infralog_events::StoreError;

use crate::app::{Application, Settings, StartError};
use infralog_actors::contextualization::ansible::AnsibleSettings;

/// The arguments of `infralog serve`; each has an `INFRALOG_` environment variable.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// How log lines are written: `text`, or `json` (one object per line).
    #[arg(long, env = "INFRALOG_LOG_FORMAT", value_enum, default_value_t = crate::cli::LogFormat::Text)]
    pub log_format: crate::cli::LogFormat,

    /// Address to listen on.
    #[arg(long, env = "INFRALOG_LISTEN", default_value = "127.0.0.1:8800")]
    pub listen: String,

    /// Directory of the event log (created if missing). With `--store`, it keeps
    /// only this instance's own files (its instance id, Ansible runs, uploads).
    #[arg(long, env = "INFRALOG_DATA_DIR", default_value = "./infralog-data")]
    pub data_dir: PathBuf,

    /// Keep the event log in PostgreSQL (`postgres://user:password@host/db`)
    /// instead of sled in `--data-dir`: several instances may share it.
    #[arg(long, env = "INFRALOG_STORE", hide_env_values = true)]
    pub store: Option<String>,

    /// With `--store`: seconds the active instance's lease lasts without a
    /// renewal; a standby takes over an instance that died or froze after it.
    #[arg(long, env = "INFRALOG_LEASE_SECONDS", default_value_t = 5.0)]
    pub lease_seconds: f64,

    /// With `--store`: the URL other instances reach this one's API at, kept
    /// with the lease while this instance is the active one (standbys forward
    /// writes to it). By default `http://` and the `--listen` address with its
    /// port (loopback when the host is unspecified).
    #[arg(long, env = "INFRALOG_ADVERTISE")]
    pub advertise: Option<String>,

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

    /// Most VM launches calling their clouds at once, over every infrastructure.
    #[arg(long, env = "INFRALOG_MAX_SIMULTANEOUS_LAUNCHES", default_value_t = 16)]
    pub max_simultaneous_launches: usize,

    /// The `ansible-playbook` that configures VMs of real clouds (default: the one
    /// on PATH). Without one, such VMs can only be deployed with `contextualize ()`.
    #[arg(long, env = "INFRALOG_ANSIBLE_PLAYBOOK")]
    pub ansible_playbook: Option<PathBuf>,

    /// Where roles named by `ansible.roles.X` applications are found (no Galaxy
    /// server is asked).
    #[arg(long, env = "INFRALOG_ANSIBLE_ROLES_PATH")]
    pub ansible_roles_path: Option<PathBuf>,

    /// Where collections named by `ansible.collections.X` applications are found.
    #[arg(long, env = "INFRALOG_ANSIBLE_COLLECTIONS_PATH")]
    pub ansible_collections_path: Option<PathBuf>,

    /// Keep each contextualization run's files under `<data-dir>/ansible-runs/` after
    /// it ends, to debug or replay it by hand. They hold vault passwords.
    #[arg(long, env = "INFRALOG_KEEP_ANSIBLE_RUNS")]
    pub keep_ansible_runs: bool,

    /// Seconds between two comparisons of a real cloud's VM with the log.
    #[arg(long, env = "INFRALOG_OBSERVE_SECONDS", default_value_t = 5.0)]
    pub observe_seconds: f64,

    /// A label (`KEY=VALUE`) put on everything created in Docker, besides
    /// infralog's own; repeatable.
    #[arg(
        long = "docker-label",
        env = "INFRALOG_DOCKER_LABELS",
        value_delimiter = ','
    )]
    pub docker_labels: Vec<String>,

    /// Facades to serve besides the IM API, comma-separated (`imc`); none by default.
    #[arg(long, env = "INFRALOG_FACADES", value_delimiter = ',')]
    pub facades: Vec<String>,

    /// IMC facade: the service identity's username (HTTP Basic on `/v1/…`, and the
    /// IM owner of every infrastructure the facade creates).
    #[arg(long, env = "INFRALOG_IMC_USER")]
    pub imc_user: Option<String>,

    /// IMC facade: the service identity's password.
    #[arg(long, env = "INFRALOG_IMC_PASSWORD", hide_env_values = true)]
    pub imc_password: Option<String>,

    /// IMC facade: the site catalogue, a JSON array of sites (default: one Dummy site).
    #[arg(long, env = "INFRALOG_IMC_SITES")]
    pub imc_sites: Option<PathBuf>,

    /// IMC facade: seconds a waiting deployment waits before it is tried again.
    #[arg(long, env = "INFRALOG_IMC_WAITING_RETRY_S", default_value_t = 800.0)]
    pub imc_waiting_retry_s: f64,

    /// IMC facade: seconds an attempt may take in all to be configured.
    #[arg(long, env = "INFRALOG_IMC_ATTEMPT_TIMEOUT_S", default_value_t = 8000.0)]
    pub imc_attempt_timeout_s: f64,

    /// IMC facade: seconds an attempt's infrastructure may take to be running.
    #[arg(long, env = "INFRALOG_IMC_RUNNING_TIMEOUT_S", default_value_t = 600.0)]
    pub imc_running_timeout_s: f64,

    /// IMC facade: seconds an attempt's infrastructure may take to be configured
    /// once running (or contextualized again).
    #[arg(
        long,
        env = "INFRALOG_IMC_CONFIGURED_TIMEOUT_S",
        default_value_t = 600.0
    )]
    pub imc_configured_timeout_s: f64,

    /// IMC facade: seconds a deployment may stay `creating` before it is deleted.
    #[arg(
        long,
        env = "INFRALOG_IMC_CREATING_TIMEOUT_S",
        default_value_t = 7200.0
    )]
    pub imc_creating_timeout_s: f64,

    /// IMC facade: seconds before a failed deletion is tried again.
    #[arg(long, env = "INFRALOG_IMC_DELETION_RETRY_S", default_value_t = 7200.0)]
    pub imc_deletion_retry_s: f64,

    /// IMC facade: seconds a deleted or unable deployment is kept before it is purged.
    #[arg(long, env = "INFRALOG_IMC_PURGE_AFTER_S", default_value_t = 604_800.0)]
    pub imc_purge_after_s: f64,

    /// IMC facade: reconfigurations of an unconfigured attempt before it fails.
    #[arg(long, env = "INFRALOG_IMC_RECONFIGURES", default_value_t = 6)]
    pub imc_reconfigures: u32,

    /// IMC facade: tries of one flavour on one site per round, after the first.
    #[arg(long, env = "INFRALOG_IMC_RETRIES_PER_FLAVOUR", default_value_t = 2)]
    pub imc_retries_per_flavour: u32,

    /// Batch facade: the service identity's username (HTTP Basic on `/jobs…`).
    #[arg(long, env = "INFRALOG_BATCH_USER")]
    pub batch_user: Option<String>,

    /// Batch facade: the service identity's password.
    #[arg(long, env = "INFRALOG_BATCH_PASSWORD", hide_env_values = true)]
    pub batch_password: Option<String>,

    /// Batch facade: serve `/jobs…` without credentials (uploaded code runs as the
    /// server's user: only on a trusted network).
    #[arg(long, env = "INFRALOG_BATCH_NO_AUTH")]
    pub batch_no_auth: bool,

    /// Batch facade: VMs the slot pool is created with (each runs one job at a
    /// time); add or remove VMs of the pool through the IM API later.
    #[arg(long, env = "INFRALOG_BATCH_SLOTS", default_value_t = 2)]
    pub batch_slots: u32,

    /// Batch facade: the pool's cloud, a credential line as in IM's
    /// AUTHORIZATION header (`id = docker; type = Docker` runs jobs inside the
    /// VMs' containers).
    #[arg(long, env = "INFRALOG_BATCH_POOL_CLOUD", default_value = crate::facades::batch::DEFAULT_POOL_CLOUD)]
    pub batch_pool_cloud: String,

    /// Batch facade: the pool VMs' image (`disk.0.image.url`, such as
    /// `docker://debian:bookworm`).
    #[arg(long, env = "INFRALOG_BATCH_POOL_IMAGE")]
    pub batch_pool_image: Option<String>,

    /// Batch facade: milliseconds before the second try at a job's notification;
    /// the third waits twice as long.
    #[arg(long, env = "INFRALOG_BATCH_NOTIFY_RETRY_MS", default_value_t = 1000)]
    pub batch_notify_retry_ms: u64,

    /// Batch facade: the largest `POST /jobs` body, in bytes (16 MiB).
    #[arg(long, env = "INFRALOG_BATCH_MAX_UPLOAD_BYTES", default_value_t = crate::facades::batch::DEFAULT_MAX_UPLOAD)]
    pub batch_max_upload_bytes: usize,

    /// MLBench facade: the service identity's username (with a password, HTTP
    /// Basic on `/api/…`; open otherwise, as upstream).
    #[arg(long, env = "INFRALOG_MLBENCH_USER")]
    pub mlbench_user: Option<String>,

    /// MLBench facade: the service identity's password.
    #[arg(long, env = "INFRALOG_MLBENCH_PASSWORD", hide_env_values = true)]
    pub mlbench_password: Option<String>,

    /// MLBench facade: the most workers of a run (and of all started runs with
    /// `--mlbench-admission queue`).
    #[arg(long, env = "INFRALOG_MLBENCH_MAX_WORKERS", default_value_t = 4)]
    pub mlbench_max_workers: u32,

    /// MLBench facade: the official images, comma-separated (upstream's
    /// `mlbench/…:latest` names by default); each runs `infralog mlbench-worker`.
    #[arg(long, env = "INFRALOG_MLBENCH_IMAGES", value_delimiter = ',')]
    pub mlbench_images: Vec<String>,

    /// MLBench facade: `exclusive` (one active run, the seed's rule) or `queue`
    /// (smallest runs first within --mlbench-max-workers, upstream's).
    #[arg(long, env = "INFRALOG_MLBENCH_ADMISSION", default_value = "exclusive")]
    pub mlbench_admission: String,

    /// MLBench facade: the release name in pod names.
    #[arg(long, env = "INFRALOG_MLBENCH_RELEASE", default_value = "infralog")]
    pub mlbench_release: String,

    /// MLBench facade: milliseconds between two samples of the pods' `/proc`
    /// metrics.
    #[arg(long, env = "INFRALOG_MLBENCH_SAMPLE_MS", default_value_t = 5000)]
    pub mlbench_sample_ms: u64,

    /// MLBench facade: the program official images run with `mlbench-worker`
    /// (this binary by default).
    #[arg(long, env = "INFRALOG_MLBENCH_WORKER_PROGRAM")]
    pub mlbench_worker_program: Option<PathBuf>,
}

/// Seconds from a flag, at least a millisecond.
fn seconds(value: f64) -> Duration {
    Duration::try_from_secs_f64(value.max(0.001)).unwrap_or(Duration::MAX)
}

/// The facades the flags enable, with their settings.
fn facade_settings(args: &ServeArgs) -> Result<crate::facades::FacadeSettings, String> {
    let mut facades = crate::facades::FacadeSettings::enable(&args.facades)?;
    if let Some(imc) = facades.imc.as_mut() {
        imc.user = args.imc_user.clone();
        imc.password = args.imc_password.clone();
        if let Some(path) = &args.imc_sites {
            imc.sites = crate::facades::imc::load_catalogue(path)?;
        }
        let timings = &mut imc.placement.timings;
        timings.waiting_retry = seconds(args.imc_waiting_retry_s);
        timings.attempt_timeout = seconds(args.imc_attempt_timeout_s);
        timings.running_timeout = seconds(args.imc_running_timeout_s);
        timings.configured_timeout = seconds(args.imc_configured_timeout_s);
        timings.creating_timeout = seconds(args.imc_creating_timeout_s);
        timings.deletion_retry = seconds(args.imc_deletion_retry_s);
        timings.purge_after = seconds(args.imc_purge_after_s);
        imc.placement.idle_timeout = Duration::from_secs(args.idle_seconds.max(1));
        imc.placement.max_reconfigures = args.imc_reconfigures;
        imc.placement.retries_per_flavour = args.imc_retries_per_flavour;
        imc.placement.mailbox_capacity = args.mailbox_capacity.max(1);
        if imc.user.is_none() || imc.password.is_none() {
            tracing::warn!("the IMC facade has no --imc-user/--imc-password: every request but /v1/health is refused");
        }
    }
    if let Some(batch) = facades.batch.as_mut() {
        batch.user = args.batch_user.clone();
        batch.password = args.batch_password.clone();
        batch.no_auth = args.batch_no_auth;
        batch.slots = args.batch_slots.max(1);
        batch.max_upload_bytes = args.batch_max_upload_bytes;
        batch.pool_cloud = args.batch_pool_cloud.clone();
        batch.pool_image = args.batch_pool_image.clone();
        batch.notify_retry = Duration::from_millis(args.batch_notify_retry_ms);
        if !batch.no_auth && (batch.user.is_none() || batch.password.is_none()) {
            tracing::warn!("the Batch facade has no --batch-user/--batch-password and no --batch-no-auth: every request is refused");
        }
    }
    if let Some(mlbench) = facades.mlbench.as_mut() {
        mlbench.user = args.mlbench_user.clone();
        mlbench.password = args.mlbench_password.clone();
        mlbench.max_workers = args.mlbench_max_workers.max(1);
        if !args.mlbench_images.is_empty() {
            mlbench.images = args.mlbench_images.clone();
        }
        mlbench.admission =
            infralog_actors::decide::mlbench::AdmissionMode::parse(&args.mlbench_admission)
                .ok_or_else(|| {
                    format!(
                        "--mlbench-admission {:?} is neither exclusive nor queue",
                        args.mlbench_admission
                    )
                })?;
        let release = &args.mlbench_release;
        if release.is_empty()
            || !release
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return Err(format!(
                "--mlbench-release {release:?} must be letters, digits and '-'"
            ));
        }
        mlbench.release = release.clone();
        mlbench.sample_every = Duration::from_millis(args.mlbench_sample_ms.max(50));
        mlbench.worker_program = args.mlbench_worker_program.clone();
    }
    Ok(facades)
}

/// The `ansible-playbook` to use: the one given, or the first on PATH; `None`
/// when there is none or it does not run.
fn find_ansible_playbook(given: Option<PathBuf>) -> Option<PathBuf> {
    let candidate = given.or_else(|| {
        std::env::var_os("PATH").and_then(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join("ansible-playbook"))
                .find(|candidate| candidate.is_file())
        })
    })?;
    let runs = std::process::Command::new(&candidate)
        .arg("--version")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    // Runs start in their own directory: a relative path must not depend on it.
    runs.then(|| std::fs::canonicalize(&candidate).unwrap_or(candidate))
}

/// Runs `infralog serve`: serves the API until interrupted, then stops in order.
pub fn run(args: ServeArgs) -> ExitCode {
    crate::cli::init_tracing_as(args.log_format);
    crate::cli::client_errors::spawn_reporter(
        Duration::try_from_secs_f64(args.client_error_log_seconds.max(0.01))
            .unwrap_or(Duration::from_secs(10)),
    );
    let facades = match facade_settings(&args) {
        Ok(facades) => facades,
        Err(message) => {
            eprintln!("infralog: {message}");
            return ExitCode::from(2);
        }
    };
    let store = match args
        .store
        .as_deref()
        .map(crate::storage::StoreLocation::parse)
    {
        None => crate::storage::StoreLocation::Embedded,
        Some(Ok(location)) => location,
        Some(Err(message)) => {
            eprintln!("infralog: {message}");
            return ExitCode::from(2);
        }
    };
    let mut settings = Settings::new(args.listen, args.data_dir);
    settings.store = store;
    settings.lease =
        Duration::try_from_secs_f64(args.lease_seconds.max(0.3)).unwrap_or(Duration::from_secs(5));
    settings.advertise = args.advertise.clone();
    settings.contextualization_delay = Duration::from_millis(args.contextualization_delay_ms);
    settings.limits.max_body_bytes = args.max_body_bytes;
    settings.limits.max_vms_per_request = args.max_vms_per_request;
    settings.limits.body_read_timeout =
        Duration::try_from_secs_f64(args.body_read_seconds.max(0.001)).unwrap_or(Duration::MAX);
    settings.workers = args.workers;
    settings.actors.mailbox_capacity = args.mailbox_capacity.max(1);
    settings.actors.idle_timeout = Duration::from_secs(args.idle_seconds.max(1));
    settings.cache_capacity_bytes = args.cache_mib.max(1) * 1024 * 1024;
    settings.actors.max_simultaneous_launches = args.max_simultaneous_launches.max(1);
    settings.actors.observe_interval = Duration::try_from_secs_f64(args.observe_seconds.max(0.1))
        .unwrap_or(Duration::from_secs(5));
    let mut docker_labels = Vec::new();
    for label in &args.docker_labels {
        match label.split_once('=') {
            Some((key, value)) if !key.is_empty() => {
                docker_labels.push((key.to_owned(), value.to_owned()))
            }
            _ => {
                eprintln!("infralog: --docker-label {label:?} is not KEY=VALUE");
                return ExitCode::from(2);
            }
        }
    }
    settings.docker_labels = docker_labels;
    settings.facades = facades;
    match find_ansible_playbook(args.ansible_playbook.clone()) {
        Some(playbook) => {
            tracing::info!(playbook = %playbook.display(), "contextualization with Ansible is available");
            settings.actors.ansible = Some(AnsibleSettings {
                playbook,
                work_dir: settings.data_dir.join("ansible-runs"),
                roles_path: args.ansible_roles_path.clone(),
                collections_path: args.ansible_collections_path.clone(),
                keep_runs: args.keep_ansible_runs,
            });
        }
        None => tracing::warn!(
            given = ?args.ansible_playbook,
            "no runnable ansible-playbook: VMs of real clouds can be deployed only with `contextualize ()`"
        ),
    }
    let system = actix_web::rt::System::new();
    let result = system.block_on(async move {
        // Signals are handled here, not by each HTTP server: a standby that
        // takes over starts a new server, and a SIGTERM that arrives meanwhile
        // must still stop the process.
        let stopping = Arc::new(AtomicBool::new(false));
        let current: Arc<Mutex<Option<ServerHandle>>> = Arc::default();
        actix_web::rt::spawn(stop_on_signals(Arc::clone(&stopping), Arc::clone(&current)));
        // A standby of a shared log serves until the lease frees, then starts
        // again to take over (or to stand by again, when another was quicker).
        let mut settings = settings;
        while !stopping.load(Ordering::Acquire) {
            let application = Application::start(settings.clone()).await?;
            *current.lock().unwrap_or_else(|p| p.into_inner()) = Some(application.handle());
            if stopping.load(Ordering::Acquire) {
                application.handle().stop(true).await;
            }
            // A takeover listens where the standby did (port 0 picked one).
            if let Some((host, _)) = settings.listen.rsplit_once(':') {
                settings.listen = format!("{host}:{}", application.port());
            }
            match application.run_until_stopped().await? {
                crate::app::Stopped::ToTakeOver => continue,
                crate::app::Stopped::Done => break,
            }
        }
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

/// Stops the running server gracefully on SIGINT or SIGTERM, and marks the
/// process as stopping so that no new server starts.
async fn stop_on_signals(stopping: Arc<AtomicBool>, current: Arc<Mutex<Option<ServerHandle>>>) {
    use actix_web::rt::signal::unix::{signal, SignalKind};
    let (Ok(mut terminate), Ok(mut interrupt)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot listen for SIGTERM and SIGINT");
        return;
    };
    loop {
        tokio::select! {
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
        }
        tracing::info!("stopping on a signal");
        stopping.store(true, Ordering::Release);
        let handle = current.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if let Some(handle) = handle {
            handle.stop(true).await;
        }
    }
}
