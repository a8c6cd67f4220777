//! The IM REST API: one module per resource, content negotiation and error bodies.
