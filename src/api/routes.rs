//! IM's route table, matched the way FastAPI (Starlette) matches it.
//!
//! Clients see FastAPI's routing behaviour: routes are tried in registration order, a
//! path that matches a route of another method answers 405 naming that route's method,
//! a path that matches nothing answers 404, unless toggling its trailing slash would
//! match, which answers 307. Path parameters match any non-empty segment; their
//! values are validated later (422), after the route has been chosen.

use actix_web::http::Method;

/// A matched route with its raw path parameters (validated by the handlers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `GET /`: where IM serves its API documentation; here a short page.
    Docs,
    /// `GET /openapi.json`: IM's OpenAPI description; answered with the same page
    /// as `/`.
    OpenApi,
    /// `GET /redoc`: IM's ReDoc page; answered with the same page as `/`.
    Redoc,
    /// `GET /infrastructures`: the infrastructures the caller owns.
    ListInfrastructures,
    /// `POST /infrastructures`: creates an infrastructure from a RADL or TOSCA body.
    CreateInfrastructure,
    /// `PUT /infrastructures`: imports an infrastructure exported by IM.
    ImportInfrastructure,
    /// `GET /infrastructures/{inf}`: the URLs of an infrastructure's VMs.
    GetInfrastructure {
        /// The infrastructure id as written in the path, not yet validated.
        inf: String,
    },
    /// `DELETE /infrastructures/{inf}`: destroys an infrastructure.
    DestroyInfrastructure {
        /// The infrastructure id as written in the path, not yet validated.
        inf: String,
    },
    /// `GET /infrastructures/{inf}/{prop}`: one property of an infrastructure
    /// (`state`, `radl`, `contmsg`, ...).
    GetInfrastructureProperty {
        /// The infrastructure id as written in the path, not yet validated.
        inf: String,
        /// The property name as written in the path; unknown names answer later.
        prop: String,
    },
    /// `POST /infrastructures/{inf}`: adds VMs described by a RADL or TOSCA body.
    AddResources {
        /// The infrastructure id as written in the path, not yet validated.
        inf: String,
    },
    /// `PUT /infrastructures/{inf}/reconfigure`: runs the contextualization again.
    Reconfigure {
        /// The infrastructure id as written in the path, not yet validated.
        inf: String,
    },
    /// `PUT /infrastructures/{inf}/{op}`: `start`, `stop` or another operation on
    /// every VM of an infrastructure.
    OperateInfrastructure {
        /// The infrastructure id as written in the path, not yet validated.
        inf: String,
        /// The operation name as written in the path; unknown names answer later.
        op: String,
    },
    /// `POST /infrastructures/{inf}/authorization`: changes the owners.
    ChangeOwners {
        /// The infrastructure id as written in the path, not yet validated.
        inf: String,
    },
    /// `GET /infrastructures/{inf}/vms/{vm}`: the RADL of one VM.
    GetVm {
        /// The infrastructure id as written in the path, not yet validated.
        inf: String,
        /// The VM number as written in the path, not yet validated.
        vm: String,
    },
    /// `DELETE /infrastructures/{inf}/vms/{vm}`: removes one or more VMs.
    RemoveVms {
        /// The infrastructure id as written in the path, not yet validated.
        inf: String,
        /// The VM numbers as written in the path: one, or several separated by
        /// commas; not yet validated.
        vm: String,
    },
    /// `PUT /infrastructures/{inf}/vms/{vm}`: changes a VM's features from a RADL body.
    AlterVm {
        /// The infrastructure id as written in the path, not yet validated.
        inf: String,
        /// The VM number as written in the path, not yet validated.
        vm: String,
    },
    /// `GET /infrastructures/{inf}/vms/{vm}/{prop}`: one property of a VM.
    GetVmProperty {
        /// The infrastructure id as written in the path, not yet validated.
        inf: String,
        /// The VM number as written in the path, not yet validated.
        vm: String,
        /// The property name as written in the path; unknown names answer later.
        prop: String,
    },
    /// `PUT /infrastructures/{inf}/vms/{vm}/{op}`: `start`, `stop` or another
    /// operation on one VM.
    OperateVm {
        /// The infrastructure id as written in the path, not yet validated.
        inf: String,
        /// The VM number as written in the path, not yet validated.
        vm: String,
        /// The operation name as written in the path; unknown names answer later.
        op: String,
    },
    /// `PUT /infrastructures/{inf}/vms/{vm}/disks/{disk}/snapshot`: a snapshot of one
    /// disk of a VM.
    Snapshot {
        /// The infrastructure id as written in the path, not yet validated.
        inf: String,
        /// The VM number as written in the path, not yet validated.
        vm: String,
        /// The disk number as written in the path, not yet validated.
        disk: String,
    },
    /// `GET /clouds/{cloud}/{param}`: information about a cloud (`images`, `quotas`).
    CloudInfo {
        /// The cloud id of the caller's credentials, as written in the path.
        cloud: String,
        /// The kind of information asked for, as written in the path.
        param: String,
    },
    /// `GET /stats`: usage statistics of the caller's infrastructures.
    Stats,
    /// `GET` or `POST /oai`: IM's OAI-PMH repository, never enabled here (400).
    Oai,
    /// `GET /version`: the IM version infralog answers as.
    Version,
    /// `GET /static/{filename}`: IM's static files, never enabled here (404).
    Static {
        /// The file name as written in the path, not yet checked.
        filename: String,
    },
    /// infralog's own: the dashboard's page (not in IM).
    Ui,
    /// infralog's own: one of the dashboard's files (not in IM).
    UiAsset {
        /// The file name as written in the path; unknown names answer 404.
        asset: String,
    },
    /// infralog's own: the server's metrics in Prometheus' text format (not in IM).
    Metrics,
    /// infralog's own: the event history of an infrastructure (not in IM).
    InfrastructureEvents {
        /// The infrastructure id as written in the path, not yet validated.
        inf: String,
    },
    /// infralog's own: the full-history transfer document (not in IM).
    InfrastructureHistory {
        /// The infrastructure id as written in the path, not yet validated.
        inf: String,
    },
}

/// Why a request matched no route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoRoute {
    /// 404 `{"detail":"Not Found"}`.
    NotFound,
    /// 405 `{"detail":"Method Not Allowed"}` with `Allow` naming these methods.
    MethodNotAllowed {
        /// The value of the `Allow` header: the method of the first route whose
        /// path matched.
        allow: &'static str,
    },
    /// 307 to the same URL with the trailing slash toggled.
    RedirectTo {
        /// The request path with its trailing slash added or removed.
        path: String,
    },
}

/// One entry of the table: a method and a pattern whose `*` segments are parameters.
struct Pattern {
    method: &'static str,
    segments: &'static [&'static str],
    /// The pattern as the OpenAPI document, the access log and the metrics name
    /// it: `*` segments written `{name}`.
    template: &'static str,
    build: fn(&[&str]) -> Route,
}

/// The table, in IM's (FastAPI's) registration order. infralog's own routes come
/// first because IM's `/infrastructures/{id}/{prop}` would otherwise claim them.
const TABLE: &[Pattern] = &[
    Pattern {
        method: "GET",
        segments: &["openapi.json"],
        template: "/openapi.json",
        build: |_| Route::OpenApi,
    },
    Pattern {
        method: "GET",
        segments: &[""],
        template: "/",
        build: |_| Route::Docs,
    },
    Pattern {
        method: "GET",
        segments: &["redoc"],
        template: "/redoc",
        build: |_| Route::Redoc,
    },
    Pattern {
        method: "GET",
        segments: &["infrastructures", "*", "events"],
        template: "/infrastructures/{infid}/events",
        build: |p| Route::InfrastructureEvents { inf: p[0].into() },
    },
    Pattern {
        method: "GET",
        segments: &["infrastructures", "*", "history"],
        template: "/infrastructures/{infid}/history",
        build: |p| Route::InfrastructureHistory { inf: p[0].into() },
    },
    Pattern {
        method: "GET",
        segments: &["infrastructures"],
        template: "/infrastructures",
        build: |_| Route::ListInfrastructures,
    },
    Pattern {
        method: "POST",
        segments: &["infrastructures"],
        template: "/infrastructures",
        build: |_| Route::CreateInfrastructure,
    },
    Pattern {
        method: "PUT",
        segments: &["infrastructures"],
        template: "/infrastructures",
        build: |_| Route::ImportInfrastructure,
    },
    Pattern {
        method: "GET",
        segments: &["infrastructures", "*"],
        template: "/infrastructures/{infid}",
        build: |p| Route::GetInfrastructure { inf: p[0].into() },
    },
    Pattern {
        method: "DELETE",
        segments: &["infrastructures", "*"],
        template: "/infrastructures/{infid}",
        build: |p| Route::DestroyInfrastructure { inf: p[0].into() },
    },
    Pattern {
        method: "GET",
        segments: &["infrastructures", "*", "*"],
        template: "/infrastructures/{infid}/{prop}",
        build: |p| Route::GetInfrastructureProperty {
            inf: p[0].into(),
            prop: p[1].into(),
        },
    },
    Pattern {
        method: "POST",
        segments: &["infrastructures", "*"],
        template: "/infrastructures/{infid}",
        build: |p| Route::AddResources { inf: p[0].into() },
    },
    Pattern {
        method: "PUT",
        segments: &["infrastructures", "*", "reconfigure"],
        template: "/infrastructures/{infid}/reconfigure",
        build: |p| Route::Reconfigure { inf: p[0].into() },
    },
    Pattern {
        method: "PUT",
        segments: &["infrastructures", "*", "*"],
        template: "/infrastructures/{infid}/{op}",
        build: |p| Route::OperateInfrastructure {
            inf: p[0].into(),
            op: p[1].into(),
        },
    },
    Pattern {
        method: "POST",
        segments: &["infrastructures", "*", "authorization"],
        template: "/infrastructures/{infid}/authorization",
        build: |p| Route::ChangeOwners { inf: p[0].into() },
    },
    Pattern {
        method: "GET",
        segments: &["infrastructures", "*", "vms", "*"],
        template: "/infrastructures/{infid}/vms/{vmid}",
        build: |p| Route::GetVm {
            inf: p[0].into(),
            vm: p[1].into(),
        },
    },
    Pattern {
        method: "DELETE",
        segments: &["infrastructures", "*", "vms", "*"],
        template: "/infrastructures/{infid}/vms/{vmid}",
        build: |p| Route::RemoveVms {
            inf: p[0].into(),
            vm: p[1].into(),
        },
    },
    Pattern {
        method: "PUT",
        segments: &["infrastructures", "*", "vms", "*"],
        template: "/infrastructures/{infid}/vms/{vmid}",
        build: |p| Route::AlterVm {
            inf: p[0].into(),
            vm: p[1].into(),
        },
    },
    Pattern {
        method: "GET",
        segments: &["infrastructures", "*", "vms", "*", "*"],
        template: "/infrastructures/{infid}/vms/{vmid}/{prop}",
        build: |p| Route::GetVmProperty {
            inf: p[0].into(),
            vm: p[1].into(),
            prop: p[2].into(),
        },
    },
    Pattern {
        method: "PUT",
        segments: &["infrastructures", "*", "vms", "*", "*"],
        template: "/infrastructures/{infid}/vms/{vmid}/{op}",
        build: |p| Route::OperateVm {
            inf: p[0].into(),
            vm: p[1].into(),
            op: p[2].into(),
        },
    },
    Pattern {
        method: "PUT",
        segments: &["infrastructures", "*", "vms", "*", "disks", "*", "snapshot"],
        template: "/infrastructures/{infid}/vms/{vmid}/disks/{disknum}/snapshot",
        build: |p| Route::Snapshot {
            inf: p[0].into(),
            vm: p[1].into(),
            disk: p[2].into(),
        },
    },
    Pattern {
        method: "GET",
        segments: &["clouds", "*", "*"],
        template: "/clouds/{cloudid}/{param}",
        build: |p| Route::CloudInfo {
            cloud: p[0].into(),
            param: p[1].into(),
        },
    },
    Pattern {
        method: "GET",
        segments: &["stats"],
        template: "/stats",
        build: |_| Route::Stats,
    },
    Pattern {
        method: "GET",
        segments: &["oai"],
        template: "/oai",
        build: |_| Route::Oai,
    },
    Pattern {
        method: "POST",
        segments: &["oai"],
        template: "/oai",
        build: |_| Route::Oai,
    },
    Pattern {
        method: "GET",
        segments: &["version"],
        template: "/version",
        build: |_| Route::Version,
    },
    Pattern {
        method: "GET",
        segments: &["metrics"],
        template: "/metrics",
        build: |_| Route::Metrics,
    },
    Pattern {
        method: "GET",
        segments: &["ui"],
        template: "/ui",
        build: |_| Route::Ui,
    },
    Pattern {
        method: "GET",
        segments: &["ui", "*"],
        template: "/ui/{asset}",
        build: |p| Route::UiAsset { asset: p[0].into() },
    },
    Pattern {
        method: "GET",
        segments: &["static", "*"],
        template: "/static/{filename}",
        build: |p| Route::Static {
            filename: p[0].into(),
        },
    },
];

/// Every route of the table as `(method, template)`, in matching order (for the
/// OpenAPI document, which must describe each).
pub fn table() -> impl Iterator<Item = (&'static str, &'static str)> {
    TABLE
        .iter()
        .map(|pattern| (pattern.method, pattern.template))
}

/// Chooses the route for a request, as FastAPI would. `path` is the percent-decoded
/// request path.
pub fn match_route(method: &Method, path: &str) -> Result<Route, NoRoute> {
    match_route_with_template(method, path).map(|(route, _)| route)
}

/// [`match_route`], with the template of the route chosen (`/infrastructures/{infid}`).
pub fn match_route_with_template(
    method: &Method,
    path: &str,
) -> Result<(Route, &'static str), NoRoute> {
    let mut first_partial: Option<&'static str> = None;
    for pattern in TABLE {
        if let Some(params) = match_segments(pattern.segments, path) {
            if pattern.method == method.as_str() {
                return Ok(((pattern.build)(&params), pattern.template));
            }
            first_partial.get_or_insert(pattern.method);
        }
    }
    if let Some(allow) = first_partial {
        return Err(NoRoute::MethodNotAllowed { allow });
    }
    if path != "/" {
        let toggled = match path.strip_suffix('/') {
            Some(_) => path.trim_end_matches('/').to_string(),
            None => format!("{path}/"),
        };
        if TABLE
            .iter()
            .any(|p| match_segments(p.segments, &toggled).is_some())
        {
            return Err(NoRoute::RedirectTo { path: toggled });
        }
    }
    Err(NoRoute::NotFound)
}

/// Matches `/seg/seg/...` against a pattern; `*` takes one non-empty segment.
fn match_segments<'p>(pattern: &[&str], path: &'p str) -> Option<Vec<&'p str>> {
    let rest = path.strip_prefix('/')?;
    let mut params = Vec::new();
    let mut parts = rest.split('/');
    for expected in pattern {
        let part = parts.next()?;
        if *expected == "*" {
            if part.is_empty() {
                return None;
            }
            params.push(part);
        } else if part != *expected {
            return None;
        }
    }
    parts.next().is_none().then_some(params)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(path: &str) -> Result<Route, NoRoute> {
        match_route(&Method::GET, path)
    }

    #[test]
    fn infrastructure_routes_take_their_parameters() {
        assert_eq!(
            get("/infrastructures/abc/vms/0/state"),
            Ok(Route::GetVmProperty {
                inf: "abc".into(),
                vm: "0".into(),
                prop: "state".into()
            })
        );
        assert_eq!(
            match_route(&Method::PUT, "/infrastructures/abc/vms/1/disks/0/snapshot"),
            Ok(Route::Snapshot {
                inf: "abc".into(),
                vm: "1".into(),
                disk: "0".into()
            })
        );
    }

    #[test]
    fn a_vms_property_is_an_infrastructure_property_as_in_fastapi() {
        assert_eq!(
            get("/infrastructures/x/vms"),
            Ok(Route::GetInfrastructureProperty {
                inf: "x".into(),
                prop: "vms".into()
            })
        );
    }

    #[test]
    fn reconfigure_wins_over_the_generic_operation() {
        assert_eq!(
            match_route(&Method::PUT, "/infrastructures/x/reconfigure"),
            Ok(Route::Reconfigure { inf: "x".into() })
        );
        assert_eq!(
            match_route(&Method::PUT, "/infrastructures/x/foo"),
            Ok(Route::OperateInfrastructure {
                inf: "x".into(),
                op: "foo".into()
            })
        );
    }

    #[test]
    fn authorization_post_is_reached_past_partial_matches() {
        assert_eq!(
            match_route(&Method::POST, "/infrastructures/x/authorization"),
            Ok(Route::ChangeOwners { inf: "x".into() })
        );
    }

    #[test]
    fn wrong_methods_name_the_first_partial_match() {
        assert_eq!(
            match_route(&Method::DELETE, "/version"),
            Err(NoRoute::MethodNotAllowed { allow: "GET" })
        );
        assert_eq!(
            match_route(&Method::HEAD, "/infrastructures"),
            Err(NoRoute::MethodNotAllowed { allow: "GET" })
        );
        assert_eq!(
            match_route(&Method::PATCH, "/infrastructures/x"),
            Err(NoRoute::MethodNotAllowed { allow: "GET" })
        );
    }

    #[test]
    fn trailing_slashes_redirect_and_unknown_paths_are_not_found() {
        assert_eq!(
            get("/infrastructures/"),
            Err(NoRoute::RedirectTo {
                path: "/infrastructures".into()
            })
        );
        assert_eq!(
            get("/version//"),
            Err(NoRoute::RedirectTo {
                path: "/version".into()
            })
        );
        assert_eq!(get("//infrastructures"), Err(NoRoute::NotFound));
        assert_eq!(get("/health"), Err(NoRoute::NotFound));
        assert_eq!(get("/docs"), Err(NoRoute::NotFound));
        assert_eq!(get("/infrastructures//vms/0"), Err(NoRoute::NotFound));
    }

    #[test]
    fn each_template_names_the_segments_of_its_pattern() {
        for pattern in TABLE {
            let written: Vec<&str> = pattern.template.split('/').skip(1).collect();
            assert_eq!(
                written.len(),
                pattern.segments.len(),
                "{}",
                pattern.template
            );
            for (template, segment) in written.iter().zip(pattern.segments) {
                let is_parameter = template.starts_with('{') && template.ends_with('}');
                if *segment == "*" {
                    assert!(is_parameter, "{}", pattern.template);
                } else {
                    assert_eq!(template, segment, "{}", pattern.template);
                }
            }
        }
    }

    #[test]
    fn history_routes_are_infralogs_own() {
        assert_eq!(
            get("/infrastructures/x/events"),
            Ok(Route::InfrastructureEvents { inf: "x".into() })
        );
    }
}
