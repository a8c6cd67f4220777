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
}
