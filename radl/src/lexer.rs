//! The RADL lexer, reproducing IM's PLY lexer token for token.
//!
//! IM's lexer has three states. Outside parentheses (`INITIAL`) it knows parentheses,
//! numbers, strings, identifiers, comments and `@begin`; inside parentheses (`body`) it
//! also knows `= >= <= > < [ ] ,`; after `@begin` (`recipe`) it reads whole lines until
//! a line that starts with `@end`. Spaces and tabs are skipped, and so is, silently,
//! every character no rule matches (`-`, `"`, `\r`, `=` outside parentheses…). Newlines
//! advance IM's line counter, except those inside strings: we keep IM's count for the
//! messages and the real position for people.

use std::borrow::Cow;

use super::error::{ErrorKind, Position, RadlError};
use super::number::Number;
use super::pytext::{decimal_digit, is_word_char, repr_str};

/// Token types, named as IM names them in its messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// `(`.
    LParen,
    /// `)`.
    RParen,
    /// `[`, inside parentheses.
    LBrack,
    /// `]`, inside parentheses.
    RBrack,
    /// `,`, inside parentheses.
    Comma,
    /// A number (`512`, `1.5`).
    Number,
    /// The keyword `and`.
    And,
    /// `=`, inside parentheses.
    Eq,
    /// `<`, inside parentheses.
    Lt,
    /// `>`, inside parentheses.
    Gt,
    /// `>=`, inside parentheses.
    Ge,
    /// `<=`, inside parentheses.
    Le,
    /// The keyword `soft`.
    Soft,
    /// A single-quoted string, its value unescaped.
    Str,
    /// An identifier: a property, element or recipe name.
    Var,
    /// The keyword `contains`.
    Contains,
    /// The keyword `deploy`.
    Deploy,
    /// The keyword `configure`.
    Configure,
    /// The keyword `system`.
    System,
    /// The keyword `network`.
    Network,
    /// The keyword `ansible`.
    Ansible,
    /// One whole line of a recipe, between `@begin` and `@end`.
    RecipeLine,
    /// `@begin`, which opens a recipe.
    RecipeBegin,
    /// `@end`, which closes a recipe.
    RecipeEnd,
    /// The keyword `contextualize`.
    Contextualize,
    /// The keyword `step`.
    Step,
    /// The keyword `with`.
    With,
    /// The keyword `option`.
    Option,
    /// The keyword `description`.
    Description,
    /// `'random(N)'` written as a value, N a single digit.
    Random,
}

impl TokenKind {
    /// IM's (PLY's) name of the token type.
    pub fn im_name(self) -> &'static str {
        match self {
            TokenKind::LParen => "LPAREN",
            TokenKind::RParen => "RPAREN",
            TokenKind::LBrack => "LBRACK",
            TokenKind::RBrack => "RBRACK",
            TokenKind::Comma => "COMMA",
            TokenKind::Number => "NUMBER",
            TokenKind::And => "AND",
            TokenKind::Eq => "EQ",
            TokenKind::Lt => "LT",
            TokenKind::Gt => "GT",
            TokenKind::Ge => "GE",
            TokenKind::Le => "LE",
            TokenKind::Soft => "SOFT",
            TokenKind::Str => "STRING",
            TokenKind::Var => "VAR",
            TokenKind::Contains => "CONTAINS",
            TokenKind::Deploy => "DEPLOY",
            TokenKind::Configure => "CONFIGURE",
            TokenKind::System => "SYSTEM",
            TokenKind::Network => "NETWORK",
            TokenKind::Ansible => "ANSIBLE",
            TokenKind::RecipeLine => "RECIPE_LINE",
            TokenKind::RecipeBegin => "RECIPE_BEGIN",
            TokenKind::RecipeEnd => "RECIPE_END",
            TokenKind::Contextualize => "CONTEXTUALIZE",
            TokenKind::Step => "STEP",
            TokenKind::With => "WITH",
            TokenKind::Option => "OPTION",
            TokenKind::Description => "DESCRIPTION",
            TokenKind::Random => "RANDOM",
        }
    }

    /// How the token reads in an "expected …" explanation.
    pub fn describe(self) -> &'static str {
        match self {
            TokenKind::LParen => "'('",
            TokenKind::RParen => "')'",
            TokenKind::LBrack => "'['",
            TokenKind::RBrack => "']'",
            TokenKind::Comma => "','",
            TokenKind::Number => "a number",
            TokenKind::And => "'and'",
            TokenKind::Eq | TokenKind::Lt | TokenKind::Gt | TokenKind::Ge | TokenKind::Le => {
                "a comparison"
            }
            TokenKind::Soft => "'soft'",
            TokenKind::Str => "a quoted string",
            TokenKind::Var => "a name",
            TokenKind::Contains => "'contains'",
            TokenKind::Deploy => "'deploy'",
            TokenKind::Configure => "'configure'",
            TokenKind::System => "'system'",
            TokenKind::Network => "'network'",
            TokenKind::Ansible => "'ansible'",
            TokenKind::RecipeLine => "a recipe line",
            TokenKind::RecipeBegin => "'@begin'",
            TokenKind::RecipeEnd => "'@end' at the start of a line",
            TokenKind::Contextualize => "'contextualize'",
            TokenKind::Step => "'step'",
            TokenKind::With => "'with'",
            TokenKind::Option => "'option'",
            TokenKind::Description => "'description'",
            TokenKind::Random => "'random(N)'",
        }
    }
}

/// A token with IM's value, IM's line and offset, and its real position.
#[derive(Debug, Clone)]
pub struct Token<'a> {
    /// What the token is.
    pub kind: TokenKind,
    /// The text value (identifier, unescaped string, recipe line…).
    pub text: Cow<'a, str>,
    /// The value of a NUMBER token, or N of a RANDOM token.
    pub number: Option<Number>,
    /// IM's line counter when the token was read.
    pub im_line: u32,
    /// IM's `lexpos`: the offset of the token in characters.
    pub offset: usize,
    /// The real position of the token's first character.
    pub position: Position,
}

impl Token<'_> {
    /// PLY's `str(token)`: `LexToken(VAR,'x',1,0)`.
    pub fn im_repr(&self) -> String {
        let value = match (&self.kind, &self.number) {
            (_, Some(number)) => number.to_string(),
            _ => repr_str(&self.text),
        };
        format!(
            "LexToken({},{},{},{})",
            self.kind.im_name(),
            value,
            self.im_line,
            self.offset
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Initial,
    Body,
    Recipe,
}

/// The lexer: call [`Lexer::next_token`] until it returns `None`.
pub struct Lexer<'a> {
    text: &'a str,
    /// Byte offset of the next character.
    pos: usize,
    /// Character offset of the next character (IM's `lexpos`).
    offset: usize,
    line: u32,
    column: u32,
    im_line: u32,
    state: State,
    stack: Vec<State>,
}

fn keyword(word: &str) -> Option<TokenKind> {
    Some(match word {
        "network" => TokenKind::Network,
        "ansible" => TokenKind::Ansible,
        "system" => TokenKind::System,
        "soft" => TokenKind::Soft,
        "and" => TokenKind::And,
        "contains" => TokenKind::Contains,
        "deploy" => TokenKind::Deploy,
        "configure" => TokenKind::Configure,
        "contextualize" => TokenKind::Contextualize,
        "step" => TokenKind::Step,
        "with" => TokenKind::With,
        "option" => TokenKind::Option,
        "description" => TokenKind::Description,
        _ => return None,
    })
}

impl<'a> Lexer<'a> {
    /// A lexer over `text`, which must already end with the newline IM appends.
    pub fn new(text: &'a str) -> Self {
        Lexer {
            text,
            pos: 0,
            offset: 0,
            line: 1,
            column: 1,
            im_line: 1,
            state: State::Initial,
            stack: Vec::new(),
        }
    }

    /// The real position of the next character.
    pub fn position(&self) -> Position {
        Position {
            line: self.line,
            column: self.column,
        }
    }

    fn rest(&self) -> &'a str {
        &self.text[self.pos..]
    }

    /// Moves over `bytes` bytes of text, keeping offsets and real positions.
    fn advance(&mut self, bytes: usize) {
        let end = (self.pos + bytes).min(self.text.len());
        for &byte in &self.text.as_bytes()[self.pos..end] {
            // Count characters, not bytes: skip UTF-8 continuation bytes.
            if byte & 0xC0 == 0x80 {
                continue;
            }
            self.offset += 1;
            if byte == b'\n' {
                self.line += 1;
                self.column = 1;
            } else {
                self.column += 1;
            }
        }
        self.pos = end;
    }

    fn push(&mut self, state: State) {
        self.stack.push(self.state);
        self.state = state;
    }

    fn pop(&mut self) -> Result<(), RadlError> {
        match self.stack.pop() {
            Some(state) => {
                self.state = state;
                Ok(())
            }
            None => Err(RadlError::new(ErrorKind::Syntax, "pop from empty list")
                .at(Some(self.position()))
                .expecting("no ')' without a matching '('")),
        }
    }

    /// The next token, `None` at the end, or the error IM's lexer raises.
    pub fn next_token(&mut self) -> Result<Option<Token<'a>>, RadlError> {
        loop {
            if self.state != State::Recipe {
                // Spaces and tabs are the most common characters: skip them in one go.
                let blanks = self.text.as_bytes()[self.pos..]
                    .iter()
                    .take_while(|b| **b == b' ' || **b == b'\t')
                    .count();
                self.pos += blanks;
                self.offset += blanks;
                self.column += u32::try_from(blanks).unwrap_or(u32::MAX);
            }
            let rest = self.rest();
            let Some(c) = rest.chars().next() else {
                return Ok(None);
            };
            let start = Token {
                kind: TokenKind::Var,
                text: Cow::Borrowed(""),
                number: None,
                im_line: self.im_line,
                offset: self.offset,
                position: self.position(),
            };
            if self.state == State::Recipe {
                if rest.starts_with("@end") {
                    self.advance(4);
                    self.pop()?;
                    return Ok(Some(Token {
                        kind: TokenKind::RecipeEnd,
                        text: Cow::Borrowed("@end"),
                        ..start
                    }));
                }
                match rest.find('\n') {
                    Some(end) => {
                        let line = &rest[..=end];
                        self.advance(line.len());
                        self.im_line += 1;
                        return Ok(Some(Token {
                            kind: TokenKind::RecipeLine,
                            text: Cow::Borrowed(line),
                            ..start
                        }));
                    }
                    None => {
                        self.advance(c.len_utf8());
                        continue;
                    }
                }
            }
            if c == ' ' || c == '\t' {
                self.advance(1);
                continue;
            }
            if self.state == State::Body {
                let second = rest.as_bytes().get(1).copied();
                let operator = match (c, second) {
                    ('<', Some(b'=')) => Some(("<=", TokenKind::Le)),
                    ('>', Some(b'=')) => Some((">=", TokenKind::Ge)),
                    ('=', _) => Some(("=", TokenKind::Eq)),
                    ('>', _) => Some((">", TokenKind::Gt)),
                    ('<', _) => Some(("<", TokenKind::Lt)),
                    ('[', _) => Some(("[", TokenKind::LBrack)),
                    (']', _) => Some(("]", TokenKind::RBrack)),
                    (',', _) => Some((",", TokenKind::Comma)),
                    _ => None,
                };
                if let Some((text, kind)) = operator {
                    self.advance(text.len());
                    return Ok(Some(Token {
                        kind,
                        text: Cow::Borrowed(text),
                        ..start
                    }));
                }
            }
            match c {
                '\n' => {
                    self.advance(1);
                    self.im_line += 1;
                }
                '#' => {
                    let end = rest.find('\n').unwrap_or(rest.len());
                    self.advance(end);
                }
                '(' => {
                    self.advance(1);
                    self.push(State::Body);
                    return Ok(Some(Token {
                        kind: TokenKind::LParen,
                        text: Cow::Borrowed("("),
                        ..start
                    }));
                }
                ')' => {
                    self.advance(1);
                    self.pop()?;
                    return Ok(Some(Token {
                        kind: TokenKind::RParen,
                        text: Cow::Borrowed(")"),
                        ..start
                    }));
                }
                '\'' => {
                    if let Some(token) = self.random(start.clone())? {
                        return Ok(Some(token));
                    }
                    match scan_string(rest) {
                        Some((length, value)) => {
                            self.advance(length);
                            return Ok(Some(Token {
                                kind: TokenKind::Str,
                                text: value,
                                ..start
                            }));
                        }
                        None => self.advance(1),
                    }
                }
                c if decimal_digit(c).is_some() => {
                    let (length, number) = scan_number(rest);
                    let text = &rest[..length];
                    self.advance(length);
                    return Ok(Some(Token {
                        kind: TokenKind::Number,
                        text: Cow::Borrowed(text),
                        number: Some(number),
                        ..start
                    }));
                }
                c if c.is_ascii_alphabetic() || c == '_' || c == '.' => {
                    let is_name_byte =
                        |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-');
                    let ascii = 1 + rest.as_bytes()[1..]
                        .iter()
                        .take_while(|b| is_name_byte(b))
                        .count();
                    let length = if rest.as_bytes().get(ascii).is_some_and(|b| !b.is_ascii()) {
                        // A non-ASCII character: Python's `\w` may still match it.
                        rest.char_indices()
                            .skip(1)
                            .find(|&(_, c)| !(is_word_char(c) || c == '.' || c == '-'))
                            .map_or(rest.len(), |(index, _)| index)
                    } else {
                        ascii
                    };
                    let word = &rest[..length];
                    self.advance(length);
                    return Ok(Some(Token {
                        kind: keyword(word).unwrap_or(TokenKind::Var),
                        text: Cow::Borrowed(word),
                        ..start
                    }));
                }
                '@' if rest.starts_with("@begin") => {
                    self.advance(6);
                    self.push(State::Recipe);
                    return Ok(Some(Token {
                        kind: TokenKind::RecipeBegin,
                        text: Cow::Borrowed("@begin"),
                        ..start
                    }));
                }
                // IM's lexer skips every character it has no rule for.
                c => self.advance(c.len_utf8()),
            }
        }
    }

    /// `'random(N)'`. IM reads only a single digit N; more digits make its lexer fail.
    fn random(&mut self, start: Token<'a>) -> Result<Option<Token<'a>>, RadlError> {
        let rest = self.rest();
        let Some(inner) = rest.strip_prefix("'random(") else {
            return Ok(None);
        };
        let digits: Vec<(usize, char)> = inner
            .char_indices()
            .take_while(|&(_, c)| decimal_digit(c).is_some())
            .collect();
        let Some(&(last_index, last_char)) = digits.last() else {
            return Ok(None);
        };
        let after = last_index + last_char.len_utf8();
        if !inner[after..].starts_with(")'") {
            return Ok(None);
        }
        if digits.len() != 1 {
            return Err(RadlError::new(ErrorKind::Syntax, "list index out of range")
                .at(Some(self.position()))
                .expecting("'random(N)' with a single digit N"));
        }
        let value = decimal_digit(last_char).unwrap_or(0);
        let length = "'random(".len() + after + ")'".len();
        let text = &rest[..length];
        self.advance(length);
        Ok(Some(Token {
            kind: TokenKind::Random,
            text: Cow::Borrowed(text),
            number: Some(Number::from(i64::from(value))),
            ..start
        }))
    }
}

/// IM's string rule `'([^\\']|\\.)*'`: returns the length in bytes and the value with
/// `\'` unescaped (other backslashes stay). `None` if the rule does not match.
fn scan_string(text: &str) -> Option<(usize, Cow<'_, str>)> {
    let mut chars = text.char_indices().skip(1);
    while let Some((index, c)) = chars.next() {
        match c {
            '\'' => {
                let body = &text[1..index];
                let value = if body.contains("\\'") {
                    Cow::Owned(body.replace("\\'", "'"))
                } else {
                    Cow::Borrowed(body)
                };
                return Some((index + 1, value));
            }
            '\\' => match chars.next() {
                Some((_, next)) if next != '\n' => {}
                _ => return None,
            },
            _ => {}
        }
    }
    None
}

/// IM's number rule `\d+\.?\d*` (Unicode digits): an int, or a float with a dot.
fn scan_number(text: &str) -> (usize, Number) {
    let bytes = text.as_bytes();
    let digits = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
    let next = bytes.get(digits).copied();
    if digits <= 18 && next != Some(b'.') && next.is_none_or(|b| b.is_ascii()) {
        // The common case: a short run of ASCII digits.
        return (
            digits,
            Number::from(text[..digits].parse::<i64>().unwrap_or(0)),
        );
    }
    let mut digits = String::new();
    let mut length = 0;
    let mut seen_dot = false;
    for (index, c) in text.char_indices() {
        if let Some(value) = decimal_digit(c) {
            digits.push(char::from_digit(value, 10).unwrap_or('0'));
        } else if c == '.' && !seen_dot && index > 0 {
            seen_dot = true;
            digits.push('.');
        } else {
            break;
        }
        length = index + c.len_utf8();
    }
    let number = if seen_dot {
        let normalized = if digits.ends_with('.') {
            format!("{digits}0")
        } else {
            digits
        };
        Number::Float(normalized.parse().unwrap_or(f64::INFINITY))
    } else if digits.len() <= 18 {
        Number::from(digits.parse::<i64>().unwrap_or(0))
    } else {
        Number::int(digits.parse().unwrap_or_default())
    };
    (length, number)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<TokenKind> {
        let data = format!("{text}\n");
        let mut lexer = Lexer::new(&data);
        let mut out = Vec::new();
        while let Ok(Some(token)) = lexer.next_token() {
            out.push(token.kind);
        }
        out
    }

    #[test]
    fn operators_exist_only_inside_parentheses() {
        use TokenKind::*;
        assert_eq!(kinds("x = 1"), vec![Var, Number]);
        assert_eq!(kinds("(x >= 1)"), vec![LParen, Var, Ge, Number, RParen]);
    }

    #[test]
    fn strings_keep_backslashes_but_unescape_quotes() {
        let data = "('a\\'b\\n')\n";
        let mut lexer = Lexer::new(data);
        let _ = lexer.next_token();
        let token = lexer.next_token().ok().flatten();
        assert_eq!(
            token.map(|t| t.text.into_owned()),
            Some("a'b\\n".to_owned())
        );
    }

    #[test]
    fn numbers_split_as_im_splits_them() {
        assert_eq!(scan_number("1.5.3").0, 3);
        assert_eq!(scan_number("1.").1.to_string(), "1.0");
        assert_eq!(scan_number("007x").1.to_string(), "7");
    }

    #[test]
    fn tokens_print_as_ply_prints_them() {
        let data = "system x\n  'it''s'\n";
        let mut lexer = Lexer::new(data);
        let mut reprs = Vec::new();
        while let Ok(Some(token)) = lexer.next_token() {
            reprs.push(token.im_repr());
        }
        assert_eq!(
            reprs,
            vec![
                "LexToken(SYSTEM,'system',1,0)",
                "LexToken(VAR,'x',1,7)",
                "LexToken(STRING,'it',2,11)",
                "LexToken(STRING,'s',2,15)"
            ]
        );
    }
}
