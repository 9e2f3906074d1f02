//! Login lockouts: user names and client addresses refused at login until a time, or until an
//! admin clears them (`api::login_guard` decides; every API replica reads them here).
use super::{Db, DbError, DbResult};
use crate::domain::LockoutId;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Lockout {
    pub id: LockoutId,
    /// `user` or `address`.
    pub kind: String,
    pub subject: String,
    /// Failed logins that led to it.
    pub failures: i64,
    pub locked_at: String,
    pub locked_until: String,
}

impl Db {
    /// Locks `kind`/`subject` out until `until` (RFC 3339, as [`super::now`] writes it),
    /// replacing an earlier lockout of the same subject.
    pub async fn lock_out(
        &self,
        kind: &str,
        subject: &str,
        failures: i64,
        until: &str,
    ) -> DbResult<Lockout> {
        let now = super::now();
        Ok(sqlx::query_as::<_, Lockout>(
            "INSERT INTO login_lockouts (kind, subject, failures, locked_at, locked_until) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (kind, subject) DO UPDATE SET failures = $3, locked_at = $4, \
             locked_until = $5 \
             RETURNING id, kind, subject, failures, locked_at, locked_until",
        )
        .bind(kind)
        .bind(subject)
        .bind(failures)
        .bind(&now)
        .bind(until)
        .fetch_one(&self.pool)
        .await?)
    }

    /// The lockouts in force of these (kind, subject) pairs, the longest first.
    pub async fn lockouts_of(&self, subjects: &[(&str, &str)]) -> DbResult<Vec<Lockout>> {
        let now = super::now();
        let mut out = Vec::new();
        for (kind, subject) in subjects {
            if let Some(l) = sqlx::query_as::<_, Lockout>(
                "SELECT id, kind, subject, failures, locked_at, locked_until FROM login_lockouts \
                 WHERE kind = $1 AND subject = $2 AND locked_until > $3",
            )
            .bind(*kind)
            .bind(*subject)
            .bind(&now)
            .fetch_optional(&self.pool)
            .await?
            {
                out.push(l);
            }
        }
        out.sort_by(|a, b| b.locked_until.cmp(&a.locked_until));
        Ok(out)
    }

    /// Every lockout in force, newest first (expired ones are deleted).
    pub async fn lockouts(&self) -> DbResult<Vec<Lockout>> {
        let now = super::now();
        sqlx::query("DELETE FROM login_lockouts WHERE locked_until <= $1")
            .bind(&now)
            .execute(&self.pool)
            .await?;
        Ok(sqlx::query_as::<_, Lockout>(
            "SELECT id, kind, subject, failures, locked_at, locked_until FROM login_lockouts \
             ORDER BY locked_at DESC, id DESC",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// Ends a lockout; the lockout as it was.
    pub async fn clear_lockout(&self, id: LockoutId) -> DbResult<Lockout> {
        sqlx::query_as::<_, Lockout>(
            "DELETE FROM login_lockouts WHERE id = $1 \
             RETURNING id, kind, subject, failures, locked_at, locked_until",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(DbError::NotFound("lockout"))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn later(secs: i64) -> String {
        (chrono::Utc::now() + chrono::Duration::seconds(secs))
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    }

    #[tokio::test]
    async fn a_lockout_is_in_force_until_its_time_or_until_cleared() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open_sqlite(&dir.path().join("t.db")).await.unwrap();
        let l = db.lock_out("user", "admin", 15, &later(60)).await.unwrap();
        db.lock_out("address", "10.0.0.1", 60, &later(-1))
            .await
            .unwrap();
        let found = db
            .lockouts_of(&[("user", "admin"), ("address", "10.0.0.1")])
            .await
            .unwrap();
        assert_eq!(found.len(), 1, "the expired one is not in force");
        assert_eq!((found[0].id, found[0].failures), (l.id, 15));
        // Locked again: the same row, a new time.
        let again = db.lock_out("user", "admin", 30, &later(120)).await.unwrap();
        assert_eq!(again.id, l.id);
        assert_eq!(db.lockouts().await.unwrap().len(), 1);
        let cleared = db.clear_lockout(l.id).await.unwrap();
        assert_eq!(cleared.subject, "admin");
        assert!(db.lockouts().await.unwrap().is_empty());
        assert!(matches!(
            db.clear_lockout(l.id).await,
            Err(DbError::NotFound(_))
        ));
    }
}
