//! Reading a template: the structure tosca-parser validates, the node types and what
//! they derive from, inputs and the intrinsic functions that can be evaluated without
//! VMs (`get_input`, `get_property`, `concat`, `token`).

use super::yaml::{self, Node};
use super::ToscaError;

/// The `tosca_definitions_version` values tosca-parser accepts.
const VERSIONS: [&str; 5] = [
    "tosca_simple_yaml_1_0",
    "tosca_simple_yaml_1_1",
    "tosca_simple_yaml_1_2",
    "tosca_simple_yaml_1_3",
    "tosca_simple_profile_for_nfv_1_0_0",
];

/// The kinds of node IM translates, by root type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `tosca.nodes.Compute` and derived types; `indigo` for INDIGO's custom Compute,
    /// whose attributes are lists over all its VMs.
    Compute { indigo: bool },
    /// `tosca.nodes.network.Network`.
    Network,
    /// `tosca.nodes.network.Port`.
    Port,
    /// `tosca.nodes.BlockStorage`, attached to a Compute by a `local_storage`
    /// requirement.
    BlockStorage,
}

/// One node template.
#[derive(Debug, Clone)]
pub struct NodeTemplate {
    pub name: String,
    pub kind: Kind,
    /// The template's own mapping (`properties`, `capabilities`, `requirements`).
    pub body: Node,
}

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    document: Node,
    /// `(name, value)`: each input's default (IM's REST API passes no input values).
    inputs: Vec<(String, Node)>,
    pub(super) nodes: Vec<NodeTemplate>,
    pub(super) outputs: Vec<(String, Node)>,
}

fn invalid(message: impl Into<String>) -> ToscaError {
    ToscaError::Invalid(message.into())
}

fn mapping<'a>(node: Option<&'a Node>, what: &str) -> Result<&'a [(Node, Node)], ToscaError> {
    match node {
        None | Some(Node::Null) => Ok(&[]),
        Some(Node::Map(pairs)) => Ok(pairs),
        Some(_) => Err(invalid(format!("\"{what}\" must be a map"))),
    }
}

fn key_text(key: &Node) -> String {
    key.to_python_str()
}

impl Template {
    /// Loads and validates a template (YAML errors and structural errors alike are
    /// [`ToscaError::Invalid`]).
    pub fn parse(text: &str) -> Result<Template, ToscaError> {
        Template::from_document(yaml::load(text).map_err(|e| invalid(e.0))?)
    }

    /// IM's TOSCA add: `update` deep-merged into this template (mappings key by key,
    /// lists index by index, other values replaced; a null never replaces), checked
    /// again as a whole.
    pub fn merged_with(&self, update: &Template) -> Result<Template, ToscaError> {
        Template::from_document(merge(self.document.clone(), &update.document))
    }

    fn from_document(document: Node) -> Result<Template, ToscaError> {
        if !matches!(document, Node::Map(_)) {
            return Err(invalid("the template must be a YAML map"));
        }
        match document.get("tosca_definitions_version") {
            None => {
                return Err(invalid(
                    "Template is missing required field \"tosca_definitions_version\".",
                ))
            }
            Some(Node::Str(version)) if VERSIONS.contains(&version.as_str()) => {}
            Some(other) => {
                return Err(invalid(format!(
                    "The template version \"{}\" is invalid. Valid versions are \"{}\".",
                    other.to_python_str(),
                    VERSIONS.join("\", \"")
                )))
            }
        }
        let derived = node_type_parents(&document)?;
        let topology = document.get("topology_template");
        let topology_pairs = mapping(topology, "topology_template")?;
        let field = |name: &str| {
            topology_pairs
                .iter()
                .find(|(k, _)| k.as_str() == Some(name))
                .map(|(_, v)| v)
        };
        let mut inputs = Vec::new();
        for (name, definition) in mapping(field("inputs"), "inputs")? {
            let name = key_text(name);
            let value = match definition {
                Node::Map(_) => definition.get("default").cloned().unwrap_or(Node::Null),
                _ => return Err(invalid(format!("the input \"{name}\" must be a map"))),
            };
            inputs.push((name, value));
        }
        let mut nodes = Vec::new();
        for (name, body) in mapping(field("node_templates"), "node_templates")? {
            let name = key_text(name);
            if !matches!(body, Node::Map(_)) {
                return Err(invalid(format!(
                    "the node template \"{name}\" must be a map"
                )));
            }
            let type_name = match body.get("type") {
                Some(Node::Str(t)) => t.clone(),
                Some(_) => return Err(invalid(format!("the type of \"{name}\" must be a string"))),
                None => {
                    return Err(invalid(format!(
                        "Template \"{name}\" is missing required field \"type\"."
                    )))
                }
            };
            let kind = kind_of(&name, &type_name, &derived)?;
            nodes.push(NodeTemplate {
                name,
                kind,
                body: body.clone(),
            });
        }
        let mut outputs = Vec::new();
        for (name, definition) in mapping(field("outputs"), "outputs")? {
            let name = key_text(name);
            let value = match definition {
                Node::Map(_) => definition.get("value").cloned(),
                _ => None,
            };
            let Some(value) = value else {
                return Err(invalid(format!(
                    "Output \"{name}\" is missing required field \"value\"."
                )));
            };
            outputs.push((name, value));
        }
        let template = Template {
            document,
            inputs,
            nodes,
            outputs,
        };
        template.check_references()?;
        Ok(template)
    }

    /// The document as IM returns it in `GET …/tosca`: `yaml.safe_dump`, keys sorted.
    pub fn to_yaml(&self) -> String {
        yaml::dump(&self.document)
    }

    pub(super) fn node(&self, name: &str) -> Option<&NodeTemplate> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// Every `get_input` names a declared input and every node a function names
    /// exists, as tosca-parser checks when it loads the template.
    fn check_references(&self) -> Result<(), ToscaError> {
        let mut values: Vec<&Node> = self.nodes.iter().map(|n| &n.body).collect();
        values.extend(self.outputs.iter().map(|(_, v)| v));
        while let Some(value) = values.pop() {
            match value {
                Node::Seq(items) => values.extend(items),
                Node::Map(pairs) if pairs.len() == 1 => {
                    let (key, argument) = &pairs[0];
                    match key.as_str() {
                        Some("get_input") => {
                            let name = match argument {
                                Node::Seq(items) => items.first(),
                                other => Some(other),
                            };
                            let name = name.map(Node::to_python_str).unwrap_or_default();
                            if !self.inputs.iter().any(|(n, _)| *n == name) {
                                return Err(invalid(format!("Unknown input \"{name}\".")));
                            }
                        }
                        Some("get_attribute" | "get_property") => {
                            let target = match argument {
                                Node::Seq(items) if items.len() >= 2 => items[0].to_python_str(),
                                _ => {
                                    return Err(invalid(format!(
                                        "Expected arguments: \"node-template-name\", \"attribute-name\" in {}",
                                        key.to_python_str()
                                    )))
                                }
                            };
                            if !matches!(target.as_str(), "SELF" | "HOST" | "SOURCE" | "TARGET")
                                && self.node(&target).is_none()
                            {
                                return Err(invalid(format!(
                                    "Node template \"{target}\" was not found."
                                )));
                            }
                        }
                        _ => values.push(argument),
                    }
                }
                Node::Map(pairs) => values.extend(pairs.iter().map(|(_, v)| v)),
                _ => {}
            }
        }
        Ok(())
    }

    /// Evaluates the functions that need no VM, for node `owner` (`SELF`).
    /// `get_attribute` has no value before VMs exist and gives `Null`.
    pub(super) fn evaluate(&self, value: &Node, owner: &str) -> Node {
        self.evaluate_with(value, owner, &mut |_, _| Node::Null)
    }

    /// Evaluates functions, asking `attribute` for `get_attribute [node, name, index…]`.
    pub(super) fn evaluate_with(
        &self,
        value: &Node,
        owner: &str,
        attribute: &mut dyn FnMut(&str, &[Node]) -> Node,
    ) -> Node {
        let Node::Map(pairs) = value else {
            return match value {
                Node::Seq(items) => Node::Seq(
                    items
                        .iter()
                        .map(|item| self.evaluate_with(item, owner, attribute))
                        .collect(),
                ),
                other => other.clone(),
            };
        };
        if pairs.len() == 1 {
            let (key, argument) = &pairs[0];
            let arguments = match argument {
                Node::Seq(items) => items.clone(),
                other => vec![other.clone()],
            };
            match key.as_str() {
                Some("get_input") => return self.input(&arguments),
                Some("get_property") => return self.property(&arguments, owner),
                Some("get_attribute") => {
                    let target = match arguments.first().map(Node::to_python_str).as_deref() {
                        Some("SELF" | "HOST") | None => owner.to_owned(),
                        Some(name) => name.to_owned(),
                    };
                    return attribute(&target, arguments.get(1..).unwrap_or(&[]));
                }
                Some("concat") => {
                    let text: String = arguments
                        .iter()
                        .map(|part| self.evaluate_with(part, owner, attribute).to_python_str())
                        .collect();
                    return Node::Str(text);
                }
                Some("token") => {
                    let text = arguments
                        .first()
                        .map(|v| self.evaluate_with(v, owner, attribute).to_python_str())
                        .unwrap_or_default();
                    let separator = arguments
                        .get(1)
                        .map(Node::to_python_str)
                        .unwrap_or_default();
                    let index = match arguments.get(2) {
                        Some(Node::Int(i)) => usize::try_from(*i).ok(),
                        _ => None,
                    };
                    if separator.is_empty() {
                        return Node::Null;
                    }
                    return index
                        .and_then(|i| text.split(separator.as_str()).nth(i))
                        .map_or(Node::Null, |part| Node::Str(part.to_owned()));
                }
                _ => {}
            }
        }
        Node::Map(
            pairs
                .iter()
                .map(|(k, v)| (k.clone(), self.evaluate_with(v, owner, attribute)))
                .collect(),
        )
    }

    /// `get_input: name` or `get_input: [name, index or key…]`.
    fn input(&self, arguments: &[Node]) -> Node {
        let Some(name) = arguments.first().map(Node::to_python_str) else {
            return Node::Null;
        };
        let mut value = self
            .inputs
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.clone())
            .unwrap_or(Node::Null);
        for step in &arguments[1..] {
            value = index(&value, step);
        }
        value
    }

    /// `get_property: [node, property]` or `[node, capability, property]`.
    fn property(&self, arguments: &[Node], owner: &str) -> Node {
        let target = match arguments.first().map(Node::to_python_str).as_deref() {
            Some("SELF" | "HOST") | None => owner.to_owned(),
            Some(name) => name.to_owned(),
        };
        let Some(node) = self.node(&target) else {
            return Node::Null;
        };
        let raw = match arguments.len() {
            2 => node
                .body
                .get("properties")
                .and_then(|p| p.get(&arguments[1].to_python_str())),
            3 => node
                .body
                .get("capabilities")
                .and_then(|c| c.get(&arguments[1].to_python_str()))
                .and_then(|c| c.get("properties"))
                .and_then(|p| p.get(&arguments[2].to_python_str())),
            _ => None,
        };
        match raw {
            // A property that refers to itself would never end; stop at one level.
            Some(value) if value != &Node::Null => self.evaluate(value, &target),
            _ => Node::Null,
        }
    }
}

fn merge(base: Node, update: &Node) -> Node {
    match (base, update) {
        (base, Node::Null) => base,
        (Node::Map(mut pairs), Node::Map(updates)) => {
            for (key, value) in updates {
                match pairs.iter_mut().find(|(k, _)| k == key) {
                    Some(slot) => slot.1 = merge(std::mem::replace(&mut slot.1, Node::Null), value),
                    None => pairs.push((key.clone(), value.clone())),
                }
            }
            Node::Map(pairs)
        }
        (Node::Seq(mut items), Node::Seq(updates)) => {
            for (index, value) in updates.iter().enumerate() {
                match items.get_mut(index) {
                    Some(item) => *item = merge(std::mem::replace(item, Node::Null), value),
                    None => items.push(value.clone()),
                }
            }
            Node::Seq(items)
        }
        (_, update) => update.clone(),
    }
}

/// `value[step]` for a list index or a map key.
pub(super) fn index(value: &Node, step: &Node) -> Node {
    match (value, step) {
        (Node::Seq(items), Node::Int(i)) => usize::try_from(*i)
            .ok()
            .and_then(|i| items.get(i))
            .cloned()
            .unwrap_or(Node::Null),
        (Node::Map(_), key) => value
            .get(&key.to_python_str())
            .cloned()
            .unwrap_or(Node::Null),
        _ => Node::Null,
    }
}

/// `node_types` of the template: type name → the type it is `derived_from`.
fn node_type_parents(document: &Node) -> Result<Vec<(String, String)>, ToscaError> {
    let mut parents = Vec::new();
    for (name, definition) in mapping(document.get("node_types"), "node_types")? {
        let name = key_text(name);
        match definition.get("derived_from") {
            Some(Node::Str(parent)) => parents.push((name, parent.clone())),
            _ => {
                return Err(invalid(format!(
                    "Type \"{name}\" is missing required field \"derived_from\"."
                )))
            }
        }
    }
    Ok(parents)
}

/// The kind of a node template, following `derived_from` through the template's own
/// node types to a type infralog knows.
fn kind_of(node: &str, type_name: &str, parents: &[(String, String)]) -> Result<Kind, ToscaError> {
    let mut current = type_name;
    for _ in 0..=parents.len() {
        match current {
            "tosca.nodes.Compute" => return Ok(Kind::Compute { indigo: false }),
            "tosca.nodes.indigo.Compute" => return Ok(Kind::Compute { indigo: true }),
            "tosca.nodes.network.Network" => return Ok(Kind::Network),
            "tosca.nodes.network.Port" => return Ok(Kind::Port),
            "tosca.nodes.BlockStorage" => return Ok(Kind::BlockStorage),
            _ => {}
        }
        match parents.iter().find(|(name, _)| name == current) {
            Some((_, parent)) => current = parent,
            None => break,
        }
    }
    Err(ToscaError::Unsupported(format!(
        "the node template \"{node}\" has type \"{type_name}\"; infralog translates \
         tosca.nodes.Compute, tosca.nodes.indigo.Compute, tosca.nodes.network.Network, \
         tosca.nodes.network.Port, tosca.nodes.BlockStorage and node types derived from them"
    )))
}
