//! The pure parts of MLBench's metric reads and writes: dates in the three forms
//! clients send, floats printed as Python prints them, and `summarize` and
//! `last_n`.

use chrono::{DateTime, NaiveDateTime, Utc};
use infralog_events::store::metrics::StoredPoint;

/// A date as the API writes it: `2024-05-01T10:00:00.500000Z`.
pub fn format_date(date_us: i64) -> String {
    DateTime::<Utc>::from_timestamp_micros(date_us)
        .map(|d| format_datetime(&d))
        .unwrap_or_default()
}

/// A time as the API writes it.
pub fn format_datetime(date: &DateTime<Utc>) -> String {
    date.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// Reads a date in any of the forms clients send: `%Y-%m-%dT%H:%M:%S.%fZ`,
/// RFC 3339, or Python's `str(datetime)` (`2018-08-03 09:21:44.331823`, with
/// or without fraction or offset), naive dates being UTC; answers microseconds
/// since the epoch.
pub fn parse_date(text: &str) -> Option<i64> {
    let text = text.trim();
    if let Ok(date) = DateTime::parse_from_rfc3339(text) {
        return Some(date.timestamp_micros());
    }
    let with_t = text.replacen(' ', "T", 1);
    if let Ok(date) = DateTime::parse_from_rfc3339(&with_t) {
        return Some(date.timestamp_micros());
    }
    let naive = with_t.strip_suffix('Z').unwrap_or(&with_t);
    for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S"] {
        if let Ok(date) = NaiveDateTime::parse_from_str(naive, format) {
            return Some(date.and_utc().timestamp_micros());
        }
    }
    None
}

/// `repr(x)` of a Python float: the shortest digits that read back, positional
/// for exponents from -4 to 15, scientific (`1e-05`, `1.5e+16`) otherwise.
pub fn py_float(x: f64) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf" } else { "-inf" }.into();
    }
    if x == 0.0 {
        return if x.is_sign_negative() { "-0.0" } else { "0.0" }.into();
    }
    let scientific = format!("{x:e}");
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    if (-4..16).contains(&exponent) {
        let point = exponent + 1;
        let body = if point <= 0 {
            format!("0.{}{digits}", "0".repeat(point.unsigned_abs() as usize))
        } else if point as usize >= digits.len() {
            format!("{digits}{}.0", "0".repeat(point as usize - digits.len()))
        } else {
            format!(
                "{}.{}",
                &digits[..point as usize],
                &digits[point as usize..]
            )
        };
        format!("{sign}{body}")
    } else {
        let head = &digits[..1];
        let tail = &digits[1..];
        let mantissa = if tail.is_empty() {
            head.to_string()
        } else {
            format!("{head}.{tail}")
        };
        let exp_sign = if exponent < 0 { '-' } else { '+' };
        format!("{sign}{mantissa}e{exp_sign}{:02}", exponent.unsigned_abs())
    }
}

/// A point as metric reads show it.
#[derive(Debug, Clone, PartialEq)]
pub struct Shown {
    /// Microseconds since the epoch.
    pub date_us: i64,
    /// The value.
    pub value: String,
    /// Whether it is cumulative.
    pub cumulative: bool,
}

/// Why a series cannot be summarized.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Metric {name} has a value that is not a number: {value:?}")]
pub struct NotNumeric {
    /// The metric.
    pub name: String,
    /// The value.
    pub value: String,
}

/// Above `n` points, the averages of buckets of ⌈count/n⌉ points (each dated by
/// its first point); a trailing partial bucket is averaged over its own size.
pub fn summarize(name: &str, points: &[StoredPoint], n: usize) -> Result<Vec<Shown>, NotNumeric> {
    let shown = |p: &StoredPoint| Shown {
        date_us: p.date_us,
        value: p.value.clone(),
        cumulative: p.cumulative,
    };
    if points.len() <= n || n == 0 {
        return Ok(points.iter().map(shown).collect());
    }
    let size = points.len().div_ceil(n);
    let mut out = Vec::with_capacity(n);
    for bucket in points.chunks(size) {
        let mut sum = 0.0;
        for point in bucket {
            sum += point.value.trim().parse::<f64>().map_err(|_| NotNumeric {
                name: name.to_string(),
                value: point.value.clone(),
            })?;
        }
        out.push(Shown {
            date_us: bucket[0].date_us,
            value: py_float(sum / bucket.len() as f64),
            cumulative: bucket[0].cumulative,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(date_us: i64, value: &str) -> StoredPoint {
        StoredPoint {
            name: "m".into(),
            date_us,
            seq: 0,
            value: value.into(),
            metadata: String::new(),
            cumulative: false,
        }
    }

    #[test]
    fn the_three_date_forms_read_alike() {
        let expected = parse_date("2018-08-03T09:21:44.331823Z").expect("api form");
        assert_eq!(parse_date("2018-08-03 09:21:44.331823"), Some(expected));
        assert_eq!(
            parse_date("2018-08-03T09:21:44.331823+00:00"),
            Some(expected)
        );
        assert_eq!(
            parse_date("2018-08-03 09:21:44.331823+00:00"),
            Some(expected)
        );
        assert_eq!(
            parse_date("2018-08-03T11:21:44.331823+02:00"),
            Some(expected)
        );
        assert_eq!(parse_date("2018-08-03 09:21:44"), Some(expected - 331_823));
        assert_eq!(parse_date("yesterday"), None);
        assert_eq!(format_date(expected), "2018-08-03T09:21:44.331823Z");
        assert_eq!(
            format_date(parse_date("2024-05-01 10:00:00.5").expect("date")),
            "2024-05-01T10:00:00.500000Z"
        );
    }

    #[test]
    fn floats_print_as_python_repr() {
        for (x, text) in [
            (0.5, "0.5"),
            (1.0, "1.0"),
            (123.0, "123.0"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (1e16, "1e+16"),
            (1234567890123456.0, "1234567890123456.0"),
            (-2.25, "-2.25"),
            (0.1 + 0.2, "0.30000000000000004"),
            (0.0, "0.0"),
        ] {
            assert_eq!(py_float(x), text, "{x}");
        }
    }

    #[test]
    fn summaries_average_buckets_and_keep_the_partial_last_one() {
        let points: Vec<StoredPoint> = (0..7).map(|n| point(n, &n.to_string())).collect();
        let summary = summarize("m", &points, 3).expect("numbers");
        let values: Vec<&str> = summary.iter().map(|s| s.value.as_str()).collect();
        assert_eq!(values, ["1.0", "4.0", "6.0"]);
        let dates: Vec<i64> = summary.iter().map(|s| s.date_us).collect();
        assert_eq!(dates, [0, 3, 6]);
        assert_eq!(summarize("m", &points, 10).expect("few").len(), 7);
        let words = vec![point(0, "a"), point(1, "b")];
        assert!(summarize("m", &words, 1).is_err());
        assert_eq!(summarize("m", &words, 5).expect("no summary").len(), 2);
    }
}
