//! BOLOs in the store: vehicle descriptions, partial plates with descriptions, appearance.

use super::*;
use crate::alert_policy::ListPolicy;
use crate::hotlist::load_hotlist_csv;
use crate::normalize::normalize_read;
use crate::read::{Attribute, VehicleAttributes};

fn now() -> Timestamp {
    Timestamp::parse_rfc3339("2026-11-24T17:00:01Z").unwrap()
}

fn read(plate: &str, vehicle: &[(&str, &str, f32)]) -> PlateRead {
    let mut read: PlateRead = serde_json::from_value(serde_json::json!({
        "vendor": "t", "reader_id": "r", "observed_at": "2026-11-24T17:00:00Z",
        "plate": plate, "jurisdiction": "US-VA", "confidence": 0.9, "lat": 38.9, "lon": -77.0
    }))
    .unwrap();
    normalize_read(&mut read, now()).unwrap();
    let mut attributes = VehicleAttributes::default();
    for (name, value, confidence) in vehicle {
        let attribute = Some(Attribute::new(*value, Some(*confidence)));
        match *name {
            "make" => attributes.make = attribute,
            "model" => attributes.model = attribute,
            "color" => attributes.color = attribute,
            "body_type" => attributes.body_type = attribute,
            _ => unreachable!(),
        }
    }
    read.vehicle = attributes;
    read
}

fn store(csv: &str, policies: &[ListPolicy]) -> HotlistStore {
    let loaded = load_hotlist_csv("t.csv", csv.as_bytes()).unwrap();
    assert!(loaded.rejected.is_empty(), "{:?}", loaded.rejected);
    HotlistStore::from_entries(MatchModes::FULL, policies, loaded.entries)
}

fn matches_for(store: &HotlistStore, read: &PlateRead) -> Vec<Match> {
    let mut matches = Vec::new();
    store.match_read(read, now(), &mut matches);
    matches
}

const BOLOS: &str = "list,plate,id,reason,make,model,color,body_type\n\
    local_bolo,,civic,robbery suspect,Honda,Civic,silver,\n\
    local_bolo,,sedan,lone silver sedan,,,silver,sedan\n\
    local_bolo,7X?2*,witness,hit and run,Toyota,,blue,\n";

#[test]
fn a_described_vehicle_alerts_with_each_attribute_and_its_confidence() {
    let store = store(BOLOS, &[]);
    let civic = read(
        "KLM123",
        &[
            ("make", "Honda", 0.95),
            ("model", "Civic", 0.9),
            ("color", "silver", 0.9),
            ("body_type", "sedan", 0.95),
        ],
    );
    let found = matches_for(&store, &civic);
    // The lone "silver sedan" BOLO is below the default threshold: only the civic alerts.
    assert_eq!(found.len(), 1, "{found:#?}");
    let hit = &found[0];
    assert_eq!(hit.kind, MatchKind::Attribute);
    assert_eq!(hit.entry.id, "civic");
    assert!(hit.score >= 0.5 && hit.score <= 0.8, "{}", hit.score);
    let make = &hit.attributes[0];
    assert_eq!(make.attribute.as_str(), "make");
    assert_eq!(make.agreement, AttributeAgreement::Agrees);
    assert_eq!(make.read_confidence, Some(0.95));
    assert!(
        hit.explanation.contains("make honda agrees (0.95)"),
        "{}",
        hit.explanation
    );
}

#[test]
fn a_list_can_ask_for_lone_descriptions_and_a_low_confidence_lookalike_color_counts_a_little() {
    let eager = ListPolicy {
        min_attribute_score: Some(0.05),
        ..ListPolicy::named("local_bolo")
    };
    let store = store(BOLOS, &[eager]);
    let unsure_gray = read(
        "KLM123",
        &[("color", "gray", 0.5), ("body_type", "sedan", 0.9)],
    );
    let found = matches_for(&store, &unsure_gray);
    assert_eq!(found.len(), 1, "{found:#?}");
    let color = found[0]
        .attributes
        .iter()
        .find(|attribute| attribute.attribute.as_str() == "color")
        .unwrap();
    assert_eq!(color.agreement, AttributeAgreement::Similar);
    let sure_silver = read(
        "KLM123",
        &[("color", "silver", 0.9), ("body_type", "sedan", 0.9)],
    );
    assert!(matches_for(&store, &sure_silver)[0].score > found[0].score);
    // A red car is not a silver one, however unsure the reader.
    let red = read(
        "KLM123",
        &[("color", "red", 0.3), ("body_type", "sedan", 0.9)],
    );
    assert!(matches_for(&store, &red).is_empty());
}

#[test]
fn plate_pattern_and_description_agreeing_score_highest() {
    let store = store(BOLOS, &[]);
    let toyota = [("make", "Toyota", 0.9), ("color", "blue", 0.9)];
    let both = matches_for(&store, &read("7XK229", &toyota));
    let plate_only = matches_for(&store, &read("7XK229", &[]));
    let description_only = matches_for(&store, &read("8YK229", &toyota));
    assert_eq!(both.len(), 1);
    assert_eq!(both[0].kind, MatchKind::Partial);
    assert!(!both[0].differences.is_empty());
    assert_eq!(plate_only.len(), 1);
    assert!(
        both[0].score > plate_only[0].score,
        "{} {}",
        both[0].score,
        plate_only[0].score
    );
    // The description alone on a plate that contradicts the witness: below the threshold.
    assert!(description_only.is_empty(), "{description_only:#?}");
    // The description contradicting the plate's fit lowers it below the threshold too.
    let wrong_car = matches_for(&store, &read("7XK229", &[("make", "Ford", 0.9)]));
    assert!(wrong_car.is_empty(), "{wrong_car:#?}");
}

#[test]
fn area_and_time_window_limit_a_bolo_and_upserts_and_deletes_apply_at_once() {
    let store = store(
        "list,plate,id,make,model,color,lat,lon,radius_m,active_to\n\
         local_bolo,,near,Honda,Civic,silver,38.9,-77.0,500,2026-11-25T00:00:00Z\n",
        &[],
    );
    let civic = [
        ("make", "honda", 0.95),
        ("model", "civic", 0.9),
        ("color", "silver", 0.9),
    ];
    let mut here = read("KLM123", &civic);
    assert_eq!(matches_for(&store, &here).len(), 1);
    here.lat = Some(38.95);
    assert!(matches_for(&store, &here).is_empty(), "outside the area");
    here.lat = Some(38.9);
    here.observed_at = Timestamp::parse_rfc3339("2026-11-25T01:00:00Z").unwrap();
    assert!(matches_for(&store, &here).is_empty(), "after the window");

    let mut fields = crate::hotlist::EntryFields::default();
    for (name, value) in [
        ("list", "local_bolo"),
        ("id", "ford"),
        ("make", "Ford"),
        ("model", "F-150"),
        ("color", "white"),
    ] {
        fields.set(name, value);
    }
    store.upsert(Arc::new(crate::hotlist::entry_from_fields(fields).unwrap()));
    let ford = read(
        "XYZ999",
        &[
            ("make", "ford", 0.9),
            ("model", "f-150", 0.9),
            ("color", "white", 0.9),
        ],
    );
    assert_eq!(matches_for(&store, &ford)[0].entry.id, "ford");
    assert!(store.delete("local_bolo", "ford"));
    assert!(matches_for(&store, &ford).is_empty());
}

#[test]
fn a_read_whose_appearance_resembles_a_reference_vector_alerts_once_with_its_similarity() {
    let store = store(
        "list,plate,id,make,reference_vectors\n\
         photo_bolo,,photo,Honda,\"[[1,0,0,0],[0,1,0,0]]\"\n\
         photo_bolo,,other,,\"[[0,0,0,1]]\"\n",
        &[],
    );
    let mut similar = read("KLM123", &[("make", "Honda", 0.9)]);
    similar.embedding = Some(vec![0.0, 2.0, 0.3, 0.0]);
    let found = matches_for(&store, &similar);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0].kind, MatchKind::Appearance);
    assert_eq!(found[0].entry.id, "photo");
    let similarity = found[0].appearance_similarity.unwrap();
    assert!(
        (similarity - 2.0 / (4.09f32).sqrt()).abs() < 1e-4,
        "{similarity}"
    );
    // The same look on a vehicle surely of another make: half the score, under the threshold.
    let mut other_make = read("KLM123", &[("make", "Toyota", 0.9)]);
    other_make.embedding = similar.embedding.clone();
    assert!(matches_for(&store, &other_make).is_empty());
    let mut unlike = similar.clone();
    unlike.embedding = Some(vec![1.0, 1.0, 1.0, 0.0]);
    assert!(matches_for(&store, &unlike).is_empty());
    // A vector of another dimension is never compared.
    unlike.embedding = Some(vec![0.0, 1.0, 0.0]);
    assert!(matches_for(&store, &unlike).is_empty());
}

#[test]
fn new_reference_vectors_are_queued_once_for_a_retro_search() {
    let csv = "list,plate,id,reference_vectors\nphoto_bolo,,photo,\"[1,0,0,0]\"\n";
    let store = store(csv, &[]);
    assert_eq!(store.take_new_appearance_bolos().len(), 1);
    assert!(store.take_new_appearance_bolos().is_empty());
    // Reloading the same list queues nothing; a changed vector is queued again.
    let loaded = load_hotlist_csv("t.csv", csv.as_bytes()).unwrap();
    store.replace_list("photo_bolo", loaded.entries).unwrap();
    assert!(store.take_new_appearance_bolos().is_empty());
    let changed = "list,plate,id,reference_vectors\nphoto_bolo,,photo,\"[0,1,0,0]\"\n";
    let loaded = load_hotlist_csv("t.csv", changed.as_bytes()).unwrap();
    store.replace_list("photo_bolo", loaded.entries).unwrap();
    assert_eq!(store.take_new_appearance_bolos().len(), 1);
}

#[test]
fn areas_small_and_state_wide_and_other_models_are_told_apart_by_the_index() {
    // BOLOs for the same make and color: in a 2 km circle around the read, 300 km away, over
    // most of a state and over a 1,000 km radius (keyed by coarser cells), and one for another
    // model of the same make.
    let store = store(
        "list,plate,id,make,model,color,lat,lon,radius_m,min_score\n\
         local_bolo,,here,Honda,Civic,silver,38.905,-77.01,2000,0.3\n\
         local_bolo,,elsewhere,Honda,Civic,silver,40.7,-74.0,2000,0.3\n\
         local_bolo,,statewide,Honda,Civic,silver,38.5,-78.5,250000,0.3\n\
         local_bolo,,accord,Honda,Accord,silver,38.905,-77.01,2000,0.3\n\
         local_bolo,,national,Honda,Civic,silver,38.0,-84.0,1000000,0.3\n",
        &[],
    );
    let civic = read(
        "KLM123",
        &[
            ("make", "Honda", 0.95),
            ("model", "Civic", 0.9),
            ("color", "silver", 0.9),
        ],
    );
    let mut ids: Vec<String> = matches_for(&store, &civic)
        .into_iter()
        .map(|hit| hit.entry.id.clone())
        .collect();
    ids.sort();
    assert_eq!(ids, ["here", "national", "statewide"]);
    // A read with no position cannot be inside any area.
    let mut nowhere = civic.clone();
    nowhere.lat = None;
    nowhere.lon = None;
    assert!(matches_for(&store, &nowhere).is_empty());
    // A read whose classifier gave no model still finds the BOLOs of both models near it
    // (alerting here because these BOLOs accept a make and a color alone).
    let unsure = read(
        "KLM123",
        &[("make", "Honda", 0.95), ("color", "silver", 0.9)],
    );
    let mut ids: Vec<String> = matches_for(&store, &unsure)
        .into_iter()
        .map(|hit| hit.entry.id.clone())
        .collect();
    ids.sort();
    assert_eq!(ids, ["accord", "here", "national", "statewide"]);
}
