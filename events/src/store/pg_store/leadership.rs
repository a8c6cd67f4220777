//! Which instance may write: the active one, holding an expiring lease, fenced
//! by a token.
//!
//! The lease is the one row of `infralog_leader`: the instance that holds it,
//! its fencing token, and when it expires. A server opening the log takes the
//! lease when it is free or expired (the others stand by and try again), which
//! raises the token; it then renews the lease every third of its duration.
//! Every append transaction reads the token under the append lock and refuses to
//! write when it is no longer this instance's. So an instance that was paused or
//! cut off past its lease, and replaced, can never write again, even before it
//! notices; when it notices (a renewal finds another token), it says so
//! ([`super::PgStore::leadership_lost`]) and its server stops.
//!
//! A `kill -9` of the active instance hands the log to a standby when the lease
//! expires; a clean close expires it at once.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_postgres::{Client, NoTls};

use super::{pg_error, Shared};
use crate::store::StoreError;

/// How often a standby tries to take the lease.
const STANDBY_POLL: Duration = Duration::from_millis(250);
/// How often a standby says it is still waiting.
const STANDBY_REPORT: Duration = Duration::from_secs(30);

/// The lease's duration as SQL takes it.
fn millis(lease: Duration) -> i64 {
    i64::try_from(lease.as_millis()).unwrap_or(i64::MAX)
}

/// Who holds the lease, as a standby reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseHolder {
    /// The active instance.
    pub instance: uuid::Uuid,
    /// Where it serves its API (`serve --advertise`), if it said.
    pub address: Option<String>,
    /// Whether its lease ran out (it died or froze): a standby may take over.
    pub expired: bool,
}

/// Reads the lease (`None`: never taken).
pub(super) async fn holder(client: &Client) -> Result<Option<LeaseHolder>, StoreError> {
    let row = client
        .query_opt(
            "SELECT instance, address, expires_at < now() FROM infralog_leader WHERE id = 1",
            &[],
        )
        .await
        .map_err(pg_error)?;
    Ok(row.map(|row| LeaseHolder {
        instance: row.get(0),
        address: row.get(1),
        expired: row.get(2),
    }))
}

/// Takes the lease for this instance, waiting as a standby while another holds
/// it when `wait`, else trying once (`None`: another instance holds it). Returns
/// the client the lease is renewed with, and the fencing token.
pub(super) async fn acquire(
    config: &tokio_postgres::Config,
    instance: uuid::Uuid,
    lease: Duration,
    address: Option<&str>,
    wait: bool,
) -> Result<Option<(Client, i64)>, StoreError> {
    let (client, connection) = config.connect(NoTls).await.map_err(pg_error)?;
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::warn!(%error, "the connection that renews the log's lease failed");
        }
    });
    let mut reported = None::<Instant>;
    loop {
        let taken = client
            .query_opt(
                "INSERT INTO infralog_leader (id, token, instance, expires_at, address) \
                 VALUES (1, 1, $1, now() + $2::bigint * interval '1 millisecond', $3) \
                 ON CONFLICT (id) DO UPDATE SET token = infralog_leader.token + 1, \
                 instance = EXCLUDED.instance, since = now(), expires_at = EXCLUDED.expires_at, \
                 address = EXCLUDED.address \
                 WHERE infralog_leader.expires_at < now() \
                 RETURNING token",
                &[&instance, &millis(lease), &address],
            )
            .await
            .map_err(pg_error)?;
        if let Some(row) = taken {
            let token: i64 = row.get(0);
            tracing::info!(token, "this instance is the active one on the log");
            return Ok(Some((client, token)));
        }
        if !wait {
            return Ok(None);
        }
        if reported.is_none_or(|at| at.elapsed() >= STANDBY_REPORT) {
            tracing::info!("another instance is active on this log; standing by to take over");
            reported = Some(Instant::now());
        }
        tokio::time::sleep(STANDBY_POLL).await;
    }
}

/// Renews the lease every third of its duration until the store closes. When
/// a renewal finds another token, or no renewal succeeded for a whole lease
/// (the database unreachable: the lease may be gone), this instance is no longer
/// the active one.
pub(super) fn renew(shared: Arc<Shared>, client: Client, token: i64, lease: Duration) {
    tokio::spawn(async move {
        let mut renewed = Instant::now();
        loop {
            tokio::time::sleep(lease / 3).await;
            if shared.closed_flag.load(Ordering::Acquire) {
                // `close` expired the lease already.
                return;
            }
            let outcome = client
                .execute(
                    "UPDATE infralog_leader SET expires_at = now() + $2::bigint * interval '1 millisecond' \
                     WHERE id = 1 AND token = $1",
                    &[&token, &millis(lease)],
                )
                .await;
            match outcome {
                Ok(1) => renewed = Instant::now(),
                Ok(_) => {
                    tracing::error!(
                        token,
                        "another instance took the log's lease; this one takes no more writes"
                    );
                    shared.lose_leadership();
                    return;
                }
                Err(error) if renewed.elapsed() >= lease => {
                    tracing::error!(%error, "the log's lease could not be renewed for its whole duration; this instance takes no more writes");
                    shared.lose_leadership();
                    return;
                }
                Err(error) => {
                    tracing::warn!(%error, "renewing the log's lease failed; trying again");
                }
            }
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
