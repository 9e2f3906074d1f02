//! The real `hippo-api` binary, started on a free loopback port with its own data folder, and
//! a small HTTP client for it (JSON and Server-Sent Events).
use anyhow::{Context, bail};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Hippo {
    /// The PostgreSQL server (base URL) and the database made for this instance (dropped with
    /// it), if any.
    postgres: Option<String>,
    pg_database: Option<String>,
    /// Cluster mode: the Redis URL.
    redis: Option<String>,
    pub base: String,
    port: u16,
    env: Vec<(String, String)>,
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

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn spawn(data: &std::path::Path, port: u16, env: &[(String, String)]) -> anyhow::Result<Child> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(data.join("hippo.log"))?;
    Command::new(binary()?)
        .current_dir(data)
        .env("HIPPO_LISTEN", format!("127.0.0.1:{port}"))
        .env("HIPPO_DATA_DIR", data.join("data"))
        .env("HIPPO_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("HIPPO_LOG", "info,hippo_worker=debug,sqlx=warn")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(log.try_clone()?)
        .stderr(log)
        .stdin(Stdio::null())
        .spawn()
        .context("starting hippo-api")
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
    /// Its `/metrics` port.
    metrics_port: u16,
    exited: Option<std::process::ExitStatus>,
}

impl Hippo {
    /// Starts Hippo with extra `HIPPO_*` settings and logs in as admin (SQLite, PostgreSQL or a
    /// cluster, as the environment says: see [`Options::from_env`]).
    pub fn start(env: &[(&str, &str)]) -> anyhow::Result<Hippo> {
        Self::start_with(Options::from_env(env))
    }

    pub fn start_with(opts: Options) -> anyhow::Result<Hippo> {
        let data = tempfile::Builder::new().prefix("hippo-data-").tempdir()?;
        let port = free_port()?;
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
        let child = spawn(data.path(), port, &env)?;
        let http = client_builder().timeout(Duration::from_secs(120)).build()?;
        let mut h = Hippo {
            postgres: opts.postgres,
            redis: opts.redis,
            pg_database,
            base: format!("http://127.0.0.1:{port}"),
            port,
            env,
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
    /// folder and port. Tokens stay valid.
    pub fn crash_and_restart(&mut self) -> anyhow::Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        self.child = spawn(self.data.path(), self.port, &self.env)?;
        self.wait_ready()
    }

    fn wait_ready(&self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = self.http.get(format!("{}/readyz", self.base)).send()
                && r.status().is_success()
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("hippo-api did not become ready:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The API's log, then each worker's.
    pub fn log(&self) -> String {
        let mut out =
            std::fs::read_to_string(self.data.path().join("hippo.log")).unwrap_or_default();
        for i in 1..=self.workers.len() {
            let w = std::fs::read_to_string(self.data.path().join(format!("worker-{i}.log")))
                .unwrap_or_default();
            out.push_str(&format!("\n--- worker {i} ---\n{w}"));
        }
        out
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

    /// Starts one more `hippo-worker`; returns its index (for the `*_worker` methods).
    pub fn start_worker(&mut self) -> anyhow::Result<usize> {
        let i = self.workers.len() + 1;
        let metrics_port = free_port()?;
        let mut env = self.env.clone();
        env.push((
            "HIPPO_METRICS_LISTEN".into(),
            format!("127.0.0.1:{metrics_port}"),
        ));
        let child = spawn_worker(self.data.path(), i, &env)?;
        self.workers.push(Worker {
            child,
            metrics_port,
            exited: None,
        });
        // Ready when it serves its health check.
        let deadline = Instant::now() + Duration::from_secs(30);
        while self
            .http
            .get(format!("http://127.0.0.1:{metrics_port}/healthz"))
            .send()
            .map_or(true, |r| !r.status().is_success())
        {
            if Instant::now() > deadline {
                bail!("hippo-worker {i} did not become ready:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(i)
    }

    /// Starts another `hippo-api` on the same database and Redis; returns its base URL.
    pub fn start_api_replica(&mut self) -> anyhow::Result<String> {
        let dir = self
            .data
            .path()
            .join(format!("replica-{}", self.replicas.len() + 1));
        std::fs::create_dir_all(&dir)?;
        let port = free_port()?;
        self.replicas.push(spawn(&dir, port, &self.env)?);
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while self
            .http
            .get(format!("{base}/readyz"))
            .send()
            .map_or(true, |r| !r.status().is_success())
        {
            if Instant::now() > deadline {
                bail!("API replica did not become ready");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(base)
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
        let port = self.workers[i - 1].metrics_port;
        self.http
            .get(format!("http://127.0.0.1:{port}/metrics"))
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

    /// Reads `GET /api/releases/{id}/events` (SSE) until the server closes it or `timeout`; returns
    /// the events' JSON. `last_event_id` resumes after that id.
    pub fn events(
        &self,
        release_id: i64,
        last_event_id: Option<i64>,
        timeout: Duration,
    ) -> anyhow::Result<Vec<Value>> {
        self.events_from(&self.base, release_id, last_event_id, timeout)
    }

    /// [`Hippo::events`] from the API at `base` (an API replica).
    pub fn events_from(
        &self,
        base: &str,
        release_id: i64,
        last_event_id: Option<i64>,
        timeout: Duration,
    ) -> anyhow::Result<Vec<Value>> {
        let client = client_builder().timeout(timeout).build()?;
        let mut req = client
            .get(format!("{base}/api/releases/{release_id}/events"))
            .bearer_auth(&self.token);
        if let Some(id) = last_event_id {
            req = req.header("Last-Event-ID", id.to_string());
        }
        let resp = req.send()?;
        if !resp.status().is_success() {
            bail!("events: {}", resp.status());
        }
        let mut out = Vec::new();
        let mut data = String::new();
        for line in BufReader::new(resp).lines() {
            // A read that times out ends the stream: the caller gets what arrived so far.
            let Ok(line) = line else { break };
            if line.is_empty() {
                // The server closes the stream after the release's last `end` event (a re-run
                // release has one per run), so read to the end of the stream.
                if !data.is_empty() {
                    out.push(serde_json::from_str::<Value>(&data)?);
                }
                data.clear();
            } else if let Some(v) = line.strip_prefix("data:") {
                data.push_str(v.trim_start());
            }
        }
        Ok(out)
    }

    /// Queues a release and follows its events to the end; returns (final release JSON, events).
    pub fn run_release(&self, release_id: i64) -> (Value, Vec<Value>) {
        let queued = self.ok(
            &format!("/api/releases/{release_id}/run"),
            &Value::Null,
            200,
        );
        assert_eq!(queued["status"], "queued", "{queued}");
        let events = self
            .events(release_id, None, Duration::from_secs(180))
            .unwrap_or_else(|e| panic!("events of release {release_id}: {e}\n{}", self.log()));
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
            if let Ok(out) = Command::new("redis-cli")
                .args(["-u", &url, "--scan", "--pattern", &format!("{queue}:*")])
                .output()
            {
                let keys: Vec<String> = String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .map(str::to_owned)
                    .collect();
                if !keys.is_empty() {
                    let _ = Command::new("redis-cli")
                        .args(["-u", &url, "DEL"])
                        .args(&keys)
                        .output();
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
    Command::new(bin)
        .current_dir(data)
        .env("HIPPO_DATA_DIR", data.join(format!("worker-{i}")))
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
    let out = Command::new("psql")
        .arg(format!("{base}/postgres"))
        .args(["-v", "ON_ERROR_STOP=1", "-qc", sql])
        .output()?;
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
