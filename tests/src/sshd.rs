//! Real OpenSSH test hosts.
//!
//! Each [`TestHost`] is its own `/usr/sbin/sshd` (root only) in a private mount namespace where
//! a host-side directory ([`TestHost::root`]) is bind-mounted on `/srv`, listening on its own
//! loopback address and port, with its own host key. Everything is per host, so tests can run in
//! parallel threads.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// Root's home directory, replaced inside each host by [`TestHost::home`].
const REAL_HOME: &str = "/root";

/// One sshd "host".
pub struct TestHost {
    /// `host<index>`.
    pub name: String,
    /// `127.0.0.<10 + index>`.
    pub addr: String,
    pub port: u16,
    /// Host-side directory that the host sees as `/srv`.
    pub root: PathBuf,
    /// The host's public key: (type, base64), e.g. (`ssh-ed25519`, `AAAA...`).
    pub host_key: (String, String),
    /// The user who logs in with a password ([`TestHost::start_with_password_user`]).
    pub password_user: Option<PasswordUser>,
    /// Programs this host does not have ([`TestHost::start_without`]).
    hidden: Vec<PathBuf>,
    child: Option<Child>,
    dir: tempfile::TempDir,
}

/// A user of a test host who may log in with a password (and with the keys in their own
/// `~/.ssh/authorized_keys`, empty at start), not with the host's shared key file.
#[derive(Debug, Clone)]
pub struct PasswordUser {
    pub name: String,
    pub uid: u32,
    pub password: String,
}

impl PasswordUser {
    /// `deploy`, uid 4242, with the given password.
    pub fn deploy(password: &str) -> PasswordUser {
        PasswordUser {
            name: "deploy".to_owned(),
            uid: 4242,
            password: password.to_owned(),
        }
    }
}

impl std::fmt::Debug for TestHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestHost")
            .field("name", &self.name)
            .field("addr", &self.addr)
            .field("port", &self.port)
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
}

/// Generates an ed25519 key pair without passphrase in `dir` (`id_ed25519`, `id_ed25519.pub`)
/// with `ssh-keygen`. Returns (private key in OpenSSH PEM text, public key line).
pub fn generate_client_key(dir: &Path) -> anyhow::Result<(String, String)> {
    let path = dir.join("id_ed25519");
    keygen(&path, "hippo-test-client")?;
    let private = fs::read_to_string(&path).context("reading the generated private key")?;
    let public =
        fs::read_to_string(path.with_extension("pub")).context("reading the public key")?;
    Ok((private, public.trim().to_owned()))
}

fn keygen(path: &Path, comment: &str) -> anyhow::Result<()> {
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .context("running ssh-keygen")?;
    if !out.status.success() {
        bail!(
            "ssh-keygen failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

impl TestHost {
    /// Starts `/usr/sbin/sshd -D -e -f <cfg>` inside `unshare -m --propagation private` after
    /// `mount --bind <root> /srv` and `mount --bind <home> /root` (a clean home: the machine's
    /// `~/.bashrc` would otherwise run on every SSH command), listening on `127.0.0.{10+index}` on a free port, accepting
    /// `authorized_key` (an OpenSSH public key line) for any user (root included). Logs go to
    /// `sshd.log` in the host's temporary directory. Returns once the host answers with an SSH
    /// banner (at most 10 s). Needs root.
    pub fn start(index: u8, authorized_key: &str) -> anyhow::Result<TestHost> {
        Self::start_with(index, authorized_key, None)
    }

    /// Like [`TestHost::start`], plus a user who logs in with a password: inside the host's
    /// mount namespace `/etc/passwd`, `/etc/group` and `/etc/shadow` are copies with that user
    /// added (the machine's own files are untouched) and `/home` is the host's own, holding
    /// the user's empty home. `authorized_key` does not let that user in: only their own
    /// `~/.ssh/authorized_keys` does (none at start).
    pub fn start_with_password_user(
        index: u8,
        authorized_key: &str,
        user: PasswordUser,
    ) -> anyhow::Result<TestHost> {
        Self::start_with(index, authorized_key, Some(user))
    }

    /// Like [`TestHost::start`], on a host that lacks the given programs (absolute paths, e.g.
    /// `/usr/bin/zstd`): inside its mount namespace each is covered by `/dev/null`, which
    /// cannot be run (a host without `zstd`).
    pub fn start_without(
        index: u8,
        authorized_key: &str,
        programs: &[&str],
    ) -> anyhow::Result<TestHost> {
        Self::start_full(
            index,
            authorized_key,
            None,
            programs.iter().map(PathBuf::from).collect(),
        )
    }

    /// The password user's home as seen from outside the host.
    pub fn user_home(&self) -> Option<PathBuf> {
        let u = self.password_user.as_ref()?;
        Some(self.dir.path().join("homes").join(&u.name))
    }

    fn start_with(
        index: u8,
        authorized_key: &str,
        password_user: Option<PasswordUser>,
    ) -> anyhow::Result<TestHost> {
        Self::start_full(index, authorized_key, password_user, Vec::new())
    }

    fn start_full(
        index: u8,
        authorized_key: &str,
        password_user: Option<PasswordUser>,
        hidden: Vec<PathBuf>,
    ) -> anyhow::Result<TestHost> {
        crate::proc::check_prerequisites()?;
        let addr = format!("127.0.0.{}", 10u16 + u16::from(index));
        let name = format!("host{index}");
        fs::create_dir_all("/run/sshd").context("mkdir /run/sshd")?;
        fs::create_dir_all("/srv").context("mkdir /srv")?;
        if password_user.is_some() {
            fs::create_dir_all("/home").context("mkdir /home")?;
        }
        let dir = tempfile::Builder::new()
            .prefix(&format!("hippo-sshd-{name}-"))
            .tempdir()
            .context("creating the host's temporary directory")?;
        let root = dir.path().join("srv");
        fs::create_dir(&root)?;
        fs::create_dir(dir.path().join("home"))?;
        let key_path = dir.path().join("ssh_host_ed25519_key");
        keygen(&key_path, &name)?;
        let public = fs::read_to_string(key_path.with_extension("pub"))?;
        let mut parts = public.split_whitespace();
        let host_key = match (parts.next(), parts.next()) {
            (Some(t), Some(k)) => (t.to_owned(), k.to_owned()),
            _ => bail!("unexpected host public key: {public}"),
        };
        fs::write(
            dir.path().join("authorized_keys"),
            format!("{}\n", authorized_key.trim()),
        )?;
        fs::create_dir(dir.path().join("homes"))?;
        if let Some(u) = &password_user {
            write_user_files(dir.path(), u)?;
        }

        let mut host = TestHost {
            name,
            addr,
            port: 0,
            root,
            host_key,
            password_user,
            hidden,
            child: None,
            dir,
        };
        let mut last_err = anyhow::anyhow!("not started");
        // sshd cannot listen on port 0 and say which port it got: it gets a port outside the
        // ephemeral range (`proc::pick_port`); should another test's host take the same one
        // first, sshd exits and starts again on a new one.
        for _ in 0..5 {
            match host.spawn_sshd() {
                Ok(()) => return Ok(host),
                Err(e) => {
                    host.stop();
                    last_err = e;
                }
            }
        }
        Err(last_err)
    }

    /// The host is "reinstalled": sshd stops, gets a new host key and starts again on the same
    /// address and port (a client that pinned the old key must now refuse it).
    pub fn change_host_key(&mut self) -> anyhow::Result<()> {
        self.stop();
        let key_path = self.dir.path().join("ssh_host_ed25519_key");
        let _ = fs::remove_file(&key_path);
        let _ = fs::remove_file(key_path.with_extension("pub"));
        keygen(&key_path, &self.name)?;
        let public = fs::read_to_string(key_path.with_extension("pub"))?;
        let mut parts = public.split_whitespace();
        self.host_key = match (parts.next(), parts.next()) {
            (Some(t), Some(k)) => (t.to_owned(), k.to_owned()),
            _ => bail!("unexpected host public key: {public}"),
        };
        let port = self.port;
        self.spawn_sshd_on(port)
    }

    /// sshd and every session it serves stop, then sshd starts again on the same address,
    /// port and key (a reboot, as far as open connections can tell).
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.stop();
        let port = self.port;
        self.spawn_sshd_on(port)
    }

    /// The host key's fingerprint as `ssh-keygen -l` prints it (`SHA256:…`).
    pub fn host_key_fingerprint(&self) -> anyhow::Result<String> {
        let out = Command::new("ssh-keygen")
            .arg("-lf")
            .arg(self.dir.path().join("ssh_host_ed25519_key.pub"))
            .output()?;
        String::from_utf8(out.stdout)?
            .split_whitespace()
            .nth(1)
            .map(str::to_owned)
            .context("ssh-keygen -l printed no fingerprint")
    }

    fn spawn_sshd(&mut self) -> anyhow::Result<()> {
        let port = crate::proc::pick_port(&self.addr)?;
        self.spawn_sshd_on(port)
    }

    fn spawn_sshd_on(&mut self, port: u16) -> anyhow::Result<()> {
        self.port = port;
        let dir = self.dir.path();
        let cfg = dir.join("sshd_config");
        let config = format!(
            "ListenAddress {addr}\n\
             Port {port}\n\
             HostKey {key}\n\
             AuthorizedKeysFile {keys}\n\
             PermitRootLogin prohibit-password\n\
             PubkeyAuthentication yes\n\
             PasswordAuthentication no\n\
             KbdInteractiveAuthentication no\n\
             UsePAM no\n\
             StrictModes no\n\
             PidFile {pid}\n\
             LogLevel ERROR\n\
             MaxStartups 100\n\
             MaxSessions 50\n\
             {password_user}",
            password_user = match &self.password_user {
                // Match blocks come last: only this user logs in with a password, and only
                // with the keys in their own home.
                Some(u) => format!(
                    "Match User {}\n    AuthorizedKeysFile .ssh/authorized_keys\n    PasswordAuthentication yes\n",
                    u.name
                ),
                None => String::new(),
            },
            addr = self.addr,
            key = dir.join("ssh_host_ed25519_key").display(),
            keys = dir.join("authorized_keys").display(),
            pid = dir.join("sshd.pid").display(),
        );
        fs::write(&cfg, config)?;
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())?;
        // With a password user: their passwd/group/shadow entries and /home (files made by
        // `write_user_files` in the host's directory, "$5").
        let users = if self.password_user.is_some() {
            r#" && mount --bind "$5/passwd" /etc/passwd && mount --bind "$5/group" /etc/group && mount --bind "$5/shadow" /etc/shadow && mount --bind "$5/homes" /home"#
        } else {
            ""
        };
        // Hidden programs: "$6", "$7", … covered by /dev/null.
        let hide: String = (0..self.hidden.len())
            .map(|i| format!(r#" && mount --bind /dev/null "${{{}}}""#, i + 6))
            .collect();
        let script = format!(
            r#"mount --bind "$1" /srv && mount --bind "$3" "$4"{users}{hide} && exec /usr/sbin/sshd -D -e -f "$2""#
        );
        let child = crate::proc::command("unshare")
            .args(["-m", "--propagation", "private", "sh", "-c"])
            .arg(script)
            .arg("sh")
            .arg(&self.root)
            .arg(&cfg)
            .arg(self.home())
            .arg(REAL_HOME)
            .arg(dir)
            .args(&self.hidden)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            // Own process group: signals meant for the test runner's group do not reach it.
            .process_group(0)
            .spawn()
            .context("spawning unshare/sshd")?;
        self.child = Some(child);
        self.wait_ready(Duration::from_secs(10))
    }

    /// Waits until the host sends its SSH banner.
    fn wait_ready(&mut self, limit: Duration) -> anyhow::Result<()> {
        let sa: SocketAddr = format!("{}:{}", self.addr, self.port).parse()?;
        let started = Instant::now();
        loop {
            if let Some(child) = self.child.as_mut()
                && let Some(status) = child.try_wait()?
            {
                bail!(
                    "sshd for {} exited with {status}; log:\n{}",
                    self.name,
                    self.log()
                );
            }
            if let Ok(s) = TcpStream::connect_timeout(&sa, Duration::from_millis(500)) {
                s.set_read_timeout(Some(Duration::from_secs(2)))?;
                let mut banner = String::new();
                if BufReader::new(s).read_line(&mut banner).is_ok() && banner.starts_with("SSH-") {
                    return Ok(());
                }
            }
            if started.elapsed() > limit {
                bail!(
                    "sshd for {} did not start within {limit:?}; log:\n{}",
                    self.name,
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Host-side directory that the host sees as root's home (`/root`): empty at start, so the
    /// machine's own dotfiles (`~/.bashrc`, which sshd's `bash -c` sources) do not run on the
    /// test host.
    pub fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    /// The host's temporary directory (config, keys, log; `root` is inside it).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("sshd.log")
    }

    /// What sshd logged so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// The host key as an OpenSSH public key line (`ssh-ed25519 AAAA...`).
    pub fn host_key_line(&self) -> String {
        format!("{} {}", self.host_key.0, self.host_key.1)
    }

    /// The listening sshd's pid (`None` once stopped).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Freezes the host: SIGSTOP to sshd and all its descendants (per-connection sshd processes
    /// run in their own sessions, so they are found through /proc, parents first, repeating
    /// until no new process appears). TCP still accepts, nothing answers.
    pub fn pause(&self) {
        let Some(pid) = self.pid() else { return };
        let mut stopped = HashSet::new();
        loop {
            let all = descendants(pid);
            let new: Vec<u32> = all.into_iter().filter(|p| !stopped.contains(p)).collect();
            if new.is_empty() {
                break;
            }
            signal("STOP", &new);
            stopped.extend(new);
        }
    }

    /// Undoes [`TestHost::pause`].
    pub fn resume(&self) {
        if let Some(pid) = self.pid() {
            signal("CONT", &descendants(pid));
        }
    }

    /// Kills sshd and every process it started; the mount namespace goes away with them.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let mut all = descendants(child.id());
        // Kill the listener first so that it starts nothing new, then the rest.
        signal("KILL", &[child.id()]);
        all.extend(descendants(child.id()));
        all.sort_unstable();
        all.dedup();
        signal("KILL", &all);
        let _ = child.wait();
    }
}

impl Drop for TestHost {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The host's copies of `/etc/passwd`, `/etc/group`, `/etc/shadow` with `u` added (password
/// hashed by `openssl passwd -6`, given on stdin), and `u`'s empty home in `homes/`.
fn write_user_files(dir: &Path, u: &PasswordUser) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;
    let mut child = Command::new("openssl")
        .args(["passwd", "-6", "-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("running openssl passwd (Debian package openssl)")?;
    child
        .stdin
        .take()
        .context("openssl stdin")?
        .write_all(u.password.as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!(
            "openssl passwd failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let hash = String::from_utf8(out.stdout)?.trim().to_owned();
    let home = format!("/home/{}", u.name);
    let with = |file: &str, line: String| -> anyhow::Result<()> {
        let mut text = fs::read_to_string(Path::new("/etc").join(file)).unwrap_or_default();
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&line);
        fs::write(dir.join(file), text)?;
        Ok(())
    };
    with(
        "passwd",
        format!(
            "{n}:x:{id}:{id}:Hippo test:{home}:/bin/sh\n",
            n = u.name,
            id = u.uid
        ),
    )?;
    with("group", format!("{}:x:{}:\n", u.name, u.uid))?;
    with("shadow", format!("{}:{hash}:19000:0:99999:7:::\n", u.name))?;
    fs::set_permissions(dir.join("shadow"), fs::Permissions::from_mode(0o640))?;
    let h = dir.join("homes").join(&u.name);
    fs::create_dir_all(&h)?;
    std::os::unix::fs::chown(&h, Some(u.uid), Some(u.uid))?;
    fs::set_permissions(&h, fs::Permissions::from_mode(0o755))?;
    Ok(())
}

/// `kill -<sig> <pids>`; errors (already gone) are ignored.
fn signal(sig: &str, pids: &[u32]) {
    if pids.is_empty() {
        return;
    }
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .args(pids.iter().map(u32::to_string))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// `root` and all its descendants, parents before children.
fn descendants(root: u32) -> Vec<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    if let Ok(entries) = fs::read_dir("/proc") {
        for e in entries.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            let Ok(stat) = fs::read_to_string(e.path().join("stat")) else {
                continue;
            };
            // "pid (comm) state ppid ...": comm may contain spaces and parentheses.
            let Some(after) = stat.rfind(')').and_then(|i| stat.get(i + 1..)) else {
                continue;
            };
            let Some(ppid) = after
                .split_whitespace()
                .nth(1)
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            children.entry(ppid).or_default().push(pid);
        }
    }
    let mut out = vec![root];
    let mut i = 0;
    while let Some(&p) = out.get(i) {
        if let Some(c) = children.get(&p) {
            out.extend(c.iter().copied());
        }
        i += 1;
    }
    out
}
