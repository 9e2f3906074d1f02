//! Stage 3: prepare every host, in parallel with a bound. Per host: connect, check the deploy
//! path, upload and unpack into `.partial-<version>`, record the manifest, rename the folder
//! into place, run before-release. The live version is untouched throughout.
use crate::commands;
use crate::context::Run;
use crate::outcome::{HostRun, Outcome};
use crate::targets::{SshSetup, Target, fan_out};
use hippo_shared::db::inventory::Host;
use hippo_shared::events::{EventStatus, Stage};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// What prepare leaves on a host that is ready to switch.
struct Prepared {
    conn: Target,
    /// The version the deploy path pointed to before (None on a first release).
    previous: Option<String>,
    bytes_sent: u64,
}

/// What to put on a host: a new version from an archive, or one that should already be there.
#[derive(Clone)]
pub enum Payload {
    /// Upload this archive (and record this manifest JSON beside the version).
    Archive {
        path: PathBuf,
        manifest: Arc<String>,
    },
    /// Rollback: the version should be on the host; re-send `fallback` if it is not.
    Existing { fallback: Option<PathBuf> },
}

/// Prepares every host of the run; each comes back `Prepared` (with its open connection) or
/// `Failed`, in host order.
pub async fn run(run: &Run, setup: &SshSetup, payload: Payload, hook: bool) -> Vec<HostRun> {
    let ev = &run.events;
    ev.send(
        ev.event(Stage::Prepare, EventStatus::Started)
            .message(format!("preparing {} hosts", run.hosts.len())),
    );
    let _timer = hippo_shared::metrics::global().time_stage(Stage::Prepare);
    let limit = crate::fleet::hosts_in_flight(run.spec.parallelism, run.hosts.len());
    let jobs = run
        .hosts
        .iter()
        .map(|h| (h.clone(), HostCtx::new(run, h, hook)))
        .collect();
    let (setup, payload) = (setup.clone(), payload);
    fan_out(
        jobs,
        limit,
        move |host, ctx| prepare_host(&ctx, &setup, host, &payload),
        Err,
    )
    .await
    .into_iter()
    .map(|(host, res)| {
        let mut h = HostRun::new(host);
        match res {
            Ok(p) => {
                h.conn = Some(p.conn);
                h.previous = p.previous;
                h.bytes_sent = p.bytes_sent;
                h.outcome = Outcome::Prepared;
            }
            Err(e) => h.outcome = Outcome::failed(Stage::Prepare, e),
        }
        h
    })
    .collect()
}

/// Plain data a blocking host task needs (no borrows of `Run`).
struct HostCtx {
    events: crate::context::Events,
    deploy_path: String,
    versions_path: String,
    version: String,
    version_dir: String,
    env: Vec<(String, String)>,
    before_release: Option<String>,
    hook_timeout: Duration,
}

impl HostCtx {
    fn new(run: &Run, host: &Host, hook: bool) -> Self {
        let script = &run.spec.hooks.before_release;
        Self {
            events: run.events.clone(),
            deploy_path: run.spec.deploy_path.to_string(),
            versions_path: run.spec.versions_path.to_string(),
            version: run.version.to_string(),
            version_dir: run.version_dir(),
            env: run.hook_env(Some(host)),
            before_release: (hook && !script.trim().is_empty()).then(|| script.clone()),
            hook_timeout: Duration::from_secs(run.spec.hook_timeout_secs),
        }
    }
}

fn prepare_host(
    ctx: &HostCtx,
    setup: &SshSetup,
    host: &Host,
    payload: &Payload,
) -> Result<Prepared, String> {
    let ev = &ctx.events;
    ev.send(
        ev.event(Stage::Prepare, EventStatus::Started)
            .host(&host.name),
    );
    let result = (|| {
        let t = Target::connect(setup, host, ev, Stage::Prepare)?;
        let previous = live_version(&t, &ctx.deploy_path, &ctx.versions_path)?;
        let mut bytes_sent = 0;
        match payload {
            Payload::Archive { path, manifest } => {
                bytes_sent = upload(ctx, &t, path)?;
                let meta = format!("{}/.{}.hippo.json", ctx.versions_path, ctx.version);
                t.send(&commands::write_file(&meta), &mut manifest.as_bytes())
                    .and_then(|(code, _)| {
                        if code == 0 {
                            Ok(())
                        } else {
                            Err(format!("writing the manifest failed with exit code {code}"))
                        }
                    })?;
            }
            Payload::Existing { fallback } => {
                let (code, _) = t.query(&commands::version_exists(&ctx.version_dir))?;
                if code != 0 {
                    let Some(path) = fallback.as_ref().filter(|p| p.exists()) else {
                        return Err(format!(
                            "version {} is no longer on the host and no copy is kept",
                            ctx.version
                        ));
                    };
                    ev.info(
                        Stage::Prepare,
                        format!(
                            "{}: version {} is gone, sending it again",
                            host.name, ctx.version
                        ),
                    );
                    bytes_sent = upload(ctx, &t, path)?;
                }
            }
        }
        if let Some(script) = &ctx.before_release {
            t.hook(
                "before_release",
                &ctx.version_dir,
                &ctx.env,
                script,
                ctx.hook_timeout,
            )?;
        }
        Ok(Prepared {
            conn: t,
            previous,
            bytes_sent,
        })
    })();
    match &result {
        Ok(p) => ev.send(
            ev.event(Stage::Prepare, EventStatus::Succeeded)
                .host(&host.name)
                .bytes(p.bytes_sent),
        ),
        Err(msg) => ev.send(
            ev.event(Stage::Prepare, EventStatus::Failed)
                .host(&host.name)
                .message(format!("{}: {msg}", host.name)),
        ),
    }
    result
}

/// The version the deploy path links to now; refuses a deploy path that is a real directory.
pub fn live_version(
    t: &Target,
    deploy_path: &str,
    versions_path: &str,
) -> Result<Option<String>, String> {
    let (code, out) = t.query(&commands::inspect_deploy_path(deploy_path))?;
    match code {
        0 => {
            let target = out.first().cloned().unwrap_or_default();
            let prefix = format!("{versions_path}/");
            Ok(Some(
                target.strip_prefix(&prefix).unwrap_or(&target).to_owned(),
            ))
        }
        commands::DEPLOY_PATH_ABSENT => Ok(None),
        commands::DEPLOY_PATH_IS_NOT_A_LINK => Err(format!(
            "deploy path {deploy_path} exists and is not a symbolic link; move it away (Hippo makes it a link to the live version)"
        )),
        code => Err(format!(
            "inspecting the deploy path failed with exit code {code}"
        )),
    }
}

fn upload(ctx: &HostCtx, t: &Target, archive: &Path) -> Result<u64, String> {
    let partial = format!("{}/.partial-{}", ctx.versions_path, ctx.version);
    let mut file =
        std::fs::File::open(archive).map_err(|e| format!("cannot open the package: {e}"))?;
    let (code, sent) = t.send(&commands::unpack_into_partial(&partial), &mut file)?;
    if code != 0 {
        return Err(format!("unpacking failed with exit code {code}"));
    }
    t.must(
        "moving the new version into place",
        &commands::finish_version(&partial, &ctx.version_dir),
    )?;
    Ok(sent)
}
