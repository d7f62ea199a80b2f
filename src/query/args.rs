//! Parsing of the values investigators type: times, windows, distances and places.

use anyhow::{bail, Context, Result};
use platestream_engine::geo::valid_position;
use platestream_engine::Timestamp;

/// A half-open time range `[from, to)` in epoch milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    pub from_ms: i64,
    pub to_ms: i64,
}

/// The bounds of a range given only `--to` or only `--from`: far enough out for any archive, near
/// enough that adding a window to them cannot overflow.
const OPEN_START: i64 = i64::MIN / 4;
const OPEN_END: i64 = i64::MAX / 4;

impl TimeRange {
    /// `from X to Y`, `from X on` or `before Y`, as a report's heading says it.
    pub fn describe(&self) -> String {
        match (self.from_ms <= OPEN_START, self.to_ms >= OPEN_END) {
            (false, false) => format!("from {} to {}", rfc3339(self.from_ms), rfc3339(self.to_ms)),
            (false, true) => format!("from {} on", rfc3339(self.from_ms)),
            (true, false) => format!("before {}", rfc3339(self.to_ms)),
            (true, true) => "at any time".to_owned(),
        }
    }

    pub fn new(from_ms: i64, to_ms: i64) -> Result<Self> {
        if from_ms >= to_ms {
            bail!(
                "the time range {} .. {} is empty: --from must be before --to",
                rfc3339(from_ms),
                rfc3339(to_ms)
            );
        }
        Ok(Self { from_ms, to_ms })
    }

    /// The intersection with another range; an error when they do not overlap.
    pub fn within(self, other: Option<TimeRange>) -> Result<Self> {
        match other {
            None => Ok(self),
            Some(other) => Self::new(self.from_ms.max(other.from_ms), self.to_ms.min(other.to_ms)),
        }
    }
}

/// Times a query takes: 1900-01-01T00:00:00Z ..= 2199-12-31T23:59:59.999Z. No reader read a plate
/// outside them, and DataFusion compares times in nanoseconds, which end in 1677 and 2262.
const EARLIEST_QUERY_MS: i64 = -2_208_988_800_000;
const LATEST_QUERY_MS: i64 = 7_258_118_399_999;

pub fn parse_time(flag: &str, text: &str) -> Result<i64> {
    let mut millis = Timestamp::parse_rfc3339(text)
        .map(Timestamp::millis)
        .with_context(|| {
            format!("{flag} {text:?} is not an RFC 3339 time (e.g. 2026-11-24T17:30:00Z)")
        })?;
    // Reads are stamped to the millisecond: a bound between two milliseconds is the next one,
    // so `>= from` and `< to` keep meaning what was asked (truncating let in the read just
    // before a --from and left out the one just before a --to).
    let between_milliseconds = chrono::DateTime::parse_from_rfc3339(text.trim())
        .is_ok_and(|time| time.timestamp_subsec_nanos() % 1_000_000 != 0);
    if between_milliseconds {
        millis = millis.saturating_add(1);
    }
    if !(EARLIEST_QUERY_MS..=LATEST_QUERY_MS).contains(&millis) {
        bail!("{flag} {text:?} is not between the years 1900 and 2199");
    }
    Ok(millis)
}

pub fn rfc3339(millis: i64) -> String {
    chrono::DateTime::from_timestamp_millis(millis)
        .map(|time| time.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_else(|| millis.to_string())
}

/// `--from`/`--to`, or `--at` ± `--window`; `None` when none is given.
pub fn time_range(
    from: Option<&str>,
    to: Option<&str>,
    at: Option<&str>,
    window: Option<&str>,
) -> Result<Option<TimeRange>> {
    if let Some(at) = at {
        if from.is_some() || to.is_some() {
            bail!("give either --at (with --window) or --from/--to, not both");
        }
        let at = parse_time("--at", at)?;
        let window = parse_duration_ms("--window", window.unwrap_or("30m"))?;
        // A window reaching past the years a query takes reaches as far as any read.
        return TimeRange::new(
            (at - window).max(EARLIEST_QUERY_MS),
            (at + window).min(LATEST_QUERY_MS + 1),
        )
        .map(Some);
    }
    if window.is_some() {
        bail!("--window needs --at");
    }
    match (from, to) {
        (None, None) => Ok(None),
        (from, to) => {
            let from = from.map(|text| parse_time("--from", text)).transpose()?;
            let to = to.map(|text| parse_time("--to", text)).transpose()?;
            TimeRange::new(from.unwrap_or(OPEN_START), to.unwrap_or(OPEN_END)).map(Some)
        }
    }
}

/// The longest duration taken: a century, longer than any archive.
const LONGEST_DURATION_MS: f64 = 100.0 * 365.25 * 86_400_000.0;

/// `90s`, `2m`, `30m`, `1h`, `1d`, or plain seconds.
pub fn parse_duration_ms(flag: &str, text: &str) -> Result<i64> {
    let trimmed = text.trim();
    let (number, unit_ms) = if let Some(n) = trimmed.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = trimmed.strip_suffix('s') {
        (n, 1_000.0)
    } else if let Some(n) = trimmed.strip_suffix("min") {
        (n, 60_000.0)
    } else if let Some(n) = trimmed.strip_suffix('m') {
        (n, 60_000.0)
    } else if let Some(n) = trimmed.strip_suffix('h') {
        (n, 3_600_000.0)
    } else if let Some(n) = trimmed.strip_suffix('d') {
        (n, 86_400_000.0)
    } else {
        (trimmed, 1_000.0)
    };
    match number.trim().parse::<f64>() {
        Ok(value) if value.is_finite() && value > 0.0 && value * unit_ms <= LONGEST_DURATION_MS => {
            Ok((value * unit_ms).round().max(1.0) as i64)
        }
        Ok(value) if value <= 0.0 => bail!("{flag} {text:?} must be longer than zero"),
        Ok(value) if value.is_finite() => bail!("{flag} {text:?} is longer than 100 years"),
        _ => bail!("{flag} {text:?} is not a duration (e.g. 90s, 2m, 30m, 1h, 7d; a bare number is seconds)"),
    }
}

/// `500m`, `1.5km`, `500` (metres).
pub fn parse_distance_m(flag: &str, text: &str) -> Result<f64> {
    // `1KM` and `500M` are metres and kilometres as surely as `1km` and `500m`.
    let lowered = text.trim().to_ascii_lowercase();
    let trimmed = lowered.as_str();
    let (number, unit) = if let Some(n) = trimmed.strip_suffix("km") {
        (n, 1_000.0)
    } else if let Some(n) = trimmed.strip_suffix('m') {
        (n, 1.0)
    } else {
        (trimmed, 1.0)
    };
    match number.trim().parse::<f64>() {
        // Beyond 100 km a "radius" is a region, and the covering cells stop helping.
        Ok(value) if value.is_finite() && value > 0.0 && value * unit <= 100_000.0 => {
            Ok(value * unit)
        }
        Ok(value) if value <= 0.0 => bail!("{flag} {text:?} must be more than zero"),
        _ => bail!("{flag} {text:?} is not a distance of up to 100 km (e.g. 500m, 1.5km; a bare number is metres)"),
    }
}

pub fn check_position(lat: f64, lon: f64) -> Result<()> {
    if !valid_position(lat, lon) {
        bail!("--lat {lat} --lon {lon} is not a position: latitude must be -90..90 and longitude -180..180");
    }
    Ok(())
}

/// One stakeout place: `LAT,LON,RADIUS,FROM,TO`.
#[derive(Debug, Clone, PartialEq)]
pub struct Place {
    pub lat: f64,
    pub lon: f64,
    pub radius_m: f64,
    pub range: TimeRange,
}

pub fn parse_place(text: &str) -> Result<Place> {
    let parts: Vec<&str> = text.split(',').map(str::trim).collect();
    let [lat, lon, radius, from, to] = parts.as_slice() else {
        bail!("--place {text:?} is not LAT,LON,RADIUS,FROM,TO (e.g. 38.9171,-77.0319,300m,2026-11-24T01:00:00Z,2026-11-24T03:00:00Z)");
    };
    let number = |name: &str, value: &str| -> Result<f64> {
        value
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .with_context(|| format!("--place {text:?}: {name} {value:?} is not a number"))
    };
    let (lat, lon) = (number("latitude", lat)?, number("longitude", lon)?);
    if !valid_position(lat, lon) {
        bail!("--place {text:?}: {lat},{lon} is not a position: latitude must be -90..90 and longitude -180..180");
    }
    let (from_ms, to_ms) = (
        parse_time("--place from", from)?,
        parse_time("--place to", to)?,
    );
    if from_ms >= to_ms {
        bail!("--place {text:?}: its time window is empty: FROM must be before TO");
    }
    Ok(Place {
        lat,
        lon,
        radius_m: parse_distance_m("--place radius", radius)?,
        range: TimeRange::new(from_ms, to_ms)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_distances_and_places() {
        assert_eq!(parse_duration_ms("--window", "30m").unwrap(), 1_800_000);
        assert_eq!(parse_duration_ms("--window", "90s").unwrap(), 90_000);
        assert_eq!(parse_duration_ms("--window", "1h").unwrap(), 3_600_000);
        assert!(parse_duration_ms("--window", "-3m").is_err());
        assert!(parse_duration_ms("--window", "soon").is_err());
        let zero = parse_duration_ms("--window", "0s").unwrap_err().to_string();
        assert!(zero.contains("longer than zero"), "{zero}");
        let huge = parse_duration_ms("--window", "99999999999999999m")
            .unwrap_err()
            .to_string();
        assert!(huge.contains("longer than 100 years"), "{huge}");
        let far = parse_time("--from", "1600-01-01T00:00:00Z")
            .unwrap_err()
            .to_string();
        assert!(far.contains("1900 and 2199"), "{far}");
        let wide = time_range(None, None, Some("1950-01-01T00:00:00Z"), Some("36000d"))
            .unwrap()
            .unwrap();
        assert_eq!(wide.from_ms, EARLIEST_QUERY_MS);
        assert_eq!(parse_distance_m("--radius", "500m").unwrap(), 500.0);
        assert_eq!(parse_distance_m("--radius", "1.5km").unwrap(), 1_500.0);
        assert_eq!(parse_distance_m("--radius", "1KM").unwrap(), 1_000.0);
        // A bound between two milliseconds is the next one.
        let second = parse_time("--from", "2026-11-24T13:00:00Z").unwrap();
        assert_eq!(
            parse_time("--from", "2026-11-24T12:59:59.9995Z").unwrap(),
            second
        );
        assert_eq!(
            parse_time("--to", "2026-11-24T13:00:00.0005Z").unwrap(),
            second + 1
        );
        assert_eq!(
            parse_time("--to", "2026-11-24T13:00:00.001Z").unwrap(),
            second + 1
        );
        assert!(parse_distance_m("--radius", "0").is_err());
        let place =
            parse_place("38.9,-77.0,300m,2026-11-24T01:00:00Z,2026-11-24T02:00:00Z").unwrap();
        assert_eq!(place.radius_m, 300.0);
        assert_eq!(place.range.to_ms - place.range.from_ms, 3_600_000);
        // A place's errors name the place's own parts, not the flags of `incident`.
        for (text, says) in [
            (
                "98.9,-77.0,300m,2026-11-24T01:00:00Z,2026-11-24T02:00:00Z",
                "98.9,-77 is not a position",
            ),
            (
                "38.9,-77.0,300m,2026-11-24T02:00:00Z,2026-11-24T01:00:00Z",
                "FROM must be before TO",
            ),
        ] {
            let error = format!("{:#}", parse_place(text).unwrap_err());
            assert!(error.contains(says), "{error}");
            assert!(
                !error.contains("--lat") && !error.contains("--from"),
                "{error}"
            );
        }
    }

    #[test]
    fn ranges_from_flags() {
        let range = time_range(None, None, Some("2026-11-24T17:00:00Z"), Some("30m"))
            .unwrap()
            .unwrap();
        assert_eq!(range.to_ms - range.from_ms, 3_600_000);
        let error = time_range(
            Some("2026-11-24T18:00:00Z"),
            Some("2026-11-24T17:00:00Z"),
            None,
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("empty"), "{error}");
        assert!(time_range(Some("yesterday"), None, None, None).is_err());
    }

    #[test]
    fn a_range_open_at_one_end_is_said_so() {
        let described = |from: Option<&str>, to: Option<&str>| {
            time_range(from, to, None, None)
                .unwrap()
                .unwrap()
                .describe()
        };
        assert_eq!(
            described(Some("2026-11-24T13:30:00Z"), None),
            "from 2026-11-24T13:30:00.000Z on"
        );
        assert_eq!(
            described(None, Some("2026-11-24T13:30:00Z")),
            "before 2026-11-24T13:30:00.000Z"
        );
        assert_eq!(
            described(
                Some("2026-11-24T13:00:00Z"),
                Some("2026-11-24T13:30:00+00:00")
            ),
            "from 2026-11-24T13:00:00.000Z to 2026-11-24T13:30:00.000Z"
        );
    }
}
