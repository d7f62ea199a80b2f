//! Moving inline images out of a webhook body before it is produced. A Genetec read with its
//! context and plate pictures is hundreds of KB of base64; in Kafka it would bloat the raw topic,
//! the dead-letter topic and every replay. The picture goes into the image store once and the
//! message carries its `sha256:<hex>` reference, which every vendor decoder accepts wherever it
//! accepts an inline image.

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use platestream_engine::images::{ImageFormat, ImageRef, ImageStore, ImageStoreError};
use serde_json::Value;

/// Shorter strings are never taken for images: the smallest real plate crop is a few KB, and
/// short base64-looking strings (ids, hashes) are common in vendors' JSON.
pub const MIN_INLINE_IMAGE_CHARS: usize = 256;

/// Vendors differ on base64 padding; the image's magic bytes, not the padding, decide.
const LENIENT_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Replaces every string in `value` that is a base64 JPEG or PNG (optionally as a `data:` URI)
/// with the reference of the stored image, and returns the references in document order.
pub fn externalize_inline_images(
    value: &mut Value,
    store: &dyn ImageStore,
) -> Result<Vec<ImageRef>, ImageStoreError> {
    let mut stored = Vec::new();
    walk(value, store, &mut stored)?;
    Ok(stored)
}

// Recursion is bounded: serde_json refuses documents nested deeper than 128 levels.
fn walk(
    value: &mut Value,
    store: &dyn ImageStore,
    stored: &mut Vec<ImageRef>,
) -> Result<(), ImageStoreError> {
    match value {
        Value::String(text) => {
            if let Some(bytes) = inline_image_bytes(text) {
                let reference = store.put(&bytes)?;
                *text = reference.to_string();
                stored.push(reference);
            }
        }
        Value::Array(items) => {
            for item in items {
                walk(item, store, stored)?;
            }
        }
        Value::Object(fields) => {
            for (_, field) in fields.iter_mut() {
                walk(field, store, stored)?;
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
    Ok(())
}

/// The picture in `text` if it is a base64 JPEG or PNG, plain or as a `data:` URI.
pub fn inline_image_bytes(text: &str) -> Option<Vec<u8>> {
    if text.len() < MIN_INLINE_IMAGE_CHARS {
        return None;
    }
    // A data URI's scheme and parameters are case-insensitive (`DATA:IMAGE/JPEG;BASE64,`).
    let encoded = match text
        .get(..5)
        .filter(|scheme| scheme.eq_ignore_ascii_case("data:"))
    {
        Some(_) => {
            let comma = text.find(',')?;
            if !text[..comma].to_ascii_lowercase().ends_with(";base64") {
                return None;
            }
            &text[comma + 1..]
        }
        None => text,
    }
    .trim();
    // A prefix test spares decoding every long string: base64 of a JPEG's first bytes (FF D8 FF)
    // is `/9j/`, of a PNG's signature `iVBORw0KGgo`; in the URL-safe alphabet a JPEG's is `_9j_`.
    if encoded.starts_with("_9j_") {
        let standard: String = encoded
            .chars()
            .map(|c| match c {
                '-' => '+',
                '_' => '/',
                other => other,
            })
            .collect();
        return inline_image_bytes(&standard);
    }
    if !(encoded.starts_with("/9j/") || encoded.starts_with("iVBORw0KGgo")) {
        return None;
    }
    let bytes = match LENIENT_BASE64.decode(encoded) {
        Ok(bytes) => bytes,
        // Some encoders wrap base64 at 76 characters (MIME style).
        Err(_) => {
            let unwrapped: String = encoded
                .chars()
                .filter(|c| !c.is_ascii_whitespace())
                .collect();
            LENIENT_BASE64.decode(unwrapped).ok()?
        }
    };
    matches!(
        ImageFormat::sniff(&bytes),
        ImageFormat::Jpeg | ImageFormat::Png
    )
    .then_some(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD;
    use platestream_engine::images::MemoryImageStore;

    fn jpeg(size: usize) -> Vec<u8> {
        let mut bytes = vec![0xFF, 0xD8, 0xFF, 0xE0];
        bytes.extend((0..size).map(|index| (index % 251) as u8));
        bytes.extend([0xFF, 0xD9]);
        bytes
    }

    #[test]
    fn base64_images_anywhere_become_references() {
        let picture = jpeg(600);
        let encoded = STANDARD.encode(&picture);
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        png.extend([7u8; 400]);
        let mut value = serde_json::json!({
            "Plate": "ABC123",
            "ContextImage": encoded,
            "nested": [{"crop": format!("data:image/jpeg;base64,{encoded}")}],
            "png": STANDARD.encode(&png),
        });
        let store = MemoryImageStore::default();
        let stored = externalize_inline_images(&mut value, &store).unwrap();
        let reference = ImageRef::of(&picture).to_string();
        assert_eq!(value["ContextImage"], reference.as_str());
        assert_eq!(value["nested"][0]["crop"], reference.as_str());
        assert_eq!(value["png"], ImageRef::of(&png).to_string().as_str());
        assert_eq!(value["Plate"], "ABC123");
        assert_eq!(stored.len(), 3);
        assert_eq!(store.len(), 2, "the same picture is stored once");
        assert_eq!(store.get(&ImageRef::of(&picture)), Some(picture));
    }

    #[test]
    fn wrapped_and_unpadded_base64_is_still_an_image() {
        let picture = jpeg(601);
        let encoded = STANDARD.encode(&picture);
        let wrapped: Vec<String> = encoded
            .as_bytes()
            .chunks(76)
            .map(|line| String::from_utf8(line.to_vec()).unwrap())
            .collect();
        assert_eq!(
            inline_image_bytes(&wrapped.join("\r\n")),
            Some(picture.clone())
        );
        assert_eq!(
            inline_image_bytes(encoded.trim_end_matches('=')),
            Some(picture)
        );
    }

    #[test]
    fn upper_case_data_uris_and_url_safe_base64_are_images_too() {
        let picture = jpeg(600);
        let encoded = STANDARD.encode(&picture);
        let upper = format!("DATA:IMAGE/JPEG;BASE64,{encoded}");
        assert_eq!(inline_image_bytes(&upper).as_deref(), Some(&picture[..]));
        let url_safe = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&picture);
        assert!(url_safe.starts_with("_9j_"));
        assert_eq!(inline_image_bytes(&url_safe).as_deref(), Some(&picture[..]));
    }

    #[test]
    fn other_strings_are_left_alone() {
        let long_text = "x".repeat(1_000);
        let not_an_image = STANDARD.encode([0x42u8; 500]);
        // Starts like a JPEG in base64 but does not decode.
        let broken = format!("/9j/{}", "!".repeat(400));
        let short_jpeg = STANDARD.encode(jpeg(10));
        let mut value = serde_json::json!([long_text, not_an_image, broken, short_jpeg, 12, null]);
        let before = value.clone();
        let store = MemoryImageStore::default();
        assert!(externalize_inline_images(&mut value, &store)
            .unwrap()
            .is_empty());
        assert_eq!(value, before);
        assert!(store.is_empty());
    }
}
