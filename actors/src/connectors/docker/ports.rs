//! A public network's `outports` read as IM's RADL library reads them
//! (`outport.parseOutPorts`), turned into the ports Docker publishes on its host.
//!
//! IM's syntax, comma separated: `REMOTE[/PROTO][-LOCAL[/PROTO]]` maps host port
//! REMOTE to container port LOCAL (`8080-80`), `A:B[/PROTO]` is a range of ports
//! published as themselves, and a leading `CIDR-` (`0.0.0.0/0-22`) restricts who may
//! connect. The protocol is `tcp` unless given; both sides of a mapping must agree.
//!
//! Where this differs from IM's Docker connector: ranges are published (IM ignores
//! them with a warning); port 22 is published like any other (IM reserves it for the
//! sshd it installs, which we do not); `icmp` entries and CIDR prefixes are ignored,
//! since Docker can publish neither; and the total is capped, since every published
//! port may cost the engine a proxy process. A host port belongs to the host, as
//! with IM: a second VM asking for a port already published fails to launch with
//! Docker's "port is already allocated".

use std::fmt;

/// The most host ports one VM may publish.
pub const MAX_PUBLISHED_PORTS: usize = 256;

/// A transport protocol Docker can publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        })
    }
}

/// One host port forwarded to one container port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PublishedPort {
    /// The port on the Docker host (IM's remote port).
    pub host_port: u16,
    /// The port inside the container (IM's local port).
    pub container_port: u16,
    /// The protocol.
    pub protocol: Protocol,
}

impl PublishedPort {
    /// Docker's key for the container side: `80/tcp`.
    pub fn container_key(&self) -> String {
        format!("{}/{}", self.container_port, self.protocol)
    }
}

/// Why an `outports` value cannot be published.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("network {network}: outports entry '{entry}': {reason}")]
pub struct OutportsError {
    /// The RADL network.
    pub network: String,
    /// The entry that failed, as written.
    pub entry: String,
    /// What is wrong with it.
    pub reason: String,
}

/// The ports of `outports` of RADL network `network`, in order, without duplicates.
pub fn parse_outports(network: &str, outports: &str) -> Result<Vec<PublishedPort>, OutportsError> {
    let mut ports: Vec<PublishedPort> = Vec::new();
    for entry in outports.split(',') {
        let fail = |reason: &str| OutportsError {
            network: network.to_string(),
            entry: entry.to_string(),
            reason: reason.to_string(),
        };
        let spec = strip_cidr(entry.trim());
        let parsed = parse_entry(spec).map_err(|reason| fail(&reason))?;
        for port in parsed {
            if !ports.contains(&port) {
                ports.push(port);
            }
            if ports.len() > MAX_PUBLISHED_PORTS {
                return Err(fail(&format!(
                    "more than {MAX_PUBLISHED_PORTS} ports would be published"
                )));
            }
        }
    }
    Ok(ports)
}

/// `0.0.0.0/0-22` → `22`: the source restriction Docker cannot apply.
fn strip_cidr(entry: &str) -> &str {
    let Some((prefix, rest)) = entry.split_once('/') else {
        return entry;
    };
    let octets: Vec<&str> = prefix.split('.').collect();
    let is_address = octets.len() == 4
        && octets
            .iter()
            .all(|o| !o.is_empty() && o.len() <= 3 && o.bytes().all(|b| b.is_ascii_digit()));
    if !is_address {
        return entry;
    }
    match rest.split_once('-') {
        Some((mask, spec))
            if !mask.is_empty() && mask.len() <= 2 && mask.bytes().all(|b| b.is_ascii_digit()) =>
        {
            spec
        }
        _ => entry,
    }
}

/// One entry, without its CIDR prefix: `icmp` gives nothing.
fn parse_entry(spec: &str) -> Result<Vec<PublishedPort>, String> {
    if spec.contains(':') && spec.contains('-') {
        return Err("a port range (:) and a port mapping (-) cannot be combined".into());
    }
    if let Some((first, last)) = spec.split_once(':') {
        let (last, protocol) = split_protocol(last)?;
        let (first, last) = (port_number(first)?, port_number(last)?);
        if first > last {
            return Err(format!("the range {first}:{last} is empty"));
        }
        let Some(protocol) = protocol else {
            return Ok(Vec::new());
        };
        if usize::from(last - first) >= MAX_PUBLISHED_PORTS {
            return Err(format!(
                "more than {MAX_PUBLISHED_PORTS} ports would be published"
            ));
        }
        return Ok((first..=last)
            .map(|port| PublishedPort {
                host_port: port,
                container_port: port,
                protocol,
            })
            .collect());
    }
    let mut sides = spec.split('-');
    let (Some(remote), local, None) = (sides.next(), sides.next(), sides.next()) else {
        return Err("a mapping has at most one '-'".into());
    };
    let (remote, remote_protocol) = split_protocol(remote)?;
    let (local, local_protocol) = match local {
        Some(local) => split_protocol(local)?,
        None => (remote, remote_protocol),
    };
    if remote_protocol != local_protocol {
        return Err("different protocols used in local and remote outports".into());
    }
    let Some(protocol) = local_protocol else {
        return Ok(Vec::new());
    };
    Ok(vec![PublishedPort {
        host_port: port_number(remote)?,
        container_port: port_number(local)?,
        protocol,
    }])
}

/// `80/udp` → (`80`, UDP); `None` for `icmp`, which Docker cannot publish.
fn split_protocol(side: &str) -> Result<(&str, Option<Protocol>), String> {
    match side.split_once('/') {
        None => Ok((side, Some(Protocol::Tcp))),
        Some((port, "tcp")) => Ok((port, Some(Protocol::Tcp))),
        Some((port, "udp")) => Ok((port, Some(Protocol::Udp))),
        Some((port, "icmp")) => Ok((port, None)),
        Some((_, other)) => Err(format!("unknown protocol '{other}'")),
    }
}

fn port_number(text: &str) -> Result<u16, String> {
    match text.parse::<u16>() {
        Ok(port) if port > 0 && text.bytes().all(|b| b.is_ascii_digit()) => Ok(port),
        _ => Err(format!("'{text}' is not a port number (1-65535)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(host_port: u16, container_port: u16) -> PublishedPort {
        PublishedPort {
            host_port,
            container_port,
            protocol: Protocol::Tcp,
        }
    }

    #[test]
    fn ims_formats_map_remote_host_ports_to_local_container_ports() {
        assert_eq!(
            parse_outports("pub", "8080-80,22/tcp").expect("valid"),
            [tcp(8080, 80), tcp(22, 22)]
        );
        assert_eq!(
            parse_outports("pub", "8899/tcp-8899/tcp,53/udp-5353/udp,0.0.0.0/0-443")
                .expect("valid"),
            [
                tcp(8899, 8899),
                PublishedPort {
                    host_port: 53,
                    container_port: 5353,
                    protocol: Protocol::Udp
                },
                tcp(443, 443)
            ]
        );
        assert_eq!(
            parse_outports("pub", "10:12/udp,1:1").expect("valid").len(),
            4
        );
        assert_eq!(
            parse_outports("pub", "0/icmp,8/icmp-8/icmp"),
            Ok(Vec::new())
        );
        assert_eq!(parse_outports("pub", "80,80"), Ok(vec![tcp(80, 80)]));
    }

    #[test]
    fn bad_outports_say_which_entry_and_why() {
        for (value, reason) in [
            ("22-", "not a port number"),
            ("80/tcp-80/udp", "different protocols"),
            ("70000", "not a port number"),
            ("0", "not a port number"),
            ("+80", "not a port number"),
            ("1:10-20", "cannot be combined"),
            ("10:1", "is empty"),
            ("80/sctp", "unknown protocol"),
            ("1-2-3", "at most one"),
            ("1:65535", "more than 256"),
            ("", "not a port number"),
        ] {
            let error = parse_outports("pub", value).expect_err(value);
            assert!(error.reason.contains(reason), "{value}: {error}");
            assert!(error.to_string().starts_with("network pub: outports entry"));
        }
        let many: Vec<String> = (1..=300).map(|p| p.to_string()).collect();
        assert!(parse_outports("pub", &many.join(",")).is_err());
    }
}
