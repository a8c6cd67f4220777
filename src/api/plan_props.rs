//! Property: whatever create, add or reconfigure accepts, in RADL text or RADL-JSON,
//! the RADL it stores parses again and prints back to itself. Drives the pure layer
//! the handlers use: the body gate (`parse_body` then `stored_text`, as
//! `body::parse_deployment` does), the planning of creates and adds, and IM's
//! reconfigure merge.

use std::time::Duration;

use infralog_actors::connectors::Connectors;
use proptest::prelude::*;
use serde_json::{json, Value as Json};

use super::{plan_resources, ContextPolicy};
use crate::auth::{authenticate, parse_authorization, Identity};
use crate::radl::storable::{stored_text, without_recipe_growth};
use crate::radl::{self, Format, Radl};

/// Names, mostly valid so that documents hang together; some RADL text cannot hold.
fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => prop::sample::select(vec!["node", "front", "net", "x.y-z", "_n1", "sé"]).prop_map(String::from),
        1 => prop::sample::select(vec!["system", "and", "a b", "cp\u{fffd}.arch", "é1", "x'y", "", "1a"]).prop_map(String::from),
    ]
}

/// Strings with everything RADL text treats specially.
fn hostile_text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-z0-9 ._'\"@#()=,\\[\\]\n\u{e9}\u{fffd}\\\\-]{0,10}",
        1 => prop::sample::select(vec![
            "@end", "random(3)", "a\\", "it's", "x\n@end\ny", "a\\'b", "\\\n", "'", "yes", "linux",
        ])
        .prop_map(String::from),
    ]
}

fn number() -> impl Strategy<Value = Json> {
    prop_oneof![
        (0i64..5000).prop_map(|n| json!(n)),
        any::<i64>().prop_map(|n| json!(n)),
        (-1.0e6f64..1.0e6).prop_map(|n| json!(n)),
        Just(json!(1.0e300)),
        any::<bool>().prop_map(|b| json!(b)),
    ]
}

fn feature_value() -> impl Strategy<Value = Json> {
    prop_oneof![
        3 => hostile_text().prop_map(Json::from),
        2 => number(),
        1 => prop::collection::vec(hostile_text(), 0..3).prop_map(|items| json!(items)),
        1 => (hostile_text(), hostile_text())
            .prop_map(|(name, version)| json!([{"name": name, "version": version}])),
    ]
}

fn feature_key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(vec![
            "cpu.count_min", "memory.size_min", "disk.0.os.name", "disk.0.image.url",
            "disk.0.os.credentials.password", "disk.0.applications", "instance_type",
            "disk.0.os.version", "x-y",
        ])
        .prop_map(String::from),
        1 => name(),
    ]
}

fn json_aspect() -> impl Strategy<Value = Json> {
    let features = prop::collection::vec((feature_key(), feature_value()), 0..4);
    prop_oneof![
        3 => (name(), features).prop_map(|(id, features)| {
            let mut object = json!({"class": "system", "id": id});
            for (key, value) in features {
                object[key] = value;
            }
            object
        }),
        1 => (name(), hostile_text()).prop_map(|(id, outbound)| json!({"class": "network", "id": id, "outbound": outbound})),
        1 => (name(), prop_oneof![Just("- hosts: all".to_string()), hostile_text()])
            .prop_map(|(id, recipes)| json!({"class": "configure", "id": id, "recipes": recipes})),
        2 => (name(), prop_oneof![3 => (0i64..3).prop_map(|n| json!(n)), 1 => number()], prop::option::of(name()))
            .prop_map(|(system, count, cloud)| {
                let mut object = json!({"class": "deploy", "system": system, "vm_number": count});
                if let Some(cloud) = cloud {
                    object["cloud"] = json!(cloud);
                }
                object
            }),
        1 => (name(), name(), name()).prop_map(|(system, configure, tool)| {
            json!({"class": "contextualize", "items": [{"system": system, "configure": configure, "ctxt_tool": tool}]})
        }),
    ]
}

fn json_body() -> impl Strategy<Value = String> {
    prop::collection::vec(json_aspect(), 1..5).prop_map(|aspects| Json::Array(aspects).to_string())
}

/// RADL text with hostile strings, written as a user would (`\'` for a quote).
fn text_body() -> impl Strategy<Value = String> {
    let feature = prop_oneof![
        (feature_key(), hostile_text()).prop_map(|(k, v)| format!(
            "{} = '{}'",
            k.trim_end_matches("_min"),
            v.replace('\'', "\\'")
        )),
        (feature_key(), 0u32..5000)
            .prop_map(|(k, n)| format!("{} >= {n}", k.trim_end_matches("_min"))),
    ];
    (
        name(),
        prop::collection::vec(feature, 0..4),
        0u32..3,
        prop::option::of(hostile_text()),
    )
        .prop_map(|(system, features, count, recipe)| {
            let mut text = format!(
                "network net (outbound = 'no')\nsystem {system} (\n{}\n)\n",
                features.join(" and\n")
            );
            if let Some(recipe) = recipe {
                text.push_str(&format!(
                    "configure {system} (\n@begin\n{recipe}\n@end\n)\n"
                ));
            }
            text.push_str(&format!("deploy {system} {count}\n"));
            text
        })
}

fn identity() -> Identity {
    let lines = parse_authorization(
        "id = im; type = InfrastructureManager; username = u; password = p\\nid = dummy; type = Dummy",
    )
    .expect("a valid header");
    authenticate(&lines).expect("an IM user")
}

/// What `body::parse_deployment` accepts.
fn accepted(body: &str, format: Format) -> Option<Radl> {
    let radl = radl::parse_body(body, format).ok()?;
    stored_text(&radl).ok()?;
    Some(radl)
}

/// The text parses again, to a document that prints the same text.
fn reads_back(text: &str) -> Result<(), TestCaseError> {
    let reread = radl::parse(text)
        .map_err(|e| TestCaseError::fail(format!("the stored RADL does not parse: {e}\n{text}")))?;
    prop_assert_eq!(without_recipe_growth(reread).to_text(), text);
    Ok(())
}

const STORED: &str = "network net (outbound = 'no')\nsystem node (\ncpu.count >= 1 and\nmemory.size >= 512m and\nnet_interface.0.connection = 'net' and\ndisk.0.os.credentials.password = 'it\\'s'\n)\ndeploy node 1";

fn check_body(body: &str, format: Format) -> Result<(), TestCaseError> {
    let Some(request) = accepted(body, format) else {
        // Refused at the door: nothing is stored.
        return Ok(());
    };
    let identity = identity();
    let connectors = Connectors::builtin();
    let stored = radl::parse(STORED).expect("the stored document parses");
    for base in [Radl::default(), stored] {
        match plan_resources(
            &base,
            request.clone(),
            &identity,
            &connectors,
            1000,
            true,
            ContextPolicy::simulated(Duration::ZERO),
        ) {
            Ok(planned) => {
                reads_back(&planned.request.radl)?;
                if let Some(request_radl) = &planned.request.request_radl {
                    reads_back(request_radl)?;
                }
            }
            // A body the gate let through never fails only because of storage.
            Err(error) => prop_assert!(!error.0.contains("cannot be stored"), "{}", error.0),
        }
        let mut reconfigured = base.clone();
        if radl::merge::reconfigure(&mut reconfigured, &request).is_ok() {
            let text = stored_text(&reconfigured).map_err(|e| {
                TestCaseError::fail(format!("reconfigure stores what cannot be read: {e}"))
            })?;
            reads_back(&text)?;
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn what_radl_json_bodies_store_reads_back(body in json_body()) {
        check_body(&body, Format::Json)?;
    }

    #[test]
    fn what_radl_text_bodies_store_reads_back(body in text_body()) {
        check_body(&body, Format::Text)?;
    }
}

/// The property is not vacuous: hostile but representable documents are accepted
/// and planned.
#[test]
fn hostile_but_representable_documents_are_accepted() {
    for (body, format) in [
        (r#"[{"class":"network","id":"net"},{"class":"system","id":"sé","disk.0.os.credentials.password":"it's \"q\" é","net_interface.0.connection":"net"},{"class":"deploy","system":"sé","vm_number":1}]"#, Format::Json),
        ("network net ()\nsystem node (\nx = 'a\\'b\\\\c' and\nnet_interface.0.connection = 'net'\n)\ndeploy node 1", Format::Text),
        ("network net ()\nsystem node (\nnet_interface.0.connection = 'net'\n)\nconfigure node (\n@begin\n---\n - tasks:\n   - debug: msg=hello\n@end\n)\ndeploy node 1", Format::Text),
        (r#"[{"class":"network","id":"net"},{"class":"system","id":"node","net_interface.0.connection":"net"},{"class":"configure","id":"node","recipes":"- hosts: all\n  tasks: []\n"},{"class":"deploy","system":"node","vm_number":1}]"#, Format::Json),
    ] {
        let request = accepted(body, format).expect("accepted");
        let planned = plan_resources(&Radl::default(), request, &identity(), &Connectors::builtin(), 1000, true, ContextPolicy::simulated(Duration::ZERO))
            .expect("planned");
        assert_eq!(planned.request.vms.len(), 1);
        let reread = radl::parse(&planned.request.radl).expect("reads back");
        assert_eq!(without_recipe_growth(reread).to_text(), planned.request.radl);
    }
}
