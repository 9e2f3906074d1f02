//! `/api/hosts`: target servers. A host's SSH host key is pinned on first contact; an admin
//! forgets it (`DELETE /api/hosts/{id}/host-key`) to accept a new one.
use super::{
    AUTH, ApiResult, ApiTags, BAD_PARAM, BODY, CONFLICT, Created, Deleted, FORBIDDEN, NOT_FOUND,
};
use crate::audit;
use crate::auth::Auth;
use crate::body::JsonBody;
use crate::problem::ApiError;
use crate::state::State;
use crate::text::{Category, Description, HostAddrText, Name, SshUserText, Timestamp};
use crate::values::{CheckReason, PathKind};
use hippo_shared::db::inventory::{Host, HostCheck, HostInput};
use hippo_shared::domain::{self, HostAddr, SshUser};
use hippo_shared::domain::{ConfigId, EnvironmentId, HostId, Permission};
use hippo_worker::ssh::HostKey;
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use std::sync::Arc;

#[derive(Object)]
pub struct HostOut {
    pub id: HostId,
    pub environment_id: EnvironmentId,
    pub environment_name: String,
    pub name: String,
    pub addr: String,
    pub port: u16,
    pub username: String,
    pub category: String,
    pub description: String,
    /// The pinned host key (`type base64`); absent until Hippo has connected once.
    #[oai(skip_serializing_if_is_none)]
    pub host_key: Option<String>,
    /// Its SHA256 fingerprint, as `ssh-keygen -l` prints it; absent with the key.
    #[oai(skip_serializing_if_is_none)]
    pub host_key_fingerprint: Option<String>,
    #[oai(skip_serializing_if_is_none)]
    pub last_check: Option<HostCheckOut>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A path of a release config using the host, and whether the login user can write there.
#[derive(Object, Clone)]
pub struct PathCheckOut {
    pub config_id: ConfigId,
    pub kind: PathKind,
    pub path: String,
    pub writable: bool,
}

/// The result of a connectivity check (`checkHost`); a host's `last_check` is its latest.
#[derive(Object, Clone)]
pub struct HostCheckOut {
    pub host_id: HostId,
    /// Reachable, host key as pinned, key login works, every path writable.
    pub ok: bool,
    #[oai(skip_serializing_if_is_none)]
    pub reason: Option<CheckReason>,
    /// What went wrong, for people.
    #[oai(skip_serializing_if_is_none)]
    pub message: Option<String>,
    /// Round trip of one command once logged in.
    #[oai(skip_serializing_if_is_none)]
    pub latency_ms: Option<u64>,
    /// The key the host presented (after `host_key_changed`: the new, refused one).
    #[oai(skip_serializing_if_is_none)]
    pub host_key_fingerprint: Option<String>,
    /// The key was pinned by this check (first contact).
    pub pinned: bool,
    /// Who Hippo is on the host.
    #[oai(skip_serializing_if_is_none)]
    pub remote_user: Option<String>,
    pub paths: Vec<PathCheckOut>,
    pub duration_ms: u64,
    pub checked_at: Timestamp,
}

pub fn check_out(host_id: HostId, at: &str, c: HostCheck) -> HostCheckOut {
    HostCheckOut {
        host_id,
        ok: c.ok,
        reason: c.reason.as_deref().map(CheckReason::parse),
        message: c.message,
        latency_ms: c.latency_ms,
        host_key_fingerprint: c.host_key_fingerprint,
        pinned: c.pinned,
        remote_user: c.remote_user,
        paths: c
            .paths
            .into_iter()
            .map(|p| PathCheckOut {
                config_id: p.config_id,
                kind: if p.kind == "deploy" {
                    PathKind::Deploy
                } else {
                    PathKind::Versions
                },
                path: p.path,
                writable: p.writable,
            })
            .collect(),
        duration_ms: c.duration_ms,
        checked_at: at.to_owned().into(),
    }
}

/// A host as the API shows it, with its environment's name.
async fn shown(st: &State, h: Host) -> Result<HostOut, ApiError> {
    let name = st.db.get_environment(h.environment_id).await?.name;
    Ok(out(h, name))
}

pub fn out(h: Host, environment_name: String) -> HostOut {
    {
        let last_check = match (h.last_check(), &h.checked_at) {
            (Some(c), Some(at)) => Some(check_out(h.id, at, c)),
            _ => None,
        };
        let key = match (h.host_key_type, h.host_key) {
            (Some(t), Some(k)) => Some(HostKey {
                key_type: t,
                key_base64: k,
            }),
            _ => None,
        };
        HostOut {
            id: h.id,
            environment_id: h.environment_id,
            environment_name,
            name: h.name,
            addr: h.addr,
            port: u16::try_from(h.port).unwrap_or(22),
            username: h.username,
            category: h.category,
            description: h.description,
            host_key_fingerprint: key.as_ref().map(HostKey::fingerprint),
            host_key: key.map(|k| k.to_openssh()),
            last_check,
            created_at: h.created_at.into(),
            updated_at: h.updated_at.into(),
        }
    }
}

fn default_port() -> u16 {
    22
}
fn default_user() -> SshUserText {
    "root".into()
}

#[derive(Object)]
#[oai(example)]
pub struct HostIn {
    pub environment_id: EnvironmentId,
    /// Unique in its environment.
    pub name: Name,
    pub addr: HostAddrText,
    #[oai(default = "default_port", validator(minimum(value = "1")))]
    pub port: u16,
    /// Login user; the platform key (`GET /api/ssh-key`) must be in its authorized_keys.
    #[oai(default = "default_user")]
    pub username: SshUserText,
    #[oai(default)]
    pub category: Category,
    #[oai(default)]
    pub description: Description,
}

impl HostIn {
    async fn parse(&self, st: &State) -> Result<HostInput, ApiError> {
        if self.port == 0 {
            return Err(ApiError::invalid(
                "port",
                "port must be between 1 and 65535",
            ));
        }
        st.db
            .get_environment(self.environment_id)
            .await
            .map_err(|_| {
                ApiError::invalid("environment_id", "environment_id names no environment")
            })?;
        let category = self.category.trim();
        Ok(HostInput {
            environment_id: self.environment_id,
            name: domain::Name::parse(&self.name).map_err(ApiError::field("name"))?,
            addr: HostAddr::parse(&self.addr).map_err(ApiError::field("addr"))?,
            port: self.port,
            username: SshUser::parse(&self.username).map_err(ApiError::field("username"))?,
            category: category.to_owned(),
            description: self.description.trim().to_owned(),
        })
    }
}

#[derive(Default)]
pub struct HostsApi;

/// The host, if the caller holds any permission in its environment (else 404).
async fn visible(st: &State, auth: &Auth, id: HostId) -> Result<Host, ApiError> {
    let host = st.db.get_host(id).await?;
    auth.0.require_sees(host.environment_id, None, "host")?;
    Ok(host)
}

#[OpenApi(prefix_path = "/api/hosts", tag = "ApiTags::Hosts")]
impl HostsApi {
    /// List hosts, optionally of one environment and/or category.
    #[oai(path = "/", method = "get", operation_id = "listHosts")]
    async fn list(
        &self,
        auth: Auth,
        st: Data<&Arc<State>>,
        environment_id: Query<Option<EnvironmentId>>,
        #[oai(validator(max_length = 64))] category: Query<Option<String>>,
    ) -> ApiResult<Json<Vec<HostOut>>, { AUTH | BAD_PARAM }> {
        let hosts = st
            .db
            .list_hosts(environment_id.0, category.0.as_deref())
            .await?;
        let names: std::collections::HashMap<EnvironmentId, String> = st
            .db
            .list_environments()
            .await?
            .into_iter()
            .map(|e| (e.id, e.name))
            .collect();
        // Only the hosts of environments the caller holds a permission in.
        Ok(Json(
            hosts
                .into_iter()
                .filter(|h| auth.0.sees(h.environment_id, None))
                .map(|h| {
                    let name = names.get(&h.environment_id).cloned().unwrap_or_default();
                    out(h, name)
                })
                .collect(),
        ))
    }

    /// Add a host.
    #[oai(path = "/", method = "post", operation_id = "createHost")]
    async fn create(
        &self,
        auth: Auth,
        st: Data<&Arc<State>>,
        body: JsonBody<HostIn>,
    ) -> ApiResult<Created<HostOut>, { AUTH | BODY | FORBIDDEN | CONFLICT }> {
        auth.0
            .require(Permission::ManageHosts, Some(body.environment_id), None)?;
        let input = body.parse(&st).await?;
        let host = shown(&st, st.db.create_host(&input).await?).await?;
        let changes = audit::diff(None, audit::view(&host));
        audit::record(&st, &auth.0, "host", Some(host.id), "create", changes).await;
        Ok(Created::Ok(Json(host)))
    }

    /// Get a host.
    #[oai(path = "/:id", method = "get", operation_id = "getHost")]
    async fn get(
        &self,
        auth: Auth,
        st: Data<&Arc<State>>,
        id: Path<HostId>,
    ) -> ApiResult<Json<HostOut>, { AUTH | NOT_FOUND }> {
        let host = visible(&st, &auth, id.0).await?;
        Ok(Json(shown(&st, host).await?))
    }

    /// Replace a host. Changing its address or port forgets the pinned host key.
    #[oai(path = "/:id", method = "put", operation_id = "updateHost")]
    async fn update(
        &self,
        auth: Auth,
        st: Data<&Arc<State>>,
        id: Path<HostId>,
        body: JsonBody<HostIn>,
    ) -> ApiResult<Json<HostOut>, { AUTH | BODY | FORBIDDEN | NOT_FOUND | CONFLICT }> {
        let before = shown(&st, visible(&st, &auth, id.0).await?).await?;
        // Moving a host needs the permission in both environments.
        for env in [before.environment_id, body.environment_id] {
            auth.0.require(Permission::ManageHosts, Some(env), None)?;
        }
        if before.environment_id != body.environment_id {
            let users: Vec<ConfigId> = st
                .db
                .list_configs(None, Some(before.environment_id))
                .await?
                .into_iter()
                .filter(|c| c.spec.host_ids.contains(&id.0))
                .map(|c| c.id)
                .collect();
            if !users.is_empty() {
                return Err(ApiError::conflict(
                    "in_use",
                    format!(
                        "host {} is a target of release configs {users:?} of its environment; remove it there before moving it",
                        id.0
                    ),
                ).into());
            }
        }
        let input = body.parse(&st).await?;
        let host = shown(&st, st.db.update_host(id.0, &input).await?).await?;
        let changes = audit::diff(audit::view(&before), audit::view(&host));
        audit::record(&st, &auth.0, "host", Some(id.0), "update", changes).await;
        Ok(Json(host))
    }

    /// Delete a host.
    #[oai(path = "/:id", method = "delete", operation_id = "deleteHost")]
    async fn delete(
        &self,
        auth: Auth,
        st: Data<&Arc<State>>,
        id: Path<HostId>,
    ) -> ApiResult<Deleted, { AUTH | FORBIDDEN | NOT_FOUND | CONFLICT }> {
        let before = shown(&st, visible(&st, &auth, id.0).await?).await?;
        auth.0
            .require(Permission::ManageHosts, Some(before.environment_id), None)?;
        st.db.delete_host(id.0).await?;
        let changes = audit::diff(audit::view(&before), None);
        audit::record(&st, &auth.0, "host", Some(id.0), "delete", changes).await;
        Ok(Deleted::Ok)
    }

    /// Forget the pinned host key: the next connection pins whatever key the host presents.
    /// Use it after verifying that a host was reinstalled.
    #[oai(
        path = "/:id/host-key",
        method = "delete",
        operation_id = "forgetHostKey"
    )]
    async fn forget_key(
        &self,
        auth: Auth,
        st: Data<&Arc<State>>,
        id: Path<HostId>,
    ) -> ApiResult<Deleted, { AUTH | FORBIDDEN | NOT_FOUND }> {
        let before = shown(&st, visible(&st, &auth, id.0).await?).await?;
        auth.0
            .require(Permission::ManageHosts, Some(before.environment_id), None)?;
        st.db.set_host_key(id.0, None).await?;
        let changes = serde_json::json!({"host_key": {"from": before.host_key, "to": null}});
        audit::record(&st, &auth.0, "host", Some(id.0), "forget_host_key", changes).await;
        Ok(Deleted::Ok)
    }
}

impl poem_openapi::types::Example for HostIn {
    fn example() -> Self {
        Self {
            environment_id: EnvironmentId::new(1),
            name: "web-1".into(),
            addr: "10.0.0.5".into(),
            port: 22,
            username: "deploy".into(),
            category: "web".into(),
            description: String::new().as_str().into(),
        }
    }
}
