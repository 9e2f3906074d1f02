//! The one SSH transport: connects to a host with a pinned (or first-seen) host key, authenticates
//! with a private key held in memory, and runs [`RemoteCommand`]s, streaming their output and
//! uploading their stdin.
//!
//! ssh2 (libssh2) is blocking: call this from `spawn_blocking` or a dedicated thread. Nothing here
//! can hang forever:
//! - connecting is bounded by [`Timeouts::connect`], the handshake and authentication by
//!   [`Timeouts::io`] (libssh2's session timeout);
//! - [`SshSession::run`] is bounded by its `deadline`, and a host that stops answering altogether
//!   (even to the keepalives sent while a command is silent) fails after about [`Timeouts::io`],
//!   so a long silent hook is fine but a stopped host is detected quickly.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use sha2::{Digest, Sha256};
use ssh2::{Channel, ErrorCode, MethodType, Session};

use crate::commands::RemoteCommand;

/// libssh2's `LIBSSH2_ERROR_TIMEOUT`.
const LIBSSH2_ERROR_TIMEOUT: i32 = -9;
/// libssh2's `LIBSSH2_ERROR_EAGAIN`.
const LIBSSH2_ERROR_EAGAIN: i32 = -37;
/// Size of the chunks read from the caller's stdin and written to the channel.
const UPLOAD_CHUNK: usize = 64 * 1024;
/// An output line longer than this is delivered in pieces (a remote that never prints '\n' must
/// not grow memory without bound).
const MAX_LINE: usize = 64 * 1024;

/// Time limits for one host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// TCP connect.
    pub connect: Duration,
    /// Each blocking step of the handshake and authentication, opening a channel; and how long a
    /// running command may go without any sign of life from the host.
    pub io: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(10),
            io: Duration::from_secs(30),
        }
    }
}

/// How long one command may run ([`SshSession::run_watched`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// In all; `Duration::MAX` for no limit.
    pub total: Duration,
    /// Without taking input or printing anything (None: no such rule). A host that answers
    /// nothing at all fails after about [`Timeouts::io`] whatever this says.
    pub stall: Option<Duration>,
}

/// Who to log in as. The private key is never printed (`Debug` redacts it).
#[derive(Clone)]
pub struct Credentials {
    pub user: String,
    /// Private key in OpenSSH PEM text (`-----BEGIN OPENSSH PRIVATE KEY-----`), without passphrase.
    pub private_key_openssh: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("private_key_openssh", &"<redacted>")
            .finish()
    }
}

/// A server's public host key, as in `known_hosts` / `*.pub`: `<key_type> <key_base64>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostKey {
    /// e.g. `ssh-ed25519`, `ecdsa-sha2-nistp256`, `ssh-rsa` (the type named inside the key).
    pub key_type: String,
    /// The key blob, standard base64 with padding (as OpenSSH prints it).
    pub key_base64: String,
}

impl HostKey {
    /// `SHA256:<base64 without padding>`, as `ssh-keygen -l` prints it; `invalid key` if
    /// `key_base64` is not base64.
    pub fn fingerprint(&self) -> String {
        match STANDARD.decode(self.key_base64.trim()) {
            Ok(bytes) => sha256_fingerprint(&bytes),
            Err(_) => "invalid key".to_owned(),
        }
    }

    /// Parses an OpenSSH public key line (`ssh-ed25519 AAAA... [comment]`).
    pub fn from_openssh(line: &str) -> Option<HostKey> {
        let mut parts = line.split_whitespace();
        let key_type = parts.next()?.to_owned();
        let key_base64 = parts.next()?.to_owned();
        let blob = STANDARD.decode(&key_base64).ok()?;
        (key_type_in_blob(&blob)? == key_type).then_some(HostKey {
            key_type,
            key_base64,
        })
    }

    /// `<key_type> <key_base64>`.
    pub fn to_openssh(&self) -> String {
        format!("{} {}", self.key_type, self.key_base64)
    }

    fn from_blob(blob: &[u8]) -> HostKey {
        HostKey {
            key_type: key_type_in_blob(blob).unwrap_or_else(|| "unknown".to_owned()),
            key_base64: STANDARD.encode(blob),
        }
    }
}

/// `SHA256:<base64 without padding>` of a public key blob, as `ssh-keygen -l` prints it.
pub fn sha256_fingerprint(key_bytes: &[u8]) -> String {
    format!(
        "SHA256:{}",
        STANDARD_NO_PAD.encode(Sha256::digest(key_bytes))
    )
}

/// The key type named at the start of an SSH public key blob (`string key_type`).
fn key_type_in_blob(blob: &[u8]) -> Option<String> {
    let len: [u8; 4] = blob.get(..4)?.try_into().ok()?;
    let len = u32::from_be_bytes(len) as usize;
    let name = blob.get(4..4usize.checked_add(len)?)?;
    String::from_utf8(name.to_vec()).ok()
}

/// How to check the server's host key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostKeyCheck {
    /// Accept whatever key the host presents (first contact); [`connect`] returns it to be pinned.
    TrustOnFirstUse,
    /// Refuse to authenticate unless the host presents exactly this key.
    Expect(HostKey),
}

/// Which stream a line of command output came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputStream {
    Stdout,
    Stderr,
}

/// Errors, worded so that a user can act on them. They never contain key material.
#[derive(thiserror::Error, Debug)]
pub enum SshError {
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    #[error("SSH handshake failed: {0}")]
    Handshake(String),
    #[error(
        "host key mismatch: the pinned host key is {expected} but the host presented {got}; \
         nothing was sent to it. If the host was reinstalled, update its pinned host key; \
         otherwise something may be intercepting the connection"
    )]
    HostKeyMismatch { expected: String, got: String },
    #[error(
        "authentication as user `{user}` failed ({detail}); check that the deploy public key is in \
         that user's ~/.ssh/authorized_keys on the host"
    )]
    Auth { user: String, detail: String },
    #[error(
        "the host does not accept password login for user `{user}` (it offers: {offered}); \
         add the platform public key to that user's ~/.ssh/authorized_keys by hand"
    )]
    PasswordRefused { user: String, offered: String },
    #[error("the host refused the password for user `{user}`")]
    WrongPassword { user: String },
    #[error("timed out: {what}")]
    TimedOut { what: String },
    #[error("SSH channel error: {0}")]
    Channel(String),
    /// The caller's stop flag was raised (the release was cancelled): the connection was shut
    /// down, which ends the remote command (a hook wrapper stops its process group).
    #[error("stopped on {addr}: the release was cancelled")]
    Stopped { addr: String },
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

impl SshError {
    /// A short label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            SshError::Connect { .. } => "connect",
            SshError::Handshake(_) => "handshake",
            SshError::HostKeyMismatch { .. } => "host_key",
            SshError::Auth { .. } => "auth",
            SshError::PasswordRefused { .. } => "password_refused",
            SshError::WrongPassword { .. } => "wrong_password",
            SshError::TimedOut { .. } => "timeout",
            SshError::Channel(_) => "channel",
            SshError::Stopped { .. } => "stopped",
            SshError::Io(_) => "io",
        }
    }
}

/// An authenticated SSH connection to one host. Runs one command at a time.
pub struct SshSession {
    sess: Session,
    /// A second handle on the TCP socket: to see whether the host sent anything (peek) and to
    /// shut the connection down after a timeout.
    probe: TcpStream,
    addr: String,
    io: Duration,
    /// Set after a timeout: the connection was shut down and cannot be used again.
    dead: AtomicBool,
    /// False while a command runs and after one that failed at the SSH level: only a session
    /// whose last command ended normally (whatever its exit code) may serve again
    /// ([`SshSession::reusable`]).
    clean: AtomicBool,
    /// Raised by someone else to stop the running command ([`SshSession::stop_on`]).
    stop: Option<Arc<AtomicBool>>,
}

impl std::fmt::Debug for SshSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SshSession")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

fn is_code(e: &ssh2::Error, code: i32) -> bool {
    e.code() == ErrorCode::Session(code)
}

fn millis(d: Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX).max(1)
}

/// Host key algorithms to ask for when the given key type is pinned.
fn hostkey_algorithms(key_type: &str) -> String {
    match key_type {
        "ssh-rsa" => "rsa-sha2-512,rsa-sha2-256,ssh-rsa".to_owned(),
        other => other.to_owned(),
    }
}

/// Connects, checks the host key (before authenticating), and logs in with the private key.
/// Returns the session and the key the host presented (to pin after [`HostKeyCheck::TrustOnFirstUse`]).
pub fn connect(
    addr: &str,
    port: u16,
    creds: &Credentials,
    check: &HostKeyCheck,
    t: &Timeouts,
) -> Result<(SshSession, HostKey), SshError> {
    let open = handshake(addr, port, check, t)?;
    let target = open.target.clone();
    open.sess
        .userauth_pubkey_memory(&creds.user, None, &creds.private_key_openssh, None)
        .map_err(|e| {
            if is_code(&e, LIBSSH2_ERROR_TIMEOUT) {
                SshError::TimedOut {
                    what: format!("authentication on {target} (no answer)"),
                }
            } else {
                SshError::Auth {
                    user: creds.user.clone(),
                    detail: e.message().to_owned(),
                }
            }
        })?;
    if !open.sess.authenticated() {
        return Err(SshError::Auth {
            user: creds.user.clone(),
            detail: "the host did not accept the key".to_owned(),
        });
    }
    Ok(open.session(t))
}

/// A password typed by a person for one connection ([`connect_with_password`]). It is wiped
/// from memory when dropped and never printed (`Debug` redacts it).
pub struct Password(zeroize::Zeroizing<String>);

impl Password {
    pub fn new(s: String) -> Self {
        Self(zeroize::Zeroizing::new(s))
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// Answers every keyboard-interactive prompt with the password (PAM hosts ask "Password:" this
/// way instead of through the `password` method).
struct PasswordPrompt<'a>(&'a Password);

impl ssh2::KeyboardInteractivePrompt for PasswordPrompt<'_> {
    fn prompt<'b>(
        &mut self,
        _username: &str,
        _instructions: &str,
        prompts: &[ssh2::Prompt<'b>],
    ) -> Vec<String> {
        // libssh2 copies and frees these answers itself; only our own copy is wiped.
        prompts
            .iter()
            .map(|_| self.0.0.as_str().to_owned())
            .collect()
    }
}

/// Connects and checks the host key like [`connect`], then logs in as `user` with a password
/// (the `password` method, or `keyboard-interactive` when that is all the host offers). Used
/// once, to install the platform key; the password goes nowhere else.
pub fn connect_with_password(
    addr: &str,
    port: u16,
    user: &str,
    password: &Password,
    check: &HostKeyCheck,
    t: &Timeouts,
) -> Result<(SshSession, HostKey), SshError> {
    let open = handshake(addr, port, check, t)?;
    let target = open.target.clone();
    let timed_out = |e: &ssh2::Error| {
        is_code(e, LIBSSH2_ERROR_TIMEOUT).then(|| SshError::TimedOut {
            what: format!("authentication on {target} (no answer)"),
        })
    };
    let offered = match open.sess.auth_methods(user) {
        Ok(m) => m.to_owned(),
        Err(e) => {
            return Err(timed_out(&e).unwrap_or(SshError::Handshake(format!(
                "{target} did not say how user `{user}` may log in: {e}"
            ))));
        }
    };
    let methods: Vec<&str> = offered.split(',').map(str::trim).collect();
    let result = if methods.contains(&"password") {
        open.sess.userauth_password(user, password.0.as_str())
    } else if methods.contains(&"keyboard-interactive") {
        open.sess
            .userauth_keyboard_interactive(user, &mut PasswordPrompt(password))
    } else {
        let _ = open.sess.disconnect(None, "no password login", None);
        return Err(SshError::PasswordRefused {
            user: user.to_owned(),
            offered,
        });
    };
    if let Err(e) = result {
        if let Some(t) = timed_out(&e) {
            return Err(t);
        }
        return Err(SshError::WrongPassword {
            user: user.to_owned(),
        });
    }
    if !open.sess.authenticated() {
        return Err(SshError::WrongPassword {
            user: user.to_owned(),
        });
    }
    Ok(open.session(t))
}

/// A connection whose host key has been checked, not yet authenticated.
struct Handshaken {
    sess: Session,
    probe: TcpStream,
    target: String,
    presented: HostKey,
}

impl Handshaken {
    fn session(self, t: &Timeouts) -> (SshSession, HostKey) {
        let keepalive = keepalive_interval(t.io);
        self.sess
            .set_keepalive(true, u32::try_from(keepalive.as_secs()).unwrap_or(u32::MAX));
        tracing::debug!(host = %self.target, host_key = %self.presented.fingerprint(), "ssh connected");
        (
            SshSession {
                sess: self.sess,
                probe: self.probe,
                addr: self.target,
                io: t.io,
                dead: AtomicBool::new(false),
                clean: AtomicBool::new(true),
                stop: None,
            },
            self.presented,
        )
    }
}

/// TCP connect (bounded by [`Timeouts::connect`]), SSH handshake and the host key check, which
/// happens before anything (a key, a password) is sent to the host.
fn handshake(
    addr: &str,
    port: u16,
    check: &HostKeyCheck,
    t: &Timeouts,
) -> Result<Handshaken, SshError> {
    let target = format!("{addr}:{port}");
    let connect_err = |source| SshError::Connect {
        addr: target.clone(),
        source,
    };
    let addrs: Vec<_> = (addr, port)
        .to_socket_addrs()
        .map_err(connect_err)?
        .collect();
    let mut last_err = std::io::Error::new(
        std::io::ErrorKind::NotFound,
        "the address resolved to nothing",
    );
    let mut tcp = None;
    for a in &addrs {
        match TcpStream::connect_timeout(a, t.connect) {
            Ok(s) => {
                tcp = Some(s);
                break;
            }
            Err(e) => last_err = e,
        }
    }
    let tcp = tcp.ok_or_else(|| connect_err(last_err))?;
    tcp.set_read_timeout(Some(t.io)).map_err(connect_err)?;
    tcp.set_write_timeout(Some(t.io)).map_err(connect_err)?;
    tcp.set_nodelay(true).map_err(connect_err)?;
    let probe = tcp.try_clone().map_err(connect_err)?;

    let handshake_err = |e: ssh2::Error| {
        if is_code(&e, LIBSSH2_ERROR_TIMEOUT) {
            SshError::TimedOut {
                what: format!("SSH handshake with {target} (no answer)"),
            }
        } else {
            SshError::Handshake(format!("with {target}: {e}"))
        }
    };
    let mut sess = Session::new().map_err(handshake_err)?;
    sess.set_tcp_stream(tcp);
    // 0 would mean "no timeout".
    sess.set_timeout(millis(t.io));
    match check {
        HostKeyCheck::Expect(key) => sess
            .method_pref(MethodType::HostKey, &hostkey_algorithms(&key.key_type))
            .map_err(|e| {
                SshError::Handshake(format!(
                    "pinned host key type `{}` is not supported: {e}",
                    key.key_type
                ))
            })?,
        HostKeyCheck::TrustOnFirstUse => {
            // Prefer ed25519 like OpenSSH does (libssh2 prefers ECDSA).
            let preferred = [
                "ssh-ed25519",
                "ecdsa-sha2-nistp256",
                "ecdsa-sha2-nistp384",
                "ecdsa-sha2-nistp521",
                "rsa-sha2-512",
                "rsa-sha2-256",
                "ssh-rsa",
            ];
            let supported = sess.supported_algs(MethodType::HostKey).unwrap_or_default();
            let prefs: Vec<&str> = preferred
                .into_iter()
                .filter(|a| supported.contains(a))
                .collect();
            if !prefs.is_empty() {
                // Best effort: libssh2's own order is fine too.
                let _ = sess.method_pref(MethodType::HostKey, &prefs.join(","));
            }
        }
    }
    sess.handshake().map_err(handshake_err)?;

    let (blob, _) = sess
        .host_key()
        .ok_or_else(|| SshError::Handshake(format!("{target} presented no host key")))?;
    let presented = HostKey::from_blob(blob);
    if let HostKeyCheck::Expect(pinned) = check {
        let pinned_blob = STANDARD.decode(pinned.key_base64.trim()).ok();
        if pinned_blob.as_deref() != Some(blob) || pinned.key_type != presented.key_type {
            tracing::warn!(host = %target, expected = %pinned.fingerprint(), got = %presented.fingerprint(), "host key mismatch");
            let _ = sess.disconnect(None, "host key mismatch", None);
            return Err(SshError::HostKeyMismatch {
                expected: pinned.fingerprint(),
                got: presented.fingerprint(),
            });
        }
    }

    Ok(Handshaken {
        sess,
        probe,
        target,
        presented,
    })
}

/// Keepalives are sent every io/4 (whole seconds; libssh2's minimum is 2 s, at most 15 s).
fn keepalive_interval(io: Duration) -> Duration {
    Duration::from_secs((io.as_secs() / 4).clamp(2, 15))
}

/// How long a running command may go without any traffic from the host: `io`, but at least two
/// keepalive intervals and a second, so that a quiet but healthy host is never mistaken for a
/// stopped one.
fn silence_limit(io: Duration) -> Duration {
    io.max(keepalive_interval(io) * 2 + Duration::from_secs(1))
}

impl SshSession {
    /// `host:port` of this session.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// From now on, a command running (or started) while `flag` is raised ends at once with
    /// [`SshError::Stopped`], and the connection is shut down: sshd then closes the channel,
    /// and a hook run by `commands::run_hook` is stopped with its process group. `None` lets
    /// commands run to their end again (the switch phase is never interrupted).
    pub fn stop_on(&mut self, flag: Option<Arc<AtomicBool>>) {
        self.stop = flag;
    }

    fn stop_asked(&self) -> bool {
        self.stop.as_ref().is_some_and(|f| f.load(Ordering::SeqCst))
    }

    /// Runs a command, streaming output lines to `on_line`, copying `stdin` (if any) to the
    /// channel in ~64 KiB chunks while calling `on_bytes(total_sent)`. The remote stdin is closed
    /// (EOF) after the copy, or at once without `stdin` — unless the command holds its stdin
    /// ([`RemoteCommand::holds_stdin`]): then it stays open until the command exits. Stdout and stderr are read while stdin
    /// is being written, so neither side can block the other.
    ///
    /// Returns the remote exit code (128 + signal number if the remote command was killed by a
    /// signal). `deadline` is the total time allowed for the command (hooks can run long); a
    /// command may stay silent for as long as it likes as long as the host answers keepalives,
    /// but a host that sends nothing at all for about [`Timeouts::io`] (stopped, network gone)
    /// fails with [`SshError::TimedOut`]. After a `TimedOut` the connection is shut down (the
    /// remote command may still be running) and this session cannot be used again.
    pub fn run(
        &self,
        cmd: &RemoteCommand,
        stdin: Option<&mut dyn Read>,
        deadline: Duration,
        on_line: &mut dyn FnMut(OutputStream, &str),
        on_bytes: &mut dyn FnMut(u64),
    ) -> Result<i32, SshError> {
        self.run_watched(
            cmd,
            stdin,
            Limits {
                total: deadline,
                stall: None,
            },
            on_line,
            on_bytes,
        )
    }

    /// [`SshSession::run`] with a progress rule besides the total: with `limits.stall` set, a
    /// command that neither takes input nor prints anything for that long fails even though
    /// its host still answers (a stuck disk, a hung `tar`), while one that keeps moving, however
    /// slowly, runs until `limits.total`.
    pub fn run_watched(
        &self,
        cmd: &RemoteCommand,
        stdin: Option<&mut dyn Read>,
        limits: Limits,
        on_line: &mut dyn FnMut(OutputStream, &str),
        on_bytes: &mut dyn FnMut(u64),
    ) -> Result<i32, SshError> {
        let deadline = limits.total;
        if self.dead.load(Ordering::SeqCst) {
            return Err(SshError::Channel(format!(
                "the connection to {} was closed after an earlier failure; reconnect",
                self.addr
            )));
        }
        if self.stop_asked() {
            return Err(SshError::Stopped {
                addr: self.addr.clone(),
            });
        }
        let started = Instant::now();
        self.clean.store(false, Ordering::SeqCst);
        // Blocking mode with the session timeout for opening the channel.
        self.sess.set_blocking(true);
        let opened = self.open(cmd);
        let result = match opened {
            Ok(mut ch) => {
                self.sess.set_blocking(false);
                let r = self.pump(
                    &mut ch,
                    (stdin, cmd.holds_stdin()),
                    // A total too large for the clock (`Duration::MAX`) means no total.
                    (started.checked_add(deadline), deadline, limits.stall),
                    on_line,
                    on_bytes,
                );
                if r.is_err() {
                    // Freed in non-blocking mode: must not wait on a host that may be gone.
                    drop(ch);
                }
                self.sess.set_blocking(true);
                r
            }
            Err(e) => Err(e),
        };
        if let Err(SshError::TimedOut { .. } | SshError::Stopped { .. }) = &result {
            self.dead.store(true, Ordering::SeqCst);
            let _ = self.probe.shutdown(Shutdown::Both);
        }
        self.clean.store(result.is_ok(), Ordering::SeqCst);
        result
    }

    /// Whether this connection may serve another run (`ssh_pool`): not shut down, not asked
    /// to stop, and its last command ended normally.
    pub fn reusable(&self) -> bool {
        !self.dead.load(Ordering::SeqCst) && self.clean.load(Ordering::SeqCst) && !self.stop_asked()
    }

    /// Whether the host still answers on this connection: a channel opened and closed within
    /// `limit` (one round trip; sshd starts nothing for it). An idle connection kept between
    /// runs may have been closed by the host or the network meanwhile.
    pub fn alive_within(&self, limit: Duration) -> bool {
        if !self.reusable() {
            return false;
        }
        self.sess.set_blocking(true);
        self.sess.set_timeout(millis(limit));
        let ok = match self.sess.channel_session() {
            Ok(mut ch) => ch.close().is_ok(),
            Err(_) => false,
        };
        self.sess.set_timeout(millis(self.io));
        if !ok {
            self.dead.store(true, Ordering::SeqCst);
            let _ = self.probe.shutdown(Shutdown::Both);
        }
        ok
    }

    fn open(&self, cmd: &RemoteCommand) -> Result<Channel, SshError> {
        let mut ch = self
            .sess
            .channel_session()
            .map_err(|e| self.step_err("opening a channel", e))?;
        ch.exec(&cmd.render())
            .map_err(|e| self.step_err("starting the command", e))?;
        Ok(ch)
    }

    /// Waits up to `limit` for the host to send something (the end of a command, output, a
    /// window adjustment), returning as soon as it does — not a fixed nap, which would add up
    /// to `limit` to every command. When libssh2 waits to write, it naps `limit`.
    fn wait_for_socket(&self, limit: Duration) {
        use rustix::event::{PollFd, PollFlags, Timespec, poll};
        if matches!(
            self.sess.block_directions(),
            ssh2::BlockDirections::Outbound | ssh2::BlockDirections::Both
        ) {
            std::thread::sleep(limit);
            return;
        }
        let timeout = Timespec {
            tv_sec: 0,
            tv_nsec: i64::from(limit.subsec_nanos()),
        };
        let mut fds = [PollFd::new(&self.probe, PollFlags::IN)];
        if poll(&mut fds, Some(&timeout)).is_err() {
            std::thread::sleep(limit);
        }
    }

    fn step_err(&self, what: &str, e: ssh2::Error) -> SshError {
        if is_code(&e, LIBSSH2_ERROR_TIMEOUT) {
            SshError::TimedOut {
                what: format!("{what} on {} (no answer within {:?})", self.addr, self.io),
            }
        } else {
            SshError::Channel(format!("{what} on {}: {e}", self.addr))
        }
    }

    fn pump(
        &self,
        ch: &mut Channel,
        // The caller's input, and whether to keep the channel's stdin open after it.
        (mut stdin, hold_stdin): (Option<&mut dyn Read>, bool),
        (deadline_at, deadline, stall): (Option<Instant>, Duration, Option<Duration>),
        on_line: &mut dyn FnMut(OutputStream, &str),
        on_bytes: &mut dyn FnMut(u64),
    ) -> Result<i32, SshError> {
        let silence = silence_limit(self.io);
        let mut upload = Upload::new(stdin.is_none(), hold_stdin);
        let mut out = LineSplitter::new(OutputStream::Stdout);
        let mut err = LineSplitter::new(OutputStream::Stderr);
        let mut rbuf = vec![0u8; 32 * 1024];
        let mut streams_done = false;
        let mut last_heard = Instant::now();
        // The last time the command took input or printed something.
        let mut last_moved = last_heard;
        let mut idle = Duration::from_millis(1);
        loop {
            let now = Instant::now();
            if self.stop_asked() {
                return Err(SshError::Stopped {
                    addr: self.addr.clone(),
                });
            }
            if deadline_at.is_some_and(|at| now >= at) {
                return Err(SshError::TimedOut {
                    what: format!(
                        "the command on {} did not finish within {deadline:?}",
                        self.addr
                    ),
                });
            }
            // Anything waiting on the socket is a sign of life (keepalive replies included). Peek
            // before libssh2 gets to consume it; the socket is non-blocking under libssh2.
            if let Ok(n) = self.probe.peek(&mut [0u8; 1])
                && n > 0
            {
                last_heard = now;
            }
            let mut progressed = false;

            if !upload.finished {
                let before = ch.write_window().remaining;
                let sent = upload.step(ch, &mut stdin, on_bytes, &self.addr)?;
                let after = ch.write_window().remaining;
                if u64::from(after) + sent as u64 > u64::from(before) {
                    // The host granted more window: it is reading.
                    last_heard = now;
                }
                progressed |= upload.progressed;
            }

            if !streams_done {
                let a = read_stream(ch, 0, &mut rbuf, &mut out, on_line, &self.addr)?;
                let b = read_stream(ch, 1, &mut rbuf, &mut err, on_line, &self.addr)?;
                if a.got_data || b.got_data {
                    progressed = true;
                    last_heard = now;
                }
                streams_done = ch.eof();
            }

            if streams_done {
                // The host has sent everything; the channel closes when the command exits. Stdin
                // not yet consumed by then is dropped (the command did not want it).
                match ch.wait_close() {
                    Ok(()) => break,
                    Err(e) if is_code(&e, LIBSSH2_ERROR_EAGAIN) => {}
                    Err(e) => return Err(self.step_err("waiting for the command to exit", e)),
                }
            }

            match self.sess.keepalive_send() {
                Ok(_) => {}
                Err(e) if is_code(&e, LIBSSH2_ERROR_EAGAIN) => {}
                Err(e) => return Err(self.step_err("sending a keepalive", e)),
            }

            if progressed {
                last_moved = now;
            }
            if let Some(stall) = stall
                && now.duration_since(last_moved) > stall
            {
                return Err(SshError::TimedOut {
                    what: format!(
                        "the command on {} made no progress for {stall:?} (took no input, printed nothing) although the host answers",
                        self.addr
                    ),
                });
            }
            if now.duration_since(last_heard) > silence {
                return Err(SshError::TimedOut {
                    what: format!(
                        "no answer from {} for {silence:?} while running a command (host stopped or network down)",
                        self.addr
                    ),
                });
            }
            if progressed {
                idle = Duration::from_millis(1);
            } else {
                self.wait_for_socket(idle);
                idle = (idle * 2).min(Duration::from_millis(20));
            }
        }
        out.finish(on_line);
        err.finish(on_line);
        let signal = ch
            .exit_signal()
            .map_err(|e| self.step_err("reading the exit signal", e))?
            .exit_signal;
        if let Some(sig) = signal {
            tracing::debug!(host = %self.addr, signal = %sig, "remote command killed by signal");
            return Ok(128 + signal_number(&sig));
        }
        ch.exit_status()
            .map_err(|e| self.step_err("reading the exit status", e))
    }

    /// Runs an interactive login shell on a PTY (the web terminal) until the shell exits, the
    /// caller hangs up (`input` closes or sends [`TermInput::Close`]), no input arrives for
    /// `idle`, or the host stops answering (about [`Timeouts::io`], as in [`SshSession::run`]).
    /// Output bytes go to `on_output`, which returns false to hang up.
    pub fn interactive(
        &self,
        cols: u32,
        rows: u32,
        idle: Duration,
        input: &std::sync::mpsc::Receiver<TermInput>,
        on_output: &mut dyn FnMut(&[u8]) -> bool,
    ) -> Result<TermEnd, SshError> {
        self.sess.set_blocking(true);
        let mut ch = self
            .sess
            .channel_session()
            .map_err(|e| self.step_err("opening a channel", e))?;
        ch.request_pty(
            "xterm-256color",
            None,
            Some((cols.clamp(2, 1000), rows.clamp(2, 1000), 0, 0)),
        )
        .map_err(|e| self.step_err("asking for a terminal", e))?;
        ch.shell()
            .map_err(|e| self.step_err("starting the shell", e))?;
        self.sess.set_blocking(false);
        let result = self.terminal_loop(&mut ch, idle, input, on_output);
        if result.is_err() {
            drop(ch);
        } else {
            let _ = ch.close();
        }
        self.sess.set_blocking(true);
        if let Err(SshError::TimedOut { .. }) = &result {
            self.dead.store(true, Ordering::SeqCst);
            let _ = self.probe.shutdown(Shutdown::Both);
        }
        result
    }

    fn terminal_loop(
        &self,
        ch: &mut Channel,
        idle: Duration,
        input: &std::sync::mpsc::Receiver<TermInput>,
        on_output: &mut dyn FnMut(&[u8]) -> bool,
    ) -> Result<TermEnd, SshError> {
        use std::sync::mpsc::RecvTimeoutError;
        let silence = silence_limit(self.io);
        let mut rbuf = vec![0u8; 32 * 1024];
        let mut pending: Vec<u8> = Vec::new();
        let mut resize: Option<(u32, u32)> = None;
        let mut last_heard = Instant::now();
        let mut last_input = Instant::now();
        let mut wait = Duration::from_millis(1);
        loop {
            let now = Instant::now();
            if let Ok(n) = self.probe.peek(&mut [0u8; 1])
                && n > 0
            {
                last_heard = now;
            }
            let mut progressed = false;
            // Output first: the person is waiting for it.
            for _ in 0..16 {
                match ch.stream(0).read(&mut rbuf) {
                    Ok(0) => break,
                    Ok(n) => {
                        progressed = true;
                        last_heard = now;
                        if !on_output(rbuf.get(..n).unwrap_or_default()) {
                            return Ok(TermEnd::Closed);
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(e) => {
                        return Err(SshError::Channel(format!(
                            "reading the terminal of {}: {e}",
                            self.addr
                        )));
                    }
                }
            }
            if ch.eof() {
                return Ok(TermEnd::HostClosed);
            }
            if !pending.is_empty() {
                match ch.write(&pending) {
                    Ok(n) => {
                        pending.drain(..n.min(pending.len()));
                        progressed |= n > 0;
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(e) => {
                        return Err(SshError::Channel(format!(
                            "typing into the terminal of {}: {e}",
                            self.addr
                        )));
                    }
                }
            }
            if let Some((c, r)) = resize {
                match ch.request_pty_size(c.clamp(2, 1000), r.clamp(2, 1000), None, None) {
                    Ok(()) => resize = None,
                    Err(e) if is_code(&e, LIBSSH2_ERROR_EAGAIN) => {}
                    Err(e) => return Err(self.step_err("resizing the terminal", e)),
                }
            }
            match self.sess.keepalive_send() {
                Ok(_) => {}
                Err(e) if is_code(&e, LIBSSH2_ERROR_EAGAIN) => {}
                Err(e) => return Err(self.step_err("sending a keepalive", e)),
            }
            if now.duration_since(last_heard) > silence {
                return Err(SshError::TimedOut {
                    what: format!("no answer from {} for {silence:?}", self.addr),
                });
            }
            if now.duration_since(last_input) > idle {
                return Ok(TermEnd::Idle);
            }
            if progressed {
                wait = Duration::from_millis(1);
            }
            // Wait for input (or the next look at the channel).
            match input.recv_timeout(wait) {
                Ok(TermInput::Data(d)) => {
                    last_input = Instant::now();
                    pending.extend_from_slice(&d);
                    wait = Duration::from_millis(1);
                }
                Ok(TermInput::Resize { cols, rows }) => {
                    last_input = Instant::now();
                    resize = Some((cols, rows));
                }
                Ok(TermInput::Close) | Err(RecvTimeoutError::Disconnected) => {
                    return Ok(TermEnd::Closed);
                }
                Err(RecvTimeoutError::Timeout) => {
                    if !progressed {
                        wait = (wait * 2).min(Duration::from_millis(20));
                    }
                }
            }
        }
    }

    /// Says goodbye to the host (best effort, bounded by [`Timeouts::io`]).
    pub fn disconnect(self) {
        if !self.dead.load(Ordering::SeqCst) {
            self.sess.set_blocking(true);
            let _ = self.sess.disconnect(None, "bye", None);
        }
    }
}

/// What the person at a web terminal sends.
#[derive(Debug)]
pub enum TermInput {
    /// Keystrokes (or pasted text).
    Data(Vec<u8>),
    Resize {
        cols: u32,
        rows: u32,
    },
    Close,
}

/// Why an interactive shell ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TermEnd {
    /// The person closed it.
    Closed,
    /// The shell exited (or the host closed the channel).
    HostClosed,
    /// No input for the idle time-out.
    Idle,
}

impl TermEnd {
    pub fn as_str(self) -> &'static str {
        match self {
            TermEnd::Closed => "closed",
            TermEnd::HostClosed => "host_closed",
            TermEnd::Idle => "idle",
        }
    }
}

fn signal_number(name: &str) -> i32 {
    match name {
        "HUP" => 1,
        "INT" => 2,
        "QUIT" => 3,
        "ILL" => 4,
        "ABRT" => 6,
        "FPE" => 8,
        "KILL" => 9,
        "USR1" => 10,
        "SEGV" => 11,
        "USR2" => 12,
        "PIPE" => 13,
        "ALRM" => 14,
        "TERM" => 15,
        _ => 127,
    }
}

struct ReadOutcome {
    got_data: bool,
}

/// Reads what is available on one stream (0 = stdout, 1 = stderr) without blocking.
fn read_stream(
    ch: &mut Channel,
    id: i32,
    buf: &mut [u8],
    lines: &mut LineSplitter,
    on_line: &mut dyn FnMut(OutputStream, &str),
    addr: &str,
) -> Result<ReadOutcome, SshError> {
    let mut got_data = false;
    // Bounded so that one chatty stream cannot starve the other or the upload.
    for _ in 0..16 {
        match ch.stream(id).read(buf) {
            Ok(0) => break,
            Ok(n) => {
                got_data = true;
                lines.push(buf.get(..n).unwrap_or_default(), on_line);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(e) => {
                return Err(SshError::Channel(format!(
                    "reading command output from {addr}: {e}"
                )));
            }
        }
    }
    Ok(ReadOutcome { got_data })
}

/// The copy of the caller's stdin to the channel.
struct Upload {
    buf: Vec<u8>,
    pos: usize,
    source_done: bool,
    /// Never send EOF: the command watches its stdin and EOF means we are gone.
    hold: bool,
    finished: bool,
    total: u64,
    progressed: bool,
}

impl Upload {
    fn new(no_stdin: bool, hold: bool) -> Self {
        Self {
            buf: Vec::with_capacity(if no_stdin { 0 } else { UPLOAD_CHUNK }),
            pos: 0,
            source_done: no_stdin,
            hold,
            finished: false,
            total: 0,
            progressed: false,
        }
    }

    /// One non-blocking step: refill from the source if needed, write, or send EOF at the end.
    /// Returns the number of bytes written to the channel.
    fn step(
        &mut self,
        ch: &mut Channel,
        source: &mut Option<&mut dyn Read>,
        on_bytes: &mut dyn FnMut(u64),
        addr: &str,
    ) -> Result<usize, SshError> {
        self.progressed = false;
        if self.pos == self.buf.len() && !self.source_done {
            self.buf.resize(UPLOAD_CHUNK, 0);
            self.pos = 0;
            let n = match source {
                Some(r) => loop {
                    match r.read(&mut self.buf) {
                        Ok(n) => break n,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(SshError::Io(e)),
                    }
                },
                None => 0,
            };
            self.buf.truncate(n);
            if n == 0 {
                self.source_done = true;
            }
            self.progressed = true;
        }
        if self.pos < self.buf.len() {
            let chunk = self.buf.get(self.pos..).unwrap_or_default();
            return match ch.write(chunk) {
                Ok(n) => {
                    self.pos += n;
                    self.total += n as u64;
                    if n > 0 {
                        self.progressed = true;
                        on_bytes(self.total);
                    }
                    Ok(n)
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(0),
                Err(e) => {
                    if ch.eof() {
                        // The command exited without reading all of its input.
                        self.finished = true;
                        Ok(0)
                    } else {
                        Err(SshError::Channel(format!("sending input to {addr}: {e}")))
                    }
                }
            };
        }
        if self.source_done && self.hold {
            // Stdin stays open until the command exits (the channel then closes).
            self.finished = true;
            self.progressed = true;
        } else if self.source_done {
            match ch.send_eof() {
                Ok(()) => {
                    self.finished = true;
                    self.progressed = true;
                }
                Err(e) if is_code(&e, LIBSSH2_ERROR_EAGAIN) => {}
                Err(e) => {
                    if ch.eof() {
                        self.finished = true;
                    } else {
                        return Err(SshError::Channel(format!("closing input on {addr}: {e}")));
                    }
                }
            }
        }
        Ok(0)
    }
}

/// Splits a byte stream into '\n'-terminated lines (lossy UTF-8), keeping a partial last line.
struct LineSplitter {
    which: OutputStream,
    pending: Vec<u8>,
}

impl LineSplitter {
    fn new(which: OutputStream) -> Self {
        Self {
            which,
            pending: Vec::new(),
        }
    }

    fn push(&mut self, mut data: &[u8], on_line: &mut dyn FnMut(OutputStream, &str)) {
        while let Some(i) = data.iter().position(|&b| b == b'\n') {
            let (line, rest) = data.split_at(i);
            self.pending.extend_from_slice(line);
            self.emit(on_line);
            data = rest.get(1..).unwrap_or_default();
        }
        self.pending.extend_from_slice(data);
        while self.pending.len() >= MAX_LINE {
            let rest = self.pending.split_off(MAX_LINE);
            self.emit(on_line);
            self.pending = rest;
        }
    }

    fn emit(&mut self, on_line: &mut dyn FnMut(OutputStream, &str)) {
        on_line(self.which, &String::from_utf8_lossy(&self.pending));
        self.pending.clear();
    }

    fn finish(&mut self, on_line: &mut dyn FnMut(OutputStream, &str)) {
        if !self.pending.is_empty() {
            self.emit(on_line);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_matches_ssh_keygen_format() {
        // `ssh-keygen -l` prints SHA256:Fp4ykMMlJd2M6Hzc5wrcAdFCaT9N2rFFd28McC4uw14 for this key.
        let line = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINBU7owxcFfzV7zpp8627TPvQ0rpQEYhewOxigwLWLBu root@vm";
        let key = HostKey::from_openssh(line).expect("parse");
        assert_eq!(key.key_type, "ssh-ed25519");
        assert_eq!(
            key.fingerprint(),
            "SHA256:Fp4ykMMlJd2M6Hzc5wrcAdFCaT9N2rFFd28McC4uw14"
        );
        assert_eq!(format!("{} root@vm", key.to_openssh()), line);
        // The type must match the one inside the blob.
        assert_eq!(
            HostKey::from_openssh(&line.replace("ssh-ed25519 ", "ssh-rsa ")),
            None
        );
        let bad = HostKey {
            key_type: "ssh-ed25519".into(),
            key_base64: "!!".into(),
        };
        assert_eq!(bad.fingerprint(), "invalid key");
    }

    #[test]
    fn credentials_debug_redacts_key() {
        let c = Credentials {
            user: "deploy".into(),
            private_key_openssh: "SECRET".into(),
        };
        let s = format!("{c:?}");
        assert!(s.contains("deploy") && !s.contains("SECRET"));
    }

    #[test]
    fn line_splitting() {
        let mut got = Vec::new();
        let mut on_line = |s: OutputStream, l: &str| got.push((s, l.to_owned()));
        let mut sp = LineSplitter::new(OutputStream::Stderr);
        sp.push(b"a\nb", &mut on_line);
        sp.push(b"c\n\nd\xc3", &mut on_line);
        sp.push(b"\xbc", &mut on_line);
        sp.finish(&mut on_line);
        let lines: Vec<&str> = got.iter().map(|(_, l)| l.as_str()).collect();
        assert_eq!(lines, vec!["a", "bc", "", "dü"]);
        assert!(got.iter().all(|(s, _)| *s == OutputStream::Stderr));
    }

    #[test]
    fn silence_limits() {
        assert_eq!(
            keepalive_interval(Duration::from_secs(2)),
            Duration::from_secs(2)
        );
        assert_eq!(
            silence_limit(Duration::from_secs(2)),
            Duration::from_secs(5)
        );
        assert_eq!(
            silence_limit(Duration::from_secs(30)),
            Duration::from_secs(30)
        );
        assert_eq!(
            keepalive_interval(Duration::from_secs(120)),
            Duration::from_secs(15)
        );
    }
}
