//! Git webhooks (`config_webhooks`, `webhook_deliveries`): at most one per release config. The
//! URL token is stored hashed, the signing secret sealed; every delivery is recorded.
use super::{Db, DbError, DbResult, conflict, now};
use crate::domain::{ConfigId, ReleaseId, UserId};
use serde::{Deserialize, Serialize};

/// Where the hook comes from, which says how it is signed and what its payload looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(poem_openapi::Enum))]
#[cfg_attr(feature = "openapi", oai(rename_all = "snake_case"))]
pub enum Provider {
    /// `X-Hub-Signature-256`: HMAC-SHA256 of the body with the secret; `X-GitHub-Delivery`.
    Github,
    /// `X-Gitlab-Token`: the secret itself; `X-Gitlab-Event-UUID` (or `Idempotency-Key`).
    Gitlab,
    /// `X-Gitee-Token`: the secret itself (password mode) or base64(HMAC-SHA256 of
    /// `timestamp + "\n" + secret`) with `X-Gitee-Timestamp` (signature mode, within 1 hour).
    Gitee,
    /// Hippo's own form: `{"branch"|"tag": name, "commit": sha}` signed like GitHub's, in
    /// `X-Hippo-Signature-256`; `X-Hippo-Delivery` names the delivery.
    Generic,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Github => "github",
            Self::Gitlab => "gitlab",
            Self::Gitee => "gitee",
            Self::Generic => "generic",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "github" => Self::Github,
            "gitlab" => Self::Gitlab,
            "gitee" => Self::Gitee,
            "generic" => Self::Generic,
            _ => return None,
        })
    }
}

/// What a hook releases: pushes to a branch, or new tags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(poem_openapi::Enum))]
#[cfg_attr(feature = "openapi", oai(rename_all = "snake_case"))]
pub enum RuleKind {
    /// Pushes to a branch whose name matches the pattern.
    Branch,
    /// Tags whose name matches the pattern.
    Tag,
}

impl RuleKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Branch => "branch",
            Self::Tag => "tag",
        }
    }
}

/// What became of a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(poem_openapi::Enum))]
#[cfg_attr(feature = "openapi", oai(rename_all = "snake_case"))]
pub enum Outcome {
    /// A release was requested (`release_id`).
    Accepted,
    /// Nothing to do (`reason`: another branch, a duplicate, a deleted branch, a ping, …).
    Ignored,
    /// Refused: a bad signature (401) or a payload that could not be read.
    Refused,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::Ignored => "ignored",
            Self::Refused => "refused",
        }
    }
    fn parse(s: &str) -> Self {
        match s {
            "accepted" => Self::Accepted,
            "ignored" => Self::Ignored,
            _ => Self::Refused,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Webhook {
    pub config_id: ConfigId,
    pub provider: Provider,
    pub rule_kind: RuleKind,
    pub pattern: String,
    pub auto_run: bool,
    /// Sealed with the master key.
    pub secret: Vec<u8>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(sqlx::FromRow)]
struct Row {
    config_id: ConfigId,
    provider: String,
    rule_kind: String,
    pattern: String,
    #[sqlx(try_from = "i64")]
    auto_run: super::Flag,
    secret: Vec<u8>,
    created_at: String,
    updated_at: String,
}

impl TryFrom<Row> for Webhook {
    type Error = DbError;
    fn try_from(r: Row) -> DbResult<Self> {
        Ok(Self {
            config_id: r.config_id,
            provider: Provider::parse(&r.provider)
                .ok_or_else(|| DbError::Corrupt(format!("webhook provider {}", r.provider)))?,
            rule_kind: if r.rule_kind == "tag" {
                RuleKind::Tag
            } else {
                RuleKind::Branch
            },
            pattern: r.pattern,
            auto_run: r.auto_run.0,
            secret: r.secret,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

/// The settings of a hook (what `PUT` sets).
pub struct WebhookSettings<'a> {
    pub provider: Provider,
    pub rule_kind: RuleKind,
    pub pattern: &'a str,
    pub auto_run: bool,
}

#[derive(Debug, Clone)]
pub struct Delivery {
    pub id: i64,
    pub delivery_id: String,
    pub provider: String,
    pub event: String,
    pub outcome: Outcome,
    pub reason: String,
    pub ref_name: String,
    pub commit_id: String,
    pub release_id: Option<ReleaseId>,
    pub received_at: String,
}

#[derive(sqlx::FromRow)]
struct DeliveryRow {
    id: i64,
    delivery_id: String,
    provider: String,
    event: String,
    outcome: String,
    reason: String,
    ref_name: String,
    commit_id: String,
    release_id: Option<ReleaseId>,
    received_at: String,
}

/// A delivery as received, before its outcome is known.
pub struct NewDelivery<'a> {
    pub delivery_id: &'a str,
    pub provider: Provider,
    pub event: &'a str,
    pub ref_name: &'a str,
    pub commit_id: &'a str,
}

/// Deliveries kept per config (older ones are deleted as new ones arrive).
pub const DELIVERIES_KEPT: i64 = 200;

macro_rules! cols {
    () => {
        "config_id, provider, rule_kind, pattern, auto_run, secret, created_at, updated_at"
    };
}

impl Db {
    pub async fn get_webhook(&self, config_id: ConfigId) -> DbResult<Webhook> {
        let row: Row = sqlx::query_as(concat!(
            "SELECT ",
            cols!(),
            " FROM config_webhooks WHERE config_id = $1"
        ))
        .bind(config_id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(DbError::NotFound("webhook"))?;
        row.try_into()
    }
    pub async fn webhook_by_token(&self, token_hash: &str) -> DbResult<Webhook> {
        let row: Row = sqlx::query_as(concat!(
            "SELECT ",
            cols!(),
            " FROM config_webhooks WHERE token_hash = $1"
        ))
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(DbError::NotFound("webhook"))?;
        row.try_into()
    }
    /// Creates the hook with its token and secret.
    pub async fn create_webhook(
        &self,
        config_id: ConfigId,
        s: &WebhookSettings<'_>,
        token_hash: &str,
        sealed_secret: Vec<u8>,
    ) -> DbResult<Webhook> {
        let t = now();
        sqlx::query("INSERT INTO config_webhooks (config_id, token_hash, secret, provider, rule_kind, pattern, auto_run, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)")
            .bind(config_id)
            .bind(token_hash)
            .bind(sealed_secret)
            .bind(s.provider.as_str())
            .bind(s.rule_kind.as_str())
            .bind(s.pattern)
            .bind(i64::from(s.auto_run))
            .bind(&t)
            .bind(&t)
            .execute(&self.pool)
            .await
            .map_err(conflict("this config already has a webhook"))?;
        self.get_webhook(config_id).await
    }
    pub async fn update_webhook(
        &self,
        config_id: ConfigId,
        s: &WebhookSettings<'_>,
    ) -> DbResult<Webhook> {
        let r = sqlx::query("UPDATE config_webhooks SET provider = $1, rule_kind = $2, pattern = $3, auto_run = $4, updated_at = $5 WHERE config_id = $6")
            .bind(s.provider.as_str())
            .bind(s.rule_kind.as_str())
            .bind(s.pattern)
            .bind(i64::from(s.auto_run))
            .bind(now())
            .bind(config_id)
            .execute(&self.pool)
            .await?;
        if r.rows_affected() == 0 {
            return Err(DbError::NotFound("webhook"));
        }
        self.get_webhook(config_id).await
    }
    /// A new token and secret; the old ones stop working at once.
    pub async fn rotate_webhook(
        &self,
        config_id: ConfigId,
        token_hash: &str,
        sealed_secret: Vec<u8>,
    ) -> DbResult<Webhook> {
        let r = sqlx::query("UPDATE config_webhooks SET token_hash = $1, secret = $2, updated_at = $3 WHERE config_id = $4")
            .bind(token_hash)
            .bind(sealed_secret)
            .bind(now())
            .bind(config_id)
            .execute(&self.pool)
            .await?;
        if r.rows_affected() == 0 {
            return Err(DbError::NotFound("webhook"));
        }
        self.get_webhook(config_id).await
    }
    pub async fn delete_webhook(&self, config_id: ConfigId) -> DbResult<()> {
        let r = sqlx::query("DELETE FROM config_webhooks WHERE config_id = $1")
            .bind(config_id)
            .execute(&self.pool)
            .await?;
        if r.rows_affected() == 0 {
            return Err(DbError::NotFound("webhook"));
        }
        sqlx::query("DELETE FROM webhook_deliveries WHERE config_id = $1")
            .bind(config_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Records a delivery with its outcome; its row id. An `accepted` delivery whose id was
    /// already accepted for this config is a `Conflict` (the caller records it as a duplicate).
    pub async fn record_delivery(
        &self,
        config_id: ConfigId,
        d: &NewDelivery<'_>,
        outcome: Outcome,
        reason: &str,
    ) -> DbResult<i64> {
        let id: i64 = sqlx::query_scalar("INSERT INTO webhook_deliveries (config_id, delivery_id, provider, event, outcome, reason, ref_name, commit_id, received_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id")
            .bind(config_id)
            .bind(d.delivery_id)
            .bind(d.provider.as_str())
            .bind(d.event)
            .bind(outcome.as_str())
            .bind(reason)
            .bind(d.ref_name)
            .bind(d.commit_id)
            .bind(now())
            .fetch_one(&self.pool)
            .await
            .map_err(conflict("this delivery was already accepted"))?;
        sqlx::query("DELETE FROM webhook_deliveries WHERE config_id = $1 AND id <= $2")
            .bind(config_id)
            .bind(id - DELIVERIES_KEPT)
            .execute(&self.pool)
            .await?;
        Ok(id)
    }
    /// Sets what became of a delivery once known (the release it requested, or why not).
    pub async fn finish_delivery(
        &self,
        id: i64,
        outcome: Outcome,
        reason: &str,
        release_id: Option<ReleaseId>,
    ) -> DbResult<()> {
        sqlx::query(
            "UPDATE webhook_deliveries SET outcome = $1, reason = $2, release_id = $3 WHERE id = $4",
        )
        .bind(outcome.as_str())
        .bind(reason)
        .bind(release_id)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
    /// The config's deliveries, newest first.
    pub async fn deliveries(&self, config_id: ConfigId, limit: i64) -> DbResult<Vec<Delivery>> {
        let rows: Vec<DeliveryRow> = sqlx::query_as("SELECT id, delivery_id, provider, event, outcome, reason, ref_name, commit_id, release_id, received_at FROM webhook_deliveries WHERE config_id = $1 ORDER BY id DESC LIMIT $2")
            .bind(config_id)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| Delivery {
                id: r.id,
                delivery_id: r.delivery_id,
                provider: r.provider,
                event: r.event,
                outcome: Outcome::parse(&r.outcome),
                reason: r.reason,
                ref_name: r.ref_name,
                commit_id: r.commit_id,
                release_id: r.release_id,
                received_at: r.received_at,
            })
            .collect())
    }
    /// The name of the user releases requested by webhooks are requested by; no person may
    /// take it (`POST /api/users` refuses it).
    pub const WEBHOOK_USER: &'static str = "webhook";

    /// The user releases requested by webhooks are requested by: `webhook`, disabled, with no
    /// usable password (made on first use).
    pub async fn webhook_user(&self) -> DbResult<UserId> {
        sqlx::query("INSERT INTO users (username, password_hash, is_admin, disabled, created_at) VALUES ('webhook', '!', 0, 1, $1) ON CONFLICT (username) DO NOTHING")
            .bind(now())
            .execute(&self.pool)
            .await?;
        Ok(
            sqlx::query_scalar("SELECT id FROM users WHERE username = 'webhook'")
                .fetch_one(&self.pool)
                .await?,
        )
    }
}
