//! A VM's RADL, rebuilt from the facts its events recorded, the way IM's VM
//! object would hold it: the system it was launched from, what the cloud set, the
//! generated password, later alterations, and on each read its state and DNS names.

use infralog_events::domain::{Comparison, FactValue, FeatureFact};

use crate::projections::{InfrastructureView, VmView};
use crate::radl::merge::{new_vm, refresh_vm, DEFAULT_VM_NAME};
use crate::radl::{self, Feature, Number, Operator, Radl, System, Value};

/// The VM's whole document (networks, its system, contextualize, deploys), as IM's
/// `vm.info`. `None` if the stored RADL no longer names the VM's system.
pub fn vm_document(view: &InfrastructureView, vm: &VmView) -> Option<Radl> {
    let base = radl::parse(vm.imported_info.as_deref().unwrap_or(&vm.launch_radl)).ok()?;
    let mut document = new_vm(&base, &vm.system)?;
    let system = document.systems.first_mut()?;
    let mut fact_lists = vm.facts.iter();
    if let Some(launch) = fact_lists.next() {
        for fact in launch.iter() {
            apply_fact(system, fact);
        }
    }
    if let Some(password) = &vm.new_password {
        system
            .features
            .set_string("disk.0.os.credentials.new.password", password);
    }
    for facts in fact_lists {
        for fact in facts.iter() {
            apply_fact(system, fact);
        }
    }
    let status = vm.status(view.configured);
    refresh_vm(system, status.as_str(), u64::from(vm.id.0), DEFAULT_VM_NAME);
    Some(document)
}

fn operator(comparison: Comparison) -> Operator {
    match comparison {
        Comparison::Eq => Operator::Eq,
        Comparison::Ge => Operator::Ge,
        Comparison::Le => Operator::Le,
        Comparison::Gt => Operator::Gt,
        Comparison::Lt => Operator::Lt,
    }
}

fn parse_number(literal: &str) -> Option<Number> {
    literal
        .parse::<i64>()
        .map(Number::Int)
        .ok()
        .or_else(|| literal.parse::<f64>().ok().map(Number::Float))
}

/// Sets one recorded fact on a system: in place, never duplicated.
pub fn apply_fact(system: &mut System, fact: &FeatureFact) {
    let (value, unit) = match &fact.value {
        FactValue::Text(text) => (Value::Str(text.clone()), ""),
        FactValue::Number { literal, unit } => match parse_number(literal) {
            Some(number) => (Value::Num(number), unit.as_str()),
            None => return,
        },
    };
    match fact.comparison {
        None => system.features.set_value(&fact.name, value, unit),
        Some(comparison) => {
            let mut feature = Feature::new(fact.name.clone(), operator(comparison), value);
            feature.unit = unit.to_string();
            system.features.replace(feature);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facts_replace_in_place_and_keep_comparisons_when_asked() {
        let doc =
            radl::parse("system s (\ncpu.count >= 1 and\nmemory.size >= 512m\n)").expect("parses");
        let mut system = doc.systems[0].clone();
        apply_fact(
            &mut system,
            &FeatureFact {
                name: "cpu.count".into(),
                comparison: None,
                value: FactValue::Number {
                    literal: "2".into(),
                    unit: String::new(),
                },
            },
        );
        apply_fact(
            &mut system,
            &FeatureFact {
                name: "memory.size".into(),
                comparison: Some(Comparison::Eq),
                value: FactValue::Number {
                    literal: "2048".into(),
                    unit: "M".into(),
                },
            },
        );
        apply_fact(&mut system, &FeatureFact::text("provider.type", "Dummy"));
        let printed = Radl {
            systems: vec![system],
            ..Radl::default()
        }
        .to_text();
        assert_eq!(
            printed,
            "system s (\ncpu.count >= 2 and\nmemory.size = 2048M and\nprovider.type = 'Dummy'\n)\n\n"
        );
    }
}
