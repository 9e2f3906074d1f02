//! Users, roles (named permission sets), role bindings scoped to environments and apps, and
//! API tokens.
use super::{Db, DbError, DbResult, now};
use crate::domain::{AppId, BindingId, EnvironmentId, Grant, Permission, RoleId, TokenId, UserId};

#[derive(Debug, Clone)]
pub struct Role {
    pub id: RoleId,
    pub name: String,
    pub permissions: Vec<Permission>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Binding {
    pub id: BindingId,
    pub user_id: UserId,
    pub role_id: RoleId,
    pub environment_id: Option<EnvironmentId>,
    pub app_id: Option<AppId>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserRow {
    pub id: UserId,
    pub username: String,
    #[sqlx(try_from = "i64")]
    pub is_admin: super::Flag,
    #[sqlx(try_from = "i64")]
    pub disabled: super::Flag,
    pub created_at: String,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ApiToken {
    pub id: TokenId,
    pub name: String,
    pub expires_at: Option<String>,
    pub created_at: String,
}

fn parse_permissions(id: RoleId, json: &str) -> DbResult<Vec<Permission>> {
    serde_json::from_str(json).map_err(|e| DbError::Corrupt(format!("role {id} permissions: {e}")))
}

impl Db {
    pub async fn list_users(&self) -> DbResult<Vec<UserRow>> {
        Ok(sqlx::query_as(
            "SELECT id, username, is_admin, disabled, created_at FROM users ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn get_user(&self, id: UserId) -> DbResult<UserRow> {
        sqlx::query_as(
            "SELECT id, username, is_admin, disabled, created_at FROM users WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(DbError::NotFound("user"))
    }

    /// Changes what is given; a disabled user's tokens stop working at once.
    pub async fn update_user(
        &self,
        id: UserId,
        password_hash: Option<&str>,
        is_admin: Option<bool>,
        disabled: Option<bool>,
    ) -> DbResult<()> {
        let r = sqlx::query(
            "UPDATE users SET password_hash = COALESCE($1, password_hash),
                is_admin = COALESCE($2, is_admin), disabled = COALESCE($3, disabled) WHERE id = $4",
        )
        .bind(password_hash)
        .bind(is_admin.map(i64::from))
        .bind(disabled.map(i64::from))
        .bind(id)
        .execute(&self.pool)
        .await?;
        if r.rows_affected() == 0 {
            return Err(DbError::NotFound("user"));
        }
        // Disabled, or a new password (a reset after a leak): every session and API token ends.
        if disabled == Some(true) || password_hash.is_some() {
            sqlx::query("DELETE FROM tokens WHERE user_id = $1")
                .bind(id)
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }

    pub async fn create_role(&self, name: &str, permissions: &[Permission]) -> DbResult<RoleId> {
        let json =
            serde_json::to_string(permissions).map_err(|e| DbError::Corrupt(e.to_string()))?;
        sqlx::query_scalar(
            "INSERT INTO roles (name, permissions, created_at) VALUES ($1, $2, $3) RETURNING id",
        )
        .bind(name)
        .bind(json)
        .bind(now())
        .fetch_one(&self.pool)
        .await
        .map_err(super::conflict("a role with this name exists"))
    }

    pub async fn list_roles(&self) -> DbResult<Vec<Role>> {
        let rows: Vec<(RoleId, String, String)> =
            sqlx::query_as("SELECT id, name, permissions FROM roles ORDER BY id")
                .fetch_all(&self.pool)
                .await?;
        rows.into_iter()
            .map(|(id, name, p)| {
                Ok(Role {
                    id,
                    name,
                    permissions: parse_permissions(id, &p)?,
                })
            })
            .collect()
    }

    pub async fn get_role(&self, id: RoleId) -> DbResult<Role> {
        let (id, name, p): (RoleId, String, String) =
            sqlx::query_as("SELECT id, name, permissions FROM roles WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?
                .ok_or(DbError::NotFound("role"))?;
        Ok(Role {
            id,
            name,
            permissions: parse_permissions(id, &p)?,
        })
    }

    /// Replaces a user's role bindings, in one transaction.
    pub async fn set_bindings(
        &self,
        user_id: UserId,
        bindings: &[(RoleId, Option<EnvironmentId>, Option<AppId>)],
    ) -> DbResult<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM role_bindings WHERE user_id = $1")
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        for (role_id, environment_id, app_id) in bindings {
            sqlx::query(
                "INSERT INTO role_bindings (user_id, role_id, environment_id, app_id) VALUES ($1, $2, $3, $4)",
            )
            .bind(user_id)
            .bind(role_id)
            .bind(environment_id)
            .bind(app_id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn bindings(&self, user_id: UserId) -> DbResult<Vec<Binding>> {
        Ok(sqlx::query_as(
            "SELECT id, user_id, role_id, environment_id, app_id FROM role_bindings WHERE user_id = $1 ORDER BY id",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Every permission a user holds, with its scope.
    pub async fn grants(&self, user_id: UserId) -> DbResult<Vec<Grant>> {
        let rows: Vec<(RoleId, String, Option<EnvironmentId>, Option<AppId>)> = sqlx::query_as(
            "SELECT r.id, r.permissions, b.environment_id, b.app_id FROM role_bindings b
             JOIN roles r ON r.id = b.role_id WHERE b.user_id = $1",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::new();
        for (role_id, p, environment_id, app_id) in rows {
            for permission in parse_permissions(role_id, &p)? {
                out.push(Grant {
                    permission,
                    environment_id,
                    app_id,
                });
            }
        }
        Ok(out)
    }

    /// A user's long-lived API tokens (never the token itself: only its hash is stored).
    pub async fn api_tokens(&self, user_id: UserId) -> DbResult<Vec<ApiToken>> {
        Ok(sqlx::query_as(
            "SELECT id, name, expires_at, created_at FROM tokens WHERE user_id = $1 AND kind = 'api' ORDER BY id",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn create_api_token(
        &self,
        user_id: UserId,
        name: &str,
        token_hash: &str,
        expires_at: Option<String>,
    ) -> DbResult<ApiToken> {
        let t = now();
        let id: TokenId = sqlx::query_scalar(
            "INSERT INTO tokens (user_id, token_hash, kind, expires_at, created_at, name)
             VALUES ($1, $2, 'api', $3, $4, $5) RETURNING id",
        )
        .bind(user_id)
        .bind(token_hash)
        .bind(&expires_at)
        .bind(&t)
        .bind(name)
        .fetch_one(&self.pool)
        .await?;
        Ok(ApiToken {
            id,
            name: name.to_owned(),
            expires_at,
            created_at: t,
        })
    }

    /// Revokes one of `user_id`'s API tokens; false if there is no such token of theirs.
    pub async fn revoke_api_token(&self, user_id: UserId, id: TokenId) -> DbResult<bool> {
        let r = sqlx::query("DELETE FROM tokens WHERE id = $1 AND user_id = $2 AND kind = 'api'")
            .bind(id)
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() == 1)
    }
}
