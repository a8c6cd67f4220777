//! One access-log line and one metrics observation per request.
//!
//! The line is INFO on target `infralog::access`: method, route template (never
//! the path, which carries ids), status, duration and the request's IM user name
//! (the first `InfrastructureManager` line's `username`; never a password, token
//! or any other part of the `AUTHORIZATION` header).

use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderMap, AUTHORIZATION};
use actix_web::middleware::Next;
use actix_web::web;

use super::{HttpLabels, Metrics};

/// The route template a request was answered for, as `dispatch` leaves it in the
/// answer's extensions; answers without one were matched by no route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteTemplate(pub &'static str);

/// The `route` of requests no route matched (404, 405, 307): one value, so that
/// probing random paths cannot grow the metrics without bound.
pub const UNMATCHED: &str = "unmatched";

/// The most characters of a user name the log keeps.
const MAX_USER_CHARS: usize = 64;

/// What the access log says of one request.
#[derive(Debug, Clone, PartialEq)]
pub struct AccessRecord {
    /// The HTTP method.
    pub method: String,
    /// The route template, or [`UNMATCHED`].
    pub route: &'static str,
    /// The answer's status code.
    pub status: u16,
    /// From the request's arrival to its answer.
    pub duration: Duration,
    /// The IM user name, made safe for a log line; `-` when the request has none.
    pub user: String,
}

impl AccessRecord {
    /// Writes the record as one INFO event of target `infralog::access`.
    pub fn log(&self) {
        tracing::info!(
            target: "infralog::access",
            method = %self.method,
            route = %self.route,
            status = self.status,
            duration_ms = duration_ms(self.duration),
            user = %self.user,
            "request"
        );
    }
}

/// Milliseconds with microsecond precision: enough to read, short to print.
fn duration_ms(duration: Duration) -> f64 {
    (duration.as_secs_f64() * 1_000_000.0).round() / 1000.0
}

/// The username of the first IM line of the `AUTHORIZATION` header, with control
/// characters, spaces and quotes replaced (a user name must not forge or split a
/// log line) and cut to 64 characters; `-` when there is none.
pub fn im_user(headers: &HeaderMap) -> String {
    let name = headers
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| crate::auth::parse_authorization(value).ok())
        .and_then(|lines| {
            lines
                .iter()
                .find(|line| line.kind() == Some("InfrastructureManager"))
                .and_then(|line| line.get("username"))
                .map(str::to_owned)
        });
    match name {
        Some(name) if !name.is_empty() => name
            .chars()
            .take(MAX_USER_CHARS)
            .map(|c| {
                if c.is_control() || c.is_whitespace() || c == '"' || c == '\\' {
                    '_'
                } else {
                    c
                }
            })
            .collect(),
        _ => "-".to_owned(),
    }
}

/// The middleware: times the request, then logs it and counts it.
pub async fn middleware(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let method = request.method().as_str().to_owned();
    let user = im_user(request.headers());
    let metrics = request.app_data::<web::Data<Metrics>>().cloned();
    let response = next.call(request).await?;
    let route = response
        .response()
        .extensions()
        .get::<RouteTemplate>()
        .map_or(UNMATCHED, |template| template.0);
    let record = AccessRecord {
        method,
        route,
        status: response.status().as_u16(),
        duration: started.elapsed(),
        user,
    };
    record.log();
    if let Some(metrics) = metrics {
        metrics.observe_request(
            &HttpLabels {
                method: record.method.clone(),
                route: record.route.to_owned(),
                status: record.status,
            },
            record.duration,
        );
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::HeaderValue;
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("buffer").extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn record() -> AccessRecord {
        AccessRecord {
            method: "GET".into(),
            route: "/infrastructures/{infid}",
            status: 404,
            duration: Duration::from_micros(12_345),
            user: "alice".into(),
        }
    }

    fn logged(json: bool) -> String {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let make_writer = move || writer.clone();
        // A subscriber for this thread only: tests run in parallel threads.
        if json {
            let subscriber = tracing_subscriber::fmt()
                .json()
                .flatten_event(true)
                .with_ansi(false)
                .without_time()
                .with_writer(make_writer)
                .finish();
            tracing::subscriber::with_default(subscriber, || record().log());
        } else {
            let subscriber = tracing_subscriber::fmt()
                .with_ansi(false)
                .without_time()
                .with_writer(make_writer)
                .finish();
            tracing::subscriber::with_default(subscriber, || record().log());
        }
        let bytes = buffer.0.lock().expect("buffer").clone();
        String::from_utf8(bytes).expect("utf-8")
    }

    #[test]
    fn the_access_line_names_method_route_status_duration_and_user() {
        assert_eq!(
            logged(false),
            " INFO infralog::access: request method=GET route=/infrastructures/{infid} \
             status=404 duration_ms=12.345 user=alice\n"
        );
    }

    #[test]
    fn the_json_access_line_is_one_object_with_the_same_fields() {
        let line = logged(true);
        assert_eq!(line.lines().count(), 1);
        let object: serde_json::Value = serde_json::from_str(&line).expect("json");
        assert_eq!(object["level"], "INFO");
        assert_eq!(object["target"], "infralog::access");
        assert_eq!(object["route"], "/infrastructures/{infid}");
        assert_eq!(object["status"], 404);
        assert_eq!(object["duration_ms"], 12.345);
        assert_eq!(object["user"], "alice");
    }

    #[test]
    fn the_user_is_the_im_lines_username_and_never_a_secret() {
        let mut headers = HeaderMap::new();
        headers.insert(
            AUTHORIZATION,
            HeaderValue::from_static(
                "id = d; type = Dummy; username = cloudy\\nid = im; type = InfrastructureManager; username = bob smith; password = hunter2",
            ),
        );
        assert_eq!(im_user(&headers), "bob_smith");
        assert_eq!(im_user(&HeaderMap::new()), "-");
        headers.insert(AUTHORIZATION, HeaderValue::from_static("Bearer abc.def"));
        assert_eq!(im_user(&headers), "-");
    }
}
