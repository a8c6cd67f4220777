//! What operators and API users get around the API: the OpenAPI document and its
//! page, `/metrics`, the access log and the log formats.

use std::time::Duration;

use crate::harness::*;

/// The value of the first sample of `name` whose labels contain every one of
/// `labels` (`key="value"`), in a Prometheus text document.
pub(crate) fn sample(metrics: &str, name: &str, labels: &[&str]) -> Option<f64> {
    metrics
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter(|line| {
            line.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .find(|line| labels.iter().all(|label| line.contains(label)))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}

#[test]
fn the_openapi_document_describes_every_route_of_the_table() {
    let (_dir, server) = temp_server();
    let answer = server.get("/openapi.json").send().expect(200);
    assert_eq!(answer.content_type(), "application/json");
    let document = answer.json();
    assert!(
        document["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1")),
        "{}",
        document["openapi"]
    );
    let mut count = 0;
    for (method, template) in infralog::api::routes::table() {
        let operation = &document["paths"][template][method.to_ascii_lowercase()];
        assert!(
            operation["summary"].is_string() && operation["responses"].is_object(),
            "{method} {template} is not described"
        );
        count += 1;
    }
    assert!(count >= 28, "{count} routes");
    // Body media types IM reads: RADL text, RADL-JSON, TOSCA YAML.
    let create = &document["paths"]["/infrastructures"]["post"];
    for media in ["text/plain", "application/json", "text/yaml"] {
        assert!(
            create["requestBody"]["content"][media].is_object(),
            "{media}"
        );
    }
    // infralog's own: `?at=` and the history import format.
    let vm_list = &document["paths"]["/infrastructures/{infid}"]["get"]["parameters"];
    assert!(vm_list
        .as_array()
        .is_some_and(|params| params.iter().any(|p| p["name"] == "at")));
    let import = &document["paths"]["/infrastructures"]["put"]["parameters"];
    assert!(import
        .as_array()
        .is_some_and(|params| params.iter().any(|p| p["name"] == "format")));
    assert_eq!(
        document["components"]["securitySchemes"]["im"]["name"],
        "AUTHORIZATION"
    );
}

#[test]
fn the_api_page_is_served_at_the_root_and_redoc_and_fetches_nothing_from_outside() {
    let (_dir, server) = temp_server();
    for path in ["/", "/redoc"] {
        let page = server.get(path).send().expect(200);
        assert_eq!(page.content_type(), "text/html; charset=utf-8", "{path}");
        let html = page.text();
        assert!(
            html.contains("<script>") && html.contains("openapi.json"),
            "{path}"
        );
        assert!(html.contains("Try it"), "{path}");
        for outside in ["src=\"http", "href=\"http", "@import", "//cdn"] {
            assert!(!html.contains(outside), "{path} refers outside: {outside}");
        }
    }
    // IM's FastAPI has no `/docs`; neither have we.
    assert_eq!(server.get("/docs").send().status, 404);
}

#[test]
fn metrics_count_requests_log_writes_cloud_calls_and_contextualization() {
    let (_dir, server) = temp_server();
    server.get("/version").send().expect(200);
    server.get("/version").send().expect(200);
    server.get("/no/such/route").send().expect(404);
    let inf = create(&server, "metrics-user", RADL_CTX);
    wait_for_state(
        &server,
        "metrics-user",
        &inf,
        "configured",
        Duration::from_secs(30),
    );
    server
        .get(&format!("/infrastructures/{inf}/vms/0"))
        .user("metrics-user")
        .send()
        .expect(200);

    let answer = server.get("/metrics").send().expect(200);
    assert!(answer.content_type().starts_with("text/plain"));
    let metrics = answer.text();
    let requests = "infralog_http_requests_total";
    assert_eq!(
        sample(
            &metrics,
            requests,
            &[r#"method="GET""#, r#"route="/version""#, r#"status="200""#]
        ),
        Some(2.0),
        "{metrics}"
    );
    assert_eq!(
        sample(
            &metrics,
            requests,
            &[r#"route="unmatched""#, r#"status="404""#]
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &metrics,
            requests,
            &[
                r#"route="/infrastructures/{infid}/vms/{vmid}""#,
                r#"status="200""#
            ]
        ),
        Some(1.0)
    );
    assert!(sample(
        &metrics,
        "infralog_http_request_duration_seconds_count",
        &[r#"route="/infrastructures""#, r#"method="POST""#]
    )
    .is_some_and(|n| n >= 1.0));
    // The path of a request never becomes a label.
    assert!(!metrics.contains(&inf));
    assert!(sample(&metrics, "infralog_events_appended_total", &[]).is_some_and(|n| n > 0.0));
    assert!(sample(&metrics, "infralog_group_commit_events_count", &[]).is_some_and(|n| n > 0.0));
    assert!(
        sample(&metrics, "infralog_log_fsync_duration_seconds_count", &[]).is_some_and(|n| n > 0.0)
    );
    assert_eq!(
        sample(
            &metrics,
            "infralog_connector_calls_total",
            &[
                r#"cloud="Dummy""#,
                r#"operation="launch""#,
                r#"outcome="ok""#
            ]
        ),
        Some(2.0)
    );
    assert!(sample(
        &metrics,
        "infralog_contextualization_runs_total",
        &[r#"outcome="configured""#]
    )
    .is_some_and(|n| n >= 1.0));
    assert!(sample(
        &metrics,
        "infralog_live_actors",
        &[r#"kind="infrastructure""#]
    )
    .is_some_and(|n| n >= 1.0));
    assert!(sample(&metrics, "infralog_log_size_bytes", &[]).is_some_and(|n| n > 0.0));
    // Every command was handled: nothing waits in a mailbox.
    for actor in [r#"actor="infrastructure""#, r#"actor="vm""#] {
        assert_eq!(
            sample(&metrics, "infralog_mailbox_depth", &[actor]),
            Some(0.0)
        );
        assert_eq!(
            sample(&metrics, "infralog_mailbox_depth_max", &[actor]),
            Some(0.0)
        );
    }
}

#[test]
fn each_request_is_one_access_line_with_the_route_and_user_and_no_secret() {
    let dir = tempfile::tempdir().expect("temp dir");
    // NO_COLOR is the harness's default; without it the log goes to a pipe,
    // which must get no colour codes either.
    let server = ChildServer::start_configured(dir.path(), &[], |command| {
        command.env_remove("NO_COLOR");
    });
    let inf = create(&server, "alice", RADL_NO_CTX);
    server
        .get(&format!("/infrastructures/{inf}/state"))
        .user("alice")
        .send()
        .expect(200);
    let log = server.kill_and_read_log();
    assert!(
        log.iter().all(|line| !line.contains('\u{1b}')),
        "colour codes in a piped log"
    );
    let access: Vec<&String> = log
        .iter()
        .filter(|line| line.contains("infralog::access"))
        .collect();
    assert_eq!(access.len(), 2, "{log:#?}");
    assert!(
        access[0].contains("request method=POST route=/infrastructures status=200 duration_ms=")
    );
    assert!(access[0].ends_with("user=alice"), "{}", access[0]);
    assert!(access[1].contains("route=/infrastructures/{infid}/{prop} status=200"));
    assert!(log.iter().all(|line| !line.contains("pass-alice")));
    assert!(access.iter().all(|line| !line.contains(&inf)));
}

#[test]
fn the_json_log_format_writes_one_object_per_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = ChildServer::start(dir.path(), &["--log-format", "json"]);
    server.get("/version").send().expect(200);
    let log = server.kill_and_read_log();
    assert!(!log.is_empty());
    let mut saw_access = false;
    for line in &log {
        let object: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"));
        if object["target"] == "infralog::access" {
            assert_eq!(object["route"], "/version");
            assert_eq!(object["status"], 200);
            assert_eq!(object["user"], "-");
            saw_access = true;
        }
    }
    assert!(saw_access, "{log:#?}");
}

#[test]
fn completions_are_printed_for_bash_zsh_and_fish() {
    for shell in ["bash", "zsh", "fish"] {
        let output = infralog(&["completions", shell]);
        assert!(output.status.success(), "{shell}");
        let script = String::from_utf8(output.stdout).expect("utf-8");
        assert!(
            script.contains("infralog") && script.contains("serve"),
            "{shell}"
        );
    }
    assert!(!infralog(&["completions", "tcsh"]).status.success());
}
