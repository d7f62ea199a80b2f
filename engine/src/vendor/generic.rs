//! Vendors we have not met yet: CSV or NDJSON with a column mapping given in configuration.

use serde::{Deserialize, Serialize};

use crate::decode::{DecodeError, Decoded, ReadDecoder};
use crate::read::PlateRead;

use super::{DecodeContext, FormatError};

/// Which input field holds which canonical field.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GenericMapping {}

pub struct GenericDecoder {
    #[allow(dead_code)]
    mapping: GenericMapping,
    #[allow(dead_code)]
    context: DecodeContext,
}

impl GenericDecoder {
    pub fn new(mapping: GenericMapping, context: DecodeContext) -> Result<Self, FormatError> {
        Ok(Self { mapping, context })
    }
}

impl ReadDecoder for GenericDecoder {
    fn format(&self) -> &'static str {
        "generic"
    }

    fn decode(&self, _payload: &[u8], _reads: &mut Vec<PlateRead>) -> Result<Decoded, DecodeError> {
        Err(DecodeError::Malformed {
            format: "generic",
            detail: "decoder under construction".to_owned(),
        })
    }
}
