//! The RADL document model, shaped like IM's (`radl.radl.RADL`) so that every quirk of
//! its storage (feature order, interval merging, keyed `contains`) carries over.

use indexmap::IndexMap;

use super::error::Location;
use super::features::Features;
use super::number::Number;

/// A comparison in a feature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operator {
    /// `=`
    Eq,
    /// `>=`
    Ge,
    /// `<=`
    Le,
    /// `>` (IM stores it as a lower bound, like `>=`)
    Gt,
    /// `<` (IM stores it as an upper bound, like `<=`)
    Lt,
    /// `contains`, whose value is a group of features.
    Contains,
}

impl Operator {
    /// The operator as written in RADL.
    pub fn as_str(self) -> &'static str {
        match self {
            Operator::Eq => "=",
            Operator::Ge => ">=",
            Operator::Le => "<=",
            Operator::Gt => ">",
            Operator::Lt => "<",
            Operator::Contains => "contains",
        }
    }

    /// Whether IM treats the operator as a lower bound (`>`, `>=`).
    pub fn is_lower_bound(self) -> bool {
        matches!(self, Operator::Ge | Operator::Gt)
    }

    /// Whether IM treats the operator as an upper bound (`<`, `<=`).
    pub fn is_upper_bound(self) -> bool {
        matches!(self, Operator::Le | Operator::Lt)
    }
}

/// The value of a feature.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A quoted string, unescaped (`\'` became `'`).
    Str(String),
    /// A number; its unit, if any, lives in [`Feature::unit`].
    Num(Number),
    /// `['a','b']`.
    List(Vec<String>),
    /// The group of a `contains` (or, from RADL-JSON only, an object value).
    Group(Box<Features>),
}

/// One `prop op value` of a system, network, ansible host, description or option.
#[derive(Debug, Clone, PartialEq)]
pub struct Feature {
    /// The dotted property name, e.g. `disk.0.os.name`.
    pub prop: String,
    /// The comparison.
    pub operator: Operator,
    /// The value.
    pub value: Value,
    /// The unit as written after a number (`m`, `GiB`, any identifier), or empty.
    pub unit: String,
    /// Where it was written.
    pub location: Location,
}

impl Feature {
    /// A feature with no unit and no location.
    pub fn new(prop: impl Into<String>, operator: Operator, value: Value) -> Self {
        Feature {
            prop: prop.into(),
            operator,
            value,
            unit: String::new(),
            location: Location::default(),
        }
    }

    /// `prop = 'text'`.
    pub fn string(prop: impl Into<String>, text: impl Into<String>) -> Self {
        Feature::new(prop, Operator::Eq, Value::Str(text.into()))
    }

    /// `prop op number unit`.
    pub fn number(prop: impl Into<String>, operator: Operator, number: Number, unit: &str) -> Self {
        Feature {
            unit: unit.to_owned(),
            ..Feature::new(prop, operator, Value::Num(number))
        }
    }

    /// The numeric value in base units (IM's `getValue()`), if the value is a number.
    pub fn number_in_base_units(&self) -> Option<Result<Number, super::number::NumberError>> {
        match &self.value {
            Value::Num(number) => Some(number.convert(&self.unit, "")),
            _ => None,
        }
    }
}

/// `soft N ( … )`: optional constraints with a weight.
#[derive(Debug, Clone, PartialEq)]
pub struct Soft {
    /// The weight.
    pub weight: Number,
    /// The constraints.
    pub features: Features,
    /// Where it was written.
    pub location: Location,
}

/// `network id ( … )`, or `network id` as a reference.
#[derive(Debug, Clone, PartialEq)]
pub struct Network {
    /// The network's id, as other elements (`net_interface.N.connection`) name it.
    pub id: String,
    /// A bare `network id` that refers to a stored definition.
    pub reference: bool,
    /// The network's features (`outbound`, `provider_id`, `outports`…); empty for a
    /// reference.
    pub features: Features,
    /// Where it was written.
    pub location: Location,
}

/// `system name ( … )`, or `system name` as a reference.
#[derive(Debug, Clone, PartialEq)]
pub struct System {
    /// The system's name, as `deploy` and `contextualize` lines name it.
    pub name: String,
    /// A bare `system name` that refers to a stored definition.
    pub reference: bool,
    /// The system's features (CPU, memory, disks, interfaces, applications…).
    pub features: Features,
    /// Where it was written.
    pub location: Location,
}

/// `ansible id ( … )`: an external Ansible host.
#[derive(Debug, Clone, PartialEq)]
pub struct Ansible {
    /// The host's id.
    pub id: String,
    /// The host's features: how to reach it and log in.
    pub features: Features,
    /// Where it was written.
    pub location: Location,
}

/// `description id ( … )`.
#[derive(Debug, Clone, PartialEq)]
pub struct Description {
    /// The description's id.
    pub id: String,
    /// A bare `description id` (IM still prints it with an empty group).
    pub reference: bool,
    /// The description's features: free metadata about the document.
    pub features: Features,
    /// Where it was written.
    pub location: Location,
}

/// `configure name ( @begin … @end )`, `configure name ()` or `configure name`.
#[derive(Debug, Clone, PartialEq)]
pub struct Configure {
    /// The recipe's name, as `contextualize` items and `system` lines name it.
    pub name: String,
    /// The recipe text exactly as written between `@begin` and `@end` (it starts with the
    /// rest of the `@begin` line, usually just a newline). `None` for `configure name ()`.
    pub recipe: Option<String>,
    /// A bare `configure name` that refers to a stored definition.
    pub reference: bool,
    /// Where it was written.
    pub location: Location,
}

/// `deploy system count [cloud]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Deploy {
    /// The system to launch.
    pub system: String,
    /// How many VMs (a number as IM reads it; `check()` refuses negatives).
    pub count: Number,
    /// The id of the cloud credential line to use.
    pub cloud: Option<String>,
    /// Where it was written.
    pub location: Location,
}

/// `system X configure Y [step N] [with TOOL]` inside `contextualize`.
#[derive(Debug, Clone, PartialEq)]
pub struct ContextualizeItem {
    /// The system to contextualize.
    pub system: String,
    /// The `configure` recipe to run on it.
    pub configure: String,
    /// The step (0 when not given).
    pub step: Number,
    /// `with TOOL` (Ansible when absent).
    pub tool: Option<String>,
    /// Where it was written.
    pub location: Location,
}

/// The `contextualize` block. IM merges every block of a document into one.
#[derive(Debug, Clone, PartialEq)]
pub struct Contextualize {
    /// Maximum time in seconds (0 = IM's default).
    pub max_time: Number,
    /// Items keyed by (system, configure); `None` when no block was given.
    pub items: Option<IndexMap<(String, String), ContextualizeItem>>,
    /// `option name = value` lines keyed by name; `None` when no block was given.
    pub options: Option<IndexMap<String, Feature>>,
    /// Where the first block was written (the default location when there is none).
    pub location: Location,
}

impl Default for Contextualize {
    fn default() -> Self {
        Contextualize {
            max_time: Number::from(0),
            items: None,
            options: None,
            location: Location::default(),
        }
    }
}

impl Contextualize {
    /// No `contextualize` block at all.
    pub fn is_absent(&self) -> bool {
        self.items.is_none() && self.options.is_none()
    }

    /// `contextualize ()`: present with neither items nor options, which disables
    /// contextualization.
    pub fn is_empty_block(&self) -> bool {
        !self.is_absent()
            && self.items.as_ref().is_none_or(IndexMap::is_empty)
            && self.options.as_ref().is_none_or(IndexMap::is_empty)
    }
}

/// A RADL document.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Radl {
    /// The `description` element; `None` when the document has none.
    pub description: Option<Description>,
    /// The `ansible` hosts, in document order.
    pub ansible_hosts: Vec<Ansible>,
    /// The `network` elements, in document order.
    pub networks: Vec<Network>,
    /// The `system` elements, in document order.
    pub systems: Vec<System>,
    /// The `configure` recipes, in document order.
    pub configures: Vec<Configure>,
    /// The merged `contextualize` blocks (absent when the document has none).
    pub contextualize: Contextualize,
    /// The `deploy` lines, in document order.
    pub deploys: Vec<Deploy>,
}
