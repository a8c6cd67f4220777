//! Writing RADL-JSON as IM's REST server sends it (`radl_json.radlToSimple`, then a
//! compact `json.dumps`).

use super::ast::{Configure, Contextualize, Deploy, Feature, Radl, Value};
use super::features::{Features, Item, Slot, SOFT_PROP};
use super::number::Number;
use super::pyjson::{Json, ObjectBuilder};

impl Radl {
    /// The document as IM's REST server sends RADL-JSON: compact, IM's key order, numbers
    /// in base units. A description's `id` is a number, as in IM (there, an object id).
    pub fn to_json(&self) -> String {
        let mut elements = Vec::new();
        elements.extend(
            self.ansible_hosts
                .iter()
                .map(|a| element("ansible", &a.id, false, &a.features)),
        );
        elements.extend(
            self.networks
                .iter()
                .map(|n| element("network", &n.id, n.reference, &n.features)),
        );
        elements.extend(
            self.systems
                .iter()
                .map(|s| element("system", &s.name, s.reference, &s.features)),
        );
        elements.extend(self.configures.iter().map(configure_json));
        elements.extend(self.deploys.iter().map(deploy_json));
        if !self.contextualize.is_absent() {
            elements.push(contextualize_json(&self.contextualize));
        }
        if let Some(description) = &self.description {
            let mut object = element(
                "description",
                &description.id,
                description.reference,
                &description.features,
            );
            if let Json::Object(entries) = &mut object {
                if let Some(entry) = entries.iter_mut().find(|(k, _)| k == "id") {
                    entry.1 = Json::Num(Number::from(object_id(&description.id)));
                }
            }
            elements.push(object);
        }
        let mut out = String::new();
        write_json(&mut out, &Json::Array(elements));
        out
    }
}

impl Radl {
    /// The RADL-JSON IM returns for a VM (`GET …/vms/{vm}` as JSON, inside `{"radl": …}`):
    /// only the networks and the systems.
    pub fn to_vm_info_json(&self) -> String {
        Radl {
            networks: self.networks.clone(),
            systems: self.systems.clone(),
            ..Radl::default()
        }
        .to_json()
    }
}

/// A stable stand-in for the Python object id IM prints as a description's `id`.
fn object_id(text: &str) -> i64 {
    let hash = text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    });
    i64::try_from(hash & 0x7fff_ffff_fff0).unwrap_or(0)
}

/// Inserts as a Python dict does: a repeated key keeps its place and takes the value.
fn insert(entries: &mut ObjectBuilder, key: String, value: Json) {
    entries.insert(key, value);
}

fn element(class: &str, id: &str, reference: bool, features: &Features) -> Json {
    let mut entries = ObjectBuilder::default();
    entries.insert("class".to_owned(), Json::Str(class.into()));
    entries.insert("id".to_owned(), Json::Str(id.into()));
    if reference {
        entries.insert("reference".to_owned(), Json::Bool(true));
    } else {
        for (key, value) in features_entries(features) {
            entries.insert(key, value);
        }
    }
    Json::Object(entries.into_entries())
}

/// IM's `featuresToSimple`.
pub(crate) fn features_entries(features: &Features) -> Vec<(String, Json)> {
    let mut entries = ObjectBuilder::default();
    for (key, slot) in features.slots() {
        match slot {
            Slot::Softs(softs) if key == SOFT_PROP => {
                let list = softs
                    .iter()
                    .map(|soft| {
                        Json::Object(vec![
                            ("weight".to_owned(), Json::Num(soft.weight.clone())),
                            (
                                "items".to_owned(),
                                Json::Object(features_entries(&soft.features)),
                            ),
                        ])
                    })
                    .collect();
                insert(&mut entries, "softs".to_owned(), Json::Array(list));
            }
            Slot::Interval(low, high) => match (low, high) {
                (Some(l), Some(h)) if values_py_equal(&l.value, &h.value) => {
                    insert(&mut entries, key.to_owned(), feature_json(l));
                }
                (Some(l), _) => insert(&mut entries, format!("{key}_min"), feature_json(l)),
                (None, Some(h)) => insert(&mut entries, format!("{key}_max"), feature_json(h)),
                (None, None) => {}
            },
            Slot::Contains(groups) => {
                let list = groups.iter().map(|(_, f)| feature_json(f)).collect();
                insert(&mut entries, key.to_owned(), Json::Array(list));
            }
            Slot::Softs(softs) => {
                let list = softs
                    .iter()
                    .map(|s| Json::Object(features_entries(&s.features)))
                    .collect();
                insert(&mut entries, key.to_owned(), Json::Array(list));
            }
            Slot::Single(feature) => insert(&mut entries, key.to_owned(), feature_json(feature)),
        }
    }
    entries.into_entries()
}

fn values_py_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Num(x), Value::Num(y)) => x.py_eq(y),
        _ => a == b,
    }
}

/// IM's `featureToSimple`: numbers in base units, groups as objects.
fn feature_json(feature: &Feature) -> Json {
    match &feature.value {
        Value::Num(number) if !feature.unit.is_empty() => {
            Json::Num(number.times(super::number::unit_factor(&feature.unit)))
        }
        Value::Num(number) => match number {
            Number::Bool(flag) => Json::Bool(*flag),
            other => Json::Num(other.clone()),
        },
        Value::Str(text) => Json::Str(text.clone()),
        Value::List(items) => Json::Array(items.iter().map(|i| Json::Str(i.clone())).collect()),
        Value::Group(group) => Json::Object(features_entries(group)),
    }
}

fn configure_json(configure: &Configure) -> Json {
    let mut entries = vec![
        ("class".to_owned(), Json::Str("configure".into())),
        ("id".to_owned(), Json::Str(configure.name.clone())),
    ];
    if configure.reference {
        entries.push(("reference".to_owned(), Json::Bool(true)));
    } else {
        let recipe = configure.recipe.clone().map_or(Json::Null, Json::Str);
        entries.push(("recipes".to_owned(), recipe));
    }
    Json::Object(entries)
}

fn deploy_json(deploy: &Deploy) -> Json {
    let mut entries = vec![
        ("class".to_owned(), Json::Str("deploy".into())),
        ("system".to_owned(), Json::Str(deploy.system.clone())),
        ("vm_number".to_owned(), Json::Num(deploy.count.clone())),
    ];
    if let Some(cloud) = deploy.cloud.as_ref().filter(|c| !c.is_empty()) {
        entries.push(("cloud".to_owned(), Json::Str(cloud.clone())));
    }
    Json::Object(entries)
}

fn contextualize_json(block: &Contextualize) -> Json {
    let mut entries = vec![("class".to_owned(), Json::Str("contextualize".into()))];
    if block.max_time.is_truthy() {
        entries.push(("max_time".to_owned(), Json::Num(block.max_time.clone())));
    }
    if let Some(items) = block.items.as_ref().filter(|i| !i.is_empty()) {
        let list = items
            .values()
            .map(|item| {
                let mut fields = vec![
                    ("system".to_owned(), Json::Str(item.system.clone())),
                    ("configure".to_owned(), Json::Str(item.configure.clone())),
                ];
                if item.step.is_truthy() {
                    fields.push(("step".to_owned(), Json::Num(item.step.clone())));
                }
                if let Some(tool) = item.tool.as_ref().filter(|t| !t.is_empty()) {
                    fields.push(("ctxt_tool".to_owned(), Json::Str(tool.clone())));
                }
                Json::Object(fields)
            })
            .collect();
        entries.push(("items".to_owned(), Json::Array(list)));
    }
    if let Some(options) = block.options.as_ref().filter(|o| !o.is_empty()) {
        let items = options.values().cloned().map(Item::Plain);
        let features = Features::from_items(items).unwrap_or_default();
        entries.push((
            "options".to_owned(),
            Json::Object(features_entries(&features)),
        ));
    }
    Json::Object(entries)
}

/// Writes JSON as Python's `json.dumps(..., ensure_ascii=False, separators=(",", ":"))`.
pub(crate) fn write_json(out: &mut String, value: &Json) {
    match value {
        Json::Null => out.push_str("null"),
        Json::Bool(flag) => out.push_str(if *flag { "true" } else { "false" }),
        Json::Num(number) => out.push_str(&number.to_json()),
        Json::Str(text) => write_json_string(out, text),
        Json::Array(items) => {
            out.push('[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                write_json(out, item);
            }
            out.push(']');
        }
        Json::Object(entries) => {
            out.push('{');
            for (index, (key, item)) in entries.iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                write_json_string(out, key);
                out.push(':');
                write_json(out, item);
            }
            out.push('}');
        }
    }
}

fn write_json_string(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}
