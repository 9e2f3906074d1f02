//! Stage 5: keep the configured number of versions on each host; never delete the live version
//! or the one just released. A cleanup failure is reported but does not fail the release.
use crate::commands;
use crate::context::{Events, Run};
use crate::outcome::HostRun;
use crate::targets::{SshSetup, Target, fan_out};
use hippo_shared::db::inventory::Host;
use hippo_shared::events::{EventStatus, Stage};

/// The folders to remove: all but the `keep` newest (names sort by time), never `protect`.
pub fn to_remove(mut versions: Vec<String>, keep: usize, protect: &[&str]) -> Vec<String> {
    versions.sort();
    versions.dedup();
    let keep_from = versions.len().saturating_sub(keep.max(1));
    versions
        .into_iter()
        .enumerate()
        .filter(|(i, v)| *i < keep_from && !protect.contains(&v.as_str()))
        .map(|(_, v)| v)
        .collect()
}

/// Cleans every host that serves the new version now (reusing its connection), which is the
/// one to protect; sets each one's `removed`. The others are left alone. A host that fails to
/// clean is reported and keeps its folders: it does not fail the release. With `spare` (the
/// new version's file list, `Shipment::spare_list`) each host also makes the spare of the new
/// version for the next delta, after answering (`commands::clean_versions`).
pub async fn run(
    run: &Run,
    setup: &SshSetup,
    hosts: &mut [HostRun],
    spare: Option<std::sync::Arc<Vec<u8>>>,
) {
    run.events
        .send(run.events.event(Stage::Cleanup, EventStatus::Started));
    let _timer = hippo_shared::metrics::global().time_stage(Stage::Cleanup);
    let job = HostCleanup {
        setup: setup.clone(),
        events: run.events.clone(),
        versions_path: run.spec.versions_path.to_string(),
        keep: run.spec.keep_versions as usize,
        live: run.version.to_string(),
        spare,
    };
    let mut live: Vec<&mut HostRun> = hosts.iter_mut().filter(|h| h.outcome.is_live()).collect();
    let jobs = live
        .iter_mut()
        .map(|h| (h.host.clone(), h.conn.take()))
        .collect();
    let limit = crate::fleet::hosts_in_flight(run.spec.parallelism, live.len());
    let cleaned = fan_out(
        jobs,
        limit,
        move |host, conn| job.on(host, conn),
        |_| Vec::new(),
    )
    .await;
    for (h, (_, removed)) in live.into_iter().zip(cleaned) {
        h.removed = removed;
    }
}

struct HostCleanup {
    setup: SshSetup,
    events: Events,
    versions_path: String,
    keep: usize,
    live: String,
    spare: Option<std::sync::Arc<Vec<u8>>>,
}

impl HostCleanup {
    fn on(&self, host: &Host, conn: Option<Target>) -> Vec<String> {
        let ev = &self.events;
        let res = (|| {
            let t = match conn {
                Some(mut t) => {
                    t.set_stage(Stage::Cleanup);
                    t
                }
                None => Target::connect(&self.setup, host, ev, Stage::Cleanup)?,
            };
            // One command: the host lists, picks (the same rule as `to_remove`) and removes
            // (the deleting itself, and the spare, after the command has answered).
            let live = self.live.as_str();
            let (spare, input) = match &self.spare {
                Some(list) => (live, commands::clean_input(list)),
                None => ("", Vec::new()),
            };
            let gone = t.must_with(
                "removing old versions",
                &commands::clean_versions(&self.versions_path, self.keep, spare, &[live]),
                &input,
            )?;
            Ok::<_, String>(gone)
        })();
        match res {
            Ok(gone) => {
                let msg = if gone.is_empty() {
                    "nothing to remove".to_owned()
                } else {
                    format!("removed {}", gone.join(", "))
                };
                ev.send(
                    ev.event(Stage::Cleanup, EventStatus::Succeeded)
                        .host(&host.name)
                        .message(msg),
                );
                gone
            }
            Err(e) => {
                ev.send(
                    ev.event(Stage::Cleanup, EventStatus::Failed)
                        .host(&host.name)
                        .message(format!("{}: {e}", host.name)),
                );
                Vec::new()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn keeps_the_newest_and_never_the_protected() {
        assert_eq!(to_remove(v(&["a1", "a2", "a3"]), 2, &["a3"]), v(&["a1"]));
        // A rollback made an old version live: it stays even though it is not among the newest.
        assert_eq!(
            to_remove(v(&["a1", "a2", "a3", "a4"]), 2, &["a4", "a1"]),
            v(&["a2"])
        );
        assert_eq!(to_remove(v(&["a1"]), 0, &[]), Vec::<String>::new());
        assert_eq!(
            to_remove(v(&["a2", "a1", "a3"]), 1, &["a3"]),
            v(&["a1", "a2"])
        );
    }
}
