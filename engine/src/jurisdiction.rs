//! Plate-issuing jurisdictions in one form: ISO 3166-2 style `CC-SS` (`US-DC`, `CA-ON`), or a bare
//! ISO 3166-1 alpha-2 country (`PL`) when only the country is known.
//!
//! Readers write `us-dc`, `DC`, `md`, `US-MD` or `Maryland`. A bare two-letter code is taken as a US
//! state or territory, then a Canadian province, because that is what North American readers mean by
//! it. Anything not recognized becomes unknown: a wrong jurisdiction on an alert is worse than none.

use std::collections::HashMap;
use std::sync::LazyLock;

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

/// ISO 3166-1 alpha-3 → alpha-2 (Axis and other European readers send `USA`, `POL`), plus `XKX`
/// (Kosovo, user-assigned but on plates). US territories with their own alpha-3 code are in
/// `US_TERRITORIES_ALPHA3` instead, because their plates are issued under ISO 3166-2:US.
const ALPHA3_COUNTRIES: &[(&str, &str)] = &[
    ("AFG", "AF"),
    ("ALA", "AX"),
    ("ALB", "AL"),
    ("DZA", "DZ"),
    ("AND", "AD"),
    ("AGO", "AO"),
    ("AIA", "AI"),
    ("ATA", "AQ"),
    ("ATG", "AG"),
    ("ARG", "AR"),
    ("ARM", "AM"),
    ("ABW", "AW"),
    ("AUS", "AU"),
    ("AUT", "AT"),
    ("AZE", "AZ"),
    ("BHS", "BS"),
    ("BHR", "BH"),
    ("BGD", "BD"),
    ("BRB", "BB"),
    ("BLR", "BY"),
    ("BEL", "BE"),
    ("BLZ", "BZ"),
    ("BEN", "BJ"),
    ("BMU", "BM"),
    ("BTN", "BT"),
    ("BOL", "BO"),
    ("BES", "BQ"),
    ("BIH", "BA"),
    ("BWA", "BW"),
    ("BVT", "BV"),
    ("BRA", "BR"),
    ("IOT", "IO"),
    ("BRN", "BN"),
    ("BGR", "BG"),
    ("BFA", "BF"),
    ("BDI", "BI"),
    ("CPV", "CV"),
    ("KHM", "KH"),
    ("CMR", "CM"),
    ("CAN", "CA"),
    ("CYM", "KY"),
    ("CAF", "CF"),
    ("TCD", "TD"),
    ("CHL", "CL"),
    ("CHN", "CN"),
    ("CXR", "CX"),
    ("CCK", "CC"),
    ("COL", "CO"),
    ("COM", "KM"),
    ("COG", "CG"),
    ("COD", "CD"),
    ("COK", "CK"),
    ("CRI", "CR"),
    ("CIV", "CI"),
    ("HRV", "HR"),
    ("CUB", "CU"),
    ("CUW", "CW"),
    ("CYP", "CY"),
    ("CZE", "CZ"),
    ("DNK", "DK"),
    ("DJI", "DJ"),
    ("DMA", "DM"),
    ("DOM", "DO"),
    ("ECU", "EC"),
    ("EGY", "EG"),
    ("SLV", "SV"),
    ("GNQ", "GQ"),
    ("ERI", "ER"),
    ("EST", "EE"),
    ("SWZ", "SZ"),
    ("ETH", "ET"),
    ("FLK", "FK"),
    ("FRO", "FO"),
    ("FJI", "FJ"),
    ("FIN", "FI"),
    ("FRA", "FR"),
    ("GUF", "GF"),
    ("PYF", "PF"),
    ("ATF", "TF"),
    ("GAB", "GA"),
    ("GMB", "GM"),
    ("GEO", "GE"),
    ("DEU", "DE"),
    ("GHA", "GH"),
    ("GIB", "GI"),
    ("GRC", "GR"),
    ("GRL", "GL"),
    ("GRD", "GD"),
    ("GLP", "GP"),
    ("GTM", "GT"),
    ("GGY", "GG"),
    ("GIN", "GN"),
    ("GNB", "GW"),
    ("GUY", "GY"),
    ("HTI", "HT"),
    ("HMD", "HM"),
    ("VAT", "VA"),
    ("HND", "HN"),
    ("HKG", "HK"),
    ("HUN", "HU"),
    ("ISL", "IS"),
    ("IND", "IN"),
    ("IDN", "ID"),
    ("IRN", "IR"),
    ("IRQ", "IQ"),
    ("IRL", "IE"),
    ("IMN", "IM"),
    ("ISR", "IL"),
    ("ITA", "IT"),
    ("JAM", "JM"),
    ("JPN", "JP"),
    ("JEY", "JE"),
    ("JOR", "JO"),
    ("KAZ", "KZ"),
    ("KEN", "KE"),
    ("KIR", "KI"),
    ("PRK", "KP"),
    ("KOR", "KR"),
    ("XKX", "XK"),
    ("KWT", "KW"),
    ("KGZ", "KG"),
    ("LAO", "LA"),
    ("LVA", "LV"),
    ("LBN", "LB"),
    ("LSO", "LS"),
    ("LBR", "LR"),
    ("LBY", "LY"),
    ("LIE", "LI"),
    ("LTU", "LT"),
    ("LUX", "LU"),
    ("MAC", "MO"),
    ("MDG", "MG"),
    ("MWI", "MW"),
    ("MYS", "MY"),
    ("MDV", "MV"),
    ("MLI", "ML"),
    ("MLT", "MT"),
    ("MHL", "MH"),
    ("MTQ", "MQ"),
    ("MRT", "MR"),
    ("MUS", "MU"),
    ("MYT", "YT"),
    ("MEX", "MX"),
    ("FSM", "FM"),
    ("MDA", "MD"),
    ("MCO", "MC"),
    ("MNG", "MN"),
    ("MNE", "ME"),
    ("MSR", "MS"),
    ("MAR", "MA"),
    ("MOZ", "MZ"),
    ("MMR", "MM"),
    ("NAM", "NA"),
    ("NRU", "NR"),
    ("NPL", "NP"),
    ("NLD", "NL"),
    ("NCL", "NC"),
    ("NZL", "NZ"),
    ("NIC", "NI"),
    ("NER", "NE"),
    ("NGA", "NG"),
    ("NIU", "NU"),
    ("NFK", "NF"),
    ("MKD", "MK"),
    ("NOR", "NO"),
    ("OMN", "OM"),
    ("PAK", "PK"),
    ("PLW", "PW"),
    ("PSE", "PS"),
    ("PAN", "PA"),
    ("PNG", "PG"),
    ("PRY", "PY"),
    ("PER", "PE"),
    ("PHL", "PH"),
    ("PCN", "PN"),
    ("POL", "PL"),
    ("PRT", "PT"),
    ("QAT", "QA"),
    ("REU", "RE"),
    ("ROU", "RO"),
    ("RUS", "RU"),
    ("RWA", "RW"),
    ("BLM", "BL"),
    ("SHN", "SH"),
    ("KNA", "KN"),
    ("LCA", "LC"),
    ("MAF", "MF"),
    ("SPM", "PM"),
    ("VCT", "VC"),
    ("WSM", "WS"),
    ("SMR", "SM"),
    ("STP", "ST"),
    ("SAU", "SA"),
    ("SEN", "SN"),
    ("SRB", "RS"),
    ("SYC", "SC"),
    ("SLE", "SL"),
    ("SGP", "SG"),
    ("SXM", "SX"),
    ("SVK", "SK"),
    ("SVN", "SI"),
    ("SLB", "SB"),
    ("SOM", "SO"),
    ("ZAF", "ZA"),
    ("SGS", "GS"),
    ("SSD", "SS"),
    ("ESP", "ES"),
    ("LKA", "LK"),
    ("SDN", "SD"),
    ("SUR", "SR"),
    ("SJM", "SJ"),
    ("SWE", "SE"),
    ("CHE", "CH"),
    ("SYR", "SY"),
    ("TWN", "TW"),
    ("TJK", "TJ"),
    ("TZA", "TZ"),
    ("THA", "TH"),
    ("TLS", "TL"),
    ("TGO", "TG"),
    ("TKL", "TK"),
    ("TON", "TO"),
    ("TTO", "TT"),
    ("TUN", "TN"),
    ("TUR", "TR"),
    ("TKM", "TM"),
    ("TCA", "TC"),
    ("TUV", "TV"),
    ("UGA", "UG"),
    ("UKR", "UA"),
    ("ARE", "AE"),
    ("GBR", "GB"),
    ("USA", "US"),
    ("UMI", "UM"),
    ("URY", "UY"),
    ("UZB", "UZ"),
    ("VUT", "VU"),
    ("VEN", "VE"),
    ("VNM", "VN"),
    ("VGB", "VG"),
    ("WLF", "WF"),
    ("ESH", "EH"),
    ("YEM", "YE"),
    ("ZMB", "ZM"),
    ("ZWE", "ZW"),
];

/// Territories that have an alpha-3 country code but are US subdivisions for plates.
const US_TERRITORIES_ALPHA3: &[(&str, &str)] = &[
    ("PRI", "PR"),
    ("GUM", "GU"),
    ("VIR", "VI"),
    ("ASM", "AS"),
    ("MNP", "MP"),
];

/// An ISO 3166-1 alpha-2 country code as alpha-3 (for encoding Axis messages).
pub fn alpha3_of_alpha2(code: &str) -> Option<&'static str> {
    ALPHA3_COUNTRIES
        .iter()
        .find(|(_, alpha2)| alpha2.eq_ignore_ascii_case(code))
        .map(|(alpha3, _)| *alpha3)
}

/// An ISO 3166-1 alpha-3 country code as alpha-2.
pub fn alpha2_of_alpha3(code: &str) -> Option<&'static str> {
    static ALPHA2_BY_ALPHA3: LazyLock<HashMap<&'static str, &'static str>> =
        LazyLock::new(|| first_wins(ALPHA3_COUNTRIES.iter().copied()));
    if code.bytes().any(|byte| byte.is_ascii_lowercase()) {
        return ALPHA2_BY_ALPHA3
            .get(code.to_ascii_uppercase().as_str())
            .copied();
    }
    ALPHA2_BY_ALPHA3.get(code).copied()
}

/// Every reader's read passes through [`normalize_jurisdiction`]: looking a state up by scanning
/// the table cost more than matching the read against a million-entry hotlist.
static US_INDEX: LazyLock<HashMap<&'static str, &'static str>> =
    LazyLock::new(|| subdivision_index(US_SUBDIVISIONS));
static CA_INDEX: LazyLock<HashMap<&'static str, &'static str>> =
    LazyLock::new(|| subdivision_index(CA_SUBDIVISIONS));

/// Each subdivision's code and name, both mapped to its code.
fn subdivision_index(
    table: &'static [(&'static str, &'static str)],
) -> HashMap<&'static str, &'static str> {
    first_wins(
        table
            .iter()
            .flat_map(|&(code, name)| [(code, code), (name, code)]),
    )
}

/// A map that answers as a scan of `pairs` in order would: the first pair with the key.
fn first_wins(
    pairs: impl Iterator<Item = (&'static str, &'static str)>,
) -> HashMap<&'static str, &'static str> {
    let mut map = HashMap::new();
    for (key, value) in pairs {
        map.entry(key).or_insert(value);
    }
    map
}

/// `CC-SS`, built without `format!`'s machinery (it is on every read's path).
fn subdivision_of(country: &str, code: &str) -> String {
    let mut jurisdiction = String::with_capacity(country.len() + 1 + code.len());
    jurisdiction.push_str(country);
    jurisdiction.push('-');
    jurisdiction.push_str(code);
    jurisdiction
}

fn find_subdivision(
    index: &HashMap<&'static str, &'static str>,
    key: &str,
) -> Option<&'static str> {
    index.get(key).copied()
}

/// Maps any way a reader writes a jurisdiction to `CC-SS`, or `None` when it is not recognized.
pub fn normalize_jurisdiction(raw: &str) -> Option<String> {
    let mut cleaned = raw.trim().to_ascii_uppercase();
    if cleaned.contains('_') {
        cleaned = cleaned.replace('_', "-");
    }
    if cleaned.is_empty() || cleaned == "-" || cleaned == "UNKNOWN" {
        return None;
    }
    if let Some((country, subdivision)) = cleaned.split_once('-') {
        let (country_code, table) = match country {
            "US" | "USA" => ("US", &*US_INDEX),
            "CA" | "CAN" => ("CA", &*CA_INDEX),
            _ => {
                // `POL-MZ`: a readers' alpha-3 country in front of the subdivision.
                let (country, cleaned) = match alpha2_of_alpha3(country) {
                    Some(alpha2) if country.len() == 3 => {
                        (alpha2, format!("{alpha2}-{subdivision}"))
                    }
                    _ => (country, cleaned.clone()),
                };
                let plausible = country.len() == 2
                    && (1..=3).contains(&subdivision.len())
                    && country.chars().all(|c| c.is_ascii_alphabetic())
                    && subdivision.chars().all(|c| c.is_ascii_alphanumeric());
                return plausible.then_some(cleaned);
            }
        };
        return find_subdivision(table, subdivision).map(|code| subdivision_of(country_code, code));
    }
    if let Some(code) = find_subdivision(&US_INDEX, &cleaned) {
        return Some(subdivision_of("US", code));
    }
    if let Some(code) = find_subdivision(&CA_INDEX, &cleaned) {
        return Some(subdivision_of("CA", code));
    }
    // Only the country is known (Axis `plateCountry` without a region). Bare two-letter
    // countries are not accepted above: `DE` is Delaware and `NA` means "not available".
    if cleaned.len() == 3 {
        if let Some((_, code)) = US_TERRITORIES_ALPHA3
            .iter()
            .find(|(alpha3, _)| *alpha3 == cleaned)
        {
            return Some(subdivision_of("US", code));
        }
        return alpha2_of_alpha3(&cleaned).map(str::to_owned);
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
    fn alpha3_countries_map_to_alpha2() {
        for (raw, expected) in [
            ("USA", "US"),
            ("usa", "US"),
            ("POL", "PL"),
            ("DEU", "DE"),
            ("CAN", "CA"),
            ("PRI", "US-PR"),
            ("USA-DC", "US-DC"),
            ("USA-Maryland", "US-MD"),
            ("POL-MZ", "PL-MZ"),
        ] {
            assert_eq!(
                normalize_jurisdiction(raw).as_deref(),
                Some(expected),
                "{raw}"
            );
        }
        assert_eq!(super::alpha3_of_alpha2("pl"), Some("POL"));
        for raw in ["ZZZ", "UNK", "XXX-AB"] {
            assert_eq!(normalize_jurisdiction(raw), None, "{raw}");
        }
    }

    #[test]
    fn unknown_stays_unknown() {
        for raw in ["", "-", "XX", "Atlantis", "US-ZZ", "unknown"] {
            assert_eq!(normalize_jurisdiction(raw), None, "{raw}");
        }
    }
}
