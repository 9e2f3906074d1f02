//! Login and platform facts.
use super::ApiResult;
use crate::app::ApiTags;
use crate::auth::Auth;
use crate::problem::ApiError;
use crate::state::State;
use hippo_shared::crypto::new_token;
use hippo_worker::ssh::HostKey;
use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use std::sync::Arc;

#[derive(Object)]
pub struct LoginIn {
    pub username: String,
    pub password: String,
}

#[derive(Object)]
pub struct LoginOut {
    /// Send as `Authorization: Bearer <token>`.
    pub token: String,
    pub expires_at: String,
    pub username: String,
}

#[derive(Object)]
pub struct SshKeyOut {
    /// Add this line to `~/.ssh/authorized_keys` of the deploy user on every host (and as a
    /// deploy key of SSH Git repositories).
    pub public_key: String,
    pub fingerprint: String,
}

#[derive(Default)]
pub struct SystemApi;

#[OpenApi(prefix_path = "/api", tag = "ApiTags::System")]
impl SystemApi {
    /// Log in with a user name and password; returns a bearer token. Failed logins are
    /// limited per user name and per client address: beyond the limit, 429 with `Retry-After`;
    /// repeated, a temporary lockout (admins: `/api/login-lockouts`).
    #[oai(path = "/auth/login", method = "post", tag = "ApiTags::Auth")]
    async fn login(
        &self,
        st: Data<&Arc<State>>,
        req: &poem::Request,
        body: Json<LoginIn>,
    ) -> ApiResult<Json<LoginOut>> {
        let guard = &st.login_guard;
        let attempt = guard
            .admit(&st.db, &body.username, guard.client_addr(req))
            .await?;
        let user = st.db.user_by_name(&body.username).await?;
        // Checked even when the user does not exist, so timing does not tell which names exist.
        let hash = user.as_ref().map(|u| u.password_hash.as_str());
        let ok = guard.verify(&body.password, hash).await?;
        let Some(user) = user.filter(|_| ok) else {
            attempt.failed(&st.db).await;
            return Err(ApiError::Unauthorized(Json(crate::problem::Problem {
                error: "bad_credentials".into(),
                message: "unknown user name or wrong password".into(),
                field: None,
                permission: None,
            })));
        };
        attempt.succeeded();
        let (token, hash) = new_token();
        let expires =
            chrono::Utc::now() + chrono::Duration::seconds(st.settings.session_ttl_secs as i64);
        let expires_at = expires.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        st.db
            .store_token(user.id, &hash, "session", Some(expires_at.clone()))
            .await?;
        Ok(Json(LoginOut {
            token,
            expires_at,
            username: user.username,
        }))
    }

    /// The platform's public SSH key.
    #[oai(path = "/ssh-key", method = "get")]
    async fn ssh_key(&self, _auth: Auth, st: Data<&Arc<State>>) -> ApiResult<Json<SshKeyOut>> {
        let public_key = st.key.public_line.clone();
        let fingerprint = HostKey::from_openssh(&public_key)
            .map(|k| k.fingerprint())
            .unwrap_or_default();
        Ok(Json(SshKeyOut {
            public_key,
            fingerprint,
        }))
    }
}
