//! Error messages: IM's text, plus the real line and column and what was expected.

use infralog_radl::{self as radl, ErrorKind};

fn error(text: &str) -> radl::RadlError {
    radl::parse(text)
        .and_then(|doc| doc.check().map(|()| doc))
        .expect_err(text)
}

#[test]
fn a_truncated_body_fails_at_the_end_of_the_input() {
    let e = error("network n ( outbound = ");
    assert_eq!(e.to_string(), "Parse error in: None");
    assert_eq!(e.kind(), ErrorKind::Syntax);
    assert_eq!((e.line(), e.column()), (Some(2), Some(1)));
    assert_eq!(
        e.expected(),
        Some("a quoted string, a number, a list or 'random(N)'")
    );
}

#[test]
fn an_unexpected_token_is_named_as_im_names_it() {
    let e = error("system s ( a = 'x\ny' and b = 1 and\nc = 2 )\nx");
    // IM does not count the newline inside the string: its line 3 is our line 4.
    assert_eq!(
        e.to_string(),
        "Line 3: Parse error in: LexToken(VAR,'x',3,43)"
    );
    assert_eq!((e.line(), e.column()), (Some(4), Some(1)));
    assert!(
        e.diagnostic().contains("expected 'network', 'system'"),
        "{}",
        e.diagnostic()
    );

    let e = error("system s ( x = 1 2 )");
    assert_eq!(
        e.to_string(),
        "Line 1: Parse error in: LexToken(NUMBER,2,1,17)"
    );
    assert_eq!((e.line(), e.column()), (Some(1), Some(18)));

    let e = error("system s ( x = -1 and y = \"dq\" )");
    assert_eq!(
        e.to_string(),
        "Line 1: Parse error in: LexToken(VAR,'dq',1,27)"
    );

    let e = error("system x description d");
    assert_eq!(
        e.to_string(),
        "Line 1: Parse error in: LexToken(DESCRIPTION,'description',1,9)"
    );

    let e = error("configure c (@begin@end)");
    assert_eq!(
        e.to_string(),
        "Line 1: Parse error in: LexToken(RECIPE_END,'@end',1,19)"
    );
}

#[test]
fn lexer_failures_keep_python_messages() {
    assert_eq!(error(")").to_string(), "pop from empty list");
    assert_eq!(
        error("network a network a )").to_string(),
        "pop from empty list"
    );
    assert_eq!(
        error("system a ( x = 'random(12)' )").to_string(),
        "list index out of range"
    );
}

#[test]
fn semantic_errors_while_reading() {
    assert_eq!(
        error("network a () network a ()").to_string(),
        "Aspect with the same id was found."
    );
    assert_eq!(
        error("description d description e system x").to_string(),
        "Description can only be defined once."
    );
    assert_eq!(
        error("system s ( cpu.count = 3 and cpu.count = 4 )").to_string(),
        "Line 1: Disjoint intervals!. Involved features: ['cpu.count = 3', 'cpu.count = 3']"
    );
    assert_eq!(
        error("system s (\ncpu.count >= 5 and\ncpu.count <= 4 )").to_string(),
        "Line 3: Disjoint intervals!. Involved features: ['cpu.count >= 5', 'None']"
    );
    assert_eq!(
        error("system s ( x = 'a' and x = 'b')").to_string(),
        "Line 1: Conflict adding `x = 'b'` because `x = 'a'` is already set and conflict is error"
    );
    assert_eq!(
        error("system a ( x = 1 and x = 'y')").to_string(),
        "'tuple' object has no attribute 'value'"
    );
    assert_eq!(
        error("system a ( x = 'y' and x = 1)").to_string(),
        "'Feature' object is not iterable"
    );
}

#[test]
fn a_group_is_built_only_after_the_token_that_follows_it_is_read() {
    // IM's LALR parser reduces a sentence with one token of lookahead: a syntax error
    // (or a lexer failure) right after a group wins over a conflict inside it.
    assert_eq!(
        error("system s (x='a' and x='b') foo").to_string(),
        "Line 1: Parse error in: LexToken(VAR,'foo',1,27)"
    );
    assert_eq!(
        error("system s (x='a' and x='b') )").to_string(),
        "pop from empty list"
    );
    assert_eq!(
        error("system s (x='a' and x='b')").to_string(),
        "Line 1: Conflict adding `x = 'b'` because `x = 'a'` is already set and conflict is error"
    );
    assert_eq!(
        error("system s ( a contains (x='a' and x='b') ) foo").to_string(),
        "Line 1: Conflict adding `x = 'b'` because `x = 'a'` is already set and conflict is error"
    );
}

#[test]
fn check_errors_carry_im_lines_and_real_positions() {
    let e = error("network x (\n  outbound = 'maybe' )");
    assert_eq!(
        e.to_string(),
        "Line 2: Invalid value; expected one of ['YES', 'NO']"
    );
    assert_eq!((e.line(), e.column()), (Some(2), Some(3)));
    let cases = [
        ("system s (net_interface.0.connection = 'x')", "Line 1: Invalid value in property 'net_interface.0.connection'"),
        ("system s (disk.1.size >= 1g)", "Invalid indices values in properties 'disk'"),
        ("system s ( disk.x.size = 1)", "Line 1: Invalid property name; expected an index."),
        ("network n ()\nsystem s (net_interface.0.connection='n' and net_interface.1.ip='2')", "Some net_interface does not have a connection"),
        ("network n ()\nsystem s (net_interface.0.connection='n' and net_interface.2.ip='2')", "Invalid indices values in properties 'net_interface'"),
        ("network n ()\nsystem s (net_interface.0.dns_name='x')", "Some net_interface does not have a connection"),
        ("system s ( memory.size >= 1.5g )", "Line 1: Invalid type; expected <class 'int'>"),
        ("system s ( cpu.count >= 'x' )", "Line 1: Invalid type; expected <class 'float'>"),
        ("system s ( cpu.count >= 1 k )", "Line 1: Invalid unit; expected none"),
        ("system s ( cpu.performance >= 5 )", "Line 1: Invalid unit; expected one of ['ECU', 'GCEU', 'HRZ']"),
        ("system s ( memory.size >= 1 Ti)", "Line 1: Invalid unit; expected one of ['', 'B', 'K', 'M', 'G', 'T', 'KB', 'MB', 'GB', 'TB', 'KI', 'MI', 'GI', 'KIB', 'MIB', 'GIB', 'TIB']"),
        ("system s (disk.0.os.name >= 'linux')", "Line 1: Invalid operator; expected '='"),
        ("system s (disk.0.os.name = 'beos')", "Line 1: Invalid value; expected one of ['LINUX', 'WINDOWS', 'MAC OS X']"),
        ("system s (disk.0.os.credentials.new.password = 'weak')", "Line 1: Invalid value in property 'disk.0.os.credentials.new.password'"),
        ("system s (disk.0.os.version = '1..2')", "Line 1: Invalid value in property 'disk.0.os.version'"),
        ("system s (disk.0.applications contains (name = 'a' and version = 'x1'))", "Line 1: Invalid value in property 'version'"),
        ("system s (ansible_host = 'h')", "Line 1: Invalid value in property 'ansible_host'"),
        ("ansible h (host = 'x')", "Line 1: Ansible host must have a credentials.username"),
        ("ansible h (credentials.username = 'u')", "Line 1: Ansible host must have a host"),
        ("ansible h (host = 'x' and credentials.username = 'u')", "Line 1: Ansible host must have a credentials.password or credentials.private_key"),
        ("deploy s 1", "Line 1: Invalid system id in the deploy."),
        ("network x ( outports = '22-' )", "Line 1: Invalid value in property 'outports'"),
        ("contextualize 5.5 ()", "Invalid 'max time' in 'contextualize'"),
        ("contextualize ( system a configure b )", "Line 1: Invalid system id 'a'"),
        ("system a ()\ncontextualize (\nsystem a configure b )", "Line 3: Invalid configure id 'b'"),
    ];
    for (text, message) in cases {
        let e = error(text);
        assert_eq!(e.to_string(), message, "{text}");
        assert_eq!(e.kind(), ErrorKind::Check, "{text}");
        assert!(e.line().is_some(), "{text}: no position");
    }
}

#[test]
fn invalid_yaml_recipes_keep_im_prefix() {
    let e = error("configure c (\n@begin\n- a: [\n@end\n)");
    assert!(
        e.to_string().starts_with("Line 1: Invalid YAML code: "),
        "{e}"
    );
    assert!(e.to_string().ends_with('.'), "{e}");
}

#[test]
fn radl_json_errors_read_as_im() {
    let cases = [
        ("not json", "Expecting value: line 1 column 1 (char 0)"),
        ("{\"a\":1}", ""),
        (
            "{\"class\":1}",
            "string indices must be integers, not 'str'",
        ),
        ("5", "'int' object is not iterable"),
        ("[{\"class\":\"system\"}]", "'id'"),
        (
            "[{\"class\":\"foo\",\"id\":\"x\"}]",
            "module 'radl.radl' has no attribute 'foo'",
        ),
        ("[{\"class\":\"configure\",\"id\":\"c\"}]", "'recipes'"),
        (
            "[{\"class\":\"system\",\"id\":\"s\",\"x\":[\"a\"]}]",
            "'str' object has no attribute 'getValue'",
        ),
    ];
    for (text, message) in cases {
        let e = radl::parse_json(text).expect_err(text);
        assert_eq!(e.to_string(), message, "{text}");
    }
    let e = radl::parse_json("[{\"class\":\"configure\",\"id\":\"c\",\"recipes\":\"- a: [\"}]")
        .expect_err("yaml");
    assert!(e.to_string().starts_with("Error parsing YAML: "));
}

#[test]
fn a_keyword_is_not_a_deploy_cloud_id() {
    // Found by the round-trip property test: `and` as a cloud id is the keyword token.
    let e = error("system s0 (\n\n)\ndeploy s0 0 and\n");
    assert_eq!(e.kind(), ErrorKind::Syntax);
    assert_eq!(
        e.to_string(),
        "Line 4: Parse error in: LexToken(AND,'and',4,27)"
    );
}
