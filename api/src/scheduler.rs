//! Scheduled releases: every API process looks once a second for approved releases whose
//! `run_at` has come and queues them. The claim is a conditional UPDATE in the database
//! (`Db::claim_due_release`), so with several replicas exactly one queues each release; the
//! schedule lives in the database, so it survives restarts (a release whose time passed while
//! every API process was down is queued when one is back).
use crate::routes::releases::push_run;
use crate::state::State;
use hippo_shared::db::audit::Actor;
use hippo_shared::db::schedule::stored_time;
use hippo_shared::events::{EventStatus, ReleaseEvent, Stage};
use std::sync::Arc;
use std::time::Duration;

/// How often the due releases are looked for (the issue allows ±2 s).
pub const POLL: Duration = Duration::from_millis(500);

/// Runs until `stop` resolves.
pub async fn run(st: Arc<State>, stop: impl std::future::Future<Output = ()>) {
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => return,
            () = tokio::time::sleep(POLL) => {}
        }
        if let Err(e) = queue_due(&st).await {
            tracing::warn!(error = %e, "looking for scheduled releases failed");
        }
    }
}

/// Queues every release due now that this process claims; how many.
pub async fn queue_due(st: &State) -> Result<usize, hippo_shared::db::DbError> {
    let at = stored_time(chrono::Utc::now());
    let mut queued = 0;
    for id in st.db.due_releases(&at).await? {
        if !st.db.claim_due_release(id, &at).await? {
            continue; // another process claimed it, or it was cancelled meanwhile
        }
        queued += 1;
        tracing::info!(release_id = %id, "scheduled release queued");
        let note = ReleaseEvent::new(id, Stage::Release, EventStatus::Info)
            .message("queued at its scheduled time");
        if let Err(e) = st.hub.publish(note).await {
            tracing::warn!(release_id = %id, error = %e, "could not store an event");
        }
        if let Err(e) = push_run(st, id, &Actor::system()).await {
            tracing::error!(release_id = %id, error = ?e, "scheduled release not queued");
        }
    }
    Ok(queued)
}
