//! `GET /v1/images/{ref}`: a stored picture for an officer's client, which gets only references in
//! alerts. Open only with `ingest.viewer_token`: vendor tokens live in cameras and webhook URLs
//! (where proxies log them), and a leaked one must not let anybody browse every plate picture.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use metrics::counter;
use platestream_engine::images::ImageRef;

use super::auth::presented_token;
use super::ingest::IngestState;
use super::IngestError;

pub async fn image(
    State(state): State<Arc<IngestState>>,
    Path(reference): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let response = match serve_image(&state, &reference, &headers, &uri).await {
        Ok(response) => response,
        Err(error) => {
            tracing::debug!(code = error.code(), reason = %error, "image request refused");
            error.into_response()
        }
    };
    counter!(
        "platestream_image_requests_total",
        "status" => response.status().as_str().to_owned()
    )
    .increment(1);
    response
}

async fn serve_image(
    state: &IngestState,
    reference: &str,
    headers: &HeaderMap,
    uri: &Uri,
) -> Result<Response, IngestError> {
    let viewer = state.viewer.as_ref().ok_or(IngestError::ViewerDisabled)?;
    let token = presented_token(headers, uri).ok_or(IngestError::MissingToken)?;
    if !viewer.matches(&token) {
        return Err(IngestError::WrongToken("image viewing".to_owned()));
    }
    let parsed = ImageRef::parse(reference)
        .ok_or_else(|| IngestError::NotAnImageRef(reference.to_owned()))?;
    let store = state.images.clone();
    let located = tokio::task::spawn_blocking(move || store.locate(&parsed))
        .await
        .map_err(|error| IngestError::Internal(format!("looking up the image: {error}")))?;
    let Some((path, format)) = located else {
        return Err(IngestError::ImageNotFound(reference.to_owned()));
    };
    let bytes = tokio::fs::read(&path)
        .await
        .map_err(|error| IngestError::Internal(format!("reading {}: {error}", path.display())))?;
    let headers = [
        (
            header::CONTENT_TYPE,
            HeaderValue::from_static(format.media_type()),
        ),
        // The reference is the content's hash: what it names never changes.
        (
            header::CACHE_CONTROL,
            HeaderValue::from_static("private, max-age=31536000, immutable"),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
    ];
    Ok((StatusCode::OK, headers, bytes).into_response())
}
