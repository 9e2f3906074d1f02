//! A release config's repository, fetched into the release server's cache: used to resolve the
//! ref of a new release (`routes::releases`) and to list branches, tags and commits
//! (`routes::git`).
use crate::problem::ApiError;
use crate::state::State;
use hippo_shared::db::configs::ReleaseConfig;
use hippo_worker::git::GitError;
use std::time::Duration;

/// Git errors as problems: a ref that does not exist is the caller's (422 naming it), anything
/// else is the Git server's (502).
pub fn git_error(e: GitError) -> ApiError {
    match e {
        GitError::RefNotFound { kind, name } => ApiError::invalid(
            kind,
            format!("{kind} '{name}' does not exist in the repository"),
        ),
        other => ApiError::upstream("git_failed", other.to_string()),
    }
}

/// Fetches the config's repository. Listings (`always` false) reuse a fetch of the last few
/// seconds, so the console's branch → commit pickers do not fetch three times; resolving the
/// ref of a new release always fetches.
pub async fn synced(st: &State, config: &ReleaseConfig, always: bool) -> Result<String, ApiError> {
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
        return Err(git_error(e));
    }
    Ok(url)
}
