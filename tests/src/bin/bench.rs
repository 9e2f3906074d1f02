//! Benchmark: how long Hippo takes to release a 20 MB, 2,000-file tree to 20 real OpenSSH hosts
//! (and to roll it back), next to plain OpenSSH doing the same work (`scp` + `tar -x` + `ln`).
//!
//! Run it with `bash bench/release.sh` (release build); see `bench/README.md`.
use anyhow::{Context, bail, ensure};
use hippo_e2e::git_fixture::git;
use hippo_e2e::hippo::Hippo;
use hippo_e2e::sshd::{TestHost, generate_client_key};
use serde_json::{Value, json};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const DEPLOY: &str = "/srv/www/app";
const VERSIONS: &str = "/srv/hippo/versions";
/// Files in the released tree (generated files plus `VERSION.txt`).
const FILES: usize = 2_000;
/// Bytes in the released tree, about.
const BYTES: u64 = 20_000_000;
/// Targets: Hippo time / baseline time (issue 11).
const RELEASE_TARGET: f64 = 1.15;
const STREAM_TARGET: f64 = 1.0;
const ONE_FILE_VS_RSYNC_TARGET: f64 = 0.5;
const ONE_FILE_VS_FULL_TARGET: f64 = 0.25;
const ROLLBACK_TARGET: f64 = 1.50;
/// A one-file release's bytes / a full release's bytes.
const ONE_FILE_BYTES_TARGET: f64 = 0.02;
/// The stages of a release, in order.
const STAGES: [&str; 5] = ["checkout", "package", "prepare", "switch", "cleanup"];

const USAGE: &str =
    "usage: bench [--runs N] [--hosts N] [--wan] [--one-file] | bench --scale 20,50,100,200 [--cpu-groups]

Releases a 20 MB / 2,000-file tree from Git to N hosts (default 20) with Hippo and with plain
OpenSSH (one ssh per host streaming the tarball into tar -x; and scp + ssh), releases a
one-file change with Hippo and with rsync --link-dest, then rolls back, each measurement --runs
times (default 3); prints the medians and Hippo's per-stage breakdown.

--wan: every host (for Hippo and for the baselines) sits behind a delay line adding 25 ms
each way (50 ms round trip).

--one-file: only what the one-file redeploy is compared with: Hippo's full release, Hippo's
one-file release, OpenSSH streaming (the base of the rsync floor) and rsync --link-dest (no scp,
no rollbacks, no gzip-everywhere release): a few minutes instead of the whole table.

--scale: releases a 2 MB / 200-file tree to each fleet size with Hippo (default settings)
and with OpenSSH streaming, timing both, with Hippo's peak RSS and the API's read latency
during the release. HIPPO_BIN names the hippo-api binary.

--cpu-groups (with --scale): Hippo and the hosts each in a CPU cgroup of their own with the
default weight, as a service manager and separate machines would have them. Without it, on this
one machine every SSH session is an autogroup of its own (sshd calls setsid) with Hippo's
weight: with 16 hosts in flight Hippo gets about a 30th of the CPU. Needs root and the cgroup v1
cpu controller at /sys/fs/cgroup/cpu.";

struct Args {
    runs: usize,
    hosts: u8,
    /// `--scale 20,50,100,200`: the fleet table instead of the release comparison.
    scale: Option<Vec<u8>>,
    /// `--wan`: every host behind a delay line (50 ms round trip).
    wan: bool,
    /// `--one-file`: only the one-file redeploy and what it is compared with.
    one_file: bool,
    /// `--cpu-groups`: Hippo and the hosts in CPU cgroups of their own (with `--scale`).
    cpu_groups: bool,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        runs: 3,
        hosts: 20,
        scale: None,
        wan: false,
        one_file: false,
        cpu_groups: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--runs" => {
                args.runs = it
                    .next()
                    .context("--runs needs a value")?
                    .parse()
                    .context("--runs")?;
                ensure!(args.runs >= 1, "--runs must be at least 1");
            }
            "--hosts" => {
                args.hosts = it
                    .next()
                    .context("--hosts needs a value")?
                    .parse()
                    .context("--hosts")?;
                ensure!((1..=200).contains(&args.hosts), "--hosts must be 1 to 200");
            }
            "--scale" => {
                let list = it
                    .next()
                    .context("--scale needs a list such as 20,50,100,200")?;
                let sizes = list
                    .split(',')
                    .map(|n| n.trim().parse::<u8>().context("--scale"))
                    .collect::<anyhow::Result<Vec<u8>>>()?;
                ensure!(
                    sizes.iter().all(|n| (1..=200).contains(n)),
                    "--scale sizes must be 1 to 200"
                );
                args.scale = Some(sizes);
            }
            "--wan" => args.wan = true,
            "--one-file" => args.one_file = true,
            "--cpu-groups" => args.cpu_groups = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?}\n{USAGE}"),
        }
    }
    Ok(args)
}

fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    if let Some(sizes) = &args.scale {
        return scale::run(sizes, args.cpu_groups);
    }
    let bench = Bench::new(&args)?;
    bench.warm_up()?;
    let mut samples = Samples::default();
    for run in 1..=args.runs {
        bench.one_run(run, args.one_file, &mut samples)?;
    }
    if args.one_file {
        return bench.report_one_file(&samples);
    }
    let gzip = bench.gzip_release()?;
    bench.report(&samples)?;
    let zstd = median_timed(&samples.hippo_release)?;
    println!();
    println!(
        "Full release per codec ({} hosts): default (zstd where the host has it) {:.2} s (median); gzip everywhere (a second hippo-api with HIPPO_ZSTD=0, one release) {:.2} s; ratio zstd/gzip {:.2}",
        bench.hosts.len(),
        zstd.secs,
        gzip.secs,
        zstd.secs / gzip.secs
    );
    Ok(())
}

/// Prints a progress line on stderr (the results go to stdout).
macro_rules! step {
    ($($t:tt)*) => {{
        eprintln!("[bench] {}", format!($($t)*));
        let _ = std::io::stderr().flush();
    }};
}

// ---------------------------------------------------------------------------------------------
// The tree: deterministic pseudo-random content.

/// xorshift64: tiny, seeded, deterministic.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// Incompressible bytes.
    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }

    /// Text-like bytes: words from a small vocabulary in lines (compresses like source code).
    fn text(&mut self, len: usize) -> Vec<u8> {
        const WORDS: [&str; 32] = [
            "fn", "let", "mut", "return", "self", "value", "config", "release", "host", "version",
            "error", "result", "match", "Some", "None", "Ok", "Err", "impl", "struct", "pub",
            "use", "crate", "deploy", "path", "events", "stage", "string", "vector", "index",
            "count", "while", "for",
        ];
        let mut out = Vec::with_capacity(len + 80);
        while out.len() < len {
            let indent = self.below(4) as usize * 4;
            out.extend(std::iter::repeat_n(b' ', indent));
            let words = 3 + self.below(10);
            for w in 0..words {
                if w > 0 {
                    out.push(b' ');
                }
                out.extend_from_slice(WORDS[self.below(WORDS.len() as u64) as usize].as_bytes());
                if self.below(8) == 0 {
                    out.extend_from_slice(format!("_{}", self.below(1000)).as_bytes());
                }
            }
            out.extend_from_slice(b";\n");
        }
        out.truncate(len);
        out
    }
}

/// Writes a tree of `files` files and about `bytes` bytes (all files but `VERSION.txt`); returns
/// the bytes written.
fn write_tree(dir: &Path, files: usize, bytes: u64) -> anyhow::Result<u64> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let generated = files - 1;
    let mean = bytes / files as u64;
    let mut total = 0u64;
    for i in 0..generated {
        // Sizes from mean/10 to 1.9 × mean: the average is `mean`.
        let size = (mean / 10 + rng.below(mean * 18 / 10 + 1)) as usize;
        let (top, mid, leaf) = (i % 4, (i / 4) % 5, (i / 20) % 10);
        let folder = match i % 3 {
            0 => format!("mod{top}"),
            1 => format!("mod{top}/sub{mid}"),
            _ => format!("mod{top}/sub{mid}/leaf{leaf}"),
        };
        // Every other file is random: about half the bytes are incompressible.
        let (name, content) = if i % 2 == 0 {
            let mut buf = vec![0; size];
            rng.fill(&mut buf);
            (format!("blob{i:04}.bin"), buf)
        } else {
            (format!("text{i:04}.txt"), rng.text(size))
        };
        let folder = dir.join(folder);
        std::fs::create_dir_all(&folder)?;
        std::fs::write(folder.join(name), &content)?;
        total += content.len() as u64;
    }
    Ok(total)
}

/// Regular files under `dir` (recursively; links are not followed).
fn count_files(dir: &Path) -> anyhow::Result<usize> {
    let mut n = 0;
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let entry = entry?;
        let ft = entry.file_type()?;
        if ft.is_dir() {
            n += count_files(&entry.path())?;
        } else if ft.is_file() {
            n += 1;
        }
    }
    Ok(n)
}

/// The repository: a working clone and the bare repository Hippo releases from.
struct Repo {
    _dir: tempfile::TempDir,
    work: PathBuf,
    bare: PathBuf,
    tree_bytes: u64,
}

impl Repo {
    fn new() -> anyhow::Result<Repo> {
        Self::with(FILES, BYTES)
    }

    fn with(files: usize, bytes: u64) -> anyhow::Result<Repo> {
        let dir = tempfile::Builder::new()
            .prefix("hippo-bench-git-")
            .tempdir()?;
        let work = dir.path().join("work");
        std::fs::create_dir(&work)?;
        git(&work, &["init", "-q"])?;
        let tree_bytes = write_tree(&work, files, bytes)?;
        std::fs::write(work.join("VERSION.txt"), "initial\n")?;
        git(&work, &["add", "."])?;
        git(&work, &["commit", "-qm", "the benchmark tree"])?;
        git(dir.path(), &["clone", "-q", "--bare", "work", "app.git"])?;
        git(&work, &["remote", "add", "origin", "../app.git"])?;
        Ok(Repo {
            bare: dir.path().join("app.git"),
            work,
            _dir: dir,
            tree_bytes,
        })
    }

    /// Commits `content` as `VERSION.txt` on main and pushes; returns the commit id.
    fn commit_version(&self, content: &str) -> anyhow::Result<String> {
        std::fs::write(self.work.join("VERSION.txt"), content)?;
        git(&self.work, &["commit", "-qam", content.trim()])?;
        git(&self.work, &["push", "-q", "origin", "main"])?;
        git(&self.work, &["rev-parse", "HEAD"])
    }
}

// ---------------------------------------------------------------------------------------------
// Hippo side.

/// A finished (succeeded) Hippo release, timed from `POST /run` to the end of the SSE stream.
struct Timed {
    secs: f64,
    /// Wall clock (ms since the epoch) when `POST /run` was sent and when the stream ended.
    wall_start: i64,
    wall_end: i64,
    release: Value,
    events: Vec<Value>,
    /// CPU time the whole machine spent meanwhile (Hippo, the hosts' sshd and commands, the
    /// kernel): less swayed by scheduling than the wall time on a busy machine.
    cpu_secs: f64,
}

/// CPU seconds the machine has spent so far (`/proc/stat`: all but idle and iowait).
fn machine_cpu_secs() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/stat") else {
        return 0.0;
    };
    let Some(line) = stat.lines().next() else {
        return 0.0;
    };
    let ticks: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal
    let busy: u64 = ticks
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4)
        .take(8)
        .map(|(_, v)| v)
        .sum();
    busy as f64 / 100.0
}

fn wall_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn post(h: &Hippo, path: &str, body: &Value, want: u16) -> anyhow::Result<Value> {
    let (status, out) = h.post(path, body);
    if status != want {
        bail!("POST {path} {body} -> {status} (wanted {want}): {out}");
    }
    Ok(out)
}

fn id(v: &Value) -> anyhow::Result<i64> {
    v["id"].as_i64().with_context(|| format!("no id in {v}"))
}

/// The last `n` lines of `text`.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Creates a release with `body` (must be approved at once), runs it and follows its events to
/// the end; fails unless it succeeded.
fn hippo_release(h: &Hippo, body: &Value) -> anyhow::Result<Timed> {
    let rid = create_release(h, body)?;
    run_release(h, rid)
}

/// Creates a release with `body`, which must be approved at once; its id.
fn create_release(h: &Hippo, body: &Value) -> anyhow::Result<i64> {
    let r = post(h, "/api/releases", body, 201)?;
    ensure!(r["status"] == "approved", "release not approved: {r}");
    id(&r)
}

/// Runs release `rid` and follows its events to the end; fails unless it succeeded.
fn run_release(h: &Hippo, rid: i64) -> anyhow::Result<Timed> {
    let wall_start = wall_ms();
    let cpu0 = machine_cpu_secs();
    let t0 = Instant::now();
    let queued = post(h, &format!("/api/releases/{rid}/run"), &Value::Null, 200)?;
    ensure!(hippo_e2e::hippo::queued_or_past(&queued), "run: {queued}");
    let events = h.events(rid, None, Duration::from_secs(900))?;
    let secs = t0.elapsed().as_secs_f64();
    let cpu_secs = machine_cpu_secs() - cpu0;
    let wall_end = wall_ms();
    let (s, release) = h.get(&format!("/api/releases/{rid}"));
    ensure!(s == 200, "GET release {rid}: {s} {release}");
    if release["status"] != "succeeded" {
        let evs: Vec<String> = events.iter().map(Value::to_string).collect();
        bail!(
            "release {rid} ended {}: {}\n--- last events ---\n{}\n--- hippo log (tail) ---\n{}",
            release["status"],
            release["error"],
            tail(&evs.join("\n"), 15),
            tail(&h.log(), 30)
        );
    }
    Ok(Timed {
        secs,
        wall_start,
        wall_end,
        release,
        events,
        cpu_secs,
    })
}

/// The host-side path of `path` (which is under `/srv`).
fn host_path(host: &TestHost, path: &str) -> anyhow::Result<PathBuf> {
    Ok(host.root.join(
        path.strip_prefix("/srv/")
            .with_context(|| format!("{path} is not under /srv"))?,
    ))
}

/// Where `link` (a host path under /srv) points, as a host-side path.
fn live_dir(host: &TestHost, link: &str) -> anyhow::Result<PathBuf> {
    let target = std::fs::read_link(host_path(host, link)?)
        .with_context(|| format!("{}: {link} is not a link", host.name))?;
    host_path(host, target.to_str().context("non-UTF-8 link")?)
}

/// The live tree on `host` behind `link` holds `files` files and the wanted `VERSION.txt`.
fn check_tree(host: &TestHost, link: &str, files: usize, version: &str) -> anyhow::Result<()> {
    let dir = live_dir(host, link)?;
    let n = count_files(&dir)?;
    ensure!(
        n == files,
        "{}: {} holds {n} files, wanted {files}",
        host.name,
        dir.display()
    );
    let got = std::fs::read_to_string(dir.join("VERSION.txt"))?;
    ensure!(
        got == version,
        "{}: VERSION.txt is {got:?}, wanted {version:?}",
        host.name
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// OpenSSH side.

/// Where a host is reached: its own address, or a delay line in front of it (`--wan`).
struct Endpoint {
    name: String,
    addr: String,
    port: u16,
    _line: Option<wan::DelayLine>,
}

impl Endpoint {
    /// `host` as it is (`one_way` None) or behind a delay line adding `one_way` each way.
    fn of(host: &TestHost, one_way: Option<Duration>) -> anyhow::Result<Endpoint> {
        Ok(match one_way {
            None => Endpoint {
                name: host.name.clone(),
                addr: host.addr.clone(),
                port: host.port,
                _line: None,
            },
            Some(d) => {
                let line =
                    wan::DelayLine::start(format!("{}:{}", host.addr, host.port).parse()?, d)?;
                Endpoint {
                    name: host.name.clone(),
                    addr: "127.0.0.1".to_owned(),
                    port: line.port,
                    _line: Some(line),
                }
            }
        })
    }
}

struct Ssh {
    key: PathBuf,
}

impl Ssh {
    fn opts(&self) -> Vec<String> {
        [
            "-q",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "BatchMode=yes",
            "-o",
            "LogLevel=ERROR",
            "-i",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .chain([self.key.to_string_lossy().into_owned()])
        .collect()
    }

    fn scp(&self, host: &Endpoint, file: &Path, remote: &str) -> Command {
        let mut c = Command::new("scp");
        // `-O`: the classic scp protocol; the test hosts run no SFTP subsystem.
        c.arg("-O")
            .args(self.opts())
            .arg("-P")
            .arg(host.port.to_string())
            .arg(file)
            .arg(format!("root@{}:{remote}", host.addr));
        c
    }

    fn ssh(&self, host: &Endpoint, script: &str) -> Command {
        let mut c = Command::new("ssh");
        c.args(self.opts())
            .arg("-p")
            .arg(host.port.to_string())
            .arg(format!("root@{}", host.addr))
            .arg(script)
            .stdin(Stdio::null());
        c
    }

    /// `ssh host script < file`: one login, the file streamed into the script's stdin.
    fn ssh_with_input(
        &self,
        host: &Endpoint,
        script: &str,
        file: &Path,
    ) -> anyhow::Result<Command> {
        let mut c = self.ssh(host, script);
        c.stdin(std::fs::File::open(file).with_context(|| format!("{}", file.display()))?);
        Ok(c)
    }

    /// `rsync -a --delete --link-dest=<base> <src>/ root@host:<dest>/` over this ssh.
    fn rsync(&self, host: &Endpoint, src: &Path, base: &str, dest: &str) -> Command {
        let mut c = Command::new("rsync");
        let ssh = format!("ssh {} -p {}", self.opts().join(" "), host.port);
        c.args(["-a", "--delete", "--exclude=.git"])
            .arg(format!("--link-dest={base}"))
            .arg("-e")
            .arg(ssh)
            .arg(format!("{}/", src.display()))
            .arg(format!("root@{}:{dest}/", host.addr))
            .stdin(Stdio::null());
        c
    }
}

/// CPU time process `pid` has used so far, in clock ticks (user + system).
fn process_cpu_ticks(pid: u32) -> anyhow::Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .context("odd /proc/PID/stat")?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime, stime: fields 14 and 15 of the line, 12 and 13 after the name.
    Ok(f.get(11).context("utime")?.parse::<u64>()? + f.get(12).context("stime")?.parse::<u64>()?)
}

/// Waits (not timed, at most 10 s) until process `pid` has used no CPU for 150 ms: Hippo
/// finishes some work after a release's final event (the copy kept for rollbacks, removing
/// the work folder), which must not slow the next measurement.
fn quiet(pid: u32) -> anyhow::Result<()> {
    let cpu = || process_cpu_ticks(pid);
    let t0 = Instant::now();
    let (mut last, mut still) = (cpu()?, 0);
    while still < 3 && t0.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(50));
        let now = cpu()?;
        still = if now == last { still + 1 } else { 0 };
        last = now;
    }
    Ok(())
}

/// Waits (not timed, at most 15 s) until the whole machine has been nearly idle (under 10 % of
/// one core) for 200 ms: after a release's end the hosts finish work in the background at the
/// lowest priority (deleting old versions, making the next delta's spare), which must not land
/// in the next measurement (nor in a baseline's).
fn machine_quiet() {
    let t0 = Instant::now();
    let mut last = machine_cpu_secs();
    while t0.elapsed() < Duration::from_secs(15) {
        std::thread::sleep(Duration::from_millis(200));
        let now = machine_cpu_secs();
        if now - last < 0.02 {
            return;
        }
        last = now;
    }
}

/// Flushes dirty pages (not timed), so that one measurement's writeback does not slow the next.
fn settle() -> anyhow::Result<()> {
    let st = Command::new("sync").status().context("running sync")?;
    ensure!(st.success(), "sync failed: {st}");
    Ok(())
}

/// Runs `c` to its end (stdin: what the caller set, else nothing); fails unless it succeeded.
fn run_cmd(mut c: Command, what: &str) -> anyhow::Result<()> {
    let out = c
        .output()
        .with_context(|| format!("{what}: cannot start"))?;
    if !out.status.success() {
        bail!(
            "{what} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Runs `cmds(host)` for every host, hosts in parallel, each host's commands in order; returns
/// the wall time.
fn on_all_hosts<F>(hosts: &[Endpoint], cmds: F) -> anyhow::Result<f64>
where
    F: Fn(&Endpoint) -> Vec<Command> + Sync,
{
    let t0 = Instant::now();
    let results: Vec<anyhow::Result<()>> = std::thread::scope(|s| {
        let handles: Vec<_> = hosts
            .iter()
            .map(|h| {
                let cmds = &cmds;
                s.spawn(move || {
                    for c in cmds(h) {
                        let what = format!("{} on {}", c.get_program().to_string_lossy(), h.name);
                        run_cmd(c, &what)?;
                    }
                    Ok(())
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|j| {
                j.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("host thread panicked")))
            })
            .collect()
    });
    let secs = t0.elapsed().as_secs_f64();
    for r in results {
        r?;
    }
    Ok(secs)
}

// ---------------------------------------------------------------------------------------------
// The benchmark.

#[derive(Default)]
struct Samples {
    hippo_release: Vec<Timed>,
    /// The release right after, of a commit that changes one file.
    hippo_one_file: Vec<Timed>,
    hippo_rollback: Vec<Timed>,
    /// `scp` the tarball, then `ssh` to unpack it and switch (two logins).
    ssh_release: Vec<f64>,
    /// One `ssh` per host, the tarball streamed into `tar -x`, then switch (one login).
    ssh_stream: Vec<f64>,
    /// `rsync --link-dest` of the one-file change against the previous tree, then `ssh` to switch.
    rsync_one_file: Vec<f64>,
    ssh_rollback: Vec<f64>,
}

/// Bytes Hippo sent to hosts in a release (its hosts' prepare `succeeded` events).
fn bytes_sent(t: &Timed) -> u64 {
    t.events
        .iter()
        .filter(|e| e["stage"] == "prepare" && e["status"] == "succeeded" && e["host"].is_string())
        .filter_map(|e| e["bytes_sent"].as_u64())
        .sum()
}

struct Bench {
    // Field order is drop order: delay lines and hosts go first, then Hippo, then the files.
    ends: Vec<Endpoint>,
    hosts: Vec<TestHost>,
    /// "loopback" or "WAN (50 ms round trip)".
    network: String,
    hippo: Hippo,
    repo: Repo,
    ssh: Ssh,
    tarball: PathBuf,
    config_id: i64,
    archive_bytes: u64,
    _scratch: tempfile::TempDir,
}

/// The public key a Hippo logs in to hosts with (`GET /api/ssh-key`).
fn platform_key(hippo: &Hippo) -> anyhow::Result<String> {
    let (s, key) = hippo.get("/api/ssh-key");
    ensure!(s == 200, "GET /api/ssh-key: {s} {key}");
    Ok(key["public_key"]
        .as_str()
        .context("no public_key")?
        .trim()
        .to_owned())
}

impl Bench {
    fn new(args: &Args) -> anyhow::Result<Bench> {
        step!("starting hippo-api");
        let hippo = Hippo::start(&[("HIPPO_WORKER_CONCURRENCY", "4")])?;
        let platform = platform_key(&hippo)?;
        let scratch = tempfile::Builder::new().prefix("hippo-bench-").tempdir()?;
        let (_, client) = generate_client_key(scratch.path())?;
        let authorized = format!("{platform}\n{client}");
        step!("starting {} OpenSSH hosts", args.hosts);
        let hosts = (1..=args.hosts)
            .map(|i| TestHost::start(i, &authorized))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let one_way = args.wan.then_some(wan::ONE_WAY);
        let ends = hosts
            .iter()
            .map(|h| Endpoint::of(h, one_way))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let network = match one_way {
            Some(d) => format!(
                "WAN profile: {} ms round trip through a delay line in front of each host",
                (d * 2).as_millis()
            ),
            None => "loopback".to_owned(),
        };

        step!(
            "building the repository ({FILES} files, ~{} MB)",
            BYTES / 1_000_000
        );
        let repo = Repo::new()?;

        let env = post(
            &hippo,
            "/api/environments",
            &json!({"name": "Production", "tag": "prod"}),
            201,
        )?;
        let app = post(
            &hippo,
            "/api/apps",
            &json!({"name": "Bench", "tag": "bench", "description": "benchmark"}),
            201,
        )?;
        let env_id = id(&env)?;
        let mut host_ids = Vec::new();
        for (i, h) in ends.iter().enumerate() {
            let body = json!({"environment_id": env_id, "name": format!("web-{}", i + 1),
                              "addr": h.addr, "port": h.port, "username": "root", "category": "web"});
            host_ids.push(id(&post(&hippo, "/api/hosts", &body, 201)?)?);
        }
        let config_body = json!({
            "app_id": id(&app)?,
            "environment_id": env_id,
            "repo_url": repo.bare.to_str().context("non-UTF-8 temp path")?,
            "host_ids": host_ids,
            "deploy_path": DEPLOY,
            "versions_path": VERSIONS,
            "keep_versions": 5,
            "filter_mode": "exclude",
            "filter": "",
        });
        let config = post(&hippo, "/api/release-configs", &config_body, 201)?;

        // The baseline's tarball: made once, not timed.
        let tarball = scratch.path().join("bench.tgz");
        let st = Command::new("tar")
            .arg("-C")
            .arg(&repo.work)
            .args(["--exclude=.git", "-I", "gzip -1", "-cf"])
            .arg(&tarball)
            .arg(".")
            .status()
            .context("running tar")?;
        ensure!(st.success(), "tar failed: {st}");
        let archive_bytes = std::fs::metadata(&tarball)?.len();

        Ok(Bench {
            ends,
            hosts,
            network,
            hippo,
            config_id: id(&config)?,
            ssh: Ssh {
                key: scratch.path().join("id_ed25519"),
            },
            tarball,
            archive_bytes,
            repo,
            _scratch: scratch,
        })
    }

    /// One full release (delta off) from a second Hippo started with `HIPPO_ZSTD=0` (gzip to
    /// every host) to the same hosts, into its own deploy path: the codec comparison. Its
    /// platform key is added to the hosts' authorized keys.
    fn gzip_release(&self) -> anyhow::Result<Timed> {
        step!("starting a second hippo-api with HIPPO_ZSTD=0 (gzip to every host)");
        let h = Hippo::start(&[("HIPPO_WORKER_CONCURRENCY", "4"), ("HIPPO_ZSTD", "0")])?;
        let platform = platform_key(&h)?;
        for host in &self.hosts {
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(host.dir().join("authorized_keys"))?;
            writeln!(f, "{platform}")?;
        }
        let env_id = id(&post(
            &h,
            "/api/environments",
            &json!({"name": "Gzip", "tag": "gzip"}),
            201,
        )?)?;
        let app = id(&post(
            &h,
            "/api/apps",
            &json!({"name": "Gzip", "tag": "gzip", "description": "codec"}),
            201,
        )?)?;
        let mut host_ids = Vec::new();
        for (i, e) in self.ends.iter().enumerate() {
            let body = json!({"environment_id": env_id, "name": format!("gz-{}", i + 1),
                              "addr": e.addr, "port": e.port, "username": "root", "category": "web"});
            host_ids.push(id(&post(&h, "/api/hosts", &body, 201)?)?);
        }
        let config = id(&post(
            &h,
            "/api/release-configs",
            &json!({
                "app_id": app,
                "environment_id": env_id,
                "repo_url": self.repo.bare.to_str().context("non-UTF-8 temp path")?,
                "host_ids": host_ids,
                "deploy_path": "/srv/www/gzip",
                "versions_path": "/srv/hippo/gzip",
                "keep_versions": 5,
                "filter_mode": "exclude",
                "filter": "",
                "delta": "off",
            }),
            201,
        )?)?;
        // Warmed up like the default's runs (`Bench::warm_up`), then timed.
        let warm = self.repo.commit_version("gzip warm-up\n")?;
        hippo_release(
            &h,
            &json!({"config_id": config, "name": "gzip warm-up", "branch": "main", "commit": warm}),
        )?;
        let content = "gzip everywhere\n";
        let commit = self.repo.commit_version(content)?;
        quiet(h.pid())?;
        settle()?;
        let t = hippo_release(
            &h,
            &json!({"config_id": config, "name": "gzip", "branch": "main", "commit": commit}),
        )?;
        check_tree(self.first_host()?, "/srv/www/gzip", FILES, content)?;
        step!(
            "gzip everywhere: full release to {} hosts: {:.2} s",
            self.hosts.len(),
            t.secs
        );
        Ok(t)
    }

    /// One release before the timed runs (not timed): host keys pinned, the config's kept
    /// tree made, the hosts' SSH connections open, as on any Hippo that has released before
    /// (`HIPPO_SSH_IDLE_SECS` keeps a release's connections for the next one; the baselines
    /// log in afresh every time, as a script would).
    fn warm_up(&self) -> anyhow::Result<()> {
        step!("warm-up release (not timed)");
        let commit = self.repo.commit_version("warm-up\n")?;
        hippo_release(
            &self.hippo,
            &json!({"config_id": self.config_id, "name": "warm-up", "branch": "main",
                    "commit": commit}),
        )?;
        Ok(())
    }

    /// Before a timed measurement: Hippo and the hosts idle, dirty pages flushed. Returns the
    /// machine's CPU seconds spent meanwhile (the work a release leaves for after its end).
    fn settle(&self) -> anyhow::Result<f64> {
        let cpu0 = machine_cpu_secs();
        quiet(self.hippo.pid())?;
        // The hosts start their background work a second after cleanup answers.
        std::thread::sleep(Duration::from_millis(1500));
        machine_quiet();
        settle()?;
        Ok(machine_cpu_secs() - cpu0)
    }

    /// Removes the manifest beside every version on every host (not timed): no host then has
    /// a usable base, so the next release sends the full archive everywhere — what a first
    /// release with the default settings does — and, like any release with `delta:
    /// hardlink`, leaves each host making a spare for the one after.
    fn forget_bases(&self) -> anyhow::Result<()> {
        for host in &self.hosts {
            let dir = host_path(host, VERSIONS)?;
            for e in std::fs::read_dir(&dir).with_context(|| format!("{}", dir.display()))? {
                let name = e?.file_name();
                let name = name.to_string_lossy();
                if name.starts_with('.') && name.ends_with(".hippo.json") {
                    std::fs::remove_file(dir.join(&*name))?;
                }
            }
        }
        Ok(())
    }

    /// Per host, the inode of the spare of `version` (`<versions>/.next-<version>`) if there is
    /// one: what the next delta starts from (docs/release-engine.md, "Spares").
    fn spares(&self, version: &str) -> anyhow::Result<Vec<Option<u64>>> {
        use std::os::unix::fs::MetadataExt;
        self.hosts
            .iter()
            .map(|h| {
                let p = host_path(h, &format!("{VERSIONS}/.next-{version}"))?;
                Ok(std::fs::metadata(p).ok().map(|m| m.ino()))
            })
            .collect()
    }

    /// How many hosts' live version is the spare folder `spares` saw (same inode).
    fn spares_used(&self, spares: &[Option<u64>]) -> anyhow::Result<usize> {
        use std::os::unix::fs::MetadataExt;
        let mut used = 0;
        for (h, spare) in self.hosts.iter().zip(spares) {
            let live = std::fs::metadata(live_dir(h, DEPLOY)?)?.ino();
            used += usize::from(*spare == Some(live));
        }
        Ok(used)
    }

    fn first_host(&self) -> anyhow::Result<&TestHost> {
        self.hosts.first().context("no hosts")
    }

    /// One run of every measurement; with `one_file`, only the full and one-file releases,
    /// OpenSSH streaming and the rsync floor (whose base is then the streamed tree).
    fn one_run(&self, run: usize, one_file: bool, samples: &mut Samples) -> anyhow::Result<()> {
        let n = self.hosts.len();
        let h = &self.hippo;

        // Hippo: release of a new commit (timed), the whole tree to every host: the default
        // settings, the hosts' bases forgotten first (with a base every release after the
        // first would be a delta).
        self.forget_bases()?;
        let content_a = format!("run {run} release\n");
        let commit_a = self.repo.commit_version(&content_a)?;
        self.settle()?;
        let release = hippo_release(
            h,
            &json!({"config_id": self.config_id, "name": format!("bench {run}"),
                    "branch": "main", "commit": commit_a}),
        )?;
        ensure!(
            release.release["commit_id"] == commit_a.as_str(),
            "released {} instead of {commit_a}",
            release.release["commit_id"]
        );
        let version_a = release.release["version"]
            .as_str()
            .context("release has no version")?
            .to_owned();
        check_tree(self.first_host()?, DEPLOY, FILES, &content_a)?;
        step!(
            "run {run}: Hippo release to {n} hosts: {:.2} s",
            release.secs
        );

        // Hippo: a second release that changes one file (timed), then a rollback to the first
        // (timed).
        let content_b = format!("run {run} second release\n");
        let commit_b = self.repo.commit_version(&content_b)?;
        self.settle()?;
        let spares = self.spares(&version_a)?;
        let one_file_release = hippo_release(
            h,
            &json!({"config_id": self.config_id, "name": format!("bench {run} b"),
                    "branch": "main", "commit": commit_b}),
        )?;
        let used = self.spares_used(&spares)?;
        step!(
            "run {run}: spares of the full release's version ready before the one-file release: {} of {n}, grown into its version: {used}",
            spares.iter().flatten().count()
        );
        check_tree(self.first_host()?, DEPLOY, FILES, &content_b)?;
        step!(
            "run {run}: Hippo one-file release to {n} hosts: {:.2} s, {:.2} MB sent",
            one_file_release.secs,
            bytes_sent(&one_file_release) as f64 / 1e6
        );
        // Not timed, but not free: after the final event Hippo keeps its rollback copy and
        // each host deletes old versions and makes the next delta's spare.
        let after_end = self.settle()?;
        step!(
            "run {run}: after the one-file release's end (not timed): {after_end:.2} s of machine CPU"
        );
        if !one_file {
            let rollback = hippo_release(
                h,
                &json!({"config_id": self.config_id, "name": "rb", "kind": "rollback",
                        "version": version_a}),
            )?;
            check_tree(self.first_host()?, DEPLOY, FILES, &content_a)?;
            step!(
                "run {run}: Hippo rollback on {n} hosts: {:.2} s",
                rollback.secs
            );
            samples.hippo_rollback.push(rollback);
        }

        // OpenSSH: the same work. A fresh folder per run, as Hippo makes a new version folder.
        let dir = format!("/srv/base/v{run}");
        let script = format!(
            "mkdir -p {dir} && tar -xzf /srv/bench.tgz -C {dir} && ln -sfn {dir} /srv/base/current"
        );
        if !one_file {
            self.settle()?;
            let ssh_release = on_all_hosts(&self.ends, |host| {
                vec![
                    self.ssh.scp(host, &self.tarball, "/srv/bench.tgz"),
                    self.ssh.ssh(host, &script),
                ]
            })?;
            // The tarball is of the initial commit's tree.
            check_tree(self.first_host()?, "/srv/base/current", FILES, "initial\n")?;
            step!("run {run}: OpenSSH (scp + ssh) release to {n} hosts: {ssh_release:.2} s");
            samples.ssh_release.push(ssh_release);
        }

        // OpenSSH streaming: one login per host, the tarball into `tar -x`, then the switch.
        let sdir = format!("/srv/stream/v{run}");
        let stream = format!(
            "mkdir -p {sdir} && tar -xzf - -C {sdir} && ln -sfn {sdir} /srv/stream/tmp && mv -Tf /srv/stream/tmp /srv/stream/current"
        );
        self.settle()?;
        let ssh_stream = on_all_hosts(&self.ends, |host| {
            vec![
                self.ssh
                    .ssh_with_input(host, &stream, &self.tarball)
                    .unwrap_or_else(|e| panic!("{e:#}")),
            ]
        })?;
        check_tree(
            self.first_host()?,
            "/srv/stream/current",
            FILES,
            "initial\n",
        )?;
        step!("run {run}: OpenSSH streaming release to {n} hosts: {ssh_stream:.2} s");

        // The rsync floor of the one-file change: the work tree (commit b) against the tree the
        // scp release unpacked (the initial commit: they differ in VERSION.txt only).
        // With `--one-file` there is no scp release: the streamed tree (the same tarball) is
        // the base.
        let (root, base) = if one_file {
            ("/srv/stream", sdir.clone())
        } else {
            ("/srv/base", dir.clone())
        };
        let rdir = format!("{root}/v{run}-b");
        self.settle()?;
        let rsync_one_file = on_all_hosts(&self.ends, |host| {
            vec![
                self.ssh.rsync(host, &self.repo.work, &base, &rdir),
                self.ssh.ssh(
                    host,
                    &format!("ln -sfn {rdir} {root}/tmp && mv -Tf {root}/tmp {root}/current"),
                ),
            ]
        })?;
        check_tree(
            self.first_host()?,
            &format!("{root}/current"),
            FILES,
            &content_b,
        )?;
        step!("run {run}: rsync --link-dest one-file release to {n} hosts: {rsync_one_file:.2} s");
        samples.hippo_release.push(release);
        samples.hippo_one_file.push(one_file_release);
        samples.ssh_stream.push(ssh_stream);
        samples.rsync_one_file.push(rsync_one_file);
        if one_file {
            return Ok(());
        }
        self.settle()?;
        let ssh_rollback = on_all_hosts(&self.ends, |host| {
            vec![self.ssh.ssh(
                host,
                "ln -sfn /srv/base/v1 /srv/base/tmp && mv -Tf /srv/base/tmp /srv/base/current",
            )]
        })?;
        check_tree(self.first_host()?, "/srv/base/current", FILES, "initial\n")?;
        step!("run {run}: OpenSSH rollback on {n} hosts: {ssh_rollback:.2} s");

        samples.ssh_rollback.push(ssh_rollback);
        Ok(())
    }

    /// The `--one-file` report: the one-file redeploy against the full release (time and
    /// bytes) and against the rsync floor, the full release against OpenSSH streaming, and
    /// where both releases' time went.
    fn report_one_file(&self, s: &Samples) -> anyhow::Result<()> {
        let n = self.hosts.len();
        let hr = median_timed(&s.hippo_release)?;
        let h1 = median_timed(&s.hippo_one_file)?;
        let (stream, rsync) = (median(&s.ssh_stream), median(&s.rsync_one_file));
        println!();
        println!(
            "Tree: {FILES} files, {:.1} MB ({:.1} MB as tar.gz -1); {n} hosts; {}; median of {} run(s); --one-file.",
            self.repo.tree_bytes as f64 / 1e6,
            self.archive_bytes as f64 / 1e6,
            self.network,
            s.hippo_release.len()
        );
        println!();
        let (full_bytes, one_bytes) = (bytes_sent(hr), bytes_sent(h1));
        let rows = [
            (
                "full release vs OpenSSH streaming",
                hr.secs,
                stream,
                STREAM_TARGET,
            ),
            (
                "one-file release vs rsync --link-dest",
                h1.secs,
                rsync,
                ONE_FILE_VS_RSYNC_TARGET,
            ),
            (
                "one-file release vs full release",
                h1.secs,
                hr.secs,
                ONE_FILE_VS_FULL_TARGET,
            ),
        ];
        println!(
            "| {:<38} | {:<22} | {:<5} | {:<6} |",
            "measurement", "Hippo / baseline", "ratio", "target"
        );
        for (name, hippo, base, target) in &rows {
            let ratio = hippo / base;
            println!(
                "| {:<38} | {:<22} | {:<5.2} | {:<6} |",
                name,
                format!("{hippo:.2} s / {base:.2} s"),
                ratio,
                format!(
                    "{target:.2}{}",
                    if ratio <= *target { "" } else { " (missed)" }
                )
            );
        }
        let share = one_bytes as f64 / full_bytes.max(1) as f64;
        println!(
            "| {:<38} | {:<22} | {:<5.3} | {:<6} |",
            "one-file release bytes vs full",
            format!(
                "{:.2} MB / {:.1} MB",
                one_bytes as f64 / 1e6,
                full_bytes as f64 / 1e6
            ),
            share,
            format!(
                "{ONE_FILE_BYTES_TARGET:.2}{}",
                if share <= ONE_FILE_BYTES_TARGET {
                    ""
                } else {
                    " (missed)"
                }
            )
        );
        println!();
        let list = |v: &[f64]| {
            v.iter()
                .map(|x| format!("{x:.2}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let times = |v: &[Timed]| v.iter().map(|t| t.secs).collect::<Vec<_>>();
        println!("All runs (s):");
        println!("  Hippo release:      {}", list(&times(&s.hippo_release)));
        println!("  Hippo one-file:     {}", list(&times(&s.hippo_one_file)));
        println!("  OpenSSH streaming:  {}", list(&s.ssh_stream));
        println!("  rsync one-file:     {}", list(&s.rsync_one_file));
        let cpu = |v: &[Timed]| v.iter().map(|t| t.cpu_secs).collect::<Vec<_>>();
        println!(
            "Machine CPU during each Hippo release (s; Hippo, the hosts and the kernel on {} cores):",
            std::thread::available_parallelism().map_or(1, |n| n.get())
        );
        println!("  Hippo release:      {}", list(&cpu(&s.hippo_release)));
        println!("  Hippo one-file:     {}", list(&cpu(&s.hippo_one_file)));
        println!(
            "  one-file / full (medians): {:.2}",
            median(&cpu(&s.hippo_one_file)) / median(&cpu(&s.hippo_release)).max(f64::MIN_POSITIVE)
        );
        println!();
        print_breakdown("Hippo stages, median release", hr)?;
        println!();
        print_breakdown("Hippo stages, median one-file release", h1)?;
        Ok(())
    }

    fn report(&self, s: &Samples) -> anyhow::Result<()> {
        let n = self.hosts.len();
        let hr = median_timed(&s.hippo_release)?;
        let h1 = median_timed(&s.hippo_one_file)?;
        let hb = median_timed(&s.hippo_rollback)?;
        let (scp, stream, rsync, sb) = (
            median(&s.ssh_release),
            median(&s.ssh_stream),
            median(&s.rsync_one_file),
            median(&s.ssh_rollback),
        );
        let runs = s.ssh_release.len();
        println!();
        println!(
            "Tree: {FILES} files, {:.1} MB ({:.1} MB as tar.gz -1); {n} hosts; {}; median of {runs} run(s).",
            self.repo.tree_bytes as f64 / 1e6,
            self.archive_bytes as f64 / 1e6,
            self.network
        );
        println!();
        println!(
            "| {:<38} | {:<8} | {:<26} | {:<8} | {:<5} | {:<6} |",
            "measurement", "Hippo", "baseline", "", "ratio", "target"
        );
        let full = format!("full release {} MB/{FILES} files x {n}", BYTES / 1_000_000);
        let rows = [
            (
                full.clone(),
                hr.secs,
                "OpenSSH streaming (1 ssh)",
                stream,
                STREAM_TARGET,
            ),
            (full, hr.secs, "OpenSSH scp + ssh", scp, RELEASE_TARGET),
            (
                format!("one-file release x {n}"),
                h1.secs,
                "rsync --link-dest + ssh",
                rsync,
                ONE_FILE_VS_RSYNC_TARGET,
            ),
            (
                format!("one-file release x {n}"),
                h1.secs,
                "Hippo full release",
                hr.secs,
                ONE_FILE_VS_FULL_TARGET,
            ),
            (
                format!("rollback x {n}"),
                hb.secs,
                "OpenSSH ln + mv",
                sb,
                ROLLBACK_TARGET,
            ),
        ];
        for (name, hippo, base, secs, target) in &rows {
            println!(
                "| {:<38} | {:<8} | {:<26} | {:<8} | {:<5.2} | {:<6.2} |",
                name,
                format!("{hippo:.2} s"),
                base,
                format!("{secs:.2} s"),
                hippo / secs,
                target
            );
        }
        let (full_bytes, one_bytes) = (bytes_sent(hr), bytes_sent(h1));
        let share = one_bytes as f64 / full_bytes.max(1) as f64;
        println!(
            "| {:<38} | {:<8} | {:<26} | {:<8} | {:<5.3} | {:<6.2} |",
            format!("one-file release x {n}: bytes sent"),
            format!("{:.2} MB", one_bytes as f64 / 1e6),
            "Hippo full release",
            format!("{:.1} MB", full_bytes as f64 / 1e6),
            share,
            ONE_FILE_BYTES_TARGET
        );
        println!();
        for (name, hippo, base, secs, target) in &rows {
            let ratio = hippo / secs;
            println!(
                "{name} vs {base}: ratio {ratio:.2} {} target {target:.2}",
                if ratio <= *target { "meets" } else { "MISSES" }
            );
        }
        println!(
            "one-file release bytes vs full: {share:.3} {} target {ONE_FILE_BYTES_TARGET:.2}",
            if share <= ONE_FILE_BYTES_TARGET {
                "meets"
            } else {
                "MISSES"
            }
        );
        println!(
            "full release per codec: this run sends zstd to hosts that have it; the gzip row follows the tables (a second hippo-api with HIPPO_ZSTD=0)"
        );
        println!();
        let list = |v: &mut dyn Iterator<Item = f64>| {
            v.map(|x| format!("{x:.2}")).collect::<Vec<_>>().join(", ")
        };
        println!("All runs (s):");
        let all: [(&str, Vec<f64>); 7] = [
            (
                "Hippo release",
                s.hippo_release.iter().map(|t| t.secs).collect(),
            ),
            ("OpenSSH streaming", s.ssh_stream.clone()),
            ("OpenSSH scp + ssh", s.ssh_release.clone()),
            (
                "Hippo one-file",
                s.hippo_one_file.iter().map(|t| t.secs).collect(),
            ),
            ("rsync one-file", s.rsync_one_file.clone()),
            (
                "Hippo rollback",
                s.hippo_rollback.iter().map(|t| t.secs).collect(),
            ),
            ("OpenSSH rollback", s.ssh_rollback.clone()),
        ];
        for (name, v) in all {
            println!("  {:<19} {}", format!("{name}:"), list(&mut v.into_iter()));
        }
        println!();
        print_breakdown("Hippo stages, median release", hr)?;
        println!();
        print_breakdown("Hippo stages, median one-file release", h1)?;
        println!();
        print_breakdown("Hippo stages, median rollback", hb)?;
        Ok(())
    }
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// The sample at the median (the lower middle one for an even count).
fn median_timed(v: &[Timed]) -> anyhow::Result<&Timed> {
    let mut refs: Vec<&Timed> = v.iter().collect();
    refs.sort_by(|a, b| a.secs.total_cmp(&b.secs));
    refs.get((refs.len().saturating_sub(1)) / 2)
        .copied()
        .context("no samples")
}

/// Milliseconds since the epoch of an RFC 3339 UTC time with milliseconds
/// (`2025-01-02T03:04:05.678Z`, as Hippo writes `at`).
fn parse_at(at: &str) -> anyhow::Result<i64> {
    let bad = || format!("unexpected time {at:?}");
    let num = |r: std::ops::Range<usize>| -> anyhow::Result<i64> {
        at.get(r)
            .and_then(|s| s.parse::<i64>().ok())
            .with_context(bad)
    };
    ensure!(
        at.len() >= 20 && at.ends_with('Z') && at.get(10..11) == Some("T"),
        "{}",
        bad()
    );
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hh, mm, ss) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let ms = match at.get(19..20) {
        Some(".") => {
            let frac = at.get(20..at.len() - 1).with_context(bad)?;
            let digits: String = frac.chars().chain("000".chars()).take(3).collect();
            digits.parse::<i64>().with_context(bad)?
        }
        _ => 0,
    };
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Ok(((days * 24 + hh) * 60 + mm) * 60_000 + ss * 1000 + ms)
}

/// Prints where the release's time went, from its events' `at` stamps: each stage runs from its
/// first event to the first event of the next stage (the last one to the final event).
fn print_breakdown(title: &str, t: &Timed) -> anyhow::Result<()> {
    let mut stamped = Vec::new();
    for e in &t.events {
        let at = e["at"].as_str().context("event without at")?;
        stamped.push((parse_at(at)?, e));
    }
    let started = stamped
        .iter()
        .find(|(_, e)| e["stage"] == "release" && e["status"] == "started")
        .map(|(at, _)| *at)
        .context("no release started event")?;
    let end = stamped.last().map(|(at, _)| *at).context("no events")?;
    // Segment boundaries: (name, start ms).
    let mut marks = vec![("setup (load, version, DB)".to_owned(), started)];
    for stage in STAGES {
        if let Some((at, _)) = stamped.iter().find(|(_, e)| e["stage"] == stage) {
            marks.push((stage.to_owned(), *at));
        }
    }
    let total_ms = (t.secs * 1000.0).max(1.0);
    println!("{title} ({:.2} s, release {}):", t.secs, t.release["id"]);
    println!("| {:<30} | {:>8} | {:>6} |", "segment", "time", "share");
    let row = |name: &str, ms: i64| {
        println!(
            "| {:<30} | {:>8} | {:>5.1}% |",
            name,
            format!("{:.3} s", ms as f64 / 1000.0),
            ms as f64 * 100.0 / total_ms
        );
    };
    row("queue (POST run → started)", started - t.wall_start);
    for (i, (name, at)) in marks.iter().enumerate() {
        let next = marks.get(i + 1).map_or(end, |(_, a)| *a);
        row(name, next - at);
    }
    row("stream end (last event → EOF)", t.wall_end - end);

    // Per-host spread of prepare and switch (started → succeeded), and of cleanup (the
    // stage's start → the host's result: cleanup sends no per-host start).
    for stage in ["prepare", "switch", "cleanup"] {
        let mut per_host = Vec::new();
        let stage_start = stamped
            .iter()
            .find(|(_, s)| s["stage"] == stage && s["status"] == "started" && s["host"].is_null())
            .map(|(at, _)| *at);
        for (at, e) in &stamped {
            if e["stage"] == stage
                && e["status"] == "succeeded"
                && let Some(host) = e["host"].as_str()
                && let Some(start) = stamped
                    .iter()
                    .find(|(_, s)| {
                        s["stage"] == stage && s["status"] == "started" && s["host"] == host
                    })
                    .map(|(a, _)| *a)
                    .or(stage_start)
            {
                per_host.push((at - start) as f64 / 1000.0);
            }
        }
        if !per_host.is_empty() {
            per_host.sort_by(f64::total_cmp);
            println!(
                "  {stage} per host ({} hosts): min {:.2} s, median {:.2} s, max {:.2} s",
                per_host.len(),
                per_host[0],
                median(&per_host),
                per_host[per_host.len() - 1]
            );
        }
    }
    if let Some((_, e)) = stamped
        .iter()
        .find(|(_, e)| e["stage"] == "package" && e["status"] == "succeeded")
    {
        println!("  package: {}", e["message"].as_str().unwrap_or_default());
    }
    // `HIPPO_BENCH_EVENTS=<folder>`: every event of the release, with its time since the
    // release started, one JSON line each (`<folder>/release-<id>.jsonl`).
    if let Ok(dir) = std::env::var("HIPPO_BENCH_EVENTS") {
        let path = Path::new(&dir).join(format!("release-{}.jsonl", t.release["id"]));
        let mut out = String::new();
        for (at, e) in &stamped {
            out.push_str(&json!({"ms": at - started, "event": e}).to_string());
            out.push('\n');
        }
        std::fs::create_dir_all(&dir)?;
        std::fs::write(&path, out)?;
        println!("  events: {}", path.display());
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The fleet table (`--scale`).

mod scale {
    use super::*;

    /// The tree of the fleet measurements (issue 11's failing case: 200 files, 2 MB).
    const FILES: usize = 200;
    const BYTES: u64 = 2_000_000;
    /// Targets at the largest fleet: Hippo / OpenSSH time, peak RSS, API read p99.
    const TIME_TARGET: f64 = 1.3;
    const RSS_TARGET_MB: f64 = 150.0;
    const READ_P99_TARGET_MS: f64 = 100.0;

    struct Row {
        hosts: usize,
        hippo: f64,
        ssh: f64,
        rss_mb: f64,
        read_p50_ms: f64,
        read_p99_ms: f64,
        read_max_ms: f64,
        reads: usize,
        /// p99 of how late a bench thread woke from a 5 ms sleep during the release.
        wake_p99_ms: f64,
        in_flight: usize,
    }

    /// Forgets the process's peak RSS (`VmHWM`), so the next reading is the peak from now on.
    fn reset_peak_rss(pid: u32) -> anyhow::Result<()> {
        std::fs::write(format!("/proc/{pid}/clear_refs"), "5")
            .context("resetting the peak RSS (/proc/PID/clear_refs)")
    }

    /// The process's peak RSS (`VmHWM`) in MB.
    fn peak_rss_mb(pid: u32) -> anyhow::Result<f64> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        let kb: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .context("no VmHWM in /proc/PID/status")?;
        Ok(kb / 1024.0)
    }

    /// The most hosts whose prepare had started and not yet ended at any one time.
    fn most_in_flight(events: &[Value]) -> anyhow::Result<usize> {
        let mut edges = Vec::new();
        for e in events
            .iter()
            .filter(|e| e["stage"] == "prepare" && e["host"].is_string())
        {
            let at = parse_at(e["at"].as_str().context("event without at")?)?;
            match e["status"].as_str() {
                Some("started") => edges.push((at, 1i64)),
                Some("succeeded" | "failed") => edges.push((at, -1)),
                _ => {}
            }
        }
        edges.sort();
        let (mut now, mut most) = (0i64, 0i64);
        for (_, d) in edges {
            now += d;
            most = most.max(now);
        }
        Ok(usize::try_from(most).unwrap_or(0))
    }

    fn ms(d: Duration) -> f64 {
        d.as_secs_f64() * 1000.0
    }

    /// What the API reads and the machine's scheduling looked like during one release.
    struct Reading {
        /// Each read: when it started (since the release was run), how long it took, its path.
        reads: Vec<(Duration, Duration, &'static str)>,
        /// How late a bench thread woke from each 5 ms sleep: the delay any thread of the
        /// machine (Hippo's too) waits for a core meanwhile, measured outside Hippo.
        wake_late: Vec<Duration>,
    }

    /// Runs release `rid` while another thread reads it and the first page of the list over
    /// the API, every 20 ms, and a third sleeps 5 ms at a time and notes how late it woke.
    fn release_while_reading(h: &Hippo, rid: i64) -> anyhow::Result<(Timed, Reading)> {
        let running = std::sync::atomic::AtomicBool::new(true);
        let start = Instant::now();
        std::thread::scope(|s| {
            let reader = s.spawn(|| {
                let mut took = Vec::new();
                let one = format!("/api/releases/{rid}");
                while running.load(std::sync::atomic::Ordering::Relaxed) {
                    for (path, name) in [
                        (one.as_str(), "GET /api/releases/{id}"),
                        ("/api/releases?per_page=20", "GET /api/releases"),
                    ] {
                        let t0 = Instant::now();
                        let (status, _) = h.get(path);
                        took.push((t0 - start, t0.elapsed(), name));
                        if status != 200 {
                            step!("GET {path} answered {status} during the release");
                        }
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                took
            });
            let prober = s.spawn(|| {
                let mut late = Vec::new();
                let nap = Duration::from_millis(5);
                while running.load(std::sync::atomic::Ordering::Relaxed) {
                    let t0 = Instant::now();
                    std::thread::sleep(nap);
                    late.push(t0.elapsed().saturating_sub(nap));
                }
                late
            });
            let timed = run_release(h, rid);
            running.store(false, std::sync::atomic::Ordering::Relaxed);
            let reads = reader
                .join()
                .map_err(|_| anyhow::anyhow!("reader panicked"))?;
            let wake_late = prober
                .join()
                .map_err(|_| anyhow::anyhow!("prober panicked"))?;
            Ok((timed?, Reading { reads, wake_late }))
        })
    }

    /// The `p` quantile (0–1) of sorted `v`, in ms.
    fn quantile(v: &[Duration], p: f64) -> f64 {
        v.get(((v.len().max(1) - 1) as f64 * p).round() as usize)
            .map_or(0.0, |d| ms(*d))
    }

    /// A CPU cgroup (v1, `/sys/fs/cgroup/cpu/<name>`, default weight) that `pids` join with
    /// every process they start from then on.
    fn cpu_group(name: &str, pids: &[u32]) -> anyhow::Result<()> {
        let dir = std::path::Path::new("/sys/fs/cgroup/cpu").join(name);
        std::fs::create_dir_all(&dir).with_context(|| {
            format!(
                "making the cgroup {} (root and cgroup v1 cpu needed)",
                dir.display()
            )
        })?;
        for pid in pids {
            std::fs::write(dir.join("cgroup.procs"), pid.to_string())
                .with_context(|| format!("moving {pid} into {}", dir.display()))?;
        }
        Ok(())
    }

    pub fn run(sizes: &[u8], cpu_groups: bool) -> anyhow::Result<()> {
        let most = usize::from(*sizes.iter().max().context("no fleet sizes")?);
        step!("starting hippo-api (default settings)");
        let hippo = Hippo::start(&[])?;
        let platform = platform_key(&hippo)?;
        let scratch = tempfile::Builder::new()
            .prefix("hippo-bench-scale-")
            .tempdir()?;
        let (_, client) = generate_client_key(scratch.path())?;
        let authorized = format!("{platform}\n{client}");
        step!("starting {most} OpenSSH hosts");
        let hosts = (1..=most)
            .map(|i| TestHost::start(u8::try_from(i)?, &authorized))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let ends = hosts
            .iter()
            .map(|h| Endpoint::of(h, None))
            .collect::<anyhow::Result<Vec<_>>>()?;
        if cpu_groups {
            step!("Hippo in the CPU cgroup hippo-bench-api, the hosts in hippo-bench-hosts");
            cpu_group("hippo-bench-api", &[hippo.pid()])?;
            let pids: Vec<u32> = hosts.iter().filter_map(TestHost::pid).collect();
            ensure!(pids.len() == hosts.len(), "a host without a process");
            cpu_group("hippo-bench-hosts", &pids)?;
        }
        step!(
            "building the repository ({FILES} files, ~{} MB)",
            BYTES / 1_000_000
        );
        let repo = Repo::with(FILES, BYTES)?;
        let ssh = Ssh {
            key: scratch.path().join("id_ed25519"),
        };
        let tarball = scratch.path().join("scale.tgz");
        let st = Command::new("tar")
            .arg("-C")
            .arg(&repo.work)
            .args(["--exclude=.git", "-I", "gzip -1", "-cf"])
            .arg(&tarball)
            .arg(".")
            .status()
            .context("running tar")?;
        ensure!(st.success(), "tar failed: {st}");
        let env_id = id(&post(
            &hippo,
            "/api/environments",
            &json!({"name": "Fleet", "tag": "fleet"}),
            201,
        )?)?;
        let mut host_ids = Vec::new();
        for (i, h) in hosts.iter().enumerate() {
            let body = json!({"environment_id": env_id, "name": format!("node-{}", i + 1),
                              "addr": h.addr, "port": h.port, "username": "root", "category": "web"});
            host_ids.push(id(&post(&hippo, "/api/hosts", &body, 201)?)?);
        }

        let mut rows = Vec::new();
        for &n in sizes {
            let n = usize::from(n);
            let app = id(&post(
                &hippo,
                "/api/apps",
                &json!({"name": format!("Fleet {n}"), "tag": format!("fleet{n}"), "description": "scale"}),
                201,
            )?)?;
            let (deploy, versions) = (format!("/srv/www/fleet{n}"), format!("/srv/hippo/fleet{n}"));
            // Default settings: no parallelism.
            let config = id(&post(
                &hippo,
                "/api/release-configs",
                &json!({
                    "app_id": app,
                    "environment_id": env_id,
                    "repo_url": repo.bare.to_str().context("non-UTF-8 temp path")?,
                    "host_ids": host_ids[..n],
                    "deploy_path": deploy,
                    "versions_path": versions,
                    "keep_versions": 5,
                    "filter_mode": "exclude",
                    "filter": "",
                }),
                201,
            )?)?;
            let content = format!("fleet of {n}\n");
            let commit = repo.commit_version(&content)?;
            let rid = create_release(
                &hippo,
                &json!({"config_id": config, "name": format!("fleet {n}"), "branch": "main", "commit": commit}),
            )?;
            std::thread::sleep(Duration::from_millis(1500));
            machine_quiet();
            settle()?;
            reset_peak_rss(hippo.pid())?;
            step!("Hippo: releasing to {n} hosts");
            let ticks0 = process_cpu_ticks(hippo.pid())?;
            let (timed, reading) = release_while_reading(&hippo, rid)?;
            // Clock ticks are 100 a second on Linux.
            let hippo_cpu = (process_cpu_ticks(hippo.pid())? - ticks0) as f64 / 100.0;
            let rss_mb = peak_rss_mb(hippo.pid())?;
            for host in [&hosts[0], &hosts[n - 1]] {
                check_tree(host, &deploy, FILES, &content)?;
            }
            let mut slowest = reading.reads.clone();
            slowest.sort_by_key(|r| std::cmp::Reverse(r.1));
            let mut reads: Vec<Duration> = reading.reads.iter().map(|r| r.1).collect();
            reads.sort();
            let mut late = reading.wake_late.clone();
            late.sort();
            let pick = |p: f64| quantile(&reads, p);
            let in_flight = most_in_flight(&timed.events)?;
            step!(
                "Hippo to {n} hosts: {:.2} s, peak RSS {rss_mb:.0} MB, API reads p99 {:.1} ms, at most {in_flight} hosts in flight; CPU: Hippo {hippo_cpu:.2} s, machine {:.2} s",
                timed.secs,
                pick(0.99),
                timed.cpu_secs
            );
            step!(
                "  meanwhile a bench thread woke from 5 ms sleeps late by p50 {:.1} / p99 {:.1} / max {:.1} ms ({} sleeps); slowest reads: {}",
                quantile(&late, 0.5),
                quantile(&late, 0.99),
                late.last().map_or(0.0, |d| ms(*d)),
                late.len(),
                slowest
                    .iter()
                    .take(5)
                    .map(|(at, took, what)| format!(
                        "{:.1} ms at +{:.2} s ({what})",
                        ms(*took),
                        at.as_secs_f64()
                    ))
                    .collect::<Vec<_>>()
                    .join(", ")
            );

            let dir = format!("/srv/scale/v{n}");
            let script = format!(
                "mkdir -p {dir} && tar -xzf - -C {dir} && ln -sfn {dir} /srv/scale/tmp && mv -Tf /srv/scale/tmp /srv/scale/current"
            );
            std::thread::sleep(Duration::from_millis(1500));
            machine_quiet();
            settle()?;
            step!("OpenSSH streaming: releasing to {n} hosts");
            let ssh_secs = on_all_hosts(&ends[..n], |h| {
                vec![
                    ssh.ssh_with_input(h, &script, &tarball)
                        .unwrap_or_else(|e| panic!("{e:#}")),
                ]
            })?;
            check_tree(&hosts[n - 1], "/srv/scale/current", FILES, "initial\n")?;
            step!("OpenSSH to {n} hosts: {ssh_secs:.2} s");
            rows.push(Row {
                hosts: n,
                hippo: timed.secs,
                ssh: ssh_secs,
                rss_mb,
                read_p50_ms: pick(0.5),
                read_p99_ms: pick(0.99),
                read_max_ms: reads.last().map_or(0.0, |d| ms(*d)),
                reads: reads.len(),
                wake_p99_ms: quantile(&late, 0.99),
                in_flight,
            });
        }

        println!();
        println!(
            "Fleet: {FILES} files, {:.1} MB per release; Hippo with default settings; OpenSSH: one ssh per host streaming a gzip -1 tarball into tar -x, all hosts at once; {}.",
            repo.tree_bytes as f64 / 1e6,
            if cpu_groups {
                "Hippo and the hosts each in a CPU cgroup of their own (--cpu-groups)"
            } else {
                "every SSH session an autogroup of its own beside Hippo's"
            }
        );
        println!();
        println!(
            "| hosts | Hippo    | OpenSSH  | ratio | Hippo s/host | Hippo peak RSS | hosts in flight | API reads p50 / p99 / max (n)  | wake-up late p99 |"
        );
        println!(
            "|------:|---------:|---------:|------:|-------------:|---------------:|----------------:|--------------------------------|-----------------:|"
        );
        for r in &rows {
            println!(
                "| {:>5} | {:>6.2} s | {:>6.2} s | {:>5.2} | {:>10.3} s | {:>11.0} MB | {:>15} | {:>5.1} / {:>5.1} / {:>6.1} ms ({}) | {:>13.1} ms |",
                r.hosts,
                r.hippo,
                r.ssh,
                r.hippo / r.ssh,
                r.hippo / r.hosts as f64,
                r.rss_mb,
                r.in_flight,
                r.read_p50_ms,
                r.read_p99_ms,
                r.read_max_ms,
                r.reads,
                r.wake_p99_ms
            );
        }
        println!();
        if let (Some(first), Some(last)) = (rows.first(), rows.last()) {
            let growth = (last.hippo / first.hippo) / (last.hosts as f64 / first.hosts as f64);
            println!(
                "growth {} → {} hosts: time × {:.2} for hosts × {:.2} (per-host time × {growth:.2}: {})",
                first.hosts,
                last.hosts,
                last.hippo / first.hippo,
                last.hosts as f64 / first.hosts as f64,
                if growth <= 1.05 {
                    "linear or better"
                } else {
                    "WORSE than linear"
                }
            );
            let ratio = last.hippo / last.ssh;
            let verdict = |ok: bool| if ok { "meets" } else { "MISSES" };
            println!(
                "{} hosts: Hippo / OpenSSH {ratio:.2} {} target {TIME_TARGET}; peak RSS {:.0} MB {} target < {RSS_TARGET_MB} MB; API read p99 {:.1} ms {} target < {READ_P99_TARGET_MS} ms",
                last.hosts,
                verdict(ratio <= TIME_TARGET),
                last.rss_mb,
                verdict(last.rss_mb < RSS_TARGET_MB),
                last.read_p99_ms,
                verdict(last.read_p99_ms < READ_P99_TARGET_MS),
            );
        }
        drop(hosts);
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// The WAN profile (`--wan`).

/// A delay line in front of a host: what one side sends reaches the other `one_way` later,
/// without limiting bandwidth (bytes are read at once and held until due). This kernel has no
/// `sch_netem` (`tc qdisc add … netem` says "Specified qdisc kind is unknown"), so the round
/// trip is added here, on 127.0.0.1, for Hippo and the OpenSSH baselines alike.
mod wan {
    use std::io::{Read, Write};
    use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
    use std::sync::mpsc;
    use std::time::{Duration, Instant};

    /// 25 ms each way: a 50 ms round trip.
    pub const ONE_WAY: Duration = Duration::from_millis(25);

    pub struct DelayLine {
        pub port: u16,
    }

    impl DelayLine {
        /// Listens on 127.0.0.1 (a free port) and forwards every connection to `to`.
        pub fn start(to: SocketAddr, one_way: Duration) -> anyhow::Result<DelayLine> {
            let listener = TcpListener::bind("127.0.0.1:0")?;
            let port = listener.local_addr()?.port();
            // Lives as long as the benchmark.
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    let Ok(down) = conn else { continue };
                    let Ok(up) = TcpStream::connect(to) else {
                        continue;
                    };
                    let _ = (down.set_nodelay(true), up.set_nodelay(true));
                    if let (Ok(d2), Ok(u2)) = (down.try_clone(), up.try_clone()) {
                        pipe(down, u2, one_way);
                        pipe(up, d2, one_way);
                    }
                }
            });
            Ok(DelayLine { port })
        }
    }

    /// Copies `from` to `to`, each chunk `delay` after it was read.
    fn pipe(mut from: TcpStream, mut to: TcpStream, delay: Duration) {
        let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>)>();
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 64 * 1024];
            while let Ok(n) = from.read(&mut buf) {
                if n == 0
                    || tx
                        .send((Instant::now() + delay, buf[..n].to_vec()))
                        .is_err()
                {
                    break;
                }
            }
        });
        std::thread::spawn(move || {
            for (due, data) in rx {
                let now = Instant::now();
                if due > now {
                    std::thread::sleep(due - now);
                }
                if to.write_all(&data).is_err() {
                    break;
                }
            }
            let _ = to.shutdown(Shutdown::Write);
        });
    }
}
