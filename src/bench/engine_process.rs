//! `platestream run` as a child process: the exact code path users run, with memory that is its
//! own. Progress is read from its Prometheus endpoint, resident memory from `/proc`, the final
//! counts from its JSON log line "engine stopped".

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use platestream_connectors::kafka::KafkaSettings;

use super::workload::progress_bar;

#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub settings: KafkaSettings,
    pub raw_topic: String,
    pub alerts_topic: String,
    pub group: String,
    pub hotlist: PathBuf,
    pub archive_dir: PathBuf,
    pub slow_sink_ms: u64,
}

impl EngineConfig {
    fn toml(&self, metrics: SocketAddr) -> String {
        let settings = &self.settings;
        format!(
            "[kafka]\n\
             bootstrap_servers = {bootstrap:?}\n\
             group_id = {group:?}\n\
             raw_topics = [{raw:?}]\n\
             raw_format = \"auto\"\n\
             alerts_topic = {alerts:?}\n\
             covert_alerts_topic = \"bench-covert-alerts\"\n\
             dead_letter_topic = \"bench-dead-letter\"\n\
             \n\
             [archive]\n\
             dir = {archive:?}\n\
             slow_sink_ms = {slow}\n\
             \n\
             [hotlists]\n\
             files = [{hotlist:?}]\n\
             reload_check_secs = 0\n\
             \n\
             [readers]\n\
             image_dir = {images:?}\n\
             \n\
             [metrics]\n\
             listen = \"{metrics}\"\n",
            bootstrap = settings.bootstrap_servers,
            group = self.group,
            raw = self.raw_topic,
            alerts = self.alerts_topic,
            archive = self.archive_dir.display().to_string(),
            slow = self.slow_sink_ms,
            hotlist = self.hotlist.display().to_string(),
            images = self.archive_dir.join("images").display().to_string(),
        )
    }
}

/// Resident memory of a process, in KiB.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Memory {
    pub rss_kib: u64,
    /// The peak so far (VmHWM).
    pub peak_kib: u64,
}

pub fn process_memory(pid: u32) -> Option<Memory> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = status.lines().find(|line| line.starts_with(name))?;
        line[name.len()..]
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()
    };
    Some(Memory {
        rss_kib: field("VmRSS:")?,
        peak_kib: field("VmHWM:")?,
    })
}

#[derive(Debug, Clone, Default)]
pub struct EngineOutcome {
    pub messages: u64,
    pub reads_archived: u64,
    pub dead_lettered: u64,
    pub alerts: u64,
    pub files: u64,
    /// From the first message to the last one processed.
    pub active: Duration,
    pub peak_rss_kib: u64,
    /// (seconds since start, resident KiB), sampled while it ran.
    pub rss_samples: Vec<(f64, u64)>,
}

impl EngineOutcome {
    pub fn rate(&self) -> f64 {
        self.messages as f64 / self.active.as_secs_f64().max(1e-9)
    }
}

pub struct EngineProcess {
    child: Child,
    metrics: SocketAddr,
    log_path: PathBuf,
    started: Instant,
    peak_kib: u64,
    rss_samples: Vec<(f64, u64)>,
    label: String,
}

/// Gives up when the engine consumes nothing for this long.
const STALL: Duration = Duration::from_secs(90);
const SAMPLE_EVERY: Duration = Duration::from_millis(100);

impl EngineProcess {
    pub fn start(config: &EngineConfig, work_dir: &Path, label: &str) -> Result<Self> {
        // Each bench starts a fresh broker, whose offsets begin at 0 again. An archive left in a
        // reused `--work-dir` by an earlier bench says those offsets are archived already, so the
        // engine would skip them as redeliveries and never consume what the bench waits for.
        if config.archive_dir.exists() {
            std::fs::remove_dir_all(&config.archive_dir).with_context(|| {
                format!(
                    "removing the last bench's archive {}",
                    config.archive_dir.display()
                )
            })?;
        }
        let metrics = SocketAddr::from(([127, 0, 0, 1], free_port()?));
        let config_path = work_dir.join(format!("{label}.toml"));
        std::fs::write(&config_path, config.toml(metrics))
            .with_context(|| format!("writing {}", config_path.display()))?;
        let log_path = work_dir.join(format!("{label}.log"));
        let log = std::fs::File::create(&log_path)
            .with_context(|| format!("creating {}", log_path.display()))?;
        let executable = std::env::current_exe().context("locating the platestream binary")?;
        let child = Command::new(executable)
            .args(["--log-format", "json", "run", "--config"])
            .arg(&config_path)
            .env(
                "RUST_LOG",
                "warn,platestream=info,platestream_connectors=info",
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("starting platestream run")?;
        Ok(Self {
            child,
            metrics,
            log_path,
            started: Instant::now(),
            peak_kib: 0,
            rss_samples: Vec::new(),
            label: label.to_owned(),
        })
    }

    /// Runs until the engine has consumed `expected` messages, then stops it cleanly.
    pub fn run_until_consumed(mut self, expected: u64) -> Result<EngineOutcome> {
        let bar = progress_bar(expected, &format!("{}: consuming", self.label));
        let mut last_progress = (0, Instant::now());
        loop {
            self.check_alive()?;
            self.sample_memory();
            let consumed = self.consumed().unwrap_or(0);
            bar.set_position(consumed);
            if consumed >= expected {
                break;
            }
            if consumed > last_progress.0 {
                last_progress = (consumed, Instant::now());
            } else if last_progress.1.elapsed() > STALL {
                bar.finish_and_clear();
                let _ = self.child.kill();
                bail!(
                    "{} stalled at {consumed} of {expected} messages; see {}",
                    self.label,
                    self.log_path.display()
                );
            }
            std::thread::sleep(SAMPLE_EVERY);
        }
        bar.finish_and_clear();
        self.stop()
    }

    /// Runs for a while (however far it gets), then stops it cleanly.
    pub fn run_for(mut self, duration: Duration, expected: u64) -> Result<EngineOutcome> {
        let bar = progress_bar(expected, &format!("{}: consuming", self.label));
        let started = Instant::now();
        // The clock starts when the engine has joined and consumes, not while it loads the list.
        let mut consuming_since: Option<Instant> = None;
        while consuming_since.is_none_or(|since| since.elapsed() < duration) {
            self.check_alive()?;
            self.sample_memory();
            let consumed = self.consumed().unwrap_or(0);
            bar.set_position(consumed);
            if consumed > 0 {
                consuming_since.get_or_insert_with(Instant::now);
            }
            if consumed >= expected {
                break;
            }
            if consuming_since.is_none() && started.elapsed() > STALL {
                bar.finish_and_clear();
                let _ = self.child.kill();
                bail!("{} consumed nothing in {STALL:?}", self.label);
            }
            std::thread::sleep(SAMPLE_EVERY);
        }
        bar.finish_and_clear();
        self.stop()
    }

    pub fn sample_memory(&mut self) {
        if let Some(memory) = process_memory(self.child.id()) {
            self.peak_kib = self.peak_kib.max(memory.peak_kib);
            self.rss_samples
                .push((self.started.elapsed().as_secs_f64(), memory.rss_kib));
        }
    }

    fn check_alive(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!(
                "{} exited early ({status}); its log: {}\n{}",
                self.label,
                self.log_path.display(),
                log_tail(&self.log_path)
            );
        }
        Ok(())
    }

    /// `platestream_messages_consumed_total` from the engine's Prometheus endpoint.
    pub fn consumed(&self) -> Option<u64> {
        let body = http_get(self.metrics, "/metrics").ok()?;
        body.lines()
            .find_map(|line| line.strip_prefix("platestream_messages_consumed_total "))
            .and_then(|value| value.trim().parse::<f64>().ok())
            .map(|value| value as u64)
    }

    /// SIGTERM (the engine commits what it archived and exits), then the counts from its log.
    pub fn stop(mut self) -> Result<EngineOutcome> {
        self.sample_memory();
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .context("running kill -TERM")?;
        if !status.success() {
            bail!("kill -TERM {} failed", self.child.id());
        }
        let deadline = Instant::now() + Duration::from_secs(180);
        let exit = loop {
            if let Some(exit) = self.child.try_wait()? {
                break exit;
            }
            self.sample_memory();
            if Instant::now() > deadline {
                let _ = self.child.kill();
                bail!("{} did not stop within 180 s after SIGTERM", self.label);
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        if !exit.success() {
            bail!(
                "{} failed ({exit}); its log: {}\n{}",
                self.label,
                self.log_path.display(),
                log_tail(&self.log_path)
            );
        }
        let mut outcome = summary_from_log(&self.log_path)?;
        outcome.peak_rss_kib = self.peak_kib;
        outcome.rss_samples = std::mem::take(&mut self.rss_samples);
        Ok(outcome)
    }
}

impl Drop for EngineProcess {
    fn drop(&mut self) {
        // Stopped already, or an error unwinds past it: never leave an engine running.
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn summary_from_log(path: &Path) -> Result<EngineOutcome> {
    let log =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let fields = log
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter_map(|line| line.get("fields").cloned())
        .find(|fields| fields.get("message").and_then(|m| m.as_str()) == Some("engine stopped"))
        .with_context(|| format!("no \"engine stopped\" line in {}", path.display()))?;
    let number = |name: &str| {
        fields
            .get(name)
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0)
    };
    Ok(EngineOutcome {
        messages: number("messages"),
        reads_archived: number("reads_archived"),
        dead_lettered: number("dead_lettered"),
        alerts: number("alerts"),
        files: number("files"),
        active: Duration::from_millis(number("active_ms")),
        ..EngineOutcome::default()
    })
}

fn log_tail(path: &Path) -> String {
    let log = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// A plain HTTP/1.0 GET on loopback: the bench's only HTTP need, not worth a client dependency.
fn http_get(address: SocketAddr, path: &str) -> Result<String> {
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(1))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {address}\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let body = response
        .split_once("\r\n\r\n")
        .map_or("", |(_, body)| body)
        .to_owned();
    Ok(body)
}

pub fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}
