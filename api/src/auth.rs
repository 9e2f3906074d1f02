//! Who is calling and what they may do. `POST /api/auth/login` issues a session token and
//! `POST /api/tokens` a long-lived API token; every other `/api` operation takes an `Auth`
//! argument, which poem-openapi checks before the handler runs. Handlers then ask
//! [`CurrentUser::require`] for the permission the operation needs, scoped to the environment
//! and app it touches; a refusal is a 403 naming the missing permission.
use crate::problem::ApiError;
use crate::state::State;
use hippo_shared::crypto::token_hash;
use hippo_shared::db::audit::Actor;
use hippo_shared::domain::{AppId, EnvironmentId, Grant, Permission, UserId};
use poem::Request;
use poem_openapi::SecurityScheme;
use poem_openapi::auth::Bearer;
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct CurrentUser {
    pub id: UserId,
    pub username: String,
    pub is_admin: bool,
    /// The permissions the user's roles grant, with their scopes.
    pub grants: Vec<Grant>,
    /// The hash of the token this request carries (`POST /api/auth/logout` ends it).
    pub token_hash: String,
}

impl CurrentUser {
    /// Whether the user may do `p` in environment `env` for app `app` (`None`: "some").
    pub fn can(&self, p: Permission, env: Option<EnvironmentId>, app: Option<AppId>) -> bool {
        self.is_admin || self.grants.iter().any(|g| g.covers(p, env, app))
    }

    /// 403 unless [`CurrentUser::can`]. The message names the permission and the user, never
    /// the ids of environments or apps (the caller may not be allowed to know they exist).
    ///
    /// The environment and the app are typed ids: swapping them does not compile.
    ///
    /// ```compile_fail,E0308
    /// # use hippo_shared::domain::{AppId, EnvironmentId, Permission};
    /// # fn check(user: &hippo_api::auth::CurrentUser, env: EnvironmentId, app: AppId) {
    /// let _ = user.require(Permission::Release, Some(app), Some(env));
    /// # }
    /// ```
    ///
    /// ```
    /// # use hippo_shared::domain::{AppId, EnvironmentId, Permission};
    /// # fn check(user: &hippo_api::auth::CurrentUser, env: EnvironmentId, app: AppId) {
    /// let _ = user.require(Permission::Release, Some(env), Some(app));
    /// # }
    /// ```
    pub fn require(
        &self,
        p: Permission,
        env: Option<EnvironmentId>,
        app: Option<AppId>,
    ) -> Result<(), ApiError> {
        if self.can(p, env, app) {
            return Ok(());
        }
        let scope = match (env, app) {
            (None, None) if p == Permission::Admin => "",
            (None, None) => " everywhere",
            _ => " here",
        };
        Err(ApiError::forbidden(
            p.as_str(),
            format!(
                "{} lacks the permission `{}`{scope}",
                self.username,
                p.as_str()
            ),
        ))
    }

    pub fn require_admin(&self) -> Result<(), ApiError> {
        self.require(Permission::Admin, None, None)
    }

    /// Whether the user holds any permission in this environment (and app): what they may see.
    /// `app: None` (hosts): any grant in the environment, whatever its app scope.
    pub fn sees(&self, env: EnvironmentId, app: Option<AppId>) -> bool {
        self.is_admin
            || self.grants.iter().any(|g| {
                g.environment_id.is_none_or(|e| e == env)
                    && match app {
                        Some(a) => g.app_id.is_none_or(|x| x == a),
                        None => true,
                    }
            })
    }

    /// 404 unless [`CurrentUser::sees`] (reading a config, a release, a host): what a caller may
    /// not see answers as if it did not exist, so ids do not leak across environments.
    pub fn require_sees(
        &self,
        env: EnvironmentId,
        app: Option<AppId>,
        what: &str,
    ) -> Result<(), ApiError> {
        if self.sees(env, app) {
            return Ok(());
        }
        Err(ApiError::not_found(what))
    }

    pub fn actor(&self) -> Actor {
        Actor::user(self.id, &self.username)
    }
}

/// A bearer token: a session token from `POST /api/auth/login` or an API token from
/// `POST /api/tokens`.
#[derive(SecurityScheme)]
#[oai(ty = "bearer", checker = "check_token")]
pub struct Auth(pub CurrentUser);

async fn check_token(req: &Request, bearer: Bearer) -> Option<CurrentUser> {
    let state = req.data::<Arc<State>>()?;
    let hash = token_hash(&bearer.token);
    let user = match state.db.user_by_token(&hash).await {
        Ok(Some(u)) => u,
        Ok(None) => return None,
        Err(e) => {
            tracing::error!(error = %e, "token lookup failed");
            return None;
        }
    };
    let grants = match state.db.grants(user.id).await {
        Ok(g) => g,
        Err(e) => {
            tracing::error!(error = %e, "reading grants failed");
            return None;
        }
    };
    Some(CurrentUser {
        id: user.id,
        username: user.username,
        is_admin: user.is_admin.0,
        grants,
        token_hash: hash,
    })
}
