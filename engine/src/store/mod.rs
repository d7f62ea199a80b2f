//! The live hotlist store: every list as an immutable indexed snapshot plus a small overlay of
//! single upserts and deletes, all published through one [`ArcSwap`] so that each read is matched
//! against one consistent state of every list.
//!
//! - Matching ([`Matcher::match_read`]) takes no lock: one atomic load of the current state, then
//!   hash probes into flat arrays (`index.rs`).
//! - [`HotlistStore::replace_list`] indexes the new list off to the side and swaps it in whole:
//!   a read sees the old list or the new one, never a half-loaded or empty one.
//! - [`HotlistStore::upsert`] and [`HotlistStore::delete`] re-index only the list's overlay
//!   (at most [`overlay_limit`] entries, plus tombstones hiding replaced or deleted snapshot
//!   entries) and publish it before returning: every read matched after the call sees it. When
//!   the overlay outgrows its limit it is folded into a new snapshot.
//! - Expired entries stop matching by themselves (`expires_at` is checked at match time).

mod bolo;
mod compact;
mod index;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;

use crate::alert_policy::ListPolicy;
use crate::description::{
    normalize_vector, AttributeAgreement, AttributeMatch, CanonicalAttributes,
    PATTERN_CONTRADICTED_FACTOR,
};
use crate::hotlist::HotlistEntry;
use crate::matcher::{
    CharacterDifference, DifferenceKind, JurisdictionAgreement, Match, MatchKind, Matcher,
};
use crate::misread::misread_difference;
use crate::read::{PlateRead, Timestamp};

use bolo::ReadAttributeKeys;
pub use index::MAX_UNINDEXED_PATTERNS;
use index::{IndexedList, PassedProbe, PositionSet, ReadKeys};

/// Which kinds of match the store looks for (per list, the list policy can turn kinds off too).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MatchModes {
    pub misreads: bool,
    pub partials: bool,
}

impl MatchModes {
    pub const EXACT_ONLY: Self = Self {
        misreads: false,
        partials: false,
    };
    pub const EXACT_AND_MISREAD: Self = Self {
        misreads: true,
        partials: false,
    };
    pub const FULL: Self = Self {
        misreads: true,
        partials: true,
    };
}

impl Default for MatchModes {
    fn default() -> Self {
        Self::FULL
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("entry {id:?} belongs to list {entry_list:?}, not {list:?}")]
    WrongList {
        list: String,
        entry_list: String,
        id: String,
    },
}

/// What a bulk replace did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplaceReport {
    pub entries: usize,
    /// Entries refused by the index (ids): patterns beyond [`MAX_UNINDEXED_PATTERNS`].
    pub refused: Vec<String>,
}

/// One list as matching sees it.
#[derive(Debug)]
struct ListState {
    policy: Arc<ListPolicy>,
    snapshot: Arc<IndexedList>,
    /// Entries upserted since the snapshot was built.
    overlay: Arc<IndexedList>,
    /// Snapshot positions replaced by an overlay entry or deleted.
    tombstones: Arc<PositionSet>,
}

impl ListState {
    fn empty(policy: Arc<ListPolicy>) -> Self {
        Self {
            policy,
            snapshot: Arc::default(),
            overlay: Arc::default(),
            tombstones: Arc::default(),
        }
    }

    fn live_len(&self) -> usize {
        self.snapshot.len() - self.tombstones.len() + self.overlay.len()
    }
}

/// Everything matching reads: swapped whole on every change.
#[derive(Debug, Default)]
struct StoreState {
    lists: Vec<Arc<ListState>>,
}

impl StoreState {
    fn position(&self, list: &str) -> Option<usize> {
        self.lists
            .iter()
            .position(|state| state.policy.name == list)
    }
}

/// Overlay size beyond which upserts fold the overlay into a new snapshot: re-indexing the
/// overlay on each upsert costs O(overlay), folding costs O(list), so the limit grows with the list.
pub fn overlay_limit(snapshot_len: usize) -> usize {
    (snapshot_len / 64).clamp(256, 8192)
}

/// The live store; share it as `Arc<HotlistStore>` between the pipelines (as their [`Matcher`])
/// and whatever feeds it lists and updates.
#[derive(Debug)]
pub struct HotlistStore {
    state: ArcSwap<StoreState>,
    /// Serializes writers; readers never take it.
    writer: Mutex<()>,
    modes: MatchModes,
    /// BOLOs with reference vectors added or changed since [`Matcher::take_new_appearance_bolos`].
    new_appearance_bolos: Mutex<AppearanceBolos>,
    has_new_appearance_bolos: std::sync::atomic::AtomicBool,
}

impl Default for HotlistStore {
    fn default() -> Self {
        Self::new(MatchModes::FULL)
    }
}

fn jurisdiction_note(
    agreement: JurisdictionAgreement,
    entry: &HotlistEntry,
    read: &PlateRead,
) -> String {
    match agreement {
        JurisdictionAgreement::Agrees => "jurisdiction agrees".to_owned(),
        JurisdictionAgreement::EntryAny => "the entry names no jurisdiction".to_owned(),
        JurisdictionAgreement::ReadUnknown => format!(
            "the reader could not tell the jurisdiction, the entry is {}: verify the state",
            entry.jurisdiction.as_deref().unwrap_or("unknown")
        ),
        JurisdictionAgreement::Differs => format!(
            "the entry is from {}, the reader saw {}: probably another vehicle, confirm the \
             state on the image before acting",
            entry.jurisdiction.as_deref().unwrap_or("unknown"),
            read.jurisdiction.as_deref().unwrap_or("unknown")
        ),
    }
}

/// How a candidate entry's jurisdiction agrees with the read's, if the entry may match at all:
/// `None` when it was deleted or has expired. A differing state is returned too: an exact plate
/// from another state is a hit (scored low, marked, and not paged; see
/// [`crate::matcher::EXACT_OTHER_STATE_FACTOR`]), because the reader may have misread the state;
/// but the same characters from another state are usually another vehicle (the Aurora, CO stop
/// of 2020 was a Colorado SUV hit on a Montana motorcycle's plate number).
fn live_agreement(
    indexed: &IndexedList,
    tombstones: Option<&PositionSet>,
    position: u32,
    read: &PlateRead,
    now: Timestamp,
) -> Option<JurisdictionAgreement> {
    if tombstones.is_some_and(|dead| dead.contains(&position))
        || indexed.entries.is_expired_at(position, now)
    {
        return None;
    }
    let agreement = JurisdictionAgreement::between(
        read.jurisdiction.as_deref(),
        indexed.entries.jurisdiction(position),
    );
    Some(agreement)
}

pub(crate) fn jurisdiction_factor(agreement: JurisdictionAgreement) -> f32 {
    match agreement {
        JurisdictionAgreement::Agrees => 1.0,
        JurisdictionAgreement::EntryAny => 0.95,
        JurisdictionAgreement::ReadUnknown => 0.8,
        JurisdictionAgreement::Differs => crate::matcher::EXACT_OTHER_STATE_FACTOR,
    }
}

/// The read being matched, with its lookup keys and the time that decides expiry.
#[derive(Clone, Copy)]
struct ReadToMatch<'a> {
    read: &'a PlateRead,
    keys: &'a ReadKeys<'a>,
    now: Timestamp,
    /// Present when some list holds BOLOs.
    attribute_keys: Option<&'a ReadAttributeKeys>,
    /// The read's embedding scaled to unit length, when it has one and some list holds BOLOs.
    unit_embedding: Option<&'a [f32]>,
}

/// A BOLO the read may match, gathered from the pattern, attribute and appearance indexes before
/// it is scored once.
struct BoloCandidate {
    position: u32,
    /// The partial-plate pattern fits: (plate score, what the unknowns stood for, explanation).
    plate: Option<(f32, Vec<CharacterDifference>, String)>,
    appearance: Option<f32>,
}

/// Scratch buffers reused across the lists of one read.
struct Scratch {
    candidates: Vec<u32>,
    bolos: Vec<BoloCandidate>,
    appearance: Vec<(u32, f32)>,
    unit_embedding: Vec<f32>,
    batch: BatchCandidates,
}

/// The snapshot candidates of every read of a batch for every list, found before any read of the
/// batch is matched (see [`IndexedList::batch_plate_candidates`]), so that a read with none is
/// not matched at all.
struct BatchCandidates {
    passed: Vec<PassedProbe>,
    positions: Vec<u32>,
    /// List `l`, read `r` of `n`: `positions[bounds[l * n + r]..bounds[l * n + r + 1]]`.
    bounds: Vec<usize>,
    /// Indexes into the snapshot's partial-plate patterns, laid out like `positions`; none for a
    /// list whose patterns are not matched.
    patterns: Vec<u32>,
    pattern_bounds: Vec<usize>,
}

/// A read's candidates in one list's snapshot, found for its whole batch.
#[derive(Clone, Copy)]
struct Found<'a> {
    plates: &'a [u32],
    patterns: &'a [u32],
}

impl BatchCandidates {
    const fn new() -> Self {
        Self {
            passed: Vec::new(),
            positions: Vec::new(),
            bounds: Vec::new(),
            patterns: Vec::new(),
            pattern_bounds: Vec::new(),
        }
    }

    fn of(&self, list: usize, read: usize, reads: usize) -> Found<'_> {
        let at = list * reads + read;
        Found {
            plates: &self.positions[self.bounds[at]..self.bounds[at + 1]],
            patterns: &self.patterns[self.pattern_bounds[at]..self.pattern_bounds[at + 1]],
        }
    }
}

thread_local! {
    /// Candidate positions, reused from read to read on each matching thread.
    static SCRATCH: std::cell::RefCell<Scratch> = const {
        std::cell::RefCell::new(Scratch {
            candidates: Vec::new(),
            bolos: Vec::new(),
            appearance: Vec::new(),
            unit_embedding: Vec::new(),
            batch: BatchCandidates::new(),
        })
    };
}

/// BOLOs with reference vectors waiting for a search of recent reads.
type AppearanceBolos = Vec<(Arc<HotlistEntry>, Option<Arc<ListPolicy>>)>;

impl HotlistStore {
    pub fn new(modes: MatchModes) -> Self {
        Self {
            state: ArcSwap::from_pointee(StoreState::default()),
            writer: Mutex::new(()),
            modes,
            new_appearance_bolos: Mutex::new(Vec::new()),
            has_new_appearance_bolos: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Queues BOLOs whose reference vectors are new (not held with the same description before)
    /// for a search of recent reads.
    fn note_appearance_bolos<'a>(
        &self,
        before: Option<&ListState>,
        entries: impl Iterator<Item = &'a Arc<HotlistEntry>>,
    ) {
        let policy = before.map(|state| Arc::clone(&state.policy));
        let mut fresh = Vec::new();
        let mut positions = Vec::new();
        for entry in entries {
            let Some(description) = entry.vehicle.as_deref() else {
                continue;
            };
            if description.reference_vectors.is_empty() {
                continue;
            }
            let held_before = before.is_some_and(|state| {
                let same = |candidate: &Arc<HotlistEntry>| {
                    candidate.id == entry.id && candidate.vehicle == entry.vehicle
                };
                if state.overlay.whole_entries().any(same) {
                    return true;
                }
                state.snapshot.positions_of(&entry.id, &mut positions);
                positions.iter().any(|&position| {
                    !state.tombstones.contains(&position) && same(&state.snapshot.entry(position))
                })
            });
            if !held_before {
                fresh.push((Arc::clone(entry), policy.clone()));
            }
        }
        if fresh.is_empty() {
            return;
        }
        self.new_appearance_bolos
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .extend(fresh);
        self.has_new_appearance_bolos
            .store(true, std::sync::atomic::Ordering::Release);
    }

    /// A store holding `entries`, each list under the default policy or the one given for it.
    pub fn from_entries(
        modes: MatchModes,
        policies: &[ListPolicy],
        entries: impl IntoIterator<Item = Arc<HotlistEntry>>,
    ) -> Self {
        let store = Self::new(modes);
        for policy in policies {
            store.set_policy(policy.clone());
        }
        let mut by_list: HashMap<String, Vec<Arc<HotlistEntry>>> = HashMap::new();
        for entry in entries {
            by_list.entry(entry.list.clone()).or_default().push(entry);
        }
        for (list, entries) in by_list {
            // Grouped by their own list name above, so no entry can be on the wrong list.
            let _ = store.replace_list(&list, entries);
        }
        store
    }

    pub fn modes(&self) -> MatchModes {
        self.modes
    }

    fn lock_writer(&self) -> std::sync::MutexGuard<'_, ()> {
        self.writer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Publishes `list_state` for its list (adding the list when new).
    fn publish(&self, list_state: ListState) {
        let current = self.state.load();
        let mut lists = current.lists.clone();
        let list_state = Arc::new(list_state);
        match current.position(&list_state.policy.name) {
            Some(position) => lists[position] = list_state,
            None => lists.push(list_state),
        }
        self.state.store(Arc::new(StoreState { lists }));
    }

    fn current_list(&self, list: &str) -> Option<Arc<ListState>> {
        let current = self.state.load();
        current
            .position(list)
            .map(|position| Arc::clone(&current.lists[position]))
    }

    /// Sets a list's policy (creating the list, empty, when it does not exist yet).
    pub fn set_policy(&self, policy: ListPolicy) {
        let _writer = self.lock_writer();
        let policy = Arc::new(policy);
        let state = match self.current_list(&policy.name) {
            Some(existing) => ListState {
                policy,
                snapshot: Arc::clone(&existing.snapshot),
                overlay: Arc::clone(&existing.overlay),
                tombstones: Arc::clone(&existing.tombstones),
            },
            None => ListState::empty(policy),
        };
        self.publish(state);
    }

    pub fn policy(&self, list: &str) -> Option<Arc<ListPolicy>> {
        self.current_list(list)
            .map(|state| Arc::clone(&state.policy))
    }

    /// Replaces a whole list atomically. Indexing happens before the writer lock is taken, so a
    /// large reload holds up neither matching nor other lists' updates; upserts to this list that
    /// land during the reload are superseded by it.
    pub fn replace_list(
        &self,
        list: &str,
        entries: Vec<Arc<HotlistEntry>>,
    ) -> Result<ReplaceReport, StoreError> {
        if let Some(stray) = entries.iter().find(|entry| entry.list != list) {
            return Err(StoreError::WrongList {
                list: list.to_owned(),
                entry_list: stray.list.clone(),
                id: stray.id.clone(),
            });
        }
        let (snapshot, refused) = IndexedList::build(entries);
        let report = ReplaceReport {
            entries: snapshot.len(),
            refused: refused.iter().map(|entry| entry.id.clone()).collect(),
        };
        let _writer = self.lock_writer();
        let before = self.current_list(list);
        // Only entries with a vehicle description can carry reference vectors.
        self.note_appearance_bolos(before.as_deref(), snapshot.whole_entries());
        let policy = before
            .map(|state| Arc::clone(&state.policy))
            .unwrap_or_else(|| Arc::new(ListPolicy::named(list)));
        self.publish(ListState {
            policy,
            snapshot: Arc::new(snapshot),
            overlay: Arc::default(),
            tombstones: Arc::default(),
        });
        Ok(report)
    }

    /// Removes a list and its policy.
    pub fn remove_list(&self, list: &str) -> bool {
        let _writer = self.lock_writer();
        let current = self.state.load();
        let Some(position) = current.position(list) else {
            return false;
        };
        let mut lists = current.lists.clone();
        lists.remove(position);
        self.state.store(Arc::new(StoreState { lists }));
        true
    }

    /// Adds or replaces (by `entry.id`) one entry of `entry.list`; visible to every read matched
    /// after this returns.
    pub fn upsert(&self, entry: Arc<HotlistEntry>) {
        self.apply(&entry.list.clone(), vec![Update::Upsert(entry)]);
    }

    /// Deletes the entries of `list` with this id; `false` when there were none.
    pub fn delete(&self, list: &str, id: &str) -> bool {
        self.apply(list, vec![Update::Delete(id.to_owned())]) > 0
    }

    /// Applies several updates to one list and publishes them together (one re-index), as a
    /// connector draining a batch of upsert messages should. Upserts whose entry names another
    /// list are skipped. Returns how many updates changed something.
    pub fn apply(&self, list: &str, updates: Vec<Update>) -> usize {
        let _writer = self.lock_writer();
        let existing = self
            .current_list(list)
            .unwrap_or_else(|| Arc::new(ListState::empty(Arc::new(ListPolicy::named(list)))));
        let upserted: Vec<Arc<HotlistEntry>> = updates
            .iter()
            .filter_map(|update| match update {
                Update::Upsert(entry) if entry.list == list => Some(Arc::clone(entry)),
                _ => None,
            })
            .collect();
        self.note_appearance_bolos(Some(existing.as_ref()), upserted.iter());
        let mut tombstones = (*existing.tombstones).clone();
        let mut overlay: Vec<Arc<HotlistEntry>> = existing.overlay.all_entries().collect();
        let mut positions = Vec::new();
        let mut changed = 0;
        for update in updates {
            let id = match &update {
                Update::Upsert(entry) if entry.list != list => continue,
                Update::Upsert(entry) => entry.id.clone(),
                Update::Delete(id) => id.clone(),
            };
            let before = overlay.len() + tombstones.len();
            overlay.retain(|entry| entry.id != id);
            existing.snapshot.positions_of(&id, &mut positions);
            tombstones.extend(positions.iter().copied());
            let removed_something = overlay.len() + tombstones.len() != before;
            match update {
                Update::Upsert(entry) => {
                    overlay.push(entry);
                    changed += 1;
                }
                Update::Delete(_) => changed += usize::from(removed_something),
            }
        }
        let state = if overlay.len().max(tombstones.len()) > overlay_limit(existing.snapshot.len())
        {
            // Fold: one new snapshot of everything live.
            let live: Vec<Arc<HotlistEntry>> = (0..existing.snapshot.len() as u32)
                .filter(|position| !tombstones.contains(position))
                .map(|position| existing.snapshot.entry(position))
                .chain(overlay)
                .collect();
            ListState {
                policy: Arc::clone(&existing.policy),
                snapshot: Arc::new(IndexedList::build(live).0),
                overlay: Arc::default(),
                tombstones: Arc::default(),
            }
        } else {
            ListState {
                policy: Arc::clone(&existing.policy),
                snapshot: Arc::clone(&existing.snapshot),
                overlay: Arc::new(IndexedList::build(overlay).0),
                tombstones: Arc::new(tombstones),
            }
        };
        self.publish(state);
        changed
    }

    /// Names of the lists held.
    pub fn list_names(&self) -> Vec<String> {
        self.state
            .load()
            .lists
            .iter()
            .map(|state| state.policy.name.clone())
            .collect()
    }

    /// Live entries of one list (expired ones included until they are replaced).
    pub fn list_len(&self, list: &str) -> usize {
        self.current_list(list).map_or(0, |state| state.live_len())
    }

    /// Bytes the store holds for its lists: entries, indexes, overlays and tombstones.
    pub fn heap_bytes(&self) -> usize {
        self.state
            .load()
            .lists
            .iter()
            .map(|state| {
                state.snapshot.heap_bytes()
                    + state.overlay.heap_bytes()
                    + state.tombstones.capacity() * 8
            })
            .sum()
    }

    /// Bytes of index (not counting the entries themselves) across all lists.
    pub fn index_heap_bytes(&self) -> usize {
        self.state
            .load()
            .lists
            .iter()
            .map(|state| {
                state.snapshot.index_heap_bytes()
                    + state.overlay.index_heap_bytes()
                    + state.tombstones.capacity() * 8
            })
            .sum()
    }

    /// Whether the read's partial-plate patterns are looked for in `list`'s `indexed` entries.
    fn matches_patterns(&self, list: &ListState, indexed: &IndexedList) -> bool {
        self.modes.partials && list.policy.partials && indexed.has_patterns()
    }

    /// `found`: the read's candidates in `indexed` when they were found for its whole batch.
    #[allow(clippy::too_many_arguments)]
    fn match_list(
        &self,
        list: &ListState,
        indexed: &IndexedList,
        tombstones: Option<&PositionSet>,
        subject: &ReadToMatch<'_>,
        found: Option<Found<'_>>,
        scratch: &mut Scratch,
        matches: &mut Vec<Match>,
    ) {
        let ReadToMatch {
            read, keys, now, ..
        } = *subject;
        if indexed.len() == 0 {
            return;
        }
        scratch.bolos.clear();
        let misreads = self.modes.misreads && list.policy.misreads;
        let candidates = &mut scratch.candidates;
        candidates.clear();
        match found {
            Some(found) => candidates.extend_from_slice(found.plates),
            None => indexed.plate_candidates(keys, misreads, candidates),
        }
        if candidates.len() > 1 {
            candidates.sort_unstable();
            candidates.dedup();
        }
        indexed.touch_candidates(candidates);
        for &position in candidates.iter() {
            // The packed plate decides most candidates without touching the entry.
            let exact = indexed.plates[position as usize] == keys.packed_plate;
            if !exact && (!misreads || indexed.entries.misreads_off(position)) {
                continue;
            }
            let Some(agreement) = live_agreement(indexed, tombstones, position, read, now) else {
                continue;
            };
            // A misread from another state is two doubts at once: not a hit.
            if !exact && agreement == JurisdictionAgreement::Differs {
                continue;
            }
            let factor = jurisdiction_factor(agreement);
            let hit = if exact {
                let entry = indexed.entry(position);
                let explanation = match agreement {
                    JurisdictionAgreement::Agrees => "plate and jurisdiction agree".to_owned(),
                    _ => format!(
                        "plate agrees; {}",
                        jurisdiction_note(agreement, &entry, read)
                    ),
                };
                Match {
                    entry,
                    kind: MatchKind::Exact,
                    score: factor,
                    jurisdiction: agreement,
                    explanation,
                    differences: Vec::new(),
                    policy: Some(Arc::clone(&list.policy)),
                    attributes: Vec::new(),
                    appearance_similarity: None,
                }
            } else {
                let entry_plate = index::unpack(indexed.plates[position as usize]);
                let Some(difference) = misread_difference(entry_plate.as_str(), &read.plate_norm)
                else {
                    continue;
                };
                let entry = indexed.entry(position);
                let mut differences = Vec::new();
                if let Some((position, entry_char, read_char)) = difference.substitution {
                    differences.push(CharacterDifference {
                        kind: DifferenceKind::LookAlike,
                        position: (position + 1) as u8,
                        entry: Some(entry_char.to_string()),
                        read: Some(read_char.to_string()),
                    });
                }
                if let Some((position, character)) = difference.dropped {
                    differences.push(CharacterDifference {
                        kind: DifferenceKind::Dropped,
                        position: (position + 1) as u8,
                        entry: Some(character.to_string()),
                        read: None,
                    });
                }
                if let Some((position, character)) = difference.added {
                    differences.push(CharacterDifference {
                        kind: DifferenceKind::Added,
                        position: (position + 1) as u8,
                        entry: None,
                        read: Some(character.to_string()),
                    });
                }
                let base = match differences.len() {
                    1 if difference.substitution.is_some() => 0.75,
                    1 => 0.65,
                    _ => 0.55,
                };
                let explanation = format!(
                    "possible misread of {}: {}; {}; confirm the plate on the image before acting",
                    entry.plate_norm,
                    difference.explain(),
                    jurisdiction_note(agreement, &entry, read)
                );
                Match {
                    entry,
                    kind: MatchKind::Misread,
                    score: base * factor,
                    jurisdiction: agreement,
                    explanation,
                    differences,
                    policy: Some(Arc::clone(&list.policy)),
                    attributes: Vec::new(),
                    appearance_similarity: None,
                }
            };
            matches.push(hit);
        }

        if self.matches_patterns(list, indexed) {
            let found = found.map(|found| found.patterns);
            Self::match_patterns(list, indexed, tombstones, subject, found, scratch, matches);
        }
        if !indexed.bolos.is_empty() {
            Self::match_bolos(list, indexed, tombstones, subject, scratch, matches);
        }
    }

    fn match_patterns(
        list: &ListState,
        indexed: &IndexedList,
        tombstones: Option<&PositionSet>,
        subject: &ReadToMatch<'_>,
        found: Option<&[u32]>,
        scratch: &mut Scratch,
        matches: &mut Vec<Match>,
    ) {
        let ReadToMatch {
            read, keys, now, ..
        } = *subject;
        let candidates = &mut scratch.candidates;
        candidates.clear();
        match found {
            Some(found) => candidates.extend_from_slice(found),
            None => indexed.pattern_candidates(keys, candidates),
        }
        if candidates.len() > 1 {
            candidates.sort_unstable();
            candidates.dedup();
        }
        for &pattern_index in candidates.iter() {
            let (position, pattern) = &indexed.patterns[pattern_index as usize];
            let position = *position;
            if !pattern.matches(keys.plate) {
                continue;
            }
            let Some(filled) = pattern.match_plate(keys.plate) else {
                continue;
            };
            let Some(agreement) = live_agreement(indexed, tombstones, position, read, now) else {
                continue;
            };
            if agreement == JurisdictionAgreement::Differs {
                continue;
            }
            let entry = indexed.entry(position);
            let differences: Vec<CharacterDifference> = filled
                .iter()
                .map(|(position, characters)| CharacterDifference {
                    kind: DifferenceKind::Unknown,
                    position: (position + 1) as u8,
                    entry: None,
                    read: Some(String::from_utf8_lossy(characters).into_owned()),
                })
                .collect();
            let unknowns = differences
                .iter()
                .map(|difference| {
                    format!(
                        "{:?} at position {}",
                        difference.read.as_deref().unwrap_or(""),
                        difference.position
                    )
                })
                .collect::<Vec<_>>()
                .join(", ");
            let factor = jurisdiction_factor(agreement);
            let known_share = pattern.known_count() as f32 / keys.plate.len().max(1) as f32;
            let plate_score = (0.3 + 0.5 * known_share.min(1.0)) * factor;
            let unknowns = if unknowns.is_empty() {
                "none".to_owned()
            } else {
                unknowns
            };
            if entry.is_bolo() {
                // Scored with its description in `match_bolos`.
                scratch.bolos.push(BoloCandidate {
                    position,
                    plate: Some((
                        plate_score,
                        differences,
                        format!("fits partial plate {pattern} (unknown: {unknowns})"),
                    )),
                    appearance: None,
                });
                continue;
            }
            let explanation = format!(
                "fits partial plate {pattern} (unknown: {unknowns}); {}; a partial plate fits many vehicles: confirm the vehicle description",
                jurisdiction_note(agreement, &entry, read)
            );
            matches.push(Match {
                entry,
                kind: MatchKind::Partial,
                score: plate_score,
                jurisdiction: agreement,
                explanation,
                differences,
                policy: Some(Arc::clone(&list.policy)),
                attributes: Vec::new(),
                appearance_similarity: None,
            });
        }
    }

    /// Scores the BOLOs the read may match: those whose pattern fits (gathered by
    /// `match_patterns`), whose indexed attributes equal the read's, and whose reference vectors
    /// resemble the read's embedding. One match per BOLO at most.
    fn match_bolos(
        list: &ListState,
        indexed: &IndexedList,
        tombstones: Option<&PositionSet>,
        subject: &ReadToMatch<'_>,
        scratch: &mut Scratch,
        matches: &mut Vec<Match>,
    ) {
        let ReadToMatch { read, now, .. } = *subject;
        let policy = &list.policy;
        if let Some(unit_embedding) = subject.unit_embedding {
            scratch.appearance.clear();
            indexed.bolos.appearance_hits(
                unit_embedding,
                policy.appearance_threshold(),
                &mut scratch.appearance,
            );
            for &(position, similarity) in &scratch.appearance {
                match scratch
                    .bolos
                    .iter_mut()
                    .find(|candidate| candidate.position == position)
                {
                    Some(candidate) => candidate.appearance = Some(similarity),
                    None => scratch.bolos.push(BoloCandidate {
                        position,
                        plate: None,
                        appearance: Some(similarity),
                    }),
                }
            }
        }
        if let Some(attribute_keys) = subject.attribute_keys {
            scratch.candidates.clear();
            indexed
                .bolos
                .attribute_candidates(attribute_keys, &mut scratch.candidates);
            for &position in &scratch.candidates {
                if !scratch
                    .bolos
                    .iter()
                    .any(|candidate| candidate.position == position)
                {
                    scratch.bolos.push(BoloCandidate {
                        position,
                        plate: None,
                        appearance: None,
                    });
                }
            }
        }
        for candidate in scratch.bolos.drain(..) {
            if tombstones.is_some_and(|dead| dead.contains(&candidate.position)) {
                continue;
            }
            let entry = indexed.entry(candidate.position);
            let Some(description) = entry.vehicle.as_deref() else {
                continue;
            };
            if entry.is_expired_at(now) || !description.applies_to(read) {
                continue;
            }
            let agreement = JurisdictionAgreement::between(
                read.jurisdiction.as_deref(),
                entry.jurisdiction.as_deref(),
            );
            if agreement == JurisdictionAgreement::Differs {
                continue;
            }
            let computed;
            let canonical = match subject.attribute_keys {
                Some(keys) => &keys.canonical,
                None => {
                    computed = CanonicalAttributes::of(read);
                    &computed
                }
            };
            // Scored first without writing the evidence down: most candidates fall short.
            let described = if description.has_attributes() {
                description.attribute_score(read, canonical)
            } else {
                Some((0.0, false))
            };
            let (attribute_score, attributes_agree) = described.unwrap_or((0.0, false));
            let factor = jurisdiction_factor(agreement);
            let plate_fits = candidate.plate.is_some();
            let (mut score, mut kind, differences, plate_note) = match candidate.plate {
                Some((plate_score, differences, note)) => {
                    let score = if described.is_none() {
                        plate_score * PATTERN_CONTRADICTED_FACTOR
                    } else {
                        1.0 - (1.0 - plate_score) * (1.0 - attribute_score * factor)
                    };
                    (score, MatchKind::Partial, differences, Some(note))
                }
                None if attributes_agree => {
                    let score = if entry.partial {
                        attribute_score * PATTERN_CONTRADICTED_FACTOR
                    } else {
                        attribute_score
                    };
                    let note = entry.partial.then(|| {
                        format!(
                            "the plate does not fit the BOLO's partial plate {}",
                            entry.plate_norm
                        )
                    });
                    (score * factor, MatchKind::Attribute, Vec::new(), note)
                }
                None => (0.0, MatchKind::Attribute, Vec::new(), None),
            };
            let min_score = description
                .min_score
                .unwrap_or_else(|| policy.min_attribute_score());
            if let Some(similarity) = candidate.appearance {
                score = 1.0 - (1.0 - score) * (1.0 - similarity.clamp(0.0, 1.0) * factor);
                kind = MatchKind::Appearance;
                // A vehicle the description contradicts (a sure other make) only looks like the
                // picture: it weighs half, as a partial plate the description contradicts, and
                // must still reach the threshold.
                if described.is_none() && !plate_fits {
                    score *= PATTERN_CONTRADICTED_FACTOR;
                    if score < min_score {
                        continue;
                    }
                }
            } else if score < min_score || score <= 0.0 {
                continue;
            }
            let attributes = match described {
                Some(_) if description.has_attributes() => description
                    .score_canonical_attributes(read, canonical)
                    .map(|(_, attributes)| attributes)
                    .unwrap_or_default(),
                _ => Vec::new(),
            };
            let mut notes = Vec::new();
            if let Some(similarity) = candidate.appearance {
                notes.push(format!(
                    "appearance resembles the BOLO's reference picture (cosine {similarity:.3})"
                ));
            }
            if let Some(note) = plate_note {
                notes.push(note);
            }
            if described.is_none() {
                notes.push("the vehicle description does not fit".to_owned());
            } else if !attributes.is_empty() {
                notes.push(format!(
                    "vehicle description: {}",
                    describe_attributes(&attributes)
                ));
            }
            notes.push(jurisdiction_note(agreement, &entry, read));
            notes.push(
                "a description fits many vehicles: confirm the vehicle and its plate before acting"
                    .to_owned(),
            );
            matches.push(Match {
                entry: Arc::clone(&entry),
                kind,
                score: score.clamp(0.0, 1.0),
                jurisdiction: agreement,
                explanation: notes.join("; "),
                differences,
                policy: Some(Arc::clone(policy)),
                attributes,
                appearance_similarity: candidate.appearance,
            });
        }
    }
}

/// `make honda agrees (0.91), color gray ~ silver (0.55), model civic: not read`.
fn describe_attributes(attributes: &[AttributeMatch]) -> String {
    attributes
        .iter()
        .map(|attribute| {
            let confidence = attribute
                .read_confidence
                .map(|confidence| format!(" ({confidence:.2})"))
                .unwrap_or_default();
            match attribute.agreement {
                AttributeAgreement::Agrees => format!(
                    "{} {} agrees{confidence}",
                    attribute.attribute.as_str(),
                    attribute.entry
                ),
                AttributeAgreement::Similar => format!(
                    "{} read {} for {}{confidence}",
                    attribute.attribute.as_str(),
                    attribute.read.as_deref().unwrap_or("?"),
                    attribute.entry
                ),
                AttributeAgreement::ReadUnknown => format!(
                    "{} {}: not read",
                    attribute.attribute.as_str(),
                    attribute.entry
                ),
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// One change to a list.
#[derive(Debug, Clone)]
pub enum Update {
    Upsert(Arc<HotlistEntry>),
    Delete(String),
}

/// Reads matched together by [`HotlistStore::match_batch`]: enough that their index probes fill
/// the memory system's queue, few enough that what they load stays in the L1/L2 caches.
const BATCH_READS: usize = 32;

fn by_urgency(a: &Match, b: &Match) -> std::cmp::Ordering {
    // Most urgent first, then the likeliest: the order alerts are raised in.
    a.entry
        .priority_under(a.policy.as_deref())
        .cmp(&b.entry.priority_under(b.policy.as_deref()))
        .then(b.score.total_cmp(&a.score))
}

impl HotlistStore {
    fn any_bolos(state: &StoreState) -> bool {
        state
            .lists
            .iter()
            .any(|list| !list.snapshot.bolos.is_empty() || !list.overlay.bolos.is_empty())
    }

    /// Matches one read whose plate keys are computed; its matches end up most urgent first.
    #[allow(clippy::too_many_arguments)]
    fn match_keys(
        &self,
        state: &StoreState,
        read: &PlateRead,
        keys: &ReadKeys<'_>,
        now: Timestamp,
        any_bolos: bool,
        found: Option<(&BatchCandidates, usize, usize)>,
        scratch: &mut Scratch,
        matches: &mut Vec<Match>,
    ) {
        let attribute_keys = any_bolos.then(|| ReadAttributeKeys::new(read));
        let first_new = matches.len();
        let mut unit_embedding = Vec::new();
        if let (true, Some(embedding)) = (any_bolos, &read.embedding) {
            unit_embedding = std::mem::take(&mut scratch.unit_embedding);
            unit_embedding.clear();
            unit_embedding.extend_from_slice(embedding);
            if !normalize_vector(&mut unit_embedding) {
                unit_embedding.clear();
            }
        }
        let subject = ReadToMatch {
            read,
            keys,
            now,
            attribute_keys: attribute_keys.as_ref(),
            unit_embedding: (!unit_embedding.is_empty()).then_some(unit_embedding.as_slice()),
        };
        for (index, list) in state.lists.iter().enumerate() {
            let tombstones = (!list.tombstones.is_empty()).then_some(&*list.tombstones);
            let in_snapshot = found.map(|(batch, read, reads)| batch.of(index, read, reads));
            self.match_list(
                list,
                &list.snapshot,
                tombstones,
                &subject,
                in_snapshot,
                scratch,
                matches,
            );
            // Most reads meet an empty overlay: live changes are folded into the snapshot.
            if list.overlay.len() > 0 {
                self.match_list(list, &list.overlay, None, &subject, None, scratch, matches);
            }
        }
        if unit_embedding.capacity() > 0 {
            scratch.unit_embedding = unit_embedding;
        }
        if matches.len() - first_new > 1 {
            matches[first_new..].sort_by(by_urgency);
        }
    }
}

impl Matcher for HotlistStore {
    fn match_read(&self, read: &PlateRead, now: Timestamp, matches: &mut Vec<Match>) {
        let state = self.state.load();
        if state.lists.is_empty() || read.plate_norm.is_empty() {
            return;
        }
        let keys = ReadKeys::new(read, self.modes.misreads);
        let any_bolos = Self::any_bolos(&state);
        SCRATCH.with_borrow_mut(|scratch| {
            self.match_keys(&state, read, &keys, now, any_bolos, None, scratch, matches)
        });
    }

    /// Loads every read's first index slots, for a few dozen reads at a time, before matching any
    /// of them: the loads are independent, so their cache misses overlap instead of each read
    /// waiting on its own in turn. One state for the whole batch, like one for a whole read.
    fn match_batch(
        &self,
        reads: &[PlateRead],
        now: Timestamp,
        matches: &mut Vec<Match>,
        ends: &mut Vec<usize>,
    ) {
        ends.clear();
        let state = self.state.load();
        if state.lists.is_empty() {
            ends.resize(reads.len(), matches.len());
            return;
        }
        let any_bolos = Self::any_bolos(&state);
        // Only the snapshots' candidates are found for the whole batch: a read may match BOLOs
        // or overlay entries without any.
        let quiet = !any_bolos && state.lists.iter().all(|list| list.overlay.len() == 0);
        let mut keys = Vec::with_capacity(BATCH_READS.min(reads.len()));
        SCRATCH.with_borrow_mut(|scratch| {
            for chunk in reads.chunks(BATCH_READS) {
                // The plates' and states' bytes live apart from the reads: load them all before
                // keying any.
                let warmed = chunk.iter().fold(0u8, |warmed, read| {
                    let state = read.jurisdiction.as_deref().unwrap_or_default();
                    warmed
                        ^ read.plate_norm.as_bytes().first().copied().unwrap_or(0)
                        ^ state.as_bytes().first().copied().unwrap_or(0)
                });
                std::hint::black_box(warmed);
                keys.clear();
                keys.extend(
                    chunk
                        .iter()
                        .map(|read| ReadKeys::new(read, self.modes.misreads)),
                );
                let mut batch = std::mem::replace(&mut scratch.batch, BatchCandidates::new());
                batch.positions.clear();
                batch.bounds.clear();
                batch.bounds.push(0);
                batch.patterns.clear();
                batch.pattern_bounds.clear();
                batch.pattern_bounds.push(0);
                for list in &state.lists {
                    let misreads = self.modes.misreads && list.policy.misreads;
                    list.snapshot.batch_plate_candidates(
                        &keys,
                        misreads,
                        &mut batch.passed,
                        &mut batch.positions,
                        &mut batch.bounds,
                    );
                    let patterns = self.matches_patterns(list, &list.snapshot);
                    for read_keys in &keys {
                        if patterns && !read_keys.plate.is_empty() {
                            list.snapshot
                                .pattern_candidates(read_keys, &mut batch.patterns);
                        }
                        batch.pattern_bounds.push(batch.patterns.len());
                    }
                }
                for (index, (read, read_keys)) in chunk.iter().zip(&keys).enumerate() {
                    // Most reads have no candidate anywhere: nothing more to ask of them.
                    let candidates = || {
                        (0..state.lists.len()).any(|list| {
                            let found = batch.of(list, index, chunk.len());
                            !found.plates.is_empty() || !found.patterns.is_empty()
                        })
                    };
                    if !read.plate_norm.is_empty() && (!quiet || candidates()) {
                        let found = Some((&batch, index, chunk.len()));
                        self.match_keys(
                            &state, read, read_keys, now, any_bolos, found, scratch, matches,
                        );
                    }
                    ends.push(matches.len());
                }
                scratch.batch = batch;
            }
        });
    }

    fn take_new_appearance_bolos(&self) -> Vec<(Arc<HotlistEntry>, Option<Arc<ListPolicy>>)> {
        if !self
            .has_new_appearance_bolos
            .swap(false, std::sync::atomic::Ordering::AcqRel)
        {
            return Vec::new();
        }
        let taken = std::mem::take(
            &mut *self
                .new_appearance_bolos
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        );
        taken
            .into_iter()
            .map(|(entry, _)| {
                let policy = self.policy(&entry.list);
                (entry, policy)
            })
            .collect()
    }

    fn entry_count(&self) -> usize {
        self.state
            .load()
            .lists
            .iter()
            .map(|state| state.live_len())
            .sum()
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod bolo_tests;
