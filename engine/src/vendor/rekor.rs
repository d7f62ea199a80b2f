//! Rekor Scout / OpenALPR agent webhooks (alpr_group, alpr_results; heartbeats skipped) → canonical reads.

use crate::decode::{DecodeError, Decoded, ReadDecoder};
use crate::read::PlateRead;

use super::DecodeContext;

pub struct RekorDecoder {
    #[allow(dead_code)]
    context: DecodeContext,
}

impl RekorDecoder {
    pub fn new(context: DecodeContext) -> Self {
        Self { context }
    }
}

impl ReadDecoder for RekorDecoder {
    fn format(&self) -> &'static str {
        "rekor"
    }

    fn decode(&self, _payload: &[u8], _reads: &mut Vec<PlateRead>) -> Result<Decoded, DecodeError> {
        Err(DecodeError::Malformed {
            format: "rekor",
            detail: "decoder under construction".to_owned(),
        })
    }
}
