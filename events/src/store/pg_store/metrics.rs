//! The MLBench facade's metric points in PostgreSQL: one table beside the log,
//! indexed for the same range reads as the sled tree (subject, name, date, then
//! the sequence that keeps two points of one date apart). A write is one
//! transaction, committed before it is answered; an exclusive store checks its
//! fencing token in it, so a replaced instance writes no points either.

use std::sync::Arc;

use tokio::sync::oneshot;

use super::{block_on, leadership, pg_error, pool_error, PgStore};
use crate::store::metrics::{MetricStore, MetricWrite, StoredPoint};
use crate::store::{Pending, StoreError};

impl MetricStore for PgStore {
    fn write_metrics(&self, write: MetricWrite) -> Pending<u64> {
        if self.shared.read_only {
            return Pending::ready(Err(StoreError::ReadOnly));
        }
        let shared = Arc::clone(&self.shared);
        let (answer, receiver) = oneshot::channel();
        self.handle.spawn(async move {
            let written = async {
                let mut client = shared.pool.get().await.map_err(pool_error)?;
                let transaction = client.transaction().await.map_err(pg_error)?;
                if let Some(token) = shared.fencing_token {
                    leadership::check_token(&transaction, token).await?;
                }
                let count = match &write {
                    MetricWrite::Insert(points) => {
                        let statement = transaction
                            .prepare(
                                "INSERT INTO infralog_metrics \
                                 (subject, name, date_us, value, metadata, cumulative) \
                                 VALUES ($1, $2, $3, $4, $5, $6)",
                            )
                            .await
                            .map_err(pg_error)?;
                        for point in points {
                            transaction
                                .execute(
                                    &statement,
                                    &[
                                        &point.subject,
                                        &point.name,
                                        &point.date_us,
                                        &point.value,
                                        &point.metadata,
                                        &point.cumulative,
                                    ],
                                )
                                .await
                                .map_err(pg_error)?;
                        }
                        points.len() as u64
                    }
                    MetricWrite::DeleteSubject(subject) => transaction
                        .execute(
                            "DELETE FROM infralog_metrics WHERE subject = $1",
                            &[subject],
                        )
                        .await
                        .map_err(pg_error)?,
                };
                transaction.commit().await.map_err(pg_error)?;
                Ok(count)
            }
            .await;
            let _ = answer.send(written);
        });
        Pending::new(receiver)
    }

    fn read_metrics(
        &self,
        subject: &str,
        name: Option<&str>,
        since_us: Option<i64>,
    ) -> Result<Vec<StoredPoint>, StoreError> {
        let shared = Arc::clone(&self.shared);
        let (subject, name) = (subject.to_owned(), name.map(str::to_owned));
        block_on(&self.handle, async move {
            let client = shared.pool.get().await.map_err(pool_error)?;
            let rows = client
                .query(
                    "SELECT name, date_us, seq, value, metadata, cumulative FROM infralog_metrics \
                     WHERE subject = $1 AND ($2::text IS NULL OR name = $2) \
                     AND date_us >= $3 ORDER BY name, date_us, seq",
                    &[&subject, &name, &since_us.unwrap_or(i64::MIN)],
                )
                .await
                .map_err(pg_error)?;
            Ok(rows
                .iter()
                .map(|row| StoredPoint {
                    name: row.get(0),
                    date_us: row.get(1),
                    seq: row.get::<_, i64>(2) as u64,
                    value: row.get(3),
                    metadata: row.get(4),
                    cumulative: row.get(5),
                })
                .collect())
        })
    }

    fn metric_subjects(&self) -> Result<Vec<String>, StoreError> {
        let shared = Arc::clone(&self.shared);
        block_on(&self.handle, async move {
            let client = shared.pool.get().await.map_err(pool_error)?;
            let rows = client
                .query(
                    "SELECT DISTINCT subject FROM infralog_metrics ORDER BY subject",
                    &[],
                )
                .await
                .map_err(pg_error)?;
            Ok(rows.iter().map(|row| row.get(0)).collect())
        })
    }
}
