//! The sandbox of release-server hooks (before / after checkout). A hook is a user's script
//! run on the machine that holds Hippo's data, so it runs in bubblewrap (`bwrap`):
//!
//! - **its own mount namespace**: `/usr`, `/etc` and the system library links read-only, a
//!   fresh `/proc` and `/dev`, its own `/tmp` (a folder of the run, writable), and the one
//!   folder it works in at `/hippo/src` (the exported tree, writable) or `/hippo/repo` (the
//!   repository cache, read-only). Hippo's data folder (database, master key, other configs'
//!   caches, artifacts), its config file and everything else on the machine do not exist there;
//! - **an unprivileged user**: when Hippo runs as root, each hook runs as its own user id
//!   (`uid_base + n`, taken with a lock so two hooks never share one; no capabilities, no
//!   groups, `no_new_privs`); otherwise as Hippo's user inside a user namespace;
//! - **its own pid, IPC and UTS namespaces** and a new session: it sees and signals only its
//!   own processes, and everything it started dies with it (`--die-with-parent`, and the
//!   namespace's init ending ends the rest);
//! - **limits**: processes+threads (`RLIMIT_NPROC`, counted per hook user), memory per process
//!   (`RLIMIT_DATA`), CPU seconds, no core dumps; the wall-clock time-out is the caller's;
//! - **a cleared environment**: a fixed `PATH`, `HOME=/tmp`, the `HIPPO_*` variables and the
//!   config's custom variables. The variables never pass through the privileged part of the
//!   start (bwrap and setpriv run with a fixed environment, so `LD_PRELOAD` and friends in a
//!   custom variable cannot reach them): they are written to a file the unprivileged shell
//!   reads before the script;
//! - **the network is kept** (builds fetch packages) unless `HIPPO_HOOK_NETWORK=off`.
//!
//! Without bubblewrap, or where it cannot work (no root and no user namespaces), hooks fail
//! with a message saying how to fix it; `HIPPO_HOOK_SANDBOX=off` runs them unconfined, as
//! Hippo's own user, and every such run says so in its events. docs/security.md has the model.
use hippo_shared::config::{HookSandbox, Settings};
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where the hook's working folder appears inside the sandbox.
pub const SRC_INSIDE: &str = "/hippo/src";
pub const REPO_INSIDE: &str = "/hippo/repo";
/// The hook's script and variables (read-only inside).
const HOOK_INSIDE: &str = "/hippo/hook";
/// User ids of hooks (root only): `uid_base .. uid_base + UID_SLOTS`.
const UID_SLOTS: u32 = 1024;
/// The `PATH` hooks start with.
const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Reads the variables (`NAME=value`, NUL-separated) into the environment, then runs the
/// script. Fixed text: no value is ever part of it (`declare` assigns the value as data; it is
/// never evaluated). A name the shell keeps read-only (`UID`) is skipped, as the shell skips it
/// in an inherited environment (`export` would end the shell there: it is a special builtin).
const PREAMBLE: &str = "while IFS= read -r -d '' __hippo_kv; do declare -gx -- \"$__hippo_kv\" 2>/dev/null || true; done < \"$1\"; unset __hippo_kv; shift; . \"$0\"";

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("{0}")]
    Unavailable(String),
    #[error("cannot prepare the hook sandbox: {0}")]
    Io(#[from] std::io::Error),
}

/// The folder a hook works in.
pub struct WorkDir<'a> {
    pub host: &'a Path,
    /// `SRC_INSIDE` (writable) or `REPO_INSIDE` (read-only).
    pub inside: &'static str,
    pub writable: bool,
}

/// A hook ready to spawn. Keep it until the process has ended (it holds the hook's user id).
pub struct Prepared {
    pub command: tokio::process::Command,
    _uid_lock: Option<File>,
    pub confined: bool,
}

#[derive(Debug, Clone)]
enum Kind {
    Bubblewrap {
        bwrap: PathBuf,
        prlimit: PathBuf,
        /// Root: each hook drops to its own user id with setpriv.
        setpriv: Option<PathBuf>,
    },
    Unavailable(String),
    Off,
}

#[derive(Debug, Clone)]
pub struct Sandbox {
    kind: Kind,
    limits: HookSandbox,
    /// Secret places to hide if they lie under a folder the sandbox shows (data folder, config
    /// file).
    hidden: Vec<PathBuf>,
    uid_locks: PathBuf,
}

fn find_program(name: &str) -> Option<PathBuf> {
    ["/usr/bin", "/bin", "/usr/sbin", "/sbin", "/usr/local/bin"]
        .iter()
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

impl Sandbox {
    /// Finds bubblewrap and checks that it works here (one quick sandboxed `true`).
    pub fn detect(settings: &Settings) -> Self {
        let limits = settings.hook_sandbox.clone();
        let data = hippo_shared::net::resolve_path(&settings.data_dir);
        // The data folder and, when it lies elsewhere, the folder of kept copies.
        let private: Vec<PathBuf> = settings
            .private_dirs()
            .iter()
            .map(|d| hippo_shared::net::resolve_path(d))
            .collect();
        let mut hidden = private.clone();
        let config_file = std::env::var_os("HIPPO_CONFIG")
            .map(PathBuf::from)
            .or_else(|| Some(PathBuf::from("hippo.toml")).filter(|p| p.exists()));
        if let Some(f) = config_file {
            hidden.push(hippo_shared::net::resolve_path(&f));
        }
        let mut sb = Self {
            kind: Kind::Off,
            limits,
            hidden,
            uid_locks: data.join("hook-uids"),
        };
        if !sb.limits.enabled {
            return sb;
        }
        for p in &sb.limits.read_only_paths {
            let p = hippo_shared::net::resolve_path(p);
            if private
                .iter()
                .any(|d| p.starts_with(d) || d.starts_with(&p))
            {
                sb.kind = Kind::Unavailable(format!(
                    "HIPPO_HOOK_READ_ONLY_PATHS names {}, which holds or lies in Hippo's data \
                     folder or its kept copies; hooks must never see them",
                    p.display()
                ));
                return sb;
            }
        }
        let fix = "install bubblewrap (Debian/Ubuntu: apt install bubblewrap), or set \
                   HIPPO_HOOK_SANDBOX=off to run hooks unconfined as Hippo's own user (they can \
                   then read Hippo's data and secrets; see docs/security.md)";
        let (Some(bwrap), Some(prlimit)) = (find_program("bwrap"), find_program("prlimit")) else {
            sb.kind = Kind::Unavailable(format!(
                "release-server hooks run in a sandbox and bubblewrap (bwrap) or prlimit is not \
                 installed: {fix}"
            ));
            return sb;
        };
        let setpriv = if is_root() {
            match find_program("setpriv") {
                Some(p) => Some(p),
                None => {
                    sb.kind = Kind::Unavailable(
                        "setpriv (util-linux) is not installed; hooks cannot drop root".into(),
                    );
                    return sb;
                }
            }
        } else {
            None
        };
        sb.kind = Kind::Bubblewrap {
            bwrap,
            prlimit,
            setpriv,
        };
        // Probe: does bwrap work here (user namespaces for a non-root Hippo, mount rights)?
        let probe = std::process::Command::new(sb.bwrap_path())
            .args(sb.base_args())
            .args(["--", "/usr/bin/true"])
            .env_clear()
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .output();
        match probe {
            Ok(out) if out.status.success() => {}
            Ok(out) => {
                let why = String::from_utf8_lossy(&out.stderr).trim().to_owned();
                sb.kind = Kind::Unavailable(format!(
                    "the hook sandbox (bubblewrap) does not work on this machine: {why}. Run \
                     Hippo as root, or allow unprivileged user namespaces \
                     (sysctl kernel.unprivileged_userns_clone=1; on Ubuntu an AppArmor profile \
                     for bwrap), or in a container allow them (docs/security.md); or set \
                     HIPPO_HOOK_SANDBOX=off to run hooks unconfined"
                ));
            }
            Err(e) => {
                sb.kind = Kind::Unavailable(format!("cannot start bubblewrap: {e}; {fix}"));
            }
        }
        sb
    }

    /// One line for the start-up log.
    pub fn describe(&self) -> String {
        match &self.kind {
            Kind::Bubblewrap { setpriv, .. } => format!(
                "release-server hooks run in bubblewrap as {}, at most {} processes and {} MiB \
                 per process, network {}",
                if setpriv.is_some() {
                    "their own unprivileged user ids"
                } else {
                    "Hippo's user in a user namespace"
                },
                self.limits.max_processes,
                self.limits.memory_mb,
                if self.limits.network { "on" } else { "off" }
            ),
            Kind::Unavailable(why) => format!("release-server hooks will fail: {why}"),
            Kind::Off => "HIPPO_HOOK_SANDBOX=off: release-server hooks run UNCONFINED as \
                          Hippo's own user and can read its data and secrets"
                .into(),
        }
    }

    /// Whether hooks run confined (a read-only folder stays read-only for them).
    pub fn confines(&self) -> bool {
        !matches!(self.kind, Kind::Off)
    }

    pub fn limits(&self) -> &HookSandbox {
        &self.limits
    }

    fn bwrap_path(&self) -> &Path {
        match &self.kind {
            Kind::Bubblewrap { bwrap, .. } => bwrap,
            _ => Path::new("bwrap"),
        }
    }

    /// Namespaces and the read-only system: what every sandboxed hook (and the probe) gets.
    fn base_args(&self) -> Vec<String> {
        let mut a: Vec<String> = [
            "--die-with-parent",
            "--new-session",
            "--unshare-pid",
            "--unshare-ipc",
            "--unshare-uts",
            "--unshare-cgroup-try",
            "--hostname",
            "hippo-hook",
        ]
        .map(String::from)
        .to_vec();
        if !self.limits.network {
            a.push("--unshare-net".into());
        }
        let ro = |a: &mut Vec<String>, p: &Path| {
            a.extend(["--ro-bind".into(), path_arg(p), path_arg(p)]);
        };
        ro(&mut a, Path::new("/usr"));
        for top in ["/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"] {
            let p = Path::new(top);
            match std::fs::symlink_metadata(p) {
                Ok(m) if m.file_type().is_symlink() => {
                    if let Ok(target) = std::fs::read_link(p) {
                        a.extend(["--symlink".into(), path_arg(&target), top.into()]);
                    }
                }
                Ok(m) if m.is_dir() => ro(&mut a, p),
                _ => {}
            }
        }
        ro(&mut a, Path::new("/etc"));
        // A resolv.conf that links out of /etc (systemd-resolved) must still resolve.
        if let Ok(real) = std::fs::canonicalize("/etc/resolv.conf")
            && !real.starts_with("/etc")
            && !real.starts_with("/usr")
        {
            ro(&mut a, &real);
        }
        for p in &self.limits.read_only_paths {
            if p.exists() {
                ro(&mut a, p);
            }
        }
        // Secret places under a shown folder (a data folder in /etc/hippo, a config file in
        // /etc) are covered: an empty folder, or /dev/null for a file.
        let shown: Vec<PathBuf> = ["/usr", "/etc", "/bin", "/sbin", "/lib", "/lib64"]
            .iter()
            .map(PathBuf::from)
            .chain(self.limits.read_only_paths.iter().cloned())
            .map(|p| hippo_shared::net::resolve_path(&p))
            .collect();
        for h in &self.hidden {
            if shown.iter().any(|s| h.starts_with(s)) {
                if h.is_dir() {
                    a.extend(["--tmpfs".into(), path_arg(h)]);
                } else if h.exists() {
                    a.extend(["--ro-bind".into(), "/dev/null".into(), path_arg(h)]);
                }
            }
        }
        a.extend(
            ["--proc", "/proc", "--dev", "/dev"]
                .map(String::from)
                .to_vec(),
        );
        a
    }

    /// Writes the hook's script and variables under `scratch` (the run's folder for this hook,
    /// created here; its `tmp` becomes the hook's `/tmp`) and builds the command that runs
    /// `script` with `bash -e` in `work`, sandboxed. Blocking (file system work).
    pub fn prepare(
        &self,
        hook: &str,
        script: &str,
        work: WorkDir<'_>,
        scratch: &Path,
        env: &[(String, String)],
        timeout: Duration,
    ) -> Result<Prepared, SandboxError> {
        let files = scratch.join("hook");
        let tmp = scratch.join("tmp");
        for d in [&files, &tmp] {
            let _ = std::fs::remove_dir_all(d);
            std::fs::create_dir_all(d)?;
        }
        let script_file = files.join(format!("{hook}.sh"));
        let env_file = files.join(format!("{hook}.env"));
        write_private(&script_file, script.as_bytes())?;
        let mut vars = Vec::new();
        for (k, v) in env {
            vars.extend_from_slice(k.as_bytes());
            vars.push(b'=');
            vars.extend_from_slice(v.as_bytes());
            vars.push(0);
        }
        write_private(&env_file, &vars)?;

        let (bwrap, prlimit, setpriv) = match &self.kind {
            Kind::Off => {
                // Unconfined: as before the sandbox, in the real folder, the real /tmp.
                let mut c = tokio::process::Command::new("bash");
                c.arg("-e")
                    .arg("-c")
                    .arg(PREAMBLE)
                    .arg(&script_file)
                    .arg(&env_file)
                    .current_dir(work.host)
                    .env_clear()
                    .env(
                        "PATH",
                        std::env::var("PATH").unwrap_or_else(|_| PATH.into()),
                    )
                    .env(
                        "HOME",
                        std::env::var("HOME").unwrap_or_else(|_| "/tmp".into()),
                    )
                    .env("LANG", "C.UTF-8");
                return Ok(Prepared {
                    command: c,
                    _uid_lock: None,
                    confined: false,
                });
            }
            Kind::Unavailable(why) => return Err(SandboxError::Unavailable(why.clone())),
            Kind::Bubblewrap {
                bwrap,
                prlimit,
                setpriv,
            } => (bwrap, prlimit, setpriv),
        };

        // Root: a user id of its own, owner of what the hook may write.
        let mut uid_lock = None;
        let mut uid = None;
        if setpriv.is_some() {
            let (id, lock) = self.take_uid()?;
            uid_lock = Some(lock);
            uid = Some(id);
            chown_tree(&tmp, id)?;
            chown_tree(&files, id)?;
            if work.writable {
                chown_tree(work.host, id)?;
            }
        }

        let mut args = self.base_args();
        args.extend(["--bind".into(), path_arg(&tmp), "/tmp".into()]);
        args.extend(["--symlink".into(), "/tmp".into(), "/var/tmp".into()]);
        args.extend([
            "--perms".into(),
            "0755".into(),
            "--dir".into(),
            "/hippo".into(),
        ]);
        args.extend([
            if work.writable { "--bind" } else { "--ro-bind" }.into(),
            path_arg(work.host),
            work.inside.into(),
        ]);
        args.extend(["--ro-bind".into(), path_arg(&files), HOOK_INSIDE.into()]);
        args.extend(["--chdir".into(), work.inside.into(), "--".into()]);
        if let (Some(setpriv), Some(uid)) = (setpriv, uid) {
            args.extend([
                path_arg(setpriv),
                format!("--reuid={uid}"),
                format!("--regid={uid}"),
                "--clear-groups".into(),
                "--inh-caps=-all".into(),
                "--bounding-set=-all".into(),
                "--no-new-privs".into(),
                "--".into(),
            ]);
        }
        let cpu = timeout.as_secs().max(1);
        args.extend([
            path_arg(prlimit),
            format!("--nproc={}", self.limits.max_processes),
            format!(
                "--data={}",
                self.limits.memory_mb.saturating_mul(1024 * 1024)
            ),
            format!("--cpu={cpu}"),
            "--core=0".into(),
            "--".into(),
            "/bin/bash".into(),
            "-e".into(),
            "-c".into(),
            PREAMBLE.into(),
            format!("{HOOK_INSIDE}/{hook}.sh"),
            format!("{HOOK_INSIDE}/{hook}.env"),
        ]);
        let mut c = tokio::process::Command::new(bwrap);
        c.args(args)
            .env_clear()
            .env("PATH", PATH)
            .env("HOME", "/tmp")
            .env("TMPDIR", "/tmp")
            .env("LANG", "C.UTF-8")
            .env("USER", "hippo-hook")
            .env("LOGNAME", "hippo-hook");
        Ok(Prepared {
            command: c,
            _uid_lock: uid_lock,
            confined: true,
        })
    }

    /// A free hook user id (a lock file per id, held while the hook runs).
    fn take_uid(&self) -> Result<(u32, File), SandboxError> {
        std::fs::create_dir_all(&self.uid_locks)?;
        for n in 0..UID_SLOTS {
            let id = self.limits.uid_base + n;
            let f = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .mode(0o600)
                .open(self.uid_locks.join(id.to_string()))?;
            match f.try_lock() {
                Ok(()) => return Ok((id, f)),
                Err(std::fs::TryLockError::WouldBlock) => continue,
                Err(std::fs::TryLockError::Error(e)) => return Err(e.into()),
            }
        }
        Err(SandboxError::Unavailable(format!(
            "all {UID_SLOTS} hook user ids are in use"
        )))
    }
}

fn path_arg(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)
}

/// Gives `root` and everything under it (links themselves, never their targets) to `uid`.
fn chown_tree(root: &Path, uid: u32) -> std::io::Result<()> {
    std::os::unix::fs::lchown(root, Some(uid), Some(uid))?;
    let meta = std::fs::symlink_metadata(root)?;
    if meta.is_dir() {
        for entry in std::fs::read_dir(root)? {
            chown_tree(&entry?.path(), uid)?;
        }
    }
    Ok(())
}
