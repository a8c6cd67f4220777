//! RADL against the recorded answers of a real IM 2.0.0 and the RADL corpus.

use infralog_radl::{self as radl, merge, Format, Radl};
use serde_json::Value as Json;

const SHARED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared");
const PASSWORD: &str = "Pw0rd+xyz";

fn read(path: &str) -> String {
    std::fs::read_to_string(format!("{SHARED}/{path}")).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn files(dir: &str, extension: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = std::fs::read_dir(format!("{SHARED}/{dir}"))
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|e| e == extension))
        .map(|path| {
            let name = path.display().to_string();
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
            (name, text)
        })
        .collect();
    out.sort();
    out
}

/// `<PW>` stands for a generated password in the recorded answers.
fn with_password(text: &str) -> String {
    text.replace("<PW>", PASSWORD)
}

fn normalized(text: &str) -> String {
    text.replace(PASSWORD, "<PW>")
}

/// Every recorded step of every golden file, with its scenario name.
fn golden_steps() -> Vec<(String, Json)> {
    let mut out = Vec::new();
    for (name, text) in files("conformance/golden", "json") {
        let doc: Json = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        for step in doc["steps"].as_array().cloned().unwrap_or_default() {
            out.push((name.clone(), step));
        }
    }
    out
}

fn is_radl_text(body: &str) -> bool {
    body.starts_with("network ") || body.starts_with("system ")
}

#[test]
fn every_radl_answer_of_im_reprints_byte_for_byte() {
    let mut checked = 0;
    let deviations: Json =
        serde_json::from_str(&read("conformance/deviations.json")).unwrap_or_default();
    let mut bodies: Vec<(String, String)> = golden_steps()
        .into_iter()
        .filter_map(|(scenario, step)| {
            let body = step["body"].as_str()?.to_owned();
            Some((format!("{scenario} / {}", step["name"]), body))
        })
        .collect();
    for (name, deviation) in deviations.as_object().cloned().unwrap_or_default() {
        if let Some(body) = deviation["expect"]["body"].as_str() {
            bodies.push((format!("deviation {name}"), body.to_owned()));
        }
    }
    let deviating = |name: &str| {
        deviations.as_object().is_some_and(|d| {
            d.keys().any(|key| {
                name.contains(key.split('/').next_back().unwrap_or(key))
                    && !name.starts_with("deviation")
            })
        })
    };
    for (name, body) in bodies.into_iter().filter(|(_, body)| is_radl_text(body)) {
        if deviating(&name) {
            // IM printed the altered cpu.count twice; the deviation's body is tested instead.
            continue;
        }
        let doc = radl::parse(&with_password(&body)).unwrap_or_else(|e| panic!("{name}: {e}"));
        // IM keeps the newline after `@begin` and before `@end` in the recipe and adds its
        // own when printing, so a printed recipe grows by one line at each end when read
        // again (the reconfigure test below checks the first printing byte for byte).
        let expected = body
            .replace("@begin\n", "@begin\n\n")
            .replace("\n@end", "\n\n@end");
        assert_eq!(normalized(&doc.to_text()), expected, "{name}");
        checked += 1;
    }
    assert!(checked >= 15, "only {checked} RADL answers found");
}

#[test]
fn every_radl_json_answer_of_im_reprints_to_the_same_json() {
    let mut checked = 0;
    for (scenario, step) in golden_steps() {
        let Some(body) = step["body"].as_str() else {
            continue;
        };
        if step["body_mode"] != "normalized" || !body.starts_with("{\"radl\": [") {
            continue;
        }
        let golden: Json = serde_json::from_str(&with_password(body)).unwrap_or_default();
        let list = golden["radl"].to_string();
        let doc =
            radl::parse_json(&list).unwrap_or_else(|e| panic!("{scenario} {}: {e}", step["name"]));
        let ours: Json = serde_json::from_str(&doc.to_json()).unwrap_or_default();
        assert_eq!(ours, golden["radl"], "{scenario} {}", step["name"]);
        checked += 1;
    }
    assert!(checked >= 5, "only {checked} RADL-JSON answers found");
}

#[test]
fn conformance_request_bodies_parse_and_print_as_im() {
    let front_wn = radl::parse(&read("conformance/files/front_wn_ctx.radl")).unwrap_or_default();
    front_wn.check().unwrap_or_else(|e| panic!("{e}"));
    let recorded = golden_steps()
        .into_iter()
        .find(|(s, step)| s.ends_with("03_lifecycle_ctx.json") && step["name"] == "radl")
        .and_then(|(_, step)| step["body"].as_str().map(str::to_owned))
        .unwrap_or_default();
    assert_eq!(front_wn.to_text(), recorded);

    let node = radl::parse_json(&read("conformance/files/node_ctx.json")).unwrap_or_default();
    node.check().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        node.to_text(),
        "network publica ( outbound = 'yes' )\nsystem node (\ncpu.count >= 1 and\nmemory.size >= 536870912 and\nnet_interface.0.connection = 'publica' and\ndisk.0.os.name = 'linux'\n)\n\ncontextualize ()\ndeploy node 2"
    );
    for (name, text) in files("conformance/files", "radl") {
        let doc = radl::parse(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        doc.check().unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn inline_scenario_bodies_parse_or_fail_as_im_answered() {
    let answers: Vec<(String, Json)> = golden_steps();
    let mut checked = 0;
    for (name, text) in files("conformance/scenarios", "json") {
        let steps: Json = serde_json::from_str(&text).unwrap_or_default();
        for step in steps.as_array().cloned().unwrap_or_default() {
            let Some(body) = step["body"].as_str() else {
                continue;
            };
            let content_type = step["headers"]["Content-Type"]
                .as_str()
                .unwrap_or("text/plain");
            let format = if content_type.contains("application/json") {
                Format::Json
            } else if content_type.contains("text/plain") {
                Format::Text
            } else {
                continue;
            };
            if format == Format::Json
                && !body.starts_with('[')
                && !body.starts_with('{')
                && body != "not json"
            {
                continue;
            }
            let result = radl::parse_body(body, format);
            let answer = answers
                .iter()
                .find(|(s, a)| {
                    s.ends_with(name.rsplit('/').next().unwrap_or_default())
                        && a["name"] == step["name"]
                })
                .map(|(_, a)| a.clone());
            let Some(answer) = answer else { continue };
            let golden = answer["body"].as_str().unwrap_or_default();
            if let Some(message) = golden.strip_prefix("Error parsing request body: ") {
                let error = result.expect_err(&format!("{name} {} should fail", step["name"]));
                let full = error.to_string();
                if answer["body_mode"] == "exact" {
                    assert_eq!(full, message, "{name} {}", step["name"]);
                } else {
                    assert!(full.starts_with(message), "{name} {}: {full}", step["name"]);
                }
            } else if !body.contains("${") && format == Format::Text || body.starts_with('[') {
                result.unwrap_or_else(|e| panic!("{name} {}: {e}", step["name"]));
            }
            checked += 1;
        }
    }
    assert!(checked >= 20, "only {checked} bodies");
}

#[test]
fn every_corpus_document_parses_and_the_valid_ones_pass_check() {
    // oscar.radl deploys a `test` system it never defines: IM parses it, check() refuses.
    let refused_by_check = ["oscar.radl"];
    let corpus = files("radl-corpus", "radl");
    assert!(corpus.len() >= 15);
    for (name, text) in corpus {
        let doc = radl::parse(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        let expect_refusal = refused_by_check.iter().any(|f| name.ends_with(f));
        match doc.check() {
            Ok(()) => assert!(!expect_refusal, "{name} should fail check"),
            Err(error) => {
                assert!(expect_refusal, "{name}: {error}");
                assert_eq!(
                    error.to_string(),
                    "Line 22: Invalid system id in the deploy."
                );
            }
        }
        // Printing and reading back gives the same document.
        let again = radl::parse(&doc.to_text()).unwrap_or_else(|e| panic!("{name} reprinted: {e}"));
        assert_eq!(
            again.to_text(),
            doc.to_text()
                .replace("@begin\n", "@begin\n\n")
                .replace("\n@end", "\n\n@end"),
            "{name}"
        );
    }
}

#[test]
fn every_invalid_corpus_document_is_refused_with_a_clear_message() {
    let invalid = files("radl-corpus/invalid", "radl");
    assert!(!invalid.is_empty());
    for (name, text) in invalid {
        let error = radl::parse(&text).and_then(|doc| doc.check().map(|()| doc));
        let error = error.expect_err(&format!("{name} must be refused"));
        assert!(error.line().is_some(), "{name}: {error} has no position");
        if name.ends_with("glusterfs.radl") {
            assert_eq!(
                error.to_string(),
                "Line 11: Conflict adding `net_interface.0.dns_name = 'glusterfe'` because `net_interface.0.dns_name = 'wn-#N#'` is already set and conflict is error"
            );
        }
    }
}

fn golden_body(scenario: &str, step_name: &str) -> String {
    golden_steps()
        .into_iter()
        .find(|(s, step)| s.ends_with(scenario) && step["name"] == step_name)
        .and_then(|(_, step)| step["body"].as_str().map(str::to_owned))
        .unwrap_or_else(|| panic!("no golden step {scenario} / {step_name}"))
}

/// Builds VM `vm_id` of system `name` as IM with the Dummy connector does.
fn dummy_vm(stored: &Radl, name: &str, vm_id: u64) -> Radl {
    let mut vm = merge::new_vm(stored, name).unwrap_or_default();
    let system = &mut vm.systems[0];
    merge::dummy_launch(system);
    system
        .features
        .set_string("disk.0.os.credentials.new.password", PASSWORD);
    merge::refresh_vm(system, "configured", vm_id, merge::DEFAULT_VM_NAME);
    vm
}

#[test]
fn dummy_vm_documents_match_im_answers() {
    let stored = radl::parse(&read("conformance/files/front_wn_ctx.radl")).unwrap_or_default();
    let front = dummy_vm(&stored, "front", 0);
    assert_eq!(
        normalized(&front.to_vm_info_text()),
        golden_body("03_lifecycle_ctx.json", "vm 0 info")
    );
    let worker = dummy_vm(&stored, "wn", 1);
    assert_eq!(
        normalized(&worker.to_vm_info_text()),
        golden_body("03_lifecycle_ctx.json", "vm 1 info")
    );
    let golden: Json = serde_json::from_str(&with_password(&golden_body(
        "03_lifecycle_ctx.json",
        "vm 0 info json",
    )))
    .unwrap_or_default();
    let info = Radl {
        networks: front.networks.clone(),
        systems: front.systems.clone(),
        ..Radl::default()
    };
    let ours: Json = serde_json::from_str(&info.to_json()).unwrap_or_default();
    assert_eq!(ours, golden["radl"]);
}

#[test]
fn dummy_alter_matches_im_without_the_duplicated_line() {
    let deviations: Json =
        serde_json::from_str(&read("conformance/deviations.json")).unwrap_or_default();
    let stored = radl::parse(&read("conformance/files/front_wn_ctx.radl")).unwrap_or_default();

    let mut front = dummy_vm(&stored, "front", 0);
    let request =
        radl::parse("system front ( cpu.count >= 2 and memory.size >= 2048m )").unwrap_or_default();
    merge::dummy_alter(&mut front.systems[0], &request).unwrap_or_else(|e| panic!("{e}"));
    let expected = deviations["09_vm_alter/alter vm 0 cpu and memory"]["expect"]["body"].as_str();
    assert_eq!(Some(normalized(&front.to_text()).as_str()), expected);
    assert_eq!(
        front.systems[0].property("cpu.count").map(|v| v.to_text()),
        Some("2".into())
    );
    assert_eq!(
        front.systems[0]
            .property("memory.size")
            .map(|v| v.to_text()),
        Some("2048000000".into())
    );

    let mut worker = dummy_vm(&stored, "wn", 2);
    let request = radl::parse_json(
        r#"[{"class": "system", "id": "wn", "cpu.count": 3, "memory.size": 3221225472}]"#,
    )
    .unwrap_or_default();
    merge::dummy_alter(&mut worker.systems[0], &request).unwrap_or_else(|e| panic!("{e}"));
    let expected = deviations["09_vm_alter/alter vm with RADL-JSON"]["expect"]["body"].as_str();
    assert_eq!(Some(normalized(&worker.to_text()).as_str()), expected);

    let without_memory = radl::parse("system front ( cpu.count >= 2 )").unwrap_or_default();
    let error = merge::dummy_alter(&mut front.systems[0], &without_memory)
        .expect_err("memory.size is required");
    assert!(error.to_string().contains("memory.size"));
}

#[test]
fn unknown_references_are_refused_as_im_refuses_them() {
    let stored = radl::parse(&read("conformance/files/front_wn_ctx.radl")).unwrap_or_default();
    let mut request = radl::parse("system wnno deploy wnno 1").unwrap_or_default();
    let error = merge::resolve_references(&mut request, &stored, &[]).expect_err("wnno is unknown");
    assert_eq!(
        error.to_string(),
        "Unknown reference in RADL to <class 'radl.radl.system'> 'wnno'"
    );
    let mut request = radl::parse("network nope\nsystem wn\ndeploy wn 1").unwrap_or_default();
    let error = merge::resolve_references(&mut request, &stored, &[]).expect_err("nope is unknown");
    assert_eq!(
        error.to_string(),
        "Unknown reference in RADL to <class 'radl.radl.network'> 'nope'"
    );
    let mut request = radl::parse("configure c").unwrap_or_default();
    let error = merge::resolve_references(&mut request, &stored, &[]).expect_err("c is unknown");
    assert_eq!(
        error.to_string(),
        "Unknown reference in RADL to <class 'radl.radl.configure'> 'c'"
    );

    // A referenced system whose network is not re-declared fails check, as in IM.
    let mut request = radl::parse("system wn\ndeploy wn 1").unwrap_or_default();
    let error =
        merge::resolve_references(&mut request, &stored, &[]).expect_err("privada is missing");
    assert_eq!(
        error.to_string(),
        "Line 14: Invalid value in property 'net_interface.0.connection'"
    );

    let mut request = radl::parse("network privada\nsystem wn\ndeploy wn 1").unwrap_or_default();
    merge::resolve_references(&mut request, &stored, &[]).unwrap_or_else(|e| panic!("{e}"));
    let mut merged = stored.clone();
    merge::update_stored(&mut merged, &request).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(merged.deploys.len(), 1);
    assert_eq!(merged.deploys[0].vm_count(), Some(1));
    assert_eq!(merged.systems.len(), 2);
    let wn = merge::vm_radl(&request, "wn").unwrap_or_default();
    assert_eq!(wn.networks.len(), 1);
}

#[test]
fn contextualization_disabled_is_detected() {
    let ctx = radl::parse(&read("conformance/files/front_wn_ctx.radl")).unwrap_or_default();
    assert!(ctx.contextualization_disabled());
    let noctx = radl::parse(&read("conformance/files/front_wn_noctx.radl")).unwrap_or_default();
    assert!(!noctx.contextualization_disabled());
    let cloud_init = radl::parse("system node ()\nconfigure node ()\ncontextualize ( system node configure node with cloud_init )").unwrap_or_default();
    assert!(cloud_init.contextualization_disabled());
    assert!(noctx.network("publica").is_some_and(|n| n.is_public()));
    assert!(!noctx.network("privada").is_some_and(|n| n.is_public()));
}

#[test]
fn reconfigure_merges_the_recipe_as_im_shows_it() {
    let mut stored = radl::parse(&read("conformance/files/front_wn_ctx.radl")).unwrap_or_default();
    let request =
        radl::parse("configure front (\n@begin\n---\n - tasks:\n   - debug: msg=hello\n@end\n)\n")
            .unwrap_or_default();
    merge::reconfigure(&mut stored, &request).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        stored.to_text(),
        golden_body("13_reconfigure.json", "radl now has configure")
    );

    let invalid = radl::parse("configure front (\n@begin\n- a: [\n@end\n)").unwrap_or_default();
    let error = merge::reconfigure(&mut stored, &invalid).expect_err("invalid YAML");
    assert!(
        error.to_string().starts_with("Error parsing YAML: "),
        "{error}"
    );
}
