//! The documents and credentials the API tests send, in one place.

/// A header with IM credentials for `user` and a Dummy cloud line.
pub fn auth_for(user: &str) -> String {
    format!(
        "id = im; type = InfrastructureManager; username = {user}; password = pass-{user}\\nid = dummy; type = Dummy"
    )
}

/// Two VMs on a private network, contextualization disabled: configured at once.
pub const RADL_NO_CTX: &str = "network privada ()
system node (
cpu.count>=1 and
memory.size>=512m and
net_interface.0.connection = 'privada' and
disk.0.os.name='linux'
)
deploy node 2
contextualize ()
";

/// A front on a public network and one worker, contextualization enabled: the VMs
/// are `running` until the simulated contextualization ends.
pub const RADL_CTX: &str = "network publica (outbound = 'yes')
network privada ()
system front (
cpu.arch='x86_64' and
cpu.count>=1 and
memory.size>=512m and
net_interface.0.connection = 'publica' and
net_interface.1.connection = 'privada' and
disk.0.os.name='linux'
)
system wn (
cpu.count>=2 and
memory.size>=1g and
net_interface.0.connection = 'privada' and
disk.0.os.name='linux'
)
deploy front 1
deploy wn 1
";

/// [`RADL_CTX`]'s front and worker (both smaller) with contextualization disabled:
/// configured at once, so every step of a lifecycle is one settled version.
pub const RADL_FRONT_WN_NO_CTX: &str = "network publica (outbound = 'yes')
network privada ()
system front (
cpu.count>=1 and
memory.size>=512m and
net_interface.0.connection = 'publica' and
net_interface.1.connection = 'privada' and
disk.0.os.name='linux'
)
system wn (
cpu.count>=1 and
memory.size>=512m and
net_interface.0.connection = 'privada' and
disk.0.os.name='linux'
)
deploy front 1
deploy wn 1
contextualize ()
";

/// A front and two workers with images and a VM password (which an export must
/// not leak), contextualization disabled.
pub const RADL_IMAGES_NO_CTX: &str = "network publica ( outbound = 'yes' )\nnetwork privada ( )\nsystem front (\ncpu.count >= 1 and\nmemory.size >= 512m and\nnet_interface.0.connection = 'publica' and\nnet_interface.1.connection = 'privada' and\ndisk.0.os.name = 'linux' and\ndisk.0.image.url = 'mock0://linux.for.ev.er' and\ndisk.0.os.credentials.password = 'vmsecret'\n)\nsystem wn (\ncpu.count >= 1 and\nmemory.size >= 512m and\nnet_interface.0.connection = 'privada' and\ndisk.0.os.name = 'linux' and\ndisk.0.image.url = 'mock0://linux.for.ev.er'\n)\ncontextualize ()\ndeploy front 1\ndeploy wn 2\n";

/// A front and two workers on one public network, contextualization disabled.
pub const RADL_ONE_NET_NO_CTX: &str = "network net (outbound = 'yes')\n\
    system front (\ncpu.count>=2 and\nmemory.size>=1g and\nnet_interface.0.connection = 'net' and\ndisk.0.os.name='linux'\n)\n\
    system wn (\ncpu.count>=1 and\nmemory.size>=512m and\nnet_interface.0.connection = 'net' and\ndisk.0.os.name='linux'\n)\n\
    deploy front 1\ndeploy wn 2\ncontextualize ()";

/// A TOSCA template with one compute node, an input and two outputs (the file is
/// shared with the TOSCA translator's unit tests).
pub const TOSCA: &str = include_str!("../data/tosca_min.yaml");

/// A TOSCA template of one compute node scaled to `count` VMs.
pub fn scaled(count: u32) -> String {
    format!(
        "tosca_definitions_version: tosca_simple_yaml_1_0\ntopology_template:\n  node_templates:\n    server:\n      type: tosca.nodes.Compute\n      capabilities:\n        scalable:\n          properties:\n            count: {count}\n"
    )
}

/// A cloud connector's answer that is ready at once, for the test connectors.
pub fn ready<T: Send + 'static>(value: T) -> infralog_actors::connectors::CloudFuture<T> {
    Box::pin(std::future::ready(Ok(value)))
}
