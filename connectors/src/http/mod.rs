//! HTTP ingest for reader vendors that push: webhooks in, raw topics out. The running engine's
//! search API is in [`search`] (its own listener, `[api]`).
//!
//! | route | what |
//! | --- | --- |
//! | `POST /v1/ingest/{vendor}` | a vendor's webhook body; 200 once Kafka acknowledged it |
//! | `GET /v1/images/{ref}` | a stored image, with `ingest.viewer_token` |
//! | `GET /healthz` | 200 while the server runs |

mod auth;
mod error;
mod images;
mod ingest;
mod inline_images;
mod producer;
pub mod search;
mod settings;

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::{Json, Router};
use platestream_engine::images::DirectoryImageStore;
use platestream_engine::vendor::time::parse_zone;
use platestream_engine::vendor::{decoder_for, DecodeContext, GenericMapping};

pub use auth::API_KEY_HEADER;
pub use error::{IngestError, IngestSetupError, RETRY_AFTER_SECONDS};
pub use ingest::{Accepted, IMAGES_FIELD, IMAGE_FIELD, VENDOR_HEADER};
pub use inline_images::{externalize_inline_images, inline_image_bytes, MIN_INLINE_IMAGE_CHARS};
pub use search::{
    fetch_unarchived, BoundSearchApi, SearchApi, SearchApiSettings, SearchError, SearchSetupError,
    UnarchivedFetchError, UnarchivedResponse,
};
pub use settings::{IngestSettings, Token, VendorSettings, MIN_TOKEN_CHARS};

use crate::kafka::KafkaSettings;
use auth::TokenDigest;
use ingest::{IngestState, Vendor};
use producer::RecoveringProducer;

/// The ingest server, configured but not yet listening.
pub struct IngestServer {
    listen: SocketAddr,
    router: Router,
}

impl IngestServer {
    /// Checks the `[ingest]` settings and builds every vendor's decoder and the producer.
    ///
    /// `decoding` is the context the engine's decoders get (`[readers]`); its image store must
    /// write to the same directory as `images`, which the server stores uploads in and serves from.
    pub fn new(
        settings: &IngestSettings,
        kafka: &KafkaSettings,
        decoding: &DecodeContext,
        generic: Option<&GenericMapping>,
        images: DirectoryImageStore,
    ) -> Result<Self, IngestSetupError> {
        if settings.vendors.is_empty() {
            return Err(IngestSetupError::NoVendors);
        }
        let mut vendors = HashMap::new();
        for (name, vendor) in &settings.vendors {
            vendors.insert(
                name.clone(),
                Arc::new(build_vendor(name, vendor, decoding, generic)?),
            );
        }
        let viewer = match &settings.viewer_token {
            Some(token) => {
                check_token_length(token, "ingest.viewer_token".to_owned())?;
                Some(TokenDigest::of(token.as_str()))
            }
            None => None,
        };
        let produce_timeout = Duration::from_millis(settings.produce_timeout_ms.max(1));
        let mut producer_config = kafka.producer_config();
        producer_config
            // Exactly one copy per accepted request even when librdkafka retries a send whose
            // acknowledgement was lost.
            .set("enable.idempotence", "true")
            .set("acks", "all")
            // A dead broker must become a 503 within the request's patience, not after the
            // default five minutes.
            .set(
                "message.timeout.ms",
                produce_timeout.as_millis().to_string(),
            );
        let producer =
            RecoveringProducer::new(producer_config).map_err(IngestSetupError::Producer)?;
        let state = Arc::new(IngestState {
            vendors,
            producer,
            images,
            viewer,
            max_body_bytes: settings.max_body_bytes,
            produce_timeout,
        });
        let router = Router::new()
            .route("/v1/ingest/{vendor}", post(ingest::ingest))
            .route("/v1/images/{reference}", get(images::image))
            .route("/healthz", get(healthz))
            .method_not_allowed_fallback(|method, uri| wrong_method(method, uri, INGEST_ROUTES))
            .fallback(|uri| no_such_path(uri, INGEST_ROUTES))
            .layer(DefaultBodyLimit::max(settings.max_body_bytes))
            .with_state(state);
        Ok(Self {
            listen: settings.listen,
            router,
        })
    }

    /// Adds routes served beside ingest on the same listener (e.g. `/metrics`).
    pub fn merge(mut self, routes: Router) -> Self {
        self.router = self.router.merge(routes);
        self
    }

    /// The routes, for embedding in another server or driving without a socket.
    pub fn router(&self) -> Router {
        self.router.clone()
    }

    /// Binds `ingest.listen` (port 0 picks a free port; see `local_addr`).
    pub async fn bind(self) -> Result<BoundIngestServer, IngestSetupError> {
        let (listener, local_addr) =
            bind_listener(self.listen)
                .await
                .map_err(|source| IngestSetupError::Listen {
                    address: self.listen,
                    source,
                })?;
        Ok(BoundIngestServer {
            listener,
            local_addr,
            router: self.router,
        })
    }
}

/// A listening socket on `address` and the address it got (port 0 picks a free port).
async fn bind_listener(
    address: SocketAddr,
) -> std::io::Result<(tokio::net::TcpListener, SocketAddr)> {
    let listener = tokio::net::TcpListener::bind(address).await?;
    let local_addr = listener.local_addr()?;
    Ok((listener, local_addr))
}

/// The ingest server with its socket bound.
pub struct BoundIngestServer {
    listener: tokio::net::TcpListener,
    local_addr: SocketAddr,
    router: Router,
}

impl BoundIngestServer {
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves until `shutdown` completes, then finishes the requests in flight: each of those
    /// still gets its Kafka acknowledgement (or its 503) before the server returns.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), IngestSetupError> {
        axum::serve(self.listener, self.router)
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(IngestSetupError::Serve)
    }
}

fn build_vendor(
    name: &str,
    vendor: &VendorSettings,
    decoding: &DecodeContext,
    generic: Option<&GenericMapping>,
) -> Result<Vendor, IngestSetupError> {
    let is_path_segment = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !is_path_segment {
        return Err(IngestSetupError::BadVendorName {
            vendor: name.to_owned(),
        });
    }
    check_token_length(&vendor.token, format!("ingest.vendors.{name}.token"))?;
    if vendor.topic.trim().is_empty() {
        return Err(IngestSetupError::EmptyTopic {
            vendor: name.to_owned(),
        });
    }
    let mut context = decoding.clone();
    if let Some(zone_name) = &vendor.reader_timezone {
        let zone = parse_zone(zone_name).ok_or_else(|| IngestSetupError::BadTimezone {
            vendor: name.to_owned(),
            zone: zone_name.clone(),
        })?;
        context = context.with_timezone(zone);
    }
    let decoder = decoder_for(&vendor.format, generic, &context).map_err(|source| {
        IngestSetupError::Format {
            vendor: name.to_owned(),
            source,
        }
    })?;
    Ok(Vendor {
        name: name.to_owned(),
        topic: vendor.topic.clone(),
        token: TokenDigest::of(vendor.token.as_str()),
        decoder,
    })
}

fn check_token_length(token: &Token, setting: String) -> Result<(), IngestSetupError> {
    if token.as_str().trim().chars().count() < MIN_TOKEN_CHARS {
        return Err(IngestSetupError::ShortToken {
            setting,
            min: MIN_TOKEN_CHARS,
        });
    }
    Ok(())
}

async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

/// What the ingest server serves, for a request that asks for something else.
const INGEST_ROUTES: &str =
    "reads are POSTed to /v1/ingest/{vendor}; images and /healthz are read with GET";

/// A sender that GETs its webhook URL (or PUTs to it) is told what the URL takes, as every other
/// refusal is: JSON with a code and a reason.
async fn wrong_method(
    method: axum::http::Method,
    uri: axum::http::Uri,
    routes: &'static str,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let body = serde_json::json!({
        "error": "method_not_allowed",
        "reason": format!("{method} is not taken at {}: {routes}", uri.path()),
    });
    (axum::http::StatusCode::METHOD_NOT_ALLOWED, axum::Json(body)).into_response()
}

async fn no_such_path(uri: axum::http::Uri, routes: &'static str) -> axum::response::Response {
    use axum::response::IntoResponse;
    let body = serde_json::json!({
        "error": "not_found",
        "reason": format!("nothing is served at {}: {routes}", uri.path()),
    });
    (axum::http::StatusCode::NOT_FOUND, axum::Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use platestream_engine::images::MemoryImageStore;

    fn build(settings: &IngestSettings) -> Result<IngestServer, IngestSetupError> {
        let context = DecodeContext::new(Arc::new(MemoryImageStore::default()));
        IngestServer::new(
            settings,
            &KafkaSettings::new("127.0.0.1:1"),
            &context,
            None,
            DirectoryImageStore::new("unused"),
        )
    }

    fn with_vendor(name: &str, vendor: VendorSettings) -> IngestSettings {
        let mut settings = IngestSettings::default();
        settings.vendors.insert(name.to_owned(), vendor);
        settings
    }

    const TOKEN: &str = "0123456789abcdef0123";

    #[test]
    fn settings_mistakes_name_the_setting() {
        let error = |settings: IngestSettings| build(&settings).err().unwrap().to_string();
        assert!(error(IngestSettings::default()).contains("no vendors"));
        assert!(
            error(with_vendor("rekor", VendorSettings::new("rekor", "short")))
                .contains("ingest.vendors.rekor.token")
        );
        assert!(
            error(with_vendor("a/b", VendorSettings::new("rekor", TOKEN)))
                .contains("ingest.vendors.a/b")
        );
        assert!(error(with_vendor("x", VendorSettings::new("xml", TOKEN)))
            .contains("ingest.vendors.x.format"));
        let mut zoned = VendorSettings::new("genetec", TOKEN);
        zoned.reader_timezone = Some("Mars/Olympus".into());
        assert!(error(with_vendor("g", zoned)).contains("reader_timezone"));
        let mut viewer = with_vendor("rekor", VendorSettings::new("rekor", TOKEN));
        viewer.viewer_token = Some(Token("abc".into()));
        assert!(error(viewer).contains("ingest.viewer_token"));
        assert!(build(&with_vendor("rekor", VendorSettings::new("rekor", TOKEN))).is_ok());
    }
}
