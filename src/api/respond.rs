//! Building answers: IM's success bodies, and the metadata of the events a request
//! causes.

use actix_web::HttpResponse;
use infralog_events::Metadata;
use serde_json::json;

use super::errors::TEXT_PLAIN;
use super::media::Representation;
use super::RequestContext;
use crate::auth::Identity;

/// A success in the negotiated representation.
pub fn text_or_json(representation: Representation, text: String, json: String) -> HttpResponse {
    match representation {
        Representation::Json => HttpResponse::Ok()
            .content_type("application/json")
            .body(json),
        Representation::Text(default) => HttpResponse::Ok()
            .content_type(format!("{}; charset=utf-8", default.mime()))
            .body(text),
    }
}

/// A list of URIs: one per line, or `{"uri-list":[{"uri":…}]}`.
pub fn uri_list(representation: Representation, uris: &[String]) -> HttpResponse {
    let json = json!({ "uri-list": uris.iter().map(|u| json!({ "uri": u })).collect::<Vec<_>>() });
    text_or_json(representation, uris.join("\n"), json.to_string())
}

/// A list of `<prefix><uuid>` URIs, written without a string per item.
pub fn id_uri_list<'a>(
    representation: Representation,
    prefix: &str,
    ids: impl ExactSizeIterator<Item = &'a uuid::Uuid>,
) -> HttpResponse {
    let json = matches!(representation, Representation::Json);
    // The prefix comes from the Host header and may hold characters JSON escapes;
    // the ids never do. `"…` without its closing quote:
    let quoted = serde_json::Value::String(prefix.to_string()).to_string();
    let open_prefix = &quoted[..quoted.len() - 1];
    let mut body = String::with_capacity(ids.len() * (quoted.len() + 48) + 16);
    let mut buffer = uuid::Uuid::encode_buffer();
    if json {
        body.push_str("{\"uri-list\":[");
    }
    for (index, id) in ids.enumerate() {
        if index > 0 {
            body.push(if json { ',' } else { '\n' });
        }
        if json {
            body.push_str("{\"uri\":");
            body.push_str(open_prefix);
            body.push_str(id.hyphenated().encode_lower(&mut buffer));
            body.push_str("\"}");
        } else {
            body.push_str(prefix);
            body.push_str(id.hyphenated().encode_lower(&mut buffer));
        }
    }
    if json {
        body.push_str("]}");
    }
    match representation {
        Representation::Json => HttpResponse::Ok()
            .content_type("application/json")
            .body(body),
        Representation::Text(default) => HttpResponse::Ok()
            .content_type(format!("{}; charset=utf-8", default.mime()))
            .body(body),
    }
}

/// One URI, or `{"uri":…}`.
pub fn uri(representation: Representation, uri: &str) -> HttpResponse {
    text_or_json(
        representation,
        uri.to_string(),
        json!({ "uri": uri }).to_string(),
    )
}

/// `{"<field>": value}` with an already encoded JSON value.
pub fn field(name: &str, value_json: &str) -> String {
    format!(
        "{{{}:{value_json}}}",
        serde_json::Value::String(name.to_string())
    )
}

/// IM's empty success: 200, `text/plain`, no body.
pub fn empty() -> HttpResponse {
    HttpResponse::Ok().content_type(TEXT_PLAIN).finish()
}

/// The metadata of the events a request causes. The identity is the user's name:
/// owners are public to their co-owners (`GET …/authorization`); passwords never
/// reach an event.
pub fn metadata(context: &RequestContext, identity: &Identity) -> Metadata {
    Metadata {
        request_id: Some(context.request_id.to_string()),
        identity: Some(identity.primary_username().to_string()),
        source_instance: None,
    }
}
