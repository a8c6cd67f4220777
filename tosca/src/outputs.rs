//! `GET …/outputs`: a template's `outputs` evaluated against the infrastructure's VMs,
//! as IM's `Tosca.get_outputs` does.

use super::template::{Kind, Template};
use super::yaml::Node;

/// What the outputs need to know about one live VM.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VmFacts {
    /// The system (node template) it was launched from.
    pub system: String,
    /// Its id in the cloud (`tosca_id`).
    pub cloud_id: Option<String>,
    /// IPs on public networks, in interface order.
    pub public_ips: Vec<String>,
    /// IPs on private networks, in interface order.
    pub private_ips: Vec<String>,
    /// Its contextualization log (`ctxt_log`).
    pub contmsg: String,
}

impl Template {
    /// The outputs, in template order. `vms` are the live VMs in id order.
    pub fn outputs(&self, vms: &[VmFacts]) -> serde_json::Map<String, serde_json::Value> {
        self.outputs
            .iter()
            .map(|(name, value)| {
                let mut attribute =
                    |node: &str, arguments: &[Node]| self.attribute(vms, node, arguments);
                let value = self.evaluate_with(value, "", &mut attribute);
                (name.clone(), value.to_json())
            })
            .collect()
    }

    /// `get_attribute [node, name]`, `[node, name, index]` or
    /// `[node, capability, name(, index)]`, as IM's `_get_attribute_result`: the first
    /// VM's value; for an INDIGO Compute the list over its VMs, or the one at `index`.
    /// A node without VMs gives null.
    fn attribute(&self, vms: &[VmFacts], node: &str, arguments: &[Node]) -> Node {
        let Some(template) = self.node(node) else {
            return Node::Null;
        };
        let (name, index) = match arguments {
            [name] => (name, None),
            [name, Node::Int(index)] => (name, Some(*index)),
            [_, name] => (name, None),
            [_, name, Node::Int(index)] => (name, Some(*index)),
            _ => return Node::Null,
        };
        let Some(name) = name.as_str() else {
            return Node::Null;
        };
        let Kind::Compute { indigo } = template.kind else {
            return Node::Null;
        };
        let own: Vec<&VmFacts> = vms.iter().filter(|vm| vm.system == node).collect();
        let Some(first) = own.first() else {
            return Node::Null;
        };
        let address = |ips: &[String]| ips.first().map_or(Node::Null, |ip| Node::Str(ip.clone()));
        let per_vm = |of: &dyn Fn(&VmFacts) -> Node| -> Node {
            if !indigo {
                return of(first);
            }
            match index {
                // IM clamps an index past the end to the last VM.
                Some(i) => {
                    let i = usize::try_from(i).unwrap_or(0).min(own.len() - 1);
                    of(own[i])
                }
                None => Node::Seq(own.iter().map(|vm| of(vm)).collect()),
            }
        };
        match name {
            "tosca_id" => first.cloud_id.clone().map_or(Node::Null, Node::Str),
            "tosca_name" => Node::Str(node.to_owned()),
            "ctxt_log" if indigo => Node::Str(first.contmsg.clone()),
            "private_address" => per_vm(&|vm| address(&vm.private_ips)),
            "public_address" => per_vm(&|vm| address(&vm.public_ips)),
            "ip_address" => {
                if first.public_ips.is_empty() {
                    address(&first.private_ips)
                } else {
                    address(&first.public_ips)
                }
            }
            _ => Node::Null,
        }
    }
}
