//! Settings. Order: built-in defaults, then the file named by `HIPPO_CONFIG` (or `./hippo.toml`
//! when present), then `HIPPO_*` environment variables.
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// A value that must never reach a log or an API response (the one `Secret` type).
pub use crate::secret::Secret;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Address the API listens on.
    pub listen: String,
    /// Where the SQLite database, the queue, the repository cache and the master key live.
    pub data_dir: PathBuf,
    /// `postgres://…` to keep Hippo's data in PostgreSQL (cluster mode); unset: SQLite in
    /// `data_dir`.
    pub database_url: Option<Secret>,
    /// `redis://…`: cluster mode. Deploy jobs go through Redis to `hippo-worker` processes and
    /// the API runs no workers itself. Unset: the embedded queue and in-process workers.
    pub redis_url: Option<Secret>,
    /// Name of the deploy queue (one per Hippo installation sharing a Redis).
    pub queue_name: String,
    /// The master key as 64 hex characters. Every process of a cluster needs the same one;
    /// unset: `master.key` in `data_dir` (created on first start).
    pub master_key: Option<Secret>,
    /// Password for the `admin` user created on first start (generated and printed if unset).
    pub admin_password: Option<Secret>,
    /// Releases run at once by the in-process workers.
    pub worker_concurrency: usize,
    /// Seconds to wait for a TCP connection and SSH handshake.
    pub ssh_connect_timeout_secs: u64,
    /// Seconds a single SSH read or write may block (a stopped host fails after this).
    pub ssh_io_timeout_secs: u64,
    /// Seconds a release's SSH connection to a host stays open after the release is done with
    /// it, for the next release to the same host (no new login); 0: closed at once.
    pub ssh_idle_secs: u64,
    /// The nice value (0–19) of the threads that talk to target hosts during a release: with
    /// it above 0, the API's threads run first when both want a core, so a big release does not
    /// slow the API down (0: the same priority as the API).
    pub release_nice: u8,
    /// Seconds a session token stays valid.
    pub session_ttl_secs: u64,
    /// Seconds one notice delivery attempt may take (connect and answer); 3 attempts.
    pub notice_timeout_secs: u64,
    /// Where `hippo-worker` serves `/metrics` and `/healthz` (the API serves them on `listen`).
    /// Unset: the first free port from 127.0.0.1:9091 (so several workers can share a machine);
    /// `off`: not served.
    pub metrics_listen: Option<String>,
    /// After binding, the process writes the address it actually serves HTTP on (the API's
    /// `listen`, a worker's metrics address) to this file: for supervisors and tests that
    /// listen on port 0.
    pub addr_file: Option<PathBuf>,

    // The API's HTTP server (slow or idle clients must not hold it: `api::server`).
    /// Seconds a client has to send a whole request head, counted from the connection's start
    /// or the head's first byte.
    pub http_header_timeout_secs: u64,
    /// Seconds a client has to send a request body, counted from the end of the head.
    pub http_body_timeout_secs: u64,
    /// Seconds an idle keep-alive connection stays open between requests.
    pub http_keepalive_timeout_secs: u64,
    /// Open connections at most; beyond it the longest-idle connection is closed, or the new
    /// one when none is idle.
    pub http_max_connections: usize,

    // Logins (`api::login_guard`).
    /// Seconds over which failed logins are counted.
    pub login_window_secs: u64,
    /// Failed logins per user name in a window before further attempts get 429 (0: no limit).
    pub login_max_failures: u32,
    /// Failed logins per client address in a window before further attempts get 429 (0: no
    /// limit).
    pub login_max_failures_per_addr: u32,
    /// A user name or address that reaches its limit this many times within `login_lockout_secs`
    /// is locked out for `login_lockout_secs` (until then, or until an admin clears it).
    pub login_lockout_after: u32,
    pub login_lockout_secs: u64,
    /// Password hashes computed at once (each takes ~19 MiB and a core for a moment); 0: half
    /// the cores, at least one.
    pub login_hash_threads: usize,
    /// Proxies (addresses or CIDR ranges) whose `X-Forwarded-For` is believed when deciding a
    /// login's client address. Empty: the socket's peer address is the client.
    pub trusted_proxies: Vec<String>,
    /// Seconds a web terminal session may go without input before it is closed.
    pub terminal_idle_secs: u64,
    /// How release-server hooks are confined (docs/security.md).
    pub hook_sandbox: HookSandbox,
    /// Loopback, private, link-local… destinations notices may reach anyway: CIDRs
    /// (`10.1.2.0/24`) and host names (`smtp.corp.example`, `*.corp.example`). Empty: none.
    pub internal_allowlist: Vec<String>,
    /// The largest request body the API reads, in bytes (413 above it).
    pub max_body_bytes: usize,
    /// Send zstd archives to hosts that have `zstd` (the default); false: gzip to every host
    /// (`HIPPO_ZSTD=0`; the benchmark's codec table uses it).
    pub zstd: bool,
    /// The largest file that may be uploaded with a custom release request, in bytes (413
    /// above it). Uploads are stored in the database until no host keeps their version.
    pub max_upload_bytes: usize,
    /// Where the copies of released versions kept for rollbacks live (a rollback re-sends one
    /// to a host that lost the version). Unset: `artifacts/` in `data_dir`. In a cluster, a
    /// folder every `hippo-worker` shares (an NFS mount, a shared volume): the worker that runs
    /// a rollback is not always the one that made the copy.
    pub artifacts_dir: Option<PathBuf>,
}

/// The sandbox of the hooks that run on the release server (before / after checkout).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HookSandbox {
    /// `false` runs hooks unconfined as Hippo's own user (they can read its data and secrets):
    /// only for machines where nothing else is possible, and only when set explicitly.
    pub enabled: bool,
    /// Hooks keep the network (builds fetch packages); `false` gives them none at all.
    pub network: bool,
    /// Most processes and threads one hook may run at once.
    pub max_processes: u64,
    /// Most memory (data segment) one process of a hook may use, in MiB.
    pub memory_mb: u64,
    /// Host folders hooks may read besides `/usr`, `/etc` and the system libraries (a
    /// toolchain in `/opt/node`, say). Never Hippo's data folder.
    pub read_only_paths: Vec<PathBuf>,
    /// When Hippo runs as root, each hook runs as its own unprivileged user id, taken from
    /// `uid_base .. uid_base + 1024` (ids no account uses).
    pub uid_base: u32,
}

impl Default for HookSandbox {
    fn default() -> Self {
        Self {
            enabled: true,
            network: true,
            max_processes: 1024,
            memory_mb: 4096,
            read_only_paths: Vec::new(),
            uid_base: 2_000_000_000,
        }
    }
}

/// 64 MiB: a jar or a bundle; larger artifacts belong in the repository's build.
pub const DEFAULT_MAX_UPLOAD_BYTES: usize = 64 * 1024 * 1024;

/// 1 MB: far above any config or release request, far below what could hurt the API.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;

impl Default for Settings {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            data_dir: PathBuf::from("./data"),
            admin_password: None,
            database_url: None,
            redis_url: None,
            queue_name: crate::jobs::DEPLOY_QUEUE.into(),
            master_key: None,
            worker_concurrency: 4,
            ssh_connect_timeout_secs: 10,
            ssh_io_timeout_secs: 30,
            ssh_idle_secs: 60,
            release_nice: 10,
            session_ttl_secs: 12 * 3600,
            metrics_listen: None,
            notice_timeout_secs: 10,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_upload_bytes: DEFAULT_MAX_UPLOAD_BYTES,
            addr_file: None,
            http_header_timeout_secs: 10,
            http_body_timeout_secs: 60,
            http_keepalive_timeout_secs: 75,
            http_max_connections: 4096,
            login_window_secs: 60,
            login_max_failures: 5,
            login_max_failures_per_addr: 20,
            login_lockout_after: 3,
            login_lockout_secs: 900,
            login_hash_threads: 0,
            trusted_proxies: Vec::new(),
            terminal_idle_secs: 900,
            hook_sandbox: HookSandbox::default(),
            internal_allowlist: Vec::new(),
            zstd: true,
            artifacts_dir: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {source}")]
    Parse {
        path: PathBuf,
        source: toml::de::Error,
    },
    #[error("environment variable {name}: {reason}")]
    Env { name: &'static str, reason: String },
}

impl Settings {
    /// [`Settings::artifacts_dir`], or its default in the data folder.
    pub fn artifacts_dir(&self) -> PathBuf {
        self.artifacts_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("artifacts"))
    }
    /// The folders no hook, repository location or submodule may reach: the data folder (keys,
    /// database, caches) and the kept copies.
    pub fn private_dirs(&self) -> Vec<PathBuf> {
        let mut dirs = vec![self.data_dir.clone()];
        if let Some(a) = &self.artifacts_dir {
            dirs.push(a.clone());
        }
        dirs
    }
    pub fn ssh_connect_timeout(&self) -> Duration {
        Duration::from_secs(self.ssh_connect_timeout_secs)
    }
    pub fn ssh_idle(&self) -> Duration {
        Duration::from_secs(self.ssh_idle_secs)
    }
    pub fn ssh_io_timeout(&self) -> Duration {
        Duration::from_secs(self.ssh_io_timeout_secs)
    }
    /// [`Settings::trusted_proxies`] parsed (checked when the settings were loaded).
    pub fn trusted_proxy_nets(&self) -> Vec<ipnet::IpNet> {
        self.trusted_proxies
            .iter()
            .filter_map(|p| parse_net(p).ok())
            .collect()
    }

    /// Loads the settings from the process environment.
    pub fn load() -> Result<Self, ConfigError> {
        Self::load_from(|k| std::env::var(k).ok())
    }

    pub fn load_from(env: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let file = env("HIPPO_CONFIG").map(PathBuf::from).or_else(|| {
            let p = PathBuf::from("hippo.toml");
            p.exists().then_some(p)
        });
        let mut s = match file {
            Some(path) => {
                let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
                    path: path.clone(),
                    source,
                })?;
                toml::from_str(&text).map_err(|source| ConfigError::Parse { path, source })?
            }
            None => Settings::default(),
        };
        if let Some(v) = env("HIPPO_LISTEN") {
            s.listen = v;
        }
        if let Some(v) = env("HIPPO_METRICS_LISTEN").filter(|v| !v.is_empty()) {
            s.metrics_listen = Some(v);
        }
        if let Some(v) = env("HIPPO_ADDR_FILE").filter(|v| !v.is_empty()) {
            s.addr_file = Some(PathBuf::from(v));
        }
        if let Some(v) = env("HIPPO_TRUSTED_PROXIES") {
            s.trusted_proxies = v
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(str::to_owned)
                .collect();
        }
        if let Some(v) = env("HIPPO_DATA_DIR") {
            s.data_dir = PathBuf::from(v);
        }
        if let Some(v) = env("HIPPO_ARTIFACTS_DIR").filter(|v| !v.is_empty()) {
            s.artifacts_dir = Some(PathBuf::from(v));
        }
        if let Some(v) = env("HIPPO_DATABASE_URL").filter(|v| !v.is_empty()) {
            s.database_url = Some(Secret::new(v));
        }
        if let Some(v) = env("HIPPO_REDIS_URL").filter(|v| !v.is_empty()) {
            s.redis_url = Some(Secret::new(v));
        }
        if let Some(v) = env("HIPPO_QUEUE_NAME").filter(|v| !v.is_empty()) {
            s.queue_name = v;
        }
        if let Some(v) = env("HIPPO_MASTER_KEY").filter(|v| !v.is_empty()) {
            s.master_key = Some(Secret::new(v));
        }
        if let Some(v) = env("HIPPO_ADMIN_PASSWORD") {
            s.admin_password = Some(Secret::new(v));
        }
        fn num<T: std::str::FromStr>(name: &'static str, v: String) -> Result<T, ConfigError> {
            v.parse().map_err(|_| ConfigError::Env {
                name,
                reason: format!("'{v}' is not a number"),
            })
        }
        if let Some(v) = env("HIPPO_ZSTD") {
            s.zstd = match v.trim() {
                "1" | "true" | "yes" | "on" => true,
                "0" | "false" | "no" | "off" => false,
                _ => {
                    return Err(ConfigError::Env {
                        name: "HIPPO_ZSTD",
                        reason: format!("'{v}' is not 0/1/true/false"),
                    });
                }
            };
        }
        if let Some(v) = env("HIPPO_WORKER_CONCURRENCY") {
            s.worker_concurrency = num("HIPPO_WORKER_CONCURRENCY", v)?;
        }
        if let Some(v) = env("HIPPO_SSH_CONNECT_TIMEOUT_SECS") {
            s.ssh_connect_timeout_secs = num("HIPPO_SSH_CONNECT_TIMEOUT_SECS", v)?;
        }
        if let Some(v) = env("HIPPO_NOTICE_TIMEOUT_SECS") {
            s.notice_timeout_secs = num("HIPPO_NOTICE_TIMEOUT_SECS", v)?;
        }
        if let Some(v) = env("HIPPO_MAX_BODY_BYTES") {
            s.max_body_bytes = num("HIPPO_MAX_BODY_BYTES", v)?;
        }
        if let Some(v) = env("HIPPO_SSH_IO_TIMEOUT_SECS") {
            s.ssh_io_timeout_secs = num("HIPPO_SSH_IO_TIMEOUT_SECS", v)?;
        }
        macro_rules! numbers {
            ($($name:literal => $field:ident),* $(,)?) => {
                $(if let Some(v) = env($name) {
                    s.$field = num($name, v)?;
                })*
            };
        }
        numbers!(
            "HIPPO_HTTP_HEADER_TIMEOUT_SECS" => http_header_timeout_secs,
            "HIPPO_HTTP_BODY_TIMEOUT_SECS" => http_body_timeout_secs,
            "HIPPO_HTTP_KEEPALIVE_TIMEOUT_SECS" => http_keepalive_timeout_secs,
            "HIPPO_HTTP_MAX_CONNECTIONS" => http_max_connections,
            "HIPPO_LOGIN_WINDOW_SECS" => login_window_secs,
            "HIPPO_LOGIN_MAX_FAILURES" => login_max_failures,
            "HIPPO_LOGIN_MAX_FAILURES_PER_ADDR" => login_max_failures_per_addr,
            "HIPPO_LOGIN_LOCKOUT_AFTER" => login_lockout_after,
            "HIPPO_LOGIN_LOCKOUT_SECS" => login_lockout_secs,
            "HIPPO_LOGIN_HASH_THREADS" => login_hash_threads,
            "HIPPO_TERMINAL_IDLE_SECS" => terminal_idle_secs,
            "HIPPO_MAX_UPLOAD_BYTES" => max_upload_bytes,
            "HIPPO_SSH_IDLE_SECS" => ssh_idle_secs,
            "HIPPO_RELEASE_NICE" => release_nice,
        );
        if s.release_nice > 19 {
            return Err(ConfigError::Env {
                name: "HIPPO_RELEASE_NICE",
                reason: "must be 0 to 19".into(),
            });
        }
        for (name, value) in [
            ("HIPPO_HTTP_HEADER_TIMEOUT_SECS", s.http_header_timeout_secs),
            ("HIPPO_HTTP_BODY_TIMEOUT_SECS", s.http_body_timeout_secs),
            (
                "HIPPO_HTTP_KEEPALIVE_TIMEOUT_SECS",
                s.http_keepalive_timeout_secs,
            ),
            ("HIPPO_HTTP_MAX_CONNECTIONS", s.http_max_connections as u64),
            ("HIPPO_LOGIN_WINDOW_SECS", s.login_window_secs),
            ("HIPPO_TERMINAL_IDLE_SECS", s.terminal_idle_secs),
        ] {
            if value == 0 {
                return Err(ConfigError::Env {
                    name,
                    reason: "must be at least 1".into(),
                });
            }
        }
        for p in &s.trusted_proxies {
            parse_net(p).map_err(|_| ConfigError::Env {
                name: "HIPPO_TRUSTED_PROXIES",
                reason: format!("'{p}' is not an IP address or CIDR range"),
            })?;
        }
        load_guard_settings(&mut s, &env)?;
        if s.worker_concurrency == 0 {
            return Err(ConfigError::Env {
                name: "HIPPO_WORKER_CONCURRENCY",
                reason: "must be at least 1".into(),
            });
        }
        Ok(s)
    }
}

/// `10.0.0.1` (one address) or `10.0.0.0/8`.
fn parse_net(text: &str) -> Result<ipnet::IpNet, ipnet::AddrParseError> {
    match text.parse::<std::net::IpAddr>() {
        Ok(ip) => Ok(ipnet::IpNet::from(ip)),
        Err(_) => text.parse(),
    }
}

/// The sandbox and outbound-address settings (`HIPPO_HOOK_*`, `HIPPO_INTERNAL_ALLOWLIST`).
fn load_guard_settings(
    s: &mut Settings,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<(), ConfigError> {
    fn flag(name: &'static str, v: &str) -> Result<bool, ConfigError> {
        match v.trim().to_ascii_lowercase().as_str() {
            "on" | "true" | "yes" | "1" => Ok(true),
            "off" | "false" | "no" | "0" => Ok(false),
            _ => Err(ConfigError::Env {
                name,
                reason: format!("'{v}' is not on or off"),
            }),
        }
    }
    fn num<T: std::str::FromStr>(name: &'static str, v: &str) -> Result<T, ConfigError> {
        v.trim().parse().map_err(|_| ConfigError::Env {
            name,
            reason: format!("'{v}' is not a number"),
        })
    }
    let h = &mut s.hook_sandbox;
    if let Some(v) = env("HIPPO_HOOK_SANDBOX") {
        h.enabled = flag("HIPPO_HOOK_SANDBOX", &v)?;
    }
    if let Some(v) = env("HIPPO_HOOK_NETWORK") {
        h.network = flag("HIPPO_HOOK_NETWORK", &v)?;
    }
    if let Some(v) = env("HIPPO_HOOK_MAX_PROCESSES") {
        h.max_processes = num("HIPPO_HOOK_MAX_PROCESSES", &v)?;
    }
    if let Some(v) = env("HIPPO_HOOK_MEMORY_MB") {
        h.memory_mb = num("HIPPO_HOOK_MEMORY_MB", &v)?;
    }
    if let Some(v) = env("HIPPO_HOOK_UID_BASE") {
        h.uid_base = num("HIPPO_HOOK_UID_BASE", &v)?;
    }
    if let Some(v) = env("HIPPO_HOOK_READ_ONLY_PATHS") {
        h.read_only_paths = v
            .split(':')
            .filter(|p| !p.trim().is_empty())
            .map(|p| PathBuf::from(p.trim()))
            .collect();
    }
    if let Some(v) = env("HIPPO_INTERNAL_ALLOWLIST") {
        s.internal_allowlist = v
            .split([',', ' ', '\n'])
            .map(str::trim)
            .filter(|x| !x.is_empty())
            .map(str::to_owned)
            .collect();
    }
    let bad = |name: &'static str, reason: &str| {
        Err(ConfigError::Env {
            name,
            reason: reason.into(),
        })
    };
    if let Err(e) = crate::net::AddressPolicy::parse(&s.internal_allowlist) {
        return Err(ConfigError::Env {
            name: "HIPPO_INTERNAL_ALLOWLIST",
            reason: e.to_string(),
        });
    }
    let h = &s.hook_sandbox;
    if h.max_processes == 0 {
        return bad("HIPPO_HOOK_MAX_PROCESSES", "must be at least 1");
    }
    if h.memory_mb < 16 {
        return bad("HIPPO_HOOK_MEMORY_MB", "must be at least 16");
    }
    if h.uid_base < 1000 || h.uid_base > u32::MAX - 2048 {
        return bad(
            "HIPPO_HOOK_UID_BASE",
            "must be between 1000 and 4294965247 (and name ids no account uses)",
        );
    }
    if let Some(p) = h.read_only_paths.iter().find(|p| !p.is_absolute()) {
        return Err(ConfigError::Env {
            name: "HIPPO_HOOK_READ_ONLY_PATHS",
            reason: format!("'{}' is not an absolute path", p.display()),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn environment_overrides_defaults() {
        let s = Settings::load_from(|k| match k {
            "HIPPO_LISTEN" => Some("127.0.0.1:9999".into()),
            "HIPPO_DATA_DIR" => Some("/tmp/x".into()),
            "HIPPO_ADMIN_PASSWORD" => Some("pw".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(s.listen, "127.0.0.1:9999");
        assert_eq!(s.data_dir, PathBuf::from("/tmp/x"));
        assert_eq!(format!("{:?}", s.admin_password), "Some(Secret(***))");
    }

    #[test]
    fn hook_sandbox_and_allowlist_settings() {
        let d = Settings::load_from(|_| None).unwrap();
        assert!(d.hook_sandbox.enabled && d.hook_sandbox.network);
        assert!(d.internal_allowlist.is_empty());
        let s = Settings::load_from(|k| match k {
            "HIPPO_HOOK_SANDBOX" => Some("off".into()),
            "HIPPO_HOOK_NETWORK" => Some("false".into()),
            "HIPPO_HOOK_MAX_PROCESSES" => Some("64".into()),
            "HIPPO_HOOK_MEMORY_MB" => Some("256".into()),
            "HIPPO_HOOK_READ_ONLY_PATHS" => Some("/opt/node:/opt/jdk".into()),
            "HIPPO_INTERNAL_ALLOWLIST" => Some("10.0.0.0/8, smtp.corp.example".into()),
            _ => None,
        })
        .unwrap();
        assert!(!s.hook_sandbox.enabled && !s.hook_sandbox.network);
        assert_eq!(
            (s.hook_sandbox.max_processes, s.hook_sandbox.memory_mb),
            (64, 256)
        );
        assert_eq!(s.hook_sandbox.read_only_paths.len(), 2);
        assert_eq!(s.internal_allowlist, ["10.0.0.0/8", "smtp.corp.example"]);
        for (k, v) in [
            ("HIPPO_HOOK_SANDBOX", "maybe"),
            ("HIPPO_HOOK_MAX_PROCESSES", "0"),
            ("HIPPO_HOOK_READ_ONLY_PATHS", "relative/path"),
            ("HIPPO_INTERNAL_ALLOWLIST", "not a host!"),
        ] {
            let e = Settings::load_from(|n| (n == k).then(|| v.to_owned())).unwrap_err();
            assert!(e.to_string().contains(k), "{e}");
        }
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("hippo.toml");
        std::fs::write(
            &file,
            "internal_allowlist = [\"127.0.0.1\"]\n[hook_sandbox]\nnetwork = false\nmemory_mb = 512\n",
        )
        .unwrap();
        let f = file.to_str().unwrap().to_owned();
        let s = Settings::load_from(|k| (k == "HIPPO_CONFIG").then(|| f.clone())).unwrap();
        assert!(!s.hook_sandbox.network && s.hook_sandbox.enabled);
        assert_eq!(s.hook_sandbox.memory_mb, 512);
        assert_eq!(s.internal_allowlist, ["127.0.0.1"]);
    }

    #[test]
    fn a_bad_number_names_the_variable() {
        let e = Settings::load_from(|k| (k == "HIPPO_SSH_IO_TIMEOUT_SECS").then(|| "soon".into()))
            .unwrap_err();
        assert!(e.to_string().contains("HIPPO_SSH_IO_TIMEOUT_SECS"));
    }

    #[test]
    fn trusted_proxies_are_addresses_or_ranges_and_a_bad_one_names_the_variable() {
        let s = Settings::load_from(|k| {
            (k == "HIPPO_TRUSTED_PROXIES").then(|| "10.0.0.0/8, 192.168.1.7,::1".into())
        })
        .unwrap();
        let nets = s.trusted_proxy_nets();
        assert_eq!(nets.len(), 3);
        assert!(nets[0].contains(&"10.1.2.3".parse::<std::net::IpAddr>().unwrap()));
        assert!(nets[1].contains(&"192.168.1.7".parse::<std::net::IpAddr>().unwrap()));
        assert!(!nets[1].contains(&"192.168.1.8".parse::<std::net::IpAddr>().unwrap()));
        let e = Settings::load_from(|k| (k == "HIPPO_TRUSTED_PROXIES").then(|| "proxy".into()))
            .unwrap_err();
        assert!(e.to_string().contains("HIPPO_TRUSTED_PROXIES"), "{e}");
    }

    #[test]
    fn release_threads_are_niced_by_default_and_only_0_to_19_is_taken() {
        assert_eq!(Settings::load_from(|_| None).unwrap().release_nice, 10);
        let nice = |v: &str| {
            let v = v.to_owned();
            Settings::load_from(move |k| (k == "HIPPO_RELEASE_NICE").then(|| v.clone()))
        };
        assert_eq!(nice("0").unwrap().release_nice, 0);
        assert_eq!(nice("19").unwrap().release_nice, 19);
        for bad in ["20", "-1", "high"] {
            let e = nice(bad).unwrap_err();
            assert!(e.to_string().contains("HIPPO_RELEASE_NICE"), "{bad}: {e}");
        }
    }

    #[test]
    fn a_zero_timeout_is_refused() {
        let e =
            Settings::load_from(|k| (k == "HIPPO_HTTP_HEADER_TIMEOUT_SECS").then(|| "0".into()))
                .unwrap_err();
        assert!(
            e.to_string().contains("HIPPO_HTTP_HEADER_TIMEOUT_SECS"),
            "{e}"
        );
    }
}
