//! Media types as IM reads them: `Accept` chooses the answer's form, `Content-Type`
//! the body's. Both headers are read the same way: split on `,`, drop parameters
//! (q-values too: IM ignores them and keeps the client's order), trim, and fold the
//! YAML aliases into `text/yaml`.

use actix_web::http::header::{HeaderMap, ACCEPT, CONTENT_TYPE};

/// The media types of a header, in the client's order; empty when the header is absent.
pub fn media_types(headers: &HeaderMap, name: actix_web::http::header::HeaderName) -> Vec<String> {
    let Some(value) = headers.get(name) else {
        return Vec::new();
    };
    // A header that is not visible ASCII is read lossily; it then matches nothing.
    let value = String::from_utf8_lossy(value.as_bytes());
    if value.is_empty() {
        return Vec::new();
    }
    value
        .split(',')
        .map(|item| {
            let item = item.split(';').next().unwrap_or("").trim();
            match item {
                "text/x-yaml" | "application/yaml" => "text/yaml".to_string(),
                other => other.to_string(),
            }
        })
        .collect()
}

/// The media types of the `Accept` header: the forms the client takes, in its order.
pub fn accept(headers: &HeaderMap) -> Vec<String> {
    media_types(headers, ACCEPT)
}

/// The media types of the `Content-Type` header: the form of the body, read like
/// `Accept`.
pub fn content_type(headers: &HeaderMap) -> Vec<String> {
    media_types(headers, CONTENT_TYPE)
}

/// The representation an endpoint answers in when the client does not choose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultType {
    /// `text/plain`: a bare value or RADL text.
    TextPlain,
    /// `text/uri-list`: one URI a line (the lists of infrastructures and VMs).
    UriList,
    /// `application/json`.
    Json,
}

impl DefaultType {
    /// The media type this default stands for.
    pub fn mime(self) -> &'static str {
        match self {
            DefaultType::TextPlain => "text/plain",
            DefaultType::UriList => "text/uri-list",
            DefaultType::Json => "application/json",
        }
    }
}

/// What IM's `format_output` would render.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Representation {
    /// A JSON answer, for `application/json` or `application/*`.
    Json,
    /// The endpoint's default text type (`text/plain` or `text/uri-list`).
    Text(DefaultType),
}

/// The Accept header matched nothing; the message IM gives (the items joined by `,`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsupportedAccept(pub String);

impl std::fmt::Display for UnsupportedAccept {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Unsupported Accept Media Types: {}", self.0)
    }
}

/// IM's negotiation: the first Accept item that is JSON (`application/json`,
/// `application/*`) or the default (the default type, `*/*`, `text/*`) decides.
pub fn negotiate(
    accept: &[String],
    default: DefaultType,
) -> Result<Representation, UnsupportedAccept> {
    if accept.is_empty() {
        return Ok(match default {
            DefaultType::Json => Representation::Json,
            text => Representation::Text(text),
        });
    }
    for item in accept {
        match item.as_str() {
            "application/json" | "application/*" => return Ok(Representation::Json),
            "*/*" | "text/*" => {
                return Ok(match default {
                    DefaultType::Json => Representation::Json,
                    text => Representation::Text(text),
                })
            }
            other if other == default.mime() => {
                return Ok(match default {
                    DefaultType::Json => Representation::Json,
                    text => Representation::Text(text),
                })
            }
            _ => {}
        }
    }
    Err(UnsupportedAccept(accept.join(",")))
}

/// The pre-check of the JSON-only properties (`state`, `outputs`, `data`): the list
/// must name JSON, `*/*` or `application/*`; its message shows the list as Python
/// prints a list.
pub fn require_json(accept: &[String]) -> Result<(), UnsupportedAccept> {
    if accept.is_empty()
        || accept
            .iter()
            .any(|a| matches!(a.as_str(), "application/json" | "*/*" | "application/*"))
    {
        Ok(())
    } else {
        Err(UnsupportedAccept(python_list_repr(accept)))
    }
}

/// `['a', 'b']`, the way Python prints a list of strings (IM puts such lists in
/// some messages).
pub fn python_list_repr(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| python_str_repr(s)).collect();
    format!("[{}]", quoted.join(", "))
}

/// Python's `repr()` of a string: single quotes unless the text holds a single quote
/// and no double quote.
pub fn python_str_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::HeaderValue;

    fn list(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parameters_are_dropped_and_yaml_aliases_folded() {
        let mut headers = HeaderMap::new();
        headers.insert(
            ACCEPT,
            HeaderValue::from_static("text/plain;q=0.9, application/x-yaml , application/yaml"),
        );
        assert_eq!(
            accept(&headers),
            list(&["text/plain", "application/x-yaml", "text/yaml"])
        );
    }

    #[test]
    fn the_first_acceptable_item_decides_whatever_its_q() {
        let plain = DefaultType::TextPlain;
        assert_eq!(negotiate(&[], plain), Ok(Representation::Text(plain)));
        assert_eq!(
            negotiate(&list(&["text/html", "application/json"]), plain),
            Ok(Representation::Json)
        );
        assert_eq!(
            negotiate(&list(&["text/*"]), DefaultType::Json),
            Ok(Representation::Json)
        );
        assert_eq!(
            negotiate(&list(&["application/*"]), plain),
            Ok(Representation::Json)
        );
        assert_eq!(
            negotiate(&list(&["text/plain", "application/json"]), plain),
            Ok(Representation::Text(plain))
        );
    }

    #[test]
    fn uri_lists_do_not_accept_text_plain() {
        assert_eq!(
            negotiate(&list(&["text/plain", "text/html"]), DefaultType::UriList),
            Err(UnsupportedAccept("text/plain,text/html".into()))
        );
    }

    #[test]
    fn json_only_properties_print_the_list_as_python_does() {
        assert_eq!(
            require_json(&list(&["text/plain"]))
                .unwrap_err()
                .to_string(),
            "Unsupported Accept Media Types: ['text/plain']"
        );
        assert!(require_json(&list(&["text/html", "*/*"])).is_ok());
    }

    #[test]
    fn python_repr_quotes_like_python() {
        assert_eq!(python_str_repr("a'b"), "\"a'b\"");
        assert_eq!(python_str_repr("a'b\""), "'a\\'b\"'");
        assert_eq!(python_str_repr("x\ny"), "'x\\ny'");
    }
}
