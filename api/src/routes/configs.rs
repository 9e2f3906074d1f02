//! `/api/release-configs`: how one app is released to one environment (one per pair), plus
//! the repository's branches, tags and commits, and the versions kept on the hosts.
use super::{ApiResult, Created, Deleted};
use crate::app::ApiTags;
use crate::audit;
use crate::auth::Auth;
use crate::problem::ApiError;
use crate::state::State;
use hippo_shared::db::configs::{
    ConfigSpec, Hooks, NoticeSpec, ReleaseConfig, RepoAuthSpec, SecretChange, Variable,
};
use hippo_shared::domain::Permission;
use hippo_shared::domain::{self, FailurePolicy, FilterMode, RemotePath, RepoUrl};
use hippo_worker::git::{CommitInfo, GitError, RefInfo};
use hippo_worker::notify::{Channel, dispatch};
use hippo_worker::package::{FileFilter, FilterMode as PackMode};
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{Enum, Object, OpenApi};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[oai(rename_all = "snake_case")]
pub enum RepoAuthKind {
    /// Public or local repository.
    None,
    /// SSH with the platform key.
    PlatformKey,
    /// HTTPS with `repo_username` and `repo_token`.
    Token,
}

#[derive(Enum, Clone, Copy)]
#[oai(rename_all = "snake_case")]
pub enum FilterModeDto {
    Include,
    Exclude,
}

#[derive(Enum, Clone, Copy)]
#[oai(rename_all = "snake_case")]
pub enum FailurePolicyDto {
    /// No host switches unless all prepared.
    AllOrNothing,
    /// Prepared hosts switch even if others failed.
    Continue,
}

#[derive(Object, Clone, Default)]
pub struct HooksDto {
    /// On the release server, in the repository cache, before fetching.
    #[oai(default)]
    pub before_checkout: String,
    /// On the release server, in the exported tree (builds go here).
    #[oai(default)]
    pub after_checkout: String,
    /// On each target, in the new version folder, before the switch.
    #[oai(default)]
    pub before_release: String,
    /// On each target, in the deploy path, after the switch.
    #[oai(default)]
    pub after_release: String,
}

#[derive(Object, Clone, Default)]
pub struct NoticeDto {
    /// off | dingtalk | sms | email | wecom | feishu | webhook
    #[oai(default)]
    pub channel: String,
    #[oai(default)]
    pub target: String,
}

fn default_keep() -> u32 {
    5
}
fn default_hook_timeout() -> u64 {
    600
}
fn default_filter_mode() -> FilterModeDto {
    FilterModeDto::Exclude
}
fn default_policy() -> FailurePolicyDto {
    FailurePolicyDto::AllOrNothing
}
fn default_auth() -> RepoAuthKind {
    RepoAuthKind::None
}

/// A regular release config (create or full replace).
#[derive(Object)]
pub struct ConfigIn {
    pub app_id: i64,
    pub environment_id: i64,
    /// Git URL: SSH (`git@host:o/r.git`, `ssh://`), HTTPS, `file://` or a local path.
    pub repo_url: String,
    #[oai(default = "default_auth")]
    pub repo_auth: RepoAuthKind,
    #[oai(default)]
    pub repo_username: String,
    /// Write-only. On update, leave out to keep the stored token.
    pub repo_token: Option<String>,
    #[oai(default)]
    pub review_enabled: bool,
    #[oai(default)]
    pub notice: NoticeDto,
    /// Write-only: where notices go, e.g. `[{"type": "dingtalk", "webhook_url": "…",
    /// "secret": "…"}, {"type": "email", "host": "smtp.example.com", "security": "starttls",
    /// "from": "…", "to": ["…"]}]` (types: dingtalk, wecom, feishu, webhook, email, sms). Stored
    /// sealed; read back redacted at `/api/release-configs/{id}/notice-channels`. On update,
    /// leave out to keep them; `[]` removes them.
    pub notice_channels: Option<Vec<serde_json::Value>>,
    /// Target hosts, all of the config's environment.
    pub host_ids: Vec<i64>,
    /// Becomes a link to the live version, e.g. `/var/www/html`.
    pub deploy_path: String,
    /// Holds one folder per version, e.g. `/data/hippo/repos`.
    pub versions_path: String,
    /// Versions kept on each host (1-100).
    #[oai(default = "default_keep")]
    pub keep_versions: u32,
    #[oai(default = "default_filter_mode")]
    pub filter_mode: FilterModeDto,
    /// gitignore-style patterns, one per line, `#` comments.
    #[oai(default)]
    pub filter: String,
    #[oai(default)]
    pub hooks: HooksDto,
    /// `KEY=value` lines given to every hook.
    #[oai(default)]
    pub variables: String,
    /// Hosts prepared at once (default: all).
    pub parallelism: Option<u32>,
    #[oai(default = "default_policy")]
    pub failure_policy: FailurePolicyDto,
    /// Seconds each hook may run (1-86400).
    #[oai(default = "default_hook_timeout")]
    pub hook_timeout_secs: u64,
}

#[derive(Object)]
pub struct ConfigOut {
    pub id: i64,
    pub app_id: i64,
    pub environment_id: i64,
    /// `regular` (custom releases come later).
    pub kind: String,
    pub repo_url: String,
    pub repo_auth: RepoAuthKind,
    pub repo_username: String,
    /// Whether a token is stored (it is never returned).
    pub has_repo_token: bool,
    pub review_enabled: bool,
    pub notice: NoticeDto,
    pub host_ids: Vec<i64>,
    pub deploy_path: String,
    pub versions_path: String,
    pub keep_versions: u32,
    pub filter_mode: FilterModeDto,
    pub filter: String,
    pub hooks: HooksDto,
    pub variables: String,
    pub parallelism: Option<u32>,
    pub failure_policy: FailurePolicyDto,
    pub hook_timeout_secs: u64,
    pub created_at: String,
    pub updated_at: String,
}

impl From<ReleaseConfig> for ConfigOut {
    fn from(c: ReleaseConfig) -> Self {
        let s = c.spec;
        let (repo_auth, repo_username) = match s.repo_auth {
            RepoAuthSpec::None => (RepoAuthKind::None, String::new()),
            RepoAuthSpec::PlatformKey => (RepoAuthKind::PlatformKey, String::new()),
            RepoAuthSpec::Token { username } => (RepoAuthKind::Token, username),
        };
        Self {
            id: c.id,
            app_id: c.app_id,
            environment_id: c.environment_id,
            kind: "regular".into(),
            repo_url: s.repo_url.to_string(),
            repo_auth,
            repo_username,
            has_repo_token: c.has_repo_secret,
            review_enabled: s.review_enabled,
            notice: NoticeDto {
                channel: s.notice.channel,
                target: s.notice.target,
            },
            host_ids: s.host_ids,
            deploy_path: s.deploy_path.to_string(),
            versions_path: s.versions_path.to_string(),
            keep_versions: s.keep_versions,
            filter_mode: match s.filter_mode {
                FilterMode::Include => FilterModeDto::Include,
                FilterMode::Exclude => FilterModeDto::Exclude,
            },
            filter: s.filter,
            hooks: HooksDto {
                before_checkout: s.hooks.before_checkout,
                after_checkout: s.hooks.after_checkout,
                before_release: s.hooks.before_release,
                after_release: s.hooks.after_release,
            },
            variables: s
                .variables
                .iter()
                .map(|v| format!("{}={}\n", v.name, v.value))
                .collect(),
            parallelism: s.parallelism,
            failure_policy: match s.failure_policy {
                FailurePolicy::AllOrNothing => FailurePolicyDto::AllOrNothing,
                FailurePolicy::Continue => FailurePolicyDto::Continue,
            },
            hook_timeout_secs: s.hook_timeout_secs,
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

const NOTICE_CHANNELS: [&str; 8] = [
    "", "off", "dingtalk", "sms", "email", "wecom", "feishu", "webhook",
];

impl ConfigIn {
    /// Parses every field; the first bad one is named in the error.
    async fn parse(
        &self,
        st: &State,
        creating: bool,
    ) -> Result<(ConfigSpec, Option<String>), ApiError> {
        st.db
            .get_app(self.app_id)
            .await
            .map_err(|_| ApiError::invalid("app_id", "app_id names no app"))?;
        st.db
            .get_environment(self.environment_id)
            .await
            .map_err(|_| {
                ApiError::invalid("environment_id", "environment_id names no environment")
            })?;
        let repo_url = RepoUrl::parse(&self.repo_url).map_err(ApiError::field("repo_url"))?;
        hippo_shared::net::check_repo_location(repo_url.as_str(), &st.settings.data_dir)
            .map_err(|why| ApiError::invalid("repo_url", format!("repo_url {why}")))?;
        let token = self
            .repo_token
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned);
        let repo_auth = match self.repo_auth {
            RepoAuthKind::None => RepoAuthSpec::None,
            RepoAuthKind::PlatformKey => {
                if !repo_url.is_ssh() {
                    return Err(ApiError::invalid(
                        "repo_auth",
                        "platform_key needs an SSH repository URL",
                    ));
                }
                RepoAuthSpec::PlatformKey
            }
            RepoAuthKind::Token => {
                let username = self.repo_username.trim();
                if username.is_empty() || username.chars().any(|c| c.is_control() || c == ':') {
                    return Err(ApiError::invalid(
                        "repo_username",
                        "repo_username is required for token authentication",
                    ));
                }
                if creating && token.is_none() {
                    return Err(ApiError::invalid(
                        "repo_token",
                        "repo_token is required for token authentication",
                    ));
                }
                RepoAuthSpec::Token {
                    username: username.to_owned(),
                }
            }
        };
        if self.host_ids.is_empty() {
            return Err(ApiError::invalid(
                "host_ids",
                "host_ids must name at least one host",
            ));
        }
        let mut host_ids = self.host_ids.clone();
        host_ids.sort_unstable();
        host_ids.dedup();
        for id in &host_ids {
            let h =
                st.db.get_host(*id).await.map_err(|_| {
                    ApiError::invalid("host_ids", format!("host {id} does not exist"))
                })?;
            if h.environment_id != self.environment_id {
                return Err(ApiError::invalid(
                    "host_ids",
                    format!("host {id} belongs to another environment"),
                ));
            }
        }
        let deploy_path =
            RemotePath::parse(&self.deploy_path).map_err(ApiError::field("deploy_path"))?;
        let versions_path =
            RemotePath::parse(&self.versions_path).map_err(ApiError::field("versions_path"))?;
        if deploy_path.contains(&versions_path) || versions_path.contains(&deploy_path) {
            return Err(ApiError::invalid(
                "versions_path",
                "versions_path and deploy_path must not contain one another",
            ));
        }
        if !(1..=100).contains(&self.keep_versions) {
            return Err(ApiError::invalid(
                "keep_versions",
                "keep_versions must be between 1 and 100",
            ));
        }
        let (filter_mode, pack_mode) = match self.filter_mode {
            FilterModeDto::Include => (FilterMode::Include, PackMode::Include),
            FilterModeDto::Exclude => (FilterMode::Exclude, PackMode::Exclude),
        };
        FileFilter::parse(pack_mode, &self.filter)
            .map_err(|e| ApiError::invalid("filter", e.to_string()))?;
        let variables = domain::parse_variables(&self.variables)
            .map_err(|e| ApiError::invalid("variables", e.0))?
            .into_iter()
            .map(|(name, value)| Variable { name, value })
            .collect();
        if self.parallelism == Some(0) {
            return Err(ApiError::invalid(
                "parallelism",
                "parallelism must be at least 1",
            ));
        }
        if !(1..=86_400).contains(&self.hook_timeout_secs) {
            return Err(ApiError::invalid(
                "hook_timeout_secs",
                "hook_timeout_secs must be between 1 and 86400",
            ));
        }
        let channel = self.notice.channel.trim();
        if !NOTICE_CHANNELS.contains(&channel) {
            return Err(ApiError::invalid(
                "notice.channel",
                format!(
                    "notice.channel must be one of {}",
                    NOTICE_CHANNELS[1..].join(", ")
                ),
            ));
        }
        for (name, script) in [
            ("hooks.before_checkout", &self.hooks.before_checkout),
            ("hooks.after_checkout", &self.hooks.after_checkout),
            ("hooks.before_release", &self.hooks.before_release),
            ("hooks.after_release", &self.hooks.after_release),
        ] {
            if script.contains('\0') || script.len() > 64 * 1024 {
                return Err(ApiError::invalid(
                    name,
                    format!("{name} must be at most 64 KiB of text"),
                ));
            }
        }
        let spec = ConfigSpec {
            repo_url,
            repo_auth,
            review_enabled: self.review_enabled,
            notice: NoticeSpec {
                channel: if channel.is_empty() {
                    "off".into()
                } else {
                    channel.into()
                },
                target: self.notice.target.trim().into(),
            },
            host_ids,
            deploy_path,
            versions_path,
            keep_versions: self.keep_versions,
            filter_mode,
            filter: self.filter.clone(),
            hooks: Hooks {
                before_checkout: self.hooks.before_checkout.clone(),
                after_checkout: self.hooks.after_checkout.clone(),
                before_release: self.hooks.before_release.clone(),
                after_release: self.hooks.after_release.clone(),
            },
            variables,
            parallelism: self.parallelism,
            failure_policy: match self.failure_policy {
                FailurePolicyDto::AllOrNothing => FailurePolicy::AllOrNothing,
                FailurePolicyDto::Continue => FailurePolicy::Continue,
            },
            hook_timeout_secs: self.hook_timeout_secs,
        };
        Ok((spec, token))
    }
}

#[derive(Object)]
pub struct RefOut {
    pub name: String,
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

#[derive(Object)]
pub struct VersionOut {
    pub version: String,
    pub release_id: i64,
    pub commit_id: String,
    /// The deploy path links to it on this host.
    pub live: bool,
    pub created_at: String,
}

#[derive(Object)]
pub struct HostVersionsOut {
    pub host_id: i64,
    pub host_name: String,
    /// Newest first.
    pub versions: Vec<VersionOut>,
}

pub fn git_error(e: GitError) -> ApiError {
    match e {
        GitError::RefNotFound { kind, name } => ApiError::invalid(
            kind,
            format!("{kind} '{name}' does not exist in the repository"),
        ),
        other => ApiError::upstream("git_failed", other.to_string()),
    }
}

/// A failed fetch as the caller may see it. A repository on a local path or an internal
/// address (loopback, private, …: `shared::net::repo_is_internal`) would otherwise let anyone
/// who may edit a config probe the machine's files and its network's ports through the error
/// ("connection refused" vs "timed out" vs "not a Git server"): non-administrators get a
/// generic message, the details go to the log.
pub async fn fetch_error(e: GitError, url: &str, admin: bool) -> ApiError {
    if admin
        || matches!(e, GitError::RefNotFound { .. })
        || !hippo_shared::net::repo_is_internal(url).await
    {
        return git_error(e);
    }
    tracing::warn!(url = %hippo_worker::git::redact_url(url), error = %e, "fetch failed (details withheld from the caller)");
    ApiError::upstream(
        "git_failed",
        "the repository could not be fetched (it is on this machine or an internal network, so \
         the details are only in the server log)",
    )
}

/// Fetches the config's repository. Listings (`always` false) reuse a fetch of the last few
/// seconds, so the console's branch → commit pickers do not fetch three times; resolving the
/// ref of a new release always fetches. `admin`: the caller may see why a fetch failed.
pub async fn synced_repo(
    st: &State,
    config: &ReleaseConfig,
    always: bool,
    admin: bool,
) -> Result<String, ApiError> {
    let url = config.spec.repo_url.to_string();
    if !always && st.fresh(&url, Duration::from_secs(5)) && st.repos.mirror_dir(&url).exists() {
        return Ok(url);
    }
    let auth = st
        .repo_auth(config.id, &config.spec)
        .await
        .map_err(ApiError::internal)?;
    let repos = st.repos.clone();
    let u = url.clone();
    let res = tokio::task::spawn_blocking(move || repos.sync(&u, &auth))
        .await
        .map_err(ApiError::internal)?;
    if let Err(e) = res {
        st.forget_fetch(&url);
        return Err(fetch_error(e, &url, admin).await);
    }
    Ok(url)
}

/// Runs `f` on the config's synced repository, if the caller may see the config.
async fn with_repo<T: Send + 'static>(
    st: &State,
    auth: &Auth,
    id: i64,
    f: impl FnOnce(&hippo_worker::git::RepoCache, &str) -> Result<T, GitError> + Send + 'static,
) -> Result<T, ApiError> {
    let config = visible(st, auth, id).await?;
    let url = synced_repo(st, &config, false, auth.0.is_admin).await?;
    let repos = st.repos.clone();
    tokio::task::spawn_blocking(move || f(&repos, &url))
        .await
        .map_err(ApiError::internal)?
        .map_err(git_error)
}

/// Parses and checks the notice channels of a request (422 naming `notice_channels`).
fn parse_channels(raw: &[serde_json::Value]) -> Result<Vec<Channel>, ApiError> {
    raw.iter()
        .enumerate()
        .map(|(i, v)| {
            let c: Channel = serde_json::from_value(v.clone()).map_err(|e| {
                ApiError::invalid("notice_channels", format!("notice_channels[{i}]: {e}"))
            })?;
            c.validate().map_err(|e| {
                ApiError::invalid("notice_channels", format!("notice_channels[{i}]: {e}"))
            })?;
            Ok(c)
        })
        .collect()
}

/// The config, if the caller may edit it (`edit_configs` for its environment and app).
async fn editable(st: &State, auth: &Auth, id: i64) -> Result<ReleaseConfig, ApiError> {
    let config = st.db.get_config(id).await?;
    auth.0.require(
        Permission::EditConfigs,
        Some(config.environment_id),
        Some(config.app_id),
    )?;
    Ok(config)
}

/// The config, if the caller holds any permission for its environment and app (else 403).
async fn visible(st: &State, auth: &Auth, id: i64) -> Result<ReleaseConfig, ApiError> {
    let config = st.db.get_config(id).await?;
    auth.0
        .require_sees(config.environment_id, Some(config.app_id))?;
    Ok(config)
}

#[derive(Default)]
pub struct ConfigsApi;

#[OpenApi(prefix_path = "/api/release-configs", tag = "ApiTags::ReleaseConfigs")]
impl ConfigsApi {
    /// List release configs, optionally of one app and/or environment.
    #[oai(path = "/", method = "get")]
    async fn list(
        &self,
        auth: Auth,
        st: Data<&Arc<State>>,
        app_id: Query<Option<i64>>,
        environment_id: Query<Option<i64>>,
    ) -> ApiResult<Json<Vec<ConfigOut>>> {
        // Only the configs the caller holds a permission for.
        Ok(Json(
            st.db
                .list_configs(app_id.0, environment_id.0)
                .await?
                .into_iter()
                .filter(|c| auth.0.sees(c.environment_id, Some(c.app_id)))
                .map(Into::into)
                .collect(),
        ))
    }

    /// Create the release config of an app for an environment.
    #[oai(path = "/", method = "post")]
    async fn create(
        &self,
        auth: Auth,
        st: Data<&Arc<State>>,
        body: Json<ConfigIn>,
    ) -> ApiResult<Created<ConfigOut>> {
        auth.0.require(
            Permission::EditConfigs,
            Some(body.environment_id),
            Some(body.app_id),
        )?;
        let (spec, token) = body.parse(&st, true).await?;
        let channels = parse_channels(body.notice_channels.as_deref().unwrap_or_default())?;
        let secret_set = token.is_some();
        let sealed = token.map(|t| st.master.seal(t.as_bytes()));
        let config: ConfigOut = st
            .db
            .create_config(body.app_id, body.environment_id, &spec, sealed)
            .await?
            .into();
        if !channels.is_empty() {
            st.db
                .set_config_notice_secret(config.id, dispatch::seal(&st.deps, &channels))
                .await?;
        }
        let mut changes = audit::diff(None, audit::view(&config));
        if secret_set {
            changes["repo_token"] = serde_json::json!("set");
        }
        if !channels.is_empty() {
            changes["notice_channels"] =
                serde_json::json!(channels.iter().map(Channel::kind).collect::<Vec<_>>());
        }
        audit::record(&st, &auth.0, "config", Some(config.id), "create", changes).await;
        Ok(Created::Ok(Json(config)))
    }

    /// Get a release config.
    #[oai(path = "/:id", method = "get")]
    async fn get(
        &self,
        auth: Auth,
        st: Data<&Arc<State>>,
        id: Path<i64>,
    ) -> ApiResult<Json<ConfigOut>> {
        Ok(Json(visible(&st, &auth, id.0).await?.into()))
    }

    /// Replace a release config. Its app and environment cannot change. Releases already
    /// requested keep the config they were requested with.
    #[oai(path = "/:id", method = "put")]
    async fn update(
        &self,
        auth: Auth,
        st: Data<&Arc<State>>,
        id: Path<i64>,
        body: Json<ConfigIn>,
    ) -> ApiResult<Json<ConfigOut>> {
        let current = editable(&st, &auth, id.0).await?;
        if current.app_id != body.app_id || current.environment_id != body.environment_id {
            return Err(ApiError::invalid(
                "app_id",
                "a config's app and environment cannot change; create another config",
            ));
        }
        let needs_token = body.repo_auth == RepoAuthKind::Token && !current.has_repo_secret;
        let (spec, token) = body.parse(&st, needs_token).await?;
        let channels = match &body.notice_channels {
            Some(raw) => Some(parse_channels(raw)?),
            None => None,
        };
        let secret = match (&spec.repo_auth, token) {
            (RepoAuthSpec::Token { .. }, Some(t)) => {
                SecretChange::Set(st.master.seal(t.as_bytes()))
            }
            (RepoAuthSpec::Token { .. }, None) => SecretChange::Keep,
            _ => SecretChange::Clear,
        };
        let token_change = match (&secret, current.has_repo_secret) {
            (SecretChange::Set(_), _) => Some("changed"),
            (SecretChange::Clear, true) => Some("cleared"),
            _ => None,
        };
        let before: ConfigOut = current.into();
        let config: ConfigOut = st.db.update_config(id.0, &spec, secret).await?.into();
        if let Some(c) = &channels {
            st.db
                .set_config_notice_secret(id.0, dispatch::seal(&st.deps, c))
                .await?;
        }
        let mut changes = audit::diff(audit::view(&before), audit::view(&config));
        if let Some(c) = &channels {
            changes["notice_channels"] =
                serde_json::json!({"changed": c.iter().map(Channel::kind).collect::<Vec<_>>()});
        }
        if let Some(c) = token_change {
            changes["repo_token"] = serde_json::json!(c);
        }
        audit::record(&st, &auth.0, "config", Some(id.0), "update", changes).await;
        Ok(Json(config))
    }

    /// Delete a release config (refused while releases refer to it).
    #[oai(path = "/:id", method = "delete")]
    async fn delete(&self, auth: Auth, st: Data<&Arc<State>>, id: Path<i64>) -> ApiResult<Deleted> {
        let current = editable(&st, &auth, id.0).await?;
        let before: ConfigOut = current.into();
        st.db.delete_config(id.0).await?;
        let changes = audit::diff(audit::view(&before), None);
        audit::record(&st, &auth.0, "config", Some(id.0), "delete", changes).await;
        Ok(Deleted::Ok)
    }

    /// The config's notice channels, secrets replaced by `***` (robot URLs shortened).
    #[oai(path = "/:id/notice-channels", method = "get")]
    async fn notice_channels(
        &self,
        auth: Auth,
        st: Data<&Arc<State>>,
        id: Path<i64>,
    ) -> ApiResult<Json<Vec<serde_json::Value>>> {
        visible(&st, &auth, id.0).await?;
        Ok(Json(
            dispatch::channels(&st.deps, id.0)
                .await
                .iter()
                .map(Channel::redacted)
                .collect(),
        ))
    }

    /// Branches of the config's repository (fetched first).
    #[oai(path = "/:id/git/branches", method = "get")]
    async fn branches(
        &self,
        auth: Auth,
        st: Data<&Arc<State>>,
        id: Path<i64>,
    ) -> ApiResult<Json<Vec<RefOut>>> {
        let refs = with_repo(&st, &auth, id.0, |r, url| r.branches(url)).await?;
        Ok(Json(refs.into_iter().map(Into::into).collect()))
    }

    /// Tags of the config's repository, newest first.
    #[oai(path = "/:id/git/tags", method = "get")]
    async fn tags(
        &self,
        auth: Auth,
        st: Data<&Arc<State>>,
        id: Path<i64>,
    ) -> ApiResult<Json<Vec<RefOut>>> {
        let refs = with_repo(&st, &auth, id.0, |r, url| r.tags(url)).await?;
        Ok(Json(refs.into_iter().map(Into::into).collect()))
    }

    /// The latest 30 commits of a branch.
    #[oai(path = "/:id/git/commits", method = "get")]
    async fn commits(
        &self,
        auth: Auth,
        st: Data<&Arc<State>>,
        id: Path<i64>,
        branch: Query<String>,
    ) -> ApiResult<Json<Vec<CommitOut>>> {
        let domain::GitRef::Branch(name) =
            domain::GitRef::branch(&branch.0).map_err(ApiError::field("branch"))?
        else {
            return Err(ApiError::invalid("branch", "branch is not a branch name"));
        };
        let commits = with_repo(&st, &auth, id.0, move |r, url| r.commits(url, &name, 30)).await?;
        Ok(Json(commits.into_iter().map(Into::into).collect()))
    }

    /// The versions kept on each host of the config (as of the last release), which is live.
    #[oai(path = "/:id/versions", method = "get")]
    async fn versions(
        &self,
        auth: Auth,
        st: Data<&Arc<State>>,
        id: Path<i64>,
    ) -> ApiResult<Json<Vec<HostVersionsOut>>> {
        let config = visible(&st, &auth, id.0).await?;
        let mut by_host: BTreeMap<i64, Vec<VersionOut>> = config
            .spec
            .host_ids
            .iter()
            .map(|h| (*h, Vec::new()))
            .collect();
        for v in st.db.host_versions(id.0).await? {
            by_host.entry(v.host_id).or_default().push(VersionOut {
                version: v.version,
                release_id: v.release_id,
                commit_id: v.commit_id,
                live: v.live.0,
                created_at: v.created_at,
            });
        }
        let mut out = Vec::new();
        for (host_id, versions) in by_host {
            let host_name = st
                .db
                .get_host(host_id)
                .await
                .map(|h| h.name)
                .unwrap_or_default();
            out.push(HostVersionsOut {
                host_id,
                host_name,
                versions,
            });
        }
        Ok(Json(out))
    }
}
