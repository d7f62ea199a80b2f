//! The peer: `benches/peers/city_pipeline.py`, the Python pipeline a city data team would write
//! (confluent-kafka + pyarrow), draining the same topic with a fresh group in the same run.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use platestream_connectors::kafka::KafkaSettings;

use super::engine_process::process_memory;
use super::workload::{progress_bar, Workload};
use super::BenchOptions;

const SCRIPT: &str = include_str!("../../benches/peers/city_pipeline.py");
/// Where `scripts/ensure-bench-peer` puts its virtual environment, below the tools directory;
/// keep the two in step.
const VENV: &str = "bench-peer-ck2.16.1-pa26.0.1";

#[derive(Debug, Clone)]
pub enum PeerOutcome {
    Skipped(String),
    Ran(PeerRun),
}

#[derive(Debug, Clone, Default)]
pub struct PeerRun {
    pub messages: u64,
    pub reads: u64,
    pub rows_written: u64,
    pub alerts: u64,
    pub dead: u64,
    pub active: Duration,
    pub peak_rss_kib: u64,
    pub versions: String,
}

impl PeerRun {
    pub fn rate(&self) -> f64 {
        self.messages as f64 / self.active.as_secs_f64().max(1e-9)
    }
}

fn default_python() -> Option<PathBuf> {
    let tools = crate::broker::tansu_install_root().parent()?.to_owned();
    let python = tools.join(VENV).join("bin").join("python");
    python.is_file().then_some(python)
}

pub fn run(
    options: &BenchOptions,
    settings: &KafkaSettings,
    topic: &str,
    workload: &Workload,
    work_dir: &Path,
    expected: u64,
) -> Result<PeerOutcome> {
    let Some(python) = options.peer_python.clone().or_else(default_python) else {
        return Ok(PeerOutcome::Skipped(
            "no Python with confluent-kafka and pyarrow: run scripts/ensure-bench-peer".to_owned(),
        ));
    };
    let script = work_dir.join("city_pipeline.py");
    std::fs::write(&script, SCRIPT).with_context(|| format!("writing {}", script.display()))?;
    let log_path = work_dir.join("peer.log");
    let mut child = Command::new(&python)
        .arg(&script)
        .args(["--brokers", &settings.bootstrap_servers])
        .args(["--topic", topic])
        .args(["--group", "bench-peer"])
        .arg("--hotlist")
        .arg(&workload.hotlist_file)
        .arg("--out")
        .arg(work_dir.join("peer-archive"))
        .args(["--expect", &expected.to_string()])
        .args(["--alerts-topic", "bench-peer-alerts"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log_path)?)
        .spawn()
        .with_context(|| format!("starting the peer with {}", python.display()))?;
    let bar = progress_bar(expected, "peer: consuming (time)");
    let started = Instant::now();
    let mut peak_kib = 0;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if let Some(memory) = process_memory(child.id()) {
            peak_kib = peak_kib.max(memory.peak_kib);
        }
        bar.tick();
        if started.elapsed() > Duration::from_secs(1800) {
            let _ = child.kill();
            bail!("the peer did not finish within 30 minutes");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    bar.finish_and_clear();
    let mut stdout = String::new();
    if let Some(mut out) = child.stdout.take() {
        std::io::Read::read_to_string(&mut out, &mut stdout)?;
    }
    if !status.success() {
        bail!(
            "the peer failed ({status}); its log: {}\n{}",
            log_path.display(),
            std::fs::read_to_string(&log_path).unwrap_or_default()
        );
    }
    let summary: serde_json::Value = stdout
        .lines()
        .rev()
        .find_map(|line| serde_json::from_str(line).ok())
        .context("the peer printed no summary")?;
    let number = |name: &str| summary[name].as_u64().unwrap_or(0);
    let versions = summary["versions"]
        .as_object()
        .map(|versions| {
            versions
                .iter()
                .map(|(name, version)| format!("{name} {}", version.as_str().unwrap_or("?")))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default();
    Ok(PeerOutcome::Ran(PeerRun {
        messages: number("messages"),
        reads: number("reads"),
        rows_written: number("rows_written"),
        alerts: number("alerts"),
        dead: number("dead"),
        active: Duration::from_secs_f64(summary["active_seconds"].as_f64().unwrap_or(0.0)),
        peak_rss_kib: peak_kib,
        versions,
    }))
}
