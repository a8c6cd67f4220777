//! The IM REST API: one module per resource; content negotiation and error bodies.

pub mod errors;
pub mod media;
pub mod params;
pub mod routes;
