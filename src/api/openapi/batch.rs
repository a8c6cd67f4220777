//! The MODAClouds Batch facade's routes (`serve --facades batch`), one entry per
//! `(method, template)` of `facades::batch::ROUTES`; `openapi::tests` holds the
//! two equal. Errors are `{"message": …}` and credentials HTTP Basic.

use super::{Answer, Body, Operation, Param, Schema, EVENTS_ANSWER, EVENTS_FROM, EVENTS_LIMIT};

const JOB: Param = Param::path("job_id", "The job's id (a UUID).", Schema::Str);
const TAG: &str = "batch";

pub(super) const BATCH_OPERATIONS: &[Operation] = &[
    Operation {
        method: "POST",
        template: "/jobs",
        tag: TAG,
        summary: "[batch] Submit a job",
        description: "Fields `job-name` and `job-bundle` (a gzip tar with a root `run.sh`) required; `job-arguments`, `job-input`, `job-notification` (an `http://` URL POSTed `{\"job-uuid\",\"retcode\"}` when the job completes) optional. Answers `{\"job_id\",\"backend_id\"}`; numbers are gapless from 1.",
        auth: true,
        params: &[],
        body: Body::Form {
            description: "multipart/form-data or application/x-www-form-urlencoded fields.",
        },
        answers: &[Answer::json("The job's id and number.")],
        errors: &[400, 401, 415],
    },
    Operation {
        method: "GET",
        template: "/jobs",
        tag: TAG,
        summary: "[batch] Every job",
        description: "`[{\"id\",\"backend_job_status\",\"job_status\",\"cwd\"}]` by number.",
        auth: true,
        params: &[],
        body: Body::None,
        answers: &[Answer::json("The jobs.")],
        errors: &[401],
    },
    Operation {
        method: "GET",
        template: "/jobs/{job_id}",
        tag: TAG,
        summary: "[batch] A job's detail",
        description: "HTCondor's fields: status, previous status, cluster id, run count, exit status, dates, peak memory, CPU time.",
        auth: true,
        params: &[JOB],
        body: Body::None,
        answers: &[Answer::json("The job.")],
        errors: &[401, 404],
    },
    Operation {
        method: "DELETE",
        template: "/jobs/{job_id}",
        tag: TAG,
        summary: "[batch] Remove a job",
        description: "As `PUT …/remove`: its process group is killed, its artifacts kept. Answers `null`.",
        auth: true,
        params: &[JOB],
        body: Body::None,
        answers: &[Answer::json("`null`.")],
        errors: &[401, 404, 409],
    },
    Operation {
        method: "PUT",
        template: "/jobs/{job_id}/{action}",
        tag: TAG,
        summary: "[batch] Act on a job",
        description: "`hold`, `release`, `suspend`, `continue` or `remove`, as HTCondor's table allows. Answers `{\"result\":[id, action]}`.",
        auth: true,
        params: &[
            JOB,
            Param::path(
                "action",
                "The action.",
                Schema::Enum(&["hold", "release", "suspend", "continue", "remove"]),
            ),
        ],
        body: Body::None,
        answers: &[Answer::json("The action done.")],
        errors: &[400, 401, 404, 409],
    },
    Operation {
        method: "GET",
        template: "/jobs/{job_id}/artifacts/{artifact}",
        tag: TAG,
        summary: "[batch] A job's stdout, stderr or output",
        description: "`stdout` and `stderr` as they are now; `output` the gzip tar of `output/`.",
        auth: true,
        params: &[
            JOB,
            Param::path(
                "artifact",
                "The artifact.",
                Schema::Enum(&["stdout", "stderr", "output"]),
            ),
        ],
        body: Body::None,
        answers: &[Answer {
            status: 200,
            description: "The artifact.",
            media: &[("text/plain", Schema::Str), ("application/gzip", Schema::Str)],
            infid_header: false,
        }],
        errors: &[401, 404],
    },
    Operation {
        method: "GET",
        template: "/jobs/{job_id}/events",
        tag: TAG,
        summary: "[infralog] A job's events",
        description: "The events of the job's stream (`batch-job-<id>`) oldest first, as `/infrastructures/{infid}/events` answers: history version, time, type and decoded fields. `Accept: application/x-ndjson` streams one event a line.",
        auth: true,
        params: &[
            JOB,
            EVENTS_FROM,
            EVENTS_LIMIT,
        ],
        body: Body::None,
        answers: &[EVENTS_ANSWER],
        errors: &[400, 401, 404, 406],
    },
];
