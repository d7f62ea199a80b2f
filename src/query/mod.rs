//! Investigations over the Parquet archive: where the archive is, and the values investigators
//! type (times, windows, distances, places). The DataFusion query commands build on this.

pub mod args;

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::config::Config;

/// Where `compact` (and the queries) find the archive when neither --archive nor --config says.
pub const DEFAULT_ARCHIVE_DIR: &str = "platestream-data";

/// The archive directory: --archive, else `[archive] dir` of --config, else ./platestream-data.
pub fn archive_dir(archive: Option<&Path>, config: Option<&Path>) -> Result<PathBuf> {
    if let Some(dir) = archive {
        return Ok(dir.to_owned());
    }
    if let Some(config) = config {
        return Ok(Config::load(config)?.archive.dir);
    }
    Ok(PathBuf::from(DEFAULT_ARCHIVE_DIR))
}
