//! Stage 4: point every prepared host's deploy path at the new version (a new link renamed
//! over the old one: atomic, never remove-then-create), then run after-release in the deploy
//! path. Runs only once every host is prepared (or under the "continue" policy), on the
//! connections opened by prepare.
use crate::commands;
use crate::context::{Events, Run};
use crate::outcome::{HostRun, Outcome};
use crate::targets::{Target, fan_out};
use hippo_shared::db::inventory::Host;
use hippo_shared::events::{EventStatus, Stage};
use std::time::Duration;

/// Switches every prepared host (on the connection prepare opened); the others are left alone.
/// Each becomes `Switched` or `Failed` (`linked` when only after-release failed).
pub async fn run(run: &Run, hosts: &mut [HostRun]) {
    switch_hosts(run, hosts.iter_mut().collect()).await;
}

/// [`run`] for some of the hosts (one wave, `crate::waves`): those of them that are prepared.
pub async fn switch_hosts(run: &Run, hosts: Vec<&mut HostRun>) {
    let mut ready: Vec<&mut HostRun> = hosts
        .into_iter()
        .filter(|h| h.outcome == Outcome::Prepared && h.conn.is_some())
        .collect();
    let ev = &run.events;
    ev.send(
        ev.event(Stage::Switch, EventStatus::Started)
            .message(format!(
                "switching {}",
                hippo_shared::events::hosts(ready.len())
            )),
    );
    let _timer = hippo_shared::metrics::global().time_stage(Stage::Switch);
    let limit = crate::fleet::hosts_in_flight(run.spec.parallelism, ready.len());
    let jobs = ready
        .iter_mut()
        .map(|h| {
            let job = HostSwitch {
                events: run.events.clone(),
                deploy_path: run.spec.deploy_path.to_string(),
                target: run.version_dir(),
                tmp_link: format!("{}.hippo-{}.tmp", run.spec.deploy_path, run.release.id),
                env: run.hook_env(Some(&h.host)),
                after_release: run.spec.hooks.after_release.clone(),
                hook_timeout: Duration::from_secs(run.spec.hook_timeout_secs),
            };
            (h.host.clone(), (job, h.conn.take()))
        })
        .collect();
    let switched = fan_out(
        jobs,
        limit,
        |host, (job, conn)| job.on(host, conn),
        // The task died (a panic): whether the link moved is unknown.
        |e| (Outcome::failed(Stage::Switch, e), None),
    )
    .await;
    for (h, (_, (outcome, conn))) in ready.into_iter().zip(switched) {
        h.outcome = outcome;
        h.conn = conn;
    }
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
    fn on(&self, host: &Host, conn: Option<Target>) -> (Outcome, Option<Target>) {
        let ev = &self.events;
        ev.send(
            ev.event(Stage::Switch, EventStatus::Started)
                .host(&host.name),
        );
        let Some(mut t) = conn else {
            return (
                Outcome::failed(Stage::Switch, "no connection to switch on"),
                None,
            );
        };
        t.set_stage(Stage::Switch);
        let outcome = self.switch(&t);
        match &outcome {
            Outcome::Switched => ev.send(
                ev.event(Stage::Switch, EventStatus::Succeeded)
                    .host(&host.name)
                    .message(format!("{} -> {}", self.deploy_path, self.target)),
            ),
            other => ev.send(
                ev.event(Stage::Switch, EventStatus::Failed)
                    .host(&host.name)
                    .message(format!("{}: {}", host.name, other.message())),
            ),
        }
        (outcome, Some(t))
    }

    /// Moves the link, then runs after-release.
    fn switch(&self, t: &Target) -> Outcome {
        if let Err(reason) = t.must(
            "switching the deploy path",
            &commands::switch_link(&self.deploy_path, &self.target, &self.tmp_link),
        ) {
            return Outcome::failed(Stage::Switch, reason);
        }
        if self.after_release.trim().is_empty() {
            return Outcome::Switched;
        }
        match t.hook(
            "after_release",
            &self.deploy_path,
            &self.env,
            &self.after_release,
            self.hook_timeout,
        ) {
            Ok(()) => Outcome::Switched,
            Err(reason) => Outcome::Failed {
                stage: Stage::Switch,
                reason,
                linked: true,
            },
        }
    }
}
