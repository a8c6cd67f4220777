//! Networks as IM's `Tosca` builds them: `tosca.nodes.network.Network` nodes
//! (`_gen_network`), a Compute's interfaces from the Ports bound to it or else from its
//! `endpoint` capability (`_add_node_nets`), and the final touches (`_complete_radl_networks`,
//! `_order_deploys`).

use infralog_radl::features::Features;
use infralog_radl::{Network, Radl, System};

use super::template::{Kind, NodeTemplate, Template};
use super::translate::{capability_properties, is_falsy, requirement};
use super::yaml::Node;
use super::ToscaError;

fn invalid(message: String) -> ToscaError {
    ToscaError::Invalid(message)
}

/// `network.createNetwork(id, public)`: `outbound` is the only feature.
pub(super) fn plain_network(id: &str, public: bool) -> Network {
    let mut features = Features::default();
    features.set_string("outbound", if public { "yes" } else { "no" });
    Network {
        id: id.to_owned(),
        reference: false,
        features,
        location: Default::default(),
    }
}

/// A Port bound to a Compute.
struct Port {
    network: String,
    ip: Option<String>,
    dns_name: Option<String>,
    order: i64,
}

/// Appends `more` to a network's `outports`.
fn add_outports(network: &mut Network, more: &str) {
    let outports = match network.features.string("outports") {
        Some(existing) if !existing.is_empty() => format!("{existing},{more}"),
        _ => more.to_owned(),
    };
    network.features.set_string("outports", &outports);
}

impl Template {
    /// `_gen_network`: `outbound = 'yes'` only for `network_type: public`.
    pub(super) fn network(&self, node: &NodeTemplate) -> Network {
        let property = |name: &str| {
            node.body
                .get("properties")
                .and_then(|p| p.get(name))
                .map(|raw| self.evaluate(raw, &node.name))
                .filter(|value| !is_falsy(value))
                .map(|value| value.to_python_str())
        };
        let mut network = Network {
            id: node.name.clone(),
            reference: false,
            features: Features::default(),
            location: Default::default(),
        };
        if property("network_type").is_some_and(|t| t.eq_ignore_ascii_case("public")) {
            network.features.set_string("outbound", "yes");
        }
        if let Some(name) = property("network_name") {
            network.features.set_string("provider_id", &name);
        }
        if let Some(cidr) = property("cidr") {
            network.features.set_string("cidr", &cidr);
            // A network with a CIDR is one to create.
            network.features.set_string("create", "yes");
        }
        if let Some(gateway) = property("gateway_ip") {
            network.features.set_string("router", &gateway);
        }
        network
    }

    /// `_add_node_nets`.
    pub(super) fn add_interfaces(
        &self,
        node: &NodeTemplate,
        radl: &mut Radl,
        system: &mut System,
    ) -> Result<(), ToscaError> {
        let evaluate = |raw: &Node| self.evaluate(raw, &node.name);
        let mut public = node
            .body
            .get("properties")
            .and_then(|p| p.get("public_ip"))
            .is_some_and(|raw| !is_falsy(&evaluate(raw)));
        let mut private = true;
        let mut provider_id: Option<String> = None;
        let mut pool_name: Option<String> = None;
        let mut dns_name: Option<String> = None;
        let mut ports = String::new();
        let endpoint = capability_properties(&node.body, "endpoint");
        let endpoint_value = |name: &str| {
            endpoint
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, raw)| evaluate(raw))
        };
        if let Some(value) = endpoint_value("network_name").filter(|v| *v != Node::Null) {
            let mut name = value.to_python_str();
            // `net,pool`: OpenStack's network and floating IP pool.
            if let Some((net, pool)) = name.clone().split_once(',') {
                name = net.trim().to_owned();
                pool_name = Some(pool.trim().to_owned());
            }
            if name == "PUBLIC" {
                public = true;
            } else if let Some(net) = name.strip_suffix(".PUBLIC") {
                public = true;
                provider_id = Some(net.to_owned());
            } else if let Some(net) = name.strip_suffix(".PRIVATE") {
                provider_id = Some(net.to_owned());
            } else if name != "PRIVATE" {
                provider_id = Some(name);
            }
        }
        if let Some(value) = endpoint_value("dns_name").filter(|v| !is_falsy(v)) {
            dns_name = Some(value.to_python_str());
        }
        if let Some(value) = endpoint_value("private_ip").filter(|v| *v != Node::Null) {
            private = !is_falsy(&value);
        }
        if let Some(value @ Node::Map(_)) = endpoint_value("ports") {
            ports = format_outports(&node.name, &value)?;
        }
        if let Some(port) = endpoint_value("port").filter(|v| *v != Node::Null) {
            let protocol = endpoint_value("protocol")
                .filter(|v| *v != Node::Null)
                .map_or("tcp".to_owned(), |p| p.to_python_str());
            let port = port.to_python_str();
            let single = format!("{port}/{protocol}-{port}/{protocol}");
            ports = if ports.is_empty() {
                single
            } else {
                format!("{ports},{single}")
            };
        }
        if let Some(dns) = &dns_name {
            system.features.set_string("net_interface.0.dns_name", dns);
        }

        let bound = self.bound_ports(&node.name)?;
        if !bound.is_empty() {
            let mut port_network: Option<usize> = None;
            for port in &bound {
                let Some(index) = radl.networks.iter().position(|n| n.id == port.network) else {
                    return Err(invalid(format!(
                        "Node {} with a port binded to a non existing network: {}.",
                        node.name, port.network
                    )));
                };
                let prefix = format!("net_interface.{}", port.order);
                system
                    .features
                    .set_string(&format!("{prefix}.connection"), &port.network);
                if let Some(dns) = &port.dns_name {
                    system
                        .features
                        .set_string(&format!("{prefix}.dns_name"), dns);
                }
                if let Some(ip) = &port.ip {
                    system.features.set_string(&format!("{prefix}.ip"), ip);
                }
                if radl.networks[index].is_public() || port_network.is_none() {
                    port_network = Some(index);
                }
            }
            if let (Some(index), false) = (port_network, ports.is_empty()) {
                add_outports(&mut radl.networks[index], &ports);
            }
            return Ok(());
        }

        let mut private_index = None;
        if !public || private {
            let index = match radl.networks.iter().position(|n| !n.is_public()) {
                Some(index) => index,
                None => {
                    radl.networks.push(plain_network("private_net", false));
                    radl.networks.len() - 1
                }
            };
            if !public && !ports.is_empty() {
                add_outports(&mut radl.networks[index], &ports);
            }
            let slot = interface_count(system);
            system.features.set_string(
                &format!("net_interface.{slot}.connection"),
                &radl.networks[index].id,
            );
            private_index = Some(index);
        }
        let mut public_index = None;
        if public {
            // One public network per Compute, so each can have its own outports.
            let mut id = "public_net".to_owned();
            let mut counter = 1;
            while radl.networks.iter().any(|n| n.id == id) {
                id = format!("public_net_{counter}");
                counter += 1;
            }
            let mut network = plain_network(&id, true);
            if !ports.is_empty() {
                add_outports(&mut network, &ports);
            }
            radl.networks.push(network);
            let slot = interface_count(system);
            system
                .features
                .set_string(&format!("net_interface.{slot}.connection"), &id);
            public_index = Some(radl.networks.len() - 1);
        }
        if let Some(provider) = provider_id {
            if let Some(index) = private_index {
                radl.networks[index]
                    .features
                    .set_string("provider_id", &provider);
            }
            if let Some(index) = public_index {
                if let Some(pool) = &pool_name {
                    radl.networks[index]
                        .features
                        .set_string("provider_id", pool);
                } else if private_index.is_none() {
                    radl.networks[index]
                        .features
                        .set_string("provider_id", &provider);
                }
            }
        }
        Ok(())
    }

    /// `_get_bind_networks`: the Ports whose `binding` is `compute`, in template order.
    fn bound_ports(&self, compute: &str) -> Result<Vec<Port>, ToscaError> {
        let mut ports = Vec::new();
        for port in self.nodes.iter().filter(|n| n.kind == Kind::Port) {
            if requirement(&port.body, "binding").as_deref() != Some(compute) {
                continue;
            }
            let Some(network) = requirement(&port.body, "link") else {
                return Err(invalid(format!(
                    "the port \"{}\" has no \"link\" requirement to a network",
                    port.name
                )));
            };
            let property = |name: &str| {
                port.body
                    .get("properties")
                    .and_then(|p| p.get(name))
                    .map(|raw| self.evaluate(raw, &port.name))
                    .filter(|value| !is_falsy(value))
            };
            let order = match property("order") {
                None => 0,
                Some(Node::Int(order)) if order >= 0 => order,
                Some(other) => {
                    return Err(invalid(format!(
                        "the order of the port \"{}\" must be a non-negative integer, not {}",
                        port.name,
                        other.to_python_str()
                    )))
                }
            };
            ports.push(Port {
                network,
                ip: property("ip_address").map(|ip| ip.to_python_str()),
                dns_name: property("dns_name").map(|dns| dns.to_python_str()),
                order,
            });
        }
        Ok(ports)
    }
}

/// `system.getNumNetworkIfaces()`: the first interface number without a connection.
fn interface_count(system: &System) -> usize {
    (0..)
        .find(|i| {
            !system
                .features
                .has(&format!("net_interface.{i}.connection"))
        })
        .unwrap_or(0)
}

/// `_complete_radl_networks`: a document without networks gets a public one, and
/// every system without interface 0 joins the first public network (else the last).
pub(super) fn complete_networks(radl: &mut Radl) {
    if radl.networks.is_empty() {
        radl.networks.push(plain_network("public", true));
    }
    let Some(fallback) = radl
        .networks
        .iter()
        .find(|n| n.is_public())
        .or(radl.networks.last())
        .map(|n| n.id.clone())
    else {
        return;
    };
    for system in &mut radl.systems {
        if !system.features.has("net_interface.0.connection") {
            system
                .features
                .set_string("net_interface.0.connection", &fallback);
        }
    }
}

/// `_order_deploys`: deploys of systems on a public network first (those whose name
/// contains `wn` after the others), then the rest.
pub(super) fn order_deploys(radl: &mut Radl) {
    let on_public = |system: &str| {
        radl.system(system).is_some_and(|s| {
            s.network_ids()
                .iter()
                .any(|id| radl.network(id).is_some_and(Network::is_public))
        })
    };
    let (mut front, mut workers, mut private) = (Vec::new(), Vec::new(), Vec::new());
    for deploy in &radl.deploys {
        if !on_public(&deploy.system) {
            private.push(deploy.clone());
        } else if deploy.system.contains("wn") {
            workers.push(deploy.clone());
        } else {
            front.push(deploy.clone());
        }
    }
    front.extend(workers);
    front.extend(private);
    radl.deploys = front;
}

/// IM's `_format_outports`: `remote/protocol-local/protocol`, or `from:to/protocol`
/// for a `source_range`.
pub(super) fn format_outports(node: &str, ports: &Node) -> Result<String, ToscaError> {
    let mut parts = Vec::new();
    for (_, port) in ports.pairs() {
        let field = |name: &str| port.get(name).filter(|v| **v != Node::Null);
        let protocol = field("protocol").map_or("tcp".to_owned(), Node::to_python_str);
        if let Some(Node::Seq(range)) = field("source_range") {
            let bound = |i: usize| range.get(i).map(Node::to_python_str).unwrap_or_default();
            parts.push(format!("{}:{}/{protocol}", bound(0), bound(1)));
            continue;
        }
        let Some(remote) = field("source").map(Node::to_python_str) else {
            return Err(invalid(format!(
                "No source port in port definition of \"{node}\""
            )));
        };
        let local = field("target").map_or(remote.clone(), Node::to_python_str);
        parts.push(format!("{remote}/{protocol}-{local}/{protocol}"));
    }
    Ok(parts.join(","))
}
