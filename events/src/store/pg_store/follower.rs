//! Following the global log: what other instances commit reaches this one.
//!
//! A dedicated connection LISTENs on the store's channel; every commit (this
//! instance's own included) sends the new head there. On a notification, on a
//! wake-up from this instance's writer, or at the latest every second (a
//! notification can be lost with its connection), the follower reads the log
//! after what it has published, hands the envelopes to the subscribers and
//! advances the durable head.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio_postgres::AsyncMessage;

use super::writer::NOTIFY_CHANNEL;
use super::{read_all_from, Shared};

/// The longest the follower sleeps without a notification.
const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// The most envelopes one catch-up read takes.
const READ_BATCH: usize = 1_024;

/// Runs until the store closes.
pub(super) async fn run(shared: Arc<Shared>, mut published: u64) {
    loop {
        let (wake, mut woken) = mpsc::unbounded_channel::<()>();
        let listening = listen(&shared, wake).await;
        if let Err(error) = &listening {
            tracing::warn!(%error, "the event store cannot listen for commits; polling");
        }
        loop {
            if shared.is_closed() {
                return;
            }
            published = catch_up(&shared, published).await;
            tokio::select! {
                message = woken.recv() => {
                    if message.is_none() && listening.is_ok() {
                        // The listening connection ended: open another.
                        break;
                    }
                    if message.is_none() {
                        tokio::time::sleep(POLL_INTERVAL).await;
                    }
                }
                () = shared.local_commit.notified() => {}
                () = tokio::time::sleep(POLL_INTERVAL) => {}
            }
            while woken.try_recv().is_ok() {}
        }
    }
}

/// Opens the LISTEN connection; its messages wake the follower.
async fn listen(
    shared: &Shared,
    wake: mpsc::UnboundedSender<()>,
) -> Result<(), crate::store::StoreError> {
    let (client, mut connection) = shared
        .config
        .connect(tokio_postgres::NoTls)
        .await
        .map_err(super::pg_error)?;
    let closed = Arc::clone(&shared.closed_flag);
    tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            if closed.load(std::sync::atomic::Ordering::Acquire) {
                break;
            }
            match message {
                Ok(AsyncMessage::Notification(_)) => {
                    if wake.send(()).is_err() {
                        break;
                    }
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(%error, "the event store's listening connection failed");
                    break;
                }
            }
        }
    });
    // The client is kept in `shared`: dropping it would end the session and its
    // LISTEN.
    client
        .batch_execute(&format!("LISTEN {NOTIFY_CHANNEL}"))
        .await
        .map_err(super::pg_error)?;
    shared.keep_listener(client);
    Ok(())
}

/// Publishes everything committed after `published`; returns the new mark.
async fn catch_up(shared: &Shared, mut published: u64) -> u64 {
    loop {
        let batch = match read_all_from(shared, published + 1, READ_BATCH).await {
            Ok(batch) => batch,
            Err(error) => {
                tracing::warn!(%error, "the event store cannot read new commits");
                return published;
            }
        };
        let Some(last) = batch.last().map(|e| e.position) else {
            return published;
        };
        shared.advance_head(last);
        let envelopes: Vec<Arc<crate::envelope::Envelope>> =
            batch.into_iter().map(Arc::new).collect();
        shared.hub.publish(&envelopes);
        published = last;
        if envelopes.len() < READ_BATCH {
            return published;
        }
    }
}
