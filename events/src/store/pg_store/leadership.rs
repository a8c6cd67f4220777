//! Which instance may write: the active one, chosen by a session advisory lock,
//! fenced by a token.
//!
//! A server opening the log waits until it holds the lock (the others stand by),
//! then raises the token in `infralog_leader` and keeps it. Every append
//! transaction reads the token under the append lock and refuses to write when
//! it is no longer this instance's: an instance that lost its lock (its
//! connection dropped, a partition) and was replaced can never write again, even
//! if it does not know yet. When the lock's connection ends, the instance knows
//! it lost the lock and says so ([`super::PgStore::leadership_lost`]).
//!
//! PostgreSQL releases a session lock when the session ends, so a `kill -9` of
//! the active instance hands the log to a standby as soon as the database sees
//! the connection close.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_postgres::{Client, NoTls};

use super::{pg_error, Shared};
use crate::store::StoreError;

/// The session lock that makes an instance the active one.
const LEADER_LOCK: i64 = 0x696e_6672_616c_6f65;
/// How often a standby tries the lock.
const STANDBY_POLL: Duration = Duration::from_millis(250);
/// How often a standby says it is still waiting.
const STANDBY_REPORT: Duration = Duration::from_secs(30);

/// Waits until this instance holds the lock, raises the fencing token and
/// returns it with the client whose session holds the lock.
pub(super) async fn acquire(
    config: &tokio_postgres::Config,
    instance: uuid::Uuid,
) -> Result<(Client, tokio::task::JoinHandle<()>, i64), StoreError> {
    let (client, connection) = config.connect(NoTls).await.map_err(pg_error)?;
    let session = tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::error!(%error, "the connection holding the log's leadership failed");
        }
    });
    let mut reported = None::<Instant>;
    loop {
        let held: bool = client
            .query_one("SELECT pg_try_advisory_lock($1)", &[&LEADER_LOCK])
            .await
            .map_err(pg_error)?
            .get(0);
        if held {
            break;
        }
        if reported.is_none_or(|at| at.elapsed() >= STANDBY_REPORT) {
            tracing::info!("another instance is active on this log; standing by to take over");
            reported = Some(Instant::now());
        }
        tokio::time::sleep(STANDBY_POLL).await;
    }
    let token: i64 = client
        .query_one(
            "INSERT INTO infralog_leader (id, token, instance) VALUES (1, 1, $1) \
             ON CONFLICT (id) DO UPDATE SET token = infralog_leader.token + 1, \
             instance = EXCLUDED.instance, since = now() RETURNING token",
            &[&instance],
        )
        .await
        .map_err(pg_error)?
        .get(0);
    tracing::info!(token, "this instance is the active one on the log");
    Ok((client, session, token))
}

/// Watches the session that holds the lock: when it ends, the instance is no
/// longer the active one, and stops writing at once.
pub(super) fn watch_session(shared: Arc<Shared>, session: tokio::task::JoinHandle<()>) {
    tokio::spawn(async move {
        let _ = session.await;
        if !shared.closed_flag.load(Ordering::Acquire) {
            tracing::error!("this instance lost the log's leadership; it takes no more writes");
            shared.lose_leadership();
        }
    });
}

/// Inside an append transaction (after the append lock): the token must still
/// be this instance's.
pub(super) async fn check_token(
    transaction: &tokio_postgres::Transaction<'_>,
    token: i64,
) -> Result<(), StoreError> {
    let current: Option<i64> = transaction
        .query_opt("SELECT token FROM infralog_leader WHERE id = 1", &[])
        .await
        .map_err(pg_error)?
        .map(|row| row.get(0));
    if current == Some(token) {
        return Ok(());
    }
    Err(fenced(token, current))
}

/// The refusal of a write by a replaced instance.
pub(super) fn fenced(token: i64, current: Option<i64>) -> StoreError {
    StoreError::Failed(format!(
        "this instance is no longer the active one on the log (its fencing token is {token}, \
         the log's is {}): another instance took over",
        current.map_or_else(|| "unset".to_owned(), |c| c.to_string())
    ))
}
