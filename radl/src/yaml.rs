//! YAML validation of `configure` recipes, as IM's `yaml.safe_load` does it.
//!
//! IM refuses a recipe that PyYAML's safe loader cannot load: a syntax error, more than
//! one document, a tag it has no constructor for (`!vault`), a collection used as a
//! mapping key. We parse with yaml-rust2 and apply the same rules. The reason text is
//! ours (PyYAML's wording cannot be reproduced byte for byte); callers keep IM's prefix
//! (`Invalid YAML code: …` in `check()`, `Error parsing YAML: …` in RADL-JSON).

use yaml_rust2::parser::{Event, Parser, Tag};
use yaml_rust2::scanner::Marker;

/// The tags PyYAML's `SafeConstructor` knows (after `tag:yaml.org,2002:`).
const SAFE_TAGS: [&str; 12] = [
    "null",
    "bool",
    "int",
    "float",
    "binary",
    "timestamp",
    "omap",
    "pairs",
    "set",
    "str",
    "seq",
    "map",
];

fn located(reason: &str, mark: &Marker) -> String {
    format!(
        "{reason}\n  in \"<unicode string>\", line {}, column {}",
        mark.line(),
        mark.col() + 1
    )
}

fn check_tag(tag: &Option<Tag>, mark: &Marker) -> Result<(), String> {
    let Some(tag) = tag else { return Ok(()) };
    let known = match tag.handle.as_str() {
        "tag:yaml.org,2002:" => SAFE_TAGS.contains(&tag.suffix.as_str()),
        "" => tag.suffix == "!",
        _ => false,
    };
    if known {
        Ok(())
    } else {
        Err(located(
            &format!(
                "could not determine a constructor for the tag '{}{}'",
                tag.handle, tag.suffix
            ),
            mark,
        ))
    }
}

/// Where the parser is inside a collection: the next node of a mapping is a key or not.
enum Frame {
    Sequence,
    Mapping { expecting_key: bool },
}

/// Checks that `text` is one YAML document PyYAML's safe loader would accept.
pub fn validate_recipe(text: &str) -> Result<(), String> {
    // PyYAML (YAML 1.1) breaks lines at \r\n, \r, \n, NEL, LS and PS; give yaml-rust2
    // plain newlines so both see the same lines.
    let normalized;
    let text = if text.contains(['\r', '\u{85}', '\u{2028}', '\u{2029}']) {
        normalized = text
            .replace("\r\n", "\n")
            .replace(['\r', '\u{85}', '\u{2028}', '\u{2029}'], "\n");
        normalized.as_str()
    } else {
        text
    };
    let scan = scan_pyyaml_whitespace(text);
    if scan.continuations.is_empty() {
        validate_events(text)?;
    } else {
        // PyYAML does not check the indentation of the continuation lines of a quoted
        // scalar (only that none is a document marker); yaml-rust2 does. Indent them past
        // the quote before validating, which changes nothing else.
        let mut lines: Vec<String> = text.split('\n').map(str::to_owned).collect();
        for &(line, column) in &scan.continuations {
            if let Some(text) = lines.get_mut(line) {
                let is_marker = ["---", "..."].iter().any(|m| {
                    text.strip_prefix(m)
                        .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t', '\r']))
                });
                if !is_marker {
                    *text = format!(
                        "{}{}",
                        " ".repeat(column + 1),
                        text.trim_start_matches([' ', '\t'])
                    );
                }
            }
        }
        validate_events(&lines.join("\n"))?;
    }
    match scan.stray_tab {
        Some((line, column)) => Err(format!(
            "while scanning for the next token\nfound character '\\t' that cannot start any token\n  in \"<unicode string>\", line {line}, column {column}"
        )),
        None => Ok(()),
    }
}

/// What PyYAML's whitespace rules see in a document.
struct WhitespaceScan {
    /// The first tab PyYAML stops at (line and column, 1-based).
    stray_tab: Option<(usize, usize)>,
    /// Continuation lines of multi-line quoted scalars: (line index, column of the quote).
    continuations: Vec<(usize, usize)>,
}

/// PyYAML (YAML 1.1) never skips a tab between tokens: a tab is only allowed inside
/// quoted scalars, comments and block scalar content. yaml-rust2 (YAML 1.2) allows more,
/// so find the first tab PyYAML would stop at, and the lines quoted scalars continue on.
fn scan_pyyaml_whitespace(text: &str) -> WhitespaceScan {
    let mut scan = WhitespaceScan {
        stray_tab: None,
        continuations: Vec::new(),
    };
    let mut block_parent: Option<usize> = None;
    // The open quote and the column it was opened at.
    let mut quote: Option<(char, usize)> = None;
    for (number, line) in text.split('\n').enumerate() {
        let indent = line.bytes().take_while(|b| *b == b' ').count();
        if let Some((_, column)) = quote {
            scan.continuations.push((number, column));
        }
        if let Some(parent) = block_parent {
            if quote.is_none() && (line.trim_start_matches(' ').is_empty() || indent > parent) {
                continue;
            }
            block_parent = None;
        }
        let chars: Vec<char> = line.chars().collect();
        // Whether a node may start here (line start, after `- `, `: `, `? `, `[`, `{`,
        // `,`, an anchor or a tag): only there does a quote open a quoted scalar.
        let mut node_start = true;
        let mut index = 0;
        while index < chars.len() {
            let c = chars[index];
            let previous = index.checked_sub(1).map(|i| chars[i]);
            let spaced = |i: usize| matches!(chars.get(i), None | Some(' ' | '\t' | '\r'));
            match quote {
                Some(('\'', _)) => {
                    if c == '\'' {
                        if chars.get(index + 1) == Some(&'\'') {
                            index += 1;
                        } else {
                            quote = None;
                            node_start = false;
                        }
                    }
                }
                Some(_) => {
                    if c == '\\' {
                        index += 1;
                    } else if c == '"' {
                        quote = None;
                        node_start = false;
                    }
                }
                None => match c {
                    '\t' => {
                        if scan.stray_tab.is_none() {
                            scan.stray_tab = Some((number + 1, index + 1));
                        }
                    }
                    ' ' | '\r' => {}
                    '#' if matches!(previous, None | Some(' ')) => break,
                    '\'' | '"' if node_start => quote = Some((c, index)),
                    '-' | '?' if node_start && spaced(index + 1) => {}
                    ':' if spaced(index + 1) => node_start = true,
                    '[' | '{' | ',' => node_start = true,
                    '&' | '!' if node_start => {
                        while index + 1 < chars.len() && !spaced(index + 1) {
                            index += 1;
                        }
                    }
                    '|' | '>' if node_start => {
                        let rest: String = chars[index + 1..].iter().collect();
                        let rest = rest.trim_start_matches(|c: char| {
                            c == '+' || c == '-' || c.is_ascii_digit()
                        });
                        let rest = rest.trim_start_matches(' ');
                        if rest.is_empty() || rest.starts_with('#') {
                            block_parent = Some(indent);
                            break;
                        }
                        node_start = false;
                    }
                    _ => node_start = false,
                },
            }
            index += 1;
        }
    }
    scan
}

fn validate_events(text: &str) -> Result<(), String> {
    let mut parser = Parser::new_from_str(text);
    let mut documents = 0usize;
    let mut stack: Vec<Frame> = Vec::new();
    loop {
        let (event, mark) = parser
            .next_token()
            .map_err(|error| located(error.info(), error.marker()))?;
        // A node (scalar, alias or collection start) fills the current slot of its parent.
        let is_node = matches!(
            event,
            Event::Scalar(..)
                | Event::Alias(_)
                | Event::SequenceStart(..)
                | Event::MappingStart(..)
        );
        let is_collection = matches!(event, Event::SequenceStart(..) | Event::MappingStart(..));
        if is_node {
            if let Some(Frame::Mapping { expecting_key }) = stack.last_mut() {
                if *expecting_key && is_collection {
                    return Err(located(
                        "while constructing a mapping\nfound unhashable key",
                        &mark,
                    ));
                }
                *expecting_key = !*expecting_key;
            }
        }
        match event {
            Event::StreamEnd => return Ok(()),
            Event::DocumentStart => {
                documents += 1;
                if documents > 1 {
                    return Err(located(
                        "expected a single document in the stream\nbut found another document",
                        &mark,
                    ));
                }
            }
            Event::Scalar(_, _, _, tag) => check_tag(&tag, &mark)?,
            Event::SequenceStart(_, tag) => {
                check_tag(&tag, &mark)?;
                stack.push(Frame::Sequence);
            }
            Event::MappingStart(_, tag) => {
                check_tag(&tag, &mark)?;
                stack.push(Frame::Mapping {
                    expecting_key: true,
                });
            }
            Event::SequenceEnd | Event::MappingEnd => {
                stack.pop();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::validate_recipe;

    #[test]
    fn ansible_playbooks_are_valid() {
        let recipe = "\n---\n - tasks:\n   - debug: msg=hello\n\n";
        assert_eq!(validate_recipe(recipe), Ok(()));
        assert_eq!(validate_recipe(""), Ok(()));
        assert_eq!(validate_recipe("$ANSIBLE_VAULT;1.1;AES256\n6637\n"), Ok(()));
    }

    #[test]
    fn what_pyyaml_refuses_is_refused() {
        assert!(validate_recipe("- a: [\n").is_err());
        assert!(validate_recipe("a: 1\n---\nb: 2\n").is_err());
        assert!(validate_recipe("secret: !vault |\n  abc\n").is_err());
        assert!(validate_recipe("? [a]\n: b\n").is_err());
        assert_eq!(validate_recipe("a: !!str 1\n"), Ok(()));
    }

    #[test]
    fn tabs_are_refused_where_pyyaml_refuses_them() {
        for refused in [
            "a: b\tc",
            "- x\t",
            "x\t# c",
            "k: [a,\tb]",
            "- debug: msg=\"a\tb\"",
            "a: b\t",
            "a: |\n\tx\n",
            "- when: x != \"2.19.1\n0\"\n",
        ] {
            assert!(validate_recipe(refused).is_err(), "{refused:?}");
        }
        for accepted in [
            "a: \"b\tc\"",
            "a: 'b\tc'",
            "# c\tx\n",
            "a: b # c\td",
            "a: |\n  x\ty\n",
            "a: >-\n  x\n  \ty\n",
            "[a, \"b\tc\"]",
            "a: \"x\n\ty\"",
            "a:\n  - \"x\n y\"",
            "a: !!str \"b\tc\"",
        ] {
            assert_eq!(validate_recipe(accepted), Ok(()), "{accepted:?}");
        }
    }
}
