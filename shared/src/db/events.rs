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
    /// final event). `None`: not stored. SQLite runs one writer at a time; on PostgreSQL the
    /// row is read `FOR SHARE`, so a cancel's status change either waits for this statement
    /// (the note commits first, below the final event) or has committed (nothing stored).
    pub async fn insert_event_if_queued(
        &self,
        release_id: ReleaseId,
        at: &str,
        body: &str,
    ) -> DbResult<Option<i64>> {
        let sql = match self.backend {
            super::Backend::Sqlite => {
                "INSERT INTO release_events (release_id, at, body)
                 SELECT id, $2, $3 FROM releases WHERE id = $1 AND status = 'queued'
                 RETURNING id"
            }
            super::Backend::Postgres => {
                "INSERT INTO release_events (release_id, at, body)
                 SELECT id, $2, $3 FROM releases WHERE id = $1 AND status = 'queued' FOR SHARE
                 RETURNING id"
            }
        };
        Ok(sqlx::query_scalar(sql)
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A release row in `status`, with the rows it refers to (inserted as plainly as possible).
    async fn release_in(db: &Db, status: &str) -> ReleaseId {
        let t = super::super::now();
        for sql in [
            "INSERT INTO users (id, username, password_hash, created_at) VALUES (1, 'admin', 'x', $1)",
            "INSERT INTO environments (id, name, tag, created_at, updated_at) VALUES (1, 'Prod', 'prod', $1, $1)",
            "INSERT INTO apps (id, name, tag, created_at, updated_at) VALUES (1, 'Shop', 'shop', $1, $1)",
            "INSERT INTO release_configs (id, app_id, environment_id, spec, created_at, updated_at) VALUES (1, 1, 1, '{}', $1, $1)",
        ] {
            sqlx::query(sql).bind(&t).execute(&db.pool).await.unwrap();
        }
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO releases (config_id, app_id, environment_id, name, kind, ref_kind, ref_name,
                commit_id, status, snapshot, requested_by, created_at, updated_at)
             VALUES (1, 1, 1, 'r', 'release', 'branch', 'main', 'abc', $1, '{}', 1, $2, $2) RETURNING id",
        )
        .bind(status)
        .bind(&t)
        .fetch_one(&db.pool)
        .await
        .unwrap();
        ReleaseId::new(id)
    }

    #[tokio::test]
    async fn a_waiting_note_is_stored_for_a_queued_release_and_never_for_one_that_moved_on() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open_sqlite(&dir.path().join("t.db")).await.unwrap();
        let r = release_in(&db, "queued").await;
        let t = super::super::now();
        let stored = db.insert_event_if_queued(r, &t, "{}").await.unwrap();
        assert!(stored.is_some());
        sqlx::query("UPDATE releases SET status = 'cancelled' WHERE id = $1")
            .bind(r)
            .execute(&db.pool)
            .await
            .unwrap();
        assert_eq!(db.insert_event_if_queued(r, &t, "{}").await.unwrap(), None);
        assert_eq!(db.events_after(r, 0).await.unwrap().len(), 1);
    }
}
