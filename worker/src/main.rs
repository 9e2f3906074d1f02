//! `hippo-worker`: takes deploy jobs from the Redis queue (cluster mode) and runs them.
//! Settings as for `hippo-api`; it needs `HIPPO_REDIS_URL`, `HIPPO_DATABASE_URL` and the
//! cluster's `HIPPO_MASTER_KEY`. SIGTERM: it takes nothing new and lets running releases end.
use anyhow::{Context as _, bail};
use hippo_shared::config::Settings;
use hippo_worker::{context::Deps, git, process, queue};
use std::sync::Arc;

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
    let listener = tokio::net::TcpListener::bind(&deps.settings.metrics_listen)
        .await
        .with_context(|| format!("listening on {}", deps.settings.metrics_listen))?;
    tracing::info!(addr = %deps.settings.metrics_listen, "serving /metrics and /healthz");
    tokio::spawn(serve_metrics(listener, deps.clone()));
    tracing::info!(worker = %name, queue = %queue_name, concurrency, "hippo-worker taking jobs");
    queue::run_workers(source, deps, concurrency, process::shutdown_signal())
        .await
        .context("running workers")?;
    tracing::info!(worker = %name, "hippo-worker stopped");
    Ok(())
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
    if let Err(e) = poem::Server::new_with_acceptor(acceptor).run(app).await {
        tracing::error!(error = %e, "metrics server stopped");
    }
}
