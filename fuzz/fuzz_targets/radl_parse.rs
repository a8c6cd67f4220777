//! Feeds arbitrary text to the RADL text parser and the RADL-JSON parser, then checks,
//! prints and re-reads what they accept. Any panic is a bug.
#![no_main]

use infralog::radl;
use libfuzzer_sys::fuzz_target;

fn exercise(doc: &radl::Radl) {
    let _ = doc.check();
    let text = doc.to_text();
    let json = doc.to_json();
    let _ = doc.to_vm_info_text();
    for system in &doc.systems {
        for prop in ["memory.size", "cpu.count", "disk.0.applications", "net_interface.0.ip"] {
            if let Some(value) = system.property(prop) {
                let _ = (value.to_text(), value.to_json());
            }
        }
    }
    // What we print, IM's parser reads (barring IM's own unreadable output, e.g. quotes
    // inside strings): re-reading must not panic either.
    if let Ok(again) = radl::parse(&text) {
        let _ = again.to_text();
    }
    if let Ok(again) = radl::parse_json(&json) {
        let _ = again.to_json();
    }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(doc) = radl::parse(&text) {
        exercise(&doc);
    }
    if let Ok(doc) = radl::parse_json(&text) {
        exercise(&doc);
    }
});
