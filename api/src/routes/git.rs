//! `/api/release-configs/{id}/git/*`: the branches, tags and commits of a config's repository
//! (fetched first), for picking what to release.
use super::{AUTH, ApiResult, ApiTags, BAD_PARAM, FORBIDDEN, INVALID, NOT_FOUND, UPSTREAM};
use crate::auth::Auth;
use crate::problem::ApiError;
use crate::repo;
use crate::state::State;
use hippo_shared::domain;
use hippo_shared::domain::ConfigId;
use hippo_worker::git::{CommitInfo, GitError, RefInfo, RepoCache};
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use std::sync::Arc;

#[derive(Object)]
pub struct RefOut {
    pub name: String,
    /// The full commit id it points at.
    pub commit: String,
    /// Commit time, unix seconds.
    pub time: i64,
}

impl From<RefInfo> for RefOut {
    fn from(r: RefInfo) -> Self {
        Self {
            name: r.name,
            commit: r.commit,
            time: r.time,
        }
    }
}

#[derive(Object)]
pub struct CommitOut {
    pub id: String,
    pub short_id: String,
    pub author: String,
    /// Commit time, unix seconds.
    pub time: i64,
    pub message: String,
}

impl From<CommitInfo> for CommitOut {
    fn from(c: CommitInfo) -> Self {
        Self {
            id: c.id,
            short_id: c.short_id,
            author: c.author,
            time: c.time,
            message: c.message,
        }
    }
}

/// Runs `f` on the config's synced repository, if the caller may see the config (else 404).
async fn with_repo<T: Send + 'static>(
    st: &State,
    auth: &Auth,
    id: ConfigId,
    f: impl FnOnce(&RepoCache, &str) -> Result<T, GitError> + Send + 'static,
) -> Result<T, ApiError> {
    let config = st.db.get_config(id).await?;
    auth.0
        .require_sees(config.environment_id, Some(config.app_id), "release config")?;
    let url = repo::synced(st, &config, false, auth.0.is_admin).await?;
    let repos = st.repos.clone();
    tokio::task::spawn_blocking(move || f(&repos, &url))
        .await
        .map_err(ApiError::internal)?
        .map_err(repo::git_error)
}

/// The SSH host key pinned for a config's Git server (on its first fetch).
#[derive(Object)]
pub struct GitHostKeyOut {
    /// `host` or `host:port`.
    pub host: String,
    /// `SHA256:…`, as `ssh-keygen -l` prints it.
    pub fingerprint: String,
    pub pinned_at: crate::text::Timestamp,
}

/// The config, if visible, and the `host[:port]` its SSH repository URL names (404 if the URL
/// is not SSH).
async fn ssh_host(st: &State, auth: &Auth, id: ConfigId) -> Result<String, ApiError> {
    let config = st.db.get_config(id).await?;
    auth.0
        .require_sees(config.environment_id, Some(config.app_id), "release config")?;
    hippo_worker::git::ssh_host_of(config.spec.repo_url.as_str())
        .ok_or_else(|| ApiError::not_found("pinned host key (the repository URL is not SSH)"))
}

#[derive(Default)]
pub struct GitApi;

#[OpenApi(prefix_path = "/api/release-configs", tag = "ApiTags::Git")]
impl GitApi {
    /// Branches of the config's repository (fetched first).
    #[oai(
        path = "/:id/git/branches",
        method = "get",
        operation_id = "listBranches"
    )]
    async fn branches(
        &self,
        auth: Auth,
        st: Data<&Arc<State>>,
        id: Path<ConfigId>,
    ) -> ApiResult<Json<Vec<RefOut>>, { AUTH | NOT_FOUND | UPSTREAM }> {
        let refs = with_repo(&st, &auth, id.0, |r, url| r.branches(url)).await?;
        Ok(Json(refs.into_iter().map(Into::into).collect()))
    }

    /// Tags of the config's repository, newest first.
    #[oai(path = "/:id/git/tags", method = "get", operation_id = "listTags")]
    async fn tags(
        &self,
        auth: Auth,
        st: Data<&Arc<State>>,
        id: Path<ConfigId>,
    ) -> ApiResult<Json<Vec<RefOut>>, { AUTH | NOT_FOUND | UPSTREAM }> {
        let refs = with_repo(&st, &auth, id.0, |r, url| r.tags(url)).await?;
        Ok(Json(refs.into_iter().map(Into::into).collect()))
    }

    /// The latest 30 commits of a branch.
    #[oai(
        path = "/:id/git/commits",
        method = "get",
        operation_id = "listCommits"
    )]
    async fn commits(
        &self,
        auth: Auth,
        st: Data<&Arc<State>>,
        id: Path<ConfigId>,
        /// A branch name.
        #[oai(validator(
            min_length = 1,
            max_length = 255,
            pattern = r"^[^\-/\s~^:?*\[\\\u0000-\u001f\u007f-\u009f][^\s~^:?*\[\\\u0000-\u001f\u007f-\u009f]*$"
        ))]
        branch: Query<String>,
    ) -> ApiResult<Json<Vec<CommitOut>>, { AUTH | BAD_PARAM | NOT_FOUND | INVALID | UPSTREAM }>
    {
        let domain::GitRef::Branch(name) =
            domain::GitRef::branch(&branch.0).map_err(ApiError::field("branch"))?
        else {
            return Err(ApiError::invalid("branch", "branch is not a branch name").into());
        };
        let commits = with_repo(&st, &auth, id.0, move |r, url| r.commits(url, &name, 30)).await?;
        Ok(Json(commits.into_iter().map(Into::into).collect()))
    }

    /// The Git server's SSH host key, pinned on the first fetch over SSH (404 before, or for a
    /// repository that is not reached over SSH). A fetch offered another key fails.
    #[oai(
        path = "/:id/git/host-key",
        method = "get",
        operation_id = "getGitHostKey"
    )]
    async fn host_key(
        &self,
        auth: Auth,
        st: Data<&Arc<State>>,
        id: Path<ConfigId>,
    ) -> ApiResult<Json<GitHostKeyOut>, { AUTH | NOT_FOUND }> {
        let host = ssh_host(&st, &auth, id.0).await?;
        let k = st.db.git_host_key(&host).await?;
        Ok(Json(GitHostKeyOut {
            host: k.host,
            fingerprint: k.fingerprint,
            pinned_at: k.pinned_at.into(),
        }))
    }

    /// Forget the Git server's pinned host key (admins; after a real reinstall of the server):
    /// the next fetch pins the key it is offered. For every config on that server.
    #[oai(
        path = "/:id/git/host-key",
        method = "delete",
        operation_id = "forgetGitHostKey"
    )]
    async fn forget_host_key(
        &self,
        auth: Auth,
        st: Data<&Arc<State>>,
        id: Path<ConfigId>,
    ) -> ApiResult<super::Deleted, { AUTH | FORBIDDEN | NOT_FOUND }> {
        let host = ssh_host(&st, &auth, id.0).await?;
        auth.0.require_admin()?;
        let k = st.db.git_host_key(&host).await?;
        st.db.forget_git_host_key(&host).await?;
        let changes =
            serde_json::json!({"git_host_key": {"host": k.host, "forgotten": k.fingerprint}});
        crate::audit::record(&st, &auth.0, "config", Some(id.0), "update", changes).await;
        Ok(super::Deleted::Ok)
    }
}
