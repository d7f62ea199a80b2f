//! Why the ingest server refused a request or could not start. Every refusal is answered with a
//! JSON body `{"error": <stable code>, "reason": <explanation>}`, so a vendor's integrator can tell
//! a wrong token from a broken payload from an outage without reading platestream's logs.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use platestream_engine::decode::DecodeError;
use platestream_engine::images::ImageStoreError;
use platestream_engine::vendor::FormatError;

/// Seconds a client is asked to wait before retrying after a 503: long enough for a broker
/// restart or a leader election, short enough that a reader's local buffer does not fill up.
pub const RETRY_AFTER_SECONDS: u32 = 5;

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("no vendor {0:?} is configured (ingest.vendors.<name>)")]
    UnknownVendor(String),
    #[error(
        "no token given: send `Authorization: Bearer <token>`, `Authorization: Token <token>`, \
         an `X-Api-Key: <token>` header, or a `token=<token>` query parameter"
    )]
    MissingToken,
    #[error("the token is not valid for {0}")]
    WrongToken(String),
    #[error("image viewing is off: no ingest.viewer_token is configured")]
    ViewerDisabled,
    #[error("the body is larger than the limit of {limit} bytes (ingest.max_body_bytes)")]
    BodyTooLarge { limit: usize },
    #[error("the body could not be read: {0}")]
    UnreadableBody(String),
    #[error("malformed form: {0}")]
    MalformedForm(String),
    #[error("the form has no `json` field (Plate Recognizer sends the webhook's JSON in it)")]
    MissingJsonField,
    #[error("the form's `json` field is not a JSON object: {0}")]
    JsonFieldNotAnObject(String),
    #[error(transparent)]
    Undecodable(DecodeError),
    #[error("cannot store an image: {0}")]
    ImageStore(String),
    #[error("Kafka did not acknowledge the message: {0}")]
    KafkaUnavailable(String),
    #[error(
        "the message is {size} bytes after inline images were moved out, more than the producer's \
         message.max.bytes"
    )]
    MessageTooLarge { size: usize },
    #[error("{0:?} is not an image reference (sha256:<64 hex digits>)")]
    NotAnImageRef(String),
    #[error("no image {0} is stored")]
    ImageNotFound(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl IngestError {
    /// The stable label in the response's `error` field and in metrics.
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnknownVendor(_) => "unknown_vendor",
            Self::MissingToken => "missing_token",
            Self::WrongToken(_) => "wrong_token",
            Self::ViewerDisabled => "viewer_disabled",
            Self::BodyTooLarge { .. } => "body_too_large",
            Self::UnreadableBody(_) => "unreadable_body",
            Self::MalformedForm(_) => "malformed_form",
            Self::MissingJsonField => "missing_json_field",
            Self::JsonFieldNotAnObject(_) => "malformed",
            Self::Undecodable(error) => error.code(),
            Self::ImageStore(_) => "image_store_failed",
            Self::KafkaUnavailable(_) => "kafka_unavailable",
            Self::MessageTooLarge { .. } => "message_too_large",
            Self::NotAnImageRef(_) => "not_an_image_ref",
            Self::ImageNotFound(_) => "image_not_found",
            Self::Internal(_) => "internal",
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::UnknownVendor(_) | Self::ImageNotFound(_) => StatusCode::NOT_FOUND,
            Self::MissingToken | Self::WrongToken(_) => StatusCode::UNAUTHORIZED,
            Self::ViewerDisabled => StatusCode::FORBIDDEN,
            Self::BodyTooLarge { .. } | Self::MessageTooLarge { .. } => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            Self::UnreadableBody(_)
            | Self::MalformedForm(_)
            | Self::MissingJsonField
            | Self::JsonFieldNotAnObject(_)
            | Self::Undecodable(_)
            | Self::NotAnImageRef(_) => StatusCode::BAD_REQUEST,
            // Our disk or our broker, not the sender's payload: the sender should retry later.
            Self::ImageStore(_) | Self::KafkaUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<DecodeError> for IngestError {
    fn from(error: DecodeError) -> Self {
        match error {
            DecodeError::ImageStore { detail } => Self::ImageStore(detail),
            other => Self::Undecodable(other),
        }
    }
}

impl From<ImageStoreError> for IngestError {
    fn from(error: ImageStoreError) -> Self {
        Self::ImageStore(error.to_string())
    }
}

impl IntoResponse for IngestError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = serde_json::json!({ "error": self.code(), "reason": self.to_string() });
        let mut response = (status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"platestream\""),
            );
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
        }
        if matches!(self, Self::BodyTooLarge { .. }) {
            // The rest of the body is never read, so the server closes the connection after this
            // answer; saying so keeps the sender from reusing it for its next webhook, which would
            // then fail as an incomplete message (seen in CI under load).
            headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
}

/// Why the ingest server cannot start. Each names the setting to fix.
#[derive(Debug, thiserror::Error)]
pub enum IngestSetupError {
    #[error(
        "no vendors are configured: add an [ingest.vendors.<name>] table with format and token"
    )]
    NoVendors,
    #[error(
        "ingest.vendors.{vendor}: the name may hold only letters, digits, `_` and `-` (it is a URL \
         path segment)"
    )]
    BadVendorName { vendor: String },
    #[error("ingest.vendors.{vendor}.format: {source}")]
    Format { vendor: String, source: FormatError },
    #[error(
        "{setting}: a token needs at least {min} characters (it is all that guards the raw topic)"
    )]
    ShortToken { setting: String, min: usize },
    #[error("ingest.vendors.{vendor}.reader_timezone = {zone:?} is not an IANA time zone")]
    BadTimezone { vendor: String, zone: String },
    #[error("ingest.vendors.{vendor}.topic is empty")]
    EmptyTopic { vendor: String },
    #[error("ingest: cannot create the Kafka producer: {0}")]
    Producer(rdkafka::error::KafkaError),
    #[error("ingest.listen {address}: cannot listen: {source}")]
    Listen {
        address: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("ingest server stopped with an error: {0}")]
    Serve(std::io::Error),
}
