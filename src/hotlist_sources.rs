//! Hotlist files kept current while the engine runs: each configured CSV file and NCIC extract is
//! checked every `hotlists.reload_check_secs` (modification time and size) and, when it changed
//! (or every `hotlists.reload_every_secs`, for file systems whose times cannot be trusted),
//! loaded again and swapped in list by list with one atomic replace each.
//!
//! A list is owned by the files that hold it: on reload, each list the file holds (or held
//! before) is rebuilt from every file's last good load. A file that vanished, cannot be read,
//! or yields no entry at all (every row refused, or a header alone: a truncated export) keeps its
//! last good entries, and the error is logged: a bad export never empties a list. Upserts from the live updates topic are laid over
//! each rebuilt list again (`LiveUpdates::replace_list`), so they win over the file for their id;
//! lists only the topic feeds are never touched here.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result};
use metrics::{counter, gauge};
use platestream_connectors::kafka::LiveUpdates;
use platestream_engine::hotlist::{HotlistEntry, LoadedHotlist};
use platestream_engine::store::HotlistStore;

use crate::hotlists::{load_csv_file, load_ncic_file, why_no_entries};

/// How a hotlist file is parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// The hotlist CSV (`schemas/hotlist.md`).
    Csv,
    /// An NCIC-style extract, fixed-width or comma-delimited.
    Ncic,
}

impl FileKind {
    fn load(self, path: &Path) -> Result<LoadedHotlist> {
        match self {
            Self::Csv => load_csv_file(path),
            Self::Ncic => load_ncic_file(path),
        }
    }
}

/// What identifies one version of a file without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fingerprint {
    modified: Option<SystemTime>,
    len: u64,
}

fn fingerprint(path: &Path) -> Option<Fingerprint> {
    let metadata = std::fs::metadata(path).ok()?;
    Some(Fingerprint {
        modified: metadata.modified().ok(),
        len: metadata.len(),
    })
}

struct WatchedFile {
    path: PathBuf,
    kind: FileKind,
    /// The version last looked at (loaded, or refused as broken): unchanged means nothing to do.
    seen: Option<Fingerprint>,
    /// The entries of the last good load.
    entries: Vec<Arc<HotlistEntry>>,
}

impl WatchedFile {
    fn lists(&self) -> BTreeSet<String> {
        self.entries
            .iter()
            .map(|entry| entry.list.clone())
            .collect()
    }
}

/// The configured hotlist files and what each held at its last good load.
pub struct HotlistFiles {
    files: Vec<WatchedFile>,
}

impl HotlistFiles {
    /// Loads every file once. At start a file that cannot be read is an error: the operator is
    /// there to fix the path.
    pub fn load(csv_files: &[PathBuf], ncic_files: &[PathBuf]) -> Result<Self> {
        let mut files = Vec::new();
        let paths = csv_files
            .iter()
            .map(|path| (path, FileKind::Csv))
            .chain(ncic_files.iter().map(|path| (path, FileKind::Ncic)));
        for (path, kind) in paths {
            let seen = fingerprint(path);
            let loaded = kind.load(path)?;
            files.push(WatchedFile {
                path: path.clone(),
                kind,
                seen,
                entries: loaded.entries,
            });
        }
        Ok(Self { files })
    }

    /// Every entry of every file.
    pub fn entries(&self) -> Vec<Arc<HotlistEntry>> {
        self.merged_entries(None)
    }

    /// The entries of every file (of one list, when given). An id of a list that two files both
    /// hold is taken from the later file in the configuration, as a later row wins within one
    /// file: kept twice, both would match and page for one entry, and a live delete of the id
    /// would leave one behind.
    fn merged_entries(&self, list: Option<&str>) -> Vec<Arc<HotlistEntry>> {
        let mut position_of: HashMap<(&str, &str), usize> = HashMap::new();
        let mut merged: Vec<(usize, &Arc<HotlistEntry>)> = Vec::new();
        // (earlier file, later file) → (ids both hold, one of them).
        let mut repeated: BTreeMap<(usize, usize), (usize, &str)> = BTreeMap::new();
        for (file_index, file) in self.files.iter().enumerate() {
            let entries = file
                .entries
                .iter()
                .filter(|entry| list.is_none_or(|list| entry.list == list));
            for entry in entries {
                match position_of.entry((entry.list.as_str(), entry.id.as_str())) {
                    Entry::Occupied(occupied) => {
                        let slot = &mut merged[*occupied.get()];
                        let pair = repeated
                            .entry((slot.0, file_index))
                            .or_insert((0, &entry.id));
                        pair.0 += 1;
                        *slot = (file_index, entry);
                    }
                    Entry::Vacant(vacant) => {
                        vacant.insert(merged.len());
                        merged.push((file_index, entry));
                    }
                }
            }
        }
        for ((earlier, later), (ids, example)) in repeated {
            tracing::warn!(
                earlier = %self.files[earlier].path.display(),
                later = %self.files[later].path.display(),
                ids,
                example,
                "hotlist files hold the same ids of a list; the later file's entries are kept"
            );
        }
        merged
            .into_iter()
            .map(|(_, entry)| Arc::clone(entry))
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }
}

/// What one check did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReloadReport {
    pub reloaded: Vec<PathBuf>,
    /// Files that vanished or could not be loaded, with the reason; their lists were kept.
    pub failed: Vec<(PathBuf, String)>,
    /// Lists replaced in the store.
    pub lists_replaced: Vec<String>,
}

/// How often files are looked at and forcibly reloaded.
#[derive(Debug, Clone, Copy)]
pub struct ReloadIntervals {
    pub check: Duration,
    /// Reload even unchanged files this often; `None`: only on change.
    pub every: Option<Duration>,
}

/// Reloads changed hotlist files into the store.
pub struct FileReloader {
    files: HotlistFiles,
    store: Arc<HotlistStore>,
    live: Arc<LiveUpdates>,
    /// A changed file is loaded only once it has stayed the same this long: a file being
    /// written in place would otherwise load half-written.
    settle: Duration,
}

impl FileReloader {
    pub fn new(files: HotlistFiles, store: Arc<HotlistStore>, live: Arc<LiveUpdates>) -> Self {
        Self {
            files,
            store,
            live,
            settle: Duration::from_millis(300),
        }
    }

    /// Looks at every file and reloads those that changed (all of them when `force`).
    pub fn check(&mut self, force: bool) -> ReloadReport {
        let mut report = ReloadReport::default();
        let mut affected: BTreeSet<String> = BTreeSet::new();
        for file in &mut self.files.files {
            let Some(now_seen) = fingerprint(&file.path) else {
                if file.seen.take().is_some() {
                    let reason = "the file vanished; its lists keep their entries".to_owned();
                    tracing::error!(file = %file.path.display(), %reason, "hotlist reload failed");
                    counter!("platestream_hotlist_file_reloads_total", "outcome" => "failed")
                        .increment(1);
                    report.failed.push((file.path.clone(), reason));
                }
                continue;
            };
            let changed = file.seen != Some(now_seen);
            if !changed && !force {
                continue;
            }
            if changed {
                std::thread::sleep(self.settle);
                if fingerprint(&file.path) != Some(now_seen) {
                    // Still being written: the next check looks again.
                    continue;
                }
            }
            file.seen = Some(now_seen);
            let loaded = match file.kind.load(&file.path) {
                Ok(loaded) => match why_no_entries(&loaded) {
                    Some(reason) => Err(anyhow::anyhow!(reason)),
                    None => Ok(loaded),
                },
                other => other,
            };
            match loaded {
                Ok(loaded) => {
                    affected.extend(file.lists());
                    file.entries = loaded.entries;
                    affected.extend(file.lists());
                    counter!("platestream_hotlist_file_reloads_total", "outcome" => "reloaded")
                        .increment(1);
                    report.reloaded.push(file.path.clone());
                }
                Err(error) => {
                    let reason = format!("{error:#}; its lists keep their entries");
                    tracing::error!(file = %file.path.display(), %reason, "hotlist reload failed");
                    counter!("platestream_hotlist_file_reloads_total", "outcome" => "failed")
                        .increment(1);
                    report.failed.push((file.path.clone(), reason));
                }
            }
        }
        for list in affected {
            let entries = self.files.merged_entries(Some(&list));
            let count = entries.len();
            match self.live.replace_list(&self.store, &list, entries) {
                Ok(replaced) => {
                    for id in &replaced.refused {
                        tracing::warn!(list, id, "hotlist entry refused by the index");
                    }
                    gauge!("platestream_hotlist_entries", "list" => list.clone())
                        .set(self.store.list_len(&list) as f64);
                    tracing::info!(list, entries = count, "hotlist list replaced");
                    report.lists_replaced.push(list);
                }
                // Entries are grouped by their own list above; this cannot happen.
                Err(error) => tracing::error!(list, %error, "hotlist list not replaced"),
            }
        }
        report
    }

    /// Checks on `intervals` until `stop` is set.
    pub fn spawn(
        mut self,
        intervals: ReloadIntervals,
        stop: Arc<AtomicBool>,
    ) -> Result<JoinHandle<()>> {
        std::thread::Builder::new()
            .name("hotlist-files".to_owned())
            .spawn(move || {
                let step = Duration::from_millis(100).min(intervals.check);
                let mut last_check = Instant::now();
                let mut last_forced = Instant::now();
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(step);
                    if last_check.elapsed() < intervals.check {
                        continue;
                    }
                    let force = intervals
                        .every
                        .is_some_and(|every| last_forced.elapsed() >= every);
                    if force {
                        last_forced = Instant::now();
                    }
                    self.check(force);
                    last_check = Instant::now();
                }
            })
            .context("starting the hotlist file watcher")
    }
}
