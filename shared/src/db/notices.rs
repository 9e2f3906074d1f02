//! Notice channels of a config (sealed: they hold robot URLs, passwords, keys) and the delivery
//! attempts of each release's notices.
use super::{Db, DbResult};
use crate::domain::{ConfigId, NoticeAttemptId, ReleaseId};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct NoticeAttempt {
    pub id: NoticeAttemptId,
    pub release_id: ReleaseId,
    pub notice: String,
    pub channel: String,
    pub channel_index: i64,
    pub attempt: i64,
    pub at: String,
    pub duration_ms: i64,
    #[sqlx(try_from = "i64")]
    pub ok_flag: super::Flag,
    pub error: Option<String>,
    /// What the receiver answered (administrators only).
    pub detail: Option<String>,
    pub http_status: Option<i64>,
}

/// One attempt to record.
#[derive(Debug, Clone)]
pub struct NewAttempt<'a> {
    pub release_id: ReleaseId,
    pub notice: &'a str,
    pub channel: &'a str,
    pub channel_index: i64,
    pub attempt: i64,
    pub at: &'a str,
    pub duration_ms: i64,
    pub ok: bool,
    pub error: Option<&'a str>,
    pub detail: Option<&'a str>,
    pub http_status: Option<i64>,
}

impl Db {
    /// The sealed channel list of a config, if any.
    pub async fn config_notice_secret(&self, config_id: ConfigId) -> DbResult<Option<Vec<u8>>> {
        Ok(sqlx::query_scalar::<_, Option<Vec<u8>>>(
            "SELECT notice_secret FROM release_configs WHERE id = $1",
        )
        .bind(config_id)
        .fetch_optional(&self.pool)
        .await?
        .flatten())
    }

    pub async fn set_config_notice_secret(
        &self,
        config_id: ConfigId,
        sealed: Option<Vec<u8>>,
    ) -> DbResult<()> {
        sqlx::query("UPDATE release_configs SET notice_secret = $1 WHERE id = $2")
            .bind(sealed)
            .bind(config_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn record_notice_attempt(&self, a: &NewAttempt<'_>) -> DbResult<()> {
        sqlx::query(
            "INSERT INTO notice_attempts (release_id, notice, channel, channel_index, attempt, at, duration_ms, ok, error, http_status, detail)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(a.release_id)
        .bind(a.notice)
        .bind(a.channel)
        .bind(a.channel_index)
        .bind(a.attempt)
        .bind(a.at)
        .bind(a.duration_ms)
        .bind(i64::from(a.ok))
        .bind(a.error)
        .bind(a.http_status)
        .bind(a.detail)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn notice_attempts(&self, release_id: ReleaseId) -> DbResult<Vec<NoticeAttempt>> {
        Ok(sqlx::query_as(
            "SELECT id, release_id, notice, channel, channel_index, attempt, at, duration_ms, ok AS ok_flag, error, detail, http_status
             FROM notice_attempts WHERE release_id = $1 ORDER BY id",
        )
        .bind(release_id)
        .fetch_all(&self.pool)
        .await?)
    }
}
