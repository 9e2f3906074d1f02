//! A release config's repository, fetched into the release server's cache: used to resolve the
//! ref of a new release (`routes::releases`) and to list branches, tags and commits
//! (`routes::git`).
use crate::problem::ApiError;
use crate::state::State;
use hippo_shared::db::configs::ReleaseConfig;
use hippo_worker::git::GitError;
use std::time::Duration;

/// Git errors as problems: a ref that does not exist, a malformed commit id or a commit that is
/// not on the branch it was picked from is the caller's (422 naming the field), anything else
/// is the Git server's (502).
pub fn git_error(e: GitError) -> ApiError {
    match e {
        GitError::RefNotFound { kind, name } => ApiError::invalid(
            kind,
            format!("{kind} '{name}' does not exist in the repository"),
        ),
        GitError::InvalidCommitId(_) | GitError::AmbiguousCommit(_) => {
            ApiError::invalid("commit", e.to_string())
        }
        GitError::NotOnBranch { commit, branch } => ApiError::invalid(
            "commit",
            format!(
                "commit {commit} is not on branch '{branch}' (neither its tip nor an ancestor)"
            ),
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
        || matches!(
            e,
            GitError::RefNotFound { .. }
                | GitError::InvalidCommitId(_)
                | GitError::AmbiguousCommit(_)
                | GitError::NotOnBranch { .. }
        )
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
pub async fn synced(
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
    st.repos.set_pinned_host_keys(st.db.git_host_keys().await?);
    let repos = st.repos.clone();
    let u = url.clone();
    let res = tokio::task::spawn_blocking(move || repos.sync(&u, &auth))
        .await
        .map_err(ApiError::internal)?;
    for k in st.repos.take_new_host_keys() {
        st.db
            .pin_git_host_key(&k.host, &k.key, &k.fingerprint)
            .await?;
    }
    if let Err(e) = res {
        st.forget_fetch(&url);
        return Err(fetch_error(e, &url, admin).await);
    }
    Ok(url)
}
