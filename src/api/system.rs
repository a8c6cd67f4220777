//! `/version`: which IM this server answers as.

use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use serde_json::json;

use super::errors::{ApiError, Endpoint};
use super::media::{negotiate, DefaultType};
use super::respond::text_or_json;
use super::RequestContext;

/// The IM version infralog is wire-compatible with.
pub const IM_VERSION: &str = "2.0.0";

pub fn version(context: &RequestContext) -> Result<HttpResponse, ApiError> {
    let representation = negotiate(&context.accept, DefaultType::TextPlain)
        .map_err(|unsupported| Endpoint::Version.unsupported_accept(unsupported))?;
    Ok(text_or_json(
        representation,
        IM_VERSION.to_string(),
        json!({ "version": IM_VERSION }).to_string(),
    ))
}

/// `GET|POST /oai`: IM's OAI-PMH repository, disabled unless configured (it is
/// never configured here).
pub fn oai() -> ApiError {
    ApiError::im(StatusCode::BAD_REQUEST, "OAI-PMH not enabled.")
}

/// `GET /static/{filename}`: IM serves files only when `STATIC_FILES_DIR` is set
/// (it is never set here).
pub fn static_file() -> ApiError {
    ApiError::im(StatusCode::NOT_FOUND, "Static files not enabled.")
}

/// `GET /` and `GET /redoc`: the page that renders the OpenAPI document for a
/// person (IM serves Swagger UI and ReDoc there). Our own page, embedded: nothing
/// is fetched from outside.
pub fn docs() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(DOCS_PAGE)
}

/// The page: its HTML with its style sheet and script inlined, so that it needs
/// no route of its own.
const DOCS_PAGE: &str = concat!(
    include_str!("docs_page/head.html"),
    "<style>\n",
    include_str!("docs_page/docs.css"),
    "</style>\n</head>\n",
    include_str!("docs_page/body.html"),
    "<script>\n",
    include_str!("docs_page/docs.js"),
    "</script>\n</body>\n</html>\n"
);

/// `GET /openapi.json`: the OpenAPI 3.1 document, built once.
pub fn openapi(context: &RequestContext) -> HttpResponse {
    // One document per set of served facades (their routes are described where
    // they are served), built once each.
    static DOCUMENTS: [std::sync::OnceLock<String>; 4] = [
        std::sync::OnceLock::new(),
        std::sync::OnceLock::new(),
        std::sync::OnceLock::new(),
        std::sync::OnceLock::new(),
    ];
    let facades = context
        .request
        .app_data::<actix_web::web::Data<crate::facades::Facades>>();
    let imc = facades.is_some_and(|facades| facades.serves_imc());
    let mlbench = facades.is_some_and(|facades| facades.serves_mlbench());
    let cache = &DOCUMENTS[usize::from(imc) + 2 * usize::from(mlbench)];
    let body = cache.get_or_init(|| super::openapi::document_for(imc, mlbench).to_string());
    HttpResponse::Ok()
        .content_type("application/json")
        .body(body.clone())
}

/// `GET /metrics`: Prometheus' text format. A server started without metrics
/// (none in the application's data) answers an empty document.
pub fn metrics(context: &RequestContext, state: &super::AppState) -> HttpResponse {
    let facade_mailboxes = context
        .request
        .app_data::<actix_web::web::Data<crate::facades::Facades>>()
        .map(|facades| facades.mailbox_depths())
        .unwrap_or_default();
    let text = context
        .request
        .app_data::<actix_web::web::Data<crate::metrics::Metrics>>()
        .map(|metrics| {
            if let Some(facades) = context
                .request
                .app_data::<actix_web::web::Data<crate::facades::Facades>>()
            {
                for (kind, count) in facades.running_actors() {
                    metrics.set_live(kind, count);
                }
            }
            metrics.render(Some(&state.registry), &facade_mailboxes)
        })
        .unwrap_or_default();
    HttpResponse::Ok()
        .content_type(crate::metrics::CONTENT_TYPE)
        .body(text)
}
