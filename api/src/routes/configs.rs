//! `/api/release-configs`: how one app is released to one environment (one per pair), its
//! notice channels, and the versions kept on its hosts. (Its repository's branches, tags and
//! commits are `routes::git`.)
use super::custom::{self, CustomAction};
use super::{
    AUTH, ApiResult, ApiTags, BAD_PARAM, BODY, CONFLICT, Created, Deleted, FORBIDDEN, NOT_FOUND,
    config_editable as editable, config_visible as visible,
};
use crate::audit;
use crate::auth::Auth;
use crate::body::JsonBody;
use crate::channels::{self, NoticeChannel};
use crate::problem::ApiError;
use crate::routes::rollout::{self, HealthCheckSpec, default_pause_timeout};
use crate::state::State;
use crate::text::{
    LongText, RemotePathText, RepoUrlText, Script, SecretText, ShortText, Timestamp, VariablesText,
    WaveText,
};
use hippo_shared::custom::ConfigKind;
use hippo_shared::db::configs::{
    self as shared_configs, ConfigSpec, ReleaseConfig, RepoAuthSpec, SecretChange, Variable,
};
use hippo_shared::domain::{
    self, AppId, ConfigId, DeltaMode, EnvironmentId, FailurePolicy, FilterMode, HostId, Permission,
    ReleaseId, RemotePath, RepoUrl,
};
use hippo_worker::notify::{Channel, dispatch};
use hippo_worker::package::FileFilter;
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{Enum, Object, OpenApi};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// How Hippo reaches the repository: `none` (public or local; the default), `platform_key`
/// (SSH with the platform key, `GET /api/ssh-key`), `token` (HTTPS with `repo_username` and
/// `repo_token`).
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[oai(rename_all = "snake_case")]
pub enum RepoAuthKind {
    None,
    PlatformKey,
    Token,
}

/// Shell scripts run at four points of a release (empty: none). Each gets the release's
/// variables (`HIPPO_*` and the config's own).
#[derive(Object, Clone, Default)]
pub struct Hooks {
    /// On the release server, in the repository cache, before fetching.
    #[oai(default)]
    pub before_checkout: Script,
    /// On the release server, in the exported tree (builds go here).
    #[oai(default)]
    pub after_checkout: Script,
    /// On each target, in the new version folder, before the switch.
    #[oai(default)]
    pub before_release: Script,
    /// On each target, in the deploy path, after the switch.
    #[oai(default)]
    pub after_release: Script,
    /// On the release server (sandboxed, in a scratch folder) when a release fails or is
    /// cancelled, with `HIPPO_RELEASE_STATUS` (`failed` or `cancelled`), `HIPPO_FAILURE_REASON`
    /// and `HIPPO_FAILED_HOSTS` (the hosts that did not end on the new version, comma-separated)
    /// besides the usual variables. Its own failure is reported, not added to the release's.
    #[oai(default)]
    pub on_failure: Script,
}

fn default_keep() -> u32 {
    5
}
fn default_hook_timeout() -> u64 {
    600
}

/// A regular release config (create or full replace). Left out: `repo_auth` `none`,
/// `filter_mode` `exclude`, `failure_policy` `all_or_nothing`, no hooks.
#[derive(Object)]
#[oai(example)]
pub struct ConfigIn {
    pub app_id: AppId,
    pub environment_id: EnvironmentId,
    pub repo_url: RepoUrlText,
    pub repo_auth: Option<RepoAuthKind>,
    /// For `repo_auth` `token`.
    pub repo_username: Option<ShortText>,
    /// Write-only, for `repo_auth` `token`. On update, leave out to keep the stored token.
    pub repo_token: Option<SecretText>,
    #[oai(default)]
    pub review_enabled: bool,
    /// Write-only: where notices go. Stored sealed; read back redacted at
    /// `/api/release-configs/{id}/notice-channels`. On update, leave out to keep them; `[]`
    /// removes them.
    #[oai(validator(max_items = 20))]
    pub notice_channels: Option<Vec<NoticeChannel>>,
    /// Target hosts, all of the config's environment.
    #[oai(validator(min_items = 1, max_items = 1000))]
    pub host_ids: Vec<HostId>,
    /// Becomes a link to the live version, e.g. `/var/www/html`.
    pub deploy_path: RemotePathText,
    /// Holds one folder per version, e.g. `/data/hippo/repos`.
    pub versions_path: RemotePathText,
    /// Versions kept on each host.
    #[oai(
        default = "default_keep",
        validator(minimum(value = "1"), maximum(value = "100"))
    )]
    pub keep_versions: u32,
    pub filter_mode: Option<FilterMode>,
    /// gitignore-style patterns, one per line, `#` comments.
    #[oai(default)]
    pub filter: LongText,
    pub hooks: Option<Hooks>,
    /// `KEY=value` lines given to every hook (names: letters, digits, `_`; not `HIPPO_…`;
    /// each value at most 100000 bytes).
    #[oai(default)]
    pub variables: VariablesText,
    /// Hosts worked on at once (absent: 16).
    #[oai(validator(minimum(value = "1"), maximum(value = "1000")))]
    pub parallelism: Option<u32>,
    pub failure_policy: Option<FailurePolicy>,
    /// How a redeploy makes the files that did not change: `hardlink` (the default: hard
    /// links to the live version's files; a hook that edits such a file in place edits the
    /// live one too), `copy` (copies: hooks may edit any file), `off` (always the whole
    /// archive). Changed files are always new files.
    pub delta: Option<DeltaMode>,
    /// Seconds each hook may run.
    #[oai(
        default = "default_hook_timeout",
        validator(minimum(value = "1"), maximum(value = "86400"))
    )]
    pub hook_timeout_secs: u64,
    /// `regular` (absent) or `custom`.
    pub kind: Option<ConfigKind>,
    /// For `custom` configs: the steps, run in order (1-50). A custom config takes no
    /// before/after-release hooks and no filter.
    #[oai(validator(max_items = 50))]
    pub actions: Option<Vec<CustomAction>>,
    /// Switch the hosts a few at a time, in this order: a number of hosts (`"1"`), a
    /// percentage of them (`"25%"`, rounded up) or `"rest"` (last only); hosts left over form
    /// a last wave. Empty (the default): all at once.
    #[oai(default, validator(max_items = 20))]
    pub waves: Vec<WaveText>,
    /// Checked on each host after its wave switched (also without waves: after the switch).
    pub health_check: Option<HealthCheckSpec>,
    /// Wait after every wave but the last until someone continues the release (`POST
    /// /api/releases/{id}/continue`). Needs `waves`.
    #[oai(default)]
    pub pause_after_wave: bool,
    /// How long a paused release waits; then it is cancelled and its switched hosts go back to
    /// their previous version.
    #[oai(
        default = "default_pause_timeout",
        validator(minimum(value = "10"), maximum(value = "604800"))
    )]
    pub pause_timeout_secs: u64,
}

/// The rollout fields as a config and a snapshot show them.
#[derive(Object)]
pub struct RolloutOut {
    pub waves: Vec<String>,
    #[oai(skip_serializing_if_is_none)]
    pub health_check: Option<HealthCheckSpec>,
    pub pause_after_wave: bool,
    pub pause_timeout_secs: u64,
}

#[derive(Object)]
pub struct ConfigOut {
    pub id: ConfigId,
    pub app_id: AppId,
    pub app_name: String,
    pub environment_id: EnvironmentId,
    pub environment_name: String,
    pub repo_url: String,
    pub repo_auth: RepoAuthKind,
    pub repo_username: String,
    /// Whether a token is stored (it is never returned).
    pub has_repo_token: bool,
    pub review_enabled: bool,
    /// How many notice channels are set (see `/api/release-configs/{id}/notice-channels`).
    pub notice_channel_count: u32,
    pub host_ids: Vec<HostId>,
    pub deploy_path: String,
    pub versions_path: String,
    pub keep_versions: u32,
    pub filter_mode: FilterMode,
    pub filter: String,
    pub hooks: Hooks,
    pub variables: String,
    /// Hosts worked on at once; absent: 16.
    #[oai(skip_serializing_if_is_none)]
    pub parallelism: Option<u32>,
    pub failure_policy: FailurePolicy,
    /// How redeploys make unchanged files (`hardlink`, `copy`, `off`).
    pub delta: DeltaMode,
    pub hook_timeout_secs: u64,
    #[oai(flatten)]
    pub rollout: RolloutOut,
    pub kind: ConfigKind,
    /// The steps of a `custom` config (empty for `regular`).
    pub actions: Vec<CustomAction>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// Names of environments and apps, for answers that show their ids.
pub struct Names {
    pub environments: HashMap<EnvironmentId, String>,
    pub apps: HashMap<AppId, String>,
}

impl Names {
    pub async fn load(st: &State) -> Result<Self, ApiError> {
        Ok(Self {
            environments: st
                .db
                .list_environments()
                .await?
                .into_iter()
                .map(|e| (e.id, e.name))
                .collect(),
            apps: st
                .db
                .list_apps()
                .await?
                .into_iter()
                .map(|a| (a.id, a.name))
                .collect(),
        })
    }
    pub fn environment(&self, id: EnvironmentId) -> String {
        self.environments.get(&id).cloned().unwrap_or_default()
    }
    pub fn app(&self, id: AppId) -> String {
        self.apps.get(&id).cloned().unwrap_or_default()
    }
}

/// What a release runs with: a config's settings as they were when the release was
/// requested (`snapshot` on a release). Secrets are not part of it: the repository token and
/// the notice channels are stored sealed elsewhere and never returned.
#[derive(Object)]
pub struct ConfigSnapshot {
    pub repo_url: String,
    pub repo_auth: RepoAuthKind,
    pub repo_username: String,
    pub review_enabled: bool,
    pub host_ids: Vec<HostId>,
    pub deploy_path: String,
    pub versions_path: String,
    pub keep_versions: u32,
    pub filter_mode: FilterMode,
    pub filter: String,
    pub hooks: Hooks,
    pub variables: String,
    /// Hosts worked on at once; absent: 16.
    #[oai(skip_serializing_if_is_none)]
    pub parallelism: Option<u32>,
    pub failure_policy: FailurePolicy,
    /// How redeploys make unchanged files (`hardlink`, `copy`, `off`).
    pub delta: DeltaMode,
    pub hook_timeout_secs: u64,
    #[oai(flatten)]
    pub rollout: RolloutOut,
    pub kind: ConfigKind,
    /// The steps of a `custom` config (empty for `regular`).
    pub actions: Vec<CustomAction>,
}

/// A config's settings as the API shows them (no secrets).
pub fn snapshot_out(s: ConfigSpec) -> ConfigSnapshot {
    let (repo_auth, repo_username) = match s.repo_auth {
        RepoAuthSpec::None => (RepoAuthKind::None, String::new()),
        RepoAuthSpec::PlatformKey => (RepoAuthKind::PlatformKey, String::new()),
        RepoAuthSpec::Token { username } => (RepoAuthKind::Token, username),
    };
    ConfigSnapshot {
        repo_url: s.repo_url.to_string(),
        repo_auth,
        repo_username,
        review_enabled: s.review_enabled,
        host_ids: s.host_ids,
        deploy_path: s.deploy_path.to_string(),
        versions_path: s.versions_path.to_string(),
        keep_versions: s.keep_versions,
        filter_mode: s.filter_mode,
        filter: s.filter,
        hooks: Hooks {
            before_checkout: s.hooks.before_checkout.as_str().into(),
            after_checkout: s.hooks.after_checkout.as_str().into(),
            before_release: s.hooks.before_release.as_str().into(),
            after_release: s.hooks.after_release.as_str().into(),
            on_failure: s.hooks.on_failure.as_str().into(),
        },
        variables: s
            .variables
            .iter()
            .map(|v| format!("{}={}\n", v.name, v.value))
            .collect(),
        parallelism: s.parallelism,
        failure_policy: s.failure_policy,
        delta: s.delta,
        hook_timeout_secs: s.hook_timeout_secs,
        rollout: RolloutOut {
            waves: s.rollout.waves.texts(),
            health_check: s.rollout.health_check.as_ref().map(rollout::health_out),
            pause_after_wave: s.rollout.pause,
            pause_timeout_secs: s.rollout.pause_timeout_secs,
        },
        kind: s.kind,
        actions: custom::actions_out(&s.actions),
    }
}

fn out(c: ReleaseConfig, names: &Names, channels: usize) -> ConfigOut {
    let s = snapshot_out(c.spec);
    ConfigOut {
        id: c.id,
        app_id: c.app_id,
        app_name: names.app(c.app_id),
        environment_id: c.environment_id,
        environment_name: names.environment(c.environment_id),
        repo_url: s.repo_url,
        repo_auth: s.repo_auth,
        repo_username: s.repo_username,
        has_repo_token: c.has_repo_secret,
        review_enabled: s.review_enabled,
        notice_channel_count: u32::try_from(channels).unwrap_or(u32::MAX),
        host_ids: s.host_ids,
        deploy_path: s.deploy_path,
        versions_path: s.versions_path,
        keep_versions: s.keep_versions,
        filter_mode: s.filter_mode,
        filter: s.filter,
        hooks: s.hooks,
        variables: s.variables,
        parallelism: s.parallelism,
        failure_policy: s.failure_policy,
        delta: s.delta,
        hook_timeout_secs: s.hook_timeout_secs,
        rollout: s.rollout,
        kind: s.kind,
        actions: s.actions,
        created_at: c.created_at.into(),
        updated_at: c.updated_at.into(),
    }
}

/// A config as the API shows it (with names and its channel count).
async fn shown(st: &State, c: ReleaseConfig) -> Result<ConfigOut, ApiError> {
    let names = Names::load(st).await?;
    let channels = dispatch::channels(&st.deps, c.id).await.len();
    Ok(out(c, &names, channels))
}

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
        hippo_shared::net::check_repo_location(repo_url.as_str(), &st.settings.private_dirs())
            .map_err(|why| ApiError::invalid("repo_url", format!("repo_url {why}")))?;
        let token = self
            .repo_token
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned);
        let repo_auth = match self.repo_auth.unwrap_or(RepoAuthKind::None) {
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
                let username = self.repo_username.as_deref().unwrap_or_default().trim();
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
        let host_ids = parse_hosts(st, self.environment_id, &self.host_ids).await?;
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
        let filter_mode = self.filter_mode.unwrap_or_default();
        FileFilter::parse(filter_mode, &self.filter)
            .map_err(|e| ApiError::invalid("filter", e.to_string()))?;
        let variables = domain::parse_variables(&self.variables)
            .map_err(|e| ApiError::invalid("variables", e.0))?
            .into_iter()
            .map(|(name, value)| Variable { name, value })
            .collect();
        let hooks = self.hooks.clone().unwrap_or_default();
        let rollout = rollout::parse(
            &self.waves,
            self.health_check.as_ref(),
            self.pause_after_wave,
            self.pause_timeout_secs,
        )?;
        let mut spec = ConfigSpec {
            repo_url,
            repo_auth,
            review_enabled: self.review_enabled,
            host_ids,
            deploy_path,
            versions_path,
            keep_versions: self.keep_versions,
            filter_mode,
            filter: self.filter.0.clone(),
            hooks: shared_configs::Hooks {
                before_checkout: hooks.before_checkout.0,
                after_checkout: hooks.after_checkout.0,
                before_release: hooks.before_release.0,
                after_release: hooks.after_release.0,
                on_failure: hooks.on_failure.0,
            },
            variables,
            parallelism: self.parallelism,
            failure_policy: self.failure_policy.unwrap_or_default(),
            hook_timeout_secs: self.hook_timeout_secs,
            rollout,
            delta: self.delta.unwrap_or_default(),
            kind: self.kind.unwrap_or_default(),
            actions: Vec::new(),
        };
        spec.actions = custom::parse_actions(spec.kind, self.actions.as_deref(), &spec)?;
        Ok((spec, token))
    }
}

/// Target hosts: at least one, each of `environment` (sorted, without repeats).
async fn parse_hosts(
    st: &State,
    environment: EnvironmentId,
    ids: &[HostId],
) -> Result<Vec<HostId>, ApiError> {
    if ids.is_empty() {
        return Err(ApiError::invalid(
            "host_ids",
            "host_ids must name at least one host",
        ));
    }
    let mut host_ids = ids.to_vec();
    host_ids.sort_unstable();
    host_ids.dedup();
    for id in &host_ids {
        let h = st
            .db
            .get_host(*id)
            .await
            .map_err(|_| ApiError::invalid("host_ids", format!("host {id} does not exist")))?;
        if h.environment_id != environment {
            return Err(ApiError::invalid(
                "host_ids",
                format!("host {id} belongs to another environment"),
            ));
        }
    }
    Ok(host_ids)
}

/// Where a config is cloned to: another environment and/or another app. Everything is copied
/// but the hosts (chosen here again: hosts belong to one environment) and the secrets (the
/// repository token and the notice channels, set again on the new config).
#[derive(Object)]
pub struct CloneIn {
    /// Absent: the source's environment.
    pub environment_id: Option<EnvironmentId>,
    /// Absent: the source's app.
    pub app_id: Option<AppId>,
    /// Target hosts of the new config, all of its environment.
    #[oai(validator(min_items = 1, max_items = 1000))]
    pub host_ids: Vec<HostId>,
}

/// What a clone does not copy: `hosts` (chosen again in the request), `repo_token` (the
/// source's token; set it on the new config before releasing), `notice_channels` (the source's
/// channels carry secrets; set them again).
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[oai(rename_all = "snake_case")]
pub enum NotCopied {
    Hosts,
    RepoToken,
    NoticeChannels,
}

/// The new config, and what was not copied from the source.
#[derive(Object)]
pub struct CloneOut {
    #[oai(flatten)]
    pub config: ConfigOut,
    /// Left behind by the clone: to choose or set again on the new config.
    pub not_copied: Vec<NotCopied>,
}

#[derive(Object)]
pub struct VersionOut {
    pub version: String,
    pub release_id: ReleaseId,
    pub commit_id: String,
    /// The deploy path links to it on this host.
    pub live: bool,
    pub created_at: Timestamp,
}

#[derive(Object)]
pub struct HostVersionsOut {
    pub host_id: HostId,
    pub host_name: String,
    /// Newest first.
    pub versions: Vec<VersionOut>,
}

#[derive(Default)]
pub struct ConfigsApi;

#[OpenApi(prefix_path = "/api/release-configs", tag = "ApiTags::ReleaseConfigs")]
impl ConfigsApi {
    /// List the release configs the caller may see, optionally of one app and/or environment.
    #[oai(path = "/", method = "get", operation_id = "listReleaseConfigs")]
    async fn list(
        &self,
        auth: Auth,
        st: Data<&Arc<State>>,
        app_id: Query<Option<AppId>>,
        environment_id: Query<Option<EnvironmentId>>,
    ) -> ApiResult<Json<Vec<ConfigOut>>, { AUTH | BAD_PARAM }> {
        let names = Names::load(&st).await?;
        let mut list = Vec::new();
        for c in st.db.list_configs(app_id.0, environment_id.0).await? {
            if auth.0.sees(c.environment_id, Some(c.app_id)) {
                let channels = dispatch::channels(&st.deps, c.id).await.len();
                list.push(out(c, &names, channels));
            }
        }
        Ok(Json(list))
    }

    /// Create the release config of an app for an environment.
    #[oai(path = "/", method = "post", operation_id = "createReleaseConfig")]
    async fn create(
        &self,
        auth: Auth,
        st: Data<&Arc<State>>,
        body: JsonBody<ConfigIn>,
    ) -> ApiResult<Created<ConfigOut>, { AUTH | BODY | FORBIDDEN | CONFLICT }> {
        auth.0.require(
            Permission::EditConfigs,
            Some(body.environment_id),
            Some(body.app_id),
        )?;
        let (spec, token) = body.parse(&st, true).await?;
        let channels = channels::parse(body.notice_channels.as_deref().unwrap_or_default())?;
        let secret_set = token.is_some();
        let sealed = token.map(|t| st.master.seal(t.as_bytes()));
        let created = st
            .db
            .create_config(body.app_id, body.environment_id, &spec, sealed)
            .await?;
        if !channels.is_empty() {
            st.db
                .set_config_notice_secret(created.id, dispatch::seal(&st.deps, &channels))
                .await?;
        }
        let config = shown(&st, created).await?;
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
    #[oai(path = "/:id", method = "get", operation_id = "getReleaseConfig")]
    async fn get(
        &self,
        auth: Auth,
        st: Data<&Arc<State>>,
        id: Path<ConfigId>,
    ) -> ApiResult<Json<ConfigOut>, { AUTH | NOT_FOUND }> {
        let c = visible(&st, &auth, id.0).await?;
        Ok(Json(shown(&st, c).await?))
    }

    /// Replace a release config. Its app and environment cannot change. Releases already
    /// requested keep the config they were requested with.
    #[oai(path = "/:id", method = "put", operation_id = "updateReleaseConfig")]
    async fn update(
        &self,
        auth: Auth,
        st: Data<&Arc<State>>,
        id: Path<ConfigId>,
        body: JsonBody<ConfigIn>,
    ) -> ApiResult<Json<ConfigOut>, { AUTH | BODY | FORBIDDEN | NOT_FOUND | CONFLICT }> {
        let current = editable(&st, &auth, id.0).await?;
        if current.app_id != body.app_id || current.environment_id != body.environment_id {
            return Err(ApiError::invalid(
                "app_id",
                "a config's app and environment cannot change; create another config",
            )
            .into());
        }
        let needs_token = body.repo_auth == Some(RepoAuthKind::Token) && !current.has_repo_secret;
        let (spec, token) = body.parse(&st, needs_token).await?;
        let channels = match &body.notice_channels {
            Some(raw) => Some(channels::parse(raw)?),
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
        let before = shown(&st, current).await?;
        let updated = st.db.update_config(id.0, &spec, secret).await?;
        if let Some(c) = &channels {
            st.db
                .set_config_notice_secret(id.0, dispatch::seal(&st.deps, c))
                .await?;
        }
        let config = shown(&st, updated).await?;
        let mut changes = audit::diff(audit::view(&before), audit::view(&config));
        if let Some(c) = &channels {
            changes["notice_channels"] =
                serde_json::json!({"to": c.iter().map(Channel::kind).collect::<Vec<_>>()});
        }
        if let Some(c) = token_change {
            changes["repo_token"] = serde_json::json!(c);
        }
        audit::record(&st, &auth.0, "config", Some(id.0), "update", changes).await;
        Ok(Json(config))
    }

    /// Delete a release config (refused with 409 while releases refer to it).
    #[oai(path = "/:id", method = "delete", operation_id = "deleteReleaseConfig")]
    async fn delete(
        &self,
        auth: Auth,
        st: Data<&Arc<State>>,
        id: Path<ConfigId>,
    ) -> ApiResult<Deleted, { AUTH | FORBIDDEN | NOT_FOUND | CONFLICT }> {
        let current = editable(&st, &auth, id.0).await?;
        let before = shown(&st, current).await?;
        st.db.delete_config(id.0).await?;
        let changes = audit::diff(audit::view(&before), None);
        audit::record(&st, &auth.0, "config", Some(id.0), "delete", changes).await;
        Ok(Deleted::Ok)
    }

    /// Clone a release config to another environment and/or app: everything but the hosts
    /// (chosen again in the request) and the secrets (repository token, notice channels: set
    /// them again on the new config; `not_copied` lists what was left behind). Needs to see the
    /// source and `edit_configs` for the target; 409 if the target app already has a config for
    /// the target environment.
    #[oai(
        path = "/:id/clone",
        method = "post",
        operation_id = "cloneReleaseConfig"
    )]
    async fn clone_config(
        &self,
        auth: Auth,
        st: Data<&Arc<State>>,
        id: Path<ConfigId>,
        body: JsonBody<CloneIn>,
    ) -> ApiResult<Created<CloneOut>, { AUTH | BODY | FORBIDDEN | NOT_FOUND | CONFLICT }> {
        let source = visible(&st, &auth, id.0).await?;
        let environment_id = body.environment_id.unwrap_or(source.environment_id);
        let app_id = body.app_id.unwrap_or(source.app_id);
        auth.0
            .require(Permission::EditConfigs, Some(environment_id), Some(app_id))?;
        st.db
            .get_app(app_id)
            .await
            .map_err(|_| ApiError::invalid("app_id", "app_id names no app"))?;
        st.db.get_environment(environment_id).await.map_err(|_| {
            ApiError::invalid("environment_id", "environment_id names no environment")
        })?;
        if environment_id == source.environment_id && app_id == source.app_id {
            return Err(ApiError::conflict(
                "config_exists",
                "a clone needs another environment or another app: this one is the source",
            )
            .into());
        }
        let mut spec = source.spec.clone();
        spec.host_ids = parse_hosts(&st, environment_id, &body.host_ids).await?;
        let mut not_copied = vec![NotCopied::Hosts];
        if source.has_repo_secret {
            not_copied.push(NotCopied::RepoToken);
        }
        if !dispatch::channels(&st.deps, source.id).await.is_empty() {
            not_copied.push(NotCopied::NoticeChannels);
        }
        let created = st
            .db
            .create_config(app_id, environment_id, &spec, None)
            .await?;
        let config = shown(&st, created).await?;
        let mut changes = audit::diff(None, audit::view(&config));
        changes["cloned_from"] = serde_json::json!(source.id);
        audit::record(&st, &auth.0, "config", Some(config.id), "create", changes).await;
        Ok(Created::Ok(Json(CloneOut { config, not_copied })))
    }

    /// The config's notice channels, secrets replaced by `***` (robot URLs shortened).
    #[oai(
        path = "/:id/notice-channels",
        method = "get",
        operation_id = "listNoticeChannels"
    )]
    async fn notice_channels(
        &self,
        auth: Auth,
        st: Data<&Arc<State>>,
        id: Path<ConfigId>,
    ) -> ApiResult<Json<Vec<NoticeChannel>>, { AUTH | NOT_FOUND }> {
        visible(&st, &auth, id.0).await?;
        Ok(Json(
            dispatch::channels(&st.deps, id.0)
                .await
                .iter()
                .filter_map(channels::shown)
                .collect(),
        ))
    }

    /// The versions kept on each host of the config (as of the last release), which is live.
    #[oai(path = "/:id/versions", method = "get", operation_id = "listVersions")]
    async fn versions(
        &self,
        auth: Auth,
        st: Data<&Arc<State>>,
        id: Path<ConfigId>,
    ) -> ApiResult<Json<Vec<HostVersionsOut>>, { AUTH | NOT_FOUND }> {
        let config = visible(&st, &auth, id.0).await?;
        let mut by_host: BTreeMap<HostId, Vec<VersionOut>> = config
            .spec
            .host_ids
            .iter()
            .map(|h| (*h, Vec::new()))
            .collect();
        for v in st.db.host_versions(id.0).await? {
            by_host.entry(v.host_id).or_default().push(VersionOut {
                version: v.version.into(),
                release_id: v.release_id,
                commit_id: v.commit_id.into(),
                live: v.live.0,
                created_at: v.created_at.into(),
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

impl poem_openapi::types::Example for ConfigIn {
    fn example() -> Self {
        Self {
            app_id: AppId::new(1),
            environment_id: EnvironmentId::new(1),
            repo_url: "git@git.example.com:shop/cart.git".into(),
            repo_auth: Some(RepoAuthKind::PlatformKey),
            repo_username: None,
            repo_token: None,
            review_enabled: true,
            notice_channels: None,
            host_ids: vec![HostId::new(1)],
            deploy_path: "/var/www/cart".into(),
            versions_path: "/data/hippo/cart".into(),
            keep_versions: 5,
            filter_mode: Some(FilterMode::Exclude),
            filter: "docs/\n*.log\n".into(),
            hooks: Some(Hooks {
                after_checkout: "npm ci && npm run build".into(),
                after_release: "sudo systemctl reload nginx".into(),
                ..Hooks::default()
            }),
            variables: "NODE_ENV=production\n".into(),
            parallelism: None,
            failure_policy: Some(FailurePolicy::AllOrNothing),
            delta: None,
            hook_timeout_secs: 600,
            waves: vec!["1".into(), "25%".into(), "rest".into()],
            health_check: Some(HealthCheckSpec {
                url: Some("http://{addr}:8080/health".into()),
                expect_status: 200,
                command: Script::default(),
                timeout_secs: 5,
                retries: 2,
                interval_secs: 2,
            }),
            pause_after_wave: false,
            pause_timeout_secs: 3600,
            kind: None,
            actions: None,
        }
    }
}
