//! Request bodies: reading them within the size limit, and parsing RADL bodies the
//! way IM's `parse_deployment` does (`im-behaviour.md` §1.5.1).

use actix_web::http::header::CONTENT_LENGTH;
use actix_web::http::StatusCode;
use actix_web::web;
use futures_util::StreamExt;

use super::errors::ApiError;
use super::media::{self, python_list_repr};
use super::RequestContext;
use crate::radl::{self, Radl};

/// Reads the whole body, refusing it with 413 past `limit` bytes (early when the
/// client announces its length).
pub async fn read(
    context: &RequestContext,
    mut payload: web::Payload,
    limit: usize,
) -> Result<Vec<u8>, ApiError> {
    let announced = context
        .request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|length| length > limit as u64) {
        return Err(ApiError::PayloadTooLarge { limit });
    }
    let mut body = Vec::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|error| {
            ApiError::im(
                StatusCode::BAD_REQUEST,
                format!("Error reading request body: {error}"),
            )
        })?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::PayloadTooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// What a deployment body held.
#[derive(Debug, Clone)]
pub enum Deployment {
    Radl(Radl),
    /// A TOSCA document (not supported yet: answered with a clear 400).
    Tosca(String),
}

/// IM's `parse_deployment`: empty body → empty RADL; JSON → RADL-JSON; YAML →
/// TOSCA; text, `*/*` or `text/*` (or no Content-Type) → RADL text; anything else
/// → 415. Parse errors → 400 `Error parsing request body: <message>`.
pub fn parse_deployment(context: &RequestContext, body: &[u8]) -> Result<Deployment, ApiError> {
    let mut content_type = media::content_type(context.request.headers());
    if content_type.is_empty() {
        content_type.push("text/plain".into());
    }
    let text = String::from_utf8_lossy(body);
    let parse_error = |message: String| {
        ApiError::im(
            StatusCode::BAD_REQUEST,
            format!("Error parsing request body: {message}"),
        )
    };
    let has = |wanted: &[&str]| content_type.iter().any(|t| wanted.contains(&t.as_str()));
    if text.is_empty() {
        return Ok(Deployment::Radl(Radl::default()));
    }
    if has(&["application/json"]) {
        return radl::parse_body(&text, radl::Format::Json)
            .map(Deployment::Radl)
            .map_err(|e| parse_error(e.to_string()));
    }
    if has(&["text/yaml"]) {
        return Ok(Deployment::Tosca(text.into_owned()));
    }
    if has(&["text/plain", "*/*", "text/*"]) {
        return radl::parse_body(&text, radl::Format::Text)
            .map(Deployment::Radl)
            .map_err(|e| parse_error(e.to_string()));
    }
    Err(ApiError::im(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        format!("Unsupported Media Type {}", python_list_repr(&content_type)),
    ))
}
