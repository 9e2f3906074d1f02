//! One host through a release. prepare → switch → cleanup each take and hand back the same
//! [`HostRun`] per host (the host, its open connection, what happened to it as an
//! [`Outcome`]); [`record`] is the one place that writes it down (the release's per-host row,
//! the versions the host keeps, which one is live). The failure policy ([`before_switch`]) and
//! the release's verdict ([`verdict`]) are pure functions of the outcomes.
use crate::context::Run;
use crate::targets::Target;
use hippo_shared::db::Db;
use hippo_shared::db::inventory::Host;
use hippo_shared::domain::{FailurePolicy, HostStatus, ReleaseKind};
use hippo_shared::events::Stage;

/// What has happened to one host in this run so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Not prepared (yet).
    Pending,
    /// The new version is in place and before-release passed; the host still serves the old one.
    Prepared,
    /// Prepared, but not switched because another host failed (policy `all_or_nothing`) or
    /// this run may no longer switch (it lost its lease).
    Skipped { reason: String },
    /// Links to the new version and after-release passed.
    Switched,
    /// Was switched, then went back to the version it linked to before (a wave's health check
    /// failed, or a paused release was cancelled): it serves `previous` again.
    RolledBack { reason: String },
    /// Failed in `stage`. `linked`: the deploy path links to the new version all the same (the
    /// link moved, after-release failed), so the host serves it.
    Failed {
        stage: Stage,
        reason: String,
        linked: bool,
    },
}

impl Outcome {
    pub fn failed(stage: Stage, reason: impl Into<String>) -> Outcome {
        Outcome::Failed {
            stage,
            reason: reason.into(),
            linked: false,
        }
    }
    /// The per-host row's status.
    pub fn status(&self) -> HostStatus {
        match self {
            Outcome::Pending => HostStatus::Pending,
            Outcome::Prepared => HostStatus::Prepared,
            Outcome::Skipped { .. } => HostStatus::Skipped,
            Outcome::Switched => HostStatus::Switched,
            Outcome::Failed { .. } => HostStatus::Failed,
            Outcome::RolledBack { .. } => HostStatus::RolledBack,
        }
    }
    /// The stage the host got to.
    pub fn stage(&self) -> Stage {
        match self {
            Outcome::Pending | Outcome::Prepared | Outcome::Skipped { .. } => Stage::Prepare,
            Outcome::Switched => Stage::Switch,
            Outcome::RolledBack { .. } => Stage::Wave,
            Outcome::Failed { stage, .. } => *stage,
        }
    }
    /// Why (failed or skipped); empty otherwise.
    pub fn message(&self) -> &str {
        match self {
            Outcome::Skipped { reason }
            | Outcome::Failed { reason, .. }
            | Outcome::RolledBack { reason } => reason,
            _ => "",
        }
    }
    /// The host's deploy path links to this run's version.
    pub fn is_live(&self) -> bool {
        matches!(
            self,
            Outcome::Switched | Outcome::Failed { linked: true, .. }
        )
    }
}

/// One host of the run, carried from stage to stage.
pub struct HostRun {
    pub host: Host,
    /// The connection opened by prepare, reused by switch and cleanup.
    pub conn: Option<Target>,
    /// The version the deploy path linked to before this run (None on a first release).
    pub previous: Option<String>,
    pub bytes_sent: u64,
    pub outcome: Outcome,
    /// Version folders cleanup removed from the host.
    pub removed: Vec<String>,
}

impl HostRun {
    pub fn new(host: Host) -> HostRun {
        HostRun {
            host,
            conn: None,
            previous: None,
            bytes_sent: 0,
            outcome: Outcome::Pending,
            removed: Vec::new(),
        }
    }
}

/// Writes down what happened to each host: its row in the release's per-host results, and
/// the versions it keeps (a prepared new version, which one is live, what cleanup removed).
/// Best effort: a database error here is logged and does not stop the run (the hosts are
/// what they are; the events tell the story).
pub async fn record(db: &Db, run: &Run, hosts: &[HostRun]) {
    for h in hosts {
        if let Err(e) = record_one(db, run, h).await {
            tracing::warn!(release_id = %run.release.id, host = %h.host.name, error = %e, "recording a host's result failed");
        }
    }
}

async fn record_one(db: &Db, run: &Run, h: &HostRun) -> Result<(), hippo_shared::db::DbError> {
    let (rid, config) = (run.release.id, run.release.config_id);
    let o = &h.outcome;
    if *o == Outcome::Pending {
        return Ok(());
    }
    db.update_release_host(rid, h.host.id, o.status(), o.stage(), o.message())
        .await?;
    if *o == Outcome::Prepared {
        db.set_release_host_extra(rid, h.host.id, h.bytes_sent, h.previous.as_deref())
            .await?;
        if run.release.kind == ReleaseKind::Release {
            db.record_host_version(
                config,
                h.host.id,
                run.version.as_str(),
                rid,
                run.release.commit_id.as_str(),
            )
            .await?;
        }
    }
    if o.is_live() {
        db.mark_live_version(config, h.host.id, run.version.as_str())
            .await?;
    }
    if let (Outcome::RolledBack { .. }, Some(previous)) = (o, &h.previous) {
        db.mark_live_version(config, h.host.id, previous).await?;
    }
    if !h.removed.is_empty() {
        db.forget_host_versions(config, h.host.id, &h.removed)
            .await?;
    }
    Ok(())
}

/// The failure policy, after prepare: `Err(why)` when no host may switch. Under
/// `all_or_nothing` one host that failed to prepare stops them all; under `continue` the
/// prepared hosts switch anyway (the release still ends failed).
pub fn before_switch(policy: FailurePolicy, outcomes: &[(&str, &Outcome)]) -> Result<(), String> {
    let failures = failures(outcomes);
    if failures.is_empty() || policy == FailurePolicy::Continue {
        return Ok(());
    }
    Err(format!(
        "{} of {} hosts failed to prepare; no host was switched. {}",
        failures.len(),
        outcomes.len(),
        failures.join("; ")
    ))
}

/// Marks every prepared host skipped (it will not switch) with `reason`.
pub fn skip_prepared(hosts: &mut [HostRun], reason: &str) {
    for h in hosts {
        if h.outcome == Outcome::Prepared {
            h.outcome = Outcome::Skipped {
                reason: reason.to_owned(),
            };
        }
    }
}

/// The release's verdict once every host is done: `Err` names the failed hosts.
pub fn verdict(outcomes: &[(&str, &Outcome)]) -> Result<(), String> {
    let failures = failures(outcomes);
    if failures.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} of {} hosts failed: {}",
            failures.len(),
            outcomes.len(),
            failures.join("; ")
        ))
    }
}

/// "name: reason" of every failed host, in host order.
fn failures(outcomes: &[(&str, &Outcome)]) -> Vec<String> {
    outcomes
        .iter()
        .filter_map(|(name, o)| match o {
            Outcome::Failed { reason, .. } => Some(format!("{name}: {reason}")),
            _ => None,
        })
        .collect()
}

/// The outcomes by host name, as [`before_switch`] reads them.
pub fn named(hosts: &[HostRun]) -> Vec<(&str, &Outcome)> {
    hosts
        .iter()
        .map(|h| (h.host.name.as_str(), &h.outcome))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(reason: &str) -> Outcome {
        Outcome::failed(Stage::Prepare, reason)
    }

    #[test]
    fn all_or_nothing_stops_every_host_when_one_failed_to_prepare() {
        let (ok, bad) = (Outcome::Prepared, failed("connection refused"));
        let hosts = [("web1", &ok), ("web2", &bad), ("web3", &ok)];
        assert_eq!(
            before_switch(FailurePolicy::AllOrNothing, &hosts),
            Err(
                "1 of 3 hosts failed to prepare; no host was switched. web2: connection refused"
                    .into()
            )
        );
        assert_eq!(before_switch(FailurePolicy::Continue, &hosts), Ok(()));
    }

    #[test]
    fn every_host_prepared_switches_under_either_policy() {
        let ok = Outcome::Prepared;
        let hosts = [("web1", &ok), ("web2", &ok)];
        assert_eq!(before_switch(FailurePolicy::AllOrNothing, &hosts), Ok(()));
        assert_eq!(before_switch(FailurePolicy::Continue, &hosts), Ok(()));
    }

    #[test]
    fn the_failure_message_names_every_failed_host() {
        let (a, b) = (failed("disk full"), failed("timed out"));
        assert_eq!(
            before_switch(FailurePolicy::AllOrNothing, &[("a", &a), ("b", &b)]),
            Err(
                "2 of 2 hosts failed to prepare; no host was switched. a: disk full; b: timed out"
                    .into()
            )
        );
    }

    #[test]
    fn the_release_fails_when_any_host_failed_even_after_switching_the_others() {
        let hook = Outcome::Failed {
            stage: Stage::Switch,
            reason: "after_release hook exited with code 1".into(),
            linked: true,
        };
        let (ok, skipped) = (
            Outcome::Switched,
            Outcome::Skipped {
                reason: "lease lost".into(),
            },
        );
        assert_eq!(verdict(&[("a", &ok), ("b", &ok)]), Ok(()));
        assert_eq!(verdict(&[("a", &ok), ("b", &skipped)]), Ok(()));
        assert_eq!(
            verdict(&[("a", &ok), ("b", &hook), ("c", &failed("refused"))]),
            Err("2 of 3 hosts failed: b: after_release hook exited with code 1; c: refused".into())
        );
    }

    #[test]
    fn a_host_whose_after_release_failed_still_serves_the_new_version() {
        let hook = Outcome::Failed {
            stage: Stage::Switch,
            reason: "after_release hook exited with code 1".into(),
            linked: true,
        };
        assert!(hook.is_live());
        assert_eq!(hook.status(), HostStatus::Failed);
        assert_eq!(hook.stage(), Stage::Switch);
        assert!(Outcome::Switched.is_live());
        assert!(!Outcome::Prepared.is_live());
        assert!(!failed("x").is_live());
        let skipped = Outcome::Skipped {
            reason: "not switched".into(),
        };
        assert!(!skipped.is_live());
        assert_eq!(
            (skipped.status(), skipped.stage(), skipped.message()),
            (HostStatus::Skipped, Stage::Prepare, "not switched")
        );
    }
}
