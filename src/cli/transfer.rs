//! `infralog export` and `infralog import`: move infrastructures between instances
//! with their whole history, over the REST API (`GET …/history`, `PUT
//! /infrastructures?format=history`). A transfer file holds one history document
//! per line (see `docs/transfer.md`).

use std::fs::File;
use std::io::{BufRead, BufReader, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use crate::api::transfer::{IMPORT_OUTCOME_HEADER, MAX_HISTORY_BYTES};

/// How long one request may take (a large history is large).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(300);

/// The arguments of `infralog export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The server's URL, e.g. http://127.0.0.1:8800.
    #[arg(long)]
    pub server: String,
    /// An IM auth file (lines of `key = value; ...`), as im_client reads it.
    #[arg(long)]
    pub auth: PathBuf,
    /// The infrastructures to export.
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    pub ids: Vec<String>,
    /// Export every infrastructure the credentials own.
    #[arg(long)]
    pub all: bool,
    /// The file to write (one history document per line).
    #[arg(long)]
    pub to: PathBuf,
}

/// The arguments of `infralog import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The server's URL, e.g. http://127.0.0.1:8800.
    #[arg(long)]
    pub server: String,
    /// An IM auth file (lines of `key = value; ...`), as im_client reads it.
    #[arg(long)]
    pub auth: PathBuf,
    /// A file written by `infralog export`.
    pub file: PathBuf,
}

/// Why a transfer command failed as a whole.
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    /// The auth file could not be read.
    #[error("cannot read the auth file {path}: {source}")]
    AuthFile {
        /// The auth file given with `--auth`.
        path: PathBuf,
        /// Why it could not be read.
        source: std::io::Error,
    },
    /// The auth file has no credential line.
    #[error("the auth file {0} holds no credentials")]
    EmptyAuth(PathBuf),
    /// The server could not be reached or refused the request; the text says which
    /// request and why.
    #[error("{0}")]
    Server(String),
    /// The transfer file could not be written (export) or read (import).
    #[error("{path}: {source}")]
    File {
        /// The transfer file.
        path: PathBuf,
        /// Why it failed.
        source: std::io::Error,
    },
    /// The server URL is not a plain-HTTP `http://host[:port]` URL.
    #[error("the server URL {0:?} is not http://host[:port]: this build speaks plain HTTP only")]
    Url(String),
}

/// The `Authorization` header im_client builds from an auth file: each credential
/// line as `key = value;` pairs, each line ended by the two characters `\n`
/// (`docs/api.md` §1.1). A one-line file starting `Bearer ` is sent as is.
pub fn authorization_header(auth_file: &str) -> Option<String> {
    let lines: Vec<&str> = auth_file
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .collect();
    if let [only] = lines.as_slice() {
        if only.starts_with("Bearer ") {
            return Some((*only).to_string());
        }
    }
    let mut header = String::new();
    for line in &lines {
        for token in split_outside_quotes(line, ';') {
            let token = token.trim();
            if token.is_empty() {
                continue;
            }
            header.push_str(token);
            header.push(';');
        }
        header.push_str("\\n");
    }
    (!header.is_empty()).then_some(header)
}

/// Splits on `separator` except inside single or double quotes.
fn split_outside_quotes(text: &str, separator: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut quote: Option<char> = None;
    let mut start = 0;
    for (index, c) in text.char_indices() {
        match quote {
            Some(open) if c == open => quote = None,
            Some(_) => {}
            None if c == '\'' || c == '"' => quote = Some(c),
            None if c == separator => {
                parts.push(&text[start..index]);
                start = index + c.len_utf8();
            }
            None => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

/// The infrastructure ids of a `GET /infrastructures` JSON answer.
pub fn ids_of_uri_list(body: &[u8]) -> Result<Vec<String>, String> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("the list is not JSON: {e}"))?;
    let list = value["uri-list"]
        .as_array()
        .ok_or("the list has no \"uri-list\"")?;
    list.iter()
        .map(|item| {
            item["uri"]
                .as_str()
                .and_then(|uri| uri.rsplit('/').next())
                .map(str::to_string)
                .ok_or_else(|| format!("a list item is not {{\"uri\": …}}: {item}"))
        })
        .collect()
}

/// The bar's layout: the verb, a 30-character bar, done/total.
const PROGRESS_TEMPLATE: &str = "{msg} [{bar:30}] {pos}/{len}";

/// Progress on stderr with `indicatif`, drawn only when stderr is a terminal: a
/// log file or a pipe gets the messages alone, never cursor movements.
struct Progress {
    bar: indicatif::ProgressBar,
    enabled: bool,
}

impl Progress {
    fn new(verb: &'static str, total: usize) -> Self {
        Progress::with_terminal(verb, total, std::io::stderr().is_terminal())
    }

    fn with_terminal(verb: &'static str, total: usize, terminal: bool) -> Self {
        let bar = if terminal {
            indicatif::ProgressBar::new(total as u64)
        } else {
            indicatif::ProgressBar::hidden()
        };
        // The template is a constant; should indicatif ever refuse it, its
        // default bar still shows progress.
        let style = indicatif::ProgressStyle::with_template(PROGRESS_TEMPLATE)
            .map(|style| style.progress_chars("#>-"))
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
        bar.set_style(style);
        bar.set_message(verb);
        bar.set_length(total as u64);
        Progress {
            bar,
            enabled: terminal,
        }
    }

    fn show(&self, done: usize) {
        self.bar.set_position(done as u64);
    }

    /// Prints a message on its own line, above the bar.
    fn message(&self, done: usize, text: &str) {
        if self.enabled {
            self.bar.println(text);
        } else {
            eprintln!("{text}");
        }
        self.show(done);
    }

    fn finish(&self) {
        self.bar.finish();
    }
}

/// A plain-HTTP client for one server and one set of credentials.
struct Client {
    http: awc::Client,
    base: String,
    authorization: String,
}

impl Client {
    fn new(server: &str, auth: &Path) -> Result<Self, TransferError> {
        let base = server.trim_end_matches('/').to_string();
        if !base.starts_with("http://") || base.len() <= "http://".len() {
            return Err(TransferError::Url(server.to_string()));
        }
        let text = std::fs::read_to_string(auth).map_err(|source| TransferError::AuthFile {
            path: auth.to_path_buf(),
            source,
        })?;
        let authorization =
            authorization_header(&text).ok_or_else(|| TransferError::EmptyAuth(auth.into()))?;
        let http = awc::Client::builder().timeout(REQUEST_TIMEOUT).finish();
        Ok(Client {
            http,
            base,
            authorization,
        })
    }

    /// GET a path; the body of a 200, else a message naming the status and body.
    async fn get(&self, path: &str) -> Result<Vec<u8>, String> {
        let mut response = self
            .http
            .get(format!("{}{path}", self.base))
            .insert_header(("Authorization", self.authorization.as_str()))
            .insert_header(("Accept", "application/json"))
            .send()
            .await
            .map_err(|e| format!("GET {path}: {e}"))?;
        let body = response
            .body()
            .limit(MAX_HISTORY_BYTES)
            .await
            .map_err(|e| format!("GET {path}: reading the answer: {e}"))?;
        if response.status() != awc::http::StatusCode::OK {
            return Err(format!(
                "GET {path}: {} {}",
                response.status(),
                String::from_utf8_lossy(&body).trim()
            ));
        }
        Ok(body.to_vec())
    }

    /// PUT one history document; whether it was new (`true`) or already there.
    async fn import(&self, document: &str) -> Result<bool, String> {
        let path = "/infrastructures?format=history";
        let mut response = self
            .http
            .put(format!("{}{path}", self.base))
            .insert_header(("Authorization", self.authorization.as_str()))
            .insert_header(("Accept", "application/json"))
            .insert_header(("Content-Type", "application/json"))
            .send_body(document.to_string())
            .await
            .map_err(|e| format!("PUT {path}: {e}"))?;
        let body = response.body().await.unwrap_or_default();
        if response.status() != awc::http::StatusCode::OK {
            return Err(format!(
                "{} {}",
                response.status(),
                String::from_utf8_lossy(&body).trim()
            ));
        }
        let outcome = response
            .headers()
            .get(IMPORT_OUTCOME_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("imported");
        Ok(outcome != "already-present")
    }
}

/// Runs `infralog export`. Exit code 0 when every infrastructure was exported, 1
/// otherwise.
pub fn run_export(args: ExportArgs) -> ExitCode {
    finish(actix_web::rt::System::new().block_on(export(args)))
}

/// Runs `infralog import`. Exit code 0 when every document was imported (or was
/// already present), 1 otherwise.
pub fn run_import(args: ImportArgs) -> ExitCode {
    finish(actix_web::rt::System::new().block_on(import(args)))
}

fn finish(result: Result<bool, TransferError>) -> ExitCode {
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("infralog: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Exports each infrastructure into `args.to` (written beside, then renamed, so a
/// failed run leaves no half file). `Ok(false)` when some could not be exported.
async fn export(args: ExportArgs) -> Result<bool, TransferError> {
    let client = Client::new(&args.server, &args.auth)?;
    let ids = if args.all {
        let body = client
            .get("/infrastructures")
            .await
            .map_err(TransferError::Server)?;
        ids_of_uri_list(&body).map_err(TransferError::Server)?
    } else {
        args.ids.clone()
    };
    let file_error = |source| TransferError::File {
        path: args.to.clone(),
        source,
    };
    let partial = args.to.with_extension("partial");
    let mut out = std::io::BufWriter::new(File::create(&partial).map_err(file_error)?);
    let progress = Progress::new("exporting", ids.len());
    let mut failed = 0;
    for (index, id) in ids.iter().enumerate() {
        match client.get(&format!("/infrastructures/{id}/history")).await {
            Ok(document) => {
                out.write_all(&document)
                    .and_then(|()| out.write_all(b"\n"))
                    .map_err(file_error)?;
            }
            Err(message) => {
                failed += 1;
                progress.message(index, &format!("{id}: not exported: {message}"));
            }
        }
        progress.show(index + 1);
    }
    progress.finish();
    out.flush().map_err(file_error)?;
    out.get_ref().sync_all().map_err(file_error)?;
    drop(out);
    std::fs::rename(&partial, &args.to).map_err(file_error)?;
    println!(
        "exported {} of {} infrastructures to {}",
        ids.len() - failed,
        ids.len(),
        args.to.display()
    );
    Ok(failed == 0)
}

/// Imports every document of `args.file`. `Ok(false)` when some were refused.
async fn import(args: ImportArgs) -> Result<bool, TransferError> {
    let client = Client::new(&args.server, &args.auth)?;
    let file_error = |source| TransferError::File {
        path: args.file.clone(),
        source,
    };
    let documents: Vec<String> = BufReader::new(File::open(&args.file).map_err(file_error)?)
        .lines()
        .collect::<Result<Vec<_>, _>>()
        .map_err(file_error)?
        .into_iter()
        .filter(|line| !line.trim().is_empty())
        .collect();
    let progress = Progress::new("importing", documents.len());
    let (mut imported, mut present, mut failed) = (0, 0, 0);
    for (index, document) in documents.iter().enumerate() {
        match client.import(document).await {
            Ok(true) => imported += 1,
            Ok(false) => present += 1,
            Err(message) => {
                failed += 1;
                progress.message(
                    index,
                    &format!(
                        "document {} (line {}): refused: {message}",
                        index + 1,
                        index + 1
                    ),
                );
            }
        }
        progress.show(index + 1);
    }
    progress.finish();
    println!("imported {imported}, already present {present}, refused {failed}");
    Ok(failed == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_files_become_im_clients_header() {
        let file = "# mine\nid = im; type = InfrastructureManager; username = u; password = 'a;b'\n\nid = dummy; type = Dummy\n";
        assert_eq!(
            authorization_header(file).as_deref(),
            Some("id = im;type = InfrastructureManager;username = u;password = 'a;b';\\nid = dummy;type = Dummy;\\n")
        );
        assert_eq!(
            authorization_header("Bearer abc.def\n").as_deref(),
            Some("Bearer abc.def")
        );
        assert_eq!(authorization_header("# nothing\n\n"), None);
    }

    #[test]
    fn ids_come_from_the_uri_list() {
        let body = br#"{"uri-list":[{"uri":"http://h/infrastructures/a-1"},{"uri":"http://h/infrastructures/b-2"}]}"#;
        assert_eq!(ids_of_uri_list(body), Ok(vec!["a-1".into(), "b-2".into()]));
        assert!(ids_of_uri_list(b"nope").is_err());
    }

    #[test]
    fn the_progress_bar_is_drawn_only_on_a_terminal() {
        let hidden = Progress::with_terminal("importing", 3, false);
        assert!(hidden.bar.is_hidden());
        hidden.show(2);
        assert_eq!(hidden.bar.position(), 2);
        assert_eq!(hidden.bar.length(), Some(3));
        let shown = Progress::with_terminal("exporting", 4, true);
        assert_eq!(shown.bar.length(), Some(4));
        assert_eq!(shown.bar.message(), "exporting");
        shown.finish();
        assert!(shown.bar.is_finished());
    }
}
