//! The deploy job: one release from `queued` to `succeeded` or `failed`. It reads like the
//! list of stages: checkout → package → prepare → switch → cleanup → notify.
use crate::context::{Deps, Events, Run};
use crate::package::FileFilter;
use crate::prepare::{Payload, Prepared};
use crate::ssh::Timeouts;
use crate::targets::SshSetup;
use crate::{checkout, cleanup, notify, prepare, switch};
use hippo_shared::db::DbError;
use hippo_shared::db::releases::Release;
use hippo_shared::domain::{FailurePolicy, ReleaseId, ReleaseKind, ReleaseStatus, VersionName};
use hippo_shared::events::{EventStatus, ReleaseEvent, Stage};
use hippo_shared::metrics;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How long a release lease lives without renewal; renewed every third of it.
const LEASE_TTL_MS: i64 = 30_000;

/// Runs a queued release to its end. Errors are only infrastructure failures (the database);
/// everything that goes wrong with the release itself ends it as `failed` with the reason.
pub async fn execute(deps: &Arc<Deps>, release_id: ReleaseId) -> Result<(), DbError> {
    let release = retry_db("reading the release", || deps.db.get_release(release_id)).await?;
    if release.status != ReleaseStatus::Queued {
        tracing::warn!(%release_id, status = %release.status, "job for a release that is not queued; skipped");
        return Ok(());
    }
    let lease = format!("app:{}:env:{}", release.app_id, release.environment_id);
    let holder = format!("{}:{}", deps.worker_name, release_id);
    let mut announced = false;
    let token = loop {
        if let Some(t) = retry_db("taking the release lease", || {
            deps.db.try_acquire_lease(&lease, &holder, LEASE_TTL_MS)
        })
        .await?
        {
            break t;
        }
        if !announced {
            announced = true;
            deps.hub
                .publish(
                    ReleaseEvent::new(release_id, Stage::Release, EventStatus::Info).message(
                        "waiting: another release of this app to this environment is running",
                    ),
                )
                .await?;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let lost = Arc::new(AtomicBool::new(false));
    let heartbeat = {
        let db = deps.db.clone();
        let (lease, holder, lost) = (lease.clone(), holder.clone(), lost.clone());
        tokio::spawn(async move {
            let mut wait = Duration::from_millis((LEASE_TTL_MS / 3) as u64);
            let mut renewed = tokio::time::Instant::now();
            let ttl = Duration::from_millis(LEASE_TTL_MS as u64);
            loop {
                tokio::time::sleep(wait).await;
                match db.renew_lease(&lease, &holder, token, LEASE_TTL_MS).await {
                    Ok(true) => {
                        renewed = tokio::time::Instant::now();
                        wait = Duration::from_millis((LEASE_TTL_MS / 3) as u64);
                    }
                    // Expired or taken: this worker may no longer switch hosts.
                    Ok(false) => lost.store(true, Ordering::SeqCst),
                    // The database is unreachable (restarting?): try again soon. Once the
                    // lease may have expired, someone else may hold it: count it as lost.
                    Err(e) => {
                        tracing::warn!(error = %e, "renewing the release lease failed; retrying");
                        if renewed.elapsed() >= ttl {
                            lost.store(true, Ordering::SeqCst);
                        }
                        wait = Duration::from_secs(1);
                    }
                }
            }
        })
    };
    let outcome = if retry_db("marking the release running", || {
        deps.db
            .transition_release(release_id, ReleaseStatus::Running, None)
    })
    .await?
    {
        Some(run_stages(deps, &release, &lease, &holder, token, &lost).await)
    } else {
        None
    };
    // The release ends (its status and final event) while it still holds the lease: the next
    // release of this app × environment starts only after this one has ended, as its events
    // show (the ten-release cluster story checks exactly that).
    let ended = match &outcome {
        Some(o) => Some(
            finish(
                deps,
                release_id,
                o.as_ref().map(|_| ()).map_err(String::as_str),
            )
            .await,
        ),
        None => None,
    };
    heartbeat.abort();
    retry_db("releasing the lease", || {
        deps.db.release_lease(&lease, &holder, token)
    })
    .await?;
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

/// Ends a running release: `Ok` → succeeded, `Err(reason)` → failed. The final event is
/// published only if this call made the move, so a release never gets two contradicting ends.
async fn finish(
    deps: &Deps,
    release_id: ReleaseId,
    outcome: Result<(), &str>,
) -> Result<bool, DbError> {
    let (status, event, message) = match outcome {
        Ok(()) => (
            ReleaseStatus::Succeeded,
            EventStatus::Succeeded,
            "release succeeded",
        ),
        Err(reason) => (ReleaseStatus::Failed, EventStatus::Failed, reason),
    };
    if !retry_db("recording the release's end", || {
        deps.db
            .transition_release(release_id, status, outcome.err())
    })
    .await?
    {
        // Refused: someone else ended it — or our own move committed and only its answer was
        // lost (the database restarted), and the retry found it done. Then it is ours: make
        // sure its final event exists.
        let now = retry_db("reading the release", || deps.db.get_release(release_id)).await?;
        if now.status != status || now.error.as_deref() != outcome.err() {
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

/// How long a database call of the run is retried while the database is unreachable (a
/// PostgreSQL restart, a failover) before the run gives up on it.
const DB_PATIENCE: Duration = Duration::from_secs(60);

/// Runs `op` until it succeeds or [`DB_PATIENCE`] has passed, backing off between tries.
/// Only for idempotent calls (reads, compare-and-set moves, lease calls).
pub(crate) async fn retry_db<T, F, Fut>(what: &str, mut op: F) -> Result<T, DbError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, DbError>>,
{
    let deadline = tokio::time::Instant::now() + DB_PATIENCE;
    let mut pause = Duration::from_millis(200);
    loop {
        match op().await {
            Ok(v) => return Ok(v),
            Err(e) if tokio::time::Instant::now() + pause < deadline => {
                tracing::warn!(error = %e, ?pause, "{what} failed; retrying");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(5));
            }
            Err(e) => return Err(e),
        }
    }
}

async fn run_stages(
    deps: &Arc<Deps>,
    release: &Release,
    lease: &str,
    holder: &str,
    token: i64,
    lost: &AtomicBool,
) -> Result<(), String> {
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
    let result = match prepare_run(deps, release, events.clone()).await {
        Ok(run) => {
            notify::dispatch::dispatch(deps, release, notify::NoticeKind::Started, None, None)
                .await;
            let r = stages(deps, &run, lease, holder, token, lost).await;
            notify::run(deps, &run, r.as_ref().err().cloned()).await;
            let _ = std::fs::remove_dir_all(&run.work);
            r
        }
        Err(e) => Err(e),
    };
    drop(events);
    let _ = forwarder.await;
    result
}

/// Loads what the run needs; the config is the snapshot taken when the release was requested.
async fn prepare_run(deps: &Deps, release: &Release, events: Events) -> Result<Run, String> {
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
    for id in &spec.host_ids {
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
    let work = deps.work_dir().join(format!("release-{}", release.id));
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
    })
}

async fn stages(
    deps: &Arc<Deps>,
    run: &Run,
    lease: &str,
    holder: &str,
    token: i64,
    lost: &AtomicBool,
) -> Result<(), String> {
    let db = &deps.db;
    let rid = run.release.id;
    let setup = SshSetup {
        private_key: deps.key.private_openssh.expose().to_owned(),
        timeouts: Timeouts {
            connect: deps.settings.ssh_connect_timeout(),
            io: deps.settings.ssh_io_timeout(),
        },
        db: db.clone(),
        rt: tokio::runtime::Handle::current(),
    };
    let artifact = deps.artifact_path(run.release.config_id, &run.version);

    // checkout → package (new releases only), then prepare.
    let (payload, with_hook) = match run.release.kind {
        ReleaseKind::Release => {
            let src = {
                let _timer = metrics::global().time_stage(Stage::Checkout);
                checkout::run(deps, run).await?
            };
            let manifest = {
                let _timer = metrics::global().time_stage(Stage::Package);
                package(run, &src, &artifact).await?
            };
            (
                Payload::Archive {
                    path: artifact.clone(),
                    manifest: Arc::new(manifest),
                },
                true,
            )
        }
        ReleaseKind::Rollback => (
            Payload::Existing {
                fallback: Some(artifact.clone()),
            },
            false,
        ),
    };
    run.events.send(
        run.events
            .event(Stage::Prepare, EventStatus::Started)
            .message(format!("preparing {} hosts", run.hosts.len())),
    );
    let prepared = {
        let _timer = metrics::global().time_stage(Stage::Prepare);
        prepare::run(run, &setup, payload, with_hook).await
    };
    let mut ready = Vec::new();
    let mut failures = Vec::new();
    for (host, res) in prepared {
        match res {
            Ok(Prepared {
                previous,
                bytes_sent,
                conn,
            }) => {
                let _ = db
                    .update_release_host(rid, host.id, "prepared", "prepare", "")
                    .await;
                let _ = db
                    .set_release_host_extra(rid, host.id, bytes_sent, previous.as_deref())
                    .await;
                if run.release.kind == ReleaseKind::Release {
                    let _ = db
                        .record_host_version(
                            run.release.config_id,
                            host.id,
                            run.version.as_str(),
                            rid,
                            run.release.commit_id.as_str(),
                        )
                        .await;
                }
                ready.push((host, conn));
            }
            Err(e) => {
                let _ = db
                    .update_release_host(rid, host.id, "failed", "prepare", &e)
                    .await;
                failures.push(format!("{}: {e}", host.name));
            }
        }
    }
    if !failures.is_empty() && run.spec.failure_policy == FailurePolicy::AllOrNothing {
        for (h, _) in &ready {
            let _ = db
                .update_release_host(
                    rid,
                    h.id,
                    "skipped",
                    "prepare",
                    "not switched: another host failed to prepare",
                )
                .await;
        }
        return Err(format!(
            "{} of {} hosts failed to prepare; no host was switched. {}",
            failures.len(),
            run.hosts.len(),
            failures.join("; ")
        ));
    }

    // Fencing: a worker that lost its lease must not touch the live links.
    if lost.load(Ordering::SeqCst)
        || !db
            .holds_lease(lease, holder, token)
            .await
            .map_err(|e| e.to_string())?
    {
        return Err(
            "this worker lost the release lease before switching; no host was switched".into(),
        );
    }
    run.events.send(
        run.events
            .event(Stage::Switch, EventStatus::Started)
            .message(format!("switching {} hosts", ready.len())),
    );
    let switched = {
        let _timer = metrics::global().time_stage(Stage::Switch);
        switch::run(run, ready).await
    };
    let mut live = Vec::new();
    for (host, res, conn) in switched {
        match &res {
            Ok(()) => {
                let _ = db
                    .update_release_host(rid, host.id, "switched", "switch", "")
                    .await;
            }
            Err((_, e)) => {
                let _ = db
                    .update_release_host(rid, host.id, "failed", "switch", e)
                    .await;
                failures.push(format!("{}: {e}", host.name));
            }
        }
        if matches!(res, Ok(()) | Err((true, _))) {
            let _ = db
                .mark_live_version(run.release.config_id, host.id, run.version.as_str())
                .await;
            live.push((host, conn));
        }
    }

    run.events
        .send(run.events.event(Stage::Cleanup, EventStatus::Started));
    let cleaned = {
        let _timer = metrics::global().time_stage(Stage::Cleanup);
        cleanup::run(run, &setup, live).await
    };
    for (host_id, gone) in cleaned {
        let _ = db
            .forget_host_versions(run.release.config_id, host_id, &gone)
            .await;
    }
    prune_artifacts(&artifact, run.spec.keep_versions as usize);

    if failures.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} of {} hosts failed: {}",
            failures.len(),
            run.hosts.len(),
            failures.join("; ")
        ))
    }
}

/// Stage 2: filter and pack the exported tree; returns the manifest JSON recorded beside the
/// version on every host.
async fn package(
    run: &Run,
    src: &std::path::Path,
    out: &std::path::Path,
) -> Result<String, String> {
    let ev = &run.events;
    ev.send(ev.event(Stage::Package, EventStatus::Started));
    let filter =
        FileFilter::parse(run.spec.filter_mode, &run.spec.filter).map_err(|e| e.to_string())?;
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create the artifact folder: {e}"))?;
    }
    let (src, out) = (src.to_owned(), out.to_owned());
    let (info, entries) = tokio::task::spawn_blocking(move || {
        let entries = crate::package::manifest(&src, &filter)?;
        let info = crate::package::build_archive(&src, &filter, &out)?;
        Ok::<_, crate::package::PackageError>((info, entries))
    })
    .await
    .map_err(|e| format!("package task failed: {e}"))?
    .map_err(|e| e.to_string())?;
    ev.send(
        ev.event(Stage::Package, EventStatus::Succeeded)
            .bytes(info.archive_bytes)
            .message(format!(
                "{} files, {} bytes, archive {} bytes (sha256 {})",
                info.files, info.bytes_uncompressed, info.archive_bytes, info.sha256
            )),
    );
    let manifest = serde_json::json!({
        "release_id": run.release.id,
        "commit": run.release.commit_id,
        "version": run.version,
        "archive_sha256": info.sha256,
        "files": entries,
    });
    Ok(manifest.to_string())
}

/// Keeps the newest `keep` archives of a config (the newest is the one just made).
fn prune_artifacts(artifact: &std::path::Path, keep: usize) {
    let Some(dir) = artifact.parent() else { return };
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let names: Vec<String> = rd
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    let own = artifact
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    for name in cleanup::to_remove(names, keep + 1, &[own]) {
        let _ = std::fs::remove_file(dir.join(name));
    }
}

/// Standalone start-up: this process is the only worker, so a release still `running` was cut
/// off when Hippo stopped. It ends as failed with that reason (hosts keep whatever complete
/// version they link to: a switch is one rename). Queued releases are queued again; a job
/// delivered twice is harmless because only one run can move a release out of `queued`.
pub async fn recover_after_restart(
    deps: &Deps,
    queue: &crate::queue::Queue,
) -> Result<(), DbError> {
    use hippo_shared::db::releases::ReleaseFilter;
    deps.db.expire_all_leases().await?;
    let running = deps
        .db
        .list_releases(&ReleaseFilter {
            status: Some(ReleaseStatus::Running),
            ..Default::default()
        })
        .await?;
    for r in running {
        let reason = "interrupted: Hippo stopped while this release was running; each host still links to a complete version (see its per-host result); run it again";
        if finish(deps, r.id, Err(reason)).await? {
            tracing::warn!(
                release_id = %r.id,
                "release interrupted by a restart marked failed"
            );
        }
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
/// take has lost its worker (killed, machine gone). It ends as failed with that reason: hosts
/// keep a complete version each (new folders are unpacked beside the live one and a switch is
/// one rename), and the fencing check stops a holder that was only slow from switching later.
/// Resuming instead of failing is not attempted: see docs/release-engine.md.
pub async fn sweep_orphans(deps: &Deps) -> Result<(), DbError> {
    use hippo_shared::db::releases::ReleaseFilter;
    let filter = ReleaseFilter {
        status: Some(ReleaseStatus::Running),
        ..Default::default()
    };
    for r in deps.db.list_releases(&filter).await? {
        let lease = format!("app:{}:env:{}", r.app_id, r.environment_id);
        let holder = format!("{}:sweeper", deps.worker_name);
        let Some(token) = deps
            .db
            .try_acquire_lease(&lease, &holder, LEASE_TTL_MS)
            .await?
        else {
            continue; // its worker is alive
        };
        let reason = "worker lost: the worker running this release stopped (its lease expired); each host still links to a complete version (see its per-host result); run it again";
        if finish(deps, r.id, Err(reason)).await? {
            tracing::warn!(release_id = %r.id, "release of a lost worker marked failed");
        }
        deps.db.release_lease(&lease, &holder, token).await?;
    }
    Ok(())
}
