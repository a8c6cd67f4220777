//! Small, RADL-agnostic facts that events carry: owners (never passwords) and
//! feature values a connector set on a VM.

use serde::{Deserialize, Serialize};

/// An owner as the log keeps it: a username and a salted slow digest of the
/// password (Argon2id, computed by the API layer). IM matches owners on username and
/// password; the digest lets us do the same without storing the password.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct OwnerRecord {
    /// The name the owner authenticates with.
    pub username: String,
    /// The random salt the digest was computed with.
    pub salt: [u8; 16],
    /// The Argon2id digest of the password with `salt`.
    pub digest: [u8; 32],
    /// Owners created by token users are only matched by requests carrying a token.
    pub via_token: bool,
}

impl std::fmt::Debug for OwnerRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OwnerRecord")
            .field("username", &self.username)
            .field("via_token", &self.via_token)
            .finish_non_exhaustive()
    }
}

/// A comparison of a RADL feature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Comparison {
    /// `=`: exactly this value.
    Eq,
    /// `>=`: at least this value.
    Ge,
    /// `<=`: at most this value.
    Le,
    /// `>`: more than this value.
    Gt,
    /// `<`: less than this value.
    Lt,
}

/// The value of a RADL feature as a connector or an alteration set it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FactValue {
    /// A quoted string, without its quotes.
    Text(String),
    /// A number as written, with its unit (`2048` and `M` for `2048M`).
    Number {
        /// The digits as written (`2048`).
        literal: String,
        /// The unit suffix (`M`); empty when there is none.
        unit: String,
    },
}

/// "Set this feature of the VM's system", replacing any feature of the same name in
/// place (or appending it when absent).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FeatureFact {
    /// The feature's RADL name (`net_interface.0.ip`, `cpu.count`).
    pub name: String,
    /// `None` keeps the comparison of the feature it replaces (`=` for a new one), as
    /// IM's `setValue` does; `Some` replaces the whole feature.
    pub comparison: Option<Comparison>,
    /// The value the feature takes.
    pub value: FactValue,
}

impl FeatureFact {
    /// `name = 'value'`.
    pub fn text(name: impl Into<String>, value: impl Into<String>) -> Self {
        FeatureFact {
            name: name.into(),
            comparison: Some(Comparison::Eq),
            value: FactValue::Text(value.into()),
        }
    }
}

/// Which cloud a VM lives in: the credential line's id and the connector type.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CloudRef {
    /// The `id` of the credential line that names the cloud.
    pub id: String,
    /// The connector type (the credential's `type`, such as `Dummy` or `OpenStack`).
    pub kind: String,
    /// The endpoint from the credential's `host` (IM keeps server, port, protocol and
    /// path with each VM); empty for clouds without one, such as Dummy.
    pub host: String,
}
