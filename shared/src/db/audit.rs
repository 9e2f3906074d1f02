//! The audit trail: who changed what, when, with which comment. Callers pass changes without
//! secrets (a secret appears as `"changed"`, never its value).
use super::{Db, DbResult, now};
use crate::domain::{AuditId, UserId};

/// Who did something: a user, or Hippo itself (a worker moving a release, restart recovery).
#[derive(Debug, Clone)]
pub struct Actor {
    pub id: Option<UserId>,
    pub name: String,
}

impl Actor {
    pub fn user(id: UserId, name: &str) -> Self {
        Self {
            id: Some(id),
            name: name.to_owned(),
        }
    }
    pub fn system() -> Self {
        Self {
            id: None,
            name: "hippo".into(),
        }
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AuditEntry {
    pub id: AuditId,
    pub at: String,
    pub actor_id: Option<UserId>,
    pub actor: String,
    pub entity: String,
    pub entity_id: Option<i64>,
    pub action: String,
    pub changes: String,
    pub comment: String,
}

#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub entity: Option<String>,
    pub entity_id: Option<i64>,
    pub actor: Option<String>,
    pub since: Option<String>,
}

/// Records one change inside the caller's transaction (so the change and its record land
/// together).
pub(crate) async fn insert(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    actor: &Actor,
    entity: &str,
    entity_id: Option<i64>,
    action: &str,
    changes: &serde_json::Value,
    comment: &str,
) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO audit (at, actor_id, actor, entity, entity_id, action, changes, comment)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(now())
    .bind(actor.id)
    .bind(&actor.name)
    .bind(entity)
    .bind(entity_id)
    .bind(action)
    .bind(changes.to_string())
    .bind(comment)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl Db {
    /// Records one change. `changes` is a JSON value (object) without secrets.
    pub async fn audit(
        &self,
        actor: &Actor,
        entity: &str,
        entity_id: Option<i64>,
        action: &str,
        changes: &serde_json::Value,
        comment: &str,
    ) -> DbResult<()> {
        let mut tx = self.pool.begin().await?;
        insert(&mut tx, actor, entity, entity_id, action, changes, comment).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Oldest first, at most 1000 entries.
    pub async fn audit_entries(&self, f: &AuditFilter) -> DbResult<Vec<AuditEntry>> {
        Ok(sqlx::query_as(
            "SELECT id, at, actor_id, actor, entity, entity_id, action, changes, comment FROM audit
             WHERE (CAST($1 AS TEXT) IS NULL OR entity = $1)
               AND (CAST($2 AS BIGINT) IS NULL OR entity_id = $2)
               AND (CAST($3 AS TEXT) IS NULL OR actor = $3)
               AND (CAST($4 AS TEXT) IS NULL OR at >= $4)
             ORDER BY id LIMIT 1000",
        )
        .bind(f.entity.as_deref())
        .bind(f.entity_id)
        .bind(f.actor.as_deref())
        .bind(f.since.as_deref())
        .fetch_all(&self.pool)
        .await?)
    }
}
