//! RADL text and RADL-JSON: lexer, parser, AST with spans, printer and checks.
//!
//! This module is pure: no actix, no store.
