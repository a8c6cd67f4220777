//! The RADL text infralog stores must read back as the document it was printed from.
//!
//! An infrastructure's RADL is stored as text and parsed again by every later request
//! on it (add, reconfigure, VM documents, export). RADL-JSON (and TOSCA) can express
//! documents that RADL text cannot: a name with a space or a U+FFFD in it, a value
//! with `\'` in it, a recipe with an `@end` line, a negative number (the lexer drops
//! the sign). Such a document is refused when it arrives, before anything is stored,
//! instead of poisoning the infrastructure for good.

use super::ast::Radl;
use super::error::{ErrorKind, RadlError};
use super::features::{Features, ItemRef};
use super::pytext::is_word_char;
use super::Value;
use rand::SeedableRng;

/// The text to store for `radl`, or why it cannot be stored: the text must parse, and
/// print back to itself (so it also means the same document after every restart).
pub fn stored_text(radl: &Radl) -> Result<String, RadlError> {
    if let Some((what, name)) = first_bad_name(radl) {
        return Err(unstorable(format!(
            "{what} {} is not a RADL name (a letter, '_' or '.', then letters, digits, '_', '.' or '-'; not a keyword)",
            super::pytext::repr_str(name)
        )));
    }
    let text = radl.to_text();
    // A fixed generator: a `'random(N)'` value that reads back as new random text
    // differs from the printed one whatever the draw.
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let reread = super::parse_with_rng(&text, &mut rng)
        .map_err(|error| unstorable(format!("its RADL text would not read back ({error})")))?;
    if without_recipe_growth(reread).to_text() != text {
        return Err(unstorable(
            "its RADL text would read back as a different document (a value RADL text cannot hold: a negative or non-finite number, a value with \\' in it or ending in a backslash, 'random(N)', an empty list item, an @end line in a recipe)"
                .to_owned(),
        ));
    }
    Ok(text)
}

/// IM's printer wraps a recipe in newlines and its parser keeps them, so each
/// print and parse adds one newline before and after a recipe (in IM as here). That
/// is IM's format, not damage: undone before comparing.
pub fn without_recipe_growth(mut radl: Radl) -> Radl {
    for configure in &mut radl.configures {
        if let Some(recipe) = configure.recipe.as_mut() {
            if recipe.starts_with('\n') {
                recipe.remove(0);
            }
            if recipe.ends_with('\n') {
                recipe.pop();
            }
        }
    }
    radl
}

fn unstorable(reason: String) -> RadlError {
    RadlError::new(
        ErrorKind::Semantic,
        format!("the document cannot be stored: {reason}"),
    )
}

/// Whether `name` is read by the lexer as one name token: `[a-zA-Z_.][\w.-]*` and not
/// a keyword.
pub fn is_name(name: &str) -> bool {
    let mut chars = name.chars();
    let starts_well = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '.');
    starts_well
        && chars.all(|c| is_word_char(c) || c == '.' || c == '-')
        && !KEYWORDS.contains(&name)
}

const KEYWORDS: [&str; 13] = [
    "network",
    "system",
    "ansible",
    "configure",
    "contextualize",
    "deploy",
    "description",
    "soft",
    "and",
    "contains",
    "step",
    "with",
    "option",
];

fn first_bad_name(radl: &Radl) -> Option<(&'static str, &str)> {
    let mut names: Vec<(&'static str, &str)> = Vec::new();
    if let Some(description) = &radl.description {
        names.push(("the description id", &description.id));
        feature_names(&description.features, &mut names);
    }
    for host in &radl.ansible_hosts {
        names.push(("the ansible id", &host.id));
        feature_names(&host.features, &mut names);
    }
    for network in &radl.networks {
        names.push(("the network id", &network.id));
        feature_names(&network.features, &mut names);
    }
    for system in &radl.systems {
        names.push(("the system name", &system.name));
        feature_names(&system.features, &mut names);
    }
    for configure in &radl.configures {
        names.push(("the configure name", &configure.name));
    }
    for deploy in &radl.deploys {
        names.push(("the deployed system", &deploy.system));
        if let Some(cloud) = deploy.cloud.as_deref().filter(|c| !c.is_empty()) {
            names.push(("the cloud id", cloud));
        }
    }
    for item in radl.contextualize.items.iter().flat_map(|i| i.values()) {
        names.push(("the contextualized system", &item.system));
        names.push(("the contextualized configure", &item.configure));
        if let Some(tool) = item.tool.as_deref().filter(|t| !t.is_empty()) {
            names.push(("the contextualization tool", tool));
        }
    }
    for (name, _) in radl.contextualize.options.iter().flat_map(|o| o.iter()) {
        names.push(("the contextualize option", name));
    }
    names.into_iter().find(|(_, name)| !is_name(name))
}

fn feature_names<'a>(features: &'a Features, names: &mut Vec<(&'static str, &'a str)>) {
    for item in features.items() {
        match item {
            ItemRef::Plain(feature) => {
                names.push(("the property", &feature.prop));
                if let Value::Group(group) = &feature.value {
                    feature_names(group, names);
                }
            }
            ItemRef::Soft(soft) => feature_names(&soft.features, names),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse_json;

    fn refusal(json: &str) -> String {
        let radl = parse_json(json).expect("IM reads it");
        stored_text(&radl)
            .expect_err("it cannot be stored")
            .to_string()
    }

    #[test]
    fn names_radl_text_cannot_hold_are_refused() {
        assert!(
            refusal(r#"[{"class":"system","id":"a","cp\ufffd.arch":"x86_64"}]"#)
                .contains("the property 'cp\u{fffd}.arch' is not a RADL name")
        );
        assert!(refusal(r#"[{"class":"system","id":"a b"}]"#)
            .contains("the system name 'a b' is not a RADL name"));
        assert!(
            refusal(r#"[{"class":"network","id":"system"}]"#).contains("the network id 'system'")
        );
        assert!(refusal(r#"[{"class":"system","id":"s","cpu.count":1},{"class":"deploy","system":"s","vm_number":1,"cloud":"a/b"}]"#)
            .contains("the cloud id 'a/b'"));
    }

    #[test]
    fn values_that_would_read_back_differently_are_refused() {
        for json in [
            r#"[{"class":"system","id":"s","x":"a\\'b"}]"#,
            r#"[{"class":"system","id":"s","x":"a\\"}]"#,
            r#"[{"class":"system","id":"s","cpu.count":-1}]"#,
            r#"[{"class":"system","id":"s","x":"random(5)"}]"#,
            r#"[{"class":"configure","id":"c","recipes":"x\n@end\ny"}]"#,
        ] {
            assert!(
                refusal(json).starts_with("the document cannot be stored: its RADL text"),
                "{json}"
            );
        }
    }

    #[test]
    fn recipes_are_stored_although_each_reading_wraps_them_in_newlines() {
        for text in [
            "configure front (\n@begin\n---\n - tasks:\n   - debug: msg=hello\n@end\n)\n",
            "configure front (\n@begin\n@end\n)\n",
            "configure front (\n@begin\n\n\nx: 1\n\n@end\n)\n",
        ] {
            let radl = crate::parse(text).expect("parses");
            stored_text(&radl).expect("storable");
        }
        let json = parse_json(r#"[{"class":"configure","id":"c","recipes":"- hosts: all\n"}]"#)
            .expect("IM reads it");
        stored_text(&json).expect("storable");
    }

    #[test]
    fn quotes_and_unicode_names_are_stored() {
        let radl = parse_json(
            r#"[{"class":"system","id":"sé1","cpé.arch":"x86_64","disk.0.os.credentials.password":"it's"}]"#,
        )
        .expect("IM reads it");
        let text = stored_text(&radl).expect("storable");
        assert!(text.contains(r"'it\'s'"), "{text}");
        let reread = crate::parse(&text).expect("reads back");
        assert_eq!(
            reread.systems[0]
                .features
                .string("disk.0.os.credentials.password"),
            Some("it's")
        );
    }
}
