//! Scheduled releases: an approved release with a `run_at` time is queued then, by whichever
//! API process claims it first. The claim is one conditional UPDATE (still approved, still
//! scheduled, due), so several replicas polling at once queue it exactly once; the schedule is
//! in the database, so it survives restarts of every process.
use super::audit::Actor;
use super::{Db, DbResult, now};
use crate::domain::ReleaseId;

/// A point in time as stored (RFC 3339, UTC, milliseconds, `Z`): the stored times compare as
/// text in the same order as in time.
pub fn stored_time(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl Db {
    /// Sets when an approved release runs; false if it is not approved (any more).
    pub async fn schedule_release(
        &self,
        id: ReleaseId,
        run_at: &str,
        actor: &Actor,
    ) -> DbResult<bool> {
        let mut tx = self.pool.begin().await?;
        let r = sqlx::query(
            "UPDATE releases SET run_at = $1, updated_at = $2 WHERE id = $3 AND status = 'approved'",
        )
        .bind(run_at)
        .bind(now())
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if r.rows_affected() != 1 {
            return Ok(false);
        }
        super::audit::insert(
            &mut tx,
            actor,
            "release",
            Some(id.get()),
            "schedule",
            &serde_json::json!({ "run_at": run_at }),
            "",
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Approved releases whose time has come (`run_at` at or before `at`), earliest first.
    pub async fn due_releases(&self, at: &str) -> DbResult<Vec<ReleaseId>> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM releases WHERE status = 'approved' AND run_at IS NOT NULL AND run_at <= $1
             ORDER BY run_at, id LIMIT 100",
        )
        .bind(at)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Claims a due release: `approved` → `queued` only if it is still approved, scheduled and
    /// due at `at`. True for exactly one caller; the move is audited like any other.
    pub async fn claim_due_release(&self, id: ReleaseId, at: &str) -> DbResult<bool> {
        let mut tx = self.pool.begin().await?;
        let t = now();
        let r = sqlx::query(
            "UPDATE releases SET status = 'queued', error = NULL, finished_at = NULL, cancelled_by = NULL,
                updated_at = $1
             WHERE id = $2 AND status = 'approved' AND run_at IS NOT NULL AND run_at <= $3",
        )
        .bind(&t)
        .bind(id)
        .bind(at)
        .execute(&mut *tx)
        .await?;
        if r.rows_affected() != 1 {
            return Ok(false);
        }
        super::audit::insert(
            &mut tx,
            &Actor::system(),
            "release",
            Some(id.get()),
            "status",
            &serde_json::json!({"status": {"from": "approved", "to": "queued"}, "scheduled": true}),
            "",
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }
}
