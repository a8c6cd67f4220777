//! TOSCA over HTTP (`docs/api.md` §2.4, §2.8, `docs/tosca.md`): create from a TOSCA template,
//! read the stored template, its outputs and the RADL generated from it, filter the
//! list on it, refuse bad templates with a 400 that leaves nothing behind, and answer
//! the same after a restart.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::harness::*;

const AUTH: &str = "id = im; type = InfrastructureManager; username = tosca; password = pass1\\nid = dummy; type = Dummy";

/// A server on port 0 over `dir`, with a short contextualization.
struct Server(TestServer);

impl Server {
    fn start(dir: &Path) -> Server {
        let mut settings = settings(dir);
        settings.contextualization_delay = Duration::from_millis(50);
        settings.workers = 1;
        Server(TestServer::start_with(settings))
    }

    fn stop(self) {
        self.0.stop();
    }

    /// One request with the module's credentials.
    fn call(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Answer {
        let response = self
            .0
            .request(method, path)
            .auth(AUTH)
            .headers(headers)
            .body(body)
            .send();
        Answer {
            status: response.status,
            content_type: response.content_type().to_owned(),
            body: response.text(),
        }
    }

    fn get(&self, path: &str) -> Answer {
        self.call("GET", path, &[], "")
    }
}

struct Answer {
    status: u16,
    content_type: String,
    body: String,
}

fn create_from_tosca(server: &Server, template: &str) -> Answer {
    server.call(
        "POST",
        "/infrastructures",
        &[("Content-Type", "text/yaml")],
        template,
    )
}

fn wait_configured(server: &Server, inf: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let state = server.get(&format!("/infrastructures/{inf}/state"));
        if state.body.contains(r#"{"state":"configured""#) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "never configured: {}",
            state.body
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

const EXPECTED_TOSCA: &str = "description: Minimal TOSCA template for the conformance harness\ntopology_template:\n  inputs:\n    cpus:\n      default: 2\n      type: integer\n  node_templates:\n    server:\n      capabilities:\n        host:\n          properties:\n            mem_size: 1 GB\n            num_cpus:\n              get_input: cpus\n        os:\n          properties:\n            type: linux\n      type: tosca.nodes.Compute\n  outputs:\n    cpus:\n      value:\n        get_input: cpus\n    server_ip:\n      value:\n        get_attribute:\n        - server\n        - private_address\ntosca_definitions_version: tosca_simple_yaml_1_0\n";

const EXPECTED_RADL: &str = "network private_net ( outbound = 'no' )\nsystem server (\ninstance_name = 'server' and\ndisk.0.os.name = 'linux' and\ncpu.count >= 2 and\nmemory.size >= 1000000000B and\nnet_interface.0.connection = 'private_net'\n)\n\ncontextualize ()\ndeploy server 1";

fn check_tosca_answers(server: &Server, inf: &str) {
    let tosca = server.get(&format!("/infrastructures/{inf}/tosca"));
    assert_eq!((tosca.status, tosca.body.as_str()), (200, EXPECTED_TOSCA));
    assert!(tosca.content_type.starts_with("text/plain"));
    let json = server.call(
        "GET",
        &format!("/infrastructures/{inf}/tosca"),
        &[("Accept", "application/json")],
        "",
    );
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&json.body).unwrap(),
        serde_json::json!({ "tosca": EXPECTED_TOSCA })
    );
    let outputs = server.get(&format!("/infrastructures/{inf}/outputs"));
    assert_eq!(outputs.status, 200);
    assert_eq!(outputs.content_type, "application/json");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&outputs.body).unwrap(),
        serde_json::json!({ "outputs": { "cpus": 2, "server_ip": "10.0.0.1" } })
    );
    let radl = server.get(&format!("/infrastructures/{inf}/radl"));
    assert_eq!((radl.status, radl.body.as_str()), (200, EXPECTED_RADL));
    let cpus = server.get(&format!("/infrastructures/{inf}/vms/0/cpu.count"));
    assert_eq!((cpus.status, cpus.body.as_str()), (200, "2"));
}

#[test]
fn a_tosca_infrastructure_keeps_its_template_and_outputs_across_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(dir.path());
    let created = create_from_tosca(&server, TOSCA);
    assert_eq!(created.status, 200, "{}", created.body);
    let inf = created
        .body
        .rsplit('/')
        .next()
        .expect("an infrastructure URI")
        .to_owned();
    wait_configured(&server, &inf);
    check_tosca_answers(&server, &inf);
    let plain = server.call(
        "GET",
        &format!("/infrastructures/{inf}/outputs"),
        &[("Accept", "text/plain")],
        "",
    );
    assert_eq!(
        (plain.status, plain.body.as_str()),
        (415, "Unsupported Accept Media Types: ['text/plain']")
    );
    let matching = server.get("/infrastructures?filter=private_address");
    assert!(matching.body.ends_with(&inf), "{}", matching.body);
    let none = server.get("/infrastructures?filter=no-such-text");
    assert_eq!((none.status, none.body.as_str()), (200, ""));

    server.stop();
    let server = Server::start(dir.path());
    check_tosca_answers(&server, &inf);
    server.stop();
}

#[test]
fn bad_templates_are_400_and_create_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(dir.path());
    let cases = [
        ("tosca_definitions_version: [unclosed\n", "Error parsing request body: Error parsing TOSCA template: "),
        ("description: no version\n", "Error parsing request body: Error parsing TOSCA template: Template is missing required field \"tosca_definitions_version\"."),
        (
            "tosca_definitions_version: tosca_simple_yaml_1_0\ntopology_template:\n  node_templates:\n    web:\n      type: tosca.nodes.WebServer\n",
            "Error parsing request body: Error parsing TOSCA template: the node template \"web\" has type \"tosca.nodes.WebServer\"",
        ),
        (
            "tosca_definitions_version: tosca_simple_yaml_1_0\ntopology_template:\n  node_templates:\n    n:\n      type: tosca.nodes.Compute\n      capabilities:\n        host:\n          properties:\n            num_cpus: { get_input: missing }\n",
            "Error parsing request body: Error parsing TOSCA template: Unknown input \"missing\".",
        ),
    ];
    for (template, prefix) in cases {
        let answer = create_from_tosca(&server, template);
        assert_eq!(answer.status, 400, "{template}: {}", answer.body);
        assert!(
            answer.body.starts_with(prefix),
            "{template}: {}",
            answer.body
        );
    }
    assert_eq!(server.get("/infrastructures").body, "");
    server.stop();
}

#[test]
fn a_radl_infrastructure_has_no_tosca_nor_outputs() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(dir.path());
    let created = server.call(
        "POST",
        "/infrastructures",
        &[("Content-Type", "text/plain")],
        "system node ( cpu.count >= 1 )\ncontextualize ()\n",
    );
    assert_eq!(created.status, 200, "{}", created.body);
    let inf = created.body.rsplit('/').next().unwrap().to_owned();
    let tosca = server.get(&format!("/infrastructures/{inf}/tosca"));
    assert_eq!(
        (tosca.status, tosca.body.as_str()),
        (
            403,
            "'tosca' infrastructure property is not valid in this infrastructure"
        )
    );
    let outputs = server.get(&format!("/infrastructures/{inf}/outputs"));
    assert_eq!(
        (outputs.status, outputs.body.as_str()),
        (
            403,
            "'outputs' infrastructure property is not valid in this infrastructure"
        )
    );
    server.stop();
}

fn vm_uris(server: &Server, inf: &str) -> Vec<String> {
    let answer = server.get(&format!("/infrastructures/{inf}"));
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer
        .body
        .lines()
        .map(|l| l.rsplit('/').next().unwrap().to_owned())
        .collect()
}

#[test]
fn a_tosca_add_merges_the_template_and_scales_to_its_count() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(dir.path());
    let created = create_from_tosca(&server, TOSCA);
    let inf = created.body.rsplit('/').next().unwrap().to_owned();
    wait_configured(&server, &inf);

    let add = |count: u32| {
        server.call(
            "POST",
            &format!("/infrastructures/{inf}"),
            &[("Content-Type", "text/yaml")],
            &scaled(count),
        )
    };
    let up = add(3);
    assert_eq!(up.status, 200, "{}", up.body);
    let added: Vec<&str> = up
        .body
        .lines()
        .map(|l| l.rsplit('/').next().unwrap())
        .collect();
    assert_eq!(added, ["1", "2"]);
    assert_eq!(vm_uris(&server, &inf), ["0", "1", "2"]);
    let tosca = server.get(&format!("/infrastructures/{inf}/tosca")).body;
    assert!(
        tosca.contains("        scalable:\n          properties:\n            count: 3\n"),
        "{tosca}"
    );
    assert!(
        tosca.contains("  outputs:\n"),
        "the stored template keeps its outputs: {tosca}"
    );
    // The new VMs are made of the stored system: cpu.count still comes from the input.
    let cpus = server.get(&format!("/infrastructures/{inf}/vms/2/cpu.count"));
    assert_eq!(cpus.body, "2");

    let down = add(1);
    assert_eq!((down.status, down.body.as_str()), (200, ""));
    assert_eq!(vm_uris(&server, &inf), ["2"], "the oldest VMs go first");
    wait_configured(&server, &inf);
    let outputs = server.get(&format!("/infrastructures/{inf}/outputs"));
    assert!(
        outputs.body.contains(r#""server_ip":"10.0.0.1""#),
        "{}",
        outputs.body
    );

    let same = add(1);
    assert_eq!((same.status, same.body.as_str()), (200, ""));
    assert_eq!(vm_uris(&server, &inf), ["2"]);

    server.stop();
    let server = Server::start(dir.path());
    let tosca = server.get(&format!("/infrastructures/{inf}/tosca")).body;
    assert!(tosca.contains("            count: 1\n"), "{tosca}");
    assert_eq!(vm_uris(&server, &inf), ["2"]);
    server.stop();
}

#[test]
fn a_refused_tosca_add_removes_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(dir.path());
    let created = create_from_tosca(&server, &scaled(2));
    assert_eq!(created.status, 200, "{}", created.body);
    let inf = created.body.rsplit('/').next().unwrap().to_owned();
    wait_configured(&server, &inf);
    let path = format!("/infrastructures/{inf}");

    let bad_count = server.call(
        "POST",
        &path,
        &[("Content-Type", "text/yaml")],
        &scaled(1).replace("count: 1", "count: many"),
    );
    assert_eq!(bad_count.status, 400);
    assert!(
        bad_count.body.starts_with(
            "Error parsing request body: Error parsing TOSCA template: the count of \"server\" must be an integer"
        ),
        "{}",
        bad_count.body
    );
    let bad_accept = server.call(
        "POST",
        &path,
        &[("Content-Type", "text/yaml"), ("Accept", "text/plain")],
        &scaled(1),
    );
    assert!(
        matches!(bad_accept.status, 400 | 415),
        "{} {}",
        bad_accept.status,
        bad_accept.body
    );
    assert_eq!(vm_uris(&server, &inf), ["0", "1"]);
    let tosca = server.get(&format!("/infrastructures/{inf}/tosca")).body;
    assert!(tosca.contains("            count: 2\n"), "{tosca}");
    server.stop();
}

#[test]
fn a_removal_list_naming_missing_vms_is_ims_404() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(dir.path());
    let created = create_from_tosca(&server, &scaled(2));
    let inf = created.body.rsplit('/').next().unwrap().to_owned();
    wait_configured(&server, &inf);
    let body = format!("{}            removal_list: ['7']\n", scaled(1));
    let answer = server.call(
        "POST",
        &format!("/infrastructures/{inf}"),
        &[("Content-Type", "text/yaml")],
        &body,
    );
    assert_eq!(
        (answer.status, answer.body.as_str()),
        (404, "Error deleting resources ['7'] (removed 0)")
    );
    assert_eq!(vm_uris(&server, &inf), ["0", "1"]);
    // As IM, the merged template is stored all the same.
    let tosca = server.get(&format!("/infrastructures/{inf}/tosca")).body;
    assert!(
        tosca.contains("            removal_list:\n            - '7'\n"),
        "{tosca}"
    );

    let body = format!("{}            removal_list: ['1']\n", scaled(1));
    let answer = server.call(
        "POST",
        &format!("/infrastructures/{inf}"),
        &[("Content-Type", "text/yaml")],
        &body,
    );
    assert_eq!((answer.status, answer.body.as_str()), (200, ""));
    assert_eq!(vm_uris(&server, &inf), ["0"]);
    server.stop();
}
