//! RADL text and RADL-JSON: lexer, parser, AST with spans, printer and checks.
//!
//! This module is pure: no actix, no store.

pub mod ast;
pub mod check;
pub mod document;
pub mod error;
pub mod features;
pub mod json;
pub mod lexer;
pub mod number;
pub mod outports;
pub mod parser;
pub mod printer;
pub mod pyjson;
pub mod pytext;
pub mod yaml;
