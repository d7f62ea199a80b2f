//! One small vocabulary for vehicle attributes, whatever the vendor's classifier calls them, so a
//! BOLO for a "silver sedan" matches Rekor's `silver`/`sedan-standard`, Plate Recognizer's
//! `silver`/`Sedan` and Genetec's `Silver`/`Passenger Car` alike. Documented in `schemas/README.md`.
//!
//! Values we cannot place map to `None` (unknown), never to a guess: a wrong color on an alert
//! sends officers after the wrong car.

use std::borrow::Cow;

/// Colors: the set most vendors' classifiers distinguish.
pub const COLORS: &[&str] = &[
    "black", "white", "silver", "gray", "red", "blue", "green", "yellow", "orange", "brown",
    "beige", "gold", "purple",
];

/// Body types.
pub const BODY_TYPES: &[&str] = &[
    "sedan",
    "suv",
    "pickup",
    "van",
    "hatchback",
    "coupe",
    "convertible",
    "wagon",
    "motorcycle",
    "bus",
    "truck",
];

/// Lowercase, with every run of separators (space, `_`, `-`, `/`) as one `-`. Borrowed when
/// the value is in that form already (as normalized reads' attributes are): matching asks for
/// every read's attributes.
fn simplify(raw: &str) -> Cow<'_, str> {
    let bytes = raw.as_bytes();
    let already_simple = !bytes.is_empty()
        && bytes.first() != Some(&b'-')
        && bytes.last() != Some(&b'-')
        && !raw.contains("--")
        && bytes
            .iter()
            .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || *byte == b'-');
    if already_simple {
        return Cow::Borrowed(raw);
    }
    let mut simplified = String::with_capacity(raw.len());
    if raw.is_ascii() {
        for byte in raw.trim().bytes() {
            if byte.is_ascii_alphanumeric() {
                simplified.push(char::from(byte.to_ascii_lowercase()));
            } else if !simplified.ends_with('-') && !simplified.is_empty() {
                simplified.push('-');
            }
        }
    } else {
        for character in raw.trim().chars() {
            if character.is_alphanumeric() {
                simplified.extend(character.to_lowercase());
            } else if !simplified.ends_with('-') && !simplified.is_empty() {
                simplified.push('-');
            }
        }
    }
    while simplified.ends_with('-') {
        simplified.pop();
    }
    Cow::Owned(simplified)
}

fn is_unknown(simplified: &str) -> bool {
    matches!(simplified, "" | "unknown" | "none" | "n-a" | "na" | "other")
}

pub fn canonical_color(raw: &str) -> Option<&'static str> {
    let simplified = simplify(raw);
    if is_unknown(&simplified) {
        return None;
    }
    if let Some(color) = COLORS.iter().find(|color| **color == simplified) {
        return Some(color);
    }
    // "dark-blue", "light-gray", "silver-gray": the last word that names a color decides.
    let color = simplified.rsplit('-').find_map(|word| {
        Some(match word {
            "grey" | "charcoal" | "graphite" => "gray",
            "maroon" | "burgundy" => "red",
            "navy" => "blue",
            "tan" | "cream" | "champagne" | "ivory" => "beige",
            "teal" => "green",
            "bronze" | "copper" => "brown",
            "violet" => "purple",
            other => return COLORS.iter().find(|color| **color == other).copied(),
        })
    })?;
    Some(color)
}

pub fn canonical_body_type(raw: &str) -> Option<&'static str> {
    let simplified = simplify(raw);
    if is_unknown(&simplified) {
        return None;
    }
    let words: Vec<&str> = simplified.split('-').collect();
    let has = |word: &str| words.contains(&word);
    // Order matters: "sedan-wagon" is a wagon, "pickup-truck" a pickup, "van-mini" a van.
    let body_type = if has("motorcycle") || has("motorbike") || has("scooter") {
        "motorcycle"
    } else if has("bus") || has("coach") {
        "bus"
    } else if has("pickup") {
        "pickup"
    } else if has("wagon") || has("estate") {
        "wagon"
    } else if has("suv") || has("crossover") || has("cuv") {
        "suv"
    } else if has("van") || has("minivan") {
        "van"
    } else if has("hatchback") || has("hatch") {
        "hatchback"
    } else if has("coupe") {
        "coupe"
    } else if has("convertible") || has("cabriolet") {
        "convertible"
    } else if has("truck") || has("tractor") || has("trailer") || has("lorry") {
        "truck"
    } else if has("sedan") || has("saloon") || has("limousine") || simplified == "passenger-car" {
        "sedan"
    } else {
        return None;
    };
    Some(body_type)
}

/// Makes under one spelling: the alias table covers the spellings classifiers and officers use.
const MAKE_ALIASES: &[(&str, &str)] = &[
    ("chevy", "chevrolet"),
    ("vw", "volkswagen"),
    ("mercedes", "mercedes-benz"),
    ("mercedes-benz", "mercedes-benz"),
    ("benz", "mercedes-benz"),
    ("mb", "mercedes-benz"),
    ("landrover", "land-rover"),
    ("range-rover", "land-rover"),
    ("alfa", "alfa-romeo"),
    ("rolls-royce", "rolls-royce"),
    ("mini-cooper", "mini"),
    ("bmw", "bmw"),
    ("gmc", "gmc"),
];

/// Aliases that are model lines (`range-rover-sport` is a model of its own), never a make's
/// prefix to take off or split at.
const MODEL_LINES: &[&str] = &["range-rover", "mini-cooper"];

/// Makes as [`simplify`] writes them, to tell a make from a model glued to it (`Dodge Ram`,
/// `toyota_camry`): a make field holding both would otherwise be a make of its own, which no
/// BOLO for a Dodge matches. Not a list of every make (a make outside it is kept whole, as
/// before); the common makes of US registrations, cars, trucks and motorcycles.
const KNOWN_MAKES: &[&str] = &[
    "acura",
    "alfa-romeo",
    "aston-martin",
    "audi",
    "bentley",
    "bmw",
    "buick",
    "cadillac",
    "chevrolet",
    "chrysler",
    "dodge",
    "ferrari",
    "fiat",
    "ford",
    "freightliner",
    "genesis",
    "gmc",
    "harley-davidson",
    "honda",
    "hummer",
    "hyundai",
    "infiniti",
    "international",
    "isuzu",
    "jaguar",
    "jeep",
    "kawasaki",
    "kenworth",
    "kia",
    "lamborghini",
    "land-rover",
    "lexus",
    "lincoln",
    "lotus",
    "mack",
    "maserati",
    "mazda",
    "mclaren",
    "mercedes-benz",
    "mercury",
    "mini",
    "mitsubishi",
    "nissan",
    "oldsmobile",
    "peterbilt",
    "polestar",
    "pontiac",
    "porsche",
    "ram",
    "rivian",
    "rolls-royce",
    "saab",
    "saturn",
    "scion",
    "smart",
    "subaru",
    "suzuki",
    "tesla",
    "toyota",
    "volkswagen",
    "volvo",
    "yamaha",
];

/// A simplified make that is a known make (or alias) with a model after it: the make and the
/// model. The longest make wins (`mercedes-benz-c300` is `mercedes-benz` and `c300`); aliases
/// that are model lines (`range-rover`) are not makes here.
fn split_make(simplified: &str) -> Option<(&'static str, &str)> {
    KNOWN_MAKES
        .iter()
        .map(|make| (*make, *make))
        .chain(
            MAKE_ALIASES
                .iter()
                .copied()
                .filter(|(alias, _)| !MODEL_LINES.contains(alias)),
        )
        .filter_map(|(name, make)| {
            let rest = simplified.strip_prefix(name)?.strip_prefix('-')?;
            (!rest.is_empty()).then_some((name.len(), make, rest))
        })
        .max_by_key(|(length, _, _)| *length)
        .map(|(_, make, rest)| (make, rest))
}

/// The model a make field carries after its make (`Dodge Ram` → `ram`), if it does.
pub fn model_glued_to_make(raw_make: &str) -> Option<String> {
    let simplified = simplify(raw_make);
    if MAKE_ALIASES.iter().any(|(alias, _)| *alias == simplified) {
        return None;
    }
    split_make(&simplified).map(|(_, model)| model.to_owned())
}

/// Puts a read's vehicle attributes in the vocabulary, in place: allocates nothing for values that
/// already are (as vendor decoders leave them; this runs for every read). An attribute the
/// vocabulary cannot place is removed. Canonical-format reads and simulated ones arrive as the
/// sender spelled them.
pub fn canonicalize_vehicle(vehicle: &mut crate::read::VehicleAttributes) {
    use crate::read::Attribute;
    /// `None`: unchanged; `Some(None)`: removed; `Some(Some(value))`: replaced.
    fn change(value: &str, canonical: Option<Cow<'_, str>>) -> Option<Option<String>> {
        match canonical {
            None => Some(None),
            Some(canonical) if canonical == value => None,
            Some(canonical) => Some(Some(canonical.into_owned())),
        }
    }
    fn apply(attribute: &mut Option<Attribute>, change: Option<Option<String>>) {
        match change {
            None => {}
            Some(None) => *attribute = None,
            Some(Some(value)) => {
                if let Some(attribute) = attribute {
                    attribute.value = value;
                }
            }
        }
    }
    // `Dodge Ram` in the make field: the model it carries stands in for a model not given.
    if vehicle.model.is_none() {
        vehicle.model = vehicle.make.as_ref().and_then(|make| {
            model_glued_to_make(&make.value).map(|model| Attribute::new(model, make.confidence))
        });
    }
    let make = vehicle
        .make
        .as_ref()
        .and_then(|make| change(&make.value, make_in_vocabulary(&make.value)));
    apply(&mut vehicle.make, make);
    let make = vehicle.make.as_ref().map(|make| make.value.as_str());
    let model = vehicle
        .model
        .as_ref()
        .and_then(|model| change(&model.value, model_in_vocabulary(&model.value, make)));
    apply(&mut vehicle.model, model);
    let color = vehicle.color.as_ref().and_then(|color| {
        change(
            &color.value,
            canonical_color(&color.value).map(Cow::Borrowed),
        )
    });
    apply(&mut vehicle.color, color);
    let body_type = vehicle.body_type.as_ref().and_then(|body_type| {
        change(
            &body_type.value,
            canonical_body_type(&body_type.value).map(Cow::Borrowed),
        )
    });
    apply(&mut vehicle.body_type, body_type);
}

/// [`canonical_make`], borrowed when the value is in the vocabulary already.
fn make_in_vocabulary(raw: &str) -> Option<Cow<'_, str>> {
    let simplified = simplify(raw);
    if is_unknown(&simplified) {
        return None;
    }
    if let Some((_, make)) = MAKE_ALIASES.iter().find(|(alias, _)| *alias == simplified) {
        return Some(Cow::Borrowed(make));
    }
    if let Some((make, _)) = split_make(&simplified) {
        return Some(Cow::Borrowed(make));
    }
    Some(simplified)
}

/// [`canonical_model`], borrowed when the value is in the vocabulary already.
fn model_in_vocabulary<'a>(raw: &'a str, make: Option<&str>) -> Option<Cow<'a, str>> {
    let simplified = simplify(raw);
    if is_unknown(&simplified) {
        return None;
    }
    let without_make = make
        .and_then(|make| without_make_prefix(&simplified, make))
        .map(str::to_owned);
    Some(without_make.map_or(simplified, Cow::Owned))
}

/// `model` without what a classifier glued in front of it: the make or one of its aliases
/// (`chevy-malibu` beside make `chevrolet`), the longest that matches, so that `mercedes-benz-`
/// wins over `mercedes-`. Aliases that are model lines (`range-rover`, `mini-cooper`) are not
/// prefixes: `range-rover-sport` is a model of its own.
fn without_make_prefix<'a>(model: &'a str, make: &str) -> Option<&'a str> {
    MAKE_ALIASES
        .iter()
        .filter(|(alias, target)| *target == make && !MODEL_LINES.contains(alias))
        .map(|(alias, _)| *alias)
        .chain(std::iter::once(make))
        .filter_map(|prefix| {
            let rest = model.strip_prefix(prefix)?.strip_prefix('-')?;
            (!rest.is_empty()).then_some((prefix.len(), rest))
        })
        .max_by_key(|(length, _)| *length)
        .map(|(_, rest)| rest)
}

/// A make in lowercase with hyphens (`honda`, `mercedes-benz`). Makes outside the alias table are
/// kept in that form: any make list we wrote would be out of date next model year.
pub fn canonical_make(raw: &str) -> Option<String> {
    make_in_vocabulary(raw).map(Cow::into_owned)
}

/// A model in lowercase with hyphens, without its make (or an alias of it) when a classifier
/// glued them together (Rekor's `honda_civic`, `chevy_malibu`).
pub fn canonical_model(raw: &str, make: Option<&str>) -> Option<String> {
    model_in_vocabulary(raw, make).map(Cow::into_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colors_from_every_vendor_land_in_one_vocabulary() {
        for (raw, expected) in [
            ("Silver", Some("silver")),
            ("silver-gray", Some("gray")),
            ("GREY", Some("gray")),
            ("Dark Blue", Some("blue")),
            ("maroon", Some("red")),
            ("-", None),
            ("Unknown", None),
            ("plaid", None),
        ] {
            assert_eq!(canonical_color(raw), expected, "{raw}");
        }
    }

    #[test]
    fn body_types_from_every_vendor_land_in_one_vocabulary() {
        for (raw, expected) in [
            ("sedan-standard", Some("sedan")),
            ("Sedan", Some("sedan")),
            ("sedan-wagon", Some("wagon")),
            ("SUV", Some("suv")),
            ("suv-crossover", Some("suv")),
            ("Pickup Truck", Some("pickup")),
            ("truck-standard", Some("truck")),
            ("Big Truck", Some("truck")),
            ("van-mini", Some("van")),
            ("Passenger Car", Some("sedan")),
            ("tractor-trailer", Some("truck")),
            ("Motorcycle", Some("motorcycle")),
            ("hovercraft", None),
        ] {
            assert_eq!(canonical_body_type(raw), expected, "{raw}");
        }
    }

    #[test]
    fn makes_and_models() {
        assert_eq!(canonical_make("Chevy").as_deref(), Some("chevrolet"));
        assert_eq!(
            canonical_make("Mercedes Benz").as_deref(),
            Some("mercedes-benz")
        );
        assert_eq!(canonical_make("Honda").as_deref(), Some("honda"));
        assert_eq!(canonical_make("-"), None);
        assert_eq!(
            canonical_model("honda_civic", Some("honda")).as_deref(),
            Some("civic")
        );
        assert_eq!(
            canonical_model("CR-V", Some("honda")).as_deref(),
            Some("cr-v")
        );
    }

    #[test]
    fn a_make_field_holding_its_model_too_is_split() {
        for (raw, make, model) in [
            ("Dodge Ram", "dodge", Some("ram")),
            ("toyota_camry", "toyota", Some("camry")),
            ("Chevy Malibu", "chevrolet", Some("malibu")),
            ("Mercedes-Benz C300", "mercedes-benz", Some("c300")),
            ("Land Rover Defender", "land-rover", Some("defender")),
            ("Mercedes Benz", "mercedes-benz", None),
            ("Land Rover", "land-rover", None),
            ("Harley-Davidson", "harley-davidson", None),
            ("Range Rover", "land-rover", None),
            ("Ram", "ram", None),
            ("Studebaker Champion", "studebaker-champion", None),
        ] {
            assert_eq!(canonical_make(raw).as_deref(), Some(make), "{raw}");
            assert_eq!(model_glued_to_make(raw).as_deref(), model, "{raw}");
        }
        let mut vehicle = crate::read::VehicleAttributes {
            make: Some(crate::read::Attribute::new("Dodge Ram", Some(0.9))),
            ..Default::default()
        };
        canonicalize_vehicle(&mut vehicle);
        assert_eq!(
            vehicle.make.map(|make| make.value).as_deref(),
            Some("dodge")
        );
        let model = vehicle.model.unwrap();
        assert_eq!((model.value.as_str(), model.confidence), ("ram", Some(0.9)));
    }

    #[test]
    fn models_lose_a_make_alias_glued_in_front_too() {
        for (raw, make, expected) in [
            ("chevy_malibu", "chevrolet", "malibu"),
            ("Chevy Tahoe", "chevrolet", "tahoe"),
            ("VW Jetta", "volkswagen", "jetta"),
            ("Mercedes-Benz C-Class", "mercedes-benz", "c-class"),
            ("mercedes_e-class", "mercedes-benz", "e-class"),
            ("Range Rover Sport", "land-rover", "range-rover-sport"),
            ("Chevy", "chevrolet", "chevy"),
        ] {
            assert_eq!(
                canonical_model(raw, Some(make)).as_deref(),
                Some(expected),
                "{raw}"
            );
        }
    }
}
