//! A real Kafka-API broker (tansu, in-memory storage) on loopback for the demo and the tests.
//!
//! The pinned tansu is installed once per machine by `scripts/ensure-tansu` (a `cargo install`)
//! and reused after; set `PLATESTREAM_TANSU` to use a binary of your own.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

pub const TANSU_VERSION: &str = "0.6.0";

/// Where `scripts/ensure-tansu` installs tansu.
pub fn tansu_install_root() -> PathBuf {
    if let Some(tools) = std::env::var_os("PLATESTREAM_TOOLS") {
        return PathBuf::from(tools).join(format!("tansu-{TANSU_VERSION}"));
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    cache
        .join("platestream")
        .join("tools")
        .join(format!("tansu-{TANSU_VERSION}"))
}

/// Finds the tansu binary, installing the pinned version if there is none.
pub fn ensure_tansu() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("PLATESTREAM_TANSU") {
        return Ok(PathBuf::from(path));
    }
    let installed = tansu_install_root().join("bin").join("tansu");
    if installed.is_file() {
        return Ok(installed);
    }
    eprintln!(
        "platestream: first run on this machine: building the tansu {TANSU_VERSION} Kafka broker \
         (cargo install, about 6 minutes; reused afterwards)"
    );
    let status = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args(["install", "tansu", "--version"])
        .arg(format!("={TANSU_VERSION}"))
        .args(["--locked", "--features", "dynostore", "--root"])
        .arg(tansu_install_root())
        .status()
        .context("running cargo install tansu (is cargo on PATH?)")?;
    if !status.success() || !installed.is_file() {
        bail!("cargo install tansu {TANSU_VERSION} failed ({status})");
    }
    Ok(installed)
}

/// A running broker; stopped when dropped.
pub struct TansuBroker {
    child: Child,
    port: u16,
}

impl TansuBroker {
    /// Starts a broker on a free loopback port and waits until it accepts connections.
    pub fn start() -> Result<Self> {
        let binary = ensure_tansu()?;
        Self::start_with(&binary)
    }

    pub fn start_with(binary: &Path) -> Result<Self> {
        Self::start_on(binary, free_port()?)
    }

    /// Stops this broker and starts an empty one on the same port, as a restart of a broker with
    /// `memory://` storage is: the same address, none of the topics or groups.
    pub fn restart_empty(&mut self) -> Result<()> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let fresh = Self::start_on(&ensure_tansu()?, self.port)?;
        let old = std::mem::replace(self, fresh);
        // The old child has exited; dropping it only waits again.
        drop(old);
        Ok(())
    }

    fn start_on(binary: &Path, port: u16) -> Result<Self> {
        let url = format!("tcp://127.0.0.1:{port}");
        let mut command = Command::new(binary);
        command
            .arg("broker")
            .args(["--listener-url", &url, "--advertised-listener-url", &url])
            .args(["--storage-engine", "memory://tansu/"])
            .env_remove("LISTENER_URL")
            .env_remove("ADVERTISED_LISTENER_URL")
            .env_remove("STORAGE_ENGINE")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // A group of its own: Ctrl-C in the terminal signals the whole foreground group, and the
        // demo must still have its broker while it commits and summarizes (it stops it after).
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let child = command
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let mut broker = Self { child, port };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = broker.child.try_wait()? {
                bail!("tansu exited at start-up ({status})");
            }
            if Instant::now() > deadline {
                bail!("tansu did not listen on port {port} within 30 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(broker)
    }

    pub fn bootstrap_servers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for TansuBroker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}
