//! The config's `on_failure` hook (issue 12): run on the release server, sandboxed like the
//! checkout hooks, once when a run ends failed or cancelled (before the notices), with the
//! reason and the hosts that did not end on the new version. It works in the run's exported
//! tree when there is one (read-only), else in an empty folder. Its own failure is reported in
//! the events and does not change the release's outcome.
use crate::context::{Deps, Run};
use crate::hooks::{self, Hook};
use crate::sandbox::{SRC_INSIDE, WorkDir};
use hippo_shared::domain::HostStatus;
use hippo_shared::events::Stage;
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
    let script = &run.spec.hooks.on_failure;
    if script.trim().is_empty() {
        return;
    }
    let failed: Vec<String> = match deps.db.release_hosts(run.release.id).await {
        Ok(rows) => rows
            .into_iter()
            .filter(|h| h.status != HostStatus::Switched)
            .map(|h| h.host_name)
            .collect(),
        Err(e) => {
            tracing::warn!(release_id = %run.release.id, error = %e, "reading the hosts' results");
            Vec::new()
        }
    };
    let status = if cancelled { "cancelled" } else { "failed" };
    let mut env = run.hook_env(None);
    env.extend(failure_env(status, reason, &failed));
    let src = run.work.join("src");
    let empty = run.work.join("on_failure_work");
    let (host, writable) = if src.is_dir() {
        (src, false)
    } else {
        let _ = std::fs::create_dir_all(&empty);
        (empty, true)
    };
    let hook = Hook {
        name: "on_failure",
        script,
        work: WorkDir {
            host: &host,
            inside: SRC_INSIDE,
            writable,
        },
        scratch: &run.work.join("on_failure"),
        env: &env,
        timeout: Duration::from_secs(run.spec.hook_timeout_secs),
    };
    if let Err(e) = hooks::run_local(&deps.sandbox, hook, &run.events, Stage::Notify).await {
        run.events.info(Stage::Notify, e.to_string());
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
