//! Leases: a named lock with an expiry, renewed by its holder, with a fencing token that grows
//! on every acquisition. A holder that dies simply stops renewing; nobody cleans up after it.
use super::{Db, DbResult};

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl Db {
    /// Takes `name` for `holder` if it is free or expired; returns the fencing token.
    pub async fn try_acquire_lease(
        &self,
        name: &str,
        holder: &str,
        ttl_ms: i64,
    ) -> DbResult<Option<i64>> {
        let now = now_ms();
        let row: Option<(i64,)> = sqlx::query_as(
            "INSERT INTO leases (name, holder, token, expires_at) VALUES ($1, $2, 1, $3)
             ON CONFLICT(name) DO UPDATE SET holder = excluded.holder, token = leases.token + 1,
                 expires_at = excluded.expires_at
             WHERE leases.expires_at < $4 OR leases.holder = excluded.holder
             RETURNING token",
        )
        .bind(name)
        .bind(holder)
        .bind(now + ttl_ms)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| r.0))
    }

    /// Extends the lease if `holder` still has it with `token`; false means it was lost.
    pub async fn renew_lease(
        &self,
        name: &str,
        holder: &str,
        token: i64,
        ttl_ms: i64,
    ) -> DbResult<bool> {
        let r = sqlx::query("UPDATE leases SET expires_at = $1 WHERE name = $2 AND holder = $3 AND token = $4 AND expires_at >= $5")
            .bind(now_ms() + ttl_ms)
            .bind(name)
            .bind(holder)
            .bind(token)
            .bind(now_ms())
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() == 1)
    }

    /// True while `holder` still owns the lease with `token` (the fencing check before a switch).
    pub async fn holds_lease(&self, name: &str, holder: &str, token: i64) -> DbResult<bool> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM leases WHERE name = $1 AND holder = $2 AND token = $3 AND expires_at >= $4",
        )
        .bind(name)
        .bind(holder)
        .bind(token)
        .bind(now_ms())
        .fetch_one(&self.pool)
        .await?;
        Ok(n == 1)
    }

    pub async fn release_lease(&self, name: &str, holder: &str, token: i64) -> DbResult<()> {
        sqlx::query(
            "UPDATE leases SET expires_at = 0 WHERE name = $1 AND holder = $2 AND token = $3",
        )
        .bind(name)
        .bind(holder)
        .bind(token)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

impl Db {
    /// Expires every lease. Only for a process that knows it is the sole worker (standalone
    /// start-up): whatever held a lease before is gone.
    pub async fn expire_all_leases(&self) -> DbResult<()> {
        sqlx::query("UPDATE leases SET expires_at = 0")
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
