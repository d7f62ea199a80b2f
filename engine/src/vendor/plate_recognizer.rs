//! Plate Recognizer Snapshot API responses and Stream webhooks → canonical reads.
//!
//! Both carry `results[]`, one entry per plate in the picture, so one message can hold several
//! reads. The Snapshot response has `results`, `camera_id` and `timestamp` at the top level; a
//! Stream webhook wraps the same body as `{"hook": {...}, "data": {...}}`, and Stream's JSON Lines
//! output is the bare body. All three decode alike (`schemas/examples/plate_recognizer/README.md`
//! has the field-by-field mapping and the sources).
//!
//! - `reader_id` is `camera_id` (Stream's camera name, or the `camera_id` a Snapshot caller
//!   passed), else the webhook's `hook.id`. A Snapshot response without a camera cannot be tied
//!   to a reader and is refused.
//! - Plate Recognizer sends no reader position: `lat`/`lon` stay unknown.
//! - `timestamp` with an offset is used as is; without one (the on-premise SDK) the offset of
//!   `timestamp_local` is used when it has one, else the reader time zone.
//! - `region.code` like `us-dc` passes to normalization; a bare code (`gb`, `ca`, `de`) names a
//!   country, which normalization would misread as a US state (`ca` → California), so it stays
//!   unknown.
//! - `orientation` is the pose of the vehicle (front or rear towards the camera), not its motion,
//!   and Stream's `direction` is an angle in the image, not a compass heading: neither is mapped.
//! - The HTTP ingest puts a multipart image's reference in `platestream_image`: the overview.

use serde::Deserialize;
use serde_json::json;

use crate::decode::{payload_text, DecodeError, Decoded, ReadDecoder};
use crate::read::{Attribute, ImageRefs, PlateRead, Timestamp, VehicleAttributes};

use super::lenient::{non_empty, LooseNumber, Text};
use super::time::parse_time_text;
use super::vocabulary::{canonical_body_type, canonical_color, canonical_make, canonical_model};
use super::{attribute, confidence_from_fraction, DecodeContext};

const FORMAT: &str = "plate_recognizer";

pub struct PlateRecognizerDecoder {
    context: DecodeContext,
}

impl PlateRecognizerDecoder {
    pub fn new(context: DecodeContext) -> Self {
        Self { context }
    }
}

/// A Snapshot response or Stream JSON line (the body at the top level), or a Stream webhook
/// (`hook` + `data`).
#[derive(Deserialize)]
struct Message<'a> {
    #[serde(borrow, default)]
    hook: Option<Hook<'a>>,
    #[serde(borrow, default)]
    data: Option<Body<'a>>,
    /// Added by platestream's HTTP ingest: the reference of the image uploaded beside the JSON.
    #[serde(borrow, default)]
    platestream_image: Option<Text<'a>>,

    #[serde(borrow, default)]
    results: Option<Vec<PlateResult<'a>>>,
    #[serde(borrow, default)]
    camera_id: Option<Text<'a>>,
    #[serde(borrow, default)]
    timestamp: Option<Text<'a>>,
    #[serde(borrow, default)]
    timestamp_local: Option<Text<'a>>,

    /// What the API says instead of results when it refuses a request.
    #[serde(borrow, default)]
    detail: Option<Text<'a>>,
    #[serde(borrow, default)]
    error: Option<Text<'a>>,
}

#[derive(Deserialize)]
struct Hook<'a> {
    #[serde(borrow, default)]
    id: Option<Text<'a>>,
    #[serde(borrow, default)]
    event: Option<Text<'a>>,
}

#[derive(Deserialize)]
struct Body<'a> {
    #[serde(borrow, default)]
    results: Option<Vec<PlateResult<'a>>>,
    #[serde(borrow, default)]
    camera_id: Option<Text<'a>>,
    #[serde(borrow, default)]
    timestamp: Option<Text<'a>>,
    #[serde(borrow, default)]
    timestamp_local: Option<Text<'a>>,
}

#[derive(Deserialize)]
struct PlateResult<'a> {
    #[serde(borrow, default)]
    plate: Option<Text<'a>>,
    #[serde(default)]
    score: LooseNumber,
    #[serde(borrow, default)]
    region: Option<Region<'a>>,
    #[serde(borrow, default)]
    vehicle: Option<Vehicle<'a>>,
    #[serde(borrow, default)]
    model_make: Option<Vec<ModelMake<'a>>>,
    #[serde(borrow, default)]
    color: Option<Vec<Color<'a>>>,
}

#[derive(Deserialize)]
struct Region<'a> {
    #[serde(borrow, default)]
    code: Option<Text<'a>>,
}

#[derive(Deserialize)]
struct Vehicle<'a> {
    #[serde(borrow, default, rename = "type")]
    kind: Option<Text<'a>>,
    #[serde(default)]
    score: LooseNumber,
}

#[derive(Deserialize)]
struct ModelMake<'a> {
    #[serde(borrow, default)]
    make: Option<Text<'a>>,
    #[serde(borrow, default)]
    model: Option<Text<'a>>,
    #[serde(default)]
    score: LooseNumber,
}

#[derive(Deserialize)]
struct Color<'a> {
    #[serde(borrow, default)]
    color: Option<Text<'a>>,
    #[serde(default)]
    score: LooseNumber,
}

fn malformed(detail: impl Into<String>) -> DecodeError {
    DecodeError::Malformed {
        format: FORMAT,
        detail: detail.into(),
    }
}

impl ReadDecoder for PlateRecognizerDecoder {
    fn format(&self) -> &'static str {
        FORMAT
    }

    fn decode(&self, payload: &[u8], reads: &mut Vec<PlateRead>) -> Result<Decoded, DecodeError> {
        let text = payload_text(payload)?;
        let message: Message =
            serde_json::from_str(text).map_err(|error| malformed(error.to_string()))?;
        let first_new = reads.len();
        let outcome = self.decode_message(message, reads);
        if outcome.is_err() {
            reads.truncate(first_new);
        }
        outcome
    }
}

impl PlateRecognizerDecoder {
    fn decode_message(
        &self,
        message: Message,
        reads: &mut Vec<PlateRead>,
    ) -> Result<Decoded, DecodeError> {
        let hook_id = message.hook.as_ref().and_then(|hook| non_empty(&hook.id));
        match message
            .hook
            .as_ref()
            .and_then(|hook| non_empty(&hook.event))
        {
            None | Some("recognition") => {}
            Some("heartbeat") => return Ok(Decoded::NotARead { kind: "heartbeat" }),
            // Stream's other webhook events (video clips, dwell times) follow a recognition
            // that came as its own event.
            Some(_) => {
                return Ok(Decoded::NotARead {
                    kind: "stream_event",
                })
            }
        }
        let body = match message.data {
            Some(body) => body,
            None => Body {
                results: message.results,
                camera_id: message.camera_id,
                timestamp: message.timestamp,
                timestamp_local: message.timestamp_local,
            },
        };
        let Some(results) = &body.results else {
            let refusal = non_empty(&message.detail).or_else(|| non_empty(&message.error));
            return Err(malformed(match refusal {
                Some(refusal) => format!("no results; the API said: {refusal}"),
                None => "no results (neither a Snapshot response nor a Stream webhook)".to_owned(),
            }));
        };
        if results.is_empty() {
            return Ok(Decoded::NotARead { kind: "no_plates" });
        }
        let reader_id = non_empty(&body.camera_id)
            .or(hook_id)
            .ok_or_else(|| {
                malformed("no camera_id (nor hook.id): the reader cannot be identified")
            })?
            .to_owned();
        let observed_at = observed_at(&body, &self.context)?;
        let overview = match non_empty(&message.platestream_image) {
            Some(reference) => self.context.store_inline_image(FORMAT, reference)?,
            None => None,
        };

        for (index, result) in results.iter().enumerate() {
            // Sent but blank is a read of no plate (`empty_plate`, as in every format); only a
            // missing plate makes the message malformed.
            let plate = non_empty(&result.plate)
                .or_else(|| result.plate.as_ref().map(Text::as_str))
                .ok_or_else(|| malformed(format!("results[{index}] has no plate")))?;
            let score = result
                .score
                .0
                .ok_or_else(|| malformed(format!("results[{index}] has no score")))?;
            reads.push(PlateRead {
                read_id: String::new(),
                vendor: FORMAT.to_owned(),
                reader_id: reader_id.clone(),
                camera_id: None,
                observed_at,
                ingested_at: None,
                plate: plate.to_owned(),
                plate_norm: String::new(),
                jurisdiction: result
                    .region
                    .as_ref()
                    .and_then(|region| non_empty(&region.code))
                    .filter(|code| code.contains('-'))
                    .map(str::to_owned),
                confidence: confidence_from_fraction(score),
                lat: None,
                lon: None,
                heading: None,
                motion: None,
                vehicle: vehicle_attributes(result),
                images: ImageRefs {
                    plate_crop: None,
                    overview: overview.clone(),
                },
                embedding: None,
                source: None,
                frames: 1,
                last_observed_at: None,
                duplicate_of: None,
            });
        }
        Ok(Decoded::Reads(results.len()))
    }
}

/// A time ends in an offset when it ends in `Z` or its clock part holds a sign.
fn has_offset(text: &str) -> bool {
    let text = text.trim();
    text.ends_with(['Z', 'z'])
        || text
            .get(11..)
            .is_some_and(|clock| clock.contains(['+', '-']))
}

fn observed_at(body: &Body, context: &DecodeContext) -> Result<Timestamp, DecodeError> {
    let timestamp = non_empty(&body.timestamp);
    let local = non_empty(&body.timestamp_local);
    let text = match (timestamp, local) {
        (Some(timestamp), Some(local)) if !has_offset(timestamp) && has_offset(local) => local,
        (Some(timestamp), _) => timestamp,
        (None, Some(local)) => local,
        (None, None) => return Err(malformed("no timestamp")),
    };
    parse_time_text(text, context.reader_timezone).map_err(|error| {
        malformed(error.reason("timestamp", text, || {
            format!("timestamp {text:?} is not a time")
        }))
    })
}

fn best_by_score<T>(candidates: &[T], score: impl Fn(&T) -> Option<f64>) -> Option<&T> {
    let mut best: Option<&T> = None;
    for candidate in candidates {
        let better = best.is_none_or(|best| {
            score(candidate).unwrap_or(f64::NEG_INFINITY) > score(best).unwrap_or(f64::NEG_INFINITY)
        });
        if better {
            best = Some(candidate);
        }
    }
    best
}

fn vehicle_attributes(result: &PlateResult) -> VehicleAttributes {
    let body_type = result.vehicle.as_ref().and_then(|vehicle| {
        let kind = non_empty(&vehicle.kind)?;
        attribute(
            canonical_body_type(kind),
            vehicle.score.0.map(confidence_from_fraction),
        )
    });
    let color = result
        .color
        .as_deref()
        .and_then(|colors| best_by_score(colors, |color| color.score.0))
        .and_then(|best| {
            attribute(
                non_empty(&best.color).and_then(canonical_color),
                best.score.0.map(confidence_from_fraction),
            )
        });
    let (make, model) = result
        .model_make
        .as_deref()
        .and_then(|candidates| best_by_score(candidates, |candidate| candidate.score.0))
        .map_or((None, None), |best| {
            let confidence = best.score.0.map(confidence_from_fraction);
            // `generic` is the classifier's "some make", with model `Unknown`.
            let make = non_empty(&best.make)
                .filter(|make| !make.eq_ignore_ascii_case("generic"))
                .and_then(canonical_make);
            let model = non_empty(&best.model)
                .and_then(|model| canonical_model(model, make.as_deref()))
                .filter(|_| make.is_some());
            (
                attribute(make, confidence),
                model.map(|model| Attribute::new(model, confidence)),
            )
        });
    VehicleAttributes {
        make,
        model,
        color,
        body_type,
    }
}

/// Plate Recognizer's vehicle classes: passenger cars of every body style are `Sedan`.
fn plate_recognizer_vehicle_type(body_type: &str) -> &'static str {
    match body_type {
        "suv" => "SUV",
        "pickup" => "Pickup Truck",
        "van" => "Van",
        "truck" => "Big Truck",
        "bus" => "Bus",
        "motorcycle" => "Motorcycle",
        "sedan" | "hatchback" | "coupe" | "convertible" | "wagon" => "Sedan",
        _ => "Unknown",
    }
}

/// `mercedes-benz` → `Mercedes-Benz`, `cr-v` → `Cr-V`: how the classifier capitalizes.
fn title_case(text: &str) -> String {
    let mut titled = String::with_capacity(text.len());
    let mut at_word_start = true;
    for character in text.chars() {
        if at_word_start {
            titled.extend(character.to_uppercase());
        } else {
            titled.push(character);
        }
        at_word_start = !character.is_alphanumeric();
    }
    titled
}

fn round_to_thousandths(value: f32) -> f64 {
    (f64::from(value) * 1000.0).round() / 1000.0
}

/// A Stream webhook as Plate Recognizer Stream would post it for this read (the simulator's
/// Plate Recognizer readers): the camera is the read's reader. Plate Recognizer carries no
/// position, so a decoded simulated read has none. The overview URL goes in `platestream_image`,
/// where the HTTP ingest puts the reference of the uploaded picture.
pub fn encode_simulated(read: &PlateRead) -> Vec<u8> {
    let timestamp = read.observed_at.to_string();
    let local = read
        .observed_at
        .to_datetime()
        .map(|time| time.format("%Y-%m-%d %H:%M:%S%.6f+00:00").to_string())
        .unwrap_or_else(|| timestamp.clone());
    let plate = read.plate.to_lowercase();
    let score = round_to_thousandths(read.confidence);
    let region = read
        .jurisdiction
        .as_deref()
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    let attributes = &read.vehicle;
    let filename = format!(
        "{}_screenshots/{}.jpg",
        read.reader_id,
        read.observed_at.millis()
    );

    let mut result = json!({
        "box": { "xmin": 612, "ymin": 418, "xmax": 731, "ymax": 452 },
        "plate": plate,
        "region": { "code": region, "score": if region.is_empty() { 0.0 } else { 0.9 } },
        "score": score,
        "candidates": [{ "score": score, "plate": plate }],
        "dscore": 0.87,
        "direction": 90,
        "source_url": format!("rtsp://{}/stream", read.reader_id),
        "position_sec": 0,
    });
    if let Some(result) = result.as_object_mut() {
        if let Some(body_type) = &attributes.body_type {
            result.insert(
                "vehicle".into(),
                json!({
                    "type": plate_recognizer_vehicle_type(&body_type.value),
                    "score": body_type.confidence.map_or(0.5, round_to_thousandths),
                    "box": { "xmin": 402, "ymin": 188, "xmax": 941, "ymax": 577 },
                }),
            );
        }
        if let Some(make) = &attributes.make {
            let model = attributes
                .model
                .as_ref()
                .map_or_else(|| "Unknown".to_owned(), |model| title_case(&model.value));
            let confidence = attributes
                .model
                .as_ref()
                .and_then(|model| model.confidence)
                .or(make.confidence);
            result.insert(
                "model_make".into(),
                json!([{
                    "make": title_case(&make.value),
                    "model": model,
                    "score": confidence.map_or(0.5, round_to_thousandths),
                }]),
            );
        }
        if let Some(color) = &attributes.color {
            result.insert(
                "color".into(),
                json!([{
                    "color": color.value,
                    "score": color.confidence.map_or(0.5, round_to_thousandths),
                }]),
            );
        }
    }
    let mut webhook = json!({
        "hook": {
            "target": "http://platestream.local/ingest/plate_recognizer",
            "id": read.reader_id,
            "event": "recognition",
            "filename": filename,
        },
        "data": {
            "camera_id": read.reader_id,
            "filename": filename,
            "timestamp": timestamp,
            "timestamp_local": local,
            "timestamp_camera": null,
            "results": [result],
        },
    });
    if let (Some(overview), Some(webhook)) = (&read.images.overview, webhook.as_object_mut()) {
        webhook.insert("platestream_image".into(), json!(overview));
    }
    serde_json::to_vec(&webhook).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::images::MemoryImageStore;
    use crate::jurisdiction::normalize_jurisdiction;
    use crate::vendor::time::parse_zone;

    fn decoder() -> PlateRecognizerDecoder {
        PlateRecognizerDecoder::new(
            DecodeContext::new(Arc::new(MemoryImageStore::default()))
                .with_timezone(parse_zone("America/New_York").unwrap()),
        )
    }

    fn decode(payload: &str) -> Result<(Decoded, Vec<PlateRead>), DecodeError> {
        let mut reads = Vec::new();
        let decoded = decoder().decode(payload.as_bytes(), &mut reads)?;
        Ok((decoded, reads))
    }

    const SNAPSHOT: &str = r#"{"processing_time": 88.3, "filename": "a.jpg", "version": 1,
        "camera_id": "dc-cam-7", "timestamp": "2026-11-24T17:00:00.250Z",
        "results": [
          {"plate": "7xk4021", "score": 0.904, "dscore": 0.95,
           "region": {"code": "us-dc", "score": 0.8}, "box": {"xmin": 1, "ymin": 2, "xmax": 3, "ymax": 4},
           "vehicle": {"type": "Sedan", "score": 0.91},
           "model_make": [{"make": "generic", "model": "Unknown", "score": 0.2}, {"make": "Toyota", "model": "Camry", "score": 0.7}],
           "color": [{"color": "silver", "score": 0.6}, {"color": "white", "score": 0.3}]},
          {"plate": "bk4410", "score": 0.81, "region": {"code": "ca", "score": 0.4}}
        ]}"#;

    #[test]
    fn every_plate_of_a_snapshot_is_a_read() {
        let (decoded, reads) = decode(SNAPSHOT).unwrap();
        assert_eq!(decoded, Decoded::Reads(2));
        assert_eq!(reads[0].plate, "7xk4021");
        assert_eq!(reads[0].reader_id, "dc-cam-7");
        assert_eq!(reads[0].jurisdiction.as_deref(), Some("us-dc"));
        assert_eq!(reads[0].vehicle.make.as_ref().unwrap().value, "toyota");
        assert_eq!(reads[0].vehicle.model.as_ref().unwrap().value, "camry");
        assert_eq!(reads[0].vehicle.color.as_ref().unwrap().value, "silver");
        assert_eq!(reads[0].vehicle.body_type.as_ref().unwrap().value, "sedan");
        assert_eq!(
            reads[1].jurisdiction, None,
            "`ca` is Canada, not California"
        );
        assert_eq!(reads[1].observed_at, reads[0].observed_at);
    }

    #[test]
    fn auto_format_sniffs_snapshots_and_stream_webhooks() {
        let sniffer = crate::vendor::SniffingDecoder::new(DecodeContext::new(Arc::new(
            MemoryImageStore::default(),
        )));
        for payload in [
            SNAPSHOT,
            r#"{"hook":{"event":"recognition"},"data":{"results":[{"plate":"a1","dscore":0.5}]}}"#,
            r#"{"hook":{"event":"heartbeat","id":"c"},"data":{}}"#,
        ] {
            let format = sniffer
                .sniff(payload.as_bytes())
                .map(|decoder| decoder.format());
            assert_eq!(format, Some(FORMAT), "{payload}");
        }
    }

    #[test]
    fn naive_times_take_the_local_offset_or_the_reader_zone() {
        let body = |timestamp: &str, local: &str| {
            format!(
                r#"{{"camera_id":"c","timestamp":{timestamp},"timestamp_local":{local},
                   "results":[{{"plate":"abc123","score":0.9}}]}}"#
            )
        };
        let expected = Timestamp::parse_rfc3339("2026-11-24T17:00:00Z").unwrap();
        for (timestamp, local) in [
            (r#""2026-11-24T17:00:00Z""#, "null"),
            (r#""2026-11-24 17:00:00""#, r#""2026-11-24 12:00:00-05:00""#),
            (r#""2026-11-24 12:00:00.000000""#, "null"),
            ("null", r#""2026-11-24 12:00:00.000000-05:00""#),
        ] {
            let (_, reads) = decode(&body(timestamp, local)).unwrap();
            assert_eq!(reads[0].observed_at, expected, "{timestamp} / {local}");
        }
    }

    #[test]
    fn stream_events_other_than_recognitions_and_empty_results_are_not_reads() {
        for (payload, kind) in [
            (
                r#"{"hook":{"event":"heartbeat","id":"c"},"data":{}}"#,
                "heartbeat",
            ),
            (
                r#"{"hook":{"event":"video","id":"c"},"data":{}}"#,
                "stream_event",
            ),
            (
                r#"{"camera_id":"c","timestamp":"2026-11-24T17:00:00Z","results":[]}"#,
                "no_plates",
            ),
        ] {
            assert_eq!(
                decode(payload).unwrap().0,
                Decoded::NotARead { kind },
                "{payload}"
            );
        }
    }

    #[test]
    fn refusals_say_why() {
        let error =
            decode(r#"{"detail":"Authentication credentials were not provided."}"#).unwrap_err();
        assert!(error.to_string().contains("credentials"), "{error}");
        let error = decode(
            r#"{"camera_id":null,"timestamp":"2026-11-24T17:00:00Z","results":[{"plate":"a1","score":0.9}]}"#,
        )
        .unwrap_err();
        assert!(error.to_string().contains("camera_id"), "{error}");
        let mut reads = Vec::new();
        let error = decoder()
            .decode(
                br#"{"camera_id":"c","timestamp":"2026-11-24T17:00:00Z",
                     "results":[{"plate":"a1","score":0.9},{"plate":"b2"}]}"#,
                &mut reads,
            )
            .unwrap_err();
        assert!(
            error.to_string().contains("results[1] has no score"),
            "{error}"
        );
        assert!(reads.is_empty());
    }

    #[test]
    fn decoding_the_simulated_webhook_gives_the_read_back() {
        let read = PlateRead {
            read_id: String::new(),
            vendor: "simulator".into(),
            reader_id: "dc-r-007".into(),
            camera_id: None,
            observed_at: Timestamp(1_795_539_600_250),
            ingested_at: None,
            plate: "8CX2291".into(),
            plate_norm: String::new(),
            jurisdiction: Some("US-MD".into()),
            confidence: 0.914,
            lat: Some(38.9),
            lon: Some(-77.03),
            heading: Some(90.0),
            motion: None,
            vehicle: VehicleAttributes {
                make: Some(Attribute::new("mercedes-benz", Some(0.7))),
                model: Some(Attribute::new("c-class", Some(0.7))),
                color: Some(Attribute::new("blue", Some(0.83))),
                body_type: Some(Attribute::new("sedan", Some(0.9))),
            },
            images: ImageRefs {
                plate_crop: None,
                overview: Some("https://images.example/overview/1.jpg".into()),
            },
            embedding: None,
            source: None,
            frames: 1,
            last_observed_at: None,
            duplicate_of: None,
        };
        let (decoded, reads) =
            decode(std::str::from_utf8(&encode_simulated(&read)).unwrap()).unwrap();
        assert_eq!(decoded, Decoded::Reads(1));
        let back = &reads[0];
        assert_eq!(back.plate.to_uppercase(), read.plate);
        assert_eq!(back.observed_at, read.observed_at);
        assert_eq!(back.reader_id, read.reader_id);
        assert_eq!(
            back.jurisdiction
                .as_deref()
                .and_then(normalize_jurisdiction),
            read.jurisdiction
        );
        assert!((back.confidence - read.confidence).abs() < 1e-4);
        assert_eq!(
            (back.lat, back.lon),
            (None, None),
            "no position in the format"
        );
        assert_eq!(back.images.overview, read.images.overview);
        for (name, back, original) in [
            ("make", &back.vehicle.make, &read.vehicle.make),
            ("model", &back.vehicle.model, &read.vehicle.model),
            ("color", &back.vehicle.color, &read.vehicle.color),
            (
                "body_type",
                &back.vehicle.body_type,
                &read.vehicle.body_type,
            ),
        ] {
            let (back, original) = (back.as_ref().unwrap(), original.as_ref().unwrap());
            assert_eq!(back.value, original.value, "{name}");
            assert!(
                (back.confidence.unwrap() - original.confidence.unwrap()).abs() < 1e-4,
                "{name}"
            );
        }
    }
}
