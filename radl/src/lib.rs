//! RADL, the language IM users describe infrastructures in: text and RADL-JSON, read,
//! checked and printed exactly as IM 2.0.0 (radl 1.3.5) does.
//!
//! This crate is pure: no actix, no store, no I/O. The grammar, the lexical rules and
//! where we differ from IM are in `docs/radl.md`.
//!
//! # Use
//!
//! ```
//! use infralog_radl as radl;
//!
//! let doc = radl::parse("network net (outbound = 'yes')\nsystem node (\nmemory.size >= 512m and\nnet_interface.0.connection = 'net'\n)\ndeploy node 1").unwrap();
//! doc.check().unwrap();
//! let node = doc.system("node").unwrap();
//! assert_eq!(node.property("memory.size").unwrap().to_text(), "512000000");
//! assert_eq!(doc.to_text(), "network net ( outbound = 'yes' )\nsystem node (\nmemory.size >= 512m and\nnet_interface.0.connection = 'net'\n)\n\n\ndeploy node 1");
//! assert!(doc.to_json().starts_with(r#"[{"class":"network","id":"net","outbound":"yes"}"#));
//! ```
//!
//! # Layout
//!
//! - [`lexer`], [`parser`]: RADL text → [`Radl`] ([`parse`]).
//! - [`json`], [`json_write`], [`pyjson`]: RADL-JSON ↔ [`Radl`] ([`parse_json`], [`Radl::to_json`]).
//! - [`ast`], [`features`], [`document`]: the model and IM's storage rules.
//! - [`printer`]: [`Radl::to_text`], IM's canonical text.
//! - [`check`]: [`Radl::check`], IM's validation.
//! - [`access`]: property get/set ([`Features::value`], [`Features::set_value`]).
//! - [`merge`]: add/alter/reconfigure merges, VM documents, Dummy decoration.
//! - [`number`], [`pytext`], [`outports`], [`yaml`]: Python semantics IM relies on.
//! - [`storable`]: whether a document's text reads back as itself (what may be stored).

#![warn(missing_docs)]

pub mod access;
pub mod ast;
pub mod check;
pub mod document;
pub mod error;
pub mod features;
pub mod json;
pub mod json_write;
pub mod lexer;
pub mod merge;
pub mod number;
pub mod outports;
pub mod parser;
pub mod printer;
pub mod pyjson;
pub mod pytext;
pub mod storable;
pub mod yaml;

pub use access::PropertyValue;
pub use ast::{
    Ansible, Configure, Contextualize, ContextualizeItem, Deploy, Description, Feature, Network,
    Operator, Radl, Soft, System, Value,
};
pub use document::{Aspect, IfPresent};
pub use error::{ErrorKind, Location, Position, RadlError};
pub use features::{Conflict, Features, Groups, Item, ItemRef, NameKey, Slot};
pub use json::parse_json;
pub use number::{unit_factor, Number};
pub use parser::parse_with_rng;

/// Parses RADL text as IM does (`radl_parse.parse_radl`). Blank text is an empty
/// document. `'random(N)'` values are drawn from the thread's random generator, so keep
/// the parsed document (not the text) when the result must be reproducible.
pub fn parse(text: &str) -> Result<Radl, RadlError> {
    parse_with_rng(text, &mut rand::rng())
}

/// The two body formats IM reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// RADL text (`text/plain`, `*/*`, `text/*`).
    Text,
    /// RADL-JSON (`application/json`).
    Json,
}

/// Parses a request body as IM's REST server does: an empty body is an empty document
/// whatever the format. The caller prefixes errors with `Error parsing request body: `.
pub fn parse_body(body: &str, format: Format) -> Result<Radl, RadlError> {
    if body.is_empty() {
        return Ok(Radl::default());
    }
    match format {
        Format::Text => parse(body),
        Format::Json => parse_json(body),
    }
}

impl Radl {
    /// Whether the document disables contextualization (IM's rule): an empty
    /// `contextualize ()`, a block whose items all use a non-Ansible tool, or systems
    /// that all have an empty `configure <name> ()`.
    pub fn contextualization_disabled(&self) -> bool {
        let block = &self.contextualize;
        if block.is_empty_block() {
            return true;
        }
        if let Some(items) = block.items.as_ref().filter(|items| !items.is_empty()) {
            if items
                .values()
                .all(|item| item.tool.as_deref().is_some_and(|t| t != "Ansible"))
            {
                return true;
            }
        }
        !self.systems.is_empty()
            && self.systems.iter().all(|system| {
                self.configure(&system.name)
                    .is_some_and(|c| !c.reference && c.recipe.is_none())
            })
    }
}

impl Network {
    /// IM's `isPublic()`: `outbound = 'yes'` (exactly, lower case).
    pub fn is_public(&self) -> bool {
        self.features.string("outbound") == Some("yes")
    }
}
