//! SSH connections kept between runs (like OpenSSH's `ControlPersist`): a run's connection to a
//! host goes back here when the run is done with it, and the next run to the same host, as the
//! same user, with the same platform key and the same pinned host key, takes it instead of a
//! new handshake. That saves the host a new `sshd` process, a key exchange and a login (about
//! 20 ms of its CPU here, more with PAM) and over a WAN three or four round trips.
//!
//! Rules:
//! - Only a connection whose last command ended normally goes back ([`SshSession::reusable`]):
//!   never one that timed out, was stopped by a cancel, or failed at the SSH level.
//! - A kept connection is used only if the host still answers on it (a channel opened and
//!   closed within the connect time-out); otherwise it is dropped and the run connects anew,
//!   pinning and checking the host key as always.
//! - The host key is part of the match: a host whose pin was forgotten or changed gets a new
//!   connection (and the usual check), never a kept one.
//! - A connection idle for [`SshPool::idle`] (`HIPPO_SSH_IDLE_SECS`, 60 s; 0 keeps none) is
//!   closed by [`SshPool::close_idle`], which the worker calls every few seconds; at most
//!   [`MAX_KEPT`] are kept (the oldest go first).
use crate::ssh::{HostKey, SshSession};
use sha2::{Digest, Sha256};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The most connections kept at once (a fleet of this many hosts stays warm).
pub const MAX_KEPT: usize = 1024;

/// What a kept connection must match to serve a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolKey {
    addr: String,
    port: u16,
    user: String,
    host_key: HostKey,
    /// sha256 of the platform's private key: a new key never rides an old login.
    client_key: [u8; 32],
}

impl PoolKey {
    pub fn new(addr: &str, port: u16, user: &str, host_key: HostKey, private_key: &str) -> Self {
        PoolKey {
            addr: addr.to_owned(),
            port,
            user: user.to_owned(),
            host_key,
            client_key: Sha256::digest(private_key.as_bytes()).into(),
        }
    }
}

struct Kept {
    key: PoolKey,
    sess: SshSession,
    since: Instant,
}

pub struct SshPool {
    idle: Duration,
    kept: Mutex<Vec<Kept>>,
}

impl SshPool {
    /// A pool that keeps connections for `idle` (zero: keeps none).
    pub fn new(idle: Duration) -> Self {
        SshPool {
            idle,
            kept: Mutex::new(Vec::new()),
        }
    }

    pub fn idle(&self) -> Duration {
        self.idle
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Kept>> {
        self.kept
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A kept connection for `key` that still answers within `check` (the newest first), or
    /// `None`. Connections that no longer answer are dropped on the way.
    pub fn take(&self, key: &PoolKey, check: Duration) -> Option<SshSession> {
        loop {
            let found = {
                let mut kept = self.lock();
                let i = kept
                    .iter()
                    .rposition(|k| &k.key == key && k.since.elapsed() < self.idle)?;
                kept.remove(i)
            };
            // Checked outside the lock: one round trip to the host.
            if found.sess.alive_within(check) {
                return Some(found.sess);
            }
            tracing::debug!(addr = %key.addr, "a kept SSH connection no longer answers; dropped");
        }
    }

    /// Keeps `sess` for the next run to the same host, if it may serve again.
    pub fn put(&self, key: PoolKey, mut sess: SshSession) {
        if self.idle.is_zero() || !sess.reusable() {
            return;
        }
        sess.stop_on(None);
        let oldest = {
            let mut kept = self.lock();
            kept.push(Kept {
                key,
                sess,
                since: Instant::now(),
            });
            (kept.len() > MAX_KEPT).then(|| kept.remove(0))
        };
        // Dropped, not said goodbye to: that could wait on a host that is gone.
        drop(oldest);
    }

    /// Closes the connections idle for longer than [`SshPool::idle`] (the TCP connection is
    /// closed; sshd on the host ends that session).
    pub fn close_idle(&self) {
        let expired: Vec<Kept> = {
            let mut kept = self.lock();
            let (old, fresh) = std::mem::take(&mut *kept)
                .into_iter()
                .partition(|k| k.since.elapsed() >= self.idle);
            *kept = fresh;
            old
        };
        drop(expired);
    }

    /// How many connections are kept now.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
