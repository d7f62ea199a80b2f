//! Vendors' wire formats → the canonical read. One module per vendor; this module holds what they
//! share (the decoding context, confidence scales, inline images) and picks a decoder by name or,
//! for topics configured as `auto`, by sniffing the message.

pub mod axis;
pub mod generic;
pub mod genetec;
pub mod lenient;
pub mod plate_recognizer;
pub mod rekor;
pub mod scalar;
pub mod time;
pub mod vocabulary;

use std::sync::Arc;

use base64::Engine as _;
use chrono_tz::Tz;

use crate::decode::{CanonicalJsonDecoder, DecodeError, Decoded, ReadDecoder};
use crate::images::ImageStore;
use crate::read::{Attribute, PlateRead};

pub use generic::GenericMapping;

/// What every decoder may need beyond the bytes.
#[derive(Clone)]
pub struct DecodeContext {
    /// The zone of readers that send local times without an offset.
    pub reader_timezone: Tz,
    /// Where inline images go; the read keeps their references.
    pub images: Arc<dyn ImageStore>,
}

impl DecodeContext {
    pub fn new(images: Arc<dyn ImageStore>) -> Self {
        Self {
            reader_timezone: Tz::UTC,
            images,
        }
    }

    pub fn with_timezone(mut self, zone: Tz) -> Self {
        self.reader_timezone = zone;
        self
    }

    /// Moves an inline image (base64, optionally as a `data:` URI) into the image store and returns
    /// its reference. Text that already is a reference or a URL is returned unchanged; empty text
    /// and vendors' "no image" placeholders give `None`.
    pub fn store_inline_image(
        &self,
        format: &'static str,
        text: &str,
    ) -> Result<Option<String>, DecodeError> {
        let text = text.trim();
        if text.is_empty() || text == "-" || text.eq_ignore_ascii_case("null") {
            return Ok(None);
        }
        if crate::images::ImageRef::parse(text).is_some() || text.contains("://") {
            return Ok(Some(text.to_owned()));
        }
        let encoded = match text.split_once(";base64,") {
            Some((prefix, data)) if prefix.starts_with("data:") => data,
            _ => text,
        };
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded.as_bytes())
            .map_err(|error| DecodeError::Malformed {
                format,
                detail: format!("inline image is not base64: {error}"),
            })?;
        let reference = self
            .images
            .put(&bytes)
            .map_err(|error| DecodeError::ImageStore {
                detail: error.to_string(),
            })?;
        Ok(Some(reference.to_string()))
    }
}

/// Formats the simulator can write (`generic` needs a mapping, so it is left out).
pub const SIMULATED_FORMATS: &[&str] =
    &["canonical", "rekor", "plate_recognizer", "genetec", "axis"];

/// A canonical read as the given vendor's reader would send it (for the simulator's mixed-vendor
/// city); `None` for a format without an encoder.
pub fn encode_simulated(format: &str, read: &PlateRead) -> Option<Vec<u8>> {
    Some(match format {
        "canonical" => serde_json::to_vec(read).ok()?,
        "rekor" => rekor::encode_simulated(read),
        "plate_recognizer" => plate_recognizer::encode_simulated(read),
        "genetec" => genetec::encode_simulated(read),
        "axis" => axis::encode_simulated(read),
        _ => return None,
    })
}

/// A confidence on a 0–100 scale (Rekor, Genetec) as 0..1.
pub fn confidence_from_percent(percent: f64) -> f32 {
    (percent / 100.0) as f32
}

/// A confidence from a vendor that sends either scale (Axis firmware versions differ): values
/// above 1 are percentages. A 0–100 vendor reporting under 1% is indistinguishable, and such a
/// read is noise either way.
pub fn confidence_from_either_scale(value: f64) -> f32 {
    if value > 1.0 {
        confidence_from_percent(value)
    } else {
        value as f32
    }
}

/// An attribute from a canonical value and an optional confidence on the 0..1 scale.
pub fn attribute(value: Option<impl Into<String>>, confidence: Option<f32>) -> Option<Attribute> {
    value.map(|value| Attribute::new(value, confidence))
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FormatError {
    #[error("unknown format {0:?} (known: {known})", known = KNOWN_FORMATS.join(", "))]
    Unknown(String),
    #[error("format `generic` needs a column mapping")]
    GenericWithoutMapping,
    #[error("invalid generic mapping: {0}")]
    InvalidMapping(String),
}

/// The format names accepted in configuration.
pub const KNOWN_FORMATS: &[&str] = &[
    "canonical",
    "rekor",
    "plate_recognizer",
    "genetec",
    "axis",
    "generic",
    "auto",
];

/// Builds the decoder for a configured format. `generic` needs `mapping`; `auto` sniffs each
/// message and falls back to canonical JSON.
pub fn decoder_for(
    format: &str,
    mapping: Option<&GenericMapping>,
    context: &DecodeContext,
) -> Result<Arc<dyn ReadDecoder>, FormatError> {
    Ok(match format {
        "canonical" => Arc::new(CanonicalJsonDecoder),
        "rekor" => Arc::new(rekor::RekorDecoder::new(context.clone())),
        "plate_recognizer" => Arc::new(plate_recognizer::PlateRecognizerDecoder::new(
            context.clone(),
        )),
        "genetec" => Arc::new(genetec::GenetecDecoder::new(context.clone())),
        "axis" => Arc::new(axis::AxisDecoder::new(context.clone())),
        "generic" => {
            let mapping = mapping.ok_or(FormatError::GenericWithoutMapping)?;
            Arc::new(generic::GenericDecoder::new(
                mapping.clone(),
                context.clone(),
            )?)
        }
        "auto" => Arc::new(SniffingDecoder::new(context.clone())),
        other => return Err(FormatError::Unknown(other.to_owned())),
    })
}

/// Picks the vendor decoder from marker keys in the message, for topics that carry several
/// vendors' formats or whose format nobody wrote down. A substring probe costs far less than a
/// parse, and each marker is a key only that vendor's format has.
pub struct SniffingDecoder {
    canonical: CanonicalJsonDecoder,
    rekor: rekor::RekorDecoder,
    plate_recognizer: plate_recognizer::PlateRecognizerDecoder,
    genetec: genetec::GenetecDecoder,
    axis: axis::AxisDecoder,
}

impl SniffingDecoder {
    pub fn new(context: DecodeContext) -> Self {
        Self {
            canonical: CanonicalJsonDecoder,
            rekor: rekor::RekorDecoder::new(context.clone()),
            plate_recognizer: plate_recognizer::PlateRecognizerDecoder::new(context.clone()),
            genetec: genetec::GenetecDecoder::new(context.clone()),
            axis: axis::AxisDecoder::new(context),
        }
    }

    /// The decoder a message's content points to, if any.
    pub fn sniff(&self, payload: &[u8]) -> Option<&dyn ReadDecoder> {
        let keys = MarkerKeys::scan(payload);
        let has = |marker: MarkerKey| keys.contains(marker);
        use MarkerKey::*;
        if has(DataType) || has(OpenalprWebhook) {
            Some(&self.rekor)
        } else if has(Results) && (has(Dscore) || has(ProcessingTime))
            // A Stream webhook that is no recognition (a heartbeat) has no results.
            || (has(Hook) && has(Data))
        {
            Some(&self.plate_recognizer)
        } else if has(PlateUtf8) || has(PlateAscii) || has(PlateText) || has(PlateUnicode) {
            Some(&self.axis)
        } else if (has(Plate) && (has(DateUtc) || has(UtcDate) || has(CameraName)))
            || (has(PlateRead) && has(PlateAnalytics))
        {
            Some(&self.genetec)
        } else if has(ObservedAt) {
            Some(&self.canonical)
        } else {
            None
        }
    }
}

/// The quoted strings that tell vendors' formats apart.
#[derive(Debug, Clone, Copy)]
enum MarkerKey {
    DataType,
    OpenalprWebhook,
    Results,
    Dscore,
    ProcessingTime,
    Hook,
    Data,
    PlateUtf8,
    PlateAscii,
    PlateText,
    PlateUnicode,
    Plate,
    DateUtc,
    UtcDate,
    CameraName,
    PlateRead,
    PlateAnalytics,
    ObservedAt,
}

/// Which marker strings occur in a payload, each as a whole quoted string.
#[derive(Debug, Clone, Copy, Default)]
struct MarkerKeys(u32);

impl MarkerKeys {
    /// One pass over the payload's quotes: every quote may open a marker, so a marker is found
    /// wherever it stands, as a key or inside a value, exactly as a substring search would.
    fn scan(payload: &[u8]) -> Self {
        let mut keys = Self::default();
        let mut quotes = memchr::memchr_iter(b'"', payload).peekable();
        while let Some(open) = quotes.next() {
            let Some(&close) = quotes.peek() else {
                break;
            };
            if let Some(marker) = MarkerKey::from_quoted(&payload[open + 1..close]) {
                keys.0 |= 1 << marker as u32;
            }
        }
        keys
    }

    fn contains(self, marker: MarkerKey) -> bool {
        self.0 & (1 << marker as u32) != 0
    }
}

impl MarkerKey {
    fn from_quoted(text: &[u8]) -> Option<Self> {
        use MarkerKey::*;
        Some(match text {
            b"data_type" => DataType,
            b"openalpr_webhook" => OpenalprWebhook,
            b"results" => Results,
            b"dscore" => Dscore,
            b"processing_time" => ProcessingTime,
            b"hook" => Hook,
            b"data" => Data,
            b"plateUTF8" => PlateUtf8,
            b"plateASCII" => PlateAscii,
            b"plateText" => PlateText,
            b"plateUnicode" => PlateUnicode,
            b"Plate" => Plate,
            b"DateUtc" => DateUtc,
            b"UTCDate" => UtcDate,
            b"CameraName" => CameraName,
            b"PlateRead" => PlateRead,
            b"PlateAnalytics" => PlateAnalytics,
            b"observed_at" => ObservedAt,
            _ => return None,
        })
    }
}

impl ReadDecoder for SniffingDecoder {
    fn format(&self) -> &'static str {
        "auto"
    }

    fn decode(&self, payload: &[u8], reads: &mut Vec<PlateRead>) -> Result<Decoded, DecodeError> {
        crate::decode::payload_text(payload)?;
        match self.sniff(payload) {
            Some(decoder) => decoder.decode(payload, reads),
            None => Err(DecodeError::UnrecognizedFormat {
                detail: "no known vendor's marker fields (data_type, results+dscore, \
                         hook+data, plateUTF8, Plate+DateUtc, PlateRead+PlateAnalytics, observed_at)"
                    .to_owned(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::images::MemoryImageStore;

    #[test]
    fn every_genetec_and_axis_shape_is_sniffed() {
        let sniffer =
            SniffingDecoder::new(DecodeContext::new(Arc::new(MemoryImageStore::default())));
        for (payload, format) in [
            (
                r#"{"Plate":"A1","DateUtc":"11/24/2026","TimeUtc":"17:03:12"}"#,
                "genetec",
            ),
            (
                r#"{"Plate":"A1","UTCDate":"2026:11:24","SourceName":"SHARP1"}"#,
                "genetec",
            ),
            (
                r#"{"PlateRead":"A1","PlateAnalytics":[],"Timestamp":"x"}"#,
                "genetec",
            ),
            (r#"{"plateUTF8":"A1","capture_timestamp":"1"}"#, "axis"),
            (
                r#"{"plateUnicode":"A1","datetime":"20261124 120312345"}"#,
                "axis",
            ),
        ] {
            let sniffed = sniffer.sniff(payload.as_bytes()).map(|d| d.format());
            assert_eq!(sniffed, Some(format), "{payload}");
        }
    }
}
