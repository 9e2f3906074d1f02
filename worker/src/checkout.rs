//! Stage 1, on the release server: before-checkout hook (in the repository cache), fetch,
//! export exactly the requested commit with its submodules, after-checkout hook (in the
//! exported tree, where builds go).
use crate::context::{Deps, Run};
use crate::hooks::{self, Hook};
use crate::sandbox::{REPO_INSIDE, SRC_INSIDE, WorkDir};
use hippo_shared::events::{EventStatus, Stage};
use std::path::PathBuf;
use std::time::Duration;

/// Exports the release's commit into `<work>/src` and returns that folder.
pub async fn run(deps: &Deps, run: &Run) -> Result<PathBuf, String> {
    let _timer = hippo_shared::metrics::global().time_stage(Stage::Checkout);
    let ev = &run.events;
    ev.send(
        ev.event(Stage::Checkout, EventStatus::Started)
            .message(format!(
                "checking out {} {} ({})",
                run.release.ref_kind,
                run.release.ref_name,
                run.release.commit_id.short()
            )),
    );
    let url = run.spec.repo_url.to_string();
    // Checked again here: this worker's data folder may differ from the API's, and a link on
    // the way may have changed since the config was saved.
    hippo_shared::net::check_repo_location(&url, &deps.settings.data_dir)
        .map_err(|why| format!("repository location refused: it {why}"))?;
    let auth = deps.repo_auth(run.release.config_id, &run.spec).await?;
    let env = run.hook_env(None);
    let timeout = Duration::from_secs(run.spec.hook_timeout_secs);

    let mirror = deps.repos.mirror_dir(&url);
    std::fs::create_dir_all(&mirror)
        .map_err(|e| format!("cannot create the repository cache: {e}"))?;
    // In the repository cache, read-only: other releases of the same repository use it.
    let before = Hook {
        name: "before_checkout",
        script: &run.spec.hooks.before_checkout,
        work: WorkDir {
            host: &mirror,
            inside: REPO_INSIDE,
            writable: false,
        },
        scratch: &run.work.join("before_checkout"),
        env: &env,
        timeout,
    };
    hooks::run_local_until(
        &deps.sandbox,
        before,
        ev,
        Stage::Checkout,
        Some(&run.cancel),
    )
    .await
    .map_err(|e| e.to_string())?;

    let src = run.work.join("src");
    let _ = std::fs::remove_dir_all(&src);
    let pinned = deps.db.git_host_keys().await.map_err(|e| e.to_string())?;
    deps.repos.set_pinned_host_keys(pinned);
    let repos = deps.repos.clone();
    let commit = run.release.commit_id.to_string();
    let dest = src.clone();
    let shown_url = run.spec.repo_url.to_string();
    let info = tokio::task::spawn_blocking(move || {
        repos.sync(&url, &auth).map_err(|e| (true, e))?;
        repos
            .export(&url, &auth, &commit, &dest)
            .map_err(|e| (false, e))
    })
    .await
    .map_err(|e| format!("checkout task failed: {e}"))?;
    for k in deps.repos.take_new_host_keys() {
        if let Err(e) = deps
            .db
            .pin_git_host_key(&k.host, &k.key, &k.fingerprint)
            .await
        {
            tracing::warn!(host = %k.host, error = %e, "could not pin a Git server's host key");
        }
    }
    let info = match info {
        Ok(info) => info,
        // Every reader of the release sees its events: a failed fetch from this machine or an
        // internal network says no more than that (no port or path probing through repo_url;
        // docs/security.md). The details go to the worker's log.
        Err((true, e)) if hippo_shared::net::repo_is_internal(&shown_url).await => {
            tracing::warn!(release_id = %run.release.id, error = %e, "fetching the repository failed");
            return Err(format!(
                "fetching {} failed (the repository is on this machine or an internal network: \
                 the details are in the worker's log)",
                crate::git::redact_url(&shown_url)
            ));
        }
        Err((_, e)) => return Err(e.to_string()),
    };
    ev.info(
        Stage::Checkout,
        format!(
            "exported {} files ({} bytes, {} submodules)",
            info.files, info.bytes, info.submodules
        ),
    );

    // In the exported tree, writable: builds go here.
    let after = Hook {
        name: "after_checkout",
        script: &run.spec.hooks.after_checkout,
        work: WorkDir {
            host: &src,
            inside: SRC_INSIDE,
            writable: true,
        },
        scratch: &run.work.join("after_checkout"),
        env: &env,
        timeout,
    };
    hooks::run_local_until(&deps.sandbox, after, ev, Stage::Checkout, Some(&run.cancel))
        .await
        .map_err(|e| e.to_string())?;
    ev.send(ev.event(Stage::Checkout, EventStatus::Succeeded));
    Ok(src)
}
