//! Waves of a release (issue 12): which wave each host switches in, and the pause after a
//! wave (the worker waits while `paused_wave` is set; `continue` clears it). Clearing is a
//! compare-and-set, so a "continue" and the pause's time-out cannot both win.
use super::{Db, DbResult, now};
use crate::domain::{HostId, ReleaseId};

/// A release waiting after a wave for someone to continue it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pause {
    /// The wave it waits after (1-based).
    pub wave: u32,
    /// When it stops waiting and is cancelled (RFC 3339).
    pub until: String,
}

impl Db {
    /// Writes down the wave (1-based) each host of the run switches in.
    pub async fn set_release_host_waves(
        &self,
        release_id: ReleaseId,
        waves: &[(HostId, u32)],
    ) -> DbResult<()> {
        let mut tx = self.pool.begin().await?;
        for (host, wave) in waves {
            sqlx::query(
                "UPDATE release_hosts SET wave = $1 WHERE release_id = $2 AND host_id = $3",
            )
            .bind(i64::from(*wave))
            .bind(release_id)
            .bind(host)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The wave of each host of a release (hosts of a release without waves are absent).
    pub async fn release_host_waves(&self, release_id: ReleaseId) -> DbResult<Vec<(HostId, u32)>> {
        let rows: Vec<(HostId, i64)> = sqlx::query_as(
            "SELECT host_id, wave FROM release_hosts WHERE release_id = $1 AND wave IS NOT NULL ORDER BY host_id",
        )
        .bind(release_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(h, w)| (h, u32::try_from(w).unwrap_or(0)))
            .collect())
    }

    /// The release (running) now waits after `wave` until `until`.
    pub async fn pause_release(
        &self,
        release_id: ReleaseId,
        wave: u32,
        until: &str,
    ) -> DbResult<()> {
        sqlx::query("UPDATE releases SET paused_wave = $1, paused_until = $2, updated_at = $3 WHERE id = $4")
            .bind(i64::from(wave))
            .bind(until)
            .bind(now())
            .bind(release_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Where a release waits, if it does.
    pub async fn release_pause(&self, release_id: ReleaseId) -> DbResult<Option<Pause>> {
        let row: Option<(Option<i64>, Option<String>)> =
            sqlx::query_as("SELECT paused_wave, paused_until FROM releases WHERE id = $1")
                .bind(release_id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(match row {
            Some((Some(w), Some(until))) => Some(Pause {
                wave: u32::try_from(w).unwrap_or(0),
                until,
            }),
            _ => None,
        })
    }

    /// Ends the wait after `wave` (someone continued it, or it timed out): true if this call
    /// ended it, false if it was not waiting there (any more).
    pub async fn end_pause(&self, release_id: ReleaseId, wave: u32) -> DbResult<bool> {
        let r = sqlx::query(
            "UPDATE releases SET paused_wave = NULL, paused_until = NULL, updated_at = $1
             WHERE id = $2 AND status = 'running' AND paused_wave = $3",
        )
        .bind(now())
        .bind(release_id)
        .bind(i64::from(wave))
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }
}
