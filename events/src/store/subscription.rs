//! Subscriptions to new commits.
//!
//! The writer never waits for a subscriber: it offers each committed envelope to a
//! bounded channel and drops it when the channel is full. The subscriber notices
//! what it missed (a gap in positions, or a durable head beyond what it has seen) and
//! reads that part from the log. So memory stays bounded, and every event is
//! delivered exactly once, in position order.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::StoreError;
use crate::envelope::Envelope;

/// How many envelopes a subscriber's channel holds before the writer drops them.
const CHANNEL_CAPACITY: usize = 4096;
/// The most envelopes one catch-up read returns.
const CATCH_UP_BATCH: usize = 1024;
/// The most envelopes one call to [`Subscription::next_batch`] returns.
const MAX_BATCH: usize = 4096;

/// Reads committed envelopes from a position: how a subscriber catches up.
pub type LogReader = Arc<dyn Fn(u64, usize) -> Result<Vec<Envelope>, StoreError> + Send + Sync>;

/// The writer's side: the channels of every live subscriber.
pub(crate) struct SubscriberHub {
    /// `None` once the store is closed.
    senders: Mutex<Option<Vec<SyncSender<Arc<Envelope>>>>>,
}

impl SubscriberHub {
    pub(crate) fn new() -> Self {
        SubscriberHub {
            senders: Mutex::new(Some(Vec::new())),
        }
    }

    pub(crate) fn add(&self) -> Receiver<Arc<Envelope>> {
        let (sender, receiver) = sync_channel(CHANNEL_CAPACITY);
        // After close the sender is dropped here: the subscriber sees the end.
        if let Some(senders) = self
            .senders
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_mut()
        {
            senders.push(sender);
        }
        receiver
    }

    /// Disconnects every subscriber: they hand out what is durable, then end.
    pub(crate) fn close(&self) {
        *self.senders.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// Offers committed envelopes to every subscriber, never blocking.
    pub(crate) fn publish(&self, envelopes: &[Arc<Envelope>]) {
        let mut guard = self.senders.lock().unwrap_or_else(|p| p.into_inner());
        let Some(senders) = guard.as_mut() else {
            return;
        };
        senders.retain(|sender| {
            for envelope in envelopes {
                match sender.try_send(Arc::clone(envelope)) {
                    Ok(()) => {}
                    // The subscriber will read what it missed from the log.
                    Err(TrySendError::Full(_)) => return true,
                    Err(TrySendError::Disconnected(_)) => return false,
                }
            }
            true
        });
    }
}

/// A subscriber's side. See the module documentation.
pub struct Subscription {
    last: u64,
    receiver: Receiver<Arc<Envelope>>,
    head: Arc<AtomicU64>,
    reader: LogReader,
    ready: VecDeque<Arc<Envelope>>,
}

impl Subscription {
    /// A subscription that has seen everything up to `after_position`. `head` is the
    /// durable head, updated before envelopes are published.
    pub fn new(
        after_position: u64,
        receiver: Receiver<Arc<Envelope>>,
        head: Arc<AtomicU64>,
        reader: LogReader,
    ) -> Self {
        Subscription {
            last: after_position,
            receiver,
            head,
            reader,
            ready: VecDeque::new(),
        }
    }

    /// The position of the last envelope handed out.
    pub fn position(&self) -> u64 {
        self.last
    }

    /// The next envelopes in order, waiting up to `timeout` for one; empty when none
    /// came. Blocking: call it from a dedicated thread.
    pub fn next_batch(&mut self, timeout: Duration) -> Result<Vec<Arc<Envelope>>, StoreError> {
        let deadline = Instant::now() + timeout;
        loop {
            while let Ok(envelope) = self.receiver.try_recv() {
                self.accept(envelope)?;
                if self.ready.len() >= MAX_BATCH {
                    break;
                }
            }
            if self.ready.is_empty() {
                self.catch_up_to(self.head.load(Ordering::Acquire))?;
            }
            if !self.ready.is_empty() {
                let count = self.ready.len().min(MAX_BATCH);
                return Ok(self.ready.drain(..count).collect());
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(Vec::new());
            }
            match self.receiver.recv_timeout(deadline - now) {
                Ok(envelope) => self.accept(envelope)?,
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    // The store is closed: hand out what is durable, then stop.
                    self.catch_up_to(self.head.load(Ordering::Acquire))?;
                    if self.ready.is_empty() {
                        return Err(StoreError::Closed);
                    }
                }
            }
        }
    }

    fn accept(&mut self, envelope: Arc<Envelope>) -> Result<(), StoreError> {
        if envelope.position <= self.last {
            return Ok(());
        }
        if envelope.position > self.last + 1 {
            self.catch_up_to(envelope.position - 1)?;
        }
        if envelope.position == self.last + 1 {
            self.last = envelope.position;
            self.ready.push_back(envelope);
        }
        Ok(())
    }

    fn catch_up_to(&mut self, target: u64) -> Result<(), StoreError> {
        while self.last < target {
            let want = ((target - self.last) as usize).min(CATCH_UP_BATCH);
            let envelopes = (self.reader)(self.last + 1, want)?;
            if envelopes.is_empty() {
                return Err(StoreError::Inconsistent(format!(
                    "positions {}..={target} are announced but cannot be read",
                    self.last + 1
                )));
            }
            for envelope in envelopes {
                if envelope.position != self.last + 1 {
                    return Err(StoreError::Inconsistent(format!(
                        "expected position {} but read {}",
                        self.last + 1,
                        envelope.position
                    )));
                }
                self.last = envelope.position;
                self.ready.push_back(Arc::new(envelope));
            }
        }
        Ok(())
    }
}
