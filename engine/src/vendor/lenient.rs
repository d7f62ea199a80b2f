//! JSON values as vendors really type them: ids sent as numbers by one firmware and as strings by
//! the next, numbers sent as strings, `null` or `""` meaning "absent". The types here accept all
//! of those and borrow text from the message whenever JSON escaping allows, so decoding a field
//! costs no allocation.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserialize, Deserializer, Unexpected, Visitor};

/// Text that may arrive as a JSON string or as a number (Rekor's numeric `camera_id`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Text<'a>(pub Cow<'a, str>);

impl Text<'_> {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The text trimmed, or `None` when nothing is left.
    pub fn non_empty(&self) -> Option<&str> {
        let trimmed = self.0.trim();
        (!trimmed.is_empty()).then_some(trimmed)
    }
}

/// The trimmed text of an optional field, `None` when absent, `null` or blank.
pub fn non_empty<'t>(text: &'t Option<Text<'_>>) -> Option<&'t str> {
    text.as_ref().and_then(Text::non_empty)
}

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor<'a>(PhantomData<&'a ()>);

        impl<'de: 'a, 'a> Visitor<'de> for TextVisitor<'a> {
            type Value = Text<'a>;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("text or a number")
            }

            fn visit_borrowed_str<E: de::Error>(self, text: &'de str) -> Result<Text<'a>, E> {
                Ok(Text(Cow::Borrowed(text)))
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<Text<'a>, E> {
                Ok(Text(Cow::Owned(text.to_owned())))
            }

            fn visit_string<E: de::Error>(self, text: String) -> Result<Text<'a>, E> {
                Ok(Text(Cow::Owned(text)))
            }

            fn visit_i64<E: de::Error>(self, number: i64) -> Result<Text<'a>, E> {
                Ok(Text(Cow::Owned(number.to_string())))
            }

            fn visit_u64<E: de::Error>(self, number: u64) -> Result<Text<'a>, E> {
                Ok(Text(Cow::Owned(number.to_string())))
            }

            fn visit_f64<E: de::Error>(self, number: f64) -> Result<Text<'a>, E> {
                Ok(Text(Cow::Owned(number.to_string())))
            }
        }

        deserializer.deserialize_any(TextVisitor(PhantomData))
    }
}

/// A number that may arrive as a JSON number or as text (`"38.9072"`); `null` and blank text are
/// absent. Text that is not a number is an error naming the text.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LooseNumber(pub Option<f64>);

impl<'de> Deserialize<'de> for LooseNumber {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NumberVisitor;

        impl Visitor<'_> for NumberVisitor {
            type Value = LooseNumber;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number, or a number as text")
            }

            fn visit_f64<E: de::Error>(self, number: f64) -> Result<LooseNumber, E> {
                Ok(LooseNumber(Some(number)))
            }

            fn visit_i64<E: de::Error>(self, number: i64) -> Result<LooseNumber, E> {
                Ok(LooseNumber(Some(number as f64)))
            }

            fn visit_u64<E: de::Error>(self, number: u64) -> Result<LooseNumber, E> {
                Ok(LooseNumber(Some(number as f64)))
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<LooseNumber, E> {
                let trimmed = text.trim();
                if trimmed.is_empty() {
                    return Ok(LooseNumber(None));
                }
                trimmed
                    .parse::<f64>()
                    .ok()
                    .filter(|number| number.is_finite())
                    .map(|number| LooseNumber(Some(number)))
                    .ok_or_else(|| E::invalid_value(Unexpected::Str(text), &self))
            }

            fn visit_unit<E: de::Error>(self) -> Result<LooseNumber, E> {
                Ok(LooseNumber(None))
            }

            fn visit_none<E: de::Error>(self) -> Result<LooseNumber, E> {
                Ok(LooseNumber(None))
            }
        }

        deserializer.deserialize_any(NumberVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize)]
    struct Probe<'a> {
        #[serde(borrow, default)]
        id: Option<Text<'a>>,
        #[serde(default)]
        value: LooseNumber,
    }

    #[test]
    fn ids_as_numbers_or_text_and_numbers_as_text() {
        let probe: Probe = serde_json::from_str(r#"{"id": 1234, "value": "38.9072"}"#).unwrap();
        assert_eq!(non_empty(&probe.id), Some("1234"));
        assert_eq!(probe.value, LooseNumber(Some(38.9072)));

        let probe: Probe = serde_json::from_str(r#"{"id": "cam-1", "value": -77.03}"#).unwrap();
        assert!(matches!(probe.id.unwrap().0, Cow::Borrowed("cam-1")));
        assert_eq!(probe.value, LooseNumber(Some(-77.03)));
    }

    #[test]
    fn null_and_blank_are_absent() {
        let probe: Probe = serde_json::from_str(r#"{"id": null, "value": null}"#).unwrap();
        assert_eq!(non_empty(&probe.id), None);
        assert_eq!(probe.value, LooseNumber(None));
        let probe: Probe = serde_json::from_str(r#"{"id": "  ", "value": ""}"#).unwrap();
        assert_eq!(non_empty(&probe.id), None);
        assert_eq!(probe.value, LooseNumber(None));
    }

    #[test]
    fn text_that_is_no_number_is_refused_with_the_text() {
        let error = serde_json::from_str::<Probe>(r#"{"value": "north"}"#)
            .err()
            .unwrap();
        assert!(error.to_string().contains("\"north\""), "{error}");
    }

    #[test]
    fn escaped_text_is_decoded() {
        let probe: Probe = serde_json::from_str(r#"{"id": "a\/b"}"#).unwrap();
        assert_eq!(non_empty(&probe.id), Some("a/b"));
    }
}
