//! The emitter: `yaml.safe_dump(data)` with PyYAML's defaults (block style, keys
//! sorted, `allow_unicode` off, 80 columns, indent 2), following PyYAML's `Emitter`
//! state for state so that scalar styles and line folding come out the same.

use infralog_radl::pytext::repr_float;

use super::{resolve, Node};

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
