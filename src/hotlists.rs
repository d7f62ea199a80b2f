//! Loading the hotlist files named on the command line or in the configuration.

use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use platestream_engine::hotlist::{load_hotlist_csv, HotlistEntry};

/// Rows refused in a file are reported (the first few in full) and skipped; a file that cannot be
/// read at all is an error.
pub fn load_hotlist_files(paths: &[PathBuf]) -> Result<Vec<Arc<HotlistEntry>>> {
    let mut entries = Vec::new();
    for path in paths {
        let file =
            File::open(path).with_context(|| format!("opening hotlist {}", path.display()))?;
        let name = path.display().to_string();
        let loaded = load_hotlist_csv(&name, std::io::BufReader::new(file))?;
        for rejected in loaded.rejected.iter().take(20) {
            tracing::warn!(file = %name, line = rejected.line, reason = %rejected.reason, "hotlist row refused");
        }
        if loaded.rejected.len() > 20 {
            tracing::warn!(file = %name, more = loaded.rejected.len() - 20, "more hotlist rows refused");
        }
        tracing::info!(file = %name, entries = loaded.entries.len(), refused = loaded.rejected.len(), "hotlist loaded");
        entries.extend(loaded.entries);
    }
    Ok(entries)
}
