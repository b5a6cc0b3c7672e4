//! ApiVersions (key 18), v0-4. Advertises exactly [`super::SUPPORTED_APIS`].
//!
//! KIP-511: a client that sends a newer ApiVersions than we serve gets
//! UNSUPPORTED_VERSION in a v0 body that still lists our ranges, so it can
//! retry with a version we know.

use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse};
use kafka_protocol::ResponseError;

use super::{ApiSpec, RequestContext, SUPPORTED_APIS};

/// Served versions.
pub const API: ApiSpec = ApiSpec {
    key: ApiKey::ApiVersions,
    min: 0,
    max: 4,
};

fn api_list() -> Vec<ApiVersion> {
    SUPPORTED_APIS
        .iter()
        .map(|s| {
            ApiVersion::default()
                .with_api_key(s.key as i16)
                .with_min_version(s.min)
                .with_max_version(s.max)
        })
        .collect()
}

/// Answers ApiVersions.
pub async fn handle(_ctx: &RequestContext, _request: ApiVersionsRequest) -> ApiVersionsResponse {
    ApiVersionsResponse::default().with_api_keys(api_list())
}

/// The v0 answer to an ApiVersions version we do not serve.
pub fn unsupported_version_response() -> ApiVersionsResponse {
    ApiVersionsResponse::default()
        .with_error_code(ResponseError::UnsupportedVersion.code())
        .with_api_keys(api_list())
}
