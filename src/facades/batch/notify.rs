//! Notifications of a job's end: a POST of `{"job-uuid", "retcode"}` to the URL
//! the submission gave. The job actor decides when to try and records each try;
//! this is only the HTTP call.

use std::time::Duration;

use futures_util::future::LocalBoxFuture;
use infralog_actors::runtime::batch::Notifier;

/// How long one try may take.
const TRY_TIMEOUT: Duration = Duration::from_secs(5);

/// Notifies over plain HTTP (the submission checks the URL is `http://`).
#[derive(Debug, Default)]
pub struct HttpNotifier;

impl Notifier for HttpNotifier {
    fn notify(&self, url: &str, body: String) -> LocalBoxFuture<'static, Result<(), String>> {
        let url = url.to_string();
        Box::pin(async move {
            // One client per try: the notifier is shared between threads, and
            // awc's client is not.
            let client = awc::Client::builder().timeout(TRY_TIMEOUT).finish();
            let response = client
                .post(&url)
                .insert_header(("Content-Type", "application/json"))
                .send_body(body)
                .await
                .map_err(|e| e.to_string())?;
            let status = response.status();
            if status.is_success() {
                Ok(())
            } else {
                Err(format!("HTTP {}", status.as_u16()))
            }
        })
    }
}
