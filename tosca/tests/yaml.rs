//! The TOSCA YAML emitter writes what the loader reads back (proptest): any tree of
//! strings (quotes, line breaks, tabs, non-ASCII, text that looks like numbers,
//! booleans or dates), numbers, booleans and nulls survives `dump` then `load`, and
//! the loader never panics on arbitrary text.

use infralog_tosca::yaml::{dump, load, Node};
use infralog_tosca::Template;
use proptest::prelude::*;

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z]{1,8}( [a-z]{1,8}){0,20}",
        "[ -~]{0,40}",
        "[ -~\n\t]{0,120}",
        prop::collection::vec(
            prop_oneof![
                Just("yes".to_string()),
                Just("1.5".to_string()),
                Just("0x1F".to_string()),
                Just("2001-12-14".to_string()),
                Just("~".to_string()),
                Just("<<".to_string()),
                Just("- ".to_string()),
                Just(": ".to_string()),
                Just(" #".to_string()),
                Just("'".to_string()),
                Just("\"".to_string()),
                Just("\\".to_string()),
                Just("\n".to_string()),
                Just("  ".to_string()),
                Just("é".to_string()),
                Just("\u{2028}".to_string()),
                Just("\u{85}".to_string()),
                Just("\u{feff}".to_string()),
                "[a-z]{1,30}",
            ],
            0..12
        )
        .prop_map(|parts| parts.concat()),
    ]
}

fn scalar() -> impl Strategy<Value = Node> {
    prop_oneof![
        Just(Node::Null),
        any::<bool>().prop_map(Node::Bool),
        any::<i64>().prop_map(Node::Int),
        any::<f64>()
            .prop_filter("NaN never equals itself", |f| !f.is_nan())
            .prop_map(Node::Float),
        text().prop_map(Node::Str),
    ]
}

fn tree() -> impl Strategy<Value = Node> {
    scalar().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Node::Seq),
            prop::collection::btree_map("[ -~]{0,20}|[a-z_]{1,12}", inner, 0..6).prop_map(|map| {
                Node::Map(map.into_iter().map(|(k, v)| (Node::Str(k), v)).collect())
            }),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn dump_then_load_gives_the_same_tree(node in tree()) {
        let root = Node::Map(vec![(Node::Str("root".into()), node)]);
        let text = dump(&root);
        let loaded = load(&text).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        prop_assert_eq!(&loaded, &root, "dumped as:\n{}", text);
        prop_assert_eq!(dump(&loaded), text);
    }

    #[test]
    fn arbitrary_text_never_panics(text in "[ -~\n\t]{0,300}") {
        let _ = load(&text);
        let _ = Template::parse(&text).and_then(|t| t.to_radl());
    }

    #[test]
    fn templates_with_arbitrary_values_never_panic(value in "[ -~]{0,30}", count in "[ -~]{0,6}") {
        let text = format!(
            "tosca_definitions_version: tosca_simple_yaml_1_0\ntopology_template:\n  node_templates:\n    n:\n      type: tosca.nodes.Compute\n      capabilities:\n        host:\n          properties:\n            mem_size: '{v}'\n            num_cpus: {c}\n        scalable:\n          properties:\n            count: {c}\n        endpoint:\n          properties:\n            network_name: '{v}'\n",
            v = value.replace('\'', "''"),
            c = count,
        );
        if let Ok(template) = Template::parse(&text) {
            let _ = template.to_radl();
            let _ = template.outputs(&[]);
            let _ = template.to_yaml();
        }
    }
}
