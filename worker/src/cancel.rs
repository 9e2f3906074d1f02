//! Cancelling a running release (issue 12). Anyone with `release` permission asks through the
//! API, which records who asked (`releases.cancelled_by`); the worker running the release
//! watches that record (once a second: the API may be another process or machine) and stops
//! at the next safe point:
//! - before the switch (checkout, package, prepare): hooks on the release server are killed
//!   with their process group (`hooks::run_local_until`), commands on the hosts stop at once
//!   (the SSH connection is shut down; `commands::run_hook` then stops the hook's process
//!   group), no host switches, the new version's folders are removed, and the release ends
//!   `cancelled`;
//! - once the switch has begun it completes (milliseconds per host, plus after-release) and the
//!   release ends as the switch left it, saying the cancel came too late.
//!
//! [`Cancel`] is the one place that decides which of the two happened: the request and the
//! start of the switch are serialized by its lock.
use crate::commands;
use crate::context::{Deps, Events, Run};
use crate::outcome::{self, HostRun};
use crate::targets::{SshSetup, Target, fan_out};
use hippo_shared::db::Db;
use hippo_shared::domain::{ReleaseId, ReleaseKind, UserId};
use hippo_shared::events::{EventStatus, Stage};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// How often a running release looks for a cancel request.
pub const POLL: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Before the switch: a request stops the run.
    Stoppable,
    /// The switch has begun: a request is noted, the switch completes.
    Switching,
    /// Asked before the switch: the run stops.
    Stopping,
}

#[derive(Debug)]
struct State {
    phase: Phase,
    by: Option<String>,
    /// A request that arrived during the switch.
    late: bool,
}

/// A run's cancel state, shared by the watcher, the stages and blocking SSH work.
#[derive(Clone)]
pub struct Cancel {
    state: Arc<Mutex<State>>,
    /// Raised only when the run stops before the switch; SSH commands watch it.
    hosts: Arc<AtomicBool>,
    notify: Arc<Notify>,
}

impl Default for Cancel {
    fn default() -> Self {
        Self {
            state: Arc::new(Mutex::new(State {
                phase: Phase::Stoppable,
                by: None,
                late: false,
            })),
            hosts: Arc::new(AtomicBool::new(false)),
            notify: Arc::new(Notify::new()),
        }
    }
}

impl Cancel {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Someone (`by`, a user name) asked to cancel. Before the switch the run stops; during it,
    /// the request is only noted.
    pub fn request(&self, by: &str) {
        let mut s = self.lock();
        if s.by.is_some() {
            return;
        }
        s.by = Some(by.to_owned());
        match s.phase {
            Phase::Stoppable => {
                s.phase = Phase::Stopping;
                self.hosts.store(true, Ordering::SeqCst);
                self.notify.notify_waiters();
            }
            Phase::Switching => s.late = true,
            Phase::Stopping => {}
        }
    }

    /// The switch is about to begin: `Err(who)` if the run is stopping (do not switch),
    /// otherwise from now on a request no longer stops anything.
    pub fn begin_switch(&self) -> Result<(), String> {
        let mut s = self.lock();
        match s.phase {
            Phase::Stopping => Err(s.by.clone().unwrap_or_default()),
            _ => {
                s.phase = Phase::Switching;
                Ok(())
            }
        }
    }

    /// The run ends cancelled although its switch had begun: a release paused between waves
    /// whose pause timed out or that someone cancelled (`crate::waves`), once its switched
    /// hosts went back to their previous version. `by` says who or what.
    pub fn stop_after_switch(&self, by: &str) {
        let mut s = self.lock();
        if s.by.is_none() {
            s.by = Some(by.to_owned());
        }
        s.phase = Phase::Stopping;
        s.late = false;
    }

    /// Who stopped the run before its switch, if someone did.
    pub fn stopped_by(&self) -> Option<String> {
        let s = self.lock();
        (s.phase == Phase::Stopping).then(|| s.by.clone()).flatten()
    }

    /// Who asked to cancel once the switch had begun (it completed), if someone did.
    pub fn too_late(&self) -> Option<String> {
        let s = self.lock();
        s.late.then(|| s.by.clone()).flatten()
    }

    pub fn is_stopping(&self) -> bool {
        self.hosts.load(Ordering::SeqCst)
    }

    /// The flag SSH commands watch (`targets::SshSetup::stopped_by`).
    pub fn host_flag(&self) -> Arc<AtomicBool> {
        self.hosts.clone()
    }

    /// Resolves once the run is stopping (at once if it already is).
    pub async fn stopping(&self) {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.is_stopping() {
                return;
            }
            notified.await;
        }
    }

    /// Watches the release's record for a cancel request until the returned task is aborted.
    pub fn watch(&self, db: Db, release_id: ReleaseId) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(POLL).await;
                match db.cancel_requested(release_id).await {
                    Ok(Some(user)) => {
                        me.request(&user_name(&db, user).await);
                        return;
                    }
                    Ok(None) => {}
                    Err(e) => {
                        tracing::debug!(%release_id, error = %e, "could not read the cancel request")
                    }
                }
            }
        })
    }
}

async fn user_name(db: &Db, id: UserId) -> String {
    match db.get_user(id).await {
        Ok(u) => u.username,
        Err(_) => format!("user {id}"),
    }
}

/// The release's final message when it stopped before the switch.
pub fn stopped_message(by: &str, removed: bool) -> String {
    let tail = if removed {
        "; the new version's folders were removed"
    } else {
        ""
    };
    format!("cancelled by {by}: stopped before the switch, no host switched{tail}")
}

/// A run's failure as the release tells it: when it stopped because of a cancel, it says who
/// cancelled first (a hook stopped mid-way reports only that it was stopped).
pub fn explain(cancel: &Cancel, reason: String) -> String {
    match cancel.stopped_by() {
        Some(by) if !reason.starts_with("cancelled by ") => format!("cancelled by {by}: {reason}"),
        _ => reason,
    }
}

/// Between stages on the release server: `Err` once the run is stopping.
pub fn checkpoint(run: &Run) -> Result<(), String> {
    match run.cancel.stopped_by() {
        Some(by) => Err(stopped_message(&by, false)),
        None => Ok(()),
    }
}

/// The run stops before its switch: no host switches, the prepared ones are marked skipped,
/// and (for a new version, not a rollback's existing one) the version's folders — finished,
/// half-unpacked (`.partial-<v>`) and its manifest — are removed from every host. Returns the
/// release's final message.
pub async fn stop_before_switch(deps: &Deps, run: &Run, hosts: &mut [HostRun], by: &str) -> String {
    let ev = &run.events;
    ev.info(
        Stage::Release,
        format!("cancelled by {by}: no host will switch"),
    );
    outcome::skip_prepared(hosts, &format!("not switched: cancelled by {by}"));
    // Their connections were shut down when the run stopped.
    for h in hosts.iter_mut() {
        h.conn = None;
    }
    outcome::record(&deps.db, run, hosts).await;
    if run.release.kind != ReleaseKind::Release {
        return stopped_message(by, false);
    }
    let setup = SshSetup::from_deps(deps);
    let version = run.version.to_string();
    let names = vec![
        version.clone(),
        format!(".partial-{version}"),
        format!(".{version}.hippo.json"),
    ];
    let jobs = run
        .hosts
        .iter()
        .map(|h| (h.clone(), (ev.clone(), run.spec.versions_path.to_string())))
        .collect();
    let limit = crate::fleet::hosts_in_flight(run.spec.parallelism, run.hosts.len());
    let removed = fan_out(
        jobs,
        limit,
        move |host, (ev, versions): (Events, String)| {
            let res = Target::connect(&setup, host, &ev, Stage::Cleanup).and_then(|t| {
                let (code, _) = t.query(&commands::version_exists(&versions))?;
                if code != 0 {
                    return Ok(());
                }
                t.must(
                    "removing the new version's folders",
                    &commands::remove_versions(&versions, &names),
                )
                .map(|_| ())
            });
            match &res {
                Ok(()) => ev.send(
                    ev.event(Stage::Cleanup, EventStatus::Succeeded)
                        .host(&host.name)
                        .message("cancelled: the new version's folders were removed"),
                ),
                Err(e) => ev.send(
                    ev.event(Stage::Cleanup, EventStatus::Failed)
                        .host(&host.name)
                        .message(format!(
                            "{}: could not remove the new version's folders: {e}",
                            host.name
                        )),
                ),
            }
            res
        },
        Err,
    )
    .await;
    let all = removed.iter().all(|(_, r)| r.is_ok());
    for h in hosts.iter_mut() {
        if removed
            .iter()
            .any(|(host, r)| host.id == h.host.id && r.is_ok())
        {
            h.removed = vec![version.clone()];
        }
    }
    outcome::record(&deps.db, run, hosts).await;
    stopped_message(by, all)
}

/// After the switch: a cancel request that came during it is said in the events (the switch
/// completed; the release ends as the switch left it).
pub fn note_if_late(run: &Run) {
    if let Some(by) = run.cancel.too_late() {
        run.events.info(
            Stage::Release,
            format!(
                "{by} asked to cancel after the switch had begun: the switch completed and \
                 the release was not cancelled"
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_before_the_switch_stops_the_run_and_raises_the_hosts_flag() {
        let c = Cancel::default();
        c.request("ann");
        assert!(c.is_stopping());
        assert_eq!(c.begin_switch(), Err("ann".to_owned()));
        assert_eq!(c.stopped_by().as_deref(), Some("ann"));
        assert_eq!(c.too_late(), None);
    }

    #[test]
    fn a_request_during_the_switch_is_only_noted() {
        let c = Cancel::default();
        assert_eq!(c.begin_switch(), Ok(()));
        c.request("bob");
        assert!(!c.is_stopping());
        assert_eq!(c.stopped_by(), None);
        assert_eq!(c.too_late().as_deref(), Some("bob"));
    }

    #[test]
    fn a_stopped_run_says_who_cancelled_it_once() {
        let c = Cancel::default();
        assert_eq!(explain(&c, "boom".into()), "boom");
        c.request("ann");
        assert_eq!(
            explain(
                &c,
                "after_checkout hook stopped: the release was cancelled".into()
            ),
            "cancelled by ann: after_checkout hook stopped: the release was cancelled"
        );
        let said = stopped_message("ann", true);
        assert_eq!(explain(&c, said.clone()), said);
    }

    #[test]
    fn no_request_no_stop() {
        let c = Cancel::default();
        assert_eq!(c.begin_switch(), Ok(()));
        assert_eq!(c.stopped_by(), None);
        assert_eq!(c.too_late(), None);
    }

    #[tokio::test]
    async fn waiting_for_the_stop_ends_when_it_is_asked() {
        let c = Cancel::default();
        let waiter = {
            let c = c.clone();
            tokio::spawn(async move { c.stopping().await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        c.request("ann");
        tokio::time::timeout(Duration::from_secs(2), waiter)
            .await
            .expect("woke up")
            .expect("task");
    }
}
