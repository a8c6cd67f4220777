//! The admission step every handler starts with: IM's checks, once, in IM's order.
//!
//! IM 2.0.0 is a FastAPI application, and the order in which it checks a request
//! shows in its answers (`docs/api.md`, "Order of checks"):
//!
//! 1. the body (400, 415), which FastAPI parses before the route's dependencies;
//! 2. the `AUTHORIZATION` header (401 when missing or unreadable);
//! 3. the path and query parameters (422, every problem at once);
//! 4. the credentials, which must name an IM user (the endpoint's 401 or 400);
//! 5. the infrastructure's existence and ownership (404, 403);
//! 6. the endpoint's own checks of the content, and the Accept header last, still
//!    before anything is recorded.
//!
//! The types keep that order: an [`Admission`] exists only once the header is read
//! (and, for endpoints with a body, after the body), parameters are read from it,
//! [`Admission::credentials`] consumes it into a [`Caller`], and only a caller can
//! ask for ownership, a representation or a [`Writer`] to commit with. A handler
//! writes only what is its own between the steps (a check IM makes at that point,
//! such as the dates of `/stats` before the credentials).

use actix_web::http::StatusCode;
use actix_web::web;
use infralog_actors::runtime::Credentials;

use super::body;
use super::commit::Writer;
use super::errors::{ApiError, Endpoint};
use super::guard;
use super::media::{negotiate, require_json, DefaultType, Representation};
use super::params::{Query, Validator};
use super::{AppState, RequestContext};
use crate::auth::{CredentialLine, Identity};
use crate::projections::InfrastructureView;

/// A request whose header has been read: its parameters and credentials come next.
pub struct Admission<'a> {
    state: &'a AppState,
    context: &'a RequestContext,
    lines: Vec<CredentialLine>,
}

impl<'a> Admission<'a> {
    /// Step 2 for a request without a body: the `AUTHORIZATION` header must be
    /// there and readable (401).
    pub fn header(state: &'a AppState, context: &'a RequestContext) -> Result<Self, ApiError> {
        Ok(Admission {
            state,
            context,
            lines: guard::credential_lines(context)?,
        })
    }

    /// Steps 1 and 2 for a request with a body: the body is read within the size
    /// limit and parsed by `parse`, then the header is read. (A body too large to
    /// buffer for an anonymous client is refused with 401 before it is read:
    /// `body::read`.)
    pub async fn with_body<T>(
        state: &'a AppState,
        context: &'a RequestContext,
        payload: web::Payload,
        parse: impl FnOnce(&RequestContext, &[u8]) -> Result<T, ApiError>,
    ) -> Result<(Self, T), ApiError> {
        let body = body::read(context, payload, state.limits.max_body_bytes).await?;
        let parsed = parse(context, &body)?;
        Ok((Self::header(state, context)?, parsed))
    }

    /// Step 3: the parameters `read` asks for; any problem is a 422 listing all of
    /// them.
    pub fn parameters<T>(
        &self,
        read: impl FnOnce(&mut Validator, &'a Query) -> T,
    ) -> Result<T, ApiError> {
        let mut validator = Validator::new();
        let value = read(&mut validator, &self.context.query);
        validator.finish()?;
        Ok(value)
    }

    /// The JSON-only routes check the Accept header before the credentials, with a
    /// 415 of their own.
    pub fn json_only(&self) -> Result<(), ApiError> {
        require_json(&self.context.accept)
            .map_err(|u| ApiError::im(StatusCode::UNSUPPORTED_MEDIA_TYPE, u.to_string()))
    }

    /// Step 4: the credentials must name an IM user; a refusal is `endpoint`'s.
    pub fn credentials(self, endpoint: Endpoint) -> Result<Caller<'a>, ApiError> {
        let identity = guard::identity(&self.lines, endpoint)?;
        Ok(Caller {
            state: self.state,
            context: self.context,
            identity,
            endpoint,
        })
    }
}

/// A request whose caller is known: an IM user, asking on `endpoint`.
pub struct Caller<'a> {
    pub state: &'a AppState,
    pub context: &'a RequestContext,
    pub identity: Identity,
    pub endpoint: Endpoint,
}

impl Caller<'_> {
    /// Step 5: the infrastructure `inf` as of now, if it is served and the caller's
    /// (unknown or gone: 404; another user's: 403).
    pub async fn owned(&self, inf: &str) -> Result<InfrastructureView, ApiError> {
        guard::owned(self.state, &self.identity, inf, self.endpoint).await
    }

    /// Step 6: the representation of the answer (IM's 415, or the endpoint's 400).
    pub fn representation(&self, default: DefaultType) -> Result<Representation, ApiError> {
        negotiate(&self.context.accept, default).map_err(|u| self.endpoint.unsupported_accept(u))
    }

    /// The commit step, as this caller on this endpoint.
    pub fn writer(&self) -> Writer<'_> {
        Writer::new(self.state, self.context, &self.identity, self.endpoint)
    }

    /// The request's credentials for the clouds, by cloud id.
    pub fn cloud_credentials(&self) -> Credentials {
        guard::cloud_credentials(&self.identity)
    }
}
