//! The RADL text parser: recursive descent over IM's grammar.
//!
//! IM uses an LALR parser (PLY) whose actions build the document while parsing. To fail
//! on the same input with the same message, this parser detects syntax errors at the same
//! token and runs the same actions at the same moments: a sentence closed by `)` is
//! added to the document at once; one that ends in a name or a number (`system x`,
//! `deploy x 1`) only after the next token shows it is complete; descriptions are added
//! at the very end.

use indexmap::IndexMap;
use rand::Rng;

use super::ast::{
    Ansible, Configure, Contextualize, ContextualizeItem, Deploy, Description, Feature, Network,
    Operator, Radl, Soft, System, Value,
};
use super::document::{Aspect, Builder};
use super::error::{ErrorKind, Location, RadlError};
use super::features::{Features, Item};
use super::lexer::{Lexer, Token, TokenKind};
use super::number::Number;
use super::pytext::is_blank;

/// How deeply `(` may nest before we refuse the document (IM has no limit but Python's
/// recursion limit; nobody writes more than a handful).
pub const MAX_NESTING: usize = 64;

const SENTENCE_STARTS: [TokenKind; 6] = [
    TokenKind::Network,
    TokenKind::Ansible,
    TokenKind::System,
    TokenKind::Configure,
    TokenKind::Contextualize,
    TokenKind::Deploy,
];

const SENTENCE_EXPECTED: &str =
    "'network', 'system', 'configure', 'contextualize', 'deploy' or 'ansible'";

/// Parses RADL text as IM does (`radl_parse.parse_radl`), drawing `'random(N)'` values
/// from `rng`. Blank text is an empty document.
pub fn parse_with_rng(text: &str, rng: &mut impl Rng) -> Result<Radl, RadlError> {
    if is_blank(text) {
        return Ok(Radl::default());
    }
    let data = format!("{text}\n");
    let mut parser = Parser {
        lexer: Lexer::new(&data),
        peeked: None,
        rng,
        depth: 0,
    };
    parser.document()
}

/// Where a `( features )` group stands, which decides what may follow it.
#[derive(Clone, Copy)]
enum GroupContext {
    /// A network, system or ansible sentence: another sentence or the end.
    Sentence,
    /// A description: another description, a sentence (not the end).
    Description,
    /// A `contains` or `soft` group: `and` or `)`.
    Nested,
}

struct Parser<'a, R: Rng> {
    lexer: Lexer<'a>,
    peeked: Option<Option<Token<'a>>>,
    rng: &'a mut R,
    depth: usize,
}

fn location(token: &Token<'_>) -> Location {
    Location::at(token.im_line, token.position)
}

impl<'a, R: Rng> Parser<'a, R> {
    fn peek(&mut self) -> Result<Option<&Token<'a>>, RadlError> {
        if self.peeked.is_none() {
            let token = self.lexer.next_token()?;
            self.peeked = Some(token);
        }
        Ok(self.peeked.as_ref().and_then(Option::as_ref))
    }

    fn peek_kind(&mut self) -> Result<Option<TokenKind>, RadlError> {
        Ok(self.peek()?.map(|t| t.kind))
    }

    fn bump(&mut self) -> Result<Option<Token<'a>>, RadlError> {
        self.peek()?;
        Ok(self.peeked.take().flatten())
    }

    /// IM's `p_error`: at the offending token, or `None` at the end of the input.
    fn unexpected(&mut self, expected: &str) -> RadlError {
        let (message, position) = match self.peek() {
            Ok(Some(token)) => (
                format!(
                    "Line {}: Parse error in: {}",
                    token.im_line,
                    token.im_repr()
                ),
                token.position,
            ),
            Ok(None) => ("Parse error in: None".to_owned(), self.lexer.position()),
            Err(error) => return error,
        };
        RadlError::new(ErrorKind::Syntax, message)
            .at(Some(position))
            .expecting(expected)
    }

    fn expect(&mut self, kind: TokenKind, expected: &str) -> Result<Token<'a>, RadlError> {
        if self.peek_kind()? == Some(kind) {
            if let Some(token) = self.bump()? {
                return Ok(token);
            }
        }
        Err(self.unexpected(expected))
    }

    fn expect_kind(&mut self, kind: TokenKind) -> Result<Token<'a>, RadlError> {
        self.expect(kind, kind.describe())
    }

    /// After a sentence that ends in a name or a number, IM needs the next token to know
    /// the sentence is over: it must start another sentence or end the document.
    fn end_of_sentence(&mut self, also: &[TokenKind], expected: &str) -> Result<(), RadlError> {
        match self.peek_kind()? {
            None => Ok(()),
            Some(kind) if SENTENCE_STARTS.contains(&kind) || also.contains(&kind) => Ok(()),
            Some(_) => Err(self.unexpected(expected)),
        }
    }

    fn open(&mut self) -> Result<Token<'a>, RadlError> {
        let token = self.expect_kind(TokenKind::LParen)?;
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err(RadlError::new(
                ErrorKind::Syntax,
                format!("Line {}: Too many nested parentheses", token.im_line),
            )
            .at(Some(token.position))
            .expecting(format!("at most {MAX_NESTING} nested groups")));
        }
        Ok(token)
    }

    fn close(&mut self, expected: &str) -> Result<Token<'a>, RadlError> {
        let token = self.expect(TokenKind::RParen, expected)?;
        self.depth = self.depth.saturating_sub(1);
        Ok(token)
    }

    fn document(&mut self) -> Result<Radl, RadlError> {
        let mut descriptions = Vec::new();
        while self.peek_kind()? == Some(TokenKind::Description) {
            descriptions.push(self.description()?);
        }
        let mut radl = Builder::default();
        let mut sentences = 0;
        loop {
            match self.peek_kind()? {
                None if sentences > 0 => break,
                Some(kind) if SENTENCE_STARTS.contains(&kind) => {
                    let aspect = self.sentence(kind)?;
                    // IM adds a sentence once the next token shows it is complete.
                    self.end_of_sentence(&[], SENTENCE_EXPECTED)?;
                    radl.add(aspect)?;
                    sentences += 1;
                }
                _ => return Err(self.unexpected(SENTENCE_EXPECTED)),
            }
        }
        // IM reduces `description radl` last, innermost (last written) first.
        for description in descriptions.into_iter().rev() {
            radl.add(Aspect::Description(description))?;
        }
        Ok(radl.finish())
    }

    fn name(&mut self, what: &str) -> Result<Token<'a>, RadlError> {
        self.expect(TokenKind::Var, what)
    }

    fn description(&mut self) -> Result<Description, RadlError> {
        let keyword = self.expect_kind(TokenKind::Description)?;
        let id = self.name("a description name")?.text.into_owned();
        if self.peek_kind()? == Some(TokenKind::LParen) {
            let features = self.group(GroupContext::Description)?;
            return Ok(Description {
                id,
                reference: false,
                features,
                location: location(&keyword),
            });
        }
        self.end_of_sentence(
            &[TokenKind::Description],
            &format!("'(' or {SENTENCE_EXPECTED}"),
        )?;
        Ok(Description {
            id,
            reference: true,
            features: Features::default(),
            location: location(&keyword),
        })
    }

    fn sentence(&mut self, kind: TokenKind) -> Result<Aspect, RadlError> {
        let keyword = self
            .bump()?
            .ok_or_else(|| self.unexpected(SENTENCE_EXPECTED))?;
        let at = location(&keyword);
        match kind {
            TokenKind::Network | TokenKind::System => {
                let id = self.name("a name")?.text.into_owned();
                let reference = self.peek_kind()? != Some(TokenKind::LParen);
                let features = if reference {
                    self.end_of_sentence(&[], &format!("'(' or {SENTENCE_EXPECTED}"))?;
                    Features::default()
                } else {
                    self.group(GroupContext::Sentence)?
                };
                Ok(if kind == TokenKind::Network {
                    Aspect::Network(Network {
                        id,
                        reference,
                        features,
                        location: at,
                    })
                } else {
                    Aspect::System(System {
                        name: id,
                        reference,
                        features,
                        location: at,
                    })
                })
            }
            TokenKind::Ansible => {
                let id = self.name("a name")?.text.into_owned();
                let features = self.group(GroupContext::Sentence)?;
                Ok(Aspect::Ansible(Ansible {
                    id,
                    features,
                    location: at,
                }))
            }
            TokenKind::Configure => self.configure(at).map(Aspect::Configure),
            TokenKind::Deploy => {
                let system = self.name("a system name")?.text.into_owned();
                let count = self.expect(TokenKind::Number, "the number of VMs")?;
                let cloud = if self.peek_kind()? == Some(TokenKind::Var) {
                    self.bump()?.map(|t| t.text.into_owned())
                } else {
                    None
                };
                let expected = if cloud.is_some() {
                    SENTENCE_EXPECTED.to_owned()
                } else {
                    format!("a cloud id or {SENTENCE_EXPECTED}")
                };
                self.end_of_sentence(&[], &expected)?;
                Ok(Aspect::Deploy(Deploy {
                    system,
                    count: count.number.unwrap_or_else(|| Number::from(0)),
                    cloud,
                    location: at,
                }))
            }
            _ => self.contextualize(at).map(Aspect::Contextualize),
        }
    }

    fn configure(&mut self, at: Location) -> Result<Configure, RadlError> {
        let name = self.name("a name")?.text.into_owned();
        if self.peek_kind()? != Some(TokenKind::LParen) {
            self.end_of_sentence(&[], &format!("'(' or {SENTENCE_EXPECTED}"))?;
            return Ok(Configure {
                name,
                recipe: None,
                reference: true,
                location: at,
            });
        }
        self.open()?;
        let recipe = if self.peek_kind()? == Some(TokenKind::RecipeBegin) {
            self.bump()?;
            let mut recipe = String::new();
            while self.peek_kind()? == Some(TokenKind::RecipeLine) {
                if let Some(line) = self.bump()? {
                    recipe.push_str(&line.text);
                }
            }
            if recipe.is_empty() {
                return Err(self.unexpected("a recipe line after '@begin'"));
            }
            self.expect_kind(TokenKind::RecipeEnd)?;
            Some(recipe)
        } else {
            None
        };
        self.close(if recipe.is_some() {
            "')'"
        } else {
            "'@begin' or ')'"
        })?;
        Ok(Configure {
            name,
            recipe,
            reference: false,
            location: at,
        })
    }

    fn contextualize(&mut self, at: Location) -> Result<Contextualize, RadlError> {
        let max_time = if self.peek_kind()? == Some(TokenKind::Number) {
            self.bump()?.and_then(|t| t.number)
        } else {
            None
        };
        self.open()?;
        let mut options = IndexMap::new();
        while self.peek_kind()? == Some(TokenKind::Option) {
            let keyword = self.bump()?.ok_or_else(|| self.unexpected("'option'"))?;
            let prop = self.name("an option name")?.text.into_owned();
            let operator = self.comparator()?;
            let value = match self.peek_kind()? {
                Some(TokenKind::Str) => self.bump()?.map(|t| Value::Str(t.text.into_owned())),
                Some(TokenKind::Number) => self.bump()?.and_then(|t| t.number).map(Value::Num),
                _ => None,
            };
            let value = value.ok_or_else(|| self.unexpected("a quoted string or a number"))?;
            let feature = Feature {
                location: location(&keyword),
                ..Feature::new(prop, operator, value)
            };
            options.insert(feature.prop.clone(), feature);
        }
        let mut items = IndexMap::new();
        while self.peek_kind()? == Some(TokenKind::System) {
            let keyword = self.bump()?.ok_or_else(|| self.unexpected("'system'"))?;
            let system = self.name("a system name")?.text.into_owned();
            self.expect_kind(TokenKind::Configure)?;
            let configure = self.name("a configure name")?.text.into_owned();
            let mut step = Number::from(0);
            let mut tool = None;
            match self.peek_kind()? {
                Some(TokenKind::Step) => {
                    self.bump()?;
                    let number = self.expect(TokenKind::Number, "the step number")?;
                    step = number.number.unwrap_or(step);
                }
                Some(TokenKind::With) => {
                    self.bump()?;
                    tool = Some(self.name("a contextualization tool")?.text.into_owned());
                }
                _ => {}
            }
            let item = ContextualizeItem {
                system,
                configure,
                step,
                tool,
                location: location(&keyword),
            };
            items.insert((item.system.clone(), item.configure.clone()), item);
        }
        let expected = if items.is_empty() {
            "'option', 'system' or ')'"
        } else {
            "'system' or ')'"
        };
        self.close(expected)?;
        Ok(Contextualize {
            max_time: max_time.unwrap_or_else(|| Number::from(0)),
            items: Some(items),
            options: Some(options),
            location: at,
        })
    }

    fn comparator(&mut self) -> Result<Operator, RadlError> {
        let operator = match self.peek_kind()? {
            Some(TokenKind::Eq) => Operator::Eq,
            Some(TokenKind::Ge) => Operator::Ge,
            Some(TokenKind::Le) => Operator::Le,
            Some(TokenKind::Gt) => Operator::Gt,
            Some(TokenKind::Lt) => Operator::Lt,
            _ => return Err(self.unexpected("one of = >= <= > <")),
        };
        self.bump()?;
        Ok(operator)
    }

    /// `( features )`. IM's parser builds the group (which may fail) only once it has
    /// read the token after `)` and found it valid there, so we do the same.
    fn group(&mut self, context: GroupContext) -> Result<Features, RadlError> {
        self.open()?;
        let items = self.feature_list()?;
        self.close("'and' or ')'")?;
        match context {
            GroupContext::Sentence => self.end_of_sentence(&[], SENTENCE_EXPECTED)?,
            GroupContext::Description => {
                self.end_of_sentence(&[TokenKind::Description], SENTENCE_EXPECTED)?
            }
            GroupContext::Nested => {
                if !matches!(self.peek_kind()?, Some(TokenKind::And | TokenKind::RParen)) {
                    return Err(self.unexpected("'and' or ')'"));
                }
            }
        }
        Features::from_items(items)
    }

    /// `[feature] ('and' feature)*` — IM's grammar also accepts a leading `and`.
    fn feature_list(&mut self) -> Result<Vec<Item>, RadlError> {
        let mut items = Vec::new();
        match self.peek_kind()? {
            Some(TokenKind::Var | TokenKind::Soft) => items.push(self.feature()?),
            Some(TokenKind::And | TokenKind::RParen) => {}
            _ => return Err(self.unexpected("a feature, 'soft', 'and' or ')'")),
        }
        while self.peek_kind()? == Some(TokenKind::And) {
            self.bump()?;
            items.push(self.feature()?);
        }
        Ok(items)
    }

    fn feature(&mut self) -> Result<Item, RadlError> {
        if self.peek_kind()? == Some(TokenKind::Soft) {
            let keyword = self.bump()?.ok_or_else(|| self.unexpected("'soft'"))?;
            let weight = self.expect(TokenKind::Number, "the soft weight")?;
            let features = self.group(GroupContext::Nested)?;
            return Ok(Item::Soft(Soft {
                weight: weight.number.unwrap_or_else(|| Number::from(0)),
                features,
                location: location(&keyword),
            }));
        }
        let prop = self.name("a feature name or 'soft'")?;
        let at = location(&prop);
        if self.peek_kind()? == Some(TokenKind::Contains) {
            self.bump()?;
            let group = self.group(GroupContext::Nested)?;
            return Ok(Item::Plain(Feature {
                location: at,
                ..Feature::new(
                    prop.text.into_owned(),
                    Operator::Contains,
                    Value::Group(Box::new(group)),
                )
            }));
        }
        let operator = match self.peek_kind()? {
            Some(TokenKind::Eq | TokenKind::Ge | TokenKind::Le | TokenKind::Gt | TokenKind::Lt) => {
                self.comparator()?
            }
            _ => return Err(self.unexpected("one of = >= <= > < or 'contains'")),
        };
        let mut unit = String::new();
        let value = match self.peek_kind()? {
            Some(TokenKind::Str) => Value::Str(
                self.bump()?
                    .map(|t| t.text.into_owned())
                    .unwrap_or_default(),
            ),
            Some(TokenKind::Random) => {
                let length = self
                    .bump()?
                    .and_then(|t| t.number)
                    .and_then(|n| n.as_i64())
                    .unwrap_or(0);
                Value::Str(random_text(self.rng, length))
            }
            Some(TokenKind::Number) => {
                let number = self
                    .bump()?
                    .and_then(|t| t.number)
                    .unwrap_or_else(|| Number::from(0));
                if self.peek_kind()? == Some(TokenKind::Var) {
                    unit = self
                        .bump()?
                        .map(|t| t.text.into_owned())
                        .unwrap_or_default();
                }
                Value::Num(number)
            }
            Some(TokenKind::LBrack) => Value::List(self.string_list()?),
            _ => return Err(self.unexpected("a quoted string, a number, a list or 'random(N)'")),
        };
        Ok(Item::Plain(Feature {
            prop: prop.text.into_owned(),
            operator,
            value,
            unit,
            location: at,
        }))
    }

    /// `'[' [STRING] (',' STRING)* ']'`. IM drops a leading empty string (its grammar
    /// action treats `''` as "no item").
    fn string_list(&mut self) -> Result<Vec<String>, RadlError> {
        self.expect_kind(TokenKind::LBrack)?;
        let mut items = Vec::new();
        if self.peek_kind()? == Some(TokenKind::Str) {
            let first = self
                .bump()?
                .map(|t| t.text.into_owned())
                .unwrap_or_default();
            if !first.is_empty() {
                items.push(first);
            }
        }
        while self.peek_kind()? == Some(TokenKind::Comma) {
            self.bump()?;
            items.push(
                self.expect(TokenKind::Str, "a quoted string")?
                    .text
                    .into_owned(),
            );
        }
        self.expect(TokenKind::RBrack, "',' or ']'")?;
        Ok(items)
    }
}

/// `length` random letters and digits, as IM draws `'random(N)'`.
fn random_text(rng: &mut impl Rng, length: i64) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    (0..length.max(0))
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}
