//! Axis License Plate Verifier events → canonical reads.

use crate::decode::{DecodeError, Decoded, ReadDecoder};
use crate::read::PlateRead;

use super::DecodeContext;

pub struct AxisDecoder {
    #[allow(dead_code)]
    context: DecodeContext,
}

impl AxisDecoder {
    pub fn new(context: DecodeContext) -> Self {
        Self { context }
    }
}

impl ReadDecoder for AxisDecoder {
    fn format(&self) -> &'static str {
        "axis"
    }

    fn decode(&self, _payload: &[u8], _reads: &mut Vec<PlateRead>) -> Result<Decoded, DecodeError> {
        Err(DecodeError::Malformed {
            format: "axis",
            detail: "decoder under construction".to_owned(),
        })
    }
}
