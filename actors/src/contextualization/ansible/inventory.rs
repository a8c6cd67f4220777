//! The inventory and `/etc/hosts` of a run, as IM's `ConfManager.generate_inventory`
//! and `generate_etc_hosts` write them, and how each host is reached.

use indexmap::IndexMap;
use infralog_events::domain::InfId;
use infralog_radl::Radl;
use serde_json::{json, Map, Value};

use super::nodes::{applications, iface_count, iface_ip, requested_name, text, Node};
use super::PlanError;

/// The Docker endpoint when the cloud names none.
pub(crate) const DEFAULT_DOCKER_HOST: &str = "unix:///var/run/docker.sock";

/// How Ansible reaches a VM. One function ([`connection`]) chooses it per cloud kind,
/// so that a cloud reached another way only adds a case there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Connection {
    /// A container, through the Docker API (`community.docker.docker_api`).
    DockerApi {
        /// The container id.
        container: String,
        /// The Docker endpoint (`unix://…`, `tcp://…`).
        docker_host: String,
    },
    /// A machine reached by SSH (WinRM for Windows) at an address.
    Remote {
        /// The IP Ansible connects to.
        address: String,
        /// The SSH (or WinRM) port.
        port: u16,
        /// `disk.0.os.credentials.username`.
        user: Option<String>,
        /// `disk.0.os.credentials.password`.
        password: Option<String>,
        /// Whether a private key is written for the host (`keys/<host>.pem`).
        private_key: bool,
    },
}

/// The connection of a VM, by its cloud's kind; `None` when it cannot be reached (a
/// remote VM without an IP, which IM leaves out of the inventory).
pub(crate) fn connection(node: &Node) -> Option<Connection> {
    if node.vm.cloud.kind == "Docker" {
        return Some(Connection::DockerApi {
            container: node.vm.cloud_vm_id.clone(),
            docker_host: docker_host(&node.vm.cloud.host),
        });
    }
    let [user, password, _, private_key] = node.system.credentials(false);
    let non_empty = |v: Option<&str>| v.filter(|s| !s.is_empty()).map(str::to_owned);
    let password = non_empty(password);
    Some(Connection::Remote {
        address: node.ip()?.to_owned(),
        port: if node.is_windows() { 5986 } else { 22 },
        user: non_empty(user),
        // IM logs in with the key only when there is no password.
        private_key: password.is_none() && non_empty(private_key).is_some(),
        password,
    })
}

/// A cloud's `host` as a Docker endpoint: a bare socket path becomes `unix://path`.
fn docker_host(host: &str) -> String {
    let host = host.trim();
    if host.is_empty() {
        DEFAULT_DOCKER_HOST.to_owned()
    } else if host.starts_with('/') {
        format!("unix://{host}")
    } else {
        host.to_owned()
    }
}

/// The server name of a cloud endpoint (IM's `cloud.server`); none for sockets.
fn server_of(host: &str) -> Option<String> {
    let (scheme, rest) = host.split_once("://").unwrap_or(("", host));
    if scheme == "unix" || scheme == "npipe" {
        return None;
    }
    let authority = rest.split('/').next().unwrap_or_default();
    let server = authority.rsplit('@').next().unwrap_or_default();
    let server = server.split(':').next().unwrap_or_default();
    (!server.is_empty()).then(|| server.to_owned())
}

/// The connection's host variables.
fn connection_vars(node: &Node, connection: &Connection, vars: &mut Map<String, Value>) {
    match connection {
        Connection::DockerApi {
            container,
            docker_host,
        } => {
            vars.insert(
                "ansible_connection".into(),
                json!("community.docker.docker_api"),
            );
            vars.insert("ansible_host".into(), json!(container));
            vars.insert("ansible_docker_docker_host".into(), json!(docker_host));
            vars.insert(
                "ansible_python_interpreter".into(),
                json!("/usr/bin/python3"),
            );
            // Container images seldom have sudo; root's `su` needs no password.
            vars.insert("ansible_become_method".into(), json!("su"));
        }
        Connection::Remote {
            address,
            port,
            user,
            password,
            private_key,
        } => {
            vars.insert("ansible_host".into(), json!(address));
            vars.insert("ansible_ssh_host".into(), json!(address));
            vars.insert("ansible_port".into(), json!(port));
            vars.insert("ansible_ssh_port".into(), json!(port));
            if let Some(user) = user {
                vars.insert("ansible_user".into(), json!(user));
                vars.insert("ansible_ssh_user".into(), json!(user));
            }
            if let Some(password) = password {
                vars.insert("ansible_password".into(), json!(password));
            }
            if *private_key {
                let file = format!("{{{{ inventory_dir }}}}/{}", key_file(node));
                vars.insert("ansible_ssh_private_key_file".into(), json!(file));
            }
        }
    }
}

/// Where a host's private key is written, relative to the run directory.
pub(crate) fn key_file(node: &Node) -> String {
    format!("keys/{}.pem", node.host)
}

/// The VMs grouped by system name, in order of first appearance (IM's
/// `get_vm_list_by_system_name`).
pub(crate) fn groups(nodes: &[Node]) -> IndexMap<&str, Vec<&Node>> {
    let mut groups: IndexMap<&str, Vec<&Node>> = IndexMap::new();
    for node in nodes {
        groups
            .entry(node.vm.system.as_str())
            .or_default()
            .push(node);
    }
    groups
}

/// The per-host variables IM defines.
fn node_vars(node: &Node, connection: &Connection) -> Map<String, Value> {
    let num = node.vm.vm_id.0;
    let mut vars = Map::new();
    for i in 0..iface_count(&node.system) {
        let Some(ip) = iface_ip(&node.system, i) else {
            continue;
        };
        vars.insert(format!("IM_NODE_NET_{i}_IP"), json!(ip));
        if let Some((name, domain)) = requested_name(&node.system, i, num, None) {
            vars.insert(
                format!("IM_NODE_NET_{i}_FQDN"),
                json!(format!("{name}.{domain}")),
            );
            vars.insert(format!("IM_NODE_NET_{i}_HOSTNAME"), json!(name));
            vars.insert(format!("IM_NODE_NET_{i}_DOMAIN"), json!(domain));
        }
    }
    connection_vars(node, connection, &mut vars);
    if let Some(public) = &node.public_ip {
        vars.insert("IM_NODE_PUBLIC_IP".into(), json!(public));
    }
    if let Some(private) = node.private_ip.as_ref().or(node.public_ip.as_ref()) {
        vars.insert("IM_NODE_PRIVATE_IP".into(), json!(private));
    }
    vars.insert("IM_NODE_HOSTNAME".into(), json!(node.hostname));
    vars.insert(
        "IM_NODE_FQDN".into(),
        json!(format!("{}.{}", node.hostname, node.domain)),
    );
    vars.insert("IM_NODE_DOMAIN".into(), json!(node.domain));
    vars.insert("IM_NODE_NUM".into(), json!(num.to_string()));
    vars.insert("IM_NODE_VMID".into(), json!(node.vm.cloud_vm_id));
    vars.insert("IM_NODE_CLOUD_TYPE".into(), json!(node.vm.cloud.kind));
    if let Some(server) = server_of(&node.vm.cloud.host) {
        vars.insert("IM_NODE_CLOUD_SERVER".into(), json!(server));
    }
    let certificates = tls_certificates(node);
    if !certificates.is_empty() {
        vars.insert(
            "IM_NODE_TLS_CERTIFICATES".into(),
            Value::Object(certificates),
        );
    }
    for (name, version, path) in applications(&node.system) {
        let name = name.to_uppercase();
        if let Some(path) = path {
            vars.insert(format!("IM_APP_{name}_PATH"), json!(path));
        }
        if let Some(version) = version {
            vars.insert(format!("IM_APP_{name}_VERSION"), json!(version));
        }
    }
    vars
}

/// IM's `get_tls_certificates`: `{dns name: {cert, key}}` of the interfaces' DNS entries.
fn tls_certificates(node: &Node) -> Map<String, Value> {
    let system = &node.system;
    let mut certificates = Map::new();
    for network in system.network_ids() {
        let Some(iface) = (0..iface_count(system))
            .find(|i| text(system, &format!("net_interface.{i}.connection")) == Some(network))
        else {
            continue;
        };
        for dns in 0.. {
            let base = format!("net_interface.{iface}.dns.{dns}");
            let Some(name) = text(system, &format!("{base}.name")) else {
                break;
            };
            if let Some(cert) = text(system, &format!("{base}.tls.certificate")) {
                let key = text(system, &format!("{base}.tls.private_key"));
                certificates.insert(name.to_owned(), json!({"cert": cert, "key": key}));
            }
        }
    }
    certificates
}

/// IM's `get_json_radl`: the systems, networks and deploys as RADL-JSON, with the dots
/// of each element's own keys turned into underscores.
pub(crate) fn infrastructure_radl(radl: &Radl) -> Result<Value, PlanError> {
    let shown = Radl {
        systems: radl.systems.clone(),
        networks: radl.networks.clone(),
        deploys: radl.deploys.clone(),
        ..Radl::default()
    };
    let parsed: Value = serde_json::from_str(&shown.to_json())
        .map_err(|e| PlanError::Radl(format!("its RADL-JSON does not read back: {e}")))?;
    let Value::Array(elements) = parsed else {
        return Err(PlanError::Radl("its RADL-JSON is not a list".into()));
    };
    Ok(Value::Array(
        elements
            .into_iter()
            .map(|element| match element {
                Value::Object(map) => Value::Object(
                    map.into_iter()
                        .map(|(k, v)| (k.replace('.', "_"), v))
                        .collect(),
                ),
                other => other,
            })
            .collect(),
    ))
}

/// What the inventory step produced: the document and what IM would log.
#[derive(Debug)]
pub(crate) struct Inventory {
    /// The YAML inventory, written as JSON (which Ansible's YAML plugin reads).
    pub document: Value,
    /// The hosts in it, with the VM each one is.
    pub hosts: Vec<String>,
    /// Why VMs were left out.
    pub warnings: Vec<String>,
}

/// IM's `generate_inventory` (without `IM_INFRASTRUCTURE_AUTH`: a run never carries
/// credentials of the API's users).
pub(crate) fn inventory(
    infrastructure: InfId,
    radl: &Radl,
    nodes: &[Node],
    master: Option<&Node>,
) -> Result<Inventory, PlanError> {
    let mut all_vars = Map::new();
    let mut children = Map::new();
    let mut windows = Map::new();
    let mut no_windows = Map::new();
    let mut hosts = Vec::new();
    let mut warnings = Vec::new();
    for (group, members) in groups(nodes) {
        let mut group_vars = Map::new();
        if members.first().is_some_and(|n| n.is_windows()) {
            group_vars.insert("ansible_connection".into(), json!("winrm"));
            group_vars.insert(
                "ansible_winrm_server_cert_validation".into(),
                json!("ignore"),
            );
        }
        all_vars.insert(
            format!("IM_{}_NUM_VMS", group.to_uppercase()),
            json!(members.len().to_string()),
        );
        let mut group_hosts = Map::new();
        for node in members {
            if !node.contextualize {
                continue;
            }
            let Some(connection) = connection(node) else {
                warnings.push(format!(
                    "The VM ID: {} does not have an IP. It will not be included in the inventory file.",
                    node.vm.vm_id
                ));
                continue;
            };
            if node.is_windows() {
                windows.insert(node.host.clone(), json!({}));
            } else {
                no_windows.insert(node.host.clone(), json!({}));
            }
            group_hosts.insert(
                node.host.clone(),
                Value::Object(node_vars(node, &connection)),
            );
            hosts.push(node.host.clone());
        }
        let mut child = Map::new();
        child.insert("hosts".into(), Value::Object(group_hosts));
        if !group_vars.is_empty() {
            child.insert("vars".into(), Value::Object(group_vars));
        }
        children.insert(group.to_owned(), Value::Object(child));
    }
    let (master_name, master_domain) = match radl.ansible_hosts.first() {
        Some(host) => (
            host.features.string("host").unwrap_or_default().to_owned(),
            String::new(),
        ),
        None => master
            .map(|m| (m.hostname.clone(), m.domain.clone()))
            .unwrap_or_default(),
    };
    all_vars.insert("IM_MASTER_HOSTNAME".into(), json!(master_name));
    all_vars.insert(
        "IM_MASTER_FQDN".into(),
        json!(format!("{master_name}.{master_domain}")),
    );
    all_vars.insert("IM_MASTER_DOMAIN".into(), json!(master_domain));
    all_vars.insert(
        "IM_INFRASTRUCTURE_ID".into(),
        json!(infrastructure.to_string()),
    );
    all_vars.insert("IM_INFRASTRUCTURE_RADL".into(), infrastructure_radl(radl)?);
    if !windows.is_empty() {
        children.insert("windows".into(), json!({ "hosts": windows }));
    }
    if !no_windows.is_empty() {
        children.insert("allnowindows".into(), json!({ "hosts": no_windows }));
    }
    Ok(Inventory {
        document: json!({"all": {"vars": all_vars, "children": children}}),
        hosts,
        warnings,
    })
}

/// IM's `generate_etc_hosts`: `ip fqdn name` lines (with IM's `\r\n`) for every named
/// interface of every contextualized VM with an IP, and IM's default name when
/// interface 0 has none (once per interface, as IM writes it).
pub(crate) fn etc_hosts(nodes: &[Node]) -> String {
    let mut out = String::new();
    for node in groups(nodes).into_values().flatten() {
        if !node.contextualize {
            continue;
        }
        let Some(ip) = node.ip() else { continue };
        let num = node.vm.vm_id.0;
        let system = &node.system;
        let ifaces = iface_count(system);
        for i in 0..ifaces {
            if let Some((name, domain)) = requested_name(system, i, num, None) {
                let address =
                    iface_ip(system, i).or_else(|| (0..ifaces).find_map(|j| iface_ip(system, j)));
                if let Some(address) = address {
                    out.push_str(&format!("{address} {name}.{domain} {name}\r\n"));
                }
            }
            if requested_name(system, 0, num, None).is_none() {
                out.push_str(&format!(
                    "{ip} {}.{} {}\r\n",
                    node.hostname, node.domain, node.hostname
                ));
            }
        }
    }
    out
}
