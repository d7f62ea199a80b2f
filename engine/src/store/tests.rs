use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::*;
use crate::alert_policy::AlertRoute;
use crate::hotlist::load_hotlist_csv;
use crate::misread::MisreadIndex;
use crate::normalize::normalize_read;
use crate::pattern::PlatePattern;
use crate::simulate::{Simulator, SimulatorConfig};

fn read(plate: &str, jurisdiction: Option<&str>) -> PlateRead {
    let mut read: PlateRead = serde_json::from_value(serde_json::json!({
        "vendor": "t", "reader_id": "r", "observed_at": "2026-11-24T17:00:00Z",
        "plate": plate, "jurisdiction": jurisdiction, "confidence": 0.9
    }))
    .unwrap();
    normalize_read(
        &mut read,
        Timestamp::parse_rfc3339("2026-11-24T17:00:01Z").unwrap(),
    )
    .unwrap();
    read
}

fn now() -> Timestamp {
    Timestamp::parse_rfc3339("2026-11-24T17:00:01Z").unwrap()
}

fn store_from_csv(modes: MatchModes, csv: &str) -> HotlistStore {
    let loaded = load_hotlist_csv("t.csv", csv.as_bytes()).unwrap();
    assert!(loaded.rejected.is_empty(), "{:?}", loaded.rejected);
    HotlistStore::from_entries(modes, &[], loaded.entries)
}

fn matches_for(store: &HotlistStore, read: &PlateRead) -> Vec<Match> {
    let mut matches = Vec::new();
    store.match_read(read, now(), &mut matches);
    matches
}

fn entry(list: &str, plate: &str, id: &str) -> Arc<HotlistEntry> {
    let mut entry = HotlistEntry::new(list, plate).unwrap();
    entry.id = id.to_owned();
    Arc::new(entry)
}

const LISTS: &str = "list,plate,jurisdiction,priority,expires_at,misreads\n\
                     stolen_vehicles,ABC1234,VA,2,,\n\
                     local_bolo,ABC-1234,,3,,\n\
                     amber_alert,5SOW750,CA,1,,\n\
                     expired,XYZ999,DC,2,2020-01-01T00:00:00Z,\n\
                     strict,8OB2345,MD,4,,false\n";

#[test]
fn exact_hits_keep_the_jurisdiction_rules_of_the_exact_matcher() {
    let store = store_from_csv(MatchModes::FULL, LISTS);
    let found = matches_for(&store, &read("abc 1234", Some("VA")));
    let lists: Vec<&str> = found.iter().map(|m| m.entry.list.as_str()).collect();
    assert_eq!(
        lists,
        vec!["stolen_vehicles", "local_bolo"],
        "priority order"
    );
    assert!(found.iter().all(|m| m.kind == MatchKind::Exact));
    assert_eq!(found[0].score, 1.0);
    assert_eq!(found[1].jurisdiction, JurisdictionAgreement::EntryAny);
    assert_eq!(found[1].score, 0.95);

    // A Maryland ABC1234 is probably another vehicle, unless the reader misread the state: the
    // Virginia entry is a candidate scored far below the any-state entry, and says why.
    let other_state = matches_for(&store, &read("ABC1234", Some("MD")));
    let lists: Vec<&str> = other_state.iter().map(|m| m.entry.list.as_str()).collect();
    assert_eq!(lists, vec!["stolen_vehicles", "local_bolo"]);
    let virginia = &other_state[0];
    assert_eq!(virginia.kind, MatchKind::Exact);
    assert_eq!(virginia.jurisdiction, JurisdictionAgreement::Differs);
    assert!(virginia.score < 0.5 && virginia.score < other_state[1].score);
    assert!(
        virginia
            .explanation
            .contains("from US-VA, the reader saw US-MD")
            && virginia.explanation.contains("confirm the state"),
        "{}",
        virginia.explanation
    );
    // One character off and another state: two doubts, no hit.
    let misread_elsewhere = matches_for(&store, &read("A8C1234", Some("MD")));
    assert!(misread_elsewhere
        .iter()
        .all(|m| m.jurisdiction != JurisdictionAgreement::Differs));

    let unknown = matches_for(&store, &read("ABC1234", None));
    assert_eq!(unknown[0].jurisdiction, JurisdictionAgreement::ReadUnknown);
    assert_eq!(unknown[0].score, 0.8);
    assert!(unknown[0].explanation.contains("verify the state"));

    assert!(
        matches_for(&store, &read("XYZ999", Some("DC"))).is_empty(),
        "expired"
    );
}

#[test]
fn misreads_are_explained_character_by_character_and_scored_below_exact() {
    let store = store_from_csv(MatchModes::FULL, LISTS);
    let found = matches_for(&store, &read("A8C1234", Some("VA")));
    assert_eq!(found.len(), 2);
    let stolen = &found[0];
    assert_eq!(stolen.kind, MatchKind::Misread);
    assert_eq!(
        stolen.differences,
        vec![CharacterDifference {
            kind: DifferenceKind::LookAlike,
            position: 2,
            entry: Some("B".into()),
            read: Some("8".into()),
        }]
    );
    assert!(
        stolen
            .explanation
            .contains("read '8' for 'B' at position 2"),
        "{}",
        stolen.explanation
    );
    assert!(stolen.score < 1.0 && stolen.score > 0.5);

    let dropped = matches_for(&store, &read("ABC234", Some("VA")));
    assert_eq!(dropped[0].differences[0].kind, DifferenceKind::Dropped);
    assert_eq!(dropped[0].differences[0].entry.as_deref(), Some("1"));
    let both = matches_for(&store, &read("A8C234", Some("VA")));
    assert_eq!(both[0].differences.len(), 2);
    assert!(both[0].score < dropped[0].score);

    // 3 read as 7 (the 2009 Denise Green stop) is not a look-alike: no hit.
    assert!(matches_for(&store, &read("5SOW350", Some("CA"))).is_empty());
    // Two look-alikes are two errors: no hit.
    assert!(matches_for(&store, &read("A8C12Z4", Some("VA"))).is_empty());
}

#[test]
fn misreads_can_be_turned_off_per_entry_per_list_and_for_the_store() {
    let store = store_from_csv(MatchModes::FULL, LISTS);
    assert!(
        matches_for(&store, &read("BOB2345", Some("MD"))).is_empty(),
        "misreads=false on the row"
    );
    assert_eq!(matches_for(&store, &read("8OB2345", Some("MD"))).len(), 1);

    let mut policy = ListPolicy::named("stolen_vehicles");
    policy.misreads = false;
    store.set_policy(policy);
    let found = matches_for(&store, &read("A8C1234", Some("VA")));
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].entry.list, "local_bolo");

    let exact_only = store_from_csv(MatchModes::EXACT_ONLY, LISTS);
    assert!(matches_for(&exact_only, &read("A8C1234", Some("VA"))).is_empty());
}

#[test]
fn partial_plates_match_through_their_index_and_say_what_was_unknown() {
    let csv = "list,plate,jurisdiction,priority\n\
               amber_alert,7X?2*,VA,1\n\
               local_bolo,ABC 1_3,,3\n\
               local_bolo,A?B?C,,3\n";
    let store = store_from_csv(MatchModes::FULL, csv);
    let found = matches_for(&store, &read("7XK229", Some("VA")));
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].kind, MatchKind::Partial);
    let unknowns: Vec<(u8, Option<&str>)> = found[0]
        .differences
        .iter()
        .map(|d| (d.position, d.read.as_deref()))
        .collect();
    assert_eq!(unknowns, vec![(3, Some("K")), (5, Some("29"))]);
    assert!(found[0].explanation.contains("7X?2*"));
    assert!(found[0].score < 0.8);

    assert!(matches_for(&store, &read("7XK229", Some("MD"))).is_empty());
    assert_eq!(matches_for(&store, &read("ABC1Z3", None)).len(), 1);
    assert_eq!(
        matches_for(&store, &read("AXBYC", None)).len(),
        1,
        "patterns without two adjacent known characters are still matched"
    );
    assert!(matches_for(&store, &read("ABC1234", None)).is_empty());

    let exact_and_misread = store_from_csv(MatchModes::EXACT_AND_MISREAD, csv);
    assert!(matches_for(&exact_and_misread, &read("7XK229", Some("VA"))).is_empty());
}

#[test]
fn upserts_and_deletes_apply_to_the_next_read() {
    let store = HotlistStore::default();
    store
        .replace_list(
            "stolen_vehicles",
            vec![
                entry("stolen_vehicles", "ABC123", "n1"),
                entry("stolen_vehicles", "XYZ789", "n2"),
            ],
        )
        .unwrap();
    let hits = |plate: &str| -> Vec<String> {
        matches_for(&store, &read(plate, None))
            .iter()
            .filter(|m| m.kind == MatchKind::Exact)
            .map(|m| m.entry.id.clone())
            .collect()
    };
    assert_eq!(hits("ABC123"), vec!["n1"]);

    // Replacing n1 with another plate hides the snapshot entry.
    store.upsert(entry("stolen_vehicles", "QRS456", "n1"));
    assert!(hits("ABC123").is_empty());
    assert_eq!(hits("QRS456"), vec!["n1"]);

    // An AMBER alert typed in by hand creates its list and matches at once.
    store.upsert(entry("amber_alert", "KID111", "a1"));
    assert_eq!(hits("KID111"), vec!["a1"]);

    assert!(store.delete("stolen_vehicles", "n2"));
    assert!(hits("XYZ789").is_empty());
    assert!(store.delete("stolen_vehicles", "n1"));
    assert!(hits("QRS456").is_empty());
    assert!(!store.delete("stolen_vehicles", "n1"), "already gone");
    assert_eq!(store.list_len("stolen_vehicles"), 0);
    assert_eq!(store.entry_count(), 1);
}

#[test]
fn an_overlay_that_outgrows_its_limit_is_folded_without_losing_updates() {
    let store = HotlistStore::default();
    let base: Vec<Arc<HotlistEntry>> = (0..1000)
        .map(|i| entry("l", &format!("B{i:05}"), &format!("b{i}")))
        .collect();
    store.replace_list("l", base).unwrap();
    let limit = overlay_limit(1000);
    for i in 0..limit + 10 {
        store.upsert(entry("l", &format!("U{i:05}"), &format!("u{i}")));
    }
    store.delete("l", "b3");
    let current = store.current_list("l").unwrap();
    assert!(current.overlay.len() < limit, "folded into the snapshot");
    assert_eq!(store.list_len("l"), 1000 - 1 + limit + 10);
    assert_eq!(matches_for(&store, &read("U00005", None)).len(), 1);
    assert!(matches_for(&store, &read("B00003", None))
        .iter()
        .all(|m| m.entry.id != "b3"));
}

#[test]
fn an_entry_for_another_list_is_refused_by_replace() {
    let store = HotlistStore::default();
    let error = store
        .replace_list("a", vec![entry("b", "ABC123", "x")])
        .unwrap_err();
    assert!(error.to_string().contains("\"b\""), "{error}");
}

#[test]
fn list_policies_travel_with_the_match() {
    let store = HotlistStore::default();
    let mut policy = ListPolicy::named("covert_watch");
    policy.route = AlertRoute::Covert;
    policy.webhooks = vec!["https://cad.example/hook".into()];
    store.set_policy(policy);
    store.upsert(entry("covert_watch", "ABC123", "c1"));
    let found = matches_for(&store, &read("ABC123", None));
    assert_eq!(found[0].policy.as_ref().unwrap().route, AlertRoute::Covert);
    assert_eq!(
        store.policy("covert_watch").unwrap().webhooks,
        vec!["https://cad.example/hook".to_owned()]
    );
}

/// The index must find exactly what comparing the read with every entry finds.
#[test]
fn misread_matching_agrees_with_a_full_scan() {
    // Entries of two states and of none, then of two states only (the filters then skip asking
    // about untagged keys); reads of both states and of none.
    misread_matching_agrees_with_a_full_scan_for(&[None, Some("US-VA"), Some("US-MD")]);
    misread_matching_agrees_with_a_full_scan_for(&[Some("US-VA"), Some("US-MD")]);
}

fn misread_matching_agrees_with_a_full_scan_for(entry_states: &[Option<&str>]) {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let alphabet = b"ABCDGLOSTZ0125684";
    let random_plate = |rng: &mut ChaCha8Rng| -> String {
        let len = rng.random_range(3..=7);
        (0..len)
            .map(|_| char::from(alphabet[rng.random_range(0..alphabet.len())]))
            .collect()
    };
    let states = [None, Some("US-VA"), Some("US-MD")];
    let plates: Vec<String> = (0..3000).map(|_| random_plate(&mut rng)).collect();
    let store = HotlistStore::default();
    store
        .replace_list(
            "l",
            plates
                .iter()
                .enumerate()
                .map(|(i, plate)| {
                    let mut entry = (*entry("l", plate, &i.to_string())).clone();
                    entry.jurisdiction = entry_states[i % entry_states.len()].map(str::to_owned);
                    Arc::new(entry)
                })
                .collect(),
        )
        .unwrap();
    let reference = MisreadIndex::new(plates.iter().map(String::as_str));
    let mut reference_ids = Vec::new();
    let mut reads = Vec::new();
    let mut expected_per_read = Vec::new();
    for _ in 0..3000 {
        let plate = random_plate(&mut rng);
        let state = states[rng.random_range(0..states.len())];
        let mut anywhere: Vec<String> = plates
            .iter()
            .enumerate()
            .filter(|(_, entry)| misread_difference(entry, &plate).is_some())
            .map(|(i, _)| i.to_string())
            .collect();
        anywhere.sort();
        reference.candidates(&plate, &mut reference_ids);
        let mut from_reference: Vec<String> = reference_ids
            .iter()
            .filter(|&&id| misread_difference(&plates[id as usize], &plate).is_some())
            .map(|id| id.to_string())
            .collect();
        from_reference.sort();
        assert_eq!(from_reference, anywhere, "read {plate}");
        // An exact plate of another state is a (recorded) hit; a misread of one is not.
        let expected: Vec<String> = anywhere
            .into_iter()
            .filter(|id| {
                let i: usize = id.parse().unwrap();
                plates[i] == plate
                    || JurisdictionAgreement::between(state, entry_states[i % entry_states.len()])
                        != JurisdictionAgreement::Differs
            })
            .collect();
        let read = read(&plate, state);
        let mut found: Vec<String> = matches_for(&store, &read)
            .into_iter()
            .map(|m| m.entry.id.clone())
            .collect();
        found.sort();
        assert_eq!(found, expected, "read {plate} from {state:?}");
        reads.push(read);
        expected_per_read.push(expected);
    }
    batch_finds_the_same(&store, &reads, &expected_per_read);
}

/// Matching `reads` as one batch finds, per read, the entry ids `expected_per_read` lists (sorted).
fn batch_finds_the_same(
    store: &HotlistStore,
    reads: &[PlateRead],
    expected_per_read: &[Vec<String>],
) {
    let mut matches = Vec::new();
    let mut ends = Vec::new();
    store.match_batch(reads, now(), &mut matches, &mut ends);
    let mut start = 0;
    for ((read, expected), &end) in reads.iter().zip(expected_per_read).zip(&ends) {
        let mut found: Vec<String> = matches[start..end]
            .iter()
            .map(|m| m.entry.id.clone())
            .collect();
        found.sort();
        assert_eq!(&found, expected, "read {} in a batch", read.plate_norm);
        start = end;
    }
}

#[test]
fn partial_plate_matching_agrees_with_a_full_scan() {
    // Patterns of every shape the index files differently: known from the start (`AB?1*`), after
    // `?`s (`??B12`), after a `*` (`*B12?`), a `*` inside, and with no two adjacent known
    // characters (`A?B?C`); random reads over the same five characters, so that many fit.
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let alphabet = b"ABC12";
    let random_plate = |rng: &mut ChaCha8Rng| -> Vec<u8> {
        let len = rng.random_range(3..=8);
        (0..len)
            .map(|_| alphabet[rng.random_range(0..alphabet.len())])
            .collect()
    };
    let mut patterns: Vec<(String, PlatePattern)> = Vec::new();
    while patterns.len() < 400 {
        let mut text = random_plate(&mut rng);
        for character in text.iter_mut() {
            if rng.random_bool(0.3) {
                *character = b'?';
            }
        }
        match rng.random_range(0..4) {
            0 => text[0] = b'*',
            1 => *text.last_mut().unwrap() = b'*',
            2 => {
                let at = rng.random_range(0..text.len());
                text.insert(at, b'*');
            }
            _ => {}
        }
        let text = String::from_utf8(text).unwrap();
        if !crate::pattern::is_pattern(&text) {
            continue;
        }
        if let Ok(pattern) = PlatePattern::parse(&text) {
            patterns.push((text, pattern));
        }
    }
    let store = HotlistStore::default();
    let entries = patterns
        .iter()
        .enumerate()
        .map(|(i, (text, _))| entry("witnesses", text, &i.to_string()))
        .collect();
    store.replace_list("witnesses", entries).unwrap();

    let mut reads = Vec::new();
    let mut expected_per_read = Vec::new();
    for _ in 0..3000 {
        let plate = String::from_utf8(random_plate(&mut rng)).unwrap();
        let mut expected: Vec<String> = patterns
            .iter()
            .enumerate()
            .filter(|(_, (_, pattern))| pattern.matches(plate.as_bytes()))
            .map(|(i, _)| i.to_string())
            .collect();
        expected.sort();
        let read = read(&plate, None);
        let mut found: Vec<String> = matches_for(&store, &read)
            .into_iter()
            .map(|m| m.entry.id.clone())
            .collect();
        found.sort();
        assert_eq!(found, expected, "read {plate}");
        reads.push(read);
        expected_per_read.push(expected);
    }
    assert!(
        expected_per_read
            .iter()
            .filter(|expected| !expected.is_empty())
            .count()
            > 300,
        "the reads fit some patterns"
    );
    batch_finds_the_same(&store, &reads, &expected_per_read);
}

/// A reader matching without pause while another thread swaps list A for list B and back must
/// see each read's matches come wholly from A or wholly from B.
#[test]
fn a_bulk_replace_is_never_seen_half_done() {
    let plates: Vec<String> = (0..2000).map(|i| format!("P{i:05}")).collect();
    let version = |tag: &str| -> Vec<Arc<HotlistEntry>> {
        plates
            .iter()
            .map(|plate| {
                let mut entry = HotlistEntry::new("stolen_vehicles", plate).unwrap();
                entry.reason = Some(tag.to_owned());
                Arc::new(entry)
            })
            .collect()
    };
    let (list_a, list_b) = (version("A"), version("B"));
    let store = Arc::new(HotlistStore::new(MatchModes::FULL));
    store
        .replace_list("stolen_vehicles", list_a.clone())
        .unwrap();
    // A read of P00001 hits P00001 exactly and P00010/P00011.. are not within one edit, but
    // "P0000" + one more character gives several misread hits per read: all must agree.
    let probe = read("P0001", None);
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let store = Arc::clone(&store);
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut checked = 0u64;
            let mut matches = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                matches.clear();
                store.match_read(&probe, now(), &mut matches);
                assert!(
                    matches.len() >= 10,
                    "never empty or half loaded: {}",
                    matches.len()
                );
                let first = matches[0].entry.reason.clone();
                assert!(
                    matches.iter().all(|m| m.entry.reason == first),
                    "a read saw two versions of the list"
                );
                checked += 1;
            }
            checked
        })
    };
    for round in 0..40 {
        let next = if round % 2 == 0 { &list_b } else { &list_a };
        store.replace_list("stolen_vehicles", next.clone()).unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    let checked = reader.join().unwrap();
    assert!(checked > 0);
}

#[test]
fn matching_a_batch_finds_what_matching_each_read_finds() {
    let mut simulator = Simulator::new(SimulatorConfig {
        vehicles: 5_000,
        hotlist_fraction: 0.05,
        ..SimulatorConfig::default()
    });
    let mut csv = Vec::new();
    simulator.write_hotlist_csv(&mut csv).unwrap();
    let mut entries = load_hotlist_csv("sim", csv.as_slice()).unwrap().entries;
    entries.push(Arc::new(HotlistEntry::new("hotlist", "7X?2*").unwrap()));
    let now = Timestamp::now();
    let reads: Vec<PlateRead> = (0..3_000)
        .map(|i| {
            let (mut read, _) = simulator.next_read(Timestamp(now.millis() - 60_000 + i));
            normalize_read(&mut read, now).unwrap();
            read
        })
        .collect();
    // Witness patterns that some of the reads fit: a batch finds its pattern candidates ahead too.
    for (number, read) in reads.iter().step_by(97).enumerate() {
        let mut witness = read.plate_norm.clone().into_bytes();
        if witness.len() < 4 {
            continue;
        }
        witness[2] = b'?';
        witness.truncate(witness.len() - 1);
        witness.push(b'*');
        let mut entry = HotlistEntry::new("witnesses", &String::from_utf8_lossy(&witness)).unwrap();
        entry.id = format!("witness-{number}");
        entries.push(Arc::new(entry));
    }
    // A second list holding some of the same plates, and live additions on top of both (the
    // overlay): a batch's candidates are kept per list and read.
    let second_list: Vec<Arc<HotlistEntry>> = entries
        .iter()
        .step_by(3)
        .filter(|entry| !entry.partial)
        .map(|entry| Arc::new(HotlistEntry::new("local_bolo", &entry.plate).unwrap()))
        .collect();
    let late: Vec<String> = entries
        .iter()
        .skip(1)
        .step_by(5)
        .map(|e| e.plate.clone())
        .collect();
    entries.extend(second_list);
    let store = HotlistStore::from_entries(MatchModes::FULL, &[], entries);
    let describe = |found: &[Match]| {
        found
            .iter()
            .map(|hit| (hit.entry.id.clone(), hit.kind, hit.score.to_bits()))
            .collect::<Vec<_>>()
    };
    let batch_agrees = |store: &HotlistStore| {
        let (mut batched, mut ends) = (Vec::new(), Vec::new());
        store.match_batch(&reads, now, &mut batched, &mut ends);
        assert_eq!(ends.len(), reads.len());
        let mut start = 0;
        let mut kinds = HashSet::new();
        for (read, &end) in reads.iter().zip(&ends) {
            let mut single = Vec::new();
            store.match_read(read, now, &mut single);
            assert_eq!(
                describe(&batched[start..end]),
                describe(&single),
                "{}",
                read.plate_norm
            );
            kinds.extend(single.iter().map(|hit| hit.kind));
            start = end;
        }
        kinds
    };
    // Snapshots alone: a read without candidates in them is not matched further.
    let kinds = batch_agrees(&store);
    assert!(kinds.contains(&MatchKind::Exact), "{kinds:?}");
    assert!(kinds.contains(&MatchKind::Partial), "{kinds:?}");
    for (number, plate) in late.iter().enumerate() {
        let mut entry = HotlistEntry::new("late_additions", plate).unwrap();
        entry.id = format!("late-{number}");
        store.upsert(Arc::new(entry));
    }
    let kinds = batch_agrees(&store);
    assert!(kinds.contains(&MatchKind::Exact), "{kinds:?}");
}
