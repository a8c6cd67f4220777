//! A VM's RADL, rebuilt from the facts its events recorded, the way IM's VM
//! object would hold it: the system it was launched from, what the cloud set, the
//! generated password, later alterations, and on each read its state and DNS names.

use infralog_events::domain::{Comparison, FactValue, FeatureFact};

use actix_web::http::StatusCode;

use super::errors::{ApiError, Endpoint};
use crate::projections::{InfrastructureView, VmView};
use crate::radl::merge::{new_vm, refresh_vm, DEFAULT_VM_NAME};
use crate::radl::{self, Feature, Number, Operator, Radl, System, Value};

/// The infrastructure's stored RADL, parsed. Every document is checked to read back
/// before it is stored, but a log written by an older version may hold one that does
/// not: that is answered with a clear 409 naming what still works, never a 500. The
/// parser's message is not logged: it quotes the text, which may hold a password.
pub fn stored_radl(view: &InfrastructureView, endpoint: Endpoint) -> Result<Radl, ApiError> {
    radl::parse(&view.radl).map_err(|error| {
        tracing::warn!(
            inf = %view.id,
            at = ?error.position(),
            "the stored RADL of an infrastructure does not parse"
        );
        unreadable(endpoint, "the stored RADL of this infrastructure")
    })
}

/// The answer for a VM whose document cannot be rebuilt from what was stored.
pub fn unreadable_vm_radl(view: &InfrastructureView, vm: &VmView, endpoint: Endpoint) -> ApiError {
    tracing::warn!(inf = %view.id, vm = %vm.id, "the stored RADL of a VM does not parse");
    unreadable(endpoint, "the stored RADL of this VM")
}

fn unreadable(endpoint: Endpoint, what: &str) -> ApiError {
    ApiError::im(
        StatusCode::CONFLICT,
        format!(
            "{}{what} cannot be read back (it was recorded by an older version, which accepted a document that RADL text cannot hold); GET .../radl and .../data still answer, and the infrastructure can be destroyed",
            endpoint.prefix()
        ),
    )
}

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
