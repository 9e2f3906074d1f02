//! Git servers' SSH host keys, pinned on first use (`git_host_keys`).
use super::{Db, DbError, DbResult, now};
use std::collections::HashMap;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct GitHostKey {
    pub host: String,
    pub host_key: String,
    pub fingerprint: String,
    pub pinned_at: String,
}

impl Db {
    /// Every pinned key: `host[:port]` → base64 key.
    pub async fn git_host_keys(&self) -> DbResult<HashMap<String, String>> {
        let rows: Vec<(String, String)> =
            sqlx::query_as("SELECT host, host_key FROM git_host_keys")
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.into_iter().collect())
    }
    pub async fn git_host_key(&self, host: &str) -> DbResult<GitHostKey> {
        sqlx::query_as(
            "SELECT host, host_key, fingerprint, pinned_at FROM git_host_keys WHERE host = $1",
        )
        .bind(host)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(DbError::NotFound("pinned host key"))
    }
    /// Pins a key seen for the first time (a key pinned meanwhile by another process stays).
    pub async fn pin_git_host_key(&self, host: &str, key: &str, fingerprint: &str) -> DbResult<()> {
        sqlx::query("INSERT INTO git_host_keys (host, host_key, fingerprint, pinned_at) VALUES ($1, $2, $3, $4) ON CONFLICT (host) DO NOTHING")
            .bind(host)
            .bind(key)
            .bind(fingerprint)
            .bind(now())
            .execute(&self.pool)
            .await?;
        Ok(())
    }
    pub async fn forget_git_host_key(&self, host: &str) -> DbResult<()> {
        let r = sqlx::query("DELETE FROM git_host_keys WHERE host = $1")
            .bind(host)
            .execute(&self.pool)
            .await?;
        if r.rows_affected() == 0 {
            return Err(DbError::NotFound("pinned host key"));
        }
        Ok(())
    }
}
