//! Query and path parameters, validated as FastAPI (pydantic 2) validates them, with
//! its 422 answers: every problem of a request is reported at once, path
//! parameters first, then query parameters, in declaration order.

use serde_json::json;

use super::errors::{ApiError, ValidationIssue};

/// A request's query string, decoded as Starlette decodes it (`+` is a space, blank
/// values are kept, the last of repeated keys wins).
#[derive(Debug, Clone, Default)]
pub struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    /// Decodes a raw query string (without the `?`); it never fails.
    pub fn parse(query_string: &str) -> Self {
        let pairs = query_string
            .split('&')
            .filter(|part| !part.is_empty())
            .map(|part| {
                let (key, value) = part.split_once('=').unwrap_or((part, ""));
                (form_decode(key), form_decode(value))
            })
            .collect();
        Query { pairs }
    }

    /// The value of `key` (the last one when repeated); `None` when the key is absent.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

fn form_decode(text: &str) -> String {
    let spaced = text.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8_lossy()
        .into_owned()
}

/// Collects the problems of one request before answering 422 with all of them.
#[derive(Debug, Default)]
pub struct Validator {
    issues: Vec<ValidationIssue>,
}

impl Validator {
    /// A validator with no problems yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// A query flag: pydantic's lenient booleans, `default` when absent.
    pub fn flag(&mut self, query: &Query, name: &str, default: bool) -> bool {
        match query.get(name) {
            None => default,
            Some(raw) => match parse_bool(raw) {
                Some(value) => value,
                None => {
                    self.issues.push(ValidationIssue(json!({
                        "type": "bool_parsing",
                        "loc": ["query", name],
                        "msg": "Input should be a valid boolean, unable to interpret input",
                        "input": raw,
                    })));
                    default
                }
            },
        }
    }

    /// A required query string parameter.
    pub fn required<'q>(&mut self, query: &'q Query, name: &str) -> Option<&'q str> {
        let value = query.get(name);
        if value.is_none() {
            self.issues.push(ValidationIssue(json!({
                "type": "missing",
                "loc": ["query", name],
                "msg": "Field required",
                "input": null,
            })));
        }
        value
    }

    /// An integer parameter (`location` is "path" or "query").
    pub fn integer(&mut self, location: &str, name: &str, raw: &str) -> Option<i64> {
        let parsed = parse_int(raw);
        if parsed.is_none() {
            self.issues.push(ValidationIssue(json!({
                "type": "int_parsing",
                "loc": [location, name],
                "msg": "Input should be a valid integer, unable to parse string as an integer",
                "input": raw,
            })));
        }
        parsed
    }

    /// An optional integer query parameter within `[ge, le]` (a
    /// `Query(default, ge=…, le=…)` in FastAPI); `None` when absent or invalid.
    pub fn bounded(&mut self, query: &Query, name: &str, ge: i64, le: i64) -> Option<i64> {
        let raw = query.get(name)?;
        let value = self.integer("query", name, raw)?;
        let (kind, bound, relation, key) = if value < ge {
            ("greater_than_equal", ge, "greater than or equal to", "ge")
        } else if value > le {
            ("less_than_equal", le, "less than or equal to", "le")
        } else {
            return Some(value);
        };
        self.issues.push(ValidationIssue(json!({
            "type": kind,
            "loc": ["query", name],
            "msg": format!("Input should be {relation} {bound}"),
            "input": raw,
            "ctx": {key: bound},
        })));
        None
    }

    /// A path parameter that must be one of `allowed` (a `Literal[...]` in IM).
    pub fn literal<'a>(&mut self, name: &str, raw: &str, allowed: &[&'a str]) -> Option<&'a str> {
        if let Some(found) = allowed.iter().find(|a| **a == raw) {
            return Some(found);
        }
        let expected = literal_expectation(allowed);
        self.issues.push(ValidationIssue(json!({
            "type": "literal_error",
            "loc": ["path", name],
            "msg": format!("Input should be {expected}"),
            "input": raw,
            "ctx": {"expected": expected},
        })));
        None
    }

    /// `Ok` when nothing was wrong, else the 422 answer.
    pub fn finish(self) -> Result<(), ApiError> {
        if self.issues.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Validation(self.issues))
        }
    }
}

/// pydantic's `'a', 'b' or 'c'`.
fn literal_expectation(allowed: &[&str]) -> String {
    let quoted: Vec<String> = allowed.iter().map(|a| format!("'{a}'")).collect();
    match quoted.split_last() {
        None => String::new(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
    }
}

/// pydantic's lax booleans: `1 true t yes y on` / `0 false f no n off`, any case.
pub fn parse_bool(raw: &str) -> Option<bool> {
    match raw.to_ascii_lowercase().as_str() {
        "1" | "true" | "t" | "yes" | "y" | "on" => Some(true),
        "0" | "false" | "f" | "no" | "n" | "off" => Some(false),
        _ => None,
    }
}

/// pydantic's lax integers from strings: surrounding whitespace, a sign, `_` between
/// digits and a zero fraction (`5.0`) are accepted. Values beyond `i64` are refused
/// here although Python would take them; no id or disk number is that large.
pub fn parse_int(raw: &str) -> Option<i64> {
    let text = raw.trim();
    let (negative, digits) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let (whole, fraction) = match digits.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (digits, None),
    };
    if let Some(fraction) = fraction {
        if fraction.is_empty() || !fraction.bytes().all(|b| b == b'0') {
            return None;
        }
    }
    if whole.is_empty()
        || whole.starts_with('_')
        || whole.ends_with('_')
        || whole.contains("__")
        || !whole.bytes().all(|b| b.is_ascii_digit() || b == b'_')
    {
        return None;
    }
    let value: i64 = whole.replace('_', "").parse().ok()?;
    Some(if negative { -value } else { value })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booleans_follow_pydantic() {
        for yes in ["1", "true", "True", "t", "YES", "y", "on"] {
            assert_eq!(parse_bool(yes), Some(true), "{yes}");
        }
        for no in ["0", "false", "F", "no", "n", "OFF"] {
            assert_eq!(parse_bool(no), Some(false), "{no}");
        }
        for bad in ["", " 1", "2", "yess"] {
            assert_eq!(parse_bool(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn integers_follow_pydantic() {
        assert_eq!(parse_int(" 5 "), Some(5));
        assert_eq!(parse_int("+5"), Some(5));
        assert_eq!(parse_int("-5"), Some(-5));
        assert_eq!(parse_int("5.0"), Some(5));
        assert_eq!(parse_int("1_000"), Some(1000));
        assert_eq!(parse_int("05"), Some(5));
        for bad in ["5.5", "0x10", "", "1e3", "x", "_1", "5."] {
            assert_eq!(parse_int(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn queries_decode_like_starlette() {
        let query = Query::parse("a=1&a=2&b=&c=x+y%21&d");
        assert_eq!(query.get("a"), Some("2"));
        assert_eq!(query.get("b"), Some(""));
        assert_eq!(query.get("c"), Some("x y!"));
        assert_eq!(query.get("d"), Some(""));
        assert_eq!(query.get("e"), None);
    }

    #[test]
    fn all_problems_are_reported_together_in_order() {
        let query = Query::parse("auto_delete=maybe");
        let mut validator = Validator::new();
        validator.integer("path", "disknum", "zero");
        validator.required(&query, "image_name");
        validator.flag(&query, "auto_delete", false);
        let Err(ApiError::Validation(issues)) = validator.finish() else {
            panic!("expected a validation error");
        };
        let types: Vec<&str> = issues
            .iter()
            .map(|i| i.0["type"].as_str().unwrap_or(""))
            .collect();
        assert_eq!(types, ["int_parsing", "missing", "bool_parsing"]);
    }

    #[test]
    fn bounded_integers_report_the_bound_as_pydantic_does() {
        let query = Query::parse("from=0&limit=20000&at=x&ok=5");
        let mut validator = Validator::new();
        assert_eq!(validator.bounded(&query, "from", 1, 10), None);
        assert_eq!(validator.bounded(&query, "limit", 1, 10_000), None);
        assert_eq!(validator.bounded(&query, "at", 1, 10), None);
        assert_eq!(validator.bounded(&query, "ok", 1, 10), Some(5));
        assert_eq!(validator.bounded(&query, "absent", 1, 10), None);
        let Err(ApiError::Validation(issues)) = validator.finish() else {
            panic!("expected a validation error");
        };
        assert_eq!(issues.len(), 3);
        assert_eq!(issues[0].0["type"], "greater_than_equal");
        assert_eq!(
            issues[0].0["msg"],
            "Input should be greater than or equal to 1"
        );
        assert_eq!(issues[0].0["ctx"]["ge"], 1);
        assert_eq!(issues[1].0["type"], "less_than_equal");
        assert_eq!(issues[1].0["ctx"]["le"], 10_000);
        assert_eq!(issues[2].0["type"], "int_parsing");
    }

    #[test]
    fn literal_errors_list_the_choices_as_pydantic_does() {
        let mut validator = Validator::new();
        validator.literal("op", "foo", &["start", "stop", "reboot"]);
        let Err(ApiError::Validation(issues)) = validator.finish() else {
            panic!("expected a validation error");
        };
        assert_eq!(
            issues[0].0["msg"],
            "Input should be 'start', 'stop' or 'reboot'"
        );
        assert_eq!(
            issues[0].0["ctx"]["expected"],
            "'start', 'stop' or 'reboot'"
        );
    }
}
