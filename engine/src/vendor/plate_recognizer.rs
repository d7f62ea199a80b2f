//! Plate Recognizer Snapshot API responses and Stream webhooks → canonical reads.

use crate::decode::{DecodeError, Decoded, ReadDecoder};
use crate::read::PlateRead;

use super::DecodeContext;

pub struct PlateRecognizerDecoder {
    #[allow(dead_code)]
    context: DecodeContext,
}

impl PlateRecognizerDecoder {
    pub fn new(context: DecodeContext) -> Self {
        Self { context }
    }
}

impl ReadDecoder for PlateRecognizerDecoder {
    fn format(&self) -> &'static str {
        "plate_recognizer"
    }

    fn decode(&self, _payload: &[u8], _reads: &mut Vec<PlateRead>) -> Result<Decoded, DecodeError> {
        Err(DecodeError::Malformed {
            format: "plate_recognizer",
            detail: "decoder under construction".to_owned(),
        })
    }
}
