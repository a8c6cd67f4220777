//! Error answers, exactly as IM gives them.
//!
//! IM's own errors are rendered by the client's Accept list: JSON
//! `{"message","code"}`, an HTML page, or the bare message. Each endpoint prefixes
//! its messages and maps IM's exception classes to its own status codes (401 versus
//! 400 for bad credentials, for example); [`Endpoint`] holds that table. FastAPI's
//! own answers (404, 405, 422, 307) are always `{"detail": …}` JSON.

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::ConnectionType;
use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use serde_json::json;

use infralog_actors::decide::DomainError;
use infralog_actors::runtime::ActorError;
use infralog_events::domain::InfId;
use infralog_events::StoreError;

use super::media::UnsupportedAccept;
use crate::auth::InvalidUser;

const HTML_ERROR_TEMPLATE_HEAD: &str =
    "<!DOCTYPE HTML PUBLIC \"-//IETF//DTD HTML 2.0//EN\">\n<html>\n    <head>\n        <title>Error ";

/// The content type of answers whose body is plain text, such as a bare error message.
pub const TEXT_PLAIN: &str = "text/plain; charset=utf-8";

/// What went wrong, in the terms of IM's exception classes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    /// The `Authorization` header is missing, unreadable or names no valid user; the
    /// inner value says why.
    #[error("{0}")]
    InvalidUser(InvalidUser),
    /// The caller is not among the infrastructure's owners (403).
    #[error("Access to this infrastructure not granted.")]
    Unauthorized,
    /// No infrastructure has this id, or the caller may not see it (404).
    #[error("Invalid infrastructure ID or access not granted.")]
    InfrastructureNotFound,
    /// The infrastructure exists but has been destroyed (404).
    #[error("Deleted infrastructure.")]
    DeletedInfrastructure,
    /// The VM number names no VM of the infrastructure (404).
    #[error("Invalid VM ID")]
    InvalidVmId,
    /// The VM exists but has been removed (404).
    #[error("Deleted VM.")]
    DeletedVm,
    /// The operation is switched off in this deployment (403).
    #[error("Function currently disabled.")]
    Disabled,
    /// The infrastructure or VM is not in a state that allows the operation (400; 409
    /// when destroying).
    #[error("Invalid State to perform this operation.")]
    IncorrectState,
    /// A rejection IM raises as a plain exception (400 with the endpoint's prefix).
    #[error("{0}")]
    Other(String),
}

impl From<InvalidUser> for Failure {
    fn from(value: InvalidUser) -> Self {
        Failure::InvalidUser(value)
    }
}

/// The IM endpoints, for their message prefixes and status mappings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `GET /infrastructures`.
    ListInfrastructures,
    /// `POST /infrastructures`.
    CreateInfrastructure,
    /// `PUT /infrastructures` (import).
    ImportInfrastructure,
    /// `GET /infrastructures/{id}`.
    GetInfrastructure,
    /// `DELETE /infrastructures/{id}`.
    DestroyInfrastructure,
    /// `GET /infrastructures/{id}/{prop}`.
    GetInfrastructureProperty,
    /// `POST /infrastructures/{id}` (add VMs).
    AddResources,
    /// `PUT /infrastructures/{id}/reconfigure`.
    Reconfigure,
    /// `PUT /infrastructures/{id}/start`.
    StartInfrastructure,
    /// `PUT /infrastructures/{id}/stop`.
    StopInfrastructure,
    /// `POST /infrastructures/{id}/authorization`.
    ChangeOwners,
    /// `GET /infrastructures/{id}/vms/{vm}`.
    GetVm,
    /// `DELETE /infrastructures/{id}/vms/{vm}`.
    RemoveVms,
    /// `PUT /infrastructures/{id}/vms/{vm}` (change a VM's features).
    AlterVm,
    /// `GET /infrastructures/{id}/vms/{vm}/{prop}`.
    GetVmProperty,
    /// `PUT /infrastructures/{id}/vms/{vm}/start`.
    StartVm,
    /// `PUT /infrastructures/{id}/vms/{vm}/stop`.
    StopVm,
    /// `PUT /infrastructures/{id}/vms/{vm}/reboot`.
    RebootVm,
    /// `PUT /infrastructures/{id}/vms/{vm}/disks/{disk}/snapshot`.
    Snapshot,
    /// `GET /clouds/{cloud}/{param}`.
    CloudInfo,
    /// `GET /stats`.
    Stats,
    /// `GET /version`.
    Version,
}

impl Endpoint {
    /// The prefix of this endpoint's messages.
    pub fn prefix(self) -> &'static str {
        match self {
            Endpoint::ListInfrastructures => "Error Getting Inf. List: ",
            Endpoint::CreateInfrastructure => "Error Creating Inf.: ",
            Endpoint::ImportInfrastructure => "Error Importing Inf.: ",
            Endpoint::GetInfrastructure => "Error Getting Inf. info: ",
            Endpoint::DestroyInfrastructure => "Error Destroying Inf: ",
            Endpoint::GetInfrastructureProperty => "Error Getting Inf. prop: ",
            Endpoint::AddResources => "Error Adding resources: ",
            Endpoint::Reconfigure => "Error reconfiguring infrastructure: ",
            Endpoint::StartInfrastructure => "Error in start operation: ",
            Endpoint::StopInfrastructure => "Error in stop operation: ",
            Endpoint::ChangeOwners => "Error modifying infrastructure owner: ",
            Endpoint::GetVm => "Error Getting VM. info: ",
            Endpoint::RemoveVms => "Error Removing resources: ",
            Endpoint::AlterVm => "Error modifying resources: ",
            Endpoint::GetVmProperty => "Error Getting VM. property: ",
            Endpoint::StartVm => "Error in start op in VM: ",
            Endpoint::StopVm => "Error in stop op in VM: ",
            Endpoint::RebootVm => "Error in reboot op in VM: ",
            Endpoint::Snapshot => "Error creating snapshot: ",
            Endpoint::CloudInfo => "Error getting cloud info: ",
            Endpoint::Stats => "Error getting stats: ",
            Endpoint::Version => "Error getting IM version: ",
        }
    }

    /// The prefix of IM's catch-all branch, which differs from [`Self::prefix`] on two
    /// VM endpoints (no dot after "VM").
    fn generic_prefix(self) -> &'static str {
        match self {
            Endpoint::GetVm => "Error Getting VM info: ",
            Endpoint::GetVmProperty => "Error Getting VM property: ",
            other => other.prefix(),
        }
    }

    /// Only these endpoints answer bad credentials with 401; the others say 400.
    fn invalid_user_status(self) -> StatusCode {
        match self {
            Endpoint::ListInfrastructures
            | Endpoint::CreateInfrastructure
            | Endpoint::ImportInfrastructure
            | Endpoint::CloudInfo => StatusCode::UNAUTHORIZED,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    /// The answer IM gives for `failure` on this endpoint.
    pub fn error(self, failure: Failure) -> ApiError {
        let (status, prefix) = match &failure {
            Failure::InvalidUser(invalid) if invalid.is_generic_error() => {
                (StatusCode::BAD_REQUEST, self.generic_prefix())
            }
            Failure::InvalidUser(_) => (self.invalid_user_status(), self.prefix()),
            Failure::Unauthorized => (StatusCode::FORBIDDEN, self.prefix()),
            Failure::InfrastructureNotFound if self == Endpoint::ChangeOwners => (
                StatusCode::NOT_FOUND,
                "Error modifying infrastructure owners: ",
            ),
            Failure::InfrastructureNotFound
            | Failure::DeletedInfrastructure
            | Failure::InvalidVmId
            | Failure::DeletedVm => (StatusCode::NOT_FOUND, self.prefix()),
            Failure::Disabled => (StatusCode::FORBIDDEN, self.prefix()),
            Failure::IncorrectState if self == Endpoint::DestroyInfrastructure => {
                (StatusCode::CONFLICT, self.prefix())
            }
            Failure::IncorrectState | Failure::Other(_) => {
                (StatusCode::BAD_REQUEST, self.generic_prefix())
            }
        };
        ApiError::im(status, format!("{prefix}{failure}"))
    }

    /// A 503 of this endpoint: infralog cannot do it right now, the client may
    /// retry shortly.
    pub fn unavailable(self, reason: impl std::fmt::Display) -> ApiError {
        ApiError::Unavailable {
            message: format!("{}{reason}", self.prefix()),
        }
    }

    /// IM wraps an unacceptable Accept into a 400 on some endpoints, keeping the 415
    /// inside the message; the others let the 415 through unchanged.
    pub fn unsupported_accept(self, unsupported: UnsupportedAccept) -> ApiError {
        if self.wraps_http_errors() {
            ApiError::im(
                StatusCode::BAD_REQUEST,
                format!("{}415: {unsupported}", self.generic_prefix()),
            )
        } else {
            ApiError::im(StatusCode::UNSUPPORTED_MEDIA_TYPE, unsupported.to_string())
        }
    }

    /// Endpoints whose catch-all also catches FastAPI's HTTPException.
    pub fn wraps_http_errors(self) -> bool {
        matches!(
            self,
            Endpoint::ListInfrastructures
                | Endpoint::ImportInfrastructure
                | Endpoint::GetInfrastructure
                | Endpoint::DestroyInfrastructure
                | Endpoint::GetVm
                | Endpoint::RemoveVms
                | Endpoint::Snapshot
                | Endpoint::Version
        )
    }
}

/// One entry of a FastAPI 422 answer.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidationIssue(pub serde_json::Value);

/// An answer that is not a success.
#[derive(Debug, Clone, PartialEq)]
pub enum ApiError {
    /// IM's own error, rendered by Accept.
    Im {
        /// The HTTP status IM uses for this error.
        status: StatusCode,
        /// The whole message, endpoint prefix included.
        message: String,
    },
    /// FastAPI's 404 for an unknown route.
    RouteNotFound,
    /// FastAPI's 405.
    MethodNotAllowed {
        /// The value of the `Allow` header.
        allow: &'static str,
    },
    /// FastAPI's 422.
    Validation(Vec<ValidationIssue>),
    /// Starlette's trailing-slash redirect.
    Redirect {
        /// The `Location` to go to: the request path with its trailing slash toggled.
        location: String,
    },
    /// The body is over the configured limit.
    PayloadTooLarge {
        /// The largest body accepted, in bytes.
        limit: usize,
    },
    /// The body did not arrive within the configured time.
    BodyTimeout {
        /// The time allowed for the whole body to arrive.
        limit: std::time::Duration,
    },
    /// An actor's mailbox is full; try again shortly.
    Busy,
    /// infralog could not carry the request out now for a reason of its own (its
    /// own concurrent writes kept changing the infrastructure, or an
    /// infrastructure-wide operation found VMs too busy); nothing is the client's
    /// fault and trying again shortly is safe. 503 with `Retry-After`.
    Unavailable {
        /// The message for the client, endpoint prefix included.
        message: String,
    },
    /// Something failed inside infralog. The detail goes to the log only.
    Internal {
        /// What failed, for the log.
        detail: String,
    },
}

impl ApiError {
    /// IM's own error with this status and message (already prefixed).
    pub fn im(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError::Im {
            status,
            message: message.into(),
        }
    }

    /// A 500 whose `detail` goes to the log only, never to the client.
    pub fn internal(detail: impl Into<String>) -> Self {
        ApiError::Internal {
            detail: detail.into(),
        }
    }

    /// The HTTP status code of this answer.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Im { status, .. } => *status,
            ApiError::RouteNotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Redirect { .. } => StatusCode::TEMPORARY_REDIRECT,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::BodyTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            ApiError::Busy | ApiError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Renders the error for a client whose Accept list is `accept`.
    pub fn into_response(self, accept: &[String]) -> HttpResponse {
        let status = self.status();
        match self {
            ApiError::Im { message, .. } => im_error_body(status, &message, accept),
            ApiError::RouteNotFound => detail_json(status, json!("Not Found")),
            ApiError::MethodNotAllowed { allow } => {
                let mut response = detail_json(status, json!("Method Not Allowed"));
                response
                    .headers_mut()
                    .insert(header::ALLOW, HeaderValue::from_static(allow));
                response
            }
            ApiError::Validation(issues) => detail_json(
                status,
                serde_json::Value::Array(issues.into_iter().map(|i| i.0).collect()),
            ),
            ApiError::Redirect { location } => HttpResponse::build(status)
                .insert_header((header::LOCATION, location))
                .finish(),
            ApiError::PayloadTooLarge { limit } => im_error_body(
                status,
                &format!("Request body too large: the limit is {limit} bytes"),
                accept,
            ),
            ApiError::BodyTimeout { limit } => {
                let mut response = im_error_body(
                    status,
                    &format!(
                        "Request body not received in time: the limit is {} s",
                        limit.as_secs_f64()
                    ),
                    accept,
                );
                // The rest of the body may still be on its way: the connection cannot
                // carry another request.
                response
                    .head_mut()
                    .set_connection_type(ConnectionType::Close);
                response
            }
            ApiError::Busy => retry_after(im_error_body(
                status,
                "Server busy: too many pending operations on this infrastructure, retry shortly",
                accept,
            )),
            ApiError::Unavailable { message } => {
                retry_after(im_error_body(status, &message, accept))
            }
            ApiError::Internal { detail } => {
                tracing::error!(%detail, "internal error");
                im_error_body(status, "Internal server error", accept)
            }
        }
    }
}

/// IM's answer for an actor's refusal on this endpoint.
pub fn actor_error(endpoint: Endpoint, error: ActorError) -> ApiError {
    let failure =
        match error {
            ActorError::Busy => return ApiError::Busy,
            // Only our own concurrent writes move a stream under a request; the commit
            // step retries those, and one that still reaches here is not the client's
            // mistake.
            ActorError::Domain(DomainError::Conflict { .. }) => return endpoint.unavailable(
                "the infrastructure kept changing while the request was carried out; retry shortly",
            ),
            error @ ActorError::Unreached { .. } => return endpoint.unavailable(error),
            ActorError::Domain(DomainError::NotFound) => Failure::InfrastructureNotFound,
            ActorError::Domain(DomainError::InvalidVmId) => Failure::InvalidVmId,
            ActorError::Domain(DomainError::DeletedVm) => Failure::DeletedVm,
            ActorError::Domain(DomainError::IncorrectState) => Failure::IncorrectState,
            ActorError::Domain(other) => Failure::Other(other.to_string()),
            ActorError::Cloud(message) => Failure::Other(message),
            // The database of a shared log is out of reach: nothing was recorded,
            // and the client may try again.
            ActorError::Store(StoreError::Unavailable(reason)) => {
                tracing::warn!(%reason, "the event log's database cannot be reached");
                return endpoint.unavailable(
                    "the event log cannot be reached now; nothing was recorded, retry shortly",
                );
            }
            ActorError::Store(error) => return ApiError::internal(format!("event log: {error}")),
            ActorError::Failed(reason) => return ApiError::internal(format!("actor: {reason}")),
        };
    endpoint.error(failure)
}

/// The answer to a full-history import for an id in use here: one answer whatever
/// its state or history, to anyone, since what the log holds of it is not the
/// importer's to learn.
pub fn history_in_use(endpoint: Endpoint, id: InfId) -> ApiError {
    ApiError::im(
        StatusCode::CONFLICT,
        format!(
            "{}infrastructure {id} already exists here with another history",
            endpoint.prefix()
        ),
    )
}

/// The answer for a full-history import the store refused.
pub fn import_error(endpoint: Endpoint, id: InfId, error: StoreError) -> ApiError {
    match error {
        StoreError::ImportConflict { .. } | StoreError::EventIdConflict { .. } => {
            tracing::info!(inf = %id, %error, "history import refused");
            history_in_use(endpoint, id)
        }
        StoreError::InvalidImport(_) | StoreError::TooLarge(_) => ApiError::im(
            StatusCode::BAD_REQUEST,
            format!("{}invalid history document: {error}", endpoint.prefix()),
        ),
        other => ApiError::internal(format!("importing {id}: {other}")),
    }
}

/// Every 503 says when to come back.
fn retry_after(mut response: HttpResponse) -> HttpResponse {
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

fn detail_json(status: StatusCode, detail: serde_json::Value) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("application/json")
        .body(json!({ "detail": detail }).to_string())
}

/// IM's `return_error`: exact-token matches on the Accept list.
pub fn im_error_body(status: StatusCode, message: &str, accept: &[String]) -> HttpResponse {
    let code = status.as_u16();
    if accept.iter().any(|a| a == "application/json") {
        HttpResponse::build(status)
            .content_type("application/json")
            .body(json!({ "message": message, "code": code }).to_string())
    } else if accept.iter().any(|a| a == "text/html") {
        HttpResponse::build(status)
            .content_type("text/html; charset=utf-8")
            .body(format!(
                "{HTML_ERROR_TEMPLATE_HEAD}{code}.</title>\n    </head>\n    <body>\n        <h1>Code: {code}.</h1>\n        <h1>Message: {message}</h1>\n    </body>\n</html>\n"
            ))
    } else {
        HttpResponse::build(status)
            .content_type(TEXT_PLAIN)
            .body(message.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::body::MessageBody;

    fn body_of(response: HttpResponse) -> String {
        let bytes = response
            .into_body()
            .try_into_bytes()
            .expect("a complete body");
        String::from_utf8(bytes.to_vec()).expect("utf-8 body")
    }

    #[test]
    fn credentials_are_401_only_on_the_four_ims_endpoints() {
        let failure = Failure::InvalidUser(InvalidUser::NoImCredentials);
        assert_eq!(
            Endpoint::ListInfrastructures
                .error(failure.clone())
                .status(),
            StatusCode::UNAUTHORIZED
        );
        let error = Endpoint::GetInfrastructure.error(failure);
        assert_eq!(error.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            error,
            ApiError::im(
                StatusCode::BAD_REQUEST,
                "Error Getting Inf. info: No credentials provided for the InfrastructureManager."
            )
        );
    }

    #[test]
    fn owners_say_owners_only_when_the_infrastructure_is_unknown() {
        let error = Endpoint::ChangeOwners.error(Failure::InfrastructureNotFound);
        assert_eq!(
            error,
            ApiError::im(
                StatusCode::NOT_FOUND,
                "Error modifying infrastructure owners: Invalid infrastructure ID or access not granted."
            )
        );
        let error = Endpoint::ChangeOwners.error(Failure::Unauthorized);
        assert_eq!(
            error,
            ApiError::im(
                StatusCode::FORBIDDEN,
                "Error modifying infrastructure owner: Access to this infrastructure not granted."
            )
        );
    }

    #[test]
    fn the_generic_vm_branch_has_no_dot() {
        let error = Endpoint::GetVmProperty.error(Failure::Other("boom".into()));
        assert_eq!(
            error,
            ApiError::im(StatusCode::BAD_REQUEST, "Error Getting VM property: boom")
        );
        let error = Endpoint::GetVmProperty.error(Failure::InvalidVmId);
        assert_eq!(
            error,
            ApiError::im(
                StatusCode::NOT_FOUND,
                "Error Getting VM. property: Invalid VM ID"
            )
        );
    }

    #[test]
    fn destroy_in_a_wrong_state_is_a_conflict() {
        assert_eq!(
            Endpoint::DestroyInfrastructure
                .error(Failure::IncorrectState)
                .status(),
            StatusCode::CONFLICT
        );
    }

    #[test]
    fn error_bodies_follow_accept() {
        let accept = |items: &[&str]| items.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let html = body_of(im_error_body(
            StatusCode::UNAUTHORIZED,
            "No authentication data provided",
            &accept(&["text/html"]),
        ));
        assert_eq!(
            html,
            "<!DOCTYPE HTML PUBLIC \"-//IETF//DTD HTML 2.0//EN\">\n<html>\n    <head>\n        <title>Error 401.</title>\n    </head>\n    <body>\n        <h1>Code: 401.</h1>\n        <h1>Message: No authentication data provided</h1>\n    </body>\n</html>\n"
        );
        let json = body_of(im_error_body(
            StatusCode::NOT_FOUND,
            "x",
            &accept(&["text/html", "application/json"]),
        ));
        assert_eq!(json, r#"{"message":"x","code":404}"#);
        let plain = body_of(im_error_body(
            StatusCode::NOT_FOUND,
            "x",
            &accept(&["application/xml"]),
        ));
        assert_eq!(plain, "x");
    }

    #[test]
    fn wrapped_415s_keep_the_code_in_the_message() {
        let error = Endpoint::ListInfrastructures
            .unsupported_accept(UnsupportedAccept("text/plain".into()));
        assert_eq!(
            error,
            ApiError::im(
                StatusCode::BAD_REQUEST,
                "Error Getting Inf. List: 415: Unsupported Accept Media Types: text/plain"
            )
        );
        let error = Endpoint::GetInfrastructureProperty
            .unsupported_accept(UnsupportedAccept("text/html".into()));
        assert_eq!(error.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }
}
