//! Genetec AutoVu / Security Center LPR events forwarded over HTTP → canonical reads.
//!
//! Genetec has several export paths whose JSON differs in names but not in meaning, and one
//! deployment's forwarder may carry any of them, so the decoder accepts all (see
//! `schemas/examples/genetec/README.md` for sources and the full mapping):
//! - Security Center / AutoVu third-party export: `Plate`, `State`, `DateUtc` + `TimeUtc` (the
//!   date as `MM/DD/YYYY` or `YYYY-MM-DD`), `Date`/`DateLocal` + `Time`/`TimeLocal` (local),
//!   `ConfidenceScore` (0–100, as a string; 1 or less is already 0..1), an `Attributes` map, `UnitName`, `CameraId`,
//!   `CameraName`, `Latitude`/`Longitude`, base64 `ContextImage`/`PlateImage`;
//! - Sharp FTP/HTTP templates: `UTCDate` (`yyyy:MM:dd`) + `UTCTime`, `SourceName`,
//!   `LatitudeY`/`LongitudeX`;
//! - SharpOS HTTP extension: `PlateRead`, `Timestamp`, `LprCameraName`, `SourceUrl` and
//!   `PlateAnalytics`, a list of `{Key, Value, Score}` instead of the map.
//!
//! `DateUtc`/`TimeUtc` are UTC although they carry no offset; only local `Date`/`Time` and a
//! naive `Timestamp` are read in the reader time zone.

use std::borrow::Cow;
use std::fmt;

use chrono_tz::Tz;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::json;

use crate::decode::{payload_text, DecodeError, Decoded, ReadDecoder};
use crate::read::{Attribute, ImageRefs, Motion, PlateRead, Timestamp, VehicleAttributes};

use super::scalar::{optional_number, optional_text, Lenient};
use super::time::{parse_date_and_time, parse_time_text};
use super::vocabulary::{canonical_body_type, canonical_color, canonical_make, canonical_model};
use super::{confidence_from_either_scale, DecodeContext};

const FORMAT: &str = "genetec";

/// One read event. Every field is optional here; what a read needs is checked while mapping, so
/// the error names the missing field instead of serde's first complaint.
#[derive(Deserialize)]
struct GenetecEvent<'a> {
    #[serde(borrow, default, rename = "EventType")]
    event_type: Option<Lenient<'a>>,
    #[serde(borrow, default, rename = "Plate", alias = "PlateRead")]
    plate: Option<Lenient<'a>>,
    #[serde(borrow, default, rename = "State", alias = "PlateState")]
    state: Option<Lenient<'a>>,
    #[serde(borrow, default, rename = "DateUtc", alias = "UTCDate")]
    date_utc: Option<Lenient<'a>>,
    #[serde(borrow, default, rename = "TimeUtc", alias = "UTCTime")]
    time_utc: Option<Lenient<'a>>,
    #[serde(borrow, default, rename = "Date")]
    date: Option<Lenient<'a>>,
    #[serde(borrow, default, rename = "Time")]
    time: Option<Lenient<'a>>,
    #[serde(borrow, default, rename = "DateLocal", alias = "LocalDate")]
    date_local: Option<Lenient<'a>>,
    #[serde(borrow, default, rename = "TimeLocal", alias = "LocalTime")]
    time_local: Option<Lenient<'a>>,
    #[serde(borrow, default, rename = "Timestamp", alias = "TimeStamp")]
    timestamp: Option<Lenient<'a>>,
    #[serde(borrow, default, rename = "TimestampUtc", alias = "TimeStampUTC")]
    timestamp_utc: Option<Lenient<'a>>,
    #[serde(borrow, default, rename = "ConfidenceScore")]
    confidence_score: Option<Lenient<'a>>,
    #[serde(borrow, default, rename = "Attributes", alias = "PlateAnalytics")]
    attributes: Option<GenetecAttributes<'a>>,
    #[serde(borrow, default, rename = "Latitude", alias = "LatitudeY")]
    latitude: Option<Lenient<'a>>,
    #[serde(borrow, default, rename = "Longitude", alias = "LongitudeX")]
    longitude: Option<Lenient<'a>>,
    #[serde(borrow, default, rename = "UnitName")]
    unit_name: Option<Lenient<'a>>,
    #[serde(borrow, default, rename = "SourceName")]
    source_name: Option<Lenient<'a>>,
    #[serde(borrow, default, rename = "SourceUrl")]
    source_url: Option<Lenient<'a>>,
    #[serde(borrow, default, rename = "CameraId", alias = "CameraGuid")]
    camera_guid: Option<Lenient<'a>>,
    #[serde(borrow, default, rename = "CameraName", alias = "LprCameraName")]
    camera_name: Option<Lenient<'a>>,
    #[serde(borrow, default, rename = "PlateImage")]
    plate_image: Option<Lenient<'a>>,
    #[serde(borrow, default, rename = "ContextImage")]
    context_image: Option<Lenient<'a>>,
}

/// One classifier output: its value, the `... Confidence Score` sibling (0–100) of the map form,
/// and the `Score` (0..1, -1 for none) of the list form.
#[derive(Default)]
struct Reported<'a> {
    value: Option<Lenient<'a>>,
    percent: Option<Lenient<'a>>,
    score: Option<Lenient<'a>>,
}

/// The attributes a read needs, picked out of the `Attributes` map or the `PlateAnalytics` list
/// while parsing; all other keys (`Speed`, `Characters Height`, ...) are skipped unparsed.
#[derive(Default)]
struct GenetecAttributes<'a> {
    state_name: Reported<'a>,
    vehicle_type: Reported<'a>,
    color: Reported<'a>,
    make: Reported<'a>,
    model: Reported<'a>,
    relative_motion: Reported<'a>,
    confidence_score: Reported<'a>,
}

#[derive(Clone, Copy)]
enum AttributeSlot {
    StateName,
    VehicleType,
    Color,
    Make,
    Model,
    RelativeMotion,
    ConfidenceScore,
}

const CONFIDENCE_SUFFIX: &str = " Confidence Score";

/// Which attribute a key names, and whether it is that attribute's confidence sibling.
fn attribute_slot(key: &str) -> Option<(AttributeSlot, bool)> {
    let key = key.trim();
    let (name, is_confidence) = match key.len().checked_sub(CONFIDENCE_SUFFIX.len()) {
        Some(split)
            if split > 0
                && key.is_char_boundary(split)
                && key[split..].eq_ignore_ascii_case(CONFIDENCE_SUFFIX) =>
        {
            (&key[..split], true)
        }
        _ => (key, false),
    };
    let named = |candidates: &[&str]| {
        candidates
            .iter()
            .any(|candidate| candidate.eq_ignore_ascii_case(name))
    };
    let slot = if named(&["State Name", "State"]) {
        AttributeSlot::StateName
    } else if named(&["Vehicle Type"]) {
        AttributeSlot::VehicleType
    } else if named(&["Vehicle Color", "Vehicle Colour"]) {
        AttributeSlot::Color
    } else if named(&["Vehicle Make"]) {
        AttributeSlot::Make
    } else if named(&["Vehicle Model"]) {
        AttributeSlot::Model
    } else if named(&["Relative Motion"]) {
        AttributeSlot::RelativeMotion
    } else if !is_confidence && named(&["Confidence Score"]) {
        AttributeSlot::ConfidenceScore
    } else {
        return None;
    };
    Some((slot, is_confidence))
}

impl<'a> GenetecAttributes<'a> {
    fn reported(&mut self, slot: AttributeSlot) -> &mut Reported<'a> {
        match slot {
            AttributeSlot::StateName => &mut self.state_name,
            AttributeSlot::VehicleType => &mut self.vehicle_type,
            AttributeSlot::Color => &mut self.color,
            AttributeSlot::Make => &mut self.make,
            AttributeSlot::Model => &mut self.model,
            AttributeSlot::RelativeMotion => &mut self.relative_motion,
            AttributeSlot::ConfidenceScore => &mut self.confidence_score,
        }
    }
}

/// An entry of the `PlateAnalytics` list (or of an `Attributes` list from an XML-to-JSON bridge).
#[derive(Deserialize)]
struct AnalyticsEntry<'a> {
    #[serde(borrow, rename = "Key", alias = "key", alias = "Name", alias = "name")]
    key: Lenient<'a>,
    #[serde(borrow, default, rename = "Value", alias = "value")]
    value: Option<Lenient<'a>>,
    #[serde(borrow, default, rename = "Score", alias = "score")]
    score: Option<Lenient<'a>>,
}

impl<'de: 'a, 'a> Deserialize<'de> for GenetecAttributes<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct AttributesVisitor;

        impl<'de> Visitor<'de> for AttributesVisitor {
            type Value = GenetecAttributes<'de>;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map of attribute names to values, or a list of {Key, Value, Score}")
            }

            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
                let mut attributes = GenetecAttributes::default();
                while let Some(key) = map.next_key::<Lenient<'de>>()? {
                    let slot = match &key {
                        Lenient::Text(text) => attribute_slot(text),
                        Lenient::Number(_) => None,
                    };
                    match slot {
                        Some((slot, is_confidence)) => {
                            let value = map.next_value::<Option<Lenient<'de>>>()?;
                            let reported = attributes.reported(slot);
                            if is_confidence {
                                reported.percent = value;
                            } else {
                                reported.value = value;
                            }
                        }
                        None => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(attributes)
            }

            fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<Self::Value, S::Error> {
                let mut attributes = GenetecAttributes::default();
                while let Some(entry) = seq.next_element::<AnalyticsEntry<'de>>()? {
                    let Lenient::Text(key) = &entry.key else {
                        continue;
                    };
                    if let Some((slot, is_confidence)) = attribute_slot(key) {
                        let reported = attributes.reported(slot);
                        if is_confidence {
                            reported.percent = entry.value;
                        } else {
                            reported.value = entry.value;
                            reported.score = entry.score;
                        }
                    }
                }
                Ok(attributes)
            }

            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(GenetecAttributes::default())
            }
        }

        deserializer.deserialize_any(AttributesVisitor)
    }
}

pub struct GenetecDecoder {
    context: DecodeContext,
}

fn malformed(detail: impl Into<String>) -> DecodeError {
    DecodeError::Malformed {
        format: FORMAT,
        detail: detail.into(),
    }
}

/// The Sharp templates write `UTCDate` as `yyyy:MM:dd`.
fn dashed_date(date: &str) -> Cow<'_, str> {
    let bytes = date.as_bytes();
    if bytes.len() == 10 && bytes[4] == b':' && bytes[7] == b':' {
        Cow::Owned(date.replace(':', "-"))
    } else {
        Cow::Borrowed(date)
    }
}

fn date_and_time(
    date: Option<&Lenient<'_>>,
    time: Option<&Lenient<'_>>,
    zone: Tz,
    fields: &str,
) -> Option<Result<Timestamp, DecodeError>> {
    let date = optional_text(date)?;
    let time = optional_text(time);
    let parsed = match &time {
        Some(time) => parse_date_and_time(&dashed_date(&date), time, zone),
        // A forwarder that put date and time in one field.
        None => parse_time_text(&date, zone),
    };
    Some(parsed.map_err(|error| {
        let time = time.as_deref().unwrap_or("");
        let shown = format!("{date} {time}");
        malformed(error.reason(fields, shown.trim(), || {
            format!("{fields} is not a date and time: {date:?} {time:?}")
        }))
    }))
}

/// A vehicle attribute's names in error messages: the value, its `... Confidence Score`
/// sibling and its list-form `Score`.
struct AttributeNames {
    percent: &'static str,
    score: &'static str,
}

const MAKE: AttributeNames = AttributeNames {
    percent: "Vehicle Make Confidence Score",
    score: "Vehicle Make Score",
};
const MODEL: AttributeNames = AttributeNames {
    percent: "Vehicle Model Confidence Score",
    score: "Vehicle Model Score",
};
const COLOR: AttributeNames = AttributeNames {
    percent: "Vehicle Color Confidence Score",
    score: "Vehicle Color Score",
};
const VEHICLE_TYPE: AttributeNames = AttributeNames {
    percent: "Vehicle Type Confidence Score",
    score: "Vehicle Type Score",
};

/// The attribute's confidence on 0..1: the 0–100 sibling first (1 or less already 0..1, as for
/// the plate), else the list form's score (negative means "not scored").
fn reported_confidence(
    reported: &Reported<'_>,
    names: &AttributeNames,
) -> Result<Option<f32>, DecodeError> {
    if let Some(percent) = optional_number(reported.percent.as_ref(), FORMAT, names.percent)? {
        return Ok((percent >= 0.0).then(|| confidence_from_either_scale(percent)));
    }
    let score = optional_number(reported.score.as_ref(), FORMAT, names.score)?;
    Ok(score
        .filter(|score| *score >= 0.0)
        .map(confidence_from_either_scale))
}

fn vehicle_attribute(
    reported: &Reported<'_>,
    names: &AttributeNames,
    canonical: impl FnOnce(&str) -> Option<String>,
) -> Result<Option<Attribute>, DecodeError> {
    let Some(value) = optional_text(reported.value.as_ref()).and_then(|raw| canonical(&raw)) else {
        return Ok(None);
    };
    Ok(Some(Attribute::new(
        value,
        reported_confidence(reported, names)?,
    )))
}

/// `Relative Motion`: `Approaching` or `Moving Away` (older firmware: `Going Away`).
fn motion(text: &str) -> Option<Motion> {
    let text = text.to_ascii_lowercase();
    if text.contains("approach") {
        Some(Motion::Approaching)
    } else if text.contains("away") || text.contains("reced") || text.contains("leaving") {
        Some(Motion::Receding)
    } else {
        None
    }
}

enum Outcome {
    Read(Box<PlateRead>),
    NotARead(&'static str),
}

impl GenetecDecoder {
    pub fn new(context: DecodeContext) -> Self {
        Self { context }
    }

    fn observed_at(&self, event: &GenetecEvent<'_>) -> Result<Timestamp, DecodeError> {
        let zone = self.context.reader_timezone;
        if let Some(parsed) = date_and_time(
            event.date_utc.as_ref(),
            event.time_utc.as_ref(),
            Tz::UTC,
            "DateUtc/TimeUtc",
        ) {
            return parsed;
        }
        for (value, zone, field) in [
            (event.timestamp_utc.as_ref(), Tz::UTC, "TimestampUtc"),
            (event.timestamp.as_ref(), zone, "Timestamp"),
        ] {
            if let Some(text) = optional_text(value) {
                return parse_time_text(&text, zone).map_err(|error| {
                    malformed(
                        error.reason(field, &text, || format!("{field} is not a time: {text:?}")),
                    )
                });
            }
        }
        for (date, time, fields) in [
            (
                event.date_local.as_ref(),
                event.time_local.as_ref(),
                "DateLocal/TimeLocal",
            ),
            (event.date.as_ref(), event.time.as_ref(), "Date/Time"),
        ] {
            if let Some(parsed) = date_and_time(date, time, zone, fields) {
                return parsed;
            }
        }
        Err(malformed(
            "no read time (DateUtc + TimeUtc, Timestamp, or Date + Time)",
        ))
    }

    fn decode_event(&self, event: GenetecEvent<'_>) -> Result<Outcome, DecodeError> {
        let plate = optional_text(event.plate.as_ref());
        if let Some(event_type) = optional_text(event.event_type.as_ref()) {
            let event_type = event_type.to_ascii_lowercase();
            if !event_type.contains("read") {
                return Ok(Outcome::NotARead(
                    if event_type.contains("heartbeat") || event_type.contains("alive") {
                        "heartbeat"
                    } else {
                        "event"
                    },
                ));
            }
        }
        // Sent but blank is a read of no plate, which normalization refuses as `empty_plate` in
        // every format; only a missing field makes the message malformed.
        let plate = match (plate, &event.plate) {
            (Some(plate), _) => plate,
            (None, Some(_)) => std::borrow::Cow::Borrowed(""),
            (None, None) => return Err(malformed("no plate text (Plate or PlateRead)")),
        };
        let observed_at = self.observed_at(&event)?;
        let attributes = event.attributes.unwrap_or_default();

        let percent =
            match optional_number(event.confidence_score.as_ref(), FORMAT, "ConfidenceScore")? {
                Some(percent) => Some(percent),
                None => optional_number(
                    attributes.confidence_score.value.as_ref(),
                    FORMAT,
                    "Confidence Score attribute",
                )?,
            };
        let Some(percent) = percent else {
            return Err(malformed(
                "no plate confidence (ConfidenceScore or the Confidence Score attribute)",
            ));
        };

        let reader_id = [
            &event.unit_name,
            &event.source_name,
            &event.source_url,
            &event.camera_guid,
            &event.camera_name,
        ]
        .into_iter()
        .find_map(|value| optional_text(value.as_ref()))
        .ok_or_else(|| {
            malformed(
                "no reader identity (UnitName, SourceName, SourceUrl, CameraId or CameraName)",
            )
        })?
        .into_owned();
        let camera_id = [&event.camera_guid, &event.camera_name]
            .into_iter()
            .filter_map(|value| optional_text(value.as_ref()))
            .find(|camera| *camera != reader_id)
            .map(Cow::into_owned);

        let jurisdiction = optional_text(event.state.as_ref())
            .or_else(|| optional_text(attributes.state_name.value.as_ref()))
            .map(Cow::into_owned);

        let make = vehicle_attribute(&attributes.make, &MAKE, canonical_make)?;
        let model = vehicle_attribute(&attributes.model, &MODEL, |raw| {
            canonical_model(raw, make.as_ref().map(|make| make.value.as_str()))
        })?;
        let vehicle = VehicleAttributes {
            color: vehicle_attribute(&attributes.color, &COLOR, |raw| {
                canonical_color(raw).map(str::to_owned)
            })?,
            body_type: vehicle_attribute(&attributes.vehicle_type, &VEHICLE_TYPE, |raw| {
                canonical_body_type(raw).map(str::to_owned)
            })?,
            make,
            model,
        };

        let images = ImageRefs {
            plate_crop: self.image(event.plate_image.as_ref())?,
            overview: self.image(event.context_image.as_ref())?,
        };

        Ok(Outcome::Read(Box::new(PlateRead {
            read_id: String::new(),
            vendor: FORMAT.to_owned(),
            reader_id,
            camera_id,
            observed_at,
            ingested_at: None,
            plate: plate.into_owned(),
            plate_norm: String::new(),
            jurisdiction,
            confidence: confidence_from_either_scale(percent),
            lat: optional_number(event.latitude.as_ref(), FORMAT, "Latitude")?,
            lon: optional_number(event.longitude.as_ref(), FORMAT, "Longitude")?,
            heading: None,
            motion: optional_text(attributes.relative_motion.value.as_ref())
                .and_then(|text| motion(&text)),
            vehicle,
            images,
            embedding: None,
            source: None,
            frames: 1,
            last_observed_at: None,
            duplicate_of: None,
        })))
    }

    fn image(&self, value: Option<&Lenient<'_>>) -> Result<Option<String>, DecodeError> {
        match value {
            Some(Lenient::Text(text)) => self.context.store_inline_image(FORMAT, text),
            _ => Ok(None),
        }
    }
}

fn parse_error(error: serde_json::Error) -> DecodeError {
    malformed(error.to_string())
}

impl ReadDecoder for GenetecDecoder {
    fn format(&self) -> &'static str {
        FORMAT
    }

    fn decode(&self, payload: &[u8], reads: &mut Vec<PlateRead>) -> Result<Decoded, DecodeError> {
        let text = payload_text(payload)?;
        // Forwarders that batch send a JSON array of events.
        if text.trim_start().starts_with('[') {
            let events: Vec<GenetecEvent> = serde_json::from_str(text).map_err(parse_error)?;
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
        let event: GenetecEvent = serde_json::from_str(text).map_err(parse_error)?;
        match self.decode_event(event)? {
            Outcome::Read(read) => {
                reads.push(*read);
                Ok(Decoded::Reads(1))
            }
            Outcome::NotARead(kind) => Ok(Decoded::NotARead { kind }),
        }
    }
}

/// `US-DC` → `DC` (what Genetec's `State` holds for North American plates); other forms as they are.
fn state_of(jurisdiction: Option<&str>) -> &str {
    match jurisdiction {
        Some(code) => code
            .strip_prefix("US-")
            .or_else(|| code.strip_prefix("CA-"))
            .unwrap_or(code),
        None => "-",
    }
}

fn percent_text(confidence: f32) -> String {
    format!("{:.1}", f64::from(confidence) * 100.0)
}

/// A Security Center export event for `read`, as the simulator's Genetec readers send it. Image
/// references are sent as they are: the decoder passes references through like base64.
pub fn encode_simulated(read: &PlateRead) -> Vec<u8> {
    let mut attributes = serde_json::Map::new();
    let vehicle = &read.vehicle;
    for (name, attribute) in [
        ("Vehicle Type", &vehicle.body_type),
        ("Vehicle Color", &vehicle.color),
        ("Vehicle Make", &vehicle.make),
        ("Vehicle Model", &vehicle.model),
    ] {
        let Some(attribute) = attribute else {
            attributes.insert(name.to_owned(), json!("-"));
            continue;
        };
        attributes.insert(name.to_owned(), json!(attribute.value));
        if let Some(confidence) = attribute.confidence {
            attributes.insert(
                format!("{name}{CONFIDENCE_SUFFIX}"),
                json!(percent_text(confidence)),
            );
        }
    }
    let relative_motion = match read.motion {
        Some(Motion::Approaching) => "Approaching",
        Some(Motion::Receding) => "Moving Away",
        None => "-",
    };
    attributes.insert("Relative Motion".to_owned(), json!(relative_motion));
    let state = state_of(read.jurisdiction.as_deref());
    attributes.insert("State Name".to_owned(), json!(state));

    let observed = read.observed_at.to_datetime();
    let date_utc = observed
        .map(|at| at.format("%m/%d/%Y").to_string())
        .unwrap_or_default();
    let time_utc = observed
        .map(|at| at.format("%H:%M:%S%.3f").to_string())
        .unwrap_or_default();
    let mut event = json!({
        "EventType": "LprRead",
        "Plate": read.plate,
        "State": state,
        "DateUtc": date_utc,
        "TimeUtc": time_utc,
        "ConfidenceScore": percent_text(read.confidence),
        "UnitName": read.reader_id,
        "Attributes": attributes,
    });
    if let Some(object) = event.as_object_mut() {
        let optional_texts = [
            ("CameraName", read.camera_id.clone()),
            ("Latitude", read.lat.map(|lat| lat.to_string())),
            ("Longitude", read.lon.map(|lon| lon.to_string())),
            ("PlateImage", read.images.plate_crop.clone()),
            ("ContextImage", read.images.overview.clone()),
        ];
        for (name, value) in optional_texts {
            if let Some(value) = value {
                object.insert(name.to_owned(), json!(value));
            }
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

    fn decoder_with(images: Arc<MemoryImageStore>) -> GenetecDecoder {
        GenetecDecoder::new(
            DecodeContext::new(images).with_timezone(parse_zone("America/New_York").unwrap()),
        )
    }

    fn decoder() -> GenetecDecoder {
        decoder_with(Arc::new(MemoryImageStore::default()))
    }

    fn decode_one(json: &str) -> PlateRead {
        let mut reads = Vec::new();
        let decoded = decoder().decode(json.as_bytes(), &mut reads).unwrap();
        assert_eq!(decoded, Decoded::Reads(1));
        reads.pop().unwrap()
    }

    fn at(text: &str) -> Timestamp {
        Timestamp::parse_rfc3339(text).unwrap()
    }

    #[test]
    fn utc_date_and_time_ignore_the_reader_zone_but_local_ones_use_it() {
        let utc = decode_one(
            r#"{"Plate":"ABC123","DateUtc":"11/24/2026","TimeUtc":"17:03:12","ConfidenceScore":"90","UnitName":"u"}"#,
        );
        assert_eq!(utc.observed_at, at("2026-11-24T17:03:12Z"));
        let local = decode_one(
            r#"{"Plate":"ABC123","Date":"2026-11-24","Time":"12:03:12","ConfidenceScore":"90","UnitName":"u"}"#,
        );
        assert_eq!(local.observed_at, at("2026-11-24T17:03:12Z"));
        let sharp = decode_one(
            r#"{"Plate":"ABC123","UTCDate":"2026:11:24","UTCTime":"17:03:12.250","ConfidenceScore":"90","SourceName":"SHARPV1"}"#,
        );
        assert_eq!(sharp.observed_at, at("2026-11-24T17:03:12.250Z"));
        assert_eq!(sharp.reader_id, "SHARPV1");
    }

    #[test]
    fn utc_fields_win_over_local_ones_when_both_are_sent() {
        let read = decode_one(
            r#"{"Plate":"ABC123","Date":"11/24/2026","DateLocal":"11/24/2026","DateUtc":"11/24/2026",
                "Time":"12:03:12","TimeLocal":"12:03:12","TimeUtc":"17:03:12","ConfidenceScore":"90","UnitName":"u"}"#,
        );
        assert_eq!(read.observed_at, at("2026-11-24T17:03:12Z"));
    }

    #[test]
    fn attributes_map_keeps_top_candidates_with_their_scores_and_dashes_are_unknown() {
        let read = decode_one(
            r#"{"Plate":"ABC123","DateUtc":"2026-11-24","TimeUtc":"17:03:12","ConfidenceScore":"87",
                "UnitName":"u","Attributes":{"Vehicle Type":"Passenger Car","Vehicle Type Confidence Score":"91",
                "Vehicle Color":"Silver","Vehicle Make":"Chevy","Vehicle Model":"-","Relative Motion":"Moving Away",
                "Speed":"25 mph","State Name":"Maryland"}}"#,
        );
        assert!((read.confidence - 0.87).abs() < 1e-6);
        let body = read.vehicle.body_type.unwrap();
        assert_eq!(body.value, "sedan");
        assert!((body.confidence.unwrap() - 0.91).abs() < 1e-6);
        assert_eq!(read.vehicle.color.unwrap().value, "silver");
        assert_eq!(read.vehicle.make.unwrap().value, "chevrolet");
        assert_eq!(read.vehicle.model, None);
        assert_eq!(read.motion, Some(Motion::Receding));
        assert_eq!(read.jurisdiction.as_deref(), Some("Maryland"));
    }

    #[test]
    fn sharpos_plate_analytics_list_is_understood() {
        let read = decode_one(
            r#"{"ContextCameraName":"Context Camera","ContextImage":"","Id":"32cf870a","Latitude":0.0,"Longitude":0.0,
                "LprCameraName":"Lpr Camera","PlateAnalytics":[{"Key":"State Name","Score":-1.0,"Value":"VA"},
                {"Key":"Vehicle Type","Score":0.8,"Value":"SUV"},{"Key":"Relative Motion","Score":-1.0,"Value":"Approaching"},
                {"Key":"Confidence Score","Score":1,"Value":"96"}],"PlateImage":"","PlateRead":"AA7D2",
                "SourceUrl":"SHARPXS0014","Timestamp":"2026-11-24T12:03:12.797"}"#,
        );
        assert_eq!(read.reader_id, "SHARPXS0014");
        assert_eq!(read.camera_id.as_deref(), Some("Lpr Camera"));
        assert_eq!(read.observed_at, at("2026-11-24T17:03:12.797Z"));
        assert_eq!(read.jurisdiction.as_deref(), Some("VA"));
        assert!((read.confidence - 0.96).abs() < 1e-6);
        let body = read.vehicle.body_type.unwrap();
        assert_eq!((body.value.as_str(), body.confidence), ("suv", Some(0.8)));
        assert_eq!(read.motion, Some(Motion::Approaching));
        assert_eq!(read.images, ImageRefs::default());
    }

    #[test]
    fn inline_images_go_to_the_store_and_references_pass_through() {
        let images = Arc::new(MemoryImageStore::default());
        let jpeg = [0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3];
        use base64::Engine as _;
        let encoded = base64::engine::general_purpose::STANDARD.encode(jpeg);
        let existing = format!("sha256:{}", "ab".repeat(32));
        let json = format!(
            r#"{{"Plate":"ABC123","DateUtc":"2026-11-24","TimeUtc":"17:03:12","ConfidenceScore":"90",
                "UnitName":"u","PlateImage":"{encoded}","ContextImage":"{existing}"}}"#
        );
        let mut reads = Vec::new();
        decoder_with(images.clone())
            .decode(json.as_bytes(), &mut reads)
            .unwrap();
        let crop = reads[0].images.plate_crop.clone().unwrap();
        assert!(crop.starts_with("sha256:"), "{crop}");
        let reference = crate::images::ImageRef::parse(&crop).unwrap();
        assert_eq!(images.get(&reference).unwrap(), jpeg);
        assert_eq!(reads[0].images.overview.as_deref(), Some(existing.as_str()));
    }

    #[test]
    fn missing_essentials_are_named() {
        for (json, needle) in [
            (
                r#"{"DateUtc":"2026-11-24","TimeUtc":"17:03:12","ConfidenceScore":"90","UnitName":"u"}"#,
                "plate",
            ),
            (
                r#"{"Plate":"A1","ConfidenceScore":"90","UnitName":"u"}"#,
                "read time",
            ),
            (
                r#"{"Plate":"A1","DateUtc":"24.11.2026","TimeUtc":"17:03:12","ConfidenceScore":"90","UnitName":"u"}"#,
                "DateUtc",
            ),
            (
                r#"{"Plate":"A1","DateUtc":"2026-11-24","TimeUtc":"17:03:12","UnitName":"u"}"#,
                "confidence",
            ),
            (
                r#"{"Plate":"A1","DateUtc":"2026-11-24","TimeUtc":"17:03:12","ConfidenceScore":"high","UnitName":"u"}"#,
                "ConfidenceScore",
            ),
            (
                r#"{"Plate":"A1","DateUtc":"2026-11-24","TimeUtc":"17:03:12","ConfidenceScore":"90"}"#,
                "reader identity",
            ),
            (
                r#"{"Plate":"A1","DateUtc":"2026-11-24","TimeUtc":"17:03:12","ConfidenceScore":"90","UnitName":"u","Latitude":"north"}"#,
                "Latitude",
            ),
            (
                r#"{"Plate":"A1","DateUtc":"2026-11-24","TimeUtc":"17:03:12","ConfidenceScore":"90","UnitName":"u","PlateImage":"not base64!"}"#,
                "base64",
            ),
        ] {
            let mut reads = Vec::new();
            let error = decoder().decode(json.as_bytes(), &mut reads).unwrap_err();
            assert_eq!(error.code(), "malformed");
            assert!(error.to_string().contains(needle), "{needle}: {error}");
            assert!(reads.is_empty());
        }
    }

    #[test]
    fn batches_and_non_read_events() {
        let mut reads = Vec::new();
        let batch = r#"[{"Plate":"A1","DateUtc":"2026-11-24","TimeUtc":"17:03:12","ConfidenceScore":"90","UnitName":"u"},
                        {"EventType":"Heartbeat","UnitName":"u"},
                        {"Plate":"B2","DateUtc":"2026-11-24","TimeUtc":"17:03:13","ConfidenceScore":"80","UnitName":"u"}]"#;
        assert_eq!(
            decoder().decode(batch.as_bytes(), &mut reads).unwrap(),
            Decoded::Reads(2)
        );
        assert_eq!(reads[1].plate, "B2");
        let heartbeat = r#"{"EventType":"Heartbeat","UnitName":"SHARPV12345"}"#;
        assert_eq!(
            decoder().decode(heartbeat.as_bytes(), &mut reads).unwrap(),
            Decoded::NotARead { kind: "heartbeat" }
        );
        let bad_batch = r#"[{"Plate":"A1","DateUtc":"2026-11-24","TimeUtc":"17:03:12","ConfidenceScore":"90","UnitName":"u"},{"Plate":"B2"}]"#;
        let error = decoder()
            .decode(bad_batch.as_bytes(), &mut reads)
            .unwrap_err();
        assert!(error.to_string().contains("event 1"), "{error}");
        assert_eq!(reads.len(), 2, "a bad batch adds nothing");
    }

    #[test]
    fn simulated_messages_decode_back_to_the_read() {
        let read = PlateRead {
            read_id: String::new(),
            vendor: "simulator".into(),
            reader_id: "dc-r-007".into(),
            camera_id: Some("dc-r-007-cam2".into()),
            observed_at: at("2026-11-24T17:03:12.345Z"),
            ingested_at: None,
            plate: "ABC 1234".into(),
            plate_norm: String::new(),
            jurisdiction: Some("US-MD".into()),
            confidence: 0.934,
            lat: Some(38.897_123_4),
            lon: Some(-77.036_543_2),
            heading: None,
            motion: Some(Motion::Approaching),
            vehicle: VehicleAttributes {
                make: Some(Attribute::new("toyota", Some(0.91))),
                model: Some(Attribute::new("camry", Some(0.72))),
                color: Some(Attribute::new("silver", Some(0.88))),
                body_type: Some(Attribute::new("sedan", None)),
            },
            images: ImageRefs {
                plate_crop: Some("https://img.example/crop.jpg".into()),
                overview: None,
            },
            embedding: None,
            source: None,
            frames: 1,
            last_observed_at: None,
            duplicate_of: None,
        };
        let payload = encode_simulated(&read);
        let mut reads = Vec::new();
        decoder().decode(&payload, &mut reads).unwrap();
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
        for (decoded, original) in [
            (&decoded.vehicle.make, &read.vehicle.make),
            (&decoded.vehicle.model, &read.vehicle.model),
            (&decoded.vehicle.color, &read.vehicle.color),
            (&decoded.vehicle.body_type, &read.vehicle.body_type),
        ] {
            let (decoded, original) = (decoded.as_ref().unwrap(), original.as_ref().unwrap());
            assert_eq!(decoded.value, original.value);
            match (decoded.confidence, original.confidence) {
                (Some(d), Some(o)) => assert!((d - o).abs() < 1e-3),
                (d, o) => assert_eq!(d, o),
            }
        }
    }
}
