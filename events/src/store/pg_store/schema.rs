//! The PostgreSQL schema, as versioned migrations applied at start.
//!
//! The layout follows message-db: one `infralog_events` table holds the whole log,
//! with the global position as its key and a unique index on (stream, version),
//! so an append with a stale expected version fails in the database whatever
//! instance sends it. `infralog_streams` keeps each stream's version for the
//! version checks and the stream list.
//!
//! Two instances starting together must not both migrate: every start takes a
//! session advisory lock, reads which migrations are recorded, applies the rest
//! in one transaction each, and releases the lock.

use tokio_postgres::Client;

use super::pg_error;
use crate::store::StoreError;

/// The advisory lock taken while migrating ("infralog" in ASCII, minus one bit).
const MIGRATION_LOCK: i64 = 0x696e_6672_616c_6f66;

/// One step of the schema: applied once, in order, recorded with its number.
struct Migration {
    version: i32,
    description: &'static str,
    sql: &'static str,
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        description: "the event log and the stream versions",
        sql: r#"
        CREATE TABLE infralog_events (
            position        bigint PRIMARY KEY,
            -- Byte order, as the sled store lists streams.
            stream          text COLLATE "C" NOT NULL,
            version         bigint NOT NULL,
            event_id        uuid NOT NULL,
            event_type      text NOT NULL,
            schema_version  integer NOT NULL,
            -- Nanoseconds since the epoch: the exact time an import must keep.
            recorded_at_ns  bigint NOT NULL,
            -- The same time for people reading the table (microseconds).
            recorded_at     timestamptz GENERATED ALWAYS AS
                                (to_timestamp(recorded_at_ns::double precision / 1e9)) STORED,
            metadata        jsonb NOT NULL,
            payload         bytea NOT NULL,
            -- CRC-32 of the payload, checked on every read.
            checksum        bigint NOT NULL,
            CONSTRAINT infralog_events_stream_version UNIQUE (stream, version),
            CONSTRAINT infralog_events_event_id UNIQUE (event_id),
            CONSTRAINT infralog_events_position_positive CHECK (position > 0),
            CONSTRAINT infralog_events_version_positive CHECK (version > 0)
        );
        CREATE TABLE infralog_streams (
            stream   text COLLATE "C" PRIMARY KEY,
            version  bigint NOT NULL CHECK (version > 0)
        );
    "#,
    },
    Migration {
        version: 2,
        description: "the active instance and its fencing token",
        sql: r#"
        CREATE TABLE infralog_leader (
            id        integer PRIMARY KEY CHECK (id = 1),
            -- Grows at every takeover; every append checks it is still its own.
            token     bigint NOT NULL,
            instance  uuid NOT NULL,
            since     timestamptz NOT NULL DEFAULT now(),
            -- The lease: renewed by the active instance, taken by a standby after.
            expires_at timestamptz NOT NULL
        );
    "#,
    },
    Migration {
        version: 3,
        description: "the active instance's address, for standbys to forward writes to",
        sql: r#"
        ALTER TABLE infralog_leader ADD COLUMN address text;
    "#,
    },
    Migration {
        version: 4,
        description: "the MLBench facade's metric points",
        sql: r#"
        CREATE TABLE infralog_metrics (
            -- Keeps two points of one series at one date apart, in write order.
            seq         bigserial PRIMARY KEY,
            subject     text COLLATE "C" NOT NULL,
            name        text COLLATE "C" NOT NULL,
            date_us     bigint NOT NULL,
            value       text NOT NULL,
            metadata    text NOT NULL,
            cumulative  boolean NOT NULL
        );
        CREATE INDEX infralog_metrics_series ON infralog_metrics (subject, name, date_us, seq);
    "#,
    },
];

/// The schema version this build writes.
pub(super) const SCHEMA_VERSION: i32 = 4;

/// Brings the database to [`SCHEMA_VERSION`]. Refuses a database migrated by a
/// newer build: its tables may mean something this build does not know.
pub(super) async fn migrate(client: &mut Client) -> Result<(), StoreError> {
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(pg_error)?;
    let outcome = apply_missing(client).await;
    let unlocked = client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(pg_error);
    outcome.and(unlocked.map(|_| ()))
}

async fn apply_missing(client: &mut Client) -> Result<(), StoreError> {
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS infralog_schema_migrations (
                version      integer PRIMARY KEY,
                description  text NOT NULL,
                applied_at   timestamptz NOT NULL DEFAULT now()
            )",
        )
        .await
        .map_err(pg_error)?;
    let applied: i32 = client
        .query_one(
            "SELECT coalesce(max(version), 0) FROM infralog_schema_migrations",
            &[],
        )
        .await
        .map_err(pg_error)?
        .get(0);
    if applied > SCHEMA_VERSION {
        return Err(StoreError::Storage(format!(
            "the database's schema is version {applied}, newer than this build's \
             {SCHEMA_VERSION}: upgrade infralog"
        )));
    }
    for migration in MIGRATIONS.iter().filter(|m| m.version > applied) {
        let transaction = client.transaction().await.map_err(pg_error)?;
        transaction
            .batch_execute(migration.sql)
            .await
            .map_err(pg_error)?;
        transaction
            .execute(
                "INSERT INTO infralog_schema_migrations (version, description) VALUES ($1, $2)",
                &[&migration.version, &migration.description],
            )
            .await
            .map_err(pg_error)?;
        transaction.commit().await.map_err(pg_error)?;
        tracing::info!(
            version = migration.version,
            description = migration.description,
            "applied a schema migration"
        );
    }
    Ok(())
}

/// Checks, without changing anything, that the database holds this build's
/// schema (the offline tools open it read-only).
pub(super) async fn check(client: &Client) -> Result<(), StoreError> {
    let exists: bool = client
        .query_one(
            "SELECT to_regclass('infralog_schema_migrations') IS NOT NULL",
            &[],
        )
        .await
        .map_err(pg_error)?
        .get(0);
    let applied: i32 = if exists {
        client
            .query_one(
                "SELECT coalesce(max(version), 0) FROM infralog_schema_migrations",
                &[],
            )
            .await
            .map_err(pg_error)?
            .get(0)
    } else {
        0
    };
    if applied != SCHEMA_VERSION {
        return Err(StoreError::Storage(format!(
            "the database's schema is version {applied}, this build reads version \
             {SCHEMA_VERSION}{}",
            if applied == 0 {
                " (no infralog log is there)"
            } else {
                ""
            }
        )));
    }
    Ok(())
}
