//! A custom release (config kind `custom`, `hippo_shared::custom`): checkout, then the config's
//! actions in order, stopping at the first failure with its step, host and exit code.
//!
//! - Before the first action every host is connected and made ready: the deploy path must be a
//!   link (or absent), the version folder `<versions>/<version>` is made empty, and every
//!   transfer's destination becomes a link to `<deploy_path>/<destination without '/'>`
//!   (a destination that is a real file or folder stops the release before anything else).
//! - A server command runs in the checked-out tree, sandboxed like the after-checkout hook.
//! - A target command runs on every host (as many at once as `fleet::hosts_in_flight` allows)
//!   in the version folder.
//! - A transfer packs its source (a path of the tree, or the file uploaded for this step) under
//!   the destination's relative path and unpacks it into the version folder on every host.
//! - Right after the last transfer (at the end when there is none) every host is switched, all
//!   or nothing, exactly as a regular release switches (`switch`): the deploy link moves, and
//!   with it every destination. Target commands after that point run on switched hosts (a
//!   restart); one failing there fails the release with the hosts switched.
//!
//! Versions, cleanup, recovery and rollback are the regular ones; a rollback of a custom config
//! runs the regular rollback (nothing is sent; a version a host lost cannot be re-sent).
//! A cancel request stops the run between steps until the switch begins (`cancel`).
use crate::context::{Deps, Run};
use crate::hooks::{self, Hook};
use crate::lease::Lease;
use crate::outcome::{self, HostRun, Outcome};
use crate::sandbox::{SRC_INSIDE, WorkDir};
use crate::targets::{SshSetup, Target, fan_out};
use crate::{cancel, checkout, cleanup, commands, prepare};
use flate2::Compression;
use flate2::write::GzEncoder;
use hippo_shared::custom::{self, Action, TransferSource};
use hippo_shared::db::inventory::Host;
use hippo_shared::domain::RemotePath;
use hippo_shared::events::{EventStatus, Stage};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Runs a custom release (kind `release`) to its verdict.
pub async fn run(
    deps: &Arc<Deps>,
    run: &Run,
    setup: &SshSetup,
    lease: &Lease,
) -> Result<(), String> {
    let result = steps(deps, run, setup, lease).await;
    match deps.db.prune_uploads(run.release.config_id).await {
        Ok(0) => {}
        Ok(n) => {
            tracing::info!(release_id = %run.release.id, removed = n, "uploaded files of versions no host keeps were removed")
        }
        Err(e) => {
            tracing::warn!(release_id = %run.release.id, error = %e, "pruning uploaded files failed")
        }
    }
    result
}

async fn steps(deps: &Arc<Deps>, run: &Run, setup: &SshSetup, lease: &Lease) -> Result<(), String> {
    let db = &deps.db;
    let actions = &run.spec.actions;
    let total = actions.len();
    // Server commands run in the tree: a fresh one.
    let src = checkout::run(deps, run, checkout::Tree::Fresh).await?;
    cancel::checkpoint(run)?;

    let mut hosts = ready_hosts(run, setup).await;
    if let Some(by) = run.cancel.stopped_by() {
        return Err(stop(deps, run, &mut hosts, &by).await);
    }
    if let Some(e) = first_failure(&hosts) {
        outcome::skip_prepared(
            &mut hosts,
            "not switched: another host could not be made ready",
        );
        outcome::record(db, run, &hosts).await;
        return Err(format!("no step run: {e}"));
    }
    let switch_after = actions.iter().rposition(Action::is_transfer);
    let mut switched = false;
    for (i, action) in actions.iter().enumerate() {
        if let (false, Some(by)) = (switched, run.cancel.stopped_by()) {
            return Err(stop(deps, run, &mut hosts, &by).await);
        }
        let step = i + 1;
        let what = action.describe();
        let stage = match (action, switched) {
            (Action::ServerCommand { .. }, _) => Stage::Checkout,
            (_, false) => Stage::Prepare,
            (_, true) => Stage::Switch,
        };
        let ev = &run.events;
        ev.send(
            ev.event(stage, EventStatus::Started)
                .message(format!("step {step} of {total}: {what}")),
        );
        let failed: Option<(String, String)> = match action {
            Action::ServerCommand { script } => server_command(deps, run, &src, step, script)
                .await
                .err()
                .map(|e| ("the release server".to_owned(), e)),
            Action::TargetCommand { script } => {
                let (dir, env_of) = (run.version_dir(), HostEnv::new(run));
                let (script, timeout) = (script.clone(), hook_timeout(run));
                on_hosts(run, &mut hosts, move |t| {
                    t.hook(
                        "target command",
                        &dir,
                        &env_of.of(&t.host),
                        &script,
                        timeout,
                    )
                    .map(|()| 0)
                })
                .await
            }
            Action::Transfer {
                source,
                destination,
            } => match pack(deps, run, &src, step, source, destination).await {
                Err(e) => Some(("the release server".to_owned(), e)),
                Ok(archive) => {
                    let dir = run.version_dir();
                    on_hosts(run, &mut hosts, move |t| send(t, &archive, &dir)).await
                }
            },
        };
        if let (false, Some(by)) = (switched, run.cancel.stopped_by()) {
            return Err(stop(deps, run, &mut hosts, &by).await);
        }
        if let Some((place, why)) = failed {
            let msg = format!("step {step} of {total} ({what}) failed on {place}: {why}");
            ev.send(ev.event(stage, EventStatus::Failed).message(msg.clone()));
            if !switched {
                for h in &mut hosts {
                    if h.outcome == Outcome::Pending {
                        h.outcome = Outcome::Skipped {
                            reason: format!("not switched: step {step} failed"),
                        };
                    }
                }
            }
            outcome::record(db, run, &hosts).await;
            return Err(msg);
        }
        ev.send(
            ev.event(stage, EventStatus::Succeeded)
                .message(format!("step {step} of {total}: {what}: done")),
        );
        if switch_after == Some(i) {
            switch_all(deps, run, lease, &mut hosts).await?;
            switched = true;
        }
    }
    if !switched {
        switch_all(deps, run, lease, &mut hosts).await?;
    }
    cleanup::run(run, setup, &mut hosts, None).await;
    outcome::record(db, run, &hosts).await;
    outcome::verdict(&outcome::named(&hosts))
}

/// Every host prepared so far is switched (all of them: a failure stopped the run before);
/// `Err` when the lease is lost or a host did not switch.
async fn switch_all(
    deps: &Deps,
    run: &Run,
    lease: &Lease,
    hosts: &mut [HostRun],
) -> Result<(), String> {
    let db = &deps.db;
    if let Err(by) = run.cancel.begin_switch() {
        return Err(stop(deps, run, hosts, &by).await);
    }
    for h in hosts.iter_mut() {
        h.outcome = Outcome::Prepared;
    }
    outcome::record(db, run, hosts).await;
    if !lease.still_held().await.map_err(|e| e.to_string())? {
        outcome::skip_prepared(hosts, "not switched: this worker lost the release lease");
        outcome::record(db, run, hosts).await;
        return Err(
            "this worker lost the release lease before switching; no host was switched".into(),
        );
    }
    // In waves, with their health checks and pauses, when the config has them.
    let switched = crate::waves::run(deps, run, hosts, lease).await;
    outcome::record(db, run, hosts).await;
    switched?;
    cancel::note_if_late(run);
    outcome::verdict(&outcome::named(hosts))
}

/// A cancel request stopped the run before its switch: no host switches, and the new
/// version's folders are removed (`cancel::stop_before_switch`); the release's final message.
async fn stop(deps: &Deps, run: &Run, hosts: &mut [HostRun], by: &str) -> String {
    for h in hosts.iter_mut() {
        if h.outcome == Outcome::Pending {
            h.outcome = Outcome::Prepared;
        }
    }
    cancel::stop_before_switch(deps, run, hosts, by).await
}

fn hook_timeout(run: &Run) -> Duration {
    Duration::from_secs(run.spec.hook_timeout_secs)
}

fn first_failure(hosts: &[HostRun]) -> Option<String> {
    hosts.iter().find_map(|h| match &h.outcome {
        Outcome::Failed { reason, .. } => Some(format!("{}: {reason}", h.host.name)),
        _ => None,
    })
}

/// The variables of a target command, per host (plain data for the blocking tasks).
#[derive(Clone)]
struct HostEnv {
    base: Vec<(String, String)>,
    custom: Vec<(String, String)>,
}

impl HostEnv {
    fn new(run: &Run) -> Self {
        let all = run.hook_env(None);
        let n = all.len() - run.spec.variables.len();
        Self {
            base: all[..n].to_vec(),
            custom: all[n..].to_vec(),
        }
    }
    fn of(&self, host: &Host) -> Vec<(String, String)> {
        let mut v = self.base.clone();
        v.push(("HIPPO_HOST_NAME".into(), host.name.clone()));
        v.push(("HIPPO_HOST_ADDR".into(), host.addr.clone()));
        v.extend(self.custom.iter().cloned());
        v
    }
}

/// Connects every host (`parallelism` at once), checks its deploy path, makes the version
/// folder and links every destination into the deploy path. Each comes back `Pending` with
/// its connection, or `Failed`.
async fn ready_hosts(run: &Run, setup: &SshSetup) -> Vec<HostRun> {
    let ev = &run.events;
    ev.send(
        ev.event(Stage::Prepare, EventStatus::Started)
            .message(format!(
                "connecting {}",
                hippo_shared::events::hosts(run.hosts.len())
            )),
    );
    let deploy = run.spec.deploy_path.to_string();
    let versions = run.spec.versions_path.to_string();
    let dir = run.version_dir();
    let links: Vec<(String, String)> = run
        .spec
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::Transfer { destination, .. } => Some((
                destination.to_string(),
                format!("{deploy}/{}", custom::in_version(destination)),
            )),
            _ => None,
        })
        .collect();
    let tmp_suffix = format!(".hippo-{}.tmp", run.release.id);
    let limit = crate::fleet::hosts_in_flight(run.spec.parallelism, run.hosts.len());
    let jobs = run
        .hosts
        .iter()
        .map(|h| (h.clone(), run.events.clone()))
        .collect();
    let setup = setup.clone();
    fan_out(
        jobs,
        limit,
        move |host, events| {
            let t = Target::connect(&setup, host, &events, Stage::Prepare)?;
            let previous = prepare::live_version(&t, &deploy, &versions)?;
            t.must(
                "making the version folder",
                &commands::new_version_dir(&dir),
            )?;
            for (dest, target) in &links {
                let tmp = format!("{dest}{tmp_suffix}");
                match t.query(&commands::switch_link(dest, target, &tmp))? {
                    (0, _) => {}
                    (commands::DEPLOY_PATH_IS_NOT_A_LINK, _) => {
                        return Err(format!(
                            "destination {dest} exists and is not a symbolic link; move it away \
                             (Hippo makes it a link into the deploy path)"
                        ));
                    }
                    (code, _) => {
                        return Err(format!(
                            "linking the destination {dest} failed with exit code {code}"
                        ));
                    }
                }
            }
            Ok((t, previous))
        },
        Err,
    )
    .await
    .into_iter()
    .map(|(host, res)| {
        let mut h = HostRun::new(host);
        match res {
            Ok((t, previous)) => {
                h.conn = Some(t);
                h.previous = previous;
            }
            Err(e) => {
                ev.send(
                    ev.event(Stage::Prepare, EventStatus::Failed)
                        .host(&h.host.name)
                        .message(format!("{}: {e}", h.host.name)),
                );
                h.outcome = Outcome::failed(Stage::Prepare, e);
            }
        }
        h
    })
    .collect()
}

/// Runs `work` on every host's open connection (`parallelism` at once); adds the bytes it
/// sent to the host. The first host (in host order) that failed, with why, or `None`. A host
/// that failed is marked failed: before the switch at the prepare stage (not linked), after it
/// at the switch stage (linked: it serves the new version).
async fn on_hosts<F>(run: &Run, hosts: &mut [HostRun], work: F) -> Option<(String, String)>
where
    F: Fn(&Target) -> Result<u64, String> + Send + Sync + 'static,
{
    let limit = crate::fleet::hosts_in_flight(run.spec.parallelism, hosts.len());
    let jobs = hosts
        .iter_mut()
        .map(|h| (h.host.clone(), h.conn.take()))
        .collect();
    let work = Arc::new(work);
    let done = fan_out(
        jobs,
        limit,
        move |_, conn: Option<Target>| match conn {
            Some(t) => {
                let r = work(&t);
                (Some(t), r)
            }
            None => (None, Err("no connection to the host".to_owned())),
        },
        |e| (None, Err(e)),
    )
    .await;
    let mut first = None;
    for (h, (_, (conn, result))) in hosts.iter_mut().zip(done) {
        h.conn = conn;
        match result {
            Ok(sent) => h.bytes_sent += sent,
            Err(why) => {
                h.outcome = if h.outcome.is_live() {
                    Outcome::Failed {
                        stage: Stage::Switch,
                        reason: why.clone(),
                        linked: true,
                    }
                } else {
                    Outcome::failed(Stage::Prepare, why.clone())
                };
                if first.is_none() {
                    first = Some((h.host.name.clone(), why));
                }
            }
        }
    }
    first
}

/// A server command: in the checked-out tree, sandboxed like the after-checkout hook.
async fn server_command(
    deps: &Deps,
    run: &Run,
    src: &Path,
    step: usize,
    script: &str,
) -> Result<(), String> {
    let env = run.hook_env(None);
    let hook = Hook {
        name: "server command",
        script,
        work: WorkDir {
            host: src,
            inside: SRC_INSIDE,
            writable: true,
        },
        scratch: &run.work.join(format!("step-{step}")),
        env: &env,
        timeout: hook_timeout(run),
    };
    hooks::run_local(&deps.sandbox, hook, &run.events, Stage::Checkout)
        .await
        .map_err(|e| e.to_string())
}

/// Packs a transfer's source under the destination's relative path into a tar.gz of the run's
/// work folder; its path.
async fn pack(
    deps: &Deps,
    run: &Run,
    src: &Path,
    step: usize,
    source: &TransferSource,
    destination: &RemotePath,
) -> Result<PathBuf, String> {
    let out = run.work.join(format!("step-{step}.tar.gz"));
    let name = custom::in_version(destination).to_owned();
    let content = match source {
        TransferSource::Tree { path } => Content::Tree(tree_source(src, path.as_str())?),
        TransferSource::Upload => {
            let step_no = i64::try_from(step).unwrap_or(i64::MAX);
            let data = deps
                .db
                .upload_data(run.release.id, step_no)
                .await
                .map_err(|e| e.to_string())?
                .ok_or_else(|| {
                    format!(
                        "no file was uploaded for this step (PUT /api/releases/{}/uploads/{step})",
                        run.release.id
                    )
                })?;
            Content::Bytes(data)
        }
    };
    let path = out.clone();
    tokio::task::spawn_blocking(move || write_archive(&path, &name, content))
        .await
        .map_err(|e| format!("packing task failed: {e}"))?
        .map_err(|e| format!("packing failed: {e}"))?;
    Ok(out)
}

enum Content {
    Tree(PathBuf),
    Bytes(Vec<u8>),
}

/// The source path inside the tree; refused when absent or when it leads out of the tree
/// (through a symbolic link).
fn tree_source(src: &Path, rel: &str) -> Result<PathBuf, String> {
    let abs = if rel == "." {
        src.to_path_buf()
    } else {
        src.join(rel)
    };
    if std::fs::symlink_metadata(&abs).is_err() {
        return Err(format!("{rel} does not exist in the checked-out tree"));
    }
    let (Ok(root), Ok(real)) = (src.canonicalize(), abs.canonicalize()) else {
        return Err(format!("{rel} cannot be read in the checked-out tree"));
    };
    if !real.starts_with(&root) {
        return Err(format!("{rel} leads out of the checked-out tree"));
    }
    Ok(real)
}

fn write_archive(out: &Path, name: &str, content: Content) -> std::io::Result<()> {
    let file = std::fs::File::create(out)?;
    let gz = GzEncoder::new(std::io::BufWriter::new(file), Compression::fast());
    let mut b = tar::Builder::new(gz);
    b.follow_symlinks(false);
    b.mode(tar::HeaderMode::Complete);
    match content {
        Content::Tree(path) if path.is_dir() => b.append_dir_all(name, &path)?,
        Content::Tree(path) => b.append_path_with_name(&path, name)?,
        Content::Bytes(data) => {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Regular);
            h.set_mode(0o644);
            h.set_size(data.len() as u64);
            h.set_mtime(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs()),
            );
            b.append_data(&mut h, name, data.as_slice())?;
        }
    }
    let gz = b.into_inner()?;
    let mut w = gz.finish()?;
    std::io::Write::flush(&mut w)?;
    Ok(())
}

/// Streams `archive` into the version folder `dir` on one host; the bytes sent.
fn send(t: &Target, archive: &Path, dir: &str) -> Result<u64, String> {
    let mut file =
        std::fs::File::open(archive).map_err(|e| format!("cannot open the package: {e}"))?;
    let (code, sent) = t.send(&commands::unpack_into(dir), &mut file)?;
    if code != 0 {
        return Err(format!("unpacking failed with exit code {code}"));
    }
    Ok(sent)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_tree_source_must_exist_and_stay_inside_the_tree() {
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("src");
        std::fs::create_dir_all(src.join("dist")).unwrap();
        std::os::unix::fs::symlink("/etc", src.join("out")).unwrap();
        assert!(tree_source(&src, "dist").is_ok());
        assert!(tree_source(&src, ".").is_ok());
        assert!(
            tree_source(&src, "missing")
                .unwrap_err()
                .contains("does not exist")
        );
        assert!(tree_source(&src, "out").unwrap_err().contains("leads out"));
    }

    #[test]
    fn an_archive_puts_the_source_at_the_destinations_path() {
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("dist");
        std::fs::create_dir_all(src.join("css")).unwrap();
        std::fs::write(src.join("index.html"), "hi").unwrap();
        std::fs::write(src.join("css/a.css"), "a").unwrap();
        let out = d.path().join("a.tar.gz");
        write_archive(&out, "srv/app/static", Content::Tree(src)).unwrap();
        let mut names: Vec<String> = tar::Archive::new(flate2::read::GzDecoder::new(
            std::fs::File::open(&out).unwrap(),
        ))
        .entries()
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path().unwrap().to_string_lossy().into_owned();
            p.trim_end_matches('/').to_owned()
        })
        .collect();
        names.sort();
        assert_eq!(
            names,
            [
                "srv/app/static",
                "srv/app/static/css",
                "srv/app/static/css/a.css",
                "srv/app/static/index.html"
            ]
        );
        write_archive(&out, "srv/app/app.bin", Content::Bytes(vec![1, 2, 3])).unwrap();
        let mut a = tar::Archive::new(flate2::read::GzDecoder::new(
            std::fs::File::open(&out).unwrap(),
        ));
        let mut e = a.entries().unwrap().next().unwrap().unwrap();
        assert_eq!(e.path().unwrap().to_str(), Some("srv/app/app.bin"));
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut buf).unwrap();
        assert_eq!(buf, [1, 2, 3]);
    }
}
