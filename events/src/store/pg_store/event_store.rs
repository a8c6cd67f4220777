//! `PgStore` as the `EventStore` every part of infralog uses: appends and
//! imports go to the writer task, reads to the pool, heads and subscriptions to
//! this instance's follower.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::sync::{oneshot, watch};
use uuid::Uuid;

use super::rows::{envelope_of, COLUMNS};
use super::writer::Job;
use super::{block_on, limit, pg_error, pool_error, read_all_from, PgStore};
use crate::envelope::{Envelope, StreamId};
use crate::store::{
    AppendRequest, EventStore, ImportRequest, Pending, PendingAppend, PendingImport, StoreError,
    StoreHealth, Subscription,
};

impl EventStore for PgStore {
    fn append(&self, request: AppendRequest) -> PendingAppend {
        if self.shared.read_only {
            return Pending::ready(Err(StoreError::ReadOnly));
        }
        let (answer, receiver) = oneshot::channel();
        match self.send(Job::Append(request, answer)) {
            Ok(()) => Pending::new(receiver),
            Err(_) => Pending::ready(Err(StoreError::Closed)),
        }
    }

    fn import_streams(&self, request: ImportRequest) -> PendingImport {
        if self.shared.read_only {
            return Pending::ready(Err(StoreError::ReadOnly));
        }
        let (answer, receiver) = oneshot::channel();
        match self.send(Job::Import(request, answer)) {
            Ok(()) => Pending::new(receiver),
            Err(_) => Pending::ready(Err(StoreError::Closed)),
        }
    }

    fn read_stream(
        &self,
        stream: &StreamId,
        from_version: u64,
        max: usize,
    ) -> Result<Vec<Envelope>, StoreError> {
        let shared = Arc::clone(&self.shared);
        let name = stream.as_str().to_owned();
        block_on(&self.handle, async move {
            let client = shared.pool.get().await.map_err(pool_error)?;
            let query = format!(
                "SELECT {COLUMNS} FROM infralog_events WHERE stream = $1 AND version >= $2 \
                 ORDER BY version LIMIT $3"
            );
            let rows = client
                .query(&query, &[&name, &(from_version.max(1) as i64), &limit(max)])
                .await
                .map_err(pg_error)?;
            rows.iter().map(envelope_of).collect()
        })
    }

    fn read_all(&self, from_position: u64, max: usize) -> Result<Vec<Envelope>, StoreError> {
        let shared = Arc::clone(&self.shared);
        block_on(&self.handle, async move {
            read_all_from(&shared, from_position, max).await
        })
    }

    fn stream_version(&self, stream: &StreamId) -> Result<u64, StoreError> {
        let shared = Arc::clone(&self.shared);
        let name = stream.as_str().to_owned();
        block_on(&self.handle, async move {
            let client = shared.pool.get().await.map_err(pool_error)?;
            let row = client
                .query_opt(
                    "SELECT version FROM infralog_streams WHERE stream = $1",
                    &[&name],
                )
                .await
                .map_err(pg_error)?;
            Ok(row.map_or(0, |row| row.get::<_, i64>(0) as u64))
        })
    }

    fn list_streams(
        &self,
        after: Option<&StreamId>,
        max: usize,
    ) -> Result<Vec<(StreamId, u64)>, StoreError> {
        let shared = Arc::clone(&self.shared);
        let after = after.map(|s| s.as_str().to_owned());
        block_on(&self.handle, async move {
            let client = shared.pool.get().await.map_err(pool_error)?;
            let rows = client
                .query(
                    "SELECT stream, version FROM infralog_streams \
                     WHERE $1::text IS NULL OR stream > $1 ORDER BY stream LIMIT $2",
                    &[&after, &limit(max)],
                )
                .await
                .map_err(pg_error)?;
            rows.iter()
                .map(|row| {
                    Ok((
                        StreamId::new(row.get::<_, String>(0))?,
                        row.get::<_, i64>(1) as u64,
                    ))
                })
                .collect()
        })
    }

    fn head_position(&self) -> u64 {
        self.shared.head.load(Ordering::Acquire)
    }

    fn watch_head(&self) -> watch::Receiver<u64> {
        self.shared.head_watch.subscribe()
    }

    fn subscribe(&self, after_position: u64) -> Subscription {
        let receiver = self.shared.hub.add();
        Subscription::new(
            after_position,
            receiver,
            Arc::clone(&self.shared.head),
            self.reader(),
        )
    }

    fn instance_id(&self) -> Uuid {
        self.shared.instance
    }

    fn health(&self) -> StoreHealth {
        if self.shared.is_closed() {
            StoreHealth::Closed
        } else if self.shared.read_only {
            StoreHealth::ReadOnly
        } else if self.shared.has_lost_leadership() {
            StoreHealth::FailStopped(
                "another instance took over the log: this one takes no more writes".into(),
            )
        } else {
            StoreHealth::Writable
        }
    }

    fn latest_position(&self) -> Result<u64, StoreError> {
        let shared = Arc::clone(&self.shared);
        let latest = block_on(&self.handle, async move {
            let client = shared.pool.get().await.map_err(pool_error)?;
            let row = client
                .query_one(
                    "SELECT coalesce(max(position), 0) FROM infralog_events",
                    &[],
                )
                .await
                .map_err(pg_error)?;
            Ok(row.get::<_, i64>(0) as u64)
        })?;
        self.shared.advance_head(latest);
        Ok(latest)
    }
}
