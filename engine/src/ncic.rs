//! NCIC-style hotlist extracts, as state agencies hand them to plate-reader systems
//! (`schemas/hotlist.md` documents both layouts and where they come from).
//!
//! One record per line. The first character of the NCIC number is the NCIC file the record comes
//! from (`V` stolen vehicle, `P` stolen plate, `W` wanted person, ...), which decides the list.
//! Two layouts are in use:
//!
//! - fixed width: `V123456789LA057020020190509AB123456  CA2009MC2009YAMACYLMCBLK`
//!   (NIC 0–10, ORI 10–19, date of entry 19–27, plate 27–37, plate state 37–39, plate year 39–43,
//!   plate type 43–45, vehicle year 45–49, make 49–53, model 53–56, style 56–58, color 58–)
//! - comma-delimited: `NIC,ORI,entered YYYYMMDD,plate,state,plate year,[plate type,]vehicle year,
//!   make,model,style,color` (11 or 12 fields; the 12-field form carries the plate type).

use std::collections::BTreeMap;
use std::io::BufRead;

use chrono::NaiveDate;

use crate::hotlist::{HotlistEntry, HotlistError, LoadedHotlist, RejectedRow};
use crate::jurisdiction::normalize_jurisdiction;
use crate::read::Timestamp;

/// How the lines of an extract are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NcicLayout {
    FixedWidth,
    Delimited,
}

impl NcicLayout {
    /// Comma-delimited when the line has commas, fixed width otherwise.
    pub fn detect(line: &str) -> Self {
        if line.contains(',') {
            Self::Delimited
        } else {
            Self::FixedWidth
        }
    }
}

/// The list an NCIC file's records go to, with the priority (1 = most urgent) and the reason shown
/// to officers. Files not listed here (boats, articles) carry no plates worth matching.
pub fn ncic_file(code: char) -> Option<(&'static str, u8, &'static str)> {
    Some(match code {
        'A' => ("amber_alert", 1, "AMBER alert (NCIC)"),
        'W' => ("wanted_persons", 1, "wanted person (NCIC)"),
        'L' => (
            "violent_persons",
            1,
            "violent person (NCIC): officer safety",
        ),
        'T' => (
            "gang_terrorist",
            1,
            "gang or known/suspected terrorist (NCIC): do not detain on this alone",
        ),
        'F' => ("felony_vehicles", 1, "vehicle used in a felony (NCIC)"),
        'V' => ("stolen_vehicles", 2, "stolen vehicle (NCIC)"),
        'M' => ("missing_persons", 2, "missing person (NCIC)"),
        'R' => (
            "stolen_canadian_vehicles",
            2,
            "stolen Canadian vehicle (CPIC)",
        ),
        'P' => (
            "stolen_plates",
            3,
            "stolen plate (NCIC): plate may be on another vehicle",
        ),
        'H' => ("protection_orders", 3, "protection order (NCIC)"),
        'K' => ("protective_interest", 3, "protective interest (NCIC)"),
        'C' => ("supervised_release", 4, "supervised release (NCIC)"),
        'X' => ("sex_offenders", 4, "sex offender registry (NCIC)"),
        'N' => ("immigration_violators", 5, "immigration violator (NCIC)"),
        _ => return None,
    })
}

/// The fields of one record, as text, before they are checked.
#[derive(Debug, Default)]
struct RawRecord<'a> {
    nic: &'a str,
    ori: &'a str,
    entered: &'a str,
    plate: &'a str,
    state: &'a str,
    plate_year: &'a str,
    plate_type: &'a str,
    vehicle_year: &'a str,
    make: &'a str,
    model: &'a str,
    style: &'a str,
    color: &'a str,
}

fn column(line: &str, start: usize, end: usize) -> &str {
    line.get(start.min(line.len())..end.min(line.len()))
        .unwrap_or("")
        .trim()
}

fn split_fixed_width(line: &str) -> Result<RawRecord<'_>, String> {
    if !line.is_ascii() {
        return Err("a fixed-width record must be ASCII".to_owned());
    }
    if line.len() < 39 {
        return Err(format!(
            "{} characters; a fixed-width record has at least 39 (up to the plate state)",
            line.len()
        ));
    }
    Ok(RawRecord {
        nic: column(line, 0, 10),
        ori: column(line, 10, 19),
        entered: column(line, 19, 27),
        plate: column(line, 27, 37),
        state: column(line, 37, 39),
        plate_year: column(line, 39, 43),
        plate_type: column(line, 43, 45),
        vehicle_year: column(line, 45, 49),
        make: column(line, 49, 53),
        model: column(line, 53, 56),
        style: column(line, 56, 58),
        color: column(line, 58, line.len()),
    })
}

fn split_delimited(line: &str) -> Result<RawRecord<'_>, String> {
    let fields: Vec<&str> = line.split(',').map(str::trim).collect();
    let field = |index: usize| fields.get(index).copied().unwrap_or("");
    match fields.len() {
        11 => Ok(RawRecord {
            nic: field(0),
            ori: field(1),
            entered: field(2),
            plate: field(3),
            state: field(4),
            plate_year: field(5),
            plate_type: "",
            vehicle_year: field(6),
            make: field(7),
            model: field(8),
            style: field(9),
            color: field(10),
        }),
        12 => Ok(RawRecord {
            nic: field(0),
            ori: field(1),
            entered: field(2),
            plate: field(3),
            state: field(4),
            plate_year: field(5),
            plate_type: field(6),
            vehicle_year: field(7),
            make: field(8),
            model: field(9),
            style: field(10),
            color: field(11),
        }),
        count => Err(format!("{count} fields; a delimited record has 11 or 12")),
    }
}

/// Whether a line begins as a record does: an NCIC number, a file letter and nine digits. A
/// header (`NIC,ORI,...`) or a banner (`HEADER NCIC LPR EXTRACT 20190510`) does not.
fn starts_with_ncic_number(line: &str) -> bool {
    let bytes = line.trim_start().as_bytes();
    bytes.len() >= 10
        && bytes[0].is_ascii_alphabetic()
        && bytes[1..10].iter().all(u8::is_ascii_digit)
}

/// Turns one record into an entry; `Ok(None)` for records of files that carry no plate list.
fn record_to_entry(record: &RawRecord<'_>) -> Result<Option<HotlistEntry>, String> {
    let Some(code) = record.nic.chars().next() else {
        return Err("the NCIC number is empty".to_owned());
    };
    let Some((list, priority, reason)) = ncic_file(code.to_ascii_uppercase()) else {
        return Ok(None);
    };
    // The number is the record's id and the case number an officer quotes to confirm the hit
    // with NCIC: a mangled one (a shifted column, a typing slip) would send them after a record
    // that does not exist.
    let nic = record.nic.to_ascii_uppercase();
    if nic.len() != 10 || !nic.bytes().skip(1).all(|byte| byte.is_ascii_digit()) {
        return Err(format!(
            "NCIC number {:?} is not a file letter and nine digits",
            record.nic
        ));
    }
    if record.plate.is_empty() {
        return Err("no plate: the record names no plate to match".to_owned());
    }
    let mut entry = HotlistEntry::new(list, record.plate).map_err(|error| error.to_string())?;
    if entry.partial {
        return Err(format!(
            "plate {:?} has wildcard characters; NCIC records name whole plates",
            record.plate
        ));
    }
    // Extracts keyed on terminals type a zero for the letter O in state codes (`0H` for Ohio).
    let state = record.state.replace('0', "O");
    if !state.is_empty() {
        entry.jurisdiction =
            Some(normalize_jurisdiction(&state).ok_or_else(|| {
                format!("plate state {:?} is not one we recognize", record.state)
            })?);
    }
    if !record.entered.is_empty() {
        let date = NaiveDate::parse_from_str(record.entered, "%Y%m%d")
            .map_err(|_| format!("date of entry {:?} is not YYYYMMDD", record.entered))?;
        let midnight = date.and_hms_opt(0, 0, 0).map(|time| time.and_utc());
        entry.entered_at = midnight.map(|time| Timestamp(time.timestamp_millis()));
    }
    entry.priority = priority;
    entry.priority_unset = false;
    entry.reason = Some(reason.to_owned());
    entry.ncic_number = Some(nic.clone());
    entry.case_number = Some(nic.clone());
    entry.id = nic;
    entry.plate_type = (!record.plate_type.is_empty()).then(|| record.plate_type.to_owned());
    let attributes: BTreeMap<String, String> = [
        ("ori", record.ori),
        ("plate_year", record.plate_year),
        ("vehicle_year", record.vehicle_year),
        ("make", record.make),
        ("model", record.model),
        ("style", record.style),
        ("color", record.color),
    ]
    .into_iter()
    .filter(|(_, value)| !value.is_empty())
    .map(|(name, value)| (name.to_owned(), value.to_owned()))
    .collect();
    entry.attributes = attributes;
    Ok(Some(entry))
}

/// Loads an NCIC-style extract. The layout is detected from the first record line unless given.
/// A first line that is not a record (one that does not begin with an NCIC number: a header or a
/// banner) is skipped; every other line that cannot be read, the first record included, is
/// refused with its line number while the rest load.
pub fn load_ncic_extract<R: BufRead>(
    source_name: &str,
    input: R,
    layout: Option<NcicLayout>,
) -> Result<LoadedHotlist, HotlistError> {
    let mut loaded = LoadedHotlist::default();
    let mut layout = layout;
    let mut first_line_seen = false;
    let mut rows = Vec::new();
    for (index, line) in input.split(b'\n').enumerate() {
        let line_number = index as u64 + 1;
        let line = line.map_err(|error| HotlistError::Io {
            source_name: source_name.to_owned(),
            error,
        })?;
        let line = crate::csv_text::text_line(line);
        let mut line = line.trim_end_matches(['\r', '\n']);
        if line_number == 1 {
            // A byte order mark (Windows tools write one) would shift every fixed-width field
            // of the first record by one place.
            line = line.trim_start_matches('\u{feff}');
        }
        if line.trim().is_empty() {
            continue;
        }
        // Files begin with a header or a banner often enough that a first line that is no
        // record is passed over; it says nothing of the records' layout either.
        if !std::mem::replace(&mut first_line_seen, true) && !starts_with_ncic_number(line) {
            continue;
        }
        let line_layout = *layout.get_or_insert_with(|| NcicLayout::detect(line));
        let record = match line_layout {
            NcicLayout::FixedWidth => split_fixed_width(line),
            NcicLayout::Delimited => split_delimited(line),
        };
        let outcome = record.and_then(|record| record_to_entry(&record));
        match outcome {
            Ok(Some(entry)) => rows.push((line_number, entry)),
            Ok(None) => {}
            Err(reason) => loaded.rejected.push(RejectedRow {
                line: line_number,
                reason,
            }),
        }
    }
    loaded.keep_last_of_each_id(rows);
    Ok(loaded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_width_records_become_entries_on_the_list_of_their_ncic_file() {
        let extract = "HEADER NCIC LPR EXTRACT 20190510\n\
                       V123456789LA057020020190509AB123456  CA2009MC2009YAMACYLMCBLK\n\
                       P000000001VA0000000201905107XK229    VA2020PC\n\
                       B000000002VA0000000201905107XK230    VA2020PC\n";
        let loaded = load_ncic_extract("x.dat", extract.as_bytes(), None).unwrap();
        assert!(loaded.rejected.is_empty(), "{:?}", loaded.rejected);
        assert_eq!(loaded.entries.len(), 2, "boat records carry no plate list");
        let stolen = &loaded.entries[0];
        assert_eq!(stolen.list, "stolen_vehicles");
        assert_eq!(stolen.plate_norm, "AB123456");
        assert_eq!(stolen.jurisdiction.as_deref(), Some("US-CA"));
        assert_eq!(stolen.plate_type.as_deref(), Some("MC"));
        assert_eq!(stolen.ncic_number.as_deref(), Some("V123456789"));
        assert_eq!(stolen.id, "V123456789");
        assert_eq!(
            stolen.entered_at,
            Timestamp::parse_rfc3339("2019-05-09T00:00:00Z")
        );
        assert_eq!(stolen.attributes["make"], "YAMA");
        assert_eq!(stolen.attributes["color"], "BLK");
        assert_eq!(stolen.attributes["ori"], "LA0570200");
        assert_eq!(loaded.entries[1].list, "stolen_plates");
        assert_eq!(loaded.entries[1].priority, 3);
    }

    #[test]
    fn a_bad_first_record_is_refused_with_its_line_not_skipped_as_a_banner() {
        let extract = "V123456789LA057020020191309AB123456  CA2009MC2009YAMACYLMCBLK\n\
                       V123456790LA057020020190509AB123457  CA2009MC2009YAMACYLMCBLK\n";
        let loaded = load_ncic_extract("x.dat", extract.as_bytes(), None).unwrap();
        assert_eq!(loaded.entries.len(), 1);
        assert_eq!(loaded.rejected.len(), 1, "{:?}", loaded.rejected);
        assert_eq!(loaded.rejected[0].line, 1);
        assert!(loaded.rejected[0].reason.contains("YYYYMMDD"));
    }

    #[test]
    fn an_ncic_number_that_is_not_a_letter_and_nine_digits_is_refused() {
        let extract = "V123456789LA057020020190509AB123456  CA2009MC2009YAMACYLMCBLK\n\
                       V99999999XLA057020020190509AB123457  CA2009MC2009YAMACYLMCBLK\n\
                       v000000010LA057020020190509AB123458  CA2009MC2009YAMACYLMCBLK\n";
        let loaded = load_ncic_extract("x.dat", extract.as_bytes(), None).unwrap();
        let ids: Vec<&str> = loaded
            .entries
            .iter()
            .map(|entry| entry.id.as_str())
            .collect();
        assert_eq!(ids, vec!["V123456789", "V000000010"]);
        assert_eq!(loaded.rejected.len(), 1, "{:?}", loaded.rejected);
        assert_eq!(loaded.rejected[0].line, 2);
        assert!(loaded.rejected[0]
            .reason
            .contains("\"V99999999X\" is not a file letter and nine digits"));
    }

    #[test]
    fn a_record_without_a_plate_is_refused_with_its_line() {
        let extract = "NIC,ORI,DOE,LIC,LIS,LIY,LIT,VYR,VMA,VMO,VST,VCO\n\
                       V845996331,0H0671200,20211122,,OH,2022,TK,2013,CHEV,AVA,PK,CRM\n\
                       B845996332,0H0671200,20211122,,OH,2022,TK,2013,CHEV,AVA,PK,CRM\n";
        let loaded = load_ncic_extract("x.csv", extract.as_bytes(), None).unwrap();
        assert!(loaded.entries.is_empty());
        let refused: Vec<(u64, &str)> = loaded
            .rejected
            .iter()
            .map(|row| (row.line, row.reason.as_str()))
            .collect();
        assert_eq!(refused.len(), 1, "boat records are skipped: {refused:?}");
        assert_eq!(refused[0].0, 2);
        assert!(refused[0].1.contains("no plate"), "{refused:?}");
    }

    #[test]
    fn the_layout_is_that_of_the_first_record_not_of_a_banner() {
        let fixed = "V123456789LA057020020190509AB123456  CA2009MC2009YAMACYLMCBLK\n\
                     P000000001VA0000000201905107XK229    VA2020PC\n";
        let delimited = "V165399977,0H0671200,20200124,GGX-6728,0H,2021,2009,D0DG,CHA,4D,GRY\n\
                         C845996328,0H0671200,20211122,JFJ4764,0H,2022,TK,2013,CHEV,AVA,PK,CRM\n";
        for (banner, records) in [
            ("NCIC LPR EXTRACT, STATE OF VIRGINIA, 20190510", fixed),
            ("NCIC LPR EXTRACT 20190510", delimited),
        ] {
            let extract = format!("{banner}\n{records}");
            let loaded = load_ncic_extract("x.dat", extract.as_bytes(), None).unwrap();
            assert!(
                loaded.rejected.is_empty(),
                "{banner}: {:?}",
                loaded.rejected
            );
            assert_eq!(loaded.entries.len(), 2, "{banner}");
        }
    }

    #[test]
    fn a_repeated_ncic_number_keeps_the_last_record() {
        let extract = "V123456789LA057020020190509AB123456  CA2009MC2009YAMACYLMCBLK\n\
                       V123456789LA057020020190509AB123457  CA2009MC2009YAMACYLMCBLK\n";
        let loaded = load_ncic_extract("x.dat", extract.as_bytes(), None).unwrap();
        assert_eq!(loaded.entries.len(), 1);
        assert_eq!(loaded.entries[0].plate_norm, "AB123457");
        assert_eq!(loaded.repeated.len(), 1);
        assert_eq!(
            (loaded.repeated[0].line, loaded.repeated[0].kept_line),
            (1, 2)
        );
    }

    #[test]
    fn a_byte_order_mark_does_not_shift_the_first_record() {
        for first in [
            "V123456789LA057020020190509AB123456  CA2009MC2009YAMACYLMCBLK",
            "V165399977,0H0671200,20200124,GGX-6728,0H,2021,2009,D0DG,CHA,4D,GRY",
        ] {
            let extract = format!("\u{feff}{first}\r\n");
            let loaded = load_ncic_extract("x.dat", extract.as_bytes(), None).unwrap();
            assert_eq!(loaded.entries.len(), 1, "{first}");
            assert_eq!(loaded.entries[0].ncic_number.as_deref(), Some(&first[..10]));
        }
    }

    #[test]
    fn a_line_that_is_not_utf8_does_not_keep_the_extract_from_loading() {
        let extract: &[u8] =
            b"V165399977,0H0671200,20200124,GGX-6728,0H,2021,2009,D0DG,CHA,4D,GRY\n\
            V165399978,VA0000000,20200124,ABC123,VA,2021,2009,SE\xc1T,CHA,4D,GRY\n";
        let loaded = load_ncic_extract("x.csv", extract, None).unwrap();
        assert_eq!(loaded.entries.len(), 2, "{:?}", loaded.rejected);
        assert_eq!(loaded.entries[1].attributes["make"], "SE\u{c1}T");
    }

    #[test]
    fn delimited_records_with_and_without_plate_type_load() {
        let extract = "C845996328,0H0671200,20211122,JFJ4764,0H,2022,TK,2013,CHEV,AVA,PK,CRM\n\
                       V165399977,0H0671200,20200124,GGX-6728,0H,2021,2009,D0DG,CHA,4D,GRY\n\
                       W165399978,TX0000000,2020-01-24,GGX6729,TX,2021,2009,DODG,CHA,4D,GRY\n\
                       W165399979,TX0000000,20200124,GGX6730,TX\n";
        let loaded = load_ncic_extract("x.csv", extract.as_bytes(), None).unwrap();
        assert_eq!(loaded.entries.len(), 2);
        let supervised = &loaded.entries[0];
        assert_eq!(supervised.list, "supervised_release");
        assert_eq!(
            supervised.jurisdiction.as_deref(),
            Some("US-OH"),
            "0H is Ohio typed with a zero"
        );
        assert_eq!(supervised.plate_type.as_deref(), Some("TK"));
        assert_eq!(loaded.entries[1].plate_norm, "GGX6728");
        assert_eq!(loaded.entries[1].plate_type, None);
        let lines: Vec<u64> = loaded.rejected.iter().map(|row| row.line).collect();
        assert_eq!(lines, vec![3, 4]);
        assert!(loaded.rejected[0].reason.contains("YYYYMMDD"));
        assert!(loaded.rejected[1].reason.contains("11 or 12"));
    }
}
