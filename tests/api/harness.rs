//! How the API tests start servers: `Application` on port 0 over a temporary
//! directory, in this process ([`TestServer`]), or the real binary in a child
//! process ([`ChildServer`]) for `kill -9` and for tests that read the server's own
//! log (the test process shares one tracing setup among all its tests). Also the
//! calls most tests make (create, state, wait, list). Modules import this with
//! `use crate::harness::*`, which brings the client and the fixtures too.

use std::path::Path;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use infralog::app::{Application, Settings};

pub use crate::client::*;
pub use crate::fixtures::*;

/// Settings for a test server over `data_dir`: port 0, cheap hashing, a short
/// contextualization and few threads (the machine is shared).
pub fn settings(data_dir: &Path) -> Settings {
    let mut settings = Settings::new("127.0.0.1:0", data_dir);
    settings.fast_password_hashing = true;
    settings.contextualization_delay = Duration::from_millis(600);
    settings.workers = 2;
    settings.actors.arbiters = 1;
    settings
}

/// A server running in this process, on its own actix system thread.
pub struct TestServer {
    pub port: u16,
    handle: actix_web::dev::ServerHandle,
    thread: Option<JoinHandle<()>>,
}

impl TestServer {
    /// Starts a server with [`settings`] over `data_dir`.
    pub fn start(data_dir: &Path) -> TestServer {
        TestServer::start_with(settings(data_dir))
    }

    pub fn start_with(settings: Settings) -> TestServer {
        let (started, ready) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            let system = actix_web::rt::System::new();
            system.block_on(async move {
                // A server just stopped on the same directory may still hold the
                // log's lock for a moment (its last actors are finishing).
                let deadline = Instant::now() + Duration::from_secs(10);
                let application = loop {
                    match Application::start(settings.clone()).await {
                        Ok(application) => break application,
                        Err(error) if Instant::now() < deadline => {
                            eprintln!("start failed, retrying: {error}");
                            actix_web::rt::time::sleep(Duration::from_millis(100)).await;
                        }
                        Err(error) => {
                            let _ = started.send(Err(error.to_string()));
                            return;
                        }
                    }
                };
                let _ = started.send(Ok((application.port(), application.handle())));
                if let Err(error) = application.run_until_stopped().await {
                    eprintln!("the test server stopped with an error: {error}");
                }
            });
        });
        let (port, handle) = ready
            .recv_timeout(Duration::from_secs(60))
            .expect("the server starts within a minute")
            .expect("the server starts");
        TestServer {
            port,
            handle,
            thread: Some(thread),
        }
    }

    /// Stops the server gracefully and waits until its log is closed, so another
    /// server may open the same directory.
    pub fn stop(mut self) {
        self.shut_down(true);
    }

    fn shut_down(&mut self, graceful: bool) {
        if let Some(thread) = self.thread.take() {
            // The stop command is sent at once; the future only waits for it.
            drop(self.handle.stop(graceful));
            thread.join().expect("the server thread ends cleanly");
        }
    }
}

impl Api for TestServer {
    fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shut_down(false);
    }
}

/// A server over a fresh temporary directory (kept alive by the returned guard).
pub fn temp_server() -> (tempfile::TempDir, TestServer) {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = TestServer::start(dir.path());
    (dir, server)
}

/// The URI of an infrastructure as answered to requests with [`HOST`].
pub fn infra_uri(inf: &str) -> String {
    format!("http://{HOST}/infrastructures/{inf}")
}

/// The id at the end of an infrastructure URI.
pub fn id_of(uri: &str) -> String {
    uri.trim()
        .rsplit('/')
        .next()
        .expect("a URI with a path")
        .to_string()
}

/// Creates an infrastructure from RADL text and returns its id.
pub fn create(server: &impl Api, user: &str, radl: &str) -> String {
    let response = server.post("/infrastructures").user(user).radl(radl).send();
    let response = response.expect(200);
    id_of(&response.text())
}

/// The infrastructure's `state` answer as JSON.
pub fn state(server: &impl Api, user: &str, inf: &str) -> serde_json::Value {
    server
        .get(&format!("/infrastructures/{inf}/state"))
        .user(user)
        .send()
        .expect(200)
        .json()
}

/// The aggregated state of an infrastructure.
pub fn infra_state(server: &impl Api, user: &str, inf: &str) -> String {
    state(server, user, inf)["state"]["state"]
        .as_str()
        .expect("a state string")
        .to_string()
}

/// Polls until the infrastructure reaches `wanted` (or panics after `timeout`).
pub fn wait_for_state(server: &impl Api, user: &str, inf: &str, wanted: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let current = infra_state(server, user, inf);
        if current == wanted {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{inf} still {current}, not {wanted}, after {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The caller's infrastructure list as text.
pub fn list(server: &impl Api, user: &str) -> String {
    server
        .get("/infrastructures")
        .user(user)
        .send()
        .expect(200)
        .text()
}

/// Runs the real binary with `args` (an offline command) and waits for it.
pub fn infralog(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_infralog"))
        .args(args)
        .output()
        .expect("the infralog binary runs")
}

/// The real binary serving in a child process, for crash tests.
pub struct ChildServer {
    pub port: u16,
    child: std::process::Child,
    /// Every line the server logged, for [`ChildServer::kill_and_read_log`].
    log: mpsc::Receiver<String>,
    reader: Option<JoinHandle<()>>,
}

impl ChildServer {
    /// Starts `infralog serve` on a free port over `data_dir`, with `extra` flags,
    /// logging at `info`.
    pub fn start(data_dir: &Path, extra: &[&str]) -> ChildServer {
        ChildServer::spawn(data_dir, extra, Some("info"))
    }

    /// As [`ChildServer::start`], with the binary's own default log filter (no
    /// `RUST_LOG`), for tests of what it logs.
    pub fn start_with_default_log(data_dir: &Path, extra: &[&str]) -> ChildServer {
        ChildServer::spawn(data_dir, extra, None)
    }

    /// As [`ChildServer::start`], with `configure` applied to the command last
    /// (to change its environment).
    pub fn start_configured(
        data_dir: &Path,
        extra: &[&str],
        configure: impl FnOnce(&mut std::process::Command),
    ) -> ChildServer {
        ChildServer::spawn_configured(data_dir, extra, Some("info"), configure)
    }

    fn spawn(data_dir: &Path, extra: &[&str], rust_log: Option<&str>) -> ChildServer {
        ChildServer::spawn_configured(data_dir, extra, rust_log, |_| {})
    }

    fn spawn_configured(
        data_dir: &Path,
        extra: &[&str],
        rust_log: Option<&str>,
        configure: impl FnOnce(&mut std::process::Command),
    ) -> ChildServer {
        use std::io::BufRead;
        use std::process::{Command, Stdio};
        let mut command = Command::new(env!("CARGO_BIN_EXE_infralog"));
        command
            .arg("serve")
            .args(["--listen", "127.0.0.1:0", "--workers", "1"])
            .arg("--data-dir")
            .arg(data_dir)
            .args(extra)
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        match rust_log {
            Some(filter) => command.env("RUST_LOG", filter),
            None => command.env_remove("RUST_LOG"),
        };
        configure(&mut command);
        let mut child = command.spawn().expect("start the infralog binary");
        let stderr = child.stderr.take().expect("the child's stderr");
        let (found, port) = mpsc::channel();
        let (lines, log) = mpsc::channel();
        // Read the log until the port shows, then keep draining it so the child
        // never blocks on a full pipe.
        let reader = std::thread::spawn(move || {
            let mut found = Some(found);
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(port) = logged_port(&line) {
                    if let Some(found) = found.take() {
                        let _ = found.send(port);
                    }
                }
                let _ = lines.send(line);
            }
        });
        let port = match port.recv_timeout(Duration::from_secs(60)) {
            Ok(port) => port,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the server never said which port it listens on");
            }
        };
        ChildServer {
            port,
            child,
            log,
            reader: Some(reader),
        }
    }

    /// Waits up to `timeout` for a log line (from now on, or logged before
    /// and not yet read) holding every one of `parts`; whether one came.
    pub fn wait_for_log(&self, parts: &[&str], timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.log.recv_timeout(left) {
                Ok(line) if parts.iter().all(|part| line.contains(part)) => return true,
                Ok(_) => {}
                Err(_) => return false,
            }
        }
    }

    /// Sends a signal by name (`STOP`, `CONT`, `TERM`…) to the server.
    pub fn signal(&self, name: &str) {
        let status = std::process::Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{name} is delivered");
    }

    /// Waits up to `timeout` for the server to exit by itself; its exit status.
    pub fn wait_for_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// `kill -9`: no shutdown code runs.
    pub fn kill(mut self) {
        self.child.kill().expect("SIGKILL the server");
        self.child.wait().expect("reap the server");
    }

    /// `kill -9`, then every line the server logged after its port.
    pub fn kill_and_read_log(mut self) -> Vec<String> {
        self.child.kill().expect("SIGKILL the server");
        self.child.wait().expect("reap the server");
        if let Some(reader) = self.reader.take() {
            reader.join().expect("the log reader ends with the log");
        }
        self.log
            .try_iter()
            .skip_while(|line| logged_port(line).is_none())
            .skip(1)
            .collect()
    }
}

/// A server known by its port only (shareable between threads).
#[derive(Debug, Clone, Copy)]
pub struct Port(pub u16);

impl Api for Port {
    fn port(&self) -> u16 {
        self.0
    }
}

impl Api for ChildServer {
    fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The port in the server's "serving the IM REST API port=N" log line.
fn logged_port(line: &str) -> Option<u16> {
    let mut plain = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // Skip an ANSI colour sequence: ESC [ … letter.
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            plain.push(c);
        }
    }
    if !plain.contains("serving the IM REST API") {
        return None;
    }
    // Text lines say `port=N`; JSON lines (`--log-format json`) `"port":N`.
    let after = plain
        .split("port=")
        .nth(1)
        .or_else(|| plain.split("\"port\":").nth(1))?;
    after
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .ok()
}
