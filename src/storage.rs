//! Which event store a server uses: the embedded sled log (the default), or a
//! PostgreSQL database shared by several instances (`serve --store postgres://…`).

use std::path::Path;
use std::sync::Arc;

use infralog_events::{
    CommitObserver, EventStore, PgStore, PgStoreConfig, SledStore, SledStoreConfig, StoreError,
};
use uuid::Uuid;

/// Where the log lives.
#[derive(Clone, Default, PartialEq, Eq)]
pub enum StoreLocation {
    /// sled, in the server's data directory.
    #[default]
    Embedded,
    /// A PostgreSQL database (its URL may hold a password: never printed).
    Postgres(String),
}

impl std::fmt::Debug for StoreLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreLocation::Embedded => f.write_str("Embedded"),
            StoreLocation::Postgres(_) => f.write_str("Postgres(…)"),
        }
    }
}

impl StoreLocation {
    /// Reads `--store`: a `postgres://` or `postgresql://` URL.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            Ok(StoreLocation::Postgres(text.to_owned()))
        } else {
            Err(
                "--store takes a postgres:// URL (without it, the log is sled in --data-dir)"
                    .into(),
            )
        }
    }
}

/// What an instance on a shared log is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// It holds the lease: it writes, and it does the work that must happen once.
    Active,
    /// Another instance holds the lease: it serves reads from its read model and
    /// forwards writes to that instance (`crate::standby`) until the lease frees.
    Standby,
}

/// An open store, of either kind.
#[derive(Clone)]
pub enum OpenStore {
    /// The embedded log.
    Sled(Arc<SledStore>),
    /// The shared database.
    Postgres(Arc<PgStore>),
}

/// The file in the data directory that keeps a PostgreSQL instance's id across
/// restarts (the sled store keeps its own inside the log).
const INSTANCE_ID_FILE: &str = "instance-id";

impl OpenStore {
    /// Opens the store `location` names, as the active instance when the shared
    /// log's lease is free, else as a standby (read-only). Blocking.
    pub fn open(
        location: &StoreLocation,
        data_dir: &Path,
        cache_capacity_bytes: u64,
        lease: std::time::Duration,
    ) -> Result<(Self, Role), StoreError> {
        match location {
            StoreLocation::Embedded => {
                let config = SledStoreConfig {
                    path: data_dir.to_path_buf(),
                    cache_capacity_bytes,
                };
                let store = SledStore::open(config)?;
                let report = store.recovery_report();
                tracing::info!(head = report.head, "the sled event log is open");
                Ok((OpenStore::Sled(Arc::new(store)), Role::Active))
            }
            StoreLocation::Postgres(url) => {
                let instance = instance_id(data_dir)?;
                let mut config = PgStoreConfig::new(url.clone(), instance);
                // One active instance writes; the others serve as standbys.
                config.exclusive = true;
                config.wait_for_lease = false;
                config.lease = lease;
                match PgStore::open(config.clone()) {
                    Ok(store) => {
                        tracing::info!(head = store.head_position(), %instance, "the PostgreSQL event log is open; this instance is the active one");
                        Ok((OpenStore::Postgres(Arc::new(store)), Role::Active))
                    }
                    Err(StoreError::InUse(_)) => {
                        config.exclusive = false;
                        config.read_only = true;
                        let store = PgStore::open(config)?;
                        tracing::info!(head = store.head_position(), %instance, "the PostgreSQL event log is open; another instance is active, this one serves as a standby");
                        Ok((OpenStore::Postgres(Arc::new(store)), Role::Standby))
                    }
                    Err(error) => Err(error),
                }
            }
        }
    }

    /// The store, as everything else uses it.
    pub fn shared(&self) -> Arc<dyn EventStore> {
        match self {
            OpenStore::Sled(store) => store.clone(),
            OpenStore::Postgres(store) => store.clone(),
        }
    }

    /// Where MLBench metric points are kept: the sled log's `metrics` tree, or
    /// the database's `infralog_metrics` table.
    pub fn metric_store(&self) -> Option<Arc<dyn infralog_events::store::metrics::MetricStore>> {
        match self {
            OpenStore::Sled(store) => Some(store.clone()),
            OpenStore::Postgres(store) => Some(store.clone()),
        }
    }

    /// Tells `observer` of every group commit from now on.
    pub fn set_commit_observer(&self, observer: Arc<dyn CommitObserver>) {
        match self {
            OpenStore::Sled(store) => store.set_commit_observer(observer),
            OpenStore::Postgres(store) => store.set_commit_observer(observer),
        };
    }

    /// Stops taking writes (queued ones are still answered).
    pub fn close(&self) {
        match self {
            OpenStore::Sled(store) => store.close(),
            OpenStore::Postgres(store) => store.close(),
        }
    }

    /// Resolves when this instance is no longer the active one on a shared log
    /// (never, for the embedded log).
    pub async fn leadership_lost(&self) {
        match self {
            OpenStore::Sled(_) => std::future::pending().await,
            OpenStore::Postgres(store) => {
                let mut lost = store.leadership_lost();
                if lost.wait_for(|lost| *lost).await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        }
    }

    /// The shared log, when the store is one.
    pub fn postgres(&self) -> Option<&Arc<PgStore>> {
        match self {
            OpenStore::Sled(_) => None,
            OpenStore::Postgres(store) => Some(store),
        }
    }

    /// How many handles to the store are alive (the caller's included).
    pub fn handles(&self) -> usize {
        match self {
            OpenStore::Sled(store) => Arc::strong_count(store),
            OpenStore::Postgres(store) => Arc::strong_count(store),
        }
    }
}

/// This instance's id, made on first start and kept in the data directory.
fn instance_id(data_dir: &Path) -> Result<Uuid, StoreError> {
    let storage = |e: std::io::Error| {
        StoreError::Storage(format!(
            "the instance id in {}: {e}",
            data_dir.join(INSTANCE_ID_FILE).display()
        ))
    };
    std::fs::create_dir_all(data_dir).map_err(storage)?;
    let path = data_dir.join(INSTANCE_ID_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => Uuid::parse_str(text.trim()).map_err(|e| {
            StoreError::Storage(format!(
                "the instance id in {} is not a UUID: {e}",
                path.display()
            ))
        }),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let id = Uuid::new_v4();
            let temporary = path.with_extension("tmp");
            std::fs::write(&temporary, format!("{id}\n")).map_err(storage)?;
            std::fs::File::open(&temporary)
                .and_then(|file| file.sync_all())
                .map_err(storage)?;
            std::fs::rename(&temporary, &path).map_err(storage)?;
            Ok(id)
        }
        Err(error) => Err(storage(error)),
    }
}
