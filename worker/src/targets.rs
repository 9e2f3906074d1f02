//! One target host during a release: connect (host key pinned on first contact, refused on
//! mismatch), run `commands` over the one SSH transport, report output as events. Everything
//! here is blocking and runs on [`fan_out`]'s threads; every call has a timeout.
use crate::commands::RemoteCommand;
use crate::context::Events;
use crate::fleet;
use crate::ssh::{self, Credentials, HostKey, HostKeyCheck, OutputStream, SshSession, Timeouts};
use crate::ssh_pool::{PoolKey, SshPool};
use hippo_shared::db::Db;
use hippo_shared::db::inventory::Host;
use hippo_shared::events::{EventStatus, Stage};
use std::io::Read;
use std::time::Duration;

/// An SSH failure as the release reports it, counted in the metrics by kind.
fn counted(e: ssh::SshError) -> String {
    hippo_shared::metrics::global().ssh_error(e.kind());
    e.to_string()
}

/// What every host connection of one run shares.
#[derive(Clone)]
pub struct SshSetup {
    pub private_key: String,
    pub timeouts: Timeouts,
    pub db: Db,
    pub rt: tokio::runtime::Handle,
    /// Raised when the release is cancelled before its switch: commands running on the hosts
    /// stop at once (see [`SshSession::stop_on`]); `None`: nothing stops them.
    pub stop: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
    /// Pinning host keys one at a time: hundreds of first contacts at once must not take
    /// every database connection (the API reads through the same pool).
    pub pin_one_at_a_time: std::sync::Arc<std::sync::Mutex<()>>,
    /// Connections kept between runs: taken instead of a new login, given back when done.
    pub pool: Option<std::sync::Arc<SshPool>>,
}

impl SshSetup {
    /// What a worker's connections share, from its dependencies.
    pub fn from_deps(deps: &crate::context::Deps) -> SshSetup {
        SshSetup {
            private_key: deps.key.private_openssh.expose().to_owned(),
            timeouts: crate::ssh::Timeouts {
                connect: deps.settings.ssh_connect_timeout(),
                io: deps.settings.ssh_io_timeout(),
            },
            db: deps.db.clone(),
            rt: tokio::runtime::Handle::current(),
            stop: None,
            pin_one_at_a_time: Default::default(),
            pool: Some(deps.ssh_pool.clone()),
        }
    }

    /// The same, with commands stopped when `stop` is raised.
    pub fn stopped_by(mut self, stop: std::sync::Arc<std::sync::atomic::AtomicBool>) -> Self {
        self.stop = Some(stop);
        self
    }
}

pub struct Target {
    pub host: Host,
    /// Always `Some` until dropped; then it goes back to `pool` if it may serve again.
    sess: Option<SshSession>,
    pool: Option<(std::sync::Arc<SshPool>, PoolKey)>,
    events: Events,
    stage: Stage,
    /// Added to a hook's own time-out: the time to start it and to hear back.
    short: Duration,
}

impl Target {
    pub fn connect(
        setup: &SshSetup,
        host: &Host,
        events: &Events,
        stage: Stage,
    ) -> Result<Target, String> {
        let check = match (&host.host_key_type, &host.host_key) {
            (Some(t), Some(k)) => HostKeyCheck::Expect(HostKey {
                key_type: t.clone(),
                key_base64: k.clone(),
            }),
            _ => HostKeyCheck::TrustOnFirstUse,
        };
        let creds = Credentials {
            user: host.username.clone(),
            private_key_openssh: setup.private_key.clone(),
        };
        let port = u16::try_from(host.port).unwrap_or(22);
        if setup
            .stop
            .as_ref()
            .is_some_and(|f| f.load(std::sync::atomic::Ordering::SeqCst))
        {
            return Err(format!(
                "{}: not started: the release was cancelled",
                host.name
            ));
        }
        // Kept connections match on the host's address, login, platform key and host key.
        let key_for = |host_key: &HostKey| {
            PoolKey::new(
                &host.addr,
                port,
                &host.username,
                host_key.clone(),
                &creds.private_key_openssh,
            )
        };
        // A connection kept from an earlier run to this host (only for a pinned key: a host
        // whose pin was forgotten is checked afresh).
        let kept = match (&setup.pool, &check) {
            (Some(pool), HostKeyCheck::Expect(pinned)) => {
                let key = key_for(pinned);
                pool.take(&key, setup.timeouts.connect).map(|s| (s, key))
            }
            _ => None,
        };
        let (mut sess, key) = match kept {
            Some(found) => {
                tracing::debug!(host = %host.name, "reusing a kept SSH connection");
                hippo_shared::metrics::global().ssh_connection("kept");
                found
            }
            None => {
                let (sess, seen) = ssh::connect(&host.addr, port, &creds, &check, &setup.timeouts)
                    .map_err(counted)?;
                hippo_shared::metrics::global().ssh_connection("new");
                let key = key_for(&seen);
                if check == HostKeyCheck::TrustOnFirstUse {
                    Self::pin(setup, host, events, stage, seen)?;
                }
                (sess, key)
            }
        };
        sess.stop_on(setup.stop.clone());
        Ok(Target {
            host: host.clone(),
            sess: Some(sess),
            pool: setup.pool.clone().map(|p| (p, key)),
            events: events.clone(),
            stage,
            short: setup.timeouts.io + setup.timeouts.connect,
        })
    }

    /// Stores a host key seen on first contact (pinned from now on) and says so.
    fn pin(
        setup: &SshSetup,
        host: &Host,
        events: &Events,
        stage: Stage,
        seen: HostKey,
    ) -> Result<(), String> {
        events.info(
            stage,
            format!("{}: pinned host key {}", host.name, seen.fingerprint()),
        );
        let db = setup.db.clone();
        let id = host.id;
        let _one = setup
            .pin_one_at_a_time
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        setup
            .rt
            .block_on(async move { db.pin_host_key(id, &seen.key_type, &seen.key_base64).await })
            .map_err(|e| format!("cannot pin the host key: {e}"))
    }

    fn sess(&self) -> &SshSession {
        self.sess
            .as_ref()
            .expect("a target holds its session until dropped")
    }

    /// The stage this connection reports under from now on (one connection serves a host from
    /// prepare through switch and cleanup).
    pub fn set_stage(&mut self, stage: Stage) {
        self.stage = stage;
    }

    /// Runs a short command; returns its exit code and stdout lines (stderr lines become events).
    pub fn query(&self, cmd: &RemoteCommand) -> Result<(i32, Vec<String>), String> {
        self.query_with(cmd, &[])
    }

    /// [`Target::query`] with `input` on the command's stdin (none when empty).
    pub fn query_with(
        &self,
        cmd: &RemoteCommand,
        input: &[u8],
    ) -> Result<(i32, Vec<String>), String> {
        let mut stdin = input;
        let mut out = Vec::new();
        let name = self.host.name.clone();
        let code = self
            .sess()
            .run_watched(
                cmd,
                (!input.is_empty()).then_some(&mut stdin as &mut dyn Read),
                fleet::COMMAND_LIMITS,
                &mut |s, line| match s {
                    OutputStream::Stdout => out.push(line.to_owned()),
                    OutputStream::Stderr => self.events.send(
                        self.events
                            .event(self.stage, EventStatus::Output)
                            .host(name.clone())
                            .message(line),
                    ),
                },
                &mut |_| {},
            )
            .map_err(counted)?;
        Ok((code, out))
    }

    /// Runs a short command that must succeed; `what` names it in the error.
    pub fn must(&self, what: &str, cmd: &RemoteCommand) -> Result<Vec<String>, String> {
        self.must_with(what, cmd, &[])
    }

    /// [`Target::must`] with `input` on the command's stdin (none when empty).
    pub fn must_with(
        &self,
        what: &str,
        cmd: &RemoteCommand,
        input: &[u8],
    ) -> Result<Vec<String>, String> {
        match self.query_with(cmd, input)? {
            (0, out) => Ok(out),
            (code, _) => Err(format!("{what} failed with exit code {code}")),
        }
    }

    /// Sends `data` to a command's stdin, reporting bytes sent (at most once a second, see
    /// [`fleet::ProgressGate`]). No total time limit: an upload that keeps moving, however
    /// slowly, goes on; one that stalls fails ([`fleet::UPLOAD_LIMITS`]).
    pub fn send(&self, cmd: &RemoteCommand, data: &mut dyn Read) -> Result<(i32, u64), String> {
        let mut sent = 0u64;
        let mut gate = fleet::ProgressGate::new();
        let name = self.host.name.clone();
        let code = self
            .sess()
            .run_watched(
                cmd,
                Some(data),
                fleet::UPLOAD_LIMITS,
                &mut |_, line| {
                    self.events.send(
                        self.events
                            .event(self.stage, EventStatus::Output)
                            .host(name.clone())
                            .message(line),
                    )
                },
                &mut |n| {
                    sent = n;
                    if gate.due(n) {
                        self.events.send(
                            self.events
                                .event(self.stage, EventStatus::Progress)
                                .host(name.clone())
                                .bytes(n),
                        );
                    }
                },
            )
            .map_err(counted)?;
        self.events.send(
            self.events
                .event(self.stage, EventStatus::Progress)
                .host(name)
                .bytes(sent),
        );
        Ok((code, sent))
    }

    /// Runs the hook `script` in `workdir` with the variables `env` (both sent on stdin, see
    /// [`crate::commands::run_hook`]); output lines become events.
    pub fn hook(
        &self,
        hook: &str,
        workdir: &str,
        env: &[(String, String)],
        script: &str,
        timeout: Duration,
    ) -> Result<(), String> {
        self.hook_tail(hook, workdir, env, script, timeout, 0).0
    }

    /// [`Target::hook`], also returning the last `keep` lines of its output (stdout and
    /// stderr as they came): what a health check's failure quotes.
    pub fn hook_tail(
        &self,
        hook: &str,
        workdir: &str,
        env: &[(String, String)],
        script: &str,
        timeout: Duration,
        keep: usize,
    ) -> (Result<(), String>, Vec<String>) {
        let mut tail = std::collections::VecDeque::new();
        let name = self.host.name.clone();
        let input = match crate::commands::hook_input(env, script) {
            Ok(i) => i,
            Err(e) => return (Err(format!("{hook} hook: {e}")), Vec::new()),
        };
        let cmd = crate::commands::run_hook(workdir, timeout.as_secs());
        self.events
            .info(self.stage, format!("{name}: running {hook} hook"));
        let mut body = input.as_slice();
        let code = self.sess().run(
            &cmd,
            Some(&mut body),
            timeout + self.short,
            &mut |_, line| {
                if keep > 0 {
                    if tail.len() == keep {
                        tail.pop_front();
                    }
                    tail.push_back(line.to_owned());
                }
                self.events.send(
                    self.events
                        .event(self.stage, EventStatus::Output)
                        .host(name.clone())
                        .message(line),
                )
            },
            &mut |_| {},
        );
        let result = match code {
            Err(e) => Err(format!("{hook} hook: {e}")),
            Ok(0) => Ok(()),
            Ok(crate::commands::HOOK_TIMED_OUT | crate::commands::HOOK_KILLED_AFTER_TIMEOUT) => {
                Err(format!(
                    "{hook} hook timed out after {} s",
                    timeout.as_secs()
                ))
            }
            Ok(crate::commands::HOOK_CANNOT_CD) => {
                Err(format!("{hook} hook: cannot enter its working directory"))
            }
            Ok(code) => Err(format!("{hook} hook exited with code {code}")),
        };
        (result, tail.into())
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        if let (Some(sess), Some((pool, key))) = (self.sess.take(), self.pool.take()) {
            pool.put(key, sess);
        }
    }
}

/// The nice value of the threads [`fan_out`] starts (setting `release_nice`).
static HOST_THREAD_NICE: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);

/// Sets the nice value of the host threads started from now on (0–19).
pub fn set_host_thread_nice(nice: u8) {
    HOST_THREAD_NICE.store(nice.min(19), std::sync::atomic::Ordering::Relaxed);
}

/// Runs `work` once per host, each on a thread of its own, at most `limit` hosts at once, and
/// returns the results in host order. `lost` turns a task that died (a panic) into a result.
///
/// Not tokio's blocking pool: these threads lower their own priority (nice, per thread on
/// Linux), which cannot be raised again without privileges, and the pool's threads are reused
/// by others. At nice 10 the API's threads get a core first when both want one: measured with
/// 200 hosts (bench `--scale`), the API's reads waited behind the release's own threads.
pub async fn fan_out<J, T>(
    items: Vec<(Host, J)>,
    limit: usize,
    work: impl Fn(&Host, J) -> T + Send + Sync + 'static,
    lost: impl Fn(String) -> T,
) -> Vec<(Host, T)>
where
    J: Send + 'static,
    T: Send + 'static,
{
    let sem = std::sync::Arc::new(tokio::sync::Semaphore::new(limit.max(1)));
    let work = std::sync::Arc::new(work);
    let tasks: Vec<_> = items
        .into_iter()
        .map(|(host, job)| {
            let (sem, work) = (sem.clone(), work.clone());
            let h = host.clone();
            let task = tokio::spawn(async move {
                let _permit = sem.acquire_owned().await;
                let (tx, rx) = tokio::sync::oneshot::channel();
                std::thread::Builder::new()
                    .name("hippo-host".into())
                    .spawn(move || {
                        let nice = HOST_THREAD_NICE.load(std::sync::atomic::Ordering::Relaxed);
                        if nice > 0 {
                            // Linux: `None` is the calling thread.
                            if let Err(e) =
                                rustix::process::setpriority_process(None, i32::from(nice))
                            {
                                tracing::debug!(error = %e, "host thread keeps its priority");
                            }
                        }
                        let _in_flight = hippo_shared::metrics::global().host_in_flight();
                        // The receiver is gone only when the release's task was dropped.
                        let _ = tx.send(work(&h, job));
                    })
                    .map_err(|e| format!("starting a thread: {e}"))?;
                rx.await
                    .map_err(|_| "the host's thread ended without a result (a panic)".to_owned())
            });
            (host, task)
        })
        .collect();
    let mut out = Vec::with_capacity(tasks.len());
    for (host, task) in tasks {
        let res = match task.await {
            Ok(Ok(v)) => v,
            Ok(Err(e)) => lost(format!("{}: task failed: {e}", host.name)),
            Err(e) => lost(format!("{}: task failed: {e}", host.name)),
        };
        out.push((host, res));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use hippo_shared::domain::{EnvironmentId, HostId};

    fn host(i: i64) -> Host {
        Host {
            id: HostId::new(i),
            environment_id: EnvironmentId::new(1),
            name: format!("node-{i}"),
            addr: "127.0.0.1".into(),
            port: 22,
            username: "root".into(),
            category: String::new(),
            description: String::new(),
            host_key_type: None,
            host_key: None,
            checked_at: None,
            check_result: None,
            created_at: String::new(),
            updated_at: String::new(),
        }
    }

    #[tokio::test]
    async fn each_host_runs_on_a_niced_thread_of_its_own_and_a_panic_becomes_a_result() {
        let base = rustix::process::getpriority_process(None).unwrap_or(0);
        set_host_thread_nice(7);
        let items: Vec<_> = (1..=5).map(|i| (host(i), i)).collect();
        let out = fan_out(
            items,
            2,
            |h, i| {
                assert_ne!(i, 4, "host 4 fails");
                let me = std::thread::current();
                (
                    h.name.clone(),
                    me.name().map(str::to_owned),
                    rustix::process::getpriority_process(None).ok(),
                )
            },
            |lost| (lost, None, None),
        )
        .await;
        let names: Vec<&str> = out.iter().map(|(h, _)| h.name.as_str()).collect();
        assert_eq!(names, ["node-1", "node-2", "node-3", "node-4", "node-5"]);
        for (h, (name, thread, nice)) in &out {
            if h.name == "node-4" {
                assert!(name.contains("node-4: task failed"), "{name}");
                continue;
            }
            assert_eq!(name, &h.name);
            assert_eq!(thread.as_deref(), Some("hippo-host"));
            // (A test run already at a higher nice cannot lower it without privileges.)
            if base <= 7 {
                assert_eq!(*nice, Some(7), "{}", h.name);
            }
        }
        // The caller's thread kept its priority.
        assert_eq!(rustix::process::getpriority_process(None).ok(), Some(base));
    }
}
