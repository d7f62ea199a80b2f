//! The `[ingest]` section of `platestream.toml`: where the ingest server listens and which reader
//! vendors may push to it, each with its own token, format and topic.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// Shorter tokens are refused at start-up: a vendor token is the only thing between the internet
/// and the raw topic, and guessable ones get guessed.
pub const MIN_TOKEN_CHARS: usize = 16;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestSettings {
    /// Address the HTTP server binds (`0.0.0.0:8080` to accept readers from other machines).
    pub listen: SocketAddr,
    /// Bodies larger than this are refused with 413. Genetec bodies with inline images run to
    /// hundreds of KB; Plate Recognizer uploads carry a full camera frame.
    pub max_body_bytes: usize,
    /// How long a request waits for Kafka to acknowledge its message before it is answered 503.
    pub produce_timeout_ms: u64,
    /// The token officers' clients use to fetch images (`GET /v1/images/{ref}`); without it that
    /// endpoint is off. Vendor tokens do not open it: they sit in cameras and webhook URLs.
    pub viewer_token: Option<Token>,
    /// The vendors that may push, by the name used in the URL (`POST /v1/ingest/{name}`).
    pub vendors: BTreeMap<String, VendorSettings>,
}

impl Default for IngestSettings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            max_body_bytes: 8 * 1024 * 1024,
            produce_timeout_ms: 5_000,
            viewer_token: None,
            vendors: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VendorSettings {
    /// The vendor's wire format: `rekor`, `plate_recognizer`, `genetec`, `axis`, `generic`,
    /// `canonical` or `auto`. Bodies are validated with this format's decoder before producing.
    pub format: String,
    /// The vendor's API token.
    pub token: Token,
    /// The raw topic its messages are produced to.
    #[serde(default = "default_topic")]
    pub topic: String,
    /// IANA zone of this vendor's readers when they send local times without an offset; defaults
    /// to `readers.timezone`.
    #[serde(default)]
    pub reader_timezone: Option<String>,
}

fn default_topic() -> String {
    "plate-reads".to_owned()
}

impl VendorSettings {
    pub fn new(format: impl Into<String>, token: impl Into<String>) -> Self {
        Self {
            format: format.into(),
            token: Token(token.into()),
            topic: default_topic(),
            reader_timezone: None,
        }
    }
}

/// A secret that never appears in logs or `Debug` output (configs get printed when start-up fails).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Token(pub String);

impl Token {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Token(<{} characters>)", self.0.chars().count())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_stay_out_of_debug_output() {
        let vendor = VendorSettings::new("rekor", "correct-horse-battery-staple");
        let printed = format!("{vendor:?}");
        assert!(!printed.contains("horse"), "{printed}");
        assert!(printed.contains("28 characters"), "{printed}");
    }
}
