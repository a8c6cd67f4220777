//! The MLBench facade's routes (`/api/…`), for the OpenAPI document of a server
//! that serves them (`serve --facades mlbench`): one entry per route of
//! `facades::mlbench::handlers::ROUTES`, held equal to it by a test. A trailing
//! slash is optional on every path; the document writes it, as upstream does.

use super::{Answer, Body, Operation, Param, Schema, EVENTS_ANSWER, EVENTS_FROM, EVENTS_LIMIT};

const RUN_ID: Param = Param::path("id", "The run's id (1, 2, …).", Schema::Int);
const PK: Param = Param::path(
    "pk",
    "A pod's name (`metric_type=pod`) or a run's id (`metric_type=run`); `<pk>.zip` answers the zip export.",
    Schema::Str,
);

const JSON_ANY: &[(&str, Schema)] = &[("application/json", Schema::Any)];

/// Every MLBench route.
pub(super) const OPERATIONS: &[Operation] = &[
    Operation {
        method: "GET",
        template: "/api/",
        tag: "mlbench",
        summary: "The API's resources",
        description: "`{\"pods\", \"runs\", \"metrics\"}`: the URLs of the three collections.",
        auth: true,
        params: &[],
        body: Body::None,
        answers: &[Answer::json("The URLs.")],
        errors: &[401],
    },
    Operation {
        method: "GET",
        template: "/api/pods/",
        tag: "mlbench",
        summary: "Live pods",
        description: "`[{\"name\", \"labels\", \"phase\", \"ip\"}]`: the VMs of running runs' core infrastructures.",
        auth: true,
        params: &[],
        body: Body::None,
        answers: &[Answer {
            status: 200,
            description: "The pods.",
            media: JSON_ANY,
            infid_header: false,
        }],
        errors: &[401],
    },
    Operation {
        method: "GET",
        template: "/api/runs/",
        tag: "mlbench",
        summary: "Every run",
        description: "`[run]` by id, each with `job_metadata` `{}`.",
        auth: true,
        params: &[],
        body: Body::None,
        answers: &[Answer {
            status: 200,
            description: "The runs.",
            media: JSON_ANY,
            infid_header: false,
        }],
        errors: &[401],
    },
    Operation {
        method: "POST",
        template: "/api/runs/",
        tag: "mlbench",
        summary: "Start a run",
        description: "201 with the run. Fields (form or JSON): `name`, `num_workers`, `num_cpus`, `max_bandwidth`, `image_name` (or `custom_image` with `custom_image_name` and `custom_image_command`), `backend` (`mpi`, `nccl`, `gloo` or `custom_backend`), `run_all_nodes`, `gpu_enabled`, `light_target`. 400 for a bad field (checked first), 409 `There is already an active run` in exclusive admission.",
        auth: true,
        params: &[],
        body: Body::Form {
            description: "The run's fields, as a form or a JSON object.",
        },
        answers: &[Answer {
            status: 201,
            description: "The run.",
            media: &[("application/json", Schema::Object)],
            infid_header: false,
        }],
        errors: &[400, 401, 409, 413],
    },
    Operation {
        method: "GET",
        template: "/api/runs/{id}/",
        tag: "mlbench",
        summary: "One run",
        description: "The run, with `job_metadata` `{\"stdout\", \"stderr\", \"pods\", \"command\", \"master_name\", \"workhorse_pid\"}` (the last 1,000 lines of output).",
        auth: true,
        params: &[RUN_ID],
        body: Body::None,
        answers: &[Answer::json("The run.")],
        errors: &[401, 404],
    },
    Operation {
        method: "DELETE",
        template: "/api/runs/{id}/",
        tag: "mlbench",
        summary: "Stop and delete a run",
        description: "204: its workers are stopped, its infrastructure destroyed, its metrics deleted; then the run is 404.",
        auth: true,
        params: &[RUN_ID],
        body: Body::None,
        answers: &[Answer {
            status: 204,
            description: "Deleted.",
            media: &[],
            infid_header: false,
        }],
        errors: &[401, 404],
    },
    Operation {
        method: "GET",
        template: "/api/runs/{id}/events/",
        tag: "mlbench",
        summary: "[infralog] A run's events",
        description: "Its stream (`mlbench-run-<id>`) oldest first, as `/infrastructures/{infid}/events` answers an infrastructure's: each event with its version, time, type and fields. `Accept: application/x-ndjson` streams one event a line.",
        auth: true,
        params: &[
            RUN_ID,
            EVENTS_FROM,
            EVENTS_LIMIT,
        ],
        body: Body::None,
        answers: &[EVENTS_ANSWER],
        errors: &[400, 401, 404, 406],
    },
    Operation {
        method: "GET",
        template: "/api/metrics/",
        tag: "mlbench",
        summary: "Every metric",
        description: "`{\"pod_metrics\": {pod: {metric: [point]}}, \"run_metrics\": {run name: {…}}}`.",
        auth: true,
        params: &[],
        body: Body::None,
        answers: &[Answer::json("The metrics.")],
        errors: &[401],
    },
    Operation {
        method: "POST",
        template: "/api/metrics/",
        tag: "mlbench",
        summary: "Record a metric point",
        description: "201 `{\"name\", \"value\", \"date\", \"metadata\", \"cumulative\"}`, durable before the answer. Exactly one of `run_id` and `pod_name`; `name` (≤ 50 characters), `date`, `value` (≤ 255), `cumulative`, `metadata`. A run's workers post with the run's bearer token.",
        auth: true,
        params: &[],
        body: Body::Form {
            description: "The point's fields, as a form or a JSON object.",
        },
        answers: &[Answer {
            status: 201,
            description: "The point.",
            media: &[("application/json", Schema::Object)],
            infid_header: false,
        }],
        errors: &[400, 401, 404, 413],
    },
    Operation {
        method: "GET",
        template: "/api/metrics/{pk}/",
        tag: "mlbench",
        summary: "A pod's or a run's metrics",
        description: "`{metric: [{\"date\", \"value\", \"cumulative\"}]}`; with `format=zip` (or `<pk>.zip`) the zip export.",
        auth: true,
        params: &[
            PK,
            Param::query("metric_type", "`pod` (the default) or `run`.", Schema::Enum(&["pod", "run"])),
            Param::query("since", "Only points at or after this time (`%Y-%m-%dT%H:%M:%S.%fZ`, RFC 3339 or `YYYY-MM-DD HH:MM:SS[.f]`).", Schema::Str),
            Param::query("metric_filter", "Only this metric.", Schema::Str),
            Param::query("summarize", "Average into at most this many points.", Schema::Int),
            Param::query("last_n", "Only the last n points.", Schema::Int),
            Param::query("format", "`zip` for the zip export.", Schema::Enum(&["zip"])),
        ],
        body: Body::None,
        answers: &[Answer {
            status: 200,
            description: "The points, or the zip export.",
            media: &[
                ("application/json", Schema::Object),
                ("application/zip", Schema::Str),
            ],
            infid_header: false,
        }],
        errors: &[400, 401, 404],
    },
];
