//! Reading and writing single properties, as IM's REST API and connectors do.
//!
//! * [`Features::value`] is IM's `getValue(prop)`: numbers in base units (bytes for
//!   `memory.size`), strings as they are, lists, `contains` groups by name.
//! * [`Features::set_value`] is IM's `setValue(prop, value, unit)`, except that it never
//!   duplicates a feature: a property keeps its place and is printed once.

use super::ast::{Feature, Operator, System, Value};
use super::error::Location;
use super::features::{Features, NameKey, Slot};
use super::json_write::{features_entries, write_json};
use super::number::Number;
use super::pyjson::Json;

/// The value of one property, as IM returns it for `GET …/vms/{vm}/{prop}`.
#[derive(Debug, Clone, PartialEq)]
pub enum PropertyValue {
    /// A string, as it is.
    Str(String),
    /// A number in base units (`memory.size >= 512m` gives 512000000).
    Num(Number),
    /// A list of strings (`disk.0.image.url = ['a','b']`).
    List(Vec<String>),
    /// An object-valued feature (only from RADL-JSON).
    Group(Features),
    /// `contains` groups keyed by their `name` (e.g. `disk.0.applications`).
    Groups(Vec<(NameKey, Features)>),
}

impl PropertyValue {
    /// The `text/plain` body: strings as they are, numbers as decimals, lists one item a
    /// line. Groups print as RADL features (IM prints a Python object repr there).
    pub fn to_text(&self) -> String {
        match self {
            PropertyValue::Str(text) => text.clone(),
            PropertyValue::Num(number) => number.to_string(),
            PropertyValue::List(items) => items.join("\n"),
            PropertyValue::Group(group) => group.to_string(),
            PropertyValue::Groups(groups) => groups
                .iter()
                .map(|(_, group)| group.to_string())
                .collect::<Vec<_>>()
                .join("\n"),
        }
    }

    /// The JSON value IM puts under the property name (`{"memory.size":512000000}`);
    /// `contains` groups become an object keyed by name, as IM sends them.
    pub fn to_json(&self) -> String {
        let value = match self {
            PropertyValue::Str(text) => Json::Str(text.clone()),
            PropertyValue::Num(Number::Bool(flag)) => Json::Bool(*flag),
            PropertyValue::Num(number) => Json::Num(number.clone()),
            PropertyValue::List(items) => {
                Json::Array(items.iter().cloned().map(Json::Str).collect())
            }
            PropertyValue::Group(group) => Json::Object(features_entries(group)),
            PropertyValue::Groups(groups) => Json::Object(
                groups
                    .iter()
                    .map(|(name, group)| (name.to_string(), Json::Object(features_entries(group))))
                    .collect(),
            ),
        };
        let mut out = String::new();
        write_json(&mut out, &value);
        out
    }
}

fn feature_value(feature: &Feature) -> Option<PropertyValue> {
    Some(match &feature.value {
        Value::Str(text) => PropertyValue::Str(text.clone()),
        Value::Num(number) => PropertyValue::Num(number.convert(&feature.unit, "").ok()?),
        Value::List(items) => PropertyValue::List(items.clone()),
        Value::Group(group) => PropertyValue::Group((**group).clone()),
    })
}

impl Features {
    /// IM's `getValue(prop)`: the value of a property, numbers in base units (the lower
    /// bound of an interval, else the upper one). `None` if the property is not set.
    pub fn value(&self, prop: &str) -> Option<PropertyValue> {
        match self.slot(prop)? {
            Slot::Single(feature) => feature_value(feature),
            Slot::Interval(low, high) => feature_value(low.as_ref().or(high.as_ref())?),
            Slot::Contains(groups) => Some(PropertyValue::Groups(
                groups
                    .iter()
                    .filter_map(|(name, feature)| match &feature.value {
                        Value::Group(group) => Some((name.clone(), (**group).clone())),
                        _ => None,
                    })
                    .collect(),
            )),
            Slot::Softs(softs) => Some(PropertyValue::Groups(
                softs
                    .iter()
                    .map(|s| (NameKey::None, s.features.clone()))
                    .collect(),
            )),
        }
    }

    /// The string value of a property, if it is a string.
    pub fn string(&self, prop: &str) -> Option<&str> {
        match self.slot(prop)? {
            Slot::Single(Feature {
                value: Value::Str(text),
                ..
            }) => Some(text),
            _ => None,
        }
    }

    /// The feature holding a property's value (the lower bound of an interval first).
    pub fn feature(&self, prop: &str) -> Option<&Feature> {
        match self.slot(prop)? {
            Slot::Single(feature) => Some(feature),
            Slot::Interval(low, high) => low.as_ref().or(high.as_ref()),
            _ => None,
        }
    }

    /// IM's `setValue(prop, value, unit)`. A number replaces both bounds of an interval
    /// (keeping the operator: `cpu.count >= 1` becomes `cpu.count >= 2`), anything else
    /// replaces the value in place; a new property is appended with `=`. Unlike IM, a
    /// property is never printed twice afterwards, and a value of another kind than the
    /// stored one replaces it instead of failing.
    pub fn set_value(&mut self, prop: &str, value: Value, unit: &str) {
        let slot = match (self.slot(prop), value) {
            (Some(Slot::Interval(Some(low), Some(high))), Value::Num(number)) if low != high => {
                let update = |bound: &Feature| Feature {
                    value: Value::Num(number.clone()),
                    unit: unit.to_owned(),
                    ..bound.clone()
                };
                Slot::Interval(Some(update(low)), Some(update(high)))
            }
            (Some(Slot::Interval(low, high)), Value::Num(number)) => {
                let Some(bound) = low.as_ref().or(high.as_ref()) else {
                    return;
                };
                let updated = Feature {
                    value: Value::Num(number),
                    unit: unit.to_owned(),
                    ..bound.clone()
                };
                Slot::Interval(Some(updated.clone()), Some(updated))
            }
            (None, Value::Num(number)) => {
                let feature = Feature::number(prop, Operator::Eq, number, unit);
                Slot::Interval(Some(feature.clone()), Some(feature))
            }
            (Some(Slot::Single(old)), value) if !matches!(value, Value::Num(_)) => {
                Slot::Single(Feature {
                    value,
                    unit: unit.to_owned(),
                    ..old.clone()
                })
            }
            (_, Value::Num(number)) => {
                let feature = Feature::number(prop, Operator::Eq, number, unit);
                Slot::Interval(Some(feature.clone()), Some(feature))
            }
            (_, value) => Slot::Single(Feature {
                unit: unit.to_owned(),
                ..Feature::new(prop, Operator::Eq, value)
            }),
        };
        self.set_slot(prop, slot);
    }

    /// Sets a string property (`setValue(prop, 'text')`).
    pub fn set_string(&mut self, prop: &str, text: &str) {
        self.set_value(prop, Value::Str(text.to_owned()), "");
    }

    /// Replaces a property by exactly this feature (`prop = value`), keeping its place.
    pub fn replace(&mut self, feature: Feature) {
        let prop = feature.prop.clone();
        let slot = match (&feature.value, feature.operator) {
            (Value::Num(_), Operator::Eq) => Slot::Interval(Some(feature.clone()), Some(feature)),
            (Value::Num(_), op) if op.is_upper_bound() => Slot::Interval(None, Some(feature)),
            (Value::Num(_), _) => Slot::Interval(Some(feature), None),
            _ => Slot::Single(feature),
        };
        self.set_slot(&prop, slot);
    }
}

impl System {
    /// A system with these features and no location.
    pub fn new(name: &str, features: Features) -> Self {
        System {
            name: name.to_owned(),
            reference: false,
            features,
            location: Location::default(),
        }
    }

    /// IM's `getValue(prop)` on the system (what `GET …/vms/{vm}/{prop}` returns).
    pub fn property(&self, prop: &str) -> Option<PropertyValue> {
        self.features.value(prop)
    }

    /// The networks of the interfaces 0, 1, … up to the first without a connection.
    pub fn network_ids(&self) -> Vec<&str> {
        (0..)
            .map_while(|i| {
                self.features
                    .string(&format!("net_interface.{i}.connection"))
            })
            .filter(|id| !id.is_empty())
            .collect()
    }

    /// `disk.0.os.credentials.{username,password,public_key,private_key}` (or the
    /// `new.` ones), as IM's `getCredentialValues`.
    pub fn credentials(&self, new: bool) -> [Option<&str>; 4] {
        let base = if new {
            "disk.0.os.credentials.new."
        } else {
            "disk.0.os.credentials."
        };
        ["username", "password", "public_key", "private_key"]
            .map(|field| self.features.string(&format!("{base}{field}")))
    }
}
