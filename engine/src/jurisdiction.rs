//! Plate-issuing jurisdictions in one form: ISO 3166-2 style `CC-SS` (`US-DC`, `CA-ON`), or a bare
//! ISO 3166-1 alpha-2 country (`PL`) when only the country is known.
//!
//! Readers write `us-dc`, `DC`, `md`, `US-MD` or `Maryland`. A bare two-letter code is taken as a US
//! state or territory, then a Canadian province, because that is what North American readers mean by
//! it. Anything not recognized becomes unknown: a wrong jurisdiction on an alert is worse than none.

/// (code, name) of US states, DC and territories.
const US_SUBDIVISIONS: &[(&str, &str)] = &[
    ("AL", "ALABAMA"),
    ("AK", "ALASKA"),
    ("AZ", "ARIZONA"),
    ("AR", "ARKANSAS"),
    ("CA", "CALIFORNIA"),
    ("CO", "COLORADO"),
    ("CT", "CONNECTICUT"),
    ("DE", "DELAWARE"),
    ("DC", "DISTRICT OF COLUMBIA"),
    ("FL", "FLORIDA"),
    ("GA", "GEORGIA"),
    ("HI", "HAWAII"),
    ("ID", "IDAHO"),
    ("IL", "ILLINOIS"),
    ("IN", "INDIANA"),
    ("IA", "IOWA"),
    ("KS", "KANSAS"),
    ("KY", "KENTUCKY"),
    ("LA", "LOUISIANA"),
    ("ME", "MAINE"),
    ("MD", "MARYLAND"),
    ("MA", "MASSACHUSETTS"),
    ("MI", "MICHIGAN"),
    ("MN", "MINNESOTA"),
    ("MS", "MISSISSIPPI"),
    ("MO", "MISSOURI"),
    ("MT", "MONTANA"),
    ("NE", "NEBRASKA"),
    ("NV", "NEVADA"),
    ("NH", "NEW HAMPSHIRE"),
    ("NJ", "NEW JERSEY"),
    ("NM", "NEW MEXICO"),
    ("NY", "NEW YORK"),
    ("NC", "NORTH CAROLINA"),
    ("ND", "NORTH DAKOTA"),
    ("OH", "OHIO"),
    ("OK", "OKLAHOMA"),
    ("OR", "OREGON"),
    ("PA", "PENNSYLVANIA"),
    ("RI", "RHODE ISLAND"),
    ("SC", "SOUTH CAROLINA"),
    ("SD", "SOUTH DAKOTA"),
    ("TN", "TENNESSEE"),
    ("TX", "TEXAS"),
    ("UT", "UTAH"),
    ("VT", "VERMONT"),
    ("VA", "VIRGINIA"),
    ("WA", "WASHINGTON"),
    ("WV", "WEST VIRGINIA"),
    ("WI", "WISCONSIN"),
    ("WY", "WYOMING"),
    ("PR", "PUERTO RICO"),
    ("GU", "GUAM"),
    ("VI", "VIRGIN ISLANDS"),
    ("AS", "AMERICAN SAMOA"),
    ("MP", "NORTHERN MARIANA ISLANDS"),
];

/// (code, name) of Canadian provinces and territories.
const CA_SUBDIVISIONS: &[(&str, &str)] = &[
    ("AB", "ALBERTA"),
    ("BC", "BRITISH COLUMBIA"),
    ("MB", "MANITOBA"),
    ("NB", "NEW BRUNSWICK"),
    ("NL", "NEWFOUNDLAND AND LABRADOR"),
    ("NS", "NOVA SCOTIA"),
    ("NT", "NORTHWEST TERRITORIES"),
    ("NU", "NUNAVUT"),
    ("ON", "ONTARIO"),
    ("PE", "PRINCE EDWARD ISLAND"),
    ("QC", "QUEBEC"),
    ("SK", "SASKATCHEWAN"),
    ("YT", "YUKON"),
];

fn find_subdivision(
    table: &'static [(&'static str, &'static str)],
    key: &str,
) -> Option<&'static str> {
    table
        .iter()
        .find(|(code, name)| *code == key || *name == key)
        .map(|(code, _)| *code)
}

/// Maps any way a reader writes a jurisdiction to `CC-SS`, or `None` when it is not recognized.
pub fn normalize_jurisdiction(raw: &str) -> Option<String> {
    let cleaned: String = raw
        .trim()
        .chars()
        .map(|character| match character {
            '_' => '-',
            other => other.to_ascii_uppercase(),
        })
        .collect();
    if cleaned.is_empty() || cleaned == "-" || cleaned == "UNKNOWN" {
        return None;
    }
    if let Some((country, subdivision)) = cleaned.split_once('-') {
        let (country_code, table) = match country {
            "US" | "USA" => ("US", US_SUBDIVISIONS),
            "CA" | "CAN" => ("CA", CA_SUBDIVISIONS),
            _ => {
                let plausible = country.len() == 2
                    && (1..=3).contains(&subdivision.len())
                    && country.chars().all(|c| c.is_ascii_alphabetic())
                    && subdivision.chars().all(|c| c.is_ascii_alphanumeric());
                return plausible.then_some(cleaned);
            }
        };
        return find_subdivision(table, subdivision).map(|code| format!("{country_code}-{code}"));
    }
    if let Some(code) = find_subdivision(US_SUBDIVISIONS, &cleaned) {
        return Some(format!("US-{code}"));
    }
    if let Some(code) = find_subdivision(CA_SUBDIVISIONS, &cleaned) {
        return Some(format!("CA-{code}"));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::normalize_jurisdiction;

    #[test]
    fn every_way_readers_write_a_state_maps_to_one_form() {
        for raw in [
            "us-dc",
            "DC",
            "dc",
            "US-DC",
            "District of Columbia",
            " us_dc ",
        ] {
            assert_eq!(
                normalize_jurisdiction(raw).as_deref(),
                Some("US-DC"),
                "{raw}"
            );
        }
        assert_eq!(normalize_jurisdiction("Maryland").as_deref(), Some("US-MD"));
        assert_eq!(normalize_jurisdiction("on").as_deref(), Some("CA-ON"));
        assert_eq!(normalize_jurisdiction("PL-MZ").as_deref(), Some("PL-MZ"));
    }

    #[test]
    fn unknown_stays_unknown() {
        for raw in ["", "-", "XX", "Atlantis", "US-ZZ", "unknown"] {
            assert_eq!(normalize_jurisdiction(raw), None, "{raw}");
        }
    }
}
