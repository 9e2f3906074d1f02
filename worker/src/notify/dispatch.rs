//! From a release to its notices: load the config's channels (sealed at rest), build the
//! [`Notice`], deliver it on every channel in the background and store every attempt. Used by
//! the runner (started, succeeded / failed / rollback) and by the API (requested, approved,
//! rejected). Never fails and never waits: a release does not notice a slow provider.
use super::{
    AddressPolicy, Channel, FailedHost, Named, Notice, NoticeKind, RetryPolicy, SendOptions,
    deliver,
};
use crate::context::Deps;
use hippo_shared::db::notices::NewAttempt;
use hippo_shared::db::releases::Release;
use hippo_shared::domain::{ConfigId, ReleaseId, ReleaseKind};
use std::sync::Arc;
use std::time::Duration;

/// The channels of a config: the sealed JSON list, opened. Empty when none are set (or the
/// stored value cannot be read, which is logged).
pub async fn channels(deps: &Deps, config_id: ConfigId) -> Vec<Channel> {
    let sealed = match deps.db.config_notice_secret(config_id).await {
        Ok(Some(s)) => s,
        Ok(None) => return Vec::new(),
        Err(e) => {
            tracing::warn!(%config_id, error = %e, "cannot read notice channels");
            return Vec::new();
        }
    };
    let opened = match deps.master.open(&sealed) {
        Ok(o) => o,
        Err(e) => {
            tracing::warn!(%config_id, error = %e, "cannot open notice channels");
            return Vec::new();
        }
    };
    serde_json::from_slice(&opened).unwrap_or_else(|e| {
        tracing::warn!(%config_id, error = %e, "stored notice channels are invalid");
        Vec::new()
    })
}

/// Seals a channel list for storing (`None` for an empty list).
pub fn seal(deps: &Deps, channels: &[Channel]) -> Option<Vec<u8>> {
    if channels.is_empty() {
        return None;
    }
    let json = serde_json::to_vec(channels).ok()?;
    Some(deps.master.seal(&json))
}

/// A notice job from the API (`requested`, `approved`, `rejected`): who and why come from the
/// release (requester; reviewer and review comment).
pub async fn from_job(deps: &Arc<Deps>, release_id: ReleaseId, kind: &str) {
    let Some(kind) = NoticeKind::ALL.into_iter().find(|k| k.as_str() == kind) else {
        tracing::warn!(%release_id, kind, "notice job of an unknown kind; dropped");
        return;
    };
    let release = match deps.db.get_release(release_id).await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(%release_id, error = %e, "notice job for a release that cannot be read");
            return;
        }
    };
    let (actor_id, comment) = match kind {
        NoticeKind::Approved | NoticeKind::Rejected => {
            (release.reviewed_by, release.review_comment.clone())
        }
        // Cancelled before it ran (the API): who cancelled it; the release's error says so.
        NoticeKind::Cancelled => (
            release.cancelled_by,
            release
                .error
                .clone()
                .or_else(|| Some("cancelled before it ran".to_owned())),
        ),
        _ => (Some(release.requested_by), None),
    };
    let actor = match actor_id {
        Some(id) => deps.db.get_user(id).await.ok().map(|u| u.username),
        None => None,
    };
    let comment = comment.filter(|c| !c.is_empty());
    dispatch(deps, &release, kind, actor, comment).await;
}

/// How a run ended, as far as its notice is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunEnd {
    Succeeded,
    Failed,
    /// Stopped by a cancel (a person, or a pause's time-out).
    Cancelled,
}

/// The notice kind that ends a run.
pub fn end_kind(release: &Release, end: RunEnd) -> NoticeKind {
    match (end, release.kind) {
        (RunEnd::Cancelled, _) => NoticeKind::Cancelled,
        (RunEnd::Failed, _) => NoticeKind::Failed,
        (RunEnd::Succeeded, ReleaseKind::Rollback) => NoticeKind::Rollback,
        (RunEnd::Succeeded, ReleaseKind::Release) => NoticeKind::Succeeded,
    }
}

/// Builds the notice and delivers it on every channel of the release's config, in a task of
/// its own; returns how many channels it goes to.
pub async fn dispatch(
    deps: &Arc<Deps>,
    release: &Release,
    kind: NoticeKind,
    actor: Option<String>,
    comment: Option<String>,
) -> usize {
    let channels = channels(deps, release.config_id).await;
    if channels.is_empty() {
        return 0;
    }
    let notice = build(deps, release, kind, actor, comment).await;
    let policy = RetryPolicy {
        send: SendOptions {
            timeout: Duration::from_secs(deps.settings.notice_timeout_secs.max(1)),
            // Checked when the settings were loaded; an unreadable list allows nothing.
            addresses: AddressPolicy::parse(&deps.settings.internal_allowlist).unwrap_or_default(),
            ..SendOptions::default()
        },
        ..RetryPolicy::default()
    };
    let n = channels.len();
    for (index, channel) in channels.into_iter().enumerate() {
        let (deps, notice, policy) = (deps.clone(), notice.clone(), policy.clone());
        tokio::spawn(async move {
            let attempts = deliver(&channel, &notice, &policy).await;
            for a in &attempts {
                let row = NewAttempt {
                    release_id: notice.release_id,
                    notice: kind.as_str(),
                    channel: channel.kind(),
                    channel_index: index as i64,
                    attempt: i64::from(a.number),
                    at: &a.started_at,
                    duration_ms: a.duration_ms as i64,
                    ok: a.ok,
                    error: a.error.as_deref(),
                    detail: a.detail.as_deref(),
                    http_status: a.http_status.map(i64::from),
                };
                if let Err(e) = deps.db.record_notice_attempt(&row).await {
                    tracing::warn!(release_id = %notice.release_id, error = %e, "cannot record a notice attempt");
                }
            }
            let ok = attempts.iter().any(|a| a.ok);
            tracing::info!(
                release_id = %notice.release_id,
                notice = kind.as_str(),
                channel = channel.kind(),
                ok,
                attempts = attempts.len(),
                "notice delivered"
            );
        });
    }
    n
}

async fn build(
    deps: &Deps,
    r: &Release,
    kind: NoticeKind,
    actor: Option<String>,
    comment: Option<String>,
) -> Notice {
    let db = &deps.db;
    let named = |name: String, tag: String| Named { name, tag };
    let app = db
        .get_app(r.app_id)
        .await
        .map(|a| named(a.name, a.tag))
        .unwrap_or_else(|_| named(format!("app {}", r.app_id), String::new()));
    let environment = db
        .get_environment(r.environment_id)
        .await
        .map(|e| named(e.name, e.tag))
        .unwrap_or_else(|_| named(format!("environment {}", r.environment_id), String::new()));
    let requested_by = db
        .get_user(r.requested_by)
        .await
        .map(|u| u.username)
        .unwrap_or_else(|_| format!("user {}", r.requested_by));
    let failed_hosts = if kind == NoticeKind::Failed {
        db.release_hosts(r.id)
            .await
            .unwrap_or_default()
            .into_iter()
            .filter(|h| h.status == hippo_shared::domain::HostStatus::Failed)
            .map(|h| FailedHost {
                host: h.host_name,
                reason: h.message,
            })
            .collect()
    } else {
        Vec::new()
    };
    Notice {
        kind,
        app,
        environment,
        release_id: r.id,
        release_name: r.name.clone(),
        git_ref: format!("{} {}", r.ref_kind, r.ref_name),
        commit: r.commit_id.as_str().chars().take(10).collect(),
        version: r.version.as_ref().map(ToString::to_string),
        requested_by,
        actor,
        comment: comment.or_else(|| {
            (kind == NoticeKind::Failed)
                .then(|| r.error.clone())
                .flatten()
        }),
        failed_hosts,
        link: None,
        message: None,
    }
}
