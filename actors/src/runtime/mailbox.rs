//! How many messages wait in the actors' mailboxes.
//!
//! actix cannot tell a mailbox's length, so the runtime counts for it: a message
//! sent through [`try_send`] carries a [`Queued`] ticket that adds one to its
//! actor's count and to its kind's count, and the ticket takes the one back when
//! it is dropped. The handler drops it as its first step; a message refused at
//! once (a full mailbox, a stopped actor) drops it before `try_send` returns; a
//! message still queued when its actor stops is dropped with the mailbox, and its
//! ticket with it. Every way out of a mailbox drops the message, so the count
//! cannot drift.
//!
//! The counts are plain atomics: the metrics are read from them (`/metrics`), but
//! this crate knows no metrics library.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use actix::prelude::*;

/// The messages waiting in the mailboxes of one kind of actor, and in the deepest
/// one of them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MailboxDepth {
    /// Messages sent and not yet taken by a handler, over every actor of the kind.
    pub waiting: u64,
    /// The most waiting in one actor's mailbox, among the actors running now.
    pub deepest: u64,
}

/// One actor's mailbox count and its kind's. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub(crate) struct Mailbox {
    own: Arc<AtomicU64>,
    kind: Arc<AtomicU64>,
}

impl Mailbox {
    /// The mailbox of a new actor whose kind counts in `kind`.
    pub(crate) fn of_kind(kind: &Arc<AtomicU64>) -> Self {
        Mailbox {
            own: Arc::new(AtomicU64::new(0)),
            kind: Arc::clone(kind),
        }
    }

    /// Counts one message in; the ticket counts it out when dropped.
    pub(crate) fn enter(&self) -> Queued {
        self.own.fetch_add(1, Ordering::Relaxed);
        self.kind.fetch_add(1, Ordering::Relaxed);
        Queued {
            mailbox: self.clone(),
        }
    }

    /// The messages waiting in this actor's mailbox.
    pub(crate) fn waiting(&self) -> u64 {
        self.own.load(Ordering::Relaxed)
    }
}

/// A message's place in a mailbox: counted from its creation to its drop.
#[derive(Debug)]
pub(crate) struct Queued {
    mailbox: Mailbox,
}

impl Drop for Queued {
    fn drop(&mut self) {
        self.mailbox.own.fetch_sub(1, Ordering::Relaxed);
        self.mailbox.kind.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A message that carries its [`Queued`] ticket.
pub(crate) trait Ticketed {
    /// Where the message keeps its ticket.
    fn ticket(&mut self) -> &mut Option<Queued>;
}

/// `address.try_send(message)`, counted in `mailbox` while the message waits. A
/// message handed back (full, closed) is counted out first, so a retry counts it
/// again.
// The error hands the message back, as actix's does.
#[allow(clippy::result_large_err)]
pub(crate) fn try_send<A, M>(
    address: &Addr<A>,
    mailbox: &Mailbox,
    mut message: M,
) -> Result<(), SendError<M>>
where
    A: Actor<Context = Context<A>> + Handler<M>,
    M: Message<Result = ()> + Ticketed + Send + 'static,
{
    *message.ticket() = Some(mailbox.enter());
    address.try_send(message).map_err(|error| match error {
        SendError::Full(mut message) => {
            message.ticket().take();
            SendError::Full(message)
        }
        SendError::Closed(mut message) => {
            message.ticket().take();
            SendError::Closed(message)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::Semaphore;

    /// An actor whose every message waits for a permit of `gate` before it ends,
    /// so messages pile up in its mailbox until the test lets them through; a
    /// closed gate stops it. It counts the messages its handler took.
    struct Gated {
        handled: Arc<AtomicU64>,
    }

    impl Actor for Gated {
        type Context = Context<Self>;
    }

    struct Job {
        gate: Arc<Semaphore>,
        queued: Option<Queued>,
    }

    impl Message for Job {
        type Result = ();
    }

    impl Ticketed for Job {
        fn ticket(&mut self) -> &mut Option<Queued> {
            &mut self.queued
        }
    }

    impl Handler<Job> for Gated {
        type Result = AtomicResponse<Self, ()>;

        fn handle(&mut self, job: Job, _: &mut Context<Self>) -> Self::Result {
            drop(job.queued);
            self.handled.fetch_add(1, Ordering::Relaxed);
            let gate = job.gate;
            AtomicResponse::new(Box::pin(
                async move {
                    match gate.acquire().await {
                        Ok(permit) => {
                            permit.forget();
                            false
                        }
                        Err(_) => true,
                    }
                }
                .into_actor(self)
                .map(|closed, _, ctx| {
                    if closed {
                        ctx.stop();
                    }
                }),
            ))
        }
    }

    /// Lets the actor's arbiter run until `done` holds (or panics after a while).
    async fn until(done: impl Fn() -> bool) {
        for _ in 0..500 {
            if done() {
                return;
            }
            actix::clock::sleep(std::time::Duration::from_millis(2)).await;
        }
        panic!("the condition never held");
    }

    #[test]
    fn a_ticket_counts_in_the_actor_and_its_kind_until_dropped() {
        let kind = Arc::new(AtomicU64::new(0));
        let first = Mailbox::of_kind(&kind);
        let second = Mailbox::of_kind(&kind);
        let a = first.enter();
        let b = first.enter();
        let c = second.enter();
        assert_eq!((first.waiting(), second.waiting()), (2, 1));
        assert_eq!(kind.load(Ordering::Relaxed), 3);
        drop(b);
        drop(c);
        assert_eq!((first.waiting(), second.waiting()), (1, 0));
        assert_eq!(kind.load(Ordering::Relaxed), 1);
        drop(a);
        assert_eq!(kind.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn sent_handled_refused_and_dropped_messages_balance() {
        actix::System::new().block_on(async {
            let kind = Arc::new(AtomicU64::new(0));
            let mailbox = Mailbox::of_kind(&kind);
            let gate = Arc::new(Semaphore::new(0));
            let handled = Arc::new(AtomicU64::new(0));
            let counter = Arc::clone(&handled);
            let address = Gated::create(move |ctx| {
                ctx.set_mailbox_capacity(2);
                Gated { handled: counter }
            });
            let job = || Job {
                gate: Arc::clone(&gate),
                queued: None,
            };
            // The first is taken by the handler (which then waits at the gate);
            // two more wait in the mailbox.
            try_send(&address, &mailbox, job()).expect("room");
            until(|| mailbox.waiting() == 0).await;
            try_send(&address, &mailbox, job()).expect("room");
            try_send(&address, &mailbox, job()).expect("room");
            assert_eq!(mailbox.waiting(), 2);
            // A full mailbox hands the message back, counted out.
            let mut refused = 0;
            for _ in 0..8 {
                if let Err(SendError::Full(message)) = try_send(&address, &mailbox, job()) {
                    assert!(message.queued.is_none());
                    refused += 1;
                }
            }
            assert!(refused > 0, "the mailbox never filled");
            assert_eq!(kind.load(Ordering::Relaxed), mailbox.waiting());
            // Let one through: the next handler starts, one fewer waits.
            let waiting = mailbox.waiting();
            gate.add_permits(1);
            until(|| mailbox.waiting() == waiting - 1).await;
            assert!(mailbox.waiting() > 0, "messages still wait");
            // The actor stops (its handler sees the gate closed): what still waits
            // is dropped unhandled, and counted out.
            let handled_before_stop = handled.load(Ordering::Relaxed);
            gate.close();
            until(|| kind.load(Ordering::Relaxed) == 0).await;
            assert_eq!(mailbox.waiting(), 0);
            assert_eq!(handled.load(Ordering::Relaxed), handled_before_stop);
            assert!(!address.connected(), "the actor stopped");
        });
    }
}
