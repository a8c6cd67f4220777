//! Feeds arbitrary text to the RADL text parser and the RADL-JSON parser, then checks,
//! prints and re-reads what they accept. Any panic is a bug.
#![no_main]

use infralog_radl as radl;
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
    // The merges IM performs on add, alter and reconfigure, with the document as both
    // the stored one and the request.
    let mut request = doc.clone();
    let _ = radl::merge::resolve_references(&mut request, doc, &[("n".into(), "cloud".into())]);
    let mut stored = doc.clone();
    let _ = radl::merge::update_stored(&mut stored, &request);
    let _ = radl::merge::reconfigure(&mut stored, doc);
    if let Some(system) = doc.systems.first() {
        if let Some(mut vm) = radl::merge::new_vm(doc, &system.name) {
            if let Some(vm_system) = vm.systems.first_mut() {
                radl::merge::dummy_launch(vm_system);
                radl::merge::refresh_vm(vm_system, "running", 3, radl::merge::DEFAULT_VM_NAME);
                let _ = radl::merge::dummy_alter(vm_system, doc);
            }
            let _ = (vm.to_text(), vm.to_json(), vm.to_vm_info_text());
        }
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
