use super::*;

#[test]
fn loads_yaml_1_1_implicit_types() {
    let node =
        load("a: yes\nb: 010\nc: 1.5\nd: ~\ne: '2'\nf: 0x1F\ng: 1_000\nh: 2001-12-14\n").unwrap();
    assert_eq!(node.get("a"), Some(&Node::Bool(true)));
    assert_eq!(node.get("b"), Some(&Node::Int(8)));
    assert_eq!(node.get("c"), Some(&Node::Float(1.5)));
    assert_eq!(node.get("d"), Some(&Node::Null));
    assert_eq!(node.get("e"), Some(&Node::Str("2".into())));
    assert_eq!(node.get("f"), Some(&Node::Int(31)));
    assert_eq!(node.get("g"), Some(&Node::Int(1000)));
    assert_eq!(node.get("h"), Some(&Node::Timestamp("2001-12-14".into())));
}

#[test]
fn refuses_two_documents_unknown_tags_and_unhashable_keys() {
    assert!(load("a: 1\n---\nb: 2\n").is_err());
    assert!(load("a: !vault x\n").is_err());
    assert!(load("? [a]\n: 1\n").is_err());
    assert!(load("a: [1\n").is_err());
}

#[test]
fn nested_aliases_cannot_expand_without_bound() {
    let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for level in 1..10 {
        let previous = format!("*a{}", level - 1);
        let items = [previous.as_str(); 10].join(", ");
        text.push_str(&format!("a{level}: &a{level} [{items}]\n"));
    }
    let error = load(&text).unwrap_err();
    assert!(error.0.contains("expands to more than"), "{error}");
}

#[test]
fn merges_keys_and_resolves_aliases() {
    let node = load("base: &b {x: 1, y: 2}\nder:\n  <<: *b\n  y: 3\n").unwrap();
    let der = node.get("der").unwrap();
    assert_eq!(der.get("x"), Some(&Node::Int(1)));
    assert_eq!(der.get("y"), Some(&Node::Int(3)));
}

#[test]
fn dumps_like_pyyaml_safe_dump() {
    let node = load(
        "z: 1\na:\n  list: [server, private_address]\n  empty: {}\n  s: '2'\n  t: 'yes'\n  u: 'a: b'\n  n: null\n  f: 1.0e+20\n  g: 1e20\nm:\n- {k: v, a: b}\n- [x, y]\n",
    )
    .unwrap();
    assert_eq!(
        dump(&node),
        "a:\n  empty: {}\n  f: 1.0e+20\n  g: 1e20\n  list:\n  - server\n  - private_address\n  n: null\n  s: '2'\n  t: 'yes'\n  u: 'a: b'\nm:\n- a: b\n  k: v\n- - x\n  - y\nz: 1\n"
    );
}

#[test]
fn quotes_and_escapes_strings_as_pyyaml() {
    let dump_of = |text: &str| {
        dump(&Node::Map(vec![(
            Node::Str("k".into()),
            Node::Str(text.into()),
        )]))
    };
    assert_eq!(dump_of("it's"), "k: it's\n");
    assert_eq!(dump_of("'q'"), "k: '''q'''\n");
    assert_eq!(dump_of(" lead"), "k: ' lead'\n");
    assert_eq!(dump_of("a\nb"), "k: 'a\n\n  b'\n");
    assert_eq!(dump_of("tab\there"), "k: \"tab\\there\"\n");
    assert_eq!(dump_of("caf\u{e9}"), "k: \"caf\\xE9\"\n");
    assert_eq!(dump_of(""), "k: ''\n");
    assert_eq!(dump_of("- x"), "k: '- x'\n");
}

#[test]
fn folds_long_plain_scalars_at_eighty_columns() {
    let long = "word ".repeat(30).trim_end().to_owned();
    let text = dump(&Node::Map(vec![(
        Node::Str("description".into()),
        Node::Str(long),
    )]));
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.len() > 1, "{text}");
    assert!(lines[1].starts_with("  word"));
    assert_eq!(
        load(&text)
            .unwrap()
            .get("description")
            .unwrap()
            .as_str()
            .unwrap()
            .len(),
        149
    );
}
