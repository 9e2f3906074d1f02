//! Stored release events: each event's JSON body under an id that grows across all releases
//! (the SSE event id). `events::EventHub` stores through here, then fans out live.
use super::{Db, DbResult};
use crate::domain::ReleaseId;

impl Db {
    /// Stores one event's body; returns its id.
    pub async fn insert_event(&self, release_id: ReleaseId, at: &str, body: &str) -> DbResult<i64> {
        Ok(sqlx::query_scalar(
            "INSERT INTO release_events (release_id, at, body) VALUES ($1, $2, $3) RETURNING id",
        )
        .bind(release_id)
        .bind(at)
        .bind(body)
        .fetch_one(&self.pool)
        .await?)
    }

    /// Stores one event's body only if its release is still `queued`, in one statement: the
    /// worker's "waiting for the lease" note, which must never land after the final event of a
    /// release cancelled while it waited (the API moves the status first, then stores that
    /// final event). `None`: not stored.
    pub async fn insert_event_if_queued(
        &self,
        release_id: ReleaseId,
        at: &str,
        body: &str,
    ) -> DbResult<Option<i64>> {
        Ok(sqlx::query_scalar(
            "INSERT INTO release_events (release_id, at, body)
             SELECT id, $2, $3 FROM releases WHERE id = $1 AND status = 'queued'
             RETURNING id",
        )
        .bind(release_id)
        .bind(at)
        .bind(body)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Stores several events' bodies in one transaction (one commit for a whole batch of a
    /// busy release); returns their ids in order.
    pub async fn insert_events(&self, rows: &[(ReleaseId, &str, &str)]) -> DbResult<Vec<i64>> {
        let mut tx = self.pool.begin().await?;
        let mut ids = Vec::with_capacity(rows.len());
        for (release_id, at, body) in rows {
            ids.push(
                sqlx::query_scalar(
                    "INSERT INTO release_events (release_id, at, body) VALUES ($1, $2, $3) RETURNING id",
                )
                .bind(*release_id)
                .bind(*at)
                .bind(*body)
                .fetch_one(&mut *tx)
                .await?,
            );
        }
        tx.commit().await?;
        Ok(ids)
    }

    /// The stored events of a release with an id above `after`, oldest first: (id, body).
    pub async fn events_after(
        &self,
        release_id: ReleaseId,
        after: i64,
    ) -> DbResult<Vec<(i64, String)>> {
        Ok(sqlx::query_as(
            "SELECT id, body FROM release_events WHERE release_id = $1 AND id > $2 ORDER BY id",
        )
        .bind(release_id)
        .bind(after)
        .fetch_all(&self.pool)
        .await?)
    }
}
