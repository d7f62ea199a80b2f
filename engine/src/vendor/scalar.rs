//! A JSON scalar as vendors send it: the same field arrives as `87`, `"87"`, `"87.0 "` or `"-"`
//! depending on firmware, exporter template and whoever forwarded it. Decoders deserialize such
//! fields as [`Lenient`] (borrowing the text when the JSON has no escapes) and ask for the number
//! or the text they need, with a precise error naming the field when it is neither.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, Visitor};

use crate::decode::DecodeError;

/// A number or a text; JSON `null` is `None` around it (`Option<Lenient>`).
#[derive(Debug, Clone, PartialEq)]
pub enum Lenient<'a> {
    Number(f64),
    Text(Cow<'a, str>),
}

/// Vendors' ways of writing "no value" inside a text field.
fn is_placeholder(text: &str) -> bool {
    text.is_empty() || text == "-" || text.eq_ignore_ascii_case("null")
}

impl<'a> Lenient<'a> {
    /// The text, trimmed; `None` for empty text and placeholders (`-`). Numbers are written the
    /// way a person would (`12`, not `12.0`), because some vendors send camera ids as numbers.
    pub fn text(&self) -> Option<Cow<'_, str>> {
        match self {
            Self::Text(text) => {
                let trimmed = text.trim();
                (!is_placeholder(trimmed)).then_some(Cow::Borrowed(trimmed))
            }
            Self::Number(number) if number.fract() == 0.0 && number.abs() < 1e15 => {
                Some(Cow::Owned(format!("{}", *number as i64)))
            }
            Self::Number(number) => Some(Cow::Owned(number.to_string())),
        }
    }

    /// The value as a number: `Ok(None)` for empty text and placeholders, an error naming
    /// `field` for text that is not a number.
    pub fn number(&self, format: &'static str, field: &str) -> Result<Option<f64>, DecodeError> {
        match self {
            Self::Number(number) => Ok(Some(*number)),
            Self::Text(text) => {
                let trimmed = text.trim();
                if is_placeholder(trimmed) {
                    return Ok(None);
                }
                trimmed
                    .parse::<f64>()
                    .map(Some)
                    .map_err(|_| DecodeError::Malformed {
                        format,
                        detail: format!("{field} is not a number: {trimmed:?}"),
                    })
            }
        }
    }
}

/// `number` of an optional field.
pub fn optional_number(
    value: Option<&Lenient<'_>>,
    format: &'static str,
    field: &str,
) -> Result<Option<f64>, DecodeError> {
    match value {
        Some(value) => value.number(format, field),
        None => Ok(None),
    }
}

/// `text` of an optional field.
pub fn optional_text<'v>(value: Option<&'v Lenient<'_>>) -> Option<Cow<'v, str>> {
    value.and_then(Lenient::text)
}

impl<'de: 'a, 'a> Deserialize<'de> for Lenient<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct LenientVisitor;

        impl<'de> Visitor<'de> for LenientVisitor {
            type Value = Lenient<'de>;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number or a text")
            }

            fn visit_borrowed_str<E: de::Error>(self, text: &'de str) -> Result<Self::Value, E> {
                Ok(Lenient::Text(Cow::Borrowed(text)))
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
                Ok(Lenient::Text(Cow::Owned(text.to_owned())))
            }

            fn visit_string<E: de::Error>(self, text: String) -> Result<Self::Value, E> {
                Ok(Lenient::Text(Cow::Owned(text)))
            }

            fn visit_f64<E: de::Error>(self, number: f64) -> Result<Self::Value, E> {
                Ok(Lenient::Number(number))
            }

            fn visit_i64<E: de::Error>(self, number: i64) -> Result<Self::Value, E> {
                Ok(Lenient::Number(number as f64))
            }

            fn visit_u64<E: de::Error>(self, number: u64) -> Result<Self::Value, E> {
                Ok(Lenient::Number(number as f64))
            }

            fn visit_bool<E: de::Error>(self, flag: bool) -> Result<Self::Value, E> {
                Ok(Lenient::Text(Cow::Borrowed(if flag {
                    "true"
                } else {
                    "false"
                })))
            }
        }

        deserializer.deserialize_any(LenientVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Option<Lenient<'_>> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn numbers_arrive_as_numbers_or_texts() {
        for json in ["87", "87.0", "\"87\"", "\" 87 \""] {
            let value = parse(json).unwrap();
            assert_eq!(value.number("test", "f").unwrap(), Some(87.0), "{json}");
        }
        assert_eq!(parse("null"), None);
        let dash = parse("\"-\"").unwrap();
        assert_eq!(dash.number("test", "f").unwrap(), None);
        assert_eq!(dash.text(), None);
    }

    #[test]
    fn a_text_that_is_not_a_number_names_the_field() {
        let error = parse("\"north\"")
            .unwrap()
            .number("genetec", "Latitude")
            .unwrap_err();
        assert!(error.to_string().contains("Latitude"), "{error}");
        assert!(error.to_string().contains("north"), "{error}");
    }

    #[test]
    fn texts_borrow_and_numbers_print_plainly() {
        let json = "\"SHARPV12345\"";
        let value = parse(json).unwrap();
        assert!(matches!(value, Lenient::Text(Cow::Borrowed(_))));
        assert_eq!(value.text().as_deref(), Some("SHARPV12345"));
        assert_eq!(parse("12").unwrap().text().as_deref(), Some("12"));
        assert_eq!(parse("38.5").unwrap().text().as_deref(), Some("38.5"));
    }

    #[test]
    fn objects_are_refused() {
        assert!(serde_json::from_str::<Lenient>("{\"a\":1}").is_err());
    }
}
