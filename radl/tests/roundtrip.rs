//! Printing then reading gives the same document back (proptest), and RADL-JSON round
//! trips.

use infralog_radl::{self as radl, Radl};
use proptest::prelude::*;

/// Characters a RADL string may hold so that IM's printer (which does not escape) can
/// read them back: anything but `'` and `\`.
fn text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 _.,:;/#\"@()=<>é€\n-]{0,12}"
}

fn number() -> impl Strategy<Value = String> {
    prop_oneof![
        (0u64..100_000_000_000).prop_map(|n| n.to_string()),
        (0u32..1_000_000, 1u32..1000).prop_map(|(a, b)| format!("{a}.{b}")),
    ]
}

fn unit() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        Just(""),
        Just("m"),
        Just("GiB"),
        Just("k"),
        Just("TB"),
        Just("M"),
        Just("ECU")
    ]
}

/// Lists only where RADL-JSON keeps them as lists (`disk.N.image.url`); elsewhere IM
/// turns a JSON list into `contains` groups.
fn simple_feature(prop: String) -> BoxedStrategy<String> {
    if prop.ends_with("image.url") {
        return prop::collection::vec("[a-z0-9 ]{1,6}", 0..4)
            .prop_map(move |items| {
                let quoted: Vec<String> = items.iter().map(|i| format!("'{i}'")).collect();
                format!("{prop} = [{}]", quoted.join(","))
            })
            .boxed();
    }
    prop_oneof![
        text().prop_map({
            let prop = prop.clone();
            move |t| format!("{prop} = '{t}'")
        }),
        (
            prop_oneof![Just("="), Just(">="), Just("<="), Just(">"), Just("<")],
            number(),
            unit()
        )
            .prop_map({
                let prop = prop.clone();
                move |(op, n, u)| format!("{prop} {op} {n}{u}")
            }),
    ]
    .boxed()
}

fn features(depth: u32) -> BoxedStrategy<String> {
    let props = prop::sample::subsequence(
        vec![
            "cpu.count",
            "memory.size",
            "disk.0.os.name",
            "net_interface.0.dns_name",
            "a.b",
            "x_y",
            "v-1",
            "disk.1.image.url",
        ],
        0..6,
    );
    let plain = props.prop_flat_map(|props| {
        props
            .into_iter()
            .map(|p| simple_feature(p.to_owned()))
            .collect::<Vec<_>>()
    });
    if depth == 0 {
        return plain.prop_map(|items| items.join(" and\n")).boxed();
    }
    let groups = prop::collection::vec(features(depth - 1), 0..3);
    let softs = prop::collection::vec((1u32..100, features(depth - 1)), 0..2);
    (plain, groups, softs)
        .prop_map(|(mut items, groups, softs)| {
            for (index, group) in groups.into_iter().enumerate() {
                let inner = if group.is_empty() {
                    String::new()
                } else {
                    format!(" and {group}")
                };
                items.push(format!(
                    "disk.0.applications contains (name = 'app{index}'{inner})"
                ));
            }
            for (weight, group) in softs {
                items.push(format!("soft {weight} ( {group} )"));
            }
            items.join(" and\n")
        })
        .boxed()
}

/// A deploy's cloud id: a name, never one of RADL's keywords (`deploy s 1 and` is a
/// syntax error for IM too).
fn cloud_id() -> impl Strategy<Value = String> {
    "[a-z]{1,4}".prop_filter("a keyword is not a cloud id", |id| {
        !["and", "step", "with", "soft"].contains(&id.as_str())
    })
}

fn recipe() -> impl Strategy<Value = Option<String>> {
    prop::option::of(
        prop::collection::vec("- [a-z0-9]{1,8}", 1..4).prop_map(|lines| lines.join("\n")),
    )
}

fn document() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(prop::option::of("[a-z]{1,5}"), 0..3),
        prop::collection::vec((prop::bool::ANY, features(2)), 1..4),
        prop::collection::vec(recipe(), 0..3),
        prop::option::of((
            0u32..1000,
            prop::collection::vec((0usize..3, 0u32..3, prop::bool::ANY), 0..3),
        )),
        prop::collection::vec((0usize..3, 0u32..5, prop::option::of(cloud_id())), 0..3),
        prop::option::of(features(0)),
    )
        .prop_map(
            |(networks, systems, configures, contextualize, deploys, description)| {
                let mut out = String::new();
                if let Some(description) = description {
                    out.push_str(&format!("description d ({description})\n"));
                }
                for (index, outbound) in networks.iter().enumerate() {
                    match outbound {
                        Some(value) => {
                            out.push_str(&format!("network n{index} (outbound = '{value}')\n"))
                        }
                        None => out.push_str(&format!("network n{index}\n")),
                    }
                }
                for (index, (reference, body)) in systems.iter().enumerate() {
                    if *reference {
                        out.push_str(&format!("system s{index}\n"));
                    } else {
                        out.push_str(&format!("system s{index} (\n{body}\n)\n"));
                    }
                }
                for (index, recipe) in configures.iter().enumerate() {
                    match recipe {
                        Some(recipe) => out.push_str(&format!(
                            "configure c{index} (\n@begin\n{recipe}\n@end\n)\n"
                        )),
                        None => out.push_str(&format!("configure c{index} ()\n")),
                    }
                }
                if let Some((max_time, items)) = contextualize {
                    out.push_str(&format!("contextualize {max_time} (\noption o = 'v'\n"));
                    for (system, step, tool) in items {
                        let tail = if tool {
                            " with cloud_init".to_owned()
                        } else {
                            format!(" step {step}")
                        };
                        out.push_str(&format!("system s{system} configure c{step}{tail}\n"));
                    }
                    out.push_str(")\n");
                }
                for (system, count, cloud) in deploys {
                    out.push_str(&format!(
                        "deploy s{system} {count} {}\n",
                        cloud.unwrap_or_default()
                    ));
                }
                out
            },
        )
}

/// IM prints a recipe between newlines it also keeps when reading: one more line at
/// each end after every round.
fn grow_recipes(mut doc: Radl) -> Radl {
    for configure in &mut doc.configures {
        if let Some(recipe) = &mut configure.recipe {
            *recipe = format!("\n{recipe}\n");
        }
    }
    doc
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn printing_then_reading_is_the_identity(text in document()) {
        let doc = match radl::parse(&text) {
            Ok(doc) => doc,
            // Generated documents may combine features IM refuses (e.g. disjoint bounds).
            Err(error) => {
                prop_assert_ne!(error.kind(), radl::ErrorKind::Syntax, "{}: {}", error, text);
                return Ok(());
            }
        };
        let printed = doc.to_text();
        let again = radl::parse(&printed).map_err(|e| TestCaseError::fail(format!("{e}\n{printed}")))?;
        prop_assert_eq!(&again, &grow_recipes(doc.clone()), "{}", printed);
        prop_assert_eq!(again.to_text(), grow_recipes(doc.clone()).to_text());
        // RADL-JSON keeps everything but a description's name (IM writes an object id).
        let without_description = Radl { description: None, ..doc };
        let json = without_description.to_json();
        let from_json = radl::parse_json(&json).map_err(|e| TestCaseError::fail(format!("{e}\n{json}")))?;
        prop_assert_eq!(from_json.to_json(), json);
    }
}

#[test]
fn json_round_trips_keep_im_answers() {
    let answers = [
        r#"[{"class":"network","id":"publica","outbound":"yes"},{"class":"system","id":"node","cpu.count_min":1,"memory.size_min":536870912,"net_interface.0.connection":"publica","disk.0.os.name":"linux"},{"class":"deploy","system":"node","vm_number":2},{"class":"contextualize"}]"#,
        r#"[{"class":"system","id":"s","softs":[{"weight":3,"items":{"a":"b","c_max":4}}],"disk.0.applications":[{"name":"a","version":"2"}],"disk.0.image.url":["a","b"],"x":2.5,"y":true}]"#,
        r#"[{"class":"configure","id":"c","recipes":"- a: 1\n"},{"class":"contextualize","max_time":5,"items":[{"system":"s","configure":"c","step":2,"ctxt_tool":"x"}],"options":{"o":"v","p_min":3}}]"#,
    ];
    for answer in answers {
        let doc = radl::parse_json(answer).unwrap_or_else(|e| panic!("{answer}: {e}"));
        assert_eq!(doc.to_json(), answer);
    }
}

#[test]
fn text_to_json_to_text_is_lossless_without_units_or_strict_bounds() {
    let text = "network publica ( outbound = 'yes' )\nsystem node (\ncpu.count >= 1 and\nmemory.size >= 536870912 and\nnet_interface.0.connection = 'publica' and\ndisk.0.applications contains (name = 'a' and\nversion = '1') and\nsoft 10 ( x = 'y' )\n)\n\nconfigure node (\n@begin\n- a: 1\n@end\n)\ncontextualize 30 (\noption ansible_version = '2.19'\nsystem node configure node step 1 \n)\ndeploy node 2 one";
    let doc = radl::parse(text).unwrap_or_default();
    let from_json = radl::parse_json(&doc.to_json()).unwrap_or_default();
    assert_eq!(from_json.to_text(), doc.to_text());
}

#[test]
fn json_output_is_in_base_units_and_loses_what_im_loses() {
    let doc = radl::parse(
        "system s ( memory.size >= 1g and memory.size <= 2g and cpu.count > 1 and v >= '1.0' )",
    )
    .unwrap_or_default();
    assert_eq!(
        doc.to_json(),
        r#"[{"class":"system","id":"s","memory.size_min":1000000000,"cpu.count_min":1,"v":"1.0"}]"#
    );
}
