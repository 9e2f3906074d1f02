//! Releases whose run was cut off: a restart of standalone Hippo (every `running` release was
//! this process's), or a worker that died (its lease expired; every worker sweeps for those).
use crate::context::Deps;
use crate::lease::{self, Lease};
use crate::runner::finish;
use hippo_shared::db::DbError;
use hippo_shared::db::releases::ReleaseFilter;
use hippo_shared::domain::ReleaseStatus;
use std::time::Duration;

/// Standalone start-up: this process is the only worker, so a release still `running` was cut
/// off when Hippo stopped. It ends as failed with that reason (hosts keep whatever complete
/// version they link to: a switch is one rename). Queued releases are queued again; a job
/// delivered twice is harmless because only one run can move a release out of `queued`.
pub async fn recover_after_restart(
    deps: &Deps,
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
        let reason = "worker lost: the worker running this release stopped (its lease expired); each host still links to a complete version (see its per-host result); run it again";
        if finish(deps, r.id, Err(reason)).await? {
            tracing::warn!(release_id = %r.id, "release of a lost worker marked failed");
        }
        held.release().await?;
    }
    Ok(())
}
