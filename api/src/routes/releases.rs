//! `/api/releases`: request a release (or a rollback), review it, run it, follow its events.
use super::{
    AUTH, ApiResult, ApiTags, BAD_PARAM, BODY, CONFLICT, Created, FORBIDDEN, NOT_FOUND,
    UNAVAILABLE, UPSTREAM,
};
use crate::audit;
use crate::auth::{Auth, CurrentUser};
use crate::body::JsonBody;
use crate::problem::ApiError;
use crate::repo;
use crate::routes::configs::{ConfigSnapshot, snapshot_out};
use crate::state::State;
use crate::text::{Comment, CommitText, DateTimeText, Name, RefName, Timestamp, VersionText};
use crate::values::ChannelType;
use crate::values::NoticeKindName;
use hippo_shared::db::audit::Actor;
use hippo_shared::db::releases::{
    Cancel, NamedRelease, NewRelease, Release, ReleaseEdit, ReleaseHost, ReleaseQuery, Visibility,
};
use hippo_shared::domain::{
    self, AppId, CommitId, ConfigId, EnvironmentId, GitRef, HostId, HostStatus, Permission,
    RefKind, ReleaseId, ReleaseKind, ReleaseStatus, UserId, VersionName,
};
use hippo_shared::events::{self, EventStatus, ReleaseEvent, Stage};
use hippo_shared::jobs::DeployJob;
use hippo_worker::notify::NoticeKind;
use poem::IntoResponse;
use poem::web::Data;
use poem::web::sse::Event;
use poem_openapi::param::{Header, Path, Query};
use poem_openapi::payload::{EventStream, Json, PlainText};
use poem_openapi::registry::{
    MetaMediaType, MetaResponse, MetaResponses, MetaSchema, MetaSchemaRef, Registry,
};
use poem_openapi::types::ToJSON;
use poem_openapi::{ApiResponse, Object, OpenApi};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;

/// A release request. For a `release` (the default kind): give `branch`, `tag` or `commit` (a
/// commit may come with the branch it was picked from). For a `rollback`: give `version` (one
/// of the config's kept versions, `GET /api/release-configs/{id}/versions`).
#[derive(Object)]
#[oai(example)]
pub struct ReleaseIn {
    pub config_id: ConfigId,
    /// A title for people ("Fix the cart total").
    pub name: Name,
    pub kind: Option<ReleaseKind>,
    pub branch: Option<RefName>,
    pub tag: Option<RefName>,
    pub commit: Option<CommitText>,
    pub version: Option<VersionText>,
    /// Only these hosts of the config (a subset; absent: all of them). Each must be one of the
    /// config's hosts.
    #[oai(validator(min_items = 1, max_items = 1000, unique_items))]
    pub host_ids: Option<Vec<HostId>>,
}

/// What a request names to ship, as typed.
struct Wanted {
    branch: Option<String>,
    tag: Option<String>,
    commit: Option<String>,
}

/// One delivery attempt of one notice on one channel.
#[derive(Object)]
pub struct NoticeAttemptOut {
    pub notice: NoticeKindName,
    pub channel: ChannelType,
    /// Position of the channel in the config's list.
    pub channel_index: i64,
    pub attempt: i64,
    pub at: Timestamp,
    pub duration_ms: i64,
    pub ok: bool,
    /// Why it failed: the kind of failure, the HTTP status, a provider's error code (never a
    /// secret, never the receiver's answer); absent when it worked.
    #[oai(skip_serializing_if_is_none)]
    pub error: Option<String>,
    /// What the receiver answered, cut short. Administrators only (absent for everyone else).
    #[oai(skip_serializing_if_is_none)]
    pub detail: Option<String>,
    /// The HTTP status the channel answered, when it is an HTTP channel.
    #[oai(skip_serializing_if_is_none)]
    pub http_status: Option<i64>,
}

/// A review decision. `comment` is required to reject.
#[derive(Object)]
#[oai(example)]
pub struct ReviewIn {
    pub comment: Option<Comment>,
    /// The commit the reviewer looked at; if the release was edited to another one since, the
    /// decision is refused (409 `changed`).
    pub commit_id: Option<CommitText>,
    /// Approve and schedule: the release is queued by itself at this time (RFC 3339; within
    /// a year from now). Needs the `release` permission too. Approve only.
    pub run_at: Option<DateTimeText>,
}

/// When an approved release runs by itself.
#[derive(Object)]
pub struct ScheduleIn {
    /// RFC 3339, in the future (within a year).
    pub run_at: DateTimeText,
}

/// An edit of a release not yet queued: a new name and/or what it ships (give `branch`, `tag`
/// or `commit` as when requesting; none keeps the ref but resolves it again).
#[derive(Object)]
pub struct ReleaseEditIn {
    pub name: Option<Name>,
    pub branch: Option<RefName>,
    pub tag: Option<RefName>,
    pub commit: Option<CommitText>,
}

/// One host's part in a release; `stage` (absent before it started) is the stage it reached.
#[derive(Object)]
pub struct ReleaseHostOut {
    pub host_id: HostId,
    pub host_name: String,
    pub addr: String,
    pub status: HostStatus,
    #[oai(skip_serializing_if_is_none)]
    pub stage: Option<Stage>,
    /// The reason when it failed.
    pub message: String,
    pub bytes_sent: i64,
    /// The version live before this release; absent on a first release.
    #[oai(skip_serializing_if_is_none)]
    pub previous_version: Option<String>,
    /// The wave it switches in (1 is the first); absent when the config has no waves.
    #[oai(skip_serializing_if_is_none)]
    pub wave: Option<u32>,
    pub updated_at: Timestamp,
}

fn stage_of(s: &str) -> Option<Stage> {
    serde_json::from_value::<Stage>(serde_json::Value::String(s.to_owned())).ok()
}

impl From<ReleaseHost> for ReleaseHostOut {
    fn from(h: ReleaseHost) -> Self {
        Self {
            host_id: h.host_id,
            host_name: h.host_name,
            addr: h.addr,
            status: h.status,
            stage: stage_of(&h.stage),
            message: h.message,
            bytes_sent: h.bytes_sent,
            previous_version: h.previous_version,
            wave: None,
            updated_at: h.updated_at.into(),
        }
    }
}

#[derive(Object)]
pub struct ReleaseOut {
    pub id: ReleaseId,
    pub config_id: ConfigId,
    pub app_id: AppId,
    pub app_name: String,
    pub environment_id: EnvironmentId,
    pub environment_name: String,
    pub name: String,
    pub kind: ReleaseKind,
    pub ref_kind: RefKind,
    /// The branch, tag or commit asked for (the version, for a rollback).
    pub ref_name: String,
    /// Full SHA, resolved when the release was requested.
    pub commit_id: String,
    pub commit_message: String,
    /// The version folder on the hosts (set when a release runs; the target of a rollback).
    #[oai(skip_serializing_if_is_none)]
    pub version: Option<String>,
    pub status: ReleaseStatus,
    /// Why it failed; absent unless it did.
    #[oai(skip_serializing_if_is_none)]
    pub error: Option<String>,
    pub requested_by: UserId,
    pub requested_by_name: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    #[oai(skip_serializing_if_is_none)]
    pub started_at: Option<Timestamp>,
    #[oai(skip_serializing_if_is_none)]
    pub finished_at: Option<Timestamp>,
    /// Who approved or rejected it (absent until reviewed, and again after an edit).
    #[oai(skip_serializing_if_is_none)]
    pub reviewed_by: Option<UserId>,
    #[oai(skip_serializing_if_is_none)]
    pub reviewed_by_name: Option<String>,
    /// The reviewer's comment (required to reject).
    #[oai(skip_serializing_if_is_none)]
    pub review_comment: Option<String>,
    #[oai(skip_serializing_if_is_none)]
    pub reviewed_at: Option<Timestamp>,
    /// Who cancelled it. On a `running` release: who asked to cancel it (it stops at the next
    /// safe point; if the switch had begun it completes, and the release says so).
    #[oai(skip_serializing_if_is_none)]
    pub cancelled_by: Option<UserId>,
    #[oai(skip_serializing_if_is_none)]
    pub cancelled_by_name: Option<String>,
    /// The hosts it is for, when not all of its config's (a subset, or a retry's hosts).
    #[oai(skip_serializing_if_is_none)]
    pub host_ids: Option<Vec<HostId>>,
    /// The failed release this one sends again to the hosts that did not switch.
    #[oai(skip_serializing_if_is_none)]
    pub retry_of: Option<ReleaseId>,
    /// When it is (or was) scheduled to be queued by itself; an `approved` release with
    /// `run_at` is a scheduled one.
    #[oai(skip_serializing_if_is_none)]
    pub run_at: Option<Timestamp>,
    /// Per-host results (only in `GET /api/releases/{id}`; empty in lists).
    pub hosts: Vec<ReleaseHostOut>,
    /// The config this release runs with, as it was when it was requested (what a reviewer
    /// approves; no secrets). Absent in lists.
    #[oai(skip_serializing_if_is_none)]
    pub snapshot: Option<ConfigSnapshot>,
    /// A running release waiting after a wave for `POST /api/releases/{id}/continue` (only in
    /// `GET /api/releases/{id}`).
    #[oai(skip_serializing_if_is_none)]
    pub paused: Option<crate::routes::rollout::PauseOut>,
}

/// A release as the API shows it; `with_snapshot`: include the config it runs with (not in
/// lists).
fn out(n: NamedRelease, hosts: Vec<ReleaseHost>, with_snapshot: bool) -> ReleaseOut {
    let r = n.release;
    let snapshot = with_snapshot.then(|| snapshot_out(r.snapshot));
    ReleaseOut {
        id: r.id,
        config_id: r.config_id,
        app_id: r.app_id,
        app_name: n.app_name,
        environment_id: r.environment_id,
        environment_name: n.environment_name,
        name: r.name,
        kind: r.kind,
        ref_kind: r.ref_kind,
        ref_name: r.ref_name,
        commit_id: r.commit_id.into(),
        commit_message: r.commit_message,
        version: r.version.map(Into::into),
        status: r.status,
        error: r.error,
        requested_by: r.requested_by,
        requested_by_name: n.requested_by_name,
        created_at: r.created_at.into(),
        updated_at: r.updated_at.into(),
        started_at: r.started_at.map(Into::into),
        finished_at: r.finished_at.map(Into::into),
        reviewed_by: r.reviewed_by,
        reviewed_by_name: n.reviewed_by_name,
        review_comment: r.review_comment,
        reviewed_at: r.reviewed_at.map(Into::into),
        cancelled_by: r.cancelled_by,
        cancelled_by_name: n.cancelled_by_name,
        host_ids: r.host_ids,
        retry_of: r.retry_of,
        run_at: r.run_at.map(Into::into),
        hosts: hosts.into_iter().map(Into::into).collect(),
        snapshot,
        paused: None,
    }
}

/// A release as the API shows it, with the names of what its ids point at.
async fn shown(st: &State, r: Release, hosts: Vec<ReleaseHost>) -> Result<ReleaseOut, ApiError> {
    Ok(out(st.db.release_names(&r).await?, hosts, true))
}

/// How many releases (matching the list's other filters) are in each status.
#[derive(Object, Default)]
pub struct StatusCounts {
    pub all: i64,
    pub pending_review: i64,
    pub approved: i64,
    pub queued: i64,
    pub running: i64,
    pub succeeded: i64,
    pub failed: i64,
    pub rejected: i64,
    pub cancelled: i64,
}

/// One page of releases, newest first; `counts` are per status, matching every filter but
/// `status` (for tabs).
#[derive(Object)]
pub struct ReleasePageOut {
    pub items: Vec<ReleaseOut>,
    /// Releases matching every filter (all pages).
    pub total: i64,
    pub page: u32,
    pub per_page: u32,
    pub counts: StatusCounts,
}

/// One release event (the SSE `data` of the event stream, and an item of the event log).
#[derive(Object, Clone)]
pub struct EventOut {
    /// Increases across all releases; the SSE event id (resume with `Last-Event-ID`).
    pub id: i64,
    pub release_id: ReleaseId,
    pub at: Timestamp,
    pub stage: Stage,
    /// The host it is about; absent for the release server's stages.
    #[oai(skip_serializing_if_is_none)]
    pub host: Option<String>,
    pub status: EventStatus,
    pub message: String,
    /// Bytes sent to the host so far (`progress`).
    #[oai(skip_serializing_if_is_none)]
    pub bytes_sent: Option<u64>,
    /// A hook's or command's exit code.
    #[oai(skip_serializing_if_is_none)]
    pub exit_code: Option<i32>,
}

impl From<ReleaseEvent> for EventOut {
    fn from(e: ReleaseEvent) -> Self {
        Self {
            id: e.id,
            release_id: e.release_id,
            at: e.at.into(),
            stage: e.stage,
            host: e.host,
            status: e.status,
            message: e.message,
            bytes_sent: e.bytes_sent,
            exit_code: e.exit_code,
        }
    }
}

/// The stored events of a release after `after`, and whether the release has ended.
#[derive(Object)]
pub struct EventLogOut {
    pub events: Vec<EventOut>,
    /// The release is over (succeeded, failed, rejected or cancelled) and every event is
    /// stored: nothing more will come.
    pub finished: bool,
}

/// The event stream's description in the spec (what a client reads).
const SSE_FRAMING: &str = "Server-Sent Events (text/event-stream). Each event is `id: <event id>` \
(increasing; send it back as `Last-Event-ID` to resume), `event: stage` (a step of the release) \
or `event: end` (the release's final event: stage `release`, status `succeeded`, `failed` or \
`cancelled`), \
and `data: <one EventOut as JSON>`, then a blank line. A comment line (`:`) is sent every 15 s \
to keep the connection open. The stored events come first, then live ones; the server closes the \
stream after the `end` event of a finished release (at once when resumed after it), and for a \
rejected or cancelled release with no events.";

/// `200 text/event-stream`: the release's events as Server-Sent Events.
pub struct EventStreamOut(poem::Response);

impl IntoResponse for EventStreamOut {
    fn into_response(self) -> poem::Response {
        self.0
    }
}

impl ApiResponse for EventStreamOut {
    fn meta() -> MetaResponses {
        MetaResponses {
            responses: vec![MetaResponse {
                description: SSE_FRAMING,
                status: Some(200),
                status_range: None,
                content: vec![MetaMediaType {
                    content_type: "text/event-stream",
                    schema: MetaSchemaRef::Inline(Box::new(MetaSchema {
                        description: Some(SSE_FRAMING),
                        ..MetaSchema::new("string")
                    })),
                }],
                headers: vec![],
            }],
        }
    }
    fn register(registry: &mut Registry) {
        <EventOut as poem_openapi::types::Type>::register(registry);
    }
}

fn visibility(user: &CurrentUser) -> Visibility {
    if user.is_admin {
        return Visibility::All;
    }
    let mut scopes: Vec<(Option<EnvironmentId>, Option<AppId>)> = user
        .grants
        .iter()
        .map(|g| (g.environment_id, g.app_id))
        .collect();
    scopes.sort_unstable();
    scopes.dedup();
    Visibility::Scopes(scopes)
}

/// Resolves the request's ref to a full commit now: a missing ref is a 422 here, not a
/// failed release later.
async fn resolve(
    st: &State,
    body: &Wanted,
    config: &hippo_shared::db::configs::ReleaseConfig,
    admin: bool,
) -> Result<(GitRef, CommitId, String), ApiError> {
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
    let url = repo::synced(st, config, true, admin).await?;
    let repos = st.repos.clone();
    let asked = display.clone();
    // A commit picked from a branch must be on that branch (its tip or an ancestor).
    let info = tokio::task::spawn_blocking(move || match (&asked, spec) {
        (GitRef::Branch(branch), Some(GitRef::Commit(sha))) => {
            repos.resolve_on_branch(&url, &sha, branch)
        }
        _ => repos.resolve(&url, &asked),
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(repo::git_error)?;
    let commit = CommitId::parse(&info.id).map_err(|e| ApiError::internal(e.0))?;
    Ok((display, commit, info.message))
}

/// The release, if the caller holds any permission for its environment and app (else 404).
pub(crate) async fn visible(st: &State, auth: &Auth, id: ReleaseId) -> Result<Release, ApiError> {
    let r = st.db.get_release(id).await?;
    auth.0
        .require_sees(r.environment_id, Some(r.app_id), "release")?;
    Ok(r)
}

/// A schedule time as given: RFC 3339, not in the past, within a year; stored in UTC.
fn run_time(t: &DateTimeText) -> Result<String, ApiError> {
    let at = chrono::DateTime::parse_from_rfc3339(t.trim())
        .map_err(|_| ApiError::invalid("run_at", "run_at must be an RFC 3339 date-time"))?
        .with_timezone(&chrono::Utc);
    let now = chrono::Utc::now();
    if at < now - chrono::Duration::seconds(5) {
        return Err(ApiError::invalid("run_at", "run_at is in the past"));
    }
    if at > now + chrono::Duration::days(366) {
        return Err(ApiError::invalid(
            "run_at",
            "run_at is more than a year from now",
        ));
    }
    Ok(hippo_shared::db::schedule::stored_time(at))
}

/// A request's host subset, checked against its config's hosts and kept in the config's order;
/// `None` when it names every host (the release is for all of them).
fn subset(config_hosts: &[HostId], asked: &[HostId]) -> Result<Option<Vec<HostId>>, ApiError> {
    if let Some(stray) = asked.iter().find(|h| !config_hosts.contains(h)) {
        return Err(ApiError::invalid(
            "host_ids",
            format!("host {stray} is not one of this config's hosts"),
        ));
    }
    let kept: Vec<HostId> = config_hosts
        .iter()
        .copied()
        .filter(|h| asked.contains(h))
        .collect();
    if kept.is_empty() {
        return Err(ApiError::invalid(
            "host_ids",
            "name at least one of the config's hosts",
        ));
    }
    Ok((kept.len() < config_hosts.len()).then_some(kept))
}

/// Approve or reject (`to`), as described on the two routes.
async fn review(
    st: &State,
    auth: &Auth,
    id: ReleaseId,
    to: ReleaseStatus,
    body: ReviewIn,
) -> Result<Json<ReleaseOut>, ApiError> {
    let r = visible(st, auth, id).await?;
    if let Some(seen) = &body.commit_id
        && seen.trim() != r.commit_id.as_str()
    {
        return Err(ApiError::conflict(
            "changed",
            format!(
                "release {} now ships commit {}, not the one reviewed; look again",
                r.id, r.commit_id
            ),
        ));
    }
    let comment = body.comment.map(|c| c.0);
    auth.0
        .require(Permission::Review, Some(r.environment_id), Some(r.app_id))?;
    let run_at = match &body.run_at {
        Some(_) if to != ReleaseStatus::Approved => {
            return Err(ApiError::invalid(
                "run_at",
                "only an approval can schedule a release",
            ));
        }
        Some(t) => {
            auth.0
                .require(Permission::Release, Some(r.environment_id), Some(r.app_id))?;
            Some(run_time(t)?)
        }
        None => None,
    };
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
    if let Some(t) = &run_at {
        st.db.schedule_release(id, t, &auth.0.actor()).await?;
    }
    let kind = if to == ReleaseStatus::Approved {
        NoticeKind::Approved
    } else {
        NoticeKind::Rejected
    };
    queue_notice(st, id, kind).await;
    Ok(Json(
        shown(st, st.db.get_release(id).await?, Vec::new()).await?,
    ))
}

/// Notices are sent by the workers: queue a notice job. A queue that is down costs the notice,
/// not the request (it is logged).
async fn queue_notice(st: &State, release_id: ReleaseId, kind: NoticeKind) {
    if let Err(e) = st
        .queue
        .push(DeployJob::notice(release_id, kind.as_str()))
        .await
    {
        tracing::warn!(%release_id, notice = kind.as_str(), error = %e, "could not queue a notice");
    }
}

async fn release_is_final(st: &State, id: ReleaseId) -> bool {
    st.db
        .get_release(id)
        .await
        .is_ok_and(|r| r.status.is_final())
}

/// Rejected and cancelled releases end without a final event.
async fn ended_without_events(st: &State, id: ReleaseId) -> bool {
    st.db
        .get_release(id)
        .await
        .is_ok_and(|r| matches!(r.status, ReleaseStatus::Rejected | ReleaseStatus::Cancelled))
}

/// What a request ships, resolved.
pub(crate) struct Requested {
    pub name: String,
    pub kind: ReleaseKind,
    pub ref_kind: RefKind,
    pub ref_name: String,
    pub commit_id: CommitId,
    pub commit_message: String,
    pub version: Option<VersionName>,
    /// A subset of the config's hosts (None: all).
    pub host_ids: Option<Vec<HostId>>,
    /// The failed release this one retries.
    pub retry_of: Option<ReleaseId>,
}

/// Records a release request of `config` (pending review when the config has review on, else
/// approved), audits it and sends the "requested" notice. The one path for requests from
/// people (`POST /api/releases`) and from Git webhooks.
pub(crate) async fn record_request(
    st: &State,
    config: hippo_shared::db::configs::ReleaseConfig,
    what: Requested,
    actor: &Actor,
    requested_by: UserId,
) -> Result<Release, ApiError> {
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
            name: what.name,
            kind: what.kind,
            ref_kind: what.ref_kind,
            ref_name: what.ref_name,
            commit_id: what.commit_id,
            commit_message: what.commit_message,
            version: what.version,
            status,
            snapshot: config.spec,
            requested_by,
            host_ids: what.host_ids,
            retry_of: what.retry_of,
        })
        .await?;
    let changes = serde_json::json!({
        "kind": r.kind.as_str(), "name": r.name, "ref": format!("{} {}", r.ref_kind, r.ref_name),
        "commit_id": r.commit_id, "status": r.status.as_str(),
        "host_ids": r.host_ids, "retry_of": r.retry_of,
    });
    audit::record_as(st, actor, "release", Some(r.id), "request", changes).await;
    if r.status == ReleaseStatus::PendingReview {
        queue_notice(st, r.id, NoticeKind::Requested).await;
    }
    Ok(r)
}

/// A release of `config` at the commit a branch or tag resolves to (a commit given with its
/// branch must be on it), recorded as [`record_request`] does.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn request_ref(
    st: &State,
    config: hippo_shared::db::configs::ReleaseConfig,
    name: String,
    branch: Option<String>,
    tag: Option<String>,
    commit: Option<String>,
    actor: &Actor,
    requested_by: UserId,
) -> Result<Release, ApiError> {
    let wanted = Wanted {
        branch,
        tag,
        commit,
    };
    let (r, commit_id, message) = resolve(st, &wanted, &config, false).await?;
    let what = Requested {
        name,
        kind: ReleaseKind::Release,
        ref_kind: RefKind::from(&r),
        ref_name: r.name().to_owned(),
        commit_id,
        commit_message: message,
        version: None,
        host_ids: None,
        retry_of: None,
    };
    record_request(st, config, what, actor, requested_by).await
}

/// Queues an approved (or failed) release `r` for a worker; 409 if its status does not allow
/// it, 503 (the release marked failed) if the queue is unavailable.
pub(crate) async fn queue_run(st: &State, r: &Release, actor: &Actor) -> Result<(), ApiError> {
    super::custom::check_uploads(st, r).await?;
    if !st
        .db
        .transition_release_as(r.id, ReleaseStatus::Queued, None, actor, "")
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
    push_run(st, r.id, actor).await
}

/// Pushes the job of a release just moved to `queued`; if the queue is unavailable, the
/// release is marked failed (unless a worker took it meanwhile) and 503 is the answer.
pub(crate) async fn push_run(st: &State, id: ReleaseId, actor: &Actor) -> Result<(), ApiError> {
    if let Err(e) = st.queue.push(DeployJob::run(id)).await {
        tracing::error!(release_id = %id, error = %e, "could not queue a release");
        // Only if no worker took it meanwhile (a push that timed out may have landed); the
        // final event ends any stream following the release.
        let reason = "could not be queued";
        if matches!(st.db.fail_if_queued(id, reason, actor).await, Ok(true)) {
            let end =
                ReleaseEvent::new(id, Stage::Release, events::EventStatus::Failed).message(reason);
            if let Err(e) = st.hub.publish(end).await {
                tracing::warn!(release_id = %id, error = %e, "could not store the final event");
            }
        }
        return Err(ApiError::unavailable(
            "queue_unavailable",
            format!(
                "the deploy queue is unavailable ({e}); release {} is marked failed and can be run again",
                id
            ),
        ));
    }
    Ok(())
}

#[derive(Default)]
pub struct ReleasesApi;

#[OpenApi(prefix_path = "/api/releases", tag = "ApiTags::Releases")]
impl ReleasesApi {
    /// Request a release or a rollback. It starts as `pending_review` when the config has review
    /// on, otherwise `approved`; run it with `POST /api/releases/{id}/run`.
    #[oai(path = "/", method = "post", operation_id = "createRelease")]
    async fn create(
        &self,
        auth: Auth,
        st: Data<&Arc<State>>,
        body: JsonBody<ReleaseIn>,
    ) -> ApiResult<Created<ReleaseOut>, { AUTH | BODY | FORBIDDEN | UPSTREAM }> {
        let no_config = || ApiError::invalid("config_id", "config_id names no release config");
        let config = st
            .db
            .get_config(body.config_id)
            .await
            .map_err(|_| no_config())?;
        if !auth.0.sees(config.environment_id, Some(config.app_id)) {
            return Err(no_config().into());
        }
        auth.0.require(
            Permission::Request,
            Some(config.environment_id),
            Some(config.app_id),
        )?;
        let name = domain::Name::parse(&body.name).map_err(ApiError::field("name"))?;
        let host_ids = match &body.host_ids {
            Some(ids) => subset(&config.spec.host_ids, ids)?,
            None => None,
        };
        let (kind, ref_kind, ref_name, commit_id, message, version) =
            match body.kind.unwrap_or(ReleaseKind::Release) {
                ReleaseKind::Release => {
                    if body.version.is_some() {
                        return Err(
                            ApiError::invalid("version", "version is only for rollbacks").into(),
                        );
                    }
                    let wanted = Wanted {
                        branch: body.branch.as_ref().map(|b| b.0.clone()),
                        tag: body.tag.as_ref().map(|b| b.0.clone()),
                        commit: body.commit.as_ref().map(|b| b.0.clone()),
                    };
                    let (r, commit, message) =
                        resolve(&st, &wanted, &config, auth.0.is_admin).await?;
                    (
                        ReleaseKind::Release,
                        RefKind::from(&r),
                        r.name().to_owned(),
                        commit,
                        message,
                        None,
                    )
                }
                ReleaseKind::Rollback => {
                    let Some(v) = body.version.as_deref() else {
                        return Err(ApiError::invalid(
                            "version",
                            "a rollback needs the version to go back to",
                        )
                        .into());
                    };
                    let v = VersionName::parse(v).map_err(ApiError::field("version"))?;
                    let kept = st.db.host_versions(config.id).await?;
                    let Some(found) = kept.iter().find(|k| k.version == v) else {
                        return Err(ApiError::invalid(
                            "version",
                            format!("version {v} is not kept on any host of this config"),
                        )
                        .into());
                    };
                    (
                        ReleaseKind::Rollback,
                        RefKind::Version,
                        v.to_string(),
                        found.commit_id.clone(),
                        String::new(),
                        Some(v),
                    )
                }
            };
        let r = record_request(
            &st,
            config,
            Requested {
                name: name.to_string(),
                kind,
                ref_kind,
                ref_name,
                commit_id,
                commit_message: message,
                version,
                host_ids,
                retry_of: None,
            },
            &auth.0.actor(),
            auth.0.id,
        )
        .await?;
        Ok(Created::Ok(Json(shown(&st, r, Vec::new()).await?)))
    }

    /// The releases the caller may see, newest first, one page at a time, with counts per
    /// status for the same filters (tabs). Filters: status, environment, app, requester, kind,
    /// text (`q`: in the title, the ref and the commit id) and the request time.
    #[oai(path = "/", method = "get", operation_id = "listReleases")]
    #[allow(clippy::too_many_arguments)]
    async fn list(
        &self,
        auth: Auth,
        st: Data<&Arc<State>>,
        /// Any of these statuses (repeat the parameter: `status=queued&status=running`);
        /// absent: all.
        #[oai(validator(max_items = 8))]
        status: Query<Option<Vec<ReleaseStatus>>>,
        environment_id: Query<Option<EnvironmentId>>,
        app_id: Query<Option<AppId>>,
        /// A user id.
        requested_by: Query<Option<UserId>>,
        kind: Query<Option<ReleaseKind>>,
        /// Text in the title, the ref or the commit id (case-insensitive).
        #[oai(validator(max_length = 200))]
        q: Query<Option<String>>,
        /// Requested at or after this time.
        since: Query<Option<Timestamp>>,
        /// Requested before this time.
        until: Query<Option<Timestamp>>,
        /// From 1 (the default).
        #[oai(validator(minimum(value = "1"), maximum(value = "100000")))]
        page: Query<Option<u32>>,
        /// 1-200, default 50.
        #[oai(validator(minimum(value = "1"), maximum(value = "200")))]
        per_page: Query<Option<u32>>,
    ) -> ApiResult<Json<ReleasePageOut>, { AUTH | BAD_PARAM }> {
        let page = page.0.unwrap_or(1).max(1);
        let per_page = per_page.0.unwrap_or(50).clamp(1, 200);
        let query = ReleaseQuery {
            statuses: status.0.unwrap_or_default(),
            app_id: app_id.0,
            environment_id: environment_id.0,
            requested_by: requested_by.0,
            kind: kind.0,
            text: q.0,
            from: since.0.map(|t| t.0),
            to: until.0.map(|t| t.0),
            visible: visibility(&auth.0),
            limit: i64::from(per_page),
            offset: i64::from(page - 1) * i64::from(per_page),
        };
        let found = st.db.release_page(&query).await?;
        let mut counts = StatusCounts::default();
        for (s, n) in &found.counts {
            counts.all += n;
            let slot = match s {
                ReleaseStatus::PendingReview => &mut counts.pending_review,
                ReleaseStatus::Approved => &mut counts.approved,
                ReleaseStatus::Queued => &mut counts.queued,
                ReleaseStatus::Running => &mut counts.running,
                ReleaseStatus::Succeeded => &mut counts.succeeded,
                ReleaseStatus::Failed => &mut counts.failed,
                ReleaseStatus::Rejected => &mut counts.rejected,
                ReleaseStatus::Cancelled => &mut counts.cancelled,
            };
            *slot += n;
        }
        Ok(Json(ReleasePageOut {
            items: found
                .items
                .into_iter()
                .map(|n| out(n, Vec::new(), false))
                .collect(),
            total: found.total,
            page,
            per_page,
            counts,
        }))
    }

    /// Get a release with its per-host results.
    #[oai(path = "/:id", method = "get", operation_id = "getRelease")]
    async fn get(
        &self,
        auth: Auth,
        st: Data<&Arc<State>>,
        id: Path<ReleaseId>,
    ) -> ApiResult<Json<ReleaseOut>, { AUTH | NOT_FOUND }> {
        let r = visible(&st, &auth, id.0).await?;
        let hosts = st.db.release_hosts(id.0).await?;
        let running = r.status == ReleaseStatus::Running;
        let mut out = shown(&st, r, hosts).await?;
        let waves = st.db.release_host_waves(id.0).await?;
        for h in &mut out.hosts {
            h.wave = waves
                .iter()
                .find(|(id, _)| *id == h.host_id)
                .map(|(_, w)| *w);
        }
        if running {
            out.paused =
                st.db
                    .release_pause(id.0)
                    .await?
                    .map(|p| crate::routes::rollout::PauseOut {
                        wave: p.wave,
                        until: p.until.into(),
                    });
        }
        Ok(Json(out))
    }

    /// Queue an approved (or failed, to retry) release. 409 if its status does not allow it.
    #[oai(path = "/:id/run", method = "post", operation_id = "runRelease")]
    async fn run(
        &self,
        auth: Auth,
        st: Data<&Arc<State>>,
        id: Path<ReleaseId>,
    ) -> ApiResult<Json<ReleaseOut>, { AUTH | FORBIDDEN | NOT_FOUND | CONFLICT | UNAVAILABLE }>
    {
        let r = visible(&st, &auth, id.0).await?;
        auth.0
            .require(Permission::Release, Some(r.environment_id), Some(r.app_id))?;
        queue_run(&st, &r, &auth.0.actor()).await?;
        let r = st.db.get_release(id.0).await?;
        Ok(Json(shown(&st, r, Vec::new()).await?))
    }

    /// Cancel a release (permission `release`). One that waits (`pending_review`, `approved`,
    /// `queued`) is `cancelled` at once and never runs. A `running` one stops at the next safe
    /// point: hooks running on the release server or on hosts are stopped with every process
    /// they started, no host switches, and the new version's folders are removed; it then ends
    /// `cancelled`. Once the switch has begun it completes (milliseconds per host), and the
    /// release ends as the switch left it, saying that the cancel came too late — except with
    /// waves: a cancel between waves (during a pause, or before the next wave) rolls the
    /// switched hosts back to their previous version and ends it `cancelled`. Asking again
    /// while it stops is harmless; 409 `invalid_status` if it has already ended.
    #[oai(path = "/:id/cancel", method = "post", operation_id = "cancelRelease")]
    async fn cancel(
        &self,
        auth: Auth,
        st: Data<&Arc<State>>,
        id: Path<ReleaseId>,
    ) -> ApiResult<Json<ReleaseOut>, { AUTH | FORBIDDEN | NOT_FOUND | CONFLICT }> {
        let r = visible(&st, &auth, id.0).await?;
        auth.0
            .require(Permission::Release, Some(r.environment_id), Some(r.app_id))?;
        let actor = auth.0.actor();
        match st.db.cancel_release(id.0, &actor).await? {
            Cancel::Cancelled => {
                let end = ReleaseEvent::new(id.0, Stage::Release, EventStatus::Cancelled)
                    .message(format!("cancelled by {} before it ran", actor.name));
                if let Err(e) = st.hub.publish(end).await {
                    tracing::warn!(release_id = %id.0, error = %e, "could not store the final event");
                }
                queue_notice(&st, id.0, NoticeKind::Cancelled).await;
            }
            Cancel::Requested => {
                let note =
                    ReleaseEvent::new(id.0, Stage::Release, EventStatus::Info).message(format!(
                        "{} asked to cancel: stopping at the next safe point",
                        actor.name
                    ));
                if let Err(e) = st.hub.publish(note).await {
                    tracing::warn!(release_id = %id.0, error = %e, "could not store an event");
                }
            }
            Cancel::AlreadyRequested => {}
            Cancel::NotCancellable(status) => {
                return Err(ApiError::conflict(
                    "invalid_status",
                    format!(
                        "release {} is {status} and cannot be cancelled (only a release that \
                         has not ended can)",
                        r.id
                    ),
                )
                .into());
            }
        }
        let r = st.db.get_release(id.0).await?;
        Ok(Json(shown(&st, r, Vec::new()).await?))
    }

    /// Retry a failed release on the hosts that did not switch (permission `request`): a new
    /// release of the same commit, with the same config snapshot and version name, for only
    /// those hosts (`retry_of` names the failed one). It needs review again only if the config
    /// snapshot says so (else it is `approved`: run it). All-or-nothing applies within those
    /// hosts. 409 `invalid_status` unless the release failed; 409 `nothing_to_retry` if every
    /// host switched.
    #[oai(path = "/:id/retry", method = "post", operation_id = "retryRelease")]
    async fn retry(
        &self,
        auth: Auth,
        st: Data<&Arc<State>>,
        id: Path<ReleaseId>,
    ) -> ApiResult<Created<ReleaseOut>, { AUTH | FORBIDDEN | NOT_FOUND | CONFLICT }> {
        let r = visible(&st, &auth, id.0).await?;
        auth.0
            .require(Permission::Request, Some(r.environment_id), Some(r.app_id))?;
        if r.status != ReleaseStatus::Failed {
            return Err(ApiError::conflict(
                "invalid_status",
                format!(
                    "release {} is {} (only a failed release can be retried)",
                    r.id, r.status
                ),
            )
            .into());
        }
        let rows = st.db.release_hosts(r.id).await?;
        let targets = r.target_host_ids().to_vec();
        // A run that failed before any host (checkout, package) retries them all.
        let again: Vec<HostId> = if rows.is_empty() {
            targets
        } else {
            targets
                .into_iter()
                .filter(|h| {
                    rows.iter()
                        .find(|row| row.host_id == *h)
                        .is_none_or(|row| row.status != HostStatus::Switched)
                })
                .collect()
        };
        if again.is_empty() {
            return Err(ApiError::conflict(
                "nothing_to_retry",
                format!("every host of release {} switched; nothing to retry", r.id),
            )
            .into());
        }
        let all = again.len() == r.snapshot.host_ids.len();
        let created = st
            .db
            .create_release(&NewRelease {
                config_id: r.config_id,
                app_id: r.app_id,
                environment_id: r.environment_id,
                name: r.name.clone(),
                kind: r.kind,
                ref_kind: r.ref_kind,
                ref_name: r.ref_name.clone(),
                commit_id: r.commit_id.clone(),
                commit_message: r.commit_message.clone(),
                version: r.version.clone(),
                status: if r.snapshot.review_enabled {
                    ReleaseStatus::PendingReview
                } else {
                    ReleaseStatus::Approved
                },
                snapshot: r.snapshot.clone(),
                requested_by: auth.0.id,
                host_ids: (!all).then_some(again),
                retry_of: Some(r.id),
            })
            .await?;
        let changes = serde_json::json!({
            "kind": created.kind.as_str(), "name": created.name,
            "ref": format!("{} {}", created.ref_kind, created.ref_name),
            "commit_id": created.commit_id, "status": created.status.as_str(),
            "host_ids": created.host_ids, "retry_of": created.retry_of,
        });
        audit::record_as(
            &st,
            &auth.0.actor(),
            "release",
            Some(created.id),
            "request",
            changes,
        )
        .await;
        if created.status == ReleaseStatus::PendingReview {
            queue_notice(&st, created.id, NoticeKind::Requested).await;
        }
        Ok(Created::Ok(Json(shown(&st, created, Vec::new()).await?)))
    }

    /// Schedule an approved release (permission `release`): it is queued by itself at
    /// `run_at` (within about two seconds, exactly once however many API processes run, also
    /// after a restart; one whose time passed while Hippo was down is queued when it is back).
    /// Scheduling again moves the time; cancel it (`POST …/cancel`) until it starts. 409
    /// `invalid_status` unless it is approved.
    #[oai(
        path = "/:id/schedule",
        method = "post",
        operation_id = "scheduleRelease"
    )]
    async fn schedule(
        &self,
        auth: Auth,
        st: Data<&Arc<State>>,
        id: Path<ReleaseId>,
        body: JsonBody<ScheduleIn>,
    ) -> ApiResult<Json<ReleaseOut>, { AUTH | BODY | FORBIDDEN | NOT_FOUND | CONFLICT }> {
        let r = visible(&st, &auth, id.0).await?;
        auth.0
            .require(Permission::Release, Some(r.environment_id), Some(r.app_id))?;
        let at = run_time(&body.run_at)?;
        if !st.db.schedule_release(id.0, &at, &auth.0.actor()).await? {
            return Err(ApiError::conflict(
                "invalid_status",
                format!(
                    "release {} is {} (only an approved release can be scheduled)",
                    r.id,
                    st.db.get_release(id.0).await?.status
                ),
            )
            .into());
        }
        Ok(Json(
            shown(&st, st.db.get_release(id.0).await?, Vec::new()).await?,
        ))
    }

    /// The release's whole log as plain text: every stored event in order, one line each
    /// (`<time> <host or "server"> <stage> <status>: <message>`; a message of several lines
    /// gives several lines, each with the same prefix).
    #[oai(path = "/:id/log", method = "get", operation_id = "getReleaseLog")]
    async fn log(
        &self,
        auth: Auth,
        st: Data<&Arc<State>>,
        id: Path<ReleaseId>,
    ) -> ApiResult<PlainText<String>, { AUTH | NOT_FOUND }> {
        visible(&st, &auth, id.0).await?;
        let events = st.hub.replay(id.0, 0).await?;
        Ok(PlainText(events::raw_log(&events)))
    }

    /// Approve a release waiting for review (`pending_review` → `approved`). Needs `review`
    /// for its environment and app; the requester cannot approve their own release.
    #[oai(
        path = "/:id/approve",
        method = "post",
        operation_id = "approveRelease"
    )]
    async fn approve(
        &self,
        auth: Auth,
        st: Data<&Arc<State>>,
        id: Path<ReleaseId>,
        body: JsonBody<ReviewIn>,
    ) -> ApiResult<Json<ReleaseOut>, { AUTH | BODY | FORBIDDEN | NOT_FOUND | CONFLICT }> {
        Ok(review(&st, &auth, id.0, ReleaseStatus::Approved, body.0).await?)
    }

    /// Reject a release waiting for review (`pending_review` → `rejected`); a comment saying
    /// why is required. A rejected release cannot run; edit it to send it back to review.
    #[oai(path = "/:id/reject", method = "post", operation_id = "rejectRelease")]
    async fn reject(
        &self,
        auth: Auth,
        st: Data<&Arc<State>>,
        id: Path<ReleaseId>,
        body: JsonBody<ReviewIn>,
    ) -> ApiResult<Json<ReleaseOut>, { AUTH | BODY | FORBIDDEN | NOT_FOUND | CONFLICT }> {
        Ok(review(&st, &auth, id.0, ReleaseStatus::Rejected, body.0).await?)
    }

    /// Edit a release that is not queued yet (pending review, approved or rejected). With
    /// review on, it goes back to `pending_review`: an earlier approval does not carry over.
    #[oai(path = "/:id", method = "put", operation_id = "updateRelease")]
    async fn edit(
        &self,
        auth: Auth,
        st: Data<&Arc<State>>,
        id: Path<ReleaseId>,
        body: JsonBody<ReleaseEditIn>,
    ) -> ApiResult<Json<ReleaseOut>, { AUTH | BODY | FORBIDDEN | NOT_FOUND | CONFLICT | UPSTREAM }>
    {
        let r = visible(&st, &auth, id.0).await?;
        auth.0
            .require(Permission::Request, Some(r.environment_id), Some(r.app_id))?;
        if r.kind == ReleaseKind::Rollback {
            return Err(ApiError::conflict(
                "invalid_kind",
                "a rollback cannot be edited; request a new one",
            )
            .into());
        }
        let config = st.db.get_config(r.config_id).await?;
        let name = match &body.name {
            Some(n) => domain::Name::parse(n)
                .map_err(ApiError::field("name"))?
                .to_string(),
            None => r.name.clone(),
        };
        let new_ref = body.branch.is_some() || body.tag.is_some() || body.commit.is_some();
        let given = |v: &Option<_>| v.as_ref().map(|x: &RefName| x.0.clone());
        let request = Wanted {
            branch: if new_ref {
                given(&body.branch)
            } else {
                (r.ref_kind == RefKind::Branch).then(|| r.ref_name.clone())
            },
            tag: if new_ref {
                given(&body.tag)
            } else {
                (r.ref_kind == RefKind::Tag).then(|| r.ref_name.clone())
            },
            commit: if new_ref {
                body.commit.as_ref().map(|c| c.0.clone())
            } else {
                (r.ref_kind == RefKind::Commit).then(|| r.commit_id.to_string())
            },
        };
        let (git_ref, commit_id, commit_message) =
            resolve(&st, &request, &config, auth.0.is_admin).await?;
        let edit = ReleaseEdit {
            name,
            ref_kind: RefKind::from(&git_ref),
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
            )
            .into());
        }
        Ok(Json(
            shown(&st, st.db.get_release(id.0).await?, Vec::new()).await?,
        ))
    }

    /// Every delivery attempt of the release's notices (requested, approved, started, …) on
    /// each channel of its config, oldest first.
    #[oai(
        path = "/:id/notices",
        method = "get",
        operation_id = "listNoticeAttempts"
    )]
    async fn notices(
        &self,
        auth: Auth,
        st: Data<&Arc<State>>,
        id: Path<ReleaseId>,
    ) -> ApiResult<Json<Vec<NoticeAttemptOut>>, { AUTH | NOT_FOUND }> {
        visible(&st, &auth, id.0).await?;
        Ok(Json(
            st.db
                .notice_attempts(id.0)
                .await?
                .into_iter()
                .map(|a| NoticeAttemptOut {
                    notice: NoticeKindName::parse(&a.notice),
                    channel: ChannelType::parse(&a.channel),
                    channel_index: a.channel_index,
                    attempt: a.attempt,
                    at: a.at.into(),
                    duration_ms: a.duration_ms,
                    ok: a.ok_flag.0,
                    error: a.error,
                    detail: a.detail.filter(|_| auth.0.is_admin),
                    http_status: a.http_status,
                })
                .collect(),
        ))
    }

    /// The stored events of a release after event `after` (default: all), as JSON, and
    /// whether the release has ended (poll until `finished`; or follow the event stream).
    #[oai(
        path = "/:id/event-log",
        method = "get",
        operation_id = "listReleaseEvents"
    )]
    async fn event_log(
        &self,
        auth: Auth,
        st: Data<&Arc<State>>,
        id: Path<ReleaseId>,
        /// An event id: only later events are listed.
        #[oai(validator(minimum(value = "0")))]
        after: Query<Option<i64>>,
    ) -> ApiResult<Json<EventLogOut>, { AUTH | NOT_FOUND }> {
        let r = visible(&st, &auth, id.0).await?;
        // Read the status first: a release seen as finished has stored its last event.
        let finished = r.status.is_final();
        let events = st.hub.replay(id.0, after.0.unwrap_or(0)).await?;
        Ok(Json(EventLogOut {
            events: events.into_iter().map(Into::into).collect(),
            finished,
        }))
    }

    /// The release's events as Server-Sent Events: the stored ones (after `Last-Event-ID` if
    /// given), then live ones until the release ends. Event names: `stage` and, last, `end`.
    #[oai(
        path = "/:id/events",
        method = "get",
        operation_id = "streamReleaseEvents"
    )]
    async fn events(
        &self,
        auth: Auth,
        st: Data<&Arc<State>>,
        id: Path<ReleaseId>,
        /// The id of the last event received: the stream resumes after it.
        #[oai(name = "Last-Event-ID", validator(minimum(value = "0")))]
        last_event_id: Header<Option<i64>>,
    ) -> ApiResult<EventStreamOut, { AUTH | BAD_PARAM | NOT_FOUND }> {
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
            // final event only when it is the newest one and the release is finished. Resumed
            // at that final event (`Last-Event-ID` = its id), it ends at once.
            let from = if last > 0 { last - 1 } else { 0 };
            let mut stored = st.hub.replay(release_id, from).await.unwrap_or_default();
            let resumed_at_end = last > 0
                && stored.len() == 1
                && stored[0].id == last
                && stored[0].is_final();
            stored.retain(|e| e.id > last);
            let mut done = if resumed_at_end {
                release_is_final(&st, release_id).await
            } else {
                stored.last().is_some_and(ReleaseEvent::is_final)
                    && release_is_final(&st, release_id).await
            };
            if !done && stored.is_empty() && last == 0 && ended_without_events(&st, release_id).await {
                done = true;
            }
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
        let response = EventStream::new(stream)
            .keep_alive(Duration::from_secs(15))
            .to_event(|e: EventOut| {
                let id = e.id.to_string();
                let kind = if e.stage == Stage::Release
                    && matches!(
                        e.status,
                        EventStatus::Succeeded | EventStatus::Failed | EventStatus::Cancelled
                    ) {
                    "end"
                } else {
                    "stage"
                };
                Event::message(e.to_json_string()).id(id).event_type(kind)
            })
            .into_response();
        Ok(EventStreamOut(response))
    }
}

impl poem_openapi::types::Example for ReleaseIn {
    fn example() -> Self {
        Self {
            config_id: ConfigId::new(1),
            name: "v2.3 launch".into(),
            kind: Some(ReleaseKind::Release),
            branch: Some("main".into()),
            tag: None,
            commit: None,
            version: None,
            host_ids: None,
        }
    }
}

impl poem_openapi::types::Example for ReviewIn {
    fn example() -> Self {
        Self {
            comment: Some("Looks good; ship after 18:00".into()),
            commit_id: None,
            run_at: None,
        }
    }
}
