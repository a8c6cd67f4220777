//! The one error type of the RADL boundary.
//!
//! `Display` is exactly the message IM 2.0.0 gives for the same input (the REST layer
//! prefixes it, e.g. `Error parsing request body: <message>`). Beside it the error keeps
//! where it happened in the real text (line and column, counting every newline, which
//! IM's own line numbers do not always do) and what was expected, for the CLI.

use std::fmt;

/// A position in the source text, 1-based, in characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Position {
    /// Line, counting every newline (IM does not count newlines inside strings).
    pub line: u32,
    /// Column in characters, starting at 1.
    pub column: u32,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// Where an element was defined: IM's line number (used in its messages) and the real
/// position. Comparing two locations always succeeds, so that documents compare equal
/// whatever text they were parsed from.
#[derive(Debug, Clone, Copy, Default)]
pub struct Location {
    /// The line IM reports (`Line N: …`), if the element came from RADL text.
    pub im_line: Option<u32>,
    /// The real position of the element's first token.
    pub position: Option<Position>,
}

impl Location {
    /// A location from RADL text.
    pub fn at(im_line: u32, position: Position) -> Self {
        Location {
            im_line: Some(im_line),
            position: Some(position),
        }
    }
}

impl PartialEq for Location {
    fn eq(&self, _other: &Self) -> bool {
        true
    }
}

/// What went wrong, for callers that branch on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The text does not follow the grammar.
    Syntax,
    /// The text parses but IM refuses it while building the document (duplicate ids,
    /// conflicting features, type mismatches that make IM's Python fail).
    Semantic,
    /// `check()` refused the document.
    Check,
    /// The RADL-JSON input is not valid JSON or has the wrong shape.
    Json,
    /// A reference (bare `system x`, `network x`, `configure x`) names nothing stored.
    UnknownReference,
    /// An IM operation (alter, merge) cannot be applied to this document.
    Operation,
}

/// An error reading, checking or transforming RADL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct RadlError {
    kind: ErrorKind,
    message: String,
    position: Option<Position>,
    expected: Option<String>,
}

impl RadlError {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        RadlError {
            kind,
            message: message.into(),
            position: None,
            expected: None,
        }
    }

    /// An error IM raises as `RADLParseException(msg, line)`: `Line N: msg`.
    pub(crate) fn with_line(kind: ErrorKind, message: &str, location: &Location) -> Self {
        let text = match location.im_line {
            Some(line) if line > 0 => format!("Line {line}: {message}"),
            _ => message.to_owned(),
        };
        RadlError::new(kind, text).at(location.position)
    }

    pub(crate) fn at(mut self, position: Option<Position>) -> Self {
        if self.position.is_none() {
            self.position = position;
        }
        self
    }

    pub(crate) fn expecting(mut self, expected: impl Into<String>) -> Self {
        self.expected = Some(expected.into());
        self
    }

    /// What went wrong.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// IM's message, identical to `Display`.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The real position of the problem in the text, when known.
    pub fn position(&self) -> Option<Position> {
        self.position
    }

    /// The real line of the problem, when known.
    pub fn line(&self) -> Option<u32> {
        self.position.map(|p| p.line)
    }

    /// The real column of the problem, when known.
    pub fn column(&self) -> Option<u32> {
        self.position.map(|p| p.column)
    }

    /// What the parser expected at that point, when it knows.
    pub fn expected(&self) -> Option<&str> {
        self.expected.as_deref()
    }

    /// The message followed by what was expected, for people (the CLI).
    pub fn diagnostic(&self) -> String {
        match &self.expected {
            Some(expected) => format!("{} (expected {expected})", self.message),
            None => self.message.clone(),
        }
    }
}
