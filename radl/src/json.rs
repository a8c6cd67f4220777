//! RADL-JSON: IM's JSON form of a document (`radl.radl_json`), read and written.
//!
//! A document is a list of objects with a `"class"`. Numeric features carry their
//! operator in the key (`memory.size_min` for `>=`, `_max` for `<=`, plain for `=`) and
//! are written in base units; lists are strings for `disk.N.image.url` and
//! `net_interface.N.additional_dns_names` and `contains` groups otherwise. Output is
//! compact, keys in IM's order, as IM's REST server sends it.

use super::ast::{
    Ansible, Configure, Contextualize, ContextualizeItem, Deploy, Description, Feature, Network,
    Operator, Radl, Soft, System, Value,
};
use super::document::{Aspect, Builder};
use super::error::{ErrorKind, Location, RadlError};
use super::features::{Features, Item};
use super::number::Number;
use super::pyjson::{self, Json};
use super::pytext::repr_str;
use super::yaml::validate_recipe;

fn json_error(message: impl Into<String>) -> RadlError {
    RadlError::new(ErrorKind::Json, message)
}

fn key_error(key: &str) -> RadlError {
    json_error(repr_str(key))
}

fn assertion() -> RadlError {
    json_error("")
}

/// Parses RADL-JSON text as IM does (`radl_json.parse_radl`), with its messages.
pub fn parse_json(text: &str) -> Result<Radl, RadlError> {
    let data = pyjson::parse(text)?;
    let elements: Vec<Json> = match data {
        Json::Array(items) => items,
        // Python iterates a dict by its keys and a string by its characters.
        Json::Object(entries) => entries.into_iter().map(|(key, _)| Json::Str(key)).collect(),
        Json::Str(text) => text.chars().map(|c| Json::Str(c.to_string())).collect(),
        other => {
            return Err(json_error(format!(
                "'{}' object is not iterable",
                other.python_type()
            )))
        }
    };
    let aspects = elements.iter().map(aspect).collect::<Result<Vec<_>, _>>()?;
    let mut radl = Builder::default();
    for aspect in aspects {
        radl.add(aspect)?;
    }
    Ok(radl.finish())
}

fn aspect(element: &Json) -> Result<Aspect, RadlError> {
    let class = match element {
        Json::Object(_) => element.get("class").ok_or_else(assertion)?,
        Json::Str(text) if text.contains("class") => {
            return Err(json_error("string indices must be integers, not 'str'"))
        }
        Json::Array(items) if items.contains(&Json::Str("class".into())) => {
            return Err(json_error(
                "list indices must be integers or slices, not str",
            ))
        }
        Json::Str(_) | Json::Array(_) => return Err(assertion()),
        other => {
            return Err(json_error(format!(
                "argument of type '{}' is not iterable",
                other.python_type()
            )))
        }
    };
    match class {
        Json::Str(name) if name == "configure" => configure(element).map(Aspect::Configure),
        Json::Str(name) if name == "contextualize" => {
            contextualize(element).map(Aspect::Contextualize)
        }
        Json::Str(name) if name == "deploy" => deploy(element).map(Aspect::Deploy),
        _ => featured(element),
    }
}

fn required<'a>(element: &'a Json, key: &str) -> Result<&'a Json, RadlError> {
    element.get(key).ok_or_else(|| key_error(key))
}

/// A name: IM keeps whatever JSON value it gets and prints it with `str()`; we accept
/// strings and numbers.
fn name_text(value: &Json, what: &str) -> Result<String, RadlError> {
    match value {
        Json::Str(text) => Ok(text.clone()),
        Json::Num(number) => Ok(number.to_string()),
        Json::Bool(flag) => Ok(if *flag { "True" } else { "False" }.to_owned()),
        other => Err(json_error(format!(
            "Invalid RADL-JSON: {what} must be a string, not '{}'",
            other.python_type()
        ))),
    }
}

fn number_field(value: &Json, what: &str) -> Result<Number, RadlError> {
    match value {
        Json::Num(number) => Ok(number.clone()),
        Json::Bool(flag) => Ok(Number::Bool(*flag)),
        other => Err(json_error(format!(
            "'<' not supported between instances of '{}' and 'int' ({what} must be a number)",
            other.python_type()
        ))),
    }
}

fn is_reference(element: &Json) -> bool {
    element.get("reference").is_some_and(Json::is_truthy)
}

fn configure(element: &Json) -> Result<Configure, RadlError> {
    if is_reference(element) {
        let name = name_text(required(element, "id")?, "id")?;
        return Ok(Configure {
            name,
            recipe: None,
            reference: true,
            location: Location::default(),
        });
    }
    let recipe = match required(element, "recipes")? {
        Json::Str(text) => {
            validate_recipe(text)
                .map_err(|reason| json_error(format!("Error parsing YAML: {reason}")))?;
            Some(text.clone())
        }
        Json::Null => None,
        other => {
            return Err(json_error(format!(
                "'{}' object has no attribute 'encode'",
                other.python_type()
            )))
        }
    };
    let name = name_text(required(element, "id")?, "id")?;
    Ok(Configure {
        name,
        recipe,
        reference: false,
        location: Location::default(),
    })
}

fn contextualize(element: &Json) -> Result<Contextualize, RadlError> {
    let mut items = indexmap::IndexMap::new();
    match element.get("items") {
        None => {}
        Some(Json::Array(list)) => {
            for entry in list {
                let item = ContextualizeItem {
                    system: name_text(required(entry, "system")?, "system")?,
                    configure: name_text(required(entry, "configure")?, "configure")?,
                    step: match entry.get("step") {
                        Some(value) => number_field(value, "step")?,
                        None => Number::from(0),
                    },
                    tool: match entry.get("ctxt_tool") {
                        None | Some(Json::Null) => None,
                        Some(value) => Some(name_text(value, "ctxt_tool")?),
                    },
                    location: Location::default(),
                };
                items.insert((item.system.clone(), item.configure.clone()), item);
            }
        }
        Some(other) => {
            return Err(json_error(format!(
                "'{}' object is not iterable",
                other.python_type()
            )))
        }
    }
    let max_time = match element.get("max_time") {
        Some(value) => number_field(value, "max_time")?,
        None => Number::from(0),
    };
    let mut options = indexmap::IndexMap::new();
    match element.get("options") {
        None => {}
        Some(object @ Json::Object(_)) => {
            for item in feature_items(object)? {
                if let Item::Plain(feature) = item {
                    options.insert(feature.prop.clone(), feature);
                }
            }
        }
        Some(_) => return Err(assertion()),
    }
    Ok(Contextualize {
        max_time,
        items: Some(items),
        options: Some(options),
        location: Location::default(),
    })
}

fn deploy(element: &Json) -> Result<Deploy, RadlError> {
    let system = name_text(required(element, "system")?, "system")?;
    let count = number_field(required(element, "vm_number")?, "vm_number")?;
    let cloud = match element.get("cloud") {
        None | Some(Json::Null) => None,
        Some(value) => Some(name_text(value, "cloud")?),
    };
    Ok(Deploy {
        system,
        count,
        cloud,
        location: Location::default(),
    })
}

fn featured(element: &Json) -> Result<Aspect, RadlError> {
    let class = required(element, "class")?;
    let id_value = required(element, "id")?;
    if !class.is_truthy() || !id_value.is_truthy() {
        return Err(assertion());
    }
    let Json::Str(class) = class else {
        return Err(json_error(format!(
            "attribute name must be string, not '{}'",
            class.python_type()
        )));
    };
    const MODULE_NAMES: [&str; 30] = [
        "Aspect",
        "Credentials",
        "Feature",
        "Features",
        "FeaturesApp",
        "RADL",
        "RADLParseException",
        "SoftFeatures",
        "UnitToValue",
        "UserKeyCredential",
        "UserPassCredential",
        "Version",
        "__builtins__",
        "__cached__",
        "__doc__",
        "__file__",
        "__loader__",
        "__name__",
        "__package__",
        "__spec__",
        "check_outports_format",
        "check_password",
        "contextualize_item",
        "copy",
        "is_version",
        "outport",
        "re",
        "unicode",
        "configure",
        "deploy",
    ];
    match class.as_str() {
        "network" | "system" | "description" | "ansible" => {}
        name if MODULE_NAMES.contains(&name) => {
            return Err(json_error(format!(
                "Invalid RADL-JSON: class '{name}' is not a network, system, ansible, description, configure, deploy or contextualize"
            )))
        }
        name => return Err(json_error(format!("module 'radl.radl' has no attribute '{name}'"))),
    }
    let id = name_text(id_value, "id")?;
    let reference = is_reference(element);
    if reference && class == "ansible" {
        return Err(json_error(
            "ansible.__init__() got an unexpected keyword argument 'reference'",
        ));
    }
    let features = if reference {
        Features::default()
    } else {
        Features::from_items(feature_items(element)?)?
    };
    let location = Location::default();
    Ok(match class.as_str() {
        "network" => Aspect::Network(Network {
            id,
            reference,
            features,
            location,
        }),
        "system" => Aspect::System(System {
            name: id,
            reference,
            features,
            location,
        }),
        "description" => Aspect::Description(Description {
            id,
            reference,
            features,
            location,
        }),
        _ => Aspect::Ansible(Ansible {
            id,
            features,
            location,
        }),
    })
}

/// IM's `p_features`: the features of an object, skipping `class` and `id`.
fn feature_items(object: &Json) -> Result<Vec<Item>, RadlError> {
    let Json::Object(entries) = object else {
        return Err(assertion());
    };
    let mut items = Vec::new();
    for (key, value) in entries {
        if key == "class" || key == "id" {
            continue;
        }
        if key == "softs" {
            let Json::Array(softs) = value else {
                return Err(json_error(format!(
                    "'{}' object is not iterable",
                    value.python_type()
                )));
            };
            for soft in softs {
                let weight = match soft.get("weight") {
                    Some(weight) => number_field(weight, "weight")?,
                    None => Number::from(0),
                };
                let empty = Json::Object(Vec::new());
                let features =
                    Features::from_items(feature_items(soft.get("items").unwrap_or(&empty))?)?;
                items.push(Item::Soft(Soft {
                    weight,
                    features,
                    location: Location::default(),
                }));
            }
            continue;
        }
        let numeric = matches!(value, Json::Num(_) | Json::Bool(_));
        if let (Some(prop), true) = (key.strip_suffix("_min"), numeric) {
            items.push(Item::Plain(Feature::new(
                prop,
                Operator::Ge,
                json_value(value)?,
            )));
        } else if let (Some(prop), true) = (key.strip_suffix("_max"), numeric) {
            items.push(Item::Plain(Feature::new(
                prop,
                Operator::Le,
                json_value(value)?,
            )));
        } else if let Json::Array(list) = value {
            let plain_list = (key.starts_with("disk") && key.ends_with("image.url"))
                || (key.starts_with("net_interface") && key.ends_with("additional_dns_names"));
            if plain_list {
                let mut strings = Vec::with_capacity(list.len());
                for (index, entry) in list.iter().enumerate() {
                    match entry {
                        Json::Str(text) => strings.push(text.clone()),
                        other => {
                            return Err(json_error(format!(
                                "sequence item {index}: expected str instance, {} found",
                                other.python_type()
                            )))
                        }
                    }
                }
                items.push(Item::Plain(Feature::new(
                    key.clone(),
                    Operator::Eq,
                    Value::List(strings),
                )));
            } else {
                for entry in list {
                    items.push(Item::Plain(Feature::new(
                        key.clone(),
                        Operator::Contains,
                        json_value(entry)?,
                    )));
                }
            }
        } else {
            items.push(Item::Plain(Feature::new(
                key.clone(),
                Operator::Eq,
                json_value(value)?,
            )));
        }
    }
    Ok(items)
}

/// IM's `p_feature`: numbers and strings as they are, objects as groups.
fn json_value(value: &Json) -> Result<Value, RadlError> {
    match value {
        Json::Num(number) => Ok(Value::Num(number.clone())),
        Json::Bool(flag) => Ok(Value::Num(Number::Bool(*flag))),
        Json::Str(text) => Ok(Value::Str(text.clone())),
        Json::Object(_) if value.get("class").is_some() => Err(json_error(
            "Invalid RADL-JSON: references to elements are not supported as feature values",
        )),
        Json::Object(_) => Ok(Value::Group(Box::new(Features::from_items(
            feature_items(value)?,
        )?))),
        Json::Null | Json::Array(_) => Err(assertion()),
    }
}
