//! The document operations IM performs around its cloud connectors: resolving the
//! references of an add request, merging it into the stored document, building a VM's
//! document, the Dummy connector's decoration and alter, and reconfigure's merge.
//! Each follows the IM 2.0.0 function named in its documentation.

use rand::Rng;

use super::ast::{Feature, Operator, Radl, System, Value};
use super::document::{Aspect, IfPresent};
use super::error::{ErrorKind, RadlError};
use super::features::{Conflict, Item, NameKey, Slot};
use super::number::Number;
use super::yaml::validate_recipe;

/// The name prefix of the fake systems IM adds to pin a private network to a cloud.
pub const FAKE_SYSTEM_PREFIX: &str = "F0000__FAKE_SYSTEM__";

/// IM's default name for interface 0 of a VM (`DEFAULT_VM_NAME`).
pub const DEFAULT_VM_NAME: &str = "vnode-#N#";

fn unknown_reference(class: &str, id: &str) -> RadlError {
    RadlError::new(
        ErrorKind::UnknownReference,
        format!("Unknown reference in RADL to <class 'radl.radl.{class}'> '{id}'"),
    )
}

/// IM's `InfrastructureInfo.complete_radl`, first part: every bare reference of the
/// request (`network x`, `system x`, `configure x`) is replaced by the stored definition
/// (which moves it to the end of its list, as IM does), or the request is refused with
/// `Unknown reference in RADL to <class 'radl.radl.system'> 'x'`. Then, for each network
/// already pinned to a cloud (`private_networks`: network id → cloud id), a fake system
/// and a `deploy … 0 cloud` are added. Finally the request is checked.
pub fn resolve_references(
    request: &mut Radl,
    stored: &Radl,
    private_networks: &[(String, String)],
) -> Result<(), RadlError> {
    let mut replacements = Vec::new();
    for network in request.networks.iter().filter(|n| n.reference) {
        let found = stored
            .network(&network.id)
            .ok_or_else(|| unknown_reference("network", &network.id))?;
        replacements.push(Aspect::Network(found.clone()));
    }
    for system in request.systems.iter().filter(|s| s.reference) {
        let found = stored
            .system(&system.name)
            .ok_or_else(|| unknown_reference("system", &system.name))?;
        replacements.push(Aspect::System(found.clone()));
    }
    for configure in request.configures.iter().filter(|c| c.reference) {
        let found = stored
            .configure(&configure.name)
            .ok_or_else(|| unknown_reference("configure", &configure.name))?;
        replacements.push(Aspect::Configure(found.clone()));
    }
    for aspect in replacements {
        request.add(aspect, IfPresent::Replace)?;
    }
    let pinned: Vec<(String, String)> = request
        .networks
        .iter()
        .filter_map(|n| private_networks.iter().find(|(id, _)| *id == n.id).cloned())
        .collect();
    for (counter, (network, cloud)) in pinned.into_iter().enumerate() {
        let name = format!("{FAKE_SYSTEM_PREFIX}{counter}");
        let mut system = System::new(&name, Default::default());
        system
            .features
            .set_string("net_interface.0.connection", &network);
        request.add(Aspect::System(system), IfPresent::Error)?;
        request.add(
            Aspect::Deploy(super::ast::Deploy {
                system: name,
                count: Number::from(0),
                cloud: Some(cloud),
                location: Default::default(),
            }),
            IfPresent::Error,
        )?;
    }
    request.check()
}

/// IM's `InfrastructureInfo.update_radl`: merges an (already resolved) request into the
/// stored document. The description is replaced; networks and ansible hosts are added
/// only if new; systems and configures are added or replaced (moving to the end); the
/// contextualize blocks are merged; the deploys become the request's, if it has any.
/// If the result does not pass `check()`, the stored document is left unchanged.
pub fn update_stored(stored: &mut Radl, request: &Radl) -> Result<(), RadlError> {
    let mut merged = stored.clone();
    if let Some(description) = &request.description {
        merged.add(Aspect::Description(description.clone()), IfPresent::Replace)?;
    }
    for network in &request.networks {
        merged.add(Aspect::Network(network.clone()), IfPresent::Ignore)?;
    }
    for host in &request.ansible_hosts {
        merged.add(Aspect::Ansible(host.clone()), IfPresent::Ignore)?;
    }
    for configure in &request.configures {
        merged.add(Aspect::Configure(configure.clone()), IfPresent::Replace)?;
    }
    for system in &request.systems {
        merged.add(Aspect::System(system.clone()), IfPresent::Replace)?;
    }
    merged.contextualize.update(request.contextualize.clone());
    if !request.deploys.is_empty() {
        merged.deploys = request.deploys.clone();
    }
    merged.check()?;
    *stored = merged;
    Ok(())
}

/// The document IM stores for each VM of a deploy (`requested_radl`): the whole request
/// with only that system. `None` if the request has no such system.
pub fn vm_radl(request: &Radl, system: &str) -> Option<Radl> {
    let chosen = request.system(system)?.clone();
    Some(Radl {
        systems: vec![chosen],
        ..request.clone()
    })
}

/// The document of a new VM (IM's `VirtualMachine(…)`): [`vm_radl`] with
/// `state = 'pending'` set first, so that later decorations follow it.
pub fn new_vm(request: &Radl, system: &str) -> Option<Radl> {
    let mut vm = vm_radl(request, system)?;
    vm.systems
        .first_mut()?
        .features
        .set_string("state", "pending");
    Some(vm)
}

/// The Dummy connector's `concreteSystem` (applied to the system IM launches with, not
/// to the VM's document): a username is set if there is none.
pub fn dummy_concrete(system: &mut System) {
    if system
        .features
        .string("disk.0.os.credentials.username")
        .is_none_or(str::is_empty)
    {
        system
            .features
            .set_string("disk.0.os.credentials.username", "username");
    }
}

/// The Dummy connector's `launch` decoration of a VM's system.
pub fn dummy_launch(system: &mut System) {
    let features = &mut system.features;
    features.set_string("provider.type", "Dummy");
    features.set_string("net_interface.0.ip", "10.0.0.1");
    features.set_string("disk.0.os.credentials.username", "username");
    features.set_string("disk.0.os.credentials.password", "password");
}

/// After a successful launch IM gives a VM that has a password but no new one a random
/// 8-character `disk.0.os.credentials.new.password`.
pub fn set_new_password(system: &mut System, rng: &mut impl Rng) {
    let [_, password, _, _] = system.credentials(false);
    let [_, new_password, _, _] = system.credentials(true);
    if password.is_some_and(|p| !p.is_empty()) && new_password.is_none_or(str::is_empty) {
        const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        let text: String = (0..8)
            .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
            .collect();
        system
            .features
            .set_string("disk.0.os.credentials.new.password", &text);
    }
}

/// What IM does on every refresh of a VM: `state = '<state>'`, then the `#N#` of the
/// interfaces' DNS names replaced by the VM id, with `default_name` (IM's
/// [`DEFAULT_VM_NAME`]) for interface 0 when it has none (`VirtualMachine.update_status`
/// and `replace_dns_name`).
pub fn refresh_vm(system: &mut System, state: &str, vm_id: u64, default_name: &str) {
    system.features.set_string("state", state);
    let mut interface = 0;
    while let Some(connection) = system
        .features
        .string(&format!("net_interface.{interface}.connection"))
    {
        if connection.is_empty() {
            break;
        }
        let dns0 = format!("net_interface.{interface}.dns.0.name");
        let dns_name = format!("net_interface.{interface}.dns_name");
        let current = system.features.string(&dns0).filter(|n| !n.is_empty());
        let mut name = current
            .or_else(|| system.features.string(&dns_name))
            .map(str::to_owned);
        if interface == 0 && name.is_none() {
            name = Some(default_name.to_owned());
        }
        if let Some(name) = name.filter(|n| n.contains("#N#")) {
            let replaced = name.replace("#N#", &vm_id.to_string());
            system.features.set_string(&dns_name, &replaced);
            system.features.set_string(&dns0, &replaced);
        }
        interface += 1;
    }
}

/// The Dummy connector's `alterVM`: copies `cpu.count` and `memory.size` (as `= <n>M`,
/// decimal) from the request's first system. Unlike IM, a request without `cpu.count`
/// keeps the VM's, one without `memory.size` is refused with a reason, and the altered
/// `cpu.count` is printed once.
pub fn dummy_alter(vm_system: &mut System, request: &Radl) -> Result<(), RadlError> {
    let Some(requested) = request.systems.first() else {
        return Ok(());
    };
    let memory = requested.features.feature("memory.size").ok_or_else(|| {
        RadlError::new(
            ErrorKind::Operation,
            format!(
                "Incorrect RADL: system {} has no memory.size, which alter needs",
                requested.name
            ),
        )
    })?;
    let megabytes = match &memory.value {
        Value::Num(number) => number.convert(&memory.unit, "M"),
        _ => {
            return Err(RadlError::new(
                ErrorKind::Operation,
                "Incorrect RADL: memory.size is not a number",
            ))
        }
    }
    .map_err(|e| RadlError::new(ErrorKind::Operation, e.0))?;
    if let Some(Feature {
        value: Value::Num(cpus),
        unit,
        ..
    }) = requested.features.feature("cpu.count")
    {
        let cpus = cpus.convert(unit, "").unwrap_or_else(|_| cpus.clone());
        vm_system
            .features
            .set_value("cpu.count", Value::Num(cpus), "");
    }
    let memory = Feature::number("memory.size", Operator::Eq, megabytes, "M");
    vm_system
        .features
        .add(Item::Plain(memory), Conflict::Replace)
}

/// IM's `Reconfigure` merge into the stored document: each configure must be valid YAML
/// (`Error parsing YAML: …`) and is added or replaced; the contextualize block is
/// merged; for each stored system named in the request, new credentials
/// (`disk.0.os.credentials.new.*`) that differ are copied, and new applications replace
/// or join the existing ones (only when the system already lists applications, as in IM).
pub fn reconfigure(stored: &mut Radl, request: &Radl) -> Result<(), RadlError> {
    for configure in &request.configures {
        if let Some(recipe) = configure.recipe.as_ref().filter(|r| !r.is_empty()) {
            validate_recipe(recipe).map_err(|reason| {
                RadlError::new(ErrorKind::Check, format!("Error parsing YAML: {reason}"))
            })?;
        }
        stored.add(Aspect::Configure(configure.clone()), IfPresent::Replace)?;
    }
    stored.contextualize.update(request.contextualize.clone());
    for system in &mut stored.systems {
        let Some(new_system) = request.system(&system.name) else {
            continue;
        };
        let new_credentials = new_system.credentials(true);
        if new_credentials.iter().any(Option::is_some)
            && new_credentials != system.credentials(false)
        {
            let [_, password, public_key, private_key] =
                new_credentials.map(|c| c.map(str::to_owned));
            for (field, value) in [
                ("password", password),
                ("public_key", public_key),
                ("private_key", private_key),
            ] {
                if let Some(value) = value.filter(|v| !v.is_empty()) {
                    system
                        .features
                        .set_string(&format!("disk.0.os.credentials.new.{field}"), &value);
                }
            }
        }
        merge_applications(system, new_system);
    }
    Ok(())
}

fn base_name(key: &NameKey) -> String {
    let text = key.to_string();
    match text.find(',') {
        Some(comma) => text[..comma].to_owned(),
        None => text,
    }
}

fn merge_applications(system: &mut System, new_system: &System) {
    const APPS: &str = "disk.0.applications";
    let Some(Slot::Contains(new_apps)) = new_system.features.slot(APPS) else {
        return;
    };
    let new_apps = new_apps.clone().into_vec();
    let mut current = match system.features.slot(APPS) {
        Some(Slot::Contains(apps)) if !apps.is_empty() => apps.clone().into_vec(),
        _ => return,
    };
    for (name, app) in new_apps {
        let base = base_name(&name);
        current.retain(|(key, _)| base_name(key) != base);
        current.retain(|(key, _)| *key != name);
        current.push((name, app));
    }
    system
        .features
        .set_slot(APPS, Slot::Contains(current.into()));
}
