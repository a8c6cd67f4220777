use crate::{Template, ToscaError, VmFacts};

// The API tests' TOSCA fixture (`tests/data/` at the repository root): one copy for both.
const MINIMAL: &str = include_str!("../../../tests/data/tosca_min.yaml");

fn radl_of(text: &str) -> String {
    Template::parse(text).unwrap().to_radl().unwrap().to_text()
}

fn compute(body: &str) -> String {
    format!(
        "tosca_definitions_version: tosca_simple_yaml_1_0\ntopology_template:\n  inputs:\n    n:\n      type: integer\n      default: 3\n  node_templates:\n    node:\n      type: tosca.nodes.Compute\n{body}"
    )
}

#[test]
fn the_conformance_template_gives_ims_radl() {
    assert_eq!(
        radl_of(MINIMAL),
        "network private_net ( outbound = 'no' )\nsystem server (\ninstance_name = 'server' and\ndisk.0.os.name = 'linux' and\ncpu.count >= 2 and\nmemory.size >= 1000000000B and\nnet_interface.0.connection = 'private_net'\n)\n\ncontextualize ()\ndeploy server 1"
    );
}

#[test]
fn os_properties_come_before_host_properties_and_sizes_are_bytes() {
    let text = compute(
        "      capabilities:\n        host:\n          properties:\n            mem_size: 2 GiB\n            disk_size: 10 gb\n            num_cpus: { get_input: n }\n        os:\n          properties:\n            distribution: ubuntu\n            version: 22.04\n            image: ubuntu:22.04\n            type: linux\n",
    );
    let radl = radl_of(&text);
    assert!(
        radl.contains("instance_name = 'node' and\ndisk.0.os.flavour = 'ubuntu' and\ndisk.0.os.version = '22.04' and\ndisk.0.image.url = 'docker://ubuntu:22.04' and\ndisk.0.os.name = 'linux' and\nmemory.size >= 2147483648B and\ndisk.0.size >= 10000000000B and\ncpu.count >= 3 and\n"),
        "{radl}"
    );
}

#[test]
fn scalable_count_sets_the_deploy_and_zero_deploys_nothing() {
    let count = |caps: &str| {
        radl_of(&compute(&format!(
            "      capabilities:\n        scalable:\n          properties:\n{caps}"
        )))
    };
    assert!(count("            count: 4\n").ends_with("deploy node 4"));
    assert!(
        count("            default_instances: 2\n            min_instances: 1\n")
            .ends_with("deploy node 2")
    );
    assert!(count("            min_instances: 5\n").ends_with("deploy node 5"));
    assert!(count("            count: { get_input: n }\n").ends_with("deploy node 3"));
    assert!(count("            count: 0\n").ends_with("contextualize ()"));
    let error = Template::parse(&compute(
        "      capabilities:\n        scalable:\n          properties:\n            count: many\n",
    ))
    .unwrap()
    .to_radl()
    .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("the count of \"node\" must be an integer"),
        "{error}"
    );
}

#[test]
fn a_public_endpoint_adds_public_net_with_its_ports() {
    let radl = radl_of(&compute(
        "      capabilities:\n        endpoint:\n          properties:\n            network_name: PUBLIC\n            dns_name: web\n            ports:\n              http:\n                protocol: tcp\n                source: 80\n              ssh:\n                source: 22\n                target: 2222\n",
    ));
    assert!(radl.starts_with("network private_net ( outbound = 'no' )\nnetwork public_net ( outbound = 'yes' and\noutports = '80/tcp-80/tcp,22/tcp-2222/tcp' )\n"), "{radl}");
    assert!(radl.contains("instance_name = 'node' and\nnet_interface.0.dns_name = 'web' and\nnet_interface.0.connection = 'private_net' and\nnet_interface.1.connection = 'public_net'\n"), "{radl}");
}

#[test]
fn ports_bind_computes_to_network_nodes_in_order() {
    let text = compute(
        "    pub:\n      type: tosca.nodes.network.Network\n      properties:\n        network_type: public\n    priv:\n      type: tosca.nodes.network.Network\n      properties:\n        network_name: vpc-1\n    p1:\n      type: tosca.nodes.network.Port\n      properties:\n        order: 1\n      requirements:\n      - binding: node\n      - link: pub\n    p0:\n      type: tosca.nodes.network.Port\n      properties:\n        order: 0\n        ip_address: 10.1.0.5\n      requirements:\n      - binding: { node: node }\n      - link: priv\n",
    );
    let radl = radl_of(&text);
    // IM writes a private network without `outbound`, and the interfaces in template
    // order, numbered by each port's `order`.
    assert!(
        radl.starts_with(
            "network pub ( outbound = 'yes' )\nnetwork priv ( provider_id = 'vpc-1' )\n"
        ),
        "{radl}"
    );
    assert!(radl.contains("net_interface.1.connection = 'pub' and\nnet_interface.0.connection = 'priv' and\nnet_interface.0.ip = '10.1.0.5'\n"), "{radl}");
}

#[test]
fn custom_types_derived_from_compute_are_computes() {
    let text = "tosca_definitions_version: tosca_simple_yaml_1_0\nnode_types:\n  my.Node:\n    derived_from: my.Base\n  my.Base:\n    derived_from: tosca.nodes.Compute\ntopology_template:\n  node_templates:\n    a:\n      type: my.Node\n";
    assert!(radl_of(text).ends_with("deploy a 1"));
}

#[test]
fn credentials_map_to_radl_credentials() {
    let radl = radl_of(&compute(
        "      capabilities:\n        os:\n          properties:\n            credential:\n              user: cloudadm\n              token: ssh-rsa AAA\n              token_type: public_key\n",
    ));
    assert!(radl.contains("disk.0.os.credentials.public_key = 'ssh-rsa AAA' and\ndisk.0.os.credentials.username = 'cloudadm' and\n"), "{radl}");
}

#[test]
fn bad_templates_are_refused_with_a_reason() {
    let error = |text: &str| {
        Template::parse(text)
            .and_then(|t| t.to_radl())
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        error("a: [1\n").split(" (line").next().unwrap(),
        "Error parsing TOSCA template: while parsing a flow sequence, expected ',' or ']'"
    );
    assert_eq!(error("description: x\n"), "Error parsing TOSCA template: Template is missing required field \"tosca_definitions_version\".");
    assert!(error("tosca_definitions_version: tosca_9\n")
        .contains("The template version \"tosca_9\" is invalid."));
    assert!(error(&compute("      capabilities:\n        host:\n          properties:\n            num_cpus: { get_input: nope }\n")).ends_with("Unknown input \"nope\"."));
    assert!(error(&compute(
        "      capabilities:\n        host:\n          properties:\n            mem_size: lots\n"
    ))
    .contains("\"lots\" is not a valid scalar-unit"));
    assert!(error(&compute(
        "      capabilities:\n        host:\n          properties:\n            num_cpus: two\n"
    ))
    .contains("\"num_cpus\" of \"node\" must be an integer"));
    let unsupported = error("tosca_definitions_version: tosca_simple_yaml_1_0\ntopology_template:\n  node_templates:\n    web:\n      type: tosca.nodes.WebServer\n");
    assert!(
        unsupported.contains("\"web\" has type \"tosca.nodes.WebServer\""),
        "{unsupported}"
    );
    assert!(matches!(
        Template::parse("tosca_definitions_version: tosca_simple_yaml_1_0\ntopology_template:\n  node_templates:\n    w:\n      type: x.Y\n"),
        Err(ToscaError::Unsupported(_))
    ));
}

#[test]
fn the_stored_document_is_redumped_with_sorted_keys() {
    let template = Template::parse(MINIMAL).unwrap();
    assert_eq!(
        template.to_yaml(),
        "description: Minimal TOSCA template for the conformance harness\ntopology_template:\n  inputs:\n    cpus:\n      default: 2\n      type: integer\n  node_templates:\n    server:\n      capabilities:\n        host:\n          properties:\n            mem_size: 1 GB\n            num_cpus:\n              get_input: cpus\n        os:\n          properties:\n            type: linux\n      type: tosca.nodes.Compute\n  outputs:\n    cpus:\n      value:\n        get_input: cpus\n    server_ip:\n      value:\n        get_attribute:\n        - server\n        - private_address\ntosca_definitions_version: tosca_simple_yaml_1_0\n"
    );
    // Re-reading the dump gives the same template.
    assert_eq!(
        Template::parse(&template.to_yaml()).unwrap().to_yaml(),
        template.to_yaml()
    );
}

fn vm(system: &str, public: &[&str], private: &[&str]) -> VmFacts {
    VmFacts {
        system: system.into(),
        cloud_id: Some(format!("id-{system}")),
        public_ips: public.iter().map(|s| s.to_string()).collect(),
        private_ips: private.iter().map(|s| s.to_string()).collect(),
        contmsg: String::new(),
    }
}

#[test]
fn outputs_read_inputs_and_the_first_vms_addresses() {
    let template = Template::parse(MINIMAL).unwrap();
    let outputs = template.outputs(&[
        vm("server", &[], &["10.0.0.1"]),
        vm("server", &[], &["10.0.0.2"]),
    ]);
    assert_eq!(
        serde_json::Value::Object(outputs).to_string(),
        r#"{"server_ip":"10.0.0.1","cpus":2}"#
    );
    let none = template.outputs(&[]);
    assert_eq!(
        serde_json::Value::Object(none).to_string(),
        r#"{"server_ip":null,"cpus":2}"#
    );
}

#[test]
fn outputs_of_indigo_computes_are_lists_and_indexes_pick_one_vm() {
    let text = "tosca_definitions_version: tosca_simple_yaml_1_0\ntopology_template:\n  node_templates:\n    wn:\n      type: tosca.nodes.indigo.Compute\n    fe:\n      type: tosca.nodes.Compute\n  outputs:\n    all: { value: { get_attribute: [ wn, private_address ] } }\n    second: { value: { get_attribute: [ wn, private_address, 1 ] } }\n    ip: { value: { get_attribute: [ fe, ip_address ] } }\n    pub: { value: { get_attribute: [ fe, public_address ] } }\n    id: { value: { get_attribute: [ fe, tosca_id ] } }\n    url: { value: { concat: [ 'http://', { get_attribute: [ fe, public_address ] }, ':8080' ] } }\n";
    let template = Template::parse(text).unwrap();
    let outputs = template.outputs(&[
        vm("fe", &["8.8.8.8"], &["10.0.0.1"]),
        vm("wn", &[], &["10.0.0.2"]),
        vm("wn", &[], &["10.0.0.3"]),
    ]);
    assert_eq!(
        serde_json::Value::Object(outputs).to_string(),
        r#"{"all":["10.0.0.2","10.0.0.3"],"second":"10.0.0.3","ip":"8.8.8.8","pub":"8.8.8.8","id":"id-fe","url":"http://8.8.8.8:8080"}"#
    );
}

fn with_scalable(properties: &str) -> Template {
    let text = format!(
        "tosca_definitions_version: tosca_simple_yaml_1_0\ntopology_template:\n  node_templates:\n    server:\n      type: tosca.nodes.Compute\n      capabilities:\n        scalable:\n          properties:\n{properties}"
    );
    Template::parse(&text).unwrap()
}

#[test]
fn scaling_deploys_the_missing_vms_and_removes_the_oldest_surplus() {
    let current = [
        ("server".to_string(), 0),
        ("other".to_string(), 1),
        ("server".to_string(), 2),
    ];
    let up = with_scalable("            count: 3\n")
        .scale(&current)
        .unwrap();
    assert!(
        up.radl.to_text().ends_with("deploy server 1"),
        "{}",
        up.radl.to_text()
    );
    assert!(up.remove.is_empty());
    let down = with_scalable("            count: 1\n")
        .scale(&current)
        .unwrap();
    assert_eq!(down.remove, vec![0]);
    assert!(down.radl.deploys.is_empty());
    let same = with_scalable("            count: 2\n")
        .scale(&current)
        .unwrap();
    assert!(same.remove.is_empty() && same.radl.deploys.is_empty());
    let chosen = with_scalable("            count: 1\n            removal_list: ['2', 7]\n")
        .scale(&current)
        .unwrap();
    assert_eq!(chosen.remove, vec![2]);
    assert_eq!(chosen.requested_repr(), "['2']");
    // IM takes the first entries as written, even one that names no VM.
    let missing = with_scalable("            count: 1\n            removal_list: [7, '2']\n")
        .scale(&current)
        .unwrap();
    assert!(missing.remove.is_empty());
    assert_eq!(missing.requested_repr(), "[7]");
}

#[test]
fn an_add_template_is_merged_into_the_stored_one() {
    let stored = Template::parse(MINIMAL).unwrap();
    let update = with_scalable("            count: 2\n");
    let merged = stored.merged_with(&update).unwrap();
    let yaml = merged.to_yaml();
    assert!(
        yaml.contains("        scalable:\n          properties:\n            count: 2\n"),
        "{yaml}"
    );
    assert!(
        yaml.contains("            num_cpus:\n              get_input: cpus\n"),
        "{yaml}"
    );
    assert!(yaml.contains("  outputs:\n"), "{yaml}");
    let radl = merged
        .scale(&[("server".to_string(), 0)])
        .unwrap()
        .radl
        .to_text();
    assert!(
        radl.contains("cpu.count >= 2 and\n") && radl.ends_with("deploy server 1"),
        "{radl}"
    );
}

#[test]
fn attached_block_storage_becomes_disks() {
    let radl = radl_of(&compute(
        "      requirements:\n      - local_storage:\n          node: data\n          relationship:\n            type: AttachesTo\n            properties:\n              location: /mnt/data\n              device: hdb\n      - local_storage: old\n    data:\n      type: tosca.nodes.BlockStorage\n      properties:\n        size: 10 GiB\n    old:\n      type: tosca.nodes.BlockStorage\n      properties:\n        volume_id: vol-1\n",
    ));
    assert!(
        radl.contains("disk.1.size >= 10737418240B and\ndisk.1.device = 'hdb' and\ndisk.1.mount_path = '/mnt/data' and\ndisk.1.fstype = 'ext4' and\ndisk.2.image.url = 'vol-1' and\n"),
        "{radl}"
    );
    let error = Template::parse(&compute(
        "      requirements:\n      - local_storage: nowhere\n",
    ))
    .unwrap()
    .to_radl()
    .unwrap_err();
    assert!(error.to_string().contains("names \"nowhere\""), "{error}");
}

#[test]
fn endpoints_follow_ims_network_rules() {
    let two = "tosca_definitions_version: tosca_simple_yaml_1_0\ntopology_template:\n  node_templates:\n    db:\n      type: tosca.nodes.Compute\n      capabilities:\n        endpoint:\n          properties:\n            network_name: vpc-7\n            ports:\n              pg: { source: 5432 }\n    wn:\n      type: tosca.nodes.Compute\n      capabilities:\n        endpoint:\n          properties:\n            network_name: PUBLIC\n    front:\n      type: tosca.nodes.Compute\n      capabilities:\n        endpoint:\n          properties:\n            network_name: ext.PUBLIC\n            private_ip: false\n";
    let radl = radl_of(two);
    // A private endpoint's ports open on the private network, which takes the
    // provider id; every public Compute gets its own public network.
    assert!(radl.starts_with("network private_net ( outbound = 'no' and\noutports = '5432/tcp-5432/tcp' and\nprovider_id = 'vpc-7' )\nnetwork public_net ( outbound = 'yes' )\nnetwork public_net_1 ( outbound = 'yes' and\nprovider_id = 'ext' )\n"), "{radl}");
    assert!(radl.contains("system front (\ninstance_name = 'front' and\nnet_interface.0.connection = 'public_net_1'\n)"), "{radl}");
    // Deploys on public networks first, `wn` ones after the others.
    assert!(
        radl.ends_with("deploy front 1\ndeploy wn 1\ndeploy db 1"),
        "{radl}"
    );
}

#[test]
fn a_template_without_networks_gets_a_public_one() {
    let radl = radl_of("tosca_definitions_version: tosca_simple_yaml_1_0\n");
    assert_eq!(
        radl,
        "network public ( outbound = 'yes' )\ncontextualize ()"
    );
}

#[test]
fn zero_values_are_kept_and_credentials_need_a_user() {
    let radl = radl_of(&compute(
        "      capabilities:\n        host:\n          properties:\n            num_cpus: 0\n",
    ));
    assert!(radl.contains("cpu.count >= 0"), "{radl}");
    let error = Template::parse(&compute("      capabilities:\n        os:\n          properties:\n            credential: { token: secret, token_type: password }\n"))
        .unwrap()
        .to_radl()
        .unwrap_err();
    assert!(
        error
            .to_string()
            .ends_with("User must be specified in the image credentials."),
        "{error}"
    );
}
