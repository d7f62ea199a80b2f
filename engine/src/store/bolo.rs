//! BOLOs in a list snapshot: vehicle descriptions indexed by the attributes they name, and
//! appearance reference vectors, so a read probes a handful of keys instead of scanning BOLOs.
//!
//! A BOLO is keyed by the exact values of the attributes it names among make, color and body type
//! (model only when no make is named: the model is then checked on each candidate, so a read whose
//! classifier gave no model still finds the BOLO). A read forms the same key for every attribute
//! combination ("shape") present in the list, once per look-alike of its color: at most a few
//! dozen probes, however many BOLOs the list holds.

use std::sync::Arc;

use xxhash_rust::xxh3::xxh3_64;

use super::index::StaticMultiMap;
use crate::description::{dot, look_alike_colors, AttributeName};
use crate::hotlist::HotlistEntry;
use crate::read::PlateRead;
use crate::vendor::vocabulary::{canonical_body_type, canonical_color, canonical_make};

const MAKE_BIT: u8 = 1;
const COLOR_BIT: u8 = 2;
const BODY_BIT: u8 = 4;
const MODEL_ONLY_BIT: u8 = 8;

fn value_hash(value: &str) -> u64 {
    xxh3_64(value.as_bytes())
}

fn shape_key(shape: u8, make: u64, color: u64, body: u64, model: u64) -> u64 {
    let mut bytes = [0u8; 33];
    bytes[0] = shape;
    for (chunk, value) in bytes[1..]
        .chunks_exact_mut(8)
        .zip([make, color, body, model])
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

#[derive(Debug, Default)]
pub(crate) struct BoloIndex {
    by_attributes: StaticMultiMap,
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
}

impl ReadAttributeKeys {
    pub(crate) fn new(read: &PlateRead) -> Self {
        let vehicle = &read.vehicle;
        let make = vehicle
            .make
            .as_ref()
            .and_then(|make| canonical_make(&make.value));
        let model = vehicle
            .model
            .as_ref()
            .and_then(|model| AttributeName::Model.canonical(&model.value, vehicle.make.as_ref()));
        let colors = vehicle
            .color
            .as_ref()
            .and_then(|color| canonical_color(&color.value))
            .map(|color| look_alike_colors(color).map(value_hash).collect())
            .unwrap_or_default();
        let body = vehicle
            .body_type
            .as_ref()
            .and_then(|body| canonical_body_type(&body.value));
        Self {
            make: make.as_deref().map(value_hash),
            model: model.as_deref().map(value_hash),
            colors,
            body: body.map(value_hash),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.make.is_none() && self.model.is_none() && self.colors.is_empty() && self.body.is_none()
    }
}

fn entry_shape(entry: &HotlistEntry) -> Option<(u8, u64)> {
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
    (shape != 0).then(|| (shape, shape_key(shape, make, color, body, model)))
}

impl BoloIndex {
    pub(crate) fn build(entries: &[Arc<HotlistEntry>]) -> Self {
        let mut shapes = Vec::new();
        let mut references = Vec::new();
        let mut positions = Vec::new();
        for (position, entry) in entries.iter().enumerate() {
            let Some(description) = entry.vehicle.as_deref() else {
                continue;
            };
            positions.push(position as u32);
            if let Some((shape, _)) = entry_shape(entry) {
                if !shapes.contains(&shape) {
                    shapes.push(shape);
                }
            }
            for vector in &description.reference_vectors {
                references.push(Reference {
                    position: position as u32,
                    vector: vector.clone().into_boxed_slice(),
                });
            }
        }
        let by_attributes = StaticMultiMap::build(|emit| {
            for (position, entry) in entries.iter().enumerate() {
                if let Some((_, key)) = entry_shape(entry) {
                    emit(key, position as u32);
                }
            }
        });
        Self {
            by_attributes,
            shapes,
            references,
            positions,
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.positions.is_empty()
    }

    /// Positions of BOLOs whose indexed attributes all equal the read's (color: or a look-alike).
    pub(crate) fn attribute_candidates(&self, read: &ReadAttributeKeys, out: &mut Vec<u32>) {
        if self.shapes.is_empty() || read.is_empty() {
            return;
        }
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
            if shape & COLOR_BIT != 0 {
                for &color in &read.colors {
                    self.by_attributes
                        .get(shape_key(shape, make, color, body, model), out);
                }
            } else {
                self.by_attributes
                    .get(shape_key(shape, make, 0, body, model), out);
            }
        }
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
            + self.shapes.capacity()
            + self.positions.capacity() * 4
            + self
                .references
                .iter()
                .map(|reference| 16 + reference.vector.len() * 4)
                .sum::<usize>()
    }
}
