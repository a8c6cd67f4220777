//! Black-box tests of `/clouds/{id}/{images|quotas}`, `/stats` and FastAPI's routing
//! answers: a real server on port 0 over a temporary directory, spoken to over TCP.

use crate::harness::*;

const AUTH: &str = "id = im; type = InfrastructureManager; username = alice; password = a1\\nid = dummy; type = Dummy";
const OTHER_AUTH: &str =
    "id = im; type = InfrastructureManager; username = bob; password = b1\\nid = dummy; type = Dummy";
/// A server over its own temporary directory, stopped on drop.
struct Server {
    port: u16,
    server: TestServer,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start() -> Server {
        let (dir, server) = temp_server();
        Server {
            port: server.port,
            server,
            _dir: dir,
        }
    }

    /// One request with the server's own address as `Host` and only `headers`.
    fn request(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Answer {
        let response = self
            .server
            .request(method, path)
            .direct()
            .headers(headers)
            .body(body)
            .send();
        Answer {
            status: response.status,
            body: response.text(),
            headers: response.headers,
        }
    }

    fn get(&self, path: &str, headers: &[(&str, &str)]) -> Answer {
        self.request("GET", path, headers, "")
    }
}

#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).expect("a JSON body")
    }
}

fn auth(value: &str) -> (&'static str, &str) {
    ("AUTHORIZATION", value)
}

#[test]
fn clouds_answer_for_the_callers_dummy_line() {
    let server = Server::start();

    let images = server.get("/clouds/dummy/images", &[auth(AUTH)]);
    assert_eq!(images.status, 200);
    assert_eq!(images.header("content-type"), Some("application/json"));
    assert_eq!(
        images.body,
        r#"{"images":[{"uri":"mock0://linux.for.ev.er/image1","name":"Image Name1"},{"uri":"mock0://linux.for.ev.er/image2","name":"Image Name2"}]}"#
    );
    let filtered = server.get(
        "/clouds/dummy/images?filters=region=r1,distribution=ubuntu",
        &[auth(AUTH)],
    );
    assert_eq!(filtered.body, images.body);

    let quotas = server.get("/clouds/dummy/quotas", &[auth(AUTH), ("Accept", "*/*")]);
    assert_eq!(quotas.status, 200);
    assert_eq!(quotas.json()["quotas"]["cores"]["limit"], 10);
    assert_eq!(quotas.json()["quotas"]["security_groups"]["used"], 1);

    // A cloud line without an id is named after its type and position.
    let unnamed = "type = InfrastructureManager; username = a; password = b\\ntype = Dummy";
    assert_eq!(
        server.get("/clouds/Dummy1/quotas", &[auth(unnamed)]).status,
        200
    );
}

#[test]
fn cloud_errors_follow_ims_classes() {
    let server = Server::start();

    let bad_filters = server.get("/clouds/dummy/images?filters=a=b=c", &[auth(AUTH)]);
    assert_eq!(
        (bad_filters.status, bad_filters.body.as_str()),
        (400, "Invalid format in filters parameter.")
    );
    // Quotas ignore filters altogether.
    assert_eq!(
        server
            .get("/clouds/dummy/quotas?filters=bad", &[auth(AUTH)])
            .status,
        200
    );

    let unknown = server.get(
        "/clouds/nocloud/quotas",
        &[auth(AUTH), ("Accept", "application/json")],
    );
    assert_eq!(unknown.status, 400);
    assert_eq!(
        unknown.json(),
        serde_json::json!({"message": "Error getting cloud info: Cloud ID nocloud not found.", "code": 400})
    );
    let im_line = server.get("/clouds/im/images", &[auth(AUTH)]);
    assert_eq!(
        (im_line.status, im_line.body.as_str()),
        (400, "Error getting cloud info: Cloud ID im not found.")
    );
    let unsupported = server.get(
        "/clouds/os/images",
        &[auth(
            "type = InfrastructureManager; username = a; password = b\\nid = os; type = OpenStack; host = h",
        )],
    );
    assert_eq!(unsupported.status, 400);
    assert!(
        unsupported.body.contains("OpenStack"),
        "{}",
        unsupported.body
    );

    let no_header = server.get("/clouds/dummy/quotas", &[]);
    assert_eq!(
        (no_header.status, no_header.body.as_str()),
        (401, "No authentication data provided")
    );
    let no_im = server.get("/clouds/dummy/images", &[auth("id = dummy; type = Dummy")]);
    assert_eq!(
        (no_im.status, no_im.body.as_str()),
        (
            401,
            "Error getting cloud info: No credentials provided for the InfrastructureManager."
        )
    );

    let text = server.get(
        "/clouds/dummy/images",
        &[auth(AUTH), ("Accept", "text/plain")],
    );
    assert_eq!(
        (text.status, text.body.as_str()),
        (415, "Unsupported Accept Media Types: text/plain")
    );

    let flavors = server.get("/clouds/dummy/flavors", &[auth(AUTH)]);
    assert_eq!(flavors.status, 422);
    assert_eq!(
        flavors.json()["detail"][0]["msg"],
        "Input should be 'images' or 'quotas'"
    );
}

fn create(server: &Server, credentials: &str) -> String {
    let created = server.request(
        "POST",
        "/infrastructures",
        &[auth(credentials), ("Content-Type", "text/plain")],
        RADL_ONE_NET_NO_CTX,
    );
    assert_eq!(created.status, 200, "{}", created.body);
    created
        .body
        .rsplit('/')
        .next()
        .expect("an infrastructure URI")
        .to_string()
}

#[test]
fn stats_report_the_callers_infrastructures_destroyed_ones_included() {
    let server = Server::start();
    let first = create(&server, AUTH);
    let second = create(&server, AUTH);
    let others = create(&server, OTHER_AUTH);
    let destroyed = server.request(
        "DELETE",
        &format!("/infrastructures/{first}"),
        &[auth(AUTH)],
        "",
    );
    assert_eq!(destroyed.status, 200, "{}", destroyed.body);

    let stats = server.get("/stats", &[auth(AUTH)]);
    assert_eq!(stats.status, 200);
    assert_eq!(stats.header("content-type"), Some("application/json"));
    let rows = stats.json()["stats"]
        .as_array()
        .expect("a list of rows")
        .clone();
    let ids: Vec<&str> = rows.iter().filter_map(|r| r["inf_id"].as_str()).collect();
    // Most recently changed first; another user's infrastructure is not listed.
    assert_eq!(ids, [first.as_str(), second.as_str()]);
    assert!(!ids.contains(&others.as_str()));
    let keys: Vec<&str> = rows[0]
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "creation_date",
            "tosca_name",
            "vm_count",
            "cpu_count",
            "memory_size",
            "cloud_type",
            "cloud_host",
            "hybrid",
            "deleted",
            "im_user",
            "inf_id",
            "last_date"
        ]
    );
    assert_eq!(rows[0]["deleted"], true);
    assert_eq!(rows[1]["deleted"], false);
    assert_eq!(rows[1]["vm_count"], 3);
    assert_eq!(rows[1]["cpu_count"], 4);
    assert_eq!(rows[1]["memory_size"], 2024);
    assert_eq!(rows[1]["cloud_type"], "Dummy");
    assert_eq!(rows[1]["im_user"], "alice");

    let csv = server.get("/stats", &[auth(AUTH), ("Accept", "text/csv")]);
    assert_eq!(csv.header("content-type"), Some("text/csv; charset=utf-8"));
    let lines: Vec<&str> = csv.body.split("\r\n").collect();
    assert_eq!(lines.len(), 4, "header, two rows, and the final CRLF");
    assert!(lines[0].starts_with("creation_date,tosca_name,vm_count"));
    assert!(lines[1].contains(&first) && lines[1].contains(",True,alice,"));

    let html = server.get("/stats", &[auth(AUTH), ("Accept", "text/html")]);
    assert_eq!((html.status, html.body.as_str()), (200, "null"));
}

#[test]
fn stats_dates_and_credentials() {
    let server = Server::start();
    create(&server, AUTH);
    let rows = |path: &str| {
        server.get(path, &[auth(AUTH)]).json()["stats"]
            .as_array()
            .map(Vec::len)
            .unwrap_or(usize::MAX)
    };
    assert_eq!(rows("/stats?init_date=1970/01/01"), 1);
    assert_eq!(rows("/stats?init_date=9999-12-31"), 0);
    assert_eq!(rows("/stats?end_date=2000-01-01"), 0);
    assert_eq!(rows("/stats?init_date=2000-01-01-tail"), 0);

    let bad = server.get("/stats?init_date=2024-02-30", &[auth(AUTH)]);
    assert_eq!(
        (bad.status, bad.body.as_str()),
        (400, "Incorrect format in init_date parameter: YYYY/MM/dd")
    );
    let bad_end = server.get(
        "/stats?end_date=tomorrow",
        &[auth("id = dummy; type = Dummy")],
    );
    assert_eq!(
        (bad_end.status, bad_end.body.as_str()),
        (400, "Incorrect format in end_date parameter: YYYY/MM/dd")
    );
    let no_im = server.get("/stats", &[auth("id = dummy; type = Dummy")]);
    assert_eq!(
        (no_im.status, no_im.body.as_str()),
        (
            400,
            "Error getting stats: No credentials provided for the InfrastructureManager."
        )
    );
    assert_eq!(server.get("/stats", &[]).status, 401);
}

#[test]
fn unknown_routes_wrong_methods_and_trailing_slashes_answer_as_fastapi() {
    let server = Server::start();

    for path in ["/health", "/docs", "//infrastructures", "/clouds/dummy"] {
        let answer = server.get(path, &[auth(AUTH), ("Accept", "text/html")]);
        assert_eq!(answer.status, 404, "{path}");
        assert_eq!(answer.body, r#"{"detail":"Not Found"}"#, "{path}");
        assert_eq!(answer.header("content-type"), Some("application/json"));
    }

    for (method, path, allow) in [
        ("POST", "/stats", "GET"),
        ("DELETE", "/clouds/dummy/images", "GET"),
        ("HEAD", "/infrastructures", "GET"),
        ("OPTIONS", "/version", "GET"),
    ] {
        let answer = server.request(method, path, &[auth(AUTH)], "");
        assert_eq!(answer.status, 405, "{method} {path}");
        assert_eq!(answer.header("allow"), Some(allow), "{method} {path}");
        if method != "HEAD" {
            assert_eq!(answer.body, r#"{"detail":"Method Not Allowed"}"#);
        }
    }

    // IM's optional services, off as in IM's default configuration; no credentials.
    for method in ["GET", "POST"] {
        let oai = server.request(method, "/oai", &[], "");
        assert_eq!(
            (oai.status, oai.body.as_str()),
            (400, "OAI-PMH not enabled.")
        );
    }
    let static_file = server.get("/static/x.css", &[("Accept", "application/json")]);
    assert_eq!(static_file.status, 404);
    assert_eq!(
        static_file.json(),
        serde_json::json!({"message": "Static files not enabled.", "code": 404})
    );

    let redirect = server.get("/stats/?init_date=2020-01-01", &[auth(AUTH)]);
    assert_eq!(redirect.status, 307);
    assert_eq!(
        redirect.header("location"),
        Some(
            format!(
                "http://127.0.0.1:{}/stats?init_date=2020-01-01",
                server.port
            )
            .as_str()
        )
    );
    let redirect = server.get("/clouds/dummy/images/", &[auth(AUTH)]);
    assert_eq!(redirect.status, 307);
    assert_eq!(
        redirect.header("location"),
        Some(format!("http://127.0.0.1:{}/clouds/dummy/images", server.port).as_str())
    );
}
