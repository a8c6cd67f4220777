//! `/version`: which IM this server answers as.

use actix_web::HttpResponse;
use serde_json::json;

use super::errors::{ApiError, Endpoint};
use super::media::{negotiate, DefaultType, Representation};
use super::RequestContext;

/// The IM version infralog is wire-compatible with.
pub const IM_VERSION: &str = "2.0.0";

pub fn version(context: &RequestContext) -> Result<HttpResponse, ApiError> {
    let representation = negotiate(&context.accept, DefaultType::TextPlain)
        .map_err(|unsupported| Endpoint::Version.unsupported_accept(unsupported))?;
    Ok(respond_text_or_json(
        representation,
        IM_VERSION.to_string(),
        json!({ "version": IM_VERSION }),
    ))
}

/// A success in the negotiated representation.
pub fn respond_text_or_json(
    representation: Representation,
    text: String,
    json: serde_json::Value,
) -> HttpResponse {
    match representation {
        Representation::Json => HttpResponse::Ok()
            .content_type("application/json")
            .body(json.to_string()),
        Representation::Text(default) => HttpResponse::Ok()
            .content_type(format!("{}; charset=utf-8", default.mime()))
            .body(text),
    }
}
