//! Loading the hotlist files named on the command line or in the configuration.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use platestream_engine::alert_policy::{AlertPolicy, AlertRoute, ListPolicy};
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
/// What to say of each `[[hotlists.lists]]` policy whose name no loaded list has. A mistyped name
/// leaves the real list on the defaults, and the defaults route to field officers: a covert list
/// spelled otherwise in the files would page them. A list fed only by hand (the updates topic)
/// may not exist yet, so this is a warning, not an error.
pub fn policies_of_no_list(policies: &[ListPolicy], lists: &[String]) -> Vec<String> {
    policies
        .iter()
        .filter(|policy| !lists.contains(&policy.name))
        .map(|policy| {
            let known = if lists.is_empty() {
                "none".to_owned()
            } else {
                lists.join(", ")
            };
            let consequence = if policy.route == AlertRoute::Covert {
                "; if the files spell it otherwise, that list's hits go to field officers, not \
                 the covert topic"
            } else {
                ""
            };
            format!(
                "[[hotlists.lists]] name = {:?} names no loaded list (loaded: {known}): its policy \
                 applies to nothing until entries of that list arrive{consequence}",
                policy.name
            )
        })
        .collect()
}

/// A list name folded the way people mistype one: case, and `-` or spaces for `_`.
fn folded_list_name(name: &str) -> String {
    name.trim()
        .chars()
        .map(|c| match c {
            '-' | ' ' => '_',
            other => other.to_ascii_lowercase(),
        })
        .collect()
}

/// The policy a list name almost spells (`Covert_Watch`, `covert-watch` for `covert_watch`):
/// names are exact, so its entries get the default policy instead.
pub fn policy_almost_named<'a>(policies: &'a [ListPolicy], list: &str) -> Option<&'a ListPolicy> {
    if policies.iter().any(|policy| policy.name == list) {
        return None;
    }
    let folded = folded_list_name(list);
    policies
        .iter()
        .find(|policy| folded_list_name(&policy.name) == folded)
}

/// A warning for each of `lists` that almost spells a policy's name.
pub fn lists_almost_named_as_a_policy(policies: &[ListPolicy], lists: &[String]) -> Vec<String> {
    lists
        .iter()
        .filter_map(|list| {
            let policy = policy_almost_named(policies, list)?;
            let consequence = if policy.route == AlertRoute::Covert {
                ": its hits go to field officers, not the covert topic"
            } else {
                ""
            };
            Some(format!(
                "list {list:?} is not [[hotlists.lists]] name = {:?} (list names are exact), so \
                 its entries get the default policy{consequence}",
                policy.name
            ))
        })
        .collect()
}

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

/// Why a file that loaded yields no entry, which is never what an agency meant to send: a reload
/// treats it as a file that cannot be loaded (its lists keep their entries) and `hotlist check`
/// fails it. `None` when it has entries.
pub fn why_no_entries(loaded: &LoadedHotlist) -> Option<String> {
    if !loaded.entries.is_empty() {
        return None;
    }
    Some(if loaded.rejected.is_empty() {
        "it holds no entries (a header alone: a truncated export?)".to_owned()
    } else {
        format!(
            "it holds no entries: every row was refused ({} rows)",
            loaded.rejected.len()
        )
    })
}

fn report_loaded(name: &str, loaded: &LoadedHotlist) {
    {
        for rejected in loaded.rejected.iter().take(20) {
            tracing::warn!(file = %name, line = rejected.line, reason = %rejected.reason, "hotlist row refused");
        }
        if loaded.rejected.len() > 20 {
            tracing::warn!(file = %name, more = loaded.rejected.len() - 20, "more hotlist rows refused");
        }
        // `hotlist check` says the same; an engine or `replay` given such a file must too, since
        // a misspelt `model` column leaves a BOLO matching every model of its make.
        for column in &loaded.unknown_columns {
            if let Some(known) = crate::hotlist_cmd::misspelt_field(column) {
                tracing::warn!(file = %name, column = %column, did_you_mean = known, "hotlist column is not an entry field: its values are kept as attributes for the officer and do not narrow, route or expire any match");
            }
        }
        tracing::info!(file = %name, entries = loaded.entries.len(), refused = loaded.rejected.len(), "hotlist loaded");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_policy_naming_no_loaded_list_is_reported_and_a_covert_one_says_what_is_at_stake() {
        let lists = vec!["stolen_vehicles".to_owned(), "gang_watch".to_owned()];
        let mut covert = ListPolicy::named("gang_wacth");
        covert.route = AlertRoute::Covert;
        let policies = [
            ListPolicy::named("stolen_vehicles"),
            covert,
            ListPolicy::named("amber_alert"),
        ];
        let said = policies_of_no_list(&policies, &lists);
        assert_eq!(said.len(), 2, "{said:?}");
        assert!(said[0].contains("\"gang_wacth\""), "{}", said[0]);
        assert!(said[0].contains("field officers"), "{}", said[0]);
        assert!(
            said[0].contains("stolen_vehicles, gang_watch"),
            "{}",
            said[0]
        );
        assert!(said[1].contains("\"amber_alert\""), "{}", said[1]);
        assert!(!said[1].contains("field officers"), "{}", said[1]);
    }

    #[test]
    fn a_list_spelt_like_a_covert_policy_but_not_exactly_is_named_with_what_is_at_stake() {
        let mut covert = ListPolicy::named("covert_watch");
        covert.route = AlertRoute::Covert;
        let policies = [covert, ListPolicy::named("stolen_vehicles")];
        let lists: Vec<String> = ["covert_watch", "Covert_Watch", "covert-watch", "gang_watch"]
            .map(str::to_owned)
            .to_vec();
        let said = lists_almost_named_as_a_policy(&policies, &lists);
        assert_eq!(said.len(), 2, "{said:?}");
        assert!(said[0].starts_with("list \"Covert_Watch\""), "{}", said[0]);
        assert!(said[1].starts_with("list \"covert-watch\""), "{}", said[1]);
        assert!(said.iter().all(|s| s.contains("field officers")));
        assert!(
            lists_almost_named_as_a_policy(&policies, &["Stolen_Vehicles".to_owned()])[0]
                .ends_with("default policy")
        );
    }
}
