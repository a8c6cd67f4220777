//! `GET …/outputs`: a template's `outputs` evaluated against the infrastructure's VMs,
//! as IM's `Tosca.get_outputs` does.

use super::template::{index, Kind, Template};
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

    /// `get_attribute [node, name, index…]`: the first VM's value, every VM's for an
    /// INDIGO Compute, or the VM at `index`.
    fn attribute(&self, vms: &[VmFacts], node: &str, arguments: &[Node]) -> Node {
        let Some(template) = self.node(node) else {
            return Node::Null;
        };
        let Some(name) = arguments.first().and_then(Node::as_str) else {
            return Node::Null;
        };
        if name == "tosca_name" {
            return Node::Str(node.to_owned());
        }
        let Kind::Compute { indigo } = template.kind else {
            return Node::Null;
        };
        let own: Vec<&VmFacts> = vms.iter().filter(|vm| vm.system == node).collect();
        let of = |vm: &VmFacts| -> Node {
            let first = |ips: &[String]| ips.first().map_or(Node::Null, |ip| Node::Str(ip.clone()));
            match name {
                "public_address" => first(&vm.public_ips),
                "private_address" => first(&vm.private_ips),
                "ip_address" => {
                    if vm.public_ips.is_empty() {
                        first(&vm.private_ips)
                    } else {
                        first(&vm.public_ips)
                    }
                }
                "tosca_id" => vm.cloud_id.clone().map_or(Node::Null, Node::Str),
                "ctxt_log" => Node::Str(vm.contmsg.clone()),
                _ => Node::Null,
            }
        };
        match arguments.get(1) {
            Some(Node::Int(i)) => usize::try_from(*i)
                .ok()
                .and_then(|i| own.get(i))
                .map_or(Node::Null, |vm| of(vm)),
            Some(step) if !indigo => own.first().map_or(Node::Null, |vm| index(&of(vm), step)),
            _ if indigo => Node::Seq(own.iter().map(|vm| of(vm)).collect()),
            _ => own.first().map_or(Node::Null, |vm| of(vm)),
        }
    }
}
