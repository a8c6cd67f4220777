//! IM's canonical RADL text, byte for byte (the `__str__` methods of `radl.radl`).
//!
//! The layout is IM's, quirks included: `network x (  )` with two spaces, a trailing
//! space on references (`system x `), a blank line after each system, strings printed
//! between quotes without escaping, numbers with their unit as written, recipes wrapped
//! in newlines, contextualize items with trailing spaces, no final newline.

use std::fmt::{self, Display, Formatter, Write};

use super::ast::{
    Ansible, Configure, Contextualize, ContextualizeItem, Deploy, Description, Feature, Network,
    Operator, Radl, Soft, System, Value,
};
use super::features::{Features, ItemRef};

impl Display for Feature {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let (prop, op) = (&self.prop, self.operator.as_str());
        match &self.value {
            Value::List(items) => write!(f, "{prop} {op} ['{}']", items.join("','")),
            value if self.operator == Operator::Contains => {
                write!(f, "{prop} {op} ({})", RawValue(value))
            }
            Value::Str(text) => write!(f, "{prop} {op} '{text}'"),
            value => write!(f, "{prop} {op} {}{}", RawValue(value), self.unit),
        }
    }
}

/// A value as Python's `str()` shows it (strings without quotes).
struct RawValue<'a>(&'a Value);

impl Display for RawValue<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self.0 {
            Value::Str(text) => f.write_str(text),
            Value::Num(number) => write!(f, "{number}"),
            Value::List(items) => {
                let quoted: Vec<String> =
                    items.iter().map(|i| super::pytext::repr_str(i)).collect();
                write!(f, "[{}]", quoted.join(", "))
            }
            Value::Group(group) => write!(f, "{group}"),
        }
    }
}

impl Display for Soft {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "soft {} ( {} )", self.weight, self.features)
    }
}

/// Features joined with `" and\n"`.
impl Display for Features {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        for (index, item) in self.items().into_iter().enumerate() {
            if index > 0 {
                f.write_str(" and\n")?;
            }
            match item {
                ItemRef::Plain(feature) => write!(f, "{feature}")?,
                ItemRef::Soft(soft) => write!(f, "{soft}")?,
            }
        }
        Ok(())
    }
}

impl Display for Network {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        if self.reference {
            write!(f, "network {} ", self.id)
        } else {
            write!(f, "network {} ( {} )", self.id, self.features)
        }
    }
}

impl Display for System {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        if self.reference {
            write!(f, "system {} ", self.name)
        } else {
            write!(f, "system {} (\n{}\n)\n", self.name, self.features)
        }
    }
}

impl Display for Ansible {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "ansible {} ({})", self.id, self.features)
    }
}

impl Display for Description {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "description {} ({})", self.id, self.features)
    }
}

impl Display for Configure {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match (&self.recipe, self.reference) {
            (_, true) => write!(f, "configure {}", self.name),
            (None, false) => write!(f, "configure {} ()", self.name),
            (Some(recipe), false) => {
                write!(f, "configure {} (\n@begin\n{recipe}\n@end\n)", self.name)
            }
        }
    }
}

impl Display for Deploy {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "deploy {} {}", self.system, self.count)?;
        match &self.cloud {
            Some(cloud) if !cloud.is_empty() => write!(f, " {cloud}"),
            _ => Ok(()),
        }
    }
}

impl Display for ContextualizeItem {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "system {} configure {} ", self.system, self.configure)?;
        if self.step.is_truthy() {
            write!(f, "step {}", self.step)?;
        }
        f.write_char(' ')?;
        match &self.tool {
            Some(tool) if !tool.is_empty() => write!(f, "with {tool}"),
            _ => Ok(()),
        }
    }
}

impl Display for Contextualize {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let items = self.items.as_ref().filter(|items| !items.is_empty());
        let options = self.options.as_ref().filter(|options| !options.is_empty());
        if self.is_absent() {
            return Ok(());
        }
        if items.is_none() && options.is_none() {
            return f.write_str("contextualize ()");
        }
        f.write_str("contextualize ")?;
        if self.max_time.is_truthy() {
            write!(f, "{}", self.max_time)?;
        }
        f.write_str(" (\n")?;
        if let Some(options) = options {
            for option in options.values() {
                writeln!(f, "option {option}")?;
            }
        }
        if let Some(items) = items {
            for (index, item) in items.values().enumerate() {
                if index > 0 {
                    f.write_char('\n')?;
                }
                write!(f, "{item}")?;
            }
        }
        f.write_str("\n)")
    }
}

/// The whole document: description, then ansible hosts, networks, systems, configures,
/// the contextualize block (an empty line when absent) and deploys, joined by newlines.
impl Display for Radl {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        if let Some(description) = &self.description {
            writeln!(f, "{description}")?;
        }
        let mut first = true;
        let mut separate = |f: &mut Formatter<'_>| -> fmt::Result {
            if !std::mem::take(&mut first) {
                f.write_char('\n')?;
            }
            Ok(())
        };
        for host in &self.ansible_hosts {
            separate(f)?;
            write!(f, "{host}")?;
        }
        for network in &self.networks {
            separate(f)?;
            write!(f, "{network}")?;
        }
        for system in &self.systems {
            separate(f)?;
            write!(f, "{system}")?;
        }
        for configure in &self.configures {
            separate(f)?;
            write!(f, "{configure}")?;
        }
        separate(f)?;
        write!(f, "{}", self.contextualize)?;
        for deploy in &self.deploys {
            separate(f)?;
            write!(f, "{deploy}")?;
        }
        Ok(())
    }
}

impl Radl {
    /// IM's text form of the document (`str(radl)`).
    pub fn to_text(&self) -> String {
        self.to_string()
    }

    /// The text IM returns for a VM (`GET /infrastructures/{id}/vms/{vm}`): only the
    /// networks and the systems, which ends with `)\n\n` for a VM with features.
    pub fn to_vm_info_text(&self) -> String {
        let view = Radl {
            networks: self.networks.clone(),
            systems: self.systems.clone(),
            ..Radl::default()
        };
        view.to_string()
    }
}
