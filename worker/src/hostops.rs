//! What Hippo does to a host outside a release (issue 14): the connectivity check and the
//! installation of the platform key with a one-time password. Blocking (ssh2): run on
//! `spawn_blocking`; every step has the transport's time limits.
use crate::commands::{self, RemoteCommand};
use crate::ssh::{
    self, Credentials, HostKey, HostKeyCheck, OutputStream, Password, SshError, SshSession,
    Timeouts,
};
use hippo_shared::db::inventory::{Host, HostCheck, PathCheck};
use hippo_shared::domain::ConfigId;
use std::time::{Duration, Instant};

/// The pinned key of a host, or trust on first use.
pub fn key_check(host: &Host) -> HostKeyCheck {
    match (&host.host_key_type, &host.host_key) {
        (Some(t), Some(k)) => HostKeyCheck::Expect(HostKey {
            key_type: t.clone(),
            key_base64: k.clone(),
        }),
        _ => HostKeyCheck::TrustOnFirstUse,
    }
}

fn port(host: &Host) -> u16 {
    u16::try_from(host.port).unwrap_or(22)
}

/// A path of a release config to check on the host: (`config_id`, `deploy`/`versions`, the
/// directory that must be writable).
#[derive(Debug, Clone)]
pub struct PathToCheck {
    pub config_id: ConfigId,
    pub kind: &'static str,
    pub path: String,
}

impl PathToCheck {
    /// The directories a config needs on its hosts: the deploy link's parent (the link is
    /// replaced there) and the versions directory.
    pub fn of_config(
        config_id: ConfigId,
        deploy_path: &str,
        versions_path: &str,
    ) -> [PathToCheck; 2] {
        let parent = std::path::Path::new(deploy_path)
            .parent()
            .map(|p| p.display().to_string())
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| "/".to_owned());
        [
            PathToCheck {
                config_id,
                kind: "deploy",
                path: parent,
            },
            PathToCheck {
                config_id,
                kind: "versions",
                path: versions_path.to_owned(),
            },
        ]
    }
}

/// A check's result and, after first contact, the host key to pin.
#[derive(Debug)]
pub struct CheckOutcome {
    pub check: HostCheck,
    pub pin: Option<HostKey>,
}

/// The stable reason code of an SSH failure.
pub fn reason(e: &SshError) -> &'static str {
    match e {
        SshError::Connect { .. } => "unreachable",
        SshError::TimedOut { .. } => "timeout",
        SshError::Handshake(_) => "handshake",
        SshError::HostKeyMismatch { .. } => "host_key_changed",
        SshError::Auth { .. }
        | SshError::PasswordRefused { .. }
        | SshError::WrongPassword { .. } => "auth",
        SshError::Channel(_) | SshError::Io(_) | SshError::Stopped { .. } => "command",
    }
}

/// Runs a short command; (exit code, stdout lines).
fn query(
    sess: &SshSession,
    cmd: &RemoteCommand,
    limit: Duration,
) -> Result<(i32, Vec<String>), SshError> {
    let mut out = Vec::new();
    let code = sess.run(
        cmd,
        None,
        limit,
        &mut |s, line| {
            if s == OutputStream::Stdout {
                out.push(line.to_owned());
            }
        },
        &mut |_| {},
    )?;
    Ok((code, out))
}

/// Connects with the platform key (host key pinned, or seen for the first time), measures one
/// command's round trip (`id -un`, which also says who Hippo is there) and checks `paths`.
pub fn check(host: &Host, private_key: &str, t: &Timeouts, paths: &[PathToCheck]) -> CheckOutcome {
    let started = Instant::now();
    let key = key_check(host);
    let mut check = HostCheck {
        ok: false,
        reason: None,
        message: None,
        latency_ms: None,
        host_key_fingerprint: None,
        pinned: false,
        remote_user: None,
        paths: Vec::new(),
        duration_ms: 0,
    };
    let creds = Credentials {
        user: host.username.clone(),
        private_key_openssh: private_key.to_owned(),
    };
    let mut pin = None;
    let result = (|| -> Result<(), SshError> {
        let (sess, seen) = match ssh::connect(&host.addr, port(host), &creds, &key, t) {
            Ok(v) => v,
            Err(e) => {
                if let SshError::HostKeyMismatch { got, .. } = &e {
                    check.host_key_fingerprint = Some(got.clone());
                }
                return Err(e);
            }
        };
        check.host_key_fingerprint = Some(seen.fingerprint());
        if key == HostKeyCheck::TrustOnFirstUse {
            check.pinned = true;
            pin = Some(seen);
        }
        let limit = t.io + t.connect;
        let t0 = Instant::now();
        let (code, out) = query(&sess, &commands::whoami(), limit)?;
        check.latency_ms = Some(u64::try_from(t0.elapsed().as_millis()).unwrap_or(u64::MAX));
        if code == 0 {
            check.remote_user = out.first().map(|s| s.trim().to_owned());
        }
        if !paths.is_empty() {
            let dirs: Vec<String> = paths.iter().map(|p| p.path.clone()).collect();
            let (code, out) = query(&sess, &commands::check_writable(&dirs), limit)?;
            if code != 0 {
                return Err(SshError::Channel(format!(
                    "checking the paths failed with exit code {code}"
                )));
            }
            check.paths = paths
                .iter()
                .enumerate()
                .map(|(i, p)| PathCheck {
                    config_id: p.config_id,
                    kind: p.kind.to_owned(),
                    path: p.path.clone(),
                    writable: out.get(i).is_some_and(|l| l.trim() == "yes"),
                })
                .collect();
        }
        sess.disconnect();
        Ok(())
    })();
    match result {
        Ok(()) => {
            let bad: Vec<&str> = check
                .paths
                .iter()
                .filter(|p| !p.writable)
                .map(|p| p.path.as_str())
                .collect();
            if bad.is_empty() {
                check.ok = true;
            } else {
                check.reason = Some("path_not_writable".to_owned());
                check.message = Some(format!(
                    "user `{}` cannot write to {}",
                    host.username,
                    bad.join(", ")
                ));
            }
        }
        Err(e) => {
            hippo_shared::metrics::global().ssh_error(e.kind());
            check.reason = Some(reason(&e).to_owned());
            check.message = Some(e.to_string());
        }
    }
    check.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    CheckOutcome { check, pin }
}

/// Why installing the key failed.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// Logging in with the password (or reaching the host) failed.
    #[error(transparent)]
    Login(SshError),
    #[error("adding the key to ~/.ssh/authorized_keys failed: {0}")]
    Write(String),
    #[error(
        "the key was added, but logging in with it still fails ({0}); check the host's sshd \
         settings (AuthorizedKeysFile, StrictModes, PubkeyAuthentication)"
    )]
    Verify(SshError),
}

/// What installing the key did.
#[derive(Debug)]
pub struct Installed {
    /// False when the key was already there.
    pub added: bool,
    /// The host key to pin (first contact).
    pub pin: Option<HostKey>,
    pub host_key_fingerprint: String,
}

/// Logs in once with `password` (host key pinned as usual), appends the platform public key
/// (`public_line`) to the user's `authorized_keys` if it is not there, then checks that key
/// login works. `password` is consumed: it is wiped when this returns.
pub fn install_key(
    host: &Host,
    password: Password,
    public_line: &str,
    private_key: &str,
    t: &Timeouts,
) -> Result<Installed, InstallError> {
    let key = key_check(host);
    let (sess, seen) =
        ssh::connect_with_password(&host.addr, port(host), &host.username, &password, &key, t)
            .map_err(InstallError::Login)?;
    drop(password);
    let blob = public_line.split_whitespace().nth(1).unwrap_or_default();
    let (code, out) = query(
        &sess,
        &commands::install_authorized_key(public_line.trim(), blob),
        t.io + t.connect,
    )
    .map_err(|e| InstallError::Write(e.to_string()))?;
    sess.disconnect();
    let said = out.first().map(|s| s.trim().to_owned()).unwrap_or_default();
    let added = match (code, said.as_str()) {
        (0, commands::KEY_ADDED) => true,
        (0, commands::KEY_ALREADY_PRESENT) => false,
        _ => {
            return Err(InstallError::Write(format!(
                "the command exited with code {code}"
            )));
        }
    };
    // Key login, against the key just seen.
    let creds = Credentials {
        user: host.username.clone(),
        private_key_openssh: private_key.to_owned(),
    };
    let (sess, _) = ssh::connect(
        &host.addr,
        port(host),
        &creds,
        &HostKeyCheck::Expect(seen.clone()),
        t,
    )
    .map_err(InstallError::Verify)?;
    let (code, _) = query(&sess, &RemoteCommand::program("true"), t.io + t.connect)
        .map_err(InstallError::Verify)?;
    sess.disconnect();
    if code != 0 {
        return Err(InstallError::Verify(SshError::Channel(format!(
            "`true` exited with code {code}"
        ))));
    }
    Ok(Installed {
        added,
        host_key_fingerprint: seen.fingerprint(),
        pin: (key == HostKeyCheck::TrustOnFirstUse).then_some(seen),
    })
}

/// What the web terminal's SSH side reports to the browser's side.
#[derive(Debug)]
pub enum TermEvent {
    /// Logged in; after first contact, the host key to pin.
    Connected {
        pin: Option<HostKey>,
    },
    Output(Vec<u8>),
}

/// An interactive shell on `host` with the platform key (host key pinned as usual) until it
/// ends ([`ssh::TermEnd`]); events go to `events` (`Connected` first, then output). Blocking.
#[allow(clippy::too_many_arguments)]
pub fn terminal(
    host: &Host,
    private_key: &str,
    t: &Timeouts,
    cols: u32,
    rows: u32,
    idle: Duration,
    input: &std::sync::mpsc::Receiver<ssh::TermInput>,
    events: &tokio::sync::mpsc::Sender<TermEvent>,
) -> Result<ssh::TermEnd, SshError> {
    let key = key_check(host);
    let creds = Credentials {
        user: host.username.clone(),
        private_key_openssh: private_key.to_owned(),
    };
    let (sess, seen) = ssh::connect(&host.addr, port(host), &creds, &key, t)?;
    let pin = (key == HostKeyCheck::TrustOnFirstUse).then_some(seen);
    if events.blocking_send(TermEvent::Connected { pin }).is_err() {
        sess.disconnect();
        return Ok(ssh::TermEnd::Closed);
    }
    let end = sess.interactive(cols, rows, idle, input, &mut |bytes| {
        events
            .blocking_send(TermEvent::Output(bytes.to_vec()))
            .is_ok()
    });
    if end.is_ok() {
        sess.disconnect();
    }
    end
}
