//! A standby on a shared PostgreSQL log serves too, so that any instance can
//! answer any request (no sticky sessions):
//!
//! - a request that may write (any method but GET and HEAD, IM's export with
//!   `delete`, every facade route) is forwarded to the active instance, the
//!   lease holder, at the address it keeps with the lease; all decisions and all
//!   the work that must happen once (launches, contextualization, observation,
//!   facade timers) stay on that one instance, and the fencing token keeps a
//!   replaced one from writing;
//! - a read is answered from this instance's read model once it has applied
//!   everything the log held when the request arrived, so what any instance
//!   acknowledged is seen here (read-your-writes across instances, at the cost
//!   of one query).
//!
//! When the lease frees (the active instance stopped, died or froze past its
//! lease), the standby stops serving and starts again as the active instance,
//! resuming interrupted work exactly as a restart does.

use std::cell::RefCell;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use actix_web::http::header::{self, HeaderName};
use actix_web::http::{Method, StatusCode};
use actix_web::{web, HttpResponse};
use infralog_events::{EventStore, PgStore};

use crate::api::{body, RequestContext};
use crate::projections::Projections;

/// How often a standby reads the lease (where the active instance is, and
/// whether it is gone).
const LEASE_POLL: Duration = Duration::from_millis(200);
/// How long a forwarded request may take (a synchronous destroy of many VMs
/// is slow).
const FORWARD_TIMEOUT: Duration = Duration::from_secs(600);
/// The largest answer relayed (an export with `delete` is a whole document).
const MAX_FORWARDED_ANSWER: usize = 256 * 1024 * 1024;

/// Headers that belong to one connection, never relayed.
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// This instance as a standby.
pub struct Standby {
    store: Arc<PgStore>,
    /// The active instance's address, as last read with the lease.
    active: RwLock<Option<String>>,
}

impl Standby {
    /// A standby on `store` (opened read-only).
    pub fn new(store: Arc<PgStore>) -> Arc<Self> {
        Arc::new(Standby {
            store,
            active: RwLock::new(None),
        })
    }

    /// Follows the lease until it frees (never taken, expired, or given up by a
    /// clean stop): then this instance may take over.
    pub async fn until_lease_frees(self: Arc<Self>) {
        loop {
            let store = Arc::clone(&self.store);
            match tokio::task::spawn_blocking(move || store.lease_holder()).await {
                Ok(Ok(Some(holder))) if !holder.expired => {
                    *self.active.write().unwrap_or_else(|p| p.into_inner()) = holder.address;
                }
                Ok(Ok(_)) => {
                    tracing::info!("the active instance's lease is free: taking over");
                    return;
                }
                Ok(Err(error)) => {
                    tracing::warn!(%error, "reading the log's lease failed; trying again")
                }
                Err(error) => tracing::warn!(%error, "the lease reader failed; trying again"),
            }
            tokio::time::sleep(LEASE_POLL).await;
        }
    }

    /// The active instance's address, read from the lease now.
    async fn read_active(&self) -> Option<String> {
        let store = Arc::clone(&self.store);
        let holder = tokio::task::spawn_blocking(move || store.lease_holder())
            .await
            .ok()?
            .ok()??;
        let address = holder.address.filter(|_| !holder.expired)?;
        *self.active.write().unwrap_or_else(|p| p.into_inner()) = Some(address.clone());
        Some(address)
    }

    /// Whether this request may write, and so goes to the active instance.
    pub fn forwards(context: &RequestContext, facade_path: bool) -> bool {
        let method = context.request.method();
        facade_path
            || !(method == Method::GET || method == Method::HEAD)
            || context
                .request
                .query_string()
                .split('&')
                .any(|pair| pair.split('=').next() == Some("delete"))
    }

    /// Waits until the read model holds everything the log holds now.
    pub async fn catch_up(&self, projections: &Projections) {
        let store = Arc::clone(&self.store);
        match tokio::task::spawn_blocking(move || store.latest_position()).await {
            Ok(Ok(latest)) => projections.wait_for(latest).await,
            // Out of reach: answer from what this instance has applied.
            Ok(Err(error)) => tracing::warn!(%error, "the log's latest position cannot be read"),
            Err(error) => tracing::warn!(%error, "the position reader failed"),
        }
    }

    /// Sends the request to the active instance and relays its answer, once this
    /// instance's read model holds what it wrote.
    pub async fn forward(
        &self,
        context: &RequestContext,
        payload: web::Payload,
        max_body_bytes: usize,
        projections: &Projections,
    ) -> HttpResponse {
        let body = match body::read(context, payload, max_body_bytes).await {
            Ok(body) => body,
            Err(error) => return error.into_response(&context.accept),
        };
        let known = self
            .active
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        // Not read yet (the standby just started): read it now.
        let active = match known {
            Some(active) => Some(active),
            None => self.read_active().await,
        };
        let Some(active) = active else {
            return unreachable_active("no active instance has said where it serves");
        };
        let answer = relay(context, &active, body).await;
        self.catch_up(projections).await;
        answer.unwrap_or_else(|error| {
            tracing::warn!(%error, %active, "forwarding a request to the active instance failed");
            unreachable_active("the active instance could not be reached or did not answer")
        })
    }
}

thread_local! {
    // One client per HTTP worker thread (awc's client is not `Send`), so that
    // forwarded requests reuse their connections.
    static CLIENT: RefCell<Option<awc::Client>> = const { RefCell::new(None) };
}

fn client() -> awc::Client {
    CLIENT.with(|cell| {
        cell.borrow_mut()
            .get_or_insert_with(|| {
                awc::Client::builder()
                    .timeout(FORWARD_TIMEOUT)
                    .disable_redirects()
                    .finish()
            })
            .clone()
    })
}

async fn relay(
    context: &RequestContext,
    active: &str,
    body: Vec<u8>,
) -> Result<HttpResponse, String> {
    let request = &context.request;
    let target = match request.uri().path_and_query() {
        Some(path) => format!("{}{path}", active.trim_end_matches('/')),
        None => format!("{}{}", active.trim_end_matches('/'), request.path()),
    };
    let mut forwarded = client().request(request.method().clone(), target);
    for (name, value) in request.headers() {
        if !is_hop_by_hop(name) && name != header::CONTENT_LENGTH {
            // `Host` included: the active instance builds IM's URIs from it.
            forwarded = forwarded.append_header((name.clone(), value.clone()));
        }
    }
    let mut answer = forwarded.send_body(body).await.map_err(|e| e.to_string())?;
    let content = answer
        .body()
        .limit(MAX_FORWARDED_ANSWER)
        .await
        .map_err(|e| e.to_string())?;
    let status = StatusCode::from_u16(answer.status().as_u16()).map_err(|e| e.to_string())?;
    let mut relayed = HttpResponse::build(status);
    for (name, value) in answer.headers() {
        if !is_hop_by_hop(name) && name != header::CONTENT_LENGTH && name != header::DATE {
            relayed.append_header((name.clone(), value.clone()));
        }
    }
    Ok(relayed.body(content))
}

fn is_hop_by_hop(name: &HeaderName) -> bool {
    HOP_BY_HOP.contains(&name.as_str())
}

/// 503: the active instance is out of reach (it may be failing over).
fn unreachable_active(why: &str) -> HttpResponse {
    HttpResponse::build(StatusCode::SERVICE_UNAVAILABLE)
        .insert_header((header::RETRY_AFTER, "1"))
        .content_type("text/plain; charset=utf-8")
        .body(format!(
            "{why}; this instance is a standby and forwards writes to it: retry shortly"
        ))
}
