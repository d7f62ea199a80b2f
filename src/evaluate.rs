//! `platestream evaluate`: how many hotlisted vehicle passes each matching mode catches, and how
//! many false alerts it raises, measured against the simulator's ground truth.
//!
//! The hotlist holds the simulator's hotlisted vehicles (each entry knows its vehicle) filled up
//! to the list size with realistic registrations of vehicles that never drive by, plus witness
//! partial plates. A pass is caught when an alert names the vehicle's own entry; every alert
//! naming any other entry is a false alert. Only alerts that page count: an exact plate from another
//! state is recorded but never paged.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;
use platestream_engine::hotlist::HotlistEntry;
use platestream_engine::matcher::{JurisdictionAgreement, Matcher};
use platestream_engine::normalize::normalize_read;
use platestream_engine::simulate::{random_registration, GroundTruth, Simulator, SimulatorConfig};
use platestream_engine::store::{HotlistStore, MatchModes};
use platestream_engine::{PlateRead, Timestamp};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

#[derive(Debug, Clone, Args)]
pub struct EvaluateOptions {
    /// Simulated reads to match.
    #[arg(long, default_value_t = 200_000)]
    pub reads: usize,
    /// Hotlist sizes to evaluate (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "10000,1000000")]
    pub sizes: Vec<usize>,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Distinct vehicles in the simulated city.
    #[arg(long, default_value_t = 200_000)]
    pub vehicles: usize,
    /// Share of vehicles on the hotlist.
    #[arg(long, default_value_t = 0.01)]
    pub hotlist_fraction: f64,
    /// Share of reads whose plate text is OCR-noised.
    #[arg(long, default_value_t = 0.03)]
    pub misread_rate: f64,
    /// Share of hotlisted vehicles known only from a witness's partial plate.
    #[arg(long, default_value_t = 0.02)]
    pub partial_share: f64,
    /// Witness partial plates of vehicles that never drive by, per list.
    #[arg(long, default_value_t = 200)]
    pub unrelated_partials: usize,
}

const LIST: &str = "stolen_vehicles";

/// One row of the result table.
#[derive(Debug, Clone, PartialEq)]
pub struct EvaluationRow {
    pub mode: &'static str,
    pub list_size: usize,
    pub hotlisted_passes: u64,
    pub caught: u64,
    pub misread_passes: u64,
    pub misread_caught: u64,
    pub false_alerts: u64,
    pub reads: u64,
}

impl EvaluationRow {
    pub fn caught_share(&self) -> f64 {
        self.caught as f64 / self.hotlisted_passes.max(1) as f64
    }

    pub fn false_alerts_per_100k(&self) -> f64 {
        self.false_alerts as f64 * 100_000.0 / self.reads.max(1) as f64
    }
}

fn vehicle_entry_id(vehicle_id: u32) -> String {
    format!("vehicle-{vehicle_id}")
}

/// A witness's partial plate: one character unknown, the last one uncertain.
fn witness_pattern(plate: &str, rng: &mut ChaCha8Rng) -> String {
    let mut characters: Vec<u8> = plate.as_bytes().to_vec();
    if characters.len() > 3 {
        let unknown = rng.random_range(1..characters.len() - 1);
        characters[unknown] = b'?';
    }
    characters.truncate(characters.len().saturating_sub(1));
    characters.push(b'*');
    String::from_utf8_lossy(&characters).into_owned()
}

fn hotlist(
    options: &EvaluateOptions,
    simulator: &Simulator,
    size: usize,
) -> Vec<Arc<HotlistEntry>> {
    let mut rng = ChaCha8Rng::seed_from_u64(options.seed ^ size as u64);
    let mut entries = Vec::with_capacity(size);
    for listed in simulator.hotlist() {
        let partial = rng.random_bool(options.partial_share.clamp(0.0, 1.0));
        let plate = if partial {
            witness_pattern(&listed.plate.replace(' ', ""), &mut rng)
        } else {
            listed.plate.clone()
        };
        let Ok(mut entry) = HotlistEntry::new(LIST, &plate) else {
            continue;
        };
        entry.jurisdiction = Some(listed.jurisdiction.clone());
        entry.id = vehicle_entry_id(listed.vehicle_id);
        entry.priority = listed.priority;
        entries.push(Arc::new(entry));
    }
    let mut unrelated_partials = 0;
    while entries.len() < size {
        let (plate, jurisdiction) = random_registration(&mut rng);
        let text = if unrelated_partials < options.unrelated_partials {
            unrelated_partials += 1;
            witness_pattern(&plate, &mut rng)
        } else {
            plate
        };
        let Ok(mut entry) = HotlistEntry::new(LIST, &text) else {
            continue;
        };
        entry.jurisdiction = Some(jurisdiction.to_owned());
        entry.id = format!("filler-{}", entries.len());
        entries.push(Arc::new(entry));
    }
    entries
}

fn simulated_reads(
    options: &EvaluateOptions,
    simulator: &mut Simulator,
) -> Vec<(PlateRead, GroundTruth)> {
    let start =
        Timestamp::parse_rfc3339(crate::simulate_cmd::DEFAULT_START).unwrap_or(Timestamp(0));
    (0..options.reads)
        .filter_map(|index| {
            let observed_at = Timestamp(start.millis() + index as i64 * 10);
            let (mut read, truth) = simulator.next_read(observed_at);
            // The simulator keeps plates within the normalizable range; skip one that is not.
            normalize_read(&mut read, observed_at).ok()?;
            Some((read, truth))
        })
        .collect()
}

/// Runs the evaluation: one row per list size and matching mode.
pub fn evaluate(options: &EvaluateOptions) -> Result<Vec<EvaluationRow>> {
    if options.reads == 0 {
        anyhow::bail!("--reads must be at least 1");
    }
    if options.sizes.is_empty() || options.sizes.contains(&0) {
        anyhow::bail!("--sizes must list hotlist sizes of at least 1 (e.g. 10000,1000000)");
    }
    if !(0.0..=1.0).contains(&options.partial_share) {
        anyhow::bail!(
            "--partial-share {} is not a share from 0 to 1",
            options.partial_share
        );
    }
    let config = SimulatorConfig {
        seed: options.seed,
        vehicles: options.vehicles,
        hotlist_fraction: options.hotlist_fraction,
        misread_rate: options.misread_rate,
        ..SimulatorConfig::default()
    };
    config.check().map_err(anyhow::Error::msg)?;
    let mut simulator = Simulator::new(config);
    let reads = simulated_reads(options, &mut simulator);
    let mut rows = Vec::new();
    for &size in &options.sizes {
        let entries = hotlist(options, &simulator, size);
        if entries.len() > size {
            eprintln!(
                "--sizes {size}: the city's {} hotlisted vehicles alone are more; the list holds \
                 them all ({} entries), and its row says so",
                simulator.hotlist().len(),
                entries.len()
            );
        }
        for (mode, modes) in [
            ("exact", MatchModes::EXACT_ONLY),
            ("exact+misread", MatchModes::EXACT_AND_MISREAD),
            ("full (exact+misread+partial)", MatchModes::FULL),
        ] {
            let started = Instant::now();
            let store = HotlistStore::new(modes);
            store
                .replace_list(LIST, entries.clone())
                .context("building the evaluation hotlist")?;
            tracing::info!(size, mode, elapsed = ?started.elapsed(), "hotlist indexed");
            let mut row = EvaluationRow {
                mode,
                // What was matched against: never fewer than the hotlisted vehicles.
                list_size: entries.len(),
                hotlisted_passes: 0,
                caught: 0,
                misread_passes: 0,
                misread_caught: 0,
                false_alerts: 0,
                reads: reads.len() as u64,
            };
            let mut matches = Vec::new();
            for (read, truth) in &reads {
                matches.clear();
                store.match_read(read, read.observed_at, &mut matches);
                // An exact plate from another state is recorded but never paged: it is neither a
                // catch nor a false alert an officer would act on.
                matches.retain(|hit| hit.jurisdiction != JurisdictionAgreement::Differs);
                let own_entry = vehicle_entry_id(truth.vehicle_id);
                let caught = truth.hotlisted && matches.iter().any(|hit| hit.entry.id == own_entry);
                row.false_alerts += matches
                    .iter()
                    .filter(|hit| !truth.hotlisted || hit.entry.id != own_entry)
                    .count() as u64;
                if truth.hotlisted {
                    row.hotlisted_passes += 1;
                    row.caught += u64::from(caught);
                    if truth.misread {
                        row.misread_passes += 1;
                        row.misread_caught += u64::from(caught);
                    }
                }
            }
            rows.push(row);
        }
    }
    Ok(rows)
}

/// The rows as a markdown table.
pub fn markdown_table(rows: &[EvaluationRow]) -> String {
    let mut table = String::from(
        "| list size | matching | hotlisted passes caught | of them misread by OCR, caught | false alerts per 100k reads |\n\
         | ---: | --- | ---: | ---: | ---: |\n",
    );
    for row in rows {
        // With no hotlisted pass in the reads there is no share to give, and 0 % would read as
        // "caught none".
        let share = if row.hotlisted_passes == 0 {
            "n/a".to_owned()
        } else {
            format!("{:.1} %", row.caught_share() * 100.0)
        };
        table.push_str(&format!(
            "| {} | {} | {share} ({}/{}) | {}/{} | {:.1} |\n",
            row.list_size,
            row.mode,
            row.caught,
            row.hotlisted_passes,
            row.misread_caught,
            row.misread_passes,
            row.false_alerts_per_100k(),
        ));
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn misread_matching_catches_more_and_partial_matching_catches_witness_plates() {
        let options = EvaluateOptions {
            reads: 30_000,
            sizes: vec![5_000],
            seed: 7,
            vehicles: 20_000,
            hotlist_fraction: 0.05,
            misread_rate: 0.1,
            partial_share: 0.1,
            unrelated_partials: 20,
        };
        let rows = evaluate(&options).unwrap();
        assert_eq!(rows.len(), 3);
        let (exact, misread, full) = (&rows[0], &rows[1], &rows[2]);
        assert!(exact.hotlisted_passes > 0);
        assert_eq!(exact.hotlisted_passes, full.hotlisted_passes);
        assert!(misread.caught > exact.caught, "{rows:?}");
        assert!(full.caught > misread.caught, "{rows:?}");
        assert!(exact.misread_caught < misread.misread_caught);
        let table = markdown_table(&rows);
        assert_eq!(table.lines().count(), 5);
        assert!(table.contains("| 5000 | exact |"), "{table}");
    }

    #[test]
    fn a_run_without_hotlisted_passes_gives_no_share() {
        let row = EvaluationRow {
            mode: "exact",
            list_size: 10,
            hotlisted_passes: 0,
            caught: 0,
            misread_passes: 0,
            misread_caught: 0,
            false_alerts: 0,
            reads: 10,
        };
        let table = markdown_table(&[row]);
        assert!(table.contains("| n/a (0/0) |"), "{table}");
    }
}
