//! The event store on PostgreSQL, for several instances sharing one log.
//!
//! # Layout
//!
//! message-db's: one table of events keyed by global position, with a unique
//! index on (stream, version) and one on the event id, and a table of stream
//! versions (`schema`). Payloads are the same postcard bytes as in the sled
//! store, with their CRC-32, checked on every read.
//!
//! # Writes
//!
//! One writer task per instance takes every pending append and commits them in
//! one transaction (group commit), under a transaction-scoped advisory lock that
//! every instance's writer takes: positions are numbered in commit order, so the
//! committed log is always a gapless prefix (`writer`). PostgreSQL's commit is
//! the durability point: an append is answered after its transaction committed.
//!
//! # Reads and followers
//!
//! Reads go through a connection pool. Each instance follows the global log
//! (`follower`): LISTEN/NOTIFY wakes it, and it reads by position what any
//! instance committed, so every instance's subscribers (its read models) see
//! every event once, in order.
//!
//! # Threads
//!
//! The store owns a small tokio runtime. Its blocking methods hand their query to
//! that runtime and wait on a plain channel, so they may be called from any
//! thread that may block (as the sled store's), never from inside the store's own
//! runtime.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio::runtime::{Handle, Runtime};
use tokio::sync::{mpsc, watch, Notify};
use tokio_postgres::{Client, NoTls};
use uuid::Uuid;

use super::subscription::{LogReader, SubscriberHub};
use super::{CommitObserver, StoreError};
use crate::envelope::Envelope;

mod copy;
mod event_store;
mod follower;
mod leadership;
mod metrics;
mod rows;
mod schema;
mod writer;

pub use copy::Copied;
pub use leadership::LeaseHolder;
use rows::{envelope_of, COLUMNS};
use writer::Job;

/// How to open a [`PgStore`].
#[derive(Clone)]
pub struct PgStoreConfig {
    /// A libpq-style connection string or URL (`postgres://user:pw@host/db`).
    pub url: String,
    /// This instance's id: instances sharing one database each have their own.
    pub instance_id: Uuid,
    /// How many pooled connections serve reads.
    pub pool_size: usize,
    /// For the offline tools: no migration at open, and every write refused.
    pub read_only: bool,
    /// For servers: open only as the active instance (waiting, as a standby,
    /// while another is), and write only while still the active one.
    pub exclusive: bool,
    /// How long the active instance's lease lasts without a renewal: how soon a
    /// standby takes over from an instance that died or froze.
    pub lease: std::time::Duration,
    /// With `exclusive`: wait as a standby while another instance is active
    /// (`true`), or give up at once with [`StoreError::InUse`] (`false`), for a
    /// server that serves as a standby meanwhile.
    pub wait_for_lease: bool,
    /// Where this instance serves its API, kept with the lease while it is the
    /// active one, so that standbys can forward writes to it.
    pub advertise: Option<String>,
}

impl std::fmt::Debug for PgStoreConfig {
    // The URL may hold a password: never print it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStoreConfig")
            .field("instance_id", &self.instance_id)
            .field("pool_size", &self.pool_size)
            .finish_non_exhaustive()
    }
}

impl PgStoreConfig {
    /// The database at `url`, for the instance `instance_id`, with 8 pooled
    /// connections.
    pub fn new(url: impl Into<String>, instance_id: Uuid) -> Self {
        PgStoreConfig {
            url: url.into(),
            instance_id,
            pool_size: 8,
            read_only: false,
            exclusive: false,
            lease: std::time::Duration::from_secs(5),
            wait_for_lease: true,
            advertise: None,
        }
    }
}

/// What the writer, the follower and the readers share.
pub(super) struct Shared {
    config: tokio_postgres::Config,
    pool: Pool,
    instance: Uuid,
    head: Arc<AtomicU64>,
    head_watch: watch::Sender<u64>,
    hub: SubscriberHub,
    /// This instance's writer committed: the follower reads at once.
    local_commit: Notify,
    closed_flag: Arc<AtomicBool>,
    /// The LISTEN connection's client, kept so that its session lives.
    listener: Mutex<Option<Client>>,
    observer: OnceLock<Arc<dyn CommitObserver>>,
    read_only: bool,
    /// The fencing token of an exclusive store (see `leadership`).
    fencing_token: Option<i64>,
    /// Set when an exclusive store is no longer the active instance.
    leadership_lost: watch::Sender<bool>,
}

impl Shared {
    /// A new connection of its own (the writer's), driven on the store's runtime.
    async fn connect(&self) -> Result<Client, StoreError> {
        let (client, connection) = self.config.connect(NoTls).await.map_err(connect_error)?;
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::warn!(%error, "an event store connection ended");
            }
        });
        Ok(client)
    }

    fn advance_head(&self, position: u64) {
        let before = self.head.fetch_max(position, Ordering::AcqRel);
        if position > before {
            self.head_watch.send_if_modified(|head| {
                let grew = position > *head;
                if grew {
                    *head = position;
                }
                grew
            });
        }
    }

    fn is_closed(&self) -> bool {
        self.closed_flag.load(Ordering::Acquire)
    }

    fn lose_leadership(&self) {
        self.leadership_lost.send_replace(true);
    }

    fn has_lost_leadership(&self) -> bool {
        *self.leadership_lost.borrow()
    }

    fn keep_listener(&self, client: Client) {
        *self.listener.lock().unwrap_or_else(|p| p.into_inner()) = Some(client);
    }
}

/// PostgreSQL's error, as the store reports it.
pub(super) fn pg_error(error: tokio_postgres::Error) -> StoreError {
    if is_unreachable(&error) {
        return StoreError::Unavailable(error.to_string());
    }
    match error.as_db_error() {
        Some(db) => StoreError::Storage(format!(
            "PostgreSQL: {} {}: {}",
            db.severity(),
            db.code().code(),
            db.message()
        )),
        None => StoreError::Storage(format!("PostgreSQL: {error}")),
    }
}

/// Whether the error is the database being out of reach rather than a refusal
/// of the statement: a closed connection, an I/O or connect failure, or one of
/// the SQLSTATEs of a server that is shutting down, starting or full.
fn is_unreachable(error: &tokio_postgres::Error) -> bool {
    if error.is_closed() {
        return true;
    }
    match error.as_db_error() {
        // 08: connection exception; 57P01-57P03: shutdown, crash, cannot
        // connect now; 53300: too many connections.
        Some(db) => {
            let code = db.code().code();
            code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03" | "53300")
        }
        // No server answer: the socket failed (connect, read, write).
        None => std::error::Error::source(error)
            .is_some_and(|source| source.downcast_ref::<std::io::Error>().is_some()),
    }
}

/// A row count as SQL's LIMIT takes it ("everything" is `usize::MAX`).
fn limit(max: usize) -> i64 {
    i64::try_from(max).unwrap_or(i64::MAX)
}

/// The pool failed to give a connection: whatever the reason (refused, the
/// database not taking connections, a timeout), the database is out of reach.
fn pool_error(error: deadpool_postgres::PoolError) -> StoreError {
    match error {
        deadpool_postgres::PoolError::Backend(error) => connect_error(error),
        other => StoreError::Unavailable(format!("PostgreSQL connection pool: {other}")),
    }
}

/// A connection could not be made: the database is out of reach.
pub(super) fn connect_error(error: tokio_postgres::Error) -> StoreError {
    match pg_error(error) {
        StoreError::Storage(text) => StoreError::Unavailable(text),
        other => other,
    }
}

/// Up to `max` envelopes from `from` (a position) on, in order.
pub(super) async fn read_all_from(
    shared: &Shared,
    from: u64,
    max: usize,
) -> Result<Vec<Envelope>, StoreError> {
    let client = shared.pool.get().await.map_err(pool_error)?;
    let query = format!(
        "SELECT {COLUMNS} FROM infralog_events WHERE position >= $1 ORDER BY position LIMIT $2"
    );
    let rows = client
        .query(&query, &[&(from.max(1) as i64), &limit(max)])
        .await
        .map_err(pg_error)?;
    rows.iter().map(envelope_of).collect()
}

/// The event store on PostgreSQL. See the module documentation.
pub struct PgStore {
    shared: Arc<Shared>,
    jobs: Mutex<Option<mpsc::UnboundedSender<Job>>>,
    handle: Handle,
    runtime: Mutex<Option<Runtime>>,
}

/// Runs `work` on the store's runtime and waits for it on this thread.
fn block_on<T, F>(handle: &Handle, work: F) -> Result<T, StoreError>
where
    T: Send + 'static,
    F: Future<Output = Result<T, StoreError>> + Send + 'static,
{
    let (sender, receiver) = std::sync::mpsc::sync_channel(1);
    handle.spawn(async move {
        let _ = sender.send(work.await);
    });
    receiver.recv().unwrap_or(Err(StoreError::Closed))
}

impl PgStore {
    /// Connects, applies the schema's migrations, and starts the writer and the
    /// follower.
    pub fn open(config: PgStoreConfig) -> Result<Self, StoreError> {
        let pg_config: tokio_postgres::Config = config
            .url
            .parse()
            .map_err(|e| StoreError::Storage(format!("the PostgreSQL address is invalid: {e}")))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("infralog-pg")
            .enable_all()
            .build()
            .map_err(|e| StoreError::Storage(format!("starting the store's runtime: {e}")))?;
        let handle = runtime.handle().clone();
        let manager = Manager::from_config(
            pg_config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(config.pool_size.max(1))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .build()
            .map_err(|e| StoreError::Storage(format!("building the connection pool: {e}")))?;
        let read_only = config.read_only;
        let leadership = if config.exclusive && !read_only {
            let pg_config = pg_config.clone();
            let instance = config.instance_id;
            let lease = config.lease;
            let (address, wait) = (config.advertise.clone(), config.wait_for_lease);
            let acquired = block_on(&handle, async move {
                let (mut client, connection) = pg_config.connect(NoTls).await.map_err(pg_error)?;
                let driver = tokio::spawn(connection);
                // The leader table must exist before the lease is tried.
                schema::migrate(&mut client).await?;
                drop(client);
                let _ = driver.await;
                leadership::acquire(&pg_config, instance, lease, address.as_deref(), wait).await
            })?;
            match acquired {
                Some(acquired) => Some(acquired),
                None => {
                    return Err(StoreError::InUse(
                        "the PostgreSQL database (another instance is active)".into(),
                    ))
                }
            }
        } else {
            None
        };
        let head = block_on(&handle, {
            let pg_config = pg_config.clone();
            async move {
                let (mut client, connection) = pg_config.connect(NoTls).await.map_err(pg_error)?;
                let driver = tokio::spawn(connection);
                if read_only {
                    schema::check(&client).await?;
                } else {
                    schema::migrate(&mut client).await?;
                }
                let head: i64 = client
                    .query_one(
                        "SELECT coalesce(max(position), 0) FROM infralog_events",
                        &[],
                    )
                    .await
                    .map_err(pg_error)?
                    .get(0);
                drop(client);
                let _ = driver.await;
                Ok(head as u64)
            }
        })?;
        let (head_watch, _) = watch::channel(head);
        let (leadership_lost, _) = watch::channel(false);
        let fencing_token = leadership.as_ref().map(|(_, token)| *token);
        let shared = Arc::new(Shared {
            config: pg_config,
            pool,
            instance: config.instance_id,
            head: Arc::new(AtomicU64::new(head)),
            head_watch,
            hub: SubscriberHub::new(),
            local_commit: Notify::new(),
            closed_flag: Arc::new(AtomicBool::new(false)),
            listener: Mutex::new(None),
            observer: OnceLock::new(),
            read_only: config.read_only,
            fencing_token,
            leadership_lost,
        });
        if let Some((client, token)) = leadership {
            let shared = Arc::clone(&shared);
            let lease = config.lease;
            handle.spawn(async move { leadership::renew(shared, client, token, lease) });
        }
        let (jobs, receiver) = mpsc::unbounded_channel();
        handle.spawn(writer::run(receiver, Arc::clone(&shared)));
        handle.spawn(follower::run(Arc::clone(&shared), head));
        Ok(PgStore {
            shared,
            jobs: Mutex::new(Some(jobs)),
            handle,
            runtime: Mutex::new(Some(runtime)),
        })
    }

    /// Sets the observer told of every group commit from now on; `false` when one
    /// was set before.
    pub fn set_commit_observer(&self, observer: Arc<dyn CommitObserver>) -> bool {
        self.shared.observer.set(observer).is_ok()
    }

    /// Becomes true when this exclusive store is no longer the active instance
    /// (its lock's session ended, or the fencing token moved on): it takes no
    /// more writes, and its server should stop.
    pub fn leadership_lost(&self) -> watch::Receiver<bool> {
        self.shared.leadership_lost.subscribe()
    }

    /// Who holds the log's lease now (`None`: nobody ever did). For standbys:
    /// where to forward writes, and when to take over.
    pub fn lease_holder(&self) -> Result<Option<LeaseHolder>, StoreError> {
        let shared = Arc::clone(&self.shared);
        block_on(&self.handle, async move {
            let client = shared.pool.get().await.map_err(pool_error)?;
            leadership::holder(&client).await
        })
    }

    /// Keeps `address` with the lease, as where this active instance serves, for
    /// standbys to forward writes to; refused once another instance took over.
    pub fn advertise(&self, address: &str) -> Result<(), StoreError> {
        let Some(token) = self.shared.fencing_token else {
            return Err(StoreError::ReadOnly);
        };
        let shared = Arc::clone(&self.shared);
        let address = address.to_owned();
        block_on(&self.handle, async move {
            let client = shared.pool.get().await.map_err(pool_error)?;
            let updated = client
                .execute(
                    "UPDATE infralog_leader SET address = $2 WHERE id = 1 AND token = $1",
                    &[&token, &address],
                )
                .await
                .map_err(pg_error)?;
            if updated == 1 {
                Ok(())
            } else {
                Err(leadership::fenced(token, None))
            }
        })
    }

    /// The fencing token this store writes with (exclusive stores only).
    pub fn fencing_token(&self) -> Option<i64> {
        self.shared.fencing_token
    }

    /// Stops taking writes; subscribers see the end after what is committed.
    /// Writes already queued are still committed and answered.
    pub fn close(&self) {
        self.jobs.lock().unwrap_or_else(|p| p.into_inner()).take();
        let was_closed = self.shared.closed_flag.swap(true, Ordering::AcqRel);
        if let (false, Some(token)) = (was_closed, self.shared.fencing_token) {
            // Expires the lease now: a standby takes over without waiting for it.
            let shared = Arc::clone(&self.shared);
            let released = block_on(&self.handle, async move {
                let client = shared.pool.get().await.map_err(pool_error)?;
                client
                    .execute(
                        "UPDATE infralog_leader SET expires_at = now() WHERE id = 1 AND token = $1",
                        &[&token],
                    )
                    .await
                    .map_err(pg_error)
            });
            if let Err(error) = released {
                tracing::warn!(%error, "could not release the log's lease; a standby waits for it to expire");
            }
        }
        self.shared.hub.close();
        self.shared
            .listener
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
    }

    fn send(&self, job: Job) -> Result<(), Job> {
        match self.jobs.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            Some(jobs) => jobs.send(job).map_err(|unsent| unsent.0),
            None => Err(job),
        }
    }

    fn reader(&self) -> LogReader {
        let shared = Arc::clone(&self.shared);
        let handle = self.handle.clone();
        Arc::new(move |from, max| {
            let shared = Arc::clone(&shared);
            block_on(
                &handle,
                async move { read_all_from(&shared, from, max).await },
            )
        })
    }

    /// Test support: damages the stored payload at `position`, as a failing disk
    /// or a hand-made UPDATE would.
    #[cfg(any(test, feature = "testing"))]
    pub fn corrupt_record_for_tests(&self, position: u64) -> Result<(), StoreError> {
        let shared = Arc::clone(&self.shared);
        block_on(&self.handle, async move {
            let client = shared.pool.get().await.map_err(pool_error)?;
            client
                .execute(
                    "UPDATE infralog_events SET payload = payload || '\\x00'::bytea \
                     WHERE position = $1",
                    &[&(position as i64)],
                )
                .await
                .map_err(pg_error)?;
            Ok(())
        })
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        self.close();
        if let Some(runtime) = self
            .runtime
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            // Allowed from any context, async ones included.
            runtime.shutdown_background();
        }
    }
}
