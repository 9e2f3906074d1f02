//! Stage 3: prepare every host, in parallel with a bound. Per host: connect, check the deploy
//! path, upload and unpack into `.partial-<version>`, record the manifest, rename the folder
//! into place, run before-release. The live version is untouched throughout.
use crate::commands;
use crate::context::Run;
use crate::outcome::{HostRun, Outcome};
use crate::shipping::{Delta, KeptCopy, Shipment};
use crate::targets::{SshSetup, Target, fan_out};
use hippo_shared::db::inventory::Host;
use hippo_shared::events::{EventStatus, Stage};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// What prepare leaves on a host that is ready to switch.
struct Prepared {
    conn: Target,
    /// The version the deploy path pointed to before (None on a first release).
    previous: Option<String>,
    bytes_sent: u64,
    /// How the version came: `delta: N files, X bytes (codec)` or `full: …`.
    shipped: Option<String>,
}

/// What to put on a host: a new version from an archive, or one that should already be there.
#[derive(Clone)]
pub enum Payload {
    /// A new version: the full archive or a delta, per host ([`Shipment`]).
    Archive(Arc<Shipment>),
    /// Rollback: the version should be on the host; re-send its kept copy if it is not.
    Existing(Arc<KeptCopy>),
}

/// Prepares every host of the run; each comes back `Prepared` (with its open connection) or
/// `Failed`, in host order.
pub async fn run(run: &Run, setup: &SshSetup, payload: Payload, hook: bool) -> Vec<HostRun> {
    let ev = &run.events;
    ev.send(
        ev.event(Stage::Prepare, EventStatus::Started)
            .message(format!(
                "preparing {}",
                hippo_shared::events::hosts(run.hosts.len())
            )),
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
    host: String,
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
            host: host.name.clone(),
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
    let started = std::time::Instant::now();
    let result = (|| {
        let t = Target::connect(setup, host, ev, Stage::Prepare)?;
        tracing::debug!(host = %host.name, ms = started.elapsed().as_millis(), "prepare: connected");
        // One look at the host: its link, codec, the version if already there.
        let wanted = match payload {
            Payload::Existing(_) => ctx.version.as_str(),
            Payload::Archive(_) => "",
        };
        let probe = probe(&t, &ctx.deploy_path, &ctx.versions_path, wanted)?;
        tracing::debug!(host = %host.name, ms = started.elapsed().as_millis(), "prepare: probed");
        let previous = probe.link.as_deref().map(|l| {
            let prefix = format!("{}/", ctx.versions_path);
            l.strip_prefix(&prefix).unwrap_or(l).to_owned()
        });
        let mut bytes_sent = 0;
        let mut shipped = None;
        match payload {
            Payload::Archive(ship) => {
                let (sent, how) = ship_version(ctx, &t, ship, &probe, previous.as_deref())?;
                bytes_sent = sent;
                shipped = Some(how);
            }
            Payload::Existing(kept) => {
                if !probe.present {
                    let Some(copy) = kept.for_host(probe.zstd) else {
                        return Err(format!(
                            "version {} is no longer on the host and no copy of it is kept \
                             (in a cluster, HIPPO_ARTIFACTS_DIR must be a folder every worker \
                             shares)",
                            ctx.version
                        ));
                    };
                    let (path, codec) = copy?;
                    ev.info(
                        Stage::Prepare,
                        format!(
                            "{}: version {} is gone, sending it again",
                            host.name, ctx.version
                        ),
                    );
                    bytes_sent = receive(ctx, &t, &path, b"", codec)?;
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
            shipped,
        })
    })();
    match &result {
        Ok(p) => {
            let mut e = ev
                .event(Stage::Prepare, EventStatus::Succeeded)
                .host(&host.name)
                .bytes(p.bytes_sent);
            if let Some(how) = &p.shipped {
                e = e.message(format!("{}: {how}", host.name));
            }
            ev.send(e)
        }
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

/// The first command on a connection ([`commands::probe_host`]); refuses a deploy path that
/// is a real directory.
fn probe(
    t: &Target,
    deploy_path: &str,
    versions_path: &str,
    version: &str,
) -> Result<commands::ProbeReport, String> {
    let (code, out) = t.query(&commands::probe_host(deploy_path, versions_path, version))?;
    match code {
        0 => Ok(commands::ProbeReport::parse(&out)),
        commands::DEPLOY_PATH_IS_NOT_A_LINK => Err(format!(
            "deploy path {deploy_path} exists and is not a symbolic link; move it away (Hippo makes it a link to the live version)"
        )),
        code => Err(format!("inspecting the host failed with exit code {code}")),
    }
}

/// Sends a whole version (manifest and archive) in one command: unpacked, recorded and renamed
/// into place on the host ([`commands::receive_version`]).
fn receive(
    ctx: &HostCtx,
    t: &Target,
    archive: &Path,
    manifest: &[u8],
    codec: commands::Codec,
) -> Result<u64, String> {
    use std::io::Read;
    let file = std::fs::File::open(archive).map_err(|e| format!("cannot open the package: {e}"))?;
    let head = commands::receive_input(manifest);
    let mut input = head.as_slice().chain(manifest).chain(file);
    let (code, sent) = t.send(
        &commands::receive_version(&ctx.versions_path, &ctx.version, codec),
        &mut input,
    )?;
    match code {
        0 => Ok(sent),
        commands::RECEIVE_BAD_INPUT => Err("the host could not read the upload's framing".into()),
        code => Err(format!("unpacking failed with exit code {code}")),
    }
}

/// Sends the new version to a host: a delta from the version it serves when that version's
/// manifest is known and shares files with the new one, else (or when the host refuses the
/// delta: base gone or changed) the full archive. Returns the bytes sent and what was sent.
fn ship_version(
    ctx: &HostCtx,
    t: &Target,
    ship: &Shipment,
    probe: &commands::ProbeReport,
    base: Option<&str>,
) -> Result<(u64, String), String> {
    let codec = ship.codec(probe.zstd);
    let base = base.filter(|b| !b.is_empty() && !b.contains('/'));
    if let (Some(base), Some(sha)) = (base, probe.base_manifest.as_deref()) {
        let meta = format!("{}/.{base}.hippo.json", ctx.versions_path);
        if let Some(d) = ship.delta(sha, || fetch(t, &meta)) {
            let archive = ship.delta_archive(&d, codec)?;
            tracing::debug!(host = %ctx.host, "prepare: delta ready");
            match send_delta(ctx, t, &d, &archive, codec, base, ship.mode)? {
                Ok(sent) => {
                    return Ok((
                        sent,
                        format!(
                            "delta: {} files, {sent} bytes ({}, {} unchanged files {})",
                            d.plan.changed_files,
                            codec.as_str(),
                            d.plan.keep.len(),
                            match ship.mode {
                                crate::delta::DeltaMode::Copy => "copied",
                                _ => "hard-linked",
                            }
                        ),
                    ));
                }
                Err(why) => ctx.events.info(
                    Stage::Prepare,
                    format!("{}: {why}; sending the full archive", ctx.host),
                ),
            }
        }
    }
    let (archive, manifest) = ship.full(codec)?;
    let sent = receive(ctx, t, &archive, &manifest, codec)?;
    let (files, _) = ship.totals();
    Ok((
        sent,
        format!("full: {files} files, {sent} bytes ({})", codec.as_str()),
    ))
}

/// Reads a (small) file from the host: the base manifest, one compact JSON line.
fn fetch(t: &Target, path: &str) -> Result<Vec<u8>, String> {
    let (code, lines) = t.query(&commands::read_file(path))?;
    if code != 0 {
        return Err(format!("reading {path} failed with exit code {code}"));
    }
    // Lines longer than the transport's line limit arrive in pieces: join them as they came.
    Ok(lines.concat().into_bytes())
}

/// `Ok(Ok(bytes))`: the host made the new version from its base; `Ok(Err(why))`: it refused
/// (base gone or changed) and the full archive should follow.
fn send_delta(
    ctx: &HostCtx,
    t: &Target,
    d: &Delta,
    archive: &Path,
    codec: commands::Codec,
    base: &str,
    mode: crate::delta::DeltaMode,
) -> Result<Result<u64, String>, String> {
    use std::io::Read;
    let file = std::fs::File::open(archive).map_err(|e| format!("cannot open the delta: {e}"))?;
    let head = commands::delta_input(&d.manifest_gz, &d.keep_gz, &d.drop_gz);
    let mut input = head
        .as_slice()
        .chain(d.manifest_gz.as_slice())
        .chain(d.keep_gz.as_slice())
        .chain(d.drop_gz.as_slice())
        .chain(file);
    let link_mode = match mode {
        crate::delta::DeltaMode::Copy => "copy",
        _ => "hardlink",
    };
    let cmd = commands::receive_delta(
        &ctx.versions_path,
        &ctx.version,
        codec,
        base,
        link_mode,
        &d.plan.listing_sha256,
    );
    let (code, sent) = t.send(&cmd, &mut input)?;
    Ok(match code {
        0 => Ok(sent),
        commands::DELTA_NO_BASE => Err(format!("version {base} is gone from the host")),
        commands::DELTA_MISMATCH => Err(format!(
            "version {base} on the host differs from its manifest"
        )),
        commands::RECEIVE_BAD_INPUT => {
            return Err("the host could not read the upload's framing".into());
        }
        code => return Err(format!("unpacking the delta failed with exit code {code}")),
    })
}
