//! Wiring: the store, the read model, the actors and the HTTP server, started
//! together and stopped in order.

use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::{web, App, HttpServer};
use infralog_actors::connectors::docker::DockerConnector;
use infralog_actors::connectors::Connectors;
use infralog_actors::runtime::{ActorConfig, InfrastructureRequest, Registry};
use infralog_events::{Metadata, StoreError};

use crate::api::{self, AppState, Limits};
use crate::auth::ownership::PasswordHasher;
use crate::projections::{self, Projections, RebuildError};
use crate::standby::Standby;
use crate::storage::{OpenStore, Role, StoreLocation};

/// How long a stopped server waits for its HTTP workers to let go of the log.
const RELEASE_TIMEOUT: Duration = Duration::from_secs(10);

/// How to run a server.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `host:port`; port 0 picks a free port.
    pub listen: String,
    /// The directory of the sled event log (and of the instance's own files when
    /// the log is in PostgreSQL); created when absent.
    pub data_dir: PathBuf,
    /// Where the event log lives: sled in `data_dir` (the default) or PostgreSQL.
    pub store: StoreLocation,
    /// With the log in PostgreSQL: how long the active instance's lease lasts
    /// without a renewal (how soon a standby takes over).
    pub lease: Duration,
    /// With the log in PostgreSQL: the URL other instances reach this one's API
    /// at (standbys forward writes to it); by default `http://` and the address
    /// listened on (loopback for an unspecified one).
    pub advertise: Option<String>,
    /// What one request may carry: body and header sizes, VMs, body read time.
    pub limits: Limits,
    /// How long a simulated (Dummy) contextualization takes.
    pub contextualization_delay: Duration,
    /// How the infrastructure and VM actors behave: mailboxes, idle time, threads.
    pub actors: ActorConfig,
    /// HTTP worker threads (0: one per core).
    pub workers: usize,
    /// sled's page cache.
    pub cache_capacity_bytes: u64,
    /// Cheap password hashing, for tests that create many owners.
    pub fast_password_hashing: bool,
    /// The clouds this instance can use, by credential type (tests add their own).
    pub connectors: Connectors,
    /// Labels put on everything created in Docker, besides infralog's own.
    pub docker_labels: Vec<(String, String)>,
    /// The facades to serve (none by default).
    pub facades: crate::facades::FacadeSettings,
}

impl Settings {
    /// Settings to listen on `listen` with the log in `data_dir`, everything else
    /// at its default: the default limits and actors, one worker per core, a 1 MiB
    /// page cache, real password hashing and the built-in clouds.
    pub fn new(listen: impl Into<String>, data_dir: impl Into<PathBuf>) -> Self {
        Settings {
            listen: listen.into(),
            data_dir: data_dir.into(),
            store: StoreLocation::Embedded,
            lease: Duration::from_secs(5),
            advertise: None,
            limits: Limits::default(),
            contextualization_delay: Duration::from_millis(
                infralog_actors::contextualization::DEFAULT_DELAY_MS,
            ),
            actors: ActorConfig::default(),
            workers: 0,
            cache_capacity_bytes: 1024 * 1024,
            fast_password_hashing: false,
            connectors: Connectors::builtin(),
            docker_labels: Vec::new(),
            facades: Default::default(),
        }
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The event log could not be opened (or is damaged).
    #[error("cannot open the event log: {0}")]
    Store(#[from] StoreError),
    /// The log opened but could not be folded into the read model.
    #[error("cannot rebuild the read model from the log: {0}")]
    Rebuild(#[from] RebuildError),
    /// The listening socket could not be bound.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The `host:port` asked for.
        address: String,
        /// Why binding failed (in use, no permission, bad address).
        source: std::io::Error,
    },
    /// A thread (the blocking task that opens the log, or the projections'
    /// follower) could not be started or panicked.
    #[error("cannot start a thread: {0}")]
    Thread(std::io::Error),
    /// A facade could not start (its catalogue names a cloud this server lacks…).
    #[error("cannot start the facades: {0}")]
    Facades(String),
}

/// A started server.
pub struct Application {
    server: actix_web::dev::Server,
    port: u16,
    store: OpenStore,
    registry: Registry,
    follower: std::thread::JoinHandle<()>,
    /// The background observation of real clouds' VMs.
    sweep: actix_web::rt::task::JoinHandle<()>,
    /// The facades' actors, stopped with the core's.
    facades: web::Data<crate::facades::Facades>,
    /// Set when another instance took over the shared log.
    lost_leadership: Arc<std::sync::atomic::AtomicBool>,
    /// Whether it opened the log as the active instance or a standby.
    role: Role,
    /// Set when this standby saw the lease free, and stopped to take over.
    lease_freed: Arc<std::sync::atomic::AtomicBool>,
    /// The lease's watchers, ended with the server.
    watchers: Vec<actix_web::rt::task::JoinHandle<()>>,
}

/// How a server's run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// It was asked to stop.
    Done,
    /// It was a standby and the lease freed: start again, to take over.
    ToTakeOver,
}

/// Where other instances reach this one: `--advertise`, or the address listened
/// on with the bound port (loopback for an unspecified address).
fn advertised_address(settings: &Settings, port: u16) -> String {
    if let Some(address) = &settings.advertise {
        return address.clone();
    }
    let host = settings
        .listen
        .rsplit_once(':')
        .map_or(settings.listen.as_str(), |(host, _)| host);
    let host = match host {
        "" | "0.0.0.0" => "127.0.0.1",
        "[::]" | "::" => "[::1]",
        other => other,
    };
    format!("http://{host}:{port}")
}

impl Application {
    /// Opens the log, rebuilds the read model, resumes interrupted work and binds
    /// the listener. Must run inside an actix system.
    pub async fn start(settings: Settings) -> Result<Self, StartError> {
        let location = settings.store.clone();
        let data_dir = settings.data_dir.clone();
        let cache = settings.cache_capacity_bytes;
        let lease = settings.lease;
        // Opening and folding the log are blocking: keep them off the async thread.
        let ((opened, role), model) = tokio::task::spawn_blocking(move || {
            let (opened, role) = OpenStore::open(&location, &data_dir, cache, lease)?;
            let model = projections::rebuild(opened.shared().as_ref())?;
            Ok::<_, StartError>(((opened, role), model))
        })
        .await
        .map_err(|e| StartError::Thread(std::io::Error::other(e.to_string())))??;
        let store = opened.shared();
        tracing::info!(
            head = store.head_position(),
            infrastructures = model.infrastructures.len(),
            "event log opened and read model rebuilt"
        );
        // A standby does none of the work that must happen once: it forwards
        // writes, and resumes interrupted work only when it takes over.
        let standby = match (role, opened.postgres()) {
            (Role::Standby, Some(shared)) => Some(Standby::new(Arc::clone(shared))),
            _ => None,
        };
        let facade_settings = if standby.is_some() {
            crate::facades::FacadeSettings::default()
        } else {
            settings.facades.clone()
        };
        let unfinished: Vec<_> = model
            .infrastructures
            .values()
            .filter(|view| standby.is_none() && view.has_unfinished_work())
            .map(|view| view.id)
            .collect();
        let projections = Arc::new(Projections::new(model));
        let (tap, facade_batches) = facade_settings.tap();
        let follower =
            projections::spawn_follower_with_tap(Arc::clone(&store), Arc::clone(&projections), tap)
                .map_err(StartError::Thread)?;
        let metrics = Arc::new(crate::metrics::Metrics::new(&settings.data_dir));
        opened.set_commit_observer(metrics.commit_observer());
        let mut clouds = settings.connectors.clone();
        if !settings.docker_labels.is_empty() {
            // The operator's labels go on everything made in Docker, besides ours.
            clouds.register(Arc::new(DockerConnector::new(
                settings.docker_labels.iter().cloned(),
            )));
        }
        facade_settings.register_connectors(&mut clouds);
        let connectors = crate::metrics::connectors::measured(&clouds, &metrics);
        let registry = Registry::new(
            Arc::clone(&store),
            connectors.clone(),
            settings.actors.clone(),
        );
        for id in unfinished {
            let registry = registry.clone();
            actix_web::rt::spawn(async move {
                if let Err(error) = registry
                    .infrastructure(id, InfrastructureRequest::Resume, Metadata::default())
                    .await
                {
                    tracing::warn!(inf = %id, %error, "cannot resume interrupted work");
                }
            });
        }
        let hasher = Arc::new(if settings.fast_password_hashing {
            PasswordHasher::fast_for_tests()
        } else {
            PasswordHasher::default()
        });
        let observer = Arc::new(crate::observe::Observer::new(
            registry.clone(),
            connectors.clone(),
            Arc::clone(&projections),
            settings.actors.observe_interval,
        ));
        let sweep = if standby.is_none() {
            Arc::clone(&observer).spawn_sweep(settings.actors.observe_interval)
        } else {
            actix_web::rt::spawn(async {})
        };
        let state = web::Data::new(AppState {
            projections,
            store: Arc::clone(&store),
            registry: registry.clone(),
            hasher,
            connectors,
            contextualization_delay: settings.contextualization_delay,
            ansible_available: settings.actors.ansible.is_some(),
            observer,
            limits: settings.limits,
            recently_used: Default::default(),
            use_counter: Default::default(),
            lanes: api::commit::Lanes::new(settings.actors.mailbox_capacity),
            standby: standby.clone(),
        });
        // Bound before the facades start: MLBench workers are told the port.
        let listener = TcpListener::bind(&settings.listen).map_err(|source| StartError::Bind {
            address: settings.listen.clone(),
            source,
        })?;
        let port = listener
            .local_addr()
            .map_err(|source| StartError::Bind {
                address: settings.listen.clone(),
                source,
            })?
            .port();
        let facades = web::Data::new(
            crate::facades::Facades::start(
                &facade_settings,
                crate::facades::FacadeDeps {
                    store: Arc::clone(&store),
                    projections: Arc::clone(&state.projections),
                    registry: registry.clone(),
                    connectors: state.connectors.clone(),
                    hasher: Arc::clone(&state.hasher),
                    limits: settings.limits,
                    policy: state.context_policy(None),
                    data_dir: settings.data_dir.clone(),
                    metrics: opened.metric_store(),
                    api_port: port,
                },
                facade_batches,
            )
            .await
            .map_err(StartError::Facades)?,
        );
        let limits = web::Data::new(settings.limits);
        let metrics = web::Data::from(metrics);
        let served_facades = facades.clone();
        let mut server = HttpServer::new(move || {
            App::new()
                .wrap(actix_web::middleware::from_fn(
                    crate::metrics::access::middleware,
                ))
                .app_data(metrics.clone())
                .app_data(state.clone())
                .app_data(limits.clone())
                .app_data(served_facades.clone())
                .default_service(web::to(api::dispatch))
        })
        .shutdown_timeout(10)
        // `serve` handles the signals: a takeover starts a second server in the
        // same process, which must stop on them too.
        .disable_signals();
        if settings.workers > 0 {
            server = server.workers(settings.workers);
        }
        let server = server
            .listen(listener)
            .map_err(|source| StartError::Bind {
                address: settings.listen.clone(),
                source,
            })?
            .run();
        tracing::info!(port, ?role, "serving the IM REST API");
        drop(store);
        if let (Role::Active, Some(shared)) = (role, opened.postgres()) {
            let address = advertised_address(&settings, port);
            let shared = Arc::clone(shared);
            let told = tokio::task::spawn_blocking(move || shared.advertise(&address))
                .await
                .map_err(|e| StoreError::Failed(e.to_string()))
                .and_then(|told| told);
            if let Err(error) = told {
                tracing::warn!(%error, "cannot keep this instance's address with the lease: standbys cannot forward writes");
            }
        }
        let lease_freed = Arc::new(std::sync::atomic::AtomicBool::new(false));
        // Tasks that watch the shared log's lease; they hold the store, so they
        // are ended when the server stops (the log closes with its last handle).
        let mut watchers = Vec::new();
        if let Some(standby) = standby {
            // The active instance is gone: stop at once (requests in flight are
            // cut; clients retry), and start again as the active one.
            let handle = server.handle();
            let freed = Arc::clone(&lease_freed);
            watchers.push(actix_web::rt::spawn(async move {
                standby.until_lease_frees().await;
                freed.store(true, std::sync::atomic::Ordering::Release);
                handle.stop(false).await;
            }));
        }
        let lost_leadership = Arc::new(std::sync::atomic::AtomicBool::new(false));
        {
            // A replaced instance must stop serving: its writes are refused now.
            let opened = opened.clone();
            let handle = server.handle();
            let lost = Arc::clone(&lost_leadership);
            watchers.push(actix_web::rt::spawn(async move {
                opened.leadership_lost().await;
                tracing::error!("another instance is active on the shared log now: stopping");
                lost.store(true, std::sync::atomic::Ordering::Release);
                handle.stop(false).await;
            }));
        }
        Ok(Application {
            server,
            port,
            role,
            store: opened,
            lost_leadership,
            lease_freed,
            watchers,
            registry,
            follower,
            sweep,
            facades,
        })
    }

    /// Whether this instance is the active one on its log, or a standby.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The port the server listens on (the one picked when `listen` asked for 0).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A handle that stops the server gracefully.
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// Serves until stopped (SIGINT, SIGTERM or [`Self::handle`]), then stops the
    /// actors, finishes pending appends and closes the log.
    pub async fn run_until_stopped(self) -> std::io::Result<Stopped> {
        let served = self.server.await;
        self.sweep.abort();
        for watcher in &self.watchers {
            watcher.abort();
        }
        let registry = self.registry;
        let store = self.store;
        let follower = self.follower;
        self.facades.shutdown();
        tokio::task::spawn_blocking(move || {
            registry.shutdown();
            drop(registry);
            store.close();
            if follower.join().is_err() {
                tracing::error!("the read model's follower panicked");
            }
            // The HTTP workers drop their share of the state as their threads end,
            // after the server future resolved; sled releases the log's file lock
            // with the last share, and another server may then open the directory.
            let deadline = Instant::now() + RELEASE_TIMEOUT;
            while store.handles() > 1 && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            if store.handles() > 1 {
                tracing::warn!("the event log is still shared after the server stopped");
            }
            drop(store);
        })
        .await
        .map_err(|e| std::io::Error::other(e.to_string()))?;
        tracing::info!("stopped; the event log is closed");
        if self
            .lost_leadership
            .load(std::sync::atomic::Ordering::Acquire)
        {
            return Err(std::io::Error::other(
                "another instance took over the shared event log",
            ));
        }
        served?;
        if self.lease_freed.load(std::sync::atomic::Ordering::Acquire) {
            return Ok(Stopped::ToTakeOver);
        }
        Ok(Stopped::Done)
    }
}
