//! The canonical plate read: what every vendor's message becomes, what the matcher sees and what the
//! archive stores. Its JSON form is specified in `schemas/plate-read.schema.json`.

use std::fmt;

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A point in time in UTC with millisecond precision, stored as milliseconds since the Unix epoch.
///
/// In JSON it is written as RFC 3339 (`2026-11-24T17:03:12.345Z`) and read from either RFC 3339
/// (any offset) or an integer count of epoch milliseconds, because readers emit both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub fn now() -> Self {
        Self(Utc::now().timestamp_millis())
    }

    pub fn from_millis(millis: i64) -> Self {
        Self(millis)
    }

    pub fn millis(self) -> i64 {
        self.0
    }

    pub fn to_datetime(self) -> Option<DateTime<Utc>> {
        Utc.timestamp_millis_opt(self.0).single()
    }

    pub fn parse_rfc3339(text: &str) -> Option<Self> {
        DateTime::parse_from_rfc3339(text)
            .ok()
            .map(|parsed| Self(parsed.timestamp_millis()))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.to_datetime() {
            Some(datetime) => f.write_str(&datetime.to_rfc3339_opts(SecondsFormat::Millis, true)),
            None => write!(f, "{}ms", self.0),
        }
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TimestampVisitor;
        impl serde::de::Visitor<'_> for TimestampVisitor {
            type Value = Timestamp;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an RFC 3339 time or an integer of epoch milliseconds")
            }

            fn visit_i64<E: serde::de::Error>(self, millis: i64) -> Result<Timestamp, E> {
                match other_epoch_unit(millis) {
                    Some(unit) => Err(E::custom(format!(
                        "{millis} looks like epoch {unit}; canonical times are epoch \
                         milliseconds or RFC 3339"
                    ))),
                    None => Ok(Timestamp(millis)),
                }
            }

            fn visit_u64<E: serde::de::Error>(self, millis: u64) -> Result<Timestamp, E> {
                let millis = i64::try_from(millis).map_err(|_| {
                    E::custom(format!(
                        "{millis} is out of range; canonical times are epoch milliseconds or \
                         RFC 3339"
                    ))
                })?;
                self.visit_i64(millis)
            }

            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Timestamp, E> {
                Timestamp::parse_rfc3339(text)
                    .ok_or_else(|| E::custom(format!("not an RFC 3339 time: {text:?}")))
            }
        }
        deserializer.deserialize_any(TimestampVisitor)
    }
}

/// Plausible read times in epoch milliseconds: 2000-01-01 up to 2200-01-01.
const PLAUSIBLE_MILLIS: std::ops::Range<i64> = 946_684_800_000..7_258_118_400_000;

/// The unit an integer time was most likely sent in, when it is not milliseconds: as
/// milliseconds it is no plausible read time, in that unit it is. Taken as milliseconds, epoch
/// seconds land in January 1970 and microseconds in the year 58868, and a refusal quoting those
/// dates sends the sender looking for a broken clock instead of a wrong unit.
fn other_epoch_unit(millis: i64) -> Option<&'static str> {
    if PLAUSIBLE_MILLIS.contains(&millis) {
        return None;
    }
    if PLAUSIBLE_MILLIS.contains(&millis.saturating_mul(1_000)) {
        Some("seconds")
    } else if PLAUSIBLE_MILLIS.contains(&(millis / 1_000)) {
        Some("microseconds")
    } else if PLAUSIBLE_MILLIS.contains(&(millis / 1_000_000)) {
        Some("nanoseconds")
    } else {
        None
    }
}

/// One vehicle attribute as the reader's classifier reported it: its top candidate and how sure it was.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attribute {
    pub value: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f32>,
}

impl Attribute {
    pub fn new(value: impl Into<String>, confidence: Option<f32>) -> Self {
        Self {
            value: value.into(),
            confidence,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VehicleAttributes {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub make: Option<Attribute>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<Attribute>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Option<Attribute>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_type: Option<Attribute>,
}

/// References (URIs or image-store keys) to the pictures an officer needs to verify a read.
/// Images themselves never travel inside a read.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ImageRefs {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plate_crop: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overview: Option<String>,
}

/// Which way the vehicle moved relative to the camera, for readers that report it instead of (or
/// beside) a compass heading: Genetec's `Relative Motion`, Axis's `carMoveDirection` `in`/`out`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Motion {
    Approaching,
    Receding,
}

impl Motion {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Approaching => "approaching",
            Self::Receding => "receding",
        }
    }
}

fn one_frame() -> u32 {
    1
}

fn is_one_frame(frames: &u32) -> bool {
    *frames == 1
}

/// Where a read came from in the stream, so that every archived row can be traced to its message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourcePosition {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

/// The canonical read.
///
/// On input (canonical JSON from a reader) `read_id`, `plate_norm`, `ingested_at` and `source` may be
/// absent: normalization derives or fills them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlateRead {
    #[serde(default)]
    pub read_id: String,
    pub vendor: String,
    pub reader_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub camera_id: Option<String>,
    pub observed_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingested_at: Option<Timestamp>,
    /// The plate text exactly as the reader reported it.
    pub plate: String,
    /// The plate after normalization: what matching and queries use.
    #[serde(default)]
    pub plate_norm: String,
    /// ISO 3166-2 style (`US-DC`); `None` when the reader could not tell.
    #[serde(default)]
    pub jurisdiction: Option<String>,
    /// The reader's confidence in the plate text, 0..1.
    pub confidence: f32,
    #[serde(default)]
    pub lat: Option<f64>,
    #[serde(default)]
    pub lon: Option<f64>,
    /// Direction of travel in degrees clockwise from north, 0..360.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heading: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub motion: Option<Motion>,
    #[serde(default)]
    pub vehicle: VehicleAttributes,
    #[serde(default)]
    pub images: ImageRefs,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embedding: Option<Vec<f32>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<SourcePosition>,
    /// How many reports of this vehicle pass the read stands for: readers report a vehicle once per
    /// frame while it is in view, and duplicate suppression folds those reports into one read.
    #[serde(default = "one_frame", skip_serializing_if = "is_one_frame")]
    pub frames: u32,
    /// When the last folded report was observed; `None` for a read of a single report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_observed_at: Option<Timestamp>,
    /// Set on a duplicate report kept in the archive (when configured): the read it was folded into.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplicate_of: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_reads_rfc3339_with_offset_and_epoch_millis() {
        let from_text: Timestamp =
            serde_json::from_str("\"2026-11-24T12:00:00.250-05:00\"").unwrap();
        let from_millis: Timestamp = serde_json::from_str("1795539600250").unwrap();
        assert_eq!(from_text, from_millis);
        assert_eq!(
            serde_json::to_string(&from_text).unwrap(),
            "\"2026-11-24T17:00:00.250Z\""
        );
    }

    #[test]
    fn integer_times_in_another_unit_are_refused_naming_the_unit() {
        for (sent, unit) in [
            ("1795539600", "seconds"),
            ("1795539600000000", "microseconds"),
            ("1795539600000000000", "nanoseconds"),
        ] {
            let error = serde_json::from_str::<Timestamp>(sent)
                .unwrap_err()
                .to_string();
            assert!(
                error.starts_with(&format!(
                    "{sent} looks like epoch {unit}; canonical times are epoch milliseconds or \
                     RFC 3339"
                )),
                "{error}"
            );
        }
        // Not a plausible time in any unit: left to normalization, which says why.
        assert_eq!(
            serde_json::from_str::<Timestamp>("0").unwrap(),
            Timestamp(0)
        );
    }

    #[test]
    fn timestamp_rejects_garbage_with_a_reason() {
        let error = serde_json::from_str::<Timestamp>("\"yesterday\"").unwrap_err();
        assert!(error.to_string().contains("RFC 3339"), "{error}");
    }
}
