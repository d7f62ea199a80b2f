//! A deterministic simulator of plate-reader traffic around Washington, DC.
//!
//! It feeds demos, tests and precision/recall evaluation, so every read comes with the ground truth
//! the engine never sees: which vehicle it was, its real plate, and whether it is on the sample
//! hotlist. Everything is derived from one seed: the same seed and the same sequence of calls give
//! byte-identical output on every machine.
//!
//! The population is built once in [`Simulator::new`]: fixed readers at real DC intersections,
//! bridges and Maryland/Virginia border crossings plus a few patrol cars, and vehicles with plates
//! in the formats their states issue, makes/models/colors at US frequencies, a short route of
//! nearby readers and a Zipf-like popularity. Each read then costs two random draws to pick a vehicle
//! (alias table) and a handful to dress the observation (OCR noise, classifier noise, presentation).

use std::collections::HashSet;
use std::f64::consts::TAU;
use std::io;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::normalize::{derive_read_id, MAX_PLATE_LEN, MIN_PLATE_LEN};
use crate::read::{Attribute, ImageRefs, PlateRead, Timestamp, VehicleAttributes};

/// The `vendor` of every simulated read.
pub const SIMULATOR_VENDOR: &str = "simulator";

/// The header of [`Simulator::write_hotlist_csv`], in column order.
pub const HOTLIST_CSV_HEADER: [&str; 10] = [
    "list",
    "plate",
    "jurisdiction",
    "reason",
    "priority",
    "case_number",
    "description",
    "make",
    "model",
    "color",
];

/// The header of [`Simulator::write_bolo_csv`], in column order.
pub const BOLO_CSV_HEADER: [&str; 10] = [
    "list",
    "plate",
    "reason",
    "priority",
    "id",
    "make",
    "model",
    "color",
    "body_type",
    "reference_vectors",
];

/// A simulated vehicle's true make, model, color and body type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct VehicleLooks {
    pub make: &'static str,
    pub model: &'static str,
    pub color: &'static str,
    pub body_type: &'static str,
}

const IMAGE_BASE_URL: &str = "https://images.platestream.example";

// Independent random streams, so that turning one feature on (embeddings, malformed messages) or
// resizing the hotlist does not change the plates, routes or traffic of an otherwise equal run.
const POPULATION_STREAM: u64 = 1;
const HOTLIST_STREAM: u64 = 2;
const TRAFFIC_STREAM: u64 = 3;
const IDENTITY_STREAM: u64 = 4;
const EMBEDDING_NOISE_STREAM: u64 = 5;
const MALFORMED_STREAM: u64 = 6;
const REPEAT_FRAME_STREAM: u64 = 17;
/// Simulated time between two reads of one vehicle, at least (unless redraws run out).
const MIN_SECONDS_BETWEEN_PASSES: i64 = 60;
const RECENTLY_READ_REDRAWS: usize = 8;

/// Readers often cannot tell the issuing state (plate frame covers it, unusual design).
const UNKNOWN_JURISDICTION_RATE: f64 = 0.03;
/// Zipf–Mandelbrot popularity `1 / (rank + OFFSET)^EXPONENT`: the offset keeps the top commuter at
/// well under 1% of all reads while the long tail is still seen only a handful of times.
const POPULARITY_EXPONENT: f64 = 1.05;
const POPULARITY_OFFSET: f64 = 15.0;
const MIN_ROUTE_LEN: usize = 3;
const MAX_ROUTE_LEN: usize = 6;
/// A route is drawn from the readers closest to the vehicle's home reader.
const ROUTE_NEIGHBORHOOD: usize = 7;
/// Share of Maryland/Virginia vehicles whose home reader is on their state line: commuters enter
/// the District over the border crossings.
const BORDER_COMMUTER_SHARE: f64 = 0.5;
/// Length of the random part of an appearance embedding relative to its shared model/color parts;
/// chosen so that two vehicles of the same model and color have a cosine similarity around 0.4.
const IDENTITY_UNIQUE_WEIGHT: f64 = 0.75;
const IDENTITY_MODEL_WEIGHT: f64 = 0.55;
const IDENTITY_COLOR_WEIGHT: f64 = 0.35;
/// Norm of the per-read noise added to a unit identity vector: same-vehicle cosine ≈ 0.94.
pub const DEFAULT_EMBEDDING_NOISE: f64 = 0.35;
/// Route stops are stored as `u16` and neighbor search is quadratic in the reader count.
const MAX_FIXED_READERS: usize = 10_000;
const METERS_PER_DEGREE_LAT: f64 = 111_320.0;
/// Letters that plate serials use: I, O and Q are left out because they read as 1 and 0.
const SERIAL_LETTERS: &[u8] = b"ABCDEFGHJKLMNPRSTUVWXYZ";

/// How the simulated world is sized and how noisy its readers are.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SimulatorConfig {
    /// Same seed and same calls give byte-identical output.
    pub seed: u64,
    /// Fixed readers; about one mobile patrol-car reader per ten fixed ones is added.
    pub readers: usize,
    /// Distinct vehicles in the population.
    pub vehicles: usize,
    /// Share of vehicles on the sample hotlist.
    pub hotlist_fraction: f64,
    /// Share of reads whose plate text is OCR-noised.
    pub misread_rate: f64,
    /// Share of messages from [`Simulator::next_message`] that are deliberately bad.
    pub malformed_rate: f64,
    /// 0 for no appearance embeddings; otherwise the length of each read's embedding.
    pub embedding_dim: usize,
    /// Norm of the noise added to a vehicle's unit identity vector in each read (0.35: the same
    /// vehicle's reads have a cosine similarity near 0.94).
    pub embedding_noise: f64,
    /// Share of messages from [`Simulator::next_message`] that report the previous vehicle pass
    /// again a few hundred milliseconds later, as readers do once per frame while a vehicle is in
    /// view. Duplicate suppression folds them.
    pub repeat_frame_rate: f64,
    /// Each reader speaks one vendor's format (`crate::vendor::SIMULATED_FORMATS`, assigned by
    /// reader), as in a city that bought readers from several vendors; otherwise all canonical.
    pub vendor_mix: bool,
}

impl SimulatorConfig {
    /// Why these settings cannot make a city, naming the command-line flag.
    pub fn check(&self) -> Result<(), String> {
        if self.vehicles == 0 || self.readers == 0 {
            return Err("--vehicles must be at least 1".to_owned());
        }
        for (flag, share) in [
            ("--hotlist-fraction", self.hotlist_fraction),
            ("--misread-rate", self.misread_rate),
            ("--malformed-rate", self.malformed_rate),
            ("--repeat-frame-rate", self.repeat_frame_rate),
        ] {
            if !(0.0..=1.0).contains(&share) {
                return Err(format!("{flag} {share} is not a share from 0 to 1"));
            }
        }
        if !(self.embedding_noise.is_finite() && self.embedding_noise >= 0.0) {
            return Err(format!(
                "--embedding-noise {} must be 0 or more",
                self.embedding_noise
            ));
        }
        Ok(())
    }
}

impl Default for SimulatorConfig {
    fn default() -> Self {
        Self {
            seed: 42,
            readers: 40,
            vehicles: 20_000,
            hotlist_fraction: 0.01,
            misread_rate: 0.03,
            malformed_rate: 0.0,
            embedding_dim: 0,
            embedding_noise: DEFAULT_EMBEDDING_NOISE,
            repeat_frame_rate: 0.0,
            vendor_mix: false,
        }
    }
}

/// One simulated reader. For a mobile reader the position is the centre of its patrol area; each
/// of its reads is taken somewhere around it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimReader {
    pub reader_id: String,
    pub name: String,
    pub lat: f64,
    pub lon: f64,
    /// Direction of travel the reader covers, degrees clockwise from north (0 for mobile readers,
    /// whose heading changes with every read).
    pub heading: f32,
    pub mobile: bool,
}

/// What really happened at a read, which the engine has to work out on its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroundTruth {
    pub vehicle_id: u32,
    /// The normalized true plate (A-Z0-9).
    pub true_plate: String,
    /// For example `US-DC`.
    pub true_jurisdiction: String,
    /// The vehicle is on the sample hotlist.
    pub hotlisted: bool,
    /// The read's plate text differs from the true plate.
    pub misread: bool,
}

/// The ways [`Simulator::next_message`] spoils a message, in the order it rotates through them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MalformedKind {
    /// A JSON object cut off midway.
    TruncatedJson,
    /// Valid JSON without the required `plate`.
    MissingPlate,
    /// `"plate": ""`.
    EmptyPlate,
    /// A plate with characters no plate has (`AB#$%`).
    ImplausiblePlateCharacters,
    /// Latitude 123.4.
    LatitudeOutOfRange,
    /// Bytes that are not UTF-8 inside the plate string.
    NonUtf8,
    /// A confidence of 87: a 0–100 scale sent to a 0–1 field.
    ConfidenceWrongScale,
}

impl MalformedKind {
    pub const ALL: [MalformedKind; 7] = [
        MalformedKind::TruncatedJson,
        MalformedKind::MissingPlate,
        MalformedKind::EmptyPlate,
        MalformedKind::ImplausiblePlateCharacters,
        MalformedKind::LatitudeOutOfRange,
        MalformedKind::NonUtf8,
        MalformedKind::ConfidenceWrongScale,
    ];
}

/// One message as a reader would put it on the wire, with the truth behind it.
#[derive(Debug, Clone, PartialEq)]
pub struct SimulatedMessage {
    /// A canonical JSON read (compact, no trailing newline), or a malformed message.
    pub payload: Vec<u8>,
    /// `None` for a malformed message.
    pub truth: Option<GroundTruth>,
    pub malformed: bool,
    /// How the message was spoiled, when it was.
    pub malformed_kind: Option<MalformedKind>,
}

/// One row of the sample hotlist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HotlistEntry {
    pub list: String,
    /// As the agency wrote it: the true plate, sometimes with a space.
    pub plate: String,
    pub jurisdiction: String,
    pub reason: String,
    pub priority: u8,
    pub case_number: String,
    pub description: String,
    pub make: String,
    pub model: String,
    pub color: String,
    /// The simulated vehicle the entry is about (not written to the CSV).
    pub vehicle_id: u32,
}

// ---------------------------------------------------------------------------------------------
// Static world data
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Area {
    District,
    MarylandLine,
    VirginiaLine,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Northbound,
    Southbound,
    Eastbound,
    Westbound,
}

impl Direction {
    fn label(self) -> &'static str {
        match self {
            Direction::Northbound => "NB",
            Direction::Southbound => "SB",
            Direction::Eastbound => "EB",
            Direction::Westbound => "WB",
        }
    }

    fn opposite(self) -> Self {
        match self {
            Direction::Northbound => Direction::Southbound,
            Direction::Southbound => Direction::Northbound,
            Direction::Eastbound => Direction::Westbound,
            Direction::Westbound => Direction::Eastbound,
        }
    }
}

struct ReaderSite {
    place: &'static str,
    lat: f64,
    lon: f64,
    /// The road's actual bearing, which for diagonal avenues is not the signed direction.
    heading: f32,
    direction: Direction,
    area: Area,
}

const fn reader_site(
    place: &'static str,
    lat: f64,
    lon: f64,
    heading: f32,
    direction: Direction,
    area: Area,
) -> ReaderSite {
    ReaderSite {
        place,
        lat,
        lon,
        heading,
        direction,
        area,
    }
}

use Area::{District, MarylandLine, VirginiaLine};
use Direction::{Eastbound, Northbound, Southbound, Westbound};

/// Fixed reader sites, most important first: a config with fewer readers takes a prefix.
#[rustfmt::skip]
const READER_SITES: &[ReaderSite] = &[
    reader_site("14th St NW & U St NW", 38.91702, -77.03192, 0.0, Northbound, District),
    reader_site("New York Ave NE & Bladensburg Rd NE", 38.91630, -76.97240, 250.0, Westbound, District),
    reader_site("Pennsylvania Ave SE & 8th St SE", 38.88386, -76.99497, 112.0, Eastbound, District),
    reader_site("K St NW & 16th St NW", 38.90237, -77.03634, 90.0, Eastbound, District),
    reader_site("I-295 at Malcolm X Ave SE", 38.84287, -77.00494, 20.0, Northbound, District),
    reader_site("Georgia Ave NW & Eastern Ave NW", 38.98543, -77.02663, 180.0, Southbound, MarylandLine),
    reader_site("Key Bridge & M St NW", 38.90290, -77.06990, 10.0, Northbound, VirginiaLine),
    reader_site("14th St Bridge / I-395", 38.87560, -77.04290, 20.0, Northbound, VirginiaLine),
    reader_site("Connecticut Ave NW & Chevy Chase Circle", 38.96720, -77.07690, 150.0, Southbound, MarylandLine),
    reader_site("Wisconsin Ave NW & Western Ave NW", 38.96080, -77.08590, 160.0, Southbound, MarylandLine),
    reader_site("Rhode Island Ave NE & Eastern Ave NE", 38.93500, -76.96250, 235.0, Westbound, MarylandLine),
    reader_site("H St NE & 8th St NE", 38.90005, -76.99500, 90.0, Eastbound, District),
    reader_site("New York Ave NE & Florida Ave NE", 38.91480, -77.00350, 250.0, Westbound, District),
    reader_site("K St NW & Connecticut Ave NW", 38.90237, -77.03950, 270.0, Westbound, District),
    reader_site("Georgia Ave NW & Columbia Rd NW", 38.92790, -77.02260, 180.0, Southbound, District),
    reader_site("Connecticut Ave NW & Van Ness St NW", 38.94330, -77.06290, 330.0, Northbound, District),
    reader_site("Wisconsin Ave NW & M St NW", 38.90500, -77.06290, 340.0, Northbound, District),
    reader_site("Eastern Ave NE & New Hampshire Ave NE", 38.96570, -77.00260, 200.0, Southbound, MarylandLine),
    reader_site("East Capitol St & Southern Ave SE", 38.88910, -76.91700, 270.0, Westbound, MarylandLine),
    reader_site("Pennsylvania Ave SE & Southern Ave SE", 38.86290, -76.94720, 300.0, Westbound, MarylandLine),
    reader_site("Theodore Roosevelt Bridge / I-66", 38.89300, -77.06300, 80.0, Eastbound, VirginiaLine),
    reader_site("Arlington Memorial Bridge", 38.88700, -77.05400, 60.0, Eastbound, VirginiaLine),
    reader_site("Chain Bridge & Canal Rd NW", 38.92940, -77.11650, 100.0, Eastbound, VirginiaLine),
    reader_site("I-295 at Pennsylvania Ave SE", 38.87700, -76.97570, 220.0, Southbound, District),
    reader_site("DC-295 at Benning Rd NE", 38.89640, -76.95220, 30.0, Northbound, District),
    reader_site("Rhode Island Ave NE & 4th St NE", 38.92060, -76.99590, 55.0, Eastbound, District),
    reader_site("H St NE & 13th St NE", 38.90010, -76.98800, 270.0, Westbound, District),
    reader_site("Pennsylvania Ave SE & Minnesota Ave SE", 38.87320, -76.97120, 292.0, Westbound, District),
    reader_site("Georgia Ave NW & Missouri Ave NW", 38.96127, -77.02764, 0.0, Northbound, District),
    reader_site("Wisconsin Ave NW & Albemarle St NW", 38.94800, -77.07960, 340.0, Northbound, District),
    reader_site("New York Ave NE & Montana Ave NE", 38.91700, -76.98600, 70.0, Eastbound, District),
    reader_site("Massachusetts Ave NW & Dupont Circle", 38.90960, -77.04340, 300.0, Westbound, District),
    reader_site("16th St NW & Columbia Rd NW", 38.92540, -77.03650, 180.0, Southbound, District),
    reader_site("16th St NW & Eastern Ave NW", 38.98940, -77.03640, 180.0, Southbound, MarylandLine),
    reader_site("Frederick Douglass Bridge / S Capitol St", 38.86450, -77.00780, 0.0, Northbound, District),
    reader_site("11th St Bridge & I-695", 38.87080, -76.99310, 315.0, Northbound, District),
    reader_site("Branch Ave SE & Southern Ave SE", 38.85380, -76.95620, 330.0, Northbound, MarylandLine),
    reader_site("Kenilworth Ave NE & Eastern Ave NE", 38.91260, -76.93810, 210.0, Southbound, MarylandLine),
    reader_site("Constitution Ave NW & 17th St NW", 38.89200, -77.03950, 90.0, Eastbound, District),
    reader_site("M St SE & 8th St SE", 38.87650, -76.99490, 90.0, Eastbound, District),
    reader_site("North Capitol St & Michigan Ave NE", 38.92850, -77.00920, 180.0, Southbound, District),
    reader_site("Benning Rd NE & Minnesota Ave NE", 38.89620, -76.95090, 270.0, Westbound, District),
    reader_site("Martin Luther King Jr Ave SE & Good Hope Rd SE", 38.86670, -76.98570, 0.0, Northbound, District),
    reader_site("Florida Ave NW & 7th St NW", 38.91630, -77.02180, 0.0, Northbound, District),
    reader_site("Independence Ave SW & 14th St SW", 38.88780, -77.03220, 270.0, Westbound, District),
    reader_site("Whitehurst Fwy & K St NW", 38.90300, -77.05900, 90.0, Eastbound, District),
    reader_site("Maine Ave SW & 7th St SW", 38.88010, -77.02340, 300.0, Westbound, District),
    reader_site("K St NW & New Jersey Ave NW", 38.90240, -77.01430, 90.0, Eastbound, District),
];

struct PatrolArea {
    name: &'static str,
    lat: f64,
    lon: f64,
    radius_m: f64,
}

/// Metropolitan Police Department district patrol areas for the mobile readers.
#[rustfmt::skip]
const PATROL_AREAS: &[PatrolArea] = &[
    PatrolArea { name: "MPD 1D patrol car (Capitol Hill / Navy Yard)", lat: 38.88300, lon: -76.99900, radius_m: 900.0 },
    PatrolArea { name: "MPD 3D patrol car (Columbia Heights / U St)", lat: 38.92500, lon: -77.03100, radius_m: 800.0 },
    PatrolArea { name: "MPD 7D patrol car (Anacostia / Congress Heights)", lat: 38.85200, lon: -76.99300, radius_m: 1200.0 },
    PatrolArea { name: "MPD 6D patrol car (Benning Ridge / Deanwood)", lat: 38.89500, lon: -76.94000, radius_m: 1200.0 },
    PatrolArea { name: "MPD 5D patrol car (Trinidad / Ivy City)", lat: 38.90800, lon: -76.98300, radius_m: 900.0 },
    PatrolArea { name: "MPD 4D patrol car (Petworth / Brightwood)", lat: 38.94800, lon: -77.02500, radius_m: 1100.0 },
    PatrolArea { name: "MPD 2D patrol car (Georgetown / Glover Park)", lat: 38.91200, lon: -77.07000, radius_m: 1000.0 },
];

struct PlateFormat {
    /// `L` a serial letter, `N` a digit 1-9, `D` a digit 0-9.
    pattern: &'static [u8],
    /// Letters the first `L` is drawn from, for states whose current series has reached a letter
    /// range (Pennsylvania's `J`–`L…`); empty means any serial letter.
    first_letters: &'static [u8],
    share: f64,
}

const fn plate_format(
    pattern: &'static [u8],
    first_letters: &'static [u8],
    share: f64,
) -> PlateFormat {
    PlateFormat {
        pattern,
        first_letters,
        share,
    }
}

struct IssuingJurisdiction {
    code: &'static str,
    /// Share of vehicles seen in DC traffic.
    share: f64,
    /// Percent of the vehicles registered in the United States, for national hotlists.
    national_share: f64,
    formats: &'static [PlateFormat],
    vanity_share: f64,
    border: Option<Area>,
}

/// A state simulated only as a share of national hotlists, never in the city's traffic.
const fn national_only(
    code: &'static str,
    national_share: f64,
    formats: &'static [PlateFormat],
) -> IssuingJurisdiction {
    IssuingJurisdiction {
        code,
        share: 0.0,
        national_share,
        formats,
        vanity_share: 0.0,
        border: None,
    }
}

const JURISDICTIONS: &[IssuingJurisdiction] = &[
    IssuingJurisdiction {
        code: "US-DC",
        share: 40.0,
        national_share: 0.12,
        formats: &[
            plate_format(b"LLDDDD", b"", 85.0),
            plate_format(b"NDDDDD", b"", 15.0),
        ],
        vanity_share: 0.02,
        border: None,
    },
    IssuingJurisdiction {
        code: "US-MD",
        share: 30.0,
        national_share: 1.8,
        formats: &[
            plate_format(b"NLLDDDD", b"", 85.0),
            plate_format(b"LLLDDD", b"", 15.0),
        ],
        vanity_share: 0.02,
        border: Some(Area::MarylandLine),
    },
    IssuingJurisdiction {
        code: "US-VA",
        share: 20.0,
        national_share: 2.7,
        formats: &[
            plate_format(b"LLLDDDD", b"", 92.0),
            plate_format(b"LLLDDD", b"", 8.0),
        ],
        vanity_share: 0.03,
        border: Some(Area::VirginiaLine),
    },
    IssuingJurisdiction {
        code: "US-PA",
        share: 2.0,
        national_share: 3.9,
        formats: &[plate_format(b"LLLDDDD", b"JKL", 1.0)],
        vanity_share: 0.0,
        border: None,
    },
    IssuingJurisdiction {
        code: "US-NY",
        share: 1.8,
        national_share: 4.0,
        formats: &[plate_format(b"LLLDDDD", b"HJKL", 1.0)],
        vanity_share: 0.0,
        border: None,
    },
    IssuingJurisdiction {
        code: "US-NC",
        share: 1.5,
        national_share: 3.3,
        formats: &[plate_format(b"LLLDDDD", b"HJKPT", 1.0)],
        vanity_share: 0.0,
        border: None,
    },
    IssuingJurisdiction {
        code: "US-FL",
        share: 1.5,
        national_share: 6.4,
        formats: &[plate_format(b"LLLLDD", b"", 1.0)],
        vanity_share: 0.0,
        border: None,
    },
    IssuingJurisdiction {
        code: "US-DE",
        share: 1.2,
        national_share: 0.35,
        formats: &[
            plate_format(b"NDDDDD", b"", 80.0),
            plate_format(b"NDDDD", b"", 20.0),
        ],
        vanity_share: 0.0,
        border: None,
    },
    IssuingJurisdiction {
        code: "US-TX",
        share: 1.0,
        national_share: 8.6,
        formats: &[plate_format(b"LLLDDDD", b"", 1.0)],
        vanity_share: 0.0,
        border: None,
    },
    IssuingJurisdiction {
        code: "US-WV",
        share: 1.0,
        national_share: 0.6,
        formats: &[plate_format(b"NLLDDD", b"", 1.0)],
        vanity_share: 0.0,
        border: None,
    },
];

/// The largest states not already in [`JURISDICTIONS`], with the layout of their current standard
/// plate: seen too rarely in DC to simulate as traffic, but most of any national hotlist.
const OTHER_STATES: &[IssuingJurisdiction] = &[
    national_only("US-CA", 11.2, &[plate_format(b"NLLLDDD", b"", 1.0)]),
    national_only("US-OH", 3.9, &[plate_format(b"LLLDDDD", b"", 1.0)]),
    national_only("US-IL", 3.6, &[plate_format(b"LLDDDDD", b"", 1.0)]),
    national_only("US-GA", 3.1, &[plate_format(b"LLLDDDD", b"", 1.0)]),
    national_only("US-MI", 3.1, &[plate_format(b"LLLDDDD", b"", 1.0)]),
    national_only("US-NJ", 2.6, &[plate_format(b"LDDLLL", b"", 1.0)]),
    national_only("US-WA", 2.5, &[plate_format(b"LLLDDDD", b"", 1.0)]),
    national_only("US-AZ", 2.4, &[plate_format(b"LLLDDDD", b"", 1.0)]),
    national_only("US-TN", 2.3, &[plate_format(b"LLLDDDD", b"", 1.0)]),
    national_only("US-IN", 2.3, &[plate_format(b"DDDLLL", b"", 1.0)]),
    national_only("US-MA", 2.0, &[plate_format(b"NLLLDD", b"", 1.0)]),
    national_only("US-MO", 2.0, &[plate_format(b"LLDLLD", b"", 1.0)]),
    national_only("US-WI", 2.0, &[plate_format(b"LLLDDDD", b"", 1.0)]),
    national_only("US-MN", 2.0, &[plate_format(b"LLLDDD", b"", 1.0)]),
    national_only("US-CO", 2.0, &[plate_format(b"LLLLDDD", b"", 1.0)]),
    national_only("US-SC", 1.7, &[plate_format(b"LLLDDD", b"", 1.0)]),
    national_only("US-AL", 1.8, &[plate_format(b"DLLDDDD", b"", 1.0)]),
    national_only("US-LA", 1.5, &[plate_format(b"DDDLLL", b"", 1.0)]),
    national_only("US-KY", 1.4, &[plate_format(b"DDDLLL", b"", 1.0)]),
    national_only("US-OR", 1.3, &[plate_format(b"DDDLLL", b"", 1.0)]),
    national_only("US-OK", 1.3, &[plate_format(b"LLLDDD", b"", 1.0)]),
];

/// Stems of personalized plates seen around the capital.
const VANITY_STEMS: &[&str] = &[
    "HOYAS", "GOCAPS", "HTTR", "NATS", "DCUTD", "WONK", "FEDGOV", "TERPS", "HOKIES", "OYSTER",
    "BLUCRAB", "METRO", "POTOMAC", "ROCKCRK", "ANACOST", "KSTREET", "LOBBY", "SENATE", "CAPHILL",
    "MYTESLA", "DOGMOM", "BYKRDR", "GOVT", "NOVA",
];

struct VehicleModel {
    make: &'static str,
    model: &'static str,
    body: &'static str,
    /// Relative share of registrations.
    share: f64,
}

const fn vehicle_model(
    make: &'static str,
    model: &'static str,
    body: &'static str,
    share: f64,
) -> VehicleModel {
    VehicleModel {
        make,
        model,
        body,
        share,
    }
}

/// Popular US models with their body type and approximate share of vehicles on the road.
const VEHICLE_MODELS: &[VehicleModel] = &[
    vehicle_model("Toyota", "Camry", "sedan", 3.0),
    vehicle_model("Toyota", "RAV4", "suv", 3.5),
    vehicle_model("Toyota", "Corolla", "sedan", 2.5),
    vehicle_model("Toyota", "Highlander", "suv", 1.5),
    vehicle_model("Toyota", "Tacoma", "pickup", 1.2),
    vehicle_model("Toyota", "Prius", "hatchback", 0.8),
    vehicle_model("Toyota", "Sienna", "minivan", 0.6),
    vehicle_model("Toyota", "4Runner", "suv", 0.6),
    vehicle_model("Honda", "Civic", "sedan", 2.8),
    vehicle_model("Honda", "Accord", "sedan", 2.6),
    vehicle_model("Honda", "CR-V", "suv", 3.0),
    vehicle_model("Honda", "Pilot", "suv", 1.0),
    vehicle_model("Honda", "Odyssey", "minivan", 0.7),
    vehicle_model("Honda", "HR-V", "suv", 0.5),
    vehicle_model("Ford", "F-150", "pickup", 3.2),
    vehicle_model("Ford", "Explorer", "suv", 1.5),
    vehicle_model("Ford", "Escape", "suv", 1.3),
    vehicle_model("Ford", "Fusion", "sedan", 0.8),
    vehicle_model("Ford", "Transit", "van", 0.7),
    vehicle_model("Ford", "Mustang", "coupe", 0.6),
    vehicle_model("Chevrolet", "Silverado", "pickup", 2.3),
    vehicle_model("Chevrolet", "Equinox", "suv", 1.5),
    vehicle_model("Chevrolet", "Malibu", "sedan", 1.0),
    vehicle_model("Chevrolet", "Tahoe", "suv", 0.8),
    vehicle_model("Chevrolet", "Express", "van", 0.4),
    vehicle_model("Chevrolet", "Camaro", "coupe", 0.3),
    vehicle_model("Nissan", "Altima", "sedan", 1.8),
    vehicle_model("Nissan", "Rogue", "suv", 1.8),
    vehicle_model("Nissan", "Sentra", "sedan", 1.2),
    vehicle_model("Nissan", "Pathfinder", "suv", 0.5),
    vehicle_model("Hyundai", "Elantra", "sedan", 1.2),
    vehicle_model("Hyundai", "Tucson", "suv", 1.1),
    vehicle_model("Hyundai", "Sonata", "sedan", 0.9),
    vehicle_model("Hyundai", "Santa Fe", "suv", 0.7),
    vehicle_model("Kia", "Sorento", "suv", 0.7),
    vehicle_model("Kia", "Forte", "sedan", 0.6),
    vehicle_model("Kia", "Soul", "hatchback", 0.5),
    vehicle_model("Tesla", "Model 3", "sedan", 1.0),
    vehicle_model("Tesla", "Model Y", "suv", 1.1),
    vehicle_model("Jeep", "Grand Cherokee", "suv", 1.4),
    vehicle_model("Jeep", "Wrangler", "suv", 1.0),
    vehicle_model("Jeep", "Cherokee", "suv", 0.6),
    vehicle_model("Subaru", "Outback", "suv", 1.0),
    vehicle_model("Subaru", "Forester", "suv", 0.9),
    vehicle_model("Subaru", "Crosstrek", "suv", 0.7),
    vehicle_model("Ram", "1500", "pickup", 1.6),
    vehicle_model("Ram", "ProMaster", "van", 0.4),
    vehicle_model("GMC", "Sierra", "pickup", 0.9),
    vehicle_model("BMW", "3 Series", "sedan", 0.7),
    vehicle_model("BMW", "X5", "suv", 0.6),
    vehicle_model("BMW", "X3", "suv", 0.5),
    vehicle_model("Mercedes-Benz", "C-Class", "sedan", 0.6),
    vehicle_model("Mercedes-Benz", "GLE", "suv", 0.5),
    vehicle_model("Lexus", "RX", "suv", 0.7),
    vehicle_model("Lexus", "ES", "sedan", 0.4),
    vehicle_model("Volkswagen", "Jetta", "sedan", 0.6),
    vehicle_model("Volkswagen", "Tiguan", "suv", 0.5),
    vehicle_model("Volkswagen", "Golf", "hatchback", 0.3),
    vehicle_model("Mazda", "CX-5", "suv", 0.8),
    vehicle_model("Mazda", "Mazda3", "hatchback", 0.4),
    vehicle_model("Dodge", "Charger", "sedan", 0.5),
    vehicle_model("Dodge", "Grand Caravan", "minivan", 0.5),
    vehicle_model("Acura", "MDX", "suv", 0.4),
    vehicle_model("Audi", "Q5", "suv", 0.4),
    vehicle_model("Harley-Davidson", "Street Glide", "motorcycle", 0.2),
    vehicle_model("Honda", "Rebel", "motorcycle", 0.15),
];

struct VehicleColor {
    name: &'static str,
    /// Percent of vehicles on US roads.
    share: f64,
    /// What a color classifier mistakes this color for, most likely first.
    confused_with: &'static [&'static str],
}

const fn vehicle_color(
    name: &'static str,
    share: f64,
    confused_with: &'static [&'static str],
) -> VehicleColor {
    VehicleColor {
        name,
        share,
        confused_with,
    }
}

const VEHICLE_COLORS: &[VehicleColor] = &[
    vehicle_color("white", 25.0, &["silver", "gray"]),
    vehicle_color("black", 22.0, &["gray", "blue"]),
    vehicle_color("gray", 19.0, &["silver", "black"]),
    vehicle_color("silver", 11.0, &["gray", "white"]),
    vehicle_color("blue", 9.0, &["black", "gray"]),
    vehicle_color("red", 9.0, &["orange", "brown"]),
    vehicle_color("brown", 1.8, &["beige", "red"]),
    vehicle_color("green", 1.2, &["gray", "blue"]),
    vehicle_color("beige", 0.8, &["silver", "brown"]),
    vehicle_color("gold", 0.5, &["beige", "yellow"]),
    vehicle_color("orange", 0.4, &["red", "yellow"]),
    vehicle_color("yellow", 0.3, &["orange", "gold"]),
];

const VEHICLE_DETAILS: &[&str] = &[
    "damaged rear bumper",
    "tinted windows",
    "roof rack",
    "missing hubcap",
    "dealer plate frame",
    "cracked windshield",
    "bumper sticker on tailgate",
    "aftermarket rims",
    "dent in driver door",
    "temporary tag in rear window",
    "no front plate",
    "primer-colored hood",
];

#[derive(Clone, Copy)]
struct HotlistKind {
    list: &'static str,
    priority: u8,
    reasons: &'static [&'static str],
    /// NCIC file letter of the case number, or `None` for a local DC case number.
    ncic_file: Option<char>,
    share: f64,
}

const HOTLIST_KINDS: &[HotlistKind] = &[
    HotlistKind {
        list: "stolen_vehicles",
        priority: 1,
        reasons: &["stolen vehicle"],
        ncic_file: Some('V'),
        share: 45.0,
    },
    HotlistKind {
        list: "stolen_plates",
        priority: 1,
        reasons: &["stolen plate"],
        ncic_file: Some('L'),
        share: 20.0,
    },
    HotlistKind {
        list: "wanted_persons",
        priority: 1,
        reasons: &[
            "felony warrant",
            "armed robbery suspect",
            "aggravated assault suspect",
            "probation violation warrant",
        ],
        ncic_file: Some('W'),
        share: 20.0,
    },
    HotlistKind {
        list: "local_bolo",
        priority: 3,
        reasons: &[
            "BOLO: hit and run",
            "BOLO: burglary suspect vehicle",
            "BOLO: reckless driving complaints",
            "BOLO: endangered missing adult",
        ],
        ncic_file: None,
        share: 14.0,
    },
    HotlistKind {
        list: "amber_alert",
        priority: 1,
        reasons: &["AMBER alert: child abduction"],
        ncic_file: Some('M'),
        share: 1.0,
    },
];

// ---------------------------------------------------------------------------------------------
// The simulator
// ---------------------------------------------------------------------------------------------

/// Reader facts that only the simulator needs.
struct ReaderSetup {
    area: Area,
    cameras: u8,
    /// 0 for fixed readers.
    patrol_radius_m: f64,
}

struct Vehicle {
    /// Normalized.
    plate: String,
    jurisdiction: &'static str,
    model: u16,
    color: u8,
    route: [u16; MAX_ROUTE_LEN],
    route_len: u8,
    /// Position on the out-and-back cycle over the route.
    route_step: u8,
    hotlisted: bool,
}

impl Vehicle {
    /// The reader the vehicle passes next: routes are driven out and back, like a commute.
    fn advance_route(&mut self) -> usize {
        let len = usize::from(self.route_len);
        let cycle = if len > 1 { 2 * (len - 1) } else { 1 };
        let step = usize::from(self.route_step) % cycle;
        let position = if step < len { step } else { cycle - step };
        self.route_step = ((step + 1) % cycle) as u8;
        usize::from(self.route[position])
    }
}

/// Vose's alias table: draws an index with probability proportional to its weight in O(1).
struct AliasTable {
    keep_probability: Vec<f64>,
    alias: Vec<u32>,
}

impl AliasTable {
    fn new(weights: &[f64]) -> Self {
        let count = weights.len();
        let total: f64 = weights.iter().sum();
        let mut scaled: Vec<f64> = weights
            .iter()
            .map(|weight| weight * count as f64 / total)
            .collect();
        let mut alias: Vec<u32> = (0..count as u32).collect();
        let mut small: Vec<usize> = Vec::new();
        let mut large: Vec<usize> = Vec::new();
        for (index, &probability) in scaled.iter().enumerate() {
            if probability < 1.0 {
                small.push(index);
            } else {
                large.push(index);
            }
        }
        while let (Some(&under), Some(&over)) = (small.last(), large.last()) {
            small.pop();
            large.pop();
            alias[under] = over as u32;
            scaled[over] -= 1.0 - scaled[under];
            if scaled[over] < 1.0 {
                small.push(over);
            } else {
                large.push(over);
            }
        }
        // What is left is 1 up to rounding error; its alias is itself, so keeping it always is exact.
        for index in small.into_iter().chain(large) {
            scaled[index] = 1.0;
        }
        Self {
            keep_probability: scaled,
            alias,
        }
    }

    fn sample(&self, rng: &mut ChaCha8Rng) -> usize {
        let column = rng.random_range(0..self.alias.len());
        if rng.random::<f64>() < self.keep_probability[column] {
            column
        } else {
            self.alias[column] as usize
        }
    }
}

/// A deterministic source of plate reads around Washington, DC. See the module documentation.
pub struct Simulator {
    config: SimulatorConfig,
    readers: Vec<SimReader>,
    reader_setup: Vec<ReaderSetup>,
    vehicles: Vec<Vehicle>,
    popularity: AliasTable,
    hotlist: Vec<HotlistEntry>,
    /// `vehicles.len() * embedding_dim` unit-length identity vectors, one per vehicle.
    identities: Vec<f32>,
    traffic_rng: ChaCha8Rng,
    embedding_noise_rng: ChaCha8Rng,
    malformed_rng: ChaCha8Rng,
    next_malformed_kind: usize,
    repeat_frame_rng: ChaCha8Rng,
    /// When each vehicle was last read (epoch ms), to keep its passes apart.
    last_read_at: Vec<i64>,
    /// The last read `next_message` produced, for repeated frames.
    last_pass: Option<(PlateRead, GroundTruth)>,
}

fn stream_rng(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng
}

/// A probability from configuration: NaN and out-of-range values are clamped rather than refused,
/// because a simulator should still run with a sloppy command line.
fn probability(value: f64) -> f64 {
    if value.is_nan() {
        0.0
    } else {
        value.clamp(0.0, 1.0)
    }
}

impl Simulator {
    /// Builds the world. At least one fixed reader and one vehicle are always simulated, and at
    /// most `MAX_FIXED_READERS` (10 000) fixed readers.
    pub fn new(config: SimulatorConfig) -> Self {
        let config = SimulatorConfig {
            readers: config.readers.clamp(1, MAX_FIXED_READERS),
            vehicles: config.vehicles.clamp(1, u32::MAX as usize),
            hotlist_fraction: probability(config.hotlist_fraction),
            misread_rate: probability(config.misread_rate),
            malformed_rate: probability(config.malformed_rate),
            ..config
        };
        let mut population_rng = stream_rng(config.seed, POPULATION_STREAM);

        let (readers, reader_setup) = build_readers(config.readers, &mut population_rng);
        let mut vehicles = build_vehicles(
            config.vehicles,
            &readers,
            &reader_setup,
            &mut population_rng,
        );

        // Popularity ranks are shuffled so that vehicle ids say nothing about how often a vehicle
        // is seen.
        let mut by_popularity: Vec<u32> = (0..vehicles.len() as u32).collect();
        by_popularity.shuffle(&mut population_rng);
        let mut weights = vec![0.0; vehicles.len()];
        for (rank, &vehicle_id) in by_popularity.iter().enumerate() {
            weights[vehicle_id as usize] =
                1.0 / (rank as f64 + POPULARITY_OFFSET).powf(POPULARITY_EXPONENT);
        }
        let popularity = AliasTable::new(&weights);

        let hotlist = build_hotlist(
            &mut vehicles,
            &by_popularity,
            config.hotlist_fraction,
            &mut stream_rng(config.seed, HOTLIST_STREAM),
        );
        let identities = build_identities(
            &vehicles,
            config.embedding_dim,
            &mut stream_rng(config.seed, IDENTITY_STREAM),
        );

        Self {
            traffic_rng: stream_rng(config.seed, TRAFFIC_STREAM),
            embedding_noise_rng: stream_rng(config.seed, EMBEDDING_NOISE_STREAM),
            malformed_rng: stream_rng(config.seed, MALFORMED_STREAM),
            next_malformed_kind: 0,
            repeat_frame_rng: stream_rng(config.seed, REPEAT_FRAME_STREAM),
            last_read_at: vec![i64::MIN / 2; vehicles.len()],
            last_pass: None,
            config,
            readers,
            reader_setup,
            vehicles,
            popularity,
            hotlist,
            identities,
        }
    }

    /// The configuration in effect, after out-of-range values were clamped.
    pub fn config(&self) -> &SimulatorConfig {
        &self.config
    }

    /// Fixed readers first (`dc-r-…`), then mobile ones (`dc-m-…`).
    pub fn readers(&self) -> &[SimReader] {
        &self.readers
    }

    /// Number of distinct vehicles; ground-truth vehicle ids are `0..vehicle_count()`.
    pub fn vehicle_count(&self) -> usize {
        self.vehicles.len()
    }

    /// The normalized true plate of a vehicle, if the id exists.
    pub fn vehicle_plate(&self, vehicle_id: u32) -> Option<&str> {
        self.vehicles
            .get(vehicle_id as usize)
            .map(|vehicle| vehicle.plate.as_str())
    }

    /// The sample hotlist, one entry per hotlisted vehicle.
    pub fn hotlist(&self) -> &[HotlistEntry] {
        &self.hotlist
    }

    /// Number of entries in the sample hotlist.
    pub fn hotlist_len(&self) -> usize {
        self.hotlist.len()
    }

    /// The sample hotlist as CSV with header
    /// `list,plate,jurisdiction,reason,priority,case_number,description,make,model,color`.
    pub fn write_hotlist_csv<W: io::Write>(&self, out: W) -> io::Result<()> {
        let mut writer = csv::Writer::from_writer(out);
        writer.write_record(HOTLIST_CSV_HEADER)?;
        self.write_hotlist_rows(&mut writer)?;
        writer.flush()
    }

    /// The sample hotlist's rows under a `HOTLIST_CSV_HEADER` the caller wrote, for callers that
    /// add rows of their own. Returns how many were written.
    pub fn write_hotlist_rows<W: io::Write>(
        &self,
        writer: &mut csv::Writer<W>,
    ) -> csv::Result<usize> {
        for entry in &self.hotlist {
            let priority = entry.priority.to_string();
            writer.write_record([
                entry.list.as_str(),
                &entry.plate,
                &entry.jurisdiction,
                &entry.reason,
                &priority,
                &entry.case_number,
                &entry.description,
                &entry.make,
                &entry.model,
                &entry.color,
            ])?;
        }
        Ok(self.hotlist.len())
    }

    /// A vehicle's unit identity vector (its appearance without per-read noise), when the
    /// simulator makes embeddings.
    pub fn identity_vector(&self, vehicle_id: u32) -> Option<&[f32]> {
        let dim = self.config.embedding_dim;
        let start = (vehicle_id as usize).checked_mul(dim)?;
        (dim > 0)
            .then(|| self.identities.get(start..start + dim))
            .flatten()
    }

    /// What a vehicle truly looks like.
    pub fn vehicle_looks(&self, vehicle_id: u32) -> Option<VehicleLooks> {
        let vehicle = self.vehicles.get(vehicle_id as usize)?;
        let model = &VEHICLE_MODELS[usize::from(vehicle.model)];
        Some(VehicleLooks {
            make: model.make,
            model: model.model,
            color: VEHICLE_COLORS[usize::from(vehicle.color)].name,
            body_type: model.body,
        })
    }

    /// BOLOs for the first `count` vehicles of the sample hotlist, two rows each (plate left
    /// empty, `id` `sim-<vehicle id>`): one in list `description_bolo` with the vehicle's make,
    /// model, color and body type, and, when the simulator makes embeddings, one in list
    /// `appearance_bolo` with the vehicle's identity vector as its reference vector.
    pub fn write_bolo_csv<W: io::Write>(&self, out: W, count: usize) -> io::Result<()> {
        let mut writer = csv::Writer::from_writer(out);
        writer.write_record(BOLO_CSV_HEADER)?;
        for entry in self.hotlist.iter().take(count) {
            let Some(looks) = self.vehicle_looks(entry.vehicle_id) else {
                continue;
            };
            let id = format!("sim-{}", entry.vehicle_id);
            writer.write_record([
                "description_bolo",
                "",
                &format!(
                    "BOLO: {} {} {} seen leaving a robbery",
                    looks.color, looks.make, looks.model
                ),
                "3",
                &id,
                looks.make,
                looks.model,
                looks.color,
                looks.body_type,
                "",
            ])?;
            if let Some(identity) = self.identity_vector(entry.vehicle_id) {
                let vectors = serde_json::to_string(&[identity]).map_err(io::Error::other)?;
                writer.write_record([
                    "appearance_bolo",
                    "",
                    "BOLO: vehicle in a private camera's photo of a hit and run",
                    "2",
                    &id,
                    "",
                    "",
                    "",
                    "",
                    &vectors,
                ])?;
            }
        }
        writer.flush()
    }

    /// The next read, observed at the given time (callers pass "now" for live streams, or a
    /// simulated clock for files).
    pub fn next_read(&mut self, observed_at: Timestamp) -> (PlateRead, GroundTruth) {
        let rng = &mut self.traffic_rng;
        // A vehicle cannot pass a second reader seconds after the first (readers are blocks
        // apart), and two reads of it at one reader seconds apart are one pass: redraw a vehicle
        // read too recently, a few times at most so a tiny population still streams.
        let mut vehicle_index = self.popularity.sample(rng);
        for _ in 0..RECENTLY_READ_REDRAWS {
            if self.last_read_at[vehicle_index]
                <= observed_at.millis() - MIN_SECONDS_BETWEEN_PASSES * 1000
            {
                break;
            }
            vehicle_index = self.popularity.sample(rng);
        }
        self.last_read_at[vehicle_index] = observed_at.millis();
        let vehicle = &mut self.vehicles[vehicle_index];
        let reader_index = vehicle.advance_route();
        let vehicle = &self.vehicles[vehicle_index];
        let reader = &self.readers[reader_index];
        let setup = &self.reader_setup[reader_index];

        let misread = rng.random_bool(self.config.misread_rate);
        let read_text = if misread {
            misread_plate(&vehicle.plate, rng)
        } else {
            vehicle.plate.clone()
        };
        let plate = present_plate(&read_text, rng);
        let confidence = if misread {
            rng.random_range(0.45..0.80)
        } else if rng.random_bool(0.04) {
            // Dirty or angled plates: read right, but the reader is unsure.
            rng.random_range(0.60..0.80)
        } else {
            // Skewed toward the top of the range, as real readers are on clean plates.
            0.99 - 0.19 * rng.random::<f64>().powi(2)
        };
        let jurisdiction =
            (!rng.random_bool(UNKNOWN_JURISDICTION_RATE)).then(|| vehicle.jurisdiction.to_owned());

        let (lat, lon, heading) = if reader.mobile {
            let (lat, lon) = jitter_position(reader.lat, reader.lon, setup.patrol_radius_m, rng);
            // Patrol cars mostly drive the street grid.
            let grid_heading = f64::from(rng.random_range(0..4u8)) * 90.0;
            let heading = (grid_heading + rng.random_range(-12.0..12.0))
                .round()
                .rem_euclid(360.0);
            (lat, lon, heading as f32)
        } else {
            (reader.lat, reader.lon, reader.heading)
        };
        let camera = 1 + rng.random_range(0..setup.cameras);
        let camera_id = format!("{}-cam{camera}", reader.reader_id);
        let vehicle_attributes = observe_attributes(vehicle, rng);

        let embedding = (self.config.embedding_dim > 0).then(|| {
            let dim = self.config.embedding_dim;
            let identity = &self.identities[vehicle_index * dim..(vehicle_index + 1) * dim];
            noisy_embedding(
                identity,
                self.config.embedding_noise,
                &mut self.embedding_noise_rng,
            )
        });

        let read_id = derive_read_id(SIMULATOR_VENDOR, &reader.reader_id, observed_at, &plate);
        let images = ImageRefs {
            plate_crop: Some(format!("{IMAGE_BASE_URL}/crops/{read_id}.jpg")),
            overview: Some(format!("{IMAGE_BASE_URL}/overview/{read_id}.jpg")),
        };
        let truth = GroundTruth {
            vehicle_id: vehicle_index as u32,
            misread: read_text != vehicle.plate,
            true_plate: vehicle.plate.clone(),
            true_jurisdiction: vehicle.jurisdiction.to_owned(),
            hotlisted: vehicle.hotlisted,
        };
        let read = PlateRead {
            read_id,
            vendor: SIMULATOR_VENDOR.to_owned(),
            reader_id: reader.reader_id.clone(),
            camera_id: Some(camera_id),
            observed_at,
            ingested_at: None,
            plate,
            plate_norm: String::new(),
            jurisdiction,
            confidence: round_to_thousandths(confidence),
            lat: Some(lat),
            lon: Some(lon),
            heading: Some(heading),
            motion: None,
            vehicle: vehicle_attributes,
            images,
            embedding,
            source: None,
            frames: 1,
            last_observed_at: None,
            duplicate_of: None,
        };
        (read, truth)
    }

    /// Another frame of the last pass, with probability `repeat_frame_rate`.
    fn repeated_frame(&mut self) -> Option<(PlateRead, GroundTruth)> {
        let rate = probability(self.config.repeat_frame_rate);
        if rate <= 0.0 || !self.repeat_frame_rng.random_bool(rate) {
            return None;
        }
        let (mut read, truth) = self.last_pass.clone()?;
        let rng = &mut self.repeat_frame_rng;
        read.observed_at = Timestamp(read.observed_at.millis() + rng.random_range(120..=600));
        let confidence = read.confidence * rng.random_range(0.9..1.05_f32);
        read.confidence = round_to_thousandths(f64::from(confidence.min(0.99)));
        read.read_id = derive_read_id(
            SIMULATOR_VENDOR,
            &read.reader_id,
            read.observed_at,
            &read.plate,
        );
        read.images = ImageRefs {
            plate_crop: Some(format!("{IMAGE_BASE_URL}/crops/{}.jpg", read.read_id)),
            overview: Some(format!("{IMAGE_BASE_URL}/overview/{}.jpg", read.read_id)),
        };
        Some((read, truth))
    }

    /// The next message: a read serialized to canonical JSON, or (with probability
    /// `malformed_rate`) a malformed one. With `malformed_rate` 0 the reads are exactly those
    /// [`Simulator::next_read`] would have returned.
    pub fn next_message(&mut self, observed_at: Timestamp) -> SimulatedMessage {
        let malformed = self.config.malformed_rate > 0.0
            && self.malformed_rng.random_bool(self.config.malformed_rate);
        let (read, truth) = match self.repeated_frame() {
            Some(repeat) => repeat,
            None => self.next_read(observed_at),
        };
        if self.config.repeat_frame_rate > 0.0 {
            self.last_pass = Some((read.clone(), truth.clone()));
        }
        if !malformed {
            let payload = if self.config.vendor_mix {
                let format = reader_format(&read.reader_id);
                crate::vendor::encode_simulated(format, &read)
                    .unwrap_or_else(|| to_canonical_json(&read))
            } else {
                to_canonical_json(&read)
            };
            return SimulatedMessage {
                payload,
                truth: Some(truth),
                malformed: false,
                malformed_kind: None,
            };
        }
        let kind = MalformedKind::ALL[self.next_malformed_kind];
        self.next_malformed_kind = (self.next_malformed_kind + 1) % MalformedKind::ALL.len();
        SimulatedMessage {
            payload: spoil(read, kind),
            truth: None,
            malformed: true,
            malformed_kind: Some(kind),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// World construction
// ---------------------------------------------------------------------------------------------

fn build_readers(fixed: usize, rng: &mut ChaCha8Rng) -> (Vec<SimReader>, Vec<ReaderSetup>) {
    let mobile = (fixed + 5) / 10;
    let mut readers = Vec::with_capacity(fixed + mobile);
    let mut setup = Vec::with_capacity(fixed + mobile);
    for index in 0..fixed {
        let site = &READER_SITES[index % READER_SITES.len()];
        // More readers than sites: cover the other direction, then further lanes, a few metres off.
        let pass = index / READER_SITES.len();
        let reversed = pass % 2 == 1;
        let (direction, heading) = if reversed {
            (site.direction.opposite(), (site.heading + 180.0) % 360.0)
        } else {
            (site.direction, site.heading)
        };
        let mut name = format!("{} ({})", site.place, direction.label());
        if pass >= 2 {
            name.push_str(&format!(" lane {}", pass / 2 + 1));
        }
        let offset = pass as f64 * 0.00012;
        readers.push(SimReader {
            reader_id: format!("dc-r-{:03}", index + 1),
            name,
            lat: round_to_micro_degrees(site.lat + offset),
            lon: round_to_micro_degrees(site.lon + offset),
            heading,
            mobile: false,
        });
        setup.push(ReaderSetup {
            area: site.area,
            cameras: rng.random_range(1..=3),
            patrol_radius_m: 0.0,
        });
    }
    for index in 0..mobile {
        let area = &PATROL_AREAS[index % PATROL_AREAS.len()];
        let car = index / PATROL_AREAS.len();
        let name = if car == 0 {
            area.name.to_owned()
        } else {
            format!("{} #{}", area.name, car + 1)
        };
        readers.push(SimReader {
            reader_id: format!("dc-m-{:03}", index + 1),
            name,
            lat: area.lat,
            lon: area.lon,
            heading: 0.0,
            mobile: true,
        });
        // Patrol cars carry a front camera and one on each side.
        setup.push(ReaderSetup {
            area: Area::District,
            cameras: 3,
            patrol_radius_m: area.radius_m,
        });
    }
    (readers, setup)
}

/// Distance in metres, on a local flat approximation that is plenty for a city.
fn distance_m(a: &SimReader, b: &SimReader) -> f64 {
    let mean_lat = ((a.lat + b.lat) / 2.0).to_radians();
    let north = (a.lat - b.lat) * METERS_PER_DEGREE_LAT;
    let east = (a.lon - b.lon) * METERS_PER_DEGREE_LAT * mean_lat.cos();
    north.hypot(east)
}

/// For each reader, the other readers nearest first (up to `ROUTE_NEIGHBORHOOD`).
fn nearest_readers(readers: &[SimReader]) -> Vec<Vec<u16>> {
    readers
        .iter()
        .enumerate()
        .map(|(index, reader)| {
            let mut others: Vec<(f64, u16)> = readers
                .iter()
                .enumerate()
                .filter(|&(other, _)| other != index)
                .map(|(other, other_reader)| (distance_m(reader, other_reader), other as u16))
                .collect();
            others.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            others
                .into_iter()
                .take(ROUTE_NEIGHBORHOOD)
                .map(|(_, other)| other)
                .collect()
        })
        .collect()
}

fn build_vehicles(
    count: usize,
    readers: &[SimReader],
    reader_setup: &[ReaderSetup],
    rng: &mut ChaCha8Rng,
) -> Vec<Vehicle> {
    let neighbors = nearest_readers(readers);
    let readers_on = |area: Area| -> Vec<u16> {
        (0..readers.len() as u16)
            .filter(|&index| reader_setup[usize::from(index)].area == area)
            .collect()
    };
    let maryland_line = readers_on(Area::MarylandLine);
    let virginia_line = readers_on(Area::VirginiaLine);
    let mut issued: HashSet<String> = HashSet::with_capacity(count);

    (0..count)
        .map(|_| {
            let jurisdiction = pick_weighted(JURISDICTIONS, |j| j.share, rng);
            let plate = issue_unique_plate(jurisdiction, &mut issued, rng);
            let model = pick_weighted_index(VEHICLE_MODELS, |m| m.share, rng) as u16;
            let color = pick_weighted_index(VEHICLE_COLORS, |c| c.share, rng) as u8;

            let border_readers = match jurisdiction.border {
                Some(Area::MarylandLine) => maryland_line.as_slice(),
                Some(Area::VirginiaLine) => virginia_line.as_slice(),
                _ => &[],
            };
            let home = if !border_readers.is_empty() && rng.random_bool(BORDER_COMMUTER_SHARE) {
                border_readers[rng.random_range(0..border_readers.len())]
            } else {
                rng.random_range(0..readers.len()) as u16
            };
            let nearby = &neighbors[usize::from(home)];
            let route_len = rng
                .random_range(MIN_ROUTE_LEN..=MAX_ROUTE_LEN)
                .min(nearby.len() + 1);
            // Sorted picks keep the nearest-first order, so the route is a path outward from home
            // rather than a zigzag across town.
            let mut picks = rand::seq::index::sample(rng, nearby.len(), route_len - 1).into_vec();
            picks.sort_unstable();
            let stops: Vec<u16> = picks.into_iter().map(|pick| nearby[pick]).collect();
            let mut route = [home; MAX_ROUTE_LEN];
            route[1..route_len].copy_from_slice(&stops);
            let cycle = if route_len > 1 {
                2 * (route_len - 1)
            } else {
                1
            };

            Vehicle {
                plate,
                jurisdiction: jurisdiction.code,
                model,
                color,
                route,
                route_len: route_len as u8,
                route_step: rng.random_range(0..cycle) as u8,
                hotlisted: false,
            }
        })
        .collect()
}

/// Plates are unique across the population so that a plate identifies a vehicle in the ground
/// truth. Only a population larger than a format's serial space gives up and accepts a repeat.
fn issue_unique_plate(
    jurisdiction: &IssuingJurisdiction,
    issued: &mut HashSet<String>,
    rng: &mut ChaCha8Rng,
) -> String {
    const ATTEMPTS: usize = 64;
    let mut plate = String::new();
    for _ in 0..ATTEMPTS {
        plate = if rng.random_bool(jurisdiction.vanity_share) {
            vanity_plate(rng)
        } else {
            let format = pick_weighted(jurisdiction.formats, |f| f.share, rng);
            serial_plate(format, rng)
        };
        if !issued.contains(&plate) {
            break;
        }
    }
    issued.insert(plate.clone());
    plate
}

/// A plate and its jurisdiction as a national hotlist holds them: states by their share of the
/// country's registrations (the District is a tenth of a percent of them, not the 40 % of its
/// own traffic), each with its plate layout and vanity plates. For filling hotlists to a realistic
/// size in evaluation and benchmarks; not checked against the population, so a filler entry can
/// still name a simulated vehicle's plate now and then, as a real list can.
pub fn random_registration(rng: &mut ChaCha8Rng) -> (String, &'static str) {
    let total: f64 = JURISDICTIONS
        .iter()
        .chain(OTHER_STATES)
        .map(|j| j.national_share)
        .sum();
    let mut pick = rng.random_range(0.0..total);
    let mut jurisdiction = &JURISDICTIONS[0];
    for candidate in JURISDICTIONS.iter().chain(OTHER_STATES) {
        jurisdiction = candidate;
        if pick < candidate.national_share {
            break;
        }
        pick -= candidate.national_share;
    }
    let plate = if rng.random_bool(jurisdiction.vanity_share) {
        vanity_plate(rng)
    } else {
        serial_plate(pick_weighted(jurisdiction.formats, |f| f.share, rng), rng)
    };
    (plate, jurisdiction.code)
}

fn serial_plate(format: &PlateFormat, rng: &mut ChaCha8Rng) -> String {
    let mut plate = String::with_capacity(format.pattern.len());
    let mut first_letter = true;
    for &slot in format.pattern {
        let character = match slot {
            b'L' => {
                let letters = if first_letter && !format.first_letters.is_empty() {
                    format.first_letters
                } else {
                    SERIAL_LETTERS
                };
                first_letter = false;
                letters[rng.random_range(0..letters.len())]
            }
            b'N' => b'1' + rng.random_range(0..9u8),
            _ => b'0' + rng.random_range(0..10u8),
        };
        plate.push(char::from(character));
    }
    plate
}

/// A personalized plate: a local stem made personal with a few characters of the owner's choosing.
/// Each is unique in its state, and Virginia alone has about a million on the road, so the space
/// must be large: two dozen stems with a two-digit number would make every 1M-entry national
/// hotlist hold each of them several times, and every vanity read of the city a false hit.
fn vanity_plate(rng: &mut ChaCha8Rng) -> String {
    const PERSONAL: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let stem = VANITY_STEMS[rng.random_range(0..VANITY_STEMS.len())];
    let kept = rng.random_range(2..=stem.len().min(5));
    let mut plate = stem[..kept].to_owned();
    let length = rng.random_range(kept + 2..=7);
    while plate.len() < length {
        plate.push(char::from(PERSONAL[rng.random_range(0..PERSONAL.len())]));
    }
    plate
}

/// Marks `fraction` of the vehicles as hotlisted and writes their entries.
///
/// One vehicle is drawn from each equal slice of the popularity ranking, so the hotlisted share of
/// reads tracks `fraction` instead of hinging on whether a top commuter happened to be drawn.
fn build_hotlist(
    vehicles: &mut [Vehicle],
    by_popularity: &[u32],
    fraction: f64,
    rng: &mut ChaCha8Rng,
) -> Vec<HotlistEntry> {
    let population = by_popularity.len();
    let count = ((population as f64 * fraction).round() as usize).min(population);
    let mut hotlist = Vec::with_capacity(count);
    for slice in 0..count {
        let start = slice * population / count;
        let end = ((slice + 1) * population / count).max(start + 1);
        let vehicle_id = by_popularity[rng.random_range(start..end)];
        let vehicle = &mut vehicles[vehicle_id as usize];
        vehicle.hotlisted = true;
        hotlist.push(hotlist_entry(vehicle, vehicle_id, rng));
    }
    hotlist
}

fn hotlist_entry(vehicle: &Vehicle, vehicle_id: u32, rng: &mut ChaCha8Rng) -> HotlistEntry {
    let kind = *pick_weighted(HOTLIST_KINDS, |kind| kind.share, rng);
    let model = &VEHICLE_MODELS[usize::from(vehicle.model)];
    let color = VEHICLE_COLORS[usize::from(vehicle.color)].name;
    let looks = format!("{color} {} {}", model.make, model.model);
    let detail = VEHICLE_DETAILS[rng.random_range(0..VEHICLE_DETAILS.len())];
    let description = match kind.list {
        "stolen_plates" => format!("plate stolen from a {looks}; may be on another vehicle"),
        "wanted_persons" => format!("{looks}, registered owner wanted; approach with caution"),
        "amber_alert" => format!("{looks}, {detail}; suspect vehicle in child abduction"),
        _ if rng.random_bool(0.2) => looks,
        _ => format!("{looks}, {detail}"),
    };
    let case_number = match kind.ncic_file {
        Some(file) => format!("NIC/{file}{:09}", rng.random_range(0..1_000_000_000u32)),
        None => format!(
            "DC-{}-{:06}",
            rng.random_range(2024..=2026u16),
            rng.random_range(1..1_000_000u32)
        ),
    };
    // Agencies often type plates the way they are embossed, with a space.
    let plate = if rng.random_bool(0.2) {
        split_plate(&vehicle.plate, ' ')
    } else {
        vehicle.plate.clone()
    };
    HotlistEntry {
        list: kind.list.to_owned(),
        plate,
        jurisdiction: vehicle.jurisdiction.to_owned(),
        reason: kind.reasons[rng.random_range(0..kind.reasons.len())].to_owned(),
        priority: kind.priority,
        case_number,
        description,
        make: model.make.to_owned(),
        model: model.model.to_owned(),
        color: color.to_owned(),
        vehicle_id,
    }
}

/// Unit-length appearance vectors: a shared part per model and per color (so look-alike vehicles
/// really look alike) plus a part unique to the vehicle.
fn build_identities(vehicles: &[Vehicle], dim: usize, rng: &mut ChaCha8Rng) -> Vec<f32> {
    if dim == 0 {
        return Vec::new();
    }
    let random_unit_vectors = |count: usize, rng: &mut ChaCha8Rng| -> Vec<Vec<f64>> {
        (0..count)
            .map(|_| {
                let mut vector = vec![0.0; dim];
                fill_standard_normal(&mut vector, rng);
                normalize_in_place(&mut vector);
                vector
            })
            .collect()
    };
    let model_vectors = random_unit_vectors(VEHICLE_MODELS.len(), rng);
    let color_vectors = random_unit_vectors(VEHICLE_COLORS.len(), rng);
    let mut identities = Vec::with_capacity(vehicles.len() * dim);
    let mut unique = vec![0.0; dim];
    for vehicle in vehicles {
        fill_standard_normal(&mut unique, rng);
        normalize_in_place(&mut unique);
        let model_vector = &model_vectors[usize::from(vehicle.model)];
        let color_vector = &color_vectors[usize::from(vehicle.color)];
        let mut identity: Vec<f64> = (0..dim)
            .map(|i| {
                IDENTITY_MODEL_WEIGHT * model_vector[i]
                    + IDENTITY_COLOR_WEIGHT * color_vector[i]
                    + IDENTITY_UNIQUE_WEIGHT * unique[i]
            })
            .collect();
        normalize_in_place(&mut identity);
        identities.extend(identity.iter().map(|&value| value as f32));
    }
    identities
}

// ---------------------------------------------------------------------------------------------
// Per-read observation
// ---------------------------------------------------------------------------------------------

/// Characters an OCR engine confuses with each character.
fn lookalikes(character: u8) -> &'static [u8] {
    match character {
        b'O' | b'D' | b'Q' => b"0",
        b'0' => b"ODQ",
        b'I' | b'L' | b'T' => b"1",
        b'1' => b"ILT",
        b'B' => b"8",
        b'8' => b"B",
        b'S' => b"5",
        b'5' => b"S",
        b'Z' => b"2",
        b'2' => b"Z",
        b'G' => b"6",
        b'6' => b"G",
        b'A' => b"4",
        b'4' => b"A",
        _ => b"",
    }
}

/// An OCR error on a normalized plate of 2..=10 characters: always different from the input, and
/// still 2..=10 characters.
fn misread_plate(plate: &str, rng: &mut ChaCha8Rng) -> String {
    let mut characters = plate.as_bytes().to_vec();
    let confusable: Vec<usize> = (0..characters.len())
        .filter(|&position| !lookalikes(characters[position]).is_empty())
        .collect();
    let roll: f64 = rng.random();
    let can_drop = characters.len() > MIN_PLATE_LEN;
    let can_add = characters.len() < MAX_PLATE_LEN;

    if !confusable.is_empty() && (roll < 0.70 || (!can_drop && !can_add)) {
        let position = confusable[rng.random_range(0..confusable.len())];
        let options = lookalikes(characters[position]);
        characters[position] = options[rng.random_range(0..options.len())];
    } else if can_drop && (roll < 0.85 || !can_add) {
        // A character lost to glare, a bolt or a plate frame.
        characters.remove(rng.random_range(0..characters.len()));
    } else if rng.random_bool(0.5) {
        // A stroke read twice.
        let position = rng.random_range(0..characters.len());
        characters.insert(position, characters[position]);
    } else {
        // A bolt or the frame edge at either end read as a character.
        let stray = [b'1', b'I', b'7'][rng.random_range(0..3)];
        let position = if rng.random_bool(0.5) {
            0
        } else {
            characters.len()
        };
        characters.insert(position, stray);
    }
    characters.into_iter().map(char::from).collect()
}

/// Inserts a separator where the plate's letters and digits meet, as plates are embossed.
fn split_plate(plate: &str, separator: char) -> String {
    let bytes = plate.as_bytes();
    if bytes.len() < 4 {
        return plate.to_owned();
    }
    let split = (2..bytes.len() - 1)
        .find(|&i| bytes[i - 1].is_ascii_digit() != bytes[i].is_ascii_digit())
        .unwrap_or(bytes.len() / 2);
    let mut presented = String::with_capacity(plate.len() + 1);
    presented.push_str(&plate[..split]);
    presented.push(separator);
    presented.push_str(&plate[split..]);
    presented
}

/// The plate as a reader reports it: mostly compact uppercase, sometimes grouped, rarely lowercase.
fn present_plate(plate: &str, rng: &mut ChaCha8Rng) -> String {
    let roll: f64 = rng.random();
    if roll < 0.86 {
        plate.to_owned()
    } else if roll < 0.93 {
        split_plate(plate, ' ')
    } else if roll < 0.98 {
        split_plate(plate, '-')
    } else {
        plate.to_ascii_lowercase()
    }
}

fn observed_attribute(value: &str, low: f64, high: f64, rng: &mut ChaCha8Rng) -> Attribute {
    Attribute::new(
        value,
        Some(round_to_thousandths(rng.random_range(low..high))),
    )
}

/// The vehicle as the reader's classifier sees it: usually right, sometimes unsure, occasionally
/// wrong about the color or silent about an attribute.
fn observe_attributes(vehicle: &Vehicle, rng: &mut ChaCha8Rng) -> VehicleAttributes {
    let model = &VEHICLE_MODELS[usize::from(vehicle.model)];
    let color = &VEHICLE_COLORS[usize::from(vehicle.color)];

    let make_seen = !rng.random_bool(0.03);
    let make = make_seen.then(|| observed_attribute(model.make, 0.70, 0.99, rng));
    // Model classification is harder than make, and meaningless without it.
    let model_attribute = (make_seen && !rng.random_bool(0.10))
        .then(|| observed_attribute(model.model, 0.50, 0.95, rng));
    let color_attribute = if rng.random_bool(0.03) {
        None
    } else if rng.random_bool(0.06) {
        let confused = if rng.random_bool(0.75) {
            color.confused_with[0]
        } else {
            color.confused_with[color.confused_with.len() - 1]
        };
        Some(observed_attribute(confused, 0.50, 0.75, rng))
    } else {
        Some(observed_attribute(color.name, 0.72, 0.99, rng))
    };
    let body_type =
        (!rng.random_bool(0.04)).then(|| observed_attribute(model.body, 0.80, 0.99, rng));

    VehicleAttributes {
        make,
        model: model_attribute,
        color: color_attribute,
        body_type,
    }
}

/// A point uniformly within `radius_m` of the centre.
fn jitter_position(lat: f64, lon: f64, radius_m: f64, rng: &mut ChaCha8Rng) -> (f64, f64) {
    let distance = radius_m * rng.random::<f64>().sqrt();
    let bearing = TAU * rng.random::<f64>();
    let north = distance * bearing.cos() / METERS_PER_DEGREE_LAT;
    let east = distance * bearing.sin() / (METERS_PER_DEGREE_LAT * lat.to_radians().cos());
    (
        round_to_micro_degrees(lat + north),
        round_to_micro_degrees(lon + east),
    )
}

fn noisy_embedding(identity: &[f32], noise: f64, rng: &mut ChaCha8Rng) -> Vec<f32> {
    let noise = if noise.is_finite() {
        noise.max(0.0)
    } else {
        0.0
    };
    let sigma = noise / (identity.len() as f64).sqrt();
    let mut noisy = vec![0.0; identity.len()];
    fill_standard_normal(&mut noisy, rng);
    for (value, &base) in noisy.iter_mut().zip(identity) {
        *value = f64::from(base) + sigma * *value;
    }
    normalize_in_place(&mut noisy);
    noisy.into_iter().map(|value| value as f32).collect()
}

/// Standard normal values by the Box–Muller transform (two per pair of uniforms).
fn fill_standard_normal(values: &mut [f64], rng: &mut ChaCha8Rng) {
    for pair in values.chunks_mut(2) {
        // 1 - u is in (0, 1], so the logarithm is finite.
        let radius = (-2.0 * (1.0 - rng.random::<f64>()).ln()).sqrt();
        let angle = TAU * rng.random::<f64>();
        pair[0] = radius * angle.cos();
        if let Some(second) = pair.get_mut(1) {
            *second = radius * angle.sin();
        }
    }
}

fn normalize_in_place(vector: &mut [f64]) {
    let norm = vector.iter().map(|value| value * value).sum::<f64>().sqrt();
    if norm > 0.0 {
        vector.iter_mut().for_each(|value| *value /= norm);
    }
}

// ---------------------------------------------------------------------------------------------
// Messages
// ---------------------------------------------------------------------------------------------

fn to_canonical_json_text(read: &PlateRead) -> String {
    // Serializing a PlateRead into memory cannot fail: every map key is a string and no field has a
    // serializer that reports errors.
    serde_json::to_string(read).expect("a PlateRead always serializes to JSON")
}

fn to_json_string(text: &str) -> String {
    serde_json::to_string(text).expect("a string always serializes to JSON")
}

/// The vendor format a simulated reader speaks: fixed per reader, spread over all formats.
pub fn reader_format(reader_id: &str) -> &'static str {
    let formats = crate::vendor::SIMULATED_FORMATS;
    let hash = reader_id.bytes().fold(0usize, |hash, byte| {
        hash.wrapping_mul(31).wrapping_add(usize::from(byte))
    });
    formats[hash % formats.len()]
}

fn to_canonical_json(read: &PlateRead) -> Vec<u8> {
    to_canonical_json_text(read).into_bytes()
}

/// Spoils a read the way broken readers and integrations do.
fn spoil(mut read: PlateRead, kind: MalformedKind) -> Vec<u8> {
    match kind {
        MalformedKind::TruncatedJson => {
            let mut payload = to_canonical_json(&read);
            payload.truncate(payload.len() * 2 / 3);
            payload
        }
        MalformedKind::MissingPlate => {
            // Cut the member out of the canonical text rather than going through serde_json::Value,
            // which would reorder the keys and widen every f32 to a long f64.
            let text = to_canonical_json_text(&read);
            let member = format!("\"plate\":{},", to_json_string(&read.plate));
            text.replacen(&member, "", 1).into_bytes()
        }
        MalformedKind::EmptyPlate => {
            read.plate.clear();
            to_canonical_json(&read)
        }
        MalformedKind::ImplausiblePlateCharacters => {
            read.plate = "AB#$%".to_owned();
            to_canonical_json(&read)
        }
        MalformedKind::LatitudeOutOfRange => {
            read.lat = Some(123.4);
            to_canonical_json(&read)
        }
        MalformedKind::NonUtf8 => {
            // A Latin-1 encoder upstream: "É" as the single byte 0xC9, plus a stray 0xFF.
            const PLACEHOLDER: &str = "PLATE_PLACEHOLDER";
            read.plate = PLACEHOLDER.to_owned();
            let text = to_canonical_json_text(&read);
            let mut payload = Vec::with_capacity(text.len());
            match text.split_once(PLACEHOLDER) {
                Some((before, after)) => {
                    payload.extend_from_slice(before.as_bytes());
                    payload.extend_from_slice(b"AB\xC9\xFF123");
                    payload.extend_from_slice(after.as_bytes());
                }
                None => payload.extend_from_slice(b"\xFF\xFE"),
            }
            payload
        }
        MalformedKind::ConfidenceWrongScale => {
            read.confidence = 87.0;
            to_canonical_json(&read)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------------------

fn pick_weighted_index<T>(items: &[T], weight: impl Fn(&T) -> f64, rng: &mut ChaCha8Rng) -> usize {
    let total: f64 = items.iter().map(&weight).sum();
    let mut remaining = rng.random::<f64>() * total;
    for (index, item) in items.iter().enumerate() {
        remaining -= weight(item);
        if remaining < 0.0 {
            return index;
        }
    }
    items.len() - 1
}

fn pick_weighted<'a, T>(items: &'a [T], weight: impl Fn(&T) -> f64, rng: &mut ChaCha8Rng) -> &'a T {
    &items[pick_weighted_index(items, weight, rng)]
}

/// Classifier scores are reported with three decimals, which also keeps the JSON short.
fn round_to_thousandths(value: f64) -> f32 {
    ((value * 1000.0).round() / 1000.0) as f32
}

/// Six decimals of a degree is about 10 cm: more is false precision for a GPS fix.
fn round_to_micro_degrees(value: f64) -> f64 {
    (value * 1e6).round() / 1e6
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::normalize::{normalize_plate, normalize_read};

    fn start() -> Timestamp {
        Timestamp::parse_rfc3339("2026-11-24T17:00:00Z").unwrap()
    }

    /// A simulated clock: one read every 50 ms.
    fn clock(index: usize) -> Timestamp {
        Timestamp(start().millis() + index as i64 * 50)
    }

    fn messages(config: SimulatorConfig, count: usize) -> Vec<SimulatedMessage> {
        let mut simulator = Simulator::new(config);
        (0..count)
            .map(|index| simulator.next_message(clock(index)))
            .collect()
    }

    fn hotlist_csv(simulator: &Simulator) -> String {
        let mut out = Vec::new();
        simulator.write_hotlist_csv(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn same_seed_gives_the_same_bytes() {
        let config = SimulatorConfig {
            malformed_rate: 0.05,
            embedding_dim: 8,
            ..SimulatorConfig::default()
        };
        let first = messages(config.clone(), 3000);
        let second = messages(config.clone(), 3000);
        assert_eq!(first, second);
        assert_eq!(
            hotlist_csv(&Simulator::new(config.clone())),
            hotlist_csv(&Simulator::new(config.clone()))
        );

        let other_seed = messages(SimulatorConfig { seed: 7, ..config }, 3000);
        assert_ne!(first, other_seed);
    }

    #[test]
    fn optional_features_do_not_change_the_traffic() {
        let plain = messages(SimulatorConfig::default(), 2000);
        let with_embeddings = messages(
            SimulatorConfig {
                embedding_dim: 16,
                ..SimulatorConfig::default()
            },
            2000,
        );
        let truths = |messages: &[SimulatedMessage]| -> Vec<GroundTruth> {
            messages.iter().filter_map(|m| m.truth.clone()).collect()
        };
        assert_eq!(truths(&plain), truths(&with_embeddings));

        // With malformed_rate 0, next_message is next_read serialized.
        let mut simulator = Simulator::new(SimulatorConfig::default());
        for (index, message) in plain.iter().enumerate().take(200) {
            let (read, truth) = simulator.next_read(clock(index));
            assert_eq!(message.payload, serde_json::to_vec(&read).unwrap());
            assert_eq!(message.truth.as_ref(), Some(&truth));
        }
    }

    #[test]
    fn every_read_parses_and_normalizes() {
        let config = SimulatorConfig {
            embedding_dim: 4,
            ..SimulatorConfig::default()
        };
        for (index, message) in messages(config, 20_000).into_iter().enumerate() {
            assert!(!message.malformed);
            let truth = message.truth.unwrap();
            assert!(!message.payload.ends_with(b"\n"));
            let mut read: PlateRead = serde_json::from_slice(&message.payload).unwrap();
            let plate_norm = normalize_plate(&read.plate).unwrap();
            assert!((2..=10).contains(&plate_norm.len()), "{plate_norm}");
            assert_eq!(
                plate_norm == truth.true_plate,
                !truth.misread,
                "{plate_norm} {truth:?}"
            );
            assert_eq!(
                normalize_plate(&truth.true_plate).unwrap(),
                truth.true_plate
            );

            assert_eq!(
                read.read_id,
                derive_read_id(SIMULATOR_VENDOR, &read.reader_id, clock(index), &read.plate)
            );
            assert_eq!(
                read.images.plate_crop.as_deref(),
                Some(format!("{IMAGE_BASE_URL}/crops/{}.jpg", read.read_id).as_str())
            );
            assert!(read
                .camera_id
                .as_deref()
                .unwrap()
                .starts_with(&read.reader_id));
            assert!(
                read.plate_norm.is_empty() && read.ingested_at.is_none() && read.source.is_none()
            );
            assert_eq!(read.embedding.as_ref().map(Vec::len), Some(4));
            if let Some(jurisdiction) = &read.jurisdiction {
                assert_eq!(jurisdiction, &truth.true_jurisdiction);
            }
            for attribute in [
                &read.vehicle.make,
                &read.vehicle.model,
                &read.vehicle.color,
                &read.vehicle.body_type,
            ]
            .into_iter()
            .flatten()
            {
                let confidence = attribute.confidence.unwrap();
                assert!((0.5..=0.99).contains(&confidence), "{attribute:?}");
            }

            normalize_read(&mut read, clock(index)).unwrap();
            assert!((0.45..=0.99).contains(&read.confidence));
        }
    }

    #[test]
    fn shares_of_misreads_hotlisted_and_jurisdictions_are_plausible() {
        let config = SimulatorConfig::default();
        let count = 20_000;
        let truths: Vec<GroundTruth> = messages(config.clone(), count)
            .into_iter()
            .map(|message| message.truth.unwrap())
            .collect();
        let share = |predicate: &dyn Fn(&GroundTruth) -> bool| {
            truths.iter().filter(|truth| predicate(truth)).count() as f64 / count as f64
        };

        let misread = share(&|truth| truth.misread);
        // Binomial standard deviation is 0.0012 here; this is about five of them.
        assert!(
            (misread - config.misread_rate).abs() < 0.006,
            "misread share {misread}"
        );

        let hotlisted = share(&|truth| truth.hotlisted);
        assert!(
            (0.004..0.025).contains(&hotlisted),
            "hotlisted share {hotlisted}"
        );

        let district = share(&|truth| truth.true_jurisdiction == "US-DC");
        let maryland = share(&|truth| truth.true_jurisdiction == "US-MD");
        let virginia = share(&|truth| truth.true_jurisdiction == "US-VA");
        assert!((0.25..0.55).contains(&district), "DC {district}");
        assert!((0.18..0.42).contains(&maryland), "MD {maryland}");
        assert!((0.10..0.30).contains(&virginia), "VA {virginia}");

        // Heavy-tailed popularity: a few vehicles are seen again and again, most once or twice.
        let mut reads_per_vehicle: HashMap<u32, usize> = HashMap::new();
        for truth in &truths {
            *reads_per_vehicle.entry(truth.vehicle_id).or_default() += 1;
        }
        let most = reads_per_vehicle.values().copied().max().unwrap();
        let seen_once = reads_per_vehicle
            .values()
            .filter(|&&reads| reads == 1)
            .count();
        // 20,000 reads span 1,000 simulated seconds and passes of one vehicle are a minute apart.
        assert!(most > 10, "most frequent vehicle seen {most} times");
        assert!(
            seen_once > reads_per_vehicle.len() / 3,
            "{seen_once} seen once"
        );
    }

    #[test]
    fn reads_without_jurisdiction_are_rare_but_present() {
        let mut simulator = Simulator::new(SimulatorConfig::default());
        let count = 20_000;
        let unknown = (0..count)
            .filter(|&index| simulator.next_read(clock(index)).0.jurisdiction.is_none())
            .count() as f64
            / count as f64;
        assert!((0.02..0.04).contains(&unknown), "{unknown}");
    }

    #[test]
    fn vehicles_revisit_the_readers_on_their_route() {
        let mut simulator = Simulator::new(SimulatorConfig::default());
        let mut readers_per_vehicle: HashMap<u32, HashSet<String>> = HashMap::new();
        for index in 0..50_000 {
            let (read, truth) = simulator.next_read(clock(index));
            readers_per_vehicle
                .entry(truth.vehicle_id)
                .or_default()
                .insert(read.reader_id);
        }
        assert!(readers_per_vehicle
            .values()
            .all(|readers| (1..=MAX_ROUTE_LEN).contains(&readers.len())));
        assert!(readers_per_vehicle
            .values()
            .any(|readers| readers.len() >= 3));
    }

    #[test]
    fn hotlist_csv_has_a_header_and_one_row_per_entry() {
        let simulator = Simulator::new(SimulatorConfig::default());
        assert_eq!(simulator.hotlist_len(), 200);
        let csv_text = hotlist_csv(&simulator);
        let mut reader = csv::Reader::from_reader(csv_text.as_bytes());
        assert_eq!(
            reader.headers().unwrap(),
            &csv::StringRecord::from(HOTLIST_CSV_HEADER.to_vec())
        );
        let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
        assert_eq!(rows.len(), simulator.hotlist_len());
        assert_eq!(csv_text.lines().count(), simulator.hotlist_len() + 1);

        let lists: HashSet<&str> = rows.iter().map(|row| &row[0]).collect();
        for list in [
            "stolen_vehicles",
            "stolen_plates",
            "wanted_persons",
            "local_bolo",
        ] {
            assert!(lists.contains(list), "{list} missing");
        }
        assert!(
            rows.iter().any(|row| row[6].contains(',')),
            "some description has a comma"
        );
        assert!(
            rows.iter().any(|row| row[1].contains(' ')),
            "some plate is written with a space"
        );
        for (row, entry) in rows.iter().zip(simulator.hotlist()) {
            let plate = normalize_plate(&row[1]).unwrap();
            assert_eq!(
                Some(plate.as_str()),
                simulator.vehicle_plate(entry.vehicle_id)
            );
            let priority: u8 = row[4].parse().unwrap();
            assert_eq!(priority == 3, &row[0] == "local_bolo");
            assert!(
                row[5].starts_with("NIC/") || row[5].starts_with("DC-"),
                "{}",
                &row[5]
            );
            assert!(
                row[6].contains(&row[7]) && row[6].contains(&row[8]) && row[6].contains(&row[9])
            );
        }
    }

    #[test]
    fn malformed_messages_appear_at_the_rate_and_are_refused() {
        let config = SimulatorConfig {
            malformed_rate: 0.1,
            ..SimulatorConfig::default()
        };
        let count = 10_000;
        let all = messages(config, count);
        let malformed: Vec<&SimulatedMessage> = all.iter().filter(|m| m.malformed).collect();
        let share = malformed.len() as f64 / count as f64;
        assert!((0.085..0.115).contains(&share), "malformed share {share}");

        let kinds: HashSet<MalformedKind> =
            malformed.iter().filter_map(|m| m.malformed_kind).collect();
        assert_eq!(kinds.len(), MalformedKind::ALL.len());
        for message in malformed {
            assert!(message.truth.is_none());
            if message.malformed_kind == Some(MalformedKind::MissingPlate) {
                let value: serde_json::Value = serde_json::from_slice(&message.payload).unwrap();
                assert!(value.get("plate").is_none() && value.get("plate_norm").is_some());
            }
            let refused = match serde_json::from_slice::<PlateRead>(&message.payload) {
                Err(_) => true,
                Ok(mut read) => normalize_read(&mut read, start()).is_err(),
            };
            assert!(
                refused,
                "{:?}: {}",
                message.malformed_kind,
                String::from_utf8_lossy(&message.payload)
            );
        }
    }

    #[test]
    fn readers_are_in_and_around_the_district() {
        let simulator = Simulator::new(SimulatorConfig::default());
        let readers = simulator.readers();
        assert_eq!(readers.iter().filter(|r| !r.mobile).count(), 40);
        assert_eq!(readers.iter().filter(|r| r.mobile).count(), 4);
        let ids: HashSet<&str> = readers.iter().map(|r| r.reader_id.as_str()).collect();
        assert_eq!(ids.len(), readers.len());
        assert_eq!(readers[0].reader_id, "dc-r-001");
        assert_eq!(readers[40].reader_id, "dc-m-001");
        for reader in readers {
            assert!(
                (38.79..39.0).contains(&reader.lat) && (-77.13..-76.90).contains(&reader.lon),
                "{reader:?}"
            );
            assert!((0.0..360.0).contains(&reader.heading));
        }

        // Asking for more readers than there are sites covers the other direction.
        let many = Simulator::new(SimulatorConfig {
            readers: READER_SITES.len() + 1,
            ..SimulatorConfig::default()
        });
        let extra = &many.readers()[READER_SITES.len()];
        assert_eq!(extra.name, "14th St NW & U St NW (SB)");
        assert_eq!(extra.heading, 180.0);
    }

    #[test]
    fn mobile_reads_stay_in_their_patrol_area() {
        let mut simulator = Simulator::new(SimulatorConfig::default());
        let centres: HashMap<String, (f64, f64)> = simulator
            .readers()
            .iter()
            .filter(|r| r.mobile)
            .map(|r| (r.reader_id.clone(), (r.lat, r.lon)))
            .collect();
        let mut mobile_reads = 0;
        for index in 0..20_000 {
            let (read, _) = simulator.next_read(clock(index));
            if let Some(&(lat, lon)) = centres.get(&read.reader_id) {
                mobile_reads += 1;
                assert!(
                    (read.lat.unwrap() - lat).abs() < 0.02
                        && (read.lon.unwrap() - lon).abs() < 0.02
                );
            }
        }
        assert!(mobile_reads > 100, "{mobile_reads}");
    }

    #[test]
    fn embeddings_are_unit_length_and_recognize_the_vehicle() {
        let mut simulator = Simulator::new(SimulatorConfig {
            embedding_dim: 64,
            ..SimulatorConfig::default()
        });
        let mut first_seen: HashMap<u32, Vec<f32>> = HashMap::new();
        let cosine = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
        let (mut same, mut same_count, mut different, mut different_count) = (0.0, 0, 0.0, 0);
        let mut previous: Option<(u32, Vec<f32>)> = None;
        for index in 0..5000 {
            let (read, truth) = simulator.next_read(clock(index));
            let embedding = read.embedding.unwrap();
            let norm = cosine(&embedding, &embedding).sqrt();
            assert!((norm - 1.0).abs() < 1e-4, "{norm}");
            if let Some(earlier) = first_seen.get(&truth.vehicle_id) {
                same += cosine(earlier, &embedding);
                same_count += 1;
            }
            if let Some((vehicle_id, other)) = &previous {
                if *vehicle_id != truth.vehicle_id {
                    different += cosine(other, &embedding);
                    different_count += 1;
                }
            }
            first_seen
                .entry(truth.vehicle_id)
                .or_insert_with(|| embedding.clone());
            previous = Some((truth.vehicle_id, embedding));
        }
        let same = same / same_count as f32;
        let different = different / different_count as f32;
        assert!(same > 0.85, "same vehicle {same}");
        assert!(different < 0.5, "different vehicles {different}");
    }

    #[test]
    fn misreads_are_lookalikes_drops_or_additions() {
        let mut rng = stream_rng(1, 99);
        for plate in ["ABC1234", "1AB2345", "AB", "XK", "123456", "HOYAS"] {
            for _ in 0..500 {
                let misread = misread_plate(plate, &mut rng);
                assert_ne!(misread, plate);
                assert!(
                    (MIN_PLATE_LEN..=MAX_PLATE_LEN).contains(&misread.len()),
                    "{misread}"
                );
                assert_eq!(normalize_plate(&misread).unwrap(), misread);
            }
        }
        assert_eq!(split_plate("ABC1234", ' '), "ABC 1234");
        assert_eq!(split_plate("1AB2345", '-'), "1AB-2345");
        assert_eq!(split_plate("123456", ' '), "123 456");
    }

    #[test]
    fn tiny_and_odd_configs_still_run() {
        let mut simulator = Simulator::new(SimulatorConfig {
            readers: 0,
            vehicles: 0,
            hotlist_fraction: 2.0,
            misread_rate: f64::NAN,
            malformed_rate: -1.0,
            embedding_dim: 3,
            ..SimulatorConfig::default()
        });
        assert_eq!(simulator.readers().len(), 1);
        assert_eq!(simulator.hotlist_len(), 1);
        let message = simulator.next_message(start());
        assert!(!message.malformed);
        assert!(message.truth.unwrap().hotlisted);
    }

    /// Run with `cargo test -p platestream-engine --release --lib simulate -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn generation_rate() {
        let mut simulator = Simulator::new(SimulatorConfig::default());
        let count = 2_000_000;
        let began = std::time::Instant::now();
        let mut plate_bytes = 0;
        for index in 0..count {
            let (read, _) = simulator.next_read(clock(index));
            plate_bytes += read.plate.len();
        }
        let reads_per_second = count as f64 / began.elapsed().as_secs_f64();

        let began = std::time::Instant::now();
        let mut payload_bytes = 0;
        for index in 0..count / 4 {
            payload_bytes += simulator.next_message(clock(index)).payload.len();
        }
        let messages_per_second = (count / 4) as f64 / began.elapsed().as_secs_f64();
        println!(
            "next_read: {reads_per_second:.0}/s; next_message: {messages_per_second:.0}/s \
             ({plate_bytes} plate bytes, {payload_bytes} payload bytes)"
        );
    }
}
