//! Canonical JSON (`schemas/plate-read.schema.json`) as configured formats decode it: the bare
//! [`CanonicalJsonDecoder`] plus the image store, so that a picture a producer put inline in
//! `images` goes to the store like every vendor's, instead of into the archive.

use crate::decode::{CanonicalJsonDecoder, DecodeError, Decoded, ReadDecoder};
use crate::read::PlateRead;

use super::DecodeContext;

const FORMAT: &str = "canonical";

pub struct CanonicalDecoder {
    context: DecodeContext,
}

impl CanonicalDecoder {
    pub fn new(context: DecodeContext) -> Self {
        Self { context }
    }

    /// The reference to keep for an `images` entry. The schema allows any URI or image-store key
    /// there, so only text that is unmistakably a picture is moved: a `data:` URI (any case), or
    /// base64 that starts like a JPEG (`/9j/`, URL-safe `_9j_`) or PNG (`iVBORw0KGgo`). Anything
    /// else is kept as sent.
    fn image(&self, text: Option<String>) -> Result<Option<String>, DecodeError> {
        let Some(text) = text else {
            return Ok(None);
        };
        let trimmed = text.trim();
        let inline = trimmed
            .get(..5)
            .is_some_and(|scheme| scheme.eq_ignore_ascii_case("data:"))
            || trimmed.starts_with("/9j/")
            || trimmed.starts_with("_9j_")
            || trimmed.starts_with("iVBORw0KGgo");
        if !inline {
            return Ok(Some(text));
        }
        self.context.store_inline_image(FORMAT, trimmed)
    }
}

impl ReadDecoder for CanonicalDecoder {
    fn format(&self) -> &'static str {
        FORMAT
    }

    fn decode(&self, payload: &[u8], reads: &mut Vec<PlateRead>) -> Result<Decoded, DecodeError> {
        let mut decoded = Vec::with_capacity(1);
        let outcome = CanonicalJsonDecoder.decode(payload, &mut decoded)?;
        for read in &mut decoded {
            read.images.plate_crop = self.image(read.images.plate_crop.take())?;
            read.images.overview = self.image(read.images.overview.take())?;
        }
        reads.append(&mut decoded);
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use base64::Engine as _;

    use super::*;
    use crate::images::{ImageRef, MemoryImageStore};

    /// The first bytes of a JPEG file: enough for the store and for sniffing.
    const JPEG: &[u8] = &[
        0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, b'J', b'F', b'I', b'F', 0x00,
    ];

    fn message(images: &str) -> String {
        format!(
            r#"{{"vendor":"acme","reader_id":"r1","observed_at":"2026-11-24T17:00:00Z",
            "plate":"ABC123","confidence":0.9,"images":{images}}}"#
        )
    }

    #[test]
    fn inline_pictures_go_to_the_image_store_and_the_read_keeps_references() {
        let base64 = base64::engine::general_purpose::STANDARD.encode(JPEG);
        let payload = message(&format!(
            r#"{{"plate_crop":"{base64}","overview":"data:image/jpeg;base64,{base64}"}}"#
        ));
        let reference = ImageRef::of(JPEG).to_string();
        for format in ["canonical", "auto"] {
            let store = Arc::new(MemoryImageStore::default());
            let context = DecodeContext::new(store.clone());
            let decoder = super::super::decoder_for(format, None, &context).unwrap();
            let mut reads = Vec::new();
            decoder.decode(payload.as_bytes(), &mut reads).unwrap();
            let images = &reads[0].images;
            assert_eq!(
                images.plate_crop.as_deref(),
                Some(reference.as_str()),
                "{format}"
            );
            assert_eq!(
                images.overview.as_deref(),
                Some(reference.as_str()),
                "{format}"
            );
            assert_eq!(store.get(&ImageRef::of(JPEG)).as_deref(), Some(JPEG));
        }
    }

    #[test]
    fn upper_case_data_uris_and_url_safe_base64_go_to_the_image_store_too() {
        let url_safe = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(JPEG);
        assert!(url_safe.starts_with("_9j_"), "{url_safe}");
        let standard = base64::engine::general_purpose::STANDARD.encode(JPEG);
        let payload = message(&format!(
            r#"{{"plate_crop":"{url_safe}","overview":"DATA:IMAGE/JPEG;BASE64,{standard}"}}"#
        ));
        let reference = ImageRef::of(JPEG).to_string();
        let store = Arc::new(MemoryImageStore::default());
        let context = DecodeContext::new(store.clone());
        let decoder = super::super::decoder_for("canonical", None, &context).unwrap();
        let mut reads = Vec::new();
        decoder.decode(payload.as_bytes(), &mut reads).unwrap();
        let images = &reads[0].images;
        assert_eq!(images.plate_crop.as_deref(), Some(reference.as_str()));
        assert_eq!(images.overview.as_deref(), Some(reference.as_str()));
    }

    #[test]
    fn references_urls_and_keys_are_kept_as_sent() {
        let store = Arc::new(MemoryImageStore::default());
        let decoder = CanonicalDecoder::new(DecodeContext::new(store.clone()));
        let reference = ImageRef::of(JPEG).to_string();
        let payload = message(&format!(
            r#"{{"plate_crop":"{reference}","overview":"crops/2026/abc.jpg"}}"#
        ));
        let mut reads = Vec::new();
        decoder.decode(payload.as_bytes(), &mut reads).unwrap();
        assert_eq!(
            reads[0].images.plate_crop.as_deref(),
            Some(reference.as_str())
        );
        assert_eq!(
            reads[0].images.overview.as_deref(),
            Some("crops/2026/abc.jpg")
        );
        assert!(store.is_empty());
    }

    #[test]
    fn a_data_uri_that_is_not_base64_is_refused_and_nothing_is_decoded() {
        let decoder =
            CanonicalDecoder::new(DecodeContext::new(Arc::new(MemoryImageStore::default())));
        let payload = message(r#"{"plate_crop":"data:image/jpeg;base64,@@not base64@@"}"#);
        let mut reads = Vec::new();
        let error = decoder.decode(payload.as_bytes(), &mut reads).unwrap_err();
        assert_eq!(error.code(), "malformed", "{error}");
        assert!(reads.is_empty());
    }
}
