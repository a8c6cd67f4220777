//! A JSON reader that accepts what Python's `json.loads` accepts and fails with its
//! messages (`Expecting value: line 1 column 1 (char 0)`), so that RADL-JSON errors
//! read as IM's. It keeps object keys in order (a repeated key keeps its first place and
//! takes the last value, as a Python dict does), reads integers of any size, and takes
//! Python's `NaN`, `Infinity` and `-Infinity`.

use num_bigint::BigInt;

use super::error::{ErrorKind, Position, RadlError};
use super::number::Number;

/// A parsed JSON value.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    /// `null` (Python's `None`).
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A number, integer of any size or float (`NaN` and the infinities included).
    Num(Number),
    /// A string, unescaped.
    Str(String),
    /// An array, in order.
    Array(Vec<Json>),
    /// An object: its keys in first-seen order, each with its last value.
    Object(Vec<(String, Json)>),
}

impl Json {
    /// The value of a key of an object.
    pub fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Object(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// Python's type name of the value, for error messages.
    pub fn python_type(&self) -> &'static str {
        match self {
            Json::Null => "NoneType",
            Json::Bool(_) => "bool",
            Json::Num(Number::Float(_)) => "float",
            Json::Num(_) => "int",
            Json::Str(_) => "str",
            Json::Array(_) => "list",
            Json::Object(_) => "dict",
        }
    }

    /// Python truthiness.
    pub fn is_truthy(&self) -> bool {
        match self {
            Json::Null => false,
            Json::Bool(b) => *b,
            Json::Num(n) => n.is_truthy(),
            Json::Str(s) => !s.is_empty(),
            Json::Array(a) => !a.is_empty(),
            Json::Object(o) => !o.is_empty(),
        }
    }
}

/// Builds a JSON object with Python dict semantics (a repeated key keeps its first place
/// and takes the last value) in linear time.
#[derive(Default)]
pub struct ObjectBuilder {
    entries: Vec<(String, Json)>,
    index: std::collections::HashMap<String, usize, foldhash::fast::RandomState>,
}

impl ObjectBuilder {
    /// Sets a key.
    pub fn insert(&mut self, key: String, value: Json) {
        match self.index.get(&key) {
            Some(&position) => self.entries[position].1 = value,
            None => {
                self.index.insert(key.clone(), self.entries.len());
                self.entries.push((key, value));
            }
        }
    }

    /// The entries, in order.
    pub fn into_entries(self) -> Vec<(String, Json)> {
        self.entries
    }
}

/// How deeply arrays and objects may nest (Python's limit is its recursion limit).
const MAX_DEPTH: usize = 128;

/// Parses JSON text as `json.loads` does.
pub fn parse(text: &str) -> Result<Json, RadlError> {
    let chars: Vec<char> = text.chars().collect();
    let mut reader = Reader {
        chars: &chars,
        pos: 0,
        depth: 0,
    };
    let value = reader.value_after_whitespace()?;
    reader.skip_whitespace();
    if reader.pos < chars.len() {
        return Err(reader.error("Extra data", reader.pos));
    }
    Ok(value)
}

struct Reader<'a> {
    chars: &'a [char],
    pos: usize,
    depth: usize,
}

impl Reader<'_> {
    fn error(&self, message: &str, at: usize) -> RadlError {
        let before = &self.chars[..at.min(self.chars.len())];
        let line = before.iter().filter(|c| **c == '\n').count() + 1;
        let column = match before.iter().rposition(|c| *c == '\n') {
            Some(newline) => at - newline,
            None => at + 1,
        };
        let position = Position {
            line: u32::try_from(line).unwrap_or(u32::MAX),
            column: u32::try_from(column).unwrap_or(u32::MAX),
        };
        RadlError::new(
            ErrorKind::Json,
            format!("{message}: line {line} column {column} (char {at})"),
        )
        .at(Some(position))
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn skip_whitespace(&mut self) {
        while matches!(self.peek(), Some(' ' | '\t' | '\n' | '\r')) {
            self.pos += 1;
        }
    }

    fn starts_with(&self, word: &str) -> bool {
        (self.pos..)
            .zip(word.chars())
            .all(|(index, c)| self.chars.get(index) == Some(&c))
    }

    fn value_after_whitespace(&mut self) -> Result<Json, RadlError> {
        self.skip_whitespace();
        self.value()
    }

    fn value(&mut self) -> Result<Json, RadlError> {
        let start = self.pos;
        let literal = |reader: &mut Self, word: &str, value: Json| {
            reader.pos += word.chars().count();
            Ok(value)
        };
        match self.peek() {
            Some('"') => self.string().map(Json::Str),
            Some('{') => self.nested(Self::object),
            Some('[') => self.nested(Self::array),
            Some('n') if self.starts_with("null") => literal(self, "null", Json::Null),
            Some('t') if self.starts_with("true") => literal(self, "true", Json::Bool(true)),
            Some('f') if self.starts_with("false") => literal(self, "false", Json::Bool(false)),
            Some('N') if self.starts_with("NaN") => {
                literal(self, "NaN", Json::Num(Number::Float(f64::NAN)))
            }
            Some('I') if self.starts_with("Infinity") => {
                literal(self, "Infinity", Json::Num(Number::Float(f64::INFINITY)))
            }
            Some('-') if self.starts_with("-Infinity") => literal(
                self,
                "-Infinity",
                Json::Num(Number::Float(f64::NEG_INFINITY)),
            ),
            Some('-' | '0'..='9') => match self.number() {
                Some(value) => Ok(value),
                None => Err(self.error("Expecting value", start)),
            },
            _ => Err(self.error("Expecting value", start)),
        }
    }

    fn nested(
        &mut self,
        read: fn(&mut Self) -> Result<Json, RadlError>,
    ) -> Result<Json, RadlError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error("maximum recursion depth exceeded", self.pos));
        }
        let value = read(self);
        self.depth -= 1;
        value
    }

    /// `-?(0|[1-9]\d*)(\.\d+)?([eE][-+]?\d+)?`, an int unless it has a fraction or exponent.
    fn number(&mut self) -> Option<Json> {
        let start = self.pos;
        let mut index = self.pos;
        let digit = |i: usize| self.chars.get(i).is_some_and(char::is_ascii_digit);
        if self.chars.get(index) == Some(&'-') {
            index += 1;
        }
        match self.chars.get(index) {
            Some('0') => index += 1,
            Some('1'..='9') => {
                while digit(index) {
                    index += 1;
                }
            }
            _ => return None,
        }
        let mut is_float = false;
        if self.chars.get(index) == Some(&'.') && digit(index + 1) {
            is_float = true;
            index += 1;
            while digit(index) {
                index += 1;
            }
        }
        if matches!(self.chars.get(index), Some('e' | 'E')) {
            let mut exponent = index + 1;
            if matches!(self.chars.get(exponent), Some('+' | '-')) {
                exponent += 1;
            }
            if digit(exponent) {
                is_float = true;
                index = exponent;
                while digit(index) {
                    index += 1;
                }
            }
        }
        let text: String = self.chars[start..index].iter().collect();
        self.pos = index;
        let number = if is_float {
            Number::Float(text.parse().unwrap_or(f64::NAN))
        } else {
            match text.parse::<i64>() {
                Ok(small) => Number::Int(small),
                Err(_) => Number::int(text.parse::<BigInt>().unwrap_or_default()),
            }
        };
        Some(Json::Num(number))
    }

    fn string(&mut self) -> Result<String, RadlError> {
        let start = self.pos;
        self.pos += 1;
        let mut out = String::new();
        loop {
            let Some(c) = self.peek() else {
                return Err(self.error("Unterminated string starting at", start));
            };
            match c {
                '"' => {
                    self.pos += 1;
                    return Ok(out);
                }
                '\\' => {
                    let escape_at = self.pos;
                    let Some(kind) = self.chars.get(self.pos + 1).copied() else {
                        return Err(self.error("Unterminated string starting at", start));
                    };
                    self.pos += 2;
                    match kind {
                        '"' => out.push('"'),
                        '\\' => out.push('\\'),
                        '/' => out.push('/'),
                        'b' => out.push('\u{8}'),
                        'f' => out.push('\u{c}'),
                        'n' => out.push('\n'),
                        'r' => out.push('\r'),
                        't' => out.push('\t'),
                        'u' => out.push(self.unicode_escape(escape_at)?),
                        _ => return Err(self.error("Invalid \\escape", escape_at)),
                    }
                }
                c if (c as u32) < 0x20 => {
                    return Err(self.error("Invalid control character at", self.pos))
                }
                c => {
                    out.push(c);
                    self.pos += 1;
                }
            }
        }
    }

    fn hex4(&self, at: usize) -> Option<u32> {
        let digits: String = self.chars.get(at..at + 4)?.iter().collect();
        if digits.chars().all(|c| c.is_ascii_hexdigit()) {
            u32::from_str_radix(&digits, 16).ok()
        } else {
            None
        }
    }

    /// `\uXXXX`, joining surrogate pairs. A lone surrogate, which Python keeps but Rust
    /// text cannot hold, becomes U+FFFD.
    fn unicode_escape(&mut self, escape_at: usize) -> Result<char, RadlError> {
        let Some(high) = self.hex4(self.pos) else {
            return Err(self.error("Invalid \\uXXXX escape", escape_at + 1));
        };
        self.pos += 4;
        if (0xD800..0xDC00).contains(&high)
            && self.chars.get(self.pos) == Some(&'\\')
            && self.chars.get(self.pos + 1) == Some(&'u')
        {
            if let Some(low) = self
                .hex4(self.pos + 2)
                .filter(|low| (0xDC00..0xE000).contains(low))
            {
                self.pos += 6;
                let code = 0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00);
                return Ok(char::from_u32(code).unwrap_or('\u{FFFD}'));
            }
        }
        Ok(char::from_u32(high).unwrap_or('\u{FFFD}'))
    }

    fn object(&mut self) -> Result<Json, RadlError> {
        self.pos += 1;
        let mut entries = ObjectBuilder::default();
        self.skip_whitespace();
        if self.peek() == Some('}') {
            self.pos += 1;
            return Ok(Json::Object(entries.into_entries()));
        }
        loop {
            if self.peek() != Some('"') {
                return Err(self.error(
                    "Expecting property name enclosed in double quotes",
                    self.pos,
                ));
            }
            let key = self.string()?;
            self.skip_whitespace();
            if self.peek() != Some(':') {
                return Err(self.error("Expecting ':' delimiter", self.pos));
            }
            self.pos += 1;
            let value = self.value_after_whitespace()?;
            entries.insert(key, value);
            self.skip_whitespace();
            match self.peek() {
                Some('}') => {
                    self.pos += 1;
                    return Ok(Json::Object(entries.into_entries()));
                }
                Some(',') => {
                    self.pos += 1;
                    self.skip_whitespace();
                }
                _ => return Err(self.error("Expecting ',' delimiter", self.pos)),
            }
        }
    }

    fn array(&mut self) -> Result<Json, RadlError> {
        self.pos += 1;
        let mut items = Vec::new();
        self.skip_whitespace();
        if self.peek() == Some(']') {
            self.pos += 1;
            return Ok(Json::Array(items));
        }
        loop {
            items.push(self.value_after_whitespace()?);
            self.skip_whitespace();
            match self.peek() {
                Some(']') => {
                    self.pos += 1;
                    return Ok(Json::Array(items));
                }
                Some(',') => self.pos += 1,
                _ => return Err(self.error("Expecting ',' delimiter", self.pos)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(text: &str) -> String {
        parse(text).err().map(|e| e.to_string()).unwrap_or_default()
    }

    #[test]
    fn errors_read_as_python_json() {
        assert_eq!(
            message("not json"),
            "Expecting value: line 1 column 1 (char 0)"
        );
        assert_eq!(
            message("{"),
            "Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"
        );
        assert_eq!(message("  "), "Expecting value: line 1 column 3 (char 2)");
        assert_eq!(message("[1,]"), "Expecting value: line 1 column 4 (char 3)");
        assert_eq!(
            message("{\"a\" 1}"),
            "Expecting ':' delimiter: line 1 column 6 (char 5)"
        );
        assert_eq!(
            message("\"abc"),
            "Unterminated string starting at: line 1 column 1 (char 0)"
        );
        assert_eq!(
            message("\"a\\x\""),
            "Invalid \\escape: line 1 column 3 (char 2)"
        );
        assert_eq!(
            message("\"\\u12\""),
            "Invalid \\uXXXX escape: line 1 column 3 (char 2)"
        );
        assert_eq!(message("[1] x"), "Extra data: line 1 column 5 (char 4)");
        assert_eq!(
            message("\"a\nb\""),
            "Invalid control character at: line 1 column 3 (char 2)"
        );
    }

    #[test]
    fn repeated_keys_keep_the_first_place_and_the_last_value() {
        let value = parse(r#"{"a":1,"b":2,"a":3}"#).ok();
        let expected = Json::Object(vec![
            ("a".into(), Json::Num(Number::from(3))),
            ("b".into(), Json::Num(Number::from(2))),
        ]);
        assert_eq!(value, Some(expected));
    }
}
