//! `/version`: which IM this server answers as.

use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use serde_json::json;

use super::errors::{ApiError, Endpoint};
use super::media::{negotiate, DefaultType};
use super::respond::text_or_json;
use super::RequestContext;

/// The IM version infralog is wire-compatible with.
pub const IM_VERSION: &str = "2.0.0";

pub fn version(context: &RequestContext) -> Result<HttpResponse, ApiError> {
    let representation = negotiate(&context.accept, DefaultType::TextPlain)
        .map_err(|unsupported| Endpoint::Version.unsupported_accept(unsupported))?;
    Ok(text_or_json(
        representation,
        IM_VERSION.to_string(),
        json!({ "version": IM_VERSION }).to_string(),
    ))
}

/// `GET|POST /oai`: IM's OAI-PMH repository, disabled unless configured (it is
/// never configured here).
pub fn oai() -> ApiError {
    ApiError::im(StatusCode::BAD_REQUEST, "OAI-PMH not enabled.")
}

/// `GET /static/{filename}`: IM serves files only when `STATIC_FILES_DIR` is set
/// (it is never set here).
pub fn static_file() -> ApiError {
    ApiError::im(StatusCode::NOT_FOUND, "Static files not enabled.")
}

/// `GET /`: where IM serves its API documentation, a short page pointing to ours.
pub fn docs() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(concat!(
            "<!DOCTYPE html>\n<html><head><title>infralog</title></head><body>\n",
            "<h1>infralog</h1>\n",
            "<p>An event-sourced infrastructure manager speaking the IM 2.0.0 REST API. ",
            "See docs/api.md in the source tree for every route.</p>\n",
            "</body></html>\n"
        ))
}
