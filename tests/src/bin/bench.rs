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
/// Targets: Hippo time / OpenSSH time.
const RELEASE_TARGET: f64 = 1.15;
const ROLLBACK_TARGET: f64 = 1.50;
/// The stages of a release, in order.
const STAGES: [&str; 5] = ["checkout", "package", "prepare", "switch", "cleanup"];

const USAGE: &str = "usage: bench [--runs N] [--hosts N]

Releases a 20 MB / 2,000-file tree from Git to N hosts (default 20) with Hippo and with plain
OpenSSH (scp + tar + ln), then rolls back, each measurement --runs times (default 3); prints
the medians and Hippo's per-stage breakdown. HIPPO_BIN names the hippo-api binary.";

struct Args {
    runs: usize,
    hosts: u8,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args { runs: 3, hosts: 20 };
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
    let bench = Bench::new(&args)?;
    let mut samples = Samples::default();
    for run in 1..=args.runs {
        bench.one_run(run, &mut samples)?;
    }
    bench.report(&samples)
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

/// Writes the tree (all files but `VERSION.txt`); returns the bytes written.
fn write_tree(dir: &Path) -> anyhow::Result<u64> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let generated = FILES - 1;
    let mean = BYTES / FILES as u64;
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
        let dir = tempfile::Builder::new()
            .prefix("hippo-bench-git-")
            .tempdir()?;
        let work = dir.path().join("work");
        std::fs::create_dir(&work)?;
        git(&work, &["init", "-q"])?;
        let tree_bytes = write_tree(&work)?;
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
    let r = post(h, "/api/releases", body, 201)?;
    ensure!(r["status"] == "approved", "release not approved: {r}");
    let rid = id(&r)?;
    let wall_start = wall_ms();
    let t0 = Instant::now();
    let queued = post(h, &format!("/api/releases/{rid}/run"), &Value::Null, 200)?;
    ensure!(queued["status"] == "queued", "run: {queued}");
    let events = h.events(rid, None, Duration::from_secs(900))?;
    let secs = t0.elapsed().as_secs_f64();
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

    fn scp(&self, host: &TestHost, file: &Path, remote: &str) -> Command {
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

    fn ssh(&self, host: &TestHost, script: &str) -> Command {
        let mut c = Command::new("ssh");
        c.args(self.opts())
            .arg("-p")
            .arg(host.port.to_string())
            .arg(format!("root@{}", host.addr))
            .arg(script);
        c
    }
}

/// Flushes dirty pages (not timed), so that one measurement's writeback does not slow the next.
fn settle() -> anyhow::Result<()> {
    let st = Command::new("sync").status().context("running sync")?;
    ensure!(st.success(), "sync failed: {st}");
    Ok(())
}

fn run_cmd(mut c: Command, what: &str) -> anyhow::Result<()> {
    let out = c
        .stdin(Stdio::null())
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
fn on_all_hosts<F>(hosts: &[TestHost], cmds: F) -> anyhow::Result<f64>
where
    F: Fn(&TestHost) -> Vec<Command> + Sync,
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
    hippo_rollback: Vec<Timed>,
    ssh_release: Vec<f64>,
    ssh_rollback: Vec<f64>,
}

struct Bench {
    // Field order is drop order: hosts go first, then Hippo, then the files.
    hosts: Vec<TestHost>,
    hippo: Hippo,
    repo: Repo,
    ssh: Ssh,
    tarball: PathBuf,
    config_id: i64,
    archive_bytes: u64,
    _scratch: tempfile::TempDir,
}

impl Bench {
    fn new(args: &Args) -> anyhow::Result<Bench> {
        step!("starting hippo-api");
        let hippo = Hippo::start(&[("HIPPO_WORKER_CONCURRENCY", "4")])?;
        let (s, key) = hippo.get("/api/ssh-key");
        ensure!(s == 200, "GET /api/ssh-key: {s} {key}");
        let platform = key["public_key"]
            .as_str()
            .context("no public_key")?
            .trim()
            .to_owned();
        let scratch = tempfile::Builder::new().prefix("hippo-bench-").tempdir()?;
        let (_, client) = generate_client_key(scratch.path())?;
        let authorized = format!("{platform}\n{client}");
        step!("starting {} OpenSSH hosts", args.hosts);
        let hosts = (1..=args.hosts)
            .map(|i| TestHost::start(i, &authorized))
            .collect::<anyhow::Result<Vec<_>>>()?;

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
        for (i, h) in hosts.iter().enumerate() {
            let body = json!({"environment_id": env_id, "name": format!("web-{}", i + 1),
                              "addr": h.addr, "port": h.port, "username": "root", "category": "web"});
            host_ids.push(id(&post(&hippo, "/api/hosts", &body, 201)?)?);
        }
        let config = post(
            &hippo,
            "/api/release-configs",
            &json!({
                "app_id": id(&app)?,
                "environment_id": env_id,
                "repo_url": repo.bare.to_str().context("non-UTF-8 temp path")?,
                "host_ids": host_ids,
                "deploy_path": DEPLOY,
                "versions_path": VERSIONS,
                "keep_versions": 5,
                "filter_mode": "exclude",
                "filter": "",
            }),
            201,
        )?;

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
            hosts,
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

    fn first_host(&self) -> anyhow::Result<&TestHost> {
        self.hosts.first().context("no hosts")
    }

    fn one_run(&self, run: usize, samples: &mut Samples) -> anyhow::Result<()> {
        let n = self.hosts.len();
        let h = &self.hippo;

        // Hippo: release of a new commit (timed).
        let content_a = format!("run {run} release\n");
        let commit_a = self.repo.commit_version(&content_a)?;
        settle()?;
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

        // Hippo: a second release (not timed), then a rollback to the first (timed).
        let content_b = format!("run {run} second release\n");
        let commit_b = self.repo.commit_version(&content_b)?;
        hippo_release(
            h,
            &json!({"config_id": self.config_id, "name": format!("bench {run} b"),
                    "branch": "main", "commit": commit_b}),
        )?;
        check_tree(self.first_host()?, DEPLOY, FILES, &content_b)?;
        settle()?;
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

        // OpenSSH: the same work. A fresh folder per run, as Hippo makes a new version folder.
        let dir = format!("/srv/base/v{run}");
        let script = format!(
            "mkdir -p {dir} && tar -xzf /srv/bench.tgz -C {dir} && ln -sfn {dir} /srv/base/current"
        );
        settle()?;
        let ssh_release = on_all_hosts(&self.hosts, |host| {
            vec![
                self.ssh.scp(host, &self.tarball, "/srv/bench.tgz"),
                self.ssh.ssh(host, &script),
            ]
        })?;
        // The tarball is of the initial commit's tree.
        check_tree(self.first_host()?, "/srv/base/current", FILES, "initial\n")?;
        step!("run {run}: OpenSSH release to {n} hosts: {ssh_release:.2} s");
        settle()?;
        let ssh_rollback = on_all_hosts(&self.hosts, |host| {
            vec![self.ssh.ssh(
                host,
                "ln -sfn /srv/base/v1 /srv/base/tmp && mv -Tf /srv/base/tmp /srv/base/current",
            )]
        })?;
        check_tree(self.first_host()?, "/srv/base/current", FILES, "initial\n")?;
        step!("run {run}: OpenSSH rollback on {n} hosts: {ssh_rollback:.2} s");

        samples.hippo_release.push(release);
        samples.hippo_rollback.push(rollback);
        samples.ssh_release.push(ssh_release);
        samples.ssh_rollback.push(ssh_rollback);
        Ok(())
    }

    fn report(&self, s: &Samples) -> anyhow::Result<()> {
        let n = self.hosts.len();
        let hr = median_timed(&s.hippo_release)?;
        let hb = median_timed(&s.hippo_rollback)?;
        let (sr, sb) = (median(&s.ssh_release), median(&s.ssh_rollback));
        let runs = s.ssh_release.len();
        println!();
        println!(
            "Tree: {FILES} files, {:.1} MB ({:.1} MB as tar.gz -1); {n} hosts; median of {runs} run(s).",
            self.repo.tree_bytes as f64 / 1e6,
            self.archive_bytes as f64 / 1e6
        );
        println!();
        println!(
            "| {:<29} | {:<8} | {:<8} | {:<5} | {:<6} |",
            "measurement", "Hippo", "OpenSSH", "ratio", "target"
        );
        let rows = [
            (
                format!("release {} MB/{FILES} files x {n}", BYTES / 1_000_000),
                hr.secs,
                sr,
                RELEASE_TARGET,
            ),
            (format!("rollback x {n}"), hb.secs, sb, ROLLBACK_TARGET),
        ];
        for (name, hippo, ssh, target) in &rows {
            println!(
                "| {:<29} | {:<8} | {:<8} | {:<5.2} | {:<6.2} |",
                name,
                format!("{hippo:.2} s"),
                format!("{ssh:.2} s"),
                hippo / ssh,
                target
            );
        }
        println!();
        for (name, hippo, ssh, target) in &rows {
            let ratio = hippo / ssh;
            println!(
                "{name}: ratio {ratio:.2} {} target {target:.2}",
                if ratio <= *target { "meets" } else { "MISSES" }
            );
        }
        println!();
        let list = |v: &mut dyn Iterator<Item = f64>| {
            v.map(|x| format!("{x:.2}")).collect::<Vec<_>>().join(", ")
        };
        println!("All runs (s):");
        println!(
            "  Hippo release:    {}",
            list(&mut s.hippo_release.iter().map(|t| t.secs))
        );
        println!(
            "  OpenSSH release:  {}",
            list(&mut s.ssh_release.iter().copied())
        );
        println!(
            "  Hippo rollback:   {}",
            list(&mut s.hippo_rollback.iter().map(|t| t.secs))
        );
        println!(
            "  OpenSSH rollback: {}",
            list(&mut s.ssh_rollback.iter().copied())
        );
        println!();
        print_breakdown("Hippo stages, median release", hr)?;
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

    // Per-host spread of prepare and switch (started → succeeded).
    for stage in ["prepare", "switch"] {
        let mut per_host = Vec::new();
        for (at, e) in &stamped {
            if e["stage"] == stage
                && e["status"] == "succeeded"
                && let Some(host) = e["host"].as_str()
                && let Some((start, _)) = stamped.iter().find(|(_, s)| {
                    s["stage"] == stage && s["status"] == "started" && s["host"] == host
                })
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
    Ok(())
}
