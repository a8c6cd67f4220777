//! The Docker host a credential line names (`host = unix:///var/run/docker.sock`,
//! `tcp://HOST:PORT`, `http://HOST:PORT`), and the address its published ports are
//! reached at.

use std::fmt;
use std::net::IpAddr;

/// The engine's socket when the credential names none.
pub const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";
/// The port of `tcp://HOST` without one (Docker's plain-TCP port).
const DEFAULT_TCP_PORT: u16 = 2375;

/// Where the engine listens.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DockerHost {
    /// A unix socket, by path.
    Unix(String),
    /// Plain HTTP over TCP.
    Tcp {
        /// The host name or address (IPv6 without brackets).
        host: String,
        /// The port.
        port: u16,
    },
}

impl fmt::Display for DockerHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DockerHost::Unix(path) => write!(f, "unix://{path}"),
            DockerHost::Tcp { host, port } if host.contains(':') => {
                write!(f, "tcp://[{host}]:{port}")
            }
            DockerHost::Tcp { host, port } => write!(f, "tcp://{host}:{port}"),
        }
    }
}

/// Why a `host` value cannot name a Docker engine. The value itself is quoted only
/// when it cannot hold a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct HostError(pub String);

impl DockerHost {
    /// Reads a credential's `host`; empty means the local engine's socket.
    pub fn parse(value: &str) -> Result<DockerHost, HostError> {
        let value = value.trim();
        if value.is_empty() {
            return DockerHost::parse(DEFAULT_HOST);
        }
        if value.contains('@') {
            return Err(HostError(
                "the Docker host must not carry a user name or password".into(),
            ));
        }
        if let Some(path) = value.strip_prefix("unix://") {
            if !path.starts_with('/') {
                return Err(HostError(format!(
                    "Docker host '{value}': a unix socket needs an absolute path \
                     (unix:///var/run/docker.sock)"
                )));
            }
            return Ok(DockerHost::Unix(path.to_string()));
        }
        let rest = value
            .strip_prefix("tcp://")
            .or_else(|| value.strip_prefix("http://"));
        let Some(rest) = rest else {
            let reason = if value.starts_with("https://") {
                "TLS connections to Docker are not supported yet; use a unix socket or plain tcp://"
            } else {
                "expected unix:///PATH, tcp://HOST:PORT or http://HOST:PORT"
            };
            return Err(HostError(format!("Docker host '{value}': {reason}")));
        };
        let authority = rest.trim_end_matches('/');
        let bad = || {
            HostError(format!(
                "Docker host '{value}': expected tcp://HOST:PORT or http://HOST:PORT"
            ))
        };
        if authority.is_empty() || authority.contains(['/', '?', '#', ' ']) {
            return Err(bad());
        }
        let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
            let (host, after) = bracketed.split_once(']').ok_or_else(bad)?;
            let port = match after.strip_prefix(':') {
                Some(port) => Some(port),
                None if after.is_empty() => None,
                None => return Err(bad()),
            };
            (host, port)
        } else {
            match authority.rsplit_once(':') {
                Some((host, port)) if !host.contains(':') => (host, Some(port)),
                Some(_) => return Err(bad()),
                None => (authority, None),
            }
        };
        let port = match port {
            Some(port) => port
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(bad)?,
            None => DEFAULT_TCP_PORT,
        };
        if host.is_empty() {
            return Err(bad());
        }
        Ok(DockerHost::Tcp {
            host: host.to_string(),
            port,
        })
    }

    /// The URL bollard connects to.
    pub fn url(&self) -> String {
        self.to_string()
    }

    /// The address published ports are reached at: `local` for a unix socket (the
    /// engine runs beside infralog), the engine's address for TCP (resolved when it
    /// is a name; the name itself when it does not resolve).
    pub async fn public_address(&self, local: &str) -> String {
        match self {
            DockerHost::Unix(_) => local.to_string(),
            DockerHost::Tcp { host, .. } if host.parse::<IpAddr>().is_ok() => host.clone(),
            DockerHost::Tcp { host, port } => {
                match tokio::net::lookup_host((host.as_str(), *port)).await {
                    Ok(addresses) => {
                        let addresses: Vec<_> = addresses.map(|a| a.ip()).collect();
                        addresses
                            .iter()
                            .find(|a| a.is_ipv4())
                            .or(addresses.first())
                            .map_or_else(|| host.clone(), IpAddr::to_string)
                    }
                    Err(_) => host.clone(),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_schemes_and_the_default_are_read() {
        assert_eq!(
            DockerHost::parse(""),
            Ok(DockerHost::Unix("/var/run/docker.sock".into()))
        );
        assert_eq!(
            DockerHost::parse("unix:///run/user/1000/docker.sock"),
            Ok(DockerHost::Unix("/run/user/1000/docker.sock".into()))
        );
        let tcp = |host: &str, port| DockerHost::Tcp {
            host: host.into(),
            port,
        };
        assert_eq!(
            DockerHost::parse("tcp://127.0.0.1:1"),
            Ok(tcp("127.0.0.1", 1))
        );
        assert_eq!(
            DockerHost::parse("http://docker.example:2376/"),
            Ok(tcp("docker.example", 2376))
        );
        assert_eq!(DockerHost::parse("tcp://engine"), Ok(tcp("engine", 2375)));
        assert_eq!(DockerHost::parse("tcp://[::1]:2375"), Ok(tcp("::1", 2375)));
        assert_eq!(tcp("::1", 2375).url(), "tcp://[::1]:2375");
        assert_eq!(tcp("h", 5).url(), "tcp://h:5");
    }

    #[test]
    fn unusable_hosts_are_refused_without_echoing_credentials() {
        let secret = DockerHost::parse("tcp://admin:hunter2@engine:2375").expect_err("refused");
        assert!(!secret.0.contains("hunter2"), "{secret}");
        for (bad, reason) in [
            ("https://engine:2376", "TLS"),
            ("ssh://engine", "expected"),
            ("unix://relative.sock", "absolute path"),
            ("tcp://engine:notaport", "expected"),
            ("tcp://engine:0", "expected"),
            ("tcp://:2375", "expected"),
            ("tcp://engine:2375/path", "expected"),
            ("tcp://::1:2375", "expected"),
        ] {
            let error = DockerHost::parse(bad).expect_err(bad);
            assert!(error.0.contains(reason), "{bad}: {error}");
        }
    }

    #[tokio::test]
    async fn the_public_address_is_the_engines() {
        let unix = DockerHost::parse("").expect("default");
        assert_eq!(unix.public_address("127.0.0.1").await, "127.0.0.1");
        let ip = DockerHost::parse("tcp://192.0.2.7:2375").expect("valid");
        assert_eq!(ip.public_address("127.0.0.1").await, "192.0.2.7");
        let localhost = DockerHost::parse("tcp://localhost:2375").expect("valid");
        let resolved = localhost.public_address("x").await;
        assert!(
            resolved.parse::<IpAddr>().is_ok_and(|a| a.is_loopback()),
            "{resolved}"
        );
    }
}
