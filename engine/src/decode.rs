//! Decoders turn a message's bytes into zero or more reads. One decoder per wire format; the
//! pipeline picks the decoder by topic configuration (`crate::vendor::decoder_for`).

use crate::read::PlateRead;

/// Why a message could not be decoded. The `code` is a stable label for metrics and dead letters.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DecodeError {
    #[error("message is not valid UTF-8 (first bad byte at {valid_up_to})")]
    NotUtf8 { valid_up_to: usize },
    #[error("message is empty")]
    Empty,
    #[error("message is not a {format} read: {detail}")]
    Malformed {
        format: &'static str,
        detail: String,
    },
    #[error("message format not recognized: {detail}")]
    UnrecognizedFormat { detail: String },
    #[error("cannot store the message's image: {detail}")]
    ImageStore { detail: String },
}

impl DecodeError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotUtf8 { .. } => "not_utf8",
            Self::Empty => "empty_message",
            Self::Malformed { .. } => "malformed",
            Self::UnrecognizedFormat { .. } => "unrecognized_format",
            Self::ImageStore { .. } => "image_store_failed",
        }
    }
}

/// What a message held besides the reads pushed to the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoded {
    /// The message carried this many reads.
    Reads(usize),
    /// The message is a well-formed non-read (a heartbeat, a status report); counted, not archived.
    NotARead { kind: &'static str },
}

pub trait ReadDecoder: Send + Sync {
    /// The format's name as written in configuration (`canonical`, ...).
    fn format(&self) -> &'static str;

    /// Decodes one message, appending its reads to `reads`. On error nothing is appended.
    fn decode(&self, payload: &[u8], reads: &mut Vec<PlateRead>) -> Result<Decoded, DecodeError>;
}

/// Message bytes as text. `from_utf8` then `from_str` is faster in serde_json than `from_slice`,
/// and it gives the dead letter a precise reason for binary garbage. A UTF-8 byte order mark in
/// front (Windows tools write one: PowerShell's `Out-File`, Notepad) is not part of the JSON.
pub fn payload_text(payload: &[u8]) -> Result<&str, DecodeError> {
    let payload = payload.strip_prefix(UTF8_BOM).unwrap_or(payload);
    if payload.iter().all(u8::is_ascii_whitespace) {
        return Err(DecodeError::Empty);
    }
    std::str::from_utf8(payload).map_err(|error| DecodeError::NotUtf8 {
        valid_up_to: error.valid_up_to(),
    })
}

/// The UTF-8 byte order mark Windows tools write in front of text.
pub const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// platestream's own format: one `PlateRead` as JSON (`schemas/plate-read.schema.json`), without an
/// image store: inline pictures stay in the read. Configured topics get
/// `vendor::canonical::CanonicalDecoder` from `vendor::decoder_for`, which moves them to the store.
#[derive(Debug, Default, Clone, Copy)]
pub struct CanonicalJsonDecoder;

impl ReadDecoder for CanonicalJsonDecoder {
    fn format(&self) -> &'static str {
        "canonical"
    }

    fn decode(&self, payload: &[u8], reads: &mut Vec<PlateRead>) -> Result<Decoded, DecodeError> {
        let text = payload_text(payload)?;
        let read = serde_json::from_str::<PlateRead>(text).map_err(|error| {
            // serde reads an array as a struct's fields in order ("invalid type: map, expected a
            // string"), and a second read after the first as "trailing characters": neither says
            // what the sender did wrong.
            const ONE_READ: &str =
                "a canonical message is one read, one JSON object; send each read as its own message";
            let detail = if text.trim_start().starts_with('[') {
                format!("a JSON array: {ONE_READ}")
            } else if error.to_string().starts_with("trailing characters") {
                format!("{error}: {ONE_READ}")
            } else {
                error.to_string()
            };
            DecodeError::Malformed {
                format: "canonical",
                detail,
            }
        })?;
        // Only duplicate suppression may mark a read as another's duplicate: a sender's mark
        // would hide the read from every query that leaves duplicates out.
        let read = PlateRead {
            duplicate_of: None,
            ..read
        };
        reads.push(read);
        Ok(Decoded::Reads(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{"vendor":"acme","reader_id":"r1","observed_at":"2026-11-24T17:00:00Z",
        "plate":"ABC123","jurisdiction":"US-VA","confidence":0.9,"lat":38.9,"lon":-77.0,
        "future_field":"kept compatible"}"#;

    #[test]
    fn several_reads_in_one_canonical_message_are_refused_saying_so() {
        for batch in [format!("[{GOOD}, {GOOD}]"), format!("{GOOD}\n{GOOD}\n")] {
            let error = CanonicalJsonDecoder
                .decode(batch.as_bytes(), &mut Vec::new())
                .unwrap_err()
                .to_string();
            assert!(
                error.contains("send each read as its own message"),
                "{error}"
            );
        }
    }

    #[test]
    fn canonical_json_decodes_and_tolerates_unknown_fields() {
        let mut reads = Vec::new();
        let decoded = CanonicalJsonDecoder
            .decode(GOOD.as_bytes(), &mut reads)
            .unwrap();
        assert_eq!(decoded, Decoded::Reads(1));
        assert_eq!(reads[0].plate, "ABC123");
        assert_eq!(reads[0].jurisdiction.as_deref(), Some("US-VA"));
    }

    #[test]
    fn a_sender_cannot_mark_its_read_as_a_duplicate() {
        let marked = GOOD.replacen('{', r#"{"duplicate_of":"someone","#, 1);
        let mut reads = Vec::new();
        CanonicalJsonDecoder
            .decode(marked.as_bytes(), &mut reads)
            .unwrap();
        assert_eq!(reads[0].duplicate_of, None);
    }

    #[test]
    fn a_byte_order_mark_in_front_is_not_part_of_the_message() {
        let mut reads = Vec::new();
        let with_bom = [b"\xEF\xBB\xBF".as_slice(), GOOD.as_bytes()].concat();
        assert_eq!(
            CanonicalJsonDecoder.decode(&with_bom, &mut reads).unwrap(),
            Decoded::Reads(1)
        );
        let error = CanonicalJsonDecoder
            .decode(b"\xEF\xBB\xBF \n", &mut reads)
            .unwrap_err();
        assert_eq!(error.code(), "empty_message");
    }

    #[test]
    fn bad_messages_say_what_is_wrong() {
        let mut reads = Vec::new();
        let cases: [(&[u8], &str); 4] = [
            (b"", "empty_message"),
            (b"\xff\xfe{", "not_utf8"),
            (b"{\"vendor\":\"acme\"", "malformed"),
            (b"{\"vendor\":\"acme\",\"reader_id\":\"r\",\"observed_at\":1795539600000,\"confidence\":1}", "malformed"),
        ];
        for (payload, code) in cases {
            let error = CanonicalJsonDecoder
                .decode(payload, &mut reads)
                .unwrap_err();
            assert_eq!(error.code(), code, "{error}");
        }
        assert!(reads.is_empty());
        let missing_plate = CanonicalJsonDecoder
            .decode(cases[3].0, &mut reads)
            .unwrap_err();
        assert!(
            missing_plate.to_string().contains("plate"),
            "{missing_plate}"
        );
    }
}
