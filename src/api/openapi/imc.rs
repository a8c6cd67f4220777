//! The IMC facade's routes (`/v1/…`), for the OpenAPI document of a server that
//! serves them (`serve --facades imc`): one entry per route of
//! `facades::imc::handlers::ROUTES`, held equal to it by a test.

use super::{Answer, Body, Operation, Param, Schema, EVENTS_ANSWER, EVENTS_FROM, EVENTS_LIMIT};

const ID: Param = Param::path("id", "The deployment's id (a UUID).", Schema::Str);

const JSON_OBJECT: Answer = Answer::json("JSON.");

/// Every IMC route.
pub(super) const OPERATIONS: &[Operation] = &[
    Operation {
        method: "POST",
        template: "/v1/infrastructures",
        tag: "imc",
        summary: "Place a deployment",
        description: "Records the deployment and places it on a site of the catalogue (201 `{\"id\"}`). The `Idempotency-Key` header (a UUID) is its id: a known key answers 200 with the same id and records nothing. `\"dryrun\": true` answers 200 `{\"sites\": [ranked]}` and records nothing. Every check runs before anything is recorded.",
        auth: true,
        params: &[],
        body: Body::Json {
            description: "`{\"radl\": <base64 RADL template>, \"requirements\", \"preferences\", \"identity\", \"identifier\", \"want\", \"dryrun\"}`; only `radl` is required.",
        },
        answers: &[
            Answer {
                status: 201,
                description: "`{\"id\": <uuid>}`: recorded.",
                media: &[("application/json", Schema::Object)],
                infid_header: false,
            },
            Answer::json("`{\"id\"}` of a known key, or `{\"sites\"}` of a dry run."),
        ],
        errors: &[400, 401, 503],
    },
    Operation {
        method: "GET",
        template: "/v1/infrastructures",
        tag: "imc",
        summary: "List deployments in a state",
        description: "`[{\"id\", \"created\", \"updated\", \"identity\"}]` in creation order, times as epoch seconds.",
        auth: true,
        params: &[
            Param::required_query("status", "The state (`configured`, `waiting`…).", Schema::Str),
            Param::query("cloud", "Only deployments on this site.", Schema::Str),
        ],
        body: Body::None,
        answers: &[Answer {
            status: 200,
            description: "The deployments.",
            media: &[("application/json", Schema::Any)],
            infid_header: false,
        }],
        errors: &[400, 401],
    },
    Operation {
        method: "GET",
        template: "/v1/infrastructures/{id}",
        tag: "imc",
        summary: "A deployment's state",
        description: "`{\"status\", \"status_reason\", \"cloud\", \"infra_id\"}`; `infra_id` is an ordinary IM infrastructure owned by the facade's identity. Unknown or purged: 404 `{\"status\": \"invalid\"}`.",
        auth: true,
        params: &[ID],
        body: Body::None,
        answers: &[JSON_OBJECT],
        errors: &[401, 404],
    },
    Operation {
        method: "DELETE",
        template: "/v1/infrastructures/{id}",
        tag: "imc",
        summary: "Delete a deployment",
        description: "200 `{}`; its infrastructures are destroyed and its usage released. Nothing is recorded when a deletion was asked already.",
        auth: true,
        params: &[ID],
        body: Body::None,
        answers: &[JSON_OBJECT],
        errors: &[401, 404, 503],
    },
    Operation {
        method: "GET",
        template: "/v1/infrastructures/{id}/events",
        tag: "imc",
        summary: "[infralog] A deployment's events",
        description: "Its stream (`imc-placement-<id>`) oldest first, as `/infrastructures/{infid}/events` answers an infrastructure's: each event with its version, time, type and fields. `Accept: application/x-ndjson` streams one event a line.",
        auth: true,
        params: &[
            ID,
            EVENTS_FROM,
            EVENTS_LIMIT,
        ],
        body: Body::None,
        answers: &[EVENTS_ANSWER],
        errors: &[400, 401, 404, 415],
    },
    Operation {
        method: "POST",
        template: "/v1/credentials",
        tag: "imc",
        summary: "Hand over a token (stored nowhere)",
        description: "201 `{}` for a JSON object; without an OIDC issuer there is nothing to refresh tokens with, so nothing is stored.",
        auth: true,
        params: &[],
        body: Body::Json {
            description: "A JSON object.",
        },
        answers: &[Answer {
            status: 201,
            description: "`{}`.",
            media: &[("application/json", Schema::Object)],
            infid_header: false,
        }],
        errors: &[400, 401],
    },
    Operation {
        method: "GET",
        template: "/v1/health",
        tag: "imc",
        summary: "Whether the service is sound",
        description: "204 while the event log takes writes and the read model keeps up with it; 409 `{\"error\"}` once the log fail-stopped after a failed write, or while the read model lags more than 5 s behind it. No credentials.",
        auth: false,
        params: &[],
        body: Body::None,
        answers: &[Answer {
            status: 204,
            description: "Sound.",
            media: &[],
            infid_header: false,
        }],
        errors: &[409],
    },
];
