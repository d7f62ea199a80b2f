//! `POST /v1/ingest/{vendor}`: a reader's webhook in, its message on the vendor's raw topic out.
//!
//! A request is answered 200 only after Kafka acknowledged the message (acks=all, idempotent), so
//! a read the vendor was told is accepted cannot be lost; when Kafka does not acknowledge within
//! `ingest.produce_timeout_ms` the answer is 503 with `Retry-After`, and the vendor retries.
//!
//! Between the two: the token is checked, the body read (JSON as sent; Plate Recognizer's forms
//! with a `json` field and image files), images moved into the image store, and the result decoded
//! with the vendor's decoder, so a payload the engine could not read is refused with the reason now
//! instead of surfacing later as a dead letter nobody connects to the sender.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Path, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use metrics::{counter, histogram};
use platestream_engine::decode::{Decoded, ReadDecoder};
use platestream_engine::images::{DirectoryImageStore, ImageFormat, ImageRef, ImageStore};
use platestream_engine::normalize::{normalize_plate, normalize_read};
use platestream_engine::Timestamp;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::FutureRecord;
use rdkafka::util::Timeout;
use serde::Serialize;
use serde_json::Value;

use super::auth::{presented_token, TokenDigest};
use super::inline_images::{externalize_inline_images, MIN_INLINE_IMAGE_CHARS};
use super::producer::RecoveringProducer;
use super::IngestError;

/// Kafka header naming the configured vendor whose token admitted the message.
pub const VENDOR_HEADER: &str = "platestream-vendor";
/// Top-level field added to a form's JSON: the uploaded picture (the `upload` file, else the first).
pub const IMAGE_FIELD: &str = "platestream_image";
/// Top-level field added to a form's JSON: every uploaded picture by its form field name.
pub const IMAGES_FIELD: &str = "platestream_images";
/// Plate Recognizer's name for the uploaded frame.
const UPLOAD_PART: &str = "upload";
/// The form field holding the webhook's JSON (Plate Recognizer Stream, ParkPow).
const JSON_PART: &str = "json";

/// A configured vendor, ready to accept requests.
pub struct Vendor {
    pub name: String,
    pub topic: String,
    pub token: TokenDigest,
    pub decoder: Arc<dyn ReadDecoder>,
}

pub struct IngestState {
    pub vendors: std::collections::HashMap<String, Arc<Vendor>>,
    pub producer: RecoveringProducer,
    pub images: DirectoryImageStore,
    pub viewer: Option<TokenDigest>,
    pub max_body_bytes: usize,
    pub produce_timeout: Duration,
}

/// The answer to an accepted request.
#[derive(Debug, Serialize)]
pub struct Accepted {
    pub status: &'static str,
    pub vendor: String,
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    /// Reads the message holds (0 for a heartbeat or status report).
    pub reads: usize,
    /// What the message is when it is not a read (`heartbeat`, ...); the engine counts these.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_a_read: Option<&'static str>,
    /// References of the images moved into the image store.
    pub images: Vec<String>,
    /// Reads the engine will refuse (dead-letter) by the normalization rules, so the vendor
    /// learns of them now; the message's other reads are archived.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub refused: Vec<RefusedRead>,
}

/// A read of an accepted message that breaks a normalization rule.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RefusedRead {
    /// Its place in the message, from 1.
    pub read: usize,
    /// The dead-letter code (`implausible_plate_character`, ...).
    pub error: &'static str,
    pub reason: String,
}

pub async fn ingest(
    State(state): State<Arc<IngestState>>,
    Path(vendor_name): Path<String>,
    request: Request,
) -> Response {
    let vendor = state.vendors.get(&vendor_name).cloned();
    // Only configured names become label values: a scanner probing paths must not create series.
    let label = vendor
        .as_ref()
        .map_or_else(|| "unknown".to_owned(), |vendor| vendor.name.clone());
    let outcome = match vendor {
        Some(vendor) => accept(&state, &vendor, request).await,
        None => Err(IngestError::UnknownVendor(vendor_name)),
    };
    let response = match outcome {
        Ok(accepted) => {
            tracing::debug!(
                vendor = %accepted.vendor,
                topic = %accepted.topic,
                partition = accepted.partition,
                offset = accepted.offset,
                reads = accepted.reads,
                "accepted"
            );
            (StatusCode::OK, Json(accepted)).into_response()
        }
        Err(error) => {
            log_refusal(&label, &error);
            error.into_response()
        }
    };
    counter!(
        "platestream_ingest_requests_total",
        "vendor" => label,
        "status" => response.status().as_str().to_owned()
    )
    .increment(1);
    response
}

fn log_refusal(vendor: &str, error: &IngestError) {
    let status = error.status();
    if status.is_server_error() {
        tracing::warn!(vendor, code = error.code(), reason = %error, "ingest failed");
    } else if status == StatusCode::UNAUTHORIZED || status == StatusCode::NOT_FOUND {
        // Scanners and misconfigured senders would flood the log at a higher level.
        tracing::debug!(vendor, code = error.code(), reason = %error, "ingest refused");
    } else {
        tracing::info!(vendor, code = error.code(), reason = %error, "ingest refused");
    }
}

async fn accept(
    state: &Arc<IngestState>,
    vendor: &Arc<Vendor>,
    request: Request,
) -> Result<Accepted, IngestError> {
    // The token before the body: an unauthenticated sender must not make us buffer megabytes.
    let token =
        presented_token(request.headers(), request.uri()).ok_or(IngestError::MissingToken)?;
    if !vendor.token.matches(&token) {
        return Err(IngestError::WrongToken(format!("vendor {}", vendor.name)));
    }
    let body = read_body(request, state.max_body_bytes).await?;
    counter!("platestream_ingest_bytes_total", "vendor" => vendor.name.clone())
        .increment(body.len() as u64);

    // Image writes fsync and decoding is CPU work: both stay off the async workers.
    let prepared = {
        let vendor = Arc::clone(vendor);
        let images = state.images.clone();
        tokio::task::spawn_blocking(move || prepare(&vendor, body, &images))
            .await
            .map_err(|error| IngestError::Internal(format!("preparing the message: {error}")))??
    };
    if !prepared.images.is_empty() {
        counter!("platestream_ingest_images_stored_total", "vendor" => vendor.name.clone())
            .increment(prepared.images.len() as u64);
    }

    let mut headers = OwnedHeaders::new();
    headers = headers.insert(Header {
        key: VENDOR_HEADER,
        value: Some(vendor.name.as_bytes()),
    });
    let mut record = FutureRecord::<str, [u8]>::to(&vendor.topic)
        .payload(prepared.payload.as_ref())
        .headers(headers);
    if let Some(key) = prepared.key.as_deref() {
        record = record.key(key);
    }
    let producer = state.producer.current();
    let started = Instant::now();
    // librdkafka's own timeouts (queueing, then `message.timeout.ms`) add up to more than the
    // vendor was promised, and its timer runs coarse: the answer is bounded here. A message still
    // in flight may yet be delivered; the vendor's retry then folds into it (same read id).
    let delivery = tokio::time::timeout(
        state.produce_timeout,
        producer.send(record, Timeout::After(state.produce_timeout)),
    )
    .await;
    histogram!("platestream_ingest_produce_seconds", "vendor" => vendor.name.clone())
        .record(started.elapsed().as_secs_f64());
    let delivery = match delivery {
        Ok(delivery) => delivery.map_err(|(error, _)| {
            state.producer.replace_if_broken(&producer, &error);
            kafka_refusal(error, prepared.payload.len())
        })?,
        Err(_) => {
            return Err(IngestError::KafkaUnavailable(format!(
                "no acknowledgement within {} ms (ingest.produce_timeout_ms)",
                state.produce_timeout.as_millis()
            )))
        }
    };

    let (reads, not_a_read) = match prepared.decoded {
        Decoded::Reads(count) => (count, None),
        Decoded::NotARead { kind } => (0, Some(kind)),
    };
    Ok(Accepted {
        status: "accepted",
        vendor: vendor.name.clone(),
        topic: vendor.topic.clone(),
        partition: delivery.partition,
        offset: delivery.offset,
        reads,
        not_a_read,
        images: prepared.images.iter().map(ToString::to_string).collect(),
        refused: prepared.refused,
    })
}

fn kafka_refusal(error: KafkaError, size: usize) -> IngestError {
    match error {
        KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge) => {
            IngestError::MessageTooLarge { size }
        }
        other => IngestError::KafkaUnavailable(other.to_string()),
    }
}

/// A request body as sent: raw bytes (JSON for every vendor but Plate Recognizer), or a form with
/// the webhook's JSON in a `json` field and pictures as files.
pub enum IncomingBody {
    Raw(Bytes),
    Form {
        json: String,
        files: Vec<(String, Bytes)>,
    },
}

impl IncomingBody {
    fn len(&self) -> usize {
        match self {
            Self::Raw(bytes) => bytes.len(),
            Self::Form { json, files } => {
                json.len() + files.iter().map(|(_, bytes)| bytes.len()).sum::<usize>()
            }
        }
    }
}

async fn read_body(request: Request, limit: usize) -> Result<IncomingBody, IngestError> {
    let too_large = IngestError::BodyTooLarge { limit };
    // Refused before reading when the sender says how much is coming.
    let declared_length = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared_length.is_some_and(|length| length > limit as u64) {
        return Err(too_large);
    }
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    if content_type.starts_with("multipart/form-data") {
        return read_multipart(request, limit).await;
    }
    let bytes = Bytes::from_request(request, &())
        .await
        .map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                IngestError::BodyTooLarge { limit }
            } else {
                IngestError::UnreadableBody(rejection.body_text())
            }
        })?;
    // `curl -d` and some webhook clients label raw JSON as a form; JSON never starts a form.
    let looks_like_json = bytes
        .iter()
        .find(|byte| !byte.is_ascii_whitespace())
        .is_some_and(|first| *first == b'{' || *first == b'[');
    // A body that is no form at all (empty, binary, plain text without `name=value`) gets the
    // decoder's reason (`empty_message`, `not_utf8`, `malformed`), not a missing form field.
    let looks_like_a_form = std::str::from_utf8(&bytes).is_ok_and(|text| text.contains('='));
    if content_type.starts_with("application/x-www-form-urlencoded")
        && !looks_like_json
        && looks_like_a_form
    {
        let fields: Vec<(String, String)> = serde_urlencoded::from_bytes(&bytes)
            .map_err(|error| IngestError::MalformedForm(error.to_string()))?;
        let json = fields
            .into_iter()
            .find_map(|(name, value)| (name == JSON_PART).then_some(value))
            .ok_or(IngestError::MissingJsonField)?;
        return Ok(IncomingBody::Form {
            json,
            files: Vec::new(),
        });
    }
    Ok(IncomingBody::Raw(bytes))
}

async fn read_multipart(request: Request, limit: usize) -> Result<IncomingBody, IngestError> {
    let multipart_error = |error: axum::extract::multipart::MultipartError| {
        if error.status() == StatusCode::PAYLOAD_TOO_LARGE {
            IngestError::BodyTooLarge { limit }
        } else {
            IngestError::MalformedForm(error.body_text())
        }
    };
    let mut multipart = Multipart::from_request(request, &())
        .await
        .map_err(|rejection| IngestError::MalformedForm(rejection.body_text()))?;
    let mut json = None;
    let mut files = Vec::new();
    while let Some(field) = multipart.next_field().await.map_err(multipart_error)? {
        let name = field.name().unwrap_or_default().to_owned();
        let is_file = field.file_name().is_some();
        let bytes = field.bytes().await.map_err(multipart_error)?;
        if name == JSON_PART {
            let text = String::from_utf8(bytes.to_vec()).map_err(|error| {
                IngestError::MalformedForm(format!("the `json` field is not UTF-8: {error}"))
            })?;
            json = Some(text);
        } else if is_file || ImageFormat::sniff(&bytes) != ImageFormat::Unknown {
            files.push((name, bytes));
        }
    }
    Ok(IncomingBody::Form {
        json: json.ok_or(IngestError::MissingJsonField)?,
        files,
    })
}

/// A message ready to produce.
pub struct Prepared {
    pub payload: Bytes,
    /// The first read's normalized plate: one plate's reads stay on one partition, in order, which
    /// is what the engine's per-partition duplicate suppression needs.
    pub key: Option<String>,
    pub decoded: Decoded,
    pub images: Vec<ImageRef>,
    pub refused: Vec<RefusedRead>,
}

/// Images out, then the vendor's decoder over exactly the bytes that will be produced.
pub fn prepare(
    vendor: &Vendor,
    body: IncomingBody,
    images: &dyn ImageStore,
) -> Result<Prepared, IngestError> {
    let (payload, stored) = match body {
        IncomingBody::Raw(bytes) => externalize_raw(bytes, images)?,
        IncomingBody::Form { json, files } => payload_from_form(&json, files, images)?,
    };
    let mut reads = Vec::new();
    let decoded = vendor.decoder.decode(&payload, &mut reads)?;
    let key = reads
        .first()
        .and_then(|read| normalize_plate(&read.plate).ok());
    // The engine applies the same rules; saying so now spares the vendor a search of the
    // dead-letter topic it cannot read.
    let now = Timestamp::now();
    let refused = reads
        .iter_mut()
        .enumerate()
        .filter_map(|(index, read)| {
            normalize_read(read, now).err().map(|error| RefusedRead {
                read: index + 1,
                error: error.code(),
                reason: error.to_string(),
            })
        })
        .collect();
    Ok(Prepared {
        payload,
        key,
        decoded,
        images: stored,
        refused,
    })
}

/// A body without inline images is produced byte for byte as sent; one with them is re-serialized
/// with references in their place.
fn externalize_raw(
    bytes: Bytes,
    images: &dyn ImageStore,
) -> Result<(Bytes, Vec<ImageRef>), IngestError> {
    if bytes.len() < MIN_INLINE_IMAGE_CHARS {
        return Ok((bytes, Vec::new()));
    }
    // Not JSON: nothing recognizable to move; the decoder judges the bytes as sent.
    let Some(mut value) = platestream_engine::decode::payload_text(&bytes)
        .ok()
        .and_then(|text| serde_json::from_str::<Value>(text).ok())
    else {
        return Ok((bytes, Vec::new()));
    };
    let stored = externalize_inline_images(&mut value, images)?;
    if stored.is_empty() {
        return Ok((bytes, stored));
    }
    Ok((Bytes::from(to_json(&value)?), stored))
}

fn payload_from_form(
    json: &str,
    files: Vec<(String, Bytes)>,
    images: &dyn ImageStore,
) -> Result<(Bytes, Vec<ImageRef>), IngestError> {
    let mut value: Value = serde_json::from_str(json)
        .map_err(|error| IngestError::JsonFieldNotAnObject(error.to_string()))?;
    let mut stored = externalize_inline_images(&mut value, images)?;
    let Value::Object(fields) = &mut value else {
        return Err(IngestError::JsonFieldNotAnObject(format!(
            "it is {}",
            json_kind(&value)
        )));
    };
    let mut by_field = serde_json::Map::new();
    let mut overview: Option<(bool, ImageRef)> = None;
    for (name, bytes) in files {
        if bytes.is_empty() {
            continue;
        }
        let reference = images.put(&bytes)?;
        let is_upload = name == UPLOAD_PART;
        if overview.is_none_or(|(was_upload, _)| is_upload && !was_upload) {
            overview = Some((is_upload, reference));
        }
        by_field.insert(name, Value::String(reference.to_string()));
        stored.push(reference);
    }
    if let Some((_, reference)) = overview {
        fields.insert(IMAGE_FIELD.to_owned(), Value::String(reference.to_string()));
        fields.insert(IMAGES_FIELD.to_owned(), Value::Object(by_field));
    }
    Ok((Bytes::from(to_json(&value)?), stored))
}

fn to_json(value: &Value) -> Result<Vec<u8>, IngestError> {
    serde_json::to_vec(value)
        .map_err(|error| IngestError::Internal(format!("re-serializing the body: {error}")))
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use platestream_engine::decode::CanonicalJsonDecoder;
    use platestream_engine::images::MemoryImageStore;

    const READ: &str = r#"{"vendor":"acme","reader_id":"r1","observed_at":"2026-11-24T17:00:00Z","plate":"abc-123","confidence":0.9}"#;

    fn canonical() -> Vendor {
        Vendor {
            name: "acme".into(),
            topic: "plate-reads".into(),
            token: TokenDigest::of("t"),
            decoder: Arc::new(CanonicalJsonDecoder),
        }
    }

    fn jpeg(fill: u8) -> Vec<u8> {
        let mut bytes = vec![0xFF, 0xD8, 0xFF, 0xE0];
        bytes.extend([fill; 300]);
        bytes
    }

    #[test]
    fn a_body_without_images_is_produced_as_sent_and_keyed_by_plate() {
        let store = MemoryImageStore::default();
        let body = Bytes::from(format!("{READ}\n{}", " ".repeat(300)));
        let prepared = prepare(&canonical(), IncomingBody::Raw(body.clone()), &store).unwrap();
        assert_eq!(prepared.payload, body);
        assert_eq!(prepared.key.as_deref(), Some("ABC123"));
        assert_eq!(prepared.decoded, Decoded::Reads(1));
    }

    #[test]
    fn form_uploads_are_stored_and_referenced_with_upload_as_the_overview() {
        let store = MemoryImageStore::default();
        let (plate, frame) = (jpeg(1), jpeg(2));
        let files = vec![
            ("plate".to_owned(), Bytes::from(plate.clone())),
            ("upload".to_owned(), Bytes::from(frame.clone())),
        ];
        let prepared = prepare(
            &canonical(),
            IncomingBody::Form {
                json: READ.to_owned(),
                files,
            },
            &store,
        )
        .unwrap();
        let produced: Value = serde_json::from_slice(&prepared.payload).unwrap();
        assert_eq!(
            produced[IMAGE_FIELD],
            ImageRef::of(&frame).to_string().as_str()
        );
        assert_eq!(
            produced[IMAGES_FIELD]["plate"],
            ImageRef::of(&plate).to_string().as_str()
        );
        assert_eq!(produced["plate"], "abc-123");
        assert_eq!(store.len(), 2);
    }

    #[test]
    fn bad_bodies_are_refused_with_the_decoders_reason() {
        let store = MemoryImageStore::default();
        let error = prepare(
            &canonical(),
            IncomingBody::Raw(Bytes::from_static(b"{\"vendor\":")),
            &store,
        )
        .err()
        .unwrap();
        assert_eq!(error.code(), "malformed");
        assert_eq!(error.status(), StatusCode::BAD_REQUEST);
        let error = prepare(
            &canonical(),
            IncomingBody::Form {
                json: "[1]".to_owned(),
                files: Vec::new(),
            },
            &store,
        )
        .err()
        .unwrap();
        assert!(error.to_string().contains("an array"), "{error}");
    }
}
