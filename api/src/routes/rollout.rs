//! A config's rollout (issue 12) as the API reads and shows it — waves, the health check
//! after each, the pause between them — and `POST /api/releases/{id}/continue`, which ends a
//! release's pause after a wave.
use super::{AUTH, ApiResult, ApiTags, CONFLICT, FORBIDDEN, NOT_FOUND};
use crate::audit;
use crate::auth::Auth;
use crate::problem::ApiError;
use crate::state::State;
use crate::text::{Script, UrlText, WaveText};
use hippo_shared::domain::{Permission, ReleaseId, ReleaseStatus};
use hippo_shared::events::{EventStatus, ReleaseEvent, Stage};
use hippo_shared::waves::{self, Rollout, Waves};
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use std::sync::Arc;

fn default_status() -> u16 {
    200
}
fn default_check_timeout() -> u64 {
    5
}
fn default_interval() -> u64 {
    2
}
pub fn default_pause_timeout() -> u64 {
    3600
}

/// What is checked on every host of a wave once it switched: `url` must answer
/// `expect_status`, and/or `command` (a shell script run on the host in the deploy path, with
/// the release's variables, like a hook) must exit 0. A failed check rolls back every host
/// the release switched and ends it failed; later waves never start.
#[derive(Object, Clone)]
pub struct HealthCheckSpec {
    /// `http(s)://{addr}:8080/health`: the host part is `{addr}` (the host's address) or
    /// `{host}` (its name in Hippo); a check only reaches the config's own hosts. No redirect
    /// is followed.
    #[oai(skip_serializing_if_is_none)]
    pub url: Option<UrlText>,
    /// The HTTP status the URL must answer.
    #[oai(
        default = "default_status",
        validator(minimum(value = "100"), maximum(value = "599"))
    )]
    pub expect_status: u16,
    /// Empty: no command.
    #[oai(default)]
    pub command: Script,
    /// Seconds each try may take (the request, or the command).
    #[oai(
        default = "default_check_timeout",
        validator(minimum(value = "1"), maximum(value = "600"))
    )]
    pub timeout_secs: u64,
    /// Tries after the first that failed.
    #[oai(default, validator(maximum(value = "20")))]
    pub retries: u32,
    /// Seconds between tries.
    #[oai(default = "default_interval", validator(maximum(value = "300")))]
    pub interval_secs: u64,
}

/// The rollout fields of a config as given: `waves`, `health_check`, `pause_after_wave`,
/// `pause_timeout_secs`; `Err` names the bad field (422).
pub fn parse(
    waves: &[WaveText],
    health_check: Option<&HealthCheckSpec>,
    pause: bool,
    pause_timeout_secs: u64,
) -> Result<Rollout, ApiError> {
    let texts: Vec<&str> = waves.iter().map(|w| w.as_str()).collect();
    let waves = Waves::parse(&texts).map_err(|e| ApiError::invalid("waves", e.0))?;
    let health_check = health_check
        .map(|h| {
            waves::HealthCheck::new(
                h.url.as_deref(),
                Some(h.expect_status),
                Some(h.command.as_str()),
                Some(h.timeout_secs),
                Some(h.retries),
                Some(h.interval_secs),
            )
            .map_err(|(field, why)| ApiError::invalid(field, why))
        })
        .transpose()?;
    if pause && waves.is_empty() {
        return Err(ApiError::invalid(
            "pause_after_wave",
            "pause_after_wave needs waves (e.g. [\"1\", \"rest\"])",
        ));
    }
    Ok(Rollout {
        waves,
        health_check,
        pause,
        pause_timeout_secs,
    })
}

/// A stored health check as the API shows it.
pub fn health_out(h: &waves::HealthCheck) -> HealthCheckSpec {
    HealthCheckSpec {
        url: h.url.as_ref().map(|u| u.as_str().into()),
        expect_status: h.expect_status,
        command: h.command.as_str().into(),
        timeout_secs: h.timeout_secs,
        retries: h.retries,
        interval_secs: h.interval_secs,
    }
}

/// Where a running release waits after a wave.
#[derive(Object)]
pub struct PauseOut {
    /// The wave it waits after (1 is the first).
    pub wave: u32,
    /// When it gives up waiting: the release is then cancelled and its switched hosts go back
    /// to their previous version.
    pub until: crate::text::Timestamp,
}

#[derive(Default)]
pub struct RolloutApi;

#[OpenApi(prefix_path = "/api/releases", tag = "ApiTags::Releases")]
impl RolloutApi {
    /// Continue a release paused after a wave (its config has `pause_after_wave`): the next
    /// wave starts. Needs `release` for its environment and app; 409 `not_paused` if it is not
    /// waiting.
    #[oai(
        path = "/:id/continue",
        method = "post",
        operation_id = "continueRelease"
    )]
    async fn continue_release(
        &self,
        auth: Auth,
        st: Data<&Arc<State>>,
        id: Path<ReleaseId>,
    ) -> ApiResult<Json<PauseOut>, { AUTH | FORBIDDEN | NOT_FOUND | CONFLICT }> {
        let r = super::releases::visible(&st, &auth, id.0).await?;
        auth.0
            .require(Permission::Release, Some(r.environment_id), Some(r.app_id))?;
        let not_paused = || {
            ApiError::conflict(
                "not_paused",
                format!("release {} is not waiting after a wave", r.id),
            )
        };
        if r.status != ReleaseStatus::Running {
            return Err(not_paused().into());
        }
        let Some(pause) = st.db.release_pause(r.id).await? else {
            return Err(not_paused().into());
        };
        if !st.db.end_pause(r.id, pause.wave).await? {
            return Err(not_paused().into());
        }
        let who = auth.0.actor();
        let ev = ReleaseEvent::new(r.id, Stage::Wave, EventStatus::Info).message(format!(
            "continued after wave {} by {}",
            pause.wave, who.name
        ));
        if let Err(e) = st.hub.publish(ev).await {
            tracing::warn!(release_id = %r.id, error = %e, "could not store the continue event");
        }
        audit::record_as(
            &st,
            &who,
            "release",
            Some(r.id),
            "continue",
            serde_json::json!({"wave": pause.wave}),
        )
        .await;
        Ok(Json(PauseOut {
            wave: pause.wave,
            until: pause.until.into(),
        }))
    }
}
