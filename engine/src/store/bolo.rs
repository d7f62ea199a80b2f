//! BOLOs in a list snapshot: vehicle descriptions indexed by the attributes they name, and
//! appearance reference vectors, so a read probes a handful of keys instead of scanning BOLOs.
//!
//! A BOLO is keyed by the exact values of the attributes it names among make, color and body type
//! (model only when no make is named: the model is then checked on each candidate, so a read whose
//! classifier gave no model still finds the BOLO), and, when it names an area, by each geohash
//! cell the area touches, at the finest of 4, 3 or 2 characters (about 39, 156 or 1,250 km
//! across) that takes at most [`MAX_AREA_CELLS`] cells (a larger area is keyed without a place). A read forms the same key for every attribute combination ("shape") present
//! in the list, once per look-alike of its color and with its own cell: at most a few dozen
//! probes, however many BOLOs the list holds. Each key's BOLOs are then checked on a small
//! record (model, time window, area) before the description is scored, so a read pays little
//! for the BOLOs of its make and color that describe another model or another place.

use std::sync::Arc;

use xxhash_rust::xxh3::xxh3_64;

use super::index::StaticMultiMap;
use crate::description::{dot, look_alike_colors, Area, CanonicalAttributes};
use crate::geo::{covering_cells_at, geohash_bits, geohash_string_bits};
use crate::hotlist::HotlistEntry;
use crate::read::PlateRead;

const MAKE_BIT: u8 = 1;
const COLOR_BIT: u8 = 2;
const BODY_BIT: u8 = 4;
const MODEL_ONLY_BIT: u8 = 8;
/// Geohash precisions BOLO areas are keyed at, finest first, with their shape bits.
const AREA_PRECISIONS: [(usize, u8); 3] = [(4, 16), (3, 32), (2, 64)];
/// Cells an area may be keyed under at one precision.
pub(crate) const MAX_AREA_CELLS: usize = 16;

fn value_hash(value: &str) -> u64 {
    xxh3_64(value.as_bytes())
}

fn shape_key(shape: u8, make: u64, color: u64, body: u64, model: u64, cell: u64) -> u64 {
    let mut bytes = [0u8; 41];
    bytes[0] = shape;
    for (chunk, value) in bytes[1..]
        .chunks_exact_mut(8)
        .zip([make, color, body, model, cell])
    {
        chunk.copy_from_slice(&value.to_le_bytes());
    }
    xxh3_64(&bytes)
}

/// A reference vector and the position of its BOLO.
#[derive(Debug)]
pub(crate) struct Reference {
    pub position: u32,
    pub vector: Box<[f32]>,
}

/// What decides most attribute candidates without touching their entries.
#[derive(Debug)]
struct BoloCheck {
    position: u32,
    /// Hash of the named model when a make is named too (0: none); a read with another model
    /// is another vehicle.
    model: u64,
    active_from_ms: Option<i64>,
    active_to_ms: Option<i64>,
    area: Option<Area>,
}

impl BoloCheck {
    fn admits(&self, read: &ReadAttributeKeys) -> bool {
        if self.model != 0 && read.model.is_some_and(|model| model != self.model) {
            return false;
        }
        if self
            .active_from_ms
            .is_some_and(|from| read.observed_at_ms < from)
            || self
                .active_to_ms
                .is_some_and(|to| read.observed_at_ms >= to)
        {
            return false;
        }
        match (&self.area, read.position) {
            (None, _) => true,
            (Some(area), Some((lat, lon))) => area.contains(lat, lon),
            (Some(_), None) => false,
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct BoloIndex {
    /// Shape keys to indexes into `checks`.
    by_attributes: StaticMultiMap,
    checks: Vec<BoloCheck>,
    /// Attribute combinations named by at least one BOLO of the list.
    shapes: Vec<u8>,
    pub references: Vec<Reference>,
    /// Positions of every BOLO (for folding and counting).
    pub positions: Vec<u32>,
}

/// A read's attributes in the BOLO vocabulary, hashed once per read for every list.
pub(crate) struct ReadAttributeKeys {
    make: Option<u64>,
    model: Option<u64>,
    colors: Vec<u64>,
    body: Option<u64>,
    /// The read's cells at each of `AREA_PRECISIONS` ([`geohash_bits`]).
    cells: Option<[u64; 3]>,
    position: Option<(f64, f64)>,
    observed_at_ms: i64,
    /// The attributes themselves, for scoring candidates.
    pub(crate) canonical: CanonicalAttributes,
}

impl ReadAttributeKeys {
    pub(crate) fn new(read: &PlateRead) -> Self {
        let canonical = CanonicalAttributes::of(read);
        let make = canonical.make.as_deref();
        let model = canonical.model.as_deref();
        let colors = canonical
            .color
            .map(|color| look_alike_colors(color).map(value_hash).collect())
            .unwrap_or_default();
        let body = canonical.body_type;
        let position = read.lat.zip(read.lon);
        let finest = AREA_PRECISIONS[0].0;
        let cells = position
            .and_then(|(lat, lon)| geohash_bits(lat, lon, finest))
            .map(|cell| AREA_PRECISIONS.map(|(precision, _)| cell >> (5 * (finest - precision))));
        Self {
            make: make.map(value_hash),
            model: model.map(value_hash),
            colors,
            body: body.map(value_hash),
            cells,
            position,
            observed_at_ms: read.observed_at.millis(),
            canonical,
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.make.is_none() && self.model.is_none() && self.colors.is_empty() && self.body.is_none()
    }
}

/// The shape bit and cells an area is keyed under, or `None` when it is too large to key by
/// place.
fn area_cells(area: &Area) -> Option<(u8, Vec<u64>)> {
    AREA_PRECISIONS.iter().find_map(|&(precision, bit)| {
        let cells =
            covering_cells_at(area.lat, area.lon, area.radius_m, precision, MAX_AREA_CELLS)?;
        let cells: Option<Vec<u64>> = cells.iter().map(|cell| geohash_string_bits(cell)).collect();
        Some((bit, cells?))
    })
}

/// A BOLO's shape and its keys (one per area cell), or `None` when it names none of the keyed
/// attributes.
fn entry_keys(entry: &HotlistEntry) -> Option<(u8, Vec<u64>)> {
    let description = entry.vehicle.as_deref()?;
    let mut shape = 0;
    let hash = |value: &Option<String>, bit: u8, shape: &mut u8| {
        value.as_deref().map_or(0, |value| {
            *shape |= bit;
            value_hash(value)
        })
    };
    let make = hash(&description.make, MAKE_BIT, &mut shape);
    let color = hash(&description.color, COLOR_BIT, &mut shape);
    let body = hash(&description.body_type, BODY_BIT, &mut shape);
    let model = if description.make.is_none() {
        hash(&description.model, MODEL_ONLY_BIT, &mut shape)
    } else {
        0
    };
    if shape == 0 {
        return None;
    }
    let cells = description.area.as_ref().and_then(area_cells);
    let keys = match cells {
        Some((bit, cells)) => {
            shape |= bit;
            cells
                .into_iter()
                .map(|cell| shape_key(shape, make, color, body, model, cell))
                .collect()
        }
        None => vec![shape_key(shape, make, color, body, model, 0)],
    };
    Some((shape, keys))
}

impl BoloIndex {
    pub(crate) fn build(entries: &[Arc<HotlistEntry>]) -> Self {
        let mut shapes = Vec::new();
        let mut references = Vec::new();
        let mut positions = Vec::new();
        let mut checks = Vec::new();
        let mut keyed: Vec<(u64, u32)> = Vec::new();
        for (position, entry) in entries.iter().enumerate() {
            let Some(description) = entry.vehicle.as_deref() else {
                continue;
            };
            positions.push(position as u32);
            if let Some((shape, keys)) = entry_keys(entry) {
                if !shapes.contains(&shape) {
                    shapes.push(shape);
                }
                let check = checks.len() as u32;
                checks.push(BoloCheck {
                    position: position as u32,
                    model: match (&description.make, &description.model) {
                        (Some(_), Some(model)) => value_hash(model),
                        _ => 0,
                    },
                    active_from_ms: description.active_from.map(|from| from.millis()),
                    active_to_ms: description.active_to.map(|to| to.millis()),
                    area: description.area,
                });
                keyed.extend(keys.into_iter().map(|key| (key, check)));
            }
            for vector in &description.reference_vectors {
                references.push(Reference {
                    position: position as u32,
                    vector: vector.clone().into_boxed_slice(),
                });
            }
        }
        let by_attributes = StaticMultiMap::build(|emit| {
            for &(key, check) in &keyed {
                emit(key, check);
            }
        });
        Self {
            by_attributes,
            checks,
            shapes,
            references,
            positions,
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.positions.is_empty()
    }

    /// Positions of BOLOs whose indexed attributes all equal the read's (color: or a look-alike)
    /// and whose model, time window and area do not rule the read out.
    pub(crate) fn attribute_candidates(&self, read: &ReadAttributeKeys, out: &mut Vec<u32>) {
        if self.shapes.is_empty() || read.is_empty() {
            return;
        }
        let first = out.len();
        for &shape in &self.shapes {
            let make = if shape & MAKE_BIT != 0 {
                match read.make {
                    Some(make) => make,
                    None => continue,
                }
            } else {
                0
            };
            let body = if shape & BODY_BIT != 0 {
                match read.body {
                    Some(body) => body,
                    None => continue,
                }
            } else {
                0
            };
            let model = if shape & MODEL_ONLY_BIT != 0 {
                match read.model {
                    Some(model) => model,
                    None => continue,
                }
            } else {
                0
            };
            let area_level = AREA_PRECISIONS.iter().position(|(_, bit)| shape & bit != 0);
            let cell = match (area_level, read.cells) {
                (None, _) => 0,
                (Some(level), Some(cells)) => cells[level],
                (Some(_), None) => continue,
            };
            if shape & COLOR_BIT != 0 {
                for &color in &read.colors {
                    self.by_attributes
                        .get(shape_key(shape, make, color, body, model, cell), out);
                }
            } else {
                self.by_attributes
                    .get(shape_key(shape, make, 0, body, model, cell), out);
            }
        }
        // From indexes into `checks` to the positions of the BOLOs that pass theirs.
        let mut kept = first;
        for at in first..out.len() {
            if let Some(check) = self.checks.get(out[at] as usize) {
                if check.admits(read) {
                    out[kept] = check.position;
                    kept += 1;
                }
            }
        }
        out.truncate(kept);
    }

    /// (position, similarity) of the BOLOs whose best reference vector is at least `threshold`
    /// similar to `unit_embedding`; vectors of another dimension are not compared.
    pub(crate) fn appearance_hits(
        &self,
        unit_embedding: &[f32],
        threshold: f32,
        out: &mut Vec<(u32, f32)>,
    ) {
        for reference in &self.references {
            if reference.vector.len() != unit_embedding.len() {
                continue;
            }
            let similarity = dot(&reference.vector, unit_embedding);
            if similarity < threshold {
                continue;
            }
            match out
                .iter_mut()
                .find(|(position, _)| *position == reference.position)
            {
                Some(hit) => hit.1 = hit.1.max(similarity),
                None => out.push((reference.position, similarity)),
            }
        }
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.by_attributes.heap_bytes()
            + self.checks.capacity() * std::mem::size_of::<BoloCheck>()
            + self.shapes.capacity()
            + self.positions.capacity() * 4
            + self
                .references
                .iter()
                .map(|reference| 16 + reference.vector.len() * 4)
                .sum::<usize>()
    }
}
