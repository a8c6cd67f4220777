//! A client's malformed request is not infralog's error.
//!
//! actix-http answers a request it cannot parse (a control byte in a header, a bad
//! request line) with 400 and then logs `stream error: …` at ERROR, one line per
//! request, so any client could fill the log with ERROR lines. Those events are
//! counted here instead of printed, and a reporter thread writes at most one WARN per
//! interval with the count and the last message.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

/// Where actix-http logs connection-level errors.
const DISPATCHER: &str = "actix_http::h1::dispatcher";

static COUNT: AtomicU64 = AtomicU64::new(0);
static LAST: Mutex<Option<String>> = Mutex::new(None);

/// Whether an event is one of actix-http's per-connection errors.
pub fn is_client_error(metadata: &Metadata<'_>) -> bool {
    metadata.target() == DISPATCHER && *metadata.level() == Level::ERROR
}

/// Counts actix-http's per-connection errors (the printing layer filters them out).
pub struct ClientErrorCounter;

impl<S: Subscriber> Layer<S> for ClientErrorCounter {
    fn on_event(&self, event: &Event<'_>, _context: Context<'_, S>) {
        if !is_client_error(event.metadata()) {
            return;
        }
        COUNT.fetch_add(1, Ordering::Relaxed);
        let mut message = Message(None);
        event.record(&mut message);
        if let Some(text) = message.0 {
            *LAST.lock().unwrap_or_else(|p| p.into_inner()) = Some(text);
        }
    }
}

struct Message(Option<String>);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = Some(format!("{value:?}"));
        }
    }
}

/// Starts the thread that reports the count once per `interval` (nothing when there
/// was none). An event cannot be logged from inside the subscriber, hence a thread.
pub fn spawn_reporter(interval: Duration) {
    let spawned = std::thread::Builder::new()
        .name("client-errors".into())
        .spawn(move || loop {
            std::thread::sleep(interval);
            report();
        });
    if let Err(error) = spawned {
        tracing::warn!(%error, "the reporter of malformed requests did not start");
    }
}

fn report() {
    let count = COUNT.swap(0, Ordering::Relaxed);
    if count == 0 {
        return;
    }
    let last = LAST
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take()
        .unwrap_or_default();
    tracing::warn!(
        count,
        last = %last,
        "malformed HTTP requests were answered 400 and their connections closed"
    );
}
