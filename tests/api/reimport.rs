//! Re-imported ids are sealed (issue 10 §3): ids cannot be guessed, an id this
//! instance has recorded can be imported again only by an owner at its last
//! event, the history shown after a re-import starts at it, `/stats` keeps the
//! rows of earlier owners, and `verify` passes after an evict and a re-import.

use std::collections::HashSet;
use std::path::Path;
use std::process::Command;

use crate::harness::*;
use serde_json::Value;

const RADL_SECRET: &str = "network privada ()
system node (
cpu.count>=1 and
memory.size>=512m and
net_interface.0.connection = 'privada' and
disk.0.os.name='linux' and
disk.0.os.credentials.password = 'first-owner-secret'
)
deploy node 2
contextualize ()
";

/// IM's answer to an import of an id in use.
const IN_USE: &str = "Error Importing Inf.: Trying to add an existing infrastructure ID.";

fn export(server: &impl Api, user: &str, inf: &str, delete: bool) -> String {
    let query = if delete { "?delete=yes" } else { "" };
    let answer = server
        .get(&format!("/infrastructures/{inf}/data{query}"))
        .user(user)
        .accept("application/json")
        .send()
        .expect(200)
        .json();
    answer["data"]
        .as_str()
        .expect("data is a string")
        .to_string()
}

fn import(server: &impl Api, user: &str, data: &str) -> Response {
    server
        .put("/infrastructures")
        .user(user)
        .header("Content-Type", "application/json")
        .body(data)
        .send()
}

fn import_history(server: &impl Api, user: &str, document: &str) -> Response {
    server
        .put("/infrastructures?format=history")
        .user(user)
        .header("Content-Type", "application/json")
        .body(document)
        .send()
}

fn events(server: &impl Api, user: &str, inf: &str) -> Vec<Value> {
    let page = server
        .get(&format!("/infrastructures/{inf}/events?limit=1000"))
        .user(user)
        .send()
        .expect(200)
        .json();
    page["events"].as_array().expect("a list of events").clone()
}

fn event_types(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["type"].as_str().expect("a type").to_string())
        .collect()
}

fn add_owner(server: &impl Api, owner: &str, inf: &str, new_owner: &str) {
    server
        .post(&format!("/infrastructures/{inf}/authorization"))
        .user(owner)
        .body(format!(
            "{{\"username\": \"{new_owner}\", \"password\": \"pass-{new_owner}\"}}"
        ))
        .send()
        .expect(200);
}

fn stats_ids(server: &impl Api, user: &str) -> Vec<(String, bool)> {
    let stats = server
        .get("/stats")
        .user(user)
        .accept("application/json")
        .send()
        .expect(200)
        .json();
    stats["stats"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|row| {
            (
                row["inf_id"].as_str().expect("an id").to_string(),
                row["deleted"].as_bool().expect("a flag"),
            )
        })
        .collect()
}

fn verify(data_dir: &Path) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_infralog"))
        .arg("verify")
        .arg("--data-dir")
        .arg(data_dir)
        .output()
        .expect("runs infralog verify");
    (
        output.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    )
}

/// Ids made one after another share nothing but the UUID's version and variant:
/// UUIDv1 ids from one node share 48 node bits and most time bits, which is what
/// let a user find another user's id between two of their own.
#[test]
fn new_ids_are_random_and_not_predictable_from_their_neighbours() {
    let (_dir, server) = temp_server();
    let ids: Vec<u128> = (0..32)
        .map(|_| {
            let id = create(&server, "alice", "");
            assert_eq!(id.len(), 36, "IM's UUID form: {id}");
            let uuid = uuid::Uuid::parse_str(&id).expect("a UUID");
            assert_eq!(uuid.hyphenated().to_string(), id);
            assert_eq!(uuid.get_version_num(), 4, "{id}");
            uuid.as_u128()
        })
        .collect();
    // The 6 bits of version and variant are fixed; of the other 122, none may be
    // the same in all 32 ids (chance for random bits: 122 / 2^31).
    let fixed: u128 = (0xF << 76) | (0x3 << 62);
    let all_ones = ids.iter().fold(!0u128, |acc, id| acc & id);
    let all_zeros = ids.iter().fold(!0u128, |acc, id| acc & !id);
    let constant = (all_ones | all_zeros) & !fixed;
    assert_eq!(
        constant.count_ones(),
        0,
        "bits shared by every id: {constant:#034x}"
    );
    // Neighbours differ in about half of their random bits.
    for pair in ids.windows(2) {
        let differing = ((pair[0] ^ pair[1]) & !fixed).count_ones();
        assert!(differing >= 30, "neighbours differ in {differing} bits");
    }
}

/// Another user cannot take over an evicted, destroyed or live id, and cannot tell
/// which of the three it is: every refusal is the same answer, and nothing is
/// recorded. The former owner can still import it.
#[test]
fn only_an_owner_at_the_last_event_may_import_an_id_again() {
    let (_dir, server) = temp_server();
    let evicted = create(&server, "alice", RADL_NO_CTX);
    let evicted_data = export(&server, "alice", &evicted, true);
    let destroyed = create(&server, "alice", RADL_NO_CTX);
    let destroyed_data = export(&server, "alice", &destroyed, false);
    server
        .delete(&format!("/infrastructures/{destroyed}"))
        .user("alice")
        .send()
        .expect(200);
    let live = create(&server, "alice", RADL_NO_CTX);
    let live_data = export(&server, "alice", &live, false);
    let alice_events = events(&server, "alice", &live).len();

    for data in [&evicted_data, &destroyed_data, &live_data] {
        let refused = import(&server, "mallory", data);
        assert_eq!(
            (refused.status, refused.text()),
            (400, IN_USE.to_string()),
            "the same answer whatever the id's state"
        );
    }
    // Nothing was recorded for mallory: no infrastructure, no stats row, and the
    // live one is untouched.
    assert_eq!(list(&server, "mallory"), "");
    assert!(stats_ids(&server, "mallory").is_empty());
    assert_eq!(events(&server, "alice", &live).len(), alice_events);
    // An unknown id is still imported, by anyone (it is new here).
    let fresh =
        export(&server, "alice", &live, false).replace(&live, &uuid::Uuid::new_v4().to_string());
    import(&server, "mallory", &fresh).expect(200);
    // The owner at the last event takes her ids back.
    import(&server, "alice", &evicted_data).expect(200);
    import(&server, "alice", &destroyed_data).expect(200);
    assert_eq!(infra_state(&server, "alice", &destroyed), "configured");
}

/// A co-owner dropped by a re-import is no longer an owner at the last event.
#[test]
fn a_co_owner_dropped_by_a_reimport_cannot_import_the_id_again() {
    let (_dir, server) = temp_server();
    let inf = create(&server, "alice", RADL_NO_CTX);
    add_owner(&server, "alice", &inf, "bob");
    let data = export(&server, "alice", &inf, true);
    import(&server, "alice", &data).expect(200);
    export(&server, "alice", &inf, true);
    let refused = import(&server, "bob", &data);
    assert_eq!((refused.status, refused.text()), (400, IN_USE.to_string()));
    import(&server, "alice", &data).expect(200);
}

/// The history import answers a non-owner of an id in use the same whatever the
/// id's state, without counting its events.
#[test]
fn a_history_import_over_an_id_in_use_reveals_nothing_of_it() {
    let (_source_dir, source) = temp_server();
    let (_dir, server) = temp_server();
    // Mallory's own infrastructure and its history, from another instance.
    let mut answers = Vec::new();
    for state in ["live", "evicted", "destroyed"] {
        let inf = create(&source, "mallory", RADL_NO_CTX);
        let history = source
            .get(&format!("/infrastructures/{inf}/history"))
            .user("mallory")
            .send()
            .expect(200)
            .text();
        // Here, alice holds an infrastructure with that id, imported in IM's format
        // (which keeps the id), with some history of its own.
        let data = export(&source, "mallory", &inf, false);
        import(&server, "alice", &data).expect(200);
        server
            .put(&format!("/infrastructures/{inf}/stop"))
            .user("alice")
            .send()
            .expect(200);
        match state {
            "evicted" => {
                export(&server, "alice", &inf, true);
            }
            "destroyed" => {
                server
                    .delete(&format!("/infrastructures/{inf}"))
                    .user("alice")
                    .send()
                    .expect(200);
            }
            _ => {}
        }
        let refused = import_history(&server, "mallory", &history);
        answers.push((refused.status, refused.text().replace(&inf, "<ID>")));
    }
    assert_eq!(answers[0].0, 409, "{answers:?}");
    assert_eq!(answers[0], answers[1]);
    assert_eq!(answers[0], answers[2]);
    assert!(
        !answers[0].1.chars().any(|c| c.is_ascii_digit()),
        "no count of events: {answers:?}"
    );
}

/// After a legitimate re-import, an owner added later sees nothing of what came
/// before it: not in `/events`, not through `?at=`, not in `/history`.
#[test]
fn the_history_after_a_reimport_starts_at_it() {
    let (_dir, server) = temp_server();
    let inf = create(&server, "alice", RADL_SECRET);
    server
        .put(&format!("/infrastructures/{inf}/stop"))
        .user("alice")
        .send()
        .expect(200);
    let before = events(&server, "alice", &inf);
    let old_count = before.len();
    let data = export(&server, "alice", &inf, true);
    // The document itself no longer holds the password: what is re-imported is
    // only what the importer brings.
    let data = data.replace("first-owner-secret", "imported-secret");
    import(&server, "alice", &data).expect(200);
    add_owner(&server, "alice", &inf, "carol");

    let after = events(&server, "carol", &inf);
    let types = event_types(&after);
    assert!(
        !types
            .iter()
            .any(|t| t == "InfrastructureCreated" || t == "VmLaunched" || t == "VmStopped"),
        "earlier events shown: {types:?}"
    );
    assert!(
        types.contains(&"InfrastructureImported".to_string()),
        "{types:?}"
    );
    assert_eq!(
        after[0]["version"], 1,
        "the history is numbered from the import"
    );
    let text = serde_json::to_string(&after).expect("JSON");
    assert!(!text.contains("first-owner-secret"), "{text}");
    // `?at=` of any version shows the re-imported infrastructure or nothing, never
    // the earlier one.
    for version in 1..=after.len().max(old_count) {
        let radl = server
            .get(&format!("/infrastructures/{inf}/radl?at={version}"))
            .user("carol")
            .send();
        assert!(
            !radl.text().contains("first-owner-secret"),
            "?at={version}: {}",
            radl.text()
        );
        assert_ne!(radl.status, 500, "?at={version}: {}", radl.text());
    }
    // The full-history export holds only events since the import, and they move
    // to another instance as a whole history.
    let history = server
        .get(&format!("/infrastructures/{inf}/history"))
        .user("carol")
        .send()
        .expect(200)
        .text();
    assert!(!history.contains("first-owner-secret"));
    let old_ids: HashSet<String> = before
        .iter()
        .filter_map(|e| e["id"].as_str().map(str::to_string))
        .collect();
    let document: Value = serde_json::from_str(&history).expect("JSON");
    let exported = document["events"].as_array().expect("events");
    assert_eq!(exported.len(), after.len());
    for event in exported {
        assert!(!old_ids.contains(event["event_id"].as_str().expect("an id")));
        assert_ne!(event["event_type"], "InfrastructureCreated");
    }
    let (_other_dir, other) = temp_server();
    let moved = import_history(&other, "carol", &history).expect(200);
    assert_eq!(moved.header("x-infralog-import"), Some("imported"));
    assert_eq!(
        server
            .get(&format!("/infrastructures/{inf}/radl"))
            .user("carol")
            .send()
            .expect(200)
            .text(),
        other
            .get(&format!("/infrastructures/{inf}/radl"))
            .user("carol")
            .send()
            .expect(200)
            .text()
    );
}

/// `/stats` keeps the row of an owner the re-import dropped.
#[test]
fn stats_rows_of_earlier_owners_stay_after_a_reimport() {
    let (_dir, server) = temp_server();
    let inf = create(&server, "alice", RADL_NO_CTX);
    add_owner(&server, "alice", &inf, "bob");
    assert_eq!(stats_ids(&server, "bob"), [(inf.clone(), false)]);
    let data = export(&server, "alice", &inf, true);
    assert_eq!(stats_ids(&server, "bob"), [(inf.clone(), true)]);
    import(&server, "alice", &data).expect(200);
    assert_eq!(stats_ids(&server, "bob"), [(inf.clone(), true)]);
    // The importer has one row, the live one, as IM has.
    assert_eq!(stats_ids(&server, "alice"), [(inf.clone(), false)]);
}

/// `infralog verify` passes on a log with an evict and a re-import of the same
/// document, a destroy and a re-import, and an import of a new id.
#[test]
fn verify_passes_after_an_evict_and_a_reimport() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = TestServer::start(dir.path());
    let evicted = create(&server, "alice", RADL_NO_CTX);
    let data = export(&server, "alice", &evicted, true);
    import(&server, "alice", &data).expect(200);
    server
        .put(&format!("/infrastructures/{evicted}/stop"))
        .user("alice")
        .send()
        .expect(200);
    let destroyed = create(&server, "alice", RADL_NO_CTX);
    let destroyed_data = export(&server, "alice", &destroyed, false);
    server
        .delete(&format!("/infrastructures/{destroyed}"))
        .user("alice")
        .send()
        .expect(200);
    import(&server, "alice", &destroyed_data).expect(200);
    let fresh = data.replace(&evicted, &uuid::Uuid::new_v4().to_string());
    import(&server, "bob", &fresh).expect(200);
    server.stop();
    let (passed, report) = verify(dir.path());
    assert!(passed, "{report}");
}
