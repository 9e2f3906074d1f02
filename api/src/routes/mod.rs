//! One module per resource, each with its operations (one tag each, stable `operationId`s) and
//! the shapes they take and return. Request bodies are `JsonBody`s: checked against the spec at
//! the edge, then parsed into domain types by the handler (naming the field on failure) before
//! anything is written. Every operation declares the errors it can answer (`Fail<…>`).
pub mod apps;
pub mod audit;
pub mod configs;
pub mod custom;
pub mod environments;
pub mod git;
pub mod hosts;
pub mod lockouts;
pub mod me;
pub mod onboarding;
pub mod people;
pub mod releases;
pub mod rollout;
pub mod system;
pub mod terminal;
pub mod webhooks;

use crate::auth::Auth;
use crate::problem::ApiError;
use crate::problem::Fail;
use crate::state::State;
use hippo_shared::db::configs::ReleaseConfig;
use hippo_shared::domain::{ConfigId, Permission};
use poem_openapi::payload::Json;
use poem_openapi::types::{ToJSON, Type};
use poem_openapi::{ApiResponse, Tags};

/// The spec's tags: one per operation, one per resource.
#[derive(Tags)]
pub enum ApiTags {
    /// Log in and out, who am I.
    Auth,
    /// dev / test / prod …
    Environments,
    /// Target servers, reached over SSH.
    Hosts,
    /// What gets released.
    Apps,
    /// How one app is released to one environment.
    ReleaseConfigs,
    /// Branches, tags and commits of a config's repository.
    Git,
    /// Release requests, review, runs, events, rollbacks.
    Releases,
    /// Users, roles and API tokens.
    People,
    /// Platform facts, the audit trail.
    System,
}

#[derive(ApiResponse)]
pub enum Created<T: ToJSON + Type + Send + Sync> {
    /// Created.
    #[oai(status = 201)]
    Ok(Json<T>),
}

#[derive(ApiResponse)]
pub enum Deleted {
    /// Deleted.
    #[oai(status = 204)]
    Ok,
}

/// An operation's result; `CODES` are the errors it declares (see `problem`).
pub type ApiResult<T, const CODES: u16> = Result<T, Fail<CODES>>;

pub use crate::problem::{
    AUTH, BAD_PARAM, BODY, CONFLICT, FORBIDDEN, INVALID, NOT_FOUND, TOO_MANY, UNAVAILABLE, UPSTREAM,
};

/// The config, if the caller holds any permission for its environment and app (else 404).
pub(crate) async fn config_visible(
    st: &State,
    auth: &Auth,
    id: ConfigId,
) -> Result<ReleaseConfig, ApiError> {
    let config = st.db.get_config(id).await?;
    auth.0
        .require_sees(config.environment_id, Some(config.app_id), "release config")?;
    Ok(config)
}

/// The config, if the caller may edit it (`edit_configs` for its environment and app).
pub(crate) async fn config_editable(
    st: &State,
    auth: &Auth,
    id: ConfigId,
) -> Result<ReleaseConfig, ApiError> {
    let config = config_visible(st, auth, id).await?;
    auth.0.require(
        Permission::EditConfigs,
        Some(config.environment_id),
        Some(config.app_id),
    )?;
    Ok(config)
}
