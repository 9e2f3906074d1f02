//! The config's `on_failure` hook (issue 12): run on the release server, sandboxed like the
//! checkout hooks, once when a run ends failed or cancelled (before the notices), with the
//! reason and the hosts that did not end on the new version. It works in the run's exported
//! tree when there is one (read-only), else in an empty folder. Its own failure is reported in
//! the events and does not change the release's outcome.
//!
//! A run cut off by a crash or a lost worker gets it too, from whoever ends it
//! (`recovery`: the restarted standalone process, or another worker's sweeper), in an empty
//! folder (the run's tree was on the machine that died). Once per run: whoever runs it first
//! claims it in the database (`Db::claim_on_failure`, keyed by the run's `started_at`), so a
//! worker that was only slow and a sweeper that took it for dead never both run it, nor do
//! two sweepers. At most once: a hook cut off by a crash is not run again (hooks are user
//! scripts and may not be safe to repeat).
use crate::context::{Deps, Events, Run};
use crate::hooks::{self, Hook};
use crate::sandbox::{SRC_INSIDE, WorkDir};
use hippo_shared::db::configs::ConfigSpec;
use hippo_shared::db::releases::Release;
use hippo_shared::domain::{HostStatus, ReleaseId};
use hippo_shared::events::Stage;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The variables the hook gets besides the usual `HIPPO_*` ones.
pub fn failure_env(status: &str, reason: &str, failed_hosts: &[String]) -> Vec<(String, String)> {
    vec![
        ("HIPPO_RELEASE_STATUS".into(), status.into()),
        ("HIPPO_FAILURE_REASON".into(), reason.into()),
        ("HIPPO_FAILED_HOSTS".into(), failed_hosts.join(",")),
    ]
}

/// Runs the hook if the config has one. `cancelled`: the run was stopped by a cancel.
pub async fn run(deps: &Deps, run: &Run, reason: &str, cancelled: bool) {
    if run.spec.hooks.on_failure.trim().is_empty() || !claim(deps, run.release.id).await {
        return;
    }
    let failed = failed_hosts(deps, run.release.id).await;
    let status = if cancelled { "cancelled" } else { "failed" };
    let mut env = run.hook_env(None);
    env.extend(failure_env(status, reason, &failed));
    let tree = crate::checkout::tree_of(deps, run);
    hook(deps, &run.spec, &env, &run.work, tree, &run.events).await;
}

/// The hook of a run that was cut off (`recovery`), before the release is ended failed with
/// `reason` (its events come before the final one). Runs in an empty folder of its own.
pub async fn after_cut_off(deps: &Deps, r: &Release, reason: &str) {
    let spec = &r.snapshot;
    if spec.hooks.on_failure.trim().is_empty() || !claim(deps, r.id).await {
        return;
    }
    let (app, environment) = match (
        deps.db.get_app(r.app_id).await,
        deps.db.get_environment(r.environment_id).await,
    ) {
        (Ok(a), Ok(e)) => (a, e),
        (Err(e), _) | (_, Err(e)) => {
            tracing::warn!(release_id = %r.id, error = %e, "on_failure hook not run: cannot read the app or environment");
            return;
        }
    };
    let failed = failed_hosts(deps, r.id).await;
    let version = r
        .version
        .as_ref()
        .map(|v| v.to_string())
        .unwrap_or_default();
    let mut env = crate::context::hook_env(r, spec, &app, &environment, &version, None);
    env.extend(failure_env("failed", reason, &failed));
    let work = deps.work_dir().join(format!("release-{}-cut-off", r.id));
    let _ = std::fs::remove_dir_all(&work);
    if let Err(e) = std::fs::create_dir_all(&work) {
        tracing::warn!(release_id = %r.id, error = %e, "on_failure hook not run: no work folder");
        return;
    }
    let (events, forwarder) = Events::start(deps.hub.clone(), r.id);
    hook(deps, spec, &env, &work, None, &events).await;
    drop(events);
    let _ = forwarder.await;
    let _ = std::fs::remove_dir_all(&work);
}

/// True for the one caller that may run this run's hook.
async fn claim(deps: &Deps, id: ReleaseId) -> bool {
    match deps.db.claim_on_failure(id).await {
        Ok(claimed) => {
            if !claimed {
                tracing::info!(release_id = %id, "on_failure hook already claimed for this run (or the release ended elsewhere); not run");
            }
            claimed
        }
        Err(e) => {
            tracing::warn!(release_id = %id, error = %e, "on_failure hook not run: cannot claim it");
            false
        }
    }
}

/// The hosts whose row is not `switched`.
async fn failed_hosts(deps: &Deps, id: ReleaseId) -> Vec<String> {
    match deps.db.release_hosts(id).await {
        Ok(rows) => rows
            .into_iter()
            .filter(|h| h.status != HostStatus::Switched)
            .map(|h| h.host_name)
            .collect(),
        Err(e) => {
            tracing::warn!(release_id = %id, error = %e, "reading the hosts' results");
            Vec::new()
        }
    }
}

/// Runs the script in `tree` (read-only) or an empty folder under `work`, sandboxed.
async fn hook(
    deps: &Deps,
    spec: &ConfigSpec,
    env: &[(String, String)],
    work: &Path,
    tree: Option<PathBuf>,
    events: &Events,
) {
    let (host, writable) = match tree {
        Some(src) => (src, false),
        None => {
            let empty = work.join("on_failure_work");
            let _ = std::fs::create_dir_all(&empty);
            (empty, true)
        }
    };
    let hook = Hook {
        name: "on_failure",
        script: &spec.hooks.on_failure,
        work: WorkDir {
            host: &host,
            inside: SRC_INSIDE,
            writable,
        },
        scratch: &work.join("on_failure"),
        env,
        timeout: Duration::from_secs(spec.hook_timeout_secs),
    };
    if let Err(e) = hooks::run_local(&deps.sandbox, hook, events, Stage::Notify).await {
        events.info(Stage::Notify, e.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_failure_hook_gets_the_status_the_reason_and_the_failed_hosts() {
        let env = failure_env(
            "failed",
            "web-2: hook exited with code 3",
            &["web-2".into(), "web-3".into()],
        );
        assert_eq!(
            env,
            vec![
                ("HIPPO_RELEASE_STATUS".to_owned(), "failed".to_owned()),
                (
                    "HIPPO_FAILURE_REASON".to_owned(),
                    "web-2: hook exited with code 3".to_owned()
                ),
                ("HIPPO_FAILED_HOSTS".to_owned(), "web-2,web-3".to_owned()),
            ]
        );
    }
}
