//! Stage 4 with a rollout (issue 12): the prepared hosts switch a wave at a time (`1`, `25%`,
//! `rest`; `shared::waves`), each wave checked (`health`) before the next starts, optionally
//! pausing after a wave until someone continues the release. A wave whose switch or check
//! fails rolls back every host this release switched (the link moved back to the version it
//! had before, after-release run again there), ends the release failed naming the host and
//! what the check said, and later waves never start. A pause that times out, or a cancel
//! request that arrives once a wave has switched (`cancel`: during a pause, or before the next
//! wave starts), does the same and ends the release cancelled (`Cancel::stop_after_switch`).
//! Without waves or a check this is exactly `switch::run`.
use crate::context::{Deps, Run};
use crate::lease::Lease;
use crate::outcome::{self, HostRun, Outcome};
use crate::targets::fan_out;
use crate::{commands, health, switch};
use hippo_shared::events::{EventStatus, Stage};
use std::time::Duration;

/// How often a paused release looks whether it was continued.
const PAUSE_POLL: Duration = Duration::from_millis(500);

/// Switches the prepared hosts, wave by wave. `Err` when a wave failed or a pause timed out
/// (every host this run switched is then rolled back, where it can be); the caller records
/// the hosts either way.
pub async fn run(
    deps: &Deps,
    run: &Run,
    hosts: &mut [HostRun],
    lease: &Lease,
) -> Result<(), String> {
    let rollout = &run.spec.rollout;
    if rollout.is_plain() {
        switch::run(run, hosts).await;
        return Ok(());
    }
    let ready: Vec<usize> = (0..hosts.len())
        .filter(|&i| hosts[i].outcome == Outcome::Prepared)
        .collect();
    let sizes = rollout.waves.split(ready.len());
    let total = sizes.len();
    let mut waves: Vec<Vec<usize>> = Vec::with_capacity(total);
    let mut at = 0;
    for n in &sizes {
        waves.push(ready[at..at + n].to_vec());
        at += n;
    }
    let numbered: Vec<_> = waves
        .iter()
        .enumerate()
        .flat_map(|(w, members)| {
            members
                .iter()
                .map(move |&i| (i, u32::try_from(w + 1).unwrap_or(u32::MAX)))
        })
        .map(|(i, w)| (hosts[i].host.id, w))
        .collect();
    if let Err(e) = deps
        .db
        .set_release_host_waves(run.release.id, &numbered)
        .await
    {
        tracing::warn!(release_id = %run.release.id, error = %e, "recording the waves failed");
    }
    let ev = &run.events;
    for (w, members) in waves.iter().enumerate() {
        let wave = w + 1;
        let names = members
            .iter()
            .map(|&i| hosts[i].host.name.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        if w > 0 {
            // Someone asked to cancel while the previous wave switched.
            if let Some(by) = run.cancel.too_late() {
                let why = format!("cancelled by {by} before wave {wave} of {total}");
                return Err(cancelled(run, hosts, &why, &by).await);
            }
            // A later wave may start long after the fencing check before the first (a pause).
            if !lease.still_held().await.unwrap_or(false) {
                let why = format!(
                    "wave {wave} of {total}: this worker lost the release lease; its hosts were not switched"
                );
                outcome::skip_prepared(hosts, &why);
                return Err(why);
            }
        }
        ev.send(
            ev.event(Stage::Wave, EventStatus::Started)
                .message(format!("wave {wave} of {total}: {names}")),
        );
        switch::switch_hosts(run, pick(hosts, members)).await;
        outcome::record(&deps.db, run, hosts).await;
        let failed: Vec<String> = members
            .iter()
            .filter_map(|&i| match &hosts[i].outcome {
                Outcome::Failed { reason, .. } => Some(format!("{}: {reason}", hosts[i].host.name)),
                _ => None,
            })
            .collect();
        let mut why = (!failed.is_empty()).then(|| {
            format!(
                "wave {wave} of {total}: switching failed on {}",
                failed.join("; ")
            )
        });
        if why.is_none()
            && let Some(check) = &rollout.health_check
        {
            let mut wave_hosts = pick(hosts, members);
            let results = health::check(run, check, &mut wave_hosts).await;
            let sick: Vec<String> = wave_hosts
                .iter()
                .zip(&results)
                .filter_map(|(h, r)| r.as_ref().err().map(|e| format!("{}: {e}", h.host.name)))
                .collect();
            for (h, r) in wave_hosts.iter_mut().zip(&results) {
                if let Err(e) = r {
                    h.outcome = Outcome::Failed {
                        stage: Stage::Health,
                        reason: format!("health check failed: {e}"),
                        linked: true,
                    };
                }
            }
            if !sick.is_empty() {
                why = Some(format!(
                    "wave {wave} of {total}: health check failed on {}",
                    sick.join("; ")
                ));
            }
        }
        if let Some(why) = why {
            ev.send(
                ev.event(Stage::Wave, EventStatus::Failed)
                    .message(why.clone()),
            );
            let back = roll_back(run, hosts, &why).await;
            outcome::skip_prepared(hosts, &format!("not switched: {why}"));
            return Err(format!("{why}; {back}"));
        }
        ev.send(
            ev.event(Stage::Wave, EventStatus::Succeeded)
                .message(format!("wave {wave} of {total} switched: {names}")),
        );
        if rollout.pause && wave < total {
            let timeout = Duration::from_secs(rollout.pause_timeout_secs);
            match pause(deps, run, u32::try_from(wave).unwrap_or(u32::MAX), timeout).await? {
                Paused::Continued => {}
                Paused::TimedOut => {
                    // Said as "cancelled by …" like a person's cancel (`cancel::explain`).
                    let by = "the pause's time-out";
                    let why = format!(
                        "cancelled by {by}: nobody continued the release within {} s of wave {wave} of {total}",
                        rollout.pause_timeout_secs
                    );
                    return Err(cancelled(run, hosts, &why, by).await);
                }
                Paused::Cancelled(by) => {
                    let why =
                        format!("cancelled by {by} during the pause after wave {wave} of {total}");
                    return Err(cancelled(run, hosts, &why, &by).await);
                }
            }
        }
    }
    Ok(())
}

/// Ends the run cancelled after some waves switched: those hosts go back, the rest are
/// skipped; the release's error.
async fn cancelled(run: &Run, hosts: &mut [HostRun], why: &str, by: &str) -> String {
    let back = roll_back(run, hosts, why).await;
    outcome::skip_prepared(hosts, &format!("not switched: {why}"));
    run.cancel.stop_after_switch(by);
    format!("{why}; {back}")
}

/// How a pause ended.
enum Paused {
    Continued,
    TimedOut,
    /// Someone asked to cancel the release (their name).
    Cancelled(String),
}

/// The hosts at `members` (indexes into `hosts`), to hand to a stage.
fn pick<'a>(hosts: &'a mut [HostRun], members: &[usize]) -> Vec<&'a mut HostRun> {
    hosts
        .iter_mut()
        .enumerate()
        .filter(|(i, _)| members.contains(i))
        .map(|(_, h)| h)
        .collect()
}

/// Waits after `wave` until someone continues the release, cancels it, or `timeout` passes.
/// The database holds the pause, so any API replica can end it.
async fn pause(deps: &Deps, run: &Run, wave: u32, timeout: Duration) -> Result<Paused, String> {
    let id = run.release.id;
    let until =
        chrono::Utc::now() + chrono::Duration::from_std(timeout).unwrap_or(chrono::Duration::MAX);
    let until_text = until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    crate::retry::retry_db("pausing the release", || {
        deps.db.pause_release(id, wave, &until_text)
    })
    .await
    .map_err(|e| e.to_string())?;
    run.events.send(
        run.events
            .event(Stage::Wave, EventStatus::Info)
            .message(format!(
                "paused after wave {wave}: waiting for someone to continue (POST /api/releases/{id}/continue) until {until_text}"
            )),
    );
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let waiting = crate::retry::retry_db("reading the pause", || deps.db.release_pause(id))
            .await
            .map_err(|e| e.to_string())?;
        if waiting.is_none_or(|p| p.wave != wave) {
            return Ok(Paused::Continued);
        }
        let cancelled = run.cancel.too_late();
        if cancelled.is_some() || tokio::time::Instant::now() >= deadline {
            // A "continue" that lands at the same moment wins or loses here, never both.
            let ended = crate::retry::retry_db("ending the pause", || deps.db.end_pause(id, wave))
                .await
                .map_err(|e| e.to_string())?;
            return Ok(match (ended, cancelled) {
                (false, _) => Paused::Continued,
                (true, Some(by)) => Paused::Cancelled(by),
                (true, None) => Paused::TimedOut,
            });
        }
        tokio::time::sleep(PAUSE_POLL).await;
    }
}

/// Moves every host of this run that links to the new version back to the version it had
/// before, then runs after-release there again; each becomes `RolledBack` (or `Failed` if it
/// could not be). Returns a summary for the release's error.
async fn roll_back(run: &Run, hosts: &mut [HostRun], why: &str) -> String {
    let ev = &run.events;
    let mut live: Vec<&mut HostRun> = hosts.iter_mut().filter(|h| h.outcome.is_live()).collect();
    if live.is_empty() {
        return "no host had switched".into();
    }
    ev.send(ev.event(Stage::Wave, EventStatus::Started).message(format!(
        "rolling back {} hosts to their previous version",
        live.len()
    )));
    let jobs = live
        .iter_mut()
        .map(|h| {
            let job = HostBack {
                events: run.events.clone(),
                deploy_path: run.spec.deploy_path.to_string(),
                versions_path: run.spec.versions_path.to_string(),
                tmp_link: format!("{}.hippo-{}.tmp", run.spec.deploy_path, run.release.id),
                env: run.hook_env(Some(&h.host)),
                after_release: run.spec.hooks.after_release.clone(),
                hook_timeout: Duration::from_secs(run.spec.hook_timeout_secs),
                previous: h.previous.clone(),
                was: h.outcome.clone(),
                why: why.to_owned(),
            };
            (h.host.clone(), (job, h.conn.take()))
        })
        .collect();
    let limit = crate::fleet::hosts_in_flight(run.spec.parallelism, live.len());
    let done = fan_out(
        jobs,
        limit,
        |host, (job, conn)| job.on(host, conn),
        |e| (Outcome::failed(Stage::Wave, e), None),
    )
    .await;
    let (mut back, mut stuck) = (Vec::new(), Vec::new());
    for (h, (_, (o, conn))) in live.into_iter().zip(done) {
        match &o {
            Outcome::RolledBack { .. } => back.push(h.host.name.clone()),
            _ => stuck.push(format!("{} ({})", h.host.name, o.message())),
        }
        h.outcome = o;
        h.conn = conn;
    }
    let mut summary = Vec::new();
    if !back.is_empty() {
        summary.push(format!(
            "rolled back to the previous version: {}",
            back.join(", ")
        ));
    }
    if !stuck.is_empty() {
        summary.push(format!("could not roll back: {}", stuck.join("; ")));
    }
    let summary = summary.join("; ");
    ev.send(
        ev.event(
            Stage::Wave,
            if stuck.is_empty() {
                EventStatus::Succeeded
            } else {
                EventStatus::Failed
            },
        )
        .message(summary.clone()),
    );
    summary
}

struct HostBack {
    events: crate::context::Events,
    deploy_path: String,
    versions_path: String,
    tmp_link: String,
    env: Vec<(String, String)>,
    after_release: String,
    hook_timeout: Duration,
    previous: Option<String>,
    /// The outcome before the rollback (its reason is kept in the new one).
    was: Outcome,
    why: String,
}

impl HostBack {
    fn on(
        &self,
        host: &hippo_shared::db::inventory::Host,
        conn: Option<crate::targets::Target>,
    ) -> (Outcome, Option<crate::targets::Target>) {
        let ev = &self.events;
        // Why this host went back: its own failure if it had one, else the wave's.
        let cause = match &self.was {
            Outcome::Failed { reason, .. } => reason.clone(),
            _ => self.why.clone(),
        };
        // `linked`: the host still links to the new version.
        let stuck = |reason: String, linked: bool| Outcome::Failed {
            stage: Stage::Wave,
            reason: format!("{cause}; {reason}"),
            linked,
        };
        let Some(previous) = &self.previous else {
            let o = stuck(
                "no previous version to go back to: it still serves the new one".into(),
                true,
            );
            ev.send(
                ev.event(Stage::Wave, EventStatus::Failed)
                    .host(&host.name)
                    .message(format!("{}: {}", host.name, o.message())),
            );
            return (o, conn);
        };
        let Some(mut t) = conn else {
            return (stuck("no connection to roll back on".into(), true), None);
        };
        t.set_stage(Stage::Wave);
        let target = if previous.starts_with('/') {
            previous.clone()
        } else {
            format!("{}/{previous}", self.versions_path)
        };
        if let Err(e) = t.must(
            "switching back to the previous version",
            &commands::switch_link(&self.deploy_path, &target, &self.tmp_link),
        ) {
            return self.said(host, stuck(e, true), t);
        }
        let result = (|| {
            if self.after_release.trim().is_empty() {
                return Ok(());
            }
            // The hook sees the version it now serves.
            let env: Vec<(String, String)> = self
                .env
                .iter()
                .map(|(k, v)| match k.as_str() {
                    "HIPPO_VERSION" => (k.clone(), previous.clone()),
                    _ => (k.clone(), v.clone()),
                })
                .collect();
            t.hook(
                "after_release",
                &self.deploy_path,
                &env,
                &self.after_release,
                self.hook_timeout,
            )
            .map_err(|e| format!("linked to {previous} again, but {e}"))
        })();
        let o = match result {
            Ok(()) => Outcome::RolledBack {
                reason: format!("{cause}; rolled back to {previous}"),
            },
            Err(e) => stuck(e, false),
        };
        self.said(host, o, t)
    }

    /// Reports a host's rollback as an event.
    fn said(
        &self,
        host: &hippo_shared::db::inventory::Host,
        o: Outcome,
        t: crate::targets::Target,
    ) -> (Outcome, Option<crate::targets::Target>) {
        let ev = &self.events;
        ev.send(
            ev.event(
                Stage::Wave,
                if matches!(o, Outcome::RolledBack { .. }) {
                    EventStatus::Succeeded
                } else {
                    EventStatus::Failed
                },
            )
            .host(&host.name)
            .message(format!("{}: {}", host.name, o.message())),
        );
        (o, Some(t))
    }
}
