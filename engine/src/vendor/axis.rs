//! Axis License Plate Verifier events → canonical reads.
//!
//! The LPV ACAP pushes one JSON event per plate (HTTP push, protocol 1.6): the plate as
//! `plateUTF8` (also `plateUnicode`, `plateText`, `plateASCII`; the UTF-8 text wins because the
//! ASCII one is transliterated), `plateCountry` as ISO 3166-1 alpha-3, `plateRegion`/`plateState`
//! where the camera's region package reads one, `plateConfidence` (0..1 on current firmware, 0–100
//! on some older builds; both accepted), `capture_timestamp` in epoch milliseconds (often as a
//! string), `datetime` as `YYYYMMDD HHMMSSFFF` camera-local time with an optional `+HHMM` offset,
//! `geotag.lat`/`.lon`, `carMoveDirection` (`in`, `out`, `unk`), `carState` (`new`, `updated`,
//! `lost`), `camera_info` (serial number, product name, MAC), `sensorProviderID`, `imagesURI` and
//! `vehicle_info`. Field mapping and sources: `schemas/examples/axis/README.md`.
//!
//! `carState` `lost` is sent about 10 s after the vehicle left the view and repeats the last
//! update's plate, so it is counted as a non-read (`vehicle_lost`) instead of a second read.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::json;

use crate::decode::{payload_text, DecodeError, Decoded, ReadDecoder};
use crate::jurisdiction::alpha3_of_alpha2;
use crate::read::{Attribute, ImageRefs, Motion, PlateRead, Timestamp, VehicleAttributes};

use super::scalar::{optional_number, optional_text, Lenient};
use super::time::{from_epoch_number, parse_time_text, parse_time_with_format, TimeError};
use super::vocabulary::{canonical_body_type, canonical_color, canonical_make, canonical_model};
use super::{confidence_from_either_scale, DecodeContext};

const FORMAT: &str = "axis";

#[derive(Deserialize)]
struct AxisEvent<'a> {
    #[serde(borrow, default, rename = "plateUTF8")]
    plate_utf8: Option<Lenient<'a>>,
    #[serde(borrow, default, rename = "plateUnicode")]
    plate_unicode: Option<Lenient<'a>>,
    #[serde(borrow, default, rename = "plateText")]
    plate_text: Option<Lenient<'a>>,
    #[serde(borrow, default, rename = "plateASCII")]
    plate_ascii: Option<Lenient<'a>>,
    #[serde(borrow, default, rename = "plateCountry")]
    country: Option<Lenient<'a>>,
    #[serde(borrow, default, rename = "plateRegion")]
    region: Option<Lenient<'a>>,
    #[serde(borrow, default, rename = "plateState")]
    state: Option<Lenient<'a>>,
    #[serde(borrow, default, rename = "plateConfidence")]
    confidence: Option<Lenient<'a>>,
    #[serde(borrow, default)]
    capture_timestamp: Option<Lenient<'a>>,
    #[serde(borrow, default)]
    datetime: Option<Lenient<'a>>,
    #[serde(borrow, default)]
    geotag: Option<Geotag<'a>>,
    #[serde(borrow, default, rename = "carMoveDirection")]
    direction: Option<Lenient<'a>>,
    #[serde(borrow, default, rename = "carState")]
    car_state: Option<Lenient<'a>>,
    #[serde(borrow, default)]
    camera_info: Option<CameraInfo<'a>>,
    #[serde(borrow, default, rename = "sensorProviderID")]
    sensor_provider_id: Option<Lenient<'a>>,
    #[serde(borrow, default, rename = "imagesURI")]
    images_uri: Option<Vec<Lenient<'a>>>,
    #[serde(borrow, default)]
    vehicle_info: Option<VehicleInfo<'a>>,
}

#[derive(Deserialize)]
struct Geotag<'a> {
    #[serde(borrow, default)]
    lat: Option<Lenient<'a>>,
    #[serde(borrow, default)]
    lon: Option<Lenient<'a>>,
}

#[derive(Deserialize)]
struct CameraInfo<'a> {
    #[serde(borrow, default, rename = "SerialNumber")]
    serial_number: Option<Lenient<'a>>,
    #[serde(borrow, default, rename = "MACAddress")]
    mac_address: Option<Lenient<'a>>,
}

/// The make-model-color add-on's output. Its field names are not in the public protocol page;
/// these are the ones seen in payloads, with the obvious alternatives.
#[derive(Deserialize)]
struct VehicleInfo<'a> {
    #[serde(borrow, default, rename = "type", alias = "vehicleType")]
    body_type: Option<Lenient<'a>>,
    #[serde(borrow, default, alias = "colour")]
    color: Option<Lenient<'a>>,
    #[serde(borrow, default, alias = "manufacturer")]
    make: Option<Lenient<'a>>,
    #[serde(borrow, default)]
    model: Option<Lenient<'a>>,
}

pub struct AxisDecoder {
    context: DecodeContext,
}

fn malformed(detail: impl Into<String>) -> DecodeError {
    DecodeError::Malformed {
        format: FORMAT,
        detail: detail.into(),
    }
}

/// `carMoveDirection`: LPV's `in` is a vehicle driving toward the camera (entering through the
/// gate the camera watches), `out` one driving away from it.
fn motion(direction: &str) -> Option<Motion> {
    if direction.eq_ignore_ascii_case("in") {
        Some(Motion::Approaching)
    } else if direction.eq_ignore_ascii_case("out") {
        Some(Motion::Receding)
    } else {
        None
    }
}

/// Country and region as one text for normalization: `USA` + `DC` → `USA-DC`; a region that
/// already names its country, or a full name, stands alone.
fn jurisdiction(country: Option<&str>, region: Option<&str>) -> Option<String> {
    match (country, region) {
        (Some(country), Some(region)) if !region.contains('-') && region.len() <= 3 => {
            Some(format!("{country}-{region}"))
        }
        (_, Some(region)) => Some(region.to_owned()),
        (Some(country), None) => Some(country.to_owned()),
        (None, None) => None,
    }
}

/// `datetime`: ISO 8601, or LPV's own `YYYYMMDD HHMMSSFFF` with an optional `+HHMM`.
fn parse_datetime(text: &str, context: &DecodeContext) -> Result<Timestamp, TimeError> {
    let zone = context.reader_timezone;
    let with_format = |format: &str, failed: TimeError| {
        parse_time_with_format(text, format, zone).map_err(|error| failed.or(error))
    };
    parse_time_text(text, zone)
        .or_else(|failed| with_format("%Y%m%d %H%M%S%3f%z", failed))
        .or_else(|failed| with_format("%Y%m%d %H%M%S%3f %z", failed))
        .or_else(|failed| with_format("%Y%m%d %H%M%S%3f", failed))
}

/// Which picture an `imagesURI` entry is, from the words LPV puts in its file names.
enum ImageKind {
    PlateCrop,
    Overview,
    Unknown,
}

fn image_kind(uri: &str) -> ImageKind {
    let uri = uri.to_ascii_lowercase();
    // The file name and the folder holding it (`.../plates/123.jpg`, `.../frame_123.jpg`).
    let mut segments = uri.rsplit('/');
    let name = segments.next().unwrap_or_default();
    let folder = segments.next().unwrap_or_default();
    let has = |word: &str| name.contains(word) || folder.starts_with(word);
    if has("plate") || has("crop") {
        ImageKind::PlateCrop
    } else if has("frame") || has("overview") || has("vehicle") || has("context") {
        ImageKind::Overview
    } else {
        ImageKind::Unknown
    }
}

enum Outcome {
    Read(Box<PlateRead>),
    NotARead(&'static str),
}

impl AxisDecoder {
    pub fn new(context: DecodeContext) -> Self {
        Self { context }
    }

    fn observed_at(&self, event: &AxisEvent<'_>) -> Result<Timestamp, DecodeError> {
        if let Some(capture) = optional_number(
            event.capture_timestamp.as_ref(),
            FORMAT,
            "capture_timestamp",
        )? {
            return from_epoch_number(capture)
                .ok_or_else(|| malformed(format!("capture_timestamp is not a time: {capture}")));
        }
        if let Some(text) = optional_text(event.datetime.as_ref()) {
            return parse_datetime(&text, &self.context).map_err(|error| {
                malformed(error.reason("datetime", &text, || {
                    format!("datetime is not a time: {text:?}")
                }))
            });
        }
        Err(malformed("no read time (capture_timestamp or datetime)"))
    }

    fn images(&self, event: &AxisEvent<'_>) -> Result<ImageRefs, DecodeError> {
        let mut images = ImageRefs::default();
        let mut unnamed = Vec::new();
        for uri in event.images_uri.iter().flatten() {
            let Lenient::Text(text) = uri else { continue };
            let Some(reference) = self.context.store_inline_image(FORMAT, text)? else {
                continue;
            };
            match image_kind(text) {
                ImageKind::PlateCrop if images.plate_crop.is_none() => {
                    images.plate_crop = Some(reference)
                }
                ImageKind::Overview if images.overview.is_none() => {
                    images.overview = Some(reference)
                }
                _ => unnamed.push(reference),
            }
        }
        // Unnamed pictures in LPV's order: the plate crop first, then the overview.
        for reference in unnamed {
            if images.plate_crop.is_none() {
                images.plate_crop = Some(reference);
            } else if images.overview.is_none() {
                images.overview = Some(reference);
            }
        }
        Ok(images)
    }

    fn decode_event(&self, event: AxisEvent<'_>) -> Result<Outcome, DecodeError> {
        if let Some(state) = optional_text(event.car_state.as_ref()) {
            if state.eq_ignore_ascii_case("lost") {
                return Ok(Outcome::NotARead("vehicle_lost"));
            }
        }
        let plate_fields = [
            &event.plate_utf8,
            &event.plate_unicode,
            &event.plate_text,
            &event.plate_ascii,
        ];
        let plate = match plate_fields
            .into_iter()
            .find_map(|value| optional_text(value.as_ref()))
        {
            Some(plate) => plate.into_owned(),
            // Sent but blank is a read of no plate, which normalization refuses as
            // `empty_plate` in every format; only missing fields make the message malformed.
            None if plate_fields.iter().any(|value| value.is_some()) => String::new(),
            None => {
                return Err(malformed(
                    "no plate text (plateUTF8, plateUnicode, plateText or plateASCII)",
                ))
            }
        };

        let confidence = optional_number(event.confidence.as_ref(), FORMAT, "plateConfidence")?
            .ok_or_else(|| malformed("no plateConfidence"))?;
        let observed_at = self.observed_at(&event)?;

        let camera_info = event.camera_info.as_ref();
        let reader_id = [
            camera_info.and_then(|info| info.serial_number.as_ref()),
            camera_info.and_then(|info| info.mac_address.as_ref()),
            event.sensor_provider_id.as_ref(),
        ]
        .into_iter()
        .find_map(optional_text)
        .ok_or_else(|| {
            malformed(
                "no reader identity (camera_info.SerialNumber, camera_info.MACAddress or sensorProviderID)",
            )
        })?
        .into_owned();
        let camera_id = optional_text(event.sensor_provider_id.as_ref())
            .filter(|sensor| *sensor != reader_id)
            .map(Cow::into_owned);

        let region =
            optional_text(event.region.as_ref()).or_else(|| optional_text(event.state.as_ref()));
        let jurisdiction = jurisdiction(
            optional_text(event.country.as_ref()).as_deref(),
            region.as_deref(),
        );

        let (lat, lon) = match &event.geotag {
            Some(geotag) => (
                optional_number(geotag.lat.as_ref(), FORMAT, "geotag.lat")?,
                optional_number(geotag.lon.as_ref(), FORMAT, "geotag.lon")?,
            ),
            None => (None, None),
        };

        let vehicle = match &event.vehicle_info {
            Some(info) => {
                let make = optional_text(info.make.as_ref()).and_then(|raw| canonical_make(&raw));
                let model = optional_text(info.model.as_ref())
                    .and_then(|raw| canonical_model(&raw, make.as_deref()));
                VehicleAttributes {
                    color: optional_text(info.color.as_ref())
                        .and_then(|raw| canonical_color(&raw))
                        .map(|color| Attribute::new(color, None)),
                    body_type: optional_text(info.body_type.as_ref())
                        .and_then(|raw| canonical_body_type(&raw))
                        .map(|body| Attribute::new(body, None)),
                    make: make.map(|make| Attribute::new(make, None)),
                    model: model.map(|model| Attribute::new(model, None)),
                }
            }
            None => VehicleAttributes::default(),
        };

        Ok(Outcome::Read(Box::new(PlateRead {
            read_id: String::new(),
            vendor: FORMAT.to_owned(),
            reader_id,
            camera_id,
            observed_at,
            ingested_at: None,
            plate,
            plate_norm: String::new(),
            jurisdiction,
            confidence: confidence_from_either_scale(confidence),
            lat,
            lon,
            heading: None,
            motion: optional_text(event.direction.as_ref()).and_then(|text| motion(&text)),
            vehicle,
            images: self.images(&event)?,
            embedding: None,
            source: None,
            frames: 1,
            last_observed_at: None,
            duplicate_of: None,
        })))
    }
}

fn parse_error(error: serde_json::Error) -> DecodeError {
    malformed(error.to_string())
}

impl ReadDecoder for AxisDecoder {
    fn format(&self) -> &'static str {
        FORMAT
    }

    fn decode(&self, payload: &[u8], reads: &mut Vec<PlateRead>) -> Result<Decoded, DecodeError> {
        let text = payload_text(payload)?;
        // Middleware that collects LPV pushes forwards them as a JSON array.
        if text.trim_start().starts_with('[') {
            let events: Vec<AxisEvent> = serde_json::from_str(text).map_err(parse_error)?;
            let mut decoded = Vec::with_capacity(events.len());
            let mut last_kind = "empty_batch";
            for (index, event) in events.into_iter().enumerate() {
                match self.decode_event(event) {
                    Ok(Outcome::Read(read)) => decoded.push(*read),
                    Ok(Outcome::NotARead(kind)) => last_kind = kind,
                    Err(DecodeError::Malformed { format, detail }) => {
                        return Err(DecodeError::Malformed {
                            format,
                            detail: format!("event {index}: {detail}"),
                        })
                    }
                    Err(other) => return Err(other),
                }
            }
            if decoded.is_empty() {
                return Ok(Decoded::NotARead { kind: last_kind });
            }
            let count = decoded.len();
            reads.append(&mut decoded);
            return Ok(Decoded::Reads(count));
        }
        let event: AxisEvent = serde_json::from_str(text).map_err(parse_error)?;
        match self.decode_event(event)? {
            Outcome::Read(read) => {
                reads.push(*read);
                Ok(Decoded::Reads(1))
            }
            Outcome::NotARead(kind) => Ok(Decoded::NotARead { kind }),
        }
    }
}

/// `US-DC` → (`USA`, `DC`); a bare country → (alpha-3, none).
fn country_and_region(jurisdiction: Option<&str>) -> (Option<&'static str>, Option<&str>) {
    let Some(jurisdiction) = jurisdiction else {
        return (None, None);
    };
    match jurisdiction.split_once('-') {
        Some((country, region)) => (alpha3_of_alpha2(country), Some(region)),
        None => (alpha3_of_alpha2(jurisdiction), None),
    }
}

/// An LPV push event for `read`, as the simulator's Axis cameras send it.
pub fn encode_simulated(read: &PlateRead) -> Vec<u8> {
    let (country, region) = country_and_region(read.jurisdiction.as_deref());
    let direction = match read.motion {
        Some(Motion::Approaching) => "in",
        Some(Motion::Receding) => "out",
        None => "unk",
    };
    let datetime = read
        .observed_at
        .to_datetime()
        .map(|at| at.format("%Y%m%d %H%M%S%3f+0000").to_string())
        .unwrap_or_default();
    let vehicle = &read.vehicle;
    let value = |attribute: &Option<Attribute>| attribute.as_ref().map(|a| a.value.clone());
    let mut event = json!({
        "packetCounter": "1",
        "datetime": datetime,
        "plateText": read.plate,
        "plateUTF8": read.plate,
        "plateASCII": read.plate,
        "plateCountry": country.unwrap_or(""),
        "plateConfidence": format!("{:.4}", read.confidence),
        "carState": "new",
        "carMoveDirection": direction,
        "capture_timestamp": read.observed_at.millis().to_string(),
        "camera_info": {
            "SerialNumber": read.reader_id,
            "ProdShortName": "AXIS P1455-LE-3",
        },
        "vehicle_info": {
            "type": value(&vehicle.body_type),
            "color": value(&vehicle.color),
            "manufacturer": value(&vehicle.make),
            "model": value(&vehicle.model),
        },
    });
    if let Some(object) = event.as_object_mut() {
        if let Some(region) = region {
            object.insert("plateRegion".to_owned(), json!(region));
        }
        if let (Some(lat), Some(lon)) = (read.lat, read.lon) {
            object.insert("geotag".to_owned(), json!({ "lat": lat, "lon": lon }));
        }
        if let Some(camera) = &read.camera_id {
            object.insert("sensorProviderID".to_owned(), json!(camera));
        }
        let uris: Vec<&String> = [&read.images.plate_crop, &read.images.overview]
            .into_iter()
            .flatten()
            .collect();
        if !uris.is_empty() {
            object.insert("imagesURI".to_owned(), json!(uris));
        }
    }
    event.to_string().into_bytes()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::images::MemoryImageStore;
    use crate::normalize::normalize_read;
    use crate::vendor::time::parse_zone;

    fn decoder() -> AxisDecoder {
        AxisDecoder::new(
            DecodeContext::new(Arc::new(MemoryImageStore::default()))
                .with_timezone(parse_zone("America/New_York").unwrap()),
        )
    }

    fn decode(json: &str) -> Result<(Decoded, Vec<PlateRead>), DecodeError> {
        let mut reads = Vec::new();
        let decoded = decoder().decode(json.as_bytes(), &mut reads)?;
        Ok((decoded, reads))
    }

    fn decode_one(json: &str) -> PlateRead {
        let (decoded, mut reads) = decode(json).unwrap();
        assert_eq!(decoded, Decoded::Reads(1));
        reads.pop().unwrap()
    }

    fn at(text: &str) -> Timestamp {
        Timestamp::parse_rfc3339(text).unwrap()
    }

    const BASE: &str = r#""plateConfidence":"0.91","capture_timestamp":"1795539792345","camera_info":{"SerialNumber":"B8A44F3C2D1E"}"#;

    #[test]
    fn utf8_text_wins_over_ascii_and_countries_combine_with_regions() {
        let read = decode_one(&format!(
            r#"{{"plateASCII":"WE4R2C","plateUTF8":"WE 4R2Ć","plateCountry":"POL",{BASE}}}"#
        ));
        assert_eq!(read.plate, "WE 4R2Ć");
        assert_eq!(read.jurisdiction.as_deref(), Some("POL"));
        let read = decode_one(&format!(
            r#"{{"plateUTF8":"ABC123","plateCountry":"USA","plateRegion":"DC",{BASE}}}"#
        ));
        assert_eq!(read.jurisdiction.as_deref(), Some("USA-DC"));
        let read = decode_one(&format!(
            r#"{{"plateUTF8":"ABC123","plateCountry":"USA","plateState":"Maryland",{BASE}}}"#
        ));
        assert_eq!(read.jurisdiction.as_deref(), Some("Maryland"));
    }

    #[test]
    fn confidence_on_either_scale_and_times_in_every_form() {
        let read = decode_one(&format!(r#"{{"plateUTF8":"A1",{BASE}}}"#));
        assert_eq!(read.observed_at, at("2026-11-24T17:03:12.345Z"));
        assert!((read.confidence - 0.91).abs() < 1e-6);
        let percent = decode_one(
            r#"{"plateUTF8":"A1","plateConfidence":87,"capture_timestamp":1795539792345,"sensorProviderID":"Gate 2"}"#,
        );
        assert!((percent.confidence - 0.87).abs() < 1e-6);
        assert_eq!(percent.reader_id, "Gate 2");
        assert_eq!(percent.camera_id, None);
        for datetime in [
            "20261124 120312345",
            "20261124 170312345+0000",
            "2026-11-24T12:03:12.345-05:00",
        ] {
            let read = decode_one(&format!(
                r#"{{"plateUTF8":"A1","plateConfidence":"0.9","datetime":"{datetime}","sensorProviderID":"s"}}"#
            ));
            assert_eq!(
                read.observed_at,
                at("2026-11-24T17:03:12.345Z"),
                "{datetime}"
            );
        }
    }

    #[test]
    fn direction_position_identity_images_and_vehicle() {
        let read = decode_one(&format!(
            r#"{{"plateUTF8":"A1",{BASE},"carMoveDirection":"out","geotag":{{"lat":"38.9072","lon":-77.0369}},
                "sensorProviderID":"Lane 1","imagesURI":["http://10.0.0.8/lpv/frame_1.jpg","http://10.0.0.8/lpv/plate_1.jpg"],
                "vehicle_info":{{"type":"SUV","color":"dark blue","manufacturer":"Honda","model":"CR-V"}}}}"#
        ));
        assert_eq!(read.motion, Some(Motion::Receding));
        assert_eq!((read.lat, read.lon), (Some(38.9072), Some(-77.0369)));
        assert_eq!(read.reader_id, "B8A44F3C2D1E");
        assert_eq!(read.camera_id.as_deref(), Some("Lane 1"));
        assert_eq!(
            read.images.plate_crop.as_deref(),
            Some("http://10.0.0.8/lpv/plate_1.jpg")
        );
        assert_eq!(
            read.images.overview.as_deref(),
            Some("http://10.0.0.8/lpv/frame_1.jpg")
        );
        assert_eq!(read.vehicle.body_type.unwrap().value, "suv");
        assert_eq!(read.vehicle.color.unwrap().value, "blue");
        assert_eq!(read.vehicle.make.unwrap().value, "honda");
        assert_eq!(read.vehicle.model.unwrap().value, "cr-v");
        let unknown = decode_one(&format!(
            r#"{{"plateUTF8":"A1",{BASE},"carMoveDirection":"unk","imagesURI":["http://x/1.jpg","http://x/2.jpg"]}}"#
        ));
        assert_eq!(unknown.motion, None);
        assert_eq!(unknown.images.plate_crop.as_deref(), Some("http://x/1.jpg"));
        assert_eq!(unknown.images.overview.as_deref(), Some("http://x/2.jpg"));
    }

    #[test]
    fn lost_events_are_not_reads_and_missing_essentials_are_named() {
        let (decoded, reads) =
            decode(&format!(r#"{{"plateUTF8":"A1","carState":"lost",{BASE}}}"#)).unwrap();
        assert_eq!(
            decoded,
            Decoded::NotARead {
                kind: "vehicle_lost"
            }
        );
        assert!(reads.is_empty());
        for (json, needle) in [
            // Blank is a read of no plate (`empty_plate` at normalization); absent is malformed.
            (format!(r#"{{{BASE}}}"#), "plate text"),
            (
                r#"{"plateUTF8":"A1","capture_timestamp":"1795539792345","sensorProviderID":"s"}"#.to_owned(),
                "plateConfidence",
            ),
            (
                r#"{"plateUTF8":"A1","plateConfidence":"0.9","sensorProviderID":"s"}"#.to_owned(),
                "read time",
            ),
            (
                r#"{"plateUTF8":"A1","plateConfidence":"0.9","datetime":"yesterday","sensorProviderID":"s"}"#.to_owned(),
                "datetime",
            ),
            (
                r#"{"plateUTF8":"A1","plateConfidence":"0.9","capture_timestamp":"1795539792345"}"#.to_owned(),
                "reader identity",
            ),
            (format!(r#"{{"plateUTF8":"A1",{BASE},"geotag":{{"lat":"x","lon":1}}}}"#), "geotag.lat"),
            (format!(r#"{{"plateUTF8":"A1",{BASE},"geotag":"38.9,-77.0"}}"#), "invalid type"),
        ] {
            let error = decode(&json).unwrap_err();
            assert_eq!(error.code(), "malformed");
            assert!(error.to_string().contains(needle), "{needle}: {error}");
        }
    }

    #[test]
    fn simulated_messages_decode_back_to_the_read() {
        let read = PlateRead {
            read_id: String::new(),
            vendor: "simulator".into(),
            reader_id: "dc-r-021".into(),
            camera_id: Some("dc-r-021-cam1".into()),
            observed_at: at("2026-11-24T17:03:12.345Z"),
            ingested_at: None,
            plate: "7XK-4412".into(),
            plate_norm: String::new(),
            jurisdiction: Some("US-VA".into()),
            confidence: 0.876,
            lat: Some(38.893_001_7),
            lon: Some(-77.063_000_3),
            heading: None,
            motion: Some(Motion::Receding),
            vehicle: VehicleAttributes {
                make: Some(Attribute::new("honda", None)),
                model: Some(Attribute::new("civic", None)),
                color: Some(Attribute::new("blue", None)),
                body_type: Some(Attribute::new("sedan", None)),
            },
            images: ImageRefs {
                plate_crop: Some("https://img.example/crops/1.jpg".into()),
                overview: Some("https://img.example/overview/1.jpg".into()),
            },
            embedding: None,
            source: None,
            frames: 1,
            last_observed_at: None,
            duplicate_of: None,
        };
        let payload = encode_simulated(&read);
        let (_, mut reads) = decode(std::str::from_utf8(&payload).unwrap()).unwrap();
        let mut decoded = reads.pop().unwrap();
        normalize_read(&mut decoded, at("2026-11-24T18:00:00Z")).unwrap();
        assert_eq!(decoded.plate, read.plate);
        assert_eq!(decoded.observed_at, read.observed_at);
        assert_eq!(decoded.jurisdiction, read.jurisdiction);
        assert!((decoded.confidence - read.confidence).abs() < 1e-3);
        assert_eq!((decoded.lat, decoded.lon), (read.lat, read.lon));
        assert_eq!(decoded.motion, read.motion);
        assert_eq!(decoded.reader_id, read.reader_id);
        assert_eq!(decoded.camera_id, read.camera_id);
        assert_eq!(decoded.images, read.images);
        assert_eq!(decoded.vehicle, read.vehicle);
    }
}
