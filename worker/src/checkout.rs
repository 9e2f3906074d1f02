//! Stage 1, on the release server: before-checkout hook (in the repository cache), fetch,
//! export exactly the requested commit with its submodules, after-checkout hook (in the
//! exported tree, where builds go).
use crate::context::{Deps, Run};
use crate::hooks;
use hippo_shared::events::{EventStatus, Stage};
use std::path::PathBuf;
use std::time::Duration;

/// Exports the release's commit into `<work>/src` and returns that folder.
pub async fn run(deps: &Deps, run: &Run) -> Result<PathBuf, String> {
    let ev = &run.events;
    ev.send(
        ev.event(Stage::Checkout, EventStatus::Started)
            .message(format!(
                "checking out {} {} ({})",
                run.release.ref_kind,
                run.release.ref_name,
                &run.release.commit_id[..7]
            )),
    );
    let url = run.spec.repo_url.to_string();
    let auth = deps.repo_auth(run.release.config_id, &run.spec).await?;
    let env = run.hook_env(None);
    let timeout = Duration::from_secs(run.spec.hook_timeout_secs);

    let mirror = deps.repos.mirror_dir(&url);
    std::fs::create_dir_all(&mirror)
        .map_err(|e| format!("cannot create the repository cache: {e}"))?;
    hooks::run_local(
        "before_checkout",
        &run.spec.hooks.before_checkout,
        &mirror,
        &env,
        timeout,
        ev,
        Stage::Checkout,
    )
    .await
    .map_err(|e| e.to_string())?;

    let src = run.work.join("src");
    let _ = std::fs::remove_dir_all(&src);
    let repos = deps.repos.clone();
    let commit = run.release.commit_id.clone();
    let dest = src.clone();
    let info = tokio::task::spawn_blocking(move || {
        repos.sync(&url, &auth)?;
        repos.export(&url, &auth, &commit, &dest)
    })
    .await
    .map_err(|e| format!("checkout task failed: {e}"))?
    .map_err(|e| e.to_string())?;
    ev.info(
        Stage::Checkout,
        format!(
            "exported {} files ({} bytes, {} submodules)",
            info.files, info.bytes, info.submodules
        ),
    );

    hooks::run_local(
        "after_checkout",
        &run.spec.hooks.after_checkout,
        &src,
        &env,
        timeout,
        ev,
        Stage::Checkout,
    )
    .await
    .map_err(|e| e.to_string())?;
    ev.send(ev.event(Stage::Checkout, EventStatus::Succeeded));
    Ok(src)
}
