//! `check()`: the validation IM runs on create, add and dry-run (`RADL.check`), rule for
//! rule and message for message. Elements are checked in IM's order (networks, ansible
//! hosts, systems, deploys, configures, contextualize) and the first problem is reported.

use std::collections::HashSet;

use indexmap::IndexMap;

use super::ast::{Ansible, Feature, Operator, Radl, System, Value};
use super::error::{ErrorKind, Location, RadlError};
use super::features::{Features, ItemRef, Slot, SOFT_PROP};
use super::outports::is_valid_outports;
use super::pytext::{decimal_digit, parse_python_int, repr_str_list};
use super::yaml::validate_recipe;

/// The Python type a check expects.
#[derive(Clone, Copy)]
enum Kind {
    Str,
    Int,
    Float,
    Group,
    Soft,
    StrOrList,
}

impl Kind {
    fn python(self) -> &'static str {
        match self {
            Kind::Str => "<class 'str'>",
            Kind::Int => "<class 'int'>",
            Kind::Float => "<class 'float'>",
            Kind::Group => "<class 'radl.radl.Features'>",
            Kind::Soft => "<class 'radl.radl.SoftFeatures'>",
            Kind::StrOrList => "(<class 'str'>, <class 'bytes'>, <class 'list'>)",
        }
    }
}

/// How the value of a checked feature is validated.
#[derive(Clone, Copy)]
enum Rule {
    Any,
    OneOf(&'static [&'static str]),
    NonNegative,
    Version,
    Password,
    Outports,
    AnsibleHost,
    NetworkConnection,
    Application,
    NonEmpty,
    SoftGroup,
}

/// Which units are allowed: none, or one of a list (compared upper-cased).
#[derive(Clone, Copy)]
enum Units {
    None,
    OneOf(&'static [&'static str]),
}

type Spec = (Kind, Rule, Units);

const MEM_UNITS: &[&str] = &[
    "", "B", "K", "M", "G", "T", "KB", "MB", "GB", "TB", "KI", "MI", "GI", "KIB", "MIB", "GIB",
    "TIB",
];

fn str_spec(rule: Rule) -> Spec {
    (Kind::Str, rule, Units::None)
}

fn system_simple_spec(prop: &str) -> Option<Spec> {
    Some(match prop {
        "spot" => str_spec(Rule::OneOf(&["YES", "NO"])),
        "image_type" => str_spec(Rule::OneOf(&["VMDK", "QCOW", "QCOW2", "RAW"])),
        "virtual_system_type" => str_spec(Rule::Any),
        "price" | "cpu.count" => (Kind::Float, Rule::NonNegative, Units::None),
        "cpu.arch" => str_spec(Rule::OneOf(&["I386", "X86_64"])),
        "cpu.performance" => (
            Kind::Float,
            Rule::NonNegative,
            Units::OneOf(&["ECU", "GCEU", "HRZ"]),
        ),
        "memory.size" => (Kind::Int, Rule::NonNegative, Units::OneOf(MEM_UNITS)),
        "disk.0.os.credentials.new.password" => str_spec(Rule::Password),
        "ansible_host" => str_spec(Rule::AnsibleHost),
        SOFT_PROP => (Kind::Soft, Rule::SoftGroup, Units::None),
        _ => return None,
    })
}

fn net_interface_spec(suffix: &str) -> Option<Spec> {
    Some(match suffix {
        "connection" => str_spec(Rule::NetworkConnection),
        "ip" | "dns_name" => str_spec(Rule::Any),
        _ => return None,
    })
}

fn disk_spec(suffix: &str) -> Option<Spec> {
    Some(match suffix {
        "image.url" => (Kind::StrOrList, Rule::Any, Units::None),
        "image.name"
        | "type"
        | "device"
        | "mount_path"
        | "fstype"
        | "os.flavour"
        | "os.credentials.username"
        | "os.credentials.password"
        | "os.credentials.private_key"
        | "os.credentials.public_key" => str_spec(Rule::Any),
        "size" | "free_size" => (Kind::Float, Rule::NonNegative, Units::OneOf(MEM_UNITS)),
        "os.name" => str_spec(Rule::OneOf(&["LINUX", "WINDOWS", "MAC OS X"])),
        "os.version" => str_spec(Rule::Version),
        "applications" => (Kind::Group, Rule::Application, Units::None),
        _ => return None,
    })
}

fn fail(message: &str, location: &Location) -> RadlError {
    RadlError::with_line(ErrorKind::Check, message, location)
}

/// A feature or a soft group, as `Feature._check` sees it.
struct Checked<'a> {
    prop: &'a str,
    operator: Operator,
    value: Option<&'a Value>,
    unit: &'a str,
    soft: Option<&'a Features>,
    location: Location,
}

impl<'a> Checked<'a> {
    fn from_item(item: ItemRef<'a>) -> Self {
        match item {
            ItemRef::Plain(f) => Checked::from_feature(f),
            ItemRef::Soft(s) => Checked {
                prop: SOFT_PROP,
                operator: Operator::Contains,
                value: None,
                unit: "",
                soft: Some(&s.features),
                // IM's SoftFeatures lose their line when built.
                location: Location {
                    im_line: None,
                    position: s.location.position,
                },
            },
        }
    }

    fn from_feature(f: &'a Feature) -> Self {
        Checked {
            prop: &f.prop,
            operator: f.operator,
            value: Some(&f.value),
            unit: &f.unit,
            soft: None,
            location: f.location,
        }
    }
}

/// The ids a check looks up, gathered once per document (so that checking many systems
/// against many networks stays linear).
struct Names<'a> {
    systems: HashSet<&'a str, foldhash::fast::RandomState>,
    networks: HashSet<&'a str, foldhash::fast::RandomState>,
    configures: HashSet<&'a str, foldhash::fast::RandomState>,
    ansible_hosts: HashSet<&'a str, foldhash::fast::RandomState>,
}

impl<'a> Names<'a> {
    fn new(radl: &'a Radl) -> Self {
        Names {
            systems: radl.systems.iter().map(|s| s.name.as_str()).collect(),
            networks: radl.networks.iter().map(|n| n.id.as_str()).collect(),
            configures: radl.configures.iter().map(|c| c.name.as_str()).collect(),
            ansible_hosts: radl.ansible_hosts.iter().map(|a| a.id.as_str()).collect(),
        }
    }
}

/// What a check needs to know about the document, plus the connections seen so far.
struct Context<'a> {
    names: &'a Names<'a>,
    /// The `net_interface.N.connection` properties that name a network (few: a Vec).
    connections: Vec<&'a str>,
}

fn check_feature<'a>(
    feature: &Checked<'a>,
    spec: Spec,
    context: &mut Context<'a>,
) -> Result<(), RadlError> {
    let (kind, rule, units) = spec;
    let is_str = matches!(feature.value, Some(Value::Str(_)));
    let is_num = matches!(feature.value, Some(Value::Num(_)));
    let is_group = feature.soft.is_some() || matches!(feature.value, Some(Value::Group(_)));
    let type_ok = match kind {
        Kind::Str => is_str,
        Kind::Float => is_num,
        Kind::Int => matches!(feature.value, Some(Value::Num(n)) if n.is_int()),
        Kind::Group => is_group,
        Kind::Soft => feature.soft.is_some(),
        Kind::StrOrList => is_str || matches!(feature.value, Some(Value::List(_))),
    };
    let at = &feature.location;
    if !type_ok {
        return Err(fail(
            &format!("Invalid type; expected {}", kind.python()),
            at,
        ));
    }
    let has_version = feature.prop.contains("version");
    let comparison = !matches!(feature.operator, Operator::Contains);
    if is_str && !has_version {
        if feature.operator != Operator::Eq {
            return Err(fail("Invalid operator; expected '='", at));
        }
    } else if is_num || has_version {
        if !comparison {
            return Err(fail(
                "Invalid operator; expected '=', '<=', '>=', '>' or '<'",
                at,
            ));
        }
    } else if is_group && comparison {
        return Err(fail("Invalid operator; expected 'contains'", at));
    }
    check_value(feature, rule, context)?;
    match units {
        Units::None if !feature.unit.is_empty() => Err(fail("Invalid unit; expected none", at)),
        Units::OneOf(allowed) if !allowed.contains(&feature.unit.to_uppercase().as_str()) => {
            Err(fail(
                &format!(
                    "Invalid unit; expected one of {}",
                    repr_str_list(allowed.iter().copied())
                ),
                at,
            ))
        }
        _ => Ok(()),
    }
}

fn check_value<'a>(
    feature: &Checked<'a>,
    rule: Rule,
    context: &mut Context<'a>,
) -> Result<(), RadlError> {
    let text = match feature.value {
        Some(Value::Str(text)) => text.as_str(),
        _ => "",
    };
    let valid = match rule {
        Rule::Any => true,
        Rule::OneOf(allowed) => {
            if is_one_of(text, allowed) {
                true
            } else {
                let message = format!(
                    "Invalid value; expected one of {}",
                    repr_str_list(allowed.iter().copied())
                );
                return Err(fail(&message, &feature.location));
            }
        }
        Rule::NonNegative => !matches!(feature.value, Some(Value::Num(n)) if n.is_negative()),
        Rule::Version => text.is_empty() || text.split('.').all(is_python_digits),
        Rule::Password => is_strong_password(text),
        Rule::Outports => is_valid_outports(text),
        Rule::AnsibleHost => context.names.ansible_hosts.contains(text),
        Rule::NetworkConnection => {
            let known = context.names.networks.contains(text);
            if known && !context.connections.contains(&feature.prop) {
                context.connections.push(feature.prop);
            }
            known
        }
        Rule::NonEmpty => !text.is_empty(),
        Rule::Application => {
            if let Some(Value::Group(group)) = feature.value {
                check_application(group, context)?;
            }
            true
        }
        Rule::SoftGroup => {
            if let Some(group) = feature.soft {
                check_system_features(group, context.names)?;
            }
            true
        }
    };
    if valid {
        Ok(())
    } else {
        Err(fail(
            &format!("Invalid value in property '{}'", feature.prop),
            &feature.location,
        ))
    }
}

/// Python's `str.isdigit()` on a non-empty string.
fn is_python_digits(text: &str) -> bool {
    !text.is_empty()
        && text.chars().all(|c| {
            decimal_digit(c).is_some() || matches!(c, '¹' | '²' | '³' | '⁰' | '⁴'..='⁹' | '₀'..='₉')
        })
}

/// IM's password rule: more than 6 characters, an upper-case letter, a digit, a symbol.
fn is_strong_password(password: &str) -> bool {
    password.chars().count() > 6
        && password.to_lowercase() != password
        && password.chars().any(|c| decimal_digit(c).is_some())
        && password.chars().any(|c| !(c.is_alphanumeric()))
}

fn check_application<'a>(group: &'a Features, context: &mut Context<'a>) -> Result<(), RadlError> {
    for item in group.items() {
        let checked = Checked::from_item(item);
        let spec = match checked.prop {
            "name" | "path" => str_spec(Rule::NonEmpty),
            "version" => str_spec(Rule::Version),
            "preinstalled" => str_spec(Rule::OneOf(&["YES", "NO"])),
            _ => continue,
        };
        check_feature(&checked, spec, context)?;
    }
    Ok(())
}

/// IM's `system.check` on a group of features (a system or a soft group).
fn check_system_features<'a>(
    features: &'a Features,
    names: &'a Names<'a>,
) -> Result<(), RadlError> {
    let mut context = Context {
        names,
        connections: Vec::new(),
    };
    let items = features.items();
    for item in &items {
        let checked = Checked::from_item(*item);
        if let Some(spec) = system_simple_spec(checked.prop) {
            check_feature(&checked, spec, &mut context)?;
        }
    }
    // The indices seen per prefix, prefixes in first-seen order (IM checks them so).
    let mut indices: Vec<(&str, Vec<i128>)> = Vec::with_capacity(2);
    for item in &items {
        let ItemRef::Plain(feature) = item else {
            continue;
        };
        let Some((prefix, tail)) = feature.prop.split_once('.') else {
            continue;
        };
        if prefix != "net_interface" && prefix != "disk" {
            continue;
        }
        let (number, suffix) = match tail.split_once('.') {
            Some((number, suffix)) => (number, Some(suffix)),
            None => (tail, None),
        };
        let Some(index) = parse_index(number) else {
            return Err(fail(
                "Invalid property name; expected an index.",
                &feature.location,
            ));
        };
        let Some(suffix) = suffix else { continue };
        let spec = if prefix == "disk" {
            disk_spec(suffix)
        } else {
            net_interface_spec(suffix)
        };
        let Some(spec) = spec else { continue };
        check_feature(&Checked::from_feature(feature), spec, &mut context)?;
        match indices.iter_mut().find(|(p, _)| *p == prefix) {
            Some((_, numbers)) => numbers.push(index),
            None => indices.push((prefix, vec![index])),
        }
    }
    for (prefix, numbers) in &mut indices {
        numbers.sort_unstable();
        numbers.dedup();
        let contiguous = numbers.first() == Some(&0)
            && numbers.last().copied() == i128::try_from(numbers.len()).ok().map(|n| n - 1);
        if !contiguous {
            return Err(RadlError::new(
                ErrorKind::Check,
                format!("Invalid indices values in properties '{prefix}'"),
            ));
        }
    }
    let interfaces = indices
        .iter()
        .find(|(prefix, _)| *prefix == "net_interface")
        .map_or(0, |(_, numbers)| numbers.len());
    if context.connections.len() != interfaces {
        return Err(RadlError::new(
            ErrorKind::Check,
            "Some net_interface does not have a connection",
        ));
    }
    Ok(())
}

fn check_system<'a>(system: &'a System, names: &'a Names<'a>) -> Result<(), RadlError> {
    check_system_features(&system.features, names)
        .map_err(|error| error.at(system.location.position))
}

fn simple_value<'a>(features: &'a Features, prop: &str) -> Option<&'a Value> {
    match features.slot(prop)? {
        Slot::Single(feature) => Some(&feature.value),
        Slot::Interval(low, high) => low.as_ref().or(high.as_ref()).map(|f| &f.value),
        _ => None,
    }
}

fn is_set(value: Option<&Value>) -> bool {
    match value {
        None => false,
        Some(Value::Str(text)) => !text.is_empty(),
        Some(Value::Num(number)) => number.is_truthy(),
        Some(Value::List(items)) => !items.is_empty(),
        Some(Value::Group(group)) => !group.is_empty(),
    }
}

fn check_ansible<'a>(host: &'a Ansible, names: &'a Names<'a>) -> Result<(), RadlError> {
    let mut context = Context {
        names,
        connections: Vec::new(),
    };
    for item in host.features.items() {
        let checked = Checked::from_item(item);
        if matches!(
            checked.prop,
            "host" | "credentials.username" | "credentials.password" | "credentials.private_key"
        ) {
            check_feature(&checked, str_spec(Rule::Any), &mut context)?;
        }
    }
    let value = |prop| simple_value(&host.features, prop);
    if !is_set(value("host")) {
        return Err(fail("Ansible host must have a host", &host.location));
    }
    if !is_set(value("credentials.username")) {
        return Err(fail(
            "Ansible host must have a credentials.username",
            &host.location,
        ));
    }
    if !is_set(value("credentials.password")) && !is_set(value("credentials.private_key")) {
        return Err(fail(
            "Ansible host must have a credentials.password or credentials.private_key",
            &host.location,
        ));
    }
    Ok(())
}

impl Radl {
    /// IM's `RADL.check()`: the first problem, with IM's message.
    pub fn check(&self) -> Result<(), RadlError> {
        let names = Names::new(self);
        for network in &self.networks {
            let mut context = Context {
                names: &names,
                connections: Vec::new(),
            };
            for item in network.features.items() {
                let checked = Checked::from_item(item);
                let spec = match checked.prop {
                    "outbound" => str_spec(Rule::OneOf(&["YES", "NO"])),
                    "outports" => str_spec(Rule::Outports),
                    "provider_id" => str_spec(Rule::Any),
                    _ => continue,
                };
                check_feature(&checked, spec, &mut context)?;
            }
        }
        for host in &self.ansible_hosts {
            check_ansible(host, &names)?;
        }
        for system in &self.systems {
            check_system(system, &names)?;
        }
        for deploy in &self.deploys {
            if !names.systems.contains(deploy.system.as_str()) {
                return Err(fail("Invalid system id in the deploy.", &deploy.location));
            }
            if deploy.count.is_negative() {
                return Err(fail(
                    "Invalid number of virtual machines to deploy.",
                    &deploy.location,
                ));
            }
        }
        for configure in &self.configures {
            if let Some(recipe) = configure.recipe.as_ref().filter(|_| !configure.reference) {
                validate_recipe(recipe).map_err(|reason| {
                    fail(
                        &format!("Invalid YAML code: {reason}."),
                        &configure.location,
                    )
                })?;
            }
        }
        let block = &self.contextualize;
        if !block.max_time.is_int() || block.max_time.is_negative() {
            // IM checks the document's merged block, which has no line.
            return Err(
                RadlError::new(ErrorKind::Check, "Invalid 'max time' in 'contextualize'")
                    .at(block.location.position),
            );
        }
        for item in block.items.iter().flat_map(IndexMap::values) {
            if !names.systems.contains(item.system.as_str()) {
                return Err(fail(
                    &format!("Invalid system id '{}'", item.system),
                    &item.location,
                ));
            }
            if !names.configures.contains(item.configure.as_str()) {
                return Err(fail(
                    &format!("Invalid configure id '{}'", item.configure),
                    &item.location,
                ));
            }
        }
        if has_duplicates(self.systems.iter().map(|s| s.name.as_str())) {
            return Err(RadlError::new(
                ErrorKind::Check,
                "Some System name duplicated.",
            ));
        }
        if has_duplicates(self.networks.iter().map(|n| n.id.as_str())) {
            return Err(RadlError::new(
                ErrorKind::Check,
                "Some Network name duplicated.",
            ));
        }
        Ok(())
    }
}

fn has_duplicates<'a>(names: impl Iterator<Item = &'a str>) -> bool {
    let mut sorted: Vec<&str> = names.collect();
    sorted.sort_unstable();
    sorted.windows(2).any(|pair| pair[0] == pair[1])
}

/// Python's `value.upper() in allowed` (`allowed` is upper case ASCII).
fn is_one_of(value: &str, allowed: &[&str]) -> bool {
    if value.is_ascii() {
        allowed.iter().any(|a| a.eq_ignore_ascii_case(value))
    } else {
        allowed.contains(&value.to_uppercase().as_str())
    }
}

/// Python's `int()` of an index, saturated to `i128` (only the order of indices matters).
fn parse_index(text: &str) -> Option<i128> {
    if !text.is_empty() && text.len() <= 18 && text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse::<i128>().ok();
    }
    let value = parse_python_int(text)?;
    Some(
        i128::try_from(&value).unwrap_or(if value.sign() == num_bigint::Sign::Minus {
            i128::MIN
        } else {
            i128::MAX
        }),
    )
}
