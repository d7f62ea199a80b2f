//! Rekor Scout / OpenALPR agent messages → canonical reads.
//!
//! The agent posts (or queues) JSON values told apart by `data_type`
//! (`schemas/examples/rekor/README.md` has the field-by-field mapping and the sources):
//! - `alpr_group`: one vehicle pass, folded by the agent from its frames: one read, with `frames`
//!   set to the number of frames (`uuids`) and `last_observed_at` to `epoch_end`.
//!   Preview groups (`is_preview`) are reads too: they exist so that alerts need not wait up to
//!   ten seconds for the pass to end, and duplicate suppression folds the final group into them.
//! - `alpr_results`: one video frame: one read per entry of `results`.
//! - `heartbeat` (agent health), `alpr_alert` (Rekor's own hotlist hit, which embeds a group the
//!   agent also sends as `alpr_group`) and `vehicle` (a vehicle seen without a plate) are not
//!   reads; the web server's "test webhook" post (`{"openalpr_webhook": "test"}`) neither.
//!
//! `reader_id` is `agent_uid` (the agent's install id, stable across restarts and camera
//! changes); `camera_id` is the agent's numeric camera id. Confidences are on Rekor's 0–100
//! scale; a plate confidence of 1 or less is taken as already 0..1 (no agent reports a plate it
//! is under 1 % sure of), while classifier confidences stay strictly 0–100 because the
//! make/model classifier routinely reports values under 1 %. `travel_direction` is an angle in
//! the image, not a compass heading, so it is not mapped to `heading`.

use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::decode::{payload_text, DecodeError, Decoded, ReadDecoder};
use crate::read::{Attribute, ImageRefs, PlateRead, Timestamp, VehicleAttributes};

use super::lenient::{non_empty, LooseNumber, Text};
use super::time::from_epoch_number;
use super::vocabulary::{canonical_body_type, canonical_color, canonical_make, canonical_model};
use super::{attribute, confidence_from_either_scale, confidence_from_percent, DecodeContext};

const FORMAT: &str = "rekor";

/// The Rekor Scout web server's image endpoint (`/img/{agent_uid}/{image_uuid}`, which proxies
/// the agent's stored frame; it wants the user's `api_key`). The read keeps this as the overview
/// reference when the message carries no inline vehicle picture.
const WEB_SERVER_IMAGE_URL: &str = "https://cloud.openalpr.com/img";

pub struct RekorDecoder {
    context: DecodeContext,
}

impl RekorDecoder {
    pub fn new(context: DecodeContext) -> Self {
        Self { context }
    }
}

/// The fields of every `data_type` in one struct, so that a message is parsed once whatever it
/// turns out to be. Fields this decoder does not use are skipped by serde.
#[derive(Deserialize)]
struct Message<'a> {
    #[serde(borrow, default)]
    data_type: Option<Text<'a>>,
    #[serde(borrow, default)]
    agent_uid: Option<Text<'a>>,
    #[serde(borrow, default)]
    camera_id: Option<Text<'a>>,
    #[serde(default)]
    gps_latitude: LooseNumber,
    #[serde(default)]
    gps_longitude: LooseNumber,
    #[serde(borrow, default)]
    country: Option<Text<'a>>,

    // alpr_group
    #[serde(borrow, default)]
    best_plate_number: Option<Text<'a>>,
    #[serde(default)]
    best_confidence: LooseNumber,
    #[serde(borrow, default)]
    best_region: Option<Text<'a>>,
    #[serde(default)]
    epoch_start: LooseNumber,
    #[serde(default)]
    epoch_end: LooseNumber,
    #[serde(borrow, default)]
    best_uuid: Option<Text<'a>>,
    /// One per frame of the pass; only their number is used.
    #[serde(default)]
    uuids: Option<Vec<IgnoredAny>>,
    #[serde(borrow, default)]
    best_plate: Option<PlateResult<'a>>,
    #[serde(borrow, default)]
    vehicle_crop_jpeg: Option<Text<'a>>,
    #[serde(borrow, default)]
    vehicle: Option<Vehicle<'a>>,

    // alpr_results
    #[serde(default)]
    epoch_time: LooseNumber,
    #[serde(borrow, default)]
    uuid: Option<Text<'a>>,
    #[serde(borrow, default)]
    results: Option<Vec<PlateResult<'a>>>,

    /// The web server's "test webhook" post.
    #[serde(default)]
    openalpr_webhook: Option<IgnoredAny>,
}

/// `best_plate` of a group, or one entry of `results` of a frame.
#[derive(Deserialize)]
struct PlateResult<'a> {
    #[serde(borrow, default)]
    plate: Option<Text<'a>>,
    #[serde(default)]
    confidence: LooseNumber,
    #[serde(borrow, default)]
    region: Option<Text<'a>>,
    #[serde(borrow, default)]
    plate_crop_jpeg: Option<Text<'a>>,
}

/// The classifier's ranked candidates per attribute (`null` when it has none).
#[derive(Deserialize, Default)]
struct Vehicle<'a> {
    #[serde(borrow, default)]
    color: Option<Vec<Candidate<'a>>>,
    #[serde(borrow, default)]
    make: Option<Vec<Candidate<'a>>>,
    #[serde(borrow, default)]
    make_model: Option<Vec<Candidate<'a>>>,
    #[serde(borrow, default)]
    body_type: Option<Vec<Candidate<'a>>>,
}

#[derive(Deserialize)]
struct Candidate<'a> {
    #[serde(borrow, default)]
    name: Option<Text<'a>>,
    #[serde(default)]
    confidence: LooseNumber,
}

fn malformed(detail: impl Into<String>) -> DecodeError {
    DecodeError::Malformed {
        format: FORMAT,
        detail: detail.into(),
    }
}

impl ReadDecoder for RekorDecoder {
    fn format(&self) -> &'static str {
        FORMAT
    }

    fn decode(&self, payload: &[u8], reads: &mut Vec<PlateRead>) -> Result<Decoded, DecodeError> {
        let text = payload_text(payload)?;
        let message: Message =
            serde_json::from_str(text).map_err(|error| malformed(error.to_string()))?;
        let first_new = reads.len();
        let outcome = self.decode_message(&message, reads);
        if outcome.is_err() {
            reads.truncate(first_new);
        }
        outcome
    }
}

impl RekorDecoder {
    fn decode_message(
        &self,
        message: &Message,
        reads: &mut Vec<PlateRead>,
    ) -> Result<Decoded, DecodeError> {
        match non_empty(&message.data_type) {
            Some("alpr_group") => self.decode_group(message, reads),
            Some("alpr_results") => self.decode_frame(message, reads),
            Some("heartbeat") => Ok(Decoded::NotARead { kind: "heartbeat" }),
            Some("alpr_alert") => Ok(Decoded::NotARead { kind: "alpr_alert" }),
            Some("vehicle") => Ok(Decoded::NotARead { kind: "vehicle" }),
            Some(other) => Err(malformed(format!(
                "unknown data_type {other:?} (known: alpr_group, alpr_results, heartbeat, \
                 alpr_alert, vehicle)"
            ))),
            // Relays and older agents drop `data_type`; the shape still tells.
            None if message.openalpr_webhook.is_some() => Ok(Decoded::NotARead {
                kind: "webhook_test",
            }),
            None if message.best_plate_number.is_some() || message.best_plate.is_some() => {
                self.decode_group(message, reads)
            }
            None if message.results.is_some() => self.decode_frame(message, reads),
            None => Err(malformed(
                "no data_type, and neither best_plate_number (alpr_group) nor results \
                 (alpr_results)",
            )),
        }
    }

    fn decode_group(
        &self,
        message: &Message,
        reads: &mut Vec<PlateRead>,
    ) -> Result<Decoded, DecodeError> {
        let best = message.best_plate.as_ref();
        let plate = non_empty(&message.best_plate_number)
            .or_else(|| best.and_then(|best| non_empty(&best.plate)))
            // Sent but blank is a read of no plate, which normalization refuses as
            // `empty_plate` in every format; only a missing field makes the message malformed.
            .or_else(|| message.best_plate_number.as_ref().map(Text::as_str))
            .or_else(|| best.and_then(|best| best.plate.as_ref()).map(Text::as_str))
            .ok_or_else(|| malformed("alpr_group has no best_plate_number"))?;
        let confidence = message
            .best_confidence
            .0
            .or_else(|| best.and_then(|best| best.confidence.0))
            .ok_or_else(|| malformed("alpr_group has no best_confidence"))?;
        let started_at = epoch("epoch_start", message.epoch_start)?;
        let ended_at = epoch("epoch_end", message.epoch_end)?;
        let observed_at = started_at
            .or(ended_at)
            .ok_or_else(|| malformed("alpr_group has no epoch_start"))?;
        let (reader_id, camera_id) = reader(message)?;

        let mut read = new_read(reader_id, camera_id, observed_at, plate, confidence);
        let region = non_empty(&message.best_region)
            .or_else(|| best.and_then(|best| non_empty(&best.region)));
        read.jurisdiction = jurisdiction(region, non_empty(&message.country));
        read.lat = message.gps_latitude.0;
        read.lon = message.gps_longitude.0;
        read.vehicle = message
            .vehicle
            .as_ref()
            .map(vehicle_attributes)
            .unwrap_or_default();
        read.images = ImageRefs {
            plate_crop: self.image(
                || "best_plate.plate_crop_jpeg",
                best.and_then(|best| best.plate_crop_jpeg.as_ref()),
            )?,
            overview: match self
                .image(|| "vehicle_crop_jpeg", message.vehicle_crop_jpeg.as_ref())?
            {
                Some(picture) => Some(picture),
                None => web_server_image(message, &message.best_uuid),
            },
        };
        read.frames = message.uuids.as_ref().map_or(1, |uuids| {
            u32::try_from(uuids.len()).unwrap_or(u32::MAX).max(1)
        });
        read.last_observed_at = ended_at.filter(|ended_at| *ended_at > observed_at);
        reads.push(read);
        Ok(Decoded::Reads(1))
    }

    fn decode_frame(
        &self,
        message: &Message,
        reads: &mut Vec<PlateRead>,
    ) -> Result<Decoded, DecodeError> {
        let results = message.results.as_deref().unwrap_or_default();
        if results.is_empty() {
            return Ok(Decoded::NotARead { kind: "no_plates" });
        }
        let observed_at = epoch("epoch_time", message.epoch_time)?
            .ok_or_else(|| malformed("alpr_results has no epoch_time"))?;
        let (reader_id, camera_id) = reader(message)?;
        let overview = web_server_image(message, &message.uuid);
        for (index, result) in results.iter().enumerate() {
            let plate = non_empty(&result.plate)
                .or_else(|| result.plate.as_ref().map(Text::as_str))
                .ok_or_else(|| malformed(format!("results[{index}] has no plate")))?;
            let confidence = result
                .confidence
                .0
                .ok_or_else(|| malformed(format!("results[{index}] has no confidence")))?;
            let mut read = new_read(
                reader_id.clone(),
                camera_id.clone(),
                observed_at,
                plate,
                confidence,
            );
            read.jurisdiction =
                jurisdiction(non_empty(&result.region), non_empty(&message.country));
            read.lat = message.gps_latitude.0;
            read.lon = message.gps_longitude.0;
            read.images = ImageRefs {
                plate_crop: self.image(
                    || format!("results[{index}].plate_crop_jpeg"),
                    result.plate_crop_jpeg.as_ref(),
                )?,
                overview: overview.clone(),
            };
            reads.push(read);
        }
        Ok(Decoded::Reads(results.len()))
    }

    /// An inline base64 picture moved into the image store (a URL or reference kept as is); the
    /// error names the field.
    fn image<F: ToString>(
        &self,
        field: impl FnOnce() -> F,
        text: Option<&Text>,
    ) -> Result<Option<String>, DecodeError> {
        let Some(text) = text.and_then(Text::non_empty) else {
            return Ok(None);
        };
        self.context
            .store_inline_image(FORMAT, text)
            .map_err(|error| match error {
                DecodeError::Malformed { format, detail } => DecodeError::Malformed {
                    format,
                    detail: format!("{}: {detail}", field().to_string()),
                },
                other => other,
            })
    }
}

fn new_read(
    reader_id: String,
    camera_id: Option<String>,
    observed_at: Timestamp,
    plate: &str,
    confidence: f64,
) -> PlateRead {
    PlateRead {
        read_id: String::new(),
        vendor: FORMAT.to_owned(),
        reader_id,
        camera_id,
        observed_at,
        ingested_at: None,
        plate: plate.to_owned(),
        plate_norm: String::new(),
        jurisdiction: None,
        confidence: confidence_from_either_scale(confidence),
        lat: None,
        lon: None,
        heading: None,
        motion: None,
        vehicle: VehicleAttributes::default(),
        images: ImageRefs::default(),
        embedding: None,
        source: None,
        frames: 1,
        last_observed_at: None,
        duplicate_of: None,
    }
}

/// `agent_uid` identifies the reader; a message without it falls back to its `camera_id`.
fn reader(message: &Message) -> Result<(String, Option<String>), DecodeError> {
    let camera_id = non_empty(&message.camera_id).map(str::to_owned);
    let reader_id = non_empty(&message.agent_uid)
        .map(str::to_owned)
        .or_else(|| camera_id.clone())
        .ok_or_else(|| malformed("neither agent_uid nor camera_id identifies the reader"))?;
    Ok((reader_id, camera_id))
}

fn epoch(field: &str, value: LooseNumber) -> Result<Option<Timestamp>, DecodeError> {
    match value.0 {
        None => Ok(None),
        Some(number) => from_epoch_number(number)
            .map(Some)
            .ok_or_else(|| malformed(format!("{field} {number} is not an epoch time"))),
    }
}

/// Rekor writes regions as `us-md`. Older agents write the bare state (`md`) beside
/// `country: "us"`; a bare code anywhere else is a country (`de` is Germany, not Delaware), which
/// normalization cannot express, so it stays unknown.
fn jurisdiction(region: Option<&str>, country: Option<&str>) -> Option<String> {
    let region = region?;
    if region.contains('-') {
        return Some(region.to_owned());
    }
    match country {
        Some(country)
            if country.eq_ignore_ascii_case("us") || country.eq_ignore_ascii_case("ca") =>
        {
            Some(format!("{country}-{region}"))
        }
        _ => None,
    }
}

fn web_server_image(message: &Message, image_uuid: &Option<Text>) -> Option<String> {
    let agent_uid = non_empty(&message.agent_uid)?;
    let image_uuid = non_empty(image_uuid)?;
    Some(format!("{WEB_SERVER_IMAGE_URL}/{agent_uid}/{image_uuid}"))
}

/// The highest-confidence named candidate (the first of equals: the lists are ranked), with its
/// confidence on the 0..1 scale.
fn top<'c>(candidates: &'c Option<Vec<Candidate<'_>>>) -> Option<(&'c str, Option<f32>)> {
    let mut best: Option<(&str, Option<f64>)> = None;
    for candidate in candidates.as_deref().unwrap_or_default() {
        let Some(name) = non_empty(&candidate.name) else {
            continue;
        };
        let confidence = candidate.confidence.0;
        let better = match best {
            None => true,
            Some((_, best_confidence)) => {
                confidence.unwrap_or(f64::NEG_INFINITY)
                    > best_confidence.unwrap_or(f64::NEG_INFINITY)
            }
        };
        if better {
            best = Some((name, confidence));
        }
    }
    best.map(|(name, confidence)| (name, confidence.map(confidence_from_percent)))
}

fn vehicle_attributes(vehicle: &Vehicle) -> VehicleAttributes {
    let color = top(&vehicle.color)
        .and_then(|(name, confidence)| attribute(canonical_color(name), confidence));
    let body_type = top(&vehicle.body_type)
        .and_then(|(name, confidence)| attribute(canonical_body_type(name), confidence));
    let make = top(&vehicle.make)
        .and_then(|(name, confidence)| attribute(canonical_make(name), confidence));
    // `make_model` names are `<make>_<model>` (`ford_focus`, `mercedes-benz_c-class`).
    let make_model = top(&vehicle.make_model).map(|(name, confidence)| {
        let (make_part, model_part) = match name.split_once('_') {
            Some((make_part, model_part)) => (canonical_make(make_part), model_part),
            None => (None, name),
        };
        (make_part, model_part, confidence)
    });
    let (make, model) = match (make, make_model) {
        (Some(make), Some((model_make, model_part, confidence))) => {
            // A model of another make than the make classifier's pick would describe no car.
            let agrees = model_make
                .as_deref()
                .is_none_or(|model_make| model_make == make.value);
            let model = agrees
                .then(|| canonical_model(model_part, Some(&make.value)))
                .flatten()
                .map(|model| Attribute::new(model, confidence));
            (Some(make), model)
        }
        (Some(make), None) => (Some(make), None),
        (None, Some((model_make, model_part, confidence))) => {
            let model = canonical_model(model_part, model_make.as_deref())
                .map(|model| Attribute::new(model, confidence));
            (attribute(model_make, confidence), model)
        }
        (None, None) => (None, None),
    };
    VehicleAttributes {
        make,
        model,
        color,
        body_type,
    }
}

/// Rekor's spelling of a canonical color (the classifier says `silver-gray` and `gold-beige`).
fn rekor_color(color: &str) -> &str {
    match color {
        "gray" => "silver-gray",
        "beige" => "gold-beige",
        other => other,
    }
}

/// Rekor's hyphenated body-type classes for a canonical body type.
fn rekor_body_type(body_type: &str) -> String {
    match body_type {
        "sedan" => "sedan-standard".to_owned(),
        "suv" => "suv-standard".to_owned(),
        "pickup" => "truck-pickup".to_owned(),
        "truck" => "truck-standard".to_owned(),
        "van" => "van-full".to_owned(),
        "hatchback" | "coupe" | "convertible" | "wagon" => format!("sedan-{body_type}"),
        other => other.to_owned(),
    }
}

/// One ranked candidate list holding just the read's attribute, on Rekor's 0–100 scale.
fn candidates(name: String, confidence: Option<f32>) -> Value {
    let percent = f64::from(confidence.unwrap_or(0.5)) * 100.0;
    json!([{ "name": name, "confidence": round_to_thousandths(percent) }])
}

fn round_to_thousandths(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

/// An `alpr_group` as a Rekor Scout agent would send it for this read (the simulator's Rekor
/// readers). `agent_uid` is the read's reader, `camera_id` its camera (a number when it is one).
/// The simulator has no picture bytes, so its image URLs go where the agent puts inline JPEGs;
/// the decoder keeps URLs found there as references.
pub fn encode_simulated(read: &PlateRead) -> Vec<u8> {
    let epoch_start = read.observed_at.millis();
    let epoch_end = read.last_observed_at.unwrap_or(read.observed_at).millis();
    let camera = read.camera_id.as_deref().unwrap_or("1");
    let camera_id = camera
        .parse::<u64>()
        .map_or_else(|_| json!(camera), |number| json!(number));
    let frames = i64::from(read.frames.max(1));
    let step = ((epoch_end - epoch_start) / frames.max(2).saturating_sub(1)).max(1);
    let uuids: Vec<String> = (0..frames)
        .map(|frame| format!("{}-{camera}-{}", read.reader_id, epoch_start + frame * step))
        .collect();
    let confidence = round_to_thousandths(f64::from(read.confidence) * 100.0);
    let region = read
        .jurisdiction
        .as_deref()
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();

    let mut vehicle = serde_json::Map::new();
    let attributes = &read.vehicle;
    if let Some(color) = &attributes.color {
        vehicle.insert(
            "color".into(),
            candidates(rekor_color(&color.value).to_owned(), color.confidence),
        );
    }
    if let Some(make) = &attributes.make {
        vehicle.insert(
            "make".into(),
            candidates(make.value.clone(), make.confidence),
        );
        if let Some(model) = &attributes.model {
            vehicle.insert(
                "make_model".into(),
                candidates(format!("{}_{}", make.value, model.value), model.confidence),
            );
        }
    }
    if let Some(body_type) = &attributes.body_type {
        vehicle.insert(
            "body_type".into(),
            candidates(rekor_body_type(&body_type.value), body_type.confidence),
        );
    }

    let mut best_plate = json!({
        "plate": read.plate,
        "confidence": confidence,
        "matches_template": 1,
        "plate_index": 0,
        "region": region,
        "region_confidence": if region.is_empty() { 0 } else { 90 },
        "candidates": [{ "plate": read.plate, "confidence": confidence, "matches_template": 1 }],
    });
    if let (Some(crop), Some(best_plate)) = (&read.images.plate_crop, best_plate.as_object_mut()) {
        best_plate.insert("plate_crop_jpeg".into(), json!(crop));
    }
    let mut group = json!({
        "data_type": "alpr_group",
        "version": 2,
        "agent_type": "alprd",
        "agent_uid": read.reader_id,
        "agent_version": "4.1.1",
        "camera_id": camera_id,
        "company_id": "platestream-simulator",
        "country": "us",
        "epoch_start": epoch_start,
        "epoch_end": epoch_end,
        "frame_start": 0,
        "frame_end": frames - 1,
        "uuids": uuids,
        "plate_indexes": vec![0; uuids.len()],
        "best_uuid": uuids.first(),
        "best_plate_number": read.plate,
        "best_confidence": confidence,
        "best_region": region,
        "best_region_confidence": if region.is_empty() { 0 } else { 90 },
        "matches_template": true,
        "is_parked": false,
        "is_preview": false,
        "candidates": [{ "plate": read.plate, "confidence": confidence, "matches_template": 1 }],
        "best_plate": best_plate,
        "vehicle": vehicle,
    });
    if let Some(group) = group.as_object_mut() {
        if let (Some(lat), Some(lon)) = (read.lat, read.lon) {
            group.insert("gps_latitude".into(), json!(lat));
            group.insert("gps_longitude".into(), json!(lon));
        }
        if let Some(overview) = &read.images.overview {
            group.insert("vehicle_crop_jpeg".into(), json!(overview));
        }
    }
    serde_json::to_vec(&group).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::images::MemoryImageStore;
    use crate::jurisdiction::normalize_jurisdiction;

    fn decoder() -> RekorDecoder {
        RekorDecoder::new(DecodeContext::new(Arc::new(MemoryImageStore::default())))
    }

    fn decode(payload: &str) -> Result<(Decoded, Vec<PlateRead>), DecodeError> {
        let mut reads = Vec::new();
        let decoded = decoder().decode(payload.as_bytes(), &mut reads)?;
        Ok((decoded, reads))
    }

    #[test]
    fn a_group_is_one_read_of_the_whole_pass() {
        let (decoded, reads) = decode(
            r#"{"data_type":"alpr_group","agent_uid":"A1","camera_id":1234,
               "epoch_start":1795539600250,"epoch_end":1795539602750,
               "uuids":["A1-1234-1795539600250","A1-1234-1795539601250","A1-1234-1795539602750"],
               "best_plate_number":"7XK4021","best_confidence":93.5,"best_region":"us-dc",
               "gps_latitude":38.8977,"gps_longitude":-77.0365}"#,
        )
        .unwrap();
        assert_eq!(decoded, Decoded::Reads(1));
        let read = &reads[0];
        assert_eq!(read.reader_id, "A1");
        assert_eq!(read.camera_id.as_deref(), Some("1234"));
        assert_eq!(read.observed_at, Timestamp(1_795_539_600_250));
        assert_eq!(read.last_observed_at, Some(Timestamp(1_795_539_602_750)));
        assert_eq!(read.frames, 3);
        assert!((read.confidence - 0.935).abs() < 1e-6);
        assert_eq!(read.jurisdiction.as_deref(), Some("us-dc"));
        assert_eq!((read.lat, read.lon), (Some(38.8977), Some(-77.0365)));
    }

    #[test]
    fn heartbeats_alerts_and_plateless_vehicles_are_not_reads() {
        for (payload, kind) in [
            (r#"{"data_type":"heartbeat","agent_uid":"A1"}"#, "heartbeat"),
            (
                r#"{"data_type":"alpr_alert","plate_number":"ABC123","group":{"best_plate_number":"ABC123"}}"#,
                "alpr_alert",
            ),
            (r#"{"data_type":"vehicle","agent_uid":"A1"}"#, "vehicle"),
            (r#"{"openalpr_webhook":"test"}"#, "webhook_test"),
            (
                r#"{"data_type":"alpr_results","agent_uid":"A1","epoch_time":1795539600250,"results":[]}"#,
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
    fn auto_format_sniffs_every_rekor_message() {
        let sniffer = crate::vendor::SniffingDecoder::new(DecodeContext::new(Arc::new(
            MemoryImageStore::default(),
        )));
        for payload in [
            r#"{"data_type":"alpr_group","best_plate_number":"X1"}"#,
            r#"{"data_type":"alpr_results","results":[],"processing_time_ms":20.5}"#,
            r#"{"data_type":"heartbeat"}"#,
            r#"{"openalpr_webhook":"test"}"#,
        ] {
            let format = sniffer
                .sniff(payload.as_bytes())
                .map(|decoder| decoder.format());
            assert_eq!(format, Some(FORMAT), "{payload}");
        }
    }

    #[test]
    fn bare_regions_are_states_only_beside_a_north_american_country() {
        assert_eq!(jurisdiction(Some("us-md"), None).as_deref(), Some("us-md"));
        assert_eq!(
            jurisdiction(Some("md"), Some("us")).as_deref(),
            Some("us-md")
        );
        assert_eq!(jurisdiction(Some("de"), Some("eu")), None);
        assert_eq!(jurisdiction(Some("de"), None), None);
        assert_eq!(jurisdiction(None, Some("us")), None);
    }

    #[test]
    fn confidences_of_either_scale_for_plates_percent_for_the_classifier() {
        let (_, reads) = decode(
            r#"{"data_type":"alpr_group","agent_uid":"A1","epoch_start":1795539600250,
               "best_plate_number":"7XK4021","best_confidence":0.91,
               "vehicle":{"make":[{"name":"ford","confidence":0.8},{"name":"toyota","confidence":0.6}]}}"#,
        )
        .unwrap();
        assert!((reads[0].confidence - 0.91).abs() < 1e-6);
        let make = reads[0].vehicle.make.as_ref().unwrap();
        assert_eq!(make.value, "ford");
        assert!((make.confidence.unwrap() - 0.008).abs() < 1e-6);
    }

    #[test]
    fn a_model_of_another_make_than_the_make_pick_is_dropped() {
        let vehicle: Vehicle = serde_json::from_str(
            r#"{"make":[{"name":"ford","confidence":18.9}],
                "make_model":[{"name":"chevrolet_cruze","confidence":3.6}]}"#,
        )
        .unwrap();
        let attributes = vehicle_attributes(&vehicle);
        assert_eq!(attributes.make.unwrap().value, "ford");
        assert_eq!(attributes.model, None);

        let vehicle: Vehicle = serde_json::from_str(
            r#"{"make_model":[{"name":"mercedes-benz_c-class","confidence":40}],
                "make":null,"color":null}"#,
        )
        .unwrap();
        let attributes = vehicle_attributes(&vehicle);
        assert_eq!(attributes.make.unwrap().value, "mercedes-benz");
        assert_eq!(attributes.model.unwrap().value, "c-class");
    }

    #[test]
    fn errors_name_the_missing_field_and_leave_no_reads_behind() {
        let mut reads = Vec::new();
        let error = decoder()
            .decode(
                br#"{"data_type":"alpr_results","agent_uid":"A1","epoch_time":1795539600250,
                     "results":[{"plate":"ABC123","confidence":90},{"confidence":80}]}"#,
                &mut reads,
            )
            .unwrap_err();
        assert!(
            error.to_string().contains("results[1] has no plate"),
            "{error}"
        );
        assert!(reads.is_empty());

        let error =
            decode(r#"{"data_type":"alpr_group","agent_uid":"A1","epoch_start":1795539600250}"#)
                .unwrap_err();
        assert!(error.to_string().contains("best_plate_number"), "{error}");
        let error = decode(r#"{"data_type":"alpr_group","best_plate_number":"X1","best_confidence":90,"epoch_start":1795539600250}"#)
            .unwrap_err();
        assert!(error.to_string().contains("agent_uid"), "{error}");
        let error = decode(r#"{"data_type":"alpr_plate"}"#).unwrap_err();
        assert!(error.to_string().contains("alpr_plate"), "{error}");
        let error = decode(
            r#"{"data_type":"alpr_group","agent_uid":"A1","epoch_start":1795539600250,
               "best_plate_number":"X1","best_confidence":90,
               "best_plate":{"plate_crop_jpeg":"...base64 jpeg data..."}}"#,
        )
        .unwrap_err();
        assert!(
            error.to_string().contains("best_plate.plate_crop_jpeg"),
            "{error}"
        );
    }

    #[test]
    fn decoding_the_simulated_message_gives_the_read_back() {
        let mut read = new_read(
            "dc-r-021".into(),
            Some("dc-r-021-cam2".into()),
            Timestamp(1_795_539_600_250),
            "AYW1059",
            0.873,
        );
        read.jurisdiction = Some("US-VA".into());
        read.lat = Some(38.893);
        read.lon = Some(-77.063);
        read.vehicle = VehicleAttributes {
            make: Some(Attribute::new("mercedes-benz", Some(0.71))),
            model: Some(Attribute::new("c-class", Some(0.42))),
            color: Some(Attribute::new("gray", Some(0.66))),
            body_type: Some(Attribute::new("pickup", Some(0.8))),
        };
        read.images.plate_crop = Some("https://images.example/crops/1.jpg".into());

        let (decoded, reads) =
            decode(std::str::from_utf8(&encode_simulated(&read)).unwrap()).unwrap();
        assert_eq!(decoded, Decoded::Reads(1));
        let back = &reads[0];
        assert_eq!(back.plate, read.plate);
        assert_eq!(back.observed_at, read.observed_at);
        assert_eq!(back.reader_id, read.reader_id);
        assert_eq!(back.camera_id, read.camera_id);
        assert_eq!(
            back.jurisdiction
                .as_deref()
                .and_then(normalize_jurisdiction),
            read.jurisdiction
        );
        assert!((back.confidence - read.confidence).abs() < 1e-4);
        assert_eq!((back.lat, back.lon), (read.lat, read.lon));
        assert_eq!(back.frames, 1);
        assert_eq!(back.last_observed_at, None);
        assert_eq!(back.images.plate_crop, read.images.plate_crop);
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
