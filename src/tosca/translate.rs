//! TOSCA → RADL, as IM's `Tosca.to_radl` builds it: one `system` per Compute node
//! (capability properties mapped to RADL features in IM's order), a `network` per
//! Network node or the implicit `private_net`/`public_net`, interfaces from Ports or
//! from the `endpoint` capability, and a `deploy` per Compute with its scaling count.

use indexmap::IndexMap;

use super::template::{Kind, NodeTemplate, Template};
use super::yaml::Node;
use super::ToscaError;
use crate::radl::features::{Conflict, Features, Item};
use crate::radl::{Contextualize, Deploy, Feature, Network, Number, Operator, Radl, System};

/// The most VMs one Compute node may ask for (the API has its own, lower, limit).
const MAX_COUNT: i64 = 100_000;

/// `host`/`os` capability property → RADL feature (IM's `property_map`).
const PROPERTY_MAP: [(&str, &str); 17] = [
    ("architecture", "cpu.arch"),
    ("type", "disk.0.os.name"),
    ("distribution", "disk.0.os.flavour"),
    ("version", "disk.0.os.version"),
    ("image", "disk.0.image.url"),
    ("credential", "disk.0.os.credentials"),
    ("num_cpus", "cpu.count"),
    ("disk_size", "disk.0.size"),
    ("mem_size", "memory.size"),
    ("cpu_frequency", "cpu.performance"),
    ("instance_type", "instance_type"),
    ("preemtible_instance", "spot"),
    ("sgx", "cpu.sgx"),
    ("sgx_epc_size", "cpu.sgx.epc_size"),
    ("num_gpus", "gpu.count"),
    ("gpu_vendor", "gpu.vendor"),
    ("gpu_model", "gpu.model"),
];

/// tosca-parser's `scalar-unit.size` units, in bytes.
const SIZE_UNITS: [(&str, u64); 9] = [
    ("B", 1),
    ("kB", 1_000),
    ("KiB", 1_024),
    ("MB", 1_000_000),
    ("MiB", 1_048_576),
    ("GB", 1_000_000_000),
    ("GiB", 1_073_741_824),
    ("TB", 1_000_000_000_000),
    ("TiB", 1_099_511_627_776),
];

fn invalid(message: String) -> ToscaError {
    ToscaError::Invalid(message)
}

/// What a TOSCA add asks for: the RADL to add (deploys for the VMs missing) and
/// the VMs to remove first.
#[derive(Debug, Clone, PartialEq)]
pub struct Scaling {
    pub radl: Radl,
    pub remove: Vec<u32>,
}

impl Template {
    /// The RADL IM generates for a new infrastructure (no VMs yet).
    pub fn to_radl(&self) -> Result<Radl, ToscaError> {
        Ok(self.scale(&[])?.radl)
    }

    /// The RADL and removals that bring the infrastructure to the template's counts.
    /// `current` holds the live VMs as `(system, VM id)`, oldest first. A node with
    /// more VMs than its count loses the ids of its `removal_list` (the ones that
    /// exist), or else its oldest VMs.
    pub fn scale(&self, current: &[(String, u32)]) -> Result<Scaling, ToscaError> {
        let mut radl = Radl::default();
        let mut remove = Vec::new();
        for node in self.nodes.iter().filter(|n| n.kind == Kind::Network) {
            radl.networks.push(self.network(node)?);
        }
        for node in &self.nodes {
            let Kind::Compute { .. } = node.kind else {
                continue;
            };
            let mut system = self.system(node)?;
            self.add_interfaces(node, &mut radl, &mut system)?;
            let own: Vec<u32> = current
                .iter()
                .filter(|(system, _)| *system == node.name)
                .map(|(_, id)| *id)
                .collect();
            let count = self.count(node)? - own.len() as i64;
            if count < 0 {
                let surplus = count.unsigned_abs() as usize;
                let listed = self.removal_list(node);
                let chosen: Vec<u32> = if listed.is_empty() {
                    own.iter().take(surplus).copied().collect()
                } else {
                    own.iter()
                        .filter(|id| listed.contains(id))
                        .take(surplus)
                        .copied()
                        .collect()
                };
                remove.extend(chosen);
            }
            if count > 0 {
                radl.deploys.push(Deploy {
                    system: node.name.clone(),
                    count: Number::from(count),
                    cloud: None,
                    location: Default::default(),
                });
            }
            radl.systems.push(system);
        }
        // No software component is translated, so contextualization is disabled.
        radl.contextualize = Contextualize {
            items: Some(IndexMap::new()),
            ..Contextualize::default()
        };
        Ok(Scaling { radl, remove })
    }

    /// The VM ids of the `scalable` capability's `removal_list`.
    fn removal_list(&self, node: &NodeTemplate) -> Vec<u32> {
        capability_properties(&node.body, "scalable")
            .into_iter()
            .filter(|(name, _)| name == "removal_list")
            .flat_map(|(_, raw)| match self.evaluate(&raw, &node.name) {
                Node::Seq(items) => items,
                _ => Vec::new(),
            })
            .filter_map(|id| id.to_python_str().trim().parse::<u32>().ok())
            .collect()
    }

    fn system(&self, node: &NodeTemplate) -> Result<System, ToscaError> {
        let mut features = Features::default();
        let mut add = |feature: Feature| -> Result<(), ToscaError> {
            features
                .add(Item::Plain(feature), Conflict::Replace)
                .map_err(|e| invalid(format!("node \"{}\": {e}", node.name)))
        };
        add(Feature::string("instance_name", node.name.clone()))?;
        for capability in ["os", "host"] {
            for (name, raw) in capability_properties(&node.body, capability) {
                let Some((_, radl_name)) = PROPERTY_MAP.iter().find(|(p, _)| *p == name) else {
                    continue;
                };
                let value = self.evaluate(&raw, &node.name);
                if is_falsy(&value) {
                    continue;
                }
                for feature in feature_for(&node.name, &name, radl_name, value)? {
                    add(feature)?;
                }
            }
        }
        for feature in self.disk_features(&node.body, &node.name)? {
            add(feature)?;
        }
        Ok(System::new(&node.name, features))
    }

    /// IM's `_add_node_nets`: Ports bound to the node, else the `endpoint` capability
    /// (a private network always, a public one for `network_name: PUBLIC`).
    fn add_interfaces(
        &self,
        node: &NodeTemplate,
        radl: &mut Radl,
        system: &mut System,
    ) -> Result<(), ToscaError> {
        let mut ports = self.bound_ports(&node.name)?;
        if !ports.is_empty() {
            ports.sort_by_key(|port| port.order);
            for (index, port) in ports.iter().enumerate() {
                system
                    .features
                    .set_string(&format!("net_interface.{index}.connection"), &port.network);
                if let Some(ip) = &port.ip {
                    system
                        .features
                        .set_string(&format!("net_interface.{index}.ip"), ip);
                }
            }
            return Ok(());
        }
        let mut public = false;
        if let Some(raw) = node.body.get("properties").and_then(|p| p.get("public_ip")) {
            public = !is_falsy(&self.evaluate(raw, &node.name));
        }
        let mut provider_id = None;
        let mut dns_name = None;
        let mut outports = None;
        for (name, raw) in capability_properties(&node.body, "endpoint") {
            let value = self.evaluate(&raw, &node.name);
            match (name.as_str(), &value) {
                ("network_name", Node::Str(net)) if net == "PUBLIC" => public = true,
                ("network_name", Node::Str(net)) if net != "PRIVATE" && !net.is_empty() => {
                    provider_id = Some(net.clone());
                }
                ("dns_name", Node::Str(dns)) if !dns.is_empty() => dns_name = Some(dns.clone()),
                ("ports", Node::Map(_)) => outports = Some(format_outports(&node.name, &value)?),
                _ => {}
            }
        }
        let private = match radl.networks.iter().find(|n| !n.is_public()) {
            Some(network) => network.id.clone(),
            None => {
                let mut network = plain_network("private_net", false);
                if let Some(provider) = &provider_id {
                    network.features.set_string("provider_id", provider);
                }
                radl.networks.push(network);
                "private_net".to_owned()
            }
        };
        system
            .features
            .set_string("net_interface.0.connection", &private);
        if public {
            let index = match radl.networks.iter().position(Network::is_public) {
                Some(index) => index,
                None => {
                    radl.networks.push(plain_network("public_net", true));
                    radl.networks.len() - 1
                }
            };
            let network = &mut radl.networks[index];
            if let Some(outports) = outports.filter(|o| !o.is_empty()) {
                network.features.set_string("outports", &outports);
            }
            let id = network.id.clone();
            system
                .features
                .set_string("net_interface.1.connection", &id);
        }
        if let Some(dns) = dns_name {
            system.features.set_string("net_interface.0.dns_name", &dns);
        }
        Ok(())
    }

    fn network(&self, node: &NodeTemplate) -> Result<Network, ToscaError> {
        let property = |name: &str| {
            node.body
                .get("properties")
                .and_then(|p| p.get(name))
                .map(|raw| self.evaluate(raw, &node.name))
                .filter(|value| !is_falsy(value))
        };
        let public = property("network_type").is_some_and(|t| t.to_python_str() == "public");
        let mut network = plain_network(&node.name, public);
        if let Some(name) = property("network_name") {
            network
                .features
                .set_string("provider_id", &name.to_python_str());
        }
        if let Some(cidr) = property("cidr") {
            network.features.set_string("cidr", &cidr.to_python_str());
            network.features.set_string("create", "yes");
        }
        if let Some(gateway) = property("gateway_ip") {
            network
                .features
                .set_string("router", &gateway.to_python_str());
        }
        Ok(network)
    }

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
            if !self.node(&network).is_some_and(|n| n.kind == Kind::Network) {
                return Err(invalid(format!(
                    "the port \"{}\" links to \"{network}\", which is not a network node",
                    port.name
                )));
            }
            let property = |name: &str| {
                port.body
                    .get("properties")
                    .and_then(|p| p.get(name))
                    .map(|raw| self.evaluate(raw, &port.name))
            };
            let order = match property("order") {
                None | Some(Node::Null) => 0,
                Some(Node::Int(order)) => order,
                Some(other) => {
                    return Err(invalid(format!(
                        "the order of the port \"{}\" must be an integer, not {}",
                        port.name,
                        other.to_python_str()
                    )))
                }
            };
            let ip = property("ip_address")
                .filter(|ip| !is_falsy(ip))
                .map(|ip| ip.to_python_str());
            ports.push(Port { network, order, ip });
        }
        Ok(ports)
    }

    /// The `scalable` capability: `count`, else `default_instances`, else
    /// `min_instances`, else 1.
    fn count(&self, node: &NodeTemplate) -> Result<i64, ToscaError> {
        let mut found: IndexMap<String, Node> = IndexMap::new();
        for (name, raw) in capability_properties(&node.body, "scalable") {
            found.insert(name, self.evaluate(&raw, &node.name));
        }
        let chosen = ["count", "default_instances", "min_instances"]
            .iter()
            .find_map(|name| {
                found
                    .get(*name)
                    .filter(|v| **v != Node::Null)
                    .map(|v| (name, v))
            });
        let Some((name, value)) = chosen else {
            return Ok(1);
        };
        match value {
            Node::Int(count) if (0..=MAX_COUNT).contains(count) => Ok(*count),
            other => Err(invalid(format!(
                "the {name} of \"{}\" must be an integer between 0 and {MAX_COUNT}, not {}",
                node.name,
                other.to_python_str()
            ))),
        }
    }
}

struct Port {
    network: String,
    order: i64,
    ip: Option<String>,
}

fn plain_network(id: &str, public: bool) -> Network {
    let mut features = Features::default();
    features.set_string("outbound", if public { "yes" } else { "no" });
    Network {
        id: id.to_owned(),
        reference: false,
        features,
        location: Default::default(),
    }
}

/// Python truthiness, as IM's `if prop.value` tests it.
pub(super) fn is_falsy(value: &Node) -> bool {
    match value {
        Node::Null => true,
        Node::Bool(b) => !b,
        Node::Int(i) => *i == 0,
        Node::Float(f) => *f == 0.0,
        Node::Str(s) | Node::Timestamp(s) => s.is_empty(),
        Node::Seq(items) => items.is_empty(),
        Node::Map(pairs) => pairs.is_empty(),
    }
}

/// The properties of one capability of a node template, in template order.
fn capability_properties(body: &Node, capability: &str) -> Vec<(String, Node)> {
    body.get("capabilities")
        .and_then(|c| c.get(capability))
        .and_then(|c| c.get("properties"))
        .map(|p| {
            p.pairs()
                .iter()
                .map(|(k, v)| (k.to_python_str(), v.clone()))
                .collect()
        })
        .unwrap_or_default()
}

/// The target of a requirement (`- name: node` or `- name: {node: node}`).
fn requirement(body: &Node, name: &str) -> Option<String> {
    let Some(Node::Seq(requirements)) = body.get("requirements") else {
        return None;
    };
    requirements
        .iter()
        .find_map(|entry| match entry.get(name)? {
            Node::Str(target) => Some(target.clone()),
            Node::Map(_) => entry
                .get(name)
                .and_then(|r| r.get("node"))
                .and_then(Node::as_str)
                .map(str::to_owned),
            _ => None,
        })
}

fn number_feature(radl_name: &str, number: Number, unit: &str) -> Feature {
    Feature::number(radl_name, Operator::Ge, number, unit)
}

/// The RADL features of one capability property (several for `credential`).
fn feature_for(
    node: &str,
    property: &str,
    radl_name: &str,
    value: Node,
) -> Result<Vec<Feature>, ToscaError> {
    let bad = |expected: &str| {
        invalid(format!(
            "the property \"{property}\" of \"{node}\" must be {expected}, not {}",
            value.to_python_str()
        ))
    };
    let feature = match (property, &value) {
        ("disk_size" | "mem_size", _) => {
            let bytes = size_in_bytes(&value).ok_or_else(|| {
                invalid(format!(
                    "\"{}\" is not a valid scalar-unit (property \"{property}\" of \"{node}\").",
                    value.to_python_str()
                ))
            })?;
            number_feature(radl_name, bytes, "B")
        }
        ("credential", Node::Map(_)) => return Ok(credential_features(&value)),
        ("credential", _) => return Err(bad("a map with user and token")),
        ("num_cpus" | "num_gpus" | "sgx_epc_size", Node::Int(n)) => {
            number_feature(radl_name, Number::from(*n), "")
        }
        ("num_cpus" | "num_gpus" | "sgx_epc_size", _) => return Err(bad("an integer")),
        ("version", other) => Feature::string(radl_name, other.to_python_str()),
        ("image", Node::Str(image)) if !image.contains("://") => {
            Feature::string(radl_name, format!("docker://{image}"))
        }
        ("cpu_frequency", Node::Str(text)) => {
            let (number, unit) = split_scalar(text).ok_or_else(|| bad("a frequency"))?;
            number_feature(radl_name, Number::Float(number), unit)
        }
        ("preemtible_instance" | "sgx", Node::Bool(flag)) => {
            Feature::string(radl_name, if *flag { "yes" } else { "no" })
        }
        (_, Node::Int(n)) => number_feature(radl_name, Number::from(*n), ""),
        (_, Node::Float(f)) => number_feature(radl_name, Number::Float(*f), ""),
        (_, Node::Str(text)) => Feature::string(radl_name, text.clone()),
        (_, other) => Feature::string(radl_name, other.to_python_str()),
    };
    Ok(vec![feature])
}

fn credential_features(value: &Node) -> Vec<Feature> {
    let text = |key: &str| {
        value
            .get(key)
            .filter(|v| !is_falsy(v))
            .map(Node::to_python_str)
    };
    let mut features = Vec::new();
    if let Some(token) = text("token") {
        let kind = text("token_type").unwrap_or_else(|| "password".into());
        let prop = match kind.as_str() {
            "password" => Some("disk.0.os.credentials.password"),
            "private_key" => Some("disk.0.os.credentials.private_key"),
            "public_key" => Some("disk.0.os.credentials.public_key"),
            _ => None,
        };
        if let Some(prop) = prop {
            features.push(Feature::string(prop, token));
        }
    }
    if let Some(user) = text("user") {
        features.push(Feature::string("disk.0.os.credentials.username", user));
    }
    features
}

/// `"<number> <unit>"` as tosca-parser's scalar-unit regex reads it.
fn split_scalar(text: &str) -> Option<(f64, &str)> {
    let text = text.trim();
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
    let (number, unit) = text.split_at(split);
    let unit = unit.trim_start();
    if number.is_empty()
        || unit.is_empty()
        || !unit.chars().all(|c| c.is_alphanumeric() || c == '_')
    {
        return None;
    }
    Some((number.parse().ok()?, unit))
}

/// A `scalar-unit.size` in bytes (IM stores sizes as `<bytes>B`).
pub(super) fn size_in_bytes(value: &Node) -> Option<Number> {
    let text = value.as_str()?;
    let (number, unit) = split_scalar(text)?;
    let factor = SIZE_UNITS
        .iter()
        .find(|(name, _)| *name == unit)
        .or_else(|| {
            SIZE_UNITS
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(unit))
        })?
        .1;
    let bytes = number * factor as f64;
    if bytes.fract() == 0.0 && bytes < i64::MAX as f64 {
        Some(Number::from(bytes as i64))
    } else {
        Some(Number::Float(bytes))
    }
}

/// IM's `_format_outports`: `remote/protocol-local/protocol`, or `from:to/protocol`
/// for a `source_range`.
fn format_outports(node: &str, ports: &Node) -> Result<String, ToscaError> {
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

#[cfg(test)]
mod tests;
