//! The bodies of MLBench's POSTs, as forms (what the mlbench-core client and
//! the dashboard send) or JSON objects, checked completely before anything is
//! recorded.

use std::collections::BTreeMap;

use infralog_actors::decide::mlbench::AdmissionMode;
use infralog_events::domain::mlbench::RunRequest;
use infralog_events::store::metrics::MetricPoint;
use serde_json::{Map, Value};
use uuid::Uuid;

use super::query::parse_date;
use crate::facades::batch::form;

/// A body's fields, values as text (JSON numbers and booleans written out).
pub type Fields = BTreeMap<String, String>;

/// The image whose command is the custom one.
pub const CUSTOM_IMAGE: &str = "custom_image";
/// The backend whose name is given separately.
pub const CUSTOM_BACKEND: &str = "custom_backend";
/// The longest metric name and value upstream's model holds.
const MAX_METRIC_NAME: usize = 50;
const MAX_METRIC_VALUE: usize = 255;

/// Why a body is refused: 400 or 415, with upstream's message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// Neither a form nor JSON.
    #[error("Unsupported media type {0:?}")]
    MediaType(String),
    /// Unreadable, or a field is wrong.
    #[error("{0}")]
    Invalid(String),
}

fn invalid(text: impl Into<String>) -> BodyError {
    BodyError::Invalid(text.into())
}

/// Reads a body as the form or JSON object its `Content-Type` names (JSON when
/// it names none).
pub fn fields(content_type: &str, body: &[u8]) -> Result<Fields, BodyError> {
    let media = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if media == "application/json" || (media.is_empty() && !body.is_empty()) {
        let value: Value = serde_json::from_slice(body)
            .map_err(|e| invalid(format!("The body is not JSON: {e}")))?;
        let Value::Object(object) = value else {
            return Err(invalid("The body is not a JSON object"));
        };
        return Ok(json_fields(object));
    }
    if media.is_empty() {
        return Ok(Fields::new());
    }
    match form::parse(content_type, body) {
        Ok(raw) => Ok(raw
            .into_iter()
            .map(|(k, v)| (k, String::from_utf8_lossy(&v).into_owned()))
            .collect()),
        Err(form::FormError::MediaType(media)) => Err(BodyError::MediaType(media)),
        Err(error) => Err(invalid(error.to_string())),
    }
}

fn json_fields(object: Map<String, Value>) -> Fields {
    object
        .into_iter()
        .filter_map(|(key, value)| {
            let text = match value {
                Value::Null => return None,
                Value::String(text) => text,
                Value::Bool(flag) => flag.to_string(),
                other => other.to_string(),
            };
            Some((key, text))
        })
        .collect()
}

/// A boolean field: `true`/`false` in any case (Python's `True`), `1`/`0`.
fn flag(fields: &Fields, name: &str) -> Result<bool, BodyError> {
    match fields.get(name).map(|v| v.trim().to_ascii_lowercase()) {
        None => Ok(false),
        Some(v) if v.is_empty() || v == "false" || v == "0" || v == "off" || v == "no" => Ok(false),
        Some(v) if v == "true" || v == "1" || v == "on" || v == "yes" => Ok(true),
        Some(_) => Err(invalid(format!("{name} must be true or false"))),
    }
}

fn text<'a>(fields: &'a Fields, name: &str) -> Option<&'a str> {
    fields.get(name).map(|v| v.trim()).filter(|v| !v.is_empty())
}

/// A case-insensitive DNS label of at most 63 characters.
fn is_dns_label(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
        && bytes[0] != b'-'
        && bytes[bytes.len() - 1] != b'-'
}

/// What the facade allows a run.
#[derive(Debug, Clone)]
pub struct RunLimits<'a> {
    /// The most workers.
    pub max_workers: u32,
    /// The official images.
    pub images: &'a [String],
    /// Admission (unused by the checks; kept for messages).
    pub mode: AdmissionMode,
}

/// Checks the fields of `POST /api/runs/` into a request (its id is given by
/// admission).
pub fn run_request(fields: &Fields, limits: &RunLimits<'_>) -> Result<RunRequest, BodyError> {
    let name = text(fields, "name").ok_or_else(|| invalid("Field name is required"))?;
    if !is_dns_label(name) {
        return Err(invalid(format!(
            "Run name {name:?} must be a DNS label: letters, digits and '-', at most 63, not starting or ending with '-'"
        )));
    }
    let num_workers = match text(fields, "num_workers") {
        None => 1,
        Some(v) => v
            .parse::<u32>()
            .map_err(|_| invalid("num_workers must be a whole number"))?,
    };
    if num_workers == 0 || num_workers > limits.max_workers {
        return Err(invalid(format!(
            "num_workers must be between 1 and {}",
            limits.max_workers
        )));
    }
    let num_cpus = match text(fields, "num_cpus") {
        None => 1.0,
        Some(v) => v
            .parse::<f64>()
            .ok()
            .filter(|c| c.is_finite() && *c > 0.0 && *c <= 1024.0)
            .ok_or_else(|| invalid("num_cpus must be a number above 0"))?,
    };
    let max_bandwidth = match text(fields, "max_bandwidth") {
        None => 10_000,
        Some(v) => v
            .parse::<f64>()
            .ok()
            .filter(|b| b.is_finite() && *b >= 0.0)
            .map(|b| b as u64)
            .ok_or_else(|| invalid("max_bandwidth must be a number"))?,
    };
    let image = text(fields, "image_name")
        .map(str::to_string)
        .or_else(|| limits.images.first().cloned())
        .ok_or_else(|| invalid("Field image_name is required"))?;
    let (custom_image_name, command) = if image == CUSTOM_IMAGE {
        let custom = text(fields, "custom_image_name")
            .ok_or_else(|| invalid("custom_image_name is required with custom_image"))?;
        let command = text(fields, "custom_image_command")
            .ok_or_else(|| invalid("custom_image_command is required with custom_image"))?;
        (Some(custom.to_string()), command.to_string())
    } else if limits.images.contains(&image) {
        (None, String::new())
    } else {
        return Err(invalid(format!("Unknown image {image:?}")));
    };
    let backend_field = text(fields, "backend").unwrap_or("mpi");
    let (backend, custom_backend) = match backend_field {
        "mpi" | "nccl" | "gloo" => (backend_field.to_string(), false),
        CUSTOM_BACKEND => {
            let custom = text(fields, CUSTOM_BACKEND)
                .ok_or_else(|| invalid("custom_backend is required with backend custom_backend"))?;
            (custom.to_string(), true)
        }
        other => return Err(invalid(format!("Unknown backend {other:?}"))),
    };
    Ok(RunRequest {
        id: 0,
        name: name.to_string(),
        num_workers,
        num_cpus_milli: (num_cpus * 1000.0).round().max(1.0) as u32,
        max_bandwidth,
        image,
        custom_image_name,
        command,
        backend,
        custom_backend,
        run_all_nodes: flag(fields, "run_all_nodes")?,
        gpu_enabled: flag(fields, "gpu_enabled")?,
        light_target: flag(fields, "light_target")?,
        job_id: Uuid::new_v4(),
    })
}

/// Whose metric a POST is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetricOwner {
    /// A run, by number.
    Run(u64),
    /// A pod, by name.
    Pod(String),
}

/// Why a metric POST is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetricBodyError {
    /// Neither `run_id` nor `pod_name` (upstream echoes the data).
    NoOwner,
    /// Anything else.
    Invalid(String),
}

/// Checks the fields of `POST /api/metrics/`; the point's subject is left for
/// the caller, who knows the owner exists.
pub fn metric_point(fields: &Fields) -> Result<(MetricOwner, MetricPoint), MetricBodyError> {
    let bad = |text: &str| MetricBodyError::Invalid(text.to_string());
    let owner = match (text(fields, "run_id"), text(fields, "pod_name")) {
        (None, None) => return Err(MetricBodyError::NoOwner),
        (Some(_), Some(_)) => return Err(bad("Only one of run_id and pod_name can be supplied")),
        (Some(run), None) => MetricOwner::Run(
            run.parse::<u64>()
                .map_err(|_| bad("run_id must be a whole number"))?,
        ),
        (None, Some(pod)) => MetricOwner::Pod(pod.to_string()),
    };
    let name = fields
        .get("name")
        .filter(|n| !n.is_empty())
        .ok_or_else(|| bad("Field name is required"))?;
    if name.chars().count() > MAX_METRIC_NAME {
        return Err(bad("Field name has more than 50 characters"));
    }
    let value = fields
        .get("value")
        .ok_or_else(|| bad("Field value is required"))?;
    if value.chars().count() > MAX_METRIC_VALUE {
        return Err(bad("Field value has more than 255 characters"));
    }
    let date = fields
        .get("date")
        .ok_or_else(|| bad("Field date is required"))?;
    let date_us = parse_date(date).ok_or_else(|| bad("Field date is not a date"))?;
    let cumulative =
        flag(fields, "cumulative").map_err(|e| MetricBodyError::Invalid(e.to_string()))?;
    Ok((
        owner,
        MetricPoint {
            subject: String::new(),
            name: name.clone(),
            date_us,
            value: value.clone(),
            metadata: fields.get("metadata").cloned().unwrap_or_default(),
            cumulative,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> Fields {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect()
    }

    fn limits(images: &[String]) -> RunLimits<'_> {
        RunLimits {
            max_workers: 4,
            images,
            mode: AdmissionMode::Exclusive,
        }
    }

    #[test]
    fn run_fields_are_checked() {
        let images = vec!["img".to_string()];
        let ok = run_request(
            &form(&[
                ("name", "R1"),
                ("num_workers", "2"),
                ("num_cpus", "0.5"),
                ("image_name", "img"),
                ("backend", "gloo"),
                ("light_target", "True"),
            ]),
            &limits(&images),
        )
        .expect("valid");
        assert_eq!(
            (ok.num_workers, ok.num_cpus_milli, ok.light_target),
            (2, 500, true)
        );
        for bad in [
            form(&[("name", "Bad_Name")]),
            form(&[("name", "r"), ("num_workers", "5")]),
            form(&[("name", "r"), ("num_workers", "0")]),
            form(&[("name", "r"), ("image_name", "other")]),
            form(&[("name", "r"), ("backend", "tcp")]),
            form(&[("name", "r"), ("gpu_enabled", "maybe")]),
            form(&[("name", "r"), ("image_name", "custom_image")]),
            form(&[("name", &"a".repeat(64))]),
            form(&[("num_workers", "1")]),
        ] {
            assert!(run_request(&bad, &limits(&images)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn json_bodies_give_numbers_and_booleans_as_text() {
        let fields = fields(
            "application/json",
            br#"{"run_id": 1, "name": "m", "value": 0.5, "date": "2024-05-01 10:00:00", "cumulative": false, "metadata": null}"#,
        )
        .expect("json");
        let (owner, point) = metric_point(&fields).expect("valid");
        assert_eq!(owner, MetricOwner::Run(1));
        assert_eq!(point.value, "0.5");
        assert!(!fields.contains_key("metadata"));
        assert!(metric_point(&form(&[("name", "m")])) == Err(MetricBodyError::NoOwner));
    }
}
