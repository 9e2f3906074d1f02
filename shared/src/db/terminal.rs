//! Web terminal sessions (issue 14): who opened a shell on which host, when it started and
//! ended, and its transcript. A session is created with a one-time ticket (its SHA-256 here,
//! never the ticket) that the browser presents when it opens the WebSocket; the ticket is
//! cleared by the first use and dies after `ticket_expires_at`.
use super::{Db, DbError, DbResult, now};
use crate::db::inventory::Host;
use crate::domain::{EnvironmentId, HostId, TerminalSessionId, UserId};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TerminalSession {
    pub id: TerminalSessionId,
    pub host_id: HostId,
    pub host_name: String,
    pub environment_id: EnvironmentId,
    pub user_id: UserId,
    pub username: String,
    pub created_at: String,
    pub started_at: Option<String>,
    pub ended_at: Option<String>,
    pub end_reason: String,
    pub transcript_bytes: i64,
}

macro_rules! session_cols {
    () => {
        "id, host_id, host_name, environment_id, user_id, username, created_at, started_at, ended_at, end_reason, transcript_bytes"
    };
}

impl Db {
    /// A new session for `host`, to be opened with the ticket whose hash is `ticket_hash`
    /// before `expires_at` (RFC 3339).
    pub async fn create_terminal_session(
        &self,
        host: &Host,
        user_id: UserId,
        username: &str,
        ticket_hash: &str,
        expires_at: &str,
    ) -> DbResult<TerminalSession> {
        let id: TerminalSessionId = sqlx::query_scalar(
            "INSERT INTO terminal_sessions (host_id, host_name, environment_id, user_id, username, created_at, ticket_hash, ticket_expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        )
        .bind(host.id)
        .bind(&host.name)
        .bind(host.environment_id)
        .bind(user_id)
        .bind(username)
        .bind(now())
        .bind(ticket_hash)
        .bind(expires_at)
        .fetch_one(&self.pool)
        .await?;
        self.get_terminal_session(id).await
    }

    /// Uses a ticket: the session it opens (now started), or `None` if the ticket is unknown,
    /// used or expired. Works across API replicas (one UPDATE decides).
    pub async fn claim_terminal_ticket(
        &self,
        ticket_hash: &str,
    ) -> DbResult<Option<TerminalSession>> {
        let t = now();
        let id: Option<TerminalSessionId> = sqlx::query_scalar(
            "UPDATE terminal_sessions SET ticket_hash = NULL, started_at = $1
             WHERE ticket_hash = $2 AND ticket_expires_at > $3 AND started_at IS NULL RETURNING id",
        )
        .bind(&t)
        .bind(ticket_hash)
        .bind(&t)
        .fetch_optional(&self.pool)
        .await?;
        match id {
            Some(id) => Ok(Some(self.get_terminal_session(id).await?)),
            None => Ok(None),
        }
    }

    /// Appends to a session's transcript (JSON lines).
    pub async fn append_transcript(&self, id: TerminalSessionId, chunk: &str) -> DbResult<()> {
        sqlx::query(
            "UPDATE terminal_sessions SET transcript = transcript || $1, transcript_bytes = transcript_bytes + $2 WHERE id = $3",
        )
        .bind(chunk)
        .bind(i64::try_from(chunk.len()).unwrap_or(i64::MAX))
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Marks a session ended (`reason`: `closed`, `idle`, `host_closed`, `error: …`).
    pub async fn end_terminal_session(&self, id: TerminalSessionId, reason: &str) -> DbResult<()> {
        sqlx::query(
            "UPDATE terminal_sessions SET ended_at = $1, end_reason = $2, ticket_hash = NULL WHERE id = $3 AND ended_at IS NULL",
        )
        .bind(now())
        .bind(reason)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn get_terminal_session(&self, id: TerminalSessionId) -> DbResult<TerminalSession> {
        sqlx::query_as(concat!(
            "SELECT ",
            session_cols!(),
            " FROM terminal_sessions WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(DbError::NotFound("terminal session"))
    }

    /// The transcript of a session (JSON lines).
    pub async fn terminal_transcript(&self, id: TerminalSessionId) -> DbResult<String> {
        sqlx::query_scalar("SELECT transcript FROM terminal_sessions WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(DbError::NotFound("terminal session"))
    }

    /// Newest first, at most 500, optionally of one host; sessions never opened are left out.
    pub async fn list_terminal_sessions(
        &self,
        host_id: Option<HostId>,
    ) -> DbResult<Vec<TerminalSession>> {
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            session_cols!(),
            " FROM terminal_sessions WHERE (CAST($1 AS BIGINT) IS NULL OR host_id = $1) AND started_at IS NOT NULL ORDER BY id DESC LIMIT 500"
        ))
        .bind(host_id)
        .fetch_all(&self.pool)
        .await?)
    }
}
