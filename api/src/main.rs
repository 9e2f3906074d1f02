//! `hippo-api`: with no arguments, serves Hippo in standalone mode (API + in-process workers).
//! `hippo-api openapi` prints the OpenAPI spec (that is how `openapi/openapi.json` is made).
use anyhow::Context as _;
use hippo_api::{app, server, startup};
use hippo_shared::config::Settings;
use std::time::Duration;

fn main() -> anyhow::Result<()> {
    if std::env::args().nth(1).as_deref() == Some("openapi") {
        println!("{}", app::spec_json());
        return Ok(());
    }
    let settings = Settings::load().context("loading settings")?;
    // Before any thread exists (libgit2 keeps these in unsynchronised globals).
    hippo_worker::git::set_network_timeouts(
        settings.ssh_connect_timeout(),
        settings.ssh_io_timeout(),
    )
    .context("setting Git network timeouts")?;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(serve(settings))
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    hippo_worker::process::init_tracing();
    let listen = settings.listen.clone();
    let concurrency = settings.worker_concurrency;
    let started = startup::start(settings).await.context("starting Hippo")?;
    if let Some(pw) = &started.generated_admin_password {
        // Printed once, on the first start only; it is not stored in clear anywhere.
        println!("Created user 'admin' with password: {pw}");
    }
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        hippo_worker::process::shutdown_signal().await;
        tracing::info!("shutting down");
        let _ = stop_tx.send(true);
    });
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    // Standalone: the workers run in this process. Cluster: `hippo-worker` processes do.
    let workers = started.source.map(|source| {
        let deps = started.state.deps.clone();
        tokio::spawn(hippo_worker::queue::run_workers(
            source,
            deps,
            concurrency,
            stopped(stop_rx.clone()),
        ))
    });
    // Every API process queues scheduled releases (claimed in the database: exactly once).
    tokio::spawn(hippo_api::scheduler::run(
        started.state.clone(),
        stopped(stop_rx.clone()),
    ));
    let mode = if workers.is_some() {
        "standalone"
    } else {
        "cluster API"
    };
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .with_context(|| format!("listening on {listen} (HIPPO_LISTEN)"))?;
    let addr = listener.local_addr().context("the listener's address")?;
    tracing::info!(%addr, mode, "Hippo listening");
    if let Some(path) = &started.state.settings.addr_file {
        hippo_worker::process::write_addr_file(path, addr)
            .with_context(|| format!("writing {} (HIPPO_ADDR_FILE)", path.display()))?;
    }
    let mut limits = server::Limits::from_settings(&started.state.settings);
    limits.max_connections = server::fit_connection_limit(limits.max_connections);
    server::serve(
        listener,
        app::routes(started.state),
        limits,
        stopped(stop_rx.clone()),
        Duration::from_secs(5),
    )
    .await
    .context("serving HTTP")?;
    if let Some(w) = workers {
        let _ = w.await;
    }
    Ok(())
}
