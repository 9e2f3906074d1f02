//! `hippo-api`: with no arguments, serves Hippo in standalone mode (API + in-process workers).
//! `hippo-api openapi` prints the OpenAPI spec (that is how `openapi/openapi.json` is made).
use anyhow::Context as _;
use hippo_api::{app, startup};
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
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("HIPPO_LOG").unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new("info,sqlx=warn,apalis=warn")
            }),
        )
        .init();
    let listen = settings.listen.clone();
    let concurrency = settings.worker_concurrency;
    let started = startup::standalone(settings)
        .await
        .context("starting Hippo")?;
    if let Some(pw) = &started.generated_admin_password {
        // Printed once, on the first start only; it is not stored in clear anywhere.
        println!("Created user 'admin' with password: {pw}");
    }
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down");
        let _ = stop_tx.send(true);
    });
    let deps = started.state.deps.clone();
    let mut rx = stop_rx.clone();
    let workers = tokio::spawn(hippo_worker::queue::run_workers(
        started.source,
        deps,
        concurrency,
        async move {
            let _ = rx.wait_for(|s| *s).await;
        },
    ));
    tracing::info!(%listen, "Hippo listening (standalone)");
    let mut rx = stop_rx.clone();
    poem::Server::new(poem::listener::TcpListener::bind(listen))
        .run_with_graceful_shutdown(
            app::routes(started.state),
            async move {
                let _ = rx.wait_for(|s| *s).await;
            },
            Some(Duration::from_secs(5)),
        )
        .await
        .context("serving HTTP")?;
    let _ = workers.await;
    Ok(())
}

async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
