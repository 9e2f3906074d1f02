//! `hippo-worker`: takes deploy jobs from the Redis queue (cluster mode) and runs them.
//! Settings as for `hippo-api`; it needs `HIPPO_REDIS_URL`, `HIPPO_DATABASE_URL` and the
//! cluster's `HIPPO_MASTER_KEY`. SIGTERM: it takes nothing new and lets running releases end.
use anyhow::{Context as _, bail};
use hippo_shared::config::Settings;
use hippo_worker::{context::Deps, git, process, queue};
use std::sync::Arc;
use std::time::Duration;

fn main() -> anyhow::Result<()> {
    let settings = Settings::load().context("loading settings")?;
    // Before any thread exists (libgit2 keeps these in unsynchronised globals).
    git::set_network_timeouts(settings.ssh_connect_timeout(), settings.ssh_io_timeout())
        .context("setting Git network timeouts")?;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(run(settings))
}

async fn run(settings: Settings) -> anyhow::Result<()> {
    process::init_tracing();
    let Some(redis) = settings.redis_url.clone() else {
        bail!("hippo-worker needs HIPPO_REDIS_URL (standalone hippo-api runs its workers itself)");
    };
    let concurrency = settings.worker_concurrency;
    let queue_name = settings.queue_name.clone();
    let name = process::worker_name("worker");
    let deps = Arc::new(
        Deps::build(settings, name.clone())
            .await
            .context("opening the database and keys")?,
    );
    let (_, source) = queue::open_redis(redis.expose(), &queue_name)
        .await
        .context("connecting to Redis")?;
    match bind_metrics(deps.settings.metrics_listen.as_deref()).await? {
        Some(listener) => {
            let addr = listener.local_addr().context("metrics listener address")?;
            tracing::info!(%addr, "serving /metrics and /healthz");
            if let Some(path) = &deps.settings.addr_file {
                process::write_addr_file(path, addr)?;
            }
            tokio::spawn(serve_metrics(listener, deps.clone()));
        }
        None => tracing::info!("not serving /metrics and /healthz (HIPPO_METRICS_LISTEN=off)"),
    }
    tracing::info!(worker = %name, queue = %queue_name, concurrency, "hippo-worker taking jobs");
    queue::run_workers(source, deps, concurrency, process::shutdown_signal())
        .await
        .context("running workers")?;
    tracing::info!(worker = %name, "hippo-worker stopped");
    Ok(())
}

/// The first port tried when `HIPPO_METRICS_LISTEN` is unset; the next ones serve further
/// workers on the same machine.
const METRICS_PORTS: std::ops::Range<u16> = 9091..9191;

/// The metrics listener: on the configured address (an error if it is taken: it was asked for),
/// none for `off`, or else on the first free port of [`METRICS_PORTS`] on loopback.
async fn bind_metrics(setting: Option<&str>) -> anyhow::Result<Option<tokio::net::TcpListener>> {
    use tokio::net::TcpListener;
    match setting {
        Some("off") => Ok(None),
        Some(addr) => TcpListener::bind(addr)
            .await
            .map(Some)
            .with_context(|| format!("listening on {addr} (HIPPO_METRICS_LISTEN)")),
        None => {
            for port in METRICS_PORTS {
                match TcpListener::bind(("127.0.0.1", port)).await {
                    Ok(l) => return Ok(Some(l)),
                    Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                        tracing::debug!(port, "metrics port taken, trying the next");
                    }
                    Err(e) => return Err(e).context(format!("listening on 127.0.0.1:{port}")),
                }
            }
            bail!(
                "no free port for /metrics on 127.0.0.1:{}-{}: set HIPPO_METRICS_LISTEN (or `off`)",
                METRICS_PORTS.start,
                METRICS_PORTS.end - 1
            )
        }
    }
}

/// `/metrics` (Prometheus) and `/healthz` on `HIPPO_METRICS_LISTEN`.
async fn serve_metrics(listener: tokio::net::TcpListener, deps: Arc<Deps>) {
    use poem::{EndpointExt, Route, get, handler, web::Data};
    #[handler]
    fn healthz() -> &'static str {
        "ok"
    }
    #[handler]
    async fn metrics(deps: Data<&Arc<Deps>>) -> poem::Response {
        poem::Response::builder()
            .content_type("text/plain; version=0.0.4")
            .body(hippo_shared::metrics::scrape(&deps.db).await)
    }
    let app = Route::new()
        .at("/metrics", get(metrics))
        .at("/healthz", get(healthz))
        .data(deps);
    let std_listener = match listener.into_std() {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, "metrics listener");
            return;
        }
    };
    let acceptor = match poem::listener::TcpAcceptor::from_std(std_listener) {
        Ok(a) => a,
        Err(e) => {
            tracing::error!(error = %e, "metrics listener");
            return;
        }
    };
    // Scrapers come and go; a connection silent this long is dropped.
    let server = poem::Server::new_with_acceptor(acceptor).idle_timeout(Duration::from_secs(60));
    if let Err(e) = server.run(app).await {
        tracing::error!(error = %e, "metrics server stopped");
    }
}
