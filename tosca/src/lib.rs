//! TOSCA Simple Profile templates, read and translated to RADL as IM 2.0.0 does
//! (`IM/tosca/Tosca.py`), for the part of TOSCA that infralog supports: Compute nodes
//! (normative and INDIGO), networks and ports, attached block storage, inputs with
//! defaults, scaling counts and `outputs`. Node types it cannot translate are refused with a clear error,
//! never dropped; `docs/tosca.md` lists the limits (and the few sections ignored, as
//! `imports` and placement `policies`).
//!
//! This crate is pure: no actix, no store, no I/O, and of the project it knows only
//! `infralog-radl`.
//!
//! ```
//! use infralog_tosca::Template;
//!
//! let text = "tosca_definitions_version: tosca_simple_yaml_1_0\ntopology_template:\n  node_templates:\n    node:\n      type: tosca.nodes.Compute\n";
//! let template = Template::parse(text).unwrap();
//! let radl = template.to_radl().unwrap();
//! assert_eq!(radl.to_text(), "network private_net ( outbound = 'no' )\nsystem node (\ninstance_name = 'node' and\nnet_interface.0.connection = 'private_net'\n)\n\ncontextualize ()\ndeploy node 1");
//! ```

#![warn(missing_docs)]

mod networks;
mod outputs;
mod storage;
mod template;
mod translate;
pub mod yaml;

pub use outputs::VmFacts;
pub use template::Template;
pub use translate::Scaling;

/// Why a TOSCA document was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ToscaError {
    /// The text is not one YAML document, or not a valid TOSCA template.
    #[error("Error parsing TOSCA template: {0}")]
    Invalid(String),
    /// A valid template that uses TOSCA infralog does not translate.
    #[error("Error parsing TOSCA template: {0} (see docs/tosca.md for what infralog supports)")]
    Unsupported(String),
}
