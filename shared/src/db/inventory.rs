//! Environments, hosts and apps.
use super::{Db, DbError, DbResult, conflict, now};
use crate::domain::{AppId, EnvironmentId, HostAddr, HostId, Name, SshUser, Tag};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Environment {
    pub id: EnvironmentId,
    pub name: String,
    pub tag: String,
    pub description: String,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone)]
pub struct EnvironmentInput {
    pub name: Name,
    pub tag: Tag,
    pub description: String,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct App {
    pub id: AppId,
    pub name: String,
    pub tag: String,
    pub description: String,
    pub created_at: String,
    pub updated_at: String,
}

pub type AppInput = EnvironmentInput;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Host {
    pub id: HostId,
    pub environment_id: EnvironmentId,
    pub name: String,
    pub addr: String,
    pub port: i64,
    pub username: String,
    pub category: String,
    pub description: String,
    pub host_key_type: Option<String>,
    pub host_key: Option<String>,
    /// When the host was last checked ([`HostCheck`] in `check_result`, JSON).
    pub checked_at: Option<String>,
    pub check_result: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl Host {
    /// The stored result of the last check (`None` before the first, or if unreadable).
    pub fn last_check(&self) -> Option<HostCheck> {
        serde_json::from_str(self.check_result.as_deref()?).ok()
    }
}

/// What a connectivity check found (`worker::hostcheck`), stored on the host as JSON.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HostCheck {
    /// Reachable, the host key as pinned, key login works and every path is writable.
    pub ok: bool,
    /// Why not, as a stable code: `unreachable`, `timeout`, `handshake`, `host_key_changed`,
    /// `auth`, `command`, `path_not_writable`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The same for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Round trip of one command (`id -un`) once logged in, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
    /// The key the host presented (SHA256 fingerprint).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_key_fingerprint: Option<String>,
    /// The key was pinned by this check (first contact).
    #[serde(default)]
    pub pinned: bool,
    /// Who Hippo is on the host (`id -un`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_user: Option<String>,
    /// The deploy and versions paths of the release configs that use this host.
    #[serde(default)]
    pub paths: Vec<PathCheck>,
    /// How long the whole check took.
    pub duration_ms: u64,
}

/// Whether a config's path on a host can be written.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PathCheck {
    pub config_id: crate::domain::ConfigId,
    /// `deploy` (its parent directory must be writable: the link is replaced there) or `versions`.
    pub kind: String,
    pub path: String,
    pub writable: bool,
}

#[derive(Debug, Clone)]
pub struct HostInput {
    pub environment_id: EnvironmentId,
    pub name: Name,
    pub addr: HostAddr,
    pub port: u16,
    pub username: SshUser,
    pub category: String,
    pub description: String,
}

macro_rules! env_cols {
    () => {
        "id, name, tag, description, created_at, updated_at"
    };
}
macro_rules! host_cols {
    () => {
        "id, environment_id, name, addr, port, username, category, description, host_key_type, host_key, checked_at, check_result, created_at, updated_at"
    };
}

impl Db {
    pub async fn list_environments(&self) -> DbResult<Vec<Environment>> {
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            env_cols!(),
            " FROM environments ORDER BY id"
        ))
        .fetch_all(&self.pool)
        .await?)
    }
    pub async fn get_environment(&self, id: EnvironmentId) -> DbResult<Environment> {
        sqlx::query_as(concat!(
            "SELECT ",
            env_cols!(),
            " FROM environments WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(DbError::NotFound("environment"))
    }
    pub async fn create_environment(&self, i: &EnvironmentInput) -> DbResult<Environment> {
        let t = now();
        let r: EnvironmentId = sqlx::query_scalar("INSERT INTO environments (name, tag, description, created_at, updated_at) VALUES ($1, $2, $3, $4, $5) RETURNING id")
            .bind(i.name.as_str())
            .bind(i.tag.as_str())
            .bind(&i.description)
            .bind(&t)
            .bind(&t)
            .fetch_one(&self.pool)
            .await
            .map_err(conflict("an environment with this tag exists"))?;
        self.get_environment(r).await
    }
    pub async fn update_environment(
        &self,
        id: EnvironmentId,
        i: &EnvironmentInput,
    ) -> DbResult<Environment> {
        let r = sqlx::query("UPDATE environments SET name = $1, tag = $2, description = $3, updated_at = $4 WHERE id = $5")
            .bind(i.name.as_str())
            .bind(i.tag.as_str())
            .bind(&i.description)
            .bind(now())
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(conflict("an environment with this tag exists"))?;
        if r.rows_affected() == 0 {
            return Err(DbError::NotFound("environment"));
        }
        self.get_environment(id).await
    }
    pub async fn delete_environment(&self, id: EnvironmentId) -> DbResult<()> {
        let r = sqlx::query("DELETE FROM environments WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(conflict(""))?;
        if r.rows_affected() == 0 {
            return Err(DbError::NotFound("environment"));
        }
        Ok(())
    }

    pub async fn list_apps(&self) -> DbResult<Vec<App>> {
        Ok(
            sqlx::query_as(concat!("SELECT ", env_cols!(), " FROM apps ORDER BY id"))
                .fetch_all(&self.pool)
                .await?,
        )
    }
    pub async fn get_app(&self, id: AppId) -> DbResult<App> {
        sqlx::query_as(concat!("SELECT ", env_cols!(), " FROM apps WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(DbError::NotFound("app"))
    }
    pub async fn create_app(&self, i: &AppInput) -> DbResult<App> {
        let t = now();
        let r: AppId = sqlx::query_scalar("INSERT INTO apps (name, tag, description, created_at, updated_at) VALUES ($1, $2, $3, $4, $5) RETURNING id")
            .bind(i.name.as_str())
            .bind(i.tag.as_str())
            .bind(&i.description)
            .bind(&t)
            .bind(&t)
            .fetch_one(&self.pool)
            .await
            .map_err(conflict("an app with this tag exists"))?;
        self.get_app(r).await
    }
    pub async fn update_app(&self, id: AppId, i: &AppInput) -> DbResult<App> {
        let r = sqlx::query(
            "UPDATE apps SET name = $1, tag = $2, description = $3, updated_at = $4 WHERE id = $5",
        )
        .bind(i.name.as_str())
        .bind(i.tag.as_str())
        .bind(&i.description)
        .bind(now())
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(conflict("an app with this tag exists"))?;
        if r.rows_affected() == 0 {
            return Err(DbError::NotFound("app"));
        }
        self.get_app(id).await
    }
    pub async fn delete_app(&self, id: AppId) -> DbResult<()> {
        let r = sqlx::query("DELETE FROM apps WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(conflict(""))?;
        if r.rows_affected() == 0 {
            return Err(DbError::NotFound("app"));
        }
        Ok(())
    }

    pub async fn list_hosts(
        &self,
        environment_id: Option<EnvironmentId>,
        category: Option<&str>,
    ) -> DbResult<Vec<Host>> {
        Ok(sqlx::query_as(concat!("SELECT ", host_cols!(), " FROM hosts WHERE (CAST($1 AS BIGINT) IS NULL OR environment_id = $1) AND (CAST($2 AS TEXT) IS NULL OR category = $2) ORDER BY id"))
        .bind(environment_id)
        .bind(category)
        .fetch_all(&self.pool)
        .await?)
    }
    pub async fn get_host(&self, id: HostId) -> DbResult<Host> {
        sqlx::query_as(concat!(
            "SELECT ",
            host_cols!(),
            " FROM hosts WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(DbError::NotFound("host"))
    }
    pub async fn create_host(&self, i: &HostInput) -> DbResult<Host> {
        let mut tx = self.pool.begin().await?;
        let r = insert_host(&mut tx, i).await?;
        tx.commit().await?;
        self.get_host(r).await
    }
    /// Creates all the hosts or none (one transaction): the first conflict names its index.
    pub async fn create_hosts(&self, all: &[HostInput]) -> Result<Vec<HostId>, (usize, DbError)> {
        let mut tx = self.pool.begin().await.map_err(|e| (0, e.into()))?;
        let mut ids = Vec::with_capacity(all.len());
        for (n, i) in all.iter().enumerate() {
            ids.push(insert_host(&mut tx, i).await.map_err(|e| (n, e))?);
        }
        tx.commit().await.map_err(|e| (0, e.into()))?;
        Ok(ids)
    }
    /// Stores the result of a check.
    pub async fn record_host_check(&self, id: HostId, at: &str, check: &HostCheck) -> DbResult<()> {
        let json = serde_json::to_string(check).map_err(|e| DbError::Corrupt(e.to_string()))?;
        sqlx::query("UPDATE hosts SET checked_at = $1, check_result = $2 WHERE id = $3")
            .bind(at)
            .bind(json)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
    /// Updates a host. A changed address or port forgets the pinned host key and the last check.
    pub async fn update_host(&self, id: HostId, i: &HostInput) -> DbResult<Host> {
        let r = sqlx::query(
            "UPDATE hosts SET environment_id = $1, name = $2,
                host_key_type = CASE WHEN addr = $3 AND port = $4 THEN host_key_type END,
                host_key = CASE WHEN addr = $5 AND port = $6 THEN host_key END,
                addr = $7, port = $8, username = $9, category = $10, description = $11, updated_at = $12,
                checked_at = CASE WHEN addr = $3 AND port = $4 THEN checked_at END,
                check_result = CASE WHEN addr = $3 AND port = $4 THEN check_result END WHERE id = $13",
        )
        .bind(i.environment_id)
        .bind(i.name.as_str())
        .bind(i.addr.as_str())
        .bind(i64::from(i.port))
        .bind(i.addr.as_str())
        .bind(i64::from(i.port))
        .bind(i.addr.as_str())
        .bind(i64::from(i.port))
        .bind(i.username.as_str())
        .bind(&i.category)
        .bind(&i.description)
        .bind(now())
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(conflict("a host with this name exists in the environment"))?;
        if r.rows_affected() == 0 {
            return Err(DbError::NotFound("host"));
        }
        self.get_host(id).await
    }
    pub async fn delete_host(&self, id: HostId) -> DbResult<()> {
        let r = sqlx::query("DELETE FROM hosts WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(conflict(""))?;
        if r.rows_affected() == 0 {
            return Err(DbError::NotFound("host"));
        }
        Ok(())
    }
    /// Pins a host key seen on first contact. Never overwrites a pinned key.
    pub async fn pin_host_key(&self, id: HostId, key_type: &str, key: &str) -> DbResult<()> {
        sqlx::query(
            "UPDATE hosts SET host_key_type = $1, host_key = $2 WHERE id = $3 AND host_key IS NULL",
        )
        .bind(key_type)
        .bind(key)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
    /// Sets or clears the pinned host key (an admin accepting a new key).
    pub async fn set_host_key(&self, id: HostId, key: Option<(&str, &str)>) -> DbResult<()> {
        sqlx::query(
            "UPDATE hosts SET host_key_type = $1, host_key = $2, updated_at = $3 WHERE id = $4",
        )
        .bind(key.map(|k| k.0))
        .bind(key.map(|k| k.1))
        .bind(now())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

async fn insert_host(tx: &mut sqlx::Transaction<'_, sqlx::Any>, i: &HostInput) -> DbResult<HostId> {
    let t = now();
    sqlx::query_scalar(
        "INSERT INTO hosts (environment_id, name, addr, port, username, category, description, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
    )
    .bind(i.environment_id)
    .bind(i.name.as_str())
    .bind(i.addr.as_str())
    .bind(i64::from(i.port))
    .bind(i.username.as_str())
    .bind(&i.category)
    .bind(&i.description)
    .bind(&t)
    .bind(&t)
    .fetch_one(&mut **tx)
    .await
    .map_err(conflict("a host with this name exists in the environment"))
}
