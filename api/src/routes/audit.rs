//! `/api/audit`: the audit trail.
use super::{AUTH, ApiResult, ApiTags, BAD_PARAM, FORBIDDEN};
use crate::auth::Auth;
use crate::state::State;
use crate::text::Timestamp;
use crate::values::{AuditAction, AuditEntity};
use hippo_shared::db::audit::{AuditEntry, AuditFilter};
use hippo_shared::domain::{AuditId, UserId};
use poem::web::Data;
use poem_openapi::param::Query;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use serde_json::Value;
use std::sync::Arc;

/// One changed field. Values are shown as text: a string as it is, anything else (a number, a
/// list, an object) as compact JSON. A secret is never shown: its value reads `set`,
/// `changed` or `cleared`.
#[derive(Object)]
pub struct AuditChange {
    pub field: String,
    /// The value before; absent when the field was not there (a creation).
    #[oai(skip_serializing_if_is_none)]
    pub from: Option<String>,
    /// The value after; absent when the field is gone (a deletion).
    #[oai(skip_serializing_if_is_none)]
    pub to: Option<String>,
}

#[derive(Object)]
pub struct AuditOut {
    pub id: AuditId,
    pub at: Timestamp,
    /// The user's id; absent for Hippo itself (a worker ending a release).
    #[oai(skip_serializing_if_is_none)]
    pub actor_id: Option<UserId>,
    /// The user's name, or `hippo`.
    pub actor: String,
    pub entity: AuditEntity,
    #[oai(skip_serializing_if_is_none)]
    pub entity_id: Option<i64>,
    pub action: AuditAction,
    /// What changed, field by field (never a secret's value).
    pub changes: Vec<AuditChange>,
    pub comment: String,
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// The stored change set (`{"field": {"from": …, "to": …}}`, or `{"field": value}` for what
/// was only set) as a list of typed changes.
pub fn changes(stored: &str) -> Vec<AuditChange> {
    let Ok(Value::Object(map)) = serde_json::from_str::<Value>(stored) else {
        return Vec::new();
    };
    map.into_iter()
        .map(|(field, v)| match v {
            Value::Object(o) if o.keys().all(|k| k == "from" || k == "to") && !o.is_empty() => {
                AuditChange {
                    field,
                    from: o.get("from").and_then(text),
                    to: o.get("to").and_then(text),
                }
            }
            other => AuditChange {
                field,
                from: None,
                to: text(&other),
            },
        })
        .collect()
}

impl From<AuditEntry> for AuditOut {
    fn from(e: AuditEntry) -> Self {
        Self {
            id: e.id,
            at: e.at.into(),
            actor_id: e.actor_id,
            actor: e.actor,
            entity: AuditEntity::parse(&e.entity),
            entity_id: e.entity_id,
            action: AuditAction::parse(&e.action),
            changes: changes(&e.changes),
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
    #[oai(path = "/", method = "get", operation_id = "listAudit")]
    async fn list(
        &self,
        auth: Auth,
        st: Data<&Arc<State>>,
        entity: Query<Option<AuditEntity>>,
        entity_id: Query<Option<i64>>,
        /// The actor's user name.
        #[oai(validator(max_length = 100))]
        actor: Query<Option<String>>,
        /// Entries at or after this time.
        since: Query<Option<Timestamp>>,
    ) -> ApiResult<Json<Vec<AuditOut>>, { AUTH | BAD_PARAM | FORBIDDEN }> {
        auth.0.require_admin()?;
        let since = since.0.map(|t| t.0);
        let f = AuditFilter {
            entity: entity.0.map(|e| e.as_str().to_owned()),
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
