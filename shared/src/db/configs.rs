//! Release configs: how one app is released to one environment. The spec is stored as JSON
//! (every value in it already parsed into domain types); the repository credential is sealed
//! in its own column and never part of the spec.
use super::{Db, DbError, DbResult, conflict, now};
use crate::custom::{Action, ConfigKind};
use crate::domain::{
    AppId, ConfigId, DeltaMode, EnvironmentId, FailurePolicy, FilterMode, HostId, RemotePath,
    RepoUrl,
};
use serde::{Deserialize, Serialize};

/// How the worker authenticates to the Git repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum RepoAuthSpec {
    /// Public or local repository.
    #[default]
    None,
    /// SSH with the platform key (add `GET /api/ssh-key` as a deploy key).
    PlatformKey,
    /// HTTPS with a user name and a token; the token is sealed separately.
    Token { username: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Hooks {
    #[serde(default)]
    pub before_checkout: String,
    #[serde(default)]
    pub after_checkout: String,
    #[serde(default)]
    pub before_release: String,
    #[serde(default)]
    pub after_release: String,
    /// On the release server when a release fails or is cancelled (issue 12).
    #[serde(default)]
    pub on_failure: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Variable {
    pub name: String,
    pub value: String,
}

/// Everything a regular release config says, validated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigSpec {
    pub repo_url: RepoUrl,
    pub repo_auth: RepoAuthSpec,
    pub review_enabled: bool,
    // Configs stored before notice channels existed also hold `"notice": {"channel", "target"}`
    // (the seed's unused selector): serde skips it. Notice channels are sealed in their own
    // column (`db::notices`).
    pub host_ids: Vec<HostId>,
    pub deploy_path: RemotePath,
    pub versions_path: RemotePath,
    pub keep_versions: u32,
    pub filter_mode: FilterMode,
    pub filter: String,
    pub hooks: Hooks,
    pub variables: Vec<Variable>,
    /// Hosts worked on at once; `None` = the default, 16 (`worker::fleet::DEFAULT_HOSTS_IN_FLIGHT`).
    pub parallelism: Option<u32>,
    pub failure_policy: FailurePolicy,
    pub hook_timeout_secs: u64,
    /// How redeploys reuse the live version's unchanged files (configs stored before it
    /// existed read as the default, hard links).
    #[serde(default)]
    pub delta: DeltaMode,
    /// `custom`: run `actions` instead of packaging the tree (configs stored before custom
    /// releases existed are `regular`).
    #[serde(default)]
    pub kind: ConfigKind,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<Action>,
    /// Waves, the health check after each, the pause between them (absent in configs stored
    /// before issue 12: one wave, no check).
    #[serde(default)]
    pub rollout: crate::waves::Rollout,
}

#[derive(Debug, Clone)]
pub struct ReleaseConfig {
    pub id: ConfigId,
    pub app_id: AppId,
    pub environment_id: EnvironmentId,
    pub spec: ConfigSpec,
    pub has_repo_secret: bool,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: ConfigId,
    app_id: AppId,
    environment_id: EnvironmentId,
    spec: String,
    #[sqlx(try_from = "i64")]
    has_secret: super::Flag,
    created_at: String,
    updated_at: String,
}

impl TryFrom<Row> for ReleaseConfig {
    type Error = DbError;
    fn try_from(r: Row) -> DbResult<Self> {
        Ok(Self {
            id: r.id,
            app_id: r.app_id,
            environment_id: r.environment_id,
            spec: serde_json::from_str(&r.spec)
                .map_err(|e| DbError::Corrupt(format!("config {}: {e}", r.id)))?,
            has_repo_secret: r.has_secret.0,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

macro_rules! cols {
    () => {
        "id, app_id, environment_id, spec, CAST(CASE WHEN repo_secret IS NULL THEN 0 ELSE 1 END AS BIGINT) AS has_secret, created_at, updated_at"
    };
}

/// What to do with the stored repository secret on update.
pub enum SecretChange {
    Keep,
    Set(Vec<u8>),
    Clear,
}

impl Db {
    pub async fn list_configs(
        &self,
        app_id: Option<AppId>,
        environment_id: Option<EnvironmentId>,
    ) -> DbResult<Vec<ReleaseConfig>> {
        let rows: Vec<Row> = sqlx::query_as(concat!("SELECT ", cols!(), " FROM release_configs WHERE (CAST($1 AS BIGINT) IS NULL OR app_id = $1) AND (CAST($2 AS BIGINT) IS NULL OR environment_id = $2) ORDER BY id"))
        .bind(app_id)
        .bind(environment_id)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(TryInto::try_into).collect()
    }
    pub async fn get_config(&self, id: ConfigId) -> DbResult<ReleaseConfig> {
        let row: Row = sqlx::query_as(concat!(
            "SELECT ",
            cols!(),
            " FROM release_configs WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(DbError::NotFound("release config"))?;
        row.try_into()
    }
    /// The sealed repository credential, if any.
    pub async fn config_secret(&self, id: ConfigId) -> DbResult<Option<Vec<u8>>> {
        Ok(
            sqlx::query_scalar("SELECT repo_secret FROM release_configs WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?
                .flatten(),
        )
    }
    pub async fn create_config(
        &self,
        app_id: AppId,
        environment_id: EnvironmentId,
        spec: &ConfigSpec,
        secret: Option<Vec<u8>>,
    ) -> DbResult<ReleaseConfig> {
        let t = now();
        let r: ConfigId = sqlx::query_scalar(
            "INSERT INTO release_configs (app_id, environment_id, spec, repo_secret, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(app_id)
        .bind(environment_id)
        .bind(serde_json::to_string(spec).unwrap_or_default())
        .bind(secret)
        .bind(&t)
        .bind(&t)
        .fetch_one(&self.pool)
        .await
        .map_err(conflict("this app already has a release config for this environment"))?;
        self.get_config(r).await
    }
    pub async fn update_config(
        &self,
        id: ConfigId,
        spec: &ConfigSpec,
        secret: SecretChange,
    ) -> DbResult<ReleaseConfig> {
        let spec_json = serde_json::to_string(spec).unwrap_or_default();
        let r = match secret {
            SecretChange::Keep => sqlx::query("UPDATE release_configs SET spec = $1, updated_at = $2 WHERE id = $3")
                .bind(spec_json)
                .bind(now())
                .bind(id),
            SecretChange::Set(s) => sqlx::query("UPDATE release_configs SET spec = $1, repo_secret = $2, updated_at = $3 WHERE id = $4")
                .bind(spec_json)
                .bind(s)
                .bind(now())
                .bind(id),
            SecretChange::Clear => sqlx::query("UPDATE release_configs SET spec = $1, repo_secret = NULL, updated_at = $2 WHERE id = $3")
                .bind(spec_json)
                .bind(now())
                .bind(id),
        }
        .execute(&self.pool)
        .await?;
        if r.rows_affected() == 0 {
            return Err(DbError::NotFound("release config"));
        }
        self.get_config(id).await
    }
    pub async fn delete_config(&self, id: ConfigId) -> DbResult<()> {
        let r = sqlx::query("DELETE FROM release_configs WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(conflict(""))?;
        if r.rows_affected() == 0 {
            return Err(DbError::NotFound("release config"));
        }
        Ok(())
    }
}
