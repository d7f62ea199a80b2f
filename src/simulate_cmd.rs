//! `platestream simulate`: simulated reader traffic to an NDJSON file or a Kafka topic.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use platestream_engine::simulate::{Simulator, SimulatorConfig};
use platestream_engine::Timestamp;

pub struct SimulateOptions {
    pub count: u64,
    pub rate: f64,
    pub start: Timestamp,
    pub config: SimulatorConfig,
    pub hotlist_out: Option<PathBuf>,
    pub truth_out: Option<PathBuf>,
    /// Where to write the simulated readers and nearby cameras as a registry CSV.
    pub registry_out: Option<PathBuf>,
    /// BOLO hotlist (CSV) for the first `bolo_count` hotlisted vehicles.
    pub bolo_out: Option<PathBuf>,
    pub bolo_count: usize,
}

/// Writes the simulated city's hotlist, registry and BOLO list where asked, before any read.
/// An empty hotlist is refused: `hotlist check` and the engine refuse a file with no entries.
pub fn write_side_files(
    simulator: &Simulator,
    hotlist_out: Option<&Path>,
    registry_out: Option<&Path>,
    bolo_out: Option<&Path>,
    bolo_count: usize,
) -> Result<()> {
    if let Some(path) = hotlist_out {
        if simulator.hotlist_len() == 0 {
            anyhow::bail!(
                "no simulated vehicle is hotlisted (--hotlist-fraction {} of --vehicles {}), so \
                 the hotlist for --hotlist-out {} would be empty; raise --hotlist-fraction or \
                 leave out --hotlist-out",
                simulator.config().hotlist_fraction,
                simulator.config().vehicles,
                path.display()
            );
        }
        let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
        simulator
            .write_hotlist_csv(file)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = registry_out {
        let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
        platestream_engine::registry::write_csv(
            &platestream_engine::registry::simulated_registry(simulator.readers()),
            file,
        )
        .with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = bolo_out {
        let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
        simulator
            .write_bolo_csv(file, bolo_count)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// Writes `count` messages, one per line, observed at a simulated clock that starts at `start`
/// and advances `1/rate` seconds per read. Returns the number of hotlisted-vehicle reads.
pub fn simulate_to_writer(options: &SimulateOptions, out: &mut dyn Write) -> Result<u64> {
    let mut simulator = Simulator::new(options.config.clone());
    write_side_files(
        &simulator,
        options.hotlist_out.as_deref(),
        options.registry_out.as_deref(),
        options.bolo_out.as_deref(),
        options.bolo_count,
    )?;
    let mut truth_out = match &options.truth_out {
        Some(path) => Some(BufWriter::new(
            File::create(path).with_context(|| format!("creating {}", path.display()))?,
        )),
        None => None,
    };
    let step_ms = 1000.0 / options.rate.max(1e-3);
    let mut hotlisted = 0;
    for index in 0..options.count {
        let observed_at = Timestamp(options.start.millis() + (index as f64 * step_ms) as i64);
        let message = simulator.next_message(observed_at);
        out.write_all(&message.payload)?;
        out.write_all(b"\n")?;
        if let Some(truth) = &message.truth {
            hotlisted += u64::from(truth.hotlisted);
            if let Some(truth_out) = truth_out.as_mut() {
                let looks = simulator.vehicle_looks(truth.vehicle_id);
                writeln!(
                    truth_out,
                    "{}",
                    serde_json::json!({
                        "line": index + 1,
                        "vehicle_id": truth.vehicle_id,
                        "true_plate": truth.true_plate,
                        "true_jurisdiction": truth.true_jurisdiction,
                        "hotlisted": truth.hotlisted,
                        "misread": truth.misread,
                        "make": looks.map(|looks| looks.make),
                        "model": looks.map(|looks| looks.model),
                        "color": looks.map(|looks| looks.color),
                        "body_type": looks.map(|looks| looks.body_type),
                    })
                )?;
            }
        }
    }
    if let Some(mut truth_out) = truth_out {
        truth_out.flush()?;
    }
    Ok(hotlisted)
}

/// A fixed default start keeps files byte-identical for the same `--seed`.
pub const DEFAULT_START: &str = "2026-11-24T12:00:00Z";
