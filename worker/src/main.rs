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
    tracing::info!(worker = %name, queue = %queue_name, concurrency, "hippo-worker taking jobs");
    queue::run_workers(source, deps, concurrency, process::shutdown_signal())
        .await
        .context("running workers")?;
    tracing::info!(worker = %name, "hippo-worker stopped");
    Ok(())
}
