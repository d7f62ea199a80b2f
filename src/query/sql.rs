//! SQL text for the investigative queries. Every predicate is written so DataFusion can prune with
//! it: the time range as `date`/`hour` partition bounds plus `observed_at` bounds (row-group and
//! page statistics), a radius as a lat/lon box plus the covering `geohash` cells, an exact plate
//! as `plate_norm` equality (bloom filter).

use chrono::{DateTime, Timelike};
use platestream_engine::geo::{bounding_box, covering_cells, ARCHIVE_GEOHASH_PRECISION};

use platestream_engine::archive::BY_PLATE_TABLE;

use super::args::{rfc3339, TimeRange};
use super::session::{ArchiveSession, Pruning};

/// A SQL string literal.
pub fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// Bounds far outside any real archive mean "open" and are not written.
pub fn is_open_bound(millis: i64) -> bool {
    !(-(1i64 << 50)..(1i64 << 50)).contains(&millis)
}

/// The `date` and `hour` partition values of a time.
pub fn partition_of(millis: i64) -> Option<(String, String)> {
    let time = DateTime::from_timestamp_millis(millis)?;
    Some((
        time.format("%Y-%m-%d").to_string(),
        format!("{:02}", time.hour()),
    ))
}

/// `observed_at` within the range, and (with pruning) the `date`/`hour` partitions that hold it.
/// `table` qualifies the columns (`r.`) in joins; `widen_ms` extends both ends.
pub fn time_filter(
    session: &ArchiveSession,
    table: &str,
    range: Option<TimeRange>,
    widen_ms: i64,
) -> String {
    let Some(range) = range else {
        return "TRUE".to_owned();
    };
    let mut clauses = Vec::new();
    let (from, to) = (
        range.from_ms.saturating_sub(widen_ms),
        range.to_ms.saturating_add(widen_ms),
    );
    if !is_open_bound(range.from_ms) {
        clauses.push(format!("{table}observed_at >= {}", quote(&rfc3339(from))));
    }
    if !is_open_bound(range.to_ms) {
        clauses.push(format!("{table}observed_at < {}", quote(&rfc3339(to))));
    }
    if session.pruning == Pruning::On {
        if let Some((date, hour)) = (!is_open_bound(range.from_ms))
            .then(|| partition_of(from))
            .flatten()
        {
            let (date, hour) = (quote(&date), quote(&hour));
            clauses.push(format!("{table}\"date\" >= {date}"));
            clauses.push(format!(
                "({table}\"date\" > {date} OR {table}\"hour\" >= {hour})"
            ));
        }
        // The last millisecond inside the range names the last partition.
        if let Some((date, hour)) = (!is_open_bound(range.to_ms))
            .then(|| partition_of(to - 1))
            .flatten()
        {
            let (date, hour) = (quote(&date), quote(&hour));
            clauses.push(format!("{table}\"date\" <= {date}"));
            clauses.push(format!(
                "({table}\"date\" < {date} OR {table}\"hour\" <= {hour})"
            ));
        }
    }
    if clauses.is_empty() {
        "TRUE".to_owned()
    } else {
        clauses.join(" AND ")
    }
}

/// `SELECT {columns} FROM reads WHERE {filter}` for a query that selects by plate: the days whose
/// plate-ordered copy is current are read from `reads_by_plate` instead, where one plate's reads
/// of a day are neighbours. `filter` may use `hour` and any column of [`BY_PLATE_COLUMNS`].
///
/// [`BY_PLATE_COLUMNS`]: platestream_engine::archive::BY_PLATE_COLUMNS
pub fn by_plate_select(
    session: &ArchiveSession,
    columns: &str,
    filter: &str,
) -> anyhow::Result<String> {
    let dates = session.plate_copy_dates()?;
    if dates.is_empty() {
        return Ok(format!("SELECT {columns} FROM reads WHERE {filter}"));
    }
    let dates: Vec<String> = dates.iter().map(|date| quote(date)).collect();
    let dates = dates.join(", ");
    Ok(format!(
        "SELECT {columns} FROM reads WHERE \"date\" NOT IN ({dates}) AND {filter} \
         UNION ALL SELECT {columns} FROM {BY_PLATE_TABLE} WHERE \"date\" IN ({dates}) AND {filter}"
    ))
}

/// Great-circle distance in metres from a point to the row's `lat`/`lon` (haversine).
pub fn distance(table: &str, lat: f64, lon: f64) -> String {
    distance_of(&format!("{table}lat"), &format!("{table}lon"), lat, lon)
}

/// The haversine distance in metres from the point to the position the two SQL expressions give.
pub fn distance_of(lat_expr: &str, lon_expr: &str, lat: f64, lon: f64) -> String {
    format!(
        "(2 * 6371008.8 * asin(least(1.0, sqrt(power(sin(radians({lat_expr} - ({lat})) / 2), 2) + \
         cos(radians({lat})) * cos(radians({lat_expr})) * power(sin(radians({lon_expr} - ({lon})) / 2), 2)))))"
    )
}

/// A fixed reader of the registry: where its reads stand when they carry no position of their
/// own (Plate Recognizer sends none).
#[derive(Debug, Clone, PartialEq)]
pub struct FixedReader {
    pub id: String,
    pub lat: f64,
    pub lon: f64,
}

/// Rows within `radius_m` of the point, counting a row without a position at its fixed reader's
/// registered one (`readers`: those of the registry within the circle).
pub fn area_filter_with_readers(
    table: &str,
    lat: f64,
    lon: f64,
    radius_m: f64,
    readers: &[FixedReader],
) -> String {
    let own = area_filter(table, lat, lon, radius_m);
    if readers.is_empty() {
        return own;
    }
    let ids: Vec<String> = readers.iter().map(|reader| quote(&reader.id)).collect();
    format!(
        "(({own}) OR ({table}lat IS NULL AND {table}reader_id IN ({})))",
        ids.join(", ")
    )
}

/// The distance of a row from the point: from its own position, or from its fixed reader's.
pub fn distance_with_readers(table: &str, lat: f64, lon: f64, readers: &[FixedReader]) -> String {
    if readers.is_empty() {
        return distance(table, lat, lon);
    }
    let placed = |own: &str, of: fn(&FixedReader) -> f64| {
        let cases: Vec<String> = readers
            .iter()
            .map(|reader| format!("WHEN {} THEN {}", quote(&reader.id), of(reader)))
            .collect();
        format!(
            "coalesce({table}{own}, CASE {table}reader_id {} END)",
            cases.join(" ")
        )
    };
    distance_of(
        &placed("lat", |reader| reader.lat),
        &placed("lon", |reader| reader.lon),
        lat,
        lon,
    )
}

/// Rows within `radius_m` of the point: the exact distance, and what lets DataFusion prune first.
pub fn area_filter(table: &str, lat: f64, lon: f64, radius_m: f64) -> String {
    let bounds = bounding_box(lat, lon, radius_m);
    let exact = format!("{} <= {radius_m}", distance(table, lat, lon));
    let latitudes = format!(
        "{table}lat BETWEEN {} AND {}",
        bounds.min_lat, bounds.max_lat
    );
    // A circle across the 180th meridian (or over a pole) holds longitudes at both ends of the
    // range, which one interval and the geohash cells of one side would miss.
    if bounds.min_lon <= -180.0 || bounds.max_lon >= 180.0 {
        return format!("{latitudes} AND {exact}");
    }
    let mut clauses = vec![
        latitudes,
        format!(
            "{table}lon BETWEEN {} AND {}",
            bounds.min_lon, bounds.max_lon
        ),
    ];
    // A file written before the column existed reads as null there: its rows are kept for the
    // box and the exact distance to decide.
    let cells = covering_cells(lat, lon, radius_m);
    if cells
        .iter()
        .all(|cell| cell.len() == ARCHIVE_GEOHASH_PRECISION)
    {
        let list: Vec<String> = cells.iter().map(|cell| quote(cell)).collect();
        clauses.push(format!(
            "({table}geohash IS NULL OR {table}geohash IN ({}))",
            list.join(", ")
        ));
    } else {
        let prefixes: Vec<String> = cells
            .iter()
            .map(|cell| format!("{table}geohash LIKE {}", quote(&format!("{cell}%"))))
            .collect();
        clauses.push(format!(
            "({table}geohash IS NULL OR {})",
            prefixes.join(" OR ")
        ));
    }
    clauses.push(exact);
    clauses.join(" AND ")
}

/// The compass point (N, NE, ...) of the direction of travel in `heading`.
pub fn direction(table: &str) -> String {
    format!(
        "CASE CAST(floor((((CAST({table}heading AS DOUBLE) + 22.5) % 360) + 360) % 360 / 45) AS INT) \
         WHEN 0 THEN 'N' WHEN 1 THEN 'NE' WHEN 2 THEN 'E' WHEN 3 THEN 'SE' \
         WHEN 4 THEN 'S' WHEN 5 THEN 'SW' WHEN 6 THEN 'W' WHEN 7 THEN 'NW' END"
    )
}

/// The columns a read is shown with.
pub fn read_columns(table: &str) -> String {
    format!(
        "{table}observed_at, {table}plate, {table}plate_norm, {table}jurisdiction, {table}reader_id, \
         {table}camera_id, {dir} AS direction, {table}motion, {table}heading, {table}make, {table}model, \
         {table}color, {table}confidence, {table}lat, {table}lon, {table}read_id",
        dir = direction(table)
    )
}

/// A vehicle attribute equal to `canonical` (lowercase words joined by `-`, as the vocabulary
/// writes them), whatever case and separators the archived value has (`Land Rover`).
pub fn attribute_filter(column: &str, canonical: &str) -> String {
    format!(
        "btrim(regexp_replace(lower({column}), '[^a-z0-9]+', '-', 'g'), '-') = {}",
        quote(canonical)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_are_doubled() {
        assert_eq!(quote("O'Brien"), "'O''Brien'");
    }
}
