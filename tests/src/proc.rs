//! What every process a test starts needs: it dies with the test, it gets a port nothing else
//! will take, every wait for it has a deadline, and a failure shows its log.
//!
//! A run of the tests can fail; it must never hang. So:
//! - every wait goes through [`wait_until`] (a deadline, then a panic or an error carrying the
//!   logs that explain it);
//! - processes that can listen on port 0 do and say which port they got (`hippo-api`,
//!   `hippo-worker`: `HIPPO_ADDR_FILE`, read by [`wait_for_addr_file`]); the ones that cannot
//!   (sshd, redis-server, postgres) get a port from [`pick_port`], outside the kernel's ephemeral
//!   range, and are started again on another one if it was taken anyway;
//! - [`command`] makes a child die with the test (`PR_SET_PDEATHSIG`), so a test binary killed
//!   by CI's time limit leaves no sshd or redis-server behind. The parent is the *thread* that
//!   starts the child: start processes on the test's own thread (as everything here does), not
//!   on a helper thread that ends before the test.
use anyhow::{Context, bail};
use std::net::{IpAddr, TcpListener};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A process on this machine (the test hosts share its process table): its pid and its
/// command line, arguments joined by spaces.
#[derive(Debug)]
pub struct Process {
    pub pid: u32,
    pub cmdline: String,
}

/// The live processes (zombies left out) whose command line contains `needle`: how a story
/// sees that a hook's `sleep` runs on a host, or that it is gone.
pub fn processes(needle: &str) -> Vec<Process> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if !stat.contains(") Z ") && cmdline.contains(needle) {
            out.push(Process { pid, cmdline });
        }
    }
    out
}

/// `Command::new(program)` whose process gets SIGKILL when the thread that started it ends.
pub fn command(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut c = Command::new(program);
    // SAFETY: prctl is async-signal-safe and touches only the calling (child) process.
    #[allow(unsafe_code)]
    unsafe {
        c.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    c
}

/// Polls `check` every 50 ms until it returns `Some`, for at most `limit`; then an error naming
/// `what` with `logs()` attached.
pub fn try_wait_until<T>(
    what: &str,
    limit: Duration,
    logs: impl Fn() -> String,
    mut check: impl FnMut() -> Option<T>,
) -> anyhow::Result<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check() {
            return Ok(v);
        }
        if Instant::now() >= deadline {
            bail!("{what}: not within {limit:?}\n{}", logs());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// [`try_wait_until`] that panics (for the tests themselves).
pub fn wait_until<T>(
    what: &str,
    limit: Duration,
    logs: impl Fn() -> String,
    check: impl FnMut() -> Option<T>,
) -> T {
    try_wait_until(what, limit, logs, check).unwrap_or_else(|e| panic!("{e:#}"))
}

/// Runs `cmd` to its end, killing it after `limit`.
pub fn output_within(cmd: &mut Command, limit: Duration) -> anyhow::Result<Output> {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {cmd:?}"))?;
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => Ok(out?),
        Err(_) => {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            bail!("{cmd:?} did not finish within {limit:?}")
        }
    }
}

/// A port on `ip` that is free now and that nothing else will be handed by the kernel: one
/// outside the ephemeral range (`/proc/sys/net/ipv4/ip_local_port_range`), from which every
/// `bind(…:0)` and every outgoing connection takes its port. Only another explicit choice of the
/// same port (1 in ~10,000) can take it; callers start again on a new port if that happens.
pub fn pick_port(ip: &str) -> anyhow::Result<u16> {
    let (lo, hi) = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| {
            let mut it = s.split_whitespace().map(|p| p.parse::<u16>().ok());
            Some((it.next()??, it.next()??))
        })
        .unwrap_or((32768, 60999));
    // The larger stretch outside [lo, hi], above the well-known ports.
    let (from, to) = if lo.saturating_sub(10000) >= 65535u16.saturating_sub(hi) {
        (10000, lo)
    } else {
        (hi + 1, 65535)
    };
    let ip: IpAddr = ip.parse().context("loopback address")?;
    let mut seed = random_u64();
    for _ in 0..200 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let port = from + (seed % u64::from(to - from)) as u16;
        if TcpListener::bind((ip, port)).is_ok() {
            return Ok(port);
        }
    }
    bail!("no free port on {ip} in {from}..{to}")
}

fn random_u64() -> u64 {
    use std::io::Read;
    let mut b = [0u8; 8];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .is_err()
    {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1);
        return t ^ u64::from(std::process::id());
    }
    u64::from_le_bytes(b) | 1
}

/// Waits until `child` has written its bound address (`127.0.0.1:PORT`) to `file`; fails at
/// once if the child exits first, and after `limit` otherwise, with `logs()` attached.
pub fn wait_for_addr_file(
    child: &mut Child,
    file: &Path,
    what: &str,
    limit: Duration,
    logs: impl Fn() -> String,
) -> anyhow::Result<std::net::SocketAddr> {
    let deadline = Instant::now() + limit;
    loop {
        if let Ok(text) = std::fs::read_to_string(file)
            && let Ok(addr) = text.trim().parse()
        {
            return Ok(addr);
        }
        if let Some(status) = child.try_wait()? {
            bail!("{what} exited ({status}) before it listened\n{}", logs());
        }
        if Instant::now() >= deadline {
            bail!(
                "{what} did not report its address in {} within {limit:?}\n{}",
                file.display(),
                logs()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The last `max` bytes of a log file (whole lines), headed by `label`.
pub fn tail(label: &str, path: &Path, max: usize) -> String {
    let text = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => return format!("--- {label}: {} unreadable: {e}\n", path.display()),
    };
    let cut = text.len().saturating_sub(max);
    let mut start = cut;
    if cut > 0 {
        start = text[cut..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(cut, |i| cut + i + 1);
    }
    format!(
        "--- {label} ({}{}) ---\n{}\n",
        path.display(),
        if cut > 0 { ", last part" } else { "" },
        String::from_utf8_lossy(&text[start..])
    )
}

/// A named log file, for failure messages.
#[derive(Debug, Clone)]
pub struct LogFile {
    pub label: String,
    pub path: PathBuf,
}

impl LogFile {
    pub fn new(label: impl Into<String>, path: impl Into<PathBuf>) -> Self {
        Self {
            label: label.into(),
            path: path.into(),
        }
    }
}

/// The tails of `logs`, one after another.
pub fn tails(logs: &[LogFile]) -> String {
    logs.iter()
        .map(|l| tail(&l.label, &l.path, 48 * 1024))
        .collect()
}

/// Fails with a clear message when the end-to-end tests cannot run here: they need root (mount
/// namespaces) and OpenSSH's server, ssh-keygen, git, unshare and bubblewrap (hooks on the
/// release server run in it). `bash tests/prepare.sh` installs what is missing on Debian.
pub fn check_prerequisites() -> anyhow::Result<()> {
    static CHECKED: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    CHECKED
        .get_or_init(|| {
            let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
            let root = status
                .lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1))
                == Some("0");
            let mut missing = Vec::new();
            for (path, package) in [
                ("/usr/sbin/sshd", "openssh-server"),
                ("/usr/bin/ssh-keygen", "openssh-client"),
                ("/usr/bin/git", "git"),
                ("/usr/bin/unshare", "util-linux"),
                ("/usr/bin/bwrap", "bubblewrap"),
            ] {
                if !Path::new(path).exists() {
                    missing.push(format!("{path} (Debian package {package})"));
                }
            }
            let mut problems = Vec::new();
            if !root {
                problems.push(
                    "they must run as root (each test host is an sshd in a private mount \
                     namespace)"
                        .to_owned(),
                );
            }
            if !missing.is_empty() {
                problems.push(format!("missing: {}", missing.join(", ")));
            }
            if problems.is_empty() {
                Ok(())
            } else {
                Err(format!(
                    "the end-to-end tests cannot run here: {}.\nRun `bash tests/prepare.sh` \
                     as root first (it installs what is missing on Debian), then the tests.",
                    problems.join("; ")
                ))
            }
        })
        .clone()
        .map_err(|e| anyhow::anyhow!(e))
}
