//! Loading the hotlist files named on the command line or in the configuration.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use platestream_engine::alert_policy::{AlertPolicy, ListPolicy};
use platestream_engine::archive::recent_pages;
use platestream_engine::hotlist::{load_hotlist_csv, HotlistEntry, LoadedHotlist};
use platestream_engine::ncic::load_ncic_extract;
use platestream_engine::store::{HotlistStore, MatchModes};

/// Rows refused in a file are reported (the first few in full) and skipped; a file that cannot be
/// read at all is an error.
pub fn load_hotlist_files(paths: &[PathBuf]) -> Result<Vec<Arc<HotlistEntry>>> {
    let mut entries = Vec::new();
    for path in paths {
        entries.extend(load_csv_file(path)?.entries);
    }
    Ok(entries)
}

/// Loads NCIC-style extracts, detecting each file's layout from its first line.
pub fn load_ncic_files(paths: &[PathBuf]) -> Result<Vec<Arc<HotlistEntry>>> {
    let mut entries = Vec::new();
    for path in paths {
        entries.extend(load_ncic_file(path)?.entries);
    }
    Ok(entries)
}

/// One hotlist CSV file, its refused rows reported.
pub fn load_csv_file(path: &Path) -> Result<LoadedHotlist> {
    let file = File::open(path).with_context(|| format!("opening hotlist {}", path.display()))?;
    let name = path.display().to_string();
    let loaded = load_hotlist_csv(&name, std::io::BufReader::new(file))?;
    report_loaded(&name, &loaded);
    Ok(loaded)
}

/// One NCIC-style extract, its refused lines reported.
pub fn load_ncic_file(path: &Path) -> Result<LoadedHotlist> {
    let file =
        File::open(path).with_context(|| format!("opening NCIC extract {}", path.display()))?;
    let name = path.display().to_string();
    let loaded = load_ncic_extract(&name, std::io::BufReader::new(file), None)?;
    report_loaded(&name, &loaded);
    Ok(loaded)
}

/// The live store and alert policy for these entries: full matching, lists under the given
/// policies (the default policy for lists not named).
pub fn build_store(
    entries: Vec<Arc<HotlistEntry>>,
    policies: &[ListPolicy],
    suppression_window_secs: u64,
) -> (Arc<HotlistStore>, Arc<AlertPolicy>) {
    let store = HotlistStore::from_entries(MatchModes::FULL, policies, entries);
    (
        Arc::new(store),
        Arc::new(AlertPolicy::new(suppression_window_secs)),
    )
}

/// How long before the longest suppression window a restarted engine still looks for the pages it
/// raised: the reads it catches up on after a restart were observed while it was down, and a
/// page within the window before them must still suppress their hits.
const RESTART_CATCH_UP_SECS: u64 = 3600;

/// Feeds `policy` the alerts that paged officers within the longest suppression window (plus
/// [`RESTART_CATCH_UP_SECS`]) before now, read back from the archive, so that restarting the
/// engine does not page officers again about a vehicle they were just paged about.
pub fn remember_recent_pages(
    archive_dir: &Path,
    policy: &AlertPolicy,
    longest_window_secs: u64,
) -> Result<()> {
    let now = platestream_engine::read::Timestamp::now().millis();
    let lookback_ms = i64::try_from(
        longest_window_secs
            .saturating_add(RESTART_CATCH_UP_SECS)
            .saturating_mul(1000),
    )
    .unwrap_or(i64::MAX);
    // A reader whose clock runs ahead files its reads (and their pages) in later hours.
    let until = now.saturating_add(platestream_engine::normalize::MAX_CLOCK_AHEAD_MS);
    let report = recent_pages(
        archive_dir,
        now.saturating_sub(lookback_ms),
        until,
        |page| policy.remember_paged(page),
    )
    .with_context(|| {
        format!(
            "reading the archive's recent alerts in {}",
            archive_dir.display()
        )
    })?;
    for error in &report.unreadable_files {
        tracing::warn!(%error, "archived alerts unreadable; their vehicles may be paged again");
    }
    if report.unreadable_rows > 0 {
        tracing::warn!(
            rows = report.unreadable_rows,
            "archived alerts not understood; their vehicles may be paged again"
        );
    }
    tracing::info!(
        pages = report.pages,
        files = report.files_read,
        lookback_secs = lookback_ms / 1000,
        "suppression windows resumed from the archive's recent pages"
    );
    Ok(())
}

fn report_loaded(name: &str, loaded: &LoadedHotlist) {
    {
        for rejected in loaded.rejected.iter().take(20) {
            tracing::warn!(file = %name, line = rejected.line, reason = %rejected.reason, "hotlist row refused");
        }
        if loaded.rejected.len() > 20 {
            tracing::warn!(file = %name, more = loaded.rejected.len() - 20, "more hotlist rows refused");
        }
        tracing::info!(file = %name, entries = loaded.entries.len(), refused = loaded.rejected.len(), "hotlist loaded");
    }
}
