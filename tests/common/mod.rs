//! What the black-box API tests share: a server started on port 0 over a temporary
//! directory (in this process, or the real binary in a child process), and a small
//! HTTP/1.1 client over `std::net::TcpStream` that sends exactly the bytes a test
//! asks for (a real client would refuse some of the malformed requests we need).

#![allow(dead_code)] // each test binary uses a different part of this module

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use infralog::app::{Application, Settings};

/// The `Host` every request sends unless a test says otherwise, so that URIs are the
/// same whatever port a server got (and across restarts).
pub const HOST: &str = "im.test:8800";

/// A header with IM credentials for `user` and a Dummy cloud line.
pub fn auth_for(user: &str) -> String {
    format!(
        "id = im; type = InfrastructureManager; username = {user}; password = pass-{user}\\nid = dummy; type = Dummy"
    )
}

/// Two VMs on a private network, contextualization disabled: configured at once.
pub const RADL_NO_CTX: &str = "network privada ()
system node (
cpu.count>=1 and
memory.size>=512m and
net_interface.0.connection = 'privada' and
disk.0.os.name='linux'
)
deploy node 2
contextualize ()
";

/// A front on a public network and one worker, contextualization enabled: the VMs
/// are `running` until the simulated contextualization ends.
pub const RADL_CTX: &str = "network publica (outbound = 'yes')
network privada ()
system front (
cpu.arch='x86_64' and
cpu.count>=1 and
memory.size>=512m and
net_interface.0.connection = 'publica' and
net_interface.1.connection = 'privada' and
disk.0.os.name='linux'
)
system wn (
cpu.count>=2 and
memory.size>=1g and
net_interface.0.connection = 'privada' and
disk.0.os.name='linux'
)
deploy front 1
deploy wn 1
";

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

/// Anything that serves the API on a local port.
pub trait Api {
    fn port(&self) -> u16;

    fn request(&self, method: &str, path: &str) -> Request {
        Request::new(self.port(), method, path)
    }

    fn get(&self, path: &str) -> Request {
        self.request("GET", path)
    }

    fn post(&self, path: &str) -> Request {
        self.request("POST", path)
    }

    fn put(&self, path: &str) -> Request {
        self.request("PUT", path)
    }

    fn delete(&self, path: &str) -> Request {
        self.request("DELETE", path)
    }
}

/// A server running in this process, on its own actix system thread.
pub struct TestServer {
    pub port: u16,
    pub data_dir: PathBuf,
    handle: actix_web::dev::ServerHandle,
    thread: Option<JoinHandle<()>>,
}

impl TestServer {
    /// Starts a server with [`settings`] over `data_dir`.
    pub fn start(data_dir: &Path) -> TestServer {
        TestServer::start_with(settings(data_dir))
    }

    pub fn start_with(settings: Settings) -> TestServer {
        let data_dir = settings.data_dir.clone();
        let (started, ready) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            let system = actix_web::rt::System::new();
            system.block_on(async move {
                match Application::start(settings).await {
                    Ok(application) => {
                        let _ = started.send(Ok((application.port(), application.handle())));
                        if let Err(error) = application.run_until_stopped().await {
                            eprintln!("the test server stopped with an error: {error}");
                        }
                    }
                    Err(error) => {
                        let _ = started.send(Err(error.to_string()));
                    }
                }
            });
        });
        let (port, handle) = ready
            .recv_timeout(Duration::from_secs(60))
            .expect("the server starts within a minute")
            .expect("the server starts");
        TestServer {
            port,
            data_dir,
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

/// A request being built.
#[derive(Debug, Clone)]
pub struct Request {
    port: u16,
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    pub fn new(port: u16, method: &str, path: &str) -> Request {
        Request {
            port,
            method: method.into(),
            path: path.into(),
            headers: vec![("Host".into(), HOST.into())],
            body: Vec::new(),
        }
    }

    /// Sets a header, replacing one of the same name.
    pub fn header(mut self, name: &str, value: &str) -> Request {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn without_header(mut self, name: &str) -> Request {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self
    }

    pub fn auth(self, value: &str) -> Request {
        self.header("Authorization", value)
    }

    pub fn user(self, user: &str) -> Request {
        self.auth(&auth_for(user))
    }

    pub fn accept(self, value: &str) -> Request {
        self.header("Accept", value)
    }

    pub fn radl(self, text: &str) -> Request {
        self.header("Content-Type", "text/plain").body(text)
    }

    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Request {
        self.body = body.into();
        self
    }

    pub fn send(&self) -> Response {
        let mut head = format!("{} {} HTTP/1.1\r\n", self.method, self.path);
        for (name, value) in &self.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(
            format!(
                "Content-Length: {}\r\nConnection: close\r\n\r\n",
                self.body.len()
            )
            .as_bytes(),
        );
        bytes.extend_from_slice(&self.body);
        send_raw(self.port, &bytes)
    }
}

/// Sends `bytes` as they are and reads the answer until the server closes.
pub fn send_raw(port: u16, bytes: &[u8]) -> Response {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to the server");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("read timeout");
    // A server may answer (413, 431) and close before it read everything we send.
    let _ = stream.write_all(bytes);
    let mut answer = Vec::new();
    let mut buffer = [0u8; 16 * 1024];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buffer[..n]),
            Err(error)
                if error.kind() == std::io::ErrorKind::ConnectionReset && !answer.is_empty() =>
            {
                break
            }
            Err(error) => panic!("reading the answer: {error}"),
        }
    }
    Response::parse(&answer)
}

/// An HTTP answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    /// Names in lower case, in the order received.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    fn parse(raw: &[u8]) -> Response {
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or_else(|| panic!("no header section in {:?}", String::from_utf8_lossy(raw)));
        let head = String::from_utf8_lossy(&raw[..split]).into_owned();
        let mut lines = head.split("\r\n");
        let status_line = lines.next().expect("a status line");
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
        let headers: Vec<(String, String)> = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let rest = &raw[split + 4..];
        let chunked = headers
            .iter()
            .any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
        let body = if chunked {
            dechunk(rest)
        } else {
            match headers
                .iter()
                .find(|(n, _)| n == "content-length")
                .and_then(|(_, v)| v.parse::<usize>().ok())
            {
                Some(length) => rest[..length.min(rest.len())].to_vec(),
                None => rest.to_vec(),
            }
        };
        Response {
            status,
            headers,
            body,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn content_type(&self) -> &str {
        self.header("content-type").unwrap_or("")
    }

    pub fn text(&self) -> String {
        String::from_utf8(self.body.clone()).expect("a UTF-8 body")
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.text()))
    }

    /// Panics with the body when the status is not `status`.
    #[track_caller]
    pub fn expect(self, status: u16) -> Response {
        assert_eq!(
            self.status,
            status,
            "unexpected status; body: {:?}",
            String::from_utf8_lossy(&self.body)
        );
        self
    }
}

fn dechunk(mut rest: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    loop {
        let Some(end) = rest.windows(2).position(|w| w == b"\r\n") else {
            return body;
        };
        let size_text = String::from_utf8_lossy(&rest[..end]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .unwrap_or(0);
        if size == 0 {
            return body;
        }
        let start = end + 2;
        body.extend_from_slice(&rest[start..(start + size).min(rest.len())]);
        rest = &rest[(start + size + 2).min(rest.len())..];
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

/// The real binary serving in a child process, for crash tests.
pub struct ChildServer {
    pub port: u16,
    child: std::process::Child,
}

impl ChildServer {
    /// Starts `infralog serve` on a free port over `data_dir`, with `extra` flags.
    pub fn start(data_dir: &Path, extra: &[&str]) -> ChildServer {
        use std::io::BufRead;
        use std::process::{Command, Stdio};
        let mut child = Command::new(env!("CARGO_BIN_EXE_infralog"))
            .arg("serve")
            .args(["--listen", "127.0.0.1:0", "--workers", "1"])
            .arg("--data-dir")
            .arg(data_dir)
            .args(extra)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the infralog binary");
        let stderr = child.stderr.take().expect("the child's stderr");
        let (found, port) = mpsc::channel();
        // Read the log until the port shows, then keep draining it so the child
        // never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut found = Some(found);
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(port) = logged_port(&line) {
                    if let Some(found) = found.take() {
                        let _ = found.send(port);
                    }
                }
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
        ChildServer { port, child }
    }

    /// `kill -9`: no shutdown code runs.
    pub fn kill(mut self) {
        self.child.kill().expect("SIGKILL the server");
        self.child.wait().expect("reap the server");
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
    let after = plain.split("port=").nth(1)?;
    after
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .ok()
}
