//! Places on the earth: the archive's spatial key (a geohash), great-circle distances and the set
//! of geohash cells that cover a search circle.

/// Characters of the archive's `geohash` column: cells of about 153 m × 153 m at the equator
/// (about 119 m east-west × 153 m north-south at Washington DC's latitude).
pub const ARCHIVE_GEOHASH_PRECISION: usize = 7;

/// The most cells a radius query names before it covers the circle with coarser (shorter) cells.
pub const MAX_COVERING_CELLS: usize = 64;

const BASE32: &[u8; 32] = b"0123456789bcdefghjkmnpqrstuvwxyz";
const EARTH_RADIUS_M: f64 = 6_371_008.8;
const METERS_PER_DEGREE_LAT: f64 = 111_320.0;

/// Whether a position is a real WGS 84 coordinate.
pub fn valid_position(lat: f64, lon: f64) -> bool {
    lat.is_finite()
        && lon.is_finite()
        && (-90.0..=90.0).contains(&lat)
        && (-180.0..=180.0).contains(&lon)
}

/// The geohash of a position with `precision` characters; `None` for an impossible position.
pub fn geohash(lat: f64, lon: f64, precision: usize) -> Option<String> {
    let mut cell = [0u8; 12];
    geohash_into(lat, lon, cell.get_mut(..precision)?).map(str::to_owned)
}

/// [`geohash`] with as many characters as `cell` holds (at most 12), written into it: the
/// archive computes one for every read and needs no `String` of it.
pub fn geohash_into(lat: f64, lon: f64, cell: &mut [u8]) -> Option<&str> {
    let bits = geohash_bits(lat, lon, cell.len())?;
    let last = cell.len().saturating_sub(1);
    for (index, character) in cell.iter_mut().enumerate() {
        *character = BASE32[((bits >> (5 * (last - index))) & 31) as usize];
    }
    std::str::from_utf8(cell).ok()
}

/// The geohash of a position as an integer, 5 bits per character (at most 12), first character
/// in the highest bits: the cell at a shorter precision `p` is `bits >> 5 * (precision - p)`.
/// For keys, without building a string.
pub fn geohash_bits(lat: f64, lon: f64, precision: usize) -> Option<u64> {
    if !valid_position(lat, lon) || precision > 12 {
        return None;
    }
    let (mut lat_range, mut lon_range) = ((-90.0_f64, 90.0_f64), (-180.0_f64, 180.0_f64));
    let mut bits = 0u64;
    let mut even_bit = true;
    for _ in 0..precision * 5 {
        let (range, value) = if even_bit {
            (&mut lon_range, lon)
        } else {
            (&mut lat_range, lat)
        };
        let middle = (range.0 + range.1) / 2.0;
        bits <<= 1;
        if value >= middle {
            bits |= 1;
            range.0 = middle;
        } else {
            range.1 = middle;
        }
        even_bit = !even_bit;
    }
    Some(bits)
}

/// [`geohash_bits`] of a geohash string; `None` for a character outside the alphabet.
pub fn geohash_string_bits(cell: &str) -> Option<u64> {
    if cell.len() > 12 {
        return None;
    }
    cell.bytes().try_fold(0u64, |bits, character| {
        let value = BASE32.iter().position(|known| *known == character)?;
        Some(bits << 5 | value as u64)
    })
}

/// Cell size in degrees (latitude, longitude) of geohashes with `precision` characters.
fn cell_size_degrees(precision: usize) -> (f64, f64) {
    let bits = 5 * precision as i32;
    let lon_bits = (bits + 1) / 2;
    let lat_bits = bits / 2;
    (180.0 / 2f64.powi(lat_bits), 360.0 / 2f64.powi(lon_bits))
}

/// Great-circle distance in metres (haversine).
pub fn distance_m(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let (phi1, phi2) = (lat1.to_radians(), lat2.to_radians());
    let d_phi = (lat2 - lat1).to_radians();
    let d_lambda = (lon2 - lon1).to_radians();
    let a = (d_phi / 2.0).sin().powi(2) + phi1.cos() * phi2.cos() * (d_lambda / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_M * a.sqrt().min(1.0).asin()
}

/// A latitude/longitude box.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BoundingBox {
    pub min_lat: f64,
    pub max_lat: f64,
    pub min_lon: f64,
    pub max_lon: f64,
}

/// The box around a circle, a little generous so that no point inside the circle falls outside.
pub fn bounding_box(lat: f64, lon: f64, radius_m: f64) -> BoundingBox {
    let d_lat = radius_m / METERS_PER_DEGREE_LAT * 1.01;
    let cos_lat = lat.to_radians().cos().max(1e-6);
    let d_lon = (radius_m / (METERS_PER_DEGREE_LAT * cos_lat) * 1.01).min(180.0);
    BoundingBox {
        min_lat: (lat - d_lat).max(-90.0),
        max_lat: (lat + d_lat).min(90.0),
        min_lon: (lon - d_lon).max(-180.0),
        max_lon: (lon + d_lon).min(180.0),
    }
}

/// Geohash prefixes whose cells together cover the circle's bounding box: the archive's finest
/// precision when that takes at most [`MAX_COVERING_CELLS`] cells, coarser otherwise. Every point
/// within the circle has a geohash starting with one of them.
pub fn covering_cells(lat: f64, lon: f64, radius_m: f64) -> Vec<String> {
    for precision in (2..=ARCHIVE_GEOHASH_PRECISION).rev() {
        if let Some(cells) = covering_cells_at(lat, lon, radius_m, precision, MAX_COVERING_CELLS) {
            return cells;
        }
    }
    covering_cells_at(lat, lon, radius_m, 1, usize::MAX).unwrap_or_default()
}

/// The geohash cells of one precision that together cover the circle's bounding box, or `None`
/// when that takes more than `max_cells`.
pub fn covering_cells_at(
    lat: f64,
    lon: f64,
    radius_m: f64,
    precision: usize,
    max_cells: usize,
) -> Option<Vec<String>> {
    let bounds = bounding_box(lat, lon, radius_m);
    let (cell_lat, cell_lon) = cell_size_degrees(precision);
    let rows = ((bounds.max_lat + 90.0) / cell_lat).floor()
        - ((bounds.min_lat + 90.0) / cell_lat).floor()
        + 1.0;
    let columns = ((bounds.max_lon + 180.0) / cell_lon).floor()
        - ((bounds.min_lon + 180.0) / cell_lon).floor()
        + 1.0;
    let cell_count = rows * columns;
    // NaN (a position outside the globe) takes no cells either.
    if cell_count.is_nan() || cell_count > max_cells as f64 {
        return None;
    }
    let mut cells = Vec::new();
    let first_row = ((bounds.min_lat + 90.0) / cell_lat).floor() as i64;
    let first_column = ((bounds.min_lon + 180.0) / cell_lon).floor() as i64;
    for row in 0..rows as i64 {
        for column in 0..columns as i64 {
            // The centre of each cell, which lies inside it whatever rounding does at the edges.
            let centre_lat =
                (((first_row + row) as f64 + 0.5) * cell_lat - 90.0).clamp(-90.0, 90.0);
            let centre_lon =
                (((first_column + column) as f64 + 0.5) * cell_lon - 180.0).clamp(-180.0, 180.0);
            if let Some(cell) = geohash(centre_lat, centre_lon, precision) {
                cells.push(cell);
            }
        }
    }
    cells.sort();
    cells.dedup();
    Some(cells)
}

/// Compass direction (N, NE, E, ...) of a heading in degrees from north.
pub fn compass(heading_degrees: f64) -> &'static str {
    const POINTS: [&str; 8] = ["N", "NE", "E", "SE", "S", "SW", "W", "NW"];
    let index = ((heading_degrees.rem_euclid(360.0) + 22.5) / 45.0).floor() as usize % 8;
    POINTS[index]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geohashes_match_the_published_reference_values() {
        // Reference values from the original geohash.org description and common test suites.
        assert_eq!(
            geohash(57.64911, 10.40744, 11).as_deref(),
            Some("u4pruydqqvj")
        );
        assert_eq!(geohash(42.6, -5.6, 5).as_deref(), Some("ezs42"));
        assert_eq!(geohash(42.6, -5.6, 3).as_deref(), Some("ezs"));
        assert_eq!(geohash(91.0, 0.0, 7), None);
        assert_eq!(geohash(f64::NAN, 0.0, 7), None);
    }

    #[test]
    fn covering_cells_contain_every_point_of_the_circle() {
        let (lat, lon) = (38.9072, -77.0369);
        for radius in [50.0, 500.0, 2_000.0, 20_000.0] {
            let cells = covering_cells(lat, lon, radius);
            assert!(
                !cells.is_empty() && cells.len() <= MAX_COVERING_CELLS,
                "{radius}: {}",
                cells.len()
            );
            for step in 0..360 {
                let bearing = f64::from(step).to_radians();
                for fraction in [0.0, 0.5, 0.99] {
                    let north = radius * fraction * bearing.cos();
                    let east = radius * fraction * bearing.sin();
                    let point_lat = lat + north / METERS_PER_DEGREE_LAT;
                    let point_lon = lon + east / (METERS_PER_DEGREE_LAT * lat.to_radians().cos());
                    assert!(distance_m(lat, lon, point_lat, point_lon) <= radius * 1.001);
                    let hash = geohash(point_lat, point_lon, ARCHIVE_GEOHASH_PRECISION).unwrap();
                    assert!(
                        cells.iter().any(|cell| hash.starts_with(cell.as_str())),
                        "{radius} m: {hash} not covered by {cells:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn distances_and_compass_points() {
        // White House to the Capitol: about 2.6 km.
        let d = distance_m(38.8977, -77.0365, 38.8899, -77.0091);
        assert!((2_400.0..2_700.0).contains(&d), "{d}");
        assert_eq!(compass(0.0), "N");
        assert_eq!(compass(350.0), "N");
        assert_eq!(compass(112.0), "E");
        assert_eq!(compass(250.0), "W");
        assert_eq!(compass(-45.0), "NW");
    }

    #[test]
    fn geohash_bits_and_strings_agree_and_shorter_cells_are_prefixes() {
        // The example of geohash's inventor.
        assert_eq!(
            geohash(57.64911, 10.40744, 11).as_deref(),
            Some("u4pruydqqvj")
        );
        let bits = geohash_bits(57.64911, 10.40744, 11).unwrap();
        assert_eq!(geohash_string_bits("u4pruydqqvj"), Some(bits));
        assert_eq!(geohash_bits(57.64911, 10.40744, 4), Some(bits >> 35));
        assert_eq!(geohash_string_bits("u4pr"), Some(bits >> 35));
        assert_eq!(geohash_string_bits("u4pa"), None);
        assert_eq!(geohash_bits(91.0, 0.0, 4), None);
    }
}
