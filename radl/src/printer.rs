//! IM's canonical RADL text, byte for byte (the `__str__` methods of `radl.radl`).
//!
//! The layout is IM's, quirks included: `network x (  )` with two spaces, a trailing
//! space on references (`system x `), a blank line after each system, numbers with
//! their unit as written, recipes wrapped in newlines, contextualize items with
//! trailing spaces, no final newline. One deviation: a `'` inside a string is written
//! `\'` (IM writes it bare, and its own parser then cannot read the text back; we
//! store this text and read it again on every request).

use std::fmt::{self, Display, Formatter, Write};

use super::ast::{
    Ansible, Configure, Contextualize, ContextualizeItem, Deploy, Description, Feature, Network,
    Operator, Radl, Soft, System, Value,
};
use super::features::{Features, ItemRef};

/// Appends IM's text of each element to a `String` (faster than `fmt` machinery, which
/// matters at tens of thousands of documents per second); `Display` delegates here.
pub trait WriteText {
    /// Appends the text.
    fn write_text(&self, out: &mut String);
}

macro_rules! display_via_write_text {
    ($($type:ty),*) => {$(
        impl Display for $type {
            fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
                let mut out = String::new();
                self.write_text(&mut out);
                f.write_str(&out)
            }
        }
    )*};
}

display_via_write_text!(
    Feature,
    Soft,
    Features,
    Network,
    System,
    Ansible,
    Description,
    Configure,
    Deploy,
    ContextualizeItem,
    Contextualize,
    Radl
);

fn push_number(out: &mut String, number: &super::number::Number) {
    match number {
        super::number::Number::Int(value) => {
            let _ = write!(out, "{value}");
        }
        other => {
            let _ = write!(out, "{other}");
        }
    }
}

/// A string's body between quotes: the lexer reads `\'` as a quote.
fn push_escaped(out: &mut String, text: &str) {
    if text.contains('\'') {
        out.push_str(&text.replace('\'', "\\'"));
    } else {
        out.push_str(text);
    }
}

/// A value as Python's `str()` shows it (strings without quotes).
fn push_raw_value(out: &mut String, value: &Value) {
    match value {
        Value::Str(text) => out.push_str(text),
        Value::Num(number) => push_number(out, number),
        Value::List(items) => {
            let quoted: Vec<String> = items.iter().map(|i| super::pytext::repr_str(i)).collect();
            out.push('[');
            out.push_str(&quoted.join(", "));
            out.push(']');
        }
        Value::Group(group) => group.write_text(out),
    }
}

impl WriteText for Feature {
    fn write_text(&self, out: &mut String) {
        out.push_str(&self.prop);
        out.push(' ');
        out.push_str(self.operator.as_str());
        out.push(' ');
        match &self.value {
            Value::List(items) => {
                out.push_str("['");
                for (index, item) in items.iter().enumerate() {
                    if index > 0 {
                        out.push_str("','");
                    }
                    push_escaped(out, item);
                }
                out.push_str("']");
            }
            value if self.operator == Operator::Contains => {
                out.push('(');
                push_raw_value(out, value);
                out.push(')');
            }
            Value::Str(text) => {
                out.push('\'');
                push_escaped(out, text);
                out.push('\'');
            }
            value => {
                push_raw_value(out, value);
                out.push_str(&self.unit);
            }
        }
    }
}

impl WriteText for Soft {
    fn write_text(&self, out: &mut String) {
        out.push_str("soft ");
        push_number(out, &self.weight);
        out.push_str(" ( ");
        self.features.write_text(out);
        out.push_str(" )");
    }
}

/// Features joined with `" and\n"`.
impl WriteText for Features {
    fn write_text(&self, out: &mut String) {
        for (index, item) in self.items().into_iter().enumerate() {
            if index > 0 {
                out.push_str(" and\n");
            }
            match item {
                ItemRef::Plain(feature) => feature.write_text(out),
                ItemRef::Soft(soft) => soft.write_text(out),
            }
        }
    }
}

impl WriteText for Network {
    fn write_text(&self, out: &mut String) {
        out.push_str("network ");
        out.push_str(&self.id);
        if self.reference {
            out.push(' ');
        } else {
            out.push_str(" ( ");
            self.features.write_text(out);
            out.push_str(" )");
        }
    }
}

impl WriteText for System {
    fn write_text(&self, out: &mut String) {
        out.push_str("system ");
        out.push_str(&self.name);
        if self.reference {
            out.push(' ');
        } else {
            out.push_str(" (\n");
            self.features.write_text(out);
            out.push_str("\n)\n");
        }
    }
}

impl WriteText for Ansible {
    fn write_text(&self, out: &mut String) {
        out.push_str("ansible ");
        out.push_str(&self.id);
        out.push_str(" (");
        self.features.write_text(out);
        out.push(')');
    }
}

impl WriteText for Description {
    fn write_text(&self, out: &mut String) {
        out.push_str("description ");
        out.push_str(&self.id);
        out.push_str(" (");
        self.features.write_text(out);
        out.push(')');
    }
}

impl WriteText for Configure {
    fn write_text(&self, out: &mut String) {
        out.push_str("configure ");
        out.push_str(&self.name);
        match (&self.recipe, self.reference) {
            (_, true) => {}
            (None, false) => out.push_str(" ()"),
            (Some(recipe), false) => {
                out.push_str(" (\n@begin\n");
                out.push_str(recipe);
                out.push_str("\n@end\n)");
            }
        }
    }
}

impl WriteText for Deploy {
    fn write_text(&self, out: &mut String) {
        out.push_str("deploy ");
        out.push_str(&self.system);
        out.push(' ');
        push_number(out, &self.count);
        if let Some(cloud) = self.cloud.as_ref().filter(|c| !c.is_empty()) {
            out.push(' ');
            out.push_str(cloud);
        }
    }
}

impl WriteText for ContextualizeItem {
    fn write_text(&self, out: &mut String) {
        out.push_str("system ");
        out.push_str(&self.system);
        out.push_str(" configure ");
        out.push_str(&self.configure);
        out.push(' ');
        if self.step.is_truthy() {
            out.push_str("step ");
            push_number(out, &self.step);
        }
        out.push(' ');
        if let Some(tool) = self.tool.as_ref().filter(|t| !t.is_empty()) {
            out.push_str("with ");
            out.push_str(tool);
        }
    }
}

impl WriteText for Contextualize {
    fn write_text(&self, out: &mut String) {
        let items = self.items.as_ref().filter(|items| !items.is_empty());
        let options = self.options.as_ref().filter(|options| !options.is_empty());
        if self.is_absent() {
            return;
        }
        if items.is_none() && options.is_none() {
            out.push_str("contextualize ()");
            return;
        }
        out.push_str("contextualize ");
        if self.max_time.is_truthy() {
            push_number(out, &self.max_time);
        }
        out.push_str(" (\n");
        for option in options.into_iter().flat_map(|o| o.values()) {
            out.push_str("option ");
            option.write_text(out);
            out.push('\n');
        }
        for (index, item) in items.into_iter().flat_map(|i| i.values()).enumerate() {
            if index > 0 {
                out.push('\n');
            }
            item.write_text(out);
        }
        out.push_str("\n)");
    }
}

/// The whole document: description, then ansible hosts, networks, systems, configures,
/// the contextualize block (an empty line when absent) and deploys, joined by newlines.
impl WriteText for Radl {
    fn write_text(&self, out: &mut String) {
        if let Some(description) = &self.description {
            description.write_text(out);
            out.push('\n');
        }
        let mut first = true;
        let mut separate = |out: &mut String| {
            if !std::mem::take(&mut first) {
                out.push('\n');
            }
        };
        for host in &self.ansible_hosts {
            separate(out);
            host.write_text(out);
        }
        for network in &self.networks {
            separate(out);
            network.write_text(out);
        }
        for system in &self.systems {
            separate(out);
            system.write_text(out);
        }
        for configure in &self.configures {
            separate(out);
            configure.write_text(out);
        }
        separate(out);
        self.contextualize.write_text(out);
        for deploy in &self.deploys {
            separate(out);
            deploy.write_text(out);
        }
    }
}

impl Radl {
    /// IM's text form of the document (`str(radl)`).
    pub fn to_text(&self) -> String {
        let mut out = String::with_capacity(1024);
        self.write_text(&mut out);
        out
    }

    /// The text IM returns for a VM (`GET /infrastructures/{id}/vms/{vm}`): only the
    /// networks and the systems, which ends with `)\n\n` for a VM with features.
    pub fn to_vm_info_text(&self) -> String {
        let view = Radl {
            networks: self.networks.clone(),
            systems: self.systems.clone(),
            ..Radl::default()
        };
        view.to_text()
    }
}
