//! Reader clocks as vendors write them → UTC.
//!
//! Vendors send epoch seconds, epoch milliseconds (as numbers or strings), ISO 8601 with or without
//! an offset, US-style dates, and date and time in separate fields. A time without an offset is
//! the reader's local time, interpreted in the reader time zone from configuration (UTC unless
//! configured), because guessing a zone would silently shift every read by hours.

use chrono::{DateTime, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone};
use chrono_tz::Tz;

use crate::read::Timestamp;

/// Epoch values below this are seconds (it is 5138-11-16 in seconds, 1973-03-03 in milliseconds).
const SECONDS_BELOW: f64 = 1e11;
/// ...below this milliseconds, below `MICROS_BELOW` microseconds, above that nanoseconds.
const MILLIS_BELOW: f64 = 1e14;
const MICROS_BELOW: f64 = 1e17;

/// An epoch count in seconds, milliseconds, microseconds or nanoseconds, told apart by magnitude:
/// any plausible read time has a magnitude that only one unit can produce.
pub fn from_epoch_number(value: f64) -> Option<Timestamp> {
    if !value.is_finite() || value < 0.0 {
        return None;
    }
    let millis = if value < SECONDS_BELOW {
        value * 1e3
    } else if value < MILLIS_BELOW {
        value
    } else if value < MICROS_BELOW {
        value / 1e3
    } else {
        value / 1e6
    };
    Some(Timestamp::from_millis(millis.round() as i64))
}

/// Why a reader's time text gives no instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    #[error("is not a time")]
    NotATime,
    /// A correct clock never shows it, and guessing which hour the reader meant would put the read
    /// an hour off; the sender must be told the zone is the problem, not the text's form.
    #[error(
        "does not exist in {zone}: that local time falls in the hour skipped when clocks go \
         forward for daylight saving time"
    )]
    SkippedLocalTime { zone: Tz },
}

impl TimeError {
    /// Of two attempts at one text, the failure that says more.
    pub fn or(self, other: Self) -> Self {
        match self {
            Self::SkippedLocalTime { .. } => self,
            Self::NotATime => other,
        }
    }

    /// The refusal's reason for `field` holding `text`: the format's own wording (`not_a_time`)
    /// when the text is no time at all, else what is wrong with the time.
    pub fn reason(self, field: &str, text: &str, not_a_time: impl FnOnce() -> String) -> String {
        match self {
            Self::NotATime => not_a_time(),
            Self::SkippedLocalTime { .. } => format!("{field} {text:?} {self}"),
        }
    }
}

fn local_to_utc(naive: NaiveDateTime, zone: Tz) -> Result<Timestamp, TimeError> {
    match zone.from_local_datetime(&naive) {
        LocalResult::Single(datetime) => Ok(Timestamp::from_millis(datetime.timestamp_millis())),
        // The repeated hour when clocks go back: the earlier instant, as most readers log it.
        LocalResult::Ambiguous(earlier, _) => {
            Ok(Timestamp::from_millis(earlier.timestamp_millis()))
        }
        // The skipped hour when clocks go forward cannot be read on a correct clock.
        LocalResult::None => Err(TimeError::SkippedLocalTime { zone }),
    }
}

const NAIVE_FORMATS: &[&str] = &[
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M",
    "%m/%d/%Y %H:%M:%S%.f",
    "%m/%d/%Y %I:%M:%S %p",
    "%Y/%m/%d %H:%M:%S%.f",
];

const OFFSET_FORMATS: &[&str] = &[
    "%Y-%m-%dT%H:%M:%S%.f%z",
    "%Y-%m-%d %H:%M:%S%.f%z",
    "%Y-%m-%d %H:%M:%S%.f %z",
];

/// Any time text a reader sends. `zone` applies only to texts without an offset.
pub fn parse_time_text(text: &str, zone: Tz) -> Result<Timestamp, TimeError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(TimeError::NotATime);
    }
    if text
        .bytes()
        .all(|byte| byte.is_ascii_digit() || byte == b'.')
    {
        return text
            .parse()
            .ok()
            .and_then(from_epoch_number)
            .ok_or(TimeError::NotATime);
    }
    if let Some(parsed) = Timestamp::parse_rfc3339(text) {
        return Ok(parsed);
    }
    // RFC 3339 with a space for the `T`, or a `+0000` offset.
    for format in OFFSET_FORMATS {
        if let Ok(parsed) = DateTime::parse_from_str(text, format) {
            return Ok(Timestamp::from_millis(parsed.timestamp_millis()));
        }
    }
    for format in NAIVE_FORMATS {
        if let Ok(parsed) = NaiveDateTime::parse_from_str(text, format) {
            return local_to_utc(parsed, zone);
        }
    }
    Err(TimeError::NotATime)
}

/// A date and a time sent in separate fields (Genetec's `DateUtc` + `TimeUtc`). The date may be
/// `YYYY-MM-DD` or `MM/DD/YYYY`; the time `HH:MM:SS` with optional fraction.
pub fn parse_date_and_time(date: &str, time: &str, zone: Tz) -> Result<Timestamp, TimeError> {
    let date = date.trim();
    let date = NaiveDate::parse_from_str(date, "%Y-%m-%d")
        .or_else(|_| NaiveDate::parse_from_str(date, "%m/%d/%Y"))
        .or_else(|_| NaiveDate::parse_from_str(date, "%Y/%m/%d"))
        .map_err(|_| TimeError::NotATime)?;
    let time = time.trim();
    let time = NaiveTime::parse_from_str(time, "%H:%M:%S%.f")
        .or_else(|_| NaiveTime::parse_from_str(time, "%I:%M:%S %p"))
        .or_else(|_| NaiveTime::parse_from_str(time, "%H:%M"))
        .map_err(|_| TimeError::NotATime)?;
    local_to_utc(date.and_time(time), zone)
}

/// A time in a vendor-specific chrono format (Axis' `%Y%m%d %H%M%S%3f`, a generic mapping's
/// `observed_at_format`). A format with an offset (`%z`) gives that instant; without one the time
/// is local in `zone`.
pub fn parse_time_with_format(text: &str, format: &str, zone: Tz) -> Result<Timestamp, TimeError> {
    let text = text.trim();
    if let Ok(parsed) = DateTime::parse_from_str(text, format) {
        return Ok(Timestamp::from_millis(parsed.timestamp_millis()));
    }
    NaiveDateTime::parse_from_str(text, format)
        .map_err(|_| TimeError::NotATime)
        .and_then(|naive| local_to_utc(naive, zone))
}

/// A time zone name from configuration (`America/New_York`, `UTC`).
pub fn parse_zone(name: &str) -> Option<Tz> {
    name.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        Timestamp::parse_rfc3339(text).unwrap()
    }

    #[test]
    fn epoch_units_are_told_apart_by_magnitude() {
        let expected = at("2026-11-24T17:00:00.250Z");
        assert_eq!(from_epoch_number(1_795_539_600.25), Some(expected));
        assert_eq!(from_epoch_number(1_795_539_600_250.0), Some(expected));
        assert_eq!(from_epoch_number(1_795_539_600_250_000.0), Some(expected));
        assert_eq!(
            parse_time_text("1795539600250", Tz::UTC),
            Ok(expected),
            "epoch milliseconds as a string (Axis)"
        );
        assert_eq!(from_epoch_number(-1.0), None);
    }

    #[test]
    fn iso_times_with_and_without_offsets() {
        let expected = at("2026-11-24T17:00:00Z");
        let new_york = parse_zone("America/New_York").unwrap();
        for (text, zone) in [
            ("2026-11-24T17:00:00Z", Tz::UTC),
            ("2026-11-24T12:00:00-05:00", Tz::UTC),
            ("2026-11-24 17:00:00+0000", Tz::UTC),
            ("2026-11-24T17:00:00", Tz::UTC),
            ("2026-11-24T12:00:00", new_york),
            ("2026-11-24 12:00:00.000", new_york),
            ("11/24/2026 12:00:00", new_york),
        ] {
            assert_eq!(parse_time_text(text, zone), Ok(expected), "{text}");
        }
        assert_eq!(
            parse_time_text("yesterday", Tz::UTC),
            Err(TimeError::NotATime)
        );
    }

    #[test]
    fn separate_date_and_time_in_both_date_styles() {
        let expected = at("2026-11-24T17:03:12Z");
        assert_eq!(
            parse_date_and_time("11/24/2026", "17:03:12", Tz::UTC),
            Ok(expected)
        );
        assert_eq!(
            parse_date_and_time("2026-11-24", "17:03:12", Tz::UTC),
            Ok(expected)
        );
        assert_eq!(
            parse_date_and_time("24.11.2026", "17:03:12", Tz::UTC),
            Err(TimeError::NotATime)
        );
    }

    #[test]
    fn vendor_formats_with_and_without_offsets() {
        let new_york = parse_zone("America/New_York").unwrap();
        let expected = at("2026-11-24T17:03:12.345Z");
        assert_eq!(
            parse_time_with_format("20261124 120312345", "%Y%m%d %H%M%S%3f", new_york),
            Ok(expected)
        );
        assert_eq!(
            parse_time_with_format("20261124 120312345-0500", "%Y%m%d %H%M%S%3f%z", Tz::UTC),
            Ok(expected)
        );
        assert_eq!(
            parse_time_with_format("24.11.2026 17:03:12", "%d.%m.%Y %H:%M:%S", Tz::UTC),
            Ok(at("2026-11-24T17:03:12Z"))
        );
        assert_eq!(
            parse_time_with_format("2026-11-24", "%d.%m.%Y %H:%M:%S", Tz::UTC),
            Err(TimeError::NotATime)
        );
    }

    #[test]
    fn daylight_saving_edges() {
        let new_york = parse_zone("America/New_York").unwrap();
        // 2026-11-01 01:30 happens twice in New York; the first is 05:30Z.
        assert_eq!(
            parse_time_text("2026-11-01T01:30:00", new_york),
            Ok(at("2026-11-01T05:30:00Z"))
        );
        // 2026-03-08 02:30 never happens in New York.
        assert_eq!(
            parse_time_text("2026-03-08T02:30:00", new_york),
            Err(TimeError::SkippedLocalTime { zone: new_york })
        );
        assert_eq!(
            parse_date_and_time("03/08/2026", "02:30:00", new_york),
            Err(TimeError::SkippedLocalTime { zone: new_york })
        );
    }
}
