//! Users and their tokens.
use super::{Db, DbResult, now};
use crate::domain::UserId;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct User {
    pub id: UserId,
    pub username: String,
    pub password_hash: String,
    #[sqlx(try_from = "i64")]
    pub is_admin: super::Flag,
}

impl Db {
    pub async fn user_count(&self) -> DbResult<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM users")
            .fetch_one(&self.pool)
            .await?)
    }

    pub async fn create_user(
        &self,
        username: &str,
        password_hash: &str,
        is_admin: bool,
    ) -> DbResult<UserId> {
        sqlx::query_scalar(
            "INSERT INTO users (username, password_hash, is_admin, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(username)
        .bind(password_hash)
        .bind(i64::from(is_admin))
        .bind(now())
        .fetch_one(&self.pool)
        .await
        .map_err(super::conflict("a user with this name exists"))
    }

    pub async fn user_by_name(&self, username: &str) -> DbResult<Option<User>> {
        Ok(sqlx::query_as(
            "SELECT id, username, password_hash, is_admin FROM users WHERE username = $1 AND disabled = 0",
        )
        .bind(username)
        .fetch_optional(&self.pool)
        .await?)
    }

    pub async fn store_token(
        &self,
        user_id: UserId,
        token_hash: &str,
        kind: &str,
        expires_at: Option<String>,
    ) -> DbResult<()> {
        sqlx::query("INSERT INTO tokens (user_id, token_hash, kind, expires_at, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(user_id)
            .bind(token_hash)
            .bind(kind)
            .bind(expires_at)
            .bind(now())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The user a token belongs to, if the token exists and has not expired.
    pub async fn user_by_token(&self, token_hash: &str) -> DbResult<Option<User>> {
        Ok(sqlx::query_as(
            "SELECT u.id, u.username, u.password_hash, u.is_admin FROM tokens t JOIN users u ON u.id = t.user_id
             WHERE t.token_hash = $1 AND (t.expires_at IS NULL OR t.expires_at > $2) AND u.disabled = 0",
        )
        .bind(token_hash)
        .bind(now())
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Ends a token (log out): it stops working at once.
    pub async fn delete_token(&self, token_hash: &str) -> DbResult<()> {
        sqlx::query("DELETE FROM tokens WHERE token_hash = $1")
            .bind(token_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
