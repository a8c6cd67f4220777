//! `GET /openapi.json`: the OpenAPI 3.1 document of every route, built from the
//! descriptions of [`operations`] in the order of the route table, which a test
//! holds equal to `routes.rs`'s: a route without a description fails the build's
//! tests, a description without a route too.

mod batch;
mod imc;
mod mlbench;
mod operations;

use serde_json::{json, Map, Value};

use super::routes;

/// A parameter's schema, kept to what the API's parameters need.
#[derive(Debug, Clone, Copy)]
pub(super) enum Schema {
    /// Any string.
    Str,
    /// One of these strings.
    Enum(&'static [&'static str]),
    /// A boolean as pydantic reads it (`true`, `1`, `yes`, `on`…).
    Bool,
    /// An integer.
    Int,
    /// A JSON object.
    Object,
    /// Any JSON value.
    Any,
}

impl Schema {
    fn to_json(self) -> Value {
        match self {
            Schema::Str => json!({"type": "string"}),
            Schema::Enum(values) => json!({"type": "string", "enum": values}),
            Schema::Bool => json!({"type": "boolean"}),
            Schema::Int => json!({"type": "integer", "minimum": 0}),
            Schema::Object => json!({"type": "object"}),
            Schema::Any => json!({}),
        }
    }
}

/// A path or query parameter.
#[derive(Debug, Clone, Copy)]
pub(super) struct Param {
    name: &'static str,
    location: &'static str,
    description: &'static str,
    schema: Schema,
    required: bool,
}

impl Param {
    /// A path parameter (always required).
    pub(super) const fn path(
        name: &'static str,
        description: &'static str,
        schema: Schema,
    ) -> Self {
        Param {
            name,
            location: "path",
            description,
            schema,
            required: true,
        }
    }

    /// An optional query parameter.
    pub(super) const fn query(
        name: &'static str,
        description: &'static str,
        schema: Schema,
    ) -> Self {
        Param {
            name,
            location: "query",
            description,
            schema,
            required: false,
        }
    }

    /// A required query parameter.
    pub(super) const fn required_query(
        name: &'static str,
        description: &'static str,
        schema: Schema,
    ) -> Self {
        Param {
            required: true,
            ..Param::query(name, description, schema)
        }
    }

    fn to_json(self) -> Value {
        let mut schema = self.schema.to_json();
        if self.location == "path" {
            // A path parameter is one non-empty segment: a `/` in it (even
            // escaped, as in FastAPI) makes another path.
            if let Some(object) = schema.as_object_mut() {
                if !object.contains_key("enum") {
                    object.insert("minLength".into(), json!(1));
                    object.insert("pattern".into(), json!("^[^/]+$"));
                }
            }
        }
        json!({
            "name": self.name,
            "in": self.location,
            "required": self.required,
            "description": self.description,
            "schema": schema,
        })
    }
}

/// A request body.
#[derive(Debug, Clone, Copy)]
pub(super) enum Body {
    /// No body is read.
    None,
    /// RADL text (`text/plain`, or no Content-Type), RADL-JSON
    /// (`application/json`) and, where `tosca`, TOSCA YAML (`text/yaml`).
    Radl {
        /// Whether TOSCA is accepted too.
        tosca: bool,
        /// Whether an empty body is refused.
        required: bool,
    },
    /// A JSON document.
    Json {
        /// What the document is.
        description: &'static str,
    },
    /// A facade's form fields.
    Form {
        /// What the fields are.
        description: &'static str,
    },
}

impl Body {
    fn to_json(self) -> Option<Value> {
        match self {
            Body::None => None,
            Body::Radl { tosca, required } => {
                let mut content = Map::new();
                content.insert(
                    "text/plain".into(),
                    json!({"schema": {"type": "string", "description": "RADL text"}, "example": EXAMPLE_RADL}),
                );
                content.insert(
                    "application/json".into(),
                    // Any JSON: IM's RADL-JSON reader takes a list of objects (network,
                    // system, configure, deploy…), one object, and reads other JSON
                    // values as an empty or invalid RADL (400), so no JSON type is
                    // refused before the RADL reader sees it.
                    json!({"schema": {"description": "RADL-JSON: a list of objects (network, system, configure, deploy…), or one such object"}}),
                );
                if tosca {
                    content.insert(
                        "text/yaml".into(),
                        json!({"schema": {"type": "string", "description": "A TOSCA template"}}),
                    );
                }
                Some(json!({
                    "required": required,
                    "description": if tosca {
                        "RADL text, RADL-JSON or a TOSCA template; no Content-Type means RADL text; an empty body is an empty RADL."
                    } else {
                        "RADL text or RADL-JSON; no Content-Type means RADL text; an empty body is an empty RADL."
                    },
                    "content": content,
                }))
            }
            Body::Json { description } => Some(json!({
                "required": true,
                "description": description,
                "content": {"application/json": {"schema": {"type": "object"}}},
            })),
            Body::Form { description } => Some(json!({
                "required": true,
                "description": description,
                "content": {
                    "multipart/form-data": {"schema": {"type": "object"}},
                    "application/x-www-form-urlencoded": {"schema": {"type": "object"}},
                },
            })),
        }
    }

    fn is_read(self) -> bool {
        !matches!(self, Body::None)
    }
}

/// A successful answer.
#[derive(Debug, Clone, Copy)]
pub(super) struct Answer {
    status: u16,
    description: &'static str,
    /// Media types (without parameters) and their schemas.
    media: &'static [(&'static str, Schema)],
    /// Whether the answer may carry the `InfID` header.
    infid_header: bool,
}

/// The first version an `…/events` route gives (every such route shares the
/// IM route's answer, `api/events.rs`).
pub(super) const EVENTS_FROM: Param =
    Param::query("from", "The first history version given.", Schema::Int);
/// The most events an `…/events` page holds.
pub(super) const EVENTS_LIMIT: Param =
    Param::query("limit", "At most this many events.", Schema::Int);
/// The answer of every `…/events` route.
pub(super) const EVENTS_ANSWER: Answer = Answer {
    status: 200,
    description: "`{\"events\":[…]}` (and `next` when there are more), or one event a line.",
    media: &[
        ("application/json", Schema::Object),
        ("application/x-ndjson", Schema::Str),
    ],
    infid_header: false,
};

impl Answer {
    /// 200 with a JSON object.
    pub(super) const fn json(description: &'static str) -> Self {
        Answer {
            status: 200,
            description,
            media: &[("application/json", Schema::Object)],
            infid_header: false,
        }
    }

    /// 200 with an HTML page.
    pub(super) const fn html(description: &'static str) -> Self {
        Answer {
            status: 200,
            description,
            media: &[("text/html", Schema::Str)],
            infid_header: false,
        }
    }

    /// 200 with URIs, one a line, or their JSON list.
    pub(super) const fn uri_list(description: &'static str) -> Self {
        Answer {
            status: 200,
            description,
            media: &[
                ("text/uri-list", Schema::Str),
                ("application/json", Schema::Object),
            ],
            infid_header: false,
        }
    }

    /// 200 with one URI, or `{"uri":…}`.
    pub(super) const fn uri(description: &'static str) -> Self {
        Answer::uri_list(description)
    }

    /// 200 with a RADL text or its JSON.
    pub(super) const fn radl(description: &'static str) -> Self {
        Answer {
            status: 200,
            description,
            media: &[
                ("text/plain", Schema::Str),
                ("application/json", Schema::Object),
            ],
            infid_header: false,
        }
    }

    /// 200 with an empty body.
    pub(super) const fn empty(description: &'static str) -> Self {
        Answer {
            status: 200,
            description,
            media: &[("text/plain", Schema::Str)],
            infid_header: false,
        }
    }
}

/// One route: what it does, what it takes and what it answers.
#[derive(Debug, Clone, Copy)]
pub(super) struct Operation {
    method: &'static str,
    template: &'static str,
    tag: &'static str,
    summary: &'static str,
    description: &'static str,
    /// Whether the `AUTHORIZATION` header is needed.
    auth: bool,
    params: &'static [Param],
    body: Body,
    answers: &'static [Answer],
    /// The error statuses the route itself gives (each with IM's error bodies);
    /// those of the request's size and time limits are added.
    errors: &'static [u16],
}

const TAGS: &[(&str, &str)] = &[
    ("infrastructures", "IM's infrastructure routes."),
    ("vms", "IM's VM routes."),
    ("clouds", "IM's cloud information."),
    (
        "history",
        "[infralog] What the event log knows: events, time travel (`?at=`), full-history transfer.",
    ),
    (
        "batch",
        "The MODAClouds Batch facade (`serve --facades batch`): jobs run on the VMs of a pool.",
    ),
    (
        "service",
        "Version, statistics, this document, metrics, and IM's disabled services.",
    ),
];

/// The tag of the IMC facade's routes, listed when the server serves them.
const IMC_TAG: (&str, &str) = (
    "imc",
    "[infralog] The IMC facade (`serve --facades imc`): PROMINENCE's Infrastructure Manager Controller. HTTP Basic with the facade's identity; errors are `{\"error\"}` (a 404 for a deployment is `{\"status\": \"invalid\"}`). See docs/facades.md.",
);

/// The tag of the MLBench facade's routes, listed when the server serves them.
const MLBENCH_TAG: (&str, &str) = (
    "mlbench",
    "[infralog] The MLBench facade (`serve --facades mlbench`): the MLBench dashboard's runs, pods and metrics. Open, or HTTP Basic once the facade has an identity; errors are `{\"status\", \"message\"}`. See docs/facades.md.",
);

/// A RADL every create accepts: one Dummy VM, configured at once.
const EXAMPLE_RADL: &str = "network net (outbound = 'yes')\nsystem node (\ncpu.count >= 1 and\nmemory.size >= 512m and\nnet_interface.0.connection = 'net' and\ndisk.0.os.name = 'linux'\n)\ndeploy node 1\ncontextualize ()\n";

/// What a client can do with the infrastructure a create made, named by the
/// create's `InfID` header (OpenAPI links, which fuzzers follow). No link names a
/// VM: a create may deploy none. Reading a property never evicts through a link:
/// `data?delete=yes` is a GET that removes the infrastructure (IM's export with
/// delete), and a client following links expects what it created to be there.
/// A destroy through a link is synchronous, so that it is over when it answers
/// (an asynchronous one answers first, as IM's does).
fn create_links() -> Value {
    let infid = json!({"infid": "$response.header.InfID"});
    json!({
        "GetInfrastructure": {"operationId": "get_infrastructures_infid", "parameters": infid},
        "GetProperty": {
            "operationId": "get_infrastructures_infid_prop",
            "parameters": {"path.infid": "$response.header.InfID", "query.delete": false},
        },
        "Events": {"operationId": "get_infrastructures_infid_events", "parameters": infid},
        "History": {"operationId": "get_infrastructures_infid_history", "parameters": infid},
        "AddResources": {"operationId": "post_infrastructures_infid", "parameters": infid},
        "Reconfigure": {"operationId": "put_infrastructures_infid_reconfigure", "parameters": infid},
        "Operate": {"operationId": "put_infrastructures_infid_op", "parameters": infid},
        "ChangeOwners": {"operationId": "post_infrastructures_infid_authorization", "parameters": infid},
        "Destroy": {
            "operationId": "delete_infrastructures_infid",
            "parameters": {"path.infid": "$response.header.InfID", "query.async": false},
        },
    })
}

fn reason(status: u16) -> &'static str {
    match status {
        400 => "Bad request: IM's error (the message says why).",
        401 => "No or unusable credentials.",
        403 => "Not an owner, or a property this infrastructure does not have.",
        404 => "Unknown, destroyed or not owned (IM's text), or no such route (`{\"detail\":\"Not Found\"}`).",
        408 => "The body did not arrive in time.",
        409 => "The infrastructure's state does not allow it, or its stored RADL cannot be read back.",
        413 => "The body is larger than the server's limit.",
        415 => "Unsupported Content-Type or Accept.",
        422 => "A path or query parameter is invalid (FastAPI's `{\"detail\":[…]}`).",
        431 => "The request's headers are larger than the server's limit.",
        503 => "Busy: too many pending operations; retry (see `Retry-After`).",
        _ => "Error.",
    }
}

fn error_answer(status: u16, tag: &str) -> Value {
    let mut answer = if tag == IMC_TAG.0 {
        json!({
            "description": imc_reason(status),
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ImcError"}}},
        })
    } else if tag == MLBENCH_TAG.0 {
        json!({
            "description": reason(status),
            "content": {"application/json": {"schema": {
                "type": "object",
                "description": "`{\"status\": <reason>, \"message\": <what failed>}`",
            }}},
        })
    } else {
        json!({
            "description": reason(status),
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/Error"}},
                "text/plain": {"schema": {"type": "string"}},
                "text/html": {"schema": {"type": "string"}},
            },
        })
    };
    if status == 503 {
        answer["headers"] = json!({"Retry-After": {"schema": {"type": "string"}, "description": "Seconds to wait."}});
    }
    answer
}

fn imc_reason(status: u16) -> &'static str {
    match status {
        400 => "The body, a header or a parameter is not what the route takes (`{\"error\"}` says which).",
        401 => "`{\"error\": \"Authentication failure\"}`.",
        404 => "An unknown or purged deployment: `{\"status\": \"invalid\"}`.",
        409 => "The event log fail-stopped, or the read model lags behind it.",
        _ => reason(status),
    }
}

fn operation_json(operation: &Operation) -> Value {
    let mut responses = Map::new();
    for answer in operation.answers {
        let content: Map<String, Value> = answer
            .media
            .iter()
            .map(|(media, schema)| ((*media).to_owned(), json!({"schema": schema.to_json()})))
            .collect();
        let mut value = json!({"description": answer.description, "content": content});
        if answer.infid_header {
            value["headers"] = json!({"InfID": {"schema": {"type": "string"}, "description": "The infrastructure's id."}});
        }
        if operation.method == "POST" && operation.template == "/infrastructures" {
            value["links"] = create_links();
        }
        responses.insert(answer.status.to_string(), value);
    }
    let mut errors: Vec<u16> = operation.errors.to_vec();
    errors.push(431);
    if operation.body.is_read() {
        errors.extend([408, 413]);
    }
    errors.sort_unstable();
    errors.dedup();
    for status in errors {
        responses.insert(status.to_string(), error_answer(status, operation.tag));
    }
    let mut value = json!({
        "operationId": operation_id(operation.method, operation.template),
        "tags": [operation.tag],
        "summary": operation.summary,
        "description": operation.description,
        "parameters": operation.params.iter().map(|p| p.to_json()).collect::<Vec<_>>(),
        "responses": responses,
        "security": match (operation.auth, operation.tag) {
            (false, _) => json!([]),
            (true, "batch") => json!([{"batch": []}]),
            (true, tag) if tag == IMC_TAG.0 => json!([{"imc": []}]),
            // Open unless the server gives the facade an identity.
            (true, "mlbench") => json!([{"mlbench": []}, {}]),
            (true, _) => json!([{"im": []}]),
        },
    });
    if let Some(body) = operation.body.to_json() {
        value["requestBody"] = body;
    }
    value
}

/// `get_infrastructures_infid_vms_vmid`: unique per method and template.
fn operation_id(method: &str, template: &str) -> String {
    let mut id = method.to_ascii_lowercase();
    for part in template.split('/').filter(|p| !p.is_empty()) {
        id.push('_');
        id.extend(
            part.chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '_'),
        );
    }
    if template == "/" {
        id.push_str("_root");
    }
    id
}

fn description_of(method: &str, template: &str) -> Option<&'static Operation> {
    operations::OPERATIONS
        .iter()
        .chain(batch::BATCH_OPERATIONS)
        .find(|op| op.method == method && op.template == template)
}

/// Every route: IM's table, then the facades' (served when enabled).
fn all_routes() -> impl Iterator<Item = (&'static str, &'static str)> {
    routes::table().chain(crate::facades::routes())
}

/// The OpenAPI 3.1 document of IM's routes and, when `imc` (the server serves
/// the IMC facade), of IMC's `/v1/…` routes, and when `mlbench`, of MLBench's
/// `/api/…` routes.
pub fn document_for(imc: bool, mlbench: bool) -> Value {
    let mut document = document();
    if mlbench {
        for operation in mlbench::OPERATIONS {
            let item = &mut document["paths"][operation.template];
            if item.is_null() {
                *item = json!({});
            }
            item[operation.method.to_ascii_lowercase()] = operation_json(operation);
        }
        if let Some(tags) = document["tags"].as_array_mut() {
            tags.push(json!({"name": MLBENCH_TAG.0, "description": MLBENCH_TAG.1}));
        }
        document["components"]["securitySchemes"]["mlbench"] = json!({
            "type": "http",
            "scheme": "basic",
            "description": "The MLBench facade's identity (`--mlbench-user`, `--mlbench-password`), when it has one; without it the facade is open.",
        });
    }
    if imc {
        for operation in imc::OPERATIONS {
            let item = &mut document["paths"][operation.template];
            if item.is_null() {
                *item = json!({});
            }
            item[operation.method.to_ascii_lowercase()] = operation_json(operation);
        }
        if let Some(tags) = document["tags"].as_array_mut() {
            tags.push(json!({"name": IMC_TAG.0, "description": IMC_TAG.1}));
        }
        document["components"]["securitySchemes"]["imc"] = json!({
            "type": "http",
            "scheme": "basic",
            "description": "The IMC facade's identity (`--imc-user`, `--imc-password`).",
        });
        document["components"]["schemas"]["ImcError"] = json!({
            "description": "IMC's error body, or `{\"status\": \"invalid\"}` for an unknown deployment.",
            "type": "object",
        });
    }
    document
}

/// The OpenAPI 3.1 document of every route, in the route table's order. Routes of
/// the table without a description are left out here and caught by the tests.
pub fn document() -> Value {
    let mut paths = Map::new();
    for (method, template) in all_routes() {
        let Some(operation) = description_of(method, template) else {
            continue;
        };
        let item = paths
            .entry(template.to_owned())
            .or_insert_with(|| json!({}));
        item[method.to_ascii_lowercase()] = operation_json(operation);
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "infralog",
            "version": env!("CARGO_PKG_VERSION"),
            "summary": "An event-sourced infrastructure manager that speaks IM 2.0.0's REST API.",
            "description": "IM's routes (GRyCAP's Infrastructure Manager 2.0.0, copied on the wire) and infralog's own, marked [infralog]. Answers follow the Accept header: each route has a default type (text/plain or text/uri-list) and JSON with `Accept: application/json`. IM's errors are text, JSON (`{\"message\",\"code\"}`) or HTML by Accept; routing and validation errors are FastAPI's `{\"detail\"}`. The full account: docs/api.md.",
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
        },
        "tags": TAGS.iter().map(|(name, description)| json!({"name": name, "description": description})).collect::<Vec<_>>(),
        "paths": paths,
        "components": {
            "securitySchemes": {
                "im": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "AUTHORIZATION",
                    "description": "IM's auth data on one line, lines separated by the two characters `\\n`: `id = im; type = InfrastructureManager; username = u; password = p\\nid = dummy; type = Dummy`.",
                },
                "batch": {
                    "type": "http",
                    "scheme": "basic",
                    "description": "The Batch facade's service identity (`--batch-user`, `--batch-password`); none with `--batch-no-auth`.",
                },
            },
            "schemas": {
                "Error": {
                    "description": "IM's error body, or FastAPI's for routing and validation errors.",
                    "oneOf": [
                        {"type": "object", "required": ["message", "code"], "properties": {"message": {"type": "string"}, "code": {"type": "integer"}}},
                        {"type": "object", "required": ["detail"], "properties": {"detail": {}}},
                    ],
                },
            },
        },
    })
}

#[cfg(test)]
mod tests;
