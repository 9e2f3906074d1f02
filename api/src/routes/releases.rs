//! `/api/releases`: request a release (or a rollback), run it, follow its events.
use super::configs::{git_error, synced_repo};
use super::{ApiResult, Created};
use crate::app::ApiTags;
use crate::audit;
use crate::auth::Auth;
use crate::problem::ApiError;
use crate::state::State;
use hippo_shared::db::releases::{NewRelease, Release, ReleaseEdit, ReleaseFilter, ReleaseHost};
use hippo_shared::domain::{GitRef, Name, Permission, ReleaseKind, ReleaseStatus, VersionName};
use hippo_shared::events::{EventStatus, ReleaseEvent, Stage};
use hippo_shared::jobs::DeployJob;
use hippo_worker::git::RefSpec;
use hippo_worker::notify::NoticeKind;
use poem::web::Data;
use poem::web::sse::Event;
use poem_openapi::param::{Header, Path, Query};
use poem_openapi::payload::{EventStream, Json};
use poem_openapi::types::ToJSON;
use poem_openapi::{Enum, Object, OpenApi};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[oai(rename_all = "snake_case")]
pub enum KindDto {
    Release,
    Rollback,
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[oai(rename_all = "snake_case")]
pub enum StatusDto {
    PendingReview,
    Approved,
    Queued,
    Running,
    Succeeded,
    Failed,
    Rejected,
    Cancelled,
}

impl From<ReleaseStatus> for StatusDto {
    fn from(s: ReleaseStatus) -> Self {
        match s {
            ReleaseStatus::PendingReview => Self::PendingReview,
            ReleaseStatus::Approved => Self::Approved,
            ReleaseStatus::Queued => Self::Queued,
            ReleaseStatus::Running => Self::Running,
            ReleaseStatus::Succeeded => Self::Succeeded,
            ReleaseStatus::Failed => Self::Failed,
            ReleaseStatus::Rejected => Self::Rejected,
            ReleaseStatus::Cancelled => Self::Cancelled,
        }
    }
}

impl From<StatusDto> for ReleaseStatus {
    fn from(s: StatusDto) -> Self {
        match s {
            StatusDto::PendingReview => Self::PendingReview,
            StatusDto::Approved => Self::Approved,
            StatusDto::Queued => Self::Queued,
            StatusDto::Running => Self::Running,
            StatusDto::Succeeded => Self::Succeeded,
            StatusDto::Failed => Self::Failed,
            StatusDto::Rejected => Self::Rejected,
            StatusDto::Cancelled => Self::Cancelled,
        }
    }
}

fn default_kind() -> KindDto {
    KindDto::Release
}

/// A release request. For `release`: give `branch`, `tag` or `commit` (a commit may come with
/// the branch it was picked from). For `rollback`: give `version` (see the config's versions).
#[derive(Object)]
pub struct ReleaseIn {
    pub config_id: i64,
    pub name: String,
    #[oai(default = "default_kind")]
    pub kind: KindDto,
    pub branch: Option<String>,
    pub tag: Option<String>,
    pub commit: Option<String>,
    pub version: Option<String>,
}

/// One delivery attempt of one notice on one channel.
#[derive(Object)]
pub struct NoticeAttemptOut {
    /// requested | approved | rejected | started | succeeded | failed | rollback
    pub notice: String,
    /// dingtalk | wecom | feishu | webhook | email | sms
    pub channel: String,
    /// Position of the channel in the config's list.
    pub channel_index: i64,
    pub attempt: i64,
    pub at: String,
    pub duration_ms: i64,
    pub ok: bool,
    /// Why it failed: the kind of failure, the HTTP status, a provider's error code (never a
    /// secret, never the receiver's answer).
    pub error: Option<String>,
    /// What the receiver answered, cut short. Administrators only (absent for everyone else).
    pub detail: Option<String>,
    pub http_status: Option<i64>,
}

/// A review decision. `comment` is required to reject.
#[derive(Object)]
pub struct ReviewIn {
    pub comment: Option<String>,
    /// The commit the reviewer looked at; if the release was edited to another one since, the
    /// decision is refused (409).
    pub commit_id: Option<String>,
}

/// An edit of a release not yet queued: a new name and/or what it ships (give `branch`, `tag`
/// or `commit` as when requesting; none keeps the ref but resolves it again).
#[derive(Object)]
pub struct ReleaseEditIn {
    pub name: Option<String>,
    pub branch: Option<String>,
    pub tag: Option<String>,
    pub commit: Option<String>,
}

#[derive(Object)]
pub struct ReleaseHostOut {
    pub host_id: i64,
    pub host_name: String,
    pub addr: String,
    /// pending | prepared | skipped | switched | failed
    pub status: String,
    /// The stage it reached.
    pub stage: String,
    /// The reason when it failed.
    pub message: String,
    pub bytes_sent: i64,
    /// The version live before this release.
    pub previous_version: Option<String>,
    pub updated_at: String,
}

impl From<ReleaseHost> for ReleaseHostOut {
    fn from(h: ReleaseHost) -> Self {
        Self {
            host_id: h.host_id,
            host_name: h.host_name,
            addr: h.addr,
            status: h.status,
            stage: h.stage,
            message: h.message,
            bytes_sent: h.bytes_sent,
            previous_version: h.previous_version,
            updated_at: h.updated_at,
        }
    }
}

#[derive(Object)]
pub struct ReleaseOut {
    pub id: i64,
    pub config_id: i64,
    pub app_id: i64,
    pub environment_id: i64,
    pub name: String,
    pub kind: KindDto,
    /// branch | tag | commit | version
    pub ref_kind: String,
    pub ref_name: String,
    /// Full SHA, resolved when the release was requested.
    pub commit_id: String,
    pub commit_message: String,
    /// The version folder on the hosts (set when a release runs; the target of a rollback).
    pub version: Option<String>,
    pub status: StatusDto,
    /// Why it failed.
    pub error: Option<String>,
    pub requested_by: i64,
    pub created_at: String,
    pub updated_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    /// Who approved or rejected it (absent until reviewed, and again after an edit).
    pub reviewed_by: Option<i64>,
    /// The reviewer's comment (required to reject).
    pub review_comment: Option<String>,
    pub reviewed_at: Option<String>,
    /// Per-host results (in `GET /api/releases/{id}`).
    pub hosts: Vec<ReleaseHostOut>,
}

fn out(r: Release, hosts: Vec<ReleaseHost>) -> ReleaseOut {
    ReleaseOut {
        id: r.id,
        config_id: r.config_id,
        app_id: r.app_id,
        environment_id: r.environment_id,
        name: r.name,
        kind: match r.kind {
            ReleaseKind::Release => KindDto::Release,
            ReleaseKind::Rollback => KindDto::Rollback,
        },
        ref_kind: r.ref_kind,
        ref_name: r.ref_name,
        commit_id: r.commit_id,
        commit_message: r.commit_message,
        version: r.version,
        status: r.status.into(),
        error: r.error,
        requested_by: r.requested_by,
        created_at: r.created_at,
        updated_at: r.updated_at,
        started_at: r.started_at,
        finished_at: r.finished_at,
        reviewed_by: r.reviewed_by,
        review_comment: r.review_comment,
        reviewed_at: r.reviewed_at,
        hosts: hosts.into_iter().map(Into::into).collect(),
    }
}

/// One release event, as sent on the SSE stream (the SSE `id` is `id`).
#[derive(Object, Clone)]
pub struct EventOut {
    pub id: i64,
    pub release_id: i64,
    pub at: String,
    /// release | checkout | package | prepare | switch | cleanup | notify
    pub stage: String,
    pub host: Option<String>,
    /// started | output | progress | succeeded | failed | info
    pub status: String,
    pub message: String,
    pub bytes_sent: Option<u64>,
    pub exit_code: Option<i32>,
}

impl From<ReleaseEvent> for EventOut {
    fn from(e: ReleaseEvent) -> Self {
        Self {
            id: e.id,
            release_id: e.release_id,
            at: e.at,
            stage: serde_name(&e.stage),
            host: e.host,
            status: serde_name(&e.status),
            message: e.message,
            bytes_sent: e.bytes_sent,
            exit_code: e.exit_code,
        }
    }
}

/// The serde (snake_case) name of a unit enum variant.
fn serde_name(v: &impl serde::Serialize) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// Resolves the request's ref to a full commit now: a missing ref is a 422 here, not a
/// failed release later.
async fn resolve(
    st: &State,
    body: &ReleaseIn,
    config: &hippo_shared::db::configs::ReleaseConfig,
    admin: bool,
) -> Result<(GitRef, String, String), ApiError> {
    let given = [
        ("branch", &body.branch),
        ("tag", &body.tag),
        ("commit", &body.commit),
    ];
    let (display, spec) = match (&body.branch, &body.tag, &body.commit) {
        (Some(b), None, None) => (GitRef::branch(b).map_err(ApiError::field("branch"))?, None),
        (None, Some(t), None) => (GitRef::tag(t).map_err(ApiError::field("tag"))?, None),
        (b, None, Some(c)) => {
            let commit = GitRef::commit(c).map_err(ApiError::field("commit"))?;
            match b {
                Some(b) => (
                    GitRef::branch(b).map_err(ApiError::field("branch"))?,
                    Some(commit),
                ),
                None => (commit, None),
            }
        }
        _ => {
            let n = given.iter().filter(|(_, v)| v.is_some()).count();
            let msg = if n == 0 {
                "give one of branch, tag or commit"
            } else {
                "give only one of branch or tag (a commit may come with its branch)"
            };
            return Err(ApiError::invalid("branch", msg));
        }
    };
    let target = spec.unwrap_or_else(|| display.clone());
    let refspec = match &target {
        GitRef::Branch(b) => RefSpec::Branch(b.clone()),
        GitRef::Tag(t) => RefSpec::Tag(t.clone()),
        GitRef::Commit(c) => RefSpec::Commit(c.clone()),
    };
    let url = synced_repo(st, config, true, admin).await?;
    let repos = st.repos.clone();
    let info = tokio::task::spawn_blocking(move || repos.resolve(&url, &refspec))
        .await
        .map_err(ApiError::internal)?
        .map_err(git_error)?;
    Ok((display, info.id, info.message))
}

/// The release, if the caller holds any permission for its environment and app (else 403).
async fn visible(st: &State, auth: &Auth, id: i64) -> Result<Release, ApiError> {
    let r = st.db.get_release(id).await?;
    auth.0.require_sees(r.environment_id, Some(r.app_id))?;
    Ok(r)
}

/// Approve or reject (`to`), as described on the two routes.
async fn review(
    st: &State,
    auth: &Auth,
    id: i64,
    to: ReleaseStatus,
    body: ReviewIn,
) -> ApiResult<Json<ReleaseOut>> {
    let r = visible(st, auth, id).await?;
    if let Some(seen) = &body.commit_id
        && seen.trim() != r.commit_id
    {
        return Err(ApiError::conflict(
            "changed",
            format!(
                "release {} now ships commit {}, not the one reviewed; look again",
                r.id, r.commit_id
            ),
        ));
    }
    let comment = body.comment;
    auth.0
        .require(Permission::Review, Some(r.environment_id), Some(r.app_id))?;
    if r.requested_by == auth.0.id {
        return Err(ApiError::forbidden(
            "review",
            format!(
                "{} requested release {} and cannot review it; another reviewer must",
                auth.0.username, r.id
            ),
        ));
    }
    let comment = comment.map(|c| c.trim().to_owned()).unwrap_or_default();
    if to == ReleaseStatus::Rejected && comment.is_empty() {
        return Err(ApiError::invalid(
            "comment",
            "say why the release is rejected (comment is required)",
        ));
    }
    if comment.chars().count() > 2000 {
        return Err(ApiError::invalid(
            "comment",
            "comment is longer than 2000 characters",
        ));
    }
    if r.status != ReleaseStatus::PendingReview
        || !st
            .db
            .transition_release_as(id, to, None, &auth.0.actor(), &comment)
            .await?
    {
        return Err(ApiError::conflict(
            "invalid_status",
            format!(
                "release {} is {} (only a release pending review can be approved or rejected)",
                r.id,
                st.db.get_release(id).await?.status
            ),
        ));
    }
    let kind = if to == ReleaseStatus::Approved {
        NoticeKind::Approved
    } else {
        NoticeKind::Rejected
    };
    queue_notice(st, id, kind).await;
    Ok(Json(out(st.db.get_release(id).await?, Vec::new())))
}

/// Notices are sent by the workers: queue a notice job. A queue that is down costs the notice,
/// not the request (it is logged).
async fn queue_notice(st: &State, release_id: i64, kind: NoticeKind) {
    if let Err(e) = st
        .queue
        .push(DeployJob::notice(release_id, kind.as_str()))
        .await
    {
        tracing::warn!(release_id, notice = kind.as_str(), error = %e, "could not queue a notice");
    }
}

async fn release_is_final(st: &State, id: i64) -> bool {
    st.db
        .get_release(id)
        .await
        .is_ok_and(|r| r.status.is_final())
}

/// Rejected and cancelled releases end without a final event.
async fn ended_without_events(st: &State, id: i64) -> bool {
    st.db
        .get_release(id)
        .await
        .is_ok_and(|r| matches!(r.status, ReleaseStatus::Rejected | ReleaseStatus::Cancelled))
}

#[derive(Default)]
pub struct ReleasesApi;

#[OpenApi(prefix_path = "/api/releases", tag = "ApiTags::Releases")]
impl ReleasesApi {
    /// Request a release or a rollback. It starts as `pending_review` when the config has review
    /// on, otherwise `approved`; run it with `POST /api/releases/{id}/run`.
    #[oai(path = "/", method = "post")]
    async fn create(
        &self,
        auth: Auth,
        st: Data<&Arc<State>>,
        body: Json<ReleaseIn>,
    ) -> ApiResult<Created<ReleaseOut>> {
        let config = st
            .db
            .get_config(body.config_id)
            .await
            .map_err(|_| ApiError::invalid("config_id", "config_id names no release config"))?;
        auth.0.require(
            Permission::Request,
            Some(config.environment_id),
            Some(config.app_id),
        )?;
        let name = Name::parse(&body.name).map_err(ApiError::field("name"))?;
        let (kind, ref_kind, ref_name, commit_id, message, version) = match body.kind {
            KindDto::Release => {
                if body.version.is_some() {
                    return Err(ApiError::invalid(
                        "version",
                        "version is only for rollbacks",
                    ));
                }
                let (r, commit, message) = resolve(&st, &body, &config, auth.0.is_admin).await?;
                (
                    ReleaseKind::Release,
                    r.kind().to_owned(),
                    r.name().to_owned(),
                    commit,
                    message,
                    None,
                )
            }
            KindDto::Rollback => {
                let Some(v) = body.version.as_deref() else {
                    return Err(ApiError::invalid(
                        "version",
                        "a rollback needs the version to go back to",
                    ));
                };
                let v = VersionName::parse(v).map_err(ApiError::field("version"))?;
                let kept = st.db.host_versions(config.id).await?;
                let Some(found) = kept.iter().find(|k| k.version == v.as_str()) else {
                    return Err(ApiError::invalid(
                        "version",
                        format!("version {v} is not kept on any host of this config"),
                    ));
                };
                (
                    ReleaseKind::Rollback,
                    "version".to_owned(),
                    v.to_string(),
                    found.commit_id.clone(),
                    String::new(),
                    Some(v.to_string()),
                )
            }
        };
        let status = if config.spec.review_enabled {
            ReleaseStatus::PendingReview
        } else {
            ReleaseStatus::Approved
        };
        let r = st
            .db
            .create_release(&NewRelease {
                config_id: config.id,
                app_id: config.app_id,
                environment_id: config.environment_id,
                name: name.to_string(),
                kind,
                ref_kind,
                ref_name,
                commit_id,
                commit_message: message,
                version,
                status,
                snapshot: config.spec,
                requested_by: auth.0.id,
            })
            .await?;
        let changes = serde_json::json!({
            "kind": r.kind.as_str(), "name": r.name, "ref": format!("{} {}", r.ref_kind, r.ref_name),
            "commit_id": r.commit_id, "status": r.status.as_str(),
        });
        audit::record(&st, &auth.0, "release", Some(r.id), "request", changes).await;
        if r.status == ReleaseStatus::PendingReview {
            queue_notice(&st, r.id, NoticeKind::Requested).await;
        }
        Ok(Created::Ok(Json(out(r, Vec::new()))))
    }

    /// List releases, newest first.
    #[oai(path = "/", method = "get")]
    async fn list(
        &self,
        auth: Auth,
        st: Data<&Arc<State>>,
        status: Query<Option<StatusDto>>,
        app_id: Query<Option<i64>>,
        environment_id: Query<Option<i64>>,
    ) -> ApiResult<Json<Vec<ReleaseOut>>> {
        let f = ReleaseFilter {
            status: status.0.map(Into::into),
            app_id: app_id.0,
            environment_id: environment_id.0,
        };
        Ok(Json(
            st.db
                .list_releases(&f)
                .await?
                .into_iter()
                .filter(|r| auth.0.sees(r.environment_id, Some(r.app_id)))
                .map(|r| out(r, Vec::new()))
                .collect(),
        ))
    }

    /// Get a release with its per-host results.
    #[oai(path = "/:id", method = "get")]
    async fn get(
        &self,
        auth: Auth,
        st: Data<&Arc<State>>,
        id: Path<i64>,
    ) -> ApiResult<Json<ReleaseOut>> {
        let r = visible(&st, &auth, id.0).await?;
        let hosts = st.db.release_hosts(id.0).await?;
        Ok(Json(out(r, hosts)))
    }

    /// Queue an approved (or failed, to retry) release. 409 if its status does not allow it.
    #[oai(path = "/:id/run", method = "post")]
    async fn run(
        &self,
        auth: Auth,
        st: Data<&Arc<State>>,
        id: Path<i64>,
    ) -> ApiResult<Json<ReleaseOut>> {
        let r = visible(&st, &auth, id.0).await?;
        auth.0
            .require(Permission::Release, Some(r.environment_id), Some(r.app_id))?;
        if !st
            .db
            .transition_release_as(id.0, ReleaseStatus::Queued, None, &auth.0.actor(), "")
            .await?
        {
            return Err(ApiError::conflict(
                "invalid_status",
                format!(
                    "release {} is {} and cannot be run (only approved or failed releases can)",
                    r.id, r.status
                ),
            ));
        }
        if let Err(e) = st.queue.push(DeployJob::run(id.0)).await {
            tracing::error!(release_id = id.0, error = %e, "could not queue a release");
            // Only if no worker took it meanwhile (a push that timed out may have landed); the
            // final event ends any stream following the release.
            let reason = "could not be queued";
            if matches!(
                st.db.fail_if_queued(id.0, reason, &auth.0.actor()).await,
                Ok(true)
            ) {
                let end =
                    ReleaseEvent::new(id.0, Stage::Release, EventStatus::Failed).message(reason);
                if let Err(e) = st.hub.publish(end).await {
                    tracing::warn!(release_id = id.0, error = %e, "could not store the final event");
                }
            }
            return Err(ApiError::unavailable(
                "queue_unavailable",
                format!(
                    "the deploy queue is unavailable ({e}); release {} is marked failed and can be run again",
                    id.0
                ),
            ));
        }
        let r = st.db.get_release(id.0).await?;
        Ok(Json(out(r, Vec::new())))
    }

    /// Approve a release waiting for review (`pending_review` → `approved`). Needs `review`
    /// for its environment and app; the requester cannot approve their own release.
    #[oai(path = "/:id/approve", method = "post")]
    async fn approve(
        &self,
        auth: Auth,
        st: Data<&Arc<State>>,
        id: Path<i64>,
        body: Json<ReviewIn>,
    ) -> ApiResult<Json<ReleaseOut>> {
        review(&st, &auth, id.0, ReleaseStatus::Approved, body.0).await
    }

    /// Reject a release waiting for review (`pending_review` → `rejected`); a comment saying
    /// why is required. A rejected release cannot run; edit it to send it back to review.
    #[oai(path = "/:id/reject", method = "post")]
    async fn reject(
        &self,
        auth: Auth,
        st: Data<&Arc<State>>,
        id: Path<i64>,
        body: Json<ReviewIn>,
    ) -> ApiResult<Json<ReleaseOut>> {
        review(&st, &auth, id.0, ReleaseStatus::Rejected, body.0).await
    }

    /// Edit a release that is not queued yet (pending review, approved or rejected). With
    /// review on, it goes back to `pending_review`: an earlier approval does not carry over.
    #[oai(path = "/:id", method = "put")]
    async fn edit(
        &self,
        auth: Auth,
        st: Data<&Arc<State>>,
        id: Path<i64>,
        body: Json<ReleaseEditIn>,
    ) -> ApiResult<Json<ReleaseOut>> {
        let r = visible(&st, &auth, id.0).await?;
        auth.0
            .require(Permission::Request, Some(r.environment_id), Some(r.app_id))?;
        if r.kind == ReleaseKind::Rollback {
            return Err(ApiError::conflict(
                "invalid_kind",
                "a rollback cannot be edited; request a new one",
            ));
        }
        let config = st.db.get_config(r.config_id).await?;
        let name = match &body.name {
            Some(n) => Name::parse(n).map_err(ApiError::field("name"))?.to_string(),
            None => r.name.clone(),
        };
        let new_ref = body.branch.is_some() || body.tag.is_some() || body.commit.is_some();
        let request = ReleaseIn {
            config_id: r.config_id,
            name: name.clone(),
            kind: KindDto::Release,
            branch: if new_ref {
                body.branch.clone()
            } else {
                (r.ref_kind == "branch").then(|| r.ref_name.clone())
            },
            tag: if new_ref {
                body.tag.clone()
            } else {
                (r.ref_kind == "tag").then(|| r.ref_name.clone())
            },
            commit: if new_ref {
                body.commit.clone()
            } else {
                (r.ref_kind == "commit").then(|| r.commit_id.clone())
            },
            version: None,
        };
        let (git_ref, commit_id, commit_message) =
            resolve(&st, &request, &config, auth.0.is_admin).await?;
        let edit = ReleaseEdit {
            name,
            ref_kind: git_ref.kind().to_owned(),
            ref_name: git_ref.name().to_owned(),
            commit_id,
            commit_message,
        };
        if !st
            .db
            .edit_release(id.0, &edit, r.snapshot.review_enabled, &auth.0.actor())
            .await?
        {
            return Err(ApiError::conflict(
                "invalid_status",
                format!(
                    "release {} is {} and can no longer be edited",
                    r.id, r.status
                ),
            ));
        }
        Ok(Json(out(st.db.get_release(id.0).await?, Vec::new())))
    }

    /// Every delivery attempt of the release's notices (requested, approved, started, …) on
    /// each channel of its config, oldest first.
    #[oai(path = "/:id/notices", method = "get")]
    async fn notices(
        &self,
        auth: Auth,
        st: Data<&Arc<State>>,
        id: Path<i64>,
    ) -> ApiResult<Json<Vec<NoticeAttemptOut>>> {
        visible(&st, &auth, id.0).await?;
        Ok(Json(
            st.db
                .notice_attempts(id.0)
                .await?
                .into_iter()
                .map(|a| NoticeAttemptOut {
                    notice: a.notice,
                    channel: a.channel,
                    channel_index: a.channel_index,
                    attempt: a.attempt,
                    at: a.at,
                    duration_ms: a.duration_ms,
                    ok: a.ok_flag.0,
                    error: a.error,
                    detail: a.detail.filter(|_| auth.0.is_admin),
                    http_status: a.http_status,
                })
                .collect(),
        ))
    }

    /// Server-Sent Events: the stored events of a release (after `Last-Event-ID` if given),
    /// then live ones until the release ends.
    #[oai(path = "/:id/events", method = "get")]
    async fn events(
        &self,
        auth: Auth,
        st: Data<&Arc<State>>,
        id: Path<i64>,
        #[oai(name = "Last-Event-ID")] last_event_id: Header<Option<i64>>,
    ) -> ApiResult<EventStream<futures::stream::BoxStream<'static, EventOut>>> {
        visible(&st, &auth, id.0).await?;
        let st: Arc<State> = st.clone();
        let release_id = id.0;
        let mut last = last_event_id.0.unwrap_or(0);
        // Subscribe before replaying, so nothing published in between is missed.
        let mut live = st.hub.subscribe();
        // Events arrive on the in-process feed (in cluster mode fed by Redis pub/sub from the
        // workers); the store is the safety net, read whenever the feed is quiet, more often
        // in cluster mode where the feed can miss events while Redis restarts.
        let quiet = if st.settings.redis_url.is_some() {
            Duration::from_secs(1)
        } else {
            Duration::from_secs(5)
        };
        let stream = async_stream::stream! {
            // A release that was re-run has the final event of each run; the stream ends at a
            // final event only when it is the newest one and the release is finished.
            let stored = st.hub.replay(release_id, last).await.unwrap_or_default();
            let mut done = stored.last().is_some_and(ReleaseEvent::is_final) && release_is_final(&st, release_id).await;
            for ev in stored {
                last = ev.id;
                yield ev;
            }
            while !done {
                let next = tokio::time::timeout(quiet, live.recv()).await;
                let batch = match next {
                    // A live event is a wake-up: read everything after `last` from the store, so
                    // an event the feed dropped (Redis restarting) is not skipped.
                    Ok(Ok(ev)) if ev.release_id == release_id && ev.id > last => {
                        match st.hub.replay(release_id, last).await {
                            Ok(stored) if stored.last().is_some_and(|s| s.id >= ev.id) => stored,
                            _ => vec![ev],
                        }
                    }
                    Ok(Ok(_)) => continue,
                    Ok(Err(RecvError::Closed)) => break,
                    // Fell behind, or quiet for a while (events may come from another
                    // process): read what is stored.
                    Ok(Err(RecvError::Lagged(_))) | Err(_) => {
                        let stored = st.hub.replay(release_id, last).await.unwrap_or_default();
                        if stored.is_empty() && ended_without_events(&st, release_id).await {
                            break;
                        }
                        stored
                    }
                };
                for ev in batch {
                    last = ev.id;
                    done = ev.is_final();
                    yield ev;
                }
            }
        };
        let stream: futures::stream::BoxStream<'static, EventOut> =
            Box::pin(futures::StreamExt::map(stream, EventOut::from));
        Ok(EventStream::new(stream)
            .keep_alive(Duration::from_secs(15))
            .to_event(|e: EventOut| {
                let id = e.id.to_string();
                let kind =
                    if e.stage == "release" && (e.status == "succeeded" || e.status == "failed") {
                        "end"
                    } else {
                        "stage"
                    };
                Event::message(e.to_json_string()).id(id).event_type(kind)
            }))
    }
}
