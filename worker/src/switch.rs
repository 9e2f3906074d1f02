//! Stage 4: point every prepared host's deploy path at the new version (a new link renamed
//! over the old one: atomic, never remove-then-create), then run after-release in the deploy
//! path. Runs only once every host is prepared (or under the "continue" policy), on the
//! connections opened by prepare.
use crate::commands;
use crate::context::{Events, Run};
use crate::targets::{Target, fan_out};
use hippo_shared::db::inventory::Host;
use hippo_shared::events::{EventStatus, Stage};
use std::time::Duration;

/// A host's switch outcome: `Ok` when linked and after-release passed; `Err((linked, reason))`.
pub type SwitchResult = Result<(), (bool, String)>;

/// Switches every host; hands each connection back for cleanup.
pub async fn run(
    run: &Run,
    hosts: Vec<(Host, Target)>,
) -> Vec<(Host, SwitchResult, Option<Target>)> {
    let limit = run.spec.parallelism.map_or(hosts.len(), |p| p as usize);
    let jobs = hosts
        .into_iter()
        .map(|(host, conn)| {
            let job = HostSwitch {
                events: run.events.clone(),
                deploy_path: run.spec.deploy_path.to_string(),
                target: run.version_dir(),
                tmp_link: format!("{}.hippo-{}.tmp", run.spec.deploy_path, run.release.id),
                env: run.hook_env(Some(&host)),
                after_release: run.spec.hooks.after_release.clone(),
                hook_timeout: Duration::from_secs(run.spec.hook_timeout_secs),
            };
            (host, (job, conn))
        })
        .collect();
    fan_out(
        jobs,
        limit,
        |host, (job, conn)| job.on(host, conn),
        |e| (Err((false, e)), None),
    )
    .await
    .into_iter()
    .map(|(host, (res, conn))| (host, res, conn))
    .collect()
}

struct HostSwitch {
    events: Events,
    deploy_path: String,
    target: String,
    tmp_link: String,
    env: Vec<(String, String)>,
    after_release: String,
    hook_timeout: Duration,
}

impl HostSwitch {
    fn on(&self, host: &Host, mut t: Target) -> (SwitchResult, Option<Target>) {
        let ev = &self.events;
        ev.send(
            ev.event(Stage::Switch, EventStatus::Started)
                .host(&host.name),
        );
        t.set_stage(Stage::Switch);
        let linked = t
            .must(
                "switching the deploy path",
                &commands::switch_link(&self.deploy_path, &self.target, &self.tmp_link),
            )
            .map(|_| ());
        let result = match linked {
            Err(e) => Err((false, e)),
            Ok(()) if self.after_release.trim().is_empty() => Ok(()),
            Ok(()) => t
                .hook(
                    "after_release",
                    &commands::run_hook(&self.deploy_path, &self.env, self.hook_timeout.as_secs()),
                    &self.after_release,
                    self.hook_timeout,
                )
                .map_err(|e| (true, e)),
        };
        match &result {
            Ok(()) => ev.send(
                ev.event(Stage::Switch, EventStatus::Succeeded)
                    .host(&host.name)
                    .message(format!("{} -> {}", self.deploy_path, self.target)),
            ),
            Err((_, msg)) => ev.send(
                ev.event(Stage::Switch, EventStatus::Failed)
                    .host(&host.name)
                    .message(format!("{}: {msg}", host.name)),
            ),
        }
        (result, Some(t))
    }
}
