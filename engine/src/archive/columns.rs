//! The archive's tables as Arrow columns: the `reads` and `alerts` schemas (documented in
//! `schemas/archive.md`) and the builders that turn reads and alerts into record batches.

use std::sync::{Arc, LazyLock};

use arrow::array::{
    ArrayRef, BooleanBuilder, Float32Builder, Float64Builder, Int32Builder, Int64Builder,
    ListBuilder, StringBuilder, TimestampMillisecondBuilder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;

use crate::alert::Alert;
use crate::geo::{geohash_into, ARCHIVE_GEOHASH_PRECISION};
use crate::read::{Attribute, Motion, PlateRead, SourcePosition, Timestamp};

fn utc_millis() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
}

pub static READS_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("read_id", DataType::Utf8, false),
        Field::new("vendor", DataType::Utf8, false),
        Field::new("reader_id", DataType::Utf8, false),
        Field::new("camera_id", DataType::Utf8, true),
        Field::new("observed_at", utc_millis(), false),
        Field::new("ingested_at", utc_millis(), true),
        Field::new("plate", DataType::Utf8, false),
        Field::new("plate_norm", DataType::Utf8, false),
        Field::new("jurisdiction", DataType::Utf8, true),
        Field::new("confidence", DataType::Float32, false),
        Field::new("lat", DataType::Float64, true),
        Field::new("lon", DataType::Float64, true),
        Field::new("heading", DataType::Float32, true),
        Field::new("make", DataType::Utf8, true),
        Field::new("make_confidence", DataType::Float32, true),
        Field::new("model", DataType::Utf8, true),
        Field::new("model_confidence", DataType::Float32, true),
        Field::new("color", DataType::Utf8, true),
        Field::new("color_confidence", DataType::Float32, true),
        Field::new("body_type", DataType::Utf8, true),
        Field::new("body_type_confidence", DataType::Float32, true),
        Field::new("plate_crop_uri", DataType::Utf8, true),
        Field::new("overview_uri", DataType::Utf8, true),
        Field::new(
            "embedding",
            DataType::List(Arc::new(Field::new("item", DataType::Float32, true))),
            true,
        ),
        Field::new("source_topic", DataType::Utf8, true),
        Field::new("source_partition", DataType::Int32, true),
        Field::new("source_offset", DataType::Int64, true),
        Field::new("motion", DataType::Utf8, true),
        Field::new("frames", DataType::Int32, false),
        Field::new("last_observed_at", utc_millis(), true),
        Field::new("duplicate_of", DataType::Utf8, true),
        Field::new("geohash", DataType::Utf8, true),
    ]))
});

pub static ALERTS_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("alert_id", DataType::Utf8, false),
        Field::new("raised_at", utc_millis(), false),
        Field::new("read_id", DataType::Utf8, false),
        Field::new("list", DataType::Utf8, false),
        Field::new("priority", DataType::Int32, false),
        Field::new("match_kind", DataType::Utf8, false),
        Field::new("score", DataType::Float32, false),
        Field::new("jurisdiction_agreement", DataType::Utf8, false),
        Field::new("entry_plate", DataType::Utf8, false),
        Field::new("entry_jurisdiction", DataType::Utf8, true),
        Field::new("reason", DataType::Utf8, true),
        Field::new("case_number", DataType::Utf8, true),
        Field::new("description", DataType::Utf8, true),
        Field::new("explanation", DataType::Utf8, false),
        Field::new("read_plate", DataType::Utf8, false),
        Field::new("read_plate_norm", DataType::Utf8, false),
        Field::new("jurisdiction", DataType::Utf8, true),
        Field::new("confidence", DataType::Float32, false),
        Field::new("observed_at", utc_millis(), false),
        Field::new("reader_id", DataType::Utf8, false),
        Field::new("camera_id", DataType::Utf8, true),
        Field::new("lat", DataType::Float64, true),
        Field::new("lon", DataType::Float64, true),
        Field::new("plate_crop_uri", DataType::Utf8, true),
        Field::new("overview_uri", DataType::Utf8, true),
        Field::new("alert_json", DataType::Utf8, false),
        Field::new("source_topic", DataType::Utf8, true),
        Field::new("source_partition", DataType::Int32, true),
        Field::new("source_offset", DataType::Int64, true),
        Field::new("route", DataType::Utf8, false),
        Field::new("suppressed", DataType::Boolean, false),
        Field::new("geohash", DataType::Utf8, true),
        Field::new("attribute_matches", DataType::Utf8, true),
        Field::new("appearance_similarity", DataType::Float32, true),
    ]))
});

/// Rows of one archive table, accumulated until they are encoded as a record batch.
pub trait TableColumns: Default {
    type Row;
    fn schema() -> SchemaRef;
    fn push(&mut self, row: &Self::Row);
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Encodes and resets the builders.
    fn finish(&mut self) -> Result<RecordBatch, ArrowError>;
}

/// The spatial key radius queries prune on; null without a (valid) position.
fn push_position_geohash(column: &mut StringBuilder, lat: Option<f64>, lon: Option<f64>) {
    let mut cell = [0u8; ARCHIVE_GEOHASH_PRECISION];
    column.append_option(
        lat.zip(lon)
            .and_then(|(lat, lon)| geohash_into(lat, lon, &mut cell)),
    );
}

fn timestamps() -> TimestampMillisecondBuilder {
    TimestampMillisecondBuilder::new().with_timezone("UTC")
}

struct AttributeColumns {
    value: StringBuilder,
    confidence: Float32Builder,
}

impl Default for AttributeColumns {
    fn default() -> Self {
        Self {
            value: StringBuilder::new(),
            confidence: Float32Builder::new(),
        }
    }
}

impl AttributeColumns {
    fn push(&mut self, attribute: Option<&Attribute>) {
        self.value
            .append_option(attribute.map(|a| a.value.as_str()));
        self.confidence
            .append_option(attribute.and_then(|a| a.confidence));
    }
}

#[derive(Default)]
struct SourceColumns {
    topic: StringBuilder,
    partition: Int32Builder,
    offset: Int64Builder,
}

impl SourceColumns {
    fn push(&mut self, source: Option<&SourcePosition>) {
        self.topic.append_option(source.map(|s| s.topic.as_str()));
        self.partition.append_option(source.map(|s| s.partition));
        self.offset.append_option(source.map(|s| s.offset));
    }

    fn finish(&mut self) -> [ArrayRef; 3] {
        [
            Arc::new(self.topic.finish()),
            Arc::new(self.partition.finish()),
            Arc::new(self.offset.finish()),
        ]
    }
}

pub struct ReadColumns {
    read_id: StringBuilder,
    vendor: StringBuilder,
    reader_id: StringBuilder,
    camera_id: StringBuilder,
    observed_at: TimestampMillisecondBuilder,
    ingested_at: TimestampMillisecondBuilder,
    plate: StringBuilder,
    plate_norm: StringBuilder,
    jurisdiction: StringBuilder,
    confidence: Float32Builder,
    lat: Float64Builder,
    lon: Float64Builder,
    heading: Float32Builder,
    make: AttributeColumns,
    model: AttributeColumns,
    color: AttributeColumns,
    body_type: AttributeColumns,
    plate_crop_uri: StringBuilder,
    overview_uri: StringBuilder,
    embedding: ListBuilder<Float32Builder>,
    source: SourceColumns,
    motion: StringBuilder,
    frames: Int32Builder,
    last_observed_at: TimestampMillisecondBuilder,
    duplicate_of: StringBuilder,
    geohash: StringBuilder,
    rows: usize,
}

impl Default for ReadColumns {
    fn default() -> Self {
        Self {
            read_id: StringBuilder::new(),
            vendor: StringBuilder::new(),
            reader_id: StringBuilder::new(),
            camera_id: StringBuilder::new(),
            observed_at: timestamps(),
            ingested_at: timestamps(),
            plate: StringBuilder::new(),
            plate_norm: StringBuilder::new(),
            jurisdiction: StringBuilder::new(),
            confidence: Float32Builder::new(),
            lat: Float64Builder::new(),
            lon: Float64Builder::new(),
            heading: Float32Builder::new(),
            make: AttributeColumns::default(),
            model: AttributeColumns::default(),
            color: AttributeColumns::default(),
            body_type: AttributeColumns::default(),
            plate_crop_uri: StringBuilder::new(),
            overview_uri: StringBuilder::new(),
            embedding: ListBuilder::new(Float32Builder::new()),
            source: SourceColumns::default(),
            motion: StringBuilder::new(),
            frames: Int32Builder::new(),
            last_observed_at: timestamps(),
            duplicate_of: StringBuilder::new(),
            geohash: StringBuilder::new(),
            rows: 0,
        }
    }
}

impl TableColumns for ReadColumns {
    type Row = PlateRead;

    fn schema() -> SchemaRef {
        Arc::clone(&READS_SCHEMA)
    }

    fn push(&mut self, read: &PlateRead) {
        self.read_id.append_value(&read.read_id);
        self.vendor.append_value(&read.vendor);
        self.reader_id.append_value(&read.reader_id);
        self.camera_id.append_option(read.camera_id.as_deref());
        self.observed_at.append_value(read.observed_at.millis());
        self.ingested_at
            .append_option(read.ingested_at.map(Timestamp::millis));
        self.plate.append_value(&read.plate);
        self.plate_norm.append_value(&read.plate_norm);
        self.jurisdiction
            .append_option(read.jurisdiction.as_deref());
        self.confidence.append_value(read.confidence);
        self.lat.append_option(read.lat);
        self.lon.append_option(read.lon);
        self.heading.append_option(read.heading);
        self.make.push(read.vehicle.make.as_ref());
        self.model.push(read.vehicle.model.as_ref());
        self.color.push(read.vehicle.color.as_ref());
        self.body_type.push(read.vehicle.body_type.as_ref());
        self.plate_crop_uri
            .append_option(read.images.plate_crop.as_deref());
        self.overview_uri
            .append_option(read.images.overview.as_deref());
        match &read.embedding {
            Some(values) => {
                self.embedding.values().append_slice(values);
                self.embedding.append(true);
            }
            None => self.embedding.append(false),
        }
        self.source.push(read.source.as_ref());
        self.motion.append_option(read.motion.map(Motion::as_str));
        self.frames
            .append_value(i32::try_from(read.frames).unwrap_or(i32::MAX));
        self.last_observed_at
            .append_option(read.last_observed_at.map(Timestamp::millis));
        self.duplicate_of
            .append_option(read.duplicate_of.as_deref());
        push_position_geohash(&mut self.geohash, read.lat, read.lon);
        self.rows += 1;
    }

    fn len(&self) -> usize {
        self.rows
    }

    fn finish(&mut self) -> Result<RecordBatch, ArrowError> {
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(self.read_id.finish()),
            Arc::new(self.vendor.finish()),
            Arc::new(self.reader_id.finish()),
            Arc::new(self.camera_id.finish()),
            Arc::new(self.observed_at.finish()),
            Arc::new(self.ingested_at.finish()),
            Arc::new(self.plate.finish()),
            Arc::new(self.plate_norm.finish()),
            Arc::new(self.jurisdiction.finish()),
            Arc::new(self.confidence.finish()),
            Arc::new(self.lat.finish()),
            Arc::new(self.lon.finish()),
            Arc::new(self.heading.finish()),
        ];
        for attribute in [
            &mut self.make,
            &mut self.model,
            &mut self.color,
            &mut self.body_type,
        ] {
            columns.push(Arc::new(attribute.value.finish()));
            columns.push(Arc::new(attribute.confidence.finish()));
        }
        columns.push(Arc::new(self.plate_crop_uri.finish()));
        columns.push(Arc::new(self.overview_uri.finish()));
        columns.push(Arc::new(self.embedding.finish()));
        columns.extend(self.source.finish());
        columns.push(Arc::new(self.motion.finish()));
        columns.push(Arc::new(self.frames.finish()));
        columns.push(Arc::new(self.last_observed_at.finish()));
        columns.push(Arc::new(self.duplicate_of.finish()));
        columns.push(Arc::new(self.geohash.finish()));
        self.rows = 0;
        RecordBatch::try_new(Self::schema(), columns)
    }
}

pub struct AlertColumns {
    alert_id: StringBuilder,
    raised_at: TimestampMillisecondBuilder,
    read_id: StringBuilder,
    list: StringBuilder,
    priority: Int32Builder,
    match_kind: StringBuilder,
    score: Float32Builder,
    jurisdiction_agreement: StringBuilder,
    entry_plate: StringBuilder,
    entry_jurisdiction: StringBuilder,
    reason: StringBuilder,
    case_number: StringBuilder,
    description: StringBuilder,
    explanation: StringBuilder,
    read_plate: StringBuilder,
    read_plate_norm: StringBuilder,
    jurisdiction: StringBuilder,
    confidence: Float32Builder,
    observed_at: TimestampMillisecondBuilder,
    reader_id: StringBuilder,
    camera_id: StringBuilder,
    lat: Float64Builder,
    lon: Float64Builder,
    plate_crop_uri: StringBuilder,
    overview_uri: StringBuilder,
    alert_json: StringBuilder,
    source: SourceColumns,
    route: StringBuilder,
    suppressed: BooleanBuilder,
    geohash: StringBuilder,
    attribute_matches: StringBuilder,
    appearance_similarity: Float32Builder,
    rows: usize,
}

impl Default for AlertColumns {
    fn default() -> Self {
        Self {
            alert_id: StringBuilder::new(),
            raised_at: timestamps(),
            read_id: StringBuilder::new(),
            list: StringBuilder::new(),
            priority: Int32Builder::new(),
            match_kind: StringBuilder::new(),
            score: Float32Builder::new(),
            jurisdiction_agreement: StringBuilder::new(),
            entry_plate: StringBuilder::new(),
            entry_jurisdiction: StringBuilder::new(),
            reason: StringBuilder::new(),
            case_number: StringBuilder::new(),
            description: StringBuilder::new(),
            explanation: StringBuilder::new(),
            read_plate: StringBuilder::new(),
            read_plate_norm: StringBuilder::new(),
            jurisdiction: StringBuilder::new(),
            confidence: Float32Builder::new(),
            observed_at: timestamps(),
            reader_id: StringBuilder::new(),
            camera_id: StringBuilder::new(),
            lat: Float64Builder::new(),
            lon: Float64Builder::new(),
            plate_crop_uri: StringBuilder::new(),
            overview_uri: StringBuilder::new(),
            alert_json: StringBuilder::new(),
            source: SourceColumns::default(),
            route: StringBuilder::new(),
            suppressed: BooleanBuilder::new(),
            geohash: StringBuilder::new(),
            attribute_matches: StringBuilder::new(),
            appearance_similarity: Float32Builder::new(),
            rows: 0,
        }
    }
}

impl TableColumns for AlertColumns {
    type Row = Alert;

    fn schema() -> SchemaRef {
        Arc::clone(&ALERTS_SCHEMA)
    }

    fn push(&mut self, alert: &Alert) {
        self.alert_id.append_value(&alert.alert_id);
        self.raised_at.append_value(alert.raised_at.millis());
        self.read_id.append_value(&alert.read_id);
        self.list.append_value(&alert.list);
        self.priority.append_value(i32::from(alert.priority));
        self.match_kind.append_value(alert.match_kind.as_str());
        self.score.append_value(alert.score);
        self.jurisdiction_agreement
            .append_value(alert.jurisdiction_agreement.as_str());
        self.entry_plate.append_value(&alert.entry_plate);
        self.entry_jurisdiction
            .append_option(alert.entry_jurisdiction.as_deref());
        self.reason.append_option(alert.reason.as_deref());
        self.case_number.append_option(alert.case_number.as_deref());
        self.description.append_option(alert.description.as_deref());
        self.explanation.append_value(&alert.explanation);
        self.read_plate.append_value(&alert.read_plate);
        self.read_plate_norm.append_value(&alert.read_plate_norm);
        self.jurisdiction
            .append_option(alert.jurisdiction.as_deref());
        self.confidence.append_value(alert.confidence);
        self.observed_at.append_value(alert.observed_at.millis());
        self.reader_id.append_value(&alert.reader_id);
        self.camera_id.append_option(alert.camera_id.as_deref());
        self.lat.append_option(alert.lat);
        self.lon.append_option(alert.lon);
        self.plate_crop_uri
            .append_option(alert.images.plate_crop.as_deref());
        self.overview_uri
            .append_option(alert.images.overview.as_deref());
        // Serializing a struct of plain fields cannot fail; an empty object keeps the row valid if it ever did.
        let json = serde_json::to_string(alert).unwrap_or_else(|_| "{}".to_owned());
        self.alert_json.append_value(json);
        self.source.push(alert.source.as_ref());
        self.route.append_value(alert.route.as_str());
        self.suppressed.append_value(alert.suppressed);
        push_position_geohash(&mut self.geohash, alert.lat, alert.lon);
        self.attribute_matches.append_option(
            (!alert.attribute_matches.is_empty())
                .then(|| serde_json::to_string(&alert.attribute_matches).ok())
                .flatten(),
        );
        self.appearance_similarity
            .append_option(alert.appearance_similarity);
        self.rows += 1;
    }

    fn len(&self) -> usize {
        self.rows
    }

    fn finish(&mut self) -> Result<RecordBatch, ArrowError> {
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(self.alert_id.finish()),
            Arc::new(self.raised_at.finish()),
            Arc::new(self.read_id.finish()),
            Arc::new(self.list.finish()),
            Arc::new(self.priority.finish()),
            Arc::new(self.match_kind.finish()),
            Arc::new(self.score.finish()),
            Arc::new(self.jurisdiction_agreement.finish()),
            Arc::new(self.entry_plate.finish()),
            Arc::new(self.entry_jurisdiction.finish()),
            Arc::new(self.reason.finish()),
            Arc::new(self.case_number.finish()),
            Arc::new(self.description.finish()),
            Arc::new(self.explanation.finish()),
            Arc::new(self.read_plate.finish()),
            Arc::new(self.read_plate_norm.finish()),
            Arc::new(self.jurisdiction.finish()),
            Arc::new(self.confidence.finish()),
            Arc::new(self.observed_at.finish()),
            Arc::new(self.reader_id.finish()),
            Arc::new(self.camera_id.finish()),
            Arc::new(self.lat.finish()),
            Arc::new(self.lon.finish()),
            Arc::new(self.plate_crop_uri.finish()),
            Arc::new(self.overview_uri.finish()),
            Arc::new(self.alert_json.finish()),
        ];
        columns.extend(self.source.finish());
        columns.push(Arc::new(self.route.finish()));
        columns.push(Arc::new(self.suppressed.finish()));
        columns.push(Arc::new(self.geohash.finish()));
        columns.push(Arc::new(self.attribute_matches.finish()));
        columns.push(Arc::new(self.appearance_similarity.finish()));
        self.rows = 0;
        RecordBatch::try_new(Self::schema(), columns)
    }
}
