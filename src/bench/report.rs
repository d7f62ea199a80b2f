//! The bench's results as a markdown table, with the machine, the versions and the command line
//! that produced them.

use std::fmt::Write as _;

use super::ceiling::DrainOutcome;
use super::engine_process::EngineOutcome;
use super::latency::{LatencyOutcome, Percentiles};
use super::offline::OfflineOutcome;
use super::peer::PeerOutcome;
use super::workload::WorkloadSummary;
use super::BenchOptions;

#[derive(Debug, Clone)]
pub struct Results {
    pub options: BenchOptions,
    pub command_line: String,
    pub started_at: String,
    pub load_before: String,
    pub load_after: String,
    pub tansu_version: String,
    pub workload: Option<WorkloadSummary>,
    pub produced: u64,
    pub ceiling: Option<DrainOutcome>,
    pub engine: Option<EngineOutcome>,
    pub offline: Option<OfflineOutcome>,
    pub latency: Option<LatencyOutcome>,
    pub slow_sink: Option<EngineOutcome>,
    pub peer: PeerOutcome,
}

impl Results {
    pub fn new(options: &BenchOptions) -> Self {
        Self {
            options: options.clone(),
            command_line: std::env::args().collect::<Vec<_>>().join(" "),
            started_at: chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
            load_before: load_average(),
            load_after: String::new(),
            tansu_version: String::new(),
            workload: None,
            produced: 0,
            ceiling: None,
            engine: None,
            offline: None,
            latency: None,
            slow_sink: None,
            peer: PeerOutcome::Skipped("not run".to_owned()),
        }
    }

    pub fn finish(&mut self) {
        self.load_after = load_average();
    }

    /// Every count the run must agree on: what was produced was consumed by each consumer.
    pub fn count_mismatches(&self) -> Vec<String> {
        let mut mismatches = Vec::new();
        let produced = self.produced;
        let mut check = |what: &str, consumed: u64| {
            if consumed != produced {
                mismatches.push(format!("{what} consumed {consumed} of {produced} reads"));
            }
        };
        if let Some(ceiling) = &self.ceiling {
            check("the ceiling consumer", ceiling.messages);
        }
        if let Some(engine) = &self.engine {
            check("platestream run", engine.messages);
        }
        if let Some(offline) = &self.offline {
            check("the offline floor", offline.lines);
            for replay in &offline.replays {
                check(
                    &format!("replay --threads {}", replay.threads),
                    replay.lines,
                );
            }
        }
        if let PeerOutcome::Ran(peer) = &self.peer {
            check("the Python peer", peer.messages);
        }
        mismatches
    }

    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let options = &self.options;
        let _ = writeln!(out, "## platestream bench, {}\n", self.started_at);
        let _ = writeln!(
            out,
            "| measure | result | baseline in the same run | ratio | target |"
        );
        let _ = writeln!(out, "| --- | ---: | ---: | ---: | --- |");
        let ceiling_rate = self.ceiling.as_ref().map(DrainOutcome::rate);
        if let Some(ceiling) = &self.ceiling {
            let _ = writeln!(
                out,
                "| (1a) ceiling: plain rdkafka consumer drains the topic | {} reads/s | | | |",
                rate(ceiling.rate())
            );
        }
        if let Some(engine) = &self.engine {
            let _ = writeln!(
                out,
                "| (1b) `platestream run`: decode, normalize, full matching, alerts, Parquet, commits | {} reads/s | ceiling {} reads/s | **{}** | ≥ 0.9 |",
                rate(engine.rate()),
                ceiling_rate.map_or("–".to_owned(), rate),
                ceiling_rate.map_or("–".to_owned(), |ceiling| ratio(engine.rate() / ceiling)),
            );
        }
        match &self.peer {
            PeerOutcome::Ran(peer) => {
                let engine_rate = self.engine.as_ref().map_or(0.0, EngineOutcome::rate);
                let _ = writeln!(
                    out,
                    "| (5) Python peer (confluent-kafka + pyarrow, exact lookup) | {} reads/s | platestream {} reads/s | platestream **{}×** the peer | |",
                    rate(peer.rate()),
                    rate(engine_rate),
                    ratio(engine_rate / peer.rate().max(1e-9)),
                );
            }
            PeerOutcome::Skipped(why) => {
                let _ = writeln!(out, "| (5) Python peer | skipped: {why} | | | |");
            }
        }
        if let Some(offline) = &self.offline {
            let _ = writeln!(
                out,
                "| (2a) floor: serde_json parse + same columns to Parquet zstd, 1 thread | {} reads/s | | | |",
                rate(offline.floor_rate())
            );
            for replay in &offline.replays {
                let _ = writeln!(
                    out,
                    "| (2b) `platestream replay --threads {}` | {} reads/s | floor {} reads/s | **{}** | ≥ 0.75, ≥ 1.5M reads/s |",
                    replay.threads,
                    rate(replay.rate()),
                    rate(offline.floor_rate()),
                    ratio(replay.rate() / offline.floor_rate().max(1e-9)),
                );
            }
        }
        if let Some(latency) = &self.latency {
            let p99_ratio = |of: &Percentiles| {
                ratio(of.p99.as_secs_f64() / latency.broker.p99.as_secs_f64().max(1e-9))
            };
            let _ = writeln!(
                out,
                "| (3) alert latency, read produced → alert on the alerts topic, {} reads/s | {} ({} alerts) | broker alone, read produced → read consumed: {} ({} reads) | p99 {} | p99 < 10 ms |",
                latency.rate,
                spread(&latency.alerts, true),
                latency.alerts.count,
                spread(&latency.broker, false),
                latency.broker.count,
                p99_ratio(&latency.alerts),
            );
            let _ = writeln!(
                out,
                "| (3) of which: read produced → alert raised by the engine (`raised_at`) | {} | broker alone p99 {} | p99 {} | |",
                spread(&latency.raised, false),
                millis(latency.broker.p99),
                p99_ratio(&latency.raised),
            );
            let _ = writeln!(
                out,
                "| (3) of which: alert raised → on the alerts topic (engine's producer, second broker hop) | {} | | | |",
                spread(&latency.after_raised, false),
            );
        }
        let hotlist = self
            .workload
            .as_ref()
            .map_or(0, |workload| workload.hotlist_entries);
        if let Some(engine) = &self.engine {
            let _ = writeln!(
                out,
                "| (4) peak RSS of `platestream run` during (1b), {hotlist} hotlist entries | {} | | | bounded |",
                mib(engine.peak_rss_kib)
            );
        }
        if let Some(latency) = &self.latency {
            let _ = writeln!(
                out,
                "| (4) peak RSS of `platestream run` during (3) | {} | | | bounded |",
                mib(latency.engine.peak_rss_kib)
            );
        }
        if let Some(slow) = &self.slow_sink {
            let backlog = self.produced.saturating_sub(slow.messages);
            let _ = writeln!(
                out,
                "| (4) slow archive writer ({} ms per 1,000 rows): peak RSS while {} reads wait in the broker | {} (RSS first half {} → second half {}) | normal run {} | {} | bounded: pauses, does not buffer |",
                options.slow_sink_ms,
                backlog,
                mib(slow.peak_rss_kib),
                mib(half_max(&slow.rss_samples, false)),
                mib(half_max(&slow.rss_samples, true)),
                self.engine.as_ref().map_or("–".to_owned(), |engine| mib(engine.peak_rss_kib)),
                self.engine.as_ref().map_or("–".to_owned(), |engine| ratio(
                    slow.peak_rss_kib as f64 / engine.peak_rss_kib.max(1) as f64
                )),
            );
            let _ = writeln!(
                out,
                "| (4) slow archive writer: consumption rate | {} reads/s | | | |",
                rate(slow.rate())
            );
        }
        if let PeerOutcome::Ran(peer) = &self.peer {
            let _ = writeln!(
                out,
                "| (5) peak RSS of the Python peer | {} | | | |",
                mib(peer.peak_rss_kib)
            );
        }

        let _ = writeln!(out, "\n### Counts\n");
        let _ = writeln!(
            out,
            "| | messages | reads archived | alerts | dead-lettered |"
        );
        let _ = writeln!(out, "| --- | ---: | ---: | ---: | ---: |");
        if let Some(workload) = &self.workload {
            let _ = writeln!(
                out,
                "| produced to the topic | {} | ({} of hotlisted vehicles) | | ({} malformed) |",
                self.produced, workload.hotlisted_reads, workload.malformed
            );
        }
        if let Some(ceiling) = &self.ceiling {
            let _ = writeln!(out, "| ceiling consumer | {} | | | |", ceiling.messages);
        }
        if let Some(engine) = &self.engine {
            let _ = writeln!(
                out,
                "| platestream run | {} | {} | {} | {} |",
                engine.messages, engine.reads_archived, engine.alerts, engine.dead_lettered
            );
        }
        if let Some(offline) = &self.offline {
            let _ = writeln!(
                out,
                "| offline floor | {} | {} | | |",
                offline.lines, offline.floor_rows
            );
            for replay in &offline.replays {
                let _ = writeln!(
                    out,
                    "| platestream replay --threads {} | {} | {} | {} | {} |",
                    replay.threads,
                    replay.lines,
                    replay.reads_archived,
                    replay.alerts,
                    replay.dead_lettered
                );
            }
        }
        if let Some(latency) = &self.latency {
            let _ = writeln!(
                out,
                "| latency run (measured part) | {} | | {} | |",
                latency.reads_measured, latency.alerts.count
            );
        }
        if let Some(slow) = &self.slow_sink {
            let _ = writeln!(
                out,
                "| slow-sink run | {} | {} | {} | {} |",
                slow.messages, slow.reads_archived, slow.alerts, slow.dead_lettered
            );
        }
        if let PeerOutcome::Ran(peer) = &self.peer {
            let _ = writeln!(
                out,
                "| Python peer | {} | {} | {} | {} |",
                peer.messages, peer.rows_written, peer.alerts, peer.dead
            );
        }
        let mismatches = self.count_mismatches();
        let _ = writeln!(
            out,
            "\nConsumed = produced for every consumer: {}",
            if mismatches.is_empty() {
                "yes".to_owned()
            } else {
                format!("**no**: {}", mismatches.join("; "))
            }
        );

        let _ = writeln!(out, "\n### Conditions\n");
        if let Some(workload) = &self.workload {
            let _ = writeln!(
                out,
                "- workload: {} simulated reads ({:.0} bytes each on average), five vendors' formats mixed, seed {}; hotlist of {} entries ({} hotlisted city vehicles, the rest plates no reader sees); topic of {} partitions on one tansu broker (in-memory storage) on loopback",
                workload.messages,
                workload.bytes as f64 / workload.messages.max(1) as f64,
                options.seed,
                workload.hotlist_entries,
                workload.city_hotlist_entries,
                options.partitions,
            );
        }
        let _ = writeln!(out, "- machine: {}", machine());
        let _ = writeln!(
            out,
            "- load average (1, 5, 15 min) before: {}, after: {}",
            self.load_before, self.load_after
        );
        let _ = writeln!(out, "- versions: {}", self.versions());
        let _ = writeln!(out, "- command: `{}`", self.command_line);
        let _ = writeln!(
            out,
            "- rates are messages over the time from the first message to the last one each consumer processed (the group join before it is not counted); platestream, the slow-sink run and the peer run as their own processes, their peak RSS is VmHWM from /proc"
        );
        out
    }

    fn versions(&self) -> String {
        let (_, librdkafka) = rdkafka::util::get_rdkafka_version();
        let mut versions = vec![
            format!(
                "platestream {} ({})",
                env!("CARGO_PKG_VERSION"),
                // The checkout this binary was built from, wherever the bench is run.
                command_output(
                    "git",
                    &[
                        "-C",
                        env!("CARGO_MANIFEST_DIR"),
                        "rev-parse",
                        "--short",
                        "HEAD"
                    ]
                )
            ),
            command_output("rustc", &["--version"]),
            self.tansu_version.clone(),
            format!("librdkafka {librdkafka}"),
        ];
        if let PeerOutcome::Ran(peer) = &self.peer {
            versions.push(format!("peer: {}", peer.versions));
        }
        versions.join(", ")
    }
}

fn rate(value: f64) -> String {
    if value >= 1_000_000.0 {
        format!("{:.2}M", value / 1_000_000.0)
    } else if value >= 1_000.0 {
        format!("{:.1}k", value / 1_000.0)
    } else {
        format!("{value:.0}")
    }
}

fn ratio(value: f64) -> String {
    format!("{value:.2}")
}

fn millis(duration: std::time::Duration) -> String {
    format!("{:.1} ms", duration.as_secs_f64() * 1000.0)
}

/// "p50 … · p99 … · max …", the p99 in bold when it is the row's headline.
fn spread(of: &Percentiles, p99_in_bold: bool) -> String {
    let p99 = millis(of.p99);
    let p99 = if p99_in_bold {
        format!("**{p99}**")
    } else {
        p99
    };
    format!(
        "p50 {} · p99 {p99} · max {}",
        millis(of.p50),
        millis(of.max)
    )
}

fn mib(kib: u64) -> String {
    format!("{:.0} MiB", kib as f64 / 1024.0)
}

/// The largest resident size in the first or second half of a run's samples.
fn half_max(samples: &[(f64, u64)], second: bool) -> u64 {
    let middle = samples.len() / 2;
    let half = if second {
        &samples[middle..]
    } else {
        &samples[..middle]
    };
    half.iter().map(|(_, kib)| *kib).max().unwrap_or(0)
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|_| "unknown".to_owned())
}

fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|line| line.strip_prefix("model name"))
        .and_then(|rest| rest.split_once(':'))
        .map_or("unknown CPU", |(_, model)| model.trim())
        .to_owned();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let memory_gib = meminfo
        .lines()
        .find_map(|line| line.strip_prefix("MemTotal:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<f64>()
                .ok()
        })
        .map_or("unknown".to_owned(), |kib| {
            format!("{:.1} GiB", kib / 1024.0 / 1024.0)
        });
    format!(
        "{cores} cores ({model}), {memory_gib} memory, {}",
        std::env::consts::ARCH
    )
}

fn command_output(program: &str, args: &[&str]) -> String {
    std::process::Command::new(program)
        .args(args)
        .output()
        .ok()
        .filter(|output| output.status.success())
        .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_owned())
        .filter(|text| !text.is_empty())
        .unwrap_or_else(|| format!("{program}: unknown"))
}
