//! Private Redis and PostgreSQL servers for tests that restart them (the machine's shared ones
//! serve the other tests running at the same time). Each listens on a loopback port outside the
//! ephemeral range (`proc::pick_port`: neither server can listen on port 0 and say which port it
//! got) with its data in a temporary folder, and can be restarted on the same port and data.
use crate::proc::{command, pick_port, tail};
use anyhow::{Context, bail};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Waits until `ok()`; fails at once if `child` exits first, or after `limit`, with `log`.
fn wait_up(
    what: &str,
    child: &mut Child,
    log: &Path,
    limit: Duration,
    mut ok: impl FnMut() -> bool,
) -> anyhow::Result<()> {
    let start = Instant::now();
    while !ok() {
        if let Some(status) = child.try_wait()? {
            bail!("{what} exited ({status})\n{}", tail(what, log, 16 * 1024));
        }
        if start.elapsed() > limit {
            bail!(
                "{what} did not come up within {limit:?}\n{}",
                tail(what, log, 16 * 1024)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// Tries `spawn(attempt)` up to five times: a port can be taken between choosing and binding it
/// (by another test's choice). A first start chooses a new port each time; a restart keeps the
/// port its clients know and tries it again after a pause.
fn with_retries(mut spawn: impl FnMut(usize) -> anyhow::Result<()>) -> anyhow::Result<()> {
    let mut last = None;
    for attempt in 0..5 {
        match spawn(attempt) {
            Ok(()) => return Ok(()),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| anyhow::anyhow!("not started")))
}

fn stop(child: &mut Option<Child>, signal: &str) {
    if let Some(mut c) = child.take() {
        let _ = Command::new("kill")
            .args([signal, &c.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = c.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = c.kill();
        let _ = c.wait();
    }
}

/// `redis-server` with append-only persistence, as a cluster should run it.
pub struct PrivateRedis {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl PrivateRedis {
    pub fn start() -> anyhow::Result<Self> {
        let mut r = PrivateRedis {
            port: 0,
            dir: tempfile::Builder::new().prefix("hippo-redis-").tempdir()?,
            child: None,
        };
        with_retries(|_| {
            r.port = pick_port("127.0.0.1")?;
            r.spawn()
        })?;
        Ok(r)
    }
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
    fn ping(&self) -> bool {
        crate::proc::output_within(
            Command::new("redis-cli").args(["-p", &self.port.to_string(), "ping"]),
            Duration::from_secs(5),
        )
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "PONG")
    }
    fn spawn(&mut self) -> anyhow::Result<()> {
        let log_path = self.dir.path().join("redis.log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)?;
        let mut child = command("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .arg("--dir")
            .arg(self.dir.path())
            .args([
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0)
            .spawn()
            .context("starting redis-server")?;
        let up = wait_up(
            "redis-server",
            &mut child,
            &log_path,
            Duration::from_secs(20),
            || self.ping(),
        );
        self.child = Some(child);
        if up.is_err() {
            stop(&mut self.child, "-KILL");
        }
        up
    }
    /// Stops Redis (SIGTERM: it writes its append-only file and exits) and starts it again.
    /// `down` runs while it is stopped.
    pub fn restart(&mut self, down: impl FnOnce()) -> anyhow::Result<()> {
        stop(&mut self.child, "-TERM");
        down();
        with_retries(|attempt| {
            if attempt > 0 {
                std::thread::sleep(Duration::from_secs(1));
            }
            self.spawn()
        })
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        stop(&mut self.child, "-KILL");
    }
}

/// A PostgreSQL server of its own (`initdb` into a temporary folder, run as user `postgres`).
pub struct PrivatePostgres {
    pub port: u16,
    dir: tempfile::TempDir,
    bin: PathBuf,
    child: Option<Child>,
}

/// Debian keeps the server binaries in /usr/lib/postgresql/<version>/bin.
fn postgres_bin() -> anyhow::Result<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .context("PostgreSQL server binaries (/usr/lib/postgresql)")?
        .filter_map(|e| Some(e.ok()?.path().join("bin")))
        .filter(|p| p.join("initdb").exists())
        .collect();
    found.sort();
    found.pop().context("no initdb under /usr/lib/postgresql")
}

/// Runs `program` as user `postgres` (setpriv execs it: signals reach the server itself). The
/// parent-death signal is set again after the change of user (which clears it).
fn as_postgres(bin: &Path, program: &str) -> Command {
    let mut c = command("setpriv");
    c.args([
        "--reuid=postgres",
        "--regid=postgres",
        "--init-groups",
        "--reset-env",
        "--pdeathsig=KILL",
        "--",
    ])
    .arg(bin.join(program));
    c
}

impl PrivatePostgres {
    pub fn start() -> anyhow::Result<Self> {
        let bin = postgres_bin()?;
        let dir = tempfile::Builder::new().prefix("hippo-pg-").tempdir()?;
        let st = Command::new("chown")
            .arg("postgres:")
            .arg(dir.path())
            .status()?;
        if !st.success() {
            bail!("chown postgres {}", dir.path().display());
        }
        let out = as_postgres(&bin, "initdb")
            .args([
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--no-sync",
                "-D",
            ])
            .arg(dir.path().join("data"))
            .output()
            .context("initdb")?;
        if !out.status.success() {
            bail!("initdb: {}", String::from_utf8_lossy(&out.stderr));
        }
        let mut pg = PrivatePostgres {
            port: 0,
            dir,
            bin,
            child: None,
        };
        with_retries(|_| {
            pg.port = pick_port("127.0.0.1")?;
            pg.spawn()
        })?;
        Ok(pg)
    }
    /// Base URL without a database name (as `HIPPO_E2E_POSTGRES`).
    pub fn base_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}", self.port)
    }
    fn ready(&self) -> bool {
        crate::proc::output_within(
            Command::new(self.bin.join("pg_isready")).args([
                "-q",
                "-t",
                "5",
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
            ]),
            Duration::from_secs(10),
        )
        .is_ok_and(|o| o.status.success())
    }
    fn spawn(&mut self) -> anyhow::Result<()> {
        let log_path = self.dir.path().join("postgres.log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)?;
        let mut child = as_postgres(&self.bin, "postgres")
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args([
                "-p",
                &self.port.to_string(),
                "-c",
                "listen_addresses=127.0.0.1",
            ])
            .arg("-c")
            .arg(format!(
                "unix_socket_directories={}",
                self.dir.path().display()
            ))
            .args(["-c", "fsync=off"])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0)
            .spawn()
            .context("starting postgres")?;
        let up = wait_up(
            "postgres",
            &mut child,
            &log_path,
            Duration::from_secs(60),
            || self.ready(),
        );
        self.child = Some(child);
        if up.is_err() {
            stop(&mut self.child, "-KILL");
        }
        up
    }
    /// Stops PostgreSQL (fast shutdown: clients are disconnected) and starts it again;
    /// `down` runs while it is stopped.
    pub fn restart(&mut self, down: impl FnOnce()) -> anyhow::Result<()> {
        stop(&mut self.child, "-INT");
        down();
        with_retries(|attempt| {
            if attempt > 0 {
                std::thread::sleep(Duration::from_secs(1));
            }
            self.spawn()
        })
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        stop(&mut self.child, "-INT");
    }
}
