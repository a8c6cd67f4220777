//! `GET /clouds/{cloudid}/{images|quotas}`: what a cloud of the caller's credentials
//! offers. No infrastructure and no ownership is involved: the cloud is one of the
//! credential lines of the request, and its connector answers.

use std::sync::Arc;

use actix_web::HttpResponse;
use infralog_actors::connectors::{
    CloudConnector, CloudImage, ConnectorError, ImageFilters, InvalidImageFilters, Quotas,
};
use serde_json::{json, Map, Value};

use super::admission::Admission;
use super::errors::{ApiError, Endpoint, Failure};
use super::media::{negotiate, DefaultType};
use super::{AppState, RequestContext};
use crate::auth::Identity;

/// The values of `{param}`, in IM's order.
const PARAMS: [&str; 2] = ["images", "quotas"];

/// Why a cloud could not be asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CloudInfoError {
    /// No cloud credential line has this id (IM's words).
    #[error("Cloud ID {0} not found.")]
    UnknownCloud(String),
    /// The line names a cloud type infralog has no connector for.
    #[error("Cloud type {kind} of cloud ID {id} is not supported.")]
    UnsupportedType { id: String, kind: String },
    /// The cloud refused or failed.
    #[error(transparent)]
    Connector(#[from] ConnectorError),
}

/// The connector for the cloud `cloud_id` of the request's credentials.
pub fn connector_for(
    state: &AppState,
    identity: &Identity,
    cloud_id: &str,
) -> Result<Arc<dyn CloudConnector>, CloudInfoError> {
    let cloud = identity
        .cloud(cloud_id)
        .ok_or_else(|| CloudInfoError::UnknownCloud(cloud_id.to_string()))?;
    state
        .connectors
        .get(&cloud.kind)
        .ok_or_else(|| CloudInfoError::UnsupportedType {
            id: cloud.id.clone(),
            kind: cloud.kind.clone(),
        })
}

/// `{"images":[{"uri":…,"name":…},…]}`, keys in IM's order.
pub fn images_json(images: &[CloudImage]) -> String {
    let list: Vec<Value> = images
        .iter()
        .map(|image| json!({ "uri": image.uri, "name": image.name }))
        .collect();
    json!({ "images": list }).to_string()
}

/// `{"quotas":{"cores":{"used":…,"limit":…},…}}`, in the cloud's order.
pub fn quotas_json(quotas: &Quotas) -> String {
    let mut object = Map::new();
    for (name, usage) in quotas {
        object.insert(
            name.clone(),
            json!({ "used": usage.used, "limit": usage.limit }),
        );
    }
    json!({ "quotas": object }).to_string()
}

pub async fn cloud_info(
    state: &AppState,
    context: &RequestContext,
    cloud_id: &str,
    param: &str,
) -> Result<HttpResponse, ApiError> {
    let admission = Admission::header(state, context)?;
    let param = admission.parameters(|v, _| v.literal("param", param, &PARAMS))?;
    let is_images = param == Some("images");
    // IM reads the filters (images only) before it looks at the credentials, and
    // answers a bad one with a bare 400.
    let filters = match context.query.get("filters").filter(|f| !f.is_empty()) {
        Some(raw) if is_images => ImageFilters::parse(raw).map_err(bad_filters)?,
        _ => ImageFilters::default(),
    };
    let caller = admission.credentials(Endpoint::CloudInfo)?;
    let (endpoint, identity) = (caller.endpoint, &caller.identity);
    let cloud_error = |error: CloudInfoError| endpoint.error(Failure::Other(error.to_string()));
    let connector = connector_for(state, identity, cloud_id).map_err(cloud_error)?;
    let credentials = caller
        .cloud_credentials()
        .remove(cloud_id)
        .unwrap_or_default();
    let body = if is_images {
        let images = connector
            .images(&filters, &credentials)
            .await
            .map_err(|e| cloud_error(e.into()))?;
        images_json(&images)
    } else {
        let quotas = connector
            .quotas(&credentials)
            .await
            .map_err(|e| cloud_error(e.into()))?;
        quotas_json(&quotas)
    };
    // IM formats the answer last: an unacceptable Accept is a 415 after the call.
    // A JSON-only route has no other representation to choose.
    negotiate(&context.accept, DefaultType::Json)
        .map_err(|unsupported| endpoint.unsupported_accept(unsupported))?;
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .body(body))
}

/// IM raises this one as an HTTPException of its own, without the endpoint's prefix.
fn bad_filters(invalid: InvalidImageFilters) -> ApiError {
    ApiError::im(
        actix_web::http::StatusCode::BAD_REQUEST,
        invalid.to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use infralog_actors::connectors::QuotaUsage;

    #[test]
    fn images_and_quotas_are_wrapped_in_their_field() {
        let images = vec![CloudImage {
            uri: "mock0://linux.for.ev.er/image1".into(),
            name: "Image Name1".into(),
        }];
        assert_eq!(
            images_json(&images),
            r#"{"images":[{"uri":"mock0://linux.for.ev.er/image1","name":"Image Name1"}]}"#
        );
        let quotas = vec![
            ("cores".to_string(), QuotaUsage { used: 1, limit: 10 }),
            ("ram".to_string(), QuotaUsage { used: 2, limit: 20 }),
        ];
        assert_eq!(
            quotas_json(&quotas),
            r#"{"quotas":{"cores":{"used":1,"limit":10},"ram":{"used":2,"limit":20}}}"#
        );
    }

    #[test]
    fn cloud_errors_say_what_is_missing() {
        assert_eq!(
            CloudInfoError::UnknownCloud("nope".into()).to_string(),
            "Cloud ID nope not found."
        );
        assert_eq!(
            CloudInfoError::UnsupportedType {
                id: "os".into(),
                kind: "OpenStack".into()
            }
            .to_string(),
            "Cloud type OpenStack of cloud ID os is not supported."
        );
    }
}
