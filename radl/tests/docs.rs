//! Keeps the examples of `docs/radl.md` true: every ```radl block parses, every
//! ```radl check block also passes check(), and printing then reading gives it back.

use infralog_radl as radl;

#[test]
fn documentation_examples_parse() {
    let page = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/radl.md"))
        .unwrap_or_else(|e| panic!("docs/radl.md: {e}"));
    let mut examples = 0;
    let mut lines = page.lines();
    while let Some(line) = lines.next() {
        let Some(info) = line.strip_prefix("```radl") else {
            continue;
        };
        let block: Vec<&str> = lines
            .by_ref()
            .take_while(|l| !l.starts_with("```"))
            .collect();
        let text = block.join("\n");
        let doc = radl::parse(&text).unwrap_or_else(|e| panic!("example {examples}: {e}\n{text}"));
        if info.trim() == "check" {
            doc.check()
                .unwrap_or_else(|e| panic!("example {examples}: {e}\n{text}"));
        }
        let printed = doc.to_text();
        radl::parse(&printed)
            .unwrap_or_else(|e| panic!("example {examples} printed: {e}\n{printed}"));
        examples += 1;
    }
    assert!(examples >= 3, "only {examples} examples");
}

#[test]
fn module_documentation_names_the_grammar_page() {
    let page = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/radl.md"))
        .unwrap_or_default();
    for section in [
        "## Lexical rules",
        "## Grammar (as implemented)",
        "## Units",
        "## Checks",
        "## Printing",
        "## RADL-JSON",
        "## Where infralog differs from IM",
    ] {
        assert!(page.contains(section), "docs/radl.md lacks {section}");
    }
}
