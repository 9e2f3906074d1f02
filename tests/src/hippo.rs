//! The real `hippo-api` binary, listening on a loopback port of its own choosing (port 0; it
//! reports the port in `HIPPO_ADDR_FILE`) with its own data folder, and a small HTTP client for
//! it (JSON and Server-Sent Events). Every wait has a deadline and fails with the logs.
use crate::proc::{LogFile, command, tails, try_wait_until, wait_for_addr_file};
use anyhow::{Context, bail};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How long a process may take to start listening (a debug build on a busy 2-core machine).
const START_LIMIT: Duration = Duration::from_secs(60);

pub struct Hippo {
    /// The PostgreSQL server (base URL) and the database made for this instance (dropped with
    /// it), if any.
    postgres: Option<String>,
    pg_database: Option<String>,
    /// Cluster mode: the Redis URL.
    redis: Option<String>,
    pub base: String,
    env: Vec<(String, String)>,
    /// Other processes' logs shown when something fails (the test hosts' sshd logs).
    extra_logs: Vec<LogFile>,
    pub token: String,
    pub data: tempfile::TempDir,
    child: Child,
    /// `hippo-worker` processes (cluster mode only), in start order; never removed.
    workers: Vec<Worker>,
    /// More `hippo-api` processes on the same database and Redis (cluster mode).
    replicas: Vec<Child>,
    http: reqwest::blocking::Client,
}

/// A blocking HTTP client builder. The workspace builds reqwest with `rustls-no-provider`
/// (for the worker's notices, STACK.md), and features are unified across a workspace build, so
/// every process that builds a client needs a rustls provider installed first: ring's, once.
pub fn client_builder() -> reqwest::blocking::ClientBuilder {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if rustls::crypto::CryptoProvider::get_default().is_none() {
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
    });
    reqwest::blocking::Client::builder()
}

/// Sends `req` with `token` (none if empty); the status and the body as JSON (or as a string
/// when it is not JSON; status 0 when the request failed).
fn send_as(req: reqwest::blocking::RequestBuilder, token: &str) -> (u16, Value) {
    let req = if token.is_empty() {
        req
    } else {
        req.bearer_auth(token)
    };
    match req.send() {
        Ok(r) => {
            let status = r.status().as_u16();
            let text = r.text().unwrap_or_default();
            (
                status,
                serde_json::from_str(&text).unwrap_or(Value::String(text)),
            )
        }
        Err(e) => (0, Value::String(e.to_string())),
    }
}

/// The binary next to the test executable (`target/<profile>/hippo-api`), or `HIPPO_BIN`.
pub fn binary() -> anyhow::Result<PathBuf> {
    if let Ok(p) = std::env::var("HIPPO_BIN") {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe()?;
    let dir = exe
        .parent()
        .and_then(|d| d.parent())
        .context("no target dir")?;
    let bin = dir.join("hippo-api");
    if !bin.exists() {
        bail!(
            "{} not found: run `cargo build --workspace` first",
            bin.display()
        );
    }
    Ok(bin)
}

/// Starts `hippo-api` in `dir` (log `hippo.log`, data in `data/`) on port 0 and waits until it
/// says where it listens; its base URL.
fn spawn(
    dir: &Path,
    env: &[(String, String)],
    logs: impl Fn() -> String,
) -> anyhow::Result<(Child, String)> {
    let addr_file = dir.join("hippo-api.addr");
    let _ = std::fs::remove_file(&addr_file);
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("hippo.log"))?;
    let mut child = command(binary()?)
        .current_dir(dir)
        .env("HIPPO_LISTEN", "127.0.0.1:0")
        .env("HIPPO_ADDR_FILE", &addr_file)
        .env("HIPPO_DATA_DIR", dir.join("data"))
        .env("HIPPO_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("HIPPO_LOG", "info,hippo_worker=debug,sqlx=warn")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(log.try_clone()?)
        .stderr(log)
        .stdin(Stdio::null())
        .spawn()
        .context("starting hippo-api")?;
    match wait_for_addr_file(&mut child, &addr_file, "hippo-api", START_LIMIT, logs) {
        Ok(addr) => Ok((child, format!("http://{addr}"))),
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            Err(e)
        }
    }
}

pub const ADMIN_PASSWORD: &str = "test-admin-password";

/// How to start Hippo.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Extra `HIPPO_*` settings.
    pub env: Vec<(String, String)>,
    /// `postgres://user@host:port`: Hippo's data in a fresh database there (else SQLite).
    pub postgres: Option<String>,
    /// `redis://…`: cluster mode (needs `postgres`).
    pub redis: Option<String>,
    /// `hippo-worker` processes to start (cluster mode).
    pub workers: usize,
}

impl Options {
    /// As the environment says: `HIPPO_E2E_POSTGRES`, `HIPPO_E2E_REDIS` (then two workers).
    pub fn from_env(env: &[(&str, &str)]) -> Options {
        let redis = redis_url();
        Options {
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            postgres: postgres_base(),
            workers: if redis.is_some() { 2 } else { 0 },
            redis,
        }
    }
}

/// One `hippo-worker` process.
struct Worker {
    child: Child,
    /// Its `/metrics` address (`127.0.0.1:PORT`).
    metrics: std::net::SocketAddr,
    exited: Option<std::process::ExitStatus>,
}

impl Hippo {
    /// Starts Hippo with extra `HIPPO_*` settings and logs in as admin (SQLite, PostgreSQL or a
    /// cluster, as the environment says: see [`Options::from_env`]).
    pub fn start(env: &[(&str, &str)]) -> anyhow::Result<Hippo> {
        Self::start_with(Options::from_env(env))
    }

    pub fn start_with(opts: Options) -> anyhow::Result<Hippo> {
        crate::proc::check_prerequisites()?;
        let data = tempfile::Builder::new().prefix("hippo-data-").tempdir()?;
        let mut env = opts.env;
        let pg_database = match &opts.postgres {
            Some(base) => {
                let (name, url) = create_database(base)?;
                env.push(("HIPPO_DATABASE_URL".into(), url));
                Some(name)
            }
            None => None,
        };
        if let Some(redis) = &opts.redis {
            if pg_database.is_none() {
                bail!("cluster mode needs PostgreSQL too (workers share the database)");
            }
            static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
            let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            env.push(("HIPPO_REDIS_URL".into(), redis.clone()));
            env.push((
                "HIPPO_QUEUE_NAME".into(),
                format!("hippo-e2e-{}-{n}", std::process::id()),
            ));
            env.push(("HIPPO_MASTER_KEY".into(), random_hex(32)?));
        }
        let api_log = LogFile::new("hippo-api", data.path().join("hippo.log"));
        let (child, base) = spawn(data.path(), &env, || tails(std::slice::from_ref(&api_log)))?;
        let http = client_builder().timeout(Duration::from_secs(120)).build()?;
        let mut h = Hippo {
            postgres: opts.postgres,
            redis: opts.redis,
            pg_database,
            base,
            env,
            extra_logs: Vec::new(),
            token: String::new(),
            data,
            child,
            workers: Vec::new(),
            replicas: Vec::new(),
            http,
        };
        h.wait_ready()?;
        if h.redis.is_some() {
            for _ in 0..opts.workers {
                h.start_worker()?;
            }
        }
        let (status, body) = h.post(
            "/api/auth/login",
            &serde_json::json!({"username": "admin", "password": ADMIN_PASSWORD}),
        );
        if status != 200 {
            bail!("login failed: {status} {body}");
        }
        h.token = body["token"].as_str().context("token")?.to_owned();
        Ok(h)
    }

    /// Kills the process (SIGKILL: no chance to clean up) and starts it again on the same data
    /// folder (on a new port: `base` changes). Tokens stay valid.
    pub fn crash_and_restart(&mut self) -> anyhow::Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        let logs = self.log_files();
        let (child, base) = spawn(self.data.path(), &self.env, || tails(&logs))?;
        self.child = child;
        self.base = base;
        self.wait_ready()
    }

    fn wait_ready(&self) -> anyhow::Result<()> {
        self.wait_ready_at(&self.base.clone(), "hippo-api")
    }

    /// Waits until the API at `base` answers `/readyz` (its database is reachable).
    fn wait_ready_at(&self, base: &str, what: &str) -> anyhow::Result<()> {
        try_wait_until(
            &format!("{what} at {base} ready"),
            START_LIMIT,
            || self.log(),
            || {
                self.http
                    .get(format!("{base}/readyz"))
                    .timeout(Duration::from_secs(5))
                    .send()
                    .ok()
                    .filter(|r| r.status().is_success())
                    .map(|_| ())
            },
        )
    }

    /// Adds a log file to those [`Hippo::log`] shows (a test host's sshd log).
    pub fn attach_log(&mut self, log: LogFile) {
        self.extra_logs.push(log);
    }

    /// Every log a failure should show: the API's, each API replica's and worker's, then the
    /// attached ones.
    pub fn log_files(&self) -> Vec<LogFile> {
        let dir = self.data.path();
        let mut out = vec![LogFile::new("hippo-api", dir.join("hippo.log"))];
        for i in 1..=self.replicas.len() {
            out.push(LogFile::new(
                format!("hippo-api replica {i}"),
                dir.join(format!("replica-{i}/hippo.log")),
            ));
        }
        for i in 1..=self.workers.len() {
            out.push(LogFile::new(
                format!("hippo-worker {i}"),
                dir.join(format!("worker-{i}.log")),
            ));
        }
        out.extend(self.extra_logs.iter().cloned());
        out
    }

    /// Where Hippo keeps its data: the PostgreSQL URL, or `sqlite://<data>/data/hippo.db`.
    pub fn database_url(&self) -> String {
        self.env
            .iter()
            .find(|(k, _)| k == "HIPPO_DATABASE_URL")
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| {
                format!(
                    "sqlite://{}",
                    self.data.path().join("data/hippo.db").display()
                )
            })
    }

    /// The tails of [`Hippo::log_files`], for failure messages.
    pub fn log(&self) -> String {
        tails(&self.log_files())
    }

    pub fn is_cluster(&self) -> bool {
        self.redis.is_some()
    }

    /// The master key as hex, wherever this instance keeps it (`data/master.key`, or the
    /// `HIPPO_MASTER_KEY` a cluster shares).
    pub fn master_key_hex(&self) -> String {
        if let Some((_, k)) = self.env.iter().find(|(k, _)| k == "HIPPO_MASTER_KEY") {
            return k.to_lowercase();
        }
        std::fs::read(self.data.path().join("data/master.key"))
            .map(hex::encode)
            .unwrap_or_default()
    }

    /// Starts one more `hippo-worker` (its metrics on a port of its choosing); returns its
    /// index (for the `*_worker` methods) once it serves its health check.
    pub fn start_worker(&mut self) -> anyhow::Result<usize> {
        self.start_worker_with(Some("127.0.0.1:0"))
    }

    /// [`Hippo::start_worker`] with `HIPPO_METRICS_LISTEN` set to `metrics_listen`, or unset
    /// (the worker's default).
    pub fn start_worker_with(&mut self, metrics_listen: Option<&str>) -> anyhow::Result<usize> {
        let i = self.workers.len() + 1;
        let dir = self.data.path();
        let addr_file = dir.join(format!("worker-{i}.addr"));
        let _ = std::fs::remove_file(&addr_file);
        let mut env = self.env.clone();
        if let Some(m) = metrics_listen {
            env.push(("HIPPO_METRICS_LISTEN".into(), m.into()));
        }
        env.push((
            "HIPPO_ADDR_FILE".into(),
            addr_file.to_string_lossy().into_owned(),
        ));
        let mut child = spawn_worker(dir, i, &env)?;
        let mut logs = self.log_files();
        logs.push(LogFile::new(
            format!("hippo-worker {i}"),
            dir.join(format!("worker-{i}.log")),
        ));
        let metrics = match wait_for_addr_file(
            &mut child,
            &addr_file,
            &format!("hippo-worker {i}"),
            START_LIMIT,
            || tails(&logs),
        ) {
            Ok(a) => a,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(e);
            }
        };
        self.workers.push(Worker {
            child,
            metrics,
            exited: None,
        });
        try_wait_until(
            &format!("hippo-worker {i} healthy at {metrics}"),
            START_LIMIT,
            || self.log(),
            || {
                self.http
                    .get(format!("http://{metrics}/healthz"))
                    .timeout(Duration::from_secs(5))
                    .send()
                    .ok()
                    .filter(|r| r.status().is_success())
                    .map(|_| ())
            },
        )?;
        Ok(i)
    }

    /// Starts another `hippo-api` on the same database and Redis; returns its base URL.
    pub fn start_api_replica(&mut self) -> anyhow::Result<String> {
        let n = self.replicas.len() + 1;
        let dir = self.data.path().join(format!("replica-{n}"));
        std::fs::create_dir_all(&dir)?;
        let mut logs = self.log_files();
        logs.push(LogFile::new(
            format!("hippo-api replica {n}"),
            dir.join("hippo.log"),
        ));
        let (child, base) = spawn(&dir, &self.env, || tails(&logs))?;
        self.replicas.push(child);
        self.wait_ready_at(&base, &format!("API replica {n}"))?;
        Ok(base)
    }

    /// Worker `i`'s metrics address, as it reported it.
    pub fn worker_metrics_addr(&self, i: usize) -> std::net::SocketAddr {
        self.workers[i - 1].metrics
    }

    /// The `hippo-api` process's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The number of `hippo-worker` processes (0: standalone).
    pub fn worker_count(&self) -> usize {
        self.workers.len()
    }

    /// Which worker (1-based) a release's first event names ("… by worker worker-HOST-PID").
    pub fn worker_of(&self, events: &[serde_json::Value]) -> Option<usize> {
        let name = events
            .iter()
            .find_map(|e| e["message"].as_str()?.split(" by worker ").nth(1))?;
        let pid = name.rsplit('-').next()?;
        (1..=self.workers.len()).find(|&i| self.worker_pid(i).to_string() == pid)
    }

    pub fn worker_pid(&self, i: usize) -> u32 {
        self.workers[i - 1].child.id()
    }

    /// Sends `signal` (`TERM`, `KILL`, …) to worker `i`.
    pub fn signal_worker(&self, i: usize, signal: &str) {
        let _ = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.worker_pid(i).to_string())
            .status();
    }

    /// Waits up to `limit` for worker `i` to exit; its exit status, or None if it still runs.
    pub fn wait_worker(&mut self, i: usize, limit: Duration) -> Option<std::process::ExitStatus> {
        let w = &mut self.workers[i - 1];
        let deadline = Instant::now() + limit;
        loop {
            if w.exited.is_none() {
                w.exited = w.child.try_wait().ok().flatten();
            }
            if w.exited.is_some() || Instant::now() > deadline {
                return w.exited;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The API's `/metrics` text.
    pub fn metrics(&self) -> String {
        self.http
            .get(format!("{}/metrics", self.base))
            .send()
            .and_then(|r| r.text())
            .unwrap_or_default()
    }

    /// A per-process series (`name{labels}` as written) summed over the API and every
    /// worker: where a release ran does not matter (standalone: the API; cluster: a worker).
    pub fn metric_total(&self, series: &str) -> f64 {
        let value = |text: String| {
            text.lines()
                .find_map(|l| {
                    l.strip_prefix(series)?
                        .strip_prefix(' ')?
                        .parse::<f64>()
                        .ok()
                })
                .unwrap_or(0.0)
        };
        value(self.metrics())
            + (1..=self.workers.len())
                .map(|i| value(self.worker_metrics(i)))
                .sum::<f64>()
    }

    /// Worker `i`'s `/metrics` text.
    pub fn worker_metrics(&self, i: usize) -> String {
        let addr = self.workers[i - 1].metrics;
        self.http
            .get(format!("http://{addr}/metrics"))
            .send()
            .and_then(|r| r.text())
            .unwrap_or_default()
    }

    fn send(&self, req: reqwest::blocking::RequestBuilder) -> (u16, Value) {
        send_as(req, &self.token)
    }

    /// Logs `username` in; their session token.
    pub fn login(&self, username: &str, password: &str) -> String {
        let (status, body) = self.post(
            "/api/auth/login",
            &serde_json::json!({"username": username, "password": password}),
        );
        assert_eq!(status, 200, "login {username}: {body}");
        body["token"].as_str().unwrap_or_default().to_owned()
    }

    /// A request as the holder of `token` (another user): `method` GET, POST, PUT, PATCH or
    /// DELETE; `body` sent as JSON unless null.
    pub fn call(&self, token: &str, method: &str, path: &str, body: &Value) -> (u16, Value) {
        let url = format!("{}{path}", self.base);
        let req = match method {
            "GET" => self.http.get(url),
            "POST" => self.http.post(url),
            "PUT" => self.http.put(url),
            "PATCH" => self.http.patch(url),
            "DELETE" => self.http.delete(url),
            other => panic!("method {other}"),
        };
        let req = if body.is_null() { req } else { req.json(body) };
        send_as(req, token)
    }

    pub fn get(&self, path: &str) -> (u16, Value) {
        self.send(self.http.get(format!("{}{path}", self.base)))
    }
    /// GET of a plain-text resource (a release's raw log): the status, the content type and
    /// the body as text.
    pub fn get_text(&self, path: &str) -> (u16, String, String) {
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let status = resp.status().as_u16();
        let kind = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        (status, kind, resp.text().unwrap_or_default())
    }
    pub fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.send(self.http.post(format!("{}{path}", self.base)).json(body))
    }
    pub fn put(&self, path: &str, body: &Value) -> (u16, Value) {
        self.send(self.http.put(format!("{}{path}", self.base)).json(body))
    }
    pub fn delete(&self, path: &str) -> (u16, Value) {
        self.send(self.http.delete(format!("{}{path}", self.base)))
    }
    /// POST with a raw body (for malformed JSON).
    pub fn post_raw(&self, path: &str, body: &str) -> (u16, Value) {
        self.send(
            self.http
                .post(format!("{}{path}", self.base))
                .header("content-type", "application/json")
                .body(body.to_owned()),
        )
    }

    /// POST that must answer `want`; returns the body.
    pub fn ok(&self, path: &str, body: &Value, want: u16) -> Value {
        let (status, out) = self.post(path, body);
        assert_eq!(
            status,
            want,
            "POST {path} {body} -> {status} {out}\n--- hippo log ---\n{}",
            self.log()
        );
        out
    }

    /// Reads `GET /api/releases/{id}/events` (SSE) to its end (the server closes it after the
    /// release's last event); the events' JSON. `last_event_id` resumes after that id. An error,
    /// with the events so far and the logs, if the stream has not ended within `limit`.
    pub fn events(
        &self,
        release_id: i64,
        last_event_id: Option<i64>,
        limit: Duration,
    ) -> anyhow::Result<Vec<Value>> {
        self.events_from(&self.base, release_id, last_event_id, limit)
    }

    /// [`Hippo::events`] from the API at `base` (an API replica).
    pub fn events_from(
        &self,
        base: &str,
        release_id: i64,
        last_event_id: Option<i64>,
        limit: Duration,
    ) -> anyhow::Result<Vec<Value>> {
        let (events, end) = self.read_events(base, release_id, last_event_id, limit, None)?;
        match end {
            StreamEnd::Closed => Ok(events),
            StreamEnd::Quiet | StreamEnd::Deadline => bail!(
                "the event stream of release {release_id} did not end within {limit:?}; \
                 {} events so far, the last: {:#}\n{}",
                events.len(),
                events.last().cloned().unwrap_or(Value::Null),
                self.log()
            ),
        }
    }

    /// The events of release `release_id` stored or arriving until the stream has been quiet
    /// for half a second (or ended): a look at a running release.
    pub fn events_so_far(&self, release_id: i64) -> anyhow::Result<Vec<Value>> {
        let (events, _) = self.read_events(
            &self.base,
            release_id,
            None,
            Duration::from_secs(30),
            Some(Duration::from_millis(500)),
        )?;
        Ok(events)
    }

    /// Reads the SSE stream on a thread of its own (a blocking read cannot be given a deadline:
    /// the server's keep-alive comments keep every read short) until it ends, `quiet` passes
    /// without an event, or `limit` passes.
    fn read_events(
        &self,
        base: &str,
        release_id: i64,
        last_event_id: Option<i64>,
        limit: Duration,
        quiet: Option<Duration>,
    ) -> anyhow::Result<(Vec<Value>, StreamEnd)> {
        let url = format!("{base}/api/releases/{release_id}/events");
        let token = self.token.clone();
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = std::sync::mpsc::channel::<anyhow::Result<Value>>();
        let reader_stop = stop.clone();
        std::thread::spawn(move || {
            let read = || -> anyhow::Result<()> {
                // Each read is bounded too (keep-alives come every 15 s), so the thread ends.
                let client = client_builder().timeout(Duration::from_secs(60)).build()?;
                let mut req = client.get(&url).bearer_auth(&token);
                if let Some(id) = last_event_id {
                    req = req.header("Last-Event-ID", id.to_string());
                }
                let resp = req.send()?;
                if !resp.status().is_success() {
                    bail!("GET {url}: {}", resp.status());
                }
                let mut data = String::new();
                for line in BufReader::new(resp).lines() {
                    let line = line?;
                    if reader_stop.load(Ordering::Relaxed) {
                        return Ok(());
                    }
                    if line.is_empty() {
                        if !data.is_empty() {
                            let event = serde_json::from_str::<Value>(&data)
                                .with_context(|| format!("event data {data:?}"))?;
                            if tx.send(Ok(event)).is_err() {
                                return Ok(());
                            }
                        }
                        data.clear();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                Ok(())
            };
            if let Err(e) = read() {
                let _ = tx.send(Err(e));
            }
        });
        let deadline = Instant::now() + limit;
        let mut events = Vec::new();
        let end = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break StreamEnd::Deadline;
            }
            let wait = quiet.map_or(left, |q| q.min(left));
            match rx.recv_timeout(wait) {
                Ok(Ok(e)) => events.push(e),
                Ok(Err(e)) => {
                    stop.store(true, Ordering::Relaxed);
                    return Err(e.context(format!("events of release {release_id}")));
                }
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break StreamEnd::Closed,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    if wait < left {
                        break StreamEnd::Quiet;
                    }
                }
            }
        };
        stop.store(true, Ordering::Relaxed);
        Ok((events, end))
    }

    /// Queues a release and follows its events to the end; returns (final release JSON, events).
    /// The answer to `run` is the release as it is by then: `queued`, or already further when
    /// an in-process worker was quicker than the answer (a CI run once saw `running`).
    pub fn run_release(&self, release_id: i64) -> (Value, Vec<Value>) {
        let queued = self.ok(
            &format!("/api/releases/{release_id}/run"),
            &Value::Null,
            200,
        );
        assert!(queued_or_past(&queued), "{queued}");
        let events = self
            .events(release_id, None, Duration::from_secs(180))
            .unwrap_or_else(|e| panic!("events of release {release_id}: {e:#}"));
        let (_, release) = self.get(&format!("/api/releases/{release_id}"));
        (release, events)
    }
}

impl Drop for Hippo {
    fn drop(&mut self) {
        for w in self
            .workers
            .iter_mut()
            .map(|w| &mut w.child)
            .chain(self.replicas.iter_mut())
            .chain(std::iter::once(&mut self.child))
        {
            let _ = w.kill();
            let _ = w.wait();
        }
        if let (Some(url), Some((_, queue))) = (
            self.redis.clone(),
            self.env.iter().find(|(k, _)| k == "HIPPO_QUEUE_NAME"),
        ) {
            // The test's queue keys: `<queue>:*`.
            let limit = Duration::from_secs(20);
            if let Ok(out) = crate::proc::output_within(
                Command::new("redis-cli").args([
                    "-u",
                    &url,
                    "--scan",
                    "--pattern",
                    &format!("{queue}:*"),
                ]),
                limit,
            ) {
                let keys: Vec<String> = String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .map(str::to_owned)
                    .collect();
                if !keys.is_empty() {
                    let _ = crate::proc::output_within(
                        Command::new("redis-cli")
                            .args(["-u", &url, "DEL"])
                            .args(&keys),
                        limit,
                    );
                }
            }
        }
        if let (Some(base), Some(name)) = (&self.postgres, &self.pg_database) {
            let _ = psql(
                base,
                &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            );
        }
    }
}

/// How a read of an event stream ended.
enum StreamEnd {
    /// The server closed it (after the release's last event).
    Closed,
    /// Nothing arrived for the quiet time asked for.
    Quiet,
    /// The time limit passed.
    Deadline,
}

/// `HIPPO_E2E_REDIS=redis://host:port` (with `HIPPO_E2E_POSTGRES`) runs every story as a
/// cluster: the API queues jobs in Redis, two `hippo-worker` processes run them.
pub fn redis_url() -> Option<String> {
    std::env::var("HIPPO_E2E_REDIS")
        .ok()
        .filter(|v| !v.is_empty())
}

fn random_hex(n: usize) -> anyhow::Result<String> {
    use std::io::Read;
    let mut buf = vec![0u8; n];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut buf)?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

fn spawn_worker(
    data: &std::path::Path,
    i: usize,
    env: &[(String, String)],
) -> anyhow::Result<Child> {
    let bin = binary()?.with_file_name("hippo-worker");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(data.join(format!("worker-{i}.log")))?;
    command(bin)
        .current_dir(data)
        .env("HIPPO_DATA_DIR", data.join(format!("worker-{i}")))
        // Kept copies on storage both workers share, as a cluster must have them: a rollback
        // may run on the worker that did not make the copy.
        .env("HIPPO_ARTIFACTS_DIR", data.join("artifacts"))
        .env("HIPPO_LOG", "info,hippo_worker=debug,sqlx=warn")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(log.try_clone()?)
        .stderr(log)
        .stdin(Stdio::null())
        .spawn()
        .context("starting hippo-worker")
}

/// `HIPPO_E2E_POSTGRES=postgres://user@host:port` runs every story on PostgreSQL: each Hippo
/// gets a database of its own.
fn postgres_base() -> Option<String> {
    std::env::var("HIPPO_E2E_POSTGRES")
        .ok()
        .filter(|v| !v.is_empty())
}

fn psql(base: &str, sql: &str) -> anyhow::Result<()> {
    let out = crate::proc::output_within(
        Command::new("psql")
            .arg(format!("{base}/postgres"))
            .args(["-v", "ON_ERROR_STOP=1", "-qc", sql])
            .env("PGCONNECT_TIMEOUT", "10"),
        Duration::from_secs(60),
    )?;
    if !out.status.success() {
        bail!("psql {sql}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

fn create_database(base: &str) -> anyhow::Result<(String, String)> {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let name = format!("hippo_e2e_{}_{n}", std::process::id());
    psql(
        base,
        &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
    )?;
    psql(base, &format!("CREATE DATABASE {name}"))?;
    Ok((name.clone(), format!("{base}/{name}")))
}

/// Whether the release JSON answered by `POST /api/releases/{id}/run` shows it queued or past
/// that (a worker may take it before the answer is read back).
pub fn queued_or_past(release: &Value) -> bool {
    matches!(
        release["status"].as_str(),
        Some("queued" | "running" | "succeeded" | "failed" | "cancelled")
    )
}
