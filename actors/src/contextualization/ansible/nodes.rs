//! The VMs as a run sees them. A VM's system is the RADL's system with what its cloud
//! set on top (IM's VM RADL); its names, addresses and master role are read from it as
//! IM's `VirtualMachine` and `InfrastructureInfo` read them.

use infralog_events::domain::{Comparison, FactValue, FeatureFact};
use infralog_radl::merge::DEFAULT_VM_NAME;
use infralog_radl::{Feature, Number, Operator, PropertyValue, Radl, System, Value};

use super::{JobVm, PlanError};

/// IM's `Config.DEFAULT_DOMAIN`.
pub(crate) const DEFAULT_DOMAIN: &str = "localdomain";

/// One VM of the run.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    /// The VM as the job gave it.
    pub vm: JobVm,
    /// Its system: the RADL's, with its facts applied.
    pub system: System,
    /// Its host name in the inventory (its hostname when that is unique and plain).
    pub host: String,
    /// IM's `IM_NODE_HOSTNAME`: the requested name of interface 0, or `vnode-N`.
    pub hostname: String,
    /// The domain of that name (`localdomain` when the name has none).
    pub domain: String,
    /// The first IP on a public network.
    pub public_ip: Option<String>,
    /// The first IP on a private network.
    pub private_ip: Option<String>,
    /// False when its system has an empty `configure <system> ()` (IM leaves it out).
    pub contextualize: bool,
}

impl Node {
    /// The address IM uses for the VM: the public IP, else the private one.
    pub fn ip(&self) -> Option<&str> {
        self.public_ip.as_deref().or(self.private_ip.as_deref())
    }

    /// IM's `getOS()`: `disk.0.os.name`, `linux` when unset.
    pub fn os(&self) -> String {
        self.system
            .features
            .string("disk.0.os.name")
            .filter(|os| !os.is_empty())
            .unwrap_or("linux")
            .to_lowercase()
    }

    /// Whether the VM runs Windows (reached by WinRM, left out of `allnowindows`).
    pub fn is_windows(&self) -> bool {
        self.os() == "windows"
    }

    /// Whether this run configures the VM.
    pub fn configured_here(&self) -> bool {
        self.vm.configure && self.contextualize
    }
}

/// The VMs of a job, in the job's order, with unique inventory names.
pub(crate) fn nodes(radl: &Radl, vms: &[JobVm]) -> Result<Vec<Node>, PlanError> {
    let mut nodes: Vec<Node> = Vec::with_capacity(vms.len());
    for vm in vms {
        let mut system =
            radl.system(&vm.system)
                .cloned()
                .ok_or_else(|| PlanError::UnknownSystem {
                    vm: vm.vm_id,
                    system: vm.system.clone(),
                })?;
        for fact in &vm.facts {
            apply_fact(&mut system, fact);
        }
        let num = vm.vm_id.0;
        let (hostname, domain) = requested_name(&system, 0, num, Some(DEFAULT_VM_NAME))
            .unwrap_or_else(|| {
                (
                    DEFAULT_VM_NAME.replace("#N#", &num.to_string()),
                    DEFAULT_DOMAIN.to_owned(),
                )
            });
        let taken = |name: &str| nodes.iter().any(|n| n.host == name);
        let mut host = hostname.clone();
        if !plain_host_name(&host) || taken(&host) {
            host = format!("vnode_{num}");
            while taken(&host) {
                host.push('_');
            }
        }
        let contextualize = radl
            .configure(&vm.system)
            .is_none_or(|c| c.reference || c.recipe.is_some());
        nodes.push(Node {
            public_ip: ip_on(radl, &system, true),
            private_ip: ip_on(radl, &system, false),
            vm: vm.clone(),
            system,
            host,
            hostname,
            domain,
            contextualize,
        });
    }
    Ok(nodes)
}

/// Names Ansible reads as one host in a pattern (no `,`, `:`, `[`, `!`, `&`, `~`…).
fn plain_host_name(name: &str) -> bool {
    name.chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Sets one fact on a system in place, as the read side renders VM documents.
fn apply_fact(system: &mut System, fact: &FeatureFact) {
    let (value, unit) = match &fact.value {
        FactValue::Text(text) => (Value::Str(text.clone()), ""),
        FactValue::Number { literal, unit } => {
            let number = literal
                .parse::<i64>()
                .map(Number::Int)
                .ok()
                .or_else(|| literal.parse::<f64>().ok().map(Number::Float));
            match number {
                Some(number) => (Value::Num(number), unit.as_str()),
                None => return,
            }
        }
    };
    match fact.comparison {
        None => system.features.set_value(&fact.name, value, unit),
        Some(comparison) => {
            let operator = match comparison {
                Comparison::Eq => Operator::Eq,
                Comparison::Ge => Operator::Ge,
                Comparison::Le => Operator::Le,
                Comparison::Gt => Operator::Gt,
                Comparison::Lt => Operator::Lt,
            };
            let mut feature = Feature::new(fact.name.clone(), operator, value);
            feature.unit = unit.to_owned();
            system.features.replace(feature);
        }
    }
}

/// A non-empty string property.
pub(crate) fn text<'a>(system: &'a System, prop: &str) -> Option<&'a str> {
    system.features.string(prop).filter(|s| !s.is_empty())
}

/// radl's `replaceTemplateName`: `#N#` becomes the VM number, then the name splits at
/// its first dot into host and domain.
pub(crate) fn replace_template_name(full_name: &str, num: u32) -> (String, Option<String>) {
    let full = full_name.replace("#N#", &num.to_string());
    match full.split_once('.') {
        Some((name, domain)) => (name.to_owned(), Some(domain.to_owned())),
        None => (full, None),
    }
}

/// IM's `getRequestedNameIface(i, default_hostname, DEFAULT_DOMAIN)`: the
/// `net_interface.i.dns.0.name` (else `dns_name`) split into name and domain.
pub(crate) fn requested_name(
    system: &System,
    iface: usize,
    num: u32,
    default_hostname: Option<&str>,
) -> Option<(String, String)> {
    let full = text(system, &format!("net_interface.{iface}.dns.0.name"))
        .or_else(|| text(system, &format!("net_interface.{iface}.dns_name")));
    match full {
        Some(full) => {
            let (name, domain) = replace_template_name(full, num);
            Some((name, domain.unwrap_or_else(|| DEFAULT_DOMAIN.to_owned())))
        }
        None => default_hostname.map(|default| {
            let (name, _) = replace_template_name(default, num);
            (name, DEFAULT_DOMAIN.to_owned())
        }),
    }
}

/// radl's `getNumNetworkIfaces`: interfaces 0, 1, … while one has a connection.
pub(crate) fn iface_count(system: &System) -> usize {
    (0..)
        .take_while(|i| {
            system
                .features
                .has(&format!("net_interface.{i}.connection"))
        })
        .count()
}

/// radl's `getIfaceIP(i)`.
pub(crate) fn iface_ip(system: &System, iface: usize) -> Option<String> {
    text(system, &format!("net_interface.{iface}.ip")).map(str::to_owned)
}

/// radl's `getPublicIP`/`getPrivateIP`: the first interface IP whose network is
/// (or is not) public.
fn ip_on(radl: &Radl, system: &System, public: bool) -> Option<String> {
    (0..iface_count(system)).find_map(|i| {
        let connection = text(system, &format!("net_interface.{i}.connection"))?;
        let ip = iface_ip(system, i)?;
        let network = radl.network(connection)?;
        (network.is_public() == public).then_some(ip)
    })
}

/// Whether the system has an interface on a public network (`hasPublicNet`).
fn has_public_net(radl: &Radl, system: &System) -> bool {
    system
        .network_ids()
        .iter()
        .any(|id| radl.network(id).is_some_and(|n| n.is_public()))
}

/// `isConnectedWith`: both have a public IP, or they share a network.
fn connected(a: &Node, b: &Node) -> bool {
    if a.public_ip.is_some() && b.public_ip.is_some() {
        return true;
    }
    let theirs = b.system.network_ids();
    a.system.network_ids().iter().any(|id| theirs.contains(id))
}

/// IM's `select_vm_master`: among the contextualized Linux VMs on a public network, the
/// one connected with most VMs (the first on a tie). IM runs Ansible on it; we run it
/// from the server, so when none qualifies the first contextualized VM names the master
/// instead of failing the run.
pub(crate) fn master(radl: &Radl, nodes: &[Node]) -> Option<usize> {
    let mut best: Option<(usize, usize)> = None;
    for (index, node) in nodes.iter().enumerate() {
        if !(node.contextualize && node.os() == "linux" && has_public_net(radl, &node.system)) {
            continue;
        }
        let count = nodes.iter().filter(|other| connected(node, other)).count();
        if best.is_none_or(|(_, most)| count > most) {
            best = Some((index, count));
        }
    }
    best.map(|(index, _)| index)
        .or_else(|| nodes.iter().position(|n| n.contextualize))
}

/// The `name` and `version` of every `disk.0.applications` group of a system.
pub(crate) fn applications(system: &System) -> Vec<(String, Option<String>, Option<String>)> {
    let Some(PropertyValue::Groups(groups)) = system.features.value("disk.0.applications") else {
        return Vec::new();
    };
    groups
        .iter()
        .filter_map(|(_, group)| {
            let name = group.string("name")?.to_owned();
            let version = group.string("version").filter(|v| !v.is_empty());
            let path = group.string("path").filter(|v| !v.is_empty());
            Some((name, version.map(str::to_owned), path.map(str::to_owned)))
        })
        .collect()
}
