//! The one HTTP client of the API tests: HTTP/1.1 over `std::net::TcpStream`,
//! sending exactly the bytes a test asks for (a real client would refuse some of
//! the malformed requests the tests need), one request per connection.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::fixtures::auth_for;

/// The `Host` every request sends unless a test says otherwise, so that URIs are the
/// same whatever port a server got (and across restarts).
pub const HOST: &str = "im.test:8800";

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

    /// The base of the URIs answered to [`Request::direct`] requests.
    fn direct_base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port())
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

    /// Sets each of `headers` in turn.
    pub fn headers(self, headers: &[(&str, &str)]) -> Request {
        headers
            .iter()
            .fold(self, |request, (name, value)| request.header(name, value))
    }

    /// Sends the server's own address as `Host` (as a browser or `awc` would), for
    /// tests that compare URIs with the address they connected to.
    pub fn direct(self) -> Request {
        let host = format!("127.0.0.1:{}", self.port);
        self.header("Host", &host)
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

    /// Sends the request; `None` when the server cannot be reached or closes
    /// without a whole answer head (it was killed), for tests that kill servers.
    pub fn try_send(&self) -> Option<Response> {
        let mut stream = connect(self.port).ok()?;
        stream.write_all(&self.bytes()).ok()?;
        let answer = match read_until_closed(&mut stream) {
            Ok(answer) => answer,
            Err((answer, _)) if !answer.is_empty() => answer,
            Err(_) => return None,
        };
        answer
            .windows(4)
            .any(|w| w == b"\r\n\r\n")
            .then(|| Response::parse(&answer))
    }

    fn bytes(&self) -> Vec<u8> {
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
        bytes
    }

    pub fn send(&self) -> Response {
        send_raw(self.port, &self.bytes())
    }
}

fn connect(port: u16) -> std::io::Result<TcpStream> {
    let stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    Ok(stream)
}

/// Everything the server sends until it closes; on a read error, what came
/// before it, with the error.
fn read_until_closed(stream: &mut TcpStream) -> Result<Vec<u8>, (Vec<u8>, std::io::Error)> {
    let mut answer = Vec::new();
    let mut buffer = [0u8; 16 * 1024];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => return Ok(answer),
            Ok(n) => answer.extend_from_slice(&buffer[..n]),
            Err(error) => return Err((answer, error)),
        }
    }
}

/// Sends `bytes` as they are and reads the answer until the server closes.
pub fn send_raw(port: u16, bytes: &[u8]) -> Response {
    let mut stream = connect(port).expect("connect to the server");
    // A server may answer (413, 431) and close before it read everything we send.
    let _ = stream.write_all(bytes);
    let answer = match read_until_closed(&mut stream) {
        Ok(answer) => answer,
        Err((answer, error))
            if error.kind() == std::io::ErrorKind::ConnectionReset && !answer.is_empty() =>
        {
            answer
        }
        Err((_, error)) => panic!("reading the answer: {error}"),
    };
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
