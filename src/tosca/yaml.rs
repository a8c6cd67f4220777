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

use crate::radl::pytext::repr_float;

/// A YAML node after PyYAML's safe construction.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    /// A `!!timestamp` (a date or date-time), kept as written.
    Timestamp(String),
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

/// Loads exactly one document as PyYAML's `safe_load` does. An empty stream is `Null`.
pub fn load(text: &str) -> Result<Node, YamlError> {
    let mut parser = Parser::new_from_str(text);
    let mut loader = Loader {
        anchors: HashMap::new(),
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
    anchors: HashMap<usize, Node>,
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
        let (node, anchor) = match event {
            Event::Alias(id) => {
                return self
                    .anchors
                    .get(&id)
                    .cloned()
                    .ok_or_else(|| located("found undefined alias", mark))
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
        if anchor > 0 {
            self.anchors.insert(anchor, node.clone());
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

// ---------------------------------------------------------------------------------
// The emitter: `yaml.safe_dump(data)` with PyYAML's defaults.

const BEST_WIDTH: usize = 80;
const BEST_INDENT: usize = 2;

/// `yaml.safe_dump(node)`: block style, mapping keys sorted, 80 columns.
pub fn dump(node: &Node) -> String {
    let mut emitter = Emitter {
        out: String::new(),
        column: 0,
        whitespace: true,
        indention: true,
    };
    match node {
        Node::Map(pairs) if !pairs.is_empty() => emitter.block_mapping(pairs, 0),
        Node::Seq(items) if !items.is_empty() => emitter.block_sequence(items, 0),
        other => {
            emitter.node_inline(other, 0, false);
            if matches!(other, Node::Str(_) | Node::Null | Node::Timestamp(_))
                && !emitter.out.ends_with(['\'', '"'])
            {
                // PyYAML ends a plain root scalar with an explicit document end.
                emitter.write_indent(0);
                emitter.out.push_str("...");
                emitter.column += 3;
            }
        }
    }
    if emitter.column > 0 {
        emitter.out.push('\n');
    }
    emitter.out
}

struct Emitter {
    out: String,
    column: usize,
    whitespace: bool,
    indention: bool,
}

/// How PyYAML may write a string.
struct Analysis {
    multiline: bool,
    empty: bool,
    allow_block_plain: bool,
    allow_single_quoted: bool,
}

fn is_break(ch: char) -> bool {
    matches!(ch, '\n' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

fn is_space_or_break(ch: Option<char>) -> bool {
    matches!(
        ch,
        None | Some('\0' | ' ' | '\t' | '\r' | '\n' | '\u{85}' | '\u{2028}' | '\u{2029}')
    )
}

fn analyze(text: &str) -> Analysis {
    if text.is_empty() {
        return Analysis {
            multiline: false,
            empty: true,
            allow_block_plain: true,
            allow_single_quoted: true,
        };
    }
    let chars: Vec<char> = text.chars().collect();
    let mut block_indicators = text.starts_with("---") || text.starts_with("...");
    let mut line_breaks = false;
    let mut special = false;
    let (mut leading_space, mut leading_break) = (false, false);
    let (mut trailing_space, mut trailing_break) = (false, false);
    let (mut break_space, mut space_break) = (false, false);
    let (mut previous_space, mut previous_break) = (false, false);
    let mut preceded_by_whitespace = true;
    let mut followed_by_whitespace = chars.len() == 1 || is_space_or_break(chars.get(1).copied());
    for (index, &ch) in chars.iter().enumerate() {
        if index == 0 {
            if "#,[]{}&*!|>'\"%@`".contains(ch) {
                block_indicators = true;
            }
            if (ch == '?' || ch == ':' || ch == '-') && followed_by_whitespace {
                block_indicators = true;
            }
        } else {
            if ch == ':' && followed_by_whitespace {
                block_indicators = true;
            }
            if ch == '#' && preceded_by_whitespace {
                block_indicators = true;
            }
        }
        if is_break(ch) {
            line_breaks = true;
        }
        // With allow_unicode off, anything outside printable ASCII is special.
        if !(ch == '\n' || (' '..='~').contains(&ch)) {
            special = true;
        }
        if ch == ' ' {
            leading_space |= index == 0;
            trailing_space |= index == chars.len() - 1;
            break_space |= previous_break;
            previous_space = true;
            previous_break = false;
        } else if is_break(ch) {
            leading_break |= index == 0;
            trailing_break |= index == chars.len() - 1;
            space_break |= previous_space;
            previous_space = false;
            previous_break = true;
        } else {
            previous_space = false;
            previous_break = false;
        }
        preceded_by_whitespace = is_space_or_break(Some(ch));
        followed_by_whitespace = is_space_or_break(chars.get(index + 2).copied());
    }
    let mut allow_block_plain = true;
    let mut allow_single_quoted = true;
    if leading_space || leading_break || trailing_space || trailing_break {
        allow_block_plain = false;
    }
    if break_space {
        allow_block_plain = false;
        allow_single_quoted = false;
    }
    if space_break || special {
        allow_block_plain = false;
        allow_single_quoted = false;
    }
    if line_breaks || block_indicators {
        allow_block_plain = false;
    }
    Analysis {
        multiline: line_breaks,
        empty: false,
        allow_block_plain,
        allow_single_quoted,
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Style {
    Plain,
    Single,
    Double,
}

fn choose_style(text: &str, simple_key: bool) -> Style {
    let analysis = analyze(text);
    let implicit = resolve(text) == "str";
    if implicit
        && !(simple_key && (analysis.empty || analysis.multiline))
        && analysis.allow_block_plain
    {
        return Style::Plain;
    }
    if analysis.allow_single_quoted && !(simple_key && analysis.multiline) {
        return Style::Single;
    }
    Style::Double
}

/// PyYAML's `represent_float`.
fn float_text(value: f64) -> String {
    if value.is_nan() {
        ".nan".into()
    } else if value.is_infinite() {
        if value > 0.0 { ".inf" } else { "-.inf" }.into()
    } else {
        let text = repr_float(value).to_ascii_lowercase();
        if !text.contains('.') && text.contains('e') {
            text.replacen('e', ".0e", 1)
        } else {
            text
        }
    }
}

fn sorted(pairs: &[(Node, Node)]) -> Vec<&(Node, Node)> {
    let mut sorted: Vec<&(Node, Node)> = pairs.iter().collect();
    sorted.sort_by(|a, b| key_order(&a.0, &b.0));
    sorted
}

fn key_order(a: &Node, b: &Node) -> std::cmp::Ordering {
    fn rank(node: &Node) -> (u8, f64, String) {
        match node {
            Node::Null => (0, 0.0, String::new()),
            Node::Bool(b) => (1, f64::from(u8::from(*b)), String::new()),
            Node::Int(i) => (1, *i as f64, String::new()),
            Node::Float(f) => (1, *f, String::new()),
            other => (2, 0.0, other.to_python_str()),
        }
    }
    let (ra, rb) = (rank(a), rank(b));
    ra.0.cmp(&rb.0)
        .then(ra.1.partial_cmp(&rb.1).unwrap_or(std::cmp::Ordering::Equal))
        .then(ra.2.cmp(&rb.2))
}

impl Emitter {
    fn write(&mut self, text: &str) {
        self.column += text.chars().count();
        self.out.push_str(text);
    }

    fn line_break(&mut self) {
        self.out.push('\n');
        self.column = 0;
        self.whitespace = true;
        self.indention = true;
    }

    fn write_indent(&mut self, indent: usize) {
        if !self.indention || self.column > indent || (self.column == indent && !self.whitespace) {
            self.line_break();
        }
        if self.column < indent {
            self.whitespace = true;
            let pad = " ".repeat(indent - self.column);
            self.write(&pad);
        }
    }

    fn indicator(
        &mut self,
        indicator: &str,
        need_whitespace: bool,
        whitespace: bool,
        indention: bool,
    ) {
        if self.whitespace || !need_whitespace {
            self.write(indicator);
        } else {
            self.write(&format!(" {indicator}"));
        }
        self.whitespace = whitespace;
        self.indention = self.indention && indention;
    }

    fn block_mapping(&mut self, pairs: &[(Node, Node)], indent: usize) {
        for (key, value) in sorted(pairs) {
            self.write_indent(indent);
            self.node_inline(key, indent + BEST_INDENT, true);
            self.indicator(":", false, false, false);
            self.value(value, indent, true);
        }
    }

    fn block_sequence(&mut self, items: &[Node], indent: usize) {
        for item in items {
            self.write_indent(indent);
            self.indicator("-", true, false, true);
            self.value(item, indent, false);
        }
    }

    /// A node in a block collection whose own indentation is `indent`.
    fn value(&mut self, node: &Node, indent: usize, in_mapping: bool) {
        match node {
            Node::Map(pairs) if !pairs.is_empty() => {
                self.block_mapping(pairs, indent + BEST_INDENT)
            }
            Node::Seq(items) if !items.is_empty() => {
                // A sequence that is a mapping value is not indented.
                let indentless = in_mapping && !self.indention;
                let inner = if indentless {
                    indent
                } else {
                    indent + BEST_INDENT
                };
                self.block_sequence(items, inner);
            }
            other => self.node_inline(other, indent + BEST_INDENT, false),
        }
    }

    /// A scalar or an empty collection, continued at `indent` when folded.
    fn node_inline(&mut self, node: &Node, indent: usize, simple_key: bool) {
        match node {
            Node::Null => self.plain("null"),
            Node::Bool(b) => self.plain(if *b { "true" } else { "false" }),
            Node::Int(i) => self.plain(&i.to_string()),
            Node::Float(f) => self.plain(&float_text(*f)),
            Node::Timestamp(t) => self.plain(t),
            Node::Map(_) => {
                self.indicator("{", true, true, false);
                self.indicator("}", false, false, false);
            }
            Node::Seq(_) => {
                self.indicator("[", true, true, false);
                self.indicator("]", false, false, false);
            }
            Node::Str(text) => match choose_style(text, simple_key) {
                Style::Plain => self.plain_folded(text, indent, !simple_key),
                Style::Single => self.single_quoted(text, indent, !simple_key),
                Style::Double => self.double_quoted(text, indent, !simple_key),
            },
        }
    }

    fn plain(&mut self, text: &str) {
        self.plain_folded(text, 0, false);
    }

    fn plain_folded(&mut self, text: &str, indent: usize, split: bool) {
        if text.is_empty() {
            return;
        }
        if !self.whitespace {
            self.write(" ");
        }
        self.whitespace = false;
        self.indention = false;
        let chars: Vec<char> = text.chars().collect();
        let (mut spaces, mut start) = (false, 0usize);
        for end in 0..=chars.len() {
            let ch = chars.get(end).copied();
            if spaces {
                if ch != Some(' ') {
                    if start + 1 == end && self.column > BEST_WIDTH && split {
                        self.write_indent(indent);
                        self.whitespace = false;
                        self.indention = false;
                    } else {
                        let part: String = chars[start..end].iter().collect();
                        self.write(&part);
                    }
                    start = end;
                }
            } else if ch.is_none_or(|c| c == ' ') {
                let part: String = chars[start..end].iter().collect();
                self.write(&part);
                start = end;
            }
            if let Some(c) = ch {
                spaces = c == ' ';
            }
        }
    }

    fn single_quoted(&mut self, text: &str, indent: usize, split: bool) {
        self.indicator("'", true, false, false);
        let chars: Vec<char> = text.chars().collect();
        let (mut spaces, mut breaks, mut start) = (false, false, 0usize);
        for end in 0..=chars.len() {
            let ch = chars.get(end).copied();
            if spaces {
                if ch != Some(' ') {
                    if start + 1 == end
                        && self.column > BEST_WIDTH
                        && split
                        && start != 0
                        && end != chars.len()
                    {
                        self.write_indent(indent);
                    } else {
                        let part: String = chars[start..end].iter().collect();
                        self.write(&part);
                    }
                    start = end;
                }
            } else if breaks {
                if !ch.is_some_and(is_break) {
                    if chars[start] == '\n' {
                        self.line_break();
                    }
                    for &br in &chars[start..end] {
                        self.line_break();
                        if br != '\n' {
                            // Only `\n` is a plain line break; others are kept as written.
                            self.out.pop();
                            self.out.push(br);
                        }
                    }
                    self.write_indent(indent);
                    start = end;
                }
            } else if ch.is_none_or(|c| c == ' ' || c == '\'' || is_break(c)) && start < end {
                let part: String = chars[start..end].iter().collect();
                self.write(&part);
                start = end;
            }
            if ch == Some('\'') {
                self.write("''");
                start = end + 1;
            }
            if let Some(c) = ch {
                spaces = c == ' ';
                breaks = is_break(c);
            }
        }
        self.indicator("'", false, false, false);
    }

    fn double_quoted(&mut self, text: &str, indent: usize, split: bool) {
        self.indicator("\"", true, false, false);
        let chars: Vec<char> = text.chars().collect();
        let mut start = 0usize;
        for end in 0..=chars.len() {
            let ch = chars.get(end).copied();
            let needs_escape = ch.is_none_or(|c| {
                matches!(
                    c,
                    '"' | '\\' | '\u{85}' | '\u{2028}' | '\u{2029}' | '\u{FEFF}'
                ) || !(' '..='~').contains(&c)
            });
            if needs_escape {
                if start < end {
                    let part: String = chars[start..end].iter().collect();
                    self.write(&part);
                    start = end;
                }
                if let Some(c) = ch {
                    let escaped = match c {
                        '\0' => "\\0".to_owned(),
                        '\u{7}' => "\\a".to_owned(),
                        '\u{8}' => "\\b".to_owned(),
                        '\t' => "\\t".to_owned(),
                        '\n' => "\\n".to_owned(),
                        '\u{b}' => "\\v".to_owned(),
                        '\u{c}' => "\\f".to_owned(),
                        '\r' => "\\r".to_owned(),
                        '\u{1b}' => "\\e".to_owned(),
                        '"' => "\\\"".to_owned(),
                        '\\' => "\\\\".to_owned(),
                        '\u{85}' => "\\N".to_owned(),
                        '\u{a0}' => "\\_".to_owned(),
                        '\u{2028}' => "\\L".to_owned(),
                        '\u{2029}' => "\\P".to_owned(),
                        c if (c as u32) <= 0xFF => format!("\\x{:02X}", c as u32),
                        c if (c as u32) <= 0xFFFF => format!("\\u{:04X}", c as u32),
                        c => format!("\\U{:08X}", c as u32),
                    };
                    self.write(&escaped);
                    start = end + 1;
                }
            }
            if 0 < end
                && end + 1 < chars.len()
                && (ch == Some(' ') || start >= end)
                && self.column + end.saturating_sub(start) > BEST_WIDTH
                && split
            {
                let mut part: String = chars[start.min(end)..end].iter().collect();
                part.push('\\');
                if start < end {
                    start = end;
                }
                self.write(&part);
                self.write_indent(indent);
                self.whitespace = false;
                self.indention = false;
                if chars.get(start) == Some(&' ') {
                    self.write("\\");
                }
            }
        }
        self.indicator("\"", false, false, false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_yaml_1_1_implicit_types() {
        let node = load("a: yes\nb: 010\nc: 1.5\nd: ~\ne: '2'\nf: 0x1F\ng: 1_000\nh: 2001-12-14\n")
            .unwrap();
        assert_eq!(node.get("a"), Some(&Node::Bool(true)));
        assert_eq!(node.get("b"), Some(&Node::Int(8)));
        assert_eq!(node.get("c"), Some(&Node::Float(1.5)));
        assert_eq!(node.get("d"), Some(&Node::Null));
        assert_eq!(node.get("e"), Some(&Node::Str("2".into())));
        assert_eq!(node.get("f"), Some(&Node::Int(31)));
        assert_eq!(node.get("g"), Some(&Node::Int(1000)));
        assert_eq!(node.get("h"), Some(&Node::Timestamp("2001-12-14".into())));
    }

    #[test]
    fn refuses_two_documents_unknown_tags_and_unhashable_keys() {
        assert!(load("a: 1\n---\nb: 2\n").is_err());
        assert!(load("a: !vault x\n").is_err());
        assert!(load("? [a]\n: 1\n").is_err());
        assert!(load("a: [1\n").is_err());
    }

    #[test]
    fn merges_keys_and_resolves_aliases() {
        let node = load("base: &b {x: 1, y: 2}\nder:\n  <<: *b\n  y: 3\n").unwrap();
        let der = node.get("der").unwrap();
        assert_eq!(der.get("x"), Some(&Node::Int(1)));
        assert_eq!(der.get("y"), Some(&Node::Int(3)));
    }

    #[test]
    fn dumps_like_pyyaml_safe_dump() {
        let node = load(
            "z: 1\na:\n  list: [server, private_address]\n  empty: {}\n  s: '2'\n  t: 'yes'\n  u: 'a: b'\n  n: null\n  f: 1.0e+20\n  g: 1e20\nm:\n- {k: v, a: b}\n- [x, y]\n",
        )
        .unwrap();
        assert_eq!(
            dump(&node),
            "a:\n  empty: {}\n  f: 1.0e+20\n  g: 1e20\n  list:\n  - server\n  - private_address\n  n: null\n  s: '2'\n  t: 'yes'\n  u: 'a: b'\nm:\n- a: b\n  k: v\n- - x\n  - y\nz: 1\n"
        );
    }

    #[test]
    fn quotes_and_escapes_strings_as_pyyaml() {
        let dump_of = |text: &str| {
            dump(&Node::Map(vec![(
                Node::Str("k".into()),
                Node::Str(text.into()),
            )]))
        };
        assert_eq!(dump_of("it's"), "k: it's\n");
        assert_eq!(dump_of("'q'"), "k: '''q'''\n");
        assert_eq!(dump_of(" lead"), "k: ' lead'\n");
        assert_eq!(dump_of("a\nb"), "k: 'a\n\n  b'\n");
        assert_eq!(dump_of("tab\there"), "k: \"tab\\there\"\n");
        assert_eq!(dump_of("caf\u{e9}"), "k: \"caf\\xE9\"\n");
        assert_eq!(dump_of(""), "k: ''\n");
        assert_eq!(dump_of("- x"), "k: '- x'\n");
    }

    #[test]
    fn folds_long_plain_scalars_at_eighty_columns() {
        let long = "word ".repeat(30).trim_end().to_owned();
        let text = dump(&Node::Map(vec![(
            Node::Str("description".into()),
            Node::Str(long),
        )]));
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines.len() > 1, "{text}");
        assert!(lines[1].starts_with("  word"));
        assert_eq!(
            load(&text)
                .unwrap()
                .get("description")
                .unwrap()
                .as_str()
                .unwrap()
                .len(),
            149
        );
    }
}
