//! Vendors we have not met yet: CSV or NDJSON with a column mapping given in configuration
//! (`[readers.generic]`, documented in `schemas/examples/generic/README.md`).
//!
//! - `ndjson`: a message holds one JSON object per read: one object, several separated by
//!   newlines (or any whitespace), or a JSON array of them. Fields are named by dotted paths
//!   (`data.plate.text`); a numeric segment indexes an array (`results.0.plate`). Keys containing
//!   dots cannot be addressed.
//! - `csv`: a message holds one CSV line per read (RFC 4180 quoting, the configured delimiter).
//!   The line carries no names, so `columns` lists them in order, and fields are named by column
//!   name. A line equal to the column names is a header repeated by the sender and is skipped.
//!
//! The mapping is checked once, when the decoder is built, so a typo stops start-up with its
//! reason instead of dead-lettering every message.

use std::borrow::Cow;
use std::fmt;

use chrono::format::{Item, StrftimeItems};
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

use crate::decode::{payload_text, DecodeError, Decoded, ReadDecoder};
use crate::read::{Attribute, ImageRefs, PlateRead, Timestamp, VehicleAttributes};

use super::scalar::Lenient;
use super::time::{from_epoch_number, parse_time_text, parse_time_with_format, TimeError};
use super::vocabulary::{canonical_body_type, canonical_color, canonical_make, canonical_model};
use super::{confidence_from_percent, DecodeContext, FormatError};

const FORMAT: &str = "generic";

/// How a message is written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GenericSyntax {
    #[default]
    Ndjson,
    Csv,
}

/// Which input field holds which canonical field. Field values are dotted JSON paths for
/// `ndjson` and column names for `csv`. Only `plate`, `observed_at`, a reader identity
/// (`reader_id` or `reader_id_value`) and a confidence (`confidence` or `confidence_value`) are
/// required.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenericMapping {
    #[serde(default)]
    pub syntax: GenericSyntax,
    /// `csv` only: the column names, in order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub columns: Option<Vec<String>>,
    /// `csv` only: the field separator (default `,`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delimiter: Option<char>,
    /// The `vendor` written into every read (default `generic`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plate: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jurisdiction: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_at: Option<String>,
    /// `epoch_ms`, `epoch_s`, `iso`, or a chrono format (`%d.%m.%Y %H:%M:%S`). Without it, epoch
    /// numbers (unit told by magnitude) and ISO 8601 texts are recognized. Times without an
    /// offset are in the reader time zone (`[readers] timezone`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_at_format: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<String>,
    /// `1` (default) when the confidence is 0..1, `100` when it is a percentage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence_scale: Option<f64>,
    /// A constant confidence (0..1) for vendors that send none; also used when the field is empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence_value: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reader_id: Option<String>,
    /// A constant reader id, for a topic fed by one reader; also used when the field is empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reader_id_value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub camera_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lat: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lon: Option<String>,
    /// Degrees clockwise from north.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heading: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub make: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_type: Option<String>,
    /// A URL, an image-store reference or inline base64 (stored, replaced by its reference).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plate_crop: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overview: Option<String>,
}

/// The canonical fields a mapping can fill; the index into a record's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Plate,
    Jurisdiction,
    ObservedAt,
    Confidence,
    ReaderId,
    CameraId,
    Lat,
    Lon,
    Heading,
    Make,
    Model,
    Color,
    BodyType,
    PlateCrop,
    Overview,
}

const SLOT_COUNT: usize = 15;

impl Slot {
    fn name(self) -> &'static str {
        match self {
            Self::Plate => "plate",
            Self::Jurisdiction => "jurisdiction",
            Self::ObservedAt => "observed_at",
            Self::Confidence => "confidence",
            Self::ReaderId => "reader_id",
            Self::CameraId => "camera_id",
            Self::Lat => "lat",
            Self::Lon => "lon",
            Self::Heading => "heading",
            Self::Make => "make",
            Self::Model => "model",
            Self::Color => "color",
            Self::BodyType => "body_type",
            Self::PlateCrop => "plate_crop",
            Self::Overview => "overview",
        }
    }
}

impl GenericMapping {
    fn fields(&self) -> [(Slot, Option<&String>); SLOT_COUNT] {
        [
            (Slot::Plate, self.plate.as_ref()),
            (Slot::Jurisdiction, self.jurisdiction.as_ref()),
            (Slot::ObservedAt, self.observed_at.as_ref()),
            (Slot::Confidence, self.confidence.as_ref()),
            (Slot::ReaderId, self.reader_id.as_ref()),
            (Slot::CameraId, self.camera_id.as_ref()),
            (Slot::Lat, self.lat.as_ref()),
            (Slot::Lon, self.lon.as_ref()),
            (Slot::Heading, self.heading.as_ref()),
            (Slot::Make, self.make.as_ref()),
            (Slot::Model, self.model.as_ref()),
            (Slot::Color, self.color.as_ref()),
            (Slot::BodyType, self.body_type.as_ref()),
            (Slot::PlateCrop, self.plate_crop.as_ref()),
            (Slot::Overview, self.overview.as_ref()),
        ]
    }
}

#[derive(Debug, Clone, PartialEq)]
enum TimeFormat {
    Auto,
    EpochMillis,
    EpochSeconds,
    Iso,
    Chrono(String),
}

fn time_format(format: Option<&str>) -> Result<TimeFormat, FormatError> {
    Ok(match format.map(str::trim) {
        None | Some("") => TimeFormat::Auto,
        Some("epoch_ms") => TimeFormat::EpochMillis,
        Some("epoch_s") => TimeFormat::EpochSeconds,
        Some("iso") => TimeFormat::Iso,
        Some(chrono_format)
            if chrono_format.contains('%')
                && !StrftimeItems::new(chrono_format).any(|item| matches!(item, Item::Error)) =>
        {
            TimeFormat::Chrono(chrono_format.to_owned())
        }
        Some(other) => {
            return Err(FormatError::InvalidMapping(format!(
                "observed_at_format {other:?} is not epoch_ms, epoch_s, iso or a chrono format \
                 such as \"%d.%m.%Y %H:%M:%S\""
            )))
        }
    })
}

/// The mapped JSON paths as a tree, walked once per message by a serde visitor that keeps only
/// the mapped values (borrowed from the message) and skips everything else unparsed.
#[derive(Debug, Default)]
struct PathNode {
    keys: Vec<(String, PathChild)>,
    indexes: Vec<(usize, PathChild)>,
}

#[derive(Debug)]
enum PathChild {
    Leaf { path: String, slots: Vec<Slot> },
    Node(PathNode),
}

impl PathNode {
    fn insert(&mut self, path: &str, slot: Slot) -> Result<(), FormatError> {
        let segments: Vec<&str> = path.split('.').collect();
        if segments.iter().any(|segment| segment.is_empty()) {
            return Err(FormatError::InvalidMapping(format!(
                "{} path {path:?} has an empty segment",
                slot.name()
            )));
        }
        self.insert_segments(&segments, path, slot)
    }

    fn insert_segments(
        &mut self,
        segments: &[&str],
        path: &str,
        slot: Slot,
    ) -> Result<(), FormatError> {
        let Some((segment, rest)) = segments.split_first() else {
            return Ok(());
        };
        let last = rest.is_empty();
        if self.child_entry(segment).is_none() {
            let child = if last {
                PathChild::Leaf {
                    path: path.to_owned(),
                    slots: Vec::new(),
                }
            } else {
                PathChild::Node(PathNode::default())
            };
            match segment.parse::<usize>() {
                Ok(index) => self.indexes.push((index, child)),
                Err(_) => self.keys.push(((*segment).to_owned(), child)),
            }
        }
        match self.child_entry(segment) {
            Some(PathChild::Leaf { slots, .. }) if last => {
                slots.push(slot);
                Ok(())
            }
            Some(PathChild::Node(next)) if !last => next.insert_segments(rest, path, slot),
            _ => Err(FormatError::InvalidMapping(format!(
                "{} path {path:?} runs through another mapped field's value",
                slot.name()
            ))),
        }
    }

    fn child_entry(&mut self, segment: &str) -> Option<&mut PathChild> {
        match segment.parse::<usize>() {
            Ok(index) => self
                .indexes
                .iter_mut()
                .find(|(candidate, _)| *candidate == index)
                .map(|(_, child)| child),
            Err(_) => self
                .keys
                .iter_mut()
                .find(|(candidate, _)| candidate == segment)
                .map(|(_, child)| child),
        }
    }

    fn key(&self, key: &str) -> Option<&PathChild> {
        self.keys
            .iter()
            .find(|(candidate, _)| candidate == key)
            .map(|(_, child)| child)
    }

    fn index(&self, index: usize) -> Option<&PathChild> {
        self.indexes
            .iter()
            .find(|(candidate, _)| *candidate == index)
            .map(|(_, child)| child)
    }
}

type Values<'de> = [Option<Lenient<'de>>; SLOT_COUNT];

fn empty_values<'de>() -> Values<'de> {
    std::array::from_fn(|_| None)
}

/// A mapped leaf: a number or a text (null is absent); the path goes into the error message.
struct LeafSeed<'n> {
    path: &'n str,
}

impl<'de> DeserializeSeed<'de> for LeafSeed<'_> {
    type Value = Option<Lenient<'de>>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for LeafSeed<'_> {
    type Value = Option<Lenient<'de>>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "a number or a text at {:?}", self.path)
    }

    fn visit_borrowed_str<E: de::Error>(self, text: &'de str) -> Result<Self::Value, E> {
        Ok(Some(Lenient::Text(Cow::Borrowed(text))))
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
        Ok(Some(Lenient::Text(Cow::Owned(text.to_owned()))))
    }

    fn visit_f64<E: de::Error>(self, number: f64) -> Result<Self::Value, E> {
        Ok(Some(Lenient::Number(number)))
    }

    fn visit_i64<E: de::Error>(self, number: i64) -> Result<Self::Value, E> {
        Ok(Some(Lenient::Number(number as f64)))
    }

    fn visit_u64<E: de::Error>(self, number: u64) -> Result<Self::Value, E> {
        Ok(Some(Lenient::Number(number as f64)))
    }

    fn visit_bool<E: de::Error>(self, flag: bool) -> Result<Self::Value, E> {
        Ok(Some(Lenient::Text(Cow::Borrowed(if flag {
            "true"
        } else {
            "false"
        }))))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

/// An object or array on the way to mapped leaves. Scalars where the mapping expects nesting
/// leave the fields below them absent.
struct NodeSeed<'n, 'v, 'de> {
    node: &'n PathNode,
    values: &'v mut Values<'de>,
}

impl<'de> NodeSeed<'_, '_, 'de> {
    fn store(&mut self, child: &PathChild, value: Option<Lenient<'de>>) {
        if let (PathChild::Leaf { slots, .. }, Some(value)) = (child, value) {
            for slot in slots {
                self.values[*slot as usize] = Some(value.clone());
            }
        }
    }
}

impl<'de> DeserializeSeed<'de> for NodeSeed<'_, '_, 'de> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for NodeSeed<'_, '_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<M: MapAccess<'de>>(mut self, mut map: M) -> Result<(), M::Error> {
        while let Some(key) = map.next_key::<Lenient<'de>>()? {
            let child = match &key {
                Lenient::Text(key) => self.node.key(key),
                Lenient::Number(_) => None,
            };
            match child {
                Some(child @ PathChild::Leaf { path, .. }) => {
                    let value = map.next_value_seed(LeafSeed { path })?;
                    self.store(child, value);
                }
                Some(PathChild::Node(node)) => map.next_value_seed(NodeSeed {
                    node,
                    values: &mut *self.values,
                })?,
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }

    fn visit_seq<S: SeqAccess<'de>>(mut self, mut seq: S) -> Result<(), S::Error> {
        let mut index = 0;
        loop {
            let more = match self.node.index(index) {
                Some(child @ PathChild::Leaf { path, .. }) => {
                    match seq.next_element_seed(LeafSeed { path })? {
                        Some(value) => {
                            self.store(child, value);
                            true
                        }
                        None => false,
                    }
                }
                Some(PathChild::Node(node)) => seq
                    .next_element_seed(NodeSeed {
                        node,
                        values: &mut *self.values,
                    })?
                    .is_some(),
                None => seq.next_element::<IgnoredAny>()?.is_some(),
            };
            if !more {
                return Ok(());
            }
            index += 1;
        }
    }

    fn visit_borrowed_str<E: de::Error>(self, _: &'de str) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
}

/// A top-level JSON value: one record (an object), or an array of records.
struct RecordsSeed<'n, 'r, 'de> {
    root: &'n PathNode,
    records: &'r mut Vec<Values<'de>>,
}

impl<'de> DeserializeSeed<'de> for RecordsSeed<'_, '_, 'de> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

struct RecordSeed<'n, 'r, 'de> {
    root: &'n PathNode,
    records: &'r mut Vec<Values<'de>>,
}

impl<'de> DeserializeSeed<'de> for RecordSeed<'_, '_, 'de> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        let mut values = empty_values();
        NodeSeed {
            node: self.root,
            values: &mut values,
        }
        .deserialize(deserializer)?;
        self.records.push(values);
        Ok(())
    }
}

impl<'de> Visitor<'de> for RecordsSeed<'_, '_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object, or an array of objects")
    }

    fn visit_map<M: MapAccess<'de>>(self, map: M) -> Result<(), M::Error> {
        let mut values = empty_values();
        NodeSeed {
            node: self.root,
            values: &mut values,
        }
        .visit_map(map)?;
        self.records.push(values);
        Ok(())
    }

    fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<(), S::Error> {
        while seq
            .next_element_seed(RecordSeed {
                root: self.root,
                records: &mut *self.records,
            })?
            .is_some()
        {}
        Ok(())
    }
}

/// Splits CSV text into records of fields: RFC 4180 quoting (`"a ""b"""`, delimiters and line
/// breaks inside quotes), `\n` or `\r\n` between records, blank lines skipped.
fn csv_records(text: &str, delimiter: u8) -> Result<Vec<Vec<Cow<'_, str>>>, String> {
    let bytes = text.as_bytes();
    let mut records = Vec::new();
    let mut fields: Vec<Cow<'_, str>> = Vec::new();
    let mut position = 0;
    let mut line = 1;
    while position < bytes.len() {
        // One field starts here.
        let field = if bytes[position] == b'"' {
            let mut unquoted = String::new();
            let mut chunk_start = position + 1;
            let mut cursor = position + 1;
            loop {
                match bytes.get(cursor) {
                    None => return Err(format!("line {line}: a quoted field is not closed")),
                    Some(b'"') if bytes.get(cursor + 1) == Some(&b'"') => {
                        unquoted.push_str(&text[chunk_start..=cursor]);
                        cursor += 2;
                        chunk_start = cursor;
                    }
                    Some(b'"') => {
                        unquoted.push_str(&text[chunk_start..cursor]);
                        cursor += 1;
                        break;
                    }
                    Some(b'\n') => {
                        line += 1;
                        cursor += 1;
                    }
                    Some(_) => cursor += 1,
                }
            }
            match bytes.get(cursor) {
                None | Some(b'\n') | Some(b'\r') => {}
                Some(byte) if *byte == delimiter => {}
                Some(_) => {
                    return Err(format!(
                        "line {line}: text after the closing quote of a field"
                    ))
                }
            }
            position = cursor;
            Cow::Owned(unquoted)
        } else {
            let start = position;
            while position < bytes.len()
                && bytes[position] != delimiter
                && bytes[position] != b'\n'
                && bytes[position] != b'\r'
            {
                position += 1;
            }
            Cow::Borrowed(&text[start..position])
        };
        fields.push(field);
        match bytes.get(position) {
            Some(byte) if *byte == delimiter => {
                position += 1;
                // A trailing delimiter leaves one more, empty field.
                if matches!(bytes.get(position), None | Some(b'\n') | Some(b'\r')) {
                    fields.push(Cow::Borrowed(""));
                }
            }
            _ => {}
        }
        let at_line_end = matches!(bytes.get(position), None | Some(b'\n') | Some(b'\r'));
        if at_line_end {
            if bytes.get(position) == Some(&b'\r') {
                position += 1;
            }
            if bytes.get(position) == Some(&b'\n') {
                position += 1;
            }
            let blank = fields.len() == 1 && fields[0].trim().is_empty();
            if !blank {
                records.push(std::mem::take(&mut fields));
            } else {
                fields.clear();
            }
            line += 1;
        }
    }
    Ok(records)
}

#[derive(Debug)]
struct CsvLayout {
    columns: Vec<String>,
    /// For each column, the canonical fields it fills.
    slots: Vec<Vec<Slot>>,
    delimiter: u8,
}

#[derive(Debug)]
enum Layout {
    Ndjson(PathNode),
    Csv(CsvLayout),
}

pub struct GenericDecoder {
    mapping: GenericMapping,
    vendor: String,
    layout: Layout,
    time_format: TimeFormat,
    confidence_scale: f64,
    context: DecodeContext,
}

fn invalid(reason: impl Into<String>) -> FormatError {
    FormatError::InvalidMapping(reason.into())
}

fn malformed(detail: impl Into<String>) -> DecodeError {
    DecodeError::Malformed {
        format: FORMAT,
        detail: detail.into(),
    }
}

impl GenericDecoder {
    pub fn new(mapping: GenericMapping, context: DecodeContext) -> Result<Self, FormatError> {
        let is_set =
            |field: &Option<String>| field.as_deref().is_some_and(|f| !f.trim().is_empty());
        if !is_set(&mapping.plate) {
            return Err(invalid(
                "`plate` is required: the field that holds the plate text",
            ));
        }
        if !is_set(&mapping.observed_at) {
            return Err(invalid(
                "`observed_at` is required: the field that holds the time of the read",
            ));
        }
        if !is_set(&mapping.reader_id) && !is_set(&mapping.reader_id_value) {
            return Err(invalid(
                "a reader identity is required: `reader_id` (a field) or `reader_id_value` (a constant)",
            ));
        }
        if !is_set(&mapping.confidence) && mapping.confidence_value.is_none() {
            return Err(invalid(
                "a confidence is required: `confidence` (a field) or `confidence_value` (a constant \
                 0..1 for vendors that send none)",
            ));
        }
        if let Some(value) = mapping.confidence_value {
            if !(0.0..=1.0).contains(&value) {
                return Err(invalid(format!("confidence_value {value} is not in 0..1")));
            }
        }
        let confidence_scale = mapping.confidence_scale.unwrap_or(1.0);
        if confidence_scale != 1.0 && confidence_scale != 100.0 {
            return Err(invalid(format!(
                "confidence_scale {confidence_scale} is neither 1 nor 100"
            )));
        }
        let vendor = mapping.vendor.clone().unwrap_or_else(|| FORMAT.to_owned());
        if vendor.trim().is_empty() {
            return Err(invalid("`vendor` is empty"));
        }
        let time_format = time_format(mapping.observed_at_format.as_deref())?;
        let mapped = mapping
            .fields()
            .into_iter()
            .filter_map(|(slot, field)| field.map(|field| (slot, field.trim().to_owned())))
            .filter(|(_, field)| !field.is_empty());

        let layout = match mapping.syntax {
            GenericSyntax::Ndjson => {
                if mapping.columns.is_some() || mapping.delimiter.is_some() {
                    return Err(invalid(
                        "`columns` and `delimiter` are for syntax = \"csv\" only",
                    ));
                }
                let mut root = PathNode::default();
                for (slot, path) in mapped {
                    root.insert(&path, slot)?;
                }
                Layout::Ndjson(root)
            }
            GenericSyntax::Csv => {
                let columns: Vec<String> = mapping
                    .columns
                    .as_ref()
                    .filter(|columns| !columns.is_empty())
                    .ok_or_else(|| {
                        invalid("syntax = \"csv\" needs `columns`: the column names, in order")
                    })?
                    .iter()
                    .map(|column| column.trim().to_owned())
                    .collect();
                let delimiter = mapping.delimiter.unwrap_or(',');
                if !delimiter.is_ascii() || matches!(delimiter, '"' | '\n' | '\r') {
                    return Err(invalid(format!(
                        "delimiter {delimiter:?} must be one ASCII character other than a quote or a line break"
                    )));
                }
                let mut slots = vec![Vec::new(); columns.len()];
                for (slot, column) in mapped {
                    let index = columns
                        .iter()
                        .position(|candidate| *candidate == column)
                        .ok_or_else(|| {
                            invalid(format!(
                                "{} column {column:?} is not in `columns`",
                                slot.name()
                            ))
                        })?;
                    slots[index].push(slot);
                }
                Layout::Csv(CsvLayout {
                    columns,
                    slots,
                    delimiter: delimiter as u8,
                })
            }
        };
        Ok(Self {
            mapping,
            vendor,
            layout,
            time_format,
            confidence_scale,
            context,
        })
    }

    /// Where a canonical field comes from, for error messages.
    fn source_of(&self, slot: Slot) -> &str {
        self.mapping
            .fields()
            .into_iter()
            .find(|(candidate, _)| *candidate == slot)
            .and_then(|(_, field)| field)
            .map_or("", String::as_str)
    }

    fn number(&self, values: &Values<'_>, slot: Slot) -> Result<Option<f64>, DecodeError> {
        match &values[slot as usize] {
            Some(value) => value.number(FORMAT, self.source_of(slot)),
            None => Ok(None),
        }
    }

    fn text<'v>(&self, values: &'v Values<'_>, slot: Slot) -> Option<Cow<'v, str>> {
        values[slot as usize].as_ref().and_then(Lenient::text)
    }

    fn observed_at(&self, values: &Values<'_>) -> Result<Timestamp, DecodeError> {
        let field = self.source_of(Slot::ObservedAt);
        let Some(value) = &values[Slot::ObservedAt as usize] else {
            return Err(malformed(format!(
                "no read time (field {field:?} is absent)"
            )));
        };
        let zone = self.context.reader_timezone;
        let parsed = match (&self.time_format, value) {
            (TimeFormat::EpochMillis, _) => value
                .number(FORMAT, field)?
                .filter(|millis| millis.is_finite())
                .map(|millis| Timestamp::from_millis(millis.round() as i64))
                .ok_or(TimeError::NotATime),
            (TimeFormat::EpochSeconds, _) => value
                .number(FORMAT, field)?
                .filter(|seconds| seconds.is_finite())
                .map(|seconds| Timestamp::from_millis((seconds * 1e3).round() as i64))
                .ok_or(TimeError::NotATime),
            (TimeFormat::Auto, Lenient::Number(number)) => {
                from_epoch_number(*number).ok_or(TimeError::NotATime)
            }
            (TimeFormat::Auto | TimeFormat::Iso, _) => value
                .text()
                .ok_or(TimeError::NotATime)
                .and_then(|text| parse_time_text(&text, zone)),
            (TimeFormat::Chrono(format), _) => value
                .text()
                .ok_or(TimeError::NotATime)
                .and_then(|text| parse_time_with_format(&text, format, zone)),
        };
        parsed.map_err(|error| {
            let shown = value.text().map(Cow::into_owned).unwrap_or_default();
            malformed(error.reason(field, &shown, || {
                format!("{field} is not a time: {shown:?}")
            }))
        })
    }

    fn read(&self, values: &Values<'_>) -> Result<PlateRead, DecodeError> {
        let plate = self.text(values, Slot::Plate).ok_or_else(|| {
            malformed(format!(
                "no plate text (field {:?} is absent or empty)",
                self.source_of(Slot::Plate)
            ))
        })?;
        let observed_at = self.observed_at(values)?;
        let confidence = match self.number(values, Slot::Confidence)? {
            Some(value) if self.confidence_scale == 100.0 => confidence_from_percent(value),
            Some(value) => value as f32,
            None => self
                .mapping
                .confidence_value
                .map(|value| value as f32)
                .ok_or_else(|| {
                    malformed(format!(
                        "no confidence (field {:?} is absent or empty)",
                        self.source_of(Slot::Confidence)
                    ))
                })?,
        };
        let reader_id = self
            .text(values, Slot::ReaderId)
            .map(Cow::into_owned)
            .or_else(|| self.mapping.reader_id_value.clone())
            .ok_or_else(|| {
                malformed(format!(
                    "no reader id (field {:?} is absent or empty)",
                    self.source_of(Slot::ReaderId)
                ))
            })?;
        let make = self
            .text(values, Slot::Make)
            .and_then(|raw| canonical_make(&raw));
        let model = self
            .text(values, Slot::Model)
            .and_then(|raw| canonical_model(&raw, make.as_deref()));
        let vehicle = VehicleAttributes {
            color: self
                .text(values, Slot::Color)
                .and_then(|raw| canonical_color(&raw))
                .map(|color| Attribute::new(color, None)),
            body_type: self
                .text(values, Slot::BodyType)
                .and_then(|raw| canonical_body_type(&raw))
                .map(|body| Attribute::new(body, None)),
            make: make.map(|make| Attribute::new(make, None)),
            model: model.map(|model| Attribute::new(model, None)),
        };
        let image = |slot: Slot| match &values[slot as usize] {
            Some(Lenient::Text(text)) => self.context.store_inline_image(FORMAT, text),
            _ => Ok(None),
        };
        Ok(PlateRead {
            read_id: String::new(),
            vendor: self.vendor.clone(),
            reader_id,
            camera_id: self.text(values, Slot::CameraId).map(Cow::into_owned),
            observed_at,
            ingested_at: None,
            plate: plate.into_owned(),
            plate_norm: String::new(),
            jurisdiction: self.text(values, Slot::Jurisdiction).map(Cow::into_owned),
            confidence,
            lat: self.number(values, Slot::Lat)?,
            lon: self.number(values, Slot::Lon)?,
            heading: self
                .number(values, Slot::Heading)?
                .map(|heading| heading as f32),
            motion: None,
            vehicle,
            images: ImageRefs {
                plate_crop: image(Slot::PlateCrop)?,
                overview: image(Slot::Overview)?,
            },
            embedding: None,
            source: None,
            frames: 1,
            last_observed_at: None,
            duplicate_of: None,
        })
    }

    fn json_records<'de>(root: &PathNode, text: &'de str) -> Result<Vec<Values<'de>>, DecodeError> {
        let mut records = Vec::new();
        let mut deserializer = serde_json::Deserializer::from_str(text);
        // `end` succeeds once only whitespace is left: the values are whitespace-separated.
        while deserializer.end().is_err() {
            RecordsSeed {
                root,
                records: &mut records,
            }
            .deserialize(&mut deserializer)
            .map_err(|error| malformed(error.to_string()))?;
        }
        Ok(records)
    }

    fn csv_values<'de>(
        layout: &CsvLayout,
        text: &'de str,
    ) -> Result<(Vec<Values<'de>>, bool), DecodeError> {
        let mut records = Vec::new();
        let mut saw_header = false;
        for (index, fields) in csv_records(text, layout.delimiter)
            .map_err(malformed)?
            .into_iter()
            .enumerate()
        {
            let is_header = fields.len() == layout.columns.len()
                && fields
                    .iter()
                    .zip(&layout.columns)
                    .all(|(field, column)| field.trim().eq_ignore_ascii_case(column));
            if is_header {
                saw_header = true;
                continue;
            }
            if fields.len() != layout.columns.len() {
                return Err(malformed(format!(
                    "CSV record {} has {} fields, `columns` names {}",
                    index + 1,
                    fields.len(),
                    layout.columns.len()
                )));
            }
            let mut values = empty_values();
            for (field, slots) in fields.into_iter().zip(&layout.slots) {
                for slot in slots {
                    values[*slot as usize] = Some(Lenient::Text(field.clone()));
                }
            }
            records.push(values);
        }
        Ok((records, saw_header))
    }
}

impl ReadDecoder for GenericDecoder {
    fn format(&self) -> &'static str {
        FORMAT
    }

    fn decode(&self, payload: &[u8], reads: &mut Vec<PlateRead>) -> Result<Decoded, DecodeError> {
        let text = payload_text(payload)?;
        let records = match &self.layout {
            Layout::Ndjson(root) => Self::json_records(root, text)?,
            Layout::Csv(layout) => {
                let (records, saw_header) = Self::csv_values(layout, text)?;
                if records.is_empty() && saw_header {
                    return Ok(Decoded::NotARead { kind: "csv_header" });
                }
                records
            }
        };
        if records.is_empty() {
            return Err(DecodeError::Empty);
        }
        let count = records.len();
        let first = reads.len();
        for (index, values) in records.iter().enumerate() {
            match self.read(values) {
                Ok(read) => reads.push(read),
                Err(error) => {
                    reads.truncate(first);
                    return Err(match error {
                        DecodeError::Malformed { format, detail } if count > 1 => {
                            DecodeError::Malformed {
                                format,
                                detail: format!("record {} of {count}: {detail}", index + 1),
                            }
                        }
                        other => other,
                    });
                }
            }
        }
        Ok(Decoded::Reads(count))
    }
}

/// The example vendor's message for `read` (the mapping in `schemas/examples/generic/`), so the
/// simulator can feed a topic configured as `generic` with that mapping.
pub fn encode_simulated(read: &PlateRead) -> Vec<u8> {
    let value = |attribute: &Option<Attribute>| attribute.as_ref().map(|a| a.value.clone());
    let message = serde_json::json!({
        "event": "plate",
        "site": { "device": read.reader_id, "lane": read.camera_id },
        "time": read.observed_at.to_string(),
        "detections": [{
            "text": read.plate,
            "score": (f64::from(read.confidence) * 1000.0).round() / 10.0,
            "region": read.jurisdiction,
        }],
        "gps": { "lat": read.lat, "lng": read.lon, "bearing": read.heading },
        "car": {
            "brand": value(&read.vehicle.make),
            "model": value(&read.vehicle.model),
            "colour": value(&read.vehicle.color),
            "kind": value(&read.vehicle.body_type),
        },
        "media": { "crop": read.images.plate_crop, "scene": read.images.overview },
    });
    message.to_string().into_bytes()
}

/// The mapping [`encode_simulated`] writes for (the one in `schemas/examples/generic/mapping.json`).
pub fn simulated_mapping() -> GenericMapping {
    let field = |path: &str| Some(path.to_owned());
    GenericMapping {
        syntax: GenericSyntax::Ndjson,
        vendor: field("parkeye"),
        plate: field("detections.0.text"),
        jurisdiction: field("detections.0.region"),
        observed_at: field("time"),
        confidence: field("detections.0.score"),
        confidence_scale: Some(100.0),
        reader_id: field("site.device"),
        camera_id: field("site.lane"),
        lat: field("gps.lat"),
        lon: field("gps.lng"),
        heading: field("gps.bearing"),
        make: field("car.brand"),
        model: field("car.model"),
        color: field("car.colour"),
        body_type: field("car.kind"),
        plate_crop: field("media.crop"),
        overview: field("media.scene"),
        ..GenericMapping::default()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::images::MemoryImageStore;
    use crate::normalize::normalize_read;
    use crate::vendor::time::parse_zone;

    fn context() -> DecodeContext {
        DecodeContext::new(Arc::new(MemoryImageStore::default()))
            .with_timezone(parse_zone("America/New_York").unwrap())
    }

    fn csv_mapping() -> GenericMapping {
        GenericMapping {
            syntax: GenericSyntax::Csv,
            columns: Some(
                [
                    "cam", "ts", "plate", "state", "conf", "lat", "lon", "make", "color",
                ]
                .map(str::to_owned)
                .to_vec(),
            ),
            plate: Some("plate".into()),
            jurisdiction: Some("state".into()),
            observed_at: Some("ts".into()),
            observed_at_format: Some("%m/%d/%Y %H:%M:%S".into()),
            confidence: Some("conf".into()),
            confidence_scale: Some(100.0),
            reader_id: Some("cam".into()),
            lat: Some("lat".into()),
            lon: Some("lon".into()),
            make: Some("make".into()),
            color: Some("color".into()),
            ..GenericMapping::default()
        }
    }

    fn decode(
        mapping: GenericMapping,
        payload: &str,
    ) -> Result<(Decoded, Vec<PlateRead>), DecodeError> {
        let decoder = GenericDecoder::new(mapping, context()).unwrap();
        let mut reads = Vec::new();
        let decoded = decoder.decode(payload.as_bytes(), &mut reads)?;
        Ok((decoded, reads))
    }

    fn at(text: &str) -> Timestamp {
        Timestamp::parse_rfc3339(text).unwrap()
    }

    #[test]
    fn mapping_mistakes_are_refused_with_their_reason() {
        let ndjson = simulated_mapping();
        let cases: Vec<(GenericMapping, &str)> = vec![
            (
                GenericMapping {
                    plate: None,
                    ..ndjson.clone()
                },
                "`plate` is required",
            ),
            (
                GenericMapping {
                    observed_at: Some(" ".into()),
                    ..ndjson.clone()
                },
                "`observed_at` is required",
            ),
            (
                GenericMapping {
                    reader_id: None,
                    ..ndjson.clone()
                },
                "reader identity",
            ),
            (
                GenericMapping {
                    confidence: None,
                    ..ndjson.clone()
                },
                "confidence is required",
            ),
            (
                GenericMapping {
                    confidence_scale: Some(10.0),
                    ..ndjson.clone()
                },
                "neither 1 nor 100",
            ),
            (
                GenericMapping {
                    observed_at_format: Some("dd.mm.yyyy".into()),
                    ..ndjson.clone()
                },
                "observed_at_format",
            ),
            (
                GenericMapping {
                    plate: Some("a..b".into()),
                    ..ndjson.clone()
                },
                "empty segment",
            ),
            (
                GenericMapping {
                    camera_id: Some("site.device.name".into()),
                    ..ndjson.clone()
                },
                "runs through",
            ),
            (
                GenericMapping {
                    columns: Some(vec!["a".into()]),
                    ..ndjson.clone()
                },
                "csv",
            ),
            (
                GenericMapping {
                    columns: None,
                    ..csv_mapping()
                },
                "needs `columns`",
            ),
            (
                GenericMapping {
                    plate: Some("tag".into()),
                    ..csv_mapping()
                },
                "plate column \"tag\"",
            ),
            (
                GenericMapping {
                    delimiter: Some('"'),
                    ..csv_mapping()
                },
                "delimiter",
            ),
        ];
        for (mapping, needle) in cases {
            let error = GenericDecoder::new(mapping, context()).err().unwrap();
            assert!(matches!(error, FormatError::InvalidMapping(_)), "{error}");
            assert!(error.to_string().contains(needle), "{needle}: {error}");
        }
        let toml_style: Result<GenericMapping, _> =
            serde_json::from_str(r#"{"plate":"p","plate_text":"q"}"#);
        assert!(toml_style.is_err(), "unknown keys are refused");
    }

    #[test]
    fn csv_lines_with_quotes_headers_and_several_reads() {
        let payload = "cam,ts,plate,state,conf,lat,lon,make,color\r\n\
                       gate-1,11/24/2026 12:03:12,\"ABC 123\",DC,91.5,38.9,-77.03,Chevy,\"Gray, dark\"\n\
                       \n\
                       gate-1,11/24/2026 12:03:14,\"X\"\"Y1\",,88,,,-,\n";
        let (decoded, reads) = decode(csv_mapping(), payload).unwrap();
        assert_eq!(decoded, Decoded::Reads(2));
        let first = &reads[0];
        assert_eq!(first.vendor, "generic");
        assert_eq!(first.reader_id, "gate-1");
        assert_eq!(first.plate, "ABC 123");
        assert_eq!(first.observed_at, at("2026-11-24T17:03:12Z"));
        assert!((first.confidence - 0.915).abs() < 1e-6);
        assert_eq!((first.lat, first.lon), (Some(38.9), Some(-77.03)));
        assert_eq!(first.vehicle.make.as_ref().unwrap().value, "chevrolet");
        assert_eq!(first.vehicle.color.as_ref().unwrap().value, "gray");
        let second = &reads[1];
        assert_eq!(second.plate, "X\"Y1");
        assert_eq!(second.jurisdiction, None);
        assert_eq!((second.lat, second.lon), (None, None));
        assert_eq!(second.vehicle, VehicleAttributes::default());

        let (decoded, reads) = decode(
            csv_mapping(),
            "cam,ts,plate,state,conf,lat,lon,make,color\n",
        )
        .unwrap();
        assert_eq!(decoded, Decoded::NotARead { kind: "csv_header" });
        assert!(reads.is_empty());
    }

    #[test]
    fn csv_errors_name_the_record_and_the_field() {
        for (payload, needle) in [
            ("gate-1,11/24/2026 12:03:12,ABC123,DC,91\n", "has 5 fields"),
            (
                "gate-1,11/24/2026 12:03:12,\"ABC123,DC,91,,,,\n",
                "not closed",
            ),
            ("gate-1,24.11.2026,ABC123,DC,91,,,,\n", "ts is not a time"),
            (
                "gate-1,11/24/2026 12:03:12,ABC123,DC,high,,,,\n",
                "conf is not a number",
            ),
            (
                "gate-1,11/24/2026 12:03:12,A1,DC,91,,,,\ngate-1,11/24/2026 12:03:12,,DC,91,,,,\n",
                "record 2 of 2: no plate",
            ),
        ] {
            let error = decode(csv_mapping(), payload).unwrap_err();
            assert_eq!(error.code(), "malformed");
            assert!(error.to_string().contains(needle), "{needle}: {error}");
        }
        let semicolons = GenericMapping {
            delimiter: Some(';'),
            ..csv_mapping()
        };
        let (_, reads) =
            decode(semicolons, "gate-1;11/24/2026 12:03:12;ABC123;MD;77;;;;\n").unwrap();
        assert_eq!(reads[0].jurisdiction.as_deref(), Some("MD"));
    }

    #[test]
    fn json_paths_reach_nested_objects_and_array_elements() {
        let payload = r#"{"event":"plate","site":{"device":"pk-12","lane":2},"time":"2026-11-24T12:03:12",
            "detections":[{"text":"7XK4412","score":"93.2","region":"us-va","extra":{"deep":[1,2,3]}},{"text":"IGNORED"}],
            "gps":{"lat":38.88,"lng":"-77.01","bearing":270},"car":{"brand":"Honda","kind":"Pickup Truck"},
            "media":{"crop":"https://cdn.example/c.jpg","scene":null}}"#;
        let (decoded, reads) = decode(simulated_mapping(), payload).unwrap();
        assert_eq!(decoded, Decoded::Reads(1));
        let read = &reads[0];
        assert_eq!(read.vendor, "parkeye");
        assert_eq!(read.reader_id, "pk-12");
        assert_eq!(read.camera_id.as_deref(), Some("2"));
        assert_eq!(read.plate, "7XK4412");
        assert_eq!(
            read.observed_at,
            at("2026-11-24T17:03:12Z"),
            "naive → reader zone"
        );
        assert!((read.confidence - 0.932).abs() < 1e-6);
        assert_eq!(read.jurisdiction.as_deref(), Some("us-va"));
        assert_eq!(
            (read.lat, read.lon, read.heading),
            (Some(38.88), Some(-77.01), Some(270.0))
        );
        assert_eq!(read.vehicle.body_type.as_ref().unwrap().value, "pickup");
        assert_eq!(
            read.images.plate_crop.as_deref(),
            Some("https://cdn.example/c.jpg")
        );
        assert_eq!(read.images.overview, None);
    }

    #[test]
    fn several_json_records_per_message_and_json_errors() {
        let mapping = GenericMapping {
            plate: Some("p".into()),
            observed_at: Some("t".into()),
            observed_at_format: Some("epoch_s".into()),
            confidence_value: Some(0.8),
            reader_id_value: Some("fixed-reader".into()),
            ..GenericMapping::default()
        };
        let lines = "{\"p\":\"A1\",\"t\":1795539792}\n{\"p\":\"B2\",\"t\":\"1795539793.5\"}\n";
        let (decoded, reads) = decode(mapping.clone(), lines).unwrap();
        assert_eq!(decoded, Decoded::Reads(2));
        assert_eq!(reads[1].observed_at, at("2026-11-24T17:03:13.500Z"));
        assert_eq!(reads[1].reader_id, "fixed-reader");
        assert!((reads[0].confidence - 0.8).abs() < 1e-6);
        let array = r#"[{"p":"A1","t":1795539792},{"p":"B2","t":1795539793}]"#;
        assert_eq!(decode(mapping.clone(), array).unwrap().0, Decoded::Reads(2));
        for (payload, needle) in [
            (
                r#"{"p":{"text":"A1"},"t":1795539792}"#,
                "a number or a text at \"p\"",
            ),
            (r#"{"p":"A1","t":1795539792"#, "EOF"),
            (r#"{"p":"A1"}"#, "no read time"),
            (r#"{"p":"A1","t":1795539792} garbage"#, "expected value"),
        ] {
            let error = decode(mapping.clone(), payload).unwrap_err();
            assert_eq!(error.code(), "malformed", "{payload}");
            assert!(error.to_string().contains(needle), "{needle}: {error}");
        }
        assert_eq!(decode(mapping, "[]").unwrap_err().code(), "empty_message");
    }

    #[test]
    fn the_example_mapping_matches_the_simulated_one() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../schemas/examples/generic/mapping.json"
        );
        let text = std::fs::read_to_string(path).unwrap();
        let mapping: GenericMapping = serde_json::from_str(&text).unwrap();
        assert_eq!(mapping, simulated_mapping());
    }

    #[test]
    fn simulated_messages_decode_back_to_the_read() {
        let read = PlateRead {
            read_id: String::new(),
            vendor: "simulator".into(),
            reader_id: "dc-r-003".into(),
            camera_id: Some("dc-r-003-cam1".into()),
            observed_at: at("2026-11-24T17:03:12.345Z"),
            ingested_at: None,
            plate: "DC 4471".into(),
            plate_norm: String::new(),
            jurisdiction: Some("US-DC".into()),
            confidence: 0.913,
            lat: Some(38.912_345_6),
            lon: Some(-77.031_234_5),
            heading: Some(180.0),
            motion: None,
            vehicle: VehicleAttributes {
                make: Some(Attribute::new("ford", None)),
                model: Some(Attribute::new("f-150", None)),
                color: Some(Attribute::new("white", None)),
                body_type: Some(Attribute::new("pickup", None)),
            },
            images: ImageRefs {
                plate_crop: Some("https://img.example/crops/9.jpg".into()),
                overview: Some("https://img.example/overview/9.jpg".into()),
            },
            embedding: None,
            source: None,
            frames: 1,
            last_observed_at: None,
            duplicate_of: None,
        };
        let payload = encode_simulated(&read);
        let (_, mut reads) =
            decode(simulated_mapping(), std::str::from_utf8(&payload).unwrap()).unwrap();
        let mut decoded = reads.pop().unwrap();
        normalize_read(&mut decoded, at("2026-11-24T18:00:00Z")).unwrap();
        assert_eq!(decoded.plate, read.plate);
        assert_eq!(decoded.observed_at, read.observed_at);
        assert_eq!(decoded.jurisdiction, read.jurisdiction);
        assert!((decoded.confidence - read.confidence).abs() < 1e-3);
        assert_eq!((decoded.lat, decoded.lon), (read.lat, read.lon));
        assert_eq!(decoded.heading, read.heading);
        assert_eq!(decoded.reader_id, read.reader_id);
        assert_eq!(decoded.camera_id, read.camera_id);
        assert_eq!(decoded.vehicle, read.vehicle);
        assert_eq!(decoded.images, read.images);
    }
}
