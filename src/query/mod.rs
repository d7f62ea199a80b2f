//! `platestream query ...`: investigative queries over the Parquet archive on DataFusion.

pub mod args;
pub mod output;
pub mod session;
pub mod sql;
pub mod unarchived;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use platestream_engine::misread::misread_difference;
use platestream_engine::normalize::normalize_plate;
use platestream_engine::pattern::{is_pattern, PatternToken, PlatePattern};
use platestream_engine::registry::{self, RegistryEntry};

use self::args::{
    check_position, parse_distance_m, parse_duration_ms, parse_place, time_range, TimeRange,
};
use self::output::{collect, emit, innermost, OutputFormat, QueryResult};
use self::session::{ArchiveSession, Pruning};
use self::sql::{
    area_filter_with_readers, attribute_filter, by_plate_select, distance, distance_with_readers,
    quote, read_columns, time_filter, FixedReader,
};
use self::unarchived::Unarchived;
use crate::config::QueryConfig;
use platestream_engine::unarchived::{PlateSelector, UnarchivedQuery};

/// Where `query` and `compact` find the archive when neither --archive nor --config says.
pub const DEFAULT_ARCHIVE_DIR: &str = "platestream-data";
/// Registry files `query` loads from the archive directory when no --registry is given.
pub const ARCHIVE_REGISTRY_FILES: [&str; 2] = ["registry.csv", "registry.geojson"];

#[derive(Debug, Args)]
pub struct QueryArgs {
    /// The archive directory (holding reads/ and alerts/); default: [archive] dir of --config,
    /// else ./platestream-data.
    #[arg(long, global = true)]
    pub archive: Option<PathBuf>,
    /// Take the archive location from this config file (platestream.toml).
    #[arg(long, short, global = true)]
    pub config: Option<PathBuf>,
    /// Reader and camera registry, CSV or GeoJSON (repeatable); default: registry.csv or
    /// registry.geojson in the archive directory, if present.
    #[arg(long, global = true)]
    pub registry: Vec<PathBuf>,
    /// Start of the time range (RFC 3339, inclusive).
    #[arg(long, global = true)]
    pub from: Option<String>,
    /// End of the time range (RFC 3339, exclusive).
    #[arg(long, global = true)]
    pub to: Option<String>,
    #[arg(long, global = true, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
    /// Write the result to this file instead of stdout (required for --format parquet).
    #[arg(long, global = true)]
    pub out: Option<PathBuf>,
    /// No progress spinner.
    #[arg(long, global = true)]
    pub quiet: bool,
    /// Read every file, row group and page and filter in memory: what the query costs without the
    /// archive's partitions, statistics, bloom filter and spatial key (for benchmarks).
    #[arg(long, global = true)]
    pub full_scan: bool,
    /// Read every day from `reads` even where its plate-ordered copy (`reads_by_plate`, written by
    /// `platestream compact`) is current: what plate lookups cost without it (for benchmarks).
    #[arg(long, global = true)]
    pub no_plate_copy: bool,
    #[command(subcommand)]
    pub command: QueryCommand,
}

#[derive(Debug, Subcommand)]
pub enum QueryCommand {
    /// Any SQL over the tables reads, alerts (partitioned by date and hour), readers and cameras.
    Sql {
        /// The query, e.g. "SELECT reader_id, count(*) FROM reads WHERE date = '2026-11-24' GROUP BY 1".
        query: String,
    },
    /// Reads near a place around a time, nearest first, and the readers and cameras there.
    Incident(IncidentArgs),
    /// Every read of a plate: exact, a pattern (`?`/`_` one character, `*`/`%` any run) or, with
    /// --misreads, also the reads OCR may have garbled (one look-alike swap, one character more
    /// or less).
    Plate {
        pattern: String,
        #[arg(long)]
        misreads: bool,
        #[command(flatten)]
        live: EngineArgs,
    },
    /// Plates seen at at least --min-hits of several places, each with its own radius and window.
    Stakeout {
        /// LAT,LON,RADIUS,FROM,TO (repeatable), e.g. 38.9171,-77.0319,300m,2026-11-24T01:00:00Z,2026-11-24T03:00:00Z.
        #[arg(long = "place", required = true, allow_hyphen_values = true)]
        places: Vec<String>,
        /// Places a plate must be seen at (default: all of them).
        #[arg(long)]
        min_hits: Option<usize>,
        #[command(flatten)]
        live: EngineArgs,
    },
    /// Vehicles that pass the same readers as the target plate within --window of it, at at least
    /// --min-readers different readers (co-travel). --from/--to select the target's passes; a
    /// companion's read within --window of one may fall just outside them. Plates one OCR misread
    /// from the target are left out (and named on stderr): most are the target itself.
    Convoy {
        #[arg(long)]
        plate: String,
        #[arg(long, default_value = "2m", allow_hyphen_values = true)]
        window: String,
        #[arg(long, default_value_t = 2)]
        min_readers: usize,
        #[command(flatten)]
        live: EngineArgs,
    },
    /// How often and when a plate is read, or a reader reads.
    Frequency {
        #[arg(long, required_unless_present = "reader", conflicts_with = "reader")]
        plate: Option<String>,
        #[arg(long)]
        reader: Option<String>,
        #[arg(long, value_enum, default_value_t = Bucket::HourOfDay)]
        by: Bucket,
        #[command(flatten)]
        live: EngineArgs,
    },
}

#[derive(Debug, Args)]
pub struct IncidentArgs {
    #[arg(long, allow_negative_numbers = true)]
    pub lat: f64,
    #[arg(long, allow_negative_numbers = true)]
    pub lon: f64,
    /// e.g. 500m, 1.5km (a bare number is metres).
    #[arg(long, default_value = "500m", allow_hyphen_values = true)]
    pub radius: String,
    /// The incident's time (RFC 3339); the range is --at − --window up to, not including,
    /// --at + --window (instead of --from/--to, which include --from and not --to).
    #[arg(long)]
    pub at: Option<String>,
    /// e.g. 30m, 1h (a bare number is seconds).
    #[arg(long, allow_hyphen_values = true)]
    pub window: Option<String>,
    /// Only plates matching this plate or pattern.
    #[arg(long)]
    pub plate: Option<String>,
    #[arg(long)]
    pub make: Option<String>,
    #[arg(long)]
    pub model: Option<String>,
    #[arg(long)]
    pub color: Option<String>,
    /// Also write the readers and cameras inside the radius to this file, in --format (with
    /// --format table or json they are part of the output as well).
    #[arg(long)]
    pub sources_out: Option<PathBuf>,
    #[command(flatten)]
    pub live: EngineArgs,
}

/// Which running engines a query about the last minutes asks for the reads they hold unarchived.
#[derive(Debug, Clone, Default, Args)]
pub struct EngineArgs {
    /// A running engine's API (HOST:PORT or URL; repeatable, one per engine of the group) to ask
    /// for the reads it has not archived yet, when the time range reaches into the last 15
    /// minutes. Default: `[api] listen` of --config. Token: `[api] token` of --config, or
    /// PLATESTREAM_API_TOKEN.
    #[arg(long = "engine")]
    pub engines: Vec<String>,
    /// Only the archive: do not ask any engine.
    #[arg(long, conflicts_with = "engines")]
    pub archive_only: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Bucket {
    /// 0..23, over all days.
    HourOfDay,
    /// Sunday = 0 .. Saturday = 6, over all weeks.
    Weekday,
    /// Each calendar day (UTC).
    Day,
    /// Each clock hour.
    Hour,
}

/// The archive directory a query or compaction uses.
pub fn archive_dir(archive: Option<&Path>, config: Option<&Path>) -> Result<PathBuf> {
    if let Some(dir) = archive {
        return Ok(dir.to_owned());
    }
    if let Some(config) = config {
        return Ok(QueryConfig::load(config)?.archive.dir);
    }
    Ok(PathBuf::from(DEFAULT_ARCHIVE_DIR))
}

fn load_registry(explicit: &[PathBuf], archive: &Path) -> Result<Vec<RegistryEntry>> {
    let paths: Vec<PathBuf> = if explicit.is_empty() {
        ARCHIVE_REGISTRY_FILES
            .iter()
            .map(|name| archive.join(name))
            .filter(|path| path.is_file())
            .collect()
    } else {
        explicit.to_vec()
    };
    let mut entries: Vec<RegistryEntry> = Vec::new();
    for path in paths {
        let loaded = registry::load(&path)?;
        if loaded.is_empty() {
            eprintln!("the registry {} lists no reader or camera", path.display());
        }
        entries.extend(loaded);
    }
    let mut seen = BTreeSet::new();
    let repeated: BTreeSet<&str> = entries
        .iter()
        .map(|entry| entry.id.as_str())
        .filter(|id| !seen.insert(*id))
        .collect();
    if !repeated.is_empty() {
        let count = repeated.len();
        let ids: Vec<&str> = repeated.into_iter().take(10).collect();
        let more = if count > ids.len() {
            format!(" and {} more", count - ids.len())
        } else {
            String::new()
        };
        eprintln!(
            "the registry lists {count} id(s) more than once (each entry is shown): {}{more}",
            ids.join(", ")
        );
    }
    Ok(entries)
}

/// A plate or partial-plate argument as a `plate_norm` predicate.
fn plate_filter(column: &str, text: &str) -> Result<String> {
    if is_pattern(text) {
        let pattern =
            PlatePattern::parse(text).with_context(|| format!("plate pattern {text:?}"))?;
        let like: String = pattern
            .tokens()
            .iter()
            .map(|token| match token {
                PatternToken::Known(character) => char::from(*character),
                PatternToken::AnyOne => '_',
                PatternToken::AnyRun => '%',
            })
            .collect();
        // The pattern's leading characters as a range too: LIKE alone does not let DataFusion
        // skip row groups and pages of the plate-ordered copy by their plate statistics.
        let prefix: Vec<u8> = pattern
            .tokens()
            .iter()
            .map_while(|token| match token {
                PatternToken::Known(character) => Some(*character),
                _ => None,
            })
            .collect();
        let mut filter = format!("{column} LIKE {}", quote(&like));
        if let Some((&last, head)) = prefix.split_last() {
            // Plates are upper-case letters and digits, so the next character closes the range.
            let mut above = head.to_vec();
            above.push(last.saturating_add(1));
            filter.push_str(&format!(
                " AND {column} >= {} AND {column} < {}",
                quote(&String::from_utf8_lossy(&prefix)),
                quote(&String::from_utf8_lossy(&above))
            ));
        }
        Ok(filter)
    } else {
        Ok(format!("{column} = {}", quote(&exact_plate(text)?)))
    }
}

fn exact_plate(text: &str) -> Result<String> {
    if is_pattern(text) {
        bail!("{text:?} is a pattern; this query needs a whole plate");
    }
    normalize_plate(text).map_err(|error| anyhow::anyhow!("plate {text:?} is not a plate: {error}"))
}

pub async fn run_query(args: QueryArgs) -> Result<()> {
    let config = args.config.as_deref().map(QueryConfig::load).transpose()?;
    let archive = match (&args.archive, &config) {
        (Some(dir), _) => dir.clone(),
        (None, Some(config)) => config.archive.dir.clone(),
        (None, None) => PathBuf::from(DEFAULT_ARCHIVE_DIR),
    };
    let registry = load_registry(&args.registry, &archive)?;
    let pruning = if args.full_scan {
        Pruning::FullScan
    } else {
        Pruning::On
    };
    let live = match &args.command {
        QueryCommand::Incident(incident) => Some(&incident.live),
        QueryCommand::Plate { live, .. }
        | QueryCommand::Stakeout { live, .. }
        | QueryCommand::Convoy { live, .. }
        | QueryCommand::Frequency { live, .. } => Some(live),
        QueryCommand::Sql { .. } => None,
    };
    let engines = match live {
        Some(live) if !live.archive_only => unarchived::engines_to_ask(
            &live.engines,
            config.as_ref().and_then(|config| config.api.as_ref()),
        ),
        _ => Vec::new(),
    };
    let session = session::open(
        &archive,
        &registry,
        pruning,
        !args.no_plate_copy,
        !engines.is_empty(),
    )
    .await?;
    let range = match &args.command {
        QueryCommand::Incident(incident) => time_range(
            args.from.as_deref(),
            args.to.as_deref(),
            incident.at.as_deref(),
            incident.window.as_deref(),
        )?,
        _ => time_range(args.from.as_deref(), args.to.as_deref(), None, None)?,
    };
    let out = args.out.as_deref();
    match &args.command {
        QueryCommand::Sql { query } => {
            if range.is_some() {
                bail!(
                    "--from/--to do not apply to sql: put the range in the query, e.g. WHERE \
                     observed_at >= '2026-11-24T13:00:00Z' AND observed_at < \
                     '2026-11-24T14:00:00Z' (and date/hour, which select the files to read)"
                );
            }
            let lowered = query.to_ascii_lowercase();
            if registry.is_empty() && (lowered.contains("readers") || lowered.contains("cameras")) {
                // Else an empty answer reads as "no reader or camera there".
                eprintln!(
                    "no reader or camera registry (registry.csv or registry.geojson in the archive \
                     directory, or --registry FILE): the readers and cameras tables are empty"
                );
            }
            let frame = session
                .read_only_sql(query)
                .await
                .map_err(innermost)
                .context("in the SQL")?;
            let result = collect(frame, "the query", args.quiet).await?;
            emit(&result, args.format, out)
        }
        QueryCommand::Incident(incident) => {
            let sources_known = !registry.is_empty();
            run_incident(
                &session,
                incident,
                &engines,
                range,
                args.format,
                out,
                args.quiet,
                sources_known,
            )
            .await
        }
        QueryCommand::Plate {
            pattern, misreads, ..
        } => {
            let misread_plate = misreads
                .then(|| exact_plate(pattern).context("--misreads"))
                .transpose()?;
            let mut held = Unarchived::default();
            if reaches_now(range) && !engines.is_empty() {
                let plate = PlateSelector::parse(pattern).map_err(anyhow::Error::msg)?;
                let mut question = recent_query(range).with_plate(plate);
                if *misreads {
                    question = question.with_misreads();
                }
                ask_engines_or_say(&session, &mut held, &engines, &[question], range).await?;
            }
            let filter = match &misread_plate {
                Some(plate) => {
                    let held_plates = held.reads.iter().map(|read| read.plate_norm.as_str());
                    misread_filter(&session, plate, held_plates, range, args.quiet).await?
                }
                None => plate_filter("plate_norm", pattern)?,
            };
            let filter = format!("{} AND {filter}", time_filter(&session, "", range, 0));
            let reads =
                reads_and_unarchived(&session, &held, Lookup::ByPlate, &read_columns(""), &filter)?;
            let text = format!("SELECT * FROM ({reads}) ORDER BY observed_at, read_id");
            run_sql(&session, &text, "the plate", args.format, out, args.quiet).await
        }
        QueryCommand::Stakeout {
            places, min_hits, ..
        } => {
            let places = places
                .iter()
                .map(|text| parse_place(text))
                .collect::<Result<Vec<_>>>()?;
            let min_hits = min_hits.unwrap_or(places.len());
            if min_hits == 0 || min_hits > places.len() {
                bail!(
                    "--min-hits {min_hits} must be 1..{} (the number of --place)",
                    places.len()
                );
            }
            let mut windows = Vec::new();
            for (index, place) in places.iter().enumerate() {
                let window = place
                    .range
                    .within(range)
                    .with_context(|| format!("--place {} lies outside --from/--to", index + 1))?;
                windows.push(window);
            }
            let mut held = Unarchived::default();
            let questions: Vec<UnarchivedQuery> = places
                .iter()
                .zip(&windows)
                .filter(|(_, window)| reaches_now(Some(**window)))
                .map(|(place, window)| {
                    recent_query(Some(*window)).near(place.lat, place.lon, place.radius_m)
                })
                .collect();
            if !questions.is_empty() && !engines.is_empty() {
                ask_engines_or_say(&session, &mut held, &engines, &questions, range).await?;
            }
            let mut selects = Vec::new();
            for (index, (place, window)) in places.iter().zip(&windows).enumerate() {
                let readers =
                    fixed_readers_near(&session, place.lat, place.lon, place.radius_m).await?;
                let filter = format!(
                    "{} AND {}",
                    time_filter(&session, "", Some(*window), 0),
                    area_filter_with_readers("", place.lat, place.lon, place.radius_m, &readers),
                );
                let columns = format!(
                    "{} AS place, plate_norm, jurisdiction, reader_id, observed_at, read_id",
                    index + 1
                );
                selects.push(reads_and_unarchived(
                    &session,
                    &held,
                    Lookup::Any,
                    &columns,
                    &filter,
                )?);
            }
            // The places a plate was seen at, in --place order: DataFusion allows one ordering
            // among a query's ordered aggregates, and the readers' list takes it.
            let places_seen: Vec<String> = (1..=places.len())
                .map(|n| format!("CASE WHEN bool_or(place = {n}) THEN '{n}' END"))
                .collect();
            let text = format!(
                // The states a plate was read with (two vehicles may share a plate number):
                // a second grouping, since one query allows one ordered aggregate.
                "WITH hits AS ({}), \
                 states AS (SELECT plate_norm, string_agg(DISTINCT jurisdiction, ',' ORDER BY \
                            jurisdiction) AS jurisdictions FROM hits GROUP BY plate_norm), \
                 places AS (SELECT plate_norm, count(DISTINCT place) AS places_hit, \
                        concat_ws(',', {}) AS places, count(DISTINCT read_id) AS reads, \
                        min(observed_at) AS first_seen, max(observed_at) AS last_seen, \
                        string_agg(DISTINCT reader_id, ',' ORDER BY reader_id) AS readers \
                 FROM hits GROUP BY plate_norm HAVING count(DISTINCT place) >= {min_hits}) \
                 SELECT places.*, states.jurisdictions FROM places JOIN states USING (plate_norm) \
                 ORDER BY places_hit DESC, reads DESC, plate_norm",
                selects.join(" UNION ALL "),
                places_seen.join(", ")
            );
            run_sql(&session, &text, "the places", args.format, out, args.quiet).await
        }
        QueryCommand::Convoy {
            plate,
            window,
            min_readers,
            ..
        } => {
            let plate = exact_plate(plate)?;
            let window_ms = parse_duration_ms("--window", window)?;
            if *min_readers == 0 {
                bail!("--min-readers must be at least 1");
            }
            let target_filter = format!(
                "plate_norm = {} AND {}",
                quote(&plate),
                time_filter(&session, "", range, 0)
            );
            let target_columns = "reader_id AS target_reader, observed_at AS target_at";
            let widened = range.map(|range| TimeRange {
                from_ms: range.from_ms.saturating_sub(window_ms),
                to_ms: range.to_ms.saturating_add(window_ms),
            });
            let mut held = Unarchived::default();
            if reaches_now(widened) && !engines.is_empty() {
                // First the target's own passes, then the vehicles at the readers it passed
                // lately: those are the only passes an unarchived read can be near in time.
                ask_engines_or_say(
                    &session,
                    &mut held,
                    &engines,
                    &[recent_query(range).with_plate(PlateSelector::Exact(plate.clone()))],
                    range,
                )
                .await?;
                let recent_readers = format!(
                    "SELECT DISTINCT target_reader FROM ({}) WHERE target_at >= {}",
                    reads_and_unarchived(
                        &session,
                        &held,
                        Lookup::ByPlate,
                        target_columns,
                        &target_filter
                    )?,
                    quote(&args::rfc3339(
                        chrono::Utc::now().timestamp_millis() - LIVE_INCIDENT_MS - window_ms
                    ))
                );
                let readers =
                    query_result(&session, &recent_readers, "the target's readers", true).await?;
                let questions: Vec<UnarchivedQuery> = text_values(&readers, "target_reader")
                    .into_iter()
                    .map(|reader| recent_query(widened).of_reader(reader))
                    .collect();
                if !questions.is_empty() {
                    held.ask(&session, &engines, &questions).await?;
                }
            }
            let passes_filter = time_filter(&session, "", widened, 0);
            let passes_columns = "plate_norm, reader_id, observed_at, read_id";
            let text = format!(
                "WITH target AS ({target}), passes AS ({passes}) \
                 SELECT r.plate_norm, count(DISTINCT r.reader_id) AS readers_together, \
                        count(DISTINCT r.read_id) AS passes_together, min(r.observed_at) AS first_together, \
                        max(r.observed_at) AS last_together, string_agg(DISTINCT r.reader_id, ',' ORDER BY r.reader_id) AS readers \
                 FROM passes r JOIN target t ON r.reader_id = t.target_reader \
                 WHERE r.plate_norm <> {p} \
                   AND r.observed_at >= t.target_at - INTERVAL '{window_ms} milliseconds' \
                   AND r.observed_at <= t.target_at + INTERVAL '{window_ms} milliseconds' \
                 GROUP BY r.plate_norm HAVING count(DISTINCT r.reader_id) >= {min_readers} \
                 ORDER BY readers_together DESC, passes_together DESC, r.plate_norm",
                p = quote(&plate),
                target = reads_and_unarchived(&session, &held, Lookup::ByPlate, target_columns, &target_filter)?,
                passes = reads_and_unarchived(&session, &held, Lookup::Any, passes_columns, &passes_filter)?,
            );
            let companions =
                query_result(&session, &text, "co-travelling vehicles", args.quiet).await?;
            let (companions, misreads) = without_misreads_of(companions, &plate)?;
            if !misreads.is_empty() {
                eprintln!(
                    "left out {} plate(s) one OCR misread from {plate}, most likely the target \
                     itself: {} (query plate {plate} --misreads lists their reads)",
                    misreads.len(),
                    misreads.join(", ")
                );
            }
            emit(&companions, args.format, out)
        }
        QueryCommand::Frequency {
            plate, reader, by, ..
        } => {
            let time = time_filter(&session, "", range, 0);
            let mut held = Unarchived::default();
            let (source, other) = match (plate, reader) {
                (Some(plate), _) => {
                    let plate = exact_plate(plate)?;
                    let filter = format!("plate_norm = {} AND {time}", quote(&plate));
                    if reaches_now(range) && !engines.is_empty() {
                        ask_engines_or_say(
                            &session,
                            &mut held,
                            &engines,
                            &[recent_query(range).with_plate(PlateSelector::Exact(plate))],
                            range,
                        )
                        .await?;
                    }
                    (
                        reads_and_unarchived(
                            &session,
                            &held,
                            Lookup::ByPlate,
                            "observed_at, reader_id",
                            &filter,
                        )?,
                        "count(DISTINCT reader_id) AS readers",
                    )
                }
                (None, Some(reader)) => {
                    let filter = format!("reader_id = {} AND {time}", quote(reader));
                    if reaches_now(range) && !engines.is_empty() {
                        ask_engines_or_say(
                            &session,
                            &mut held,
                            &engines,
                            &[recent_query(range).of_reader(reader.clone())],
                            range,
                        )
                        .await?;
                    }
                    (
                        reads_and_unarchived(
                            &session,
                            &held,
                            Lookup::Any,
                            "observed_at, plate_norm",
                            &filter,
                        )?,
                        "count(DISTINCT plate_norm) AS plates",
                    )
                }
                (None, None) => bail!("give --plate or --reader"),
            };
            let bucket = match by {
                Bucket::HourOfDay => "CAST(date_part('hour', observed_at) AS INT) AS hour_of_day",
                Bucket::Weekday => "CAST(date_part('dow', observed_at) AS INT) AS weekday",
                Bucket::Day => "CAST(observed_at AS DATE) AS day",
                Bucket::Hour => "date_trunc('hour', observed_at) AS hour",
            };
            let text = format!(
                "SELECT {bucket}, count(*) AS reads, {other}, min(observed_at) AS first_seen, \
                        max(observed_at) AS last_seen \
                 FROM ({source}) GROUP BY 1 ORDER BY 1"
            );
            let result = query_result(&session, &text, "the reads", args.quiet).await?;
            if let (0, Some(reader)) = (result.rows(), reader) {
                say_unknown_reader(&session, reader, &time).await?;
            }
            emit(&result, args.format, out)
        }
    }
}

/// A reader with no read at all is more often a mistyped id than a silent reader: says which ids
/// differ from it only in case, or how to list them.
async fn say_unknown_reader(session: &ArchiveSession, reader: &str, time: &str) -> Result<()> {
    let alike = format!(
        "SELECT DISTINCT reader_id FROM (SELECT id AS reader_id FROM readers UNION ALL \
         SELECT reader_id FROM reads WHERE {time}) WHERE lower(reader_id) = lower({}) \
         ORDER BY reader_id",
        quote(reader)
    );
    let alike = query_result(session, &alike, "readers of that name", true).await?;
    let alike = text_values(&alike, "reader_id");
    if alike.is_empty() {
        eprintln!(
            "no read of reader {reader:?} in this range, and no reader of that id in the registry: \
             query sql \"SELECT DISTINCT reader_id FROM reads\" lists the archive's readers"
        );
    } else {
        eprintln!(
            "no read of reader {reader:?}; reader ids are case-sensitive: {}",
            alike.join(", ")
        );
    }
    Ok(())
}

/// Asks the engines the questions; when none answers, says which was the archive's newest read.
async fn ask_engines_or_say(
    session: &ArchiveSession,
    held: &mut Unarchived,
    engines: &[unarchived::EngineApi],
    questions: &[UnarchivedQuery],
    range: Option<TimeRange>,
) -> Result<()> {
    held.ask(session, engines, questions).await?;
    say_archive_freshness(session, held, range).await
}

/// When engines were asked about the last minutes and none answered: which was the archive's
/// newest read, so the user knows what the answer lacks.
async fn say_archive_freshness(
    session: &ArchiveSession,
    held: &Unarchived,
    range: Option<TimeRange>,
) -> Result<()> {
    if held.count().is_some() {
        return Ok(());
    }
    let range = range.unwrap_or(TimeRange {
        from_ms: i64::MIN / 4,
        to_ms: i64::MAX / 4,
    });
    let now_ms = chrono::Utc::now().timestamp_millis();
    if let Some(notice) = archive_freshness_notice(session, range, now_ms).await? {
        eprintln!("{notice}");
    }
    Ok(())
}

/// `--make`, `--model` and `--color` in the vocabulary reads are archived in (`grey` is `gray`,
/// `chevy` is `chevrolet`); a color no read can have is refused rather than answered with nothing.
fn vehicle_filters(spec: &IncidentSpec) -> Result<Vec<String>> {
    use platestream_engine::vendor::vocabulary::{
        canonical_color, canonical_make, canonical_model, COLORS,
    };
    let mut filters = Vec::new();
    let given = |flag: &str, value: &Option<String>| -> Result<Option<String>> {
        match value {
            Some(value) if value.trim().is_empty() => bail!("--{flag} is empty"),
            other => Ok(other.clone()),
        }
    };
    let make = given("make", &spec.make)?.map(|make| canonical_make(&make).unwrap_or(make));
    if let Some(make) = &make {
        filters.push(attribute_filter("make", make));
    }
    if let Some(model) = given("model", &spec.model)? {
        let model = canonical_model(&model, make.as_deref()).unwrap_or(model);
        filters.push(attribute_filter("model", &model));
    }
    if let Some(color) = given("color", &spec.color)? {
        let Some(color) = canonical_color(&color) else {
            bail!(
                "--color {color:?} is not a color reads are archived with: {}",
                COLORS.join(", ")
            );
        };
        filters.push(attribute_filter("color", color));
    }
    Ok(filters)
}

/// Whether a range (none: all time) reaches into the minutes a running engine may not have
/// archived yet.
fn reaches_now(range: Option<TimeRange>) -> bool {
    range
        .is_none_or(|range| range.to_ms >= chrono::Utc::now().timestamp_millis() - LIVE_INCIDENT_MS)
}

/// The question for an engine's unarchived reads within the range.
fn recent_query(range: Option<TimeRange>) -> UnarchivedQuery {
    let (from, to) = range.map_or((None, None), |range| {
        unarchived::time_bounds(range.from_ms, range.to_ms)
    });
    UnarchivedQuery {
        from,
        to,
        ..UnarchivedQuery::default()
    }
}

/// How a query's reads are selected from the archive: by plate, so that the days' plate-ordered
/// copies serve, or otherwise.
#[derive(Debug, Clone, Copy)]
enum Lookup {
    ByPlate,
    Any,
}

/// `SELECT {columns}` of the archive's reads where `filter` holds and, when an engine answered,
/// of its unarchived reads where `filter` holds whose id the archive has not under `filter`: a
/// read the engine archived after it answered is then listed once, from the archive.
fn reads_and_unarchived(
    session: &ArchiveSession,
    held: &Unarchived,
    lookup: Lookup,
    columns: &str,
    filter: &str,
) -> Result<String> {
    let archived = |columns: &str| match lookup {
        Lookup::ByPlate => by_plate_select(session, columns, filter),
        Lookup::Any => Ok(format!("SELECT {columns} FROM reads WHERE {filter}")),
    };
    if held.count().is_none() {
        return archived(columns);
    }
    Ok(format!(
        "{} UNION ALL SELECT {columns} FROM {table} WHERE {filter} AND read_id NOT IN ({})",
        archived(columns)?,
        archived("read_id")?,
        table = unarchived::UNARCHIVED_TABLE
    ))
}

/// The rows whose `plate_norm` is not one OCR misread of `plate` (the target read otherwise:
/// `YS0795` as `Y50795` travels with it everywhere), and the plates left out.
fn without_misreads_of(result: QueryResult, plate: &str) -> Result<(QueryResult, Vec<String>)> {
    let mut left_out = Vec::new();
    let mut batches = Vec::new();
    for batch in result.batches {
        let plates = arrow::compute::cast(
            batch
                .column_by_name("plate_norm")
                .context("the companions have no plate_norm")?,
            &arrow::datatypes::DataType::Utf8,
        )?;
        let plates = plates
            .as_any()
            .downcast_ref::<arrow::array::StringArray>()
            .context("plate_norm is not text")?;
        let keep: arrow::array::BooleanArray = plates
            .iter()
            .map(|companion| {
                let misread = companion
                    .is_some_and(|companion| misread_difference(plate, companion).is_some());
                if misread {
                    left_out.extend(companion.map(str::to_owned));
                }
                Some(!misread)
            })
            .collect();
        batches.push(arrow::compute::filter_record_batch(&batch, &keep)?);
    }
    Ok((
        QueryResult {
            schema: result.schema,
            batches,
        },
        left_out,
    ))
}

/// The registry's fixed readers within the circle: their reads stand at the reader's position
/// when they carry none (a vendor that sends none, like Plate Recognizer). Mobile readers move,
/// so their reads without a position stay unplaced.
async fn fixed_readers_near(
    session: &ArchiveSession,
    lat: f64,
    lon: f64,
    radius_m: f64,
) -> Result<Vec<FixedReader>> {
    let text = format!(
        "SELECT id, CAST(lat AS VARCHAR) AS lat, CAST(lon AS VARCHAR) AS lon FROM readers \
         WHERE replace(kind, '_', '-') = 'fixed-reader' AND {} <= {radius_m} ORDER BY id",
        distance("", lat, lon)
    );
    let found = query_result(session, &text, "the registry's readers", true).await?;
    let (ids, lats, lons) = (
        text_values(&found, "id"),
        text_values(&found, "lat"),
        text_values(&found, "lon"),
    );
    Ok(ids
        .into_iter()
        .zip(lats.iter().zip(&lons))
        .filter_map(|(id, (lat, lon))| {
            Some(FixedReader {
                id,
                lat: lat.parse().ok()?,
                lon: lon.parse().ok()?,
            })
        })
        .collect())
}

/// How many listed reads have no position of their own.
fn unpositioned_reads(result: &QueryResult) -> usize {
    result
        .batches
        .iter()
        .filter_map(|batch| batch.column_by_name("lat"))
        .map(|lat| lat.null_count())
        .sum()
}

/// A column's non-null values as text, whichever string type DataFusion chose for it (a
/// `CAST(... AS VARCHAR)` comes back as a string view).
fn text_values(result: &QueryResult, column: &str) -> Vec<String> {
    let mut values = Vec::new();
    for batch in &result.batches {
        let Some(array) = batch.column_by_name(column) else {
            continue;
        };
        let Ok(text) = arrow::compute::cast(array, &arrow::datatypes::DataType::Utf8) else {
            continue;
        };
        let Some(text) = text.as_any().downcast_ref::<arrow::array::StringArray>() else {
            continue;
        };
        values.extend(text.iter().flatten().map(str::to_owned));
    }
    values
}

async fn run_sql(
    session: &ArchiveSession,
    text: &str,
    what: &str,
    format: OutputFormat,
    out: Option<&Path>,
    quiet: bool,
) -> Result<()> {
    let result = query_result(session, text, what, quiet).await?;
    emit(&result, format, out)
}

pub async fn query_result(
    session: &ArchiveSession,
    text: &str,
    what: &str,
    quiet: bool,
) -> Result<QueryResult> {
    tracing::debug!(sql = text, "query");
    let frame = session
        .read_only_sql(text)
        .await
        .map_err(innermost)
        .with_context(|| format!("planning the query for {what}"))?;
    collect(frame, what, quiet).await
}

/// `plate_norm IN (...)` of every plate in the range that is the plate or one OCR misread of it.
/// `plate_norm IN (...)`: the plate and every plate of the archive in the range, or of
/// `held_plates` (the engines' unarchived reads), that OCR may have made of it.
async fn misread_filter<'a>(
    session: &ArchiveSession,
    plate: &str,
    held_plates: impl Iterator<Item = &'a str>,
    range: Option<TimeRange>,
    quiet: bool,
) -> Result<String> {
    let length = plate.len() as i64;
    let candidates = format!(
        "SELECT DISTINCT plate_norm FROM ({})",
        by_plate_select(
            session,
            "plate_norm",
            &format!(
                "{} AND length(plate_norm) BETWEEN {} AND {}",
                time_filter(session, "", range, 0),
                length - 1,
                length + 1
            )
        )?
    );
    let candidates =
        query_result(session, &candidates, "plates that may be misreads", quiet).await?;
    let mut plates = BTreeSet::from([plate.to_owned()]);
    let mut consider = |candidate: &str| {
        if misread_difference(plate, candidate).is_some() {
            plates.insert(candidate.to_owned());
        }
    };
    held_plates.for_each(&mut consider);
    for batch in &candidates.batches {
        let column = arrow::compute::cast(batch.column(0), &arrow::datatypes::DataType::Utf8)?;
        let strings = column
            .as_any()
            .downcast_ref::<arrow::array::StringArray>()
            .context("plate_norm is not text")?;
        strings.iter().flatten().for_each(&mut consider);
    }
    let plates: Vec<String> = plates.iter().map(|plate| quote(plate)).collect();
    Ok(format!("plate_norm IN ({})", plates.join(", ")))
}

/// How long before now an incident window must end for the archive's freshness to matter: the
/// engine makes a segment durable at least every `segment_max_age_secs` (30 s by default).
const LIVE_INCIDENT_MS: i64 = 15 * 60 * 1000;

/// For an incident window that reaches into the last minutes: a notice naming the newest archived
/// read, because reads after it are still in the engine's open segments and not in this answer.
async fn archive_freshness_notice(
    session: &ArchiveSession,
    range: TimeRange,
    now_ms: i64,
) -> Result<Option<String>> {
    if range.to_ms < now_ms - LIVE_INCIDENT_MS {
        return Ok(None);
    }
    // Only the last minutes are read (readers' clocks may run up to a day ahead), whatever the
    // incident's window: an older newest read is news enough.
    let recent = TimeRange {
        from_ms: now_ms - LIVE_INCIDENT_MS,
        to_ms: now_ms + 2 * 86_400_000,
    };
    let newest_in = |range: TimeRange| async move {
        let newest_sql = format!(
            "SELECT CAST(max(observed_at) AS BIGINT) AS newest FROM reads WHERE {}",
            time_filter(session, "", Some(range), 0)
        );
        let newest = query_result(session, &newest_sql, "the newest archived read", true).await?;
        anyhow::Ok(
            newest
                .batches
                .iter()
                .find(|batch| batch.num_rows() > 0)
                .and_then(|batch| {
                    batch
                        .column(0)
                        .as_any()
                        .downcast_ref::<arrow::array::Int64Array>()
                        .filter(|values| arrow::array::Array::is_valid(*values, 0))
                        .map(|values| values.value(0))
                }),
        )
    };
    let mut newest_ms = newest_in(recent).await?;
    if newest_ms.is_none() {
        // Not in the last minutes: the last day says how far behind the archive is.
        newest_ms = newest_in(TimeRange {
            from_ms: now_ms - 86_400_000,
            ..recent
        })
        .await?;
    }
    let end = range.to_ms.min(now_ms);
    Ok(match newest_ms {
        Some(newest) if newest >= end => None,
        Some(newest) => Some(format!(
            "the archive's newest read was observed at {} ({} s ago): reads after it are not in \
             this answer; a running engine archives them within [archive] segment_max_age_secs \
             (30 s by default): run the query again in a moment, or give --engine HOST:PORT \
             (its [api]) to include them",
            args::rfc3339(newest),
            (now_ms - newest).max(0) / 1000
        )),
        None => Some(
            "the archive holds no read of the last day: reads since are in the engine's open \
             segments, which --engine HOST:PORT (its [api]) includes (or no engine is archiving \
             here)"
                .to_owned(),
        ),
    })
}

/// An incident query: a place, a radius, a time range and optional filters.
#[derive(Debug, Clone, Default)]
pub struct IncidentSpec {
    pub lat: f64,
    pub lon: f64,
    pub radius_m: f64,
    pub from_ms: i64,
    pub to_ms: i64,
    pub plate: Option<String>,
    pub make: Option<String>,
    pub model: Option<String>,
    pub color: Option<String>,
}

/// What an incident query found.
pub struct IncidentAnswer {
    /// Nearest first.
    pub reads: QueryResult,
    /// Readers and cameras within the radius, nearest first.
    pub sources: QueryResult,
    /// Reads that came from engines, not yet archived; `None` when no engine answered.
    pub from_engines: Option<usize>,
    /// What a user should know about the answer (engines asked, the archive's freshness).
    pub notices: Vec<String>,
}

/// Reads near a place in a time range, from the archive and, for the last minutes, from the
/// `engines`' reads not yet archived; and the readers and cameras there.
pub async fn incident_answer(
    session: &ArchiveSession,
    spec: &IncidentSpec,
    engines: &[unarchived::EngineApi],
    quiet: bool,
) -> Result<IncidentAnswer> {
    check_position(spec.lat, spec.lon)?;
    let range = TimeRange::new(spec.from_ms, spec.to_ms)?;
    let (lat, lon, radius_m) = (spec.lat, spec.lon, spec.radius_m);
    let readers = fixed_readers_near(session, lat, lon, radius_m).await?;
    let mut filters = vec![
        time_filter(session, "", Some(range), 0),
        area_filter_with_readers("", lat, lon, radius_m, &readers),
    ];
    if let Some(plate) = &spec.plate {
        filters.push(plate_filter("plate_norm", plate)?);
    }
    filters.extend(vehicle_filters(spec)?);
    let mut notices = Vec::new();
    let now_ms = chrono::Utc::now().timestamp_millis();
    let recent = range.to_ms >= now_ms - LIVE_INCIDENT_MS;
    // Asked before the archive is listed: a read the engine archives meanwhile is then in the
    // archive's answer (and dropped here by its id), never in neither.
    let from_engines = if recent && !engines.is_empty() {
        let query = unarchived::incident_query(range.from_ms, range.to_ms, lat, lon, radius_m);
        let (answered, asked) = unarchived::ask_engines(session, engines, &[query]).await?;
        notices.extend(asked);
        answered
    } else {
        None
    };
    let filters = filters.join(" AND ");
    let select = |table: &str| {
        format!(
            "SELECT round({d}, 1) AS distance_m, {columns} FROM {table} WHERE {filters}",
            d = distance_with_readers("", lat, lon, &readers),
            columns = read_columns(""),
        )
    };
    let reads_sql = match from_engines {
        Some(_) => format!(
            "SELECT * FROM ({archived} UNION ALL {held} AND read_id NOT IN \
             (SELECT read_id FROM reads WHERE {filters})) ORDER BY distance_m, observed_at, read_id",
            archived = select("reads"),
            held = select(unarchived::UNARCHIVED_TABLE),
        ),
        None => format!(
            "{} ORDER BY distance_m, observed_at, read_id",
            select("reads")
        ),
    };
    let sources_sql = format!(
        "SELECT round({d}, 1) AS distance_m, id, kind, name, fov_direction, owner, contact, access_terms, footage \
         FROM (SELECT * FROM readers UNION ALL SELECT * FROM cameras) \
         WHERE {d} <= {radius_m} ORDER BY distance_m, id",
        d = distance("", lat, lon)
    );
    let reads = query_result(session, &reads_sql, "reads near the incident", quiet).await?;
    let placed = unpositioned_reads(&reads);
    if placed > 0 {
        notices.push(format!(
            "{placed} read(s) carry no position of their own (their reader's vendor sends none): \
             listed at their fixed reader's registered position, distance_m from it"
        ));
    }
    let sources = query_result(session, &sources_sql, "readers and cameras", true).await?;
    if from_engines.is_none() {
        notices.extend(archive_freshness_notice(session, range, now_ms).await?);
    }
    Ok(IncidentAnswer {
        reads,
        sources,
        from_engines,
        notices,
    })
}

#[allow(clippy::too_many_arguments)]
async fn run_incident(
    session: &ArchiveSession,
    incident: &IncidentArgs,
    engines: &[unarchived::EngineApi],
    range: Option<TimeRange>,
    format: OutputFormat,
    out: Option<&Path>,
    quiet: bool,
    sources_known: bool,
) -> Result<()> {
    check_position(incident.lat, incident.lon)?;
    let Some(range) = range else {
        bail!("give the incident's time: --at T [--window 30m], or --from and --to");
    };
    let radius_m = parse_distance_m("--radius", &incident.radius)?;
    let (lat, lon) = (incident.lat, incident.lon);
    if let Some(plate) = &incident.plate {
        plate_filter("plate_norm", plate)?;
    }
    if !sources_known {
        eprintln!(
            "no reader or camera registry (registry.csv or registry.geojson in the archive \
             directory, or --registry FILE): only reads are listed"
        );
    }
    let spec = IncidentSpec {
        lat,
        lon,
        radius_m,
        from_ms: range.from_ms,
        to_ms: range.to_ms,
        plate: incident.plate.clone(),
        make: incident.make.clone(),
        model: incident.model.clone(),
        color: incident.color.clone(),
    };
    let IncidentAnswer {
        reads,
        sources,
        notices,
        ..
    } = incident_answer(session, &spec, engines, quiet).await?;
    for notice in &notices {
        eprintln!("{notice}");
    }
    match format {
        OutputFormat::Table => {
            let mut text = Vec::new();
            output::write_table(&reads, &mut text)?;
            let mut sources_text = Vec::new();
            let sources_count = if sources_known {
                output::write_table(&sources, &mut sources_text)?;
                sources.rows().to_string()
            } else {
                "unknown, no registry loaded (--registry FILE, or registry.csv in the archive \
                 directory)"
                    .to_owned()
            };
            let report = format!(
                "Reads within {radius_m} m of ({lat}, {lon}) {}, nearest first: {} reads\n{}\n\
                 Readers and cameras within {radius_m} m: {}\n{}",
                range.describe(),
                reads.rows(),
                String::from_utf8_lossy(&text),
                sources_count,
                String::from_utf8_lossy(&sources_text)
            );
            output::write_string(&report, out)?;
            // Asked for a file of them too: the sources in the output's format.
            if let Some(path) = &incident.sources_out {
                emit(&sources, format, Some(path))?;
            }
            Ok(())
        }
        OutputFormat::Json => {
            let document = format!(
                "{{\"reads\":{},\"sources\":{}}}\n",
                output::json_array(&reads)?,
                output::json_array(&sources)?
            );
            output::write_string(&document, out)?;
            if let Some(path) = &incident.sources_out {
                emit(&sources, format, Some(path))?;
            }
            Ok(())
        }
        OutputFormat::Csv | OutputFormat::Parquet => {
            emit(&reads, format, out)?;
            if let Some(path) = &incident.sources_out {
                emit(&sources, format, Some(path))?;
            }
            Ok(())
        }
    }
}
