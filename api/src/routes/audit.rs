//! `/api/audit`: the audit trail.
use super::ApiResult;
use crate::app::ApiTags;
use crate::auth::Auth;
use crate::problem::ApiError;
use crate::state::State;
use hippo_shared::db::audit::{AuditEntry, AuditFilter};
use poem::web::Data;
use poem_openapi::param::Query;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use serde_json::Value;
use std::sync::Arc;

#[derive(Object)]
pub struct AuditOut {
    pub id: i64,
    pub at: String,
    /// The user's id; absent for Hippo itself (a worker ending a release).
    pub actor_id: Option<i64>,
    pub actor: String,
    /// release, config, host, environment, app, user, role, token.
    pub entity: String,
    pub entity_id: Option<i64>,
    /// create, update, delete, status, edit, …
    pub action: String,
    /// What changed: `{"field": {"from": …, "to": …}}` (never a secret's value).
    pub changes: Value,
    pub comment: String,
}

impl From<AuditEntry> for AuditOut {
    fn from(e: AuditEntry) -> Self {
        Self {
            id: e.id,
            at: e.at,
            actor_id: e.actor_id,
            actor: e.actor,
            entity: e.entity,
            entity_id: e.entity_id,
            action: e.action,
            changes: serde_json::from_str(&e.changes).unwrap_or(Value::Null),
            comment: e.comment,
        }
    }
}

#[derive(Default)]
pub struct AuditApi;

#[OpenApi(prefix_path = "/api/audit", tag = "ApiTags::System")]
impl AuditApi {
    /// The audit trail, oldest first (at most 1000 entries): every change of configs, hosts,
    /// environments, apps, users, roles, tokens and every release status change. Admins only.
    #[oai(path = "/", method = "get")]
    async fn list(
        &self,
        auth: Auth,
        st: Data<&Arc<State>>,
        entity: Query<Option<String>>,
        entity_id: Query<Option<i64>>,
        actor: Query<Option<String>>,
        /// RFC 3339; entries at or after it.
        since: Query<Option<String>>,
    ) -> ApiResult<Json<Vec<AuditOut>>> {
        auth.0.require_admin()?;
        let since = match since.0 {
            Some(s) => Some(
                chrono::DateTime::parse_from_rfc3339(&s)
                    .map_err(|_| ApiError::invalid("since", "since must be an RFC 3339 time"))?
                    .with_timezone(&chrono::Utc)
                    .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            ),
            None => None,
        };
        let f = AuditFilter {
            entity: entity.0,
            entity_id: entity_id.0,
            actor: actor.0,
            since,
        };
        Ok(Json(
            st.db
                .audit_entries(&f)
                .await?
                .into_iter()
                .map(Into::into)
                .collect(),
        ))
    }
}
