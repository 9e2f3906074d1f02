//! Releases whose run was cut off: a restart of standalone Hippo (every `running` release was
//! this process's), or a worker that died (its lease expired; every worker sweeps for those).
//!
//! Either way the release ends `failed`, but first its hosts are asked where their deploy link
//! points ([`check_hosts`]): a run cut off in the switch stage may have moved some links (or
//! all, with only after-release unfinished). What the hosts say is recorded — each host's row
//! (`switched` when it links to the run's version), the live version per host (what
//! `/versions` shows), an event per host — and summed up in the release's error.
use crate::context::{Deps, Events};
use crate::lease::{self, Lease};
use crate::notify::NoticeKind;
use crate::notify::dispatch::dispatch;
use crate::on_failure;
use crate::runner::finish;
use crate::targets::{SshSetup, Target, fan_out};
use hippo_shared::db::DbError;
use hippo_shared::db::inventory::Host;
use hippo_shared::db::releases::{Release, ReleaseFilter, ReleaseHost};
use hippo_shared::domain::{HostStatus, ReleaseKind, ReleaseStatus};
use hippo_shared::events::Stage;
use std::sync::Arc;
use std::time::Duration;

/// Standalone start-up: this process is the only worker, so a release still `running` was cut
/// off when Hippo stopped. Its hosts are checked and it ends as failed with what they say.
/// Queued releases are queued again; a job delivered twice is harmless because only one run
/// can move a release out of `queued`. A config's failure hook runs before the release ends
/// (`on_failure::after_cut_off`), in the background. Either way the config's channels get the
/// 'failed' notice.
pub async fn recover_after_restart(
    deps: &Arc<Deps>,
    queue: &crate::queue::Queue,
) -> Result<(), DbError> {
    deps.db.expire_all_leases().await?;
    let running = deps
        .db
        .list_releases(&ReleaseFilter {
            status: Some(ReleaseStatus::Running),
            ..Default::default()
        })
        .await?;
    for r in running {
        let found = check_hosts(deps, &r).await;
        let reason = format!(
            "interrupted: Hippo stopped while this release was running; {found}; run it again"
        );
        if r.snapshot.hooks.on_failure.trim().is_empty() {
            if end_cut_off(deps, &r, &reason).await? {
                tracing::warn!(
                    release_id = %r.id,
                    "release interrupted by a restart marked failed"
                );
            }
            continue;
        }
        // Its failure hook may take its whole time-out: start-up does not wait for it. The
        // hook and the end run in the background holding the release's lease, so no other
        // release of this app × environment starts meanwhile and the sweeper leaves it alone.
        let name = lease::name(r.app_id, r.environment_id);
        let holder = format!("{}:recovery", deps.worker_name);
        let held = Lease::try_take(&deps.db, &name, &holder, lease::TTL).await?;
        let deps = deps.clone();
        tokio::spawn(async move {
            on_failure::after_cut_off(&deps, &r, &reason).await;
            match end_cut_off(&deps, &r, &reason).await {
                Ok(true) => tracing::warn!(
                    release_id = %r.id,
                    "release interrupted by a restart marked failed"
                ),
                Ok(false) => {}
                Err(e) => {
                    tracing::error!(release_id = %r.id, error = %e, "could not end an interrupted release")
                }
            }
            if let Some(held) = held
                && let Err(e) = held.release().await
            {
                tracing::warn!(release_id = %r.id, error = %e, "could not free the lease");
            }
        });
    }
    let queued = deps
        .db
        .list_releases(&ReleaseFilter {
            status: Some(ReleaseStatus::Queued),
            ..Default::default()
        })
        .await?;
    for r in queued {
        if let Err(e) = queue.push(hippo_shared::jobs::DeployJob::run(r.id)).await {
            tracing::error!(release_id = %r.id, error = %e, "could not re-queue a release");
        }
    }
    Ok(())
}

/// How often each worker looks for releases whose worker died.
pub const SWEEP_EVERY: Duration = Duration::from_secs(5);

/// Ends releases whose worker is gone. A running release always holds its app × environment
/// lease (renewed every 10 s, valid 30 s), so a `running` release whose lease this worker can
/// take has lost its worker (killed, machine gone). Holding that lease (so no other release of
/// the app × environment starts meanwhile), the sweeper checks the hosts and ends the release
/// as failed with what they say; the fencing check stops a holder that was only slow from
/// switching later. Resuming instead of failing is not attempted: see docs/release-engine.md.
/// The config's failure hook runs before the release ends (`on_failure::after_cut_off`).
pub async fn sweep_orphans(deps: &Arc<Deps>) -> Result<(), DbError> {
    let filter = ReleaseFilter {
        status: Some(ReleaseStatus::Running),
        ..Default::default()
    };
    for r in deps.db.list_releases(&filter).await? {
        let name = lease::name(r.app_id, r.environment_id);
        let holder = format!("{}:sweeper", deps.worker_name);
        let Some(held) = Lease::try_take(&deps.db, &name, &holder, lease::TTL).await? else {
            continue; // its worker is alive
        };
        // The list may be stale: another worker's sweeper may have ended this release (holding
        // the lease) and freed the lease since. Checking its hosts again would add events after
        // its final one.
        if deps.db.get_release(r.id).await?.status != ReleaseStatus::Running {
            held.release().await?;
            continue;
        }
        let found = check_hosts(deps, &r).await;
        let reason = format!(
            "worker lost: the worker running this release stopped (its lease expired); {found}; run it again"
        );
        // Its failure hook, once (claimed: a worker that was only slow does not run it too).
        // The sweeper waits for it (bounded by the hook's time-out), holding the lease.
        on_failure::after_cut_off(deps, &r, &reason).await;
        if end_cut_off(deps, &r, &reason).await? {
            tracing::warn!(release_id = %r.id, "release of a lost worker marked failed");
        }
        held.release().await?;
    }
    Ok(())
}

/// Ends a cut-off release as failed with `reason` and, if this call ended it, sends the
/// config's channels the 'failed' notice the run could not send (the reason as its comment).
/// No event for the notice: the final event is the last one (its attempts are recorded with
/// the release's notices).
async fn end_cut_off(deps: &Arc<Deps>, r: &Release, reason: &str) -> Result<bool, DbError> {
    let ended = finish(deps, r.id, Err(reason)).await?;
    if ended {
        dispatch(deps, r, NoticeKind::Failed, None, Some(reason.to_owned())).await;
    }
    Ok(ended)
}

/// Where one host's deploy path pointed when checked after the cut-off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// Links to the run's version: it switched.
    OnNew,
    /// Links to another version (the one it had, or an older one).
    OnOther(String),
    /// No link (nothing was ever live there).
    NoLink,
    /// Could not be asked.
    Unknown(String),
}

/// Asks every host of a cut-off run where its deploy link points, records it (host rows, live
/// versions, an event per host) and returns the summary for the release's error. Never fails:
/// what cannot be checked is said so.
pub async fn check_hosts(deps: &Deps, r: &Release) -> String {
    let Some(version) = r.version.as_ref().map(|v| v.to_string()) else {
        return "it had not started preparing hosts: no host was touched".into();
    };
    let rows = deps.db.release_hosts(r.id).await.unwrap_or_default();
    if rows.is_empty() {
        return "it had not started preparing hosts: no host was touched".into();
    }
    let mut hosts = Vec::new();
    for row in rows {
        match deps.db.get_host(row.host_id).await {
            Ok(h) => hosts.push((h, row)),
            Err(_) => tracing::warn!(release_id = %r.id, host_id = %row.host_id, "host gone"),
        }
    }
    let (events, forwarder) = Events::start(deps.hub.clone(), r.id);
    events.info(
        Stage::Release,
        format!(
            "the run was cut off: checking where each host's deploy path links (this run's version is {version})"
        ),
    );
    let setup = SshSetup::from_deps(deps);
    let (deploy, versions) = (
        r.snapshot.deploy_path.to_string(),
        r.snapshot.versions_path.to_string(),
    );
    let jobs = hosts
        .iter()
        .map(|(h, _)| (h.clone(), events.clone()))
        .collect();
    let limit = crate::fleet::hosts_in_flight(r.snapshot.parallelism, hosts.len());
    let wanted = version.clone();
    let found = fan_out(
        jobs,
        limit,
        move |host, ev| look(&setup, host, &ev, &deploy, &versions, &wanted),
        Found::Unknown,
    )
    .await;
    let mut on_new = Vec::new();
    let mut on_other = Vec::new();
    let mut unknown = Vec::new();
    for ((host, row), (_, f)) in hosts.iter().zip(found) {
        let said = record(deps, r, &version, host, row, &f).await;
        events.info(Stage::Switch, format!("{}: {said}", host.name));
        match f {
            Found::OnNew => on_new.push(host.name.clone()),
            Found::OnOther(v) => on_other.push(format!("{} ({v})", host.name)),
            Found::NoLink => on_other.push(format!("{} (no version)", host.name)),
            Found::Unknown(_) => unknown.push(host.name.clone()),
        }
    }
    drop(events);
    let _ = forwarder.await;
    summary(&version, hosts.len(), &on_new, &on_other, &unknown)
}

/// The release's words for what the hosts said.
pub fn summary(
    version: &str,
    total: usize,
    on_new: &[String],
    on_other: &[String],
    unknown: &[String],
) -> String {
    let mut parts = Vec::new();
    if !on_new.is_empty() {
        parts.push(format!(
            "{} of {total} hosts switched to {version} and serve it ({}); their after-release hook may not have finished",
            on_new.len(),
            on_new.join(", ")
        ));
    }
    if !on_other.is_empty() {
        parts.push(format!(
            "{} of {total} hosts did not switch ({})",
            on_other.len(),
            on_other.join(", ")
        ));
    }
    if !unknown.is_empty() {
        parts.push(format!(
            "{} of {total} hosts could not be checked ({})",
            unknown.len(),
            unknown.join(", ")
        ));
    }
    format!("checked after the cut-off: {}", parts.join("; "))
}

/// Connects and reads the deploy link (blocking; on a `fan_out` thread).
fn look(
    setup: &SshSetup,
    host: &Host,
    ev: &Events,
    deploy: &str,
    versions: &str,
    version: &str,
) -> Found {
    let read = Target::connect(setup, host, ev, Stage::Switch)
        .and_then(|t| crate::prepare::live_version(&t, deploy, versions));
    match read {
        Ok(Some(v)) if v == version => Found::OnNew,
        Ok(Some(v)) => Found::OnOther(v),
        Ok(None) => Found::NoLink,
        Err(e) => Found::Unknown(e),
    }
}

/// Writes down what one host said; returns the words for its event.
async fn record(
    deps: &Deps,
    r: &Release,
    version: &str,
    host: &Host,
    row: &ReleaseHost,
    found: &Found,
) -> String {
    let db = &deps.db;
    let row_stage = parse_stage(&row.stage).unwrap_or(Stage::Prepare);
    let failed = row.status == HostStatus::Failed;
    // (status, stage, message, the version it serves)
    let (status, stage, message, live) = match found {
        // Recorded switched before the cut-off: it finished, after-release included.
        Found::OnNew if row.status == HostStatus::Switched => (
            HostStatus::Switched,
            Stage::Switch,
            String::new(),
            Some(version.to_owned()),
        ),
        Found::OnNew => (
            HostStatus::Switched,
            Stage::Switch,
            format!(
                "links to {version} (found after the cut-off; after-release may not have finished)"
            ),
            Some(version.to_owned()),
        ),
        Found::OnOther(v) if failed => (
            HostStatus::Failed,
            row_stage,
            format!("{}; links to {v}", row.message),
            Some(v.clone()),
        ),
        Found::OnOther(v) => (
            HostStatus::Skipped,
            Stage::Prepare,
            format!("not switched: the run was cut off; links to {v}"),
            Some(v.clone()),
        ),
        Found::NoLink if failed => (
            HostStatus::Failed,
            row_stage,
            format!("{}; no version is live", row.message),
            None,
        ),
        Found::NoLink => (
            HostStatus::Skipped,
            Stage::Prepare,
            "not switched: the run was cut off; no version is live".to_owned(),
            None,
        ),
        Found::Unknown(e) => (
            row.status,
            row_stage,
            format!("could not be checked after the cut-off: {e}"),
            None,
        ),
    };
    let write = async {
        db.update_release_host(r.id, host.id, status, stage, &message)
            .await?;
        if let Some(v) = &live {
            if v == version && r.kind == ReleaseKind::Release {
                db.record_host_version(r.config_id, host.id, version, r.id, r.commit_id.as_str())
                    .await?;
            }
            // Only a version Hippo knows on this host can be marked live.
            let known = db
                .host_versions(r.config_id)
                .await?
                .into_iter()
                .any(|hv| hv.host_id == host.id && hv.version.as_str() == v);
            if known {
                db.mark_live_version(r.config_id, host.id, v).await?;
            }
        }
        Ok::<_, DbError>(())
    };
    if let Err(e) = write.await {
        tracing::warn!(release_id = %r.id, host = %host.name, error = %e, "recording a checked host failed");
    }
    match found {
        Found::OnNew => format!("links to {version}: switched"),
        Found::OnOther(v) => format!("links to {v}: not switched"),
        Found::NoLink => "no deploy link: not switched".to_owned(),
        Found::Unknown(e) => format!("could not be checked: {e}"),
    }
}

fn parse_stage(s: &str) -> Option<Stage> {
    serde_json::from_value(serde_json::Value::String(s.to_owned())).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_summary_says_which_hosts_switched() {
        assert_eq!(
            summary("v2", 2, &v(&["web-1", "web-2"]), &[], &[]),
            "checked after the cut-off: 2 of 2 hosts switched to v2 and serve it (web-1, web-2); their after-release hook may not have finished"
        );
        assert_eq!(
            summary("v2", 3, &v(&["web-1"]), &v(&["web-2 (v1)"]), &v(&["web-3"])),
            "checked after the cut-off: 1 of 3 hosts switched to v2 and serve it (web-1); their after-release hook may not have finished; 1 of 3 hosts did not switch (web-2 (v1)); 1 of 3 hosts could not be checked (web-3)"
        );
    }
}
