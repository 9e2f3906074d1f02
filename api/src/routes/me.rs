//! `/api/auth/*` and `/api/me`: log in and out, and who the caller is and what they may do
//! where (the console shows and hides its buttons with it).
use super::{AUTH, ApiResult, ApiTags, BODY, TOO_MANY, UNAVAILABLE};
use crate::auth::Auth;
use crate::body::JsonBody;
use crate::problem::{ApiError, Problem};
use crate::state::State;
use crate::text::{LoginName, LoginPassword, Password, Timestamp};
use hippo_shared::crypto::new_token;
use hippo_shared::domain::{AppId, EnvironmentId, Permission, RoleId, UserId};
use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use std::collections::HashMap;
use std::sync::Arc;

#[derive(Object)]
#[oai(example)]
pub struct LoginIn {
    pub username: LoginName,
    pub password: LoginPassword,
}

#[derive(Object)]
pub struct LoginOut {
    /// Send as `Authorization: Bearer <token>`.
    pub token: String,
    pub expires_at: Timestamp,
    pub user_id: UserId,
    pub username: String,
}

/// A role the caller holds, where.
#[derive(Object)]
pub struct MyRoleOut {
    pub role_id: RoleId,
    pub role_name: String,
    pub permissions: Vec<Permission>,
    /// Absent: every environment.
    #[oai(skip_serializing_if_is_none)]
    pub environment_id: Option<EnvironmentId>,
    #[oai(skip_serializing_if_is_none)]
    pub environment_name: Option<String>,
    /// Absent: every app.
    #[oai(skip_serializing_if_is_none)]
    pub app_id: Option<AppId>,
    #[oai(skip_serializing_if_is_none)]
    pub app_name: Option<String>,
}

/// What the caller may do for one app in one environment.
#[derive(Object)]
pub struct AppAccessOut {
    pub app_id: AppId,
    pub app_name: String,
    /// `edit_configs`, `request`, `review`, `release` as they apply here (`admin` for admins).
    pub permissions: Vec<Permission>,
}

/// What the caller may do in one environment: for the environment as a whole (hosts:
/// `manage_hosts`) and per app. Only environments where the caller holds something are listed.
#[derive(Object)]
pub struct EnvironmentAccessOut {
    pub environment_id: EnvironmentId,
    pub environment_name: String,
    /// Permissions for the environment itself (whatever the app).
    pub permissions: Vec<Permission>,
    /// Apps the caller holds a permission for here.
    pub apps: Vec<AppAccessOut>,
}

/// Who I am and what I may do where.
#[derive(Object)]
pub struct MeOut {
    pub id: UserId,
    pub username: String,
    /// Admins may do everything, everywhere.
    pub is_admin: bool,
    pub roles: Vec<MyRoleOut>,
    /// Permissions that hold in every environment for every app.
    pub everywhere: Vec<Permission>,
    pub environments: Vec<EnvironmentAccessOut>,
}

/// A change of one's own password.
#[derive(Object)]
pub struct PasswordChangeIn {
    pub current_password: LoginPassword,
    pub new_password: Password,
}

#[derive(ApiResponse)]
pub enum LoggedOut {
    /// The token no longer works.
    #[oai(status = 204)]
    Ok,
}

#[derive(Default)]
pub struct AuthApi;

fn held(
    user: &crate::auth::CurrentUser,
    env: Option<EnvironmentId>,
    app: Option<AppId>,
) -> Vec<Permission> {
    Permission::ALL
        .into_iter()
        // Hosts belong to an environment: `manage_hosts` and `terminal` are never an app's.
        .filter(|p| app.is_none() || !matches!(p, Permission::ManageHosts | Permission::Terminal))
        .filter(|p| user.can(*p, env, app))
        .collect()
}

#[OpenApi(prefix_path = "/api", tag = "ApiTags::Auth")]
impl AuthApi {
    /// Log in with a user name and password; returns a session token. Failed logins are
    /// limited per user name and per client address: beyond the limit, 429 with `Retry-After`;
    /// repeated, a temporary lockout (admins: `/api/login-lockouts`).
    #[oai(path = "/auth/login", method = "post", operation_id = "login")]
    async fn login(
        &self,
        st: Data<&Arc<State>>,
        req: &poem::Request,
        body: JsonBody<LoginIn>,
    ) -> ApiResult<Json<LoginOut>, { BODY | AUTH | TOO_MANY | UNAVAILABLE }> {
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
            return Err(ApiError::Unauthorized(Json(Problem {
                error: "bad_credentials".into(),
                message: "unknown user name or wrong password".into(),
                field: None,
                permission: None,
            }))
            .into());
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
            expires_at: expires_at.into(),
            user_id: user.id,
            username: user.username,
        }))
    }

    /// End the token this request carries (a session or an API token): it stops working at once.
    #[oai(path = "/auth/logout", method = "post", operation_id = "logout")]
    async fn logout(&self, auth: Auth, st: Data<&Arc<State>>) -> ApiResult<LoggedOut, AUTH> {
        st.db.delete_token(&auth.0.token_hash).await?;
        Ok(LoggedOut::Ok)
    }

    /// Change my password. Every session and API token of mine ends, this one too: log in again.
    #[oai(
        path = "/me/password",
        method = "post",
        operation_id = "changeMyPassword"
    )]
    async fn change_password(
        &self,
        auth: Auth,
        st: Data<&Arc<State>>,
        body: JsonBody<PasswordChangeIn>,
    ) -> ApiResult<LoggedOut, { AUTH | BODY | UNAVAILABLE }> {
        let user = st.db.user_by_name(&auth.0.username).await?;
        let hash = user.as_ref().map(|u| u.password_hash.as_str());
        let ok = user.is_some() && st.login_guard.verify(&body.current_password, hash).await?;
        if !ok {
            return Err(ApiError::invalid(
                "current_password",
                "current_password is not your password",
            )
            .into());
        }
        let hash = st.login_guard.hash(&body.new_password).await?;
        st.db
            .update_user(auth.0.id, Some(&hash), None, None)
            .await?;
        let changes = serde_json::json!({"password": "changed"});
        crate::audit::record(&st, &auth.0, "user", Some(auth.0.id), "update", changes).await;
        Ok(LoggedOut::Ok)
    }

    /// Who I am: my roles, and what I may do in each environment and for each app.
    #[oai(path = "/me", method = "get", operation_id = "getMe")]
    async fn me(&self, auth: Auth, st: Data<&Arc<State>>) -> ApiResult<Json<MeOut>, AUTH> {
        let user = &auth.0;
        let envs = st.db.list_environments().await?;
        let apps = st.db.list_apps().await?;
        let env_names: HashMap<EnvironmentId, String> =
            envs.iter().map(|e| (e.id, e.name.clone())).collect();
        let app_names: HashMap<AppId, String> =
            apps.iter().map(|a| (a.id, a.name.clone())).collect();
        let roles: HashMap<RoleId, hippo_shared::db::people::Role> = st
            .db
            .list_roles()
            .await?
            .into_iter()
            .map(|r| (r.id, r))
            .collect();
        let mut my_roles = Vec::new();
        for b in st.db.bindings(user.id).await? {
            let Some(role) = roles.get(&b.role_id) else {
                continue;
            };
            my_roles.push(MyRoleOut {
                role_id: role.id,
                role_name: role.name.clone(),
                permissions: role.permissions.clone(),
                environment_name: b.environment_id.and_then(|e| env_names.get(&e).cloned()),
                environment_id: b.environment_id,
                app_name: b.app_id.and_then(|a| app_names.get(&a).cloned()),
                app_id: b.app_id,
            });
        }
        let mut environments = Vec::new();
        for e in &envs {
            let apps_here: Vec<AppAccessOut> = apps
                .iter()
                .map(|a| AppAccessOut {
                    app_id: a.id,
                    app_name: a.name.clone(),
                    permissions: held(user, Some(e.id), Some(a.id)),
                })
                .filter(|a| !a.permissions.is_empty())
                .collect();
            let permissions = held(user, Some(e.id), None);
            if permissions.is_empty() && apps_here.is_empty() {
                continue;
            }
            environments.push(EnvironmentAccessOut {
                environment_id: e.id,
                environment_name: e.name.clone(),
                permissions,
                apps: apps_here,
            });
        }
        Ok(Json(MeOut {
            id: user.id,
            username: user.username.clone(),
            is_admin: user.is_admin,
            roles: my_roles,
            everywhere: held(user, None, None),
            environments,
        }))
    }
}

impl poem_openapi::types::Example for LoginIn {
    fn example() -> Self {
        Self {
            username: "admin".into(),
            password: "correct horse battery".into(),
        }
    }
}
