//! YAML as IM reads and writes TOSCA documents: PyYAML's `safe_load` (YAML 1.1 implicit
//! types: `yes`/`on` are booleans, `010` is octal) and `safe_dump` (block style, keys
//! sorted, PyYAML's choice of scalar style and its line folding at 80 columns).
//!
//! yaml-rust2 does the scanning and parsing; the node construction and the emitter are
//! ours, because its loader follows YAML 1.2 and its emitter another layout.

use std::collections::HashMap;
use std::sync::LazyLock;

use regex::Regex;
use yaml_rust2::parser::{Event, Parser, Tag};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use infralog_radl::pytext::repr_float;

/// A YAML node after PyYAML's safe construction.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// `null`, `~` or an empty value.
    Null,
    /// A boolean, YAML 1.1 spellings included (`yes`, `on`, `off`…).
    Bool(bool),
    /// An integer (decimal, octal as `010`, hexadecimal…).
    Int(i64),
    /// A float (`.inf` and `.nan` included).
    Float(f64),
    /// A string.
    Str(String),
    /// A `!!timestamp` (a date or date-time), kept as written.
    Timestamp(String),
    /// A sequence, in order.
    Seq(Vec<Node>),
    /// Pairs in first-definition order (a repeated key keeps its first place and its
    /// last value, as a Python dict does).
    Map(Vec<(Node, Node)>),
}

impl Node {
    /// The value under a string key of a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match self {
            Node::Map(pairs) => pairs
                .iter()
                .find(|(k, _)| matches!(k, Node::Str(s) if s == key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// The text of a string node.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Node::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The pairs of a mapping (none for anything else).
    pub fn pairs(&self) -> &[(Node, Node)] {
        match self {
            Node::Map(pairs) => pairs,
            _ => &[],
        }
    }

    /// Python's `str()` of the value, as `concat` and RADL string values use it.
    pub fn to_python_str(&self) -> String {
        match self {
            Node::Null => "None".into(),
            Node::Bool(true) => "True".into(),
            Node::Bool(false) => "False".into(),
            Node::Int(i) => i.to_string(),
            Node::Float(f) => repr_float(*f),
            Node::Str(s) | Node::Timestamp(s) => s.clone(),
            Node::Seq(_) | Node::Map(_) => self.to_json().to_string(),
        }
    }

    /// The node as JSON (mapping keys as strings).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            Node::Null => J::Null,
            Node::Bool(b) => J::Bool(*b),
            Node::Int(i) => J::from(*i),
            Node::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
            Node::Str(s) | Node::Timestamp(s) => J::String(s.clone()),
            Node::Seq(items) => J::Array(items.iter().map(Node::to_json).collect()),
            Node::Map(pairs) => J::Object(
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_python_str(), v.to_json()))
                    .collect(),
            ),
        }
    }
}

/// Why a document could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct YamlError(pub String);

fn located(reason: &str, mark: &Marker) -> YamlError {
    YamlError(format!(
        "{reason} (line {}, column {})",
        mark.line(),
        mark.col() + 1
    ))
}

/// The deepest nesting accepted (a hostile document cannot exhaust the stack).
const MAX_DEPTH: usize = 64;

/// The most nodes a document may expand to. Aliases are copied, so a few lines of
/// nested aliases ("billion laughs") could otherwise ask for unbounded memory.
const MAX_NODES: usize = 1_000_000;

/// Loads exactly one document as PyYAML's `safe_load` does. An empty stream is `Null`.
pub fn load(text: &str) -> Result<Node, YamlError> {
    let mut parser = Parser::new_from_str(text);
    let mut loader = Loader {
        anchors: HashMap::new(),
        nodes: 0,
    };
    let mut document: Option<Node> = None;
    loop {
        let (event, mark) = next(&mut parser)?;
        match event {
            Event::StreamEnd => return Ok(document.unwrap_or(Node::Null)),
            Event::DocumentStart => {
                if document.is_some() {
                    return Err(located(
                        "expected a single document in the stream but found another document",
                        &mark,
                    ));
                }
                let (event, mark) = next(&mut parser)?;
                document = Some(loader.node(&mut parser, event, &mark, 0)?);
            }
            _ => {}
        }
    }
}

fn next(parser: &mut Parser<std::str::Chars<'_>>) -> Result<(Event, Marker), YamlError> {
    parser
        .next_token()
        .map_err(|error| located(error.info(), error.marker()))
}

struct Loader {
    /// Anchored nodes and how many nodes each holds.
    anchors: HashMap<usize, (Node, usize)>,
    /// Nodes constructed so far, aliases counted at their full size.
    nodes: usize,
}

impl Loader {
    fn node(
        &mut self,
        parser: &mut Parser<std::str::Chars<'_>>,
        event: Event,
        mark: &Marker,
        depth: usize,
    ) -> Result<Node, YamlError> {
        if depth > MAX_DEPTH {
            return Err(located("the document is nested too deeply", mark));
        }
        let first = self.nodes;
        let (node, anchor) = match event {
            Event::Alias(id) => {
                let (node, size) = self
                    .anchors
                    .get(&id)
                    .ok_or_else(|| located("found undefined alias", mark))?;
                self.nodes += size;
                if self.nodes > MAX_NODES {
                    return Err(located(
                        &format!("the document expands to more than {MAX_NODES} nodes"),
                        mark,
                    ));
                }
                return Ok(node.clone());
            }
            Event::Scalar(value, style, anchor, tag) => (scalar(value, style, tag, mark)?, anchor),
            Event::SequenceStart(anchor, tag) => {
                check_collection_tag(&tag, "seq", mark)?;
                let mut items = Vec::new();
                loop {
                    let (event, mark) = next(parser)?;
                    if matches!(event, Event::SequenceEnd) {
                        break;
                    }
                    items.push(self.node(parser, event, &mark, depth + 1)?);
                }
                (Node::Seq(items), anchor)
            }
            Event::MappingStart(anchor, tag) => {
                check_collection_tag(&tag, "map", mark)?;
                let mut own: Vec<(Node, Node)> = Vec::new();
                let mut merged: Vec<(Node, Node)> = Vec::new();
                loop {
                    let (event, key_mark) = next(parser)?;
                    if matches!(event, Event::MappingEnd) {
                        break;
                    }
                    let is_merge = matches!(&event, Event::Scalar(v, TScalarStyle::Plain, _, None) if v == "<<");
                    let key = self.node(parser, event, &key_mark, depth + 1)?;
                    if matches!(key, Node::Seq(_) | Node::Map(_)) {
                        return Err(located(
                            "while constructing a mapping found unhashable key",
                            &key_mark,
                        ));
                    }
                    let (event, value_mark) = next(parser)?;
                    let value = self.node(parser, event, &value_mark, depth + 1)?;
                    if is_merge {
                        merge_into(&mut merged, value, &key_mark)?;
                    } else {
                        own.push((key, value));
                    }
                }
                // PyYAML puts merged pairs first; later pairs override earlier ones.
                let mut pairs: Vec<(Node, Node)> = Vec::new();
                for (key, value) in merged.into_iter().chain(own) {
                    match pairs.iter_mut().find(|(k, _)| *k == key) {
                        Some(slot) => slot.1 = value,
                        None => pairs.push((key, value)),
                    }
                }
                (Node::Map(pairs), anchor)
            }
            _ => return Err(located("unexpected YAML event", mark)),
        };
        self.nodes += 1;
        if anchor > 0 {
            self.anchors
                .insert(anchor, (node.clone(), self.nodes - first));
        }
        Ok(node)
    }
}

fn merge_into(merged: &mut Vec<(Node, Node)>, value: Node, mark: &Marker) -> Result<(), YamlError> {
    let bad = || {
        located(
            "while constructing a mapping expected a mapping or list of mappings for merging",
            mark,
        )
    };
    match value {
        Node::Map(pairs) => merged.extend(pairs),
        Node::Seq(items) => {
            // PyYAML merges the later mappings of the list first, so earlier ones win.
            for item in items.into_iter().rev() {
                match item {
                    Node::Map(pairs) => merged.extend(pairs),
                    _ => return Err(bad()),
                }
            }
        }
        _ => return Err(bad()),
    }
    Ok(())
}

fn standard_tag(tag: &Option<Tag>) -> Option<Option<&str>> {
    match tag {
        None => Some(None),
        Some(tag) if tag.handle == "tag:yaml.org,2002:" => Some(Some(tag.suffix.as_str())),
        Some(tag) if tag.handle.is_empty() && tag.suffix == "!" => Some(Some("str")),
        Some(_) => None,
    }
}

fn unknown_tag(tag: &Option<Tag>, mark: &Marker) -> YamlError {
    let text = tag
        .as_ref()
        .map(|t| format!("{}{}", t.handle, t.suffix))
        .unwrap_or_default();
    located(
        &format!("could not determine a constructor for the tag '{text}'"),
        mark,
    )
}

fn check_collection_tag(tag: &Option<Tag>, kind: &str, mark: &Marker) -> Result<(), YamlError> {
    match standard_tag(tag) {
        Some(None) => Ok(()),
        Some(Some(suffix)) if suffix == kind => Ok(()),
        _ => Err(unknown_tag(tag, mark)),
    }
}

fn scalar(
    value: String,
    style: TScalarStyle,
    tag: Option<Tag>,
    mark: &Marker,
) -> Result<Node, YamlError> {
    let Some(wanted) = standard_tag(&tag) else {
        return Err(unknown_tag(&tag, mark));
    };
    let kind = match wanted {
        Some(kind) => kind,
        None if style == TScalarStyle::Plain => resolve(&value),
        None => "str",
    };
    let invalid = || located(&format!("invalid {kind} value '{value}'"), mark);
    Ok(match kind {
        // `<<` is only a merge as a mapping key (the loader handles it there).
        "str" | "merge" | "value" => Node::Str(value),
        "null" => Node::Null,
        "bool" => Node::Bool(match value.to_ascii_lowercase().as_str() {
            "yes" | "true" | "on" => true,
            "no" | "false" | "off" => false,
            _ => return Err(invalid()),
        }),
        "int" => construct_int(&value).ok_or_else(invalid)?,
        "float" => Node::Float(construct_float(&value).ok_or_else(invalid)?),
        "timestamp" => Node::Timestamp(value),
        _ => return Err(unknown_tag(&tag, mark)),
    })
}

static BOOL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?:yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)$")
        .expect("valid regex")
});
static FLOAT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
    )
    .expect("valid regex")
});
static INT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)$",
    )
    .expect("valid regex")
});
static NULL: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^(?:~|null|Null|NULL|)$").expect("valid regex"));
static TIMESTAMP: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^(?:[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]|[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?(?:[Tt]|[ \t]+)[0-9][0-9]?:[0-9][0-9]:[0-9][0-9](?:\.[0-9]*)?(?:[ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?)$",
    )
    .expect("valid regex")
});

/// PyYAML's implicit resolver (YAML 1.1) for a plain scalar.
fn resolve(value: &str) -> &'static str {
    if BOOL.is_match(value) {
        "bool"
    } else if INT.is_match(value) {
        "int"
    } else if FLOAT.is_match(value) {
        "float"
    } else if NULL.is_match(value) {
        "null"
    } else if value == "<<" {
        "merge"
    } else if value == "=" {
        "value"
    } else if TIMESTAMP.is_match(value) {
        "timestamp"
    } else {
        "str"
    }
}

fn construct_int(text: &str) -> Option<Node> {
    let cleaned = text.replace('_', "");
    let (negative, digits) = match cleaned.as_bytes().first() {
        Some(b'-') => (true, &cleaned[1..]),
        Some(b'+') => (false, &cleaned[1..]),
        _ => (false, cleaned.as_str()),
    };
    let magnitude: i64 = if digits == "0" {
        0
    } else if let Some(bin) = digits.strip_prefix("0b") {
        i64::from_str_radix(bin, 2).ok()?
    } else if let Some(hex) = digits.strip_prefix("0x") {
        i64::from_str_radix(hex, 16).ok()?
    } else if digits.starts_with('0') {
        i64::from_str_radix(digits, 8).ok()?
    } else if digits.contains(':') {
        let mut value: i64 = 0;
        for part in digits.split(':') {
            value = value
                .checked_mul(60)?
                .checked_add(part.parse::<i64>().ok()?)?;
        }
        value
    } else {
        match digits.parse::<i64>() {
            Ok(value) => value,
            // Python ints are unbounded; a number past i64 is kept as a float.
            Err(_) => {
                let float: f64 = digits.parse().ok()?;
                return Some(Node::Float(if negative { -float } else { float }));
            }
        }
    };
    Some(Node::Int(if negative { -magnitude } else { magnitude }))
}

fn construct_float(text: &str) -> Option<f64> {
    let cleaned = text.replace('_', "").to_ascii_lowercase();
    let (sign, body) = match cleaned.as_bytes().first() {
        Some(b'-') => (-1.0, &cleaned[1..]),
        Some(b'+') => (1.0, &cleaned[1..]),
        _ => (1.0, cleaned.as_str()),
    };
    if body == ".inf" {
        return Some(sign * f64::INFINITY);
    }
    if body == ".nan" {
        return Some(f64::NAN);
    }
    if body.contains(':') {
        let mut value = 0.0;
        for part in body.split(':') {
            value = value * 60.0 + part.parse::<f64>().ok()?;
        }
        return Some(sign * value);
    }
    body.parse::<f64>().ok().map(|v| sign * v)
}

mod emit;

pub use emit::dump;

#[cfg(test)]
mod tests;
