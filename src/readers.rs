//! From the `[readers]` and `[kafka]` settings to a pipeline: which decoder each raw topic gets,
//! where inline images go, how local reader times are read, and how vehicle passes are folded.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use platestream_connectors::kafka::KafkaSettings;
use platestream_engine::dedupe::DedupeConfig;
use platestream_engine::images::DirectoryImageStore;
use platestream_engine::matcher::Matcher;
use platestream_engine::pipeline::Pipeline;
use platestream_engine::vendor::{decoder_for, time::parse_zone, DecodeContext};

use crate::config::ReaderSettings;

pub fn decode_context(readers: &ReaderSettings) -> Result<DecodeContext> {
    let zone = parse_zone(&readers.timezone).with_context(|| {
        format!(
            "readers.timezone = {:?} is not an IANA time zone (like America/New_York or UTC)",
            readers.timezone
        )
    })?;
    Ok(
        DecodeContext::new(Arc::new(DirectoryImageStore::new(&readers.image_dir)))
            .with_timezone(zone),
    )
}

pub fn dedupe_config(readers: &ReaderSettings) -> Option<DedupeConfig> {
    (readers.dedupe_window_ms > 0).then(|| DedupeConfig {
        window: Duration::from_millis(readers.dedupe_window_ms),
        keep_duplicates: readers.keep_duplicates,
        resend_horizon: Duration::from_secs(readers.resend_horizon_secs),
    })
}

/// The pipeline for the configured raw topics.
pub fn pipeline_for(
    kafka: &KafkaSettings,
    readers: &ReaderSettings,
    matcher: Arc<dyn Matcher>,
) -> Result<Pipeline> {
    let context = decode_context(readers)?;
    let build = |format: &str, setting: &str| {
        decoder_for(format, readers.generic.as_ref(), &context)
            .with_context(|| format!("{setting} = {format:?}"))
    };
    let mut pipeline = Pipeline::new(build(&kafka.raw_format, "kafka.raw_format")?, matcher);
    for (topic, format) in &kafka.topic_formats {
        pipeline = pipeline.with_topic_decoder(
            topic.clone(),
            build(format, &format!("kafka.topic_formats.{topic}"))?,
        );
    }
    if let Some(dedupe) = dedupe_config(readers) {
        pipeline = pipeline.with_dedupe(dedupe);
    }
    if let Some(dim) = readers.embedding_dim {
        pipeline = pipeline.with_embedding_dim(dim);
    }
    Ok(pipeline)
}

/// Decoders for the `serve` vendors whose readers keep their own time zone
/// (`[ingest.vendors.NAME] reader_timezone`): `serve` checks their messages in that zone, and the
/// engine must read their local times in it too, not in `readers.timezone`.
pub fn with_vendor_zones(
    mut pipeline: Pipeline,
    ingest: &platestream_connectors::http::IngestSettings,
    readers: &ReaderSettings,
) -> Result<Pipeline> {
    let context = decode_context(readers)?;
    for (vendor, settings) in &ingest.vendors {
        let Some(zone_name) = &settings.reader_timezone else {
            continue;
        };
        let zone = parse_zone(zone_name).with_context(|| {
            format!(
                "ingest.vendors.{vendor}.reader_timezone = {zone_name:?} is not an IANA time zone"
            )
        })?;
        let decoder = decoder_for(
            &settings.format,
            readers.generic.as_ref(),
            &context.clone().with_timezone(zone),
        )
        .with_context(|| format!("ingest.vendors.{vendor}.format = {:?}", settings.format))?;
        pipeline = pipeline.with_vendor_decoder(vendor.clone(), decoder);
    }
    Ok(pipeline)
}
