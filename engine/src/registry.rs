//! The registry of plate readers and cameras (CameraConnect-style): where readers stand and where
//! residents, businesses and agencies have cameras whose footage an investigator may request.
//! Registering a private camera gives no live access; only `live-access-camera` partners do.
//!
//! Loaded from CSV (`schemas/registry.md`) or GeoJSON (a FeatureCollection of Points).

use std::fmt;
use std::io::Read;
use std::path::Path;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::geo::valid_position;

/// What a registry entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SourceKind {
    /// A plate reader at a fixed site; its reads are in the archive.
    FixedReader,
    /// A plate reader on a patrol car; the position is the centre of its patrol area.
    MobileReader,
    /// A camera an agency owns; footage on request through the owning agency.
    PublicCamera,
    /// A resident's or business's camera registered so investigators know footage may exist;
    /// footage only by asking the owner, never live.
    PrivateRegisteredCamera,
    /// A partner camera investigators may view live.
    LiveAccessCamera,
}

impl SourceKind {
    pub const ALL: [SourceKind; 5] = [
        SourceKind::FixedReader,
        SourceKind::MobileReader,
        SourceKind::PublicCamera,
        SourceKind::PrivateRegisteredCamera,
        SourceKind::LiveAccessCamera,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::FixedReader => "fixed-reader",
            SourceKind::MobileReader => "mobile-reader",
            SourceKind::PublicCamera => "public-camera",
            SourceKind::PrivateRegisteredCamera => "private-registered-camera",
            SourceKind::LiveAccessCamera => "live-access-camera",
        }
    }

    pub fn is_reader(self) -> bool {
        matches!(self, SourceKind::FixedReader | SourceKind::MobileReader)
    }

    /// How an investigator gets footage or reads from it.
    pub fn footage(self) -> &'static str {
        match self {
            SourceKind::FixedReader | SourceKind::MobileReader => "reads in the archive",
            SourceKind::PublicCamera => "request from the owning agency",
            SourceKind::PrivateRegisteredCamera => "request from the owner (no live access)",
            SourceKind::LiveAccessCamera => "live access",
        }
    }
}

impl fmt::Display for SourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SourceKind {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let wanted = text.trim().to_ascii_lowercase().replace('_', "-");
        SourceKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == wanted)
            .ok_or_else(|| {
                let known: Vec<_> = SourceKind::ALL.iter().map(|kind| kind.as_str()).collect();
                format!(
                    "unknown kind {text:?}; expected one of {}",
                    known.join(", ")
                )
            })
    }
}

/// One reader or camera.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegistryEntry {
    /// The reader's `reader_id` in reads, or the camera's id.
    pub id: String,
    pub kind: SourceKind,
    pub name: Option<String>,
    pub lat: f64,
    pub lon: f64,
    /// Direction the reader or camera looks, degrees clockwise from north; `None` for all-round.
    pub fov_direction: Option<f64>,
    pub owner: Option<String>,
    pub contact: Option<String>,
    pub access_terms: Option<String>,
}

/// The CSV header, in order; also the columns of the `readers` and `cameras` query tables.
pub const REGISTRY_CSV_HEADER: [&str; 9] = [
    "id",
    "kind",
    "name",
    "lat",
    "lon",
    "fov_direction",
    "owner",
    "contact",
    "access_terms",
];

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("reading the registry {path}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("registry {path}, line {line}: {reason}")]
    BadCsvRow {
        path: String,
        line: u64,
        reason: String,
    },
    #[error("registry {path}: {reason}")]
    BadGeoJson { path: String, reason: String },
    #[error("registry {path}: not .csv, .geojson or .json")]
    UnknownFormat { path: String },
}

#[derive(Deserialize)]
struct CsvRow {
    id: String,
    kind: String,
    #[serde(default)]
    name: Option<String>,
    lat: String,
    lon: String,
    #[serde(default)]
    fov_direction: Option<String>,
    #[serde(default)]
    owner: Option<String>,
    #[serde(default)]
    contact: Option<String>,
    #[serde(default)]
    access_terms: Option<String>,
}

fn non_empty(value: Option<String>) -> Option<String> {
    value
        .map(|text| text.trim().to_owned())
        .filter(|text| !text.is_empty())
}

fn parse_number(field: &str, text: &str) -> Result<f64, String> {
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|value| value.is_finite())
        .ok_or_else(|| format!("{field} {text:?} is not a number"))
}

#[allow(clippy::too_many_arguments)]
fn entry(
    id: String,
    kind: &str,
    name: Option<String>,
    lat: f64,
    lon: f64,
    fov_direction: Option<f64>,
    owner: Option<String>,
    contact: Option<String>,
    access_terms: Option<String>,
) -> Result<RegistryEntry, String> {
    let id = id.trim().to_owned();
    if id.is_empty() {
        return Err("id is empty".to_owned());
    }
    let kind = kind.parse::<SourceKind>()?;
    if !valid_position(lat, lon) {
        return Err(format!(
            "position ({lat}, {lon}) is not a WGS 84 coordinate"
        ));
    }
    if let Some(direction) = fov_direction {
        if !(0.0..=360.0).contains(&direction) {
            return Err(format!("fov_direction {direction} is not 0..360 degrees"));
        }
    }
    Ok(RegistryEntry {
        id,
        kind,
        name: non_empty(name),
        lat,
        lon,
        fov_direction,
        owner: non_empty(owner),
        contact: non_empty(contact),
        access_terms: non_empty(access_terms),
    })
}

/// Reads a registry CSV (header [`REGISTRY_CSV_HEADER`]; `id`, `kind`, `lat`, `lon` required).
pub fn read_csv<R: Read>(input: R, path: &str) -> Result<Vec<RegistryEntry>, RegistryError> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(crate::csv_text::RecordLines::new(input));
    let mut entries = Vec::new();
    let headers = reader
        .headers()
        .map_err(|error| RegistryError::BadCsvRow {
            path: path.to_owned(),
            line: 1,
            reason: error.to_string(),
        })?
        .clone();
    reader.get_mut().next_record_line();
    let mut row = csv::ByteRecord::new();
    let mut index = 0;
    loop {
        let more = reader.read_byte_record(&mut row);
        // The physical line the row starts on (the csv crate's count drifts with CRLF endings
        // and empty lines).
        let line = reader
            .get_mut()
            .next_record_line()
            .unwrap_or(index as u64 + 2);
        index += 1;
        let bad = |reason: String| RegistryError::BadCsvRow {
            path: path.to_owned(),
            line,
            reason,
        };
        match more {
            Ok(true) => {}
            Ok(false) => break,
            // A field left open reads to the end of the file, making a row of too few fields.
            Err(_) if reader.get_ref().unterminated_quote_line().is_some() => break,
            Err(error) => return Err(bad(error.to_string())),
        }
        let row: CsvRow = crate::csv_text::text_record(std::mem::take(&mut row))
            .deserialize(Some(&headers))
            .map_err(|error| bad(error.to_string()))?;
        let lat = parse_number("lat", &row.lat).map_err(bad)?;
        let lon = parse_number("lon", &row.lon).map_err(bad)?;
        let fov_direction = match non_empty(row.fov_direction) {
            Some(text) => Some(parse_number("fov_direction", &text).map_err(bad)?),
            None => None,
        };
        entries.push(
            entry(
                row.id,
                &row.kind,
                row.name,
                lat,
                lon,
                fov_direction,
                row.owner,
                row.contact,
                row.access_terms,
            )
            .map_err(bad)?,
        );
    }
    // A quoted field left open runs to the end of the file, swallowing every row after it.
    if let Some(line) = reader.get_ref().unterminated_quote_line() {
        return Err(RegistryError::BadCsvRow {
            path: path.to_owned(),
            line,
            reason: "a quoted field opens here and is never closed (a missing \")".to_owned(),
        });
    }
    Ok(entries)
}

/// Reads a GeoJSON FeatureCollection of Point features whose properties carry the CSV's columns.
pub fn read_geojson(text: &str, path: &str) -> Result<Vec<RegistryEntry>, RegistryError> {
    let bad = |reason: String| RegistryError::BadGeoJson {
        path: path.to_owned(),
        reason,
    };
    let document: serde_json::Value =
        serde_json::from_str(text).map_err(|error| bad(error.to_string()))?;
    let features = document
        .get("features")
        .and_then(serde_json::Value::as_array)
        .ok_or_else(|| bad("not a FeatureCollection (no \"features\" array)".to_owned()))?;
    let mut entries = Vec::with_capacity(features.len());
    for (index, feature) in features.iter().enumerate() {
        let bad_feature = |reason: String| bad(format!("feature {index}: {reason}"));
        let geometry = &feature["geometry"];
        if geometry["type"] != "Point" {
            return Err(bad_feature("geometry is not a Point".to_owned()));
        }
        let coordinates = geometry["coordinates"]
            .as_array()
            .filter(|pair| pair.len() >= 2)
            .ok_or_else(|| bad_feature("Point has no [lon, lat] coordinates".to_owned()))?;
        let (Some(lon), Some(lat)) = (coordinates[0].as_f64(), coordinates[1].as_f64()) else {
            return Err(bad_feature("coordinates are not numbers".to_owned()));
        };
        let properties = &feature["properties"];
        let text = |key: &str| -> Option<String> {
            match &properties[key] {
                serde_json::Value::String(value) => Some(value.clone()),
                serde_json::Value::Number(value) => Some(value.to_string()),
                _ => None,
            }
        };
        let id = text("id")
            .or_else(|| match &feature["id"] {
                serde_json::Value::String(value) => Some(value.clone()),
                serde_json::Value::Number(value) => Some(value.to_string()),
                _ => None,
            })
            .ok_or_else(|| bad_feature("no id".to_owned()))?;
        let kind = text("kind").ok_or_else(|| bad_feature("no kind".to_owned()))?;
        let fov_direction = match &properties["fov_direction"] {
            serde_json::Value::Null => None,
            value => Some(
                value
                    .as_f64()
                    .ok_or_else(|| bad_feature("fov_direction is not a number".to_owned()))?,
            ),
        };
        entries.push(
            entry(
                id,
                &kind,
                text("name"),
                lat,
                lon,
                fov_direction,
                text("owner"),
                text("contact"),
                text("access_terms"),
            )
            .map_err(bad_feature)?,
        );
    }
    Ok(entries)
}

/// Loads a registry file by its extension: `.csv`, or `.geojson`/`.json`.
pub fn load(path: &Path) -> Result<Vec<RegistryEntry>, RegistryError> {
    let shown = path.display().to_string();
    let io = |source| RegistryError::Io {
        path: shown.clone(),
        source,
    };
    let extension = path
        .extension()
        .and_then(|ext| ext.to_str())
        .map(str::to_ascii_lowercase);
    match extension.as_deref() {
        Some("csv") => read_csv(std::fs::File::open(path).map_err(io)?, &shown),
        Some("geojson" | "json") => {
            read_geojson(&std::fs::read_to_string(path).map_err(io)?, &shown)
        }
        _ => Err(RegistryError::UnknownFormat { path: shown }),
    }
}

/// Writes entries as registry CSV.
pub fn write_csv<W: std::io::Write>(entries: &[RegistryEntry], out: W) -> Result<(), csv::Error> {
    let mut writer = csv::Writer::from_writer(out);
    writer.write_record(REGISTRY_CSV_HEADER)?;
    for entry in entries {
        writer.write_record([
            entry.id.as_str(),
            entry.kind.as_str(),
            entry.name.as_deref().unwrap_or(""),
            &entry.lat.to_string(),
            &entry.lon.to_string(),
            &entry
                .fov_direction
                .map(|d| d.to_string())
                .unwrap_or_default(),
            entry.owner.as_deref().unwrap_or(""),
            entry.contact.as_deref().unwrap_or(""),
            entry.access_terms.as_deref().unwrap_or(""),
        ])?;
    }
    writer.flush()?;
    Ok(())
}

/// The simulated city's readers plus cameras near some of them (every kind, a few dozen metres to
/// a few hundred metres away): what the demo and tests investigate with.
pub fn simulated_registry(readers: &[crate::simulate::SimReader]) -> Vec<RegistryEntry> {
    const CAMERA_KINDS: [(SourceKind, &str, &str, &str); 3] = [
        (
            SourceKind::PrivateRegisteredCamera,
            "Registered business camera (simulated)",
            "owner@example.com, 202-555-0142",
            "footage on request to the owner; kept 14 days; no live access",
        ),
        (
            SourceKind::PublicCamera,
            "DC Department of Transportation (simulated)",
            "ddot-video@example.gov",
            "footage on request to the agency; kept 30 days",
        ),
        (
            SourceKind::LiveAccessCamera,
            "Live-access partner (simulated)",
            "rtcc-partners@example.gov",
            "live view from the real-time crime center; recordings kept 7 days",
        ),
    ];
    let mut entries = Vec::new();
    for (index, reader) in readers.iter().enumerate() {
        entries.push(RegistryEntry {
            id: reader.reader_id.clone(),
            kind: if reader.mobile {
                SourceKind::MobileReader
            } else {
                SourceKind::FixedReader
            },
            name: Some(reader.name.clone()),
            lat: reader.lat,
            lon: reader.lon,
            fov_direction: (!reader.mobile).then_some(f64::from(reader.heading)),
            owner: Some("Metropolitan Police Department (simulated)".to_owned()),
            contact: Some("lpr-admin@example.gov".to_owned()),
            access_terms: Some("reads in the platestream archive".to_owned()),
        });
        if reader.mobile {
            continue;
        }
        // Two cameras at most fixed sites, placed deterministically around the reader.
        for camera in 0..2 {
            let slot = index * 2 + camera;
            let (kind, owner, contact, terms) = CAMERA_KINDS[slot % CAMERA_KINDS.len()];
            let distance_m = 40.0 + ((slot * 73) % 260) as f64;
            let bearing = ((slot * 137) % 360) as f64;
            let north = distance_m * bearing.to_radians().cos();
            let east = distance_m * bearing.to_radians().sin();
            let lat = reader.lat + north / 111_320.0;
            let lon = reader.lon + east / (111_320.0 * reader.lat.to_radians().cos());
            entries.push(RegistryEntry {
                id: format!("cam-{:03}-{}", index + 1, camera + 1),
                kind,
                name: Some(format!("near {}", reader.name)),
                lat: (lat * 1e6).round() / 1e6,
                lon: (lon * 1e6).round() / 1e6,
                fov_direction: Some(((slot * 91) % 360) as f64),
                owner: Some(owner.to_owned()),
                contact: Some(contact.to_owned()),
                access_terms: Some(terms.to_owned()),
            });
        }
    }
    entries
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_and_geojson_describe_the_same_entries() {
        let csv = "id,kind,name,lat,lon,fov_direction,owner,contact,access_terms\n\
                   cam-1,private-registered-camera,Corner store,38.9,-77.03,180,J. Doe,202-555-0100,ask the owner\n\
                   dc-r-001,fixed_reader,,38.91,-77.03,,MPD,,\n";
        let from_csv = read_csv(csv.as_bytes(), "test.csv").unwrap();
        let geojson = r#"{"type":"FeatureCollection","features":[
            {"type":"Feature","geometry":{"type":"Point","coordinates":[-77.03,38.9]},
             "properties":{"id":"cam-1","kind":"private-registered-camera","name":"Corner store",
                "fov_direction":180,"owner":"J. Doe","contact":"202-555-0100","access_terms":"ask the owner"}},
            {"type":"Feature","geometry":{"type":"Point","coordinates":[-77.03,38.91]},
             "properties":{"id":"dc-r-001","kind":"fixed-reader","owner":"MPD"}}]}"#;
        let from_geojson = read_geojson(geojson, "test.geojson").unwrap();
        assert_eq!(from_csv, from_geojson);
        assert_eq!(
            from_csv[0].kind.footage(),
            "request from the owner (no live access)"
        );
        assert!(from_csv[1].kind.is_reader());

        let mut written = Vec::new();
        write_csv(&from_csv, &mut written).unwrap();
        assert_eq!(read_csv(written.as_slice(), "again.csv").unwrap(), from_csv);
    }

    #[test]
    fn a_spreadsheet_saved_as_windows_1252_loads() {
        let csv: &[u8] =
            b"\xef\xbb\xbfid,kind,name,lat,lon,fov_direction,owner,contact,access_terms\r\n\
            cam-1,private-registered-camera,Caf\xe9 Luna,38.9,-77.03,90,Caf\xe9 Luna LLC,,\r\n";
        let entries = read_csv(csv, "cameras.csv").unwrap();
        assert_eq!(entries[0].name.as_deref(), Some("Caf\u{e9} Luna"));
        assert_eq!(entries[0].owner.as_deref(), Some("Caf\u{e9} Luna LLC"));
        let bad = read_csv(&b"id,kind,lat,lon\ncam-1,camera,north,-77\n"[..], "c.csv").unwrap_err();
        assert!(bad.to_string().contains("line 2"), "{bad}");
    }

    #[test]
    fn the_shipped_examples_load() {
        let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas/examples");
        let csv = load(&examples.join("registry.csv")).unwrap();
        assert_eq!(csv.len(), 5);
        let geojson = load(&examples.join("registry.geojson")).unwrap();
        assert_eq!(geojson.len(), 3);
        for entry in &geojson {
            assert!(csv.contains(entry), "{entry:?}");
        }
    }

    #[test]
    fn bad_rows_name_the_line_and_the_problem() {
        let csv = "id,kind,lat,lon\ncam-1,camera,38.9,-77.0\n";
        let error = read_csv(csv.as_bytes(), "r.csv").unwrap_err().to_string();
        assert!(
            error.contains("line 2") && error.contains("unknown kind"),
            "{error}"
        );
        let csv = "id,kind,lat,lon\ncam-1,public-camera,98.9,-77.0\n";
        let error = read_csv(csv.as_bytes(), "r.csv").unwrap_err().to_string();
        assert!(error.contains("not a WGS 84"), "{error}");
    }

    #[test]
    fn a_bad_row_is_named_by_its_physical_line_and_an_open_quote_refuses_the_file() {
        // Windows line ends and an empty line: the bad row is on line 4.
        let csv =
            "id,kind,lat,lon\r\ncam-1,public-camera,38.9,-77.0\r\n\r\ncam-2,camera,38.9,-77.0\r\n";
        let error = read_csv(csv.as_bytes(), "r.csv").unwrap_err().to_string();
        assert!(error.contains("line 4"), "{error}");
        // A name whose closing quote is missing would swallow the rows after it.
        let csv = "id,kind,name,lat,lon\ncam-1,public-camera,\"Corner store,38.9,-77.0\n\
                   cam-2,public-camera,Bakery,38.91,-77.01\n";
        let error = read_csv(csv.as_bytes(), "r.csv").unwrap_err().to_string();
        assert!(
            error.contains("line 2") && error.contains("never closed"),
            "{error}"
        );
    }
}
