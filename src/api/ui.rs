//! `/ui`: the dashboard for people who manage infrastructures (sign-in, list,
//! one infrastructure with its VMs, RADL, contmsg and history, and the
//! operations). Plain files embedded into the binary: no build step, and nothing
//! is fetched from outside when a browser shows it. The page only calls the
//! public API with the credentials the person typed, so it grants nothing the
//! API does not.

use actix_web::http::header;
use actix_web::HttpResponse;

use super::errors::ApiError;

/// The assets under `/ui/{asset}`: name, media type, content.
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "dashboard.css",
        "text/css; charset=utf-8",
        include_str!("ui/dashboard.css"),
    ),
    (
        "dashboard.js",
        "text/javascript; charset=utf-8",
        include_str!("ui/dashboard.js"),
    ),
];

/// `GET /ui`: the dashboard's page.
pub fn page() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        // The page holds no data of its own, but a cached old page could load
        // assets of another version after an upgrade.
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(include_str!("ui/index.html"))
}

/// `GET /ui/{asset}`: one of the page's style sheet and script; any other name
/// answers FastAPI's 404, as an unknown path does.
pub fn asset(name: &str) -> Result<HttpResponse, ApiError> {
    let (_, media_type, content) = ASSETS
        .iter()
        .find(|(known, _, _)| *known == name)
        .ok_or(ApiError::RouteNotFound)?;
    Ok(HttpResponse::Ok()
        .content_type(*media_type)
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(*content))
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::body::MessageBody;

    #[test]
    fn the_page_names_only_assets_that_are_served() {
        let page = include_str!("ui/index.html");
        for (name, _, _) in ASSETS {
            assert!(page.contains(&format!("/ui/{name}")), "{name}");
        }
        // Nothing from outside: every src/href is local.
        assert!(!page.contains("http://") && !page.contains("https://"));
    }

    #[test]
    fn the_dashboard_is_routed_and_other_paths_stay_not_found() {
        use crate::api::routes::{match_route, NoRoute, Route};
        use actix_web::http::Method;
        assert_eq!(match_route(&Method::GET, "/ui"), Ok(Route::Ui));
        assert_eq!(
            match_route(&Method::GET, "/ui/dashboard.js"),
            Ok(Route::UiAsset {
                asset: "dashboard.js".into()
            })
        );
        // FastAPI's trailing-slash redirect, as for every route.
        assert_eq!(
            match_route(&Method::GET, "/ui/"),
            Err(NoRoute::RedirectTo { path: "/ui".into() })
        );
        assert_eq!(match_route(&Method::GET, "/ui/a/b"), Err(NoRoute::NotFound));
    }

    #[test]
    fn assets_have_their_media_type_and_unknown_names_are_not_found() {
        let css = asset("dashboard.css").expect("served");
        assert_eq!(
            css.headers().get(header::CONTENT_TYPE).expect("a type"),
            "text/css; charset=utf-8"
        );
        let js = asset("dashboard.js").expect("served");
        let body = js.into_body().try_into_bytes().expect("a complete body");
        assert!(!body.is_empty());
        assert!(matches!(asset("../mod.rs"), Err(ApiError::RouteNotFound)));
        assert!(matches!(asset("index.html"), Err(ApiError::RouteNotFound)));
    }
}
