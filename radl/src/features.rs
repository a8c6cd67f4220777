//! How IM stores the features of a system, network, ansible host or description
//! (`radl.radl.Features`), reproduced rule for rule.
//!
//! Every property name maps to one slot, in first-definition order:
//! * numbers form an interval: `=` sets both ends, `>`/`>=` the lower, `<`/`<=` the upper;
//!   a second constraint is intersected with the first (`Disjoint intervals!…` if empty);
//! * `contains` groups are keyed by their inner `name` (same name: merged);
//! * `soft` groups are collected under the fake property `__soft__`;
//! * anything else (strings, lists) holds one feature; a different second value is a
//!   conflict.
//!
//! When a document mixes kinds under one property (`x = 1 and x = 'a'`), IM's Python
//! fails with a `TypeError`/`AttributeError`; we fail with the same text.

use indexmap::IndexMap;

use super::ast::{Feature, Operator, Soft, Value};
use super::error::{ErrorKind, RadlError};
use super::number::{Number, NumberError};
use super::pytext::repr_str_list;

/// The fake property under which IM stores `soft` groups.
pub const SOFT_PROP: &str = "__soft__";

/// The storage slot of one property.
#[derive(Debug, Clone, PartialEq)]
pub enum Slot {
    /// A numeric property: lower and upper bound (the same feature for `=`).
    Interval(Option<Feature>, Option<Feature>),
    /// `contains` groups keyed by their inner `name`.
    Contains(Groups),
    /// The `soft` groups (property [`SOFT_PROP`]).
    Softs(Vec<Soft>),
    /// A string, list or other single-valued feature.
    Single(Feature),
}

/// The `contains` groups of one property, in first-definition order, with an index by
/// string name so that a document with thousands of groups is not read in quadratic time.
#[derive(Debug, Clone, Default)]
pub struct Groups {
    entries: Vec<(NameKey, Feature)>,
    by_name: std::collections::HashMap<String, usize, foldhash::fast::RandomState>,
}

impl PartialEq for Groups {
    fn eq(&self, other: &Self) -> bool {
        self.entries == other.entries
    }
}

impl std::ops::Deref for Groups {
    type Target = [(NameKey, Feature)];
    fn deref(&self) -> &Self::Target {
        &self.entries
    }
}

impl From<Vec<(NameKey, Feature)>> for Groups {
    fn from(entries: Vec<(NameKey, Feature)>) -> Self {
        let mut groups = Groups::default();
        for (name, feature) in entries {
            groups.push(name, feature);
        }
        groups
    }
}

impl Groups {
    /// The position of the group with that name (Python's dictionary key equality).
    pub fn position(&self, name: &NameKey) -> Option<usize> {
        match name {
            NameKey::Str(text) => self.by_name.get(text).copied(),
            other => self.entries.iter().position(|(key, _)| key == other),
        }
    }

    /// Appends a group (the caller has checked the name is new).
    pub fn push(&mut self, name: NameKey, feature: Feature) {
        if let NameKey::Str(text) = &name {
            self.by_name.insert(text.clone(), self.entries.len());
        }
        self.entries.push((name, feature));
    }

    /// The group at a position, mutable.
    pub fn get_mut(&mut self, index: usize) -> Option<&mut Feature> {
        self.entries.get_mut(index).map(|(_, feature)| feature)
    }

    /// The groups, owned.
    pub fn into_vec(self) -> Vec<(NameKey, Feature)> {
        self.entries
    }
}

/// The key of a `contains` group: the value of its `name` feature, compared as Python
/// compares dictionary keys.
#[derive(Debug, Clone)]
pub enum NameKey {
    /// The group has no `name`.
    None,
    /// The group's `name` is a string.
    Str(String),
    /// The group's `name` is a number.
    Num(Number),
}

impl PartialEq for NameKey {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (NameKey::None, NameKey::None) => true,
            (NameKey::Str(a), NameKey::Str(b)) => a == b,
            (NameKey::Num(a), NameKey::Num(b)) => a.py_eq(b),
            _ => false,
        }
    }
}

impl std::fmt::Display for NameKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NameKey::None => f.write_str("None"),
            NameKey::Str(text) => f.write_str(text),
            NameKey::Num(number) => write!(f, "{number}"),
        }
    }
}

/// What to do when a property already has an incompatible value (IM's `conflict`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conflict {
    /// Fail (what parsing does).
    Error,
    /// Keep the stored value.
    Keep,
    /// Take the new value.
    Replace,
}

/// One item of a feature list: a plain feature or a soft group.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    /// A single constraint, `prop op value`.
    Plain(Feature),
    /// A `soft N ( … )` group of optional constraints.
    Soft(Soft),
}

/// A borrowed item, in IM's output order.
#[derive(Debug, Clone, Copy)]
pub enum ItemRef<'a> {
    /// A single constraint, `prop op value`.
    Plain(&'a Feature),
    /// A `soft N ( … )` group of optional constraints.
    Soft(&'a Soft),
}

/// The features of one RADL element.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Features {
    // foldhash: property names are short and looked up twice per feature; SipHash made
    // up a measurable share of parsing. Its per-process random seed keeps it resistant
    // to crafted collisions.
    slots: IndexMap<String, Slot, foldhash::fast::RandomState>,
}

fn python_error(message: impl Into<String>) -> RadlError {
    RadlError::new(ErrorKind::Semantic, message)
}

fn slot_type_name(slot: &Slot) -> &'static str {
    match slot {
        Slot::Interval(..) => "tuple",
        Slot::Contains(_) => "dict",
        Slot::Softs(_) => "list",
        Slot::Single(_) => "Feature",
    }
}

impl Features {
    /// Builds the features as IM does when it reads a group: each item is added in order
    /// and any conflict is an error.
    pub fn from_items(items: impl IntoIterator<Item = Item>) -> Result<Features, RadlError> {
        let items = items.into_iter();
        let mut features = Features {
            slots: IndexMap::with_capacity_and_hasher(items.size_hint().0, Default::default()),
        };
        for item in items {
            features.add(item, Conflict::Error)?;
        }
        Ok(features)
    }

    /// Whether there is no feature at all.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The slots in first-definition order.
    pub fn slots(&self) -> impl Iterator<Item = (&str, &Slot)> {
        self.slots.iter().map(|(key, slot)| (key.as_str(), slot))
    }

    /// The slot of a property.
    pub fn slot(&self, prop: &str) -> Option<&Slot> {
        self.slots.get(prop)
    }

    /// Whether a property is set (IM's `hasFeature`).
    pub fn has(&self, prop: &str) -> bool {
        self.slots.contains_key(prop)
    }

    /// Removes a property (IM's `delValue`); later properties keep their order.
    pub fn remove(&mut self, prop: &str) -> Option<Slot> {
        self.slots.shift_remove(prop)
    }

    /// Every feature in IM's output order (its `features` property).
    pub fn items(&self) -> Vec<ItemRef<'_>> {
        let mut out = Vec::with_capacity(self.slots.len());
        for slot in self.slots.values() {
            match slot {
                Slot::Interval(Some(low), Some(high)) => {
                    // IM prints an `=` interval once. It prints twice a bound that its
                    // setValue copied to both ends (`cpu.count >= 2` after alter); we
                    // print that once too (a deliberate deviation).
                    let same = low == high
                        || (low.operator == Operator::Eq
                            && high.operator == Operator::Eq
                            && bounds_equal(low, high));
                    out.push(ItemRef::Plain(low));
                    if !same {
                        out.push(ItemRef::Plain(high));
                    }
                }
                Slot::Interval(low, high) => {
                    out.extend(low.iter().chain(high.iter()).map(ItemRef::Plain));
                }
                Slot::Contains(groups) => out.extend(groups.iter().map(|(_, f)| ItemRef::Plain(f))),
                Slot::Softs(softs) => out.extend(softs.iter().map(ItemRef::Soft)),
                Slot::Single(feature) => out.push(ItemRef::Plain(feature)),
            }
        }
        out
    }

    /// Adds one item with IM's `addFeature` rules. On an error the features may be left
    /// partly updated (a `contains` group partly merged); readers discard them.
    pub fn add(&mut self, item: Item, conflict: Conflict) -> Result<(), RadlError> {
        match item {
            Item::Soft(soft) => self.add_soft(soft),
            Item::Plain(feature) => match (&feature.value, feature.operator) {
                (Value::Num(_), _) => self.add_number(feature, conflict),
                (_, Operator::Contains) => self.add_contains(feature, conflict),
                _ => self.add_single(feature, conflict),
            },
        }
    }

    fn add_soft(&mut self, soft: Soft) -> Result<(), RadlError> {
        match self.slots.get_mut(SOFT_PROP) {
            None => {
                self.slots
                    .insert(SOFT_PROP.to_owned(), Slot::Softs(vec![soft]));
                Ok(())
            }
            Some(Slot::Softs(softs)) => {
                softs.push(soft);
                Ok(())
            }
            Some(other) => Err(python_error(format!(
                "'{}' object has no attribute 'append'",
                slot_type_name(other)
            ))),
        }
    }

    fn add_number(&mut self, feature: Feature, conflict: Conflict) -> Result<(), RadlError> {
        // Fast path for the common case (a first constraint on an integer property): IM's
        // intersection with the empty interval gives back the new bounds, unless the value
        // is IM's "no bound" sentinel -2**63, which the general path handles.
        if !self.slots.contains_key(&feature.prop) && feature.operator != Operator::Contains {
            if let Some(Ok(Number::Int(value))) = feature.number_in_base_units() {
                if value != i64::MIN {
                    let prop = feature.prop.clone();
                    let slot = match feature.operator {
                        Operator::Eq => Slot::Interval(Some(feature.clone()), Some(feature)),
                        Operator::Le | Operator::Lt => Slot::Interval(None, Some(feature)),
                        _ => Slot::Interval(Some(feature), None),
                    };
                    self.slots.insert(prop, slot);
                    return Ok(());
                }
            }
        }
        let new_bounds = match feature.operator {
            Operator::Eq => (Some(feature.clone()), Some(feature.clone())),
            Operator::Le | Operator::Lt => (None, Some(feature.clone())),
            Operator::Ge | Operator::Gt => (Some(feature.clone()), None),
            // IM's `addFeature` has no branch for this operator and fails inside the
            // intersection, so the message lists the stored bounds as usual.
            Operator::Contains => (None, None),
        };
        let old_bounds = match self.slots.get(&feature.prop) {
            None => (None, None),
            Some(Slot::Interval(low, high)) => (low.clone(), high.clone()),
            Some(Slot::Single(_)) => return Err(python_error("'Feature' object is not iterable")),
            Some(Slot::Contains(groups)) => {
                let names: Vec<String> = groups.iter().map(|(key, _)| key.to_string()).collect();
                let reason = match groups.iter().find(|(key, _)| name_is_truthy(key)) {
                    Some((NameKey::Num(_), _)) => "'int' object has no attribute 'getValue'",
                    Some(_) => "'str' object has no attribute 'getValue'",
                    None => "tuple index out of range",
                };
                let message = format!(
                    "{reason}. Involved features: {}",
                    repr_str_list(names.iter().map(String::as_str))
                );
                return Err(RadlError::with_line(
                    ErrorKind::Semantic,
                    &message,
                    &feature.location,
                ));
            }
            Some(Slot::Softs(softs)) => {
                let texts: Vec<String> = softs.iter().map(|s| s.to_string()).collect();
                let message = format!(
                    "Features.getValue() missing 1 required positional argument: 'prop'. Involved features: {}",
                    repr_str_list(texts.iter().map(String::as_str))
                );
                return Err(RadlError::with_line(
                    ErrorKind::Semantic,
                    &message,
                    &feature.location,
                ));
            }
        };
        let result = if feature.operator == Operator::Contains {
            Err(
                "cannot access local variable 'inter1' where it is not associated with a value"
                    .to_owned(),
            )
        } else {
            intersect(&old_bounds, &new_bounds, conflict)
        };
        match result {
            Ok(Some((low, high))) => {
                self.set_slot(&feature.prop, Slot::Interval(low, high));
                Ok(())
            }
            Ok(None) => Ok(()),
            Err(reason) => {
                let involved: Vec<String> = [&old_bounds.0, &old_bounds.1]
                    .iter()
                    .map(|f| {
                        f.as_ref()
                            .map_or_else(|| "None".to_owned(), |f| f.to_string())
                    })
                    .collect();
                let message = format!(
                    "{reason}. Involved features: {}",
                    repr_str_list(involved.iter().map(String::as_str))
                );
                Err(RadlError::with_line(
                    ErrorKind::Semantic,
                    &message,
                    &feature.location,
                ))
            }
        }
    }

    fn add_contains(&mut self, feature: Feature, conflict: Conflict) -> Result<(), RadlError> {
        let name = match &feature.value {
            Value::Group(group) => group.name_key()?,
            Value::Str(_) => return Err(python_error("'str' object has no attribute 'getValue'")),
            Value::List(_) => {
                return Err(python_error("'list' object has no attribute 'getValue'"))
            }
            Value::Num(_) => return Err(python_error("'int' object has no attribute 'getValue'")),
        };
        match self.slots.get_mut(&feature.prop) {
            None => {
                self.slots.insert(
                    feature.prop.clone(),
                    Slot::Contains(Groups::from(vec![(name, feature)])),
                );
                Ok(())
            }
            Some(Slot::Contains(groups)) => {
                match groups
                    .position(&name)
                    .and_then(|index| groups.get_mut(index))
                {
                    Some(existing) => {
                        // Merged in place (IM merges into a copy): a document with many
                        // groups of one name would otherwise be read in quadratic time. On
                        // an error the group may be partly merged; parsing stops there.
                        if let (Value::Group(target), Value::Group(source)) =
                            (&mut existing.value, feature.value)
                        {
                            for item in source.owned_items() {
                                target.add(item, conflict)?;
                            }
                        }
                    }
                    None => groups.push(name, feature),
                }
                Ok(())
            }
            Some(Slot::Single(_)) => {
                Err(python_error("argument of type 'Feature' is not iterable"))
            }
            Some(Slot::Interval(..)) => Err(python_error(
                "'tuple' object does not support item assignment",
            )),
            Some(Slot::Softs(_)) => Err(python_error(
                "list indices must be integers or slices, not str",
            )),
        }
    }

    fn add_single(&mut self, feature: Feature, conflict: Conflict) -> Result<(), RadlError> {
        if conflict == Conflict::Replace {
            self.set_slot(&feature.prop.clone(), Slot::Single(feature));
            return Ok(());
        }
        match self.slots.get(&feature.prop) {
            None => {
                self.slots
                    .insert(feature.prop.clone(), Slot::Single(feature));
                Ok(())
            }
            Some(Slot::Single(old)) => {
                if conflict == Conflict::Error && !values_equal(&old.value, &feature.value) {
                    let message = format!(
                        "Conflict adding `{feature}` because `{old}` is already set and conflict is error"
                    );
                    return Err(RadlError::with_line(
                        ErrorKind::Semantic,
                        &message,
                        &feature.location,
                    ));
                }
                Ok(())
            }
            Some(other) => Err(python_error(format!(
                "'{}' object has no attribute 'value'",
                slot_type_name(other)
            ))),
        }
    }

    /// Replaces a slot, keeping the property's position (or appending a new one).
    pub(crate) fn set_slot(&mut self, prop: &str, slot: Slot) {
        if let Some(existing) = self.slots.get_mut(prop) {
            *existing = slot;
        } else {
            self.slots.insert(prop.to_owned(), slot);
        }
    }

    /// The items, owned, in output order (used to merge `contains` groups).
    pub fn owned_items(&self) -> Vec<Item> {
        self.items()
            .into_iter()
            .map(|item| match item {
                ItemRef::Plain(f) => Item::Plain(f.clone()),
                ItemRef::Soft(s) => Item::Soft(s.clone()),
            })
            .collect()
    }

    /// The key IM files a `contains` group under: the value of its `name` feature.
    pub fn name_key(&self) -> Result<NameKey, RadlError> {
        match self.slots.get("name") {
            None => Ok(NameKey::None),
            Some(Slot::Single(feature)) => match &feature.value {
                Value::Str(text) => Ok(NameKey::Str(text.clone())),
                Value::List(_) => Err(python_error("unhashable type: 'list'")),
                Value::Group(_) => Err(python_error("unhashable type: 'Features'")),
                Value::Num(number) => Ok(NameKey::Num(number.clone())),
            },
            Some(Slot::Interval(low, high)) => {
                let bound = low.as_ref().or(high.as_ref());
                match bound.and_then(Feature::number_in_base_units) {
                    Some(Ok(number)) => Ok(NameKey::Num(number)),
                    Some(Err(NumberError(reason))) => Err(python_error(reason)),
                    None => Ok(NameKey::None),
                }
            }
            Some(Slot::Contains(_)) => Err(python_error("unhashable type: 'dict'")),
            Some(Slot::Softs(_)) => Err(python_error("unhashable type: 'list'")),
        }
    }
}

fn name_is_truthy(key: &NameKey) -> bool {
    match key {
        NameKey::None => false,
        NameKey::Str(text) => !text.is_empty(),
        NameKey::Num(number) => number.is_truthy(),
    }
}

fn bounds_equal(low: &Feature, high: &Feature) -> bool {
    match (low.number_in_base_units(), high.number_in_base_units()) {
        (Some(Ok(a)), Some(Ok(b))) => a.py_eq(&b),
        _ => low == high,
    }
}

/// Python's `!=` between two feature values that are not numbers.
fn values_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Str(x), Value::Str(y)) => x == y,
        (Value::List(x), Value::List(y)) => x == y,
        // Python compares groups by the identity of their features: only empty ones match.
        (Value::Group(x), Value::Group(y)) => x.is_empty() && y.is_empty(),
        _ => false,
    }
}

type Bounds = (Option<Feature>, Option<Feature>);

/// IM's `_applyInter`: the intersection of two intervals, with its exact comparisons
/// (a missing bound stands for -2**63, as in IM).
fn intersect(old: &Bounds, new: &Bounds, conflict: Conflict) -> Result<Option<Bounds>, String> {
    let missing = Number::from(i64::MIN);
    let value = |bound: &Option<Feature>| -> Result<Number, String> {
        match bound.as_ref().and_then(Feature::number_in_base_units) {
            Some(result) => result.map_err(|NumberError(reason)| reason),
            None => Ok(missing.clone()),
        }
    };
    let (a0, a1) = (value(&old.0)?, value(&old.1)?);
    let (b0, b1) = (value(&new.0)?, value(&new.1)?);
    let le = |x: &Number, y: &Number| matches!(x.py_cmp(y), Some(o) if o.is_le());
    let ge = |x: &Number, y: &Number| matches!(x.py_cmp(y), Some(o) if o.is_ge());
    let eq = |x: &Number, y: &Number| x.py_eq(y);
    let le00 = le(&a0, &b0);
    let le01 = eq(&b1, &missing) || le(&a0, &b1);
    let le11 = eq(&b1, &missing) || (!eq(&a1, &missing) && le(&a1, &b1));
    let ge00 = !le00 || eq(&a0, &b0);
    let ge10 = eq(&a1, &missing) || ge(&a1, &b0);
    let result = if le00 && ge10 && le11 {
        (new.0.clone(), old.1.clone())
    } else if le00 && ge10 {
        new.clone()
    } else if ge00 && le01 && le11 {
        old.clone()
    } else if ge00 && le01 {
        (old.0.clone(), new.1.clone())
    } else {
        match conflict {
            Conflict::Keep => old.clone(),
            Conflict::Replace => new.clone(),
            Conflict::Error => return Err("Disjoint intervals!".to_owned()),
        }
    };
    Ok(Some(result))
}
