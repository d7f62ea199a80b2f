//! Normalization: turns a decoded read into a canonical one, or says precisely why it cannot.
//!
//! The rules are documented for users in `schemas/README.md`; keep the two in step.

use xxhash_rust::xxh3::xxh3_128;

use crate::jurisdiction::normalize_jurisdiction;
use crate::read::{PlateRead, Timestamp};

/// Plates shorter than this are almost always OCR fragments (a bolt, a sticker), not plates.
pub const MIN_PLATE_LEN: usize = 2;
/// No jurisdiction we know issues plates longer than this; longer text is OCR noise or a banner.
pub const MAX_PLATE_LEN: usize = 10;
/// Reader clocks drift; a read this far ahead of the time we ingest it is a broken clock, not a read.
pub const MAX_CLOCK_AHEAD_MS: i64 = 24 * 3600 * 1000;
/// 2000-01-01T00:00:00Z: nothing before this is a read from a networked plate reader.
pub const EARLIEST_PLAUSIBLE_MS: i64 = 946_684_800_000;
/// Confidence a hair above 1 is float noise from a vendor's arithmetic; more is a wrong scale.
const CONFIDENCE_TOLERANCE: f32 = 1e-3;

/// Why a read was refused. The `code` is a stable label for metrics and dead letters.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InvalidRead {
    #[error("plate is empty after removing separators (read {0:?})")]
    EmptyPlate(String),
    #[error(
        "plate {plate:?} has {len} characters; plates have {MIN_PLATE_LEN} to {MAX_PLATE_LEN}"
    )]
    ImplausiblePlateLength { plate: String, len: usize },
    #[error("plate {plate:?} contains {character:?}, which no plate has")]
    ImplausiblePlateCharacter { plate: String, character: char },
    #[error("reader_id is empty")]
    MissingReaderId,
    #[error("vendor is empty")]
    MissingVendor,
    #[error("observed_at {observed_at} is before 2000-01-01")]
    ObservedTooEarly { observed_at: Timestamp },
    #[error("observed_at {observed_at} is more than 24 h after ingest time {ingested_at}")]
    ObservedInFuture {
        observed_at: Timestamp,
        ingested_at: Timestamp,
    },
    #[error("latitude {0} is outside -90..90")]
    LatitudeOutOfRange(f64),
    #[error("longitude {0} is outside -180..180")]
    LongitudeOutOfRange(f64),
    #[error("only one of lat/lon is present")]
    HalfACoordinate,
    #[error("confidence {0} is outside 0..1")]
    ConfidenceOutOfRange(f32),
    #[error("vehicle {attribute} confidence {confidence} is outside 0..1")]
    AttributeConfidenceOutOfRange {
        attribute: &'static str,
        confidence: f32,
    },
    #[error("frames is 0: a read stands for at least one report")]
    NoFrames,
    #[error("last_observed_at {last_observed_at} is before observed_at {observed_at}")]
    LastObservedBeforeObserved {
        observed_at: Timestamp,
        last_observed_at: Timestamp,
    },
    #[error("embedding contains a value that is not finite")]
    EmbeddingNotFinite,
}

impl InvalidRead {
    pub fn code(&self) -> &'static str {
        match self {
            Self::EmptyPlate(_) => "empty_plate",
            Self::ImplausiblePlateLength { .. } => "implausible_plate_length",
            Self::ImplausiblePlateCharacter { .. } => "implausible_plate_character",
            Self::MissingReaderId => "missing_reader_id",
            Self::MissingVendor => "missing_vendor",
            Self::ObservedTooEarly { .. } => "observed_too_early",
            Self::ObservedInFuture { .. } => "observed_in_future",
            Self::LatitudeOutOfRange(_) => "latitude_out_of_range",
            Self::LongitudeOutOfRange(_) => "longitude_out_of_range",
            Self::HalfACoordinate => "half_a_coordinate",
            Self::ConfidenceOutOfRange(_) | Self::AttributeConfidenceOutOfRange { .. } => {
                "confidence_out_of_range"
            }
            Self::NoFrames | Self::LastObservedBeforeObserved { .. } => "inconsistent_pass",
            Self::EmbeddingNotFinite => "embedding_not_finite",
        }
    }
}

/// Folds one character to the ASCII letter or digit it stands for, if it stands for one.
///
/// Readers and upstream systems hand us full-width forms (CJK input methods), and Cyrillic or Greek
/// capitals that look identical to Latin ones (Eastern European plates, copy-paste from documents).
/// A hotlist entry typed in Latin must match them.
pub(crate) fn fold_lookalike(character: char) -> Option<char> {
    if character.is_ascii_alphanumeric() {
        return Some(character.to_ascii_uppercase());
    }
    // Full-width ASCII variants sit at a fixed distance from ASCII.
    if ('\u{FF10}'..='\u{FF5A}').contains(&character) {
        let ascii = char::from_u32(character as u32 - 0xFEE0)?;
        return ascii
            .is_ascii_alphanumeric()
            .then(|| ascii.to_ascii_uppercase());
    }
    let folded = match character {
        // Cyrillic capitals and lowercase that share a glyph with a Latin capital.
        'А' | 'а' => 'A',
        'В' | 'в' => 'B',
        'Е' | 'е' | 'Ё' | 'ё' => 'E',
        'К' | 'к' => 'K',
        'М' | 'м' => 'M',
        'Н' | 'н' => 'H',
        'О' | 'о' => 'O',
        'Р' | 'р' => 'P',
        'С' | 'с' => 'C',
        'Т' | 'т' => 'T',
        'У' | 'у' => 'Y',
        'Х' | 'х' => 'X',
        'І' | 'і' => 'I',
        'Ј' | 'ј' => 'J',
        'Ѕ' | 'ѕ' => 'S',
        // Greek capitals that share a glyph with a Latin capital.
        'Α' => 'A',
        'Β' => 'B',
        'Ε' => 'E',
        'Ζ' => 'Z',
        'Η' => 'H',
        'Ι' => 'I',
        'Κ' => 'K',
        'Μ' => 'M',
        'Ν' => 'N',
        'Ο' => 'O',
        'Ρ' => 'P',
        'Τ' => 'T',
        'Υ' => 'Y',
        'Χ' => 'X',
        _ => return None,
    };
    Some(folded)
}

/// Characters readers and people put between plate groups; they carry no identity.
fn is_plate_separator(character: char) -> bool {
    character.is_whitespace()
        || matches!(
            character,
            '-' | '.'
                | '·'
                | '•'
                | '‧'
                | '_'
                | '/'
                | '‐'
                | '‑'
                | '–'
                | '—'
                | '\u{30FB}'
                | '\u{FF0D}'
        )
}

/// Normalizes plate text: uppercase, separators removed, look-alike characters folded to ASCII.
pub fn normalize_plate(plate: &str) -> Result<String, InvalidRead> {
    let mut normalized = String::with_capacity(plate.len());
    for character in plate.chars() {
        if is_plate_separator(character) {
            continue;
        }
        match fold_lookalike(character) {
            Some(folded) => normalized.push(folded),
            None => {
                return Err(InvalidRead::ImplausiblePlateCharacter {
                    plate: plate.to_owned(),
                    character,
                })
            }
        }
    }
    if normalized.is_empty() {
        return Err(InvalidRead::EmptyPlate(plate.to_owned()));
    }
    if !(MIN_PLATE_LEN..=MAX_PLATE_LEN).contains(&normalized.len()) {
        return Err(InvalidRead::ImplausiblePlateLength {
            plate: plate.to_owned(),
            len: normalized.len(),
        });
    }
    Ok(normalized)
}

/// A read id that is the same every time the same observation is decoded, so replays and
/// re-deliveries produce the same id: 28 hex characters, the observation time in milliseconds
/// (12) then 64 bits of xxh3-128 over vendor, reader, time and plate (16). Time first, so ids
/// sort by observation time like ULIDs: neighbouring rows of the time-sorted archive share the
/// ids' leading characters, which zstd and the Parquet statistics both use. Two reads get one id
/// only if they share the millisecond and 64 hash bits: at 100,000 reads a second, about once in
/// 100,000 years. Hash bits beyond that cost every archived read on disk: with 80 the simulated
/// archive (whose image URIs name reads by id) took 65.7 bytes a read, with 64 it takes 59.2.
pub fn derive_read_id(
    vendor: &str,
    reader_id: &str,
    observed_at: Timestamp,
    plate: &str,
) -> String {
    let mut key = Vec::with_capacity(vendor.len() + reader_id.len() + plate.len() + 24);
    key.extend_from_slice(vendor.as_bytes());
    key.push(0);
    key.extend_from_slice(reader_id.as_bytes());
    key.push(0);
    key.extend_from_slice(&observed_at.millis().to_le_bytes());
    key.push(0);
    key.extend_from_slice(plate.as_bytes());
    let time = u64::try_from(observed_at.millis()).unwrap_or(0) & TIME_PREFIX_MASK;
    // By hand: `format!` took about 1,300 instructions a read for these 28 characters.
    let mut id = String::with_capacity(28);
    push_hex(&mut id, time, 12);
    push_hex(&mut id, (xxh3_128(&key) >> 64) as u64, 16);
    id
}

/// Appends the low `digits` hex digits of `value`, lowercase, most significant first.
fn push_hex(text: &mut String, value: u64, digits: u32) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for digit in (0..digits).rev() {
        text.push(char::from(HEX[((value >> (digit * 4)) & 0xf) as usize]));
    }
}

/// The 48 bits of milliseconds a read id's time prefix holds (until the year 10889).
const TIME_PREFIX_MASK: u64 = (1 << 48) - 1;

/// Whether `confidence` is on the 0..1 scale, allowing the float noise [`CONFIDENCE_TOLERANCE`]
/// allows.
fn confidence_in_range(confidence: f32) -> bool {
    confidence.is_finite() && (0.0..=1.0 + CONFIDENCE_TOLERANCE).contains(&confidence)
}

/// Attribute confidences follow the plate's rule: a policy compares them with 0..1 thresholds,
/// so a value on another scale would pass or fail every one of them.
fn check_attribute_confidences(
    vehicle: &mut crate::read::VehicleAttributes,
) -> Result<(), InvalidRead> {
    for (attribute, value) in [
        ("make", &mut vehicle.make),
        ("model", &mut vehicle.model),
        ("color", &mut vehicle.color),
        ("body_type", &mut vehicle.body_type),
    ] {
        let Some(confidence) = value.as_mut().and_then(|value| value.confidence.as_mut()) else {
            continue;
        };
        if !confidence_in_range(*confidence) {
            return Err(InvalidRead::AttributeConfidenceOutOfRange {
                attribute,
                confidence: *confidence,
            });
        }
        *confidence = confidence.min(1.0);
    }
    Ok(())
}

/// Makes a decoded read canonical in place: validates what must be valid, derives what can be
/// derived, and drops what is present but meaningless (a `0,0` position).
pub fn normalize_read(read: &mut PlateRead, ingested_at: Timestamp) -> Result<(), InvalidRead> {
    if read.vendor.trim().is_empty() {
        return Err(InvalidRead::MissingVendor);
    }
    if read.reader_id.trim().is_empty() {
        return Err(InvalidRead::MissingReaderId);
    }
    read.plate_norm = normalize_plate(&read.plate)?;

    if read.observed_at.millis() < EARLIEST_PLAUSIBLE_MS {
        return Err(InvalidRead::ObservedTooEarly {
            observed_at: read.observed_at,
        });
    }
    if read.observed_at.millis() > ingested_at.millis() + MAX_CLOCK_AHEAD_MS {
        return Err(InvalidRead::ObservedInFuture {
            observed_at: read.observed_at,
            ingested_at,
        });
    }
    read.ingested_at.get_or_insert(ingested_at);

    match (read.lat, read.lon) {
        (Some(lat), Some(lon)) => {
            if !(-90.0..=90.0).contains(&lat) {
                return Err(InvalidRead::LatitudeOutOfRange(lat));
            }
            if !(-180.0..=180.0).contains(&lon) {
                return Err(InvalidRead::LongitudeOutOfRange(lon));
            }
            // 0,0 ("null island") is what a reader without a GPS fix sends.
            if lat == 0.0 && lon == 0.0 {
                read.lat = None;
                read.lon = None;
            }
        }
        (None, None) => {}
        _ => return Err(InvalidRead::HalfACoordinate),
    }

    if !confidence_in_range(read.confidence) {
        return Err(InvalidRead::ConfidenceOutOfRange(read.confidence));
    }
    read.confidence = read.confidence.min(1.0);
    check_attribute_confidences(&mut read.vehicle)?;

    if read.frames == 0 {
        return Err(InvalidRead::NoFrames);
    }
    if let Some(last_observed_at) = read.last_observed_at {
        if last_observed_at < read.observed_at {
            return Err(InvalidRead::LastObservedBeforeObserved {
                observed_at: read.observed_at,
                last_observed_at,
            });
        }
    }

    read.heading = read
        .heading
        .filter(|heading| heading.is_finite())
        .map(|heading| heading.rem_euclid(360.0));

    read.jurisdiction = read
        .jurisdiction
        .as_deref()
        .and_then(normalize_jurisdiction);

    if let Some(embedding) = &read.embedding {
        if embedding.iter().any(|value| !value.is_finite()) {
            return Err(InvalidRead::EmbeddingNotFinite);
        }
    }

    crate::vendor::vocabulary::canonicalize_vehicle(&mut read.vehicle);
    if read.read_id.trim().is_empty() {
        read.read_id = derive_read_id(&read.vendor, &read.reader_id, read.observed_at, &read.plate);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::read::{ImageRefs, VehicleAttributes};

    pub(crate) fn sample_read() -> PlateRead {
        PlateRead {
            read_id: String::new(),
            vendor: "simulator".into(),
            reader_id: "dc-r-001".into(),
            camera_id: None,
            observed_at: Timestamp::parse_rfc3339("2026-11-24T17:00:00Z").unwrap(),
            ingested_at: None,
            plate: "abc 1234".into(),
            plate_norm: String::new(),
            jurisdiction: Some("dc".into()),
            confidence: 0.9,
            lat: Some(38.9),
            lon: Some(-77.03),
            heading: Some(-90.0),
            motion: None,
            vehicle: VehicleAttributes::default(),
            images: ImageRefs::default(),
            embedding: None,
            source: None,
            frames: 1,
            last_observed_at: None,
            duplicate_of: None,
        }
    }

    fn ingest_time() -> Timestamp {
        Timestamp::parse_rfc3339("2026-11-24T17:00:01Z").unwrap()
    }

    #[test]
    fn plates_lose_separators_and_case_and_fold_lookalikes() {
        assert_eq!(normalize_plate("abc-1234").unwrap(), "ABC1234");
        assert_eq!(normalize_plate(" 7X·2 .9 ").unwrap(), "7X29");
        assert_eq!(normalize_plate("ＡＢＣ１２３").unwrap(), "ABC123");
        // Cyrillic А, В, С, Е, Т look exactly like Latin capitals on a plate.
        assert_eq!(normalize_plate("АВС123ЕТ").unwrap(), "ABC123ET");
    }

    #[test]
    fn implausible_plates_are_refused_with_the_reason() {
        assert!(matches!(
            normalize_plate(" - "),
            Err(InvalidRead::EmptyPlate(_))
        ));
        assert!(matches!(
            normalize_plate("A"),
            Err(InvalidRead::ImplausiblePlateLength { len: 1, .. })
        ));
        assert!(matches!(
            normalize_plate("ABCDEFGHIJK"),
            Err(InvalidRead::ImplausiblePlateLength { len: 11, .. })
        ));
        assert!(matches!(
            normalize_plate("AB#12"),
            Err(InvalidRead::ImplausiblePlateCharacter { character: '#', .. })
        ));
    }

    #[test]
    fn a_read_is_completed_and_cleaned() {
        let mut read = sample_read();
        normalize_read(&mut read, ingest_time()).unwrap();
        assert_eq!(read.plate_norm, "ABC1234");
        assert_eq!(read.plate, "abc 1234", "the plate as read is kept");
        assert_eq!(read.jurisdiction.as_deref(), Some("US-DC"));
        assert_eq!(read.heading, Some(270.0));
        assert_eq!(read.ingested_at, Some(ingest_time()));
        assert_eq!(read.read_id.len(), 28);

        let mut again = sample_read();
        normalize_read(&mut again, ingest_time()).unwrap();
        assert_eq!(again.read_id, read.read_id, "read ids are stable");
    }

    #[test]
    fn vehicle_attributes_are_archived_in_the_vocabulary_whatever_the_sender_wrote() {
        use crate::read::Attribute;
        let mut read = sample_read();
        read.vehicle.make = Some(Attribute::new("Chevy", Some(0.9)));
        read.vehicle.model = Some(Attribute::new("Chevy Malibu", None));
        read.vehicle.color = Some(Attribute::new("GREY", Some(0.8)));
        read.vehicle.body_type = Some(Attribute::new("plaid", None));
        let ingested_at = read.observed_at;
        normalize_read(&mut read, ingested_at).unwrap();
        let value = |attribute: &Option<Attribute>| attribute.as_ref().map(|a| a.value.clone());
        assert_eq!(value(&read.vehicle.make).as_deref(), Some("chevrolet"));
        assert_eq!(value(&read.vehicle.color).as_deref(), Some("gray"));
        assert_eq!(read.vehicle.color.as_ref().unwrap().confidence, Some(0.8));
        assert_eq!(
            value(&read.vehicle.body_type),
            None,
            "no guess for an unknown value"
        );
        assert_eq!(
            value(&read.vehicle.model).as_deref(),
            Some("malibu"),
            "the make's alias glued in front is not the model"
        );
    }

    #[test]
    fn read_ids_sort_by_observation_time_and_tell_reads_of_one_millisecond_apart() {
        let at = |millis| Timestamp::from_millis(millis);
        let earlier = derive_read_id("rekor", "dc-r-1", at(1_764_000_000_000), "ZZZ999");
        let later = derive_read_id("axis", "dc-r-2", at(1_764_000_000_001), "AAA111");
        assert!(earlier < later, "{earlier} then {later}");
        assert!(earlier.starts_with(&format!("{:012x}", 1_764_000_000_000u64)));
        assert!(earlier.chars().all(|c| c.is_ascii_hexdigit()) && earlier.len() == 28);

        let same_moment = [
            derive_read_id("rekor", "dc-r-1", at(1_764_000_000_000), "ZZZ998"),
            derive_read_id("rekor", "dc-r-3", at(1_764_000_000_000), "ZZZ999"),
            derive_read_id("axis", "dc-r-1", at(1_764_000_000_000), "ZZZ999"),
        ];
        for other in &same_moment {
            assert_ne!(*other, earlier);
            assert_eq!(other[..12], earlier[..12], "same millisecond, same prefix");
        }
        // Ids already archived must be derived again unchanged (duplicates are found by id):
        // pinned to the id this version derives, which is what `format!` wrote before.
        assert_eq!(earlier, "019ab697e800b77f8655c7118ebf");
    }

    #[test]
    fn refusals_of_attribute_confidences_and_passes_say_what_was_sent() {
        use crate::read::Attribute;
        let mut read = sample_read();
        read.vehicle.make = Some(Attribute::new("honda", Some(91.0)));
        let error = normalize_read(&mut read, ingest_time()).unwrap_err();
        assert_eq!(
            error.to_string(),
            "vehicle make confidence 91 is outside 0..1"
        );

        let mut read = sample_read();
        read.frames = 1000;
        read.last_observed_at = Timestamp::parse_rfc3339("2020-01-01T00:00:00Z");
        let error = normalize_read(&mut read, ingest_time()).unwrap_err();
        assert!(error.to_string().contains("2020-01-01"), "{error}");

        // A pass folded upstream, and float noise on an attribute, are fine.
        let mut read = sample_read();
        read.frames = 3;
        read.last_observed_at = Some(Timestamp(read.observed_at.0 + 800));
        read.vehicle.color = Some(Attribute::new("red", Some(1.0005)));
        normalize_read(&mut read, ingest_time()).unwrap();
        assert_eq!(read.vehicle.color.unwrap().confidence, Some(1.0));
    }

    #[test]
    fn null_island_is_no_position() {
        let mut read = sample_read();
        read.lat = Some(0.0);
        read.lon = Some(0.0);
        normalize_read(&mut read, ingest_time()).unwrap();
        assert_eq!((read.lat, read.lon), (None, None));
    }

    #[test]
    fn bad_positions_times_and_confidences_are_refused() {
        use crate::read::Attribute;
        type Spoil = fn(&mut PlateRead);
        let cases: Vec<(Spoil, &str)> = vec![
            (|r| r.lat = Some(91.0), "latitude_out_of_range"),
            (|r| r.lon = Some(-181.0), "longitude_out_of_range"),
            (|r| r.lon = None, "half_a_coordinate"),
            (|r| r.confidence = 93.0, "confidence_out_of_range"),
            (|r| r.confidence = f32::NAN, "confidence_out_of_range"),
            (|r| r.observed_at = Timestamp(0), "observed_too_early"),
            (
                |r| r.observed_at = Timestamp(r.observed_at.0 + 3 * 86_400_000),
                "observed_in_future",
            ),
            (|r| r.reader_id = " ".into(), "missing_reader_id"),
            (
                |r| r.vehicle.make = Some(Attribute::new("honda", Some(91.0))),
                "confidence_out_of_range",
            ),
            (
                |r| r.vehicle.color = Some(Attribute::new("red", Some(-5.0))),
                "confidence_out_of_range",
            ),
            (|r| r.frames = 0, "inconsistent_pass"),
            (
                |r| {
                    r.frames = 1000;
                    r.last_observed_at = Some(Timestamp(r.observed_at.0 - 1));
                },
                "inconsistent_pass",
            ),
        ];
        for (spoil, expected) in cases {
            let mut read = sample_read();
            spoil(&mut read);
            let error = normalize_read(&mut read, ingest_time()).unwrap_err();
            assert_eq!(error.code(), expected, "{error}");
        }
    }
}
