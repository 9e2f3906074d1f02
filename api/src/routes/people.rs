//! `/api/users`, `/api/roles` (admins) and `/api/tokens` (each user's own API tokens).
//! A role is a named set of permissions; a user holds roles, each for one environment and/or
//! one app or for all of them ("may release `cart` to `test`, may only request for `prod`").
use super::{ApiResult, Created, Deleted};
use crate::app::ApiTags;
use crate::audit;
use crate::auth::Auth;
use crate::problem::ApiError;
use crate::state::State;
use hippo_shared::crypto::new_token;
use hippo_shared::db::people::{ApiToken, Role, UserRow};
use hippo_shared::domain::{Name, Permission};
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use std::sync::Arc;

/// Passwords: at least this many characters.
const MIN_PASSWORD: usize = 10;

fn check_password(p: &str) -> Result<(), ApiError> {
    if p.chars().count() < MIN_PASSWORD {
        return Err(ApiError::invalid(
            "password",
            format!("password must have at least {MIN_PASSWORD} characters"),
        ));
    }
    Ok(())
}

/// A role held by a user, for one environment and/or app (absent: all).
#[derive(Object, Clone)]
pub struct BindingIo {
    pub role_id: i64,
    pub environment_id: Option<i64>,
    pub app_id: Option<i64>,
}

#[derive(Object)]
pub struct UserOut {
    pub id: i64,
    pub username: String,
    pub is_admin: bool,
    pub disabled: bool,
    pub roles: Vec<BindingIo>,
    pub created_at: String,
}

#[derive(Object)]
pub struct UserIn {
    pub username: String,
    pub password: String,
    #[oai(default)]
    pub is_admin: bool,
    #[oai(default)]
    pub roles: Vec<BindingIo>,
}

/// A change of a user; what is absent stays as it is.
#[derive(Object)]
pub struct UserPatch {
    pub password: Option<String>,
    pub is_admin: Option<bool>,
    /// A disabled user cannot log in and their tokens stop working.
    pub disabled: Option<bool>,
    /// Replaces the user's roles.
    pub roles: Option<Vec<BindingIo>>,
}

#[derive(Object)]
pub struct RoleIn {
    pub name: String,
    /// edit_configs, request, review, release, manage_hosts, admin.
    pub permissions: Vec<String>,
}

#[derive(Object)]
pub struct RoleOut {
    pub id: i64,
    pub name: String,
    pub permissions: Vec<String>,
}

impl From<Role> for RoleOut {
    fn from(r: Role) -> Self {
        Self {
            id: r.id,
            name: r.name,
            permissions: r
                .permissions
                .iter()
                .map(|p| p.as_str().to_owned())
                .collect(),
        }
    }
}

#[derive(Object)]
pub struct TokenIn {
    /// What the token is for ("ci deploys").
    pub name: String,
    /// Days until it expires; absent: never.
    pub expires_in_days: Option<u32>,
}

#[derive(Object)]
pub struct TokenOut {
    pub id: i64,
    pub name: String,
    pub expires_at: Option<String>,
    pub created_at: String,
}

impl From<ApiToken> for TokenOut {
    fn from(t: ApiToken) -> Self {
        Self {
            id: t.id,
            name: t.name,
            expires_at: t.expires_at,
            created_at: t.created_at,
        }
    }
}

/// A new token: `token` is shown this once (only its hash is kept).
#[derive(Object)]
pub struct NewTokenOut {
    pub id: i64,
    pub name: String,
    pub token: String,
    pub expires_at: Option<String>,
}

async fn user_out(st: &State, u: UserRow) -> ApiResult<UserOut> {
    let roles = st
        .db
        .bindings(u.id)
        .await?
        .into_iter()
        .map(|b| BindingIo {
            role_id: b.role_id,
            environment_id: b.environment_id,
            app_id: b.app_id,
        })
        .collect();
    Ok(UserOut {
        id: u.id,
        username: u.username,
        is_admin: u.is_admin.0,
        disabled: u.disabled.0,
        roles,
        created_at: u.created_at,
    })
}

/// Checks that every binding names an existing role, environment and app.
async fn check_bindings(
    st: &State,
    roles: &[BindingIo],
) -> ApiResult<Vec<(i64, Option<i64>, Option<i64>)>> {
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

fn bindings_json(roles: &[BindingIo]) -> serde_json::Value {
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
    #[oai(path = "/api/users", method = "get")]
    async fn list_users(&self, auth: Auth, st: Data<&Arc<State>>) -> ApiResult<Json<Vec<UserOut>>> {
        auth.0.require_admin()?;
        let mut out = Vec::new();
        for u in st.db.list_users().await? {
            out.push(user_out(&st, u).await?);
        }
        Ok(Json(out))
    }

    /// Create a user with a password and roles (admins).
    #[oai(path = "/api/users", method = "post")]
    async fn create_user(
        &self,
        auth: Auth,
        st: Data<&Arc<State>>,
        body: Json<UserIn>,
    ) -> ApiResult<Created<UserOut>> {
        auth.0.require_admin()?;
        let username = Name::parse(&body.username).map_err(ApiError::field("username"))?;
        check_password(&body.password)?;
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
    #[oai(path = "/api/users/:id", method = "get")]
    async fn get_user(
        &self,
        auth: Auth,
        st: Data<&Arc<State>>,
        id: Path<i64>,
    ) -> ApiResult<Json<UserOut>> {
        if auth.0.id != id.0 {
            auth.0.require_admin()?;
        }
        Ok(Json(user_out(&st, st.db.get_user(id.0).await?).await?))
    }

    /// Change a user's password, admin flag, disabled flag or roles (admins).
    #[oai(path = "/api/users/:id", method = "patch")]
    async fn update_user(
        &self,
        auth: Auth,
        st: Data<&Arc<State>>,
        id: Path<i64>,
        body: Json<UserPatch>,
    ) -> ApiResult<Json<UserOut>> {
        auth.0.require_admin()?;
        st.db.get_user(id.0).await?;
        if id.0 == auth.0.id && (body.disabled == Some(true) || body.is_admin == Some(false)) {
            return Err(ApiError::conflict(
                "self_lockout",
                "you cannot disable yourself or take away your own admin flag",
            ));
        }
        let hash = match &body.password {
            Some(p) => {
                check_password(p)?;
                Some(st.login_guard.hash(p).await?)
            }
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
    #[oai(path = "/api/roles", method = "get")]
    async fn list_roles(
        &self,
        _auth: Auth,
        st: Data<&Arc<State>>,
    ) -> ApiResult<Json<Vec<RoleOut>>> {
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
    #[oai(path = "/api/roles", method = "post")]
    async fn create_role(
        &self,
        auth: Auth,
        st: Data<&Arc<State>>,
        body: Json<RoleIn>,
    ) -> ApiResult<Created<RoleOut>> {
        auth.0.require_admin()?;
        let name = Name::parse(&body.name).map_err(ApiError::field("name"))?;
        let mut permissions = body
            .permissions
            .iter()
            .map(|p| Permission::parse(p))
            .collect::<Result<Vec<_>, _>>()
            .map_err(ApiError::field("permissions"))?;
        permissions.sort();
        permissions.dedup();
        if permissions.is_empty() {
            return Err(ApiError::invalid(
                "permissions",
                "give at least one permission",
            ));
        }
        let id = st.db.create_role(name.as_str(), &permissions).await?;
        let role: RoleOut = st.db.get_role(id).await?.into();
        let changes = serde_json::json!({"name": role.name, "permissions": role.permissions});
        audit::record(&st, &auth.0, "role", Some(id), "create", changes).await;
        Ok(Created::Ok(Json(role)))
    }

    /// Your API tokens (never the tokens themselves).
    #[oai(path = "/api/tokens", method = "get")]
    async fn list_tokens(
        &self,
        auth: Auth,
        st: Data<&Arc<State>>,
    ) -> ApiResult<Json<Vec<TokenOut>>> {
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
    #[oai(path = "/api/tokens", method = "post")]
    async fn create_token(
        &self,
        auth: Auth,
        st: Data<&Arc<State>>,
        body: Json<TokenIn>,
    ) -> ApiResult<Created<NewTokenOut>> {
        let name = Name::parse(&body.name).map_err(ApiError::field("name"))?;
        let expires_at = match body.expires_in_days {
            Some(0) => {
                return Err(ApiError::invalid(
                    "expires_in_days",
                    "expires_in_days must be at least 1",
                ));
            }
            Some(d) if d > 3650 => {
                return Err(ApiError::invalid(
                    "expires_in_days",
                    "expires_in_days is at most 3650",
                ));
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
            expires_at: t.expires_at,
        })))
    }

    /// Revoke one of your API tokens; it stops working at once.
    #[oai(path = "/api/tokens/:id", method = "delete")]
    async fn revoke_token(
        &self,
        auth: Auth,
        st: Data<&Arc<State>>,
        id: Path<i64>,
    ) -> ApiResult<Deleted> {
        if !st.db.revoke_api_token(auth.0.id, id.0).await? {
            return Err(ApiError::not_found("token"));
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
