//! The deploy job: one release from `queued` to `succeeded` or `failed`, holding its app ×
//! environment lease (`lease`) throughout. It reads like the list of stages:
//! checkout → package → prepare → switch → cleanup → notify. Each stage is a module; every
//! host is carried from prepare to cleanup as one `outcome::HostRun`, written down by
//! `outcome::record` after each stage.
use crate::cancel::{self, Cancel};
use crate::commands::Codec;
use crate::context::{Deps, Events, Run};
use crate::lease::{self, Lease};
use crate::outcome;
use crate::prepare::Payload;
use crate::retry::retry_db;
use crate::shipping::{self, KeptCopy, Shipment};
use crate::targets::SshSetup;
use crate::{checkout, cleanup, notify, on_failure, package, prepare, waves};
use hippo_shared::custom::ConfigKind;
use hippo_shared::db::DbError;
use hippo_shared::db::releases::Release;
use hippo_shared::domain::{ReleaseId, ReleaseKind, ReleaseStatus, VersionName};
use hippo_shared::events::{EventStatus, ReleaseEvent, Stage};
use hippo_shared::metrics;
use std::sync::Arc;

/// Runs a queued release to its end. Errors are only infrastructure failures (the database);
/// everything that goes wrong with the release itself ends it as `failed` with the reason.
pub async fn execute(deps: &Arc<Deps>, release_id: ReleaseId) -> Result<(), DbError> {
    let release = retry_db("reading the release", || deps.db.get_release(release_id)).await?;
    if release.status != ReleaseStatus::Queued {
        tracing::warn!(%release_id, status = %release.status, "job for a release that is not queued; skipped");
        return Ok(());
    }
    let name = lease::name(release.app_id, release.environment_id);
    let holder = format!("{}:{}", deps.worker_name, release_id);
    // The note is stored only while the release is still queued: one cancelled meanwhile has
    // its final event already, and nothing may follow that.
    let lease = Lease::acquire(&deps.db, &name, &holder, lease::TTL, || {
        deps.hub.publish_if_queued(
            ReleaseEvent::new(release_id, Stage::Release, EventStatus::Info)
                .message("waiting: another release of this app to this environment is running"),
        )
    })
    .await?;
    let moved = retry_db("marking the release running", || {
        deps.db
            .transition_release(release_id, ReleaseStatus::Running, None)
    })
    .await?;
    // The release ends (its status and final event) while it still holds the lease: the next
    // release of this app × environment starts only after this one has ended, as its events
    // show (the ten-release cluster story checks exactly that).
    let ended = if moved {
        let cancel = Cancel::default();
        let watcher = cancel.watch(deps.db.clone(), release_id);
        let (outcome, after) = run_stages(deps, &release, &lease, &cancel).await;
        watcher.abort();
        // From here a cancel request changes nothing: the run has ended.
        let _ = cancel.begin_switch();
        let end = match (&outcome, cancel.stopped_by()) {
            (Err(reason), Some(_)) => End::Cancelled(reason),
            (Err(reason), None) => End::Failed(reason),
            (Ok(()), _) => End::Succeeded,
        };
        let ended = end_run(deps, release_id, end).await;
        // Only the run that ended its release, still holding the lease, keeps a copy: one that
        // lost the lease (a sweeper ended it) may find its tree already taken by the next run.
        if matches!(ended, Ok(true)) && lease.still_held().await.unwrap_or(false) {
            after.run(release_id).await;
        } else {
            tracing::warn!(%release_id, "the run lost its lease or its end; no copy kept for rollbacks");
        }
        Some(ended)
    } else {
        None
    };
    // The run's scratch files (archives, a fresh tree) are removed once its end is out: a tree
    // of thousands of files takes a while to delete, and nobody needs to wait for that. Still
    // under the lease, so the next run of this app × environment starts with it gone.
    let work = work_folder(deps, release_id);
    let _ = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(work)).await;
    lease.release().await?;
    match ended {
        // Someone else ended it meanwhile (a sweeper that took this worker for dead).
        Some(Ok(false)) => tracing::warn!(
            %release_id,
            "release was already ended elsewhere; outcome not recorded"
        ),
        Some(Err(e)) => return Err(e),
        _ => {}
    }
    Ok(())
}

/// How a run ended; the reason is the release's `error` and its final event's message.
pub(crate) enum End<'a> {
    Succeeded,
    Failed(&'a str),
    /// Stopped before the switch by a cancel request.
    Cancelled(&'a str),
}

/// Ends a running release: `Ok` → succeeded, `Err(reason)` → failed. The final event is
/// published only if this call made the move, so a release never gets two contradicting ends.
pub(crate) async fn finish(
    deps: &Deps,
    release_id: ReleaseId,
    outcome: Result<(), &str>,
) -> Result<bool, DbError> {
    let end = match outcome {
        Ok(()) => End::Succeeded,
        Err(reason) => End::Failed(reason),
    };
    end_run(deps, release_id, end).await
}

/// [`finish`], for any [`End`].
pub(crate) async fn end_run(
    deps: &Deps,
    release_id: ReleaseId,
    end: End<'_>,
) -> Result<bool, DbError> {
    let (status, event, message, error) = match end {
        End::Succeeded => (
            ReleaseStatus::Succeeded,
            EventStatus::Succeeded,
            "release succeeded",
            None,
        ),
        End::Failed(reason) => (
            ReleaseStatus::Failed,
            EventStatus::Failed,
            reason,
            Some(reason),
        ),
        End::Cancelled(reason) => (
            ReleaseStatus::Cancelled,
            EventStatus::Cancelled,
            reason,
            Some(reason),
        ),
    };
    if !retry_db("recording the release's end", || {
        deps.db.transition_release(release_id, status, error)
    })
    .await?
    {
        // Refused: someone else ended it — or our own move committed and only its answer was
        // lost (the database restarted), and the retry found it done. Then it is ours: make
        // sure its final event exists.
        let now = retry_db("reading the release", || deps.db.get_release(release_id)).await?;
        if now.status != status || now.error.as_deref() != error {
            return Ok(false);
        }
        let stored = retry_db("reading events", || deps.hub.replay(release_id, 0)).await?;
        if stored.last().is_some_and(ReleaseEvent::is_final) {
            return Ok(true);
        }
    }
    metrics::global().release_ended(status.as_str());
    let end = ReleaseEvent::new(release_id, Stage::Release, event).message(message);
    retry_db("storing the final event", || deps.hub.publish(end.clone())).await?;
    Ok(true)
}

/// Work a run leaves for after its end, still under the lease: nobody waits for it, and the
/// next run of this app × environment starts only once it is done.
#[derive(Default)]
struct AfterEnd {
    /// The new version's payload, for the copy kept for rollbacks (`Shipment::keep_copy`),
    /// and where that copy goes.
    keep: Option<(Arc<Shipment>, std::path::PathBuf)>,
    /// After a success: keep this many copies of the config's versions (with the new one).
    prune: Option<usize>,
}

impl AfterEnd {
    async fn run(self, release_id: ReleaseId) {
        let Some((ship, artifact)) = self.keep else {
            return;
        };
        let prune = self.prune;
        let kept = tokio::task::spawn_blocking(move || {
            let kept = ship.keep_copy();
            if let Some(n) = prune {
                package::prune_artifacts(&artifact, n);
            }
            kept
        })
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r);
        match kept {
            Ok((path, info)) => tracing::info!(
                %release_id,
                path = %path.display(),
                bytes = info.archive_bytes,
                sha256 = %info.sha256,
                "kept the version for rollbacks"
            ),
            // The release stands: every host has the version; only a rollback to it on a
            // host that lost it would need the copy.
            Err(e) => tracing::warn!(
                %release_id,
                error = %e,
                "no copy of the version is kept for rollbacks; a rollback to it works on the hosts that still have it"
            ),
        }
    }
}

async fn run_stages(
    deps: &Arc<Deps>,
    release: &Release,
    lease: &Lease,
    cancel: &Cancel,
) -> (Result<(), String>, AfterEnd) {
    let mut after = AfterEnd::default();
    let (events, forwarder) = Events::start(deps.hub.clone(), release.id);
    events.send(
        events
            .event(Stage::Release, EventStatus::Started)
            .message(format!(
                "{} #{} '{}' by worker {}",
                release.kind.as_str(),
                release.id,
                release.name,
                deps.worker_name
            )),
    );
    let _timer = metrics::global().time_stage(Stage::Release);
    let result = match prepare_run(deps, release, events.clone(), cancel.clone()).await {
        Ok(run) => {
            notify::dispatch::dispatch(deps, release, notify::NoticeKind::Started, None, None)
                .await;
            let r = stages(deps, &run, lease, &mut after)
                .await
                .map_err(|e| cancel::explain(cancel, e));
            if let Err(reason) = &r {
                on_failure::run(deps, &run, reason, cancel.stopped_by().is_some()).await;
            }
            notify::run(deps, &run, r.as_ref().err().cloned(), cancel.stopped_by()).await;
            // The work folder goes after the release's end (`execute`).
            r
        }
        Err(e) => Err(e),
    };
    drop(events);
    let _ = forwarder.await;
    (result, after)
}

/// A run's scratch folder.
fn work_folder(deps: &Deps, release_id: ReleaseId) -> std::path::PathBuf {
    deps.work_dir().join(format!("release-{release_id}"))
}

/// Loads what the run needs; the config is the snapshot taken when the release was requested.
async fn prepare_run(
    deps: &Deps,
    release: &Release,
    events: Events,
    cancel: Cancel,
) -> Result<Run, String> {
    let db = &deps.db;
    let spec = release.snapshot.clone();
    let app = db
        .get_app(release.app_id)
        .await
        .map_err(|e| e.to_string())?;
    let env = db
        .get_environment(release.environment_id)
        .await
        .map_err(|e| e.to_string())?;
    let mut hosts = Vec::new();
    for id in release.target_host_ids() {
        let host = db
            .get_host(*id)
            .await
            .map_err(|_| format!("host {id} of this config no longer exists"))?;
        // A host moved to another environment is not this release's to touch.
        if host.environment_id != release.environment_id {
            return Err(format!(
                "host {} now belongs to another environment; update the config",
                host.name
            ));
        }
        hosts.push(host);
    }
    if hosts.is_empty() {
        return Err("the config has no target hosts".into());
    }
    let version = match (release.kind, &release.version) {
        (ReleaseKind::Rollback, Some(v)) => v.clone(),
        (ReleaseKind::Rollback, None) => return Err("the rollback has no target version".into()),
        // A retry's first run uses the failed release's version name: every host ends on one
        // version (the retried hosts did not switch to it, so none serves that folder). A
        // retry run again gets a new name like any re-run.
        (ReleaseKind::Release, Some(v))
            if release.retry_of.is_some()
                && db
                    .release_hosts(release.id)
                    .await
                    .map_err(|e| e.to_string())?
                    .is_empty() =>
        {
            v.clone()
        }
        (ReleaseKind::Release, _) => {
            // A new folder per run: a re-run never touches a folder a host may be serving.
            let v = VersionName::for_release(chrono::Utc::now(), release.id, &release.commit_id);
            db.set_release_version(release.id, &v)
                .await
                .map_err(|e| e.to_string())?;
            v
        }
    };
    let rows: Vec<_> = hosts
        .iter()
        .map(|h| (h.id, h.name.clone(), h.addr.clone()))
        .collect();
    db.reset_release_hosts(release.id, &rows)
        .await
        .map_err(|e| e.to_string())?;
    if release.host_ids.is_some() {
        let names: Vec<&str> = hosts.iter().map(|h| h.name.as_str()).collect();
        events.info(
            Stage::Release,
            format!(
                "for {} of the config's {} hosts: {}{}",
                hosts.len(),
                spec.host_ids.len(),
                names.join(", "),
                release
                    .retry_of
                    .map(|r| format!(" (retrying release #{r})"))
                    .unwrap_or_default()
            ),
        );
    }
    let work = work_folder(deps, release.id);
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).map_err(|e| format!("cannot create the work folder: {e}"))?;
    Ok(Run {
        release: release.clone(),
        spec,
        app,
        env,
        hosts,
        version,
        events,
        work,
        cancel,
    })
}

/// checkout → package (new releases only) → prepare → switch (in waves, if the config has
/// them) → cleanup; notify follows in [`run_stages`]. Each host's outcome is recorded after
/// every per-host stage.
async fn stages(
    deps: &Arc<Deps>,
    run: &Run,
    lease: &Lease,
    after: &mut AfterEnd,
) -> Result<(), String> {
    let db = &deps.db;
    let setup = SshSetup::from_deps(deps).stopped_by(run.cancel.host_flag());
    let zstd = deps.settings.zstd;
    let kept_codec = shipping::kept_codec(zstd);
    let artifact = deps.artifact_path(run.release.config_id, &run.version, kept_codec);

    if run.spec.kind == ConfigKind::Custom && run.release.kind == ReleaseKind::Release {
        return crate::custom::run(deps, run, &setup, lease).await;
    }
    let payload = match run.release.kind {
        ReleaseKind::Release => {
            let src = checkout::run(deps, run, checkout::Tree::for_release(run)).await?;
            cancel::checkpoint(run)?;
            let packaged = package::run(run, &src).await?;
            cancel::checkpoint(run)?;
            let ship = Arc::new(Shipment::new(
                run,
                packaged,
                zstd,
                (artifact.clone(), kept_codec),
            ));
            // Kept for rollbacks after the release's end (`AfterEnd`), whatever the outcome:
            // a host may serve it even when the release fails.
            after.keep = Some((ship.clone(), artifact.clone()));
            Payload::Archive(ship)
        }
        ReleaseKind::Rollback => {
            let kept = [Codec::Zstd, Codec::Gzip]
                .into_iter()
                .map(|c| {
                    (
                        deps.artifact_path(run.release.config_id, &run.version, c),
                        c,
                    )
                })
                .collect();
            let copy = KeptCopy::new(kept, zstd, run.work.clone());
            Payload::Existing(Arc::new(copy))
        }
    };
    let before_release = run.release.kind == ReleaseKind::Release;
    // Cleanup has each host make the spare of the new version for the next delta.
    let spare = match &payload {
        Payload::Archive(ship) => ship.spare_list().map(Arc::new),
        Payload::Existing(_) => None,
    };

    let mut hosts = prepare::run(run, &setup, payload, before_release).await;
    outcome::record(db, run, &hosts).await;
    if let Err(by) = run.cancel.begin_switch() {
        return Err(cancel::stop_before_switch(deps, run, &mut hosts, &by).await);
    }

    if let Err(why) = outcome::before_switch(run.spec.failure_policy, &outcome::named(&hosts)) {
        outcome::skip_prepared(&mut hosts, "not switched: another host failed to prepare");
        outcome::record(db, run, &hosts).await;
        return Err(why);
    }
    // Fencing: a worker that lost its lease must not touch the live links.
    // Its per-host rows are left as they are: whoever holds the lease now may be re-running
    // this very release and writing them.
    if !lease.still_held().await.map_err(|e| e.to_string())? {
        return Err(
            "this worker lost the release lease before switching; no host was switched".into(),
        );
    }

    let switched = waves::run(deps, run, &mut hosts, lease).await;
    outcome::record(db, run, &hosts).await;
    // A failed (or cancelled) wave rolled its hosts back: nothing new is live, nothing to clean.
    switched?;
    cancel::note_if_late(run);

    cleanup::run(run, &setup, &mut hosts, spare).await;
    outcome::record(db, run, &hosts).await;
    after.prune = Some(run.spec.keep_versions as usize);

    outcome::verdict(&outcome::named(&hosts))
}
