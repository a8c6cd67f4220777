//! The fields of `POST /jobs`: `multipart/form-data` (files and values) or
//! `application/x-www-form-urlencoded` (raw values), as Flask reads both.

use std::collections::HashMap;

/// Why a body is not a form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormError {
    /// Neither form type.
    #[error("Unsupported media type {0:?}")]
    MediaType(String),
    /// A multipart body that does not follow its boundary.
    #[error("Malformed multipart body: {0}")]
    Malformed(&'static str),
}

/// A form's fields by name (the first of repeated names wins, as Flask's `get`).
pub type Fields = HashMap<String, Vec<u8>>;

/// Reads `body` as the form `content_type` names.
pub fn parse(content_type: &str, body: &[u8]) -> Result<Fields, FormError> {
    let lower = content_type.to_ascii_lowercase();
    let media = lower.split(';').next().unwrap_or("").trim();
    match media {
        "multipart/form-data" => {
            let boundary = content_type
                .split(';')
                .filter_map(|p| p.trim().split_once('='))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("boundary"))
                .map(|(_, v)| v.trim().trim_matches('"').to_string())
                .ok_or(FormError::Malformed("no boundary"))?;
            multipart(&boundary, body)
        }
        "application/x-www-form-urlencoded" => Ok(urlencoded(body)),
        _ => Err(FormError::MediaType(media.to_string())),
    }
}

fn urlencoded(body: &[u8]) -> Fields {
    let mut fields = Fields::new();
    for pair in body.split(|&b| b == b'&').filter(|p| !p.is_empty()) {
        let (name, value) = match pair.iter().position(|&b| b == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &[][..]),
        };
        let decode = |raw: &[u8]| -> Vec<u8> {
            let spaced: Vec<u8> = raw
                .iter()
                .map(|&b| if b == b'+' { b' ' } else { b })
                .collect();
            percent_encoding::percent_decode(&spaced).collect()
        };
        let name = String::from_utf8_lossy(&decode(name)).into_owned();
        fields.entry(name).or_insert_with(|| decode(value));
    }
    fields
}

fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    haystack
        .get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|i| i + from)
}

fn multipart(boundary: &str, body: &[u8]) -> Result<Fields, FormError> {
    let delimiter = format!("--{boundary}");
    let next = format!("\r\n--{boundary}");
    let mut fields = Fields::new();
    let mut at = find(body, delimiter.as_bytes(), 0)
        .ok_or(FormError::Malformed("no first boundary"))?
        + delimiter.len();
    loop {
        if body.get(at..at + 2) == Some(b"--") {
            return Ok(fields);
        }
        if body.get(at..at + 2) != Some(b"\r\n") {
            return Err(FormError::Malformed(
                "a boundary is not followed by a line break",
            ));
        }
        let headers_end = find(body, b"\r\n\r\n", at)
            .ok_or(FormError::Malformed("a part has no end of headers"))?;
        let headers = String::from_utf8_lossy(&body[at + 2..headers_end]);
        let content = headers_end + 4;
        let end = find(body, next.as_bytes(), content)
            .ok_or(FormError::Malformed("a part is not closed"))?;
        if let Some(name) = part_name(&headers) {
            fields
                .entry(name)
                .or_insert_with(|| body[content..end].to_vec());
        }
        at = end + next.len();
    }
}

/// The `name` of a part's `Content-Disposition: form-data; name="…"`.
fn part_name(headers: &str) -> Option<String> {
    let line = headers
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("content-disposition:"))?;
    line.split(';').find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        (k.trim() == "name").then(|| v.trim().trim_matches('"').to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipart_parts_and_urlencoded_values_are_read() {
        let body = b"--XY\r\nContent-Disposition: form-data; name=\"job-name\"\r\n\r\nj1\r\n--XY\r\nContent-Disposition: form-data; name=\"job-bundle\"; filename=\"b.tgz\"\r\nContent-Type: application/gzip\r\n\r\n\x1f\x8b\r\n\r\n--XY--\r\n";
        let fields = parse("multipart/form-data; boundary=XY", body).expect("a form");
        assert_eq!(fields["job-name"], b"j1");
        assert_eq!(fields["job-bundle"], b"\x1f\x8b\r\n");
        let fields =
            parse("application/x-www-form-urlencoded", b"job-name=a+b%21&x").expect("a form");
        assert_eq!(fields["job-name"], b"a b!");
        assert!(parse("application/json", b"{}").is_err());
        assert!(parse("multipart/form-data; boundary=XY", b"--XY\r\nbroken").is_err());
    }
}
