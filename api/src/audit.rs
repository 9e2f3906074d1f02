//! Recording changes made through the API in the audit trail (`shared::db::audit`; the
//! route is `routes::audit`). Changes are the differences between the API's own view of a
//! record before and after (those views never hold secrets); a secret that changed is noted as
//! `"changed"` by the caller.
use crate::auth::CurrentUser;
use crate::state::State;
use hippo_shared::db::audit::Actor;
use poem_openapi::types::ToJSON;
use serde_json::{Map, Value, json};

/// Field by field: `{"field": {"from": …, "to": …}}` for what differs (timestamps left out).
pub fn diff(before: Option<Value>, after: Option<Value>) -> Value {
    let obj = |v: Option<Value>| match v {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    };
    let (b, a) = (obj(before), obj(after));
    let mut out = Map::new();
    let keys: std::collections::BTreeSet<&String> = b.keys().chain(a.keys()).collect();
    for k in keys {
        if k == "updated_at" || k == "created_at" {
            continue;
        }
        let (from, to) = (b.get(k), a.get(k));
        if from != to {
            out.insert(k.clone(), json!({"from": from, "to": to}));
        }
    }
    Value::Object(out)
}

/// The JSON of an API object, for [`diff`].
pub fn view<T: ToJSON>(v: &T) -> Option<Value> {
    v.to_json()
}

/// Records a change; a failure to record is logged (the change itself has happened).
pub async fn record(
    st: &State,
    who: &CurrentUser,
    entity: &str,
    id: Option<impl Into<i64>>,
    action: &str,
    changes: Value,
) {
    record_as(st, &who.actor(), entity, id, action, changes).await;
}

/// Records a change made by `actor` (a user, or `webhook` for a Git webhook's request).
pub async fn record_as(
    st: &State,
    actor: &Actor,
    entity: &str,
    id: Option<impl Into<i64>>,
    action: &str,
    changes: Value,
) {
    let id: Option<i64> = id.map(Into::into);
    if let Err(e) = st.db.audit(actor, entity, id, action, &changes, "").await {
        tracing::error!(error = %e, entity, ?id, action, "could not record an audit entry");
    }
}
