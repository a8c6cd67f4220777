//! TOSCA → RADL, as IM's `Tosca.to_radl` builds it: one `system` per Compute node
//! (capability properties mapped to RADL features in IM's order), a `network` per
//! Network node or the implicit `private_net`/`public_net`, interfaces from Ports or
//! from the `endpoint` capability, and a `deploy` per Compute with its scaling count.

use indexmap::IndexMap;

use infralog_radl::features::{Conflict, Features, Item};
use infralog_radl::{Contextualize, Deploy, Feature, Number, Operator, Radl, System};

use super::networks::{complete_networks, order_deploys};
use super::template::{Kind, NodeTemplate, Template};
use super::yaml::Node;
use super::ToscaError;

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
    /// The RADL to add: the template's elements, with `deploy` lines only for the VMs
    /// missing.
    pub radl: Radl,
    /// The removal IM asks for, as written in `removal_list` (or the ids of the
    /// oldest VMs): IM reports it as is when it removes fewer.
    pub requested: Vec<Node>,
    /// The live VMs among `requested`, to remove.
    pub remove: Vec<u32>,
}

impl Scaling {
    /// `requested` as Python prints the list (`['1', 2]`), for IM's 404.
    pub fn requested_repr(&self) -> String {
        let items: Vec<String> = self
            .requested
            .iter()
            .map(|item| match item {
                Node::Str(text) => infralog_radl::pytext::repr_str(text),
                other => other.to_python_str(),
            })
            .collect();
        format!("[{}]", items.join(", "))
    }
}

impl Template {
    /// The RADL IM generates for a new infrastructure (no VMs yet).
    pub fn to_radl(&self) -> Result<Radl, ToscaError> {
        Ok(self.scale(&[])?.radl)
    }

    /// The RADL and removals that bring the infrastructure to the template's counts.
    /// `current` holds the live VMs as `(system, VM id)`, oldest first. A node with
    /// more VMs than its count loses the first ids of its `removal_list`, or else its
    /// oldest VMs.
    pub fn scale(&self, current: &[(String, u32)]) -> Result<Scaling, ToscaError> {
        let mut radl = Radl::default();
        let mut requested = Vec::new();
        for node in self.nodes.iter().filter(|n| n.kind == Kind::Network) {
            radl.networks.push(self.network(node));
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
                // IM takes the first entries of `removal_list` as written, existing
                // or not; without one, the oldest VMs of the node.
                let surplus = count.unsigned_abs() as usize;
                let listed = self.removal_list(node);
                if listed.is_empty() {
                    requested.extend(own.iter().take(surplus).map(|id| Node::Int(i64::from(*id))));
                } else {
                    requested.extend(listed.into_iter().take(surplus));
                }
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
        order_deploys(&mut radl);
        complete_networks(&mut radl);
        let live: Vec<u32> = current.iter().map(|(_, id)| *id).collect();
        let mut remove: Vec<u32> = Vec::new();
        for id in requested
            .iter()
            .filter_map(|id| id.to_python_str().trim().parse::<u32>().ok())
        {
            if live.contains(&id) && !remove.contains(&id) {
                remove.push(id);
            }
        }
        Ok(Scaling {
            radl,
            requested,
            remove,
        })
    }

    /// The entries of the `scalable` capability's `removal_list`, as written.
    fn removal_list(&self, node: &NodeTemplate) -> Vec<Node> {
        capability_properties(&node.body, "scalable")
            .into_iter()
            .filter(|(name, _)| name == "removal_list")
            .flat_map(|(_, raw)| match self.evaluate(&raw, &node.name) {
                Node::Seq(items) => items,
                _ => Vec::new(),
            })
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
                // IM skips only absent values (`is not None`): `num_cpus: 0` is kept.
                let value = self.evaluate(&raw, &node.name);
                if value == Node::Null {
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
pub(super) fn capability_properties(body: &Node, capability: &str) -> Vec<(String, Node)> {
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
pub(super) fn requirement(body: &Node, name: &str) -> Option<String> {
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
        ("credential", Node::Map(_)) => return credential_features(&value),
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

fn credential_features(value: &Node) -> Result<Vec<Feature>, ToscaError> {
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
    match text("user") {
        Some(user) => features.push(Feature::string("disk.0.os.credentials.username", user)),
        None => {
            return Err(invalid(
                "User must be specified in the image credentials.".into(),
            ))
        }
    }
    Ok(features)
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

#[cfg(test)]
mod tests;
