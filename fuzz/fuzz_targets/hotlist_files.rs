//! A hotlist file as an agency supplies it: the CSV header and rows, or an NCIC-style extract,
//! and a partial-plate pattern. Every row loads or is refused with its line and reason; never a
//! panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use platestream_engine::hotlist::load_hotlist_csv;
use platestream_engine::ncic::load_ncic_extract;
use platestream_engine::pattern::PlatePattern;

fuzz_target!(|bytes: &[u8]| {
    if let Ok(loaded) = load_hotlist_csv("fuzz", bytes) {
        for rejected in &loaded.rejected {
            assert!(!rejected.reason.is_empty());
        }
    }
    if let Ok(loaded) = load_ncic_extract("fuzz", bytes, None) {
        for rejected in &loaded.rejected {
            assert!(!rejected.reason.is_empty());
        }
    }
    if let Ok(text) = std::str::from_utf8(bytes) {
        if let Ok(pattern) = PlatePattern::parse(text) {
            let _ = pattern.matches(b"ABC1234");
        }
    }
});
