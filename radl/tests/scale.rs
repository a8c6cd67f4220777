//! Large documents are read, checked and printed in linear time (a request body must not
//! be able to keep a worker busy for long).

use std::time::{Duration, Instant};

use infralog_radl as radl;

const N: usize = 20_000;

fn timed(what: &str, work: impl FnOnce()) {
    let start = Instant::now();
    work();
    let elapsed = start.elapsed();
    // Quadratic behaviour would take minutes at this size; linear takes well under this
    // bound even unoptimised on a busy machine.
    assert!(elapsed < Duration::from_secs(20), "{what} took {elapsed:?}");
}

#[test]
fn many_systems_networks_and_deploys() {
    let mut text = String::new();
    for i in 0..N {
        text.push_str(&format!(
            "network n{i} ()\nsystem s{i} (net_interface.0.connection = 'n{i}')\ndeploy s{i} 1\n"
        ));
    }
    timed("many elements", || {
        let doc = radl::parse(&text).unwrap_or_else(|e| panic!("{e}"));
        doc.check().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(doc.systems.len(), N);
        let json = doc.to_json();
        let again = radl::parse_json(&json).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(again.networks.len(), N);
    });
}

#[test]
fn many_features_and_contains_groups() {
    let features: Vec<String> = (0..N).map(|i| format!("a{i} = 'x'")).collect();
    let groups: Vec<String> = (0..N)
        .map(|i| format!("g contains (name = 'x{}' and v{i} = 'y')", i % 7))
        .collect();
    let text = format!(
        "system s ({} and {})",
        features.join(" and "),
        groups.join(" and ")
    );
    timed("many features", || {
        let doc = radl::parse(&text).unwrap_or_else(|e| panic!("{e}"));
        doc.check().unwrap_or_else(|e| panic!("{e}"));
        let _ = (doc.to_text(), doc.to_json());
    });
}
