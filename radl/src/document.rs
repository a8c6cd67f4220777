//! Adding elements to a document (IM's `RADL.add`) and finding them again.

use super::ast::{Ansible, Configure, Contextualize, Deploy, Description, Network, Radl, System};
use super::error::{ErrorKind, RadlError};
use super::number::Number;

/// One top-level element of a document.
#[derive(Debug, Clone, PartialEq)]
pub enum Aspect {
    /// A `network` element.
    Network(Network),
    /// A `system` element.
    System(System),
    /// An `ansible` host.
    Ansible(Ansible),
    /// A `configure` recipe.
    Configure(Configure),
    /// A `deploy` line.
    Deploy(Deploy),
    /// A `contextualize` block.
    Contextualize(Contextualize),
    /// The `description` element.
    Description(Description),
}

/// What [`Radl::add`] does when an element with the same id exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IfPresent {
    /// Fail with `Aspect with the same id was found.` (what parsing does).
    Error,
    /// Remove the old element and append the new one at the end (IM's `"replace"`).
    Replace,
    /// Keep the old element and drop the new one.
    Ignore,
}

/// Builds a document as IM's parsers do (`RADL.add` with duplicates as errors), finding
/// duplicates through a set so that a document with many elements reads in linear time.
#[derive(Default)]
pub(crate) struct Builder {
    radl: Radl,
    seen: std::collections::HashSet<(u8, String), foldhash::fast::RandomState>,
}

impl Builder {
    /// Adds one element; a second network, system, ansible host or configure with the
    /// same id fails with `Aspect with the same id was found.`.
    pub(crate) fn add(&mut self, aspect: Aspect) -> Result<(), RadlError> {
        let key = match &aspect {
            Aspect::Network(n) => (0, &n.id),
            Aspect::System(s) => (1, &s.name),
            Aspect::Ansible(a) => (2, &a.id),
            Aspect::Configure(c) => (3, &c.name),
            _ => return self.radl.add(aspect, IfPresent::Error).map(|_| ()),
        };
        if !self.seen.insert((key.0, key.1.clone())) {
            return Err(duplicate());
        }
        match aspect {
            Aspect::Network(n) => self.radl.networks.push(n),
            Aspect::System(s) => self.radl.systems.push(s),
            Aspect::Ansible(a) => self.radl.ansible_hosts.push(a),
            Aspect::Configure(c) => self.radl.configures.push(c),
            _ => {}
        }
        Ok(())
    }

    /// The document built.
    pub(crate) fn finish(self) -> Radl {
        self.radl
    }
}

fn duplicate() -> RadlError {
    RadlError::new(ErrorKind::Semantic, "Aspect with the same id was found.")
}

/// Adds to a list keyed by id; `true` if the element was added.
fn add_keyed<T>(
    list: &mut Vec<T>,
    item: T,
    id: impl Fn(&T) -> &str,
    if_present: IfPresent,
) -> Result<bool, RadlError> {
    match list.iter().position(|old| id(old) == id(&item)) {
        None => {
            list.push(item);
            Ok(true)
        }
        Some(index) => match if_present {
            IfPresent::Error => Err(duplicate()),
            IfPresent::Ignore => Ok(false),
            IfPresent::Replace => {
                list.remove(index);
                list.push(item);
                Ok(true)
            }
        },
    }
}

impl Radl {
    /// Adds an element (IM's `RADL.add`). Contextualize blocks are merged, deploys are
    /// always appended, descriptions and keyed elements follow `if_present`. Returns
    /// whether the element was added.
    pub fn add(&mut self, aspect: Aspect, if_present: IfPresent) -> Result<bool, RadlError> {
        match aspect {
            Aspect::Contextualize(block) => {
                self.contextualize.update(block);
                Ok(true)
            }
            Aspect::Description(description) => match (&self.description, if_present) {
                (None, _) | (Some(_), IfPresent::Replace) => {
                    self.description = Some(description);
                    Ok(true)
                }
                (Some(_), IfPresent::Ignore) => Ok(false),
                (Some(_), IfPresent::Error) => Err(RadlError::new(
                    ErrorKind::Semantic,
                    "Description can only be defined once.",
                )),
            },
            Aspect::Deploy(deploy) => {
                self.deploys.push(deploy);
                Ok(true)
            }
            Aspect::Network(network) => {
                add_keyed(&mut self.networks, network, |n| &n.id, if_present)
            }
            Aspect::System(system) => add_keyed(&mut self.systems, system, |s| &s.name, if_present),
            Aspect::Ansible(host) => {
                add_keyed(&mut self.ansible_hosts, host, |a| &a.id, if_present)
            }
            Aspect::Configure(configure) => {
                add_keyed(&mut self.configures, configure, |c| &c.name, if_present)
            }
        }
    }

    /// The system with that name (references included).
    pub fn system(&self, name: &str) -> Option<&System> {
        self.systems.iter().find(|s| s.name == name)
    }

    /// The system with that name, mutable.
    pub fn system_mut(&mut self, name: &str) -> Option<&mut System> {
        self.systems.iter_mut().find(|s| s.name == name)
    }

    /// The network with that id (references included).
    pub fn network(&self, id: &str) -> Option<&Network> {
        self.networks.iter().find(|n| n.id == id)
    }

    /// The configure with that name (references included).
    pub fn configure(&self, name: &str) -> Option<&Configure> {
        self.configures.iter().find(|c| c.name == name)
    }

    /// The ansible host with that id.
    pub fn ansible_host(&self, id: &str) -> Option<&Ansible> {
        self.ansible_hosts.iter().find(|a| a.id == id)
    }

    /// The first deploy of that system (IM's `get_deploy_by_id`).
    pub fn deploy_of(&self, system: &str) -> Option<&Deploy> {
        self.deploys.iter().find(|d| d.system == system)
    }
}

impl super::ast::Deploy {
    /// The number of VMs to launch, when it is a non-negative integer (IM also reads
    /// floats here; `check()` only refuses negatives).
    pub fn vm_count(&self) -> Option<u64> {
        self.count.as_i64().and_then(|n| u64::try_from(n).ok())
    }
}

impl Configure {
    /// `configure name ()`: defined without a recipe, which disables contextualization
    /// for the system of that name.
    pub fn is_empty(&self) -> bool {
        !self.reference && self.recipe.is_none()
    }
}

impl Contextualize {
    /// Merges another block into this one (IM's `contextualize.update`): the larger max
    /// time wins, items and options are added or replaced by key.
    pub fn update(&mut self, other: Contextualize) {
        if matches!(
            other.max_time.py_cmp(&self.max_time),
            Some(std::cmp::Ordering::Greater)
        ) {
            self.max_time = other.max_time;
        }
        if let Some(items) = other.items {
            match &mut self.items {
                Some(mine) => mine.extend(items),
                None => self.items = Some(items),
            }
        }
        if let Some(options) = other.options {
            match &mut self.options {
                Some(mine) => mine.extend(options),
                None => self.options = Some(options),
            }
        }
        if self.location.im_line.is_none() {
            self.location = other.location;
        }
    }

    /// The maximum time as seconds, when it is a non-negative integer.
    pub fn max_time_seconds(&self) -> Option<u64> {
        self.max_time.as_i64().and_then(|n| u64::try_from(n).ok())
    }
}

impl Default for Number {
    fn default() -> Self {
        Number::from(0)
    }
}
