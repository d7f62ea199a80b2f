//! Vehicle descriptions on hotlist entries (BOLOs: "be on the lookout"): make, model, color, body
//! type, model-year range, an area and a time window, and appearance reference vectors; and how a
//! read's classified attributes are scored against them (`schemas/hotlist.md`, "Vehicle
//! descriptions").

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::{xxh3_64, xxh3_64_with_seed};

use crate::dedupe::Prehashed;
use crate::read::{Attribute, PlateRead, Timestamp};
use crate::vendor::vocabulary::{
    canonical_body_type, canonical_color, canonical_make, canonical_model,
};

/// Weight of each attribute in the attribute score: a full description (make, model, color, body
/// type) read with certainty scores 0.8; the plate pattern supplies the rest.
pub const MAKE_WEIGHT: f32 = 0.25;
pub const MODEL_WEIGHT: f32 = 0.25;
pub const COLOR_WEIGHT: f32 = 0.2;
pub const BODY_TYPE_WEIGHT: f32 = 0.1;

/// Confidence assumed for a read attribute whose vendor gave none.
pub const UNSTATED_CONFIDENCE: f32 = 0.7;

/// Attribute-only hits of an entry whose plate pattern does not fit the read are worth this share
/// of their attribute score: the plate contradicts the witness, who may still have misremembered.
pub const PATTERN_CONTRADICTED_FACTOR: f32 = 0.5;

/// A circle a BOLO is limited to (a neighbourhood, a route).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Area {
    pub lat: f64,
    pub lon: f64,
    pub radius_m: f64,
}

impl Area {
    pub fn contains(&self, lat: f64, lon: f64) -> bool {
        haversine_m(self.lat, self.lon, lat, lon) <= self.radius_m
    }
}

/// Great-circle distance in meters.
pub fn haversine_m(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    const EARTH_RADIUS_M: f64 = 6_371_008.8;
    let (phi1, phi2) = (lat1.to_radians(), lat2.to_radians());
    let d_phi = (lat2 - lat1).to_radians();
    let d_lambda = (lon2 - lon1).to_radians();
    let a = (d_phi / 2.0).sin().powi(2) + phi1.cos() * phi2.cos() * (d_lambda / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_M * a.sqrt().asin()
}

/// What a BOLO says about the vehicle, in the attribute vocabulary reads use.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VehicleDescription {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub make: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_type: Option<String>,
    /// Model years: reads carry none, so the range is shown to the officer, not matched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub year_min: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub year_max: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub area: Option<Area>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_from: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_to: Option<Timestamp>,
    /// Unit-length appearance vectors (from photos of the vehicle).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reference_vectors: Vec<Vec<f32>>,
    /// Overrides the list's `min_attribute_score` for this entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_score: Option<f32>,
}

/// The description columns of one hotlist row, as text.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DescriptionFields {
    pub make: Option<String>,
    pub model: Option<String>,
    pub color: Option<String>,
    pub body_type: Option<String>,
    pub year_min: Option<String>,
    pub year_max: Option<String>,
    pub lat: Option<String>,
    pub lon: Option<String>,
    pub radius_m: Option<String>,
    pub active_from: Option<String>,
    pub active_to: Option<String>,
    pub reference_vectors: Option<String>,
    pub min_score: Option<String>,
}

/// Why a description cannot be used; the message names the column.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InvalidDescription {
    #[error("color {0:?} is not one we recognize (black white silver gray red blue green yellow orange brown beige gold purple)")]
    Color(String),
    #[error("body_type {0:?} is not one we recognize (sedan suv pickup van hatchback coupe convertible wagon motorcycle bus truck)")]
    BodyType(String),
    #[error("{column} {raw:?} is not a year from 1900 to 2100")]
    Year { column: &'static str, raw: String },
    #[error("year_min {min} is after year_max {max}")]
    YearRange { min: u16, max: u16 },
    #[error("{column} {raw:?} is not a number in range")]
    Coordinate { column: &'static str, raw: String },
    #[error("an area needs all of lat, lon and radius_m")]
    PartialArea,
    #[error("{column} {raw:?} is not an RFC 3339 time")]
    Time { column: &'static str, raw: String },
    #[error("active_from is not before active_to")]
    EmptyWindow,
    #[error("reference_vectors: {0}")]
    ReferenceVectors(String),
    #[error("min_score {0:?} is not a number from 0 to 1")]
    MinScore(String),
    #[error("year_min/year_max alone cannot be matched (reads carry no model year): name a make, model, color, body_type, plate pattern or reference vector too")]
    YearsOnly,
}

impl DescriptionFields {
    /// Whether any column that makes a row a BOLO is filled.
    pub fn describes_vehicle(&self) -> bool {
        self.make.is_some()
            || self.model.is_some()
            || self.color.is_some()
            || self.body_type.is_some()
            || self.year_min.is_some()
            || self.year_max.is_some()
            || self.reference_vectors.is_some()
    }

    /// Whether an area, time window or score threshold is given (meaningful only with a
    /// description).
    pub fn has_constraints(&self) -> bool {
        self.lat.is_some()
            || self.lon.is_some()
            || self.radius_m.is_some()
            || self.active_from.is_some()
            || self.active_to.is_some()
            || self.min_score.is_some()
    }
}

fn parse_year(column: &'static str, raw: &str) -> Result<u16, InvalidDescription> {
    raw.trim()
        .parse::<u16>()
        .ok()
        .filter(|year| (1900..=2100).contains(year))
        .ok_or_else(|| InvalidDescription::Year {
            column,
            raw: raw.to_owned(),
        })
}

fn parse_number(
    column: &'static str,
    raw: &str,
    range: std::ops::RangeInclusive<f64>,
) -> Result<f64, InvalidDescription> {
    raw.trim()
        .trim_end_matches('m')
        .parse::<f64>()
        .ok()
        .filter(|value| value.is_finite() && range.contains(value))
        .ok_or_else(|| InvalidDescription::Coordinate {
            column,
            raw: raw.to_owned(),
        })
}

fn parse_time(column: &'static str, raw: &str) -> Result<Timestamp, InvalidDescription> {
    Timestamp::parse_rfc3339(raw.trim()).ok_or_else(|| InvalidDescription::Time {
        column,
        raw: raw.to_owned(),
    })
}

/// Vectors longer than this are refused: no re-identification model emits more.
pub const MAX_EMBEDDING_DIM: usize = 4096;

/// Parses `[[0.1, 0.2, ...], [...]]` (or one flat `[0.1, 0.2, ...]`) into unit-length vectors of
/// one dimension.
pub fn parse_reference_vectors(raw: &str) -> Result<Vec<Vec<f32>>, InvalidDescription> {
    let invalid = InvalidDescription::ReferenceVectors;
    let value: serde_json::Value = serde_json::from_str(raw.trim())
        .map_err(|error| invalid(format!("not a JSON array of arrays of numbers: {error}")))?;
    let serde_json::Value::Array(items) = value else {
        return Err(invalid("not a JSON array".to_owned()));
    };
    let rows: Vec<serde_json::Value> = if items.iter().all(serde_json::Value::is_number) {
        vec![serde_json::Value::Array(items)]
    } else {
        items
    };
    let mut vectors = Vec::with_capacity(rows.len());
    for (index, row) in rows.iter().enumerate() {
        let serde_json::Value::Array(values) = row else {
            return Err(invalid(format!("vector {} is not an array", index + 1)));
        };
        let mut vector = Vec::with_capacity(values.len());
        for value in values {
            let number = value
                .as_f64()
                .filter(|number| number.is_finite())
                .ok_or_else(|| {
                    invalid(format!("vector {} holds {value}, not a number", index + 1))
                })?;
            let number = number as f32;
            if !number.is_finite() {
                return Err(invalid(format!(
                    "vector {} holds {value}, beyond what a 32-bit float holds",
                    index + 1
                )));
            }
            vector.push(number);
        }
        if vector.len() < 2 || vector.len() > MAX_EMBEDDING_DIM {
            return Err(invalid(format!(
                "vector {} has {} values (2 to {MAX_EMBEDDING_DIM} allowed)",
                index + 1,
                vector.len()
            )));
        }
        if !normalize_vector(&mut vector) {
            return Err(invalid(format!(
                "vector {} has no direction: all zeros, or values too small to scale",
                index + 1
            )));
        }
        vectors.push(vector);
    }
    if vectors.is_empty() {
        return Err(invalid("no vectors".to_owned()));
    }
    if vectors
        .iter()
        .any(|vector| vector.len() != vectors[0].len())
    {
        return Err(invalid("vectors of different dimensions".to_owned()));
    }
    Ok(vectors)
}

/// Scales `vector` to unit length; `false` when it has none (all zeros).
pub fn normalize_vector(vector: &mut [f32]) -> bool {
    let norm = vector
        .iter()
        .map(|value| f64::from(*value).powi(2))
        .sum::<f64>()
        .sqrt();
    if norm <= f64::EPSILON || !norm.is_finite() {
        return false;
    }
    for value in vector.iter_mut() {
        *value = (f64::from(*value) / norm) as f32;
    }
    true
}

/// Dot product; the cosine similarity of unit vectors.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    dot_with(a, b)
}

/// `dot` of floats with values of another type widened to `f32` as they are multiplied (the
/// appearance index's 8-bit codes).
#[inline]
pub fn dot_with<T: Copy + Into<f32>>(a: &[f32], b: &[T]) -> f32 {
    // Sixteen accumulators: four independent vector sums, so the additions of one do not wait
    // on the last (one accumulator chain made a 128-float product latency-bound).
    let mut sums = [0.0f32; 16];
    let chunks = a.len().min(b.len()) / 16 * 16;
    for (x, y) in a[..chunks]
        .chunks_exact(16)
        .zip(b[..chunks].chunks_exact(16))
    {
        for ((sum, x), y) in sums.iter_mut().zip(x).zip(y) {
            *sum += x * (*y).into();
        }
    }
    let mut total = sums.iter().sum::<f32>();
    for (x, y) in a[chunks..].iter().zip(&b[chunks..]) {
        total += x * (*y).into();
    }
    total
}

/// Cosine similarity of two vectors of any length (0 when either is all zeros).
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let norms = (dot(a, a) * dot(b, b)).sqrt();
    if norms <= f32::EPSILON {
        0.0
    } else {
        dot(a, b) / norms
    }
}

impl VehicleDescription {
    /// Checks and types the description columns; `Ok(None)` when the row describes no vehicle.
    pub fn from_fields(
        fields: &DescriptionFields,
        has_pattern: bool,
    ) -> Result<Option<Self>, InvalidDescription> {
        if !fields.describes_vehicle() {
            return Ok(None);
        }
        let make = fields.make.as_deref().and_then(canonical_make);
        let model = match fields.model.as_deref() {
            Some(raw) => canonical_model(raw, make.as_deref()),
            // `make = Dodge Ram`: the model the make field carries.
            None => fields
                .make
                .as_deref()
                .and_then(crate::vendor::vocabulary::model_glued_to_make),
        };
        let color = match fields.color.as_deref() {
            None => None,
            Some(raw) => Some(
                canonical_color(raw)
                    .ok_or_else(|| InvalidDescription::Color(raw.to_owned()))?
                    .to_owned(),
            ),
        };
        let body_type = match fields.body_type.as_deref() {
            None => None,
            Some(raw) => Some(
                canonical_body_type(raw)
                    .ok_or_else(|| InvalidDescription::BodyType(raw.to_owned()))?
                    .to_owned(),
            ),
        };
        let year_min = fields
            .year_min
            .as_deref()
            .map(|raw| parse_year("year_min", raw))
            .transpose()?;
        let year_max = fields
            .year_max
            .as_deref()
            .map(|raw| parse_year("year_max", raw))
            .transpose()?;
        if let (Some(min), Some(max)) = (year_min, year_max) {
            if min > max {
                return Err(InvalidDescription::YearRange { min, max });
            }
        }
        let area = match (&fields.lat, &fields.lon, &fields.radius_m) {
            (None, None, None) => None,
            (Some(lat), Some(lon), Some(radius)) => Some(Area {
                lat: parse_number("lat", lat, -90.0..=90.0)?,
                lon: parse_number("lon", lon, -180.0..=180.0)?,
                radius_m: parse_number("radius_m", radius, 1.0..=1_000_000.0)?,
            }),
            _ => return Err(InvalidDescription::PartialArea),
        };
        let active_from = fields
            .active_from
            .as_deref()
            .map(|raw| parse_time("active_from", raw))
            .transpose()?;
        let active_to = fields
            .active_to
            .as_deref()
            .map(|raw| parse_time("active_to", raw))
            .transpose()?;
        if let (Some(from), Some(to)) = (active_from, active_to) {
            if from >= to {
                return Err(InvalidDescription::EmptyWindow);
            }
        }
        let reference_vectors = fields
            .reference_vectors
            .as_deref()
            .map(parse_reference_vectors)
            .transpose()?
            .unwrap_or_default();
        let min_score = fields
            .min_score
            .as_deref()
            .map(|raw| {
                raw.trim()
                    .parse::<f32>()
                    .ok()
                    .filter(|score| (0.0..=1.0).contains(score))
                    .ok_or_else(|| InvalidDescription::MinScore(raw.to_owned()))
            })
            .transpose()?;
        let description = Self {
            make,
            model,
            color,
            body_type,
            year_min,
            year_max,
            area,
            active_from,
            active_to,
            reference_vectors,
            min_score,
        };
        if !description.has_attributes() && description.reference_vectors.is_empty() && !has_pattern
        {
            return Err(InvalidDescription::YearsOnly);
        }
        Ok(Some(description))
    }

    /// The highest attribute score a read can earn against this description (every named
    /// attribute read with certainty, in the same jurisdiction).
    pub fn best_attribute_score(&self) -> f32 {
        [
            (self.make.is_some(), MAKE_WEIGHT),
            (self.model.is_some(), MODEL_WEIGHT),
            (self.color.is_some(), COLOR_WEIGHT),
            (self.body_type.is_some(), BODY_TYPE_WEIGHT),
        ]
        .iter()
        .filter(|(named, _)| *named)
        .map(|(_, weight)| weight)
        .sum()
    }

    /// Names at least one attribute a read's classifier reports.
    pub fn has_attributes(&self) -> bool {
        self.make.is_some()
            || self.model.is_some()
            || self.color.is_some()
            || self.body_type.is_some()
    }

    /// Whether the BOLO applies to a read observed then and there (time window and area).
    pub fn applies_to(&self, read: &PlateRead) -> bool {
        if self.active_from.is_some_and(|from| read.observed_at < from)
            || self.active_to.is_some_and(|to| read.observed_at >= to)
        {
            return false;
        }
        match (&self.area, read.lat, read.lon) {
            (None, _, _) => true,
            (Some(area), Some(lat), Some(lon)) => area.contains(lat, lon),
            // A read without a position cannot be placed inside the area.
            (Some(_), _, _) => false,
        }
    }

    /// Compares the read's classified attributes with the description. `None` when an attribute
    /// disagrees outright (another vehicle); otherwise each named attribute's evidence and the
    /// weighted attribute score (0..0.8).
    pub fn score_attributes(&self, read: &PlateRead) -> Option<(f32, Vec<AttributeMatch>)> {
        self.score_canonical_attributes(read, &CanonicalAttributes::of(read))
    }

    /// [`Self::score_attributes`] with the read's attributes already in the vocabulary (once
    /// per read, not once per BOLO compared).
    pub fn score_canonical_attributes(
        &self,
        read: &PlateRead,
        canonical: &CanonicalAttributes,
    ) -> Option<(f32, Vec<AttributeMatch>)> {
        let mut matches = Vec::with_capacity(4);
        let score = self.compare_attributes(
            read,
            canonical,
            |name, wanted, seen, agreement, evidence| {
                matches.push(AttributeMatch {
                    attribute: name,
                    entry: wanted.to_owned(),
                    read: seen.map(|seen| seen.value.clone()),
                    read_confidence: seen.and_then(|seen| seen.confidence),
                    agreement,
                    evidence,
                });
            },
        )?;
        Some((score, matches))
    }

    /// The score of [`Self::score_canonical_attributes`] without writing the evidence down (no
    /// allocation): `None` when an attribute disagrees outright, else the score and whether the
    /// reader reported any attribute the description names.
    pub fn attribute_score(
        &self,
        read: &PlateRead,
        canonical: &CanonicalAttributes,
    ) -> Option<(f32, bool)> {
        let mut any_seen = false;
        let score = self.compare_attributes(read, canonical, |_, _, _, agreement, _| {
            any_seen |= agreement != AttributeAgreement::ReadUnknown;
        })?;
        Some((score, any_seen))
    }

    /// Compares each attribute the description names with the read's, telling `each` how it
    /// agreed; `None` as soon as one disagrees outright, else the weighted score (0..0.8).
    fn compare_attributes(
        &self,
        read: &PlateRead,
        canonical: &CanonicalAttributes,
        mut each: impl FnMut(AttributeName, &str, Option<&Attribute>, AttributeAgreement, f32),
    ) -> Option<f32> {
        let mut score = 0.0;
        let vehicle = &read.vehicle;
        let checks: [(AttributeName, Option<&String>, Option<&Attribute>, f32); 4] = [
            (
                AttributeName::Make,
                self.make.as_ref(),
                vehicle.make.as_ref(),
                MAKE_WEIGHT,
            ),
            (
                AttributeName::Model,
                self.model.as_ref(),
                vehicle.model.as_ref(),
                MODEL_WEIGHT,
            ),
            (
                AttributeName::Color,
                self.color.as_ref(),
                vehicle.color.as_ref(),
                COLOR_WEIGHT,
            ),
            (
                AttributeName::BodyType,
                self.body_type.as_ref(),
                vehicle.body_type.as_ref(),
                BODY_TYPE_WEIGHT,
            ),
        ];
        for (name, wanted, seen, weight) in checks {
            let Some(wanted) = wanted else {
                continue;
            };
            let Some(seen) = seen else {
                each(name, wanted, None, AttributeAgreement::ReadUnknown, 0.0);
                continue;
            };
            let confidence = seen
                .confidence
                .unwrap_or(UNSTATED_CONFIDENCE)
                .clamp(0.0, 1.0);
            let (agreement, evidence) = match canonical.get(name) {
                Some(value) if value == wanted => (AttributeAgreement::Agrees, confidence),
                Some(value) if name == AttributeName::Color => {
                    let similarity = color_similarity(value, wanted);
                    if similarity <= 0.0 {
                        return None;
                    }
                    // The reader may have been wrong: the less sure it was, the more a look-alike
                    // color counts.
                    (AttributeAgreement::Similar, (1.0 - confidence) * similarity)
                }
                Some(_) => return None,
                None => (AttributeAgreement::ReadUnknown, 0.0),
            };
            score += weight * evidence;
            each(name, wanted, Some(seen), agreement, evidence);
        }
        Some(score)
    }
}

/// A read's make, model, color and body type in the BOLO vocabulary (`None`: not read, or
/// nothing the vocabulary knows).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CanonicalAttributes {
    pub make: Option<Arc<str>>,
    pub model: Option<Arc<str>>,
    pub color: Option<&'static str>,
    pub body_type: Option<&'static str>,
}

/// Distinct raw values a thread remembers before it starts over (a vendor sending free text
/// must not grow it without bound).
const VOCABULARY_CACHE_ENTRIES: usize = 4096;

/// Readers report a few hundred distinct makes, models, colors and body types: each is put in
/// the vocabulary once per thread instead of once per read matched against BOLOs. Keyed by a
/// hash of the raw value (and the make, for a model), checked against the value kept.
#[derive(Default)]
struct VocabularyCache {
    /// Raw value and context (the make, for a model) → canonical make or model.
    texts: HashMap<u64, KnownText, Prehashed>,
    fixed: HashMap<u64, (Box<str>, Option<&'static str>), Prehashed>,
}

type KnownText = (Box<str>, Box<str>, Option<Arc<str>>);

fn vocabulary_key(tag: u8, raw: &str, context: &str) -> u64 {
    xxh3_64_with_seed(raw.as_bytes(), u64::from(tag)) ^ xxh3_64(context.as_bytes()).rotate_left(17)
}

impl VocabularyCache {
    fn text(
        &mut self,
        tag: u8,
        raw: &str,
        context: &str,
        compute: impl FnOnce() -> Option<String>,
    ) -> Option<Arc<str>> {
        let key = vocabulary_key(tag, raw, context);
        if let Some((known_raw, known_context, value)) = self.texts.get(&key) {
            if **known_raw == *raw && **known_context == *context {
                return value.clone();
            }
        }
        if self.texts.len() >= VOCABULARY_CACHE_ENTRIES {
            self.texts.clear();
        }
        let value: Option<Arc<str>> = compute().map(Arc::from);
        self.texts
            .insert(key, (raw.into(), context.into(), value.clone()));
        value
    }

    fn fixed(
        &mut self,
        tag: u8,
        raw: &str,
        compute: impl FnOnce() -> Option<&'static str>,
    ) -> Option<&'static str> {
        let key = vocabulary_key(tag, raw, "");
        if let Some((known_raw, value)) = self.fixed.get(&key) {
            if **known_raw == *raw {
                return *value;
            }
        }
        if self.fixed.len() >= VOCABULARY_CACHE_ENTRIES {
            self.fixed.clear();
        }
        let value = compute();
        self.fixed.insert(key, (raw.into(), value));
        value
    }
}

thread_local! {
    static VOCABULARY: RefCell<VocabularyCache> = RefCell::default();
}

impl CanonicalAttributes {
    pub fn of(read: &PlateRead) -> Self {
        let vehicle = &read.vehicle;
        VOCABULARY.with_borrow_mut(|cache| {
            let raw_make = vehicle.make.as_ref().map_or("", |make| make.value.as_str());
            Self {
                make: vehicle.make.as_ref().and_then(|make| {
                    cache.text(b'k', &make.value, "", || canonical_make(&make.value))
                }),
                model: vehicle.model.as_ref().and_then(|model| {
                    cache.text(b'm', &model.value, raw_make, || {
                        AttributeName::Model.canonical(&model.value, vehicle.make.as_ref())
                    })
                }),
                color: vehicle.color.as_ref().and_then(|color| {
                    cache.fixed(b'c', &color.value, || canonical_color(&color.value))
                }),
                body_type: vehicle.body_type.as_ref().and_then(|body| {
                    cache.fixed(b'b', &body.value, || canonical_body_type(&body.value))
                }),
            }
        })
    }

    pub fn get(&self, name: AttributeName) -> Option<&str> {
        match name {
            AttributeName::Make => self.make.as_deref(),
            AttributeName::Model => self.model.as_deref(),
            AttributeName::Color => self.color,
            AttributeName::BodyType => self.body_type,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttributeName {
    Make,
    Model,
    Color,
    BodyType,
}

impl AttributeName {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Make => "make",
            Self::Model => "model",
            Self::Color => "color",
            Self::BodyType => "body_type",
        }
    }

    /// A read's value in the vocabulary BOLOs use.
    pub fn canonical(self, raw: &str, make: Option<&Attribute>) -> Option<String> {
        match self {
            Self::Make => canonical_make(raw),
            Self::Model => {
                let make = make.and_then(|make| canonical_make(&make.value));
                canonical_model(raw, make.as_deref())
            }
            Self::Color => canonical_color(raw).map(str::to_owned),
            Self::BodyType => canonical_body_type(raw).map(str::to_owned),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttributeAgreement {
    /// The reader saw the value the BOLO names.
    Agrees,
    /// The reader saw a look-alike color (gray for silver).
    Similar,
    /// The reader reported nothing (or nothing we could place) for this attribute.
    ReadUnknown,
}

/// One attribute of a BOLO compared with the read, for the officer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttributeMatch {
    pub attribute: AttributeName,
    /// What the BOLO names.
    pub entry: String,
    /// What the reader reported, as it reported it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read: Option<String>,
    /// The reader's confidence in it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_confidence: Option<f32>,
    pub agreement: AttributeAgreement,
    /// 0..1: how much this attribute supports the hit (the read's confidence when it agrees,
    /// (1 - confidence) × similarity for a look-alike color).
    pub evidence: f32,
}

/// How easily a color classifier (and a witness) mistakes one color for another, 0..1; symmetric.
const SIMILAR_COLORS: &[(&str, &str, f32)] = &[
    ("silver", "gray", 0.7),
    ("silver", "white", 0.4),
    ("white", "gray", 0.3),
    ("white", "beige", 0.3),
    ("gray", "black", 0.4),
    ("black", "blue", 0.3),
    ("blue", "gray", 0.3),
    ("blue", "purple", 0.4),
    ("blue", "green", 0.3),
    ("green", "gray", 0.2),
    ("red", "orange", 0.5),
    ("red", "brown", 0.3),
    ("red", "purple", 0.3),
    ("brown", "beige", 0.5),
    ("beige", "silver", 0.3),
    ("beige", "gold", 0.5),
    ("gold", "yellow", 0.5),
    ("orange", "yellow", 0.5),
];

/// 1 for the same color, the table's value for look-alikes, 0 otherwise.
pub fn color_similarity(a: &str, b: &str) -> f32 {
    if a == b {
        return 1.0;
    }
    SIMILAR_COLORS
        .iter()
        .find(|(x, y, _)| (*x == a && *y == b) || (*x == b && *y == a))
        .map_or(0.0, |(_, _, similarity)| *similarity)
}

/// Colors a read of `color` may really be (itself first).
pub fn look_alike_colors(color: &'static str) -> impl Iterator<Item = &'static str> {
    std::iter::once(color).chain(SIMILAR_COLORS.iter().filter_map(move |(x, y, _)| {
        if *x == color {
            Some(*y)
        } else if *y == color {
            Some(*x)
        } else {
            None
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::read::VehicleAttributes;

    fn read_with(vehicle: VehicleAttributes) -> PlateRead {
        let mut read: PlateRead = serde_json::from_value(serde_json::json!({
            "vendor": "t", "reader_id": "r", "observed_at": "2026-11-24T17:00:00Z",
            "plate": "ABC123", "confidence": 0.9, "lat": 38.9, "lon": -77.0
        }))
        .unwrap();
        read.vehicle = vehicle;
        read
    }

    fn silver_honda_civic() -> VehicleDescription {
        VehicleDescription::from_fields(
            &DescriptionFields {
                make: Some("HONDA".into()),
                model: Some("Civic".into()),
                color: Some("Silver".into()),
                ..DescriptionFields::default()
            },
            false,
        )
        .unwrap()
        .unwrap()
    }

    fn attribute(value: &str, confidence: f32) -> Option<Attribute> {
        Some(Attribute::new(value, Some(confidence)))
    }

    #[test]
    fn agreeing_attributes_score_by_the_readers_confidence() {
        let read = read_with(VehicleAttributes {
            make: attribute("Honda", 0.9),
            model: attribute("honda_civic", 0.8),
            color: attribute("silver", 0.9),
            body_type: None,
        });
        let (score, matches) = silver_honda_civic().score_attributes(&read).unwrap();
        let expected = MAKE_WEIGHT * 0.9 + MODEL_WEIGHT * 0.8 + COLOR_WEIGHT * 0.9;
        assert!((score - expected).abs() < 1e-6, "{score} vs {expected}");
        assert!(matches
            .iter()
            .all(|m| m.agreement == AttributeAgreement::Agrees));
    }

    #[test]
    fn a_low_confidence_gray_matches_silver_a_little_and_a_sure_one_barely() {
        let description = silver_honda_civic();
        let gray = |confidence| {
            read_with(VehicleAttributes {
                make: attribute("honda", 0.9),
                model: attribute("civic", 0.9),
                color: attribute("gray", confidence),
                body_type: None,
            })
        };
        let (unsure, matches) = description.score_attributes(&gray(0.5)).unwrap();
        let (sure, _) = description.score_attributes(&gray(0.98)).unwrap();
        let (exact, _) = description
            .score_attributes(&read_with(VehicleAttributes {
                make: attribute("honda", 0.9),
                model: attribute("civic", 0.9),
                color: attribute("silver", 0.9),
                body_type: None,
            }))
            .unwrap();
        assert!(exact > unsure && unsure > sure, "{exact} {unsure} {sure}");
        let color = matches
            .iter()
            .find(|m| m.attribute == AttributeName::Color)
            .unwrap();
        assert_eq!(color.agreement, AttributeAgreement::Similar);
        assert!((color.evidence - 0.5 * 0.7).abs() < 1e-6);
    }

    #[test]
    fn a_different_make_or_unrelated_color_is_another_vehicle() {
        let description = silver_honda_civic();
        let toyota = read_with(VehicleAttributes {
            make: attribute("toyota", 0.6),
            model: None,
            color: attribute("silver", 0.9),
            body_type: None,
        });
        assert!(description.score_attributes(&toyota).is_none());
        let red = read_with(VehicleAttributes {
            make: attribute("honda", 0.9),
            model: attribute("civic", 0.9),
            color: attribute("red", 0.3),
            body_type: None,
        });
        assert!(description.score_attributes(&red).is_none());
    }

    #[test]
    fn rows_are_checked_column_by_column() {
        let refuse = |fields: DescriptionFields| {
            VehicleDescription::from_fields(&fields, false)
                .unwrap_err()
                .to_string()
        };
        assert!(refuse(DescriptionFields {
            color: Some("plaid".into()),
            ..Default::default()
        })
        .contains("plaid"));
        assert!(refuse(DescriptionFields {
            year_min: Some("2015".into()),
            ..Default::default()
        })
        .contains("alone"));
        assert!(refuse(DescriptionFields {
            make: Some("ford".into()),
            lat: Some("38.9".into()),
            ..Default::default()
        })
        .contains("lat, lon and radius_m"));
        assert!(refuse(DescriptionFields {
            make: Some("ford".into()),
            year_min: Some("2019".into()),
            year_max: Some("2015".into()),
            ..Default::default()
        })
        .contains("after"));
        assert!(refuse(DescriptionFields {
            reference_vectors: Some("[[0,0,0]]".into()),
            ..Default::default()
        })
        .contains("zeros"));
        assert!(refuse(DescriptionFields {
            reference_vectors: Some("[[1,0],[1,0,0]]".into()),
            ..Default::default()
        })
        .contains("dimensions"));
        let flat = VehicleDescription::from_fields(
            &DescriptionFields {
                reference_vectors: Some("[3, 4]".into()),
                ..Default::default()
            },
            false,
        )
        .unwrap()
        .unwrap();
        assert_eq!(flat.reference_vectors, vec![vec![0.6, 0.8]]);
    }

    #[test]
    fn area_and_window_limit_where_and_when_a_bolo_applies() {
        let description = VehicleDescription::from_fields(
            &DescriptionFields {
                color: Some("red".into()),
                lat: Some("38.9".into()),
                lon: Some("-77.0".into()),
                radius_m: Some("500".into()),
                active_from: Some("2026-11-24T16:00:00Z".into()),
                active_to: Some("2026-11-24T18:00:00Z".into()),
                ..Default::default()
            },
            false,
        )
        .unwrap()
        .unwrap();
        let mut read = read_with(VehicleAttributes::default());
        assert!(description.applies_to(&read));
        read.lat = Some(38.91); // about 1.1 km north
        assert!(!description.applies_to(&read));
        read.lat = Some(38.9);
        read.observed_at = Timestamp::parse_rfc3339("2026-11-24T18:00:00Z").unwrap();
        assert!(!description.applies_to(&read));
    }
}
