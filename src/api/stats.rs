//! `GET /stats`: one row per infrastructure the caller owns or owned (destroyed ones
//! included), most recently used first, as JSON or CSV.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use chrono::{NaiveDate, NaiveDateTime};
use serde_json::{json, Map, Value};

use super::admission::Admission;
use super::errors::{ApiError, Endpoint};
use super::guard;
use super::{AppState, RequestContext};
use crate::projections::stats::{stats_rows, StatsInput, StatsRow, StatsWindow};
use crate::radl::Number;

/// IM's `init_date` when none is given.
const DEFAULT_INIT_DATE: &str = "1970-01-01";

/// The field names of a row, in IM's order (the CSV header).
const FIELDS: [&str; 12] = [
    "creation_date",
    "tosca_name",
    "vm_count",
    "cpu_count",
    "memory_size",
    "cloud_type",
    "cloud_host",
    "hybrid",
    "deleted",
    "im_user",
    "inf_id",
    "last_date",
];

/// A date parameter IM refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Incorrect format in {0} parameter: YYYY/MM/dd")]
pub struct BadDate(pub &'static str);

/// What a date parameter means for the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateBound {
    /// Absent or empty `end_date`: no bound.
    Unbounded,
    /// Midnight of this day.
    At(NaiveDateTime),
    /// Accepted by IM's check but unreadable by its query: no row matches.
    Unmatchable,
}

/// Python's `int(text)` for the parts of a date: surrounding whitespace, a sign and
/// single underscores between digits are allowed.
fn python_int(text: &str) -> Option<i64> {
    let text = text.trim();
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    if digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
        || !digits.bytes().all(|b| b.is_ascii_digit() || b == b'_')
    {
        return None;
    }
    let value: i64 = digits.replace('_', "").parse().ok()?;
    Some(if text.starts_with('-') { -value } else { value })
}

/// Python's `strptime(text, "%Y-%m-%d")`: four-digit year, one- or two-digit month
/// and day (a day may also be a space and a digit), nothing else.
fn strptime_ymd(text: &str) -> Option<NaiveDate> {
    let mut parts = text.splitn(3, '-');
    let (year, month, day) = (parts.next()?, parts.next()?, parts.next()?);
    let year_ok = year.len() == 4 && year.bytes().all(|b| b.is_ascii_digit());
    let short = |s: &str| (1..=2).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit());
    let day_digits = day
        .strip_prefix(' ')
        .filter(|d| d.len() == 1)
        .unwrap_or(day);
    if !year_ok || !short(month) || !short(day_digits) {
        return None;
    }
    NaiveDate::from_ymd_opt(
        year.parse().ok()?,
        month.parse().ok()?,
        day_digits.parse().ok()?,
    )
}

/// Reads `init_date` or `end_date` as IM does: `/` may separate the parts; the
/// first three `-` parts must be integers forming a real date (else 400); the
/// query then reads the text with `strptime`, which may still fail.
pub fn parse_date(raw: &str, name: &'static str) -> Result<DateBound, BadDate> {
    if raw.is_empty() {
        // IM skips its check for an empty value; its query then reads no row for
        // `init_date` and applies no bound for `end_date`.
        return Ok(if name == "end_date" {
            DateBound::Unbounded
        } else {
            DateBound::Unmatchable
        });
    }
    let text = raw.replace('/', "-");
    let parts: Vec<&str> = text.split('-').collect();
    let number = |index: usize| parts.get(index).and_then(|p| python_int(p));
    let (Some(year), Some(month), Some(day)) = (number(0), number(1), number(2)) else {
        return Err(BadDate(name));
    };
    let valid = (1..=9999).contains(&year)
        && u32::try_from(month)
            .ok()
            .zip(u32::try_from(day).ok())
            .and_then(|(m, d)| NaiveDate::from_ymd_opt(year as i32, m, d))
            .is_some();
    if !valid {
        return Err(BadDate(name));
    }
    Ok(
        match strptime_ymd(&text).and_then(|d| d.and_hms_opt(0, 0, 0)) {
            Some(midnight) => DateBound::At(midnight),
            None => DateBound::Unmatchable,
        },
    )
}

/// The window of a request's `init_date` and `end_date`.
pub fn window(init_date: Option<&str>, end_date: Option<&str>) -> Result<StatsWindow, BadDate> {
    let init = parse_date(init_date.unwrap_or(DEFAULT_INIT_DATE), "init_date")?;
    let end = match end_date {
        None => DateBound::Unbounded,
        Some(raw) => parse_date(raw, "end_date")?,
    };
    let bound = |b: DateBound| match b {
        DateBound::At(at) => Some(at),
        _ => None,
    };
    Ok(StatsWindow {
        init: bound(init),
        end: bound(end),
        matches_nothing: init == DateBound::Unmatchable || end == DateBound::Unmatchable,
    })
}

fn number_json(number: &Number) -> Value {
    match number {
        Number::Int(value) => Value::from(*value),
        Number::Bool(flag) => Value::from(i64::from(*flag)),
        Number::Float(value) => serde_json::Number::from_f64(*value)
            .map(Value::Number)
            .unwrap_or(Value::Null),
        Number::BigInt(value) => value
            .to_string()
            .parse::<serde_json::Number>()
            .map(Value::Number)
            .unwrap_or(Value::Null),
    }
}

fn row_values(row: &StatsRow) -> [Value; 12] {
    [
        json!(row.creation_date),
        json!(row.tosca_name),
        json!(row.vm_count),
        number_json(&row.cpu_count),
        number_json(&row.memory_size),
        json!(row.cloud_type),
        json!(row.cloud_host),
        json!(row.hybrid),
        json!(row.deleted),
        json!(row.im_user),
        json!(row.inf_id),
        json!(row.last_date),
    ]
}

/// `{"stats":[{…},…]}`, fields in IM's order.
pub fn stats_json(rows: &[StatsRow]) -> String {
    let list: Vec<Value> = rows
        .iter()
        .map(|row| {
            let object: Map<String, Value> = FIELDS
                .iter()
                .map(|f| f.to_string())
                .zip(row_values(row))
                .collect();
            Value::Object(object)
        })
        .collect();
    json!({ "stats": list }).to_string()
}

/// A CSV field as Python's `csv.writer` prints `str(value)` (None is empty).
fn csv_field(value: &Value) -> String {
    let text = match value {
        Value::Null => String::new(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::String(s) => s.clone(),
        Value::Number(n) if n.is_f64() => {
            crate::radl::Number::Float(n.as_f64().unwrap_or(f64::NAN)).to_string()
        }
        other => other.to_string(),
    };
    if text.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

/// IM's CSV: a header row from the keys (an empty line when there is no row),
/// then one row per infrastructure, CRLF line ends.
pub fn stats_csv(rows: &[StatsRow]) -> String {
    let mut out = String::new();
    if !rows.is_empty() {
        out.push_str(&FIELDS.join(","));
    }
    out.push_str("\r\n");
    for row in rows {
        let fields: Vec<String> = row_values(row).iter().map(csv_field).collect();
        out.push_str(&fields.join(","));
        out.push_str("\r\n");
    }
    out
}

/// How IM answers for an Accept list (exact items, not the first that matches).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatsFormat {
    Json,
    Csv,
    /// No item IM handles: it answers 200 with the JSON `null`.
    Null,
}

pub fn stats_format(accept: &[String]) -> StatsFormat {
    let has = |item: &str| accept.iter().any(|a| a == item);
    if accept.is_empty() || has("application/json") || has("*/*") || has("application/*") {
        StatsFormat::Json
    } else if has("text/csv") || has("text/*") {
        StatsFormat::Csv
    } else {
        StatsFormat::Null
    }
}

pub async fn stats(state: &AppState, context: &RequestContext) -> Result<HttpResponse, ApiError> {
    let admission = Admission::header(state, context)?;
    // IM checks the dates before the credentials and answers without its prefix.
    let window = window(
        context.query.get("init_date"),
        context.query.get("end_date"),
    )
    .map_err(|bad| ApiError::im(StatusCode::BAD_REQUEST, bad.to_string()))?;
    let caller = admission.credentials(Endpoint::Stats)?;
    let owned = guard::owned_infrastructures_including_gone(state, &caller.identity).await;
    let earlier = guard::owned_earlier_lives(state, &caller.identity, &owned).await;
    let inputs: Vec<StatsInput> = {
        let model = state.projections.read();
        let recency = state.recency_snapshot();
        let mut views: Vec<_> = owned
            .iter()
            .filter_map(|id| model.infrastructures.get(id))
            .map(|view| (recency.of(view), view))
            .chain(earlier.iter().map(|view| ((view.last_position, 0), view)))
            .collect();
        // IM lists its rows most recently saved first.
        views.sort_by_key(|entry| std::cmp::Reverse(entry.0));
        views
            .into_iter()
            .map(|(_, view)| StatsInput::from_view(view))
            .collect()
    };
    let rows = web::block(move || stats_rows(&inputs, &window))
        .await
        .map_err(|e| ApiError::internal(format!("computing statistics: {e}")))?;
    Ok(match stats_format(&context.accept) {
        StatsFormat::Json => HttpResponse::Ok()
            .content_type("application/json")
            .body(stats_json(&rows)),
        StatsFormat::Csv => HttpResponse::Ok()
            .content_type("text/csv; charset=utf-8")
            .body(stats_csv(&rows)),
        StatsFormat::Null => HttpResponse::Ok()
            .content_type("application/json")
            .body("null"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(y: i32, m: u32, d: u32) -> DateBound {
        DateBound::At(
            NaiveDate::from_ymd_opt(y, m, d)
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .expect("a date"),
        )
    }

    #[test]
    fn dates_accept_slashes_and_short_parts() {
        assert_eq!(parse_date("2024-01-05", "init_date"), Ok(at(2024, 1, 5)));
        assert_eq!(parse_date("2024/1/5", "init_date"), Ok(at(2024, 1, 5)));
    }

    #[test]
    fn impossible_or_incomplete_dates_are_refused() {
        for bad in [
            "2024-02-30",
            "2024-13-01",
            "x",
            "2024-01",
            "0000-01-01",
            "2024--1",
        ] {
            assert_eq!(
                parse_date(bad, "init_date"),
                Err(BadDate("init_date")),
                "{bad:?}"
            );
        }
        assert_eq!(
            BadDate("end_date").to_string(),
            "Incorrect format in end_date parameter: YYYY/MM/dd"
        );
    }

    #[test]
    fn dates_that_pass_the_check_but_not_the_query_match_nothing() {
        assert_eq!(
            parse_date("2024-01-05-x", "init_date"),
            Ok(DateBound::Unmatchable)
        );
        assert_eq!(
            parse_date(" 2024-01-05", "init_date"),
            Ok(DateBound::Unmatchable)
        );
        assert_eq!(parse_date("", "init_date"), Ok(DateBound::Unmatchable));
        assert_eq!(parse_date("", "end_date"), Ok(DateBound::Unbounded));
        assert!(window(Some("2024-01-05x"), None).is_err());
        assert!(
            window(Some("2024-1-5"), Some("2024-01-05-junk"))
                .expect("accepted")
                .matches_nothing
        );
    }

    #[test]
    fn the_default_window_starts_in_1970() {
        let window = window(None, None).expect("valid");
        assert!(!window.matches_nothing);
        assert_eq!(window, StatsWindow::default());
    }

    fn row() -> StatsRow {
        StatsRow {
            creation_date: "2026-03-04 10:00:00".into(),
            tosca_name: String::new(),
            vm_count: 3,
            cpu_count: Number::Int(4),
            memory_size: Number::Float(1536.5),
            cloud_type: "Dummy".into(),
            cloud_host: String::new(),
            hybrid: false,
            deleted: true,
            im_user: Some("a,b".into()),
            inf_id: "x".into(),
            last_date: "2026-03-04 00:00:00".into(),
        }
    }

    #[test]
    fn json_keeps_ims_field_order() {
        assert_eq!(
            stats_json(&[row()]),
            r#"{"stats":[{"creation_date":"2026-03-04 10:00:00","tosca_name":"","vm_count":3,"cpu_count":4,"memory_size":1536.5,"cloud_type":"Dummy","cloud_host":"","hybrid":false,"deleted":true,"im_user":"a,b","inf_id":"x","last_date":"2026-03-04 00:00:00"}]}"#
        );
        assert_eq!(stats_json(&[]), r#"{"stats":[]}"#);
    }

    #[test]
    fn csv_is_written_as_pythons_csv_module_does() {
        assert_eq!(
            stats_csv(&[row()]),
            "creation_date,tosca_name,vm_count,cpu_count,memory_size,cloud_type,cloud_host,hybrid,deleted,im_user,inf_id,last_date\r\n\
             2026-03-04 10:00:00,,3,4,1536.5,Dummy,,False,True,\"a,b\",x,2026-03-04 00:00:00\r\n"
        );
        assert_eq!(stats_csv(&[]), "\r\n");
    }

    #[test]
    fn accept_items_are_looked_up_not_walked() {
        let list = |items: &[&str]| items.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(stats_format(&[]), StatsFormat::Json);
        assert_eq!(
            stats_format(&list(&["text/csv", "application/json"])),
            StatsFormat::Json
        );
        assert_eq!(stats_format(&list(&["text/*"])), StatsFormat::Csv);
        assert_eq!(stats_format(&list(&["text/html"])), StatsFormat::Null);
    }
}
