//! Genetec AutoVu / Security Center LPR events forwarded over HTTP → canonical reads.

use crate::decode::{DecodeError, Decoded, ReadDecoder};
use crate::read::PlateRead;

use super::DecodeContext;

pub struct GenetecDecoder {
    #[allow(dead_code)]
    context: DecodeContext,
}

impl GenetecDecoder {
    pub fn new(context: DecodeContext) -> Self {
        Self { context }
    }
}

impl ReadDecoder for GenetecDecoder {
    fn format(&self) -> &'static str {
        "genetec"
    }

    fn decode(&self, _payload: &[u8], _reads: &mut Vec<PlateRead>) -> Result<Decoded, DecodeError> {
        Err(DecodeError::Malformed {
            format: "genetec",
            detail: "decoder under construction".to_owned(),
        })
    }
}
