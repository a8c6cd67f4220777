//! Request bodies: reading them within the size limit, and parsing RADL bodies the
//! way IM's `parse_deployment` does (`im-behaviour.md` §1.5.1).

use actix_web::http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
use actix_web::http::StatusCode;
use actix_web::web;
use futures_util::StreamExt;

use super::errors::ApiError;
use super::media::{self, python_list_repr};
use super::RequestContext;
use crate::radl::{self, Radl};

/// Bodies above this size are read only for requests that carry credentials.
pub const EARLY_CREDENTIALS_BYTES: u64 = 64 * 1024;

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
    // IM reads the body before it looks at the credentials, and that order shows in
    // its answers, so it is kept for bodies of the size IM's clients send. A larger
    // (or unannounced) body is not read for a request without credentials. Without a
    // length or a chunked encoding there is no body at all.
    let chunked = context.request.headers().contains_key(TRANSFER_ENCODING);
    let expected = announced.or((!chunked).then_some(0));
    if expected.is_none_or(|length| length > EARLY_CREDENTIALS_BYTES) {
        super::guard::credential_lines(context)?;
    }
    let timeout = context
        .request
        .app_data::<web::Data<super::Limits>>()
        .map(|limits| limits.body_read_timeout)
        .unwrap_or_else(|| super::Limits::default().body_read_timeout);
    // One deadline for the whole body, not per chunk: a client trickling a byte a
    // second must not hold a connection (and its buffer) for ever.
    let deadline = tokio::time::Instant::now() + timeout;
    let mut body = Vec::new();
    loop {
        let next = tokio::time::timeout_at(deadline, payload.next())
            .await
            .map_err(|_| ApiError::BodyTimeout { limit: timeout })?;
        let Some(chunk) = next else { break };
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

/// Only a document whose RADL text reads back as itself may be stored: the stored text
/// is parsed again by every later request on the infrastructure.
fn storable(radl: Radl) -> Result<Radl, radl::RadlError> {
    radl::storable::stored_text(&radl)?;
    Ok(radl)
}

/// What a deployment body held.
#[derive(Debug, Clone)]
pub enum Deployment {
    Radl(Box<Radl>),
    /// A TOSCA template: the RADL IM generates from it, and the template as IM stores
    /// it (re-dumped as YAML with sorted keys).
    Tosca {
        radl: Box<Radl>,
        document: String,
    },
}

impl Deployment {
    /// The RADL of the body (for TOSCA, the RADL generated from it).
    pub fn into_radl(self) -> Radl {
        match self {
            Deployment::Radl(radl) | Deployment::Tosca { radl, .. } => *radl,
        }
    }
}

/// IM's `parse_deployment`: empty body → empty RADL; JSON → RADL-JSON; YAML →
/// TOSCA; text, `*/*` or `text/*` (or no Content-Type) → RADL text; anything else
/// → 415. Parse errors → 400 `Error parsing request body: <message>`.
pub fn parse_deployment(context: &RequestContext, body: &[u8]) -> Result<Deployment, ApiError> {
    let mut content_type = media::content_type(context.request.headers());
    if content_type.is_empty() {
        content_type.push("text/plain".into());
    }
    let parse_error = |message: String| {
        ApiError::im(
            StatusCode::BAD_REQUEST,
            format!("Error parsing request body: {message}"),
        )
    };
    let text = utf8_text(body).map_err(parse_error)?;
    let has = |wanted: &[&str]| content_type.iter().any(|t| wanted.contains(&t.as_str()));
    if text.is_empty() {
        return Ok(Deployment::Radl(Box::default()));
    }
    if has(&["application/json"]) {
        return radl::parse_body(text, radl::Format::Json)
            .and_then(storable)
            .map(|radl| Deployment::Radl(Box::new(radl)))
            .map_err(|e| parse_error(e.to_string()));
    }
    if has(&["text/yaml"]) {
        let template =
            crate::tosca::Template::parse(text).map_err(|e| parse_error(e.to_string()))?;
        let radl = template
            .to_radl()
            .map_err(|e| parse_error(e.to_string()))
            .and_then(|radl| storable(radl).map_err(|e| parse_error(e.to_string())))?;
        return Ok(Deployment::Tosca {
            radl: Box::new(radl),
            document: template.to_yaml(),
        });
    }
    if has(&["text/plain", "*/*", "text/*"]) {
        return radl::parse_body(text, radl::Format::Text)
            .and_then(storable)
            .map(|radl| Deployment::Radl(Box::new(radl)))
            .map_err(|e| parse_error(e.to_string()));
    }
    Err(ApiError::im(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        format!("Unsupported Media Type {}", python_list_repr(&content_type)),
    ))
}

/// The body as text, or IM's message for bytes that are not UTF-8 (Python's
/// `bytes.decode('utf-8')` error, which IM reports as a parse error). A lossy decode
/// would accept a different document than the one sent, and a RADL name with U+FFFD
/// in it cannot be stored as RADL text.
pub fn utf8_text(body: &[u8]) -> Result<&str, String> {
    std::str::from_utf8(body).map_err(|error| python_decode_error(body, &error))
}

/// Python's `UnicodeDecodeError` text for `error` (both decoders report the same
/// maximal invalid subpart).
fn python_decode_error(body: &[u8], error: &std::str::Utf8Error) -> String {
    let start = error.valid_up_to();
    let (length, reason) = match error.error_len() {
        None => (body.len() - start, "unexpected end of data"),
        Some(length) => {
            let first = body.get(start).copied().unwrap_or(0);
            let reason = if (0x80..=0xc1).contains(&first) || first >= 0xf5 {
                "invalid start byte"
            } else {
                "invalid continuation byte"
            };
            (length, reason)
        }
    };
    if length <= 1 {
        format!(
            "'utf-8' codec can't decode byte 0x{:02x} in position {start}: {reason}",
            body.get(start).copied().unwrap_or(0)
        )
    } else {
        format!(
            "'utf-8' codec can't decode bytes in position {start}-{}: {reason}",
            start + length - 1
        )
    }
}

/// IM's `parse_auth`: the body of `POST …/authorization` is one JSON credential
/// object (JSON when no Content-Type is given); `type` defaults to
/// `InfrastructureManager`.
pub fn parse_owner(
    context: &RequestContext,
    body: &[u8],
) -> Result<crate::auth::CredentialLine, ApiError> {
    let content_type = media::content_type(context.request.headers());
    if !content_type.is_empty() && !content_type.iter().any(|t| t == "application/json") {
        return Err(ApiError::im(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("Unsupported Media Type {}", python_list_repr(&content_type)),
        ));
    }
    let bad = |reason: String| {
        ApiError::im(
            StatusCode::BAD_REQUEST,
            format!("Error parsing auth data: {reason}"),
        )
    };
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| bad(e.to_string()))?;
    let serde_json::Value::Object(mut object) = value else {
        return Err(bad("the credential must be a JSON object".into()));
    };
    if !object.contains_key("type") {
        object.insert(
            "type".into(),
            serde_json::Value::String(crate::auth::IM_TYPE.into()),
        );
    }
    let header = serde_json::Value::Array(vec![serde_json::Value::Object(object)]).to_string();
    let mut lines = crate::auth::parse_authorization(&header).map_err(|e| bad(e.to_string()))?;
    lines.pop().ok_or_else(|| bad("no credential".into()))
}

#[cfg(test)]
mod tests {
    use super::utf8_text;

    #[test]
    fn decode_errors_are_pythons() {
        let cases: [(&[u8], &str); 6] = [
            (
                b"ab\xaa",
                "can't decode byte 0xaa in position 2: invalid start byte",
            ),
            (
                b"\xc1\x81",
                "can't decode byte 0xc1 in position 0: invalid start byte",
            ),
            (
                b"x\xe2\x82x",
                "can't decode bytes in position 1-2: invalid continuation byte",
            ),
            (
                b"\xe0\x80",
                "can't decode byte 0xe0 in position 0: invalid continuation byte",
            ),
            (
                b"\xe2\x82",
                "can't decode bytes in position 0-1: unexpected end of data",
            ),
            (
                b"\xf0",
                "can't decode byte 0xf0 in position 0: unexpected end of data",
            ),
        ];
        for (bytes, message) in cases {
            assert_eq!(
                utf8_text(bytes).expect_err("not UTF-8"),
                format!("'utf-8' codec {message}")
            );
        }
        assert_eq!(utf8_text("é".as_bytes()), Ok("é"));
    }
}
