//! The facades: other systems' REST APIs served on infralog's core. Each is off
//! unless `serve --facades` names it; a disabled facade's paths fall through to
//! IM's router (404), so the IM API is unchanged.
//!
//! IMC (`/v1/…`, [`imc`]), MODAClouds Batch (`/jobs…`, [`batch`]) and MLBench
//! (`/api/…`, [`mlbench`]) exist so far. A facade's aggregates live in
//! their own streams; they drive ordinary core infrastructures through the IM
//! API's commands, and learn of their changes from the [`follower`].

use std::sync::mpsc;
use std::sync::Arc;

use actix_web::http::header::CONTENT_LENGTH;
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use futures_util::StreamExt;
use infralog_actors::connectors::Connectors;
use infralog_actors::runtime::Registry;
use infralog_events::{Envelope, EventStore, StreamId};

use crate::api::events;
use crate::api::plan::ContextPolicy;
use crate::api::{Limits, RequestContext};
use crate::auth::ownership::PasswordHasher;
use crate::history::HistorySubject;
use crate::projections::Projections;

pub mod batch;
pub mod core;
pub mod follower;
pub mod imc;
pub mod mlbench;

/// Every facade route as `(method, template)`, served when its facade is
/// enabled (the OpenAPI document describes each).
pub fn routes() -> impl Iterator<Item = (&'static str, &'static str)> {
    batch::ROUTES.iter().copied()
}

/// The path each facade owns when enabled (no IM route uses them).
const IMC_PREFIX: &str = "/v1";
const BATCH_PREFIX: &str = "/jobs";
const MLBENCH_PREFIX: &str = "/api";

/// Whether `path` is `prefix` or below it.
fn is_under(path: &str, prefix: &str) -> bool {
    path.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// Whether `path` belongs to a facade, enabled here or not (a standby forwards
/// them all: facades run on the active instance only).
pub fn is_facade_path(path: &str) -> bool {
    [IMC_PREFIX, BATCH_PREFIX, MLBENCH_PREFIX]
        .iter()
        .any(|prefix| is_under(path, prefix))
}

/// Which facades run, and how.
#[derive(Debug, Clone, Default)]
pub struct FacadeSettings {
    /// The IMC facade, when enabled.
    pub imc: Option<imc::ImcSettings>,
    /// The MODAClouds Batch facade, when enabled.
    pub batch: Option<batch::BatchSettings>,
    /// The MLBench facade, when enabled.
    pub mlbench: Option<mlbench::MlbenchSettings>,
}

impl FacadeSettings {
    /// Settings with the facades named in `names` (`imc`) at their defaults.
    /// Names of facades infralog does not have are an error.
    pub fn enable(names: &[String]) -> Result<Self, String> {
        let mut settings = FacadeSettings::default();
        for name in names.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
            match name {
                "imc" => settings.imc = Some(imc::ImcSettings::default()),
                "batch" => settings.batch = Some(batch::BatchSettings::default()),
                "mlbench" => settings.mlbench = Some(mlbench::MlbenchSettings::default()),
                other => {
                    return Err(format!(
                        "unknown facade {other:?} (this build serves: imc, batch, mlbench)"
                    ))
                }
            }
        }
        Ok(settings)
    }

    /// Adds the clouds the facades' sites need (sites that simulate faults).
    pub fn register_connectors(&self, connectors: &mut Connectors) {
        if let Some(imc) = &self.imc {
            if let Some(faulty) = imc::faults::FaultyDummy::for_catalogue(&imc.sites) {
                connectors.register(faulty);
            }
        }
    }

    /// The channel that hands the facades' follower what the read model applied;
    /// `(None, None)` when no facade runs.
    #[allow(clippy::type_complexity)]
    pub fn tap(
        &self,
    ) -> (
        Option<mpsc::Sender<Vec<Arc<Envelope>>>>,
        Option<mpsc::Receiver<Vec<Arc<Envelope>>>>,
    ) {
        if self.imc.is_none() && self.batch.is_none() && self.mlbench.is_none() {
            return (None, None);
        }
        let (sender, receiver) = mpsc::channel();
        (Some(sender), Some(receiver))
    }
}

/// What the facades need of the server.
pub struct FacadeDeps {
    /// The log.
    pub store: Arc<dyn EventStore>,
    /// The read model.
    pub projections: Arc<Projections>,
    /// The core's actors.
    pub registry: Registry,
    /// The clouds (with the facades' own registered).
    pub connectors: Connectors,
    /// Hashes the facades' owner records.
    pub hasher: Arc<PasswordHasher>,
    /// Request limits (body size).
    pub limits: Limits,
    /// How contextualization goes on this server.
    pub policy: ContextPolicy,
    /// The server's data directory (the Batch facade's sandboxes live under it).
    pub data_dir: std::path::PathBuf,
    /// The log's metric points (the MLBench facade's).
    pub metrics: Option<Arc<dyn infralog_events::store::metrics::MetricStore>>,
    /// The port the server listens on (MLBench workers post to it).
    pub api_port: u16,
}

/// The running facades, shared by the HTTP workers.
#[derive(Default)]
pub struct Facades {
    imc: Option<Arc<imc::Imc>>,
    batch: Option<Arc<batch::Batch>>,
    mlbench: Option<Arc<mlbench::Mlbench>>,
}

impl Facades {
    /// Starts the enabled facades: their actors, the follower, and the work a
    /// restart interrupted.
    pub async fn start(
        settings: &FacadeSettings,
        deps: FacadeDeps,
        batches: Option<mpsc::Receiver<Vec<Arc<Envelope>>>>,
    ) -> Result<Self, String> {
        let batch = match &settings.batch {
            Some(batch_settings) => {
                Some(Arc::new(batch::Batch::start(batch_settings, &deps).await?))
            }
            None => None,
        };
        let mlbench = match &settings.mlbench {
            Some(mlbench_settings) => {
                let mlbench = Arc::new(mlbench::Mlbench::start(mlbench_settings, &deps).await?);
                mlbench.resume().await;
                Some(mlbench)
            }
            None => None,
        };
        let imc = match &settings.imc {
            Some(imc_settings) => Some(Arc::new(imc::Imc::start(imc_settings, &deps).await?)),
            None => None,
        };
        if let Some(batches) = batches {
            follower::spawn(
                batches,
                Arc::clone(&deps.projections),
                imc.as_ref().map(|imc| imc.placements()),
                batch.clone(),
                mlbench.as_ref().map(|mlbench| mlbench.runs()),
            )
            .map_err(|e| format!("cannot start the facades' follower: {e}"))?;
        }
        if let Some(batch) = &batch {
            batch.resume().await;
        }
        if let Some(imc) = &imc {
            imc.resume();
        }
        Ok(Facades {
            imc,
            batch,
            mlbench,
        })
    }

    /// Whether the IMC facade runs (its routes are then in the OpenAPI document).
    pub fn serves_imc(&self) -> bool {
        self.imc.is_some()
    }

    /// Whether the MLBench facade runs (its routes are then described in the
    /// OpenAPI document).
    pub fn serves_mlbench(&self) -> bool {
        self.mlbench.is_some()
    }

    /// How many actors of each facade kind run, for `/metrics`.
    pub fn running_actors(&self) -> Vec<(&'static str, usize)> {
        let mut running = Vec::new();
        if let Some(imc) = &self.imc {
            running.push(("placement", imc.placements().running_actors()));
        }
        running
    }

    /// Whether a facade serves `path`.
    pub fn claims(&self, path: &str) -> bool {
        (self.imc.is_some() && is_under(path, IMC_PREFIX))
            || (self.batch.is_some() && is_under(path, BATCH_PREFIX))
            || (self.mlbench.is_some() && is_under(path, MLBENCH_PREFIX))
    }

    /// Answers a request for a path [`Facades::claims`].
    pub async fn dispatch(
        &self,
        context: &RequestContext,
        path: &str,
        payload: web::Payload,
    ) -> HttpResponse {
        if is_under(path, BATCH_PREFIX) {
            if let Some(batch) = &self.batch {
                return batch.dispatch(context, path, payload).await;
            }
        }
        if is_under(path, MLBENCH_PREFIX) {
            if let Some(mlbench) = &self.mlbench {
                return mlbench.dispatch(context, path, payload).await;
            }
        }
        match &self.imc {
            Some(imc) => imc.dispatch(context, path, payload).await,
            None => HttpResponse::NotFound().finish(),
        }
    }

    /// The messages waiting in the facades' actors' mailboxes, by kind of actor
    /// (for metrics): the IMC facade's placements.
    pub fn mailbox_depths(&self) -> Vec<(&'static str, infralog_actors::runtime::MailboxDepth)> {
        self.imc
            .iter()
            .map(|imc| ("imc_placement", imc.placements().mailbox_depth()))
            .collect()
    }

    /// Stops the facades' actors.
    pub fn shutdown(&self) {
        if let Some(imc) = &self.imc {
            imc.placements().shutdown();
        }
        if let Some(batch) = &self.batch {
            batch.shutdown();
        }
        if let Some(mlbench) = &self.mlbench {
            mlbench.shutdown();
        }
    }
}

/// Whether the request's HTTP Basic credentials are `user` and `password` (the
/// facades' service identities). Compared in constant time, so timing tells
/// nothing about how much of a password was right.
pub(crate) fn basic_matches(context: &RequestContext, user: &str, password: &str) -> bool {
    use base64::Engine as _;
    let decoded = context
        .request
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|h| h.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
        .and_then(|(_, rest)| {
            base64::engine::general_purpose::STANDARD
                .decode(rest.trim())
                .ok()
        });
    decoded.is_some_and(|decoded| {
        crate::auth::ownership::constant_time_eq(&decoded, format!("{user}:{password}").as_bytes())
    })
}

/// A facade's request body, read whole within `limit` bytes and `timeout`; the
/// error is the status and message the facade answers in its own error body
/// (413 beyond the limit, announced or read; 408 when it trickles; 400 when the
/// stream breaks).
pub(crate) async fn read_limited_body(
    context: &RequestContext,
    mut payload: web::Payload,
    limit: usize,
    timeout: std::time::Duration,
) -> Result<Vec<u8>, (StatusCode, String)> {
    let too_large = || {
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            "Request body too large".to_owned(),
        )
    };
    let announced = context
        .request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|length| length > limit as u64) {
        return Err(too_large());
    }
    let deadline = tokio::time::Instant::now() + timeout;
    let mut body = Vec::new();
    loop {
        let next = tokio::time::timeout_at(deadline, payload.next())
            .await
            .map_err(|_| {
                (
                    StatusCode::REQUEST_TIMEOUT,
                    "Request body timed out".to_owned(),
                )
            })?;
        let Some(chunk) = next else { break };
        let chunk =
            chunk.map_err(|e| (StatusCode::BAD_REQUEST, format!("Bad request body: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The `from` and `limit` parameters of a facade's `…/events` route.
#[derive(Debug, serde::Deserialize)]
struct HistoryParams {
    from: Option<u64>,
    limit: Option<u64>,
}

/// `GET …/events` on a facade aggregate: its stream's history answered as IM's
/// `/infrastructures/<id>/events` answers (`from`, `limit`, JSON pages or
/// ndjson). The error is the status and message the facade answers in its own
/// error body (400 for bad parameters, 406 for an Accept it cannot meet, 500).
pub(crate) async fn stream_history(
    context: &RequestContext,
    store: Arc<dyn EventStore>,
    stream: StreamId,
) -> Result<HttpResponse, (StatusCode, String)> {
    let bad = |text: &str| (StatusCode::BAD_REQUEST, text.to_owned());
    let params = web::Query::<HistoryParams>::from_query(context.request.query_string())
        .map_err(|_| bad("from and limit must be whole numbers"))?
        .into_inner();
    let from = params.from.unwrap_or(1);
    if from == 0 {
        return Err(bad("from must be at least 1"));
    }
    let limit = match params.limit {
        None => None,
        Some(limit @ 1..) if limit <= events::MAX_LIMIT as u64 => Some(limit as i64),
        Some(_) => {
            return Err(bad(&format!(
                "limit must be from 1 to {}",
                events::MAX_LIMIT
            )))
        }
    };
    let format = events::negotiate_events(&context.accept).map_err(|_| {
        (
            StatusCode::NOT_ACCEPTABLE,
            "Only application/json and application/x-ndjson are served".to_owned(),
        )
    })?;
    events::answer_events(
        &store,
        HistorySubject::Stream(stream),
        format,
        from,
        limit.map(|l| l as u64),
    )
    .await
    .map_err(|error| {
        tracing::error!(%error, "a facade's history cannot be read");
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            "The history cannot be read".to_owned(),
        )
    })
}
