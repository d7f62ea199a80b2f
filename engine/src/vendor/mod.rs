//! Vendors' wire formats → the canonical read. One module per vendor; this module holds what they
//! share (the decoding context, confidence scales, inline images) and picks a decoder by name or,
//! for topics configured as `auto`, by sniffing the message.

pub mod axis;
pub mod canonical;
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

use crate::decode::{DecodeError, Decoded, ReadDecoder};
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
        // A data URI's scheme and parameters are case-insensitive (`DATA:IMAGE/JPEG;BASE64,`).
        let is_data_uri = text
            .get(..5)
            .is_some_and(|scheme| scheme.eq_ignore_ascii_case("data:"));
        let encoded = match text.split_once(',') {
            Some((prefix, data))
                if is_data_uri && prefix.to_ascii_lowercase().ends_with(";base64") =>
            {
                data
            }
            _ => text,
        };
        // Standard base64 first; some encoders use the URL-safe alphabet (`-` and `_`).
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded.as_bytes())
            .or_else(|error| {
                base64::engine::general_purpose::URL_SAFE
                    .decode(encoded.as_bytes())
                    .or_else(|_| {
                        base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(encoded.as_bytes())
                    })
                    .map_err(|_| error)
            })
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

/// Percentages up to this are float noise from a vendor's arithmetic (as 1.001 is on 0..1).
const PERCENT_TOLERANCE: f64 = 0.1;

/// A confidence on a 0–100 scale (Rekor's classifier, `generic` with scale 100) as 0..1. A
/// value off the scale is returned as sent, not divided: normalization refuses it
/// (`confidence_out_of_range`), and its reason must quote what the vendor sent (150, not 1.5).
pub fn confidence_from_percent(percent: f64) -> f32 {
    if (0.0..=100.0 + PERCENT_TOLERANCE).contains(&percent) {
        (percent / 100.0) as f32
    } else {
        percent as f32
    }
}

/// A confidence from a vendor that sends either scale (Rekor and Genetec plates, Genetec
/// attributes, Axis: firmware and relays differ): 1 or less is already 0..1, more is a
/// percentage. Reading `0.95` as 0.95 % would silently throw the read away (every policy
/// threshold is above it), while a 0–100 vendor reporting under 1 % sends noise either way.
/// Off both scales the value is returned as sent, for normalization to refuse and quote.
pub fn confidence_from_either_scale(value: f64) -> f32 {
    if (0.0..=1.0).contains(&value) {
        value as f32
    } else {
        confidence_from_percent(value)
    }
}

/// A confidence from a vendor whose scale is 0..1 only (Plate Recognizer). Nothing is guessed:
/// `87` is a 0–100 value sent to a 0..1 field, and normalization refuses it as sent.
pub fn confidence_from_fraction(value: f64) -> f32 {
    value as f32
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
        "canonical" => Arc::new(canonical::CanonicalDecoder::new(context.clone())),
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
    canonical: canonical::CanonicalDecoder,
    rekor: rekor::RekorDecoder,
    plate_recognizer: plate_recognizer::PlateRecognizerDecoder,
    genetec: genetec::GenetecDecoder,
    axis: axis::AxisDecoder,
}

impl SniffingDecoder {
    pub fn new(context: DecodeContext) -> Self {
        Self {
            canonical: canonical::CanonicalDecoder::new(context.clone()),
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
        } else if ((has(Plate) || has(EventType))
            && (has(DateUtc) || has(UtcDate) || has(CameraName) || has(UnitName)))
            || (has(PlateRead) && has(PlateAnalytics))
        {
            // `EventType` without `Plate`: a Genetec heartbeat or status event, a non-read to the
            // `genetec` format, so to `auto` too once the vendor is recognized.
            Some(&self.genetec)
        } else if has(ObservedAt) {
            Some(&self.canonical)
        } else if has(Detail) {
            // Plate Recognizer's API error body (`{"detail": "Authentication credentials were
            // not provided."}`), which its decoder refuses as malformed quoting the error. Last:
            // nothing else in the message points to another vendor.
            Some(&self.plate_recognizer)
        } else {
            None
        }
    }
}

/// The quoted strings that tell vendors' formats apart, in the order of [`MARKER_TEXTS`].
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
    EventType,
    UnitName,
    Detail,
}

/// Each marker as its text between the quotes; index `i` sets bit `i` of [`MarkerKeys`].
const MARKER_TEXTS: [&[u8]; 21] = [
    b"data_type",
    b"openalpr_webhook",
    b"results",
    b"dscore",
    b"processing_time",
    b"hook",
    b"data",
    b"plateUTF8",
    b"plateASCII",
    b"plateText",
    b"plateUnicode",
    b"Plate",
    b"DateUtc",
    b"UTCDate",
    b"CameraName",
    b"PlateRead",
    b"PlateAnalytics",
    b"observed_at",
    b"EventType",
    b"UnitName",
    b"detail",
];

/// The markers (as [`MarkerKeys`] bits) of each length: most quoted strings are ruled out by
/// their length alone, the rest are compared with two or three markers.
const MARKERS_BY_LENGTH: [u32; 17] = {
    let mut by_length = [0u32; 17];
    let mut index = 0;
    while index < MARKER_TEXTS.len() {
        by_length[MARKER_TEXTS[index].len()] |= 1 << index;
        index += 1;
    }
    by_length
};

/// Which marker strings occur in a payload, each as a whole quoted string.
#[derive(Debug, Clone, Copy, Default)]
struct MarkerKeys(u32);

impl MarkerKeys {
    /// One pass over the payload's quotes: every quote may open a marker, so a marker is found
    /// wherever it stands, as a key or inside a value, exactly as a substring search would.
    ///
    /// The quotes are found eight bytes at a time: a vendor message has one every six bytes or
    /// so, and a `memchr` call per quote cost about a quarter of decoding the message.
    fn scan(payload: &[u8]) -> Self {
        const QUOTES: u64 = u64::from_ne_bytes([b'"'; 8]);
        const LOW_BITS: u64 = 0x7f7f_7f7f_7f7f_7f7f;
        let mut keys = Self::default();
        let mut open = None;
        let mut on_quote = |position: usize| {
            if let Some(opened) = open {
                keys.0 |= marker_bit(&payload[opened + 1..position]);
            }
            open = Some(position);
        };
        let mut words = payload.chunks_exact(8);
        let mut base = 0;
        for word in &mut words {
            let bytes: [u8; 8] = word.try_into().unwrap_or_default();
            let differs = u64::from_le_bytes(bytes) ^ QUOTES;
            // The high bit of each byte that equals '"' (no carry crosses a byte).
            let mut found = !(((differs & LOW_BITS) + LOW_BITS) | differs) & !LOW_BITS;
            while found != 0 {
                on_quote(base + found.trailing_zeros() as usize / 8);
                found &= found - 1;
            }
            base += 8;
        }
        for (index, &byte) in words.remainder().iter().enumerate() {
            if byte == b'"' {
                on_quote(base + index);
            }
        }
        keys
    }

    fn contains(self, marker: MarkerKey) -> bool {
        self.0 & (1 << marker as u32) != 0
    }
}

/// The bit of the marker `text` is, or 0.
fn marker_bit(text: &[u8]) -> u32 {
    let (Some(&candidates), Some(&first)) = (MARKERS_BY_LENGTH.get(text.len()), text.first())
    else {
        return 0;
    };
    let mut candidates = candidates;
    while candidates != 0 {
        let index = candidates.trailing_zeros() as usize;
        let marker = MARKER_TEXTS[index];
        if marker[0] == first && marker == text {
            return 1 << index;
        }
        candidates &= candidates - 1;
    }
    0
}

impl ReadDecoder for SniffingDecoder {
    fn format(&self) -> &'static str {
        "auto"
    }

    fn decode(&self, payload: &[u8], reads: &mut Vec<PlateRead>) -> Result<Decoded, DecodeError> {
        // Every vendor decoder checks the text is UTF-8 first, so a message is checked once.
        if let Some(decoder) = self.sniff(payload) {
            return decoder.decode(payload, reads);
        }
        crate::decode::payload_text(payload)?;
        Err(DecodeError::UnrecognizedFormat {
            detail: "no known vendor's marker fields (data_type, results+dscore, \
                     hook+data, plateUTF8, Plate or EventType + DateUtc or UnitName, \
                     PlateRead+PlateAnalytics, observed_at, detail)"
                .to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::images::MemoryImageStore;

    /// The definition the automaton must agree with: the text between any two consecutive
    /// quotes, compared with each marker.
    fn markers_between_quotes(payload: &[u8]) -> u32 {
        let quotes: Vec<usize> = memchr::memchr_iter(b'"', payload).collect();
        let mut keys = 0;
        for pair in quotes.windows(2) {
            let between = &payload[pair[0] + 1..pair[1]];
            for (index, marker) in MARKER_TEXTS.iter().enumerate() {
                if *marker == between {
                    keys |= 1 << index;
                }
            }
        }
        keys
    }

    #[test]
    fn markers_are_whole_quoted_strings_wherever_they_stand() {
        let mut payloads: Vec<Vec<u8>> = [
            r#"{"PlateRead":"A1","PlateAnalytics":[]}"#,
            r#"{"note":"Plate","x":"the \"data\" field"}"#,
            r#"{"hook""data"}"#,
            r#"{"plateUTF8x":"results","dscore" :1}"#,
            r#""observed_at"#,
            "{\"\u{e9}t\u{e9}\":\"Plate\",\"\u{fc}\":\"\u{fc}\"}",
            "",
        ]
        .iter()
        .map(|text| text.as_bytes().to_vec())
        .collect();
        let mut simulator = crate::simulate::Simulator::new(crate::simulate::SimulatorConfig {
            vendor_mix: true,
            ..crate::simulate::SimulatorConfig::default()
        });
        payloads
            .extend((0..2_000).map(|i| simulator.next_message(crate::Timestamp(i * 7)).payload));
        for payload in &payloads {
            assert_eq!(
                MarkerKeys::scan(payload).0,
                markers_between_quotes(payload),
                "{}",
                String::from_utf8_lossy(payload)
            );
        }
        assert_eq!(
            MarkerKeys::scan(br#"{"PlateRead":"A1"}"#).0,
            1 << MarkerKey::PlateRead as u32
        );
    }

    /// The read's confidence and make confidence as archived, or the refusal's reason.
    fn archived_confidences(format: &str, payload: &str) -> Result<(f32, Option<f32>), String> {
        let context = DecodeContext::new(Arc::new(MemoryImageStore::default()));
        let decoder = decoder_for(format, None, &context).unwrap();
        let mut reads = Vec::new();
        decoder
            .decode(payload.as_bytes(), &mut reads)
            .map_err(|error| error.to_string())?;
        let mut read = reads.remove(0);
        let ingested_at = crate::Timestamp::parse_rfc3339("2026-11-24T18:00:00Z").unwrap();
        crate::normalize::normalize_read(&mut read, ingested_at)
            .map_err(|error| format!("{}: {error}", error.code()))?;
        let make = read.vehicle.make.and_then(|make| make.confidence);
        Ok((read.confidence, make))
    }

    #[test]
    fn each_vendor_scale_keeps_plausible_confidences_and_refuses_others_as_sent() {
        let plate_recognizer = |score: &str| {
            format!(
                r#"{{"camera_id":"c1","timestamp":"2026-11-24T17:33:12Z",
                "results":[{{"plate":"abc123","score":{score},"dscore":0.9}}]}}"#
            )
        };
        let genetec = |plate: &str, make: &str| {
            format!(
                r#"{{"Plate":"ABC123","DateUtc":"2026-11-24","TimeUtc":"17:03:12",
                "ConfidenceScore":"{plate}","UnitName":"u","Attributes":{{"Vehicle Make":"Ford",
                "Vehicle Make Confidence Score":"{make}"}}}}"#
            )
        };
        let rekor = |confidence: &str| {
            format!(
                r#"{{"data_type":"alpr_group","agent_uid":"A1","epoch_start":1795539600250,
                "best_plate_number":"7XK4021","best_confidence":{confidence}}}"#
            )
        };
        let axis = |confidence: &str| {
            format!(
                r#"{{"plateUTF8":"A1B2","plateConfidence":{confidence},
                "capture_timestamp":1795539792345,"sensorProviderID":"Gate 2"}}"#
            )
        };
        let close = |archived: Result<(f32, Option<f32>), String>,
                     plate: f32,
                     make: Option<f32>| {
            let (got_plate, got_make) = archived.unwrap();
            assert!((got_plate - plate).abs() < 1e-6, "{got_plate} for {plate}");
            match (got_make, make) {
                (Some(got), Some(make)) => assert!((got - make).abs() < 1e-6, "{got} for {make}"),
                (got, make) => assert_eq!(got, make),
            }
        };
        close(
            archived_confidences("plate_recognizer", &plate_recognizer("0.87")),
            0.87,
            None,
        );
        close(
            archived_confidences("genetec", &genetec("87", "92")),
            0.87,
            Some(0.92),
        );
        close(
            archived_confidences("genetec", &genetec("0.95", "0.92")),
            0.95,
            Some(0.92),
        );
        close(archived_confidences("rekor", &rekor("87.5")), 0.875, None);
        close(archived_confidences("axis", &axis("0.9")), 0.9, None);

        for (format, payload, sent) in [
            ("plate_recognizer", plate_recognizer("87"), "87"),
            ("genetec", genetec("150", "90"), "150"),
            ("genetec", genetec("90", "150"), "150"),
            ("rekor", rekor("150"), "150"),
            ("rekor", rekor("-5"), "-5"),
            ("axis", axis("150"), "150"),
        ] {
            let reason = archived_confidences(format, &payload).unwrap_err();
            assert!(
                reason.starts_with("confidence_out_of_range")
                    && reason.contains(&format!("confidence {sent} is outside")),
                "{format}: {reason}"
            );
        }
    }

    #[test]
    fn a_local_time_in_the_skipped_daylight_saving_hour_is_refused_saying_so() {
        let zone = time::parse_zone("America/New_York").unwrap();
        let context = DecodeContext::new(Arc::new(MemoryImageStore::default())).with_timezone(zone);
        for (format, payload) in [
            (
                "plate_recognizer",
                r#"{"camera_id":"c1","timestamp":"2026-03-08 02:30:00",
                "results":[{"plate":"abc123","score":0.9,"dscore":0.9}]}"#,
            ),
            (
                "genetec",
                r#"{"Plate":"ABC123","Date":"03/08/2026","Time":"02:30:00",
                "ConfidenceScore":"90","UnitName":"u"}"#,
            ),
            (
                "axis",
                r#"{"plateUTF8":"A1B2","plateConfidence":0.9,"datetime":"20260308 023000000",
                "sensorProviderID":"Gate 2"}"#,
            ),
        ] {
            let decoder = decoder_for(format, None, &context).unwrap();
            let error = decoder
                .decode(payload.as_bytes(), &mut Vec::new())
                .unwrap_err();
            assert_eq!(error.code(), "malformed", "{format}: {error}");
            let reason = error.to_string();
            assert!(
                reason.contains("does not exist in America/New_York")
                    && reason.contains("daylight saving")
                    && !reason.contains("is not a time"),
                "{format}: {reason}"
            );
        }
    }

    #[test]
    fn a_blank_plate_is_refused_as_empty_plate_and_a_missing_one_as_malformed() {
        let context = DecodeContext::new(Arc::new(MemoryImageStore::default()));
        let ingested_at = crate::Timestamp::parse_rfc3339("2026-11-24T18:00:00Z").unwrap();
        let refusal = |format: &str, payload: &str| {
            let decoder = decoder_for(format, None, &context).unwrap();
            let mut reads = Vec::new();
            if let Err(error) = decoder.decode(payload.as_bytes(), &mut reads) {
                return error.code();
            }
            match crate::normalize::normalize_read(&mut reads[0], ingested_at) {
                Err(invalid) => invalid.code(),
                Ok(()) => "archived",
            }
        };
        let group = |plate: &str| {
            format!(
                r#"{{"data_type":"alpr_group","agent_uid":"A1","epoch_start":1795539600250,
                {plate}"best_confidence":90}}"#
            )
        };
        let frame = |plate: &str| {
            format!(
                r#"{{"data_type":"alpr_results","agent_uid":"A1","epoch_time":1795539600250,
                "results":[{{{plate}"confidence":90}}]}}"#
            )
        };
        let snapshot = |plate: &str| {
            format!(
                r#"{{"camera_id":"c1","timestamp":"2026-11-24T17:33:12Z",
                "results":[{{{plate}"score":0.9,"dscore":0.9}}]}}"#
            )
        };
        let genetec = |plate: &str| {
            format!(
                r#"{{{plate}"DateUtc":"2026-11-24","TimeUtc":"17:31:02.120",
                "ConfidenceScore":"91.5","UnitName":"SHARPV40713"}}"#
            )
        };
        let axis = |plate: &str| {
            format!(
                r#"{{{plate}"plateConfidence":"0.97","carState":"new",
                "capture_timestamp":"1795540500100","camera_info":{{"SerialNumber":"B8"}}}}"#
            )
        };
        for (format, message, plate) in [
            (
                "rekor",
                &group as &dyn Fn(&str) -> String,
                r#""best_plate_number":"","#,
            ),
            ("rekor", &group, r#""best_plate_number":" ","#),
            ("rekor", &frame, r#""plate":"","#),
            ("plate_recognizer", &snapshot, r#""plate":"","#),
            ("genetec", &genetec, r#""Plate":"","#),
            ("axis", &axis, r#""plateUTF8":" ","#),
        ] {
            assert_eq!(
                refusal(format, &message(plate)),
                "empty_plate",
                "{format} {plate}"
            );
            assert_eq!(
                refusal(format, &message("")),
                "malformed",
                "{format} without a plate"
            );
        }
    }

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
