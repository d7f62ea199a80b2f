//! Misread-tolerant plate lookup: the index behind misread matching (issue #4), not yet wired
//! into the pipeline.
//!
//! OCR confuses look-alike characters and drops or adds a character. A read matches an entry when
//! it differs by at most one look-alike substitution and at most one insertion or deletion. The
//! index never scans the list: every entry is stored under its *confusion key* (each character
//! replaced by its look-alike class) and under each key with one character deleted, so a read
//! costs `2 + len` hash probes followed by an exact check of the few candidates.

use std::collections::HashMap;

/// Look-alike classes, each written as its representative followed by its members.
///
/// The first six are the default OCR-equivalence classes of a widely deployed ALPR matcher
/// (Genetec Security Center: 0/O/D/Q, 1/I, 2/Z, 5/S, 8/B, 6/G); T and L join 1 because plate
/// fonts draw them as a bare stroke, and A/4 is a documented confusion of plate OCR engines
/// (both are open triangles in the narrow fonts of many states). Classes are kept small on
/// purpose: every member added widens each entry's net and raises false alerts.
pub const CONFUSION_CLASSES: &[&str] = &["0ODQ", "1ILT", "8B", "5S", "2Z", "6G", "4A"];

const fn build_class_table() -> [u8; 256] {
    let mut table = [0u8; 256];
    let mut character = 0;
    while character < 256 {
        table[character] = character as u8;
        character += 1;
    }
    let mut class_index = 0;
    while class_index < CONFUSION_CLASSES.len() {
        let class = CONFUSION_CLASSES[class_index].as_bytes();
        let mut member = 0;
        while member < class.len() {
            table[class[member] as usize] = class[0];
            member += 1;
        }
        class_index += 1;
    }
    table
}

/// Each byte's class representative (itself when it has no look-alikes), by table lookup because
/// matching folds every character of every read.
pub(crate) static CLASS_OF: [u8; 256] = build_class_table();

/// The representative of `character`'s look-alike class.
pub fn confusion_class(character: u8) -> u8 {
    CLASS_OF[usize::from(character)]
}

fn confusion_key(plate: &str) -> Vec<u8> {
    plate.bytes().map(confusion_class).collect()
}

fn without(bytes: &[u8], skip: usize) -> Vec<u8> {
    let mut shortened = Vec::with_capacity(bytes.len().saturating_sub(1));
    shortened.extend_from_slice(&bytes[..skip]);
    shortened.extend_from_slice(&bytes[skip + 1..]);
    shortened
}

fn deletions(key: &[u8]) -> impl Iterator<Item = Vec<u8>> + '_ {
    (0..key.len()).map(move |skip| without(key, skip))
}

/// How a read differs from an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MisreadDifference {
    /// (position in the entry, entry character, read character) of a look-alike substitution.
    pub substitution: Option<(usize, char, char)>,
    /// (position in the entry, character) the read dropped.
    pub dropped: Option<(usize, char)>,
    /// (position in the read, character) the read added.
    pub added: Option<(usize, char)>,
}

impl MisreadDifference {
    pub fn explain(&self) -> String {
        let mut parts = Vec::new();
        if let Some((position, entry, read)) = self.substitution {
            parts.push(format!(
                "read {read:?} for {entry:?} at position {}",
                position + 1
            ));
        }
        if let Some((position, character)) = self.dropped {
            parts.push(format!(
                "dropped {character:?} at position {}",
                position + 1
            ));
        }
        if let Some((position, character)) = self.added {
            parts.push(format!("added {character:?} at position {}", position + 1));
        }
        if parts.is_empty() {
            "identical".to_owned()
        } else {
            parts.join(", ")
        }
    }
}

/// Aligns `read` against `entry` allowing one look-alike substitution and one insertion or
/// deletion; `None` when they differ by more.
pub fn misread_difference(entry: &str, read: &str) -> Option<MisreadDifference> {
    let (entry, read) = (entry.as_bytes(), read.as_bytes());
    match read.len() as isize - entry.len() as isize {
        0 => substitution_only(entry, read).map(|substitution| MisreadDifference {
            substitution,
            dropped: None,
            added: None,
        }),
        -1 => (0..entry.len()).find_map(|gap| {
            let substitution = substitution_skipping(entry, Some(gap), read, None)?;
            Some(MisreadDifference {
                // Positions in the shortened entry past the gap are one further on in the entry.
                substitution: substitution
                    .map(|(position, e, r)| (position + usize::from(position >= gap), e, r)),
                dropped: Some((gap, char::from(entry[gap]))),
                added: None,
            })
        }),
        1 => (0..read.len()).find_map(|extra| {
            let substitution = substitution_skipping(entry, None, read, Some(extra))?;
            Some(MisreadDifference {
                substitution,
                dropped: None,
                added: Some((extra, char::from(read[extra]))),
            })
        }),
        _ => None,
    }
}

/// Equal-length comparison: `Some(None)` identical, `Some(Some(..))` one look-alike substitution.
fn substitution_only(entry: &[u8], read: &[u8]) -> Option<Option<(usize, char, char)>> {
    substitution_skipping(entry, None, read, None)
}

/// [`substitution_only`] of `entry` and `read` with the byte at `skip_entry` / `skip_read`
/// left out (positions in the result count the remaining bytes), without copying either.
fn substitution_skipping(
    entry: &[u8],
    skip_entry: Option<usize>,
    read: &[u8],
    skip_read: Option<usize>,
) -> Option<Option<(usize, char, char)>> {
    let entry_bytes = entry
        .iter()
        .enumerate()
        .filter(|&(position, _)| Some(position) != skip_entry)
        .map(|(_, &byte)| byte);
    let read_bytes = read
        .iter()
        .enumerate()
        .filter(|&(position, _)| Some(position) != skip_read)
        .map(|(_, &byte)| byte);
    let mut substitution = None;
    for (position, (e, r)) in entry_bytes.zip(read_bytes).enumerate() {
        if e == r {
            continue;
        }
        if substitution.is_some() || confusion_class(e) != confusion_class(r) {
            return None;
        }
        substitution = Some((position, char::from(e), char::from(r)));
    }
    Some(substitution)
}

/// Entries (by their index in the caller's list) under their confusion keys and one-deletion keys.
#[derive(Debug, Default)]
pub struct MisreadIndex {
    by_key: HashMap<Vec<u8>, Vec<u32>>,
    by_deletion: HashMap<Vec<u8>, Vec<u32>>,
}

impl MisreadIndex {
    /// `plates` are normalized plates; an entry's id is its position.
    pub fn new<'a>(plates: impl IntoIterator<Item = &'a str>) -> Self {
        let mut index = Self::default();
        for (id, plate) in plates.into_iter().enumerate() {
            let Ok(id) = u32::try_from(id) else { break };
            let key = confusion_key(plate);
            for deleted in deletions(&key) {
                index.by_deletion.entry(deleted).or_default().push(id);
            }
            index.by_key.entry(key).or_default().push(id);
        }
        index
    }

    /// Ids of entries that may be misreads of `read_plate` (to be confirmed with
    /// [`misread_difference`]), sorted, without repeats.
    pub fn candidates(&self, read_plate: &str, out: &mut Vec<u32>) {
        out.clear();
        let key = confusion_key(read_plate);
        // Same length: look-alike substitutions only.
        if let Some(ids) = self.by_key.get(&key) {
            out.extend(ids);
        }
        // The read dropped a character: the read's key is one of the entry's deletions.
        if let Some(ids) = self.by_deletion.get(&key) {
            out.extend(ids);
        }
        // The read added a character: one of the read's deletions is the entry's key.
        for deleted in deletions(&key) {
            if let Some(ids) = self.by_key.get(&deleted) {
                out.extend(ids);
            }
        }
        out.sort_unstable();
        out.dedup();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(entries: &[&str], read: &str) -> Vec<String> {
        let index = MisreadIndex::new(entries.iter().copied());
        let mut ids = Vec::new();
        index.candidates(read, &mut ids);
        ids.iter()
            .map(|id| entries[*id as usize])
            .filter(|entry| misread_difference(entry, read).is_some())
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn look_alike_substitutions_drops_and_additions_are_found() {
        let entries = ["ABC1234", "XYZ789", "8OB2345"];
        assert_eq!(found(&entries, "ABC1234"), vec!["ABC1234"]);
        assert_eq!(found(&entries, "A8C1234"), vec!["ABC1234"], "B read as 8");
        assert_eq!(found(&entries, "ABC234"), vec!["ABC1234"], "dropped 1");
        assert_eq!(found(&entries, "ABC12344"), vec!["ABC1234"], "added 4");
        assert_eq!(
            found(&entries, "A8C234"),
            vec!["ABC1234"],
            "look-alike and a drop"
        );
        assert!(
            found(&entries, "B0B2345").is_empty(),
            "8 read as B and O as 0: two substitutions"
        );
    }

    #[test]
    fn other_differences_are_not_misreads() {
        let entries = ["ABC1234"];
        assert!(
            found(&entries, "ABX1234").is_empty(),
            "C and X do not look alike"
        );
        assert!(found(&entries, "A8C1Z34").is_empty(), "two substitutions");
        assert!(found(&entries, "AB1234Q9").is_empty());
        assert!(found(&entries, "BC12").is_empty());
    }

    #[test]
    fn the_difference_is_explained_for_the_officer() {
        let difference = misread_difference("ABC1234", "A8C234").unwrap();
        assert_eq!(difference.substitution, Some((1, 'B', '8')));
        assert_eq!(difference.dropped, Some((3, '1')));
        assert_eq!(
            difference.explain(),
            "read '8' for 'B' at position 2, dropped '1' at position 4"
        );
    }
}
