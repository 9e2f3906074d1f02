//! `/api/login-lockouts`: user names and client addresses locked out after repeated failed
//! logins (`login_guard`), for admins to see and clear.
use super::{AUTH, ApiResult, ApiTags, Deleted, FORBIDDEN, NOT_FOUND};
use crate::audit;
use crate::auth::Auth;
use crate::state::State;
use crate::text::Timestamp;
use hippo_shared::db::lockouts::Lockout;
use hippo_shared::domain::LockoutId;
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use std::sync::Arc;

#[derive(Object)]
pub struct LockoutOut {
    pub id: LockoutId,
    /// `user` (a user name, as typed at login) or `address` (a client address; IPv6 as its
    /// /64 network).
    pub kind: String,
    pub subject: String,
    /// Failed logins that led to it.
    pub failures: i64,
    pub locked_at: Timestamp,
    /// Logins of this subject get 429 until then.
    pub locked_until: Timestamp,
}

impl From<Lockout> for LockoutOut {
    fn from(l: Lockout) -> Self {
        Self {
            id: l.id,
            kind: l.kind,
            subject: l.subject,
            failures: l.failures,
            locked_at: l.locked_at.into(),
            locked_until: l.locked_until.into(),
        }
    }
}

#[derive(Default)]
pub struct LockoutsApi;

#[OpenApi(prefix_path = "/api/login-lockouts", tag = "ApiTags::System")]
impl LockoutsApi {
    /// Login lockouts in force, newest first (admins).
    #[oai(path = "/", method = "get", operation_id = "listLoginLockouts")]
    async fn list(
        &self,
        auth: Auth,
        st: Data<&Arc<State>>,
    ) -> ApiResult<Json<Vec<LockoutOut>>, { AUTH | FORBIDDEN }> {
        auth.0.require_admin()?;
        let list = st.db.lockouts().await?;
        Ok(Json(list.into_iter().map(LockoutOut::from).collect()))
    }

    /// End a lockout now: the user name or address may log in again (admins; audited).
    #[oai(path = "/:id", method = "delete", operation_id = "clearLoginLockout")]
    async fn clear(
        &self,
        auth: Auth,
        st: Data<&Arc<State>>,
        id: Path<LockoutId>,
    ) -> ApiResult<Deleted, { AUTH | FORBIDDEN | NOT_FOUND }> {
        auth.0.require_admin()?;
        let l = st.db.clear_lockout(id.0).await?;
        st.login_guard.forget(&l.kind, &l.subject);
        let changes = serde_json::json!({
            "kind": l.kind, "subject": l.subject, "locked_until": l.locked_until,
        });
        audit::record(&st, &auth.0, "login_lockout", Some(l.id), "clear", changes).await;
        Ok(Deleted::Ok)
    }
}
