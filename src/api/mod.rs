//! The IM REST API: one module per resource; content negotiation and error bodies.
//!
//! Every request goes through [`dispatch`], which matches IM's route table the way
//! FastAPI does ([`routes`]) and hands the request to the resource's handler.
//! Handlers start with the admission step (`admission.rs`: IM's checks in IM's
//! order) and writes end with the commit step ([`commit`]), so a request answered
//! with an error leaves nothing behind.

mod admission;
pub(crate) mod body;
mod clouds;
pub mod commit;
pub mod errors;
pub(crate) mod events;
pub(crate) mod guard;
mod infrastructures;
pub mod media;
mod openapi;
pub mod params;
pub(crate) mod plan;
mod render;
mod respond;
pub mod routes;
mod stats;
mod system;
mod tosca;
pub mod transfer;
mod ui;
mod vms;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use infralog_actors::connectors::Connectors;
use infralog_actors::runtime::Registry;
use infralog_events::domain::{InfId, VmId};
use infralog_events::EventStore;

use crate::auth::ownership::PasswordHasher;
use crate::projections::Projections;
use errors::ApiError;
use params::Query;
use routes::{NoRoute, Route};

/// What handlers share.
pub struct AppState {
    /// The read model: the infrastructures and VMs as the log shows them, for every read.
    pub projections: Arc<Projections>,
    /// For the history routes (`/events`, `?at=`, `/history` and its import): every
    /// other read comes from the projections and every other write goes through an actor.
    pub store: Arc<dyn EventStore>,
    /// The actors, which decide every command and record its events.
    pub registry: Registry,
    /// Hashes and checks owners' passwords, remembering its verdicts.
    pub hasher: Arc<PasswordHasher>,
    /// The cloud connectors the actors and `/clouds` talk to.
    pub connectors: Connectors,
    /// How long a simulated (Dummy) contextualization takes.
    pub contextualization_delay: Duration,
    /// Whether this server can run `ansible-playbook` (real contextualization).
    pub ansible_available: bool,
    /// Compares VMs of real clouds with their clouds when they are read.
    pub observer: Arc<crate::observe::Observer>,
    /// What a request may carry.
    pub limits: Limits,
    /// When each infrastructure was last used (IM lists the most recently saved
    /// first): the read model's position at the time, and a tie-breaking counter.
    pub recently_used: Mutex<HashMap<InfId, (u64, u64)>>,
    /// Counts uses, to order uses at the same read-model position in `recently_used`.
    pub use_counter: AtomicU64,
    /// Each infrastructure's write lane (see [`commit`]).
    pub lanes: commit::Lanes,
    /// Set on a standby of a shared log: it forwards writes to the active
    /// instance and catches up with the log before reads.
    pub standby: Option<Arc<crate::standby::Standby>>,
}

impl AppState {
    /// `view` as the log says after its VMs (or only `vm`) were compared with
    /// their clouds; the present only (`at` is `None`), history is what it was.
    pub async fn observed(
        &self,
        view: crate::projections::InfrastructureView,
        vm: Option<VmId>,
        at: Option<u64>,
    ) -> crate::projections::InfrastructureView {
        // A standby records nothing: the active instance observes the clouds.
        if at.is_some() || self.standby.is_some() {
            return view;
        }
        self.observer.refresh(view, vm).await
    }

    /// How contextualization of `view` (or of a new infrastructure) goes on this
    /// server.
    pub fn context_policy(
        &self,
        view: Option<&crate::projections::InfrastructureView>,
    ) -> plan::ContextPolicy {
        plan::ContextPolicy {
            delay: self.contextualization_delay,
            ansible_available: self.ansible_available,
            ansible_clouds: view.is_some_and(|view| {
                view.live_vms()
                    .any(|vm| self.connectors.configured_by_ansible(&vm.cloud.kind))
            }),
        }
    }

    /// Notes that an infrastructure was used now.
    pub fn touch(&self, id: InfId) {
        let counter = self.use_counter.fetch_add(1, Ordering::Relaxed) + 1;
        let position = self.projections.position();
        self.recently_used
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, (position, counter));
    }

    /// How recently infrastructures were used or changed, for ordering lists.
    pub fn recency_snapshot(&self) -> Recency<'_> {
        Recency {
            used: self.recently_used.lock().unwrap_or_else(|p| p.into_inner()),
        }
    }
}

/// The recency of infrastructures, read under one lock.
pub struct Recency<'a> {
    used: std::sync::MutexGuard<'a, HashMap<InfId, (u64, u64)>>,
}

impl Recency<'_> {
    /// When it was last used (the read model's position then, and a counter), or
    /// last changed.
    pub fn of(&self, view: &crate::projections::InfrastructureView) -> (u64, u64) {
        let touched = self.used.get(&view.id).copied().unwrap_or((0, 0));
        touched.max((view.last_position, 0))
    }
}

/// Limits on what a request may carry.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Bodies above this many bytes are refused with 413.
    pub max_body_bytes: usize,
    /// Header sections above this many bytes are refused with 431.
    pub max_header_bytes: usize,
    /// No request may deploy more VMs than this in total.
    pub max_vms_per_request: u64,
    /// A body must arrive completely within this time after the handler starts
    /// reading it (408 beyond); actix-web itself times out only the head.
    pub body_read_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 1024 * 1024,
            max_header_bytes: 32 * 1024,
            max_vms_per_request: 1000,
            body_read_timeout: Duration::from_secs(60),
        }
    }
}

/// What every handler needs to know about its request.
#[derive(Debug)]
pub struct RequestContext {
    /// The HTTP request as actix-web received it.
    pub request: HttpRequest,
    /// The media types of the `Accept` header, in the client's order; they choose how
    /// answers are rendered.
    pub accept: Vec<String>,
    /// The query string, parsed.
    pub query: Query,
    /// `scheme://host[:port]`, for the URIs IM returns.
    pub base_url: String,
    /// Names the request in the log and in the metadata of the events it causes.
    pub request_id: uuid::Uuid,
}

impl RequestContext {
    fn new(request: HttpRequest) -> Self {
        let accept = media::accept(request.headers());
        let query = Query::parse(request.query_string());
        let base_url = base_url(&request);
        RequestContext {
            request,
            accept,
            query,
            base_url,
            request_id: uuid::Uuid::new_v4(),
        }
    }

    /// The URI IM gives an infrastructure: `{base_url}/infrastructures/{inf}`.
    pub fn infrastructure_uri(&self, inf: &str) -> String {
        format!("{}/infrastructures/{inf}", self.base_url)
    }

    /// The URI IM gives a VM: `{base_url}/infrastructures/{inf}/vms/{vm}`.
    pub fn vm_uri(&self, inf: &str, vm: impl std::fmt::Display) -> String {
        format!("{}/infrastructures/{inf}/vms/{vm}", self.base_url)
    }
}

/// IM builds URIs from the `Host` header as sent; the scheme is `https` only when a
/// proxy on this machine says so (uvicorn trusts `X-Forwarded-Proto` from
/// 127.0.0.1 only).
fn base_url(request: &HttpRequest) -> String {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .unwrap_or_else(|| request.connection_info().host().to_string());
    let from_loopback = request
        .peer_addr()
        .map(|addr| addr.ip().is_loopback())
        .unwrap_or(false);
    let forwarded_https = from_loopback
        && request
            .headers()
            .get("x-forwarded-proto")
            .and_then(|h| h.to_str().ok())
            .map(|proto| proto.trim().eq_ignore_ascii_case("https"))
            .unwrap_or(false);
    let scheme = if forwarded_https { "https" } else { "http" };
    format!("{scheme}://{host}")
}

/// A standby's answer: a write goes to the active instance; a read is answered
/// here once the read model caught up with the log.
async fn standby_dispatch(
    state: &AppState,
    context: &RequestContext,
    path: &str,
    payload: web::Payload,
) -> HttpResponse {
    let Some(standby) = state.standby.clone() else {
        return ApiError::internal("not a standby").into_response(&context.accept);
    };
    let facade_path = crate::facades::is_facade_path(path);
    let matched = routes::match_route_with_template(context.request.method(), path);
    // Recency (IM lists the most recently saved first) is kept by the active
    // instance only: the reads that count as saves, and the list that shows
    // them, are its to answer, as every write is.
    let to_active = crate::standby::Standby::forwards(context, facade_path)
        || matches!(&matched, Ok((route, _)) if touches(route));
    if to_active {
        return standby
            .forward(
                context,
                payload,
                state.limits.max_body_bytes,
                &state.projections,
            )
            .await;
    }
    let (route, template) = match matched {
        Ok(matched) => matched,
        Err(no_route) => return no_route_response(context, no_route),
    };
    standby.catch_up(&state.projections).await;
    answer_route(route, template, context, state, payload).await
}

/// Whether answering `route` counts as a use of the infrastructure (IM saves it
/// on these reads), or shows the order of uses.
fn touches(route: &Route) -> bool {
    match route {
        Route::ListInfrastructures | Route::GetVm { .. } | Route::GetVmProperty { .. } => true,
        Route::GetInfrastructureProperty { prop, .. } => prop == "state",
        _ => false,
    }
}

/// The single entry point of the HTTP server.
pub async fn dispatch(request: HttpRequest, payload: web::Payload) -> HttpResponse {
    let limits = request
        .app_data::<web::Data<Limits>>()
        .map(|l| *l.get_ref())
        .unwrap_or_default();
    let context = RequestContext::new(request);
    if header_bytes(&context.request) > limits.max_header_bytes {
        return HttpResponse::build(actix_web::http::StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE)
            .content_type(errors::TEXT_PLAIN)
            .body(format!(
                "Request header fields too large: the limit is {} bytes",
                limits.max_header_bytes
            ));
    }
    let path = percent_encoding::percent_decode_str(context.request.path())
        .decode_utf8_lossy()
        .into_owned();
    if let Some(state) = context
        .request
        .app_data::<web::Data<AppState>>()
        .filter(|state| state.standby.is_some())
        .cloned()
    {
        return standby_dispatch(&state, &context, &path, payload).await;
    }
    // Enabled facades own their prefixes (`/v1/…`), which no IM route uses.
    if let Some(facades) = context
        .request
        .app_data::<web::Data<crate::facades::Facades>>()
        .filter(|facades| facades.claims(&path))
        .cloned()
    {
        return facades.dispatch(&context, &path, payload).await;
    }
    let (route, template) = match routes::match_route_with_template(context.request.method(), &path)
    {
        Ok(matched) => matched,
        Err(no_route) => return no_route_response(&context, no_route),
    };
    let Some(state) = context.request.app_data::<web::Data<AppState>>().cloned() else {
        return ApiError::internal("the application state is missing")
            .into_response(&context.accept);
    };
    answer_route(route, template, &context, &state, payload).await
}

async fn answer_route(
    route: Route,
    template: &'static str,
    context: &RequestContext,
    state: &AppState,
    payload: web::Payload,
) -> HttpResponse {
    let result = handle(route, context, state, payload).await;
    let mut response = result.unwrap_or_else(|error| error.into_response(&context.accept));
    // For the access log and the metrics, which name routes, never paths.
    response
        .extensions_mut()
        .insert(crate::metrics::access::RouteTemplate(template));
    response
}

async fn handle(
    route: Route,
    context: &RequestContext,
    state: &AppState,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    use infrastructures as infra;
    match route {
        Route::Version => system::version(context),
        Route::Docs | Route::Redoc => Ok(system::docs()),
        Route::OpenApi => Ok(system::openapi(context)),
        Route::Ui => Ok(ui::page()),
        Route::UiAsset { asset } => ui::asset(&asset),
        Route::Metrics => Ok(system::metrics(context, state)),
        Route::ListInfrastructures => infra::list(state, context).await,
        Route::InfrastructureHistory { inf } => {
            transfer::export_history(state, context, &inf).await
        }
        Route::CreateInfrastructure => infra::create(state, context, payload).await,
        Route::ImportInfrastructure => transfer::import(state, context, payload).await,
        Route::GetInfrastructure { inf } => infra::vm_list(state, context, &inf).await,
        Route::DestroyInfrastructure { inf } => infra::destroy(state, context, &inf).await,
        Route::GetInfrastructureProperty { inf, prop } => {
            infra::property(state, context, &inf, &prop).await
        }
        Route::OperateInfrastructure { inf, op } => infra::operate(state, context, &inf, &op).await,
        Route::AddResources { inf } => infra::add(state, context, &inf, payload).await,
        Route::Reconfigure { inf } => infra::reconfigure(state, context, &inf, payload).await,
        Route::ChangeOwners { inf } => infra::change_owners(state, context, &inf, payload).await,
        Route::GetVm { inf, vm } => vms::info(state, context, &inf, &vm).await,
        Route::GetVmProperty { inf, vm, prop } => {
            vms::property(state, context, &inf, &vm, &prop).await
        }
        Route::OperateVm { inf, vm, op } => vms::operate(state, context, &inf, &vm, &op).await,
        Route::AlterVm { inf, vm } => vms::alter(state, context, &inf, &vm, payload).await,
        Route::RemoveVms { inf, vm } => vms::remove(state, context, &inf, &vm).await,
        Route::Snapshot { inf, vm, disk } => vms::snapshot(state, context, &inf, &vm, &disk).await,
        Route::CloudInfo { cloud, param } => {
            clouds::cloud_info(state, context, &cloud, &param).await
        }
        Route::Stats => stats::stats(state, context).await,
        Route::InfrastructureEvents { inf } => events::events(state, context, &inf).await,
        Route::Oai => Err(system::oai()),
        Route::Static { .. } => Err(system::static_file()),
    }
}

fn no_route_response(context: &RequestContext, no_route: NoRoute) -> HttpResponse {
    let error = match no_route {
        NoRoute::NotFound => ApiError::RouteNotFound,
        NoRoute::MethodNotAllowed { allow } => ApiError::MethodNotAllowed { allow },
        NoRoute::RedirectTo { path } => {
            let query = context.request.query_string();
            let location = if query.is_empty() {
                format!("{}{path}", context.base_url)
            } else {
                format!("{}{path}?{query}", context.base_url)
            };
            ApiError::Redirect { location }
        }
    };
    error.into_response(&context.accept)
}

fn header_bytes(request: &HttpRequest) -> usize {
    request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum()
}
