//! `/api/users`, `/api/roles` (admins) and `/api/tokens` (each user's own API tokens).
//! A role is a named set of permissions; a user holds roles, each for one environment and/or
//! one app or for all of them ("may release `cart` to `test`, may only request for `prod`").
use super::{AUTH, ApiResult, ApiTags, BODY, CONFLICT, Created, Deleted, FORBIDDEN, NOT_FOUND};
use crate::audit;
use crate::auth::Auth;
use crate::body::JsonBody;
use crate::problem::ApiError;
use crate::state::State;
use crate::text::{Name, Password, Timestamp};
use hippo_shared::crypto::new_token;
use hippo_shared::db::people::{ApiToken, Role, UserRow};
use hippo_shared::domain::{self, AppId, EnvironmentId, Permission, RoleId, TokenId, UserId};
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use std::sync::Arc;

/// A role given to a user, for one environment and/or app (absent or null: all of them).
#[derive(Object, Clone)]
pub struct BindingIn {
    pub role_id: RoleId,
    #[oai(nullable)]
    pub environment_id: Option<EnvironmentId>,
    #[oai(nullable)]
    pub app_id: Option<AppId>,
}

/// A role a user holds, with the names of what it is bound to.
#[derive(Object, Clone)]
pub struct BindingOut {
    pub role_id: RoleId,
    pub role_name: String,
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

#[derive(Object)]
pub struct UserOut {
    pub id: UserId,
    pub username: String,
    pub is_admin: bool,
    pub disabled: bool,
    pub roles: Vec<BindingOut>,
    pub created_at: Timestamp,
}

#[derive(Object)]
#[oai(example)]
pub struct UserIn {
    /// `webhook` (any case) is reserved: Git webhooks' release requests are requested by it.
    pub username: Name,
    pub password: Password,
    #[oai(default)]
    pub is_admin: bool,
    #[oai(default, validator(max_items = 100))]
    pub roles: Vec<BindingIn>,
}

/// A change of a user; what is absent stays as it is.
#[derive(Object)]
pub struct UserPatch {
    pub password: Option<Password>,
    pub is_admin: Option<bool>,
    /// A disabled user cannot log in and their tokens stop working.
    pub disabled: Option<bool>,
    /// Replaces the user's roles.
    #[oai(validator(max_items = 100))]
    pub roles: Option<Vec<BindingIn>>,
}

#[derive(Object)]
#[oai(example)]
pub struct RoleIn {
    pub name: Name,
    #[oai(validator(min_items = 1, max_items = 6))]
    pub permissions: Vec<Permission>,
}

#[derive(Object)]
pub struct RoleOut {
    pub id: RoleId,
    pub name: String,
    pub permissions: Vec<Permission>,
}

impl From<Role> for RoleOut {
    fn from(r: Role) -> Self {
        Self {
            id: r.id,
            name: r.name,
            permissions: r.permissions,
        }
    }
}

#[derive(Object)]
#[oai(example)]
pub struct TokenIn {
    /// What the token is for ("ci deploys").
    pub name: Name,
    /// Days until it expires (1-3650); absent: never.
    #[oai(validator(minimum(value = "1"), maximum(value = "3650")))]
    pub expires_in_days: Option<u32>,
}

#[derive(Object)]
pub struct TokenOut {
    pub id: TokenId,
    pub name: String,
    /// Absent: it never expires.
    #[oai(skip_serializing_if_is_none)]
    pub expires_at: Option<Timestamp>,
    pub created_at: Timestamp,
}

impl From<ApiToken> for TokenOut {
    fn from(t: ApiToken) -> Self {
        Self {
            id: t.id,
            name: t.name,
            expires_at: t.expires_at.map(Into::into),
            created_at: t.created_at.into(),
        }
    }
}

/// A new token: `token` is shown this once (only its hash is kept).
#[derive(Object)]
pub struct NewTokenOut {
    pub id: TokenId,
    pub name: String,
    pub token: String,
    /// Absent: it never expires.
    #[oai(skip_serializing_if_is_none)]
    pub expires_at: Option<Timestamp>,
}

async fn user_out(st: &State, u: UserRow) -> Result<UserOut, ApiError> {
    let mut roles = Vec::new();
    for b in st.db.bindings(u.id).await? {
        let role_name = st
            .db
            .get_role(b.role_id)
            .await
            .map(|r| r.name)
            .unwrap_or_default();
        let environment_name = match b.environment_id {
            Some(e) => st.db.get_environment(e).await.ok().map(|e| e.name),
            None => None,
        };
        let app_name = match b.app_id {
            Some(a) => st.db.get_app(a).await.ok().map(|a| a.name),
            None => None,
        };
        roles.push(BindingOut {
            role_id: b.role_id,
            role_name,
            environment_id: b.environment_id,
            environment_name,
            app_id: b.app_id,
            app_name,
        });
    }
    Ok(UserOut {
        id: u.id,
        username: u.username,
        is_admin: u.is_admin.0,
        disabled: u.disabled.0,
        roles,
        created_at: u.created_at.into(),
    })
}

/// Checks that every binding names an existing role, environment and app.
async fn check_bindings(
    st: &State,
    roles: &[BindingIn],
) -> Result<Vec<(RoleId, Option<EnvironmentId>, Option<AppId>)>, ApiError> {
    let mut out = Vec::new();
    for b in roles {
        let role = st
            .db
            .get_role(b.role_id)
            .await
            .map_err(|_| ApiError::invalid("roles", format!("no role {}", b.role_id)))?;
        if role.permissions.contains(&Permission::Admin)
            && (b.environment_id.is_some() || b.app_id.is_some())
        {
            return Err(ApiError::invalid(
                "roles",
                format!(
                    "role '{}' holds admin, which is platform-wide: bind it without environment or app",
                    role.name
                ),
            ));
        }
        if let Some(e) = b.environment_id {
            st.db
                .get_environment(e)
                .await
                .map_err(|_| ApiError::invalid("roles", format!("no environment {e}")))?;
        }
        if let Some(a) = b.app_id {
            st.db
                .get_app(a)
                .await
                .map_err(|_| ApiError::invalid("roles", format!("no app {a}")))?;
        }
        out.push((b.role_id, b.environment_id, b.app_id));
    }
    Ok(out)
}

fn bindings_json(roles: &[BindingIn]) -> serde_json::Value {
    serde_json::Value::Array(
        roles
            .iter()
            .map(|b| serde_json::json!({"role_id": b.role_id, "environment_id": b.environment_id, "app_id": b.app_id}))
            .collect(),
    )
}

#[derive(Default)]
pub struct PeopleApi;

#[OpenApi(tag = "ApiTags::People")]
impl PeopleApi {
    /// List users (admins).
    #[oai(path = "/api/users", method = "get", operation_id = "listUsers")]
    async fn list_users(
        &self,
        auth: Auth,
        st: Data<&Arc<State>>,
    ) -> ApiResult<Json<Vec<UserOut>>, { AUTH | FORBIDDEN }> {
        auth.0.require_admin()?;
        let mut out = Vec::new();
        for u in st.db.list_users().await? {
            out.push(user_out(&st, u).await?);
        }
        Ok(Json(out))
    }

    /// Create a user with a password and roles (admins).
    #[oai(path = "/api/users", method = "post", operation_id = "createUser")]
    async fn create_user(
        &self,
        auth: Auth,
        st: Data<&Arc<State>>,
        body: JsonBody<UserIn>,
    ) -> ApiResult<Created<UserOut>, { AUTH | BODY | FORBIDDEN | CONFLICT }> {
        auth.0.require_admin()?;
        let username = domain::Name::parse(&body.username).map_err(ApiError::field("username"))?;
        if username
            .as_str()
            .eq_ignore_ascii_case(hippo_shared::db::Db::WEBHOOK_USER)
        {
            return Err(ApiError::invalid(
                "username",
                "username \"webhook\" is reserved: releases requested by Git webhooks are requested by it",
            )
            .into());
        }
        let roles = check_bindings(&st, &body.roles).await?;
        let hash = st.login_guard.hash(&body.password).await?;
        let id = st
            .db
            .create_user(username.as_str(), &hash, body.is_admin)
            .await?;
        st.db.set_bindings(id, &roles).await?;
        let changes = serde_json::json!({
            "username": username.as_str(), "is_admin": body.is_admin,
            "password": "set", "roles": bindings_json(&body.roles),
        });
        audit::record(&st, &auth.0, "user", Some(id), "create", changes).await;
        Ok(Created::Ok(Json(
            user_out(&st, st.db.get_user(id).await?).await?,
        )))
    }

    /// Get a user (admins, or the user themself).
    #[oai(path = "/api/users/:id", method = "get", operation_id = "getUser")]
    async fn get_user(
        &self,
        auth: Auth,
        st: Data<&Arc<State>>,
        id: Path<UserId>,
    ) -> ApiResult<Json<UserOut>, { AUTH | FORBIDDEN | NOT_FOUND }> {
        if auth.0.id != id.0 {
            auth.0.require_admin()?;
        }
        Ok(Json(user_out(&st, st.db.get_user(id.0).await?).await?))
    }

    /// Change a user's password (a reset: their sessions and tokens end), admin flag, disabled
    /// flag or roles (admins). Not one's own password (`POST /api/me/password`), admin flag or
    /// disabled flag (409).
    #[oai(path = "/api/users/:id", method = "patch", operation_id = "updateUser")]
    async fn update_user(
        &self,
        auth: Auth,
        st: Data<&Arc<State>>,
        id: Path<UserId>,
        body: JsonBody<UserPatch>,
    ) -> ApiResult<Json<UserOut>, { AUTH | BODY | FORBIDDEN | NOT_FOUND | CONFLICT }> {
        auth.0.require_admin()?;
        st.db.get_user(id.0).await?;
        if id.0 == auth.0.id && (body.disabled == Some(true) || body.is_admin == Some(false)) {
            return Err(ApiError::conflict(
                "self_lockout",
                "you cannot disable yourself or take away your own admin flag",
            )
            .into());
        }
        if id.0 == auth.0.id && body.password.is_some() {
            return Err(ApiError::conflict(
                "own_password",
                "change your own password with POST /api/me/password, which asks for the current one",
            )
            .into());
        }
        let hash = match &body.password {
            Some(p) => Some(st.login_guard.hash(p).await?),
            None => None,
        };
        let roles = match &body.roles {
            Some(r) => Some(check_bindings(&st, r).await?),
            None => None,
        };
        st.db
            .update_user(id.0, hash.as_deref(), body.is_admin, body.disabled)
            .await?;
        if let Some(r) = &roles {
            st.db.set_bindings(id.0, r).await?;
        }
        let mut changes = serde_json::Map::new();
        if hash.is_some() {
            changes.insert("password".into(), "changed".into());
        }
        if let Some(a) = body.is_admin {
            changes.insert("is_admin".into(), a.into());
        }
        if let Some(d) = body.disabled {
            changes.insert("disabled".into(), d.into());
        }
        if let Some(r) = &body.roles {
            changes.insert("roles".into(), bindings_json(r));
        }
        audit::record(&st, &auth.0, "user", Some(id.0), "update", changes.into()).await;
        Ok(Json(user_out(&st, st.db.get_user(id.0).await?).await?))
    }

    /// List roles.
    #[oai(path = "/api/roles", method = "get", operation_id = "listRoles")]
    async fn list_roles(
        &self,
        _auth: Auth,
        st: Data<&Arc<State>>,
    ) -> ApiResult<Json<Vec<RoleOut>>, AUTH> {
        Ok(Json(
            st.db
                .list_roles()
                .await?
                .into_iter()
                .map(Into::into)
                .collect(),
        ))
    }

    /// Create a role: a name and its permissions (admins).
    #[oai(path = "/api/roles", method = "post", operation_id = "createRole")]
    async fn create_role(
        &self,
        auth: Auth,
        st: Data<&Arc<State>>,
        body: JsonBody<RoleIn>,
    ) -> ApiResult<Created<RoleOut>, { AUTH | BODY | FORBIDDEN | CONFLICT }> {
        auth.0.require_admin()?;
        let name = domain::Name::parse(&body.name).map_err(ApiError::field("name"))?;
        let mut permissions: Vec<Permission> = body.permissions.clone();
        permissions.sort();
        permissions.dedup();
        if permissions.is_empty() {
            return Err(ApiError::invalid("permissions", "give at least one permission").into());
        }
        let id = st.db.create_role(name.as_str(), &permissions).await?;
        let role: RoleOut = st.db.get_role(id).await?.into();
        let changes = serde_json::json!({"name": role.name, "permissions": permissions.iter().map(|p| p.as_str()).collect::<Vec<_>>()});
        audit::record(&st, &auth.0, "role", Some(id), "create", changes).await;
        Ok(Created::Ok(Json(role)))
    }

    /// Your API tokens (never the tokens themselves).
    #[oai(path = "/api/tokens", method = "get", operation_id = "listTokens")]
    async fn list_tokens(
        &self,
        auth: Auth,
        st: Data<&Arc<State>>,
    ) -> ApiResult<Json<Vec<TokenOut>>, AUTH> {
        Ok(Json(
            st.db
                .api_tokens(auth.0.id)
                .await?
                .into_iter()
                .map(Into::into)
                .collect(),
        ))
    }

    /// Create a long-lived API token for automation. It acts as you, with your roles. The
    /// token is in this answer only; Hippo keeps its hash.
    #[oai(path = "/api/tokens", method = "post", operation_id = "createToken")]
    async fn create_token(
        &self,
        auth: Auth,
        st: Data<&Arc<State>>,
        body: JsonBody<TokenIn>,
    ) -> ApiResult<Created<NewTokenOut>, { AUTH | BODY }> {
        let name = domain::Name::parse(&body.name).map_err(ApiError::field("name"))?;
        let expires_at = match body.expires_in_days {
            Some(0) => {
                return Err(ApiError::invalid(
                    "expires_in_days",
                    "expires_in_days must be at least 1",
                )
                .into());
            }
            Some(d) if d > 3650 => {
                return Err(ApiError::invalid(
                    "expires_in_days",
                    "expires_in_days is at most 3650",
                )
                .into());
            }
            Some(d) => Some(
                (chrono::Utc::now() + chrono::Duration::days(i64::from(d)))
                    .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            ),
            None => None,
        };
        let (token, hash) = new_token();
        let t = st
            .db
            .create_api_token(auth.0.id, name.as_str(), &hash, expires_at)
            .await?;
        let changes = serde_json::json!({"name": t.name, "expires_at": t.expires_at});
        audit::record(&st, &auth.0, "token", Some(t.id), "create", changes).await;
        Ok(Created::Ok(Json(NewTokenOut {
            id: t.id,
            name: t.name,
            token,
            expires_at: t.expires_at.map(Into::into),
        })))
    }

    /// Revoke one of your API tokens; it stops working at once.
    #[oai(
        path = "/api/tokens/:id",
        method = "delete",
        operation_id = "revokeToken"
    )]
    async fn revoke_token(
        &self,
        auth: Auth,
        st: Data<&Arc<State>>,
        id: Path<TokenId>,
    ) -> ApiResult<Deleted, { AUTH | NOT_FOUND }> {
        if !st.db.revoke_api_token(auth.0.id, id.0).await? {
            return Err(ApiError::not_found("token").into());
        }
        audit::record(
            &st,
            &auth.0,
            "token",
            Some(id.0),
            "revoke",
            serde_json::json!({}),
        )
        .await;
        Ok(Deleted::Ok)
    }
}

impl poem_openapi::types::Example for RoleIn {
    fn example() -> Self {
        Self {
            name: "developer".into(),
            permissions: vec![Permission::Request],
        }
    }
}

impl poem_openapi::types::Example for TokenIn {
    fn example() -> Self {
        Self {
            name: "ci deploys".into(),
            expires_in_days: Some(90),
        }
    }
}

impl poem_openapi::types::Example for UserIn {
    fn example() -> Self {
        Self {
            username: "li".into(),
            password: "correct horse battery".into(),
            is_admin: false,
            roles: vec![BindingIn {
                role_id: RoleId::new(1),
                environment_id: Some(EnvironmentId::new(1)),
                app_id: None,
            }],
        }
    }
}
